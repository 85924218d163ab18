#!/usr/bin/env bash
# t05-registry: the te_registry client (via tests/bin/registry_probe)
# against real docker-registry instances: anonymous and Basic auth,
# cross-registry streaming copy, same-registry mount, skip-existing,
# OCI index and Docker v2 manifests, error mapping.
#
# TE_REG_BENCH=1 also times a 3 x 32 MiB copy against `skopeo copy`.
set -euo pipefail

: "${TE_BUILD_DIR:?}"
PROBE=$TE_BUILD_DIR/tests/bin/registry_probe

skip() {
	echo "SKIP: $*"
	if [ "${TE_REQUIRE_INTEGRATION:-}" = 1 ]; then
		exit 1
	fi
	exit 77
}

for bin in docker-registry skopeo curl htpasswd sha256sum tar gzip; do
	command -v "$bin" >/dev/null 2>&1 || skip "$bin not installed"
done
[ -x "$PROBE" ] || skip "registry_probe not built"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/t05.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000)) # below the ephemeral range
		if ! (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# start_registry NAME VAR [htpasswd-file]: sets VAR to the port (not via
# $(...): the registry's pid must reach PIDS in this shell).  Retries with
# another port when a concurrent test took the one picked.
start_registry() {
	local name=$1 var=$2 htp=${3:-} port dir pid attempt
	dir=$WORK/reg-$name
	mkdir -p "$dir/data"
	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		{
			echo "version: 0.1"
			echo "log:"
			echo "  level: error"
			echo "storage:"
			echo "  filesystem:"
			echo "    rootdirectory: $dir/data"
			echo "  delete:"
			echo "    enabled: true"
			echo "http:"
			echo "  addr: 127.0.0.1:$port"
			if [ -n "$htp" ]; then
				echo "auth:"
				echo "  htpasswd:"
				echo "    realm: basic-realm"
				echo "    path: $htp"
			fi
		} >"$dir/config.yml"
		docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
		pid=$!
		PIDS+=("$pid")
		for _ in $(seq 1 100); do
			code=$(curl -s -o /dev/null -w '%{http_code}' \
				"http://127.0.0.1:$port/v2/" || true)
			if [ "$code" = 200 ] || [ "$code" = 401 ]; then
				printf -v "$var" '%s' "$port"
				return
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill "$pid" 2>/dev/null || true
	done
	cat "$dir/log" >&2
	fail "registry $name did not start"
}

SK=(skopeo --insecure-policy)
skin() { "${SK[@]}" inspect --tls-verify=false "$@"; }

# ---- build an OCI layout: image "img" (3 layers) and index "multi" ----
LAYOUT=$WORK/layout
mkdir -p "$LAYOUT/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$LAYOUT/oci-layout"

# add_blob FILE -> prints "digest size"
add_blob() {
	local h s
	h=$(sha256sum "$1" | cut -d' ' -f1)
	s=$(stat -c %s "$1")
	cp "$1" "$LAYOUT/blobs/sha256/$h"
	echo "sha256:$h $s"
}

# make_layer NAME MIB -> "digest size" of a gzip tar of random bytes
make_layer() {
	local d=$WORK/src-$1
	mkdir -p "$d"
	head -c $(($2 * 1024 * 1024)) /dev/urandom >"$d/data-$1"
	tar -C "$d" -cf - "data-$1" | gzip -1 >"$WORK/$1.tar.gz"
	add_blob "$WORK/$1.tar.gz"
}

# make_image ARCH LAYER-DESCS... -> "digest size" of an OCI manifest
make_image() {
	local arch=$1 cfg man layers="" diffids="" sep="" d s
	shift
	for l in "$@"; do
		read -r d s <<<"$l"
		layers+="$sep{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$d\",\"size\":$s}"
		diffids+="$sep\"$d\""
		sep=,
	done
	printf '{"architecture":"%s","os":"linux","config":{"Labels":{"t05":"yes"}},"rootfs":{"type":"layers","diff_ids":[%s]}}' \
		"$arch" "$diffids" >"$WORK/config-$arch.json"
	read -r d s < <(add_blob "$WORK/config-$arch.json")
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[%s]}' \
		"$d" "$s" "$layers" >"$WORK/manifest-$arch.json"
	add_blob "$WORK/manifest-$arch.json"
}

MIB=${TE_REG_LAYER_MIB:-3}
L1=$(make_layer l1 "$MIB")
L2=$(make_layer l2 "$MIB")
L3=$(make_layer l3 "$MIB")
read -r M1 M1S < <(make_image amd64 "$L1" "$L2" "$L3")
read -r M2 M2S < <(make_image arm64 "$L1" "$L2")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"amd64","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"platform":{"architecture":"arm64","os":"linux"}}]}' \
	"$M1" "$M1S" "$M2" "$M2S" >"$WORK/index.json"
