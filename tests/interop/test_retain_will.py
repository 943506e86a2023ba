"""Retained messages and Will messages."""

import time

import pytest

import mqtt_raw as m
from helpers import PahoClient, unique


def client(broker, version=m.V311, cid=None, **kw):
    c = broker.raw(version)
    c.connect(cid or unique("c"), **kw)
    return c


def retained_on_subscribe(broker, topic, version=m.V311, qos=1):
    """Subscribe a fresh client and return the PUBLISHes it gets at once."""
    c = client(broker, version)
    c.subscribe([(topic, qos)])
    got = [p for p in c.early + c.recv_all(0.4) if p.type == m.PUBLISH]
    for p in got:
        c.ack(p)
    c.disconnect()
    return got


# ------------------------------------------------------------------ retained

@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_retained_message_delivered_on_subscribe_with_retain_flag(broker, version):
    """[MQTT-3.3.1-5] a RETAIN 1 PUBLISH is stored; [MQTT-3.3.1-6] a new
    subscription receives it, with RETAIN 1 [MQTT-3.3.1-8] (v5: Retain
    Handling 0 [MQTT-3.3.1-9]), at min(QoS, granted)."""
    t = unique("ret")
    pub = client(broker, version)
    pub.publish(t, b"stored", qos=1, retain=True)
    got = retained_on_subscribe(broker, t, version, qos=1)
    assert [(p.topic, p.payload, p.retain, p.qos) for p in got] == [(t, b"stored", True, 1)]
    got = retained_on_subscribe(broker, t, version, qos=0)
    assert got[0].qos == 0
    pub.publish(t, b"", retain=True)
    pub.disconnect()


def test_retained_message_replaced(broker):
    """[MQTT-3.3.1-5]: a new RETAIN 1 message replaces the stored one; a
    RETAIN 0 message neither replaces nor removes it [MQTT-3.3.1-12]."""
    t = unique("rep")
    pub = client(broker)
    pub.publish(t, b"first", qos=1, retain=True)
    pub.publish(t, b"second", qos=1, retain=True)
    pub.publish(t, b"not-retained", qos=1, retain=False)
    got = retained_on_subscribe(broker, t)
    assert [p.payload for p in got] == [b"second"]
    pub.publish(t, b"", retain=True)
    pub.disconnect()


def test_retained_message_cleared_by_empty_payload(broker):
    """[MQTT-3.3.1-10] a RETAIN 1 PUBLISH with a zero-byte payload removes the
    retained message and is itself forwarded normally to current subscribers;
    [MQTT-3.3.1-11] it is not stored: later subscribers get nothing."""
    t = unique("clr")
    pub = client(broker)
    pub.publish(t, b"to-clear", qos=1, retain=True)
    live = client(broker)
    live.subscribe([(t, 1)])
    first = [p for p in live.early + live.recv_all(0.4) if p.type == m.PUBLISH]
    assert [p.payload for p in first] == [b"to-clear"]
    for p in first:
        live.ack(p)
    pub.publish(t, b"", qos=1, retain=True)
    got = live.recv_publish()
    assert got.payload == b""
    assert retained_on_subscribe(broker, t) == []
    live.disconnect()
    pub.disconnect()


def test_live_message_forwarded_with_retain_0_v311(broker):
    """[MQTT-3.3.1-9] (3.1.1): a message sent because it matches an
    established subscription has RETAIN 0, whatever the publisher set."""
    t = unique("live")
    sub = client(broker)
    sub.subscribe([(t, 1)])
    pub = client(broker)
    pub.publish(t, b"r", qos=1, retain=True)
    got = sub.recv_publish()
    assert got.payload == b"r" and got.retain is False
    pub.publish(t, b"", retain=True)
    sub.disconnect()
    pub.disconnect()


def test_retained_messages_for_wildcard_subscription(broker):
    """[MQTT-3.3.1-6]: a new wildcard subscription receives the retained
    message of every matching topic."""
    b = unique("rw")
    pub = client(broker)
    for t in ("a", "b/c"):
        pub.publish(b + "/" + t, t.encode(), qos=1, retain=True)
    got = retained_on_subscribe(broker, b + "/#")
    assert sorted(p.topic for p in got) == [b + "/a", b + "/b/c"]
    assert all(p.retain for p in got)
    for t in ("a", "b/c"):
        pub.publish(b + "/" + t, b"", retain=True)
    pub.disconnect()


