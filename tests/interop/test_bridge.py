"""Bridges (mosquitto.conf(5) `connection` blocks, issue 13): the broker under
test (ternd; mosquitto with TERN_TEST_AGAINST=mosquitto, which checks these
tests against mosquitto's own bridge) connects to a remote Debian mosquitto
that each test starts on a free port, and forwards the configured topics.

What is checked: QoS 0/1/2 in both directions, topic remapping with
prefixes, no loops with `both`, the retained "1"/"0" notifications, the
reconnect after the remote restarts (nothing acknowledged lost, QoS 2 not
duplicated), the local side's persistence across a restart of the bridging
broker, and the configuration errors."""

import os
import subprocess
import time

import pytest

from bridge_peer import connected, pair_factory  # noqa: F401 (a fixture)
from conftest import MOSQUITTO, MOSQUITTO_BIN, broker_binary, free_port
from helpers import PahoClient, unique, wait_for

pytestmark = pytest.mark.skipif(not os.path.exists(MOSQUITTO_BIN),
                                reason="needs Debian's mosquitto as the remote broker")

@pytest.mark.parametrize("qos", [0, 1, 2])
def test_out_forwards_each_qos_to_the_remote(pair_factory, qos):
    """`topic out/# out 2`: what is published locally under out/ reaches a
    subscriber of the remote, with the QoS min(published, topic's)."""
    p = pair_factory(["out/# out 2", "probe/# out 0"])
    assert connected(p, "probe/x")
    sub = PahoClient(p.remote)
    sub.subscribe("out/#", 2)
    pub = PahoClient(p.local)
    for i in range(5):
        pub.publish("out/a", b"m%d" % i, qos)
    got = sub.get_n(5, timeout=10)
    assert [m.payload for m in got] == [b"m%d" % i for i in range(5)]
    assert all(m.qos == qos for m in got)
    assert all(m.topic == "out/a" for m in got)
    sub.nothing()


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_in_forwards_each_qos_from_the_remote(pair_factory, qos):
    """`topic in/# in 2`: what is published on the remote under in/ reaches a
    local subscriber."""
    p = pair_factory(["in/# in 2", "probe/# out 0"])
    assert connected(p, "probe/x")
    sub = PahoClient(p.local)
    sub.subscribe("in/#", 2)
    pub = PahoClient(p.remote)
    for i in range(5):
        pub.publish("in/a", b"m%d" % i, qos)
    got = sub.get_n(5, timeout=10)
    assert [m.payload for m in got] == [b"m%d" % i for i in range(5)]
    assert all(m.qos == qos for m in got)
    sub.nothing()


def test_topic_qos_caps_the_forwarded_qos(pair_factory):
    """The QoS of a topic line is the bridge's subscription QoS: a QoS 2
    publish forwarded over a QoS 1 line arrives with QoS 1."""
    p = pair_factory(["capped/# out 1", "probe/# out 0"])
    assert connected(p, "probe/x")
    sub = PahoClient(p.remote)
    sub.subscribe("capped/#", 2)
    pub = PahoClient(p.local)
    pub.publish("capped/x", b"q", 2)
    assert sub.get(timeout=10).qos == 1


def test_prefixes_remap_topics_both_ways(pair_factory):
    """`topic # both 1 here/ there/`: local here/X is remote there/X and
    back; other topics do not cross (mosquitto.conf(5)'s remapping table,
    first row)."""
    p = pair_factory(["# both 1 here/ there/", "probe/# out 0"])
    assert connected(p, "probe/x")
    rsub = PahoClient(p.remote)
    rsub.subscribe("#", 1)
    lsub = PahoClient(p.local)
    lsub.subscribe("#", 1)
    lpub = PahoClient(p.local)
    lpub.publish("here/a/b", b"out", 1)
    lpub.publish("elsewhere/a", b"no", 1)
    got = [m for m in rsub.drain(2.0) if not m.topic.startswith("$")]
    assert [(m.topic, m.payload) for m in got if m.payload != b"probe"] == [("there/a/b", b"out")]
    rpub = PahoClient(p.remote)
    rpub.publish("there/c", b"in", 1)
    rpub.publish("nowhere/c", b"no", 1)
    got = [(m.topic, m.payload) for m in lsub.drain(2.0)
           if not m.topic.startswith("$") and m.payload not in (b"probe", b"out", b"no")]
    assert got == [("here/c", b"in")]


