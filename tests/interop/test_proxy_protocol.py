"""enable_proxy_protocol 1|2 (mosquitto 2.1's, issue 13): behind a load
balancer, every connection of such a listener starts with HAProxy's PROXY
header, and ternd logs the client's address it gives instead of the
balancer's; a connection without a valid header is closed;
proxy_protocol_v2_require_tls refuses a client that did not come over TLS.
Behind a proxy that ended the client's TLS (HAProxy's send-proxy-v2-ssl-cn),
the v2 header's SSL TLV (proxy-protocol.txt section 2.2.5) stands for the
handshake: require_certificate refuses a client whose certificate the
header does not say was presented and verified, and use_identity_as_username
makes the certificate's CN the username (mosquitto 2.1's "TLS termination
with mutual TLS ... with username and PROXY protocol v2"). The test writes
the headers itself, as HAProxy would, then speaks MQTT with the raw client.
ternd only: Debian's mosquitto 2.0 has no such option."""

import socket
import struct
import subprocess

import pytest

import mqtt_raw as raw
from conftest import Broker, WORKER_COUNTS, broker_binary, free_port
from helpers import read_log, wait_for

pytestmark = pytest.mark.ternd_only
HOST = "127.0.0.1"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


@pytest.fixture(params=WORKER_COUNTS, ids=["w%d" % w for w in WORKER_COUNTS])
def proxied(request, tmp_path):
    """Listeners: plain (.port), PROXY v1 (.v1), PROXY v2 (.v2), and v2
    that requires TLS (.v2tls)."""
    ports = [free_port() for _ in range(3)]
    b = Broker(tmp_path, request.param,
               ["listener %d %s" % (ports[0], HOST), "enable_proxy_protocol 1",
                "listener %d %s" % (ports[1], HOST), "enable_proxy_protocol 2",
                "listener %d %s" % (ports[2], HOST), "enable_proxy_protocol 2",
                "proxy_protocol_v2_require_tls true"])
    request.node._tern_broker_log = b.log
    b.start()
    b.v1, b.v2, b.v2tls = ports
    yield b
    b.stop()


def tlv(kind, value):
    return bytes([kind]) + struct.pack("!H", len(value)) + value


# PP2_TYPE_SSL's client bits (proxy-protocol.txt section 2.2.5).
CLIENT_SSL, CERT_CONN, CERT_SESS = 0x01, 0x02, 0x04


def ssl_tlv(client=CLIENT_SSL | CERT_CONN | CERT_SESS, verify=0, cn=None):
    """The SSL TLV as HAProxy's send-proxy-v2-ssl-cn writes it: client,
    verify, the TLS version, and the certificate's CN when it has one."""
    sub = tlv(0x21, b"TLSv1.3")
    if cn is not None:
        sub += tlv(0x22, cn.encode() if isinstance(cn, str) else cn)
    return tlv(0x20, bytes([client]) + struct.pack("!I", verify) + sub)


def v2_header(src=("203.0.113.7", 50000), dst=("10.0.0.1", 1883), tls=False, tlvs=b""):
    body = socket.inet_aton(src[0]) + socket.inet_aton(dst[0]) + struct.pack("!HH", src[1],
                                                                             dst[1])
    if tls:
        body += b"\x20" + struct.pack("!H", 5) + b"\x01" + b"\x00" * 4
    body += tlvs
    return V2_SIG + b"\x21\x11" + struct.pack("!H", len(body)) + body


def connect_through(port, header, client_id, split=False, version=raw.V311, **kw):
    c = raw.RawClient(HOST, port, version=version)
    connect = raw.connect(client_id, version=version, **kw)
    if split:
        # The header may come in pieces, and with the CONNECT behind it.
        c.send(header[:5])
        c.send(header[5:] + connect)
    else:
        c.send(header + connect)
    return c


@pytest.mark.parametrize("split", [False, True])
def test_v1_header_gives_the_client_address(proxied, split):
    c = connect_through(proxied.v1, b"PROXY TCP4 198.51.100.23 10.0.0.1 40001 1883\r\n",
                        "v1client", split)
    assert c.recv_type(raw.CONNACK).rc == 0
    assert wait_for(lambda: "198.51.100.23:40001" in read_log(proxied) and
                    "as v1client" in read_log(proxied), 5), read_log(proxied)[-1500:]
    log = read_log(proxied)
    assert "New client connected from 198.51.100.23:40001 as v1client" in log, log[-1500:]
    c.close()


