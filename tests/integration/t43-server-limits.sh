#!/usr/bin/env bash
# tagexport-server under hostile load, over real HTTP with real HMACs:
# connections per client address, the budget of bodies not authenticated
# yet (503 + Retry-After while signed deliveries still get in), the
# /metrics bearer token, and a failed job queued again by a new delivery.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/server_lib.sh"
te_require curl jq openssl git python3

HOSTILE="$(dirname "$0")/hostile_client.py"
SECRET=t43-secret-not-for-production
ADMIN_TOKEN=admin-$RANDOM-$RANDOM
METRICS_TOKEN=metrics-$RANDOM-$RANDOM
printf '%s\n' "$SECRET" >"$TE_TMP/hook.secret"
printf '%s\n' "$ADMIN_TOKEN" >"$TE_TMP/admin.token"
printf '%s\n' "$METRICS_TOKEN" >"$TE_TMP/metrics.token"
git init -q --bare "$TE_TMP/origin.git"
LOG="$TE_TMP/server.log"
CFG="$TE_TMP/server.yaml"
# 1 MiB budget: bodies over 64 KiB may fill 768 KiB of it, the rest is
# for small ones.  request_timeout is long so that the slow clients hold
# their shares for the whole test.
cat >"$CFG" <<YAML
listen: 127.0.0.1:0
state_dir: $TE_TMP/state
workers: 1
admin_token_file: admin.token
metrics_token_file: metrics.token
max_pending_body_bytes: 1048576
request_timeout: 60
max_attempts: 1
projects:
$(intake_projects)
YAML
start_server "$CFG" "$LOG"
URL="http://127.0.0.1:$SRV_PORT"
C1=c41d9e07b2f86a3315d0e8c97b1a2f4e6d5c3b2a
C2=9e2a41c0d7b35f1a8c6e2d4b0f9a7c5e3d1b2a40

# ---- /metrics behind a bearer token --------------------------------------
code() { curl -sS -o /dev/null -w '%{http_code}' "$@"; }
metrics() { curl -sS -H "Authorization: Bearer $METRICS_TOKEN" "$URL/metrics"; }
check "metrics without a token -> 401" test "$(code "$URL/metrics")" = 401
check "metrics with a wrong token -> 401" test "$(code -H 'Authorization: Bearer nope' "$URL/metrics")" = 401
check "metrics with the admin token -> 401" test "$(code -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/metrics")" = 401
check "the 401 names the scheme" grep -qi '^WWW-Authenticate: Bearer' <<<"$(curl -sS -D - -o /dev/null "$URL/metrics")"
check "metrics with the token -> 200" test "$(code -H "Authorization: Bearer $METRICS_TOKEN" "$URL/metrics")" = 200
check "metrics show the pending-body gauge" grep -q '^tagexport_pending_body_bytes 0$' <<<"$(metrics)"

# ---- connections per client address ----------------------------------------
# 127.0.0.5 is used by nothing else here: the default limit is 64.
r=$(python3 "$HOSTILE" conns 127.0.0.1 "$SRV_PORT" 65 --source 127.0.0.5)
check "65 connections from one address: 64 answered, 1 closed ($r)" test "$r" = "answered 64 closed 1"
check "another address is served meanwhile" test "$(code "$URL/healthz")" = 200

# ---- the pending-body budget ------------------------------------------------
pending() { metrics | awk '$1 == "tagexport_pending_body_bytes" {print $2}'; }
# wait_pending BYTES: until the gauge reads BYTES (at most 10 s).
# wait_pending BYTES [TENTHS]: until the gauge reads BYTES (10 s default).
wait_pending() {
	local i
	for i in $(seq 1 "${2:-100}"); do
		[ "$(pending)" = "$1" ] && return 0
		sleep 0.1
	done
	echo "pending body bytes: $(pending), wanted $1" >&2
	return 1
}
# Two unauthenticated bodies of 384 KiB, trickling: 768 KiB reserved.
python3 "$HOSTILE" slow 127.0.0.1 "$SRV_PORT" /hooks/gh --clients 2 \
	--length 393216 --rate 1024 --duration 120 --source 127.0.0.6 \
	>"$TE_TMP/slow.out" &
SLOW_PID=$!
TE_PIDS+=("$SLOW_PID")
check "slow bodies reserve their declared length" wait_pending 786432

head -c 102400 /dev/zero >"$TE_TMP/100k"
r=$(curl -sS -D "$TE_TMP/busy.h" -o "$TE_TMP/busy.b" -w '%{http_code}' -X POST \
	-H 'X-GitHub-Event: push' -H "X-Hub-Signature-256: sha256=$(hmac nope "$TE_TMP/100k")" \
	--data-binary "@$TE_TMP/100k" "$URL/hooks/gh")
