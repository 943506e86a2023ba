#!/bin/bash
# Starts a local tern cluster for trying it out: 3 nats-server (one
# JetStream cluster) and 3 ternd nodes, each ternd on its own nats-server,
# everything on 127.0.0.1. Prints the ports, then waits; Ctrl-C (or SIGTERM)
# stops every process it started, by its PID. `make run-cluster` builds and
# runs this.
#
#   scripts/run-cluster.sh [BUILD_DIR]    (default: build)
#
# Ports: MQTT 1883+i, NATS clients 4222+i, NATS routes 6222+i, NATS
# monitoring 8222+i (i = 0, 1, 2), moved all together by BASE_OFFSET=N.
# State (configs, logs, JetStream stores, ternd databases) stays in
# BUILD_DIR/run-cluster, so a second run finds the retained messages and
# sessions of the first.
set -eu

BUILD=${1:-build}
OFFSET=${BASE_OFFSET:-0}
DIR="$BUILD/run-cluster"
TERND="$BUILD/ternd"
NATS=${NATS_SERVER:-nats-server}
NAME=${CLUSTER_NAME:-tern}
HOST=127.0.0.1

[ -x "$TERND" ] || { echo "run-cluster: $TERND not built (make all)" >&2; exit 1; }
command -v "$NATS" >/dev/null 2>&1 || {
	echo "run-cluster: $NATS not found (scripts/deps.sh test installs it)" >&2; exit 1; }
mkdir -p "$DIR"

PIDS=""
TERND_PIDS=()
stop() {
	trap - INT TERM EXIT
	echo
	echo "run-cluster: stopping"
	# The ternd nodes first (started last), then the nats-servers they use.
	rev=""
	for pid in $PIDS; do rev="$pid $rev"; done
	for pid in $rev; do
		kill "$pid" 2>/dev/null || true
		# At most 10 s each, then SIGKILL (a watchdog: an exited child
		# stays a zombie until waited for, so kill -0 cannot tell).
		(sleep 10 && kill -9 "$pid" 2>/dev/null) &
		dog=$!
		wait "$pid" 2>/dev/null || true
		kill "$dog" 2>/dev/null || true
		wait "$dog" 2>/dev/null || true
	done
	echo "run-cluster: stopped (logs in $DIR)"
}
trap stop INT TERM EXIT

port() { echo $(($1 + OFFSET + $2)); }

routes_except() {
	r=""
	for j in 0 1 2; do
		[ "$j" = "$1" ] && continue
		r="$r${r:+,}nats://$HOST:$(port 6222 "$j")"
	done
	echo "$r"
}

for i in 0 1 2; do
	mkdir -p "$DIR/nats$i"
	"$NATS" -js -sd "$DIR/nats$i/store" -a $HOST -p "$(port 4222 $i)" -m "$(port 8222 $i)" \
		-n "$NAME-nats$i" --cluster_name "$NAME-nats" --cluster "nats://$HOST:$(port 6222 $i)" \
		--routes "$(routes_except $i)" >"$DIR/nats$i/nats-server.log" 2>&1 &
	PIDS="$PIDS $!"
done

# JetStream is ready once every server's /healthz says ok (it has a meta
# leader); at most 30 s.
echo "run-cluster: waiting for JetStream (seconds; some 10 more when it recovers a previous run's state)"
for i in 0 1 2; do
	n=0
	until curl -sf "http://$HOST:$(port 8222 $i)/healthz" >/dev/null 2>&1; do
		n=$((n + 1))
		if [ $n -gt 300 ]; then
			echo "run-cluster: nats-server $i not healthy; see $DIR/nats$i/nats-server.log" >&2
			exit 1
		fi
		sleep 0.1
	done
done

for i in 0 1 2; do
	mkdir -p "$DIR/node$i"
	cat >"$DIR/node$i/ternd.conf" <<EOF
listener $(port 1883 $i) $HOST
allow_anonymous true
log_dest stdout
cluster_nats nats://$HOST:$(port 4222 $i)
cluster_node_name node$i
cluster_name $NAME
EOF
	"$TERND" -c "$DIR/node$i/ternd.conf" --db "$DIR/node$i/ternd.db" \
		>"$DIR/node$i/ternd.log" 2>&1 &
	PIDS="$PIDS $!"
	TERND_PIDS[$i]=$!
done

for i in 0 1 2; do
	n=0
	until (exec 3<>"/dev/tcp/$HOST/$(port 1883 $i)") 2>/dev/null; do
		n=$((n + 1))
		if [ $n -gt 100 ] || ! kill -0 "${TERND_PIDS[$i]}" 2>/dev/null; then
			echo "run-cluster: ternd node$i did not start; its log:" >&2
			tail -20 "$DIR/node$i/ternd.log" >&2
			exit 1
		fi
		sleep 0.1
	done
done

echo "tern cluster '$NAME' on $HOST:"
for i in 0 1 2; do
	echo "  node$i  MQTT $(port 1883 $i)   nats-server $(port 4222 $i) (routes $(port 6222 $i), monitoring http://$HOST:$(port 8222 $i))"
done
echo "logs and state in $DIR; try:"
echo "  $BUILD/src/tools/tern sub -p $(port 1884 0) -t 'demo/#' -v"
echo "  $BUILD/src/tools/tern pub -p $(port 1883 0) -t demo/hello -m world"
echo "Ctrl-C stops all six processes."
# Waits until a signal (or until every process has exited).
wait
