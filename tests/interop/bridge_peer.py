"""The two brokers of a bridge test (test_bridge*.py): a remote Debian
mosquitto on a port of its own that stays the same across its restarts, and
the local broker under test (ternd, or mosquitto with
TERN_TEST_AGAINST=mosquitto) with a `connection` block to it."""

import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import Broker, MOSQUITTO, MOSQUITTO_BIN, WORKER_COUNTS, free_port, tail, wait_port
import mqtt_raw as raw
from helpers import PahoClient, unique

HOST = "127.0.0.1"


class Remote(Broker):
    """Debian's mosquitto as the other side of the bridge, on a port that
    stays the same across restarts (the bridge's address)."""

    def __init__(self, tmp_path, extra=(), port=None, persistent=False):
        d = tmp_path / ("remote-" + unique("r"))
        d.mkdir()
        super().__init__(d, 1, extra)
        self.mosquitto = True
        self.binary = MOSQUITTO_BIN
        self.extra = list(extra)  # no cluster lines: this is mosquitto
        if persistent:
            # Saved at SIGTERM, read at start: sessions and their queues
            # survive a restart.
            self.extra += ["persistence true", "autosave_interval 0",
                           "persistence_location %s/" % self.dir]
        self.port = port or free_port()

    def config_text(self, port):
        # mosquitto buffers stdout into a file: its own log file instead.
        text = super().config_text(port).replace("log_dest stdout\n", "")
        return text + "log_dest file %s\n" % self.log

    def start(self):
        with open(self.conf, "w") as f:
            f.write(self.config_text(self.port))
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([self.binary, "-c", self.conf], stdout=logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.dir)
        logf.close()
        if not wait_port(self.port, self.proc, timeout=10):
            raise RuntimeError("mosquitto did not start on %d:\n%s" % (self.port, tail(self.log)))


def bridge_lines(remote, topics, name="b1", extra=()):
    lines = ["connection " + name, "address %s:%d" % (HOST, remote.port),
             "restart_timeout 1", "keepalive_interval 5"]
    lines += ["topic " + t for t in topics]
    return lines + list(extra)


class Pair:
    """A remote mosquitto and the local broker bridging to it."""

    def __init__(self, tmp_path, workers, topics, bridge_extra=(), local_extra=(),
                 remote_extra=(), start_remote=True, remote_persistent=False, lines=None):
        self.remote = Remote(tmp_path, remote_extra, persistent=remote_persistent)
        if start_remote:
            self.remote.start()
        d = tmp_path / ("local-" + unique("l"))
        d.mkdir()
        self.local_extra = list(local_extra)
        # lines: the whole bridge block, in place of bridge_lines()'.
        if lines is None:
            lines = bridge_lines(self.remote, topics, extra=bridge_extra)
        self.local = Broker(d, workers, self.local_extra + list(lines))
        self.local.start()

    def restart_local(self):
        self.local.stop()
        port = self.local.port
        # Same port, same files (the store): a restart, not a new broker.
        with open(self.local.conf) as f:
            text = f.read()
        logf = open(self.local.log, "ab")
        self.local.proc = subprocess.Popen([self.local.binary, "-c", self.local.conf],
                                           stdout=logf, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, cwd=self.local.dir)
        logf.close()
        assert "listener %d" % port in text
        assert wait_port(port, self.local.proc, timeout=10), tail(self.local.log)

    def stop(self):
        self.local.stop()
        self.remote.stop()


@pytest.fixture(params=WORKER_COUNTS,
                ids=["mosquitto" if MOSQUITTO else "w%d" % w for w in WORKER_COUNTS])
def pair_factory(request, tmp_path):
    made = []

    def make(topics, **kw):
        p = Pair(tmp_path, request.param, topics, **kw)
        made.append(p)
        request.node._tern_broker_log = p.local.log
        return p

    yield make
    for p in made:
        died = not p.local.alive()
        p.stop()
        if died:
            pytest.fail("local broker exited during the test (rc=%r):\n%s"
                        % (p.local.proc.returncode, tail(p.local.log)), pytrace=False)


def connected(pair, topic_on_remote, timeout=10.0, **local_auth):
    """Waits until messages flow local -> remote on a topic the bridge
    forwards out (the bridge is connected and subscribed both sides), by
    publishing probes."""
    sub = PahoClient(pair.remote)
    sub.subscribe(topic_on_remote, 0)
    pub = PahoClient(pair.local, **local_auth)
    ok = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not ok:
        pub.publish(topic_on_remote, b"probe", 0)
        ok = bool(sub.drain(0.2))
    sub.disconnect()
    pub.disconnect()
    return ok


class ConnectCatcher:
    """Accepts one connection on a free port (over TLS with an
    ssl.SSLContext), reads the CONNECT, answers CONNACK 0 (v5) and keeps
    the socket open. connect: the CONNECT's fields; alpn: the protocol
    selected in the handshake; error: why the handshake failed."""

    def __init__(self, tls=None):
        self.tls = tls
        self.alpn = None
        self.tls_version = None
        self.error = None
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.connect = None
        self.conns = []
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        self.sock.settimeout(15)
        try:
            c, _ = self.sock.accept()
        except OSError:
            return
        c.settimeout(5)
        if self.tls is not None:
            try:
                c = self.tls.wrap_socket(c, server_side=True)
            except (OSError, ssl.SSLError) as e:
                self.error = str(e)
                c.close()
                return
            self.alpn = c.selected_alpn_protocol()
            self.tls_version = c.version()
        self.conns.append(c)
        data = b""
        while True:
            try:
                chunk = c.recv(4096)
            except OSError:
                return
            if not chunk:
                return
            data += chunk
            r = raw.Reader(data[1:])
            try:
                n = r.vbi()
            except (ValueError, IndexError):
                continue
            if len(data) >= 1 + r.pos + n:
                body = raw.Reader(data[1 + r.pos:1 + r.pos + n])
                break
        name, level, flags, keepalive = body.str(), body.byte(), body.byte(), body.u16()
        self.connect = {"name": name, "level": level, "flags": flags,
                        "keepalive": keepalive, "props": body.props(), "client_id": body.str()}
        c.sendall(bytes([0x20, 3, 0, 0, 0]))

    def close(self):
        for c in self.conns:
            c.close()
        self.sock.close()
