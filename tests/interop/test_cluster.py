"""ternd nodes that act as one broker, on NATS (issue 12; docs/cluster.md).

The fixtures are in cluster.py and conftest.py: `tern_cluster` is 3
nats-server (one JetStream cluster) + 3 ternd nodes, each ternd on its own
nats-server, shared by the tests of this module (topics and client ids are
unique per test); `cluster_factory` builds clusters of other shapes for one
test; `nats_server` is one standalone nats-server.
"""

import os
import time

import subprocess

import pytest

import cluster
import mqtt_raw as m
from conftest import Broker
from helpers import TIMEOUT, PahoClient, unique

pytestmark = pytest.mark.ternd_only


def tern_cli():
    path = os.environ.get("TERN_CLI")
    if not path:
        path = os.path.join(os.path.dirname(__file__), "..", "..", "build", "src", "tools",
                            "tern")
    if not os.path.exists(path):
        pytest.skip("TERN_CLI is not set (path to the tern binary)")
    return path


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


# -- helpers for the routing tests

PROBE_TIMEOUT = 5.0


def raw(node, version=m.V5, cid=None, **kw):
    c = node.raw(version)
    c.connect(cid or unique("c"), **kw)
    return c


def routed(sub_node, *pub_nodes, timeout=PROBE_TIMEOUT):
    """Returns once a message published on each of `pub_nodes` reaches a
    fresh subscriber on `sub_node` (probe messages, QoS 0, every 50 ms, at
    most `timeout` seconds each).

    Why: SUBACK on a node means that node's own nats-server knows the
    interest (the node flushes its SUB before it answers), but the other
    nats-servers learn it from that server over their routes a moment later,
    and NATS forwards a message over a route only toward known interest: a
    publish on another node right after the SUBACK may find no interest
    there yet. A route carries one server's interest changes in order, so
    once a probe subscription made on `sub_node` after the test's own is
    known on a publisher's server, so are the test's. A bounded probe rather
    than a sleep: it waits only as long as the machine needs, and fails
    loudly instead of leaving a flaky test. The probe topic is unique and
    under no test's prefix (a '#' subscriber of a test sees it: tests that
    subscribe to '#' filter by their own prefix)."""
    topic = unique("probe")
    s = raw(sub_node, m.V311)
    s.subscribe([(topic, 0)])
    try:
        for pn in pub_nodes:
            if pn is sub_node:
                continue
            p = raw(pn, m.V311)
            deadline = time.monotonic() + timeout
            arrived = False
            while not arrived and time.monotonic() < deadline:
                p.publish(topic, b"probe", qos=0)
                try:
                    arrived = s.recv(0.05).type == m.PUBLISH
                except TimeoutError:
                    pass
            p.disconnect()
            assert arrived, "no probe from node %s reached node %s within %.0f s" % (
                pn.node_name, sub_node.node_name, timeout)
    finally:
        s.disconnect()


def publishes(c, n, timeout=TIMEOUT, extra=0.3, under=None):
    """The PUBLISH packets `c` receives: `n` of them (at most `timeout` s),
    then whatever else arrives within `extra` s (a duplicate would); each is
    acknowledged. With `under`, only those whose topic contains it count and
    are returned (a '#' subscriber also gets probes and other tests'
    messages)."""
    out = []

    def take(p):
        if p.type == m.PUBLISH:
            c.ack(p)
            if under is None or under in p.topic:
                out.append(p)

    deadline = time.monotonic() + timeout
    while len(out) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            take(c.recv(left))
        except (TimeoutError, m.Closed):
            break
    for p in c.recv_all(extra):
        take(p)
    return out


def delivered_to_node(nats_server, cluster_name):
    """What `nats_server` has delivered to the subscriptions of cluster
    `cluster_name` (subjects starting with "<cluster>."), from its
    /connz?subs=detail: {(connection, sid): messages}, what crossed to the
    ternd node(s) connected there. Compare two with newly_delivered()."""
    j = cluster._http_json(nats_server.mport, "/connz?subs=detail&limit=1024")
    out = {}
    for conn in j.get("connections") or []:
        for sub in conn.get("subscriptions_list_detail") or []:
            if sub.get("subject", "").startswith(cluster_name + "."):
                out[(conn.get("cid"), sub.get("sid"))] = sub.get("msgs", 0)
    return out


