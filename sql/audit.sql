-- The audit trail: what the kernel recorded, appending, append-only, the
-- two verifiers (C and plain SQL) agreeing on intact and tampered chains,
-- and who may read it.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
SELECT id AS acme FROM actloom.companies WHERE name = 'Acme' \gset
SELECT id AS globex FROM actloom.companies WHERE name = 'Globex' \gset
SELECT id AS acme_owner FROM actloom.users WHERE email = 'owner@acme.test' \gset
SELECT id AS acme_exec FROM actloom.users WHERE email = 'exec@acme.test' \gset
SELECT id AS acme_member FROM actloom.users WHERE email = 'member@acme.test' \gset
CREATE ROLE regress_auditor LOGIN IN ROLE actloom_auditor;

-- The plain SQL verifier of the README, as a view.
\set verify_query `cat test/audit-verify.sql`
CREATE TEMP VIEW sql_verdict AS :verify_query;
-- Both verdicts of one chain side by side, and whether they agree.
CREATE FUNCTION pg_temp.verdicts(c uuid)
RETURNS TABLE (entries bigint, ok boolean, first_bad_seq bigint, reason text, sql_agrees boolean)
LANGUAGE sql AS $$
	SELECT v.entries, v.ok, v.first_bad_seq, v.reason,
		   (v.entries, v.ok, v.first_bad_seq, v.reason)
			 IS NOT DISTINCT FROM (s.entries, s.ok, s.first_bad_seq, s.reason)
	  FROM actloom.audit_verify(c) v FULL JOIN sql_verdict s ON s.chain = v.chain
	 WHERE coalesce(v.chain, s.chain) = c
$$;
CREATE FUNCTION pg_temp.chain_name(c uuid) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce((SELECT name FROM actloom.companies WHERE id = c),
					CASE c WHEN actloom.system_chain() THEN 'system' WHEN actloom.schema_chain() THEN 'schema' END)
$$;

-- What the kernel recorded so far, chain by chain.
SELECT pg_temp.chain_name(a.chain) AS chain, a.seq, a.action, a.target_type,
	   coalesce(u.email, c.name, a.target_id) AS target, a.detail - 'owner' AS detail,
	   actor.email AS actor
  FROM actloom.audit_log a
  LEFT JOIN actloom.users actor ON actor.id = a.actor_user
  LEFT JOIN actloom.users u ON a.target_type = 'user' AND u.id::text = a.target_id
  LEFT JOIN actloom.companies c ON a.target_type = 'company' AND c.id::text = a.target_id
 ORDER BY 1, a.seq;

-- Links: every entry's prev_hash is its predecessor's hash; 32 zero bytes
-- before the first.  Times never go backwards within a chain.
SELECT count(*) AS entries,
	   count(*) FILTER (WHERE prev_hash = coalesce(lag_hash, actloom.audit_genesis())) AS linked,
	   count(*) FILTER (WHERE at >= coalesce(lag_at, at)) AS in_time_order,
	   count(*) FILTER (WHERE hash = sha256(prev_hash || actloom.audit_canonical(a))) AS hashes_match
  FROM (SELECT a, a.prev_hash, a.hash, a.at,
			   lag(a.hash) OVER (PARTITION BY a.chain ORDER BY a.seq) AS lag_hash,
			   lag(a.at) OVER (PARTITION BY a.chain ORDER BY a.seq) AS lag_at
		  FROM actloom.audit_log a) s;

-- Both verifiers: every chain intact, and the same verdicts.
SELECT pg_temp.chain_name(chain) AS chain, entries, ok, first_bad_seq, reason
  FROM actloom.audit_verify() ORDER BY 1;
SELECT (SELECT array_agg(v ORDER BY v.chain) FROM actloom.audit_verify() v)::text
	 = (SELECT array_agg(s ORDER BY s.chain) FROM sql_verdict s)::text AS verifiers_agree;

-- Settings do not change the canonical bytes, when appending or verifying.
SET TimeZone = 'Pacific/Chatham';
SET DateStyle = 'SQL, DMY';
SET extra_float_digits = -3;
SET bytea_output = 'escape';
SET IntervalStyle = 'sql_standard';
SELECT actloom.audit('dba.note', 'setting', 'odd', '{"n": 1.50, "t": "ü"}') AS seq;
SELECT bool_and(ok) AS c_ok, (SELECT bool_and(ok) FROM sql_verdict) AS sql_ok FROM actloom.audit_verify();
RESET ALL;
SELECT bool_and(ok) AS c_ok, (SELECT bool_and(ok) FROM sql_verdict) AS sql_ok FROM actloom.audit_verify();

