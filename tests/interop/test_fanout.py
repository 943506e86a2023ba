"""Fan-out of messages of every size to several subscribers: payloads
arrive byte for byte and, per QoS, in publish order (ternd sends large
payloads by reference to the shared message, small ones copied; both paths
and the switch between them are covered)."""

import os
import random
import time

import paho.mqtt.client as mqtt
import pytest

SIZES = [0, 1, 100, 2047, 2048, 2049, 5000, 70000, 300000]


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_fanout_payloads_intact_and_in_order(broker, qos):
    """4 subscribers (sub QoS 1 and 2) get every payload intact, in the
    order published [MQTT-4.6.0-6] (ordered topic)."""
    rnd = random.Random(qos)
    msgs = [os.urandom(rnd.choice(SIZES)) for _ in range(40)]
    got = {}
    subs = []
    for i in range(4):
        g = got.setdefault(i, [])
        c = mqtt.Client(client_id="fo-sub-%d-%d" % (qos, i))
        c.on_message = lambda cl, u, m, g=g: g.append(m.payload)
        c.connect(broker.host, broker.port)
        c.loop_start()
        c.subscribe("fo/t", 1 + i % 2)
        subs.append(c)
    time.sleep(0.5)
    pub = mqtt.Client(client_id="fo-pub-%d" % qos)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    try:
        for m in msgs:
            pub.publish("fo/t", m, qos=qos)
        deadline = time.time() + 15
        while time.time() < deadline and any(len(g) < len(msgs) for g in got.values()):
            time.sleep(0.05)
        for i, g in got.items():
            assert len(g) == len(msgs), (i, len(g))
            assert g == msgs, "subscriber %d: payloads differ or out of order" % i
    finally:
        for c in subs + [pub]:
            c.disconnect()
            c.loop_stop()
