"""mosquitto.conf directives that decide at CONNECT (and PUBLISH /
SUBSCRIBE) what a client may do: max_qos, use_username_as_clientid,
clientid_prefixes, and mosquitto 2.1's accept_protocol_versions,
global_max_clients and global_max_connections; auth_plugin / plugin are
refused. Against mosquitto too (TERN_TEST_AGAINST=mosquitto) for what
mosquitto 2.0 has."""

import subprocess
import time

import pytest

import mqtt_raw as m
from conftest import MOSQUITTO, Broker, broker_binary, free_port

NOT_AUTHORIZED_V3 = 5
NOT_AUTHORIZED_V5 = 0x87
QOS_NOT_SUPPORTED = 0x9B


@pytest.mark.broker_config("max_qos 1")
def test_max_qos_is_told_to_v5_clients_and_caps_subscriptions(broker):
    """max_qos 1: the v5 CONNACK carries Maximum QoS 1 [MQTT-3.2.2-9]; a
    SUBSCRIBE asking QoS 2 is granted 1, in v5 and 3.1.1."""
    max_qos_1(broker)


@pytest.mark.broker_config("maximum_qos 1")
def test_maximum_qos_is_max_qos(broker):
    """maximum_qos, the other spelling mosquitto's parser takes (a config
    with it starts mosquitto), is max_qos."""
    max_qos_1(broker)


def max_qos_1(broker):
    c = broker.raw(m.V5)
    ack = c.connect("mq-5")
    assert ack.props.get(m.MAXIMUM_QOS) == 1
    assert c.subscribe([("mq/#", 2)]).codes == [1]
    c.disconnect()
    c = broker.raw(m.V311)
    c.connect("mq-3")
    assert c.subscribe([("mq/#", 2)]).codes == [1]
    c.disconnect()


@pytest.mark.broker_config("max_qos 1")
def test_max_qos_publish_above_it_disconnects(broker):
    """A PUBLISH above max_qos ends the connection: v5 with DISCONNECT
    0x9B (QoS not supported) [MQTT-3.3.1-4]; 3.1.1 closed. QoS 1 is fine."""
    c = broker.raw(m.V5)
    c.connect("mq-pub5")
    assert c.publish("mq/1", b"x", qos=1).rc in (0, 0x10)  # 0x10: no subscribers
    c.send(m.publish("mq/2", b"x", qos=2, pid=2, version=m.V5))
    got = c.wait_closed(2)
    assert [p.type for p in got] == [m.DISCONNECT] and got[0].rc == QOS_NOT_SUPPORTED
    c = broker.raw(m.V311)
    c.connect("mq-pub3")
    c.send(m.publish("mq/2", b"x", qos=2, pid=2))
    assert c.wait_closed(2) == []


@pytest.mark.broker_config("max_qos 0")
def test_max_qos_will_above_it_is_refused(broker):
    """A will above max_qos: v5 CONNACK 0x9B [MQTT-3.2.2-12]; a 3.1.1 client,
    which has no word for it, is closed without a CONNACK."""
    will = {"topic": "mq/will", "payload": b"w", "qos": 1}
    c = broker.raw(m.V5)
    assert c.connect("mq-w5", will=will, expect_rc=None).rc == QOS_NOT_SUPPORTED
    c = broker.raw(m.V311)
    c.send(m.connect("mq-w3", will=will))
    assert c.wait_closed(2) == []


@pytest.mark.broker_config("use_username_as_clientid true")
def test_use_username_as_clientid(broker):
    """The username is the client id: a second client with the same username
    and another client id takes the first one's session over (v5 DISCONNECT
    0x8E); a client without a username is not authorized."""
    a = broker.raw(m.V5)
    a.connect("first", username="dora")
    b = broker.raw(m.V5)
    b.connect("second", username="dora")
    got = a.wait_closed(2)
    # mosquitto 2.0 closes without DISCONNECT 0x8E (2.1 sends it).
    if not MOSQUITTO:
        assert [p.type for p in got] == [m.DISCONNECT] and got[0].rc == 0x8E
    b.disconnect()
    c = broker.raw(m.V311)
    assert c.connect("nouser", expect_rc=None).rc == NOT_AUTHORIZED_V3
    c = broker.raw(m.V5)
    assert c.connect("nouser", expect_rc=None).rc == NOT_AUTHORIZED_V5


