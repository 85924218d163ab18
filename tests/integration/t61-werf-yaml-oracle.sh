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
te_finish
