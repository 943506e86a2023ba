"""More of mosquitto.conf, with mosquitto's meanings: include_dir,
allow_zero_length_clientid, auto_id_prefix, persistent_client_expiration,
queue_qos0_messages, pid_file, autosave_interval. per_listener_settings:
test_per_listener.py."""

import os
import sqlite3
import time

import pytest

import mqtt_raw as m

pytestmark = pytest.mark.ternd_only


def test_include_dir_reads_conf_files_in_order(tmp_path):
    """include_dir: every *.conf of the directory, alphabetically; other
    files are not read."""
    from conftest import Broker
    d = tmp_path / "conf.d"
    d.mkdir()
    (d / "10-keepalive.conf").write_text("max_keepalive 30\n")
    (d / "20-keepalive.conf").write_text("max_keepalive 10\n")
    (d / "README.txt").write_text("this is not a directive\n")
    b = Broker(tmp_path, 1, ["include_dir " + str(d), "storage memory"])
    b.start()
    try:
        c = b.raw(m.V5)
        ack = c.connect("inc", keepalive=60)
        assert ack.props.get(m.SERVER_KEEP_ALIVE) == 10
        c.disconnect()
    finally:
        b.stop()


@pytest.mark.broker_config("allow_zero_length_clientid false", "storage memory")
@pytest.mark.parametrize("version,code", [(m.V311, 0x02), (m.V5, 0x85)])
def test_zero_length_client_id_refused_when_not_allowed(broker, version, code):
    """allow_zero_length_clientid false: an empty client id is refused
    (identifier rejected / Client Identifier not valid)."""
    c = broker.raw(version)
    assert c.connect("", expect_rc=None).rc == code


@pytest.mark.broker_config("auto_id_prefix gw-", "storage memory")
def test_auto_id_prefix(broker):
    """auto_id_prefix: assigned client identifiers start with it."""
    c = broker.raw(m.V5)
    ack = c.connect("")
    assert ack.props[m.ASSIGNED_CLIENT_ID].startswith("gw-")
    c.disconnect()


@pytest.mark.broker_config("persistent_client_expiration 2h")
def test_persistent_client_expiration_bounds_v3_sessions(broker):
    """persistent_client_expiration: a 3.1.1 session with clean session 0,
    which would never expire, is kept for that long (and stored so)."""
    c = broker.raw(m.V311)
    c.connect("pce", clean=False)
    c.subscribe([("pce/#", 1)])
    c.disconnect()
    assert broker.stop() == 0
    con = sqlite3.connect(os.path.join(broker.dir, "ternd.db"))
    assert con.execute("SELECT expiry FROM sessions WHERE client_id = 'pce'").fetchall() == [
        (7200,)]
    con.close()
    broker.start()


@pytest.mark.broker_config("queue_qos0_messages true", "storage memory")
def test_queue_qos0_messages(broker):
    """queue_qos0_messages true: QoS 0 messages for an offline persistent
    session are queued and delivered when it comes back."""
    c = broker.raw(m.V311)
    c.connect("q0", clean=False)
    c.subscribe([("q0/#", 0)])
    c.disconnect()
    pub = broker.raw(m.V311)
    pub.connect("q0-pub")
    for i in range(3):
        pub.publish("q0/t", b"%d" % i, qos=0)
    pub.disconnect()
    time.sleep(0.2)
    c = broker.raw(m.V311)
    assert c.connect("q0", clean=False).session_present
    got = [p.payload for p in c.recv_all(0.8) if p.type == m.PUBLISH]
    assert got == [b"0", b"1", b"2"]
    c.disconnect()


def test_pid_file_and_autosave_interval(tmp_path):
    """pid_file holds the broker's pid while it runs and is removed at
    exit; autosave_interval is accepted (every change is committed anyway)."""
    from conftest import Broker
    pid = tmp_path / "ternd.pid"
    b = Broker(tmp_path, 1, ["pid_file " + str(pid), "autosave_interval 1800"])
    b.start()
    try:
        time.sleep(0.2)
        assert pid.read_text().strip() == str(b.proc.pid)
    finally:
        assert b.stop() == 0
    assert not pid.exists()
