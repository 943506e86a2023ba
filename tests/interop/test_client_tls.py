"""libtern over TLS, through `tern pub`, `tern sub` and `tern bench`, against
BOTH ternd and Debian's mosquitto with TLS listeners.

The client side of issue 5's TLS section: mosquitto's flags --cafile,
--capath, --cert, --key, --insecure and --tls-use-os-certs. Each broker
runs three TLS listeners, made from a throw-away PKI (test_tls.py's
make_ca / make_cert, with the openssl command):

  * `good`: a certificate for IP 127.0.0.1 and DNS localhost, from `ca`;
  * `other`: a certificate for other.example only, from `ca` (so connecting
    to 127.0.0.1 is a name mismatch, which --insecure lets through);
  * `mtls`: like good, with require_certificate true (clients need a
    certificate from `ca`).

Environment: TERN_CLI (the tern binary) and TERND (ternd), as for
test_tern_tools.py, whose Server class starts the brokers.
"""

import json
import os
import subprocess
import time

import pytest

from conftest import free_port, tail, wait_port
from test_tern_tools import Server, tern_binary
from test_tls import make_ca, make_cert, openssl

HOST = "127.0.0.1"
TIMEOUT = 10


def make_named_cert(d, ca, name, dns):
    """A server certificate from ca that names only the DNS name dns."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
            "-out", name + ".csr", "-subj", "/CN=" + dns, cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=DNS:%s\n" % dns)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
            "-CAcreateserial", "-days", "2", "-out", name + ".crt",
            "-extfile", name + ".ext", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    make_ca(d, "ca")
    make_ca(d, "otherca")
    make_cert(d, "ca", "server", "localhost", server=True)
    make_named_cert(d, "ca", "other", "other.example")
    make_cert(d, "ca", "alice", "alice")
    for f in os.listdir(d):  # mosquitto may read its key as another user
        os.chmod(os.path.join(d, f), 0o644)
    return lambda n: os.path.join(d, n)


@pytest.fixture(scope="module", params=["ternd", "mosquitto"])
def tb(request, tmp_path_factory, pki):
    """A broker of each kind with the three TLS listeners; tb.ports maps
    good / other / mtls to their ports."""
    ports = {"good": free_port(), "other": free_port(), "mtls": free_port()}
    extra = []
    for name, cert, more in (("good", "server", []), ("other", "other", []),
                             ("mtls", "server", ["require_certificate true"])):
        extra += ["listener %d %s" % (ports[name], HOST),
                  "certfile " + pki(cert + ".crt"), "keyfile " + pki(cert + ".key"),
                  "cafile " + pki("ca.crt")] + more
    s = Server(request.param, tmp_path_factory.mktemp(request.param + "-tls"), extra).start()
    for p in ports.values():
        assert wait_port(p, s.proc), tail(s.log)
    s.ports = ports
    yield s
    died = not s.alive()
    s.stop()
    if died:
        pytest.fail("%s exited during the tests:\n%s" % (s.kind, tail(s.log)))


_n = [0]


def topic():
    _n[0] += 1
    return "ctls/%d/%d" % (os.getpid(), _n[0])


def tern(args, timeout=TIMEOUT):
    return subprocess.run([tern_binary()] + list(args), capture_output=True, timeout=timeout)


def tls_args(tb, listener="good", cafile="ca.crt", cert=None, host=HOST, pki=None):
    a = ["-h", host, "-p", str(tb.ports[listener]), "--cafile", pki(cafile)]
    if cert:
        a += ["--cert", pki(cert + ".crt"), "--key", pki(cert + ".key")]
    return a


def start_sub(args):
    """`tern sub -d ...`, returned once its SUBACK has arrived."""
    p = subprocess.Popen([tern_binary(), "sub", "-d"] + args, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    head = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        head.append(line)
        if line.startswith(b"Subscribed:"):
            return p
    p.kill()
    out, err = p.communicate()
    raise AssertionError("tern sub did not subscribe: %r %r" % (b"".join(head) + err, out))


def finish(p):
    try:
        out, err = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("tern sub did not finish: %r %r" % (out, err))
    return p.returncode, out, err


def round_trip(tb, pki, listener="good", cert=None, extra=()):
    t = topic()
    args = tls_args(tb, listener, cert=cert, pki=pki) + list(extra)
    sub = start_sub(args + ["-t", t, "-q", "1", "-C", "1", "-v"])
    cp = tern(["pub"] + args + ["-t", t, "-q", "1", "-m", "over tls"])
    assert cp.returncode == 0, cp
    rc, out, err = finish(sub)
    assert rc == 0 and out == (t + " over tls\n").encode(), (rc, out, err)


def test_pub_sub_round_trip_qos1_with_cafile(tb, pki):
    """--cafile turns TLS on; the broker's chain and its name (IP 127.0.0.1)
    are verified, and a QoS 1 message goes from tern pub to tern sub."""
    round_trip(tb, pki)


def test_server_name_checked_as_dns_name(tb, pki):
    """-h localhost: the name is checked against the certificate's DNS entry
    (and sent as SNI)."""
    cp = tern(["pub"] + tls_args(tb, host="localhost", pki=pki) + ["-t", topic(), "-m", "x"])
    assert cp.returncode == 0, cp


def test_mqtts_url(tb, pki):
    """-L mqtts://host:port/topic means TLS, as in mosquitto_pub."""
    url = "mqtts://%s:%d/%s" % (HOST, tb.ports["good"], topic())
    cp = tern(["pub", "-L", url, "--cafile", pki("ca.crt"), "-m", "x", "-q", "1"])
    assert cp.returncode == 0, cp


