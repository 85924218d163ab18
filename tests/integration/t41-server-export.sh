#!/usr/bin/env bash
# tagexport-server end to end: signed tag pushes from each forge exported
# into a real registry (checked with skopeo); a moved tag fails clearly;
# the semver rule (v1.2.9 after v1.3.0 leaves :1 alone); SIGKILL right
# after a 202 then restart; SIGTERM while a job runs (it finishes), and
# with shutdown_timeout 0 (it is requeued and runs after restart).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/server_lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl openssl

start_registry REG
make_base_image "$REG/base/busybox:1"

server_files "e2e-secret-$RANDOM"

# The origin the server fetches from, and a work tree that pushes to it.
ORIGIN="$TE_TMP/origin.git"
WORK="$TE_TMP/work"
werf_origin "$ORIGIN" "$WORK" "$REG/base/busybox:1" srv-e2e
release() { git_release "$WORK" "$ORIGIN" "$@"; } # TAG CONTENT

project() { # NAME FORGE REPOSITORY TEMPLATES...
	local name=$1 forge=$2 repo=$3 t
	shift 3
	printf '  - name: %s\n    forge: %s\n    repository: %s\n' "$name" "$forge" "$repo"
	printf '    secret_file: hook.secret\n    git_url: %s\n' "$ORIGIN"
	printf '    export:\n      repo: %s/%s/stages\n      insecure_registry: true\n' "$REG" "$name"
	printf '      add_label: {org.opencontainers.image.source: https://git.example.com/%s}\n' "$repo"
	printf '      tag:\n'
	for t in "$@"; do printf '        - "%s"\n' "$t"; done
}

write_config() { # SHUTDOWN_TIMEOUT
	{
		cat <<YAML
listen: 127.0.0.1:0
state_dir: $TE_TMP/state
workers: 1
admin_token_file: admin.token
shutdown_timeout: $1
retry_delay: 1
projects:
YAML
		project gh github acme/app "$REG/gh/%image%:%git_tag%"
		project gl gitlab acme/app "$REG/gl/%image%:%git_tag%"
		project gt gitea acme/app "$REG/gt/%image%:%git_tag%"
		project sv github acme/app "$REG/sv/%image%:%semver%" \
			"$REG/sv/%image%:%semver_major%" \
			"$REG/sv/%image%:%semver_major%.%semver_minor%"
	} >"$CFG"
}
write_config 300
start_server "$CFG" "$LOG"

digest_of() {
	skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$1" 2>/dev/null
}
job_of() { jq -r .job <<<"${1#* }"; }

# ---- one tag push per forge, exported -------------------------------------
C1=$(release v1.0.0 one)
github_body "$TE_TMP/gh.json" acme/app v1.0.0 "$C1"
gitlab_body "$TE_TMP/gl.json" acme/app v1.0.0 "$C1"
gitea_body "$TE_TMP/gt.json" acme/app v1.0.0 "$C1"
r=$(github_post gh "$TE_TMP/gh.json" "$SECRET" e2e-gh-1)
check "github push -> 202" test "${r%% *}" = 202
J_GH=$(job_of "$r")
r=$(gitlab_post gl "$TE_TMP/gl.json" "$SECRET" e2e-gl-1)
check "gitlab push -> 202" test "${r%% *}" = 202
J_GL=$(job_of "$r")
r=$(gitea_post gt "$TE_TMP/gt.json" "$SECRET" e2e-gt-1)
check "gitea push -> 202" test "${r%% *}" = 202
J_GT=$(job_of "$r")
for j in "$J_GH" "$J_GL" "$J_GT"; do
	check "job $j succeeded" wait_job "$j" succeeded 600
done
for p in gh gl gt; do
	info=$(skopeo_inspect "$REG/$p/app:v1.0.0" 2>/dev/null)
	check "$p: image exported under the git tag" test -n "$info"
	check "$p: label added" test "$(jq -r '.Labels["org.opencontainers.image.source"]' <<<"$info")" = https://git.example.com/acme/app
	check "$p: no werf labels" test "$(jq '[.Labels // {} | keys[] | select(startswith("werf"))] | length' <<<"$info")" -eq 0
done
res=$(api GET "/api/v1/jobs/$J_GH")
check "job lists the reference with its digest" jqt --arg d "$(digest_of "$REG/gh/app:v1.0.0")" \
	'.results | any(endswith("@" + $d))' <<<"$res"
check "job log kept" jqt '.log | length > 0' <<<"$res"
r=$(github_post gh "$TE_TMP/gh.json" "$SECRET" e2e-gh-1)
check "redelivery of a finished job -> its id" test "$(job_of "$r")" = "$J_GH"
check "and its state, marked duplicate" jqt '.status == "succeeded" and .duplicate' <<<"${r#* }"

# ---- the tag moved between the delivery and the fetch ------------------------
C2=$(release v1.1.0 two)
github_body "$TE_TMP/moved.json" acme/app v1.1.0 "$C1"
J=$(job_of "$(github_post gh "$TE_TMP/moved.json" "$SECRET" e2e-moved)")
check "moved tag -> job failed" wait_job "$J" failed 120
check "error says the tag moved" jqt '.error | test("tag moved")' <<<"$(api GET "/api/v1/jobs/$J")"
check "nothing exported for the moved tag" test -z "$(digest_of "$REG/gh/app:v1.1.0")"

