"""per_listener_settings (mosquitto.conf(5)): with `true`, password_file,
acl_file, allow_anonymous, allow_zero_length_clientid and auto_id_prefix
apply to the listener they follow; and mosquitto 2.1's
listener_allow_anonymous / listener_auto_id_prefix, which do so whatever
per_listener_settings says. Two listeners of one broker, each checked with
its own clients; the same tests against mosquitto (TERN_TEST_AGAINST) but for
what mosquitto 2.0 does not have."""

import subprocess
import time

import pytest

import mqtt_raw as m
from conftest import MOSQUITTO, Broker, broker_binary, free_port, tail
from test_auth import write_passwd

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "mosquitto_passwd"], capture_output=True).returncode != 0,
    reason="mosquitto_passwd is missing")

# CONNACK "not authorized" (3.1.1: 5); v5 identifier-not-valid.
NOT_AUTHORIZED = 5


class TwoListeners:
    """A broker with a first listener (Broker's own) and a second one on
    port2; lines1 follow the first `listener`, lines2 the second."""

    def __init__(self, tmp_path, lines1, lines2, head=()):
        self.port2 = free_port()
        extra = list(head) + list(lines1) + ["listener %d 127.0.0.1" % self.port2] + list(lines2)
        self.b = Broker(tmp_path, 1, extra, anonymous=False)
        # Broker writes `listener PORT 127.0.0.1` first, then its own lines;
        # per_listener_settings must come before any security line, which
        # it does (anonymous=False adds no allow_anonymous).
        self.b.start()
        self.port1 = self.b.port

    def raw(self, port, version=m.V311):
        return m.RawClient(self.b.host, port, version=version)

    def stop(self):
        alive = self.b.alive()
        self.b.stop()
        assert alive, "broker died:\n" + tail(self.b.log)


@pytest.fixture
def passwd(tmp_path):
    path = str(tmp_path / "passwd")
    write_passwd(path, {"alice": "wonder"})
    return path


def test_anonymous_on_one_listener_password_on_the_other(tmp_path, passwd):
    """per_listener_settings true: the first listener lets anonymous
    clients in; the second refuses them (allow_anonymous false there) and
    checks its own password_file."""
    t = TwoListeners(tmp_path, ["per_listener_settings true", "allow_anonymous true"],
                     ["allow_anonymous false", "password_file " + passwd])
    try:
        c = t.raw(t.port1)
        c.connect("anon-1")
        c.disconnect()
        c = t.raw(t.port2)
        assert c.connect("anon-2", expect_rc=None).rc == NOT_AUTHORIZED
        c = t.raw(t.port2)
        assert c.connect("alice-2", username="alice", password=b"nope",
                         expect_rc=None).rc == NOT_AUTHORIZED
        c = t.raw(t.port2)
        c.connect("alice-2", username="alice", password=b"wonder")
        c.disconnect()
        # The first listener has no password_file: a username is not
        # checked there, as in mosquitto.
        c = t.raw(t.port1)
        c.connect("alice-1", username="alice", password=b"whatever")
        c.disconnect()
    finally:
        t.stop()


def test_per_listener_settings_false_applies_security_to_all(tmp_path, passwd):
    """per_listener_settings false (the default): allow_anonymous false and
    the password_file written after the second listener hold for the first
    one too."""
    t = TwoListeners(tmp_path, ["per_listener_settings false"],
                     ["allow_anonymous false", "password_file " + passwd])
    try:
        for port in (t.port1, t.port2):
            c = t.raw(port)
            assert c.connect("anon", expect_rc=None).rc == NOT_AUTHORIZED
            c = t.raw(port)
            c.connect("alice", username="alice", password=b"wonder")
            c.disconnect()
    finally:
        t.stop()


