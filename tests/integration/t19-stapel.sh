#!/usr/bin/env bash
# Stapel images (issue 12): the stage conveyor built with buildah on a
# busybox base without bash, every stage in the stages repo; git patches
# (changed, added, deleted files) read back out of the pushed image;
# stageDependencies re-running install; a fresh state dir reusing stages;
# imageSpec (and build.imageSpec) on the last stage; bad inputs with their
# messages; fromLatest under werf-giterminism.yaml.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl bash-static

start_registry REG
make_base_image "$REG/base/busybox:1"

proj="$TE_TMP/project"
mkdir -p "$proj/deps" "$proj/src" "$proj/secret"
git init -q -b main "$proj"
cat >"$proj/werf.yaml" <<YAML
project: stapel-demo
configVersion: 1
---
image: app
from: $REG/base/busybox:1
git:
- add: /
  to: /app
  excludePaths: [secret]
  stageDependencies:
    install: ['deps/*.txt']
shell:
  beforeInstall:
  - echo "bash \$BASH_VERSION" > /bash-version
  install:
  - cat /app/deps/a.txt > /installed
  - 'for f in /app/src/*; do echo "\$f"; done > /install-saw'
  setup:
  - echo setup > /setup-done
docker:
  ENV: {GREETING: "hello \$USER"}
  WORKDIR: /app
  CMD: ["/bin/cat", "/app/README"]
YAML
echo r1 >"$proj/README"
echo a1 >"$proj/deps/a.txt"
echo x >"$proj/src/x.c"
echo hidden >"$proj/secret/key"
git_commit_all "$proj" "first"

# export COMMIT STATE-NAME TAG: the export's stderr goes to $TE_TMP/<tag>.err
run_export() {
	"$TAGEXPORT" export --dir "$proj" --state-dir "$TE_TMP/$2" --verbose \
		--repo "$REG/demo/stages" --tag "$REG/demo/%image%:$3" \
		--report-path "$TE_TMP/$3.json" --commit "$1" 2>"$TE_TMP/$3.err"
}

run_export HEAD s1 v1
check "first export exits 0" test $? -eq 0 || cat "$TE_TMP/v1.err" >&2
# werf: gitLatestPatch is empty (absent) when the patch from the commit
# of the stage before it is empty: on a first export that stage is built
# at this very commit.
check "every stage built in werf's order, no empty gitLatestPatch" test "$(built_stages v1)" = \
	"from beforeInstall gitArchive install setup dockerInstructions "
check "report: built" test "$(jq -r .images.app.built "$TE_TMP/v1.json")" = true
check "six stages in the stages repo" test "$(registry_catalog "$REG" | grep -c '^demo/stages:')" -eq 6
rootfs "$REG/demo/app:v1" "$TE_TMP/fs1"
check "git files at /app" test "$(cat "$TE_TMP/fs1/app/README")" = r1
check "excludePaths keeps secret out" test ! -e "$TE_TMP/fs1/app/secret"
check "commands ran under bash in a base without bash" grep -q '^bash 5' "$TE_TMP/fs1/bash-version"
check "no bash left in the image" bash -c '! ls "$1"/bin/bash* "$1"/.tagexport-stapel >/dev/null 2>&1' _ "$TE_TMP/fs1"
check "install saw the git files" test "$(cat "$TE_TMP/fs1/installed")" = a1
check "setup ran" test -f "$TE_TMP/fs1/setup-done"
info=$(skopeo_inspect "$REG/demo/app:v1")
check "docker ENV kept literally" bash -c 'jq -e ".Env | index(\"GREETING=hello \$USER\")" <<<"$1" >/dev/null' _ "$info"
check "docker WORKDIR" test "$(skopeo inspect --config --tls-verify=false "docker://$REG/demo/app:v1" | jq -r .config.WorkingDir)" = /app
check "no werf labels exported" test "$(jq '[.Labels // {} | keys[] | select(startswith("werf"))] | length' <<<"$info")" -eq 0
tag1=$(jq -r .images.app.content_based_tag "$TE_TMP/v1.json")
check "stages image carries werf labels" test "$(skopeo_inspect "$REG/demo/stages:$tag1" | jq -r .Labels.werf)" = stapel-demo

