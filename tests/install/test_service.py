"""ternd as a systemd service: the notification protocol, the unit, the
default configuration.

Run with Debian's pytest: TERND=BUILD/ternd TERN_BUILD=BUILD /usr/bin/python3
-m pytest -q tests/install/test_service.py (CTest: install.service).

- sd_notify(3)'s protocol without systemd: the test binds the unix datagram
  socket systemd would, passes it as NOTIFY_SOCKET (a path, and an abstract
  name starting with '@'), and reads what ternd sends: READY=1 once the
  listener accepts (an MQTT CONNECT right after it gets its CONNACK),
  RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a SIGHUP, and
  STOPPING=1 at SIGTERM.
- dist/systemd/ternd.service, installed into a scratch prefix, passes
  `systemd-analyze verify` (skipped where there is no systemd-analyze).
- etc/ternd.conf passes `ternd --test-config`, and so does every directive
  it shows commented out with its default, uncommented.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from testports import free_port  # noqa: E402  (tests/testports.py)

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
TERND = os.environ.get("TERND", os.path.join(SRC, "build", "ternd"))
BUILD = os.environ.get("TERN_BUILD", os.path.dirname(TERND))


def mqtt_connack(port):
    """A 3.1.1 CONNECT on a fresh connection; the CONNACK's bytes."""
    connect = bytes([0x10, 14, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 60, 0, 2]) + b"nt"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(connect)
        c.settimeout(5)
        data = b""
        while len(data) < 4:
            chunk = c.recv(4 - len(data))
            if not chunk:
                break
            data += chunk
    return data


def receive(sock, proc, timeout=20):
    """The next notification, or fail if ternd exits first or none comes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(0.2)
        try:
            return sock.recv(4096).decode()
        except socket.timeout:
            if proc.poll() is not None:
                pytest.fail(f"ternd exited ({proc.returncode}) before notifying")
    pytest.fail("no notification within %d s" % timeout)


def start(tmp_path, notify_name):
    port = free_port()
    conf = tmp_path / "ternd.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    env = dict(os.environ, NOTIFY_SOCKET=notify_name)
    log = open(tmp_path / "ternd.log", "wb")
    proc = subprocess.Popen(
        [TERND, "-c", str(conf), "--storage", "memory"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    return proc, port


def stop(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def notify_socket(tmp_path, abstract):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = "@tern-test-notify-%d-%d" % (os.getpid(), time.monotonic_ns())
        s.bind("\0" + name[1:])
    else:
        name = str(tmp_path / "notify.sock")
        s.bind(name)
    return s, name


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_ready_reloading_stopping_are_notified(tmp_path, abstract):
    """sd_notify(3): READY=1 once clients can connect; RELOADING=1 and
    READY=1 around SIGHUP's reload; STOPPING=1 at SIGTERM, then exit 0."""
    sock, name = notify_socket(tmp_path, abstract)
    proc, port = start(tmp_path, name)
    try:
        assert receive(sock, proc).split("\n") == ["READY=1"]
        # READY=1 came after the listener opened: a client gets in at
        # once, with no retry.
        assert mqtt_connack(port) == bytes([0x20, 2, 0, 0])

        proc.send_signal(signal.SIGHUP)
        lines = receive(sock, proc).split("\n")
        assert lines[0] == "RELOADING=1", lines
        # systemd 253's notify-reload takes the reload's start time.
        assert len(lines) == 2 and re.fullmatch(r"MONOTONIC_USEC=\d+", lines[1]), lines
        usec = int(lines[1].split("=")[1])
        assert abs(usec - time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000) < 60_000_000
        assert receive(sock, proc) == "READY=1"
        assert mqtt_connack(port) == bytes([0x20, 2, 0, 0])

        proc.send_signal(signal.SIGTERM)
        assert receive(sock, proc) == "STOPPING=1"
        assert proc.wait(timeout=20) == 0
    finally:
        stop(proc)
        sock.close()


def test_without_notify_socket_nothing_changes(tmp_path):
    """No NOTIFY_SOCKET (started by hand, or Type=simple): ternd runs and
    stops as before, and logs no notification problem."""
    port = free_port()
    conf = tmp_path / "ternd.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    proc = subprocess.Popen(
        [TERND, "-c", str(conf), "--storage", "memory"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                assert mqtt_connack(port) == bytes([0x20, 2, 0, 0])
                break
            except OSError:
                assert time.monotonic() < deadline, "ternd did not listen"
                time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert b"NOTIFY_SOCKET" not in out, out
    finally:
        stop(proc)


def test_a_bad_notify_socket_is_logged_and_ternd_runs(tmp_path):
    """A NOTIFY_SOCKET nobody listens on: a warning naming it, and the
    broker serves all the same (systemd would time the start out)."""
    proc, port = start(tmp_path, str(tmp_path / "nobody.sock"))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                assert mqtt_connack(port) == bytes([0x20, 2, 0, 0])
                break
            except OSError:
                assert time.monotonic() < deadline, "ternd did not listen"
                time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        log = (tmp_path / "ternd.log").read_bytes()
        assert b"cannot notify NOTIFY_SOCKET of READY=1" in log, log
    finally:
        stop(proc)


def test_unit_passes_systemd_analyze_verify(tmp_path):
    """The unit as make install writes it (ExecStart naming the installed
    ternd) is one systemd accepts: no unknown key, no bad value."""
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("no systemd-analyze on this machine (systemd is not installed)")
    prefix = tmp_path / "prefix"
    subprocess.run(
        ["cmake", "--install", BUILD, "--prefix", str(prefix)],
        check=True,
        capture_output=True,
    )
    unit = prefix / "lib" / "systemd" / "system" / "ternd.service"
    text = unit.read_text()
    assert f"ExecStart={prefix}/sbin/ternd -c {prefix}/etc/tern/ternd.conf\n" in text
    for line in (
        "Type=notify",
        "User=ternd",
        "StateDirectory=ternd",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK",
    ):
        assert line + "\n" in text, line
    cp = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert cp.returncode == 0 and not cp.stderr.strip() and not cp.stdout.strip(), (
        cp.returncode,
        cp.stdout,
        cp.stderr,
    )


def test_default_config_passes_test_config(tmp_path):
    """etc/ternd.conf is valid, and so is every default it shows
    commented out (include_dir aside: it names a directory to read)."""
    conf = os.path.join(SRC, "etc", "ternd.conf")
    cp = subprocess.run([TERND, "--test-config", "-c", conf], capture_output=True, timeout=10)
    assert cp.returncode == 0, cp.stderr
    assert b"Configuration file is OK." in cp.stdout
    lines = []
    shown = 0
    for line in open(conf):
        m = re.match(r"#([a-z_][a-z_0-9.]*) (.*)$", line)
        if m and m.group(1) != "include_dir":
            lines.append(f"{m.group(1)} {m.group(2)}\n")
            shown += 1
        elif not line.startswith("#"):
            lines.append(line)
    assert shown > 40
    every = tmp_path / "every.conf"
    every.write_text("".join(lines))
    cp = subprocess.run([TERND, "--test-config", "-c", str(every)], capture_output=True, timeout=10)
    assert cp.returncode == 0, cp.stderr
