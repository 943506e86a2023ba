"""TLS-PSK (issue 13): a listener with psk_hint takes clients that know an
identity and key of psk_file, as mosquitto's does; use_identity_as_username
makes the identity the username (for the ACL). Clients: mosquitto_pub /
mosquitto_sub --psk, and `tern pub` / `tern sub` --psk; a bridge with
bridge_identity / bridge_psk to a PSK mosquitto. Also run against mosquitto
(TERN_TEST_AGAINST=mosquitto) but for ternd's own tools and messages."""

import os
import signal
import subprocess

import pytest

from bridge_peer import HOST, Remote
from conftest import MOSQUITTO, MOSQUITTO_BIN, WORKER_COUNTS, Broker, broker_binary, free_port
from helpers import PahoClient, read_log, unique, wait_for

pytestmark = pytest.mark.skipif(not os.path.exists(MOSQUITTO_BIN),
                                reason="needs Debian's mosquitto clients")

KEYS = {"alice": "deadbeef00112233", "bob": "0102030405"}


def psk_file(d):
    path = os.path.join(str(d), "psk.txt")
    with open(path, "w") as f:
        f.write("# identity:key\n\n")
        for ident, key in KEYS.items():
            f.write("%s:%s\n" % (ident, key))
    os.chmod(path, 0o644)
    return path


@pytest.fixture(params=WORKER_COUNTS,
                ids=["mosquitto" if MOSQUITTO else "w%d" % w for w in WORKER_COUNTS])
def psk_broker(request, tmp_path):
    """A broker whose first listener is plain (for paho) and a second one
    TLS-PSK (.psk_port); extra lines from the test's broker_config marker."""
    marker = request.node.get_closest_marker("broker_config")
    extra = list(marker.args) if marker else []
    psk_port = free_port()
    b = Broker(tmp_path, request.param,
               ["psk_file " + psk_file(tmp_path)] + extra +
               ["listener %d %s" % (psk_port, HOST), "psk_hint tern-test"])
    b.psk_port = psk_port
    request.node._tern_broker_log = b.log
    b.start()
    yield b
    b.stop()


def mosq(tool, port, ident, key, *args):
    return [tool, "-h", HOST, "-p", str(port), "--psk-identity", ident, "--psk", key] + list(args)


def sub_one(port, ident, key, topic, tool="mosquitto_sub"):
    return subprocess.Popen(mosq(tool, port, ident, key, "-t", topic, "-C", "1", "-W", "8",
                                 "-q", "1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_psk_clients_exchange_messages(psk_broker):
    """mosquitto_sub and mosquitto_pub with a known identity and key: the
    message crosses the PSK listener."""
    sub = sub_one(psk_broker.psk_port, "alice", KEYS["alice"], "psk/x")

    def delivered():
        subprocess.run(mosq("mosquitto_pub", psk_broker.psk_port, "bob", KEYS["bob"], "-t",
                            "psk/x", "-m", "over-psk", "-q", "1"),
                       check=True, capture_output=True, timeout=10)
        return sub.poll() is not None
    assert wait_for(delivered, 8, interval=0.3)
    out, err = sub.communicate(timeout=5)
    assert out.strip() == b"over-psk", err


@pytest.mark.parametrize("ident,key", [("alice", "deadbeef00112234"), ("carol", "0102")])
def test_wrong_key_or_unknown_identity_fails_the_handshake(psk_broker, ident, key):
    cp = subprocess.run(mosq("mosquitto_pub", psk_broker.psk_port, ident, key, "-t", "x",
                             "-m", "no"), capture_output=True, timeout=10)
    assert cp.returncode != 0
    assert b"TLS" in cp.stderr or b"tls" in cp.stderr.lower() or b"Error" in cp.stderr


def test_plain_mqtt_on_the_psk_port_is_dropped(psk_broker):
    cp = subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(psk_broker.psk_port), "-t", "x",
                         "-m", "plain"], capture_output=True, timeout=10)
    assert cp.returncode != 0


def test_identity_is_the_username_for_the_acl(request, tmp_path):
    """use_identity_as_username: no password asked; the identity is the
    username the ACL reads (alice may use psk/#, bob may not)."""
    acl = tmp_path / "acl"
    acl.write_text("user alice\ntopic readwrite psk/#\n")
    os.chmod(str(acl), 0o644)
    psk_port = free_port()
    b = Broker(tmp_path, 1, ["psk_file " + psk_file(tmp_path), "allow_anonymous false",
                             "acl_file " + str(acl), "listener %d %s" % (psk_port, HOST),
                             "psk_hint tern-test", "use_identity_as_username true"],
               anonymous=False)
    request.node._tern_broker_log = b.log
    b.start()
    try:
        sub = sub_one(psk_port, "alice", KEYS["alice"], "psk/#")
        bob = sub_one(psk_port, "bob", KEYS["bob"], "psk/#")

        def delivered():
            subprocess.run(mosq("mosquitto_pub", psk_port, "alice", KEYS["alice"], "-t",
                                "psk/a", "-m", "for-alice", "-q", "1"),
                           capture_output=True, timeout=10)
            return sub.poll() is not None
        assert wait_for(delivered, 8, interval=0.3)
        assert sub.communicate(timeout=5)[0].strip() == b"for-alice"
        out, _ = bob.communicate(timeout=10)
        assert out == b""
    finally:
        b.stop()


