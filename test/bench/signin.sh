#!/usr/bin/env bash
# make bench ONLY=signin: signing in through the shim.
#
#   signin.vs_argon2_ceiling   successful POST /auth/login per second (wrk, many
#                              accounts, limits out of the way) over the
#                              argon2id ceiling of this machine: cores divided
#                              by the time of one hash, measured in the same run
#   signin.v1_p99_storm_vs_idle  p99 latency of an authenticated /v1 call while
#                              a sign-in storm (one address, as fast as it
#                              can, many accounts) runs into the configured
#                              "login" limit (the default class), over its p99
#                              with no storm
#   signin.system_chain_appends  entries appended to the system chain per
#                              second during the throughput runs (every
#                              sign-in appends two: user.sign_in and
#                              session.create), against the two per sign-in
#                              that 0.8 of the argon2id ceiling allows: the
#                              one chain must not hold sign-ins below what
#                              hashing does
#
# and, as comment lines, the same p99 ratio with a storm that the limit
# admits entirely, paced at a quarter of the ceiling: what a quarter of the
# machine's hashing capacity spent on sign-ins costs the other requests; and
# what the system chain takes alone: sign-ins without their hash (the part
# of a sign-in that holds the chain's lock), as fast as they go.
#
# Receives PGHOST, PGPORT, PGUSER, PGDATABASE, BENCH_WORK and PG_BINDIR from
# test/run-bench.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
psql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
work=$BENCH_WORK/signin
mkdir -p "$work"
seconds=${BENCH_SECONDS:-8}
turns=${BENCH_TURNS:-2}
users=${BENCH_USERS:-64}
cores=$(nproc)

psql >/dev/null <<SQL
DO \$\$ BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_gateway') THEN
		CREATE ROLE bench_gateway LOGIN IN ROLE actloom_gateway;
	END IF;
END \$\$;
SET ROLE bench_gateway;
SELECT actloom.create_user(format('user%s@bench.example', n), format('bench password %s', n))
  FROM generate_series(1, $users) n;