-- Applications append with the current actor: to its company's chain, or
-- to the system chain when no company acts.
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT actloom.set_client_addr('203.0.113.7');
SELECT actloom.audit('reports.generate', 'report', 'r-1', '{"format": "pdf", "pages": 3}') AS seq \gset
SELECT actloom.audit('reports.generate') = :seq + 1 AS next_seq;
COMMIT;
SELECT actloom.audit('signup.attempt', 'email', 'someone@example.com');
-- A rolled-back append leaves no hole.
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT actloom.audit('reports.generate') AS rolled_back_seq \gset
ROLLBACK;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT actloom.audit('reports.generate') = :rolled_back_seq AS same_seq_reused;
COMMIT;
-- Bad input writes nothing.
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT actloom.audit('Reports Generate');
SELECT actloom.audit(NULL);
SELECT actloom.audit('a.b', repeat('t', 101));
SELECT actloom.audit('a.b', NULL, repeat('i', 201));
SELECT actloom.audit('a.b', NULL, NULL, '[1, 2]');
SELECT actloom.audit('a.b', NULL, NULL, jsonb_build_object('big', repeat('x', 20000)));
COMMIT;
RESET ROLE;
SELECT pg_temp.chain_name(a.chain) AS chain, a.action, a.target_type, a.target_id, a.detail,
	   u.email AS actor, a.client_addr
  FROM actloom.audit_log a LEFT JOIN actloom.users u ON u.id = a.actor_user
 WHERE a.action IN ('reports.generate', 'signup.attempt') ORDER BY a.chain, a.seq;

-- Nobody changes the trail: not the gateway, not the auditor, not the
-- table's owner or a superuser (the triggers fire in replica mode too).
SET ROLE regress_app;
UPDATE actloom.audit_log SET detail = '{}';
DELETE FROM actloom.audit_log;
INSERT INTO actloom.audit_log (chain, seq, at, action, detail, prev_hash, hash)
	VALUES (:'acme', 1, now(), 'x.y', '{}', '', '');
RESET ROLE;
SET ROLE regress_auditor;
DELETE FROM actloom.audit_log;
RESET ROLE;
UPDATE actloom.audit_log SET detail = '{}' WHERE chain = :'acme' AND seq = 1;
DELETE FROM actloom.audit_log WHERE chain = :'acme' AND seq = 1;
TRUNCATE actloom.audit_log;
SET session_replication_role = replica;
DELETE FROM actloom.audit_log WHERE chain = :'acme' AND seq = 1;
RESET session_replication_role;
-- A superuser's direct insert is numbered and chained like any other: the
-- values it supplies for seq, time, actor and hashes are ignored.
INSERT INTO actloom.audit_log (chain, seq, at, actor_user, action, detail, prev_hash, hash)
	VALUES (:'globex', 1, '2000-01-01', :'acme_owner', 'dba.note', '{}', '\xdead', '\xbeef')
	RETURNING seq > 1 AS renumbered, at > '2020-01-01' AS own_time, actor_user IS NULL AS no_forged_actor,
			  length(hash) AS hash_len;
SELECT * FROM pg_temp.verdicts(:'globex');

-- Tampering, each case in a transaction rolled back afterwards.  A superuser
-- can switch the triggers off; both verifiers must then find the damage.
SELECT max(seq) AS last FROM actloom.audit_log WHERE chain = :'acme' \gset
BEGIN;
ALTER TABLE actloom.audit_log DISABLE TRIGGER USER;
UPDATE actloom.audit_log SET detail = '{"format": "csv", "pages": 3}'
 WHERE chain = :'acme' AND action = 'reports.generate' AND detail ? 'format';
