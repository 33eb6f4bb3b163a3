-- The role x action matrix: every action of the permission table, checked
-- for a user of every role, with can() and authorize() agreeing.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
SELECT id AS acme FROM actloom.companies WHERE name = 'Acme' \gset
SELECT id AS globex FROM actloom.companies WHERE name = 'Globex' \gset

SELECT enumlabel, enumsortorder FROM pg_enum
 WHERE enumtypid = 'actloom.company_role'::regtype ORDER BY enumsortorder;
SELECT 'member'::actloom.company_role < 'admin' AS ranked,
	   'admin'::actloom.company_role < 'executive' AS ranked,
	   'executive'::actloom.company_role < 'owner' AS ranked;

CREATE TEMP TABLE matrix (role actloom.company_role, action text, can boolean, authorized boolean);
GRANT ALL ON matrix TO regress_app;

-- One transaction per role: act as that role's user and ask for every action.
CREATE FUNCTION pg_temp.probe(r actloom.company_role, company uuid) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	a text;
	ok boolean;
BEGIN
	FOR a IN SELECT action FROM actloom.permissions ORDER BY action LOOP
		BEGIN
			PERFORM actloom.authorize(company, a);
			ok := true;
		EXCEPTION WHEN insufficient_privilege THEN
			ok := false;
		END;
		INSERT INTO matrix VALUES (r, a, actloom.can(company, a), ok);
	END LOOP;
END
$$;

SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(id, :'acme') FROM actloom.users WHERE email = 'member@acme.test';
SELECT actloom.current_role();
SELECT pg_temp.probe('member', :'acme');
COMMIT;
BEGIN;
SELECT actloom.act_as(id, :'acme') FROM actloom.users WHERE email = 'admin@acme.test';
SELECT actloom.current_role();
SELECT pg_temp.probe('admin', :'acme');
COMMIT;
BEGIN;
SELECT actloom.act_as(id, :'acme') FROM actloom.users WHERE email = 'exec@acme.test';
SELECT actloom.current_role();
SELECT pg_temp.probe('executive', :'acme');
COMMIT;
BEGIN;
SELECT actloom.act_as(id, :'acme') FROM actloom.users WHERE email = 'owner@acme.test';
SELECT actloom.current_role();
SELECT pg_temp.probe('owner', :'acme');
COMMIT;
RESET ROLE;

-- The matrix as the product defines it.
SELECT p.action, p.min_role,
	   max(CASE WHEN m.role = 'member' THEN m.can::int END) AS member,
	   max(CASE WHEN m.role = 'admin' THEN m.can::int END) AS admin,
	   max(CASE WHEN m.role = 'executive' THEN m.can::int END) AS executive,
	   max(CASE WHEN m.role = 'owner' THEN m.can::int END) AS owner
  FROM actloom.permissions p JOIN matrix m USING (action)
 GROUP BY p.action, p.min_role ORDER BY p.action;

-- Every cell agrees with the permission table, and authorize() with can().
SELECT count(*) AS cells,
	   count(*) FILTER (WHERE m.can = (m.role >= p.min_role)) AS as_table,
	   count(*) FILTER (WHERE m.can = m.authorized) AS can_equals_authorize
  FROM matrix m JOIN actloom.permissions p USING (action);

-- Authorization is data: raising an action's role takes effect at once.
UPDATE actloom.permissions SET min_role = 'owner' WHERE action = 'reports.generate';
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(id, :'acme') FROM actloom.users WHERE email = 'exec@acme.test';
SELECT actloom.can(:'acme', 'reports.generate');
SELECT actloom.authorize(:'acme', 'reports.generate');
ROLLBACK;
RESET ROLE;
UPDATE actloom.permissions SET min_role = 'member' WHERE action = 'reports.generate';

-- require_role ranks roles the same way.
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(id, :'acme') FROM actloom.users WHERE email = 'admin@acme.test';
SELECT actloom.require_role(:'acme', 'member');
SELECT actloom.require_role(:'acme', 'admin');
SELECT actloom.require_role(:'acme', 'executive');
ROLLBACK;

-- A user acting in one company is refused in another, even one they could
-- join; and a user is refused where they are no member at all.
BEGIN;
SELECT actloom.act_as(id, :'acme') FROM actloom.users WHERE email = 'owner@acme.test';
SELECT actloom.can(:'globex', 'members.read');
SELECT actloom.authorize(:'globex', 'members.read');
ROLLBACK;
BEGIN;
SELECT actloom.act_as(id) FROM actloom.users WHERE email = 'owner@acme.test';
SELECT actloom.current_company() IS NULL AS no_company, actloom.current_role();
SELECT actloom.can(:'acme', 'members.read') AS acme, actloom.can(:'globex', 'members.read') AS globex;
SELECT actloom.authorize(:'globex', 'members.read');
ROLLBACK;
-- Nobody acting: refused with a hint.
SELECT actloom.can(:'acme', 'members.read');
SELECT actloom.authorize(:'acme', 'members.read');
-- An unknown action is an error (22023) before any verdict: when nobody
-- acts, and when the actor acts in another company.
SELECT actloom.can(:'acme', 'members.fly');
SELECT actloom.authorize(:'acme', 'members.fly');
BEGIN;
SELECT actloom.act_as(id, :'acme') FROM actloom.users WHERE email = 'owner@acme.test';
SELECT actloom.can(:'globex', 'members.fly');
SELECT actloom.authorize(:'globex', 'members.fly');
ROLLBACK;
RESET ROLE;