def test_empty_pattern_maps_one_topic(pair_factory):
    """`topic "" in 0 local/one remote/one`: the remote topic remote/one is
    the local topic local/one (the table's "remap single local topic to
    remote" row)."""
    p = pair_factory(['"" in 1 local/one remote/one', "probe/# out 0"])
    assert connected(p, "probe/x")
    lsub = PahoClient(p.local)
    lsub.subscribe("local/#", 1)
    rpub = PahoClient(p.remote)
    rpub.publish("remote/one", b"single", 1)
    rpub.publish("remote/one/more", b"not this", 1)
    got = lsub.drain(2.0)
    assert [(m.topic, m.payload) for m in got] == [("local/one", b"single")]


@pytest.mark.parametrize("version", ["mqttv311", "mqttv50"])
def test_both_direction_does_not_loop(pair_factory, version):
    """`topic loop/# both 1`: a message published on either side arrives
    once at the subscribers of each side, never echoed back: No Local on the
    local subscriptions, try_private (3.1.1) or No Local (v5) on the
    remote."""
    p = pair_factory(["loop/# both 1", "probe/# out 0"],
                     bridge_extra=["bridge_protocol_version " + version])
    assert connected(p, "probe/x")
    lsub = PahoClient(p.local)
    lsub.subscribe("loop/#", 1)
    rsub = PahoClient(p.remote)
    rsub.subscribe("loop/#", 1)
    PahoClient(p.local).publish("loop/l", b"from-local", 1)
    PahoClient(p.remote).publish("loop/r", b"from-remote", 1)
    lgot = sorted(m.payload for m in lsub.drain(2.0))
    rgot = sorted(m.payload for m in rsub.drain(2.0))
    assert lgot == [b"from-local", b"from-remote"]
    assert rgot == [b"from-local", b"from-remote"]


def test_retained_flag_crosses_the_bridge(pair_factory):
    """A retained local message is retained on the remote too (Retain As
    Published on the bridge's subscriptions): a subscriber that comes later
    gets it."""
    p = pair_factory(["ret/# out 1", "probe/# out 0"])
    assert connected(p, "probe/x")
    PahoClient(p.local).publish("ret/x", b"kept", 1, retain=True)
    late = PahoClient(p.remote)
    assert wait_for(lambda: late.subscribe("ret/#", 1) is not None and
                    any(m.payload == b"kept" and m.retain for m in late.drain(0.5)), 10)


def test_notifications_state_retained_locally_and_remotely(pair_factory):
    """notifications (on by default): the bridge's state is a retained "1"
    on $SYS/broker/connection/<remote_clientid>/state, locally and on the
    remote; it turns "0" locally when the remote goes, and "1" again once
    the bridge is back."""
    p = pair_factory(["probe/# out 0"], bridge_extra=["remote_clientid brid"])
    topic = "$SYS/broker/connection/brid/state"
    assert connected(p, "probe/x")
    rsub = PahoClient(p.remote)
    rsub.subscribe(topic, 1)
    m = rsub.get(timeout=5)
    assert m.payload == b"1" and m.retain
    lsub = PahoClient(p.local)
    lsub.subscribe(topic, 1)
    m = lsub.get(timeout=5)
    assert m.payload == b"1" and m.retain
    rsub.stop()
    p.remote.stop()
    m = lsub.get(timeout=10)
    assert m.payload == b"0"
    p.remote.start()
    m = lsub.get(timeout=15)
    assert m.payload == b"1"


def test_notification_topic_and_off(pair_factory):
    """notification_topic names the topic; notifications false publishes
    nothing."""
    p = pair_factory(["probe/# out 0"], bridge_extra=["notification_topic state/b1"])
    assert connected(p, "probe/x")
    lsub = PahoClient(p.local)
    lsub.subscribe("state/b1", 1)
    assert lsub.get(timeout=5).payload == b"1"
    q = pair_factory(["probe/# out 0"], bridge_extra=["notifications false",
                                                      "remote_clientid quiet"])
    assert connected(q, "probe/x")
    s = PahoClient(q.local)
    s.subscribe("$SYS/broker/connection/#", 1)
    r = PahoClient(q.remote)
    r.subscribe("$SYS/broker/connection/#", 1)
    s.nothing(1.0)
    r.nothing(0.5)


