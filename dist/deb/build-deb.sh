#!/bin/sh
# build-deb.sh BUILD_DIR SOURCE_DIR OUT_DIR
#
# The Debian package of tern, with dpkg-deb alone (no debhelper, no
# debian/ source package): BUILD_DIR installed with PREFIX /usr into a
# staging root (DESTDIR, so /etc/tern/ternd.conf and
# /usr/lib/systemd/system/ternd.service), man pages compressed as policy
# asks, and DEBIAN/ holding
#   control    Depends computed by dpkg-shlibdeps from the binaries (the
#              MongoDB module's libraries only Suggested: ternd loads it for
#              mongodb:// archives alone); without dpkg-shlibdeps (dpkg-dev),
#              the packages holding the libraries ldd finds, unversioned;
#   conffiles  /etc/tern/ternd.conf, so an upgrade keeps an edited one;
#   postinst, prerm, postrm  (this directory): the user ternd and
#              /var/lib/ternd, and the service where systemd runs.
# Writes OUT_DIR/tern_VERSION_ARCH.deb and prints its path.
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
out=$(mkdir -p "$3" && cd "$3" && pwd)
here="$src/dist/deb"

version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
[ -n "$version" ] || { echo "build-deb: no version in $build/CMakeCache.txt" >&2; exit 1; }
arch=$(dpkg --print-architecture)
work="$build/deb"
stage="$work/root"
rm -rf "$work"
mkdir -p "$stage"
DESTDIR="$stage" cmake --install "$build" --prefix /usr >/dev/null
find "$stage/usr/share/man" -type f -exec gzip -9n {} +

# The ELF files, and the libraries they need.
elves=""
mongo=""
for f in $(find "$stage" -type f | sort); do
	case $(head -c 4 "$f" | od -An -c | tr -d ' ') in
	177ELF)
		case "$f" in
		*/tern_archive_mongo.so) mongo="$f" ;;
		*) elves="$elves $f" ;;
		esac
		;;
	esac
done

depends=""
suggests=""
if command -v dpkg-shlibdeps >/dev/null; then
	# dpkg-shlibdeps reads debian/control for the package it works for.
	mkdir -p "$work/src/debian"
	printf 'Source: tern\n\nPackage: tern\nArchitecture: any\n' >"$work/src/debian/control"
	# shellcheck disable=SC2086
	vars=$(cd "$work/src" && dpkg-shlibdeps -O -l"$stage/usr/lib" $elves \
		${mongo:+-dSuggests -e"$mongo"} 2>"$work/shlibdeps.log") || {
		cat "$work/shlibdeps.log" >&2
		exit 1
	}
	depends=$(printf '%s\n' "$vars" | sed -n 's/^shlibs:Depends=//p')
	suggests=$(printf '%s\n' "$vars" | sed -n 's/^shlibs:Suggests=//p')
else
	# The packages of the libraries the binaries load, without versions:
	# those they name (readelf's NEEDED) where readelf is there, else all
	# ldd finds (their dependencies too).
	libs=$(for f in $elves; do
		if command -v readelf >/dev/null; then
			needed=$(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
			ldd "$f" | awk -v n=" $(echo $needed) " '$3 ~ /^\// && index(n, " " $1 " ") { print $3 }'
		else
			ldd "$f" | awk '$3 ~ /^\// { print $3 }'
		fi
	done | sort -u)
	depends=$(for l in $libs; do dpkg -S "$(readlink -f "$l")" 2>/dev/null || dpkg -S "$l"; done |
		sed 's/:.*//' | sort -u | paste -sd, - | sed 's/,/, /g')
fi
depends="${depends:+$depends, }passwd"

mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
{
	echo "Package: tern"
	echo "Version: $version"
	echo "Architecture: $arch"
	echo "Maintainer: tern developers <tern@localhost>"
	echo "Installed-Size: $size"
	echo "Depends: $depends"
	[ -z "$suggests" ] || echo "Suggests: $suggests"
	echo "Section: net"
	echo "Priority: optional"
	echo "Description: MQTT broker (3.1, 3.1.1, 5.0) compatible with mosquitto, and its tools"
	echo " ternd is an MQTT broker that reads mosquitto.conf directives with their"
	echo " mosquitto meaning, keeps its state durable in SQLite, runs a worker per"
	echo " core, and can form a cluster over NATS, bridge to other brokers and"
	echo " archive messages into databases. It runs as the systemd service ternd"
	echo " (user ternd, state in /var/lib/ternd, configuration /etc/tern/ternd.conf)."
	echo " ."
	echo " The package also holds the tern command (pub, sub, bench, passwd,"
	echo " history) and the libtern client library with its headers."
} >"$stage/DEBIAN/control"
echo /etc/tern/ternd.conf >"$stage/DEBIAN/conffiles"
for s in postinst prerm postrm; do
	install -m 0755 "$here/$s" "$stage/DEBIAN/$s"
done

deb="$out/tern_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
