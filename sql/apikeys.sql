-- API keys: format, storage, authentication, scopes, expiry, revocation.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
SELECT id AS acme FROM actloom.companies WHERE name = 'Acme' \gset
SELECT id AS globex FROM actloom.companies WHERE name = 'Globex' \gset
SELECT id AS acme_admin FROM actloom.users WHERE email = 'admin@acme.test' \gset
SELECT id AS acme_member FROM actloom.users WHERE email = 'member@acme.test' \gset
SELECT id AS acme_owner FROM actloom.users WHERE email = 'owner@acme.test' \gset
SELECT id AS globex_owner FROM actloom.users WHERE email = 'owner@globex.test' \gset

CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN regexp_replace(SQLSTATE || ': ' || SQLERRM, '[0-9a-f]{8}-[0-9a-f-]{27}', '<uuid>', 'g');
END
$$;

-- The documented key format, computed independently of the C code (as the
-- HTTP shim and secret scanners do): CRC-32 as zlib's crc32(), in base62,
-- big-endian, six digits.
CREATE FUNCTION pg_temp.crc32(s text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	bytes bytea := convert_to(s, 'UTF8');
	crc bigint := 4294967295;
BEGIN
	FOR i IN 0 .. length(bytes) - 1 LOOP
		crc := crc # get_byte(bytes, i);
		FOR k IN 1 .. 8 LOOP
			crc := CASE WHEN crc & 1 = 1 THEN (crc >> 1) # 3988292384 ELSE crc >> 1 END;
		END LOOP;
	END LOOP;
	RETURN crc # 4294967295;
END
$$;
CREATE FUNCTION pg_temp.base62(v bigint, width int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	digits text := '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
	out text := '';
BEGIN
	FOR i IN 1 .. width LOOP
		out := substr(digits, (v % 62)::int + 1, 1) || out;
		v := v / 62;
	END LOOP;
	RETURN out;
END
$$;
CREATE FUNCTION pg_temp.mkkey(id text, secret text) RETURNS text LANGUAGE sql
RETURN 'alk_' || id || '_' || secret || pg_temp.base62(pg_temp.crc32('alk_' || id || '_' || secret), 6);
SELECT pg_temp.crc32('123456789') = x'CBF43926'::bigint AS crc32_check_value;

SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.api_key_create(:'acme', 'CI pipeline', ARRAY['reports.*', 'members.read', 'reports.read']) AS key \gset
SELECT actloom.api_key_create(:'acme', 'manager', ARRAY['api_keys.manage', 'api_keys.read', 'reports.read']) AS mgr \gset
COMMIT;
RESET ROLE;
SELECT substr(:'key', 5, 12) AS key_id \gset
SELECT substr(:'mgr', 5, 12) AS mgr_id \gset

-- The format: prefix, 12-character id, "_", 43-character secret, checksum.
SELECT length(:'key') AS length,
	   :'key' ~ '^alk_[0-9A-Za-z]{12}_[0-9A-Za-z]{49}$' AS well_formed,
	   pg_temp.mkkey(substr(:'key', 5, 12), substr(:'key', 18, 43)) = :'key' AS checksum_as_documented,
	   :'key' <> :'mgr' AND substr(:'key', 18, 43) <> substr(:'mgr', 18, 43) AS distinct_keys;
-- Only the SHA-256 of the whole key is stored.
SELECT k.key_id = :'key_id' AS id_stored, k.key_hash = sha256(convert_to(:'key', 'UTF8')) AS sha256_stored,
	   position(convert_to(substr(:'key', 18, 43), 'UTF8') IN convert_to(k::text, 'UTF8')) AS secret_in_row
  FROM actloom.api_keys k WHERE k.key_id = :'key_id';
-- The secret characters are spread over the whole alphabet.
SELECT count(DISTINCT c) > 30 AS many_characters
  FROM regexp_split_to_table(substr(:'key', 18, 43) || substr(:'mgr', 18, 43), '') AS c;

-- Listing shows everything but secret material.
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT key_id = :'key_id' AS is_key, name, scopes, created_by = :'acme_admin' AS by_admin,
	   expires_at, revoked_at, last_used_at
  FROM actloom.api_keys(:'acme') ORDER BY name;
SELECT count(*) FROM actloom.api_keys(:'acme') k WHERE k::text LIKE '%' || substr(:'key', 18, 43) || '%';
COMMIT;

--------------------------------------------------------------------------
-- Authentication
--------------------------------------------------------------------------
SELECT company_id = :'acme' AS acme, key_id = :'key_id' AS key_id, scopes
  FROM actloom.authenticate_api_key(:'key');

BEGIN;
SELECT company_id = :'acme' AS acme FROM actloom.authenticate_api_key(:'key', 'reports.generate');
-- An API key acts in its company, with no user and no role.
SELECT actloom.current_actor_kind(), actloom.current_api_key() = :'key_id' AS key_acts,
	   actloom.current_user_id(), actloom.current_company() = :'acme' AS in_acme,
	   actloom.current_role();
-- Its scopes decide: exact actions and resource wildcards.
SELECT a AS action, actloom.can(:'acme', a) AS can
  FROM unnest(ARRAY['reports.read', 'reports.generate', 'members.read', 'members.invite',
					'api_keys.manage', 'company.delete']) AS a;
SELECT pg_temp.err(format('SELECT actloom.authorize(%L, ''reports.generate'')', :'acme')) AS allowed,
	   pg_temp.err(format('SELECT actloom.authorize(%L, ''members.invite'')', :'acme')) AS no_scope,
	   pg_temp.err(format('SELECT actloom.authorize(%L, ''reports.read'')', :'globex')) AS other_company,
	   pg_temp.err(format('SELECT actloom.authorize(%L, ''reports.fly'')', :'acme')) AS unknown_action,
	   pg_temp.err(format('SELECT actloom.require_role(%L, ''member'')', :'acme')) AS no_role;
SELECT actloom.can(:'globex', 'reports.read') AS can_in_globex;
-- Row level security follows the key's company.
SELECT title FROM public.reports ORDER BY title;
-- Functions that need a person refuse a key.
SELECT pg_temp.err('SELECT actloom.create_company(''Keyco'')') AS create_company,
	   pg_temp.err(format('SELECT actloom.add_member(%L, %L)', :'acme', :'globex_owner')) AS add_member;
COMMIT;
SELECT actloom.current_actor_kind(), actloom.current_api_key();

-- A missing or unknown required scope.
SELECT pg_temp.err(format('SELECT actloom.authenticate_api_key(%L, ''members.invite'')', :'key')) AS missing_scope,
	   pg_temp.err(format('SELECT actloom.authenticate_api_key(%L, ''reports.fly'')', :'key')) AS unknown_scope,
	   pg_temp.err(format('SELECT actloom.authenticate_api_key(%L, ''reports.*'')', :'key')) AS wildcard_is_no_action;
BEGIN;
SELECT pg_temp.err(format('SELECT actloom.authenticate_api_key(%L, ''members.invite'')', :'key')) AS missing_scope;
SELECT actloom.current_actor_kind() AS actor_after_refusal;
COMMIT;

-- Every bad key gets the same SQLSTATE and message.
SELECT label, pg_temp.err(format('SELECT actloom.authenticate_api_key(%L)', k)) AS error
  FROM (VALUES
	('wrong prefix', 'alx_' || substr(:'key', 5)),
	('upper-case prefix', 'ALK_' || substr(:'key', 5)),
	('wrong prefix, good checksum', 'alx_' || substr(pg_temp.mkkey(substr(:'key', 5, 12), substr(:'key', 18, 43)), 5)),
	('bad checksum', left(:'key', 65) || CASE right(:'key', 1) WHEN 'a' THEN 'b' ELSE 'a' END),
	('truncated', left(:'key', 65)),
	('over-long', :'key' || 'a'),
	('leading space', ' ' || :'key'),
	('trailing newline', :'key' || E'\n'),
	('non-ASCII', left(:'key', 20) || 'é' || substr(:'key', 22)),
	('non-ASCII, same byte length', left(:'key', 20) || 'é' || substr(:'key', 23)),
	('dash for underscore', left(:'key', 16) || '-' || substr(:'key', 18)),
	('empty', ''),
	('unknown id, good checksum', pg_temp.mkkey('000000000000', substr(:'key', 18, 43))),
	('wrong secret, good checksum', pg_temp.mkkey(substr(:'key', 5, 12), repeat('A', 43))),
	('other key''s secret', pg_temp.mkkey(substr(:'key', 5, 12), substr(:'mgr', 18, 43)))
  ) AS t(label, k);
-- NUL cannot even be written into a text value.
SELECT pg_temp.err($$SELECT actloom.authenticate_api_key('alk_' || chr(0))$$) AS chr_0,
	   pg_temp.err($$SELECT actloom.authenticate_api_key(E'alk_\000')$$) AS escape_0,
	   pg_temp.err($$SELECT actloom.authenticate_api_key(convert_from('\x616c6b5f00', 'UTF8'))$$) AS convert_0;
SELECT pg_temp.err('SELECT actloom.authenticate_api_key(NULL)') AS null_key;

-- Authenticating in a read-only transaction works (it writes nothing then).
BEGIN READ ONLY;
SELECT key_id = :'key_id' AS read_only_ok FROM actloom.authenticate_api_key(:'key');
COMMIT;
RESET ROLE;

-- last_used_at is written at most once a minute.
SELECT last_used_at IS NOT NULL AS used, last_used_at AS first_use FROM actloom.api_keys WHERE key_id = :'key_id' \gset
SELECT :'used' AS used;
SET ROLE regress_app;
SELECT count(*) FROM actloom.authenticate_api_key(:'key');
RESET ROLE;
SELECT last_used_at = :'first_use' AS not_rewritten FROM actloom.api_keys WHERE key_id = :'key_id';
UPDATE actloom.api_keys SET last_used_at = now() - interval '2 minutes' WHERE key_id = :'key_id';
SET ROLE regress_app;
SELECT count(*) FROM actloom.authenticate_api_key(:'key');
RESET ROLE;
SELECT last_used_at > now() - interval '1 minute' AS rewritten_after_a_minute FROM actloom.api_keys WHERE key_id = :'key_id';

-- Outside the gateway nobody authenticates.
SET ROLE regress_outsider;
SELECT pg_temp.err(format('SELECT actloom.authenticate_api_key(%L)', :'key')) AS outsider;
RESET ROLE;

--------------------------------------------------------------------------
-- Creation: validation, and nobody grants what they cannot do
--------------------------------------------------------------------------
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT regexp_replace(s, '[0-9a-f]{8}-[0-9a-f-]{27}', '<uuid>', 'g') AS statement,
	   pg_temp.err(s) AS error FROM (VALUES
	('SELECT actloom.api_key_create(NULL, ''k'', ARRAY[''reports.read''])'),
	(format('SELECT actloom.api_key_create(%L, NULL, ARRAY[''reports.read''])', :'acme')),
	(format('SELECT actloom.api_key_create(%L, ''k'', NULL)', :'acme')),
	(format('SELECT actloom.api_key_create(%L, ''  '', ARRAY[''reports.read''])', :'acme')),
	(format('SELECT actloom.api_key_create(%L, ''k'', ''{}'')', :'acme')),
	(format('SELECT actloom.api_key_create(%L, ''k'', ARRAY[''reports.read'', NULL])', :'acme')),
	(format('SELECT actloom.api_key_create(%L, ''k'', ARRAY[''reports.fly''])', :'acme')),
	(format('SELECT actloom.api_key_create(%L, ''k'', ARRAY[''nothing.*''])', :'acme')),
	(format('SELECT actloom.api_key_create(%L, ''k'', ARRAY[''reports''])', :'acme')),
	(format('SELECT actloom.api_key_create(%L, ''k'', ARRAY[''*''])', :'acme')),
	(format('SELECT actloom.api_key_create(%L, ''k'', ARRAY[''reports.%%''])', :'acme')),
	(format('SELECT actloom.api_key_create(%L, ''k'', ARRAY[''company.delete''])', :'acme')),
	(format('SELECT actloom.api_key_create(%L, ''k'', ARRAY[''company.*''])', :'acme')),
	(format('SELECT actloom.api_key_create(%L, ''k'', ARRAY[''reports.read''], now() - interval ''1 day'')', :'acme')),
	(format('SELECT actloom.api_key_create(%L, ''k'', ARRAY[''reports.read''])', :'globex'))
) AS t(s);
-- An admin may hand out every action of a resource the admin can do.
SELECT actloom.api_key_create(:'acme', 'members', ARRAY['members.*']) IS NOT NULL AS members_wildcard;
COMMIT;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT pg_temp.err(format('SELECT actloom.api_key_create(%L, ''k'', ARRAY[''reports.read''])', :'acme')) AS member_creates,
	   pg_temp.err(format('SELECT * FROM actloom.api_keys(%L)', :'acme')) AS member_lists;
COMMIT;
BEGIN;
SELECT actloom.act_as(:'acme_owner', :'acme');
SELECT actloom.api_key_create(:'acme', 'owner''s', ARRAY['company.*']) IS NOT NULL AS owner_grants_company;
COMMIT;

-- A key with api_keys.manage may issue keys, within its own scopes.
BEGIN;
SELECT count(*) FROM actloom.authenticate_api_key(:'mgr');
SELECT actloom.api_key_create(:'acme', 'child', ARRAY['reports.read']) AS child \gset
SELECT pg_temp.err(format('SELECT actloom.api_key_create(%L, ''k'', ARRAY[''reports.generate''])', :'acme')) AS beyond_own_scopes;
COMMIT;
RESET ROLE;
SELECT created_by, created_by_key = :'mgr_id' AS by_key FROM actloom.api_keys WHERE key_id = substr(:'child', 5, 12);

--------------------------------------------------------------------------
-- Expiry and revocation
--------------------------------------------------------------------------
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.api_key_create(:'acme', 'short-lived', ARRAY['reports.read'], now() + interval '1 hour') AS short \gset
COMMIT;
SELECT count(*) AS before_expiry FROM actloom.authenticate_api_key(:'short');
RESET ROLE;
UPDATE actloom.api_keys SET expires_at = now() - interval '1 second' WHERE key_id = substr(:'short', 5, 12);
SET ROLE regress_app;
SELECT pg_temp.err(format('SELECT actloom.authenticate_api_key(%L)', :'short')) AS expired;

BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.api_key_revoke(:'key_id');
SELECT actloom.api_key_revoke(:'key_id') AS again_is_harmless;
SELECT revoked_at IS NOT NULL AS revoked FROM actloom.api_keys(:'acme') WHERE key_id = :'key_id';
SELECT pg_temp.err('SELECT actloom.api_key_revoke(''000000000000'')') AS unknown,
	   pg_temp.err('SELECT actloom.api_key_revoke(NULL)') AS null_id;
COMMIT;
SELECT pg_temp.err(format('SELECT actloom.authenticate_api_key(%L)', :'key')) AS revoked;
SELECT pg_temp.err(format('SELECT actloom.api_key_revoke(%L)', :'mgr_id')) AS no_actor;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT pg_temp.err(format('SELECT actloom.api_key_revoke(%L)', :'mgr_id')) AS member_revokes;
COMMIT;
BEGIN;
SELECT actloom.act_as(:'globex_owner', :'globex');
SELECT replace(pg_temp.err(format('SELECT actloom.api_key_revoke(%L)', :'mgr_id')), :'mgr_id', '<key id>') AS other_company;
COMMIT;
-- A key may revoke itself.
BEGIN;
SELECT count(*) FROM actloom.authenticate_api_key(:'mgr');
SELECT actloom.api_key_revoke(:'mgr_id');
COMMIT;
SELECT pg_temp.err(format('SELECT actloom.authenticate_api_key(%L)', :'mgr')) AS self_revoked;
RESET ROLE;
SELECT revoked_by, revoked_by_key = :'mgr_id' AS by_itself FROM actloom.api_keys WHERE key_id = :'mgr_id';

-- Creation and revocation are audited in the company's chain, with the
-- acting user or key, and no secret material.
SELECT a.action, a.detail->>'name' AS name, a.detail->'scopes' AS scopes,
	   a.actor_user IS NOT NULL AS by_user, a.actor_api_key = k.id AS by_manager_key
  FROM actloom.audit_log a
  LEFT JOIN actloom.api_keys k ON k.key_id = :'mgr_id'
 WHERE a.chain = :'acme' AND a.action LIKE 'api_key.%'
 ORDER BY a.seq;
SELECT count(*) AS entries_with_a_secret FROM actloom.audit_log a
 WHERE a::text LIKE '%' || substr(:'key', 18, 43) || '%'
	OR a::text LIKE '%' || substr(:'mgr', 18, 43) || '%';
SELECT chain = :'acme' AS acme, ok FROM actloom.audit_verify(:'acme');

-- authenticate_api_key is not SECURITY DEFINER; its queries qualify every
-- operator, so a search_path that shadows "=" changes nothing.
SET ROLE regress_owner;
CREATE FUNCTION public.always(text, text) RETURNS boolean LANGUAGE sql IMMUTABLE RETURN true;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.always);
RESET ROLE;
SET ROLE regress_app;
SET search_path = public, pg_catalog;
SELECT 'a' = 'b' AS shadowed;
SELECT pg_temp.err(format('SELECT actloom.authenticate_api_key(%L, ''reports.fly'')', :'child')) AS unknown_action,
	   pg_temp.err(format('SELECT actloom.authenticate_api_key(%L)', pg_temp.mkkey('000000000000', repeat('B', 43)))) AS unknown_key;
RESET search_path;
RESET ROLE;
DROP OPERATOR public.= (text, text);
DROP FUNCTION public.always(text, text);
