#!/usr/bin/env bash
# The plan of images (issue 13): dependencies with the four import types
# along a chain of three images, images built side by side, one failure
# stopping the others, cacheVersion in the content tag.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl

start_registry REG
make_base_image "$REG/base/busybox:1"
STATE="$TE_TMP/state"

# ---- a chain of three images: base <- mid <- app --------------------------
proj="$TE_TMP/chain"
mkdir -p "$proj"
git init -q -b main "$proj"
cat >"$proj/werf.yaml" <<YAML
project: chain
configVersion: 1
---
image: base
dockerfile: base.Dockerfile
final: false
---
image: mid
dockerfile: mid.Dockerfile
dependencies:
- image: base
  imports:
  - type: ImageName
    targetBuildArg: BASE_IMAGE
---
image: app
dockerfile: app.Dockerfile
dependencies:
- image: mid
  imports:
  - {type: ImageName, targetBuildArg: MID_NAME}
  - {type: ImageDigest, targetBuildArg: MID_DIGEST}
  - {type: ImageRepo, targetBuildArg: MID_REPO}
  - {type: ImageTag, targetBuildArg: MID_TAG}
YAML
cat >"$proj/base.Dockerfile" <<DF
FROM $REG/base/busybox:1
LABEL org.example.base=v1
RUN echo base > /base.txt
DF
# werf's documented form: the dependency's name as an ARG before FROM.
cat >"$proj/mid.Dockerfile" <<'DF'
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN cat /base.txt > /mid.txt
DF
cat >"$proj/app.Dockerfile" <<'DF'
ARG MID_NAME
FROM ${MID_NAME}
ARG MID_NAME
ARG MID_DIGEST
ARG MID_REPO
ARG MID_TAG
LABEL dep.name=${MID_NAME} dep.digest=${MID_DIGEST} dep.repo=${MID_REPO} dep.tag=${MID_TAG}
DF
git_commit_all "$proj" "chain"

chain_export() {
	"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" \
		--repo "$REG/chain/stages" --tag "$REG/chain/%image%:latest" "$@"
}
chain_export --report-path "$TE_TMP/chain1.json" >"$TE_TMP/chain1.out" 2>"$TE_TMP/chain1.err"
check "chain: export exits 0" test $? -eq 0
check "chain: two final images exported" test "$(grep -c '@sha256:' "$TE_TMP/chain1.out")" -eq 2
check "chain: non-final dependency not exported" not skopeo_ok --tls-verify=false "docker://$REG/chain/base:latest"
mid_tag=$(jq -r '.images.mid.content_based_tag' "$TE_TMP/chain1.json")
app=$(skopeo_inspect "$REG/chain/app:latest")
mid_digest=$(skopeo_inspect "$REG/chain/stages:$mid_tag" | jq -r .Digest)
check "chain: ImageName is the stages reference" test "$(jq -r '.Labels["dep.name"]' <<<"$app")" = "$REG/chain/stages:$mid_tag"
check "chain: ImageDigest is the stages manifest digest" test "$(jq -r '.Labels["dep.digest"]' <<<"$app")" = "$mid_digest"
check "chain: ImageRepo is the stages repo" test "$(jq -r '.Labels["dep.repo"]' <<<"$app")" = "$REG/chain/stages"
check "chain: ImageTag is the content tag" test "$(jq -r '.Labels["dep.tag"]' <<<"$app")" = "$mid_tag"
check "chain: app is built on mid on base" test "$(jq -r '.Labels["org.example.base"]' <<<"$app")" = v1
# Dependencies first: base before mid before app.
order=$(grep -E 'image (base|mid|app): built' "$TE_TMP/chain1.err" | sed -E 's/.*image ([a-z]+):.*/\1/' | tr '\n' ' ')
check "chain: built in dependency order" test "$order" = "base mid app "

