-- Sign-in sessions: created at sign-in with a new id, checked on every
-- request in one call that also establishes the actor, refused with one
-- SQLSTATE and one message when revoked, expired or idle, revoked one by one
-- or all at once, listed by their user, audited; gateway only.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
SELECT id AS acme FROM actloom.companies WHERE name = 'Acme' \gset
SELECT id AS globex FROM actloom.companies WHERE name = 'Globex' \gset
SELECT id AS acme_member FROM actloom.users WHERE email = 'member@acme.test' \gset
SELECT id AS acme_admin FROM actloom.users WHERE email = 'admin@acme.test' \gset
SELECT id AS loner FROM actloom.users WHERE email = 'loner@nowhere.test' \gset

-- err() shows the SQLSTATE and message a statement raised, and whatever
-- detail or hint reached the client.
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	detail text;
	hint text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	RETURN SQLSTATE || ': ' || SQLERRM || coalesce(nullif(' DETAIL: ' || detail, ' DETAIL: '), '')
		|| coalesce(nullif(' HINT: ' || hint, ' HINT: '), '');
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.err(text) TO PUBLIC;

-- The settings, their defaults and their bounds; only a superuser sets them.
SHOW actloom.session_idle_timeout;
SHOW actloom.session_max_lifetime;
SELECT name, setting, unit, min_val, max_val, context FROM pg_settings
 WHERE name LIKE 'actloom.session%' ORDER BY name;
SELECT pg_temp.err('SET actloom.session_idle_timeout = 59');
SELECT pg_temp.err('SET actloom.session_max_lifetime = ''366d''');
SET ROLE regress_app;
SELECT pg_temp.err('SET actloom.session_idle_timeout = ''1d''');
SELECT pg_temp.err('SET actloom.session_max_lifetime = ''30d''');
SELECT pg_temp.err('SELECT set_config(''actloom.session_idle_timeout'', ''1d'', false)');
SHOW actloom.session_idle_timeout;

--------------------------------------------------------------------------
-- Sign-in: a session for a user the gateway verified; it acts at once.
--------------------------------------------------------------------------
BEGIN;
SELECT session AS s1, expires_at - now() AS lifetime
  FROM actloom.session_create(:'acme_member', E'Mozilla/5.0 (X11)\x01\n test', '203.0.113.7') \gset
SELECT :'lifetime' AS lifetime;
SELECT actloom.current_session() = :'s1' AS acts_through_it,
	   actloom.current_user_id() = :'acme_member' AS as_its_user,
	   actloom.current_company() AS company;
COMMIT;
-- and it ends with the transaction.
SELECT actloom.current_session(), actloom.current_user_id();

-- A session per sign-in: the same user signing in again gets another id.
SELECT session AS s2 FROM actloom.session_create(:'acme_member', 'curl/8.0', '2001:db8::1') \gset
SELECT :'s1' <> :'s2' AS new_id;

-- A request: check the session and act, optionally within a company.
BEGIN;
SELECT actloom.act_as_session(:'s1') = :'acme_member' AS returns_user;
SELECT actloom.current_session() = :'s1' AS session, actloom.current_company() AS company;
SELECT actloom.act_as_session(:'s1', :'acme') = :'acme_member' AS in_acme;
SELECT actloom.current_company() = :'acme' AS company, actloom.current_role();
SELECT actloom.can(:'acme', 'members.read') AS can_read, actloom.can(:'acme', 'members.invite') AS can_invite;
-- Another company is refused as act_as refuses it, and the actor is kept.
SELECT pg_temp.err(format('SELECT actloom.act_as_session(%L, %L)', :'s1', :'globex'));
SELECT pg_temp.err(format('SELECT actloom.act_as_session(%L, gen_random_uuid())', :'s1'));
SELECT actloom.current_company() = :'acme' AS still_acme;
-- act_as() replaces the actor, and with it the session.
SELECT actloom.act_as(:'acme_member');
SELECT actloom.current_session() AS session_after_act_as;
COMMIT;

