"""A persistent session follows its client to any node of the cluster
(issue 12; docs/cluster.md, "Persistent sessions across nodes"): the node
that holds a session keeps its record (subscriptions, expiry, will) in the
JetStream key-value bucket <cluster>_sessions, and a CONNECT without clean
start on another node resumes it from there: session present 1
[MQTT-3.2.2-3], its subscriptions in force without a new SUBSCRIBE
[MQTT-4.1.0-1], what was queued for it delivered. A clean start anywhere
ends it everywhere [MQTT-3.1.2-4]; an expired session is not resumed
[MQTT-3.1.2-23]. When the record cannot be read (the node cannot reach
JetStream), the CONNECT is refused (v5 0x88 Server unavailable, 3.1.1 return
code 3) rather than answered with a new session: session present 0 would
tell the client to drop the state it keeps [MQTT-3.2.2-2] and the new
session's record would replace the cluster's.

The module's cluster: 3 nats-server (one JetStream cluster) and 3 ternd,
each on its own nats-server; client ids and topics are unique per test.
"""

import collections
import time

import pytest

import mqtt_raw as m
from helpers import PahoClient, unique, wait_for, wait_log

pytestmark = pytest.mark.ternd_only

# A takeover across nodes goes through the JetStream clients bucket and
# back to every node: milliseconds on loopback, bounded for a loaded
# machine.
TAKEOVER_S = 10


@pytest.fixture(scope="module")
def nodes(tern_cluster):
    for n in tern_cluster.nodes:
        assert wait_log(n, "Cluster: JetStream set up", timeout=30), \
            "node %s never set JetStream up" % n.node_name
    return tern_cluster.nodes


def connect(node, cid, version, clean=False, expiry=3600, **kw):
    c = node.raw(version, timeout=20.0)
    if version == m.V5:
        props = {m.SESSION_EXPIRY: expiry} if expiry is not None else None
        ack = c.connect(cid, clean=clean, properties=props, **kw)
    else:
        ack = c.connect(cid, clean=clean, **kw)
    return c, ack


