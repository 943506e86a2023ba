"""The archive into SQLite (docs/archive.md): every matching message becomes
one row of the archive's table, with nothing acknowledged lost.

A real ternd archives what real clients publish (the raw client of
mqtt_raw.py, which sets every v5 property, and mosquitto_pub); the tests read
the table back with Python's sqlite3 module and with the `sqlite3` shell,
while ternd runs (the file is in WAL mode) and after it stopped. Kill -9
tests check the guarantee of the issue: a QoS >= 1 message that ternd
acknowledged is in the database after a restart, once.
"""

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.request

import pytest

import mqtt_raw as m
from conftest import Broker, broker_binary, free_port, tail

pytestmark = pytest.mark.ternd_only


def archive_lines(db, topics=("sensors/#",), qos=None, batch="20 20ms", queue=None,
                  name="history"):
    lines = ["archive %s" % name, "archive_sink sqlite:%s" % db]
    lines += ["archive_topic %s" % t for t in topics]
    if qos is not None:
        lines.append("archive_qos %d" % qos)
    if batch:
        lines.append("archive_batch %s" % batch)
    if queue:
        lines.append("archive_queue %s" % queue)
    return lines


def start(tmp_path, lines, workers=2):
    b = Broker(tmp_path, workers, lines)
    b.start()
    return b


def rows(db, where="1", table="history"):
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return con.execute("SELECT * FROM %s WHERE %s ORDER BY id" % (table, where)).fetchall()
    finally:
        con.close()


def wait_rows(db, n, timeout=5.0, where="1"):
    deadline = time.time() + timeout
    got = []
    while time.time() < deadline:
        if os.path.exists(db):
            try:
                got = rows(db, where)
            except sqlite3.OperationalError:
                got = []
            if len(got) >= n:
                return got
        time.sleep(0.02)
    return got


def kill9(b):
    os.kill(b.proc.pid, signal.SIGKILL)
    b.proc.wait(5)


def store_rows(b, sql):
    con = sqlite3.connect(os.path.join(b.dir, "ternd.db"))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "history.db")


def test_every_field_round_trips(tmp_path, db):
    b = start(tmp_path, archive_lines(db))
    try:
        payload = bytes(range(256)) * 3 + b"\x00end"
        c = b.raw(version=m.V5)
        c.connect("sensor-7", username="alice", password=b"x")
        props = [(m.CONTENT_TYPE, "application/octet-stream"), (m.PAYLOAD_FORMAT, 0),
                 (m.CORRELATION_DATA, b"\x00\xffcorr"), (m.RESPONSE_TOPIC, "replies/7"),
                 (m.USER_PROPERTY, ("unit", "C")), (m.USER_PROPERTY, ("unit", "K")),
                 (m.USER_PROPERTY, ("note", 'quote " and \\ and \u00e9'))]
        c.publish("sensors/7/temp", payload, qos=1, retain=True, properties=props)
        c.publish("sensors/7/hum", b"", qos=2, pid=2)
        c.disconnect()
        v3 = b.raw(version=m.V311)
        v3.connect("old-client")
        v3.publish("sensors/old", b"plain", qos=0)
        v3.disconnect()
        got = wait_rows(db, 3)
        assert len(got) == 3, got
        r = got[0]
        assert r["topic"] == "sensors/7/temp" and bytes(r["payload"]) == payload
        assert (r["qos"], r["retain"]) == (1, 1)
        assert (r["client_id"], r["username"]) == ("sensor-7", "alice")
        assert r["content_type"] == "application/octet-stream"
        assert r["payload_format"] == 0
        assert bytes(r["correlation_data"]) == b"\x00\xffcorr"
        assert r["response_topic"] == "replies/7"
        import json
        assert json.loads(r["user_properties"]) == [["unit", "C"], ["unit", "K"],
                                                    ["note", 'quote " and \\ and \u00e9']]
        assert abs(r["received_at"] / 1000.0 - time.time()) < 30
        r = got[1]
        assert (r["topic"], bytes(r["payload"]), r["qos"], r["retain"]) == \
            ("sensors/7/hum", b"", 2, 0)
        r = got[2]
        assert (r["client_id"], r["username"], r["content_type"], r["user_properties"],
                r["correlation_data"], r["payload_format"]) == \
            ("old-client", None, None, None, None, None)
        keys = [x["msg_key"] for x in got]
        assert len(set(keys)) == 3
        # The file is readable with the sqlite3 shell while ternd writes it.
        if shutil.which("sqlite3"):
            out = subprocess.run(
                ["sqlite3", db, "SELECT topic, hex(payload) FROM history WHERE qos = 2;"
                 " SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name;"],
                capture_output=True, text=True, timeout=10)
            assert out.returncode == 0, out.stderr
            assert "sensors/7/hum|" in out.stdout
            assert "history_topic_time" in out.stdout
    finally:
        b.stop()


