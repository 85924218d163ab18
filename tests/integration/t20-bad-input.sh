#!/usr/bin/env bash
# Every kind of bad input: a clear error naming what was wrong, exit 2
# (usage/configuration) or 1 (export failed), and nothing pushed.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl

start_registry REG
make_base_image "$REG/base/busybox:1"
STATE="$TE_TMP/state"
before=$(registry_catalog "$REG")

proj="$TE_TMP/project"
mkdir -p "$proj/src"
git init -q -b main "$proj"
write_project() {
	cat >"$proj/werf.yaml"
	printf 'FROM %s/base/busybox:1\nCOPY src /src\n' "$REG" >"$proj/Dockerfile"
	echo hi >"$proj/src/a"
	git_commit_all "$proj" "$1"
}
write_project "two images" <<YAML
project: bad
configVersion: 1
---
image: [one, two]
dockerfile: Dockerfile
YAML

# expect_fail CODE PATTERN ARGS...: exit CODE, stderr matches PATTERN,
# registry unchanged.
expect_fail() {
	local code=$1 pattern=$2 rc
	shift 2
	"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" "$@" \
		>"$TE_TMP/out" 2>"$TE_TMP/err"
	rc=$?
	if [ "$rc" -ne "$code" ]; then
		fail "exit $code for: $pattern (got $rc: $(cat "$TE_TMP/err"))"
		return
	fi
	if ! grep -qE -- "$pattern" "$TE_TMP/err"; then
		fail "message /$pattern/ (got: $(cat "$TE_TMP/err"))"
		return
	fi
	if [ -s "$TE_TMP/out" ]; then
		fail "stdout empty for: $pattern"
		return
	fi
	if [ "$(registry_catalog "$REG")" != "$before" ]; then
		fail "nothing pushed for: $pattern"
		return
	fi
	pass "rejected: $pattern"
}

R=(--repo "$REG/bad/stages")
expect_fail 2 "required at least one tag template" "${R[@]}"
expect_fail 2 "index\.docker\.io" "${R[@]}" --tag 'company/%image%:1'
expect_fail 2 "index\.docker\.io" "${R[@]}" --tag 'docker.io/company/%image%:1'
expect_fail 2 "must contain image name shortcut" "${R[@]}" --tag "$REG/x/app:latest"
expect_fail 2 "must contain image name shortcut" "${R[@]}" --tag "$REG/x/app:%image_content_based_tag%"
expect_fail 2 'invalid tag template.*%nope%|invalid tag template' "${R[@]}" --tag "$REG/x/%nope%:1"
expect_fail 2 "invalid tag template" "${R[@]}" --tag "$REG/x/%image%:a b"
expect_fail 2 "git.tag" "${R[@]}" --tag "$REG/x/%image%:%git_tag%"
expect_fail 2 'unsupported --add-label value: invalid value "novalue"' "${R[@]}" --tag "$REG/x/%image%:1" --add-label novalue
expect_fail 2 'invalid key=value pair ""' "${R[@]}" --tag "$REG/x/%image%:1" --add-label 'a=1,' --add-label-separator ,
expect_fail 2 'no image matches pattern "nothing\*"' "${R[@]}" --tag "$REG/x/%image%:1" 'nothing*'
expect_fail 2 'recursive glob' "${R[@]}" --tag "$REG/x/%image%:1" '**'
expect_fail 2 'special characters' "${R[@]}" --tag "$REG/x/%image%:1" 'a$b'
expect_fail 2 '--repo' --tag "$REG/x/%image%:1"
expect_fail 2 'invalid --repo' --repo 'Bad Repo' --tag "$REG/x/%image%:1"
expect_fail 2 'revision "nope"' "${R[@]}" --tag "$REG/x/%image%:1" --commit nope
expect_fail 2 'config nope.yaml not found' "${R[@]}" --tag "$REG/x/%image%:1" --config nope.yaml
WERF_EXPORT_ADD_LABEL_X='=v' expect_fail 2 'invalid key=value pair "=v"' "${R[@]}" --tag "$REG/x/%image%:1"
expect_fail 2 'invalid --parallel-tasks-limit' "${R[@]}" --tag "$REG/x/%image%:1" --parallel-tasks-limit lots

write_project "unknown key" <<YAML
project: bad
configVersion: 1
---
image: one
dockerfile: Dockerfile
contxt: .
YAML
expect_fail 2 'werf\.yaml:6:.*contxt' "${R[@]}" --tag "$REG/x/%image%:1"

write_project "templates" <<YAML
project: bad
configVersion: 1
---
image: {{ env "NAME" }}
dockerfile: Dockerfile
YAML
expect_fail 2 'template: werfConfig:4:.*env name "NAME" not allowed by giterminism' "${R[@]}" --tag "$REG/x/%image%:1"

write_project "stapel" <<YAML
project: bad
configVersion: 1
---
image: one
from: alpine
git:
- url: https://example.com/r.git
  to: /r
YAML
expect_fail 2 'werf.yaml:7: image "one": git url https://example.com/r.git: no tag or commit \(the default branch\) is not allowed by werf-giterminism.yaml \(config.stapel.git.allowBranch\)' "${R[@]}" --tag "$REG/x/%image%:1"

write_project "no meta" <<YAML
image: one
dockerfile: Dockerfile
YAML
expect_fail 2 'configVersion' "${R[@]}" --tag "$REG/x/%image%:1"

write_project "duplicates" <<YAML
project: bad
configVersion: 1
---
image: one
dockerfile: Dockerfile
---
image: one
dockerfile: Dockerfile
YAML
expect_fail 2 'conflict between images names' "${R[@]}" --tag "$REG/x/%image%:1"

write_project "escaping context" <<YAML
project: bad
configVersion: 1
---
image: one
dockerfile: Dockerfile
context: ../..
YAML
expect_fail 2 'werf\.yaml:6:.*context' "${R[@]}" --tag "$REG/x/%image%:1"

# A build that fails: export failed (1), nothing published under the tag.
write_project "broken build" <<YAML
project: bad
configVersion: 1
---
image: one
dockerfile: Dockerfile
YAML
printf 'FROM %s/base/busybox:1\nRUN ["/bin/false"]\n' "$REG" >"$proj/Dockerfile"
git_commit_all "$proj" "broken"
expect_fail 1 'buildah build failed' "${R[@]}" --tag "$REG/x/%image%:1"

# A registry that is not there: export failed (1), clear message.
dead=127.0.0.1:$(te_free_port)
expect_fail 1 "$dead" --repo "$dead/x/stages" --tag "$REG/x/%image%:1"

te_finish
