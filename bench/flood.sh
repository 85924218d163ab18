#!/usr/bin/env bash
# flood.sh - tagexport-server under hostile load, with its default limits,
# on loopback; the load stops by itself after DURATION seconds (default 30):
#   - 120 clients (tests/integration/hostile_client.py) each declaring a
#     20 MiB body with a bad signature and trickling it at RATE bytes/s
#     (default 512 KiB/s), reconnecting after every answer, from
#     127.0.0.2 and 127.0.0.3 (60 each: under max_connections_per_ip);
#   - a bad-signature flood: wrk -t2 -c32 with bench/wrk-static.lua, small
#     bodies, from 127.0.0.1;
#   - 20 signed GitHub tag pushes sent one by one with curl while both run.
# Prints each push's status and latency, the maximum, the server's peak
# RSS (VmHWM from /proc/<pid>/status) and the outcome of the hostile
# requests, against the targets: every push answered 202 within 2 s,
# peak RSS <= 256 MiB.  Exit status 1 when a target is missed.
# (Before the pending-body budget, 120 clients with 20 MiB bodies took
# the server to 2.3 GiB.)
# MAX_PENDING / PER_IP set max_pending_body_bytes / max_connections_per_ip
# (e.g. MAX_PENDING=68719476736 PER_IP=0: the limits off, for comparison).
# Needs wrk, curl, jq, openssl, python3 and a build.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-30}
RATE=${RATE:-524288}
CLIENTS=${CLIENTS:-120}
PUSHES=${PUSHES:-20}
TE_BIN_DIR=${TE_BIN_DIR:-$top/build/bin}
. "$top/tests/integration/lib.sh"
. "$top/tests/integration/server_lib.sh"
. "$top/bench/lib.sh"
te_require wrk curl jq openssl python3
[ -x "$TE_SERVER" ] || { echo "build first: cmake -S . -B build && cmake --build build" >&2; exit 1; }

bench_dirs flood
cat >"$W/server.yaml" <<YAML
listen: 127.0.0.1:0
state_dir: $STATE
workers: 0
log_format: text
${MAX_PENDING:+max_pending_body_bytes: $MAX_PENDING}
${PER_IP:+max_connections_per_ip: $PER_IP}
$(bench_project)
YAML
start_server "$W/server.yaml" "$W/server.log"
URL="http://127.0.0.1:$SRV_PORT/hooks/app"

# The bad-signature flood's body: a tag push (wrk-static.lua "bad").
github_body "$W/push.json" acme/app v0.0.1 0123456789abcdef0123456789abcdef01234567
printf '%s %s\n' "$(hmac "$SECRET" "$W/push.json")" "$(cat "$W/push.json")" >"$W/bad.txt"

python3 "$top/tests/integration/hostile_client.py" slow 127.0.0.1 "$SRV_PORT" \
	/hooks/app --clients "$CLIENTS" --length $((20 * 1024 * 1024)) --rate "$RATE" \
	--duration "$DURATION" --source 127.0.0.2,127.0.0.3 --reconnect >"$W/slow.out" &
SLOW_PID=$!
TE_PIDS+=("$SLOW_PID")
wrk -t2 -c32 -d"${DURATION}s" -s "$top/bench/wrk-static.lua" "$URL" -- "$W/bad.txt" bad \
	>"$W/wrk.out" 2>&1 &
WRK_PID=$!
TE_PIDS+=("$WRK_PID")
sleep 2 # let the slow clients take the budget first

printf '\n%s slow clients x 20 MiB at %s B/s + wrk bad signatures, %ss, %s CPUs, load %s\n\n' \
	"$CLIENTS" "$RATE" "$DURATION" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
ok=0 max=0
for i in $(seq 1 "$PUSHES"); do
	c=$(printf '%040x' "$((0xbe0000 + i))")
	github_body "$W/p$i.json" acme/app "v9.$i.0" "$c"
	read -r status secs < <(curl -sS -o /dev/null -w '%{http_code} %{time_total}\n' \
		--max-time 10 -X POST -H 'Content-Type: application/json' \
		-H 'X-GitHub-Event: push' -H "X-GitHub-Delivery: flood-$i" \
		-H "X-Hub-Signature-256: sha256=$(hmac "$SECRET" "$W/p$i.json")" \
		--data-binary "@$W/p$i.json" "$URL" || echo "000 10")
	printf 'push %2d: %s in %.3f s\n' "$i" "$status" "$secs"
	[ "$status" = 202 ] && [ "$(echo "$secs <= 2" | bc)" = 1 ] && ok=$((ok + 1))
	[ "$(echo "$secs > $max" | bc)" = 1 ] && max=$secs
	sleep 0.5
done
wait "$SLOW_PID" "$WRK_PID" 2>/dev/null
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$SRV_PID/status")
hwm_mib=$((hwm / 1024))

echo
echo "slow 20 MiB bodies (answers):" $(tr '\n' ' ' <"$W/slow.out")
echo "bad-signature flood: $(awk '/^Requests\/sec:/ {print $2}' "$W/wrk.out") req/s," \
	"$(awk '/Non-2xx/ {print $5}' "$W/wrk.out") non-2xx (401), $(grep -c 'Socket errors' "$W/wrk.out") socket error line(s)"
pass=true
printf 'pushes answered 202 within 2 s: %d/%d, max latency %.3f s   (target: all, <= 2 s)\n' "$ok" "$PUSHES" "$max"
[ "$ok" -eq "$PUSHES" ] || pass=false
printf 'peak RSS (VmHWM): %d MiB   (target: <= 256 MiB)\n' "$hwm_mib"
[ "$hwm_mib" -le 256 ] || pass=false
$pass && echo "targets met" || echo "TARGET MISSED"
$pass
