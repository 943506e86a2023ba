"""Bridges: outbound QoS 2 exactly once across a kill -9 of ternd (issue 13).

The bridge's packet ids on the remote are its local session's, one to one,
and the store keeps that session's in-flight state (PUBLISH sent, PUBREL
sent). So the session ternd restores after a kill resends what the protocol
asks of a client that resumes a session, and nothing else: PUBLISH with DUP
and the same packet id where no PUBREC had come, PUBREL for the id where it
had [MQTT-4.4.0-1], never again the PUBLISH of a message whose PUBREL went
(3.1.1 [MQTT-4.3.3-1]: the sender MUST NOT re-send the PUBLISH once it has
sent the corresponding PUBREL). The guarantee holds when the remote keeps the
bridge's session (cleansession false, the default) and ternd has durable
storage; the remote here is Debian's mosquitto, and a second ternd."""

import os
import signal
import time
from collections import Counter

import pytest

from bridge_peer import Pair, bridge_lines, connected, pair_factory  # noqa: F401 (a fixture)
from conftest import MOSQUITTO_BIN, Broker, tail
from helpers import PahoClient, unique, wait_for

pytestmark = pytest.mark.ternd_only  # mosquitto's own store loses most of it at kill -9

TOPICS = ["s/# out 2", "probe/# out 0"]
N = 300  # messages in all, over the rounds
# When each kill comes: this long after its round's messages were handed
# to the local publisher at once (paho keeps 20 in flight), so that the
# bridge has messages in every state of the QoS 2 flow on the remote
# (PUBLISH sent, PUBREC in, PUBREL sent) at different moments.
KILL_AFTER = [0.004, 0.02, 0.01, 0.05]


def stream_with_kills(pair, remote_sub):
    """Publishes N distinct QoS 2 messages to s/x on the local broker in
    rounds, each round's publisher (clean session) given them all at once,
    and kills ternd (-9) in the middle of all but the last round. Returns
    the payloads the local publisher got PUBCOMP for, and everything the
    remote subscriber received (in order)."""
    acked = set()
    received = []
    rounds = len(KILL_AFTER) + 1
    per_round = N // rounds
    start = 0
    for r in range(rounds):
        end = N if r == rounds - 1 else start + per_round
        pub = PahoClient(pair.local)
        mids = {}
        for i in range(start, end):
            info = pub.publish("s/x", b"%d" % i, 2, wait=False)
            mids[info.mid] = i
        if r < rounds - 1:
            time.sleep(KILL_AFTER[r])
            with pub.lock:
                done = set(pub.published)
            os.kill(pair.local.proc.pid, signal.SIGKILL)
            pair.local.proc.wait(5)
            pub.stop()
            pair.restart_local()
        else:
            assert wait_for(lambda: len(pub.published) == end - start, 30), \
                "last round: %d of %d acknowledged" % (len(pub.published), end - start)
            with pub.lock:
                done = set(pub.published)
            pub.disconnect()
        acked |= {mids[m] for m in done if m in mids}
        received += [int(m.payload) for m in remote_sub.drain(0.1) if m.topic == "s/x"]
        start = end
        assert connected(pair, "probe/x", timeout=20), tail(pair.local.log)
    # What the restored sessions still had in flight arrives now.
    quiet_since = time.monotonic()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = [int(m.payload) for m in remote_sub.drain(0.5) if m.topic == "s/x"]
        received += got
        if got:
            quiet_since = time.monotonic()
        elif acked <= set(received) and time.monotonic() - quiet_since > 3:
            break
    return acked, received


def check_exactly_once(acked, received):
    counts = Counter(received)
    twice = sorted(i for i, n in counts.items() if n > 1)
    assert not twice, "delivered more than once: %r" % twice
    missing = sorted(acked - set(counts))
    assert not missing, "acknowledged locally, never delivered: %r" % missing
    # Most of each round was acknowledged before its kill.
    assert len(acked) >= N // 3


@pytest.mark.skipif(not os.path.exists(MOSQUITTO_BIN),
                    reason="needs Debian's mosquitto as the remote broker")
def test_qos2_out_exactly_once_across_kill9_of_ternd_mosquitto_remote(pair_factory, tmp_path):
    """Local -> mosquitto at QoS 2, ternd killed (-9) and restarted four
    times mid-stream: every message the local publisher got PUBCOMP for
    reaches the remote's subscriber once, and none arrives twice."""
    p = pair_factory(TOPICS, local_extra=["persistence true",
                                          "persistence_location %s/" % tmp_path])
    assert connected(p, "probe/x", timeout=15)
    sub = PahoClient(p.remote, client_id=unique("rsub"), clean=False)
    sub.subscribe("s/#", 2)
    acked, received = stream_with_kills(p, sub)
    check_exactly_once(acked, received)


class TerndPair:
    """A remote ternd (memory only, never restarted) and the local ternd
    bridging to it, for Pair.restart_local."""

    def __init__(self, tmp_path, local_extra):
        rd = tmp_path / ("remote-" + unique("r"))
        rd.mkdir()
        self.remote = Broker(rd, 1, [])
        self.remote.start()
        ld = tmp_path / ("local-" + unique("l"))
        ld.mkdir()
        self.local = Broker(ld, 2, list(local_extra) + bridge_lines(
            self.remote, TOPICS, extra=["bridge_protocol_version mqttv50"]))
        self.local.start()

    restart_local = Pair.restart_local

    def stop(self):
        self.local.stop()
        self.remote.stop()


@pytest.fixture
def ternd_pair(tmp_path):
    made = []

    def make(local_extra):
        made.append(TerndPair(tmp_path, local_extra))
        return made[-1]

    yield make
    for p in made:
        died = not p.local.alive()
        p.stop()
        if died:
            pytest.fail("local broker exited during the test:\n%s" % tail(p.local.log),
                        pytrace=False)


def test_qos2_out_exactly_once_across_kill9_of_ternd_ternd_remote(ternd_pair, tmp_path):
    """The same with a ternd as the remote over MQTT 5 (whose PUBCOMP says
    0x92 for an id it had finished with before the kill). ternd delivers a
    QoS 2 message on its first PUBLISH (method B of 4.3.3) where mosquitto
    waits for PUBREL: a message sent again under a new packet id after the
    kill would reach its subscriber twice, so the bridge sends a QoS 2
    PUBLISH only once its packet id is committed locally."""
    p = ternd_pair(["persistence true", "persistence_location %s/" % tmp_path])
    assert connected(p, "probe/x", timeout=15)
    sub = PahoClient(p.remote, client_id=unique("rsub"), clean=False)
    sub.subscribe("s/#", 2)
    acked, received = stream_with_kills(p, sub)
    check_exactly_once(acked, received)
