#!/usr/bin/env bash
# run.sh - build the libFuzzer harnesses (build-fuzz, clang, ASan+UBSan)
# and run them.
#
#   tests/fuzz/run.sh [SECONDS] [HARNESS...]   fuzz each harness SECONDS
#                                             (default 30) from its corpus
#   tests/fuzz/run.sh --regressions [HARNESS...]
#                                             run every file of
#                                             regressions/<harness>/ once
#
# A crash, leak, timeout (10 s an input) or out-of-memory (2 GB) fails the
# harness: its name, the first bytes of the input and the artifact's path
# are printed, the other harnesses still run, and the script exits 1.
# Fuzzing works on a temporary copy of corpus/<harness>, so the tree stays
# clean; artifacts are kept under build-fuzz/artifacts/<harness>/.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build-fuzz

mode=fuzz
seconds=30
if [ "${1:-}" = --regressions ]; then
	mode=regressions
	shift
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then
	seconds=$1
	shift
fi

# Longest input per harness: a little above what the format needs, so
# the time goes into structure rather than size.
declare -A max_len=(
	[apiclient]=4096 [docker_config]=8192 [dockerfile]=16384 [forge]=16384
	[hook]=8192 [ignore]=4096 [image]=16384 [journal]=8192
	[known_hosts]=8192 [labels]=2048 [mirror_url]=512 [reference]=512
	[regex]=2048
	[registry]=4096 [render]=4096 [server_config]=16384 [slug]=1024 [template]=1024
	[werf_config]=16384 [werf_yaml]=8192
)
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=($(printf '%s\n' "${!max_len[@]}" | sort))
for h in "${harnesses[@]}"; do
	[ -n "${max_len[$h]:-}" ] || { echo "run.sh: no harness $h" >&2; exit 2; }
done

CC=clang cmake -S "$root" -B "$build" -DTE_FUZZ=ON -DTE_WERROR=ON \
	-DTE_BUILD_TESTS=OFF -DTE_CORE_MODULES= -DTE_SANITIZER= \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
	cmake --build "$build" -j"$(nproc)" --target fuzz >/dev/null ||
	{ echo "run.sh: build failed" >&2; exit 1; }

export ASAN_OPTIONS=detect_leaks=1
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
opts=(-rss_limit_mb=2048 -timeout=10)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=()

# The failure of harness $1 whose libFuzzer output is $2.
report() {
	local artifact
	artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$2" | tail -1)
	echo "FAIL $1"
	grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$2" | head -5 | sed 's/^/  /'
	if [ -n "$artifact" ] && [ -f "$artifact" ]; then
		echo "  input ($(wc -c <"$artifact") bytes, $artifact):"
		od -A x -t x1z -N 128 -v "$artifact" | sed 's/^/    /'
	fi
	echo "  log: $2"
	failed+=("$1")
}

fuzz() {
	local h=$1 bin=$build/bin/fuzz_$1 corpus=$tmp/$1 log art
	art=$build/artifacts/$h
	log=$build/artifacts/$h.log
	mkdir -p "$corpus" "$art"
	cp -r "$here/corpus/$h/." "$corpus/" 2>/dev/null
	local dict=()
	[ -f "$here/$h.dict" ] && dict=(-dict="$here/$h.dict")
	if "$bin" "${opts[@]}" -max_len="${max_len[$h]}" "${dict[@]}" \
		-max_total_time="$seconds" -print_final_stats=1 \
		-artifact_prefix="$art/" "$corpus" >"$log" 2>&1; then
		# The last status line: "#<execs> DONE cov: N ft: N corp: ...".
		grep -E '^#[0-9]+' "$log" | tail -1 |
			sed -E 's/^#([0-9]+)[[:space:]]+[A-Z]+[[:space:]]+cov: ([0-9]+) ft: ([0-9]+).*/ok   '"$h"': \1 execs, cov: \2 ft: \3/'
	else
		report "$h" "$log"
	fi
}

regressions() {
	local h=$1 bin=$build/bin/fuzz_$1 f log n=0
	[ -d "$here/regressions/$h" ] || return 0
	for f in "$here/regressions/$h"/*; do
		[ -f "$f" ] || continue
		n=$((n + 1))
		log=$build/artifacts/$h.regression.$n.log
		if ! "$bin" "${opts[@]}" -artifact_prefix="$tmp/" "$f" >"$log" 2>&1; then
			# The input is the file itself.
			echo "Test unit written to $f" >>"$log"
			report "$h (regressions/$h/$(basename "$f"))" "$log"
		fi
	done
	echo "ran  $h: $n regression input(s)"
}

mkdir -p "$build/artifacts"
if [ $mode = regressions ]; then
	# A directory no harness reads would pass unnoticed.
	for d in "$here"/regressions/*/; do
		[ -d "$d" ] || continue
		d=$(basename "$d")
		[ -n "${max_len[$d]:-}" ] ||
			{ echo "FAIL regressions/$d: no harness of that name"; failed+=("$d"); }
	done
fi
for h in "${harnesses[@]}"; do
	if [ $mode = fuzz ]; then fuzz "$h"; else regressions "$h"; fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "run.sh: ${#failed[@]} failure(s): ${failed[*]}" >&2
	exit 1
fi
