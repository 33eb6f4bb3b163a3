-- The shared rate limiter (rate_limits.store: database): GCRA arithmetic at
-- chosen times, the admission of a request's takes, the purge, bad
-- arguments and privileges.
\set SHOW_CONTEXT never
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
-- One take of class "t" (2 per 10 s, burst 2: T = 5 s) for key "x" at a
-- time given as seconds after a fixed instant.
CREATE FUNCTION pg_temp.take(s numeric, key text DEFAULT 'x', cost integer DEFAULT 1)
RETURNS TABLE (at_s numeric, allowed boolean, remaining integer, reset_after integer, retry_after integer)
LANGUAGE sql AS $$
	SELECT s, t.* FROM actloom._rate_limit_take_at('2030-01-01 00:00:00+00'::timestamptz + s * interval '1 second',
												   't', key, 2, 10, 2, cost) t
$$;

-- A burst of two, then refusals that say when to retry; allowed again at
-- exactly that time, not a microsecond before; whole again when idle.
SELECT * FROM pg_temp.take(0);
SELECT * FROM pg_temp.take(0);
SELECT * FROM pg_temp.take(0);
SELECT * FROM pg_temp.take(4.999999);
SELECT * FROM pg_temp.take(5);
SELECT * FROM pg_temp.take(5);
SELECT * FROM pg_temp.take(60);
-- A refusal moved nothing: the state is what the allowed takes left.
SELECT class, tat FROM actloom.rate_limits ORDER BY 1, 2;

-- Keys are independent, stored as SHA-256 digests, never as given.
SELECT * FROM pg_temp.take(60, 'someone@example.com');
SELECT key_hash = sha256(convert_to('someone@example.com', 'UTF8')) AS digest_of_key
  FROM actloom.rate_limits WHERE tat = '2030-01-01 00:01:05+00' ORDER BY key_hash;
-- Classes too: the same key in another class has its own state.
SELECT allowed, remaining FROM actloom._rate_limit_take_at('2030-01-01 00:01:00+00', 'u', 'x', 2, 10, 2, 1);

-- A cost takes several at once.
SELECT * FROM pg_temp.take(0, 'costly', 2);
SELECT * FROM pg_temp.take(0, 'costly', 1);
SELECT * FROM pg_temp.take(10, 'costly', 2);

-- A very high rate (T rounds to one microsecond) keeps its burst.
SELECT count(*) FILTER (WHERE allowed) AS allowed FROM generate_series(1, 5),
	LATERAL actloom._rate_limit_take_at('2030-01-01', 'fast', 'f', 1000000000, 1, 5, 1);

-- The clock: the database's, now.
SET ROLE regress_app;
SELECT * FROM actloom.rate_limit_take('clock', 'k', 3, 3000, 3);
SELECT allowed, remaining, reset_after BETWEEN 1990 AND 2000 AS reset_2000, retry_after
  FROM actloom.rate_limit_take('clock', 'k', 3, 3000, 3);
SELECT allowed, remaining, reset_after BETWEEN 2990 AND 3000 AS reset_3000, retry_after
  FROM actloom.rate_limit_take('clock', 'k', 3, 3000, 3);
SELECT allowed, remaining, reset_after BETWEEN 2990 AND 3000 AS reset_3000, retry_after BETWEEN 990 AND 1000 AS retry_1000
  FROM actloom.rate_limit_take('clock', 'k', 3, 3000, 3);

-- Admission: the takes in order, stopping at the first refusal; the
-- admission recorded only when every take is allowed, and consumed once.
SELECT * FROM actloom.rate_limit_admit('00000000-0000-4000-8000-000000000001', '{adm_a,adm_b}', '{k,k}',
									   '{10,1}', '{1000,1000}', '{2,1}');
SELECT class, allowed, remaining FROM actloom.rate_limit_admit('00000000-0000-4000-8000-000000000002',
	'{adm_a,adm_b,adm_c}', '{k,k,k}', '{10,1,1}', '{1000,1000,1000}', '{2,1,1}');
