#!/usr/bin/env bash
# A templated werf.yaml (werf's Go templates: .werf/*.tmpl, include, tpl,
# env under giterminism, .Env, .Commit, .Files) exported for real, and
# `tagexport config render|list` printing the rendered configuration.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl

start_registry REG
make_base_image "$REG/base/busybox:1"
STATE="$TE_TMP/state"

proj="$TE_TMP/project"
mkdir -p "$proj/.werf/partials" "$proj/app"
git init -q -b main "$proj"
cat >"$proj/werf.yaml" <<'YAML'
project: templated
configVersion: 1
---
{{ include "partials/image.tmpl" "web" }}
args:
  GREETING: {{ env "GREETING" "hello" }}
  STAGE: {{ .Env }}
---
{{ tpl "{{ template \"img\" . }}" "worker" }}
final: false
# {{ .Commit.Hash }} {{ .Commit.Date.Unix }} {{ .Commit.Date.Human }}
# {{ tpl (.Files.Get "ci/note.txt") . }} {{ .Files.Exists "ci" }}
YAML
mkdir -p "$proj/ci"
printf 'note for {{ .Env }}' >"$proj/ci/note.txt"
cat >"$proj/.werf/partials/image.tmpl" <<'TMPL'
{{- define "img" }}image: {{ . }}
dockerfile: Dockerfile{{ end -}}
{{ template "img" . -}}
TMPL
printf 'giterminismConfigVersion: 1\nconfig:\n  goTemplateRendering:\n    allowEnvVariables: [/GREET.*/]\n' \
	>"$proj/werf-giterminism.yaml"
cat >"$proj/Dockerfile" <<DF
FROM $REG/base/busybox:1
ARG GREETING
COPY app /app
RUN echo "\$GREETING" > /app/greeting
DF
echo 'v1' >"$proj/app/main"
# werf's .Commit.Date is the author time in the author's offset
GIT_AUTHOR_DATE='1700000000 +0300' git_commit_all "$proj" "templated"
commit=$(git -C "$proj" rev-parse HEAD)

# config render: the rendered text, byte for byte.
expected="project: templated
configVersion: 1
---
image: web
dockerfile: Dockerfile
args:
  GREETING: hi there
  STAGE: production
---
image: worker
dockerfile: Dockerfile
final: false
# $commit 1700000000 2023-11-15 01:13:20 +0300 +0300
# note for production true"
out=$(GREETING='hi there' "$TAGEXPORT" config render --dir "$proj" --env production)
check "config render exits 0" test $? -eq 0
check "config render prints the rendered werf.yaml" test "$out" = "$expected"
out=$(WERF_ENV=staging "$TAGEXPORT" config render web --dir "$proj")
check "config render IMAGE: that document only" test "$out" = "image: web
dockerfile: Dockerfile
args:
  GREETING: hello
  STAGE: staging"
check "config list" test "$("$TAGEXPORT" config list --dir "$proj")" = "web
worker"
check "config list --final-images-only" test "$("$TAGEXPORT" config list --final-images-only --dir "$proj")" = web

# export renders the same way: the env value reaches the build and moves
# the content tag.
run_export() {
	"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" \
		--repo "$REG/tpl/stages" --tag "$REG/tpl/%image%:%image_content_based_tag%" \
		--env production "$@"
}
out=$(GREETING=first run_export --report-path "$TE_TMP/r1.json" 2>"$TE_TMP/err1")
check "templated export exits 0" test $? -eq 0
check "one final image exported" test "$(printf '%s\n' "$out" | grep -c "^$REG/tpl/web:")" -eq 1
layer=$(skopeo_inspect "$REG/tpl/web:$(jq -r .images.web.content_based_tag "$TE_TMP/r1.json")" | jq -r '.Layers[-1]')
check "build saw the env value through the template" bash -c '
	curl -fsSL "http://$1/v2/tpl/web/blobs/$2" | tar -xzO app/greeting 2>/dev/null | grep -qx first' _ "$REG" "$layer"
GREETING=second run_export --report-path "$TE_TMP/r2.json" >/dev/null 2>&1
check "another env value, another content tag" test \
	"$(jq -r .images.web.content_based_tag "$TE_TMP/r1.json")" != "$(jq -r .images.web.content_based_tag "$TE_TMP/r2.json")"

# Giterminism: a variable not allowed is an error naming it (exit 2),
# unless --loose-giterminism.
sed -i 's/env "GREETING" "hello"/env "SECRET_TOKEN" "x"/' "$proj/werf.yaml"
git_commit_all "$proj" "not allowed"
SECRET_TOKEN=abc "$TAGEXPORT" config render --dir "$proj" >"$TE_TMP/out" 2>"$TE_TMP/err"
check "env not allowed: exit 2" test $? -eq 2
check "env not allowed: names it and the line" grep -q 'template: werfConfig:6:.*env name "SECRET_TOKEN" not allowed by giterminism' "$TE_TMP/err"
check "env not allowed: the value is not printed" not grep -q abc "$TE_TMP/err"
check "--loose-giterminism reads it" bash -c 'SECRET_TOKEN=abc "$1" config render --dir "$2" --loose-giterminism | grep -qx "  GREETING: abc"' _ "$TAGEXPORT" "$proj"
run_export >/dev/null 2>"$TE_TMP/err"
check "export refuses it too (exit 2)" test $? -eq 2

# A template error names the template, line and column.
printf '{{ define "x" }}\n{{ .a.b.c }}{{ end }}{{ include "x" 1 }}\n' >"$proj/werf.yaml"
git_commit_all "$proj" "bad"
"$TAGEXPORT" config render --dir "$proj" >/dev/null 2>"$TE_TMP/err"
check "template error: exit 2" test $? -eq 2
check "template error: template: NAME:LINE:COL" grep -qF 'template: werfConfig:2:5: executing "x" at <.a.b.c>' "$TE_TMP/err"

te_finish
