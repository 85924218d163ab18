#!/usr/bin/env bash
# export-large.sh - one 256 MiB layer exported to a second registry:
# tagexport export vs skopeo copy in the same run.
#
# A FROM scratch project with one LAYER_MIB (default 256) MiB random file
# is built once into a stages repo on registry A.  Then, alternating for
# ROUNDS rounds (default 3): tagexport export of it to a new repo on
# registry B, and skopeo copy of the stages image to a new repo on B.
# skopeo's blob-info cache is removed before each of its runs so both
# start cold.  Prints the medians, the ratio (tagexport / skopeo) and
# tagexport's peak RSS, and exits 1 when the budget is missed:
# RSS <= RSS_MAX_KIB (32 MiB) and ratio <= RATIO_MAX (1.0).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
LAYER_MIB=${LAYER_MIB:-256}
RSS_MAX_KIB=${RSS_MAX_KIB:-32768}
RATIO_MAX=${RATIO_MAX:-1.0}
TE_BIN_DIR=${TE_BIN_DIR:-$top/build/bin}
. "$top/tests/integration/lib.sh"
te_require docker-registry skopeo buildah git jq bc /usr/bin/time
[ -x "$TAGEXPORT" ] || { echo "build first: cmake -S . -B build && cmake --build build" >&2; exit 1; }

start_registry REG
start_registry REG2
STATE=$TE_TMP/state
proj=$TE_TMP/project
make_scratch_project "$proj" "$LAYER_MIB"
te() {
	"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" --repo "$REG/bench/stages" "$@"
}
echo "building the stages image once (${LAYER_MIB} MiB layer)..."
te --tag "$REG/warmup/app:x" --report-path "$TE_TMP/report.json" >/dev/null || exit 1
src="$REG/bench/stages:$(jq -r .images.app.content_based_tag "$TE_TMP/report.json")"
blob_cache=/var/lib/containers/cache/blob-info-cache-v1.boltdb
[ "$(id -u)" -eq 0 ] || blob_cache=${XDG_DATA_HOME:-$HOME/.local/share}/containers/cache/blob-info-cache-v1.boltdb

now() { date +%s.%N; }
te_times=""
sk_times=""
rss=()
run_te() { # ROUND
	local t0 t1
	t0=$(now)
	/usr/bin/time -v -o "$TE_TMP/time.$1" "$TAGEXPORT" export --dir "$proj" \
		--state-dir "$STATE" --repo "$REG/bench/stages" \
		--tag "$REG2/te-$1/app:x" >/dev/null 2>"$TE_TMP/te.err" || { cat "$TE_TMP/te.err"; exit 1; }
	t1=$(now)
	te_times+="$(echo "$t1 - $t0" | bc -l) "
	rss+=("$(awk -F': ' '/Maximum resident/ {print $2}' "$TE_TMP/time.$1")")
}
run_skopeo() { # ROUND
	local t0 t1
	rm -f "$blob_cache"
	t0=$(now)
	skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
		"docker://$src" "docker://$REG2/sk-$1/app:x" >/dev/null || exit 1
	t1=$(now)
	sk_times+="$(echo "$t1 - $t0" | bc -l) "
}
for r in $(seq 1 "$ROUNDS"); do
	if [ $((r % 2)) -eq 1 ]; then
		run_te "$r"; run_skopeo "$r"
	else
		run_skopeo "$r"; run_te "$r"
	fi
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
te_m=$(median <<<"$te_times")
sk_m=$(median <<<"$sk_times")
ratio=$(echo "$te_m / $sk_m" | bc -l)
peak=$(printf '%s\n' "${rss[@]}" | sort -n | tail -1)
printf '\n%-22s %12s %12s %8s\n' case tagexport_s skopeo_s ratio
printf '%-22s %12.3f %12.3f %8.2f\n' "1 x ${LAYER_MIB} MiB, other reg" "$te_m" "$sk_m" "$ratio"
printf 'runs: tagexport %s| skopeo %s\n' "$te_times" "$sk_times"
printf 'tagexport peak RSS: %d KiB (%.1f MiB) over %d runs\n' "$peak" "$(echo "$peak / 1024" | bc -l)" "${#rss[@]}"
ok=1
[ "$peak" -le "$RSS_MAX_KIB" ] || { echo "FAIL: peak RSS above $RSS_MAX_KIB KiB"; ok=0; }
[ "$(echo "$ratio <= $RATIO_MAX" | bc)" -eq 1 ] || { echo "FAIL: slower than $RATIO_MAX x skopeo"; ok=0; }
[ "$ok" -eq 1 ] && echo "budget met"
[ "$ok" -eq 1 ]
