\echo Use "ALTER EXTENSION actloom UPDATE TO '0.2'" to load this file. \quit
-- actloom 0.1 to 0.2.  The Makefile assembles extension/actloom--0.1--0.2.sql
-- from this file, replacing each "\ir" line with the fragment it names.
--
-- A change to an object of 0.1 is written here and, the same, in the
-- fragment of extension/sql/ that creates it for a fresh install; a fragment
-- new in 0.2 is only included.  The upgrade test (test/t/090_upgrade.pl)
-- compares an upgraded database with a fresh one and prints any drift.

-- Privileges last, as in the install script: EXECUTE is revoked from PUBLIC
-- on every function of the schema, new ones included, and granted back
-- where the privileges fragment says.  Re-applying it to the objects of 0.1
-- changes nothing for them.
\ir ../sql/99_privileges.sql
