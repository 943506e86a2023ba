"""ternd nodes that act as one broker, on NATS (issue 12; docs/cluster.md).

The fixtures are in cluster.py and conftest.py: `tern_cluster` is 3
nats-server (one JetStream cluster) + 3 ternd nodes, each ternd on its own
nats-server, shared by the tests of this module (topics and client ids are
unique per test); `cluster_factory` builds clusters of other shapes for one
test; `nats_server` is one standalone nats-server.
"""

import os
import time

import pytest

from conftest import Broker, free_port
from helpers import PahoClient, unique

pytestmark = pytest.mark.ternd_only


# -- the harness itself


def test_nats_cluster_forms_with_one_meta_leader(cluster_factory):
    """The fixture's NATS cluster is one JetStream cluster: every server is
    routed to both others and all three name the same meta leader."""
    c = cluster_factory(nodes=0)
    assert all(s.route_count() == 2 for s in c.nats)
    leaders = {s.meta_leader() for s in c.nats}
    assert len(leaders) == 1 and None not in leaders, leaders


def test_nats_server_kill_and_restart(cluster_factory):
    """kill -9 of one nats-server (by PID): the other two keep a meta
    leader; restarted on its ports and store, it rejoins as a routed,
    healthy peer."""
    c = cluster_factory(nodes=0)
    victim = c.nats[0]
    pid = victim.pid
    victim.kill()
    assert not victim.alive()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert all(s.ready(20, routes=1) for s in c.nats.servers[1:])
    c.nats.restart(0)
    assert victim.pid != pid and victim.healthy()
    assert c.nats.ready(20)
    assert len({s.meta_leader() for s in c.nats}) == 1


def test_ternd_without_cluster_nats_needs_no_nats(tmp_path):
    """Without cluster_nats nothing changes and no NATS is needed (issue
    12): a ternd of a plain config (no nats-server started for it, even in
    TERN_TEST_CLUSTER mode) starts, routes a message and logs nothing of
    NATS."""
    b = Broker(tmp_path, 1, [])
    b.extra = [l for l in b.extra if not l.startswith("cluster_")]
    b.start()
    try:
        sub = PahoClient(b)
        topic = unique("plain")
        sub.subscribe(topic, 1)
        pub = PahoClient(b)
        pub.publish(topic, b"x", qos=1)
        assert sub.get().payload == b"x"
        pub.disconnect()
        sub.disconnect()
        assert b.alive()
        with open(b.log, errors="replace") as f:
            assert "nats" not in f.read().lower()
    finally:
        b.stop()
