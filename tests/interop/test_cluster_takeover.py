"""A client id is unique in the cluster [MQTT-3.1.4-3] (issue 12;
docs/cluster.md): a CONNECT on node B takes the client id over from node A,
whose connection gets DISCONNECT 0x8E (v5) or is closed (3.1.1), exactly as
a second CONNECT on one node does (test_connect.py's takeover tests).

The nodes claim client ids in the JetStream key-value bucket
<cluster>_clients (src/cluster/clients.c); every node hears of every claim
and lets go of a client id another node claimed after it. A persistent
session moves with the claim: the new node resumes it from the cluster's
record (session present 1; test_cluster_sessions.py), and the old node
lets its copy go.

The cluster is the module's tern_cluster: 3 nats-server (one JetStream
cluster) and 3 ternd, each on its own nats-server; client ids and topics are
unique per test.
"""

import threading
import time

import pytest

import mqtt_raw as m
from helpers import unique, wait_for, wait_log

pytestmark = pytest.mark.ternd_only

# How long a takeover across nodes may take: the claim goes through the
# JetStream bucket and back to every node (milliseconds on loopback; the
# bound is for a loaded machine).
TAKEOVER_S = 10


@pytest.fixture(scope="module")
def nodes(tern_cluster):
    """The 3 nodes, once each has its JetStream part (the clients bucket)
    set up: claims go out from then on."""
    for n in tern_cluster.nodes:
        assert wait_log(n, "Cluster: JetStream set up", timeout=30), \
            "node %s never set JetStream up" % n.node_name
    return tern_cluster.nodes


def cross_node_works(sub, sub_node, pub_node, qos=1, timeout=10.0):
    """sub (a raw client on sub_node) subscribes to a fresh topic; a client
    on pub_node publishes to it until one message arrives (bounded: the
    SUBACK means sub_node's NATS server has the interest; the other NATS
    servers learn of it over their routes a moment later)."""
    topic = unique("tk")
    ack = sub.subscribe([(topic, qos)], pid=7)
    assert ack.codes == [qos], ack
    pub = pub_node.raw(m.V311)
    pub.connect(unique("tkpub"))
    deadline = time.monotonic() + timeout
    got = None
    while got is None and time.monotonic() < deadline:
        pub.publish(topic, b"across", qos=0)
        try:
            got = sub.recv_type(m.PUBLISH, timeout=0.3)
        except TimeoutError:
            pass
    pub.disconnect()
    return got is not None and got.payload == b"across"


@pytest.mark.parametrize("version", [m.V311, m.V5], ids=["v311", "v5"])
def test_connect_on_another_node_takes_the_client_id_over(nodes, version):
    """[MQTT-3.1.4-3]: X connected on node A, then X connects on node B: A
    closes X's connection (v5: DISCONNECT 0x8E Session taken over first,
    3.1.1: just the close, as on one node) within a bounded time, and B's
    connection stays and works across nodes (a subscription on B gets a
    publish from node C)."""
    a, b, c = nodes
    cid = unique("take")
    old = a.raw(version)
    old.connect(cid)
    new = b.raw(version)
    new.connect(cid)
    pkts = old.wait_closed(TAKEOVER_S)
    if version == m.V5:
        assert [p.type for p in pkts] == [m.DISCONNECT], pkts
        assert pkts[0].rc == 0x8E
    else:
        assert pkts == []
    assert new.is_open()
    assert cross_node_works(new, b, c)
    assert new.is_open()
    new.disconnect()


