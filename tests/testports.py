"""Loopback TCP ports for the tests' brokers, nats-servers and databases.

bind(("127.0.0.1", 0)) and close is not enough: the kernel may hand the
port it just gave out to the next such call (seen: a mosquitto given the
same port for its two listeners), another test process that ctest runs in
parallel may be handed it too, and a port from the ephemeral range can be
taken meanwhile as the source port of any outgoing connection, which makes a
listener's later bind fail. So a port is

  * drawn below the kernel's ephemeral range (no connection takes it as a
    source port),
  * free at the time of the call (a bind with SO_REUSEADDR, as servers do,
    succeeds),
  * never handed out twice by this process, and
  * held by an flock on a file under $TMPDIR/tern-test-ports for the life of
    this process, so that no other test process takes it (the kernel drops
    the lock when the process ends, however it ends).

Standard library only: the interop suite (conftest.py), the install tests and
shell scripts (`python3 testports.py` prints one port, unheld once it exits)
use it.
"""

import fcntl
import os
import random
import socket
import tempfile

HOST = "127.0.0.1"
LOCK_DIR = os.path.join(tempfile.gettempdir(), "tern-test-ports")
LOW = 10000

# port -> the fd of its lock file, kept open for the life of the process.
_held = {}


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sk:
        sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sk.bind((HOST, port))
        except OSError:
            return False
    return True


def _lock(port):
    os.makedirs(LOCK_DIR, mode=0o1777, exist_ok=True)
    fd = os.open(os.path.join(LOCK_DIR, "%d.lock" % port), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def free_port():
    high = _ephemeral_low() - 1
    if high <= LOW:
        raise RuntimeError("no port range below the ephemeral one (%d)" % (high + 1))
    for _attempt in range(1000):
        port = random.randint(LOW, high)
        if port in _held or not _bindable(port):
            continue
        fd = _lock(port)
        if fd is None:
            continue
        _held[port] = fd
        return port
    raise RuntimeError("no free loopback port in %d-%d after 1000 tries" % (LOW, high))


if __name__ == "__main__":
    print(free_port())
