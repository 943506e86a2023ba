"""`tern pub` / `tern sub` (src/tools), and through them libtern, against BOTH
ternd and Debian's mosquitto broker.

Every broker-facing test runs twice, once per broker (fixture `mb`, started
here on a free 127.0.0.1 port whatever TERN_TEST_AGAINST says), so that the
client is shown to be independent of our broker's quirks. Cross-client
tests pair the tool with mosquitto_pub / mosquitto_sub, paho-mqtt and the
raw client of mqtt_raw.py.

Environment: TERN_CLI is the tern binary (tests/CMakeLists.txt sets it),
TERND the ternd binary. Waiting is event-driven: `tern sub -d` prints
"Subscribed:" on stderr after its SUBACK, and the tests wait for that line
rather than sleeping.
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import time

import pytest

from conftest import cluster_mode_lines, free_port, tail, wait_port
from helpers import PahoClient, props, unique
from mqtt_raw import PUBLISH, RawClient, V311, V5

from paho.mqtt.packettypes import PacketTypes

HOST = "127.0.0.1"
MOSQUITTO_BIN = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
TIMEOUT = 8


def tern_binary():
    path = os.environ.get("TERN_CLI")
    if not path:
        candidate = os.path.join(os.path.dirname(__file__), "..", "..", "build",
                                 "src", "tools", "tern")
        if os.path.exists(candidate):
            path = os.path.abspath(candidate)
    if not path:
        pytest.skip("TERN_CLI is not set (path to the tern binary)")
    if not os.path.exists(path):
        pytest.fail("TERN_CLI=%s does not exist" % path)
    return path


def ternd_binary():
    path = os.environ.get("TERND")
    if not path:
        candidate = os.path.join(os.path.dirname(__file__), "..", "..", "build", "ternd")
        if os.path.exists(candidate):
            path = os.path.abspath(candidate)
    if not path or not os.path.exists(path):
        pytest.skip("TERND is not set (path to the ternd binary)")
    return path


class Server:
    """ternd or mosquitto on a free loopback port; stopped by its PID."""

    def __init__(self, kind, directory, extra=()):
        self.kind = kind
        self.host = HOST
        self.dir = str(directory)
        self.extra = list(extra)
        self.conf = os.path.join(self.dir, "%s.conf" % kind)
        self.log = os.path.join(self.dir, "%s.log" % kind)
        self.proc = None
        self.port = None

    def start(self):
        if self.kind == "mosquitto":
            if not os.path.exists(MOSQUITTO_BIN):
                pytest.skip("%s is not installed" % MOSQUITTO_BIN)
            binary = MOSQUITTO_BIN
        else:
            binary = ternd_binary()
            # TERN_TEST_CLUSTER: a single-node cluster (conftest.py).
            self.extra += cluster_mode_lines(self.extra)
        for _attempt in range(3):
            self.port = free_port()
            lines = ["listener %d %s" % (self.port, HOST)]
            # A configured listener: anonymous clients need saying so, for
            # both brokers.
            if not any(l.startswith("allow_anonymous") for l in self.extra):
                lines.append("allow_anonymous true")
            if self.kind == "mosquitto":
                if os.getuid() == 0:
                    lines.append("user %s" % pwd.getpwuid(os.getuid()).pw_name)
            else:
                lines.append("workers 1")
            lines += self.extra
            with open(self.conf, "w") as f:
                f.write("\n".join(lines) + "\n")
            logf = open(self.log, "ab")
            self.proc = subprocess.Popen([binary, "-c", self.conf], stdout=logf,
                                         stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.dir)
            logf.close()
            if wait_port(self.port, self.proc):
                return self
            self.stop()
        raise RuntimeError("%s did not start:\n%s" % (self.kind, tail(self.log)))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(3)


@pytest.fixture(scope="module", params=["ternd", "mosquitto"])
def mb(request, tmp_path_factory):
    """One broker of each kind for the whole module (topics are unique per
    test, so tests do not see each other's messages)."""
    s = Server(request.param, tmp_path_factory.mktemp(request.param)).start()
    yield s
    died = not s.alive()
    s.stop()
    if died:
        pytest.fail("%s exited during the tests:\n%s" % (s.kind, tail(s.log)))


@pytest.fixture
def fresh_server(tmp_path):
    """Factory for a broker with extra config lines, stopped after the test."""
    started = []

    def make(kind, *extra):
        s = Server(kind, tmp_path, extra).start()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


# ---- running the tools ----

def conn_args(b, version=None):
    a = ["-h", b.host, "-p", str(b.port)]
    if version:
        a += ["-V", version]
    return a


def tern(args, stdin=None, timeout=TIMEOUT, check=True):
    cp = subprocess.run([tern_binary()] + list(args), input=stdin, capture_output=True,
                        timeout=timeout)
    if check:
        assert cp.returncode == 0, "tern %r failed (%d): %r %r" % (
            args, cp.returncode, cp.stdout, cp.stderr)
    return cp


def pub(b, topic, *args, version=None, stdin=None, check=True):
    return tern(["pub"] + conn_args(b, version) + ["-t", topic] + list(args),
                stdin=stdin, check=check)


class Sub:
    """A running `tern sub`, started with -d and returned once subscribed."""

    def __init__(self, b, topics, *args, version=None, env=None):
        argv = [tern_binary(), "sub", "-d"] + conn_args(b, version)
        for t in ([topics] if isinstance(topics, str) else topics):
            argv += ["-t", t]
        argv += list(args)
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        self.err_head = []
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.err_head.append(line)
            if line.startswith(b"Subscribed:"):
                return
        self.proc.kill()
        out, err = self.proc.communicate()
        raise AssertionError("tern sub did not subscribe: %r %r %r"
                             % (self.err_head, out, err))

    def finish(self, timeout=TIMEOUT, rc=0):
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError("tern sub did not finish: %r %r" % (out, err))
        err = b"".join(self.err_head) + err
        if rc is not None:
            assert self.proc.returncode == rc, (self.proc.returncode, out, err)
        self.err = err
        return out

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


def mosquitto_tools():
    for t in ("mosquitto_pub", "mosquitto_sub"):
        if shutil.which(t) is None:
            pytest.skip("%s is not installed" % t)


# ---- QoS round trips ----

@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_tern_pub_to_tern_sub_round_trip_at_each_qos(mb, qos, version):
    """tern pub → broker → tern sub -C 3 at QoS 0/1/2: the three messages
    arrive in order ([MQTT-4.6.0-6]) with the QoS asked for."""
    t = unique("rt")
    s = Sub(mb, t, "-q", str(qos), "-C", "3", "-F", "%q %p", "--nodelay", version=version)
    for i in range(3):
        pub(mb, t, "-q", str(qos), "-m", "m%d" % i, "-k", "5", "--nodelay", version=version)
    assert s.finish().splitlines() == [b"%d m%d" % (qos, i) for i in range(3)]


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_tern_pub_to_mosquitto_sub(mb, qos):
    """Messages published by tern pub are received by mosquitto_sub."""
    mosquitto_tools()
    t = unique("tm")
    proc = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-h", mb.host, "-p",
                             str(mb.port), "-t", t, "-q", str(qos), "-C", "2", "-W", "5",
                             "-d"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    while not any(b"SUBACK" in l for l in lines):
        line = proc.stdout.readline()
        assert line, lines
        lines.append(line)
    pub(mb, t, "-q", str(qos), "-m", "one")
    pub(mb, t, "-q", str(qos), "-m", "two")
    out, _ = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0
    got = [l for l in out.splitlines() if not l.startswith((b"Client ", b"Subscribed"))]
    assert got == [b"one", b"two"]


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_pub_to_tern_sub(mb, qos):
    """Messages published by mosquitto_pub are received by tern sub, with the
    granted QoS and the packet id shown by %q / %m."""
    mosquitto_tools()
    t = unique("mt")
    s = Sub(mb, t, "-q", str(qos), "-C", "2", "-F", "%q %p %m")
    for m in ("one", "two"):
        subprocess.run(["mosquitto_pub", "-h", mb.host, "-p", str(mb.port), "-t", t,
                        "-q", str(qos), "-m", m], check=True, timeout=TIMEOUT)
    lines = s.finish().splitlines()
    assert [l.split()[:2] for l in lines] == [[b"%d" % qos, b"one"], [b"%d" % qos, b"two"]]
    mids = [int(l.split()[2]) for l in lines]
    assert all(m > 0 for m in mids) if qos else mids == [0, 0]


# ---- sessions ----

@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_persistent_session_keeps_messages_while_offline(mb, version):
    """tern sub -c -i ID -E leaves a persistent session (v5: -x); QoS 1
    messages published meanwhile arrive at the next tern sub -c -i ID, which
    sees session present."""
    cid, t = unique("ps"), unique("pst")
    extra = ["-x", "60"] if version == "mqttv5" else []
    tern(["sub"] + conn_args(mb, version) + ["-c", "-i", cid, "-t", t, "-q", "1", "-E"]
         + extra)
    pub(mb, t, "-q", "1", "-m", "while-away-1")
    pub(mb, t, "-q", "1", "-m", "while-away-2")
    cp = tern(["sub"] + conn_args(mb, version) + ["-c", "-i", cid, "-t", t, "-q", "1",
                                                   "-C", "2", "-W", "5"] + extra)
    assert cp.stdout.splitlines() == [b"while-away-1", b"while-away-2"]
    # Clean up the session.
    tern(["sub"] + conn_args(mb, version) + ["-i", cid, "-t", t, "-E"])


def test_persistent_session_resume_redelivers_unacknowledged_with_dup(mb):
    """A raw client of session ID receives a QoS 1 message and drops the
    connection without PUBACK; `tern sub -c -i ID` then gets it again with
    DUP set ([MQTT-4.4.0-1], [MQTT-3.3.1-1]) and acknowledges it, so a third
    connection gets nothing more."""
    cid, t = unique("dup"), unique("dupt")
    raw = RawClient(mb.host, mb.port, V311)
    raw.connect(cid, clean=False)
    assert raw.subscribe([(t, 1)]).codes == [1]
    pub(mb, t, "-q", "1", "-m", "redeliver-me")
    p = raw.recv_publish(timeout=5, ack=False)
    assert p.payload == b"redeliver-me" and not p.dup
    raw.abort()
    time.sleep(0.05)  # let the broker see the connection go
    cp = tern(["sub", "-d"] + conn_args(mb) + ["-c", "-i", cid, "-t", t, "-q", "1",
                                                "-C", "1", "-W", "5", "-F", "%p %q"])
    assert cp.stdout == b"redeliver-me 1\n"
    assert b"received PUBLISH (d1, q1" in cp.stderr, cp.stderr
    raw = RawClient(mb.host, mb.port, V311)
    ack = raw.connect(cid, clean=True)
    assert ack.session_present is False
    raw.disconnect()


# ---- wills ----

@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_will_published_when_tern_sub_is_killed(mb, version):
    """tern sub --will-topic/--will-payload/--will-qos/--will-retain killed
    with SIGKILL: the broker publishes the will ([MQTT-3.1.2-8]), retained
    (%r is 1 for a later subscriber), with its v5 will properties."""
    w = unique("will")
    watcher = Sub(mb, w, "-C", "1", "-q", "1", "-F", "%q %p %P", version=version)
    victim = Sub(mb, unique("idle"), "--will-topic", w, "--will-payload", "gone",
                 "--will-qos", "1", "--will-retain", "-D", "will", "user-property", "wk",
                 "wv", version=version)
    victim.proc.send_signal(signal.SIGKILL)
    victim.kill()
    expected = b"1 gone wk:wv" if version == "mqttv5" else b"1 gone "
    assert watcher.finish().rstrip(b"\n") == expected
    cp = tern(["sub"] + conn_args(mb) + ["-t", w, "-C", "1", "-W", "5", "-F", "%r %p"])
    assert cp.stdout == b"1 gone\n"
    pub(mb, w, "-r", "-n")


def test_will_not_published_after_clean_exit(mb):
    """tern sub -E with a will ends with DISCONNECT, so the will is discarded
    ([MQTT-3.1.2-10]): a watcher sees only the sentinel published after."""
    w = unique("nowill")
    watcher = Sub(mb, w, "-C", "1")
    tern(["sub"] + conn_args(mb) + ["-t", unique("x"), "-E", "--will-topic", w,
                                     "--will-payload", "should-not-appear"])
    pub(mb, w, "-m", "sentinel")
    assert watcher.finish() == b"sentinel\n"


def test_sigint_ends_tern_sub_cleanly_without_will(mb):
    """SIGINT makes tern sub send DISCONNECT and exit 0: the will is not
    published."""
    w = unique("intwill")
    watcher = Sub(mb, w, "-C", "1")
    s = Sub(mb, unique("idle"), "--will-topic", w, "--will-payload", "should-not-appear")
    s.proc.send_signal(signal.SIGINT)
    assert s.finish() == b""
    assert b"sending DISCONNECT" in s.err
    pub(mb, w, "-m", "sentinel")
    assert watcher.finish() == b"sentinel\n"


def test_session_takeover_ends_tern_sub_with_error(mb):
    """A second client with the same id takes the session over: the first
    tern sub exits non-zero saying why (v5 ternd sends DISCONNECT 0x8E,
    "session taken over"; mosquitto 2.0 just closes the connection)."""
    cid = unique("take")
    s = Sub(mb, unique("tk"), "-i", cid, version="mqttv5")
    tern(["sub"] + conn_args(mb, "mqttv5") + ["-i", cid, "-t", unique("tk"), "-E"])
    s.finish(rc=1)
    if mb.kind == "ternd":
        assert b"session taken over" in s.err.lower(), s.err
    else:
        assert b"Error: " in s.err, s.err


def test_I_prefix_builds_client_id_from_pid(mb):
    s = Sub(mb, unique("idp"), "-I", "pfx-", "-E")
    s.finish()
    assert ("Client pfx-%d sending CONNECT" % s.proc.pid).encode() in s.err


# ---- retained ----

def test_retained_message_reaches_later_subscriber_and_n_clears_it(mb):
    """tern pub -r stores a retained message that a later tern sub gets with
    %r = 1 ([MQTT-3.3.1-6]); tern pub -r -n clears it ([MQTT-3.3.1-10])."""
    t = unique("ret")
    pub(mb, t, "-r", "-q", "1", "-m", "kept")
    cp = tern(["sub"] + conn_args(mb) + ["-t", t, "-C", "1", "-W", "5", "-F", "%r %p"])
    assert cp.stdout == b"1 kept\n"
    pub(mb, t, "-r", "-n")
    s = Sub(mb, t, "-C", "1", "-F", "%r %p")
    pub(mb, t, "-m", "fresh")
    assert s.finish() == b"0 fresh\n"


def test_retained_only_prints_retained_and_exits_on_first_fresh_message(mb):
    """--retained-only prints the retained messages and exits 0 at the first
    message without the retain flag, which it does not print."""
    base = unique("ro")
    pub(mb, base + "/a", "-r", "-m", "A")
    pub(mb, base + "/b", "-r", "-m", "B")
    s = Sub(mb, base + "/#", "--retained-only", "-v")
    pub(mb, base + "/c", "-m", "fresh")
    assert sorted(s.finish().splitlines()) == [
        ("%s/a A" % base).encode(), ("%s/b B" % base).encode()]
    pub(mb, base + "/a", "-r", "-n")
    pub(mb, base + "/b", "-r", "-n")


def test_R_skips_retained_messages(mb):
    """-R prints only fresh messages; the retained one is not counted by -C."""
    base = unique("nr")
    pub(mb, base + "/old", "-r", "-m", "stale")
    s = Sub(mb, base + "/#", "-R", "-C", "1", "-v")
    pub(mb, base + "/new", "-m", "fresh")
    assert s.finish() == ("%s/new fresh\n" % base).encode()
    pub(mb, base + "/old", "-r", "-n")


def test_remove_retained_clears_all_but_filtered_out_topics(mb):
    """--remove-retained clears every retained message it receives, except
    those left out with -T."""
    base = unique("rm")
    for leaf in ("a", "b", "keep"):
        pub(mb, "%s/%s" % (base, leaf), "-r", "-q", "1", "-m", leaf)
    s = Sub(mb, base + "/#", "--remove-retained", "--retained-only", "-T", base + "/keep",
            "-v")
    pub(mb, base + "/end", "-m", "fresh")
    assert sorted(s.finish().splitlines()) == [
        ("%s/a a" % base).encode(), ("%s/b b" % base).encode()]
    s = Sub(mb, base + "/#", "--retained-only", "-v")
    pub(mb, base + "/end", "-m", "fresh")
    assert s.finish().splitlines() == [("%s/keep keep" % base).encode()]
    pub(mb, base + "/keep", "-r", "-n")


# ---- v5 properties ----

def test_v5_publish_properties_reach_paho_subscriber(mb):
    """-D publish user-property / response-topic / correlation-data /
    message-expiry-interval / content-type / payload-format-indicator arrive
    at a paho v5 subscriber ([MQTT-3.3.2-*] forwarded unaltered)."""
    t = unique("v5p")
    p = PahoClient(mb, version=5)
    p.subscribe(t, 1)
    pub(mb, t, "-q", "1", "-m", "body", "-D", "publish", "user-property", "k1", "v1",
        "-D", "publish", "user-property", "k2", "v2", "-D", "publish", "response-topic",
        "reply/here", "-D", "publish", "correlation-data", "corr-123", "-D", "publish",
        "message-expiry-interval", "60", "-D", "publish", "content-type", "text/plain",
        "-D", "publish", "payload-format-indicator", "1", version="mqttv5")
    m = p.get()
    pr = m.properties
    assert m.payload == b"body"
    assert pr.UserProperty == [("k1", "v1"), ("k2", "v2")]
    assert pr.ResponseTopic == "reply/here"
    assert pr.CorrelationData == b"corr-123"
    assert 55 <= pr.MessageExpiryInterval <= 60
    assert pr.ContentType == "text/plain"
    assert pr.PayloadFormatIndicator == 1
    p.disconnect()


def test_v5_properties_from_paho_shown_by_tern_sub_format(mb):
    """A paho v5 publisher's properties and the subscription identifier of
    -D subscribe subscription-identifier come out of %P %R %D %E %C %F %S."""
    t = unique("v5s")
    s = Sub(mb, t, "-q", "1", "-C", "1", "-D", "subscribe", "subscription-identifier", "5",
            "-F", "%P|%R|%D|%E|%C|%F|%S|%p", version="mqttv5")
    p = PahoClient(mb, version=5)
    p.publish(t, b"hi", qos=1, properties=props(
        PacketTypes.PUBLISH, UserProperty=[("a", "1"), ("b", "2")],
        ResponseTopic="r/t", CorrelationData=b"cd", MessageExpiryInterval=120,
        ContentType="ct", PayloadFormatIndicator=1))
    p.disconnect()
    fields = s.finish().rstrip(b"\n").split(b"|")
    assert fields[:4] == [b"a:1 b:2", b"r/t", b"cd", fields[3]]
    assert 115 <= int(fields[3]) <= 120
    assert fields[4:] == [b"ct", b"1", b"5", b"hi"]


def test_v5_connect_properties_and_session_expiry_x(mb):
    """-x sets the v5 session expiry: a session with -x 0 is gone after the
    connection closes, so queued messages are not kept."""
    cid, t = unique("x0"), unique("x0t")
    tern(["sub"] + conn_args(mb, "mqttv5") + ["-i", cid, "-t", t, "-q", "1", "-E",
                                              "-x", "0", "-D", "connect", "user-property",
                                              "who", "tern"])
    pub(mb, t, "-q", "1", "-m", "lost")
    s = Sub(mb, [t], "-i", cid, "-q", "1", "-C", "1", "-x", "0", version="mqttv5")
    pub(mb, t, "-q", "1", "-m", "after")
    assert s.finish() == b"after\n"


# ---- -F: every sequence ----

def publish_rich(b, t, payload="hello"):
    pub(b, t, "-q", "1", "-m", payload, "-D", "publish", "user-property", "uk", "uv",
        "-D", "publish", "response-topic", "resp/t", "-D", "publish", "correlation-data",
        "corr", "-D", "publish", "message-expiry-interval", "300", "-D", "publish",
        "content-type", "text/x", "-D", "publish", "payload-format-indicator", "1",
        version="mqttv5")


def sub_format(b, fmt, *extra, payload="hello", version="mqttv5"):
    t = unique("fmt")
    s = Sub(b, t, "-q", "1", "-C", "1", "-F", fmt, "-D", "subscribe",
            "subscription-identifier", "9", *extra, version=version)
    publish_rich(b, t, payload)
    return s.finish(), t


def test_format_message_fields(mb):
    """%t %p %q %r %m %l %x %X %% and literal text."""
    out, t = sub_format(mb, "T=%t P=%p Q=%q R=%r M=%m L=%l x=%x X=%X %%")
    f = out.rstrip(b"\n").decode().split(" ")
    assert f[0] == "T=" + t and f[1] == "P=hello" and f[2] == "Q=1" and f[3] == "R=0"
    assert int(f[4][2:]) > 0
    assert f[5:] == ["L=5", "x=68656c6c6f", "X=68656C6C6F", "%"]


def test_format_v5_property_fields(mb):
    """%A %C %D %E %F %P %R %S: properties of the message; %A (no topic
    alias was used) prints only its padding."""
    out, _ = sub_format(mb, "%C|%D|%E|%F|%P|%R|%S|%3A|")
    f = out.split(b"|")
    assert 295 <= int(f[2]) <= 300  # the expiry may tick down in the broker
    assert f[:2] + f[3:] == [b"text/x", b"corr", b"1", b"uk:uv", b"resp/t", b"9", b"   ",
                             b"\n"]


def test_format_json_j(mb):
    """%j: one JSON object with tst, topic, qos, retain, payloadlen, mid,
    properties and the payload as an escaped string."""
    out, t = sub_format(mb, "%j", payload='say "hi"\tnow')
    j = json.loads(out)
    assert j["topic"] == t and j["qos"] == 1 and j["retain"] == 0
    assert j["payloadlen"] == 12 and j["mid"] > 0 and j["payload"] == 'say "hi"\tnow'
    pr = j["properties"]
    assert pr["user-properties"] == {"uk": "uv"} and pr["content-type"] == "text/x"
    assert pr["response-topic"] == "resp/t" and pr["correlation-data"] == "corr"
    assert pr["payload-format-indicator"] == 1 and pr["subscription-identifier"] == 9
    assert 295 <= pr["message-expiry-interval"] <= 300
    time.strptime(j["tst"][:19], "%Y-%m-%dT%H:%M:%S")


def test_format_json_J_embeds_payload_and_pretty(mb):
    """%J embeds a JSON payload as JSON; --pretty spreads it over lines with
    tabs; a payload that is not JSON is reported on stderr."""
    out, _ = sub_format(mb, "%J", "--pretty", payload='{"temp": [1, 2.5], "ok": true}')
    assert b"\n\t\"topic\":\t" in out
    assert json.loads(out)["payload"] == {"temp": [1, 2.5], "ok": True}
    t = unique("fmtbad")
    s = Sub(mb, t, "-C", "1", "-F", "<%J>")
    pub(mb, t, "-m", "not json")
    assert s.finish() == b"<>\n"
    assert b"not valid JSON" in s.err


def test_format_time_fields(mb):
    """%I (ISO 8601), %U (Unix time with nanoseconds), @-strftime fields,
    @N nanoseconds and @@."""
    before = time.time()
    out, _ = sub_format(mb, "%I|%U|@Y-@m-@d|@N|@@")
    after = time.time()
    iso, unix, ymd, ns, at = out.rstrip(b"\n").decode().split("|")
    assert time.strptime(iso, "%Y-%m-%dT%H:%M:%S%z")
    assert before - 1 <= float(unix) <= after + 1 and len(unix.split(".")[1]) == 9
    assert ymd == time.strftime("%Y-%m-%d", time.localtime(float(unix)))
    assert len(ns) == 9 and ns.isdigit() and at == "@"


def test_format_escapes_and_N(mb):
    """\\n \\t \\\\ \\0 \\a \\e \\r \\v escapes; -N leaves out the final newline."""
    out, _ = sub_format(mb, "%p\\t\\\\\\0\\a\\e\\r\\v\\n", "-N")
    assert out == b"hello\t\\\x00\x07\x1b\r\x0b\n"


def test_format_width_precision_and_flags(mb):
    """Field widths pad (right-aligned, '-' left, '0' zero for numbers);
    '.N' truncates strings."""
    out, t = sub_format(mb, "[%8l][%-8l][%08l][%.3t][%12.2C][%-7p]")
    assert out == b"[       5][5       ][00000005][%s][          te][hello  ]\n" % \
        t[:3].encode()


def test_format_unknown_sequence_is_a_usage_error():
    """An unknown -F sequence is rejected before connecting, naming it."""
    cp = tern(["sub", "-t", "a", "-F", "%t %Z"], check=False)
    assert cp.returncode == 1 and b"%Z" in cp.stderr


# ---- sub: -C -W -E -v -N -T -U ----

def test_C_exits_after_count(mb):
    t = unique("cnt")
    s = Sub(mb, t, "-C", "2", "-q", "1")
    for i in range(3):
        pub(mb, t, "-q", "1", "-m", "n%d" % i)
    assert s.finish() == b"n0\nn1\n"


def test_W_times_out_with_status_27(mb):
    """-W 1 with nothing arriving: "Timed out" and exit status 27, as
    mosquitto_sub."""
    t0 = time.monotonic()
    cp = tern(["sub"] + conn_args(mb) + ["-t", unique("quiet"), "-W", "1"], check=False)
    assert cp.returncode == 27 and b"Timed out" in cp.stderr
    assert time.monotonic() - t0 < 4


def test_E_exits_after_subscribe(mb):
    cp = tern(["sub"] + conn_args(mb) + ["-t", unique("e"), "-t", unique("e2"), "-E", "-d"])
    assert b"Subscribed: 0, 0" in cp.stderr


def test_v_prints_topic_and_payload_and_null_for_empty(mb):
    """-v prints "topic payload", and "topic (null)" for an empty payload;
    without -v an empty payload prints nothing."""
    t = unique("v")
    s = Sub(mb, t, "-v", "-C", "2")
    s2 = Sub(mb, t, "-C", "2")
    pub(mb, t, "-n")
    pub(mb, t, "-m", "data here")
    assert s.finish() == ("%s (null)\n%s data here\n" % (t, t)).encode()
    assert s2.finish() == b"data here\n"


def test_N_prints_without_newlines(mb):
    t = unique("nn")
    s = Sub(mb, t, "-N", "-C", "2")
    pub(mb, t, "-m", "ab")
    pub(mb, t, "-m", "cd")
    assert s.finish() == b"abcd"


def test_T_filters_topics_out(mb):
    base = unique("tf")
    s = Sub(mb, base + "/#", "-T", base + "/skip/#", "-C", "1", "-v")
    pub(mb, base + "/skip/x", "-m", "no")
    pub(mb, base + "/take", "-m", "yes")
    assert s.finish() == ("%s/take yes\n" % base).encode()


def test_U_unsubscribes_in_persistent_session(mb):
    """-U removes a subscription of a persistent session: messages on it are
    no longer queued."""
    cid, t, other = unique("u"), unique("ut"), unique("uo")
    tern(["sub"] + conn_args(mb) + ["-c", "-i", cid, "-t", t, "-t", other, "-q", "1", "-E"])
    tern(["sub"] + conn_args(mb) + ["-c", "-i", cid, "-U", t, "-E"])
    pub(mb, t, "-q", "1", "-m", "unwanted")
    pub(mb, other, "-q", "1", "-m", "wanted")
    cp = tern(["sub"] + conn_args(mb) + ["-c", "-i", cid, "-t", other, "-q", "1", "-C", "1",
                                         "-W", "5"])
    assert cp.stdout == b"wanted\n"
    tern(["sub"] + conn_args(mb) + ["-i", cid, "-t", t, "-E"])


# ---- pub: -m -f -s -l -n --repeat ----

def test_l_publishes_one_message_per_line(mb):
    """-l sends each line (an empty line is an empty message, a last line
    without newline still counts); 300 lines at QoS 1 go through -M's
    window of unacknowledged messages."""
    t = unique("lines")
    s = Sub(mb, t, "-q", "1", "-C", "303", "-F", "[%p]")
    lines = "first\n\nthird\n" + "".join("n%d\n" % i for i in range(299)) + "last"
    pub(mb, t, "-l", "-q", "1", "-M", "7", stdin=lines.encode())
    out = s.finish().splitlines()
    assert out[:3] == [b"[first]", b"[]", b"[third]"] and out[-1] == b"[last]"
    assert len(out) == 303


def test_s_publishes_stdin_whole_and_binary_safe(mb):
    t = unique("stdin")
    data = bytes(range(256)) + b"\nmore\n"
    s = Sub(mb, t, "-C", "1", "-F", "%x")
    pub(mb, t, "-s", stdin=data)
    assert s.finish() == data.hex().encode() + b"\n"


def test_f_publishes_file_contents(mb, tmp_path):
    t = unique("file")
    path = tmp_path / "payload.bin"
    data = b"\x00file\xffcontents" * 1000
    path.write_bytes(data)
    s = Sub(mb, t, "-C", "1", "-F", "%l %X")
    pub(mb, t, "-f", str(path), "-q", "2")
    assert s.finish() == b"%d %s\n" % (len(data), data.hex().upper().encode())


def test_n_publishes_null_message_and_repeat(mb):
    t = unique("null")
    s = Sub(mb, t, "-C", "3", "-F", "%l")
    pub(mb, t, "-n", "--repeat", "3", "-q", "1")
    assert s.finish() == b"0\n0\n0\n"


def test_pub_missing_file_is_an_error_before_connecting():
    cp = tern(["pub", "-p", "1", "-t", "a", "-f", "/nonexistent/file"], check=False)
    assert cp.returncode == 1 and b"/nonexistent/file" in cp.stderr


# ---- errors ----

@pytest.mark.parametrize("args,needle", [
    (["pub", "-t", "a", "-m", "x", "--bogus"], b"--bogus"),
    (["sub", "-t", "a", "-q", "3"], b"QoS"),
    (["pub", "-t", "a"], b"message"),
    (["pub", "-t", "a/+", "-m", "x"], b"a/+"),
    (["sub"], b"topic"),
    (["sub", "-t", "a", "-C", "0"], b"count"),
    (["sub", "-t", "a", "-p"], b"-p"),
    (["pub", "-t", "a", "-m", "x", "-n"], b"Only one"),
    (["pub", "-t", "a", "-m", "x", "-V", "7"], b"protocol version"),
    (["pub", "-t", "a", "-m", "x", "-D", "publish", "bogus-prop", "1"], b"bogus-prop"),
    (["pub", "-t", "a", "-m", "x", "-D", "connect", "message-expiry-interval", "1"],
     b"not allowed for connect"),
    (["pub", "-t", "a", "-m", "x", "-D", "publish", "payload-format-indicator", "300"],
     b"out of range"),
    (["pub", "-t", "a", "-m", "x", "-c"], b"client id"),
    (["sub", "-t", "a", "-R", "--retained-only"], b"makes no sense"),
    (["sub", "-t", "a", "--ciphers", "x"], b"--ciphers"),
    (["sub", "-t", "a", "--cafile", "ca.crt", "--cert", "c.crt"], b"--key"),
    (["pub", "-t", "a", "-m", "x", "--insecure"], b"--cafile"),
    (["frobnicate"], b"frobnicate"),
])
def test_bad_option_exits_1_with_message_naming_it(args, needle):
    cp = tern(args, check=False)
    assert cp.returncode == 1, cp
    assert needle in cp.stderr, cp.stderr
    assert cp.stdout == b""


def test_help_and_version():
    for args, needle in ((["--help"], b"tern pub"), (["pub", "--help"], b"-m : message"),
                         (["sub", "--help"], b"-F : output format"),
                         (["--version"], b"tern version")):
        cp = tern(args)
        assert needle in cp.stdout, (args, cp.stdout)


@pytest.mark.parametrize("kind", ["ternd", "mosquitto"])
@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_connection_refused_prints_reason_in_words(fresh_server, kind, version):
    """allow_anonymous false: the broker refuses the CONNECT; tern pub says
    why in words and exits with the CONNACK code (non-zero)."""
    b = fresh_server(kind, "allow_anonymous false")
    cp = pub(b, "t", "-m", "x", version=version, check=False)
    assert cp.returncode in (5, 0x87), cp
    assert b"not authori" in cp.stderr.lower(), cp.stderr


def test_connection_failure_without_broker_is_reported():
    port = free_port()
    cp = tern(["pub", "-h", HOST, "-p", str(port), "-t", "t", "-m", "x"], check=False)
    assert cp.returncode != 0 and b"Connection refused" in cp.stderr, cp


def test_username_and_password_reach_the_broker(fresh_server, tmp_path):
    """-u / -P are sent in CONNECT: mosquitto with a password file accepts
    the right pair and refuses a wrong password, named in words."""
    if shutil.which("mosquitto_passwd") is None:
        pytest.skip("mosquitto_passwd is not installed")
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "alice", "s3cret"], check=True,
                   capture_output=True, timeout=TIMEOUT)
    os.chmod(pw, 0o600)
    b = fresh_server("mosquitto", "allow_anonymous false", "password_file %s" % pw)
    pub(b, "t", "-m", "x", "-u", "alice", "-P", "s3cret")
    cp = pub(b, "t", "-m", "x", "-u", "alice", "-P", "wrong", version="mqttv5", check=False)
    assert cp.returncode != 0
    assert b"bad user name or password" in cp.stderr.lower() or \
        b"not authori" in cp.stderr.lower(), cp.stderr
