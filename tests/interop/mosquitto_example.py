#!/usr/bin/python3
"""Which directives of Debian's example mosquitto.conf does ternd refuse?

Every directive of /usr/share/doc/mosquitto/examples/mosquitto.conf (each
is there commented out, `#name value`) is given a value that makes sense
and fed to `ternd --test-config -c FILE` on its own, after the lines its
context needs (a TLS listener for crlfile, a `connection` block for a bridge
directive); ternd reads and checks the file and exits, 0 when it takes it.
A directive refused is listed with ternd's message. Then the whole example,
every directive at once, in the example's order, less the refused ones.

    /usr/bin/python3 tests/interop/mosquitto_example.py [TERND]

prints the refused directives and exits 1 when there are any.
test_config_example.py runs the same.
"""

import gzip
import os
import re
import subprocess
import sys
import tempfile

EXAMPLE = "/usr/share/doc/mosquitto/examples/mosquitto.conf"

# Values that make sense, in the example's terms. Files are named, not
# opened: --test-config checks the configuration, not the files.
VALUES = {
    "per_listener_settings": "false",
    "allow_zero_length_clientid": "true",
    "auto_id_prefix": "auto-",
    "check_retain_source": "true",
    "max_inflight_bytes": "0",
    "max_inflight_messages": "20",
    "max_keepalive": "65535",
    "max_packet_size": "0",
    "max_queued_bytes": "0",
    "max_qos": "2",
    "max_queued_messages": "1000",
    "memory_limit": "0",
    "message_size_limit": "0",
    "persistent_client_expiration": "14d",
    "pid_file": "/run/mosquitto/mosquitto.pid",
    "queue_qos0_messages": "false",
    "retain_available": "true",
    "set_tcp_nodelay": "false",
    "sys_interval": "10",
    "upgrade_outgoing_qos": "false",
    "user": "mosquitto",
    "listener": "1883 127.0.0.1",
    "socket_domain": "ipv4",
    "bind_interface": "lo",
    "http_dir": "/var/www/mqtt",
    "max_connections": "-1",
    "mount_point": "site1/",
    "protocol": "mqtt",
    "use_username_as_clientid": "false",
    "websockets_headers_size": "4096",
    "certfile": "/etc/mosquitto/certs/server.crt",
    "keyfile": "/etc/mosquitto/certs/server.key",
    "ciphers": "ECDHE-RSA-AES256-GCM-SHA384",
    "ciphers_tls1.3": "TLS_AES_256_GCM_SHA384",
    "crlfile": "/etc/mosquitto/certs/crl.pem",
    "dhparamfile": "/etc/mosquitto/certs/dhparam.pem",
    "require_certificate": "false",
    "cafile": "/etc/mosquitto/ca_certificates/ca.crt",
    "capath": "/etc/mosquitto/ca_certificates",
    "use_identity_as_username": "false",
    "psk_hint": "tern",
    "autosave_interval": "1800",
    "autosave_on_changes": "false",
    "persistence": "false",
    "persistence_file": "mosquitto.db",
    "persistence_location": "/var/lib/mosquitto/",
    "log_dest": "stderr",
    "log_type": "error",
    "connection_messages": "true",
    "log_facility": "5",
    "log_timestamp": "true",
    "log_timestamp_format": "%Y-%m-%dT%H:%M:%S",
    "websockets_log_level": "0",
    "clientid_prefixes": "secure-",
    "allow_anonymous": "false",
    "password_file": "/etc/mosquitto/passwd",
    "psk_file": "/etc/mosquitto/pskfile",
    "acl_file": "/etc/mosquitto/aclfile",
    "auth_plugin": "/usr/lib/mosquitto-auth.so",
    "connection": "to-remote",
    "address": "127.0.0.1:1884",
    "topic": "sensors/# both 1 local/ remote/",
    "bridge_bind_address": "127.0.0.1",
    "bridge_attempt_unsubscribe": "true",
    "bridge_protocol_version": "mqttv311",
    "cleansession": "false",
    "idle_timeout": "60",
    "keepalive_interval": "60",
    "local_clientid": "bridge-local",
    "notifications": "true",
    "notification_topic": "$SYS/broker/connection/to-remote/state",
    "remote_clientid": "bridge-remote",
    "remote_password": "secret",
    "remote_username": "bridge",
    "restart_timeout": "5 30",
    "round_robin": "false",
    "start_type": "automatic",
    "threshold": "10",
    "try_private": "true",
    "bridge_outgoing_retain": "true",
    "bridge_max_packet_size": "0",
    "bridge_cafile": "/etc/mosquitto/ca_certificates/ca.crt",
    "bridge_capath": "/etc/mosquitto/ca_certificates",
    "bridge_alpn": "mqtt",
    "bridge_insecure": "false",
    "bridge_certfile": "/etc/mosquitto/certs/bridge.crt",
    "bridge_keyfile": "/etc/mosquitto/certs/bridge.key",
    "bridge_identity": "bridge",
    "bridge_psk": "deadbeef",
    "include_dir": None,  # a directory of the run's own
}

BRIDGE = {"address", "topic", "bridge_bind_address", "bridge_attempt_unsubscribe",
          "bridge_protocol_version", "cleansession", "idle_timeout", "keepalive_interval",
          "local_clientid", "notifications", "notification_topic", "remote_clientid",
          "remote_password", "remote_username", "restart_timeout", "round_robin",
          "start_type", "threshold", "try_private", "bridge_outgoing_retain",
          "bridge_max_packet_size", "bridge_cafile", "bridge_capath", "bridge_alpn",
          "bridge_insecure", "bridge_certfile", "bridge_keyfile", "bridge_identity",
          "bridge_psk"}