check "a new unauthenticated 100 KiB body -> 503" test "$r" = 503
check "with Retry-After (request_timeout)" grep -qi '^Retry-After: 60' "$TE_TMP/busy.h"
check "and a reason" jqt '.error | test("retry later")' "$TE_TMP/busy.b"
r=$(head -c 102400 /dev/zero | curl -sS -o /dev/null -w '%{http_code}' -X POST \
	-H 'Transfer-Encoding: chunked' -H 'X-GitHub-Event: push' \
	-H "X-Hub-Signature-256: sha256=$(hmac nope "$TE_TMP/100k")" --data-binary @- "$URL/hooks/gh")
check "a chunked one crossing the budget as it grows -> 503" test "$r" = 503
head -c 900000 /dev/zero >"$TE_TMP/900k"
r=$(post /hooks/gh "$TE_TMP/900k" -H 'X-GitHub-Event: push')
check "a body over 3/4 of the budget could never fit -> 413" test "${r%% *}" = 413

echo '{"zen":"small"}' >"$TE_TMP/small"
r=$(post /hooks/gh "$TE_TMP/small" -H 'X-GitHub-Event: push' -H 'X-Hub-Signature-256: sha256=00')
check "a small body still fits (bad signature -> 401)" test "${r%% *}" = 401
github_body "$TE_TMP/push.json" acme-corp/widget-api v2.0.0 "$C2"
r=$(github_post gh "$TE_TMP/push.json" "$SECRET" d-busy-1)
check "a signed GitHub tag push still -> 202" test "${r%% *}" = 202
gitlab_body "$TE_TMP/gl.json" platform/ingest-worker v3.0.0 "$C2"
jq -c '.padding = ("x" * 200000)' "$TE_TMP/gl.json" >"$TE_TMP/gl-big.json"
r=$(gitlab_post gl "$TE_TMP/gl-big.json" "$SECRET" idem-big-1)
check "a 200 KiB GitLab push with its token takes no share -> 202" test "${r%% *}" = 202
r=$(gitlab_post gl "$TE_TMP/gl-big.json" wrong-token idem-big-2)
check "the same with a wrong token counts and is refused -> 503" test "${r%% *}" = 503
check "the slow bodies still hold exactly their shares" test "$(pending)" = 786432
m=$(metrics)
check "metrics count the refusals" grep -q 'result="busy"} [1-9]' <<<"$m"
kill "$SLOW_PID" 2>/dev/null
wait "$SLOW_PID" 2>/dev/null
# A closed connection is normally noticed at once; the contract is that no
# share outlives request_timeout (60 s here), which a loaded machine needs.
check "closed connections give their shares back" wait_pending 0 650
r=$(post /hooks/gh "$TE_TMP/100k" -H 'X-GitHub-Event: push' -H 'X-Hub-Signature-256: sha256=00')
check "then a 100 KiB body is admitted again (-> 401)" test "${r%% *}" = 401

# ---- a failed job is queued again by a new delivery -----------------------
# The origin has no tags: every export fails at once (not retried).
github_body "$TE_TMP/v1.json" acme-corp/widget-api v1.0.0 "$C1"
r=$(github_post gh "$TE_TMP/v1.json" "$SECRET" d-v1)
JOB=$(jq -r .job <<<"${r#* }")
check "tag push -> 202" test "${r%% *}" = 202
check "the job fails" wait_job "$JOB" failed 30
r=$(github_post gh "$TE_TMP/v1.json" "$SECRET" d-v1)
check "redelivery of the failed job -> 202, the same job queued again" \
	jqt --arg j "$JOB" '.job == $j and .status == "queued" and .requeued and .duplicate' <<<"${r#* }"
check "it runs again and fails again" wait_job "$JOB" failed 30
check "a second attempt was made" jqt '.attempts == 2' <<<"$(api GET "/api/v1/jobs/$JOB")"
r=$(api POST /api/v1/projects/gh/exports -d '{"ref":"refs/tags/v1.0.0","commit":"'"$C1"'"}')
check "API export of the failed tag + commit -> the same job queued again" \
	jqt --arg j "$JOB" '.job == $j and .requeued' <<<"$r"
check "third attempt" wait_job "$JOB" failed 30
check "third attempt counted" jqt '.attempts == 3' <<<"$(api GET "/api/v1/jobs/$JOB")"
check "no new job was made" test "$(api GET /api/v1/jobs | jq '[.jobs[] | select(.tag == "v1.0.0")] | length')" = 1

# ---- logs ----------------------------------------------------------------------
check "metrics token never logged" bash -c '! grep -qF "$1" "$2"' _ "$METRICS_TOKEN" "$LOG"
check "the requeue is logged" grep -q 'failed job queued again' "$LOG"
check "busy refusals are logged" grep -q 'pending body budget spent' "$LOG"
te_finish
