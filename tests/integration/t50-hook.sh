#!/usr/bin/env bash
# The post-receive hook end to end: real `git push`es over local paths to
# bare repositories whose hook was installed by `tagexport hook install`.
#  - standalone (--config): a tag push starts a detached export (image
#    checked with skopeo), the same tag+commit again reports "already
#    running", branch pushes and tag deletions do nothing, a tag outside
#    the filter is ignored;
#  - server (--server): tags queued on a running tagexport-server and
#    exported, several tags in one push, a bad token;
#  - a server that is down or never answers: the push succeeds at once and
#    the pusher is told;
#  - a foreign hook: refused, then chained with --chain (both run, its
#    failure stops nothing);
#  - a tag name full of shell syntax stays data.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/server_lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl python3

SRC_DIR=${TE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
start_registry REG
make_base_image "$REG/base/busybox:1"

SECRET=hook-secret-$RANDOM
ADMIN_TOKEN=admin-$RANDOM
printf '%s\n' "$SECRET" >"$TE_TMP/hook.secret"
printf '%s\n' "$ADMIN_TOKEN" >"$TE_TMP/admin.token"
printf 'wrong-token\n' >"$TE_TMP/wrong.token"

# The work tree everybody pushes from.
WORK="$TE_TMP/work"
git init -q -b main "$WORK"
cat >"$WORK/werf.yaml" <<YAML
project: hook-e2e
configVersion: 1
---
image: app
dockerfile: Dockerfile
YAML
cat >"$WORK/Dockerfile" <<DF
FROM $REG/base/busybox:1
COPY version /version
DF
commit() { # CONTENT
	echo "$1" >"$WORK/version"
	git_commit_all "$WORK" "commit $1"
}
atag() { # NAME: annotated tag on HEAD
	git -C "$WORK" -c user.name=t -c user.email=t@example.com tag -a "$1" -m "$1"
}
# push REPO REFSPEC...: sets PUSH_RC, PUSH_ERR (stderr), PUSH_SECS.
push() {
	local repo=$1 t0
	shift
	t0=$(date +%s.%N)
	git -C "$WORK" push "$repo" "$@" 2>"$TE_TMP/push.err" >/dev/null
	PUSH_RC=$?
	PUSH_SECS=$(elapsed_since "$t0")
	PUSH_ERR=$(cat "$TE_TMP/push.err")
}
# hook_lines: the tagexport lines the pusher saw (git prefixes "remote: ").
hook_lines() {
	sed -n 's/^remote: \(tagexport: .*[^ ]\) *$/\1/p' <<<"$PUSH_ERR"
}
has_line() { # REGEX
	hook_lines | grep -Eq -- "$1"
}
has_fixed() { # STRING
	hook_lines | grep -qF -- "$1"
}
no_hook_output() {
	[ -z "$(hook_lines)" ]
}
fast() { # SECONDS
	[ "$(echo "$PUSH_SECS < $1" | bc -l)" = 1 ]
}
bare() { # NAME: a new bare repository, prints its path
	git init -q --bare "$TE_TMP/$1.git"
	echo "$TE_TMP/$1.git"
}
digest_of() {
	skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$1" 2>/dev/null
}
wait_image() { # REF SECONDS
	for _ in $(seq 1 $(($2 * 2))); do
		[ -n "$(digest_of "$1")" ] && return 0
		sleep 0.5
	done
	return 1
}
wait_grep() { # REGEX FILE SECONDS
	for _ in $(seq 1 $(($3 * 4))); do
		grep -Eq -- "$1" "$2" 2>/dev/null && return 0
		sleep 0.25
	done
	return 1
}

commit one
atag v1.0.0
C1=$(git -C "$WORK" rev-parse HEAD)
T1=$(git -C "$WORK" rev-parse v1.0.0)

# ==== standalone ==============================================================
SA=$(bare standalone)
HSTATE="$TE_TMP/hstate"
cat >"$TE_TMP/standalone.yaml" <<YAML
listen: 127.0.0.1:0
state_dir: $HSTATE
projects:
  - name: sa
    forge: github
    repository: acme/app
    secret_file: hook.secret
    git_url: $SA
    tags: ["v*"]
    export:
      repo: $REG/sa/stages
      insecure_registry: true
      add_label: {org.opencontainers.image.source: https://git.example.com/acme/app}
      tag: ["$REG/sa/%image%:%git_tag%"]
YAML
out=$("$TAGEXPORT" hook install --git-dir "$SA" --project sa --config "$TE_TMP/standalone.yaml" 2>&1)
check "install (standalone) -> exit 0" test $? = 0
check "install says installed" grep -q "^installed $SA/hooks/post-receive" <<<"$out"
check "hook file is hooks/post-receive, 0755" test "$(stat -c %a "$SA/hooks/post-receive")" = 755
check "hook file is the installable script" cmp -s "$SA/hooks/post-receive" "$SRC_DIR/hooks/post-receive"
check "tagexport.project recorded" test "$(git -C "$SA" config tagexport.project)" = sa
check "tagexport.config is absolute" test "$(git -C "$SA" config tagexport.config)" = "$TE_TMP/standalone.yaml"
check "tagexport.bin is this binary" test "$(git -C "$SA" config tagexport.bin)" = "$(readlink -f "$TAGEXPORT")"
check "no server keys" test -z "$(git -C "$SA" config tagexport.server)"
cp "$SA/config" "$TE_TMP/sa.config.before"
out=$("$TAGEXPORT" hook install --git-dir "$SA" --project sa --config "$TE_TMP/standalone.yaml" 2>&1)
check "re-install -> exit 0" test $? = 0
check "re-install says already installed" grep -q "already installed" <<<"$out"
check "re-install leaves the hook as it was" cmp -s "$SA/hooks/post-receive" "$SRC_DIR/hooks/post-receive"
check "re-install leaves the config as it was" cmp -s "$SA/config" "$TE_TMP/sa.config.before"
"$TAGEXPORT" hook install --git-dir "$SA" --project nosuch --config "$TE_TMP/standalone.yaml" >/dev/null 2>&1
check "install with a project not in the config -> refused" test $? = 2

push "$SA" main v1.0.0
check "tag push (standalone) -> exit 0" test "$PUSH_RC" = 0
check "pusher told the export started" has_line '^tagexport: v1\.0\.0 export started \(log: .*/hooks/sa/'"$C1"'-[0-9a-f]{16}\.log\)$'
check "exactly one tagexport line" test "$(hook_lines | wc -l)" = 1
check "the push did not wait for the export" fast 10
LOG1=$(hook_lines | sed -n 's/.*(log: \(.*\))$/\1/p')
# The same tag+commit again while it runs: not started twice.
printf '%s %s refs/tags/v1.0.0\n' 0000000000000000000000000000000000000000 "$T1" |
	(cd "$SA" && GIT_DIR=. "$TAGEXPORT" hook post-receive) 2>"$TE_TMP/again.err"
check "hook exits 0 when run by hand" test $? = 0
check "second run of the same tag+commit: already running" \
	grep -q "^tagexport: v1.0.0 export already running (log: $LOG1)$" "$TE_TMP/again.err"
check "detached export finished" wait_grep 'export finished' "$LOG1" 600
check "standalone: image exported under the tag" wait_image "$REG/sa/app:v1.0.0" 30
info=$(skopeo_inspect "$REG/sa/app:v1.0.0" 2>/dev/null)
check "standalone: label added" test "$(jq -r '.Labels["org.opencontainers.image.source"]' <<<"$info")" = https://git.example.com/acme/app
check "standalone: no werf labels" test "$(jq '[.Labels // {} | keys[] | select(startswith("werf"))] | length' <<<"$info")" -eq 0
check "log names the annotated tag's commit" grep -q "export of tag v1.0.0 at commit $C1" "$LOG1"
check "lock released after the export" flock -n "${LOG1%.log}.lock" true
nlogs() { find "$HSTATE/hooks" -name '*.log' | wc -l; }
N=$(nlogs)

commit two
push "$SA" main
check "branch push -> exit 0" test "$PUSH_RC" = 0
check "branch push: no tagexport output" no_hook_output
atag nightly-1
push "$SA" nightly-1
check "tag outside the filter: ignored" has_line '^tagexport: nightly-1 ignored: tag filtered$'
push "$SA" :refs/tags/nightly-1
check "tag deletion -> exit 0" test "$PUSH_RC" = 0
check "tag deletion: no tagexport output" no_hook_output
check "tag deletion: deleted" test -z "$(git -C "$SA" tag -l nightly-1)"
check "nothing started by those pushes" test "$(nlogs)" = "$N"

# ==== server ================================================================
SV=$(bare served)
cat >"$TE_TMP/server.yaml" <<YAML
listen: 127.0.0.1:0
state_dir: $TE_TMP/sstate
workers: 1
admin_token_file: admin.token
retry_delay: 1
projects:
  - name: hs
    forge: gitea
    repository: acme/app
    secret_file: hook.secret
    git_url: $SV
    tags: ["v*"]
    export:
      repo: $REG/hs/stages
      insecure_registry: true
      tag: ["$REG/hs/%image%:%git_tag%"]
YAML
start_server "$TE_TMP/server.yaml" "$TE_TMP/server.log"
URL="http://127.0.0.1:$SRV_PORT"
out=$("$TAGEXPORT" hook install --git-dir "$SV" --project hs --server "$URL" --token-file "$TE_TMP/admin.token" 2>&1)
check "install (server) -> exit 0" test $? = 0
check "tagexport.server recorded" test "$(git -C "$SV" config tagexport.server)" = "$URL"
check "tagexport.tokenFile recorded" test "$(git -C "$SV" config tagexport.tokenFile)" = "$TE_TMP/admin.token"
check "no standalone key" test -z "$(git -C "$SV" config tagexport.config)"

push "$SV" main v1.0.0
check "tag push (server) -> exit 0" test "$PUSH_RC" = 0
check "pusher told the job id" has_line '^tagexport: v1\.0\.0 queued \(job [^ )]+\)$'
J=$(hook_lines | sed -n 's/.*(job \(.*\))$/\1/p')
check "server job succeeded" wait_job "$J" succeeded 600
check "server: job is for the peeled commit" jqt --arg c "$C1" '.commit == $c and .tag == "v1.0.0" and .source == "api"' \
	<<<"$(api GET "/api/v1/jobs/$J")"
check "server: image exported" test -n "$(digest_of "$REG/hs/app:v1.0.0")"
check "the token is not in the server log" bash -c '! grep -qF -- "$1" "$2"' _ "$ADMIN_TOKEN" "$TE_TMP/server.log"

# Several tags in one push (one outside the server's filter).
commit three
atag v1.1.0
git -C "$WORK" tag v1.1.1
git -C "$WORK" tag other-1
JOBS0=$(job_count)
push "$SV" main v1.1.0 v1.1.1 other-1
check "several tags -> exit 0" test "$PUSH_RC" = 0
check "v1.1.0 queued" has_line '^tagexport: v1\.1\.0 queued \(job '
check "v1.1.1 queued" has_line '^tagexport: v1\.1\.1 queued \(job '
check "other-1 ignored by the server" has_line '^tagexport: other-1 ignored: tag filtered$'
check "one line per tag" test "$(hook_lines | wc -l)" = 3
check "two jobs queued" test "$(job_count)" = $((JOBS0 + 2))
for j in $(hook_lines | sed -n 's/.*(job \(.*\))$/\1/p'); do
	check "job $j succeeded" wait_job "$j" succeeded 600
done
check "v1.1.0 exported" test -n "$(digest_of "$REG/hs/app:v1.1.0")"
check "v1.1.1 exported" test -n "$(digest_of "$REG/hs/app:v1.1.1")"

JOBS0=$(job_count)
commit four
push "$SV" main :refs/tags/v1.1.1
check "branch push + tag deletion -> exit 0" test "$PUSH_RC" = 0
check "branch push + tag deletion: no tagexport output" no_hook_output
check "no job queued for them" test "$(job_count)" = "$JOBS0"

BAD=$(bare badtoken)
"$TAGEXPORT" hook install --git-dir "$BAD" --project hs --server "$URL" --token-file "$TE_TMP/wrong.token" >/dev/null
push "$BAD" v1.0.0
check "wrong token -> push still succeeds" test "$PUSH_RC" = 0
check "wrong token: pusher told" has_line '^tagexport: v1\.0\.0 not queued: server answered 401'
check "wrong token: the token is not shown" bash -c '! grep -q wrong-token <<<"$1"' _ "$PUSH_ERR"

# core.hooksPath: git runs hooks from there, so that is where the hook goes.
HP=$(bare hookspath)
git -C "$HP" config core.hooksPath "$TE_TMP/shared-hooks"
out=$("$TAGEXPORT" hook install --git-dir "$HP" --project hs --server "$URL" --token-file "$TE_TMP/wrong.token" 2>&1)
check "core.hooksPath: install -> exit 0" test $? = 0
check "core.hooksPath: hook written there" test -x "$TE_TMP/shared-hooks/post-receive"
check "core.hooksPath: not in the repository's hooks/" test ! -e "$HP/hooks/post-receive"
check "core.hooksPath: install says where" grep -qF "$TE_TMP/shared-hooks/post-receive" <<<"$out"
push "$HP" v1.0.0
check "core.hooksPath: git ran it" has_line '^tagexport: v1\.0\.0 not queued: server answered 401'

# ==== server down, server that never answers ===========================
DOWN=$(bare down)
"$TAGEXPORT" hook install --git-dir "$DOWN" --project hs --server "http://127.0.0.1:$(te_free_port)" \
	--token-file "$TE_TMP/admin.token" >/dev/null
push "$DOWN" main v1.0.0 v1.1.0
check "server down -> push succeeds" test "$PUSH_RC" = 0
check "server down: refs are there" test "$(git -C "$DOWN" rev-parse v1.1.0)" = "$(git -C "$WORK" rev-parse v1.1.0)"
check "server down: pusher told, per tag" test "$(hook_lines | grep -c 'not queued: server unreachable (')" = 2
check "server down: push is quick" fast 10

# A "server" that accepts connections and never answers.
cat >"$TE_TMP/blackhole.py" <<'PY'
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
open(sys.argv[2], "w").write(str(s.getsockname()[1]))
conns = []
while True:
    c, _ = s.accept()
    conns.append(c)
PY
python3 "$TE_TMP/blackhole.py" --port-file "$TE_TMP/bh.port" &
TE_PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$TE_TMP/bh.port" ] && break; sleep 0.05; done
HANG=$(bare hang)
"$TAGEXPORT" hook install --git-dir "$HANG" --project hs --server "http://127.0.0.1:$(cat "$TE_TMP/bh.port")" \
	--token-file "$TE_TMP/admin.token" >/dev/null
push "$HANG" v1.0.0 v1.1.0 v1.1.1
check "silent server -> push succeeds" test "$PUSH_RC" = 0
check "silent server: pusher told of the time-out" has_line '^tagexport: v1\.0\.0 not queued: server unreachable \(.*timed out'
check "silent server: every tag reported" test "$(hook_lines | grep -c 'not queued')" = 3
check "silent server: the push waited one time-out, not three" fast 9

# ==== hostile tag name ===============================================
EVIL='v9$(touch${IFS}pwned);touch>pwned2'
git -C "$WORK" tag "$EVIL"
push "$DOWN" "refs/tags/$EVIL"
check "hostile tag pushed" test "$PUSH_RC" = 0
check "hostile tag reported verbatim" has_fixed "tagexport: $EVIL not queued: server unreachable"
check "nothing ran it" bash -c '[ -z "$(find "$1" / -maxdepth 1 -name "pwned*" 2>/dev/null)" ] && [ -z "$(find "$1" -name "pwned*")" ]' _ "$TE_TMP"
git -C "$WORK" tag -d "$EVIL" >/dev/null

# ==== foreign hook =================================================
FOR=$(bare foreign)
cat >"$FOR/hooks/post-receive" <<SH
#!/bin/sh
cat >"$TE_TMP/foreign.in"
echo "foreign hook ran"
exit 3
SH
chmod 755 "$FOR/hooks/post-receive"
cp "$FOR/hooks/post-receive" "$TE_TMP/foreign.orig"
out=$("$TAGEXPORT" hook install --git-dir "$FOR" --project hs --server "http://127.0.0.1:$(te_free_port)" \
	--token-file "$TE_TMP/admin.token" 2>&1)
check "foreign hook: install refused" test $? = 2
check "foreign hook: message names the file and --chain" \
	grep -q "$FOR/hooks/post-receive exists and is not tagexport's hook: rerun with --chain" <<<"$out"
check "foreign hook: left alone" cmp -s "$FOR/hooks/post-receive" "$TE_TMP/foreign.orig"
check "foreign hook: no settings recorded" test -z "$(git -C "$FOR" config tagexport.project)"
out=$("$TAGEXPORT" hook install --git-dir "$FOR" --project hs --server "http://127.0.0.1:$(te_free_port)" \
	--token-file "$TE_TMP/admin.token" --chain 2>&1)
check "--chain: install -> exit 0" test $? = 0
check "--chain: says so" grep -q "post-receive.chained and runs first" <<<"$out"
check "--chain: old hook kept as post-receive.chained" cmp -s "$FOR/hooks/post-receive.chained" "$TE_TMP/foreign.orig"
check "--chain: hook is ours" cmp -s "$FOR/hooks/post-receive" "$SRC_DIR/hooks/post-receive"
push "$FOR" main v1.0.0
check "chained: push succeeds although the old hook fails" test "$PUSH_RC" = 0
check "chained: old hook ran" grep -q "^remote: foreign hook ran" <<<"$PUSH_ERR"
check "chained: old hook got the same input" \
	grep -q "^0\{40\} $T1 refs/tags/v1.0.0$" "$TE_TMP/foreign.in"
check "chained: its failure is reported" has_line 'post-receive.chained failed \(exit 3\)$'
check "chained: tagexport ran after it" has_line '^tagexport: v1\.0\.0 not queued: server unreachable'

kill -TERM "$SRV_PID"
stop_status "$SRV_PID" 60
te_finish
