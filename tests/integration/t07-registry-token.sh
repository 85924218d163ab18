#!/usr/bin/env bash
# t07-registry-token: the Bearer flow for real.  docker-registry in token
# mode trusts a test CA; servers/token_server.py issues RS256 JWTs signed
# by a certificate of that CA (x5c) and logs every token request.
# Checked: Basic credentials to the realm, one `scope` per scope, the
# cross-repository mount asking for push on the target and pull on the
# source in one token, the OAuth2 refresh-token POST for identity tokens
# (config.json identitytoken and a helper's "<token>" user), refresh after
# a 401 with an expired token, anonymous denial, buildah through the
# token flow, and no token or secret in the output.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git jq curl openssl python3
SERVERS=$(cd "$(dirname "$0")/servers" && pwd)

PKI=$TE_TMP/pki
make_test_ca "$PKI"
make_test_cert "$PKI" signer "DNS:token-signer" serverAuth
printf 'tuser:tpass-S3cr3t\n' >"$TE_TMP/users"
printf 'idt-R3fresh=tuser\nhelper-R3fresh=tuser\n' >"$TE_TMP/refresh"
TLOG=$TE_TMP/token.log
: >"$TLOG"
start_py_server TOK "$SERVERS/token_server.py" --key "$PKI/signer.key" \
	--cert "$PKI/signer.crt" --users "$TE_TMP/users" \
	--refresh-tokens "$TE_TMP/refresh" --log "$TLOG" --expire-flag "$TE_TMP/expire-next"
start_registry_with REGT "auth:
  token:
    realm: http://$TOK/token
    service: te-test-registry
    issuer: te-test-issuer
    rootcertbundle: $PKI/ca.crt"

proj=$TE_TMP/project
make_scratch_project "$proj" 1
STATE=$TE_TMP/state
unset REGISTRY_AUTH_FILE XDG_RUNTIME_DIR
mkdir -p "$TE_TMP/dc-none" "$TE_TMP/dc-basic" "$TE_TMP/dc-idt" "$TE_TMP/dc-helper"
echo '{}' >"$TE_TMP/dc-none/config.json"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$REGT" "$(printf 'tuser:tpass-S3cr3t' | base64 -w0)" \
	>"$TE_TMP/dc-basic/config.json"
printf '{"auths":{"%s":{"identitytoken":"idt-R3fresh"}}}' "$REGT" >"$TE_TMP/dc-idt/config.json"
printf '{"credHelpers":{"%s":"tetok"}}' "$REGT" >"$TE_TMP/dc-helper/config.json"
mkdir -p "$TE_TMP/bin"
printf '#!/bin/sh\nread -r s\nprintf %s\n' \
	"'{\"Username\":\"<token>\",\"Secret\":\"helper-R3fresh\"}'" >"$TE_TMP/bin/docker-credential-tetok"
chmod 700 "$TE_TMP/bin/docker-credential-tetok"

run() { # DOCKER_CONFIG-DIR ARGS...
	local dc=$1
	shift
	DOCKER_CONFIG=$dc "$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" \
		--repo "$REGT/t/stages" "$@"
}
secret_free() { ! grep -qE 'tpass-S3cr3t|R3fresh|eyJ[A-Za-z0-9_-]{20,}' "$1"; }
# lines of the token log matching a jq filter
tlog() { jq -c "select($1)" "$TLOG"; }

# 1. anonymous: the token server grants nothing, export fails clearly
run "$TE_TMP/dc-none" --tag "$REGT/anon/app:1" >/dev/null 2>"$TE_TMP/anon.err"
check "anonymous: export fails" test $? -ne 0
check "anonymous: token asked without credentials" test -n "$(tlog '.grant == "anonymous"')"

# 2. Basic credentials to the realm; buildah builds and pushes through
#    the token flow
: >"$TLOG"
run "$TE_TMP/dc-basic" --verbose --tag "$REGT/basic/app:1" --report-path "$TE_TMP/r2.json" \
	>/dev/null 2>"$TE_TMP/basic.err"
check "basic creds: export succeeds" test $? -eq 0
check "basic creds: image was built by buildah" test "$(jq -r .images.app.built "$TE_TMP/r2.json")" = true
check "basic creds: pushed image readable" \
	skopeo_ok --tls-verify=false --creds tuser:tpass-S3cr3t "docker://$REGT/basic/app:1"
check "token requests carried Basic credentials" test -n "$(tlog '.grant == "basic" and .user == "tuser"')"
check "service parameter sent" test -z "$(tlog '.service != "te-test-registry"')"
check "one scope parameter per scope" test -n "$(tlog '.scopes | length >= 1 and all(test("^repository:[a-z0-9/._-]+:(pull|pull,push)$"))')"
check "push scope asked for the target" test -n "$(tlog '.scopes | index("repository:basic/app:pull,push")')"
check "no secret or token in verbose output" secret_free "$TE_TMP/basic.err"

# 3. same-registry export mounts: one token with push on the target and
#    pull on the source.  The first token handed out is already expired:
#    the registry's 401 makes the client fetch a new one, once.
: >"$TLOG"
touch "$TE_TMP/expire-next"
run "$TE_TMP/dc-basic" --verbose --tag "$REGT/mounted/app:1" >/dev/null 2>"$TE_TMP/mount.err"
check "mount export succeeds" test $? -eq 0
check "mount scope: target pull,push + source pull in one request" test -n \
	"$(tlog '(.scopes | index("repository:mounted/app:pull,push")) and (.scopes | index("repository:t/stages:pull"))')"
check "layers were mounted, not copied" grep -q "mounted sha256:" "$TE_TMP/mount.err"
check "expired token was replaced after a 401" test "$(jq -c .scopes "$TLOG" | head -2 | uniq | wc -l)" -eq 1
check "expired token: only one refresh" test "$(jq -c .scopes "$TLOG" | head -3 | uniq | wc -l)" -eq 2

# 4. identity token from config.json: OAuth2 POST grant_type=refresh_token
: >"$TLOG"
run "$TE_TMP/dc-idt" --tag "$REGT/idt/app:1" >/dev/null 2>"$TE_TMP/idt.err"
check "identity token: export succeeds" test $? -eq 0
check "identity token: OAuth2 POST used" test -n "$(tlog '.method == "POST" and .grant == "refresh_token" and .user == "tuser" and .client_id == "tagexport"')"
check "identity token: no GET with credentials" test -z "$(tlog '.method == "GET" and .grant == "basic"')"

# 5. a helper answering "<token>": identity token again
: >"$TLOG"
PATH=$TE_TMP/bin:$PATH run "$TE_TMP/dc-helper" --tag "$REGT/helper/app:1" >/dev/null 2>"$TE_TMP/helper.err"
check "helper identity token: export succeeds" test $? -eq 0
check "helper identity token: refresh_token POST" test -n "$(tlog '.method == "POST" and .user == "tuser"')"
for f in "$TE_TMP"/*.err; do
	check "no secrets in $(basename "$f")" secret_free "$f"
done
[ "$TE_FAILS" -eq 0 ] && rm -f "$TE_TMP"/*.err
[ "$TE_FAILS" -eq 0 ] || { cat "$TLOG" >&2; tail -n 5 "$TE_TMP"/*.err >&2; }
te_finish
