#!/usr/bin/env bash
# t09-registry-faults: `tagexport export` through servers/fault_proxy.py,
# a reverse proxy in front of the stages registry (source side) and one
# in front of the target registry (upload side) that injects: 429 with
# Retry-After (seconds and HTTP-date), 503s, a connection reset in the
# middle of a blob GET, a truncated blob body, a failed blob PUT and
# BLOB_UPLOAD_INVALID.  Every export still succeeds and skopeo verifies
# the result (a copy to dir: checks every digest).  Then chunked uploads
# (OCI-Chunk-Min-Length, and a registry refusing monolithic PUTs), and a
# registry that never recovers: a clear error in bounded time.
# Resumed uploads: a registry answering 500 to the first PATCH/PUT of
# every upload session after taking part of its body (monolithic,
# chunked, and a later chunk): every blob keeps its one session and goes
# on from the registry's offset; a session the registry forgot is
# replaced by one new session, unless its blob was committed (a lost
# answer to the final PUT).
. "$(dirname "$0")/lib.sh"
te_require docker-registry skopeo buildah git jq curl python3
SERVERS=$(cd "$(dirname "$0")/servers" && pwd)

start_registry REG
start_registry REG2
R1=$TE_TMP/rules-src.json
R2=$TE_TMP/rules-dst.json
L1=$TE_TMP/proxy-src.log
L2=$TE_TMP/proxy-dst.log
echo '[]' >"$R1"
echo '[]' >"$R2"
start_py_server PX1 "$SERVERS/fault_proxy.py" --upstream "$REG" --rules "$R1" --log "$L1"
start_py_server PX2 "$SERVERS/fault_proxy.py" --upstream "$REG2" --rules "$R2" --log "$L2"

proj=$TE_TMP/project
make_scratch_project "$proj" 3
STATE=$TE_TMP/state
unset REGISTRY_AUTH_FILE XDG_RUNTIME_DIR
mkdir -p "$TE_TMP/dc"
echo '{}' >"$TE_TMP/dc/config.json"
export DOCKER_CONFIG=$TE_TMP/dc

"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" --repo "$REG/t/stages" \
	--tag "$REG/warm/app:1" --report-path "$TE_TMP/warm.json" >/dev/null 2>"$TE_TMP/warm.err"
check "stages image built" test $? -eq 0
STAGES_TAG=$(jq -r .images.app.content_based_tag "$TE_TMP/warm.json")
LAYERS=$(skopeo inspect --tls-verify=false "docker://$REG/t/stages:$STAGES_TAG" | jq -r '.Layers[]')
BIG=$(for l in $LAYERS; do
	printf '%s %s\n' "$(curl -sI "http://$REG/v2/t/stages/blobs/$l" | tr -d '\r' | awk 'tolower($1)=="content-length:" {print $2}')" "$l"
done | sort -n | tail -1 | cut -d' ' -f2)

# export through both proxies (stages repo reached through PX1)
px_export() { # TAG [ARGS]
	local tag=$1
	shift
	"$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" --repo "$PX1/t/stages" \
		--tag "$tag" --verbose "$@"
}
verify_copy() { # REF: skopeo re-checks every blob digest; layers equal
	rm -rf "$TE_TMP/verify"
	skopeo copy -q --src-tls-verify=false "docker://$1" "dir:$TE_TMP/verify" &&
		test "$(skopeo inspect --tls-verify=false "docker://$1" | jq -c .Layers)" = \
			"$(skopeo inspect --tls-verify=false "docker://$REG/t/stages:$STAGES_TAG" | jq -c .Layers)"
}
logged() { # LOG FILTER [JQ-ARGS]: some log line matches the jq filter
	local log=$1 filter=$2
	shift 2
	jq -c "$@" "select($filter)" "$log" | grep -q .
}
nlogged() { # LOG FILTER: how many log lines match
	jq -c "select($2)" "$1" | wc -l
}
fired() { # LOG RULE-NAME
	logged "$1" '.rule == $r' --arg r "$2"
}