@pytest.mark.parametrize("where", ["one node", "across nodes"])
def test_taken_over_clients_will_is_published(nodes, where):
    """The existing client's will is published when it is taken over
    (section 3.1.4: "If the existing Client has a Will Message, that Will
    Message is published"), across nodes as on one node: a watcher on node C
    gets it once, whether X's second CONNECT was on A again or on B."""
    a, b, c = nodes
    cid, will_topic = unique("will"), unique("willtopic")
    watcher = c.raw(m.V311)
    watcher.connect(unique("watch"))
    assert watcher.subscribe([(will_topic, 1)]).codes == [1]
    old = a.raw(m.V5)
    old.connect(cid, will={"topic": will_topic, "payload": b"gone", "qos": 1})
    # The watcher's interest must have reached A's NATS server before the
    # will goes: probe it with a publish from A until one arrives.
    probe = a.raw(m.V311)
    probe.connect(unique("probe"))
    deadline = time.monotonic() + 10
    seen = False
    while not seen and time.monotonic() < deadline:
        probe.publish(will_topic, b"probe", qos=0)
        try:
            seen = watcher.recv_type(m.PUBLISH, timeout=0.3).payload == b"probe"
        except TimeoutError:
            pass
    probe.disconnect()
    assert seen, "node C's subscription never reached node A"
    watcher.recv_all(0.3)  # later probes
    new = (a if where == "one node" else b).raw(m.V5)
    new.connect(cid)
    old.wait_closed(TAKEOVER_S)
    got = watcher.recv_publish(TAKEOVER_S)
    assert (got.topic, got.payload) == (will_topic, b"gone")
    assert all(p.type != m.PUBLISH for p in watcher.recv_all(0.5))
    new.disconnect(0)
    watcher.disconnect()


def test_client_id_taken_back_by_the_first_node(nodes):
    """X on A, then X on B (A lets go), then X on A again: B lets go now
    (DISCONNECT 0x8E), A's newest connection stays and works."""
    a, b, c = nodes
    cid = unique("back")
    first = a.raw(m.V5)
    first.connect(cid)
    second = b.raw(m.V5)
    second.connect(cid)
    first.wait_closed(TAKEOVER_S)
    third = a.raw(m.V5)
    third.connect(cid)
    pkts = second.wait_closed(TAKEOVER_S)
    assert [(p.type, p.rc) for p in pkts] == [(m.DISCONNECT, 0x8E)]
    assert third.is_open()
    assert cross_node_works(third, a, c)
    third.disconnect(0)


def test_a_persistent_session_moves_with_each_takeover(nodes):
    """X with clean start 0 on A, then on B with clean start 0: B resumes
    the session (session present 1 [MQTT-3.2.2-3]) and A lets its copy go;
    X back on A resumes it again, from B's record."""
    a, b, _c = nodes
    cid = unique("persist")
    expiry = [(m.SESSION_EXPIRY, 300)]
    old = a.raw(m.V5)
    assert not old.connect(cid, clean=False, properties=expiry).session_present
    old.subscribe([(unique("p"), 1)])
    new = b.raw(m.V5)
    assert new.connect(cid, clean=False, properties=expiry).session_present
    old.wait_closed(TAKEOVER_S)
    new.disconnect(0)
    assert wait_for(lambda: "taken over by another node" in open(a.log).read(), 10)
    back = a.raw(m.V5)
    assert back.connect(cid, clean=False, properties=expiry).session_present
    back.disconnect(0, properties=[(m.SESSION_EXPIRY, 0)])


def test_nearly_simultaneous_connects_leave_exactly_one(nodes):
    """X connects on A and on B at nearly the same time (two threads): the
    bucket orders the two claims, the node whose claim came first lets go,
    so exactly one connection is left (bounded wait), and it stays."""
    a, b, _c = nodes
    for _round in range(4):
        cid = unique("race")
        clients = [a.raw(m.V311), b.raw(m.V311)]
        go = threading.Barrier(2)
        errors = []

        def connect(client):
            try:
                go.wait(5)
                client.connect(cid)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=connect, args=(cl,)) for cl in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert not errors, errors
        assert wait_for(lambda: sum(cl.is_open() for cl in clients) <= 1, TAKEOVER_S)
        time.sleep(0.5)  # late claims would close the survivor now
        assert sum(cl.is_open() for cl in clients) == 1
        for cl in clients:
            cl.close()
