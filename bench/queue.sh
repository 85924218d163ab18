#!/usr/bin/env bash
# queue.sh - durable submits/s of ts_queue_submit, 1 and 32 threads.
# Compiles bench/queue.c against an existing build's libte_server.a and
# libtagexport_core.a
# (BUILD_DIR, default build/) and runs it on the real disk under the build
# dir (BENCH_STATE_PARENT to change), since a tmpfs makes fsync free.
#   N1   submits with one thread   (default 2000)
#   N32  submits per thread, 32    (default 200)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$top/build}
N1=${N1:-2000}
N32=${N32:-200}
lib=$BUILD_DIR/libtagexport_core.a
srv=$BUILD_DIR/webhook-server/libte_server.a
[ -f "$lib" ] && [ -f "$srv" ] || { echo "build first: cmake --build $BUILD_DIR" >&2; exit 1; }
state=$(mktemp -d "${BENCH_STATE_PARENT:-$BUILD_DIR}/queue-bench.XXXXXX")
trap 'rm -rf "$state"' EXIT
${CC:-gcc} -std=c11 -O2 -D_GNU_SOURCE -I"$top/core/include" -I"$top/webhook-server" \
	-o "$state/queue-bench" "$top/bench/queue.c" "$srv" "$lib" -ljansson -lpthread
"$state/queue-bench" "$state/q1" 1 "$N1"
"$state/queue-bench" "$state/q32" 32 "$N32"
