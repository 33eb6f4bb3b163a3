#!/usr/bin/env bash
# make run / make stop: a local cluster with the actloom demo.
#
# The cluster lives in .run/ of the checkout (git-ignored) and is created
# once; later runs reuse it.  It runs as the invoking user, or as the
# "postgres" OS user when invoked as root (PostgreSQL refuses root).
set -euo pipefail
cd "$(dirname "$0")/.."
. test/lib/cluster.sh

port=${ACTLOOM_PORT:-5499}
run=$PWD/.run
if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$PWD"; then
	# The postgres user cannot reach the checkout (a home directory, say).
	run=/var/tmp/actloom-run-$(printf %s "$PWD" | sha256sum | cut -c1-12)
	mkdir -p "$run"
	ln -sfn "$run" "$PWD/.run"
fi
sock=$run/sock

shim_port=${ACTLOOM_SHIM_PORT:-8080}
receiver_port=${ACTLOOM_RECEIVER_PORT:-8081}
# Stops the process whose pid is in $run/$1.pid (with "group": its process group).
stop_pid() {
	if [ -f "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; then
		kill -TERM ${2:+--} "${2:+-}$(cat "$run/$1.pid")"
		for _ in $(seq 1 100); do kill -0 "$(cat "$run/$1.pid")" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -f "$run/$1.pid"
}
stop_shim() {
	stop_pid shim
	stop_pid receiver group
}

case "${1:-start}" in
stop)
	stop_shim
	cluster_stop "$run"
	echo "stopped the actloom demo shim, webhook receiver and cluster in $run"
	exit 0
	;;
start) ;;
*)
	echo "usage: $0 start|stop" >&2
	exit 2
	;;
esac

cluster_init "$run"
# The key that signs audit checkpoints, outside the data directory.
key=$run/audit_signing.key
if [ ! -f "$key" ]; then
	as_pg openssl genpkey -algorithm ed25519 -out "$key" 2>/dev/null
	as_pg chmod 600 "$key"
	echo "created the audit signing key $key"
fi
# The master key ring: created once, next to the data directory and not in
# it, mode 0600, owned by the server's OS user.  Losing it loses every sealed
# value of the demo.
keyring_create "$run/keyring"
# The library is preloaded: one that changed since the cluster started (a
# new release, say) is used only after a restart.
library=$(sha256sum "$("$PG_CONFIG" --pkglibdir)/actloom.so" | cut -d' ' -f1)
if as_pg "$PG_BINDIR/pg_ctl" -D "$run/data" status >/dev/null 2>&1 &&
	[ "$library" != "$(cat "$run/library.sha256" 2>/dev/null)" ]; then
	echo "restarting the cluster: the installed actloom library changed"
	cluster_stop "$run"
fi
if ! as_pg "$PG_BINDIR/pg_ctl" -D "$run/data" status >/dev/null 2>&1; then
	cluster_start "$run" "$port" -c "actloom.audit_signing_key_file=$key" \
		-c "actloom.keyring_file=$run/keyring"
	echo "$library" >"$run/library.sha256"
fi

psql() { as_pg "$PG_BINDIR/psql" -h "$sock" -p "$port" -U postgres -X -q "$@"; }

if ! psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'actloom'" | grep -q 1; then
	psql -d postgres -c "CREATE DATABASE actloom"
	psql -d actloom -f - <test/demo.sql >/dev/null
	echo "loaded the demo into database actloom"
else
	# A demo loaded by an earlier release is upgraded to the installed one.
	version="SELECT extversion FROM pg_extension WHERE extname = 'actloom'"
	from=$(psql -d actloom -tAc "$version")
	psql -d actloom -c 'SET client_min_messages = warning' -c 'ALTER EXTENSION actloom UPDATE'
	to=$(psql -d actloom -tAc "$version")
	[ "$from" = "$to" ] || echo "upgraded actloom in database actloom from $from to $to"
fi
# The application role keeps secrets out of the server log (README: Keeping
# secrets out of the log); settings apply to the sessions it opens from now on.
psql -d actloom -f - <test/demo-logging.sql
# The demo's webhook receiver speaks plain HTTP on loopback.
psql -d actloom -f - <test/demo-webhooks.sql

