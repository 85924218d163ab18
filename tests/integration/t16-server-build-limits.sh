#!/usr/bin/env bash
# tagexport-server and the build limits: a job whose build runs past
# export.build_timeout fails at once (one attempt, no retry, no process
# left); a job whose base image cannot be pulled (registry down) is a
# network failure and is retried up to max_attempts.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/server_lib.sh"
te_require docker-registry skopeo buildah runc git busybox jq curl openssl

start_registry REG
make_base_image "$REG/base/busybox:1"
DOWN="127.0.0.1:$(te_free_port)" # nothing listens there

server_files "limits-secret-$RANDOM"

ORIGIN="$TE_TMP/origin.git"
WORK="$TE_TMP/work"
git init -q --bare "$ORIGIN"
git init -q -b main "$WORK"
release() { # TAG DOCKERFILE-TEXT: commit, annotated tag, push; prints the commit
	printf 'project: limits\nconfigVersion: 1\n---\nimage: app\ndockerfile: Dockerfile\n' >"$WORK/werf.yaml"
	printf '%s\n' "$2" >"$WORK/Dockerfile"
	git_commit_all "$WORK" "release $1"
	git -C "$WORK" -c user.name=t -c user.email=t@example.com tag -a "$1" -m "$1"
	git -C "$WORK" push -q "$ORIGIN" main "refs/tags/$1" 2>/dev/null
	git -C "$WORK" rev-parse HEAD
}

cat >"$CFG" <<YAML
listen: 127.0.0.1:0
state_dir: $TE_TMP/state
workers: 1
admin_token_file: admin.token
retry_delay: 1
max_attempts: 2
shutdown_timeout: 0
projects:
  - name: lim
    forge: github
    repository: acme/lim
    secret_file: hook.secret
    git_url: $ORIGIN
    export:
      repo: $REG/lim/stages
      insecure_registry: true
      build_timeout: 5s
      tag: "$REG/lim/%image%:%git_tag%"
  - name: net
    forge: github
    repository: acme/lim
    secret_file: hook.secret
    git_url: $ORIGIN
    export:
      repo: $REG/net/stages
      insecure_registry: true
      tag: "$REG/net/%image%:%git_tag%"
YAML
start_server "$CFG" "$LOG"
job_of() { jq -r .job <<<"${1#* }"; }

# ---- past build_timeout: failed, not retried ---------------------------------
C1=$(release v1.0.0 "$(printf 'FROM %s/base/busybox:1\nRUN sleep 1011' "$REG")")
github_body "$TE_TMP/slow.json" acme/lim v1.0.0 "$C1"
J=$(job_of "$(github_post lim "$TE_TMP/slow.json" "$SECRET" lim-slow)")
check "timed-out job failed" wait_job "$J" failed 300
job=$(api GET "/api/v1/jobs/$J")
check "its error names the image and the limit" jqt '.error | test("build of image app timed out after 5s")' <<<"$job"
check "one attempt only" jqt '.attempts == 1' <<<"$job"
check "logged as failed, not retried" grep -q "job failed.*$J\|$J.*job failed" "$LOG"
check "no retry logged for it" not grep -q "will retry.*$J" "$LOG"
check "no sleep process left" not pgrep -f "sleep 1011"
check "nothing pushed" not skopeo inspect --tls-verify=false "docker://$REG/lim/app:v1.0.0"

# ---- base image pull fails (registry down): a network failure, retried ------
C2=$(release v2.0.0 "$(printf 'FROM %s/base/busybox:1\nRUN true' "$DOWN")")
github_body "$TE_TMP/down.json" acme/lim v2.0.0 "$C2"
# (project net: buildah's own pull retries take longer than lim's 5s)
J=$(job_of "$(github_post net "$TE_TMP/down.json" "$SECRET" net-down)")
check "pull-failure job ends failed after its attempts" wait_job "$J" failed 300
job=$(api GET "/api/v1/jobs/$J")
check "it was retried (max_attempts 2)" jqt '.attempts == 2' <<<"$job"
check "error is buildah's pull failure" jqt --arg h "$DOWN" '.error | test("creating build container") and contains($h)' <<<"$job"
check "the first failure was logged as a retry" grep -q "will retry" "$LOG"

# ---- the server exits during a build: the build does not outlive it ----------
C3=$(release v3.0.0 "$(printf 'FROM %s/base/busybox:1\nRUN sleep 1013' "$REG")")
github_body "$TE_TMP/long.json" acme/lim v3.0.0 "$C3"
J=$(job_of "$(github_post net "$TE_TMP/long.json" "$SECRET" net-long)")
check "the long build is running" wait_until 300 pgrep -f "sleep 1013"
check "its buildah runs in the project's build state" pgrep -f "$TE_TMP/state/build/projects/net/buildah"
kill -TERM "$SRV_PID"
check "server exits at once (shutdown_timeout 0)" stop_status "$SRV_PID" 30
check "its build stopped with it" wait_until 60 not pgrep -f "sleep 1013"
check "no buildah of the server's state dir left" wait_until 60 not pgrep -f "$TE_TMP/state/build/"
check "the job was requeued" grep -q "running job requeued.*$J" "$LOG"

te_finish