# ---- semver: v1.3.0 then v1.2.9 ------------------------------------------------
C3=$(release v1.3.0 three)
github_body "$TE_TMP/s1.json" acme/app v1.3.0 "$C3"
J=$(job_of "$(github_post sv "$TE_TMP/s1.json" "$SECRET" e2e-s1)")
check "v1.3.0 exported" wait_job "$J" succeeded 600
D130=$(digest_of "$REG/sv/app:1.3.0")
check "v1.3.0 under its full version" test -n "$D130"
check ":1 is v1.3.0" test "$(digest_of "$REG/sv/app:1")" = "$D130"
check ":1.3 is v1.3.0" test "$(digest_of "$REG/sv/app:1.3")" = "$D130"
C4=$(release v1.2.9 backport)
github_body "$TE_TMP/s2.json" acme/app v1.2.9 "$C4"
J=$(job_of "$(github_post sv "$TE_TMP/s2.json" "$SECRET" e2e-s2)")
check "v1.2.9 exported" wait_job "$J" succeeded 600
D129=$(digest_of "$REG/sv/app:1.2.9")
check "v1.2.9 is a different image" test -n "$D129" -a "$D129" != "$D130"
check ":1.2 moved to v1.2.9" test "$(digest_of "$REG/sv/app:1.2")" = "$D129"
check ":1 did not move backwards" test "$(digest_of "$REG/sv/app:1")" = "$D130"
C5=$(release v1.4.0-rc.1 rc)
github_body "$TE_TMP/s3.json" acme/app v1.4.0-rc.1 "$C5"
J=$(job_of "$(github_post sv "$TE_TMP/s3.json" "$SECRET" e2e-s3)")
check "pre-release exported" wait_job "$J" succeeded 600
check ":1 still exists" test -n "$(digest_of "$REG/sv/app:1")"
check "pre-release under its full version" test -n "$(digest_of "$REG/sv/app:1.4.0-rc.1")"
check "pre-release does not move :1" test "$(digest_of "$REG/sv/app:1")" = "$D130"

# ---- SIGKILL right after the 202 ----------------------------------------------------
C6=$(release v2.0.0 kill)
github_body "$TE_TMP/k.json" acme/app v2.0.0 "$C6"
r=$(github_post gh "$TE_TMP/k.json" "$SECRET" e2e-kill)
kill -KILL "$SRV_PID"
wait "$SRV_PID" 2>/dev/null
check "202 before SIGKILL" test "${r%% *}" = 202
J=$(job_of "$r")
start_server "$CFG" "$LOG"
check "job accepted before SIGKILL runs after restart" wait_job "$J" succeeded 600
check "its image is in the registry" test -n "$(digest_of "$REG/gh/app:v2.0.0")"

# ---- SIGTERM while a job runs: it finishes, exit 0 ------------------------------------
C7=$(release v2.1.0 term)
github_body "$TE_TMP/t.json" acme/app v2.1.0 "$C7"
J=$(job_of "$(github_post gh "$TE_TMP/t.json" "$SECRET" e2e-term)")
wait_job "$J" running 60 || true
kill -TERM "$SRV_PID"
sleep 0.3
check "intake closed after SIGTERM" bash -c '! curl -sS -m 2 -o /dev/null "http://127.0.0.1:$1/healthz" 2>/dev/null' _ "$SRV_PORT"
stop_status "$SRV_PID" 600
check "SIGTERM with a running job -> exit 0" test "$STOP_RC" = 0
check "the running job finished before exit" test -n "$(digest_of "$REG/gh/app:v2.1.0")"
start_server "$CFG" "$LOG"
check "and is recorded as succeeded" wait_job "$J" succeeded 10

# ---- SIGTERM with shutdown_timeout 0: requeued, runs after restart ------------------------
write_config 0
kill -HUP "$SRV_PID"
sleep 0.5
C8=$(release v2.2.0 requeue)
github_body "$TE_TMP/q.json" acme/app v2.2.0 "$C8"
J=$(job_of "$(github_post gh "$TE_TMP/q.json" "$SECRET" e2e-requeue)")
wait_job "$J" running 60 || true
kill -TERM "$SRV_PID"
stop_status "$SRV_PID" 60
check "SIGTERM with shutdown_timeout 0 -> exit 0" test "$STOP_RC" = 0
check "running job was requeued" grep -q "running job requeued" "$LOG"
start_server "$CFG" "$LOG"
check "requeued job runs after restart" wait_job "$J" succeeded 600
check "its image is in the registry" test -n "$(digest_of "$REG/gh/app:v2.2.0")"

m=$(curl -sS "http://127.0.0.1:$SRV_PORT/metrics")
check "metrics count bytes copied" grep -q '^tagexport_export_bytes_copied_total' <<<"$m"
kill -TERM "$SRV_PID"
stop_status "$SRV_PID" 60
te_finish
