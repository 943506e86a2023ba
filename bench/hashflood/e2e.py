#!/usr/bin/python3
"""bench/hashflood/e2e.py - hash flooding through a real ternd.

Crafted: one client subscribes to 20,000 filters "flood/<name>" whose level
names were crafted (by `hashflood --names`) to collide under the unkeyed
FNV-1a hash tern used before issue 10; a publisher then sends QoS 0 messages
to "flood/<other crafted name>" topics that nobody subscribed to. Random: the
same with random names, on a fresh broker. Each publish costs the broker one
lookup among the 20,000 children of "flood", and a lookup of an absent key
walks the whole probe chain its bucket belongs to. Printed per broker: the
time to subscribe, publishes/s for crafted and random names, and the
slowdown (random rate / crafted rate). With the keyed hash it is about 1.

Usage: e2e.py --hashflood PATH --ternd PATH [--ternd PATH ...]
       [--subs N] [--publishes N] [--runs N]
Each ternd runs with one worker, storage memory and no log, on a free
127.0.0.1 port, and is stopped by its PID.
"""

import argparse
import os
import random
import statistics
import socket
import string
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


def start(ternd, workdir):
    port = free_port()
    conf = os.path.join(workdir, "ternd-%d.conf" % port)
    with open(conf, "w") as f:
        f.write("listener %d %s\nallow_anonymous true\nworkers 1\n"
                "storage memory\nlog_dest none\n" % (port, HOST))
    proc = subprocess.Popen([ternd, "-c", conf], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise SystemExit("ternd %s did not start" % ternd)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def subscribe_all(port, names):
    c = m.RawClient(HOST, port, version=m.V311, timeout=120)
    c.connect("flood-sub")
    t0 = time.monotonic()
    batch = 1000
    for i in range(0, len(names), batch):
        filters = [("flood/" + n, 0) for n in names[i:i + batch]]
        c.subscribe(filters, pid=i // batch + 1)
    return c, time.monotonic() - t0


def publish_rate(port, topics, count):
    """Publishes/s for `count` QoS 0 publishes cycling over topics, measured
    up to the PUBACK of a QoS 1 publish sent after them (the broker handles
    a client's packets in order)."""
    c = m.RawClient(HOST, port, version=m.V311, timeout=120)
    c.connect("flood-pub-%d" % time.monotonic_ns())
    data = b"".join(m.publish("flood/" + topics[i % len(topics)], b"x", 0)
                    for i in range(count))
    t0 = time.monotonic()
    c.sock.sendall(data)
    c.publish("flood/done", b"x", qos=1, pid=1)
    el = time.monotonic() - t0
    c.disconnect()
    return count / el


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hashflood", required=True)
    ap.add_argument("--ternd", action="append", required=True)
    ap.add_argument("--subs", type=int, default=20000)
    ap.add_argument("--publishes", type=int, default=50000)
    ap.add_argument("--runs", type=int, default=3, help="samples per figure (median)")
    a = ap.parse_args()
    extra = 1000
    out = subprocess.run([a.hashflood, "--names", str(a.subs), str(extra)],
                         check=True, capture_output=True, text=True).stdout.split()
    crafted_subs, crafted_pub = out[:a.subs], out[a.subs:]
    rnd = random.Random(1)
    alnum = string.ascii_letters + string.digits
    random_pub = ["r" + "".join(rnd.choice(alnum) for _ in range(11)) for _ in range(extra)]
    print("e2e: %d subscriptions to crafted flood/<name>, %d QoS 0 publishes to"
          " unsubscribed names" % (a.subs, a.publishes))
    print("%-40s %11s %14s %14s %8s" % ("ternd", "sub s c/r", "crafted pub/s", "random pub/s",
                                       "slowdown"))
    random_subs = ["r" + "".join(rnd.choice(alnum) for _ in range(11)) for _ in range(a.subs)]
    with tempfile.TemporaryDirectory() as tmp:
        for ternd in a.ternd:
            rates, times = [], []
            for subs, pubs in ((crafted_subs, crafted_pub), (random_subs, random_pub)):
                # A fresh broker per set: a crafted cluster in the table
                # would slow the random lookups too.
                proc, port = start(ternd, tmp)
                try:
                    sub, sub_s = subscribe_all(port, subs)
                    rates.append(statistics.median(
                        publish_rate(port, pubs, a.publishes) for _ in range(a.runs)))
                    times.append(sub_s)
                    sub.disconnect()
                finally:
                    stop(proc)
            print("%-40s %5.2f/%-5.2f %14.0f %14.0f %7.1fx" % (
                ternd[-40:], times[0], times[1], rates[0], rates[1], rates[1] / rates[0]))

if __name__ == "__main__":
    main()
