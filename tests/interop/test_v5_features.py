"""MQTT 5.0: message expiry, topic aliases, properties passed through,
reason strings, DISCONNECT reason codes, AUTH and authentication methods."""

import time

import pytest

import mqtt_raw as m
from helpers import PahoClient, props, unique
from paho.mqtt.packettypes import PacketTypes


def client(broker, cid=None, **kw):
    c = broker.raw(m.V5)
    ack = c.connect(cid or unique("c"), **kw)
    c.connack = ack
    return c


def test_message_expiry_drops_queued_message(broker):
    """v5 [MQTT-3.3.2-5]: a message whose Message Expiry Interval (1 s) passes
    while queued for an offline session is not delivered; an unexpired one
    queued with it is."""
    cid, t = unique("exp"), unique("exp/t")
    sub = client(broker, cid, properties=[(m.SESSION_EXPIRY, 60)])
    sub.subscribe([(t, 1)])
    sub.disconnect(0)
    pub = client(broker)
    pub.publish(t, b"short", qos=1, properties=[(m.MESSAGE_EXPIRY, 1)])
    pub.publish(t, b"long", qos=1, properties=[(m.MESSAGE_EXPIRY, 100)])
    pub.disconnect(0)
    time.sleep(2.1)
    sub = client(broker, cid, clean=False, properties=[(m.SESSION_EXPIRY, 60)])
    got = [p for p in sub.recv_all(0.6) if p.type == m.PUBLISH]
    for p in got:
        sub.ack(p)
    assert [p.payload for p in got] == [b"long"]
    sub.disconnect(0)


def test_forwarded_message_expiry_is_decremented(broker):
    """v5 [MQTT-3.3.2-6]: the forwarded Message Expiry Interval is the received
    value minus the time the message waited in the Server (here >= 1 s)."""
    cid, t = unique("dec"), unique("dec/t")
    sub = client(broker, cid, properties=[(m.SESSION_EXPIRY, 60)])
    sub.subscribe([(t, 1)])
    sub.disconnect(0)
    pub = client(broker)
    pub.publish(t, b"x", qos=1, properties=[(m.MESSAGE_EXPIRY, 60)])
    pub.disconnect(0)
    time.sleep(1.6)
    sub = client(broker, cid, clean=False, properties=[(m.SESSION_EXPIRY, 60)])
    got = sub.recv_publish()
    assert 1 <= got.props.get(m.MESSAGE_EXPIRY, 0) <= 59, got
    # A live message keeps (at most) the published value.
    pub = client(broker)
    pub.publish(t, b"y", qos=1, properties=[(m.MESSAGE_EXPIRY, 30)])
    live = sub.recv_publish()
    assert 29 <= live.props.get(m.MESSAGE_EXPIRY, 0) <= 30
    sub.disconnect(0)
    pub.disconnect(0)


def test_inbound_topic_alias(broker):
    """v5 3.3.2.3.4 / [MQTT-3.3.2-12]: the Server accepts Topic Aliases from 1
    to its Topic Alias Maximum: PUBLISH with topic + alias sets the mapping,
    then an empty topic + alias is delivered with the full topic. The Server
    sends no alias to a client that set no Topic Alias Maximum
    ([MQTT-3.1.2-27])."""
    t = unique("ta")
    sub = client(broker)
    sub.subscribe([(t, 1)])
    pub = client(broker)
    tam = pub.connack.props.get(m.TOPIC_ALIAS_MAXIMUM, 0)
    assert tam >= 1, "server offers no topic aliases"
    pub.publish(t, b"one", qos=1, properties=[(m.TOPIC_ALIAS, 1)])
    pub.publish("", b"two", qos=1, pid=2, properties=[(m.TOPIC_ALIAS, 1)])
    a, b = sub.recv_publish(), sub.recv_publish()
    assert (a.topic, a.payload) == (t, b"one")
    assert (b.topic, b.payload) == (t, b"two")
    assert m.TOPIC_ALIAS not in a.props and m.TOPIC_ALIAS not in b.props
    sub.disconnect(0)
    pub.disconnect(0)


