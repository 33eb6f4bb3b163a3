-- Row level security on a protected application table, through an
-- application role that is neither superuser nor BYPASSRLS.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
SELECT id AS acme FROM actloom.companies WHERE name = 'Acme' \gset
SELECT id AS globex FROM actloom.companies WHERE name = 'Globex' \gset
SELECT id AS acme_member FROM actloom.users WHERE email = 'member@acme.test' \gset
SELECT id AS globex_member FROM actloom.users WHERE email = 'member@globex.test' \gset

SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'public.reports'::regclass;
SELECT polname, polcmd, polpermissive, pg_get_expr(polqual, polrelid) AS using,
	   pg_get_expr(polwithcheck, polrelid) AS with_check
  FROM pg_policy WHERE polrelid = 'public.reports'::regclass ORDER BY polname;
SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'public.reports'::regclass;

SET ROLE regress_app;

-- Nobody acting: no rows, no writes.
SELECT count(*) FROM public.reports;
INSERT INTO public.reports (company_id, title) VALUES (:'acme', 'nobody');

BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
-- Reads see the own company only, even when asking for the other.
SELECT title FROM public.reports ORDER BY title;
SELECT count(*) FROM public.reports WHERE company_id = :'globex';
-- Writes into the own company work.
INSERT INTO public.reports (company_id, title) VALUES (:'acme', 'acme q3') RETURNING title;
-- Inserting into another company is refused.
SAVEPOINT s;
INSERT INTO public.reports (company_id, title) VALUES (:'globex', 'planted');
ROLLBACK TO s;
-- Updating and deleting another company's rows touches nothing.
UPDATE public.reports SET title = 'defaced' WHERE company_id = :'globex';
DELETE FROM public.reports WHERE company_id = :'globex';
-- Re-homing an own row into another company is refused.
SAVEPOINT s;
UPDATE public.reports SET company_id = :'globex' WHERE title = 'acme q1';
ROLLBACK TO s;
COMMIT;

BEGIN;
SELECT actloom.act_as(:'globex_member', :'globex');
SELECT title FROM public.reports ORDER BY title;
COMMIT;
RESET ROLE;

-- What the tables hold, seen by a superuser: nothing of Globex changed.
SELECT c.name, r.title FROM public.reports r JOIN actloom.companies c ON c.id = r.company_id
 ORDER BY c.name, r.title;

-- The table owner is bound by the policies too (FORCE), and nobody, not even
-- a superuser who bypasses them, may re-home a row.
SET ROLE regress_owner;
SELECT count(*) FROM public.reports;
RESET ROLE;
UPDATE public.reports SET company_id = :'globex' WHERE title = 'acme q1';

-- A permissive policy added by the application cannot widen the tenant.
SET ROLE regress_owner;
CREATE POLICY everything ON public.reports FOR SELECT USING (true);
RESET ROLE;
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT count(*) AS visible FROM public.reports;
COMMIT;
RESET ROLE;
SET ROLE regress_owner;
DROP POLICY everything ON public.reports;

-- protect_table is idempotent and warns about a missing index.
SELECT actloom.protect_table('public.reports');
SELECT count(*) AS policies FROM pg_policy WHERE polrelid = 'public.reports'::regclass;
CREATE TABLE public.notes (id int, tenant uuid, body text);
SELECT actloom.protect_table('public.notes', 'tenant');
CREATE TABLE public.bad (id int, company_id text);
SELECT actloom.protect_table('public.bad');
SELECT actloom.protect_table('public.bad', 'nope');
CREATE VIEW public.v AS SELECT 1 AS company_id;
SELECT actloom.protect_table('public.v');
RESET ROLE;
-- protect_table is for members of actloom_dba: a role that merely owns a
-- table, a TEMP one say, does not write to the audit trail with it.
SET ROLE regress_outsider;
CREATE TEMP TABLE mine (company_id uuid);
SELECT actloom.protect_table('pg_temp.mine');
DROP TABLE mine;
RESET ROLE;
SET ROLE regress_app;
SELECT actloom.protect_table('public.notes', 'tenant');
RESET ROLE;
-- And its members protect only their own tables.
CREATE ROLE regress_dba IN ROLE actloom_dba;
SET ROLE regress_dba;
SELECT actloom.protect_table('public.notes', 'tenant');
RESET ROLE;
DROP ROLE regress_dba;
-- Its entries go to the schema chain, which no sign-in waits for.
SELECT a.seq, a.action, a.target_id, a.detail FROM actloom.audit_log a
 WHERE a.chain = actloom.schema_chain() ORDER BY a.seq;
SELECT count(*) AS in_the_system_chain FROM actloom.audit_log a
 WHERE a.chain = actloom.system_chain() AND a.action = 'table.protect';
DROP TABLE public.notes, public.bad;
DROP VIEW public.v;
