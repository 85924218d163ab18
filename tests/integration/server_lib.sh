# server_lib.sh - helpers for the tagexport-server integration tests
# (sourced after lib.sh).  Real HTTP with curl, real HMACs with openssl.

TE_SERVER="$TE_BIN_DIR/tagexport-server"
TE_FIXTURES="${TE_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}/tests/fixtures/webhooks"
SRV_PID=
SRV_PORT=

# start_server CONFIG LOG: starts tagexport-server, sets SRV_PID/SRV_PORT.
start_server() {
	local cfg=$1 log=$2 i
	rm -f "$TE_TMP/port"
	"$TE_SERVER" --config "$cfg" --port-file "$TE_TMP/port" >>"$log" 2>&1 &
	SRV_PID=$!
	TE_PIDS+=("$SRV_PID")
	for i in $(seq 1 100); do
		if [ -s "$TE_TMP/port" ]; then
			SRV_PORT=$(cat "$TE_TMP/port")
			return 0
		fi
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "FATAL: tagexport-server did not start" >&2
	cat "$log" >&2
	exit 1
}

# server_files SECRET: the files a server config names, in $TE_TMP:
# hook.secret (SECRET) and admin.token (a fresh token); sets SECRET,
# ADMIN_TOKEN, LOG (the server's log) and CFG (its config path).
server_files() {
	SECRET=$1
	ADMIN_TOKEN=admin-$RANDOM-$RANDOM
	printf '%s\n' "$SECRET" >"$TE_TMP/hook.secret"
	printf '%s\n' "$ADMIN_TOKEN" >"$TE_TMP/admin.token"
	LOG="$TE_TMP/server.log"
	CFG="$TE_TMP/server.yaml"
}

# intake_projects: the YAML of two projects for intake tests, "gh" (GitHub,
# tags v*) and "gl" (GitLab), both with secret_file hook.secret, git_url
# $TE_TMP/origin.git and an export to a closed port (127.0.0.1:1), so
# that no job can succeed.
intake_projects() {
	cat <<YAML
  - name: gh
    forge: github
    repository: acme-corp/widget-api
    secret_file: hook.secret
    git_url: $TE_TMP/origin.git
    tags: ["v*"]
    export:
      repo: 127.0.0.1:1/x/stages
      tag: ["127.0.0.1:1/x/%image%:%git_tag%"]
  - name: gl
    forge: gitlab
    repository: platform/ingest-worker
    secret_file: hook.secret
    git_url: $TE_TMP/origin.git
    export:
      repo: 127.0.0.1:1/x/stages
      tag: ["127.0.0.1:1/x/%image%:%git_tag%"]
YAML
}

# werf_origin ORIGIN WORK BASE PROJECT: a bare ORIGIN the server fetches
# from and a work tree WORK (branch main) that pushes to it, holding a
# werf project with one Dockerfile image "app" FROM BASE.
werf_origin() {
	git init -q --bare "$1"
	git init -q -b main "$2"
	printf 'project: %s\nconfigVersion: 1\n---\nimage: app\ndockerfile: Dockerfile\n' \
		"$4" >"$2/werf.yaml"
	printf 'FROM %s\nCOPY version /version\n' "$3" >"$2/Dockerfile"
}

# git_release WORK ORIGIN TAG CONTENT: commit CONTENT as WORK/version, tag
# it TAG (annotated), push both to ORIGIN; prints the commit.
git_release() {
	local work=$1 origin=$2 tag=$3
	echo "$4" >"$work/version"
	git_commit_all "$work" "release $tag"
	git -C "$work" -c user.name=t -c user.email=t@example.com tag -a "$tag" -m "$tag"
	git -C "$work" push -q "$origin" main "refs/tags/$tag" 2>/dev/null
	git -C "$work" rev-parse HEAD
}

# hmac SECRET FILE: lowercase hex HMAC-SHA256 of the file's exact bytes.
hmac() {
	openssl dgst -sha256 -hmac "$1" -r <"$2" | cut -d' ' -f1
}

