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
