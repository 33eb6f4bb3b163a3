-- Outbound webhooks in the database: signatures, URL rules, endpoints and
-- their secrets, the outbox (emit, claim, record), schedules, disabling,
-- management, row level security, privileges and the product's own events.
\set SHOW_CONTEXT never
-- The key ring seal.sql rotated the data keys to.
\getenv keys ACTLOOM_TEST_KEYS
\set rotated :keys/keyring-rotated
SET actloom.keyring_file = :'rotated';
-- The events the tests before this one caused are of no interest here.
DELETE FROM actloom.webhook_messages;
SELECT id AS acme FROM actloom.companies WHERE name = 'Acme' \gset
SELECT id AS globex FROM actloom.companies WHERE name = 'Globex' \gset
SELECT id AS acme_admin FROM actloom.users WHERE email = 'admin@acme.test' \gset
SELECT id AS acme_member FROM actloom.users WHERE email = 'member@acme.test' \gset
SELECT id AS globex_owner FROM actloom.users WHERE email = 'owner@globex.test' \gset
SET ROLE regress_app;
SELECT actloom.create_user('hook@nowhere.test') AS newbie \gset
RESET ROLE;

-- err() runs a statement and shows the SQLSTATE, message and detail it
-- raised, with uuids masked.
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	detail text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
	RETURN regexp_replace(SQLSTATE || ': ' || SQLERRM || coalesce(nullif(' | ' || detail, ' | '), ''),
		'[0-9a-f]{8}-[0-9a-f-]{27}', '<uuid>', 'g');
END
$$;
-- What the webhook tables hold, seen by the superuser (no row level security).
CREATE FUNCTION pg_temp.counts() RETURNS text LANGUAGE sql AS $$
	SELECT format('endpoints %s, secrets %s, messages %s, deliveries %s, attempts %s',
		(SELECT count(*) FROM actloom.webhook_endpoints), (SELECT count(*) FROM actloom.webhook_secrets),
		(SELECT count(*) FROM actloom.webhook_messages), (SELECT count(*) FROM actloom.webhook_deliveries),
		(SELECT count(*) FROM actloom.webhook_attempts))
$$;
-- An endpoint as returned, without what differs from run to run.
CREATE FUNCTION pg_temp.ep(j jsonb) RETURNS jsonb LANGUAGE sql AS $$
	SELECT j - 'id' - 'created_at' - 'updated_at' - 'created_by' - 'secret' - 'fingerprint' - 'secrets'
		   - 'disabled_at' - 'failing_since'
		   || jsonb_build_object('secrets', jsonb_array_length(j -> 'secrets'))
$$;
-- A message body with its timestamp and uuids masked.
CREATE FUNCTION pg_temp.body(b text) RETURNS text LANGUAGE sql AS $$
	SELECT regexp_replace(regexp_replace(b, '"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"', '"timestamp":"<ts>"'),
		'[0-9a-f]{8}-[0-9a-f-]{27}', '<uuid>', 'g')
$$;

--------------------------------------------------------------------------
-- Signatures: the Standard Webhooks test vector, for anybody
--------------------------------------------------------------------------
SET ROLE regress_outsider;
SELECT actloom.webhook_signature('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek',
								 1614265330, '{"test": 2432232314}') AS test_vector;
-- One byte of the body, the id or the time changes it.
SELECT actloom.webhook_signature('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek',
								 1614265330, '{"test": 2432232315}') AS other_body,
	   actloom.webhook_signature('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek',
								 1614265331, '{"test": 2432232314}') AS other_time;
