"""Limits against abuse: each a directive with a safe default, each tested at
the point where it is exceeded. The offending client gets the reason the
spec names where one exists; others are not disturbed."""

import socket
import time

import pytest

import mqtt_raw as m

pytestmark = pytest.mark.ternd_only


@pytest.mark.broker_config("max_connections 3", "storage memory")
def test_max_connections_refuses_the_one_too_many(broker):
    """max_connections 3: a fourth connection is closed at once; when one
    leaves, a new one gets in."""
    clients = []
    for i in range(3):
        c = broker.raw(m.V311)
        c.connect("mc%d" % i)
        clients.append(c)
    extra = broker.raw(m.V311)
    extra.send_ignore_errors(m.connect("mc-extra"))
    assert extra.wait_closed(3) == []
    clients.pop().disconnect()
    time.sleep(0.3)
    again = broker.raw(m.V311)
    assert again.connect("mc-again").rc == 0
    for c in clients + [again]:
        c.disconnect()


@pytest.mark.broker_config("connect_timeout 1", "storage memory")
def test_silent_connection_is_closed_after_connect_timeout(broker):
    """A TCP connection that sends no CONNECT is closed after
    connect_timeout; a normal client connected meanwhile is fine."""
    s = socket.create_connection((broker.host, broker.port), timeout=5)
    ok = broker.raw(m.V311)
    ok.connect("patient")
    t0 = time.time()
    s.settimeout(4)
    assert s.recv(16) == b""
    assert 0.8 <= time.time() - t0 <= 2.5
    s.close()
    ok.send(m.pingreq())
    assert ok.recv_type(m.PINGRESP)
    ok.disconnect()


@pytest.mark.broker_config("max_packet_size 200", "storage memory")
def test_max_packet_size_v5_disconnect_0x95(broker):
    """A packet over max_packet_size: v5 DISCONNECT 0x95 (section 4.13),
    announced as Maximum Packet Size in CONNACK (section 3.2.2.3.6)."""
    c = broker.raw(m.V5)
    ack = c.connect("big")
    assert ack.props.get(m.MAXIMUM_PACKET_SIZE) == 200
    c.send(m.publish("big/t", b"x" * 300, version=m.V5))
    pkts = c.wait_closed(3)
    assert [p.rc for p in pkts if p.type == m.DISCONNECT] == [0x95]


@pytest.mark.broker_config("max_topic_levels 3", "storage memory")
def test_max_topic_levels(broker):
    """max_topic_levels 3: a deeper topic is refused, v5 with 0x90 (Topic
    Name invalid) / 0x8F (Topic Filter invalid) for that one entry; 3.1.1
    gets SUBACK 0x80 and its PUBLISH ends the connection."""
    c = broker.raw(m.V5)
    c.connect("levels5")
    sub = c.subscribe([("a/b/c", 1), ("a/b/c/#", 1)])
    assert sub.codes == [1, 0x8F]
    ack = c.publish("a/b/c/d", b"deep", qos=1)
    assert ack.rc == 0x90
    c.publish("a/b/c", b"ok", qos=1, pid=2, complete=False)
    got = {p.type: p for p in (c.recv(), c.recv())}
    assert got[m.PUBACK].rc == 0 and got[m.PUBLISH].payload == b"ok"
    c.disconnect()
    v3 = broker.raw(m.V311)
    v3.connect("levels3")
    assert v3.subscribe([("x/y/z/w", 0)]).codes == [0x80]
    v3.send(m.publish("x/y/z/w", b"deep"))
    v3.wait_closed(3)


@pytest.mark.broker_config("max_subscriptions 2", "storage memory")
def test_max_subscriptions(broker):
    """max_subscriptions 2: a third filter is refused (v5 0x97 Quota
    exceeded, 3.1.1 0x80); subscribing again to a filter one already has
    still works [MQTT-3.8.4-3]."""
    c = broker.raw(m.V5)
    c.connect("subs5")
    assert c.subscribe([("s/1", 0), ("s/2", 1)]).codes == [0, 1]
    assert c.subscribe([("s/3", 0)], pid=2).codes == [0x97]
    assert c.subscribe([("s/2", 2)], pid=3).codes == [2]
    c.disconnect()
    v3 = broker.raw(m.V311)
    v3.connect("subs3")
    assert v3.subscribe([("t/1", 0), ("t/2", 0), ("t/3", 0)]).codes == [0, 0, 0x80]
    v3.disconnect()


@pytest.mark.broker_config("max_queued_bytes 100", "max_queued_messages 0",
                           "storage memory")
def test_max_queued_bytes(broker):
    """max_queued_bytes 100: an offline session queues messages up to 100
    payload bytes; the rest is dropped (and logged)."""
    c = broker.raw(m.V311)
    c.connect("qb", clean=False)
    c.subscribe([("qb/#", 1)])
    c.disconnect()
    pub = broker.raw(m.V311)
    pub.connect("qb-pub")
    for i in range(5):
        pub.publish("qb/x", bytes([65 + i]) * 40, qos=1, pid=i + 1)
    pub.disconnect()
    c = broker.raw(m.V311)
    assert c.connect("qb", clean=False).session_present
    got = [p.payload for p in c.recv_all(0.8) if p.type == m.PUBLISH]
    assert got == [b"A" * 40, b"B" * 40]
    c.disconnect()
    with open(broker.log) as f:
        assert "max_queued_bytes" in f.read()
