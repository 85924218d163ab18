#!/usr/bin/env bash
# Stapel images through tagexport-server: a signed tag push of a project
# with two Stapel images (fromImage, an import after install, git mappings,
# shell stages on a busybox base without bash) becomes an export job; the
# next release, which changes only a file no stage depends on, rebuilds
# only the patch stage and what follows it; a failing shell command fails
# the job with the image, stage and exit status, and nothing is exported.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/server_lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl openssl bash-static

start_registry REG
make_base_image "$REG/base/busybox:1"
server_files "stapel-secret-$RANDOM"

ORIGIN="$TE_TMP/origin.git"
WORK="$TE_TMP/work"
git init -q --bare "$ORIGIN"
git init -q -b main "$WORK"
mkdir -p "$WORK/deps"
echo pkg-a >"$WORK/deps/list"
write_werf_yaml() { # APP-SETUP-COMMAND
	cat >"$WORK/werf.yaml" <<YAML
project: srv-stapel
configVersion: 1
---
image: base
from: $REG/base/busybox:1
git:
- add: /deps
  to: /deps
  stageDependencies:
    install: ['*']
shell:
  install:
  - cat /deps/list > /installed
---
image: app
fromImage: base
git:
- add: /
  to: /app
  excludePaths: [deps]
import:
- image: base
  add: /installed
  to: /imported
  after: install
shell:
  setup:
  - $1
docker:
  CMD: ["/bin/cat", "/app/version"]
YAML
}
write_werf_yaml 'echo "setup saw $(cat /imported)" > /setup-out'
release() { git_release "$WORK" "$ORIGIN" "$@"; } # TAG CONTENT

cat >"$CFG" <<YAML
listen: 127.0.0.1:0
state_dir: $TE_TMP/state
workers: 1
admin_token_file: admin.token
retry_delay: 1
projects:
  - name: gh
    forge: github
    repository: acme/stapel
    secret_file: hook.secret
    git_url: $ORIGIN
    export:
      repo: $REG/gh/stages
      insecure_registry: true
      tag: ["$REG/gh/%image%:%git_tag%"]
YAML
start_server "$CFG" "$LOG"

job_of() { jq -r .job <<<"${1#* }"; }
# push TAG CONTENT DELIVERY: release, deliver, print the job id
push() {
	local c
	c=$(release "$1" "$2")
	github_body "$TE_TMP/$3.json" acme/stapel "$1" "$c"
	job_of "$(github_post gh "$TE_TMP/$3.json" "$SECRET" "$3")"
}
# built JOB IMAGE: the stages the job's log says it built for IMAGE
built() {
	api GET "/api/v1/jobs/$1" | jq -r .log |
		grep -o "image $2: building stage [A-Za-z]*" | awk '{print $5}' | tr '\n' ' '
}

# ---- first release: every stage of both images ------------------------------
J1=$(push v1.0.0 one d1)
check "first release exported" wait_job "$J1" succeeded 900
# werf: no gitLatestPatch on a first export (the stage before it is built
# at this commit: an empty patch)
check "base: its stages in werf's order" \
	test "$(built "$J1" base)" = "from gitArchive install "
check "app: its stages in werf's order, the import after install" \
	test "$(built "$J1" app)" = "from gitArchive dependenciesAfterInstall setup dockerInstructions "
check "app exported under the git tag" test "$(image_file "$REG/gh/app:v1.0.0" app/version)" = one
check "app's mapping left deps out" test -z "$(image_file "$REG/gh/app:v1.0.0" app/deps/list)"
check "app: fromImage's files" test "$(image_file "$REG/gh/app:v1.0.0" installed)" = pkg-a
check "app: imported after install" test "$(image_file "$REG/gh/app:v1.0.0" imported)" = pkg-a
check "app: setup ran on the import" test "$(image_file "$REG/gh/app:v1.0.0" setup-out)" = "setup saw pkg-a"
check "base exported too" test "$(image_file "$REG/gh/base:v1.0.0" installed)" = pkg-a
info=$(skopeo_inspect "$REG/gh/app:v1.0.0")
check "exported app has no werf labels" test "$(jq '[.Labels // {} | keys[] | select(startswith("werf"))] | length' <<<"$info")" -eq 0
d=$(mktemp -d "$TE_TMP/layers.XXXXXX")
skopeo copy -q --src-tls-verify=false "docker://$REG/gh/app:v1.0.0" "dir:$d" >/dev/null
check "no bash left in the image" bash -c '! for l in $(jq -r ".layers[].digest" "$1/manifest.json"); do tar -tzf "$1/${l#sha256:}"; done | grep -q bash' _ "$d"

# ---- second release: only a file no stage depends on changed ----------------
J2=$(push v1.1.0 two d2)
check "second release exported" wait_job "$J2" succeeded 600
check "base: nothing rebuilt" test -z "$(built "$J2" base)"
check "app: only the patch and what follows" test "$(built "$J2" app)" = "gitLatestPatch dockerInstructions "
check "app: the patch carries the new file" test "$(image_file "$REG/gh/app:v1.1.0" app/version)" = two
check "app: earlier stages kept" test "$(image_file "$REG/gh/app:v1.1.0" setup-out)" = "setup saw pkg-a"

# ---- a failing shell command: job failed, named, nothing exported ------------
write_werf_yaml 'echo about to fail; exit 7'
J3=$(push v1.2.0 three d3)
check "failing command -> job failed" wait_job "$J3" failed 600
err=$(api GET "/api/v1/jobs/$J3" | jq -r .error)
check "error names the image and stage" grep -q 'image "app": stage setup' <<<"$err"
check "error gives the exit status" grep -q 'exit status 7' <<<"$err"
check "error shows the command's output" grep -q 'about to fail' <<<"$err"
check "nothing exported for the failed release" not skopeo_inspect "$REG/gh/app:v1.2.0"
check "not even the image that built" not skopeo_inspect "$REG/gh/base:v1.2.0"

kill -TERM "$SRV_PID"
stop_status "$SRV_PID" 60
te_finish