RESET ROLE;
SELECT id FROM actloom.rate_limit_admissions ORDER BY id;
SELECT count(*) AS adm_c_untouched FROM actloom.rate_limits WHERE class = 'adm_c';
SET ROLE regress_app;
SELECT actloom.rate_limit_admitted('00000000-0000-4000-8000-000000000001');
SELECT pg_temp.err($$SELECT actloom.rate_limit_admitted('00000000-0000-4000-8000-000000000001')$$) AS again;
SELECT pg_temp.err($$SELECT actloom.rate_limit_admitted('00000000-0000-4000-8000-000000000002')$$) AS refused;
RESET ROLE;

-- A guard: checked taking nothing, charged whatever the state.  Class "g"
-- allows 2 per 10 s, burst 2 (T = 5 s).
CREATE FUNCTION pg_temp.check(s numeric)
RETURNS TABLE (at_s numeric, allowed boolean, remaining integer, reset_after integer, retry_after integer)
LANGUAGE sql AS $$
	SELECT s, c.* FROM actloom._rate_limit_check_at('2030-01-01 00:00:00+00'::timestamptz + s * interval '1 second',
													 'g', 'x', 2, 10, 2) c
$$;
CREATE FUNCTION pg_temp.charge(s numeric) RETURNS void LANGUAGE sql AS $$
	SELECT actloom._rate_limit_charge_at('2030-01-01 00:00:00+00'::timestamptz + s * interval '1 second',
										 'g', 'x', 2, 10, 2)
$$;
SELECT * FROM pg_temp.check(0);
SELECT * FROM pg_temp.check(0);
SELECT count(*) AS states_of_g FROM actloom.rate_limits WHERE class = 'g';
SELECT pg_temp.charge(0), pg_temp.charge(0);
SELECT * FROM pg_temp.check(0);
-- Charges past the limit leave a debt, waited out to the microsecond.
SELECT pg_temp.charge(0), pg_temp.charge(0);
SELECT * FROM pg_temp.check(0);
SELECT * FROM pg_temp.check(14.999999);
SELECT * FROM pg_temp.check(15);

-- A guard around a request's work ("guard": 2 per 1000 s, burst 1).  The
-- work commits: its admission is consumed, nothing is charged.
SET ROLE regress_app;
SELECT allowed FROM actloom.rate_limit_admit('00000000-0000-4000-8000-000000000011', '{guarded}', '{k}',
											 '{10}', '{1000}', '{5}');
SELECT * FROM actloom.rate_limit_guard('00000000-0000-4000-8000-000000000011', 'guard', 'a:1', 2, 1000, 1);
SELECT actloom.rate_limit_admitted('00000000-0000-4000-8000-000000000011');
SELECT actloom.rate_limit_fail('00000000-0000-4000-8000-000000000011', 'guard', 'a:1', 2, 1000, 1) AS charged;
-- The work fails (its consumption of the admission rolls back with it):
-- the failure is charged, once.
SELECT allowed FROM actloom.rate_limit_admit('00000000-0000-4000-8000-000000000012', '{guarded}', '{k}',
											 '{10}', '{1000}', '{5}');
SELECT allowed FROM actloom.rate_limit_guard('00000000-0000-4000-8000-000000000012', 'guard', 'a:1', 2, 1000, 1);
BEGIN;
SELECT actloom.rate_limit_admitted('00000000-0000-4000-8000-000000000012');
ROLLBACK;
SELECT actloom.rate_limit_fail('00000000-0000-4000-8000-000000000012', 'guard', 'a:1', 2, 1000, 1) AS charged;
SELECT actloom.rate_limit_fail('00000000-0000-4000-8000-000000000012', 'guard', 'a:1', 2, 1000, 1) AS again;
-- Now the guard refuses, and withdraws the admission: the work cannot
-- start, and a request that did not run is not charged.
SELECT allowed FROM actloom.rate_limit_admit('00000000-0000-4000-8000-000000000013', '{guarded}', '{k}',
											 '{10}', '{1000}', '{5}');
SELECT allowed, remaining, reset_after BETWEEN 490 AND 500 AS reset_500, retry_after BETWEEN 490 AND 500 AS retry_500
  FROM actloom.rate_limit_guard('00000000-0000-4000-8000-000000000013', 'guard', 'a:1', 2, 1000, 1);
