#!/usr/bin/env bash
# t06-registry-auth: `tagexport export` against a docker-registry with
# htpasswd (Basic) auth.  Credentials come from a temp DOCKER_CONFIG
# (auths), from a credential helper script on PATH (credHelpers and
# credsStore), from REGISTRY_AUTH_FILE and ${XDG_RUNTIME_DIR}/containers/
# auth.json; buildah gets the same credentials (a helper-only base image
# and stages repo).  Secrets never show up in output, even with --verbose.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl htpasswd

USER_=tuser
PASS_='tpass-S3cr3t'
B64=$(printf '%s:%s' "$USER_" "$PASS_" | base64 -w0)
htpasswd -Bbn "$USER_" "$PASS_" >"$TE_TMP/htpasswd"
start_registry REG
start_registry_with REGA "auth:
  htpasswd:
    realm: basic-realm
    path: $TE_TMP/htpasswd"

proj=$TE_TMP/project
make_scratch_project "$proj" 1
STATE=$TE_TMP/state
unset REGISTRY_AUTH_FILE XDG_RUNTIME_DIR
mkdir -p "$TE_TMP/dc-none"
echo '{}' >"$TE_TMP/dc-none/config.json"
export DOCKER_CONFIG=$TE_TMP/dc-none

run() {
	"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" --repo "$REG/t/stages" "$@"
}
no_secret() { # FILE: neither the password nor its base64 form
	! grep -qF -e "$PASS_" -e "$B64" "$1"
}
inspect_auth() { skopeo inspect --tls-verify=false --creds "$USER_:$PASS_" "docker://$1" >/dev/null; }

run --tag "$REG/warm/app:1" >/dev/null 2>"$TE_TMP/warm.err"
check "stages image built without auth" test $? -eq 0

# no credentials at all
run --tag "$REGA/none/app:1" >/dev/null 2>"$TE_TMP/none.err"
rc=$?
check "no credentials: export fails" test "$rc" -ne 0
check "no credentials: 401 reported" grep -q "401" "$TE_TMP/none.err"

# wrong password: fails, the wrong password is not printed
mkdir -p "$TE_TMP/dc-bad"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$REGA" "$(printf '%s:wrong-Pw-123' "$USER_" | base64 -w0)" \
	>"$TE_TMP/dc-bad/config.json"
DOCKER_CONFIG=$TE_TMP/dc-bad run --verbose --tag "$REGA/bad/app:1" >/dev/null 2>"$TE_TMP/bad.err"
check "wrong password: export fails" test $? -ne 0
check "wrong password not in output" bash -c '! grep -q wrong-Pw-123 "$1"' _ "$TE_TMP/bad.err"

# config.json auths (legacy URL key)
mkdir -p "$TE_TMP/dc-good"
printf '{"auths":{"https://%s/v1/":{"auth":"%s"}}}' "$REGA" "$B64" >"$TE_TMP/dc-good/config.json"
DOCKER_CONFIG=$TE_TMP/dc-good run --verbose --tag "$REGA/cfg/app:1" >"$TE_TMP/cfg.out" 2>"$TE_TMP/cfg.err"
check "config.json auths: export succeeds" test $? -eq 0
check "config.json auths: image readable" inspect_auth "$REGA/cfg/app:1"
check "config.json auths: no secret in output" no_secret "$TE_TMP/cfg.err"

# credential helper on PATH: credHelpers, then credsStore
bin=$TE_TMP/bin
mkdir -p "$bin"
cat >"$bin/docker-credential-tetest" <<SH
#!/bin/sh
read -r server
echo "\$# \$* \$server" >>"$TE_TMP/helper.log"
[ "\$1" = get ] || exit 2
if [ "\$server" = "$REGA" ]; then
	printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\n' "\$server" "$USER_" "$PASS_"
else
	echo "credentials not found in native keychain"
	exit 1
