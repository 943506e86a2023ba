"""`tern passwd` (src/tools/passwd.c): files it writes are accepted by the REAL
mosquitto broker, and its -c / -b / -D / -U / -H / -I behave like
mosquitto_passwd's.

Each broker test starts Debian's /usr/sbin/mosquitto on a free 127.0.0.1 port
with `password_file` and `allow_anonymous false`, then connects with
mosquitto_pub -u/-P: the right password must be accepted (exit 0), a wrong one
refused (CONNACK 5, "not authorised", for MQTT v3.1.1). The broker is stopped
by its PID. Environment: TERN_CLI is the tern binary (tests/CMakeLists.txt).
"""

import os
import pwd
import shutil
import signal
import stat
import subprocess

import pytest

from conftest import free_port, tail, wait_port

HOST = "127.0.0.1"
MOSQUITTO_BIN = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
TIMEOUT = 10


def tern():
    path = os.environ.get("TERN_CLI")
    if not path:
        candidate = os.path.join(os.path.dirname(__file__), "..", "..", "build",
                                 "src", "tools", "tern")
        if os.path.exists(candidate):
            path = os.path.abspath(candidate)
    if not path:
        pytest.skip("TERN_CLI is not set (path to the tern binary)")
    if not os.path.exists(path):
        pytest.fail("TERN_CLI=%s does not exist" % path)
    return path


def run_passwd(*args, stdin=None):
    return subprocess.run([tern(), "passwd", *args], input=stdin, capture_output=True,
                          text=True, timeout=TIMEOUT)


