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


# ------------------------------------------------------- server-only packets

MOSQ_2012 = pytest.mark.mosquitto_nonconformant(
    "2.0.11 ignores it; closed since mosquitto 2.0.12's strict protocol checks")


@pytest.mark.parametrize("version", [m.V311, m.V5])
@pytest.mark.parametrize("data", [
    pytest.param(b"\x20\x03\x00\x00\x00", id="connack"),
    # CONNACK with a property (Maximum QoS) that v3 cannot carry.
    pytest.param(b"\x20\x05\x00\x00\x02\x24\x01", id="connack_props"),
    pytest.param(b"\x90\x04\x12\x34\x00\x00", id="suback", marks=MOSQ_2012),
    # UNSUBACK with Payload Format Indicator, not allowed in it.
    pytest.param(b"\xb0\x06\x12\x34\x02\x01\x01\x00", id="unsuback_bad_prop",
                 marks=MOSQ_2012),
    pytest.param(b"\xd1\x00", id="pingresp_flags", marks=MOSQ_2012),
])
def test_server_only_packet_is_a_protocol_error_whatever_it_holds(broker, probe, version,
                                                                  data):
    """CONNACK, SUBACK, UNSUBACK and PINGRESP travel only from the Server: a
    client that sends one commits a Protocol Error (v5 DISCONNECT 0x82, v3
    close), decided by the packet type alone, before its flags or body (a
    property it may not carry, a reserved flag) are looked at, as mosquitto
    2.0.20's sequences expect."""
    c = broker.raw(version)
    c.connect(unique("srv"))
    c.send_ignore_errors(data)
    closed_with(c, version, [PROTOCOL])
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


# ------------------------------------------- closing so the client can read why

def _flood_past_receive_maximum(c, n=21, extra=200):
    """Sends n QoS 2 PUBLISHes without PUBREL (the broker announced Receive
    Maximum 20: the 21st is one too many [MQTT-3.3.4-7], DISCONNECT 0x93)
    followed at once by `extra` 1 KB QoS 0 PUBLISHes, so that the broker
    closes while much of what we sent is still unread in its socket."""
    burst = b"".join(m.publish("lin/t", b"q", qos=2, pid=i + 1, version=m.V5)
                     for i in range(n))
    burst += m.publish("lin/t", b"z" * 1024, version=m.V5) * extra
    c.send(burst)