# A file no stage depends on: only the patch stage (and docker after it),
# with a fresh state dir; changed, added and deleted files all arrive.
echo r2 >"$proj/README"
echo new >"$proj/src/new.c"
mkdir -p "$proj/docs/deep"
echo deep >"$proj/docs/deep/page"
ln -s ../README "$proj/docs/readme-link"
git -C "$proj" rm -q src/x.c
git_commit_all "$proj" "no stage depends on this"
run_export HEAD s2 v2
check "second export exits 0" test $? -eq 0 || cat "$TE_TMP/v2.err" >&2
check "only the patch stage and docker built" test "$(built_stages v2)" = "gitLatestPatch dockerInstructions "
check "patch stage: one layer, no build" grep -q 'building stage gitLatestPatch: one layer put in the stages repo (4 files, 1 removed)' "$TE_TMP/v2.err"
rootfs "$REG/demo/app:v2" "$TE_TMP/fs2"
check "patch: changed file" test "$(cat "$TE_TMP/fs2/app/README")" = r2
check "patch: added file" test "$(cat "$TE_TMP/fs2/app/src/new.c")" = new
check "patch: deleted file whited out" test ! -e "$TE_TMP/fs2/app/src/x.c"
check "patch: file in new directories" test "$(cat "$TE_TMP/fs2/app/docs/deep/page")" = deep
check "patch: symlink" test "$(readlink "$TE_TMP/fs2/app/docs/readme-link")" = ../README
check "install not re-run" test "$(cat "$TE_TMP/fs2/install-saw")" = /app/src/x.c

# An install dependency: install and everything after it, patch first.
echo a2 >"$proj/deps/a.txt"
git_commit_all "$proj" "install dependency"
run_export HEAD s3 v3
check "third export exits 0" test $? -eq 0 || cat "$TE_TMP/v3.err" >&2
check "install and after rebuilt, no empty gitLatestPatch" test "$(built_stages v3)" = "install setup dockerInstructions "
rootfs "$REG/demo/app:v3" "$TE_TMP/fs3"
check "install saw the new dependency" test "$(cat "$TE_TMP/fs3/installed")" = a2
check "install ran on patched files" test "$(cat "$TE_TMP/fs3/install-saw")" = /app/src/new.c
check "patched tree at /app" test "$(cat "$TE_TMP/fs3/app/README")" = r2

# A fresh state dir on the same commit rebuilds nothing.
run_export HEAD s4 v4
check "reuse exits 0" test $? -eq 0
check "reuse builds nothing" test -z "$(built_stages v4)"
check "reuse: report not built" test "$(jq -r .images.app.built "$TE_TMP/v4.json")" = false
check "reuse: same content tag" test "$(jq -r .images.app.content_based_tag "$TE_TMP/v4.json")" = \
	"$(jq -r .images.app.content_based_tag "$TE_TMP/v3.json")"

# gitLatestPatch's digest covers the patch from the commit of the stage
# before it: a change there builds it, and a commit that brings the files
# back to that stage's commit leaves it out again (werf: IsEmpty), so the
# image is the one of v3, built again nowhere.
echo r3 >"$proj/README"
git_commit_all "$proj" "README r3"
run_export HEAD s13 v6
check "r3: exit 0" test $? -eq 0 || cat "$TE_TMP/v6.err" >&2
check "r3: only the patch and docker built" test "$(built_stages v6)" = "gitLatestPatch dockerInstructions "
check "r3: the patch holds the one file" grep -q 'building stage gitLatestPatch: one layer put in the stages repo (1 files, 0 removed)' "$TE_TMP/v6.err"
check "r3: the file in the image" test "$(rootfs "$REG/demo/app:v6" "$TE_TMP/fs6" && cat "$TE_TMP/fs6/app/README")" = r3
echo r2 >"$proj/README"
git_commit_all "$proj" "README back to r2"
run_export HEAD s14 v7
check "back to r2: exit 0" test $? -eq 0 || cat "$TE_TMP/v7.err" >&2
check "back to r2: nothing built" test -z "$(built_stages v7)"
check "back to r2: v3's content tag" test "$(jq -r .images.app.content_based_tag "$TE_TMP/v7.json")" = \
	"$(jq -r .images.app.content_based_tag "$TE_TMP/v3.json")"
