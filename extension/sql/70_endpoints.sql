--------------------------------------------------------------------------
-- The endpoint registry: SQL functions the HTTP shim serves as versioned
-- machine endpoints, /v{version}/{path}, behind API keys.
--
-- The shim loads the registry through endpoint_registry() and reloads it
-- when expose or unexpose NOTIFY the channel "actloom_endpoints".  The
-- schemas are a documented subset of JSON Schema (README.md); expose
-- refuses anything outside it, so the shim never meets a rule it does not
-- understand.
--------------------------------------------------------------------------
CREATE TABLE actloom.endpoints (
	version			integer NOT NULL CHECK (version BETWEEN 1 AND 999),
	method			text NOT NULL CHECK (method IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE')),
	path			text NOT NULL
		CHECK (path ~ '^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$' AND length(path) <= 200),
	fn				regprocedure NOT NULL,
	required_scope	text NOT NULL REFERENCES actloom.permissions (action) ON UPDATE CASCADE,
	rate_class		text NOT NULL DEFAULT 'api' CHECK (rate_class ~ '^[a-z0-9_]{1,31}$'),
	body_schema		jsonb,
	query_schema	jsonb,
	exposed_at		timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (version, method, path)
);
COMMENT ON TABLE actloom.endpoints IS
	'SQL functions served by the HTTP shim as /v{version}/{path}; change with expose and unexpose';
SELECT pg_catalog.pg_extension_config_dump('actloom.endpoints', '');

-- Raise 22023 unless a schema is within the supported subset; "at" is the
-- JSON pointer of the schema inside the argument, for the message.
CREATE FUNCTION actloom._check_schema(schema jsonb, for_query boolean, at text, depth integer DEFAULT 0)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	types constant text[] := ARRAY['object', 'array', 'string', 'integer', 'number', 'boolean', 'null'];
	keywords constant text[] := ARRAY['type', 'properties', 'required', 'additionalProperties', 'items',
		'minItems', 'maxItems', 'minLength', 'maxLength', 'minimum', 'maximum', 'enum', 'pattern',
		'format', 'title', 'description'];
	k text;
	v jsonb;
	t text[];
	problem text;
BEGIN
	IF jsonb_typeof(schema) IS DISTINCT FROM 'object' THEN
		problem := 'a schema must be a JSON object';
	ELSIF depth > 32 THEN
		problem := 'the schema nests deeper than 32 levels';
	END IF;
	IF problem IS NULL THEN
		SELECT format('unsupported keyword "%s"', actloom._quotable(key)) INTO problem
		  FROM jsonb_object_keys(schema) AS key WHERE key <> ALL (keywords) LIMIT 1;
	END IF;
	IF problem IS NULL AND schema ? 'type' THEN
		v := schema -> 'type';
		IF jsonb_typeof(v) = 'string' THEN
			t := ARRAY[v #>> '{}'];
		ELSIF jsonb_typeof(v) = 'array' AND jsonb_array_length(v) > 0
			  AND NOT EXISTS (SELECT FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string') THEN
			t := ARRAY(SELECT jsonb_array_elements_text(v));
		END IF;
		IF t IS NULL OR NOT t <@ types THEN
			problem := '"type" must be one of object, array, string, integer, number, boolean, null';
		END IF;
	END IF;
	IF problem IS NULL THEN
		SELECT format('"%s" must be %s', kw.k, kw.what) INTO problem
		  FROM (VALUES ('minItems', 'a non-negative integer'), ('maxItems', 'a non-negative integer'),
					   ('minLength', 'a non-negative integer'), ('maxLength', 'a non-negative integer'),
					   ('minimum', 'a number'), ('maximum', 'a number'),
					   ('title', 'a string'), ('description', 'a string')) AS kw(k, what)
		 WHERE schema ? kw.k
		   AND NOT CASE kw.what
				   WHEN 'a non-negative integer' THEN (schema -> kw.k)::text ~ '^[0-9]+$'
				   WHEN 'a number' THEN jsonb_typeof(schema -> kw.k) = 'number'
				   ELSE jsonb_typeof(schema -> kw.k) = 'string' END
		 LIMIT 1;
	END IF;
	IF problem IS NULL THEN
		SELECT format('"%s" exceeds "%s"', lo, hi) INTO problem
		  FROM (VALUES ('minItems', 'maxItems'), ('minLength', 'maxLength'), ('minimum', 'maximum')) AS p(lo, hi)
		 WHERE (schema ->> lo)::numeric > (schema ->> hi)::numeric LIMIT 1;
	END IF;
	IF problem IS NULL AND schema ? 'enum'
	   AND (jsonb_typeof(schema -> 'enum') <> 'array' OR jsonb_array_length(schema -> 'enum') = 0) THEN
		problem := '"enum" must be a non-empty array';
	END IF;
	IF problem IS NULL AND schema ? 'format'
	   AND (schema -> 'format') NOT IN ('"email"', '"uuid"', '"uri"', '"date-time"') THEN
		problem := '"format" must be one of email, uuid, uri, date-time';
	END IF;
	IF problem IS NULL AND schema ? 'pattern' THEN
		IF jsonb_typeof(schema -> 'pattern') <> 'string' OR length(schema ->> 'pattern') > 1024 THEN
			problem := '"pattern" must be a regular expression';
		ELSE
			BEGIN
				PERFORM '' ~ (schema ->> 'pattern');
			EXCEPTION WHEN invalid_regular_expression THEN
				problem := '"pattern" must be a regular expression';
			END;
		END IF;
	END IF;
	IF problem IS NULL AND schema ? 'additionalProperties'
	   AND jsonb_typeof(schema -> 'additionalProperties') <> 'boolean' THEN
		problem := '"additionalProperties" must be true or false';
	END IF;
	IF problem IS NULL AND schema ? 'properties' AND jsonb_typeof(schema -> 'properties') <> 'object' THEN
		problem := '"properties" must be an object';
	END IF;
	IF problem IS NULL AND schema ? 'required' THEN
		IF jsonb_typeof(schema -> 'required') <> 'array'
		   OR EXISTS (SELECT FROM jsonb_array_elements(schema -> 'required') e WHERE jsonb_typeof(e) <> 'string') THEN
			problem := '"required" must be an array of property names';
		ELSIF (schema -> 'additionalProperties') IS DISTINCT FROM 'true' THEN
			SELECT format('required property "%s" is not in "properties"', actloom._quotable(r)) INTO problem
			  FROM jsonb_array_elements_text(schema -> 'required') r
			 WHERE NOT coalesce(schema -> 'properties' ? r, false) LIMIT 1;
		END IF;
	END IF;
	IF problem IS NULL AND for_query
	   AND ((schema -> 'type') IS DISTINCT FROM '"object"') THEN
		problem := 'a query schema must be of type object';
	END IF;
	IF problem IS NOT NULL THEN
		RAISE EXCEPTION 'invalid schema at "%": %', actloom._quotable(at), problem
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The supported subset of JSON Schema is listed in the actloom README.';
	END IF;
	FOR k, v IN SELECT key, value FROM jsonb_each(coalesce(schema -> 'properties', '{}')) LOOP
		IF for_query AND ((v -> 'type') IS NULL OR (v -> 'type') NOT IN ('"string"', '"integer"', '"number"', '"boolean"')) THEN
			RAISE EXCEPTION 'invalid schema at "%": a query parameter''s type is string, integer, number or boolean',
				actloom._quotable(at || '/properties/' || k)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		PERFORM actloom._check_schema(v, false, at || '/properties/' || k, depth + 1);
	END LOOP;
	IF schema ? 'items' THEN
		PERFORM actloom._check_schema(schema -> 'items', false, at || '/items', depth + 1);
	END IF;
END
$$;
COMMENT ON FUNCTION actloom._check_schema(jsonb, boolean, text, integer) IS
	'internal: raise 22023 unless a schema is within the subset the shim validates';

CREATE FUNCTION actloom.expose(version integer, method text, path text, fn regprocedure,
							   required_scope text, rate_class text DEFAULT 'api',
							   body_schema jsonb DEFAULT NULL, query_schema jsonb DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	p pg_proc;
	m text := upper(method);
	clean_path text := ltrim(path, '/');
BEGIN
	PERFORM actloom._require_arg(version, 'version');
	PERFORM actloom._require_arg(method, 'method');
	PERFORM actloom._require_arg(path, 'path');
	PERFORM actloom._require_arg(fn, 'fn');
	PERFORM actloom._require_arg(required_scope, 'required_scope');
	PERFORM actloom._require_arg(rate_class, 'rate_class');
	IF version NOT BETWEEN 1 AND 999 THEN
		RAISE EXCEPTION 'endpoint version must be between 1 and 999' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF m NOT IN ('GET', 'POST', 'PUT', 'PATCH', 'DELETE') THEN
		RAISE EXCEPTION 'method "%" cannot be exposed', actloom._quotable(method)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'The methods are GET, POST, PUT, PATCH and DELETE.';
	END IF;
	IF clean_path !~ '^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*$' OR length(clean_path) > 200 THEN
		RAISE EXCEPTION 'invalid endpoint path "%"', actloom._quotable(path)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A path is up to 200 characters: segments of a-z, 0-9, "_" and "-", separated by "/".';
	END IF;
	IF rate_class !~ '^[a-z0-9_]{1,31}$' THEN
		RAISE EXCEPTION 'invalid rate class name "%"', actloom._quotable(rate_class)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A rate class name is 1 to 31 characters a-z, 0-9 and "_", as in the shim''s configuration.';
	END IF;
	SELECT * INTO p FROM pg_proc WHERE oid = fn;
	IF p.prokind <> 'f' OR p.proretset OR p.prorettype <> 'jsonb'::regtype
	   OR p.pronargs <> 2 OR p.proargtypes[0] <> 'jsonb'::regtype OR p.proargtypes[1] <> 'jsonb'::regtype THEN
		RAISE EXCEPTION 'function % cannot be an endpoint', fn
			USING ERRCODE = 'invalid_function_definition',
				  DETAIL = 'An endpoint function takes (body jsonb, query jsonb) and returns jsonb.';
	END IF;
	IF NOT EXISTS (SELECT FROM actloom.permissions WHERE action = required_scope) THEN
		RAISE EXCEPTION 'unknown scope "%"', actloom._quotable(required_scope)
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A scope is an action of actloom.permissions.';
	END IF;
	IF body_schema IS NOT NULL THEN
		PERFORM actloom._check_schema(body_schema, false, 'body_schema');
	END IF;
	IF query_schema IS NOT NULL THEN
		PERFORM actloom._check_schema(query_schema, true, 'query_schema');
	END IF;
	INSERT INTO actloom.endpoints AS e (version, method, path, fn, required_scope, rate_class,
										body_schema, query_schema)
	VALUES (version, m, clean_path, fn, required_scope, rate_class, body_schema, query_schema)
	ON CONFLICT ON CONSTRAINT endpoints_pkey DO UPDATE
	   SET fn = excluded.fn, required_scope = excluded.required_scope,
		   rate_class = excluded.rate_class, body_schema = excluded.body_schema,
		   query_schema = excluded.query_schema, exposed_at = now();
	PERFORM pg_notify('actloom_endpoints', format('%s /v%s/%s', m, version, clean_path));
END
$$;
COMMENT ON FUNCTION actloom.expose(integer, text, text, regprocedure, text, text, jsonb, jsonb) IS
	'serve a function (body jsonb, query jsonb) returns jsonb as /v{version}/{path} through the HTTP shim';

CREATE FUNCTION actloom.unexpose(version integer, method text, path text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	m text := upper(method);
	clean_path text := ltrim(path, '/');
BEGIN
	PERFORM actloom._require_arg(version, 'version');
	PERFORM actloom._require_arg(method, 'method');
	PERFORM actloom._require_arg(path, 'path');
	DELETE FROM actloom.endpoints e
	 WHERE e.version = unexpose.version AND e.method = m AND e.path = clean_path;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'endpoint % /v%/% does not exist', actloom._quotable(m), version,
			actloom._quotable(clean_path)
			USING ERRCODE = 'no_data_found';
	END IF;
	PERFORM pg_notify('actloom_endpoints', format('%s /v%s/%s', m, version, clean_path));
END
$$;
COMMENT ON FUNCTION actloom.unexpose(integer, text, text) IS 'stop serving an endpoint';

-- What the shim loads: the statement text calling each function is built
-- here, from the catalog, with quoted names.
CREATE FUNCTION actloom.endpoint_registry()
RETURNS TABLE (version integer, method text, path text, call_sql text, required_scope text,
			   rate_class text, body_schema jsonb, query_schema jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
	SELECT e.version, e.method, e.path,
		   format('SELECT %I.%I($1::pg_catalog.jsonb, $2::pg_catalog.jsonb)::pg_catalog.text',
				  n.nspname, p.proname),
		   e.required_scope, e.rate_class, e.body_schema, e.query_schema
	  FROM actloom.endpoints e
	  JOIN pg_proc p ON p.oid = e.fn
	  JOIN pg_namespace n ON n.oid = p.pronamespace
	 ORDER BY e.version, e.path, e.method
$$;
COMMENT ON FUNCTION actloom.endpoint_registry() IS 'the endpoint registry as the HTTP shim loads it';

GRANT EXECUTE ON FUNCTION actloom.endpoint_registry() TO actloom_gateway;
