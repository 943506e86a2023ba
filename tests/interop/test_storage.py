"""Durable storage: what ternd promises survives a restart and a crash.

ternd keeps sessions, subscriptions, retained messages, queued and in-flight
messages and inbound QoS 2 packet ids in SQLite (the default, `storage
sqlite`), and acknowledges a QoS 1/2 PUBLISH only once the commit that holds
it is done. These tests stop the broker with SIGTERM or kill it with SIGKILL
between steps, start it again on the same database, and check with raw
clients what comes back: every acknowledged message, QoS 1 at least once and
QoS 2 exactly once (section 4.3.3, carried across a restart of the Server,
which the spec leaves to the Server to make durable), sessions
with Session Present 1 [MQTT-3.2.2-2], retained messages [MQTT-3.3.1-5].
"""

import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.request

import pytest

import mqtt_raw as m
from conftest import CLUSTER_MODE, free_port, tail

pytestmark = pytest.mark.ternd_only


def kill(broker, how):
    """End the broker by SIGKILL (a crash) or SIGTERM (a clean stop)."""
    if how == "kill":
        os.kill(broker.proc.pid, signal.SIGKILL)
        broker.proc.wait(5)
    else:
        assert broker.stop() == 0, tail(broker.log)


def db_path(broker):
    return os.path.join(broker.dir, "ternd.db")


def query(broker, sql):
    """Reads the database; ternd holds it exclusively, so only while it is
    stopped."""
    con = sqlite3.connect(db_path(broker))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("how", ["kill", "term"])
@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_restart_keeps_session_subscriptions_queue_and_retained(broker, version, how):
    """Messages queued for an offline persistent session, its subscriptions
    and retained messages are there after a restart (or crash) of ternd; the
    session resumes with Session Present 1 [MQTT-3.2.2-2] and gets every
    acknowledged message, QoS 2 exactly once."""
    expiry = [(m.SESSION_EXPIRY, 600)] if version == m.V5 else None
    sub = broker.raw(version)
    sub.connect("keeper", clean=False, properties=expiry)
    sub.subscribe([("st/one/#", 1), ("st/two/#", 2)])
    sub.disconnect()

    pub = broker.raw(version)
    pub.connect("pub-st")
    for i in range(5):
        pub.publish("st/one/x", b"q1-%d" % i, qos=1, pid=i + 1)
    for i in range(3):
        pub.publish("st/two/y", b"q2-%d" % i, qos=2, pid=10 + i)
    pub.publish("st/ret", b"kept", qos=1, retain=True, pid=20)
    pub.disconnect()

    kill(broker, how)
    broker.start()

    sub = broker.raw(version)
    ack = sub.connect("keeper", clean=False, properties=expiry)
    assert ack.session_present, "session lost across the restart"
    got = []
    for _ in range(8):
        p = sub.recv_publish(timeout=5)
        got.append((p.topic, p.payload, p.qos))
    assert sorted(got) == sorted(
        [("st/one/x", b"q1-%d" % i, 1) for i in range(5)]
        + [("st/two/y", b"q2-%d" % i, 2) for i in range(3)])
    assert sub.no_packet(0.3), "more than each message once"
    # The subscription itself came back: a new message still arrives.
    pub = broker.raw(version)
    pub.connect("pub-st2")
    pub.publish("st/one/later", b"after", qos=1, pid=1)
    assert sub.recv_publish(timeout=5).payload == b"after"
    # And the retained message [MQTT-3.3.1-5].
    fresh = broker.raw(version)
    fresh.connect("fresh")
    fresh.subscribe([("st/ret", 1)])
    retained = fresh.early or [fresh.recv_type(m.PUBLISH)]
    assert retained[0].payload == b"kept" and retained[0].retain
    for c in (sub, pub, fresh):
        c.disconnect()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_crash_keeps_inflight_and_redelivers_with_dup(broker, version):
    """A QoS 1 and a QoS 2 message sent but not acknowledged before a crash
    are sent again after it, with DUP 1 and the same packet identifier
    [MQTT-4.4.0-1] [MQTT-3.3.1-1]; a QoS 2 message whose PUBREC arrived
    continues with PUBREL [MQTT-4.4.0-1]."""
    expiry = [(m.SESSION_EXPIRY, 600)] if version == m.V5 else None
    sub = broker.raw(version)
    sub.connect("inflight", clean=False, properties=expiry)
    sub.subscribe([("if/#", 2)])
    pub = broker.raw(version)
    pub.connect("pub-if")
    pub.publish("if/a", b"one", qos=1, pid=1)
    pub.publish("if/b", b"two", qos=2, pid=2)
    pub.publish("if/c", b"three", qos=2, pid=3)
    first = {}
    for _ in range(3):
        p = sub.recv_type(m.PUBLISH)
        first[p.payload] = p
    # Acknowledge only the first half of "three": PUBREC, no PUBCOMP.
    sub.send(m.pubrec(first[b"three"].pid, version))
    rel = sub.recv_type(m.PUBREL)
    assert rel.pid == first[b"three"].pid
    time.sleep(0.3)  # the state change is written asynchronously
    kill(broker, "kill")
    broker.start()

    sub = broker.raw(version)
    assert sub.connect("inflight", clean=False, properties=expiry).session_present
    again = {}
    rels = []
    for _ in range(3):
        p = sub.recv(timeout=5)
        if p.type == m.PUBLISH:
            again[p.payload] = p
        elif p.type == m.PUBREL:
            rels.append(p.pid)
    assert set(again) == {b"one", b"two"}, again
    for k, p in again.items():
        assert p.dup, "redelivered without DUP [MQTT-3.3.1-1]"
        assert p.pid == first[k].pid, "packet id changed across the crash"
    assert rels == [first[b"three"].pid]
    for p in again.values():
        sub.ack(p)
    sub.send(m.pubcomp(rels[0], version))
    assert sub.no_packet(0.3)
    sub.disconnect()