SELECT pg_temp.err($$SELECT actloom.rate_limit_admitted('00000000-0000-4000-8000-000000000013')$$) AS work;
SELECT actloom.rate_limit_fail('00000000-0000-4000-8000-000000000013', 'guard', 'a:1', 2, 1000, 1) AS charged;
-- Another address has its own budget.
SELECT allowed FROM actloom.rate_limit_guard('00000000-0000-4000-8000-000000000014', 'guard', 'a:2', 2, 1000, 1);
RESET ROLE;
SELECT count(*) AS guarded_admissions_left FROM actloom.rate_limit_admissions
 WHERE id::text LIKE '00000000-0000-4000-8000-00000000001_';

-- The purge: states whose TAT has passed go (they would change no verdict),
-- future ones stay; so do admissions younger than a minute.
INSERT INTO actloom.rate_limits VALUES ('old', sha256('a'), now() - interval '1 second');
INSERT INTO actloom.rate_limit_admissions VALUES
	('00000000-0000-4000-8000-000000000003', now() - interval '2 minutes'),
	('00000000-0000-4000-8000-000000000004', now());
SET ROLE regress_app;
SELECT actloom.rate_limit_purge() AS purged;
RESET ROLE;
SELECT class, count(*) FROM actloom.rate_limits GROUP BY class ORDER BY class;
SELECT id FROM actloom.rate_limit_admissions ORDER BY id;

-- Bad arguments: 22004 for NULLs, 22023 for values out of range.
SET ROLE regress_app;
SELECT s AS statement, pg_temp.err(s) AS error FROM (VALUES
	('SELECT actloom.rate_limit_take(NULL, ''k'', 1, 1, 1)'),
	('SELECT actloom.rate_limit_take(''c'', NULL, 1, 1, 1)'),
	('SELECT actloom.rate_limit_take(''c'', ''k'', NULL, 1, 1)'),
	('SELECT actloom.rate_limit_take(''c'', ''k'', 1, NULL, 1)'),
	('SELECT actloom.rate_limit_take(''c'', ''k'', 1, 1, NULL)'),
	('SELECT actloom.rate_limit_take(''c'', ''k'', 1, 1, 1, NULL)'),
	('SELECT actloom.rate_limit_take(''Bad-Class'', ''k'', 1, 1, 1)'),
	('SELECT actloom.rate_limit_take('''', ''k'', 1, 1, 1)'),
	('SELECT actloom.rate_limit_take(repeat(''c'', 32), ''k'', 1, 1, 1)'),
	('SELECT actloom.rate_limit_take(''c'', '''', 1, 1, 1)'),
	('SELECT actloom.rate_limit_take(''c'', repeat(''k'', 1025), 1, 1, 1)'),
	('SELECT actloom.rate_limit_take(''c'', ''k'', 0, 1, 1)'),
	('SELECT actloom.rate_limit_take(''c'', ''k'', 1000000001, 1, 1)'),
	('SELECT actloom.rate_limit_take(''c'', ''k'', 1, 0, 1)'),
	('SELECT actloom.rate_limit_take(''c'', ''k'', 1, 31622401, 1)'),
	('SELECT actloom.rate_limit_take(''c'', ''k'', 1, 1, 0)'),
	('SELECT actloom.rate_limit_take(''c'', ''k'', 1, 1, 2)'),
	('SELECT actloom.rate_limit_take(''c'', ''k'', 5, 1, 2, 0)'),
	('SELECT actloom.rate_limit_take(''c'', ''k'', 5, 1, 2, 3)'),
	('SELECT actloom.rate_limit_admit(NULL, ''{c}'', ''{k}'', ''{1}'', ''{1}'', ''{1}'')'),
	('SELECT actloom.rate_limit_admit(gen_random_uuid(), NULL, ''{k}'', ''{1}'', ''{1}'', ''{1}'')'),
	('SELECT actloom.rate_limit_admit(gen_random_uuid(), ''{c}'', ''{k}'', ''{1}'', ''{1}'', NULL)'),
	('SELECT actloom.rate_limit_admit(gen_random_uuid(), ''{}'', ''{}'', ''{}'', ''{}'', ''{}'')'),
	('SELECT actloom.rate_limit_admit(gen_random_uuid(), ''{c,d}'', ''{k}'', ''{1,1}'', ''{1,1}'', ''{1,1}'')'),
	('SELECT actloom.rate_limit_admit(gen_random_uuid(), ''{{c}}'', ''{k}'', ''{1}'', ''{1}'', ''{1}'')'),
	('SELECT actloom.rate_limit_admit(gen_random_uuid(), ''[0:0]={c}'', ''{k}'', ''{1}'', ''{1}'', ''{1}'')'),
	('SELECT actloom.rate_limit_admit(gen_random_uuid(), array_fill(''c''::text, ARRAY[17]), '
	 || 'array_fill(''k''::text, ARRAY[17]), array_fill(1, ARRAY[17]), array_fill(1, ARRAY[17]), '
	 || 'array_fill(1, ARRAY[17]))'),
	('SELECT actloom.rate_limit_admit(gen_random_uuid(), ''{c,NULL}'', ''{k,k}'', ''{1,1}'', ''{1,1}'', ''{1,1}'')'),
	('SELECT actloom.rate_limit_admit(gen_random_uuid(), ''{c}'', ''{k}'', ''{0}'', ''{1}'', ''{1}'')'),
	('SELECT actloom.rate_limit_admitted(NULL)'),
	('SELECT actloom.rate_limit_guard(NULL, ''c'', ''k'', 1, 1, 1)'),
	('SELECT actloom.rate_limit_guard(gen_random_uuid(), ''c'', NULL, 1, 1, 1)'),
	('SELECT actloom.rate_limit_guard(gen_random_uuid(), ''c'', ''k'', 1, 1, 2)'),
	('SELECT actloom.rate_limit_fail(NULL, ''c'', ''k'', 1, 1, 1)'),
	('SELECT actloom.rate_limit_fail(gen_random_uuid(), ''Bad-Class'', ''k'', 1, 1, 1)'),
	('SELECT actloom.rate_limit_fail(gen_random_uuid(), ''c'', ''k'', 1, 0, 1)')
) AS v(s);
RESET ROLE;
-- Nothing was written by the refused calls.
SELECT count(*) AS states_of_c FROM actloom.rate_limits WHERE class IN ('c', 'd');