@pytest.mark.broker_config("clientid_prefixes secure-")
def test_clientid_prefixes(broker):
    """clientid_prefixes: only client ids that start with it get in."""
    c = broker.raw(m.V311)
    c.connect("secure-1")
    c.disconnect()
    c = broker.raw(m.V311)
    assert c.connect("plain-1", expect_rc=None).rc == NOT_AUTHORIZED_V3
    c = broker.raw(m.V5)
    assert c.connect("plain-2", expect_rc=None).rc == NOT_AUTHORIZED_V5


@pytest.mark.ternd_only
@pytest.mark.broker_config("accept_protocol_versions 5")
def test_accept_protocol_versions_5_only(broker):
    """accept_protocol_versions 5 (mosquitto 2.1): 3.1.1 and 3.1 get CONNACK
    1 (unacceptable protocol version) [MQTT-3.1.2-2]; v5 gets in."""
    c = broker.raw(m.V311)
    assert c.connect("v4", expect_rc=None).rc == 1
    c = broker.raw(m.V31)
    assert c.connect("v3", expect_rc=None).rc == 1
    c = broker.raw(m.V5)
    c.connect("v5")
    c.disconnect()


@pytest.mark.ternd_only
@pytest.mark.broker_config("accept_protocol_versions 3,4 # not 5")
def test_accept_protocol_versions_without_5(broker):
    """accept_protocol_versions 3,4: a v5 client gets CONNACK 0x84."""
    c = broker.raw(m.V5)
    assert c.connect("v5", expect_rc=None).rc == 0x84
    c = broker.raw(m.V311)
    c.connect("v4")
    c.disconnect()


@pytest.mark.ternd_only
@pytest.mark.broker_config("global_max_clients 2", "storage memory")
def test_global_max_clients_counts_kept_sessions(broker):
    """global_max_clients 2 (mosquitto 2.1): two persistent sessions, both
    offline, still count: a third client id is refused (v5 0x89 server
    busy, 3.1.1 3), while a kept session resumes and a clean one, once the
    others end, gets in."""
    for cid in ("gmc-1", "gmc-2"):
        c = broker.raw(m.V311)
        c.connect(cid, clean=False)
        c.disconnect()
    c = broker.raw(m.V5)
    assert c.connect("gmc-3", expect_rc=None).rc == 0x89
    c = broker.raw(m.V311)
    assert c.connect("gmc-3", expect_rc=None).rc == 3
    c = broker.raw(m.V311)
    assert c.connect("gmc-1", clean=False).session_present
    c.disconnect()
    # A clean start of a kept session ends it and begins another: no more
    # sessions than before, so it gets in.
    c = broker.raw(m.V311)
    c.connect("gmc-2", clean=True)
    c.disconnect()
    time.sleep(0.1)
    c = broker.raw(m.V311)
    c.connect("gmc-4")
    c.disconnect()


@pytest.mark.ternd_only
@pytest.mark.broker_config("global_max_connections 1")
def test_global_max_connections(broker):
    """global_max_connections 1 (mosquitto 2.1): a second connection is
    closed at once; once the first is gone, another gets in."""
    # The fixture's probe that the port is open was a connection too: it
    # counts until the broker has seen it close.
    a = None
    for _ in range(20):
        try:
            a = broker.raw(m.V311)
            a.connect("gmx-1")
            break
        except m.Closed:
            a = None
            time.sleep(0.05)
    assert a is not None
    b = broker.raw(m.V311)
    b.send(m.connect("gmx-2"))
    assert b.wait_closed(2) == []
    a.disconnect()
    time.sleep(0.1)
    c = broker.raw(m.V311)
    c.connect("gmx-3")
    c.disconnect()


@pytest.mark.ternd_only
@pytest.mark.parametrize("line", ["auth_plugin /usr/lib/x86_64-linux-gnu/mosquitto_auth.so",
                                  "plugin /usr/lib/mosquitto_dynamic_security.so",
                                  "global_plugin /usr/lib/p.so"])
def test_plugins_are_refused_naming_what_to_use(tmp_path, line):
    """auth_plugin / plugin / global_plugin: ternd cannot load mosquitto's
    plugins; it does not start, and says what to use instead."""
    conf = tmp_path / "plugin.conf"
    conf.write_text("listener %d 127.0.0.1\n%s\n" % (free_port(), line))
    cp = subprocess.run([broker_binary(), "-c", str(conf)], capture_output=True, timeout=5,
                        stdin=subprocess.DEVNULL)
    assert cp.returncode != 0
    err = cp.stderr.decode()
    assert "plugin.conf:2:" in err and line.split()[0] in err, err
    assert "password_file" in err and "acl_file" in err, err
