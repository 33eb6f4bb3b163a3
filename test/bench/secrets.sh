#!/usr/bin/env bash
# make bench ONLY=secrets: API key authentication, unsealing, master key
# rotation and password verification, each against its baseline in the same
# run (see test/run-bench.sh for the environment).
#
#   secrets.auth_vs_pk_select        authenticate_api_key through pgbench
#                                    (prepared, 8 clients) against a primary
#                                    key SELECT of actloom.api_keys
#   secrets.unseal_vs_decrypt_aes    unsealing 1 KiB against pgcrypto's
#   secrets.unseal_vs_pgp_sym        decrypt(..., 'aes') and pgp_sym_decrypt,
#                                    per call, inside one statement each
#   secrets.rotate_vs_reseal         rotate_master_key with 10,000 companies
#                                    of 10 secrets each, against re-sealing
#                                    the 100,000 secrets
#   secrets.verify_unknown_vs_known  verify_password of an unknown email
#                                    against a known one with a wrong password
set -euo pipefail

psql() { "$PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 "$@"; }
pgbench() { "$PG_BINDIR/pgbench" -n -M prepared -c 8 -j 2 "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
tps() { sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -n 1; }
work=$BENCH_WORK/secrets
mkdir -p "$work"

# --- fixture: a company with a user and an API key -------------------------
psql <<'SQL'
SELECT actloom.create_user('bench@example.test', 'correct horse battery') \gset
BEGIN;
SELECT actloom.act_as(:'create_user') \g /dev/null
SELECT actloom.create_company('Bench') AS company \gset
COMMIT;
BEGIN;
SELECT actloom.act_as(:'create_user', :'company') \g /dev/null
SELECT actloom.api_key_create(:'company', 'bench', ARRAY['reports.*']) AS key \gset
COMMIT;
CREATE TABLE bench_fixture AS SELECT :'create_user'::uuid AS user_id, :'company'::uuid AS company_id,
	:'key'::text AS key, (SELECT id FROM actloom.api_keys WHERE key_id = substr(:'key', 5, 12)) AS key_row;
SQL
key=$(psql -c "SELECT key FROM bench_fixture")
key_row=$(psql -c "SELECT key_row FROM bench_fixture")

# --- authenticate_api_key against a primary-key SELECT ---------------------
# In turns with the baseline, six rounds of three seconds each; the median of
# the six ratios, so that a burst of load on this shared machine during one
# round does not decide the figure.
echo 'SELECT company_id FROM actloom.authenticate_api_key(:key);' >"$work/auth.sql"
echo 'SELECT company_id FROM actloom.api_keys WHERE id = :id;' >"$work/pk.sql"
ratios=()
for _ in 1 2 3 4 5 6; do
	pk_tps=$(pgbench -T 3 -D "id=$key_row" -f "$work/pk.sql" | tps)
	auth_tps=$(pgbench -T 3 -D "key=$key" -f "$work/auth.sql" | tps)
	ratios+=("$(ratio "$auth_tps" "$pk_tps")")
	echo "# round: authenticate_api_key $(ratio "$auth_tps" 1) tps, primary-key SELECT $(ratio "$pk_tps" 1) tps" >&2
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
echo "BENCH secrets.auth_vs_pk_select $median ratio goal >= 0.8"

# --- unsealing 1 KiB against pgcrypto --------------------------------------
# Per call, measured in the server: one statement opens every row of a
# table, so connection round trips do not blur the cost of the function.
psql <<'SQL'
SELECT user_id, company_id FROM bench_fixture \gset
BEGIN;
SELECT actloom.act_as(:'user_id', :'company_id') \g /dev/null
-- One table a method, so that each scan reads rows of about the same size.
CREATE TABLE bench_plain AS SELECT i, gen_random_bytes(1024) AS v FROM generate_series(1, 10000) AS i;
CREATE TABLE bench_sealed AS SELECT i, actloom.seal(:'company_id', 'bench', v) AS c FROM bench_plain;
CREATE TABLE bench_aes AS
	SELECT i, encrypt(v, '\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'::bytea, 'aes') AS c
	  FROM bench_plain;
CREATE TABLE bench_pgp AS
	SELECT i, pgp_sym_encrypt_bytea(v, 'bench passphrase') AS c FROM bench_plain WHERE i <= 1000;
COMMIT;
VACUUM ANALYZE bench_sealed, bench_aes, bench_pgp;
CREATE FUNCTION bench_time(stmt text, rounds int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
	best float8;
	t0 timestamptz;
BEGIN
	FOR r IN 1 .. rounds LOOP
		t0 := clock_timestamp();
		EXECUTE stmt;
		best := least(best, extract(epoch FROM clock_timestamp() - t0));
	END LOOP;
	RETURN best;
END
$$;
SQL
unseal_times=$(psql <<'SQL'
SELECT user_id, company_id FROM bench_fixture \gset
BEGIN;
SELECT actloom.act_as(:'user_id', :'company_id') \g /dev/null
SELECT bench_time(format('SELECT sum(length(actloom.unseal(%L, ''bench'', c))) FROM bench_sealed', :'company_id'), 7) / 10000,
	   bench_time('SELECT sum(length(decrypt(c, ''\x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f''::bytea, ''aes''))) FROM bench_aes', 7) / 10000,
	   bench_time('SELECT sum(length(pgp_sym_decrypt_bytea(c, ''bench passphrase''))) FROM bench_pgp', 2) / 1000;
COMMIT;
SQL
)
read -r unseal_s aes_s pgp_s <<<"$(echo "$unseal_times" | tr '|' ' ')"
echo "BENCH secrets.unseal_vs_decrypt_aes $(ratio "$aes_s" "$unseal_s") ratio goal >= 1.0"
echo "BENCH secrets.unseal_vs_pgp_sym $(ratio "$pgp_s" "$unseal_s") ratio goal >= 20"
echo "# per call: unseal $(awk -v s="$unseal_s" 'BEGIN { printf "%.2f", s * 1e6 }') us, decrypt aes $(awk -v s="$aes_s" 'BEGIN { printf "%.2f", s * 1e6 }') us, pgp_sym_decrypt $(awk -v s="$pgp_s" 'BEGIN { printf "%.2f", s * 1e6 }') us" >&2

# --- rotation against re-sealing ------------------------------------------
# 10,000 companies with 10 named secrets each (so 10,000 data keys).
psql <<'SQL'
INSERT INTO actloom.companies (name) SELECT 'Rotation ' || i FROM generate_series(1, 10000) AS i;
INSERT INTO actloom.secrets (company_id, name, sealed)
	SELECT c.id, 'secret.' || i, actloom._seal_secret(c.id, 'secret.' || i, 'a secret of about forty-eight bytes, say ' || i)
	  FROM actloom.companies c, generate_series(1, 10) AS i
	 WHERE c.name LIKE 'Rotation %';
VACUUM ANALYZE actloom.secrets;
VACUUM ANALYZE actloom.company_keys;
SQL
rotated=$work/keyring-rotated
(umask 077 && { grep -v '^active' "$BENCH_KEYS/keyring"; echo "key 2 $(openssl rand -hex 32)"; echo "active 2"; } >"$rotated")
[ "$(id -u)" -eq 0 ] && chown postgres: "$rotated" && chown postgres: "$work"
rotation_times=$(psql <<SQL
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
UPDATE actloom.secrets s
   SET sealed = actloom._seal_secret(s.company_id, s.name, actloom._unseal_secret(s.company_id, s.name, s.sealed));
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS reseal \gset
SET actloom.keyring_file = '$rotated';
SELECT extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT actloom.rotate_master_key(2) AS rewrapped \gset
SELECT extract(epoch FROM clock_timestamp()) - :t0 AS rotate \gset
SELECT :reseal, :rotate, :rewrapped, (SELECT count(*) FROM actloom.secrets);
SQL
)
IFS='|' read -r reseal_s rotate_s rewrapped nsecrets <<<"$rotation_times"
echo "BENCH secrets.rotate_vs_reseal $(ratio "$rotate_s" "$reseal_s") ratio goal <= 0.2"
echo "# rotation re-wrapped $rewrapped company keys in ${rotate_s}s; re-sealing $nsecrets secrets took ${reseal_s}s" >&2

# --- verify_password: unknown email against a known one --------------------
verify_times=$(psql <<'SQL'
DO $$
BEGIN
	PERFORM actloom.verify_password('bench@example.test', 'correct horse battery');	-- warm up
END
$$;
CREATE TEMP TABLE t (known float8, unknown float8);
-- In turns, 40 of each; the medians, so that a burst of load on this shared
-- machine does not land on one side only.
DO $$
DECLARE
	t0 timestamptz;
	k float8;
BEGIN
	FOR i IN 1 .. 40 LOOP
		t0 := clock_timestamp();
		PERFORM actloom.verify_password('bench@example.test', 'wrong password ' || i);
		k := extract(epoch FROM clock_timestamp() - t0);
		t0 := clock_timestamp();
		PERFORM actloom.verify_password('nobody' || i || '@example.test', 'wrong password ' || i);
		INSERT INTO t VALUES (k, extract(epoch FROM clock_timestamp() - t0));
	END LOOP;
END
$$;
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY known), percentile_cont(0.5) WITHIN GROUP (ORDER BY unknown) FROM t;
SQL
)
IFS='|' read -r known_s unknown_s <<<"$verify_times"
echo "BENCH secrets.verify_unknown_vs_known $(ratio "$unknown_s" "$known_s") ratio goal in 0.8..1.25"
echo "# verify_password, median: known email, wrong password $(awk -v s="$known_s" 'BEGIN { printf "%.1f", s * 1e3 }') ms; unknown email $(awk -v s="$unknown_s" 'BEGIN { printf "%.1f", s * 1e3 }') ms" >&2
