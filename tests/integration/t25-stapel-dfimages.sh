#!/usr/bin/env bash
# Stapel images and Dockerfile images using each other (issue 12): a
# Stapel image FROM a Dockerfile image, importing from one, with its
# dependencies' variables; a Dockerfile image whose build arg is a Stapel
# image's name; a Stapel image built for two platforms (shell commands
# for arm64 under qemu-user) with an index under its content tag,
# importing from a multi-platform Dockerfile image the child of its own
# platform; and what is refused before any build.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl openssl bash-static

# arm64 shell commands need qemu-user in binfmt_misc and an arm64 base
# (tests/deps.sh sets up both).
ARM64_BUSYBOX=${TE_ARM64_BUSYBOX:-/usr/local/lib/tagexport/busybox-arm64}
if ! grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null ||
	[ ! -x "$ARM64_BUSYBOX" ]; then
	if [ "${TE_REQUIRE_INTEGRATION:-}" = 1 ]; then
		echo "FATAL: no arm64 emulation or arm64 busybox (tests/deps.sh)" >&2
		exit 1
	fi
	echo "SKIP: no arm64 emulation or arm64 busybox (tests/deps.sh)" >&2
	exit 77
fi

LIST=application/vnd.docker.distribution.manifest.list.v2+json
start_registry REG
make_base_image "$REG/base/busybox:1"

# A two-platform busybox base: an index of amd64 and arm64 images.
mctx="$TE_TMP/multi-ctx"
mkdir -p "$mctx"
cp "$(command -v busybox)" "$mctx/busybox-amd64"
cp "$ARM64_BUSYBOX" "$mctx/busybox-arm64"
printf 'FROM scratch\nARG TARGETARCH\nCOPY busybox-$TARGETARCH /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n' >"$mctx/Dockerfile"
te_buildah build --isolation chroot -q --platform linux/amd64,linux/arm64 \
	--manifest localhost/te-multi "$mctx" >/dev/null &&
	te_buildah manifest push -q --all --tls-verify=false localhost/te-multi \
		"docker://$REG/base/multi:1" >/dev/null || {
	echo "FATAL: cannot build the two-platform base image" >&2
	exit 1
}

proj="$TE_TMP/project"
git init -q -b main "$proj"
mkdir -p "$proj/files"
echo hello >"$proj/files/hello.txt"
cat >"$proj/Dockerfile.df" <<EOF
FROM $REG/base/busybox:1
RUN echo made-by-df > /df.txt && mkdir -p /out && echo keep > /out/keep.txt && echo drop > /out/drop.txt
EOF
cat >"$proj/Dockerfile.dep" <<'EOF'
ARG BASE
FROM $BASE
RUN cat /stapel.txt > /saw-stapel.txt
EOF
cat >"$proj/Dockerfile.dfm" <<EOF
FROM $REG/base/multi:1
RUN uname -m > /df-arch
EOF
cat >"$proj/werf.yaml" <<YAML
project: dfimg
configVersion: 1
---
image: df
dockerfile: Dockerfile.df
---
image: app
fromImage: df
shell:
  install:
  - cat /df.txt > /app-saw-df.txt
  setup:
  - echo "\$DF_NAME" > /dep-name
  - echo "\$DF_DIGEST" > /dep-digest
  - echo "\$DF_REPO" > /dep-repo
  - echo "\$DF_TAG" > /dep-tag
dependencies:
- image: df
  before: setup
  imports:
  - type: ImageName
    targetEnv: DF_NAME
  - type: ImageDigest
    targetEnv: DF_DIGEST
  - type: ImageRepo
    targetEnv: DF_REPO
  - type: ImageTag
    targetEnv: DF_TAG
---
image: imp
from: $REG/base/busybox:1
import:
- image: df
  add: /out
  to: /opt/out
  before: install
- image: df
  add: /out
  to: /opt/only
  includePaths: [keep.txt]
  after: install
shell:
  install:
  - ls /opt/out > /install-saw
---
image: sbase
from: $REG/base/busybox:1
shell:
  install:
  - echo from-stapel > /stapel.txt
---
image: uses-stapel
dockerfile: Dockerfile.dep
dependencies:
- image: sbase
  imports:
  - type: ImageName
    targetBuildArg: BASE
---
image: dfm
dockerfile: Dockerfile.dfm
platform: [linux/amd64, linux/arm64]
---
image: multi
from: $REG/base/multi:1
platform: [linux/arm64, linux/amd64]
git:
- add: /files
  to: /files