# A TLS listener's directives, after the certificate and key it needs.
TLS = {"cafile", "capath", "crlfile", "dhparamfile", "require_certificate",
       "use_identity_as_username", "ciphers", "ciphers_tls1.3"}
PSK = {"psk_hint"}


def example_directives(path=EXAMPLE):
    """The directives of the example, in its order, each once."""
    opener = gzip.open if path.endswith(".gz") else open
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path, opener = path + ".gz", gzip.open
    with opener(path, "rt") as f:
        text = f.read()
    seen = []
    for m in re.finditer(r"^#([a-z][a-z0-9_.]*)(?:[ \t]|$)", text, re.M):
        if m.group(1) not in seen:
            seen.append(m.group(1))
    return seen


def context(name):
    """The lines a directive needs before it."""
    lines = ["listener 1883 127.0.0.1"]
    if name in TLS:
        lines += ["certfile /etc/mosquitto/certs/server.crt",
                  "keyfile /etc/mosquitto/certs/server.key"]
    elif name == "certfile":
        lines += ["keyfile /etc/mosquitto/certs/server.key"]
    elif name == "keyfile":
        lines += ["certfile /etc/mosquitto/certs/server.crt"]
    if name in PSK:
        lines += ["psk_file /etc/mosquitto/pskfile"]
    if name == "use_identity_as_username":
        lines += ["require_certificate true"]
    if name in BRIDGE or name == "connection":
        # mosquitto, too, refuses a bridge without an address or a topic.
        lines += ["connection to-remote"]
        if name != "address":
            lines += ["address 127.0.0.1:1884"]
        if name != "topic":
            lines += ["topic sensors/# both 1 local/ remote/"]
    if name in ("bridge_certfile", "bridge_keyfile"):
        lines += ["bridge_cafile /etc/mosquitto/ca_certificates/ca.crt"]
        other = "bridge_keyfile" if name == "bridge_certfile" else "bridge_certfile"
        lines += [line(other, None)]
    if name == "remote_password":
        lines += [line("remote_username", None)]
    if name == "bridge_psk":
        lines += [line("bridge_identity", None)]
    if name == "bridge_identity":
        lines += [line("bridge_psk", None)]
    return lines


def line(name, workdir):
    value = VALUES.get(name)
    if name == "include_dir":
        value = os.path.join(workdir, "conf.d")
        os.makedirs(value, exist_ok=True)
    return name if value is None else "%s %s" % (name, value)


def test_config(ternd, lines, workdir):
    """(exit status, stderr) of ternd --test-config on these lines."""
    conf = os.path.join(workdir, "example.conf")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    cp = subprocess.run([ternd, "--test-config", "-c", conf], capture_output=True,
                        timeout=10, stdin=subprocess.DEVNULL)
    return cp.returncode, cp.stderr.decode("utf-8", "replace").strip()


def refused_directives(ternd, workdir):
    """{directive: ternd's message} for every directive of the example that
    ternd refuses, each tried on its own."""
    refused = {}
    for name in example_directives():
        lines = context(name)
        if name not in ("listener", "connection"):
            lines = lines + [line(name, workdir)]
        rc, err = test_config(ternd, lines, workdir)
        if rc != 0:
            refused[name] = err
    return refused


def whole_example(ternd, workdir, leave_out=()):
    """ternd --test-config on every directive of the example at once (those
    in leave_out left out), in an order that gives each its context."""
    names = [n for n in example_directives() if n not in leave_out]
    top = [n for n in names if n not in BRIDGE and n not in TLS and n not in PSK and
           n not in ("listener", "connection", "certfile", "keyfile", "psk_file")]
    lines = [line(n, workdir) for n in top]
    lines += ["listener 1883 127.0.0.1"]
    lines += [line(n, workdir) for n in ("certfile", "keyfile") if n in names]
    lines += [line(n, workdir) for n in names if n in TLS and n != "use_identity_as_username"]
    if "use_identity_as_username" in names:
        lines += ["require_certificate true", line("use_identity_as_username", workdir)]
    if "psk_hint" in names:
        lines += ["listener 8883 127.0.0.1", line("psk_hint", workdir), line("psk_file", workdir)]
    if "connection" in names:
        # Certificate TLS and TLS-PSK exclude each other on one bridge (in
        # mosquitto too): the PSK pair goes into a second bridge.
        psk = {"bridge_identity", "bridge_psk"}
        lines += [line("connection", workdir)]
        lines += [line(n, workdir) for n in names if n in BRIDGE and n not in psk]
        if psk <= set(names):
            lines += ["connection to-remote-psk", "address 127.0.0.1:8884",
                      "topic psk/# out 1"] + [line(n, workdir) for n in sorted(psk)]
    return test_config(ternd, lines, workdir)


def main(argv):
    ternd = argv[1] if len(argv) > 1 else os.environ.get("TERND", "build/ternd")
    with tempfile.TemporaryDirectory() as d:
        names = example_directives()
        refused = refused_directives(ternd, d)
        print("%d directives in %s; ternd takes %d, refuses %d" %
              (len(names), EXAMPLE, len(names) - len(refused), len(refused)))
        for name, err in refused.items():
            print("  %-28s %s" % (name, err.splitlines()[-1] if err else ""))
        rc, err = whole_example(ternd, d, leave_out=refused)
        print("the whole example less those: %s" % ("taken" if rc == 0 else "refused: " + err))
    return 1 if refused or rc else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
