-- The demo that "make run" loads once into the database "actloom": two
-- companies with a user in every role, and one application table confined
-- to the acting company by row level security.
\set ON_ERROR_STOP on
CREATE EXTENSION IF NOT EXISTS actloom CASCADE;

DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'demo_app') THEN
		-- The application's login role: a gateway member, no BYPASSRLS; its
		-- logging settings are in demo-logging.sql.
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

-- The machine endpoints of the HTTP shim: two SQL functions over the
-- protected table, exposed as POST /v1/reports and POST /v1/classify.
CREATE FUNCTION public.demo_generate_report(body jsonb, query jsonb) RETURNS jsonb
LANGUAGE sql AS $$
	INSERT INTO public.reports (company_id, title) VALUES (actloom.current_company(), body ->> 'title')
	RETURNING jsonb_build_object('id', id, 'title', title, 'created_at', created_at)
$$;
CREATE FUNCTION public.demo_classify(body jsonb, query jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object(
		'label', CASE WHEN body ->> 'text' ~* '(revenue|churn|profit|cost)' THEN 'finance'
					  WHEN body ->> 'text' ~* '(hiring|team|people)' THEN 'people'
					  ELSE 'other' END,
		'similar_reports', (SELECT count(*) FROM public.reports r
							 WHERE r.title ~* split_part(body ->> 'text', ' ', 1)))
$$;
SELECT actloom.expose(1, 'POST', 'reports', 'public.demo_generate_report(jsonb,jsonb)', 'reports.generate', 'report',
	'{"type": "object", "properties": {"title": {"type": "string", "minLength": 1, "maxLength": 200}},
	  "required": ["title"]}');
SELECT actloom.expose(1, 'POST', 'classify', 'public.demo_classify(jsonb,jsonb)', 'classify.run', 'classify',
	'{"type": "object", "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 10000}},
	  "required": ["text"]}');
