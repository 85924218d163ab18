#!/usr/bin/env bash
# The job pages in a real browser: headless Chromium loads /jobs and the
# pages of a succeeded, a running and a failed job (Basic credentials in
# the URL's userinfo, then ui_public), takes screenshots at phone width,
# and the DOM it built (--dump-dom) shows each job's tag, state and
# exported references; a log line holding <script> shows as text and makes
# no script element.  Without credentials: 401 with a Basic challenge.  No
# token or credential appears on any page.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/server_lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl chromium python3

start_registry REG
make_base_image "$REG/base/busybox:1"

ADMIN_TOKEN=admin-$RANDOM-$RANDOM
GIT_SECRET=git-secret-$RANDOM
printf '%s\n' "$ADMIN_TOKEN" >"$TE_TMP/admin.token"
printf 'hook-secret-%s\n' "$RANDOM" >"$TE_TMP/hook.secret"
LOG="$TE_TMP/server.log"
CFG="$TE_TMP/server.yaml"
ORIGIN="$TE_TMP/origin.git"
WORK="$TE_TMP/work"
werf_origin "$ORIGIN" "$WORK" "$REG/base/busybox:1" srv-pages
C1=$(git_release "$WORK" "$ORIGIN" v1.0.0 one)
# A commit whose werf.yaml the export refuses, quoting the bad key: the
# job's error and log hold "<script>".
printf '<script>alert(1)</script>: 1\n' >>"$WORK/werf.yaml"
C2=$(git_release "$WORK" "$ORIGIN" v6.6.6 hostile)

# A git server that accepts connections and never answers: a job fetching
# from it stays running.
TARPIT_PF="$TE_TMP/tarpit.port"
python3 - "$TARPIT_PF" >/dev/null 2>&1 <<'PY' &
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
held = []
while True:
    held.append(s.accept()[0])
PY
TE_PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$TARPIT_PF" ] && break; sleep 0.1; done
TARPIT="127.0.0.1:$(cat "$TARPIT_PF")"

project() { # NAME GIT_URL
	printf '  - name: %s\n    forge: github\n    repository: acme/app\n' "$1"
	printf '    secret_file: hook.secret\n    git_url: %s\n' "$2"
	printf '    export:\n      repo: %s/%s/stages\n      insecure_registry: true\n' "$REG" "$1"
	printf '      tag: ["%s/%s/%%image%%:%%git_tag%%"]\n' "$REG" "$1"
}
write_config() { # UI_PUBLIC
	{
		cat <<YAML
listen: 127.0.0.1:0
state_dir: $TE_TMP/state
workers: 3
max_attempts: 1
request_timeout: 5
admin_token_file: admin.token
shutdown_timeout: 0
ui_public: $1
projects:
YAML
		project web "$ORIGIN"
		project stuck "http://bob:$GIT_SECRET@$TARPIT/app.git"
	} >"$CFG"
}
write_config false
start_server "$CFG" "$LOG"
BASE="http://127.0.0.1:$SRV_PORT"
AUTHED="http://anyone:$ADMIN_TOKEN@127.0.0.1:$SRV_PORT"

export_job() { # PROJECT TAG COMMIT: queue through the API, print the id
	api POST "/api/v1/projects/$1/exports" \
		-d "{\"ref\":\"refs/tags/$2\",\"commit\":\"$3\"}" | jq -r .job
}
J_OK=$(export_job web v1.0.0 "$C1")
J_BAD=$(export_job web v6.6.6 "$C2")
J_RUN=$(export_job stuck v1.0.0 "$C1")
check "export succeeded" wait_job "$J_OK" succeeded 600
check "hostile werf.yaml failed" wait_job "$J_BAD" failed 120
check "the hostile key is in the job's log" \
	jqt '.log | contains("<script>")' <<<"$(api GET "/api/v1/jobs/$J_BAD")"
check "tarpit job running" wait_job "$J_RUN" running 60
REF=$(api GET "/api/v1/jobs/$J_OK" | jq -r '.results[0]')
check "the export has a reference" test -n "$REF" -a "$REF" != null
REF_NAME=${REF%@*}
check "and skopeo sees it" skopeo_ok --tls-verify=false "docker://$REF_NAME"

