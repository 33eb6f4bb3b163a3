-- The actor context and authorization

--------------------------------------------------------------------------
-- The actor context (context.c)
--------------------------------------------------------------------------
CREATE FUNCTION actloom.act_as("user" uuid, company uuid DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'act_as'
LANGUAGE C VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom.act_as(uuid, uuid) IS
	'make a user the actor of this transaction, in a company they belong to; gateway only';

CREATE FUNCTION actloom.current_user_id()
RETURNS uuid
AS 'MODULE_PATHNAME', 'current_user_id'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom.current_user_id() IS 'the acting user, or NULL';

CREATE FUNCTION actloom.current_company()
RETURNS uuid
AS 'MODULE_PATHNAME', 'current_company'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom.current_company() IS
	'the company the actor acts in, or NULL; row level security keys on it';

CREATE FUNCTION actloom.current_api_key()
RETURNS text
AS 'MODULE_PATHNAME', 'current_api_key'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom.current_api_key() IS 'the id of the acting API key, or NULL';

CREATE FUNCTION actloom.current_actor_kind()
RETURNS text
AS 'MODULE_PATHNAME', 'current_actor_kind'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom.current_actor_kind() IS
	'who acts: ''user'', ''api_key'', or NULL when nobody acts';

CREATE FUNCTION actloom.current_role()
RETURNS actloom.company_role
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
	SELECT m.role FROM actloom.memberships m
	WHERE m.company_id = actloom.current_company()
	  AND m.user_id = actloom.current_user_id()
$$;
COMMENT ON FUNCTION actloom.current_role() IS
	'the actor''s role in the company it acts in, as it is now, or NULL';

--------------------------------------------------------------------------
-- Authorization (roles.c)
--------------------------------------------------------------------------
CREATE FUNCTION actloom.authorize(company uuid, action text)
RETURNS void
AS 'MODULE_PATHNAME', 'authorize'
LANGUAGE C VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom.authorize(uuid, text) IS
	'raise 42501 unless the current actor may do the action in the company';

CREATE FUNCTION actloom.can(company uuid, action text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'can'
LANGUAGE C STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom.can(uuid, text) IS
	'whether the current actor may do the action in the company';

CREATE FUNCTION actloom.require_role(company uuid, min_role actloom.company_role)
RETURNS void
AS 'MODULE_PATHNAME', 'require_role'
LANGUAGE C VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom.require_role(uuid, actloom.company_role) IS
	'raise 42501 unless the current actor holds at least min_role in the company';

GRANT EXECUTE ON FUNCTION
	actloom.act_as(uuid, uuid),
	actloom.current_role(),
	actloom.authorize(uuid, text),
	actloom.can(uuid, text),
	actloom.require_role(uuid, actloom.company_role)
	TO actloom_gateway;
