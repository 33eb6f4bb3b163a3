--------------------------------------------------------------------------
-- People: sign-up and sign-in in one call each, and what the management
-- API needs beyond the kernel.  The gateway (the shim) calls these; it
-- never sees a password hash.
--------------------------------------------------------------------------

ALTER TABLE actloom.users ADD COLUMN display_name text
	CHECK (pg_catalog.length(display_name) BETWEEN 1 AND 200 AND display_name !~ '[[:cntrl:]]');
COMMENT ON COLUMN actloom.users.display_name IS 'the name a person gave at sign-up';
GRANT SELECT (display_name) ON actloom.users TO actloom_gateway;

-- A password change (set_password, import_password_hash) ends every session
-- of the user: whoever knew the old password is signed out.  A re-hash at
-- sign-in changes the hash but not password_changed_at, and ends nothing.
CREATE FUNCTION actloom._sessions_end_on_password_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._session_revoke_user(NEW.id, 'password_change');
	RETURN NULL;
END
$$;
COMMENT ON FUNCTION actloom._sessions_end_on_password_change() IS
	'trigger: revoke the sessions of a user whose password changed';
CREATE TRIGGER users_password_change_ends_sessions
	AFTER UPDATE OF password_changed_at ON actloom.users
	FOR EACH ROW WHEN (NEW.password_changed_at IS DISTINCT FROM OLD.password_changed_at)
	EXECUTE FUNCTION actloom._sessions_end_on_password_change();

CREATE FUNCTION actloom.sign_in(email text, password text, user_agent text DEFAULT NULL,
								client_addr inet DEFAULT NULL, replaces uuid DEFAULT NULL)
RETURNS TABLE (user_id uuid, session uuid, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	signed_in uuid;
BEGIN
	-- verify_password audits both outcomes and takes about the same time
	-- whether or not the address has an account.  A failure returns no row
	-- rather than raising, so that its audit entry commits.
	signed_in := actloom.verify_password(email, password);
	IF signed_in IS NULL THEN
		RETURN;
	END IF;
	RETURN QUERY
		SELECT signed_in, s.session, s.expires_at
		  FROM actloom.session_create(signed_in, user_agent, client_addr, replaces) s;
END
$$;
COMMENT ON FUNCTION actloom.sign_in(text, text, text, inet, uuid) IS
	'verify a password and start a session, ending the one it replaces; no row when the credentials are wrong';

CREATE FUNCTION actloom.sign_up(email text, password text, name text, user_agent text DEFAULT NULL,
								client_addr inet DEFAULT NULL)
RETURNS TABLE (user_id uuid, session uuid, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	new_user uuid;
	clean text := btrim(sign_up.name);
BEGIN
	PERFORM actloom._require_arg(password, 'password');
	PERFORM actloom._require_arg(name, 'name');
	IF length(clean) NOT BETWEEN 1 AND 200 OR clean ~ '[[:cntrl:]]' THEN
		RAISE EXCEPTION 'invalid name'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A name has 1 to 200 characters besides surrounding spaces, and no control characters.';
	END IF;
	new_user := actloom.create_user(email, password);
	UPDATE actloom.users u SET display_name = clean WHERE u.id = new_user;
	RETURN QUERY
		SELECT new_user, s.session, s.expires_at
		  FROM actloom.session_create(new_user, user_agent, client_addr) s;
END
$$;
COMMENT ON FUNCTION actloom.sign_up(text, text, text, text, inet) IS
	'create a user with a password and a name, and start their first session';

CREATE FUNCTION actloom.add_member_by_email(company uuid, email text,
											role actloom.company_role DEFAULT 'member')
RETURNS uuid
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	target uuid;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom._require_arg(email, 'email');
	-- Only those who may invite learn whether an address has an account.
	PERFORM actloom.authorize(company, 'members.invite');
	SELECT u.id INTO target FROM actloom.users u WHERE u.email = lower(add_member_by_email.email);
	IF target IS NULL THEN
		RAISE EXCEPTION 'user does not exist' USING ERRCODE = 'no_data_found',
			HINT = 'People sign up first; then they can be added.';
	END IF;
	PERFORM actloom.add_member(company, target, role);
	RETURN target;
END
$$;
COMMENT ON FUNCTION actloom.add_member_by_email(uuid, text, actloom.company_role) IS
	'add an existing user, named by email, to a company (permission members.invite); returns the user';

CREATE FUNCTION actloom.session_info()
RETURNS jsonb
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
BEGIN ATOMIC
	SELECT jsonb_build_object(
		'user', jsonb_build_object('id', u.id, 'email', u.email, 'name', u.display_name),
		'session', (SELECT jsonb_build_object('id', s.id, 'created_at', s.created_at,
											  'expires_at', least(s.expires_at,
													s.created_at + actloom._session_limit('max_lifetime')))
					  FROM actloom.sessions s WHERE s.id = actloom.current_session()),
		'companies', coalesce((SELECT jsonb_agg(jsonb_build_object('id', c.id, 'name', c.name,
																	'role', m.role)
												ORDER BY c.name, c.id)
								 FROM actloom.memberships m JOIN actloom.companies c ON c.id = m.company_id
								WHERE m.user_id = u.id), '[]'::jsonb))
	  FROM actloom.users u WHERE u.id = actloom._actor_user();
END;
COMMENT ON FUNCTION actloom.session_info() IS
	'the acting user, their session and their companies with roles, as JSON';


GRANT EXECUTE ON FUNCTION
	actloom.session_info(),
	actloom.sign_in(text, text, text, inet, uuid),
	actloom.sign_up(text, text, text, text, inet),
	actloom.add_member_by_email(uuid, text, actloom.company_role)
	TO actloom_gateway;
