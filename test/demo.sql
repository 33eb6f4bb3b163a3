-- The demo that "make run" loads once into the database "actloom": two
-- companies with a user in every role, and one application table confined
-- to the acting company by row level security.
\set ON_ERROR_STOP on
CREATE EXTENSION IF NOT EXISTS actloom CASCADE;

DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'demo_app') THEN
		-- The application's login role: a gateway member, no BYPASSRLS.
		CREATE ROLE demo_app LOGIN IN ROLE actloom_gateway;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'demo_auditor') THEN
		CREATE ROLE demo_auditor LOGIN IN ROLE actloom_auditor;
	END IF;
END
$$;

SET ROLE demo_app;
SELECT actloom.create_user(e)
  FROM unnest(ARRAY['olivia@acme.example', 'eve@acme.example', 'adam@acme.example',
					'mia@acme.example', 'gus@globex.example', 'max@globex.example']) AS e;

BEGIN;
SELECT actloom.act_as(id) FROM actloom.users WHERE email = 'olivia@acme.example';
SELECT actloom.create_company('Acme') AS acme \gset
SELECT actloom.add_member(:'acme', u.id, v.r::actloom.company_role)
  FROM actloom.users u JOIN (VALUES ('eve@acme.example', 'executive'),
									('adam@acme.example', 'admin'),
									('mia@acme.example', 'member')) AS v(e, r) ON u.email = v.e;
COMMIT;

BEGIN;
SELECT actloom.act_as(id) FROM actloom.users WHERE email = 'gus@globex.example';
SELECT actloom.create_company('Globex') AS globex \gset
SELECT actloom.add_member(:'globex', id) FROM actloom.users WHERE email = 'max@globex.example';
COMMIT;
RESET ROLE;

CREATE TABLE public.reports (
	id			bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	company_id	uuid NOT NULL,
	title		text NOT NULL,
	created_at	timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reports_company_idx ON public.reports (company_id);
SELECT actloom.protect_table('public.reports');
GRANT SELECT, INSERT, UPDATE, DELETE ON public.reports TO demo_app;

INSERT INTO public.reports (company_id, title) VALUES
	(:'acme', 'Acme quarterly revenue'), (:'acme', 'Acme churn analysis'),
	(:'globex', 'Globex hiring plan');
