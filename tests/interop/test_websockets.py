"""MQTT over WebSockets (MQTT 5.0 section 6, RFC 6455): `listener PORT` +
`protocol websockets`, as mosquitto configures it, plain and over TLS.

Clients: paho-mqtt's websocket transport, MQTT.js from Node (npm package
`mqtt`, installed by this module into tests/interop/js/node_modules), and a
raw WebSocket client written here to check framing corner cases: one MQTT
packet split over several frames, several packets in one frame, text
frames refused, PING answered, an upgrade that is not one refused.
"""

import base64
import hashlib
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest

import mqtt_raw as m
from conftest import Broker, WORKER_COUNTS, free_port, tail, wait_port

pytestmark = pytest.mark.ternd_only

HERE = os.path.dirname(os.path.abspath(__file__))
JS = os.path.join(HERE, "js")


@pytest.fixture(scope="module")
def mqttjs():
    """Path of the MQTT.js round-trip script, installing MQTT.js if needed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the MQTT.js tests (scripts/deps.sh test)")
    if not os.path.isdir(os.path.join(JS, "node_modules", "mqtt")):
        r = subprocess.run(["npm", "install", "--no-package-lock", "--no-audit", "--no-fund"],
                           cwd=JS, capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
    return os.path.join(JS, "roundtrip.js")


@pytest.fixture(params=WORKER_COUNTS, ids=["w%d" % w for w in WORKER_COUNTS])
def ws_broker(request, tmp_path):
    """A broker with a TCP listener (broker.port) and a WebSocket listener
    (broker.ws_port)."""
    b = Broker(tmp_path, request.param, [])
    b.ws_port = free_port()
    b.extra = ["listener %d 127.0.0.1" % b.ws_port, "protocol websockets", "storage memory"]
    request.node._tern_broker_log = b.log
    b.start()
    assert wait_port(b.ws_port, b.proc)
    yield b
    died = not b.alive()
    b.stop()
    if died:
        pytest.fail("broker exited during the test:\n" + tail(b.log), pytrace=False)


class WS:
    """A minimal WebSocket client (RFC 6455), masking as clients must."""

    def __init__(self, port, protocol="mqtt", sock=None, headers=""):
        self.s = sock or socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n" % key)
        if protocol:
            req += "Sec-WebSocket-Protocol: %s\r\n" % protocol
        self.s.sendall((req + headers + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(4096)
            if not chunk:
                raise ConnectionError("closed during upgrade: %r" % self.buf)
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.stream = b""
        self.status = head.split(b"\r\n")[0]
        self.headers = head.decode()
        accept = base64.b64encode(hashlib.sha1(
            (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.accept_ok = ("Sec-WebSocket-Accept: " + accept) in self.headers

    def frame(self, payload, opcode=2, fin=True):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            h = struct.pack("!BB", (0x80 if fin else 0) | opcode, 0x80 | n)
        elif n < 65536:
            h = struct.pack("!BBH", (0x80 if fin else 0) | opcode, 0x80 | 126, n)
        else:
            h = struct.pack("!BBQ", (0x80 if fin else 0) | opcode, 0x80 | 127, n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.s.sendall(h + mask + body)

    def recv_frame(self, timeout=5):
        """Returns (opcode, payload), or None when the socket closed."""
        self.s.settimeout(timeout)
        while True:
            if len(self.buf) >= 2:
                op = self.buf[0] & 0x0F
                n = self.buf[1] & 0x7F
                off = 2
                if n == 126:
                    if len(self.buf) >= 4:
                        n = struct.unpack("!H", self.buf[2:4])[0]
                    off = 4
                elif n == 127:
                    if len(self.buf) >= 10:
                        n = struct.unpack("!Q", self.buf[2:10])[0]
                    off = 10
                if len(self.buf) >= off + n and len(self.buf) >= off:
                    payload = self.buf[off:off + n]
                    self.buf = self.buf[off + n:]
                    return op, payload
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def recv_mqtt(self, timeout=5):
        """Next MQTT packet of the byte stream the binary frames carry (a
        frame may hold several packets, or part of one)."""
        data = self.stream
        while True:
            if len(data) >= 2:
                rl, mult, i = 0, 1, 1
                while i < len(data):
                    rl += (data[i] & 0x7F) * mult
                    mult *= 128
                    if not data[i] & 0x80:
                        break
                    i += 1
                if len(data) >= i + 1 + rl:
                    self.stream = data[i + 1 + rl:]
                    return data[:i + 1 + rl]
            f = self.recv_frame(timeout)
            if f is None:
                return None
            assert f[0] in (0, 2), "non-binary frame %r" % (f,)
            data += f[1]

    def close(self):
        self.s.close()


def test_upgrade_answers_with_the_mqtt_subprotocol(ws_broker):
    """The 101 answer carries a correct Sec-WebSocket-Accept and names the
    "mqtt" subprotocol (MQTT 5.0 [MQTT-6.0.0-3] / [MQTT-6.0.0-4])."""
    w = WS(ws_broker.ws_port)
    assert w.status == b"HTTP/1.1 101 Switching Protocols"
    assert w.accept_ok
    assert "Sec-WebSocket-Protocol: mqtt" in w.headers
    w.close()


def test_not_an_upgrade_is_refused(ws_broker):
    """A plain HTTP request, or a subprotocol that is not MQTT, gets 400."""
    s = socket.create_connection(("127.0.0.1", ws_broker.ws_port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 400")
    s.close()
    w = WS(ws_broker.ws_port, protocol="chat")
    assert w.status.startswith(b"HTTP/1.1 400")
    w.close()


@pytest.mark.parametrize("version", [mqtt.MQTTv311, mqtt.MQTTv5])
def test_paho_over_websockets(ws_broker, version):
    """paho-mqtt's websocket transport: QoS 0/1/2 both ways, and a 200 KB
    message (many frames on the way in, one large frame out)."""
    got = []
    c = mqtt.Client(client_id="paho-ws-%d" % version, transport="websockets", protocol=version)
    c.ws_set_options(path="/mqtt")
    c.on_message = lambda cl, u, msg: got.append((msg.payload, msg.qos))
    c.connect("127.0.0.1", ws_broker.ws_port)
    c.loop_start()
    try:
        c.subscribe("pw/#", 2)
        time.sleep(0.3)
        big = os.urandom(200 * 1024)
        for q in (0, 1, 2):
            c.publish("pw/t", b"q%d" % q, qos=q).wait_for_publish(5)
        c.publish("pw/big", big, qos=1).wait_for_publish(5)
        deadline = time.time() + 5
        while len(got) < 4 and time.time() < deadline:
            time.sleep(0.05)
        assert sorted(got[:3]) == [(b"q0", 0), (b"q1", 1), (b"q2", 2)]
        assert got[3] == (big, 1)
    finally:
        c.disconnect()
        c.loop_stop()


@pytest.mark.parametrize("transport", ["mqtt", "ws"])
@pytest.mark.parametrize("version", [4, 5])
def test_mqttjs_round_trip(ws_broker, mqttjs, transport, version):
    """MQTT.js (Node) publishes and subscribes through ternd with QoS 0, 1
    and 2, MQTT 3.1.1 and 5.0, over TCP and over WebSockets."""
    url = ("mqtt://127.0.0.1:%d" % ws_broker.port if transport == "mqtt"
           else "ws://127.0.0.1:%d/mqtt" % ws_broker.ws_port)
    r = subprocess.run(["node", mqttjs, url, str(version), "js/%s/%d" % (transport, version)],
                       capture_output=True, timeout=20)
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    report = json.loads(out)
    assert report["granted"] == [2]
    assert sorted((x["payload"], x["qos"]) for x in report["received"]) == [
        ("qos0", 0), ("qos1", 1), ("qos2", 2)]


def test_packet_split_over_frames_and_packets_sharing_a_frame(ws_broker):
    """One MQTT packet over several frames (with continuation frames), and
    several packets in one frame, are both read correctly."""
    w = WS(ws_broker.ws_port)
    conn = m.connect("raw-ws")
    # CONNECT split byte by byte: first frame binary without FIN, then
    # continuations.
    w.frame(conn[:1], opcode=2, fin=False)
    for i in range(1, len(conn) - 1):
        w.frame(conn[i:i + 1], opcode=0, fin=False)
    w.frame(conn[-1:], opcode=0, fin=True)
    assert w.recv_mqtt()[:1] == b"\x20"
    # SUBSCRIBE and two PUBLISHes in one frame.
    w.frame(m.subscribe(1, [("rw/t", 1)]) + m.publish("rw/t", b"one", qos=1, pid=2)
            + m.publish("rw/t", b"two", qos=0))
    types = []
    payloads = []
    for _ in range(4):  # SUBACK, PUBACK, two PUBLISHes in some order
        pkt = w.recv_mqtt()
        types.append(pkt[0] >> 4)
        if pkt[0] >> 4 == 3:
            payloads.append(pkt[-3:])
    assert types.count(9) == 1 and types.count(4) == 1
    assert sorted(payloads) == [b"one", b"two"]
    w.close()


def test_ping_is_answered_and_text_frames_end_the_connection(ws_broker):
    """A WebSocket PING gets a PONG with its data; a text frame is a
    protocol error for MQTT ([MQTT-6.0.0-1]: binary frames only) and the
    connection is closed."""
    w = WS(ws_broker.ws_port)
    w.frame(m.connect("ping-ws"))
    assert w.recv_mqtt()[:1] == b"\x20"
    w.frame(b"hello", opcode=9)
    assert w.recv_frame() == (10, b"hello")
    w.frame(b"not binary", opcode=1)
    deadline = time.time() + 3
    closed = False
    while time.time() < deadline:
        f = w.recv_frame(3)
        if f is None:
            closed = True
            break
    assert closed
    w.close()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def test_pings_from_a_client_that_never_reads_hold_one_pong(ws_broker):
    """A client that sends PINGs and never reads: while earlier output
    waits, the broker answers only the latest PING (RFC 6455 5.5.5 and
    5.5.3: "MAY elect to send a Pong frame for only the most recently
    processed Ping frame"), so 40 MB of PINGs leave its memory where it was
    (it kept one PONG per PING: +33 MB), and once the client reads, the
    last PONG carries the last PING's data and MQTT still works."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", ws_broker.ws_port))
    w = WS(ws_broker.ws_port, sock=sock)
    w.frame(m.connect("pinger"))
    assert w.recv_mqtt()[:1] == b"\x20"
    before = rss_kb(ws_broker.proc.pid)
    # A zero masking key leaves the payload as it is (RFC 6455 5.3).
    ping = bytes([0x89, 0x80 | 125]) + b"\0" * 4 + b"p" * 125
    chunk = ping * 1000
    for _ in range(300):
        sock.sendall(chunk)
    w.frame(b"last", opcode=9)
    time.sleep(0.5)
    grown = rss_kb(ws_broker.proc.pid) - before
    assert grown < 8 * 1024, "broker grew by %d kB" % grown
    deadline = time.time() + 10
    while time.time() < deadline:
        f = w.recv_frame()
        assert f is not None and f[0] == 10, f
        if f[1] == b"last":
            break
    else:
        pytest.fail("no PONG for the last PING")
    w.frame(m.pingreq())
    assert w.recv_mqtt() == b"\xd0\x00"
    w.close()


def test_websockets_over_tls(tmp_path):
    """`protocol websockets` on a TLS listener: wss:// works with paho."""
    from test_tls import make_ca, make_cert
    d = str(tmp_path)
    make_ca(d, "ca")
    make_cert(d, "ca", "server", "localhost", server=True)
    b = Broker(tmp_path / "b", 1, [])
    os.makedirs(b.dir, exist_ok=True)
    port = free_port()
    b.extra = ["listener %d 127.0.0.1" % port, "protocol websockets",
               "certfile " + os.path.join(d, "server.crt"),
               "keyfile " + os.path.join(d, "server.key"), "storage memory"]
    b.start()
    try:
        assert wait_port(port, b.proc)
        got = []
        c = mqtt.Client(client_id="wss", transport="websockets")
        c.tls_set(ca_certs=os.path.join(d, "ca.crt"))
        c.on_message = lambda cl, u, msg: got.append(msg.payload)
        c.connect("127.0.0.1", port)
        c.loop_start()
        c.subscribe("wss/t", 1)
        time.sleep(0.3)
        c.publish("wss/t", b"secure", qos=1).wait_for_publish(5)
        deadline = time.time() + 5
        while not got and time.time() < deadline:
            time.sleep(0.05)
        c.disconnect()
        c.loop_stop()
        assert got == [b"secure"]
    finally:
        b.stop()


def test_large_burst_in_one_frame_is_fully_processed(ws_broker):
    """3000 QoS 1 PUBLISHes (about 330 KB) in a single WebSocket frame, then
    silence: every one is acknowledged, though the socket has nothing more
    to say once the frame is read (bytes buffered in the WebSocket layer
    must not wait for the next socket event)."""
    w = WS(ws_broker.ws_port)
    w.frame(m.connect("burst-ws"))
    assert w.recv_mqtt()[:1] == b"\x20"
    burst = b"".join(m.publish("burst/t", b"x" * 90, qos=1, pid=i + 1) for i in range(3000))
    w.frame(burst)
    acks = 0
    while acks < 3000:
        pkt = w.recv_mqtt(timeout=5)
        assert pkt is not None, "closed after %d PUBACKs" % acks
        if pkt[0] >> 4 == 4:
            acks += 1
    w.close()