def test_inbound_qos2_id_survives_crash(broker):
    """A QoS 2 PUBLISH answered with PUBREC is not delivered a second time
    when the publisher resends it (DUP) after a crash of the broker: the
    packet id awaiting PUBREL is stored [MQTT-4.3.3-10] (method B)."""
    sub = broker.raw(m.V311)
    sub.connect("q2sub", clean=False)
    sub.subscribe([("q2/#", 2)])
    sub.disconnect()
    pub = broker.raw(m.V311)
    pub.connect("q2pub", clean=False)
    pub.send(m.publish("q2/x", b"once", qos=2, pid=7))
    assert pub.recv_type(m.PUBREC).pid == 7
    kill(broker, "kill")
    broker.start()
    pub = broker.raw(m.V311)
    assert pub.connect("q2pub", clean=False).session_present
    pub.send(m.publish("q2/x", b"once", qos=2, pid=7, dup=True))
    assert pub.recv_type(m.PUBREC).pid == 7
    pub.send(m.pubrel(7))
    assert pub.recv_type(m.PUBCOMP).pid == 7
    sub = broker.raw(m.V311)
    sub.connect("q2sub", clean=False)
    got = sub.recv_publish(timeout=5)
    assert got.payload == b"once"
    assert sub.no_packet(0.5), "QoS 2 message delivered twice"
    sub.disconnect()
    pub.disconnect()


def test_expired_session_is_removed_from_the_store(broker):
    """A v5 session whose Session Expiry Interval passed is deleted, in
    memory and in the database [MQTT-3.1.2-23]."""
    c = broker.raw(m.V5)
    c.connect("short", clean=False, properties=[(m.SESSION_EXPIRY, 1)])
    c.subscribe([("ex/#", 1)])
    c.disconnect()
    kill(broker, "term")
    assert query(broker, "SELECT client_id FROM sessions") == [("short",)]
    broker.start()
    time.sleep(1.6)
    kill(broker, "term")
    assert query(broker, "SELECT count(*) FROM sessions") == [(0,)]
    assert query(broker, "SELECT count(*) FROM subscriptions") == [(0,)]
    broker.start()
    c = broker.raw(m.V5)
    assert not c.connect("short", clean=False).session_present
    c.disconnect()


# ---- every way a session ends deletes what the store kept of it ----
#
# Each test leaves a stored session with state under it (a subscription,
# queued or in-flight QoS 1 messages, an inbound QoS 2 id), ends the session
# one way, stops ternd and checks the file, then starts ternd again: the
# client resuming with clean start 0 gets Session Present 0 and none of the
# old messages [MQTT-3.2.2-2] [MQTT-3.1.2-23].

EXPIRY = [(m.SESSION_EXPIRY, 600)]


def _stored_session(broker, version, cid, n=2):
    """A persistent session of cid subscribed to end/<cid>/# with n QoS 1
    messages queued for it while it is offline."""
    props = EXPIRY if version == m.V5 else None
    c = broker.raw(version)
    c.connect(cid, clean=False, properties=props)
    c.subscribe([("end/%s/#" % cid, 1)])
    c.disconnect()
    pub = broker.raw(version)
    pub.connect(cid + "-pub")
    for i in range(n):
        pub.publish("end/%s/x" % cid, b"old-%d" % i, qos=1, pid=i + 1)
    pub.disconnect()


