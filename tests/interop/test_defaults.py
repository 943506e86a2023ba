"""Secure defaults, as in mosquitto 2: a broker started without a listener
in its configuration ("ternd -p 1884", or a file that defines none) is in
local only mode: it listens on loopback only, lets anonymous clients in,
and says so in its log. Once the configuration defines a listener,
allow_anonymous defaults to false: a client without credentials is refused
(CONNACK 5 in 3.1.1, 0x87 Not authorized in v5) and the log line says why
and which directive to set."""

import os
import signal
import subprocess
import time

import pytest

import mqtt_raw as m
from helpers import read_log, wait_log
from conftest import HOST, MOSQUITTO, broker_binary, free_port, tail, wait_port


def listening(port):
    """Local addresses of the TCP sockets listening on port, from
    /proc/net/tcp and tcp6 (hex, as the kernel prints them)."""
    found = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            addr, hport = cols[1].rsplit(":", 1)
            if int(hport, 16) == port and cols[3] == "0A":
                found.append(addr)
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}


class Proc:
    """A broker started with command-line arguments only (no -c unless
    the test gives one), stopped by its PID."""

    def __init__(self, tmp_path, args):
        self.log = str(tmp_path / "broker.log")
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([broker_binary()] + args, stdout=logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=str(tmp_path))
        logf.close()

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(3)


@pytest.mark.parametrize("with_file", [False, True], ids=["no-config", "config-without-listener"])
def test_without_a_listener_the_broker_is_local_only(tmp_path, with_file):
    """`-p PORT` and no listener configured: listening sockets on loopback
    only (127.0.0.1, and ::1 for mosquitto), anonymous clients welcome,
    and the log says "local only mode"."""
    port = free_port()
    args = ["-p", str(port)]
    if with_file:
        conf = tmp_path / "nolistener.conf"
        conf.write_text("max_keepalive 600\n")
        args = ["-c", str(conf)] + args
    b = Proc(tmp_path, args)
    try:
        assert wait_port(port, b.proc), tail(b.log)
        addrs = listening(port)
        assert addrs and set(addrs) <= LOOPBACK, addrs
        c = m.RawClient(HOST, port, version=m.V311)
        assert c.connect("anon-local").rc == 0
        c.disconnect()
        deadline = time.monotonic() + 2
        while "local only mode" not in b.text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "local only mode" in b.text()
    finally:
        b.stop()


@pytest.mark.ternd_only
def test_make_run_command_line_stays_local_and_anonymous(tmp_path):
    """`make run` starts `ternd -v -b 127.0.0.1 -p 1883 --db ...`: a
    loopback address on the command line is still local only mode."""
    port = free_port()
    b = Proc(tmp_path, ["-v", "-b", "127.0.0.1", "-p", str(port), "--storage", "memory"])
    try:
        assert wait_port(port, b.proc), tail(b.log)
        assert set(listening(port)) == {"0100007F"}
        c = m.RawClient(HOST, port, version=m.V5)
        assert c.connect("anon-run").rc == 0
        c.disconnect()
        assert "local only mode" in b.text()
    finally:
        b.stop()


@pytest.mark.parametrize("version,code", [(m.V311, 0x05), (m.V5, 0x87)])
def test_configured_listener_refuses_anonymous_clients_by_default(tmp_path, version, code):
    """A listener in the configuration and no allow_anonymous: a client
    without a username is refused, and so is one with a username when no
    password_file can check it (Not authorized, as mosquitto answers). The
    log says which directive to set."""
    from conftest import Broker
    b = Broker(tmp_path, 1, [], anonymous=False)
    b.start()
    try:
        for kw in ({}, {"username": "u"}, {"username": "u", "password": b"p"}):
            c = b.raw(version)
            assert c.connect("anon-%d" % version, expect_rc=None, **kw).rc == code, kw
            c.close()
        if not MOSQUITTO:
            # The log writer thread may write the lines after the refusals
            # are seen here.
            assert wait_log(b, "allow_anonymous defaults to false", "set allow_anonymous true",
                            "no client can connect"), read_log(b)
    finally:
        b.stop()


@pytest.mark.parametrize("version", [m.V311, m.V5])
def test_allow_anonymous_true_with_a_listener_lets_anonymous_clients_in(tmp_path, version):
    """`allow_anonymous true` with a configured listener: anonymous clients
    connect."""
    from conftest import Broker
    b = Broker(tmp_path, 1, ["allow_anonymous true"], anonymous=False)
    b.start()
    try:
        c = b.raw(version)
        assert c.connect("anon-ok").rc == 0
        c.disconnect()
    finally:
        b.stop()
