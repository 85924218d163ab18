#!/usr/bin/env bash
# Commit statuses end to end: real exports (buildah, docker-registry) whose
# statuses go to a fake GitHub, GitLab and Gitea API (servers/forge_api.py,
# which records every request).  For each forge: the states of a succeeded
# and of a failed export, in order, with the auth header and the body
# fields; a status answered 503 is retried; an export finishes while its
# status endpoint hangs; no token reaches the server log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/server_lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl openssl python3

start_registry REG
make_base_image "$REG/base/busybox:1"

FORGE_LOG="$TE_TMP/forge.jsonl"
: >"$FORGE_LOG"
start_py_server FORGE "$(dirname "$0")/servers/forge_api.py" --log "$FORGE_LOG" \
	--rule '/repos/acme/flaky/:503:2' --rule '/repos/acme/stuck/:hang:-1'

SECRET=status-secret-$RANDOM
ADMIN_TOKEN=admin-$RANDOM
printf '%s\n' "$SECRET" >"$TE_TMP/hook.secret"
printf '%s\n' "$ADMIN_TOKEN" >"$TE_TMP/admin.token"
for p in gh gl gt flaky stuck; do
	printf '%s\n' "tok-$p-$RANDOM$RANDOM" >"$TE_TMP/$p.token"
done
LOG="$TE_TMP/server.log"
CFG="$TE_TMP/server.yaml"
PUBLIC=https://tagexport.example.test

# One origin: v1.0.0 builds, v1.0.1 does not (its Dockerfile copies a
# file that is not in the commit).
ORIGIN="$TE_TMP/origin.git"
WORK="$TE_TMP/work"
git init -q --bare "$ORIGIN"
git init -q -b main "$WORK"
printf 'project: status\nconfigVersion: 1\n---\nimage: app\ndockerfile: Dockerfile\n' >"$WORK/werf.yaml"
printf 'FROM %s\nCOPY version /version\n' "$REG/base/busybox:1" >"$WORK/Dockerfile"
echo one >"$WORK/version"
git_commit_all "$WORK" good
GOOD=$(git -C "$WORK" rev-parse HEAD)
printf 'FROM %s\nCOPY missing-file /x\n' "$REG/base/busybox:1" >"$WORK/Dockerfile"
git_commit_all "$WORK" bad
BAD=$(git -C "$WORK" rev-parse HEAD)
git -C "$WORK" tag v1.0.0 "$GOOD"
git -C "$WORK" tag v1.0.1 "$BAD"
git -C "$WORK" push -q "$ORIGIN" main v1.0.0 v1.0.1 2>/dev/null

project() { # NAME FORGE REPOSITORY API_PATH: statuses go to the fake API
	cat <<YAML
  - name: $1
    forge: $2
    repository: $3
    secret_file: hook.secret
    git_url: $ORIGIN
    status:
      token_file: $1.token
      api_url: http://$FORGE$4
    export:
      repo: $REG/$1/stages
      insecure_registry: true
      tag: "$REG/$1/%image%:%git_tag%"
YAML
}
{
	printf 'listen: 127.0.0.1:0\nstate_dir: %s/state\nworkers: 2\n' "$TE_TMP"
	printf 'admin_token_file: admin.token\npublic_url: %s/\nprojects:\n' "$PUBLIC"
	project gh github acme/app /github
	project gl gitlab acme/sub/app /api/v4
	project gt gitea acme/app /api/v1
	project flaky github acme/flaky /github
	project stuck github acme/stuck /github
} >"$CFG"
start_server "$CFG" "$LOG"

job_of() { jq -r .job <<<"${1#* }"; }
push() { # PROJECT TAG COMMIT: a signed delivery of the project's forge; prints the job
	local f="$TE_TMP/$1-$2.json" r
	case $1 in
	gl)
		gitlab_body "$f" acme/sub/app "$2" "$3"
		r=$(gitlab_post "$1" "$f" "$SECRET" "$1-$2")
		;;
	gt)
		gitea_body "$f" acme/app "$2" "$3"
		r=$(gitea_post "$1" "$f" "$SECRET" "$1-$2")
		;;
	*)
		github_body "$f" "$(project_repo "$1")" "$2" "$3"
		r=$(github_post "$1" "$f" "$SECRET" "$1-$2")
		;;
	esac
	job_of "$r"
}
project_repo() {
	case $1 in flaky) echo acme/flaky ;; stuck) echo acme/stuck ;; *) echo acme/app ;; esac
}

# requests PATH_PREFIX SHA: the recorded requests for one commit, in order.
requests() {
	jq -c --arg p "$1" --arg s "$2" 'select(.path == ($p + "/statuses/" + $s))' "$FORGE_LOG"
}
# wait_final PATH_PREFIX SHA STATE: until a request with STATE was answered 201.
wait_final() {
	local i
	for i in $(seq 1 240); do
		requests "$1" "$2" | jq -e --arg st "$3" 'select(.body.state == $st and .answer == 201)' >/dev/null && return 0
		sleep 0.25
	done
	echo "no $3 status for $1 $2" >&2
	requests "$1" "$2" >&2
	return 1
}
states() { requests "$1" "$2" | jq -r '.body.state' | paste -sd' '; }

# ---- the three forges: a succeeded and a failed export each ----------------
declare -A GOOD_JOB BAD_JOB
for p in gh gl gt; do
	GOOD_JOB[$p]=$(push "$p" v1.0.0 "$GOOD")
	BAD_JOB[$p]=$(push "$p" v1.0.1 "$BAD")
