#!/usr/bin/env bash
# werf.yaml build secrets (env, src, value): allowed by werf-giterminism.yaml
# of the commit, mounted for RUN --mount=type=secret (RUN proves it saw
# them by writing their hash), and found nowhere afterwards: not in any
# layer of the stages or exported image, their configs, the run's output
# and log, the report, the state dir; not in the content tag (a new value
# reuses the stages image).  Refusals name werf.yaml:LINE and the secret.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl sha256sum

start_registry REG
make_base_image "$REG/base/busybox:1"
STATE="$TE_TMP/state"

TOKEN="tok-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PLAIN="plain-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
FILEVAL="file-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s' "$FILEVAL" >"$TE_TMP/cred.txt"
export TE_T19_TOKEN=$TOKEN

proj="$TE_TMP/project"
mkdir -p "$proj"
git init -q -b main "$proj"
cat >"$proj/Dockerfile" <<DF
FROM $REG/base/busybox:1
RUN --mount=type=secret,id=TE_T19_TOKEN --mount=type=secret,id=plain \\
    --mount=type=secret,id=cred.txt \\
    for s in TE_T19_TOKEN plain cred.txt; do sha256sum < /run/secrets/\$s | cut -d' ' -f1; done > /proof
DF
cat >"$proj/werf.yaml" <<YAML
project: secrets-demo
configVersion: 1
---
image: app
dockerfile: Dockerfile
secrets:
  - env: TE_T19_TOKEN
  - src: $TE_TMP/cred.txt
  - id: plain
    value: $PLAIN
YAML
write_giterminism() {
	cat >"$proj/werf-giterminism.yaml" <<YAML
giterminismConfigVersion: 1
config:
  secrets:
    allowEnvVariables: [/TE_T19_.*/]
    allowFiles: ["$TE_TMP/*.txt"]
    allowValueIds: [$1]
YAML
}
write_giterminism other
git_commit_all "$proj" "secrets, value id not allowed"

run_export() {
	"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" --verbose \
		--repo "$REG/sec/stages" "$@"
}

# Refused: the value id is not allowed; nothing pushed.
before=$(registry_catalog "$REG")
run_export --tag "$REG/sec/app:v1" >"$TE_TMP/out0" 2>"$TE_TMP/err0"
check "a secret not allowed: exit 2" test $? -eq 2
check "the refusal names werf.yaml:LINE, the id and the list" grep -q \
	'werf.yaml:9: secret value id "plain" is not allowed by werf-giterminism.yaml (config.secrets.allowValueIds)' "$TE_TMP/err0"
check "a secret not allowed: nothing pushed" test "$(registry_catalog "$REG")" = "$before"
run_export --loose-giterminism --tag "$REG/sec/app:v0" >"$TE_TMP/out-loose" 2>"$TE_TMP/err-loose"
check "--loose-giterminism lifts the refusal" test $? -eq 0

write_giterminism plain
git_commit_all "$proj" "secrets allowed"
# An unset variable is an error naming the secret, before any build.
env -u TE_T19_TOKEN "$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" \
	--repo "$REG/sec2/stages" --tag "$REG/sec2/app:v1" >/dev/null 2>"$TE_TMP/err-unset"
check "an unset secret variable: exit 2" test $? -eq 2
check "the error names werf.yaml:LINE and the secret" grep -q \
	'werf.yaml:7: secret "TE_T19_TOKEN": environment variable TE_T19_TOKEN is not set' "$TE_TMP/err-unset"
check "nothing pushed for sec2" bash -c '! grep -q "^sec2/" <<<"$1"' _ "$(registry_catalog "$REG")"

run_export --tag "$REG/sec/app:v1" --report-path "$TE_TMP/report.json" >"$TE_TMP/out1" 2>"$TE_TMP/err1"
check "export with secrets exits 0" test $? -eq 0
tags=$(skopeo list-tags --tls-verify=false "docker://$REG/sec/stages" | jq -r '.Tags[]')

# RUN saw the three values: /proof is their hash.
want=$(for v in "$TOKEN" "$PLAIN" "$FILEVAL"; do printf '%s' "$v" | sha256sum | cut -d' ' -f1; done)
skopeo copy -q --src-tls-verify=false "docker://$REG/sec/app:v1" "dir:$TE_TMP/final" >/dev/null
for t in $tags; do
	skopeo copy -q --src-tls-verify=false "docker://$REG/sec/stages:$t" "dir:$TE_TMP/stages-$t" >/dev/null
done
proof=""
for blob in "$TE_TMP/final"/*; do
	p=$(tar -xzOf "$blob" proof 2>/dev/null) && proof=$p
done
check "RUN read the env secret" test "$(sed -n 1p <<<"$proof")" = "$(sed -n 1p <<<"$want")"
check "RUN read the value secret" test "$(sed -n 2p <<<"$proof")" = "$(sed -n 2p <<<"$want")"
check "RUN read the src secret" test "$(sed -n 3p <<<"$proof")" = "$(sed -n 3p <<<"$want")"

# No value anywhere: every blob (layers gunzipped, configs, manifests),
# the output, the log, the report, the state dir.
leaks=0
scan() {
	local f=$1 v
	for v in "$TOKEN" "$PLAIN" "$FILEVAL"; do
		if { gzip -dc "$f" 2>/dev/null || cat "$f"; } | grep -aqF "$v"; then
			echo "# leak of a secret in $f" >&2
			leaks=$((leaks + 1))
		fi
	done
}
nblobs=0
for f in "$TE_TMP"/final/* "$TE_TMP"/stages-*/*; do
	scan "$f"
	nblobs=$((nblobs + 1))
