#!/usr/bin/env bash
# Stapel git mappings of a remote repository (issue 12): a repository
# served by `git daemon` on loopback, mapped by tag and by commit; files
# read back out of the pushed image; a moved tag rebuilds only the patch
# stage (changed, added and deleted files); branch only under
# werf-giterminism.yaml; file:// and an unreachable url refused with their
# message and nothing pushed; a basicAuth password never in the output,
# the labels or the state dir.
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl bash-static ss lighttpd
PATH=$PATH:$(git --exec-path) te_require git-daemon git-http-backend
GIT_DAEMON=$(git --exec-path)/git-daemon
GIT_HTTP_BACKEND=$(git --exec-path)/git-http-backend

start_registry REG
make_base_image "$REG/base/busybox:1"

# The remote: a bare repository under the daemon's base path.
remotes="$TE_TMP/remotes"
work="$TE_TMP/libwork"
mkdir -p "$remotes" "$work/lib"
git init -q -b main "$work"
echo a1 >"$work/lib/a.txt"
echo gone >"$work/lib/gone.txt"
echo dep1 >"$work/lib/dep.txt"
echo r1 >"$work/README"
git_commit_all "$work" "first"
git -C "$work" tag v1
c1=$(git -C "$work" rev-parse HEAD)
git clone -q --bare "$work" "$remotes/lib.git"

PORT=$(te_free_port)
"$GIT_DAEMON" --listen=127.0.0.1 --port="$PORT" --base-path="$remotes" \
	--export-all --reuseaddr "$remotes" 2>"$TE_TMP/daemon.err" &
TE_PIDS+=($!)
for _ in $(seq 50); do
	ss -Hltn "sport = :$PORT" | grep -q . && break
	sleep 0.1
done
URL="git://127.0.0.1:$PORT/lib.git"
CLOSED=$(te_free_port) # nothing listens there
PASSWORD="pw-$RANDOM-never-shown-$RANDOM"

proj="$TE_TMP/project"
mkdir -p "$proj"
git init -q -b main "$proj"
write_yaml() { cat >"$proj/werf.yaml"; git_commit_all "$proj" "$1"; }
write_yaml "remote mappings" <<YAML
project: remote-demo
configVersion: 1
---
image: app
from: $REG/base/busybox:1
git:
- url: $URL
  tag: v1
  add: /lib
  to: /lib
  basicAuth:
    username: bob
    password:
      value: $PASSWORD
  stageDependencies:
    install: [dep.txt]
- url: $URL
  commit: $c1
  add: /
  to: /pinned
  excludePaths: [lib]
shell:
  install:
  - cat /lib/a.txt /lib/dep.txt > /installed
YAML

# export STATE-NAME TAG [ARGS...]: stderr (--verbose) in $TE_TMP/<tag>.err
run_export() {
	"$TAGEXPORT" export --dir "$proj" --state-dir "$TE_TMP/$1" --verbose \
		--repo "$REG/demo/stages" --tag "$REG/demo/%image%:$2" \
		--report-path "$TE_TMP/$2.json" "${@:3}" 2>"$TE_TMP/$2.err"
}

stage_labels() { skopeo inspect --config --tls-verify=false "docker://$REG/demo/stages:$(jq -r .images.app.content_based_tag "$TE_TMP/$1.json")" | jq -c .config.Labels; }

run_export s1 v1
check "remote by tag and commit: exit 0" test $? -eq 0 || cat "$TE_TMP/v1.err" >&2
# werf: no gitLatestPatch when the stage before it is built at this commit
check "stages built, no empty gitLatestPatch" test "$(built_stages v1)" = "from gitArchive install "
rootfs "$REG/demo/app:v1" "$TE_TMP/fs1"
check "tag mapping: file at /lib" test "$(cat "$TE_TMP/fs1/lib/a.txt")" = a1
check "tag mapping: add is /lib only" test ! -e "$TE_TMP/fs1/lib/README"
check "commit mapping: file at /pinned" test "$(cat "$TE_TMP/fs1/pinned/README")" = r1
check "commit mapping: excludePaths" test ! -e "$TE_TMP/fs1/pinned/lib"
check "install saw the remote files" test "$(cat "$TE_TMP/fs1/installed")" = "a1
dep1"
labels1=$(stage_labels v1)
check "label: tag mapping's commit" test "$(jq -r '.["werf-git-commit-0"]' <<<"$labels1")" = "$c1"
check "label: commit mapping's commit" test "$(jq -r '.["werf-git-commit-1"]' <<<"$labels1")" = "$c1"
check "one cache per url under the state dir" test "$(ls "$TE_TMP/s1/git-remotes" | wc -l)" -eq 1
check "the cache is a bare repository with the commit" \
	git --git-dir="$(ls -d "$TE_TMP"/s1/git-remotes/*)" cat-file -e "$c1^{commit}"

