#!/usr/bin/env bash
# make test: every test of the project against throwaway clusters.
#
# 1. the shim's unit test programs (built by make into shim/build*/unit/);
# 2. pg_regress over sql/ against a cluster started here;
# 3. the TAP tests in test/t/ (several processes, crashes, restarts), which
#    start clusters of their own.
# The cluster is stopped whatever happens; the last line says
# "N passed, M failed" and the exit status is non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
. test/lib/cluster.sh

work=$(mktemp -d /tmp/actloom-test.XXXXXX)
chmod 755 "$work"
cleanup() {
	cluster_stop "$work/regress"
	rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
failures=()

# --- unit tests of the shim --------------------------------------------------
unitdir=shim/build$([ "${SANITIZE:-}" = 1 ] && echo -san)/unit
for t in "$unitdir"/test_*; do
	[ -x "$t" ] || continue
	if "$t" >"$work/unit.out" 2>&1; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("unit: $(basename "$t")")
		grep -v '^ok' "$work/unit.out"
	fi
done

# --- pg_regress ----------------------------------------------------------
# Two key rings outside the data directory: the one the server starts with,
# and the same keys plus a second, active one, which sql/seal.sql rotates to
# (it finds the directory in ACTLOOM_TEST_KEYS).
keys=$work/keys
mkdir -m 700 "$keys"
[ "$(id -u)" -eq 0 ] && chown postgres: "$keys"
keyring_create "$keys/keyring" || exit 1
(umask 077 && { grep -v '^active' "$keys/keyring"; echo "key 2 $(openssl rand -hex 32)"; echo "active 2"; } \
	>"$keys/keyring-rotated") || exit 1
[ "$(id -u)" -eq 0 ] && chown postgres: "$keys/keyring-rotated"
export ACTLOOM_TEST_KEYS=$keys

port=$(free_port)
cluster_init "$work/regress" &&
	cluster_start "$work/regress" "$port" -c fsync=off -c actloom.keyring_file="$keys/keyring" || exit 1

make --no-print-directory PG_CONFIG="$PG_CONFIG" installcheck \
	PGHOST="$work/regress/sock" PGPORT="$port" PGUSER=postgres 2>&1 | tee "$work/regress.out"
regress_status=${PIPESTATUS[0]}
ok=$(grep -cE '\.\.\. ok' "$work/regress.out")
bad=$(grep -cE '\.\.\. FAILED' "$work/regress.out")
passed=$((passed + ok))
failed=$((failed + bad))
if [ "$bad" -gt 0 ]; then
	failures+=("pg_regress: $bad of $((ok + bad)) files")
elif [ "$regress_status" -ne 0 ]; then
	failed=$((failed + 1))
	failures+=("pg_regress did not run (exit $regress_status)")
fi
[ -f regression.diffs ] && { echo "--- regression.diffs ---"; cat regression.diffs; }
cluster_stop "$work/regress"

# --- documentation ---------------------------------------------------------
# The verification query the README gives auditors is the one the tests run.
if diff <(awk '/^### Verifying/ {v = 1} v && /^```sql$/ {on = 1; next} on && /^```$/ {exit} on' README.md) \
	test/audit-verify.sql; then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
	failures+=("docs: the README's verification query differs from test/audit-verify.sql")
fi

# --- TAP -------------------------------------------------------------------
# The upgrade test populates its 0.1 database with the library of 0.1, built
# here from the release commit; without it (no history in this clone) the
# test says so and populates it with the current library.
if ACTLOOM_V01_LIB=$(test/upgrade/build-0.1.sh "$work/v0.1" 2>"$work/v0.1.log"); then
	export ACTLOOM_V01_LIB
else
	echo "the upgrade test runs without the 0.1 library:"
	tail -n 5 "$work/v0.1.log"
fi

# The TAP clusters run as the postgres OS user too, so the tests run from a
# copy it can read and write.
if compgen -G "test/t/*.pl" >/dev/null; then
	cp -r test "$work/tap"
	[ "$(id -u)" -eq 0 ] && chown -R postgres: "$work/tap"
	perl_lib="$($PG_CONFIG --pkglibdir)/pgxs/src/test/perl"
	for t in test/t/*.pl; do
		if as_pg env -C "$work/tap" PATH="$PG_BINDIR:$PATH" TESTDIR="$work/tap" ACTLOOM_V01_LIB="${ACTLOOM_V01_LIB:-}" \
			PG_REGRESS="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" PGUSER=postgres \
			prove -I "$perl_lib" -I "$work/tap/lib/perl" "t/$(basename "$t")"; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
			find "$work/tap/tmp_check/log" -name "*$(basename "$t" .pl)*" -type f \
				-exec tail -n 40 {} + 2>/dev/null || true
			# The failing checks go into the summary, which CI shows last.
			why=$(grep -h -A3 '^not ok' "$work/tap/tmp_check/log/regress_log_$(basename "$t" .pl)" 2>/dev/null |
				head -n 12 | sed 's/^/    /')
			failures+=("tap: $t${why:+$'\n'$why}")
		fi
	done
fi

echo
for f in "${failures[@]}"; do echo "FAILED $f"; done
echo "summary: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