import:
- image: dfm
  add: /df-arch
  to: /from-dfm
  before: install
shell:
  install:
  - uname -m > /arch
  - cat /files/hello.txt /from-dfm > /combined
docker:
  ENV:
    MULTI: "yes"
---
image: native-on-dfm
from: $REG/base/busybox:1
import:
- image: dfm
  add: /df-arch
  to: /from-dfm
  before: install
---
image: odd
fromImage: dfm
platform: [linux/s390x]
---
image: nowasm
from: $REG/base/busybox:1
platform: [linux/amd64, linux/wasm]
shell:
  install: [true]
YAML
git_commit_all "$proj" "first"

run_export() {
	"$TAGEXPORT" export --dir "$proj" --state-dir "${STATE:-$TE_TMP/state}" \
		--repo "$REG/dfimg/stages" --tag "$REG/out/%image%:v1" "$@"
}
raw() { skopeo inspect --raw --tls-verify=false "docker://$1"; }
inspect_arch() {
	skopeo --override-os linux --override-arch "$1" inspect --tls-verify=false "docker://$2"
}
# arch_file ARCH REF PATH: the whole of PATH in the ARCH image of REF,
# from the last layer holding it.
arch_file() {
	local d l c last=
	d=$(mktemp -d "$TE_TMP/img.XXXXXX")
	skopeo --override-os linux --override-arch "$1" copy -q --src-tls-verify=false \
		"docker://$2" "dir:$d" >/dev/null || return 1
	for l in $(jq -r '.layers[].digest' "$d/manifest.json"); do
		if c=$(tar -xzOf "$d/${l#sha256:}" "$3" 2>/dev/null); then last=$c; fi
	done
	printf '%s\n' "$last"
}

# df, dfm and sbase are not selected: built because the others use them.
IMAGES=(app imp uses-stapel multi native-on-dfm)
out=$(run_export --parallel-tasks-limit 2 --report-path "$TE_TMP/r1.json" "${IMAGES[@]}" 2>"$TE_TMP/err1")
rc=$?
check "export exits 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || cat "$TE_TMP/err1" >&2
check "prints five references" test "$(grep -c '@sha256:' <<<"$out")" -eq 5

# fromImage: a Dockerfile image; its shell stage reads the file df made.
check "fromImage df: install read df's file" test \
	"$(image_file "$REG/out/app:v1" app-saw-df.txt)" = made-by-df
dep_name=$(image_file "$REG/out/app:v1" dep-name)
dep_repo=$(image_file "$REG/out/app:v1" dep-repo)
dep_tag=$(image_file "$REG/out/app:v1" dep-tag)
check "dependencies: ImageRepo is the stages repo" test "$dep_repo" = "$REG/dfimg/stages"
check "dependencies: ImageName is repo:tag" test "$dep_name" = "$dep_repo:$dep_tag"
check "dependencies: ImageTag is 56 hex" grep -qE '^[0-9a-f]{56}$' <<<"$dep_tag"
check "dependencies: ImageName is df's image" test "$(image_file "$dep_name" df.txt)" = made-by-df
check "dependencies: ImageDigest is its manifest digest" test \
	"$(image_file "$REG/out/app:v1" dep-digest)" = "$(skopeo_inspect "$dep_name" | jq -r .Digest)"
df_layers=$(skopeo_inspect "$dep_name" | jq -c .Layers)
check "app is built on df's layers" test \
	"$(skopeo_inspect "$REG/out/app:v1" | jq -c --argjson n "$(jq length <<<"$df_layers")" '.Layers[:$n]')" = "$df_layers"

# import from a Dockerfile image, whole and filtered.
check "import from df: keep.txt" test "$(image_file "$REG/out/imp:v1" opt/out/keep.txt)" = keep
check "import from df: drop.txt" test "$(image_file "$REG/out/imp:v1" opt/out/drop.txt)" = drop
check "import before install: seen by install" test \
	"$(arch_file amd64 "$REG/out/imp:v1" install-saw | tr '\n' ' ')" = "drop.txt keep.txt "
check "filtered import from df: included file" test "$(image_file "$REG/out/imp:v1" opt/only/keep.txt)" = keep
check "filtered import from df: other file left out" test -z "$(image_file "$REG/out/imp:v1" opt/only/drop.txt)"