def _resume_unacked(broker, version, cid, n=2):
    """Resumes cid's session and receives its queued messages without
    acknowledging them (they stay in flight), and leaves an inbound QoS 2
    message waiting for PUBREL. Returns the connection."""
    props = EXPIRY if version == m.V5 else None
    c = broker.raw(version)
    assert c.connect(cid, clean=False, properties=props).session_present
    for _ in range(n):
        c.recv_publish(timeout=5, ack=False)
    c.send(m.publish("end/elsewhere", b"q2", qos=2, pid=77, version=version))
    assert c.recv_type(m.PUBREC).pid == 77
    return c


def _assert_ended(broker, version, cid):
    """After a clean stop nothing of cid is in the file, and after a
    restart its session is not there either."""
    time.sleep(0.3)  # the deletion is committed asynchronously
    kill(broker, "term")
    assert query(broker, "SELECT count(*) FROM sessions WHERE client_id = '%s'" % cid) == [(0,)]
    for table in ("subscriptions", "deliveries", "inbound_qos2"):
        assert query(broker, "SELECT count(*) FROM %s" % table) == [(0,)], table
    assert query(broker, "SELECT count(*) FROM messages") == [(0,)]
    broker.start()
    c = broker.raw(version)
    ack = c.connect(cid, clean=False, properties=EXPIRY if version == m.V5 else None)
    assert not ack.session_present, "an ended session came back after a restart"
    assert c.no_packet(0.5), "an ended session's messages came back"
    # Its subscription went with it.
    pub = broker.raw(version)
    pub.connect(cid + "-pub2")
    pub.publish("end/%s/x" % cid, b"new", qos=1, pid=9)
    assert c.no_packet(0.3)
    pub.disconnect()
    c.disconnect()


def test_disconnect_with_session_expiry_0_deletes_the_stored_session(broker):
    """A v5 DISCONNECT that sets Session Expiry Interval 0 (section
    3.14.2.2.2) ends a stored session at the disconnect: its state must not
    outlive the connection [MQTT-3.1.2-23], in memory or in the file."""
    _stored_session(broker, m.V5, "ender")
    c = _resume_unacked(broker, m.V5, "ender")
    c.disconnect(rc=0, properties=[(m.SESSION_EXPIRY, 0)])
    _assert_ended(broker, m.V5, "ender")


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_clean_start_deletes_the_stored_session(broker, version):
    """Clean start (clean session in 3.1.1) discards the stored session
    [MQTT-3.1.2-4] [MQTT-3.1.2-6]; a session that then ends with the
    connection leaves nothing in the file."""
    _stored_session(broker, version, "cleaner")
    c = broker.raw(version)
    assert not c.connect("cleaner", clean=True).session_present
    c.disconnect()
    _assert_ended(broker, version, "cleaner")


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_takeover_with_clean_start_deletes_the_stored_session(broker, version):
    """A second connection with clean start takes the session over from an
    online one [MQTT-3.1.4-3] and discards it [MQTT-3.1.2-4]: the in-flight
    messages and the inbound QoS 2 id of the old one go from the file."""
    _stored_session(broker, version, "taken")
    old = _resume_unacked(broker, version, "taken")
    new = broker.raw(version)
    assert not new.connect("taken", clean=True).session_present
    old.wait_closed(timeout=5)
    new.disconnect()
    _assert_ended(broker, version, "taken")


def test_resume_with_session_expiry_0_deletes_the_stored_session(broker):
    """A stored session resumed with Session Expiry Interval 0 ends with
    that connection [MQTT-3.1.2-23]."""
    _stored_session(broker, m.V5, "shortlived")
    c = broker.raw(m.V5)
    assert c.connect("shortlived", clean=False).session_present
    for _ in range(2):
        c.recv_publish(timeout=5, ack=False)
    c.disconnect()
    _assert_ended(broker, m.V5, "shortlived")


def test_expiry_while_offline_deletes_the_stored_session(broker):
    """A session whose expiry interval passes while it is offline is
    deleted with its queued messages [MQTT-3.1.2-23]."""
    c = broker.raw(m.V5)
    c.connect("brief", clean=False, properties=[(m.SESSION_EXPIRY, 1)])
    c.subscribe([("end/brief/#", 1)])
    c.disconnect()
    pub = broker.raw(m.V5)
    pub.connect("brief-pub")
    pub.publish("end/brief/x", b"old", qos=1, pid=1)
    pub.disconnect()
    time.sleep(1.8)
    _assert_ended(broker, m.V5, "brief")


