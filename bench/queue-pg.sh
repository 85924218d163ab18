#!/usr/bin/env bash
# queue-pg.sh - accepted deliveries per second: one tagexport-server on the
# journal (queue driver journal) vs three replicas on one PostgreSQL
# (driver postgres), in the same run, on loopback.  Every delivery is a
# signed GitHub push of a distinct tag (bench/wrk-dynamic.lua), answered
# 202 only once the job is durable (journal: fdatasync; postgres: COMMIT).
# workers: 0, so only intake is measured.  The journal replica gets one wrk
# with CONNS connections; the three replicas one wrk each with a third of
# them (as a load balancer would spread them), their req/s added up and
# the worst p99 kept.  Prints req/s, p99 of the 202 and the ratio, against
# the target: three replicas >= 1x one journal replica.
# The PostgreSQL is the tests' own (tests/integration/pg_lib.sh: initdb in
# a temp dir, fsync on), on the same machine and cores as the servers.
# Needs wrk, perl, curl and a build.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-10}
CONNS=${CONNS:-30}
NBODIES=${NBODIES:-200000}
TE_BIN_DIR=${TE_BIN_DIR:-$top/build/bin}
. "$top/tests/integration/lib.sh"
. "$top/tests/integration/server_lib.sh"
. "$top/tests/integration/pg_lib.sh"
. "$top/bench/lib.sh"
te_require wrk perl curl
[ -x "$TE_SERVER" ] || { echo "build first: cmake -S . -B build && cmake --build build" >&2; exit 1; }

bench_dirs queue-pg
trap 'te_pg_stop; rm -rf "$STATE"; te_cleanup' EXIT
echo "signing $NBODIES distinct tag pushes..."
bench_accepted_bodies "$W/accepted.txt" "$NBODIES" || exit 1
te_pg_start || exit 1
printf '%s\n' "$PG_DSN" >"$W/pg.dsn"

# replica NAME QUEUE_YAML: starts a server (workers 0); sets SRV_PORT.
replica() {
	cat >"$W/$1.yaml" <<YAML
listen: 127.0.0.1:0
state_dir: $STATE/$1
workers: 0
log_format: text
instance: $1
$2
$(bench_project "v*")
YAML
	start_server "$W/$1.yaml" "$W/$1.log"
}

# load PORT THREADS CONNS FIRST COUNT OUT: wrk over bodies FIRST+1..+COUNT.
load() {
	wrk -t"$2" -c"$3" -d"${DURATION}s" --latency -s "$top/bench/wrk-dynamic.lua" \
		"http://127.0.0.1:$1/hooks/app" -- "$W/accepted.txt" accepted "$2" "$4" "$5" \
		>"$6" 2>&1
}

printf '\nwrk %ss per case on loopback, %s connections, %s CPUs, load average %s\n\n' \
	"$DURATION" "$CONNS" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- one replica, journal ------------------------------------------------------
replica journal "queue: {driver: journal}"
load "$SRV_PORT" 2 "$CONNS" 0 $((NBODIES / 2)) "$W/wrk-journal.txt"
read -r j_rps j_p99 j_non < <(bench_wrk_summary <"$W/wrk-journal.txt")

# ---- three replicas, postgres --------------------------------------------------
pids=()
slice=$((NBODIES / 6))
for n in 1 2 3; do
	replica "pg-$n" "queue: {driver: postgres, dsn_file: $W/pg.dsn, lease: 60}"
	port[$n]=$SRV_PORT
done
for n in 1 2 3; do
	load "${port[$n]}" 1 $((CONNS / 3)) $((NBODIES / 2 + (n - 1) * slice)) "$slice" \
		"$W/wrk-pg-$n.txt" &
	pids+=($!)
done
wait "${pids[@]}"
p_rps=0 p_p99=0 p_non=0
for n in 1 2 3; do
	read -r rps p99 non < <(bench_wrk_summary <"$W/wrk-pg-$n.txt")
	p_rps=$(echo "$p_rps + $rps" | bc)
	p_non=$((p_non + non))
	[ "$(echo "$p99 > $p_p99" | bc)" = 1 ] && p_p99=$p99
done
jobs=$(te_pg_psql 'SELECT count(*) FROM tagexport_jobs')

ratio=$(echo "scale=2; $p_rps / $j_rps" | bc)
printf '%-26s %12s %10s %8s\n' setup "accepted/s" "p99 ms" "non-2xx"
printf '%-26s %12s %10s %8s\n' "1 replica, journal" "$j_rps" "$j_p99" "$j_non"
printf '%-26s %12s %10s %8s\n' "3 replicas, postgres" "$p_rps" "$p_p99" "$p_non"
echo
echo "jobs in PostgreSQL after the run (psql): $jobs"
printf 'ratio three replicas on postgres / one on the journal: %sx   (target: >= 1x)\n' "$ratio"
[ "$(echo "$ratio >= 1" | bc)" = 1 ] && echo "target met" || echo "TARGET MISSED"