def take(c, want, timeout=20.0):
    """Payloads raw client c receives (acking each) until `want` distinct
    ones are in or timeout: a Counter, duplicates counted."""
    got = collections.Counter()
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        try:
            p = c.recv_publish(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        got[p.payload] += 1
    return got


def publish_until_received(pub, topic, c, payload=b"across", timeout=10.0):
    """Publishes payload (QoS 0) on pub until raw client c gets one: a
    remote node learns of a new interest over the NATS routes a moment
    after the SUBACK. Returns the PUBLISH or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pub.publish(topic, payload, qos=0)
        try:
            return c.recv_publish(timeout=0.3)
        except TimeoutError:
            pass
    return None


@pytest.mark.parametrize("version", [m.V311, m.V5], ids=["v311", "v5"])
def test_the_session_resumes_on_another_node(nodes, version):
    """X subscribes on A (persistent session) and goes away; what a client
    on C publishes meanwhile is queued for it. X connects on B without
    clean start: session present 1 [MQTT-3.2.2-3], the queued messages
    arrive without a new SUBSCRIBE, and the subscription keeps working for
    what is published after [MQTT-4.1.0-1]."""
    a, b, c = nodes
    cid, topic = unique("res"), unique("resume")
    s, ack = connect(a, cid, version)
    assert not ack.session_present
    assert s.subscribe([(topic, 1)]).codes == [1]
    s.disconnect()
    pub = PahoClient(c)
    n = 10
    for i in range(n):
        pub.publish(topic, b"q%02d" % i, qos=1)
    s2, ack = connect(b, cid, version)
    assert ack.session_present, "the session did not follow its client to node B"
    got = take(s2, n)
    assert sorted(got) == [b"q%02d" % i for i in range(n)], sorted(got)
    pub.publish(topic, b"after", qos=1)
    assert take(s2, 1) == collections.Counter({b"after": 1})
    s2.disconnect()
    pub.disconnect()
    # Ended here, so that the module's other tests do not meet it.
    end, _ = connect(c, cid, version, clean=True, expiry=0)
    end.disconnect()


def test_an_online_session_moves_with_its_options(nodes):
    """X, online on A with a QoS 1 subscription carrying a subscription
    identifier and No Local, connects on B without clean start: A closes
    its connection (DISCONNECT 0x8E [MQTT-3.1.4-3]), B resumes the session
    (session present 1), and a message published on C reaches X on B with
    its subscription identifier [MQTT-3.3.4-3], while X's own publish on
    that filter does not come back to it (No Local kept [MQTT-3.8.3-3])."""
    a, b, c = nodes
    cid, topic = unique("mov"), unique("move")
    old, _ = connect(a, cid, m.V5)
    ack = old.subscribe([(topic, 1 | 0x04)], properties={m.SUBSCRIPTION_ID: 77})
    assert ack.codes == [1]
    new, ack = connect(b, cid, m.V5)
    assert ack.session_present
    pkts = old.wait_closed(TAKEOVER_S)
    assert [(p.type, p.rc) for p in pkts] == [(m.DISCONNECT, 0x8E)], pkts
    new.publish(topic, b"mine", qos=1, pid=3)
    pub = PahoClient(c)
    p = publish_until_received(pub, topic, new, payload=b"theirs")
    assert p is not None and p.payload == b"theirs", p
    assert p.props.get(m.SUBSCRIPTION_ID) == [77], p.props
    # Nothing of X's own comes back, whatever else arrives.
    rest = [q.payload for q in new.recv_all(1.0) if q.type == m.PUBLISH]
    assert b"mine" not in rest, rest
    pub.disconnect()
    new.disconnect(0, properties={m.SESSION_EXPIRY: 0})


@pytest.mark.parametrize("version", [m.V311, m.V5], ids=["v311", "v5"])
def test_a_clean_start_on_one_node_ends_the_session_everywhere(nodes, version):
    """X's persistent session is on A (offline); X connects on B with clean
    start, then leaves: the session ended [MQTT-3.1.2-4] everywhere, so X
    without clean start on C gets session present 0 [MQTT-3.2.2-2] and no
    message of the old subscription."""
    a, b, c = nodes
    cid, topic = unique("cln"), unique("clean")
    s, _ = connect(a, cid, version)
    s.subscribe([(topic, 1)])
    s.disconnect()
    fresh, ack = connect(b, cid, version, clean=True, expiry=0)
    assert not ack.session_present
    fresh.disconnect()
    # A heard of the clean claim and let its session go.
    assert wait_for(lambda: "taken over by another node" in open(a.log).read(), TAKEOVER_S)
    pub = PahoClient(a)
    pub.publish(topic, b"stale", qos=1)
    again, ack = connect(c, cid, version)
    assert not ack.session_present, "a session ended by a clean start came back"
    assert take(again, 1, timeout=1.5) == collections.Counter()
    again.disconnect()
    pub.disconnect()
    end, _ = connect(c, cid, version, clean=True, expiry=0)
    end.disconnect()


def test_an_expired_session_is_not_resumed_elsewhere(nodes):
    """v5: X's session on A has a Session Expiry Interval of 1 s; X leaves,
    the interval passes, X connects on B without clean start: session
    present 0 [MQTT-3.1.2-23], as on one node."""
    a, b, _c = nodes
    cid = unique("exp")
    s, _ = connect(a, cid, m.V5, expiry=1)
    s.subscribe([(unique("expire"), 1)])
    s.disconnect()
    time.sleep(2.5)
    s2, ack = connect(b, cid, m.V5, expiry=0)
    assert not ack.session_present
    s2.disconnect()


@pytest.mark.parametrize("version", [m.V311, m.V5], ids=["v311", "v5"])
def test_a_connect_whose_session_cannot_be_read_is_refused(cluster_factory, version):
    """Node B's nats-server is down (JetStream cluster of three, whose
    servers do not advertise each other, so B has nowhere to go; one
    replica, so that the restarted server has nothing to catch up): a CONNECT
    without clean start on B is refused, v5 with CONNACK 0x88 Server
    unavailable, 3.1.1 with return code 3 (section 3.2.2.3), and the
    connection closed [MQTT-3.2.2-5]; a clean start is still accepted, as
    it needs no record. Once B's nats-server is back, the session X left on
    A resumes on B (session present 1)."""
    c = cluster_factory(nodes=2, nats_n=3, replicas=1, no_advertise=True)
    a, b = c.nodes
    for n in c.nodes:
        assert wait_log(n, "Cluster: JetStream set up", timeout=30)
    cid, topic = unique("down"), unique("down")
    s, _ = connect(a, cid, version)
    s.subscribe([(topic, 1)])
    s.disconnect()
    c.nats.kill(1)
    refused = b.raw(version, timeout=20.0)
    code = 0x88 if version == m.V5 else 3
    deadline = time.monotonic() + 15
    ack = None
    while time.monotonic() < deadline:
        # B notices its nats-server is gone within a second or two.
        refused = b.raw(version, timeout=20.0)
        if version == m.V5:
            ack = refused.connect(cid, clean=False, expect_rc=None,
                                  properties={m.SESSION_EXPIRY: 3600})
        else:
            ack = refused.connect(cid, clean=False, expect_rc=None)
        if ack.rc == code:
            break
        refused.close()
        time.sleep(0.5)
    assert ack is not None and ack.rc == code, ack
    assert not ack.session_present
    refused.wait_closed(5)
    other, ack = connect(b, unique("other"), version, clean=True, expiry=0)
    assert ack.rc == 0
    other.disconnect()
    c.nats.restart(1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        again = b.raw(version, timeout=20.0)
        if version == m.V5:
            ack = again.connect(cid, clean=False, expect_rc=None,
                                properties={m.SESSION_EXPIRY: 3600})
        else:
            ack = again.connect(cid, clean=False, expect_rc=None)
        if ack.rc == 0:
            break
        again.close()
        time.sleep(0.5)
    assert ack.rc == 0 and ack.session_present, ack
    again.disconnect()
