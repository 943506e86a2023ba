#!/bin/sh
# check_install.sh BUILD_DIR SOURCE_DIR LIBDIR
#
# Installs BUILD_DIR into a prefix inside it (LIBDIR: the library directory
# under the prefix, CMAKE_INSTALL_LIBDIR) and checks what a user gets:
#   - ternd in sbin and tern in bin, which run (--version, --help);
#   - libtern (shared and static), the public headers and tern.pc, naming
#     the prefix installed to; the manual pages;
#   - the examples build against that installation with pkg-config (as a
#     user would), and examples/pubsub exchanges a message through the
#     installed ternd, started here on a free loopback port;
#   - a second install with DESTDIR (a package build) puts the same files
#     under DESTDIR/PREFIX, with a tern.pc naming PREFIX, not DESTDIR;
#   - the default configuration goes to PREFIX/etc/tern, or /etc/tern for
#     PREFIX /usr, and is kept when there already; the systemd unit names
#     the installed ternd and configuration.
# ternd is stopped by its PID whatever happens.
set -eu
build=$1
src=$2
libdir=$3
work="$build/install-test"
prefix="$work/prefix"

fail() {
	echo "check_install: $*"
	exit 1
}

# check_tree ROOT PREFIX: the files of an installation under ROOT, whose
# tern.pc names PREFIX.
check_tree() {
	for f in sbin/ternd bin/tern "$libdir/libtern.a" "$libdir/libtern.so" "$libdir/libtern.so.0" \
		"$libdir/pkgconfig/tern.pc" include/tern/tern.h include/tern/codec.h include/tern/error.h \
		include/tern/export.h share/man/man1/tern.1 share/man/man5/ternd.conf.5 \
		share/man/man8/ternd.8 etc/tern/ternd.conf lib/systemd/system/ternd.service; do
		[ -e "$1/$f" ] || fail "$f not installed under $1"
	done
	for f in sbin/ternd bin/tern; do
		[ -x "$1/$f" ] || fail "$1/$f is not executable"
	done
	grep -qx "prefix=$2" "$1/$libdir/pkgconfig/tern.pc" ||
		fail "$1/$libdir/pkgconfig/tern.pc does not name prefix $2"
	grep -qx "ExecStart=$2/sbin/ternd -c $2/etc/tern/ternd.conf" \
		"$1/lib/systemd/system/ternd.service" ||
		fail "$1/lib/systemd/system/ternd.service does not name prefix $2"
}

rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$prefix" >/dev/null
check_tree "$prefix" "$prefix"

# The installed programs run: ternd answers --version and --help, tern
# --help (tern links libtern statically, so it needs no library path).
out=$("$prefix/sbin/ternd" --version) || fail "ternd --version failed"
case "$out" in
"ternd "[0-9]*) ;;
*) fail "ternd --version printed '$out'" ;;
esac
"$prefix/sbin/ternd" --help | grep -q "Usage: ternd" || fail "ternd --help printed no usage"
"$prefix/bin/tern" --help | grep -q "tern" || fail "tern --help failed"
"$prefix/bin/tern" --version | grep -q "^tern version" || fail "tern --version failed"

# A staged install (DESTDIR): the same tree under DESTDIR, naming PREFIX.
DESTDIR="$work/stage" cmake --install "$build" --prefix /opt/tern >/dev/null
check_tree "$work/stage/opt/tern" /opt/tern

# PREFIX /usr (a Debian package): the configuration in /etc, not /usr/etc,
# and a second install keeps an edited one.
DESTDIR="$work/usr-stage" cmake --install "$build" --prefix /usr >/dev/null
[ -f "$work/usr-stage/etc/tern/ternd.conf" ] || fail "PREFIX /usr: no /etc/tern/ternd.conf"
[ ! -e "$work/usr-stage/usr/etc" ] || fail "PREFIX /usr: installed /usr/etc"
grep -qx "ExecStart=/usr/sbin/ternd -c /etc/tern/ternd.conf" \
	"$work/usr-stage/usr/lib/systemd/system/ternd.service" ||
	fail "PREFIX /usr: the unit does not name /usr/sbin/ternd and /etc/tern/ternd.conf"
echo "# edited" >>"$work/usr-stage/etc/tern/ternd.conf"
DESTDIR="$work/usr-stage" cmake --install "$build" --prefix /usr >/dev/null
grep -qx "# edited" "$work/usr-stage/etc/tern/ternd.conf" ||
	fail "a second make install replaced an edited ternd.conf"

# Build a copy of the examples, so the source tree stays clean.
cp -r "$src/examples" "$work/examples"
PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" make -s -C "$work/examples" \
	CFLAGS="${EXAMPLE_CFLAGS:--O2}"

port=$(python3 "$src/tests/testports.py")
"$prefix/sbin/ternd" -b 127.0.0.1 -p "$port" >"$work/ternd.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT

# Wait (bounded) until ternd listens.
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" \
	2>/dev/null; do
	i=$((i + 1))
	[ "$i" -lt 50 ] || { cat "$work/ternd.log"; fail "ternd did not start"; }
	sleep 0.1
done

out=$(LD_LIBRARY_PATH="$prefix/$libdir" timeout 20 "$work/examples/pubsub" 127.0.0.1 "$port")
echo "$out"
case "$out" in
*"hello from libtern"*) echo "check_install: ok" ;;
*) fail "example did not receive its message" ;;
esac
