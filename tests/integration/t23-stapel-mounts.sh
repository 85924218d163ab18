#!/usr/bin/env bash
# Stapel mounts and secrets (issue 12): `mount: from: build_dir` persists
# between exports (a counter the install stage bumps), `fromPath` reads a
# host directory, `tmp_dir` is empty each time; werf-giterminism.yaml must
# allow build_dir and fromPath (refusals name werf.yaml:LINE and the key,
# nothing pushed); nothing mounted ends up in any pushed layer; the same
# under chroot isolation.  An image built on it (fromImage) mounts its
# mounts too, and its from stage empties its own mount points, as werf's
# does.  `secrets:` on a Stapel image reach the shell
# stage at /run/secrets/<id> (their hash written into the image) and their
# values are nowhere else.  The hook (server project settings) refuses the
# mounts unless the operator's stapel_mounts allows them as well.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl sha256sum bash-static

start_registry REG
make_base_image "$REG/base/busybox:1"
STATE="$TE_TMP/state"

TOKEN="tok-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
FILEVAL="file-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s' "$FILEVAL" >"$TE_TMP/cred.txt"
export TE_T23_TOKEN=$TOKEN
HOSTDIR="$TE_TMP/hostdir"
mkdir -p "$HOSTDIR"
chmod 755 "$TE_TMP" "$HOSTDIR"
echo "from the host" >"$HOSTDIR/in.txt"
chmod 644 "$HOSTDIR/in.txt"

proj="$TE_TMP/project"
mkdir -p "$proj"
git init -q -b main "$proj"
# write_werf INSTALL-CACHE-VERSION
write_werf() {
	cat >"$proj/werf.yaml" <<YAML
project: mounts-demo
configVersion: 1
---
image: app
from: $REG/base/busybox:1
mount:
- from: build_dir
  to: /cache
- fromPath: $HOSTDIR
  to: /host
- from: tmp_dir
  to: /scratch
secrets:
- env: TE_T23_TOKEN
- src: $TE_TMP/cred.txt
shell:
  install:
  - 'n=\$(cat /cache/counter 2>/dev/null || echo 0); echo \$((n + 1)) > /cache/counter'
  - cp /cache/counter /install-count
  - cat /host/in.txt > /from-host
  - ls -A /scratch | wc -l > /scratch-entries
  - echo junk > /scratch/junk
  - sha256sum < /run/secrets/TE_T23_TOKEN | cut -d' ' -f1 > /proof
  - sha256sum < /run/secrets/cred.txt | cut -d' ' -f1 >> /proof
  installCacheVersion: "$1"
  setup:
  - mkdir -p /data && echo parent > /data/keep
---
image: child
fromImage: app
mount:
- from: tmp_dir
  to: /data
shell:
  install:
  - cp /cache/counter /child-saw-counter
  - ls -A /data | wc -l > /child-data-entries
YAML
}
# write_giterminism YAML-LINES-UNDER-stapel.mount
write_giterminism() {
	cat >"$proj/werf-giterminism.yaml" <<YAML
giterminismConfigVersion: 1
config:
  secrets:
    allowEnvVariables: [TE_T23_TOKEN]
    allowFiles: ["$TE_TMP/*.txt"]
  stapel:
    mount:
$1
YAML
}

run_export() {
	"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" --verbose \
		--repo "$REG/mnt/stages" "$@"
}

# ---- refusals: giterminism must allow build_dir, then fromPath --------------
write_werf 1
write_giterminism "      allowFromPaths: [/nowhere/*]"
git_commit_all "$proj" "mounts, nothing allowed"
before=$(registry_catalog "$REG")
run_export --tag "$REG/mnt/%image%:v0" >"$TE_TMP/out0" 2>"$TE_TMP/err0"
check "build_dir not allowed: exit 2" test $? -eq 2
check "the refusal names werf.yaml:LINE, the image and the key" grep -qF \
	'werf.yaml:7: image "app": mount from: build_dir is not allowed by werf-giterminism.yaml (config.stapel.mount.allowBuildDir)' "$TE_TMP/err0"
