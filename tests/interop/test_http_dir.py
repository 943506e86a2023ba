"""http_dir on a websockets listener (issue 13; mosquitto.conf(5): "When a
listener is using the websockets protocol, it is possible to serve http
data as well"): plain HTTP GET / HEAD requests get the files of the
directory, WebSocket upgrades still get MQTT. Nothing outside the
directory is served, however the path is spelled, nor through a symbolic
link out of it. ternd only: Debian's mosquitto has no WebSockets build the
tests can count on (test_config_websockets.py)."""

import os
import socket
import subprocess

import pytest

import mqtt_raw as m
from conftest import Broker, broker_binary, free_port, wait_port
from test_websockets import WS

pytestmark = pytest.mark.ternd_only


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "www"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_bytes(b"<h1>tern</h1>\n")
    (root / "app.js").write_bytes(b"console.log('mqtt');\n")
    (root / "sub" / "index.html").write_bytes(b"<p>sub</p>\n")
    (root / ".hidden").write_bytes(b"dot-file\n")
    (root / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (tmp_path / "secret.txt").write_bytes(b"TOP SECRET\n")
    os.symlink(str(tmp_path / "secret.txt"), str(root / "link.txt"))
    b = Broker(tmp_path, 1, [])
    b.ws_port = free_port()
    b.extra = ["listener %d 127.0.0.1" % b.ws_port, "protocol websockets",
               "http_dir %s" % root, "storage memory"]
    b.start()
    assert wait_port(b.ws_port, b.proc)
    yield b, root
    assert b.stop() == 0


def http(port, request, timeout=10.0):
    """Sends request (bytes) and reads until the server closes: (status
    line, headers dict, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    return lines[0], headers, body


def get(port, path, method="GET"):
    return http(port, ("%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % (method, path)).encode())


def test_files_are_served_with_their_type_and_length(site):
    b, root = site
    for path, name, ctype in (("/", "index.html", "text/html"),
                              ("/index.html", "index.html", "text/html"),
                              ("/app.js?v=3", "app.js", "text/javascript"),
                              ("/sub/", "sub/index.html", "text/html"),
                              ("/sub", "sub/index.html", "text/html"),
                              ("//sub//index.html", "sub/index.html", "text/html")):
        status, headers, body = get(b.ws_port, path)
        want = (root / name).read_bytes()
        assert status == b"HTTP/1.1 200 OK", (path, status)
        assert headers["content-type"].startswith(ctype), (path, headers)
        assert int(headers["content-length"]) == len(want)
        assert body == want, path


def test_a_large_file_arrives_whole(site):
    """Sent from the file as the socket takes it, not held whole."""
    b, root = site
    status, headers, body = get(b.ws_port, "/big.bin")
    want = (root / "big.bin").read_bytes()
    assert status == b"HTTP/1.1 200 OK"
    assert headers["content-type"] == "application/octet-stream"
    assert int(headers["content-length"]) == len(want)
    assert body == want


def test_head_gives_the_headers_only(site):
    b, root = site
    status, headers, body = get(b.ws_port, "/app.js", "HEAD")
    assert status == b"HTTP/1.1 200 OK"
    assert int(headers["content-length"]) == len((root / "app.js").read_bytes())
    assert body == b""


def test_nothing_outside_the_directory_is_served(site):
    """Walking up in any spelling, a dot-file, a link out of the directory:
    404, and the file's bytes never come back."""
    b, _ = site
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",
                 "/sub/../../secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt", "/./index.html",
                 "/.hidden", "/link.txt", "/missing.html"):
        status, _, body = get(b.ws_port, path)
        assert status == b"HTTP/1.1 404 Not Found", (path, status)
        assert b"SECRET" not in body and b"dot-file" not in body, path


def test_bad_requests(site):
    b, _ = site
    status, headers, _ = get(b.ws_port, "/", "POST")
    assert status == b"HTTP/1.1 405 Method Not Allowed"
    assert headers["allow"] == "GET, HEAD"
    for target in ("index.html", "/%zz", "/a%00b"):
        status, _, _ = get(b.ws_port, target)
        assert status == b"HTTP/1.1 400 Bad Request", (target, status)
    status, _, _ = get(b.ws_port, "/" + "a" * 600)
    assert status == b"HTTP/1.1 414 URI Too Long"


def test_the_same_listener_still_speaks_mqtt_over_websockets(site):
    b, _ = site
    w = WS(b.ws_port)
    assert w.status == b"HTTP/1.1 101 Switching Protocols", w.status
    w.frame(m.connect("ws-and-http"))
    assert w.recv_mqtt()[:1] == b"\x20"
    w.close()


def test_http_dir_that_is_not_a_directory_stops_ternd(tmp_path):
    """Opened as the listener opens (as a certfile is read): a DIR that is
    not there, or not a directory, stops ternd with a message naming it."""
    (tmp_path / "file").write_text("x")
    for d in (tmp_path / "nope", tmp_path / "file"):
        conf = tmp_path / "t.conf"
        conf.write_text("listener %d 127.0.0.1\nprotocol websockets\nhttp_dir %s\n"
                        "storage memory\n" % (free_port(), d))
        cp = subprocess.run([broker_binary(), "-c", str(conf)], capture_output=True,
                            timeout=10, stdin=subprocess.DEVNULL)
        assert cp.returncode != 0
        assert ("http_dir %s" % d).encode() in cp.stdout + cp.stderr, cp.stdout + cp.stderr


def test_without_http_dir_a_plain_request_is_refused(tmp_path):
    b = Broker(tmp_path, 1, [])
    b.ws_port = free_port()
    b.extra = ["listener %d 127.0.0.1" % b.ws_port, "protocol websockets", "storage memory"]
    b.start()
    try:
        assert wait_port(b.ws_port, b.proc)
        status, _, _ = get(b.ws_port, "/")
        assert status.startswith(b"HTTP/1.1 400"), status
    finally:
        assert b.stop() == 0
