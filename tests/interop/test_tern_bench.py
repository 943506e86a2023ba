"""`tern bench` (src/tools/bench*.c), the load generator, against a real
broker (the `broker` fixture: ternd with 1 and 2 workers, or mosquitto with
TERN_TEST_AGAINST=mosquitto).

Every run here is tiny and bounded (a few hundred messages, or well under a
second), so the file stays fast. What is checked is the tool's contract:
the --json object carries the figures the benchmarks rely on, QoS 1 and 2
lose and duplicate nothing, the counts add up, latency percentiles are
present, and a run that is unbounded or has bad options is refused with
exit status 1 before anything connects.

Environment: TERN_CLI is the tern binary (tests/CMakeLists.txt sets it).
"""

import json
import os
import subprocess

import pytest

TIMEOUT = 30
LATENCY_KEYS = ("count", "min", "mean", "p50", "p90", "p99", "p999", "max")


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


def bench(*args, timeout=TIMEOUT):
    return subprocess.run([tern_binary(), "bench"] + [str(a) for a in args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


def bench_json(broker, mode, *args):
    p = bench(mode, "-h", broker.host, "-p", broker.port, "--json", "--quiet", "-n", 2, *args)
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout)


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_run_delivers_everything(broker, qos):
    """2 publishers x 200 messages to 2 subscribers on bench/#: each
    subscriber gets all 400. QoS 1 and 2 must lose and duplicate nothing
    [MQTT-4.3.2, MQTT-4.3.3]; an idle loopback broker loses no QoS 0 either,
    but only the accounting is checked for it."""
    d = bench_json(broker, "run", "--pubs", 2, "--subs", 2, "-C", 200, "-q", qos,
                   "-t", "tb/%i", "-f", "tb/#")
    assert d["mode"] == "run" and d["connected"] == 4 and d["connect_failed"] == 0
    assert d["sent"] == 400 and d["stopped_by"] == "count"
    q = d["per_qos"][str(qos)]
    assert q["sent"] == 400 and q["expected"] == 800
    assert q["unique"] + q["lost"] == 800
    if qos > 0:
        assert d["acked"] == 400 and d["pending"] == 0
        assert d["received"] == 800
        assert d["lost"] == 0 and d["duplicates"] == 0 and d["reordered"] == 0
    for key in LATENCY_KEYS:
        assert key in d["latency_us"], key
    lat = d["latency_us"]
    assert lat["count"] == d["received"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert d["received_per_s"] > 0 and d["sent_per_s"] > 0


def test_run_mixed_qos_and_topics(broker):
    """A QoS list is dealt over the publishers; %i puts each publisher on
    its own topic and each subscriber on its own filter, so subscriber i
    hears only publisher i."""
    d = bench_json(broker, "run", "--pubs", 3, "--subs", 3, "-C", 100, "-q", "0,1,2",
                   "-t", "tbm/%i", "-f", "tbm/%i", "-s", 100)
    assert d["qos"] == [0, 1, 2] and d["sub_qos"] == 2 and d["size"] == 100
    for q in ("0", "1", "2"):
        assert d["per_qos"][q]["sent"] == 100
        assert d["per_qos"][q]["expected"] == 100
    for q in ("1", "2"):
        assert d["per_qos"][q]["received"] == 100 and d["per_qos"][q]["lost"] == 0
        assert d["per_qos"][q]["latency_us"]["count"] == 100
    assert d["acked"] == 200


def test_run_bounded_by_duration_and_rate(broker):
    """--duration with --rate: about rate x duration messages per publisher,
    and the run stops by itself."""
    d = bench_json(broker, "run", "--pubs", 2, "--subs", 1, "-d", 0.5, "-r", 200, "-q", 1,
                   "-V", 5)
    assert d["version"] == "5" and d["stopped_by"] == "duration"
    assert 100 <= d["sent"] <= 260, d["sent"]
    assert d["lost"] == 0 and d["received"] == d["sent"]
    assert 0.4 <= d["window_s"] <= 0.7


def test_pub_and_sub_in_separate_processes(broker):
    """`bench sub` in one process measures `bench pub` in another: the
    stamp's CLOCK_MONOTONIC is one clock for the machine."""
    sub = subprocess.Popen([tern_binary(), "bench", "sub", "-h", broker.host, "-p",
                            str(broker.port), "-c", "2", "-t", "tbs/#", "-q", "1", "-C", "300",
                            "-d", "10", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = sub.stderr.readline()  # "... 2 connected in ..." once subscribed
        assert b"connected in" in line, line
        d = bench_json(broker, "pub", "-c", 3, "-C", 100, "-q", 1, "-t", "tbs/%i")
        assert d["sent"] == 300 and d["acked"] == 300 and d["subs"] == 0
        out, err = sub.communicate(timeout=TIMEOUT)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    assert sub.returncode == 0, err.decode()
    s = json.loads(out)
    assert s["mode"] == "sub" and s["stopped_by"] == "count"
    assert s["received"] == 600
    assert s["per_qos"]["1"]["unique"] == 600 and s["per_qos"]["1"]["lost"] == 0
    assert s["latency_us"]["count"] == 600


def test_conn_holds_connections_over_sources(broker):
    """`bench conn` spreads its connections over --sources and holds them for
    --duration."""
    d = bench_json(broker, "conn", "-c", 60, "-d", 0.3, "--sources", "127.0.0.1-127.0.0.3")
    assert d["connected"] == 60 and d["connect_failed"] == 0 and d["lost_connections"] == 0
    assert d["sources"] == 3 and d["connect_us"]["count"] == 60


@pytest.mark.parametrize("args", [
    ["run"],                                  # neither --count nor --duration
    ["pub", "-c", "2", "-q", "1"],
    ["sub", "-t", "x/#"],
    ["conn", "-c", "10"],                     # conn needs --duration
    ["conn", "-c", "10", "-C", "5"],
])
def test_unbounded_runs_are_refused(args):
    p = bench(*args, "-p", "1")
    assert p.returncode == 1
    assert b"unbounded" in p.stderr or b"--duration" in p.stderr, p.stderr
    assert p.stdout == b""


@pytest.mark.parametrize("args", [
    ["walk", "-C", "1"],                      # unknown mode
    ["run", "-C", "1", "--bogus"],
    ["run", "-C", "1", "-q", "3"],
    ["run", "-C", "1", "-q", "0,"],
    ["run", "-C", "1", "--pubs", "0"],
    ["run", "-C", "1", "-c", "3"],            # run takes --pubs/--subs
    ["pub", "-C", "1", "--subs", "3"],
    ["run", "-C", "1", "-s", "10"],           # too small for the stamp
    ["run", "-C", "1", "-t", "a/#"],          # wildcard in a topic name
    ["run", "-C", "1", "-f", "a/#/b"],        # bad filter
    ["run", "-C", "1", "-V", "4"],
    ["run", "-C", "1", "-p", "70000"],
    ["run", "-d", "-1"],
    ["run", "-C", "1", "--sources", "127.0.0.9-127.0.0.1"],
    ["run", "-C", "1", "--sources", "not-an-address"],
    ["conn", "-d", "1", "--rate", "5", "--connect-rate", "5"],
    ["pub", "-C", "1", "--backlog", "10"],
    ["run", "-C"],                            # missing argument
])
def test_bad_options_exit_1(args):
    p = bench(*args)
    assert p.returncode == 1, (args, p.stdout, p.stderr)
    assert p.stderr.startswith(b"Error: "), p.stderr
    assert p.stdout == b""


def test_help():
    p = bench("--help")
    assert p.returncode == 0 and b"tern bench run" in p.stdout
    p = bench("run", "--help")
    assert p.returncode == 0 and b"--duration" in p.stdout


def test_refused_connections_end_the_run_with_status_2():
    """Nothing listening: the run gives up at once (no 30 s wait), says why
    in the JSON, and exits with status 2."""
    from conftest import free_port
    p = bench("run", "-p", free_port(), "-C", 10, "--json", "--quiet")
    assert p.returncode == 2
    d = json.loads(p.stdout)
    assert d["aborted"] and d["abort_reason"] == "connections failed"
    assert d["connected"] == 0 and d["connect_failed"] == 2
    assert "refused" in d["first_error"]
