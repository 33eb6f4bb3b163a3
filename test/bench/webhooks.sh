#!/usr/bin/env bash
# make bench ONLY=webhooks: the webhook outbox and deliverer.
#
#   webhooks.throughput_vs_curl   deliveries per second from the commit of a
#                                 backlog to the last 2xx at a local receiver
#                                 (hello.c), 16 endpoints, 64 in flight, against
#                                 a plain libcurl-multi client (curlpost.c)
#                                 posting the same bodies to the same receiver
#                                 at the same concurrency
#   webhooks.latency_p50_ms/p99   commit of the emitting transaction to
#                                 receipt, one event at a time, deliverer idle
#   webhooks.emit_vs_plain        an audited change plus webhook_emit fanned
#                                 out to 3 endpoints, against the same
#                                 transaction without the emit (pgbench, 8
#                                 clients over 8 companies)
#   webhooks.isolation_vs_alone   throughput to a healthy endpoint while
#                                 another endpoint never answers, against
#                                 throughput with the healthy one alone
#
# Receives PGHOST, PGPORT, PGUSER, PGDATABASE, BENCH_WORK and PG_BINDIR from
# test/run-bench.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
psql() { "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
work=$BENCH_WORK/webhooks
mkdir -p "$work"
[ "$(id -u)" -eq 0 ] && chown postgres: "$work"
secs=${BENCH_SECONDS:-10}
backlog=${BENCH_WEBHOOK_EVENTS:-500}   # events of the throughput runs, each to 16 endpoints

psql >/dev/null <<SQL
DO \$\$ BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_gateway') THEN
		CREATE ROLE bench_gateway LOGIN IN ROLE actloom_gateway;
	END IF;
END \$\$;
ALTER DATABASE $PGDATABASE SET actloom.webhook_allow_http = on;
CREATE TABLE bench_targets (n int PRIMARY KEY, u uuid, c uuid);
GRANT SELECT, INSERT ON bench_targets TO bench_gateway;
SET ROLE bench_gateway;
DO \$\$
DECLARE u uuid; c uuid;
BEGIN
	FOR i IN 1..9 LOOP
		u := actloom.create_user(format('owner%s@bench.example', i));
		PERFORM actloom.act_as(u);
		c := actloom.create_company(format('Bench %s', i));
		INSERT INTO bench_targets VALUES (i, u, c);
	END LOOP;
END
\$\$;
SQL
# Runs SQL as the owner of bench company n, through the gateway role.
as_owner() {
	psql -tA -c "BEGIN; SET LOCAL ROLE bench_gateway;
		SELECT actloom.act_as(u, c) FROM bench_targets WHERE n = $1; $2; COMMIT;" | sed -n '2,$p'
}
company() { psql -tA -c "SELECT c FROM bench_targets WHERE n = $1"; }

# --- receivers and the shim ---------------------------------------------------------
hello_port=$(free_port)
slow_port=$(free_port)
shim_port=$(free_port)
cc -O2 -DH2O_USE_LIBUV=0 -o "$work/hello" test/bench/hello.c $(pkg-config --cflags --libs libh2o-evloop) \
	-lssl -lcrypto -lpthread
cc -O2 -o "$work/curlpost" test/bench/curlpost.c $(pkg-config --cflags --libs libcurl)
"$work/hello" "$hello_port" 2 &
hello_pid=$!
# The latency receiver records when each request arrived; "/hang" never answers.
perl test/webhook-receiver.pl serve "$work/rx" "$slow_port" 2>"$work/rx.err" &
rx_pid=$!
cat >"$work/shim.yaml" <<YAML
listen:
  address: 127.0.0.1
  port: $shim_port
threads: 2
database:
  conninfo: "host=$PGHOST port=$PGPORT dbname=$PGDATABASE user=bench_gateway"
  pool_size: 4
webhooks:
  deliver: true
  allow_networks: ["127.0.0.1/32", "::1/128"]
  max_in_flight: 64
  max_in_flight_per_endpoint: 4
YAML
"${BENCH_SHIM:-$PG_BINDIR/actloom-shim}" --config "$work/shim.yaml" >/dev/null 2>"$work/shim.err" &
shim_pid=$!
trap 'kill $shim_pid $hello_pid 2>/dev/null; kill -- -$rx_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$shim_port/readyz" >/dev/null && break
	sleep 0.1
done

# Waits until company n has no delivery left to make (none pending or delivering).
drained() {
	local c
	c=$(company "$1")
	while [ "$(psql -tA -c "SELECT count(*) FROM actloom.webhook_deliveries
			WHERE company_id = '$c' AND state IN ('pending', 'delivering')")" != 0 ]; do
		sleep 0.02
	done
}
now() { date +%s.%N; }

# --- throughput: 16 endpoints of company 1, a backlog committed at once -------------------
for i in $(seq 1 16); do
	as_owner 1 "SELECT actloom.webhook_endpoint_create(c, 'http://localhost:$hello_port/e$i', 'bench', '{bench.*}')
		FROM bench_targets WHERE n = 1" >/dev/null
done
payload='{"report": {"id": 4242, "title": "Quarterly revenue by region", "rows": 1200, "format": "pdf"}}'
body=$(psql -tA -c "SELECT '{\"type\":\"bench.tick\",\"timestamp\":\"2026-12-02T10:00:00.000000Z\",\"data\":' || '$payload'::jsonb::text || '}'")
printf '%s' "$body" >"$work/body.json"
deliveries=$((backlog * 16))
: >"$work/shim_tp" >"$work/curl_tp"
for _ in 1 2; do
	t0=$(now)
	as_owner 1 "SELECT count(actloom.webhook_emit('bench.tick', '$payload')) FROM generate_series(1, $backlog)" >/dev/null
	drained 1
	t1=$(now)
	echo "$deliveries $t0 $t1" | awk '{ printf "%.1f\n", $1 / ($3 - $2) }' >>"$work/shim_tp"
	"$work/curlpost" "http://127.0.0.1:$hello_port/e1" 64 "$deliveries" "$work/body.json" >>"$work/curl_tp"
done
failed=$(psql -tA -c "SELECT count(*) FROM actloom.webhook_deliveries WHERE state <> 'delivered'")
[ "$failed" = 0 ] || { echo "webhooks: $failed deliveries did not end delivered" >&2; exit 1; }
mean() { awk '{ s += $1; n++ } END { printf "%.1f", s / n }'; }
shim_tp=$(mean <"$work/shim_tp")
curl_tp=$(mean <"$work/curl_tp")
echo "# webhooks: deliverer $shim_tp deliveries/s, plain libcurl multi $curl_tp posts/s" >&2
awk -v a="$shim_tp" -v b="$curl_tp" 'BEGIN { printf "BENCH webhooks.throughput_vs_curl %.2f ratio goal >= 0.7\n", a / b }'

# --- latency: commit to receipt, one event at a time, company 2 -----------------------------
as_owner 2 "SELECT actloom.webhook_endpoint_create(c, 'http://localhost:$slow_port/ok/latency', 'bench', '{latency.*}')
	FROM bench_targets WHERE n = 2" >/dev/null
: >"$work/latency"
for i in $(seq 1 100); do
	# The last statement before COMMIT reads the clock: the commit follows at once.
	out=$(psql -tA -c "BEGIN; SET LOCAL ROLE bench_gateway;
		SELECT actloom.act_as(u, c) FROM bench_targets WHERE n = 2;
		SELECT actloom.webhook_emit('latency.tick', '{\"i\": $i}');
		SELECT extract(epoch FROM clock_timestamp()); COMMIT;")
	msg=$(echo "$out" | grep '^msg_')
	committed=$(echo "$out" | grep -E '^[0-9]+\.[0-9]+$')
	for _ in $(seq 1 500); do
		at=$(grep -F "\"webhook-id\":\"$msg\"" "$work/rx/requests.jsonl" 2>/dev/null | sed -n 's/.*"at":\([0-9.]*\).*/\1/p' | head -1 || true)
		[ -n "$at" ] && break
		sleep 0.01
	done
	[ -n "$at" ] || { echo "webhooks: $msg never arrived" >&2; cp "$work/shim.err" /tmp/bench-shim.err; tail -n 60 "$work/shim.err" "$work/rx.err" >&2;
		psql -c "SELECT state, last_outcome, attempts FROM actloom.webhook_deliveries WHERE message_id = '$msg'" >&2; exit 1; }
	echo "$committed $at" | awk '{ printf "%.2f\n", ($2 - $1) * 1000 }' >>"$work/latency"
done
sort -n "$work/latency" >"$work/latency.sorted"
p50=$(awk '{ a[NR] = $1 } END { print a[int(NR * 0.5 + 0.5)] }' "$work/latency.sorted")
p99=$(awk '{ a[NR] = $1 } END { print a[int(NR * 0.99 + 0.5)] }' "$work/latency.sorted")
printf 'BENCH webhooks.latency_p50_ms %s ms goal <= 20\n' "$p50"
printf 'BENCH webhooks.latency_p99_ms %s ms goal <= 100\n' "$p99"

# --- emit cost: companies 3 to 9 (and 1..8 mapped onto them), 3 endpoints each --------------
kill "$shim_pid" 2>/dev/null || true
wait "$shim_pid" 2>/dev/null || true
for n in $(seq 1 9); do
	for e in 1 2 3; do
		as_owner "$n" "SELECT actloom.webhook_endpoint_create(c, 'http://localhost:$hello_port/emit$e', 'bench', '{emit.*}')
			FROM bench_targets WHERE n = $n" >/dev/null
	done
done
cat >"$work/plain.sql" <<'SQL'
\set r random(2, 9)
BEGIN;
SELECT actloom.act_as(u, c) FROM bench_targets WHERE n = :r;
SELECT actloom.audit('reports.generate', 'report', 'r-42', '{"format": "pdf"}');
COMMIT;
SQL
cat >"$work/emit.sql" <<'SQL'
\set r random(2, 9)
BEGIN;
SELECT actloom.act_as(u, c) FROM bench_targets WHERE n = :r;
SELECT actloom.audit('reports.generate', 'report', 'r-42', '{"format": "pdf"}');
SELECT actloom.webhook_emit('emit.report_generated', '{"report": 42, "format": "pdf"}');
COMMIT;
SQL
: >"$work/plain_tps" >"$work/emit_tps"
for _ in 1 2; do
	"$PG_BINDIR/pgbench" -n -M prepared -c 8 -j 2 -T "$secs" -U bench_gateway -f "$work/plain.sql" 2>/dev/null |
		awk '/^tps = / { print $3 }' >>"$work/plain_tps"
	"$PG_BINDIR/pgbench" -n -M prepared -c 8 -j 2 -T "$secs" -U bench_gateway -f "$work/emit.sql" 2>/dev/null |
		awk '/^tps = / { print $3 }' >>"$work/emit_tps"
done
plain=$(mean <"$work/plain_tps")
emit=$(mean <"$work/emit_tps")
echo "# webhooks: audited change $plain tps, with webhook_emit to 3 endpoints $emit tps" >&2
awk -v a="$emit" -v b="$plain" 'BEGIN { printf "BENCH webhooks.emit_vs_plain %.2f ratio goal >= 0.7\n", a / b }'
# The emitted deliveries are not the next runs' business.
psql -c "DELETE FROM actloom.webhook_messages WHERE event_type LIKE 'emit.%'"

# --- isolation: a healthy endpoint of company 1, with and without a hanging one ------------
psql -c "UPDATE actloom.webhook_endpoints SET enabled = false, disabled_at = now(), disabled_reason = 'bench'
	WHERE company_id = '$(company 1)' AND url NOT LIKE '%/e1'" >/dev/null
as_owner 1 "SELECT actloom.webhook_endpoint_create(c, 'http://localhost:$slow_port/hang/forever', 'bench', '{iso.*}')
	FROM bench_targets WHERE n = 1" >/dev/null
hang=$(psql -tA -c "SELECT id FROM actloom.webhook_endpoints WHERE url LIKE '%/hang/forever'")
psql -c "UPDATE actloom.webhook_endpoints SET event_types = '{bench.*,iso.*}' WHERE url LIKE '%/e1'" >/dev/null
"${BENCH_SHIM:-$PG_BINDIR/actloom-shim}" --config "$work/shim.yaml" >/dev/null 2>>"$work/shim.err" &
shim_pid=$!
for _ in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$shim_port/readyz" >/dev/null && break
	sleep 0.1
done
healthy_rate() {
	local n=$1 c t0 t1
	c=$(company 1)
	t0=$(now)
	as_owner 1 "SELECT count(actloom.webhook_emit('iso.tick', '$payload')) FROM generate_series(1, $n)" >/dev/null
	while [ "$(psql -tA -c "SELECT count(*) FROM actloom.webhook_deliveries d JOIN actloom.webhook_endpoints e
			ON e.id = d.endpoint_id WHERE d.company_id = '$c' AND e.url LIKE '%/e1' AND d.state <> 'delivered'")" != 0 ]; do
		sleep 0.02
	done
	t1=$(now)
	echo "$n $t0 $t1" | awk '{ printf "%.1f\n", $1 / ($3 - $2) }'
}
: >"$work/alone" >"$work/beside"
events=$((backlog * 2))
for _ in 1 2; do
	psql -c "UPDATE actloom.webhook_endpoints SET enabled = false, disabled_at = now(), disabled_reason = 'bench'
		WHERE id = '$hang'" >/dev/null
	healthy_rate "$events" >>"$work/alone"
	psql -c "UPDATE actloom.webhook_endpoints SET enabled = true, disabled_at = NULL, disabled_reason = NULL
		WHERE id = '$hang'" >/dev/null
	healthy_rate "$events" >>"$work/beside"
done
alone=$(mean <"$work/alone")
beside=$(mean <"$work/beside")
hung=$(psql -tA -c "SELECT count(*) FROM actloom.webhook_deliveries WHERE endpoint_id = '$hang' AND state = 'delivering'")
echo "# webhooks: healthy endpoint alone $alone deliveries/s, beside a hanging one $beside/s ($hung held by it)" >&2
awk -v a="$beside" -v b="$alone" 'BEGIN { printf "BENCH webhooks.isolation_vs_alone %.2f ratio goal >= 0.8\n", a / b }'
kill -0 "$shim_pid" || { echo "the shim died; see $work/shim.err" >&2; exit 1; }
