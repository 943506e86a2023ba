"""Bridge TLS (issue 13): bridge_cafile / bridge_capath / bridge_certfile /
bridge_keyfile / bridge_insecure against a TLS Debian mosquitto that
requires a client certificate, and bridge_tls_version / bridge_alpn against
a TLS socket of the test's own (Python's ssl) that says what the handshake
agreed. Certificates: a throw-away CA made with openssl per module."""

import os
import shutil
import ssl
import types

import pytest

from bridge_peer import HOST, ConnectCatcher, Remote
from conftest import MOSQUITTO_BIN, Broker, free_port
from helpers import PahoClient, read_log, unique, wait_for
from test_tls import make_ca, make_cert, openssl

pytestmark = pytest.mark.skipif(not os.path.exists(MOSQUITTO_BIN),
                                reason="needs Debian's mosquitto as the remote broker")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("bpki"))
    make_ca(d, "ca")
    make_ca(d, "otherca")
    make_cert(d, "ca", "server", "localhost", server=True)
    make_cert(d, "ca", "bridge", "bridge")
    # A server certificate that names another host only.
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "wrongname.key", "-out",
            "wrongname.csr", "-subj", "/CN=elsewhere.example", cwd=d)
    with open(os.path.join(d, "wrongname.ext"), "w") as f:
        f.write("subjectAltName=DNS:elsewhere.example\n")
    openssl("x509", "-req", "-in", "wrongname.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", "wrongname.crt", "-extfile",
            "wrongname.ext", cwd=d)
    # A CA directory for bridge_capath (openssl rehash names the links).
    capath = os.path.join(d, "capath")
    os.mkdir(capath)
    shutil.copy(os.path.join(d, "ca.crt"), capath)
    openssl("rehash", capath, cwd=d)
    for n in os.listdir(d):
        os.chmod(os.path.join(d, n), 0o755 if n == "capath" else 0o644)
    return lambda n: os.path.join(d, n)


def tls_remote(tmp_path, pki, server="server"):
    """mosquitto with a TLS listener that requires a client certificate (the
    bridge's address), and a plain one for the test's clients (.plain)."""
    plain = free_port()
    r = Remote(tmp_path, ["cafile " + pki("ca.crt"), "certfile " + pki(server + ".crt"),
                          "keyfile " + pki(server + ".key"), "require_certificate true",
                          "listener %d %s" % (plain, HOST)])
    r.start()
    r.plain = types.SimpleNamespace(host=HOST, port=plain)
    return r


def local_with(tmp_path, remote, extra):
    d = tmp_path / ("local-" + unique("l"))
    d.mkdir()
    lines = ["connection tb", "address %s:%d" % (HOST, remote.port), "restart_timeout 1",
             "keepalive_interval 5", "remote_clientid tlsbr", "topic probe/# both 1"]
    b = Broker(d, 1, lines + list(extra))
    b.start()
    return b


def bridge_up(remote):
    def up():
        with open(remote.log, errors="replace") as f:
            return "New bridge connected" in f.read()
    return wait_for(up, 10)


@pytest.mark.parametrize("trust", ["cafile", "capath"])
def test_bridge_over_tls_with_a_client_certificate(tmp_path, pki, trust):
    """bridge_cafile (or bridge_capath) and bridge_certfile / bridge_keyfile:
    the bridge connects over TLS to a mosquitto that requires a
    certificate, and messages cross both ways."""
    r = tls_remote(tmp_path, pki)
    ca = ["bridge_cafile " + pki("ca.crt")] if trust == "cafile" else \
        ["bridge_capath " + pki("capath")]
    local = local_with(tmp_path, r, ca + ["bridge_certfile " + pki("bridge.crt"),
                                          "bridge_keyfile " + pki("bridge.key")])
    try:
        assert bridge_up(r), read_log(local)[-2000:]
        rsub = PahoClient(r.plain)
        rsub.subscribe("probe/#", 1)
        lsub = PahoClient(local)
        lsub.subscribe("probe/#", 1)
        lpub = PahoClient(local)

        def crossed():
            lpub.publish("probe/out", b"over-tls", 1)
            return any(m.payload == b"over-tls" for m in rsub.drain(0.3))
        assert wait_for(crossed, 10)
        PahoClient(r.plain).publish("probe/in", b"back", 1)
        assert any(m.payload == b"back" for m in lsub.drain(3.0))
    finally:
        local.stop()
        r.stop()


