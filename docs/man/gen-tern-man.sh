#!/bin/sh
# gen-tern-man.sh TERN TEMPLATE VERSION OUT
#
# Writes tern(1): TEMPLATE (docs/man/tern.1.in) with @PROJECT_VERSION@ replaced and
# each line @HELP cmd@ replaced by `TERN cmd --help` as man(7) source
# (help2roff.awk), so every option the manual lists is one the program
# has, with the help text its option table declares.
set -eu
tern=$1
template=$2
version=$3
out=$4
here=$(dirname "$0")
tmp="$out.tmp"
: >"$tmp"
while IFS= read -r line; do
	case "$line" in
	"@HELP "*"@")
		cmd=${line#@HELP }
		cmd=${cmd%@}
		"$tern" "$cmd" --help | awk -f "$here/help2roff.awk" >>"$tmp"
		;;
	*) printf '%s\n' "$line" | sed "s/@PROJECT_VERSION@/$version/g" >>"$tmp" ;;
	esac
done <"$template"
mv "$tmp" "$out"
