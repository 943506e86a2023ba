"""The archive into PostgreSQL (docs/archive.md), against a real server that
the test starts (pg_fixture.py): every field round-trips, batches larger
than one statement, a PostgreSQL restart while QoS 1 messages stream in,
and ternd killed with -9 while PostgreSQL is down (its spilled queue is
written once the server is back). Every acknowledged message must be in
the table afterwards, once.
"""

import json
import os
import signal
import subprocess
import time

import pytest

import mqtt_raw as m
from conftest import Broker, broker_binary, free_port, tail
from pg_fixture import postgres  # noqa: F401 (a fixture)

pytestmark = pytest.mark.ternd_only


def lines(pg, batch="50 20ms", qos=None):
    out = ["archive history", "archive_sink %s" % pg.url, "archive_topic sensors/#",
           "archive_batch %s" % batch]
    if qos is not None:
        out.append("archive_qos %d" % qos)
    return out


def start(tmp_path, extra):
    b = Broker(tmp_path, 2, extra)
    b.start()
    return b


def count(pg):
    try:
        return int(pg.query("SELECT count(*) FROM history")[0][0])
    except AssertionError:
        return 0


def wait_count(pg, n, timeout=15):
    deadline = time.time() + timeout
    got = 0
    while time.time() < deadline:
        got = count(pg)
        if got >= n:
            return got
        time.sleep(0.05)
    return got


def payloads(pg):
    return [bytes.fromhex(r[0]) for r in
            pg.query("SELECT encode(payload, 'hex') FROM history ORDER BY id")]


def send_qos1(c, n, first=1, prefix=b"m"):
    sent = {}
    for i in range(n):
        pid = (first + i - 1) % 65535 + 1
        payload = prefix + b"-%05d" % (first + i)
        sent[pid] = payload
        c.send(m.publish("sensors/load", payload, qos=1, pid=pid, version=c.version))
    acked = []
    for _ in range(n):
        acked.append(sent[c.recv_type(m.PUBACK, timeout=10).pid])
    return acked


def test_every_field_round_trips(tmp_path, postgres):
    b = start(tmp_path, lines(postgres))
    try:
        c = b.raw(version=m.V5)
        c.connect("sensor-7", username="alice", password=b"x")
        payload = bytes(range(256)) + b"\x00"
        props = [(m.CONTENT_TYPE, "application/cbor"), (m.PAYLOAD_FORMAT, 0),
                 (m.CORRELATION_DATA, b"\x00\xff"), (m.RESPONSE_TOPIC, "replies/7"),
                 (m.USER_PROPERTY, ("unit", "C")), (m.USER_PROPERTY, ("unit", "K"))]
        c.publish("sensors/7", payload, qos=1, retain=True, properties=props)
        c.publish("sensors/8", b"", qos=0)
        c.disconnect()
        assert wait_count(postgres, 2) == 2
        r = postgres.query(
            "SELECT topic, encode(payload, 'hex'), qos, retain, client_id, username,"
            " content_type, payload_format, encode(correlation_data, 'hex'), response_topic,"
            " user_properties::text, extract(epoch FROM received_at) FROM history ORDER BY id")
        assert r[0][:10] == ["sensors/7", payload.hex(), "1", "t", "sensor-7", "alice",
                             "application/cbor", "0", "00ff", "replies/7"]
        assert json.loads(r[0][10]) == [["unit", "C"], ["unit", "K"]]
        assert abs(float(r[0][11]) - time.time()) < 30
        assert r[1][:10] == ["sensors/8", "", "0", "f", "sensor-7", "alice", "", "", "", ""]
        idx = postgres.query("SELECT indexname FROM pg_indexes WHERE tablename = 'history'"
                             " ORDER BY 1")
        assert ["history_topic_time"] in idx
    finally:
        b.stop()