def test_v2_header_gives_the_client_address(proxied):
    c = connect_through(proxied.v2, v2_header(), "v2client")
    assert c.recv_type(raw.CONNACK).rc == 0
    c.subscribe([("p/#", 1)])
    assert wait_for(lambda: "New client connected from 203.0.113.7:50000 as v2client" in
                    read_log(proxied), 5), read_log(proxied)[-1500:]
    c.close()


@pytest.mark.parametrize("port_attr,header", [
    ("v1", b""),  # MQTT straight away
    ("v1", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n"),
    ("v2", b"PROXY TCP4 198.51.100.23 10.0.0.1 40001 1883\r\n"),  # v1 where v2 is set
    ("v1", V2_SIG + b"\x21\x11\x00\x0c" + b"\x00" * 12),  # and the other way round
])
def test_connection_without_a_valid_header_is_closed(proxied, port_attr, header):
    c = connect_through(getattr(proxied, port_attr), header, "nohead")
    c.wait_closed(timeout=5)


@pytest.mark.parametrize("tls,ok", [(True, True), (False, False)])
def test_v2_require_tls(proxied, tls, ok):
    c = connect_through(proxied.v2tls, v2_header(tls=tls), "tlsclient")
    if ok:
        assert c.recv_type(raw.CONNACK).rc == 0
    else:
        c.wait_closed(timeout=5)
        # The log writer thread may write the line after the close.
        assert wait_for(lambda: "proxy_protocol_v2_require_tls" in read_log(proxied), 5), \
            read_log(proxied)[-1500:]


def test_plain_listener_is_not_affected(proxied):
    c = raw.RawClient(HOST, proxied.port, version=raw.V311)
    c.connect("plain")
    c.close()


@pytest.mark.parametrize("lines,words", [
    (["enable_proxy_protocol 3"], ["enable_proxy_protocol"]),
    (["enable_proxy_protocol 1", "certfile c.pem", "keyfile k.pem"], ["TLS ends at the proxy"]),
    (["enable_proxy_protocol 1", "proxy_protocol_v2_require_tls true"],
     ["enable_proxy_protocol 2"]),
    (["enable_proxy_protocol 2", "cafile ca.pem", "require_certificate true"],
     ["TLS ends at the proxy"]),
    # A v1 line says nothing of TLS: the certificate options would check
    # nothing (mosquitto 2.1 then lets every client in, or refuses all).
    (["enable_proxy_protocol 1", "require_certificate true"], ["enable_proxy_protocol 2"]),
    (["enable_proxy_protocol 1", "use_identity_as_username true"],
     ["enable_proxy_protocol 2"]),
    # The header carries the CN only, not the subject (mosquitto 2.1
    # refuses it too).
    (["enable_proxy_protocol 2", "use_subject_as_username true"],
     ["use_subject_as_username", "CN only"]),
])
def test_bad_proxy_config_is_refused(tmp_path, lines, words):
    conf = tmp_path / "p.conf"
    conf.write_text("\n".join(["listener %d 127.0.0.1" % free_port()] + lines) + "\n")
    cp = subprocess.run([broker_binary(), "-c", str(conf)], capture_output=True, timeout=5,
                        stdin=subprocess.DEVNULL)
    err = (cp.stderr + cp.stdout).decode()
    assert cp.returncode != 0, err
    for w in words:
        assert w in err, err


ACL = """\
pattern readwrite devices/%u/#
"""


@pytest.fixture(params=WORKER_COUNTS, ids=["w%d" % w for w in WORKER_COUNTS])
def certified(request, tmp_path):
    """PROXY v2 listeners behind a proxy that ends TLS: require_certificate
    (.req), mosquitto's documented use_identity_as_username setup (.ident)
    and use_identity_as_username alone (.identonly); an ACL of %u."""
    ports = [free_port() for _ in range(3)]
    acl = tmp_path / "acl"
    acl.write_text(ACL)
    b = Broker(tmp_path, request.param,
               ["acl_file %s" % acl,
                "listener %d %s" % (ports[0], HOST), "enable_proxy_protocol 2",
                "require_certificate true",
                "listener %d %s" % (ports[1], HOST), "enable_proxy_protocol 2",
                "proxy_protocol_v2_require_tls true", "require_certificate true",
                "use_identity_as_username true",
                "listener %d %s" % (ports[2], HOST), "enable_proxy_protocol 2",
                "use_identity_as_username true"])
    request.node._tern_broker_log = b.log
    b.start()
    b.req, b.ident, b.identonly = ports
    yield b
    b.stop()


@pytest.mark.parametrize("version", [raw.V311, raw.V5])
@pytest.mark.parametrize("listener", ["ident", "identonly"])
def test_verified_certificate_cn_is_the_username(certified, listener, version):
    """The CN of the certificate the header vouches for replaces the
    CONNECT's username (mosquitto.conf(5), enable_proxy_protocol: "the
    commonName value from the certificate being used as the client username
    instead of any provided in the CONNECT packet"), and the ACL's %u is
    that CN. Several client ids, so that with 2 workers some connections
    are handed to another worker with what their header said."""
    for n in range(4):
        cid = "cert%d-%d" % (n, version)
        c = connect_through(getattr(certified, listener),
                            v2_header(tlvs=ssl_tlv(cn="sensor-1")), cid, version=version,
                            username="other", password=b"not checked")
        assert c.recv_type(raw.CONNACK).rc == 0
        ack = c.subscribe([("devices/sensor-1/#", 1), ("devices/other/#", 1)])
        # [MQTT-3.9.3-1]: one return code per filter, in order; 0x80 is a
        # refusal, here by the ACL for a user other than "sensor-1".
        assert list(ack.codes) == [1, 0x80], ack
        c.publish("devices/sensor-1/t", b"m")
        p = c.recv_publish()
        assert (p.topic, p.payload) == ("devices/sensor-1/t", b"m")
        c.close()
        assert wait_for(lambda: "as %s (p%d, c1, k60, u'sensor-1')" % (cid, version) in
                        read_log(certified), 5), read_log(certified)[-2000:]


@pytest.mark.parametrize("version,rc", [(raw.V311, 5), (raw.V5, 0x86)])
@pytest.mark.parametrize("ssl", [
    ssl_tlv(),  # a verified certificate without a CN
    ssl_tlv(verify=1, cn="sensor-1"),  # a CN, but the certificate was not verified
    ssl_tlv(client=CLIENT_SSL, cn="sensor-1"),  # a CN, but no certificate presented
    b"",  # no SSL TLV at all
], ids=["no-cn", "unverified", "no-cert", "no-tls"])
def test_use_identity_without_a_verified_cn_is_refused(certified, version, rc, ssl):
    """use_identity_as_username without require_certificate: a client whose
    header names no verified certificate's CN is refused as mosquitto refuses
    a TLS client without a certificate: bad username or password (v5 0x86;
    3.1.1 5, not authorized, as ternd answers wrong credentials there), and
    never let in under the CONNECT's username."""
    c = connect_through(certified.identonly, v2_header(tlvs=ssl), "nocn", version=version,
                        username="sensor-1", password=b"x")
    ack = c.recv_type(raw.CONNACK)
    assert ack.rc == rc, ack
    c.wait_closed(timeout=5)
    assert wait_for(lambda: "no verified client certificate CN in the PROXY header" in
                    read_log(certified), 5), read_log(certified)[-2000:]


def test_require_certificate_takes_a_verified_certificate(certified):
    """require_certificate alone: the certificate lets the client connect;
    its username stays the CONNECT's."""
    c = connect_through(certified.req, v2_header(tlvs=ssl_tlv(client=CLIENT_SSL | CERT_SESS)),
                        "req-ok", username="plain")
    assert c.recv_type(raw.CONNACK).rc == 0
    assert wait_for(lambda: "as req-ok (p4, c1, k60, u'plain')" in read_log(certified), 5)
    c.close()


@pytest.mark.parametrize("listener", ["req", "ident"])
@pytest.mark.parametrize("ssl,why", [
    (b"", "PROXY header without TLS"),
    (ssl_tlv(client=CLIENT_SSL), "presented no certificate"),
    (ssl_tlv(verify=10, cn="sensor-1"), "failed verification"),
    (ssl_tlv(client=CERT_CONN | CERT_SESS, cn="sensor-1"), "PROXY header without TLS"),
], ids=["no-tls", "no-cert", "verify-failed", "cert-without-tls"])
def test_require_certificate_refuses_without_a_verified_certificate(certified, listener, ssl,
                                                                    why):
    """The header must say a certificate was presented (PP2_CLIENT_CERT_CONN
    or _SESS) on a TLS connection and verified (verify 0): else the
    connection is closed before its CONNECT is read, as mosquitto does, with
    a log line naming why and the client's address."""
    src = ("198.51.100.%d" % (10 + len(ssl) % 200), 41000 + len(ssl))
    c = connect_through(getattr(certified, listener), v2_header(src=src, tlvs=ssl), "refused")
    assert not [p for p in c.wait_closed(timeout=5) if p.type == raw.CONNACK]
    line = "[%s:%d] disconnected: " % src
    assert wait_for(lambda: any(line in l and why in l
                                for l in read_log(certified).splitlines()), 5), \
        read_log(certified)[-2000:]


@pytest.mark.parametrize("ssl", [
    # The CN's length runs one byte past the SSL TLV, into the TLV after
    # it (of a type no one defined, 'A', so that the CN read too far would
    # still be a valid name, "eveA").
    ssl_tlv(cn="eve")[:-6] + b"\x22\x00\x04eve" + tlv(0x41, b"mqtt"),
    ssl_tlv(cn=b"ev\x00e"),  # a NUL in the CN
    ssl_tlv(cn=b"\xc3\x28"),  # not UTF-8
    ssl_tlv() + ssl_tlv(cn="b"),  # two SSL TLVs
], ids=["cn-past-tlv", "cn-nul", "cn-not-utf8", "two-ssl-tlvs"])
@pytest.mark.parametrize("listener", ["identonly", "req"])
def test_malformed_ssl_tlv_closes_the_connection(certified, ssl, listener):
    c = connect_through(getattr(certified, listener), v2_header(tlvs=ssl), "bad")
    assert not [p for p in c.wait_closed(timeout=5) if p.type == raw.CONNACK]
    assert wait_for(lambda: "no valid PROXY protocol header" in read_log(certified), 5)


@pytest.mark.parametrize("version", [1, 2])
def test_websockets_listener_reads_the_header_before_the_upgrade(tmp_path, version):
    """enable_proxy_protocol on a websockets listener (mosquitto 2.1 takes
    it): the header, then the HTTP upgrade, then MQTT in frames; the
    client's address is the header's. A connection without a valid header
    is closed before any upgrade."""
    from test_websockets import WS
    port = free_port()
    b = Broker(tmp_path, 1, ["listener %d %s" % (port, HOST), "protocol websockets",
                             "enable_proxy_protocol %d" % version])
    b.start()
    try:
        s = socket.create_connection((HOST, port), timeout=5)
        if version == 1:
            s.sendall(b"PROXY TCP4 198.51.100.9 10.0.0.1 40009 1883\r\n")
        else:
            s.sendall(v2_header(src=("198.51.100.9", 40009)))
        w = WS(port, sock=s)
        assert w.status == b"HTTP/1.1 101 Switching Protocols", w.status
        w.frame(raw.connect("ws-proxied"))
        assert w.recv_mqtt()[:1] == b"\x20"
        assert wait_for(lambda: "198.51.100.9:40009" in read_log(b) and
                        "as ws-proxied" in read_log(b), 5), read_log(b)[-1500:]
        w.close()
        # No header: the HTTP request is not one, and nothing is upgraded.
        s = socket.create_connection((HOST, port), timeout=5)
        with pytest.raises((ConnectionError, OSError)):
            WS(port, sock=s)
        assert wait_for(lambda: "no valid PROXY protocol header" in read_log(b), 5)
    finally:
        b.stop()