done
for p in gh gl gt; do
	check "$p: v1.0.0 exported" wait_job "${GOOD_JOB[$p]}" succeeded 600
	check "$p: v1.0.1 failed" wait_job "${BAD_JOB[$p]}" failed 600
done

declare -A PREFIX=([gh]=/github/repos/acme/app [gl]=/api/v4/projects/acme%2Fsub%2Fapp [gt]=/api/v1/repos/acme/app)
declare -A OK_STATES=([gh]="pending pending success" [gl]="pending running success" [gt]="pending pending success")
declare -A KO_STATES=([gh]="pending pending failure" [gl]="pending running failed" [gt]="pending pending failure")
for p in gh gl gt; do
	pre=${PREFIX[$p]}
	tok=$(cat "$TE_TMP/$p.token")
	wait_final "$pre" "$GOOD" success
	wait_final "$pre" "$BAD" "${KO_STATES[$p]##* }"
	check "$p: succeeded export: ${OK_STATES[$p]}" test "$(states "$pre" "$GOOD")" = "${OK_STATES[$p]}"
	check "$p: failed export: ${KO_STATES[$p]}" test "$(states "$pre" "$BAD")" = "${KO_STATES[$p]}"
	reqs=$(requests "$pre" "$GOOD")
	case $p in
	gh) want="Bearer $tok" hdr=authorization ;;
	gl) want="$tok" hdr=private-token ;;
	gt) want="token $tok" hdr=authorization ;;
	esac
	check "$p: the token in $hdr" jqt -s --arg h "$hdr" --arg w "$want" 'all(.headers[$h] == $w)' <<<"$reqs"
	check "$p: JSON bodies" jqt -s 'all(.headers["content-type"] == "application/json")' <<<"$reqs"
	check "$p: descriptions say what happened" jqt -s \
		'map(.body.description) == ["export queued", "export running", "exported 1 image"]' <<<"$reqs"
	check "$p: target_url is the job page" jqt -s --arg u "$PUBLIC/jobs/${GOOD_JOB[$p]}" \
		'all(.body.target_url == $u)' <<<"$reqs"
	if [ "$p" = gl ]; then
		check "gl: name is the context, ref the tag" jqt -s \
			'all(.body.name == "tagexport/export" and .body.ref == "v1.0.0" and (has("context") | not))' <<<"$reqs"
	else
		check "$p: context" jqt -s 'all(.body.context == "tagexport/export")' <<<"$reqs"
	fi
	check "$p: the failure's description: the image and what failed" jqt -s \
		'last | .body.description | test("^image \"app\": buildah build failed \\(exit [0-9]+\\)$")' \
		<<<"$(requests "$pre" "$BAD")"
done

# ---- a retry through the API shows the job pending again --------------------
api POST "/api/v1/jobs/${BAD_JOB[gh]}/retry" >/dev/null
check "gh: the retried job failed again" wait_job "${BAD_JOB[gh]}" failed 600
for _ in $(seq 1 240); do
	[ "$(states "${PREFIX[gh]}" "$BAD")" = "pending pending failure pending pending failure" ] && break
	sleep 0.25
done
check "gh: retried through the API: its statuses again, in order" \
	test "$(states "${PREFIX[gh]}" "$BAD")" = "pending pending failure pending pending failure"
check "gh: the second run says which attempt it is" jqt -s \
	'.[4].body.description == "export running (attempt 2 of 5)"' <<<"$(requests "${PREFIX[gh]}" "$BAD")"

# ---- 503 twice, then delivered, in order -----------------------------------
J=$(push flaky v1.0.0 "$GOOD")
check "flaky: exported" wait_job "$J" succeeded 600
pre=/github/repos/acme/flaky
wait_final "$pre" "$GOOD" success
check "flaky: two 503 answers, then every status delivered" \
	test "$(requests "$pre" "$GOOD" | jq -r .answer | paste -sd' ')" = "503 503 201 201 201"
check "flaky: the retried status is the first, and the order holds" jqt -s \
	'map(.body.description) == ["export queued", "export queued", "export queued", "export running", "exported 1 image"]' \
	<<<"$(requests "$pre" "$GOOD")"
check "the retry is logged with forge, repository, sha and HTTP status" grep -q \
	"commit status not delivered, will retry forge=\"github\" repository=\"acme/flaky\" sha=\"$GOOD\" state=\"pending\" http_status=\"503\"" "$LOG"

# ---- a status endpoint that hangs does not hold the export -------------------
J=$(push stuck v1.0.0 "$GOOD")
check "stuck: the export finished while its status hangs" wait_job "$J" succeeded 600
check "stuck: its first status was sent and never answered" jqt -s \
	'length >= 1 and all(.answer == "hang")' <<<"$(requests /github/repos/acme/stuck "$GOOD")"

# ---- secrets -------------------------------------------------------------------
for p in gh gl gt flaky stuck; do
	check "$p: token never in the server log" bash -c '! grep -qF "$1" "$2"' _ "$(cat "$TE_TMP/$p.token")" "$LOG"
done

kill -TERM "$SRV_PID"
stop_status "$SRV_PID" 60
check "SIGTERM with a status still hanging -> exit 0" test "$STOP_RC" = 0
te_finish
