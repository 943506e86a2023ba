"""A node cut off from NATS while its clients stay connected (issue 12;
docs/cluster.md, "When a node loses NATS" and "When a node dies").

Three nats-server (a JetStream cluster, replicas 3) and three ternd, each
ternd knowing only its own nats-server (no_advertise), so killing
nats-server 0 cuts node A off from the cluster while A, its clients and
the other two nodes go on. Past the bound the others count A dead and
node B (the first live name) adopts the sessions A had recorded: it binds
their durable queues, as A still does. When nats-server 0 is back, A sees
that it was cut off for longer than the bound and takes back every
session whose client is still connected to it: a new claim, which makes
B let its copy go as any takeover does. Without that, B's stale copy keeps
receiving the session's messages beside A, and the client, once it
reconnects on B, gets a QoS 2 message it had already completed once more:
exactly once broken [MQTT-4.3.3-...], the test's check.
"""

import time

import pytest

from conftest import free_port
import mqtt_raw as m
from helpers import read_log, unique, wait_for
from test_cluster_wills import DEAD_S, SLACK_S, all_see
from test_observability import scrape

pytestmark = pytest.mark.ternd_only


def nodes_on_own_servers(cluster_factory, n=3):
    c = cluster_factory(nodes=0, nats_n=3, replicas=3, no_advertise=True)
    nodes = []
    for _ in range(n):
        port = free_port()
        node = c.add_node(extra=["http_listener %d" % port, "sys_interval 1",
                                 "storage memory", "connection_messages true"])
        node.http_port = port
        nodes.append(node)
    return c, nodes


def jetstream_up(node):
    try:
        return scrape(node.http_port).get("tern_cluster_jetstream") == 1.0
    except OSError:
        return False


def publish_reaching(pub, sub_client, topic, payload, qos, timeout=20.0):
    """Publishes payload (QoS qos) from pub until sub_client gets it once;
    returns it. Probes at QoS 0 first, so that the subscription's interest
    is known where pub is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pub.publish(topic, b"probe", qos=0)
        try:
            p = sub_client.recv_type(m.PUBLISH, timeout=0.3)
        except Exception:
            continue
        sub_client.ack(p)
        if p.payload == b"probe":
            break
    pub.publish(topic, payload, qos=qos, pid=41)
    while True:
        p = sub_client.recv_publish(timeout=max(0.5, deadline - time.monotonic()))
        if p.payload == payload:
            return p


def test_a_cut_off_node_takes_back_the_sessions_of_its_connected_clients(cluster_factory):
    c, (a, b, k) = nodes_on_own_servers(cluster_factory)
    assert all_see((a, b, k), 3, timeout=40)
    cid, topic = unique("cut"), unique("cut")
    x = a.raw(m.V311, timeout=20.0)
    x.connect(cid, clean=False, keepalive=120,
              will={"topic": topic + "/will", "payload": b"x gone", "qos": 1})
    assert x.subscribe([(topic, 2)]).codes == [2]
    pub = k.raw(m.V311, timeout=20.0)
    pub.connect(unique("cutpub"), keepalive=120)
    # The subscription works across nodes before the cut.
    assert publish_reaching(pub, x, topic, b"before", 2).payload == b"before"
    # No pause: the queue's ack of "before" may still be on its way when
    # nats-server 0 dies; the node sends it again until JetStream confirms
    # it, and a delivery again of it is not a second message
    # (test_cluster_acks.py).

    c.nats.kill(0)
    # B, the first live name, counts A dead and adopts X's session (whose
    # connection is in fact still up on A).
    assert wait_for(lambda: "adopted the session of %s" % cid in read_log(b),
                    timeout=DEAD_S + SLACK_S + 20), read_log(b)[-3000:]
    c.nats.restart(0)
    assert wait_for(lambda: jetstream_up(a), timeout=40)
    # A takes X's session back; B's copy goes (a takeover by claim). What
    # a user sees of it is checked below; the logs say it first.
    let_go = wait_for(lambda: "%s session ended: taken over by another node" % cid
                      in read_log(b), timeout=30)

    # X, connected to A all along, gets what is published now, once.
    m1 = publish_reaching(pub, x, topic, b"m1", 2)
    assert m1.payload == b"m1" and m1.qos == 2
    assert x.no_packet(1.0), "m1 came twice on A"
    x.disconnect()
    # Then X resumes on B: its session is A's (session present), and m1,
    # completed on A, is not delivered again [MQTT-4.3.3-2 / 4.4.0-1].
    y = b.raw(m.V311, timeout=20.0)
    ack = y.connect(cid, clean=False, keepalive=120)
    assert ack.session_present, "session present: the session resumes on B"
    pub.publish(topic, b"m2", qos=2, pid=42)
    got = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and b"m2" not in got:
        try:
            p = y.recv_publish(timeout=1.0)
        except Exception:
            continue
        got.append(p.payload)
    assert b"m2" in got, got
    assert b"m1" not in got, "m1 delivered twice (a stale copy of the session on B): %r" % got
    assert got.count(b"m2") == 1, got
    y.disconnect()
    pub.disconnect()
    assert let_go, read_log(b)[-3000:]
    assert wait_for(lambda: "so it is taken back" in read_log(a), timeout=5), read_log(a)[-3000:]
