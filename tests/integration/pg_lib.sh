#!/usr/bin/env bash
# pg_lib.sh - a throwaway PostgreSQL for the tests: initdb into a temp dir,
# run by an unprivileged user (postgres refuses root; `nobody` when we are
# root), on a free loopback port with its unix socket in the temp dir,
# trust authentication, stopped and removed at the end.
#
# Sourced (after lib.sh) it gives te_pg_start / te_pg_stop / te_pg_psql;
# te_pg_start sets PG_DSN (a libpq connection string), PG_DIR and PG_PORT.
# Run as a script, `pg_lib.sh run COMMAND...` runs COMMAND with
# TE_TEST_PG_DSN set and the server stopped afterwards (the unit tests'
# postgres run).

TE_PG_BIN=${TE_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
PG_DIR=
PG_PORT=
PG_DSN=

# As the database's owner: nobody when we are root, else ourselves.
te_pg_as() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
	else
		"$@"
	fi
}

te_pg_free_port() {
	local port
	while :; do
		port=$((20000 + RANDOM % 12000))
		ss -Hltn "sport = :$port" | grep -q . || { echo "$port"; return; }
	done
}

te_pg_start() {
	[ -x "$TE_PG_BIN/initdb" ] || { echo "FATAL: PostgreSQL is not installed (tests/deps.sh)" >&2; return 1; }
	PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/te-pg.XXXXXX")
	chmod 0755 "$PG_DIR"
	[ "$(id -u)" -ne 0 ] || chown nobody:nogroup "$PG_DIR"
	PG_PORT=$(type te_free_port >/dev/null 2>&1 && te_free_port || te_pg_free_port)
	te_pg_as "$TE_PG_BIN/initdb" -D "$PG_DIR/data" -U tagexport \
		--auth=trust -E UTF8 --no-sync >"$PG_DIR/initdb.log" 2>&1 ||
		{ cat "$PG_DIR/initdb.log" >&2; return 1; }
	te_pg_server start || return 1
	PG_DSN="host=$PG_DIR port=$PG_PORT user=tagexport dbname=postgres"
}

# te_pg_server start|stop: the same data directory, port and socket.
te_pg_server() {
	if [ "$1" = stop ]; then
		te_pg_as "$TE_PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1
		return
	fi
	te_pg_as "$TE_PG_BIN/pg_ctl" -D "$PG_DIR/data" -w -t 60 \
		-l "$PG_DIR/server.log" \
		-o "-k $PG_DIR -p $PG_PORT -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on" \
		start >/dev/null 2>&1 || { cat "$PG_DIR/server.log" >&2; return 1; }
}

te_pg_stop() {
	[ -n "$PG_DIR" ] || return 0
	te_pg_server stop
	rm -rf "$PG_DIR"
	PG_DIR=
}

# te_pg_psql SQL: one value per line, with psql (a client we did not write).
te_pg_psql() {
	psql -X -A -t -q -v ON_ERROR_STOP=1 "$PG_DSN" -c "$1"
}

if [ "${BASH_SOURCE[0]}" = "$0" ] && [ "${1:-}" = run ]; then
	shift
	set -u
	trap te_pg_stop EXIT
	te_pg_start || exit 1
	TE_TEST_PG_DSN=$PG_DSN "$@"
	exit $?
fi
