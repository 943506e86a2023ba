#!/usr/bin/python3
"""bench/logflood/logflood.py - a flood of denied PUBLISHes and the log.

A client the ACL denies publishing sends N QoS 0 PUBLISHes (default 200,000)
as fast as the socket takes them, then one allowed QoS 1 publish whose PUBACK
ends the measurement (a client's packets are handled in order). The broker
logs to a file (log_dest file). Printed per ternd: denied publishes handled
per second, and the lines the log holds after the broker is stopped. Before
issue 10 (item 6) every denied publish was a line written and flushed on the
worker; now the first line of a burst is written by the log thread, and the
rest are counted in one summary.

Usage: logflood.py --ternd PATH [--ternd PATH ...] [--publishes N] [--runs N]
Each ternd runs with one worker and storage memory on a free 127.0.0.1 port
and is stopped by its PID (SIGTERM).
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "interop"))
import mqtt_raw as m  # noqa: E402

HOST = "127.0.0.1"


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def run_once(ternd, workdir, n):
    port = free_port()
    acl = os.path.join(workdir, "acl")
    with open(acl, "w") as f:
        f.write("topic readwrite open/#\n")
    logfile = os.path.join(workdir, "ternd-%d.log" % port)
    conf = os.path.join(workdir, "ternd-%d.conf" % port)
    with open(conf, "w") as f:
        f.write("listener %d %s\nallow_anonymous true\nworkers 1\nstorage memory\n"
                "acl_file %s\nlog_dest file %s\nlog_type all\n" % (port, HOST, acl, logfile))
    proc = subprocess.Popen([ternd, "-c", conf], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("ternd %s did not start" % ternd)
                time.sleep(0.05)
        c = m.RawClient(HOST, port, version=m.V311, timeout=120)
        c.connect("denied-%d" % port)
        data = m.publish("closed/x", b"x", 0) * n
        t0 = time.monotonic()
        c.sock.sendall(data)
        c.publish("open/x", b"x", qos=1, pid=1)
        rate = n / (time.monotonic() - t0)
        c.disconnect()
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with open(logfile) as f:
        lines = sum(1 for _ in f)
    return rate, lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ternd", action="append", required=True)
    ap.add_argument("--publishes", type=int, default=200000)
    ap.add_argument("--runs", type=int, default=3, help="samples per figure (median)")
    a = ap.parse_args()
    print("logflood: %d denied QoS 0 PUBLISHes from one client, log_dest file" % a.publishes)
    print("%-40s %14s %12s" % ("ternd", "denied pub/s", "log lines"))
    with tempfile.TemporaryDirectory() as tmp:
        for ternd in a.ternd:
            samples = [run_once(ternd, tmp, a.publishes) for _ in range(a.runs)]
            print("%-40s %14.0f %12d" % (ternd[-40:], statistics.median(r for r, _ in samples),
                                         max(l for _, l in samples)))


if __name__ == "__main__":
    main()
