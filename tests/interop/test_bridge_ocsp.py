"""bridge_require_ocsp (issue 13; mosquitto.conf(5): "the bridge requires OCSP
on the TLS connection it opens as client"): the bridge asks for a stapled
OCSP response (TLS status_request, RFC 6066 section 8) and connects only when
the remote staples one (RFC 6960) that verifies against bridge_cafile and
says the remote's certificate is good.

The remote is `openssl s_server`, stapling the file given with -status_file.
It prints what the client sends once the handshake is done, so the MQTT
CONNECT's protocol name ("MQTT") on its stdout proves the handshake passed;
it answers nothing, which the bridge survives (it retries). The PKI is made
per module with openssl: a CA, a server certificate for 127.0.0.1, and OCSP
responses from `openssl ocsp -index` signed by the CA itself, by a
delegated responder (id-kp-OCSPSigning), and by a stranger CA."""

import datetime
import os
import subprocess
import time

import pytest

from bridge_peer import HOST
from conftest import Broker, broker_binary, free_port
from helpers import read_log, unique, wait_for
from test_tls import make_ca, make_cert, openssl


def index_line(d, cert, revoked):
    """An `openssl ca` index.txt line for cert: valid, or revoked (key
    compromise) an hour ago."""
    def field(flag):
        out = subprocess.run(["openssl", "x509", "-in", cert, "-noout", flag], cwd=d,
                             check=True, capture_output=True, text=True).stdout
        return out.strip().split("=", 1)[1]
    end = datetime.datetime.strptime(field("-enddate"), "%b %d %H:%M:%S %Y %Z")
    ymd = "%y%m%d%H%M%SZ"
    if revoked:
        when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
        return "R\t%s\t%s,keyCompromise\t%s\tunknown\t/CN=localhost\n" % (
            end.strftime(ymd), when.strftime(ymd), field("-serial"))
    return "V\t%s\t\t%s\tunknown\t/CN=localhost\n" % (end.strftime(ymd), field("-serial"))


def ocsp_response(d, out, revoked=False, signer="ca"):
    """The response of a responder with the CA's database, about
    server.crt, signed by signer (its certificate goes in the response)."""
    index = os.path.join(d, out + ".index")
    with open(index, "w") as f:
        f.write(index_line(d, "server.crt", revoked))
    openssl("ocsp", "-index", index, "-rsigner", signer + ".crt", "-rkey", signer + ".key",
            "-CA", "ca.crt", "-issuer", "ca.crt", "-cert", "server.crt", "-respout", out,
            "-ndays", "1", "-no_nonce", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("ocsppki"))
    make_ca(d, "ca")
    make_ca(d, "otherca")
    make_cert(d, "ca", "server", "localhost", server=True)
    # A responder the CA delegated to (RFC 6960 section 4.2.2.2).
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "responder.key", "-out",
            "responder.csr", "-subj", "/CN=responder", cwd=d)
    with open(os.path.join(d, "responder.ext"), "w") as f:
        f.write("extendedKeyUsage=OCSPSigning\n")
    openssl("x509", "-req", "-in", "responder.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", "responder.crt", "-extfile",
            "responder.ext", cwd=d)
    ocsp_response(d, "good.der")
    ocsp_response(d, "revoked.der", revoked=True)
    ocsp_response(d, "delegated.der", signer="responder")
    ocsp_response(d, "stranger.der", signer="otherca")
    return lambda n: os.path.join(d, n)


class SServer:
    """openssl s_server on a free port, stapling status_file (or nothing).
    Its stdin is a pipe kept open (at EOF it would quit), stdout a file."""

    def __init__(self, tmp_path, pki, status_file=None, tls12=False):
        self.port = free_port()
        self.out = str(tmp_path / ("s_server-%d.out" % self.port))
        args = ["openssl", "s_server", "-accept", "%s:%d" % (HOST, self.port), "-cert",
                pki("server.crt"), "-key", pki("server.key")]
        if status_file is not None:
            args += ["-status_file", pki(status_file)]
        if tls12:
            args.append("-tls1_2")
        with open(self.out, "wb") as f:
            self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=f,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while "ACCEPT" not in self.text():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.text()
            time.sleep(0.05)

    def text(self):
        with open(self.out, errors="replace") as f:
            return f.read()

    def saw_connect(self):
        return "MQTT" in self.text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        self.proc.stdin.close()


