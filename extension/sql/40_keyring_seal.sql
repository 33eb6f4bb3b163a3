--------------------------------------------------------------------------
-- Key ring and sealing (keyring.c, seal.c)
--------------------------------------------------------------------------

-- One data key per company, wrapped by a master key of the key ring (see
-- seal.c for the byte layout).  Never readable by the application roles.
CREATE TABLE actloom.company_keys (
	company_id		uuid PRIMARY KEY REFERENCES actloom.companies (id) ON DELETE CASCADE,
	key_id			integer NOT NULL UNIQUE,
	master_key_id	integer,
	wrapped			bytea,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	rotated_at		timestamptz,
	shredded_at		timestamptz,
	CONSTRAINT company_keys_state CHECK (
		(wrapped IS NULL) = (master_key_id IS NULL) AND
		(wrapped IS NULL) = (shredded_at IS NOT NULL))
);
CREATE SEQUENCE actloom.company_keys_key_id_seq AS integer OWNED BY actloom.company_keys.key_id;
CREATE INDEX company_keys_master_idx ON actloom.company_keys (master_key_id);
COMMENT ON TABLE actloom.company_keys IS
	'per-company data keys, wrapped by a master key; NULL once shredded';

CREATE FUNCTION actloom._company_keys_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'company_keys_changed'
LANGUAGE C;
COMMENT ON FUNCTION actloom._company_keys_changed() IS
	'internal trigger: make every backend forget its cached data keys';
CREATE TRIGGER company_keys_changed
	AFTER UPDATE OR DELETE OR TRUNCATE ON actloom.company_keys
	FOR EACH STATEMENT EXECUTE FUNCTION actloom._company_keys_changed();

-- Named integration and SSO secrets of a company, sealed.
CREATE TABLE actloom.secrets (
	company_id	uuid NOT NULL REFERENCES actloom.companies (id) ON DELETE CASCADE,
	name		text NOT NULL,
	sealed		bytea NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (company_id, name)
);
COMMENT ON TABLE actloom.secrets IS 'named secrets of a company, sealed; read through functions';

