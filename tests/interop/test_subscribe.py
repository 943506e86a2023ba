"""SUBSCRIBE / UNSUBSCRIBE, wildcards, overlapping and shared subscriptions,
v5 subscription options and identifiers."""

import pytest

import mqtt_raw as m
from helpers import PahoClient, unique


def client(broker, version=m.V311, **kw):
    c = broker.raw(version)
    c.connect(unique("c"), **kw)
    return c


def received_topics(c, timeout=0.5):
    out = []
    for p in c.recv_all(timeout):
        if p.type == m.PUBLISH:
            c.ack(p)
            out.append(p.topic)
    return sorted(out)


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_wildcards_plus_and_hash_match(broker, version):
    """[MQTT-4.7.1-2] '#' matches the parent and any number of levels;
    [MQTT-4.7.1-3] '+' matches exactly one level (possibly empty); no
    normalisation is applied [MQTT-4.7.3-4]."""
    b = unique("w")
    sub = client(broker, version)
    ack = sub.subscribe([(b + "/+/c", 0), (b + "/h/#", 0), ("+/" + b + "x", 0)])
    assert ack.codes == [0, 0, 0]
    pub = client(broker, version)
    for t in [b + "/a/c", b + "/b/c", b + "//c", b + "/a/b/c", b + "/a/c/d",
              b + "/h", b + "/h/1", b + "/h/1/2", b + "/H/1", "z/" + b + "x",
              "z/y/" + b + "x"]:
        pub.publish(t, b"x")
    assert received_topics(sub) == sorted(
        [b + "/a/c", b + "/b/c", b + "//c", b + "/h", b + "/h/1", b + "/h/1/2",
         "z/" + b + "x"])
    sub.disconnect()
    pub.disconnect()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_dollar_topics_not_matched_by_leading_wildcards(broker, version):
    """[MQTT-4.7.2-1] Topic Filters starting with '#' or '+' MUST NOT match
    Topic Names beginning with '$'; an explicit '$foo/#' filter does."""
    foo = "$" + unique("foo")
    wild = client(broker, version)
    wild.subscribe([("#", 0), ("+/bar", 0), ("+/+", 0)])
    explicit = client(broker, version)
    explicit.subscribe([(foo + "/#", 0)])
    pub = client(broker, version)
    pub.publish(foo + "/bar", b"dollar")
    pub.publish("$SYS/" + unique("x"), b"sys")
    got = explicit.recv_publish()
    assert got.topic == foo + "/bar"
    for p in wild.recv_all(0.5):
        assert p.type != m.PUBLISH or not p.topic.startswith("$"), p
    wild.disconnect()
    explicit.disconnect()
    pub.disconnect()


def test_overlapping_subscriptions_v311_max_qos(broker):
    """[MQTT-3.3.5-1]: with overlapping subscriptions the Server delivers the
    message respecting the maximum QoS of all matching subscriptions; it MAY
    send one copy per subscription. So: 1 or 2 copies, one of them QoS 2."""
    b = unique("ov")
    sub = client(broker)
    sub.subscribe([(b + "/#", 0), (b + "/+", 2)])
    pub = client(broker)
    pub.publish(b + "/x", b"ov", qos=2)
    copies = [p for p in sub.recv_all(0.7) if p.type == m.PUBLISH]
    for p in copies:
        sub.ack(p)
    assert 1 <= len(copies) <= 2, copies
    assert max(p.qos for p in copies) == 2
    sub.disconnect()
    pub.disconnect()


def test_overlapping_subscriptions_v5_identifiers_all_delivered(broker):
    """v5 [MQTT-3.3.4-2] max QoS of the matching subscriptions;
    [MQTT-3.3.4-3] the Subscription Identifiers of all overlapping
    subscriptions are sent, in one copy ([MQTT-3.3.4-4]) or one per copy
    ([MQTT-3.3.4-5])."""
    b = unique("ov5")
    sub = client(broker, m.V5)
    a1 = sub.subscribe([(b + "/#", 0)], pid=1, properties=[(m.SUBSCRIPTION_ID, 1)])
    a2 = sub.subscribe([(b + "/+", 2)], pid=2, properties=[(m.SUBSCRIPTION_ID, 2)])
    assert a1.codes == [0] and a2.codes == [2]
    pub = client(broker, m.V5)
    pub.publish(b + "/x", b"ov", qos=2)
    copies = [p for p in sub.recv_all(0.7) if p.type == m.PUBLISH]
    for p in copies:
        sub.ack(p)
    assert 1 <= len(copies) <= 2, copies
    assert max(p.qos for p in copies) == 2
    ids = sorted(i for p in copies for i in p.props.get(m.SUBSCRIPTION_ID, []))
    assert ids == [1, 2], copies
    sub.disconnect(0)
    pub.disconnect(0)