def test_remote_credentials_and_client_id(pair_factory, tmp_path):
    """remote_clientid, remote_username and remote_password go into the
    CONNECT to the remote: a remote with a password file lets the bridge in
    only with them."""
    pw = tmp_path / "remote.passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "bridgeuser", "s3cret"],
                   check=True, capture_output=True, timeout=10)
    os.chmod(str(pw), 0o644)
    p = pair_factory(["out/# out 1", "probe/# out 0"],
                     bridge_extra=["remote_clientid the-bridge", "remote_username bridgeuser",
                                   "remote_password s3cret"],
                     remote_extra=["password_file " + str(pw), "allow_anonymous true"])
    assert connected(p, "probe/x")
    with open(p.remote.log, errors="replace") as f:
        log = f.read()
    assert "as the-bridge" in log and "u'bridgeuser'" in log, log[-2000:]


def test_local_acl_and_listener_rules_do_not_apply_to_the_bridge(pair_factory, tmp_path):
    """The bridge's local session is the broker's own: an acl_file that
    grants nothing to it (it has no username, and anonymous clients are not
    allowed) and accept_protocol_versions 4 (its local CONNECT is v5) do
    not stop it, as mosquitto's ACL check lets bridges through."""
    pw = tmp_path / "local.passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "alice", "pw"], check=True,
                   capture_output=True, timeout=10)
    acl = tmp_path / "local.acl"
    acl.write_text("user alice\ntopic readwrite #\n")
    os.chmod(str(pw), 0o644)
    os.chmod(str(acl), 0o644)
    extra = ["password_file " + str(pw), "acl_file " + str(acl), "allow_anonymous false"]
    if not MOSQUITTO:
        extra.append("accept_protocol_versions 4")
    p = pair_factory(["a/# both 1", "probe/# out 0"], local_extra=extra)
    p.local.anonymous = False
    alice = {"username": "alice", "password": "pw"}
    assert connected(p, "probe/x", **alice)
    lsub = PahoClient(p.local, **alice)
    lsub.subscribe("a/#", 1)
    rsub = PahoClient(p.remote)
    rsub.subscribe("a/#", 1)
    PahoClient(p.remote).publish("a/in", b"in", 1)
    assert lsub.get(timeout=10).payload == b"in"
    PahoClient(p.local, **alice).publish("a/out", b"out", 1)
    assert [m.payload for m in rsub.get_n(2, timeout=10)] == [b"in", b"out"]


def test_reconnects_when_the_remote_starts_later(pair_factory):
    """A remote that is not up when the bridge starts is retried every
    restart_timeout (1 s here), and the bridge connects once it is."""
    p = pair_factory(["probe/# out 0"], start_remote=False)
    time.sleep(1.5)
    p.remote.start()
    assert connected(p, "probe/x", timeout=15)


@pytest.mark.parametrize("qos", [1, 2])
def test_remote_restart_loses_nothing_acknowledged_and_no_duplicates(pair_factory, qos):
    """Local -> remote, QoS 1/2, while the remote (with persistence) is
    stopped and started again mid-stream: every message the local publisher
    got PUBACK / PUBCOMP for reaches the remote's persistent subscriber, and
    with QoS 2 each exactly once (the bridge's remote session is resumed,
    libtern resends with DUP and the same packet id)."""
    p = pair_factory(["s/# out 2", "probe/# out 0"], remote_persistent=True)
    assert connected(p, "probe/x", timeout=15)
    # The remote's subscriber: a persistent session that waits offline, so
    # the remote queues (and persists) what the bridge forwards.
    cid = unique("rsub")
    sub = PahoClient(p.remote, client_id=cid, clean=False)
    sub.subscribe("s/#", qos)
    sub.disconnect()
    pub = PahoClient(p.local)
    n = 60
    for i in range(n):
        pub.publish("s/x", b"%d" % i, qos)  # waits for the local ack
        if i == 20:
            p.remote.stop()
        if i == 30:
            p.remote.start()
        time.sleep(0.02)
    pub.disconnect()
    assert connected(p, "probe/x", timeout=15)
    sub = PahoClient(p.remote, client_id=cid, clean=False)
    got = [m.payload for m in sub.drain(3.0)]
    ids = sorted(int(x) for x in got)
    assert sorted(set(ids)) == list(range(n)), "missing: %r" % sorted(set(range(n)) - set(ids))
    if qos == 2:
        assert ids == list(range(n)), "duplicates: %r" % [i for i in set(ids) if ids.count(i) > 1]


