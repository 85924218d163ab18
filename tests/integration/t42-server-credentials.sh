#!/usr/bin/env bash
# tagexport-server per-project credentials end to end, over real protocols:
#  A. docker_config: a docker-registry with htpasswd (Basic) auth; with the
#     right config.json the tag is pushed (read back with skopeo --creds);
#     without one, or with a wrong password, the job fails on 401 and
#     nothing reaches that registry.
#  B. git_username + git_token_file: the origin served by git-http-backend
#     behind lighttpd's Basic auth; the right token fetches and exports, a
#     wrong one fails as refused credentials and exports nothing.
#  C. git_ssh_key_file + git_known_hosts_file: the origin over sshd with a
#     per-test host key; the right known_hosts entry exports; a different
#     key for the host or an entry for other hosts only fails on the host
#     key; a client key that sshd does not know fails as an auth error.
# Credential failures are final (one attempt), and no password, token or
# private key shows up in the server log, a job's JSON or the state dir.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/server_lib.sh"
te_require docker-registry skopeo buildah git busybox jq curl openssl ss \
	htpasswd lighttpd sshd ssh-keygen
PATH=$PATH:$(git --exec-path) te_require git-http-backend
GIT_HTTP_BACKEND=$(git --exec-path)/git-http-backend
SSHD=$(command -v sshd) # sshd re-executes itself: it needs an absolute path

# Credentials reach the server only through its config: none from the
# environment (an empty DOCKER_CONFIG is the fallback without docker_config).
unset REGISTRY_AUTH_FILE XDG_RUNTIME_DIR SSH_AUTH_SOCK
mkdir -p "$TE_TMP/dc-none"
echo '{}' >"$TE_TMP/dc-none/config.json"
export DOCKER_CONFIG=$TE_TMP/dc-none

start_registry REG
make_base_image "$REG/base/busybox:1"

# ---- the registry with Basic auth ---------------------------------------------
REG_USER=reguser
REG_PASS=Reg-S3cret-$RANDOM$RANDOM
REG_WRONG=Wrong-Reg-Pw-$RANDOM$RANDOM
htpasswd -Bbn "$REG_USER" "$REG_PASS" >"$TE_TMP/htpasswd"
start_registry_with REGA "auth:
  htpasswd:
    realm: basic-realm
    path: $TE_TMP/htpasswd"
docker_config_dir() { # DIR PASSWORD: DIR/config.json with auths for REGA
	mkdir -p "$1"
	printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$REGA" \
		"$(printf '%s:%s' "$REG_USER" "$2" | base64 -w0)" >"$1/config.json"
}
docker_config_dir "$TE_TMP/dc-good" "$REG_PASS"
docker_config_dir "$TE_TMP/dc-bad" "$REG_WRONG"

# ---- the origin, and a work tree that pushes to it ----------------------------------
GIT_ROOT=$TE_TMP/git
ORIGIN=$GIT_ROOT/origin.git
WORK=$TE_TMP/work
git init -q --bare "$ORIGIN"
git init -q -b main "$WORK"
printf 'project: srv-creds\nconfigVersion: 1\n---\nimage: app\ndockerfile: Dockerfile\n' >"$WORK/werf.yaml"
printf 'FROM %s/base/busybox:1\nCOPY version /version\n' "$REG" >"$WORK/Dockerfile"
release() { # TAG: commit, annotated tag, push; prints the commit
	echo "$1" >"$WORK/version"
	git_commit_all "$WORK" "release $1"
	git -C "$WORK" -c user.name=t -c user.email=t@example.com tag -a "$1" -m "$1"
	git -C "$WORK" push -q "$ORIGIN" main "refs/tags/$1" 2>/dev/null
	git -C "$WORK" rev-parse HEAD
}

