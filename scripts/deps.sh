#!/usr/bin/env bash
# Installs what building and testing tern needs on Debian 12, and nothing
# when it is all there already. Called by `make run` and `make test`.
# Usage: scripts/deps.sh [build|test|bench|cluster]  (cluster: make run-cluster)
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libsqlite3-dev libssl-dev libnats-dev libmicrohttpd-dev
            libpq-dev libmongoc-dev)
test_pkgs=(clang libclang-rt-dev clang-format libcmocka-dev sqlite3 openssl python3 python3-pytest
           python3-prometheus-client
           python3-paho-mqtt mosquitto-clients mosquitto nats-server postgresql
           python3-mockupdb python3-mongomock chromium groff-base)

bench_pkgs=(mosquitto gnuplot-nox valgrind)

want=("${build_pkgs[@]}")
[[ ${1:-build} == test ]] && want+=("${test_pkgs[@]}")
[[ ${1:-build} == bench ]] && want+=("${bench_pkgs[@]}")
[[ ${1:-build} == cluster ]] && want+=(nats-server)

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
# MQTT.js runs on Node; a machine that already has node and npm (from any
# source) is fine, otherwise Debian's packages are installed.
if [[ ${1:-build} == test ]] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
	missing+=(nodejs npm)
fi
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
	echo "tern: missing Debian packages: ${missing[*]}" >&2
	echo "tern: run as root, or install them: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "tern: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
