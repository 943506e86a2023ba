// MQTT.js round trip for tern's interop tests: subscribe, publish one
// message at each QoS, wait for all three back, print a JSON report.
// Usage: node roundtrip.js URL PROTOCOL_VERSION TOPIC [CONNECT_PROPERTIES_JSON]
// (e.g. '{"topicAliasMaximum":5}': MQTT.js then resolves the aliases the
// broker sends, and the report says which alias each message came with).
'use strict';
const mqtt = require('mqtt');

const [url, version, topic, props] = process.argv.slice(2);
const report = { connected: false, granted: null, received: [], error: null };
const timer = setTimeout(() => finish('timeout'), 8000);

const client = mqtt.connect(url, {
  protocolVersion: Number(version),
  clientId: 'mqttjs-' + Math.random().toString(16).slice(2, 10),
  reconnectPeriod: 0,
  connectTimeout: 5000,
  properties: props ? JSON.parse(props) : undefined,
});

let done = false;
function finish(error) {
  if (done) return; // ending the client may emit one more error
  done = true;
  clearTimeout(timer);
  report.error = error || null;
  client.end(true, () => {
    process.stdout.write(JSON.stringify(report) + '\n');
    process.exit(error ? 1 : 0);
  });
}

client.on('error', (e) => finish(String(e)));
client.on('connect', () => {
  report.connected = true;
  client.subscribe(topic, { qos: 2 }, (err, granted) => {
    if (err) return finish(String(err));
    report.granted = granted.map((g) => g.qos);
    for (const qos of [0, 1, 2]) {
      client.publish(topic, 'qos' + qos, { qos }, (e) => { if (e) finish(String(e)); });
    }
  });
});
client.on('message', (t, payload, packet) => {
  const alias = packet.properties ? packet.properties.topicAlias : undefined;
  report.received.push({ topic: t, payload: payload.toString(), qos: packet.qos, alias });
  if (report.received.length === 3) finish(null);
});