@pytest.mark.broker_config("retain_available false")
def test_retain_unavailable_advertised_and_retained_publish_disconnected(broker):
    """v5 3.2.2.3.5: retain_available false → CONNACK Retain Available 0; a
    PUBLISH with RETAIN 1 is then a Protocol Error and the Server sends
    DISCONNECT 0x9A (Retain not supported) and closes ([MQTT-3.2.2-14] is
    the client's duty it broke)."""
    c = broker.raw(m.V5)
    ack = c.connect(unique())
    assert ack.props.get(m.RETAIN_AVAILABLE) == 0
    c.send(m.publish(unique("ra"), b"x", qos=0, retain=True, version=m.V5))
    pkts = c.wait_closed(3)
    assert [(p.type, p.rc) for p in pkts] == [(m.DISCONNECT, 0x9A)], pkts


# --------------------------------------------------------------------- wills

def will_watcher(broker, topic, version=m.V311):
    w = client(broker, version)
    w.subscribe([(topic, 2)])
    return w


@pytest.mark.parametrize("version", [m.V31, m.V311, m.V5])
def test_will_sent_on_abnormal_disconnect_with_qos_and_retain(broker, version):
    """[MQTT-3.1.2-8] the Will Message is published when the connection closes
    without DISCONNECT, at the Will QoS (3.1.2.6), and retained when Will
    Retain is 1 [MQTT-3.1.2-17] (v5 [MQTT-3.1.2-15])."""
    t = unique("will")
    w = will_watcher(broker, t)
    c = broker.raw(version)
    c.connect(unique("w"), will={"topic": t, "payload": b"gone", "qos": 1,
                                 "retain": True})
    c.abort()
    got = w.recv_publish()
    assert got.topic == t and got.payload == b"gone" and got.qos == 1
    later = retained_on_subscribe(broker, t, qos=2)
    assert [(p.payload, p.retain, p.qos) for p in later] == [(b"gone", True, 1)]
    c2 = client(broker)
    c2.publish(t, b"", retain=True)
    c2.disconnect()
    w.disconnect()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_will_not_sent_on_normal_disconnect(broker, version):
    """[MQTT-3.1.2-10] / [MQTT-3.14.4-3] (v5 [MQTT-3.14.4-3], DISCONNECT 0x00):
    the Will Message is discarded on a DISCONNECT."""
    t = unique("nowill")
    w = will_watcher(broker, t)
    c = broker.raw(version)
    c.connect(unique("w"), will={"topic": t, "payload": b"no", "qos": 1})
    c.disconnect(0 if version == m.V5 else None)
    assert w.no_packet(0.5)
    w.disconnect()


# mosquitto 2.0.11 drops the Will when it closes a connection for a second
# CONNECT, although [MQTT-3.1.2-8] keeps it unless a DISCONNECT was received.
@pytest.mark.mosquitto_nonconformant(
    "no Will after closing for a protocol error (second CONNECT) [MQTT-3.1.2-8]")
def test_will_sent_when_server_closes_on_protocol_error(broker):
    """3.1.2.5: situations where the Will is published include "the Server
    closes the Network Connection because of a protocol error" (here a second
    CONNECT, [MQTT-3.1.0-2])."""
    t = unique("pwill")
    w = will_watcher(broker, t)
    c = broker.raw(m.V311)
    cid = unique("w")
    c.connect(cid, will={"topic": t, "payload": b"violated", "qos": 0})
    c.send(m.connect(cid))
    c.wait_closed(3)
    assert w.recv_publish().payload == b"violated"
    w.disconnect()


