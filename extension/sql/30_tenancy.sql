--------------------------------------------------------------------------
-- Tenancy (tenancy.c)
--------------------------------------------------------------------------
CREATE FUNCTION actloom.refuse_tenant_move()
RETURNS trigger
AS 'MODULE_PATHNAME', 'refuse_tenant_move'
LANGUAGE C;
COMMENT ON FUNCTION actloom.refuse_tenant_move() IS
	'trigger: refuse an update that changes a row''s tenant key';

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
	PERFORM actloom._audit_to(actloom.schema_chain(), 'table.protect', 'table', tbl::text,
							  jsonb_build_object('column', company_column));
END
$$;
COMMENT ON FUNCTION actloom._audit_protect_table_as_owner(regclass, name) IS
	'internal: audit that a table is protected';

-- For members of actloom_dba: a role that merely owns a table (any role
-- can create a TEMP table) does not write to the audit trail.
CREATE FUNCTION actloom.protect_table(tbl regclass, company_column name DEFAULT 'company_id')
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