SELECT 'changed detail' AS tampering, * FROM pg_temp.verdicts(:'acme');
ROLLBACK;
BEGIN;
ALTER TABLE actloom.audit_log DISABLE TRIGGER USER;
UPDATE actloom.audit_log SET at = at - interval '1 microsecond' WHERE chain = :'acme' AND seq = 3;
SELECT 'changed time' AS tampering, * FROM pg_temp.verdicts(:'acme');
ROLLBACK;
BEGIN;
ALTER TABLE actloom.audit_log DISABLE TRIGGER USER;
UPDATE actloom.audit_log SET actor_user = :'acme_exec' WHERE chain = :'acme' AND seq = 4;
SELECT 'changed actor' AS tampering, * FROM pg_temp.verdicts(:'acme');
ROLLBACK;
BEGIN;
ALTER TABLE actloom.audit_log DISABLE TRIGGER USER;
UPDATE actloom.audit_log SET action = 'member.remove' WHERE chain = :'acme' AND seq = 2;
SELECT 'changed action' AS tampering, * FROM pg_temp.verdicts(:'acme');
ROLLBACK;
BEGIN;
ALTER TABLE actloom.audit_log DISABLE TRIGGER USER;
DELETE FROM actloom.audit_log WHERE chain = :'acme' AND seq = 3;
SELECT 'deleted middle entry' AS tampering, * FROM pg_temp.verdicts(:'acme');
ROLLBACK;
BEGIN;
ALTER TABLE actloom.audit_log DISABLE TRIGGER USER;
UPDATE actloom.audit_log SET seq = -1 WHERE chain = :'acme' AND seq = 3;
UPDATE actloom.audit_log SET seq = 3 WHERE chain = :'acme' AND seq = 4;
UPDATE actloom.audit_log SET seq = 4 WHERE chain = :'acme' AND seq = -1;
SELECT 'swapped entries' AS tampering, * FROM pg_temp.verdicts(:'acme');
ROLLBACK;
BEGIN;
ALTER TABLE actloom.audit_log DISABLE TRIGGER USER;
-- A forged entry in the middle, with everything after it renumbered.
UPDATE actloom.audit_log SET seq = seq + 1000 WHERE chain = :'acme' AND seq >= 3;
UPDATE actloom.audit_log SET seq = seq - 999 WHERE chain = :'acme' AND seq >= 1003;
INSERT INTO actloom.audit_log
	SELECT chain, 3, at, actor_user, actor_api_key, actor_session, client_addr,
		   'member.add', target_type, target_id, '{"role": "owner"}', hash,
		   sha256(hash || '\x00'::bytea)
	  FROM actloom.audit_log WHERE chain = :'acme' AND seq = 2;
SELECT 'forged entry in the middle' AS tampering, * FROM pg_temp.verdicts(:'acme');
ROLLBACK;
BEGIN;
ALTER TABLE actloom.audit_log DISABLE TRIGGER USER;
-- A forged entry at the end, linked correctly, with a hash made up by
-- someone who does not know the canonical encoding.
INSERT INTO actloom.audit_log
	SELECT chain, seq + 1, now(), actor_user, NULL, NULL, NULL, 'member.add', 'user',
		   target_id, '{"role": "owner"}', hash, sha256(hash || convert_to('member.add', 'UTF8'))
	  FROM actloom.audit_log WHERE chain = :'acme' AND seq = :last;
SELECT 'forged entry at the end' AS tampering, * FROM pg_temp.verdicts(:'acme');
ROLLBACK;
BEGIN;
ALTER TABLE actloom.audit_log DISABLE TRIGGER USER;
-- A careful forger who recomputes the entry's own hash still breaks the
-- link to the next entry.
UPDATE actloom.audit_log a SET detail = '{"role": "owner"}',
	   hash = sha256(a.prev_hash || actloom.audit_canonical(ROW(a.chain, a.seq, a.at, a.actor_user,
			a.actor_api_key, a.actor_session, a.client_addr, a.action, a.target_type, a.target_id,
			'{"role": "owner"}', a.prev_hash, a.hash)::actloom.audit_log))
 WHERE chain = :'acme' AND seq = 2;
SELECT 'rehashed entry' AS tampering, * FROM pg_temp.verdicts(:'acme');
ROLLBACK;
BEGIN;
ALTER TABLE actloom.audit_log DISABLE TRIGGER USER;
-- A prev_hash that is not 32 bytes long is no entry's hash: a broken link,
-- even when the next entry's hash was made the same bytes.
UPDATE actloom.audit_log SET prev_hash = '\xdead' WHERE chain = :'acme' AND seq = 3;
SELECT 'short prev_hash' AS tampering, * FROM pg_temp.verdicts(:'acme');
UPDATE actloom.audit_log SET hash = '\xdead' WHERE chain = :'acme' AND seq = 4;
SELECT 'short prev_hash, the same as the next hash' AS tampering, * FROM pg_temp.verdicts(:'acme');
ROLLBACK;
-- After all that, intact again.
SELECT * FROM pg_temp.verdicts(:'acme');

