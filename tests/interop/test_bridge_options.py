"""The bridge directives beyond the first part (issue 13), each at its edge,
against Debian's mosquitto as the remote (and as the bridging broker too with
TERN_TEST_AGAINST=mosquitto, where mosquitto 2.0 has the directive):
several addresses with failover back to the main one, or round_robin;
start_type once and lazy (threshold, idle_timeout); local_clientid and
local_cleansession; bridge_attempt_unsubscribe; bridge_outgoing_retain;
bridge_max_packet_size; bridge_bind_address; notifications_local_only; and,
against a listening socket of the test's own that reads the CONNECT,
bridge_receive_maximum and bridge_session_expiry_interval (mosquitto
2.1's)."""

import os
import re
import subprocess
import time

import pytest

import mqtt_raw as raw
from bridge_peer import HOST, ConnectCatcher, Remote, connected, pair_factory  # noqa: F401
from conftest import MOSQUITTO_BIN, Broker, broker_binary, free_port
from helpers import PahoClient, read_log, unique, wait_for

pytestmark = pytest.mark.skipif(not os.path.exists(MOSQUITTO_BIN),
                                reason="needs Debian's mosquitto as the remote broker")


def block(addresses, topics, extra=(), name="b1"):
    lines = ["connection " + name, "addresses " + " ".join(addresses),
             "restart_timeout 1", "keepalive_interval 5"]
    return lines + ["topic " + t for t in topics] + list(extra)


def flows(local, remote, topic, timeout=10.0):
    """Whether a probe published locally on topic reaches remote."""
    sub = PahoClient(remote)
    sub.subscribe(topic, 0)
    pub = PahoClient(local)
    ok = False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not ok:
        pub.publish(topic, b"probe", 0)
        ok = bool(sub.drain(0.2))
    sub.disconnect()
    pub.disconnect()
    return ok


def remote_log(remote):
    with open(remote.log, errors="replace") as f:
        return f.read()


@pytest.fixture
def local_factory(request, tmp_path):
    made = []

    def make(lines, workers=1):
        d = tmp_path / ("local-" + unique("l"))
        d.mkdir()
        b = Broker(d, workers, lines)
        b.start()
        made.append(b)
        request.node._tern_broker_log = b.log
        return b

    yield make
    for b in made:
        b.stop()


@pytest.fixture
def remotes(tmp_path):
    made = []

    def make(start=True, **kw):
        r = Remote(tmp_path, **kw)
        if start:
            r.start()
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


# ---- several addresses ----

def test_failover_to_the_next_address_and_back_to_the_main_one(local_factory, remotes):
    """`addresses A B`: with A down the bridge connects to B; once A is back
    it leaves B for A (round_robin false: A is the main address, tried again
    while on B)."""
    a = remotes(start=False)
    b = remotes()
    local = local_factory(block(["%s:%d" % (HOST, a.port), "%s:%d" % (HOST, b.port)],
                                ["probe/# out 0"]))
    assert flows(local, b, "probe/x", timeout=15)
    a.start()
    assert flows(local, a, "probe/x", timeout=20)
    # Gone from B: nothing reaches it any more.
    sub = PahoClient(b)
    sub.subscribe("probe/#", 0)
    PahoClient(local).publish("probe/y", b"late", 0)
    sub.nothing(1.0)


def test_round_robin_stays_on_the_address_that_works(local_factory, remotes):
    """round_robin true: every address is equal; once connected to B after
    A failed, the bridge stays on B when A comes back, and moves on to the
    next one (A) only when B fails."""
    a = remotes(start=False)
    b = remotes()
    local = local_factory(block(["%s:%d" % (HOST, a.port), "%s:%d" % (HOST, b.port)],
                                ["probe/# out 0"], extra=["round_robin true"]))
    assert flows(local, b, "probe/x", timeout=15)
    a.start()
    time.sleep(7)  # more than the 5 s after which a non-round-robin bridge moves
    assert flows(local, b, "probe/x", timeout=5)
    b.stop()
    assert flows(local, a, "probe/x", timeout=20)


# ---- start_type ----

# mosquitto 2.0.11 (Debian's, built with asynchronous name resolution)
# never completes a `once` bridge's first connect: checked on ternd only.
@pytest.mark.ternd_only
def test_start_type_once_is_not_restarted(local_factory, remotes):
    """start_type once: started with the broker, never again: a remote that
    is down then is not tried again when it comes up."""
    r = remotes(start=False)
    local = local_factory(block(["%s:%d" % (HOST, r.port)], ["probe/# out 0"],
                                extra=["start_type once"]))
    assert wait_for(lambda: "not restarted" in read_log(local), 10)
    r.start()
    assert not flows(local, r, "probe/x", timeout=3)


