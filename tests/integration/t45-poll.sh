#!/usr/bin/env bash
# tagexport-server polls git_url for tags no webhook announced: the first
# poll only records the tags there are; a tag pushed later (no webhook) is
# exported within two poll intervals, with origin "poll"; a tag the
# project's globs filter is not; a tag pushed while the server was stopped
# is exported after it starts; POST /api/v1/projects/<name>/poll polls now
# and answers what it queued; a tag whose job failed is not queued again; a
# moved tag gets a job for its new commit.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/server_lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl

INTERVAL=2
start_registry REG
make_base_image "$REG/base/busybox:1"

ADMIN_TOKEN=admin-$RANDOM
printf '%s\n' "$ADMIN_TOKEN" >"$TE_TMP/admin.token"
printf 'unused-secret\n' >"$TE_TMP/hook.secret"
LOG="$TE_TMP/server.log"
CFG="$TE_TMP/server.yaml"
ORIGIN="$TE_TMP/origin.git"
WORK="$TE_TMP/work"
werf_origin "$ORIGIN" "$WORK" "$REG/base/busybox:1" srv-poll
release() { git_release "$WORK" "$ORIGIN" "$@"; } # TAG CONTENT

project() { # NAME POLL_INTERVAL
	printf '  - name: %s\n    forge: github\n    repository: acme/app\n' "$1"
	printf '    secret_file: hook.secret\n    git_url: %s\n' "$ORIGIN"
	printf '    poll_interval: %s\n    tags: ["v*"]\n' "$2"
	printf '    export:\n      repo: %s/%s/stages\n      insecure_registry: true\n' "$REG" "$1"
	printf '      tag: ["%s/%s/%%image%%:%%git_tag%%"]\n' "$REG" "$1"
}
{
	cat <<YAML
listen: 127.0.0.1:0
state_dir: $TE_TMP/state
workers: 2
admin_token_file: admin.token
shutdown_timeout: 0
projects:
YAML
	project pl "$INTERVAL"
	project manual 0
} >"$CFG"

