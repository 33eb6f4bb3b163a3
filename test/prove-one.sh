#!/usr/bin/env bash
# Run some TAP tests alone, as "make test" runs them: test/prove-one.sh t/NNN_x.pl ...
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib/cluster.sh
work=$(mktemp -d /tmp/actloom-tap.XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
cp -r test "$work/tap"
ACTLOOM_V01_LIB=$(test/upgrade/build-0.1.sh "$work/v0.1") && export ACTLOOM_V01_LIB
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$work/tap"
as_pg env -C "$work/tap" PATH="$PG_BINDIR:$PATH" TESTDIR="$work/tap" ACTLOOM_V01_LIB="${ACTLOOM_V01_LIB:-}" PG_REGRESS="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" \
	PGUSER=postgres prove -v -I "$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/perl" \
	-I "$work/tap/lib/perl" "$@" || { tail -n 60 "$work"/tap/tmp_check/log/regress_log_*; exit 1; }
