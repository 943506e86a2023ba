"""Where the specification lets a broker choose, the bytes mosquitto sends.

Clients and test suites compare a broker's answers byte for byte with
mosquitto's (mosquitto's own test/broker/data/*.json sequences do). Each
test here names a choice the MQTT 5.0 / 3.1.1 text leaves open, cites the
statement that leaves it open, and checks the exact bytes ternd sends: no
Reason String on a DISCONNECT or a refusing CONNACK unless the client asked
for one (property order: test_wire_compat.py), a silent close for a CONNECT that is
not MQTT or is malformed, and which of Malformed Packet (0x81) and Protocol
Error (0x82) is reported where the text does not say. Raw sockets
(mqtt_raw), so nothing is normalised away. Every test also runs against
mosquitto (TERN_TEST_AGAINST=mosquitto).
"""

import pytest

import mqtt_raw as m
from conftest import MOSQUITTO
from helpers import unique

MALFORMED, PROTOCOL = 0x81, 0x82


def _v5(broker, properties=None):
    c = broker.raw(m.V5)
    c.send(m.connect(unique("wc"), version=m.V5, properties=properties))
    ack = c.recv_type(m.CONNACK)
    assert ack.rc == 0, ack
    return c, ack


def _closed_after(c, data):
    """Sends data; returns the packets that came before the close."""
    c.send_ignore_errors(data)
    return c.wait_closed(3)


# ---------------------------------------------- Reason Strings, only if asked

def test_disconnect_carries_no_reason_string_unless_asked(broker):
    """A Reason String is allowed on DISCONNECT whatever Request Problem
    Information says [MQTT-3.1.2-29], never required. Without the property in
    CONNECT, ternd's DISCONNECT for a Protocol Error (an UNSUBSCRIBE without
    topic filters [MQTT-3.10.3-2]) is the three bytes E0 01 82, as
    mosquitto's."""
    c, _ = _v5(broker)
    pkts = _closed_after(c, m.packet(m.UNSUBSCRIBE, 2, m.u16(0x1234) + b"\x00"))
    # Three bytes: no properties. (mosquitto reports this one as 0x81.)
    assert len(pkts) == 1 and pkts[0].raw[:2] == b"\xe0\x01", pkts
    if not MOSQUITTO:
        assert pkts[0].raw == b"\xe0\x01\x82", pkts


@pytest.mark.ternd_only
def test_disconnect_carries_reason_string_when_asked(broker):
    """With Request Problem Information 1 in CONNECT the client asked for
    the why, and ternd's DISCONNECT carries it as a Reason String
    (3.14.2.2.3). (mosquitto sends none.)"""
    c, _ = _v5(broker, [(m.REQUEST_PROBLEM_INFO, 1)])
    pkts = _closed_after(c, m.packet(m.UNSUBSCRIBE, 2, m.u16(0x1234) + b"\x00"))
    assert len(pkts) == 1 and pkts[0].rc == PROTOCOL, pkts
    assert m.REASON_STRING in pkts[0].props, pkts


def test_refusing_connack_carries_no_reason_string_unless_asked(broker):
    """A refusing CONNACK may carry a Reason String [MQTT-3.1.2-29], and
    ternd sends none unless asked: CONNECT with an Authentication Method
    ternd does not support gets exactly 20 03 00 8C 00 (0x8C Bad
    authentication method, 4.12), as from mosquitto."""
    c = broker.raw(m.V5)
    c.send(m.connect(unique("wc"), version=m.V5,
                     properties=[(m.AUTH_METHOD, "unsupported"), (m.AUTH_DATA, b"test")]))
    pkts = c.wait_closed(3)
    assert [p.raw for p in pkts] == [b"\x20\x03\x00\x8c\x00"], pkts


# ---------------------------------------------- CONNECTs that get no CONNACK

@pytest.mark.parametrize("name", [b"MQT", b"", b"MQTTT", b"MQTU"], ids=repr)
def test_unknown_protocol_name_closes_without_connack(broker, name):
    """A protocol name that is not MQTT's: "the Server MAY disconnect the
    Client" [MQTT-3.1.2-1]; ternd closes without a CONNACK (in MQTT form,
    meaningless to a client that speaks something else), as mosquitto
    does."""
    body = m.u16(len(name)) + name + b"\x04\x02" + m.u16(10) + m.s("p")
    c = broker.raw(m.V311)
    assert c.send_ignore_errors(m.packet(m.CONNECT, 0, body))
    assert c.wait_closed(3) == []


@pytest.mark.parametrize("level", [2, 6])
def test_unknown_level_under_mqtt_name_gets_connack_1(broker, level):
    """The MQTT protocol name with a level we do not speak: CONNACK 0x01 and
    close [MQTT-3.1.2-2] (unchanged by the silent close above)."""
    body = m.u16(4) + b"MQTT" + bytes([level, 0]) + m.u16(10) + m.s("p")
    c = broker.raw(m.V311)
    c.send(m.packet(m.CONNECT, 0, body))
    assert [p.raw for p in c.wait_closed(3)] == [b"\x20\x02\x00\x01"]


@pytest.mark.parametrize("cid", [b"\x00\x00", b"\xed\xa0\x80", b"p\x01p", b"to\xed\xbf\xbf"],
                         ids=["u0000", "ud800", "u0001", "udfff"])
