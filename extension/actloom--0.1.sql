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
	disabled_at timestamptz
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

CREATE FUNCTION actloom.create_user(email text)
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
	INSERT INTO actloom.users (email) VALUES (normalized) RETURNING id INTO new_id;
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION actloom.create_user(text) IS 'create a user; the email is stored lower-cased';

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
END
$$;
COMMENT ON FUNCTION actloom.add_member(uuid, uuid, actloom.company_role) IS
	'add an existing user to a company (permission members.invite)';

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
	SELECT m.role INTO old_role FROM actloom.memberships m
	 WHERE m.company_id = set_role.company AND m.user_id = set_role.user_id;
	IF old_role IS NULL THEN
		RAISE EXCEPTION 'user is not a member of the company' USING ERRCODE = 'no_data_found';
	END IF;
	PERFORM actloom._check_ceiling(actor_role, old_role, 'change a member with');
	PERFORM actloom._check_ceiling(actor_role, set_role.role, 'grant');
	IF old_role = 'owner' AND set_role.role <> 'owner' THEN
		PERFORM actloom._check_last_owner(company, set_role.user_id);
	END IF;
	UPDATE actloom.memberships m SET role = set_role.role
	 WHERE m.company_id = set_role.company AND m.user_id = set_role.user_id;
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
	SELECT m.role INTO old_role FROM actloom.memberships m
	 WHERE m.company_id = remove_member.company AND m.user_id = remove_member.user_id;
	IF old_role IS NULL THEN
		RAISE EXCEPTION 'user is not a member of the company' USING ERRCODE = 'no_data_found';
	END IF;
	PERFORM actloom._check_ceiling(actor_role, old_role, 'remove a member with');
	IF old_role = 'owner' THEN
		PERFORM actloom._check_last_owner(company, remove_member.user_id);
	END IF;
	DELETE FROM actloom.memberships m
	 WHERE m.company_id = remove_member.company AND m.user_id = remove_member.user_id;
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

--------------------------------------------------------------------------
-- Tenancy (tenancy.c)
--------------------------------------------------------------------------
CREATE FUNCTION actloom.refuse_tenant_move()
RETURNS trigger
AS 'MODULE_PATHNAME', 'refuse_tenant_move'
LANGUAGE C;
COMMENT ON FUNCTION actloom.refuse_tenant_move() IS
	'trigger: refuse an update that changes a row''s tenant key';

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
-- Privileges
--------------------------------------------------------------------------
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA actloom FROM PUBLIC;

-- Read the context: needed by row level security policies for every role.
GRANT EXECUTE ON FUNCTION actloom.current_user_id(), actloom.current_company()
	TO PUBLIC;
GRANT EXECUTE ON FUNCTION
	actloom.act_as(uuid, uuid),
	actloom.current_role(),
	actloom.authorize(uuid, text),
	actloom.can(uuid, text),
	actloom.require_role(uuid, actloom.company_role),
	actloom.create_user(text),
	actloom.create_company(text),
	actloom.add_member(uuid, uuid, actloom.company_role),
	actloom.set_role(uuid, uuid, actloom.company_role),
	actloom.remove_member(uuid, uuid),
	actloom.members(uuid)
	TO actloom_gateway;
-- protect_table needs table ownership anyway (ALTER TABLE checks it); the
-- others are harmless helpers it and applications use.
GRANT EXECUTE ON FUNCTION
	actloom.protect_table(regclass, name),
	actloom.refuse_tenant_move(),
	actloom.valid_email(text),
	actloom._require_arg(anyelement, text)
	TO PUBLIC;
