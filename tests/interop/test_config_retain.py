"""What a subscriber is sent, per mosquitto.conf: upgrade_outgoing_qos and
check_retain_source; against mosquitto too (TERN_TEST_AGAINST=mosquitto)."""

import os
import signal
import subprocess
import time

import pytest

import mqtt_raw as m
from conftest import MOSQUITTO, Broker
from test_auth import write_passwd


@pytest.mark.broker_config("upgrade_outgoing_qos true")
def test_upgrade_outgoing_qos(broker):
    """upgrade_outgoing_qos true: a QoS 0 message reaches a QoS 1
    subscriber at QoS 1 (mosquitto's non-standard option; [MQTT-3.8.4-8]
    says the lower of the two), live and retained."""
    pub = broker.raw(m.V311)
    pub.connect("uoq-pub")
    pub.publish("uoq/r", b"kept", qos=0, retain=True)
    sub = broker.raw(m.V311)
    sub.connect("uoq-sub")
    sub.subscribe([("uoq/#", 1)])
    early = [p for p in sub.early if p.type == m.PUBLISH]
    got = early[0] if early else sub.recv_publish(timeout=2)
    assert (got.topic, got.qos, got.retain) == ("uoq/r", 1, True)
    pub.publish("uoq/live", b"x", qos=0)
    got = sub.recv_publish(timeout=2)
    assert (got.topic, got.qos) == ("uoq/live", 1)
    for c in (pub, sub):
        c.disconnect()


def test_without_upgrade_outgoing_qos_the_lower_qos(broker):
    """The default: the lower of the two QoS [MQTT-3.8.4-8]."""
    sub = broker.raw(m.V311)
    sub.connect("noq-sub")
    sub.subscribe([("noq/#", 1)])
    pub = broker.raw(m.V311)
    pub.connect("noq-pub")
    pub.publish("noq/live", b"x", qos=0)
    assert sub.recv_publish(timeout=2).qos == 0
    for c in (pub, sub):
        c.disconnect()


ACL_BEFORE = "user alice\ntopic readwrite r/#\n\nuser bob\ntopic read r/#\n"
ACL_AFTER = "user alice\ntopic read r/#\n\nuser bob\ntopic read r/#\n"


def retained_after_acl_change(tmp_path, lines):
    """alice retains r/1 while the ACL lets her write it; the ACL is changed
    (SIGHUP) so that she may not; what does bob, subscribing now, get?"""
    pw = str(tmp_path / "passwd")
    write_passwd(pw, {"alice": "a", "bob": "b"})
    acl = tmp_path / "acl"
    acl.write_text(ACL_BEFORE)
    b = Broker(tmp_path, 1, ["password_file " + pw, "acl_file " + str(acl)] + lines,
               anonymous=False)
    b.start()
    try:
        alice = b.raw(m.V311)
        alice.connect("alice", username="alice", password=b"a")
        alice.publish("r/1", b"from alice", qos=1, retain=True)
        alice.disconnect()
        acl.write_text(ACL_AFTER)
        os.kill(b.proc.pid, signal.SIGHUP)
        time.sleep(0.5)
        bob = b.raw(m.V311)
        bob.connect("bob", username="bob", password=b"b")
        assert bob.subscribe([("r/#", 1)]).codes == [1]
        got = [p.payload for p in bob.early + bob.recv_all(0.5) if p.type == m.PUBLISH]
        bob.disconnect()
        return got
    finally:
        alive = b.alive()
        b.stop()
        assert alive


@pytest.mark.single_node("retained messages come back from the cluster's stream "
                         "without their publisher, whom check_retain_source needs")
@pytest.mark.ternd_only
def test_check_retain_source_default_drops_what_the_publisher_may_no_longer_write(tmp_path):
    """check_retain_source (true by default): the retained message is not
    sent, its publisher having lost write access since, as mosquitto.conf(5)
    says. mosquitto 2.0.11 sends it all the same here, though its reload
    took effect (alice's next PUBLISH is denied)."""
    assert retained_after_acl_change(tmp_path, []) == []


def test_check_retain_source_false_sends_it(tmp_path):
    """check_retain_source false: sent; the test above can fail."""
    assert retained_after_acl_change(tmp_path, ["check_retain_source false"]) == [b"from alice"]


def retained_after_restart(tmp_path, lines):
    """alice retains r/1 while the ACL lets her write it; the broker stops
    (its store keeps the message) and starts again with an ACL that no
    longer lets her: what does bob, subscribing now, get? (mosquitto's
    04-retain-check-source-persist, the regression test of CVE-2018-12546:
    the source is kept with the retained message, in its persistence file
    as in ternd's store.)"""
    pw = str(tmp_path / "passwd")
    write_passwd(pw, {"alice": "a", "bob": "b"})
    acl = tmp_path / "acl"
    acl.write_text(ACL_BEFORE)
    persist = ["persistence true", "persistence_location %s/" % tmp_path] if MOSQUITTO else []
    b = Broker(tmp_path, 1, ["password_file " + pw, "acl_file " + str(acl)] + persist + lines,
               anonymous=False)
    b.start()
    try:
        alice = b.raw(m.V311)
        alice.connect("alice", username="alice", password=b"a")
        alice.publish("r/1", b"from alice", qos=1, retain=True)
        alice.disconnect()
        assert b.stop() == 0
        acl.write_text(ACL_AFTER)
        b.start()
        bob = b.raw(m.V311)
        bob.connect("bob", username="bob", password=b"b")
        assert bob.subscribe([("r/#", 1)]).codes == [1]
        got = [p.payload for p in bob.early + bob.recv_all(0.5) if p.type == m.PUBLISH]
        bob.disconnect()
        return got
    finally:
        alive = b.alive()
        b.stop()
        assert alive


@pytest.mark.single_node("retained messages come back from the cluster's stream "
                         "without their publisher, whom check_retain_source needs")
@pytest.mark.ternd_only
def test_check_retain_source_holds_after_a_restart(tmp_path):
    """check_retain_source: the publisher of a retained message is kept with
    it in the store, so after a restart with an ACL that no longer lets her
    write the topic, her retained message is not sent (mosquitto.conf(5)).
    mosquitto 2.0.11 keeps the source in its persistence file, yet sends
    the message here, as it does after the SIGHUP above."""
    assert retained_after_restart(tmp_path, []) == []


def test_check_retain_source_false_sends_it_after_a_restart(tmp_path):
    """check_retain_source false: sent after the restart, as stored; the
    test above can fail."""
    assert retained_after_restart(tmp_path, ["check_retain_source false"]) == [b"from alice"]
