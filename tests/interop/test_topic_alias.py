"""Outbound topic aliases (MQTT 5.0 section 3.3.2.3.4): when a client
announces Topic Alias Maximum > 0 in CONNECT, ternd gives the topics it sends
that client aliases and sends each topic name only when it sets the alias.

The mappings live in one Network Connection [MQTT-3.3.2-7]; an alias is never
0 [MQTT-3.3.2-8] nor above the client's maximum [MQTT-3.3.2-11]. The bound is
also capped by `max_topic_alias_broker` (mosquitto 2.1's directive, default
10; 0 disables). mosquitto assigns aliases only from 2.1 on: Debian's 2.0.11
sends none, so the tests that expect aliases are marked for it.
"""

import json
import subprocess

import pytest

import mqtt_raw as m
from helpers import PahoClient, props, unique
from paho.mqtt.packettypes import PacketTypes
from test_websockets import mqttjs  # noqa: F401  (fixture)

NO_ALIASES = "mosquitto assigns topic aliases from 2.1 on; 2.0.11 sends none"


class Resolver:
    """The receiver's side of 3.3.2.3.4, written from the specification:
    a topic name with an alias sets the mapping, an empty topic name uses
    it. Checks every rule on the way."""

    def __init__(self, maximum):
        self.maximum = maximum
        self.map = {}

    def topic(self, p):
        alias = p.props.get(m.TOPIC_ALIAS)
        if alias is None:
            assert p.topic != "", "empty topic name without an alias [MQTT-4.7.3-1]"
            return p.topic
        assert 0 < alias <= self.maximum, "alias %d [MQTT-3.3.2-8] [MQTT-3.3.2-11]" % alias
        if p.topic:
            self.map[alias] = p.topic
            return p.topic
        assert alias in self.map, "alias %d used before it was set" % alias
        return self.map[alias]


def _sub(broker, maximum, filt, qos=0, cid=None, **kw):
    c = broker.raw(m.V5)
    properties = [(m.TOPIC_ALIAS_MAXIMUM, maximum)] if maximum is not None else None
    c.connect(cid or unique("alias"), properties=properties, **kw)
    c.subscribe([(filt, qos)])
    return c


def _pub(broker, items, qos=0):
    p = broker.raw(m.V311)
    p.connect(unique("aliasp"))
    for i, t in enumerate(items):
        p.publish(t, b"m%d" % i, qos=qos, pid=i + 1)
    p.disconnect()


@pytest.mark.mosquitto_nonconformant(NO_ALIASES)
def test_second_publish_carries_alias_and_empty_topic(broker):
    """Raw bytes: the first PUBLISH of a topic carries its name and an alias;
    the next ones to that topic carry the same alias and an empty topic
    name (3.3.2.3.4). Another topic gets another alias."""
    base = unique("al")
    sub = _sub(broker, 5, base + "/#")
    _pub(broker, [base + "/a", base + "/a", base + "/b", base + "/a", base + "/b"])
    got = [sub.recv_type(m.PUBLISH) for _ in range(5)]
    r = Resolver(5)
    assert [r.topic(p) for p in got] == [base + "/a", base + "/a", base + "/b",
                                        base + "/a", base + "/b"]
    assert [p.payload for p in got] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    a, b = got[0].props[m.TOPIC_ALIAS], got[2].props[m.TOPIC_ALIAS]
    assert a != b
    assert got[0].topic == base + "/a" and got[2].topic == base + "/b"
    assert [(p.topic, p.props.get(m.TOPIC_ALIAS)) for p in (got[1], got[3], got[4])] == [
        ("", a), ("", a), ("", b)]
    # The encoded topic of an aliased PUBLISH is two zero bytes.
    assert got[1].body[:2] == b"\x00\x00"


def test_no_aliases_when_the_client_announces_none(broker):
    """Without Topic Alias Maximum (default 0) or with 0, no PUBLISH carries
    an alias [MQTT-3.3.2-11]: every one has its topic name."""
    base = unique("al")
    subs = [_sub(broker, None, base), _sub(broker, 0, base)]
    _pub(broker, [base] * 3)
    for sub in subs:
        for _ in range(3):
            p = sub.recv_type(m.PUBLISH)
            assert p.topic == base and m.TOPIC_ALIAS not in p.props, p


@pytest.mark.ternd_only
@pytest.mark.broker_config("max_topic_alias_broker 2")
def test_aliases_capped_by_max_topic_alias_broker_least_recently_used_reassigned(broker):
    """max_topic_alias_broker 2 caps a client's Topic Alias Maximum of 10:
    aliases stay in 1..2. A third topic takes the least recently used alias
    over, with its topic name (a PUBLISH with a name and a used alias
    replaces the mapping, 3.3.2.3.4); the receiver's mapping always gives
    the right topic."""
    base = unique("al")
    sub = _sub(broker, 10, base + "/#")
    order = ["a", "b", "a", "c", "a", "b", "c", "c"]
    _pub(broker, [base + "/" + x for x in order])
    got = [sub.recv_type(m.PUBLISH) for _ in order]
    r = Resolver(2)
    assert [r.topic(p) for p in got] == [base + "/" + x for x in order]
    assert {p.props.get(m.TOPIC_ALIAS) for p in got} == {1, 2}
    # "c" replaced "b" (the least recently used), so the "b" after it and
    # the first "c" both carry their names; the last "c" is aliased.
    assert got[3].topic == base + "/c" and got[5].topic == base + "/b"
    assert got[7].topic == ""


