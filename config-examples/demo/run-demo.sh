#!/usr/bin/env bash
# run-demo.sh - set everything up on a fresh Debian 12 machine and run a
# demo export: install packages, build and install tagexport, start a
# docker-registry on 127.0.0.1, commit this demo project into a git
# repository, and export its images.  Prints the exported references.
#   DEMO_PORT (default 5055)  registry port;  DEMO_KEEP=1 keeps it running.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
port=${DEMO_PORT:-5055}
reg=127.0.0.1:$port
work=$(mktemp -d /tmp/tagexport-demo.XXXXXX)

"$top/tests/deps.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTE_WERROR=OFF -DTE_CORE_MODULES= -DTE_SANITIZER= >/dev/null
cmake --build "$top/build" -j"$(nproc)" >/dev/null
cmake --install "$top/build" >/dev/null
echo "installed $(command -v tagexport)"

cat >"$work/registry.yml" <<YML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: $reg}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
cleanup() {
	[ -n "${DEMO_KEEP:-}" ] && { echo "registry left running on $reg (pid $registry_pid)"; return; }
	kill "$registry_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 50); do curl -fs "http://$reg/v2/" >/dev/null && break; sleep 0.1; done
curl -fs "http://$reg/v2/" >/dev/null || { cat "$work/registry.log"; exit 1; }
echo "registry on $reg"

# No registry outside is reachable: the base image is busybox, from scratch.
state=$work/state
mkdir -p "$work/base"
cp "$(command -v busybox)" "$work/base/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n' >"$work/base/Dockerfile"
printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$reg" >"$work/registries.conf"
b() { buildah --root "$state/buildah/root" --runroot "$state/buildah/run" --storage-driver vfs "$@"; }
b build --isolation chroot -q -t localhost/demo-base "$work/base" >/dev/null
CONTAINERS_REGISTRIES_CONF=$work/registries.conf b push -q --tls-verify=false \
	localhost/demo-base "docker://$reg/base/busybox:1" >/dev/null
echo "base image $reg/base/busybox:1"

# The demo project becomes a git repository with a release tag.
repo=$work/project
cp -r "$here" "$repo"
rm -f "$repo/run-demo.sh"
sed -i "s|@REGISTRY@|$reg|g" "$repo/werf.yaml"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=demo -c user.email=demo@example.com commit -qm "demo project"
git -C "$repo" -c user.name=demo -c user.email=demo@example.com tag -a v1.0.0 -m "demo release"

echo "exporting..."
tagexport export --dir "$repo" --commit v1.0.0 --state-dir "$state" \
	--repo "$reg/demo/stages" \
	--tag "$reg/demo/%image%:latest" \
	--tag "$reg/demo/%image%:%git_tag%" \
	--add-label org.opencontainers.image.source=https://example.com/demo \
	--report-path "$work/report.json"
echo
echo "labels of $reg/demo/api:v1.0.0 (no werf* labels):"
skopeo inspect --tls-verify=false "docker://$reg/demo/api:v1.0.0" | jq .Labels
