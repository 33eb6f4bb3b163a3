\echo Use "ALTER EXTENSION actloom UPDATE TO '0.2'" to load this file. \quit
-- actloom 0.1 to 0.2.  The Makefile assembles extension/actloom--0.1--0.2.sql
-- from this file, replacing each "\ir" line with the fragment it names.
--
-- A change to an object of 0.1 is written here and, the same, in the
-- fragment of extension/sql/ that creates it for a fresh install; a fragment
-- new in 0.2 is only included.  The upgrade test (test/t/090_upgrade.pl)
-- compares an upgraded database with a fresh one and prints any drift.

-- An input as a message may quote it: its first 100 characters, then "..."
-- when it has more (ActloomQuotable in actloom.c, which the C functions
-- use), so that no input makes a message or its log line large.
CREATE FUNCTION actloom._quotable(input text)
RETURNS text
AS 'MODULE_PATHNAME', 'quotable'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION actloom._quotable(text) IS
	'internal: an input cut to 100 characters, for quoting in a message';

-- company_audit: a NULL max_entries is refused (22004), not "no limit".
CREATE OR REPLACE FUNCTION actloom.company_audit(company uuid, after_seq bigint DEFAULT 0,
												 max_entries integer DEFAULT 100)
RETURNS SETOF actloom.audit_log
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'audit.read');
	PERFORM actloom._require_arg(max_entries, 'max_entries');
	IF max_entries NOT BETWEEN 1 AND 1000 THEN
		RAISE EXCEPTION 'max_entries must be between 1 and 1000'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN QUERY
		SELECT * FROM actloom.audit_log a
		 WHERE a.chain = company AND a.seq > coalesce(after_seq, 0)
		 ORDER BY a.seq LIMIT max_entries;
END
$$;

