--------------------------------------------------------------------------
-- Passwords (password.c)
--------------------------------------------------------------------------

-- Internal C functions, granted to nobody.
CREATE FUNCTION actloom._password_hash(password text)
RETURNS text
AS 'MODULE_PATHNAME', 'password_hash'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION actloom._password_hash(text) IS
	'internal: a new argon2id PHC hash at the current cost; NULL for NULL';

CREATE FUNCTION actloom._password_verify(password text, hash text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'password_verify'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION actloom._password_verify(text, text) IS
	'internal: whether a password matches a stored hash; a dummy check when the hash is NULL; NULL for an over-long password';

CREATE FUNCTION actloom._password_needs_rehash(hash text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'password_needs_rehash'
LANGUAGE C STABLE;
COMMENT ON FUNCTION actloom._password_needs_rehash(text) IS
	'internal: whether a stored hash is bcrypt or weaker than the current argon2id cost';

CREATE FUNCTION actloom._password_hash_scheme(hash text)
RETURNS text
AS 'MODULE_PATHNAME', 'password_hash_scheme'
LANGUAGE C IMMUTABLE;
COMMENT ON FUNCTION actloom._password_hash_scheme(text) IS
	'internal: ''argon2id'' or ''bcrypt'' for an importable hash; 22023 otherwise';

CREATE FUNCTION actloom._password_check_policy(email text, password text)
RETURNS void
AS 'MODULE_PATHNAME', 'password_check_policy'
LANGUAGE C STABLE;
COMMENT ON FUNCTION actloom._password_check_policy(text, text) IS
	'internal: raise 22023 when a new password breaks the policy';

-- Who may change a user's password: with a user acting, only that user;
-- with nobody acting, the gateway itself (a reset flow it has verified); an
-- API key never.  Returns the user's email; P0002 for an unknown user.
CREATE FUNCTION actloom._password_target(target uuid)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	address text;
BEGIN
	IF actloom.current_actor_kind() = 'api_key' THEN
		RAISE EXCEPTION 'permission denied to change a password'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'An API key acts for a company, not for a person.';
	END IF;
	IF actloom.current_user_id() IS DISTINCT FROM target AND actloom.current_user_id() IS NOT NULL THEN
		RAISE EXCEPTION 'permission denied to change a password'
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'A user changes their own password only.';
	END IF;
	SELECT u.email INTO address FROM actloom.users u WHERE u.id = target;
	IF address IS NULL THEN
		RAISE EXCEPTION 'user does not exist' USING ERRCODE = 'no_data_found';
	END IF;
	RETURN address;
END
$$;
COMMENT ON FUNCTION actloom._password_target(uuid) IS
	'internal: check who may change a user''s password; returns the email';

CREATE FUNCTION actloom.set_password("user" uuid, password text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	address text;
BEGIN
	PERFORM actloom._require_arg("user", 'user');
	PERFORM actloom._require_arg(password, 'password');
	address := actloom._password_target("user");
	PERFORM actloom._password_check_policy(address, password);
	UPDATE actloom.users u
	   SET password_hash = actloom._password_hash(password), password_changed_at = now()
	 WHERE u.id = set_password."user";
	PERFORM actloom._audit_to(actloom.system_chain(), 'user.password_set', 'user',
							  "user"::text, '{}');
END
$$;
COMMENT ON FUNCTION actloom.set_password(uuid, text) IS
	'set a user''s password, hashed with argon2id; the acting user''s own only';

CREATE FUNCTION actloom.import_password_hash("user" uuid, hash text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	scheme text;
BEGIN
	PERFORM actloom._require_arg("user", 'user');
	PERFORM actloom._require_arg(hash, 'hash');
	PERFORM actloom._password_target("user");
	scheme := actloom._password_hash_scheme(hash);
	UPDATE actloom.users u SET password_hash = hash, password_changed_at = now()
	 WHERE u.id = import_password_hash."user";
	PERFORM actloom._audit_to(actloom.system_chain(), 'user.password_import', 'user',
							  "user"::text, jsonb_build_object('scheme', scheme));
END
$$;
COMMENT ON FUNCTION actloom.import_password_hash(uuid, text) IS
	'store a bcrypt or argon2id hash made elsewhere (migrations); re-hashed at the next sign-in';

CREATE FUNCTION actloom.verify_password(email text, password text)
RETURNS uuid
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	found_id uuid;
	stored text;
	disabled boolean;
	ok boolean;
	reason text;
	rehash boolean := false;
BEGIN
	PERFORM actloom._require_arg(email, 'email');
	PERFORM actloom._require_arg(password, 'password');
	SELECT u.id, u.password_hash, u.disabled_at IS NOT NULL INTO found_id, stored, disabled
	  FROM actloom.users u WHERE u.email = lower(verify_password.email);

	-- One argon2id computation on every path that looks a user up, so that
	-- the time taken does not tell whether the address has an account.
	ok := actloom._password_verify(password, stored);
	reason := CASE WHEN ok IS NULL THEN 'password too long'
				   WHEN found_id IS NULL THEN 'unknown email'
				   WHEN stored IS NULL THEN 'no password'
				   WHEN NOT ok THEN 'wrong password'
				   WHEN disabled THEN 'disabled' END;

	IF reason IS NOT NULL THEN
		-- No password material, and no address that matches no account (it
		-- may be a password typed into the wrong field).
		PERFORM actloom._audit_to(actloom.system_chain(), 'user.sign_in_failed', 'user',
								  found_id::text, jsonb_build_object('reason', reason));
		RETURN NULL;
	END IF;

	IF actloom._password_needs_rehash(stored) THEN
		UPDATE actloom.users u SET password_hash = actloom._password_hash(password)
		 WHERE u.id = found_id;
		rehash := true;
	END IF;
	PERFORM actloom._audit_to(actloom.system_chain(), 'user.sign_in', 'user', found_id::text,
							  jsonb_build_object('method', 'password', 'rehashed', rehash));
	RETURN found_id;
END
$$;
COMMENT ON FUNCTION actloom.verify_password(text, text) IS
	'the user id when the password is right, NULL otherwise, in about the same time either way';

GRANT EXECUTE ON FUNCTION
	actloom.set_password(uuid, text),
	actloom.import_password_hash(uuid, text),
	actloom.verify_password(text, text)
	TO actloom_gateway;
