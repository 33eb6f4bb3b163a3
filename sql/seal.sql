-- Sealing: envelope encryption under per-company data keys, named secrets,
-- key ring errors, master key rotation and crypto-shredding.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
\getenv keys ACTLOOM_TEST_KEYS
\set ring :keys/keyring
\set rotated :keys/keyring-rotated
SELECT id AS acme FROM actloom.companies WHERE name = 'Acme' \gset
SELECT id AS globex FROM actloom.companies WHERE name = 'Globex' \gset
SELECT id AS acme_admin FROM actloom.users WHERE email = 'admin@acme.test' \gset
SELECT id AS acme_member FROM actloom.users WHERE email = 'member@acme.test' \gset
SELECT id AS globex_owner FROM actloom.users WHERE email = 'owner@globex.test' \gset

-- err() runs a statement and shows the SQLSTATE and message it raised, with
-- uuids and file paths masked.
CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN regexp_replace(regexp_replace(SQLSTATE || ': ' || SQLERRM,
		'[0-9a-f]{8}-[0-9a-f-]{27}', '<uuid>', 'g'), '"/[^"]*"', '"<path>"', 'g');
END
$$;
-- flip() changes the lowest bit of one byte.
CREATE FUNCTION pg_temp.flip(b bytea, pos int) RETURNS bytea LANGUAGE sql
RETURN set_byte(b, pos, get_byte(b, pos) # 1);

-- Nobody has a data key until something is sealed.
SELECT count(*) AS data_keys FROM actloom.company_keys;

SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.seal(:'acme', 'invoices.iban:42', 'DE89 3704 0044 0532 0130 00') AS s \gset
-- version 1 || data key id || 12-byte nonce || ciphertext || 16-byte tag
SELECT length(:'s'::bytea) AS sealed_bytes, get_byte(:'s'::bytea, 0) AS version,
	   position('DE89'::bytea IN :'s'::bytea) AS plaintext_visible;
SELECT convert_from(actloom.unseal(:'acme', 'invoices.iban:42', :'s'), 'UTF8') AS opened;
-- A fresh nonce every time: the same value never seals the same way twice.
SELECT actloom.seal(:'acme', 'p', 'x') <> actloom.seal(:'acme', 'p', 'x') AS nonces_differ;
SELECT actloom.unseal(:'acme', 'p', actloom.seal(:'acme', 'p', '')) = '' AS empty_value;
SELECT actloom.unseal(:'acme', 'p', actloom.seal(:'acme', 'p', '\x00ff00'::bytea)) AS binary_value;
SELECT length(actloom.unseal(:'acme', 'p', actloom.seal(:'acme', 'p', convert_to(repeat('x', 100000), 'UTF8')))) AS large_value;

-- Every tampering case fails with its own error; none returns garbage.
SELECT label, pg_temp.err(format('SELECT actloom.unseal(%L, %L, %L::bytea)', :'acme', purpose, val)) AS error
  FROM (VALUES
	('intact', 'invoices.iban:42', :'s'::bytea),
	('version changed', 'invoices.iban:42', pg_temp.flip(:'s', 0)),
	('data key id changed', 'invoices.iban:42', pg_temp.flip(:'s', 4)),
	('nonce bit flipped', 'invoices.iban:42', pg_temp.flip(:'s', 5)),
	('ciphertext bit flipped', 'invoices.iban:42', pg_temp.flip(:'s', 20)),
	('tag bit flipped', 'invoices.iban:42', pg_temp.flip(:'s', length(:'s'::bytea) - 1)),
	('last byte cut', 'invoices.iban:42', substring(:'s'::bytea FROM 1 FOR length(:'s'::bytea) - 1)),
	('ciphertext cut', 'invoices.iban:42', substring(:'s'::bytea FROM 1 FOR 17) || substring(:'s'::bytea FROM 19)),
	('byte appended', 'invoices.iban:42', :'s'::bytea || '\x00'::bytea),
	('header only', 'invoices.iban:42', substring(:'s'::bytea FROM 1 FOR 17)),
	('one byte', 'invoices.iban:42', '\x01'::bytea),
	('empty', 'invoices.iban:42', ''::bytea),
	('moved to another row', 'invoices.iban:43', :'s'::bytea),
	('another purpose', 'p', :'s'::bytea)
  ) AS t(label, purpose, val);
COMMIT;

-- A value sealed for Globex does not open as Acme's, even when the acting
-- company's name is put on it.
BEGIN;
SELECT actloom.act_as(:'globex_owner', :'globex');
SELECT actloom.seal(:'globex', 'invoices.iban:42', 'globex secret') AS g \gset
SELECT pg_temp.err(format('SELECT actloom.unseal(%L, %L, %L::bytea)', :'acme', 'invoices.iban:42', :'g')) AS acme_value_under_globex_actor;
COMMIT;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT pg_temp.err(format('SELECT actloom.unseal(%L, %L, %L::bytea)', :'acme', 'invoices.iban:42', :'g')) AS globex_value_as_acme;
COMMIT;

-- Bad calls.
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT regexp_replace(s, '[0-9a-f]{8}-[0-9a-f-]{27}', '<uuid>', 'g') AS statement,
	   pg_temp.err(s) AS error FROM (VALUES
	('SELECT actloom.seal(NULL, ''p'', ''x'')'),
	(format('SELECT actloom.seal(%L, NULL, ''x'')', :'acme')),
	(format('SELECT actloom.seal(%L, ''p'', NULL)', :'acme')),
	(format('SELECT actloom.unseal(%L, ''p'', NULL)', :'acme')),
	(format('SELECT actloom.seal(%L, '''', ''x'')', :'acme')),
	(format('SELECT actloom.seal(%L, repeat(''p'', 1025), ''x'')', :'acme')),
	(format('SELECT actloom.seal(%L, ''p'', ''x'')', :'globex')),
	(format('SELECT actloom.unseal(%L, ''p'', ''\x01'')', :'globex'))
) AS t(s);
COMMIT;
-- Without an actor acting in a company, nothing is sealed or opened.
SELECT pg_temp.err(format('SELECT actloom.seal(%L, ''p'', ''x'')', :'acme')) AS no_actor;
BEGIN;
SELECT actloom.act_as(:'acme_admin');
SELECT pg_temp.err(format('SELECT actloom.unseal(%L, ''invoices.iban:42'', %L::bytea)', :'acme', :'s')) AS actor_without_company;
COMMIT;
RESET ROLE;
SET ROLE regress_outsider;
SELECT pg_temp.err(format('SELECT actloom.seal(%L, ''p'', ''x'')', :'acme')) AS outsider;
RESET ROLE;

-- The application reads neither data keys nor sealed secrets directly.
SET ROLE regress_app;
SELECT pg_temp.err('SELECT * FROM actloom.company_keys') AS keys_table,
	   pg_temp.err('SELECT * FROM actloom.secrets') AS secrets_table,
	   pg_temp.err('SELECT actloom._unseal_secret(NULL, NULL, NULL)') AS internal_function;
RESET ROLE;

--------------------------------------------------------------------------
-- Named secrets
--------------------------------------------------------------------------
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.secret_put(:'acme', 'google.client_secret', 'GOCSPX-first');
SELECT actloom.secret_put(:'acme', 'okta:sso', 'okta-secret');
SELECT actloom.secret_put(:'acme', 'google.client_secret', 'GOCSPX-second');
SELECT name FROM actloom.secret_names(:'acme');
SELECT actloom.secret_delete(:'acme', 'okta:sso');
SELECT name FROM actloom.secret_names(:'acme');
COMMIT;

-- The gateway reads a value with no actor (the shim needs SSO secrets
-- before anyone has signed in).
SELECT actloom.secret_get(:'acme', 'google.client_secret');

BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT regexp_replace(s, '[0-9a-f]{8}-[0-9a-f-]{27}', '<uuid>', 'g') AS statement,
	   pg_temp.err(s) AS error FROM (VALUES
	-- a member lacks integrations.manage
	(format('SELECT actloom.secret_put(%L, ''x'', ''y'')', :'acme')),
	(format('SELECT actloom.secret_delete(%L, ''google.client_secret'')', :'acme')),
	(format('SELECT * FROM actloom.secret_names(%L)', :'acme')),
	-- another company
	(format('SELECT * FROM actloom.secret_names(%L)', :'globex'))
) AS t(s);
COMMIT;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT regexp_replace(s, '[0-9a-f]{8}-[0-9a-f-]{27}', '<uuid>', 'g') AS statement,
	   pg_temp.err(s) AS error FROM (VALUES
	(format('SELECT actloom.secret_put(NULL, ''x'', ''y'')')),
	(format('SELECT actloom.secret_put(%L, NULL, ''y'')', :'acme')),
	(format('SELECT actloom.secret_put(%L, ''x'', NULL)', :'acme')),
	(format('SELECT actloom.secret_put(%L, ''Upper'', ''y'')', :'acme')),
	(format('SELECT actloom.secret_put(%L, ''has space'', ''y'')', :'acme')),
	(format('SELECT actloom.secret_put(%L, ''.dot'', ''y'')', :'acme')),
	(format('SELECT actloom.secret_put(%L, repeat(''a'', 129), ''y'')', :'acme')),
	(format('SELECT actloom.secret_put(%L, ''x'', '''')', :'acme')),
	(format('SELECT actloom.secret_put(%L, ''x'', repeat(''y'', 65537))', :'acme')),
	(format('SELECT actloom.secret_delete(%L, ''missing'')', :'acme')),
	(format('SELECT actloom.secret_get(%L, ''missing'')', :'acme')),
	(format('SELECT actloom.secret_get(%L, NULL)', :'acme')),
	(format('SELECT actloom.secret_get(NULL, ''x'')'))
) AS t(s);
COMMIT;
RESET ROLE;

-- A sealed secret moved to another name, or another company, does not open.
UPDATE actloom.secrets SET name = 'renamed' WHERE name = 'google.client_secret';
SET ROLE regress_app;
SELECT pg_temp.err(format('SELECT actloom.secret_get(%L, ''renamed'')', :'acme')) AS renamed;
RESET ROLE;
UPDATE actloom.secrets SET name = 'google.client_secret' WHERE name = 'renamed';
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'globex_owner', :'globex');
SELECT actloom.secret_put(:'globex', 'google.client_secret', 'globex-google');
COMMIT;
RESET ROLE;
UPDATE actloom.secrets s SET sealed = (SELECT a.sealed FROM actloom.secrets a
										WHERE a.company_id = :'acme' AND a.name = 'google.client_secret')
 WHERE s.company_id = :'globex';