@pytest.mark.ternd_only
def test_start_type_once_forwards_while_connected(local_factory, remotes):
    r = remotes()
    local = local_factory(block(["%s:%d" % (HOST, r.port)], ["probe/# out 0"],
                                extra=["start_type once"]))
    assert flows(local, r, "probe/x", timeout=10)


def lazy_pair(local_factory, remotes):
    r = remotes()
    local = local_factory(block(["%s:%d" % (HOST, r.port)], ["lazy/# out 1"],
                                extra=["start_type lazy", "threshold 3", "idle_timeout 2",
                                       "remote_clientid lazybr"]))
    return local, r


def test_lazy_starts_at_the_threshold(local_factory, remotes):
    """start_type lazy, threshold 3: two QoS 1 messages wait locally and the
    remote sees no bridge; the third starts it and all three arrive, in
    order."""
    local, r = lazy_pair(local_factory, remotes)
    sub = PahoClient(r, client_id=unique("rs"))
    sub.subscribe("lazy/#", 1)
    pub = PahoClient(local)
    pub.publish("lazy/a", b"1", 1)
    pub.publish("lazy/a", b"2", 1)
    sub.nothing(1.5)
    assert "lazybr" not in remote_log(r)
    pub.publish("lazy/a", b"3", 1)
    assert [m.payload for m in sub.get_n(3, timeout=10)] == [b"1", b"2", b"3"]


# mosquitto 2.0.11 measures idle_timeout from the bridge's last packet out,
# its keep-alive PINGREQ included, so it never stops a bridge whose
# keepalive_interval is below idle_timeout twice over: ternd only.
@pytest.mark.ternd_only
def test_lazy_stops_when_idle_and_starts_again(local_factory, remotes):
    """After idle_timeout (2 s) without a message forwarded, a lazy bridge
    disconnects (its local state "0"), and the next threshold starts it
    again, with nothing lost meanwhile."""
    local, r = lazy_pair(local_factory, remotes)
    sub = PahoClient(r, client_id=unique("rs"))
    sub.subscribe("lazy/#", 1)
    state = PahoClient(local)
    state.subscribe("$SYS/broker/connection/lazybr/state", 1)
    assert state.get(timeout=5).payload == b"0"
    pub = PahoClient(local)
    for i in range(3):
        pub.publish("lazy/a", b"%d" % i, 1)
    assert [m.payload for m in sub.get_n(3, timeout=10)] == [b"0", b"1", b"2"]
    assert state.get(timeout=5).payload == b"1"
    # Idle: the bridge leaves the remote, and says so locally.
    assert state.get(timeout=10).payload == b"0"
    assert wait_for(lambda: "Client lazybr disconnected" in remote_log(r), 5), \
        remote_log(r)[-1500:]
    pub.publish("lazy/b", b"x", 1)
    pub.publish("lazy/b", b"y", 1)
    sub.nothing(1.0)
    pub.publish("lazy/b", b"z", 1)
    assert [m.payload for m in sub.get_n(3, timeout=10)] == [b"x", b"y", b"z"]
    assert state.get(timeout=5).payload == b"1"


# ---- the local side ----

@pytest.mark.ternd_only  # a takeover of mosquitto's bridge session is not a session
def test_local_clientid_names_the_local_session(pair_factory):
    """local_clientid: the bridge's session on the local broker has that id
    (default local.<remote_clientid>): a client that connects with it resumes
    that session (session present), taking it from the bridge."""
    p = pair_factory(["probe/# out 0"], bridge_extra=["local_clientid my-bridge-side"])
    assert connected(p, "probe/x")
    c = raw.RawClient(HOST, p.local.port, version=raw.V5)
    ack = c.connect("my-bridge-side", clean=False,
                    properties={raw.SESSION_EXPIRY: 10})
    assert ack.session_present
    c.close()


@pytest.mark.ternd_only
def test_local_cleansession_false_keeps_the_local_queue_across_a_restart(pair_factory,
                                                                           tmp_path):
    """cleansession true with local_cleansession false: the local session
    is persistent on its own, so what waits in it for a remote that is down
    survives a restart of ternd and is forwarded once the remote is back."""
    p = pair_factory(["keep/# out 1", "probe/# out 0"], remote_persistent=True,
                     bridge_extra=["cleansession true", "local_cleansession false"],
                     local_extra=["persistence true", "persistence_location %s/" % tmp_path])
    assert connected(p, "probe/x")
    cid = unique("rsub")
    sub = PahoClient(p.remote, client_id=cid, clean=False)
    sub.subscribe("keep/#", 1)
    sub.disconnect()
    p.remote.stop()
    pub = PahoClient(p.local)
    for i in range(5):
        pub.publish("keep/x", b"%d" % i, 1)
    pub.disconnect()
    p.restart_local()
    p.remote.start()
    assert connected(p, "probe/x", timeout=15)
    sub = PahoClient(p.remote, client_id=cid, clean=False)
    assert sorted(int(m.payload) for m in sub.drain(3.0)) == list(range(5))