# Move the tag: only the patch stage, with a fresh state dir.
echo a2 >"$work/lib/a.txt"
echo new >"$work/lib/new.txt"
git -C "$work" rm -q lib/gone.txt
echo r2 >"$work/README"
git_commit_all "$work" "second"
git -C "$work" tag -f v1 >/dev/null
c2=$(git -C "$work" rev-parse HEAD)
git -C "$work" push -q --force "$remotes/lib.git" main v1 2>/dev/null
run_export s2 v2
check "moved tag: exit 0" test $? -eq 0 || cat "$TE_TMP/v2.err" >&2
check "moved tag: only gitLatestPatch rebuilt" test "$(built_stages v2)" = "gitLatestPatch "
check "moved tag: patch of 2 files, 1 removed" grep -q '(2 files, 1 removed)' "$TE_TMP/v2.err"
rootfs "$REG/demo/app:v2" "$TE_TMP/fs2"
check "patch: changed file" test "$(cat "$TE_TMP/fs2/lib/a.txt")" = a2
check "patch: added file" test "$(cat "$TE_TMP/fs2/lib/new.txt")" = new
check "patch: deleted file gone" test ! -e "$TE_TMP/fs2/lib/gone.txt"
check "patch: commit mapping unchanged" test "$(cat "$TE_TMP/fs2/pinned/README")" = r1
check "patch: install not re-run" test "$(cat "$TE_TMP/fs2/installed")" = "a1
dep1"
check "label: tag mapping now at the new commit" test "$(stage_labels v2 | jq -r '.["werf-git-commit-0"]')" = "$c2"

# A stageDependencies file of the remote changes: install re-runs.
echo dep2 >"$work/lib/dep.txt"
git_commit_all "$work" "dependency"
git -C "$work" tag -f v1 >/dev/null
git -C "$work" push -q --force "$remotes/lib.git" main v1 2>/dev/null
run_export s1 v3
check "remote stageDependencies: exit 0" test $? -eq 0 || cat "$TE_TMP/v3.err" >&2
check "remote stageDependencies: install rebuilt, no empty gitLatestPatch after it" test "$(built_stages v3)" = "install "
check "remote stageDependencies: install saw the patched files" \
	test "$(rootfs "$REG/demo/app:v3" "$TE_TMP/fs3" && cat "$TE_TMP/fs3/installed")" = "a2
dep2"
check "the cache is reused" test "$(ls "$TE_TMP/s1/git-remotes" | wc -l)" -eq 1

# The password: not in any output, label or file of the state dir.
check "password not in the output" bash -c '! grep -rqF -- "$1" "$2"/*.err' _ "$PASSWORD" "$TE_TMP"
check "password not in the stages' labels" bash -c '! grep -qF -- "$1" <<<"$2$3"' _ "$PASSWORD" "$labels1" "$(stage_labels v3)"
check "password not in the state dir" bash -c '! grep -rqaF -- "$1" "$2/s1" "$2/s2"' _ "$PASSWORD" "$TE_TMP"
check "url in the stages repo without credentials" bash -c '! grep -qF -- bob <<<"$1"' _ "$labels1"

# A branch: refused without werf-giterminism.yaml, allowed with it.
before=$(registry_catalog "$REG")
write_yaml "branch" <<YAML
project: remote-demo
configVersion: 1
---
image: br
from: $REG/base/busybox:1
git:
- url: $URL
  branch: main
  to: /src
YAML
run_export s4 b1
check "branch without giterminism: exit 2" test $? -eq 2
check "branch without giterminism: line, image, url, key" grep -qF "werf.yaml:7: image \"br\": git url $URL: branch is not allowed by werf-giterminism.yaml (config.stapel.git.allowBranch)" "$TE_TMP/b1.err"
check "branch refused: nothing pushed" test "$(registry_catalog "$REG")" = "$before"
printf 'giterminismConfigVersion: 1\nconfig:\n  stapel:\n    git:\n      allowBranch: true\n' >"$proj/werf-giterminism.yaml"
git_commit_all "$proj" "allow branch"
run_export s4 b2
check "branch allowed: exit 0" test $? -eq 0 || cat "$TE_TMP/b2.err" >&2
check "branch allowed: the branch's files" test "$(rootfs "$REG/demo/br:b2" "$TE_TMP/fsb" && cat "$TE_TMP/fsb/src/lib/dep.txt")" = dep2
write_yaml "default branch" <<YAML
project: remote-demo
configVersion: 1
---
image: br
from: $REG/base/busybox:1
git:
- url: $URL
  add: /lib
  to: /src