def newly_delivered(before, after):
    """Messages delivered between two delivered_to_node() snapshots, over
    the subscriptions of the second (one that went in between, such as a
    probe's, is left out rather than counted negative)."""
    return sum(n - before.get(k, 0) for k, n in after.items())


def gather(clients, n, timeout=TIMEOUT, extra=0.1):
    """The payloads each of `clients` receives until they have `n` in all
    (at most `timeout` s), then within `extra` s more each (a duplicate
    would arrive); a list per client."""
    got = [[] for _ in clients]
    deadline = time.monotonic() + timeout
    while sum(map(len, got)) < n and time.monotonic() < deadline:
        for i, c in enumerate(clients):
            got[i] += [q.payload for q in publishes(c, 0, extra=0.02)]
    for i, c in enumerate(clients):
        got[i] += [q.payload for q in publishes(c, 0, extra=extra)]
    return got


@pytest.fixture
def tc(request, tern_cluster):
    """The module's cluster, its logs attached to a failing test's report."""
    request.node._tern_broker_log = tern_cluster.logs()
    yield tern_cluster
    dead = [n.node_name for n in tern_cluster.nodes if not n.alive()]
    assert not dead, "ternd node(s) died: %r" % dead


# -- routing across nodes


@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_cross_node_pubsub_paho(tc, version, qos):
    """A PUBLISH on one node reaches the matching subscription on another,
    with the QoS asked for, in the order published [MQTT-4.6.0-6] (ordered
    topic), each message once [MQTT-4.3.3-2 for QoS 2]; paho 3.1.1 and 5.0,
    every pair of nodes in turn (A->B, B->C, C->A)."""
    for i in range(3):
        a, b = tc[i], tc[(i + 1) % 3]
        t = unique("x/q%d" % qos)
        sub = PahoClient(b, version=version)
        sub.subscribe(t, qos)
        routed(b, a)
        pub = PahoClient(a, version=version)
        for k in range(5):
            pub.publish(t, b"m%d" % k, qos=qos)
        got = sub.get_n(5)
        got += sub.drain(0.3)
        assert [(g.topic, g.payload, g.qos) for g in got] == \
            [(t, b"m%d" % k, qos) for k in range(5)]
        pub.disconnect()
        sub.disconnect()


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_cross_node_pubsub_tern_tools(tc, qos):
    """`tern sub` on one node gets what `tern pub` publishes on another:
    topic and payload, the QoS (%q) asked for, in order [MQTT-4.6.0-6]."""
    a, b = tc[0], tc[2]
    t = unique("tools")
    argv = [tern_cli(), "sub", "-d", "-h", b.host, "-p", str(b.port), "-t", t,
            "-q", str(qos), "-C", "3", "-F", "%t %q %p", "-W", "20"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT
        head = []
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            head.append(line)
            if line.startswith(b"Subscribed:"):
                break
        assert head and head[-1].startswith(b"Subscribed:"), head
        routed(b, a)
        for k in range(3):
            cp = subprocess.run([tern_cli(), "pub", "-h", a.host, "-p", str(a.port), "-t", t,
                                 "-q", str(qos), "-m", "m%d" % k],
                                capture_output=True, timeout=TIMEOUT)
            assert cp.returncode == 0, cp
        out, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, (out, err)
        assert out.splitlines() == [("%s %d m%d" % (t, qos, k)).encode() for k in range(3)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_wildcards_across_nodes(tc):
    """'+' matches exactly one level, possibly empty [MQTT-4.7.1-3]; '#'
    matches the parent and any number of levels [MQTT-4.7.1-2] ("p/a/#"
    matches "p/a"); topics are not normalised [MQTT-4.7.3-4]. The
    subscribers are on B and C, the publisher on A."""
    a, b, c = tc[0], tc[1], tc[2]
    p = unique("w")
    subs = {p + "/+": b, p + "/+/x": b, p + "/a/#": c, p + "/#": c, p + "/a/+/#": b}
    clients = {}
    for f, node in subs.items():
        clients[f] = raw(node, m.V311)
        assert clients[f].subscribe([(f, 1)]).codes == [1]
    routed(b, a)
    routed(c, a)
    topics = [p + "/a", p + "/a/x", p + "//x", p + "/a/b/c", p + "/", p + "/b"]
    pub = raw(a, m.V311)
    for i, t in enumerate(topics):
        pub.publish(t, b"w", qos=1, pid=i + 1)
    want = {
        p + "/+": [p + "/a", p + "/", p + "/b"],
        p + "/+/x": [p + "/a/x", p + "//x"],
        p + "/a/#": [p + "/a", p + "/a/x", p + "/a/b/c"],
        p + "/#": topics,
        p + "/a/+/#": [p + "/a/x", p + "/a/b/c"],
    }
    for f, c_ in clients.items():
        got = sorted(x.topic for x in publishes(c_, len(want[f])))
        assert got == sorted(want[f]), (f, got)
        c_.disconnect()
    pub.disconnect()


# Topics with the bytes NATS gives a meaning ('.' token separator, '*' and
# '>' wildcards, a space ends a protocol field), the escape
# byte of the subject mapping ('%'), empty levels, leading and trailing '/',
# and UTF-8.
# (Control characters are not in the list: ternd refuses them in topics, as
# the specification lets it, 1.5.4.)
ODD_LEVELS = ["a.b", "*", ">", "a b", " ", "", "%", "%41", "%2E", "a.*.>", "ünï.cødé"]


def test_topics_with_nats_special_characters(tc):
    """Topic names may hold any UTF-8 but the wildcards and NUL, spaces
    included, and a leading, trailing or doubled '/' makes a distinct topic
    (4.7.3, [MQTT-4.7.3-1]); across nodes each arrives with its exact bytes,
    at the exact-topic subscriber only, and at '+' filters one level per
    level [MQTT-4.7.1-3]: '.' is not a level separator."""
    a, b = tc[0], tc[1]
    p = unique("odd")
    topics = [p + "/" + lv + "/end" for lv in ODD_LEVELS]
    topics += ["/" + p, "/" + p + "/", p + "//", p + "/a.b.c", p + "/.", p + "/..",
               p + "/>", p + "/*"]
    exact = raw(b)
    codes = exact.subscribe([(t, 1) for t in topics]).codes
    assert codes == [1] * len(topics)
    plus = raw(b)
    assert plus.subscribe([(p + "/+/end", 1)]).codes == [1]
    lead = raw(b)
    assert lead.subscribe([("+/" + p + "/#", 1)]).codes == [1]
    routed(b, a)
    pub = raw(a)
    for i, t in enumerate(topics):
        pub.publish(t, t.encode(), qos=1, pid=i + 1)
    got = publishes(exact, len(topics))
    assert sorted((x.topic, x.payload) for x in got) == sorted((t, t.encode()) for t in topics)
    want_plus = [p + "/" + lv + "/end" for lv in ODD_LEVELS]
    assert sorted(x.topic for x in publishes(plus, len(want_plus))) == sorted(want_plus)
    want_lead = ["/" + p, "/" + p + "/"]
    assert sorted(x.topic for x in publishes(lead, len(want_lead))) == sorted(want_lead)
    for x in (exact, plus, lead, pub):
        x.disconnect()


def test_dollar_topics_not_matched_by_wildcards_across_nodes(tc):
    """[MQTT-4.7.2-1]: a Topic Filter starting with '#' or '+' does not match
    a Topic Name starting with '$'; a filter naming the '$' level does, on
    another node too."""
    a, b = tc[0], tc[1]
    p = unique("d")
    dollar = "$" + p + "/x"
    hash_ = raw(b)
    hash_.subscribe([("#", 1)])
    plus = raw(b)
    plus.subscribe([("+/x", 1)])
    named = raw(b)
    named.subscribe([("$" + p + "/#", 1)])
    routed(b, a)
    pub = raw(a)
    pub.publish(dollar, b"dollar", qos=1)
    pub.publish(p + "/x", b"plain", qos=1, pid=2)
    got = publishes(named, 1)
    assert [(x.topic, x.payload) for x in got] == [(dollar, b"dollar")]
    for c in (hash_, plus):
        # The plain message comes after the '$' one on the same path: once
        # it is here, the '$' one would have been too.
        seen = publishes(c, 1, under=p)
        assert [(x.topic, x.payload) for x in seen] == [(p + "/x", b"plain")], seen
    for x in (hash_, plus, named, pub):
        x.disconnect()


def test_v5_properties_cross_nodes_unchanged(tc):
    """Payload Format Indicator [MQTT-3.3.2-4], Response Topic
    [MQTT-3.3.2-15], Correlation Data [MQTT-3.3.2-16], User Properties
    unaltered and in order [MQTT-3.3.2-17] [MQTT-3.3.2-18], Content Type
    [MQTT-3.3.2-20] reach a subscriber on another node as published; the
    Message Expiry Interval is the received value minus the time waited
    [MQTT-3.3.2-6] (at most the value published); a message published without
    them gets none; an empty Content Type and empty Correlation Data stay
    present."""
    a, b = tc[0], tc[1]
    t = unique("props")
    sub = raw(b)
    sub.subscribe([(t, 2)])
    routed(b, a)
    pub = raw(a)
    pp = [(m.PAYLOAD_FORMAT, 1), (m.MESSAGE_EXPIRY, 30),
          (m.CONTENT_TYPE, "application/json; charset=utf-8"),
          (m.RESPONSE_TOPIC, "reply/" + t + "/a.b c"), (m.CORRELATION_DATA, bytes(range(256))),
          (m.USER_PROPERTY, ("b", "2")), (m.USER_PROPERTY, ("a", "1")),
          (m.USER_PROPERTY, ("b", "1")), (m.USER_PROPERTY, ("ünï", "cødé")),
          (m.USER_PROPERTY, ("", ""))]
    pub.publish(t, b'{"x": 1}', qos=2, properties=pp)
    pub.publish(t, b"bare", qos=1, pid=2)
    pub.publish(t, b"", qos=0, properties=[(m.CONTENT_TYPE, ""), (m.CORRELATION_DATA, b""),
                                          (m.PAYLOAD_FORMAT, 0)])
    got = publishes(sub, 3)
    assert [x.payload for x in got] == [b'{"x": 1}', b"bare", b""]
    full, bare, empty = got
    assert full.qos == 2
    assert full.props[m.PAYLOAD_FORMAT] == 1
    assert 1 <= full.props[m.MESSAGE_EXPIRY] <= 30
    assert full.props[m.CONTENT_TYPE] == "application/json; charset=utf-8"
    assert full.props[m.RESPONSE_TOPIC] == "reply/" + t + "/a.b c"
    assert full.props[m.CORRELATION_DATA] == bytes(range(256))
    assert full.props[m.USER_PROPERTY] == [("b", "2"), ("a", "1"), ("b", "1"),
                                           ("ünï", "cødé"), ("", "")]
    assert bare.props == {}
    assert empty.props.get(m.CONTENT_TYPE) == ""
    assert empty.props.get(m.CORRELATION_DATA) == b""
    assert empty.props.get(m.PAYLOAD_FORMAT, 0) == 0
    sub.disconnect(0)
    pub.disconnect(0)


def test_message_expiry_counts_down_for_an_offline_session_on_another_node(tc):
    """[MQTT-3.3.2-6]: a message queued (for an offline persistent session on
    node B) is forwarded with its Message Expiry Interval minus the time it
    waited; [MQTT-3.3.2-5]: one whose interval passed is not delivered."""
    a, b = tc[0], tc[1]
    cid, t = unique("exp"), unique("exp/t")
    sub = raw(b, cid=cid, properties=[(m.SESSION_EXPIRY, 60)])
    sub.subscribe([(t, 1)])
    routed(b, a)
    sub.disconnect(0)
    pub = raw(a)
    pub.publish(t, b"short", qos=1, properties=[(m.MESSAGE_EXPIRY, 1)])
    pub.publish(t, b"long", qos=1, pid=2, properties=[(m.MESSAGE_EXPIRY, 60)])
    pub.disconnect(0)
    time.sleep(2.1)
    sub = raw(b, cid=cid, clean=False, properties=[(m.SESSION_EXPIRY, 60)])
    got = publishes(sub, 1)
    assert [x.payload for x in got] == [b"long"]
    assert 1 <= got[0].props[m.MESSAGE_EXPIRY] <= 58, got[0].props
    sub.disconnect(0, properties=[(m.SESSION_EXPIRY, 0)])


@pytest.mark.parametrize("pub_qos,sub_qos", [(2, 0), (2, 1), (1, 0), (1, 2), (0, 2)])
def test_qos_downgrade_across_nodes(tc, pub_qos, sub_qos):
    """[MQTT-3.8.4-6] (v5 [MQTT-3.8.4-8]): a forwarded message has the minimum
    of the published QoS and the granted QoS, whichever node published it."""
    a, c = tc[0], tc[2]
    t = unique("dg")
    sub = raw(c, m.V311)
    assert sub.subscribe([(t, sub_qos)]).codes == [sub_qos]
    routed(c, a)
    pub = raw(a, m.V311)
    pub.publish(t, b"x", qos=pub_qos)
    got = publishes(sub, 1)
    assert [(x.payload, x.qos) for x in got] == [(b"x", min(pub_qos, sub_qos))]
    sub.disconnect()
    pub.disconnect()


def test_subscription_identifiers_across_nodes(tc):
    """[MQTT-3.3.4-3]: the Subscription Identifier of the matching
    subscription is sent with a message published on another node; a
    subscription without one gets no identifier; two clients subscribed to
    one filter with different identifiers get their own (up to the largest,
    268,435,455, 3.8.2.1.2)."""
    a, b = tc[0], tc[1]
    t = unique("sid")
    s1 = raw(b)
    s1.subscribe([(t, 1)], properties=[(m.SUBSCRIPTION_ID, 7)])
    s2 = raw(b)
    s2.subscribe([(t, 1)], properties=[(m.SUBSCRIPTION_ID, 268435455)])
    s3 = raw(b)
    s3.subscribe([(t, 1)])
    routed(b, a)
    pub = raw(a)
    pub.publish(t, b"x", qos=1)
    for c, want in ((s1, [7]), (s2, [268435455]), (s3, None)):
        got = publishes(c, 1)
        assert len(got) == 1
        assert got[0].props.get(m.SUBSCRIPTION_ID) == want, got[0].props
        c.disconnect()
    pub.disconnect()


def test_overlapping_subscriptions_one_delivery_max_qos(tc):
    """Overlapping subscriptions of one client on node B, a message published
    on node A: ONE PUBLISH with the maximum QoS of the matching
    subscriptions [MQTT-3.3.4-2], carrying the Subscription Identifiers of
    all of them that have one [MQTT-3.3.4-3] (order not significant
    [MQTT-3.3.4-4])."""
    a, b = tc[0], tc[1]
    p = unique("ov")
    t = p + "/a/b"
    sub = raw(b)
    sub.subscribe([(p + "/+/b", 0)], pid=1, properties=[(m.SUBSCRIPTION_ID, 1)])
    sub.subscribe([(p + "/#", 2)], pid=2, properties=[(m.SUBSCRIPTION_ID, 2)])
    sub.subscribe([(t, 1)], pid=3)
    sub.subscribe([(p + "/a/+", 1)], pid=4, properties=[(m.SUBSCRIPTION_ID, 4)])
    routed(b, a)
    pub = raw(a)
    pub.publish(t, b"x", qos=2)
    got = publishes(sub, 1, extra=0.6)
    assert len(got) == 1, got
    assert got[0].qos == 2
    assert sorted(got[0].props.get(m.SUBSCRIPTION_ID, [])) == [1, 2, 4]
    sub.disconnect()
    pub.disconnect()


def test_no_local_across_nodes(tc):
    """[MQTT-3.8.3-3] No Local: a v5 client subscribed with No Local on node
    A does not get what it publishes on A; a subscriber on node B, and one
    without No Local on A, do."""
    a, b = tc[0], tc[1]
    t = unique("nl")
    me = raw(a)
    me.subscribe([(t, m.sub_opts(qos=1, no_local=True))])
    local = raw(a)
    local.subscribe([(t, 1)])
    remote = raw(b)
    remote.subscribe([(t, 1)])
    routed(b, a)
    me.publish(t, b"mine", qos=1)
    for c in (remote, local):
        assert [x.payload for x in publishes(c, 1)] == [b"mine"]
    # What another client publishes on B reaches `me` on A (the No Local
    # option is about the publishing connection, not about the node).
    routed(a, b)
    other = raw(b)
    other.publish(t, b"theirs", qos=1)
    assert [x.payload for x in publishes(me, 1)] == [b"theirs"]
    for c in (me, local, remote, other):
        c.disconnect()


def test_unsubscribe_stops_remote_messages(tc):
    """[MQTT-3.10.4-2]: after UNSUBACK the Server adds no new message for
    the filter, published on any node; the client's other subscription
    still gets them (it is the one filter that goes)."""
    a, b = tc[0], tc[1]
    p = unique("un")
    sub = raw(b)
    sub.subscribe([(p + "/x", 1), (p + "/y", 1)])
    routed(b, a)
    pub = raw(a)
    pub.publish(p + "/x", b"before", qos=1)
    assert [x.payload for x in publishes(sub, 1)] == [b"before"]
    ack = sub.unsubscribe([p + "/x"])
    assert ack.type == m.UNSUBACK
    for i in range(3):
        pub.publish(p + "/x", b"after", qos=1, pid=i + 2)
    pub.publish(p + "/y", b"other", qos=1, pid=9)
    # "other" follows the "after"s on the same path: once it is here, they
    # would have been too.
    got = publishes(sub, 1)
    assert [(x.topic, x.payload) for x in got] == [(p + "/y", b"other")]
    sub.disconnect()
    pub.disconnect()


def test_message_without_subscriber_goes_nowhere(cluster_factory):
    """A message no node subscribes to is delivered nowhere, and crosses to
    no node (issue 12: messages cross nodes only toward nodes with matching
    subscribers): the nats-servers of B and C deliver nothing more to their
    ternd than the one message that B's subscriber does match, published
    after the others on the same path. A cluster of its own, so that no
    other test's subscription is around."""
    tc = cluster_factory(nodes=3, nats_n=3)
    a, b, c = tc[0], tc[1], tc[2]
    p = unique("none")
    near = {b: raw(b), c: raw(c)}
    near[b].subscribe([(p + "/x/+", 1), (p + "/y", 1)])
    near[c].subscribe([(p + "/x/y/z", 1), (p + "3/#", 1)])
    routed(b, a)
    routed(c, a)
    pub = raw(a)
    local = raw(a)
    local.subscribe([(p + "/+/+", 1)])  # a's own subscriber: it stays on a
    before = {n: delivered_to_node(tc.nats[i], tc.cluster_name) for i, n in ((1, b), (2, c))}
    for i, t in enumerate([p + "/x", p + "/x/y/w", p, p + "/z/y", p + "2"]):
        pub.publish(t, b"nobody", qos=1, pid=i + 1)
    pub.publish(p + "/y", b"b's", qos=1, pid=9)
    assert [x.payload for x in publishes(near[b], 1)] == [b"b's"]
    assert publishes(near[c], 0, extra=0.3) == []
    assert [x.topic for x in publishes(local, 1)] == [p + "/z/y"]
    after = {n: delivered_to_node(tc.nats[i], tc.cluster_name) for i, n in ((1, b), (2, c))}
    assert newly_delivered(before[b], after[b]) == 1
    assert newly_delivered(before[c], after[c]) == 0
    for x in (near[b], near[c], pub, local):
        x.disconnect()


# -- shared subscriptions


def test_shared_subscription_once_per_group_across_nodes(tc):
    """v5 4.8.2 Shared Subscriptions, cluster-wide: each message published
    (on A) goes to exactly one member of each group ($share/G1 and
    $share/G2, on the same filter), whichever node the members are on, and
    the messages of a group spread over members of at least two nodes; a
    plain subscriber gets every message; the granted QoS is respected
    [MQTT-4.8.2-3]."""
    a, b, c = tc[0], tc[1], tc[2]
    t = unique("sh")
    n = 40
    g1 = [raw(b), raw(b, m.V311), raw(c), raw(c)]
    g2 = [raw(b), raw(c, m.V311)]
    for x in g1:
        assert x.subscribe([("$share/g1/" + t, 1)]).codes == [1]
    for x in g2:
        assert x.subscribe([("$share/g2/" + t, 2)]).codes == [2]
    plain = raw(c)
    plain.subscribe([(t, 1)])
    routed(b, a)
    routed(c, a)
    pub = raw(a)
    for i in range(n):
        pub.publish(t, b"%d" % i, qos=2, pid=i + 1)
    want = sorted(b"%d" % i for i in range(n))
    for group, node_of in ((g1, [b, b, c, c]), (g2, [b, c])):
        per_member = gather(group, n)
        assert sorted(sum(per_member, [])) == want, per_member
        nodes = {node_of[i].node_name for i, got in enumerate(per_member) if got}
        assert len(nodes) >= 2, "all of the group's messages went to %r" % nodes
    got = publishes(plain, n)
    assert sorted(x.payload for x in got) == want
    for x in g1 + g2 + [plain, pub]:
        x.disconnect()


def test_shared_subscription_members_on_publishing_node_too(tc):
    """A group with a member on every node, messages published on each node
    in turn: each message exactly once in the group, none lost."""
    t = unique("sh3")
    members = [raw(node) for node in tc.nodes]
    for x in members:
        assert x.subscribe([("$share/g/" + t, 1)]).codes == [1]
    for node in tc.nodes:
        for other in tc.nodes:
            routed(node, other)
    pubs = [raw(node) for node in tc.nodes]
    n = 30
    for i in range(n):
        pubs[i % 3].publish(t, b"%d" % i, qos=1, pid=i + 1)
    got = gather(members, n)
    assert sorted(sum(got, [])) == sorted(b"%d" % i for i in range(n)), got
    for x in members + pubs:
        x.disconnect()


# -- retained messages, cluster-wide


def retained_on(node, topic, timeout=PROBE_TIMEOUT, want=None):
    """The retained messages a new subscriber to `topic` on `node` gets,
    subscribing again (bounded) until `want` (a payload list, in any order)
    is what it gets, or until a message arrives when `want` is None.

    Why a retry: a node learns a retained message published on another node
    from the cluster's retained stream, which every node follows; that
    update reaches it a moment after the publisher's PUBACK (as with any
    replicated state read on another node), so one immediate SUBSCRIBE may
    come too early. The loop waits no longer than that takes."""
    deadline = time.monotonic() + timeout
    while True:
        c = raw(node)
        c.subscribe([(topic, 1)])
        got = c.early + [p for p in c.recv_all(0.2) if p.type == m.PUBLISH]
        got = [p for p in got if p.type == m.PUBLISH]
        for p in got:
            c.ack(p)
        c.disconnect()
        payloads = [p.payload for p in got]
        if ((want is None and got) or (want is not None and sorted(payloads) == sorted(want))
                or time.monotonic() >= deadline):
            return got
        time.sleep(0.05)


def test_retained_published_on_one_node_is_sent_on_subscribe_on_another(tc):
    """[MQTT-3.3.1-5] a RETAIN 1 PUBLISH is stored and [MQTT-3.3.1-6] sent to
    a later matching subscriber, here one on another node (retain flag set
    [MQTT-3.3.1-8]); a newer one replaces it; a zero-byte retained PUBLISH
    on a third node removes it everywhere [MQTT-3.3.1-10]."""
    a, b, c = tc[0], tc[1], tc[2]
    p = unique("ret")
    t = p + "/x"
    pub = raw(a)
    pub.publish(t, b"one", qos=1, retain=True)
    pub.publish(t, b"two", qos=1, retain=True, pid=2,
                properties=[(m.CONTENT_TYPE, "text/plain"), (m.USER_PROPERTY, ("k", "v"))])
    got = retained_on(b, t, want=[b"two"])
    assert [(x.payload, x.retain) for x in got] == [(b"two", True)]
    assert got[0].props[m.CONTENT_TYPE] == "text/plain"
    assert got[0].props[m.USER_PROPERTY] == [("k", "v")]
    wild = retained_on(c, p + "/+", want=[b"two"])
    assert [(x.topic, x.payload) for x in wild] == [(t, b"two")]
    clear = raw(c)
    clear.publish(t, b"", qos=1, retain=True)
    clear.disconnect()
    assert retained_on(a, t, want=[], timeout=PROBE_TIMEOUT) == []
    assert retained_on(b, t, want=[], timeout=PROBE_TIMEOUT) == []
    pub.disconnect()


def test_retained_survive_restart_of_every_node(cluster_factory):
    """Retained messages are cluster-wide and survive the restart of every
    ternd node (issue 12): after all three stop (the publisher's node by
    kill -9, and it loses its local store) and start again, a subscriber on
    any node gets them."""
    c = cluster_factory(nodes=3, nats_n=3)
    t = unique("rs")
    pub = raw(c[0])
    for i in range(3):
        pub.publish("%s/%d" % (t, i), b"v%d" % i, qos=1, retain=True, pid=i + 1)
    pub.disconnect()
    # Every node has them before the restarts (the stream is followed).
    for node in c.nodes:
        assert len(retained_on(node, t + "/#", want=[b"v0", b"v1", b"v2"])) == 3
    c[0].kill()
    c[1].stop()
    c[2].stop()
    # The publisher's node comes back without its own store: what it gets
    # is the cluster's copy, not a local one.
    for f in os.listdir(c[0].dir):
        if f.startswith("ternd.db"):
            os.unlink(os.path.join(c[0].dir, f))
    for node in c.nodes:
        node.restart()
    for node in c.nodes:
        got = retained_on(node, t + "/#", want=[b"v0", b"v1", b"v2"])
        assert sorted((x.topic, x.payload) for x in got) == \
            [("%s/%d" % (t, i), b"v%d" % i) for i in range(3)]


# -- client ids, cluster-wide


def test_client_id_takeover_across_nodes_v5(tc):
    """A client id is unique in the cluster (issue 12): a v5 client that
    connects on node B with the id of a connection on node A takes over:
    A's connection gets DISCONNECT 0x8E (Session taken over) and is closed
    [MQTT-3.1.4-3]; the new connection stays."""
    a, b = tc[0], tc[1]
    cid = unique("take")
    old = raw(a, cid=cid)
    new = raw(b, cid=cid)
    pkts = old.wait_closed(PROBE_TIMEOUT)
    assert any(p.type == m.DISCONNECT and p.rc == 0x8E for p in pkts), pkts
    assert new.is_open()
    new.disconnect()


def test_client_id_takeover_across_nodes_v311(tc):
    """[MQTT-3.1.4-2] (3.1.1): the Server disconnects the existing client
    with the same client id, here one on another node; the new one works."""
    b, c = tc[1], tc[2]
    cid = unique("take")
    old = raw(b, m.V311, cid=cid)
    new = raw(c, m.V311, cid=cid)
    old.wait_closed(PROBE_TIMEOUT)
    assert not old.is_open()
    t = unique("take/t")
    new.subscribe([(t, 1)])
    p = raw(c, m.V311)
    p.publish(t, b"x", qos=1)
    assert [x.payload for x in publishes(new, 1)] == [b"x"]
    p.disconnect()
    new.disconnect()
