"""The archive into MongoDB (docs/archive.md), through the MongoDB C driver,
against a MongoDB-wire-protocol server that runs here: Debian's
python3-mockupdb over python3-mongomock (mongo_mock.py; no MongoDB server is
in the registries this machine reaches). What the sink wrote is read back
through the protocol, with pymongo and with `tern history`. The scenarios
are PostgreSQL's: every field, batches, the server going away and coming
back while QoS 1 streams in, and ternd killed with -9 while it is away.
"""

import datetime
import os
import signal
import subprocess
import time

import pytest

import mqtt_raw as m
from conftest import Broker, broker_binary, free_port, tail
from mongo_mock import mongo  # noqa: F401 (a fixture)
from test_tern_tools import tern_binary

pytestmark = pytest.mark.ternd_only


def lines(mm, batch="50 20ms", qos=None):
    out = ["archive history", "archive_sink %s" % mm.url, "archive_topic sensors/#",
           "archive_batch %s" % batch]
    if qos is not None:
        out.append("archive_qos %d" % qos)
    return out


def start(tmp_path, extra):
    b = Broker(tmp_path, 2, extra)
    b.start()
    return b


def docs(mm):
    c, coll = mm.collection()
    try:
        return list(coll.find({}).sort([("received_at", 1), ("_id", 1)]))
    finally:
        c.close()


def wait_docs(mm, n, timeout=15):
    deadline = time.time() + timeout
    got = []
    while time.time() < deadline:
        got = docs(mm)
        if len(got) >= n:
            return got
        time.sleep(0.05)
    return got


def send_qos1(c, n, first=1, prefix=b"m"):
    sent = {}
    for i in range(n):
        pid = (first + i - 1) % 65535 + 1
        payload = prefix + b"-%05d" % (first + i)
        sent[pid] = payload
        c.send(m.publish("sensors/load", payload, qos=1, pid=pid, version=c.version))
    return [sent[c.recv_type(m.PUBACK, timeout=10).pid] for _ in range(n)]


