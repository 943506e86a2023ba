"""paho-mqtt (1.6 API) helpers with bounded waits, and small utilities."""

import queue
import subprocess
import threading
import time
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

TIMEOUT = 5.0

PROTOCOLS = {3: mqtt.MQTTv31, 4: mqtt.MQTTv311, 5: mqtt.MQTTv5}


def unique(prefix="t"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


def wait_for(pred, timeout=TIMEOUT, interval=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return pred()


def read_log(broker):
    """The broker's log file (anything with a .log path) as text so far."""
    with open(broker.log, errors="replace") as f:
        return f.read()


def wait_log(broker, *texts, timeout=5):
    """Waits (bounded) until every text is in the broker's log: the log
    writer thread (util/log.c) may write a line after the event a test saw."""
    return wait_for(lambda: all(t in read_log(broker) for t in texts), timeout)


def props(packet_type, **kw):
    """paho Properties for `packet_type` (e.g. PacketTypes.PUBLISH) from
    keyword arguments named as paho names them (MessageExpiryInterval...)."""
    p = Properties(packet_type)
    for k, v in kw.items():
        setattr(p, k, v)
    return p


class PahoClient:
    """A paho client running its network loop in a thread, recording what
    it receives in queues so that tests can wait with timeouts."""

    def __init__(self, broker, client_id=None, version=4, clean=True,
                 keepalive=60, will=None, connect_props=None, username=None,
                 password=None, connect=True, expect_rc=0):
        self.broker = broker
        self.version = version
        self.client_id = client_id if client_id is not None else unique("paho")
        kw = {"client_id": self.client_id, "protocol": PROTOCOLS[version]}
        if version != 5:
            kw["clean_session"] = clean
        self.c = mqtt.Client(**kw)
        self.clean = clean
        self.keepalive = keepalive
        self.connect_props = connect_props
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.subacks = {}
        self.unsubacks = {}
        self.disconnects = queue.Queue()
        self.published = set()
        self.lock = threading.Lock()
        self.c.on_connect = self._on_connect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_unsubscribe = self._on_unsubscribe
        self.c.on_disconnect = self._on_disconnect
        self.c.on_publish = self._on_publish
        if will is not None:
            self.c.will_set(**will)
        if username is not None:
            self.c.username_pw_set(username, password)
        self.c.reconnect_delay_set(60, 120)  # never reconnect during a test
        if connect:
            self.connect(expect_rc)

    # -- callbacks (paho thread)
    def _on_connect(self, c, ud, flags, rc, properties=None):
        self.connacks.put((flags, rc, properties))

    def _on_message(self, c, ud, msg):
        self.messages.put(msg)

    def _on_subscribe(self, c, ud, mid, granted, properties=None):
        with self.lock:
            self.subacks[mid] = granted

    def _on_unsubscribe(self, c, ud, mid, properties=None, reasoncodes=None):
        with self.lock:
            self.unsubacks[mid] = reasoncodes

    def _on_disconnect(self, c, ud, rc, properties=None):
        self.disconnects.put((rc, properties))

    def _on_publish(self, c, ud, mid):
        with self.lock:
            self.published.add(mid)

    # -- actions
    def connect(self, expect_rc=0):
        kw = {}
        if self.version == 5:
            kw["clean_start"] = self.clean
            if self.connect_props is not None:
                kw["properties"] = self.connect_props
        self.c.connect(self.broker.host, self.broker.port, self.keepalive, **kw)
        self.c.loop_start()
        flags, rc, properties = self.connacks.get(timeout=TIMEOUT)
        self.connack_flags = flags
        self.connack_props = properties
        self.rc = rc
        if expect_rc is not None:
            assert rc == expect_rc, "CONNACK rc %r" % (rc,)
        return flags, rc, properties

    def subscribe(self, topic, qos=0, options=None, properties=None):
        """Subscribe and wait for the SUBACK; returns the granted list
        (v3: ints, v5: ReasonCodes)."""
        if options is not None:
            rc, mid = self.c.subscribe(topic, options=options, properties=properties)
        elif self.version == 5:
            rc, mid = self.c.subscribe(topic, qos, properties=properties)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        assert wait_for(lambda: mid in self.subacks), "no SUBACK for %r" % (topic,)
        return self.subacks[mid]

    def unsubscribe(self, topic):
        rc, mid = self.c.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS
        assert wait_for(lambda: mid in self.unsubacks), "no UNSUBACK"
        return self.unsubacks[mid]

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None,
                wait=True):
        info = self.c.publish(topic, payload, qos, retain, properties=properties)
        if wait and qos > 0:
            assert wait_for(lambda: info.mid in self.published), \
                "publish of %r not acknowledged" % (topic,)
        return info

    def get(self, timeout=TIMEOUT):
        """Next message or AssertionError."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no message within %.1fs" % timeout)

    def get_n(self, n, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        out = []
        while len(out) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                out.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                break
        return out

    def drain(self, timeout=0.3):
        """Every message arriving within `timeout`."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return out
            try:
                out.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                return out

    def nothing(self, timeout=0.3):
        got = self.drain(timeout)
        assert not got, "unexpected messages: %r" % (
            [(m.topic, m.payload) for m in got],)

    def disconnect(self, reasoncode=None, properties=None):
        try:
            if self.version == 5 and reasoncode is not None:
                from paho.mqtt.reasoncodes import ReasonCodes
                self.c.disconnect(ReasonCodes(PacketTypes.DISCONNECT, identifier=reasoncode),
                                  properties)
            else:
                self.c.disconnect()
            wait_for(lambda: not self.disconnects.empty(), 2.0)
        finally:
            self.c.loop_stop()

    def stop(self):
        """Stop the loop and drop the socket without DISCONNECT."""
        self.c.loop_stop()
        try:
            self.c.socket().close()
        except Exception:
            pass


class Probe:
    """A well-behaved subscriber connected for the whole test: checks that a
    misbehaving client did not harm anyone else."""

    def __init__(self, broker, topic=None):
        from mqtt_raw import RawClient, V311
        self.broker = broker
        self.topic = topic or unique("probe")
        self.sub = RawClient(broker.host, broker.port, V311)
        self.sub.connect(unique("probe-sub"))
        ack = self.sub.subscribe([(self.topic, 1)])
        assert ack.codes == [1]
        self.n = 0

    def check(self):
        """Publish from a fresh connection and assert delivery."""
        from mqtt_raw import RawClient, V311
        self.n += 1
        payload = ("probe %d" % self.n).encode()
        pub = RawClient(self.broker.host, self.broker.port, V311)
        pub.connect(unique("probe-pub"))
        pub.publish(self.topic, payload, qos=1, pid=7)
        pub.disconnect()
        p = self.sub.recv_publish(timeout=TIMEOUT)
        assert p.topic == self.topic and p.payload == payload
        assert self.broker.alive(), "broker died"

    def close(self):
        self.sub.disconnect()


def run_tool(args, timeout=TIMEOUT, check=True):
    """Run mosquitto_pub / mosquitto_sub with a bounded time."""
    cp = subprocess.run(args, capture_output=True, timeout=timeout)
    if check:
        assert cp.returncode == 0, "%r failed (%d): %s %s" % (
            args, cp.returncode, cp.stdout, cp.stderr)
    return cp
