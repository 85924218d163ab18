#!/usr/bin/env bash
# Multi-platform images: `platform: [linux/amd64, linux/arm64]` (here from
# the meta build.platform) builds one image per platform and stores an
# index under the content-based tag; export relabels every child, pushes
# the children by digest and then the index under the tag, keeping each
# entry's platform.  FROM scratch + COPY, so foreign architectures need no
# emulation.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git jq curl openssl sha256sum

LIST=application/vnd.docker.distribution.manifest.list.v2+json
OCI_INDEX=application/vnd.oci.image.index.v1+json

start_registry REG
start_registry REG2
STATE="$TE_TMP/state"

proj="$TE_TMP/project"
mkdir -p "$proj/files"
git init -q -b main "$proj"
write_config() {
	cat >"$proj/werf.yaml" <<YAML
project: multi
configVersion: 1
build:
  platform: [$1]
---
image: app
dockerfile: Dockerfile
---
image: armonly
dockerfile: Dockerfile
platform: [linux/arm64]
YAML
}
write_config "linux/arm64, linux/amd64"
printf 'FROM scratch\nCOPY files /files\n' >"$proj/Dockerfile"
echo 'hello from every platform' >"$proj/files/hello.txt"
git_commit_all "$proj" "first"

run_export() {
	"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" \
		--repo "$REG/multi/stages" "$@"
}
raw() { skopeo inspect --raw --tls-verify=false "docker://$1"; }
# inspect_arch ARCH REF: the image of one platform, as skopeo picks it.
inspect_arch() {
	skopeo --override-os linux --override-arch "$1" inspect \
		--tls-verify=false "docker://$2"
}
werf_labels() { jq '[.Labels // {} | keys[] | select(startswith("werf"))] | length'; }

out=$(run_export --tag "$REG2/out/%image%:v1" --tag "$REG/same/%image%:v1" \
	--add-label org.example.added=yes \
	--report-path "$TE_TMP/report.json" 2>"$TE_TMP/err1")
rc=$?
check "export exits 0" test "$rc" -eq 0 || cat "$TE_TMP/err1" >&2
check "prints four references" test "$(grep -c '@sha256:' <<<"$out")" -eq 4

# The index in the target: two entries with their platforms, by digest.
for target in "$REG2/out/app:v1" "$REG/same/app:v1"; do
	index=$(raw "$target")
	check "$target: Docker manifest list" test "$(jq -r .mediaType <<<"$index")" = "$LIST"
	check "$target: two entries" test "$(jq '.manifests | length' <<<"$index")" -eq 2
	check "$target: platforms kept, sorted" test \
		"$(jq -c '[.manifests[].platform | "\(.os)/\(.architecture)"]' <<<"$index")" = \
		'["linux/amd64","linux/arm64"]'
	check "$target: printed digest is the index digest" grep -qx \
		"$target@sha256:$(printf '%s' "$index" | sha256sum | cut -d' ' -f1)" <<<"$out"
	for arch in amd64 arm64; do
		info=$(inspect_arch "$arch" "$target")
		check "$target $arch: child found by digest" test "$(jq -r .Architecture <<<"$info")" = "$arch"
		check "$target $arch: no werf labels" test "$(werf_labels <<<"$info")" -eq 0
		check "$target $arch: added label" test "$(jq -r '.Labels["org.example.added"]' <<<"$info")" = yes
	done
done

# The stages repo: an index under the content tag over per-platform tags.
tag=$(jq -r .images.app.content_based_tag "$TE_TMP/report.json")
check "content tag is 56 hex" grep -qE '^[0-9a-f]{56}$' <<<"$tag"
sindex=$(raw "$REG/multi/stages:$tag")
check "stages index is a Docker manifest list" test "$(jq -r .mediaType <<<"$sindex")" = "$LIST"
check "stages index lists two platforms" test \
	"$(jq -c '[.manifests[].platform | "\(.os)/\(.architecture)"]' <<<"$sindex")" = \
	'["linux/amd64","linux/arm64"]'
samd=$(inspect_arch amd64 "$REG/multi/stages:$tag")
sarm=$(inspect_arch arm64 "$REG/multi/stages:$tag")
t_amd=$(jq -r '.Labels["werf-stage-content-digest"]' <<<"$samd")
t_arm=$(jq -r '.Labels["werf-stage-content-digest"]' <<<"$sarm")
check "stages children keep werf labels" test "$(jq -r .Labels.werf <<<"$sarm")" = multi
check "per-platform tags differ" test "$t_amd" != "$t_arm"
check "per-platform images stored under their tags" test \
	"$(raw "$REG/multi/stages:$t_arm" | sha256sum | cut -d' ' -f1)" = \
	"$(jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest' <<<"$sindex" | cut -d: -f2)"
check "content tag = sha3-224 over per-platform tags in platform order" test \
	"$(printf '%s:::%s' "$t_amd" "$t_arm" | openssl dgst -sha3-224 -r | cut -d' ' -f1)" = "$tag"
