"""Persistent sessions: redelivery, offline queueing, queue and in-flight limits."""

import time

import pytest

import mqtt_raw as m
from helpers import unique

SE = [(m.SESSION_EXPIRY, 300)]


def persistent(broker, cid, version, clean=False):
    """Connect a persistent-session subscriber (v3 CleanSession 0; v5 Clean
    Start as given, Session Expiry 300 s)."""
    c = broker.raw(version)
    if version == m.V5:
        ack = c.connect(cid, clean=clean, properties=SE)
    else:
        # A v3 session is persistent only with CleanSession 0 (ids are unique,
        # so the first connection still finds no session).
        ack = c.connect(cid, clean=False)
    return c, ack


def publisher(broker, version=m.V311):
    p = broker.raw(version)
    p.connect(unique("pub"))
    return p


@pytest.mark.parametrize("version", [m.V311, m.V5])
@pytest.mark.parametrize("qos", [1, 2])
def test_unacked_publish_redelivered_with_dup_and_same_packet_id(broker, version, qos):
    """[MQTT-4.4.0-1]: on reconnect with CleanSession 0 (v5 Clean Start 0 and a
    session present) the Server re-sends unacknowledged PUBLISH packets with
    their original Packet Identifiers, and DUP set to 1 ([MQTT-3.3.1-1])."""
    cid, topic = unique("re"), unique("re/t")
    sub, _ = persistent(broker, cid, version, clean=True)
    sub.subscribe([(topic, qos)])
    pub = publisher(broker)
    pub.publish(topic, b"redeliver-me", qos=qos)
    first = sub.recv_type(m.PUBLISH)
    assert first.qos == qos and not first.dup
    sub.abort()  # no PUBACK / PUBREC
    sub, ack = persistent(broker, cid, version)
    assert ack.session_present
    again = sub.recv_type(m.PUBLISH)
    assert again.dup, "DUP must be 1 on re-delivery"
    assert again.pid == first.pid
    assert again.payload == b"redeliver-me" and again.topic == topic
    assert again.qos == qos
    sub.ack(again)
    assert sub.no_packet(0.3)
    sub.disconnect(0 if version == m.V5 else None)
    pub.disconnect()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_pubrel_resent_after_reconnect(broker, version):
    """[MQTT-4.4.0-1]: PUBREL packets of messages in the PUBREC state are
    re-sent on reconnect with the original Packet Identifier; the PUBLISH
    itself is not re-sent once PUBREL was sent ([MQTT-4.3.3-1] v3 sender
    rules / v5 [MQTT-4.3.3-6])."""
    cid, topic = unique("rel"), unique("rel/t")
    sub, _ = persistent(broker, cid, version, clean=True)
    sub.subscribe([(topic, 2)])
    pub = publisher(broker)
    pub.publish(topic, b"q2", qos=2)
    got = sub.recv_type(m.PUBLISH)
    sub.send(m.pubrec(got.pid, version))
    rel = sub.recv_type(m.PUBREL)
    assert rel.pid == got.pid
    sub.abort()  # no PUBCOMP
    sub, ack = persistent(broker, cid, version)
    assert ack.session_present
    rel2 = sub.recv()
    assert rel2.type == m.PUBREL and rel2.pid == got.pid and rel2.flags == 0x02, rel2
    sub.send(m.pubcomp(got.pid, version))
    assert sub.no_packet(0.3), "PUBLISH re-sent after PUBREL"
    sub.disconnect()
    pub.disconnect()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_messages_for_offline_persistent_session_are_queued(broker, version):
    """[MQTT-3.1.2-5] (v5 [MQTT-3.1.2-23], 4.1 Session State): QoS 1 and QoS 2
    messages matching the subscriptions of a disconnected persistent session
    are stored and delivered, in order, when it reconnects."""
    cid, topic = unique("off"), unique("off/t")
    sub, _ = persistent(broker, cid, version, clean=True)
    sub.subscribe([(topic, 2)])
    sub.disconnect(0 if version == m.V5 else None)
    pub = publisher(broker)
    for i in range(4):
        pub.publish(topic, b"off-%d" % i, qos=1 + i % 2, pid=i + 1)
    pub.disconnect()
    sub, ack = persistent(broker, cid, version)
    assert ack.session_present
    got = [sub.recv_publish() for _ in range(4)]
    assert [g.payload for g in got] == [b"off-%d" % i for i in range(4)]
    assert [g.qos for g in got] == [1, 2, 1, 2]
    sub.disconnect()


@pytest.mark.broker_config("max_queued_messages 5", "max_inflight_messages 2")
def test_max_queued_messages_bounds_the_offline_queue(broker):
    """Config max_queued_messages 5 (with max_inflight_messages 2): 20 QoS 1
    messages for an offline session are not all kept: at most 5 queued + 2
    in flight are delivered on reconnect, and at least one is."""
    cid, topic = unique("mq"), unique("mq/t")
    sub, _ = persistent(broker, cid, m.V311, clean=True)
    sub.subscribe([(topic, 1)])
    sub.disconnect()
    pub = publisher(broker)
    for i in range(20):
        pub.publish(topic, b"%d" % i, qos=1, pid=i + 1)
    pub.disconnect()
    sub, ack = persistent(broker, cid, m.V311)
    assert ack.session_present
    got = []
    for p in sub.recv_all(1.0):
        if p.type == m.PUBLISH:
            got.append(p)
            sub.ack(p)
    got += [p for p in sub.recv_all(0.7) if p.type == m.PUBLISH]
    assert 1 <= len(got) <= 7, [g.payload for g in got]
    sub.disconnect()


