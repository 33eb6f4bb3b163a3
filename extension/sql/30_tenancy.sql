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
	PERFORM actloom._audit_to(actloom.schema_chain(), 'table.protect', 'table', tbl::text,
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

-- For members of actloom_dba: a role that merely owns a table (any role
-- can create a TEMP table) does not write to the audit trail.
GRANT EXECUTE ON FUNCTION
	actloom.protect_table(regclass, name),
	actloom._audit_protect_table(regclass, name)
	TO actloom_dba;