-- Readers.  Auditors read the trail and verify it; they change nothing.
SET ROLE regress_auditor;
SELECT count(*) > 0 AS auditor_reads FROM actloom.audit_log;
SELECT bool_and(ok) AS auditor_verifies FROM actloom.audit_verify();
SELECT actloom.audit_checkpoint(:'acme');
SELECT actloom.act_as(:'acme_owner', :'acme');
SELECT actloom.audit('x.y');
RESET ROLE;
-- The gateway does not read the table; members with audit.read read their
-- own company's chain through functions.
SET ROLE regress_app;
SELECT count(*) FROM actloom.audit_log;
SELECT actloom.audit_verify();
BEGIN;
SELECT actloom.act_as(:'acme_exec', :'acme');
SELECT seq, action FROM actloom.company_audit(:'acme', 0, 3);
SELECT seq, action FROM actloom.company_audit(:'acme', 3, 2);
SELECT entries > 0 AS entries, ok FROM actloom.company_audit_verify(:'acme');
SELECT actloom.company_audit(:'globex');
SELECT actloom.company_audit(:'acme', 0, 0);
SELECT actloom.company_audit(:'acme', 0, NULL);
SELECT count(*) AS from_the_start FROM actloom.company_audit(:'acme', NULL, 2);
SELECT actloom.company_audit_checkpoint(:'acme');
COMMIT;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT actloom.company_audit(:'acme');
SELECT actloom.company_audit_verify(:'acme');
COMMIT;
RESET ROLE;

-- Committing.  The chain lock is taken at the first append and released
-- at the end (right after the commit record is written, before the flush
-- the transaction does itself); the commit is asynchronous for the appending
-- transaction only.  A transaction that appended cannot be prepared.
-- (Chain locks are object locks whose class is actloom.audit_log.)
CREATE VIEW pg_temp.chain_locks AS
	SELECT count(*) AS chain_locks FROM pg_locks
	 WHERE locktype = 'object' AND classid = 'actloom.audit_log'::regclass AND pid = pg_backend_pid();
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT current_setting('synchronous_commit') AS before_append, * FROM pg_temp.chain_locks;
SAVEPOINT s;
SELECT actloom.audit('reports.generate') > 0 AS appended;
SELECT actloom.audit('reports.generate') > 0 AS appended_again;
SELECT current_setting('synchronous_commit') AS after_append, * FROM pg_temp.chain_locks;
RELEASE s;
COMMIT;
SELECT current_setting('synchronous_commit') AS after_commit, * FROM pg_temp.chain_locks;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SAVEPOINT s;
SELECT actloom.audit('reports.generate') AS undone_seq \gset
ROLLBACK TO s;
SELECT * FROM pg_temp.chain_locks;
ROLLBACK;
SELECT * FROM pg_temp.chain_locks;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT actloom.audit('reports.generate') = :undone_seq AS not_prepared_seq;
PREPARE TRANSACTION 'audit_2pc';
SELECT * FROM pg_temp.chain_locks;
SELECT count(*) AS prepared FROM pg_prepared_xacts;
-- User code cannot release a chain lock: pg_advisory_unlock_all() lets go
-- of the session's advisory locks only.  The system chain's lock is object 0.
BEGIN;
SELECT pg_advisory_lock(1), pg_advisory_lock(1, 2);
SELECT actloom.audit('dba.note', 'lock', 'unlock_all') > 0 AS appended;
SELECT pg_advisory_unlock_all();
SELECT l.locktype, l.database = d.oid AS this_database, l.classid::regclass, l.objid, l.objsubid,
	   l.mode, l.granted
  FROM pg_locks l JOIN pg_database d ON d.datname = current_database()
 WHERE l.pid = pg_backend_pid() AND l.locktype IN ('object', 'advisory')
 ORDER BY l.locktype;
COMMIT;
SELECT * FROM pg_temp.chain_locks;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT actloom.audit('reports.generate') = :undone_seq AS seq_still_free;
COMMIT;
