"""A small raw-socket MQTT client for exact-bytes and malformed-input tests.

The encoder here is written independently from the broker's codec, straight
from the specifications (MQTT 3.1 / 3.1.1 OASIS 2014 / 5.0 OASIS 2019), so that
a bug in tern's codec cannot hide itself by being mirrored in the tests.

Builders return `bytes`; nothing is validated, on purpose: tests use them to
produce invalid packets too. RawClient sends bytes and reads whole packets
(decoding the Remaining Length, section 2.2.3 / 1.5.5) with bounded timeouts.
"""

import select
import socket
import struct
import time

# Control packet types (section 2.2.1 / 2.1.2).
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT, AUTH = 12, 13, 14, 15

TYPE_NAMES = {
    1: "CONNECT", 2: "CONNACK", 3: "PUBLISH", 4: "PUBACK", 5: "PUBREC",
    6: "PUBREL", 7: "PUBCOMP", 8: "SUBSCRIBE", 9: "SUBACK", 10: "UNSUBSCRIBE",
    11: "UNSUBACK", 12: "PINGREQ", 13: "PINGRESP", 14: "DISCONNECT", 15: "AUTH",
}

V31, V311, V5 = 3, 4, 5

# MQTT 5.0 property identifiers (section 2.2.2.2) and their data types.
PAYLOAD_FORMAT = 0x01
MESSAGE_EXPIRY = 0x02
CONTENT_TYPE = 0x03
RESPONSE_TOPIC = 0x08
CORRELATION_DATA = 0x09
SUBSCRIPTION_ID = 0x0B
SESSION_EXPIRY = 0x11
ASSIGNED_CLIENT_ID = 0x12
SERVER_KEEP_ALIVE = 0x13
AUTH_METHOD = 0x15
AUTH_DATA = 0x16
REQUEST_PROBLEM_INFO = 0x17
WILL_DELAY = 0x18
REQUEST_RESPONSE_INFO = 0x19
RESPONSE_INFO = 0x1A
SERVER_REFERENCE = 0x1C
REASON_STRING = 0x1F
RECEIVE_MAXIMUM = 0x21
TOPIC_ALIAS_MAXIMUM = 0x22
TOPIC_ALIAS = 0x23
MAXIMUM_QOS = 0x24
RETAIN_AVAILABLE = 0x25
USER_PROPERTY = 0x26
MAXIMUM_PACKET_SIZE = 0x27
WILDCARD_SUB_AVAILABLE = 0x28
SUB_ID_AVAILABLE = 0x29
SHARED_SUB_AVAILABLE = 0x2A

_BYTE, _U16, _U32, _VBI, _STR, _BIN, _PAIR = range(7)
PROP_TYPES = {
    PAYLOAD_FORMAT: _BYTE, MESSAGE_EXPIRY: _U32, CONTENT_TYPE: _STR,
    RESPONSE_TOPIC: _STR, CORRELATION_DATA: _BIN, SUBSCRIPTION_ID: _VBI,
    SESSION_EXPIRY: _U32, ASSIGNED_CLIENT_ID: _STR, SERVER_KEEP_ALIVE: _U16,
    AUTH_METHOD: _STR, AUTH_DATA: _BIN, REQUEST_PROBLEM_INFO: _BYTE,
    WILL_DELAY: _U32, REQUEST_RESPONSE_INFO: _BYTE, RESPONSE_INFO: _STR,
    SERVER_REFERENCE: _STR, REASON_STRING: _STR, RECEIVE_MAXIMUM: _U16,
    TOPIC_ALIAS_MAXIMUM: _U16, TOPIC_ALIAS: _U16, MAXIMUM_QOS: _BYTE,
    RETAIN_AVAILABLE: _BYTE, USER_PROPERTY: _PAIR, MAXIMUM_PACKET_SIZE: _U32,
    WILDCARD_SUB_AVAILABLE: _BYTE, SUB_ID_AVAILABLE: _BYTE,
    SHARED_SUB_AVAILABLE: _BYTE,
}


# ---------------------------------------------------------------- encoding

def vbi(n):
    """Variable Byte Integer, minimal encoding (section 1.5.5 / 2.2.3)."""
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            b |= 0x80
        out.append(b)
        if not n:
            return bytes(out)


