"""TLS listeners: mosquitto's directives (certfile, keyfile, cafile,
require_certificate, use_identity_as_username, tls_version), checked with
independent TLS clients: paho-mqtt (Python's ssl), mosquitto_pub/sub
(OpenSSL) and Python's ssl module directly.

A throw-away CA, server and client certificates are made with the openssl
command for each test module; nothing is committed.
"""

import os
import socket
import ssl
import subprocess
import time

import paho.mqtt.client as mqtt
import pytest

import mqtt_raw as m
from helpers import read_log, wait_log
from conftest import MOSQUITTO, Broker, WORKER_COUNTS, free_port, wait_port, tail

pytestmark = pytest.mark.ternd_only




def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", name + ".key", "-out", name + ".crt", "-subj", "/CN=" + name, cwd=d)


def make_cert(d, ca, name, cn, server=False):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key",
            "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        if server:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        else:
            f.write("extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
            "-CAcreateserial", "-days", "2", "-out", name + ".crt", "-extfile", ext, cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    make_ca(d, "ca")
    make_ca(d, "otherca")
    make_cert(d, "ca", "server", "localhost", server=True)
    make_cert(d, "ca", "alice", "alice")
    make_cert(d, "otherca", "mallory", "mallory")
    return lambda n: os.path.join(d, n)


@pytest.fixture(params=WORKER_COUNTS, ids=["w%d" % w for w in WORKER_COUNTS])
def tls_broker(request, tmp_path, pki):
    """A broker with a TLS listener (and require_certificate when the test
    is marked so)."""
    marker = request.node.get_closest_marker("broker_config")
    extra = list(marker.args) if marker else []
    b = Broker(tmp_path, request.param, [])
    b.tls_port = free_port()
    b.extra = ["listener %d 127.0.0.1" % b.tls_port,
               "certfile " + pki("server.crt"), "keyfile " + pki("server.key"),
               "cafile " + pki("ca.crt")] + extra
    request.node._tern_broker_log = b.log
    b.start()
    assert wait_port(b.tls_port, b.proc)
    yield b
    died = not b.alive()
    b.stop()
    if died:
        pytest.fail("broker exited during the test:\n" + tail(b.log), pytrace=False)


def tls_socket(port, pki, cert=None, cafile="ca.crt"):
    ctx = ssl.create_default_context(cafile=pki(cafile))
    if cert:
        ctx.load_cert_chain(pki(cert + ".crt"), pki(cert + ".key"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def mqtt_over(sock, client_id, version=m.V311):
    """CONNECT over an established socket; returns the CONNACK return code,
    or None when the broker closed the connection instead."""
    sock.sendall(m.connect(client_id, version=version))
    data = b""
    try:
        while len(data) < 4:
            chunk = sock.recv(16)
            if not chunk:
                return None
            data += chunk
    except (ssl.SSLError, ConnectionError):
        return None
    assert data[0] == 0x20
    return data[3]


def test_tls_client_connects_and_exchanges_messages(tls_broker, pki):
    """A client that trusts our CA connects over TLS, and messages flow
    between TLS and plain TCP clients of the same broker."""
    got = []
    sub = mqtt.Client(client_id="tls-sub")
    sub.tls_set(ca_certs=pki("ca.crt"))
    sub.on_message = lambda c, u, msg: got.append(msg.payload)
    sub.connect("127.0.0.1", tls_broker.tls_port)
    sub.loop_start()
    try:
        r, _ = sub.subscribe("tls/t", 1)
        time.sleep(0.3)
        plain = tls_broker.raw(m.V311)
        plain.connect("plain-pub")
        plain.publish("tls/t", b"over tls", qos=1)
        deadline = time.time() + 5
        while not got and time.time() < deadline:
            time.sleep(0.05)
        assert got == [b"over tls"]
        plain.disconnect()
    finally:
        sub.disconnect()
        sub.loop_stop()


def test_mosquitto_clients_over_tls(tls_broker, pki):
    """mosquitto_sub / mosquitto_pub (OpenSSL) with --cafile."""
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(tls_broker.tls_port),
                            "--cafile", pki("ca.crt"), "-t", "tls/m", "-C", "1", "-W", "8"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.7)
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(tls_broker.tls_port),
                        "--cafile", pki("ca.crt"), "-t", "tls/m", "-m", "hello", "-q", "1"],
                       check=True, timeout=10)
        out, err = sub.communicate(timeout=10)
    finally:
        if sub.poll() is None:
            sub.kill()
    assert out.strip() == b"hello", err


def test_wrong_ca_is_refused(tls_broker, pki):
    """A client that does not trust the server's CA fails the handshake;
    the broker goes on serving others."""
    with pytest.raises(ssl.SSLError):
        tls_socket(tls_broker.tls_port, pki, cafile="otherca.crt")
    s = tls_socket(tls_broker.tls_port, pki)
    assert mqtt_over(s, "after-bad") == 0
    s.close()


