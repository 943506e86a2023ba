#!/usr/bin/python3
"""Writes the seed corpora of the network fuzz targets: realistic MQTT
sessions, for fuzz_conn, and the same over WebSockets (fuzz_ws) and TLS
(fuzz_tls), with the upgrade, framing and TLS cases of those transports.

    /usr/bin/python3 fuzz/gen_conn_seeds.py [all|conn|ws|tls] [OUTDIR]

(default: all three, to fuzz/corpus/fuzz_<target>/). Each seed is a list of
segments in the target's input format (see fuzz_conn.c, fuzz_ws.c,
fuzz_tls.c): [op][len][bytes], op % 3 (fuzz_conn) or (op & 15) % 3 the
client slot, op >= 0xF0 a reconnect of that slot first; fuzz_tls inputs
start with a mode byte. Data longer than 255 bytes is split over several
segments of the same slot. The packets and frames are built here from the
MQTT 3.1.1 and 5.0 specifications and RFC 6455, independently of tern's
encoder, so the seeds also say what a correct client sends.
"""
import os
import struct
import sys

V31, V311, V5 = 3, 4, 5


def varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def s(text):
    """A length-prefixed string (UTF-8) or binary data."""
    b = text.encode() if isinstance(text, str) else text
    return struct.pack(">H", len(b)) + b


def packet(first, body):
    return bytes([first]) + varint(len(body)) + body


def props(*items):
    """v5 properties: items are already encoded (id byte + value)."""
    raw = b"".join(items)
    return varint(len(raw)) + raw


def p_byte(pid, v):
    return bytes([pid, v])


def p_u16(pid, v):
    return bytes([pid]) + struct.pack(">H", v)


def p_u32(pid, v):
    return bytes([pid]) + struct.pack(">I", v)


def p_str(pid, v):
    return bytes([pid]) + s(v)


def p_var(pid, v):
    return bytes([pid]) + varint(v)


def p_user(name, value):
    return bytes([0x26]) + s(name) + s(value)


def connect(cid, version=V311, clean=True, keepalive=60, will=None, user=None, password=None,
            cprops=b""):
    """will: (topic, payload, qos, retain[, will properties])."""
    name = "MQIsdp" if version == V31 else "MQTT"
    flags = 0x02 if clean else 0
    if will:
        flags |= 0x04 | (will[2] << 3) | (0x20 if will[3] else 0)
    if user is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    body = s(name) + bytes([version, flags]) + struct.pack(">H", keepalive)
    if version == V5:
        body += props(cprops) if cprops else b"\x00"
    body += s(cid)
    if will:
        if version == V5:
            body += props(will[4]) if len(will) > 4 else b"\x00"
        body += s(will[0]) + s(will[1])
    if user is not None:
        body += s(user)
    if password is not None:
        body += s(password)
    return packet(0x10, body)


def publish(topic, payload, qos=0, pid=0, retain=False, dup=False, version=V311, pprops=b""):
    first = 0x30 | (qos << 1) | (1 if retain else 0) | (0x08 if dup else 0)
    body = s(topic)
    if qos:
        body += struct.pack(">H", pid)
    if version == V5:
        body += props(pprops) if pprops else b"\x00"
    body += payload.encode() if isinstance(payload, str) else payload
    return packet(first, body)


def ack(kind, pid, version=V311, reason=None):
    """kind: puback, pubrec, pubrel, pubcomp."""
    first = {"puback": 0x40, "pubrec": 0x50, "pubrel": 0x62, "pubcomp": 0x70}[kind]
    body = struct.pack(">H", pid)
    if version == V5 and reason is not None:
        body += bytes([reason])
    return packet(first, body)


def subscribe(pid, filters, version=V311, sprops=b""):
    """filters: [(filter, options byte)]."""
    body = struct.pack(">H", pid)
    if version == V5:
        body += props(sprops) if sprops else b"\x00"
    for f, opts in filters:
        body += s(f) + bytes([opts])
    return packet(0x82, body)


