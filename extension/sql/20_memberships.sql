--------------------------------------------------------------------------
-- Users, companies and memberships
--------------------------------------------------------------------------

-- Raise 22004 for a NULL argument; shared by the functions below.
CREATE FUNCTION actloom._require_arg(val anyelement, name text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	IF val IS NULL THEN
		RAISE EXCEPTION 'argument "%" must not be null', name
			USING ERRCODE = 'null_value_not_allowed';
	END IF;
END
$$;
COMMENT ON FUNCTION actloom._require_arg(anyelement, text) IS 'internal: raise 22004 for a NULL argument';

-- An input as a message may quote it: its first 100 characters, then "..."
-- when it has more (ActloomQuotable in actloom.c, which the C functions
-- use), so that no input makes a message or its log line large.
CREATE FUNCTION actloom._quotable(input text)
RETURNS text
AS 'MODULE_PATHNAME', 'quotable'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION actloom._quotable(text) IS
	'internal: an input cut to 100 characters, for quoting in a message';

-- The acting user, or 42501 when nobody acts.
CREATE FUNCTION actloom._actor_user()
RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	u uuid := actloom.current_user_id();
BEGIN
	IF u IS NULL THEN
		RAISE EXCEPTION 'no user acts in this transaction'
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'Call actloom.act_as() first, in the same transaction.';
	END IF;
	RETURN u;
END
$$;
COMMENT ON FUNCTION actloom._actor_user() IS 'internal: the acting user, or 42501';

CREATE FUNCTION actloom.create_user(email text, password text DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	normalized text;
	new_id uuid;
BEGIN
	PERFORM actloom._require_arg(email, 'email');
	normalized := lower(email);
	IF NOT actloom.valid_email(normalized) THEN
		RAISE EXCEPTION 'invalid email address'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'An address has one "@", a dot in its domain, no spaces, and at most 254 characters.';
	END IF;
	IF EXISTS (SELECT FROM actloom.users u WHERE u.email = normalized::actloom.email) THEN
		RAISE EXCEPTION 'a user with this email address already exists'
			USING ERRCODE = 'unique_violation';
	END IF;
	-- Without a password the user signs in only through OAuth or SSO.
	IF password IS NOT NULL THEN
		PERFORM actloom._password_check_policy(normalized, password);
	END IF;
	INSERT INTO actloom.users (email, password_hash, password_changed_at)
		VALUES (normalized, actloom._password_hash(password),
				CASE WHEN password IS NOT NULL THEN now() END)
		RETURNING id INTO new_id;
	PERFORM actloom._audit_to(actloom.system_chain(), 'user.create', 'user', new_id::text,
							  jsonb_build_object('email', normalized)
							  || CASE WHEN password IS NOT NULL THEN '{"password": true}'::jsonb
									  ELSE '{}'::jsonb END);
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION actloom.create_user(text, text) IS
	'create a user, with a password or without (OAuth and SSO only); the email is stored lower-cased';

CREATE FUNCTION actloom.create_company(name text)
RETURNS uuid
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	creator uuid := actloom._actor_user();
	new_id uuid;
BEGIN
	PERFORM actloom._require_arg(name, 'name');
	IF length(btrim(name)) NOT BETWEEN 1 AND 200 THEN
		RAISE EXCEPTION 'invalid company name'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'A company name has 1 to 200 characters besides surrounding spaces.';
	END IF;
	INSERT INTO actloom.companies (name, created_by) VALUES (btrim(name), creator)
		RETURNING id INTO new_id;
	INSERT INTO actloom.memberships (company_id, user_id, role) VALUES (new_id, creator, 'owner');
	PERFORM actloom._audit_to(new_id, 'company.create', 'company', new_id::text,
							  jsonb_build_object('name', btrim(name), 'owner', creator));
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION actloom.create_company(text) IS
	'create a company; the acting user becomes its owner';

-- Lock the company row so that membership changes of one company run one at
-- a time: two owners demoting each other at once cannot leave it ownerless.
-- Returns the acting user's current role.  Raises 42501 unless the actor may
-- do the action; an unknown company is indistinguishable from a foreign one.
CREATE FUNCTION actloom._membership_change(company uuid, action text)
RETURNS actloom.company_role
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	actor_role actloom.company_role;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom._actor_user();
	PERFORM actloom.authorize(company, action);
	PERFORM 1 FROM actloom.companies c WHERE c.id = company FOR UPDATE;
	SELECT m.role INTO actor_role FROM actloom.memberships m
	 WHERE m.company_id = company AND m.user_id = actloom.current_user_id();
	IF actor_role IS NULL THEN
		RAISE EXCEPTION 'permission denied for action "%"', action
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'The actor is not a member of the company.';
	END IF;
	RETURN actor_role;
END
$$;
COMMENT ON FUNCTION actloom._membership_change(uuid, text) IS
	'internal: authorize a membership change and serialize it per company';

-- Nobody grants, or touches a member holding, a role above their own.
CREATE FUNCTION actloom._check_ceiling(actor_role actloom.company_role,
									   role actloom.company_role, what text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	IF role > actor_role THEN
		RAISE EXCEPTION 'cannot % role "%"', what, role
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = format('The actor has role "%s"; nobody acts on a role above their own.', actor_role);
	END IF;
END
$$;
COMMENT ON FUNCTION actloom._check_ceiling(actloom.company_role, actloom.company_role, text) IS
	'internal: refuse acting on a role above the actor''s own';

-- The last owner of a company stays an owner.
CREATE FUNCTION actloom._check_last_owner(company uuid, user_id uuid)
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	IF (SELECT count(*) FROM actloom.memberships m
		 WHERE m.company_id = _check_last_owner.company AND m.role = 'owner'
		   AND m.user_id <> _check_last_owner.user_id) = 0 THEN
		RAISE EXCEPTION 'cannot remove or demote the last owner of a company'
			USING ERRCODE = 'check_violation',
				  HINT = 'Make another member an owner first.';
	END IF;
END
$$;
COMMENT ON FUNCTION actloom._check_last_owner(uuid, uuid) IS
	'internal: refuse leaving a company without an owner';

CREATE FUNCTION actloom.add_member(company uuid, user_id uuid,
								   role actloom.company_role DEFAULT 'member')
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	actor_role actloom.company_role;
BEGIN
	actor_role := actloom._membership_change(company, 'members.invite');
	PERFORM actloom._require_arg(add_member.user_id, 'user_id');
	PERFORM actloom._require_arg(add_member.role, 'role');
	PERFORM actloom._check_ceiling(actor_role, add_member.role, 'grant');
	IF NOT EXISTS (SELECT FROM actloom.users u WHERE u.id = add_member.user_id) THEN
		RAISE EXCEPTION 'user does not exist' USING ERRCODE = 'no_data_found';
	END IF;
	IF EXISTS (SELECT FROM actloom.memberships m
				WHERE m.company_id = add_member.company AND m.user_id = add_member.user_id) THEN
		RAISE EXCEPTION 'user is already a member of the company'
			USING ERRCODE = 'unique_violation',
				  HINT = 'Use actloom.set_role() to change the role of a member.';
	END IF;
	INSERT INTO actloom.memberships (company_id, user_id, role)
		VALUES (add_member.company, add_member.user_id, add_member.role);
	PERFORM actloom._audit_to(company, 'member.add', 'user', add_member.user_id::text,
							  jsonb_build_object('role', add_member.role));
	PERFORM actloom._webhook_emit(company, 'member.added',
								  jsonb_build_object('user_id', add_member.user_id, 'role', add_member.role));
END
$$;
COMMENT ON FUNCTION actloom.add_member(uuid, uuid, actloom.company_role) IS
	'add an existing user to a company (permission members.invite)';

-- The role of a member named as the target of a change; P0002 for a
-- non-member.
CREATE FUNCTION actloom._member_role(company uuid, user_id uuid)
RETURNS actloom.company_role
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	found_role actloom.company_role;
BEGIN
	SELECT m.role INTO found_role FROM actloom.memberships m
	 WHERE m.company_id = _member_role.company AND m.user_id = _member_role.user_id;
	IF found_role IS NULL THEN
		RAISE EXCEPTION 'user is not a member of the company' USING ERRCODE = 'no_data_found';
	END IF;
	RETURN found_role;
END
$$;
COMMENT ON FUNCTION actloom._member_role(uuid, uuid) IS
	'internal: the role of a target member, or P0002';

CREATE FUNCTION actloom.set_role(company uuid, user_id uuid, role actloom.company_role)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	actor_role actloom.company_role;
	old_role actloom.company_role;
BEGIN
	actor_role := actloom._membership_change(company, 'members.set_role');
	PERFORM actloom._require_arg(set_role.user_id, 'user_id');
	PERFORM actloom._require_arg(set_role.role, 'role');
	old_role := actloom._member_role(company, set_role.user_id);
	PERFORM actloom._check_ceiling(actor_role, old_role, 'change a member with');
	PERFORM actloom._check_ceiling(actor_role, set_role.role, 'grant');
	IF old_role = 'owner' AND set_role.role <> 'owner' THEN
		PERFORM actloom._check_last_owner(company, set_role.user_id);
	END IF;
	UPDATE actloom.memberships m SET role = set_role.role
	 WHERE m.company_id = set_role.company AND m.user_id = set_role.user_id;
	PERFORM actloom._audit_to(company, 'member.set_role', 'user', set_role.user_id::text,
							  jsonb_build_object('from', old_role, 'to', set_role.role));
	PERFORM actloom._webhook_emit(company, 'member.role_changed',
								  jsonb_build_object('user_id', set_role.user_id, 'from', old_role,
													 'to', set_role.role));
END
$$;
COMMENT ON FUNCTION actloom.set_role(uuid, uuid, actloom.company_role) IS
	'change the role of a member (permission members.set_role)';

CREATE FUNCTION actloom.remove_member(company uuid, user_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
DECLARE
	actor_role actloom.company_role;
	old_role actloom.company_role;
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom._require_arg(remove_member.user_id, 'user_id');
	-- Leaving needs no permission; removing someone else does.
	actor_role := actloom._membership_change(company,
		CASE WHEN remove_member.user_id = actloom.current_user_id()
			 THEN 'members.read' ELSE 'members.remove' END);
	old_role := actloom._member_role(company, remove_member.user_id);
	PERFORM actloom._check_ceiling(actor_role, old_role, 'remove a member with');
	IF old_role = 'owner' THEN
		PERFORM actloom._check_last_owner(company, remove_member.user_id);
	END IF;
	DELETE FROM actloom.memberships m
	 WHERE m.company_id = remove_member.company AND m.user_id = remove_member.user_id;
	PERFORM actloom._audit_to(company, 'member.remove', 'user', remove_member.user_id::text,
							  jsonb_build_object('role', old_role,
												 'left', remove_member.user_id = actloom.current_user_id()));
	PERFORM actloom._webhook_emit(company, 'member.removed',
								  jsonb_build_object('user_id', remove_member.user_id, 'role', old_role,
													 'left', remove_member.user_id = actloom.current_user_id()));
END
$$;
COMMENT ON FUNCTION actloom.remove_member(uuid, uuid) IS
	'remove a member (permission members.remove; any member may leave)';

CREATE FUNCTION actloom.members(company uuid)
RETURNS TABLE (user_id uuid, email text, role actloom.company_role, joined_at timestamptz)
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, actloom, pg_temp
AS $$
BEGIN
	PERFORM actloom._require_arg(company, 'company');
	PERFORM actloom.authorize(company, 'members.read');
	RETURN QUERY
		SELECT m.user_id, u.email::text, m.role, m.created_at
		  FROM actloom.memberships m JOIN actloom.users u ON u.id = m.user_id
		 WHERE m.company_id = members.company
		 ORDER BY m.role DESC, u.email;
END
$$;
COMMENT ON FUNCTION actloom.members(uuid) IS 'the members of a company (permission members.read)';

GRANT EXECUTE ON FUNCTION
	actloom.create_user(text, text),
	actloom.create_company(text),
	actloom.add_member(uuid, uuid, actloom.company_role),
	actloom.set_role(uuid, uuid, actloom.company_role),
	actloom.remove_member(uuid, uuid),
	actloom.members(uuid)
	TO actloom_gateway;
