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
	('SELECT actloom.rate_limit_admitted(NULL)')
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
RESET ROLE;
SET ROLE regress_outsider;
SELECT actloom.rate_limit_take('c', 'k', 1, 1, 1);
SELECT actloom.rate_limit_admit(gen_random_uuid(), '{c}', '{k}', '{1}', '{1}', '{1}');
SELECT actloom.rate_limit_admitted(gen_random_uuid());
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