def test_filters_and_archive_qos_choose_what_is_archived(tmp_path, db):
    b = start(tmp_path, archive_lines(db, topics=("a/+/x", "b/#"), qos=1))
    try:
        c = b.raw(version=m.V311)
        c.connect("p")
        c.publish("a/1/x", b"q0", qos=0)          # below archive_qos
        c.publish("a/1/x", b"yes1", qos=1, pid=1)
        c.publish("a/1/y", b"no", qos=1, pid=2)   # no filter matches
        c.publish("b", b"yes2", qos=2, pid=3)     # b/# matches b itself
        c.publish("b/c/d", b"yes3", qos=1, pid=4)
        c.publish("c/1", b"no", qos=1, pid=5)
        c.disconnect()
        got = wait_rows(db, 3)
        time.sleep(0.3)
        got = rows(db)
        assert [bytes(r["payload"]) for r in got] == [b"yes1", b"yes2", b"yes3"]
    finally:
        b.stop()


def test_archive_batch_flushes_at_n_or_after_t(tmp_path, db):
    b = start(tmp_path, archive_lines(db, batch="50 1s", qos=0))
    try:
        c = b.raw()
        c.connect("p")
        for i in range(49):
            c.publish("sensors/x", b"%d" % i)
        c.publish("sensors/x", b"sync", qos=1, pid=9)  # acknowledged: all 50 are queued
        t0 = time.time()
        got = wait_rows(db, 50, timeout=3)
        assert len(got) == 50
        assert time.time() - t0 < 0.8, "a full batch goes at once, not after T"
        c.publish("sensors/x", b"alone")
        t0 = time.time()
        got = wait_rows(db, 51, timeout=5)
        took = time.time() - t0
        assert len(got) == 51
        assert 0.5 < took < 3, "a lone message waits for T (1 s), then goes: %.2f s" % took
        c.disconnect()
    finally:
        b.stop()


def test_mosquitto_pub_messages_are_archived(tmp_path, db):
    if not shutil.which("mosquitto_pub"):
        pytest.skip("mosquitto_pub is not installed")
    b = start(tmp_path, archive_lines(db))
    try:
        subprocess.run(["mosquitto_pub", "-h", b.host, "-p", str(b.port), "-q", "1",
                        "-i", "mp", "-t", "sensors/m", "-m", "from mosquitto_pub"],
                       check=True, timeout=10)
        got = wait_rows(db, 1)
        assert [(r["client_id"], bytes(r["payload"])) for r in got] == \
            [("mp", b"from mosquitto_pub")]
    finally:
        b.stop()


def pipelined_qos1(c, n, first_pid=1, prefix=b"m"):
    """Sends n QoS 1 PUBLISHes without waiting, then reads their PUBACKs:
    returns the payloads acknowledged."""
    sent = {}
    for i in range(n):
        pid = first_pid + i
        payload = prefix + b"-%05d" % pid
        sent[pid] = payload
        c.send(m.publish("sensors/load", payload, qos=1, pid=pid, version=c.version))
    acked = []
    for _ in range(n):
        p = c.recv_type(m.PUBACK)
        acked.append(sent[p.pid])
    return acked


def test_kill_9_mid_stream_loses_nothing_acknowledged_and_duplicates_nothing(tmp_path, db):
    b = start(tmp_path, archive_lines(db, batch="25 10ms", qos=1))
    c = b.raw()
    c.connect("loader")
    acked = pipelined_qos1(c, 400)
    kill9(b)
    c.close()
    # The database had some of them; the store the others.
    before = len(rows(db)) if os.path.exists(db) else 0
    b.start()
    try:
        got = wait_rows(db, 400, timeout=10)
        payloads = [bytes(r["payload"]) for r in got]
        assert set(acked) <= set(payloads), "%d acknowledged, %d archived (%d before restart)" % (
            len(acked), len(set(payloads) & set(acked)), before)
        assert len(payloads) == len(set(payloads)), "a message archived twice"
    finally:
        assert b.stop() == 0, tail(b.log)
    assert store_rows(b, "SELECT count(*) FROM archive_queue") == [(0,)]


