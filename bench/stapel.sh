#!/usr/bin/env bash
# stapel.sh - incremental Stapel builds (issue 12): a two-image project
# whose install takes INSTALL_S seconds (default 8), exported once, then
# again after a commit that changes only a file no stage depends on, with
# a fresh state dir (another machine: only the stages repo is shared).
# The second export must build only the git patch stages: it prints both
# times and their ratio and exits 1 when ratio > RATIO_MAX (0.15).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
INSTALL_S=${INSTALL_S:-8}
RATIO_MAX=${RATIO_MAX:-0.15}
TE_BIN_DIR=${TE_BIN_DIR:-$top/build/bin}
. "$top/tests/integration/lib.sh"
te_require docker-registry skopeo buildah git busybox jq bc bash-static
[ -x "$TAGEXPORT" ] || { echo "build first: cmake -S . -B build && cmake --build build" >&2; exit 1; }

start_registry REG
make_base_image "$REG/base/busybox:1"
proj=$TE_TMP/project
mkdir -p "$proj/deps" "$proj/docs"
git init -q -b main "$proj"
for img in api worker; do
	cat >>"$proj/werf.yaml" <<YAML
---
image: $img
from: $REG/base/busybox:1
git:
- add: /
  to: /app
  stageDependencies:
    install: [deps]
shell:
  install:
  - sleep $INSTALL_S
  - cat /app/deps/list > /installed-$img
  setup:
  - echo $img > /role
YAML
done
sed -i '1i project: bench-stapel\nconfigVersion: 1' "$proj/werf.yaml"
echo libfoo >"$proj/deps/list"
echo v1 >"$proj/docs/README"
git_commit_all "$proj" first

now() { date +%s.%N; }
export_once() { # STATE TAG
	"$TAGEXPORT" export --dir "$proj" --state-dir "$TE_TMP/$1" --verbose \
		--repo "$REG/bench/stages" --tag "$REG/bench/%image%:$2" 2>"$TE_TMP/$2.err" >/dev/null
}
t0=$(now)
export_once state1 first || { cat "$TE_TMP/first.err" >&2; exit 1; }
t1=$(now)
echo v2 >"$proj/docs/README"
git_commit_all "$proj" "docs only"
export_once state2 second || { cat "$TE_TMP/second.err" >&2; exit 1; }
t2=$(now)

first=$(echo "$t1 - $t0" | bc -l)
second=$(echo "$t2 - $t1" | bc -l)
ratio=$(echo "$second / $first" | bc -l)
printf 'first export (everything built):  %.2f s\n' "$first"
printf 'second export (docs change, fresh state dir): %.2f s\n' "$second"
printf 'stages built the second time: %s\n' "$(grep -o 'building stage [A-Za-z]*' "$TE_TMP/second.err" | awk '{print $3}' | sort | uniq -c | tr '\n' ' ')"
printf 'ratio second/first: %.3f (budget %s)\n' "$ratio" "$RATIO_MAX"
[ "$(echo "$ratio <= $RATIO_MAX" | bc -l)" -eq 1 ]
