#!/usr/bin/env bash
# Runs every libFuzzer target fuzz_* found in DIR, one after the other,
# for SECONDS each (so the whole run takes about SECONDS x targets).
#
#   fuzz/run.sh DIR SECONDS [TARGET...]   e.g. fuzz/run.sh build-fuzz/fuzz 8
#
# With TARGET names (fuzz_conn ...) only those run. Each target starts from
# its committed seed corpus fuzz/corpus/<target>/, copied into the
# git-ignored working corpus fuzz/corpus-run/<target>/ (which keeps growing
# across runs), with the dictionary fuzz/<name>.dict for target fuzz_<name>
# when there is one, else fuzz/mqtt.dict. Crash reproducers land in
# fuzz/corpus-run/<target>-artifacts/. A dictionary may name others on a line
# "# include: a.dict b.dict"; their entries are added (libFuzzer takes one
# dictionary). Prints the executions and coverage of each target; exits
# non-zero if any target found a crash.
set -euo pipefail

if [[ $# -lt 2 ]]; then
	echo "usage: $0 DIR SECONDS [TARGET...]" >&2
	exit 2
fi
dir=$1
seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)

shopt -s nullglob
targets=()
if [[ $# -gt 0 ]]; then
	for name in "$@"; do
		targets+=("$dir/$name")
	done
else
	for bin in "$dir"/fuzz_*; do
		[[ -f $bin && -x $bin ]] && targets+=("$bin")
	done
fi
if [[ ${#targets[@]} -eq 0 ]]; then
	echo "fuzz/run.sh: no fuzz_* executables in $dir" >&2
	exit 2
fi

failed=0
for bin in "${targets[@]}"; do
	name=$(basename "$bin")
	work="$here/corpus-run/$name"
	artifacts="$here/corpus-run/$name-artifacts"
	log="$here/corpus-run/$name.log"
	mkdir -p "$work" "$artifacts"
	if [[ -d $here/corpus/$name ]]; then
		cp -R "$here/corpus/$name/." "$work/"
	fi
	args=("$work" "-max_total_time=$seconds" "-timeout=10" "-rss_limit_mb=2048"
		"-print_final_stats=1" "-artifact_prefix=$artifacts/")
	dict=$here/${name#fuzz_}.dict
	[[ -f $dict ]] || dict=$here/mqtt.dict
	if [[ -f $dict ]]; then
		includes=$(sed -n 's/^# include: *//p' "$dict")
		if [[ -n $includes ]]; then
			merged="$here/corpus-run/$name.dict"
			cat "$dict" >"$merged"
			for inc in $includes; do
				cat "$here/$inc" >>"$merged"
			done
			dict=$merged
		fi
		args+=("-dict=$dict")
	fi
	echo "== $name: ${seconds}s, corpus $work"
	if "$bin" "${args[@]}" >"$log" 2>&1; then
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
		rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
		cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
		units=$(find "$work" -type f | wc -l | tr -d ' ')
		echo "$name: ok, ${execs:-?} executions (${rate:-?}/s), cov ${cov:-?}," \
			"corpus $units files"
	else
		failed=1
		echo "$name: CRASH (log $log, reproducer in $artifacts/)" >&2
		tail -n 40 "$log" >&2
	fi
done
exit "$failed"
