-- The actor context: set only by act_as, only by the gateway, and never
-- carried from one transaction into the next.
\set SHOW_CONTEXT never
SELECT id AS acme FROM actloom.companies WHERE name = 'Acme' \gset
SELECT id AS acme_owner FROM actloom.users WHERE email = 'owner@acme.test' \gset

SET ROLE regress_app;

-- Commit clears it.
BEGIN;
SELECT actloom.act_as(:'acme_owner', :'acme');
SELECT actloom.current_user_id() = :'acme_owner' AS user_set,
	   actloom.current_company() = :'acme' AS company_set,
	   actloom.current_role();
COMMIT;
SELECT actloom.current_user_id(), actloom.current_company(), actloom.current_role();

-- Rollback clears it.
BEGIN;
SELECT actloom.act_as(:'acme_owner', :'acme');
ROLLBACK;
SELECT actloom.current_user_id(), actloom.current_company();

-- An error clears it.
BEGIN;
SELECT actloom.act_as(:'acme_owner', :'acme');
SELECT 1 / 0;
ROLLBACK;
SELECT actloom.current_user_id(), actloom.current_company();

-- A single statement is its own transaction.
SELECT actloom.act_as(:'acme_owner', :'acme');
SELECT actloom.current_user_id(), actloom.current_company();

-- A subtransaction that aborts takes the context it set with it; one that
-- commits hands it to its parent.
BEGIN;
SAVEPOINT a;
SELECT actloom.act_as(:'acme_owner', :'acme');
ROLLBACK TO a;
SELECT actloom.current_user_id();
SAVEPOINT b;
SELECT actloom.act_as(:'acme_owner', :'acme');
RELEASE b;
SELECT actloom.current_user_id() = :'acme_owner' AS kept;
SAVEPOINT c;
SELECT 1 / 0;
ROLLBACK TO c;
SELECT actloom.current_user_id() = :'acme_owner' AS kept_after_later_abort;
ROLLBACK;
SELECT actloom.current_user_id();

-- Settings cannot forge it: the prefix is reserved, and the context is not
-- a setting at all.
SET actloom.user_id = 'x';
SELECT set_config('actloom.company', :'acme', false);
SET "actloom.current_company" = 'x';
SELECT actloom.current_company();

RESET ROLE;

-- Only the gateway may call act_as.
SET ROLE regress_outsider;
BEGIN;
SELECT actloom.act_as(:'acme_owner', :'acme');
ROLLBACK;
SELECT actloom.current_company();
-- Nor may outsiders call the other privileged functions.
SELECT actloom.create_user('x@example.com');
SELECT actloom.authorize(:'acme', 'members.read');
SELECT * FROM actloom.users;
RESET ROLE;

-- Every SECURITY DEFINER function pins search_path and is not executable by
-- PUBLIC.
SELECT p.proname
  FROM pg_proc p
 WHERE p.pronamespace = 'actloom'::regnamespace AND p.prosecdef
   AND (p.proconfig IS NULL OR NOT ('search_path=pg_catalog, actloom, pg_temp' = ANY (p.proconfig))
		OR has_function_privilege('public', p.oid, 'EXECUTE'));
SELECT count(*) > 0 AS has_definer_functions FROM pg_proc p
 WHERE p.pronamespace = 'actloom'::regnamespace AND p.prosecdef;