@pytest.mark.parametrize("configured", ["before", "after"])
def test_persistent_client_expiration_deletes_the_stored_session(broker, configured):
    """persistent_client_expiration (mosquitto's directive) ends 3.1.1
    persistent sessions offline for longer than it, also those stored
    before the directive was set. The offline time is made by moving the
    stored disconnection two hours back while ternd is stopped."""
    if configured == "before":
        kill(broker, "term")
        broker.extra.append("persistent_client_expiration 1h")
        broker.start()
    _stored_session(broker, m.V311, "forgotten")
    kill(broker, "term")
    wall_ms = int(time.time() * 1000)
    con = sqlite3.connect(db_path(broker))
    con.execute("UPDATE sessions SET disconnected_at = ? WHERE client_id = 'forgotten'",
                (wall_ms - 2 * 3600 * 1000,))
    con.commit()
    con.close()
    if configured == "after":
        broker.extra.append("persistent_client_expiration 1h")
    broker.start()
    time.sleep(0.6)  # the expiry timer runs every 200 ms
    _assert_ended(broker, m.V311, "forgotten")


# ---- a failing store: a refused message leaves no trace ----

# Why a cluster (TERN_TEST_CLUSTER) skips some of them (docs/cluster.md).
IN_JETSTREAM = ("JetStream, not the local store, keeps a persistent session's QoS 1/2 "
                "messages: a failing local disk does not refuse them")
REDELIVERED_LATE = ("what the stopped run had been handed comes again after JetStream's "
                    "3 s ack wait, after newer messages")


