#!/usr/bin/env bash
# Stapel digests as werf has them (issue 12): an image imported after
# install changes -> the importing image rebuilds from
# dependenciesAfterInstall only; a commit adding more than 1 MiB -> a
# gitCache stage (and no gitLatestPatch: its patch is empty), after which
# gitLatestPatch carries only the rest; a
# project in a subdirectory of the repository, its git mappings' `add`
# taken from the repository root.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl bash-static sha256sum

start_registry REG
make_base_image "$REG/base/busybox:1"

repo="$TE_TMP/repo"
proj="$repo/proj" # --dir: a subdirectory of the repository
mkdir -p "$proj/data" "$proj/conf" "$repo/data"
git init -q -b main "$repo"
write_yaml() {
	cat >"$proj/werf.yaml" <<YAML
project: stapel-digests
configVersion: 1
---
image: src
from: $REG/base/busybox:1
shell:
  install:
  - mkdir -p /out && echo $1 > /out/version
---
image: app
from: $REG/base/busybox:1
git:
- add: /data
  to: /app
- add: /proj/conf
  to: /conf
shell:
  install:
  - echo installed > /installed
  setup:
  - cat /opt/version > /setup-saw
import:
- image: src
  add: /out
  to: /opt
  after: install
YAML
}
write_yaml V1
echo root-a >"$repo/data/a.txt"
echo decoy >"$proj/data/a.txt" # what a project-relative /data would take
echo conf1 >"$proj/conf/app.conf"
git_commit_all "$repo" "first"

# run_export TAG: a fresh state dir each time; stderr in $TE_TMP/TAG.err
run_export() {
	"$TAGEXPORT" export --dir "$proj" --state-dir "$TE_TMP/state-$1" --verbose \
		--repo "$REG/demo/stages" --tag "$REG/demo/%image%:$1" \
		--report-path "$TE_TMP/$1.json" 2>"$TE_TMP/$1.err"
}

# built IMAGE TAG: the stages of IMAGE that export TAG built, in order
built() {
	grep -o "image $1: building stage [A-Za-z]*" "$TE_TMP/$2.err" |
		awk '{print $5}' | tr '\n' ' '
}

# file_sum REF PATH: sha256 of PATH in REF, from the last layer holding it
file_sum() {
	local d l sum=""
	d=$(mktemp -d "$TE_TMP/img.XXXXXX")
	skopeo copy -q --src-tls-verify=false "docker://$1" "dir:$d" >/dev/null || return 1
	for l in $(jq -r '.layers[].digest' "$d/manifest.json"); do
		if tar -xzf "$d/${l#sha256:}" -C "$d" "$2" 2>/dev/null; then
			sum=$(sha256sum <"$d/$2" | cut -d' ' -f1)
		fi
	done
	echo "$sum"
}

jq_true() { jq -e "$@" >/dev/null; }

stage_tags() {
	skopeo list-tags --tls-verify=false "docker://$REG/demo/stages" | jq '.Tags | length'
}

# ---- first export: everything built ------------------------------------
run_export v1
check "first export exits 0" test $? -eq 0 || cat "$TE_TMP/v1.err" >&2
# src is built first (app imports it); app finds the `from` they share
check "src: from and install" test "$(built src v1)" = "from install "
# werf: no gitLatestPatch either, its patch from setup's commit (this one)
# is empty
check "app: every other stage built, no gitCache nor gitLatestPatch for the first commit" \
	test "$(built app v1)" = "gitArchive install dependenciesAfterInstall setup " ||
	echo "built: $(built app v1)" >&2
n1=$(stage_tags)
check "six stages in the repo (from shared by both images)" test "$n1" -eq 6
check "add: /data is the repository's data/, not the project's" \
	test "$(image_file "$REG/demo/app:v1" app/a.txt)" = root-a
check "add: /proj/conf maps the project's conf/" \
	test "$(image_file "$REG/demo/app:v1" conf/app.conf)" = conf1
