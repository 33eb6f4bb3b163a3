-- actloom 0.1 exactly as released: extension/sql/*.sql of commit 08d3159 concatenated in name order (frozen; read only by t/090_upgrade.pl)
-- actloom 0.1: tenancy and role kernel
\echo Use "CREATE EXTENSION actloom CASCADE" to load this file. \quit

-- Every SECURITY DEFINER function below pins search_path to
-- "pg_catalog, actloom, pg_temp", names its relations with their schema, and
-- has EXECUTE revoked from PUBLIC.

--------------------------------------------------------------------------
-- Roles.  They are cluster-wide, so they are created only when missing and
-- survive DROP EXTENSION.
--------------------------------------------------------------------------
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'actloom_gateway') THEN
		CREATE ROLE actloom_gateway NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'actloom_auditor') THEN
		CREATE ROLE actloom_auditor NOLOGIN;
	END IF;
END
$roles$;

COMMENT ON SCHEMA actloom IS 'actloom: tenancy, roles and the actor context';
REVOKE ALL ON SCHEMA actloom FROM PUBLIC;
GRANT USAGE ON SCHEMA actloom TO PUBLIC;

--------------------------------------------------------------------------
-- Types
--------------------------------------------------------------------------
CREATE TYPE actloom.company_role AS ENUM ('member', 'admin', 'executive', 'owner');
COMMENT ON TYPE actloom.company_role IS
	'role of a user in a company, ranked member < admin < executive < owner';

-- A deliberately plain address check: one "@", no whitespace or control
-- characters, a dot in the domain, at most 64 characters before the "@" and
-- 254 in all (RFC 5321), lower case.
CREATE FUNCTION actloom.valid_email(address text)
RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN address ~ '^[^@[:space:][:cntrl:]]{1,64}@[^@[:space:][:cntrl:]]+\.[^@[:space:][:cntrl:].]+$'
	AND pg_catalog.length(address) <= 254
	AND address = pg_catalog.lower(address);
COMMENT ON FUNCTION actloom.valid_email(text) IS 'whether a text is an acceptable, lower-cased email address';

CREATE DOMAIN actloom.email AS text
	CONSTRAINT email_format CHECK (actloom.valid_email(VALUE));
COMMENT ON DOMAIN actloom.email IS 'a lower-cased email address';

--------------------------------------------------------------------------
-- Tables
--------------------------------------------------------------------------
CREATE TABLE actloom.users (
	id			uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	email		actloom.email NOT NULL UNIQUE,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	disabled_at timestamptz,
	password_hash text,			-- argon2id PHC string, or an imported bcrypt hash
	password_changed_at timestamptz
);
COMMENT ON TABLE actloom.users IS 'people who can act; read through functions, not directly';

CREATE TABLE actloom.companies (
	id			uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	name		text NOT NULL CHECK (pg_catalog.length(pg_catalog.btrim(name)) BETWEEN 1 AND 200),
	created_by	uuid REFERENCES actloom.users (id),
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE actloom.companies IS 'tenants';

CREATE TABLE actloom.memberships (
	company_id	uuid NOT NULL REFERENCES actloom.companies (id) ON DELETE CASCADE,
	user_id		uuid NOT NULL REFERENCES actloom.users (id) ON DELETE CASCADE,
	role		actloom.company_role NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (company_id, user_id)
);
CREATE INDEX memberships_user_idx ON actloom.memberships (user_id);
COMMENT ON TABLE actloom.memberships IS 'who belongs to which company, with which role';

CREATE TABLE actloom.permissions (
	action		text PRIMARY KEY CHECK (action ~ '^[a-z][a-z_]*\.[a-z][a-z_]*$'),
	min_role	actloom.company_role NOT NULL,
	description text NOT NULL
);
COMMENT ON TABLE actloom.permissions IS
	'the least role each action needs; a DBA may change min_role or add actions';

INSERT INTO actloom.permissions (action, min_role, description) VALUES
	('company.read',		 'member',	  'see the company and its settings'),
	('company.update',		 'executive', 'rename the company, change its settings'),
	('company.delete',		 'owner',	  'delete the company and everything it owns'),
	('members.read',		 'member',	  'list the members and their roles'),
	('members.invite',		 'admin',	  'add a user to the company'),
	('members.set_role',	 'admin',	  'change the role of a member'),
	('members.remove',		 'admin',	  'remove a member from the company'),
	('api_keys.read',		 'admin',	  'list API keys (never their secrets)'),
	('api_keys.manage',		 'admin',	  'create and revoke API keys'),
	('integrations.manage',	 'admin',	  'store and delete integration secrets'),
	('sso.manage',			 'owner',	  'configure enterprise single sign-on'),
	('webhooks.manage',		 'admin',	  'configure outbound webhooks'),
	('audit.read',			 'executive', 'read and verify the company''s audit chain'),
	('reports.read',		 'member',	  'read reports'),
	('reports.generate',	 'member',	  'generate reports'),
	('classify.run',		 'member',	  'run classification');

-- Tenant data must survive pg_dump; the seeded permissions are re-created by
-- CREATE EXTENSION.
SELECT pg_catalog.pg_extension_config_dump('actloom.users', '');
SELECT pg_catalog.pg_extension_config_dump('actloom.companies', '');
SELECT pg_catalog.pg_extension_config_dump('actloom.memberships', '');

-- Nothing is readable or writable directly except what is granted here:
-- the gateway may look users up by id and email, never more of the row.
REVOKE ALL ON actloom.users, actloom.companies, actloom.memberships,
	actloom.permissions FROM PUBLIC;
GRANT SELECT (id, email, created_at) ON actloom.users TO actloom_gateway;
GRANT SELECT ON actloom.permissions TO actloom_gateway, actloom_auditor;

-- The actor context and authorization

--------------------------------------------------------------------------
-- The actor context (context.c)
--------------------------------------------------------------------------
CREATE FUNCTION actloom.act_as("user" uuid, company uuid DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'act_as'
LANGUAGE C VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom.act_as(uuid, uuid) IS
	'make a user the actor of this transaction, in a company they belong to; gateway only';

CREATE FUNCTION actloom.current_user_id()
RETURNS uuid
AS 'MODULE_PATHNAME', 'current_user_id'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom.current_user_id() IS 'the acting user, or NULL';

CREATE FUNCTION actloom.current_company()
RETURNS uuid
AS 'MODULE_PATHNAME', 'current_company'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom.current_company() IS
	'the company the actor acts in, or NULL; row level security keys on it';

CREATE FUNCTION actloom.current_api_key()
RETURNS text
AS 'MODULE_PATHNAME', 'current_api_key'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom.current_api_key() IS 'the id of the acting API key, or NULL';

CREATE FUNCTION actloom.current_actor_kind()
RETURNS text
AS 'MODULE_PATHNAME', 'current_actor_kind'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom.current_actor_kind() IS
	'who acts: ''user'', ''api_key'', or NULL when nobody acts';

CREATE FUNCTION actloom.current_role()
RETURNS actloom.company_role
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
	SELECT m.role FROM actloom.memberships m
	WHERE m.company_id = actloom.current_company()
	  AND m.user_id = actloom.current_user_id()
$$;
COMMENT ON FUNCTION actloom.current_role() IS
	'the actor''s role in the company it acts in, as it is now, or NULL';

--------------------------------------------------------------------------
-- Authorization (roles.c)
--------------------------------------------------------------------------
CREATE FUNCTION actloom.authorize(company uuid, action text)
RETURNS void
AS 'MODULE_PATHNAME', 'authorize'
LANGUAGE C VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom.authorize(uuid, text) IS
	'raise 42501 unless the current actor may do the action in the company';

CREATE FUNCTION actloom.can(company uuid, action text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'can'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom.can(uuid, text) IS
	'whether the current actor may do the action in the company';

CREATE FUNCTION actloom.require_role(company uuid, min_role actloom.company_role)
RETURNS void
AS 'MODULE_PATHNAME', 'require_role'
LANGUAGE C VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom.require_role(uuid, actloom.company_role) IS
	'raise 42501 unless the current actor holds at least min_role in the company';

GRANT EXECUTE ON FUNCTION
	actloom.act_as(uuid, uuid),
	actloom.current_role(),
	actloom.authorize(uuid, text),
	actloom.can(uuid, text),
	actloom.require_role(uuid, actloom.company_role)
	TO actloom_gateway;
--------------------------------------------------------------------------
-- The audit trail (audit.c)
--
-- One hash chain per company (the chain is the company id) and one system
-- chain (the nil uuid).  Entries are appended by a C trigger that numbers
-- them without gaps and links each to its predecessor:
--
--   hash = sha256(prev_hash || canonical bytes of the entry)
--
-- The canonical encoding uses only built-in functions, so an auditor can
-- recompute every hash in plain SQL (see actloom.audit_canonical and the
-- README).  The trail is append-only for every role, owner included.
--------------------------------------------------------------------------

CREATE FUNCTION actloom.system_chain()
RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '00000000-0000-0000-0000-000000000000'::uuid;
COMMENT ON FUNCTION actloom.system_chain() IS
	'the chain of entries that belong to no company: the nil uuid';

CREATE FUNCTION actloom.audit_genesis()
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
COMMENT ON FUNCTION actloom.audit_genesis() IS
	'the previous hash of the first entry of every chain: 32 zero bytes';

CREATE TABLE actloom.audit_log (
	chain		  uuid NOT NULL,
	seq			  bigint NOT NULL,
	at			  timestamptz NOT NULL,
	actor_user	  uuid,
	actor_api_key uuid,
	actor_session uuid,
	client_addr	  inet,
	action		  text NOT NULL,
	target_type	  text,
	target_id	  text,
	detail		  jsonb NOT NULL,
	prev_hash	  bytea NOT NULL,
	hash		  bytea NOT NULL,
	PRIMARY KEY (chain, seq)
);
COMMENT ON TABLE actloom.audit_log IS
	'the hash-chained audit trail; append-only, one chain per company plus the system chain';

CREATE TABLE actloom.audit_checkpoints (
	chain		uuid NOT NULL,
	seq			bigint NOT NULL,
	hash		bytea NOT NULL,
	at			timestamptz NOT NULL,
	signature	bytea NOT NULL,
	public_key	bytea NOT NULL,
	PRIMARY KEY (chain, at, seq)
);
COMMENT ON TABLE actloom.audit_checkpoints IS
	'signed chain heads; an auditor keeps copies elsewhere to detect truncation and rewrites';

SELECT pg_catalog.pg_extension_config_dump('actloom.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('actloom.audit_checkpoints', '');

CREATE FUNCTION actloom.audit_append()
RETURNS trigger
AS 'MODULE_PATHNAME', 'audit_append'
LANGUAGE C;
COMMENT ON FUNCTION actloom.audit_append() IS
	'trigger: number, time-stamp, attribute and chain a new audit entry';

CREATE FUNCTION actloom.audit_refuse_change()
RETURNS trigger
AS 'MODULE_PATHNAME', 'audit_refuse_change'
LANGUAGE C;
COMMENT ON FUNCTION actloom.audit_refuse_change() IS
	'trigger: refuse UPDATE, DELETE and TRUNCATE of the audit trail';

CREATE TRIGGER audit_append BEFORE INSERT ON actloom.audit_log
	FOR EACH ROW EXECUTE FUNCTION actloom.audit_append();
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON actloom.audit_log
	FOR EACH ROW EXECUTE FUNCTION actloom.audit_refuse_change();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON actloom.audit_log
	FOR EACH STATEMENT EXECUTE FUNCTION actloom.audit_refuse_change();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON actloom.audit_checkpoints
	FOR EACH ROW EXECUTE FUNCTION actloom.audit_refuse_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON actloom.audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION actloom.audit_refuse_change();
-- Fire in replica mode too: session_replication_role does not switch them off.
ALTER TABLE actloom.audit_log ENABLE ALWAYS TRIGGER audit_append;
ALTER TABLE actloom.audit_log ENABLE ALWAYS TRIGGER audit_append_only;
ALTER TABLE actloom.audit_log ENABLE ALWAYS TRIGGER audit_no_truncate;
ALTER TABLE actloom.audit_checkpoints ENABLE ALWAYS TRIGGER checkpoints_append_only;
ALTER TABLE actloom.audit_checkpoints ENABLE ALWAYS TRIGGER checkpoints_no_truncate;

REVOKE ALL ON actloom.audit_log, actloom.audit_checkpoints FROM PUBLIC;
GRANT SELECT ON actloom.audit_log, actloom.audit_checkpoints TO actloom_auditor;

-- The canonical bytes of an entry, for auditors: built from built-in
-- functions only, independent of every session setting.  Each field is
-- length-prefixed (int4, big-endian; -1 for NULL), after a 2-byte format
-- version.  The C trigger produces the same bytes.
CREATE FUNCTION actloom.audit_canonical(e actloom.audit_log)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN int2send(1::int2)
	|| coalesce(int4send(length(uuid_send(e.chain))) || uuid_send(e.chain), int4send(-1))
	|| coalesce(int4send(length(int8send(e.seq))) || int8send(e.seq), int4send(-1))
	|| coalesce(int4send(length(timestamptz_send(e.at))) || timestamptz_send(e.at), int4send(-1))
	|| coalesce(int4send(length(uuid_send(e.actor_user))) || uuid_send(e.actor_user), int4send(-1))
	|| coalesce(int4send(length(uuid_send(e.actor_api_key))) || uuid_send(e.actor_api_key), int4send(-1))
	|| coalesce(int4send(length(uuid_send(e.actor_session))) || uuid_send(e.actor_session), int4send(-1))
	|| coalesce(int4send(length(inet_send(e.client_addr))) || inet_send(e.client_addr), int4send(-1))
	|| coalesce(int4send(length(convert_to(e.action, 'UTF8'))) || convert_to(e.action, 'UTF8'), int4send(-1))
	|| coalesce(int4send(length(convert_to(e.target_type, 'UTF8'))) || convert_to(e.target_type, 'UTF8'), int4send(-1))
	|| coalesce(int4send(length(convert_to(e.target_id, 'UTF8'))) || convert_to(e.target_id, 'UTF8'), int4send(-1))
	|| coalesce(int4send(length(convert_to(e.detail::text, 'UTF8'))) || convert_to(e.detail::text, 'UTF8'), int4send(-1));
COMMENT ON FUNCTION actloom.audit_canonical(actloom.audit_log) IS
	'the canonical bytes of an audit entry, in plain SQL (format version 1)';

-- Append to a chain with the current actor.  Internal: the extension's own
-- functions call it; applications call actloom.audit().  The trigger
-- validates the entry: an action like "reports.generate" (at most 100
-- characters), a target type of at most 100 and an id of at most 200
-- characters, a detail that is a JSON object of at most 16384 bytes as text.
CREATE FUNCTION actloom._audit_to(chain uuid, action text, target_type text,
								  target_id text, detail jsonb)
RETURNS bigint
AS 'MODULE_PATHNAME', 'audit_to'
LANGUAGE C VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom._audit_to(uuid, text, text, text, jsonb) IS
	'internal: append an entry to a chain with the current actor';

CREATE FUNCTION actloom.audit(action text, target_type text DEFAULT NULL,
							  target_id text DEFAULT NULL, detail jsonb DEFAULT '{}')
RETURNS bigint
LANGUAGE sql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
RETURN actloom._audit_to(coalesce(actloom.current_company(), actloom.system_chain()),
						 action, target_type, target_id, detail);
COMMENT ON FUNCTION actloom.audit(text, text, text, jsonb) IS
	'append to the acting company''s chain (the system chain when no company acts); returns the sequence number';

CREATE FUNCTION actloom.set_client_addr(addr inet)
RETURNS void
AS 'MODULE_PATHNAME', 'set_client_addr'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom.set_client_addr(inet) IS
	'record the end client''s address for this transaction''s audit entries; gateway only';

CREATE FUNCTION actloom.audit_verify(chain uuid DEFAULT NULL)
RETURNS TABLE (chain uuid, entries bigint, ok boolean, first_bad_seq bigint, reason text)
AS 'MODULE_PATHNAME', 'audit_verify'
LANGUAGE C STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom.audit_verify(uuid) IS
	'verify one chain, or all: entries, verdict, first bad sequence number and why';

CREATE FUNCTION actloom.audit_checkpoint(chain uuid)
RETURNS TABLE (chain uuid, seq bigint, hash bytea, at timestamptz, signature bytea)
AS 'MODULE_PATHNAME', 'audit_checkpoint'
LANGUAGE C VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom.audit_checkpoint(uuid) IS
	'sign and record the head of a chain with the Ed25519 audit signing key';

CREATE FUNCTION actloom.audit_checkpoint_message(chain uuid, seq bigint, hash bytea, at timestamptz)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN convert_to('actloom-audit-checkpoint-v1', 'UTF8') || uuid_send(chain) || int8send(seq)
	|| hash || timestamptz_send(at);
COMMENT ON FUNCTION actloom.audit_checkpoint_message(uuid, bigint, bytea, timestamptz) IS
	'the bytes a checkpoint signature covers';

CREATE FUNCTION actloom.audit_public_key()
RETURNS text
AS 'MODULE_PATHNAME', 'audit_public_key'
LANGUAGE C STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom.audit_public_key() IS
	'the public key of the audit signing key, as PEM';

-- Company members with audit.read reach their own chain through these.
CREATE FUNCTION actloom.company_audit(company uuid, after_seq bigint DEFAULT 0,
									  max_entries integer DEFAULT 100)
RETURNS SETOF actloom.audit_log
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'audit.read');
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
COMMENT ON FUNCTION actloom.company_audit(uuid, bigint, integer) IS
	'the company''s chain after a sequence number, oldest first (permission audit.read)';

CREATE FUNCTION actloom.company_audit_verify(company uuid)
RETURNS TABLE (chain uuid, entries bigint, ok boolean, first_bad_seq bigint, reason text)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'audit.read');
	RETURN QUERY SELECT * FROM actloom.audit_verify(company);
END
$$;
COMMENT ON FUNCTION actloom.company_audit_verify(uuid) IS
	'verify the company''s chain (permission audit.read)';

CREATE FUNCTION actloom.company_audit_checkpoint(company uuid)
RETURNS TABLE (chain uuid, seq bigint, hash bytea, at timestamptz, signature bytea)
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'audit.read');
	RETURN QUERY SELECT * FROM actloom.audit_checkpoint(company);
END
$$;
COMMENT ON FUNCTION actloom.company_audit_checkpoint(uuid) IS
	'a signed checkpoint of the company''s chain (permission audit.read)';

-- The public key is public: the gateway hands it out with each checkpoint.
GRANT EXECUTE ON FUNCTION
	actloom.audit(text, text, text, jsonb),
	actloom.set_client_addr(inet),
	actloom.company_audit(uuid, bigint, integer),
	actloom.company_audit_verify(uuid),
	actloom.company_audit_checkpoint(uuid),
	actloom.audit_public_key()
	TO actloom_gateway;
GRANT EXECUTE ON FUNCTION
	actloom.audit_verify(uuid),
	actloom.audit_checkpoint(uuid),
	actloom.audit_public_key()
	TO actloom_auditor;
--------------------------------------------------------------------------
-- Users, companies and memberships
--------------------------------------------------------------------------

-- Raise 22004 for a NULL argument; shared by the functions below.
CREATE FUNCTION actloom._require_arg(val anyelement, name text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	IF val IS NULL THEN
		RAISE EXCEPTION 'argument "%" must not be null', name
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
END
$$;
COMMENT ON FUNCTION actloom._require_arg(anyelement, text) IS 'internal: raise 22004 for a NULL argument';

-- The acting user, or 42501 when nobody acts.
CREATE FUNCTION actloom._actor_user()
RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	u uuid := actloom.current_user_id();
BEGIN
	IF u IS NULL THEN
		RAISE EXCEPTION 'no user acts in this transaction'
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'Call actloom.act_as() first, in the same transaction.';
	END IF;
	RETURN u;
END
$$;
COMMENT ON FUNCTION actloom._actor_user() IS 'internal: the acting user, or 42501';

CREATE FUNCTION actloom.create_user(email text, password text DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	normalized text;
	new_id uuid;
BEGIN
	PERFORM actloom._require_arg(email, 'email');
	normalized := lower(email);
	IF NOT actloom.valid_email(normalized) THEN
		RAISE EXCEPTION 'invalid email address'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'An address has one "@", a dot in its domain, no spaces, and at most 254 characters.';
	END IF;
	IF EXISTS (SELECT FROM actloom.users u WHERE u.email = normalized::actloom.email) THEN
		RAISE EXCEPTION 'a user with this email address already exists'
			USING ERRCODE = 'unique_violation';
	END IF;
	-- Without a password the user signs in only through OAuth or SSO.
	IF password IS NOT NULL THEN
		PERFORM actloom._password_check_policy(normalized, password);
	END IF;
	INSERT INTO actloom.users (email, password_hash, password_changed_at)
		VALUES (normalized, actloom._password_hash(password),
				CASE WHEN password IS NOT NULL THEN now() END)
		RETURNING id INTO new_id;
	PERFORM actloom._audit_to(actloom.system_chain(), 'user.create', 'user', new_id::text,
							  jsonb_build_object('email', normalized)
							  || CASE WHEN password IS NOT NULL THEN '{"password": true}'::jsonb
									  ELSE '{}'::jsonb END);
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION actloom.create_user(text, text) IS
	'create a user, with a password or without (OAuth and SSO only); the email is stored lower-cased';

CREATE FUNCTION actloom.create_company(name text)
RETURNS uuid
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	creator uuid := actloom._actor_user();
	new_id uuid;
BEGIN
	PERFORM actloom._require_arg(name, 'name');
	IF length(btrim(name)) NOT BETWEEN 1 AND 200 THEN
		RAISE EXCEPTION 'invalid company name'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A company name has 1 to 200 characters besides surrounding spaces.';
	END IF;
	INSERT INTO actloom.companies (name, created_by) VALUES (btrim(name), creator)
		RETURNING id INTO new_id;
	INSERT INTO actloom.memberships (company_id, user_id, role) VALUES (new_id, creator, 'owner');
	PERFORM actloom._audit_to(new_id, 'company.create', 'company', new_id::text,
							  jsonb_build_object('name', btrim(name), 'owner', creator));
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION actloom.create_company(text) IS
	'create a company; the acting user becomes its owner';

-- Lock the company row so that membership changes of one company run one at
-- a time: two owners demoting each other at once cannot leave it ownerless.
-- Returns the acting user's current role.  Raises 42501 unless the actor may
-- do the action; an unknown company is indistinguishable from a foreign one.
CREATE FUNCTION actloom._membership_change(company uuid, action text)
RETURNS actloom.company_role
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	actor_role actloom.company_role;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom._actor_user();
	PERFORM actloom.authorize(company, action);
	PERFORM 1 FROM actloom.companies c WHERE c.id = company FOR UPDATE;
	SELECT m.role INTO actor_role FROM actloom.memberships m
	 WHERE m.company_id = company AND m.user_id = actloom.current_user_id();
	IF actor_role IS NULL THEN
		RAISE EXCEPTION 'permission denied for action "%"', action
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'The actor is not a member of the company.';
	END IF;
	RETURN actor_role;
END
$$;
COMMENT ON FUNCTION actloom._membership_change(uuid, text) IS
	'internal: authorize a membership change and serialize it per company';

-- Nobody grants, or touches a member holding, a role above their own.
CREATE FUNCTION actloom._check_ceiling(actor_role actloom.company_role,
									   role actloom.company_role, what text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	IF role > actor_role THEN
		RAISE EXCEPTION 'cannot % role "%"', what, role
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('The actor has role "%s"; nobody acts on a role above their own.', actor_role);
	END IF;
END
$$;
COMMENT ON FUNCTION actloom._check_ceiling(actloom.company_role, actloom.company_role, text) IS
	'internal: refuse acting on a role above the actor''s own';

-- The last owner of a company stays an owner.
CREATE FUNCTION actloom._check_last_owner(company uuid, user_id uuid)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	IF (SELECT count(*) FROM actloom.memberships m
		 WHERE m.company_id = _check_last_owner.company AND m.role = 'owner'
		   AND m.user_id <> _check_last_owner.user_id) = 0 THEN
		RAISE EXCEPTION 'cannot remove or demote the last owner of a company'
			USING ERRCODE = 'check_violation',
				  HINT = 'Make another member an owner first.';
	END IF;
END
$$;
COMMENT ON FUNCTION actloom._check_last_owner(uuid, uuid) IS
	'internal: refuse leaving a company without an owner';

CREATE FUNCTION actloom.add_member(company uuid, user_id uuid,
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
END
$$;
COMMENT ON FUNCTION actloom.add_member(uuid, uuid, actloom.company_role) IS
	'add an existing user to a company (permission members.invite)';

-- The role of a member named as the target of a change; P0002 for a
-- non-member.
CREATE FUNCTION actloom._member_role(company uuid, user_id uuid)
RETURNS actloom.company_role
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	found_role actloom.company_role;
BEGIN
	SELECT m.role INTO found_role FROM actloom.memberships m
	 WHERE m.company_id = _member_role.company AND m.user_id = _member_role.user_id;
	IF found_role IS NULL THEN
		RAISE EXCEPTION 'user is not a member of the company' USING ERRCODE = 'no_data_found';
	END IF;
	RETURN found_role;
END
$$;
COMMENT ON FUNCTION actloom._member_role(uuid, uuid) IS
	'internal: the role of a target member, or P0002';

CREATE FUNCTION actloom.set_role(company uuid, user_id uuid, role actloom.company_role)
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
END
$$;
COMMENT ON FUNCTION actloom.set_role(uuid, uuid, actloom.company_role) IS
	'change the role of a member (permission members.set_role)';

CREATE FUNCTION actloom.remove_member(company uuid, user_id uuid)
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
END
$$;
COMMENT ON FUNCTION actloom.remove_member(uuid, uuid) IS
	'remove a member (permission members.remove; any member may leave)';

CREATE FUNCTION actloom.members(company uuid)
RETURNS TABLE (user_id uuid, email text, role actloom.company_role, joined_at timestamptz)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'members.read');
	RETURN QUERY
		SELECT m.user_id, u.email::text, m.role, m.created_at
		  FROM actloom.memberships m JOIN actloom.users u ON u.id = m.user_id
		 WHERE m.company_id = members.company
		 ORDER BY m.role DESC, u.email;
END
$$;
COMMENT ON FUNCTION actloom.members(uuid) IS 'the members of a company (permission members.read)';

GRANT EXECUTE ON FUNCTION
	actloom.create_user(text, text),
	actloom.create_company(text),
	actloom.add_member(uuid, uuid, actloom.company_role),
	actloom.set_role(uuid, uuid, actloom.company_role),
	actloom.remove_member(uuid, uuid),
	actloom.members(uuid)
	TO actloom_gateway;
--------------------------------------------------------------------------
-- Tenancy (tenancy.c)
--------------------------------------------------------------------------
CREATE FUNCTION actloom.refuse_tenant_move()
RETURNS trigger
AS 'MODULE_PATHNAME', 'refuse_tenant_move'
LANGUAGE C;
COMMENT ON FUNCTION actloom.refuse_tenant_move() IS
	'trigger: refuse an update that changes a row''s tenant key';

-- protect_table runs with its caller's rights (ALTER TABLE checks ownership).
-- It audits through _audit_protect_table (C), which checks that the caller
-- owns the table and then runs this function as the owner of the audit
-- trail.  It only records what is true: the table carries the tenant guard
-- on that column.
CREATE FUNCTION actloom._audit_protect_table_as_owner(tbl regclass, company_column name)
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
	PERFORM actloom._audit_to(actloom.system_chain(), 'table.protect', 'table', tbl::text,
							  jsonb_build_object('column', company_column));
END
$$;
COMMENT ON FUNCTION actloom._audit_protect_table_as_owner(regclass, name) IS
	'internal: audit that a table is protected';

CREATE FUNCTION actloom._audit_protect_table(tbl regclass, company_column name)
RETURNS void
AS 'MODULE_PATHNAME', 'audit_protect_table'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom._audit_protect_table(regclass, name) IS
	'internal: audit protect_table for the table''s owner';

CREATE FUNCTION actloom.protect_table(tbl regclass, company_column name DEFAULT 'company_id')
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, actloom, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
	col_type oid;
	cmd text;
BEGIN
	PERFORM actloom._require_arg(tbl, 'tbl');
	PERFORM actloom._require_arg(company_column, 'company_column');
	IF (SELECT c.relkind FROM pg_class c WHERE c.oid = tbl) NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = 'wrong_object_type';
	END IF;
	SELECT a.atttypid INTO col_type FROM pg_attribute a
	 WHERE a.attrelid = tbl AND a.attname = company_column AND a.attnum > 0 AND NOT a.attisdropped;
	IF col_type IS NULL THEN
		RAISE EXCEPTION 'column "%" of table "%" does not exist', company_column, tbl
			USING ERRCODE = 'undefined_column';
	ELSIF col_type <> 'uuid'::regtype THEN
		RAISE EXCEPTION 'column "%" of table "%" must be of type uuid', company_column, tbl
			USING ERRCODE = 'datatype_mismatch';
	END IF;

	-- ALTER TABLE checks that the caller owns the table.
	EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
	EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);

	-- Permissive policies let the actor's company in; the restrictive guard
	-- keeps any other permissive policy of the application from widening it.
	FOREACH cmd IN ARRAY ARRAY['select', 'insert', 'update', 'delete', 'guard'] LOOP
		EXECUTE format('DROP POLICY IF EXISTS %I ON %s', 'actloom_tenant_' || cmd, tbl);
	END LOOP;
	EXECUTE format('CREATE POLICY actloom_tenant_select ON %s FOR SELECT '
				   'USING (%I = actloom.current_company())', tbl, company_column);
	EXECUTE format('CREATE POLICY actloom_tenant_insert ON %s FOR INSERT '
				   'WITH CHECK (%I = actloom.current_company())', tbl, company_column);
	EXECUTE format('CREATE POLICY actloom_tenant_update ON %1$s FOR UPDATE '
				   'USING (%2$I = actloom.current_company()) '
				   'WITH CHECK (%2$I = actloom.current_company())', tbl, company_column);
	EXECUTE format('CREATE POLICY actloom_tenant_delete ON %s FOR DELETE '
				   'USING (%I = actloom.current_company())', tbl, company_column);
	EXECUTE format('CREATE POLICY actloom_tenant_guard ON %1$s AS RESTRICTIVE FOR ALL '
				   'USING (%2$I = actloom.current_company()) '
				   'WITH CHECK (%2$I = actloom.current_company())', tbl, company_column);

	EXECUTE format('DROP TRIGGER IF EXISTS actloom_tenant_move ON %s', tbl);
	EXECUTE format('CREATE TRIGGER actloom_tenant_move BEFORE UPDATE ON %1$s FOR EACH ROW '
				   'WHEN (OLD.%2$I IS DISTINCT FROM NEW.%2$I) '
				   'EXECUTE FUNCTION actloom.refuse_tenant_move(%3$L)',
				   tbl, company_column, company_column);

	PERFORM actloom._audit_protect_table(tbl, company_column);

	IF NOT EXISTS (
		SELECT FROM pg_index i JOIN pg_attribute a
			ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
		 WHERE i.indrelid = tbl AND a.attname = company_column) THEN
		RAISE WARNING 'column "%" of table "%" has no index', company_column, tbl
			USING HINT = format('Every query filters on it: CREATE INDEX ON %s (%I).', tbl, company_column);
	END IF;
END
$$;
COMMENT ON FUNCTION actloom.protect_table(regclass, name) IS
	'confine a table to the actor''s company with forced row level security; idempotent';

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
		RAISE EXCEPTION 'unknown scope "%"', scope
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
		RAISE EXCEPTION 'API key "%" does not exist', key_id USING ERRCODE = 'no_data_found';
	END IF;
	UPDATE actloom.api_keys k
	   SET revoked_at = now(), revoked_by = actloom.current_user_id(),
		   revoked_by_key = actloom.current_api_key()
	 WHERE k.key_id = api_key_revoke.key_id AND k.revoked_at IS NULL;
	IF FOUND THEN
		PERFORM actloom._audit_to(company, 'api_key.revoke', 'api_key', key_id, '{}');
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
--------------------------------------------------------------------------
-- Passwords (password.c)
--------------------------------------------------------------------------

-- Internal C functions, granted to nobody.
CREATE FUNCTION actloom._password_hash(password text)
RETURNS text
AS 'MODULE_PATHNAME', 'password_hash'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION actloom._password_hash(text) IS
	'internal: a new argon2id PHC hash at the current cost; NULL for NULL';

CREATE FUNCTION actloom._password_verify(password text, hash text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'password_verify'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION actloom._password_verify(text, text) IS
	'internal: whether a password matches a stored hash; a dummy check when the hash is NULL; NULL for an over-long password';

CREATE FUNCTION actloom._password_needs_rehash(hash text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'password_needs_rehash'
LANGUAGE C STABLE;
COMMENT ON FUNCTION actloom._password_needs_rehash(text) IS
	'internal: whether a stored hash is bcrypt or weaker than the current argon2id cost';

CREATE FUNCTION actloom._password_hash_scheme(hash text)
RETURNS text
AS 'MODULE_PATHNAME', 'password_hash_scheme'
LANGUAGE C IMMUTABLE;
COMMENT ON FUNCTION actloom._password_hash_scheme(text) IS
	'internal: ''argon2id'' or ''bcrypt'' for an importable hash; 22023 otherwise';

CREATE FUNCTION actloom._password_check_policy(email text, password text)
RETURNS void
AS 'MODULE_PATHNAME', 'password_check_policy'
LANGUAGE C STABLE;
COMMENT ON FUNCTION actloom._password_check_policy(text, text) IS
	'internal: raise 22023 when a new password breaks the policy';

-- Who may change a user's password: with a user acting, only that user;
-- with nobody acting, the gateway itself (a reset flow it has verified); an
-- API key never.  Returns the user's email; P0002 for an unknown user.
CREATE FUNCTION actloom._password_target(target uuid)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	address text;
BEGIN
	IF actloom.current_actor_kind() = 'api_key' THEN
		RAISE EXCEPTION 'permission denied to change a password'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'An API key acts for a company, not for a person.';
	END IF;
	IF actloom.current_user_id() IS DISTINCT FROM target AND actloom.current_user_id() IS NOT NULL THEN
		RAISE EXCEPTION 'permission denied to change a password'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'A user changes their own password only.';
	END IF;
	SELECT u.email INTO address FROM actloom.users u WHERE u.id = target;
	IF address IS NULL THEN
		RAISE EXCEPTION 'user does not exist' USING ERRCODE = 'no_data_found';
	END IF;
	RETURN address;
END
$$;
COMMENT ON FUNCTION actloom._password_target(uuid) IS
	'internal: check who may change a user''s password; returns the email';

CREATE FUNCTION actloom.set_password("user" uuid, password text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	address text;
BEGIN
	PERFORM actloom._require_arg("user", 'user');
	PERFORM actloom._require_arg(password, 'password');
	address := actloom._password_target("user");
	PERFORM actloom._password_check_policy(address, password);
	UPDATE actloom.users u
	   SET password_hash = actloom._password_hash(password), password_changed_at = now()
	 WHERE u.id = set_password."user";
	PERFORM actloom._audit_to(actloom.system_chain(), 'user.password_set', 'user',
							  "user"::text, '{}');
END
$$;
COMMENT ON FUNCTION actloom.set_password(uuid, text) IS
	'set a user''s password, hashed with argon2id; the acting user''s own only';

CREATE FUNCTION actloom.import_password_hash("user" uuid, hash text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	scheme text;
BEGIN
	PERFORM actloom._require_arg("user", 'user');
	PERFORM actloom._require_arg(hash, 'hash');
	PERFORM actloom._password_target("user");
	scheme := actloom._password_hash_scheme(hash);
	UPDATE actloom.users u SET password_hash = hash, password_changed_at = now()
	 WHERE u.id = import_password_hash."user";
	PERFORM actloom._audit_to(actloom.system_chain(), 'user.password_import', 'user',
							  "user"::text, jsonb_build_object('scheme', scheme));
END
$$;
COMMENT ON FUNCTION actloom.import_password_hash(uuid, text) IS
	'store a bcrypt or argon2id hash made elsewhere (migrations); re-hashed at the next sign-in';

CREATE FUNCTION actloom.verify_password(email text, password text)
RETURNS uuid
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	found_id uuid;
	stored text;
	disabled boolean;
	ok boolean;
	reason text;
	rehash boolean := false;
BEGIN
	PERFORM actloom._require_arg(email, 'email');
	PERFORM actloom._require_arg(password, 'password');
	SELECT u.id, u.password_hash, u.disabled_at IS NOT NULL INTO found_id, stored, disabled
	  FROM actloom.users u WHERE u.email = lower(verify_password.email);

	-- One argon2id computation on every path that looks a user up, so that
	-- the time taken does not tell whether the address has an account.
	ok := actloom._password_verify(password, stored);
	reason := CASE WHEN ok IS NULL THEN 'password too long'
				   WHEN found_id IS NULL THEN 'unknown email'
				   WHEN stored IS NULL THEN 'no password'
				   WHEN NOT ok THEN 'wrong password'
				   WHEN disabled THEN 'disabled' END;

	IF reason IS NOT NULL THEN
		-- No password material, and no address that matches no account (it
		-- may be a password typed into the wrong field).
		PERFORM actloom._audit_to(actloom.system_chain(), 'user.sign_in_failed', 'user',
								  found_id::text, jsonb_build_object('reason', reason));
		RETURN NULL;
	END IF;

	IF actloom._password_needs_rehash(stored) THEN
		UPDATE actloom.users u SET password_hash = actloom._password_hash(password)
		 WHERE u.id = found_id;
		rehash := true;
	END IF;
	PERFORM actloom._audit_to(actloom.system_chain(), 'user.sign_in', 'user', found_id::text,
							  jsonb_build_object('method', 'password', 'rehashed', rehash));
	RETURN found_id;
END
$$;
COMMENT ON FUNCTION actloom.verify_password(text, text) IS
	'the user id when the password is right, NULL otherwise, in about the same time either way';

GRANT EXECUTE ON FUNCTION
	actloom.set_password(uuid, text),
	actloom.import_password_hash(uuid, text),
	actloom.verify_password(text, text)
	TO actloom_gateway;
--------------------------------------------------------------------------
-- The endpoint registry: SQL functions the HTTP shim serves as versioned
-- machine endpoints, /v{version}/{path}, behind API keys.
--
-- The shim loads the registry through endpoint_registry() and reloads it
-- when expose or unexpose NOTIFY the channel "actloom_endpoints".  The
-- schemas are a documented subset of JSON Schema (README.md); expose
-- refuses anything outside it, so the shim never meets a rule it does not
-- understand.
--------------------------------------------------------------------------
CREATE TABLE actloom.endpoints (
	version			integer NOT NULL CHECK (version BETWEEN 1 AND 999),
	method			text NOT NULL CHECK (method IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE')),
	path			text NOT NULL
		CHECK (path ~ '^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$' AND length(path) <= 200),
	fn				regprocedure NOT NULL,
	required_scope	text NOT NULL REFERENCES actloom.permissions (action) ON UPDATE CASCADE,
	rate_class		text NOT NULL DEFAULT 'api' CHECK (rate_class ~ '^[a-z0-9_]{1,31}$'),
	body_schema		jsonb,
	query_schema	jsonb,
	exposed_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (version, method, path)
);
COMMENT ON TABLE actloom.endpoints IS
	'SQL functions served by the HTTP shim as /v{version}/{path}; change with expose and unexpose';
SELECT pg_catalog.pg_extension_config_dump('actloom.endpoints', '');

-- Raise 22023 unless a schema is within the supported subset; "at" is the
-- JSON pointer of the schema inside the argument, for the message.
CREATE FUNCTION actloom._check_schema(schema jsonb, for_query boolean, at text, depth integer DEFAULT 0)
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
		SELECT format('unsupported keyword "%s"', left(key, 64)) INTO problem
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
			SELECT format('required property "%s" is not in "properties"', left(r, 64)) INTO problem
			  FROM jsonb_array_elements_text(schema -> 'required') r
			 WHERE NOT coalesce(schema -> 'properties' ? r, false) LIMIT 1;
		END IF;
	END IF;
	IF problem IS NULL AND for_query
	   AND ((schema -> 'type') IS DISTINCT FROM '"object"') THEN
		problem := 'a query schema must be of type object';
	END IF;
	IF problem IS NOT NULL THEN
		RAISE EXCEPTION 'invalid schema at "%": %', at, problem
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The supported subset of JSON Schema is listed in the actloom README.';
	END IF;
	FOR k, v IN SELECT key, value FROM jsonb_each(coalesce(schema -> 'properties', '{}')) LOOP
		IF for_query AND ((v -> 'type') IS NULL OR (v -> 'type') NOT IN ('"string"', '"integer"', '"number"', '"boolean"')) THEN
			RAISE EXCEPTION 'invalid schema at "%/properties/%": a query parameter''s type is string, integer, number or boolean', at, k
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		PERFORM actloom._check_schema(v, false, at || '/properties/' || k, depth + 1);
	END LOOP;
	IF schema ? 'items' THEN
		PERFORM actloom._check_schema(schema -> 'items', false, at || '/items', depth + 1);
	END IF;
END
$$;
COMMENT ON FUNCTION actloom._check_schema(jsonb, boolean, text, integer) IS
	'internal: raise 22023 unless a schema is within the subset the shim validates';

CREATE FUNCTION actloom.expose(version integer, method text, path text, fn regprocedure,
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
		RAISE EXCEPTION 'method "%" cannot be exposed', method
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The methods are GET, POST, PUT, PATCH and DELETE.';
	END IF;
	IF clean_path !~ '^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$' OR length(clean_path) > 200 THEN
		RAISE EXCEPTION 'invalid endpoint path "%"', path
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A path is up to 200 characters: segments of a-z, 0-9, "_" and "-", separated by "/".';
	END IF;
	IF rate_class !~ '^[a-z0-9_]{1,31}$' THEN
		RAISE EXCEPTION 'invalid rate class name "%"', rate_class
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
		RAISE EXCEPTION 'unknown scope "%"', required_scope
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
COMMENT ON FUNCTION actloom.expose(integer, text, text, regprocedure, text, text, jsonb, jsonb) IS
	'serve a function (body jsonb, query jsonb) returns jsonb as /v{version}/{path} through the HTTP shim';

CREATE FUNCTION actloom.unexpose(version integer, method text, path text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	m text := upper(method);
	clean_path text := ltrim(path, '/');
BEGIN
	DELETE FROM actloom.endpoints e
	 WHERE e.version = unexpose.version AND e.method = m AND e.path = clean_path;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'endpoint % /v%/% does not exist', m, version, clean_path
			USING ERRCODE = 'no_data_found';
	END IF;
	PERFORM pg_notify('actloom_endpoints', format('%s /v%s/%s', m, version, clean_path));
END
$$;
COMMENT ON FUNCTION actloom.unexpose(integer, text, text) IS 'stop serving an endpoint';

-- What the shim loads: the statement text calling each function is built
-- here, from the catalog, with quoted names.
CREATE FUNCTION actloom.endpoint_registry()
RETURNS TABLE (version integer, method text, path text, call_sql text, required_scope text,
			   rate_class text, body_schema jsonb, query_schema jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
	SELECT e.version, e.method, e.path,
		   format('SELECT %I.%I($1::pg_catalog.jsonb, $2::pg_catalog.jsonb)::pg_catalog.text',
				  n.nspname, p.proname),
		   e.required_scope, e.rate_class, e.body_schema, e.query_schema
	  FROM actloom.endpoints e
	  JOIN pg_proc p ON p.oid = e.fn
	  JOIN pg_namespace n ON n.oid = p.pronamespace
	 ORDER BY e.version, e.path, e.method
$$;
COMMENT ON FUNCTION actloom.endpoint_registry() IS 'the endpoint registry as the HTTP shim loads it';

GRANT EXECUTE ON FUNCTION actloom.endpoint_registry() TO actloom_gateway;
--------------------------------------------------------------------------
-- Sign-in sessions (session.c)
--
-- A session is a row here and a signed token in the browser that names it.
-- The shim creates one at sign-in (a new id every time), and every request
-- that carries the token calls actloom.act_as_session() in its own
-- transaction: a revoked, expired or idle session is refused there, with
-- SQLSTATE 28000, on its very next request.  Settings (superuser only):
-- actloom.session_idle_timeout (default 30 min) and
-- actloom.session_max_lifetime (default 12 h).
--------------------------------------------------------------------------

CREATE TABLE actloom.sessions (
	id			   uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	user_id		   uuid NOT NULL REFERENCES actloom.users (id) ON DELETE CASCADE,
	created_at	   timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_seen_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
	expires_at	   timestamptz NOT NULL,
	revoked_at	   timestamptz,
	revoked_reason text CHECK (revoked_reason IN
		('sign_out', 'sign_out_everywhere', 'revoked', 'replaced', 'password_change')),
	user_agent	   text CHECK (pg_catalog.length(user_agent) <= 512),
	client_addr	   inet,
	CHECK (expires_at > created_at),
	CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
-- Revoking every session of a user and listing them read the live ones.
CREATE INDEX sessions_user_idx ON actloom.sessions (user_id) WHERE revoked_at IS NULL;
COMMENT ON TABLE actloom.sessions IS
	'sign-in sessions; read and changed through functions only';
SELECT pg_catalog.pg_extension_config_dump('actloom.sessions', '');
REVOKE ALL ON actloom.sessions FROM PUBLIC;

CREATE FUNCTION actloom.act_as_session(session uuid, company uuid DEFAULT NULL)
RETURNS uuid
AS 'MODULE_PATHNAME', 'act_as_session'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom.act_as_session(uuid, uuid) IS
	'check a sign-in session and make its user the actor of this transaction, in a company they belong to; returns the user; gateway only';

CREATE FUNCTION actloom.current_session()
RETURNS uuid
AS 'MODULE_PATHNAME', 'current_session'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom.current_session() IS
	'the sign-in session the actor acts through, or NULL';

-- A session's limits as intervals of whole seconds, as the settings hold
-- them now.  pg_settings gives the value in its base unit (seconds), which
-- keeps "1d" from becoming a calendar day.
CREATE FUNCTION actloom._session_limit(setting text)
RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT make_interval(secs => s.setting::float8) FROM pg_catalog.pg_settings s
		 WHERE s.name = 'actloom.session_' || _session_limit.setting);
COMMENT ON FUNCTION actloom._session_limit(text) IS
	'internal: actloom.session_idle_timeout or _max_lifetime as an interval';

-- Whether a session is alive now: the rules of act_as_session(), in SQL.
CREATE FUNCTION actloom._session_alive(s actloom.sessions)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN s.revoked_at IS NULL
	AND s.expires_at > now()
	AND s.created_at + actloom._session_limit('max_lifetime') > now()
	AND s.last_seen_at + actloom._session_limit('idle_timeout') > now();
COMMENT ON FUNCTION actloom._session_alive(actloom.sessions) IS
	'internal: whether a session is neither revoked, expired nor idle';

-- Revoke the live sessions of a user, and audit it once in the system
-- chain; returns how many there were.  Sessions already dead are left as
-- they are.  Internal: sign-out everywhere and password changes call it.
CREATE FUNCTION actloom._session_revoke_user("user" uuid, reason text)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	n integer;
BEGIN
	UPDATE actloom.sessions s SET revoked_at = now(), revoked_reason = reason
	 WHERE s.user_id = "user" AND s.revoked_at IS NULL AND actloom._session_alive(s);
	GET DIAGNOSTICS n = ROW_COUNT;
	PERFORM actloom._audit_to(actloom.system_chain(), 'session.revoke_all', 'user', "user"::text,
							  jsonb_build_object('reason', reason, 'sessions', n));
	RETURN n;
END
$$;
COMMENT ON FUNCTION actloom._session_revoke_user(uuid, text) IS
	'internal: revoke every live session of a user, audited';

CREATE FUNCTION actloom.session_create("user" uuid, user_agent text DEFAULT NULL,
									   client_addr inet DEFAULT NULL, replaces uuid DEFAULT NULL)
RETURNS TABLE (session uuid, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	new_id uuid;
	new_expiry timestamptz := now() + actloom._session_limit('max_lifetime');
	ua text;
	replaced_user uuid;
BEGIN
	PERFORM actloom._require_arg("user", 'user');
	IF NOT EXISTS (SELECT FROM actloom.users u WHERE u.id = "user" AND u.disabled_at IS NULL) THEN
		RAISE EXCEPTION 'user does not exist or is disabled'
			USING ERRCODE = 'invalid_authorization_specification';
	END IF;
	-- The browser's previous session, whoever's it was, ends with this
	-- sign-in: nobody keeps a session id across one.
	IF replaces IS NOT NULL THEN
		UPDATE actloom.sessions s SET revoked_at = now(), revoked_reason = 'replaced'
		 WHERE s.id = replaces AND s.revoked_at IS NULL
		RETURNING s.user_id INTO replaced_user;
		IF FOUND THEN
			PERFORM actloom._audit_to(actloom.system_chain(), 'session.revoke', 'session',
									  replaces::text,
									  jsonb_build_object('reason', 'replaced', 'user', replaced_user));
		END IF;
	END IF;
	-- The user agent is the client's to say: kept short and printable.
	ua := left(regexp_replace(user_agent, '[[:cntrl:]]', '', 'g'), 512);
	INSERT INTO actloom.sessions (user_id, expires_at, user_agent, client_addr)
		VALUES ("user", new_expiry, nullif(ua, ''), session_create.client_addr)
		RETURNING id INTO new_id;
	PERFORM actloom.act_as_session(new_id);
	PERFORM actloom._audit_to(actloom.system_chain(), 'session.create', 'session', new_id::text,
							  jsonb_build_object('expires_at', new_expiry, 'user_agent', nullif(ua, '')));
	RETURN QUERY SELECT new_id, new_expiry;
END
$$;
COMMENT ON FUNCTION actloom.session_create(uuid, text, inet, uuid) IS
	'start a sign-in session for a user whose credentials the caller verified, ending the one it replaces; makes it the actor; gateway only';

CREATE FUNCTION actloom.session_revoke(session uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	actor uuid := actloom._actor_user();
	was_live boolean;
	why text;
BEGIN
	PERFORM actloom._require_arg(session, 'session');
	SELECT s.revoked_at IS NULL INTO was_live FROM actloom.sessions s
	 WHERE s.id = session AND s.user_id = actor
	   FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'session does not exist' USING ERRCODE = 'no_data_found';
	END IF;
	IF NOT was_live THEN
		RETURN false;
	END IF;
	why := CASE WHEN session = actloom.current_session() THEN 'sign_out' ELSE 'revoked' END;
	UPDATE actloom.sessions s SET revoked_at = now(), revoked_reason = why WHERE s.id = session;
	PERFORM actloom._audit_to(actloom.system_chain(), 'session.revoke', 'session', session::text,
							  jsonb_build_object('reason', why));
	RETURN true;
END
$$;
COMMENT ON FUNCTION actloom.session_revoke(uuid) IS
	'end one of the acting user''s sessions (sign-out when it is the current one); false when it had ended already';

CREATE FUNCTION actloom.session_revoke_all()
RETURNS integer
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
RETURN actloom._session_revoke_user(actloom._actor_user(), 'sign_out_everywhere');
COMMENT ON FUNCTION actloom.session_revoke_all() IS
	'end every live session of the acting user, the current one included; returns how many';

CREATE FUNCTION actloom.my_sessions()
RETURNS TABLE (session uuid, created_at timestamptz, last_seen_at timestamptz,
			   expires_at timestamptz, user_agent text, client_addr inet, is_current boolean)
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
BEGIN ATOMIC
	SELECT s.id, s.created_at, s.last_seen_at,
		   least(s.expires_at, s.created_at + actloom._session_limit('max_lifetime')),
		   s.user_agent, s.client_addr, s.id IS NOT DISTINCT FROM actloom.current_session()
	  FROM actloom.sessions s
	 WHERE s.user_id = actloom._actor_user() AND actloom._session_alive(s)
	 ORDER BY s.created_at DESC, s.id;
END;
COMMENT ON FUNCTION actloom.my_sessions() IS
	'the acting user''s live sessions, newest first, marking the current one';

-- Ended sessions are kept for a while (a user's "signed out" history, the
-- audit entries' targets) and then removed: every sign-in adds a row.
CREATE FUNCTION actloom.session_purge(older_than interval DEFAULT '30 days')
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	PERFORM actloom._require_arg(older_than, 'older_than');
	IF older_than < interval '0' THEN
		RAISE EXCEPTION 'older_than must not be negative' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- A session ended at the first of its revocation, its expiry, the end
	-- of its lifetime and the end of its idle time (least() skips NULLs).
	DELETE FROM actloom.sessions s
	 WHERE least(s.revoked_at, s.expires_at,
				 s.created_at + actloom._session_limit('max_lifetime'),
				 s.last_seen_at + actloom._session_limit('idle_timeout')) < now() - older_than;
	GET DIAGNOSTICS n = ROW_COUNT;
	PERFORM actloom._audit_to(actloom.system_chain(), 'session.purge', NULL, NULL,
							  jsonb_build_object('older_than_s', extract(epoch FROM older_than)::bigint, 'sessions', n));
	RETURN n;
END
$$;
COMMENT ON FUNCTION actloom.session_purge(interval) IS
	'delete sessions that ended longer ago than older_than; for a periodic job of the DBA';

GRANT EXECUTE ON FUNCTION
	actloom.act_as_session(uuid, uuid),
	actloom.session_create(uuid, text, inet, uuid),
	actloom.session_revoke(uuid),
	actloom.session_revoke_all(),
	actloom.my_sessions()
	TO actloom_gateway;
--------------------------------------------------------------------------
-- People: sign-up and sign-in in one call each, and what the management
-- API needs beyond the kernel.  The gateway (the shim) calls these; it
-- never sees a password hash.
--------------------------------------------------------------------------

ALTER TABLE actloom.users ADD COLUMN display_name text
	CHECK (pg_catalog.length(display_name) BETWEEN 1 AND 200 AND display_name !~ '[[:cntrl:]]');
COMMENT ON COLUMN actloom.users.display_name IS 'the name a person gave at sign-up';
GRANT SELECT (display_name) ON actloom.users TO actloom_gateway;

-- A password change (set_password, import_password_hash) ends every session
-- of the user: whoever knew the old password is signed out.  A re-hash at
-- sign-in changes the hash but not password_changed_at, and ends nothing.
CREATE FUNCTION actloom._sessions_end_on_password_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._session_revoke_user(NEW.id, 'password_change');
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION actloom._sessions_end_on_password_change() IS
	'trigger: revoke the sessions of a user whose password changed';
CREATE TRIGGER users_password_change_ends_sessions
	AFTER UPDATE OF password_changed_at ON actloom.users
	FOR EACH ROW WHEN (NEW.password_changed_at IS DISTINCT FROM OLD.password_changed_at)
	EXECUTE FUNCTION actloom._sessions_end_on_password_change();

CREATE FUNCTION actloom.sign_in(email text, password text, user_agent text DEFAULT NULL,
								client_addr inet DEFAULT NULL, replaces uuid DEFAULT NULL)
RETURNS TABLE (user_id uuid, session uuid, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	signed_in uuid;
BEGIN
	-- verify_password audits both outcomes and takes about the same time
	-- whether or not the address has an account.  A failure returns no row
	-- rather than raising, so that its audit entry commits.
	signed_in := actloom.verify_password(email, password);
	IF signed_in IS NULL THEN
		RETURN;
	END IF;
	RETURN QUERY
		SELECT signed_in, s.session, s.expires_at
		  FROM actloom.session_create(signed_in, user_agent, client_addr, replaces) s;
END
$$;
COMMENT ON FUNCTION actloom.sign_in(text, text, text, inet, uuid) IS
	'verify a password and start a session, ending the one it replaces; no row when the credentials are wrong';

CREATE FUNCTION actloom.sign_up(email text, password text, name text, user_agent text DEFAULT NULL,
								client_addr inet DEFAULT NULL)
RETURNS TABLE (user_id uuid, session uuid, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	new_user uuid;
	clean text := btrim(sign_up.name);
BEGIN
	PERFORM actloom._require_arg(password, 'password');
	PERFORM actloom._require_arg(name, 'name');
	IF length(clean) NOT BETWEEN 1 AND 200 OR clean ~ '[[:cntrl:]]' THEN
		RAISE EXCEPTION 'invalid name'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A name has 1 to 200 characters besides surrounding spaces, and no control characters.';
	END IF;
	new_user := actloom.create_user(email, password);
	UPDATE actloom.users u SET display_name = clean WHERE u.id = new_user;
	RETURN QUERY
		SELECT new_user, s.session, s.expires_at
		  FROM actloom.session_create(new_user, user_agent, client_addr) s;
END
$$;
COMMENT ON FUNCTION actloom.sign_up(text, text, text, text, inet) IS
	'create a user with a password and a name, and start their first session';

CREATE FUNCTION actloom.add_member_by_email(company uuid, email text,
											role actloom.company_role DEFAULT 'member')
RETURNS uuid
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	target uuid;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom._require_arg(email, 'email');
	-- Only those who may invite learn whether an address has an account.
	PERFORM actloom.authorize(company, 'members.invite');
	SELECT u.id INTO target FROM actloom.users u WHERE u.email = lower(add_member_by_email.email);
	IF target IS NULL THEN
		RAISE EXCEPTION 'user does not exist' USING ERRCODE = 'no_data_found',
			HINT = 'People sign up first; then they can be added.';
	END IF;
	PERFORM actloom.add_member(company, target, role);
	RETURN target;
END
$$;
COMMENT ON FUNCTION actloom.add_member_by_email(uuid, text, actloom.company_role) IS
	'add an existing user, named by email, to a company (permission members.invite); returns the user';

CREATE FUNCTION actloom.session_info()
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
BEGIN ATOMIC
	SELECT jsonb_build_object(
		'user', jsonb_build_object('id', u.id, 'email', u.email, 'name', u.display_name),
		'session', (SELECT jsonb_build_object('id', s.id, 'created_at', s.created_at,
											  'expires_at', least(s.expires_at,
													s.created_at + actloom._session_limit('max_lifetime')))
					  FROM actloom.sessions s WHERE s.id = actloom.current_session()),
		'companies', coalesce((SELECT jsonb_agg(jsonb_build_object('id', c.id, 'name', c.name,
																	'role', m.role)
												ORDER BY c.name, c.id)
								 FROM actloom.memberships m JOIN actloom.companies c ON c.id = m.company_id
								WHERE m.user_id = u.id), '[]'::jsonb))
	  FROM actloom.users u WHERE u.id = actloom._actor_user();
END;
COMMENT ON FUNCTION actloom.session_info() IS
	'the acting user, their session and their companies with roles, as JSON';


GRANT EXECUTE ON FUNCTION
	actloom.session_info(),
	actloom.sign_in(text, text, text, inet, uuid),
	actloom.sign_up(text, text, text, text, inet),
	actloom.add_member_by_email(uuid, text, actloom.company_role)
	TO actloom_gateway;
--------------------------------------------------------------------------
-- Rate limits shared by several shims (rate_limits.store: database)
--
-- GCRA, computed as the shim's memory store computes it (shim/ratelimit.c):
-- a class allows "quota" requests per "period" seconds, at most "burst" at
-- once.  T = period / quota, in whole microseconds and at least one, is the
-- emission interval and tau = T * (burst - 1) the tolerance.  Each (class,
-- key) has one theoretical arrival time (TAT); a take of cost c at "now" is
-- allowed when max(TAT, now) + c * T - now <= tau + T, and then moves the
-- TAT there.  A TAT in the past says nothing more than no row, so
-- rate_limit_purge() deletes such rows without changing any verdict.
--
-- One INSERT ... ON CONFLICT DO UPDATE decides and moves the TAT under the
-- row's lock: concurrent takes of one key, from any number of shims,
-- serialize on that row and each sees the one before it.  "now" is the
-- database's clock (clock_timestamp(), read once per call), so shims whose
-- clocks differ still share one state.
--
-- The tables are UNLOGGED: a counter is worth no WAL on every request, and a
-- crash that empties them lets clients in early once, no worse.  Keys name
-- clients (addresses, emails): only their SHA-256 digest is stored, in
-- tables nobody but the extension's owner may read.
--
-- The shim sends a request's takes and its own work in one round trip, as
-- two transactions of one pipeline.  The first, rate_limit_admit(), takes
-- and commits whatever happens next: a request the limiter allowed counts
-- even when its work then fails, as in the memory store (a client guessing
-- API keys, whose every attempt rolls back, must still be limited).  When
-- every take is allowed it records the request's admission, a random id the
-- shim chose; the second transaction begins with rate_limit_admitted(),
-- which consumes that record or raises, so the work of a refused request is
-- never run.  Nothing lives in the session, so this holds behind a pooler in
-- transaction mode too.
--------------------------------------------------------------------------

CREATE UNLOGGED TABLE actloom.rate_limits (
	class		text NOT NULL CHECK (class ~ '^[a-z0-9_]{1,31}$'),
	key_hash	bytea NOT NULL CHECK (pg_catalog.length(key_hash) = 32),
	tat			timestamptz NOT NULL,
	CONSTRAINT rate_limits_pkey PRIMARY KEY (class, key_hash)
) WITH (fillfactor = 80);	-- room on the page keeps the TAT updates HOT
COMMENT ON TABLE actloom.rate_limits IS
	'GCRA state of the shared rate limiter: the theoretical arrival time of each (class, SHA-256 of the key)';
REVOKE ALL ON actloom.rate_limits FROM PUBLIC;

CREATE UNLOGGED TABLE actloom.rate_limit_admissions (
	id			uuid PRIMARY KEY,
	created_at	timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE actloom.rate_limit_admissions IS
	'requests rate_limit_admit() allowed whose work has not begun (or rolled back); rate_limit_admitted() consumes them';
REVOKE ALL ON actloom.rate_limit_admissions FROM PUBLIC;

-- The take itself, at a given time: rate_limit_take() and rate_limit_admit()
-- pass the database's clock, the regression tests a time of their own.
CREATE FUNCTION actloom._rate_limit_take_at(at timestamptz, class text, key text, quota integer,
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
COMMENT ON FUNCTION actloom._rate_limit_take_at(timestamptz, text, text, integer, integer, integer, integer) IS
	'internal: one GCRA take at a given time; rate_limit_take() without the clock';

CREATE FUNCTION actloom.rate_limit_take(class text, key text, quota integer, period integer,
										burst integer, cost integer DEFAULT 1,
										OUT allowed boolean, OUT remaining integer,
										OUT reset_after integer, OUT retry_after integer)
RETURNS record
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
BEGIN ATOMIC
	SELECT * FROM actloom._rate_limit_take_at(pg_catalog.clock_timestamp(), class, key, quota, period,
											  burst, cost);
END;
COMMENT ON FUNCTION actloom.rate_limit_take(text, text, integer, integer, integer, integer) IS
	'take cost requests of a class (quota per period seconds, burst at once) for a key; says whether allowed, how many remain, seconds until whole again and until a retry may succeed; gateway only';

CREATE FUNCTION actloom.rate_limit_admit(admission uuid, classes text[], keys text[], quotas integer[],
										 periods integer[], bursts integer[])
RETURNS TABLE (class text, allowed boolean, remaining integer, reset_after integer, retry_after integer)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	at constant timestamptz := clock_timestamp();
	n integer := cardinality(classes);
	v record;
BEGIN
	IF admission IS NULL OR classes IS NULL OR keys IS NULL OR quotas IS NULL OR periods IS NULL
	   OR bursts IS NULL THEN
		RAISE EXCEPTION 'argument "%" must not be null',
			CASE WHEN admission IS NULL THEN 'admission' WHEN classes IS NULL THEN 'classes'
				 WHEN keys IS NULL THEN 'keys' WHEN quotas IS NULL THEN 'quotas'
				 WHEN periods IS NULL THEN 'periods' ELSE 'bursts' END
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF n NOT BETWEEN 1 AND 16 OR array_ndims(classes) <> 1 OR array_lower(classes, 1) <> 1
	   OR cardinality(keys) <> n OR cardinality(quotas) <> n OR cardinality(periods) <> n
	   OR cardinality(bursts) <> n OR array_lower(keys, 1) <> 1 OR array_lower(quotas, 1) <> 1
	   OR array_lower(periods, 1) <> 1 OR array_lower(bursts, 1) <> 1 THEN
		RAISE EXCEPTION 'classes, keys, quotas, periods and bursts must be lists of equal length'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Each is a one-dimensional array of 1 to 16 elements, the n-th of each describing the n-th take.';
	END IF;
	FOR i IN 1 .. n LOOP
		v := actloom._rate_limit_take_at(at, classes[i], keys[i], quotas[i], periods[i], bursts[i], 1);
		class := classes[i];
		allowed := v.allowed;
		remaining := v.remaining;
		reset_after := v.reset_after;
		retry_after := v.retry_after;
		RETURN NEXT;
		-- As the memory store: the takes after a refusal are not made.
		IF NOT v.allowed THEN
			RETURN;
		END IF;
	END LOOP;
	INSERT INTO actloom.rate_limit_admissions (id) VALUES (admission);
END
$$;
COMMENT ON FUNCTION actloom.rate_limit_admit(uuid, text[], text[], integer[], integer[], integer[]) IS
	'take one request of each class for its key, in order, stopping at the first refusal; when all are allowed, record the admission for rate_limit_admitted(); gateway only';

CREATE FUNCTION actloom.rate_limit_admitted(admission uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(admission, 'admission');
	DELETE FROM actloom.rate_limit_admissions a WHERE a.id = admission;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'the request was not admitted by the rate limiter'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Call rate_limit_admit() with this admission first, in a transaction of its own.';
	END IF;
END
$$;
COMMENT ON FUNCTION actloom.rate_limit_admitted(uuid) IS
	'consume an admission of rate_limit_admit(), or raise 55000: the first statement of an admitted request''s transaction; gateway only';

-- Expired state, and admissions left behind: the work of an admitted
-- request that failed rolled back the consumption of its admission with it
-- (or its connection was lost between the two transactions).  The id was
-- random and is never sent again, so such a row admits nothing; a minute
-- is far longer than a pipeline takes from one transaction to the next.
CREATE FUNCTION actloom.rate_limit_purge()
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	DELETE FROM actloom.rate_limits r WHERE r.tat < clock_timestamp();
	GET DIAGNOSTICS n = ROW_COUNT;
	DELETE FROM actloom.rate_limit_admissions a WHERE a.created_at < now() - interval '1 minute';
	RETURN n;
END
$$;
COMMENT ON FUNCTION actloom.rate_limit_purge() IS
	'delete rate-limit states whose TAT has passed (they change no verdict) and stale admissions; returns the states deleted; the shim calls it every minute';

GRANT EXECUTE ON FUNCTION
	actloom.rate_limit_take(text, text, integer, integer, integer, integer),
	actloom.rate_limit_admit(uuid, text[], text[], integer[], integer[], integer[]),
	actloom.rate_limit_admitted(uuid),
	actloom.rate_limit_purge()
	TO actloom_gateway;
--------------------------------------------------------------------------
-- Privileges.  This file runs last: EXECUTE on every function of the schema
-- is revoked from PUBLIC here, after the feature files granted what their
-- roles need; the few functions PUBLIC needs are granted back below.
--------------------------------------------------------------------------
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA actloom FROM PUBLIC;

-- Read the context: needed by row level security policies for every role.
GRANT EXECUTE ON FUNCTION actloom.current_user_id(), actloom.current_company(),
	actloom.current_api_key(), actloom.current_actor_kind(),
	actloom.current_session()
	TO PUBLIC;

-- protect_table needs table ownership anyway (ALTER TABLE checks it); the
-- others are harmless helpers it and applications use.
GRANT EXECUTE ON FUNCTION
	actloom.protect_table(regclass, name),
	actloom.refuse_tenant_move(),
	actloom.valid_email(text),
	actloom._require_arg(anyelement, text),
	actloom._audit_protect_table(regclass, name)
	TO PUBLIC;

-- The pieces of the audit chain's definition, for anyone who verifies it.
GRANT EXECUTE ON FUNCTION
	actloom.system_chain(),
	actloom.audit_genesis(),
	actloom.audit_canonical(actloom.audit_log),
	actloom.audit_checkpoint_message(uuid, bigint, bytea, timestamptz)
	TO PUBLIC;