def unsubscribe(pid, filters, version=V311):
    body = struct.pack(">H", pid)
    if version == V5:
        body += b"\x00"
    for f in filters:
        body += s(f)
    return packet(0xA2, body)


def pingreq():
    return b"\xc0\x00"


def disconnect(version=V311, reason=None, dprops=b""):
    if version == V5 and (reason is not None or dprops):
        return packet(0xE0, bytes([reason or 0]) + (props(dprops) if dprops else b""))
    return b"\xe0\x00"


class Seed:
    """A session: what each client slot sends, in order. render() gives
    it in fuzz_conn's format; ws_input() and tls_input() below in those of
    fuzz_ws and fuzz_tls."""

    def __init__(self):
        self.events = []  # (reconnect first?, slot, bytes)

    def send(self, slot, *packets):
        self.events.append((False, slot, b"".join(packets)))
        return self

    def reconnect(self, slot, *packets):
        """Closes the slot's socket, connects again and sends packets."""
        self.events.append((True, slot, b"".join(packets)))
        return self

    def render(self):
        return segments((0xF0 + slot if again else slot, data)
                        for again, slot, data in self.events)


# fuzz_ws / fuzz_tls operations (op >> 4), see those files.
K_HALF_CLOSE, K_PAUSE, K_NO_ITERATE, K_FRAME, K_RECONNECT = 0xB, 0xC, 0xD, 0xE, 0xF
K_SPLIT, K_KEY_UPDATE, K_RAW, K_CLOSE_NOTIFY = 0x7, 0x8, 0x9, 0xA


def segments(ops):
    """[op][len][bytes] for each (op, data); data longer than 255 bytes
    goes on in further segments of the same slot, with the same op when
    it is a way of writing (raw, without iterating, framed), else as a
    plain write; empty data makes one empty segment."""
    out = bytearray()
    for op, data in ops:
        first, data = data[:255], data[255:]
        out += bytes([op, len(first)]) + first
        cont = op if op >> 4 in (K_RAW, K_NO_ITERATE, K_FRAME) else op & 0x0F
        while data:
            chunk, data = data[:255], data[255:]
            out += bytes([cont, len(chunk)]) + chunk
    return bytes(out)


