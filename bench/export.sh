#!/usr/bin/env bash
# export.sh - tagexport export vs skopeo copy, in the same run.
#
# A project with three layers of 32 MiB random data is built once into a
# stages repo.  Then, alternating for ROUNDS rounds (default 3):
#   same registry:  tagexport export to a new repo on the stages registry
#                   vs skopeo copy of the stages image to a new repo there;
#   other registry: the same towards a second registry.
# skopeo's blob-info cache is removed before each skopeo run so both start
# cold.  Prints medians, ratios (tagexport / skopeo) and tagexport's peak
# RSS.  Needs what tests/deps.sh installs and a build in build/.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
LAYER_MIB=${LAYER_MIB:-32}
TE_BIN_DIR=${TE_BIN_DIR:-$top/build/bin}
. "$top/tests/integration/lib.sh"
te_require docker-registry skopeo buildah git busybox jq /usr/bin/time
[ -x "$TAGEXPORT" ] || { echo "build first: cmake -S . -B build && cmake --build build" >&2; exit 1; }

start_registry REG
start_registry REG2
STATE=$TE_TMP/state
proj=$TE_TMP/project
mkdir -p "$proj"
git init -q -b main "$proj"
for i in 1 2 3; do
	head -c $((LAYER_MIB * 1024 * 1024)) /dev/urandom >"$proj/layer$i.bin"
done
printf 'FROM scratch\nCOPY layer1.bin /l1\nCOPY layer2.bin /l2\nCOPY layer3.bin /l3\n' >"$proj/Dockerfile"
printf 'project: bench\nconfigVersion: 1\n---\nimage: app\ndockerfile: Dockerfile\n' >"$proj/werf.yaml"
git_commit_all "$proj" bench

te() {
	"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" --repo "$REG/bench/stages" "$@"
}
echo "building the stages image once..."
te --tag "$REG/warmup/app:x" --report-path "$TE_TMP/report.json" >/dev/null || exit 1
src="$REG/bench/stages:$(jq -r .images.app.content_based_tag "$TE_TMP/report.json")"
blob_cache=/var/lib/containers/cache/blob-info-cache-v1.boltdb
[ "$(id -u)" -eq 0 ] || blob_cache=${XDG_DATA_HOME:-$HOME/.local/share}/containers/cache/blob-info-cache-v1.boltdb

# $EPOCHREALTIME needs no fork, so the clock costs nothing in either run.
now() { echo "$EPOCHREALTIME"; }
declare -A T
rss=()
te_cmd() { # DEST-REGISTRY KEY ROUND
	"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" \
		--repo "$REG/bench/stages" --tag "$1/te-$2-$3/app:x"
}
run_te() { # DEST-REGISTRY KEY ROUND
	local t0 t1
	sync # the previous run's writeback is not charged to this one
	t0=$(now)
	te_cmd "$@" >/dev/null 2>"$TE_TMP/te.err" || { cat "$TE_TMP/te.err"; exit 1; }
	t1=$(now)
	T[te_$2]+="$(echo "$t1 - $t0" | bc -l) "
}
# Peak RSS from separate, untimed runs under /usr/bin/time -v, so the
# timed runs of both tools start the same way.
measure_rss() { # DEST-REGISTRY KEY
	/usr/bin/time -v -o "$TE_TMP/time.$2" "$TAGEXPORT" export --dir "$proj" \
		--state-dir "$STATE" --repo "$REG/bench/stages" \
		--tag "$1/rss-$2/app:x" >/dev/null 2>&1 || exit 1
	rss+=("$(awk -F': ' '/Maximum resident/ {print $2}' "$TE_TMP/time.$2")")
}
run_skopeo() { # DEST-REGISTRY KEY ROUND
	local t0 t1
	rm -f "$blob_cache"
	sync
	t0=$(now)
	skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
		"docker://$src" "docker://$1/sk-$2-$3/app:x" >/dev/null || exit 1
	t1=$(now)
	T[sk_$2]+="$(echo "$t1 - $t0" | bc -l) "
}
for r in $(seq 1 "$ROUNDS"); do
	if [ $((r % 2)) -eq 1 ]; then
		run_te "$REG" same "$r"; run_skopeo "$REG" same "$r"
		run_te "$REG2" other "$r"; run_skopeo "$REG2" other "$r"
	else
		run_skopeo "$REG" same "$r"; run_te "$REG" same "$r"
		run_skopeo "$REG2" other "$r"; run_te "$REG2" other "$r"
	fi
done
measure_rss "$REG" same
measure_rss "$REG2" other
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf '\n%-16s %12s %12s %8s\n' case tagexport_s skopeo_s ratio
for k in same other; do
	te_m=$(median <<<"${T[te_$k]}")
	sk_m=$(median <<<"${T[sk_$k]}")
	printf '%-16s %12.3f %12.3f %8.2f\n' "$k registry" "$te_m" "$sk_m" "$(echo "$te_m / $sk_m" | bc -l)"
done
for k in same other; do
	printf '  runs %-5s tagexport: %s\n' "$k" "${T[te_$k]}"
	printf '  runs %-5s skopeo:    %s\n' "$k" "${T[sk_$k]}"
done
peak=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
printf '\ntagexport peak RSS: %d KiB (%.1f MiB), /usr/bin/time -v, %d runs; layers: 3 x %d MiB\n' \
	"$peak" "$(echo "$peak / 1024" | bc -l)" "${#rss[@]}" "$LAYER_MIB"
