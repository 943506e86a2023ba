"""When a node of the cluster dies (issue 12; docs/cluster.md, "When a node
dies"): the other nodes see its heartbeats stop in the JetStream bucket
<cluster>_nodes (src/cluster/nodes.c), one of them acts for it, and the wills
of its clients are published there.

Each test makes its own cluster (it kills nodes): one nats-server and 2-3
ternd, each with /metrics; node names end in node0, node1, ... so node0 is
the one that acts for a dead node while it lives.
"""

import json
import socket
import struct
import time

import pytest

from conftest import free_port
import mqtt_raw as m
from helpers import read_log, unique, wait_for
from test_observability import scrape

pytestmark = pytest.mark.ternd_only

# src/cluster/cluster.h: a node is dead once its heartbeat (every second)
# has not been seen for CLUSTER_NODE_DEAD_MS.
DEAD_S = 4.0
# What a loaded machine (2 cores, several test runs) adds to it: the beats,
# the bucket's consumer, the check every second.
SLACK_S = 4.0


def make_nodes(cluster_factory, n):
    c = cluster_factory(nodes=0, nats_n=1)
    nodes = []
    for _ in range(n):
        port = free_port()
        node = c.add_node(extra=["http_listener %d" % port, "sys_interval 1",
                                 "storage memory"])
        node.http_port = port
        nodes.append(node)
    return c, nodes


def live(node):
    return scrape(node.http_port).get("tern_cluster_nodes")


def all_see(nodes, count, timeout):
    return wait_for(lambda: all(live(n) == count for n in nodes), timeout=timeout,
                    interval=0.1)


def acted(node, dead):
    return read_log(node).count("this node acted for node %s," % dead.node_name)


def test_nodes_see_each_other_and_a_killed_node_goes_dead(cluster_factory):
    """Every node counts the live nodes (tern_cluster_nodes, itself
    included). kill -9 of one: the others count one fewer within the bound,
    and exactly one of them, the first name, acts for it, once."""
    c, (a, b, k) = make_nodes(cluster_factory, 3)
    assert all_see((a, b, k), 3, timeout=30), [live(n) for n in (a, b, k)]
    t0 = time.monotonic()
    k.kill()
    assert all_see((a, b), 2, timeout=DEAD_S + SLACK_S), [live(n) for n in (a, b)]
    assert time.monotonic() - t0 >= DEAD_S - 1.5, "declared dead before the bound"
    assert wait_for(lambda: acted(a, k) == 1, timeout=SLACK_S), read_log(a)[-2000:]
    time.sleep(2.0)
    assert acted(a, k) == 1 and acted(b, k) == 0
    m = scrape(a.http_port)
    assert m["tern_cluster_nodes_handled_total"] == 1.0


def test_a_clean_stop_is_seen_at_once(cluster_factory):
    """SIGTERM of a node: it marks itself as left in the bucket as it goes,
    so the others count it out at once (well before the bound), and the
    first name acts for it."""
    c, (a, b) = make_nodes(cluster_factory, 2)
    assert all_see((a, b), 2, timeout=30)
    t0 = time.monotonic()
    b.stop()
    assert all_see((a,), 1, timeout=DEAD_S + SLACK_S)
    assert time.monotonic() - t0 < DEAD_S, "a clean stop took the dead node's bound"
    assert wait_for(lambda: acted(a, b) == 1, timeout=SLACK_S)


def test_the_first_name_dying_hands_over_to_the_next(cluster_factory):
    """kill -9 of node0, the node that acts: node1 acts for it."""
    c, (a, b, k) = make_nodes(cluster_factory, 3)
    assert all_see((a, b, k), 3, timeout=30)
    a.kill()
    assert all_see((b, k), 2, timeout=DEAD_S + SLACK_S)
    assert wait_for(lambda: acted(b, a) == 1, timeout=SLACK_S), read_log(b)[-2000:]
    assert acted(k, a) == 0


# ---- wills ----

def watch(node, topic):
    """A raw 3.1.1 client on node subscribed to topic (QoS 1)."""
    w = node.raw(m.V311)
    w.connect(unique("watch"))
    assert w.subscribe([(topic, 1)]).codes == [1]
    return w


def reaches(pub_node, watcher, topic, timeout=10.0):
    """Publishes probes on pub_node until watcher gets one (bounded): the
    watcher's interest has reached pub_node's NATS server. Drains the
    probes."""
    probe = pub_node.raw(m.V311)
    probe.connect(unique("probe"))
    deadline = time.monotonic() + timeout
    seen = False
    while not seen and time.monotonic() < deadline:
        probe.publish(topic, b"probe", qos=0)
        try:
            seen = watcher.recv_type(m.PUBLISH, timeout=0.3).payload == b"probe"
        except TimeoutError:
            pass
    probe.disconnect()
    watcher.recv_all(0.3)
    return seen


