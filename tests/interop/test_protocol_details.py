"""Protocol details mosquitto's byte-level sequences check: control
characters in names, acknowledgements of the wrong type, a CONNACK the client
cannot receive, MQTT 3.1's unused flags, a will over message_size_limit, and
closing so that a v5 client can read the DISCONNECT's reason.

Raw sockets (mqtt_raw) throughout, so the exact packets and the close are
visible. Each test also runs against mosquitto (TERN_TEST_AGAINST=mosquitto);
where Debian's 2.0.11 predates a fix, the test says which version has it.
"""

import socket
import struct
import time

import pytest

import mqtt_raw as m
from conftest import MOSQUITTO
from helpers import Probe, unique

MALFORMED, PROTOCOL = 0x81, 0x82

# U+0001, U+001F, U+007F and U+009F: both ends of both ranges
# (3.1.1 section 1.5.3, 5.0 section 1.5.4).
CONTROLS = {"u0001": b"\x01", "u001f": b"\x1f", "u007f": b"\x7f", "u009f": b"\xc2\x9f"}


@pytest.fixture
def probe(broker):
    p = Probe(broker)
    yield p
    p.close()


def closed_with(c, version, codes, allow_connack=False):
    """The connection closes; v5 may say why first (DISCONNECT, or a
    refusing CONNACK for a CONNECT) with a reason in codes. mosquitto closes
    without a word for some of them, so the reason is only checked when
    sent."""
    pkts = c.wait_closed(3)
    for p in pkts:
        if p.type == m.CONNACK and allow_connack:
            assert p.rc != 0 and (version != m.V5 or p.rc in codes), p
        else:
            assert p.type == m.DISCONNECT and version == m.V5, p
            assert p.rc in codes, p
    return pkts


# ------------------------------------------------------- control characters

def _name(ch):
    return b"t" + ch + b"x"


@pytest.mark.parametrize("version", [m.V311, m.V5])
@pytest.mark.parametrize("field", ["client_id", "username", "will_topic"])
@pytest.mark.parametrize("ch", list(CONTROLS), ids=list(CONTROLS))
def test_control_character_in_connect_field_is_malformed(broker, probe, version, field, ch):
    """A control character (U+0001..U+001F, U+007F..U+009F) in the client
    id, username or will topic: 3.1.1 1.5.3 / 5.0 1.5.4 let the receiver
    treat it as a Malformed Packet (MAY), and we do, as mosquitto does: the
    connection is closed without an accepting CONNACK (v5: CONNACK 0x81 at
    most). The will is never published."""
    bad = _name(CONTROLS[ch])
    kw = {"client_id": unique("cc")}
    if field == "client_id":
        kw["client_id"] = bad
    elif field == "username":
        kw["username"] = bad
    else:
        kw["will"] = {"topic": bad, "payload": b"w"}
    c = broker.raw(version)
    c.send_ignore_errors(m.connect(version=version, **kw))
    closed_with(c, version, [MALFORMED], allow_connack=True)
    probe.check()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_names_without_control_characters_are_accepted(broker, version):
    """The same fields with U+00A0 and U+007E (next to the ranges) connect:
    only the control characters are refused."""
    c = broker.raw(version)
    c.connect("t\u00a0x~", username="u\u00a0~", password=b"\x01\x02",
              will={"topic": "w\u00a0~", "payload": b"\x01"})
    assert c.is_open()
    c.disconnect()


@pytest.mark.parametrize("version", [m.V311, m.V5])
@pytest.mark.parametrize("packet", ["publish", "subscribe", "unsubscribe"])
@pytest.mark.parametrize("ch", list(CONTROLS), ids=list(CONTROLS))
def test_control_character_in_topic_is_malformed(broker, probe, version, packet, ch):
    """A control character in a PUBLISH topic name or a SUBSCRIBE /
    UNSUBSCRIBE filter is a Malformed Packet (1.5.3 / 1.5.4, MAY): v5
    DISCONNECT 0x81, v3 close; nothing is delivered."""
    t = probe.topic.encode() + CONTROLS[ch]
    c = broker.raw(version)
    c.connect(unique("cct"))
    if packet == "publish":
        c.send_ignore_errors(m.publish(t, b"x", qos=1, version=version))
    elif packet == "subscribe":
        c.send_ignore_errors(m.subscribe(1, [(t, 0)], version))
    else:
        c.send_ignore_errors(m.unsubscribe(1, [t], version))
    closed_with(c, version, [MALFORMED])
    assert probe.sub.no_packet(0.2)
    probe.check()