read -r IX IXS < <(add_blob "$WORK/index.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"img"}},{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"multi"}}]}' \
	"$M1" "$M1S" "$IX" "$IXS" >"$LAYOUT/index.json"

# ---- registries ----
start_registry one P1
start_registry two P2
htpasswd -Bbn user pass >"$WORK/htpasswd"
start_registry auth P3 "$WORK/htpasswd"
R1=127.0.0.1:$P1
R2=127.0.0.1:$P2
R3=127.0.0.1:$P3

"${SK[@]}" copy -q --dest-tls-verify=false "oci:$LAYOUT:img" \
	"docker://$R1/src/img:1"
"${SK[@]}" copy -q --all --dest-tls-verify=false "oci:$LAYOUT:multi" \
	"docker://$R1/src/multi:1"
"${SK[@]}" copy -q --format v2s2 --dest-tls-verify=false \
	"oci:$LAYOUT:img" "docker://$R1/src/docker:1"

echo "== get-manifest by tag and digest"
out=$("$PROBE" get-manifest "$R1" src/img 1)
[ "$out" = "application/vnd.oci.image.manifest.v1+json $M1 $M1S" ] ||
	fail "get-manifest: $out"
"$PROBE" get-manifest "$R1" src/img "$M1" >/dev/null
out=$("$PROBE" get-manifest "$R1" src/docker 1)
case $out in
application/vnd.docker.distribution.manifest.v2+json\ sha256:*) ;;
*) fail "docker manifest: $out" ;;
esac

echo "== not found maps to exit 3 with the registry's error code"
set +e
msg=$("$PROBE" get-manifest "$R1" src/img nope 2>&1)
rc=$?
set -e
[ $rc = 3 ] || fail "missing tag exit $rc: $msg"
echo "$msg" | grep -q "GET manifest $R1/src/img:nope: 404 MANIFEST_UNKNOWN" ||
	fail "message: $msg"
set +e
"$PROBE" get-manifest "$R1" src/img "sha256:$(printf '0%.0s' $(seq 64))" \
	>/dev/null 2>&1
rc=$?
set -e
[ $rc = 3 ] || fail "missing digest exit $rc"

echo "== cross-registry streaming copy"
out=$("$PROBE" -j 4 copy "$R1" src/img 1 "$R2" dst/img v1)
echo "$out"
case $out in "copied "*" $M1 in "*) ;; *) fail "copy: $out" ;; esac
[ "$(echo "$out" | cut -d' ' -f2)" -gt $((MIB * 3 * 1024 * 1024)) ] ||
	fail "too few bytes copied: $out"
raw1=$(skin --raw "docker://$R1/src/img:1")
raw2=$(skin --raw "docker://$R2/dst/img:v1")
[ "$raw1" = "$raw2" ] || fail "manifest bytes differ"
skin "docker://$R2/dst/img:v1" | grep -q '"t05": "yes"' ||
	fail "inspect of copied image"
for l in "$L1" "$L2" "$L3"; do
	d=${l% *}
	[ "$("$PROBE" blob-exists "$R2" dst/img "$d")" = yes ] ||
		fail "layer $d missing"
done

echo "== second copy skips existing blobs"
out=$("$PROBE" copy "$R1" src/img 1 "$R2" dst/img v2)
case $out in "copied 0 bytes $M1 "*) ;; *) fail "re-copy: $out" ;; esac

echo "== same registry copy mounts"
out=$("$PROBE" -v copy "$R1" src/img 1 "$R1" other/img 2 2>"$WORK/mount.log")
case $out in "copied 0 bytes $M1 "*) ;; *) fail "mount copy: $out" ;; esac
[ "$(grep -c "mounted sha256:" "$WORK/mount.log")" = 4 ] ||
	fail "expected 4 mounts: $(cat "$WORK/mount.log")"
[ "$(skin --raw "docker://$R1/other/img:2")" = "$raw1" ] ||
	fail "mounted image differs"
d=${L1% *}
[ "$("$PROBE" mount "$R1" third/img "$d" nope/repo)" = not-mounted ] ||
	fail "mount from missing repo"
[ "$("$PROBE" mount "$R1" third/img "$d" src/img)" = mounted ] ||
	fail "mount from src"

echo "== OCI index copy (children by digest, then the index)"
out=$("$PROBE" copy "$R1" src/multi 1 "$R2" dst/multi latest)
case $out in "copied "*" $IX "*) ;; *) fail "index copy: $out" ;; esac
[ "$(skin --raw "docker://$R2/dst/multi:latest")" = \
	"$(cat "$WORK/index.json")" ] || fail "index bytes differ"
skin --raw "docker://$R2/dst/multi@$M2" >/dev/null