def test_batches_larger_than_one_statement(tmp_path, postgres):
    b = start(tmp_path, lines(postgres, batch="3000 200ms"))
    try:
        c = b.raw()
        c.connect("bulk")
        acked = []
        for k in range(5):
            acked += send_qos1(c, 500, first=1 + 500 * k)
        c.disconnect()
        assert wait_count(postgres, 2500) == 2500
        assert sorted(payloads(postgres)) == sorted(acked)
        assert postgres.query("SELECT count(DISTINCT msg_key) FROM history") == [["2500"]]
    finally:
        b.stop()


def test_postgres_restart_while_publishing_loses_nothing_acknowledged(tmp_path, postgres):
    b = start(tmp_path, lines(postgres, batch="20 10ms", qos=1))
    try:
        c = b.raw()
        c.connect("stream")
        acked = send_qos1(c, 200, first=1)
        postgres.stop("fast")
        # The broker does not wait for the database: PUBACKs keep coming.
        t0 = time.time()
        acked += send_qos1(c, 200, first=201)
        assert time.time() - t0 < 5
        postgres.start()
        acked += send_qos1(c, 200, first=401)
        c.disconnect()
        assert wait_count(postgres, 600, timeout=30) == 600, tail(b.log)
        got = payloads(postgres)
        assert sorted(got) == sorted(acked)
        with open(b.log) as f:
            log = f.read()
        assert "archive history: cannot" in log and "writing to the database again" in log
    finally:
        b.stop()


def test_kill_9_while_postgres_is_down_writes_the_spilled_queue_after(tmp_path, postgres):
    b = start(tmp_path, lines(postgres, qos=1))
    c = b.raw()
    c.connect("spill")
    acked = send_qos1(c, 20, first=1)
    assert wait_count(postgres, 20) == 20
    postgres.stop("immediate")
    acked += send_qos1(c, 80, first=21)
    os.kill(b.proc.pid, signal.SIGKILL)
    b.proc.wait(5)
    c.close()
    # ternd starts with its database down, and waits for it.
    b.start()
    try:
        time.sleep(0.5)
        assert b.alive()
        postgres.start()
        assert wait_count(postgres, 100, timeout=30) == 100, tail(b.log)
        got = payloads(postgres)
        assert sorted(got) == sorted(acked), "duplicates or losses"
    finally:
        assert b.stop() == 0, tail(b.log)


def test_a_table_of_another_schema_stops_ternd(tmp_path, postgres):
    postgres.query("CREATE TABLE history (id int)")
    conf = tmp_path / "bad.conf"
    conf.write_text("listener %d 127.0.0.1\n" % free_port() + "\n".join(lines(postgres)) + "\n")
    p = subprocess.run([broker_binary(), "-c", str(conf)], capture_output=True, text=True,
                       timeout=30, cwd=str(tmp_path))
    out = p.stdout + p.stderr
    assert p.returncode != 0
    assert "bad.conf:2:" in out and "refuses the archive table" in out, out


def test_a_stop_with_postgres_down_waits_its_grace_then_counts_the_loss(tmp_path, postgres):
    # Without persistence nothing is spilled: what the database did not
    # take within the grace (5 s) is logged as not archived.
    b = start(tmp_path, ["persistence false"] + lines(postgres))
    c = b.raw()
    c.connect("p")
    for i in range(10):
        c.publish("sensors/x", b"%d" % i, qos=1, pid=i + 1)
    c.disconnect()
    assert wait_count(postgres, 10) == 10
    postgres.stop("immediate")
    c = b.raw()
    c.connect("p")
    for i in range(7):
        c.publish("sensors/x", b"late %d" % i, qos=1, pid=i + 1)
    c.disconnect()
    t0 = time.time()
    os.kill(b.proc.pid, signal.SIGTERM)
    assert b.proc.wait(20) == 0
    took = time.time() - t0
    assert 4 < took < 12, took
    with open(b.log) as f:
        log = f.read()
    assert "archive history: 7 messages were not archived" in log, log[-2000:]