def bridge_to(tmp_path, server, extra):
    d = tmp_path / ("local-" + unique("l"))
    d.mkdir()
    lines = ["connection ob", "address %s:%d" % (HOST, server.port), "restart_timeout 1",
             "remote_clientid ocspbr", "topic probe/# both 1"]
    b = Broker(d, 1, lines + list(extra))
    b.start()
    return b


def run_case(tmp_path, pki, status_file, extra, tls12=False):
    """Starts s_server and a bridge to it; returns (handshake passed, the
    local broker's log), both stopped by PID."""
    server = SServer(tmp_path, pki, status_file, tls12)
    local = None
    try:
        local = bridge_to(tmp_path, server, ["bridge_cafile " + pki("ca.crt")] + extra)
        passed = wait_for(server.saw_connect, 4)
        if not passed:
            # The failure is logged, and retried after restart_timeout
            # without ever passing.
            wait_for(lambda: "Bridge ob: connection to" in read_log(local), 5)
            time.sleep(1.5)
            passed = server.saw_connect()
        return passed, read_log(local)
    finally:
        if local is not None:
            local.stop()
        server.stop()


@pytest.mark.parametrize("status_file", ["good.der", "delegated.der"])
def test_good_stapled_response_lets_the_bridge_connect(tmp_path, pki, status_file):
    """A response that says good, signed by the CA or by its delegated
    responder: the handshake passes and the CONNECT reaches the remote."""
    passed, log = run_case(tmp_path, pki, status_file, ["bridge_require_ocsp true"])
    assert passed, log[-2000:]


@pytest.mark.parametrize("status_file,why", [
    (None, "no OCSP response stapled"),
    ("revoked.der", "server certificate revoked (keyCompromise)"),
    ("stranger.der", "OCSP response does not verify"),
])
def test_missing_revoked_or_unverifiable_response_fails_the_handshake(tmp_path, pki,
                                                                      status_file, why):
    """No stapled response, one that says revoked, or one signed by a CA
    that is not bridge_cafile: the handshake fails, nothing reaches the
    remote, and ternd's log says why."""
    passed, log = run_case(tmp_path, pki, status_file, ["bridge_require_ocsp true"])
    assert not passed, log[-2000:]
    if os.environ.get("TERN_TEST_AGAINST", "ternd") != "mosquitto":
        assert why in log, log[-2000:]


@pytest.mark.parametrize("status_file,ok", [("good.der", True), (None, False),
                                            ("revoked.der", False)])
def test_tls12_staples_in_certificate_status_too(tmp_path, pki, status_file, ok):
    """TLS 1.2 carries the response in its own CertificateStatus message
    (RFC 6066 section 8), TLS 1.3 in the Certificate message: the same
    verdicts with a server that speaks TLS 1.2 only."""
    passed, log = run_case(tmp_path, pki, status_file, ["bridge_require_ocsp true"],
                           tls12=True)
    assert passed == ok, log[-2000:]


@pytest.mark.parametrize("extra", [[], ["bridge_require_ocsp false"]])
def test_without_require_ocsp_no_response_is_needed(tmp_path, pki, extra):
    """bridge_require_ocsp false (or absent): a remote that staples nothing
    is connected to, as before."""
    passed, log = run_case(tmp_path, pki, None, extra)
    assert passed, log[-2000:]


@pytest.mark.ternd_only
@pytest.mark.parametrize("lines,words", [
    (["bridge_require_ocsp true"], ["bridge_require_ocsp needs bridge TLS"]),
    (["bridge_require_ocsp true", "bridge_identity me", "bridge_psk 00ff",
      "bridge_tls_use_os_certs true"], ["bridge_require_ocsp", "TLS-PSK"]),
    (["bridge_require_ocsp maybe"], ["bridge_require_ocsp"]),
])
def test_require_ocsp_without_certificate_tls_is_refused(tmp_path, lines, words):
    """bridge_require_ocsp true on a bridge without certificate TLS could
    never be met: ternd refuses the config at start and says why."""
    conf = tmp_path / "b.conf"
    conf.write_text("\n".join(["listener %d 127.0.0.1" % free_port(), "connection a",
                               "address 127.0.0.1:1883", "topic x"] + lines) + "\n")
    cp = subprocess.run([broker_binary(), "--test-config", "-c", str(conf)],
                        capture_output=True, timeout=5, stdin=subprocess.DEVNULL)
    err = cp.stderr.decode("utf-8", "replace")
    assert cp.returncode != 0, err
    for w in words:
        assert w in err, err
