#!/usr/bin/env bash
# Stapel images that use other images (issue 12): an artifact imported
# before install and, from a named stage, after setup; a fromImage chain;
# a tmp_dir mount that never reaches the image; two images sharing their
# stages, built once; imports with includePaths/excludePaths.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl bash-static

start_registry REG
make_base_image "$REG/base/busybox:1"

proj="$TE_TMP/project"
git init -q -b main "$proj"
cat >"$proj/werf.yaml" <<YAML
project: stapel-graph
configVersion: 1
---
artifact: builder
from: $REG/base/busybox:1
shell:
  install:
  - mkdir -p /out && echo built-by-builder > /out/tool && echo lib > /out/lib.txt
  setup:
  - echo later > /out/late.txt
---
image: app
from: $REG/base/busybox:1
mount:
- from: tmp_dir
  to: /scratch
import:
- artifact: builder
  add: /out/tool
  to: /usr/local/bin/tool
  before: install
- image: builder
  add: /out
  to: /opt/out
  stage: install
  after: setup
shell:
  install:
  - cat /usr/local/bin/tool > /install-saw-tool
  - echo scratch > /scratch/file
  - if [ -e /opt/out ]; then echo present; else echo none; fi > /install-saw-opt
  setup:
  - echo s > /setup
---
image: child
fromImage: app
dependencies:
- image: twin
  before: setup
  imports:
  - type: ImageName
    targetEnv: TWIN_IMAGE
  - type: ImageDigest
    targetEnv: TWIN_DIGEST
  - type: ImageTag
    targetEnv: TWIN_TAG
shell:
  setup:
  - cat /setup > /child-saw
  - echo "\$TWIN_TAG" > /child-saw-twin
---
image: twin
from: $REG/base/busybox:1
shell:
  install:
  - mkdir -p /out && echo built-by-builder > /out/tool && echo lib > /out/lib.txt
  setup:
  - echo later > /out/late.txt
YAML
git_commit_all "$proj" "first"

# twin and builder have the same stages; built side by side (two
# workers), each of them is built once.
out=$("$TAGEXPORT" export --dir "$proj" --state-dir "$TE_TMP/state" --verbose --parallel-tasks-limit 2 \
	--repo "$REG/g/stages" --tag "$REG/g/%image%:v1" --report-path "$TE_TMP/r.json" 2>"$TE_TMP/err")
check "export exits 0" test $? -eq 0 || cat "$TE_TMP/err" >&2
check "final images exported, not the artifact" test \
	"$(printf '%s\n' "$out" | cut -d@ -f1 | sort | tr '\n' ' ')" = \
	"$REG/g/app:v1 $REG/g/child:v1 $REG/g/twin:v1 "
check "artifact built before app" bash -c 'test "$(grep -n "image builder: building stage setup\|image twin: building stage setup\|image builder: stage setup was built" "$1" | head -1 | cut -d: -f1)" -lt "$(grep -n "image app: building stage" "$1" | head -1 | cut -d: -f1)"' _ "$TE_TMP/err"
for st in from install setup; do
	check "shared stage $st built once (twin = builder)" test "$(grep -c "image \(builder\|twin\): building stage $st\$" "$TE_TMP/err")" -eq 1
	check "shared stage $st found by the other image" grep -q "image \(builder\|twin\): stage $st was built for another image" "$TE_TMP/err"
done

# files KEY IMAGE PATH: a file out of the pushed image's layers
layer_file() {
	local ref=$1 path=$2 d="$TE_TMP/img.$RANDOM" l
	skopeo copy -q --src-tls-verify=false "docker://$ref" "dir:$d" >/dev/null || return 1
	for l in $(jq -r '.layers[].digest | sub("sha256:"; "")' "$d/manifest.json" | tac); do
		if tar -tzf "$d/$l" "$path" >/dev/null 2>&1; then
			tar -xzOf "$d/$l" "$path"
			return 0
		fi
	done
	return 1
}
check "import before install: file at to" test "$(layer_file "$REG/g/app:v1" usr/local/bin/tool)" = built-by-builder
check "install saw the imported file" test "$(layer_file "$REG/g/app:v1" install-saw-tool)" = built-by-builder
check "after-setup import not there during install" test "$(layer_file "$REG/g/app:v1" install-saw-opt)" = none
check "import of a directory from a named stage" test "$(layer_file "$REG/g/app:v1" opt/out/lib.txt)" = lib
check "named stage: nothing from later stages" not layer_file "$REG/g/app:v1" opt/out/late.txt
check "tmp_dir mount not in the image" not layer_file "$REG/g/app:v1" scratch/file
check "fromImage builds on the image's last stage" test "$(layer_file "$REG/g/child:v1" child-saw)" = s
twin_tag=$(jq -r .images.twin.content_based_tag "$TE_TMP/r.json")
child_env=$(skopeo_inspect "$REG/g/child:v1" | jq -r '.Env[]')
check "dependencies: ImageName" grep -qx "TWIN_IMAGE=$REG/g/stages:$twin_tag" <<<"$child_env"
check "dependencies: ImageDigest" grep -qx "TWIN_DIGEST=$(skopeo_inspect "$REG/g/stages:$twin_tag" | jq -r .Digest)" <<<"$child_env"
check "dependencies: seen by setup" test "$(layer_file "$REG/g/child:v1" child-saw-twin)" = "$twin_tag"

