"""PUBLISH at QoS 0/1/2, inbound and outbound, checked byte by byte."""

import pytest

import mqtt_raw as m
from helpers import PahoClient, unique


def pair(broker, version=m.V311, sub_qos=2, topic=None):
    """A subscriber (raw) on `topic` and a connected publisher (raw)."""
    topic = topic or unique("q")
    sub = broker.raw(version)
    sub.connect(unique("sub"))
    ack = sub.subscribe([(topic, sub_qos)])
    assert ack.codes == [sub_qos]
    pub = broker.raw(version)
    pub.connect(unique("pub"))
    return sub, pub, topic


def test_qos0_exact_bytes_both_ways(broker):
    """[MQTT-4.3.1-1] QoS 0 PUBLISH has QoS=0, DUP=0 and no Packet Identifier
    ([MQTT-2.3.1-5]); the forwarded packet is byte-identical to the inbound
    one (30, remaining length, topic, payload), and nothing acknowledges it."""
    sub, pub, topic = pair(broker, sub_qos=0)
    raw = m.publish(topic, b"zero", qos=0)
    pub.send(raw)
    got = sub.recv()
    assert got.raw == raw
    assert pub.no_packet(0.2)
    sub.disconnect()
    pub.disconnect()


def test_qos1_inbound_puback_and_outbound_publish(broker):
    """[MQTT-4.3.2-2] the receiver (broker) answers a QoS 1 PUBLISH with
    PUBACK carrying its Packet Identifier: bytes 40 02 12 34. Outbound, the
    PUBLISH is QoS 1, DUP 0, with a non-zero Packet Identifier
    ([MQTT-4.3.2-1], [MQTT-2.3.1-1]); once PUBACKed it is not re-sent."""
    sub, pub, topic = pair(broker, sub_qos=1)
    pub.send(m.publish(topic, b"one", qos=1, pid=0x1234))
    assert pub.recv().raw == b"\x40\x02\x12\x34"
    got = sub.recv_type(m.PUBLISH)
    assert got.flags == 0x02 and got.qos == 1 and not got.dup and not got.retain
    assert got.pid and got.pid != 0
    assert got.raw == m.publish(topic, b"one", qos=1, pid=got.pid)
    sub.send(m.puback(got.pid))
    assert sub.no_packet(0.3)
    sub.disconnect()
    pub.disconnect()


def test_qos2_inbound_full_flow_exact_bytes(broker):
    """[MQTT-4.3.3-2] receiver side of QoS 2: PUBREC (50 02 pid), then on
    PUBREL (62 02 pid, flags 0010 [MQTT-3.6.1-1]) a PUBCOMP (70 02 pid)."""
    sub, pub, topic = pair(broker, sub_qos=2)
    pub.send(m.publish(topic, b"two", qos=2, pid=0x0102))
    assert pub.recv().raw == b"\x50\x02\x01\x02"
    pub.send(m.pubrel(0x0102))
    assert pub.recv().raw == b"\x70\x02\x01\x02"
    got = sub.recv_publish(ack=False)
    assert got.qos == 2 and got.payload == b"two"
    sub.ack(got)
    assert sub.no_packet(0.2)
    sub.disconnect()
    pub.disconnect()


