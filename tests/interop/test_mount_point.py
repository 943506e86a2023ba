"""mount_point (issue 13), as mosquitto.conf(5) gives it: the clients of a
listener with `mount_point site1/` live under site1/: what they publish
(wills too) is site1/TOPIC for everyone else, they subscribe under site1/
only, and they see topics without the prefix. Also run against mosquitto
(TERN_TEST_AGAINST=mosquitto) where mosquitto 2.0.11 does what its manual
says."""

import subprocess
import types

import pytest

from conftest import Broker, WORKER_COUNTS, MOSQUITTO, broker_binary, free_port
from helpers import PahoClient

HOST = "127.0.0.1"


@pytest.fixture(params=WORKER_COUNTS,
                ids=["mosquitto" if MOSQUITTO else "w%d" % w for w in WORKER_COUNTS])
def mounted(request, tmp_path):
    """A broker with a plain listener (.port) and a second one mounted at
    site1/ (.site)."""
    port = free_port()
    b = Broker(tmp_path, request.param, ["listener %d %s" % (port, HOST), "mount_point site1/"])
    request.node._tern_broker_log = b.log
    b.start()
    b.site = types.SimpleNamespace(host=HOST, port=port)
    yield b
    b.stop()


def test_publish_goes_under_the_mount_point(mounted):
    outside = PahoClient(mounted)
    outside.subscribe("#", 1)
    PahoClient(mounted.site).publish("t/a", b"in", 1)
    m = outside.get(timeout=5)
    assert (m.topic, m.payload) == ("site1/t/a", b"in")


# Debian's mosquitto 2.0.11 adds the prefix to subscriptions but sends it
# along, against its manual ("This prefix is removed when any messages are
# sent to the client"): the stripping is checked on ternd only.
@pytest.mark.ternd_only
def test_subscriptions_see_their_own_tree_without_the_prefix(mounted):
    inside = PahoClient(mounted.site)
    inside.subscribe("#", 1)
    pub = PahoClient(mounted)
    pub.publish("elsewhere/x", b"not-for-site1", 1)
    pub.publish("site1/t/b", b"for-site1", 1)
    got = [(m.topic, m.payload) for m in inside.drain(1.0)]
    assert got == [("t/b", b"for-site1")]


@pytest.mark.ternd_only  # as above
def test_retained_and_unsubscribe_under_the_prefix(mounted):
    PahoClient(mounted).publish("site1/r", b"kept", 1, retain=True)
    inside = PahoClient(mounted.site)
    inside.subscribe("r", 1)
    m = inside.get(timeout=5)
    assert (m.topic, m.payload, m.retain) == ("r", b"kept", True)
    inside.unsubscribe("r")
    PahoClient(mounted).publish("site1/r", b"after", 1)
    inside.nothing(0.7)


def test_will_goes_under_the_mount_point(mounted):
    outside = PahoClient(mounted)
    outside.subscribe("site1/#", 1)
    dying = PahoClient(mounted.site, will={"topic": "gone", "payload": b"bye", "qos": 1})
    dying.c._sock.close()  # no DISCONNECT: the will is published
    m = outside.get(timeout=10)
    assert (m.topic, m.payload) == ("site1/gone", b"bye")


@pytest.mark.ternd_only  # mosquitto 2.0 prefixes "$share/..." itself, so it is not shared
def test_shared_subscription_keeps_share_in_front(mounted):
    inside = PahoClient(mounted.site, version=5)
    inside.subscribe("$share/g/s/#", 1)
    PahoClient(mounted).publish("site1/s/x", b"shared", 1)
    m = inside.get(timeout=5)
    assert (m.topic, m.payload) == ("s/x", b"shared")


@pytest.mark.ternd_only
@pytest.mark.parametrize("value", ["a/#", "a/+/b"])
def test_wildcards_in_a_mount_point_are_refused(tmp_path, value):
    conf = tmp_path / "m.conf"
    conf.write_text("listener %d 127.0.0.1\nmount_point %s\n" % (free_port(), value))
    cp = subprocess.run([broker_binary(), "--test-config", "-c", str(conf)],
                        capture_output=True, timeout=5, stdin=subprocess.DEVNULL)
    assert cp.returncode == 1 and b"mount_point" in cp.stderr
