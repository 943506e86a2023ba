"""The dashboard at / of the http_listener, in a real browser: Debian's
chromium, headless, driven by playwright-core from npm (installed by this
test into tests/interop/dashboard/node_modules, which git ignores) with a
fresh profile each run. The page loads, shows the connections of the test's
clients, its rate chart moves while a publisher runs, its topics view shows
the publisher's topic, and its Disconnect button disconnects a client (a
v5 one, which gets DISCONNECT 0x98).

TERN_DASHBOARD_SCREENSHOT=PATH keeps a screenshot of the page taken during
the run, TERN_DASHBOARD_SETTLE=S seconds of chart into it
(docs/images/dashboard.png is one: S=25, 2 workers)."""

import json
import os
import shutil
import subprocess
import threading
import urllib.request

import pytest

import mqtt_raw as m
from helpers import PahoClient, unique

pytestmark = pytest.mark.ternd_only

HERE = os.path.dirname(os.path.abspath(__file__))
DASH = os.path.join(HERE, "dashboard")
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def driver():
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the dashboard test (scripts/deps.sh test)")
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is needed for the dashboard test (scripts/deps.sh test)")
    if not os.path.isdir(os.path.join(DASH, "node_modules", "playwright-core")):
        r = subprocess.run(["npm", "install", "--no-package-lock", "--no-audit", "--no-fund"],
                           cwd=DASH, capture_output=True, timeout=300)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
    return os.path.join(DASH, "check.js")


@pytest.mark.broker_config("http_listener {http_port}", "storage memory", "sys_interval 0")
def test_dashboard_in_headless_chromium(broker, driver, tmp_path):
    url = "http://127.0.0.1:%d/" % broker.http_port
    with urllib.request.urlopen(url, timeout=5) as r:
        page = r.read().decode()
        assert r.headers["Content-Type"].startswith("text/html")
        assert "connect-src 'self'" in r.headers["Content-Security-Policy"]
    # Everything is in the page: no script, style or image from elsewhere.
    assert "src=" not in page.replace('id="', "") and "href=" not in page

    watchers = [PahoClient(broker, unique("dash")) for _ in range(2)]
    for w in watchers:
        w.subscribe("dash/#", qos=0)
    victim = broker.raw(m.V5)
    victim.connect("dash-victim")
    stop = threading.Event()
    pub = PahoClient(broker, unique("dash-pub"))
    pub.publish("dash/state", b"running", qos=1, retain=True)

    def publish():
        while not stop.wait(0.02):
            pub.publish("dash/rate", b"tick", qos=0)

    t = threading.Thread(target=publish, daemon=True)
    t.start()
    try:
        cfg = {"url": url, "connections": 4, "disconnect": "dash-victim", "topic": "dash/rate",
               "profile": str(tmp_path / "chromium-profile"),
               "screenshot": os.environ.get("TERN_DASHBOARD_SCREENSHOT"),
               "settle": float(os.environ.get("TERN_DASHBOARD_SETTLE", "0"))}
        r = subprocess.run(["node", driver, json.dumps(cfg)], capture_output=True, text=True,
                           timeout=120 + cfg["settle"], cwd=DASH)
    finally:
        stop.set()
        t.join(5)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["ok"], out
    assert out["version"].startswith("version ")
    assert out["connections"] == 4 and out["rows"] == 4
    assert out["chart_moved"] and out["rate_in"] > 0
    assert out["topic_shown"]
    assert out["disconnected"]
    # The button went through the API: the client got 0x98.
    assert [(p.type, p.rc) for p in victim.wait_closed()] == [(m.DISCONNECT, 0x98)]
    for c in watchers + [pub]:
        c.stop()