# listening PID PORT: waits until PID listens on 127.0.0.1:PORT (1 when
# PID died or never listened).
listening() {
	local pid=$1 port=$2
	for _ in $(seq 1 100); do
		ss -Hltnp "src 127.0.0.1 and sport = :$port" | grep -q "pid=$pid," && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# ---- git over HTTP: git-http-backend behind lighttpd Basic auth -------------------
GIT_USER=gituser
GIT_TOKEN=git-T0ken-$RANDOM$RANDOM
GIT_WRONG=wrong-T0ken-$RANDOM$RANDOM
printf '%s:%s\n' "$GIT_USER" "$GIT_TOKEN" >"$TE_TMP/lighttpd.users"
printf '%s\n' "$GIT_TOKEN" >"$TE_TMP/git-token.good"
printf '%s\n' "$GIT_WRONG" >"$TE_TMP/git-token.bad"
chmod 600 "$TE_TMP/lighttpd.users" "$TE_TMP"/git-token.*
mkdir -p "$TE_TMP/www"
# serve LOG WRITE_CONFIG CMD...: WRITE_CONFIG PORT writes the daemon's
# config for a free port, then CMD runs in the background until it listens
# there (5 ports tried); sets SERVE_PID and SERVE_PORT, or exits.
serve() {
	local log=$1 write=$2 pid port
	shift 2
	for _ in 1 2 3 4 5; do
		port=$(te_free_port)
		"$write" "$port"
		"$@" >>"$log" 2>&1 &
		pid=$!
		TE_PIDS+=("$pid")
		if listening "$pid" "$port"; then
			SERVE_PID=$pid SERVE_PORT=$port
			return 0
		fi
		kill "$pid" 2>/dev/null || true
	done
	echo "FATAL: $1 did not start" >&2
	cat "$log" >&2
	exit 1
}
lighttpd_conf() { # PORT
	cat >"$TE_TMP/lighttpd.conf" <<CONF
server.modules = ("mod_alias", "mod_setenv", "mod_auth", "mod_authn_file", "mod_cgi")
server.bind = "127.0.0.1"
server.port = $1
server.document-root = "$TE_TMP/www"
server.errorlog = "$TE_TMP/lighttpd.log"
alias.url = ("/git/" => "$GIT_HTTP_BACKEND/")
\$HTTP["url"] =~ "^/git/" {
	cgi.assign = ("" => "")
	setenv.set-environment = ("GIT_PROJECT_ROOT" => "$GIT_ROOT", "GIT_HTTP_EXPORT_ALL" => "")
	auth.backend = "plain"
	auth.backend.plain.userfile = "$TE_TMP/lighttpd.users"
	auth.require = ("" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
}
CONF
}
serve "$TE_TMP/lighttpd.out" lighttpd_conf lighttpd -D -f "$TE_TMP/lighttpd.conf"
HTTP_PORT=$SERVE_PORT
HTTP_URL=http://127.0.0.1:$HTTP_PORT/git/origin.git
refs_status() { # [curl args]: HTTP status of the smart-HTTP ref advertisement
	curl -sS -o /dev/null -w '%{http_code}' "$@" "$HTTP_URL/info/refs?service=git-upload-pack"
}
check "git http: anonymous clients get 401" test "$(refs_status)" = 401
check "git http: the token is accepted" test "$(refs_status -u "$GIT_USER:$GIT_TOKEN")" = 200
check "git http: the wrong token gets 401" test "$(refs_status -u "$GIT_USER:$GIT_WRONG")" = 401

# ---- git over SSH: sshd with its own host key --------------------------------------
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -C te-host -f "$TE_TMP/ssh_host_key"
ssh-keygen -q -t ed25519 -N '' -C te-other-host -f "$TE_TMP/other_host_key"
# libgit2 1.5 / libssh2 1.10 on Debian 12 use OpenSSH-format ed25519 keys.
ssh-keygen -q -t ed25519 -N '' -C te-client -f "$TE_TMP/client_key"
ssh-keygen -q -t ed25519 -N '' -C te-stranger -f "$TE_TMP/stranger_key"
cp "$TE_TMP/client_key.pub" "$TE_TMP/authorized_keys"
sshd_conf() { # PORT
	cat >"$TE_TMP/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $1
HostKey $TE_TMP/ssh_host_key
AuthorizedKeysFile $TE_TMP/authorized_keys
PidFile $TE_TMP/sshd.pid
AllowUsers root
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
CONF
}
serve "$TE_TMP/sshd.log" sshd_conf "$SSHD" -D -e -f "$TE_TMP/sshd_config"
SSH_PORT=$SERVE_PORT
key_fp() { ssh-keygen -lf "$TE_TMP/$1.pub" | cut -d' ' -f2; }
SSH_URL=ssh://root@127.0.0.1:$SSH_PORT$ORIGIN
HOST_KEY=$(cut -d' ' -f1,2 "$TE_TMP/ssh_host_key.pub")
OTHER_KEY=$(cut -d' ' -f1,2 "$TE_TMP/other_host_key.pub")
OTHER_PORT=$((SSH_PORT + 1))
printf '# tagexport test\ngit.example.com %s\n[127.0.0.1]:%s %s\n' \
	"$OTHER_KEY" "$SSH_PORT" "$HOST_KEY" >"$TE_TMP/known_hosts.good"
printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$OTHER_KEY" >"$TE_TMP/known_hosts.otherkey"
printf 'git.example.com %s\n[127.0.0.1]:%s %s\n[localhost]:%s %s\n' "$HOST_KEY" \
	"$OTHER_PORT" "$HOST_KEY" "$SSH_PORT" "$HOST_KEY" >"$TE_TMP/known_hosts.otherhost"
# the same setup works for OpenSSH's own client
check "git ssh: reachable with the client key and known_hosts" \
	env GIT_SSH_COMMAND="ssh -F none -i $TE_TMP/client_key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$TE_TMP/known_hosts.good" \
	git ls-remote -q "$SSH_URL" refs/tags/nothing

# ---- the server ------------------------------------------------------------------------
SECRET=creds-secret-$RANDOM
ADMIN_TOKEN=admin-$RANDOM
printf '%s\n' "$SECRET" >"$TE_TMP/hook.secret"
printf '%s\n' "$ADMIN_TOKEN" >"$TE_TMP/admin.token"
LOG="$TE_TMP/server.log"

# project NAME GIT_URL STAGES_REGISTRY TAG_REGISTRY [KEY VALUE]...
project() {
	local name=$1 url=$2 stages=$3 target=$4
	shift 4
	printf '  - name: %s\n    forge: github\n    repository: acme/app\n' "$name"
	printf '    secret_file: %s/hook.secret\n    git_url: "%s"\n' "$TE_TMP" "$url"
	while [ $# -ge 2 ]; do
		printf '    %s: "%s"\n' "$1" "$2"
		shift 2
	done
	printf '    export:\n      repo: %s/%s/stages\n      insecure_registry: true\n' "$stages" "$name"
	printf '      tag: ["%s/%s/%%image%%:%%git_tag%%"]\n' "$target" "$name"
}
config_head() { # STATE_DIR
	cat <<YAML
listen: 127.0.0.1:0
state_dir: $1
workers: 2
admin_token_file: $TE_TMP/admin.token
max_attempts: 3
retry_delay: 1
projects:
YAML
}

job_of() { jq -r .job <<<"${1#* }"; }
# deliver VAR PROJECT COMMIT: posts the signed push of tag PROJECT, sets
# $VAR to the job id (not in $(): check counts in this shell).
deliver() {
	local r
	github_body "$TE_TMP/$2.json" acme/app "$2" "$3"
	r=$(github_post "$2" "$TE_TMP/$2.json" "$SECRET" "creds-$2")
	check "$2: delivery accepted" test "${r%% *}" = 202
	printf -v "$1" '%s' "$(job_of "$r")"
	JOBS+=("${!1}")
}
job_json() { api GET "/api/v1/jobs/$1"; }
# error_has JOB REGEX: the job's .error matches REGEX (case-insensitive)
error_has() { jqt --arg re "$2" '.error // "" | test($re; "i")' <<<"$(job_json "$1")"; }
one_attempt() { jqt '.attempts == 1' <<<"$(job_json "$1")"; }
digest_of() {
	skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$1" 2>/dev/null
}
nothing_in() { # REGISTRY PROJECT: no repository of PROJECT in REG's catalog
	! registry_catalog "$1" | grep -q "^$2/"
}
show_error() { echo "# $1 error: $(job_json "$2" | jq -r '.error // "(none)"')"; }

# Every job's JSON and the server log, for the secret checks at the end.
JOBS=()
SECRETS=("$REG_PASS" "$REG_WRONG" "$(printf '%s:%s' "$REG_USER" "$REG_PASS" | base64 -w0)"
	"$(printf '%s:%s' "$REG_USER" "$REG_WRONG" | base64 -w0)" "$GIT_TOKEN" "$GIT_WRONG"
	"$(printf '%s:%s' "$GIT_USER" "$GIT_TOKEN" | base64 -w0)"
	"$(sed -n 4p "$TE_TMP/client_key")" "$(sed -n 5p "$TE_TMP/client_key")"
	"$(sed -n 4p "$TE_TMP/stranger_key")" "$(sed -n 5p "$TE_TMP/stranger_key")")
no_secret_in() { # FILE|DIR...
	local s
	for s in "${SECRETS[@]}"; do
		grep -rqF -e "$s" "$@" && return 1
	done
	return 0
}
dump_jobs() { # FILE: every job's JSON so far
	local j
	for j in "${JOBS[@]}"; do job_json "$j"; done >"$1"
	api GET /api/v1/jobs >>"$1"
}

# ---- server 1: A (registry credentials) and B (git over HTTP) ---------------------------
T_AOK=$(release a-ok)
T_ANONE=$(release a-none)
T_ABAD=$(release a-bad)
T_BOK=$(release b-ok)
T_BBAD=$(release b-bad)
CFG1=$TE_TMP/server1.yaml
{
	config_head "$TE_TMP/state1"
	# stages and tag on the auth registry: buildah's push and the
	# export's copy both take docker_config's credentials
	project a-ok "$ORIGIN" "$REGA" "$REGA" docker_config "$TE_TMP/dc-good"
	# stages on the open registry: only the tag push needs credentials
	project a-none "$ORIGIN" "$REG" "$REGA"
	project a-bad "$ORIGIN" "$REG" "$REGA" docker_config "$TE_TMP/dc-bad"
	project b-ok "$HTTP_URL" "$REG" "$REG" git_username "$GIT_USER" \
		git_token_file "$TE_TMP/git-token.good"
	project b-bad "$HTTP_URL" "$REG" "$REG" git_username "$GIT_USER" \
		git_token_file "$TE_TMP/git-token.bad"
} >"$CFG1"
start_server "$CFG1" "$LOG"
deliver J_AOK a-ok "$T_AOK"
deliver J_ANONE a-none "$T_ANONE"
deliver J_ABAD a-bad "$T_ABAD"
deliver J_BOK b-ok "$T_BOK"
deliver J_BBAD b-bad "$T_BBAD"

# A: registry credentials from docker_config
check "a-ok: job succeeded" wait_job "$J_AOK" succeeded 600
check "a-ok: tag readable with the registry credentials" \
	skopeo_ok --tls-verify=false --creds "$REG_USER:$REG_PASS" "docker://$REGA/a-ok/app:a-ok"
check "a-ok: the registry does demand credentials" \
	bash -c '! skopeo inspect --tls-verify=false "docker://$1" >/dev/null 2>&1' _ "$REGA/a-ok/app:a-ok"
check "a-ok: result names the pushed tag" \
	jqt --arg r "$REGA/a-ok/app:a-ok@" '.results | any(startswith($r))' <<<"$(job_json "$J_AOK")"
check "a-none: job failed" wait_job "$J_ANONE" failed 600
show_error a-none "$J_ANONE"
check "a-none: error says HTTP 401, credentials" error_has "$J_ANONE" 'HTTP 401 .*credentials'
check "a-none: not retried" one_attempt "$J_ANONE"
check "a-bad: job failed" wait_job "$J_ABAD" failed 600
show_error a-bad "$J_ABAD"
check "a-bad: error says HTTP 401, credentials" error_has "$J_ABAD" 'HTTP 401 .*credentials'
check "a-bad: not retried" one_attempt "$J_ABAD"
# what is on the auth registry, read with its credentials
rega_repos=$(curl -fsS -u "$REG_USER:$REG_PASS" "http://$REGA/v2/_catalog?n=1000" | jq -r '.repositories[]')
check "auth registry catalog readable" test -n "$rega_repos"
check "a-none/a-bad: nothing pushed to the auth registry" \
	test -z "$(grep -v '^a-ok/' <<<"$rega_repos")"

# B: git over HTTP with a token
check "b-ok: job succeeded" wait_job "$J_BOK" succeeded 600
check "b-ok: image exported" test -n "$(digest_of "$REG/b-ok/app:b-ok")"
check "b-bad: job failed" wait_job "$J_BBAD" failed 600
show_error b-bad "$J_BBAD"
check "b-bad: error says the credentials were refused" \
	error_has "$J_BBAD" 'refused our credentials'
check "b-bad: not retried" one_attempt "$J_BBAD"
# lighttpd logs each refused password: one from curl's check above, one
# from the job (the token is offered once, not until the client gives up)
check "b-bad: the wrong token was offered once" \
	test "$(grep -c "password doesn't match" "$TE_TMP/lighttpd.log")" -eq 2
check "b-bad: nothing exported" nothing_in "$REG" b-bad
# Polling lists the tags with the project's credentials too
r=$(api POST /api/v1/projects/b-ok/poll -w ' %{http_code}')
check "b-ok: POST poll lists the tags with the token" test "${r##* }" = 200
r=$(api POST /api/v1/projects/b-bad/poll -w ' %{http_code}')
check "b-bad: POST poll with the wrong token -> 502, refused" \
	bash -c '[ "${1##* }" = 502 ] && grep -q "refused our credentials" <<<"$1"' _ "$r"
check "b-bad: the poll's answer holds no token" \
	bash -c '! grep -qF -e "$2" -e "$3" <<<"$1"' _ "$r" "$GIT_TOKEN" "$GIT_WRONG"

dump_jobs "$TE_TMP/jobs1.json"
kill -TERM "$SRV_PID"
stop_status "$SRV_PID" 60
check "server 1 stopped cleanly" test "$STOP_RC" = 0

# ---- server 2: C (git over SSH) ----------------------------------------------------------
# Its own server: a config this one cannot load must not hide A's and B's
# results.
T_COK=$(release c-ok)
T_CKEY=$(release c-hostkey)
T_CHOST=$(release c-otherhost)
T_CCLIENT=$(release c-clientkey)
CFG2=$TE_TMP/server2.yaml
{
	config_head "$TE_TMP/state2"
	project c-ok "$SSH_URL" "$REG" "$REG" git_ssh_key_file "$TE_TMP/client_key" \
		git_known_hosts_file "$TE_TMP/known_hosts.good"
	project c-hostkey "$SSH_URL" "$REG" "$REG" git_ssh_key_file "$TE_TMP/client_key" \
		git_known_hosts_file "$TE_TMP/known_hosts.otherkey"
	project c-otherhost "$SSH_URL" "$REG" "$REG" git_ssh_key_file "$TE_TMP/client_key" \
		git_known_hosts_file "$TE_TMP/known_hosts.otherhost"
	project c-clientkey "$SSH_URL" "$REG" "$REG" git_ssh_key_file "$TE_TMP/stranger_key" \
		git_known_hosts_file "$TE_TMP/known_hosts.good"
} >"$CFG2"
"$TE_SERVER" --config "$CFG2" --check >"$TE_TMP/check2.out" 2>&1
rc=$?
check "server 2 config (git_known_hosts_file) accepted" test "$rc" -eq 0
if [ "$rc" -ne 0 ]; then
	cat "$TE_TMP/check2.out" >&2
	fail "c-*: not run, the server rejects their config"
else
	SSHD_MARK=$(wc -l <"$TE_TMP/sshd.log")
	# tests/lsan.supp's git_remote_connect_ext entry (libgit2's SSH
	# leaks) only matches a full stack: LSan's fast unwinder stops inside
	# libgit2, which has no frame pointers.  Only this server fetches over
	# SSH, so only it pays for slow unwinding (a no-op without ASan).
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0 \
		start_server "$CFG2" "$LOG"
	deliver J_COK c-ok "$T_COK"
	deliver J_CKEY c-hostkey "$T_CKEY"
	deliver J_CHOST c-otherhost "$T_CHOST"
	deliver J_CCLIENT c-clientkey "$T_CCLIENT"

	check "c-ok: job succeeded" wait_job "$J_COK" succeeded 600
	check "c-ok: image exported" test -n "$(digest_of "$REG/c-ok/app:c-ok")"
	r=$(api POST /api/v1/projects/c-ok/poll -w ' %{http_code}')
	check "c-ok: POST poll lists the tags over SSH" test "${r##* }" = 200
	r=$(api POST /api/v1/projects/c-hostkey/poll -w ' %{http_code}')
	check "c-hostkey: POST poll -> 502 about the host key" \
		bash -c '[ "${1##* }" = 502 ] && grep -q "host key" <<<"$1"' _ "$r"
	check "c-hostkey: job failed" wait_job "$J_CKEY" failed 600
	show_error c-hostkey "$J_CKEY"
	check "c-hostkey: error is about the host key" error_has "$J_CKEY" 'host key'
	check "c-hostkey: not retried" one_attempt "$J_CKEY"
	check "c-hostkey: nothing exported" nothing_in "$REG" c-hostkey
	check "c-otherhost: job failed" wait_job "$J_CHOST" failed 600
	show_error c-otherhost "$J_CHOST"
	check "c-otherhost: error is about the host key" error_has "$J_CHOST" 'host key'
	check "c-otherhost: not retried" one_attempt "$J_CHOST"
	check "c-otherhost: nothing exported" nothing_in "$REG" c-otherhost
	check "c-clientkey: job failed" wait_job "$J_CCLIENT" failed 600
	show_error c-clientkey "$J_CCLIENT"
	# The key is offered once: asked again, the server says so (before,
	# sshd hung up after libgit2's third try and libssh2's "Failed to
	# retrieve list of SSH authentication methods" hid why).
	check "c-clientkey: error says the credentials were refused" \
		error_has "$J_CCLIENT" 'refused our credentials'
	check "c-clientkey: error is not about the host key" \
		bash -c '! jq -e ".error // \"\" | test(\"host key\"; \"i\")" >/dev/null <<<"$1"' _ "$(job_json "$J_CCLIENT")"
	check "c-clientkey: not retried" one_attempt "$J_CCLIENT"
	check "c-clientkey: nothing exported" nothing_in "$REG" c-clientkey
	sshd_log=$(tail -n +"$((SSHD_MARK + 1))" "$TE_TMP/sshd.log")
	check "sshd accepted the configured client key" \
		grep -q "Accepted publickey for root .*$(key_fp client_key)" <<<"$sshd_log"
	check "sshd never accepted the stranger key" \
		bash -c '! grep -q "Accepted publickey.*$1" <<<"$2"' _ "$(key_fp stranger_key)" "$sshd_log"
	dump_jobs "$TE_TMP/jobs2.json"
	kill -TERM "$SRV_PID"
	stop_status "$SRV_PID" 60
	check "server 2 stopped cleanly" test "$STOP_RC" = 0
fi

# ---- no secret anywhere the server writes -------------------------------------------------
check "no secret in the server log" no_secret_in "$LOG"
check "no secret in any job's JSON" no_secret_in "$TE_TMP"/jobs*.json
check "no secret under the state dirs" no_secret_in "$TE_TMP"/state*
check "job JSON was collected" test -s "$TE_TMP/jobs1.json"
if [ "$TE_FAILS" -gt 0 ]; then
	tail -n 20 "$LOG" "$TE_TMP/sshd.log" "$TE_TMP/lighttpd.log" >&2
fi
te_finish