@pytest.mark.ternd_only
def test_local_session_survives_a_restart_of_ternd(pair_factory, tmp_path):
    """cleansession false (the default): the bridge's local session is
    persistent and stored, so messages published locally while the remote
    is down stay queued across a restart of ternd and are forwarded once the
    remote is back."""
    p = pair_factory(["keep/# out 1", "probe/# out 0"], remote_persistent=True,
                     local_extra=["persistence true",
                                  "persistence_location %s/" % tmp_path])
    assert connected(p, "probe/x")
    cid = unique("rsub")
    sub = PahoClient(p.remote, client_id=cid, clean=False)
    sub.subscribe("keep/#", 1)
    sub.disconnect()
    p.remote.stop()
    pub = PahoClient(p.local)
    for i in range(10):
        pub.publish("keep/x", b"%d" % i, 1)
    pub.disconnect()
    p.restart_local()
    p.remote.start()
    assert connected(p, "probe/x", timeout=15)
    sub = PahoClient(p.remote, client_id=cid, clean=False)
    got = sorted(int(m.payload) for m in sub.drain(3.0))
    assert sorted(set(got)) == list(range(10))


# ---- configuration ----

def run_config(tmp_path, lines):
    conf = os.path.join(str(tmp_path), "bridge.conf")
    with open(conf, "w") as f:
        f.write("listener %d 127.0.0.1\n" % free_port() + "\n".join(lines) + "\n")
    try:
        cp = subprocess.run([broker_binary(), "-c", conf], capture_output=True, timeout=5,
                            stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("the broker kept running with a bad bridge config")
    return cp.returncode, cp.stderr.decode("utf-8", "replace") + cp.stdout.decode(
        "utf-8", "replace")


@pytest.mark.ternd_only
@pytest.mark.parametrize("lines,words", [
    (["address 127.0.0.1:1883"], ["address", "connection"]),
    (["connection a", "topic x/#"], ["connection a", "address"]),
    (["connection a", "address 127.0.0.1"], ["connection a", "topic"]),
    (["connection a", "address 127.0.0.1", "topic x sideways"], ["direction"]),
    (["connection a", "address 127.0.0.1", "topic x out 3"], ["topic"]),
    (["connection a", "address 127.0.0.1", 'topic "" out 0 l/ ""'], ["empty pattern"]),
    (["connection a", "address 127.0.0.1", "topic x out 0 l/+ r/"], ["prefix"]),
    (["connection a", "address 127.0.0.1:0", "topic x"], ["address"]),
    (["connection a", "address 127.0.0.1", "topic x", "bridge_protocol_version mqttv4"],
     ["bridge_protocol_version"]),
    (["connection a", "address 127.0.0.1", "topic x", "keepalive_interval 2"],
     ["keepalive_interval"]),
    (["connection a", "address 127.0.0.1", "topic x", "restart_timeout 10 5"],
     ["restart_timeout"]),
    (["connection a", "address 127.0.0.1", "topic x", "cleansession yes"], ["cleansession"]),
    (["connection a", "address 127.0.0.1", "topic x", "remote_password p"],
     ["remote_username"]),
    (["connection a", "address 127.0.0.1", "topic x", "connection a", "address 127.0.0.1",
      "topic y"], ["defined twice"]),
])
def test_bad_bridge_config_is_refused_with_the_reason(tmp_path, lines, words):
    """A bridge directive out of place or with a bad value stops the broker
    at start, with a message naming it (DESIGN.md: never silently
    ignored)."""
    rc, err = run_config(tmp_path, lines)
    assert rc != 0, err
    for w in words:
        assert w in err, err
