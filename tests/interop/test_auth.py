"""Authentication (password_file, allow_anonymous) and authorization
(acl_file), in mosquitto's formats and with mosquitto's meanings; SIGHUP
reloads both without dropping connections. Password files are made with
Debian's mosquitto_passwd, so the format is checked against the reference
tool, not against our own writer."""

import os
import select
import signal
import subprocess
import time
import urllib.request

import pytest

import mqtt_raw as m
from conftest import WORKER_COUNTS, free_port
from helpers import read_log, wait_log

pytestmark = pytest.mark.ternd_only

ACL = """\
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic read shared/#
topic write shared/alice
topic deny alice/secret

user bob
topic read shared/#
topic write will/bob

pattern readwrite dev/%c/#
"""


def write_passwd(path, users):
    """users: name -> password, or name -> (password, PBKDF2 iterations)
    for a hash slow enough that tests can see a check in progress."""
    first = True
    for user, pw in users.items():
        iters = []
        if isinstance(pw, tuple):
            pw, n = pw
            iters = ["-I", str(n)]
        args = (["mosquitto_passwd", "-b"] + iters + (["-c"] if first else [])
                + [path, user, pw])
        subprocess.run(args, check=True, capture_output=True)
        first = False


# PBKDF2 rounds that make one check take ~0.1 s here (a check of the
# default 101 rounds takes ~0.15 ms): slow enough that a client sees a
# check in progress, and a burst of them, in the tests below.
SLOW = 100000


@pytest.fixture(params=WORKER_COUNTS, ids=["w%d" % w for w in WORKER_COUNTS])
def workers(request):
    return request.param


@pytest.fixture
def auth_broker(request, tmp_path):
    from conftest import Broker
    pw = str(tmp_path / "passwd")
    write_passwd(pw, {"alice": "wonderland", "bob": "builder"})
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    b = Broker(tmp_path, 2, ["password_file " + pw, "acl_file " + str(acl),
                             "allow_anonymous true", "storage memory"])
    b.pw, b.acl = pw, str(acl)
    b.start()
    yield b
    b.stop()


def login(broker, user, pw, version=m.V311, cid=None, expect=0, timeout=5.0, **kw):
    c = broker.raw(version, timeout=timeout)
    kwargs = dict(kw)
    if user is not None:
        kwargs["username"] = user
    if pw is not None:
        kwargs["password"] = pw.encode()
    ack = c.connect(cid or "c-%s-%d" % (user, version), expect_rc=None, **kwargs)
    assert ack.rc == expect, ack
    return c


@pytest.mark.parametrize("version,bad,anon", [(m.V311, 0x05, 0x05), (m.V5, 0x86, 0x87)])
def test_password_file_and_allow_anonymous(tmp_path, workers, version, bad, anon):
    """Right password: in. Wrong password or unknown user: CONNACK 0x86 (v5),
    "the Server does not accept the User Name or Password", / 5 (3.1.1; its 4
    is for malformed data, and 5 is what mosquitto answers). No username
    with allow_anonymous false: 0x87 / 0x05."""
    from conftest import Broker
    pw = str(tmp_path / "passwd")
    write_passwd(pw, {"alice": "wonderland"})
    b = Broker(tmp_path, workers,
               ["password_file " + pw, "allow_anonymous false", "storage memory"])
    b.start()
    try:
        login(b, "alice", "wonderland", version).disconnect()
        login(b, "alice", "wrong", version, expect=bad)
        login(b, "mallory", "wonderland", version, expect=bad)
        login(b, "alice", None, version, expect=bad)
        login(b, None, None, version, expect=anon)
    finally:
        b.stop()


def test_acl_publish_denied_v5_gets_0x87_and_is_not_delivered(auth_broker):
    """A PUBLISH the ACL denies is dropped; v5 says so with PUBACK 0x87,
    3.1.1 gets a plain PUBACK (it cannot say more), as in mosquitto."""
    reader = login(auth_broker, "alice", "wonderland", cid="reader")
    assert reader.subscribe([("shared/#", 1)]).codes == [1]
    v5 = login(auth_broker, "bob", "builder", m.V5, cid="bob5")
    assert v5.publish("shared/x", b"no", qos=1).rc == 0x87
    v3 = login(auth_broker, "bob", "builder", m.V311, cid="bob3")
    assert v3.publish("shared/y", b"no", qos=1).rc == 0
    ok = login(auth_broker, "alice", "wonderland", m.V5, cid="alice5")
    assert ok.publish("shared/alice", b"yes", qos=1, pid=3).rc == 0
    got = [p.payload for p in reader.recv_all(0.8) if p.type == m.PUBLISH]
    assert got == [b"yes"]
    for c in (reader, v5, v3, ok):
        c.disconnect()


