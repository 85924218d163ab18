#!/usr/bin/env bash
# The main path of `tagexport export`: a multi-image werf project exported
# from a git tag into two registries, checked with skopeo; positional
# selection; a no-op re-run; a change that moves one content tag only.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl

start_registry REG
start_registry REG2
make_base_image "$REG/base/busybox:1"
STATE="$TE_TMP/state"

proj="$TE_TMP/project"
mkdir -p "$proj/backend" "$proj/frontend/static" "$proj/docs"
git init -q -b main "$proj"
cat >"$proj/werf.yaml" <<YAML
project: demo-shop
configVersion: 1
---
image: backend
dockerfile: Dockerfile.backend
args:
  GREETING: hello
---
image: [frontend]
context: frontend
dockerfile: Dockerfile
---
image: tools
dockerfile: Dockerfile.backend
final: false
YAML
cat >"$proj/Dockerfile.backend" <<DF
ARG BASE=$REG/base/busybox:1
FROM \$BASE
ARG GREETING
COPY backend/ /app/
RUN echo "\$GREETING" > /app/greeting
DF
echo 'server v1' >"$proj/backend/server.sh"
echo 'unrelated notes' >"$proj/docs/README"
cat >"$proj/frontend/Dockerfile" <<DF
FROM $REG/base/busybox:1
COPY static /srv
DF
echo '<h1>v1</h1>' >"$proj/frontend/static/index.html"
git_commit_all "$proj" "first"
git -C "$proj" -c user.name=t -c user.email=t@example.com tag -a v1.0.0 -m "release 1.0.0"
# Uncommitted changes must never reach an export.
echo 'dirty' >"$proj/backend/server.sh"

run_export() {
	"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" \
		--repo "$REG/shop/stages" "$@"
}

export WERF_EXPORT_ADD_LABEL_A='org.example.from-env=yes'
out=$(run_export --commit v1.0.0 \
	--tag "$REG/shop/%image%:latest" \
	--tag "$REG2/mirror/%image_slug%:%git_tag%" \
	--add-label 'org.opencontainers.image.source=https://git.example.com/shop' \
	--add-label $'org.example.a=1\norg.example.b=x=y' \
	--report-path "$TE_TMP/report.json" 2>"$TE_TMP/err1")
rc=$?
check "first export exits 0" test "$rc" -eq 0
check "prints four references" test "$(printf '%s\n' "$out" | grep -c '@sha256:')" -eq 4
check "stdout lines are REF@sha256" bash -c '! printf "%s\n" "$1" | grep -vqE "^[^ ]+@sha256:[0-9a-f]{64}$"' _ "$out"
check "backend on the stages registry" grep -q "^$REG/shop/backend:latest@" <<<"$out"
check "frontend on the second registry with git tag" grep -q "^$REG2/mirror/frontend:v1.0.0@" <<<"$out"
check "final:false image not exported" bash -c '! grep -q tools <<<"$1"' _ "$out"
check "tools not in any registry" bash -c '! skopeo inspect --tls-verify=false docker://$1/shop/tools:latest >/dev/null 2>&1' _ "$REG"

info=$(skopeo_inspect "$REG2/mirror/backend:v1.0.0")
check "no werf labels left" test "$(jq '[.Labels // {} | keys[] | select(startswith("werf"))] | length' <<<"$info")" -eq 0
check "added label from flag" test "$(jq -r '.Labels["org.opencontainers.image.source"]' <<<"$info")" = https://git.example.com/shop
check "label value keeps later =" test "$(jq -r '.Labels["org.example.b"]' <<<"$info")" = x=y
check "label from env" test "$(jq -r '.Labels["org.example.from-env"]' <<<"$info")" = yes
stages_tag=$(jq -r '.images.backend.content_based_tag' "$TE_TMP/report.json")
check "content tag is 56 hex" grep -qE '^[0-9a-f]{56}$' <<<"$stages_tag"
sinfo=$(skopeo_inspect "$REG/shop/stages:$stages_tag")
check "stages image keeps werf labels" test "$(jq -r '.Labels.werf' <<<"$sinfo")" = demo-shop
check "stages image records commit" test "$(jq -r '.Labels["werf-project-repo-commit"]' <<<"$sinfo")" = "$(git -C "$proj" rev-parse v1.0.0^{commit})"
check "exported layers are the stages layers" test "$(jq -c .Layers <<<"$info")" = "$(jq -c .Layers <<<"$sinfo")"
check "report says built" test "$(jq -r '.images.backend.built' "$TE_TMP/report.json")" = true
check "report lists exported refs" test "$(jq '.images.frontend.exported | length' "$TE_TMP/report.json")" -eq 2
check "report digest matches registry" test "$(jq -r '.images.backend.exported[0].digest' "$TE_TMP/report.json")" = "$(skopeo_inspect "$REG/shop/backend:latest" | jq -r .Digest)"

# The committed file, not the dirty working tree, was built.
mkdir -p "$TE_TMP/unpack"
# One layer per instruction (buildah build --layers): read them all.
layers=$(skopeo_inspect "$REG/shop/backend:latest" | jq -r '.Layers[]')
all_layers() {
	local l
	for l in $layers; do
		curl -fsSL "http://$REG/v2/shop/backend/blobs/$l" | tar -xzO "$@" 2>/dev/null
	done
}
layers_have() {
	local n
	n=$(all_layers "${@:2}" | grep -ac "$1")
	[ "${n:-0}" -gt 0 ]
}
check "committed content was built" layers_have "server v1" app/server.sh
check "build saw the werf.yaml build arg" layers_have '^hello$' app/greeting

