"""Clients may not write to the broker's own `$` topics. "The Server SHOULD
prevent Clients from using such Topic Names to exchange messages with other
Clients" (MQTT 5.0 and 3.1.1, section 4.7.2, a sentence without a statement
id). As in mosquitto 2.0.11 (src/security.c, acl__check_dollar): a PUBLISH
to a topic beginning with "$SYS" is refused, except
"$SYS/broker/connection/+/state" (where bridges report their state), and a
PUBLISH to a topic beginning with "$share" is always refused ("$share/..."
names shared subscriptions, section 4.8.2; no client can subscribe to such a
topic name). Refused means what an ACL denial means: v5 says so with PUBACK
/ PUBREC 0x87 Not authorized (section 3.4.2.1 / 3.5.2.1; QoS 0 is dropped);
3.1.1 cannot say so, so the message is acknowledged as usual and dropped.
Nothing is delivered and nothing is retained; the connection stays open."""

import pytest

import mqtt_raw as m

REFUSED = ["$SYS/broker/uptime", "$SYS/x/y", "$share/g/x", "$SYSTEM/a", "$shared/b"]
OURS = (b"q0", b"q1", b"q2")


def ours(packets, topic):
    """Our messages on topic (the broker publishes its own $SYS topics)."""
    return [p for p in packets
            if p.type == m.PUBLISH and p.topic == topic and p.payload in OURS]


def listen(broker, version, filters):
    s = broker.raw(version)
    s.connect("watcher-%d" % version)
    ack = s.subscribe([(f, 1) for f in filters])
    assert all(c < 0x80 for c in ack.codes), ack.codes
    return s


@pytest.mark.parametrize("topic", REFUSED)
def test_v5_publish_to_sys_or_share_gets_0x87_and_is_not_delivered(broker, topic):
    """QoS 1: PUBACK 0x87; QoS 2: PUBREC 0x87, which ends the exchange
    (no PUBREL, [MQTT-4.3.3-4] only follows a PUBREC < 0x80); QoS 0:
    dropped. Retained ones are not stored."""
    watch = listen(broker, m.V5, ["$SYS/#", "$share/g/x", "x", "$SYSTEM/#", "$shared/#"])
    c = broker.raw(m.V5)
    c.connect("writer5")
    c.send(m.publish(topic, b"q1", qos=1, pid=1, version=m.V5))
    ack = c.recv_type(m.PUBACK)
    assert (ack.pid, ack.rc) == (1, 0x87)
    c.send(m.publish(topic, b"q2", qos=2, pid=2, retain=True, version=m.V5))
    rec = c.recv_type(m.PUBREC)
    assert (rec.pid, rec.rc) == (2, 0x87)
    c.send(m.publish(topic, b"q0", qos=0, retain=True, version=m.V5))
    assert c.is_open()
    assert ours(watch.recv_all(0.6), topic) == []
    late = broker.raw(m.V5)
    late.connect("late5")
    late.subscribe([(topic, 1)] if topic.startswith("$SYS") else [("$SYS/#", 1)])
    assert ours(late.early + late.recv_all(0.5), topic) == []
    for x in (c, watch, late):
        x.disconnect()


@pytest.mark.parametrize("topic", ["$SYS/broker/uptime", "$share/g/x"])
def test_v311_publish_to_sys_or_share_is_acknowledged_and_dropped(broker, topic):
    """3.1.1 has no reason codes: PUBACK, PUBREC / PUBREL / PUBCOMP as for
    any message, and the message goes nowhere."""
    watch = listen(broker, m.V311, ["$SYS/#", "$share/g/x", "x"])
    c = broker.raw(m.V311)
    c.connect("writer3")
    c.send(m.publish(topic, b"q1", qos=1, pid=1, retain=True))
    assert c.recv_type(m.PUBACK).raw == bytes([0x40, 2, 0, 1])
    c.send(m.publish(topic, b"q2", qos=2, pid=2))
    assert c.recv_type(m.PUBREC).raw == bytes([0x50, 2, 0, 2])
    c.send(m.pubrel(2))
    assert c.recv_type(m.PUBCOMP).raw == bytes([0x70, 2, 0, 2])
    c.send(m.publish(topic, b"q0", qos=0))
    assert c.is_open()
    assert ours(watch.recv_all(0.6), topic) == []
    c.disconnect()
    watch.disconnect()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_bridge_state_topic_under_sys_stays_writable(broker, version):
    """$SYS/broker/connection/<id>/state is where a mosquitto bridge
    publishes its state (notifications, on by default): writable, as in
    mosquitto."""
    watch = listen(broker, version, ["$SYS/broker/connection/+/state"])
    c = broker.raw(version)
    c.connect("bridge-%d" % version)
    ack = c.publish("$SYS/broker/connection/b1/state", b"1", qos=1)
    assert ack.rc == 0
    got = [p.payload for p in watch.recv_all(0.6) if p.type == m.PUBLISH]
    assert got == [b"1"]
    c.disconnect()
    watch.disconnect()


@pytest.mark.ternd_only
def test_acl_grant_opens_a_sys_topic_but_never_share(tmp_path):
    """An acl_file that grants write on a $SYS topic explicitly opens it
    (a rule starting with a wildcard matches no '$' topic [MQTT-4.7.2-1],
    so `topic readwrite #` does not); "$share" topic names stay refused
    whatever the ACL says. mosquitto refuses both whatever the ACL."""
    from conftest import Broker
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite #\ntopic readwrite $SYS/app/#\n"
                   "topic readwrite $share/#\n")
    b = Broker(tmp_path, 1, ["acl_file " + str(acl), "allow_anonymous true"])
    b.start()
    try:
        watch = listen(b, m.V5, ["$SYS/#"])
        c = b.raw(m.V5)
        c.connect("w")
        assert c.publish("$SYS/app/status", b"ok", qos=1).rc == 0
        assert c.publish("$SYS/broker/uptime", b"no", qos=1, pid=2).rc == 0x87
        assert c.publish("$share/g/x", b"no", qos=1, pid=3).rc == 0x87
        got = [(p.topic, p.payload) for p in watch.recv_all(0.6) if p.type == m.PUBLISH
               and p.topic.startswith("$SYS/app")]
        assert got == [("$SYS/app/status", b"ok")]
        c.disconnect()
        watch.disconnect()
    finally:
        b.stop()


@pytest.mark.ternd_only
@pytest.mark.parametrize("version,code", [(m.V311, 0x05), (m.V5, 0x87)])
def test_will_on_sys_topic_is_refused_at_connect(broker, version, code):
    """A will is a publish to its topic, so the same rule applies, the way
    ternd applies the ACL to wills: at CONNECT (CONNACK 0x87 / 3.1.1 5 Not
    authorized). mosquitto accepts the CONNECT and never publishes the
    will."""
    c = broker.raw(version)
    ack = c.connect("will-sys", expect_rc=None, will={"topic": "$SYS/fake", "payload": b"w"})
    assert ack.rc == code
    ok = broker.raw(version)
    ok.connect("will-state", will={"topic": "$SYS/broker/connection/will-state/state",
                                   "payload": b"0"})
    ok.disconnect()
