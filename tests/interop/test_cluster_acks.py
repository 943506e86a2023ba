"""A durable queue's ack lost on its way to JetStream (issue 12; docs/
cluster.md, "Persistent sessions"): a QoS 2 message whose PUBCOMP came is
not delivered again [MQTT-4.3.3-3] (exactly once), though JetStream, which
never had the ack, delivers it again after its ack wait.

A nats-server that dies with the node's ack in its socket buffer loses it
so; here a proxy between the subscriber's node A and the nats-server
(nats_proxy.py) loses the acks while the test says so, which makes the loss
certain rather than a matter of timing. Node B reaches the nats-server
directly; the publisher is on B.

The node acks a QoS 2 message with a request JetStream answers, sends it
again until answered, takes a delivery again of a message it holds or has
completed for what it is, and deletes the message's PUBREL entry only once
the ack is confirmed, so that a node taking the session over after A dies
sends PUBREL [MQTT-4.4.0-1] for it rather than the message.
"""

import pytest

import mqtt_raw as m
from conftest import free_port
from helpers import PahoClient, unique, wait_for
from nats_proxy import NatsProxy
from test_cluster_pubrel import PAST_ACK_WAIT, connect, stream_msgs, until_pubrel
from test_observability import scrape

pytestmark = pytest.mark.ternd_only


@pytest.fixture
def lossy(cluster_factory):
    """(cluster, node A behind a proxy that can lose acks, node B, proxy)."""
    c = cluster_factory(nodes=1, nats_n=1)
    b = c.nodes[0]
    proxy = NatsProxy(c.nats[0].port)
    port = free_port()
    a = c.add_node(nats=proxy.url, extra=["http_listener %d" % port])
    a.http_port = port
    assert wait_for(lambda: scrape(port).get("tern_cluster_jetstream") == 1.0, 30)
    yield c, a, b, proxy
    proxy.stop()


def completed_while_acks_are_lost(a, b, proxy, cid, topic, version):
    """A persistent QoS 2 subscriber of topic on A; a message published on
    B, which it receives and completes (PUBREC, PUBREL, PUBCOMP) while the
    proxy loses every ack. Returns (client, packet id)."""
    s, _ = connect(a, cid, version)
    s.subscribe([(topic, 2)])
    proxy.drop_acks = True
    pub = PahoClient(b)
    pub.publish(topic, b"once", qos=2)
    pub.disconnect()
    p = s.recv_publish(timeout=10)  # with its PUBREC / PUBREL / PUBCOMP
    assert (p.qos, p.payload) == (2, b"once"), p
    assert wait_for(lambda: proxy.dropped >= 1, 5), "no ack went through the proxy"
    return s, p.pid


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_a_lost_ack_does_not_bring_a_completed_message_again(lossy, version):
    """The queue's ack of a completed QoS 2 message is lost: JetStream
    delivers the message again after its ack wait, and the node does not
    hand it to the client again; once acks get through, the node's ack
    is confirmed, the message leaves its queue and the PUBREL entry goes;
    the next message arrives once."""
    c, a, b, proxy = lossy
    cid, topic = unique("lost"), unique("lostack")
    s, _pid = completed_while_acks_are_lost(a, b, proxy, cid, topic, version)
    # Past the ack wait: JetStream has delivered it again (to A, which
    # still listens), and the client saw nothing of it.
    assert s.recv_all(PAST_ACK_WAIT + 1.0) == []
    assert wait_for(lambda: scrape(a.http_port)
                    ["tern_cluster_durable_redeliveries_held_total"] >= 1, 5), \
        "JetStream did not deliver the message again: the test proves nothing"
    proxy.drop_acks = False
    assert wait_for(lambda: stream_msgs(c, "msgs") == 0, 10), stream_msgs(c, "msgs")
    assert wait_for(lambda: stream_msgs(c, "pubrel") == 0, 10), stream_msgs(c, "pubrel")
    assert scrape(a.http_port)["tern_cluster_durable_acks_confirmed_total"] >= 1
    assert s.recv_all(PAST_ACK_WAIT) == []
    pub = PahoClient(b)
    pub.publish(topic, b"next", qos=2)
    pub.disconnect()
    p = s.recv_publish(timeout=10)
    assert p.payload == b"next" and not p.dup, p
    assert s.no_packet(0.5)
    s.close()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_a_lost_ack_and_the_node_killed(lossy, version):
    """The queue's ack of a completed QoS 2 message is lost and node A is
    killed (kill -9) before it could send it again: the client resumes its
    session on B, which has the message delivered again and the PUBREL
    entry A kept for it: B sends PUBREL for that packet id
    [MQTT-4.4.0-1], which the client answers with PUBCOMP
    [MQTT-4.3.3-11], and not the message [MQTT-4.3.3-3]."""
    c, a, b, proxy = lossy
    cid, topic = unique("lostk"), unique("lostkill")
    s, pid = completed_while_acks_are_lost(a, b, proxy, cid, topic, version)
    a.kill()
    s.abort()
    s2, _ = connect(b, cid, version)
    s2.subscribe([(topic, 2)])
    got = until_pubrel(s2, pid)
    assert [p for p in got if p.type == m.PUBLISH] == [], got
    assert [p.pid for p in got if p.type == m.PUBREL] == [pid], got
    s2.send(m.pubcomp(pid, version))
    assert s2.recv_all(PAST_ACK_WAIT) == []
    assert wait_for(lambda: stream_msgs(c, "msgs") == 0, 10), stream_msgs(c, "msgs")
    assert wait_for(lambda: stream_msgs(c, "pubrel") == 0, 10), stream_msgs(c, "pubrel")
    s2.close()
