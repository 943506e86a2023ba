"""Debian's example mosquitto.conf (issue 13, "Done means"): every directive
of it, uncommented with a value that makes sense, read by `ternd
--test-config` (mosquitto 2.1's flag: read and check, then exit). ternd
only: mosquitto 2.0 has no --test-config."""

import os
import subprocess

import pytest

import mosquitto_example as ex
from conftest import broker_binary

pytestmark = [pytest.mark.ternd_only,
              pytest.mark.skipif(not os.path.exists(ex.EXAMPLE) and
                                 not os.path.exists(ex.EXAMPLE + ".gz"),
                                 reason="Debian's mosquitto (its example config) is missing")]

# What ternd still refuses of the example. It only shrinks: a directive
# ternd takes today that it refuses tomorrow fails the test.
STILL_REFUSED = set()
# Refused by design, with a message that says what to use instead:
# mosquitto's plugins cannot be loaded.
REFUSED_BY_DESIGN = {"auth_plugin"}
STILL_REFUSED |= REFUSED_BY_DESIGN


def test_test_config_says_ok_and_exits(tmp_path):
    """--test-config with a good file: "Configuration file is OK.", exit 0,
    and no broker left running (it returns at once)."""
    conf = tmp_path / "good.conf"
    conf.write_text("listener 1 127.0.0.1\nallow_anonymous true\n")
    cp = subprocess.run([broker_binary(), "--test-config", "-c", str(conf)],
                        capture_output=True, timeout=5, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stderr
    assert b"Configuration file is OK." in cp.stdout


def test_test_config_refuses_a_bad_file_and_needs_one(tmp_path):
    """A bad line: exit 1 naming it; without -c: exit 1, asking for a file."""
    conf = tmp_path / "bad.conf"
    conf.write_text("listener 1 127.0.0.1\nmax_keepalive soon\n")
    cp = subprocess.run([broker_binary(), "--test-config", "-c", str(conf)],
                        capture_output=True, timeout=5, stdin=subprocess.DEVNULL)
    assert cp.returncode == 1
    assert b"bad.conf:2:" in cp.stderr and b"max_keepalive" in cp.stderr, cp.stderr
    cp = subprocess.run([broker_binary(), "--test-config"], capture_output=True, timeout=5,
                        stdin=subprocess.DEVNULL)
    assert cp.returncode == 1
    assert b"-c FILE" in cp.stderr, cp.stderr


def test_test_config_names_every_problem(tmp_path):
    """--test-config reads on past a bad line: every problem of the file,
    and of the files its include_dir reads, each with its file and line,
    then the checks of the whole (a TLS listener without its key), then
    how many; exit 1. A start stops at the first."""
    inc = tmp_path / "conf.d"
    inc.mkdir()
    (inc / "a.conf").write_text("max_queued_messages many\n")
    conf = tmp_path / "bad.conf"
    conf.write_text("listener 1 127.0.0.1\n"
                    "max_keepalive soon\n"
                    "no_such_directive 1\n"
                    "allow_anonymous true\n"
                    f"include_dir {inc}\n"
                    "certfile /x.crt\n"
                    "connect_timeout 0\n")
    cp = subprocess.run([broker_binary(), "--test-config", "-c", str(conf)],
                        capture_output=True, timeout=5, stdin=subprocess.DEVNULL)
    assert cp.returncode == 1
    lines = cp.stderr.decode().strip().split("\n")
    assert len(lines) == 6, lines
    assert lines[0].startswith(f"ternd: {conf}:2: max_keepalive"), lines
    assert lines[1].startswith(f"ternd: {conf}:3: ") and "no_such_directive" in lines[1], lines
    assert lines[2].startswith(f"ternd: {inc}/a.conf:1: max_queued_messages"), lines
    assert lines[3].startswith(f"ternd: {conf}:7: connect_timeout"), lines
    # A check of the whole names the line that opened the listener.
    assert lines[4].startswith(f"ternd: {conf}:1: listener 1: TLS needs both certfile and keyfile"), lines
    assert lines[5] == "ternd: 5 problems in the configuration", lines
    assert b"OK" not in cp.stdout
    cp = subprocess.run([broker_binary(), "-c", str(conf)], capture_output=True, timeout=5,
                        stdin=subprocess.DEVNULL)
    assert cp.returncode == 1
    assert cp.stderr.decode().strip().split("\n") == [lines[0]], cp.stderr


def test_refused_by_design_say_what_to_use_instead(tmp_path):
    """auth_plugin: refused with a message naming what to use."""
    refused = ex.refused_directives(broker_binary(), str(tmp_path))
    assert "password_file" in refused["auth_plugin"], refused


def test_example_directives_refused_only_those_still_to_do(tmp_path):
    """Every directive of the example on its own: refused only if still in
    STILL_REFUSED; and the whole example, less those, is taken at once."""
    names = ex.example_directives()
    assert len(names) >= 88, names
    refused = ex.refused_directives(broker_binary(), str(tmp_path))
    newly = {n: e for n, e in refused.items() if n not in STILL_REFUSED}
    assert not newly, newly
    rc, err = ex.whole_example(broker_binary(), str(tmp_path), leave_out=refused)
    assert rc == 0, err