--------------------------------------------------------------------------
-- Refusals: one SQLSTATE and one message whatever the reason, no detail
-- for the client, and nothing written.
--------------------------------------------------------------------------
RESET ROLE;
SELECT session AS revoked FROM actloom.session_create(:'acme_admin') \gset
SELECT session AS expired FROM actloom.session_create(:'acme_admin') \gset
SELECT session AS idle FROM actloom.session_create(:'acme_admin') \gset
SELECT session AS old FROM actloom.session_create(:'acme_admin') \gset
SELECT session AS disabled FROM actloom.session_create(:'loner') \gset
UPDATE actloom.sessions SET revoked_at = now(), revoked_reason = 'revoked' WHERE id = :'revoked';
UPDATE actloom.sessions SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 second',
	   last_seen_at = now() - interval '1 minute' WHERE id = :'expired';
UPDATE actloom.sessions SET created_at = now() - interval '1 hour',
	   last_seen_at = now() - interval '30 minutes' WHERE id = :'idle';
-- Created 5 hours ago with a 12 hour lifetime; a lifetime lowered to 4
-- hours ends it without touching its row.
UPDATE actloom.sessions SET created_at = now() - interval '5 hours',
	   last_seen_at = now() - interval '10 minutes' WHERE id = :'old';
UPDATE actloom.users SET disabled_at = now() WHERE id = :'loner';
SET ROLE regress_app;
SELECT actloom.act_as_session(:'old') = :'acme_admin' AS old_lives_for_now;
RESET ROLE;
CREATE TEMP TABLE before AS
	SELECT (SELECT string_agg(s::text, ',' ORDER BY s.id) FROM actloom.sessions s) AS sessions,
		   (SELECT count(*) FROM actloom.audit_log) AS audit;
SET actloom.session_max_lifetime = '4h';
SET ROLE regress_app;
SHOW actloom.session_max_lifetime;
SELECT name, pg_temp.err(format('SELECT actloom.act_as_session(%L)', id)) AS error
  FROM (VALUES ('unknown', gen_random_uuid()), ('revoked', :'revoked'::uuid),
			   ('expired', :'expired'), ('idle', :'idle'), ('outlived lowered lifetime', :'old'),
			   ('disabled user', :'disabled')) AS v(name, id);
SELECT pg_temp.err('SELECT actloom.act_as_session(NULL)');
SELECT pg_temp.err('SELECT actloom.act_as_session(''not-a-uuid'')');
-- Nobody acts after a refusal, and the session of a disabled user cannot be
-- renewed either.
SELECT actloom.current_user_id(), actloom.current_session();
SELECT pg_temp.err(format('SELECT actloom.session_create(%L)', :'loner'));
SELECT pg_temp.err('SELECT actloom.session_create(gen_random_uuid())');
SELECT pg_temp.err('SELECT actloom.session_create(NULL)');
RESET ROLE;
SELECT b.sessions = (SELECT string_agg(s::text, ',' ORDER BY s.id) FROM actloom.sessions s) AS sessions_unchanged,
	   b.audit = (SELECT count(*) FROM actloom.audit_log) AS audit_unchanged
  FROM before b;
RESET actloom.session_max_lifetime;
UPDATE actloom.users SET disabled_at = NULL WHERE id = :'loner';

-- The SQL rules agree with the C check on every case.
SELECT v.name, actloom._session_alive(s) AS alive
  FROM (VALUES ('live', :'s1'::uuid), ('revoked', :'revoked'), ('expired', :'expired'),
			   ('idle', :'idle'), ('old', :'old')) AS v(name, id)
  JOIN actloom.sessions s ON s.id = v.id ORDER BY v.name;

--------------------------------------------------------------------------
-- last_seen_at: refreshed when a minute old, not more often.
--------------------------------------------------------------------------
UPDATE actloom.sessions SET last_seen_at = now() - interval '20 seconds' WHERE id = :'s1';
UPDATE actloom.sessions SET last_seen_at = now() - interval '5 minutes' WHERE id = :'s2';
SET ROLE regress_app;
SELECT actloom.act_as_session(:'s1') IS NOT NULL AS ok;
SELECT actloom.act_as_session(:'s2') IS NOT NULL AS ok;
RESET ROLE;
SELECT id = :'s1' AS s1, last_seen_at > now() - interval '10 seconds' AS refreshed
  FROM actloom.sessions WHERE id IN (:'s1', :'s2') ORDER BY 1;
-- Read-only transactions cannot write it, and still work.
UPDATE actloom.sessions SET last_seen_at = now() - interval '5 minutes' WHERE id = :'s2';
SET ROLE regress_app;
BEGIN READ ONLY;
SELECT actloom.act_as_session(:'s2', :'acme') IS NOT NULL AS ok;
COMMIT;
RESET ROLE;
SELECT last_seen_at > now() - interval '10 seconds' AS refreshed FROM actloom.sessions WHERE id = :'s2';

