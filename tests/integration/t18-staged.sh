#!/usr/bin/env bash
# staged: true (issue 13): one stage per Dockerfile instruction in the
# stages repo; an export with an empty state dir after a source-only
# change runs only the instructions after the change.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl

start_registry REG
make_base_image "$REG/base/busybox:1"

proj="$TE_TMP/staged"
mkdir -p "$proj/src"
git init -q -b main "$proj"
cat >"$proj/werf.yaml" <<YAML
project: staged
configVersion: 1
---
image: app
dockerfile: Dockerfile
staged: true
args:
  GREETING: hello
YAML
cat >"$proj/Dockerfile" <<DF
ARG BASE=$REG/base/busybox:1
FROM \$BASE
ARG GREETING
ENV APP_HOME=/app
WORKDIR \$APP_HOME
COPY deps.txt ./
RUN echo "install-step-ran" && cat deps.txt > installed.txt && \\
    echo "\$GREETING" > greeting.txt
COPY src/ ./src/
RUN cat src/main.txt > built.txt
LABEL org.example.kind=staged
DF
echo "lib 1.0" >"$proj/deps.txt"
echo "main v1" >"$proj/src/main.txt"
git_commit_all "$proj" "v1"

staged_export() {
	"$TAGEXPORT" export --verbose --dir "$proj" --state-dir "$TE_TMP/$1" \
		--repo "$REG/staged/stages" --tag "$REG/staged/app:$2" \
		--report-path "$TE_TMP/$2.json" >/dev/null 2>"$TE_TMP/$2.err"
}
staged_export state1 v1
check "first export exits 0" test $? -eq 0
check "first export ran the install step" test "$(grep -c 'buildah: install-step-ran' "$TE_TMP/v1.err")" -eq 1
tags=$(curl -fsS "http://$REG/v2/staged/stages/tags/list" | jq -r '.tags | length')
# ARG, FROM, ARG, ENV, WORKDIR, COPY, RUN, COPY, RUN, LABEL: the global ARG
# belongs to FROM's stage.
check "one stage per instruction in the repo" test "$tags" -eq 9
v1=$(jq -r '.images.app.content_based_tag' "$TE_TMP/v1.json")
check "content tag is the last stage's" test "$(skopeo_inspect "$REG/staged/stages:$v1" | jq -r '.Labels["werf-stage-content-digest"]')" = "$v1"
check "v1: built.txt" test "$(image_file "$REG/staged/app:v1" app/built.txt)" = "main v1"
check "v1: the build arg reached RUN" test "$(image_file "$REG/staged/app:v1" app/greeting.txt)" = hello
check "v1: ENV and WORKDIR carried over" test "$(skopeo_inspect "$REG/staged/app:v1" | jq -r '.Env[] | select(startswith("APP_HOME="))')" = APP_HOME=/app
check "v1: LABEL of the last stage" test "$(skopeo_inspect "$REG/staged/app:v1" | jq -r '.Labels["org.example.kind"]')" = staged

# A source-only change, exported with an empty state dir.
echo "main v2" >"$proj/src/main.txt"
git_commit_all "$proj" "v2"
staged_export state2 v2
check "second export exits 0" test $? -eq 0
check "second export did not run the install step" test "$(grep -c 'install-step-ran' "$TE_TMP/v2.err")" -eq 0
check "second export started after the unchanged prefix" grep -q 'image app: building from stage 7/9 (6 found in repo)' "$TE_TMP/v2.err"
check "v2: built.txt has the new source" test "$(image_file "$REG/staged/app:v2" app/built.txt)" = "main v2"
check "v2: the reused install result is there" test "$(image_file "$REG/staged/app:v2" app/installed.txt)" = "lib 1.0"
check "v2: new content tag" test "$(jq -r '.images.app.content_based_tag' "$TE_TMP/v2.json")" != "$v1"

# The same commit again, empty state dir: nothing to build.
staged_export state3 v2b
check "re-export exits 0" test $? -eq 0
check "re-export found the image" grep -q 'image app: found in repo' "$TE_TMP/v2b.err"

# A dependency change reruns from its instruction on.
echo "lib 2.0" >"$proj/deps.txt"
git_commit_all "$proj" "v3"
staged_export state4 v3
check "deps change: install step ran" test "$(grep -c 'buildah: install-step-ran' "$TE_TMP/v3.err")" -eq 1
check "deps change: new install result" test "$(image_file "$REG/staged/app:v3" app/installed.txt)" = "lib 2.0"

# cacheVersion is part of the FROM stage: every stage is new.
printf 'cacheVersion: "2"\n' >>"$proj/werf.yaml"
git_commit_all "$proj" "cacheVersion"
staged_export state6 cv
check "cacheVersion: exits 0" test $? -eq 0
check "cacheVersion: every stage rebuilt" grep -q 'image app: building$' "$TE_TMP/cv.err"
check "cacheVersion: install step ran" test "$(grep -c 'buildah: install-step-ran' "$TE_TMP/cv.err")" -eq 1

# What staged cannot do is refused before anything is built.
printf 'FROM %s AS a\nRUN true\nFROM %s\nCOPY --from=a /bin/sh /x\n' "$REG/base/busybox:1" "$REG/base/busybox:1" >"$proj/Dockerfile"
git_commit_all "$proj" "multi-stage"
before=$(registry_catalog "$REG" | wc -l)
staged_export state5 multi
check "multi-stage: exits 2 (a configuration error)" test $? -eq 2
check "multi-stage: message" grep -q 'werf.yaml:4: image "app": staged: only single-stage Dockerfiles can be staged; Dockerfile has 2 FROM instructions' "$TE_TMP/multi.err"
check "multi-stage: nothing pushed" test "$(registry_catalog "$REG" | wc -l)" -eq "$before"

te_finish
