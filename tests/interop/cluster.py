"""Starts what a tern cluster runs on, for the interop tests: nats-server
processes (one, or a JetStream cluster of N) and ternd nodes pointed at them.

Everything listens on 127.0.0.1 on ports from conftest.free_port(), keeps its
files (config, log, JetStream store) in a directory the caller gives (a pytest
tmp dir), and is ended by its own PID: SIGTERM then SIGKILL, or SIGKILL at
once for the kill -9 tests. Nothing here waits unboundedly.

  NatsServer   one nats-server (-js): start / stop / kill / restart
               (restart keeps its ports and its store dir, so a killed
               JetStream peer comes back as the same peer), ready() waits for
               /healthz on its monitoring port.
  NatsCluster  N NatsServers routed to each other as one JetStream cluster;
               start() returns once every server reports healthy (its
               JetStream has a meta leader) and has routes to all the others.
  TerndNode    a conftest.Broker with the cluster directives (cluster_nats,
               cluster_node_name, cluster_name, ...); kill() is kill -9,
               restart() comes back on the same MQTT port.
  Cluster      a NatsCluster and M TerndNodes: node i points at nats-server
               i mod N (or at all of them, nats="all").

The pytest fixtures that use these are in conftest.py (nats_server,
nats_cluster, tern_cluster, cluster_factory).
"""

import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid

from conftest import HOST, Broker, free_port, tail, wait_port

NATS_BIN = os.environ.get("NATS_SERVER", "nats-server")


def nats_available():
    """Whether a nats-server binary can be run (the cluster tests skip
    without one)."""
    from shutil import which
    return os.path.exists(NATS_BIN) or which(NATS_BIN) is not None


def unique_name(prefix):
    """A name NATS accepts in subjects, stream and bucket names (letters and
    digits only), different for every call."""
    return prefix + uuid.uuid4().hex[:10]


def _http_json(port, path, timeout=1.0):
    with urllib.request.urlopen("http://%s:%d%s" % (HOST, port, path),
                                timeout=timeout) as r:
        return json.loads(r.read().decode())


def _end(proc, sig=signal.SIGTERM, grace=5.0):
    """Ends `proc` by its PID: `sig`, then SIGKILL after `grace` seconds.
    Returns the exit status (None if it had to be killed)."""
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    try:
        os.kill(proc.pid, sig)
        return proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
        return None
    except ProcessLookupError:
        return proc.poll()


