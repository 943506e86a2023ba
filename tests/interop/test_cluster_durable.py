"""No acknowledged message lost across nodes (issue 12; docs/cluster.md,
"Persistent sessions"): in a cluster, a QoS 1/2 PUBLISH is acknowledged
once the cluster's durable queues in JetStream have it, and a persistent
session's QoS 1/2 subscriptions are fed from those queues, so what it is
owed survives the loss (kill -9) of its node and reaches it on whichever
node it comes back to.

Three ternd on a JetStream cluster of three nats-server, each ternd on its
own nats-server.
"""

import collections
import time

import pytest

from conftest import free_port
import mqtt_raw as m
from helpers import PahoClient, unique, wait_for
from test_observability import scrape

pytestmark = pytest.mark.ternd_only


def durable_sub(node, cid, topic, qos, version=m.V311):
    """A persistent session of cid on node subscribed to topic at qos (raw
    client, acking what it gets)."""
    c = node.raw(version)
    if version == m.V5:
        c.connect(cid, clean=False, properties={m.SESSION_EXPIRY: 3600})
    else:
        c.connect(cid, clean=False)
    c.subscribe([(topic, qos)])
    return c


def take_all(c, want, timeout=30.0):
    """Payloads received by raw client c (acking each, completing QoS 2)
    until `want` distinct payloads are in, or timeout; returns a Counter of
    every payload received (duplicates counted)."""
    got = collections.Counter()
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        try:
            p = c.recv_publish(timeout=max(0.1, deadline - time.monotonic()))
        except Exception:
            break
        if p is None:
            break
        got[p.payload] += 1
    return got


@pytest.mark.parametrize("qos", [1, 2])
def test_queued_messages_survive_the_subscribers_node(cluster_factory, qos):
    """A persistent subscriber on node B goes offline; a publisher on node A
    publishes N messages at QoS 1/2, each acknowledged; node B is killed
    (kill -9). The client comes back on node C with the same client id and
    subscribes again: every acknowledged message arrives, QoS 2 exactly
    once [MQTT-4.3.3-3], in order for QoS 1 [MQTT-4.6.0-2]."""
    c = cluster_factory(nodes=3, nats_n=3)
    a, b, cn = c.nodes
    cid, topic = unique("dur"), unique("durable")
    s = durable_sub(b, cid, topic, qos)
    s.disconnect()
    pub = PahoClient(a)
    n = 30
    for i in range(n):
        pub.publish(topic, b"m%03d" % i, qos=qos)
    b.kill()
    s2 = durable_sub(cn, cid, topic, qos)
    got = take_all(s2, n)
    assert sorted(got) == [b"m%03d" % i for i in range(n)], sorted(got)
    if qos == 2:
        assert set(got.values()) == {1}, got
    pub.disconnect()
    s2.close()


def test_kill_9_mid_stream_loses_nothing_acknowledged(cluster_factory):
    """QoS 1 and QoS 2 publishers on nodes A and C publish while the
    persistent subscribers' node B is killed (kill -9) mid-stream; the
    subscribers come back on A: every message whose PUBACK / PUBCOMP the
    publisher had arrives, QoS 1 at least once, QoS 2 exactly once."""
    c = cluster_factory(nodes=3, nats_n=3)
    a, b, cn = c.nodes
    t1, t2 = unique("mid1"), unique("mid2")
    c1, c2 = unique("sub1"), unique("sub2")
    s1 = durable_sub(b, c1, t1, 1)
    s2 = durable_sub(b, c2, t2, 2)
    p1, p2 = PahoClient(a), PahoClient(cn)
    n = 60
    for i in range(n):
        p1.publish(t1, b"q1-%03d" % i, qos=1)
        p2.publish(t2, b"q2-%03d" % i, qos=2)
        if i == n // 2:
            b.kill()
    s1.abort()
    s2.abort()
    r1 = durable_sub(a, c1, t1, 1)
    r2 = durable_sub(a, c2, t2, 2)
    got1 = take_all(r1, n)
    got2 = take_all(r2, n)
    # The subscribers on B never acknowledged anything (they did not
    # read): all of it is still owed, whatever B had sent them.
    assert sorted(got1) == [b"q1-%03d" % i for i in range(n)], sorted(got1)
    assert sorted(got2) == [b"q2-%03d" % i for i in range(n)], sorted(got2)
    assert all(v == 1 for v in got2.values()), got2
    for cl in (p1, p2):
        cl.disconnect()
    r1.close()
    r2.close()