def u16(n):
    return struct.pack("!H", n)


def u32(n):
    return struct.pack("!I", n)


def s(text):
    """UTF-8 Encoded String: 2-byte length then bytes. `text` may be bytes
    (to send deliberately ill-formed UTF-8)."""
    b = text if isinstance(text, (bytes, bytearray)) else text.encode("utf-8")
    return u16(len(b)) + bytes(b)


def binary(data):
    return u16(len(data)) + bytes(data)


def props(items=None):
    """Encode a v5 property block (length + properties). `items` is a list of
    (id, value) pairs, in order; a dict is accepted too. User properties take
    (name, value) tuples."""
    if items is None:
        items = []
    if isinstance(items, dict):
        items = list(items.items())
    body = bytearray()
    for pid, val in items:
        t = PROP_TYPES[pid]
        body += vbi(pid)
        if t == _BYTE:
            body.append(val)
        elif t == _U16:
            body += u16(val)
        elif t == _U32:
            body += u32(val)
        elif t == _VBI:
            body += vbi(val)
        elif t == _STR:
            body += s(val)
        elif t == _BIN:
            body += binary(val)
        elif t == _PAIR:
            body += s(val[0]) + s(val[1])
    return vbi(len(body)) + bytes(body)


def packet(ptype, flags, body):
    """Fixed header (type, flags, Remaining Length) + body."""
    return bytes([(ptype << 4) | (flags & 0x0F)]) + vbi(len(body)) + bytes(body)


def connect(client_id="", version=V311, clean=True, keepalive=60,
            will=None, username=None, password=None, properties=None,
            proto_name=None, reserved=False):
    """CONNECT (section 3.1). `will` is a dict: topic, payload, qos, retain,
    properties (v5). MQTT 3.1 uses the protocol name "MQIsdp"."""
    if proto_name is None:
        proto_name = "MQIsdp" if version == V31 else "MQTT"
    flags = 0
    if reserved:
        flags |= 0x01
    if clean:
        flags |= 0x02
    if will is not None:
        flags |= 0x04 | (will.get("qos", 0) << 3)
        if will.get("retain"):
            flags |= 0x20
    if password is not None:
        flags |= 0x40
    if username is not None:
        flags |= 0x80
    vh = s(proto_name) + bytes([version, flags]) + u16(keepalive)
    if version == V5:
        vh += props(properties)
    pl = s(client_id)
    if will is not None:
        if version == V5:
            pl += props(will.get("properties"))
        pl += s(will["topic"]) + binary(will.get("payload", b""))
    if username is not None:
        pl += s(username)
    if password is not None:
        pl += binary(password)
    return packet(CONNECT, 0, vh + pl)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, pid=None,
            version=V311, properties=None):
    """PUBLISH (section 3.3). Packet id defaults to 1 for QoS > 0."""
    if isinstance(payload, str):
        payload = payload.encode()
    flags = (0x08 if dup else 0) | ((qos & 3) << 1) | (0x01 if retain else 0)
    vh = s(topic)
    if qos > 0:
        vh += u16(1 if pid is None else pid)
    if version == V5:
        vh += props(properties)
    return packet(PUBLISH, flags, vh + payload)


def _ack(ptype, flags, pid, version, rc, properties):
    body = u16(pid)
    if version == V5 and (rc != 0 or properties):
        body += bytes([rc])
        if properties:
            body += props(properties)
    return packet(ptype, flags, body)


def puback(pid, version=V311, rc=0, properties=None):
    return _ack(PUBACK, 0, pid, version, rc, properties)


def pubrec(pid, version=V311, rc=0, properties=None):
    return _ack(PUBREC, 0, pid, version, rc, properties)


def pubrel(pid, version=V311, rc=0, properties=None):
    # Bits 3..0 of PUBREL are reserved: 0,0,1,0 [MQTT-3.6.1-1].
    return _ack(PUBREL, 0x02, pid, version, rc, properties)


def pubcomp(pid, version=V311, rc=0, properties=None):
    return _ack(PUBCOMP, 0, pid, version, rc, properties)