--------------------------------------------------------------------------
-- Listing and revoking one's own sessions.
--------------------------------------------------------------------------
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as_session(:'s1') IS NOT NULL AS ok;
SELECT session = :'s1' AS s1, session = :'s2' AS s2, user_agent, client_addr, is_current,
	   expires_at - created_at AS lifetime
  FROM actloom.my_sessions();
SELECT jsonb_pretty(actloom.session_info()
	#- '{user,id}' #- '{session,id}' #- '{session,created_at}' #- '{session,expires_at}'
	#- '{companies,0,id}') AS info;
SELECT (actloom.session_info() #>> '{session,id}')::uuid = :'s1' AS names_session,
	   (actloom.session_info() #>> '{companies,0,id}')::uuid = :'acme' AS names_company;
-- Another user's session does not exist for this one.
SELECT pg_temp.err(format('SELECT actloom.session_revoke(%L)', :'old'));
SELECT pg_temp.err('SELECT actloom.session_revoke(gen_random_uuid())');
SELECT pg_temp.err('SELECT actloom.session_revoke(NULL)');
-- Revoking another session of one's own.
SELECT actloom.session_revoke(:'s2') AS revoked;
SELECT actloom.session_revoke(:'s2') AS revoked_again;
SELECT count(*) AS live FROM actloom.my_sessions();
COMMIT;
SELECT pg_temp.err(format('SELECT actloom.act_as_session(%L)', :'s2')) AS s2_now;

-- Signing out: revoking the current session.
BEGIN;
SELECT actloom.act_as_session(:'s1') IS NOT NULL AS ok;
SELECT actloom.session_revoke(actloom.current_session()) AS signed_out;
COMMIT;
SELECT pg_temp.err(format('SELECT actloom.act_as_session(%L)', :'s1')) AS s1_now;

-- Without a user acting there is nobody whose sessions these are.
SELECT pg_temp.err('SELECT actloom.my_sessions()');
SELECT pg_temp.err('SELECT actloom.session_info()');
SELECT pg_temp.err('SELECT actloom.session_revoke_all()');
SELECT pg_temp.err(format('SELECT actloom.session_revoke(%L)', :'s1'));

-- Signing out everywhere: every live session of the user ends.
SELECT session AS a1 FROM actloom.session_create(:'acme_admin', 'a1') \gset
SELECT session AS a2 FROM actloom.session_create(:'acme_admin', 'a2') \gset
BEGIN;
SELECT actloom.act_as_session(:'a1', :'acme') IS NOT NULL AS ok;
SELECT user_agent, is_current FROM actloom.my_sessions();
SELECT actloom.session_revoke_all() AS revoked;
SELECT count(*) AS live FROM actloom.my_sessions();
COMMIT;
SELECT name, pg_temp.err(format('SELECT actloom.act_as_session(%L)', id)) AS error
  FROM (VALUES ('a1', :'a1'::uuid), ('a2', :'a2')) AS v(name, id);

-- A new sign-in ends the session the browser still carried, whoever's.
SELECT session AS m1 FROM actloom.session_create(:'acme_member', 'browser') \gset
SELECT session AS m2 FROM actloom.session_create(:'acme_admin', 'browser', NULL, :'m1') \gset
SELECT pg_temp.err(format('SELECT actloom.act_as_session(%L)', :'m1')) AS m1_now;
SELECT actloom.act_as_session(:'m2') = :'acme_admin' AS m2_lives;
SELECT session AS m3 FROM actloom.session_create(:'acme_admin', 'browser', NULL, gen_random_uuid()) \gset

-- A rolled back sign-in leaves nothing behind.
BEGIN;
SELECT session AS gone FROM actloom.session_create(:'acme_admin') \gset
ROLLBACK;
SELECT pg_temp.err(format('SELECT actloom.act_as_session(%L)', :'gone')) AS gone_now;
RESET ROLE;
SELECT count(*) AS rows FROM actloom.sessions WHERE id = :'gone';

SELECT id = :'s1' AS s1, id = :'s2' AS s2, id = :'m1' AS m1, revoked_reason
  FROM actloom.sessions WHERE id IN (:'s1', :'s2', :'a1', :'a2', :'m1') ORDER BY revoked_reason, 1, 2;

--------------------------------------------------------------------------
-- Privileges: the gateway only.
--------------------------------------------------------------------------
SET ROLE regress_outsider;
SELECT f, pg_temp.err('SELECT ' || f) AS error FROM (VALUES
	('actloom.act_as_session(gen_random_uuid())'),
	('actloom.session_create(gen_random_uuid())'),
	('actloom.session_revoke(gen_random_uuid())'),
	('actloom.session_revoke_all()'),
	('actloom.my_sessions()'),
	('actloom.session_info()'),
	('actloom._session_revoke_user(gen_random_uuid(), ''revoked'')'),
	('actloom.current_session()')) AS v(f);
SELECT pg_temp.err('SELECT * FROM actloom.sessions');
SET ROLE regress_app;
SELECT pg_temp.err('SELECT * FROM actloom.sessions');
SELECT pg_temp.err('UPDATE actloom.sessions SET revoked_at = NULL');
SELECT pg_temp.err(format('SELECT actloom._session_revoke_user(%L, ''revoked'')', :'acme_admin'));
RESET ROLE;

--------------------------------------------------------------------------
-- The audit trail: every sign-in and revocation, in the system chain, with
-- the session as actor where one acted.
--------------------------------------------------------------------------
SELECT a.action, a.target_type,
	   a.target_id::uuid = any (ARRAY[:'s1', :'s2', :'m1', :'m2']::uuid[]) AS known_target,
	   a.actor_session IS NOT NULL AS by_session,
	   a.actor_session = a.target_id::uuid AS by_itself,
	   a.detail - 'expires_at' - 'user' AS detail,
	   a.client_addr
  FROM actloom.audit_log a
 WHERE a.chain = actloom.system_chain() AND a.action LIKE 'session.%'
   AND (a.target_id IN (:'s1', :'s2', :'m1', :'m2', :'acme_admin'))
 ORDER BY a.seq;
SELECT (detail ->> 'expires_at')::timestamptz = s.expires_at AS expiry_recorded
  FROM actloom.audit_log a JOIN actloom.sessions s ON s.id::text = a.target_id
 WHERE a.action = 'session.create' AND s.id = :'s1';
SELECT chain = actloom.system_chain() AS system, ok FROM actloom.audit_verify(actloom.system_chain());

-- The client address set for the transaction goes into the entries.
SET ROLE regress_app;
BEGIN;
SELECT actloom.set_client_addr('198.51.100.9');
SELECT session AS s9 FROM actloom.session_create(:'loner', 'x', '198.51.100.9') \gset
COMMIT;
RESET ROLE;
SELECT action, client_addr, actor_user = :'loner' AS actor_user FROM actloom.audit_log
 WHERE target_id = :'s9' ORDER BY seq;
SELECT client_addr, user_agent FROM actloom.sessions WHERE id = :'s9';

--------------------------------------------------------------------------
-- Purging ended sessions: a DBA's periodic job.
--------------------------------------------------------------------------
SET ROLE regress_app;
SELECT pg_temp.err('SELECT actloom.session_purge()') AS gateway_may_not;
RESET ROLE;
SELECT pg_temp.err('SELECT actloom.session_purge(NULL)') AS null_arg;
SELECT pg_temp.err('SELECT actloom.session_purge(''-1 day'')') AS negative;
CREATE TEMP TABLE live_before AS SELECT id FROM actloom.sessions s WHERE actloom._session_alive(s);
SELECT actloom.session_purge() AS purged_after_30_days;
UPDATE actloom.sessions SET revoked_at = revoked_at - interval '31 days' WHERE id = :'s2';
SELECT actloom.session_purge() AS purged_after_30_days;
SELECT count(*) AS s2_left FROM actloom.sessions WHERE id = :'s2';
SELECT actloom.session_purge('0') > 0 AS purged_every_ended_one;
SELECT (SELECT count(*) FROM actloom.sessions) = (SELECT count(*) FROM live_before) AS only_live_ones_left,
	   NOT EXISTS (SELECT FROM live_before l WHERE NOT EXISTS (SELECT FROM actloom.sessions s WHERE s.id = l.id))
		   AS all_live_ones_kept;
SELECT action, detail - 'sessions' AS detail FROM actloom.audit_log
 WHERE action = 'session.purge' ORDER BY seq;
