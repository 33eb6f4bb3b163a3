--------------------------------------------------------------------------
-- Sign-in sessions (session.c)
--
-- A session is a row here and a signed token in the browser that names it.
-- The shim creates one at sign-in (a new id every time), and every request
-- that carries the token calls actloom.act_as_session() in its own
-- transaction: a revoked, expired or idle session is refused there, with
-- SQLSTATE 28000, on its very next request.  Settings (superuser only):
-- actloom.session_idle_timeout (default 30 min) and
-- actloom.session_max_lifetime (default 12 h).
--------------------------------------------------------------------------

CREATE TABLE actloom.sessions (
	id			   uuid PRIMARY KEY DEFAULT pg_catalog.gen_random_uuid(),
	user_id		   uuid NOT NULL REFERENCES actloom.users (id) ON DELETE CASCADE,
	created_at	   timestamptz NOT NULL DEFAULT pg_catalog.now(),
	last_seen_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
	expires_at	   timestamptz NOT NULL,
	revoked_at	   timestamptz,
	revoked_reason text CHECK (revoked_reason IN
		('sign_out', 'sign_out_everywhere', 'revoked', 'replaced', 'password_change')),
	user_agent	   text CHECK (pg_catalog.length(user_agent) <= 512),
	client_addr	   inet,
	CHECK (expires_at > created_at),
	CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL))
);
-- Revoking every session of a user and listing them read the live ones.
CREATE INDEX sessions_user_idx ON actloom.sessions (user_id) WHERE revoked_at IS NULL;
COMMENT ON TABLE actloom.sessions IS
	'sign-in sessions; read and changed through functions only';
SELECT pg_catalog.pg_extension_config_dump('actloom.sessions', '');
REVOKE ALL ON actloom.sessions FROM PUBLIC;

CREATE FUNCTION actloom.act_as_session(session uuid, company uuid DEFAULT NULL)
RETURNS uuid
AS 'MODULE_PATHNAME', 'act_as_session'
LANGUAGE C VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp;
COMMENT ON FUNCTION actloom.act_as_session(uuid, uuid) IS
	'check a sign-in session and make its user the actor of this transaction, in a company they belong to; returns the user; gateway only';

CREATE FUNCTION actloom.current_session()
RETURNS uuid
AS 'MODULE_PATHNAME', 'current_session'
LANGUAGE C STABLE PARALLEL RESTRICTED;
COMMENT ON FUNCTION actloom.current_session() IS
	'the sign-in session the actor acts through, or NULL';

-- A session's limits as intervals of whole seconds, as the settings hold
-- them now.  pg_settings gives the value in its base unit (seconds), which
-- keeps "1d" from becoming a calendar day.
CREATE FUNCTION actloom._session_limit(setting text)
RETURNS interval
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN (SELECT make_interval(secs => s.setting::float8) FROM pg_catalog.pg_settings s
		 WHERE s.name = 'actloom.session_' || _session_limit.setting);
COMMENT ON FUNCTION actloom._session_limit(text) IS
	'internal: actloom.session_idle_timeout or _max_lifetime as an interval';

-- Whether a session is alive now: the rules of act_as_session(), in SQL.
CREATE FUNCTION actloom._session_alive(s actloom.sessions)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN s.revoked_at IS NULL
	AND s.expires_at > now()
	AND s.created_at + actloom._session_limit('max_lifetime') > now()
	AND s.last_seen_at + actloom._session_limit('idle_timeout') > now();
COMMENT ON FUNCTION actloom._session_alive(actloom.sessions) IS
	'internal: whether a session is neither revoked, expired nor idle';

-- Revoke the live sessions of a user, and audit it once in the system
-- chain; returns how many there were.  Sessions already dead are left as
-- they are.  Internal: sign-out everywhere and password changes call it.
CREATE FUNCTION actloom._session_revoke_user("user" uuid, reason text)
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	n integer;
BEGIN
	UPDATE actloom.sessions s SET revoked_at = now(), revoked_reason = reason
	 WHERE s.user_id = "user" AND s.revoked_at IS NULL AND actloom._session_alive(s);
	GET DIAGNOSTICS n = ROW_COUNT;
	PERFORM actloom._audit_to(actloom.system_chain(), 'session.revoke_all', 'user', "user"::text,
							  jsonb_build_object('reason', reason, 'sessions', n));
	RETURN n;
END
$$;
COMMENT ON FUNCTION actloom._session_revoke_user(uuid, text) IS
	'internal: revoke every live session of a user, audited';

CREATE FUNCTION actloom.session_create("user" uuid, user_agent text DEFAULT NULL,
									   client_addr inet DEFAULT NULL, replaces uuid DEFAULT NULL)
