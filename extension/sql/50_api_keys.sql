--------------------------------------------------------------------------
-- API keys (apikey.c)
--------------------------------------------------------------------------

-- Only the SHA-256 hash of a key is kept; see apikey.c for the format.  The
-- public key id names a key everywhere; the uuid is what audit entries
-- record as the acting key (actloom.audit_log.actor_api_key).
-- authenticate_api_key reads rows through the index api_keys_key_id_key
-- directly (apikey.c): keep its name and the column's "C" collation.
CREATE TABLE actloom.api_keys (
	id				uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	key_id			text COLLATE "C" NOT NULL CHECK (key_id ~ '^[0-9A-Za-z]{12}$')
					CONSTRAINT api_keys_key_id_key UNIQUE,
	company_id		uuid NOT NULL REFERENCES actloom.companies (id) ON DELETE CASCADE,
	name			text NOT NULL CHECK (pg_catalog.length(pg_catalog.btrim(name)) BETWEEN 1 AND 200),
	scopes			text[] NOT NULL CHECK (pg_catalog.cardinality(scopes) BETWEEN 1 AND 100),
	key_hash		bytea NOT NULL CHECK (pg_catalog.length(key_hash) = 32),
	created_by		uuid REFERENCES actloom.users (id) ON DELETE SET NULL,
	created_by_key	text,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	expires_at		timestamptz,
	revoked_at		timestamptz,
	revoked_by		uuid REFERENCES actloom.users (id) ON DELETE SET NULL,
	revoked_by_key	text,
	last_used_at	timestamptz
);
CREATE INDEX api_keys_company_idx ON actloom.api_keys (company_id);
COMMENT ON TABLE actloom.api_keys IS
	'API keys of companies: the SHA-256 hash of each key, never the key';
SELECT pg_catalog.pg_extension_config_dump('actloom.api_keys', '');
REVOKE ALL ON actloom.api_keys FROM PUBLIC;

CREATE FUNCTION actloom._api_key_generate(OUT key_id text, OUT key text, OUT key_hash bytea)
RETURNS record
AS 'MODULE_PATHNAME', 'api_key_generate'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION actloom._api_key_generate() IS
	'internal: a new random API key, its id and its SHA-256 hash';

-- The actions a scope stands for: itself, or every action of a resource for
-- "resource.*".  Raises 22023 for a scope that names nothing.
CREATE FUNCTION actloom._scope_actions(scope text)
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
COMMENT ON FUNCTION actloom._scope_actions(text) IS 'internal: the actions a scope covers';

CREATE FUNCTION actloom.api_key_create(company uuid, name text, scopes text[],
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
COMMENT ON FUNCTION actloom.api_key_create(uuid, text, text[], timestamptz) IS
	'issue an API key of the company (permission api_keys.manage); the key is returned once';

-- Not SECURITY DEFINER, for speed: the C code reads and writes api_keys as
-- the extension's owner with fully qualified queries (see apikey.c).
CREATE FUNCTION actloom.authenticate_api_key(key text, required_scope text DEFAULT NULL,
											 OUT company_id uuid, OUT key_id text, OUT scopes text[])
RETURNS record
AS 'MODULE_PATHNAME', 'authenticate_api_key'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom.authenticate_api_key(text, text) IS
	'verify an API key and make it the actor of this transaction; 28000 for any bad key';

CREATE FUNCTION actloom.api_key_revoke(key_id text)
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
COMMENT ON FUNCTION actloom.api_key_revoke(text) IS
	'revoke an API key of the company the actor acts in (permission api_keys.manage); idempotent';

CREATE FUNCTION actloom.api_keys(company uuid)
RETURNS TABLE (key_id text, name text, scopes text[], created_by uuid, created_at timestamptz,
			   expires_at timestamptz, revoked_at timestamptz, last_used_at timestamptz)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'api_keys.read');
	RETURN QUERY
		SELECT k.key_id, k.name, k.scopes, k.created_by, k.created_at, k.expires_at,
			   k.revoked_at, k.last_used_at
		  FROM actloom.api_keys k
		 WHERE k.company_id = api_keys.company
		 ORDER BY k.created_at, k.key_id;
END
$$;
COMMENT ON FUNCTION actloom.api_keys(uuid) IS
	'the API keys of a company, without any secret material (permission api_keys.read)';

GRANT EXECUTE ON FUNCTION
	actloom.api_key_create(uuid, text, text[], timestamptz),
	actloom.authenticate_api_key(text, text),
	actloom.api_key_revoke(text),
	actloom.api_keys(uuid)
	TO actloom_gateway;