HTTPDATE=$(LC_ALL=C date -u -d '+1 second' '+%a, %d %b %Y %H:%M:%S GMT')
cat >"$R1" <<JSON
[
 {"name": "manifest-503", "method": "GET", "path": "/manifests/", "action": "status", "status": 503},
 {"name": "blob-reset", "method": "GET", "path": "/blobs/$BIG", "action": "reset", "after": 65536},
 {"name": "blob-truncate", "method": "GET", "path": "/blobs/$BIG", "action": "truncate", "after": 1000000}
]
JSON
cat >"$R2" <<JSON
[
 {"name": "head-429", "method": "HEAD", "path": "/blobs/", "action": "status", "status": 429,
  "headers": {"Retry-After": "1"},
  "body": "{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"slow down\"}]}"},
 {"name": "post-503", "method": "POST", "path": "/blobs/uploads/", "action": "status", "status": 503},
 {"name": "put-503", "method": "PUT", "path": "/blobs/uploads/", "action": "status", "status": 503},
 {"name": "put-upload-invalid", "method": "PUT", "path": "/blobs/uploads/", "action": "status", "status": 404,
  "body": "{\"errors\":[{\"code\":\"BLOB_UPLOAD_INVALID\",\"message\":\"blob upload invalid\"}]}"},
 {"name": "manifest-429-date", "method": "PUT", "path": "/manifests/", "action": "status", "status": 429,
  "headers": {"Retry-After": "$HTTPDATE"}}
]
JSON
t0=$(date +%s.%N)
px_export "$PX2/faults/app:1" >"$TE_TMP/faults.out" 2>"$TE_TMP/faults.err"
rc=$?
cp "$L2" "$TE_TMP/faults-dst.log"
check "export through faults succeeds" test "$rc" -eq 0
check "result verified by skopeo" verify_copy "$REG2/faults/app:1"
for r in manifest-503 blob-reset blob-truncate; do
	check "source fault $r injected" fired "$L1" "$r"
done
for r in head-429 post-503 put-503 put-upload-invalid manifest-429-date; do
	check "target fault $r injected" fired "$L2" "$r"
done
check "Retry-After honoured (>= 1 s pause)" test "$(echo "$(elapsed_since "$t0") > 2" | bc)" -eq 1
check "blob restarted from the source" test "$(jq -c --arg b "/v2/t/stages/blobs/$BIG" 'select(.path == $b and .method == "GET")' "$L1" | wc -l)" -ge 3

# chunked uploads: OCI-Chunk-Min-Length on the session
: >"$L2"
cat >"$R2" <<JSON
[{"name": "chunk-min", "method": "POST", "path": "/blobs/uploads/", "action": "headers", "times": -1,
  "headers": {"OCI-Chunk-Min-Length": "1048576"}}]
JSON
px_export "$PX2/chunked/app:1" >/dev/null 2>"$TE_TMP/chunked.err"
check "OCI-Chunk-Min-Length: export succeeds" test $? -eq 0
check "OCI-Chunk-Min-Length: result verified" verify_copy "$REG2/chunked/app:1"
check "PATCH chunks were sent" test "$(jq -c 'select(.method == "PATCH")' "$L2" | wc -l)" -ge 3
check "every chunk but a blob's last >= 1 MiB" test -z "$(jq -r 'select(.method == "PATCH") | "\(.path) \(.len) \(.range)"' "$L2" |
	awk '{ if (prev != "" && prevlen < 1048576 && prevpath == $1) print "short"; prev = $0; prevlen = $2; prevpath = $1 }')"
check "chunks carry Content-Range" test -z "$(jq -r 'select(.method == "PATCH" and .range == null)' "$L2")"
check "final PUT without body" test -z "$(jq -r 'select(.method == "PUT" and (.path | contains("/blobs/uploads/")) and .len > 0)' "$L2")"

# a registry refusing monolithic PUTs with a body: fall back to chunks
: >"$L2"
cat >"$R2" <<JSON
[{"name": "no-monolithic", "method": "PUT", "path": "/blobs/uploads/", "action": "reject_body", "status": 405, "times": -1,
  "body": "{\"errors\":[{\"code\":\"UNSUPPORTED\",\"message\":\"chunked only\"}]}"}]
JSON
px_export "$PX2/nomono/app:1" >/dev/null 2>"$TE_TMP/nomono.err"
check "monolithic PUT refused: export succeeds" test $? -eq 0
check "monolithic PUT refused: result verified" verify_copy "$REG2/nomono/app:1"
check "monolithic PUT refused: switched to PATCH" test "$(jq -c 'select(.method == "PATCH")' "$L2" | wc -l)" -ge 1