# browse ARGS...: headless Chromium, a fresh profile, nothing from the
# network.
browse() {
	local profile
	profile=$(mktemp -d "$TE_TMP/profile.XXXXXX")
	timeout 120 chromium --headless --no-sandbox --disable-gpu \
		--disable-quic --no-first-run --disable-background-networking \
		--disable-component-update --disable-sync \
		--user-data-dir="$profile" "$@" 2>>"$TE_TMP/chromium.log"
}
# shot NAME URL: a screenshot at phone width; prints the PNG's path
shot() {
	(cd "$TE_TMP" && browse --window-size=390,844 \
		--screenshot="$TE_TMP/$1.png" "$2" >/dev/null)
	echo "$TE_TMP/$1.png"
}
# png_ok FILE WIDTH: a PNG of that width, with more in it than a blank page
png_ok() {
	[ -f "$1" ] || return 1
	[ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || return 1
	[ "$(od -An -tu4 --endian=big -j16 -N4 "$1" | tr -d ' ')" = "$2" ] || return 1
	[ "$(stat -c %s "$1")" -gt 6000 ]
}
# no_secrets FILE: neither the admin token nor the git credentials
no_secrets() {
	! grep -qF -e "$ADMIN_TOKEN" -e "$GIT_SECRET" -e "hook-secret" "$1"
}

# ---- /jobs ------------------------------------------------------------------------
browse --dump-dom "$AUTHED/jobs" >"$TE_TMP/list.html"
check "/jobs lists the tags" grep -q '>v1.0.0</a>' "$TE_TMP/list.html"
check "/jobs lists the hostile tag's job" grep -q '>v6.6.6</a>' "$TE_TMP/list.html"
for st in succeeded failed running; do
	check "/jobs shows a $st job in words and colour" \
		grep -q "class=\"st st-$st\">[^<]* $st</span>" "$TE_TMP/list.html"
done
check "/jobs shows the exported reference" grep -qF ">$REF_NAME</code>" "$TE_TMP/list.html"
check "/jobs shows the short commit" grep -q ">${C1:0:7}</code>" "$TE_TMP/list.html"
check "/jobs shows the origin" grep -q '>api</td>' "$TE_TMP/list.html"
check "/jobs: exact UTC time on hover" grep -qE '<time title="[0-9-]+ [0-9:]+ UTC">([0-9]+ s ago|just now)</time>' "$TE_TMP/list.html"
check "/jobs refreshes while a job runs" grep -q 'http-equiv="refresh"' "$TE_TMP/list.html"
check "/jobs: no secret" no_secrets "$TE_TMP/list.html"
check "/jobs screenshot at phone width" png_ok "$(shot list "$AUTHED/jobs")" 390

# ---- a succeeded job ---------------------------------------------------------------
browse --dump-dom "$AUTHED/jobs/$J_OK" >"$TE_TMP/ok.html"
check "job page: the tag" grep -q '<h1>v1.0.0 ' "$TE_TMP/ok.html"
check "job page: succeeded" grep -q 'st-succeeded' "$TE_TMP/ok.html"
check "job page: the reference with its digest" grep -qF "<code>$REF</code>" "$TE_TMP/ok.html"
check "job page: the log" grep -q 'fetching tag v1.0.0' "$TE_TMP/ok.html"
check "a finished job's page does not refresh" bash -c '! grep -q http-equiv "$1"' _ "$TE_TMP/ok.html"

# ---- a running job -------------------------------------------------------------------
browse --dump-dom "$AUTHED/jobs/$J_RUN" >"$TE_TMP/run.html"
check "running job page: the tag" grep -q '<h1>v1.0.0 ' "$TE_TMP/run.html"
check "running job page: running" grep -q 'class="st st-running">[^<]* running<' "$TE_TMP/run.html"
check "running job page: its log so far" grep -q 'info: fetching tag v1.0.0' "$TE_TMP/run.html"
check "running job page refreshes" grep -q '<meta http-equiv="refresh" content="3">' "$TE_TMP/run.html"
check "running job page: no secret (the git URL has one)" no_secrets "$TE_TMP/run.html"
check "running job screenshot" png_ok "$(shot running "$AUTHED/jobs/$J_RUN")" 390

# ---- a failed job, <script> in its log ---------------------------------------------------
browse --dump-dom "$AUTHED/jobs/$J_BAD" >"$TE_TMP/bad.html"
check "failed job page: the tag" grep -q '<h1>v6.6.6 ' "$TE_TMP/bad.html"
check "failed job page: failed" grep -q 'class="st st-failed">[^<]* failed<' "$TE_TMP/bad.html"
check "the <script> of the log shows as text" grep -qF '&lt;script&gt;alert(1)&lt;/script&gt;' "$TE_TMP/bad.html"
check "and made no script element" bash -c '! grep -qi "<script" "$1"' _ "$TE_TMP/bad.html"
check "failed job screenshot" png_ok "$(shot failed "$AUTHED/jobs/$J_BAD")" 390
check "failed job page: no secret" no_secrets "$TE_TMP/bad.html"

# ---- access -------------------------------------------------------------------------------
hdrs=$(curl -sS -D - -o "$TE_TMP/401.html" "$BASE/jobs")
check "no credentials -> 401" grep -q '^HTTP/1.1 401' <<<"$hdrs"
check "with a Basic challenge" grep -qi '^WWW-Authenticate: Basic realm=' <<<"$hdrs"
check "no script may run on a page (CSP)" grep -qi "^Content-Security-Policy: default-src 'none'" <<<"$hdrs"
check "the 401 page has no job" bash -c '! grep -q v1.0.0 "$1"' _ "$TE_TMP/401.html"
check "wrong password -> 401" test "$(curl -s -o /dev/null -w '%{http_code}' -u "anyone:$ADMIN_TOKEN-x" "$BASE/jobs/$J_OK")" = 401
check "the bearer token is not a page credential" test "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE/jobs")" = 401
browse --dump-dom "$BASE/jobs/$J_OK" >"$TE_TMP/noauth.html"
check "chromium without credentials sees no job" bash -c '! grep -q "v1.0.0" "$1"' _ "$TE_TMP/noauth.html"
check "no such job -> 404" test "$(curl -s -o /dev/null -w '%{http_code}' -u "x:$ADMIN_TOKEN" "$BASE/jobs/1700000000-00000000")" = 404
check "hostile job path -> 404" test "$(curl -s -o /dev/null -w '%{http_code}' -u "x:$ADMIN_TOKEN" "$BASE/jobs/..%2f..%2fetc")" = 404
check "POST /jobs -> 405" test "$(curl -s -o /dev/null -w '%{http_code}' -X POST -u "x:$ADMIN_TOKEN" "$BASE/jobs")" = 405

