"""When a node of the cluster dies (issue 12; docs/cluster.md, "When a node
dies"): the other nodes see its heartbeats stop in the JetStream bucket
<cluster>_nodes (src/cluster/nodes.c), one of them acts for it, and the wills
of its clients are published there.

Each test makes its own cluster (it kills nodes): one nats-server and 2-3
ternd, each with /metrics; node names end in node0, node1, ... so node0 is
the one that acts for a dead node while it lives.
"""

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


def wills_in(watcher, topic, timeout):
    """The will payloads on topic the watcher gets within timeout."""
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
        t0 = time.monotonic()
        assert wills_in(w, topic, 3 + SLACK_S) == [b"x gone"]
        assert time.monotonic() - t0 >= 2.0, "the will came before its delay"
    w.disconnect()
