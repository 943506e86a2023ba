"""The admin HTTP API on http_listener (docs/http-api.md): GET
/api/v1/broker, errors as JSON with their status codes, HTTP basic
authentication against http_password_file (written by Debian's
mosquitto_passwd), TLS with http_certfile / http_keyfile, the action log and
POST /api/v1/reload. Driven with urllib from /usr/bin/python3 and with raw
sockets for what urllib will not send; MQTT traffic from paho."""

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

import mqtt_raw as m
from conftest import free_port, wait_port, broker_binary
from helpers import PahoClient, read_log, unique, wait_for, wait_log
from test_auth import write_passwd
from test_tls import make_ca, make_cert

pytestmark = pytest.mark.ternd_only

HTTP = "http_listener {http_port}"


def call(port, path, method="GET", user=None, password=None, scheme="http", ctx=None,
         headers=None, data=None):
    """(status, headers, parsed JSON or text) of one request."""
    req = urllib.request.Request("%s://127.0.0.1:%d%s" % (scheme, port, path), method=method,
                                 data=data)
    if user is not None:
        token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
            status, hdrs, body = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, hdrs, body = e.code, e.headers, e.read()
    if hdrs.get("Content-Type", "").startswith("application/json"):
        return status, hdrs, json.loads(body)
    return status, hdrs, body.decode()


def get(broker, path, **kw):
    status, _, body = call(broker.http_port, path, **kw)
    assert status == 200, body
    return body