def test_every_field_round_trips(tmp_path, mongo):
    b = start(tmp_path, lines(mongo))
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
        got = wait_docs(mongo, 2)
        assert len(got) == 2
        d = got[0]
        assert (d["topic"], bytes(d["payload"]), d["qos"], d["retain"]) == \
            ("sensors/7", payload, 1, True)
        assert (d["client_id"], d["username"], d["content_type"], d["payload_format"]) == \
            ("sensor-7", "alice", "application/cbor", 0)
        assert bytes(d["correlation_data"]) == b"\x00\xff"
        assert d["response_topic"] == "replies/7"
        assert d["user_properties"] == [["unit", "C"], ["unit", "K"]]
        # pymongo gives the BSON date as a naive UTC datetime.
        assert abs((d["received_at"] - datetime.datetime.utcnow()).total_seconds()) < 30
        d = got[1]
        assert (d["topic"], bytes(d["payload"]), d["retain"]) == ("sensors/8", b"", False)
        for k in ("content_type", "correlation_data", "response_topic", "user_properties",
                  "payload_format"):
            assert k not in d
        # And through `tern history`, in tern sub's formats.
        p = subprocess.run([tern_binary(), "history", "--sink", mongo.url, "-t", "sensors/+",
                            "-F", "%t %q %r %P %C"], capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert p.stdout == b"sensors/7 1 1 unit:C unit:K application/cbor\nsensors/8 0 0  \n"
    finally:
        b.stop()


def test_batches_and_retried_batches_write_each_message_once(tmp_path, mongo):
    b = start(tmp_path, lines(mongo, batch="700 200ms"))
    try:
        c = b.raw()
        c.connect("bulk")
        acked = []
        for k in range(3):
            acked += send_qos1(c, 500, first=1 + 500 * k)
        c.disconnect()
        got = wait_docs(mongo, 1500)
        assert sorted(bytes(d["payload"]) for d in got) == sorted(acked)
    finally:
        assert b.stop() == 0


def test_server_away_while_publishing_loses_nothing_acknowledged(tmp_path, mongo):
    b = start(tmp_path, lines(mongo, batch="20 10ms", qos=1))
    try:
        c = b.raw()
        c.connect("stream")
        acked = send_qos1(c, 200, first=1)
        mongo.down()
        t0 = time.time()
        acked += send_qos1(c, 200, first=201)
        assert time.time() - t0 < 5, "the broker waited for the database"
        time.sleep(0.5)
        mongo.up()
        acked += send_qos1(c, 200, first=401)
        c.disconnect()
        got = wait_docs(mongo, 600, timeout=30)
        payloads = [bytes(d["payload"]) for d in got]
        assert sorted(payloads) == sorted(acked), tail(b.log)
        with open(b.log) as f:
            log = f.read()
        assert "archive history: cannot" in log and "writing to the database again" in log
    finally:
        b.stop()


def test_kill_9_while_the_server_is_away_writes_the_spilled_queue_after(tmp_path, mongo):
    b = start(tmp_path, lines(mongo, qos=1))
    c = b.raw()
    c.connect("spill")
    acked = send_qos1(c, 20, first=1)
    assert len(wait_docs(mongo, 20)) == 20
    mongo.down()
    acked += send_qos1(c, 80, first=21)
    os.kill(b.proc.pid, signal.SIGKILL)
    b.proc.wait(5)
    c.close()
    b.start()  # with its database away
    try:
        time.sleep(0.5)
        assert b.alive()
        mongo.up()
        got = wait_docs(mongo, 100, timeout=30)
        assert sorted(bytes(d["payload"]) for d in got) == sorted(acked), tail(b.log)
    finally:
        assert b.stop() == 0, tail(b.log)


@pytest.mark.parametrize("url,words", [("mongodb://127.0.0.1:1", "names no database"),
                                       ("mongodb://127.0.0.1:1/db?w=x&&", "mongodb")])
def test_a_bad_url_stops_ternd_naming_its_line(tmp_path, url, words):
    conf = tmp_path / "bad.conf"
    conf.write_text("listener %d 127.0.0.1\narchive h\narchive_sink %s\narchive_topic a\n"
                    % (free_port(), url))
    p = subprocess.run([broker_binary(), "-c", str(conf)], capture_output=True, text=True,
                       timeout=30, cwd=str(tmp_path))
    assert p.returncode != 0
    assert "bad.conf:3:" in p.stdout + p.stderr and words in p.stdout + p.stderr, p.stdout


@pytest.mark.single_node("a QoS 1 message over NATS' max_payload (1 MB) cannot be "
                         "stored in the cluster, so it is refused (docs/cluster.md)")
def test_a_message_over_the_document_limit_is_dropped_not_retried_forever(tmp_path, mongo):
    http = free_port()
    b = start(tmp_path, ["http_listener %d 127.0.0.1" % http] + lines(mongo, batch="10 50ms"))
    try:
        c = b.raw()
        c.connect("big")
        c.publish("sensors/a", b"before", qos=1, pid=1)
        c.publish("sensors/big", b"x" * (17 << 20), qos=1, pid=2, complete=False)
        c.recv_type(m.PUBACK, timeout=20)
        c.publish("sensors/b", b"after", qos=1, pid=3)
        c.disconnect()
        got = wait_docs(mongo, 2)
        time.sleep(0.3)
        assert [bytes(d["payload"]) for d in docs(mongo)] == [b"before", b"after"]
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % http, timeout=5) as r:
            text = r.read().decode()
        assert 'tern_archive_messages_dropped_total{archive="history"} 1' in text
        with open(b.log) as f:
            assert "is not archived: a message is over MongoDB's document size limit" in f.read()
    finally:
        assert b.stop() == 0