class NatsServer:
    """One nats-server with JetStream, its store in `directory`/store. With
    no_advertise, it does not tell its clients the URLs of the other servers
    of its cluster, so a ternd pointed at it alone loses NATS when it dies
    (libnats otherwise fails over to the servers it was told of)."""

    def __init__(self, directory, name=None, cluster_name=None, no_advertise=False):
        self.dir = str(directory)
        self.no_advertise = no_advertise
        os.makedirs(self.dir, exist_ok=True)
        self.name = name or unique_name("nats")
        self.cluster_name = cluster_name
        self.store = os.path.join(self.dir, "store")
        self.log = os.path.join(self.dir, "nats-server.log")
        self.proc = None
        self.port = None      # client port (what ternd's cluster_nats names)
        self.cport = None     # cluster (route) port, when in a cluster
        self.mport = None     # monitoring (HTTP) port
        self.routes = []      # route URLs of the other servers of its cluster

    @property
    def url(self):
        return "nats://%s:%d" % (HOST, self.port)

    @property
    def route_url(self):
        return "nats://%s:%d" % (HOST, self.cport)

    def pick_ports(self, clustered=False):
        self.port = free_port()
        self.mport = free_port()
        self.cport = free_port() if clustered else None

    def argv(self):
        a = [NATS_BIN, "-js", "-sd", self.store, "-a", HOST, "-p", str(self.port),
             "-m", str(self.mport), "-n", self.name]
        if self.cport is not None:
            a += ["--cluster_name", self.cluster_name,
                  "--cluster", self.route_url]
            if self.routes:
                a += ["--routes", ",".join(self.routes)]
            if self.no_advertise:
                a += ["--no_advertise=true"]
        return a

    def spawn(self):
        """Starts the process on the ports picked; does not wait."""
        logf = open(self.log, "ab")
        logf.write(("--- start %s\n" % " ".join(self.argv())).encode())
        logf.flush()
        self.proc = subprocess.Popen(self.argv(), stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir)
        logf.close()

    def healthy(self, jetstream=True):
        """/healthz says ok: the server runs and, in a cluster, its JetStream
        has contact with a meta leader. With jetstream=False, only that the
        server answers."""
        if not self.alive():
            return False
        try:
            path = "/healthz" if jetstream else "/healthz?js-enabled-only=true"
            return _http_json(self.mport, path).get("status") == "ok"
        except (OSError, ValueError):
            return False

    def route_count(self):
        try:
            return _http_json(self.mport, "/routez").get("num_routes", 0)
        except (OSError, ValueError):
            return -1

    def meta_leader(self):
        """The name of the JetStream meta leader this server knows, or None."""
        try:
            meta = _http_json(self.mport, "/jsz").get("meta_cluster") or {}
        except (OSError, ValueError):
            return None
        return meta.get("leader") or None

    def ready(self, timeout=20.0, routes=0):
        """Waits (bounded) until the server is healthy and has `routes`
        routes; False if it died or the time ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return False
            # In a cluster, /jsz's meta leader first: /healthz logs a
            # warning each time it fails, and the server's log is what a
            # failing test shows.
            if self.cport is not None and not self.meta_leader():
                time.sleep(0.05)
                continue
            if self.healthy() and (routes == 0 or self.route_count() >= routes):
                return True
            time.sleep(0.05)
        return False

    def start(self, timeout=20.0):
        """A standalone server (no cluster) on fresh ports; retried on a port
        taken in the meantime."""
        for _attempt in range(3):
            self.pick_ports()
            self.spawn()
            if wait_port(self.port, self.proc, timeout) and self.ready(timeout):
                return self
            self.stop()
        raise RuntimeError("nats-server did not start:\n%s" % tail(self.log))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def stop(self):
        """SIGTERM (lame duck is SIGUSR2; TERM exits at once), then SIGKILL."""
        return _end(self.proc)

    def kill(self):
        """kill -9 by PID."""
        return _end(self.proc, signal.SIGKILL)

    def restart(self, timeout=20.0, routes=0):
        """Starts again on the same ports and store (after stop or kill)."""
        self.stop()
        self.spawn()
        if not (wait_port(self.port, self.proc, timeout) and self.ready(timeout, routes)):
            raise RuntimeError("nats-server %s did not come back:\n%s"
                               % (self.name, tail(self.log)))
        return self


class NatsCluster:
    """`n` nats-servers routed to each other: one JetStream cluster."""

    def __init__(self, directory, n=3, name=None, no_advertise=False):
        self.dir = str(directory)
        self.name = name or unique_name("nc")
        self.servers = [NatsServer(os.path.join(self.dir, "nats%d" % i),
                                   name="%s-n%d" % (self.name, i),
                                   cluster_name=self.name, no_advertise=no_advertise)
                        for i in range(n)]

    @property
    def urls(self):
        return [s.url for s in self.servers]

    def __getitem__(self, i):
        return self.servers[i]

    def __len__(self):
        return len(self.servers)

    def start(self, timeout=30.0):
        """Starts every server and waits until each is healthy and routed to
        all the others. Every route URL must be known before any starts, so
        a port lost to a race restarts the whole cluster on new ports."""
        n = len(self.servers)
        for _attempt in range(3):
            for s in self.servers:
                s.pick_ports(clustered=n > 1)
            for s in self.servers:
                # Its own URL left out: a route to itself only logs
                # "Duplicate Route".
                s.routes = [o.route_url for o in self.servers if o is not s]
                s.spawn()
            deadline = time.monotonic() + timeout
            if all(s.ready(max(0.1, deadline - time.monotonic()), routes=n - 1)
                   for s in self.servers):
                return self
            self.stop()
        raise RuntimeError("NATS cluster did not form:\n%s" % "\n".join(
            "== %s\n%s" % (s.name, tail(s.log, 20)) for s in self.servers))

    def ready(self, timeout=30.0):
        """Every live server healthy and routed to every other live one."""
        live = [s for s in self.servers if s.alive()]
        deadline = time.monotonic() + timeout
        return all(s.ready(max(0.1, deadline - time.monotonic()), routes=len(live) - 1)
                   for s in live)

    def kill(self, i):
        return self.servers[i].kill()

    def restart(self, i, timeout=30.0):
        live = sum(1 for s in self.servers if s.alive() and s is not self.servers[i])
        return self.servers[i].restart(timeout, routes=live)

    def stop(self):
        for s in self.servers:
            s.stop()

    def logs(self):
        return [s.log for s in self.servers]


class TerndNode(Broker):
    """A ternd with the cluster directives. `nats` is a URL or a list of
    URLs (cluster_nats); extra config lines go in `extra`."""

    def __init__(self, directory, nats, node_name=None, cluster_name="tern",
                 replicas=None, workers=1, extra=()):
        os.makedirs(str(directory), exist_ok=True)
        self.nats = [nats] if isinstance(nats, str) else list(nats)
        self.node_name = node_name or unique_name("node")
        self.cluster_name = cluster_name
        lines = ["cluster_nats " + ",".join(self.nats),
                 "cluster_node_name " + self.node_name,
                 "cluster_name " + cluster_name]
        if replicas is not None:
            lines.append("cluster_replicas %d" % replicas)
        super().__init__(directory, workers, lines + list(extra))

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def kill(self):
        """kill -9 by PID."""
        return _end(self.proc, signal.SIGKILL)

    def restart(self, timeout=10.0):
        """Starts again with the same config, on the same MQTT port (so a
        client reconnects where it was) and the same files."""
        self.stop()
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([self.binary, "-c", self.conf], stdout=logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.dir)
        logf.close()
        # The port may stay bound a moment after a kill -9 (until the kernel
        # frees it); ternd exits if it cannot listen, so retry a few times.
        deadline = time.monotonic() + timeout
        while not wait_port(self.port, self.proc, max(0.1, deadline - time.monotonic())):
            if time.monotonic() >= deadline:
                raise RuntimeError("ternd %s did not come back on %d:\n%s"
                                   % (self.node_name, self.port, tail(self.log)))
            if self.proc.poll() is not None:
                time.sleep(0.2)
                logf = open(self.log, "ab")
                self.proc = subprocess.Popen([self.binary, "-c", self.conf], stdout=logf,
                                             stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, cwd=self.dir)
                logf.close()
        return self


class Cluster:
    """A NatsCluster of `nats_n` servers and `nodes` ternd nodes. Node i
    points at nats-server i mod nats_n (nats="own"), or at every server
    (nats="all"; libnats then picks one at random and fails over). With
    no_advertise (NatsServer), a node knows its own nats-server only."""

    def __init__(self, directory, nodes=3, nats_n=3, nats="own", cluster_name=None,
                 replicas=None, workers=1, extra=(), no_advertise=False):
        self.dir = str(directory)
        self.cluster_name = cluster_name or unique_name("tern")
        self.nats = NatsCluster(os.path.join(self.dir, "nats"), nats_n,
                                no_advertise=no_advertise)
        self.mode = nats
        self.replicas = replicas
        self.workers = workers
        self.extra = list(extra)
        self.node_count = nodes
        self.nodes = []

    def __getitem__(self, i):
        return self.nodes[i]

    def __len__(self):
        return len(self.nodes)

    def add_node(self, nats=None, extra=(), start=True):
        """One more ternd node of this cluster (its NATS URLs by the
        cluster's mode unless given)."""
        i = len(self.nodes)
        if nats is None:
            nats = self.nats.urls if self.mode == "all" else self.nats[i % len(self.nats)].url
        node = TerndNode(os.path.join(self.dir, "node%d" % i), nats,
                         node_name="%s-node%d" % (self.cluster_name, i),
                         cluster_name=self.cluster_name, replicas=self.replicas,
                         workers=self.workers, extra=self.extra + list(extra))
        self.nodes.append(node)
        if start:
            node.start()
        return node

    def start(self):
        self.nats.start()
        try:
            for _ in range(self.node_count):
                self.add_node()
        except Exception:
            self.stop()
            raise
        return self

    def stop(self):
        """Every ternd, then every nats-server. Returns the nodes that had
        died before (a crash the tests should report)."""
        died = [n for n in self.nodes if n.proc is not None and not n.alive()
                and n.proc.returncode not in (0, -signal.SIGKILL, -signal.SIGTERM)]
        for n in self.nodes:
            n.stop()
        self.nats.stop()
        return died

    def logs(self):
        return [n.log for n in self.nodes] + self.nats.logs()
