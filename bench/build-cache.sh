#!/usr/bin/env bash
# build-cache.sh - what the build caches and parallel builds save (issue 13).
#
# A project whose Dockerfile has an 8 s dependency step before the source
# is copied in:
#   staged:      first export, then one after a source-only commit with an
#                EMPTY state dir (stages come from the stages repo);
#   local cache: the same without staged, the second export with the same
#                state dir (buildah's layer cache);
#   parallel:    three independent images with an 8 s step each vs. one.
# Targets: second/first <= 0.25 for both caches; three/one <= 1.4.
# Needs what tests/deps.sh installs and a build in build/.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
STEP_SECONDS=${STEP_SECONDS:-8}
TE_BIN_DIR=${TE_BIN_DIR:-$top/build/bin}
. "$top/tests/integration/lib.sh"
te_require docker-registry skopeo buildah git busybox jq bc
[ -x "$TAGEXPORT" ] || { echo "build first: cmake -S . -B build && cmake --build build" >&2; exit 1; }

start_registry REG
make_base_image "$REG/base/busybox:1"

# project DIR STAGED IMAGES: a project of IMAGES images (each its own
# build arg, so each its own content) with the dependency step.
project() {
	local dir=$1 staged=$2 n=$3 i
	mkdir -p "$dir/src"
	git init -q -b main "$dir"
	printf 'project: bench\nconfigVersion: 1\n' >"$dir/werf.yaml"
	for i in $(seq 1 "$n"); do
		printf -- '---\nimage: app%s\ndockerfile: Dockerfile\nstaged: %s\nargs: {N: "%s"}\n' \
			"$i" "$staged" "$i" >>"$dir/werf.yaml"
	done
	cat >"$dir/Dockerfile" <<DF
FROM $REG/base/busybox:1
ARG N
COPY deps.txt /app/deps.txt
RUN sleep $STEP_SECONDS && cat /app/deps.txt > /app/installed
COPY src/ /app/src/
RUN cat /app/src/main.txt > /app/built
DF
	echo "lib 1" >"$dir/deps.txt"
	echo "main 1" >"$dir/src/main.txt"
	git_commit_all "$dir" one
}

# timed DIR STATE REPO: seconds of one export
timed() {
	local t0 t1
	t0=$EPOCHREALTIME
	"$TAGEXPORT" export --dir "$1" --state-dir "$2" --repo "$REG/$3/stages" \
		--tag "$REG/$3/%image%:latest" >/dev/null 2>"$TE_TMP/err" || {
		cat "$TE_TMP/err" >&2
		exit 1
	}
	t1=$EPOCHREALTIME
	echo "$t1 - $t0" | bc -l
}

change_source() {
	echo "main $RANDOM" >"$1/src/main.txt"
	git_commit_all "$1" "source change"
}

ratio() { printf '%.3f' "$(echo "$1 / $2" | bc -l)"; }

project "$TE_TMP/staged" true 1
s1=$(timed "$TE_TMP/staged" "$TE_TMP/st-s1" staged)
change_source "$TE_TMP/staged"
s2=$(timed "$TE_TMP/staged" "$TE_TMP/st-s2" staged) # empty state dir

project "$TE_TMP/local" false 1
l1=$(timed "$TE_TMP/local" "$TE_TMP/st-l" local)
change_source "$TE_TMP/local"
l2=$(timed "$TE_TMP/local" "$TE_TMP/st-l" local) # same state dir

project "$TE_TMP/one" false 1
p1=$(timed "$TE_TMP/one" "$TE_TMP/st-p1" one)
project "$TE_TMP/three" false 3
p3=$(timed "$TE_TMP/three" "$TE_TMP/st-p3" three)

printf 'staged, fresh state dir:  first %6.2fs  after source change %6.2fs  ratio %s (target <= 0.25)\n' \
	"$s1" "$s2" "$(ratio "$s2" "$s1")"
printf 'local layer cache:        first %6.2fs  after source change %6.2fs  ratio %s (target <= 0.25)\n' \
	"$l1" "$l2" "$(ratio "$l2" "$l1")"
printf 'parallel builds:          one image %6.2fs  three images %6.2fs  ratio %s (target <= 1.4)\n' \
	"$p1" "$p3" "$(ratio "$p3" "$p1")"
