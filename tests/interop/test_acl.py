"""acl_file and SUBSCRIBE: a subscription is granted when the ACL lets the
client read at least one topic its filter can match, and every delivery
(live and retained) is then checked against the ACL, so the denied topics
are dropped one by one. A common file, "deny a few topics, allow the rest",
must not lock wildcard subscribers out.

Mosquitto 2.0.11 is the reference for what is delivered: it grants every
SUBSCRIBE (src/security_default.c answers MOSQ_ERR_SUCCESS for
MOSQ_ACL_SUBSCRIBE: "FIXME - implement ACL subscription strings") and
checks read access for each message it is about to send. tern goes one
step further and refuses a filter under which nothing can ever be read
(SUBACK 0x80 [MQTT-3.9.3-2]; in v5 too, Unspecified error, section 3.9.3),
which is what the Paho interoperability test test_subscribe_failure expects
(0x80 in both versions); those tests are marked as mosquitto
non-conformances."""

import pytest

import mqtt_raw as m

# The acl_file of the Paho interoperability tests' broker, in the issue.
DENY_FEW = """\
topic deny test/nosubscribe
topic readwrite #
"""

PATTERNS = """\
user pub
topic write #

pattern read dev/%c/#
pattern deny dev/%c/private
pattern readwrite users/%u/#
"""


def acl_broker(tmp_path, text):
    from conftest import Broker
    acl = tmp_path / "acl"
    acl.write_text(text)
    b = Broker(tmp_path, 2, ["acl_file " + str(acl), "allow_anonymous true"])
    b.start()
    return b


@pytest.fixture
def deny_few(tmp_path):
    b = acl_broker(tmp_path, DENY_FEW)
    yield b
    b.stop()


@pytest.fixture
def patterns(tmp_path):
    b = acl_broker(tmp_path, PATTERNS)
    yield b
    b.stop()


def topics_of(packets):
    return sorted(p.topic for p in packets if p.type == m.PUBLISH)


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_wildcard_subscribe_granted_when_only_some_topics_are_denied(deny_few, version):
    """`topic deny test/nosubscribe` then `topic readwrite #`: SUBSCRIBE to
    "#", "test/#" and "+/+" is granted (the QoS asked for, [MQTT-3.9.3-1])
    and the denied topic is dropped at delivery, retained or not."""
    w = deny_few.raw(version)
    w.connect("writer")
    w.publish("test/nosubscribe", b"r-denied", qos=1, retain=True)
    w.publish("test/open", b"r-open", qos=1, retain=True)
    for i, f in enumerate(["#", "test/#", "+/+"]):
        s = deny_few.raw(version)
        s.connect("sub%d" % i)
        ack = s.subscribe([(f, 1)])
        assert ack.codes == [1], "SUBACK for %r: %r" % (f, ack.codes)
        # Retained: only the readable one.
        assert topics_of(s.early + s.recv_all(0.5)) == ["test/open"]
        w.publish("test/nosubscribe", b"denied", qos=1, pid=2)
        w.publish("test/live", b"live", qos=1, pid=3)
        got = [p for p in s.recv_all(0.8) if p.type == m.PUBLISH]
        assert [(p.topic, p.payload) for p in got] == [("test/live", b"live")]
        s.disconnect()
    w.disconnect()


@pytest.mark.mosquitto_nonconformant(
    "mosquitto 2.0.11 grants every SUBSCRIBE and only filters deliveries")
