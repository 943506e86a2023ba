"""enable_proxy_protocol 1|2 (mosquitto 2.1's, issue 13): behind a load
balancer, every connection of such a listener starts with HAProxy's PROXY
header, and ternd logs the client's address it gives instead of the
balancer's; a connection without a valid header is closed;
proxy_protocol_v2_require_tls refuses a client that did not come over TLS.
The test writes the headers itself, as HAProxy would, then speaks MQTT
with the raw client. ternd only: Debian's mosquitto 2.0 has no such
option."""

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


def v2_header(src=("203.0.113.7", 50000), dst=("10.0.0.1", 1883), tls=False):
    body = socket.inet_aton(src[0]) + socket.inet_aton(dst[0]) + struct.pack("!HH", src[1],
                                                                             dst[1])
    if tls:
        body += b"\x20" + struct.pack("!H", 5) + b"\x01" + b"\x00" * 4
    return V2_SIG + b"\x21\x11" + struct.pack("!H", len(body)) + body


def connect_through(port, header, client_id, split=False):
    c = raw.RawClient(HOST, port, version=raw.V311)
    if split:
        # The header may come in pieces, and with the CONNECT behind it.
        c.send(header[:5])
        c.send(header[5:] + raw.connect(client_id))
    else:
        c.send(header + raw.connect(client_id))
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
        assert "proxy_protocol_v2_require_tls" in read_log(proxied)


def test_plain_listener_is_not_affected(proxied):
    c = raw.RawClient(HOST, proxied.port, version=raw.V311)
    c.connect("plain")
    c.close()


@pytest.mark.parametrize("lines,words", [
    (["enable_proxy_protocol 3"], ["enable_proxy_protocol"]),
    (["enable_proxy_protocol 1", "certfile c.pem", "keyfile k.pem"], ["TLS ends at the proxy"]),
    (["enable_proxy_protocol 1", "protocol websockets"], ["websockets"]),
    (["enable_proxy_protocol 1", "proxy_protocol_v2_require_tls true"],
     ["enable_proxy_protocol 2"]),
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
