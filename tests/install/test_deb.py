"""make deb's package, installed into a scratch root with dpkg --root.

    TERN_BUILD=BUILD /usr/bin/python3 -m pytest -q tests/install/test_deb.py
    (CTest: install.deb)

dist/deb/build-deb.sh builds the .deb from BUILD; dpkg installs it into an
empty root R (`dpkg --root=R --force-not-root --force-script-chrootless
--force-depends -i`: the maintainer scripts run outside R with DPKG_ROOT=R,
and R has no libc, hence --force-depends). Then: the files are there, the
postinst made the system user ternd in R/etc/passwd and R/var/lib/ternd
owned by it, and the packaged ternd, started on the packaged configuration
(its port replaced by a free one, its state directory moved into R),
carries a message from the packaged `tern pub` to `tern sub`, and `tern
history` loads the packaged MongoDB module. Last, `dpkg
--purge` removes every file, the conffile and the state.
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
BUILD = os.environ.get("TERN_BUILD", os.path.join(SRC, "build"))

pytestmark = [
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="no dpkg-deb: not a Debian system"),
    pytest.mark.skipif(
        os.geteuid() != 0,
        reason="dpkg --root with the package's postinst (useradd --prefix, chown) needs root",
    ),
]

FILES = [
    "usr/sbin/ternd",
    "usr/bin/tern",
    "usr/lib/libtern.so.0",
    "usr/include/tern/tern.h",
    "usr/lib/pkgconfig/tern.pc",
    "usr/lib/tern/tern_archive_mongo.so",
    "usr/share/man/man1/tern.1.gz",
    "usr/share/man/man5/ternd.conf.5.gz",
    "usr/share/man/man8/ternd.8.gz",
    "usr/lib/systemd/system/ternd.service",
    "etc/tern/ternd.conf",
]


def dpkg(root, *args):
    cp = subprocess.run(
        ["dpkg", f"--root={root}", "--force-not-root", "--force-script-chrootless", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cp.returncode == 0, (args, cp.stdout, cp.stderr)
    return cp


def scratch_root(path):
    """An empty root dpkg can install into: its database, and the passwd
    and group files useradd --prefix adds to."""
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log", "etc"):
        os.makedirs(path / d)
    (path / "var/lib/dpkg/status").write_text("")
    (path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (path / "etc/group").write_text("root:x:0:\n")


def entry(path, name):
    for line in open(path):
        f = line.rstrip("\n").split(":")
        if f[0] == name:
            return f
    return None


def test_deb_installs_runs_and_purges(tmp_path):
    cp = subprocess.run(
        ["sh", os.path.join(SRC, "dist/deb/build-deb.sh"), BUILD, SRC, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cp.returncode == 0, cp.stderr
    deb = cp.stdout.strip().split("\n")[-1]
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert re.fullmatch(r".*/tern_\d+\.\d+\.\d+_" + arch + r"\.deb", deb), deb

    info = subprocess.run(["dpkg-deb", "-f", deb], capture_output=True, text=True, check=True)
    fields = dict(
        l.split(": ", 1) for l in info.stdout.split("\n") if ": " in l and not l.startswith(" ")
    )
    assert fields["Package"] == "tern"
    # The libraries ternd links, as dpkg-shlibdeps (or ldd) finds them.
    for lib in ("libc6", "libssl3", "libsqlite3-0", "passwd"):
        assert lib in fields["Depends"], fields["Depends"]
    assert "libmongoc" not in fields["Depends"], fields["Depends"]
    conffiles = subprocess.run(
        ["dpkg-deb", "--ctrl-tarfile", deb], capture_output=True, check=True
    ).stdout
    assert b"conffiles" in conffiles

    root = tmp_path / "root"
    scratch_root(root)
    dpkg(root, "--force-depends", "-i", deb)
    for f in FILES:
        assert os.path.exists(root / f), f
    assert os.access(root / "usr/sbin/ternd", os.X_OK)
    status = (root / "var/lib/dpkg/status").read_text()
    assert "Package: tern\nStatus: install ok installed" in status
    assert " /etc/tern/ternd.conf " in status  # registered as a conffile

    user = entry(root / "etc/passwd", "ternd")
    group = entry(root / "etc/group", "ternd")
    assert user and group, (root / "etc/passwd").read_text()
    assert user[3] == group[2] and user[5] == "/var/lib/ternd"
    assert user[6] == "/usr/sbin/nologin"
    assert int(user[2]) < 1000  # a system user
    st = os.stat(root / "var/lib/ternd")
    assert (st.st_uid, st.st_gid) == (int(user[2]), int(group[2]))

    # The installed ternd, on the installed configuration.
    port = free_port()
    conf = (root / "etc/tern/ternd.conf").read_text()
    assert re.search(r"^listener 1883 127\.0\.0\.1$", conf, re.M)
    assert re.search(r"^persistence_location /var/lib/ternd/$", conf, re.M)
    conf = re.sub(r"^listener 1883 ", f"listener {port} ", conf, flags=re.M)
    conf = re.sub(
        r"^persistence_location /var/lib/ternd/$",
        f"persistence_location {root}/var/lib/ternd/",
        conf,
        flags=re.M,
    )
    test_conf = tmp_path / "ternd.conf"
    test_conf.write_text(conf)
    log = open(tmp_path / "ternd.log", "wb")
    ternd = subprocess.Popen(
        [str(root / "usr/sbin/ternd"), "-c", str(test_conf)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    tern = str(root / "usr/bin/tern")
    sub = None
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert ternd.poll() is None, (tmp_path / "ternd.log").read_text()
                assert time.monotonic() < deadline, "the installed ternd did not listen"
                time.sleep(0.05)
        sub = subprocess.Popen(
            [tern, "sub", "-h", "127.0.0.1", "-p", str(port), "-t", "deb/test", "-q", "1",
             "-C", "1", "-W", "15", "-v"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        # Publish until the subscriber has its subscription (bounded).
        out = b""
        for _ in range(50):
            subprocess.run(
                [tern, "pub", "-h", "127.0.0.1", "-p", str(port), "-t", "deb/test", "-q", "1",
                 "-m", "from the package"],
                check=True,
                timeout=10,
                capture_output=True,
            )
            try:
                out, err = sub.communicate(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                continue
        assert sub.returncode == 0, (out, err)
        assert out == b"deb/test from the package\n"
        # The state went where the configuration says.
        assert os.path.exists(root / "var/lib/ternd/ternd.db")
        ternd.send_signal(signal.SIGTERM)
        assert ternd.wait(timeout=20) == 0
    finally:
        for p in (sub, ternd):
            if p and p.poll() is None:
                p.kill()
                p.wait(timeout=10)

    # The packaged programs load the packaged MongoDB module (found from
    # their own path: the build was configured for another prefix).
    closed = free_port()
    cp = subprocess.run(
        [tern, "history", "--sink",
         f"mongodb://127.0.0.1:{closed}/db?serverSelectionTimeoutMS=300", "--table", "t"],
        env=dict(os.environ, LD_DEBUG="files"),
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    loaded = re.findall(r"file=(\S*tern_archive_mongo\.so) .*dynamically loaded", cp.stderr)
    assert loaded == [f"{root}/usr/lib/tern/tern_archive_mongo.so"], cp.stderr[-2000:]

    dpkg(root, "--purge", "tern")
    for f in FILES:
        assert not os.path.exists(root / f), f
    assert not os.path.exists(root / "var/lib/ternd")
    assert "Package: tern\n" not in (root / "var/lib/dpkg/status").read_text()
