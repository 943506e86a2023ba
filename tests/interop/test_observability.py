"""What operators see: $SYS topics as mosquitto publishes them, a Prometheus
/metrics endpoint scraped with a real HTTP client and parsed with the
Prometheus project's own parser (Debian's python3-prometheus-client), and
the logging directives (log_dest file, log_timestamp_format, log_type,
connection_messages)."""

import re
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

import mqtt_raw as m

pytestmark = pytest.mark.ternd_only



def scrape(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = s.name + ("{%s}" % ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
                            if s.labels else "")
            samples[key] = s.value
    return samples


def sys_values(broker, wait=2.5):
    """Subscribes to $SYS/broker/# and collects topic -> payload."""
    c = broker.raw(m.V311)
    c.connect("sys-reader")
    c.subscribe([("$SYS/broker/#", 0)])
    got = {}
    for p in c.early + c.recv_all(wait):
        if p.type == m.PUBLISH:
            got[p.topic] = p.payload.decode()
    c.disconnect()
    return got


@pytest.mark.broker_config("sys_interval 1", "storage memory")
def test_sys_topics_as_mosquitto_publishes_them(broker):
    """$SYS/broker/... topics, retained, updated every sys_interval: version,
    uptime, clients, messages, bytes, subscriptions, retained count and the
    load averages."""
    pub = broker.raw(m.V311)
    pub.connect("sys-pub")
    for i in range(5):
        pub.publish("sys/x", b"v", qos=1, pid=i + 1)
    got = sys_values(broker)
    pub.disconnect()
    for topic in ("version", "uptime", "clients/connected", "clients/total",
                  "clients/maximum", "messages/received", "messages/sent",
                  "publish/messages/received", "bytes/received", "bytes/sent",
                  "subscriptions/count", "retained messages/count",
                  "load/messages/received/1min", "load/publish/received/15min",
                  "load/bytes/sent/5min", "load/connections/1min"):
        assert "$SYS/broker/" + topic in got, (topic, sorted(got))
    assert got["$SYS/broker/version"].startswith("ternd version ")
    assert re.fullmatch(r"\d+ seconds", got["$SYS/broker/uptime"])
    assert int(got["$SYS/broker/publish/messages/received"]) >= 5
    assert int(got["$SYS/broker/clients/connected"]) >= 1


@pytest.mark.broker_config("sys_interval 1", "storage memory")
def test_sys_topics_are_not_matched_by_a_leading_wildcard(broker):
    """'#' does not match $SYS topics [MQTT-4.7.2-1]."""
    c = broker.raw(m.V311)
    c.connect("hash-all")
    c.subscribe([("#", 0)])
    assert not [p for p in c.recv_all(1.5) if p.type == m.PUBLISH and
                p.topic.startswith("$SYS")]
    c.disconnect()


@pytest.mark.broker_config("http_listener {http_port}", "storage sqlite")
def test_prometheus_metrics_count_what_happens(broker):
    """GET /metrics: valid text exposition; connections, sessions,
    subscriptions, messages by QoS, bytes, drops, retained, store commit
    latency and per-worker utilisation are there and move with traffic."""
    if broker.workers != 1:
        pytest.skip("one scrape endpoint per port: run once")
    before = scrape(broker.http_port)
    sub = broker.raw(m.V311)
    sub.connect("prom-sub", clean=False)
    sub.subscribe([("prom/#", 2)])
    pub = broker.raw(m.V311)
    pub.connect("prom-pub")
    for q in (0, 1, 2):
        pub.publish("prom/t", b"x" * 10, qos=q, pid=q + 1)
    pub.publish("prom/ret", b"r", qos=1, retain=True, pid=9)
    for _ in range(4):
        sub.recv_publish()
    time.sleep(0.3)
    after = scrape(broker.http_port)
    for q in range(3):
        k = 'tern_messages_received_total{qos=%d}' % q
        assert after[k] - before.get(k, 0) >= 1, k
    assert after["tern_messages_sent_total{qos=2}"] >= 1
    assert after["tern_connections"] >= 2
    assert after["tern_sessions{state=online}"] >= 2
    assert after["tern_subscriptions"] >= 1
    assert after["tern_retained_messages"] >= 1
    assert after["tern_bytes_received_total"] > before["tern_bytes_received_total"]
    assert after["tern_store_commit_seconds_count"] >= 1
    assert "tern_messages_dropped_total{reason=queue_full}" in after
    assert "tern_worker_utilisation{worker=0}" in after
    with pytest.raises(urllib.error.HTTPError) as e:
        scrape(broker.http_port, "/other")
    assert e.value.code == 404
    sub.disconnect()
    pub.disconnect()


@pytest.mark.broker_config("log_dest file broker-file.log", "log_type all",
                           "log_timestamp_format %Y-%m-%dT%H:%M:%S",
                           "connection_messages false", "storage memory")
def test_log_file_format_and_connection_messages(broker):
    """log_dest file writes there, with log_timestamp_format; with
    connection_messages false the connect line is not written, while
    subscribe lines (log_type all) are."""
    c = broker.raw(m.V311)
    c.connect("quiet-client")
    c.subscribe([("log/t", 0)])
    c.disconnect()
    time.sleep(0.3)
    with open(broker.dir + "/broker-file.log") as f:
        log = f.read()
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d: ", log, re.M), log
    assert "quiet-client 0 log/t" in log
    assert "New client connected" not in log
