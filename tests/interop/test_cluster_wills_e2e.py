"""The wills and sessions of a node that dies, end to end (issue 12;
docs/cluster.md, "When a node dies" and "Persistent sessions across
nodes"): every node writes the records of its sessions as its clients
connect, subscribe and leave, so when it is killed (kill -9) the node that
acts for it publishes the wills of its connected clients [MQTT-3.1.2-8]
(their network connection is gone) and keeps their sessions, which the
clients resume on any node (session present 1 [MQTT-3.2.2-3]) with what was
queued for them.

Each test makes its own cluster: one nats-server and 2-3 ternd (node0 acts
for a dead node while it lives).
"""

import collections
import time

import pytest

from conftest import free_port
import mqtt_raw as m
from helpers import unique, wait_for
from test_cluster_wills import DEAD_S, SLACK_S, all_see, make_nodes, reaches, watch, wills_in

pytestmark = pytest.mark.ternd_only


def test_the_wills_of_a_killed_nodes_clients_go_once(cluster_factory):
    """A v5 client (persistent session, will delay 0) and a 3.1.1 client
    (clean session) with wills, online on node2, which is killed: within
    the bound, a watcher on node1 gets each will exactly once, published by
    the node that acted for node2 [MQTT-3.1.2-8]."""
    c, (a, b, k) = make_nodes(cluster_factory, 3)
    assert all_see((a, b, k), 3, timeout=30)
    topic = unique("kwill")
    w = watch(b, topic)
    assert reaches(a, w, topic)
    v5 = k.raw(m.V5)
    v5.connect(unique("kv5"), clean=False, properties={m.SESSION_EXPIRY: 60},
               will={"topic": topic, "payload": b"v5 gone", "qos": 1})
    v3 = k.raw(m.V311)
    v3.connect(unique("kv3"), clean=True, will={"topic": topic, "payload": b"v311 gone", "qos": 1})
    # The records are written as the CONNECTs are accepted; a moment for
    # them to reach JetStream.
    time.sleep(0.5)
    k.kill()
    got = wills_in(w, topic, DEAD_S + SLACK_S + 2)
    assert sorted(got) == [b"v311 gone", b"v5 gone"], got
    # And never again.
    assert wills_in(w, topic, 1.5) == []
    w.disconnect()


@pytest.mark.parametrize("version", [m.V311, m.V5], ids=["v311", "v5"])
def test_a_killed_nodes_session_resumes_elsewhere(cluster_factory, version):
    """X's persistent session is on node1 (offline, subscribed at QoS 1);
    node1 is killed; what is published for X meanwhile is kept in its
    durable queue. X connects on node0 without clean start, before or after
    node0 adopted the session: session present 1, every message arrives
    without a new SUBSCRIBE [MQTT-4.1.0-1]."""
    c, (a, b) = make_nodes(cluster_factory, 2)
    assert all_see((a, b), 2, timeout=30)
    cid, topic = unique("kres"), unique("kres")
    s = b.raw(version)
    if version == m.V5:
        s.connect(cid, clean=False, properties={m.SESSION_EXPIRY: 300})
    else:
        s.connect(cid, clean=False)
    assert s.subscribe([(topic, 1)]).codes == [1]
    s.disconnect()
    pub = a.raw(m.V311)
    pub.connect(unique("kpub"))
    n = 10
    for i in range(n):
        pub.publish(topic, b"k%02d" % i, qos=1, pid=i + 1)
    b.kill()
    if version == m.V5:
        # After the adoption: node0 holds the session offline by then.
        time.sleep(DEAD_S + 2)
    x = a.raw(version, timeout=20.0)
    if version == m.V5:
        ack = x.connect(cid, clean=False, properties={m.SESSION_EXPIRY: 300})
    else:
        ack = x.connect(cid, clean=False)
    assert ack.session_present
    got = collections.Counter()
    deadline = time.monotonic() + 20
    while len(got) < n and time.monotonic() < deadline:
        try:
            got[x.recv_publish(timeout=max(0.1, deadline - time.monotonic())).payload] += 1
        except TimeoutError:
            break
    assert sorted(got) == [b"k%02d" % i for i in range(n)], sorted(got)
    pub.disconnect()
    x.disconnect()