def test_plain_mqtt_on_a_tls_port_is_dropped(tls_broker):
    """Bytes that are not a TLS handshake end the connection, not the
    broker."""
    s = socket.create_connection(("127.0.0.1", tls_broker.tls_port), timeout=5)
    s.sendall(m.connect("plain-on-tls"))
    s.settimeout(5)
    try:
        data = s.recv(64)
    except ConnectionError:
        data = b""
    assert not data.startswith(b"\x20"), "CONNACK over a TLS port without TLS"
    s.close()
    assert tls_broker.alive()


@pytest.mark.broker_config("require_certificate true")
def test_require_certificate_refuses_clients_without_one(tls_broker, pki):
    """require_certificate true: a client without a certificate, or with one
    from another CA, is refused; one signed by our CA gets in."""
    s = None
    try:
        s = tls_socket(tls_broker.tls_port, pki)
        assert mqtt_over(s, "nocert") is None
    except (ssl.SSLError, ConnectionError):
        pass
    finally:
        if s:
            s.close()
    try:
        s = tls_socket(tls_broker.tls_port, pki, cert="mallory")
        assert mqtt_over(s, "mallory") is None
    except (ssl.SSLError, ConnectionError):
        pass
    s = tls_socket(tls_broker.tls_port, pki, cert="alice")
    assert mqtt_over(s, "alice") == 0
    s.close()


@pytest.mark.broker_config("require_certificate true", "use_identity_as_username true",
                           "allow_anonymous false")
def test_certificate_identity_becomes_the_username(tls_broker, pki):
    """use_identity_as_username: the certificate's CN is the client's
    username, so with allow_anonymous false a client with a certificate and
    no username gets in, and the broker logs it under that name."""
    s = tls_socket(tls_broker.tls_port, pki, cert="alice")
    assert mqtt_over(s, "id-client") == 0
    s.close()
    # The log writer thread may write the line after the CONNACK: wait.
    assert wait_log(tls_broker, "as id-client (p4, c1, k60, u'alice')"), read_log(tls_broker)


@pytest.mark.broker_config("require_certificate true", "use_identity_as_username true",
                           "allow_anonymous false")
@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_resumed_session_on_a_verifying_listener(tls_broker, pki, version):
    """A client that resumes its TLS session (RFC 8446 2.2, RFC 5077) on a
    listener with require_certificate gets in again, under the identity of
    the certificate it first showed. Without a session id context OpenSSL
    failed every such handshake ("session id context uninitialized"),
    found by fuzz_tls."""
    ctx = ssl.create_default_context(cafile=pki("ca.crt"))
    ctx.load_cert_chain(pki("alice.crt"), pki("alice.key"))
    ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version)
    session = None
    for attempt in range(2):
        raw = socket.create_connection(("127.0.0.1", tls_broker.tls_port), timeout=5)
        s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
        # The CONNACK is read before the session is taken: a TLS 1.3
        # server sends its tickets after the handshake.
        assert mqtt_over(s, "resume-%d" % attempt) == 0
        assert s.session_reused == (attempt == 1)
        session = s.session
        s.close()
    # The log writer thread may write the line after the CONNACK: wait.
    assert wait_log(tls_broker, "as resume-1 (p4, c1, k60, u'alice')"), read_log(tls_broker)


def test_config_errors_name_the_problem(tmp_path, pki):
    """A TLS listener without keyfile, or with a certfile that does not
    exist, stops ternd with a message naming it."""
    if not os.environ.get("TERND"):
        pytest.skip("TERND not set")
    cases = {
        "nokey": ["listener %d 127.0.0.1" % free_port(), "certfile " + pki("server.crt")],
        "missing": ["listener %d 127.0.0.1" % free_port(), "certfile /nonexistent.crt",
                    "keyfile " + pki("server.key")],
    }
    for name, lines in cases.items():
        conf = tmp_path / (name + ".conf")
        conf.write_text("\n".join(lines + ["storage memory"]) + "\n")
        r = subprocess.run([os.environ["TERND"], "-c", str(conf)], capture_output=True,
                           timeout=10, stdin=subprocess.DEVNULL)
        out = (r.stdout + r.stderr).decode()
        assert r.returncode != 0, out
        assert ("keyfile" in out) if name == "nokey" else ("certfile" in out), out


def revoke(d, ca, name):
    """A CRL of ca in d/crl.pem that revokes d/name.crt (openssl ca, with a
    throw-away database)."""
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\ncrlnumber=crlnumber\n"
                "default_md=sha256\ndefault_crl_days=2\n")
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "crlnumber"), "w") as f:
        f.write("01\n")
    base = ["ca", "-config", "ca.cnf", "-keyfile", ca + ".key", "-cert", ca + ".crt"]
    openssl(*base, "-revoke", name + ".crt", cwd=d)
    openssl(*base, "-gencrl", "-out", "crl.pem", cwd=d)
    return os.path.join(d, "crl.pem")


