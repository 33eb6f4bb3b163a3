#!/usr/bin/env bash
# make bench [ONLY=area]: every benchmark in test/bench/ against a throwaway
# cluster.  Each test/bench/<area>.sh receives PGHOST, PGPORT, PGUSER and
# PGDATABASE (a fresh database with the extension), BENCH_WORK (a scratch
# directory), BENCH_KEYS (the directory of the server's key ring, "keyring")
# and PG_BINDIR, and prints lines
#     BENCH <area>.<name> <value> <unit> goal <op> <target>
# A figure that compares with a baseline measures both in the same run.
set -uo pipefail
cd "$(dirname "$0")/.."
. test/lib/cluster.sh

only=${ONLY:-}
work=$(mktemp -d /tmp/actloom-bench.XXXXXX)
chmod 755 "$work"
trap 'cluster_stop "$work/pg"; rm -rf "$work"' EXIT

port=$(free_port)
cluster_init "$work/pg" || exit 1
# A master key ring outside the data directory, in a directory only the
# server's OS user may enter (benchmarks add rings of their own there).
keys=$work/keys
mkdir -m 700 "$keys"
[ "$(id -u)" -eq 0 ] && chown postgres: "$keys"
keyring_create "$keys/keyring" || exit 1
# Production-like durability: fsync and synchronous commit stay on.
cluster_start "$work/pg" "$port" -c max_connections=200 -c shared_buffers=512MB \
	-c actloom.keyring_file="$keys/keyring" || exit 1

export PGHOST=$work/pg/sock PGPORT=$port PGUSER=postgres BENCH_WORK=$work BENCH_KEYS=$keys PG_BINDIR
status=0
for script in test/bench/*.sh; do
	area=$(basename "$script" .sh)
	[ -n "$only" ] && [ "$only" != "$area" ] && continue
	"$PG_BINDIR/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS bench_$area" -c "CREATE DATABASE bench_$area" || exit 1
	"$PG_BINDIR/psql" -X -q -d "bench_$area" -c "CREATE EXTENSION actloom CASCADE" 2>/dev/null || exit 1
	PGDATABASE=bench_$area bash "$script" || { echo "bench $area failed" >&2; status=1; }
done
exit $status