echo "== Docker v2 manifest copy"
"$PROBE" copy "$R1" src/docker 1 "$R2" dst/docker 1 >/dev/null
[ "$(skin --raw "docker://$R1/src/docker:1")" = \
	"$(skin --raw "docker://$R2/dst/docker:1")" ] ||
	fail "docker manifest differs"

echo "== small blob put/get"
head -c 1000 /dev/urandom >"$WORK/small"
d=$("$PROBE" put-blob "$R2" dst/small "$WORK/small")
[ "$d" = "sha256:$(sha256sum "$WORK/small" | cut -d' ' -f1)" ] ||
	fail "put-blob digest $d"
[ "$("$PROBE" get-blob "$R2" dst/small "$d")" = 1000 ] || fail "get-blob"
"$PROBE" put-blob "$R2" dst/small "$WORK/small" >/dev/null # exists: no-op

echo "== Basic auth via DOCKER_CONFIG"
set +e
msg=$(DOCKER_CONFIG=$WORK/none "$PROBE" copy "$R1" src/img 1 "$R3" a/img 1 2>&1)
rc=$?
set -e
[ $rc = 4 ] || fail "no creds: exit $rc: $msg"
mkdir -p "$WORK/dc-bad" "$WORK/dc-good" "$WORK/dc-up"
printf '{"auths":{"%s":{"auth":"%s"}}}' "$R3" \
	"$(printf 'user:wrong' | base64)" >"$WORK/dc-bad/config.json"
set +e
msg=$(DOCKER_CONFIG=$WORK/dc-bad "$PROBE" copy "$R1" src/img 1 "$R3" a/img 1 2>&1)
rc=$?
set -e
[ $rc = 4 ] || fail "bad creds: exit $rc: $msg"
if echo "$msg" | grep -q wrong; then fail "password leaked: $msg"; fi
printf '{"auths":{"https://%s/v1/":{"auth":"%s"}}}' "$R3" \
	"$(printf 'user:pass' | base64)" >"$WORK/dc-good/config.json"
out=$(DOCKER_CONFIG=$WORK/dc-good "$PROBE" copy "$R1" src/img 1 "$R3" a/img 1)
case $out in "copied "*" $M1 "*) ;; *) fail "auth copy: $out" ;; esac
"${SK[@]}" inspect --tls-verify=false --creds user:pass --raw \
	"docker://$R3/a/img:1" >/dev/null
printf '{"auths":{"%s":{"username":"user","password":"pass"}}}' "$R3" \
	>"$WORK/dc-up/config.json"
out=$(DOCKER_CONFIG=$WORK/dc-up "$PROBE" copy "$R3" a/img 1 "$R3" b/img 1)
case $out in "copied 0 bytes $M1 "*) ;; *) fail "auth mount: $out" ;; esac

echo "== corrupted source blob: copy fails, nothing committed"
d=${L3% *}
blob=$WORK/reg-one/data/docker/registry/v2/blobs/sha256/${d:7:2}/${d:7}/data
[ -f "$blob" ] || fail "registry storage layout: $blob"
size=$(stat -c %s "$blob")
head -c "$size" /dev/urandom >"$blob"
set +e
msg=$("$PROBE" copy "$R1" src/img 1 "$R2" corrupt/img 1 2>&1)
rc=$?
set -e
[ $rc = 1 ] || fail "corrupt copy exit $rc: $msg"
echo "$msg" | grep -q "source content has digest" || fail "message: $msg"
[ "$("$PROBE" blob-exists "$R2" corrupt/img "$d")" = no ] ||
	fail "corrupt blob was committed"
set +e
"$PROBE" get-manifest "$R2" corrupt/img 1 >/dev/null 2>&1
rc=$?
set -e
[ $rc = 3 ] || fail "manifest pushed despite failure"

if [ "${TE_REG_BENCH:-}" = 1 ]; then
	echo "== benchmark: 3 x 32 MiB, $R1 -> $R2 (fresh repos, no cache)"
	LAYOUT=$WORK/bench-layout
	mkdir -p "$LAYOUT/blobs/sha256"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$LAYOUT/oci-layout"
	B1=$(make_layer b1 32)
	B2=$(make_layer b2 32)
	B3=$(make_layer b3 32)
	read -r BM BMS < <(make_image bench "$B1" "$B2" "$B3")
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"bench"}}]}' \
		"$BM" "$BMS" >"$LAYOUT/index.json"
	"${SK[@]}" copy -q --dest-tls-verify=false "oci:$LAYOUT:bench" \
		"docker://$R1/bench/src:1"
	now() { date +%s.%N; }
	for i in 1 2 3; do
		rm -f /var/lib/containers/cache/blob-info-cache-v1.boltdb \
			"$HOME/.local/share/containers/cache/blob-info-cache-v1.boltdb"
		s=$(now)
		"${SK[@]}" copy -q --src-tls-verify=false --dest-tls-verify=false \
			"docker://$R1/bench/src:1" "docker://$R2/sk$i/img:1"
		e=$(now)
		echo "skopeo copy run $i: $(awk "BEGIN{print $e - $s}") s"
		s=$(now)
		"$PROBE" copy "$R1" bench/src 1 "$R2" te$i/img 1 >/dev/null
		e=$(now)
		echo "registry_probe copy run $i: $(awk "BEGIN{print $e - $s}") s"
	done
fi

echo "t05-registry: ok"
