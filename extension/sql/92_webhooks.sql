--------------------------------------------------------------------------
-- Outbound webhooks (webhook.c): a transactional outbox
--
-- An event is a row of webhook_messages written in the transaction of the
-- action that caused it, with one row of webhook_deliveries for every
-- enabled endpoint of the company subscribed to its type: both commit or
-- roll back with the action.  Deliverers (shims) claim due deliveries with
-- FOR UPDATE SKIP LOCKED under a lease (webhook_claim), post them, and
-- record each attempt (webhook_record), which schedules the next one.  A
-- deliverer that dies leaves its leases to expire and be claimed again:
-- delivery is at least once, and the message id is the same on every
-- attempt, so receivers deduplicate by it.  Anything that makes a delivery
-- due at once sends a notification on channel actloom_webhooks, at commit.
--
-- Delivery states: pending (next_attempt_at says when it is due),
-- delivering (claimed under a lease until lease_until), delivered, failed
-- (its last scheduled attempt failed, or it can never succeed: a 410, an
-- address no webhook may reach, an endpoint that cannot sign), cancelled
-- (its endpoint was disabled before it was delivered).
--
-- The secrets' table is readable by nobody but the extension's owner; the
-- others are confined to the acting company with row level security, and
-- the gateway may read them (never a secret).  The functions run as the
-- extension's owner, a superuser (CREATE EXTENSION of a C extension needs
-- one), whom row level security does not confine: the deliverer acts for no
-- company and reaches every company's deliveries.
--------------------------------------------------------------------------

CREATE TABLE actloom.webhook_endpoints (
	id				uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	company_id		uuid NOT NULL REFERENCES actloom.companies (id) ON DELETE CASCADE,
	url				text NOT NULL CHECK (pg_catalog.octet_length(url) BETWEEN 1 AND 2048),
	description		text NOT NULL DEFAULT '' CHECK (pg_catalog.length(description) <= 1000),
	event_types		text[] NOT NULL DEFAULT '{}' CHECK (pg_catalog.cardinality(event_types) <= 100),
	enabled			boolean NOT NULL DEFAULT true,
	disabled_at		timestamptz,
	disabled_reason text,
	failing_since	timestamptz,	-- the first failed attempt since the last delivery
	created_by		uuid REFERENCES actloom.users (id) ON DELETE SET NULL,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT webhook_endpoints_disabled CHECK (
		enabled = (disabled_at IS NULL) AND enabled = (disabled_reason IS NULL))
);
CREATE INDEX webhook_endpoints_company_idx ON actloom.webhook_endpoints (company_id, created_at);
COMMENT ON TABLE actloom.webhook_endpoints IS
	'HTTPS endpoints of companies and the event types each is subscribed to (empty: all)';

-- The key of each secret, sealed for the company and bound to the endpoint,
-- and the SHA-256 of the secret as shown, its fingerprint.  The current
-- secret has no expiry; the previous one signs beside it until its expiry.
CREATE TABLE actloom.webhook_secrets (
	endpoint_id		uuid NOT NULL REFERENCES actloom.webhook_endpoints (id) ON DELETE CASCADE,
	company_id		uuid NOT NULL,
	sealed			bytea NOT NULL,
	fingerprint		bytea NOT NULL CHECK (pg_catalog.length(fingerprint) = 32),
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	expires_at		timestamptz,
	PRIMARY KEY (endpoint_id, fingerprint)
);
CREATE UNIQUE INDEX webhook_secrets_current_idx ON actloom.webhook_secrets (endpoint_id)
	WHERE expires_at IS NULL;
COMMENT ON TABLE actloom.webhook_secrets IS
	'signing secrets of webhook endpoints: sealed keys and fingerprints; readable by the extension''s owner only';

