-- Passwords: argon2id storage, policy, verification, bcrypt and argon2id
-- import with re-hashing, audit.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
SELECT id AS acme FROM actloom.companies WHERE name = 'Acme' \gset
SELECT id AS acme_admin FROM actloom.users WHERE email = 'admin@acme.test' \gset
SELECT id AS loner FROM actloom.users WHERE email = 'loner@nowhere.test' \gset

CREATE FUNCTION pg_temp.err(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	RETURN regexp_replace(SQLSTATE || ': ' || SQLERRM, '[0-9a-f]{8}-[0-9a-f-]{27}', '<uuid>', 'g');
END
$$;

SET ROLE regress_app;
SELECT actloom.create_user('Pat@Example.test', 'correct horse battery staple') AS pat \gset
SELECT actloom.create_user('oauth.only@example.test') AS oauth \gset
RESET ROLE;

-- Stored as an argon2id PHC string at the OWASP cost, never in the clear.
SELECT password_hash ~ '^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$' AS phc_argon2id,
	   position('horse' IN u::text) AS plaintext_in_row,
	   password_changed_at IS NOT NULL AS changed_at_set
  FROM actloom.users u WHERE id = :'pat';
SELECT password_hash IS NULL AS no_password FROM actloom.users WHERE id = :'oauth';
-- The gateway cannot read hashes.
SET ROLE regress_app;
SELECT pg_temp.err('SELECT password_hash FROM actloom.users') AS read_hash;

-- Verification: the user id, or NULL.
SELECT actloom.verify_password('pat@example.test', 'correct horse battery staple') = :'pat' AS right_password,
	   actloom.verify_password('PAT@EXAMPLE.TEST', 'correct horse battery staple') = :'pat' AS email_case_ignored,
	   actloom.verify_password('pat@example.test', 'correct horse battery stapl') AS wrong_password,
	   actloom.verify_password('pat@example.test', 'Correct horse battery staple') AS case_matters,
	   actloom.verify_password('nobody@example.test', 'correct horse battery staple') AS unknown_email,
	   actloom.verify_password('oauth.only@example.test', 'anything at all') AS no_password,
	   actloom.verify_password('not an email', 'anything at all') AS malformed_email,
	   actloom.verify_password('pat@example.test', repeat('x', 1025)) AS over_long;
SELECT pg_temp.err('SELECT actloom.verify_password(NULL, ''x'')') AS null_email,
	   pg_temp.err('SELECT actloom.verify_password(''pat@example.test'', NULL)') AS null_password;
RESET ROLE;
UPDATE actloom.users SET disabled_at = now() WHERE id = :'pat';
SET ROLE regress_app;
SELECT actloom.verify_password('pat@example.test', 'correct horse battery staple') AS disabled_user;
RESET ROLE;
UPDATE actloom.users SET disabled_at = NULL WHERE id = :'pat';

--------------------------------------------------------------------------
-- Policy
--------------------------------------------------------------------------
SET ROLE regress_app;
SELECT label, pg_temp.err(format('SELECT actloom.create_user(%L, %L)', email, pw)) AS error
  FROM (VALUES
	('7 characters', 'p1@example.test', 'abcdefg'),
	('8 characters', 'p2@example.test', 'abcdefgh'),
	('8 characters, 16 bytes', 'p3@example.test', 'éééééééé'),
	('1024 bytes', 'p4@example.test', repeat('x', 1024)),
	('1025 bytes', 'p5@example.test', repeat('x', 1025)),
	('equal to local part', 'longlocalpart@example.test', 'LongLocalPart'),
	('contains local part', 'longlocalpart@example.test', 'my-longlocalpart-1'),
	('short local part inside', 'ab@example.test', 'abcdefgh12'),
	('empty', 'p6@example.test', ''),
	('bad email, good password', 'not an email', 'abcdefgh12')
  ) AS t(label, email, pw);
-- A refused password creates no user.
SELECT count(*) AS created FROM actloom.users
 WHERE email IN ('p1@example.test', 'p5@example.test', 'longlocalpart@example.test', 'p6@example.test');
RESET ROLE;

-- The policy and the cost are superuser settings with floors.
SET actloom.password_min_length = 12;
SET ROLE regress_app;
SELECT pg_temp.err('SELECT actloom.create_user(''p7@example.test'', ''elevenchars'')') AS below_raised_minimum;
RESET ROLE;
RESET actloom.password_min_length;
SELECT pg_temp.err('SET actloom.password_min_length = 7') AS below_floor,
	   pg_temp.err('SET actloom.argon2_memory = ''16MB''') AS memory_below_floor,
	   pg_temp.err('SET actloom.argon2_iterations = 1') AS iterations_below_floor,
	   pg_temp.err('SET actloom.argon2_parallelism = 0') AS parallelism_below_floor,
	   pg_temp.err('SET actloom.password_max_bytes = 32') AS max_bytes_below_floor;
SHOW actloom.argon2_memory;
SET ROLE regress_app;
SELECT pg_temp.err('SET actloom.argon2_memory = ''64MB''') AS app_sets_cost,
	   pg_temp.err('SET actloom.password_min_length = 20') AS app_sets_policy;
RESET ROLE;

--------------------------------------------------------------------------
-- Changing a password
--------------------------------------------------------------------------
SET ROLE regress_app;
BEGIN;
SELECT actloom.act_as(:'pat');
SELECT actloom.set_password(:'pat', 'battery staple correct horse');
SELECT pg_temp.err(format('SELECT actloom.set_password(%L, ''a fine new password'')', :'loner')) AS someone_else,
	   pg_temp.err(format('SELECT actloom.set_password(%L, ''short'')', :'pat')) AS too_short,
	   pg_temp.err(format('SELECT actloom.set_password(%L, ''pat-pat-pat-pat'')', :'pat')) AS contains_local_part,
	   pg_temp.err('SELECT actloom.set_password(NULL, ''a fine new password'')') AS null_user,
	   pg_temp.err(format('SELECT actloom.set_password(%L, NULL)', :'pat')) AS null_password;
COMMIT;
SELECT actloom.verify_password('pat@example.test', 'correct horse battery staple') AS old_password,
	   actloom.verify_password('pat@example.test', 'battery staple correct horse') = :'pat' AS new_password;
-- With nobody acting, the gateway sets it (a reset flow it verified).
SELECT actloom.set_password(:'oauth', 'now with a password');
SELECT actloom.verify_password('oauth.only@example.test', 'now with a password') = :'oauth' AS oauth_user_has_password;
SELECT pg_temp.err('SELECT actloom.set_password(gen_random_uuid(), ''a fine new password'')') AS unknown_user;
-- An API key never touches passwords.
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.api_key_create(:'acme', 'pw test', ARRAY['reports.read']) AS key \gset
COMMIT;
BEGIN;
SELECT count(*) FROM actloom.authenticate_api_key(:'key');
SELECT pg_temp.err(format('SELECT actloom.set_password(%L, ''a fine new password'')', :'pat')) AS api_key_sets,
	   pg_temp.err(format('SELECT actloom.import_password_hash(%L, ''$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a'')', :'pat')) AS api_key_imports;
COMMIT;
RESET ROLE;

--------------------------------------------------------------------------
-- Importing hashes from elsewhere (Auth.js, PHP, ...)
--------------------------------------------------------------------------
SET ROLE regress_app;
SELECT actloom.create_user('php@example.test') AS php \gset
SELECT actloom.create_user('openbsd@example.test') AS openbsd \gset
SELECT actloom.create_user('pgcrypto@example.test') AS pgc \gset
SELECT actloom.create_user('argon@example.test') AS argon \gset
SELECT actloom.create_user('argon.weak@example.test') AS argon_weak \gset
-- bcrypt vectors from PHP's documentation ($2y$), the same hash as $2b$,
-- one made by pgcrypto ($2a$); argon2id made by libargon2's reference encoder.
SELECT actloom.import_password_hash(:'php', '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a');
SELECT actloom.import_password_hash(:'openbsd', '$2b$07$BCryptRequires22Chrcte/VlQH0piJtjXl.0t1XkA8pw9dMXTpOq');
RESET ROLE;
SELECT crypt('pgcrypto made me', gen_salt('bf', 4)) AS pgc_hash \gset
SET ROLE regress_app;
SELECT actloom.import_password_hash(:'pgc', :'pgc_hash');
SELECT actloom.import_password_hash(:'argon', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM');
SELECT actloom.import_password_hash(:'argon_weak', '$argon2id$v=19$m=65536,t=3,p=4$YW5vdGhlcnNhbHQxMjM0NQ$tRKgiRVlyOzj2Gp15qhmkyi4+HvbXnF/XZjSzwf/6Og');
RESET ROLE;
SELECT email, left(password_hash, 7) AS scheme FROM actloom.users
 WHERE id IN (:'php', :'openbsd', :'pgc', :'argon', :'argon_weak') ORDER BY email;

-- A wrong password changes nothing; a right one signs in and, for bcrypt or
-- another argon2id cost, re-hashes with argon2id at the current cost.
SET ROLE regress_app;
SELECT actloom.verify_password('php@example.test', 'rasmuslerdorF') AS php_wrong;
RESET ROLE;
SELECT left(password_hash, 7) AS still_bcrypt FROM actloom.users WHERE id = :'php';
SET ROLE regress_app;
SELECT actloom.verify_password('php@example.test', 'rasmuslerdorf') = :'php' AS php_2y,
	   actloom.verify_password('openbsd@example.test', 'rasmuslerdorf') = :'openbsd' AS openbsd_2b,
	   actloom.verify_password('pgcrypto@example.test', 'pgcrypto made me') = :'pgc' AS pgcrypto_2a,
	   actloom.verify_password('argon@example.test', 'correct horse battery staple') = :'argon' AS argon2id,
	   actloom.verify_password('argon.weak@example.test', 'correct horse battery staple') = :'argon_weak' AS argon2id_other_cost;
RESET ROLE;
SELECT email, password_hash ~ '^\$argon2id\$v=19\$m=19456,t=2,p=1\$' AS current_argon2id,
	   password_hash = '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM' AS kept_as_imported
  FROM actloom.users WHERE id IN (:'php', :'openbsd', :'pgc', :'argon', :'argon_weak') ORDER BY email;
-- The re-hashed passwords still work.
SET ROLE regress_app;
SELECT actloom.verify_password('php@example.test', 'rasmuslerdorf') = :'php' AS php_after_rehash,
	   actloom.verify_password('argon.weak@example.test', 'correct horse battery staple') = :'argon_weak' AS argon_after_rehash;
RESET ROLE;
-- Raising the cost re-hashes at the next sign-in.
SET actloom.argon2_iterations = 3;
SELECT actloom.verify_password('argon@example.test', 'correct horse battery staple') = :'argon' AS signed_in;
SELECT password_hash ~ '^\$argon2id\$v=19\$m=19456,t=3,p=1\$' AS rehashed_at_t3 FROM actloom.users WHERE id = :'argon';
RESET actloom.argon2_iterations;

SET ROLE regress_app;
SELECT label, pg_temp.err(format('SELECT actloom.import_password_hash(%L, %L)', :'php', h)) AS error
  FROM (VALUES
	('plain text', 'hunter2'),
	('argon2i', '$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG'),
	('argon2id version 16', '$argon2id$v=16$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM'),
	('argon2id no version', '$argon2id$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM'),
	('argon2id huge memory', '$argon2id$v=19$m=2000000,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM'),
	('argon2id 100 passes', '$argon2id$v=19$m=19456,t=100,p=1$c2FsdHNhbHRzYWx0c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM'),
	('argon2id short salt', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM'),
	('argon2id padded base64', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA==$QKHrg5tayLGcN+Y0HVPNaBqykOVLUxlMkZycXE1uWRM'),
	('argon2id truncated', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA'),
	('bcrypt $2x$', '$2x$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a'),
	('bcrypt cost 03', '$2y$03$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a'),
	('bcrypt cost 31', '$2y$31$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a'),
	('bcrypt truncated', '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1'),
	('bcrypt bad character', '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1!')
  ) AS t(label, h);
SELECT pg_temp.err('SELECT actloom.import_password_hash(NULL, ''x'')') AS null_user,
	   pg_temp.err(format('SELECT actloom.import_password_hash(%L, NULL)', :'php')) AS null_hash,
	   pg_temp.err('SELECT actloom.import_password_hash(gen_random_uuid(), ''$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a'')') AS unknown_user;
BEGIN;
SELECT actloom.act_as(:'pat');
SELECT pg_temp.err(format('SELECT actloom.import_password_hash(%L, %L)', :'php', '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a')) AS someone_else;
COMMIT;
RESET ROLE;

-- Outside the gateway, none of this is callable.
SET ROLE regress_outsider;
SELECT pg_temp.err('SELECT actloom.verify_password(''pat@example.test'', ''x'')') AS verify,
	   pg_temp.err(format('SELECT actloom.set_password(%L, ''a fine new password'')', :'pat')) AS set;
RESET ROLE;

--------------------------------------------------------------------------
-- Audit: changes and sign-ins in the system chain, no password material
--------------------------------------------------------------------------
SELECT a.action, u.email AS target, a.detail, a.actor_user = u.id AS by_themself
  FROM actloom.audit_log a LEFT JOIN actloom.users u ON u.id::text = a.target_id
 WHERE a.chain = actloom.system_chain()
   AND a.action IN ('user.password_set', 'user.password_import', 'user.sign_in', 'user.sign_in_failed')
 ORDER BY a.seq;
SELECT count(*) AS entries_with_password_material FROM actloom.audit_log a
 WHERE a::text ~* 'horse|staple|rasmus|pgcrypto made|hunter2|\$2[aby]\$|argon2id\$|fine new';
SELECT count(*) FILTER (WHERE NOT ok) AS broken_chains FROM actloom.audit_verify();