@pytest.mark.ternd_only
@pytest.mark.broker_config("max_topic_alias_broker 0")
def test_max_topic_alias_broker_0_disables(broker):
    """max_topic_alias_broker 0: no aliases whatever the client accepts."""
    base = unique("al")
    sub = _sub(broker, 10, base)
    _pub(broker, [base] * 3)
    for _ in range(3):
        p = sub.recv_type(m.PUBLISH)
        assert p.topic == base and m.TOPIC_ALIAS not in p.props, p


@pytest.mark.mosquitto_nonconformant(NO_ALIASES)
def test_resumed_session_on_a_new_connection_starts_over(broker):
    """Topic Alias mappings last only for their Network Connection
    [MQTT-3.3.2-7]: after a reconnect (session resumed) the first PUBLISH of
    a topic that had an alias carries its name again."""
    cid, t = unique("al"), unique("al/t")
    c = broker.raw(m.V5)
    c.connect(cid, clean=False, properties=[(m.TOPIC_ALIAS_MAXIMUM, 5),
                                            (m.SESSION_EXPIRY, 300)])
    c.subscribe([(t, 1)])
    _pub(broker, [t, t], qos=1)
    first = c.recv_publish()
    second = c.recv_publish()
    assert first.topic == t and second.topic == "" and m.TOPIC_ALIAS in second.props
    c.disconnect()
    _pub(broker, [t], qos=1)  # queued for the offline session
    d = broker.raw(m.V5)
    ack = d.connect(cid, clean=False, properties=[(m.TOPIC_ALIAS_MAXIMUM, 5),
                                                  (m.SESSION_EXPIRY, 300)])
    assert ack.session_present
    p = d.recv_publish()
    assert p.topic == t, p
    d.disconnect()


def test_alias_never_pushes_a_publish_over_maximum_packet_size(broker):
    """The alias property (3 bytes) is counted in the size of the PUBLISH
    against the client's Maximum Packet Size [MQTT-3.1.2-24]; a message that
    fits only without it is sent without it, and since that PUBLISH set no
    mapping, the next one to the topic carries the name again."""
    t = unique("al/t")
    payload = b"p" * 20
    # Fixed header 2, topic 2 + len, property length 1, payload.
    exact = 2 + 2 + len(t) + 1 + len(payload)
    c = broker.raw(m.V5)
    c.connect(unique("al"), properties=[(m.TOPIC_ALIAS_MAXIMUM, 5),
                                        (m.MAXIMUM_PACKET_SIZE, exact)])
    c.subscribe([(t, 0)])
    p = broker.raw(m.V311)
    p.connect(unique("aliasp"))
    p.publish(t, payload)
    p.publish(t, payload)
    p.disconnect()
    r = Resolver(5)
    for _ in range(2):
        got = c.recv_type(m.PUBLISH)
        assert len(got.raw) <= exact, got
        assert r.topic(got) == t and got.payload == payload


@pytest.mark.mosquitto_nonconformant(NO_ALIASES)
def test_server_topic_alias_paho(broker):
    """Paho's interoperability test test_server_topic_alias: a paho v5
    client with TopicAliasMaximum 1 subscribes and publishes at QoS 0, 1, 2
    to one topic; the first message it receives sets the alias (topic name
    and TopicAlias > 0), the other two carry that alias and an empty topic
    (paho-mqtt reports the topic as sent). Without TopicAliasMaximum, or with
    0, no message carries one."""
    t = unique("paho/alias")
    c = PahoClient(broker, version=5,
                   connect_props=props(PacketTypes.CONNECT, TopicAliasMaximum=1))
    c.subscribe(t, 2)
    for qos in range(3):
        c.publish(t, b"topic alias 1", qos)
    msgs = c.get_n(3)
    c.disconnect()
    assert len(msgs) == 3
    alias = getattr(msgs[0].properties, "TopicAlias", 0)
    assert alias > 0 and msgs[0].topic == t
    for msg in msgs[1:]:
        assert msg.properties.TopicAlias == alias and msg.topic == ""
    for cp in (props(PacketTypes.CONNECT), props(PacketTypes.CONNECT, TopicAliasMaximum=0)):
        c = PahoClient(broker, version=5, connect_props=cp)
        c.subscribe(t, 2)
        for qos in range(3):
            c.publish(t, b"topic alias 2", qos)
        msgs = c.get_n(3)
        c.disconnect()
        assert len(msgs) == 3
        for msg in msgs:
            assert not hasattr(msg.properties, "TopicAlias") and msg.topic == t


@pytest.mark.ternd_only
def test_mqttjs_resolves_the_aliases_ternd_sends(broker, mqttjs):
    """An independent client that resolves aliases (MQTT.js, announcing
    topicAliasMaximum 5) sees the right topic on the messages it hands over
    on arrival (QoS 0 and 1), and every message came aliased. (MQTT.js
    emits a QoS 2 message at PUBREL from the packet as it arrived, so its
    topic stays empty when aliased: a quirk of MQTT.js 5.x.)"""
    t = unique("js/alias")
    r = subprocess.run(["node", mqttjs, "mqtt://127.0.0.1:%d" % broker.port, "5", t,
                        json.dumps({"topicAliasMaximum": 5})],
                       capture_output=True, timeout=20)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    report = json.loads(out)
    got = report["received"]
    assert sorted(x["qos"] for x in got) == [0, 1, 2]
    for x in got:
        assert x["topic"] == t or (x["qos"] == 2 and x["topic"] == ""), report
    assert all(x.get("alias") for x in got), report
