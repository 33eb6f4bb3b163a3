-- Every partition and inheritance child of a protected table is protected,
-- at every level, whether it was there when protect_table ran or joined
-- later (CREATE TABLE ... PARTITION OF or INHERITS, ATTACH PARTITION,
-- INHERIT), and stays protected when detached: the application cannot
-- reach another company's rows by naming a partition.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
SELECT id AS acme FROM actloom.companies WHERE name = 'Acme' \gset
SELECT id AS globex FROM actloom.companies WHERE name = 'Globex' \gset
SELECT id AS acme_member FROM actloom.users WHERE email = 'member@acme.test' \gset
SELECT id AS globex_member FROM actloom.users WHERE email = 'member@globex.test' \gset
SELECT coalesce(max(seq), 0) AS schema_seq FROM actloom.audit_log WHERE chain = actloom.schema_chain() \gset
\set ghost 'cccccccc-cccc-4ccc-8ccc-cccccccccccc'

-- How each table is protected: row level security, the five policies, and
-- the move trigger (its own, or its partitioned parent's) with its column.
CREATE FUNCTION pg_temp.protection(names text[])
RETURNS TABLE (tbl name, rls boolean, forced boolean, policies bigint, move_trigger text)
LANGUAGE sql AS $$
	SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
		   (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname LIKE 'actloom\_tenant\_%'),
		   (SELECT CASE WHEN t.tgparentid = 0 THEN 'own' ELSE 'parent''s' END || ' on '
				   || split_part(encode(t.tgargs, 'escape'), '\000', 1)
			  FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'actloom_tenant_move')
	  FROM unnest(names) WITH ORDINALITY AS n(name, i)
	  JOIN pg_class c ON c.relname = n.name AND c.relnamespace = 'public'::regnamespace
	 ORDER BY n.i
$$;

-- What the application, acting in a company, gets from a table named
-- directly: the rows it sees (and of how many companies), and what becomes
-- of its writes of another company's row.
CREATE FUNCTION pg_temp.probe(rel regclass, other uuid, id int)
RETURNS TABLE (tbl text, visible bigint, companies bigint, insert_other text,
			   updated_other bigint, deleted_other bigint)
LANGUAGE plpgsql AS $$
BEGIN
	tbl := rel::text;
	EXECUTE format('SELECT count(*), count(DISTINCT company_id) FROM %s', rel)
		INTO visible, companies;
	BEGIN
		EXECUTE format('INSERT INTO %s (id, company_id, title) VALUES ($1, $2, ''planted'')', rel)
			USING probe.id, other;
		insert_other := 'inserted';
	EXCEPTION WHEN OTHERS THEN
		insert_other := SQLSTATE || ': ' || SQLERRM;
	END;
	EXECUTE format('UPDATE %s SET title = ''defaced'' WHERE company_id = $1', rel) USING other;
	GET DIAGNOSTICS updated_other = ROW_COUNT;
	EXECUTE format('DELETE FROM %s WHERE company_id = $1', rel) USING other;
	GET DIAGNOSTICS deleted_other = ROW_COUNT;
	RETURN NEXT;
END
$$;

-- The tables are regress_owner's, a member of actloom_dba; the application
-- may read and write each of them, as with GRANT ... ON ALL TABLES.
ALTER DEFAULT PRIVILEGES FOR ROLE regress_owner IN SCHEMA public
	GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO regress_app;

-- A table partitioned by company, two levels deep, before protect_table.
SET ROLE regress_owner;
CREATE TABLE public.docs (id int NOT NULL, company_id uuid NOT NULL, title text)
	PARTITION BY LIST (company_id);
CREATE INDEX ON public.docs (company_id);
CREATE TABLE public.docs_acme PARTITION OF public.docs FOR VALUES IN (:'acme')
	PARTITION BY RANGE (id);
CREATE TABLE public.docs_acme_low PARTITION OF public.docs_acme FOR VALUES FROM (0) TO (100);
CREATE TABLE public.docs_acme_high PARTITION OF public.docs_acme FOR VALUES FROM (100) TO (MAXVALUE);
CREATE TABLE public.docs_rest PARTITION OF public.docs DEFAULT;
RESET ROLE;
INSERT INTO public.docs VALUES (1, :'acme', 'acme low'), (101, :'acme', 'acme high'),
	(1, :'ghost', 'ghost rest');

SET ROLE regress_owner;
SELECT actloom.protect_table('public.docs');
SELECT * FROM pg_temp.protection('{docs,docs_acme,docs_acme_low,docs_acme_high,docs_rest}');
RESET ROLE;

-- Partitions created later, two levels deep, holding Globex's rows.
SET ROLE regress_owner;
CREATE TABLE public.docs_globex PARTITION OF public.docs FOR VALUES IN (:'globex')
	PARTITION BY RANGE (id);
CREATE TABLE public.docs_globex_1 PARTITION OF public.docs_globex FOR VALUES FROM (0) TO (100);
CREATE TABLE public.docs_globex_2 PARTITION OF public.docs_globex FOR VALUES FROM (100) TO (200);
SELECT * FROM pg_temp.protection('{docs_globex,docs_globex_1,docs_globex_2}');
RESET ROLE;
INSERT INTO public.docs VALUES (2, :'globex', 'globex 1'), (102, :'globex', 'globex 2');

-- A table with rows attached as a partition: protected by the ATTACH.
SET ROLE regress_owner;
CREATE TABLE public.docs_ghost (LIKE public.docs);
RESET ROLE;
INSERT INTO public.docs_ghost VALUES (3, :'ghost', 'ghost attached');
SET ROLE regress_owner;
SELECT * FROM pg_temp.protection('{docs_ghost}');
ALTER TABLE public.docs_rest RENAME TO docs_rest_old;
ALTER TABLE public.docs DETACH PARTITION public.docs_rest_old;
ALTER TABLE public.docs ATTACH PARTITION public.docs_ghost FOR VALUES IN (:'ghost');
SELECT * FROM pg_temp.protection('{docs_ghost,docs_rest_old}');
RESET ROLE;

-- Acting in Acme, the application sees Acme's rows through the parent and
-- through Acme's partitions, and nothing of the others through theirs: no
-- read, no insert, no update, no delete.
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT title FROM public.docs ORDER BY title;
SELECT p.* FROM unnest('{docs,docs_acme,docs_acme_low,docs_acme_high,docs_globex,docs_globex_1,docs_globex_2,docs_ghost,docs_rest_old}'::regclass[],
					   '{2,2,2,102,3,3,103,4,5}'::int[]) WITH ORDINALITY AS t(r, id, n),
	   pg_temp.probe(t.r, :'globex', t.id) p ORDER BY t.n;
SELECT p.* FROM unnest('{docs_ghost,docs_rest_old}'::regclass[], '{4,5}'::int[]) WITH ORDINALITY AS t(r, id, n),
	   pg_temp.probe(t.r, :'ghost', t.id) p ORDER BY t.n;
COMMIT;
-- Acting in Globex, its own partitions show its rows.
BEGIN;
SELECT actloom.act_as(:'globex_member', :'globex');
SELECT p.tbl, p.visible FROM unnest('{docs,docs_globex_1,docs_globex_2,docs_acme_low}'::regclass[]) WITH ORDINALITY AS t(r, n),
	   pg_temp.probe(t.r, :'acme', 6) p ORDER BY t.n;
COMMIT;
RESET ROLE;
-- Nothing of the others changed.
SELECT tableoid::regclass AS part, company_id = :'acme' AS acme, title FROM public.docs ORDER BY part, id;
SELECT title FROM public.docs_rest_old;

-- Nobody moves a row to another company, through a partition either.
UPDATE public.docs_globex_1 SET company_id = :'acme';

-- A detached partition stays protected, with a move trigger of its own,
-- and can be attached again; so can one detached concurrently.
SET ROLE regress_owner;
ALTER TABLE public.docs DETACH PARTITION public.docs_globex;
SELECT * FROM pg_temp.protection('{docs_globex,docs_globex_1,docs_globex_2}');
RESET ROLE;
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT p.* FROM unnest('{docs_globex,docs_globex_1}'::regclass[], '{7,7}'::int[]) WITH ORDINALITY AS t(r, id, n),
	   pg_temp.probe(t.r, :'globex', t.id) p ORDER BY t.n;
COMMIT;
RESET ROLE;
SET ROLE regress_owner;
ALTER TABLE public.docs ATTACH PARTITION public.docs_globex FOR VALUES IN (:'globex');
SELECT * FROM pg_temp.protection('{docs_globex,docs_globex_1,docs_globex_2}');
ALTER TABLE public.docs DETACH PARTITION public.docs_ghost CONCURRENTLY;
SELECT * FROM pg_temp.protection('{docs_ghost}');
ALTER TABLE public.docs ATTACH PARTITION public.docs_ghost FOR VALUES IN (:'ghost');
RESET ROLE;
-- The parent's owner does not detach a partition that another role owns: it
-- would lose its move trigger, which only its owner can give back.
CREATE TABLE public.docs_theirs PARTITION OF public.docs FOR VALUES IN ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb');
ALTER TABLE public.docs_theirs OWNER TO regress_outsider;
SET ROLE regress_owner;
ALTER TABLE public.docs DETACH PARTITION public.docs_theirs;
SELECT * FROM pg_temp.protection('{docs_theirs}');

-- Tables protected one by one can become partitions: of a protected table
-- (ATTACH gives them its trigger), or of one protected afterwards.
CREATE TABLE public.solo (LIKE public.docs INCLUDING INDEXES);
SELECT actloom.protect_table('public.solo');
ALTER TABLE public.docs ATTACH PARTITION public.solo FOR VALUES IN ('dddddddd-dddd-4ddd-8ddd-dddddddddddd');
CREATE TABLE public.later (LIKE public.docs INCLUDING INDEXES) PARTITION BY LIST (company_id);
CREATE TABLE public.later_acme PARTITION OF public.later FOR VALUES IN (:'acme');
SELECT actloom.protect_table('public.later_acme');
SELECT actloom.protect_table('public.later');
SELECT * FROM pg_temp.protection('{solo,later,later_acme}');
RESET ROLE;

-- What cannot be protected is refused, for everyone, and nothing changes:
-- a foreign table,
CREATE FOREIGN DATA WRAPPER regress_fdw;
CREATE SERVER regress_server FOREIGN DATA WRAPPER regress_fdw;
CREATE FOREIGN TABLE public.docs_far PARTITION OF public.docs
	FOR VALUES IN ('eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee') SERVER regress_server;
CREATE FOREIGN TABLE public.far (id int NOT NULL, company_id uuid NOT NULL, title text) SERVER regress_server;
ALTER TABLE public.docs ATTACH PARTITION public.far FOR VALUES IN ('eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee');
CREATE TABLE public.open (LIKE public.docs) PARTITION BY LIST (company_id);
ALTER TABLE public.open ATTACH PARTITION public.far FOR VALUES IN ('eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee');
SELECT actloom.protect_table('public.open');
SELECT count(*) AS partitions_of_docs FROM pg_inherits WHERE inhparent = 'public.docs'::regclass;
-- a partition below one being attached that the role attaching does not
-- own (PostgreSQL refuses to give it the parent's trigger),
GRANT CREATE ON SCHEMA public TO regress_outsider;
SET ROLE regress_owner;
CREATE TABLE public.shared (LIKE public.docs) PARTITION BY RANGE (id);
RESET ROLE;
SET ROLE regress_outsider;
CREATE TABLE public.shared_1 (id int NOT NULL, company_id uuid NOT NULL, title text);
RESET ROLE;
ALTER TABLE public.shared ATTACH PARTITION public.shared_1 FOR VALUES FROM (0) TO (100);
SET ROLE regress_owner;
ALTER TABLE public.docs ATTACH PARTITION public.shared FOR VALUES IN ('ffffffff-ffff-4fff-8fff-ffffffffffff');
SELECT count(*) AS partitions_of_docs FROM pg_inherits WHERE inhparent = 'public.docs'::regclass;
RESET ROLE;

-- Inheritance children: those there before, and those that inherit later,
-- at every level; NO INHERIT leaves a child protected.
SET ROLE regress_owner;
CREATE TABLE public.memo (id int NOT NULL, company_id uuid NOT NULL, title text, tenant uuid);
CREATE INDEX ON public.memo (company_id);
CREATE TABLE public.memo_old () INHERITS (public.memo);
SELECT actloom.protect_table('public.memo');
CREATE TABLE public.memo_new (extra text) INHERITS (public.memo);
CREATE TABLE public.memo_deep () INHERITS (public.memo_new);
CREATE TABLE public.memo_adopted (id int NOT NULL, company_id uuid NOT NULL, title text, tenant uuid);
ALTER TABLE public.memo_adopted INHERIT public.memo;
SELECT * FROM pg_temp.protection('{memo,memo_old,memo_new,memo_deep,memo_adopted}');
-- A child cannot be protected on another column than its parent, nor
-- inherit from tables protected on different columns.
SELECT actloom.protect_table('public.memo_old', 'tenant');
CREATE TABLE public.by_tenant (id int NOT NULL, company_id uuid NOT NULL, title text, tenant uuid);
SELECT actloom.protect_table('public.by_tenant', 'tenant');
CREATE TABLE public.mixed () INHERITS (public.memo, public.by_tenant);
-- Nor can a child join whose own child belongs to another role.
CREATE TABLE public.orphan (id int NOT NULL, company_id uuid NOT NULL, title text, tenant uuid);
RESET ROLE;
CREATE TABLE public.orphan_kid () INHERITS (public.orphan);
ALTER TABLE public.orphan_kid OWNER TO regress_outsider;
SET ROLE regress_owner;
ALTER TABLE public.orphan INHERIT public.memo;
SELECT count(*) AS children_of_memo FROM pg_inherits WHERE inhparent = 'public.memo'::regclass;
RESET ROLE;
INSERT INTO public.memo_old VALUES (1, :'acme', 'acme old'), (2, :'globex', 'globex old');
INSERT INTO public.memo_deep VALUES (3, :'acme', 'acme deep'), (4, :'globex', 'globex deep');
INSERT INTO public.memo_adopted VALUES (5, :'acme', 'acme adopted'), (6, :'globex', 'globex adopted');
SET ROLE regress_owner;
ALTER TABLE public.memo_adopted NO INHERIT public.memo;
RESET ROLE;
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT title FROM public.memo ORDER BY title;
SELECT p.* FROM unnest('{memo_old,memo_new,memo_deep,memo_adopted}'::regclass[], '{7,7,7,7}'::int[]) WITH ORDINALITY AS t(r, id, n),
	   pg_temp.probe(t.r, :'globex', t.id) p ORDER BY t.n;
COMMIT;
RESET ROLE;

-- An owner outside actloom_dba cannot call protect_table, but the tables it
-- adds to one a DBA protected for it are protected all the same.
SET ROLE regress_outsider;
CREATE TABLE public.theirs (id int NOT NULL, company_id uuid NOT NULL, title text)
	PARTITION BY LIST (company_id);
SELECT actloom.protect_table('public.theirs');
RESET ROLE;
SELECT actloom.protect_table('public.theirs');
SET ROLE regress_outsider;
CREATE TABLE public.theirs_acme PARTITION OF public.theirs FOR VALUES IN (:'acme');
SELECT * FROM pg_temp.protection('{theirs,theirs_acme}');
RESET ROLE;

-- Every table protected here has its entry, in the schema chain, which
-- verifies; the system chain got none.
SELECT a.target_id, a.detail ->> 'column' AS col, count(*) AS entries
  FROM actloom.audit_log a
 WHERE a.chain = actloom.schema_chain() AND a.seq > :schema_seq
 GROUP BY 1, 2 ORDER BY 1;
SELECT count(*) AS in_the_system_chain FROM actloom.audit_log a
 WHERE a.chain = actloom.system_chain() AND a.action = 'table.protect';
SELECT entries > 0 AS entries, ok FROM actloom.audit_verify(actloom.schema_chain());

DROP TABLE public.docs, public.docs_rest_old, public.later, public.open, public.shared,
	public.memo, public.memo_adopted, public.by_tenant, public.orphan, public.theirs CASCADE;
DROP SERVER regress_server CASCADE;
DROP FOREIGN DATA WRAPPER regress_fdw;
REVOKE CREATE ON SCHEMA public FROM regress_outsider;
ALTER DEFAULT PRIVILEGES FOR ROLE regress_owner IN SCHEMA public
	REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM regress_app;
