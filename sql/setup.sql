-- Shared fixture for the other test files: the extension, an application
-- role, two companies with a user in every role, and a protected table.
\set SHOW_CONTEXT never
CREATE EXTENSION actloom CASCADE;
SELECT extname, extversion, extrelocatable FROM pg_extension WHERE extname IN ('actloom', 'pgcrypto') ORDER BY 1;

-- The application connects as a member of actloom_gateway, without BYPASSRLS.
CREATE ROLE regress_app LOGIN IN ROLE actloom_gateway;
CREATE ROLE regress_outsider LOGIN;
SELECT rolname, rolsuper, rolbypassrls, rolcanlogin FROM pg_roles
 WHERE rolname IN ('actloom_gateway', 'actloom_auditor', 'actloom_dba', 'regress_app') ORDER BY 1;

SET ROLE regress_app;
SELECT count(*) AS users FROM (
	SELECT actloom.create_user(e) FROM unnest(ARRAY[
		'owner@acme.test', 'Exec@Acme.Test', 'admin@acme.test', 'member@acme.test',
		'owner@globex.test', 'member@globex.test', 'loner@nowhere.test']) AS e) s;
SELECT email FROM actloom.users ORDER BY email;

BEGIN;
SELECT actloom.act_as(id) FROM actloom.users WHERE email = 'owner@acme.test';
SELECT actloom.create_company('Acme') AS acme \gset
SELECT actloom.add_member(:'acme', id, r::actloom.company_role)
  FROM actloom.users, (VALUES ('exec@acme.test', 'executive'), ('admin@acme.test', 'admin'),
						   ('member@acme.test', 'member')) AS v(e, r)
 WHERE email = e;
COMMIT;

BEGIN;
SELECT actloom.act_as(id) FROM actloom.users WHERE email = 'owner@globex.test';
SELECT actloom.create_company('  Globex  ') AS globex \gset
SELECT actloom.add_member(:'globex', id) FROM actloom.users WHERE email = 'member@globex.test';
COMMIT;
RESET ROLE;

SELECT c.name, u.email, m.role
  FROM actloom.memberships m JOIN actloom.companies c ON c.id = m.company_id
  JOIN actloom.users u ON u.id = m.user_id
 ORDER BY c.name, m.role DESC;

-- An application table, owned by a non-superuser as in production, who
-- runs the migrations: a member of actloom_dba.
CREATE ROLE regress_owner LOGIN IN ROLE actloom_dba;
GRANT CREATE ON SCHEMA public TO regress_owner;
SET ROLE regress_owner;
CREATE TABLE public.reports (
	id serial PRIMARY KEY,
	company_id uuid NOT NULL,
	title text NOT NULL
);
CREATE INDEX ON public.reports (company_id);
SELECT actloom.protect_table('public.reports');
GRANT SELECT, INSERT, UPDATE, DELETE ON public.reports TO regress_app;
GRANT USAGE ON SEQUENCE public.reports_id_seq TO regress_app;
RESET ROLE;

-- Rows of both tenants, written by a superuser (who bypasses policies).
INSERT INTO public.reports (company_id, title) VALUES
	(:'acme', 'acme q1'), (:'acme', 'acme q2'), (:'globex', 'globex q1');
