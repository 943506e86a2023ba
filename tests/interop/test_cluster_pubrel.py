"""QoS 2 PUBREL state survives the subscriber's node (issue 12;
docs/cluster.md, "Persistent sessions"): in a cluster, the client's PUBREC
of a QoS 2 message from a durable queue is recorded in JetStream (the
stream <cluster>_pubrel) before the message leaves its queue, so whoever
holds the session next sends PUBREL for that packet id, not the message
again.

The spec: after PUBREC the sender MUST send PUBREL [MQTT-4.3.3-4] and
treat the packet id as unacknowledged until PUBCOMP [MQTT-4.3.3-6]; on
reconnect (Clean Start 0) it MUST resend the PUBREL [MQTT-4.4.0-1], which
has no DUP flag (section 3.6.1); the receiver, which may have delivered the
message already (method B), answers PUBCOMP [MQTT-4.3.3-11]. Sending the
PUBLISH again instead, as the node did before, is what [MQTT-4.3.3-5] (no
new PUBLISH once PUBREC came) forbids.

The subscriber is a raw client (mqtt_raw), so the test decides when PUBREC
and PUBCOMP go; the cluster's state is read from the nats-server's
monitoring port.
"""

import json
import time
import urllib.request

import pytest

import mqtt_raw as m
from conftest import HOST
from helpers import PahoClient, unique, wait_for

pytestmark = pytest.mark.ternd_only

# JetStream's ack wait of the durable queues (CLUSTER_ACK_WAIT_MS), and
# the margin past it within which a message it would deliver again comes.
ACK_WAIT = 3.0
PAST_ACK_WAIT = ACK_WAIT + 1.5


def stream_msgs(cluster, suffix):
    """Messages in the stream <cluster>_<suffix>, from the first
    nats-server's /jsz (-1 when it cannot say)."""
    url = "http://%s:%d/jsz?accounts=true&streams=true" % (HOST, cluster.nats[0].mport)
    try:
        with urllib.request.urlopen(url, timeout=1.0) as r:
            jsz = json.loads(r.read().decode())
    except (OSError, ValueError):
        return -1
    name = "%s_%s" % (cluster.cluster_name, suffix)
    for acc in jsz.get("account_details") or []:
        for st in acc.get("stream_detail") or []:
            if st.get("name") == name:
                return st.get("state", {}).get("messages", -1)
    return -1


def connect(node, cid, version):
    """A raw client of the persistent session cid on node (Clean Start 0,
    and a Session Expiry Interval in v5). Returns (client, CONNACK)."""
    c = node.raw(version)
    if version == m.V5:
        ack = c.connect(cid, clean=False, properties={m.SESSION_EXPIRY: 3600})
    else:
        ack = c.connect(cid, clean=False)
    return c, ack


def until_pubrel(c, pid, timeout=10.0):
    """The packets c receives until a PUBREL of pid (included), at most
    timeout seconds; the PUBLISHes that came early with a SUBACK first."""
    got = list(getattr(c, "early", []))
    if any(p.type == m.PUBREL and p.pid == pid for p in got):
        return got
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            p = c.recv(max(0.05, deadline - time.monotonic()))
        except (TimeoutError, m.Closed):
            break
        got.append(p)
        if p.type == m.PUBREL and p.pid == pid:
            break
    return got


def pubrec_then_lose(cl, node, cid, topic, version, payload):
    """A QoS 2 message for the persistent session cid on node: its PUBLISH
    answered with PUBREC, the PUBREL left unanswered, and the entry stored
    in JetStream. Returns (client, packet id)."""
    s, _ = connect(node, cid, version)
    s.subscribe([(topic, 2)])
    pub = PahoClient(cl[1] if node is cl[0] else cl[0])
    pub.publish(topic, payload, qos=2)
    pub.disconnect()
    p = s.recv_type(m.PUBLISH, timeout=10)
    assert (p.qos, p.payload) == (2, payload), p
    s.send(m.pubrec(p.pid, version))
    rel = s.recv_type(m.PUBREL)
    assert rel.pid == p.pid
    # The PUBREC is in JetStream, and only then did the message leave its
    # queue (the queue had nothing else).
    assert wait_for(lambda: stream_msgs(cl, "pubrel") == 1, 10), stream_msgs(cl, "pubrel")
    assert wait_for(lambda: stream_msgs(cl, "msgs") == 0, 10), stream_msgs(cl, "msgs")
    return s, p.pid


