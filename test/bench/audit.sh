#!/usr/bin/env bash
# make bench ONLY=audit: appending and verifying the audit trail.
#
#   audit.append_8co_vs_plain   8 clients over 8 companies, audited appends
#                               against plain INSERTs of the same row shape
#   audit.append_hot_tps        8 clients on one company: appends per second
#   audit.append_hot_vs_plain   the same against plain INSERTs
#   audit.verify_c_vs_sql       1,000,000 entries: the SQL query's time over
#                               audit_verify()'s
#   audit.verify_c_vs_count     audit_verify()'s time over a count(*) scan
#
# Baselines run in the same script, in turns with what they measure.
set -euo pipefail
cd "$(dirname "$0")/../.."
psql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
pgbench() { "$PG_BINDIR/pgbench" "$@"; }
secs=${BENCH_SECONDS:-10}
tmp=$BENCH_WORK/audit
mkdir -p "$tmp"

psql <<'SQL'
CREATE TABLE bench_targets (n int PRIMARY KEY, c uuid NOT NULL);
INSERT INTO bench_targets SELECT n, gen_random_uuid() FROM generate_series(1, 8) n;
-- The unaudited baseline: the same columns and primary key.
CREATE TABLE plain_log (LIKE actloom.audit_log INCLUDING DEFAULTS);
ALTER TABLE plain_log ADD PRIMARY KEY (chain, seq);
CREATE SEQUENCE plain_seq;
SQL

cat >"$tmp/audit_8co.sql" <<'SQL'
\set r random(1, 8)
SELECT actloom._audit_to(c, 'reports.generate', 'report', 'r-42', '{"format": "pdf"}') FROM bench_targets WHERE n = :r;
SQL
cat >"$tmp/plain_8co.sql" <<'SQL'
\set r random(1, 8)
INSERT INTO plain_log SELECT c, nextval('plain_seq'), now(), NULL, NULL, NULL, NULL, 'reports.generate', 'report', 'r-42', '{"format": "pdf"}', '\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', '\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f' FROM bench_targets WHERE n = :r;
SQL
sed 's/random(1, 8)/random(1, 1)/' "$tmp/audit_8co.sql" >"$tmp/audit_hot.sql"
sed 's/random(1, 8)/random(1, 1)/' "$tmp/plain_8co.sql" >"$tmp/plain_hot.sql"

# Transactions per second of one pgbench run.
tps() {
	pgbench -n -M prepared -c 8 -j 2 -T "$secs" -f "$1" 2>/dev/null |
		sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
# Mean of two turns each, alternating baseline and subject.
compare() {
	local base=$1 subject=$2 b1 s1 b2 s2
	b1=$(tps "$base"); s1=$(tps "$subject"); b2=$(tps "$base"); s2=$(tps "$subject")
	echo "$(echo "($b1 + $b2) / 2" | bc -l) $(echo "($s1 + $s2) / 2" | bc -l)"
}

read -r plain audited < <(compare "$tmp/plain_8co.sql" "$tmp/audit_8co.sql")
printf 'BENCH audit.append_8co_tps %.0f tps goal >= 0\n' "$audited"
printf 'BENCH audit.append_8co_plain_tps %.0f tps goal >= 0\n' "$plain"
printf 'BENCH audit.append_8co_vs_plain %.2f ratio goal >= 0.7\n' "$(echo "$audited / $plain" | bc -l)"

read -r plain audited < <(compare "$tmp/plain_hot.sql" "$tmp/audit_hot.sql")
printf 'BENCH audit.append_hot_tps %.0f tps goal >= 3000\n' "$audited"
printf 'BENCH audit.append_hot_vs_plain %.2f ratio goal >= 0\n' "$(echo "$audited / $plain" | bc -l)"

# Verification of 1,000,000 entries in ten chains.
psql <<'SQL'
INSERT INTO actloom.audit_log (chain, seq, at, action, target_type, target_id, detail, prev_hash, hash)
SELECT c.c, 0, now(), 'bench.fill', 'report', i::text, jsonb_build_object('i', i, 'format', 'pdf'), '', ''
  FROM generate_series(1, 100000) i,
	   (SELECT gen_random_uuid() AS c FROM generate_series(1, 10)) c;
VACUUM ANALYZE actloom.audit_log;
SQL
# Milliseconds of a query, best of two.
ms() {
	local best=0 t0 t1 i
	for i in 1 2; do
		t0=$(date +%s%N)
		psql -c "$1" >/dev/null
		t1=$(date +%s%N)
		local t=$(((t1 - t0) / 1000000))
		if [ "$best" -eq 0 ] || [ "$t" -lt "$best" ]; then best=$t; fi
	done
	echo "$best"
}
entries=$(psql -tAc "SELECT count(*) FROM actloom.audit_log")
c_ms=$(ms "SELECT count(*) FROM actloom.audit_verify() WHERE ok")
sql_ms=$(ms "SELECT count(*) FROM ($(cat test/audit-verify.sql)) v WHERE ok")
count_ms=$(ms "SELECT count(*) FROM actloom.audit_log")
printf 'BENCH audit.verify_entries %d entries goal >= 1000000\n' "$entries"
printf 'BENCH audit.verify_c_ms %d ms goal >= 0\n' "$c_ms"
printf 'BENCH audit.verify_sql_ms %d ms goal >= 0\n' "$sql_ms"
printf 'BENCH audit.verify_c_vs_sql %.1f times goal >= 5\n' "$(echo "$sql_ms / $c_ms" | bc -l)"
printf 'BENCH audit.verify_c_vs_count %.1f times goal >= 0\n' "$(echo "$c_ms / $count_ms" | bc -l)"
