-- actloom: the tenancy and role kernel
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
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'actloom_dba') THEN
		CREATE ROLE actloom_dba NOLOGIN;
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