def test_sighup_reloads_the_psk_file(psk_broker, tmp_path):
    """SIGHUP reads psk_file again, as mosquitto does: an identity added
    gets in, one removed no longer does."""
    def pub(ident, key):
        return subprocess.run(mosq("mosquitto_pub", psk_broker.psk_port, ident, key, "-t",
                                   "r/x", "-m", "m"), capture_output=True, timeout=10)
    assert pub("carol", "c0ffee").returncode != 0
    path = os.path.join(str(tmp_path), "psk.txt")
    with open(path, "w") as f:
        f.write("alice:%s\ncarol:c0ffee\n" % KEYS["alice"])
    psk_broker.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: pub("carol", "c0ffee").returncode == 0, 5, interval=0.2)
    assert pub("bob", KEYS["bob"]).returncode != 0
    assert pub("alice", KEYS["alice"]).returncode == 0


@pytest.mark.ternd_only
def test_tern_pub_and_sub_speak_psk(psk_broker):
    tern = os.environ.get("TERN_CLI") or os.path.join(os.path.dirname(broker_binary()),
                                                       "src", "tools", "tern")
    sub = subprocess.Popen([tern, "sub", "-h", HOST, "-p", str(psk_broker.psk_port),
                            "--psk", KEYS["alice"], "--psk-identity", "alice", "-t", "t/x",
                            "-C", "1", "-W", "8"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)

    def delivered():
        subprocess.run([tern, "pub", "-h", HOST, "-p", str(psk_broker.psk_port), "--psk",
                        KEYS["bob"], "--psk-identity", "bob", "-t", "t/x", "-m", "via-tern"],
                       capture_output=True, timeout=10)
        return sub.poll() is not None
    assert wait_for(delivered, 8, interval=0.3)
    assert sub.communicate(timeout=5)[0].strip() == b"via-tern"
    cp = subprocess.run([tern, "pub", "-h", HOST, "-p", str(psk_broker.psk_port), "--psk",
                         "0a0b", "--psk-identity", "bob", "-t", "t/x", "-m", "no"],
                        capture_output=True, timeout=10)
    assert cp.returncode != 0 and b"TLS" in cp.stderr
    cp = subprocess.run([tern, "pub", "--psk", "xyz", "--psk-identity", "bob", "-t", "t",
                         "-m", "no"], capture_output=True, timeout=10)
    assert cp.returncode != 0 and b"--psk" in cp.stderr


def test_bridge_over_psk(tmp_path):
    """bridge_identity / bridge_psk: a bridge to a mosquitto PSK listener."""
    r = Remote(tmp_path, ["psk_hint remote-hint", "psk_file " + psk_file(tmp_path),
                          "listener %d %s" % (free_port(), HOST)])
    plain = int(r.extra[-1].split()[1])
    r.start()
    d = tmp_path / ("local-" + unique("l"))
    d.mkdir()
    local = Broker(d, 1, ["connection pb", "address %s:%d" % (HOST, r.port),
                          "restart_timeout 1", "bridge_identity alice",
                          "bridge_psk " + KEYS["alice"], "topic psk/# out 1"])
    local.start()
    try:
        rview = type("View", (), {"host": HOST, "port": plain})()
        rsub = PahoClient(rview)
        rsub.subscribe("psk/#", 1)
        lpub = PahoClient(local)

        def crossed():
            lpub.publish("psk/b", b"bridged", 1)
            return any(m.payload == b"bridged" for m in rsub.drain(0.3))
        assert wait_for(crossed, 10), read_log(local)[-1500:]
    finally:
        local.stop()
        r.stop()


@pytest.mark.ternd_only
@pytest.mark.parametrize("lines,words", [
    (["listener {port} 127.0.0.1", "psk_hint h"], ["psk_hint needs a psk_file"]),
    (["psk_file {bad}", "listener {port} 127.0.0.1", "psk_hint h"], ["bad.txt:2", "hexadecimal"]),
    (["connection a", "address 127.0.0.1", "topic x", "bridge_identity me"],
     ["bridge_identity and bridge_psk"]),
    (["connection a", "address 127.0.0.1", "topic x", "bridge_identity me", "bridge_psk 0g"],
     ["bridge_psk"]),
    (["connection a", "address 127.0.0.1", "topic x", "bridge_identity me", "bridge_psk 00",
      "bridge_cafile ca.pem"], ["not both"]),
])
def test_psk_config_errors_name_the_problem(tmp_path, lines, words):
    bad = tmp_path / "bad.txt"
    bad.write_text("ok:00\nbroken:zz\n")
    text = "\n".join(["listener %d 127.0.0.1" % free_port()] +
                     [l.format(port=free_port(), bad=bad) for l in lines]) + "\n"
    conf = tmp_path / "p.conf"
    conf.write_text(text)
    cp = subprocess.run([broker_binary(), "-c", str(conf)], capture_output=True, timeout=5,
                        stdin=subprocess.DEVNULL)
    err = (cp.stderr + cp.stdout).decode()
    assert cp.returncode != 0, err
    for w in words:
        assert w in err, err