def wills_in(watcher, topic, timeout, times=None):
    """The will payloads on topic the watcher gets within timeout; their
    arrival times (time.monotonic()) appended to times if given."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            p = watcher.recv_type(m.PUBLISH, timeout=max(0.05, deadline - time.monotonic()))
        except TimeoutError:
            break
        watcher.ack(p)
        if p.topic == topic:
            got.append(p.payload)
            if times is not None:
                times.append(time.monotonic())
    return got


@pytest.mark.parametrize("back", [False, True], ids=["stays away", "back on B"])
def test_a_delayed_will_is_cancelled_by_a_reconnect_on_another_node(cluster_factory, back):
    """[MQTT-3.1.3-9]: X (v5, session expiry 60 s, will delay 3 s) loses its
    connection to A; the will waits on A. X back on B before the delay: A's
    session is taken over and the will never goes, as on one node where the
    new connection cancels it. X away: the will goes after the delay."""
    c, (a, b) = make_nodes(cluster_factory, 2)
    assert all_see((a, b), 2, timeout=30)
    topic, cid = unique("delayed"), unique("dx")
    w = watch(b, topic)
    assert reaches(a, w, topic)
    x = a.raw(m.V5)
    x.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 60)],
              will={"topic": topic, "payload": b"x gone", "qos": 1,
                    "properties": [(m.WILL_DELAY, 3)]})
    x.abort()
    time.sleep(0.5)
    if back:
        again = b.raw(m.V5)
        again.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 60)])
        assert wills_in(w, topic, 3 + SLACK_S) == []
        again.disconnect(0, properties=[(m.SESSION_EXPIRY, 0)])
    else:
        t0, at = time.monotonic(), []
        assert wills_in(w, topic, 3 + SLACK_S, at) == [b"x gone"]
        assert at[0] - t0 >= 2.0, "the will came before its delay"
    w.disconnect()


# ---- adoption of a dead node's records (written here by hand) ----
#
# The records are what src/cluster/session_record.h lays out, put straight
# into the sessions bucket over NATS' own text protocol, under a node name
# ("ghost") that beats once in the nodes bucket and never again: the nodes
# declare it dead, and the first name adopts its sessions. This checks the
# adoption on its own, whatever writes records on a live node.

def b64url_key(data):
    """clients_key(): unpadded base64url."""
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def wire_msg(topic, payload, qos=0, retain=False):
    """src/cluster/wire.h, version 1, without properties."""
    t = topic.encode()
    return (bytes([1, qos | (4 if retain else 0)]) + struct.pack(">H", len(t)) + t +
            struct.pack(">I", 0) + payload)


def record(node, version=m.V5, expiry=0, online=True, offline_at=0, claim=1, subs=(),
           will=None, will_delay=0):
    """src/cluster/session_record.h, format 1. subs: (filter, qos);
    will: (topic, payload, qos)."""
    n = node.encode()
    flags = (1 if online else 0) | (2 if will else 0)
    out = bytes([1, version, flags]) + struct.pack(">IQQH", expiry, claim,
                                                   0 if online else offline_at, len(n)) + n
    out += struct.pack(">I", len(subs))
    for f, qos in subs:
        fb = f.encode()
        out += struct.pack(">H", len(fb)) + fb + bytes([qos]) + struct.pack(">I", 0)
    if will:
        w = wire_msg(will[0], will[1], will[2])
        out += struct.pack(">IBII", will_delay, 0, 0, len(w)) + w
    return out


class NatsText:
    """Just enough of NATS' client protocol to put a value in a KV bucket
    and have JetStream's answer."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self._line()  # INFO
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.wills 1\r\n')

    def _line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def put(self, subject, data):
        self.sock.sendall(b"PUB %s _INBOX.wills %d\r\n%s\r\n" % (subject.encode(), len(data), data))
        while True:
            line = self._line()
            if line.startswith(b"PING"):
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith(b"MSG"):
                size = int(line.split()[-1])
                while len(self.buf) < size + 2:
                    self.buf += self.sock.recv(65536)
                body, self.buf = self.buf[:size], self.buf[size + 2:]
                ack = json.loads(body)
                assert "error" not in ack, ack
                return ack
            elif line.startswith(b"-ERR"):
                raise AssertionError(line)

    def close(self):
        self.sock.close()


def put_records(c, ghost, records):
    """records: {client id: record bytes} of node ghost, then ghost's one
    heartbeat (incarnation 1) in the nodes bucket."""
    nc = NatsText(c.nats[0].port)
    try:
        for cid, rec in records.items():
            nc.put("$KV.%s_sessions.%s" % (c.cluster_name, b64url_key(cid.encode())), rec)
        nc.put("$KV.%s_nodes.%s" % (c.cluster_name, b64url_key(ghost.encode())), b"1")
    finally:
        nc.close()