def subscribe(pid, filters, version=V311, properties=None, flags=0x02):
    """SUBSCRIBE (section 3.8). `filters` is a list of (filter, options)
    where options is the requested QoS (v3) or the whole subscription
    options byte (v5: QoS | NL<<2 | RAP<<3 | RH<<4). Reserved flags must be
    0010 [MQTT-3.8.1-1]; `flags` lets a test break that."""
    body = u16(pid)
    if version == V5:
        body += props(properties)
    for f, opts in filters:
        body += s(f) + bytes([opts])
    return packet(SUBSCRIBE, flags, body)


def sub_opts(qos=0, no_local=False, rap=False, rh=0):
    """v5 Subscription Options byte (section 3.8.3.1)."""
    return qos | (0x04 if no_local else 0) | (0x08 if rap else 0) | (rh << 4)


def unsubscribe(pid, filters, version=V311, properties=None):
    body = u16(pid)
    if version == V5:
        body += props(properties)
    for f in filters:
        body += s(f)
    return packet(UNSUBSCRIBE, 0x02, body)


def pingreq():
    return packet(PINGREQ, 0, b"")


def disconnect(version=V311, rc=None, properties=None):
    body = b""
    if version == V5 and (rc is not None or properties):
        body = bytes([rc or 0])
        if properties:
            body += props(properties)
    return packet(DISCONNECT, 0, body)


def auth(rc=0x18, properties=None):
    return packet(AUTH, 0, bytes([rc]) + props(properties))


# ---------------------------------------------------------------- decoding

class Reader:
    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0

    def left(self):
        return len(self.data) - self.pos

    def byte(self):
        b = self.data[self.pos]
        self.pos += 1
        return b

    def u16(self):
        v = struct.unpack_from("!H", self.data, self.pos)[0]
        self.pos += 2
        return v

    def u32(self):
        v = struct.unpack_from("!I", self.data, self.pos)[0]
        self.pos += 4
        return v

    def vbi(self):
        mult, val = 1, 0
        for _ in range(4):
            b = self.byte()
            val += (b & 0x7F) * mult
            if not b & 0x80:
                return val
            mult *= 128
        raise ValueError("variable byte integer longer than 4 bytes")

    def bin(self):
        n = self.u16()
        v = self.data[self.pos:self.pos + n]
        if len(v) != n:
            raise ValueError("truncated string")
        self.pos += n
        return v

    def str(self):
        return self.bin().decode("utf-8")

    def rest(self):
        v = self.data[self.pos:]
        self.pos = len(self.data)
        return v

    def props(self):
        """Decode a property block into a dict id -> value; user properties
        become a list of (name, value), subscription ids a list of ints."""
        n = self.vbi()
        end = self.pos + n
        out = {}
        while self.pos < end:
            pid = self.vbi()
            t = PROP_TYPES.get(pid)
            if t is None:
                raise ValueError("unknown property 0x%02x" % pid)
            if t == _BYTE:
                v = self.byte()
            elif t == _U16:
                v = self.u16()
            elif t == _U32:
                v = self.u32()
            elif t == _VBI:
                v = self.vbi()
            elif t == _STR:
                v = self.str()
            elif t == _BIN:
                v = self.bin()
            else:
                v = (self.str(), self.str())
            if pid in (USER_PROPERTY, SUBSCRIPTION_ID):
                out.setdefault(pid, []).append(v)
            else:
                if pid in out:
                    raise ValueError("duplicated property 0x%02x" % pid)
                out[pid] = v
        if self.pos != end:
            raise ValueError("property block overrun")
        return out


