"""A cluster node's own view of the cluster, and what it does without NATS
(issue 12; docs/cluster.md, "When a node loses NATS" and "Observability").

Two ternd nodes on one nats-server, each with its /metrics endpoint and
$SYS every second.
"""

import time

import pytest

from conftest import free_port
import mqtt_raw as m
from helpers import PahoClient, unique, wait_for
from test_observability import scrape, sys_values

pytestmark = pytest.mark.ternd_only


def two_nodes(cluster_factory):
    c = cluster_factory(nodes=0, nats_n=1)
    nodes = []
    for _ in range(2):
        port = free_port()
        n = c.add_node(extra=["http_listener %d" % port, "sys_interval 1", "storage memory"])
        n.http_port = port
        nodes.append(n)
    return c, nodes


def cross_node_probe(pub_node, sub_node, qos=1, timeout=10.0):
    """Subscribes on sub_node, then publishes on pub_node until a message
    arrives (bounded): SUBACK means sub_node's NATS server has the interest,
    and with one nats-server nothing else must propagate, but a node that
    just came back to NATS resubscribes in the background."""
    topic = unique("probe")
    sub = PahoClient(sub_node)
    sub.subscribe(topic, qos)
    pub = PahoClient(pub_node)
    deadline = time.monotonic() + timeout
    got = None
    while got is None and time.monotonic() < deadline:
        pub.publish(topic, b"probe", qos=qos)
        got = next(iter(sub.drain(0.3)), None)
    pub.disconnect()
    sub.disconnect()
    return got


def test_metrics_and_sys_show_the_cluster(cluster_factory):
    """/metrics: tern_cluster_info names the node, tern_cluster_connected
    and tern_cluster_jetstream are 1, and a message from a client of node A
    to a subscriber on node B counts as sent by A and received by B; B holds
    a NATS subscription for its client's filter. $SYS/broker/cluster/...
    carries the same per node."""
    c, (a, b) = two_nodes(cluster_factory)
    assert wait_for(lambda: scrape(a.http_port).get("tern_cluster_jetstream") == 1.0,
                    timeout=20), "JetStream never set up"
    topic = unique("obs")
    sub = PahoClient(b)
    sub.subscribe(topic, 1)
    pub = PahoClient(a)
    for i in range(5):
        pub.publish(topic, b"m%d" % i, qos=1)
    for i in range(5):
        assert sub.get().payload == b"m%d" % i
    ma, mb = scrape(a.http_port), scrape(b.http_port)
    key = 'tern_cluster_info{cluster=%s,node=%s}' % (c.cluster_name, a.node_name)
    assert ma.get(key) == 1.0, sorted(k for k in ma if k.startswith("tern_cluster"))
    assert ma["tern_cluster_connected"] == 1.0 and mb["tern_cluster_connected"] == 1.0
    assert ma["tern_cluster_messages_sent_total"] >= 5
    assert mb["tern_cluster_messages_received_total"] >= 5
    assert mb["tern_cluster_subscriptions"] >= 1
    assert ma["tern_cluster_messages_malformed_total"] == 0
    got = sys_values(b, wait=2.5)
    assert got.get("$SYS/broker/cluster/node") == b.node_name
    assert got.get("$SYS/broker/cluster/connected") == "1"
    assert int(got["$SYS/broker/cluster/messages/received"]) >= 5
    pub.disconnect()
    sub.disconnect()


def test_a_node_without_nats_serves_qos0_and_refuses_qos12(cluster_factory):
    """When NATS goes away a node keeps serving its local clients with
    QoS 0 (shared subscriptions included, served locally); nothing crosses
    to the other node. QoS 1 and 2 are refused, since the node cannot put
    them where the loss of this node would not lose them (docs/cluster.md):
    v5 gets PUBACK / PUBREC 0x80 (Unspecified error: the publisher may try
    again) and nothing is delivered; 3.1.1, which cannot say it, is
    disconnected without an acknowledgement, so its client resends on
    reconnecting [MQTT-4.4.0-1]. /metrics says connected 0 and counts the
    local-only messages. When NATS is back, cross-node routing and QoS 1/2
    resume by themselves."""
    c, (a, b) = two_nodes(cluster_factory)
    assert cross_node_probe(a, b) is not None
    remote = PahoClient(b)
    t_remote = unique("away")
    remote.subscribe(t_remote, 0)

    c.nats.kill(0)
    assert wait_for(lambda: scrape(a.http_port)["tern_cluster_connected"] == 0.0, timeout=10)
    topic = unique("local")
    sub = PahoClient(a)
    sub.subscribe(topic, 2)
    shared = PahoClient(a)
    shared.subscribe("$share/g/" + topic, 1)
    pub = PahoClient(a)
    pub.publish(topic, b"q0", qos=0)
    assert sub.get().payload == b"q0"
    assert shared.get().payload == b"q0"
    pub.publish(t_remote, b"lost", qos=0)
    remote.nothing(1.0)
    assert scrape(a.http_port)["tern_cluster_messages_local_only_total"] >= 2

    v5 = a.raw(m.V5)
    v5.connect(unique("v5pub"))
    v5.send(m.publish(topic, b"q1", 1, pid=7, version=m.V5))
    ack = v5.recv_type(m.PUBACK)
    assert ack.pid == 7 and ack.rc == 0x80
    v5.send(m.publish(topic, b"q2", 2, pid=8, version=m.V5))
    rec = v5.recv_type(m.PUBREC)
    assert rec.pid == 8 and rec.rc == 0x80
    sub.nothing(0.5)
    v3 = a.raw(m.V311)
    v3.connect(unique("v3pub"))
    v3.send(m.publish(topic, b"q1", 1, pid=9))
    v3.wait_closed()
    sub.nothing(0.3)

    c.nats.restart(0)
    assert wait_for(lambda: scrape(a.http_port)["tern_cluster_connected"] == 1.0 and
                    scrape(b.http_port)["tern_cluster_connected"] == 1.0 and
                    scrape(a.http_port)["tern_cluster_jetstream"] == 1.0, timeout=30)
    assert cross_node_probe(a, b, timeout=15) is not None
    pub.publish(topic, b"back", qos=1)
    assert sub.get().payload == b"back"
    for cl in (remote, sub, shared, pub):
        cl.disconnect()
    v5.close()