def raw_http(port, data, timeout=5):
    """Sends bytes as they are; returns what came back until the server
    closed (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            got += chunk
            if b"\r\n\r\n" in got and b"Content-Length: " in got:
                head, _, body = got.partition(b"\r\n\r\n")
                n = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                if len(body) >= n:
                    break
    return got


@pytest.mark.broker_config(HTTP, "storage sqlite", "sys_interval 0")
def test_broker_summary_counts_what_happens(broker):
    """Connections, sessions, subscriptions, retained messages and per-QoS
    message totals and rates move with what clients do; the store's commits
    show with their latency."""
    # The fixture's probe of the MQTT port may not be closed yet.
    assert wait_for(lambda: get(broker, "/api/v1/broker")["connections"] == 0)
    before = get(broker, "/api/v1/broker")
    assert before["version"] == subprocess.run([broker.binary, "--version"], capture_output=True,
                                               text=True).stdout.split()[-1]
    assert before["workers"] == broker.workers
    assert before["uptime_seconds"] >= 0
    sub = PahoClient(broker, unique("sub"), clean=False)
    sub.subscribe("api/#", qos=1)
    pub = PahoClient(broker, unique("pub"))
    for i in range(40):
        pub.publish("api/t", b"x" * 10, qos=1)
    pub.publish("api/kept", b"r", qos=1, retain=True)
    assert len(sub.get_n(41)) == 41
    now = get(broker, "/api/v1/broker")
    assert now["connections"] == 2
    assert now["sessions"] == {"total": 2, "online": 2, "offline": 0}, now
    assert now["subscriptions"] == before["subscriptions"] + 1
    assert now["retained"] == before["retained"] + 1
    rx = now["messages"]["received"]["1"]
    assert rx["total"] - before["messages"]["received"]["1"]["total"] == 41
    tx = now["messages"]["sent"]["1"]
    assert tx["total"] - before["messages"]["sent"]["1"]["total"] == 41
    # Published within the last second: both windows hold them.
    assert rx["per_second_1s"] > 0 and rx["per_second_1m"] > 0, now
    assert now["messages"]["received"]["2"]["per_second_1m"] == 0
    assert now["bytes"]["received"] > before["bytes"]["received"]
    assert set(now["dropped"]) == {"queue_full", "slow_consumer", "expired", "too_large",
                                   "stalled", "no_member", "memory"}
    assert now["store"]["commits"] > before["store"]["commits"]
    assert now["store"]["commit_ms_mean"] > 0
    assert now["store"]["commit_ms_mean_1m"] is not None
    assert now["cluster"] is None or "node" in now["cluster"]
    assert now["archives"] == []
    pub.stop()
    sub.stop()
    # The client of the persistent session left: offline, no connection.
    assert wait_for(lambda: get(broker, "/api/v1/broker")["sessions"]["offline"] == 1)
    assert get(broker, "/api/v1/broker")["connections"] == 0
    # After a few seconds of quiet the 1 s rate is back to 0, the 1 min
    # rate is not.
    def rx1():
        return get(broker, "/api/v1/broker")["messages"]["received"]["1"]
    assert wait_for(lambda: rx1()["per_second_1s"] == 0, timeout=6), rx1()
    assert rx1()["per_second_1m"] > 0


def test_broker_summary_shows_the_archives(tmp_path):
    """With archives configured (docs/archive.md), /api/v1/broker lists
    each with its database state and counts."""
    from test_archive_sqlite import archive_lines
    port = free_port()
    db = str(tmp_path / "history.db")
    b = start_broker(tmp_path, ["http_listener %d" % port, "storage memory"] +
                     archive_lines(db, batch="1 10ms"))
    try:
        pub = b.raw(m.V311)
        pub.connect("arch-pub")
        pub.publish("sensors/t", b"21.5", qos=1, pid=1)  # acknowledged

        def archives():
            return call(port, "/api/v1/broker")[2]["archives"]
        assert wait_for(lambda: archives()[0]["archived"] == 1), archives()
        a = archives()[0]
        assert a["name"] == "history" and a["connected"] is True
        assert a["queued"] == 0 and a["dropped"] == 0 and a["batches"] >= 1
        pub.disconnect()
    finally:
        b.stop()


@pytest.mark.broker_config(HTTP, "storage memory")
def test_metrics_still_served_beside_the_api(broker):
    status, hdrs, text = call(broker.http_port, "/metrics")
    assert status == 200 and hdrs["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "\ntern_connections " in text and "\ntern_uptime_seconds " in text


@pytest.mark.broker_config(HTTP, "storage memory")
def test_errors_are_json_with_the_right_status(broker):
    port = broker.http_port
    cases = [
        ("GET", "/api/v1/nothing", 404),
        ("GET", "/api/v2/broker", 404),
        ("GET", "/api/v1/broker/", 404),
        ("DELETE", "/api/v1/broker", 405),
        ("GET", "/api/v1/reload", 405),
        ("GET", "/api/v1/broker?x=1", 400),
        ("GET", "/api/v1/clients/a%zzb", 400),
        ("GET", "/api/v1/clients/a%00b", 400),
        ("GET", "/api/v1/clients?page=0", 400),
        ("GET", "/api/v1/clients?limit=100000", 400),
        ("GET", "/api/v1/clients?page=1&page=2", 400),
        ("GET", "/api/v1/retained", 400),  # filter= is required
    ]
    for method, path, want in cases:
        status, hdrs, body = call(port, path, method=method)
        assert status == want, (method, path, status, body)
        assert hdrs["Content-Type"].startswith("application/json"), path
        assert isinstance(body["error"], str) and body["error"], path
        if want == 405:
            assert hdrs["Allow"], path
    # A body where none is taken, larger than the server reads: 413.
    status, _, body = call(port, "/api/v1/reload", method="POST", data=b"x" * 100000)
    assert status == 413 and body["error"]
    # A request line over the server's memory for one request.
    got = raw_http(port, b"GET /api/v1/clients?prefix=" + b"a" * 70000 + b" HTTP/1.1\r\n"
                   b"Host: x\r\n\r\n")
    assert got.split(b" ")[1] in (b"414", b"431"), got[:80]
    # Not HTTP at all.
    got = raw_http(port, b"\x10\x0c\x00\x04MQTT\x04\x02\x00<\x00\x00\r\n\r\n")
    assert got == b"" or got.split(b" ")[1] == b"400", got[:80]
    # The listener took all that and still answers.
    assert get(broker, "/api/v1/broker")["connections"] == 0


@pytest.fixture
def admin_pw(tmp_path):
    path = str(tmp_path / "http.passwd")
    write_passwd(path, {"admin": "s3cret", "viewer": "look"})
    return path


def start_broker(tmp_path, lines):
    """A ternd of our own (config lines given whole), for configurations
    the broker fixture cannot express (a file made by the test)."""
    from conftest import Broker
    b = Broker(tmp_path, 2, lines)
    b.http_port = None
    for l in lines:
        if l.startswith("http_listener"):
            b.http_port = int(l.split()[1])
    b.start()
    assert wait_port(b.http_port, b.proc)
    return b


def test_basic_auth_against_http_password_file(tmp_path, admin_pw):
    """With http_password_file every path needs basic authentication (401
    and a Basic challenge otherwise, wrong passwords logged); the actions
    are logged with the user who asked."""
    port = free_port()
    b = start_broker(tmp_path, ["http_listener %d" % port, "http_password_file " + admin_pw,
                                "storage memory"])
    try:
        for path in ("/api/v1/broker", "/metrics", "/api/v1/nothing"):
            status, hdrs, body = call(port, path)
            assert status == 401, path
            assert hdrs["WWW-Authenticate"].startswith("Basic realm=")
            assert body["error"]
        status, _, _ = call(port, "/api/v1/broker", user="admin", password="wrong")
        assert status == 401
        assert wait_log(b, "refused user admin from 127.0.0.1")
        status, _, _ = call(port, "/api/v1/broker", user="nobody", password="s3cret")
        assert status == 401
        # A name is any bytes: a newline in it does not forge a log line.
        status, _, _ = call(port, "/api/v1/broker", user="x\n123 forged", password="p")
        assert status == 401
        assert wait_log(b, "refused user x?123 forged from 127.0.0.1")
        assert "\n123 forged" not in read_log(b)
        status, _, body = call(port, "/api/v1/broker", user="viewer", password="look")
        assert status == 200 and body["workers"] == 2
        status, _, _ = call(port, "/api/v1/nothing", user="viewer", password="look")
        assert status == 404
        status, _, body = call(port, "/api/v1/reload", method="POST", user="admin",
                               password="s3cret")
        assert status == 200 and body == {"reloaded": True}
        assert wait_log(b, "HTTP: user admin from 127.0.0.1:")
        assert "POST /api/v1/reload: 200" in read_log(b)
    finally:
        b.stop()


def test_repeated_failed_logins_block_the_address(tmp_path, admin_pw):
    """10 failed logins from one address within a minute: that address is
    refused (429) for a minute, the right password included, so passwords
    cannot be tried at the speed of the hash; it is logged."""
    port = free_port()
    b = start_broker(tmp_path, ["http_listener %d" % port, "http_password_file " + admin_pw,
                                "storage memory"])
    try:
        # Requests without credentials are not failed logins.
        for _ in range(12):
            assert call(port, "/api/v1/broker")[0] == 401
        assert call(port, "/api/v1/broker", user="admin", password="s3cret")[0] == 200
        for i in range(10):
            assert call(port, "/api/v1/broker", user="admin", password="guess%d" % i)[0] == 401
        status, _, body = call(port, "/api/v1/broker", user="admin", password="s3cret")
        assert status == 429 and body["error"]
        assert wait_log(b, "10 failed logins from 127.0.0.1 within 60 s: refused for 60 s")
    finally:
        b.stop()


def test_reload_takes_a_new_http_password_file(tmp_path, admin_pw):
    """POST /api/v1/reload (and SIGHUP) read http_password_file again; a
    file that does not load leaves the old one in force and the reload
    answers 500."""
    port = free_port()
    b = start_broker(tmp_path, ["http_listener %d" % port, "http_password_file " + admin_pw,
                                "storage memory"])
    try:
        write_passwd(admin_pw, {"admin": "changed"})
        status, _, _ = call(port, "/api/v1/reload", method="POST", user="admin",
                            password="s3cret")
        assert status == 200
        assert call(port, "/api/v1/broker", user="admin", password="s3cret")[0] == 401
        assert call(port, "/api/v1/broker", user="admin", password="changed")[0] == 200
        with open(admin_pw, "a") as f:
            f.write("this line is not a user\n")
        status, _, body = call(port, "/api/v1/reload", method="POST", user="admin",
                               password="changed")
        assert status == 500 and "previous" in body["error"]
        assert call(port, "/api/v1/broker", user="admin", password="changed")[0] == 200
        write_passwd(admin_pw, {"admin": "third"})
        os.kill(b.proc.pid, signal.SIGHUP)
        assert wait_for(lambda: call(port, "/api/v1/broker", user="admin",
                                     password="third")[0] == 200)
    finally:
        b.stop()


@pytest.fixture(scope="module")
def http_pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    make_ca(d, "ca")
    make_cert(d, "ca", "server", "localhost", server=True)
    return lambda n: os.path.join(d, n)


def test_tls_on_the_http_listener(tmp_path, http_pki, admin_pw):
    """http_certfile / http_keyfile: the API speaks HTTPS only, verified
    against the CA; with basic auth over it."""
    port = free_port()
    b = start_broker(tmp_path, ["http_listener %d" % port,
                                "http_certfile " + http_pki("server.crt"),
                                "http_keyfile " + http_pki("server.key"),
                                "http_password_file " + admin_pw, "storage memory"])
    try:
        ctx = ssl.create_default_context(cafile=http_pki("ca.crt"))
        status, _, body = call(port, "/api/v1/broker", scheme="https", ctx=ctx, user="admin",
                               password="s3cret")
        assert status == 200 and body["version"]
        assert call(port, "/api/v1/broker", scheme="https", ctx=ctx)[0] == 401
        # Plain HTTP to it gets no answer of the API.
        got = raw_http(port, b"GET /api/v1/broker HTTP/1.1\r\nHost: x\r\n\r\n", timeout=2)
        assert b"workers" not in got
        with pytest.raises(urllib.error.URLError) as e:
            call(port, "/api/v1/broker", scheme="https",
                 ctx=ssl.create_default_context())  # not our CA
        assert isinstance(e.value.reason, ssl.SSLError)
        assert "https://127.0.0.1:%d" % port in read_log(b)
    finally:
        b.stop()


@pytest.mark.parametrize("lines,why", [
    (["http_certfile /x.crt", "http_keyfile /x.key"], "need http_listener"),
    (["http_listener 1", "http_certfile /x.crt"], "http_certfile and http_keyfile go together"),
    (["http_listener {port}", "http_password_file /nonexistent/pw"], "http_password_file"),
])
def test_bad_http_configuration_is_refused(tmp_path, lines, why):
    conf = tmp_path / "c.conf"
    port = free_port()
    conf.write_text("storage memory\n" + "\n".join(l.replace("{port}", str(port))
                                                   for l in lines) + "\n")
    r = subprocess.run([broker_binary(), "-c", str(conf)], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode != 0
    assert why in r.stdout + r.stderr


# ---- clients, subscriptions, topics ----

def quote(s):
    return urllib.parse.quote(s, safe="")



@pytest.mark.broker_config(HTTP, "storage memory")
def test_clients_paged_by_id_prefix(broker):
    """GET /api/v1/clients lists every session, connected or not, sorted by
    client id, filtered by ?prefix=, in pages of ?limit= (stable: sorted by
    id); the workers own the data and answer for their sessions."""
    ids = ["dev/%02d" % i for i in range(1, 6)]
    online = [PahoClient(broker, cid) for cid in ids]
    other = PahoClient(broker, "other-1")
    kept = PahoClient(broker, "dev/06", clean=False)
    kept.subscribe("kept/#", qos=1)
    kept.stop()  # its session stays, offline
    assert wait_for(lambda: get(broker, "/api/v1/broker")["sessions"]["offline"] == 1)
    everyone = get(broker, "/api/v1/clients")
    assert everyone["total"] == 7 and everyone["pages"] == 1
    assert [c["id"] for c in everyone["clients"]] == ids + ["dev/06", "other-1"]
    dev = get(broker, "/api/v1/clients?prefix=" + quote("dev/"))
    assert dev["total"] == 6
    assert [c["id"] for c in dev["clients"]] == ids + ["dev/06"]
    page2 = get(broker, "/api/v1/clients?prefix=dev%2F&limit=2&page=2")
    assert (page2["total"], page2["page"], page2["limit"], page2["pages"]) == (6, 2, 2, 3)
    assert [c["id"] for c in page2["clients"]] == ["dev/03", "dev/04"]
    assert get(broker, "/api/v1/clients?prefix=dev%2F&limit=2&page=4")["clients"] == []
    assert get(broker, "/api/v1/clients?prefix=nothing")["total"] == 0
    offline = [c for c in everyone["clients"] if c["id"] == "dev/06"][0]
    assert offline["connected"] is False and offline["address"] is None
    assert offline["subscriptions"] == 1 and offline["protocol"] == "3.1.1"
    # Each from its home worker (hash of the id under a per-process key).
    assert all(0 <= c["worker"] < broker.workers for c in everyone["clients"])
    for c in online + [other]:
        c.stop()


@pytest.mark.broker_config(HTTP, "storage memory")
def test_one_client_and_its_subscriptions(broker):
    sub = PahoClient(broker, "dev/7", version=5, username="u7", keepalive=33)
    from paho.mqtt.subscribeoptions import SubscribeOptions
    sub.subscribe("b/+", options=SubscribeOptions(qos=1, noLocal=True, retainHandling=2))
    sub.subscribe("$share/g/c/#", qos=0)
    port = sub.c._sock.getsockname()[1]
    one = get(broker, "/api/v1/clients/" + quote("dev/7"))
    assert one["id"] == "dev/7" and one["connected"] is True
    assert one["protocol"] == "5.0" and one["username"] == "u7" and one["keep_alive"] == 33
    assert one["address"] == "127.0.0.1:%d" % port
    assert one["subscriptions"] == 2 and one["inflight"] == 0 and one["queued"] == 0
    assert one["bytes_received"] > 0 and one["bytes_sent"] > 0
    since = time.mktime(time.strptime(one["connected_since"], "%Y-%m-%dT%H:%M:%SZ")) \
        - time.timezone
    assert abs(since - time.time()) < 30
    subs = get(broker, "/api/v1/clients/dev%2F7/subscriptions")
    assert subs["id"] == "dev/7"
    assert subs["subscriptions"] == [
        {"filter": "$share/g/c/#", "qos": 0, "no_local": False, "retain_as_published": False,
         "retain_handling": 0, "subscription_identifier": None},
        {"filter": "b/+", "qos": 1, "no_local": True, "retain_as_published": False,
         "retain_handling": 2, "subscription_identifier": None},
    ]
    for path in ("/api/v1/clients/dev%2F8", "/api/v1/clients/dev%2F8/subscriptions",
                 "/api/v1/clients/dev/7"):
        status, _, body = call(broker.http_port, path)
        assert status == 404 and body["error"], path
    sub.stop()


@pytest.mark.broker_config(HTTP, "storage memory")
def test_client_ids_any_bytes_come_back_as_valid_json(broker):
    """Client ids are the clients' strings: quotes, backslashes, '%', '/',
    '#', '+' and non-ASCII are percent-encoded in the path and escaped in the
    JSON, and come back as they were."""
    weird = 'a"b\\c %/#+?&é€😀'
    c = broker.raw(m.V311)
    c.connect(weird)
    assert get(broker, "/api/v1/clients/" + quote(weird))["id"] == weird
    listed = get(broker, "/api/v1/clients?prefix=" + quote('a"b'))
    assert [x["id"] for x in listed["clients"]] == [weird]
    c.disconnect()


@pytest.mark.broker_config(HTTP, "storage memory")
def test_topics_by_subscribers_and_by_message_rate(broker):
    """GET /api/v1/topics: the subscription filters by how many sessions
    hold them, and the topics published to, heaviest first, with their
    estimated rate and how many sessions their ordinary subscriptions
    reach."""
    a = PahoClient(broker, unique("a"))
    b = PahoClient(broker, unique("b"))
    a.subscribe("t/+", qos=1)
    a.subscribe("t/#", qos=0)  # overlapping: still one subscriber of t/x
    b.subscribe("t/+", qos=0)
    b.subscribe("u/#", qos=0)
    got = get(broker, "/api/v1/topics")
    assert got["filters"] == [{"filter": "t/+", "subscribers": 2},
                              {"filter": "t/#", "subscribers": 1},
                              {"filter": "u/#", "subscribers": 1}]
    assert got["filters_total"] == 3 and got["subscriptions"] == 4
    assert got["topics"] == []
    assert get(broker, "/api/v1/topics?limit=1")["filters"] == [{"filter": "t/+",
                                                                 "subscribers": 2}]
    pub = PahoClient(broker, unique("p"))
    for i in range(400):
        pub.publish("t/x", b"m", qos=0)
        if i % 5 == 0:
            pub.publish("u/y/z", b"m", qos=0)
    # Every message through before asking (b gets both topics).
    assert len(b.get_n(480, timeout=20)) == 480
    topics = get(broker, "/api/v1/topics")["topics"]
    assert [t["topic"] for t in topics] == ["t/x", "u/y/z"], topics
    assert topics[0]["subscribers"] == 2 and topics[1]["subscribers"] == 1
    assert topics[0]["messages_per_second"] > topics[1]["messages_per_second"] > 0
    assert topics[0]["truncated"] is False
    for c in (a, b, pub):
        c.stop()


# ---- actions ----

@pytest.mark.broker_config(HTTP, "storage memory")
def test_disconnect_a_client(broker):
    """POST /api/v1/clients/ID/disconnect: a v5 client gets DISCONNECT 0x98
    (Administrative action), a 3.1.1 client is closed; the will goes out (it
    was not a normal disconnect) and the action is logged with who asked."""
    watcher = PahoClient(broker, unique("w"))
    watcher.subscribe("will/#", qos=1)
    v5 = broker.raw(m.V5)
    v5.connect("kick-5", will={"topic": "will/5", "payload": b"gone", "qos": 1})
    v3 = broker.raw(m.V311)
    v3.connect("kick-3")
    status, _, body = call(broker.http_port, "/api/v1/clients/kick-5/disconnect", method="POST")
    assert status == 200 and body == {"disconnected": "kick-5"}
    got = v5.wait_closed()
    assert [(p.type, p.rc) for p in got] == [(m.DISCONNECT, 0x98)]
    assert watcher.get().payload == b"gone"
    status, _, _ = call(broker.http_port, "/api/v1/clients/kick-3/disconnect", method="POST")
    assert status == 200
    assert v3.wait_closed() == []
    assert wait_log(broker, "POST /api/v1/clients/kick-5/disconnect: 200")
    assert "HTTP: 127.0.0.1:" in read_log(broker)
    status, _, _ = call(broker.http_port, "/api/v1/clients/nobody/disconnect", method="POST")
    assert status == 404
    kept = PahoClient(broker, "kept", clean=False)
    kept.stop()
    assert wait_for(lambda: not get(broker, "/api/v1/clients/kept")["connected"])
    status, _, body = call(broker.http_port, "/api/v1/clients/kept/disconnect", method="POST")
    assert status == 409 and "not connected" in body["error"]
    watcher.stop()


@pytest.mark.broker_config(HTTP, "storage sqlite")
def test_delete_a_session(broker):
    """DELETE /api/v1/sessions/ID ends a session, offline or online (the
    client is disconnected with 0x98): the client comes back to a new
    session, and the store forgets it (not back after a restart)."""
    off = PahoClient(broker, "sess-off", clean=False)
    off.subscribe("s/#", qos=1)
    off.stop()
    assert wait_for(lambda: not get(broker, "/api/v1/clients/sess-off")["connected"])
    status, _, body = call(broker.http_port, "/api/v1/sessions/sess-off", method="DELETE")
    assert status == 200 and body == {"deleted": "sess-off", "was_connected": False}
    assert call(broker.http_port, "/api/v1/clients/sess-off")[0] == 404
    on = broker.raw(m.V5)
    on.connect("sess-on", clean=False, properties={m.SESSION_EXPIRY: 3600})
    on.subscribe([("s/#", 1)])
    status, _, body = call(broker.http_port, "/api/v1/sessions/sess-on", method="DELETE")
    assert status == 200 and body == {"deleted": "sess-on", "was_connected": True}
    assert [(p.type, p.rc) for p in on.wait_closed()] == [(m.DISCONNECT, 0x98)]
    assert wait_for(lambda: call(broker.http_port, "/api/v1/clients/sess-on")[0] == 404)
    assert call(broker.http_port, "/api/v1/sessions/sess-on", method="DELETE")[0] == 404
    broker.stop()
    broker.start()
    assert wait_port(broker.http_port, broker.proc)
    assert get(broker, "/api/v1/clients")["total"] == 0
    back = broker.raw(m.V311)
    ack = back.connect("sess-off", clean=False)
    assert ack.session_present is False
    back.disconnect()


@pytest.mark.broker_config(HTTP, "storage sqlite", "sys_interval 0")
def test_retained_messages_listed_and_deleted(broker):
    """GET /api/v1/retained?filter=F lists retained messages (topic, QoS,
    payload as text when UTF-8 and as base64); DELETE ?topic=T clears one
    without sending anything to subscribers, and for good (the store too)."""
    pub = PahoClient(broker, unique("p"))
    pub.publish("r/a", b"hello", qos=1, retain=True)
    pub.publish("r/b/c", b"\xff\x00", qos=0, retain=True)
    pub.publish("s/x", b"other", qos=1, retain=True)
    assert wait_for(lambda: get(broker, "/api/v1/broker")["retained"] == 3)
    got = get(broker, "/api/v1/retained?filter=r/%23")
    assert got["total"] == 2
    assert got["retained"] == [
        {"topic": "r/a", "qos": 1, "bytes": 5, "payload": "hello",
         "payload_base64": "aGVsbG8=", "expires_in": None},
        {"topic": "r/b/c", "qos": 0, "bytes": 2, "payload": None,
         "payload_base64": "/wA=", "expires_in": None},
    ]
    assert [r["topic"] for r in get(broker, "/api/v1/retained?filter=%2B/%2B")["retained"]] \
        == ["r/a", "s/x"]
    assert [r["topic"] for r in get(broker, "/api/v1/retained?filter=r/+/c")["retained"]] \
        == ["r/b/c"]
    page = get(broker, "/api/v1/retained?filter=%23&limit=2&page=2")
    assert page["total"] == 3 and [r["topic"] for r in page["retained"]] == ["s/x"]
    status, _, _ = call(broker.http_port, "/api/v1/retained?filter=a/%23/b")
    assert status == 400
    watcher = PahoClient(broker, unique("w"))
    watcher.subscribe("r/#", qos=1)
    assert len(watcher.get_n(2)) == 2  # the two retained ones
    status, _, body = call(broker.http_port, "/api/v1/retained?topic=r/a", method="DELETE")
    assert status == 200 and body == {"deleted": "r/a"}
    watcher.nothing(0.5)  # no empty message went out for it
    assert [r["topic"] for r in get(broker, "/api/v1/retained?filter=r/%23")["retained"]] \
        == ["r/b/c"]
    status, _, _ = call(broker.http_port, "/api/v1/retained?topic=r/a", method="DELETE")
    assert status == 404
    status, _, _ = call(broker.http_port, "/api/v1/retained?topic=r/%23", method="DELETE")
    assert status == 400
    pub.stop()
    watcher.stop()
    broker.stop()
    broker.start()
    assert wait_port(broker.http_port, broker.proc)
    assert [r["topic"] for r in get(broker, "/api/v1/retained?filter=%23")["retained"]] \
        == ["r/b/c", "s/x"]


@pytest.mark.broker_config(HTTP, "storage memory")
def test_actions_from_another_origin_are_refused(broker):
    """A browser sends basic-auth credentials with any request to their
    origin, a cross-site form POST included: a request that changes
    something and names another Origin is refused (403); the same origin
    (the dashboard) and none (curl) pass."""
    port = broker.http_port
    status, _, body = call(port, "/api/v1/reload", method="POST",
                           headers={"Origin": "http://evil.example"})
    assert status == 403 and body["error"]
    status, _, _ = call(port, "/api/v1/reload", method="POST", headers={"Origin": "null"})
    assert status == 403
    status, _, _ = call(port, "/api/v1/reload", method="POST",
                        headers={"Origin": "http://127.0.0.1:%d" % port})
    assert status == 200
    # Reads are not refused (the browser does not let the other site see
    # the answer).
    status, _, _ = call(port, "/api/v1/broker", headers={"Origin": "http://evil.example"})
    assert status == 200


def test_a_bridge_session_is_not_the_api_s_to_end(tmp_path):
    """A bridge's local session (mosquitto as the remote) is listed like any,
    but is the broker's own: disconnecting or deleting it is refused (409)
    and the bridge goes on forwarding."""
    from bridge_peer import Pair, connected
    port = free_port()
    p = Pair(tmp_path, 2, ["x/# out 0"], bridge_extra=["remote_clientid brid"],
             local_extra=["http_listener %d" % port])
    try:
        assert connected(p, "x/probe")
        ids = [c["id"] for c in call(port, "/api/v1/clients")[2]["clients"]]
        assert "local.brid" in ids, ids
        status, _, body = call(port, "/api/v1/clients/local.brid/disconnect", method="POST")
        assert status == 409 and "bridge" in body["error"]
        status, _, body = call(port, "/api/v1/sessions/local.brid", method="DELETE")
        assert status == 409 and "bridge" in body["error"]
        assert connected(p, "x/probe")
    finally:
        p.stop()