# mosquitto 2.0.11 releases two queued messages per PUBACK once the window is
# full (observed: 2 sent, ack 1 -> 2 more, i.e. 3 unacknowledged).
INFLIGHT_BUG = ("sends 2 new PUBLISHes per PUBACK, exceeding the in-flight window "
                "/ Receive Maximum [MQTT-3.3.4-9], [MQTT-4.9.0-2]")


@pytest.mark.mosquitto_nonconformant(INFLIGHT_BUG)
@pytest.mark.broker_config("max_inflight_messages 2")
def test_max_inflight_messages_limits_unacked_qos1_v311(broker):
    """Config max_inflight_messages 2: the broker never has more than 2
    unacknowledged QoS 1 PUBLISHes outstanding to a client that does not ack
    (the v5 send quota of 4.9 applied to all clients); each PUBACK releases
    one more, and nothing is lost."""
    topic = unique("if")
    sub = broker.raw(m.V311)
    sub.connect(unique("sub"))
    sub.subscribe([(topic, 1)])
    pub = publisher(broker)
    for i in range(6):
        pub.publish(topic, b"%d" % i, qos=1, pid=i + 1)
    first = [p for p in sub.recv_all(0.7) if p.type == m.PUBLISH]
    assert len(first) == 2, first
    # Ack one at a time and check that exactly one more arrives each time.
    outstanding = list(first)
    delivered = [p.payload for p in first]
    while outstanding:
        p = outstanding.pop(0)
        sub.send(m.puback(p.pid))
        more = [x for x in sub.recv_all(0.4) if x.type == m.PUBLISH]
        assert len(outstanding) + len(more) <= 2, more
        outstanding += more
        delivered += [x.payload for x in more]
    assert delivered == [b"%d" % i for i in range(6)]
    sub.disconnect()
    pub.disconnect()


@pytest.mark.mosquitto_nonconformant(INFLIGHT_BUG)
def test_v5_client_receive_maximum_limits_unacked_publishes(broker):
    """v5 [MQTT-3.3.4-9] / [MQTT-4.9.0-2]: the Server MUST NOT send more than
    the client's Receive Maximum (2) QoS 1 PUBLISHes without PUBACK; and it
    keeps answering other packets meanwhile ([MQTT-4.9.0-3])."""
    topic = unique("rm")
    sub = broker.raw(m.V5)
    sub.connect(unique("sub"), properties=[(m.RECEIVE_MAXIMUM, 2)])
    sub.subscribe([(topic, 1)])
    pub = publisher(broker, m.V5)
    for i in range(5):
        pub.publish(topic, b"%d" % i, qos=1, pid=i + 1)
    first = [p for p in sub.recv_all(0.7) if p.type == m.PUBLISH]
    assert len(first) == 2, first
    assert sub.is_open()  # PINGRESP still flows with a zero quota
    outstanding, delivered = list(first), [p.payload for p in first]
    while outstanding:
        p = outstanding.pop(0)
        sub.send(m.puback(p.pid, m.V5))
        more = [x for x in sub.recv_all(0.4) if x.type == m.PUBLISH]
        assert len(outstanding) + len(more) <= 2, more
        outstanding += more
        delivered += [x.payload for x in more]
    assert delivered == [b"%d" % i for i in range(5)]
    sub.disconnect(0)
    pub.disconnect(0)


# mosquitto 2.0.11 answers the excess QoS 2 PUBLISH with PUBREC 0x97 (Quota
# exceeded) and keeps the connection, instead of DISCONNECT 0x93 (v5 3.3.4).
@pytest.mark.mosquitto_nonconformant(
    "answers PUBREC 0x97 instead of DISCONNECT 0x93 (v5 3.3.4 Receive Maximum)")
@pytest.mark.broker_config("max_inflight_messages 2")
def test_v5_exceeding_server_receive_maximum_gets_disconnect_0x93(broker):
    """v5 3.3.4 / [MQTT-3.3.4-7]: a client MUST NOT send more QoS 1/2
    PUBLISHes than the server's Receive Maximum without acknowledgement; if
    it does, the Server uses DISCONNECT 0x93 (Receive Maximum exceeded).
    QoS 2 messages stay unacknowledged until PUBCOMP, so 3 PUBLISHes without
    PUBREL exceed a Receive Maximum of 2."""
    c = broker.raw(m.V5)
    ack = c.connect(unique())
    rmax = ack.props.get(m.RECEIVE_MAXIMUM, 65535)
    assert rmax == 2
    topic = unique("rx")
    for pid in range(1, rmax + 2):
        c.send_ignore_errors(m.publish(topic, b"x", qos=2, pid=pid, version=m.V5))
    pkts = c.wait_closed(3)
    # PUBRECs of the first two may or may not precede the DISCONNECT: a
    # durable broker sends them once they are committed, which can be after
    # the third PUBLISH has ended the connection.
    assert all(p.type == m.PUBREC for p in pkts[:-1]) and len(pkts) <= rmax + 1, pkts
    assert pkts[-1].type == m.DISCONNECT and pkts[-1].rc == 0x93, pkts