def test_suback_return_codes_exact_bytes_v311(broker):
    """[MQTT-3.8.4-5] one return code per filter showing the granted QoS, in
    order [MQTT-3.9.3-1], only 0x00/0x01/0x02/0x80 [MQTT-3.9.3-2]; same Packet
    Identifier [MQTT-3.8.4-2]: 90 05 00 2a 00 01 02."""
    c = client(broker)
    c.send(m.subscribe(42, [("a/x", 0), ("b/x", 1), ("c/#", 2)]))
    assert c.recv().raw == b"\x90\x05\x00\x2a\x00\x01\x02"
    c.disconnect()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_invalid_topic_filter_is_refused(broker, version):
    """An invalid filter "a/#/b" ([MQTT-4.7.1-2]: '#' MUST be last) is never
    granted: the SUBACK carries a failure code for it (v3 0x80; v5 0x8F Topic
    Filter invalid, or another code >= 0x80) while the valid filter in the
    same packet is granted, or the Server treats the packet as malformed and
    closes the connection (4.8 / v5 4.13, DISCONNECT 0x81/0x82 allowed)."""
    c = client(broker, version)
    c.send(m.subscribe(7, [("ok/" + unique(), 1), ("a/#/b", 1)], version))
    try:
        p = c.recv(3)
    except m.Closed:
        return
    if p.type == m.DISCONNECT:
        assert p.rc in (0x81, 0x82, 0x8F), p
        c.wait_closed(3)
        return
    assert p.type == m.SUBACK and p.pid == 7, p
    assert p.codes[0] == 1
    if version == m.V311:
        assert p.codes[1] == 0x80
    else:
        assert p.codes[1] >= 0x80, p
    c.disconnect()


def test_unsuback_exact_bytes_and_unsubscribe_stops_delivery_v311(broker):
    """[MQTT-3.10.4-4] UNSUBACK with the same Packet Identifier (b0 02 00 09),
    also when nothing matched [MQTT-3.10.4-5]; [MQTT-3.10.4-2] after it no new
    message is delivered for the removed filter, others still are."""
    t1, t2 = unique("u1"), unique("u2")
    c = client(broker)
    c.subscribe([(t1, 0), (t2, 0)])
    c.send(m.unsubscribe(9, [t1, "never/subscribed"]))
    assert c.recv().raw == b"\xb0\x02\x00\x09"
    pub = client(broker)
    pub.publish(t1, b"gone")
    pub.publish(t2, b"kept")
    got = c.recv_publish()
    assert got.topic == t2
    assert c.no_packet(0.3)
    c.disconnect()
    pub.disconnect()


def test_v5_unsuback_reason_codes(broker):
    """v5 [MQTT-3.11.3-1] one Reason Code per filter, in order: 0x00 Success,
    0x11 No subscription existed; unsubscribed filters stop delivering
    ([MQTT-3.10.4-2])."""
    t = unique("u5")
    c = client(broker, m.V5)
    c.subscribe([(t, 1)])
    c.send(m.unsubscribe(3, [t, "not/there"], m.V5))
    ack = c.recv_type(m.UNSUBACK)
    assert ack.pid == 3 and ack.codes == [0x00, 0x11]
    pub = client(broker, m.V5)
    pub.publish(t, b"x", qos=1)
    assert c.no_packet(0.3)
    c.disconnect(0)
    pub.disconnect(0)


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_resubscribe_replaces_qos(broker, version):
    """[MQTT-3.8.4-3]: a SUBSCRIBE with a filter identical to an existing one
    replaces that subscription (one subscription, new maximum QoS): a QoS 2
    message then arrives once, at QoS 0."""
    t = unique("rs")
    c = client(broker, version)
    assert c.subscribe([(t, 2)], pid=1).codes == [2]
    assert c.subscribe([(t, 0)], pid=2).codes == [0]
    pub = client(broker, version)
    pub.publish(t, b"x", qos=2)
    got = [p for p in c.recv_all(0.6) if p.type == m.PUBLISH]
    assert len(got) == 1 and got[0].qos == 0, got
    c.disconnect()
    pub.disconnect()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_shared_subscription_each_message_to_one_member(broker, version):
    """v5 4.8.2 Shared Subscriptions ("$share/g/topic"; also offered to v3.1.1
    clients): each message goes to exactly one member of the group
    ([MQTT-4.8.2-3] granted QoS respected); with 2 members and 10 messages
    both get some; a plain subscriber still gets all 10."""
    t = unique("sh")
    members = [client(broker, version) for _ in range(2)]
    for c in members:
        assert c.subscribe([("$share/g/" + t, 1)]).codes == [1]
    plain = client(broker, version)
    plain.subscribe([(t, 1)])
    pub = client(broker, version)
    for i in range(10):
        pub.publish(t, b"%d" % i, qos=1, pid=i + 1)
    got = []
    for c in members:
        mine = []
        for p in c.recv_all(0.8):
            if p.type == m.PUBLISH:
                assert p.topic == t and p.qos == 1
                c.ack(p)
                mine.append(p.payload)
        got.append(mine)
    assert sorted(got[0] + got[1]) == sorted(b"%d" % i for i in range(10)), got
    assert got[0] and got[1], "one member got nothing: %r" % (got,)
    all_plain = [p.payload for p in plain.recv_all(0.5) if p.type == m.PUBLISH]
    assert len(all_plain) == 10
    for c in members + [plain, pub]:
        c.disconnect()