def test_a_clean_session_is_not_kept(cluster_factory):
    """A clean session (clean session 1 / no expiry) has no durable queue:
    what is published while it is gone is not kept for it
    [MQTT-3.1.2-6]."""
    c = cluster_factory(nodes=2, nats_n=1)
    a, b = c.nodes
    topic = unique("clean")
    s = PahoClient(b)
    s.subscribe(topic, 1)
    s.disconnect()
    pub = PahoClient(a)
    pub.publish(topic, b"gone", qos=1)
    s2 = PahoClient(b)
    s2.subscribe(topic, 1)
    s2.nothing(1.0)
    pub.disconnect()
    s2.disconnect()


def test_a_session_taken_over_by_another_node_keeps_its_queue(cluster_factory):
    """A persistent subscriber of node B is away; messages are published for
    it; it comes back on node C (B alive, so B hears of the takeover
    [MQTT-3.1.4-3] and lets its copy go) and subscribes again: the queued
    messages arrive there. With a clean start instead, nothing of the old
    session is owed [MQTT-3.1.2-4]: its queue is gone, but the queue of a
    subscription made after the clean start stays."""
    c = cluster_factory(nodes=3, nats_n=1)
    a, b, cn = c.nodes
    cid, topic = unique("moved"), unique("moved")
    s = durable_sub(b, cid, topic, 1)
    s.disconnect()
    pub = PahoClient(a)
    for i in range(10):
        pub.publish(topic, b"k%02d" % i, qos=1)
    s2 = durable_sub(cn, cid, topic, 1)
    got = take_all(s2, 10, timeout=20)
    assert sorted(got) == [b"k%02d" % i for i in range(10)], sorted(got)
    s2.disconnect()
    for i in range(5):
        pub.publish(topic, b"old%d" % i, qos=1)
    fresh = cn.raw(m.V311)
    fresh.connect(cid, clean=True)
    fresh.disconnect()
    s3 = durable_sub(b, cid, topic, 1)
    assert take_all(s3, 1, timeout=2.0) == collections.Counter()
    pub.publish(topic, b"new", qos=1)
    assert take_all(s3, 1, timeout=10) == collections.Counter({b"new": 1})
    pub.disconnect()
    s3.close()


def publish_acked(pub, topic, payloads, timeout=30.0):
    """Publishes each payload at QoS 1 with raw v5 client pub until its
    PUBACK is a success (0x00, or 0x10 No matching subscribers): a node
    refuses (0x80) what JetStream could not store, as while the JetStream
    cluster elects a new stream leader."""
    deadline = time.monotonic() + timeout
    for i, payload in enumerate(payloads):
        while True:
            pub.send(m.publish(topic, payload, 1, pid=1 + i % 60000, version=m.V5))
            ack = pub.recv_type(m.PUBACK, timeout=max(0.1, deadline - time.monotonic()))
            if ack.rc < 0x80:
                break
            assert time.monotonic() < deadline, "no successful PUBACK for %r" % (payload,)
            time.sleep(0.2)