exported() { skopeo_ok --tls-verify=false "docker://$1"; }
# job_for PROJECT TAG: the id of the project's job for TAG ("" if none)
job_for() {
	api GET /api/v1/jobs | jq -r --arg p "$1" --arg t "$2" \
		'[.jobs[] | select(.project == $p and .tag == $t)][0].id // ""'
}
# wait_job_for PROJECT TAG SECONDS: until such a job exists; prints its id
wait_job_for() {
	local i id
	for i in $(seq 1 $(($3 * 10))); do
		id=$(job_for "$1" "$2")
		[ -n "$id" ] && echo "$id" && return 0
		sleep 0.1
	done
	return 1
}
# wait_file FILE SECONDS
wait_file() {
	local i
	for i in $(seq 1 $(($2 * 10))); do
		[ -s "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# ---- the first poll records what exists, exports nothing old -----------------
C0=$(release v1.0.0 old)
start_server "$CFG" "$LOG"
SET="$TE_TMP/state/poll/pl.tags"
check "first poll writes the seen set" wait_file "$SET" 30
check "the set holds the old tag at its commit" grep -qx "$C0 v1.0.0" "$SET"
check "first poll logged" grep -q 'first poll, existing tags recorded.*project="pl"' "$LOG"
check "no job for the old tag" test "$(job_count)" = 0

# ---- a tag pushed with no webhook: exported within two intervals -----------
PUSHED=$(date +%s)
C1=$(release v1.1.0 one)
J1=$(wait_job_for pl v1.1.0 30)
check "a job for the pushed tag" test -n "$J1"
res=$(api GET "/api/v1/jobs/$J1")
check "queued within two intervals of the push" \
	test $(($(jq .created_at <<<"$res") - PUSHED)) -le $((2 * INTERVAL))
check "origin poll" jqt '.origin == "poll" and .source == "poll"' <<<"$res"
check "on the tag's commit (annotated tag peeled)" jqt --arg c "$C1" '.commit == $c' <<<"$res"
check "it is exported" wait_job "$J1" succeeded 600
check "skopeo sees the exported image" exported "$REG/pl/app:v1.1.0"
check "the old tag was never exported" bash -c '! skopeo inspect --tls-verify=false "docker://$1" >/dev/null 2>&1' _ "$REG/pl/app:v1.0.0"

# ---- a filtered tag is not exported ---------------------------------------------
git -C "$WORK" tag nightly-1
git -C "$WORK" push -q "$ORIGIN" refs/tags/nightly-1 2>/dev/null
r=$(api POST /api/v1/projects/pl/poll -w ' %{http_code}')
check "POST poll -> 200" test "${r##* }" = 200
check "nothing queued for a filtered tag" jqt '.queued == [] and .first == false' <<<"${r% *}"
check "the filtered tag is seen all the same" grep -q ' nightly-1$' "$SET"
check "no job for the filtered tag" test -z "$(job_for pl nightly-1)"

# ---- POST .../poll on a project that does not poll by itself --------------------
r=$(api POST /api/v1/projects/manual/poll)
check "manual: the first poll records" jqt '.first == true and .queued == []' <<<"$r"
C2=$(release v1.2.0 two)
r=$(api POST /api/v1/projects/manual/poll)
check "manual: the new tag queued, answered with its job" \
	jqt --arg c "$C2" '.queued | length == 1 and .[0].tag == "v1.2.0" and .[0].commit == $c and (.[0].job | length) == 19' <<<"$r"
JM=$(jq -r '.queued[0].job' <<<"$r")
check "manual: origin poll" jqt '.origin == "poll"' <<<"$(api GET "/api/v1/jobs/$JM")"
r=$(api POST /api/v1/projects/manual/poll)
check "manual: polled again, nothing new" jqt '.queued == []' <<<"$r"
check "POST poll without the token -> 401" test "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$SRV_PORT/api/v1/projects/pl/poll")" = 401
check "POST poll of an unknown project -> 404" test "$(api POST /api/v1/projects/nope/poll -o /dev/null -w '%{http_code}')" = 404
check "GET poll -> 405" test "$(api GET /api/v1/projects/pl/poll -o /dev/null -w '%{http_code}')" = 405
check "manual: exported" wait_job "$JM" succeeded 600
check "manual: skopeo sees it" exported "$REG/manual/app:v1.2.0"

# ---- a tag whose job failed is left failed, not queued again by a poll --------------
printf 'bogus: 1\n' >>"$WORK/werf.yaml"
C5=$(release v1.2.1 broken)
git -C "$WORK" checkout -q HEAD~1 -- werf.yaml
JF=$(api POST /api/v1/projects/manual/exports \
	-d "{\"ref\":\"refs/tags/v1.2.1\",\"commit\":\"$C5\"}" | jq -r .job)
check "the API's job for a broken werf.yaml fails" wait_job "$JF" failed 120
r=$(api POST /api/v1/projects/manual/poll)
check "the poll leaves a tag that has a job alone" jqt '.queued == []' <<<"$r"
check "the failed job stays failed" \
	jqt '.state == "failed" and .attempts == 1' <<<"$(api GET "/api/v1/jobs/$JF")"

# ---- a moved tag: a job for its new commit ------------------------------------------
echo moved >"$WORK/version"
git_commit_all "$WORK" "move v1.2.0"
git -C "$WORK" -c user.name=t -c user.email=t@example.com tag -f -a v1.2.0 -m moved >/dev/null
git -C "$WORK" push -q -f "$ORIGIN" main refs/tags/v1.2.0 2>/dev/null
C3=$(git -C "$WORK" rev-parse HEAD)
r=$(api POST /api/v1/projects/manual/poll)
check "moved tag queued again at its new commit" \
	jqt --arg c "$C3" '.queued | length == 1 and .[0].tag == "v1.2.0" and .[0].commit == $c' <<<"$r"
check "a new job, not the old one" test "$(jq -r '.queued[0].job' <<<"$r")" != "$JM"

# ---- a tag pushed while the server is stopped ---------------------------------------
kill -TERM "$SRV_PID"
stop_status "$SRV_PID" 60
check "server stopped" test "$STOP_RC" = 0
C4=$(release v1.3.0 three)
start_server "$CFG" "$LOG"
J4=$(wait_job_for pl v1.3.0 30)
check "the tag pushed while stopped gets a job after the start" test -n "$J4"
check "origin poll after restart" jqt --arg c "$C4" '.origin == "poll" and .commit == $c' <<<"$(api GET "/api/v1/jobs/$J4")"
check "and is exported" wait_job "$J4" succeeded 600
check "skopeo sees it" exported "$REG/pl/app:v1.3.0"
check "the set on disk has the new tag" grep -qx "$C4 v1.3.0" "$SET"
check "no leftover temp file" bash -c '! compgen -G "$1.tmp*" >/dev/null' _ "$SET"

# ---- a seen set that cannot be read is recorded anew ---------------------------
echo garbage >"$TE_TMP/state/poll/manual.tags"
r=$(api POST /api/v1/projects/manual/poll)
check "an unreadable set: the poll records anew, queues nothing" jqt '.first == true and .queued == []' <<<"$r"
check "and says so" grep -q 'seen set unreadable' "$LOG"
check "the set is whole again" grep -q ' v1.2.0$' "$TE_TMP/state/poll/manual.tags"

# ---- a remote that cannot be listed: 502, the set is kept ---------------------
mv "$ORIGIN" "$ORIGIN.away"
r=$(api POST /api/v1/projects/manual/poll -w ' %{http_code}')
check "unreachable remote -> 502 with the reason" test "${r##* }" = 502
mv "$ORIGIN.away" "$ORIGIN"
check "the set survived the failed poll" grep -q ' v1.2.0$' "$TE_TMP/state/poll/manual.tags"

kill -TERM "$SRV_PID"
stop_status "$SRV_PID" 60
check "server exits 0" test "$STOP_RC" = 0
check "no sanitizer report" bash -c '! grep -q Sanitizer "$1"' _ "$LOG"
te_finish
