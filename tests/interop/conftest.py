"""pytest fixtures for tern's end-to-end interop tests.

Every test gets a fresh broker on a free 127.0.0.1 port, started with a config
file written to the test's tmp dir and stopped (by its PID) afterwards:

  * default: `$TERND -c CONFIG` (TERND = path to the ternd binary), run once
    with `workers 1` and once with `workers 2`;
  * TERN_TEST_AGAINST=mosquitto: `/usr/sbin/mosquitto -c CONFIG`, to check the
    tests themselves against a reference broker (run once; no `workers` line).

Per-test directives are given with `@pytest.mark.broker_config("max_keepalive
10", ...)`. The broker's stdout/stderr go to broker.log in the tmp dir; its
tail is attached to the report of a failing test. A broker that died during a
test fails that test (bad input must never crash it).

Tests that check a known mosquitto non-conformance are marked
`@pytest.mark.mosquitto_nonconformant("why")`: skipped in mosquitto mode only.
Tests of ternd-only features (its config parser) use `@pytest.mark.ternd_only`.

TERN_TEST_CLUSTER=1 (ternd only): one nats-server (JetStream, standalone) is
started for the test session, and every Broker gets `cluster_nats` pointing
at it, with a node name and a cluster name of its own (so two brokers of one
test stay two brokers, as without the option): the whole suite then runs
against single-node clusters. Brokers a test starts from its own config
file, not through Broker, are left as they are.

Cluster fixtures (cluster.py; skipped when nats-server is missing):
`nats_server` (one standalone nats-server for the test), `cluster_factory`
(builds cluster.Cluster objects for the test, stops them after it),
`tern_cluster` (3 nats-server + 3 ternd, once per test module).
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from testports import free_port  # noqa: E402  (tests/testports.py; re-exported)

import pytest

HOST = "127.0.0.1"
AGAINST = os.environ.get("TERN_TEST_AGAINST", "ternd").strip().lower()
MOSQUITTO = AGAINST == "mosquitto"
MOSQUITTO_BIN = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")

CLUSTER_MODE = (not MOSQUITTO and
                os.environ.get("TERN_TEST_CLUSTER", "").strip() not in ("", "0"))

if MOSQUITTO:
    WORKER_COUNTS = [1]
else:
    WORKER_COUNTS = [int(w) for w in
                     os.environ.get("TERN_TEST_WORKERS", "1,2").split(",") if w]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "broker_config(*lines): extra config directives for the broker")
    config.addinivalue_line(
        "markers", "mosquitto_nonconformant(reason): skip when testing mosquitto")
    config.addinivalue_line("markers", "ternd_only: needs ternd, skip for mosquitto")
    config.addinivalue_line("markers", "slow: waits longer than 5 s")
    config.addinivalue_line(
        "markers", "single_node(reason): one broker's behaviour that a cluster changes on "
        "purpose; skipped in TERN_TEST_CLUSTER mode")


def pytest_collection_modifyitems(config, items):
    for item in items:
        single = item.get_closest_marker("single_node")
        if CLUSTER_MODE and single is not None:
            item.add_marker(pytest.mark.skip(
                reason="a cluster does this otherwise: " + (single.args[0] if single.args else "")))
        if not MOSQUITTO:
            continue
        m = item.get_closest_marker("mosquitto_nonconformant")
        if m is not None:
            item.add_marker(pytest.mark.skip(
                reason="mosquitto non-conformance: " + (m.args[0] if m.args else "")))
        if item.get_closest_marker("ternd_only") is not None:
            item.add_marker(pytest.mark.skip(reason="ternd-specific behaviour"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
    if rep.failed:
        log = getattr(item, "_tern_broker_log", None)
        logs = [log] if isinstance(log, str) else list(log or [])
        if CLUSTER_MODE and _session_nats:
            logs.append(_session_nats[0].log)
        for log in logs:
            if log and os.path.exists(log):
                rep.sections.append(("log tail (%s)" % log, tail(log)))


def tail(path, lines=60):
    try:
        with open(path, "rb") as f:
            data = f.read()[-20000:]
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e)
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def wait_port(port, proc, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    return False


def broker_binary():
    if MOSQUITTO:
        return MOSQUITTO_BIN
    path = os.environ.get("TERND")
    if not path:
        candidate = os.path.join(os.path.dirname(__file__), "..", "..", "build", "ternd")
        if os.path.exists(candidate):
            path = os.path.abspath(candidate)
    if not path:
        pytest.skip("TERND is not set (path to the ternd binary)")
    if not os.path.exists(path):
        pytest.fail("TERND=%s does not exist" % path)
    return path


class Broker:
    """A running broker process."""

    def __init__(self, tmp_path, workers, extra, anonymous=True):
        self.host = HOST
        # The config defines a listener, so both brokers refuse anonymous
        # clients unless told otherwise (mosquitto 2's default, and ours):
        # tests want them in, except those of that default.
        self.anonymous = anonymous
        self.workers = workers
        self.mosquitto = MOSQUITTO
        self.extra = list(extra)
        self.dir = str(tmp_path)
        self.conf = os.path.join(self.dir, "broker.conf")
        self.log = os.path.join(self.dir, "broker.log")
        self.binary = broker_binary()
        self.proc = None
        self.port = None
        if not MOSQUITTO:
            self.extra += cluster_mode_lines(self.extra)

    def config_text(self, port):
        lines = ["listener %d %s" % (port, HOST)]
        if self.anonymous and not any(l.split()[0] == "allow_anonymous" for l in self.extra):
            lines.append("allow_anonymous true")
        if self.mosquitto:
            if os.getuid() == 0:
                # Stay the current user rather than dropping to "mosquitto".
                lines.append("user %s" % pwd.getpwuid(os.getuid()).pw_name)
        else:
            lines.append("workers %d" % self.workers)
        lines += ["log_type all", "log_dest stdout"]
        lines += self.extra
        return "\n".join(lines) + "\n"

    def start(self):
        for _attempt in range(3):
            self.port = free_port()
            with open(self.conf, "w") as f:
                f.write(self.config_text(self.port))
            os.chmod(self.conf, 0o644)
            logf = open(self.log, "ab")
            self.proc = subprocess.Popen(
                [self.binary, "-c", self.conf], stdout=logf,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.dir)
            logf.close()
            if wait_port(self.port, self.proc):
                return
            self.stop()
        raise RuntimeError("broker did not start listening on %d:\n%s"
                           % (self.port, tail(self.log)))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Stop by PID: SIGTERM, then SIGKILL after 3 s. Returns the exit
        status (None if it had to be killed)."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                rc = self.proc.wait(3)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(3)
                rc = None
            except ProcessLookupError:
                rc = self.proc.poll()
        return rc

    def raw(self, version=4, timeout=5.0):
        from mqtt_raw import RawClient
        return RawClient(self.host, self.port, version=version, timeout=timeout)


@pytest.fixture(params=WORKER_COUNTS,
                ids=["mosquitto" if MOSQUITTO else "w%d" % w for w in WORKER_COUNTS])
def broker(request, tmp_path):
    marker = request.node.get_closest_marker("broker_config")
    extra = list(marker.args) if marker else []
    # "{http_port}" in a directive is a port picked now, just before the
    # broker binds it (broker.http_port): one picked when the module was
    # imported could be taken by another test running meanwhile.
    http_port = free_port() if any("{http_port}" in l for l in extra) else None
    extra = [l.replace("{http_port}", str(http_port)) for l in extra]
    b = Broker(tmp_path, request.param, extra)
    b.http_port = http_port
    request.node._tern_broker_log = b.log
    b.start()
    yield b
    died = not b.alive()
    b.stop()
    if died:
        pytest.fail("broker exited during the test (rc=%r):\n%s"
                    % (b.proc.returncode, tail(b.log)), pytrace=False)


# The session's nats-server in TERN_TEST_CLUSTER mode: a one-element list
# the session fixture below fills, read by Broker.__init__ (Broker objects
# are made by fixtures and by tests alike, so it cannot be a parameter).
_session_nats = []


def session_nats_url():
    if not _session_nats:
        raise RuntimeError("TERN_TEST_CLUSTER: the session nats-server is not running")
    return _session_nats[0].url


def cluster_mode_lines(extra=()):
    """The config lines that make a ternd a single-node cluster of its own
    on the session's nats-server in TERN_TEST_CLUSTER mode (a node name and
    a cluster name no other broker has, so that two brokers of a test stay
    apart); none otherwise, or when `extra` configures a cluster itself."""
    if not CLUSTER_MODE or any(l.split()[:1] == ["cluster_nats"] for l in extra):
        return []
    from cluster import unique_name
    return ["cluster_nats " + session_nats_url(),
            "cluster_node_name " + unique_name("node"),
            "cluster_name " + unique_name("tern")]


@pytest.fixture(scope="session", autouse=True)
def _cluster_mode_nats(tmp_path_factory):
    """TERN_TEST_CLUSTER: one nats-server for the whole session."""
    if not CLUSTER_MODE:
        yield None
        return
    import cluster
    if not cluster.nats_available():
        pytest.fail("TERN_TEST_CLUSTER is set but %s is not installed" % cluster.NATS_BIN)
    s = cluster.NatsServer(tmp_path_factory.mktemp("nats-session")).start()
    _session_nats.append(s)
    yield s
    _session_nats.clear()
    s.stop()


def _need_nats():
    import cluster
    if not cluster.nats_available():
        pytest.skip("%s is not installed" % cluster.NATS_BIN)
    if MOSQUITTO:
        pytest.skip("cluster tests are ternd-only")
    return cluster


@pytest.fixture
def nats_server(request, tmp_path):
    """One standalone nats-server (JetStream) for the test, stopped after it."""
    cluster = _need_nats()
    s = cluster.NatsServer(tmp_path / "nats").start()
    request.node._tern_broker_log = [s.log]
    yield s
    s.stop()


def _stop_cluster(c):
    died = c.stop()
    if died:
        pytest.fail("ternd node(s) died: %s" % "\n".join(
            "%s (rc=%r):\n%s" % (n.node_name, n.proc.returncode, tail(n.log))
            for n in died), pytrace=False)


@pytest.fixture
def cluster_factory(request, tmp_path):
    """make(nodes=3, nats_n=3, nats="own"|"all", replicas=None, workers=1,
    extra=()) -> a started cluster.Cluster, stopped (every process by its
    PID) after the test; a node that crashed fails the test."""
    cluster = _need_nats()
    made = []
    logs = []
    request.node._tern_broker_log = logs

    def make(**kw):
        c = cluster.Cluster(tmp_path / ("cluster%d" % len(made)), **kw)
        made.append(c)
        c.start()
        logs.extend(c.logs())
        return c

    yield make
    for c in made:
        _stop_cluster(c)


@pytest.fixture(scope="module")
def tern_cluster(request, tmp_path_factory):
    """3 nats-server (a JetStream cluster) + 3 ternd, each ternd on its own
    nats-server, shared by the tests of a module (startup costs seconds):
    tests use unique topics and client ids."""
    cluster = _need_nats()
    c = cluster.Cluster(tmp_path_factory.mktemp("cluster"), nodes=3, nats_n=3).start()
    yield c
    _stop_cluster(c)


@pytest.fixture
def tools_available():
    for t in ("mosquitto_pub", "mosquitto_sub"):
        if shutil.which(t) is None:
            pytest.skip("%s is not installed" % t)