check "exported layers are the stages layers" test \
	"$(inspect_arch arm64 "$REG2/out/app:v1" | jq -c .Layers)" = "$(jq -c .Layers <<<"$sarm")"
layer=$(inspect_arch arm64 "$REG2/out/app:v1" | jq -r '.Layers[-1]')
check "arm64 layer holds the committed file" bash -c '
	curl -fsSL "http://$1/v2/out/app/blobs/$2" | tar -xzO files/hello.txt 2>/dev/null |
		grep -qx "hello from every platform"' _ "$REG2" "$layer"

# The report lists the children.
check "report: two platforms" test \
	"$(jq -c '[.images.app.platforms[].platform]' "$TE_TMP/report.json")" = '["linux/amd64","linux/arm64"]'
check "report: child digests are the index entries" test \
	"$(jq -c '[.images.app.platforms[].digest]' "$TE_TMP/report.json")" = \
	"$(raw "$REG2/out/app:v1" | jq -c '[.manifests[].digest]')"

# One platform stays a plain image manifest (werf-export.md 4.6).
single=$(raw "$REG2/out/armonly:v1")
check "single platform: image manifest" test \
	"$(jq -r .mediaType <<<"$single")" = application/vnd.docker.distribution.manifest.v2+json
check "single platform: arm64 config" test \
	"$(inspect_arch arm64 "$REG2/out/armonly:v1" | jq -r .Architecture)" = arm64
check "single platform: no platforms in report" test \
	"$(jq '.images.armonly | has("platforms")' "$TE_TMP/report.json")" = false

# A re-run changes nothing and builds nothing.
out2=$(run_export --tag "$REG2/out/%image%:v1" --tag "$REG/same/%image%:v1" \
	--add-label org.example.added=yes \
	--report-path "$TE_TMP/report2.json" 2>"$TE_TMP/err2")
check "re-run exits 0" test $? -eq 0
check "re-run yields identical digests" test "$out" = "$out2"
check "re-run builds nothing" test "$(jq '[.images[].built] | any' "$TE_TMP/report2.json")" = false

# The order of platforms in werf.yaml does not matter.
write_config "linux/amd64, linux/arm64"
git_commit_all "$proj" "reordered"
run_export --tag "$REG2/re/%image%:v1" --report-path "$TE_TMP/r3.json" >/dev/null 2>&1
check "reordered platforms: same content tag" test "$(jq -r .images.app.content_based_tag "$TE_TMP/r3.json")" = "$tag"
check "reordered platforms: nothing built" test "$(jq '[.images[].built] | any' "$TE_TMP/r3.json")" = false

# A new platform builds only itself; the index moves.
write_config "linux/amd64, linux/arm64, linux/arm/v7"
git_commit_all "$proj" "arm/v7"
run_export --tag "$REG2/v7/%image%:v1" --report-path "$TE_TMP/r4.json" >/dev/null 2>"$TE_TMP/err4"
check "third platform: export exits 0" test $? -eq 0
check "third platform: new content tag" test "$(jq -r .images.app.content_based_tag "$TE_TMP/r4.json")" != "$tag"
check "third platform: built" test "$(jq -r .images.app.built "$TE_TMP/r4.json")" = true
check "third platform: the others were reused" test \
	"$(grep -cE '^tagexport: image app \((linux/amd64|linux/arm64)\): found in repo$' "$TE_TMP/err4")" -eq 2
check "third platform: one build" test "$(grep -cE '^tagexport: image app \(linux/arm/v7\): building$' "$TE_TMP/err4")" -eq 1
check "third platform: arm/v7 entry with variant" test \
	"$(raw "$REG2/v7/app:v1" | jq -c '[.manifests[].platform | "\(.os)/\(.architecture)/\(.variant // "")"]')" = \
	'["linux/amd64/","linux/arm/v7","linux/arm64/"]'
write_config "linux/amd64, linux/arm64"
git_commit_all "$proj" "back to two"

# Bad platform lists are configuration errors; nothing is pushed.
before=$(registry_catalog "$REG")
write_config "linux, linux/amd64"
git_commit_all "$proj" "bad platform"
run_export --tag "$REG/bad/%image%:v1" >/dev/null 2>"$TE_TMP/err5"
check "malformed platform: exit 2" test $? -eq 2
check "malformed platform: says why" grep -q 'platform "linux" is not OS/ARCH' "$TE_TMP/err5"
write_config "linux/amd64, linux/amd64"
git_commit_all "$proj" "duplicate platform"
run_export --tag "$REG/bad/%image%:v1" >/dev/null 2>"$TE_TMP/err6"
check "duplicate platform: exit 2" test $? -eq 2
check "duplicate platform: says why" grep -q 'listed twice' "$TE_TMP/err6"
check "bad platforms push nothing" test "$(registry_catalog "$REG")" = "$before"
write_config "linux/amd64, linux/arm64"
git_commit_all "$proj" "good again"

# A stages index with an attestation entry (as BuildKit writes), stored
# as an OCI index: the export keeps the OCI media type, the platforms and
# annotations, and drops the attestation, which would vouch for digests
# no longer in the index.
put_blob() { # REPO FILE: prints the digest
	local d loc sep
	d="sha256:$(sha256sum "$2" | cut -d' ' -f1)"
	loc=$(curl -fsS -X POST -D - -o /dev/null "http://$REG/v2/$1/blobs/uploads/" |
		tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
	case $loc in http*) ;; *) loc="http://$REG$loc" ;; esac
	case $loc in *\?*) sep='&' ;; *) sep='?' ;; esac
	curl -fsS -X PUT -H 'Content-Type: application/octet-stream' \
		--data-binary @"$2" "$loc${sep}digest=$d" >/dev/null && echo "$d"
}
amd_digest=$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' <<<"$sindex")
printf '{"_type":"https://in-toto.io/Statement/v0.1"}' >"$TE_TMP/att.json"
printf '{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
	"$(put_blob multi/stages "$TE_TMP/att.json")" >"$TE_TMP/att-config.json"
