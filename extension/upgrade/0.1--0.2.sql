\echo Use "ALTER EXTENSION actloom UPDATE TO '0.2'" to load this file. \quit
-- actloom 0.1 to 0.2.  The Makefile assembles extension/actloom--0.1--0.2.sql
-- from this file, replacing each "\ir" line with the fragment it names.
--
-- A change to an object of 0.1 is written here and, the same, in the
-- fragment of extension/sql/ that creates it for a fresh install; a fragment
-- new in 0.2 is only included.  The upgrade test (test/t/090_upgrade.pl)
-- compares an upgraded database with a fresh one and prints any drift.

-- Tenancy (30_tenancy.sql).  Only members of the new role actloom_dba may
-- call protect_table, and the entries of protected tables go to a chain of
-- their own.  0.1 let any table owner call it (PUBLIC could run it and
-- _audit_protect_table), appending to the system chain.
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'actloom_dba') THEN
		CREATE ROLE actloom_dba NOLOGIN;
	END IF;
END
$roles$;

CREATE FUNCTION actloom.schema_chain()
RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '00000000-0000-0000-0000-000000000001'::uuid;
COMMENT ON FUNCTION actloom.schema_chain() IS
	'the chain of the tables confined by protect_table: 00000000-0000-0000-0000-000000000001';

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

GRANT EXECUTE ON FUNCTION
	actloom.protect_table(regclass, name),
	actloom._audit_protect_table(regclass, name)
	TO actloom_dba;

-- Privileges last, as in the install script: EXECUTE is revoked from PUBLIC
-- on every function of the schema, new ones included, and granted back
-- where the privileges fragment says.  Re-applying it to the objects of 0.1
-- changes nothing for them.
\ir ../sql/99_privileges.sql