class SmallDisk:
    """A 1 MiB tmpfs that ternd keeps its database on, which the test can
    fill up (a real ENOSPC, so SQLite's commits fail with SQLITE_FULL) and
    free again. Needs root (mount); the broker is moved onto it and back."""

    def __init__(self, broker):
        self.broker = broker
        self.dir = os.path.join(broker.dir, "small")
        os.makedirs(self.dir, exist_ok=True)
        kill(broker, "term")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", self.dir],
                           capture_output=True)
        if r.returncode != 0:
            broker.start()
            pytest.skip("cannot mount a tmpfs (needs root): %s" % r.stderr.decode().strip())
        self.line = "persistence_location %s" % self.dir
        broker.extra.append(self.line)
        broker.start()

    def fill(self):
        time.sleep(0.3)  # what is being committed goes first
        fd = os.open(os.path.join(self.dir, "filler"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (65536, 4096, 512, 1):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError:
                    pass
        finally:
            os.close(fd)

    def free(self):
        os.remove(os.path.join(self.dir, "filler"))

    def close(self):
        self.broker.stop()
        subprocess.run(["umount", self.dir], check=False)
        self.broker.extra.remove(self.line)
        self.broker.start()


@pytest.fixture
def small_disk(broker):
    d = SmallDisk(broker)
    yield d
    d.close()


def _persistent_subscriber(broker, version):
    props = EXPIRY if version == m.V5 else None
    c = broker.raw(version)
    c.connect("full-sub", clean=False, properties=props)
    c.subscribe([("full/#", 2)])
    c.disconnect()


def _received_after_restart(broker, version):
    """The payloads the offline subscriber gets after a restart."""
    kill(broker, "term")
    broker.start()
    c = broker.raw(version)
    assert c.connect("full-sub", clean=False,
                     properties=EXPIRY if version == m.V5 else None).session_present
    got = []
    while True:
        try:
            # In a cluster, what the stopped run had been handed comes
            # again after JetStream's ack wait (3 s).
            got.append(c.recv_publish(timeout=5 if CLUSTER_MODE else 1).payload)
        except TimeoutError:
            break
    c.disconnect()
    return got


@pytest.mark.single_node(IN_JETSTREAM)
def test_qos2_refused_by_a_failing_store_leaves_no_packet_id(small_disk, broker):
    """The store cannot commit (the disk is full): the QoS 2 PUBLISH is
    answered PUBREC 0x80 and its packet id is forgotten, so the next PUBLISH
    with that id, once the store works again, is a new message
    [MQTT-4.3.3-9]: routed, stored and delivered, not taken for a
    retransmission."""
    _persistent_subscriber(broker, m.V5)
    pub = broker.raw(m.V5)
    pub.connect("full-pub", clean=False, properties=EXPIRY)
    small_disk.fill()
    pub.send(m.publish("full/x", b"refused", qos=2, pid=5, version=m.V5))
    rec = pub.recv_type(m.PUBREC, timeout=10)
    assert rec.pid == 5 and rec.rc == 0x80, rec
    small_disk.free()
    pub.send(m.publish("full/x", b"second", qos=2, pid=5, version=m.V5))
    rec = pub.recv_type(m.PUBREC, timeout=10)
    assert rec.pid == 5 and rec.rc == 0, rec
    pub.send(m.pubrel(5, m.V5))
    assert pub.recv_type(m.PUBCOMP).pid == 5
    pub.disconnect()
    assert _received_after_restart(broker, m.V5) == [b"second"]


@pytest.mark.single_node(IN_JETSTREAM)
def test_qos1_refused_by_a_failing_store_can_be_sent_again(small_disk, broker):
    """QoS 1: PUBACK 0x80 while the store fails, and the same message sent
    again once it works is acknowledged and kept."""
    _persistent_subscriber(broker, m.V5)
    pub = broker.raw(m.V5)
    pub.connect("full-pub1", clean=False, properties=EXPIRY)
    small_disk.fill()
    pub.send(m.publish("full/y", b"q1", qos=1, pid=6, version=m.V5))
    ack = pub.recv_type(m.PUBACK, timeout=10)
    assert ack.pid == 6 and ack.rc == 0x80, ack
    small_disk.free()
    pub.send(m.publish("full/y", b"q1", qos=1, pid=6, dup=True, version=m.V5))
    ack = pub.recv_type(m.PUBACK, timeout=10)
    assert ack.pid == 6 and ack.rc == 0, ack
    pub.disconnect()
    assert _received_after_restart(broker, m.V5) == [b"q1"]


@pytest.mark.single_node(IN_JETSTREAM)
def test_qos2_resent_after_a_store_failure_is_stored(small_disk, broker):
    """3.1.1 cannot refuse in PUBREC: the broker closes the connection and
    the client sends the PUBLISH again (DUP) when it reconnects
    [MQTT-4.4.0-1]. That PUBLISH is handled as the first one, since no
    PUBREC was sent: it is stored before its PUBREC, so it survives a
    restart (before, the id was remembered and the PUBREC sent at once,
    for a message the store never had)."""
    _persistent_subscriber(broker, m.V311)
    pub = broker.raw(m.V311)
    pub.connect("full-pub3", clean=False)
    small_disk.fill()
    pub.send(m.publish("full/z", b"resent", qos=2, pid=8))
    pub.wait_closed(timeout=10)
    small_disk.free()
    pub = broker.raw(m.V311)
    assert pub.connect("full-pub3", clean=False).session_present
    pub.send(m.publish("full/z", b"resent", qos=2, pid=8, dup=True))
    assert pub.recv_type(m.PUBREC, timeout=10).pid == 8
    pub.send(m.pubrel(8))
    assert pub.recv_type(m.PUBCOMP).pid == 8
    pub.disconnect()
    assert _received_after_restart(broker, m.V311) == [b"resent"]


@pytest.mark.single_node(REDELIVERED_LATE)
@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_pubcomp_waits_until_the_store_forgot_the_qos2_id(small_disk, broker, version):
    """The PUBREL's deletion of the QoS 2 id cannot be committed: no PUBCOMP
    (which would free the id for reuse while the file still has it), the
    connection is closed instead, and the PUBREL sent again on reconnect
    [MQTT-4.4.0-1] completes the flow. After a restart a new message with
    the same id is routed, not taken for a retransmission [MQTT-4.3.3-12]."""
    _persistent_subscriber(broker, version)
    props = EXPIRY if version == m.V5 else None
    pub = broker.raw(version)
    pub.connect("full-pubrel", clean=False, properties=props)
    pub.send(m.publish("full/w", b"first", qos=2, pid=9, version=version))
    assert pub.recv_type(m.PUBREC, timeout=10).pid == 9
    small_disk.fill()
    pub.send(m.pubrel(9, version))
    got = pub.wait_closed(timeout=10)
    assert not [p for p in got if p.type == m.PUBCOMP], got
    small_disk.free()
    pub = broker.raw(version)
    assert pub.connect("full-pubrel", clean=False, properties=props).session_present
    pub.send(m.pubrel(9, version))
    comp = pub.recv_type(m.PUBCOMP, timeout=10)
    assert comp.pid == 9 and comp.rc == 0, comp
    pub.disconnect()
    kill(broker, "term")
    broker.start()
    pub = broker.raw(version)
    assert pub.connect("full-pubrel", clean=False, properties=props).session_present
    pub.publish("full/w", b"after", qos=2, pid=9)
    pub.disconnect()
    assert _received_after_restart(broker, version) == [b"first", b"after"]


@pytest.mark.parametrize("qos", [1, 2])
def test_clean_session_acks_do_not_depend_on_the_store(small_disk, broker, qos):
    """The store cannot commit (the disk is full), yet a QoS 1/2 message that
    reaches only clean sessions is acknowledged with success and delivered:
    it has nothing to commit, so nothing to fail. (A message for a persistent
    session is refused then: test_qos1_refused_by_a_failing_store_...)"""
    sub = broker.raw(m.V5)
    sub.connect("clean-full-sub", clean=True)
    sub.subscribe([("cf/#", 2)])
    pub = broker.raw(m.V5)
    pub.connect("clean-full-pub", clean=True)
    small_disk.fill()
    pub.send(m.publish("cf/x", b"fine", qos=qos, pid=3, version=m.V5))
    ack = pub.recv_type(m.PUBACK if qos == 1 else m.PUBREC, timeout=10)
    assert ack.pid == 3 and ack.rc == 0, ack
    assert sub.recv_publish(timeout=5).payload == b"fine"
    if qos == 2:
        pub.send(m.pubrel(3, m.V5))
        assert pub.recv_type(m.PUBCOMP).pid == 3
    small_disk.free()
    sub.disconnect()
    pub.disconnect()


def test_a_cancelled_will_is_cancelled_in_the_store_too(broker):
    """A new connection before the Will Delay Interval passed cancels the
    pending will [MQTT-3.1.3-9]. The file must forget it as well: otherwise a
    restart after the reconnect would bring the will back and publish it."""
    c = broker.raw(m.V5)
    c.connect("will-back", clean=False, properties=EXPIRY,
              will={"topic": "wb/x", "payload": b"cancelled", "qos": 1,
                    "properties": [(m.WILL_DELAY, 300)]})
    c.disconnect(rc=0x04)  # disconnect with will message: it is pending
    kill(broker, "term")
    assert query(broker, "SELECT will_message IS NOT NULL FROM sessions"
                         " WHERE client_id = 'will-back'") == [(1,)]
    broker.start()
    c = broker.raw(m.V5)
    assert c.connect("will-back", clean=False, properties=EXPIRY).session_present
    c.disconnect()
    kill(broker, "term")
    assert query(broker, "SELECT will_message IS NOT NULL FROM sessions"
                         " WHERE client_id = 'will-back'") == [(0,)]
    broker.start()


def test_clean_sessions_are_not_stored(broker):
    """Sessions that end with their connection leave nothing in the file."""
    c = broker.raw(m.V311)
    c.connect("transient", clean=True)
    c.subscribe([("tr/#", 1)])
    pub = broker.raw(m.V311)
    pub.connect("tr-pub")
    pub.publish("tr/x", b"x", qos=1)
    assert c.recv_publish(timeout=5).payload == b"x"
    c.disconnect()
    pub.disconnect()
    kill(broker, "kill")
    assert query(broker, "SELECT count(*) FROM sessions") == [(0,)]
    assert query(broker, "SELECT count(*) FROM messages") == [(0,)]
    broker.start()


def _store_batches(port):
    """tern_store_batches_total from /metrics: worker batches the store has
    written. A batch is counted before the acknowledgements it held go out,
    so once an acknowledgement is in, its batch is counted."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    for line in text.splitlines():
        if line.startswith("tern_store_batches_total "):
            return float(line.split()[1])
    raise AssertionError("no tern_store_batches_total in /metrics:\n" + text)


@pytest.mark.single_node("a persistent session's delivery is in its JetStream queue, "
                         "not a row of the local store")
@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_clean_session_deliveries_write_nothing_and_wait_for_nothing(broker, version):
    """QoS 1 and 2 messages between sessions that end with their connection
    (clean session, Session Expiry Interval 0 [MQTT-3.1.2-23]) have nothing to
    survive a restart: no store batch is written for them, so their PUBACK /
    PUBREC waits for no commit. The same message reaching a persistent
    session is written, and its PUBACK comes after that commit."""
    port = free_port()
    broker.extra.append("http_listener %d" % port)
    kill(broker, "term")
    broker.start()
    sub = broker.raw(version)
    sub.connect("clean-sub", clean=True)
    sub.subscribe([("cl/#", 2)])
    pub = broker.raw(version)
    pub.connect("clean-pub", clean=True)
    before = _store_batches(port)
    for i in range(10):
        qos = 1 + i % 2
        ack = pub.publish("cl/x", b"m%d" % i, qos=qos, pid=i + 1)
        assert ack.pid == i + 1 and ack.rc == 0, ack
        got = sub.recv_publish(timeout=5)
        assert (got.payload, got.qos) == (b"m%d" % i, qos)
    retained = pub.publish("cl/r", b"kept", qos=1, retain=True, pid=20)
    assert retained.rc == 0
    sub.recv_publish(timeout=5)
    after_retained = _store_batches(port)
    assert after_retained > before, "a retained message is stored"
    pub.publish("cl/x", b"again", qos=1, pid=21)
    sub.recv_publish(timeout=5)
    assert _store_batches(port) == after_retained, \
        "clean-session QoS 1/2 deliveries were written to the store"

    durable = broker.raw(version)
    durable.connect("durable-sub", clean=False,
                    properties=EXPIRY if version == m.V5 else None)
    durable.subscribe([("cl/x", 1)])
    settled = _store_batches(port)
    pub.publish("cl/x", b"for the durable one", qos=1, pid=22)
    assert _store_batches(port) > settled, "a persistent session's delivery is written"
    assert durable.recv_publish(timeout=5).payload == b"for the durable one"
    sub.disconnect()
    pub.disconnect()
    durable.disconnect()


@pytest.mark.single_node("the session's record is in JetStream: it resumes after the "
                         "node's restart (test_cluster_sessions.py)")
@pytest.mark.broker_config("storage memory")
def test_memory_storage_keeps_nothing(broker):
    """With `storage memory` nothing survives a restart, and no file is
    written."""
    c = broker.raw(m.V311)
    c.connect("mem", clean=False)
    c.subscribe([("mem/#", 1)])
    c.disconnect()
    kill(broker, "term")
    assert not os.path.exists(db_path(broker))
    broker.start()
    c = broker.raw(m.V311)
    assert not c.connect("mem", clean=False).session_present
    c.disconnect()


def _start_fails(broker):
    """Starts ternd on the broker's config and returns (rc, output)."""
    r = subprocess.run([broker.binary, "-c", broker.conf], cwd=broker.dir,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


@pytest.mark.parametrize("kind", ["foreign", "newer", "garbage"])
def test_refuses_a_database_it_cannot_trust(broker, kind):
    """A file that is not a tern database, has a newer schema or is not
    SQLite at all: ternd refuses to start, names the file and the problem,
    and leaves the file as it was."""
    kill(broker, "term")
    path = db_path(broker)
    os.remove(path)
    if kind == "garbage":
        with open(path, "wb") as f:
            f.write(b"this is not a database" * 100)
    else:
        con = sqlite3.connect(path)
        if kind == "foreign":
            con.execute("CREATE TABLE accounts(id INTEGER PRIMARY KEY, owner TEXT)")
        else:
            con.execute("PRAGMA application_id = %d" % 0x7465726E)
            con.execute("PRAGMA user_version = 99")
            con.execute("CREATE TABLE future(x)")
        con.commit()
        con.close()
    before = open(path, "rb").read()
    rc, out = _start_fails(broker)
    assert rc != 0
    assert "ternd.db" in out, out
    want = {"foreign": "not a tern database", "newer": "newer",
            "garbage": "database"}[kind]
    assert want in out, out
    assert open(path, "rb").read() == before, "the file was modified"
    os.remove(path)
    broker.start()


def test_second_broker_on_the_same_file_is_refused(broker):
    """Two brokers on one database would corrupt each other's state: the
    second refuses to start."""
    rc, out = _start_fails(broker)
    assert rc != 0 and "in use" in out, out


def _publisher(broker_ref, name, qos, stop, acked, lock):
    """Publishes until `stop`; survives broker crashes by reconnecting to the
    broker's current port and resuming its persistent session as the spec
    says a client must [MQTT-4.4.0-1]: unacknowledged PUBLISHes are sent
    again with DUP, and for QoS 2 messages whose PUBREC arrived, the PUBREL
    (never the PUBLISH again: after PUBREC the sender must not resend it,
    section 4.3.3, and the receiver would take it as a new message)."""
    pending = {}  # pid -> payload, sent but not acknowledged
    released = set()  # QoS 2 pids whose PUBREC arrived (PUBREL sent)
    n = 0
    while not stop.is_set():
        b = broker_ref[0]
        try:
            c = b.raw(m.V311, timeout=2)
            c.connect(name, clean=False)
            for pid, payload in sorted(pending.items()):
                if pid in released:
                    c.send(m.pubrel(pid))
                else:
                    c.send(m.publish("crash/" + name, payload, qos=qos, pid=pid, dup=True))
            while not stop.is_set():
                if len(pending) < 5:
                    n += 1
                    pid = (n % 60000) + 1
                    payload = b"%s-%d" % (name.encode(), n)
                    pending[pid] = payload
                    c.send(m.publish("crash/" + name, payload, qos=qos, pid=pid))
                try:
                    p = c.recv(timeout=1)
                except TimeoutError:
                    continue  # the broker is slow, not gone
                if p.type == m.PUBACK and p.pid in pending:
                    with lock:
                        acked.add(pending.pop(p.pid))
                elif p.type == m.PUBREC and p.pid in pending:
                    released.add(p.pid)
                    c.send(m.pubrel(p.pid))
                elif p.type == m.PUBCOMP and p.pid in pending:
                    released.discard(p.pid)
                    with lock:
                        acked.add(pending.pop(p.pid))
        except (m.Closed, OSError, AssertionError):
            time.sleep(0.05)


@pytest.mark.broker_config("max_queued_messages 0")
def test_kill_9_loses_no_acknowledged_message(broker):
    """Crash test: two QoS 1 and two QoS 2 publishers run while ternd is
    killed with SIGKILL three times at random moments. Afterwards a
    persistent subscriber receives every message whose PUBACK / PUBCOMP
    reached its publisher, and no QoS 2 message twice."""
    sub = broker.raw(m.V311)
    sub.connect("collector", clean=False)
    sub.subscribe([("crash/#", 2)])
    sub.disconnect()
    ref = [broker]
    stop = threading.Event()
    acked = set()
    lock = threading.Lock()
    pubs = [threading.Thread(target=_publisher, args=(ref, name, qos, stop, acked, lock))
            for name, qos in (("a1", 1), ("b1", 1), ("c2", 2), ("d2", 2))]
    for t in pubs:
        t.start()
    rnd = random.Random(1234)
    try:
        for _ in range(3):
            time.sleep(rnd.uniform(0.4, 1.2))
            kill(broker, "kill")
            broker.start()
        time.sleep(0.8)
    finally:
        stop.set()
        for t in pubs:
            t.join(10)
    kill(broker, "kill")
    broker.start()
    with lock:
        expected = set(acked)
    assert len(expected) > 20, "the load did not run"
    sub = broker.raw(m.V311)
    assert sub.connect("collector", clean=False).session_present
    seen = {}
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            # In a cluster what the killed node had been handed comes
            # again after JetStream's ack wait (3 s).
            p = sub.recv(timeout=5)
        except Exception:
            break
        if p.type != m.PUBLISH:
            continue
        sub.ack(p)
        seen[p.payload] = seen.get(p.payload, 0) + 1
    lost = expected - set(seen)
    assert not lost, "%d acknowledged messages lost, e.g. %r" % (len(lost), sorted(lost)[:5])
    dup2 = [k for k, v in seen.items() if v > 1 and k[:2] in (b"c2", b"d2")]
    if not CLUSTER_MODE:
        # In a cluster the message goes to JetStream and its packet id to
        # the local store, two commits: a kill between them makes the
        # publisher's retransmission a second message (at least once,
        # never lost; docs/cluster.md, "QoS 2 into the cluster").
        assert not dup2, "QoS 2 messages delivered twice: %r" % dup2[:5]
    sub.disconnect()


def test_assigned_client_ids_are_not_handed_out_again_after_a_restart(broker):
    """A v5 client that sends an empty client id with Clean Start 0 and a
    Session Expiry Interval gets a stored session under the id the Server
    assigned, which must be unique [MQTT-3.1.3-6]. After a restart, other
    clients that send an empty id must neither be given that id (they would
    resume the first client's session and read its messages) nor any id the
    broker gave before the restart: assigned ids are not a predictable
    sequence."""
    expiry = [(m.SESSION_EXPIRY, 600)]

    def assigned():
        c = broker.raw(m.V5)
        ack = c.connect("", clean=False, properties=expiry)
        c.disconnect()
        return ack.props[m.ASSIGNED_CLIENT_ID], ack.session_present

    before = [assigned() for _ in range(5)]
    assert not any(present for _, present in before)
    keeper = before[0][0]
    sub = broker.raw(m.V5)
    assert sub.connect(keeper, clean=False, properties=expiry).session_present
    sub.subscribe([("aid/#", 1)])
    sub.disconnect()
    pub = broker.raw(m.V5)
    pub.connect("pub-aid")
    pub.publish("aid/x", b"private", qos=1, pid=1)
    pub.disconnect()

    kill(broker, "term")
    broker.start()

    after = [assigned() for _ in range(5)]
    for cid, present in after:
        assert not present, "a new client resumed the stored session of %r" % cid
    ids_before = {cid for cid, _ in before}
    assert not ids_before & {cid for cid, _ in after}, "assigned ids repeat across a restart"