# ------------------------------------------------- acknowledgements, wrong type

def _subscriber_with(broker, version, qos):
    sub = broker.raw(version)
    sub.connect(unique("ack"))
    topic = unique("ack/t")
    sub.subscribe([(topic, qos)])
    pub = broker.raw(m.V311)
    pub.connect(unique("ackp"))
    pub.publish(topic, b"m", qos=qos)
    pub.disconnect()
    got = sub.recv_type(m.PUBLISH)
    assert got.qos == qos
    return sub, got


@pytest.mark.parametrize("version", [m.V311, m.V5])
@pytest.mark.parametrize("qos,wrong", [(1, "pubrec"), (1, "pubcomp"), (2, "puback"),
                                       (2, "pubcomp")])
def test_ack_of_wrong_type_is_protocol_error(broker, probe, version, qos, wrong):
    """PUBREC or PUBCOMP for a QoS 1 PUBLISH, PUBACK for a QoS 2 one, or a
    PUBCOMP before the PUBREC (no PUBREL was sent) answer a flow that is
    not the one in flight for that packet id: a Protocol Error (v5 4.13:
    DISCONNECT 0x82; v3: close), as mosquitto 2.0.20's FLOW sequences
    expect."""
    sub, got = _subscriber_with(broker, version, qos)
    sub.send_ignore_errors(getattr(m, wrong)(got.pid, version))
    closed_with(sub, version, [PROTOCOL])
    probe.check()


def test_unsolicited_failed_pubrec_gets_no_pubrel(broker):
    """v5: a PUBREC with a failure reason (>= 0x80) ends its QoS 2 flow
    (4.3.3), so an unsolicited one gets no PUBREL (a PUBREL would restart a
    flow the client closed); a successful unsolicited PUBREC still gets one
    (0x92 Packet Identifier not found, or 0)."""
    c = broker.raw(m.V5)
    c.connect(unique("rec"))
    c.send(m.pubrec(7, m.V5, rc=0x80))
    assert c.no_packet(0.5)
    c.send(m.pubrec(8, m.V5, rc=0x00))
    rel = c.recv_type(m.PUBREL)
    assert rel.pid == 8 and rel.rc in (0x00, 0x92)
    assert c.is_open()


def test_failed_pubrec_ends_the_flow_without_pubrel(broker):
    """v5: a PUBREC >= 0x80 for a QoS 2 message in flight ends that flow
    [MQTT-4.3.3-4 note]: no PUBREL, and the connection stays up."""
    sub, got = _subscriber_with(broker, m.V5, 2)
    sub.send(m.pubrec(got.pid, m.V5, rc=0x80))
    assert sub.no_packet(0.5)
    assert sub.is_open()


# --------------------------------------------- CONNACK over Maximum Packet Size

@pytest.mark.parametrize("limit", [5, 8])
def test_connack_over_client_maximum_packet_size_closes(broker, probe, limit):
    """v5: the Server must not send a packet over the client's Maximum Packet
    Size [MQTT-3.1.2-24]; a CONNACK that does not fit even without reason
    string and user properties ([MQTT-3.2.2-19] [MQTT-3.2.2-20]) cannot be
    sent, so the connection is closed at once instead of leaving the client
    waiting for it. An assigned client id (21 bytes) does not fit in 8."""
    c = broker.raw(m.V5)
    c.send(m.connect("", version=m.V5, properties=[(m.MAXIMUM_PACKET_SIZE, limit)]))
    pkts = c.wait_closed(3)
    for p in pkts:
        assert len(p.raw) <= limit, p
    probe.check()


