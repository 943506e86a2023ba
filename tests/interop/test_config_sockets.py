"""Where a listener listens: bind_interface (the interface's address) and
socket_domain (IPv4 or IPv6 only), with mosquitto.conf(5)'s meanings;
against mosquitto too (TERN_TEST_AGAINST=mosquitto). A second listener,
on the wildcard address, is the one under test: the first one (Broker's
own, on 127.0.0.1) is only how the fixture sees the broker is up."""

import socket
import subprocess

import pytest

import mqtt_raw as m
from conftest import MOSQUITTO, Broker, broker_binary, free_port, wait_port


def other_ipv4():
    """A local IPv4 address that is not loopback, or None."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return next((a for a in out if ":" not in a and not a.startswith("127.")), None)


def reachable(host, port, family=socket.AF_INET):
    """Whether an MQTT CONNECT to host:port gets a CONNACK."""
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect((host, port))
            s.sendall(m.connect("probe"))
            return s.recv(4)[:1] == b"\x20"
    except OSError:
        return False


def has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def start(tmp_path, lines):
    port = free_port()
    b = Broker(tmp_path, 1, ["listener %d" % port] + lines)
    b.start()
    return b, port


def test_bind_interface_lo_listens_on_loopback_only(tmp_path):
    """bind_interface lo: the wildcard listener takes lo's address, so it
    answers on 127.0.0.1 and not on the machine's other address."""
    other = other_ipv4()
    if not other:
        pytest.skip("no non-loopback IPv4 address")
    b, port = start(tmp_path, ["bind_interface lo"])
    try:
        assert reachable("127.0.0.1", port)
        assert not reachable(other, port)
    finally:
        b.stop()


def test_without_bind_interface_the_wildcard_listener_answers_everywhere(tmp_path):
    """The same listener without bind_interface answers on the other
    address too: the test above can fail."""
    other = other_ipv4()
    if not other:
        pytest.skip("no non-loopback IPv4 address")
    b, port = start(tmp_path, [])
    try:
        assert reachable("127.0.0.1", port)
        assert reachable(other, port)
    finally:
        b.stop()


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback")
@pytest.mark.parametrize("domain", ["ipv4", "ipv6"])
def test_socket_domain(tmp_path, domain):
    """socket_domain ipv4: the wildcard listener takes IPv4 only; ipv6:
    IPv6 only (no IPv4-mapped clients)."""
    b, port = start(tmp_path, ["socket_domain " + domain])
    try:
        assert reachable("127.0.0.1", port) == (domain == "ipv4")
        assert reachable("::1", port, socket.AF_INET6) == (domain == "ipv6")
    finally:
        b.stop()


@pytest.mark.ternd_only
def test_bind_interface_that_does_not_exist_stops_ternd(tmp_path):
    """An interface that does not exist: ternd does not start, and says so."""
    conf = tmp_path / "noif.conf"
    conf.write_text("listener %d\nbind_interface nosuch0\nstorage memory\n" % free_port())
    cp = subprocess.run([broker_binary(), "-c", str(conf)], capture_output=True, timeout=5,
                        stdin=subprocess.DEVNULL)
    assert cp.returncode != 0
    assert b"interface nosuch0 does not exist" in cp.stdout + cp.stderr


@pytest.mark.ternd_only
def test_socket_domain_takes_ipv4_or_ipv6_only(tmp_path):
    conf = tmp_path / "dom.conf"
    conf.write_text("listener 1884\nsocket_domain ipx\n")
    cp = subprocess.run([broker_binary(), "--test-config", "-c", str(conf)],
                        capture_output=True, timeout=5, stdin=subprocess.DEVNULL)
    assert cp.returncode != 0
    assert b"socket_domain: expected ipv4 or ipv6" in cp.stderr, cp.stderr