@pytest.mark.parametrize("how", ["kill", "takeover"])
@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_pubrel_follows_the_session_to_another_node(cluster_factory, version, how):
    """The subscriber's node A is killed (kill -9) after the client's
    PUBREC, or stays up and lets the session go when the client connects
    to B [MQTT-3.1.4-3]; the client reconnects (Clean Start 0) to node B
    and subscribes again: it gets PUBREL for that packet id [MQTT-4.4.0-1],
    not the PUBLISH again [MQTT-4.3.3-5]; after its PUBCOMP nothing more
    comes, and nothing is redelivered past the queue's ack wait."""
    c = cluster_factory(nodes=2, nats_n=1)
    a, b = c.nodes
    cid, topic = unique("rel"), unique("pubrel")
    s, pid = pubrec_then_lose(c, a, cid, topic, version, b"once")
    if how == "kill":
        a.kill()
    s.abort()
    s2, _ = connect(b, cid, version)
    # Until the session record follows the client ("sessions"), the new
    # node binds the session's queues when it subscribes again; a
    # subscription repeated is harmless once it does [MQTT-3.8.4-3].
    s2.subscribe([(topic, 2)])
    got = until_pubrel(s2, pid)
    assert [p for p in got if p.type == m.PUBLISH] == [], got
    rel = [p for p in got if p.type == m.PUBREL]
    assert [p.pid for p in rel] == [pid], got
    assert rel[0].flags == 0x02, "PUBREL flags must be 0010 [MQTT-3.6.1-1]"
    s2.send(m.pubcomp(pid, version))
    # Nothing more: no PUBLISH of it again, past the ack wait, and no
    # second PUBREL.
    assert s2.recv_all(PAST_ACK_WAIT) == []
    assert wait_for(lambda: stream_msgs(c, "pubrel") == 0, 10), stream_msgs(c, "pubrel")
    # The session goes on: a new QoS 2 message arrives, once.
    pub = PahoClient(b)
    pub.publish(topic, b"next", qos=2)
    pub.disconnect()
    p = s2.recv_publish(timeout=10)
    assert p.payload == b"next" and not p.dup
    assert s2.no_packet(0.5)
    s2.close()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_pubrel_survives_a_restart_of_the_node(cluster_factory, version):
    """The subscriber's node A is killed after the client's PUBREC and
    started again; its store brings the session back, and the client's
    reconnection there (Session Present 1, no new SUBSCRIBE) gets PUBREL
    for that packet id from the cluster's record [MQTT-4.4.0-1], not the
    PUBLISH; after PUBCOMP nothing more comes."""
    c = cluster_factory(nodes=2, nats_n=1)
    a, _b = c.nodes
    cid, topic = unique("rst"), unique("pubrel")
    s, pid = pubrec_then_lose(c, a, cid, topic, version, b"kept")
    a.kill()
    s.abort()
    a.restart()
    s2, ack = connect(a, cid, version)
    assert ack.session_present, "the session did not come back from the store"
    got = until_pubrel(s2, pid)
    assert [p for p in got if p.type == m.PUBLISH] == [], got
    assert [p.pid for p in got if p.type == m.PUBREL] == [pid], got
    s2.send(m.pubcomp(pid, version))
    assert s2.recv_all(PAST_ACK_WAIT) == []
    assert wait_for(lambda: stream_msgs(c, "pubrel") == 0, 10), stream_msgs(c, "pubrel")
    s2.close()


def test_clean_start_forgets_the_pubrel_state(cluster_factory):
    """A clean start discards the session's state [MQTT-3.1.2-4]: the
    PUBREL entry of the earlier session goes with it, and a later session
    of that client id gets no PUBREL for it."""
    c = cluster_factory(nodes=2, nats_n=1)
    a, b = c.nodes
    cid, topic = unique("cln"), unique("pubrel")
    s, pid = pubrec_then_lose(c, a, cid, topic, m.V311, b"gone")
    a.kill()
    s.abort()
    fresh = b.raw(m.V311)
    fresh.connect(cid, clean=True)
    fresh.disconnect()
    assert wait_for(lambda: stream_msgs(c, "pubrel") == 0, 10), stream_msgs(c, "pubrel")
    s2, ack = connect(b, cid, m.V311)
    assert not ack.session_present
    s2.subscribe([(topic, 2)])
    assert s2.early == [] and s2.recv_all(1.0) == []
    s2.close()
