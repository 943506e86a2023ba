"""Where a listener listens: bind_interface (the interface's address) and
socket_domain (IPv4 or IPv6 only), with mosquitto.conf(5)'s meanings;
against mosquitto too (TERN_TEST_AGAINST=mosquitto). A second listener,
on the wildcard address, is the one under test: the first one (Broker's
own, on 127.0.0.1) is only how the fixture sees the broker is up."""

import ctypes
import os
import socket
import subprocess

import pytest

import mqtt_raw as m
from conftest import MOSQUITTO, Broker, broker_binary, free_port, wait_port


class _Sockaddr(ctypes.Structure):
    _fields_ = [("family", ctypes.c_ushort), ("port", ctypes.c_uint16),
                ("addr", ctypes.c_ubyte * 4)]


class _Ifaddrs(ctypes.Structure):
    pass


_Ifaddrs._fields_ = [("next", ctypes.POINTER(_Ifaddrs)), ("name", ctypes.c_char_p),
                     ("flags", ctypes.c_uint), ("addr", ctypes.POINTER(_Sockaddr)),
                     ("netmask", ctypes.c_void_p), ("ifu", ctypes.c_void_p),
                     ("data", ctypes.c_void_p)]


def ipv4_addresses():
    """(interface, IPv4 address) pairs in getifaddrs(3)'s order: the order
    in which ternd and mosquitto take an interface's first address. A
    machine's lo may hold more than 127.0.0.1 (some sandboxes put their
    own address on it), so the tests ask rather than assume."""
    libc = ctypes.CDLL(None, use_errno=True)
    head = ctypes.POINTER(_Ifaddrs)()
    if libc.getifaddrs(ctypes.byref(head)) != 0:
        raise OSError(ctypes.get_errno(), "getifaddrs")
    out = []
    try:
        i = head
        while i:
            a = i.contents.addr
            if a and a.contents.family == socket.AF_INET:
                out.append((i.contents.name.decode(), socket.inet_ntoa(bytes(a.contents.addr))))
            i = i.contents.next
    finally:
        libc.freeifaddrs(head)
    return out


def lo_ipv4():
    """lo's first IPv4 address: the one bind_interface lo listens on."""
    return next((a for n, a in ipv4_addresses() if n == "lo"), None)


def other_ipv4():
    """An IPv4 address of an interface other than lo (and not lo's too),
    or None."""
    addrs = ipv4_addresses()
    on_lo = {a for n, a in addrs if n == "lo"}
    return next((a for n, a in addrs if n != "lo" and a not in on_lo), None)


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
    """bind_interface lo: the wildcard listener takes lo's (first IPv4)
    address, so it answers there and not on the machine's other address."""
    other, lo = other_ipv4(), lo_ipv4()
    if not other or not lo:
        pytest.skip("no IPv4 address on lo and on another interface")
    b, port = start(tmp_path, ["bind_interface lo"])
    try:
        assert reachable(lo, port)
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


@pytest.mark.parametrize("second", ["*", "127.0.0.1"])
def test_a_second_broker_on_a_taken_port_does_not_start(tmp_path, second):
    """A port another broker listens on is taken: a second broker on it
    (wildcard or the same address) stops at start with 'Address already in
    use', as mosquitto does, rather than sharing the first one's
    connections (ternd's per-worker SO_REUSEPORT sockets would let it)."""
    a = Broker(tmp_path, 2, [])
    a.start()
    try:
        conf = tmp_path / "second.conf"
        addr = "" if second == "*" else " " + second
        conf.write_text("listener %d%s\nallow_anonymous true\n" % (a.port, addr))
        os.chmod(conf, 0o644)
        cp = subprocess.run([broker_binary(), "-c", str(conf)], capture_output=True,
                            timeout=10, stdin=subprocess.DEVNULL)
        assert cp.returncode != 0
        assert b"Address already in use" in cp.stdout + cp.stderr, cp.stdout + cp.stderr
        assert a.alive()
        for _ in range(8):
            assert reachable("127.0.0.1", a.port)
    finally:
        a.stop()
