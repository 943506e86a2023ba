"""memory_limit (mosquitto.conf(5): "the maximum number of heap memory bytes
that the broker will allocate ... If an incoming message is being processed,
then the message will be dropped and the publishing client will be
disconnected"). ternd checks the heap in use every 200 ms: while it is over
the limit an incoming PUBLISH is dropped and its client disconnected (v5
DISCONNECT 0x97, Quota exceeded), a CONNECT that would make a new session is
refused (v5 0x97, 3.1.1 "server unavailable"), and what is already held is
still delivered, so the heap comes down and everything works again.
ternd only: how far past the limit mosquitto lets a queue grow, and its
reason codes, differ."""

import time

import pytest

import mqtt_raw as m
from conftest import Broker
from helpers import read_log, unique, wait_for

pytestmark = pytest.mark.ternd_only

LIMIT = 48 * 1024 * 1024
PAYLOAD = 256 * 1024


def test_over_memory_limit_publishers_go_and_come_back_once_it_drains(tmp_path):
    b = Broker(tmp_path, 1, ["memory_limit %d" % LIMIT, "max_queued_messages 0",
                             "storage memory"])
    b.start()
    try:
        # An offline persistent session that keeps every QoS 1 message.
        cid, topic = unique("mem"), unique("mem")
        sub = b.raw(m.V311)
        sub.connect(cid, clean=False)
        assert sub.subscribe([(topic, 1)]).codes == [1]
        sub.disconnect()

        pub = b.raw(m.V5)
        pub.connect(unique("mempub"))
        body = b"x" * PAYLOAD
        accepted, stopped = 0, None
        # Bounded: 600 x 256 KiB is three times the limit.
        for i in range(600):
            pub.send(m.publish(topic, body, 1, pid=(i % 65000) + 1, version=m.V5))
            p = pub.recv(timeout=10)
            if p.type == m.PUBACK:
                assert p.rc == 0
                accepted += 1
                continue
            stopped = p
            break
        assert stopped is not None, "never refused: %d messages accepted" % accepted
        assert stopped.type == m.DISCONNECT and stopped.rc == 0x97, stopped
        assert accepted * PAYLOAD >= LIMIT // 2, accepted
        pub.wait_closed()
        assert wait_for(lambda: "over memory_limit" in read_log(b), timeout=5), read_log(b)

        # No new session while over: v5 0x97, 3.1.1 server unavailable (3).
        v5 = b.raw(m.V5)
        assert v5.connect(unique("new5"), expect_rc=None).rc == 0x97
        v3 = b.raw(m.V311)
        assert v3.connect(unique("new3"), expect_rc=None).rc == 3

        # The kept session still resumes, and gets every message it was
        # owed: the heap comes down.
        sub = b.raw(m.V311, timeout=20)
        assert sub.connect(cid, clean=False).session_present
        got = 0
        while got < accepted:
            p = sub.recv_publish(timeout=20)
            assert p.payload == body
            got += 1
        assert wait_for(lambda: "below memory_limit" in read_log(b), timeout=10), read_log(b)

        # And publishing works again.
        again = b.raw(m.V5)
        again.connect(unique("again"))
        again.publish(topic, b"small", qos=1, pid=1)
        assert sub.recv_publish(timeout=10).payload == b"small"
        for c in (again, sub):
            c.disconnect()
    finally:
        b.stop()


def test_memory_limit_zero_is_no_limit(tmp_path):
    b = Broker(tmp_path, 1, ["memory_limit 0", "storage memory"])
    b.start()
    try:
        c = b.raw(m.V5)
        c.connect(unique("nolimit"))
        c.publish(unique("t"), b"x" * PAYLOAD, qos=1, pid=1)
        c.disconnect()
    finally:
        b.stop()