@pytest.mark.parametrize("version,code", [(m.V311, 0x80), (m.V5, 0x80)])
def test_acl_subscribe_denied(auth_broker, version, code):
    """A SUBSCRIBE whose filter matches no topic the ACL lets the client read
    gets 0x80 (v5 too: Paho's test_subscribe_failure wants it); the other filters in the same packet are
    granted, "#" too, since bob may read shared/# (what "#" then delivers
    is checked message by message, test_acl.py)."""
    c = login(auth_broker, "bob", "builder", version)
    assert c.subscribe([("shared/#", 1), ("alice/#", 1), ("#", 0)]).codes == [1, code, 0]
    c.disconnect()


def test_acl_checks_every_delivery_including_retained(auth_broker):
    """Read access is checked for each message delivered, retained ones too:
    alice may read alice/# except alice/secret (deny)."""
    w = login(auth_broker, "alice", "wonderland", cid="alice-w")
    w.publish("alice/open", b"o", qos=1, retain=True)
    w.publish("alice/secret", b"s", qos=1, retain=True)
    r = login(auth_broker, "alice", "wonderland", cid="alice-r")
    r.subscribe([("alice/open", 1), ("alice/secret", 1)])
    got = [p.payload for p in r.early + r.recv_all(0.8) if p.type == m.PUBLISH]
    assert got == [b"o"]
    w.disconnect()
    r.disconnect()


def test_acl_anonymous_rules_and_patterns(auth_broker):
    """Rules before any `user` line are for anonymous clients; `pattern`
    rules apply to everyone with %c replaced by the client id."""
    anon = login(auth_broker, None, None, cid="anon1")
    assert anon.subscribe([("public/#", 0), ("shared/#", 0)]).codes == [0, 0x80]
    assert anon.subscribe([("dev/anon1/#", 1)], pid=2).codes == [1]
    assert anon.subscribe([("dev/other/#", 1)], pid=3).codes == [0x80]
    anon.disconnect()


def test_will_topic_checked_at_connect(auth_broker):
    """A will on a topic the client may not write is refused at CONNECT."""
    login(auth_broker, "bob", "builder", m.V5, cid="will-bad",
          will={"topic": "alice/x", "payload": b"w"}, expect=0x87)
    login(auth_broker, "bob", "builder", m.V5, cid="will-ok",
          will={"topic": "will/bob", "payload": b"w"}).disconnect()


def test_sighup_reloads_without_dropping_connections(auth_broker):
    """SIGHUP reloads password and ACL files; connected clients stay
    connected; a bad file on reload keeps the old one and the log says
    why."""
    keep = login(auth_broker, "alice", "wonderland", cid="keeper")
    write_passwd(auth_broker.pw, {"alice": "newpass", "bob": "builder"})
    os.kill(auth_broker.proc.pid, signal.SIGHUP)
    time.sleep(0.5)
    login(auth_broker, "alice", "wonderland", expect=0x05, cid="old-pw")
    login(auth_broker, "alice", "newpass", cid="new-pw").disconnect()
    keep.send(m.pingreq())
    assert keep.recv_type(m.PINGRESP)
    # A broken ACL file: the reload is refused, the old rules stay.
    with open(auth_broker.acl, "w") as f:
        f.write("topic sideways a/b\nuser\n")
    os.kill(auth_broker.proc.pid, signal.SIGHUP)
    time.sleep(0.5)
    c = login(auth_broker, "bob", "builder", cid="bob-after")
    assert c.subscribe([("shared/#", 1)]).codes == [1]
    c.disconnect()
    with open(auth_broker.log) as f:
        assert "previous password and ACL files stay in force" in f.read()
    keep.disconnect()


# ---- password checks off the event loop -----------------------------------
# A PBKDF2 check runs on the broker's password threads, not on the worker
# that handles the connection; the connection reads nothing more until the
# verdict is in, and the CONNECT is hashed once even when the connection
# moves to its session's home worker.

def start_pw_broker(tmp_path, workers, users, *extra):
    from conftest import Broker
    pw = str(tmp_path / "passwd")
    write_passwd(pw, users)
    b = Broker(tmp_path, workers, ["password_file " + pw, "allow_anonymous true",
                                   "storage memory"] + list(extra))
    b.pw = pw
    b.start()
    return b


def answered_within(clients, seconds):
    """The clients that have bytes to read (or a close) within `seconds`."""
    deadline = time.monotonic() + seconds
    ready = []
    while True:
        left = [c for c in clients if c not in ready]
        remaining = deadline - time.monotonic()
        if not left or remaining <= 0:
            return ready
        r, _, _ = select.select([c.sock for c in left], [], [], remaining)
        ready += [c for c in left if c.sock in r]