# A change of the first image moves every content tag of the chain.
app_tag=$(jq -r '.images.app.content_based_tag' "$TE_TMP/chain1.json")
sed -i 's/base=v1/base=v2/' "$proj/base.Dockerfile"
git_commit_all "$proj" "base v2"
chain_export --report-path "$TE_TMP/chain2.json" >/dev/null 2>"$TE_TMP/chain2.err"
check "chain: second export exits 0" test $? -eq 0
check "chain: dependency change moves mid's tag" test "$(jq -r '.images.mid.content_based_tag' "$TE_TMP/chain2.json")" != "$mid_tag"
check "chain: dependency change moves app's tag" test "$(jq -r '.images.app.content_based_tag' "$TE_TMP/chain2.json")" != "$app_tag"
check "chain: app sees the new base" test "$(skopeo_inspect "$REG/chain/app:latest" | jq -r '.Labels["org.example.base"]')" = v2

# Bad dependencies fail before anything is built, with werf.yaml:LINE.
bad="$TE_TMP/bad"
mkdir -p "$bad"
git init -q -b main "$bad"
printf 'FROM %s\n' "$REG/base/busybox:1" >"$bad/Dockerfile"
bad_case() {
	printf 'project: bad\nconfigVersion: 1\n---\n%s' "$1" >"$bad/werf.yaml"
	git_commit_all "$bad" "$2"
	"$TAGEXPORT" export --dir "$bad" --state-dir "$STATE" --repo "$REG/bad/stages" \
		--tag "$REG/bad/%image%:x" >/dev/null 2>"$TE_TMP/bad.err"
	local rc=$?
	check "bad: $2 exits 2" test "$rc" -eq 2
	check "bad: $2 message" grep -qF "$3" "$TE_TMP/bad.err"
}
bad_case $'image: a\ndockerfile: Dockerfile\ndependencies:\n- image: zzz\n' "unknown image" \
	'werf.yaml:7: image "a": dependency on unknown image "zzz"'
bad_case $'image: a\ndockerfile: Dockerfile\ndependencies:\n- image: b\n---\nimage: b\ndockerfile: Dockerfile\ndependencies:\n- image: a\n' "cycle" \
	'werf.yaml:4: image "a": dependency cycle a -> b -> a'
bad_case $'image: a\ndockerfile: Dockerfile\n---\nimage: b\ndockerfile: Dockerfile\ndependencies:\n- image: a\n  imports:\n  - {type: ImageId, targetBuildArg: X}\n' "bad type" \
	'werf.yaml:12: unknown import type "ImageId"'
check "bad: nothing pushed" test -z "$(registry_catalog "$REG" | grep '^bad/')"

# ---- three independent images side by side ------------------------------
par="$TE_TMP/par"
mkdir -p "$par"
git init -q -b main "$par"
printf 'project: par\nconfigVersion: 1\n' >"$par/werf.yaml"
for n in 1 2 3; do
	printf -- '---\nimage: p%s\ndockerfile: Dockerfile\nargs: {N: "%s"}\n' "$n" "$n" >>"$par/werf.yaml"
done
# /proc/uptime is one clock for every container of the machine.
cat >"$par/Dockerfile" <<DF
FROM $REG/base/busybox:1
ARG N
RUN cut -d' ' -f1 /proc/uptime > /start && sleep 5 && cut -d' ' -f1 /proc/uptime > /end
DF
git_commit_all "$par" "three"
par_export() {
	"$TAGEXPORT" export --dir "$par" --state-dir "$1" --repo "$REG/$2/stages" \
		--tag "$REG/$2/%image%:latest" --parallel-tasks-limit "$3"
}
par_export "$TE_TMP/state-par" par 3 >/dev/null 2>"$TE_TMP/par.err"
check "parallel: export exits 0" test $? -eq 0
# Every image started before any finished (the scheduler's own lines)...
first_built=$(grep -n ': built in' "$TE_TMP/par.err" | head -n 1 | cut -d: -f1)
last_building=$(grep -n 'image p[123]: building' "$TE_TMP/par.err" | tail -n 1 | cut -d: -f1)
check "parallel: three started before the first finished" test "$last_building" -lt "$first_built"
# ...and their RUNs really overlapped: the latest start is before the
# earliest end.
starts=() ends=()
for n in 1 2 3; do
	starts+=("$(image_file "$REG/par/p$n:latest" start)")
	ends+=("$(image_file "$REG/par/p$n:latest" end)")
