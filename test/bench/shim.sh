#!/usr/bin/env bash
# make bench ONLY=shim: the HTTP shim against its baselines, in turns.
#
#   shim.v1_vs_pgbench     an authenticated /v1 call of a trivial function (wrk,
#                          2 threads, 64 connections) against pgbench running
#                          the same two statements in one pipeline, 64 clients
#   shim.v1_p50_ms/p99_ms  latency of that /v1 call
#   shim.nodb_vs_h2o       /healthz against a bare h2o server (hello.c)
#   shim.memory_1m_vs_10k  resident memory after 1,000,000 requests against
#                          after 10,000
#
# Receives PGHOST, PGPORT, PGUSER, PGDATABASE, BENCH_WORK and PG_BINDIR from
# test/run-bench.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
psql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
work=$BENCH_WORK/shim
mkdir -p "$work"
turns=${BENCH_TURNS:-2}
seconds=${BENCH_SECONDS:-8}

psql >/dev/null <<'SQL'
DO $$ BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_gateway') THEN
		CREATE ROLE bench_gateway LOGIN IN ROLE actloom_gateway;
	END IF;
END $$;
SET ROLE bench_gateway;
SELECT actloom.create_user('owner@bench.example');
BEGIN;
SELECT actloom.act_as(id) FROM actloom.users WHERE email = 'owner@bench.example';
SELECT actloom.create_company('Bench');
COMMIT;
RESET ROLE;
CREATE FUNCTION public.bench_trivial(body jsonb, query jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $f$ SELECT '{"ok": true}'::jsonb $f$;
SELECT actloom.expose(1, 'GET', 'ping', 'public.bench_trivial(jsonb,jsonb)', 'reports.read');
SQL
read -r owner company <<<"$(psql -tA -F ' ' -c "SELECT u.id, c.id FROM actloom.users u, actloom.companies c
	WHERE u.email = 'owner@bench.example' AND c.name = 'Bench'")"
key=$(psql -tA -c "BEGIN; SET LOCAL ROLE bench_gateway; SELECT actloom.act_as('$owner', '$company');
	SELECT actloom.api_key_create('$company', 'bench', ARRAY['reports.read']); COMMIT;" | grep '^alk_')

port=$(free_port)
hello_port=$(free_port)
cat >"$work/shim.yaml" <<YAML
listen:
  address: 127.0.0.1
  port: $port
threads: 2
database:
  conninfo: "host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=bench_gateway"
  pool_size: 8
rate_limits:
  classes:
    api: {limit: 100000000, period: 1, burst: 100000000, key: [api_key]}
    api_address: {limit: 100000000, period: 1, burst: 100000000, key: [address]}
YAML
"$PG_BINDIR/actloom-shim" --config "$work/shim.yaml" >/dev/null 2>"$work/shim.err" &
shim_pid=$!
cc -O2 -DH2O_USE_LIBUV=0 -o "$work/hello" test/bench/hello.c $(pkg-config --cflags --libs libh2o-evloop) \
	-lssl -lcrypto -lpthread
"$work/hello" "$hello_port" 2 &
hello_pid=$!
trap 'kill $shim_pid $hello_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
	sleep 0.1
done

# The same two statements the shim sends for GET /v1/ping, in one pipeline.
cat >"$work/v1.sql" <<SQL
\startpipeline
SELECT FROM actloom.authenticate_api_key('$key'::text, 'reports.read'::text);
SELECT public.bench_trivial('{}'::pg_catalog.jsonb, '{}'::pg_catalog.jsonb)::pg_catalog.text;
\endpipeline
SQL

# Requests per second from wrk's output; a run with any error response is void.
rps() { awk '/Non-2xx or 3xx responses|Socket errors/ { bad = 1 } /^Requests\/sec:/ { r = $2 }
	END { if (bad) { print "wrk saw errors" > "/dev/stderr"; exit 1 } print r }'; }
percentile() { awk -v p="$1" '$1 == p { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
	else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 } print v }'; }
mean() { awk '{ s += $1; n++ } END { printf "%.1f", s / n }'; }

: >"$work/shim_v1" >"$work/pgbench" >"$work/shim_nodb" >"$work/h2o" >"$work/p50" >"$work/p99"
curl -sf -H "Authorization: Bearer $key" "http://127.0.0.1:$port/v1/ping" >/dev/null
for _ in $(seq 1 "$turns"); do
	wrk -t2 -c64 -d"${seconds}s" --latency -H "Authorization: Bearer $key" "http://127.0.0.1:$port/v1/ping" >"$work/wrk.out"
	rps <"$work/wrk.out" >>"$work/shim_v1"
	percentile 50% <"$work/wrk.out" >>"$work/p50"
	percentile 99% <"$work/wrk.out" >>"$work/p99"
	"$PG_BINDIR/pgbench" -n -M extended -c 64 -j 2 -T "$seconds" -U bench_gateway -f "$work/v1.sql" 2>/dev/null |
		awk '/^tps = / { print $3 }' >>"$work/pgbench"
	wrk -t2 -c64 -d"$((seconds / 2))s" "http://127.0.0.1:$port/healthz" | rps >>"$work/shim_nodb"
	wrk -t2 -c64 -d"$((seconds / 2))s" "http://127.0.0.1:$hello_port/" | rps >>"$work/h2o"
done
v1=$(mean <"$work/shim_v1")
pg=$(mean <"$work/pgbench")
nodb=$(mean <"$work/shim_nodb")
h2o=$(mean <"$work/h2o")
echo "# shim /v1 $v1 req/s, pgbench $pg tps; shim /healthz $nodb req/s, bare h2o $h2o req/s" >&2
awk -v a="$v1" -v b="$pg" 'BEGIN { printf "BENCH shim.v1_vs_pgbench %.2f ratio goal >= 0.7\n", a / b }'
printf 'BENCH shim.v1_p50_ms %s ms goal <= 20\n' "$(mean <"$work/p50")"
printf 'BENCH shim.v1_p99_ms %s ms goal <= 100\n' "$(mean <"$work/p99")"
awk -v a="$nodb" -v b="$h2o" 'BEGIN { printf "BENCH shim.nodb_vs_h2o %.2f ratio goal >= 0.8\n", a / b }'

# Memory: a mix of every path (database call, refusal by schema, health,
# bad key), run in short turns until the shim has answered 10,000 and then
# 1,000,000 requests by its own count (/metrics).
cat >"$work/mix.lua" <<'LUA'
local paths = { "/v1/ping", "/v1/ping?unknown=1", "/healthz", "/v1/ping" }
local n = 0
request = function()
	n = n + 1
	local key = os.getenv("KEY")
	if n % 8 == 0 then key = "alk_bad" end
	return wrk.format("GET", paths[n % #paths + 1], { ["Authorization"] = "Bearer " .. key })
end
LUA
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$shim_pid/status"; }
answered() { curl -sf "http://127.0.0.1:$port/metrics" | awk '/^actloom_http_request_duration_seconds_count/ { print $2 }'; }
run_until() {
	while [ "$(answered)" -lt "$1" ]; do
		KEY=$key wrk -t"$2" -c"$3" -d"$4" -s "$work/mix.lua" "http://127.0.0.1:$port" >/dev/null
	done
}
start=$(answered)
run_until $((start + 10000)) 1 2 1s
rss_10k=$(rss)
n_10k=$(($(answered) - start))
run_until $((start + 1000000)) 2 32 10s
rss_1m=$(rss)
n_1m=$(($(answered) - start))
echo "# shim RSS ${rss_10k} kB after $n_10k requests, ${rss_1m} kB after $n_1m" >&2
awk -v a="$rss_1m" -v b="$rss_10k" 'BEGIN { printf "BENCH shim.memory_1m_vs_10k %.2f ratio goal <= 1.1\n", a / b }'
kill -0 "$shim_pid" || { echo "the shim died; see $work/shim.err" >&2; exit 1; }