def entries(path):
    """user -> hash of a password file, ignoring comments and blank lines."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            user, _, h = line.partition(":")
            out[user] = h
    return out


class Mosquitto:
    """mosquitto with a password file, on a free loopback port."""

    def __init__(self, directory, password_file):
        if not os.path.exists(MOSQUITTO_BIN):
            pytest.skip("%s is not installed" % MOSQUITTO_BIN)
        if not shutil.which("mosquitto_pub"):
            pytest.skip("mosquitto_pub is not installed")
        self.port = free_port()
        self.conf = os.path.join(str(directory), "mosquitto.conf")
        self.log = os.path.join(str(directory), "mosquitto.log")
        lines = ["listener %d %s" % (self.port, HOST),
                 "allow_anonymous false",
                 "password_file %s" % password_file]
        if os.geteuid() == 0:
            lines.append("user %s" % pwd.getpwuid(0).pw_name)
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen([MOSQUITTO_BIN, "-c", self.conf], stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        try:
            wait_port(self.port, self.proc)
        except Exception:
            self.stop()
            raise

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.logf.close()

    def connect(self, user, password):
        """Exit status of one mosquitto_pub with these credentials."""
        args = ["mosquitto_pub", "-h", HOST, "-p", str(self.port), "-t", "t", "-m", "x",
                "-u", user]
        if password is not None:
            args += ["-P", password]
        r = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
        return r.returncode


@pytest.fixture
def mosq(tmp_path):
    started = []

    def start(password_file):
        m = Mosquitto(tmp_path, password_file)
        started.append(m)
        return m

    yield start
    for m in started:
        m.stop()


def test_file_from_tern_passwd_is_accepted_by_mosquitto(tmp_path, mosq):
    pw = str(tmp_path / "passwd")
    assert run_passwd("-c", "-b", pw, "alice", "alice-pw").returncode == 0
    assert run_passwd("-b", pw, "bob", "b:o b pw").returncode == 0
    assert run_passwd("-I", "2000", "-b", pw, "carol", "carol-pw").returncode == 0
    assert run_passwd("-H", "sha512", "-b", pw, "old", "old-pw").returncode == 0
    assert run_passwd("-b", pw, "uni", "пароль").returncode == 0
    st = os.stat(pw)
    assert stat.S_IMODE(st.st_mode) == 0o600
    e = entries(pw)
    assert e["alice"].startswith("$7$101$")
    assert e["carol"].startswith("$7$2000$")
    assert e["old"].startswith("$6$")

    m = mosq(pw)
    try:
        assert m.connect("alice", "alice-pw") == 0
        assert m.connect("bob", "b:o b pw") == 0
        assert m.connect("carol", "carol-pw") == 0
        assert m.connect("old", "old-pw") == 0
        assert m.connect("uni", "пароль") == 0
        # Wrong password, unknown user, no password: CONNACK 5 (v3.1.1).
        assert m.connect("alice", "wrong") == 5
        assert m.connect("alice", "bob-pw") == 5
        assert m.connect("mallory", "alice-pw") == 5
        assert m.connect("alice", None) == 5
    except AssertionError:
        print(tail(m.log))
        raise


def test_update_and_delete_seen_by_mosquitto(tmp_path, mosq):
    pw = str(tmp_path / "passwd")
    assert run_passwd("-c", "-b", pw, "alice", "first").returncode == 0
    assert run_passwd("-b", pw, "bob", "bob-pw").returncode == 0
    # Updating keeps the other users and the order.
    assert run_passwd("-b", pw, "alice", "second").returncode == 0
    assert list(entries(pw)) == ["alice", "bob"]
    assert run_passwd("-D", pw, "bob").returncode == 0
    assert list(entries(pw)) == ["alice"]
    m = mosq(pw)
    assert m.connect("alice", "second") == 0
    assert m.connect("alice", "first") == 5
    assert m.connect("bob", "bob-pw") == 5


def test_upgrade_plain_text_file(tmp_path, mosq):
    pw = str(tmp_path / "passwd")
    with open(pw, "w") as f:
        f.write("# users\nalice:plain-a\n\nbob: spaced \n")
    r = run_passwd("-U", pw)
    assert r.returncode == 0, r.stderr
    text = open(pw).read()
    assert "plain-a" not in text
    assert text.startswith("# users\n")
    e = entries(pw)
    assert sorted(e) == ["alice", "bob"]
    assert all(h.startswith("$7$101$") for h in e.values())
    # Running -U again would hash the hashes: refused, file unchanged.
    r = run_passwd("-U", pw)
    assert r.returncode == 1
    assert "already holds a password hash" in r.stderr
    assert open(pw).read() == text
    m = mosq(pw)
    assert m.connect("alice", "plain-a") == 0
    # Blanks around a plain-text password are trimmed, as mosquitto_passwd -U does.
    assert m.connect("bob", "spaced") == 0
    assert m.connect("alice", "wrong") == 5


def test_interactive_password_is_read_twice(tmp_path, mosq):
    pw = str(tmp_path / "passwd")
    r = run_passwd("-c", pw, "alice", stdin="typed-pw\ntyped-pw\n")
    assert r.returncode == 0, r.stderr
    assert "Password:" in r.stdout and "Reenter password:" in r.stdout
    r = run_passwd(pw, "bob", stdin="one\ntwo\n")
    assert r.returncode == 1
    assert "Passwords do not match" in r.stderr
    assert list(entries(pw)) == ["alice"]
    m = mosq(pw)
    assert m.connect("alice", "typed-pw") == 0


def test_mosquitto_passwd_can_edit_a_tern_file_and_back(tmp_path):
    tool = shutil.which("mosquitto_passwd")
    if not tool:
        pytest.skip("mosquitto_passwd is not installed")
    pw = str(tmp_path / "passwd")
    assert run_passwd("-c", "-b", pw, "alice", "a").returncode == 0
    subprocess.run([tool, "-b", pw, "bob", "b"], check=True, timeout=TIMEOUT)
    assert run_passwd("-b", pw, "carol", "c").returncode == 0
    assert list(entries(pw)) == ["alice", "bob", "carol"]
    subprocess.run([tool, "-D", pw, "alice"], check=True, timeout=TIMEOUT)
    assert list(entries(pw)) == ["bob", "carol"]


def test_errors_match_mosquitto_passwd(tmp_path):
    pw = str(tmp_path / "passwd")
    assert run_passwd("-c", "-b", pw, "alice", "a").returncode == 0
    before = open(pw).read()
    cases = [
        (["-D", pw, "nobody"], "User nobody not found"),
        (["-b", pw, "a:b", "x"], "must not contain the ':'"),
        (["-c", "-D", pw, "alice"], "-c and -D cannot be used together"),
        (["-D", "-U", pw], "-D and -U cannot be used together"),
        (["-b", "-D", pw, "alice"], "-b and -D cannot be used together"),
        (["-H", "md5", "-b", pw, "x", "y"], "Unknown hash type"),
        (["-I", "0", "-b", pw, "x", "y"], "iterations must be > 0"),
        (["-b", str(tmp_path / "missing"), "x", "y"], "Unable to open password file"),
    ]
    for args, msg in cases:
        r = run_passwd(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert msg in r.stderr, (args, r.stderr)
    assert open(pw).read() == before
    # A corrupt line stops an edit and leaves the file alone.
    with open(pw, "a") as f:
        f.write("no colon here\n")
    corrupt = open(pw).read()
    r = run_passwd("-b", pw, "bob", "b")
    assert r.returncode == 1 and "Corrupt password file at line 2" in r.stderr
    assert open(pw).read() == corrupt
    # No temporary files are left behind.
    assert sorted(os.listdir(tmp_path)) == ["passwd"]


def test_create_overwrites_and_replaces_atomically(tmp_path):
    pw = str(tmp_path / "passwd")
    assert run_passwd("-c", "-b", pw, "alice", "a").returncode == 0
    assert run_passwd("-b", pw, "bob", "b").returncode == 0
    ino = os.stat(pw).st_ino
    assert run_passwd("-c", "-b", pw, "carol", "c").returncode == 0
    assert list(entries(pw)) == ["carol"]
    # A new inode: the file was renamed into place, not rewritten.
    assert os.stat(pw).st_ino != ino
    # Through a symlink, the target is replaced and the link kept.
    link = str(tmp_path / "link")
    os.symlink(pw, link)
    assert run_passwd("-b", link, "dave", "d").returncode == 0
    assert os.path.islink(link)
    assert list(entries(pw)) == ["carol", "dave"]