def seeds():
    out = {}

    # v3.1.1: subscriber and publisher, QoS 0.
    out["v311-qos0"] = (Seed()
                        .send(0, connect("sub"), subscribe(1, [("a/#", 0)]))
                        .send(1, connect("pub"), publish("a/b", "hello"), pingreq())
                        .send(0, pingreq(), disconnect())
                        .send(1, disconnect()))

    # v3.1.1 QoS 1 both ways: the broker's PUBACK to the publisher, the
    # subscriber's PUBACK for packet id 1.
    out["v311-qos1"] = (Seed()
                        .send(0, connect("sub", keepalive=30), subscribe(7, [("t/+", 1)]))
                        .send(1, connect("pub"), publish("t/1", "one", qos=1, pid=5))
                        .send(0, ack("puback", 1))
                        .send(1, publish("t/2", "two", qos=1, pid=6))
                        .send(0, ack("puback", 2), unsubscribe(8, ["t/+"]), disconnect())
                        .send(1, disconnect()))

    # v3.1.1 QoS 2 both ways.
    out["v311-qos2"] = (Seed()
                        .send(0, connect("sub"), subscribe(1, [("q2/#", 2)]))
                        .send(1, connect("pub"), publish("q2/x", "exactly", qos=2, pid=10))
                        .send(1, ack("pubrel", 10))
                        .send(0, ack("pubrec", 1))
                        .send(0, ack("pubcomp", 1))
                        .send(1, publish("q2/x", "dup", qos=2, pid=10, dup=True),
                              ack("pubrel", 10), disconnect())
                        .send(0, disconnect()))

    # MQTT 3.1 (MQIsdp) and a subscription downgraded to QoS 1.
    out["v31"] = (Seed()
                  .send(0, connect("old-client", version=V31), subscribe(1, [("x", 1)]))
                  .send(1, connect("p", version=V31), publish("x", "q2 to q1", qos=2, pid=1),
                        ack("pubrel", 1))
                  .send(0, ack("puback", 1), disconnect()))

    # v5 with properties on everything.
    cprops = (p_u32(0x11, 3600) + p_u16(0x21, 2) + p_u32(0x27, 2048) + p_u16(0x22, 4) +
              p_byte(0x19, 1) + p_byte(0x17, 1) + p_user("k", "v"))
    pprops = (p_byte(0x01, 1) + p_u32(0x02, 60) + p_u16(0x23, 1) + p_str(0x08, "reply/to") +
              p_str(0x09, b"\x01\x02") + p_str(0x03, "text/plain") + p_user("a", "b"))
    out["v5-props"] = (Seed()
                       .send(0, connect("sub5", version=V5, cprops=cprops),
                             subscribe(1, [("v5/#", 0x01 | 0x04 | 0x08 | 0x10)], version=V5,
                                       sprops=p_var(0x0B, 42)),
                             subscribe(2, [("v5/+/c", 0x02)], version=V5,
                                       sprops=p_var(0x0B, 7)))
                       .send(1, connect("pub5", version=V5, cprops=p_u16(0x22, 4)),
                             publish("v5/b/c", "with props", qos=1, pid=1, version=V5,
                                     pprops=pprops),
                             publish("", "via alias", qos=0, version=V5,
                                     pprops=p_u16(0x23, 1)))
                       .send(0, ack("puback", 1, V5, 0), ack("pubrec", 2, V5, 0x10))
                       .send(0, disconnect(V5, 0x00, p_u32(0x11, 0)))
                       .send(1, disconnect(V5, 0x04)))

    # v3.1.1 will, fired by an abrupt close, delivered to a subscriber.
    out["will-v311"] = (Seed()
                        .send(1, connect("watcher"), subscribe(1, [("will/#", 1)]))
                        .send(0, connect("dying", keepalive=10,
                                         will=("will/dying", "gone", 1, True)))
                        .reconnect(0, connect("dying"))
                        .send(1, ack("puback", 1), subscribe(2, [("will/#", 0)]))
                        .send(0, disconnect()))

    # v5 will with a delay and a session that outlives the connection;
    # the client comes back before the delay, so the will does not fire.
    out["will-v5-delay"] = (Seed()
                            .send(1, connect("w5", version=V5), subscribe(
                                1, [("lw/#", 2)], version=V5))
                            .send(0, connect("dying5", version=V5, clean=False,
                                             cprops=p_u32(0x11, 100),
                                             will=("lw/x", "bye", 2, False,
                                                   p_u32(0x18, 30) + p_u32(0x02, 10))))
                            .reconnect(0, connect("dying5", version=V5, clean=False))
                            .send(0, disconnect(V5, 0x04))
                            .send(1, disconnect(V5)))

    # Retained messages: set, receive on subscribe, clear.
    out["retained"] = (Seed()
                       .send(0, connect("r"), publish("r/1", "kept", qos=1, pid=1, retain=True),
                             publish("r/2", "kept too", retain=True),
                             publish("r/3", "q2", qos=2, pid=2, retain=True), ack("pubrel", 2))
                       .send(1, connect("late", version=V5),
                             subscribe(1, [("r/#", 0x02)], version=V5),
                             subscribe(2, [("r/1", 0x02 | 0x20)], version=V5),
                             subscribe(3, [("r/+", 0x01 | 0x10)], version=V5))
                       .send(1, ack("puback", 1, V5), ack("pubrec", 2, V5))
                       .send(0, publish("r/1", "", retain=True), disconnect())
                       .send(1, unsubscribe(4, ["r/#", "r/1"], V5), disconnect(V5)))

    # A persistent v3.1.1 session: offline queueing and resume, with an
    # unacknowledged in-flight message sent again with DUP.
    out["session-resume"] = (Seed()
                             .send(0, connect("keep", clean=False), subscribe(1, [("s/#", 1)]))
                             .send(1, connect("feeder"), publish("s/a", "m1", qos=1, pid=1))
                             .reconnect(0)
                             .send(1, publish("s/a", "m2", qos=1, pid=2),
                                   publish("s/b", "m3", qos=0), publish("s/c", "m4", qos=2,
                                                                         pid=3),
                                   ack("pubrel", 3))
                             .send(0, connect("keep", clean=False))
                             .send(0, ack("puback", 1), ack("puback", 2), ack("pubrec", 3))
                             .send(0, ack("pubcomp", 3), disconnect())
                             .send(1, disconnect()))

    # Session takeover: the same client id connects twice.
    out["takeover"] = (Seed()
                       .send(0, connect("same", version=V5, will=("t/will", "x", 0, False)),
                             subscribe(1, [("t/#", 1)], version=V5))
                       .send(1, connect("same", version=V5))
                       .send(2, connect("other"), publish("t/x", "after takeover", qos=1, pid=9))
                       .send(1, ack("puback", 1, V5), disconnect(V5)))

    # Shared subscriptions and the inflight window filling up.
    out["shared"] = (Seed()
                     .send(0, connect("g1", version=V5, cprops=p_u16(0x21, 1)),
                           subscribe(1, [("$share/grp/job/#", 1)], version=V5))
                     .send(1, connect("g2", version=V5),
                           subscribe(1, [("$share/grp/job/#", 1)], version=V5))
                     .send(2, connect("boss", version=V5),
                           *[publish("job/%d" % i, "work %d" % i, qos=1, pid=i + 1, version=V5)
                             for i in range(8)])
                     .send(0, ack("puback", 1, V5), ack("puback", 2, V5))
                     .send(1, unsubscribe(2, ["$share/grp/job/#"], V5), disconnect(V5))
                     .send(2, disconnect(V5)))

    # What a misbehaving client sends: a second CONNECT, $SYS publish,
    # wildcards in a topic name, a reserved flag, an oversized packet.
    out["errors"] = (Seed()
                     .send(0, connect("bad"), publish("$SYS/x", "no"), publish("a/+", "no"))
                     .send(0, connect("bad"))
                     .send(1, connect("bad5", version=V5), subscribe(1, [("a/#/b", 0)], V5))
                     .send(2, connect("big", version=V5),
                           publish("big", b"x" * 5000, qos=0, version=V5)))

    # A client that subscribes at the limits: many filters, deep topics.
    out["limits"] = (Seed()
                     .send(0, connect("many"),
                           subscribe(1, [("l/%d" % i, i % 3) for i in range(10)]),
                           subscribe(2, [("/".join("abcdefghij"), 0)]),
                           publish("/".join("abcdefghij"), "deep"))
                     .send(1, connect("slow", clean=False), subscribe(1, [("l/#", 1)]))
                     .send(0, *[publish("l/%d" % i, "x" * 300, qos=1, pid=i + 1)
                                for i in range(10)])
                     .send(0, disconnect()))

    # Username and password (no password file: accepted).
    out["credentials"] = (Seed()
                          .send(0, connect("u", user="alice", password=b"secret"),
                                disconnect())
                          .send(1, connect("", version=V5, clean=True, user="bob"),
                                disconnect(V5)))
    return out