def test_topic_alias_above_maximum_gets_disconnect_0x94(broker):
    """v5 3.3.2.3.4: a Topic Alias greater than the Server's Topic Alias
    Maximum ([MQTT-3.3.2-9] broken) → DISCONNECT 0x94 (Topic Alias invalid)
    and close. Also a probe: the broker keeps serving others."""
    c = client(broker)
    tam = c.connack.props.get(m.TOPIC_ALIAS_MAXIMUM, 0)
    c.send(m.publish(unique("tb"), b"x", version=m.V5,
                     properties=[(m.TOPIC_ALIAS, tam + 1)]))
    pkts = c.wait_closed(3)
    assert [(p.type, p.rc) for p in pkts] == [(m.DISCONNECT, 0x94)], pkts


def test_unknown_topic_alias_with_empty_topic_is_a_protocol_error(broker):
    """v5 3.3.2.3.4: an empty Topic Name with an alias that has no mapping is
    a Protocol Error → DISCONNECT 0x82 (or 0x94 Topic Alias invalid) and
    close."""
    c = client(broker)
    c.send(m.publish("", b"x", version=m.V5, properties=[(m.TOPIC_ALIAS, 1)]))
    pkts = c.wait_closed(3)
    assert all(p.type == m.DISCONNECT and p.rc in (0x82, 0x94) for p in pkts), pkts


def test_publish_properties_passed_through_unchanged(broker):
    """v5: Payload Format Indicator [MQTT-3.3.2-4], Response Topic
    [MQTT-3.3.2-15], Correlation Data [MQTT-3.3.2-16], User Properties
    unaltered and in order [MQTT-3.3.2-17], [MQTT-3.3.2-18], Content Type
    [MQTT-3.3.2-20] reach the subscriber unchanged (request/response)."""
    t = unique("pp")
    sub = client(broker)
    sub.subscribe([(t, 2)])
    pub = client(broker)
    pp = [(m.PAYLOAD_FORMAT, 1), (m.CONTENT_TYPE, "application/json; charset=utf-8"),
          (m.RESPONSE_TOPIC, "reply/" + t), (m.CORRELATION_DATA, bytes(range(256))[:40]),
          (m.USER_PROPERTY, ("b", "2")), (m.USER_PROPERTY, ("a", "1")),
          (m.USER_PROPERTY, ("b", "1")), (m.USER_PROPERTY, ("ünï", "cødé"))]
    pub.publish(t, b'{"x": 1}', qos=2, properties=pp)
    got = sub.recv_publish()
    assert got.payload == b'{"x": 1}'
    assert got.props[m.PAYLOAD_FORMAT] == 1
    assert got.props[m.CONTENT_TYPE] == "application/json; charset=utf-8"
    assert got.props[m.RESPONSE_TOPIC] == "reply/" + t
    assert got.props[m.CORRELATION_DATA] == bytes(range(256))[:40]
    assert got.props[m.USER_PROPERTY] == [("b", "2"), ("a", "1"), ("b", "1"), ("ünï", "cødé")]
    sub.disconnect(0)
    pub.disconnect(0)


def test_paho_request_response(broker):
    """paho interop, v5 4.10 Request / Response: the responder reads the
    Response Topic and Correlation Data ([MQTT-3.3.2-15], [MQTT-3.3.2-16]) and
    answers; the requester gets the answer with its correlation data."""
    req_t, resp_t = unique("req"), unique("resp")
    responder = PahoClient(broker, version=5)
    responder.subscribe(req_t, 1)
    requester = PahoClient(broker, version=5)
    requester.subscribe(resp_t, 1)
    requester.publish(req_t, b"ping?", qos=1, properties=props(
        PacketTypes.PUBLISH, ResponseTopic=resp_t, CorrelationData=b"id-7",
        UserProperty=[("trace", "abc")]))
    req = responder.get()
    assert req.properties.ResponseTopic == resp_t
    assert req.properties.CorrelationData == b"id-7"
    assert req.properties.UserProperty == [("trace", "abc")]
    responder.publish(req.properties.ResponseTopic, b"pong!", qos=1, properties=props(
        PacketTypes.PUBLISH, CorrelationData=req.properties.CorrelationData))
    resp = requester.get()
    assert resp.payload == b"pong!" and resp.properties.CorrelationData == b"id-7"
    responder.disconnect()
    requester.disconnect()


