"""A real PostgreSQL server for the archive tests (test_archive_pg.py).

Debian's `postgresql` package, started by the test itself: `initdb` and
`pg_ctl` run as the postgres user (through runuser when the tests run as
root) on a temporary directory under /tmp (pytest's tmp_path is not
reachable by another user), listening on a free loopback port, with
fsync off (a test server; commits still reach the OS before they return,
so a killed server keeps them). No system service is used. Queries go through
`psql`, which Debian's postgresql-client brings with the server.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from conftest import free_port


def _bindir():
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(d, "initdb")):
            return d
    return None


class Postgres:
    def __init__(self):
        self.bindir = _bindir()
        if not self.bindir or not shutil.which("psql"):
            pytest.skip("PostgreSQL is not installed (scripts/deps.sh test)")
        self.dir = tempfile.mkdtemp(prefix="tern-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.url = "postgresql://postgres@127.0.0.1:%d/postgres" % self.port
        self.as_postgres = []
        if os.getuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync",
                  "-E", "UTF8", "--locale=C")
        self.start()

    def _run(self, tool, *args, check=True):
        return subprocess.run(self.as_postgres + [os.path.join(self.bindir, tool)] + list(args),
                              capture_output=True, text=True, timeout=60, check=check)

    def start(self):
        p = self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-w",
                      "-o", "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off"
                      % (self.port, self.dir), "start",
                      check=False)
        assert p.returncode == 0, p.stdout + p.stderr + self.log()

    def stop(self, mode="fast"):
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def log(self):
        try:
            with open(os.path.join(self.dir, "log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def query(self, sql):
        """Rows of sql as lists of strings (psql's unaligned output)."""
        p = subprocess.run(["psql", "-X", "-At", "-F", "\x1f", "-d", self.url, "-c", sql],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        return [line.split("\x1f") for line in p.stdout.splitlines()]

    def close(self):
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def postgres():
    pg = Postgres()
    yield pg
    pg.close()
