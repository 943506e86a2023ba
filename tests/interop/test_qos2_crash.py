"""Outbound QoS 2 exactly once across kill -9 of ternd, for a persistent
subscriber.

A QoS 2 message is delivered exactly once [MQTT-4.3.3-1]; a session that
resumes gets its unacknowledged PUBLISHes again with DUP and their original
packet ids, and its PUBRELs [MQTT-4.4.0-1]. ternd makes that hold across a
crash by telling the subscriber nothing of a QoS 2 flow that its store does
not have yet: the PUBLISH goes once the commit of its packet id is done, the
PUBREL once "PUBREL sent" is. Were either sent first, a kill in between
would make the restored session send the message again under a new packet
id (the subscriber delivers it twice), or its PUBLISH again after the
subscriber completed the flow and forgot the id (twice again).

The subscriber here is a raw 3.1.1 client that implements the receiver's
side correctly, method B of section 4.3.3: it delivers a message on its
first PUBLISH, keeps the packet id until the PUBREL and takes a PUBLISH with
a kept id as a retransmission [MQTT-4.3.3-9] [MQTT-4.3.3-10]. Its state
survives its reconnects, as a real client's does. The publisher resends
with DUP and its original ids what had no PUBREC, and PUBREL what had.

ternd only: mosquitto's persistence is a periodic snapshot, so a kill -9
loses what it acknowledged since the last one.
"""

import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter

import pytest

import mqtt_raw as m
from conftest import tail, wait_port

pytestmark = pytest.mark.ternd_only

N = 300  # distinct QoS 2 payloads
KILLS_AT = [40, 100, 160, 220]  # messages the publisher has completed
WINDOW = 10  # the publisher's QoS 2 messages in flight


def restart_same_port(broker):
    """Starts ternd again on the port, config and files it had."""
    logf = open(broker.log, "ab")
    broker.proc = subprocess.Popen(
        [broker.binary, "-c", broker.conf], stdout=logf, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, cwd=broker.dir)
    logf.close()
    assert wait_port(broker.port, broker.proc, timeout=10), tail(broker.log)


class Subscriber(threading.Thread):
    """Persistent 3.1.1 subscriber (clean session 0) to q2c/# at QoS 2,
    receiver of method B, reconnecting until told to stop."""

    def __init__(self, broker, stop):
        super().__init__(daemon=True)
        self.broker, self.stop = broker, stop
        self.delivered = []  # payloads handed to the application, in order
        self.kept = set()  # packet ids PUBREC'd, awaiting PUBREL
        self.resumes = 0
        self.errors = []
        self.ready = threading.Event()

    def run(self):
        first = True
        while not self.stop.is_set():
            try:
                c = self.broker.raw(m.V311, timeout=2)
                ack = c.connect("q2c-sub", clean=False)
                if first:
                    c.subscribe([("q2c/#", 2)])
                    first = False
                    self.ready.set()
                elif not ack.session_present:
                    self.errors.append("session lost across a restart [MQTT-3.2.2-2]")
                else:
                    self.resumes += 1
                while not self.stop.is_set():
                    try:
                        p = c.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    if p.type == m.PUBLISH and p.qos == 2:
                        if p.pid not in self.kept:
                            self.kept.add(p.pid)
                            self.delivered.append(p.payload)
                        c.send(m.pubrec(p.pid))
                    elif p.type == m.PUBREL:
                        # Completed (or unknown: completed before):
                        # PUBCOMP either way [MQTT-4.3.3-11].
                        self.kept.discard(p.pid)
                        c.send(m.pubcomp(p.pid))
            except (m.Closed, OSError, AssertionError):
                time.sleep(0.02)