def adopted(node, cid):
    return read_log(node).count("adopted the session of %s from dead node" % cid)


def test_a_dead_nodes_sessions_are_adopted_once_and_their_wills_go(cluster_factory):
    """Records of node "ghost", which beat once and stopped: within the
    bound, exactly one node (node0) adopts each session, and a watcher on
    node2 gets each will once: at once for a v5 session with expiry 0 and
    a 3.1.1 persistent one (will delay 0) [MQTT-3.1.2-8]; at the session's
    expiry for a will delay longer than it [MQTT-3.1.3-9]; never for one
    whose client came back on node1 before the delay. Delays and expiry
    count from ghost's last beat."""
    c, (a, b, k) = make_nodes(cluster_factory, 3)
    assert all_see((a, b, k), 3, timeout=30)
    topic = unique("ghostwill")
    w = watch(k, topic)
    assert reaches(a, w, topic)
    ghost = unique("ghost")
    cids = {n: unique(n) for n in ("v5now", "v311now", "late", "back")}
    put_records(c, ghost, {
        cids["v5now"]: record(ghost, expiry=0, will=(topic, b"v5now", 1)),
        cids["v311now"]: record(ghost, version=m.V311, expiry=0xFFFFFFFF,
                                subs=[(unique("f") + "/#", 1)], will=(topic, b"v311now", 1)),
        # Past the adoption (the bound after the beat): expiry 12 s,
        # will delay 30 s, so the will goes at the expiry.
        cids["late"]: record(ghost, expiry=12, will=(topic, b"late", 1), will_delay=30),
        cids["back"]: record(ghost, expiry=60, will=(topic, b"back", 1), will_delay=14),
    })
    t0, at = time.monotonic(), []
    got = wills_in(w, topic, DEAD_S + SLACK_S, at)
    assert sorted(got) == [b"v311now", b"v5now"], got
    assert at[0] - t0 >= DEAD_S - 1.5, "the wills went before the node was dead"
    assert wait_for(lambda: all(adopted(a, cid) == 1 for cid in cids.values()), timeout=2)
    for cid in cids.values():
        assert adopted(b, cid) == 0 and adopted(k, cid) == 0
    assert scrape(a.http_port)["tern_cluster_sessions_adopted_total"] == 4.0
    # "back" reconnects (on node1) before its will delay: no will, ever.
    back = b.raw(m.V5)
    back.connect(cids["back"], clean=False, properties=[(m.SESSION_EXPIRY, 60)])
    # "late" at 12 s after the beat; "back" would have gone at 14 s.
    at = []
    got = wills_in(w, topic, max(1.0, 14 + 2 - (time.monotonic() - t0)), at)
    assert got == [b"late"], got
    assert at[0] - t0 >= 12 - 1.5, "the will came before the session's expiry"
    back.disconnect(0, properties=[(m.SESSION_EXPIRY, 0)])
    w.disconnect()


def test_an_adopted_session_resumes_on_its_adopter_and_expires(cluster_factory):
    """An offline session of dead node "ghost" (expiry 6 s from its offline
    time) is adopted by node0: a client reconnecting there before the expiry
    finds it (session present 1 [MQTT-3.2.2-3], its subscription delivering
    across nodes), and once it expired again, a reconnect gets session
    present 0 [MQTT-3.1.2-23]."""
    c, (a, b) = make_nodes(cluster_factory, 2)
    assert all_see((a, b), 2, timeout=30)
    ghost, cid, topic = unique("ghost"), unique("adoptme"), unique("adopted")
    put_records(c, ghost, {cid: record(ghost, expiry=int(DEAD_S) + 6, online=False,
                                       offline_at=int(time.time() * 1000),
                                       subs=[(topic, 1)])})
    assert wait_for(lambda: adopted(a, cid) == 1, timeout=DEAD_S + SLACK_S)
    x = a.raw(m.V5)
    ack = x.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 2)])
    assert ack.session_present
    pub = b.raw(m.V311)
    pub.connect(unique("pub"))
    deadline, got = time.monotonic() + 10, None
    while got is None and time.monotonic() < deadline:
        pub.publish(topic, b"to the adopted", qos=0)
        try:
            got = x.recv_type(m.PUBLISH, timeout=0.3)
        except TimeoutError:
            pass
    assert got is not None and got.payload == b"to the adopted"
    pub.disconnect()
    x.close()  # the session now expires 2 s after this
    time.sleep(2 + 1.5)
    again = a.raw(m.V5)
    assert not again.connect(cid, clean=False, properties=[(m.SESSION_EXPIRY, 0)]).session_present
    again.disconnect()
