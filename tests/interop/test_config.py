"""ternd configuration errors (DESIGN.md: a directive we do not support is an
error that names it, never silently ignored). ternd only."""

import os
import subprocess

import pytest

from conftest import broker_binary, free_port

pytestmark = pytest.mark.ternd_only


def run_ternd(tmp_path, text):
    conf = os.path.join(str(tmp_path), "bad.conf")
    with open(conf, "w") as f:
        f.write(text)
    try:
        cp = subprocess.run([broker_binary(), "-c", conf], capture_output=True,
                            timeout=5, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("ternd kept running with a bad config file")
    return conf, cp


def test_unknown_directive_exits_non_zero_naming_file_line_and_directive(tmp_path):
    """An unknown directive makes ternd exit non-zero; stderr names the file,
    the line number and the directive."""
    port = free_port()
    conf, cp = run_ternd(tmp_path, "# comment\nlistener %d 127.0.0.1\nworkers 1\n"
                                   "frobnicate_widgets 42\n" % port)
    err = cp.stderr.decode("utf-8", "replace")
    assert cp.returncode != 0
    assert conf in err or os.path.basename(conf) in err, err
    assert "4" in err and "frobnicate_widgets" in err, err


def test_bad_value_exits_non_zero_naming_the_line(tmp_path):
    """A known directive with an invalid value (workers abc) is an error too,
    reported with the file and line."""
    port = free_port()
    conf, cp = run_ternd(tmp_path, "listener %d 127.0.0.1\nworkers abc\n" % port)
    err = cp.stderr.decode("utf-8", "replace")
    assert cp.returncode != 0
    assert os.path.basename(conf) in err and "2" in err and "workers" in err, err


def test_missing_config_file_exits_non_zero(tmp_path):
    """A config path that does not exist is an error naming it."""
    missing = os.path.join(str(tmp_path), "nope.conf")
    cp = subprocess.run([broker_binary(), "-c", missing], capture_output=True, timeout=5,
                        stdin=subprocess.DEVNULL)
    assert cp.returncode != 0
    assert "nope.conf" in cp.stderr.decode("utf-8", "replace")
