#!/usr/bin/env bash
# werf.yaml keys of Dockerfile images beyond dockerfile/context/args:
# imageSpec (merged with the meta build.imageSpec) is in the stages image
# pushed under the content tag and in the exported image, werf labels
# stripped there and imageSpec labels kept; the content tag follows the
# imageSpec; network "none" and addHost reach RUN; contextAddFiles,
# network "host", a bad /regex/, an ssh key path in werf.yaml are refused
# with werf.yaml:LINE before anything is pushed; ssh: default with
# --ssh-key gives RUN an agent and leaves the key out of the image.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl ssh-keygen

start_registry REG
make_base_image "$REG/base/busybox:1"
STATE="$TE_TMP/state"

proj="$TE_TMP/project"
mkdir -p "$proj"
git init -q -b main "$proj"
cat >"$proj/Dockerfile" <<DF
FROM $REG/base/busybox:1
RUN cat /etc/hosts > /hosts.txt
LABEL beta=1 experimental.a=2 experimental.b=3 keep.me=4
ENV DEBUG=1 TEMP_A=x TEMP_B=y BASE=/opt
VOLUME /tmp /data
EXPOSE 9999
USER 65534
WORKDIR /old
CMD ["old-cmd"]
DF
write_werf_yaml() {
	cat >"$proj/werf.yaml" <<YAML
project: keys-demo
configVersion: 1
build:
  imageSpec:
    author: "Global <global@example.com>"
    config:
      labels:
        global-label: "g"
        shared: "from-global"
      removeLabels:
        - keep.me.not
---
image: app
dockerfile: Dockerfile
addHost:
  - "db.internal:10.1.2.3"
imageSpec:
  clearHistory: true
  config:
    labels:
      shared: "from-image"
      project-%project%: "%image%-image"
      version: "$1"
    removeLabels:
      - beta
      - /experimental\..*/
    env:
      PATH: "\${PATH}:/app/bin"
      NODE_ENV: production
    removeEnv:
      - DEBUG
      - /(?i)temp_\\w+/
    expose: ["8080", "443/udp"]
    volumes: ["/config"]
    removeVolumes: ["/tmp"]
    user: app
    workingDir: /app
    stopSignal: SIGTERM
    entrypoint: ["/bin/sh", "-c"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 30s
      retries: 3
YAML
}
write_werf_yaml v1
git_commit_all "$proj" "imageSpec"

run_export() {
	"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" \
		--repo "$REG/keys/stages" "$@"
}

run_export --tag "$REG/keys/%image%:v1" >"$TE_TMP/out1" 2>"$TE_TMP/err1"
check "export with imageSpec exits 0" test $? -eq 0
stage_tags() { skopeo list-tags --tls-verify=false "docker://$REG/keys/stages" | jq -r '.Tags[]'; }
stages=$(stage_tags | head -1)
check "one stages tag" test -n "$stages"
skopeo inspect --tls-verify=false --raw --config "docker://$REG/keys/stages:$stages" >"$TE_TMP/stages.json"
skopeo inspect --tls-verify=false --raw --config "docker://$REG/keys/app:v1" >"$TE_TMP/final.json"
sj() { jq -r "$1" "$TE_TMP/stages.json"; }
fj() { jq -r "$1" "$TE_TMP/final.json"; }

check "stages image: imageSpec label" test "$(sj '.config.Labels.version')" = v1
check "stages image: %project%/%image% expanded" test "$(sj '.config.Labels["project-keys-demo"]')" = app-image
check "stages image: global label merged" test "$(sj '.config.Labels["global-label"]')" = g
check "stages image: the image's label wins over the global one" test "$(sj '.config.Labels.shared')" = from-image
check "stages image: removeLabels by name" test "$(sj '.config.Labels.beta')" = null
check "stages image: removeLabels by /regex/" test "$(sj '[.config.Labels | keys[] | select(startswith("experimental"))] | length')" = 0
check "stages image: other labels kept" test "$(sj '.config.Labels["keep.me"]')" = 4
check "stages image: werf labels kept (essential)" test "$(sj '.config.Labels.werf')" = keys-demo
check "stages image: werf-stage-content-digest is the content tag" test "$(sj '.config.Labels["werf-stage-content-digest"]')" = "$stages"
check "stages image: author (global)" test "$(sj '.author')" = "Global <global@example.com>"
check "stages image: history cleared" test "$(sj '.history | length')" = 0
check "stages image: env removed by name and /regex/" test "$(sj '[.config.Env[] | select(test("^(DEBUG|TEMP_)"))] | length')" = 0
check "stages image: env kept" test "$(sj '[.config.Env[] | select(. == "BASE=/opt")] | length')" = 1
check "stages image: env expanded against the image's" bash -c '[[ $1 == PATH=/*:/app/bin ]]' _ "$(sj '.config.Env[] | select(startswith("PATH="))')"
check "stages image: new env" test "$(sj '[.config.Env[] | select(. == "NODE_ENV=production")] | length')" = 1
check "stages image: expose replaced" test "$(sj '.config.ExposedPorts | keys | join(",")')" = "443/udp,8080/tcp"
check "stages image: volumes" test "$(sj '.config.Volumes | keys | join(",")')" = "/config,/data"
check "stages image: user" test "$(sj '.config.User')" = app
check "stages image: workingDir" test "$(sj '.config.WorkingDir')" = /app
check "stages image: stopSignal" test "$(sj '.config.StopSignal')" = SIGTERM
check "stages image: entrypoint" test "$(sj '.config.Entrypoint | join(" ")')" = "/bin/sh -c"
check "stages image: entrypoint without cmd clears cmd" test "$(sj '.config.Cmd')" = null
check "stages image: healthcheck" test "$(sj '[.config.Healthcheck.Test[1], .config.Healthcheck.Interval, .config.Healthcheck.Retries] | join(" ")')" = "true 30000000000 3"

check "export: werf labels stripped" test "$(fj '[.config.Labels | keys[] | select(startswith("werf"))] | length')" = 0
check "export: imageSpec labels kept" test "$(fj '.config.Labels.version + .config.Labels["global-label"]')" = v1g
check "export: env kept" test "$(fj '[.config.Env[] | select(. == "NODE_ENV=production")] | length')" = 1

# addHost reached RUN: the stages image holds /etc/hosts as RUN saw it.
mkdir -p "$TE_TMP/layers"
skopeo copy -q --src-tls-verify=false "docker://$REG/keys/stages:$stages" "dir:$TE_TMP/layers" >/dev/null
found=0
for blob in "$TE_TMP/layers"/*; do
	[ "$(basename "$blob")" = manifest.json ] && continue
	if tar -xzOf "$blob" hosts.txt 2>/dev/null | grep -q '10.1.2.3[[:space:]]*db.internal'; then
		found=1
	fi
done
check "addHost: RUN saw db.internal in /etc/hosts" test "$found" -eq 1

# The content tag covers the imageSpec: one changed label, one new tag.
write_werf_yaml v2
git_commit_all "$proj" "imageSpec v2"
run_export --tag "$REG/keys/%image%:v2" >"$TE_TMP/out2" 2>"$TE_TMP/err2"
check "export after an imageSpec change exits 0" test $? -eq 0
check "a changed imageSpec is a new content tag" test "$(stage_tags | wc -l)" = 2
check "the new image has the new label" test "$(skopeo inspect --tls-verify=false --raw --config "docker://$REG/keys/app:v2" | jq -r .config.Labels.version)" = v2

# network: none: RUN has no network interface but loopback.
proj2="$TE_TMP/net"
mkdir -p "$proj2"
git init -q -b main "$proj2"
# /proc/net/dev lists the interfaces of the reader's network namespace.
cat >"$proj2/Dockerfile" <<DF
FROM $REG/base/busybox:1
RUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' ' > /net.txt
DF
printf 'project: net\nconfigVersion: 1\n---\nimage: app\ndockerfile: Dockerfile\nnetwork: none\n' >"$proj2/werf.yaml"
git_commit_all "$proj2" net
"$TAGEXPORT" export --dir "$proj2" --state-dir "$STATE" --repo "$REG/net/stages" \
	--tag "$REG/net/app:v1" >"$TE_TMP/out3" 2>"$TE_TMP/err3"
check "network: none exports" test $? -eq 0
rm -rf "$TE_TMP/layers2"
skopeo copy -q --src-tls-verify=false "docker://$REG/net/app:v1" "dir:$TE_TMP/layers2" >/dev/null
nets=""
for blob in "$TE_TMP/layers2"/*; do
	n=$(tar -xzOf "$blob" net.txt 2>/dev/null) && nets=$n
done
check "network: none: RUN saw only lo (got '$nets')" test "$nets" = "lo "
before=$(registry_catalog "$REG")
"$TAGEXPORT" export --dir "$proj2" --state-dir "$STATE" --repo "$REG/net2/stages" \
	--tag "$REG/net2/app:v1" --isolation chroot >/dev/null 2>"$TE_TMP/err4"
check "network: none with chroot isolation: exit 2" test $? -eq 2
check "network: none with chroot isolation: werf.yaml:LINE" grep -q \
	'werf.yaml:4: image "app": network "none" cannot be enforced with chroot isolation' "$TE_TMP/err4"
check "network: none with chroot isolation: nothing pushed" test "$(registry_catalog "$REG")" = "$before"

# Refusals: werf.yaml:LINE, exit 2, nothing pushed.
refuse() {
	local what=$1 yaml=$2 want=$3 dir="$TE_TMP/refuse-$RANDOM"
	mkdir -p "$dir"
	git init -q -b main "$dir"
	printf 'FROM scratch\n' >"$dir/Dockerfile"
	printf '%s' "$yaml" >"$dir/werf.yaml"
	git_commit_all "$dir" refuse
	before=$(registry_catalog "$REG")
	"$TAGEXPORT" export --dir "$dir" --state-dir "$STATE" --repo "$REG/refuse/stages" \
		--tag "$REG/refuse/app:v1" >/dev/null 2>"$dir.err"
	rc=$?
	check "$what: exit 2" test "$rc" -eq 2
	check "$what: error names werf.yaml:LINE and why" grep -q "$want" "$dir.err"
	check "$what: nothing pushed" test "$(registry_catalog "$REG")" = "$before"
}
head='project: r\nconfigVersion: 1\n---\nimage: app\ndockerfile: Dockerfile\n'
refuse "contextAddFiles" "$(printf "$head")
contextAddFiles: [a.txt]
" "werf.yaml:6: contextAddFiles is refused: the build context is the commit's tree"
refuse "network host" "$(printf "$head")
network: host
" 'werf.yaml:6: network "host" is refused'
refuse "bad regex" "$(printf "$head")
imageSpec:
  config:
    removeLabels: ['/a(/']
" "werf.yaml:8: removeLabels: invalid regular expression /a(/"
refuse "regex Go does not take" "$(printf "$head")
imageSpec:
  config:
    removeEnv: ['/(?z)x/']
" 'werf.yaml:8: removeEnv: invalid regular expression /(?z)x/: error parsing regexp: invalid or unsupported Perl syntax'
refuse "global imageSpec takes only werf's global keys" "project: r
configVersion: 1
build:
  imageSpec:
    config:
      user: root
---
image: app
dockerfile: Dockerfile
" 'werf.yaml:6: unknown field "user" in "config"'
refuse "addHost without an ip" "$(printf "$head")
addHost: [db.internal]
" 'werf.yaml:6: invalid addHost "db.internal"'
refuse "ssh with a key path" "$(printf "$head")
ssh: default=/etc/ssh/ssh_host_ed25519_key
" 'werf.yaml:6: ssh "default=/etc/ssh/ssh_host_ed25519_key": a socket or key path in werf.yaml is refused'
SSH_AUTH_SOCK= refuse "ssh without an agent or key" "$(printf "$head")
ssh: default
" 'werf.yaml:6: image "app": ssh: no ssh agent or key is given to this export'

# ssh: default with --ssh-key: RUN --mount=type=ssh gets an agent socket;
# the key is in no layer or config of the image.
ssh-keygen -q -t ed25519 -N '' -C t18 -f "$TE_TMP/id_t18"
proj3="$TE_TMP/ssh"
mkdir -p "$proj3"
git init -q -b main "$proj3"
cat >"$proj3/Dockerfile" <<DF
FROM $REG/base/busybox:1
RUN --mount=type=ssh test -S "\$SSH_AUTH_SOCK" && echo agent > /ssh-ok
DF
printf 'project: sshp\nconfigVersion: 1\n---\nimage: app\ndockerfile: Dockerfile\nssh: default\n' >"$proj3/werf.yaml"
git_commit_all "$proj3" ssh
SSH_AUTH_SOCK= "$TAGEXPORT" export --dir "$proj3" --state-dir "$STATE" --repo "$REG/ssh/stages" \
	--tag "$REG/ssh/app:v1" --ssh-key "$TE_TMP/id_t18" >"$TE_TMP/out5" 2>"$TE_TMP/err5"
check "ssh: default with --ssh-key exports" test $? -eq 0
skopeo copy -q --src-tls-verify=false "docker://$REG/ssh/app:v1" "dir:$TE_TMP/layers3" >/dev/null
sshok="" keyleak=0
keyline=$(sed -n 2p "$TE_TMP/id_t18")
for blob in "$TE_TMP/layers3"/*; do
	o=$(tar -xzOf "$blob" ssh-ok 2>/dev/null) && sshok=$o
	if { gzip -dc "$blob" 2>/dev/null || cat "$blob"; } | grep -aqF "$keyline"; then keyleak=1; fi
done
check "ssh: RUN had an agent socket" test "$sshok" = agent
check "ssh: the private key is in no layer or config" test "$keyleak" -eq 0

te_finish