def test_connack_within_client_maximum_packet_size(broker):
    """The same CONNECT with room for the CONNACK (but not for a reason
    string) is accepted."""
    c = broker.raw(m.V5)
    c.send(m.connect(unique("mps"), version=m.V5,
                     properties=[(m.MAXIMUM_PACKET_SIZE, 40)]))
    ack = c.recv_type(m.CONNACK)
    assert ack.rc == 0 and len(ack.raw) <= 40
    assert c.is_open()


# ------------------------------------------------------- MQTT 3.1 unused flags

def _connect31(first_byte=0x10, flags=0x02, cid=b"p"):
    body = m.s("MQIsdp") + bytes([3, flags]) + m.u16(10) + m.s(cid)
    return bytes([first_byte]) + m.vbi(len(body)) + body


@pytest.mark.mosquitto_nonconformant("mosquitto 2.0.15 accepts these (#2522); 2.0.11 closes")
@pytest.mark.parametrize("first_byte,flags", [(0x10, 0x03), (0x14, 0x02), (0x1F, 0x02)],
                         ids=["reserved_connect_flag", "fixed_qos1", "fixed_all"])
def test_mqtt31_connect_with_unused_flags_is_accepted(broker, first_byte, flags):
    """MQTT 3.1 leaves the connect flags' bit 0 and the CONNECT fixed-header
    flags unused; 3.1.1 reserved them ([MQTT-3.1.2-3], [MQTT-2.2.2-2]). Old
    3.1 clients that set them are accepted, as mosquitto (2.0.15+) does."""
    c = broker.raw(m.V31)
    c.send(_connect31(first_byte, flags, unique("c31").encode()))
    ack = c.recv_type(m.CONNACK)
    assert ack.rc == 0
    assert c.is_open()


@pytest.mark.parametrize("first_byte", [0x14, 0x11])
def test_mqtt311_connect_with_fixed_flags_is_malformed(broker, first_byte):
    """For 3.1.1 those CONNECT flags are reserved: malformed, close
    [MQTT-2.2.2-2]."""
    c = broker.raw(m.V311)
    data = bytearray(m.connect(unique("c311")))
    data[0] = first_byte
    c.send_ignore_errors(bytes(data))
    assert not any(p.type == m.CONNACK and p.rc == 0 for p in c.wait_closed(3))


def test_mqtt31_pubrel_with_dup_is_accepted(broker):
    """MQTT 3.1 sets DUP on a re-sent PUBREL (QoS 1 in its fixed header);
    the PUBCOMP still comes. 3.1.1 fixes PUBREL's flags to 0010
    [MQTT-3.6.1-1], checked in test_bad_input."""
    c = broker.raw(m.V31)
    c.connect(unique("r31"))
    c.send(m.publish(unique("r31/t"), b"x", qos=2, pid=5, version=m.V31))
    assert c.recv_type(m.PUBREC).pid == 5
    c.send(bytes([0x6A]) + m.pubrel(5, m.V31)[1:])
    assert c.recv_type(m.PUBCOMP).pid == 5
    assert c.is_open()


# ------------------------------------------------ will over message_size_limit

@pytest.mark.broker_config("message_size_limit 100")
@pytest.mark.parametrize("version,rc", [(m.V311, 0x05), (m.V5, 0x95)])
def test_will_over_message_size_limit_is_refused(broker, probe, version, rc):
    """A will is a message: one over message_size_limit would be dropped
    when published, so the CONNECT is refused, as mosquitto does: 3.1.1
    CONNACK 5 (not authorized), v5 0x95 (Packet too large). The will is
    never published."""
    c = broker.raw(version)
    c.send(m.connect(unique("will"), version=version,
                     will={"topic": probe.topic, "payload": b"W" * 101}))
    ack = c.recv_type(m.CONNACK)
    assert ack.rc == rc and not ack.session_present
    c.wait_closed(3)
    assert probe.sub.no_packet(0.3)
    ok = broker.raw(version)
    ok.connect(unique("will"), will={"topic": probe.topic, "payload": b"W" * 100})
    ok.abort()
    assert probe.sub.recv_publish().payload == b"W" * 100