def _read_until_disconnect(c, timeout=5):
    """Reads packets until the DISCONNECT; returns it (or fails)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = c.recv(max(0.01, deadline - time.monotonic()))
        if p.type == m.DISCONNECT:
            return p
        assert p.type == m.PUBREC, p
    raise AssertionError("no DISCONNECT")


@pytest.mark.mosquitto_nonconformant("2.0.11 closes without DISCONNECT 0x93")
def test_disconnect_reason_readable_while_client_keeps_sending(broker):
    """After a v5 DISCONNECT with a reason (0x93 Receive Maximum exceeded,
    [MQTT-3.3.4-7]; [MQTT-4.13.2-1]) the broker closes gracefully: a client
    that still has bytes in flight and keeps sending for a while (as Paho's
    test_flow_control2 does) sees no reset (no EPIPE / ECONNRESET) and then
    reads the DISCONNECT with its reason, followed by the end of the
    stream. Closing a socket with unread input would make the kernel reset
    the connection instead."""
    c = broker.raw(m.V5)
    ack = c.connect(unique("lin"))
    assert ack.props.get(m.RECEIVE_MAXIMUM) == 20
    _flood_past_receive_maximum(c)
    errors = []
    for _ in range(25):
        time.sleep(0.02)
        try:
            c.sock.sendall(m.pingreq())
        except OSError as e:
            errors.append(e)
            break
    assert not errors, "send failed after the broker's DISCONNECT: %r" % errors
    d = _read_until_disconnect(c)
    assert d.rc == 0x93, d
    assert c.wait_closed(5) is not None


@pytest.mark.ternd_only
@pytest.mark.broker_config("persistence false")
def test_lingering_connection_is_no_longer_the_sessions(broker):
    """The graceful close is bounded and detaches the session at once: while
    the old connection still lingers (its client neither reads nor
    closes), a new connection with the same client id resumes the session
    (session present) without a takeover, and the broker ends the old
    socket by itself within its bound (2 s) even though the client never
    closes it."""
    cid = unique("lin")
    a = broker.raw(m.V5)
    a.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 300)])
    _flood_past_receive_maximum(a)
    time.sleep(0.2)
    b = broker.raw(m.V5)
    ack = b.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 300)])
    assert ack.session_present
    assert b.is_open()
    d = _read_until_disconnect(a)
    assert d.rc == 0x93, d  # not 0x8E: no takeover was needed
    a.wait_closed(3)  # our side was shut down: end of stream
    # The broker still reads (and drops) what a sends, but not for ever:
    # once it has closed the socket, a send meets a reset.
    deadline = time.monotonic() + 6
    ended = False
    while time.monotonic() < deadline and not ended:
        time.sleep(0.1)
        try:
            a.sock.sendall(m.pingreq())
        except OSError:
            ended = True
    assert ended, "the lingering socket was never closed"
    b.disconnect()


@pytest.mark.mosquitto_nonconformant("2.0.11 sends a second DISCONNECT, no close frame")
def test_malformed_packet_disconnect_over_websockets_then_close_frame(tmp_path):
    """Over WebSockets the graceful close sends the DISCONNECT (0x81 for a
    QoS 3 PUBLISH, [MQTT-3.3.1-4]), then a close frame (RFC 6455 5.5.1),
    then ends the TCP stream."""
    from conftest import Broker, free_port, wait_port
    from test_websockets import WS
    b = Broker(tmp_path, 1, [])
    b.ws_port = free_port()
    b.extra = ["listener %d 127.0.0.1" % b.ws_port, "protocol websockets"]
    b.start()
    try:
        assert wait_port(b.ws_port, b.proc)
        w = WS(b.ws_port)
        w.frame(m.connect(unique("ws"), version=m.V5))
        assert w.recv_mqtt()[:1] == b"\x20"
        w.frame(m.publish("a", b"x", qos=3, version=m.V5) + b"\x00" * 5000)
        got = w.recv_mqtt()
        assert got[0] == 0xE0 and got[2] == MALFORMED, got
        f = w.recv_frame()
        assert f is not None and f[0] == 8, f
        assert w.recv_frame() is None
        w.close()
    finally:
        b.stop()


@pytest.mark.mosquitto_nonconformant("2.0.11 cuts the TLS stream without close_notify")
def test_disconnect_over_tls_ends_with_close_notify(tmp_path):
    """Over TLS the graceful close sends close_notify after the DISCONNECT,
    so a client that still has bytes in flight and keeps sending reads the
    DISCONNECT and then a clean end of the TLS stream: no reset, and not an
    EOF that violates the protocol (a truncation)."""
    import os
    import ssl
    from conftest import Broker, free_port, wait_port
    from test_tls import make_ca, make_cert
    d = str(tmp_path)
    make_ca(d, "ca")
    make_cert(d, "ca", "server", "localhost", server=True)
    b = Broker(tmp_path / "b", 1, [])
    os.makedirs(b.dir, exist_ok=True)
    port = free_port()
    b.extra = ["listener %d 127.0.0.1" % port,
               "certfile " + os.path.join(d, "server.crt"),
               "keyfile " + os.path.join(d, "server.key")]
    b.start()
    try:
        assert wait_port(port, b.proc)
        ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(m.connect(unique("tls"), version=m.V5))
        data = b""
        # Bytes still in flight when the broker closes, and more after.
        s.sendall(m.publish("a", b"x", qos=3, version=m.V5) + b"\x00" * 100000)
        for _ in range(10):
            time.sleep(0.02)
            s.sendall(m.pingreq())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chunk = s.recv(4096)  # SSLEOFError if the stream is cut
            if not chunk:
                break
            data += chunk
        assert data[:1] == b"\x20"
        assert b"\xe0" in data[4:], data
        s.close()
    finally:
        b.stop()
