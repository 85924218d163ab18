#!/usr/bin/env bash
# tagexport-server intake over real HTTP: signed GitHub, GitLab and Gitea
# tag pushes become durable jobs (202), redeliveries map to the same job,
# every refusal has its status and queues nothing, limits (body size,
# slow clients), the admin API, metrics, SIGHUP reload, SIGKILL after a
# 202, SIGTERM.  No export has to succeed here (t41 does that).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/server_lib.sh"
te_require curl jq openssl git

SECRET=test-secret-not-for-production
ADMIN_TOKEN=admin-$RANDOM-$RANDOM
printf '%s\n' "$SECRET" >"$TE_TMP/hook.secret"
printf '%s\n' "$ADMIN_TOKEN" >"$TE_TMP/admin.token"
git init -q --bare "$TE_TMP/origin.git"
LOG="$TE_TMP/server.log"
CFG="$TE_TMP/server.yaml"

write_config() {
	cat >"$CFG" <<YAML
listen: 127.0.0.1:0
state_dir: $TE_TMP/state
workers: 1
admin_token_file: admin.token
max_body_bytes: 65536
request_timeout: 2
retry_delay: 1
max_attempts: 2
projects:
$(intake_projects)
  - name: gt
    forge: gitea
    repository: infra/edge-proxy
    secret_env: TE_T40_SECRET
    git_url: $TE_TMP/origin.git
    export:
      repo: 127.0.0.1:1/x/stages
      tag: ["127.0.0.1:1/x/%image%:%git_tag%"]
$1
YAML
}
export TE_T40_SECRET=$SECRET
NET_PROJECT="  - name: net
    forge: github
    repository: acme-corp/widget-api
    secret_file: hook.secret
    git_url: http://127.0.0.1:9/nothing-listens-here.git
    export:
      repo: 127.0.0.1:1/x/stages
      tag: ['127.0.0.1:1/x/%image%:%git_tag%']"
write_config "$NET_PROJECT"
check "--check accepts the config" "$TE_SERVER" --config "$CFG" --check
start_server "$CFG" "$LOG"
check "healthz" test "$(curl -sS "http://127.0.0.1:$SRV_PORT/healthz" | jq -r .status)" = ok

F=$TE_FIXTURES
C1=c41d9e07b2f86a3315d0e8c97b1a2f4e6d5c3b2a

# ---- accepted tag pushes, one per forge ------------------------------
r=$(github_post gh "$F/github-push-tag.json" "$SECRET" d-gh-1)
check "github tag push -> 202 queued" test "${r%% *}" = 202
GH_JOB=$(jq -r .job <<<"${r#* }")
check "github answer names the job" grep -q '"status":"queued"' <<<"$r"
r=$(gitlab_post gl "$F/gitlab-tag-push.json" "$SECRET" idem-gl-1)
check "gitlab tag push -> 202" test "${r%% *}" = 202
GL_JOB=$(jq -r .job <<<"${r#* }")
r=$(gitea_post gt "$F/gitea-tag-push.json" "$SECRET" d-gt-1)
check "gitea tag push -> 202" test "${r%% *}" = 202
r=$(post /hooks/gt "$F/gitea-tag-push.json" -H 'X-Forgejo-Event: push' \
	-H 'X-Forgejo-Delivery: d-fj-1' \
	-H "X-Forgejo-Signature: $(hmac "$SECRET" "$F/gitea-tag-push.json")")
check "forgejo headers -> 202, same job as the gitea push" test "${r%% *}" = 202
check "3 jobs queued" test "$(job_count)" -eq 3