def test_v5_will_delay_interval_delays_the_will(broker):
    """v5 [MQTT-3.1.2-8] the Will is published after the Will Delay Interval
    (here 1 s, session expiry 10 s) has elapsed, not at once."""
    t = unique("wd")
    w = will_watcher(broker, t, m.V5)
    c = broker.raw(m.V5)
    c.connect(unique("w"), properties=[(m.SESSION_EXPIRY, 10)],
              will={"topic": t, "payload": b"late", "qos": 1,
                    "properties": [(m.WILL_DELAY, 1)]})
    c.abort()
    t0 = time.monotonic()
    got = w.recv_publish(timeout=4)
    assert got.payload == b"late"
    assert time.monotonic() - t0 >= 0.8, "will sent before its delay"
    w.disconnect(0)


def test_v5_will_not_sent_if_client_reconnects_within_delay(broker):
    """v5 [MQTT-3.1.3-9]: if a new connection to the session is made before the
    Will Delay Interval has passed, the Will MUST NOT be sent."""
    t, cid = unique("wr"), unique("w")
    w = will_watcher(broker, t, m.V5)
    c = broker.raw(m.V5)
    c.connect(cid, properties=[(m.SESSION_EXPIRY, 10)],
              will={"topic": t, "payload": b"never", "qos": 1,
                    "properties": [(m.WILL_DELAY, 2)]})
    c.abort()
    c = broker.raw(m.V5)
    c.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 10)])
    assert w.no_packet(2.6)
    c.disconnect(0)
    w.disconnect(0)


@pytest.mark.parametrize("rc", [0x04, pytest.param(0x80, marks=pytest.mark.mosquitto_nonconformant(
    "discards the Will on DISCONNECT 0x80; v5 [MQTT-3.1.2-8] only lets 0x00 delete it"))])
def test_v5_disconnect_with_non_zero_reason_sends_will(broker, rc):
    """v5 3.14.2.1: DISCONNECT 0x04 (Disconnect with Will Message) publishes
    the Will; only 0x00 discards it (v5 [MQTT-3.1.2-10], [MQTT-3.14.4-3]),
    so 0x80 (Unspecified error) publishes it too."""
    t = unique("w4")
    w = will_watcher(broker, t, m.V5)
    c = broker.raw(m.V5)
    c.connect(unique("w"), will={"topic": t, "payload": b"asked", "qos": 0})
    c.disconnect(rc)
    assert w.recv_publish().payload == b"asked"
    w.disconnect(0)


def test_v5_will_properties_passed_through(broker):
    """v5 3.1.3.2: the Will Properties (Payload Format Indicator, Content Type,
    Response Topic, Correlation Data, User Properties) are sent with the Will
    ([MQTT-3.3.2-4], [MQTT-3.3.2-15..18], [MQTT-3.3.2-20])."""
    t = unique("wp")
    w = will_watcher(broker, t, m.V5)
    wprops = [(m.PAYLOAD_FORMAT, 1), (m.CONTENT_TYPE, "text/plain"),
              (m.RESPONSE_TOPIC, "resp/" + t), (m.CORRELATION_DATA, b"\x00\x01corr"),
              (m.USER_PROPERTY, ("k1", "v1")), (m.USER_PROPERTY, ("k0", "v0")),
              (m.USER_PROPERTY, ("k1", "v2"))]
    c = broker.raw(m.V5)
    c.connect(unique("w"), will={"topic": t, "payload": b"props", "qos": 1,
                                 "properties": wprops})
    c.abort()
    got = w.recv_publish()
    assert got.props.get(m.PAYLOAD_FORMAT) == 1
    assert got.props.get(m.CONTENT_TYPE) == "text/plain"
    assert got.props.get(m.RESPONSE_TOPIC) == "resp/" + t
    assert got.props.get(m.CORRELATION_DATA) == b"\x00\x01corr"
    assert got.props.get(m.USER_PROPERTY) == [("k1", "v1"), ("k0", "v0"), ("k1", "v2")]
    w.disconnect(0)


@pytest.mark.parametrize("version", [3, 4, 5])
def test_paho_will(broker, version):
    """paho interop for [MQTT-3.1.2-8]: a paho client's will is published when
    its socket is dropped."""
    t = unique("pw")
    w = PahoClient(broker, version=version)
    w.subscribe(t, 1)
    c = PahoClient(broker, version=version,
                   will={"topic": t, "payload": b"bye", "qos": 1})
    c.stop()
    assert w.get().payload == b"bye"
    w.disconnect()