SELECT pg_catalog.pg_extension_config_dump('actloom.company_keys', '');
SELECT pg_catalog.pg_extension_config_dump('actloom.company_keys_key_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('actloom.secrets', '');
REVOKE ALL ON actloom.company_keys, actloom.secrets FROM PUBLIC;
REVOKE ALL ON SEQUENCE actloom.company_keys_key_id_seq FROM PUBLIC;

--------------------------------------------------------------------------
-- Internal C functions.  None is granted to anyone: they are called by the
-- functions below, as their owner.
--------------------------------------------------------------------------
CREATE FUNCTION actloom._keyring_active()
RETURNS integer
AS 'MODULE_PATHNAME', 'keyring_active'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION actloom._keyring_active() IS 'internal: id of the active master key';

CREATE FUNCTION actloom._rewrap_data_key(company uuid, key_id integer, wrapped bytea,
										 master_key_id integer)
RETURNS bytea
AS 'MODULE_PATHNAME', 'rewrap_data_key'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION actloom._rewrap_data_key(uuid, integer, bytea, integer) IS
	'internal: a wrapped data key, wrapped again under another master key';

CREATE FUNCTION actloom._seal_secret(company uuid, name text, value text)
RETURNS bytea
AS 'MODULE_PATHNAME', 'seal_secret'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom._seal_secret(uuid, text, text) IS 'internal: seal a named secret';

CREATE FUNCTION actloom._unseal_secret(company uuid, name text, sealed bytea)
RETURNS text
AS 'MODULE_PATHNAME', 'unseal_secret'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom._unseal_secret(uuid, text, bytea) IS 'internal: open a named secret';

--------------------------------------------------------------------------
-- Generic sealing, for applications that keep sealed columns of their own
--------------------------------------------------------------------------
-- Not SECURITY DEFINER: a SET clause would cost more than the cipher.  The C
-- code switches to the extension's owner for its own schema-qualified
-- queries only (see ActloomBecomeOwner in actloom.c).
CREATE FUNCTION actloom.seal(company uuid, purpose text, value bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'seal'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom.seal(uuid, text, bytea) IS
	'seal a value for the company the actor acts in, bound to a purpose';

CREATE FUNCTION actloom.unseal(company uuid, purpose text, sealed bytea)
RETURNS bytea
AS 'MODULE_PATHNAME', 'unseal'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom.unseal(uuid, text, bytea) IS
	'open a value sealed for the company the actor acts in and the same purpose';

--------------------------------------------------------------------------
-- Master key rotation and crypto-shredding: for a DBA (superuser)
--------------------------------------------------------------------------
CREATE FUNCTION actloom.rotate_master_key(new_key_id integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	active integer;
	rewrapped bigint;
BEGIN
	PERFORM actloom._require_arg(new_key_id, 'new_key_id');
	active := actloom._keyring_active();
	IF new_key_id <> active THEN
		RAISE EXCEPTION 'master key % is not the active key of the key ring', new_key_id
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('The active key is %s.', active),
				  HINT = 'Add the new key to the key ring file, mark it active, then rotate to it.';
	END IF;
	UPDATE actloom.company_keys k
	   SET wrapped = actloom._rewrap_data_key(k.company_id, k.key_id, k.wrapped, new_key_id),
		   master_key_id = new_key_id,
		   rotated_at = now()
	 WHERE k.wrapped IS NOT NULL AND k.master_key_id <> new_key_id;
	GET DIAGNOSTICS rewrapped = ROW_COUNT;
	PERFORM actloom._audit_to(actloom.system_chain(), 'master_key.rotate', 'master_key',
							  new_key_id::text, jsonb_build_object('rewrapped', rewrapped));
	RETURN rewrapped;
END
$$;
COMMENT ON FUNCTION actloom.rotate_master_key(integer) IS
	'wrap every company data key under the active master key; returns how many were re-wrapped';

CREATE FUNCTION actloom.shred_company(company uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	secrets_deleted bigint;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	IF NOT EXISTS (SELECT FROM actloom.companies c WHERE c.id = shred_company.company) THEN
		RAISE EXCEPTION 'company does not exist' USING ERRCODE = 'no_data_found';
	END IF;
	-- A company that never sealed anything gets a shredded row too, so that
	-- nothing is ever sealed for it afterwards.
	INSERT INTO actloom.company_keys AS k (company_id, key_id, shredded_at)
		VALUES (shred_company.company, nextval('actloom.company_keys_key_id_seq'), now())
		ON CONFLICT (company_id) DO UPDATE
		SET wrapped = NULL, master_key_id = NULL,
			shredded_at = coalesce(k.shredded_at, excluded.shredded_at);
	DELETE FROM actloom.secrets s WHERE s.company_id = shred_company.company;
	GET DIAGNOSTICS secrets_deleted = ROW_COUNT;
	PERFORM actloom._audit_to(actloom.system_chain(), 'company.shred', 'company', company::text,
							  jsonb_build_object('secrets_deleted', secrets_deleted));
END
$$;
COMMENT ON FUNCTION actloom.shred_company(uuid) IS
	'destroy the company''s data key: nothing sealed for it can be opened again';

--------------------------------------------------------------------------
-- Named secrets
--------------------------------------------------------------------------
CREATE FUNCTION actloom._check_secret_name(name text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(name, 'name');
	IF name !~ '^[a-z0-9][a-z0-9_.:-]{0,127}$' THEN
		RAISE EXCEPTION 'invalid secret name'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A secret name has 1 to 128 characters: lower-case letters, digits, "_", ".", ":" and "-", starting with a letter or digit.';
	END IF;
END
$$;
COMMENT ON FUNCTION actloom._check_secret_name(text) IS 'internal: raise 22023 for a malformed secret name';

CREATE FUNCTION actloom.secret_put(company uuid, name text, value text)
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
COMMENT ON FUNCTION actloom.secret_put(uuid, text, text) IS
	'store or replace a named secret of the company, sealed (permission integrations.manage)';

CREATE FUNCTION actloom.secret_delete(company uuid, name text)
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
COMMENT ON FUNCTION actloom.secret_delete(uuid, text) IS
	'delete a named secret of the company (permission integrations.manage)';

CREATE FUNCTION actloom.secret_names(company uuid)
RETURNS TABLE (name text, created_at timestamptz, updated_at timestamptz)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'integrations.manage');
	RETURN QUERY
		SELECT s.name, s.created_at, s.updated_at FROM actloom.secrets s
		 WHERE s.company_id = secret_names.company ORDER BY s.name;
END
$$;
COMMENT ON FUNCTION actloom.secret_names(uuid) IS
	'names of the company''s secrets, never their values (permission integrations.manage)';

CREATE FUNCTION actloom.secret_get(company uuid, name text)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	sealed bytea;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom._check_secret_name(name);
	SELECT s.sealed INTO sealed FROM actloom.secrets s
	 WHERE s.company_id = secret_get.company AND s.name = secret_get.name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'secret "%" does not exist', name USING ERRCODE = 'no_data_found';
	END IF;
	RETURN actloom._unseal_secret(company, name, sealed);
END
$$;
COMMENT ON FUNCTION actloom.secret_get(uuid, text) IS
	'the value of a named secret, for the gateway (the HTTP shim) only';

GRANT EXECUTE ON FUNCTION
	actloom.seal(uuid, text, bytea),
	actloom.unseal(uuid, text, bytea),
	actloom.secret_put(uuid, text, text),
	actloom.secret_delete(uuid, text),
	actloom.secret_names(uuid),
	actloom.secret_get(uuid, text)
	TO actloom_gateway;