def test_a_subscription_whose_queue_cannot_be_made_is_refused(cluster_factory):
    """A persistent session's QoS 1/2 subscription is a durable queue, and
    what other nodes publish before the queue exists is not kept for it. So
    while node A's nats-server is down (A cannot reach JetStream), A refuses
    such a subscription: 0x80 in its place of the SUBACK [MQTT-3.9.3-1]
    (3.1.1 Failure, v5 Unspecified error, section 3.9.3), as it refuses a
    QoS 1/2 PUBLISH then, while granting the QoS 0 filter of the same
    SUBSCRIBE. The refused subscription is undone: neither a local QoS 0
    publish nor what node B publishes meanwhile reaches the session, then or
    after NATS is back. Once A's nats-server is back, the same SUBSCRIBE is
    granted, and everything B publishes after that SUBACK is queued for the
    session: the client, away at once, gets all of it when it comes back.
    JetStream cluster of three with cluster_replicas 3, so B (on another
    nats-server) keeps its quorum, whose servers do not advertise the
    others, so A has no other server to fail over to; two workers per node, so the refusal
    also undoes the other worker's router replica."""
    c = cluster_factory(nodes=0, nats_n=3, replicas=3, workers=2, no_advertise=True)
    port = free_port()
    a = c.add_node(extra=["http_listener %d" % port])
    b = c.add_node()
    topic, t0 = unique("late"), unique("late0")
    pub_b = b.raw(m.V5, timeout=30.0)
    pub_b.connect(unique("pubb"))
    local = PahoClient(a)
    # The sessions connect before the outage: without JetStream, a
    # CONNECT without clean start is refused (test_cluster_sessions.py).
    conns = {}
    for version in (m.V311, m.V5):
        cid = unique("late%d" % version)
        s = a.raw(version, timeout=20.0)
        if version == m.V5:
            s.connect(cid, clean=False, properties={m.SESSION_EXPIRY: 3600})
        else:
            s.connect(cid, clean=False)
        conns[version] = (cid, s)
    c.nats.kill(0)
    assert wait_for(lambda: scrape(port)["tern_cluster_connected"] == 0.0, timeout=10)
    sessions = {}
    for version, (cid, s) in conns.items():
        ack = s.subscribe([(topic, 1), (t0, 0)])
        assert ack.codes == [0x80, 0x00], (version, ack)
        sessions[version] = (cid, s)
    # B's JetStream keeps its quorum: what it acknowledges is stored.
    publish_acked(pub_b, topic, [b"away%d" % i for i in range(5)])
    local.publish(topic, b"local", qos=0)
    local.publish(t0, b"granted", qos=0)
    for version, (cid, s) in sessions.items():
        p = s.recv_publish(timeout=5.0)
        assert p.payload == b"granted", (version, p)
        with pytest.raises(TimeoutError):
            s.recv_publish(timeout=1.0)
        s.disconnect()

    c.nats.restart(0)
    assert wait_for(lambda: scrape(port)["tern_cluster_connected"] == 1.0 and
                    scrape(port)["tern_cluster_jetstream"] == 1.0, timeout=30)
    for version, (cid, _) in sessions.items():
        s = a.raw(version, timeout=20.0)
        if version == m.V5:
            s.connect(cid, clean=False, properties={m.SESSION_EXPIRY: 3600})
        else:
            s.connect(cid, clean=False)
        ack = s.subscribe([(topic, 1)])
        assert ack.codes == [0x01], (version, ack)
        s.disconnect()
    n = 20
    publish_acked(pub_b, topic, [b"back%02d" % i for i in range(n)])
    for version, (cid, _) in sessions.items():
        # The session resumes with its subscription and what it queued.
        s = a.raw(version, timeout=20.0)
        if version == m.V5:
            ack = s.connect(cid, clean=False, properties={m.SESSION_EXPIRY: 3600})
        else:
            ack = s.connect(cid, clean=False)
        assert ack.session_present
        got = take_all(s, n, timeout=20)
        # Nothing of the outage (there was no subscription then), all
        # that came after the SUBACK.
        assert sorted(got) == [b"back%02d" % i for i in range(n)], (version, sorted(got))
        s.close()
    pub_b.close()
    local.disconnect()


def test_after_a_clean_stop_the_held_messages_come_first(cluster_factory):
    """X's persistent session on node B holds QoS 1 messages m00-m04 that X
    received but did not acknowledge; B stops cleanly (SIGTERM). Then
    m05-m09 are published, and X resumes on node A at once, well within
    JetStream's ack wait: the held messages come first, then the new ones,
    in the order they were published [MQTT-4.6.0-6], because B gave the
    held ones back as it stopped (a NAK) rather than leaving them to the ack
    wait, which would deliver them seconds later behind m05-m09."""
    c = cluster_factory(nodes=2, nats_n=1)
    a, b = c.nodes
    cid, topic = unique("ord"), unique("order")
    x = durable_sub(b, cid, topic, 1)
    pub = PahoClient(a)
    for i in range(5):
        pub.publish(topic, b"m%02d" % i, qos=1)
    held = [x.recv_publish(timeout=20, ack=False).payload for _ in range(5)]
    assert held == [b"m%02d" % i for i in range(5)], held
    b.stop()
    x.abort()
    for i in range(5, 10):
        pub.publish(topic, b"m%02d" % i, qos=1)
    y = a.raw(m.V311, timeout=20.0)
    ack = y.connect(cid, clean=False)
    assert ack.session_present
    order = []
    deadline = time.monotonic() + 20
    while len(set(order)) < 10 and time.monotonic() < deadline:
        try:
            p = y.recv_publish(timeout=max(0.1, deadline - time.monotonic()))
        except Exception:
            break
        order.append(p.payload)
    firsts = []
    for p in order:
        if p not in firsts:
            firsts.append(p)
    assert firsts == [b"m%02d" % i for i in range(10)], order
    pub.disconnect()
    y.close()
