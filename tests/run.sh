#!/usr/bin/env bash
# run.sh - the whole test suite: unit and integration tests on a normal
# build, then the same suite built with AddressSanitizer and
# UndefinedBehaviorSanitizer, then the libFuzzer harnesses (tests/fuzz):
# their regression inputs once and 20 s of fuzzing each.  Usage:
# tests/run.sh [--quick] (quick: skip the sanitizer and fuzzing passes).
set -euo pipefail
cd "$(dirname "$0")/.."
tests/deps.sh

export TE_REQUIRE_INTEGRATION=1
jobs=$(nproc)

cmake -S . -B build -DTE_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTE_CORE_MODULES= -DTE_SANITIZER= >/dev/null
cmake --build build -j"$jobs"
clang-format --dry-run -Werror core/src/*.[ch] core/src/*/*.[ch] \
	core/include/tagexport/*.h core/cli/*.[ch] webhook-server/*.[ch] \
	webhook-server/*/*.[ch] tests/unit/*.[ch] tests/fuzz/*.[ch]
(cd build && ctest --output-on-failure -j2)

if [ "${1:-}" != --quick ]; then
	cmake -S . -B build-asan -DTE_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
		-DTE_SANITIZER=address,undefined -DTE_CORE_MODULES= >/dev/null
	cmake --build build-asan -j"$jobs"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		bash -c 'cd build-asan && ctest --output-on-failure -j2 -LE slow'
	# About 8 minutes: 20 harnesses x 20 s plus the clang build.
	tests/fuzz/run.sh --regressions
	tests/fuzz/run.sh 20
fi
