"""max_inflight_bytes, memory_limit and retain_expiry_interval (issue 13),
with mosquitto's meanings, also checked against mosquitto where it has them.

max_inflight_bytes: outbound QoS 1/2 messages go while the payload bytes in
flight to a client are below the limit; one message always goes, however
large. Checked with a raw subscriber that does not acknowledge."""

import os
import subprocess

import pytest

import mqtt_raw as raw
from conftest import MOSQUITTO, broker_binary, free_port
from helpers import PahoClient


def raw_subscriber(broker, topic):
    c = raw.RawClient("127.0.0.1", broker.port, version=raw.V311)
    c.connect("slow-" + os.urandom(3).hex(), clean=True)
    c.subscribe([(topic, 1)])
    return c


def publishes(c, timeout=0.7):
    return [p for p in c.recv_all(timeout) if p.type == raw.PUBLISH]


# Debian's mosquitto 2.0.11 lets a third message go here: its count of the
# bytes in flight lags a burst of publishes. Its code and manual say what
# ternd does (sent while the bytes in flight are below the limit).
@pytest.mark.ternd_only
@pytest.mark.broker_config("max_inflight_bytes 100", "max_inflight_messages 20")
def test_max_inflight_bytes_holds_the_next_message_until_an_ack(broker):
    """60-byte payloads, limit 100: two go (0, then 60 bytes in flight),
    the third waits until one is acknowledged."""
    sub = raw_subscriber(broker, "ib/#")
    pub = PahoClient(broker)
    for i in range(4):
        pub.publish("ib/x", b"%d" % i + b"." * 59, 1)
    got = publishes(sub)
    assert [p.payload[:1] for p in got] == [b"0", b"1"]
    sub.send(raw.puback(got[0].pid))
    got2 = publishes(sub)
    assert [p.payload[:1] for p in got2] == [b"2"]
    sub.send(raw.puback(got[1].pid))
    sub.send(raw.puback(got2[0].pid))
    assert [p.payload[:1] for p in publishes(sub)] == [b"3"]
    sub.close()


@pytest.mark.broker_config("max_inflight_bytes 100")
def test_max_inflight_bytes_lets_one_larger_message_go(broker):
    """A message larger than the limit still goes, alone."""
    sub = raw_subscriber(broker, "big/#")
    pub = PahoClient(broker)
    pub.publish("big/x", b"a" * 300, 1)
    pub.publish("big/x", b"b" * 10, 1)
    got = publishes(sub)
    assert [len(p.payload) for p in got] == [300]
    sub.send(raw.puback(got[0].pid))
    assert [p.payload for p in publishes(sub)] == [b"b" * 10]
    sub.close()


@pytest.mark.broker_config("max_inflight_bytes 0", "max_inflight_messages 3")
def test_max_inflight_bytes_zero_is_no_limit(broker):
    """0: only max_inflight_messages counts."""
    sub = raw_subscriber(broker, "z/#")
    pub = PahoClient(broker)
    for i in range(5):
        pub.publish("z/x", b"." * 1000, 1)
    assert len(publishes(sub)) == 3
    sub.close()


@pytest.mark.ternd_only  # retain_expiry_interval is mosquitto 2.0.21's
@pytest.mark.broker_config("retain_expiry_interval 1", "memory_limit 0")
def test_retain_expiry_interval_and_memory_limit_zero_are_taken(broker):
    """retain_expiry_interval (minutes between sweeps of expired retained
    messages; the sweep itself: test_retain.c) and memory_limit 0 (none)
    start the broker, which works."""
    pub = PahoClient(broker)
    pub.publish("r/x", b"kept", 1, retain=True)
    sub = PahoClient(broker)
    sub.subscribe("r/#", 1)
    assert sub.get(timeout=5).payload == b"kept"


@pytest.mark.ternd_only
def test_memory_limit_is_taken(tmp_path):
    """A limit is taken (what it does: test_memory_limit.py); a value that
    is not a number is not."""
    for value, rc in (("1000000", 0), ("lots", 1)):
        conf = tmp_path / "m.conf"
        conf.write_text("listener %d 127.0.0.1\nmemory_limit %s\n" % (free_port(), value))
        cp = subprocess.run([broker_binary(), "--test-config", "-c", str(conf)],
                            capture_output=True, timeout=5, stdin=subprocess.DEVNULL)
        assert cp.returncode == rc, cp.stderr


@pytest.mark.skipif(MOSQUITTO, reason="ternd's range")
@pytest.mark.parametrize("line", ["max_inflight_bytes -1", "retain_expiry_interval x"])
def test_bad_values_are_refused(tmp_path, line):
    conf = tmp_path / "m.conf"
    conf.write_text("listener %d 127.0.0.1\n%s\n" % (free_port(), line))
    cp = subprocess.run([broker_binary(), "--test-config", "-c", str(conf)],
                        capture_output=True, timeout=5, stdin=subprocess.DEVNULL)
    assert cp.returncode == 1 and line.split()[0] in cp.stderr.decode()