# resumed uploads: the proxy stores half of the first PATCH/PUT of every
# session in the registry, then answers 500
one_session_per_blob() { # NAME: POSTs = committed blobs (in $L2)
	check "$1: one session per blob (POSTs = committed blobs)" test "$(nlogged "$L2" '.method == "POST"')" -eq \
		"$(nlogged "$L2" '.method == "PUT" and (.path | contains("/blobs/uploads/")) and .status == 201')"
}
resume_ok() { # NAME: one session per blob, each fault resumed at the offset
	check "$1: export succeeds" test "$rc" -eq 0
	check "$1: result verified by skopeo" verify_copy "$REG2/$1/app:1"
	check "$1: every session failed once" test "$(nlogged "$L2" '.rule == "first-write"')" -eq "$(nlogged "$L2" '.method == "POST"')"
	one_session_per_blob "$1"
	check "$1: continued from the registry's offset, not byte 0" python3 - "$L2" first-write <<'PY'
import json, sys
log = [json.loads(line) for line in open(sys.argv[1])]
past0 = 0
for i, f in enumerate(log):
    if f.get("rule") != sys.argv[2]:
        continue
    want = int((f["range"] or "0-").split("-")[0]) + f["forwarded"]
    nxt = [e for e in log[i + 1:] if e["path"] == f["path"] and
           e["method"] in ("PATCH", "PUT")][:1]
    if not nxt or nxt[0]["method"] != "PATCH" or \
            int(nxt[0]["range"].split("-")[0]) != want:
        sys.exit("%s: after the fault %s, wanted a PATCH from %d" %
                 (f["path"], nxt, want))
    past0 += want > 0
sys.exit(0 if past0 else "no session had an offset > 0")
PY
}
: >"$L1"
: >"$L2"
cat >"$R2" <<JSON
[{"name": "first-write", "method": ["PUT", "PATCH"], "path": "/blobs/uploads/.", "action": "session_fail",
  "forward": 0.5, "times": -1}]
JSON
px_export "$PX2/resume/app:1" >/dev/null 2>"$TE_TMP/resume.err"
rc=$?
resume_ok resume
check "resume: the big layer's hash restarted at a checkpoint (ranged source GET)" \
	logged "$L1" '.path == $b and .method == "GET" and .req_range == "bytes=1048576-"' --arg b "/v2/t/stages/blobs/$BIG"

: >"$L2"
cat >"$R2" <<JSON
[{"name": "first-write", "method": "PATCH", "path": "/blobs/uploads/.", "action": "session_fail",
  "forward": 0.5, "times": -1},
 {"name": "no-monolithic", "method": "PUT", "path": "/blobs/uploads/", "action": "reject_body", "status": 405, "times": -1,
  "body": "{\"errors\":[{\"code\":\"UNSUPPORTED\",\"message\":\"chunked only\"}]}"}]
JSON
# ... and a source that ignores Range: its 200 is read from byte 0
: >"$L1"
cat >"$R1" <<JSON
[{"name": "no-range", "method": "GET", "path": "/blobs/", "action": "no_range", "times": -1}]
JSON
px_export "$PX2/resume-chunked/app:1" >/dev/null 2>"$TE_TMP/resume-chunked.err"
rc=$?
resume_ok resume-chunked
check "resume-chunked: a ranged source GET answered 200" \
	logged "$L1" '.path == $b and .req_range == "bytes=1048576-" and .status == 200' --arg b "/v2/t/stages/blobs/$BIG"
echo '[]' >"$R1"

# a later chunk fails: the hash resumes from the acknowledged chunk
: >"$L1"
: >"$L2"
cat >"$R2" <<JSON
[{"name": "chunk-min", "method": "POST", "path": "/blobs/uploads/", "action": "headers", "times": -1,
  "headers": {"OCI-Chunk-Min-Length": "1048576"}},
 {"name": "first-write", "method": "PATCH", "path": "/blobs/uploads/.", "action": "session_fail",
  "nth": 2, "forward": 0.5, "times": -1}]