-- Privileges: the gateway calls the functions but reads no table; nobody
-- else may do either.
SET ROLE regress_app;
SELECT * FROM actloom.rate_limits;
SELECT * FROM actloom.rate_limit_admissions;
SELECT actloom._rate_limit_take_at(now(), 'c', 'k', 1, 1, 1, 1);
SELECT actloom._rate_limit_charge_at(now(), 'c', 'k', 1, 1, 1);
RESET ROLE;
SET ROLE regress_outsider;
SELECT actloom.rate_limit_take('c', 'k', 1, 1, 1);
SELECT actloom.rate_limit_admit(gen_random_uuid(), '{c}', '{k}', '{1}', '{1}', '{1}');
SELECT actloom.rate_limit_admitted(gen_random_uuid());
SELECT actloom.rate_limit_guard(gen_random_uuid(), 'c', 'k', 1, 1, 1);
SELECT actloom.rate_limit_fail(gen_random_uuid(), 'c', 'k', 1, 1, 1);
SELECT actloom.rate_limit_purge();
RESET ROLE;
SELECT p.oid::regprocedure AS function, p.prosecdef AS definer,
	   has_function_privilege('actloom_gateway', p.oid, 'EXECUTE') AS gateway,
	   has_function_privilege('public', p.oid, 'EXECUTE') AS public
  FROM pg_proc p
 WHERE p.pronamespace = 'actloom'::regnamespace AND p.proname LIKE '%rate_limit%'
 ORDER BY p.proname;
SELECT c.relname, c.relpersistence FROM pg_class c
 WHERE c.relnamespace = 'actloom'::regnamespace AND c.relname LIKE 'rate_limit%' AND c.relkind = 'r'
 ORDER BY 1;

DELETE FROM actloom.rate_limits;
DELETE FROM actloom.rate_limit_admissions;