YAML
run_export s4 b3
check "default branch allowed: exit 0" test $? -eq 0 || cat "$TE_TMP/b3.err" >&2
check "default branch allowed: main's files" test "$(rootfs "$REG/demo/br:b3" "$TE_TMP/fsb3" && cat "$TE_TMP/fsb3/src/a.txt")" = a2
git -C "$proj" rm -q werf-giterminism.yaml
git_commit_all "$proj" "giterminism gone"
run_export s4 b4
check "no ref without giterminism: exit 2" test $? -eq 2
check "no ref without giterminism: named" grep -qF "git url $URL: no tag or commit (the default branch) is not allowed" "$TE_TMP/b4.err"
run_export s4 b5 --loose-giterminism
check "no ref with --loose-giterminism: exit 0" test $? -eq 0 || cat "$TE_TMP/b5.err" >&2

# Two images mapping the same tag: one fetch, shared stages built once.
write_yaml "two images" <<YAML
project: remote-demo
configVersion: 1
---
image: one
from: $REG/base/busybox:1
git:
- url: $URL
  tag: v1
  to: /both
---
image: two
from: $REG/base/busybox:1
git:
- url: $URL
  tag: v1
  to: /both
YAML
run_export s9 two
check "two images: exit 0" test $? -eq 0 || cat "$TE_TMP/two.err" >&2
# from is in the repo already; gitArchive is the one stage to build (no
# gitLatestPatch: the stage before it is built at this commit)
check "two images: shared stages built once" test "$(grep -c "building stage" "$TE_TMP/two.err")" -eq 1
check "two images: the other image reuses them" test "$(grep -c "was built for another image" "$TE_TMP/two.err")" -eq 1
check "two images: same content" test "$(jq -r .images.one.content_based_tag "$TE_TMP/two.json")" = \
	"$(jq -r .images.two.content_based_tag "$TE_TMP/two.json")"
check "two images: the tag's files" test "$(rootfs "$REG/demo/two:two" "$TE_TMP/fstwo" && cat "$TE_TMP/fstwo/both/lib/a.txt")" = a2

# A tag or commit the remote does not have.
before=$(registry_catalog "$REG")
write_yaml "missing tag" <<YAML
project: remote-demo
configVersion: 1
---
image: bad
from: $REG/base/busybox:1
git:
- url: $URL
  tag: v9
  to: /src
YAML
run_export s5 m1
check "missing tag: export fails" test $? -ne 0
check "missing tag: named" grep -qF "werf.yaml:7: image \"bad\": git url $URL: mirror: the remote has no tag v9" "$TE_TMP/m1.err"
sed -i 's/tag: v9/commit: 0000000deadbeef/' "$proj/werf.yaml"
git_commit_all "$proj" "missing commit"
run_export s5 m2
check "missing commit: export fails" test $? -ne 0
check "missing commit: named" grep -qF "werf.yaml:7: image \"bad\": git url $URL: mirror: commit 0000000deadbeef is not in the remote repository" "$TE_TMP/m2.err"
check "missing refs: nothing pushed" test "$(registry_catalog "$REG")" = "$before"

# basicAuth over smart HTTP: git-http-backend behind lighttpd's Basic auth.
printf 'gituser:%s\n' "$PASSWORD" >"$TE_TMP/lighttpd.users"
mkdir -p "$TE_TMP/www"
HTTP_PORT=
for _ in 1 2 3 4 5; do
	port=$(te_free_port)
	cat >"$TE_TMP/lighttpd.conf" <<CONF
