"""Bytes on the wire where the specification leaves the broker a choice.

MQTT 5.0 lets properties come in any order (section 2.2.2), yet tools and
test suites written against mosquitto compare a broker's packets byte for
byte (mosquitto's own broker tests build the expected CONNACK with Topic
Alias Maximum first and Receive Maximum last). Where the choice costs
nothing, ternd sends mosquitto's bytes; every test here runs against
mosquitto 2.0.11 too."""

import pytest

from conftest import CLUSTER_MODE
import mqtt_raw as m


def prop_ids(raw, offset):
    """Identifiers of the property block at raw[offset:], in wire order."""
    r = m.Reader(raw[offset:])
    end = r.vbi()
    end += r.pos
    ids = []
    while r.pos < end:
        pid = r.vbi()
        ids.append(pid)
        t = m.PROP_TYPES[pid]
        if t == m._BYTE:
            r.byte()
        elif t == m._U16:
            r.u16()
        elif t == m._U32:
            r.u32()
        elif t == m._VBI:
            r.vbi()
        elif t == m._PAIR:
            r.bin()
            r.bin()
        else:
            r.bin()
    return ids


def connack_prop_ids(ack):
    # Fixed header (2 bytes for a short CONNACK), flags, reason code.
    assert len(ack.raw) < 129
    return prop_ids(ack.raw, 4)


def test_connack_default_properties_in_mosquittos_order(broker):
    """Default limits: Topic Alias Maximum 10, then Receive Maximum 20,
    exactly the 11 bytes mosquitto sends."""
    c = broker.raw(m.V5)
    ack = c.connect("order-default")
    assert ack.raw == b"\x20\x09\x00\x00\x06\x22\x00\x0a\x21\x00\x14"
    c.disconnect(0)


@pytest.mark.broker_config("retain_available false", "max_packet_size 10000")
def test_connack_properties_in_mosquittos_order(broker):
    """Topic Alias Maximum, Assigned Client Identifier (empty client id
    [MQTT-3.2.2-16]), Retain Available, Maximum Packet Size, Receive
    Maximum: the order mosquitto writes them in."""
    c = broker.raw(m.V5)
    ack = c.connect("")
    assert connack_prop_ids(ack) == [
        m.TOPIC_ALIAS_MAXIMUM, m.ASSIGNED_CLIENT_ID, m.RETAIN_AVAILABLE,
        m.MAXIMUM_PACKET_SIZE, m.RECEIVE_MAXIMUM]
    assert ack.props[m.RETAIN_AVAILABLE] == 0
    assert ack.props[m.MAXIMUM_PACKET_SIZE] == 10000
    c.disconnect(0)


@pytest.mark.mosquitto_nonconformant(
    "not a conformance matter: 2.0.11 writes Topic Alias Maximum before Server "
    "Keep Alive, 2.0.20 (and its test 12-prop-server-keepalive) after it")
@pytest.mark.broker_config("max_keepalive 60")
def test_connack_server_keep_alive_first(broker):
    """A keep alive over max_keepalive gets Server Keep Alive
    [MQTT-3.2.2-21], written first as mosquitto 2.0.20 does: the bytes its
    test 12-prop-server-keepalive expects."""
    c = broker.raw(m.V5)
    ack = c.connect("order-ska", keepalive=61)
    assert ack.raw == b"\x20\x0c\x00\x00\x09\x13\x00\x3c\x22\x00\x0a\x21\x00\x14"
    c.disconnect(0)


def test_pubrec_without_subscribers_is_plain_success(broker):
    """v5 QoS 2 PUBLISH to a topic nobody subscribes to: PUBREC is the bare
    success (4 bytes), as mosquitto sends it; 0x10 No matching subscribers
    is a MAY (section 3.5.2.1) that ternd keeps for PUBACK, where mosquitto
    uses it too (section 3.4.2.1)."""
    c = broker.raw(m.V5)
    c.connect("pubrec-plain")
    c.send(m.publish("nobody/listens/q2", b"x", qos=2, pid=7, version=m.V5))
    rec = c.recv_type(m.PUBREC)
    assert rec.raw == b"\x50\x02\x00\x07"
    c.send(m.pubrel(7, version=m.V5))
    assert c.recv_type(m.PUBCOMP).raw == b"\x70\x02\x00\x07"
    c.send(m.publish("nobody/listens/q1", b"x", qos=1, pid=8, version=m.V5))
    if CLUSTER_MODE:
        # A node cannot tell that no other node has a subscriber: the
        # bare success.
        assert c.recv_type(m.PUBACK).raw == b"\x40\x02\x00\x08"
    else:
        assert c.recv_type(m.PUBACK).raw == b"\x40\x03\x00\x08\x10"
    c.disconnect(0)
