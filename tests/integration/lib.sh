# lib.sh - shared helpers for the integration tests (sourced, bash).
#
# Everything is real: docker-registry instances on free loopback ports,
# git repositories made with git, images built with buildah, results read
# back with skopeo.  Each test gets its own temp dir, removed on exit
# together with every server it started.

set -uo pipefail

TE_BIN_DIR=${TE_BIN_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/bin}
TAGEXPORT="$TE_BIN_DIR/tagexport"
TE_TMP=$(mktemp -d "${TMPDIR:-/tmp}/te-test.XXXXXX")
TE_PIDS=()
TE_FAILS=0
TE_PASSES=0

te_cleanup() {
	local pid
	for pid in "${TE_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [ -n "${TE_KEEP_TMP:-}" ]; then
		echo "kept $TE_TMP" >&2
	else
		rm -rf "$TE_TMP" 2>/dev/null || true
	fi
}
trap te_cleanup EXIT

# Skip (77) when a prerequisite is missing, unless CI demands everything.
te_require() {
	local bin
	for bin in "$@"; do
		if ! command -v "$bin" >/dev/null 2>&1; then
			if [ "${TE_REQUIRE_INTEGRATION:-}" = 1 ]; then
				echo "FATAL: required program $bin is missing" >&2
				exit 1
			fi
			echo "SKIP: $bin is not installed" >&2
			exit 77
		fi
	done
}

pass() { TE_PASSES=$((TE_PASSES + 1)); echo "ok - $*"; }
fail() { TE_FAILS=$((TE_FAILS + 1)); echo "not ok - $*" >&2; }