@pytest.mark.ternd_only  # mosquitto has no flow control: it drops beyond the queue bound
def test_slow_local_subscriber_holds_the_remote_instead_of_losing(pair_factory):
    """What the remote sends goes to a local subscriber that does not read
    (max_queued_messages 5, max_inflight_messages 5): the bridge holds its
    acknowledgements to the remote, as a paused publisher's are held, so
    the backlog stays on the remote rather than growing here; once the
    subscriber reads, every one of the 60 QoS 1 messages arrives."""
    p = pair_factory(["slow/# in 1", "probe/# out 0"], bridge_extra=["remote_clientid slowbr"],
                     local_extra=["max_queued_messages 5", "max_inflight_messages 5"])
    assert connected(p, "probe/x")
    sub = raw.RawClient(HOST, p.local.port, version=raw.V311)
    sub.connect("slowsub", clean=True)
    sub.subscribe([("slow/#", 1)])
    pub = PahoClient(p.remote)
    for i in range(60):
        pub.publish("slow/x", b"%d" % i, 1)
    time.sleep(1.0)
    # Held: the remote got acknowledgements for what the local side can
    # hold (queue, window, what came before the pause), not for all 60;
    # the rest waits on the remote, unacknowledged.
    acked = remote_log(p.remote).count("Received PUBACK from slowbr")
    assert acked < 40, acked
    got = []
    deadline = time.monotonic() + 20
    while len(got) < 60 and time.monotonic() < deadline:
        for pk in sub.recv_all(0.3):
            if pk.type == raw.PUBLISH:
                got.append(int(pk.payload))
                sub.send(raw.puback(pk.pid))
    assert sorted(got) == list(range(60)), "missing %r" % sorted(set(range(60)) - set(got))
    sub.close()


# ---- what goes to the remote ----

def test_attempt_unsubscribe_false_sends_no_unsubscribe(pair_factory):
    """An "out" topic is unsubscribed on the remote (bridge_attempt_unsubscribe
    true, the default); with false no UNSUBSCRIBE goes."""
    p = pair_factory(["probe/# out 0"], bridge_extra=["remote_clientid unsub-on"])
    assert connected(p, "probe/x")
    assert wait_for(lambda: "Received UNSUBSCRIBE from unsub-on" in remote_log(p.remote), 5)
    q = pair_factory(["probe/# out 0"], bridge_extra=["remote_clientid unsub-off",
                                                      "bridge_attempt_unsubscribe false"])
    assert connected(q, "probe/x")
    time.sleep(0.5)
    log = remote_log(q.remote)
    assert "unsub-off" in log and "Received UNSUBSCRIBE from unsub-off" not in log


def test_outgoing_retain_false_clears_retain(pair_factory):
    """bridge_outgoing_retain false: a retained local message reaches the
    remote's subscribers without RETAIN and is not kept there."""
    p = pair_factory(["ret/# out 1", "probe/# out 0"],
                     bridge_extra=["bridge_outgoing_retain false"])
    assert connected(p, "probe/x")
    live = PahoClient(p.remote)
    live.subscribe("ret/#", 1)
    PahoClient(p.local).publish("ret/x", b"kept?", 1, retain=True)
    m = live.get(timeout=10)
    assert m.payload == b"kept?" and not m.retain
    late = PahoClient(p.remote)
    late.subscribe("ret/#", 1)
    late.nothing(1.0)


def test_max_packet_size_holds_back_larger_messages(pair_factory):
    """bridge_max_packet_size 200: a PUBLISH that would be larger is not
    sent to the remote (and the local publisher is still answered); a
    smaller one is."""
    p = pair_factory(["big/# out 1", "probe/# out 0"],
                     bridge_extra=["bridge_max_packet_size 200"])
    assert connected(p, "probe/x")
    sub = PahoClient(p.remote)
    sub.subscribe("big/#", 1)
    pub = PahoClient(p.local)
    pub.publish("big/x", b"a" * 400, 1)
    pub.publish("big/x", b"small", 1)
    got = [m.payload for m in sub.drain(2.0)]
    assert got == [b"small"]