def test_wrong_ca_fails_verification(tb, pki):
    """A CA that did not sign the broker's certificate: the handshake fails,
    the exit status is non-zero and the message says verification failed."""
    cp = tern(["pub"] + tls_args(tb, cafile="otherca.crt", pki=pki) + ["-t", topic(), "-m", "x"])
    assert cp.returncode != 0, cp
    assert b"verification failed" in cp.stderr, cp.stderr


def test_hostname_mismatch_fails_unless_insecure(tb, pki):
    """A certificate for other.example, reached as 127.0.0.1: refused for the
    name, accepted with --insecure (which skips only the name check)."""
    args = tls_args(tb, "other", pki=pki) + ["-t", topic(), "-m", "x", "-q", "1"]
    cp = tern(["pub"] + args)
    assert cp.returncode != 0, cp
    assert b"mismatch" in cp.stderr, cp.stderr
    cp = tern(["pub", "--insecure"] + args)
    assert cp.returncode == 0, cp
    # --insecure does not skip the chain: a wrong CA still fails.
    cp = tern(["pub", "--insecure"] + tls_args(tb, "other", cafile="otherca.crt", pki=pki) +
              ["-t", topic(), "-m", "x"])
    assert cp.returncode != 0 and b"verification failed" in cp.stderr, cp


def test_client_certificate_required(tb, pki):
    """require_certificate true: --cert/--key from the broker's CA gets in
    (a full round trip); without them the connection fails."""
    round_trip(tb, pki, "mtls", cert="alice")
    cp = tern(["pub"] + tls_args(tb, "mtls", pki=pki) + ["-t", topic(), "-m", "x"])
    assert cp.returncode != 0, cp
    assert b"Error" in cp.stderr, cp.stderr


def test_plain_port_is_not_tls(tb, pki):
    """TLS to a plain MQTT listener fails with a message, not a hang."""
    cp = tern(["pub", "-h", HOST, "-p", str(tb.port), "--cafile", pki("ca.crt"),
               "-t", topic(), "-m", "x"])
    assert cp.returncode != 0, cp
    assert b"TLS" in cp.stderr, cp.stderr


def test_bench_run_over_tls(tb, pki):
    """tern bench run with a few TLS clients on two threads: every QoS 1
    message arrives, nothing is lost."""
    cp = tern(["bench", "run"] + tls_args(tb, pki=pki) +
              ["--pubs", "3", "--subs", "3", "-q", "1", "-C", "300", "-n", "2",
               "-t", topic() + "/%i", "-f", "ctls/%d/+/+" % os.getpid(), "--json", "--quiet"],
              timeout=30)
    assert cp.returncode == 0, cp
    r = json.loads(cp.stdout)
    assert r["connected"] == 6 and r["connect_failed"] == 0, r
    assert r["lost_connections"] == 0 and r["errors"] == 0, r
    assert r["received"] == 3 * 3 * 300 and r["lost"] == 0, r


def test_default_port_with_tls_is_8883(pki):
    """No -p with TLS options: the port is 8883, as in mosquitto_pub (shown
    by the error message; nothing of ours listens there)."""
    cp = tern(["pub", "-h", HOST, "--cafile", pki("ca.crt"), "-t", "x", "-m", "x"])
    if cp.returncode != 0:
        assert b"port 8883" in cp.stderr, cp.stderr
