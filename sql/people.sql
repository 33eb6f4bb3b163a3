-- People: sign-up and sign-in in one call each (password checked by the
-- database, a new session every time), a password change ends every
-- session, members added by email after the permission check.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
SELECT id AS acme FROM actloom.companies WHERE name = 'Acme' \gset
SELECT id AS acme_member FROM actloom.users WHERE email = 'member@acme.test' \gset
SELECT id AS acme_admin FROM actloom.users WHERE email = 'admin@acme.test' \gset
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.err(text) TO PUBLIC;
CREATE TEMP TABLE audit_mark AS SELECT coalesce(max(seq), 0) AS seq FROM actloom.audit_log
 WHERE chain = actloom.system_chain();

SET ROLE regress_app;

--------------------------------------------------------------------------
-- Sign-up: a user with a password and a name, signed in at once.
--------------------------------------------------------------------------
BEGIN;
SELECT user_id AS grace, session AS g1, expires_at - now() AS lifetime
  FROM actloom.sign_up('Grace@Example.com', 'correct horse battery', '  Grace Hopper ', 'curl/8', '192.0.2.1') \gset
SELECT :'lifetime' AS lifetime, actloom.current_session() = :'g1' AS acts_through_it;
SELECT actloom.session_info() #>> '{user,name}' AS name, actloom.session_info() #>> '{user,email}' AS email;
COMMIT;
SELECT email, display_name FROM actloom.users WHERE id = :'grace';
SELECT pg_temp.err('SELECT actloom.sign_up(''grace@example.com'', ''another long one'', ''Grace'')') AS taken;
SELECT pg_temp.err('SELECT actloom.sign_up(''new@example.com'', ''short'', ''New'')') AS weak_password;
SELECT pg_temp.err('SELECT actloom.sign_up(''new@example.com'', ''a good long one'', ''  '')') AS empty_name;
SELECT pg_temp.err(format('SELECT actloom.sign_up(%L, %L, %L)', 'new@example.com', 'a good long one', E'bad\x01name')) AS control_name;
SELECT pg_temp.err('SELECT actloom.sign_up(''not an email'', ''a good long one'', ''X'')') AS bad_email;
SELECT pg_temp.err('SELECT actloom.sign_up(''new@example.com'', NULL, ''X'')') AS no_password;
SELECT count(*) AS no_user_made FROM actloom.users WHERE email = 'new@example.com';

--------------------------------------------------------------------------
-- Sign-in: a row and a new session when the password is right, no row
-- otherwise, whatever the reason.
--------------------------------------------------------------------------
SELECT user_id = :'grace' AS is_grace, session AS g2 FROM actloom.sign_in('GRACE@example.com', 'correct horse battery', 'firefox', '192.0.2.2') \gset
SELECT :'g2' <> :'g1' AS new_session;
SELECT count(*) AS rows FROM actloom.sign_in('grace@example.com', 'wrong horse battery');
SELECT count(*) AS rows FROM actloom.sign_in('nobody@example.com', 'correct horse battery');
SELECT count(*) AS rows FROM actloom.sign_in('member@acme.test', 'no password set');
-- Signing in on a browser that carried a session ends that one.
SELECT session AS g3 FROM actloom.sign_in('grace@example.com', 'correct horse battery', 'firefox', '192.0.2.2', :'g2') \gset
SELECT pg_temp.err(format('SELECT actloom.act_as_session(%L)', :'g2')) AS replaced;
-- A failed sign-in replaces nothing.
SELECT count(*) AS rows FROM actloom.sign_in('grace@example.com', 'wrong horse battery', NULL, NULL, :'g3');
SELECT actloom.act_as_session(:'g3') = :'grace' AS g3_lives;
SELECT pg_temp.err('SELECT actloom.sign_in(NULL, ''x'')') AS null_email;

--------------------------------------------------------------------------
-- A password change ends every session of the user.
--------------------------------------------------------------------------
BEGIN;
SELECT actloom.act_as_session(:'g3') IS NOT NULL AS ok;
SELECT actloom.set_password(:'grace', 'an even better passphrase');
COMMIT;
SELECT name, pg_temp.err(format('SELECT actloom.act_as_session(%L)', id)) AS error
  FROM (VALUES ('g1', :'g1'::uuid), ('g3', :'g3')) AS v(name, id);
SELECT count(*) AS rows FROM actloom.sign_in('grace@example.com', 'correct horse battery');
SELECT session AS g4 FROM actloom.sign_in('grace@example.com', 'an even better passphrase') \gset
RESET ROLE;
SELECT revoked_reason, count(*) FROM actloom.sessions WHERE user_id = :'grace' GROUP BY 1 ORDER BY 1;

-- A re-hash at sign-in (bcrypt imported, then argon2id) is no change of
-- password and ends nothing.
SET ROLE regress_app;
SELECT actloom.import_password_hash(:'acme_member', crypt('imported secret 1', gen_salt('bf', 4)));
SELECT session AS m1 FROM actloom.sign_in('member@acme.test', 'imported secret 1') \gset
SELECT session AS m2 FROM actloom.sign_in('member@acme.test', 'imported secret 1') \gset
SELECT actloom.act_as_session(:'m1') = :'acme_member' AS m1_survives_rehash;

--------------------------------------------------------------------------
-- Adding members by email.
--------------------------------------------------------------------------
BEGIN;
SELECT actloom.act_as_session(:'m2', :'acme') IS NOT NULL AS ok;
-- A member may not invite, and learns nothing about the address.
SELECT pg_temp.err(format('SELECT actloom.add_member_by_email(%L, %L)', :'acme', 'grace@example.com')) AS member_adds;
SELECT pg_temp.err(format('SELECT actloom.add_member_by_email(%L, %L)', :'acme', 'nobody@example.com')) AS member_probes;
COMMIT;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.add_member_by_email(:'acme', 'GRACE@example.com') = :'grace' AS added;
SELECT pg_temp.err(format('SELECT actloom.add_member_by_email(%L, %L)', :'acme', 'nobody@example.com')) AS unknown;
SELECT pg_temp.err(format('SELECT actloom.add_member_by_email(%L, %L)', :'acme', 'grace@example.com')) AS twice;
SELECT pg_temp.err(format('SELECT actloom.add_member_by_email(%L, %L, %L)', :'acme', 'loner@nowhere.test', 'owner')) AS above_own_role;
SELECT pg_temp.err(format('SELECT actloom.add_member_by_email(%L, NULL)', :'acme')) AS null_email;
SELECT email, role FROM actloom.members(:'acme') WHERE email = 'grace@example.com';
COMMIT;
RESET ROLE;

-- Everything above is in the audit trail, failures included, and it verifies.
SELECT action, detail ->> 'reason' AS reason, count(*)
  FROM actloom.audit_log a, audit_mark m
 WHERE (a.chain = actloom.system_chain() AND a.seq > m.seq) OR a.action = 'member.add'
 GROUP BY 1, 2 ORDER BY 1, 2;
SELECT bool_and(ok) AS verified FROM actloom.audit_verify();

-- The gateway only.
SET ROLE regress_outsider;
SELECT pg_temp.err('SELECT actloom.sign_in(''a@b.example'', ''x'')');
SELECT pg_temp.err('SELECT actloom.sign_up(''a@b.example'', ''x'', ''y'')');
SELECT pg_temp.err('SELECT actloom.add_member_by_email(gen_random_uuid(), ''a@b.example'')');
RESET ROLE;