fi
SH
chmod 700 "$bin/docker-credential-tetest"
mkdir -p "$TE_TMP/dc-helper" "$TE_TMP/dc-store"
printf '{"credHelpers":{"%s":"tetest"}}' "$REGA" >"$TE_TMP/dc-helper/config.json"
printf '{"credsStore":"tetest"}' >"$TE_TMP/dc-store/config.json"
PATH=$bin:$PATH DOCKER_CONFIG=$TE_TMP/dc-helper run --verbose --tag "$REGA/helper/app:1" \
	>/dev/null 2>"$TE_TMP/helper.err"
check "credHelpers: export succeeds" test $? -eq 0
check "credHelpers: image readable" inspect_auth "$REGA/helper/app:1"
check "helper ran as 'get' with the host on stdin" grep -qx "1 get $REGA" "$TE_TMP/helper.log"
check "credHelpers: no secret in output" no_secret "$TE_TMP/helper.err"
: >"$TE_TMP/helper.log"
PATH=$bin:$PATH DOCKER_CONFIG=$TE_TMP/dc-store run --tag "$REGA/store/app:1" >/dev/null 2>"$TE_TMP/store.err"
check "credsStore: export succeeds" test $? -eq 0
check "credsStore: helper asked" grep -q "get $REGA" "$TE_TMP/helper.log"
# a helper that is not installed is a clear error
DOCKER_CONFIG=$TE_TMP/dc-helper run --tag "$REGA/nohelper/app:1" >/dev/null 2>"$TE_TMP/nohelper.err"
check "missing helper: export fails" test $? -ne 0
check "missing helper: named in the error" grep -q "docker-credential-tetest" "$TE_TMP/nohelper.err"

# containers auth.json: REGISTRY_AUTH_FILE, then XDG_RUNTIME_DIR
printf '{"auths":{"%s":{"auth":"%s"}}}' "$REGA" "$B64" >"$TE_TMP/auth.json"
REGISTRY_AUTH_FILE=$TE_TMP/auth.json run --tag "$REGA/authfile/app:1" >/dev/null 2>"$TE_TMP/af.err"
check "REGISTRY_AUTH_FILE: export succeeds" test $? -eq 0
mkdir -p "$TE_TMP/xdg/containers"
cp "$TE_TMP/auth.json" "$TE_TMP/xdg/containers/auth.json"
XDG_RUNTIME_DIR=$TE_TMP/xdg run --tag "$REGA/xdg/app:1" >/dev/null 2>"$TE_TMP/xdg.err"
check "XDG_RUNTIME_DIR auth.json: export succeeds" test $? -eq 0

# buildah gets the same credentials: a base image and the stages repo on
# the auth registry, credentials only through the helper
make_base_image "$REG/base/busybox:1"
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false --dest-creds "$USER_:$PASS_" \
	"docker://$REG/base/busybox:1" "docker://$REGA/base/busybox:1"
proj2=$TE_TMP/project2
mkdir -p "$proj2"
git init -q -b main "$proj2"
printf 'FROM %s/base/busybox:1\nRUN echo built-with-auth > /proof\n' "$REGA" >"$proj2/Dockerfile"
printf 'project: t2\nconfigVersion: 1\n---\nimage: app\ndockerfile: Dockerfile\n' >"$proj2/werf.yaml"
git_commit_all "$proj2" init
PATH=$bin:$PATH DOCKER_CONFIG=$TE_TMP/dc-helper "$TAGEXPORT" export --dir "$proj2" \
	--state-dir "$STATE" --repo "$REGA/t2/stages" --tag "$REGA/t2/app:1" \
	--report-path "$TE_TMP/t2.json" >/dev/null 2>"$TE_TMP/t2.err"
check "buildah pulls and pushes with helper credentials" test $? -eq 0
check "image was built" test "$(jq -r .images.app.built "$TE_TMP/t2.json")" = true
check "built image readable" inspect_auth "$REGA/t2/app:1"
check "no auth.json left behind" test -z "$(find "$STATE/tmp" -name 'auth-*' 2>/dev/null)"
check "buildah run: no secret in output" no_secret "$TE_TMP/t2.err"
[ "$TE_FAILS" -eq 0 ] || tail -n 5 "$TE_TMP"/*.err >&2
te_finish