SET ROLE regress_app;
SELECT pg_temp.err(format('SELECT actloom.secret_get(%L, ''google.client_secret'')', :'globex')) AS copied_to_globex;
RESET ROLE;

--------------------------------------------------------------------------
-- The key ring: never visible to others, and clear errors when bad
--------------------------------------------------------------------------
SET ROLE regress_app;
SHOW actloom.keyring_file;
SET actloom.keyring_file = '/tmp/mine';
SELECT count(*) AS visible_settings FROM pg_settings WHERE name = 'actloom.keyring_file';
RESET ROLE;

-- A wrapped data key copied to another company's row does not unwrap.
SELECT wrapped AS globex_wrapped FROM actloom.company_keys WHERE company_id = :'globex' \gset
UPDATE actloom.company_keys SET wrapped = (SELECT wrapped FROM actloom.company_keys WHERE company_id = :'acme')
 WHERE company_id = :'globex';
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'globex_owner', :'globex');
SELECT pg_temp.err(format('SELECT actloom.unseal(%L, ''invoices.iban:42'', %L::bytea)', :'globex', :'g')) AS copied_wrapped_key;
COMMIT;
RESET ROLE;
UPDATE actloom.company_keys SET wrapped = :'globex_wrapped' WHERE company_id = :'globex';