BEGIN;
SELECT actloom.act_as(id) FROM actloom.users WHERE email = 'user1@bench.example';
SELECT actloom.create_company('Bench');
COMMIT;
RESET ROLE;
CREATE FUNCTION public.bench_trivial(body jsonb, query jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS \$f\$ SELECT '{"ok": true}'::jsonb \$f\$;
SELECT actloom.expose(1, 'GET', 'ping', 'public.bench_trivial(jsonb,jsonb)', 'reports.read');
SQL
key=$(psql -tA -c "BEGIN; SELECT actloom.act_as(u.id, c.id) FROM actloom.users u, actloom.companies c
	WHERE u.email = 'user1@bench.example' AND c.name = 'Bench';
	SELECT actloom.api_key_create(c.id, 'bench', ARRAY['reports.read']) FROM actloom.companies c WHERE c.name = 'Bench';
	COMMIT;" | grep '^alk_')

# The ceiling: one argon2id hash, one client, the parameters in force;
# measured again in every turn, next to the throughput it is compared with.
cat >"$work/hash.sql" <<'SQL'
SELECT actloom._password_hash('bench password 1');
SQL
hash_ms() {
	"$PG_BINDIR/pgbench" -n -c 1 -T "$seconds" -f "$work/hash.sql" 2>/dev/null |
		awk '/^latency average = / { print $4 }'
}
printf 'key old %s\nactive old\n' "$(openssl rand -hex 32)" >"$work/session.keys"
chmod 600 "$work/session.keys"
port=$(free_port)
write_config() {
	cat >"$work/shim.yaml" <<YAML
listen:
  address: 127.0.0.1
  port: $port
threads: 2
access_log: false
database:
  conninfo: "host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=bench_gateway"
  pool_size: $((cores + 1))
session:
  key_file: "$work/session.keys"
  cookie: insecure-dev
rate_limits:
  classes:
$([ "$1" = default ] || echo "    login: {limit: $1, period: 1, burst: $1, key: [address]}")
    api: {limit: 100000000, period: 1, burst: 100000000, key: [api_key]}
YAML
}
shim_pid=
start_shim() {
	write_config "$1"
	"$PG_BINDIR/actloom-shim" --config "$work/shim.yaml" >/dev/null 2>>"$work/shim.err" &
	shim_pid=$!
	for _ in $(seq 1 100); do
		curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return 0
		sleep 0.1
	done
	cat "$work/shim.err" >&2
	return 1
}
stop_shim() { kill "$shim_pid" 2>/dev/null && wait "$shim_pid" 2>/dev/null || true; }
trap stop_shim EXIT

cat >"$work/login.lua" <<LUA
local n = 0
local users = $users
request = function()
	n = n + 1
	local i = (n * 7919 + id) % users + 1
	local body = string.format('{"email":"user%d@bench.example","password":"bench password %d"}', i, i)
	return wrk.format("POST", "/auth/login", { ["Content-Type"] = "application/json" }, body)
end
LUA
cat >"$work/thread_ids.lua" <<'LUA'
local counter = 1
setup = function(thread) thread:set("id", counter); counter = counter + 1 end
LUA
cat "$work/thread_ids.lua" "$work/login.lua" >"$work/flood.lua"

p99() { awk '$1 == "99%" { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
	else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } print v }'; }
mean() { awk '{ s += $1; n++ } END { printf "%.2f", s / n }'; }

# Throughput: every sign-in admitted; only successes count.  The kernel
# spreads connections over the workers' SO_REUSEPORT listeners at random, and
# each worker hashes its own sign-ins (database.hash_pool_size at a time):
# with a couple of connections a worker, one is often left with too few to
# keep hashing, so the client keeps eight a core open.
system_entries() { psql -tA -c "SELECT count(*) FROM actloom.audit_log WHERE chain = actloom.system_chain()"; }
start_shim 100000000
: >"$work/signins" >"$work/hash_ms" >"$work/appends"
for _ in $(seq 1 "$turns"); do
	hash_ms >>"$work/hash_ms"
	before=$(system_entries)
	wrk -t2 -c"$((cores * 8))" -d"${seconds}s" -s "$work/flood.lua" "http://127.0.0.1:$port" >"$work/wrk.out"
	after=$(system_entries)
	total=$(awk '/ requests in / { print $1 }' "$work/wrk.out")
	bad=$(awk '/Non-2xx or 3xx responses:/ { print $5 }' "$work/wrk.out")
	awk -v t="$total" -v b="${bad:-0}" -v s="$seconds" 'BEGIN { printf "%.2f\n", (t - b) / s }' >>"$work/signins"
	awk -v a="$after" -v b="$before" -v s="$seconds" 'BEGIN { printf "%.2f\n", (a - b) / s }' >>"$work/appends"
done
stop_shim
signins=$(mean <"$work/signins")
appends=$(mean <"$work/appends")
hash_ms=$(mean <"$work/hash_ms")
ceiling=$(awk -v c="$cores" -v ms="$hash_ms" 'BEGIN { printf "%.1f", c * 1000 / ms }')

# The system chain alone: what a sign-in does in its one statement, less
# the hash: the user.sign_in entry, then the session with its entry, and
# the commit; from many clients at once.
cat >"$work/tail.sql" <<'SQL'
SELECT count(*) FROM (SELECT actloom._audit_to(actloom.system_chain(), 'user.sign_in', 'user', 'bench',
												 '{"method": "password"}') OFFSET 0) a,
	   actloom.session_create((SELECT id FROM actloom.users WHERE email = 'user1@bench.example')) s;
SQL
: >"$work/tail"
for _ in $(seq 1 "$turns"); do
	"$PG_BINDIR/pgbench" -n -M prepared -c "$((cores * 4))" -j "$cores" -T "$seconds" -f "$work/tail.sql" 2>/dev/null |
		sed -n 's/^tps = \([0-9.]*\) .*/\1/p' >>"$work/tail"
done
chain_appends=$(awk '{ printf "%.1f\n", $1 * 2 }' "$work/tail" | mean)
storm_limit=$(awk -v c="$ceiling" 'BEGIN { v = int(c / 4); print v < 1 ? 1 : v }')
# Paced: each of the storm's connections waits its share of the period.
storm_conns=4
cat "$work/flood.lua" - >"$work/storm.lua" <<LUA
delay = function() return $storm_conns * 1000 / $storm_limit end
LUA
echo "# $cores cores, one argon2id hash $hash_ms ms: ceiling $ceiling sign-ins/s; measured $signins sign-ins/s" >&2

# p99 of /v1 with no storm and during one; $1 the login limit, $2 the storm script.
v1_p99_ratio() {
	start_shim "$1"
	: >"$work/idle" >"$work/storm"
	# Warm up: every connection of the pool has served /v1 before it is timed.
	wrk -t1 -c8 -d2s -H "Authorization: Bearer $key" "http://127.0.0.1:$port/v1/ping" >/dev/null
	for _ in $(seq 1 "$turns"); do
		wrk -t1 -c8 -d"${seconds}s" --latency -H "Authorization: Bearer $key" "http://127.0.0.1:$port/v1/ping" |
			p99 >>"$work/idle"
		wrk -t1 -c"$storm_conns" -d"$((seconds + 2))s" -s "$2" "http://127.0.0.1:$port" >"$work/storm.out" &
		storm_pid=$!
		sleep 1
		wrk -t1 -c8 -d"${seconds}s" --latency -H "Authorization: Bearer $key" "http://127.0.0.1:$port/v1/ping" |
			p99 >>"$work/storm"
		wait "$storm_pid"
	done
	stop_shim
	idle=$(mean <"$work/idle")
	storm=$(mean <"$work/storm")
	ratio=$(awk -v a="$storm" -v b="$idle" 'BEGIN { printf "%.2f", a / b }')
}

v1_p99_ratio default "$work/flood.lua"
storm_rate=$(awk '/^Requests\/sec:/ { print $2 }' "$work/storm.out")
echo "# /v1 p99 idle $idle ms, during a sign-in storm into the default login limit: $storm ms" \
	"(the storm's last turn: $storm_rate answers/s)" >&2
storm_default=$ratio
v1_p99_ratio "$storm_limit" "$work/storm.lua"
echo "# /v1 p99 idle $idle ms, during sign-ins admitted at $storm_limit/s (a quarter of the ceiling): $storm ms, ratio $ratio" >&2

echo "# the system chain alone takes $chain_appends appends/s (sign-ins without their hash, $((cores * 4)) clients):" \
	"$(awk -v c="$chain_appends" -v a="$appends" 'BEGIN { printf "%.0f", c / a }') times what the storm appended," \
	"the hashing of $(awk -v c="$chain_appends" -v r="$ceiling" -v n="$cores" 'BEGIN { printf "%.0f", c / 2 / (r / n) }') cores like these" >&2

awk -v a="$signins" -v b="$ceiling" 'BEGIN { printf "BENCH signin.vs_argon2_ceiling %.2f ratio goal >= 0.8\n", a / b }'
echo "BENCH signin.v1_p99_storm_vs_idle $storm_default ratio goal <= 2"
awk -v a="$appends" -v c="$ceiling" 'BEGIN { printf "BENCH signin.system_chain_appends %.1f appends/s goal >= %.1f\n", a, 2 * 0.8 * c }'
