-- The endpoint registry: expose, unexpose, endpoint_registry.
\set SHOW_CONTEXT never
CREATE FUNCTION public.ep_echo(body jsonb, query jsonb) RETURNS jsonb
LANGUAGE sql AS $$ SELECT jsonb_build_object('body', body, 'query', query) $$;
CREATE FUNCTION public.ep_wrong_args(body jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT body $$;
CREATE FUNCTION public.ep_wrong_result(body jsonb, query jsonb) RETURNS text LANGUAGE sql AS $$ SELECT '' $$;
CREATE FUNCTION public.ep_set(body jsonb, query jsonb) RETURNS SETOF jsonb LANGUAGE sql AS $$ SELECT body $$;
CREATE PROCEDURE public.ep_proc(body jsonb, query jsonb) LANGUAGE sql AS $$ SELECT 1 $$;

SELECT actloom.expose(1, 'post', '/reports', 'public.ep_echo(jsonb,jsonb)', 'reports.generate', 'report',
	'{"type": "object", "properties": {"title": {"type": "string", "minLength": 1, "maxLength": 200},
	  "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}, "maxItems": 5}},
	  "required": ["title"]}',
	'{"type": "object", "properties": {"dry_run": {"type": "boolean"}}}');
SELECT actloom.expose(1, 'GET', 'reports', 'public.ep_echo(jsonb,jsonb)', 'reports.read');
SELECT version, method, path, call_sql, required_scope, rate_class FROM actloom.endpoint_registry();
SELECT path, method, jsonb_pretty(body_schema) FROM actloom.endpoint_registry() WHERE body_schema IS NOT NULL;

-- exposing again replaces
SELECT actloom.expose(1, 'GET', 'reports', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'api', NULL,
	'{"type": "object", "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 100}}}');
SELECT version, method, path, rate_class, query_schema IS NOT NULL AS has_query FROM actloom.endpoints ORDER BY 1, 2, 3;

-- functions of the wrong shape
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_wrong_args(jsonb)', 'reports.read');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_wrong_result(jsonb,jsonb)', 'reports.read');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_set(jsonb,jsonb)', 'reports.read');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_proc(jsonb,jsonb)', 'reports.read');

-- bad routes, scopes and classes
SELECT actloom.expose(0, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read');
SELECT actloom.expose(1, 'HEAD', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read');
SELECT actloom.expose(1, 'POST', 'a/../b', 'public.ep_echo(jsonb,jsonb)', 'reports.read');
SELECT actloom.expose(1, 'POST', 'A%20b', 'public.ep_echo(jsonb,jsonb)', 'reports.read');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.everything');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'No Such Class');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', NULL);

-- invalid schemas, one rule each
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'api', s::jsonb)
  FROM (VALUES ('[]')) v(s);
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'api', '{"type": "obj"}');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'api', '{"oneOf": []}');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'api', '{"minLength": -1}');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'api', '{"minLength": 1.5}');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'api', '{"minItems": 3, "maxItems": 2}');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'api', '{"minimum": "1"}');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'api', '{"enum": []}');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'api', '{"format": "ipv4"}');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'api', '{"pattern": "("}');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'api', '{"additionalProperties": {}}');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'api', '{"type": "object", "required": ["a"]}');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'api',
	'{"type": "object", "properties": {"a": {"type": "array", "items": {"type": "string", "maxLength": "9"}}}}');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'api', NULL, '{"type": "array"}');
SELECT actloom.expose(1, 'POST', 'x', 'public.ep_echo(jsonb,jsonb)', 'reports.read', 'api', NULL,
	'{"type": "object", "properties": {"ids": {"type": "array"}}}');
SELECT count(*) AS endpoints FROM actloom.endpoints;

-- a message quotes at most 100 characters of any input, then "..."
-- A text with each run of ten or more equal characters shown as c{n}.
CREATE FUNCTION pg_temp.runs(t text) RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(CASE WHEN length(r.m[1]) >= 10 THEN format('%s{%s}', left(r.m[1], 1), length(r.m[1]))
						   ELSE r.m[1] END, '' ORDER BY r.n)
	  FROM regexp_matches(t, '((.)\2*)', 'g') WITH ORDINALITY AS r(m, n)
$$;
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
SELECT input, length(e) AS message_length, pg_temp.runs(e) AS error
  FROM (VALUES ('method', 'x', 'p', 'reports.read', 'api', NULL, NULL),
			   ('path', 'GET', 'x', 'reports.read', 'api', NULL, NULL),
			   ('rate class', 'GET', 'p', 'reports.read', 'x', NULL, NULL),
			   ('scope', 'GET', 'p', 'x', 'api', NULL, NULL),
			   ('schema keyword', 'POST', 'p', 'reports.read', 'api', '{"x": 1}', NULL),
			   ('schema path', 'POST', 'p', 'reports.read', 'api', '{"properties": {"x": {"type": "obj"}}}', NULL),
			   ('required property', 'POST', 'p', 'reports.read', 'api', '{"required": ["x"]}', NULL),
			   ('query parameter', 'GET', 'p', 'reports.read', 'api', NULL,
				'{"type": "object", "properties": {"x": {}}}'))
	   AS t(input, method, path, scope, rate_class, body_schema, query_schema),
	   LATERAL (SELECT repeat('x', 1048576) AS x) big,
	   LATERAL pg_temp.err(format('SELECT actloom.expose(1, %L, %L, ''public.ep_echo(jsonb,jsonb)'', %L, %L, %L, %L)',
								  replace(method, 'x', big.x), replace(path, 'x', big.x),
								  replace(scope, 'x', big.x), replace(rate_class, 'x', big.x),
								  replace(body_schema, '"x"', '"' || big.x || '"'),
								  replace(query_schema, '"x"', '"' || big.x || '"'))) AS e;
SELECT pg_temp.runs(e) AS unexpose_long_path
  FROM pg_temp.err(format('SELECT actloom.unexpose(1, ''GET'', %L)', repeat('x', 1048576))) AS e;

-- only superusers change the registry; the gateway reads it
SET ROLE regress_app;
SELECT count(*) AS visible FROM actloom.endpoint_registry();
SELECT actloom.expose(1, 'POST', 'y', 'public.ep_echo(jsonb,jsonb)', 'reports.read');
SELECT actloom.unexpose(1, 'GET', 'reports');
SELECT count(*) FROM actloom.endpoints;
RESET ROLE;
SET ROLE regress_outsider;
SELECT count(*) FROM actloom.endpoint_registry();
RESET ROLE;

SELECT actloom.unexpose(1, 'GET', '/reports');
SELECT actloom.unexpose(1, 'GET', 'reports');
SELECT method, path FROM actloom.endpoints;
SELECT actloom.unexpose(1, 'POST', 'reports');
SELECT actloom.unexpose(NULL, NULL, NULL);
SELECT actloom.unexpose(1, 'GET', NULL);
DROP FUNCTION public.ep_echo(jsonb, jsonb), public.ep_wrong_args(jsonb), public.ep_wrong_result(jsonb, jsonb),
	public.ep_set(jsonb, jsonb);
DROP PROCEDURE public.ep_proc(jsonb, jsonb);
