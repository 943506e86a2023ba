#!/usr/bin/python3
"""Writes the seed corpus of fuzz_conn: realistic MQTT sessions.

    /usr/bin/python3 fuzz/gen_conn_seeds.py [OUTDIR]   (default fuzz/corpus/fuzz_conn)

Each seed is a list of segments in fuzz_conn's input format (see
fuzz_conn.c): [op][len][bytes], op % 3 the client slot, op >= 0xF0 a
reconnect of that slot first. A packet longer than 255 bytes is split over
several segments of the same slot. The packets are built here from the
MQTT 3.1.1 and 5.0 specifications, independently of tern's encoder, so the
seeds also say what a correct client sends.
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
    def __init__(self):
        self.out = bytearray()

    def send(self, slot, *packets):
        data = b"".join(packets)
        if not data:
            self.out += bytes([slot, 0])
        while data:
            chunk, data = data[:255], data[255:]
            self.out += bytes([slot, len(chunk)]) + chunk
        return self

    def reconnect(self, slot, *packets):
        """Closes the slot's socket, connects again and sends packets."""
        data = b"".join(packets)
        first, rest = data[:255], data[255:]
        self.out += bytes([0xF0 + slot, len(first)]) + first
        if rest:
            self.send(slot, rest)
        return self


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


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus", "fuzz_conn")
    os.makedirs(outdir, exist_ok=True)
    for name, seed in seeds().items():
        with open(os.path.join(outdir, "seed-" + name), "wb") as f:
            f.write(bytes(seed.out))
    print("wrote %d seeds to %s" % (len(seeds()), outdir))


if __name__ == "__main__":
    main()