class Packet:
    """One received packet. `raw` holds the exact bytes; decoded fields are
    attributes: type, flags, and per type pid, rc, session_present, topic,
    payload, qos, dup, retain, props, codes."""

    def __init__(self, ptype, flags, body, raw, version):
        self.type = ptype
        self.flags = flags
        self.body = body
        self.raw = raw
        self.props = {}
        self.rc = None
        self.pid = None
        r = Reader(body)
        v5 = version == V5
        if ptype == CONNACK:
            self.ack_flags = r.byte()
            self.session_present = bool(self.ack_flags & 1)
            self.rc = r.byte()
            if v5 and r.left():
                self.props = r.props()
        elif ptype == PUBLISH:
            self.dup = bool(flags & 0x08)
            self.qos = (flags >> 1) & 3
            self.retain = bool(flags & 1)
            self.topic = r.str()
            if self.qos > 0:
                self.pid = r.u16()
            if v5:
                self.props = r.props()
            self.payload = r.rest()
        elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP):
            self.pid = r.u16()
            self.rc = 0
            if v5 and r.left():
                self.rc = r.byte()
                if r.left():
                    self.props = r.props()
        elif ptype in (SUBACK, UNSUBACK):
            self.pid = r.u16()
            if v5:
                self.props = r.props()
            self.codes = list(r.rest())
        elif ptype in (DISCONNECT, AUTH):
            self.rc = 0
            if r.left():
                self.rc = r.byte()
                if r.left():
                    self.props = r.props()

    @property
    def name(self):
        return TYPE_NAMES.get(self.type, str(self.type))

    def __repr__(self):
        extra = ""
        if self.type == PUBLISH:
            extra = " topic=%r qos=%d dup=%d retain=%d pid=%r payload=%r" % (
                self.topic, self.qos, self.dup, self.retain, self.pid,
                self.payload[:40])
        elif self.rc is not None:
            extra = " rc=0x%02x pid=%r" % (self.rc, self.pid)
        elif self.pid is not None:
            extra = " pid=%r" % self.pid
        if self.props:
            extra += " props=%r" % (self.props,)
        return "<%s%s>" % (self.name, extra)


class Closed(Exception):
    """The broker closed the connection."""


