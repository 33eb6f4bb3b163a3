-- Bad input gets a specific SQLSTATE and a message, and writes nothing.
-- err() runs a statement and shows the SQLSTATE and message it raised.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
SELECT id AS acme FROM actloom.companies WHERE name = 'Acme' \gset
SELECT id AS acme_owner FROM actloom.users WHERE email = 'owner@acme.test' \gset
SELECT id AS loner FROM actloom.users WHERE email = 'loner@nowhere.test' \gset
CREATE TEMP TABLE before AS
	SELECT (SELECT count(*) FROM actloom.users) AS users,
		   (SELECT count(*) FROM actloom.companies) AS companies,
		   (SELECT string_agg(company_id::text || user_id::text || role::text, ','
							  ORDER BY company_id, user_id) FROM actloom.memberships) AS memberships;
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

SET ROLE regress_app;
\set a '''' :acme ''''
\set o '''' :acme_owner ''''
\set l '''' :loner ''''

BEGIN;
SELECT actloom.act_as(:'acme_owner', :'acme');
SELECT regexp_replace(s, '[0-9a-f]{8}-[0-9a-f-]{27}', '<uuid>', 'g') AS statement,
       pg_temp.err(s) AS error FROM (VALUES
	-- NULL arguments: 22004
	('SELECT actloom.act_as(NULL)'),
	('SELECT actloom.create_user(NULL)'),
	('SELECT actloom.authorize(NULL, ''members.read'')'),
	('SELECT actloom.authorize(' || :'a' || ', NULL)'),
	('SELECT actloom.can(' || :'a' || ', NULL)'),
	('SELECT actloom.require_role(' || :'a' || ', NULL)'),
	('SELECT actloom.create_company(NULL)'),
	('SELECT actloom.add_member(NULL, ' || :'l' || ')'),
	('SELECT actloom.add_member(' || :'a' || ', NULL)'),
	('SELECT actloom.add_member(' || :'a' || ', ' || :'l' || ', NULL)'),
	('SELECT actloom.set_role(' || :'a' || ', NULL, ''member'')'),
	('SELECT actloom.set_role(' || :'a' || ', ' || :'l' || ', NULL)'),
	('SELECT actloom.remove_member(NULL, ' || :'l' || ')'),
	('SELECT actloom.remove_member(' || :'a' || ', NULL)'),
	('SELECT actloom.members(NULL)'),
	-- unknown ids
	('SELECT actloom.act_as(gen_random_uuid())'),
	('SELECT actloom.add_member(' || :'a' || ', gen_random_uuid())'),
	('SELECT actloom.set_role(' || :'a' || ', gen_random_uuid(), ''member'')'),
	('SELECT actloom.remove_member(' || :'a' || ', gen_random_uuid())'),
	('SELECT actloom.add_member(gen_random_uuid(), ' || :'l' || ')'),
	-- malformed input
	('SELECT actloom.create_user(''not an email'')'),
	('SELECT actloom.act_as(''not-a-uuid'')'),
	('SELECT actloom.authorize(' || :'a' || ', ''members.fly'')'),
	('SELECT actloom.can(' || :'a' || ', ''DROP TABLE users'')'),
	('SELECT actloom.add_member(' || :'a' || ', ' || :'l' || ', ''boss'')'),
	('SELECT actloom.require_role(' || :'a' || ', ''root'')'),
	('SELECT actloom.create_company('''')'),
	-- duplicates
	('SELECT actloom.create_user(''OWNER@acme.test'')'),
	('SELECT actloom.add_member(' || :'a' || ', ' || :'o' || ', ''member'')')
) AS t(s);
-- Each failed call above was rolled back alone; the actor is still there.
SELECT actloom.current_user_id() = :'acme_owner' AS still_acting;
COMMIT;

-- An input that a message quotes is cut to its first 100 characters and
-- "...", so that a megabyte of input makes no megabyte of message (nor of
-- server log).
-- A text with each run of ten or more equal characters shown as c{n}.
CREATE FUNCTION pg_temp.runs(t text) RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(CASE WHEN length(r.m[1]) >= 10 THEN format('%s{%s}', left(r.m[1], 1), length(r.m[1]))
						   ELSE r.m[1] END, '' ORDER BY r.n)
	  FROM regexp_matches(t, '((.)\2*)', 'g') WITH ORDINALITY AS r(m, n)
$$;
BEGIN;
SELECT actloom.act_as(:'acme_owner', :'acme');
SELECT call, length(e) AS message_length, pg_temp.runs(e) AS error
  FROM (VALUES
	('audit, 100 characters', pg_temp.err(format('SELECT actloom.audit(%L)', repeat('x', 100)))),
	('audit, 101 characters', pg_temp.err(format('SELECT actloom.audit(%L)', repeat('x', 101)))),
	('audit, 1 Mi characters', pg_temp.err(format('SELECT actloom.audit(%L)', repeat('é', 1048576)))),
	('authorize', pg_temp.err(format('SELECT actloom.authorize(%L, %L)', :'acme', repeat('x', 1048576)))),
	('api_key_create', pg_temp.err(format('SELECT actloom.api_key_create(%L, ''k'', ARRAY[%L])',
										  :'acme', repeat('x', 1048576)))),
	('api_key_revoke', pg_temp.err(format('SELECT actloom.api_key_revoke(%L)', repeat('x', 1048576))))
) AS t(call, e);
COMMIT;
SELECT length(e) AS message_length, pg_temp.runs(e) AS can_nobody_acting
  FROM pg_temp.err(format('SELECT actloom.can(%L, %L)', :'acme', repeat('x', 1048576))) AS e;

-- A user who does not exist, or a company they are not in, is refused.
BEGIN;
SELECT pg_temp.err('SELECT actloom.act_as(' || :'o' || ', gen_random_uuid())');
SELECT actloom.current_user_id();
COMMIT;
RESET ROLE;

-- Nothing changed.
SELECT b.users = (SELECT count(*) FROM actloom.users) AS users_unchanged,
	   b.companies = (SELECT count(*) FROM actloom.companies) AS companies_unchanged,
	   b.memberships = (SELECT string_agg(company_id::text || user_id::text || role::text, ','
										  ORDER BY company_id, user_id)
						  FROM actloom.memberships) AS memberships_unchanged
  FROM before b;

-- The trigger function refuses being used the wrong way.
CREATE TABLE public.t (company_id uuid, other uuid);
CREATE TRIGGER wrong AFTER INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION actloom.refuse_tenant_move('company_id');
SELECT pg_temp.err('INSERT INTO public.t VALUES (gen_random_uuid())');
DROP TRIGGER wrong ON public.t;
CREATE TRIGGER wrong BEFORE UPDATE ON public.t FOR EACH ROW EXECUTE FUNCTION actloom.refuse_tenant_move();
INSERT INTO public.t VALUES (gen_random_uuid());
SELECT pg_temp.err('UPDATE public.t SET other = gen_random_uuid()');
DROP TRIGGER wrong ON public.t;
CREATE TRIGGER wrong BEFORE UPDATE ON public.t FOR EACH ROW EXECUTE FUNCTION actloom.refuse_tenant_move('missing');
SELECT pg_temp.err('UPDATE public.t SET other = gen_random_uuid()');
DROP TABLE public.t;