done
check "blobs scanned ($nblobs)" test "$nblobs" -ge 6
for f in "$TE_TMP"/out* "$TE_TMP"/err* "$TE_TMP/report.json"; do scan "$f"; done
while IFS= read -r -d '' f; do scan "$f"; done < <(find "$STATE" -type f -print0 2>/dev/null)
check "no secret value in any layer, config, output, log, report or the state dir" test "$leaks" -eq 0
# (the layer cache of the store keeps RUN's empty /run/secrets mount
# point; the job dirs are where values were written)
check "no secret file left in the job dirs" test -z "$(find "$STATE/buildah/jobs" -path '*/secrets*' 2>/dev/null)"

# The content tag does not hold the values: a new value, the same tag.
TE_T19_TOKEN="other-$TOKEN" run_export --tag "$REG/sec/app:v2" >"$TE_TMP/out2" 2>"$TE_TMP/err2"
check "export with a new secret value exits 0" test $? -eq 0
check "a new secret value reuses the stages image" grep -q "image app: found in repo" "$TE_TMP/err2"

# The standalone hook (and the server: the same project settings) take
# env and src values by id from the project's secrets: map, env: meaning
# the project's env: map; never from the process environment.
SRVTOKEN="srv-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
SRVTOKEN2="srv2-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
SRVFILE="srvfile-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s' "$SRVFILE" >"$TE_TMP/srv-cred.txt"
printf 'hook-secret\n' >"$TE_TMP/hook.secret"
cat >"$TE_TMP/server.yaml" <<YAML
state_dir: $TE_TMP/srvstate
projects:
  - name: sec
    forge: github
    repository: o/sec
    secret_file: $TE_TMP/hook.secret
    git_url: https://git.example.invalid/o/sec.git
    env: {PROJECT_TOKEN: "$SRVTOKEN"}
    secrets:
      TE_T19_TOKEN: {env: PROJECT_TOKEN}
      cred.txt: {file: $TE_TMP/srv-cred.txt}
    export:
      repo: $REG/srv/stages
      tag: "$REG/srv/%image%:%git_tag%"
  - name: sec2
    forge: github
    repository: o/sec2
    secret_file: $TE_TMP/hook.secret
    git_url: https://git.example.invalid/o/sec2.git
    env: {PROJECT_TOKEN: "$SRVTOKEN2"}
    secrets:
      TE_T19_TOKEN: {env: PROJECT_TOKEN}
      cred.txt: {file: $TE_TMP/srv-cred.txt}
    export:
      repo: $REG/srv2/stages
      tag: "$REG/srv2/%image%:%git_tag%"
YAML
git -C "$proj" -c user.name=t -c user.email=t@example.com tag -a v1 -m v1
"$TAGEXPORT" hook run-export --git-dir "$proj/.git" --config "$TE_TMP/server.yaml" \
	--project sec --tag v1 --commit "$(git -C "$proj" rev-parse HEAD)" \
	>"$TE_TMP/out-hook" 2>"$TE_TMP/err-hook"
check "hook export with project secrets exits 0" test $? -eq 0
skopeo copy -q --src-tls-verify=false "docker://$REG/srv/app:v1" "dir:$TE_TMP/srvimg" >/dev/null
proof=""
for blob in "$TE_TMP/srvimg"/*; do
	p=$(tar -xzOf "$blob" proof 2>/dev/null) && proof=$p
done
check "hook: the env secret came from the project's env: map" \
	test "$(sed -n 1p <<<"$proof")" = "$(printf '%s' "$SRVTOKEN" | sha256sum | cut -d' ' -f1)"
check "hook: the src secret came from the project's file" \
	test "$(sed -n 3p <<<"$proof")" = "$(printf '%s' "$SRVFILE" | sha256sum | cut -d' ' -f1)"
for f in "$TE_TMP"/srvimg/* "$TE_TMP/out-hook" "$TE_TMP/err-hook"; do
	for v in "$SRVTOKEN" "$SRVFILE" "$PLAIN"; do
		if { gzip -dc "$f" 2>/dev/null || cat "$f"; } | grep -aqF "$v"; then
			leaks=$((leaks + 1))
		fi
	done
done
check "hook: no secret value in the image or the output" test "$leaks" -eq 0

# A second project of the same server, same commit and Dockerfile, other
# secret value: its RUN must not come from the first project's layer cache
# (buildah's cache key leaves secrets out), so each project builds in a
# store of its own.
"$TAGEXPORT" hook run-export --git-dir "$proj/.git" --config "$TE_TMP/server.yaml" \
	--project sec2 --tag v1 --commit "$(git -C "$proj" rev-parse HEAD)" \
	>"$TE_TMP/out-hook2" 2>"$TE_TMP/err-hook2"
check "hook export of a second project exits 0" test $? -eq 0
skopeo copy -q --src-tls-verify=false "docker://$REG/srv2/app:v1" "dir:$TE_TMP/srvimg2" >/dev/null
proof2=""
for blob in "$TE_TMP/srvimg2"/*; do
	p=$(tar -xzOf "$blob" proof 2>/dev/null) && proof2=$p
done
check "second project: RUN saw its own secret, not the first project's cached layer" \
	test "$(sed -n 1p <<<"$proof2")" = "$(printf '%s' "$SRVTOKEN2" | sha256sum | cut -d' ' -f1)"
check "each project has a build store of its own" \
	test -d "$TE_TMP/srvstate/build/projects/sec/buildah" -a -d "$TE_TMP/srvstate/build/projects/sec2/buildah"

te_finish