def test_acl_file_per_listener(tmp_path):
    """The first listener's acl_file lets its clients read and write a/#
    only; the second listener has none, so its clients may do anything. A
    message published on the second listener reaches a subscriber of the
    first only where the first's ACL lets it read."""
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite a/#\n")
    t = TwoListeners(tmp_path, ["per_listener_settings true", "allow_anonymous true",
                                "acl_file " + str(acl)],
                     ["allow_anonymous true"])
    try:
        sub = t.raw(t.port1)
        sub.connect("sub-1")
        assert sub.subscribe([("#", 1)]).codes == [1]
        open_sub = t.raw(t.port2)
        open_sub.connect("sub-2")
        assert open_sub.subscribe([("b/#", 1)]).codes == [1]
        pub = t.raw(t.port2)
        pub.connect("pub-2")
        pub.publish("b/1", b"b", qos=1)
        pub.publish("a/1", b"a", qos=1, pid=2)
        got = sub.recv_publish(timeout=2)
        assert (got.topic, got.payload) == ("a/1", b"a")
        assert open_sub.recv_publish(timeout=2).topic == "b/1"
        assert sub.no_packet(0.3)
        # Writing outside a/# on the first listener is dropped.
        pub1 = t.raw(t.port1)
        pub1.connect("pub-1")
        pub1.publish("b/2", b"x", qos=1)
        assert open_sub.no_packet(0.5)
        for c in (sub, open_sub, pub, pub1):
            c.disconnect()
    finally:
        t.stop()


def test_auto_id_prefix_and_zero_length_clientid_per_listener(tmp_path):
    """auto_id_prefix and allow_zero_length_clientid of each listener."""
    t = TwoListeners(tmp_path, ["per_listener_settings true", "allow_anonymous true",
                                "auto_id_prefix alpha-"],
                     ["allow_anonymous true", "allow_zero_length_clientid false"])
    try:
        c = t.raw(t.port1, m.V5)
        ack = c.connect("")
        assert ack.props[m.ASSIGNED_CLIENT_ID].startswith("alpha-")
        c.disconnect()
        c = t.raw(t.port2, m.V5)
        # Client Identifier not valid; mosquitto 2.0 says Unspecified error.
        assert c.connect("", expect_rc=None).rc == (0x80 if MOSQUITTO else 0x85)
        c = t.raw(t.port2, m.V311)
        assert c.connect("", expect_rc=None).rc == 0x02
    finally:
        t.stop()


def test_per_listener_settings_after_a_security_setting_is_refused(tmp_path):
    """per_listener_settings true after allow_anonymous: the broker does not
    start (the setting says where the security lines go)."""
    conf = tmp_path / "bad.conf"
    conf.write_text("listener %d 127.0.0.1\nallow_anonymous true\nper_listener_settings true\n"
                    % free_port())
    try:
        cp = subprocess.run([broker_binary(), "-c", str(conf)], capture_output=True,
                            timeout=5, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("the broker started with per_listener_settings after allow_anonymous")
    assert cp.returncode != 0
    assert b"per_listener_settings" in cp.stderr + cp.stdout


@pytest.mark.ternd_only
def test_listener_allow_anonymous_and_auto_id_prefix(tmp_path):
    """mosquitto 2.1's listener_allow_anonymous / listener_auto_id_prefix:
    the listener's own, without per_listener_settings; the other listener
    keeps the broker's allow_anonymous false."""
    t = TwoListeners(tmp_path, ["allow_anonymous false"],
                     ["listener_allow_anonymous true", "listener_auto_id_prefix local-"])
    try:
        c = t.raw(t.port1)
        assert c.connect("anon-1", expect_rc=None).rc == NOT_AUTHORIZED
        c = t.raw(t.port2, m.V5)
        ack = c.connect("")
        assert ack.props[m.ASSIGNED_CLIENT_ID].startswith("local-")
        c.disconnect()
    finally:
        t.stop()


@pytest.mark.ternd_only
def test_queued_messages_are_checked_against_the_listener_the_client_returns_on(tmp_path):
    """A persistent session's queued messages are checked, as they leave the
    queue, against the acl_file of the listener its client is connected to
    now (ternd checks queued messages again as they go out: a message let in
    under the first listener's rules is not sent under the second's)."""
    acl = tmp_path / "acl"
    acl.write_text("topic readwrite ok/#\n")
    t = TwoListeners(tmp_path, ["per_listener_settings true", "allow_anonymous true"],
                     ["allow_anonymous true", "acl_file " + str(acl)])
    try:
        c = t.raw(t.port1)
        c.connect("roamer", clean=False)
        assert c.subscribe([("#", 1)]).codes == [1]
        c.disconnect()
        pub = t.raw(t.port1)
        pub.connect("pub")
        pub.publish("ok/1", b"ok", qos=1)
        pub.publish("no/1", b"no", qos=1, pid=2)
        pub.disconnect()
        time.sleep(0.2)
        c = t.raw(t.port2)
        assert c.connect("roamer", clean=False).session_present
        got = [p.topic for p in c.recv_all(0.8) if p.type == m.PUBLISH]
        assert got == ["ok/1"]
        c.disconnect()
    finally:
        t.stop()