write_giterminism "      allowBuildDir: true
      allowFromPaths: [/nowhere/*]"
git_commit_all "$proj" "build_dir allowed"
run_export --tag "$REG/mnt/%image%:v0" >"$TE_TMP/out0b" 2>"$TE_TMP/err0b"
check "fromPath not allowed: exit 2" test $? -eq 2
check "the refusal names werf.yaml:LINE, the path and the key" grep -qF \
	"werf.yaml:9: image \"app\": mount fromPath \"$HOSTDIR\" is not allowed by werf-giterminism.yaml (config.stapel.mount.allowFromPaths)" "$TE_TMP/err0b"
check "refused mounts: nothing pushed" test "$(registry_catalog "$REG")" = "$before"
check "refused mounts: no build_dir made" test ! -e "$STATE/mounts"
refused_commit=$(git -C "$proj" rev-parse HEAD)

# ---- allowed: two exports share build_dir ----------------------------------
write_giterminism "      allowBuildDir: true
      allowFromPaths: [\"$TE_TMP/host*\"]"
git_commit_all "$proj" "mounts allowed"
run_export --tag "$REG/mnt/%image%:v1" --report-path "$TE_TMP/report1.json" >"$TE_TMP/out1" 2>"$TE_TMP/err1"
check "first export exits 0" test $? -eq 0 || tail -20 "$TE_TMP/err1" >&2
rootfs "$REG/mnt/app:v1" "$TE_TMP/fs1"
check "install saw an empty build_dir: counter 1" test "$(cat "$TE_TMP/fs1/install-count")" = 1
check "install read the fromPath directory" test "$(cat "$TE_TMP/fs1/from-host")" = "from the host"
check "tmp_dir was empty" test "$(tr -d ' ' <"$TE_TMP/fs1/scratch-entries")" = 0

write_werf 2
git_commit_all "$proj" "install again"
run_export --tag "$REG/mnt/%image%:v2" >"$TE_TMP/out2" 2>"$TE_TMP/err2"
check "second export exits 0" test $? -eq 0 || tail -20 "$TE_TMP/err2" >&2
check "the second export re-ran install" grep -q 'building stage install' "$TE_TMP/err2"
rootfs "$REG/mnt/app:v2" "$TE_TMP/fs2"
check "build_dir kept the first build's counter: 2" test "$(cat "$TE_TMP/fs2/install-count")" = 2
check "tmp_dir was empty again" test "$(tr -d ' ' <"$TE_TMP/fs2/scratch-entries")" = 0
# an image built on app (fromImage) mounts app's mounts too, as werf's
# from stage inherits them; its own tmp_dir at /data hides and clears
# what app left there
rootfs "$REG/mnt/child:v2" "$TE_TMP/child2"
check "fromImage inherits build_dir: child saw app's counter" test "$(cat "$TE_TMP/child2/child-saw-counter")" = 2
check "app keeps /data/keep (no mount there)" test "$(cat "$TE_TMP/fs2/data/keep")" = parent
check "child's tmp_dir at /data was empty during install" test "$(tr -d ' ' <"$TE_TMP/child2/child-data-entries")" = 0
check "child's from stage cleared its mount point /data" test -z "$(ls -A "$TE_TMP/child2/data" 2>/dev/null)"
bdir=$(find "$STATE/mounts/projects/mounts-demo" -mindepth 1 -maxdepth 1 -type d)
check "one build_dir under the state dir, per project and target" test "$(wc -l <<<"$bdir")" -eq 1
check "the build_dir holds the counter on the host" test "$(cat "$bdir/counter")" = 2

# chroot isolation: the same mounts, the same build_dir
write_werf 3
git_commit_all "$proj" "install under chroot"
run_export --isolation chroot --tag "$REG/mnt/%image%:v3" >"$TE_TMP/out3" 2>"$TE_TMP/err3"
check "chroot export exits 0" test $? -eq 0 || tail -20 "$TE_TMP/err3" >&2
rootfs "$REG/mnt/app:v3" "$TE_TMP/fs3"
check "chroot: build_dir counter 3" test "$(cat "$TE_TMP/fs3/install-count")" = 3
check "chroot: install read the fromPath directory" test "$(cat "$TE_TMP/fs3/from-host")" = "from the host"
check "the host directory is unchanged" test "$(ls -A "$HOSTDIR")" = in.txt

# --loose-giterminism: werf-giterminism.yaml is not asked; the refused
# commit's stages (same mounts, same commands) are those of v1
run_export --loose-giterminism --commit "$refused_commit" --tag "$REG/mnt/%image%:loose" >"$TE_TMP/out-loose" 2>"$TE_TMP/err-loose"
check "--loose-giterminism: the refused commit exports" test $? -eq 0 || tail -5 "$TE_TMP/err-loose" >&2
check "--loose-giterminism: v1's stages reused" \
	test "$(skopeo_inspect "$REG/mnt/app:loose" | jq -r .Digest)" = "$(skopeo_inspect "$REG/mnt/app:v1" | jq -r .Digest)"

# Nothing mounted is in any image: not the counter, the host file, the
# tmp_dir's junk, the secrets (at most the empty mount points).
for fs in fs1 fs2 fs3 child2; do
	check "$fs: no files under the mount points" \
		test -z "$(find "$TE_TMP/$fs/cache" "$TE_TMP/$fs/host" "$TE_TMP/$fs/scratch" "$TE_TMP/$fs/run/secrets" -mindepth 1 2>/dev/null)"
done
# ... and in no layer of any stage: list every tar entry of every blob
tags=$(skopeo list-tags --tls-verify=false "docker://$REG/mnt/stages" | jq -r '.Tags[]')
nblobs=0 inlayers=0
for t in $tags; do
	skopeo copy -q --src-tls-verify=false "docker://$REG/mnt/stages:$t" "dir:$TE_TMP/stages-$t" >/dev/null
	for l in $(jq -r '.layers[].digest | sub("sha256:"; "")' "$TE_TMP/stages-$t/manifest.json"); do
		nblobs=$((nblobs + 1))
		if tar -tzf "$TE_TMP/stages-$t/$l" | grep -E '^(\./)?(cache|host|scratch|run/secrets)/.' >&2; then
			inlayers=$((inlayers + 1))
		fi
	done
done
check "stage layers listed ($nblobs)" test "$nblobs" -ge 4
check "no mounted file in any stage layer" test "$inlayers" -eq 0

# ---- secrets ---------------------------------------------------------------
want=$(for v in "$TOKEN" "$FILEVAL"; do printf '%s' "$v" | sha256sum | cut -d' ' -f1; done)
check "RUN read the env and src secrets" test "$(cat "$TE_TMP/fs1/proof")" = "$want"
leaks=0
scan() {
	local f=$1 v
	for v in "$TOKEN" "$FILEVAL"; do
		if { gzip -dc "$f" 2>/dev/null || cat "$f"; } | grep -aqF "$v"; then
			echo "# leak of a secret in $f" >&2
			leaks=$((leaks + 1))
		fi
	done
}
for f in "$TE_TMP"/stages-*/* "$TE_TMP"/fs*.img/* "$TE_TMP"/out* "$TE_TMP"/err* "$TE_TMP/report1.json"; do
	scan "$f"
done
while IFS= read -r -d '' f; do scan "$f"; done < <(find "$STATE" -type f -print0 2>/dev/null)
check "no secret value in any layer, config, output, log, report or the state dir" test "$leaks" -eq 0
check "no secret file left in the job dirs" test -z "$(find "$STATE/buildah/jobs" -path '*/secrets*' 2>/dev/null)"

# ---- the hook: the operator must allow the mounts too ----------------------
printf 'hook-secret\n' >"$TE_TMP/hook.secret"
# write_server STAPEL-MOUNTS-LINES
write_server() {
	cat >"$TE_TMP/server.yaml" <<YAML
state_dir: $TE_TMP/srvstate
projects:
  - name: mnt
    forge: github
    repository: o/mnt
    secret_file: $TE_TMP/hook.secret
    git_url: https://git.example.invalid/o/mnt.git
    env: {PROJECT_TOKEN: "$TOKEN"}
    secrets:
      TE_T23_TOKEN: {env: PROJECT_TOKEN}
      cred.txt: {file: $TE_TMP/cred.txt}
$1
    export:
      repo: $REG/mnt/stages
      tag: "$REG/srv/%image%:%git_tag%"
YAML
}
run_hook() {
	"$TAGEXPORT" hook run-export --git-dir "$proj/.git" --config "$TE_TMP/server.yaml" \
		--project mnt --tag v3 --commit "$(git -C "$proj" rev-parse HEAD)"
}
git -C "$proj" -c user.name=t -c user.email=t@example.com tag -a v3 -m v3
before=$(registry_catalog "$REG")
write_server ""
run_hook >"$TE_TMP/out-h1" 2>"$TE_TMP/err-h1"
check "hook without stapel_mounts: refused" test $? -ne 0
check "hook: the refusal names the operator's setting" grep -qF \
	'werf.yaml:7: image "app": mount from: build_dir is not allowed by the operator'"'"'s project settings (stapel_mounts.build_dir)' "$TE_TMP/err-h1"
write_server "    stapel_mounts: {build_dir: true, from_paths: [/srv/*]}"
run_hook >"$TE_TMP/out-h2" 2>"$TE_TMP/err-h2"
check "hook with a fromPath the operator does not allow: refused" test $? -ne 0
check "hook: the refusal names fromPath and the setting" grep -qF \
	"mount fromPath \"$HOSTDIR\" is not allowed by the operator's project settings (stapel_mounts.from_paths)" "$TE_TMP/err-h2"
check "hook refusals: nothing pushed" test "$(registry_catalog "$REG")" = "$before"
write_server "    stapel_mounts: {build_dir: true, from_paths: [\"$TE_TMP/host*\"]}"
run_hook >"$TE_TMP/out-h3" 2>"$TE_TMP/err-h3"
check "hook with both allowances exits 0" test $? -eq 0 || tail -20 "$TE_TMP/err-h3" >&2
check "hook: the stages of the CLI's export were reused" \
	test "$(skopeo_inspect "$REG/srv/app:v3" | jq -r .Digest)" = "$(skopeo_inspect "$REG/mnt/app:v3" | jq -r .Digest)"
# A build through the hook: build_dir under the operator's project name
# (mnt), not werf.yaml's project (mounts-demo), in the hook's state dir.
write_werf 4
git_commit_all "$proj" "install through the hook"
git -C "$proj" -c user.name=t -c user.email=t@example.com tag -a v4 -m v4
"$TAGEXPORT" hook run-export --git-dir "$proj/.git" --config "$TE_TMP/server.yaml" \
	--project mnt --tag v4 --commit "$(git -C "$proj" rev-parse HEAD)" >"$TE_TMP/out-h4" 2>"$TE_TMP/err-h4"
check "hook build with mounts exits 0" test $? -eq 0 || tail -20 "$TE_TMP/err-h4" >&2
rootfs "$REG/srv/app:v4" "$TE_TMP/fs4"
check "hook: a fresh build_dir (counter 1) and the fromPath read" \
	test "$(cat "$TE_TMP/fs4/install-count") $(cat "$TE_TMP/fs4/from-host")" = "1 from the host"
check "hook: build_dir keyed by the operator's project name" \
	test "$(cat "$TE_TMP"/srvstate/build/projects/mnt/mounts/projects/mnt/*/counter)" = 1
check "hook: nothing under werf.yaml's project name" test -z "$(find "$TE_TMP/srvstate" -path "*/mounts/projects/mounts-demo*")"
check "hook: RUN read the secrets from the project settings" test "$(cat "$TE_TMP/fs4/proof")" = "$want"
leaks=0
for f in "$TE_TMP"/fs4.img/* "$TE_TMP"/out-h* "$TE_TMP"/err-h*; do scan "$f"; done
while IFS= read -r -d '' f; do scan "$f"; done < <(find "$TE_TMP/srvstate" -type f -print0 2>/dev/null)
check "hook: no secret value in the image, the output or its state dir" test "$leaks" -eq 0

te_finish