def test_malformed_v5_connect_closes_without_connack(broker, cid):
    """A v5 CONNECT with a client id that is not a valid UTF-8 string (or
    holds a character ternd refuses, 1.5.4): the Server MAY send a CONNACK
    with the reason before closing (4.13.1), and does not, as mosquitto does
    not."""
    body = (m.u16(4) + b"MQTT" + b"\x05\x02" + m.u16(10) + b"\x00" +
            m.u16(len(cid)) + cid)
    c = broker.raw(m.V5)
    assert c.send_ignore_errors(m.packet(m.CONNECT, 0, body))
    assert c.wait_closed(3) == []


def test_v5_connect_with_trailing_bytes_closes_without_connack(broker):
    """User Name Flag 0 with a user name after the client id: bytes left
    over, a Malformed Packet ([MQTT-3.1.2-16] in 3.1.1's numbering); closed
    without a CONNACK."""
    body = (m.u16(4) + b"MQTT" + b"\x05\x02" + m.u16(10) + b"\x00" + m.s("p") + m.s("p"))
    c = broker.raw(m.V5)
    assert c.send_ignore_errors(m.packet(m.CONNECT, 0, body))
    assert c.wait_closed(3) == []


# ------------------------------- Malformed Packet or Protocol Error, by rule

@pytest.mark.parametrize("first", [0x00, 0x01, 0x02, 0x04, 0x08])
def test_reserved_packet_type_0_is_protocol_error(broker, first):
    """Packet type 0 is "Reserved / Forbidden" (2.1.2), which the text does
    not classify: a packet this session can never carry, by its type alone,
    a Protocol Error (E0 01 82) whatever its flags, as mosquitto reports it."""
    c, _ = _v5(broker)
    assert [p.raw for p in _closed_after(c, bytes([first, 0]))] == [b"\xe0\x01\x82"]


@pytest.mark.mosquitto_nonconformant(
    "2.0.11 closes without a DISCONNECT; 2.0.20's sequences (AUTH F1..F8) expect E0 01 82")
@pytest.mark.parametrize("first", [0xF1, 0xF2, 0xF4, 0xF8])
def test_auth_without_method_is_protocol_error_whatever_its_flags(broker, first):
    """AUTH when CONNECT agreed no Authentication Method breaks
    [MQTT-4.12.0-7] by its type alone: Protocol Error (E0 01 82), checked
    before the reserved flags, as mosquitto does."""
    c, _ = _v5(broker)
    assert [p.raw for p in _closed_after(c, bytes([first, 0]))] == [b"\xe0\x01\x82"]


@pytest.mark.mosquitto_nonconformant(
    "2.0.11 sends 0x82; 2.0.20 sends 0x81 (its sequences PUBLISH 30 topic with + / #)")
@pytest.mark.parametrize("topic", [b"+", b"#", b"a/+/b", b"a/#"])
def test_publish_topic_with_wildcard_is_malformed(broker, topic):
    """A Topic Name MUST NOT contain wildcard characters [MQTT-3.3.2-2]. 0x90
    (Topic Name invalid) is defined for a name that "is not malformed, but is
    not accepted" (2.4); one with wildcards breaks the grammar of a name, so
    ternd reports a Malformed Packet (E0 01 81), as mosquitto does."""
    c, _ = _v5(broker)
    pkt = m.packet(m.PUBLISH, 0, m.u16(len(topic)) + topic + b"\x00" + b"payload")
    assert [p.raw for p in _closed_after(c, pkt)] == [b"\xe0\x01\x81"]


@pytest.mark.mosquitto_nonconformant(
    "2.0.11 grants some (SUBACK) or says 0x81; 2.0.20's sequences (SUBSCRIBE shared sub "
    "with no topic part) expect E0 01 82")
@pytest.mark.parametrize("flt", [b"$share/p/", b"$share/p", b"$share//t"], ids=repr)
@pytest.mark.parametrize("kind", ["subscribe", "unsubscribe"])
def test_misshaped_shared_subscription_is_protocol_error(broker, flt, kind):
    """"$share/p/" and "$share/p" are well-formed Topic Filters (4.7.1) but
    not shared subscriptions: a ShareName of at least one character followed
    by "/" and a Topic Filter is required [MQTT-4.8.2-1] [MQTT-4.8.2-2]. A
    rule of the protocol, not of the grammar, is broken: Protocol Error
    (E0 01 82), as mosquitto reports it."""
    if kind == "unsubscribe" and MOSQUITTO:
        pytest.skip("mosquitto answers UNSUBACK 0x11 for these filters")
    c, _ = _v5(broker)
    if kind == "subscribe":
        pkt = m.packet(m.SUBSCRIBE, 2, m.u16(0x1234) + b"\x00" + m.u16(len(flt)) + flt + b"\x00")
    else:
        pkt = m.packet(m.UNSUBSCRIBE, 2, m.u16(0x1234) + b"\x00" + m.u16(len(flt)) + flt)
    assert [p.raw for p in _closed_after(c, pkt)] == [b"\xe0\x01\x82"]


@pytest.mark.parametrize("flt", [b"$share/p/a#", b"$share/p+/t", b"a/#/b"], ids=repr)
def test_shared_or_plain_filter_with_bad_wildcards_is_malformed(broker, flt):
    """Misplaced wildcards break the filter grammar (4.7.1) whether or not
    it is a shared subscription: still a Malformed Packet (E0 01 81)."""
    c, _ = _v5(broker)
    pkt = m.packet(m.SUBSCRIBE, 2, m.u16(0x1234) + b"\x00" + m.u16(len(flt)) + flt + b"\x00")
    assert [p.raw for p in _closed_after(c, pkt)] == [b"\xe0\x01\x81"]