# check DESCRIPTION COMMAND...: passes when COMMAND succeeds.
check() {
	local what=$1
	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

te_finish() {
	echo "$TE_PASSES passed, $TE_FAILS failed"
	[ "$TE_FAILS" -eq 0 ]
}

# Ports come from below the kernel's ephemeral range (32768+), where
# outgoing connections of other tests could hold them.
te_free_port() {
	local port
	while :; do
		port=$((20000 + RANDOM % 12000))
		if ! ss -Hltn "sport = :$port" | grep -q .; then
			echo "$port"
			return
		fi
	done
}

# start_registry VAR: starts docker-registry, sets $VAR to 127.0.0.1:PORT.
start_registry() {
	start_registry_with "$1" ""
}

te_buildah() {
	buildah --root "$TE_TMP/buildah/root" --runroot "$TE_TMP/buildah/run" \
		--storage-driver vfs "$@"
}

# make_base_image REF: a busybox image built from scratch, pushed to REF.
make_base_image() {
	local ref=$1 ctx="$TE_TMP/base-ctx" conf="$TE_TMP/base-registries.conf"
	local host=${ref%%/*}
	mkdir -p "$ctx"
	cp "$(command -v busybox)" "$ctx/busybox"
	printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n' >"$ctx/Dockerfile"
	printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$host" >"$conf"
	te_buildah build --isolation chroot -q -t localhost/te-base "$ctx" >/dev/null &&
		CONTAINERS_REGISTRIES_CONF=$conf te_buildah push -q --tls-verify=false \
			localhost/te-base "docker://$ref" >/dev/null || {
		echo "FATAL: cannot build the base image" >&2
		exit 1
	}
}

# registry_catalog HOST: sorted "repo:tag" list, to prove nothing was pushed.
registry_catalog() {
	local host=$1 repo
	for repo in $(curl -fsS "http://$host/v2/_catalog?n=1000" | jq -r '.repositories[]'); do
		curl -fsS "http://$host/v2/$repo/tags/list" |
			jq -r --arg r "$repo" '(.tags // [])[] | "\($r):\(.)"'
	done | sort
}

skopeo_inspect() {
	skopeo inspect --tls-verify=false "docker://$1"
}

# git_commit_all DIR MESSAGE
git_commit_all() {
	git -C "$1" add -A
	git -C "$1" -c user.name=t -c user.email=t@example.com commit -qm "$2"
}

# ---- registries with auth / TLS, python test servers, test PKI ----------

# start_registry_with VAR EXTRA-YAML [https]: a docker-registry with more
# config (indented under the top level: auth:, tls under http: is added
# with https=CERT:KEY), sets $VAR to 127.0.0.1:PORT.
start_registry_with() {
	local var=$1 extra=$2 tls=${3:-} dir port pid attempt
	dir=$(mktemp -d "$TE_TMP/registry.XXXXXX")
	# A concurrent test may bind the port we picked: retry with another.
	for attempt in 1 2 3 4 5; do
		port=$(te_free_port)
		{
			printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n'
			printf 'storage:\n  filesystem:\n    rootdirectory: %s/data\n  delete:\n    enabled: true\n' "$dir"
			printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
			if [ -n "$tls" ]; then
				printf '  tls:\n    certificate: %s\n    key: %s\n' "${tls%%:*}" "${tls#*:}"
			fi
			printf '%s\n' "$extra"
		} >"$dir/config.yml"
		docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
		pid=$!
		TE_PIDS+=("$pid")
		for _ in $(seq 1 100); do
			# listening is enough: a registry demanding client
			# certificates answers no anonymous probe
			if ss -Hltnp "sport = :$port" | grep -q "pid=$pid,"; then
				printf -v "$var" '%s' "127.0.0.1:$port"
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill "$pid" 2>/dev/null || true
	done
	echo "FATAL: docker-registry did not start" >&2
	cat "$dir/log" >&2
	exit 1
}

# start_py_server VAR SCRIPT ARGS...: runs a python3 test server that
# binds 127.0.0.1:0 and writes its port to the file given as --port-file;
# sets $VAR to 127.0.0.1:PORT.
start_py_server() {
	local var=$1 script=$2 pf pid
	shift 2
	pf=$(mktemp "$TE_TMP/port.XXXXXX")
	rm -f "$pf"
	python3 "$script" --port-file "$pf" "$@" >>"$TE_TMP/$(basename "$script").log" 2>&1 &
	pid=$!
	TE_PIDS+=("$pid")
	for _ in $(seq 1 100); do
		if [ -s "$pf" ]; then
			printf -v "$var" '127.0.0.1:%s' "$(cat "$pf")"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "FATAL: $script did not start" >&2
	cat "$TE_TMP/$(basename "$script").log" >&2
	exit 1
}

# make_test_ca DIR: DIR/ca.crt + DIR/ca.key, a throwaway CA.
make_test_ca() {
	mkdir -p "$1"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tagexport test CA" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		-keyout "$1/ca.key" -out "$1/ca.crt" >/dev/null 2>&1
}

# make_test_cert CADIR NAME SAN [EXT]: CADIR/NAME.crt + .key signed by the
# CA; SAN like "IP:127.0.0.1"; EXT an extendedKeyUsage (serverAuth).
make_test_cert() {
	local d=$1 n=$2 san=$3 eku=${4:-serverAuth}
	openssl req -newkey rsa:2048 -nodes -subj "/CN=$n" \
		-keyout "$d/$n.key" -out "$d/$n.csr" >/dev/null 2>&1
	printf 'subjectAltName=%s\nextendedKeyUsage=%s\nbasicConstraints=CA:FALSE\n' "$san" "$eku" >"$d/$n.ext"
	openssl x509 -req -in "$d/$n.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
		-CAcreateserial -days 2 -extfile "$d/$n.ext" -out "$d/$n.crt" >/dev/null 2>&1
}

# make_scratch_project DIR MIB: a werf project whose one image "app" is
# FROM scratch with a MIB MiB random file, committed.
make_scratch_project() {
	local dir=$1 mib=$2
	mkdir -p "$dir"
	git init -q -b main "$dir"
	head -c $((mib * 1024 * 1024)) /dev/urandom >"$dir/data.bin"
	echo "small $RANDOM" >"$dir/small.txt"
	printf 'FROM scratch\nCOPY data.bin /data.bin\nCOPY small.txt /small.txt\n' >"$dir/Dockerfile"
	printf 'project: t\nconfigVersion: 1\n---\nimage: app\ndockerfile: Dockerfile\n' >"$dir/werf.yaml"
	git_commit_all "$dir" init
}

# elapsed_since T0: seconds (float) since date +%s.%N value T0.
elapsed_since() { echo "$(date +%s.%N) - $1" | bc -l; }

# skopeo_ok ARGS...: skopeo inspect succeeds (output discarded).
skopeo_ok() { skopeo inspect "$@" >/dev/null 2>&1; }

# not COMMAND...: COMMAND fails (output discarded).  Unlike a bash -c '!
# ...', a pgrep run this way cannot match its own parent's arguments.
not() { ! "$@" >/dev/null 2>&1; }

# wait_until SECONDS COMMAND...: until COMMAND succeeds (output discarded).
wait_until() {
	local secs=$1 i
	shift
	for i in $(seq 1 $((secs * 10))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# image_file REF PATH: the content of PATH (no leading "/") in the image
# REF, from the last of its layers that holds it.
image_file() {
	local ref=$1 path=$2 d l
	d=$(mktemp -d "$TE_TMP/img.XXXXXX")
	skopeo copy -q --src-tls-verify=false "docker://$ref" "dir:$d" >/dev/null || return 1
	for l in $(jq -r '.layers[].digest' "$d/manifest.json"); do
		tar -xzOf "$d/${l#sha256:}" "$path" 2>/dev/null
	done | tail -n 1
}

# rootfs REF DIR: the image REF's layers unpacked into DIR in order, with
# their whiteouts applied (DIR.img keeps the copied layout).
rootfs() {
	local ref=$1 dir=$2 img="$2.img" layer wh
	rm -rf "$dir" "$img"
	mkdir -p "$dir"
	skopeo copy -q --src-tls-verify=false "docker://$ref" "dir:$img" >/dev/null || return 1
	for layer in $(jq -r '.layers[].digest | sub("sha256:"; "")' "$img/manifest.json"); do
		tar -xzf "$img/$layer" -C "$dir" || return 1
		find "$dir" -name '.wh.*' ! -name '.wh..wh..opq' | while read -r wh; do
			rm -rf "$(dirname "$wh")/$(basename "$wh" | sed 's/^\.wh\.//')" "$wh"
		done
	done
}

# built_stages NAME: the Stapel stages an export built, in order, from its
# --verbose stderr in $TE_TMP/NAME.err ("building stage X" lines).
built_stages() { grep -o 'building stage [A-Za-z]*' "$TE_TMP/$1.err" | awk '{print $3}' | tr '\n' ' '; }

# retag SRC DEST: copy an image between repositories of the test's
# registries (test setup, not the code under test).  docker-registry 2.8
# has answered the blob check of a new repository with a 500 under load
# once (t19 in CI); one more try is enough, and a third failure is fatal.
retag() {
	local i
	for i in 1 2 3; do
		skopeo copy -q --src-tls-verify=false --dest-tls-verify=false \
			"docker://$1" "docker://$2" && return 0
		sleep 1
	done
	echo "FATAL: cannot copy $1 to $2" >&2
	exit 1
}