def start_tls(tmp_path, pki, lines, workers=1):
    """A broker with a TLS listener (certfile, keyfile, cafile) and lines."""
    b = Broker(tmp_path, workers, [])
    b.tls_port = free_port()
    b.extra = ["listener %d 127.0.0.1" % b.tls_port, "certfile " + pki("server.crt"),
               "keyfile " + pki("server.key"), "cafile " + pki("ca.crt")] + lines
    b.start()
    assert wait_port(b.tls_port, b.proc)
    return b


def test_use_identity_as_username_without_require_certificate(tmp_path, pki):
    """use_identity_as_username without require_certificate (mosquitto
    accepts the configuration): a client that shows a certificate of the CA
    gets in under its CN; one without a certificate is not authorized
    (CONNACK 5; mosquitto 2.0 answers 4, and refuses certificates too, as it
    does not ask for them); one with a certificate of another CA fails the
    handshake."""
    b = start_tls(tmp_path, pki, ["use_identity_as_username true", "allow_anonymous false"])
    try:
        s = tls_socket(b.tls_port, pki, cert="alice")
        assert mqtt_over(s, "id-opt") == 0
        s.close()
        assert wait_log(b, "as id-opt (p4, c1, k60, u'alice')"), read_log(b)
        s = tls_socket(b.tls_port, pki)
        assert mqtt_over(s, "no-cert") == 5
        s.close()
        if not MOSQUITTO:
            # v5: bad username or password (0x86), as mosquitto answers
            # a client without a certificate there.
            s = tls_socket(b.tls_port, pki)
            assert mqtt_over(s, "no-cert5", version=m.V5) == 0x86
            s.close()
        with pytest.raises((ssl.SSLError, ConnectionError)):
            s = tls_socket(b.tls_port, pki, cert="mallory")
            # TLS 1.3: the server's verdict on the certificate comes
            # after the client's handshake is done.
            assert mqtt_over(s, "mallory") is None
            raise ConnectionError("refused after the handshake")
    finally:
        assert b.stop() == 0


def test_use_subject_as_username(tmp_path, pki):
    """use_subject_as_username: the certificate's whole subject (RFC 2253)
    is the username."""
    b = start_tls(tmp_path, pki, ["require_certificate true", "use_subject_as_username true",
                                  "allow_anonymous false"])
    try:
        s = tls_socket(b.tls_port, pki, cert="alice")
        assert mqtt_over(s, "subj") == 0
        s.close()
        assert wait_log(b, "as subj (p4, c1, k60, u'CN=alice')"), read_log(b)
    finally:
        assert b.stop() == 0


def test_crlfile_refuses_revoked_certificates(tmp_path, pki):
    """crlfile: a client certificate the CRL revokes fails the handshake;
    one of the same CA that it does not revoke gets in."""
    d = os.path.dirname(pki("ca.crt"))
    make_cert(d, "ca", "carol", "carol")
    crl = revoke(d, "ca", "carol")
    b = start_tls(tmp_path, pki, ["require_certificate true", "crlfile " + crl])
    try:
        s = tls_socket(b.tls_port, pki, cert="alice")
        assert mqtt_over(s, "not-revoked") == 0
        s.close()
        refused = False
        try:
            s = tls_socket(b.tls_port, pki, cert="carol")
            refused = mqtt_over(s, "revoked") is None
        except (ssl.SSLError, ConnectionError):
            refused = True
        assert refused
        assert wait_log(b, "certificate revoked"), read_log(b)
    finally:
        assert b.stop() == 0


def test_dhparamfile_enables_dhe_ciphers(tmp_path, pki):
    """dhparamfile: with DH parameters a TLS 1.2 client that offers only a
    DHE cipher gets in; a file that holds no DH parameters stops ternd
    naming dhparamfile."""
    d = os.path.dirname(pki("ca.crt"))
    openssl("genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048",
            "-out", "dh.pem", cwd=d)
    b = start_tls(tmp_path, pki, ["dhparamfile " + pki("dh.pem"),
                                  "ciphers DHE-RSA-AES256-GCM-SHA384"])
    try:
        ctx = ssl.create_default_context(cafile=pki("ca.crt"))
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("DHE-RSA-AES256-GCM-SHA384")
        raw = socket.create_connection(("127.0.0.1", b.tls_port), timeout=5)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        assert s.cipher()[0] == "DHE-RSA-AES256-GCM-SHA384"
        assert mqtt_over(s, "dhe") == 0
        s.close()
    finally:
        assert b.stop() == 0
    conf = tmp_path / "baddh.conf"
    conf.write_text("listener %d 127.0.0.1\ncertfile %s\nkeyfile %s\ndhparamfile %s\n"
                    "storage memory\n" % (free_port(), pki("server.crt"), pki("server.key"),
                                          pki("ca.crt")))
    r = subprocess.run([os.environ.get("TERND", "ternd"), "-c", str(conf)], capture_output=True,
                       timeout=10, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert b"dhparamfile" in r.stdout + r.stderr
