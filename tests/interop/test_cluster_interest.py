"""NATS interest follows the node's subscriptions, also when they go
(issue 12: messages cross nodes only toward nodes with matching
subscribers). Same fixtures as test_cluster.py."""

import time

import pytest

import mqtt_raw as m
from helpers import unique
from test_cluster import (PROBE_TIMEOUT, delivered_to_node, newly_delivered, publishes, raw,
                          routed)

pytestmark = pytest.mark.ternd_only


def test_interest_withdrawn_after_unsubscribe_and_disconnect(cluster_factory):
    """Messages cross nodes only toward nodes with matching subscribers
    (issue 12), also once a subscriber is gone: after an UNSUBSCRIBE
    [MQTT-3.10.4-2] and after a clean session's disconnect, node B's
    nats-server delivers B nothing for those filters; the one filter still
    subscribed on B gets its message (published last, on the same path)."""
    c = cluster_factory(nodes=2, nats_n=2)
    a, b = c[0], c[1]
    p = unique("wd")
    s1 = raw(b)
    s1.subscribe([(p + "/x", 1), (p + "/keep", 1)])
    s2 = raw(b)
    s2.subscribe([(p + "/y/#", 1)])
    routed(b, a)
    s1.unsubscribe([p + "/x"])
    s2.disconnect()
    # The withdrawal travels like the interest did: wait (bounded) until B's
    # server has no subscription left for those filters.
    deadline = time.monotonic() + PROBE_TIMEOUT
    while time.monotonic() < deadline:
        subs = subjects_on(c.nats[1], c.cluster_name)
        if not any(p + "." in s and (".x" in s or ".y" in s) for s in subs):
            break
        time.sleep(0.05)
    pub = raw(a)
    before = delivered_to_node(c.nats[1], c.cluster_name)
    pub.publish(p + "/x", b"gone", qos=1)
    pub.publish(p + "/y/z", b"gone", qos=1, pid=2)
    pub.publish(p + "/keep", b"kept", qos=1, pid=3)
    assert [x.payload for x in publishes(s1, 1)] == [b"kept"]
    after = delivered_to_node(c.nats[1], c.cluster_name)
    assert newly_delivered(before, after) == 1
    s1.disconnect()
    pub.disconnect()


def subjects_on(nats_server, cluster_name):
    import cluster
    j = cluster._http_json(nats_server.mport, "/connz?subs=1&limit=1024")
    return [s for conn in j.get("connections") or []
            for s in conn.get("subscriptions_list") or [] if s.startswith(cluster_name + ".")]


# -- the loss of a nats-server




# -- persistent sessions across nodes


class Receiver:
    """A persistent-session subscriber that can move from node to node,
    counting what the application would get: a QoS 0/1 PUBLISH when it
    arrives, a QoS 2 one at its PUBREL (4.3.3 method B: a redelivered
    PUBLISH with the same packet id before PUBREL is the same message)."""

    def __init__(self, cid, version=m.V5):
        self.cid = cid
        self.version = version
        self.c = None
        self.waiting = {}  # packet id -> payload, PUBREC sent, no PUBREL yet
        self.delivered = []

    def attach(self, node, first=False):
        self.c = node.raw(self.version)
        kw = {"properties": [(m.SESSION_EXPIRY, 600)]} if self.version == m.V5 else {}
        ack = self.c.connect(self.cid, clean=first, **kw)
        return ack

    def pump(self, timeout=0.3):
        """Handles what arrives within `timeout`; False once the connection
        is gone."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            try:
                p = self.c.recv(left)
            except TimeoutError:
                return True
            except m.Closed:
                return False
            try:
                if p.type == m.PUBLISH:
                    if p.qos == 2:
                        self.waiting[p.pid] = p.payload
                        self.c.send(m.pubrec(p.pid, self.version))
                    else:
                        self.delivered.append(p.payload)
                        if p.qos == 1:
                            self.c.send(m.puback(p.pid, self.version))
                elif p.type == m.PUBREL:
                    if p.pid in self.waiting:
                        self.delivered.append(self.waiting.pop(p.pid))
                    self.c.send(m.pubcomp(p.pid, self.version))
            except OSError:
                return False