ids=$(psql -d actloom -tA -F ' ' -c "
	SELECT (SELECT id FROM actloom.companies WHERE name = 'Acme'),
		   (SELECT id FROM actloom.companies WHERE name = 'Globex'),
		   (SELECT id FROM actloom.users WHERE email = 'mia@acme.example'),
		   (SELECT id FROM actloom.users WHERE email = 'max@globex.example'),
		   (SELECT id FROM actloom.users WHERE email = 'adam@acme.example'),
		   (SELECT id FROM actloom.users WHERE email = 'eve@acme.example'),
		   (SELECT id FROM actloom.users WHERE email = 'olivia@acme.example')")
read -r acme globex mia max adam eve olivia <<<"$ids"
connect="psql -v ON_ERROR_ROLLBACK=interactive -h $sock -p $port -U demo_app actloom"
auditor="psql -h $sock -p $port -U demo_auditor actloom"
if [ "$(id -u)" -eq 0 ]; then
	connect="runuser -u postgres -- $connect"
	auditor="runuser -u postgres -- $auditor"
fi

# The API key of the demo is shown once, when it is made; kept for later runs.
if [ ! -s "$run/demo-api-key" ]; then
	psql -d actloom -tA -c "
		BEGIN;
		SET LOCAL ROLE demo_app;
		SELECT actloom.act_as('$olivia', '$acme');
		SELECT actloom.api_key_create('$acme', 'demo', ARRAY['reports.generate', 'classify.run']);
		COMMIT;" | grep '^alk_' >"$run/demo-api-key.new"
	mv "$run/demo-api-key.new" "$run/demo-api-key"
	chmod 600 "$run/demo-api-key"
fi
key=$(cat "$run/demo-api-key")

# Acme's webhook endpoint, registered once: its secret is shown once, and
# kept only for the demo's receiver, which verifies every signature with it.
receiver_dir=$run/webhooks
if [ ! -s "$receiver_dir/secrets/acme" ]; then
	as_pg mkdir -p -m 700 "$receiver_dir" "$receiver_dir/secrets"
	psql -d actloom -tA -c "
		BEGIN;
		SET LOCAL ROLE demo_app;
		SELECT actloom.act_as('$olivia', '$acme');
		SELECT actloom.webhook_endpoint_create('$acme', 'http://localhost:$receiver_port/ok/acme',
			'the make run receiver', '{}') ->> 'secret';
		COMMIT;" | grep '^whsec_' | as_pg sh -c 'umask 077; cat >"$1"' sh "$receiver_dir/secrets/acme"
	echo "registered Acme's webhook endpoint http://localhost:$receiver_port/ok/acme"
fi

# The key that signs session cookies (HS256), created once, mode 0600.
if [ ! -f "$run/session.keys" ]; then
	as_pg sh -c 'umask 077; printf "key demo1 %s\nactive demo1\n" "$(openssl rand -hex 32)" >"$1"' sh "$run/session.keys"
	echo "created the session key file $run/session.keys"
fi

# The shim, as the cluster's OS user, on 127.0.0.1, with the development
# cookies (no Secure attribute) since the demo speaks plain HTTP.
cat >"$run/shim.yaml" <<YAML
listen:
  address: 127.0.0.1
  port: $shim_port
database:
  conninfo: "host=$sock port=$port dbname=actloom user=demo_app"
  pool_size: 2
session:
  key_file: "$run/session.keys"
  cookie: insecure-dev
# The demo delivers webhooks to its receiver on loopback, which only this
# explicit (and, outside a demo, dangerous) allowance makes reachable.
webhooks:
  deliver: true
  allow_networks: ["127.0.0.1/32", "::1/128"]
YAML
[ "$(id -u)" -eq 0 ] && chown postgres: "$run/shim.yaml"
stop_shim
as_pg sh -c 'echo $$ >"$1/receiver.pid"; exec perl "$2/test/webhook-receiver.pl" serve "$1/webhooks" "$3" 2>>"$1/receiver.log"' \
	sh "$run" "$PWD" "$receiver_port" </dev/null >/dev/null 2>&1 &
# The shell writes its own pid, then becomes the shim: the pid is the shim's.
as_pg sh -c 'echo $$ >"$1/shim.pid"; exec "$2/actloom-shim" --config "$1/shim.yaml" >>"$1/shim-access.log" 2>>"$1/shim.log"' \
	sh "$run" "$PG_BINDIR" </dev/null >/dev/null 2>&1 &
for _ in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$shim_port/readyz" >/dev/null && break
	sleep 0.1
done
curl -sf "http://127.0.0.1:$shim_port/readyz" >/dev/null ||
	{ echo "the shim did not start; see $run/shim.log" >&2; tail -n 20 "$run/shim.log" >&2; exit 1; }

cat <<MSG

actloom is running: PostgreSQL 15 on socket $sock, port $port,
database "actloom" with the extension and a demo.

Connect as the application (a member of actloom_gateway, no BYPASSRLS):

    $connect

Then try, in one transaction each:

  -- Mia (member of Acme) sees Acme's reports only
  BEGIN;
  SELECT actloom.act_as('$mia', '$acme');
  SELECT title FROM reports;
  SELECT actloom.can('$acme', 'members.invite');     -- false: members cannot invite
  COMMIT;

  -- Max (Globex) cannot plant a row in Acme, nor act in Acme
  BEGIN;
  SELECT actloom.act_as('$max', '$globex');
  INSERT INTO reports (company_id, title) VALUES ('$acme', 'planted');  -- refused
  SELECT actloom.act_as('$max', '$acme');                               -- refused
  ROLLBACK;

  -- Adam (admin of Acme) may invite, but not above his own role
  BEGIN;
  SELECT actloom.act_as('$adam', '$acme');
  SELECT actloom.add_member('$acme', '$max', 'owner');   -- refused
  SELECT actloom.add_member('$acme', '$max', 'member');  -- allowed
  SELECT * FROM actloom.members('$acme');
  ROLLBACK;

  -- Nobody acting: no rows at all
  SELECT count(*) FROM reports;

  -- Eve (executive of Acme) reads and verifies Acme's audit chain
  BEGIN;
  SELECT actloom.act_as('$eve', '$acme');
  SELECT seq, action, target_type, detail FROM actloom.company_audit('$acme');
  SELECT * FROM actloom.company_audit_verify('$acme');
  SELECT * FROM actloom.company_audit_checkpoint('$acme');
  COMMIT;

  -- Adam issues an API key for a reporting job (shown once, stored hashed)
  BEGIN;
  SELECT actloom.act_as('$adam', '$acme');
  SELECT actloom.api_key_create('$acme', 'reporting job', ARRAY['reports.*']);
  COMMIT;
  -- ... which a machine then presents
  BEGIN;
  SELECT * FROM actloom.authenticate_api_key('<the key>', 'reports.generate');
  SELECT title FROM reports;                           -- Acme's rows
  COMMIT;

  -- Passwords (argon2id) and sealed integration secrets
  SELECT actloom.set_password('$mia', 'a long passphrase');
  SELECT actloom.verify_password('mia@acme.example', 'a long passphrase');  -- Mia's id
  BEGIN;
  SELECT actloom.act_as('$adam', '$acme');
  SELECT actloom.secret_put('$acme', 'stripe.api_key', 'sk_test_demo');
  COMMIT;
  SELECT actloom.secret_get('$acme', 'stripe.api_key');

As an auditor, verify every chain (C, then plain SQL):

    $auditor -c 'SELECT * FROM actloom.audit_verify()'
    $auditor < test/audit-verify.sql

The HTTP shim listens on http://127.0.0.1:$shim_port (access log: $run/shim-access.log).
Acme's demo API key (scopes reports.generate, classify.run) is in $run/demo-api-key:

    curl -s -X POST http://127.0.0.1:$shim_port/v1/reports \\
         -H 'Authorization: Bearer $key' \\
         -H 'Content-Type: application/json' -d '{"title": "Q3 revenue"}'

    curl -s -X POST http://127.0.0.1:$shim_port/v1/classify \\
         -H 'Authorization: Bearer $key' \\
         -H 'Content-Type: application/json' -d '{"text": "churn by region"}'

    curl -s -X POST http://127.0.0.1:$shim_port/v1/reports \\
         -H 'Authorization: Bearer $key' \\
         -H 'Content-Type: application/json' -d '{"title": "", "extra": 1}'    # 422, every issue listed

    curl -s http://127.0.0.1:$shim_port/metrics

Every report created emits a "report.created" webhook to Acme's endpoint; the
demo's receiver (http://127.0.0.1:$receiver_port) checks its signature itself:

    curl -s -X POST http://127.0.0.1:$shim_port/v1/reports \\
         -H 'Authorization: Bearer $key' \\
         -H 'Content-Type: application/json' -d '{"title": "Webhook demo"}'
    perl test/webhook-receiver.pl show $run/webhooks

Sign up and sign in over HTTP, keeping the session cookie in a jar:

    curl -s -X POST http://127.0.0.1:$shim_port/auth/signup \\
         -H 'Content-Type: application/json' \\
         -d '{"email": "you@example.com", "password": "a long demo passphrase", "name": "You"}'
    curl -s -c /tmp/actloom-jar -X POST http://127.0.0.1:$shim_port/auth/login \\
         -H 'Content-Type: application/json' \\
         -d '{"email": "you@example.com", "password": "a long demo passphrase"}'
    curl -s -b /tmp/actloom-jar http://127.0.0.1:$shim_port/auth/session

Stop it with: make stop
MSG