@pytest.mark.parametrize("version,code", [(m.V311, 0x80), (m.V5, 0x80)])
def test_subscribe_refused_when_no_topic_of_the_filter_is_readable(deny_few, version, code):
    """The denied topic itself, and "$SYS/#" (a rule "#" does not match
    topics starting with '$' [MQTT-4.7.2-1]), can never deliver anything:
    refused with 0x80 (both versions, as Paho's test_subscribe_failure
    wants), while the other filters of the
    same SUBSCRIBE are granted [MQTT-3.9.3-1]."""
    s = deny_few.raw(version)
    s.connect("refused")
    ack = s.subscribe([("test/nosubscribe", 1), ("test/+", 1), ("$SYS/#", 0),
                       ("test/nosubscribe/#", 2), ("$share/g/test/nosubscribe", 1)])
    assert ack.codes == [code, 1, code, 2, code]
    s.disconnect()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_pattern_acl_filters_deliveries_of_wildcard_subscriptions(patterns, version):
    """`pattern read dev/%c/#` with `pattern deny dev/%c/private`: a
    subscriber on "dev/#" is granted and gets only its own, non-private
    topics; %u works the same way for the user name."""
    s = patterns.raw(version)
    s.connect("c1", username="u1")
    assert s.subscribe([("dev/#", 1), ("users/+/#", 1)]).codes == [1, 1]
    w = patterns.raw(version)
    w.connect("w", username="pub")
    for i, t in enumerate(["dev/c1/x", "dev/c1/private", "dev/c2/x", "users/u1/a",
                           "users/u2/a"]):
        w.publish(t, t.encode(), qos=1, pid=i + 1)
    assert topics_of(s.recv_all(0.8)) == ["dev/c1/x", "users/u1/a"]
    w.disconnect()
    s.disconnect()


@pytest.mark.mosquitto_nonconformant(
    "mosquitto 2.0.11 grants every SUBSCRIBE and only filters deliveries")
@pytest.mark.parametrize("version,code", [(m.V311, 0x80), (m.V5, 0x80)])
def test_pattern_subscribe_refused_outside_the_clients_own_space(patterns, version, code):
    """With %c / %u substituted, a filter is refused when no topic it can
    match is readable: another client's space, the denied private topic,
    another user's space; an anonymous client gets nothing from a %u
    pattern."""
    s = patterns.raw(version)
    s.connect("c1", username="u1")
    ack = s.subscribe([("dev/c2/#", 1), ("dev/c1/private", 1), ("dev/+/private", 1),
                       ("dev/c1/+", 1), ("users/u2/#", 1), ("users/u1/x", 1),
                       ("+/+/x", 1)])
    assert ack.codes == [code, code, code, 1, code, 1, 1]
    s.disconnect()
    a = patterns.raw(version)
    a.connect("c1-anon")
    ack = a.subscribe([("users/#", 1), ("dev/c1-anon/#", 1)])
    assert ack.codes == [code, 1]
    a.disconnect()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_queued_messages_rechecked_after_acl_reload(tmp_path, version):
    """Messages queued for an offline session are checked against the ACL
    again when they are sent: after an acl_file reload (SIGHUP) that
    revokes read access to topic/two, the queued topic/two message is not
    delivered on reconnect, the topic/one one is (as mosquitto does, its
    test 09-acl-change)."""
    import os
    import signal
    import time
    from conftest import Broker
    acl = tmp_path / "acl"
    acl.write_text("user reader\ntopic readwrite topic/one\ntopic readwrite topic/two\n"
                   "user writer\ntopic readwrite topic/#\n")
    b = Broker(tmp_path, 2, ["acl_file " + str(acl), "allow_anonymous true"])
    b.start()
    try:
        persist = {"clean": False}
        if version == m.V5:
            persist["properties"] = [(m.SESSION_EXPIRY, 300)]
        s = b.raw(version)
        s.connect("acl-queued", username="reader", **persist)
        assert s.subscribe([("topic/one", 1), ("topic/two", 1)]).codes == [1, 1]
        s.disconnect()
        w = b.raw(version)
        w.connect("acl-writer", username="writer")
        w.publish("topic/one", b"one", qos=1, pid=1)
        w.publish("topic/two", b"two", qos=1, pid=2)
        w.disconnect()
        acl.write_text("user reader\ntopic readwrite topic/one\n"
                       "user writer\ntopic readwrite topic/#\n")
        os.kill(b.proc.pid, signal.SIGHUP)
        time.sleep(0.5)  # the reload runs on the main thread
        s = b.raw(version)
        assert s.connect("acl-queued", username="reader", **persist).session_present
        got = [p for p in s.recv_all(0.8) if p.type == m.PUBLISH]
        for p in got:
            s.ack(p)
        assert [(p.topic, p.payload) for p in got] == [("topic/one", b"one")]
        s.disconnect()
    finally:
        b.stop()