# ---- dedupe ------------------------------------------------------------
r=$(github_post gh "$F/github-push-tag.json" "$SECRET" d-gh-1)
check "github redelivery -> same job" test "$(jq -r .job <<<"${r#* }")" = "$GH_JOB"
# (workers run here: the job may have moved on; t41 pins the exact state)
check "redelivery answer: the job's state, marked duplicate" \
	jq -e '.duplicate and (.status | IN("queued", "running", "failed"))' <<<"${r#* }"
r=$(github_post gh "$F/github-push-tag.json" "$SECRET" d-gh-other)
check "same project+tag+commit, new delivery -> same job" test "$(jq -r .job <<<"${r#* }")" = "$GH_JOB"
r=$(gitlab_post gl "$F/gitlab-tag-push.json" "$SECRET" idem-gl-1)
check "gitlab resend (Idempotency-Key) -> same job" test "$(jq -r .job <<<"${r#* }")" = "$GL_JOB"
# A hook made by an integration sends the same body as "Service Hook".
r=$(gitlab_post gl "$F/gitlab-tag-push.json" "$SECRET" idem-gl-svc 'Service Hook')
check "gitlab Service Hook tag push -> the same job" test "$(jq -r .job <<<"${r#* }")" = "$GL_JOB"
check "still 3 jobs" test "$(job_count)" -eq 3

# ---- refusals: status code and nothing queued ----------------------------
expect() { # DESC WANT_STATUS RESULT
	check "$1 -> $2" test "${3%% *}" = "$2"
}
expect "bad github signature" 401 "$(post /hooks/gh "$F/github-push-tag.json" -H 'X-GitHub-Event: push' \
	-H 'X-Hub-Signature-256: sha256=0000000000000000000000000000000000000000000000000000000000000000')"
expect "missing github signature" 401 "$(post /hooks/gh "$F/github-push-tag.json" -H 'X-GitHub-Event: push')"
expect "sha1 only" 401 "$(post /hooks/gh "$F/github-push-tag.json" -H 'X-GitHub-Event: push' \
	-H 'X-Hub-Signature: sha1=81ec10fc6d6cb97f470ed0672e829f9da90c8196')"
expect "wrong algorithm prefix" 401 "$(post /hooks/gh "$F/github-push-tag.json" -H 'X-GitHub-Event: push' \
	-H "X-Hub-Signature-256: sha512=$(hmac "$SECRET" "$F/github-push-tag.json")")"
expect "signature by another secret" 401 "$(github_post gh "$F/github-push-tag.json" other-secret d-x)"
expect "wrong gitlab token" 401 "$(gitlab_post gl "$F/gitlab-tag-push.json" "${SECRET}x" k-x)"
expect "missing gitlab token" 401 "$(post /hooks/gl "$F/gitlab-tag-push.json" -H 'X-Gitlab-Event: Tag Push Hook')"
expect "empty gitea signature" 401 "$(post /hooks/gt "$F/gitea-tag-push.json" -H 'X-Gitea-Event: push' \
	-H 'X-Gitea-Signature:' -H 'X-Hub-Signature-256: sha256=')"
expect "unknown project" 404 "$(github_post nope "$F/github-push-tag.json" "$SECRET" d-x)"
expect "hostile project name" 404 "$(github_post ..%2F..%2Fetc "$F/github-push-tag.json" "$SECRET" d-x)"
printf '{"ref": "refs/tags/v1", ' >"$TE_TMP/broken.json"
expect "malformed JSON (signed)" 400 "$(github_post gh "$TE_TMP/broken.json" "$SECRET" d-x)"
printf '{"ref":"refs/tags/v9.9.9","ref":"refs/tags/v1"}' >"$TE_TMP/dup.json"
expect "duplicate JSON keys" 400 "$(github_post gh "$TE_TMP/dup.json" "$SECRET" d-x)"
github_body "$TE_TMP/other-repo.json" evil/widget-api v2.0.0 "$C1"
expect "repository of another project" 403 "$(github_post gh "$TE_TMP/other-repo.json" "$SECRET" d-x)"
github_body "$TE_TMP/opt.json" acme-corp/widget-api "v1--upload-pack=touch" "$C1"
jq -c '.ref="refs/tags/--upload-pack=touch"' "$TE_TMP/opt.json" >"$TE_TMP/opt2.json"
expect "option-like tag" 400 "$(gitea_post gt "$TE_TMP/opt2.json" "$SECRET" d-x)"
jq -c '.repository.full_name="infra/edge-proxy" | .ref="refs/tags/v1\u001b[31m\nforged"' \
	"$TE_TMP/opt.json" >"$TE_TMP/ctl.json"
expect "control characters in the tag" 400 "$(gitea_post gt "$TE_TMP/ctl.json" "$SECRET" d-x)"
jq -c '.repository.full_name="infra/edge-proxy" | .ref="refs/tags/a..b"' "$TE_TMP/opt.json" >"$TE_TMP/dots.json"
expect "tag with .." 400 "$(gitea_post gt "$TE_TMP/dots.json" "$SECRET" d-x)"
jq -c '.head_commit.id="c41d9e07;id" | .after="c41d9e07;id"' "$F/github-push-tag.json" >"$TE_TMP/badsha.json"
expect "bad commit id" 400 "$(github_post gh "$TE_TMP/badsha.json" "$SECRET" d-x)"
expect "GET on a hook" 405 "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SRV_PORT/hooks/gh")"

# ---- valid but ignored -> 200 ---------------------------------------------
ignored() { # DESC REASON RESULT
	check "$1 -> 200 ignored" bash -c '[ "${1%% *}" = 200 ] && jq -e --arg w "$2" ".ignored == \$w" <<<"${1#* }" >/dev/null' _ "$3" "$2"
}
ignored "github branch push" "branch push" "$(github_post gh "$F/github-push-branch.json" "$SECRET" d-b)"
printf '{"zen":"Design for failure.","hook_id":1}' >"$TE_TMP/ping.json"
ignored "github ping" ping "$(github_post gh "$TE_TMP/ping.json" "$SECRET" d-p ping)"
jq -c '.deleted=true | .after="0000000000000000000000000000000000000000" | .head_commit=null' \
	"$F/github-push-tag.json" >"$TE_TMP/del.json"
ignored "github tag deletion" "tag deleted" "$(github_post gh "$TE_TMP/del.json" "$SECRET" d-d)"
github_body "$TE_TMP/filtered.json" acme-corp/widget-api nightly-1 "$C1"
ignored "tag outside the globs" "tag filtered" "$(github_post gh "$TE_TMP/filtered.json" "$SECRET" d-f)"
# A captured signed delivery can be replayed at will: its log lines are
# rate-limited (20 a second).  200 replays over one keep-alive connection.
before=$(grep -c 'reason="tag filtered"' "$LOG")
urls=()
for _ in $(seq 1 200); do urls+=("http://127.0.0.1:$SRV_PORT/hooks/gh"); done
codes=$(curl -sS -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
	-H 'X-GitHub-Event: push' -H 'X-GitHub-Delivery: d-f' \
	-H "X-Hub-Signature-256: sha256=$(hmac "$SECRET" "$TE_TMP/filtered.json")" \
	--data-binary "@$TE_TMP/filtered.json" "${urls[@]}")
check "200 replays of a filtered tag -> 200 each" test "$(grep -c '^200$' <<<"$codes")" -eq 200
after=$(grep -c 'reason="tag filtered"' "$LOG")
check "and at most 20 log lines a second for them ($((after - before)))" \
	test $((after - before)) -le 60
# GitLab events are told by the body, not by X-Gitlab-Event.
jq -c '.object_kind="push" | .event_name="push" | .ref="refs/heads/main"' \
	"$F/gitlab-tag-push.json" >"$TE_TMP/gl-branch.json"
ignored "gitlab branch push" "branch push" "$(gitlab_post gl "$TE_TMP/gl-branch.json" "$SECRET" k-b 'Tag Push Hook')"
jq -c '.object_kind="merge_request" | del(.event_name)' \
	"$F/gitlab-tag-push.json" >"$TE_TMP/gl-mr.json"
ignored "gitlab merge request" "event not handled" "$(gitlab_post gl "$TE_TMP/gl-mr.json" "$SECRET" k-mr 'Service Hook')"
check "refusals and ignored events queued nothing" test "$(job_count)" -eq 3

# A tag that is hostile only to shells is data: queued, never executed.
gitea_body "$TE_TMP/shell.json" infra/edge-proxy "\$(touch\${IFS}$TE_TMP/pwned)" "$C1"
r=$(gitea_post gt "$TE_TMP/shell.json" "$SECRET" d-sh)
check "shell-looking tag -> 202 (it is data)" test "${r%% *}" = 202
sleep 1
check "and nothing ran it" test ! -e "$TE_TMP/pwned"

# ---- limits ------------------------------------------------------------
head -c 100000 /dev/zero >"$TE_TMP/big"
expect "Content-Length over max_body_bytes" 413 "$(post /hooks/gh "$TE_TMP/big" -H 'X-GitHub-Event: push')"
r=$(head -c 100000 /dev/zero | curl -sS -o /dev/null -w '%{http_code}' -X POST \
	-H 'Transfer-Encoding: chunked' -H 'X-GitHub-Event: push' --data-binary @- \
	"http://127.0.0.1:$SRV_PORT/hooks/gh")
check "chunked body over the limit -> 413" test "$r" = 413
# Slowloris: one header line per second never finishes a request; the
# server must drop the connection after request_timeout (2 s), not wait.
slow_client() (
	trap '' PIPE
	exec 3<>"/dev/tcp/127.0.0.1/$SRV_PORT" || exit 2
	printf 'POST /hooks/gh HTTP/1.1\r\nHost: x\r\n' >&3
	local i
	for i in $(seq 1 12); do
		sleep 0.5
		printf 'X-Slow-%d: a\r\n' "$i" >&3 2>/dev/null || exit 0
	done
	# still open after 6 s: closed only if reading gives EOF now
	timeout 1 cat <&3 >/dev/null && exit 0
	exit 1
)
start=$(date +%s)
check "slow header trickle is cut" slow_client
check "within a few seconds" test $(($(date +%s) - start)) -le 8
check "server still healthy" test "$(curl -sS "http://127.0.0.1:$SRV_PORT/healthz" | jq -r .status)" = ok

# ---- admin API -----------------------------------------------------------
check "API without token -> 401" test "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SRV_PORT/api/v1/jobs")" = 401
check "API with a wrong token -> 401" test "$(curl -sS -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' "http://127.0.0.1:$SRV_PORT/api/v1/jobs")" = 401
j=$(api GET "/api/v1/jobs/$GH_JOB")
check "job detail" jqt --arg c "$C1" '.project == "gh" and .tag == "v1.4.0" and .commit == $c and .source == "github"' <<<"$j"
check "unknown job -> 404" test "$(api GET /api/v1/jobs/nope -o /dev/null -w '%{http_code}')" = 404
r=$(api POST /api/v1/projects/gh/exports -o /dev/null -w '%{http_code}' -d '{"ref":"refs/tags/v7.0.0","commit":"'"$C1"'"}')
check "post-receive style export request -> 202" test "$r" = 202
check "API export queued a job" test "$(job_count)" -eq 5
r=$(api POST /api/v1/projects/gh/exports -o /dev/null -w '%{http_code}' -d '{"ref":"refs/heads/main","commit":"'"$C1"'"}')
check "API export of a branch -> 400" test "$r" = 400
r=$(api POST /api/v1/projects/zz/exports -o /dev/null -w '%{http_code}' -d '{"ref":"refs/tags/v1","commit":"'"$C1"'"}')
check "API export of an unknown project -> 404" test "$r" = 404
# The origin has none of these tags: jobs fail (not found), retry requeues.
wait_job "$GH_JOB" failed 20
check "failed job says why" jqt '.error | length > 0' <<<"$(api GET "/api/v1/jobs/$GH_JOB")"
r=$(api POST "/api/v1/jobs/$GH_JOB/retry" -o /dev/null -w '%{http_code}')
check "retry a failed job -> 200" test "$r" = 200
m=$(curl -sS "http://127.0.0.1:$SRV_PORT/metrics")
check "metrics count refusals" grep -q 'tagexport_webhook_requests_total{project="gh",forge="github",result="unauthorized"} [1-9]' <<<"$m"
check "metrics count accepted" grep -q 'result="accepted"' <<<"$m"
check "metrics has job states" grep -q '^tagexport_jobs{state="failed"}' <<<"$m"
check "metrics has the duration histogram" grep -q 'tagexport_export_duration_seconds_bucket{le="+Inf"}' <<<"$m"
check "metrics time accepted pushes" grep -q '^tagexport_webhook_accept_seconds_count [1-9]' <<<"$m"
check "accept buckets are cumulative" awk '/^tagexport_webhook_accept_seconds_bucket/ {v=$2+0; if (v < prev) exit 1; prev=v} END {exit prev == 0}' <<<"$m"

# ---- transient (network) failures are retried with back-off ----------------
r=$(github_post net "$F/github-push-tag.json" "$SECRET" d-net)
NJOB=$(jq -r .job <<<"${r#* }")
check "network failure: job retried, then failed after max_attempts" wait_job "$NJOB" failed 30
check "two attempts were made" jqt '.attempts == 2' <<<"$(api GET "/api/v1/jobs/$NJOB")"

# ---- logs: no secrets, no raw control characters ---------------------------
check "secret never logged" bash -c '! grep -qF "$1" "$2"' _ "$SECRET" "$LOG"
check "admin token never logged" bash -c '! grep -qF "$1" "$2"' _ "$ADMIN_TOKEN" "$LOG"
check "no raw escape characters in the log" bash -c '! grep -qP "\x1b" "$1"' _ "$LOG"

# ---- SIGHUP reload ------------------------------------------------------------
write_config "$NET_PROJECT
  - name: added
    forge: github
    repository: acme-corp/widget-api
    secret_file: hook.secret
    git_url: $TE_TMP/origin.git
    export:
      repo: 127.0.0.1:1/x/stages
      tag: ['127.0.0.1:1/x/%image%:%git_tag%']"
kill -HUP "$SRV_PID"
sleep 0.5
expect "project added by SIGHUP" 200 "$(github_post added "$F/github-push-branch.json" "$SECRET" d-r)"
printf 'listen: [oops\n' >"$CFG"
kill -HUP "$SRV_PID"
sleep 0.5
check "broken config on SIGHUP is logged" grep -q 'reload failed' "$LOG"
expect "old config still serves" 200 "$(github_post added "$F/github-push-branch.json" "$SECRET" d-r2)"
write_config ""

# ---- SIGKILL right after a 202, then restart --------------------------------------
github_body "$TE_TMP/k.json" acme-corp/widget-api v3.0.0 "$C1"
r=$(github_post gh "$TE_TMP/k.json" "$SECRET" d-kill)
KJOB=$(jq -r .job <<<"${r#* }")
kill -KILL "$SRV_PID"
wait "$SRV_PID" 2>/dev/null
check "202 before the kill" test "${r%% *}" = 202
start_server "$CFG" "$LOG"
check "job accepted before SIGKILL survives the restart" test "$(api GET "/api/v1/jobs/$KJOB" | jq -r .tag)" = v3.0.0
r=$(github_post gh "$TE_TMP/k.json" "$SECRET" d-kill)
check "redelivery after restart -> same job" test "$(jq -r .job <<<"${r#* }")" = "$KJOB"

# ---- JSON logs and SIGTERM ---------------------------------------------------------
kill -TERM "$SRV_PID"
stop_status "$SRV_PID" 20
check "SIGTERM -> exit 0" test "$STOP_RC" = 0
write_config "log_format: json"
: >"$TE_TMP/json.log"
start_server "$CFG" "$TE_TMP/json.log"
github_post gh "$TE_TMP/ctl.json" "$SECRET" "d-$(printf 'x\033y')" >/dev/null
gitea_post gt "$TE_TMP/shell.json" "$SECRET" d-sh >/dev/null
kill -TERM "$SRV_PID"
stop_status "$SRV_PID" 20
check "JSON log lines all parse" jqt . "$TE_TMP/json.log"
check "JSON log has messages" test "$(jq -r .msg "$TE_TMP/json.log" | grep -c .)" -gt 2

# ---- retention: finished jobs older than job_retention_days are pruned ---------------
JOBS="$TE_TMP/state/queue/jobs"
finished=()
for f in "$JOBS"/*.json; do
	case $(jq -r .state "$f") in succeeded | failed) finished+=("$f") ;; esac
done
check "two finished jobs to work with" test "${#finished[@]}" -ge 2
OLD_JOB=$(jq -r .id "${finished[0]}")
KEEP_JOB=$(jq -r .id "${finished[1]}")
jq -c '.updated_at = 1000000000' "${finished[0]}" >"$TE_TMP/old.json"
mv "$TE_TMP/old.json" "${finished[0]}"
write_config "job_retention_days: 30"
: >"$LOG"
start_server "$CFG" "$LOG"
check "job finished in 2001 is pruned at start-up" \
	test "$(api GET "/api/v1/jobs/$OLD_JOB" -o /dev/null -w '%{http_code}')" = 404
check "its file is gone" test ! -e "${finished[0]}"
check "a recent finished job stays" test "$(api GET "/api/v1/jobs/$KEEP_JOB" | jq -r .id)" = "$KEEP_JOB"
check "the prune is logged" grep -q 'finished jobs pruned.*count="\?1' "$LOG"
kill -TERM "$SRV_PID"
stop_status "$SRV_PID" 20
start_server "$CFG" "$LOG"
check "a pruned job does not come back from the journal" \
	test "$(api GET "/api/v1/jobs/$OLD_JOB" -o /dev/null -w '%{http_code}')" = 404
kill -TERM "$SRV_PID"
stop_status "$SRV_PID" 20

te_finish
