"""Logging under a flood of per-message events (issue 10, item 6).

A denied PUBLISH and a message dropped for a full queue are each worth a log
line, but not a hundred thousand a second: ternd writes the first line of a
client's burst, counts the rest, and says how many in one summary line
("N more dropped for client X in the last 10 s."), at the end of the 10 s
window or at shutdown. And the lines are written by a log thread, so they
must still all be there after a SIGTERM.

Each test floods, stops the broker with SIGTERM, and reads the whole log:
the lines for the client are bounded, and the written lines plus the counts
of the summaries add up to the events exactly. Mosquitto logs every event,
so these are ternd's behaviour (ternd_only).
"""

import os
import re
import time

import pytest

import mqtt_raw as m
from conftest import WORKER_COUNTS, Broker

FLOOD = 3000

pytestmark = pytest.mark.ternd_only


@pytest.fixture(params=WORKER_COUNTS, ids=["w%d" % w for w in WORKER_COUNTS])
def ternd(request, tmp_path):
    """Starts a broker with extra directives; the test stops it itself (the
    point is what the log holds after the stop), or teardown does."""
    started = []

    def start(*extra):
        b = Broker(tmp_path, request.param, list(extra) + ["storage memory"])
        request.node._tern_broker_log = b.log
        b.start()
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


@pytest.fixture
def acl_broker(ternd, tmp_path):
    """A broker whose ACL lets anonymous clients write under open/ only."""
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite open/#\n")
    return ternd("acl_file " + str(acl), "allow_anonymous true")


def stop_and_read(broker):
    assert broker.stop() == 0, "ternd did not exit cleanly on SIGTERM"
    with open(broker.log) as f:
        return f.read()


def wait_dropped(broker, want, timeout=10.0):
    """Until $SYS/broker/publish/messages/dropped (sys_interval 1) reads
    `want` or more; False after `timeout` s."""
    c = broker.raw(m.V311)
    c.connect("drop-counter")
    c.subscribe([("$SYS/broker/publish/messages/dropped", 0)])
    deadline = time.monotonic() + timeout
    try:
        for p in c.early:
            if p.type == m.PUBLISH and int(p.payload) >= want:
                return True
        while time.monotonic() < deadline:
            for p in c.recv_all(0.5):
                if p.type == m.PUBLISH and int(p.payload) >= want:
                    return True
        return False
    finally:
        c.disconnect()


def accounted(log, line_re, summary_re):
    """(lines written, events counted in summaries) for one client."""
    lines = len(re.findall(line_re, log, re.M))
    counted = sum(int(n) for n in re.findall(summary_re, log, re.M))
    return lines, counted


def test_denied_publishes_are_logged_once_with_a_count(acl_broker):
    """3000 denied PUBLISHes from one client: one "Denied PUBLISH" line (two
    if a 10 s window ends during the flood) and a summary that counts the
    rest, instead of 3000 lines."""
    c = acl_broker.raw(m.V311)
    c.connect("floody")
    for i in range(FLOOD):
        c.send(m.publish("closed/x", b"p", qos=0))
    # The broker handles a client's packets in order: once this is
    # acknowledged, every denied publish before it has been handled.
    c.publish("open/x", b"ok", qos=1, pid=1)
    c.disconnect()
    log = stop_and_read(acl_broker)
    lines, counted = accounted(
        log, r"Denied PUBLISH from floody to 'closed/x'\.$",
        r"(\d+) more denied PUBLISH for client floody in the last \d+ s\.$")
    assert 1 <= lines <= 2, log[-3000:]
    assert lines + counted == FLOOD, (lines, counted)
    assert len(log.splitlines()) < 100, "the log still holds a line per event"


def test_queue_drops_are_logged_once_with_a_count(ternd):
    """An offline persistent session with room for 10 messages is sent 400
    QoS 1 messages: 390 are dropped (max_queued_messages keeps its mosquitto
    meaning for offline sessions), logged as one line and a count."""
    broker = ternd("max_queued_messages 10", "sys_interval 1")
    sub = broker.raw(m.V311)
    sub.connect("sleepy", clean=False)
    sub.subscribe([("drop/#", 1)])
    sub.disconnect()
    pub = broker.raw(m.V311)
    pub.connect("loud")
    n = 400
    for i in range(n):
        pub.publish("drop/x", b"m", qos=1, pid=i % 60000 + 1)
    pub.disconnect()
    # With two workers the session's home worker takes the messages from
    # the publisher's worker later (and may take the first ones while it
    # still has the disconnecting client, so they queue in flight rather
    # than drop): the count is read once every drop happened, from the
    # broker's own $SYS counter, not at an arbitrary moment of a SIGTERM.
    assert wait_dropped(broker, n - 10), "the broker never counted %d drops" % (n - 10)
    log = stop_and_read(broker)
    lines, counted = accounted(
        log, r"Warning: dropped QoS 1 message on drop/x for client sleepy: .*$",
        r"Warning: (\d+) more dropped for client sleepy in the last \d+ s\.$")
    assert 1 <= lines <= 2, log[-3000:]
    assert lines + counted == n - 10, (lines, counted)


def test_lines_logged_just_before_sigterm_are_written(ternd):
    """The log thread writes what it was handed before the broker exits: the
    disconnect of a client right before SIGTERM, the signal line and the
    final "terminating" line are all in the log file (log_dest file)."""
    broker = ternd("log_dest file broker-file.log")
    c = broker.raw(m.V311)
    c.connect("last-words")
    c.send(m.disconnect(m.V311))
    assert c.wait_closed(2.0) is not None
    assert broker.stop() == 0
    with open(os.path.join(broker.dir, "broker-file.log")) as f:
        log = f.read()
    assert re.search(r"Client last-words .*disconnected", log), log
    assert "received signal 15, stopping." in log, log
    assert log.rstrip().endswith("terminating"), log[-500:]
