#!/usr/bin/env bash
# The build context from git: a 512 MiB file COPY'd by the Dockerfile is
# exported with tagexport's peak memory under 64 MiB (the blob is streamed
# by a git child, never held); --max-file-size and --max-context-size fail
# the export before anything is built or pushed, naming the file or the
# total and the limit; a COPY'd symlink whose chain leads outside the
# context is refused, naming the link and the step.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git jq curl sha256sum /usr/bin/time

start_registry REG
STATE="$TE_TMP/state"
MIB=$((1024 * 1024))

# peak_kib PID: the process's own peak RSS (VmHWM, kB) read until it exits.
# /usr/bin/time's %M would also count the children tagexport reaps
# (buildah, git): getrusage(2) RUSAGE_CHILDREN semantics.
peak_kib() {
	local pid=$1 hwm last=0
	while hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null) && [ -n "$hwm" ]; do
		last=$hwm
		sleep 0.1
	done
	echo "$last"
}

# A 512 MiB file: a repeating line with random blocks in it (fast to make
# and to compress), committed and packed, as a fetched mirror would be.
proj="$TE_TMP/big"
mkdir -p "$proj"
git init -q -b main "$proj"
yes 'tagexport streams this context line' | head -c $((512 * MIB)) >"$proj/big.bin"
for off in 1 4097 100000 131071; do
	head -c 4096 /dev/urandom |
		dd of="$proj/big.bin" bs=4096 seek="$off" conv=notrunc status=none
done
echo small >"$proj/small.txt"
printf 'FROM scratch\nCOPY big.bin small.txt /\n' >"$proj/Dockerfile"
printf 'project: big\nconfigVersion: 1\n---\nimage: app\ndockerfile: Dockerfile\n' >"$proj/werf.yaml"
git_commit_all "$proj" "a large file"
git -C "$proj" repack -adq
want=$(sha256sum <"$proj/big.bin" | cut -d' ' -f1)
total=$(($(stat -c %s "$proj/big.bin") + $(stat -c %s "$proj/small.txt") + $(stat -c %s "$proj/Dockerfile")))
rm "$proj/big.bin" # only the commit has it now

before=$(registry_catalog "$REG")
"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" --repo "$REG/big/stages" \
	--tag "$REG/big/%image%:v1" --max-file-size 1MiB >"$TE_TMP/out1" 2>"$TE_TMP/err1"
rc=$?
check "--max-file-size 1MiB: exit 2 (bad input)" test "$rc" -eq 2
check "--max-file-size names the file and the limit" grep -q \
	"context file 'big.bin' is $((512 * MIB)) bytes, over the max file size of $MIB bytes" "$TE_TMP/err1"
check "--max-file-size names the image" grep -q 'image "app"' "$TE_TMP/err1"
"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" --repo "$REG/big/stages" \
	--tag "$REG/big/%image%:v1" --max-context-size 512MiB >/dev/null 2>"$TE_TMP/err2"
rc=$?
check "--max-context-size 512MiB: exit 2" test "$rc" -eq 2
check "--max-context-size names the total and the limit" grep -q \
	"build context is $total bytes, over the max context size of $((512 * MIB)) bytes" "$TE_TMP/err2"
check "a bad size is a usage error" bash -c '"$1" export --max-file-size 2GB --repo x --tag y 2>&1 >/dev/null | grep -q "invalid size \"2GB\""' _ "$TAGEXPORT"
check "nothing pushed after the limit errors" test "$(registry_catalog "$REG")" = "$before"

# GNU time's %M is the largest of tagexport and the children it reaped
# (buildah, git cat-file); VmHWM is tagexport's own.
/usr/bin/time -f %M -o "$TE_TMP/time" "$TAGEXPORT" export --dir "$proj" \
	--state-dir "$STATE" --repo "$REG/big/stages" \
	--tag "$REG/big/%image%:v1" >"$TE_TMP/out3" 2>"$TE_TMP/err3" &
tpid=$!
pid=
while [ -z "$pid" ] && kill -0 "$tpid" 2>/dev/null; do
	pid=$(pgrep -P "$tpid" -x tagexport)
done
peak=$(peak_kib "$pid")
wait "$tpid"
rc=$?
echo "# tagexport's own peak RSS (VmHWM): $peak kB; with its children (time %M): $(cat "$TE_TMP/time") kB"
check "512 MiB file: export exits 0" test "$rc" -eq 0
check "tagexport's own peak RSS is under 64 MiB" test "${peak:-0}" -gt 0 -a "${peak:-0}" -lt $((64 * 1024))
check "with the children it reaped, still under 64 MiB" test "$(cat "$TE_TMP/time")" -lt $((64 * 1024))
check "exported reference printed" grep -q "^$REG/big/app:v1@sha256:" "$TE_TMP/out3"
layer=$(skopeo_inspect "$REG/big/app:v1" | jq -r '.Layers[-1]')
got=$(curl -fsSL "http://$REG/v2/big/app/blobs/$layer" | tar -xzO big.bin 2>/dev/null | sha256sum | cut -d' ' -f1)
check "the image holds the committed 512 MiB file byte for byte" test "$got" = "$want"

# A COPY'd symlink that leaves the context through another link.
ln_proj="$TE_TMP/links"
mkdir -p "$ln_proj/ctx/l"
git init -q -b main "$ln_proj"
echo inside >"$ln_proj/ctx/file"
ln -s .. "$ln_proj/ctx/l/up"
ln -s l/up/.. "$ln_proj/ctx/x2"
ln -s file "$ln_proj/ctx/ok"
printf 'FROM scratch\nCOPY ok /ok\n' >"$ln_proj/ctx/Dockerfile"
printf 'FROM scratch\nCOPY x2 /x2\n' >"$ln_proj/ctx/Dockerfile.bad"
printf 'project: links\nconfigVersion: 1\n---\nimage: good\ncontext: ctx\ndockerfile: Dockerfile\n---\nimage: bad\ncontext: ctx\ndockerfile: Dockerfile.bad\n' >"$ln_proj/werf.yaml"
git_commit_all "$ln_proj" "links"
before=$(registry_catalog "$REG")
"$TAGEXPORT" export --dir "$ln_proj" --state-dir "$STATE" --repo "$REG/links/stages" \
	--tag "$REG/links/%image%:v1" >/dev/null 2>"$TE_TMP/err4"
rc=$?
check "escaping symlink chain: exit 2" test "$rc" -eq 2
check "escaping symlink chain: names the link and the step" grep -q \
	"symlink 'x2' leads outside the build context: 'l/up' -> '..' climbs above its root" "$TE_TMP/err4"
check "escaping symlink chain: nothing pushed, not even the good image" test "$(registry_catalog "$REG")" = "$before"
"$TAGEXPORT" export --dir "$ln_proj" --state-dir "$STATE" --repo "$REG/links/stages" \
	--tag "$REG/links/%image%:v1" good >"$TE_TMP/out5" 2>"$TE_TMP/err5"
check "a symlink inside the context builds" test $? -eq 0
layer=$(skopeo_inspect "$REG/links/good:v1" | jq -r '.Layers[-1]')
check "COPY followed the inside link" bash -c 'curl -fsSL "http://$1/v2/links/good/blobs/$2" | tar -xzO ok 2>/dev/null | grep -qx inside' _ "$REG" "$layer"

te_finish
