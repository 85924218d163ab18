#!/usr/bin/env bash
# Three tagexport-server replicas on one real PostgreSQL (queue driver
# postgres), checked through their HTTP answers and with psql:
# - the same delivery sent to all three at once is one job;
# - two jobs needing the same content tag build it once: the second waits
#   on the advisory lock and finds it built;
# - kill -9 of the replica running a job: another takes it over once the
#   lease has run out, and finishes it;
# - 300 distinct deliveries, each also redelivered to another replica, are
#   exactly 300 jobs, each run once;
# - PostgreSQL stopped for 10 s: /healthz and intake answer 503, and once
#   it is back the redelivery is accepted and nothing accepted is lost.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/server_lib.sh"
. "$(dirname "$0")/pg_lib.sh"
te_require docker-registry skopeo buildah runc git busybox jq curl openssl psql

trap 'te_pg_stop; te_cleanup' EXIT
te_pg_start || exit 1
printf '%s\n' "$PG_DSN" >"$TE_TMP/pg.dsn"
sql() { te_pg_psql "$1"; }

start_registry REG
make_base_image "$REG/base/busybox:1"
server_files "replica-secret-$RANDOM"
LEASE=5

# "app": a quick COPY build; "slow": a build whose RUN takes 12 s, so that
# a job is surely running when a replica is killed or a second export
# needs the same content tag.
werf_origin "$TE_TMP/origin.git" "$TE_TMP/work" "$REG/base/busybox:1" replicas
werf_origin "$TE_TMP/slow.git" "$TE_TMP/slow" "$REG/base/busybox:1" slow
printf 'FROM %s\nCOPY version /version\nRUN sleep 12\n' "$REG/base/busybox:1" \
	>"$TE_TMP/slow/Dockerfile"

project() { # NAME GIT_URL REPO
	printf '  - name: %s\n    forge: github\n    repository: acme/%s\n' "$1" "$1"
	printf '    secret_file: hook.secret\n    git_url: %s\n' "$2"
	printf '    export:\n      repo: %s/stages\n      insecure_registry: true\n' "$3"
	printf '      tag: ["%s/%%image%%:%%git_tag%%"]\n' "$3"
}

declare -a PID PORT
start_replica() { # N
	local n=$1
	{
		cat <<YAML
listen: 127.0.0.1:0
state_dir: $TE_TMP/state-$n
workers: 1
admin_token_file: admin.token
retry_delay: 3600
max_attempts: 3
instance: build-$n
queue:
  driver: postgres
  dsn_file: pg.dsn
  lease: $LEASE
projects:
YAML
		project slow "$TE_TMP/slow.git" "$REG/slow"
		# fetches from a closed port: every job of "fl" fails with a
		# network error, once, and waits an hour (retry_delay) for its
		# next attempt, so a redelivery finds it queued and adds nothing
		project fl "http://127.0.0.1:1/fl.git" "127.0.0.1:1/fl"
	} >"$TE_TMP/server-$n.yaml"
	start_server "$TE_TMP/server-$n.yaml" "$TE_TMP/server-$n.log"
	PID[$n]=$SRV_PID
	PORT[$n]=$SRV_PORT
}
on() { SRV_PORT=${PORT[$1]}; } # the replica the next helper talks to
for n in 1 2 3; do start_replica "$n"; done
check "the schema was created once" test "$(sql 'SELECT count(*) FROM tagexport_schema')" = 1
check "no replica logs the DSN" not grep -q "$PG_DIR port=" "$TE_TMP"/server-*.log

job_of() { jq -r .job <<<"${1#* }"; }
# A job's field from its JSON in the database.
job_sql() { sql "SELECT doc::json->>'$2' FROM tagexport_jobs WHERE id = '$1'"; }

# ---- the same delivery to all three at once: one job ------------------------
C1=$(git_release "$TE_TMP/work" "$TE_TMP/origin.git" v0.0.1 zero)
github_body "$TE_TMP/same.json" acme/fl v0.0.1 "$C1"
posts=()
for n in 1 2 3; do
	(on "$n"; github_post fl "$TE_TMP/same.json" "$SECRET" same-delivery >"$TE_TMP/same.$n") &
	posts+=($!)
done
wait "${posts[@]}"
ids=$(for n in 1 2 3; do job_of "$(cat "$TE_TMP/same.$n")"; done | sort -u)
check "three 202s" test "$(cut -d' ' -f1 "$TE_TMP"/same.[123] | sort -u)" = 202
check "one job id in the three answers" test "$(wc -l <<<"$ids")" = 1
check "one row for the delivery (psql)" \
	test "$(sql "SELECT count(*) FROM tagexport_jobs WHERE delivery_key = E'fl\\nfl/same-delivery'")" = 1

