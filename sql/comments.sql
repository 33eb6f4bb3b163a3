-- Every function, table, view, type and domain of schema actloom has a
-- COMMENT.  The view lists what lacks one; the check is that it is empty.
CREATE TEMP VIEW uncommented AS
SELECT kind, name FROM (
	SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END AS kind,
		   p.oid::regprocedure::text AS name,
		   obj_description(p.oid, 'pg_proc') AS comment
	  FROM pg_proc p
	 WHERE p.pronamespace = 'actloom'::regnamespace
	UNION ALL
	SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
						  WHEN 'f' THEN 'foreign table' WHEN 'c' THEN 'type' ELSE 'table' END,
		   c.oid::regclass::text,
		   obj_description(c.oid, 'pg_class')
	  FROM pg_class c
	 WHERE c.relnamespace = 'actloom'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
	UNION ALL
	-- Enums, domains, ranges and base types; not the array and row types
	-- that come with every type and table, nor a range's multirange.
	SELECT CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END,
		   t.oid::regtype::text,
		   obj_description(t.oid, 'pg_type')
	  FROM pg_type t
	 WHERE t.typnamespace = 'actloom'::regnamespace AND t.typtype IN ('b', 'd', 'e', 'r')
	   AND t.typrelid = 0 AND NOT (t.typtype = 'b' AND t.typcategory = 'A')
) objects
 WHERE comment IS NULL;

-- The view sees what it should: objects made without a comment are listed.
BEGIN;
CREATE FUNCTION actloom.uncommented_f() RETURNS int LANGUAGE sql RETURN 1;
CREATE TABLE actloom.uncommented_t (x int);
CREATE VIEW actloom.uncommented_v AS SELECT 1 AS x;
CREATE TYPE actloom.uncommented_e AS ENUM ('x');
CREATE TYPE actloom.uncommented_c AS (x int);
CREATE DOMAIN actloom.uncommented_d AS int;
SELECT * FROM uncommented ORDER BY kind, name;
ROLLBACK;

SELECT * FROM uncommented ORDER BY kind, name;