def test_a_stopped_nodes_clients_wills_go(cluster_factory):
    """node1 stops cleanly (SIGTERM) with a client connected: the client's
    connection ends without its DISCONNECT (v5: the server's DISCONNECT
    0x8B Server shutting down), so its will is published
    [MQTT-3.1.2-8]; node1's last heartbeat says it left, and node0 acts at
    once, without waiting for the 4 s bound. A client that sent DISCONNECT
    before leaves no will [MQTT-3.1.2-10]."""
    c, (a, b) = make_nodes(cluster_factory, 2)
    assert all_see((a, b), 2, timeout=30)
    topic = unique("swill")
    w = watch(a, topic)
    assert reaches(b, w, topic)
    x = b.raw(m.V5)
    x.connect(unique("stopped"), will={"topic": topic, "payload": b"stopped", "qos": 1})
    polite = b.raw(m.V5)
    polite.connect(unique("polite"), will={"topic": topic, "payload": b"polite", "qos": 1})
    polite.disconnect(0)
    time.sleep(0.5)
    t0, at = time.monotonic(), []
    b.stop()
    got = wills_in(w, topic, DEAD_S + SLACK_S, at)
    assert got == [b"stopped"], got
    # Left, not dead: before the bound a silent node would need (0.9 s
    # here when idle).
    assert at[0] - t0 < DEAD_S, "the will took %.1f s" % (at[0] - t0)
    w.disconnect()


def test_a_node_restarted_at_once_publishes_its_clients_wills(cluster_factory):
    """node1 is killed (kill -9) with a client connected and restarted at
    once, within the bound, so nobody counts it dead: node1 itself acts
    for its earlier run, and the client's will reaches a watcher on node0
    exactly once [MQTT-3.1.2-8]."""
    c, (a, b) = make_nodes(cluster_factory, 2)
    assert all_see((a, b), 2, timeout=30)
    topic = unique("rwill")
    w = watch(a, topic)
    assert reaches(b, w, topic)
    x = b.raw(m.V5)
    x.connect(unique("restarted"), clean=False, properties={m.SESSION_EXPIRY: 60},
              will={"topic": topic, "payload": b"gone in a restart", "qos": 1})
    time.sleep(0.5)
    b.kill()
    b.restart()
    got = wills_in(w, topic, DEAD_S + SLACK_S + 2)
    assert got == [b"gone in a restart"], got
    w.disconnect()


def test_a_restored_copy_of_a_session_that_went_elsewhere_is_dropped(cluster_factory):
    """X's connection on node1 (which keeps a store) ends abnormally, its
    will delayed 5 s; node1 stops cleanly before that, so node0 adopts the
    session with its pending will. node1 starts again and restores X, will
    and all, from its store, but the cluster's record says node0 holds it:
    node1 drops its copy, and the will reaches a watcher exactly once, from
    node0, after its delay [MQTT-3.1.3-9]."""
    c = cluster_factory(nodes=0, nats_n=1)
    nodes = []
    for _ in range(2):
        port = free_port()
        # The default store (SQLite), unlike make_nodes()' memory.
        node = c.add_node(extra=["http_listener %d" % port])
        node.http_port = port
        nodes.append(node)
    a, b = nodes
    assert all_see((a, b), 2, timeout=30)
    cid, topic = unique("stale"), unique("stalewill")
    w = watch(a, topic)
    assert reaches(b, w, topic)
    x = b.raw(m.V5)
    x.connect(cid, clean=False, properties={m.SESSION_EXPIRY: 300},
              will={"topic": topic, "payload": b"once", "qos": 1,
                    "properties": {m.WILL_DELAY: 5}})
    x.abort()
    time.sleep(0.5)
    t0 = time.monotonic()
    b.stop()
    assert wait_for(lambda: "adopted the session of %s" % cid in open(a.log).read(),
                    DEAD_S + SLACK_S)
    b.restart()
    assert wait_for(lambda: "went to another node while this one was down" in
                    open(b.log).read(), 15)
    at = []
    got = wills_in(w, topic, 5 + SLACK_S + 2, at)
    assert got == [b"once"], got
    assert at[0] - t0 >= 5 - 1.5, "the will came before its delay"
    w.disconnect()
