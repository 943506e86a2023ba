"""`tern history` reads an archive back (docs/archive.md): from the SQLite
and the PostgreSQL sink alike, what ternd archived from real clients is
printed in `tern sub`'s formats, filtered by -t (MQTT matching: + and #,
and $-topics kept out of wildcards [MQTT-4.7.2-1]), by --since against the
time ternd received each message, and cut by -C.
"""

import os
import sqlite3
import subprocess
import time

import pytest

import mqtt_raw as m
from conftest import Broker
from pg_fixture import postgres  # noqa: F401 (a fixture)
from test_tern_tools import tern_binary

pytestmark = pytest.mark.ternd_only


def history(*args, check=True):
    p = subprocess.run([tern_binary(), "history"] + list(args), capture_output=True,
                       timeout=30)
    if check:
        assert p.returncode == 0, p.stderr.decode()
    return p


def archive_some(tmp_path, url):
    """Archives four messages; returns the config file of the ternd that did."""
    b = Broker(tmp_path, 2, ["archive history", "archive_sink %s" % url, "archive_topic #",
                             "archive_topic $ops/#", "archive_batch 100 10ms"])
    b.start()
    try:
        c = b.raw(version=m.V5)
        c.connect("cli-1", username="u")
        c.publish("sensors/1/temp", b"21.5", qos=1, pid=1,
                  properties=[(m.USER_PROPERTY, ("unit", "C")),
                              (m.CONTENT_TYPE, "text/plain")])
        c.publish("sensors/2/temp", b"19.0", qos=0, retain=True)
        c.publish("factory/a/alarm", b"\x00\x01", qos=2, pid=2)
        c.publish("$ops/restart", b"now", qos=1, pid=3)
        c.disconnect()
    finally:
        assert b.stop() == 0
    return b.conf


def check_history(url):
    out = history("--sink", url, "-v").stdout
    assert out == (b"sensors/1/temp 21.5\nsensors/2/temp 19.0\nfactory/a/alarm \x00\x01\n"
                   b"$ops/restart now\n")
    out = history("--sink", url, "-t", "sensors/+/temp", "-F", "%t %p %q %r %P %C").stdout
    assert out == b"sensors/1/temp 21.5 1 0 unit:C text/plain\nsensors/2/temp 19.0 0 1  \n"
    # '#' does not match $-topics; a filter naming them does.
    out = history("--sink", url, "-t", "#", "-F", "%t").stdout.split()
    assert out == [b"sensors/1/temp", b"sensors/2/temp", b"factory/a/alarm"]
    out = history("--sink", url, "-t", "$ops/#", "-t", "factory/#", "-F", "%t").stdout.split()
    assert out == [b"factory/a/alarm", b"$ops/restart"]
    assert history("--sink", url, "-C", "2", "-F", "%t").stdout.split() == \
        [b"sensors/1/temp", b"sensors/2/temp"]
    assert history("--sink", url, "--since", "1h", "-C", "1").stdout == b"21.5\n"
    # The time stamps are those of reception, not of printing.
    tst = history("--sink", url, "-C", "1", "-F", "@s").stdout.strip()
    assert abs(int(tst) - time.time()) < 60


def test_history_from_sqlite(tmp_path):
    db = str(tmp_path / "h.db")
    url = "sqlite:" + db
    conf = archive_some(tmp_path, url)
    check_history(url)
    # The archive found in ternd's config file: the first block, or by name.
    assert history("-c", conf, "-C", "1").stdout == b"21.5\n"
    other = tmp_path / "two.conf"
    other.write_text("listener 1883\narchive first\narchive_sink sqlite:/nonexistent/x.db\n"
                     "archive_topic #\narchive history   # the one\narchive_sink %s\n"
                     "archive_topic #\n" % url)
    assert history("-c", str(other), "--archive", "history", "-C", "1").stdout == b"21.5\n"
    p = history("-c", str(other), check=False)
    assert p.returncode == 1 and b"cannot open" in p.stderr
    p = history("-c", str(other), "--archive", "nope", check=False)
    assert p.returncode == 1 and b"has no archive nope" in p.stderr
    # An old row is outside --since and inside a longer one.
    con = sqlite3.connect(db)
    con.execute("UPDATE history SET received_at = received_at - 7200000 WHERE topic = ?",
                ("sensors/1/temp",))
    con.commit()
    con.close()
    assert history("--sink", url, "--since", "1h", "-t", "sensors/#").stdout == b"19.0\n"
    assert history("--sink", url, "--since", "3h", "-t", "sensors/#").stdout == b"21.5\n19.0\n"


def test_history_from_postgres(tmp_path, postgres):
    archive_some(tmp_path, postgres.url)
    check_history(postgres.url)
    postgres.query("UPDATE history SET received_at = received_at - interval '2 hours'"
                   " WHERE topic = 'sensors/1/temp'")
    assert history("--sink", postgres.url, "--since", "1h", "-t", "sensors/#").stdout == \
        b"19.0\n"


def test_history_errors(tmp_path):
    db = str(tmp_path / "none.db")
    p = history("--sink", "sqlite:" + db, check=False)
    assert p.returncode == 1 and b"cannot open" in p.stderr
    assert not os.path.exists(db), "reading never creates the database"
    for args, words in [(["-t", "a"], b"--sink"), (["--sink", "mysql://x"], b"sqlite:PATH"),
                        (["--sink", "sqlite:x", "--since", "soon"], b"--since"),
                        (["--sink", "sqlite:x", "-t", "a/#/b"], b"-t"),
                        (["--sink", "sqlite:x", "-F", "%Z"], b"-F")]:
        p = history(*args, check=False)
        assert p.returncode == 1 and words in p.stderr, (args, p.stderr)