check "back to r2: the file in the image" test "$(rootfs "$REG/demo/app:v7" "$TE_TMP/fs7" && cat "$TE_TMP/fs7/app/README")" = r2

# imageSpec (werf applies it after dockerInstructions): the global
# build.imageSpec merged under the image's own; only the last stage, whose
# config it edits, is rebuilt (and the patch: werf.yaml is one of the
# image's git files).  A second image ends in gitLatestPatch: its spec
# makes that stage a buildah build (the layer path cannot edit a config),
# and keeps it though its patch is empty (werf's own imageSpec stage).
sed -i 's/^configVersion: 1$/configVersion: 1\nbuild:\n  imageSpec:\n    author: "Global <g@example.com>"\n    config:\n      labels: {global: "g"}/' "$proj/werf.yaml"
cat >>"$proj/werf.yaml" <<YAML
imageSpec:
  config:
    labels: {team: "%project%-%image%"}
    removeEnv: ['/(?i)greet\\w+/']
    env: {NEW: "n"}
    workingDir: /srv
    expose: ["8080"]
---
image: plain
from: $REG/base/busybox:1
git:
- add: /src
  to: /src
imageSpec:
  config:
    user: "65534"
YAML
git_commit_all "$proj" "imageSpec"
run_export HEAD s6 v5
check "imageSpec export exits 0" test $? -eq 0 || cat "$TE_TMP/v5.err" >&2
check "imageSpec: app rebuilds the patch (werf.yaml is in its mapping) and its last stage" \
	test "$(grep -o 'image app: building stage [A-Za-z]*' "$TE_TMP/v5.err" | awk '{print $5}' | tr '\n' ' ')" = "gitLatestPatch dockerInstructions "
check "imageSpec: plain's gitLatestPatch built by buildah" grep -q "image plain: building stage gitLatestPatch\$" "$TE_TMP/v5.err"
check "imageSpec: plain keeps its empty gitLatestPatch, the last stage carrying the spec (from: app's)" \
	test "$(grep -o 'image plain: building stage [A-Za-z]*' "$TE_TMP/v5.err" | awk '{print $5}' | tr '\n' ' ')" = "gitArchive gitLatestPatch "
cfg5=$(skopeo inspect --config --tls-verify=false "docker://$REG/demo/app:v5")
tag5=$(jq -r .images.app.content_based_tag "$TE_TMP/v5.json")
st5=$(skopeo inspect --config --tls-verify=false "docker://$REG/demo/stages:$tag5")
check "imageSpec: label with %project%-%image%" test "$(jq -r '.config.Labels.team' <<<"$cfg5")" = stapel-demo-app
check "imageSpec: global label merged" test "$(jq -r '.config.Labels.global' <<<"$cfg5")" = g
check "imageSpec: global author" test "$(jq -r .author <<<"$cfg5")" = "Global <g@example.com>"
check "imageSpec: docker ENV removed by Go regexp" test "$(jq '[.config.Env[] | select(startswith("GREETING="))] | length' <<<"$cfg5")" -eq 0
check "imageSpec: env added" test "$(jq '[.config.Env[] | select(. == "NEW=n")] | length' <<<"$cfg5")" -eq 1
check "imageSpec: workingDir over docker WORKDIR" test "$(jq -r .config.WorkingDir <<<"$cfg5")" = /srv
check "imageSpec: expose" test "$(jq -r '.config.ExposedPorts | keys | join(",")' <<<"$cfg5")" = 8080/tcp
check "imageSpec: docker CMD kept" test "$(jq -c .config.Cmd <<<"$cfg5")" = '["/bin/cat","/app/README"]'
check "imageSpec: stages image keeps werf labels" test "$(jq -r '.config.Labels["werf-stage-content-digest"]' <<<"$st5")" = "$tag5"
check "imageSpec: stages image has the spec" test "$(jq -r .config.Labels.team <<<"$st5")" = stapel-demo-app
check "imageSpec: plain's user" test "$(skopeo inspect --config --tls-verify=false "docker://$REG/demo/plain:v5" | jq -r .config.User)" = 65534
check "imageSpec: plain has its files" test "$(rootfs "$REG/demo/plain:v5" "$TE_TMP/fs5" && cat "$TE_TMP/fs5/src/new.c")" = new