class Publisher(threading.Thread):
    """Persistent 3.1.1 publisher of N distinct QoS 2 payloads to q2c/x,
    WINDOW at a time, resuming its session after each restart: PUBLISH
    again with DUP and the same id where no PUBREC came, PUBREL where it
    did [MQTT-4.4.0-1]."""

    def __init__(self, broker, stop):
        super().__init__(daemon=True)
        self.broker, self.stop = broker, stop
        self.completed = []  # payloads whose PUBCOMP came
        self.lock = threading.Lock()

    def run(self):
        pending = {}  # pid -> payload, not completed
        released = set()  # pids whose PUBREC came
        n = 0
        while not self.stop.is_set() and len(self.completed) < N:
            try:
                c = self.broker.raw(m.V311, timeout=2)
                c.connect("q2c-pub", clean=False)
                for pid, payload in sorted(pending.items()):
                    if pid in released:
                        c.send(m.pubrel(pid))
                    else:
                        c.send(m.publish("q2c/x", payload, qos=2, pid=pid, dup=True))
                while not self.stop.is_set() and len(self.completed) < N:
                    while n < N and len(pending) < WINDOW:
                        pid = n + 1
                        pending[pid] = b"m%03d" % n
                        n += 1
                        c.send(m.publish("q2c/x", pending[pid], qos=2, pid=pid))
                    try:
                        p = c.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    if p.type == m.PUBREC and p.pid in pending:
                        released.add(p.pid)
                        c.send(m.pubrel(p.pid))
                    elif p.type == m.PUBCOMP and p.pid in pending:
                        released.discard(p.pid)
                        with self.lock:
                            self.completed.append(pending.pop(p.pid))
            except (m.Closed, OSError, AssertionError):
                time.sleep(0.02)

    def count(self):
        with self.lock:
            return len(self.completed)


# fsync on every commit: the time between a PUBLISH's recording and its
# commit, when a kill finds the old code's sends ahead of the store, is
# wide enough for a few kills to hit it (a setting users have, no test
# hook).
@pytest.mark.broker_config("storage_sync full")
def test_qos2_exactly_once_to_a_persistent_subscriber_across_kill9(broker):
    """300 QoS 2 messages from a persistent publisher to a persistent
    subscriber while ternd is killed (-9) and restarted four times: every
    message whose PUBCOMP the publisher got reaches the subscriber, and none
    twice [MQTT-4.3.3-1] [MQTT-4.4.0-1]."""
    stop = threading.Event()
    sub = Subscriber(broker, stop)
    sub.start()
    assert sub.ready.wait(10), "the subscriber did not subscribe"
    pub = Publisher(broker, stop)
    rnd = random.Random(1313)
    try:
        pub.start()
        for at in KILLS_AT:
            deadline = time.monotonic() + 30
            while pub.count() < at and time.monotonic() < deadline:
                time.sleep(0.001)
            assert pub.count() >= at, "the stream stalled at %d" % pub.count()
            # Varied moments within the stream's flow.
            time.sleep(rnd.uniform(0, 0.01))
            resumed = sub.resumes
            os.kill(broker.proc.pid, signal.SIGKILL)
            broker.proc.wait(5)
            restart_same_port(broker)
            # The next kill waits for the subscriber to be back (bounded):
            # on a loaded machine the publisher could otherwise reach it
            # first, and the kill find no session online to resume.
            deadline = time.monotonic() + 15
            while sub.resumes == resumed and time.monotonic() < deadline:
                time.sleep(0.01)
        pub.join(60)
        assert pub.count() == N, "only %d of %d completed:\n%s" % (
            pub.count(), N, tail(broker.log))
        # What the subscriber's session still had in flight comes now.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not set(pub.completed) <= set(sub.delivered):
            time.sleep(0.05)
        time.sleep(0.5)  # and anything delivered twice would come by now
    finally:
        stop.set()
        pub.join(10)
        sub.join(10)
    assert not sub.errors, sub.errors
    assert sub.resumes >= len(KILLS_AT), "the subscriber did not resume every time"
    counts = Counter(sub.delivered)
    twice = sorted(k for k, v in counts.items() if v > 1)
    assert not twice, "%d messages delivered twice [MQTT-4.3.3-1], e.g. %r" % (
        len(twice), twice[:8])
    lost = sorted(set(pub.completed) - set(counts))
    assert not lost, "%d completed messages never delivered, e.g. %r" % (len(lost), lost[:8])