-- Key ring errors, as a superuser may cause them with SET (the TAP test
-- test/t/010_keyring.pl covers file modes and ownership).
SELECT regexp_replace(setting, '^/.+/', '.../') AS setting,
	   pg_temp.err('SELECT actloom._keyring_active()') AS error
  FROM (VALUES
	(''),
	('relative/path'),
	('/nonexistent/keyring'),
	('/tmp'),
	(current_setting('data_directory') || '/PG_VERSION')
  ) AS t(setting),
  LATERAL set_config('actloom.keyring_file', setting, false) AS s;
RESET actloom.keyring_file;
SELECT actloom._keyring_active() AS active_key;

--------------------------------------------------------------------------
-- Rotation re-wraps company keys only; sealed values still open.
--------------------------------------------------------------------------
SELECT company_id = :'acme' AS is_acme, master_key_id, rotated_at IS NULL AS never_rotated
  FROM actloom.company_keys ORDER BY key_id;
SELECT sealed AS acme_secret_before FROM actloom.secrets WHERE company_id = :'acme' \gset
SELECT pg_temp.err('SELECT actloom.rotate_master_key(2)') AS not_active_yet;
SELECT pg_temp.err('SELECT actloom.rotate_master_key(NULL)') AS null_key;
SET actloom.keyring_file = :'rotated';
SELECT pg_temp.err('SELECT actloom.rotate_master_key(1)') AS no_longer_active;
SELECT actloom.rotate_master_key(2) AS rewrapped;
SELECT actloom.rotate_master_key(2) AS rewrapped_again;
SELECT company_id = :'acme' AS is_acme, master_key_id, rotated_at IS NOT NULL AS rotated
  FROM actloom.company_keys ORDER BY key_id;
