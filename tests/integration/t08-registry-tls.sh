#!/usr/bin/env bash
# t08-registry-tls: exports to docker-registry over TLS with a test CA.
# Refused while the CA is unknown, accepted with the CA in a certs.d root
# (TAGEXPORT_REGISTRY_CERTS_DIRS points the client at temp roots instead
# of /etc/containers/certs.d and /etc/docker/certs.d), accepted with
# --skip-tls-verify-registry; a registry demanding client certificates
# gets the *.cert/*.key pair from certs.d.  Loopback registries without
# TLS keep working (the https probe falls back to http).
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git jq curl openssl

PKI=$TE_TMP/pki
make_test_ca "$PKI"
make_test_cert "$PKI" server "IP:127.0.0.1,DNS:localhost" serverAuth
make_test_cert "$PKI" client "DNS:tagexport-client" clientAuth
start_registry REG
start_registry_with REGS "" "$PKI/server.crt:$PKI/server.key"
start_registry_with REGM "    clientcas:
      - $PKI/ca.crt" "$PKI/server.crt:$PKI/server.key"

proj=$TE_TMP/project
make_scratch_project "$proj" 1
STATE=$TE_TMP/state
unset REGISTRY_AUTH_FILE XDG_RUNTIME_DIR
mkdir -p "$TE_TMP/dc" "$TE_TMP/certs-empty" "$TE_TMP/certs/$REGS" "$TE_TMP/certs/$REGM" \
	"$TE_TMP/certs-nokey/$REGM"
echo '{}' >"$TE_TMP/dc/config.json"
export DOCKER_CONFIG=$TE_TMP/dc
cp "$PKI/ca.crt" "$TE_TMP/certs/$REGS/ca.crt"
cp "$PKI/ca.crt" "$TE_TMP/certs/$REGM/ca.crt"
cp "$PKI/client.crt" "$TE_TMP/certs/$REGM/client.cert"
cp "$PKI/client.key" "$TE_TMP/certs/$REGM/client.key"
cp "$PKI/ca.crt" "$TE_TMP/certs-nokey/$REGM/ca.crt"

run() {
	"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" --repo "$REG/t/stages" "$@"
}
TAGEXPORT_REGISTRY_CERTS_DIRS=$TE_TMP/certs-empty run --tag "$REG/warm/app:1" >/dev/null 2>"$TE_TMP/warm.err"
check "plain-http loopback registry still works" test $? -eq 0

TAGEXPORT_REGISTRY_CERTS_DIRS=$TE_TMP/certs-empty run --tag "$REGS/noca/app:1" >/dev/null 2>"$TE_TMP/noca.err"
check "unknown CA: export refused" test $? -ne 0
check "unknown CA: certificate problem reported" grep -qi "certificate" "$TE_TMP/noca.err"
check "unknown CA: nothing pushed" bash -c '! skopeo inspect --cert-dir "$1" "docker://$2/noca/app:1" >/dev/null 2>&1' _ "$TE_TMP/certs/$REGS" "$REGS"

TAGEXPORT_REGISTRY_CERTS_DIRS=$TE_TMP/certs-empty:$TE_TMP/certs run --tag "$REGS/ca/app:1" >/dev/null 2>"$TE_TMP/ca.err"
check "CA in certs.d: export succeeds" test $? -eq 0
check "CA in certs.d: image verified over TLS" skopeo_ok --cert-dir "$TE_TMP/certs/$REGS" "docker://$REGS/ca/app:1"

TAGEXPORT_REGISTRY_CERTS_DIRS=$TE_TMP/certs-empty run --skip-tls-verify-registry --tag "$REGS/skip/app:1" >/dev/null 2>"$TE_TMP/skip.err"
check "--skip-tls-verify-registry: export succeeds" test $? -eq 0
check "--skip-tls-verify-registry: image there" skopeo_ok --tls-verify=false "docker://$REGS/skip/app:1"

TAGEXPORT_REGISTRY_CERTS_DIRS=$TE_TMP/certs-nokey run --tag "$REGM/nocert/app:1" >/dev/null 2>"$TE_TMP/nocert.err"
check "client cert required: refused without one" test $? -ne 0
TAGEXPORT_REGISTRY_CERTS_DIRS=$TE_TMP/certs run --tag "$REGM/mtls/app:1" >/dev/null 2>"$TE_TMP/mtls.err"
check "client cert from certs.d: export succeeds" test $? -eq 0
check "client cert: image there" skopeo_ok --cert-dir "$TE_TMP/certs/$REGM" "docker://$REGM/mtls/app:1"
[ "$TE_FAILS" -eq 0 ] || tail -n 5 "$TE_TMP"/*.err >&2
te_finish