@pytest.mark.ternd_only  # mosquitto 2.0.11 (asynchronous name resolution) ignores it
def test_bind_address_is_the_source_address(pair_factory):
    """bridge_bind_address 127.0.0.2: the remote sees the bridge come from
    that address."""
    p = pair_factory(["probe/# out 0"], bridge_extra=["bridge_bind_address 127.0.0.2",
                                                      "remote_clientid bound"])
    assert connected(p, "probe/x")
    log = remote_log(p.remote)
    assert re.search(r"New (bridge|client) connected from 127\.0\.0\.2:\d+ as bound", log), \
        log[-1500:]


def test_notifications_local_only(pair_factory):
    """notifications_local_only true: the "1" is published locally, not on
    the remote (and no will there either)."""
    p = pair_factory(["probe/# out 0"], bridge_extra=["notifications_local_only true",
                                                      "remote_clientid lonly"])
    assert connected(p, "probe/x")
    lsub = PahoClient(p.local)
    lsub.subscribe("$SYS/broker/connection/lonly/state", 1)
    assert lsub.get(timeout=5).payload == b"1"
    rsub = PahoClient(p.remote)
    rsub.subscribe("$SYS/broker/connection/#", 1)
    rsub.nothing(1.0)


# ---- v5 CONNECT properties, read by a socket of our own ----

@pytest.mark.ternd_only  # mosquitto 2.1's directives
@pytest.mark.parametrize("extra,expiry,rmax", [
    ([], 0xFFFFFFFF, 20),
    (["bridge_receive_maximum 7", "bridge_session_expiry_interval 300"], 300, 7),
    (["bridge_session_expiry_interval 0", "cleansession true"], None, 20),
])
def test_v5_receive_maximum_and_session_expiry(local_factory, extra, expiry, rmax):
    """bridge_protocol_version mqttv50: the CONNECT carries Receive Maximum
    (bridge_receive_maximum, else max_inflight_messages) and Session Expiry
    Interval (bridge_session_expiry_interval; without it, "never" for
    cleansession false) [MQTT-3.1.2-11]; 0 is the default, so not sent."""
    cat = ConnectCatcher()
    try:
        local_factory(block(["%s:%d" % (HOST, cat.port)], ["probe/# out 0"],
                            extra=["bridge_protocol_version mqttv50"] + extra))
        assert wait_for(lambda: cat.connect is not None, 10)
        props = cat.connect["props"]
        assert cat.connect["level"] == 5
        assert props.get(raw.SESSION_EXPIRY) == expiry, props
        assert props.get(raw.RECEIVE_MAXIMUM) == rmax, props
    finally:
        cat.close()


# ---- configuration ----

@pytest.mark.ternd_only
@pytest.mark.parametrize("lines,words", [
    (["start_type sometimes"], ["start_type"]),
    (["threshold 0"], ["threshold"]),
    (["idle_timeout -1"], ["idle_timeout"]),
    (["round_robin maybe"], ["round_robin"]),
    (["bridge_receive_maximum 0"], ["bridge_receive_maximum"]),
    (["bridge_max_packet_size 3"], ["bridge_max_packet_size"]),
    (["local_password p"], ["local_username"]),
    (["bridge_certfile c.pem", "bridge_cafile ca.pem"], ["bridge_keyfile"]),
    (["bridge_tls_version tlsv1.1"], ["bridge_tls_version", "TLS 1.2"]),
    (["bridge_require_ocsp true"], ["bridge_require_ocsp needs bridge TLS"]),
    (["bridge_identity me", "bridge_psk 00ff", "bridge_capath /etc/ssl"], ["not both"]),
    (["local_clientid same", "connection b", "address 127.0.0.1", "topic y",
      "local_clientid same"], ["local_clientid same"]),
    (["address 127.0.0.1:1 127.0.0.1:2 127.0.0.1:3 127.0.0.1:4 127.0.0.1:5 127.0.0.1:6 "
      "127.0.0.1:7 127.0.0.1:8"], ["more than 8 addresses"]),
])
def test_bad_option_is_refused_with_the_reason(tmp_path, lines, words):
    conf = tmp_path / "b.conf"
    conf.write_text("\n".join(["listener %d 127.0.0.1" % free_port(), "connection a",
                               "address 127.0.0.1", "topic x"] + lines) + "\n")
    cp = subprocess.run([broker_binary(), "--test-config", "-c", str(conf)],
                        capture_output=True, timeout=5, stdin=subprocess.DEVNULL)
    err = cp.stderr.decode("utf-8", "replace")
    assert cp.returncode != 0, err
    for w in words:
        assert w in err, err
