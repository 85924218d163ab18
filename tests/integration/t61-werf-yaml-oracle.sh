#!/usr/bin/env bash
# werf's fromYaml/toYaml (core/src/werfcfg_yaml.c) against gopkg.in/yaml.v2
# itself: the Go oracle (tests/oracle/werf_yaml, built offline from
# Debian's golang-gopkg-yaml.v2-dev) prints `toYaml (fromYaml FILE)` for
# every case file; `tagexport config render` of a werf.yaml doing the same
# through .Files.Glob must print the same bytes.
. "$(dirname "$0")/lib.sh"
te_require go git

SRC=${TE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
CASES="$SRC/tests/oracle/werf_yaml/cases"

export GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOTOOLCHAIN=local
export GOCACHE="$TE_TMP/gocache" GOTMPDIR="$TE_TMP"
ORACLE="$TE_TMP/werf_yaml"
check "Go yaml.v2 oracle builds offline" go build -o "$ORACLE" "$SRC/tests/oracle/werf_yaml/oracle.go"

proj="$TE_TMP/project"
mkdir -p "$proj/cases"
git init -q -b main "$proj"
cp "$CASES"/*.yaml "$proj/cases/"
cat >"$proj/werf.yaml" <<'YAML'
{{ range $p, $c := .Files.Glob "cases/*.yaml" }}=== {{ $p }}
{{ toYaml (fromYaml $c) }}
{{ end -}}
YAML
git_commit_all "$proj" cases

"$ORACLE" "$CASES"/*.yaml >"$TE_TMP/go.txt"
check "oracle ran" test -s "$TE_TMP/go.txt"
"$TAGEXPORT" config render --dir "$proj" >"$TE_TMP/c.txt" 2>"$TE_TMP/err"
check "config render ran" test $? -eq 0
if ! cmp -s "$TE_TMP/go.txt" "$TE_TMP/c.txt"; then
	diff -u "$TE_TMP/go.txt" "$TE_TMP/c.txt" >&2
	fail "toYaml (fromYaml) equals yaml.v2 on every case"
else
	pass "toYaml (fromYaml) equals yaml.v2 on every case ($(grep -c '^===' "$TE_TMP/go.txt") files)"
fi
# `config graph`: which images each image depends on (Dockerfile
# dependencies, Stapel from/fromImage/fromArtifact, imports of werf images,
# dependencies), printed as werf prints its imageGraph list: the expected
# graph is written here as JSON, the oracle prints it with yaml.v2 and
# werf's struct, and tagexport must print the same bytes.
graph="$TE_TMP/graph"
mkdir -p "$graph"
git init -q -b main "$graph"
printf 'FROM scratch\n' >"$graph/Dockerfile"
cat >"$graph/werf.yaml" <<'YAML'
project: p
configVersion: 1
---
image: base
from: busybox:latest
---
image: "1.0"
from: busybox:latest
final: false
---
artifact: tools
fromImage: base
shell:
  install: [echo hi]
---
image: app
from: base
import:
- artifact: tools
  add: /usr/bin/x
  to: /usr/bin/x
  after: install
- image: "1.0"
  add: /a
  to: /a
  before: setup
- from: busybox:latest
  add: /bin/sh
  to: /sh
  before: install
dependencies:
- image: "1.0"
  after: install
  imports:
  - type: ImageTag
    targetEnv: T
- image: base
  before: setup
  imports:
  - type: ImageName
    targetEnv: B
- image: "1.0"
  after: setup
  imports:
  - type: ImageRepo
    targetEnv: R
---
image: web
dockerfile: Dockerfile
dependencies:
- image: app
  imports:
  - type: ImageName
    targetBuildArg: APP
YAML
git_commit_all "$graph" graph

graph_case() { # NAME JSON ARGS...
	local name=$1 json=$2
	shift 2
	printf '%s' "$json" >"$TE_TMP/$name.json"
	"$ORACLE" -graph "$TE_TMP/$name.json" >"$TE_TMP/$name.go"
	"$TAGEXPORT" config graph --dir "$graph" "$@" >"$TE_TMP/$name.te" 2>"$TE_TMP/err"
	check "config graph $* exits 0" test $? -eq 0
	if ! cmp -s "$TE_TMP/$name.go" "$TE_TMP/$name.te"; then
		diff -u "$TE_TMP/$name.go" "$TE_TMP/$name.te" >&2
		fail "config graph $* prints what werf prints"
	else
		pass "config graph $* prints what werf prints"
	fi
}
graph_case all '[{"image":"base"},{"image":"1.0"},
 {"image":"tools","dependsOn":{"from":"base"}},
 {"image":"app","dependsOn":{"from":"base","import":["tools","1.0"],"dependencies":["1.0","base"]}},
 {"image":"web","dependsOn":{"dependencies":["app"]}}]'
graph_case named '[{"image":"app","dependsOn":{"from":"base","import":["tools","1.0"],"dependencies":["1.0","base"]}},
 {"image":"web","dependsOn":{"dependencies":["app"]}}]' web app
graph_case final '[{"image":"base"},
 {"image":"app","dependsOn":{"from":"base","import":["tools","1.0"],"dependencies":["1.0","base"]}},
 {"image":"web","dependsOn":{"dependencies":["app"]}}]' --final-images-only
"$TAGEXPORT" config graph --dir "$graph" nope >/dev/null 2>"$TE_TMP/err"
check "config graph of an unknown image exits 2" test $? -eq 2
check "... naming it" grep -q 'image "nope" not defined' "$TE_TMP/err"
te_finish
