"""The cluster through the loss of one of its NATS servers (issue 12: "kill -9
of one nats-server node (with cluster_replicas 3): the cluster goes on").

Three nats-server in one JetStream cluster, every stream and bucket of the
cluster with three replicas, and three ternd, node i on nats-server i. The
test kills nats-server 0 (kill -9) while QoS 1 traffic flows between the
nodes on the other two: node 0 fails over to a server it was told of, and
JetStream elects new leaders for what nats-server 0 led.
"""

import collections
import time

import pytest

import mqtt_raw as m
from helpers import PahoClient, unique, wait_for

pytestmark = pytest.mark.ternd_only


def publish_acked(pub, topic, payload, pid, retain=False, timeout=30.0):
    """Publishes payload at QoS 1 with raw v5 client pub until its PUBACK is
    a success (0x00, or 0x10 No matching subscribers). A node refuses (0x80)
    what JetStream did not store, as while a stream elects a new leader; the
    publisher then sends it again, as a client must to have it delivered."""
    deadline = time.monotonic() + timeout
    while True:
        pub.send(m.publish(topic, payload, 1, retain=retain, pid=pid, version=m.V5))
        ack = pub.recv_type(m.PUBACK, timeout=max(0.1, deadline - time.monotonic()))
        assert ack.pid == pid, ack
        if ack.rc < 0x80:
            return
        assert time.monotonic() < deadline, "no successful PUBACK for %r" % (payload,)
        time.sleep(0.1)


def retained_on(node, prefix, want, timeout=20.0):
    """The retained messages under prefix/# a new subscriber on node gets,
    as {topic: payload}, asked again (bounded) until they are `want`: a
    node learns of another node's retained message through the stream, a
    moment later."""
    deadline = time.monotonic() + timeout
    while True:
        s = PahoClient(node)
        s.subscribe(prefix + "/#", 1)
        got = {msg.topic: msg.payload for msg in s.drain(1.0) if msg.retain}
        s.disconnect()
        if got == want or time.monotonic() >= deadline:
            return got


def test_kill_9_of_a_nats_server_loses_nothing_acknowledged(cluster_factory):
    """Retained messages are set (QoS 1, each acknowledged once the
    retained stream has it) and every node has them. A persistent QoS 1
    subscriber on node 2 takes a stream of QoS 1 messages published on
    node 1; halfway through, nats-server 0 is killed (kill -9). The cluster
    goes on: every message whose PUBACK the publisher had arrives (at least
    once [MQTT-4.3.2]), the retained messages stay on every node, node 0
    included, and a retained message set after the kill reaches every node
    [MQTT-3.3.1-5]; cross-node QoS 0 routing works."""
    c = cluster_factory(nodes=3, nats_n=3, replicas=3)
    n0, n1, n2 = c.nodes
    prefix = unique("keep")
    pub = n1.raw(m.V5, timeout=30.0)
    pub.connect(unique("pub"))
    retained = {}
    for i in range(5):
        topic = "%s/r%d" % (prefix, i)
        retained[topic] = b"before%d" % i
        publish_acked(pub, topic, retained[topic], pid=1 + i, retain=True)
    for node in (n0, n1, n2):
        assert retained_on(node, prefix, retained) == retained, node.node_name

    topic, cid = unique("flow"), unique("sub")
    sub = n2.raw(m.V5, timeout=30.0)
    sub.connect(cid, clean=False, properties={m.SESSION_EXPIRY: 3600})
    assert sub.subscribe([(topic, 1)]).codes == [1]
    n = 200
    for i in range(n):
        if i == n // 2:
            c.nats.kill(0)
        publish_acked(pub, topic, b"m%03d" % i, pid=100 + i)
    got = collections.Counter()
    deadline = time.monotonic() + 30
    while len(got) < n and time.monotonic() < deadline:
        try:
            p = sub.recv_publish(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        got[p.payload] += 1
    missing = sorted(set(b"m%03d" % i for i in range(n)) - set(got))
    assert not missing, "%d acknowledged messages lost, e.g. %r" % (len(missing), missing[:5])

    after = "%s/after" % prefix
    publish_acked(pub, after, b"after", pid=400, retain=True)
    retained[after] = b"after"
    for node in (n1, n2, n0):
        assert retained_on(node, prefix, retained) == retained, node.node_name

    t0 = unique("q0")
    s0 = PahoClient(n0)
    s0.subscribe(t0, 0)
    deadline = time.monotonic() + 15
    seen = None
    while seen is None and time.monotonic() < deadline:
        pub.send(m.publish(t0, b"q0", 0, version=m.V5))
        seen = next(iter(s0.drain(0.3)), None)
    assert seen is not None and seen.payload == b"q0"
    s0.disconnect()
    sub.close()
    pub.close()