def test_v5_no_local(broker):
    """v5 [MQTT-3.8.3-3]: No Local 1 → the client's own messages are not
    forwarded to it; messages from other clients are."""
    t = unique("nl")
    c = client(broker, m.V5)
    c.subscribe([(t, m.sub_opts(qos=1, no_local=True))])
    c.publish(t, b"mine", qos=1)
    other = client(broker, m.V5)
    other.publish(t, b"theirs", qos=1)
    got = [p for p in c.recv_all(0.6) if p.type == m.PUBLISH]
    assert [p.payload for p in got] == [b"theirs"]
    c.disconnect(0)
    other.disconnect(0)


def test_v5_retain_as_published(broker):
    """v5 [MQTT-3.3.1-12] Retain As Published 0 → RETAIN 0 on forwarded
    messages; [MQTT-3.3.1-13] RAP 1 → RETAIN as published."""
    t = unique("rap")
    keep = client(broker, m.V5)
    keep.subscribe([(t, m.sub_opts(qos=0, rap=True))])
    clear = client(broker, m.V5)
    clear.subscribe([(t, m.sub_opts(qos=0, rap=False))])
    pub = client(broker, m.V5)
    pub.publish(t, b"r", retain=True)
    pub.publish(t, b"n", retain=False)
    k = [keep.recv_publish(), keep.recv_publish()]
    c = [clear.recv_publish(), clear.recv_publish()]
    assert [(p.payload, p.retain) for p in k] == [(b"r", True), (b"n", False)]
    assert [(p.payload, p.retain) for p in c] == [(b"r", False), (b"n", False)]
    pub.publish(t, b"", retain=True)  # clean up the retained message
    for x in (keep, clear, pub):
        x.disconnect(0)


def test_v5_retain_handling(broker):
    """v5 [MQTT-3.3.1-9] Retain Handling 0 → retained messages sent on every
    subscribe; [MQTT-3.3.1-10] RH 1 → sent only if the subscription did not
    exist; [MQTT-3.3.1-11] RH 2 → never sent."""
    t = unique("rh")
    pub = client(broker, m.V5)
    pub.publish(t, b"kept", qos=1, retain=True)

    def sub_count(c, rh, pid):
        ack = c.subscribe([(t, m.sub_opts(qos=1, rh=rh))], pid=pid)
        assert ack.codes == [1]
        got = [p for p in c.early + c.recv_all(0.4) if p.type == m.PUBLISH]
        for p in got:
            c.ack(p)
            assert p.retain and p.payload == b"kept"
        return len(got)

    c0 = client(broker, m.V5)
    assert sub_count(c0, 0, 1) == 1
    assert sub_count(c0, 0, 2) == 1
    c1 = client(broker, m.V5)
    assert sub_count(c1, 1, 1) == 1
    assert sub_count(c1, 1, 2) == 0
    c2 = client(broker, m.V5)
    assert sub_count(c2, 2, 1) == 0
    pub.publish(t, b"", qos=1, retain=True)
    for x in (c0, c1, c2, pub):
        x.disconnect(0)


def test_v5_subscription_identifier_delivered(broker):
    """v5 3.8.2.1.2 / [MQTT-3.3.4-3]: the Subscription Identifier given in
    SUBSCRIBE is sent in PUBLISHes matching that subscription; a subscription
    without identifier yields none."""
    t1, t2 = unique("sid"), unique("nosid")
    c = client(broker, m.V5)
    c.subscribe([(t1, 1)], pid=1, properties=[(m.SUBSCRIPTION_ID, 268435455)])
    c.subscribe([(t2, 1)], pid=2)
    pub = client(broker, m.V5)
    pub.publish(t1, b"a", qos=1)
    pub.publish(t2, b"b", qos=1)
    a = c.recv_publish()
    b = c.recv_publish()
    assert a.topic == t1 and a.props.get(m.SUBSCRIPTION_ID) == [268435455]
    assert b.topic == t2 and m.SUBSCRIPTION_ID not in b.props
    c.disconnect(0)
    pub.disconnect(0)


def test_paho_subscribe_unsubscribe(broker):
    """paho interop: SUBACK granted QoS list, UNSUBACK, and no delivery after
    unsubscribing ([MQTT-3.8.4-5], [MQTT-3.10.4-2])."""
    c = PahoClient(broker)
    t = unique("pu")
    assert c.subscribe([(t, 1), (t + "/#", 2)]) == (1, 2)
    c.publish(t, b"in", qos=1)
    assert c.get().payload == b"in"
    c.unsubscribe([t, t + "/#"])
    c.publish(t, b"out", qos=1)
    c.nothing(0.3)
    c.disconnect()
