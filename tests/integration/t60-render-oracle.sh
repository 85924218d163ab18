#!/usr/bin/env bash
# The template engine (core/src/render) against Go's own text/template:
# the Go oracle (tests/oracle/oracle.go, built offline from Debian's Go)
# renders every case again, its results must equal the recorded ones that
# the unit test uses (drift in either shows here), and the C engine must
# produce the same bytes, case by case.
. "$(dirname "$0")/lib.sh"
te_require go python3

SRC=${TE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${TE_BUILD_DIR:-$SRC/build}
ORACLE_DIR="$SRC/tests/oracle"
RUNNER="$BUILD/tests/bin/render_cases"
check "render_cases driver is built" test -x "$RUNNER"

# GOPATH mode against Debian's packaged sources: no network, no modules.
export GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOTOOLCHAIN=local
export GOCACHE="$TE_TMP/gocache" GOTMPDIR="$TE_TMP"
ORACLE="$TE_TMP/oracle"
check "Go oracle builds offline" go build -o "$ORACLE" "$ORACLE_DIR/oracle.go"

total=0
for cases in "$ORACLE_DIR"/cases/*.txt; do
	name=$(basename "$cases" .txt)
	data="$ORACLE_DIR/$name.json"
	[ -f "$data" ] || data="$ORACLE_DIR/data.json"
	fresh="$TE_TMP/$name.jsonl"
	sprig=
	case $name in sprig_*) sprig=-sprig ;; esac
	if ! "$ORACLE" $sprig "$data" "$cases" >"$fresh"; then
		fail "oracle runs $name"
		continue
	fi
	check "Go's results for $name equal the recorded ones" \
		cmp "$fresh" "$ORACLE_DIR/expected/$name.jsonl"
	n=$(wc -l <"$fresh")
	total=$((total + n))
	check "C engine equals Go on $name ($n cases)" \
		"$RUNNER" "$data" "$cases" "$fresh"
done
check "at least 400 cases compared (got $total)" test "$total" -ge 400
for expected in "$ORACLE_DIR"/expected/*.jsonl; do
	name=$(basename "$expected" .jsonl)
	check "recorded results $name.jsonl belong to a case file" \
		test -f "$ORACLE_DIR/cases/$name.txt"
done

# Differential runs: random templates over every construct and random
# printf directives (fixed seeds: a failure reproduces with
# random_cases.py SEED COUNT MODE), judged by Go.
for run in "1 1500 templates" "2 1500 templates" "1 3000 printf"; do
	set -- $run
	rcases="$TE_TMP/random-$1-$3.txt"
	python3 "$ORACLE_DIR/random_cases.py" "$1" "$2" "$3" >"$rcases" &&
		"$ORACLE" "$ORACLE_DIR/data.json" "$rcases" >"$rcases.jsonl"
	check "C engine equals Go on $2 random $3 cases (seed $1)" \
		"$RUNNER" "$ORACLE_DIR/data.json" "$rcases" "$rcases.jsonl"
done

# Sprig's regex functions over random patterns (Go's regexp syntax, some
# invalid) and random texts: the regex module against Go's regexp.  The
# file name starts with sprig_ so that the runner adds Sprig's functions.
for run in "1 3000 regex" "1 3000 regex-syntax"; do
	set -- $run
	rcases="$TE_TMP/sprig_random-$3.txt"
	python3 "$ORACLE_DIR/random_cases.py" "$1" "$2" "$3" >"$rcases" &&
		"$ORACLE" -sprig "$ORACLE_DIR/data.json" "$rcases" >"$rcases.jsonl"
	check "C engine equals Go on $2 random $3 cases (seed $1)" \
		"$RUNNER" "$ORACLE_DIR/data.json" "$rcases" "$rcases.jsonl"
done

# The oracle is a real judge: a wrong expectation must fail the runner.
sed 's/"out":"hello world"/"out":"hello world!"/' \
	"$ORACLE_DIR/expected/text.jsonl" >"$TE_TMP/tampered.jsonl"
if "$RUNNER" "$ORACLE_DIR/data.json" "$ORACLE_DIR/cases/text.txt" \
	"$TE_TMP/tampered.jsonl" >/dev/null; then
	fail "a tampered expectation is caught"
else
	pass "a tampered expectation is caught"
fi
te_finish