check "the import landed after install" \
	test "$(image_file "$REG/demo/app:v1" setup-saw)" = V1

# ---- the imported image changes: app rebuilds from the import on -------
write_yaml V2
git_commit_all "$repo" "src v2"
run_export v2
check "second export exits 0" test $? -eq 0 || cat "$TE_TMP/v2.err" >&2
check "src: only install rebuilt" test "$(built src v2)" = "install "
check "app: from, gitArchive and install found; rebuilt from dependenciesAfterInstall" \
	test "$(built app v2)" = "dependenciesAfterInstall setup "
check "app: the scheduler says it started at stage 4 of 5" \
	grep -q "image app: building from stage 4/5 (3 found in repo)" "$TE_TMP/v2.err"
n2=$(stage_tags)
check "three new stages in the repo" test "$n2" -eq $((n1 + 3))
check "app sees the new import" test "$(image_file "$REG/demo/app:v2" setup-saw)" = V2
check "app still has install's file" test "$(image_file "$REG/demo/app:v2" installed)" = installed

# ---- a commit adding more than 1 MiB: gitCache -------------------------
head -c 1572864 /dev/urandom >"$repo/data/big.bin"
big_sum=$(sha256sum <"$repo/data/big.bin" | cut -d' ' -f1)
git_commit_all "$repo" "big"
run_export v3
check "third export exits 0" test $? -eq 0 || cat "$TE_TMP/v3.err" >&2
check "app: gitCache built, nothing before, no gitLatestPatch after it (empty patch)" \
	test "$(built app v3)" = "gitCache "
check "src: nothing built" test -z "$(built src v3)"
check "the patch size is logged" grep -q "image app: gitCache: a patch of 1572864 bytes" "$TE_TMP/v3.err"
check "one new stage in the repo" test "$(stage_tags)" -eq $((n2 + 1))
skopeo inspect --config --tls-verify=false "docker://$REG/demo/app:v3" >"$TE_TMP/v3.config"
check "the image's history has the gitCache layer" \
	jq_true '[.history[].created_by] | index("tagexport: stapel gitCache") != null' "$TE_TMP/v3.config"
check "no gitLatestPatch layer after gitCache" \
	jq_true '[.history[].created_by | select(. == "tagexport: stapel gitLatestPatch")] | length == 0' "$TE_TMP/v3.config"
check "the big file is in the image, intact" \
	test "$(file_sum "$REG/demo/app:v3" app/big.bin)" = "$big_sum"
layers_v3=$(skopeo inspect --raw --tls-verify=false "docker://$REG/demo/app:v3" | jq -r '.layers | length')

# ---- a small change next: gitCache found, gitLatestPatch small ---------
echo root-a2 >"$repo/data/a.txt"
git_commit_all "$repo" "small"
run_export v4
check "fourth export exits 0" test $? -eq 0 || cat "$TE_TMP/v4.err" >&2
check "app: only gitLatestPatch built (gitCache found in the repo)" \
	test "$(built app v4)" = "gitLatestPatch "
check "gitLatestPatch carries the one changed file" \
	grep -q "image app: building stage gitLatestPatch: one layer put in the stages repo (1 files, 0 removed)" "$TE_TMP/v4.err"
skopeo inspect --raw --tls-verify=false "docker://$REG/demo/app:v4" >"$TE_TMP/v4.manifest"
check "one layer more than after gitCache" \
	test "$(jq -r '.layers | length' "$TE_TMP/v4.manifest")" -eq $((layers_v3 + 1))
check "that layer is small" \
	test "$(jq -r '.layers[-1].size' "$TE_TMP/v4.manifest")" -lt 65536
check "the new content and the big file" \
	test "$(image_file "$REG/demo/app:v4" app/a.txt)" = root-a2 -a \
	"$(file_sum "$REG/demo/app:v4" app/big.bin)" = "$big_sum"

te_finish