CREATE TABLE actloom.webhook_messages (
	id				text COLLATE "C" PRIMARY KEY CHECK (id ~ '^msg_[0-9A-Za-z]{24}$'),
	company_id		uuid NOT NULL REFERENCES actloom.companies (id) ON DELETE CASCADE,
	event_type		text NOT NULL,
	body			text NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX webhook_messages_company_idx ON actloom.webhook_messages (company_id, created_at);
COMMENT ON TABLE actloom.webhook_messages IS
	'webhook events: the body each delivery sends, byte for byte';

CREATE TABLE actloom.webhook_deliveries (
	id				uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	company_id		uuid NOT NULL,
	message_id		text COLLATE "C" NOT NULL REFERENCES actloom.webhook_messages (id) ON DELETE CASCADE,
	endpoint_id		uuid NOT NULL REFERENCES actloom.webhook_endpoints (id) ON DELETE CASCADE,
	state			text NOT NULL DEFAULT 'pending'
					CHECK (state IN ('pending', 'delivering', 'delivered', 'failed', 'cancelled')),
	attempts		integer NOT NULL DEFAULT 0,
	round_attempts	integer NOT NULL DEFAULT 0,	-- attempts since the schedule began (again)
	next_attempt_at timestamptz,
	lease			uuid,
	lease_until		timestamptz,
	claimed_at		timestamptz,
	last_outcome	text,
	last_status		integer,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT webhook_deliveries_due CHECK ((state = 'pending') = (next_attempt_at IS NOT NULL)),
	CONSTRAINT webhook_deliveries_leased CHECK (
		(state = 'delivering') = (lease IS NOT NULL) AND (lease IS NULL) = (lease_until IS NULL))
);
CREATE INDEX webhook_deliveries_due_idx ON actloom.webhook_deliveries (next_attempt_at)
	WHERE state = 'pending';
-- A claim takes each endpoint's oldest due deliveries (webhook_claim).
CREATE INDEX webhook_deliveries_endpoint_due_idx ON actloom.webhook_deliveries (endpoint_id, next_attempt_at)
	WHERE state = 'pending';
CREATE INDEX webhook_deliveries_lease_idx ON actloom.webhook_deliveries (lease_until)
	WHERE state = 'delivering';
CREATE INDEX webhook_deliveries_endpoint_idx ON actloom.webhook_deliveries (endpoint_id, created_at, id);
CREATE INDEX webhook_deliveries_message_idx ON actloom.webhook_deliveries (message_id);
COMMENT ON TABLE actloom.webhook_deliveries IS
	'one message to one endpoint: its state, attempts, next attempt and lease';

CREATE TABLE actloom.webhook_attempts (
	delivery_id		uuid NOT NULL REFERENCES actloom.webhook_deliveries (id) ON DELETE CASCADE,
	attempt			integer NOT NULL,
	company_id		uuid NOT NULL,
	started_at		timestamptz NOT NULL,
	duration_ms		integer NOT NULL CHECK (duration_ms >= 0),
	outcome			text NOT NULL CHECK (outcome IN ('delivered', 'http_status', 'timeout', 'connect', 'dns',
								 'tls', 'refused_address', 'response_too_large', 'error',
								 'secret_unavailable')),
	http_status		integer CHECK (http_status BETWEEN 100 AND 599),
	response		text CHECK (pg_catalog.octet_length(response) <= 4096),
	PRIMARY KEY (delivery_id, attempt)
);
COMMENT ON TABLE actloom.webhook_attempts IS
	'every attempt of a delivery: when, how long, the outcome, the status and the first 4 KiB of the response';

SELECT pg_catalog.pg_extension_config_dump('actloom.webhook_endpoints', '');
SELECT pg_catalog.pg_extension_config_dump('actloom.webhook_secrets', '');
SELECT pg_catalog.pg_extension_config_dump('actloom.webhook_messages', '');
SELECT pg_catalog.pg_extension_config_dump('actloom.webhook_deliveries', '');
SELECT pg_catalog.pg_extension_config_dump('actloom.webhook_attempts', '');

-- Confined as protect_table confines a table: forced row level security
-- keyed on the acting company, and no row moves to another company.
DO $confine$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['webhook_endpoints', 'webhook_secrets', 'webhook_messages',
							 'webhook_deliveries', 'webhook_attempts'] LOOP
		EXECUTE format('ALTER TABLE actloom.%I ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', t);
		EXECUTE format('CREATE POLICY actloom_tenant_select ON actloom.%I FOR SELECT '
					   'USING (company_id = actloom.current_company())', t);
		EXECUTE format('CREATE POLICY actloom_tenant_insert ON actloom.%I FOR INSERT '
					   'WITH CHECK (company_id = actloom.current_company())', t);
		EXECUTE format('CREATE POLICY actloom_tenant_update ON actloom.%I FOR UPDATE '
					   'USING (company_id = actloom.current_company()) '
					   'WITH CHECK (company_id = actloom.current_company())', t);
		EXECUTE format('CREATE POLICY actloom_tenant_delete ON actloom.%I FOR DELETE '
					   'USING (company_id = actloom.current_company())', t);
		EXECUTE format('CREATE POLICY actloom_tenant_guard ON actloom.%I AS RESTRICTIVE FOR ALL '
					   'USING (company_id = actloom.current_company()) '
					   'WITH CHECK (company_id = actloom.current_company())', t);
		EXECUTE format('CREATE TRIGGER actloom_tenant_move BEFORE UPDATE ON actloom.%I '
					   'FOR EACH ROW EXECUTE FUNCTION actloom.refuse_tenant_move(''company_id'')', t);
	END LOOP;
END
$confine$;

REVOKE ALL ON actloom.webhook_endpoints, actloom.webhook_secrets, actloom.webhook_messages,
	actloom.webhook_deliveries, actloom.webhook_attempts FROM PUBLIC;
GRANT SELECT ON actloom.webhook_endpoints, actloom.webhook_messages, actloom.webhook_deliveries,
	actloom.webhook_attempts TO actloom_gateway;

--------------------------------------------------------------------------
-- Internal C functions (webhook.c).  None is granted: the functions below
-- call them as their owner.
--------------------------------------------------------------------------
CREATE FUNCTION actloom._webhook_check_url(url text)
RETURNS void
AS 'MODULE_PATHNAME', 'webhook_check_url'
LANGUAGE C STABLE;
COMMENT ON FUNCTION actloom._webhook_check_url(text) IS
	'internal: raise 22023, with the rule it breaks, for a URL no webhook endpoint may have';

CREATE FUNCTION actloom._webhook_message_id()
RETURNS text
AS 'MODULE_PATHNAME', 'webhook_message_id'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION actloom._webhook_message_id() IS
	'internal: a new message id, "msg_" and 24 random base62 characters';

CREATE FUNCTION actloom._webhook_secret_new(company uuid, endpoint uuid,
											OUT secret text, OUT sealed bytea, OUT fingerprint bytea)
RETURNS record
AS 'MODULE_PATHNAME', 'webhook_secret_new'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom._webhook_secret_new(uuid, uuid) IS
	'internal: a new signing secret, its key sealed for the company and endpoint, and its SHA-256';

CREATE FUNCTION actloom._webhook_sign(company uuid, endpoint uuid, sealed bytea[], msg_id text,
									  ts bigint, body text)
RETURNS text
AS 'MODULE_PATHNAME', 'webhook_sign'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom._webhook_sign(uuid, uuid, bytea[], text, bigint, text) IS
	'internal: the webhook-signature header value under the sealed keys, or NULL when one cannot be opened';

CREATE FUNCTION actloom._webhook_clean_response(response text)
RETURNS text
AS 'MODULE_PATHNAME', 'webhook_clean_response'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION actloom._webhook_clean_response(text) IS
	'internal: a response body without control characters, cut to 4096 bytes';

CREATE FUNCTION actloom._webhook_retry_delay(step integer)
RETURNS double precision
AS 'MODULE_PATHNAME', 'webhook_retry_delay'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION actloom._webhook_retry_delay(integer) IS
	'internal: seconds of the step-th step of actloom.webhook_retry_schedule, or NULL past its last';

-- Receivers and tests check signatures with it; it reads nothing stored.
CREATE FUNCTION actloom.webhook_signature(secret text, msg_id text, ts bigint, body text)
RETURNS text
AS 'MODULE_PATHNAME', 'webhook_signature'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION actloom.webhook_signature(text, text, bigint, text) IS
	'the Standard Webhooks signature "v1,<base64 HMAC-SHA256>" of a message under a secret given as "whsec_..."';

--------------------------------------------------------------------------
-- Event types and subscriptions
--------------------------------------------------------------------------
CREATE FUNCTION actloom._webhook_valid_type(event_type text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN event_type ~ '^[a-z0-9_]+(\.[a-z0-9_]+)*$' AND pg_catalog.length(event_type) <= 100;
COMMENT ON FUNCTION actloom._webhook_valid_type(text) IS
	'internal: whether a text is an event type: 1 to 100 characters of a-z, 0-9 and "_", dot-separated';

-- The events actloom emits itself: nobody else may emit them.
CREATE FUNCTION actloom._webhook_product_type(event_type text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN event_type IN ('member.added', 'member.role_changed', 'member.removed', 'api_key.created',
					  'api_key.revoked', 'secret.stored', 'secret.deleted')
	OR starts_with(event_type, 'webhook.');
COMMENT ON FUNCTION actloom._webhook_product_type(text) IS
	'internal: whether an event type is one of actloom''s own (see the README''s event catalogue)';

-- Empty: every type; else an exact type or "prefix.*" for every type below
-- the prefix.
CREATE FUNCTION actloom._webhook_subscribed(event_types text[], event_type text)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN pg_catalog.cardinality(event_types) = 0
	OR event_type = ANY (event_types)
	OR EXISTS (SELECT FROM pg_catalog.unnest(event_types) AS p
				WHERE pg_catalog.right(p, 2) = '.*'
				  AND pg_catalog.starts_with(event_type, pg_catalog.left(p, -1)));
COMMENT ON FUNCTION actloom._webhook_subscribed(text[], text) IS
	'internal: whether an endpoint subscribed to these event types receives an event of a type';

-- The subscriptions of an endpoint, checked and normalised (sorted, without
-- duplicates); 22023 for anything else.
CREATE FUNCTION actloom._webhook_event_types(event_types text[])
RETURNS text[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	bad text;
	normalized text[];
BEGIN
	IF event_types IS NULL THEN
		RETURN '{}';
	END IF;
	IF array_position(event_types, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'event types must not contain NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT t INTO bad FROM unnest(event_types) AS t
	 WHERE NOT actloom._webhook_valid_type(CASE WHEN right(t, 2) = '.*' THEN left(t, -2) ELSE t END)
	 LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'invalid event type "%"', actloom._quotable(bad)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'An event type is 1 to 100 characters of a-z, 0-9 and "_", dot-separated; "resource.*" subscribes to every type below "resource".';
	END IF;
	SELECT coalesce(array_agg(DISTINCT t ORDER BY t), '{}') INTO normalized FROM unnest(event_types) AS t;
	IF cardinality(normalized) > 100 THEN
		RAISE EXCEPTION 'too many event types' USING ERRCODE = 'invalid_parameter_value',
			DETAIL = 'An endpoint subscribes to at most 100 event types.';
	END IF;
	RETURN normalized;
END
$$;
COMMENT ON FUNCTION actloom._webhook_event_types(text[]) IS
	'internal: checked, sorted and deduplicated subscriptions of an endpoint';

-- The host (and port) of a URL, for event payloads: a URL may carry a
-- token in its path or query, which other endpoints must not learn.
CREATE FUNCTION actloom._webhook_url_host(url text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN substring(url FROM '^[A-Za-z]+://([^/?#]+)');
COMMENT ON FUNCTION actloom._webhook_url_host(text) IS 'internal: the host and port of a webhook URL';

--------------------------------------------------------------------------
-- Emitting
--------------------------------------------------------------------------

-- One statement writes the message and its deliveries; the notification,
-- sent at commit, wakes the deliverers when the first attempt is due now.
-- Internal: webhook_emit() and the extension's own functions call it,
-- after their checks.
-- Marks the transaction: at its commit the deliverers are woken with a
-- notification on channel actloom_webhooks, unless another committing
-- transaction sent one in the last 10 ms (extension/wake.c).
CREATE FUNCTION actloom._webhook_wake()
RETURNS void
AS 'MODULE_PATHNAME', 'webhook_wake'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom._webhook_wake() IS
	'internal: wake the webhook deliverers when this transaction commits';

-- The body of a message as it is sent and signed: Standard Webhooks'
-- envelope, serialised once.
CREATE FUNCTION actloom._webhook_body(event_type text, payload jsonb)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN '{"type":' OPERATOR(pg_catalog.||) pg_catalog.to_json(event_type)::text
	OPERATOR(pg_catalog.||) ',"timestamp":"'
	OPERATOR(pg_catalog.||) pg_catalog.to_char(pg_catalog.timezone('UTC', pg_catalog.now()),
											   'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
	OPERATOR(pg_catalog.||) '","data":' OPERATOR(pg_catalog.||) payload::text OPERATOR(pg_catalog.||) '}';
COMMENT ON FUNCTION actloom._webhook_body(text, jsonb) IS
	'internal: the body of a webhook message, {"type", "timestamp", "data"}, as sent';

-- The worker shard (of shards) that delivers an endpoint's deliveries: the
-- one rule webhook_claim, webhook_next_due and webhook_due_count share.
-- Qualified throughout and without a SET clause, so that it is inlined.
CREATE FUNCTION actloom._webhook_shard_of(endpoint uuid, shards integer)
RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (pg_catalog.hashtext(endpoint::text) OPERATOR(pg_catalog.&) 2147483647) OPERATOR(pg_catalog.%) shards;
COMMENT ON FUNCTION actloom._webhook_shard_of(uuid, integer) IS
	'internal: the deliverer shard of an endpoint, of shards';

CREATE FUNCTION actloom._webhook_emit(company uuid, event_type text, payload jsonb)
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	msg_id constant text := actloom._webhook_message_id();
	first_delay constant double precision := actloom._webhook_retry_delay(1);
	fanned bigint;
BEGIN
	WITH m AS (
		INSERT INTO actloom.webhook_messages (id, company_id, event_type, body)
		VALUES (msg_id, company, event_type, actloom._webhook_body(event_type, payload))
		RETURNING id)
	INSERT INTO actloom.webhook_deliveries (company_id, message_id, endpoint_id, next_attempt_at)
	SELECT company, m.id, e.id,
		   now() + make_interval(secs => first_delay * (0.8 + 0.4 * random()))
	  FROM m, actloom.webhook_endpoints e
	 WHERE e.company_id = _webhook_emit.company AND e.enabled
	   AND actloom._webhook_subscribed(e.event_types, _webhook_emit.event_type);
	GET DIAGNOSTICS fanned = ROW_COUNT;
	IF fanned > 0 AND first_delay = 0 THEN
		PERFORM actloom._webhook_wake();
	END IF;
	RETURN msg_id;
END
$$;
COMMENT ON FUNCTION actloom._webhook_emit(uuid, text, jsonb) IS
	'internal: record an event of a company and one delivery per subscribed enabled endpoint; returns the message id';

CREATE FUNCTION actloom.webhook_emit(event_type text, payload jsonb)
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	company constant uuid := actloom.current_company();
	max_payload constant integer := current_setting('actloom.webhook_max_payload')::integer;
BEGIN
	IF company IS NULL THEN
		RAISE EXCEPTION 'permission denied to emit a webhook event'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'No actor acts in a company in this transaction.',
				  HINT = 'Call actloom.act_as() or actloom.authenticate_api_key() first, in the same transaction.';
	END IF;
	PERFORM actloom._require_arg(event_type, 'event_type');
	PERFORM actloom._require_arg(payload, 'payload');
	IF NOT actloom._webhook_valid_type(event_type) THEN
		RAISE EXCEPTION 'invalid event type "%"', actloom._quotable(event_type)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'An event type is 1 to 100 characters of a-z, 0-9 and "_", dot-separated.';
	END IF;
	IF actloom._webhook_product_type(event_type) THEN
		RAISE EXCEPTION 'event type "%" is reserved', event_type
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'actloom emits the events of its catalogue itself.';
	END IF;
	IF jsonb_typeof(payload) <> 'object' THEN
		RAISE EXCEPTION 'a webhook payload must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF octet_length(payload::text) > max_payload THEN
		RAISE EXCEPTION 'webhook payload is too large'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('A payload has at most %s bytes as sent (actloom.webhook_max_payload).', max_payload);
	END IF;
	RETURN actloom._webhook_emit(company, event_type, payload);
END
$$;
COMMENT ON FUNCTION actloom.webhook_emit(text, jsonb) IS
	'emit an event of the acting company to its subscribed endpoints, in this transaction; returns the message id';

--------------------------------------------------------------------------
-- Delivering (the shim, acting for no company)
--------------------------------------------------------------------------
CREATE FUNCTION actloom._webhook_shard_args(shard integer, shards integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(shard, 'shard');
	PERFORM actloom._require_arg(shards, 'shards');
	IF shards NOT BETWEEN 1 AND 1024 OR shard NOT BETWEEN 0 AND shards - 1 THEN
		RAISE EXCEPTION 'shard must be between 0 and shards - 1, shards between 1 and 1024'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
END
$$;
COMMENT ON FUNCTION actloom._webhook_shard_args(integer, integer) IS
	'internal: raise 22004 or 22023 unless shard and shards name a shard';

CREATE FUNCTION actloom.webhook_claim(shard integer, shards integer, max_rows integer,
									  per_endpoint integer, busy jsonb, lease_seconds integer)
RETURNS TABLE (delivery_id uuid, endpoint_id uuid, url text, message_id text, attempt integer,
			   webhook_timestamp bigint, signature text, body text, lease uuid)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	ts constant bigint := floor(extract(epoch FROM clock_timestamp()))::bigint;
	in_flight constant jsonb := coalesce(busy, '{}');
	unsignable uuid[] := '{}';
	r record;
BEGIN
	PERFORM actloom._webhook_shard_args(shard, shards);
	PERFORM actloom._require_arg(max_rows, 'max_rows');
	PERFORM actloom._require_arg(per_endpoint, 'per_endpoint');
	PERFORM actloom._require_arg(lease_seconds, 'lease_seconds');
	IF max_rows NOT BETWEEN 1 AND 1000 OR per_endpoint NOT BETWEEN 1 AND 1000
	   OR lease_seconds NOT BETWEEN 1 AND 3600 THEN
		RAISE EXCEPTION 'max_rows and per_endpoint must be between 1 and 1000, lease_seconds between 1 and 3600'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF jsonb_typeof(in_flight) <> 'object'
	   OR EXISTS (SELECT FROM jsonb_each(in_flight) b
				   WHERE jsonb_typeof(b.value) <> 'number' OR b.value::text !~ '^[0-9]{1,9}$') THEN
		RAISE EXCEPTION 'busy must be a JSON object of in-flight counts by endpoint id'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;

	-- Chosen without locks: for each enabled endpoint of the shard, its
	-- oldest due deliveries up to the room it has left (an index probe per
	-- endpoint, so that an endpoint with a large backlog, a receiver that
	-- hangs say, costs no more than any other and starves none); of those,
	-- the oldest.  Then locked, skipping what another deliverer holds, and
	-- checked again under the lock.
	FOR r IN
		WITH ep AS (
			SELECT e.id AS endpoint_id,
				   per_endpoint - coalesce((in_flight ->> e.id::text)::integer, 0) AS room
			  FROM actloom.webhook_endpoints e
			 WHERE e.enabled AND actloom._webhook_shard_of(e.id, shards) = shard
		), chosen AS (
			SELECT c.id FROM ep
			 CROSS JOIN LATERAL (
				SELECT u.id, u.due_at FROM (
					(SELECT d.id, d.next_attempt_at AS due_at FROM actloom.webhook_deliveries d
					  WHERE d.endpoint_id = ep.endpoint_id AND d.state = 'pending' AND d.next_attempt_at <= now()
					  ORDER BY d.next_attempt_at LIMIT greatest(ep.room, 0))
					UNION ALL
					(SELECT d.id, d.lease_until FROM actloom.webhook_deliveries d
					  WHERE d.endpoint_id = ep.endpoint_id AND d.state = 'delivering' AND d.lease_until <= now()
					  ORDER BY d.lease_until LIMIT greatest(ep.room, 0))) u
				 ORDER BY u.due_at, u.id LIMIT greatest(ep.room, 0)) c
			 ORDER BY c.due_at, c.id LIMIT max_rows
		), locked AS (
			SELECT d.id FROM actloom.webhook_deliveries d
			 WHERE d.id IN (SELECT chosen.id FROM chosen)
			   AND ((d.state = 'pending' AND d.next_attempt_at <= now())
					OR (d.state = 'delivering' AND d.lease_until <= now()))
			   FOR UPDATE SKIP LOCKED
		)
		UPDATE actloom.webhook_deliveries d
		   SET state = 'delivering', attempts = d.attempts + 1, round_attempts = d.round_attempts + 1,
			   lease = gen_random_uuid(), lease_until = now() + make_interval(secs => lease_seconds),
			   claimed_at = now(), next_attempt_at = NULL, updated_at = now()
		  FROM locked, actloom.webhook_endpoints e, actloom.webhook_messages m
		 WHERE d.id = locked.id AND e.id = d.endpoint_id AND m.id = d.message_id
		RETURNING d.id AS delivery_id, d.endpoint_id, e.url, d.message_id, d.attempts AS attempt,
				  d.lease, d.claimed_at, m.body,
				  actloom._webhook_sign(e.company_id, e.id,
					  ARRAY(SELECT s.sealed FROM actloom.webhook_secrets s
							 WHERE s.endpoint_id = e.id AND (s.expires_at IS NULL OR s.expires_at > now())
							 ORDER BY s.expires_at IS NOT NULL, s.created_at DESC),
					  m.id, ts, m.body) AS signature
	LOOP
		IF r.signature IS NULL THEN
			unsignable := unsignable || r.delivery_id;
			CONTINUE;
		END IF;
		delivery_id := r.delivery_id;
		endpoint_id := r.endpoint_id;
		url := r.url;
		message_id := r.message_id;
		attempt := r.attempt;
		webhook_timestamp := ts;
		signature := r.signature;
		body := r.body;
		lease := r.lease;
		RETURN NEXT;
	END LOOP;

	-- An endpoint that cannot sign never will: its keys were shredded with
	-- its company, or do not open.
	IF cardinality(unsignable) > 0 THEN
		INSERT INTO actloom.webhook_attempts (delivery_id, attempt, company_id, started_at, duration_ms, outcome)
		SELECT d.id, d.attempts, d.company_id, now(), 0, 'secret_unavailable'
		  FROM actloom.webhook_deliveries d WHERE d.id = ANY (unsignable);
		UPDATE actloom.webhook_deliveries d
		   SET state = 'failed', lease = NULL, lease_until = NULL, last_outcome = 'secret_unavailable',
			   last_status = NULL, updated_at = now()
		 WHERE d.id = ANY (unsignable);
	END IF;
END
$$;
COMMENT ON FUNCTION actloom.webhook_claim(integer, integer, integer, integer, jsonb, integer) IS
	'claim due deliveries of a shard under a fresh lease, with their signed bodies; deliveries that cannot be signed fail for good; gateway only';

-- Disable an endpoint and cancel its pending deliveries, audited in the
-- company's chain and announced to its other endpoints; how: person, gone
-- or automatic.  The caller holds the endpoint's row lock.
CREATE FUNCTION actloom._webhook_disable(endpoint uuid, reason text, how text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	e actloom.webhook_endpoints;
	cancelled bigint;
BEGIN
	UPDATE actloom.webhook_endpoints w
	   SET enabled = false, disabled_at = now(), disabled_reason = reason, updated_at = now()
	 WHERE w.id = endpoint AND w.enabled
	RETURNING * INTO e;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	UPDATE actloom.webhook_deliveries d
	   SET state = 'cancelled', next_attempt_at = NULL, updated_at = now()
	 WHERE d.endpoint_id = endpoint AND d.state = 'pending';
	GET DIAGNOSTICS cancelled = ROW_COUNT;
	PERFORM actloom._audit_to(e.company_id, 'webhook_endpoint.disable', 'webhook_endpoint', e.id::text,
							  jsonb_build_object('by', how, 'reason', reason, 'cancelled', cancelled));
	PERFORM actloom._webhook_emit(e.company_id, 'webhook.endpoint_disabled',
								  jsonb_build_object('endpoint_id', e.id, 'host', actloom._webhook_url_host(e.url),
													 'by', how, 'reason', reason));
END
$$;
COMMENT ON FUNCTION actloom._webhook_disable(uuid, text, text) IS
	'internal: disable an endpoint, cancel its pending deliveries, audit and announce it';

CREATE FUNCTION actloom.webhook_record(delivery_id uuid, lease uuid, outcome text, http_status integer,
									   duration_ms integer, response text, retry_after_s integer)
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	d actloom.webhook_deliveries;
	e actloom.webhook_endpoints;
	step double precision;
	delay double precision;
	new_state text;
	due timestamptz;
BEGIN
	PERFORM actloom._require_arg(delivery_id, 'delivery_id');
	PERFORM actloom._require_arg(lease, 'lease');
	PERFORM actloom._require_arg(outcome, 'outcome');
	PERFORM actloom._require_arg(duration_ms, 'duration_ms');
	IF outcome NOT IN ('delivered', 'http_status', 'timeout', 'connect', 'dns', 'tls', 'refused_address',
					   'response_too_large', 'error') THEN
		RAISE EXCEPTION 'unknown delivery outcome "%"', actloom._quotable(outcome)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The outcomes are delivered, http_status, timeout, connect, dns, tls, refused_address, response_too_large and error.';
	END IF;
	IF http_status NOT BETWEEN 100 AND 599
	   OR (outcome = 'delivered') IS DISTINCT FROM (coalesce(http_status BETWEEN 200 AND 299, false) AND outcome IN ('delivered', 'http_status'))
	   OR (outcome = 'http_status' AND http_status IS NULL) THEN
		RAISE EXCEPTION 'outcome "%" does not go with HTTP status %', outcome, coalesce(http_status::text, 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A 2xx answer is outcome delivered, and delivered is a 2xx; http_status needs the status.';
	END IF;
	IF duration_ms < 0 OR retry_after_s < 0 THEN
		RAISE EXCEPTION 'duration_ms and retry_after_s must not be negative' USING ERRCODE = 'invalid_parameter_value';
	END IF;

	SELECT * INTO d FROM actloom.webhook_deliveries w WHERE w.id = webhook_record.delivery_id FOR UPDATE;
	IF NOT FOUND OR d.state <> 'delivering' OR d.lease <> webhook_record.lease THEN
		RETURN 'stale';
	END IF;
	-- One attempt at a time moves the endpoint's failure clock.
	SELECT * INTO e FROM actloom.webhook_endpoints w WHERE w.id = d.endpoint_id FOR UPDATE;

	INSERT INTO actloom.webhook_attempts (delivery_id, attempt, company_id, started_at, duration_ms,
										  outcome, http_status, response)
	VALUES (d.id, d.attempts, d.company_id, d.claimed_at, webhook_record.duration_ms,
			webhook_record.outcome, webhook_record.http_status,
			actloom._webhook_clean_response(webhook_record.response));

	IF outcome = 'delivered' THEN
		new_state := 'delivered';
		IF e.failing_since IS NOT NULL THEN
			UPDATE actloom.webhook_endpoints w SET failing_since = NULL WHERE w.id = e.id;
		END IF;
	ELSIF http_status = 410 OR outcome = 'refused_address' THEN
		new_state := 'failed';
	ELSIF NOT e.enabled THEN
		new_state := 'cancelled';
	ELSE
		IF e.failing_since IS NULL THEN
			UPDATE actloom.webhook_endpoints w SET failing_since = now() WHERE w.id = e.id;
			e.failing_since := now();
		END IF;
		step := actloom._webhook_retry_delay(d.round_attempts + 1);
		IF e.failing_since <= now() - current_setting('actloom.webhook_disable_after')::interval THEN
			new_state := 'cancelled';
		ELSIF step IS NULL THEN
			new_state := 'failed';
		ELSE
			new_state := 'pending';
			delay := CASE WHEN retry_after_s IS NULL THEN step * (0.8 + 0.4 * random())
						  ELSE least(greatest(retry_after_s, step), 2 * step) END;
			due := now() + make_interval(secs => delay);
		END IF;
	END IF;

	UPDATE actloom.webhook_deliveries w
	   SET state = new_state, next_attempt_at = due, lease = NULL, lease_until = NULL,
		   last_outcome = webhook_record.outcome, last_status = webhook_record.http_status, updated_at = now()
	 WHERE w.id = d.id;

	IF http_status = 410 THEN
		PERFORM actloom._webhook_disable(e.id, 'gone: the receiver answered 410', 'gone');
	ELSIF new_state = 'cancelled' AND e.enabled THEN
		PERFORM actloom._webhook_disable(e.id,
			format('automatic: every attempt failed since %s',
				   to_char(e.failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
			'automatic');
	END IF;
	IF new_state = 'pending' AND due <= now() THEN
		PERFORM actloom._webhook_wake();
	END IF;
	RETURN new_state;
END
$$;
COMMENT ON FUNCTION actloom.webhook_record(uuid, uuid, text, integer, integer, text, integer) IS
	'record an attempt of a claimed delivery and move it on; returns its new state, or stale when the lease is not the current one; gateway only';

-- webhook_record for many attempts in one transaction: a deliverer reports
-- what finished since its last report at once, one commit for all.  The
-- calls run after the sort (PostgreSQL evaluates a volatile output column
-- above the Sort node).
CREATE FUNCTION actloom.webhook_record_all(attempts jsonb)
RETURNS TABLE (delivery_id uuid, state text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(attempts, 'attempts');
	IF jsonb_typeof(attempts) <> 'array' OR jsonb_array_length(attempts) NOT BETWEEN 1 AND 1000
	   OR EXISTS (SELECT FROM jsonb_array_elements(attempts) a WHERE jsonb_typeof(a) <> 'object') THEN
		RAISE EXCEPTION 'attempts must be a JSON array of 1 to 1000 objects'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Each object has delivery_id, lease, outcome, http_status, duration_ms, response and retry_after_s, as webhook_record takes them.';
	END IF;
	RETURN QUERY
		SELECT (a ->> 'delivery_id')::uuid,
			   actloom.webhook_record((a ->> 'delivery_id')::uuid, (a ->> 'lease')::uuid, a ->> 'outcome',
									  (a ->> 'http_status')::integer, (a ->> 'duration_ms')::integer,
									  a ->> 'response', (a ->> 'retry_after_s')::integer)
		  FROM jsonb_array_elements(attempts) AS t(a)
		  LEFT JOIN actloom.webhook_deliveries d ON d.id = (t.a ->> 'delivery_id')::uuid
		 -- One order for every deliverer, so that two batches touching the
		 -- same endpoints lock them in the same order and never deadlock.
		 ORDER BY d.endpoint_id, d.id;
END
$$;
COMMENT ON FUNCTION actloom.webhook_record_all(jsonb) IS
	'webhook_record for an array of attempts, in one transaction; returns each delivery''s new state; gateway only';

CREATE FUNCTION actloom.webhook_next_due(shard integer, shards integer)
RETURNS double precision
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	at timestamptz;
BEGIN
	PERFORM actloom._webhook_shard_args(shard, shards);
	SELECT min(t) INTO at FROM (
		(SELECT d.next_attempt_at AS t FROM actloom.webhook_deliveries d
		   JOIN actloom.webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled
		  WHERE d.state = 'pending' AND actloom._webhook_shard_of(d.endpoint_id, shards) = shard
		  ORDER BY d.next_attempt_at LIMIT 1)
		UNION ALL
		(SELECT d.lease_until FROM actloom.webhook_deliveries d
		   JOIN actloom.webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled
		  WHERE d.state = 'delivering' AND actloom._webhook_shard_of(d.endpoint_id, shards) = shard
		  ORDER BY d.lease_until LIMIT 1)) due;
	RETURN greatest(extract(epoch FROM at - now())::double precision, 0);
END
$$;
COMMENT ON FUNCTION actloom.webhook_next_due(integer, integer) IS
	'seconds until the next delivery of a shard becomes claimable, 0 when one is now, NULL when none is waiting; gateway only';

-- For the deliverer's gauge of work waiting (actloom_webhook_due).
CREATE FUNCTION actloom.webhook_due_count(shard integer, shards integer)
RETURNS bigint
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._webhook_shard_args(shard, shards);
	RETURN (SELECT count(*) FROM actloom.webhook_deliveries d
			  JOIN actloom.webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled
			 WHERE ((d.state = 'pending' AND d.next_attempt_at <= now())
					OR (d.state = 'delivering' AND d.lease_until <= now()))
			   AND actloom._webhook_shard_of(d.endpoint_id, shards) = shard);
END
$$;
COMMENT ON FUNCTION actloom.webhook_due_count(integer, integer) IS
	'deliveries of a shard that are due and not held under a lease; gateway only';

--------------------------------------------------------------------------
-- Managing endpoints (permission webhooks.manage)
--------------------------------------------------------------------------

-- An endpoint as the management functions show it: its secrets by
-- fingerprint (the first 8 bytes of the SHA-256 of each, in hex), never
-- the secrets.
CREATE FUNCTION actloom._webhook_endpoint_json(e actloom.webhook_endpoints)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, actloom, pg_temp
RETURN jsonb_build_object(
	'id', e.id, 'url', e.url, 'description', e.description, 'event_types', to_jsonb(e.event_types),
	'enabled', e.enabled, 'disabled_at', e.disabled_at, 'disabled_reason', e.disabled_reason,
	'failing_since', e.failing_since, 'created_by', e.created_by, 'created_at', e.created_at,
	'updated_at', e.updated_at,
	'secrets', (SELECT coalesce(jsonb_agg(jsonb_build_object(
						'fingerprint', encode(substring(s.fingerprint FROM 1 FOR 8), 'hex'),
						'created_at', s.created_at, 'expires_at', s.expires_at)
						ORDER BY s.expires_at IS NOT NULL, s.created_at DESC), '[]')
				  FROM actloom.webhook_secrets s
				 WHERE s.endpoint_id = e.id AND (s.expires_at IS NULL OR s.expires_at > now())));
COMMENT ON FUNCTION actloom._webhook_endpoint_json(actloom.webhook_endpoints) IS
	'internal: an endpoint as JSON, with the fingerprints of its live secrets';

-- The endpoint of the company, locked; P0002 for one of another company,
-- as for one that does not exist.
CREATE FUNCTION actloom._webhook_endpoint_get(company uuid, endpoint uuid)
RETURNS actloom.webhook_endpoints
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	e actloom.webhook_endpoints;
BEGIN
	PERFORM actloom._require_arg(endpoint, 'endpoint');
	SELECT * INTO e FROM actloom.webhook_endpoints w
	 WHERE w.id = endpoint AND w.company_id = company FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'webhook endpoint % does not exist', endpoint USING ERRCODE = 'no_data_found';
	END IF;
	RETURN e;
END
$$;
COMMENT ON FUNCTION actloom._webhook_endpoint_get(uuid, uuid) IS
	'internal: an endpoint of the company, locked, or P0002';

CREATE FUNCTION actloom._webhook_check_description(description text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	IF length(coalesce(description, '')) > 1000 OR description ~ '[[:cntrl:]]' THEN
		RAISE EXCEPTION 'invalid endpoint description'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A description has at most 1000 characters and no control characters.';
	END IF;
	RETURN coalesce(btrim(description), '');
END
$$;
COMMENT ON FUNCTION actloom._webhook_check_description(text) IS
	'internal: a checked endpoint description (NULL: empty)';

CREATE FUNCTION actloom.webhook_endpoint_create(company uuid, url text, description text,
												event_types text[])
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	types text[];
	descr text;
	e actloom.webhook_endpoints;
	s record;
	limit_n constant integer := current_setting('actloom.webhook_max_endpoints')::integer;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'webhooks.manage');
	PERFORM actloom._webhook_check_url(url);
	descr := actloom._webhook_check_description(description);
	types := actloom._webhook_event_types(event_types);
	-- Creations of one company run one at a time, so that the count holds.
	PERFORM 1 FROM actloom.companies c WHERE c.id = company FOR NO KEY UPDATE;
	IF (SELECT count(*) FROM actloom.webhook_endpoints w WHERE w.company_id = company) >= limit_n THEN
		RAISE EXCEPTION 'the company has % webhook endpoints, the most it may have', limit_n
			USING ERRCODE = 'program_limit_exceeded',
				  HINT = 'Delete an endpoint first, or ask the operator to raise actloom.webhook_max_endpoints.';
	END IF;
	INSERT INTO actloom.webhook_endpoints (company_id, url, description, event_types, created_by)
	VALUES (company, url, descr, types, actloom.current_user_id())
	RETURNING * INTO e;
	s := actloom._webhook_secret_new(company, e.id);
	INSERT INTO actloom.webhook_secrets (endpoint_id, company_id, sealed, fingerprint)
	VALUES (e.id, company, s.sealed, s.fingerprint);
	PERFORM actloom._audit_to(company, 'webhook_endpoint.create', 'webhook_endpoint', e.id::text,
							  jsonb_build_object('url', e.url, 'description', e.description,
												 'event_types', e.event_types));
	PERFORM actloom._webhook_emit(company, 'webhook.endpoint_created',
								  jsonb_build_object('endpoint_id', e.id, 'host', actloom._webhook_url_host(e.url),
													 'event_types', e.event_types));
	RETURN actloom._webhook_endpoint_json(e)
		|| jsonb_build_object('secret', s.secret,
							  'fingerprint', encode(substring(s.fingerprint FROM 1 FOR 8), 'hex'));
END
$$;
COMMENT ON FUNCTION actloom.webhook_endpoint_create(uuid, text, text, text[]) IS
	'register a webhook endpoint of the company (permission webhooks.manage); its signing secret is returned once';

CREATE FUNCTION actloom.webhook_endpoints(company uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'webhooks.manage');
	RETURN (SELECT coalesce(jsonb_agg(actloom._webhook_endpoint_json(e) ORDER BY e.created_at, e.id), '[]')
			  FROM actloom.webhook_endpoints e WHERE e.company_id = webhook_endpoints.company);
END
$$;
COMMENT ON FUNCTION actloom.webhook_endpoints(uuid) IS
	'the company''s webhook endpoints, oldest first, with secret fingerprints (permission webhooks.manage)';

CREATE FUNCTION actloom.webhook_endpoint(company uuid, endpoint uuid)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	e actloom.webhook_endpoints;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'webhooks.manage');
	PERFORM actloom._require_arg(endpoint, 'endpoint');
	SELECT * INTO e FROM actloom.webhook_endpoints w
	 WHERE w.id = endpoint AND w.company_id = webhook_endpoint.company;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'webhook endpoint % does not exist', endpoint USING ERRCODE = 'no_data_found';
	END IF;
	RETURN actloom._webhook_endpoint_json(e);
END
$$;
COMMENT ON FUNCTION actloom.webhook_endpoint(uuid, uuid) IS
	'one webhook endpoint of the company (permission webhooks.manage)';

CREATE FUNCTION actloom.webhook_endpoint_update(company uuid, endpoint uuid, changes jsonb)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	e actloom.webhook_endpoints;
	bad text;
	new_url text;
	new_description text;
	new_types text[];
	changed text[];
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'webhooks.manage');
	PERFORM actloom._require_arg(changes, 'changes');
	IF jsonb_typeof(changes) <> 'object' OR changes = '{}' THEN
		RAISE EXCEPTION 'changes must be a JSON object naming what changes'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'It has one or more of "url", "description", "event_types" and "enabled".';
	END IF;
	SELECT k INTO bad FROM jsonb_object_keys(changes) k
	 WHERE k NOT IN ('url', 'description', 'event_types', 'enabled') LIMIT 1;
	IF FOUND THEN
		RAISE EXCEPTION 'unknown endpoint field "%"', actloom._quotable(bad)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The fields are "url", "description", "event_types" and "enabled".';
	END IF;
	SELECT k INTO bad FROM (VALUES ('url', 'string'), ('description', 'string'), ('event_types', 'array'),
								   ('enabled', 'boolean')) AS f(k, t)
	 WHERE changes ? f.k AND jsonb_typeof(changes -> f.k) <> f.t LIMIT 1;
	IF FOUND OR (changes ? 'event_types' AND EXISTS (
			SELECT FROM jsonb_array_elements(changes -> 'event_types') v WHERE jsonb_typeof(v) <> 'string')) THEN
		RAISE EXCEPTION 'endpoint field "%" has the wrong type', coalesce(bad, 'event_types')
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = '"url" and "description" are strings, "event_types" an array of strings, "enabled" true or false.';
	END IF;
	e := actloom._webhook_endpoint_get(company, endpoint);

	new_url := coalesce(changes ->> 'url', e.url);
	IF changes ? 'url' THEN
		PERFORM actloom._webhook_check_url(new_url);
	END IF;
	new_description := CASE WHEN changes ? 'description'
							THEN actloom._webhook_check_description(changes ->> 'description')
							ELSE e.description END;
	new_types := CASE WHEN changes ? 'event_types'
					  THEN actloom._webhook_event_types(ARRAY(SELECT jsonb_array_elements_text(changes -> 'event_types')))
					  ELSE e.event_types END;
	changed := ARRAY(SELECT f FROM (VALUES ('url', new_url IS DISTINCT FROM e.url),
										   ('description', new_description IS DISTINCT FROM e.description),
										   ('event_types', new_types IS DISTINCT FROM e.event_types)) AS c(f, differs)
					  WHERE differs);
	IF cardinality(changed) > 0 THEN
		UPDATE actloom.webhook_endpoints w
		   SET url = new_url, description = new_description, event_types = new_types, updated_at = now()
		 WHERE w.id = e.id
		RETURNING * INTO e;
		PERFORM actloom._audit_to(company, 'webhook_endpoint.update', 'webhook_endpoint', e.id::text,
								  jsonb_build_object('changed', changed, 'url', e.url,
													 'description', e.description, 'event_types', e.event_types));
		PERFORM actloom._webhook_emit(company, 'webhook.endpoint_updated',
									  jsonb_build_object('endpoint_id', e.id, 'host', actloom._webhook_url_host(e.url),
														 'event_types', e.event_types, 'changed', changed));
	END IF;

	IF (changes -> 'enabled') = 'false' AND e.enabled THEN
		PERFORM actloom._webhook_disable(e.id,
			CASE WHEN actloom.current_user_id() IS NOT NULL THEN 'disabled by a person'
				 ELSE 'disabled by an API key' END, 'person');
	ELSIF (changes -> 'enabled') = 'true' AND NOT e.enabled THEN
		UPDATE actloom.webhook_endpoints w
		   SET enabled = true, disabled_at = NULL, disabled_reason = NULL, failing_since = NULL,
			   updated_at = now()
		 WHERE w.id = e.id;
		PERFORM actloom._audit_to(company, 'webhook_endpoint.enable', 'webhook_endpoint', e.id::text,
								  jsonb_build_object('was_disabled_because', e.disabled_reason));
	END IF;
	SELECT * INTO e FROM actloom.webhook_endpoints w WHERE w.id = e.id;
	RETURN actloom._webhook_endpoint_json(e);
END
$$;
COMMENT ON FUNCTION actloom.webhook_endpoint_update(uuid, uuid, jsonb) IS
	'change an endpoint''s url, description, event types or enabled state (permission webhooks.manage)';

CREATE FUNCTION actloom.webhook_endpoint_delete(company uuid, endpoint uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	e actloom.webhook_endpoints;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'webhooks.manage');
	e := actloom._webhook_endpoint_get(company, endpoint);
	DELETE FROM actloom.webhook_endpoints w WHERE w.id = e.id;
	PERFORM actloom._audit_to(company, 'webhook_endpoint.delete', 'webhook_endpoint', e.id::text,
							  jsonb_build_object('url', e.url));
	PERFORM actloom._webhook_emit(company, 'webhook.endpoint_deleted',
								  jsonb_build_object('endpoint_id', e.id, 'host', actloom._webhook_url_host(e.url)));
END
$$;
COMMENT ON FUNCTION actloom.webhook_endpoint_delete(uuid, uuid) IS
	'delete an endpoint with its secrets, deliveries and attempts (permission webhooks.manage)';

CREATE FUNCTION actloom.webhook_rotate_secret(company uuid, endpoint uuid,
											  grace interval DEFAULT '24 hours')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	e actloom.webhook_endpoints;
	s record;
	previous_until timestamptz;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'webhooks.manage');
	PERFORM actloom._require_arg(grace, 'grace');
	IF grace < interval '0' OR grace > interval '7 days' THEN
		RAISE EXCEPTION 'grace must be between 0 and 7 days' USING ERRCODE = 'invalid_parameter_value',
			DETAIL = 'The previous secret keeps signing beside the new one for the grace period.';
	END IF;
	e := actloom._webhook_endpoint_get(company, endpoint);
	-- One previous secret at most: the one being replaced.
	DELETE FROM actloom.webhook_secrets w WHERE w.endpoint_id = e.id AND w.expires_at IS NOT NULL;
	IF grace = interval '0' THEN
		DELETE FROM actloom.webhook_secrets w WHERE w.endpoint_id = e.id;
	ELSE
		previous_until := now() + grace;
		UPDATE actloom.webhook_secrets w SET expires_at = previous_until WHERE w.endpoint_id = e.id;
	END IF;
	s := actloom._webhook_secret_new(company, e.id);
	INSERT INTO actloom.webhook_secrets (endpoint_id, company_id, sealed, fingerprint)
	VALUES (e.id, company, s.sealed, s.fingerprint);
	PERFORM actloom._audit_to(company, 'webhook_endpoint.rotate_secret', 'webhook_endpoint', e.id::text,
							  jsonb_build_object('previous_expires_at', previous_until));
	PERFORM actloom._webhook_emit(company, 'webhook.secret_rotated',
								  jsonb_build_object('endpoint_id', e.id, 'previous_expires_at', previous_until));
	RETURN actloom._webhook_endpoint_json(e)
		|| jsonb_build_object('secret', s.secret,
							  'fingerprint', encode(substring(s.fingerprint FROM 1 FOR 8), 'hex'));
END
$$;
COMMENT ON FUNCTION actloom.webhook_rotate_secret(uuid, uuid, interval) IS
	'give an endpoint a new signing secret, returned once; the previous one signs beside it for the grace period (at most 7 days) (permission webhooks.manage)';

CREATE FUNCTION actloom.webhook_send_test(company uuid, endpoint uuid)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	e actloom.webhook_endpoints;
	msg_id constant text := actloom._webhook_message_id();
	first_delay constant double precision := actloom._webhook_retry_delay(1);
	delivery uuid;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'webhooks.manage');
	e := actloom._webhook_endpoint_get(company, endpoint);
	IF NOT e.enabled THEN
		RAISE EXCEPTION 'webhook endpoint % is disabled', e.id USING ERRCODE = 'object_not_in_prerequisite_state',
			HINT = 'Enable it first.';
	END IF;
	INSERT INTO actloom.webhook_messages (id, company_id, event_type, body)
	VALUES (msg_id, company, 'webhook.test',
			actloom._webhook_body('webhook.test', jsonb_build_object('endpoint_id', e.id)));
	INSERT INTO actloom.webhook_deliveries (company_id, message_id, endpoint_id, next_attempt_at)
	VALUES (company, msg_id, e.id, now() + make_interval(secs => first_delay))
	RETURNING id INTO delivery;
	IF first_delay = 0 THEN
		PERFORM actloom._webhook_wake();
	END IF;
	RETURN jsonb_build_object('message_id', msg_id, 'delivery_id', delivery);
END
$$;
COMMENT ON FUNCTION actloom.webhook_send_test(uuid, uuid) IS
	'send event webhook.test to one endpoint (permission webhooks.manage); returns the message and delivery ids';

CREATE FUNCTION actloom._webhook_delivery_json(d actloom.webhook_deliveries)
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, actloom, pg_temp
RETURN jsonb_build_object(
	'id', d.id, 'endpoint_id', d.endpoint_id, 'message_id', d.message_id,
	'event_type', (SELECT m.event_type FROM actloom.webhook_messages m WHERE m.id = d.message_id),
	'state', d.state, 'next_attempt_at', d.next_attempt_at, 'last_outcome', d.last_outcome,
	'last_status', d.last_status, 'created_at', d.created_at, 'updated_at', d.updated_at,
	'attempts', (SELECT coalesce(jsonb_agg(jsonb_build_object(
						'attempt', a.attempt, 'started_at', a.started_at, 'duration_ms', a.duration_ms,
						'outcome', a.outcome, 'http_status', a.http_status, 'response', a.response)
						ORDER BY a.attempt), '[]')
				   FROM actloom.webhook_attempts a WHERE a.delivery_id = d.id));
COMMENT ON FUNCTION actloom._webhook_delivery_json(actloom.webhook_deliveries) IS
	'internal: a delivery as JSON, with its attempts';

CREATE FUNCTION actloom.webhook_deliveries(company uuid, endpoint uuid, after text, max_rows integer)
RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	cursor_row actloom.webhook_deliveries;
	page jsonb;
	last_id uuid;
	more boolean;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'webhooks.manage');
	PERFORM actloom._require_arg(endpoint, 'endpoint');
	PERFORM actloom._require_arg(max_rows, 'max_rows');
	IF max_rows NOT BETWEEN 1 AND 100 THEN
		RAISE EXCEPTION 'max_rows must be between 1 and 100' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF NOT EXISTS (SELECT FROM actloom.webhook_endpoints w
					WHERE w.id = endpoint AND w.company_id = webhook_deliveries.company) THEN
		RAISE EXCEPTION 'webhook endpoint % does not exist', endpoint USING ERRCODE = 'no_data_found';
	END IF;
	-- The cursor is the id of the last delivery of the previous page.
	IF after IS NOT NULL THEN
		IF after !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
			RAISE EXCEPTION 'invalid cursor' USING ERRCODE = 'invalid_parameter_value',
				DETAIL = 'A cursor is the "next" value of the page before.';
		END IF;
		SELECT * INTO cursor_row FROM actloom.webhook_deliveries d
		 WHERE d.id = after::uuid AND d.endpoint_id = endpoint;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'invalid cursor' USING ERRCODE = 'invalid_parameter_value',
				DETAIL = 'A cursor is the "next" value of the page before.';
		END IF;
	END IF;
	-- Newest first; one row more than the page tells whether another follows.
	SELECT coalesce(jsonb_agg(actloom._webhook_delivery_json(p.del) ORDER BY p.n)
						FILTER (WHERE p.n <= max_rows), '[]'),
		   (array_agg((p.del).id) FILTER (WHERE p.n = max_rows))[1],
		   count(*) > max_rows
	  INTO page, last_id, more
	  FROM (SELECT d AS del, row_number() OVER (ORDER BY d.created_at DESC, d.id DESC) AS n
			  FROM actloom.webhook_deliveries d
			 WHERE d.endpoint_id = endpoint
			   AND (after IS NULL OR (d.created_at, d.id) < (cursor_row.created_at, cursor_row.id))
			 ORDER BY d.created_at DESC, d.id DESC LIMIT max_rows + 1) p;
	RETURN jsonb_build_object('deliveries', page, 'next', CASE WHEN more THEN last_id END);
END
$$;
COMMENT ON FUNCTION actloom.webhook_deliveries(uuid, uuid, text, integer) IS
	'an endpoint''s deliveries with their attempts, newest first, a page at a time (permission webhooks.manage)';

-- Deliver a finished delivery again, from the start of the schedule.
CREATE FUNCTION actloom.webhook_redeliver(company uuid, delivery uuid)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	d actloom.webhook_deliveries;
	e actloom.webhook_endpoints;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'webhooks.manage');
	PERFORM actloom._require_arg(delivery, 'delivery');
	SELECT * INTO d FROM actloom.webhook_deliveries w
	 WHERE w.id = delivery AND w.company_id = company FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'webhook delivery % does not exist', delivery USING ERRCODE = 'no_data_found';
	END IF;
	e := actloom._webhook_endpoint_get(company, d.endpoint_id);
	IF NOT e.enabled THEN
		RAISE EXCEPTION 'webhook endpoint % is disabled', e.id USING ERRCODE = 'object_not_in_prerequisite_state',
			HINT = 'Enable it first.';
	END IF;
	IF d.state IN ('pending', 'delivering') THEN
		RAISE EXCEPTION 'webhook delivery % is not finished', d.id USING ERRCODE = 'object_not_in_prerequisite_state',
			DETAIL = format('It is %s.', d.state);
	END IF;
	UPDATE actloom.webhook_deliveries w
	   SET state = 'pending', next_attempt_at = now(), round_attempts = 0, updated_at = now()
	 WHERE w.id = d.id
	RETURNING * INTO d;
	PERFORM actloom._webhook_wake();
	RETURN actloom._webhook_delivery_json(d);
END
$$;
COMMENT ON FUNCTION actloom.webhook_redeliver(uuid, uuid) IS
	'deliver a delivered, failed or cancelled delivery again, now (permission webhooks.manage)';

CREATE FUNCTION actloom.webhook_redeliver_failed(company uuid, endpoint uuid, since timestamptz)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	e actloom.webhook_endpoints;
	n bigint;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'webhooks.manage');
	PERFORM actloom._require_arg(since, 'since');
	e := actloom._webhook_endpoint_get(company, endpoint);
	IF NOT e.enabled THEN
		RAISE EXCEPTION 'webhook endpoint % is disabled', e.id USING ERRCODE = 'object_not_in_prerequisite_state',
			HINT = 'Enable it first.';
	END IF;
	UPDATE actloom.webhook_deliveries w
	   SET state = 'pending', next_attempt_at = now(), round_attempts = 0, updated_at = now()
	 WHERE w.endpoint_id = e.id AND w.state IN ('failed', 'cancelled') AND w.created_at >= since;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n > 0 THEN
		PERFORM actloom._webhook_wake();
	END IF;
	RETURN jsonb_build_object('redelivered', n);
END
$$;
COMMENT ON FUNCTION actloom.webhook_redeliver_failed(uuid, uuid, timestamptz) IS
	'deliver again every failed or cancelled delivery of an endpoint made since a time (permission webhooks.manage)';

--------------------------------------------------------------------------
-- Retention (actloom_dba)
--------------------------------------------------------------------------
CREATE FUNCTION actloom.webhook_purge(retention interval DEFAULT '30 days')
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	PERFORM actloom._require_arg(retention, 'retention');
	IF retention < interval '0' THEN
		RAISE EXCEPTION 'retention must not be negative' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	DELETE FROM actloom.webhook_deliveries d
	 WHERE d.state IN ('delivered', 'failed', 'cancelled') AND d.updated_at < now() - retention;
	GET DIAGNOSTICS n = ROW_COUNT;
	DELETE FROM actloom.webhook_messages m
	 WHERE m.created_at < now() - retention
	   AND NOT EXISTS (SELECT FROM actloom.webhook_deliveries d WHERE d.message_id = m.id);
	DELETE FROM actloom.webhook_secrets s WHERE s.expires_at <= now();
	RETURN n;
END
$$;
COMMENT ON FUNCTION actloom.webhook_purge(interval) IS
	'delete finished deliveries (with their attempts) older than the retention, messages left without one, and expired secrets; returns the deliveries deleted';

GRANT EXECUTE ON FUNCTION
	actloom.webhook_emit(text, jsonb),
	actloom.webhook_claim(integer, integer, integer, integer, jsonb, integer),
	actloom.webhook_record(uuid, uuid, text, integer, integer, text, integer),
	actloom.webhook_record_all(jsonb),
	actloom.webhook_next_due(integer, integer),
	actloom.webhook_due_count(integer, integer),
	actloom.webhook_endpoint_create(uuid, text, text, text[]),
	actloom.webhook_endpoints(uuid),
	actloom.webhook_endpoint(uuid, uuid),
	actloom.webhook_endpoint_update(uuid, uuid, jsonb),
	actloom.webhook_endpoint_delete(uuid, uuid),
	actloom.webhook_rotate_secret(uuid, uuid, interval),
	actloom.webhook_send_test(uuid, uuid),
	actloom.webhook_deliveries(uuid, uuid, text, integer),
	actloom.webhook_redeliver(uuid, uuid),
	actloom.webhook_redeliver_failed(uuid, uuid, timestamptz)
	TO actloom_gateway;
GRANT EXECUTE ON FUNCTION actloom.webhook_purge(interval) TO actloom_dba;