write_config true
kill -HUP "$SRV_PID"
for _ in $(seq 1 50); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/jobs")" = 200 ] && break
	sleep 0.1
done
browse --dump-dom "$BASE/jobs" >"$TE_TMP/public.html"
check "ui_public: /jobs without credentials" grep -q '>v1.0.0</a>' "$TE_TMP/public.html"
check "ui_public: no secret" no_secrets "$TE_TMP/public.html"
check "ui_public leaves the API closed" test "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/api/v1/jobs")" = 401

# ---- a poll of a remote that never answers ---------------------------------------------
# It runs on the poller thread: the request is answered 202 before its
# deadline, the next one too, and the server still stops.
r=$(api POST /api/v1/projects/stuck/poll -w ' %{http_code}')
check "POST poll of a hanging remote -> 202 polling" test "${r##* }" = 202
check "saying it goes on" jqt '.status == "polling"' <<<"${r% *}"
r=$(api POST /api/v1/projects/web/poll -w ' %{http_code}')
check "a poll queued behind it -> 202 too" test "${r##* }" = 202
check "pages still answer meanwhile" test "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/jobs")" = 200
kill -TERM "$SRV_PID"
stop_status "$SRV_PID" 60
check "SIGTERM with a hanging poll and job -> exit 0" test "$STOP_RC" = 0
check "the hanging poll was left behind" grep -q 'poller still busy' "$LOG"
check "no sanitizer report" bash -c '! grep -q Sanitizer "$1"' _ "$LOG"
te_finish