SELECT sealed = :'acme_secret_before' AS secrets_untouched FROM actloom.secrets WHERE company_id = :'acme';
SET ROLE regress_app;
SELECT actloom.secret_get(:'acme', 'google.client_secret') AS after_rotation;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT convert_from(actloom.unseal(:'acme', 'invoices.iban:42', :'s'), 'UTF8') AS after_rotation;
COMMIT;
RESET ROLE;
-- Rotation is for superusers.
SET ROLE regress_app;
SELECT pg_temp.err('SELECT actloom.rotate_master_key(2)') AS rotate_as_app;
RESET ROLE;
-- Back on a ring without key 2, the re-wrapped keys cannot be opened.
SET actloom.keyring_file = :'ring';
SET ROLE regress_app;
SELECT pg_temp.err(format('SELECT actloom.secret_get(%L, ''google.client_secret'')', :'acme')) AS key_2_gone;
RESET ROLE;
SET actloom.keyring_file = :'rotated';

--------------------------------------------------------------------------
-- Crypto-shredding
--------------------------------------------------------------------------
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin');
SELECT actloom.create_company('Initech') AS initech \gset
SELECT actloom.secret_put(:'initech', 'stripe.key', 'sk_live_initech');
COMMIT;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'initech');
SELECT actloom.seal(:'initech', 'p', 'doomed') AS doomed \gset
COMMIT;
RESET ROLE;
SELECT pg_temp.err('SELECT actloom.shred_company(gen_random_uuid())') AS unknown_company,
	   pg_temp.err('SELECT actloom.shred_company(NULL)') AS null_company;
SET ROLE regress_app;
SELECT pg_temp.err(format('SELECT actloom.shred_company(%L)', :'initech')) AS shred_as_app;
RESET ROLE;
SELECT actloom.shred_company(:'initech');
SELECT actloom.shred_company(:'initech') AS again_is_harmless;
SELECT master_key_id, wrapped, shredded_at IS NOT NULL AS shredded
  FROM actloom.company_keys WHERE company_id = :'initech';
SELECT count(*) AS initech_secrets FROM actloom.secrets WHERE company_id = :'initech';
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'initech');
SELECT pg_temp.err(format('SELECT actloom.unseal(%L, ''p'', %L::bytea)', :'initech', :'doomed')) AS unseal_after_shred,
	   pg_temp.err(format('SELECT actloom.seal(%L, ''p'', ''new'')', :'initech')) AS seal_after_shred,
	   pg_temp.err(format('SELECT actloom.secret_put(%L, ''x'', ''new'')', :'initech')) AS put_after_shred;
COMMIT;
RESET ROLE;
-- Rotation skips shredded keys.
SELECT actloom.rotate_master_key(2) AS rewrapped_after_shred;
-- A company that never sealed anything can be shredded too.
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin');
SELECT actloom.create_company('Hooli') AS hooli \gset
COMMIT;
RESET ROLE;
SELECT actloom.shred_company(:'hooli');
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'hooli');
SELECT pg_temp.err(format('SELECT actloom.seal(%L, ''p'', ''new'')', :'hooli')) AS seal_after_shred;
COMMIT;
RESET ROLE;
RESET actloom.keyring_file;

-- Rotation and shredding are audited in the system chain, secret changes in
-- the company's chain; no entry holds a secret.
SELECT a.action, a.target_type, a.detail
  FROM actloom.audit_log a
 WHERE a.chain = actloom.system_chain() AND a.action IN ('master_key.rotate', 'company.shred')
 ORDER BY a.seq;
SELECT a.action, a.target_id, a.detail, a.actor_user = :'acme_admin' AS by_admin
  FROM actloom.audit_log a
 WHERE a.chain = :'acme' AND a.action LIKE 'secret.%'
 ORDER BY a.seq;
SELECT count(*) AS entries_with_a_secret FROM actloom.audit_log a
 WHERE a::text ~ 'GOCSPX|okta-secret|sk_live|DE89';
SELECT count(*) FILTER (WHERE NOT ok) AS broken_chains FROM actloom.audit_verify();