-- unexpose refuses NULL arguments (22004) and, like every function below,
-- quotes at most 100 characters of an input in its messages.
CREATE OR REPLACE FUNCTION actloom.unexpose(version integer, method text, path text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	m text := upper(method);
	clean_path text := ltrim(path, '/');
BEGIN
	PERFORM actloom._require_arg(version, 'version');
	PERFORM actloom._require_arg(method, 'method');
	PERFORM actloom._require_arg(path, 'path');
	DELETE FROM actloom.endpoints e
	 WHERE e.version = unexpose.version AND e.method = m AND e.path = clean_path;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'endpoint % /v%/% does not exist', actloom._quotable(m), version,
			actloom._quotable(clean_path)
			USING ERRCODE = 'no_data_found';
	END IF;
	PERFORM pg_notify('actloom_endpoints', format('%s /v%s/%s', m, version, clean_path));
END
$$;

CREATE OR REPLACE FUNCTION actloom._scope_actions(scope text)
RETURNS text[]
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	actions text[];
BEGIN
	IF scope ~ '^[a-z][a-z_]*\.\*$' THEN
		SELECT array_agg(p.action ORDER BY p.action) INTO actions FROM actloom.permissions p
		 WHERE starts_with(p.action, left(scope, -1));
	ELSE
		SELECT array_agg(p.action) INTO actions FROM actloom.permissions p WHERE p.action = scope;
	END IF;
	IF actions IS NULL THEN
		RAISE EXCEPTION 'unknown scope "%"', actloom._quotable(scope)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'A scope is an action of table actloom.permissions, or "resource.*" for every action of a resource.';
	END IF;
	RETURN actions;
END
$$;

CREATE OR REPLACE FUNCTION actloom.api_key_revoke(key_id text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	company uuid := actloom.current_company();
BEGIN
	PERFORM actloom._require_arg(key_id, 'key_id');
	IF company IS NULL THEN
		RAISE EXCEPTION 'permission denied for action "api_keys.manage"'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'No actor acts in a company in this transaction.',
				  HINT = 'Call actloom.act_as() first, in the same transaction.';
	END IF;
	PERFORM actloom.authorize(company, 'api_keys.manage');
	-- A key of another company is as unknown as a key that does not exist.
	IF NOT EXISTS (SELECT FROM actloom.api_keys k
					WHERE k.key_id = api_key_revoke.key_id AND k.company_id = company) THEN
		RAISE EXCEPTION 'API key "%" does not exist', actloom._quotable(key_id)
			USING ERRCODE = 'no_data_found';
	END IF;
	UPDATE actloom.api_keys k
	   SET revoked_at = now(), revoked_by = actloom.current_user_id(),
		   revoked_by_key = actloom.current_api_key()
	 WHERE k.key_id = api_key_revoke.key_id AND k.revoked_at IS NULL;
	IF FOUND THEN
		PERFORM actloom._audit_to(company, 'api_key.revoke', 'api_key', key_id, '{}');
		PERFORM actloom._webhook_emit(company, 'api_key.revoked', jsonb_build_object('key_id', key_id));
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION actloom._check_schema(schema jsonb, for_query boolean, at text, depth integer DEFAULT 0)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	types constant text[] := ARRAY['object', 'array', 'string', 'integer', 'number', 'boolean', 'null'];
	keywords constant text[] := ARRAY['type', 'properties', 'required', 'additionalProperties', 'items',
		'minItems', 'maxItems', 'minLength', 'maxLength', 'minimum', 'maximum', 'enum', 'pattern',
		'format', 'title', 'description'];
	k text;
	v jsonb;
	t text[];
	problem text;
BEGIN
	IF jsonb_typeof(schema) IS DISTINCT FROM 'object' THEN
		problem := 'a schema must be a JSON object';
	ELSIF depth > 32 THEN
		problem := 'the schema nests deeper than 32 levels';
	END IF;
	IF problem IS NULL THEN
		SELECT format('unsupported keyword "%s"', actloom._quotable(key)) INTO problem
		  FROM jsonb_object_keys(schema) AS key WHERE key <> ALL (keywords) LIMIT 1;
	END IF;
	IF problem IS NULL AND schema ? 'type' THEN
		v := schema -> 'type';
		IF jsonb_typeof(v) = 'string' THEN
			t := ARRAY[v #>> '{}'];
		ELSIF jsonb_typeof(v) = 'array' AND jsonb_array_length(v) > 0
			  AND NOT EXISTS (SELECT FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string') THEN
			t := ARRAY(SELECT jsonb_array_elements_text(v));
		END IF;
		IF t IS NULL OR NOT t <@ types THEN
			problem := '"type" must be one of object, array, string, integer, number, boolean, null';
		END IF;
	END IF;
	IF problem IS NULL THEN
		SELECT format('"%s" must be %s', kw.k, kw.what) INTO problem
		  FROM (VALUES ('minItems', 'a non-negative integer'), ('maxItems', 'a non-negative integer'),
					   ('minLength', 'a non-negative integer'), ('maxLength', 'a non-negative integer'),
					   ('minimum', 'a number'), ('maximum', 'a number'),
					   ('title', 'a string'), ('description', 'a string')) AS kw(k, what)
		 WHERE schema ? kw.k
		   AND NOT CASE kw.what
				   WHEN 'a non-negative integer' THEN (schema -> kw.k)::text ~ '^[0-9]+$'
				   WHEN 'a number' THEN jsonb_typeof(schema -> kw.k) = 'number'
				   ELSE jsonb_typeof(schema -> kw.k) = 'string' END
		 LIMIT 1;
	END IF;
	IF problem IS NULL THEN
		SELECT format('"%s" exceeds "%s"', lo, hi) INTO problem
		  FROM (VALUES ('minItems', 'maxItems'), ('minLength', 'maxLength'), ('minimum', 'maximum')) AS p(lo, hi)
		 WHERE (schema ->> lo)::numeric > (schema ->> hi)::numeric LIMIT 1;
	END IF;
	IF problem IS NULL AND schema ? 'enum'
	   AND (jsonb_typeof(schema -> 'enum') <> 'array' OR jsonb_array_length(schema -> 'enum') = 0) THEN
		problem := '"enum" must be a non-empty array';
	END IF;
	IF problem IS NULL AND schema ? 'format'
	   AND (schema -> 'format') NOT IN ('"email"', '"uuid"', '"uri"', '"date-time"') THEN
		problem := '"format" must be one of email, uuid, uri, date-time';
	END IF;
	IF problem IS NULL AND schema ? 'pattern' THEN
		IF jsonb_typeof(schema -> 'pattern') <> 'string' OR length(schema ->> 'pattern') > 1024 THEN
			problem := '"pattern" must be a regular expression';
		ELSE
			BEGIN
				PERFORM '' ~ (schema ->> 'pattern');
			EXCEPTION WHEN invalid_regular_expression THEN
				problem := '"pattern" must be a regular expression';
			END;
		END IF;
	END IF;
	IF problem IS NULL AND schema ? 'additionalProperties'
	   AND jsonb_typeof(schema -> 'additionalProperties') <> 'boolean' THEN
		problem := '"additionalProperties" must be true or false';
	END IF;
	IF problem IS NULL AND schema ? 'properties' AND jsonb_typeof(schema -> 'properties') <> 'object' THEN
		problem := '"properties" must be an object';
	END IF;
	IF problem IS NULL AND schema ? 'required' THEN
		IF jsonb_typeof(schema -> 'required') <> 'array'
		   OR EXISTS (SELECT FROM jsonb_array_elements(schema -> 'required') e WHERE jsonb_typeof(e) <> 'string') THEN
			problem := '"required" must be an array of property names';
		ELSIF (schema -> 'additionalProperties') IS DISTINCT FROM 'true' THEN
			SELECT format('required property "%s" is not in "properties"', actloom._quotable(r)) INTO problem
			  FROM jsonb_array_elements_text(schema -> 'required') r
			 WHERE NOT coalesce(schema -> 'properties' ? r, false) LIMIT 1;
		END IF;
	END IF;
	IF problem IS NULL AND for_query
	   AND ((schema -> 'type') IS DISTINCT FROM '"object"') THEN
		problem := 'a query schema must be of type object';
	END IF;
	IF problem IS NOT NULL THEN
		RAISE EXCEPTION 'invalid schema at "%": %', actloom._quotable(at), problem
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The supported subset of JSON Schema is listed in the actloom README.';
	END IF;
	FOR k, v IN SELECT key, value FROM jsonb_each(coalesce(schema -> 'properties', '{}')) LOOP
		IF for_query AND ((v -> 'type') IS NULL OR (v -> 'type') NOT IN ('"string"', '"integer"', '"number"', '"boolean"')) THEN
			RAISE EXCEPTION 'invalid schema at "%": a query parameter''s type is string, integer, number or boolean',
				actloom._quotable(at || '/properties/' || k)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		PERFORM actloom._check_schema(v, false, at || '/properties/' || k, depth + 1);
	END LOOP;
	IF schema ? 'items' THEN
		PERFORM actloom._check_schema(schema -> 'items', false, at || '/items', depth + 1);
	END IF;
END
$$;

CREATE OR REPLACE FUNCTION actloom.expose(version integer, method text, path text, fn regprocedure,
										  required_scope text, rate_class text DEFAULT 'api',
										  body_schema jsonb DEFAULT NULL, query_schema jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	p pg_proc;
	m text := upper(method);
	clean_path text := ltrim(path, '/');
BEGIN
	PERFORM actloom._require_arg(version, 'version');
	PERFORM actloom._require_arg(method, 'method');
	PERFORM actloom._require_arg(path, 'path');
	PERFORM actloom._require_arg(fn, 'fn');
	PERFORM actloom._require_arg(required_scope, 'required_scope');
	PERFORM actloom._require_arg(rate_class, 'rate_class');
	IF version NOT BETWEEN 1 AND 999 THEN
		RAISE EXCEPTION 'endpoint version must be between 1 and 999' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF m NOT IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE') THEN
		RAISE EXCEPTION 'method "%" cannot be exposed', actloom._quotable(method)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The methods are GET, POST, PUT, PATCH and DELETE.';
	END IF;
	IF clean_path !~ '^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$' OR length(clean_path) > 200 THEN
		RAISE EXCEPTION 'invalid endpoint path "%"', actloom._quotable(path)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A path is up to 200 characters: segments of a-z, 0-9, "_" and "-", separated by "/".';
	END IF;
	IF rate_class !~ '^[a-z0-9_]{1,31}$' THEN
		RAISE EXCEPTION 'invalid rate class name "%"', actloom._quotable(rate_class)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A rate class name is 1 to 31 characters a-z, 0-9 and "_", as in the shim''s configuration.';
	END IF;
	SELECT * INTO p FROM pg_proc WHERE oid = fn;
	IF p.prokind <> 'f' OR p.proretset OR p.prorettype <> 'jsonb'::regtype
	   OR p.pronargs <> 2 OR p.proargtypes[0] <> 'jsonb'::regtype OR p.proargtypes[1] <> 'jsonb'::regtype THEN
		RAISE EXCEPTION 'function % cannot be an endpoint', fn
			USING ERRCODE = 'invalid_function_definition',
				  DETAIL = 'An endpoint function takes (body jsonb, query jsonb) and returns jsonb.';
	END IF;
	IF NOT EXISTS (SELECT FROM actloom.permissions WHERE action = required_scope) THEN
		RAISE EXCEPTION 'unknown scope "%"', actloom._quotable(required_scope)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A scope is an action of actloom.permissions.';
	END IF;
	IF body_schema IS NOT NULL THEN
		PERFORM actloom._check_schema(body_schema, false, 'body_schema');
	END IF;
	IF query_schema IS NOT NULL THEN
		PERFORM actloom._check_schema(query_schema, true, 'query_schema');
	END IF;
	INSERT INTO actloom.endpoints AS e (version, method, path, fn, required_scope, rate_class,
										body_schema, query_schema)
	VALUES (version, m, clean_path, fn, required_scope, rate_class, body_schema, query_schema)
	ON CONFLICT ON CONSTRAINT endpoints_pkey DO UPDATE
	   SET fn = excluded.fn, required_scope = excluded.required_scope,
		   rate_class = excluded.rate_class, body_schema = excluded.body_schema,
		   query_schema = excluded.query_schema, exposed_at = now();
	PERFORM pg_notify('actloom_endpoints', format('%s /v%s/%s', m, version, clean_path));
END
$$;

-- Tenancy (30_tenancy.sql).  Only members of the new role actloom_dba may
-- call protect_table; the entries of protected tables go to a chain of
-- their own; every partition and inheritance child of a protected table is
-- protected, now and when one is created, attached or detached.
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'actloom_dba') THEN
		CREATE ROLE actloom_dba NOLOGIN;
	END IF;
END
$roles$;

-- The chain of tenancy's entries: the tables protect_table confined.  It is
-- not the system chain, which every sign-in appends to, so that a migration
-- protecting a table in a transaction it keeps open delays other
-- migrations, never a sign-in.
CREATE FUNCTION actloom.schema_chain()
RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '00000000-0000-0000-0000-000000000001'::uuid;
COMMENT ON FUNCTION actloom.schema_chain() IS
	'the chain of the tables confined by protect_table: 00000000-0000-0000-0000-000000000001';

-- protect_table and the event triggers run with their caller's rights (the
-- tables must be the caller's own), and audit each table through this
-- function, which tenancy.c runs as the owner of the audit trail.  It only
-- records what is true: the table carries the tenant guard on that column.
CREATE OR REPLACE FUNCTION actloom._audit_protect_table_as_owner(tbl regclass, company_column name)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = tbl AND p.polname = 'actloom_tenant_guard')
	   OR NOT EXISTS (SELECT FROM pg_trigger t
					   WHERE t.tgrelid = tbl AND t.tgname = 'actloom_tenant_move'
						 AND t.tgargs = convert_to(company_column, 'UTF8') || '\x00'::bytea) THEN
		RAISE EXCEPTION 'table "%" is not protected on column "%"', tbl, company_column
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	PERFORM actloom._audit_to(actloom.schema_chain(), 'table.protect', 'table', tbl::text,
							  jsonb_build_object('column', company_column));
END
$$;
COMMENT ON FUNCTION actloom._audit_protect_table_as_owner(regclass, name) IS
	'internal: audit that a table is protected';

-- For members of actloom_dba: a role that merely owns a table (any role
-- can create a TEMP table) does not write to the audit trail.  0.1 let any
-- table owner call it, and audited it through _audit_protect_table, which
-- PUBLIC could call and which appended to the system chain.
DROP FUNCTION actloom._audit_protect_table(regclass, name);
CREATE OR REPLACE FUNCTION actloom.protect_table(tbl regclass, company_column name DEFAULT 'company_id')
RETURNS void
AS 'MODULE_PATHNAME', 'protect_table'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION actloom.protect_table(regclass, name) IS
	'confine a table, and every partition and child of it, to the actor''s company with forced row level security; idempotent';

-- Every table that becomes a partition or child of a protected table is
-- protected at the end of the command that made it one, whoever ran it;
-- ATTACH PARTITION first drops the trigger of the partition's own that the
-- parent's would collide with.
CREATE FUNCTION actloom._tenancy_ddl()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'tenancy_ddl'
LANGUAGE C;
COMMENT ON FUNCTION actloom._tenancy_ddl() IS
	'event trigger: protect every new partition and child of a protected table, and what is detached from one';

CREATE EVENT TRIGGER actloom_protect_children_prepare ON ddl_command_start
	WHEN TAG IN ('ALTER TABLE')
	EXECUTE FUNCTION actloom._tenancy_ddl();
CREATE EVENT TRIGGER actloom_protect_children ON ddl_command_end
	WHEN TAG IN ('CREATE TABLE', 'CREATE FOREIGN TABLE', 'ALTER TABLE', 'ALTER FOREIGN TABLE',
				 'CREATE SCHEMA', 'IMPORT FOREIGN SCHEMA')
	EXECUTE FUNCTION actloom._tenancy_ddl();
-- Fire in replica mode too: session_replication_role does not switch them off.
ALTER EVENT TRIGGER actloom_protect_children_prepare ENABLE ALWAYS;
ALTER EVENT TRIGGER actloom_protect_children ENABLE ALWAYS;

GRANT EXECUTE ON FUNCTION actloom.protect_table(regclass, name) TO actloom_dba;

-- 0.1 left the partitions and children of a protected table open: protect
-- them, through the tables protected at the top of each tree.
DO $protect$
DECLARE
	t record;
BEGIN
	FOR t IN
		SELECT c.oid::regclass AS tbl,
			   convert_from(substring(tr.tgargs FROM 1 FOR length(tr.tgargs) - 1), 'UTF8')::name AS col
		  FROM pg_class c
		  JOIN pg_trigger tr ON tr.tgrelid = c.oid AND tr.tgname = 'actloom_tenant_move' AND tr.tgparentid = 0
		 WHERE EXISTS (SELECT FROM pg_inherits i WHERE i.inhparent = c.oid)
		   AND EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'actloom_tenant_guard')
		   AND NOT EXISTS (
			   WITH RECURSIVE up (rel) AS (
				   SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = c.oid
				   UNION
				   SELECT i.inhparent FROM pg_inherits i JOIN up ON i.inhrelid = up.rel)
			   SELECT FROM up
				 JOIN pg_policy p ON p.polrelid = up.rel AND p.polname = 'actloom_tenant_guard')
		 ORDER BY c.oid
	LOOP
		PERFORM actloom.protect_table(t.tbl, t.col);
	END LOOP;
END
$protect$;

-- 90_ratelimit.sql: the guards of the shared rate limiter (failed API-key
-- authentications per client address), and the checks of a take's
-- arguments, now shared by every function that takes.
-- The arguments of a take, checked once for every function that takes or
-- checks: 22004 for a NULL, 22023 for a value out of range.
CREATE FUNCTION actloom._rate_limit_args(at timestamptz, class text, key text, quota integer,
										 period integer, burst integer, cost integer)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	IF at IS NULL OR class IS NULL OR key IS NULL OR quota IS NULL OR period IS NULL
	   OR burst IS NULL OR cost IS NULL THEN
		RAISE EXCEPTION 'argument "%" must not be null',
			CASE WHEN at IS NULL THEN 'at' WHEN class IS NULL THEN 'class' WHEN key IS NULL THEN 'key'
				 WHEN quota IS NULL THEN 'quota' WHEN period IS NULL THEN 'period'
				 WHEN burst IS NULL THEN 'burst' ELSE 'cost' END
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF class !~ '^[a-z0-9_]{1,31}$' THEN
		RAISE EXCEPTION 'invalid rate-limit class name'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A class name is 1 to 31 characters a-z, 0-9 and _.';
	END IF;
	IF octet_length(key) NOT BETWEEN 1 AND 1024 THEN
		RAISE EXCEPTION 'a rate-limit key must be 1 to 1024 bytes long'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF quota NOT BETWEEN 1 AND 1000000000 THEN
		RAISE EXCEPTION 'quota must be between 1 and 1000000000' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF period NOT BETWEEN 1 AND 31622400 THEN
		RAISE EXCEPTION 'period must be between 1 and 31622400 seconds (366 days)'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF burst NOT BETWEEN 1 AND quota THEN
		RAISE EXCEPTION 'burst must be between 1 and quota' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF cost NOT BETWEEN 1 AND burst THEN
		RAISE EXCEPTION 'cost must be between 1 and burst'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A take costlier than the burst could never be allowed.';
	END IF;
END
$$;
COMMENT ON FUNCTION actloom._rate_limit_args(timestamptz, text, text, integer, integer, integer, integer) IS
	'internal: raises 22004 or 22023 unless the arguments describe a possible take';

CREATE OR REPLACE FUNCTION actloom._rate_limit_take_at(at timestamptz, class text, key text, quota integer,
											period integer, burst integer, cost integer,
											OUT allowed boolean, OUT remaining integer,
											OUT reset_after integer, OUT retry_after integer)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	us constant interval := interval '1 microsecond';
	t bigint;			-- the emission interval T, in microseconds
	slack bigint;		-- tau + T: how far past "now" an allowed take may leave the TAT
	step interval;		-- cost * T
	digest bytea;
	new_tat timestamptz;
	ahead bigint;		-- microseconds from "now" to the TAT
BEGIN
	PERFORM actloom._rate_limit_args(at, class, key, quota, period, burst, cost);
	t := greatest(period::bigint * 1000000 / quota, 1);
	slack := t * burst;
	step := (t * cost) * us;
	digest := sha256(convert_to(key, 'UTF8'));

	-- Allowed: insert or move the TAT.  Refused: the row is locked but not
	-- changed, and nothing is returned.
	INSERT INTO actloom.rate_limits AS r (class, key_hash, tat)
		 VALUES (_rate_limit_take_at.class, digest, at + step)
	ON CONFLICT ON CONSTRAINT rate_limits_pkey
	DO UPDATE SET tat = greatest(r.tat, at) + step
		WHERE greatest(r.tat, at) + step <= at + slack * us
	RETURNING r.tat INTO new_tat;

	IF FOUND THEN
		ahead := (extract(epoch FROM new_tat - at) * 1000000)::bigint;
		allowed := true;
		remaining := (slack - ahead) / t;
		reset_after := (ahead + 999999) / 1000000;
		retry_after := 0;
	ELSE
		-- The row this statement locked: no other take can move it now.
		SELECT greatest(r.tat, at) INTO new_tat FROM actloom.rate_limits r
		 WHERE r.class = _rate_limit_take_at.class AND r.key_hash = digest;
		ahead := (extract(epoch FROM new_tat - at) * 1000000)::bigint;
		allowed := false;
		remaining := 0;
		reset_after := (ahead + 999999) / 1000000;
		retry_after := (ahead + t * cost - slack + 999999) / 1000000;
	END IF;
END
$$;

-- A guard is a class that is checked before a request's work and charged
-- only when that work fails: the failed API-key authentications of a client
-- address, which a genuine key must not pay for, and a guesser must.  The
-- check takes nothing (_rate_limit_check_at); the charge is made whatever
-- the state (_rate_limit_charge_at), leaving a debt past the limit, so that
-- failures which all passed the check at once are all paid for, in waiting.
CREATE FUNCTION actloom._rate_limit_check_at(at timestamptz, class text, key text, quota integer,
											 period integer, burst integer,
											 OUT allowed boolean, OUT remaining integer,
											 OUT reset_after integer, OUT retry_after integer)
RETURNS record
LANGUAGE plpgsql STABLE PARALLEL UNSAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	t bigint;
	slack bigint;
	tat timestamptz;
	ahead bigint := 0;
BEGIN
	PERFORM actloom._rate_limit_args(at, class, key, quota, period, burst, 1);
	t := greatest(period::bigint * 1000000 / quota, 1);
	slack := t * burst;
	SELECT r.tat INTO tat FROM actloom.rate_limits r
	 WHERE r.class = _rate_limit_check_at.class AND r.key_hash = sha256(convert_to(key, 'UTF8'));
	IF tat > at THEN
		ahead := (extract(epoch FROM tat - at) * 1000000)::bigint;
	END IF;
	allowed := ahead + t <= slack;
	remaining := greatest((slack - ahead) / t, 0);
	reset_after := (ahead + 999999) / 1000000;
	retry_after := CASE WHEN allowed THEN 0 ELSE (ahead + t - slack + 999999) / 1000000 END;
END
$$;
COMMENT ON FUNCTION actloom._rate_limit_check_at(timestamptz, text, text, integer, integer, integer) IS
	'internal: what one take at a given time would be told, taking nothing';

CREATE FUNCTION actloom._rate_limit_charge_at(at timestamptz, class text, key text, quota integer,
											  period integer, burst integer)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	step interval;
BEGIN
	PERFORM actloom._rate_limit_args(at, class, key, quota, period, burst, 1);
	step := greatest(period::bigint * 1000000 / quota, 1) * interval '1 microsecond';
	INSERT INTO actloom.rate_limits AS r (class, key_hash, tat)
		 VALUES (_rate_limit_charge_at.class, sha256(convert_to(key, 'UTF8')), at + step)
	ON CONFLICT ON CONSTRAINT rate_limits_pkey
	DO UPDATE SET tat = greatest(r.tat, at) + step;
END
$$;
COMMENT ON FUNCTION actloom._rate_limit_charge_at(timestamptz, text, text, integer, integer, integer) IS
	'internal: one take at a given time that is never refused: past the limit it leaves a debt';

-- A request with a guard: rate_limit_guard() follows rate_limit_admit() in
-- its first transaction, and withdraws the admission when the guard would
-- refuse, so that rate_limit_admitted() raises and the work does not run;
-- rate_limit_fail() is a third transaction, after the request's own, and
-- charges the guard when the admission is still there: the request's own
-- transaction, which would have consumed it, did not commit.
CREATE FUNCTION actloom.rate_limit_guard(admission uuid, class text, key text, quota integer,
										 period integer, burst integer,
										 OUT allowed boolean, OUT remaining integer,
										 OUT reset_after integer, OUT retry_after integer)
RETURNS record
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(admission, 'admission');
	SELECT * INTO allowed, remaining, reset_after, retry_after
	  FROM actloom._rate_limit_check_at(clock_timestamp(), class, key, quota, period, burst);
	IF NOT allowed THEN
		DELETE FROM actloom.rate_limit_admissions a WHERE a.id = admission;
	END IF;
END
$$;
COMMENT ON FUNCTION actloom.rate_limit_guard(uuid, text, text, integer, integer, integer) IS
	'check, taking nothing, that one more failure of a class (quota per period seconds, burst at once) is allowed for a key; when not, withdraw the admission; gateway only';

CREATE FUNCTION actloom.rate_limit_fail(admission uuid, class text, key text, quota integer,
										period integer, burst integer)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	at constant timestamptz := clock_timestamp();
BEGIN
	PERFORM actloom._require_arg(admission, 'admission');
	PERFORM actloom._rate_limit_args(at, class, key, quota, period, burst, 1);
	DELETE FROM actloom.rate_limit_admissions a WHERE a.id = admission;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM actloom._rate_limit_charge_at(at, class, key, quota, period, burst);
	RETURN true;
END
$$;
COMMENT ON FUNCTION actloom.rate_limit_fail(uuid, text, text, integer, integer, integer) IS
	'when the admission was not consumed (its work did not commit), consume it and charge one failure of the class to the key, past the limit if need be; returns whether it did; gateway only';

GRANT EXECUTE ON FUNCTION
	actloom.rate_limit_guard(uuid, text, text, integer, integer, integer),
	actloom.rate_limit_fail(uuid, text, text, integer, integer, integer)
	TO actloom_gateway;

-- Outbound webhooks, new in 0.2.
\ir ../sql/92_webhooks.sql

-- The product's own webhook events (92_webhooks.sql): membership changes,
-- API keys and integration secrets emit them in the acting company.
CREATE OR REPLACE FUNCTION actloom.add_member(company uuid, user_id uuid,
								   role actloom.company_role DEFAULT 'member')
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	actor_role actloom.company_role;
BEGIN
	actor_role := actloom._membership_change(company, 'members.invite');
	PERFORM actloom._require_arg(add_member.user_id, 'user_id');
	PERFORM actloom._require_arg(add_member.role, 'role');
	PERFORM actloom._check_ceiling(actor_role, add_member.role, 'grant');
	IF NOT EXISTS (SELECT FROM actloom.users u WHERE u.id = add_member.user_id) THEN
		RAISE EXCEPTION 'user does not exist' USING ERRCODE = 'no_data_found';
	END IF;
	IF EXISTS (SELECT FROM actloom.memberships m
				WHERE m.company_id = add_member.company AND m.user_id = add_member.user_id) THEN
		RAISE EXCEPTION 'user is already a member of the company'
			USING ERRCODE = 'unique_violation',
				  HINT = 'Use actloom.set_role() to change the role of a member.';
	END IF;
	INSERT INTO actloom.memberships (company_id, user_id, role)
		VALUES (add_member.company, add_member.user_id, add_member.role);
	PERFORM actloom._audit_to(company, 'member.add', 'user', add_member.user_id::text,
							  jsonb_build_object('role', add_member.role));
	PERFORM actloom._webhook_emit(company, 'member.added',
								  jsonb_build_object('user_id', add_member.user_id, 'role', add_member.role));
END
$$;

CREATE OR REPLACE FUNCTION actloom.set_role(company uuid, user_id uuid, role actloom.company_role)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	actor_role actloom.company_role;
	old_role actloom.company_role;
BEGIN
	actor_role := actloom._membership_change(company, 'members.set_role');
	PERFORM actloom._require_arg(set_role.user_id, 'user_id');
	PERFORM actloom._require_arg(set_role.role, 'role');
	old_role := actloom._member_role(company, set_role.user_id);
	PERFORM actloom._check_ceiling(actor_role, old_role, 'change a member with');
	PERFORM actloom._check_ceiling(actor_role, set_role.role, 'grant');
	IF old_role = 'owner' AND set_role.role <> 'owner' THEN
		PERFORM actloom._check_last_owner(company, set_role.user_id);
	END IF;
	UPDATE actloom.memberships m SET role = set_role.role
	 WHERE m.company_id = set_role.company AND m.user_id = set_role.user_id;
	PERFORM actloom._audit_to(company, 'member.set_role', 'user', set_role.user_id::text,
							  jsonb_build_object('from', old_role, 'to', set_role.role));
	PERFORM actloom._webhook_emit(company, 'member.role_changed',
								  jsonb_build_object('user_id', set_role.user_id, 'from', old_role,
													 'to', set_role.role));
END
$$;

CREATE OR REPLACE FUNCTION actloom.remove_member(company uuid, user_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	actor_role actloom.company_role;
	old_role actloom.company_role;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom._require_arg(remove_member.user_id, 'user_id');
	-- Leaving needs no permission; removing someone else does.
	actor_role := actloom._membership_change(company,
		CASE WHEN remove_member.user_id = actloom.current_user_id()
			 THEN 'members.read' ELSE 'members.remove' END);
	old_role := actloom._member_role(company, remove_member.user_id);
	PERFORM actloom._check_ceiling(actor_role, old_role, 'remove a member with');
	IF old_role = 'owner' THEN
		PERFORM actloom._check_last_owner(company, remove_member.user_id);
	END IF;
	DELETE FROM actloom.memberships m
	 WHERE m.company_id = remove_member.company AND m.user_id = remove_member.user_id;
	PERFORM actloom._audit_to(company, 'member.remove', 'user', remove_member.user_id::text,
							  jsonb_build_object('role', old_role,
												 'left', remove_member.user_id = actloom.current_user_id()));
	PERFORM actloom._webhook_emit(company, 'member.removed',
								  jsonb_build_object('user_id', remove_member.user_id, 'role', old_role,
													 'left', remove_member.user_id = actloom.current_user_id()));
END
$$;

CREATE OR REPLACE FUNCTION actloom.secret_put(company uuid, name text, value text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	replaced boolean;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'integrations.manage');
	PERFORM actloom._check_secret_name(name);
	PERFORM actloom._require_arg(value, 'value');
	IF octet_length(value) NOT BETWEEN 1 AND 65536 THEN
		RAISE EXCEPTION 'invalid secret value'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A secret has 1 to 65536 bytes.';
	END IF;
	replaced := EXISTS (SELECT FROM actloom.secrets s
						 WHERE s.company_id = secret_put.company AND s.name = secret_put.name);
	INSERT INTO actloom.secrets AS s (company_id, name, sealed)
		VALUES (secret_put.company, secret_put.name,
				actloom._seal_secret(secret_put.company, secret_put.name, secret_put.value))
		ON CONFLICT ON CONSTRAINT secrets_pkey DO UPDATE
		SET sealed = excluded.sealed, updated_at = now();
	PERFORM actloom._audit_to(company, 'secret.put', 'secret', name,
							  jsonb_build_object('replaced', replaced));
	PERFORM actloom._webhook_emit(company, 'secret.stored',
								  jsonb_build_object('name', name, 'replaced', replaced));
END
$$;

CREATE OR REPLACE FUNCTION actloom.secret_delete(company uuid, name text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'integrations.manage');
	PERFORM actloom._check_secret_name(name);
	DELETE FROM actloom.secrets s
	 WHERE s.company_id = secret_delete.company AND s.name = secret_delete.name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'secret "%" does not exist', name USING ERRCODE = 'no_data_found';
	END IF;
	PERFORM actloom._audit_to(company, 'secret.delete', 'secret', name, '{}');
	PERFORM actloom._webhook_emit(company, 'secret.deleted', jsonb_build_object('name', name));
END
$$;

CREATE OR REPLACE FUNCTION actloom.api_key_create(company uuid, name text, scopes text[],
									   expires_at timestamptz DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	scope text;
	action text;
	normalized text[];
	generated record;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'api_keys.manage');
	PERFORM actloom._require_arg(name, 'name');
	PERFORM actloom._require_arg(scopes, 'scopes');
	IF length(btrim(name)) NOT BETWEEN 1 AND 200 THEN
		RAISE EXCEPTION 'invalid API key name'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'An API key name has 1 to 200 characters besides surrounding spaces.';
	END IF;
	IF coalesce(cardinality(scopes), 0) = 0 THEN
		RAISE EXCEPTION 'an API key needs at least one scope' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF array_position(scopes, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'scopes must not contain NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT array_agg(DISTINCT s ORDER BY s) INTO normalized FROM unnest(scopes) AS s;
	IF cardinality(normalized) > 100 THEN
		RAISE EXCEPTION 'too many scopes' USING ERRCODE = 'invalid_parameter_value',
			DETAIL = 'An API key has at most 100 scopes.';
	END IF;
	-- Nobody hands a machine more than they may do themselves.
	FOREACH scope IN ARRAY normalized LOOP
		FOREACH action IN ARRAY actloom._scope_actions(scope) LOOP
			IF NOT actloom.can(company, action) THEN
				RAISE EXCEPTION 'cannot grant scope "%"', scope
					USING ERRCODE = 'insufficient_privilege',
						  DETAIL = format('The actor may not do action "%s" itself.', action);
			END IF;
		END LOOP;
	END LOOP;
	IF api_key_create.expires_at IS NOT NULL AND api_key_create.expires_at <= now() THEN
		RAISE EXCEPTION 'expiry must be in the future' USING ERRCODE = 'invalid_parameter_value';
	END IF;

	generated := actloom._api_key_generate();
	INSERT INTO actloom.api_keys (key_id, company_id, name, scopes, key_hash, created_by,
								  created_by_key, expires_at)
		VALUES (generated.key_id, company, btrim(name), normalized, generated.key_hash,
				actloom.current_user_id(), actloom.current_api_key(), api_key_create.expires_at);
	PERFORM actloom._audit_to(company, 'api_key.create', 'api_key', generated.key_id,
							  jsonb_build_object('name', btrim(name), 'scopes', normalized,
												 'expires_at', api_key_create.expires_at));
	PERFORM actloom._webhook_emit(company, 'api_key.created',
								  jsonb_build_object('key_id', generated.key_id, 'name', btrim(name),
													 'scopes', normalized, 'expires_at', api_key_create.expires_at));
	RETURN generated.key;
END
$$;


-- Privileges last, as in the install script: EXECUTE is revoked from PUBLIC
-- on every function of the schema, new ones included, and granted back
-- where the privileges fragment says.  Re-applying it to the objects of 0.1
-- changes nothing for them.
\ir ../sql/99_privileges.sql