# Bad inputs.
write_yaml() { cat >"$proj/werf.yaml"; git_commit_all "$proj" "$1"; }
write_yaml "failing command" <<YAML
project: stapel-demo
configVersion: 1
---
image: bad
from: $REG/base/busybox:1
shell:
  install:
  - echo about to fail
  - exit 7
YAML
run_export HEAD s5 bad1
rc=$?
check "failing command: exit 1" test "$rc" -eq 1
check "failing command: image and stage named" grep -q 'image "bad": stage install' "$TE_TMP/bad1.err"
check "failing command: output tail" grep -q 'about to fail' "$TE_TMP/bad1.err"
check "failing command: nothing exported" not skopeo_ok --tls-verify=false "docker://$REG/demo/bad:bad1"

write_yaml "ansible" <<YAML
project: stapel-demo
configVersion: 1
---
image: bad
from: $REG/base/busybox:1
ansible:
  install:
  - shell: echo
YAML
run_export HEAD s6 bad2
check "ansible: exit 2" test $? -eq 2
check "ansible: line and image" grep -q 'werf.yaml:6: image "bad": ansible is not supported' "$TE_TMP/bad2.err"

write_yaml "import" <<YAML
project: stapel-demo
configVersion: 1
---
image: bad
from: $REG/base/busybox:1
shell:
  instal: [true]
YAML
run_export HEAD s7 bad3
check "unknown key: exit 2" test $? -eq 2
check "unknown key: line and key" grep -q 'werf.yaml:7: unknown field "instal" in "shell"' "$TE_TMP/bad3.err"
check "bad inputs built nothing" test ! -e "$TE_TMP/s7/buildah"

write_yaml "a platform without emulation" <<YAML
project: stapel-demo
configVersion: 1
build:
  platform: [linux/amd64, linux/wasm]
---
image: bad
from: $REG/base/busybox:1
shell:
  install: [true]
YAML
run_export HEAD s8 bad4
check "no emulation: exit 2" test $? -eq 2
check "no emulation: named" grep -q 'werf.yaml:6: image "bad": shell commands for linux/wasm run wasm binaries' "$TE_TMP/bad4.err"

# fromLatest: refused unless werf-giterminism.yaml allows it; allowed, the
# from stage follows the digest the base tag has now, and builds on it.
retag "$REG/demo/app:v1" "$REG/base/moving:1"
write_yaml "fromLatest" <<YAML
project: stapel-demo
configVersion: 1
---
image: latest
from: $REG/base/moving:1
fromLatest: true
shell:
  install:
  - cat /app/README > /readme-saw
YAML
run_export HEAD s9 fl1
check "fromLatest without giterminism: exit 2" test $? -eq 2
check "fromLatest without giterminism: key and line named" grep -q 'werf.yaml:6: image "latest": fromLatest is not allowed by werf-giterminism.yaml (config.stapel.allowFromLatest)' "$TE_TMP/fl1.err"
printf 'giterminismConfigVersion: 1\nconfig:\n  stapel:\n    allowFromLatest: true\n' >"$proj/werf-giterminism.yaml"
git_commit_all "$proj" "allow fromLatest"
run_export HEAD s10 fl2
check "fromLatest allowed: exit 0" test $? -eq 0 || cat "$TE_TMP/fl2.err" >&2
check "fromLatest: built on the tag's image" test "$(rootfs "$REG/demo/latest:fl2" "$TE_TMP/fl2fs" && cat "$TE_TMP/fl2fs/readme-saw")" = r1
retag "$REG/demo/app:v3" "$REG/base/moving:1"
run_export HEAD s11 fl3
check "fromLatest after the tag moved: exit 0" test $? -eq 0 || cat "$TE_TMP/fl3.err" >&2
check "fromLatest: the moved tag rebuilds from on" test "$(built_stages fl3)" = "from install "
check "fromLatest: built on the new image" test "$(rootfs "$REG/demo/latest:fl3" "$TE_TMP/fl3fs" && cat "$TE_TMP/fl3fs/readme-saw")" = r2
run_export HEAD s12 fl4
check "fromLatest, tag unchanged: nothing rebuilt" test -z "$(built_stages fl4)"

te_finish
