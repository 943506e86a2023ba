"""A mosquitto bridge whose remote is the broker under test (issue 13;
docs/bridges.md, "try_private"): Debian's mosquitto bridges to ternd with
its defaults, so its 3.1.1 CONNECT carries the bridge bit (protocol level
0x84, mosquitto's try_private). ternd takes it as a bridge at the first
attempt, as mosquitto does, instead of refusing an unknown level (which
made mosquitto retry without the bit after restart_timeout and then run
as a plain client): the bridge's subscriptions are No Local and Retain As
Published, so what it publishes is not sent back to it (no loop through a
`both` topic) and RETAIN crosses as published.

Found by mosquitto 2.0.11's own test 06-bridge-no-local run against ternd.
"""

import re
import time

import pytest

from bridge_peer import Remote
from conftest import WORKER_COUNTS, Broker, tail
from helpers import PahoClient, unique, wait_for

HOST = "127.0.0.1"


@pytest.fixture(params=WORKER_COUNTS, ids=["w%d" % w for w in WORKER_COUNTS])
def into(request, tmp_path):
    """(broker under test, mosquitto bridging to it, the bridge's client id)."""
    d = tmp_path / "under-test"
    d.mkdir()
    b = Broker(d, request.param, [])
    b.start()
    cid = unique("mosqbr")
    m = Remote(tmp_path, ["connection into", "address %s:%d" % (HOST, b.port),
                          "remote_clientid " + cid, "restart_timeout 1",
                          "keepalive_interval 5", "bridge_protocol_version mqttv311",
                          "topic loop/# both 1", "topic ret/# in 1", "topic probe/# out 0"])
    m.start()
    request.node._tern_broker_log = [b.log, m.log]
    yield b, m, cid
    m.stop()
    b.stop()


def bridge_up(b, m):
    """Messages flow mosquitto -> the broker under test."""
    sub = PahoClient(b)
    sub.subscribe("probe/#", 0)
    pub = PahoClient(m)
    ok = False
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not ok:
        pub.publish("probe/x", b"probe", 0)
        ok = bool(sub.drain(0.2))
    sub.disconnect()
    pub.disconnect()
    return ok


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def test_a_mosquitto_bridge_is_taken_as_a_bridge_at_once(into):
    """The CONNECT with level 0x84 is accepted the first time: the broker
    logs no refusal, and mosquitto does not fall back to a plain CONNECT
    (it would log the refusal and reconnect after restart_timeout)."""
    b, m, cid = into
    assert bridge_up(b, m), tail(m.log)
    assert wait_for(lambda: re.search(r"as %s \(p4" % re.escape(cid), read(b.log)), 5), \
        tail(b.log)
    assert "unsupported protocol version" not in read(b.log)
    assert "protocol version" not in read(m.log).lower(), tail(m.log)
    # One connection of the bridge, not a refused one and a second.
    assert len(re.findall(r"New client connected .* as %s " % re.escape(cid), read(b.log))) == 1


def test_both_topic_does_not_loop_through_the_broker(into):
    """`topic loop/# both 1` on the mosquitto side: a message published on
    either broker reaches the subscribers of each once; the bridge's own
    publishes are not sent back to it (No Local on its subscription, as
    for mosquitto's try_private peers)."""
    b, m, _cid = into
    assert bridge_up(b, m), tail(m.log)
    on_b = PahoClient(b)
    on_b.subscribe("loop/#", 1)
    on_m = PahoClient(m)
    on_m.subscribe("loop/#", 1)
    PahoClient(m).publish("loop/m", b"from-mosquitto", 1)
    PahoClient(b).publish("loop/b", b"from-the-broker", 1)
    got_b = sorted(x.payload for x in on_b.drain(2.5))
    got_m = sorted(x.payload for x in on_m.drain(2.5))
    assert got_b == [b"from-mosquitto", b"from-the-broker"], got_b
    assert got_m == [b"from-mosquitto", b"from-the-broker"], got_m


def test_retain_crosses_as_published(into):
    """`topic ret/# in 1`: mosquitto's bridge subscribes to ret/# on the
    broker under test; a retained message published there is sent to the
    bridge with RETAIN 1 (Retain As Published on the bridge's
    subscription, [MQTT-3.3.1-12]; a plain subscription gets RETAIN 0
    [MQTT-3.3.1-9]), so mosquitto keeps it retained and a later
    subscriber of mosquitto gets it."""
    b, m, _cid = into
    assert bridge_up(b, m), tail(m.log)
    # The bridge's subscription to ret/# is there once a live message
    # crosses.
    watch = PahoClient(m)
    watch.subscribe("ret/#", 1)
    pub = PahoClient(b)
    def crossed():
        pub.publish("ret/live", b"live", 1)
        return any(x.payload == b"live" for x in watch.drain(0.3))
    assert wait_for(crossed, 10)
    pub.publish("ret/x", b"kept", 1, retain=True)
    late = PahoClient(m)
    assert wait_for(lambda: late.subscribe("ret/#", 1) is not None and
                    any(x.payload == b"kept" and x.retain for x in late.drain(0.5)), 10)