# A Dockerfile image FROM a Stapel image (its ImageName build arg).
check "Dockerfile image on a Stapel image" test \
	"$(image_file "$REG/out/uses-stapel:v1" saw-stapel.txt)" = from-stapel

# Two platforms: an index under the user's tag and under the content tag.
index=$(raw "$REG/out/multi:v1")
check "multi: Docker manifest list" test "$(jq -r .mediaType <<<"$index")" = "$LIST"
check "multi: amd64 and arm64, sorted" test \
	"$(jq -c '[.manifests[].platform | "\(.os)/\(.architecture)"]' <<<"$index")" = \
	'["linux/amd64","linux/arm64"]'
for pair in amd64:x86_64 arm64:aarch64; do
	arch=${pair%%:*} machine=${pair#*:}
	info=$(inspect_arch "$arch" "$REG/out/multi:v1")
	check "multi $arch: config architecture" test "$(jq -r .Architecture <<<"$info")" = "$arch"
	check "multi $arch: docker ENV" grep -qx MULTI=yes <<<"$(jq -r '.Env[]' <<<"$info")"
	check "multi $arch: no werf labels" test \
		"$(jq '[.Labels // {} | keys[] | select(startswith("werf"))] | length' <<<"$info")" -eq 0
	check "multi $arch: shell ran for $machine" test \
		"$(arch_file "$arch" "$REG/out/multi:v1" arch)" = "$machine"
	check "multi $arch: git file and dfm's $arch child imported" test \
		"$(arch_file "$arch" "$REG/out/multi:v1" combined | tr '\n' ' ')" = "hello $machine "
done
tag=$(jq -r '.images.multi.content_based_tag' "$TE_TMP/r1.json")
sindex=$(raw "$REG/dfimg/stages:$tag")
check "multi: stages index under the content tag" test \
	"$(jq -c '[.manifests[].platform.architecture]' <<<"$sindex")" = '["amd64","arm64"]'
t_amd=$(inspect_arch amd64 "$REG/dfimg/stages:$tag" | jq -r '.Labels["werf-stage-content-digest"]')
t_arm=$(inspect_arch arm64 "$REG/dfimg/stages:$tag" | jq -r '.Labels["werf-stage-content-digest"]')
check "multi: per-platform stages differ" test "$t_amd" != "$t_arm"
check "multi: content tag = sha3-224 over per-platform tags" test \
	"$(printf '%s:::%s' "$t_amd" "$t_arm" | openssl dgst -sha3-224 -r | cut -d' ' -f1)" = "$tag"
check "multi: exported children are the index entries" test \
	"$(jq -c '[.images.multi.platforms[].digest]' "$TE_TMP/r1.json")" = "$(jq -c '[.manifests[].digest]' <<<"$index")"

# A native Stapel image importing from dfm takes its amd64 child.
check "native image: dfm's amd64 child" test \
	"$(image_file "$REG/out/native-on-dfm:v1" from-dfm)" = x86_64

# Again, with a fresh state dir: everything is in the stages repo.
out2=$(STATE="$TE_TMP/state2" run_export --report-path "$TE_TMP/r2.json" "${IMAGES[@]}" 2>"$TE_TMP/err2")
rc=$?
check "re-run exits 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || cat "$TE_TMP/err2" >&2
check "re-run: same references" test "$out" = "$out2"
check "re-run: nothing built" test "$(jq '[.images[].built] | any' "$TE_TMP/r2.json")" = false

# Refused before any build, nothing pushed.
before=$(registry_catalog "$REG")
run_export odd >/dev/null 2>"$TE_TMP/err3"
check "platform missing in the used image: exit 2" test $? -eq 2
check "platform missing in the used image: says which" grep -q \
	'werf.yaml:[0-9]*: image "odd" (linux/s390x): fromImage "dfm": is built for linux/amd64, linux/arm64, not linux/s390x' \
	"$TE_TMP/err3"
run_export nowasm >/dev/null 2>"$TE_TMP/err4"
check "no emulation: exit 2" test $? -eq 2
check "no emulation: says which" grep -q \
	'werf.yaml:[0-9]*: image "nowasm": shell commands for linux/wasm run wasm binaries; this machine runs amd64, arm64.*(emulation' \
	"$TE_TMP/err4"
check "refusals push nothing" test "$(registry_catalog "$REG")" = "$before"

te_finish
