"""WebSocket listener directives of mosquitto.conf: websockets_origin
(mosquitto 2.1), websockets_headers_size, websockets_log_level; and
log_facility. ternd only: Debian's mosquitto 2.0 has neither 2.1's
directives nor a WebSockets build that tests can count on."""

import os
import shutil
import socket
import subprocess
import time

import pytest

import mqtt_raw as m
from conftest import Broker, broker_binary, free_port, tail, wait_port
from test_websockets import WS

pytestmark = pytest.mark.ternd_only


def ws_broker(tmp_path, lines):
    b = Broker(tmp_path, 1, [])
    b.ws_port = free_port()
    b.extra = ["listener %d 127.0.0.1" % b.ws_port, "protocol websockets",
               "storage memory"] + lines
    b.start()
    assert wait_port(b.ws_port, b.proc)
    return b


def test_websockets_origin(tmp_path):
    """websockets_origin, given twice: an upgrade whose Origin is one of
    them gets 101 and MQTT works over it; another origin, or none, gets
    403."""
    b = ws_broker(tmp_path, ["websockets_origin http://a.example",
                             "websockets_origin https://b.example:8443"])
    try:
        for origin in ("http://a.example", "https://b.example:8443"):
            w = WS(b.ws_port, headers="Origin: %s\r\n" % origin)
            assert w.status == b"HTTP/1.1 101 Switching Protocols", w.status
            w.frame(m.connect("ws-origin"))
            assert w.recv_mqtt()[:1] == b"\x20"
            w.close()
        for headers in ("Origin: http://evil.example\r\n", "Origin: http://a.example.evil\r\n",
                        ""):
            w = WS(b.ws_port, headers=headers)
            assert w.status.startswith(b"HTTP/1.1 403"), (headers, w.status)
            w.close()
    finally:
        assert b.stop() == 0


def test_without_websockets_origin_any_origin_upgrades(tmp_path):
    b = ws_broker(tmp_path, [])
    try:
        w = WS(b.ws_port, headers="Origin: http://evil.example\r\n")
        assert w.status == b"HTTP/1.1 101 Switching Protocols"
        w.close()
    finally:
        assert b.stop() == 0


def test_websockets_headers_size(tmp_path):
    """websockets_headers_size 512: an upgrade request of more than 512
    bytes gets 400; a short one gets in. Without it, the same long request
    is fine (8 KiB)."""
    cookie = "Cookie: " + "c" * 600 + "\r\n"
    b = ws_broker(tmp_path, ["websockets_headers_size 512"])
    try:
        w = WS(b.ws_port)
        assert w.status == b"HTTP/1.1 101 Switching Protocols"
        w.close()
        w = WS(b.ws_port, headers=cookie)
        assert w.status.startswith(b"HTTP/1.1 400"), w.status
        w.close()
    finally:
        assert b.stop() == 0
    b = ws_broker(tmp_path, ["websockets_log_level 1023"])
    try:
        w = WS(b.ws_port, headers=cookie)
        assert w.status == b"HTTP/1.1 101 Switching Protocols"
        w.close()
    finally:
        assert b.stop() == 0


def syslog_pri(tmp_path, lines):
    """The <PRI> of the first syslog datagram of a ternd started with
    `log_dest syslog` and lines, in a mount namespace of its own whose /dev
    is a tmpfs with null, zero, urandom and a `log` that leads to a socket
    of this test (so no /dev/log of the machine is touched)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a /dev/log of its own")
    tmp_path.mkdir(parents=True, exist_ok=True)
    sock_path = str(tmp_path / "log.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    s.settimeout(5)
    conf = tmp_path / "syslog.conf"
    conf.write_text("listener %d 127.0.0.1\nallow_anonymous true\nstorage memory\n"
                    "log_dest syslog\n%s\n" % (free_port(), "\n".join(lines)))
    old = str(tmp_path / "olddev")
    os.mkdir(old)
    script = ("mount --make-rprivate / && mount --rbind /dev %s && "
              "mount -t tmpfs tmpfs /dev && "
              "for n in null zero urandom random; do touch /dev/$n && "
              "mount --bind %s/$n /dev/$n; done && ln -s %s /dev/log && exec %s -c %s"
              % (old, old, sock_path, broker_binary(), conf))
    p = subprocess.Popen(["unshare", "-m", "sh", "-c", script], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        data = s.recv(4096)
    except socket.timeout:
        p.kill()
        out = p.communicate(timeout=5)[0]
        pytest.fail("no syslog datagram; ternd said: %r" % out)
    finally:
        s.close()
    p.terminate()
    p.wait(5)
    assert data.startswith(b"<"), data
    return int(data[1:data.index(b">")]), data


def test_log_facility(tmp_path):
    """log_facility 5: ternd logs to syslog's local5 (facility 21); without
    it, to daemon (3), as mosquitto."""
    pri, data = syslog_pri(tmp_path / "a", ["log_facility 5"])
    assert pri >> 3 == 21, data
    assert b"ternd" in data
    pri, data = syslog_pri(tmp_path / "b", [])
    assert pri >> 3 == 3, data