JSON
px_export "$PX2/resume-chunk2/app:1" >/dev/null 2>"$TE_TMP/resume-chunk2.err"
rc=$?
check "resume-chunk2: export succeeds" test "$rc" -eq 0
check "resume-chunk2: result verified by skopeo" verify_copy "$REG2/resume-chunk2/app:1"
check "resume-chunk2: the second chunk failed after 512 KiB" \
	logged "$L2" '.rule == "first-write" and .range == "1048576-2097151" and .forwarded == 524288'
check "resume-chunk2: went on at byte 1572864" logged "$L2" '.method == "PATCH" and (.range // "" | startswith("1572864-"))'
check "resume-chunk2: source resent from the acknowledged chunk only" \
	logged "$L1" '.path == $b and .method == "GET" and .req_range == "bytes=1048576-"' --arg b "/v2/t/stages/blobs/$BIG"
one_session_per_blob resume-chunk2

# a session the registry forgot: its status GET answers 404, a new one
: >"$L2"
cat >"$R2" <<JSON
[{"name": "lost-write", "method": ["PUT", "PATCH"], "path": "/blobs/uploads/.", "action": "session_fail", "status": 404,
  "body": "{\"errors\":[{\"code\":\"BLOB_UPLOAD_UNKNOWN\",\"message\":\"blob upload unknown\"}]}"},
 {"name": "lost-status", "method": "GET", "path": "/blobs/uploads/.", "action": "status", "status": 404,
  "body": "{\"errors\":[{\"code\":\"BLOB_UPLOAD_UNKNOWN\",\"message\":\"blob upload unknown\"}]}"}]
JSON
px_export "$PX2/lost/app:1" >/dev/null 2>"$TE_TMP/lost.err"
check "lost session: export succeeds" test $? -eq 0
check "lost session: result verified by skopeo" verify_copy "$REG2/lost/app:1"
check "lost session: the registry was asked first" fired "$L2" lost-status
check "lost session: exactly one more session than blobs" test "$(nlogged "$L2" '.method == "POST"')" -eq \
	"$(($(nlogged "$L2" '.method == "PUT" and (.path | contains("/blobs/uploads/")) and .status == 201') + 1))"

# a committing PUT whose answer is lost: the blob is there, no new session
: >"$L2"
cat >"$R2" <<JSON
[{"name": "lost-answer", "method": "PUT", "path": "/blobs/uploads/.", "action": "lose_answer", "times": -1}]
JSON
px_export "$PX2/lostanswer/app:1" >/dev/null 2>"$TE_TMP/lostanswer.err"
check "lost answer: export succeeds" test $? -eq 0
check "lost answer: result verified by skopeo" verify_copy "$REG2/lostanswer/app:1"
check "lost answer: every blob committed by its first PUT" test "$(nlogged "$L2" '.rule == "lost-answer" and .upstream == 201')" -ge 2
check "lost answer: no blob uploaded again" test "$(nlogged "$L2" '.method == "POST"')" -eq \
	"$(nlogged "$L2" '.rule == "lost-answer"')"

# a registry that never recovers: clear error, bounded time
cat >"$R2" <<JSON
[{"name": "down", "path": "/v2/", "action": "status", "status": 503, "times": -1,
  "body": "{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"maintenance\"}]}"}]
JSON
t0=$(date +%s.%N)
TAGEXPORT_REGISTRY_RETRY_TIMEOUT=10 "$TAGEXPORT" export --dir "$proj" --state-dir "$STATE" \
	--repo "$PX1/t/stages" --tag "$PX2/down/app:1" >/dev/null 2>"$TE_TMP/down.err"
rc=$?
took=$(elapsed_since "$t0")
check "never recovers: export fails" test "$rc" -ne 0
check "never recovers: error names the status and code" grep -q "503 UNAVAILABLE: maintenance" "$TE_TMP/down.err"
check "never recovers: error says it gave up" grep -q "gave up after [0-9]* tries" "$TE_TMP/down.err"
check "never recovers: within the retry budget ($took s)" test "$(echo "$took < 20" | bc)" -eq 1
[ "$TE_FAILS" -eq 0 ] || { tail -n 20 "$TE_TMP"/*.err >&2; cat "$L1" "$L2" >&2; }
te_finish
