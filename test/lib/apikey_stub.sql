-- A stand-in for the API keys of issue 4, for the shim's end-to-end tests
-- only, created only while the extension lacks authenticate_api_key.  It
-- follows the documented contract: keys "alk_" + 12 base62 id + "_" + 43
-- base62 secret + 6 base62 CRC32 checksum; authenticate_api_key raises 28000
-- for any bad key and 42501 for a missing scope, and sets the actor (here a
-- user actor: the company's owner, standing in for an API-key actor).
-- Once the extension defines the real functions this file does nothing.
DO $stub$
BEGIN
IF to_regprocedure('actloom.authenticate_api_key(text,text)') IS NOT NULL THEN
	RETURN;
END IF;

CREATE TABLE actloom.test_api_keys (
	key_id		text PRIMARY KEY,
	key_hash	bytea NOT NULL,
	company_id	uuid NOT NULL,
	user_id		uuid NOT NULL,
	scopes		text[] NOT NULL,
	revoked		boolean NOT NULL DEFAULT false
);

CREATE FUNCTION actloom.test_base62(n integer) RETURNS text LANGUAGE sql VOLATILE AS $$
	SELECT string_agg(substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
							 get_byte(b, i) % 62 + 1, 1), '' ORDER BY i)
	  FROM (SELECT public.gen_random_bytes(n) AS b) r, generate_series(0, n - 1) i
$$;

CREATE FUNCTION actloom.test_checksum(body text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	crc bigint := 4294967295;
	out text := '';
BEGIN
	FOR i IN 1 .. length(body) LOOP
		crc := crc # ascii(substr(body, i, 1));
		FOR j IN 1 .. 8 LOOP
			IF crc & 1 = 1 THEN
				crc := (crc >> 1) # 3988292384;
			ELSE
				crc := crc >> 1;
			END IF;
		END LOOP;
	END LOOP;
	crc := crc # 4294967295;
	FOR i IN 1 .. 6 LOOP
		out := substr('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', (crc % 62)::int + 1, 1) || out;
		crc := crc / 62;
	END LOOP;
	RETURN out;
END
$$;

CREATE FUNCTION actloom.api_key_create(company uuid, name text, scopes text[], expires_at timestamptz DEFAULT NULL)
RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, actloom, pg_temp AS $$
DECLARE
	id text := actloom.test_base62(12);
	body text := 'alk_' || id || '_' || actloom.test_base62(43);
	key text := body || actloom.test_checksum(body);
BEGIN
	INSERT INTO actloom.test_api_keys
	SELECT id, sha256(convert_to(key, 'UTF8')), company, m.user_id, scopes
	  FROM actloom.memberships m WHERE m.company_id = company ORDER BY m.role DESC LIMIT 1;
	RETURN key;
END
$$;

CREATE FUNCTION actloom.api_key_revoke(key_id text)
RETURNS void LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, actloom, pg_temp AS $$
	UPDATE actloom.test_api_keys k SET revoked = true WHERE k.key_id = api_key_revoke.key_id
$$;

CREATE FUNCTION actloom.authenticate_api_key(key text, required_scope text DEFAULT NULL)
RETURNS TABLE (company_id uuid, key_id text, scopes text[])
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, actloom, pg_temp AS $$
DECLARE
	k actloom.test_api_keys;
BEGIN
	SELECT * INTO k FROM actloom.test_api_keys t
	 WHERE t.key_id = substr(key, 5, 12) AND t.key_hash = sha256(convert_to(key, 'UTF8')) AND NOT t.revoked;
	IF NOT FOUND OR length(key) <> 66 OR actloom.test_checksum(left(key, 60)) <> right(key, 6) THEN
		RAISE EXCEPTION 'invalid API key' USING ERRCODE = 'invalid_authorization_specification';
	END IF;
	IF required_scope IS NOT NULL AND NOT (required_scope = ANY (k.scopes)
			OR split_part(required_scope, '.', 1) || '.*' = ANY (k.scopes)) THEN
		RAISE EXCEPTION 'the API key lacks the scope "%"', required_scope USING ERRCODE = 'insufficient_privilege';
	END IF;
	PERFORM actloom.act_as(k.user_id, k.company_id);
	RETURN QUERY SELECT k.company_id, k.key_id, k.scopes;
END
$$;
REVOKE EXECUTE ON FUNCTION actloom.authenticate_api_key(text, text), actloom.api_key_revoke(text),
	actloom.api_key_create(uuid, text, text[], timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION actloom.authenticate_api_key(text, text),
	actloom.api_key_create(uuid, text, text[], timestamptz), actloom.api_key_revoke(text) TO actloom_gateway;
END
$stub$;
