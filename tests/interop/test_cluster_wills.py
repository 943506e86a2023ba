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
from helpers import read_log, wait_for
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
