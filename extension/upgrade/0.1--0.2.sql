\echo Use "ALTER EXTENSION actloom UPDATE TO '0.2'" to load this file. \quit
-- actloom 0.1 to 0.2.  The Makefile assembles extension/actloom--0.1--0.2.sql
-- from this file, replacing each "\ir" line with the fragment it names.
--
-- A change to an object of 0.1 is written here and, the same, in the
-- fragment of extension/sql/ that creates it for a fresh install; a fragment
-- new in 0.2 is only included.  The upgrade test (test/t/090_upgrade.pl)
-- compares an upgraded database with a fresh one and prints any drift.

-- company_audit: a NULL max_entries is refused (22004), not "no limit".
CREATE OR REPLACE FUNCTION actloom.company_audit(company uuid, after_seq bigint DEFAULT 0,
												 max_entries integer DEFAULT 100)
RETURNS SETOF actloom.audit_log
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'audit.read');
	PERFORM actloom._require_arg(max_entries, 'max_entries');
	IF max_entries NOT BETWEEN 1 AND 1000 THEN
		RAISE EXCEPTION 'max_entries must be between 1 and 1000'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	RETURN QUERY
		SELECT * FROM actloom.audit_log a
		 WHERE a.chain = company AND a.seq > coalesce(after_seq, 0)
		 ORDER BY a.seq LIMIT max_entries;
END
$$;

-- unexpose refuses NULL arguments (22004).
CREATE OR REPLACE FUNCTION actloom.unexpose(version integer, method text, path text)
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
		RAISE EXCEPTION 'endpoint % /v%/% does not exist', m, version, clean_path
			USING ERRCODE = 'no_data_found';
	END IF;
	PERFORM pg_notify('actloom_endpoints', format('%s /v%s/%s', m, version, clean_path));
END
$$;

-- Privileges last, as in the install script: EXECUTE is revoked from PUBLIC
-- on every function of the schema, new ones included, and granted back
-- where the privileges fragment says.  Re-applying it to the objects of 0.1
-- changes nothing for them.
\ir ../sql/99_privileges.sql