att_layer=$(put_blob multi/stages "$TE_TMP/att.json")
att_config=$(put_blob multi/stages "$TE_TMP/att-config.json")
jq -cn --arg c "$att_config" --argjson cs "$(stat -c %s "$TE_TMP/att-config.json")" \
	--arg l "$att_layer" --argjson ls "$(stat -c %s "$TE_TMP/att.json")" \
	'{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
	  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
	  layers: [{mediaType: "application/vnd.in-toto+json", digest: $l, size: $ls}]}' |
	tr -d '\n' >"$TE_TMP/att-manifest.json"
att_digest="sha256:$(sha256sum "$TE_TMP/att-manifest.json" | cut -d' ' -f1)"
curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
	--data-binary @"$TE_TMP/att-manifest.json" \
	"http://$REG/v2/multi/stages/manifests/$att_digest" >/dev/null
jq -c --arg d "$att_digest" --argjson s "$(stat -c %s "$TE_TMP/att-manifest.json")" \
	--arg ref "$amd_digest" --arg t "$OCI_INDEX" \
	'.mediaType = $t |
	 .manifests[0].annotations = {"org.example.entry": "amd"} |
	 .manifests += [{mediaType: "application/vnd.oci.image.manifest.v1+json",
	   digest: $d, size: $s, platform: {architecture: "unknown", os: "unknown"},
	   annotations: {"vnd.docker.reference.digest": $ref,
	     "vnd.docker.reference.type": "attestation-manifest"}}]' <<<"$sindex" |
	tr -d '\n' >"$TE_TMP/oci-index.json"
check "stages index replaced by an OCI index with an attestation" curl -fsS -X PUT \
	-H "Content-Type: $OCI_INDEX" --data-binary @"$TE_TMP/oci-index.json" \
	-o /dev/null "http://$REG/v2/multi/stages/manifests/$tag"
out7=$(run_export --tag "$REG2/att/%image%:v1" --add-label org.example.added=yes app 2>"$TE_TMP/err7")
check "attestation: export exits 0" test $? -eq 0 || cat "$TE_TMP/err7" >&2
aindex=$(raw "$REG2/att/app:v1")
check "attestation: OCI media type kept" test "$(jq -r .mediaType <<<"$aindex")" = "$OCI_INDEX"
check "attestation: dropped" test "$(jq '.manifests | length' <<<"$aindex")" -eq 2
check "attestation: entry annotations kept" test \
	"$(jq -r '.manifests[0].annotations["org.example.entry"]' <<<"$aindex")" = amd
check "attestation: children are the relabelled ones" test \
	"$(jq -c '[.manifests[].digest]' <<<"$aindex")" = "$(raw "$REG2/out/app:v1" | jq -c '[.manifests[].digest]')"

# A stages index that misstates a child's size is refused, nothing pushed.
jq -c '.manifests[1].size += 1' "$TE_TMP/oci-index.json" | tr -d '\n' >"$TE_TMP/bad-index.json"
if curl -fsS -X PUT -H "Content-Type: $OCI_INDEX" --data-binary @"$TE_TMP/bad-index.json" \
	-o /dev/null "http://$REG/v2/multi/stages/manifests/$tag"; then
	run_export --tag "$REG2/lie/%image%:v1" app >/dev/null 2>"$TE_TMP/err8"
	check "lying index: export fails" test $? -ne 0
	check "lying index: says why" grep -q 'does not match its index entry' "$TE_TMP/err8"
	check "lying index: nothing pushed" bash -c '! curl -fsS "http://$1/v2/lie/app/tags/list" >/dev/null 2>&1' _ "$REG2"
else
	fail "the registry refused the lying index"
fi

te_finish