# Again with a fresh state dir: everything is in the stages repo.
"$TAGEXPORT" export --dir "$proj" --state-dir "$TE_TMP/state2" --verbose \
	--repo "$REG/g/stages" --tag "$REG/g/%image%:v2" >/dev/null 2>"$TE_TMP/err2"
check "second export exits 0" test $? -eq 0
check "second export builds nothing" bash -c '! grep -q "building stage" "$1"' _ "$TE_TMP/err2"

# The old rule, without the plan's parallelism: one worker.
"$TAGEXPORT" export --dir "$proj" --state-dir "$TE_TMP/state3" --verbose --parallel-tasks-limit 1 \
	--repo "$REG/g/stages3" --tag "$REG/g/%image%:v3" >/dev/null 2>"$TE_TMP/err3"
check "serial export exits 0" test $? -eq 0
check "serial: shared stages built once" test "$(grep -c "image \(builder\|twin\): building stage install\$" "$TE_TMP/err3")" -eq 1

# import includePaths/excludePaths (werf's rsync filters, relative to
# add): an include keeps a path and all under it, an exclude wins and
# takes a directory whole; symlinks and directory modes are kept; the
# selection's helper stage and tools stay out of the image.
cat >"$proj/werf.yaml" <<YAML
project: stapel-graph
configVersion: 1
---
artifact: tree
from: $REG/base/busybox:1
shell:
  install:
  - mkdir -p /src/a/b /src/c /src/.hidden /src/d
  - echo x > /src/a/x.go && echo y > /src/a/b/y.go && echo z > /src/a/b/z.txt
  - echo k > /src/c/k && echo h > /src/.hidden/h && echo w > /src/d/w.go
  - ln -s ../c/k /src/a/lnk && chmod 700 /src/d
---
image: picky
from: $REG/base/busybox:1
import:
- artifact: tree
  add: /src
  to: /go
  includePaths: ['**/*.go', a/lnk]
  excludePaths: [a/b/y.go]
  before: install
- artifact: tree
  add: /src
  to: /rest
  excludePaths: [a/b, .hidden]
  after: install
shell:
  install:
  - find /go | sort > /install-saw
  - stat -c %a /go/d > /mode-saw
  setup:
  - find /rest | sort > /setup-saw
YAML
git_commit_all "$proj" "filtered imports"
"$TAGEXPORT" export --dir "$proj" --state-dir "$TE_TMP/state4" --verbose \
	--repo "$REG/g/stages" --tag "$REG/g/%image%:v4" >/dev/null 2>"$TE_TMP/err4"
check "filtered imports: export exits 0" test $? -eq 0 || tail -30 "$TE_TMP/err4" >&2
check "includePaths: globs kept, exclude wins" test "$(layer_file "$REG/g/picky:v4" install-saw | tr '\n' ' ')" = \
	"/go /go/a /go/a/lnk /go/a/x.go /go/d /go/d/w.go "
skopeo copy -q --src-tls-verify=false "docker://$REG/g/picky:v4" "dir:$TE_TMP/picky" >/dev/null
for l in $(jq -r '.layers[].digest | sub("sha256:"; "")' "$TE_TMP/picky/manifest.json"); do
	tar -tvzf "$TE_TMP/picky/$l"
done >"$TE_TMP/picky.list"
check "includePaths: symlink kept" grep -q ' go/a/lnk -> \.\./c/k$' "$TE_TMP/picky.list"
check "includePaths: directory mode kept" test "$(layer_file "$REG/g/picky:v4" mode-saw)" = 700
check "excludePaths alone: the rest, directories taken whole" test "$(layer_file "$REG/g/picky:v4" setup-saw | tr '\n' ' ')" = \
	"/rest /rest/a /rest/a/lnk /rest/a/x.go /rest/c /rest/c/k /rest/d /rest/d/w.go "
check "filtered imports: no tools or selection dir in the image" not grep -q 'tagexport' "$TE_TMP/picky.list"

te_finish
