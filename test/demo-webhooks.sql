-- make run: the demo's webhooks (run at every start, so an existing demo
-- database gets them too).  Its receiver speaks plain HTTP on loopback,
-- which a real deployment never allows.
ALTER DATABASE actloom SET actloom.webhook_allow_http = on;

-- A report created through POST /v1/reports emits "report.created" in the
-- same transaction: the event exists exactly when the report does.
CREATE OR REPLACE FUNCTION public.demo_generate_report(body jsonb, query jsonb) RETURNS jsonb
LANGUAGE sql AS $$
	WITH r AS (
		INSERT INTO public.reports (company_id, title) VALUES (actloom.current_company(), body ->> 'title')
		RETURNING jsonb_build_object('id', id, 'title', title, 'created_at', created_at) AS report
	)
	SELECT r.report || jsonb_build_object('event', actloom.webhook_emit('report.created', r.report)) FROM r
$$;
