"""Interop with mosquitto_pub / mosquitto_sub (mosquitto-clients)."""

import subprocess
import time

import pytest

from helpers import PahoClient, run_tool, unique

VERSIONS = ["mqttv311", "mqttv5"]


def start_sub(broker, topic, count, version, qos=0, extra=()):
    """Start mosquitto_sub -C count and wait until its SUBACK (-d output)."""
    args = ["stdbuf", "-oL", "mosquitto_sub", "-h", broker.host, "-p", str(broker.port),
            "-V", version, "-t", topic, "-q", str(qos), "-C", str(count),
            "-W", "5", "-d", "-i", unique("msub")] + list(extra)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if b"SUBACK" in line:
            return proc, lines
    proc.kill()
    proc.wait()
    raise AssertionError("mosquitto_sub did not subscribe: %r" % lines)


def finish(proc, lines):
    try:
        out, _ = proc.communicate(timeout=6)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError("mosquitto_sub did not finish: %r" % (lines,))
    assert proc.returncode == 0, (proc.returncode, lines, out)
    payloads = [l for l in out.splitlines() if not l.startswith(b"Client ")
                and not l.startswith(b"Received ") and not l.startswith(b"Subscribed")]
    return payloads


@pytest.mark.usefixtures("tools_available")
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("qos", [0, 1, 2])
def test_mosquitto_pub_to_mosquitto_sub(broker, version, qos):
    """mosquitto_pub → broker → mosquitto_sub -C 3 at each QoS: three messages
    arrive in order ([MQTT-4.6.0-6]) and the subscriber exits after -C 3."""
    t = unique("cli")
    proc, lines = start_sub(broker, t, 3, version, qos)
    for i in range(3):
        run_tool(["mosquitto_pub", "-h", broker.host, "-p", str(broker.port),
                  "-V", version, "-t", t, "-q", str(qos), "-m", "msg-%d" % i])
    assert finish(proc, lines) == [b"msg-0", b"msg-1", b"msg-2"]


@pytest.mark.usefixtures("tools_available")
@pytest.mark.parametrize("version", VERSIONS)
def test_mosquitto_pub_retained_seen_by_later_mosquitto_sub(broker, version):
    """mosquitto_pub -r stores a retained message ([MQTT-3.3.1-5]) that a
    later mosquitto_sub -C 1 receives at once ([MQTT-3.3.1-6]); -r -n clears
    it ([MQTT-3.3.1-10])."""
    t = unique("clir")
    base = ["-h", broker.host, "-p", str(broker.port), "-V", version, "-t", t]
    run_tool(["mosquitto_pub"] + base + ["-q", "1", "-r", "-m", "kept"])
    cp = run_tool(["mosquitto_sub"] + base + ["-C", "1", "-W", "4", "-v"], timeout=6)
    assert cp.stdout.strip() == ("%s kept" % t).encode()
    run_tool(["mosquitto_pub"] + base + ["-r", "-n"])
    cp = run_tool(["mosquitto_sub"] + base + ["-C", "1", "-W", "1"], timeout=4, check=False)
    assert cp.stdout.strip() == b""


@pytest.mark.usefixtures("tools_available")
@pytest.mark.parametrize("version", VERSIONS)
def test_mosquitto_pub_to_paho_and_paho_to_mosquitto_sub(broker, version):
    """Cross-client interop: mosquitto_pub → paho subscriber, and paho
    publisher → mosquitto_sub, with QoS 1."""
    t = unique("x")
    v = 5 if version == "mqttv5" else 4
    p = PahoClient(broker, version=v)
    p.subscribe(t, 1)
    run_tool(["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-V", version,
              "-t", t, "-q", "1", "-m", "from-cli"])
    assert p.get().payload == b"from-cli"
    proc, lines = start_sub(broker, t + "/back", 1, version, 1)
    p.publish(t + "/back", b"from-paho", qos=1)
    assert finish(proc, lines) == [b"from-paho"]
    p.disconnect()
