#!/usr/bin/env bash
# Builds are isolated from the machine and time-limited:
# - a hostile RUN (tests/fixtures/escape.c, static) tries a chroot escape,
#   /proc/1/root and a connect to a loopback listener of the machine: under
#   the default OCI isolation it sees nothing; under the explicit
#   --isolation chroot the same program reads the machine's file (so the
#   detection itself works), and tagexport warns;
# - `dockerfile: Dockerfile.in` with #include of a machine file is built
#   literally: no cpp, the file's content never reaches the image;
# - a .containerignore in the context cannot hide a file tagexport hashed;
# - `RUN sleep` beyond --build-timeout is killed with everything under it,
#   nothing is pushed, exit 1;
# - without runc, OCI isolation fails and says what is missing.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah runc git busybox jq curl gcc python3

SERVERS="$(dirname "$0")/servers"
start_registry REG
make_base_image "$REG/base/busybox:1"
STATE="$TE_TMP/state"
MARKER="host-secret-$RANDOM$RANDOM$RANDOM"
HOSTFILE="$TE_TMP/hostname-marker-file"
echo "$MARKER" >"$HOSTFILE"
CONNLOG="$TE_TMP/connections.log"
: >"$CONNLOG"
start_py_server LISTENER "$SERVERS/tcp_listener.py" --log "$CONNLOG"
LPORT=${LISTENER##*:}
# The listener answers the machine itself: one connection logged.
check "loopback listener reachable from the machine" \
	bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 && for _ in $(seq 50); do [ -s "$2" ] && exit 0; sleep 0.1; done; exit 1' _ "$LPORT" "$CONNLOG"

proj="$TE_TMP/project"
mkdir -p "$proj"
git init -q -b main "$proj"
gcc -static -O1 -o "$proj/escape" "$TE_SOURCE_DIR/tests/fixtures/escape.c" || {
	echo "FATAL: cannot compile escape.c statically" >&2
	exit 1
}
cat >"$proj/werf.yaml" <<YAML
project: isolation
configVersion: 1
---
image: escape
dockerfile: Dockerfile.escape
---
image: cpp
dockerfile: Dockerfile.in
---
image: ignored
dockerfile: Dockerfile.ignored
---
image: slow
dockerfile: Dockerfile.slow
YAML
cat >"$proj/Dockerfile.escape" <<DF
FROM $REG/base/busybox:1
COPY escape /escape
RUN /escape $LPORT $HOSTFILE >/result.txt 2>&1; cat /result.txt
DF
cat >"$proj/Dockerfile.in" <<DF
FROM $REG/base/busybox:1
#include "$HOSTFILE"
LABEL org.example.built=literally
DF
# buildah would apply a .containerignore; tagexport hashes kept.txt.
cat >"$proj/Dockerfile.ignored" <<DF
FROM $REG/base/busybox:1
COPY kept.txt /kept.txt
DF
echo 'kept.txt' >"$proj/.containerignore"
echo "kept $RANDOM" >"$proj/kept.txt"
cat >"$proj/Dockerfile.slow" <<DF
FROM $REG/base/busybox:1
RUN sleep 1007
DF
git_commit_all "$proj" "hostile"

run_export() {
	"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" \
		--repo "$REG/iso/stages" --verbose "$@"
}

# -- OCI isolation (the default): the escape program sees nothing ---------
run_export escape --tag "$REG/iso/%image%:oci" >"$TE_TMP/out-oci" 2>"$TE_TMP/err-oci"
rc=$?
check "oci export exits 0" test "$rc" -eq 0
check "oci: the escape program ran" grep -q "escape program ran" "$TE_TMP/err-oci"
check "oci: isolation logged at info" grep -q "isolation: oci" "$TE_TMP/err-oci"
check "oci: chroot escape reads nothing" grep -q "chroot escape: cannot open $HOSTFILE" "$TE_TMP/err-oci"
check "oci: /proc/1/root reads nothing" grep -q "proc root: cannot open /proc/1/root$HOSTFILE" "$TE_TMP/err-oci"
check "oci: no connection to the machine's loopback" grep -q "loopback: no connection" "$TE_TMP/err-oci"
check "oci: the listener saw no connection" test "$(wc -l <"$CONNLOG")" -eq 1
check "oci: marker not in the build output" not grep -q "$MARKER" "$TE_TMP/err-oci"
check "oci: no warning about chroot" not grep -q "NOT isolated" "$TE_TMP/err-oci"
# The result file inside the exported image: its layers hold no marker.
skopeo copy -q --src-tls-verify=false "docker://$REG/iso/escape:oci" "dir:$TE_TMP/img-oci" >/dev/null
check "oci: image has the result file" bash -c 'for f in "$1"/*; do zcat -f "$f" 2>/dev/null | tar -t 2>/dev/null; done | grep -q "^result.txt$"' _ "$TE_TMP/img-oci"
check "oci: marker not in the image" bash -c '! for f in "$1"/*; do zcat -f "$f"; done | grep -aq "$2"' _ "$TE_TMP/img-oci" "$MARKER"

# -- chroot isolation, explicitly: works, warns, and is no boundary -------
# (its own stages repo: the content tag does not depend on the isolation)
run_export escape --isolation chroot --repo "$REG/iso/stages-chroot" \
	--tag "$REG/iso/%image%:chroot" >"$TE_TMP/out-chroot" 2>"$TE_TMP/err-chroot"
rc=$?
check "chroot export exits 0" test "$rc" -eq 0
check "chroot: warns that builds are not isolated" grep -q "warning: isolation: chroot: builds are NOT isolated" "$TE_TMP/err-chroot"
check "chroot: the escape program ran" grep -q "escape program ran" "$TE_TMP/err-chroot"
check "chroot: the escape reaches the machine's file (detection works)" grep -q "$MARKER" "$TE_TMP/err-chroot"
check "invalid --isolation is a usage error" bash -c '"$1" export --repo x --tag y --isolation none >/dev/null 2>&1; test $? -eq 2' _ "$TAGEXPORT"

# -- Dockerfile.in: never preprocessed ------------------------------------
run_export cpp --tag "$REG/iso/%image%:v1" >"$TE_TMP/out-cpp" 2>"$TE_TMP/err-cpp"
rc=$?
check "Dockerfile.in export exits 0 (#include is a comment)" test "$rc" -eq 0
cfg=$(skopeo inspect --config --tls-verify=false "docker://$REG/iso/cpp:v1")
check "Dockerfile.in: built literally (its LABEL is there)" test "$(jq -r '.config.Labels["org.example.built"]' <<<"$cfg")" = literally
check "Dockerfile.in: marker not in the image config" not grep -q "$MARKER" <<<"$cfg"
check "Dockerfile.in: marker not in the output" not grep -q "$MARKER" "$TE_TMP/err-cpp"

# -- .containerignore cannot change what buildah sees ----------------------
run_export ignored --tag "$REG/iso/%image%:v1" >/dev/null 2>"$TE_TMP/err-ign"
rc=$?
check ".containerignore: export exits 0 (kept.txt reached COPY)" test "$rc" -eq 0

# -- build timeout: everything killed, nothing pushed ----------------------
before=$(registry_catalog "$REG")
t0=$(date +%s)
run_export slow --build-timeout 10s --tag "$REG/iso/%image%:v1" >/dev/null 2>"$TE_TMP/err-slow"
rc=$?
took=$(($(date +%s) - t0))
check "timeout: exit 1" test "$rc" -eq 1
check "timeout: the message names image and limit" grep -q 'build of image slow timed out after 10s' "$TE_TMP/err-slow"
# sleep 1007 would take 1007 s; the kill takes the limit plus a grace period.
check "timeout: over long before the sleep would end ($took s)" test "$took" -lt 300
check "timeout: nothing pushed" test "$(registry_catalog "$REG")" = "$before"
check "timeout: target tag absent" not skopeo_ok --tls-verify=false "docker://$REG/iso/slow:v1"
check "timeout: no sleep process left" not pgrep -f "sleep 1007"
check "timeout: no buildah or runc process of this state dir left" not pgrep -f "$STATE"
check "timeout: no runc container left" test -z "$(runc list -q 2>/dev/null | grep '^buildah-' | while read -r id; do runc state "$id" 2>/dev/null | grep -q '"status": "running"' && echo "$id"; done)"
check "timeout: no job directory left" test -z "$(ls -A "$STATE/buildah/jobs")"
check "timeout: no buildah working container left" test -z "$(buildah --root "$STATE/buildah/root" --runroot "$STATE/buildah/run" --storage-driver vfs containers -q)"
# A buildah that ignores SIGTERM (this wrapper takes it, buildah runs on):
# after the grace period the process group is killed, and the container,
# in its own session out of the group's reach, is deleted through runc.
cat >"$TE_TMP/stubborn-buildah" <<'SH'
#!/bin/bash
trap '' TERM
buildah "$@" &
wait $!
SH
chmod +x "$TE_TMP/stubborn-buildah"
run_export slow --build-timeout 5s --buildah "$TE_TMP/stubborn-buildah" \
	--repo "$REG/iso/stages-stubborn" --tag "$REG/iso/%image%:stubborn" \
	>/dev/null 2>"$TE_TMP/err-stubborn"
rc=$?
check "timeout, SIGTERM ignored: exit 1" test "$rc" -eq 1
check "timeout, SIGTERM ignored: the message" grep -q 'build of image slow timed out after 5s' "$TE_TMP/err-stubborn"
check "timeout, SIGTERM ignored: the runc container was deleted" grep -q 'deleting runc container buildah-' "$TE_TMP/err-stubborn"
check "timeout, SIGTERM ignored: no sleep process left" not pgrep -f "sleep 1007"
check "timeout, SIGTERM ignored: no process of this state dir left" not pgrep -f "$STATE"
check "timeout, SIGTERM ignored: nothing pushed" test "$(registry_catalog "$REG")" = "$before"
check "invalid --build-timeout is a usage error" bash -c '"$1" export --repo x --tag y --build-timeout 10 >/dev/null 2>&1; test $? -eq 2' _ "$TAGEXPORT"

# -- no runc: OCI isolation fails clearly, never falls back ----------------
mkdir -p "$TE_TMP/norunc"
ln -s "$(command -v buildah)" "$TE_TMP/norunc/buildah"
PATH="$TE_TMP/norunc" run_export escape --repo "$REG/iso/stages-norunc" \
	--tag "$REG/iso/%image%:norunc" \
	>/dev/null 2>"$TE_TMP/err-norunc"
rc=$?
check "no runc: exit 2" test "$rc" -eq 2
check "no runc: says what is missing and how to choose chroot" \
	grep -q "OCI runtime 'runc' not found (PATH).*--isolation chroot" "$TE_TMP/err-norunc"
check "no runc: nothing pushed" not skopeo_ok --tls-verify=false "docker://$REG/iso/escape:norunc"

te_finish