# post PATH BODYFILE [curl args...]: prints "STATUS BODY" (body on one line).
post() {
	local path=$1 file=$2
	shift 2
	local out status
	out=$(curl -sS -o "$TE_TMP/resp" -w '%{http_code}' -X POST \
		-H 'Content-Type: application/json' "$@" \
		--data-binary "@$file" "http://127.0.0.1:$SRV_PORT$path")
	status=$out
	echo "$status $(tr -d '\n' <"$TE_TMP/resp")"
}

# github_post PROJECT BODYFILE SECRET DELIVERY [EVENT]
github_post() {
	post "/hooks/$1" "$2" -H "X-GitHub-Event: ${5:-push}" \
		-H "X-GitHub-Delivery: $4" \
		-H "X-Hub-Signature-256: sha256=$(hmac "$3" "$2")"
}

# gitlab_post PROJECT BODYFILE TOKEN IDEMPOTENCY_KEY [EVENT]
gitlab_post() {
	post "/hooks/$1" "$2" -H "X-Gitlab-Event: ${5:-Tag Push Hook}" \
		-H "X-Gitlab-Token: $3" -H "Idempotency-Key: $4"
}

# gitea_post PROJECT BODYFILE SECRET DELIVERY [EVENT]
gitea_post() {
	post "/hooks/$1" "$2" -H "X-Gitea-Event: ${5:-push}" \
		-H "X-Gitea-Delivery: $4" \
		-H "X-Gitea-Signature: $(hmac "$3" "$2")"
}

# github_body OUT FULLNAME TAG COMMIT: a GitHub tag push body.
github_body() {
	jq -c --arg r "$2" --arg t "refs/tags/$3" --arg c "$4" \
		'.repository.full_name=$r | .ref=$t | .after=$c | .head_commit.id=$c' \
		"$TE_FIXTURES/github-push-tag.json" >"$1"
}

gitlab_body() {
	jq -c --arg r "$2" --arg t "refs/tags/$3" --arg c "$4" \
		'.project.path_with_namespace=$r | .ref=$t | .after=$c | .checkout_sha=$c' \
		"$TE_FIXTURES/gitlab-tag-push.json" >"$1"
}

gitea_body() {
	jq -c --arg r "$2" --arg t "refs/tags/$3" --arg c "$4" \
		'.repository.full_name=$r | .ref=$t | .after=$c | .head_commit.id=$c' \
		"$TE_FIXTURES/gitea-tag-push.json" >"$1"
}

# jqt ARGS...: jq -e without output, for check.
jqt() {
	jq -e "$@" >/dev/null
}

# api METHOD PATH [curl args]: admin API call with the token in $ADMIN_TOKEN.
api() {
	local m=$1 p=$2
	shift 2
	curl -sS -X "$m" -H "Authorization: Bearer $ADMIN_TOKEN" "$@" \
		"http://127.0.0.1:$SRV_PORT$p"
}

job_count() {
	api GET /api/v1/jobs | jq '.jobs | length'
}

# wait_job ID STATE SECONDS: until the job reaches STATE.
wait_job() {
	local id=$1 want=$2 secs=$3 i st
	for i in $(seq 1 $((secs * 4))); do
		st=$(api GET "/api/v1/jobs/$id" | jq -r .state)
		[ "$st" = "$want" ] && return 0
		# a final state that is not the one wanted: stop waiting
		case "$st" in succeeded | failed) break ;; esac
		sleep 0.25
	done
	echo "job $id is $st, wanted $want" >&2
	api GET "/api/v1/jobs/$id" >&2
	return 1
}

# stop_status PID SECONDS: after a signal, waits for PID to exit and sets
# STOP_RC to its exit status (or "timeout").  Not in $(): wait needs the
# parent shell.
stop_status() {
	local pid=$1 secs=$2 i
	STOP_RC=timeout
	for i in $(seq 1 $((secs * 10))); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			STOP_RC=$?
			return 0
		fi
		sleep 0.1
	done
	return 1
}