SELECT label, pg_temp.err(stmt) AS error FROM (VALUES
	('no prefix', $$SELECT actloom.webhook_signature('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'm', 1, 'b')$$),
	('empty key', $$SELECT actloom.webhook_signature('whsec_', 'm', 1, 'b')$$),
	('not base64', $$SELECT actloom.webhook_signature('whsec_!!!!', 'm', 1, 'b')$$),
	('key too long', format('SELECT actloom.webhook_signature(%L, ''m'', 1, ''b'')', 'whsec_' || encode(convert_to(repeat('k', 65), 'UTF8'), 'base64'))),
	('null secret', $$SELECT actloom.webhook_signature(NULL, 'm', 1, 'b')$$),
	('null body', $$SELECT actloom.webhook_signature('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'm', 1, NULL)$$)
) AS t(label, stmt);
RESET ROLE;

--------------------------------------------------------------------------
-- URL rules
--------------------------------------------------------------------------
SELECT u AS url, pg_temp.err(format('SELECT actloom._webhook_check_url(%L)', u)) AS verdict FROM (VALUES
	('https://hooks.example.com/in?x=1'), ('HTTPS://Hooks.Example.COM:8443/'), ('https://hooks.example.com.'),
	('https://localhost/'), ('https://under_score.example/'), ('https://8.8.8.8/'), ('https://[2606:4700::1111]:443/'),
	('http://hooks.example.com/'), ('ftp://hooks.example.com/'), ('hooks.example.com/in'), ('https:/x.example/'),
	('https:///path'), ('https://?q'), ('https://:443/'), ('https://user:pw@hooks.example.com/'),
	('https://user@hooks.example.com/'), ('https://hooks.example.com/#top'), ('https://hooks.example.com:0/'),
	('https://hooks.example.com:65536/'), ('https://hooks.example.com:/'), ('https://hooks.example.com:44a/'),
	('https://hooks.example.com:000443/'), ('https://hooks.example.com/a b'), (E'https://hooks.example.com/\t'),
	(E'https://hooks.example.com/\x7f'), ('https://hooks.example.com/é'), ('https://hooks%2eexample.com/'),
	('https://a..b/'), ('https://.a/'), ('https://[::1/'), ('https://[fe80::1%25eth0]/'), ('https://[not:v6]/'),
	('https://' || repeat('a', 254) || '/'), ('https://example.123/'), ('https://256.1.1.1/'),
	('https://1.2.3.4.5/'), ('https://08.1.1.1/'), ('https://0x/'), ('https://4294967296/')
) AS t(u);
SELECT octet_length(u) AS bytes, pg_temp.err(format('SELECT actloom._webhook_check_url(%L)', u)) AS verdict
  FROM (VALUES ('https://h.example/' || repeat('p', 2030)), ('https://h.example/' || repeat('p', 2031))) AS t(u);
SELECT pg_temp.err('SELECT actloom._webhook_check_url(NULL)') AS null_url;
-- Plain http only when the superuser setting allows it.
SET actloom.webhook_allow_http = on;
SELECT pg_temp.err($$SELECT actloom._webhook_check_url('http://hooks.example.com/')$$) AS http_allowed;
RESET actloom.webhook_allow_http;

-- An address literal in every denied range, in every spelling, is refused;
-- the addresses just outside are not.
SELECT host, pg_temp.err(format('SELECT actloom._webhook_check_url(%L)', 'https://' || host || '/')) AS verdict
  FROM (VALUES
	('0.0.0.0'), ('10.1.2.3'), ('100.64.0.1'), ('127.0.0.1'), ('169.254.169.254'), ('172.16.0.1'),
	('172.31.255.255'), ('192.0.0.8'), ('192.0.2.1'), ('192.88.99.1'), ('192.168.1.1'), ('198.18.0.1'),
	('198.19.255.1'), ('198.51.100.7'), ('203.0.113.9'), ('224.0.0.251'), ('239.255.255.250'), ('240.0.0.1'),
	('255.255.255.255'),
	('9.255.255.255'), ('100.128.0.1'), ('172.32.0.1'), ('198.20.0.1'), ('223.255.255.255'),
	('[::]'), ('[::1]'), ('[fe80::1]'), ('[febf::1]'), ('[fec0::1]'), ('[fc00::1]'), ('[fd12:3456::1]'),
	('[ff02::1]'), ('[2001:db8::1]'), ('[100::1]'), ('[64:ff9b:1::a00:1]'),
	('[::ffff:127.0.0.1]'), ('[::ffff:7f00:1]'), ('[::127.0.0.1]'), ('[::ffff:0:10.0.0.1]'),
	('[64:ff9b::192.168.0.1]'), ('[64:ff9b::7f00:1]'), ('[2002:7f00:1::1]'), ('[2002:a00:1::]'),
	('[2001:0:4136:e378:8000:63bf:3fff:fdd2]'), ('[2001:0:808:808:0:0:80ff:fffe]'),
	('[::ffff:8.8.8.8]'), ('[2002:808:808::1]'), ('[2001:4860::8888]'), ('[100:0:0:1::1]'),
	('2130706433'), ('0x7f000001'), ('0x7f.1'), ('017700000001'), ('0177.0.0.1'), ('127.1'), ('127.0.1'),
	('0x7F.0.0.1'), ('127.0.0.1.'), ('0'), ('0xa.0xb.0xc.0xd'), ('3232235777'), ('134744072'), ('0x08.0x08.8.010')
) AS t(host);

-- Registration refuses a bad URL and writes nothing.
SELECT pg_temp.counts() AS before;
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT pg_temp.err(format('SELECT actloom.webhook_endpoint_create(%L, %L, NULL, NULL)', :'acme', u)) AS refused
  FROM (VALUES ('https://127.0.0.1/'), ('https://[::ffff:10.0.0.1]/'), ('https://0x7f.1/'), ('http://hooks.example.com/')) AS t(u);
COMMIT;
RESET ROLE;
SELECT pg_temp.counts() AS after;

--------------------------------------------------------------------------
-- Endpoints
--------------------------------------------------------------------------
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.webhook_endpoint_create(:'acme', 'https://all.example/in', 'everything', NULL) AS a1 \gset
COMMIT;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.webhook_endpoint_create(:'acme', 'https://orders.example/in', '  orders  ', ARRAY['order.*', 'order.*']) AS a2 \gset
COMMIT;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.webhook_endpoint_create(:'acme', 'https://created.example/in?token=t0ps3cret', NULL, ARRAY['order.created', 'invoice.paid']) AS a3 \gset
COMMIT;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.webhook_endpoint_create(:'acme', 'https://off.example/in', 'to be disabled', ARRAY['invoice.paid']) AS a4 \gset
COMMIT;
RESET ROLE;
SELECT (:'a1'::jsonb ->> 'id') AS a1_id, (:'a2'::jsonb ->> 'id') AS a2_id, (:'a3'::jsonb ->> 'id') AS a3_id,
	   (:'a4'::jsonb ->> 'id') AS a4_id, :'a1'::jsonb ->> 'secret' AS a1_secret,
	   :'a2'::jsonb ->> 'secret' AS a2_secret \gset
SELECT pg_temp.ep(j) AS endpoint FROM (VALUES (:'a1'::jsonb), (:'a2'), (:'a3'), (:'a4')) AS t(j);
-- The secret is shown once, in Standard Webhooks' form; its fingerprint is
-- the start of its SHA-256, and only that is listed.
SELECT j ->> 'secret' ~ '^whsec_[A-Za-z0-9+/]{43}=$' AS secret_format,
	   j ->> 'fingerprint' = encode(substring(sha256(convert_to(j ->> 'secret', 'UTF8')) FROM 1 FOR 8), 'hex') AS fingerprint_is_sha256,
	   j -> 'secrets' -> 0 ->> 'fingerprint' = j ->> 'fingerprint' AS listed,
	   length(decode(substring(j ->> 'secret' FROM 7), 'base64')) AS key_bytes
  FROM (VALUES (:'a1'::jsonb), (:'a2')) AS t(j);
SELECT count(DISTINCT s.fingerprint) AS distinct_secrets, bool_and(position(convert_to(:'a1_secret', 'UTF8') IN s.sealed) = 0) AS not_in_clear
  FROM actloom.webhook_secrets s;

-- Refusals write nothing.
SELECT pg_temp.counts() AS before;
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT pg_temp.err(format('SELECT actloom.webhook_endpoint_create(%L, ''https://x.example/'', NULL, NULL)', :'acme')) AS member;
COMMIT;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT label, pg_temp.err(stmt) AS error FROM (VALUES
	('other company', format('SELECT actloom.webhook_endpoint_create(%L, ''https://x.example/'', NULL, NULL)', :'globex')),
	('null company', 'SELECT actloom.webhook_endpoint_create(NULL, ''https://x.example/'', NULL, NULL)'),
	('null url', format('SELECT actloom.webhook_endpoint_create(%L, NULL, NULL, NULL)', :'acme')),
	('bad type', format('SELECT actloom.webhook_endpoint_create(%L, ''https://x.example/'', NULL, ARRAY[''Order.Created''])', :'acme')),
	('empty label', format('SELECT actloom.webhook_endpoint_create(%L, ''https://x.example/'', NULL, ARRAY[''order..created''])', :'acme')),
	('bare star', format('SELECT actloom.webhook_endpoint_create(%L, ''https://x.example/'', NULL, ARRAY[''*''])', :'acme')),
	('inner star', format('SELECT actloom.webhook_endpoint_create(%L, ''https://x.example/'', NULL, ARRAY[''order.*.x''])', :'acme')),
	('null type', format('SELECT actloom.webhook_endpoint_create(%L, ''https://x.example/'', NULL, ARRAY[NULL])', :'acme')),
	('long description', format('SELECT actloom.webhook_endpoint_create(%L, ''https://x.example/'', repeat(''d'', 1001), NULL)', :'acme')),
	('control in description', format('SELECT actloom.webhook_endpoint_create(%L, ''https://x.example/'', E''a\nb'', NULL)', :'acme')),
	('too many types', format('SELECT actloom.webhook_endpoint_create(%L, ''https://x.example/'', NULL, ARRAY(SELECT ''t'' || i FROM generate_series(1, 101) i))', :'acme'))
) AS t(label, stmt);
COMMIT;
SELECT pg_temp.err('SET actloom.webhook_max_endpoints = 4') AS app_cannot_raise_limit;
RESET ROLE;
SET actloom.webhook_max_endpoints = 4;
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT pg_temp.err(format('SELECT actloom.webhook_endpoint_create(%L, ''https://x.example/'', NULL, NULL)', :'acme')) AS fifth;
COMMIT;
RESET ROLE;
RESET actloom.webhook_max_endpoints;
SELECT pg_temp.counts() AS after;

-- Disabled by a person: audited, announced, and then it receives nothing.
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT pg_temp.ep(actloom.webhook_endpoint_update(:'acme', :'a4_id', '{"enabled": false}')) AS disabled;
COMMIT;
RESET ROLE;
SELECT m.event_type, pg_temp.body(m.body) AS body,
	   (SELECT string_agg(e.description, ', ' ORDER BY e.description) FROM actloom.webhook_deliveries d
		  JOIN actloom.webhook_endpoints e ON e.id = d.endpoint_id WHERE d.message_id = m.id) AS delivered_to
  FROM actloom.webhook_messages m WHERE m.company_id = :'acme' ORDER BY m.created_at, m.event_type;

--------------------------------------------------------------------------
-- Emitting
--------------------------------------------------------------------------
-- Only events from now on.
DELETE FROM actloom.webhook_messages;
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT actloom.webhook_emit('order.created', '{"id": 1, "total": "9.90"}') AS msg \gset
SELECT :'msg' ~ '^msg_[0-9A-Za-z]{24}$' AS id_format;
-- Nothing of it is visible outside this transaction yet; it is in here.
SELECT count(*) AS deliveries_in_transaction FROM actloom.webhook_deliveries WHERE message_id = :'msg';
SELECT actloom.webhook_emit('order.shipped', '{"id": 1}') IS NOT NULL AS shipped,
	   actloom.webhook_emit('orders.created', '{}') IS NOT NULL AS not_order_star,
	   actloom.webhook_emit('invoice.paid', '{"nested": {"a": [1, 2]}}') IS NOT NULL AS invoice;
COMMIT;
-- Rolled back: no message, no delivery.
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT actloom.webhook_emit('order.created', '{"id": 2}') IS NOT NULL AS emitted;
ROLLBACK;
RESET ROLE;
-- Fan-out: all types, "order.*", exact names; never the disabled endpoint.
SELECT m.event_type, pg_temp.body(m.body) AS body,
	   (SELECT string_agg(e.description, ', ' ORDER BY e.description) FROM actloom.webhook_deliveries d
		  JOIN actloom.webhook_endpoints e ON e.id = d.endpoint_id WHERE d.message_id = m.id) AS delivered_to
  FROM actloom.webhook_messages m ORDER BY m.created_at, m.event_type;
SELECT state, attempts, next_attempt_at <= now() AS due_now, lease IS NULL AS no_lease, count(*)
  FROM actloom.webhook_deliveries GROUP BY 1, 2, 3, 4;

SELECT pg_temp.counts() AS before;
SET ROLE regress_app;
SELECT pg_temp.err('SELECT actloom.webhook_emit(''order.created'', ''{}'')') AS no_actor;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT label, pg_temp.err(stmt) AS error FROM (VALUES
	('null type', 'SELECT actloom.webhook_emit(NULL, ''{}'')'),
	('null payload', 'SELECT actloom.webhook_emit(''order.created'', NULL)'),
	('upper case', 'SELECT actloom.webhook_emit(''Order.created'', ''{}'')'),
	('empty', 'SELECT actloom.webhook_emit('''', ''{}'')'),
	('trailing dot', 'SELECT actloom.webhook_emit(''order.'', ''{}'')'),
	('wildcard', 'SELECT actloom.webhook_emit(''order.*'', ''{}'')'),
	('101 characters', format('SELECT actloom.webhook_emit(%L, ''{}'')', repeat('x', 101))),
	('reserved', 'SELECT actloom.webhook_emit(''member.added'', ''{}'')'),
	('reserved webhook.', 'SELECT actloom.webhook_emit(''webhook.test'', ''{}'')'),
	('array payload', 'SELECT actloom.webhook_emit(''order.created'', ''[1]'')'),
	('string payload', 'SELECT actloom.webhook_emit(''order.created'', ''"x"'')'),
	('too large', format('SELECT actloom.webhook_emit(''order.created'', %L)', jsonb_build_object('x', repeat('y', 65530))))
) AS t(label, stmt);
SELECT length(jsonb_build_object('x', repeat('y', 65526))::text) AS largest_bytes,
	   actloom.webhook_emit('order.large', jsonb_build_object('x', repeat('y', 65526))) IS NOT NULL AS largest_allowed;
ROLLBACK;
RESET ROLE;
SELECT pg_temp.counts() AS after;

--------------------------------------------------------------------------
-- Claiming and recording (the deliverer acts for no company)
--------------------------------------------------------------------------
SET actloom.webhook_retry_schedule = '0s, 10s, 20s';
SET ROLE regress_app;
SELECT pg_temp.err('SET actloom.webhook_retry_schedule = ''1s''') AS app_cannot_change_schedule;
-- Sharded: every due delivery is in exactly one of two shards.
BEGIN;
SELECT count(*) AS both_shards, count(DISTINCT delivery_id) AS distinct_deliveries,
	   bool_and((hashtext(endpoint_id::text) & 2147483647) % 2 = shard) AS each_in_its_shard
  FROM (SELECT 0 AS shard, c.* FROM actloom.webhook_claim(0, 2, 100, 100, '{}', 60) c
		UNION ALL SELECT 1, c.* FROM actloom.webhook_claim(1, 2, 100, 100, '{}', 60) c) s;
ROLLBACK;
-- At most per_endpoint less what is busy, per endpoint; at most max_rows.
BEGIN;
SELECT CASE c.endpoint_id WHEN :'a1_id' THEN 'everything' WHEN :'a2_id' THEN 'orders' ELSE 'created' END AS endpoint,
	   count(*) FROM actloom.webhook_claim(0, 1, 100, 2, jsonb_build_object(:'a1_id', 1), 60) c GROUP BY 1 ORDER BY 1;
ROLLBACK;
BEGIN;
SELECT count(*) AS max_rows_3 FROM actloom.webhook_claim(0, 1, 3, 100, '{}', 60);
SELECT count(*) AS full_endpoint_gets_none FROM actloom.webhook_claim(0, 1, 100, 4, jsonb_build_object(:'a1_id', 4, :'a2_id', 9), 60) c
 WHERE c.endpoint_id IN (:'a1_id', :'a2_id');
ROLLBACK;
-- Oldest first; each claimed under a lease, signed over the exact body.
CREATE TEMP TABLE claimed AS SELECT * FROM actloom.webhook_claim(0, 1, 100, 100, '{}', 60);
RESET ROLE;
SELECT c.message_id = m.id AS same_id, c.body = m.body AS same_body, c.attempt, c.url,
	   abs(c.webhook_timestamp - extract(epoch FROM now())) < 5 AS timestamp_now,
	   CASE c.endpoint_id WHEN :'a1_id' THEN c.signature = actloom.webhook_signature(:'a1_secret', c.message_id, c.webhook_timestamp, c.body)
						  WHEN :'a2_id' THEN c.signature = actloom.webhook_signature(:'a2_secret', c.message_id, c.webhook_timestamp, c.body)
						  END AS signature_verifies,
	   c.signature ~ '^v1,[A-Za-z0-9+/]{43}=$' AS one_signature, m.event_type
  FROM claimed c JOIN actloom.webhook_messages m ON m.id = c.message_id ORDER BY m.created_at, c.url;
SET ROLE regress_app;
SELECT count(*) AS claimed_again FROM actloom.webhook_claim(0, 1, 100, 100, '{}', 60);
SELECT actloom.webhook_next_due(0, 1) > 50 AS next_due_is_the_lease;
RESET ROLE;
SELECT state, attempts, lease IS NOT NULL AS leased, lease_until > now() + interval '50 s' AS until, count(*)
  FROM actloom.webhook_deliveries GROUP BY 1, 2, 3, 4;
SET ROLE regress_app;

-- The state machine, one delivery at a time.
SELECT delivery_id AS d1, lease AS l1 FROM claimed WHERE endpoint_id = :'a1_id' AND body LIKE '{"type":"order.created"%' \gset
SELECT delivery_id AS d2, lease AS l2 FROM claimed WHERE endpoint_id = :'a2_id' AND body LIKE '{"type":"order.created"%' \gset
SELECT delivery_id AS d3, lease AS l3 FROM claimed WHERE endpoint_id = :'a3_id' AND body LIKE '{"type":"order.created"%' \gset
SELECT delivery_id AS d4, lease AS l4 FROM claimed WHERE endpoint_id = :'a1_id' AND body LIKE '{"type":"order.shipped"%' \gset
SELECT actloom.webhook_record(:'d1', gen_random_uuid(), 'delivered', 200, 12, 'ok', NULL) AS wrong_lease;
SELECT actloom.webhook_record(gen_random_uuid(), :'l1', 'delivered', 200, 12, 'ok', NULL) AS unknown_delivery;
SELECT actloom.webhook_record(:'d1', :'l1', 'delivered', 204, 12, E'fine\r\n\tthanks\x01', NULL) AS delivered;
SELECT actloom.webhook_record(:'d1', :'l1', 'delivered', 200, 12, 'ok', NULL) AS recorded_twice;
SELECT actloom.webhook_record(:'d2', :'l2', 'http_status', 503, 30, 'busy', NULL) AS retry;
SELECT actloom.webhook_record(:'d4', :'l4', 'timeout', NULL, 15000, NULL, 1000) AS retry_after_clamped;
SELECT actloom.webhook_record(:'d3', :'l3', 'refused_address', NULL, 1, NULL, NULL) AS refused_address;
RESET ROLE;
SELECT d.id = :'d1' AS d1, d.id = :'d2' AS d2, d.id = :'d4' AS d4, d.state, d.attempts, d.last_outcome, d.last_status,
	   CASE WHEN d.id = :'d4' THEN round(extract(epoch FROM d.next_attempt_at - now())) END AS due_in_s
  FROM actloom.webhook_deliveries d WHERE d.id IN (:'d1', :'d2', :'d3', :'d4') ORDER BY d.state, d.id = :'d4';
SELECT a.attempt, a.outcome, a.http_status, a.duration_ms, a.response, a.started_at <= now() AS started
  FROM actloom.webhook_attempts a WHERE a.delivery_id IN (:'d1', :'d2', :'d3', :'d4') ORDER BY a.outcome;
-- Jitter: the 10 s step of d2 lands between 8 and 12 s.
SELECT next_attempt_at - now() BETWEEN interval '8 s' AND interval '12 s' AS jittered
  FROM actloom.webhook_deliveries WHERE id = :'d2';
SELECT failing_since IS NOT NULL AS failing FROM actloom.webhook_endpoints WHERE id IN (:'a1_id', :'a2_id') ORDER BY description;

-- The next attempt, after time passes (the schedule moved into the past).
UPDATE actloom.webhook_deliveries SET next_attempt_at = now() - interval '1 s' WHERE id = :'d2';
SET ROLE regress_app;
SELECT actloom.webhook_next_due(0, 1) AS due_now;
SELECT actloom.webhook_due_count(0, 1) AS due_count;
SELECT lease AS l2 FROM actloom.webhook_claim(0, 1, 100, 100, '{}', 60) WHERE delivery_id = :'d2' \gset
SELECT actloom.webhook_record(:'d2', :'l2', 'connect', NULL, 3, NULL, 0) AS retry_after_below_step;
RESET ROLE;
SELECT attempts, round(extract(epoch FROM next_attempt_at - now())) AS due_in_s FROM actloom.webhook_deliveries WHERE id = :'d2';
UPDATE actloom.webhook_deliveries SET next_attempt_at = now() - interval '1 s' WHERE id = :'d2';
SET ROLE regress_app;
SELECT lease AS l2 FROM actloom.webhook_claim(0, 1, 100, 100, '{}', 60) WHERE delivery_id = :'d2' \gset
SELECT actloom.webhook_record(:'d2', :'l2', 'http_status', 500, 3, NULL, NULL) AS after_last_step;
RESET ROLE;
SELECT state, attempts, round_attempts, next_attempt_at FROM actloom.webhook_deliveries WHERE id = :'d2';

-- A lease that expired is claimed again, and the old lease is stale.
UPDATE actloom.webhook_deliveries SET next_attempt_at = now() - interval '1 s' WHERE id = :'d4';
SET ROLE regress_app;
SELECT lease AS old_lease FROM actloom.webhook_claim(0, 1, 100, 100, '{}', 60) WHERE delivery_id = :'d4' \gset
RESET ROLE;
UPDATE actloom.webhook_deliveries SET lease_until = now() - interval '1 s' WHERE id = :'d4';
SET ROLE regress_app;
SELECT actloom.webhook_next_due(0, 1) AS expired_lease_due_now;
SELECT lease AS l4, attempt FROM actloom.webhook_claim(0, 1, 100, 100, '{}', 60) WHERE delivery_id = :'d4' \gset
SELECT :'attempt' AS reclaimed_attempt, :'l4' <> :'old_lease' AS new_lease;
SELECT actloom.webhook_record(:'d4', :'old_lease', 'delivered', 200, 1, NULL, NULL) AS old_lease_is_stale;
SELECT actloom.webhook_record(:'d4', :'l4', 'delivered', 200, 1, NULL, NULL) AS new_lease_records;
-- In batches: each attempt as webhook_record takes it, one transaction for all.
SELECT state AS batched_old_lease FROM actloom.webhook_record_all(jsonb_build_array(jsonb_build_object(
	'delivery_id', :'d4', 'lease', :'old_lease', 'outcome', 'delivered', 'http_status', 200, 'duration_ms', 1)));
\set VERBOSITY sqlstate
SELECT * FROM actloom.webhook_record_all('{}');
SELECT * FROM actloom.webhook_record_all('[]');
SELECT * FROM actloom.webhook_record_all('[1]');
\set VERBOSITY default

-- Bad arguments: refused, nothing changed.
RESET ROLE;
UPDATE actloom.webhook_deliveries SET lease_until = now() - interval '1 s'
 WHERE id = (SELECT delivery_id FROM claimed WHERE endpoint_id = :'a3_id' AND body LIKE '{"type":"invoice.paid"%');
SET ROLE regress_app;
SELECT lease AS l5, delivery_id AS d5 FROM actloom.webhook_claim(0, 1, 1, 100, '{}', 60) \gset
SELECT label, pg_temp.err(stmt) AS error FROM (VALUES
	('unknown outcome', format('SELECT actloom.webhook_record(%L, %L, ''teapot'', NULL, 1, NULL, NULL)', :'d5', :'l5')),
	('claim-only outcome', format('SELECT actloom.webhook_record(%L, %L, ''secret_unavailable'', NULL, 1, NULL, NULL)', :'d5', :'l5')),
	('delivered without 2xx', format('SELECT actloom.webhook_record(%L, %L, ''delivered'', 500, 1, NULL, NULL)', :'d5', :'l5')),
	('delivered without status', format('SELECT actloom.webhook_record(%L, %L, ''delivered'', NULL, 1, NULL, NULL)', :'d5', :'l5')),
	('2xx as http_status', format('SELECT actloom.webhook_record(%L, %L, ''http_status'', 200, 1, NULL, NULL)', :'d5', :'l5')),
	('http_status without status', format('SELECT actloom.webhook_record(%L, %L, ''http_status'', NULL, 1, NULL, NULL)', :'d5', :'l5')),
	('status out of range', format('SELECT actloom.webhook_record(%L, %L, ''http_status'', 600, 1, NULL, NULL)', :'d5', :'l5')),
	('negative duration', format('SELECT actloom.webhook_record(%L, %L, ''timeout'', NULL, -1, NULL, NULL)', :'d5', :'l5')),
	('negative retry-after', format('SELECT actloom.webhook_record(%L, %L, ''timeout'', NULL, 1, NULL, -1)', :'d5', :'l5')),
	('null lease', format('SELECT actloom.webhook_record(%L, NULL, ''timeout'', NULL, 1, NULL, NULL)', :'d5')),
	('null duration', format('SELECT actloom.webhook_record(%L, %L, ''timeout'', NULL, NULL, NULL, NULL)', :'d5', :'l5')),
	('claim: shard out of range', 'SELECT actloom.webhook_claim(2, 2, 10, 4, ''{}'', 60)'),
	('claim: no shards', 'SELECT actloom.webhook_claim(0, 0, 10, 4, ''{}'', 60)'),
	('claim: max_rows 0', 'SELECT actloom.webhook_claim(0, 1, 0, 4, ''{}'', 60)'),
	('claim: lease 0', 'SELECT actloom.webhook_claim(0, 1, 10, 4, ''{}'', 0)'),
	('claim: busy array', 'SELECT actloom.webhook_claim(0, 1, 10, 4, ''[]'', 60)'),
	('claim: busy not a count', 'SELECT actloom.webhook_claim(0, 1, 10, 4, ''{"x": "1"}'', 60)'),
	('claim: busy negative', 'SELECT actloom.webhook_claim(0, 1, 10, 4, ''{"x": -1}'', 60)'),
	('claim: null shard', 'SELECT actloom.webhook_claim(NULL, 1, 10, 4, ''{}'', 60)'),
	('next_due: shard out of range', 'SELECT actloom.webhook_next_due(1, 1)')
) AS t(label, stmt);
SELECT actloom.webhook_record(:'d5', :'l5', 'response_too_large', 200, 1, repeat('é', 3000), NULL) AS too_large_is_retried;
RESET ROLE;
SELECT octet_length(response) AS kept_bytes, length(response) AS kept_characters FROM actloom.webhook_attempts
 WHERE delivery_id = :'d5';

-- 410: the endpoint is gone: disabled, its pending deliveries cancelled,
-- audited and announced.
UPDATE actloom.webhook_deliveries SET next_attempt_at = now() - interval '1 s' WHERE state = 'pending';
UPDATE actloom.webhook_deliveries SET lease_until = now() - interval '1 s' WHERE state = 'delivering';
SET ROLE regress_app;
SELECT delivery_id AS d6, lease AS l6 FROM actloom.webhook_claim(0, 1, 100, 100, '{}', 60)
 WHERE endpoint_id = :'a2_id' LIMIT 1 \gset
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT actloom.webhook_emit('order.returned', '{"id": 1}') IS NOT NULL AS pending_for_orders;
COMMIT;
SELECT actloom.webhook_record(:'d6', :'l6', 'http_status', 410, 5, 'gone', NULL) AS gone;
RESET ROLE;
SELECT enabled, disabled_reason FROM actloom.webhook_endpoints WHERE id = :'a2_id';
SELECT state, count(*) FROM actloom.webhook_deliveries WHERE endpoint_id = :'a2_id' GROUP BY 1 ORDER BY 1;
SELECT pg_temp.body(m.body) AS announced,
	   (SELECT string_agg(e.description, ', ' ORDER BY e.description) FROM actloom.webhook_deliveries d
		  JOIN actloom.webhook_endpoints e ON e.id = d.endpoint_id WHERE d.message_id = m.id) AS delivered_to
  FROM actloom.webhook_messages m WHERE m.event_type = 'webhook.endpoint_disabled';
-- A disabled endpoint is neither claimed nor due.
SET ROLE regress_app;
SELECT count(*) AS claimed_for_disabled FROM actloom.webhook_claim(0, 1, 100, 100, '{}', 60) WHERE endpoint_id = :'a2_id';
RESET ROLE;

-- Failing for longer than actloom.webhook_disable_after: disabled
-- automatically.
SET ROLE regress_app;
SELECT pg_temp.err('SET actloom.webhook_disable_after = ''1s''') AS app_cannot_change;
RESET ROLE;
UPDATE actloom.webhook_endpoints SET failing_since = now() - interval '6 days' WHERE id = :'a1_id';
UPDATE actloom.webhook_deliveries SET state = 'pending', next_attempt_at = now() - interval '1 s', lease = NULL,
	   lease_until = NULL WHERE endpoint_id = :'a1_id' AND state IN ('pending', 'delivering');
SET ROLE regress_app;
SELECT delivery_id AS d7, lease AS l7 FROM actloom.webhook_claim(0, 1, 100, 100, '{}', 60)
 WHERE endpoint_id = :'a1_id' LIMIT 1 \gset
SELECT actloom.webhook_record(:'d7', :'l7', 'timeout', NULL, 15000, NULL, NULL) AS after_five_days;
RESET ROLE;
SELECT enabled, disabled_reason ~ '^automatic: every attempt failed since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$' AS reason
  FROM actloom.webhook_endpoints WHERE id = :'a1_id';
SET actloom.webhook_disable_after = '1h';
SHOW actloom.webhook_disable_after;
RESET actloom.webhook_disable_after;
SHOW actloom.webhook_disable_after;
-- Schedules that are not schedules are refused when set.
SELECT s, pg_temp.err(format('SET actloom.webhook_retry_schedule = %L', s)) AS error
  FROM (VALUES ('1s,'), ('5'), ('5 seconds'), ('1w'), ('31d'), ('1s;2s'), ('1234567890s'), (''),
			   ((SELECT string_agg('1s', ',') FROM generate_series(1, 33))), ('0ms, 250ms,1min , 2h,1d')) AS t(s);
RESET actloom.webhook_retry_schedule;
SHOW actloom.webhook_retry_schedule;
SET actloom.webhook_retry_schedule = '0s, 10s, 20s';

-- Re-enabled by a person: audited; it receives new events again.
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT pg_temp.ep(actloom.webhook_endpoint_update(:'acme', :'a1_id', '{"enabled": true}')) AS enabled;
COMMIT;
RESET ROLE;
SELECT failing_since FROM actloom.webhook_endpoints WHERE id = :'a1_id';

--------------------------------------------------------------------------
-- Secrets: rotation with a grace period, shredding
--------------------------------------------------------------------------
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.webhook_rotate_secret(:'acme', :'a1_id') AS rotated \gset
SELECT :'rotated'::jsonb ->> 'secret' AS a1_new_secret \gset
SELECT :'a1_new_secret' <> :'a1_secret' AS new_secret,
	   jsonb_array_length(:'rotated'::jsonb -> 'secrets') AS live_secrets,
	   (:'rotated'::jsonb -> 'secrets' -> 1 ->> 'expires_at')::timestamptz - now() AS grace,
	   :'rotated'::jsonb -> 'secrets' -> 0 ->> 'fingerprint' = :'rotated'::jsonb ->> 'fingerprint' AS current_first;
SELECT label, pg_temp.err(stmt) AS error FROM (VALUES
	('grace too long', format('SELECT actloom.webhook_rotate_secret(%L, %L, ''7 days 1 second'')', :'acme', :'a1_id')),
	('negative grace', format('SELECT actloom.webhook_rotate_secret(%L, %L, ''-1 second'')', :'acme', :'a1_id')),
	('null grace', format('SELECT actloom.webhook_rotate_secret(%L, %L, NULL)', :'acme', :'a1_id')),
	('other company''s endpoint', format('SELECT actloom.webhook_rotate_secret(%L, %L)', :'acme', gen_random_uuid()))
) AS t(label, stmt);
SELECT actloom.webhook_emit('order.created', '{"id": 3}') AS msg3 \gset
COMMIT;
-- During the grace period both secrets sign, the new one first.
SELECT * FROM actloom.webhook_claim(0, 1, 100, 100, '{}', 60) WHERE message_id = :'msg3' AND endpoint_id = :'a1_id' \gset c_
SELECT :'c_signature' = actloom.webhook_signature(:'a1_new_secret', :'c_message_id', :'c_webhook_timestamp', :'c_body')
		|| ' ' || actloom.webhook_signature(:'a1_secret', :'c_message_id', :'c_webhook_timestamp', :'c_body') AS both_sign;
SELECT actloom.webhook_record(:'c_delivery_id', :'c_lease', 'http_status', 500, 1, NULL, NULL) AS retry;
RESET ROLE;
-- After it, only the new one.
UPDATE actloom.webhook_secrets SET expires_at = now() - interval '1 s' WHERE expires_at IS NOT NULL;
UPDATE actloom.webhook_deliveries SET next_attempt_at = now() - interval '1 s' WHERE id = :'c_delivery_id';
SET ROLE regress_app;
SELECT * FROM actloom.webhook_claim(0, 1, 100, 100, '{}', 60) WHERE delivery_id = :'c_delivery_id' \gset c_
SELECT :'c_signature' = actloom.webhook_signature(:'a1_new_secret', :'c_message_id', :'c_webhook_timestamp', :'c_body') AS only_new_signs;
SELECT actloom.webhook_record(:'c_delivery_id', :'c_lease', 'delivered', 200, 1, NULL, NULL) AS delivered;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT jsonb_array_length(actloom.webhook_endpoint(:'acme', :'a1_id') -> 'secrets') AS live_after_grace;
-- A rotation without grace drops the old secret at once.
SELECT jsonb_array_length(actloom.webhook_rotate_secret(:'acme', :'a3_id', '0') -> 'secrets') AS no_grace;
COMMIT;

-- A shredded company's endpoints cannot sign: their deliveries fail for
-- good, and no other delivery is held up.
BEGIN;
SELECT actloom.act_as(:'newbie');
SELECT actloom.create_company('Webco') AS webco \gset
SELECT actloom.act_as(:'newbie', :'webco');
SELECT actloom.webhook_endpoint_create(:'webco', 'https://webco.example/', 'webco', NULL) ->> 'id' AS webco_ep \gset
SELECT actloom.webhook_emit('order.created', '{}') AS webco_msg \gset
COMMIT;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT actloom.webhook_emit('order.created', '{"id": 4}') AS msg4 \gset
COMMIT;
RESET ROLE;
SELECT actloom.shred_company(:'webco');
SET ROLE regress_app;
SELECT message_id = :'msg4' AS acme_message, signature IS NOT NULL AS signed
  FROM actloom.webhook_claim(0, 1, 100, 100, '{}', 60) WHERE message_id IN (:'msg4', :'webco_msg') ORDER BY 1;
RESET ROLE;
SELECT d.state, d.last_outcome, d.attempts, a.outcome, a.attempt, a.duration_ms
  FROM actloom.webhook_deliveries d JOIN actloom.webhook_attempts a ON a.delivery_id = d.id
 WHERE d.message_id = :'webco_msg';
-- Tampered sealed keys do not open either.
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT actloom.webhook_emit('order.created', '{"id": 5}') AS msg5 \gset
COMMIT;
RESET ROLE;
UPDATE actloom.webhook_secrets SET sealed = set_byte(sealed, 20, get_byte(sealed, 20) # 1) WHERE endpoint_id = :'a3_id';
SET ROLE regress_app;
SELECT c.endpoint_id = :'a1_id' AS to_a1, c.signature IS NOT NULL AS signed
  FROM actloom.webhook_claim(0, 1, 100, 100, '{}', 60) c WHERE c.message_id = :'msg5' ORDER BY 1;
RESET ROLE;
SELECT e.description, d.state, d.last_outcome FROM actloom.webhook_deliveries d
  JOIN actloom.webhook_endpoints e ON e.id = d.endpoint_id WHERE d.message_id = :'msg5' ORDER BY 1;

--------------------------------------------------------------------------
-- Management
--------------------------------------------------------------------------
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT jsonb_array_length(actloom.webhook_endpoints(:'acme')) AS endpoints,
	   (SELECT jsonb_agg(e ->> 'description') FROM jsonb_array_elements(actloom.webhook_endpoints(:'acme')) e) AS oldest_first,
	   (SELECT bool_and(NOT (e ? 'secret') AND e -> 'secrets' -> 0 ->> 'fingerprint' ~ '^[0-9a-f]{16}$')
		  FROM jsonb_array_elements(actloom.webhook_endpoints(:'acme')) e) AS fingerprints_only;
SELECT pg_temp.ep(actloom.webhook_endpoint(:'acme', :'a3_id')) AS one;
SELECT pg_temp.ep(actloom.webhook_endpoint_update(:'acme', :'a3_id',
	'{"url": "https://created.example/v2", "description": "created v2", "event_types": ["order.created", "order.*"]}')) AS updated;
SELECT pg_temp.ep(actloom.webhook_endpoint_update(:'acme', :'a3_id', '{"description": "created v2"}')) AS unchanged;
SELECT label, pg_temp.err(stmt) AS error FROM (VALUES
	('empty changes', format('SELECT actloom.webhook_endpoint_update(%L, %L, ''{}'')', :'acme', :'a3_id')),
	('not an object', format('SELECT actloom.webhook_endpoint_update(%L, %L, ''[]'')', :'acme', :'a3_id')),
	('unknown field', format('SELECT actloom.webhook_endpoint_update(%L, %L, ''{"secret": "x"}'')', :'acme', :'a3_id')),
	('url not a string', format('SELECT actloom.webhook_endpoint_update(%L, %L, ''{"url": 1}'')', :'acme', :'a3_id')),
	('enabled not boolean', format('SELECT actloom.webhook_endpoint_update(%L, %L, ''{"enabled": "no"}'')', :'acme', :'a3_id')),
	('types not strings', format('SELECT actloom.webhook_endpoint_update(%L, %L, ''{"event_types": [1]}'')', :'acme', :'a3_id')),
	('denied url', format('SELECT actloom.webhook_endpoint_update(%L, %L, ''{"url": "https://[::1]/"}'')', :'acme', :'a3_id')),
	('bad type', format('SELECT actloom.webhook_endpoint_update(%L, %L, ''{"event_types": ["A"]}'')', :'acme', :'a3_id')),
	('null changes', format('SELECT actloom.webhook_endpoint_update(%L, %L, NULL)', :'acme', :'a3_id')),
	('unknown endpoint', format('SELECT actloom.webhook_endpoint(%L, %L)', :'acme', gen_random_uuid())),
	('null endpoint', format('SELECT actloom.webhook_endpoint(%L, NULL)', :'acme')),
	('other company', format('SELECT actloom.webhook_endpoints(%L)', :'globex')),
	('send test: unknown', format('SELECT actloom.webhook_send_test(%L, %L)', :'acme', gen_random_uuid())),
	('send test: disabled', format('SELECT actloom.webhook_send_test(%L, %L)', :'acme', :'a2_id')),
	('deliveries: max_rows 0', format('SELECT actloom.webhook_deliveries(%L, %L, NULL, 0)', :'acme', :'a1_id')),
	('deliveries: max_rows 101', format('SELECT actloom.webhook_deliveries(%L, %L, NULL, 101)', :'acme', :'a1_id')),
	('deliveries: bad cursor', format('SELECT actloom.webhook_deliveries(%L, %L, ''x'', 10)', :'acme', :'a1_id')),
	('deliveries: foreign cursor', format('SELECT actloom.webhook_deliveries(%L, %L, %L, 10)', :'acme', :'a1_id', gen_random_uuid())),
	('redeliver: unknown', format('SELECT actloom.webhook_redeliver(%L, %L)', :'acme', gen_random_uuid())),
	('redeliver: disabled endpoint', format('SELECT actloom.webhook_redeliver(%L, %L)', :'acme', :'d6')),
	('redeliver failed: null since', format('SELECT actloom.webhook_redeliver_failed(%L, %L, NULL)', :'acme', :'a1_id')),
	('redeliver failed: disabled', format('SELECT actloom.webhook_redeliver_failed(%L, %L, ''-infinity'')', :'acme', :'a2_id')),
	('delete: unknown', format('SELECT actloom.webhook_endpoint_delete(%L, %L)', :'acme', gen_random_uuid()))
) AS t(label, stmt);

SELECT actloom.webhook_send_test(:'acme', :'a1_id') AS test \gset
SELECT m.event_type, pg_temp.body(m.body) AS body, (SELECT count(*) FROM actloom.webhook_deliveries d WHERE d.message_id = m.id) AS deliveries,
	   (SELECT d.endpoint_id = :'a1_id' FROM actloom.webhook_deliveries d WHERE d.id = (:'test'::jsonb ->> 'delivery_id')::uuid) AS to_a1
  FROM actloom.webhook_messages m WHERE m.id = :'test'::jsonb ->> 'message_id';
-- Deliveries with their attempts, newest first, a page at a time.
SELECT jsonb_array_length(p -> 'deliveries') AS page_1, p ->> 'next' IS NOT NULL AS more, p -> 'next' AS next
  FROM actloom.webhook_deliveries(:'acme', :'a1_id', NULL, 3) p \gset
SELECT :'page_1' AS page_1, :'more' AS more;
SELECT jsonb_array_length(p -> 'deliveries') AS page_2, p -> 'next' AS next
  FROM actloom.webhook_deliveries(:'acme', :'a1_id', :'next'::jsonb #>> '{}', 100) p;
SELECT (SELECT count(*) FROM actloom.webhook_deliveries d WHERE d.endpoint_id = :'a1_id') AS a1_deliveries;
SELECT d - 'id' - 'message_id' - 'created_at' - 'updated_at' - 'endpoint_id' - 'next_attempt_at'
	   || jsonb_build_object('attempts', (SELECT jsonb_agg(a - 'started_at') FROM jsonb_array_elements(d -> 'attempts') a)) AS delivery
  FROM jsonb_array_elements(actloom.webhook_deliveries(:'acme', :'a1_id', NULL, 100) -> 'deliveries') d
 WHERE d ->> 'id' = :'d1';
-- Redelivering: a finished delivery starts over; one still under way is refused.
SELECT (actloom.webhook_redeliver(:'acme', :'d1') - 'id' - 'message_id' - 'created_at' - 'updated_at' - 'endpoint_id'
		- 'next_attempt_at' - 'attempts') AS redelivered;
SELECT pg_temp.err(format('SELECT actloom.webhook_redeliver(%L, %L)', :'acme', :'d1')) AS again;
SELECT actloom.webhook_redeliver_failed(:'acme', :'a3_id', '-infinity') AS redeliver_failed,
	   actloom.webhook_redeliver_failed(:'acme', :'a3_id', 'infinity') AS none_since;
COMMIT;
RESET ROLE;
SELECT state, round_attempts, next_attempt_at <= now() AS due FROM actloom.webhook_deliveries WHERE id = :'d1';
SELECT state, count(*) FROM actloom.webhook_deliveries WHERE endpoint_id = :'a3_id' GROUP BY 1 ORDER BY 1;

-- Another company sees none of it: functions answer P0002 (or 42501 for
-- the company), tables show no rows.
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'globex_owner', :'globex');
SELECT label, pg_temp.err(stmt) AS error FROM (VALUES
	('get', format('SELECT actloom.webhook_endpoint(%L, %L)', :'globex', :'a1_id')),
	('update', format('SELECT actloom.webhook_endpoint_update(%L, %L, ''{"enabled": false}'')', :'globex', :'a1_id')),
	('delete', format('SELECT actloom.webhook_endpoint_delete(%L, %L)', :'globex', :'a1_id')),
	('rotate', format('SELECT actloom.webhook_rotate_secret(%L, %L)', :'globex', :'a1_id')),
	('send test', format('SELECT actloom.webhook_send_test(%L, %L)', :'globex', :'a1_id')),
	('deliveries', format('SELECT actloom.webhook_deliveries(%L, %L, NULL, 10)', :'globex', :'a1_id')),
	('redeliver', format('SELECT actloom.webhook_redeliver(%L, %L)', :'globex', :'d1')),
	('redeliver failed', format('SELECT actloom.webhook_redeliver_failed(%L, %L, ''-infinity'')', :'globex', :'a1_id')),
	('acme''s list', format('SELECT actloom.webhook_endpoints(%L)', :'acme'))
) AS t(label, stmt);
SELECT actloom.webhook_endpoints(:'globex') AS globex_endpoints;
SELECT (SELECT count(*) FROM actloom.webhook_endpoints) AS endpoints, (SELECT count(*) FROM actloom.webhook_messages) AS messages,
	   (SELECT count(*) FROM actloom.webhook_deliveries) AS deliveries, (SELECT count(*) FROM actloom.webhook_attempts) AS attempts;
COMMIT;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT (SELECT count(*) FROM actloom.webhook_endpoints) AS endpoints, (SELECT count(*) > 0 FROM actloom.webhook_deliveries) AS deliveries,
	   (SELECT count(*) > 0 FROM actloom.webhook_attempts) AS attempts;
-- No row moves to another company.
COMMIT;
SELECT (SELECT count(*) FROM actloom.webhook_endpoints) AS without_actor;
RESET ROLE;
SELECT pg_temp.err(format('UPDATE actloom.webhook_endpoints SET company_id = %L WHERE id = %L', :'globex', :'a1_id')) AS move;

-- Privileges: the gateway reads no secret, writes no table, calls no
-- internal function; purging is for actloom_dba.
SET ROLE regress_app;
SELECT label, pg_temp.err(stmt) AS error FROM (VALUES
	('secrets', 'SELECT count(*) FROM actloom.webhook_secrets'),
	('secret fingerprints', 'SELECT fingerprint FROM actloom.webhook_secrets'),
	('insert endpoint', format('INSERT INTO actloom.webhook_endpoints (company_id, url) VALUES (%L, ''https://x.example/'')', :'acme')),
	('update delivery', 'UPDATE actloom.webhook_deliveries SET state = ''pending'''),
	('delete message', 'DELETE FROM actloom.webhook_messages'),
	('sign', format('SELECT actloom._webhook_sign(%L, %L, ''{}'', ''m'', 1, ''b'')', :'acme', :'a1_id')),
	('new secret', format('SELECT actloom._webhook_secret_new(%L, %L)', :'acme', :'a1_id')),
	('emit internally', format('SELECT actloom._webhook_emit(%L, ''member.added'', ''{}'')', :'acme')),
	('disable internally', format('SELECT actloom._webhook_disable(%L, ''x'', ''person'')', :'a1_id')),
	('purge', 'SELECT actloom.webhook_purge()')
) AS t(label, stmt);
RESET ROLE;
SELECT p.oid::regprocedure AS function, has_function_privilege('actloom_gateway', p.oid, 'EXECUTE') AS gateway,
	   has_function_privilege('regress_outsider', p.oid, 'EXECUTE') AS public
  FROM pg_proc p WHERE p.pronamespace = 'actloom'::regnamespace AND p.proname LIKE '%webhook%' ORDER BY 1::text;
SELECT c.relname, has_table_privilege('actloom_gateway', c.oid, 'SELECT') AS gateway_select,
	   has_table_privilege('actloom_gateway', c.oid, 'INSERT, UPDATE, DELETE') AS gateway_write,
	   c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
	   (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
  FROM pg_class c WHERE c.relnamespace = 'actloom'::regnamespace AND c.relname LIKE 'webhook%' AND c.relkind = 'r' ORDER BY 1;
-- Every SECURITY DEFINER function pins search_path.
SELECT s.oid::regprocedure AS unpinned FROM pg_proc s
 WHERE s.pronamespace = 'actloom'::regnamespace AND s.proname LIKE '%webhook%' AND s.prosecdef
   AND NOT coalesce(s.proconfig @> ARRAY['search_path=pg_catalog, actloom, pg_temp'], false);

--------------------------------------------------------------------------
-- Audit and the product's own events
--------------------------------------------------------------------------
SELECT a.action, a.target_type,
	   regexp_replace(a.detail::text, '\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)', '<time>', 'g') AS detail
  FROM actloom.audit_log a WHERE a.chain = :'acme' AND a.action LIKE 'webhook%' ORDER BY a.seq;
SELECT count(*) AS secrets_in_audit FROM actloom.audit_log a
 WHERE a.detail::text ~ 'whsec_' OR a.detail::text LIKE '%' || substring(:'a1_secret' FROM 7 FOR 20) || '%';
SELECT ok, first_bad_seq, reason FROM actloom.audit_verify(:'acme');

SELECT clock_timestamp() AS mark \gset
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.add_member(:'acme', :'newbie', 'member');
SELECT actloom.set_role(:'acme', :'newbie', 'admin');
SELECT actloom.remove_member(:'acme', :'newbie');
SELECT actloom.add_member_by_email(:'acme', 'hook@nowhere.test') IS NOT NULL AS added_by_email;
SELECT actloom.api_key_create(:'acme', 'ci', ARRAY['reports.read']) AS key \gset
SELECT key_id FROM actloom.api_keys(:'acme') WHERE name = 'ci' \gset
SELECT actloom.api_key_revoke(:'key_id');
SELECT actloom.secret_put(:'acme', 'crm.token', 'very-secret-value');
SELECT actloom.secret_put(:'acme', 'crm.token', 'very-secret-value-2');
SELECT actloom.secret_delete(:'acme', 'crm.token');
SELECT actloom.webhook_endpoint_delete(:'acme', :'a4_id');
COMMIT;
RESET ROLE;
SELECT m.event_type, regexp_replace(pg_temp.body(m.body), :'key_id', '<key_id>') AS body,
	   (SELECT count(*) FROM actloom.webhook_deliveries d WHERE d.message_id = m.id) AS deliveries
  FROM actloom.webhook_messages m WHERE m.company_id = :'acme' AND m.created_at > :'mark' ORDER BY m.created_at, m.body;
SELECT count(*) AS secrets_in_bodies FROM actloom.webhook_messages m
 WHERE m.body ~ 'whsec_|very-secret|alk_' OR position(:'key' IN m.body) > 0;

--------------------------------------------------------------------------
-- Purging
--------------------------------------------------------------------------
SELECT pg_temp.err('SELECT actloom.webhook_purge(''-1 day'')') AS negative,
	   pg_temp.err('SELECT actloom.webhook_purge(NULL)') AS null_retention;
SELECT actloom.webhook_purge() AS nothing_old_enough;
UPDATE actloom.webhook_deliveries SET updated_at = now() - interval '31 days';
UPDATE actloom.webhook_messages SET created_at = now() - interval '31 days';
SELECT state, count(*) FROM actloom.webhook_deliveries GROUP BY 1 ORDER BY 1;
SELECT actloom.webhook_purge() AS purged;
SELECT state, count(*) FROM actloom.webhook_deliveries GROUP BY 1 ORDER BY 1;
SELECT count(*) AS messages_left, bool_and(EXISTS (SELECT FROM actloom.webhook_deliveries d WHERE d.message_id = m.id)) AS all_pending
  FROM actloom.webhook_messages m;
SELECT count(*) AS attempts_of_purged FROM actloom.webhook_attempts a
 WHERE NOT EXISTS (SELECT FROM actloom.webhook_deliveries d WHERE d.id = a.delivery_id);
RESET actloom.webhook_retry_schedule;