# ---- one build per content tag ------------------------------------------------
S1=$(git_release "$TE_TMP/slow" "$TE_TMP/slow.git" s1 one)
git -C "$TE_TMP/slow" tag -a s2 -m s2 "$S1" && git -C "$TE_TMP/slow" push -q "$TE_TMP/slow.git" refs/tags/s2
github_body "$TE_TMP/s1.json" acme/slow s1 "$S1"
github_body "$TE_TMP/s2.json" acme/slow s2 "$S1"
on 1; J1=$(job_of "$(github_post slow "$TE_TMP/s1.json" "$SECRET" s1)")
on 2; J2=$(job_of "$(github_post slow "$TE_TMP/s2.json" "$SECRET" s2)")
check "s1 exported" wait_job "$J1" succeeded 300
check "s2 exported" wait_job "$J2" succeeded 300
built_meanwhile=$(sql "SELECT count(*) FROM tagexport_jobs WHERE id IN ('$J1', '$J2') AND doc::json->>'log' LIKE '%built meanwhile by another export%'")
check "the content tag was built once, the other export waited for it" test "$built_meanwhile" = 1
check "both tags point to the same image" \
	test "$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REG/slow/app:s1")" = \
	"$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REG/slow/app:s2")"

# ---- kill -9 of the replica running a job --------------------------------------
S3=$(git_release "$TE_TMP/slow" "$TE_TMP/slow.git" s3 three)
github_body "$TE_TMP/s3.json" acme/slow s3 "$S3"
on 3; J3=$(job_of "$(github_post slow "$TE_TMP/s3.json" "$SECRET" s3)")
running() { test "$(sql "SELECT state FROM tagexport_jobs WHERE id = '$J3'")" = 1; }
check "s3 runs" wait_until 60 running
runner=$(job_sql "$J3" runner)
victim=${runner#build-}
kill -9 "${PID[$victim]}"
killed_at=$(date +%s)
survivor=$((victim % 3 + 1))
on "$survivor"
check "s3 finished by another replica" wait_job "$J3" succeeded 120
took=$(($(date +%s) - killed_at))
# the lease, then the takeover's own 12 s build, plus a margin
check "takeover within lease + build + a few seconds ($took s)" test "$took" -le $((LEASE + 12 + 20))
check "attempt 2 ran elsewhere" test "$(job_sql "$J3" attempts)" = 2
check "runners name the dead replica, then another" \
	test "$(sql "SELECT doc::json->'runners'->>0 FROM tagexport_jobs WHERE id = '$J3'")" = "build-$victim"
check "the second runner is alive" \
	not test "$(job_sql "$J3" runner)" = "build-$victim"
alive=()
for n in 1 2 3; do [ "$n" = "$victim" ] || alive+=("$n"); done

# ---- 300 deliveries with redeliveries: 300 jobs, each run once ----------------
flood() { # FROM TO
	local i a b
	for i in $(seq "$1" "$2"); do
		github_body "$TE_TMP/f.json" acme/fl "v9.$i.0" "$C1"
		a=${alive[$((i % 2))]}
		b=${alive[$(((i + 1) % 2))]}
		on "$a"; github_post fl "$TE_TMP/f.json" "$SECRET" "flood-$i" | cut -d' ' -f1
		on "$b"; github_post fl "$TE_TMP/f.json" "$SECRET" "flood-$i" | cut -d' ' -f1
	done
}
codes=$(flood 1 300 | sort | uniq -c | awk '{print $2 ":" $1}')
check "600 posts, all 202 ($codes)" test "$codes" = "202:600"
flood_rows() { sql "SELECT count(*) FROM tagexport_jobs WHERE triple_key LIKE E'fl\\nv9.%' $1"; }
check "300 jobs" test "$(flood_rows '')" = 300
all_ran() { test "$(flood_rows "AND (doc::json->>'attempts')::int = 0")" = 0; }
check "every job ran" wait_until 300 all_ran
check "each exactly once" test "$(flood_rows "AND (doc::json->>'attempts')::int = 1")" = 300
check "one runner each" \
	test "$(flood_rows "AND json_array_length(doc::json->'runners') = 1")" = 300

# ---- PostgreSQL stopped for 10 s -------------------------------------------------
before=$(sql 'SELECT count(*) FROM tagexport_jobs')
te_pg_server stop
on "${alive[0]}"
health=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SRV_PORT/healthz")
check "/healthz 503 without the database" test "$health" = 503
github_body "$TE_TMP/out.json" acme/fl v8.0.0 "$C1"
r=$(github_post fl "$TE_TMP/out.json" "$SECRET" during-outage)
check "intake 503 without the database" test "${r%% *}" = 503
sleep 10
te_pg_server start
back() { test "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SRV_PORT/healthz")" = 200; }
check "/healthz 200 again" wait_until 30 back
r=$(github_post fl "$TE_TMP/out.json" "$SECRET" during-outage)
check "the forge's redelivery is accepted" test "${r%% *}" = 202
check "nothing accepted was lost" test "$(sql 'SELECT count(*) FROM tagexport_jobs')" = $((before + 1))
new_ran() { test "$(job_sql "$(job_of "$r")" attempts)" = 1; }
check "the new job runs" wait_until 60 new_ran
check "no job ran twice" test "$(sql "SELECT count(*) FROM tagexport_jobs WHERE (doc::json->>'attempts')::int > 1 AND id <> '$J3'")" = 0

te_finish