# Re-running with nothing changed is a no-op with identical digests.
out2=$(run_export --commit v1.0.0 \
	--tag "$REG/shop/%image%:latest" \
	--tag "$REG2/mirror/%image_slug%:%git_tag%" \
	--add-label 'org.opencontainers.image.source=https://git.example.com/shop' \
	--add-label $'org.example.a=1\norg.example.b=x=y' \
	--report-path "$TE_TMP/report2.json" 2>"$TE_TMP/err2")
check "re-run exits 0" test $? -eq 0
check "re-run yields identical digests" test "$out" = "$out2"
check "re-run builds nothing" test "$(jq '[.images[].built] | any' "$TE_TMP/report2.json")" = false

# Positional selection exports only the named image.
out3=$(run_export --commit v1.0.0 --tag "$REG/sel/%image%:x" 'back*' 2>/dev/null)
check "positional selection: one reference" test "$(printf '%s\n' "$out3" | wc -l)" -eq 1
check "positional selection: backend" grep -q "^$REG/sel/backend:x@" <<<"$out3"
out3b=$(run_export --commit v1.0.0 --tag "$REG/sel2/%image%:x" '!backend' 2>/dev/null)
check "exclusion pattern: frontend only" test "$(printf '%s\n' "$out3b" | cut -d@ -f1)" = "$REG/sel2/frontend:x"

# A change nobody COPYs moves nothing; a backend change moves backend only.
git -C "$proj" checkout -q -- backend/server.sh
echo 'more notes' >>"$proj/docs/README"
git_commit_all "$proj" "docs only"
run_export --tag "$REG/t/%image%:x" --report-path "$TE_TMP/r3.json" >/dev/null 2>&1
check "unread file keeps backend tag" test "$(jq -r .images.backend.content_based_tag "$TE_TMP/r3.json")" = "$stages_tag"
check "unread file builds nothing" test "$(jq '[.images[].built] | any' "$TE_TMP/r3.json")" = false
front_tag=$(jq -r .images.frontend.content_based_tag "$TE_TMP/r3.json")
echo 'server v2' >"$proj/backend/server.sh"
git_commit_all "$proj" "backend v2"
run_export --tag "$REG/t/%image%:y" --report-path "$TE_TMP/r4.json" >/dev/null 2>&1
check "backend change moves backend tag" test "$(jq -r .images.backend.content_based_tag "$TE_TMP/r4.json")" != "$stages_tag"
check "backend change keeps frontend tag" test "$(jq -r .images.frontend.content_based_tag "$TE_TMP/r4.json")" = "$front_tag"
check "only backend rebuilt" test "$(jq -c '[.images.backend.built, .images.frontend.built]' "$TE_TMP/r4.json")" = '[true,false]'
check "%git_commit% placeholder" bash -c '
	out=$("$1" export --dir "$2" --state-dir "$3" --repo "$4/shop/stages" --tag "$4/c/%image%:%git_commit%" backend 2>/dev/null)
	grep -q "^$4/c/backend:$(git -C "$2" rev-parse HEAD)@" <<<"$out"' _ "$TAGEXPORT" "$proj" "$STATE" "$REG"

# The semver rule: v1.2.9 pushed after v1.3.0 moves :1.2 but never :1.
G=(-c user.name=t -c user.email=t@example.com)
git -C "$proj" "${G[@]}" tag -a v1.3.0 -m 1.3.0
git -C "$proj" "${G[@]}" tag -a v1.2.9 -m 1.2.9
sv() {
	run_export --commit "$1" backend --tag "$REG/sv/%image%:%semver_major%" \
		--tag "$REG/sv/%image%:%semver_major%.%semver_minor%" \
		--tag "$REG/sv/%image%:%semver%" 2>"$TE_TMP/sv.err"
}
out5=$(sv v1.3.0)
check "semver: v1.3.0 moves :1, :1.3, :1.3.0" test "$(printf '%s\n' "$out5" | cut -d@ -f1 | tr '\n' ' ')" = "$REG/sv/backend:1 $REG/sv/backend:1.3 $REG/sv/backend:1.3.0 "
out6=$(sv v1.2.9)
check "semver: v1.2.9 does not move :1" test "$(printf '%s\n' "$out6" | cut -d@ -f1 | tr '\n' ' ')" = "$REG/sv/backend:1.2 $REG/sv/backend:1.2.9 "
check "semver: skipped template is logged" grep -q "skipped for tag v1.2.9" "$TE_TMP/sv.err"
out7=$(run_export --commit v1.2.9 backend --tag "$REG/sv/%image%:%semver_major%" \
	--report-path "$TE_TMP/sv7.json" 2>"$TE_TMP/sv7.err")
check "semver: no applicable template exits 0" test $? -eq 0
check "semver: no applicable template publishes nothing" test -z "$out7"
check "semver: no applicable template says so" grep -q "nothing to do" "$TE_TMP/sv7.err"
check "semver: no applicable template builds nothing" test "$(jq '.images | length' "$TE_TMP/sv7.json")" -eq 0
check "semver: non-version tag skips semver templates" bash -c '
	out=$("$1" export --dir "$2" --state-dir "$3" --repo "$4/shop/stages" backend --git-tag nightly \
		--tag "$4/sv/%image%:%semver%" --tag "$4/sv/%image%:%git_tag%" 2>/dev/null)
	test "$(printf "%s\n" "$out" | cut -d@ -f1)" = "$4/sv/backend:nightly"' _ "$TAGEXPORT" "$proj" "$STATE" "$REG"

te_finish