def test_entries_wait_in_the_store_until_the_database_has_them(tmp_path, db):
    # A batch that would wait a minute: nothing reaches the database
    # before the kill, so every entry is in the store.
    lines = archive_lines(db, batch="10000 60s", qos=1)
    b = start(tmp_path, lines)
    c = b.raw(version=m.V5)
    c.connect("slow", username="u1", password=b"p")
    acked = pipelined_qos1(c, 50)
    kill9(b)
    c.close()
    assert not rows(db), "nothing was written before the kill"
    assert store_rows(b, "SELECT count(*), count(DISTINCT seq) FROM archive_queue") == [(50, 50)]
    # Restarted with a short batch: the spilled entries go, with who sent them.
    b.extra = [l if not l.startswith("archive_batch") else "archive_batch 10 10ms"
               for l in b.extra]
    b.start()
    try:
        got = wait_rows(db, 50)
        assert sorted(bytes(r["payload"]) for r in got) == sorted(acked)
        assert {(r["client_id"], r["username"]) for r in got} == {("slow", "u1")}
        assert len({r["msg_key"] for r in got}) == 50
    finally:
        assert b.stop() == 0, tail(b.log)
    assert store_rows(b, "SELECT count(*) FROM archive_queue") == [(0,)]
    assert store_rows(b, "SELECT count(*) FROM messages") == [(0,)]


def test_clean_stop_flushes_the_queue_without_persistence(tmp_path, db):
    b = start(tmp_path, ["persistence false"] + archive_lines(db, batch="10000 60s"))
    c = b.raw()
    c.connect("p")
    for i in range(30):
        c.publish("sensors/t", b"%d" % i, qos=1, pid=i + 1)
    c.disconnect()
    assert not rows(db)
    assert b.stop() == 0, tail(b.log)
    assert len(rows(db)) == 30


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("tern_archive") and "{" in line:
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def test_a_full_queue_drops_new_messages_counts_and_logs_once(tmp_path, db):
    http = free_port()
    b = start(tmp_path, ["http_listener %d 127.0.0.1" % http] +
              archive_lines(db, batch="10000 60s", queue="10"))
    try:
        c = b.raw()
        c.connect("p")
        for i in range(25):
            c.publish("sensors/t", b"%d" % i, qos=1, pid=i + 1)
        c.disconnect()
        mt = metrics(http)
        assert mt['tern_archive_messages_queued{archive="history"}'] == 10
        assert mt['tern_archive_messages_dropped_total{archive="history"}'] == 15
        assert mt['tern_archive_messages_archived_total{archive="history"}'] == 0
        with open(b.log) as f:
            log = f.read()
        assert log.count("archive history: queue full") == 1, log
    finally:
        assert b.stop() == 0
    # The ten admitted are written at the stop; the fifteen were not.
    assert [bytes(r["payload"]) for r in rows(db)] == [b"%d" % i for i in range(10)]


def test_metrics_count_archived_and_batches(tmp_path, db):
    http = free_port()
    b = start(tmp_path, ["http_listener %d 127.0.0.1" % http] + archive_lines(db))
    try:
        c = b.raw()
        c.connect("p")
        for i in range(40):
            c.publish("sensors/t", b"%d" % i, qos=1, pid=i + 1)
        c.disconnect()
        wait_rows(db, 40)
        deadline = time.time() + 3
        while time.time() < deadline:
            mt = metrics(http)
            if mt['tern_archive_messages_archived_total{archive="history"}'] == 40:
                break
            time.sleep(0.05)
        assert mt['tern_archive_messages_archived_total{archive="history"}'] == 40
        assert mt['tern_archive_messages_queued{archive="history"}'] == 0
        assert mt['tern_archive_connected{archive="history"}'] == 1
        assert mt['tern_archive_batch_seconds_count{archive="history"}'] >= 2
    finally:
        b.stop()


# ---- configuration errors stop ternd, naming the file and line ----