RETURNS TABLE (session uuid, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	new_id uuid;
	new_expiry timestamptz := now() + actloom._session_limit('max_lifetime');
	ua text;
	replaced_user uuid;
BEGIN
	PERFORM actloom._require_arg("user", 'user');
	IF NOT EXISTS (SELECT FROM actloom.users u WHERE u.id = "user" AND u.disabled_at IS NULL) THEN
		RAISE EXCEPTION 'user does not exist or is disabled'
			USING ERRCODE = 'invalid_authorization_specification';
	END IF;
	-- The browser's previous session, whoever's it was, ends with this
	-- sign-in: nobody keeps a session id across one.
	IF replaces IS NOT NULL THEN
		UPDATE actloom.sessions s SET revoked_at = now(), revoked_reason = 'replaced'
		 WHERE s.id = replaces AND s.revoked_at IS NULL
		RETURNING s.user_id INTO replaced_user;
		IF FOUND THEN
			PERFORM actloom._audit_to(actloom.system_chain(), 'session.revoke', 'session',
									  replaces::text,
									  jsonb_build_object('reason', 'replaced', 'user', replaced_user));
		END IF;
	END IF;
	-- The user agent is the client's to say: kept short and printable.
	ua := left(regexp_replace(user_agent, '[[:cntrl:]]', '', 'g'), 512);
	INSERT INTO actloom.sessions (user_id, expires_at, user_agent, client_addr)
		VALUES ("user", new_expiry, nullif(ua, ''), session_create.client_addr)
		RETURNING id INTO new_id;
	PERFORM actloom.act_as_session(new_id);
	PERFORM actloom._audit_to(actloom.system_chain(), 'session.create', 'session', new_id::text,
							  jsonb_build_object('expires_at', new_expiry, 'user_agent', nullif(ua, '')));
	RETURN QUERY SELECT new_id, new_expiry;
END
$$;
COMMENT ON FUNCTION actloom.session_create(uuid, text, inet, uuid) IS
	'start a sign-in session for a user whose credentials the caller verified, ending the one it replaces; makes it the actor; gateway only';

CREATE FUNCTION actloom.session_revoke(session uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	actor uuid := actloom._actor_user();
	was_live boolean;
	why text;
BEGIN
	PERFORM actloom._require_arg(session, 'session');
	SELECT s.revoked_at IS NULL INTO was_live FROM actloom.sessions s
	 WHERE s.id = session AND s.user_id = actor
	   FOR NO KEY UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'session does not exist' USING ERRCODE = 'no_data_found';
	END IF;
	IF NOT was_live THEN
		RETURN false;
	END IF;
	why := CASE WHEN session = actloom.current_session() THEN 'sign_out' ELSE 'revoked' END;
	UPDATE actloom.sessions s SET revoked_at = now(), revoked_reason = why WHERE s.id = session;
	PERFORM actloom._audit_to(actloom.system_chain(), 'session.revoke', 'session', session::text,
							  jsonb_build_object('reason', why));
	RETURN true;
END
$$;
COMMENT ON FUNCTION actloom.session_revoke(uuid) IS
	'end one of the acting user''s sessions (sign-out when it is the current one); false when it had ended already';

CREATE FUNCTION actloom.session_revoke_all()
RETURNS integer
LANGUAGE sql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
RETURN actloom._session_revoke_user(actloom._actor_user(), 'sign_out_everywhere');
COMMENT ON FUNCTION actloom.session_revoke_all() IS
	'end every live session of the acting user, the current one included; returns how many';

CREATE FUNCTION actloom.my_sessions()
RETURNS TABLE (session uuid, created_at timestamptz, last_seen_at timestamptz,
			   expires_at timestamptz, user_agent text, client_addr inet, is_current boolean)
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
BEGIN ATOMIC
	SELECT s.id, s.created_at, s.last_seen_at,
		   least(s.expires_at, s.created_at + actloom._session_limit('max_lifetime')),
		   s.user_agent, s.client_addr, s.id IS NOT DISTINCT FROM actloom.current_session()
	  FROM actloom.sessions s
	 WHERE s.user_id = actloom._actor_user() AND actloom._session_alive(s)
	 ORDER BY s.created_at DESC, s.id;
END;
COMMENT ON FUNCTION actloom.my_sessions() IS
	'the acting user''s live sessions, newest first, marking the current one';

-- Ended sessions are kept for a while (a user's "signed out" history, the
-- audit entries' targets) and then removed: every sign-in adds a row.
CREATE FUNCTION actloom.session_purge(older_than interval DEFAULT '30 days')
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	n bigint;
BEGIN
	PERFORM actloom._require_arg(older_than, 'older_than');
	IF older_than < interval '0' THEN
		RAISE EXCEPTION 'older_than must not be negative' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- A session ended at the first of its revocation, its expiry, the end
	-- of its lifetime and the end of its idle time (least() skips NULLs).
	DELETE FROM actloom.sessions s
	 WHERE least(s.revoked_at, s.expires_at,
				 s.created_at + actloom._session_limit('max_lifetime'),
				 s.last_seen_at + actloom._session_limit('idle_timeout')) < now() - older_than;
	GET DIAGNOSTICS n = ROW_COUNT;
	PERFORM actloom._audit_to(actloom.system_chain(), 'session.purge', NULL, NULL,
							  jsonb_build_object('older_than_s', extract(epoch FROM older_than)::bigint, 'sessions', n));
	RETURN n;
END
$$;
COMMENT ON FUNCTION actloom.session_purge(interval) IS
	'delete sessions that ended longer ago than older_than; for a periodic job of the DBA';

GRANT EXECUTE ON FUNCTION
	actloom.act_as_session(uuid, uuid),
	actloom.session_create(uuid, text, inet, uuid),
	actloom.session_revoke(uuid),
	actloom.session_revoke_all(),
	actloom.my_sessions()
	TO actloom_gateway;