done
max_start=$(printf '%s\n' "${starts[@]}" | sort -g | tail -n 1)
min_end=$(printf '%s\n' "${ends[@]}" | sort -g | head -n 1)
check "parallel: the three RUNs overlap" test "$(echo "$max_start < $min_end" | bc -l)" = 1

# With a limit of 1 the same images build one after the other.
par_export "$TE_TMP/state-ser" ser 1 >/dev/null 2>"$TE_TMP/ser.err"
check "serial: export exits 0" test $? -eq 0
seq_lines=$(grep -E 'image p[123]: (building|built)' "$TE_TMP/ser.err" | sed -E 's/.*: (building|built).*/\1/' | tr '\n' ' ')
check "serial: building and built alternate" test "$seq_lines" = "building built building built building built "
prev_end=0 ok=1
for n in 1 2 3; do
	s=$(image_file "$REG/ser/p$n:latest" start)
	e=$(image_file "$REG/ser/p$n:latest" end)
	[ "$(echo "$s >= $prev_end" | bc -l)" = 1 ] || ok=0
	prev_end=$e
done
check "serial: no two RUNs overlap" test "$ok" = 1

# ---- one failure among three parallel images ----------------------------
fl="$TE_TMP/fail"
mkdir -p "$fl"
git init -q -b main "$fl"
cat >"$fl/werf.yaml" <<YAML
project: fail
configVersion: 1
---
image: slow1
dockerfile: slow.Dockerfile
args: {N: "1"}
---
image: broken
dockerfile: broken.Dockerfile
---
image: slow2
dockerfile: slow.Dockerfile
args: {N: "2"}
YAML
printf 'FROM %s\nARG N\nRUN sleep 120\n' "$REG/base/busybox:1" >"$fl/slow.Dockerfile"
printf 'FROM %s\nRUN sleep 1 && echo broken-step && exit 3\n' "$REG/base/busybox:1" >"$fl/broken.Dockerfile"
git_commit_all "$fl" "one fails"
"$TAGEXPORT" export --dir "$fl" --state-dir "$TE_TMP/state-fail" --repo "$REG/fail/stages" \
	--tag "$REG/fail/%image%:latest" >/dev/null 2>"$TE_TMP/fail.err"
rc=$?
check "failure: exit 1" test "$rc" -eq 1
check "failure: the error names the image" grep -q 'error: image "broken": ' "$TE_TMP/fail.err"
check "failure: the error has the command's exit" grep -q 'exit status 3\|exit 3' "$TE_TMP/fail.err"
check "failure: slow1 stopped" grep -q 'image slow1: stopped' "$TE_TMP/fail.err"
check "failure: slow2 stopped" grep -q 'image slow2: stopped' "$TE_TMP/fail.err"
check "failure: nothing in the stages repo or under a final tag" test -z "$(registry_catalog "$REG" | grep '^fail/')"
check "failure: no build process left" not pgrep -f "$TE_TMP/state-fail"