def test_pingreq_is_answered_while_a_burst_of_bad_passwords_is_checked(tmp_path, workers):
    """While ten CONNECTs with a wrong password (a 0.1 s PBKDF2 each) are
    checked, a connected client's PINGREQ sent after them is answered
    [MQTT-3.12.4-1] before most of them. When the worker hashed them itself,
    the PINGREQ waited behind every check and went out in the same write-out
    as all their CONNACKs: then every CONNACK is there as soon as the
    PINGRESP is. This is about order, not speed: the margin is seconds."""
    n = 10
    b = start_pw_broker(tmp_path, workers, {"slow": ("right", SLOW)})
    try:
        pinger = b.raw(m.V311, timeout=30)
        pinger.connect("pinger")
        burst = [b.raw(m.V311, timeout=30) for _ in range(n)]
        # The burst's sockets are accepted before their CONNECTs go out: a
        # worker handles its listening socket's readiness, which came
        # first, before this PINGREQ.
        pinger.send(m.pingreq())
        pinger.recv_type(m.PINGRESP)
        for i, c in enumerate(burst):
            c.send(m.connect("bad-%d" % i, username="slow", password=b"wrong"))
        pinger.send(m.pingreq())
        pinger.recv_type(m.PINGRESP)
        done = answered_within(burst, 0.05)
        assert len(done) < n // 2, (
            "%d of %d CONNECTs were answered together with the PINGRESP: the "
            "PINGREQ waited for their password checks" % (len(done), n))
        for c in burst:
            assert c.recv_type(m.CONNACK).rc == 0x05  # not authorized: wrong password
        assert b.alive()
    finally:
        b.stop()


def test_burst_of_good_and_bad_passwords_each_gets_its_own_verdict(tmp_path, workers):
    """Verdicts come back from other threads matched to their connection:
    in a burst of interleaved right and wrong passwords (3.1.1 and v5, ids
    homed on every worker), each client gets the answer for its own
    password: 0 / 0x05 (3.1.1), 0x00 / 0x86 (v5) [MQTT-3.2.2-4]."""
    b = start_pw_broker(tmp_path, workers, {"alice": ("wonderland", 2000), "bob": "builder"})
    try:
        cases = []
        for i in range(40):
            version = m.V5 if i % 3 == 0 else m.V311
            good = i % 2 == 0
            user = "alice" if i % 4 < 2 else "bob"
            pw = {"alice": "wonderland", "bob": "builder"}[user] if good else "nope-%d" % i
            c = b.raw(version, timeout=20)
            c.send(m.connect("mix-%d" % i, version=version, username=user,
                             password=pw.encode()))
            want = 0 if good else (0x86 if version == m.V5 else 0x05)
            cases.append((c, want))
        for i, (c, want) in enumerate(cases):
            assert c.recv_type(m.CONNACK).rc == want, i
        for c, want in cases:
            if want == 0:
                assert c.is_open()
            c.close()
    finally:
        b.stop()


def scrape_counter(port, name):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("%s not in /metrics" % name)


def test_each_password_is_hashed_once_even_when_handed_over(tmp_path, workers):
    """A connection moves to its session's home worker after CONNECT; its
    password is checked once, before the move, and the verdict moves with
    it (tern_password_checks_total counts the hashes)."""
    port = free_port()
    b = start_pw_broker(tmp_path, workers, {"alice": "wonderland"}, "http_listener %d" % port)
    try:
        for i in range(12):  # with 2 workers, about half are handed over
            login(b, "alice", "wonderland", cid="once-%d" % i).disconnect()
        login(b, "alice", "wrong", cid="once-bad", expect=0x05)
        login(b, None, None, cid="once-anon").disconnect()  # no password: no hash
        assert scrape_counter(port, "tern_password_checks_total") == 13
    finally:
        b.stop()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_packets_behind_connect_wait_for_the_password_verdict(tmp_path, workers, version):
    """A client may send packets right behind its CONNECT [MQTT-3.1.4-5 of
    3.1.1: "Clients are allowed to send further Control Packets immediately
    after sending a CONNECT"]. While the password is checked they wait:
    CONNACK comes first [MQTT-3.2.0-1], then the PUBACK of the PUBLISH and
    the PINGRESP, and the message is delivered. After a refused CONNECT
    nothing behind it is processed (3.1.1 [MQTT-3.1.4-5], v5
    [MQTT-3.1.4-6])."""
    b = start_pw_broker(tmp_path, workers, {"alice": ("wonderland", 20000)})
    try:
        sub = b.raw(m.V311)
        sub.connect("behind-sub")
        sub.subscribe([("behind/#", 1)])
        for i in range(4):  # client ids homed on every worker
            c = b.raw(version)
            c.send(m.connect("behind-%d-%d" % (version, i), version=version,
                             username="alice", password=b"wonderland")
                   + m.publish("behind/ok", b"%d" % i, qos=1, pid=7, version=version)
                   + m.pingreq())
            got = [c.recv().type for _ in range(3)]
            # CONNACK first; PUBACK and PINGRESP in either order (the
            # PUBACK may wait for a commit: JetStream's, in a cluster).
            assert got[0] == m.CONNACK and sorted(got[1:]) == sorted([m.PUBACK, m.PINGRESP]), \
                [m.TYPE_NAMES[t] for t in got]
            p = sub.recv_publish()
            assert (p.topic, p.payload) == ("behind/ok", b"%d" % i)
            c.disconnect()
        bad = b.raw(version)
        bad.send(m.connect("behind-bad", version=version, username="alice",
                           password=b"wrong")
                 + m.publish("behind/no", b"x", qos=1, pid=8, version=version)
                 + m.pingreq())
        rest = bad.wait_closed()
        assert [p.type for p in rest] == [m.CONNACK], rest
        assert rest[0].rc == (0x86 if version == m.V5 else 0x05)
        assert sub.no_packet(0.5)
        sub.disconnect()
    finally:
        b.stop()