def run_config(tmp_path, lines):
    conf = tmp_path / "bad.conf"
    conf.write_text("listener %d 127.0.0.1\n" % free_port() + "\n".join(lines) + "\n")
    p = subprocess.run([broker_binary(), "-c", str(conf)], capture_output=True, text=True,
                       timeout=20, cwd=str(tmp_path))
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("lines,line,words", [
    (["archive h", "archive_sink mysql://x/y", "archive_topic a"], 3, "sqlite:PATH"),
    (["archive h", "archive_sink sqlite:", "archive_topic a"], 3, "sqlite:PATH"),
    (["archive h", "archive_sink sqlite:/tmp/x.db", "archive_topic a/#/b"], 4,
     "not a valid topic filter"),
    (["archive_topic a"], 2, "only allowed after an archive line"),
    (["archive h", "archive_qos 3"], 3, "archive_qos"),
    (["archive h", "archive_batch 0 10ms"], 3, "archive_batch"),
    (["archive h", "archive_batch 10 soon"], 3, "not a time"),
    (["archive h", "archive_queue 10 lots"], 3, "not a size"),
    (["archive bad-name"], 2, "not a name"),
    (["archive h", "archive_topic a"], 2, "no archive_sink"),
    (["archive h", "archive_sink sqlite:/tmp/x.db"], 2, "no archive_topic"),
    (["archive h", "archive_sink sqlite:/tmp/x.db", "archive_topic a", "archive h"], 5,
     "defined twice"),
])
def test_config_errors_name_the_file_and_line(tmp_path, lines, line, words):
    rc, out = run_config(tmp_path, lines)
    assert rc != 0
    assert "bad.conf:%d:" % line in out and words in out, out


def test_a_database_that_refuses_the_schema_stops_ternd(tmp_path):
    db = str(tmp_path / "other.db")
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE history (id INTEGER PRIMARY KEY, something TEXT)")
    con.commit()
    con.close()
    rc, out = run_config(tmp_path, archive_lines(db))
    assert rc != 0
    assert "bad.conf:2:" in out and "no such column" in out, out
    rc, out = run_config(tmp_path, archive_lines(str(tmp_path / "no/such/dir/h.db")))
    assert rc != 0 and "bad.conf:2:" in out and "cannot open" in out, out


def test_a_version_1_store_is_upgraded_and_archives(tmp_path, db):
    # A store written before the archive existed (schema version 1), nor
    # the publishers of retained messages (version 3).
    b = start(tmp_path, [])
    assert b.stop() == 0
    con = sqlite3.connect(os.path.join(b.dir, "ternd.db"))
    con.execute("DROP TABLE archive_queue")
    for col in ("src_client", "src_user", "src_listener"):
        con.execute("ALTER TABLE retained DROP COLUMN " + col)
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    b.extra = archive_lines(db, batch="10000 60s", qos=1)
    b.start()
    c = b.raw()
    c.connect("p")
    acked = pipelined_qos1(c, 5)
    kill9(b)
    assert store_rows(b, "PRAGMA user_version") == [(3,)]
    assert store_rows(b, "SELECT count(*) FROM archive_queue") == [(5,)]
    b.start()
    assert b.stop() == 0
    assert sorted(bytes(r["payload"]) for r in rows(db)) == sorted(acked)


def test_sys_topics_count_per_archive(tmp_path, db):
    b = start(tmp_path, ["sys_interval 1"] + archive_lines(db))
    try:
        c = b.raw()
        c.connect("p")
        for i in range(12):
            c.publish("sensors/t", b"%d" % i, qos=1, pid=i + 1)
        wait_rows(db, 12)
        s = b.raw()
        s.connect("sys")
        deadline = time.time() + 5
        values = {}
        while time.time() < deadline and values.get("archived") != b"12":
            s.subscribe([("$SYS/broker/archive/history/+", 0)], pid=1)
            for p in s.early + s.recv_all(timeout=1.2):
                if p.type == m.PUBLISH:
                    values[p.topic.rsplit("/", 1)[1]] = p.payload
            s.unsubscribe(["$SYS/broker/archive/history/+"])
        assert values.get("archived") == b"12", values
        assert values.get("queued") == b"0" and values.get("dropped") == b"0"
        assert values.get("connected") == b"1"
        assert int(values.get("batch_latency_us")) > 0
        c.disconnect()
        s.disconnect()
    finally:
        b.stop()


def test_a_will_is_archived_with_its_client(tmp_path, db):
    b = start(tmp_path, archive_lines(db, topics=("wills/#",)))
    try:
        c = b.raw(version=m.V5)
        c.connect("dying", username="ann",
                  will={"topic": "wills/dying", "payload": b"gone", "qos": 1,
                        "properties": [(m.USER_PROPERTY, ("why", "crash"))]})
        c.abort()  # no DISCONNECT: the will goes out
        got = wait_rows(db, 1)
        assert [(r["topic"], bytes(r["payload"]), r["qos"], r["client_id"], r["username"],
                 r["user_properties"]) for r in got] == \
            [("wills/dying", b"gone", 1, "dying", "ann", '[["why","crash"]]')]
    finally:
        b.stop()