# ---- cacheVersion and build.cacheVersion are in the content tag ---------
cv="$TE_TMP/cv"
mkdir -p "$cv"
git init -q -b main "$cv"
printf 'FROM %s\n' "$REG/base/busybox:1" >"$cv/Dockerfile"
cv_tag() {
	printf 'project: cv\nconfigVersion: 1\n%s---\nimage: app\ndockerfile: Dockerfile\n%s' "$1" "$2" >"$cv/werf.yaml"
	git_commit_all "$cv" "cv $RANDOM"
	"$TAGEXPORT" export --dir "$cv" --state-dir "$STATE" --repo "$REG/cv/stages" \
		--tag "$REG/cv/%image%:latest" --report-path "$TE_TMP/cv.json" >/dev/null 2>&1 &&
		jq -r '.images.app.content_based_tag' "$TE_TMP/cv.json"
}
t0=$(cv_tag "" "")
t1=$(cv_tag "" $'cacheVersion: "1"\n')
t2=$(cv_tag "" $'cacheVersion: "2"\n')
t3=$(cv_tag $'build:\n  cacheVersion: "1"\n' $'cacheVersion: "2"\n')
t4=$(cv_tag "" $'cacheVersion: "1"\n')
check "cacheVersion: tags computed" test -n "$t0" -a -n "$t1" -a -n "$t2" -a -n "$t3"
check "cacheVersion: setting it moves the tag" test "$t1" != "$t0"
check "cacheVersion: changing it moves the tag" test "$t2" != "$t1"
check "cacheVersion: build.cacheVersion moves the tag" test "$t3" != "$t2"
check "cacheVersion: the same value gives the same tag" test "$t4" = "$t1"

# ---- the local layer cache never stands in for changed content ----------
lc="$TE_TMP/lc"
mkdir -p "$lc"
git init -q -b main "$lc"
printf 'project: lc\nconfigVersion: 1\n---\nimage: app\ndockerfile: Dockerfile\n' >"$lc/werf.yaml"
cat >"$lc/Dockerfile" <<DF
FROM $REG/base/busybox:1
RUN echo expensive-step-ran > /deps
COPY src.txt /src.txt
RUN cat /src.txt > /copy.txt
DF
echo one >"$lc/src.txt"
git_commit_all "$lc" "one"
lc_export() {
	"$TAGEXPORT" export --verbose --dir "$lc" --state-dir "$TE_TMP/state-lc" \
		--repo "$REG/lc/stages" --tag "$REG/lc/app:$1" 2>"$TE_TMP/lc-$1.err" >/dev/null
}
lc_export one
check "layer cache: first export exits 0" test $? -eq 0
echo two >"$lc/src.txt"
git_commit_all "$lc" "two"
lc_export two
check "layer cache: second export exits 0" test $? -eq 0
check "layer cache: the unchanged RUN came from the cache" grep -q 'Using cache' "$TE_TMP/lc-two.err"
check "layer cache: the first build had no cache" not grep -q 'Using cache' "$TE_TMP/lc-one.err"
check "layer cache: the changed COPY source is in the image" test "$(image_file "$REG/lc/app:two" copy.txt)" = two
check "layer cache: first image kept its content" test "$(image_file "$REG/lc/app:one" copy.txt)" = one

# ---- the storage driver: chosen once, recorded, reported ----------------
driver=$(cat "$TE_TMP/state-lc/buildah/driver")
check "storage driver recorded in the state dir" grep -qxE 'overlay|vfs' <<<"$driver"
check "storage driver reported by --verbose" grep -q "storage driver: $driver\$" "$TE_TMP/lc-one.err"
check "storage driver kept by the next export" grep -q "storage driver: $driver\$" "$TE_TMP/lc-two.err"
check "storage driver probed once" test "$(grep -c 'overlay probe\|buildah: te-probe' "$TE_TMP/lc-two.err")" -eq 0

# ---- a nameless image (image: ~) goes through the plan as "~" -----------
nl="$TE_TMP/nameless"
mkdir -p "$nl"
git init -q -b main "$nl"
printf 'project: nl\nconfigVersion: 1\n---\nimage: ~\ndockerfile: Dockerfile\n' >"$nl/werf.yaml"
printf 'FROM %s\n' "$REG/base/busybox:1" >"$nl/Dockerfile"
git_commit_all "$nl" "nameless"
"$TAGEXPORT" export --dir "$nl" --state-dir "$STATE" --repo "$REG/nl/stages" \
	--tag "$REG/nl/app:latest" >/dev/null 2>"$TE_TMP/nl.err"
check "nameless: export exits 0" test $? -eq 0
check "nameless: progress names it ~" grep -q 'image ~: building' "$TE_TMP/nl.err"
check "nameless: exported" skopeo_ok --tls-verify=false "docker://$REG/nl/app:latest"

te_finish