# ---------------------------------------------------------------- WebSockets
# RFC 6455: the opening handshake (section 4.1) and base framing (5.2).

WS_CONT, WS_TEXT, WS_BINARY, WS_CLOSE, WS_PING, WS_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
def ws_upgrade(key="dGhlIHNhbXBsZSBub25jZQ==", proto="mqtt", version="13", method="GET",
               upgrade="websocket", connection="Upgrade", extra=()):
    """An upgrade request; a header given as None is left out."""
    lines = ["%s /mqtt HTTP/1.1" % method, "Host: 127.0.0.1:8080"]
    for name, value in (("Upgrade", upgrade), ("Connection", connection),
                        ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version),
                        ("Sec-WebSocket-Protocol", proto)) + tuple(extra):
        if value is not None:
            lines.append("%s: %s" % (name, value))
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def ws_frame(payload, opcode=WS_BINARY, fin=True, mask=b"\x12\x34\x56\x78", rsv=0,
             length=None):
    """A client frame; mask None sends it unmasked, length forces the
    7, 16 or 64-bit length form."""
    n = len(payload)
    form = length or (7 if n < 126 else 16 if n < 65536 else 64)
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    m = 0x80 if mask is not None else 0
    if form == 7:
        head += bytes([m | n])
    elif form == 16:
        head += bytes([m | 126]) + struct.pack(">H", n)
    else:
        head += bytes([m | 127]) + struct.pack(">Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def mask_for(i):
    """A different, deterministic masking key per frame (one all-zero)."""
    return bytes(((i * 73 + k * 41 + 7) & 0xFF) if i % 5 else 0 for k in range(4))


def ws_stream(seed, style):
    """seed as (op, bytes) for fuzz_ws: each slot upgrades when it is first
    used and after each reconnect; its bytes then travel in frames, one per
    send (style "plain") or cut in fragments with a PING among them
    ("fragmented")."""
    ops, upgraded, n = [], set(), 0
    for again, slot, data in seed.events:
        out = b""
        if again or slot not in upgraded:
            out += ws_upgrade(key="a2V5LWZvci1zbG90LSVk%d=" % slot)
            upgraded.add(slot)
        if data and style == "fragmented" and len(data) > 3:
            third = len(data) // 3
            parts = [data[:third], data[third:2 * third], data[2 * third:]]
            out += ws_frame(parts[0], fin=False, mask=mask_for(n))
            out += ws_frame(b"ping", WS_PING, mask=mask_for(n + 1))
            out += ws_frame(parts[1], WS_CONT, fin=False, mask=mask_for(n + 2))
            out += ws_frame(parts[2], WS_CONT, mask=mask_for(n + 3))
            n += 4
        elif data:
            out += ws_frame(data, mask=mask_for(n))
            n += 1
        ops.append((0xF0 + slot if again else slot, out))
    return ops


def ws_seeds():
    """fuzz_ws seeds: every fuzz_conn session over WebSockets, and the
    upgrade and framing cases one by one."""
    out = {}
    sessions = seeds()
    for name, seed in sessions.items():
        out[name] = segments(ws_stream(seed, "plain"))
    for name in ("v311-qos1", "v5-props", "retained", "will-v311"):
        out[name + "-fragmented"] = segments(ws_stream(sessions[name], "fragmented"))

    c311 = connect("ws")
    c5 = connect("ws5", version=V5)
    sub = subscribe(1, [("w/#", 1)])

    def one(request, *frames, ops=()):
        return segments([(0, request + b"".join(frames))] + list(ops))

    # Upgrade requests: accepted variants, then refused ones (400).
    out["up-mqttv31"] = one(ws_upgrade(proto="mqttv3.1"), ws_frame(c311))
    out["up-no-proto"] = one(ws_upgrade(proto=None), ws_frame(c311))
    out["up-proto-list"] = one(ws_upgrade(proto="chat, mqtt"), ws_frame(c5))
    out["up-case-tabs"] = one(
        b"GET / HTTP/1.1\r\nhost: x\r\nUPGRADE:\tWebSocket \r\n"
        b"connection: keep-alive, upgrade\r\nsec-websocket-key:  eA== \r\n"
        b"sec-websocket-version: 13\r\nsec-websocket-protocol: MQTT\r\n\r\n", ws_frame(c311))
    out["up-bad-proto"] = one(ws_upgrade(proto="chat"), ws_frame(c311))
    out["up-bad-version"] = one(ws_upgrade(version="8"))
    out["up-no-key"] = one(ws_upgrade(key=None))
    out["up-empty-key"] = one(ws_upgrade(key=""))
    out["up-post"] = one(ws_upgrade(method="POST"))
    out["up-no-upgrade"] = one(ws_upgrade(upgrade=None))
    out["up-no-connection"] = one(ws_upgrade(connection="keep-alive"))
    out["up-not-http"] = one(c311)
    out["up-long-key"] = one(ws_upgrade(key="k" * 200))
    req = ws_upgrade()
    out["up-split"] = segments([(0, req[:5]), (0, req[5:40]), (0, req[40:-1]),
                                (0, req[-1:] + ws_frame(c311)), (0, ws_frame(sub))])
    out["up-nul"] = one(ws_upgrade(extra=(("X-Nul", "a\0b"),)), ws_frame(c311))
    # More than the 8 KiB a request may have (this seed also raises
    # libFuzzer's input size limit for the target above it).
    out["up-too-large"] = one(ws_upgrade(extra=(("X-Pad", "a" * 8300),)), ws_frame(c311))

    # Frames: every length form, fragments, control frames, CLOSE.
    big = publish("w/big", "y" * 300, qos=1, pid=2)
    out["fr-lengths"] = one(ws_upgrade(), ws_frame(c311, length=16), ws_frame(sub, length=64),
                            ws_frame(big), ws_frame(pingreq(), length=64))
    packets = c311 + sub + publish("w/x", "two in one")
    out["fr-packets-span-frames"] = one(ws_upgrade(), ws_frame(packets[:7]),
                                        ws_frame(packets[7:20], mask=mask_for(3)),
                                        ws_frame(packets[20:], mask=mask_for(0)))
    out["fr-fragmented-control"] = one(
        ws_upgrade(), ws_frame(c5[:4], fin=False), ws_frame(b"", WS_PING),
        ws_frame(b"", WS_CONT, fin=False), ws_frame(b"p" * 125, WS_PING),
        ws_frame(b"unsolicited", WS_PONG), ws_frame(c5[4:], WS_CONT),
        ws_frame(b""), ws_frame(pingreq()))
    out["fr-close-status"] = one(ws_upgrade(), ws_frame(c311),
                                 ws_frame(struct.pack(">H", 1000) + b"bye", WS_CLOSE),
                                 ws_frame(pingreq()))
    out["fr-close-empty"] = one(ws_upgrade(), ws_frame(c311 + pingreq()),
                                ws_frame(b"", WS_CLOSE))
    out["fr-close-one-byte"] = one(ws_upgrade(), ws_frame(b"\x03", WS_CLOSE))
    for name, bad in (("text", ws_frame(c311, WS_TEXT)), ("unmasked", ws_frame(c311, mask=None)),
                      ("rsv", ws_frame(c311, rsv=4)), ("opcode3", ws_frame(c311, 0x3)),
                      ("opcode11", ws_frame(b"", 0xB)),
                      ("cont-first", ws_frame(c311, WS_CONT)),
                      ("binary-in-fragment", ws_frame(c311[:3], fin=False) + ws_frame(c311[3:])),
                      ("ping-fragmented", ws_frame(b"x", WS_PING, fin=False)),
                      ("ping-126", ws_frame(b"x" * 126, WS_PING)),
                      ("length-top-bit", ws_frame(c311, length=64)[:2] + b"\x80" + b"\0" * 7),
                      ("huge-length", ws_frame(c311, length=64)[:2] + b"\x7f" + b"\xff" * 7 +
                       b"\1\2\3\4" + c311)):
        out["fr-bad-" + name] = one(ws_upgrade(), bad)

    # Flow: a subscriber that stops reading while retained messages and
    # PINGs pile up, then reads again; several writes in one read; the
    # harness framing op; a half close.
    pub = connect("pub")
    out["flow-paused"] = segments(
        [(0, ws_upgrade() + ws_frame(connect("slow") + subscribe(1, [("r/#", 0)])))] +
        [(1, ws_upgrade() + ws_frame(pub))] +
        [(K_PAUSE << 4, b"")] +
        [(1, ws_frame(publish("r/%d" % i, "z" * 240, retain=True))) for i in range(8)] +
        [(0, ws_frame(subscribe(2, [("r/#", 0)]))), (0, ws_frame(b"q" * 100, WS_PING)),
         (0, ws_frame(b"q" * 100, WS_PING))] +
        [(K_PAUSE << 4, ws_frame(pingreq()))] + [(1, ws_frame(disconnect()))])
    out["flow-no-iterate"] = segments(
        [(K_NO_ITERATE << 4, ws_upgrade()), (K_NO_ITERATE << 4, ws_frame(c311)),
         (K_NO_ITERATE << 4, ws_frame(sub)), (0, ws_frame(publish("w/1", "m", qos=1, pid=1)))])
    out["flow-frame-op"] = segments(
        [(0, ws_upgrade()), (K_FRAME << 4, c5), (K_FRAME << 4, subscribe(1, [("f", 0)], V5)),
         (K_FRAME << 4, publish("f", "framed by the harness", version=V5)),
         (K_FRAME << 4, disconnect(V5))])
    out["flow-half-close"] = segments(
        [(0, ws_upgrade() + ws_frame(connect("w", will=("w/will", "gone", 0, False)))),
         (1, ws_upgrade() + ws_frame(connect("h") + subscribe(1, [("w/#", 0)]))),
         ((K_HALF_CLOSE << 4), ws_frame(c311[:5]))])
    return out


# ----------------------------------------------------------------------- TLS

def client_hello(tls12):
    """The ClientHello Python's ssl module (OpenSSL) would send."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


MODE_WS, MODE_CLIENT_CERT, MODE_TLS12 = 1, 2, 4


def tls_seeds():
    """fuzz_tls seeds: sessions in every mode, the TLS operations, and
    real ClientHellos as raw bytes."""
    out = {}
    sessions = seeds()
    conn_ops = {name: [(0xF0 + slot if again else slot, data)
                       for again, slot, data in seed.events]
                for name, seed in sessions.items()}

    def tls(mode, ops):
        return bytes([mode]) + segments(ops)

    for name in sessions:
        out["tls13-" + name] = tls(0, conn_ops[name])
    for name in ("v311-qos2", "v5-props", "will-v311", "credentials"):
        out["tls12-" + name] = tls(MODE_TLS12, conn_ops[name])
        out["cert13-" + name] = tls(MODE_CLIENT_CERT, conn_ops[name])
        out["cert12-" + name] = tls(MODE_CLIENT_CERT | MODE_TLS12, conn_ops[name])
    for name in ("v311-qos1", "retained", "takeover"):
        out["ws13-" + name] = tls(MODE_WS, ws_stream(sessions[name], "plain"))
        out["ws12-cert-" + name] = tls(MODE_WS | MODE_CLIENT_CERT | MODE_TLS12,
                                       ws_stream(sessions[name], "fragmented"))

    sub = connect("sub") + subscribe(1, [("t/#", 1)])
    pub = connect("pub")
    msgs = [publish("t/%d" % i, "v" * 200, qos=1, pid=i + 1, retain=True) for i in range(10)]
    for mode, tag in ((0, "13"), (MODE_TLS12, "12")):
        # A KeyUpdate (TLS 1.2: a renegotiation, refused) mid-session and
        # while the client does not read, so the broker must write to read.
        out["keyupdate" + tag] = tls(mode, [
            (0, sub), (K_KEY_UPDATE << 4, publish("t/a", "after update", qos=1, pid=2)),
            (1, pub), (1, msgs[0]), (0, ack("puback", 1))])
        out["keyupdate-paused" + tag] = tls(mode, [
            (0, connect("s") + subscribe(1, [("t/#", 0)])), (1, pub)] +
            [(K_PAUSE << 4, b"")] + [(1, m) for m in msgs] +
            [(K_KEY_UPDATE << 4, b""), (K_KEY_UPDATE << 4, subscribe(2, [("t/#", 0)])),
             (K_PAUSE << 4, pingreq())])
        # close_notify after and before DISCONNECT; then bytes after it.
        out["close-notify" + tag] = tls(mode, [
            (0, sub), (1, pub + msgs[1]), ((K_CLOSE_NOTIFY << 4), disconnect()),
            ((K_CLOSE_NOTIFY << 4) | 1, b""), (1, pingreq())])
        # Records cut across reads, several records in one read.
        out["split" + tag] = tls(mode, [
            (K_SPLIT << 4, b"\x10" + sub[1:]), (K_SPLIT << 4, b"\x40"), (0, b""),
            (K_NO_ITERATE << 4 | 1, pub[:3]), (K_NO_ITERATE << 4 | 1, pub[3:]),
            (K_NO_ITERATE << 4 | 1, msgs[2]), (1, msgs[3]), (K_SPLIT << 4 | 1, b"\xff" + b"x")])
        # Garbage inside the TLS stream, and a half close.
        out["raw-after-handshake" + tag] = tls(mode, [
            (0, sub), (K_RAW << 4, b"\x17\x03\x03\x00\x10" + b"\0" * 16),
            (1, pub), (K_RAW << 4 | 1, b"\x15\x03\x03\x00\x02\x02\x28")])
        out["half-close" + tag] = tls(mode, [
            (0, connect("w", will=("t/will", "x", 1, False))), (1, sub),
            (K_HALF_CLOSE << 4, b"")])
        # The fuzzer's own ClientHello, in pieces, then plain MQTT.
        hello = client_hello(mode == MODE_TLS12)
        out["raw-hello" + tag] = tls(mode, [
            (K_RAW << 4, hello[:5]), (K_RAW << 4, hello[5:200]), (K_RAW << 4, hello[200:]),
            (K_RAW << 4 | 1, connect("plain"))])
    out["cert-identity-v5"] = tls(MODE_CLIENT_CERT, [
        (0, connect("id", version=V5, user="ignored", password=b"x") +
         subscribe(1, [("i/#", 1)], V5)),
        (1, connect("id2", version=V5) + publish("i/x", "m", qos=1, pid=1, version=V5))])
    out["ws-frame-op"] = tls(MODE_WS, [
        (0, ws_upgrade()), (K_FRAME << 4, connect("f")), (K_FRAME << 4, sub[len(connect("f")):]),
        (K_FRAME << 4, pingreq()), (0, ws_frame(b"", WS_CLOSE))])
    return out


def write(outdir, items):
    os.makedirs(outdir, exist_ok=True)
    for name, data in items.items():
        with open(os.path.join(outdir, "seed-" + name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(items), outdir))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    targets = {"conn": lambda: {n: s.render() for n, s in seeds().items()},
               "ws": ws_seeds, "tls": tls_seeds}
    which = sys.argv[1] if len(sys.argv) > 1 else "all"
    if which not in targets and which != "all":
        sys.exit(__doc__)
    for name, make in targets.items():
        if which in ("all", name):
            outdir = (sys.argv[2] if len(sys.argv) > 2
                      else os.path.join(here, "corpus", "fuzz_" + name))
            write(outdir, make())


if __name__ == "__main__":
    main()