server.modules = ("mod_alias", "mod_setenv", "mod_auth", "mod_authn_file", "mod_cgi")
server.bind = "127.0.0.1"
server.port = $port
server.document-root = "$TE_TMP/www"
server.errorlog = "$TE_TMP/lighttpd.log"
alias.url = ("/git/" => "$GIT_HTTP_BACKEND/")
\$HTTP["url"] =~ "^/git/" {
	cgi.assign = ("" => "")
	setenv.set-environment = ("GIT_PROJECT_ROOT" => "$remotes", "GIT_HTTP_EXPORT_ALL" => "")
	auth.backend = "plain"
	auth.backend.plain.userfile = "$TE_TMP/lighttpd.users"
	auth.require = ("" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
}
CONF
	lighttpd -D -f "$TE_TMP/lighttpd.conf" >>"$TE_TMP/lighttpd.out" 2>&1 &
	TE_PIDS+=($!)
	for _ in $(seq 50); do
		ss -Hltn "sport = :$port" | grep -q . && HTTP_PORT=$port && break 2
		sleep 0.1
	done
done
HTTP_URL=http://127.0.0.1:$HTTP_PORT/git/lib.git
check "http remote: anonymous clients get 401" \
	test "$(curl -sS -o /dev/null -w '%{http_code}' "$HTTP_URL/info/refs?service=git-upload-pack")" = 401
http_yaml() { # PASSWORD-SOURCE
	write_yaml "basicAuth" <<YAML
project: remote-demo
configVersion: 1
---
image: http
from: $REG/base/busybox:1
git:
- url: $HTTP_URL
  tag: v1
  add: /lib
  to: /lib
  basicAuth:
    username: gituser
    password: {$1}
YAML
}
http_yaml "value: $PASSWORD"
run_export s6 h1
check "basicAuth value over http: exit 0" test $? -eq 0 || cat "$TE_TMP/h1.err" >&2
check "basicAuth value over http: the files" test "$(rootfs "$REG/demo/http:h1" "$TE_TMP/fsh1" && cat "$TE_TMP/fsh1/lib/dep.txt")" = dep2
http_yaml "env: T22_GIT_PASSWORD"
T22_GIT_PASSWORD=$PASSWORD run_export s7 h2
check "basicAuth env over http: exit 0" test $? -eq 0 || cat "$TE_TMP/h2.err" >&2
check "basicAuth env over http: the files" test "$(rootfs "$REG/demo/http:h2" "$TE_TMP/fsh2" && cat "$TE_TMP/fsh2/lib/a.txt")" = a2
before=$(registry_catalog "$REG")
http_yaml "value: wrong-$PASSWORD-wrong"
run_export s8 h3
check "wrong password: export fails" test $? -ne 0
check "wrong password: refused credentials named" grep -qF "werf.yaml:7: image \"http\": git url $HTTP_URL: mirror: the remote refused our credentials" "$TE_TMP/h3.err" ||
	cat "$TE_TMP/h3.err" >&2
check "wrong password: nothing pushed" test "$(registry_catalog "$REG")" = "$before"
check "http: password in no output, label or state dir" bash -c \
	'! grep -rqaF -- "$1" "$2"/h*.err "$2"/s6 "$2"/s7 "$2"/s8 && ! grep -qF -- "$1" <<<"$3"' \
	_ "$PASSWORD" "$TE_TMP" "$(skopeo inspect --config --tls-verify=false "docker://$REG/demo/stages:$(jq -r .images.http.content_based_tag "$TE_TMP/h1.json")" | jq -c .config.Labels)"

# A redirect to another host is not followed: the credentials would go
# along.  The other host is a listener that counts connections.
SERVERS="$(dirname "$0")/servers"
start_py_server ELSEWHERE "$SERVERS/tcp_listener.py" --log "$TE_TMP/elsewhere.log"
start_py_server REDIR "$SERVERS/redirector.py" --to "http://localhost:${ELSEWHERE#*:}"
sed -i "s|url: $HTTP_URL|url: http://$REDIR/git/lib.git|; s|{value: .*}|{value: $PASSWORD}|" "$proj/werf.yaml"
git_commit_all "$proj" "redirected"
run_export s8 h4
check "off-site redirect: export fails" test $? -ne 0
check "off-site redirect: named" grep -qF "werf.yaml:7: image \"http\": git url http://$REDIR/git/lib.git: mirror: cannot connect:" "$TE_TMP/h4.err" ||
	cat "$TE_TMP/h4.err" >&2
check "off-site redirect: the other host never reached" test ! -s "$TE_TMP/elsewhere.log"

# An ssh url without a key: refused.
write_yaml "ssh" <<YAML
project: remote-demo
configVersion: 1
---
image: bad
from: $REG/base/busybox:1
git:
- url: ssh://git@127.0.0.1:$CLOSED/lib.git
  tag: v1
  to: /src
YAML
run_export s5 k1
check "ssh without a key: exit 2" test $? -eq 2
check "ssh without a key: named" grep -qF "werf.yaml:7: image \"bad\": git url ssh://git@127.0.0.1:$CLOSED/lib.git: an ssh url needs a private key" "$TE_TMP/k1.err"

# file:// and a closed port: refused before anything is pushed.
before=$(registry_catalog "$REG")
write_yaml "file url" <<YAML
project: remote-demo
configVersion: 1
---
image: bad
from: $REG/base/busybox:1
git:
- url: file://$remotes/lib.git
  tag: v1
  to: /src
YAML
run_export s5 f1
check "file url: exit 2" test $? -eq 2
check "file url: scheme named" grep -qF 'werf.yaml:7: image "bad": git url scheme "file" is refused' "$TE_TMP/f1.err"
write_yaml "unreachable" <<YAML
project: remote-demo
configVersion: 1
---
image: bad
from: $REG/base/busybox:1
git:
- url: http://127.0.0.1:$CLOSED/lib.git
  tag: v1
  to: /src
  basicAuth:
    username: bob
    password: {value: $PASSWORD}
YAML
run_export s5 u1
rc=$?
check "unreachable url: export fails" test "$rc" -ne 0
check "unreachable url: line, image and url named" grep -qF "werf.yaml:7: image \"bad\": git url http://127.0.0.1:$CLOSED/lib.git: mirror: cannot connect" "$TE_TMP/u1.err" ||
	cat "$TE_TMP/u1.err" >&2
check "unreachable url: no password in the message" bash -c '! grep -qF -- "$1" "$2"' _ "$PASSWORD" "$TE_TMP/u1.err"
check "bad urls: nothing pushed" test "$(registry_catalog "$REG")" = "$before"
check "password not in the state dirs" bash -c '! grep -rqaF -- "$1" "$2"/s*' _ "$PASSWORD" "$TE_TMP"

# The hook (and the server: the same project settings) builds pushed
# commits, so the operator names the urls a commit may make the machine
# fetch (stapel_git_urls, none by default): werf.yaml alone could reach
# any host the machine can, internal services included.
write_yaml "for the hook" <<YAML
project: remote-demo
configVersion: 1
---
image: app
from: $REG/base/busybox:1
git:
- url: $URL
  tag: v1
  add: /lib
  to: /lib
YAML
git -C "$proj" -c user.name=t -c user.email=t@example.com tag -a vh -m vh
printf 'hook-secret\n' >"$TE_TMP/hook.secret"
write_server() {
	cat >"$TE_TMP/server.yaml" <<YAML
state_dir: $TE_TMP/srvstate
projects:
  - name: rem
    forge: github
    repository: o/rem
    secret_file: $TE_TMP/hook.secret
    git_url: https://git.example.invalid/o/rem.git
$1
    export:
      repo: $REG/rem/stages
      tag: "$REG/rem/%image%:%git_tag%"
YAML
}
run_hook() {
	"$TAGEXPORT" hook run-export --git-dir "$proj/.git" --config "$TE_TMP/server.yaml" \
		--project rem --tag vh --commit "$(git -C "$proj" rev-parse HEAD)" 2>"$TE_TMP/$1.err"
}
before=$(registry_catalog "$REG")
write_server ""
run_hook hk1
check "hook without stapel_git_urls: refused" test $? -ne 0
check "hook: the refusal names the url and the setting" grep -qF \
	"werf.yaml:7: image \"app\": git url $URL is not allowed by the operator's project settings (stapel_git_urls)" "$TE_TMP/hk1.err"
write_server "    stapel_git_urls: [\"https://git.example.com/*\"]"
run_hook hk2
check "hook with another url allowed: refused" test $? -ne 0
check "hook refusals: nothing pushed" test "$(registry_catalog "$REG")" = "$before"
check "hook refusals: nothing fetched" test ! -e "$TE_TMP/srvstate/build/projects/rem/git-remotes"
write_server "    stapel_git_urls: [\"git://127.0.0.1:$PORT/*\"]"
run_hook hk3
check "hook with the url allowed: exit 0" test $? -eq 0 || tail -20 "$TE_TMP/hk3.err" >&2
check "hook: the allowed remote cached in the project's build state" test -d "$TE_TMP/srvstate/build/projects/rem/git-remotes"
rootfs "$REG/rem/app:vh" "$TE_TMP/fshook"
check "hook: the remote's file in the image" test "$(cat "$TE_TMP/fshook/lib/a.txt")" = "$(git -C "$work" show v1:lib/a.txt)"

te_finish