def test_wrong_ca_is_refused_and_logged(tmp_path, pki):
    """A remote certificate from a CA not in bridge_cafile: no connection,
    and ternd's log says why."""
    r = tls_remote(tmp_path, pki)
    local = local_with(tmp_path, r, ["bridge_cafile " + pki("otherca.crt"),
                                     "bridge_certfile " + pki("bridge.crt"),
                                     "bridge_keyfile " + pki("bridge.key")])
    try:
        assert wait_for(lambda: "certificate verification failed" in read_log(local) and
                        "Bridge tb: connection to" in read_log(local), 10), read_log(local)
        with open(r.log, errors="replace") as f:
            assert "New bridge connected" not in f.read()
    finally:
        local.stop()
        r.stop()


@pytest.mark.parametrize("insecure", [False, True])
def test_insecure_skips_the_name_check_only(tmp_path, pki, insecure):
    """A remote certificate from the right CA that names another host:
    refused (the name check), unless bridge_insecure true."""
    r = tls_remote(tmp_path, pki, server="wrongname")
    extra = ["bridge_cafile " + pki("ca.crt"), "bridge_certfile " + pki("bridge.crt"),
             "bridge_keyfile " + pki("bridge.key")]
    if insecure:
        extra.append("bridge_insecure true")
    local = local_with(tmp_path, r, extra)
    try:
        if insecure:
            assert bridge_up(r), read_log(local)[-2000:]
        else:
            assert wait_for(lambda: "Bridge tb: connection to" in read_log(local), 10)
            assert "hostname mismatch" in read_log(local) or \
                "certificate verification failed" in read_log(local), read_log(local)
            with open(r.log, errors="replace") as f:
                assert "New bridge connected" not in f.read()
    finally:
        local.stop()
        r.stop()


def server_context(pki, max_version=None, alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki("server.crt"), pki("server.key"))
    if max_version is not None:
        ctx.maximum_version = max_version
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


@pytest.mark.ternd_only  # what mosquitto's bridge offers is checked on ternd
def test_alpn_is_offered(tmp_path, pki):
    """bridge_alpn mqtt: the handshake offers it (the server selects it)."""
    cat = ConnectCatcher(tls=server_context(pki, alpn=["mqtt", "http/1.1"]))
    local = None
    try:
        local = local_with(tmp_path, cat, ["bridge_cafile " + pki("ca.crt"),
                                           "bridge_alpn mqtt",
                                           "bridge_protocol_version mqttv50"])
        assert wait_for(lambda: cat.connect is not None, 10), cat.error
        assert cat.alpn == "mqtt"
    finally:
        # The broker this test started, by its PID (it was left running).
        if local is not None:
            local.stop()
        cat.close()


@pytest.mark.ternd_only
@pytest.mark.parametrize("version,ok", [("tlsv1.2", True), ("tlsv1.3", False)])
def test_tls_version_is_the_lowest_offered(tmp_path, pki, version, ok):
    """bridge_tls_version tlsv1.3 against a server that speaks TLS 1.2 at
    most: the handshake fails; tlsv1.2 (the default) connects."""
    cat = ConnectCatcher(tls=server_context(pki, max_version=ssl.TLSVersion.TLSv1_2))
    try:
        local = local_with(tmp_path, cat, ["bridge_cafile " + pki("ca.crt"),
                                           "bridge_tls_version " + version,
                                           "bridge_protocol_version mqttv50"])
        if ok:
            assert wait_for(lambda: cat.connect is not None, 10), cat.error
            assert cat.tls_version == "TLSv1.2"
        else:
            assert wait_for(lambda: cat.error is not None, 10)
            assert cat.connect is None
            assert wait_for(lambda: "Bridge tb: connection to" in read_log(local), 10)
        local.stop()
    finally:
        cat.close()


@pytest.mark.ternd_only  # mosquitto 2.1's directive
def test_tls_use_os_certs_alone_turns_tls_on(tmp_path, pki):
    """bridge_tls_use_os_certs true alone (mosquitto 2.1's): TLS with the
    system's CAs only, so a remote whose certificate comes from the test's
    own CA is refused, and the log says why; the same bridge given that CA
    too (bridge_cafile) connects."""
    r = tls_remote(tmp_path, pki)
    local = local_with(tmp_path, r, ["bridge_tls_use_os_certs true",
                                     "bridge_certfile " + pki("bridge.crt"),
                                     "bridge_keyfile " + pki("bridge.key")])
    try:
        assert wait_for(lambda: "certificate verification failed" in read_log(local), 10), \
            read_log(local)[-1500:]
    finally:
        local.stop()
    local = local_with(tmp_path, r, ["bridge_tls_use_os_certs true",
                                     "bridge_cafile " + pki("ca.crt"),
                                     "bridge_certfile " + pki("bridge.crt"),
                                     "bridge_keyfile " + pki("bridge.key")])
    try:
        assert bridge_up(r), read_log(local)[-1500:]
    finally:
        local.stop()
        r.stop()