def test_client_gone_before_its_verdict(tmp_path, workers):
    """Clients that reset or close their connection while their password is
    checked: the verdict finds no connection and is dropped; those that
    reset are never logged as connected; the broker carries on."""
    b = start_pw_broker(tmp_path, workers, {"slow": ("right", SLOW)})
    try:
        gone = []
        for i in range(6):
            c = b.raw(m.V311)
            c.send(m.connect("gone-%d" % i, username="slow", password=b"right"))
            gone.append(c)
        for i, c in enumerate(gone):
            if i % 2:
                c.close()
            else:
                c.abort()  # RST
        # Queued behind the six checks.
        login(b, "slow", "right", cid="after-gone", timeout=20).disconnect()
        time.sleep(0.3)
        assert b.alive()
        with open(b.log) as f:
            log = f.read()
        for i in range(0, 6, 2):
            assert "as gone-%d " % i not in log, log
    finally:
        b.stop()


def test_sighup_while_passwords_are_checked(tmp_path, workers):
    """A reload while checks are in flight: each is checked against the
    files in force when its CONNECT arrived (the request holds that state),
    later CONNECTs against the new ones, and nothing is lost or freed too
    early."""
    b = start_pw_broker(tmp_path, workers, {"slow": ("old", SLOW // 2)})
    try:
        pinger = b.raw(m.V311)
        pinger.connect("hup-pinger")
        burst = []
        for i in range(8):
            c = b.raw(m.V311, timeout=30)
            c.send(m.connect("hup-%d" % i, username="slow", password=b"old"))
            burst.append(c)
        pinger.send(m.pingreq())
        pinger.recv_type(m.PINGRESP)
        write_passwd(b.pw, {"slow": ("new", 101)})
        os.kill(b.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(b.log) as f:
                if "Reloaded the password" in f.read():
                    break
            time.sleep(0.05)
        login(b, "slow", "new", cid="hup-new", timeout=30).disconnect()
        login(b, "slow", "old", cid="hup-old", expect=0x05, timeout=30)
        for i, c in enumerate(burst):
            assert c.recv_type(m.CONNACK).rc == 0, i
            assert c.is_open()
            c.disconnect()
        assert pinger.is_open()
        pinger.disconnect()
    finally:
        b.stop()


def test_connect_deadline_applies_while_the_password_is_checked(tmp_path):
    """connect_timeout counts from the TCP accept and still applies while a
    CONNECT waits for its password verdict: a check that outlasts it ends
    the connection without a CONNACK, and the late verdict is dropped."""
    b = start_pw_broker(tmp_path, 1, {"slow": ("right", 20 * SLOW)}, "connect_timeout 1")
    try:
        c = b.raw(m.V311, timeout=10)
        time.sleep(0.5)  # half the deadline gone before the CONNECT
        c.send(m.connect("late", username="slow", password=b"right"))
        # Closed at the deadline: had the verdict (~2 s of hashing) been
        # waited for, a CONNACK would come first.
        got = c.wait_closed(10)
        assert got == [], got
        # The log writer thread (util/log.c) may write the line after the
        # close is seen here: wait for it, bounded.
        assert wait_log(b, "no CONNECT in time"), read_log(b)
        login(b, None, None, cid="after-late").disconnect()
        assert b.alive()
    finally:
        b.stop()