def test_qos2_outbound_full_flow_exact_bytes(broker):
    """[MQTT-4.3.3-1] sender side of QoS 2 (the broker): PUBLISH QoS 2 DUP 0
    (flags 0100), then after our PUBREC a PUBREL with the same Packet
    Identifier and fixed header 62 02; after our PUBCOMP nothing more."""
    sub, pub, topic = pair(broker, sub_qos=2)
    pub.publish(topic, b"out2", qos=2, pid=9)
    got = sub.recv_type(m.PUBLISH)
    assert got.flags == 0x04 and got.pid
    sub.send(m.pubrec(got.pid))
    rel = sub.recv()
    assert rel.raw == b"\x62\x02" + got.pid.to_bytes(2, "big")
    sub.send(m.pubcomp(got.pid))
    assert sub.no_packet(0.3)
    sub.disconnect()
    pub.disconnect()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_qos2_duplicate_publish_before_pubrel_delivered_once(broker, version):
    """[MQTT-4.3.3-2] (v5 [MQTT-4.3.3-10]): until PUBREL, a PUBLISH with the
    same Packet Identifier is acknowledged with PUBREC again and MUST NOT
    cause a duplicate delivery to onward recipients."""
    sub, pub, topic = pair(broker, version, sub_qos=2)
    pub.send(m.publish(topic, b"once", qos=2, pid=5, version=version))
    assert pub.recv_type(m.PUBREC).pid == 5
    pub.send(m.publish(topic, b"once", qos=2, pid=5, dup=True, version=version))
    assert pub.recv_type(m.PUBREC).pid == 5
    pub.send(m.pubrel(5, version))
    assert pub.recv_type(m.PUBCOMP).pid == 5
    first = sub.recv_publish()
    assert first.payload == b"once"
    assert sub.no_packet(0.5), "duplicate delivered"
    sub.disconnect()
    pub.disconnect()


def test_qos2_same_packet_id_after_pubcomp_is_a_new_message(broker):
    """[MQTT-4.3.3-2]: after PUBCOMP the receiver treats a PUBLISH with the same
    Packet Identifier as a new application message (delivered again)."""
    sub, pub, topic = pair(broker, sub_qos=2)
    pub.publish(topic, b"a", qos=2, pid=3)
    pub.publish(topic, b"b", qos=2, pid=3)
    assert sub.recv_publish().payload == b"a"
    assert sub.recv_publish().payload == b"b"
    sub.disconnect()
    pub.disconnect()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_delivered_qos_is_min_of_published_and_granted(broker, version):
    """[MQTT-3.8.4-6] (v5 [MQTT-3.8.4-8]): the QoS of a forwarded message is the
    minimum of the published QoS and the granted QoS, for all 9 pairs."""
    base = unique("dq")
    sub = broker.raw(version)
    sub.connect(unique("sub"))
    ack = sub.subscribe([("%s/%d" % (base, g), g) for g in range(3)])
    assert ack.codes == [0, 1, 2]
    pub = broker.raw(version)
    pub.connect(unique("pub"))
    pid = 1
    for g in range(3):
        for q in range(3):
            pub.publish("%s/%d" % (base, g), b"%d%d" % (g, q), qos=q, pid=pid)
            pid += 1
            got = sub.recv_publish()
            assert got.topic == "%s/%d" % (base, g)
            assert got.qos == min(q, g), (g, q, got)
    sub.disconnect()
    pub.disconnect()


@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_paho_round_trip_each_qos(broker, version, qos):
    """paho interop: publish and receive at each QoS with each protocol
    version; the delivered QoS equals the published one when the
    subscription grants 2 ([MQTT-3.8.4-6])."""
    sub = PahoClient(broker, version=version)
    topic = unique("pq")
    sub.subscribe(topic, 2)
    pub = PahoClient(broker, version=version)
    for i in range(3):
        pub.publish(topic, b"m%d" % i, qos=qos)
    msgs = sub.get_n(3)
    assert [x.payload for x in msgs] == [b"m0", b"m1", b"m2"]  # [MQTT-4.6.0-6]
    assert all(x.qos == qos for x in msgs)
    sub.disconnect()
    pub.disconnect()


def test_ordered_delivery_per_publisher(broker):
    """[MQTT-4.6.0-6]: a Server MUST by default treat each Topic as an
    "Ordered Topic": 50 QoS 1 messages arrive in publishing order."""
    sub, pub, topic = pair(broker, sub_qos=1)
    for i in range(50):
        pub.send(m.publish(topic, b"%d" % i, qos=1, pid=i + 1))
    acks = [pub.recv_type(m.PUBACK).pid for _ in range(50)]
    assert acks == list(range(1, 51))  # PUBACKs in order too
    got = [sub.recv_publish().payload for _ in range(50)]
    assert got == [b"%d" % i for i in range(50)]
    sub.disconnect()
    pub.disconnect()