class RawClient:
    """A TCP connection speaking hand-encoded MQTT. All waits are bounded."""

    def __init__(self, host, port, version=V311, timeout=5.0):
        self.version = version
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False
        self.pending = []  # packets read ahead of time, returned first

    # -- sending
    def send(self, data):
        self.sock.sendall(bytes(data))

    def send_ignore_errors(self, data):
        try:
            self.sock.sendall(bytes(data))
            return True
        except OSError:
            return False

    # -- receiving
    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from broker within timeout")
        r, _, _ = select.select([self.sock], [], [], remaining)
        if not r:
            raise TimeoutError("no data from broker within timeout")
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            chunk = b""
        if not chunk:
            self.eof = True
            raise Closed("connection closed by broker")
        self.buf += chunk

    def _try_parse(self):
        """Return a Packet if the buffer holds one whole packet, else None."""
        if len(self.buf) < 2:
            return None
        mult, length, i = 1, 0, 1
        while True:
            if i >= len(self.buf):
                return None
            b = self.buf[i]
            length += (b & 0x7F) * mult
            i += 1
            if not b & 0x80:
                break
            mult *= 128
            if i > 4:
                raise ValueError("broker sent a bad remaining length")
        if len(self.buf) < i + length:
            return None
        raw = bytes(self.buf[:i + length])
        del self.buf[:i + length]
        return Packet(raw[0] >> 4, raw[0] & 0x0F, raw[i:], raw, self.version)

    def recv(self, timeout=None):
        """Next packet; raises TimeoutError or Closed."""
        if self.pending:
            return self.pending.pop(0)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            p = self._try_parse()
            if p is not None:
                return p
            if self.eof:
                raise Closed("connection closed by broker")
            self._fill(deadline)

    def recv_type(self, ptype, timeout=None, auto_ping=False):
        """Next packet of `ptype`, failing on anything else (PINGRESP is
        skipped when auto_ping)."""
        while True:
            p = self.recv(timeout)
            if auto_ping and p.type == PINGRESP:
                continue
            assert p.type == ptype, "expected %s, got %r" % (TYPE_NAMES[ptype], p)
            return p

    def recv_all(self, timeout=0.5):
        """Every packet that arrives within `timeout` (stops on close)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return out
            try:
                out.append(self.recv(remaining))
            except (TimeoutError, Closed):
                return out

    def no_packet(self, timeout=0.3):
        """True if nothing arrives within `timeout` (and the socket is open)."""
        try:
            p = self.recv(timeout)
        except TimeoutError:
            return True
        except Closed:
            return False
        raise AssertionError("unexpected packet %r" % (p,))

    def wait_closed(self, timeout=None):
        """Wait until the broker closes the connection. Returns the packets
        received before the close (e.g. a v5 DISCONNECT). Raises
        AssertionError if the connection is still open after `timeout`."""
        out = []
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    "broker did not close the connection; got %r" % (out,))
            try:
                out.append(self.recv(remaining))
            except Closed:
                return out
            except TimeoutError:
                continue
            except ValueError:
                # The broker will not be sending a parsable packet; drop it.
                self.buf.clear()

    def is_open(self):
        """Probe with PINGREQ: True if a PINGRESP comes back."""
        if not self.send_ignore_errors(pingreq()):
            return False
        try:
            while True:
                p = self.recv(2.0)
                if p.type == PINGRESP:
                    return True
        except (Closed, TimeoutError):
            return False

    # -- conveniences
    def connect(self, client_id="", clean=True, keepalive=60, expect_rc=0, **kw):
        """Send CONNECT and read the CONNACK; assert the return code."""
        self.send(connect(client_id, version=self.version, clean=clean,
                          keepalive=keepalive, **kw))
        ack = self.recv_type(CONNACK)
        if expect_rc is not None:
            assert ack.rc == expect_rc, "CONNACK %r" % (ack,)
        return ack

    def subscribe(self, filters, pid=1, properties=None):
        """Subscribe and return the SUBACK (PUBLISHes of retained messages
        that arrive first are kept in self.early)."""
        if isinstance(filters, str):
            filters = [(filters, 0)]
        self.send(subscribe(pid, filters, self.version, properties))
        self.early = []
        while True:
            p = self.recv()
            if p.type == SUBACK:
                assert p.pid == pid
                return p
            self.early.append(p)

    def unsubscribe(self, filters, pid=2):
        self.send(unsubscribe(pid, filters, self.version))
        return self.recv_type(UNSUBACK)

    def publish(self, topic, payload=b"", qos=0, retain=False, pid=1,
                properties=None, complete=True):
        """Publish; with `complete` run the QoS 1/2 handshake to the end."""
        self.send(publish(topic, payload, qos, retain, pid=pid,
                          version=self.version, properties=properties))
        if not complete or qos == 0:
            return None
        if qos == 1:
            ack = self.recv_type(PUBACK)
            assert ack.pid == pid
            return ack
        rec = self.recv_type(PUBREC)
        assert rec.pid == pid
        self.send(pubrel(pid, self.version))
        comp = self.recv_type(PUBCOMP)
        assert comp.pid == pid
        return comp

    def ack(self, p):
        """Acknowledge an inbound PUBLISH as the receiver (QoS 2: the whole
        PUBREC / PUBREL / PUBCOMP exchange)."""
        if p.qos == 1:
            self.send(puback(p.pid, self.version))
        elif p.qos == 2:
            self.send(pubrec(p.pid, self.version))
            # Other PUBLISHes may be interleaved before our PUBREL: keep them.
            others = []
            while True:
                rel = self.recv()
                if rel.type == PUBREL and rel.pid == p.pid:
                    break
                others.append(rel)
            assert rel.flags == 0x02, "PUBREL flags must be 0010 [MQTT-3.6.1-1]"
            self.pending = others + self.pending
            self.send(pubcomp(p.pid, self.version))

    def recv_publish(self, timeout=None, ack=True):
        """The next PUBLISH: first one that came before the SUBACK (kept in
        self.early by subscribe(): the Server may send matching PUBLISHes
        before the SUBACK, section 3.8.4), then the next off the socket."""
        early = getattr(self, "early", None) or []
        for i, q in enumerate(early):
            if q.type == PUBLISH:
                del early[i]
                if ack:
                    self.ack(q)
                return q
        p = self.recv_type(PUBLISH, timeout)
        if ack:
            self.ack(p)
        return p

    def disconnect(self, rc=None, properties=None, wait=1.0):
        """Sends DISCONNECT and returns once the Server has closed the
        connection (at most `wait` seconds): the Server closes it only after
        it has handled the DISCONNECT [MQTT-3.14.4-1..3], so what a test does
        next meets an offline session, whichever worker or thread handled
        this connection. Bytes still arriving are dropped."""
        if self.send_ignore_errors(disconnect(self.version, rc, properties)) and wait:
            deadline = time.monotonic() + wait
            try:
                self.sock.shutdown(socket.SHUT_WR)
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    r, _, _ = select.select([self.sock], [], [], left)
                    if r and not self.sock.recv(65536):
                        break
            except OSError:
                pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Close abruptly with a TCP RST, no DISCONNECT."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()
