# shellcheck shell=bash
# bench/lib.sh - setup shared by the tagexport-server benches (sourced
# after tests/integration/lib.sh, with $top the source tree).

# bench_dirs NAME: SECRET (fresh) written to $W/secret, W ($TE_TMP/NAME)
# for the run's files, and STATE, the server's durable state on the real
# disk rather than a tmpfs (under BENCH_STATE_PARENT, default the build
# dir), removed at exit.
bench_dirs() {
	SECRET="bench-secret-$RANDOM$RANDOM"
	W=$TE_TMP/$1
	mkdir -p "$W"
	STATE=$(mktemp -d "${BENCH_STATE_PARENT:-$top/build}/$1-state.XXXXXX") || exit 1
	trap 'rm -rf "$STATE"; te_cleanup' EXIT
	printf '%s\n' "$SECRET" >"$W/secret"
}

# bench_project [TAG_GLOB]: the "projects:" YAML of one GitHub project
# "app" (acme/app, secret $W/secret) whose exports go to a closed port:
# the benches measure intake, no job is meant to run.
bench_project() {
	printf 'projects:\n  - name: app\n    forge: github\n    repository: acme/app\n'
	printf '    secret_file: %s/secret\n    git_url: %s/none.git\n' "$W" "$W"
	if [ -n "${1:-}" ]; then
		printf '    tags: ["%s"]\n' "$1"
	fi
	printf '    export:\n      repo: 127.0.0.1:1/app/stages\n'
	printf '      tag: ["127.0.0.1:1/app/%%image%%:%%git_tag%%"]\n'
}

# bench_accepted_bodies FILE N: N signed GitHub pushes of distinct tags
# (v1.<i>.0) for project "app", one "<hex hmac> <body>" line each, for
# bench/wrk-dynamic.lua; signed with $SECRET (perl Digest::SHA).
bench_accepted_bodies() {
	perl -MDigest::SHA=hmac_sha256_hex -e '
		my ($secret, $n, $file) = @ARGV;
		open(my $all, ">", $file) or die;
		for my $i (1 .. $n) {
			my $c = substr(Digest::SHA::sha1_hex("c$i"), 0, 40);
			my $b = "{\"ref\":\"refs/tags/v1.$i.0\",\"before\":\"0000000000000000000000000000000000000000\",\"after\":\"$c\",\"created\":true,\"deleted\":false,\"head_commit\":{\"id\":\"$c\"},\"repository\":{\"full_name\":\"acme/app\"}}";
			print $all hmac_sha256_hex($b, $secret), " ", $b, "\n";
		}
	' "$SECRET" "$2" "$1"
}

# bench_wrk_summary < WRK_OUTPUT (run with --latency): "req/s p99_ms non2xx".
bench_wrk_summary() {
	awk '
		/^Requests\/sec:/ {rps = $2}
		$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000}
			else if (v ~ /ms$/) {sub(/ms$/, "", v)}
			else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; p99 = sprintf("%.2f", v)}
		/Non-2xx/ {non = $5}
		END {print (rps ? rps : 0), (p99 != "" ? p99 : "?"), (non ? non : 0)}'
}