def test_reason_strings_and_user_properties_from_client_are_accepted(broker):
    """v5 3.4.2.2.2 / 3.5.2.2.2 / 3.7.2.2.2 / 3.14.2.2.3: a client may put a
    Reason String and User Properties in PUBACK, PUBREC, PUBCOMP and
    DISCONNECT; the broker accepts them (no error, flows complete)."""
    t = unique("rs")
    sub = client(broker)
    sub.subscribe([(t + "/#", 2)])
    pub = client(broker)
    pub.publish(t + "/1", b"a", qos=1, pid=1)
    pub.publish(t + "/2", b"b", qos=2, pid=2)
    rsp = [(m.REASON_STRING, "all good"), (m.USER_PROPERTY, ("why", "test"))]
    p1 = sub.recv_type(m.PUBLISH)
    sub.send(m.puback(p1.pid, m.V5, 0x00, rsp))
    p2 = sub.recv_type(m.PUBLISH)
    sub.send(m.pubrec(p2.pid, m.V5, 0x00, rsp))
    rel = sub.recv_type(m.PUBREL)
    sub.send(m.pubcomp(rel.pid, m.V5, 0x00, rsp))
    assert sub.is_open()
    pub.publish(t + "/3", b"c", qos=0)
    assert sub.recv_publish().payload == b"c"
    sub.send(m.disconnect(m.V5, 0x00, [(m.REASON_STRING, "bye")]))
    assert sub.wait_closed(3) == []
    pub.disconnect(0)


def test_client_disconnect_reason_codes_accepted(broker):
    """v5 3.14.2.1: a client DISCONNECT with Reason Code 0x00 (also encoded
    with remaining length 0, 3.14.2.1) or 0x04 closes the session cleanly:
    the Server closes the connection and sends nothing back
    ([MQTT-3.14.0-1] no server DISCONNECT after a client DISCONNECT)."""
    for rc in (None, 0x00, 0x04, 0x80):
        c = client(broker)
        c.send(m.disconnect(m.V5, rc))
        assert c.wait_closed(3) == []


def test_auth_without_authentication_method_is_a_protocol_error(broker):
    """v5 [MQTT-4.12.0-7]: without an Authentication Method in CONNECT the
    client MUST NOT send AUTH; the Server treats it as a Protocol Error: it
    closes the connection, after DISCONNECT 0x82 if it sends one (4.13)."""
    c = client(broker)
    c.send(m.auth(0x18, [(m.AUTH_METHOD, "SCRAM-SHA-1")]))
    pkts = c.wait_closed(3)
    assert all(p.type == m.DISCONNECT and p.rc == 0x82 for p in pkts), pkts


def test_unsupported_authentication_method_gets_connack_0x8c(broker):
    """v5 [MQTT-4.12.0-1]: an Authentication Method the Server does not
    support → CONNACK 0x8C (Bad authentication method) or 0x87 (Not
    authorized), and the Server closes the connection [MQTT-3.2.2-7]."""
    c = broker.raw(m.V5)
    c.send(m.connect(unique(), version=m.V5,
                     properties=[(m.AUTH_METHOD, "X-TERN-UNKNOWN"),
                                 (m.AUTH_DATA, b"secret")]))
    pkts = c.wait_closed(3)
    assert pkts and pkts[0].type == m.CONNACK, pkts
    assert pkts[0].rc in (0x8C, 0x87)
    assert not pkts[0].session_present  # [MQTT-3.2.2-6]


@pytest.mark.broker_config("allow_anonymous false")
@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_anonymous_refused_when_not_allowed(broker, version):
    """allow_anonymous false and no password file: CONNECT without user name
    is refused with a CONNACK error (v3 0x05 Not authorized or 0x04; v5 0x87
    or 0x86) and the connection is closed ([MQTT-3.2.2-5] / v5
    [MQTT-3.2.2-7])."""
    c = broker.raw(version)
    c.send(m.connect(unique(), version=version))
    pkts = c.wait_closed(3)
    assert pkts and pkts[0].type == m.CONNACK, pkts
    ok = (0x04, 0x05) if version == m.V311 else (0x86, 0x87)
    assert pkts[0].rc in ok, pkts
