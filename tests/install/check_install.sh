#!/bin/sh
# check_install.sh BUILD_DIR SOURCE_DIR TERND
#
# Installs libtern from BUILD_DIR into a prefix inside it, builds the
# examples against that installation with pkg-config (as a user would), and
# runs examples/pubsub against a ternd started here on a free loopback port.
# ternd is stopped by its PID whatever happens.
set -eu
build=$1
src=$2
ternd=$3
work="$build/install-test"
prefix="$work/prefix"

rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$prefix" >/dev/null

for f in lib/libtern.a lib/libtern.so lib/libtern.so.0 lib/pkgconfig/tern.pc \
	include/tern/tern.h include/tern/codec.h include/tern/error.h include/tern/export.h; do
	[ -e "$prefix/$f" ] || { echo "check_install: $f not installed"; exit 1; }
done

# Build a copy, so the source tree stays clean.
cp -r "$src/examples" "$work/examples"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" make -s -C "$work/examples" CFLAGS="${EXAMPLE_CFLAGS:--O2}"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$ternd" -b 127.0.0.1 -p "$port" >"$work/ternd.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT

# Wait (bounded) until ternd listens.
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" \
	2>/dev/null; do
	i=$((i + 1))
	[ "$i" -lt 50 ] || { echo "check_install: ternd did not start"; cat "$work/ternd.log"; exit 1; }
	sleep 0.1
done

out=$(LD_LIBRARY_PATH="$prefix/lib" timeout 20 "$work/examples/pubsub" 127.0.0.1 "$port")
echo "$out"
case "$out" in
*"hello from libtern"*) echo "check_install: ok" ;;
*) echo "check_install: example did not receive its message"; exit 1 ;;
esac
