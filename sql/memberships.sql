-- Users, companies and memberships, with the kernel's rules: nobody grants or
-- touches a role above their own, the last owner stays, actors act only in
-- their companies.
\set SHOW_CONTEXT never
\set ON_ERROR_ROLLBACK on
SELECT id AS acme FROM actloom.companies WHERE name = 'Acme' \gset
SELECT id AS globex FROM actloom.companies WHERE name = 'Globex' \gset
SELECT id AS loner FROM actloom.users WHERE email = 'loner@nowhere.test' \gset
SELECT id AS acme_owner FROM actloom.users WHERE email = 'owner@acme.test' \gset
SELECT id AS acme_exec FROM actloom.users WHERE email = 'exec@acme.test' \gset
SELECT id AS acme_admin FROM actloom.users WHERE email = 'admin@acme.test' \gset
SELECT id AS acme_member FROM actloom.users WHERE email = 'member@acme.test' \gset

SET ROLE regress_app;

-- Users: emails are validated, stored lower-cased, unique whatever the case.
SELECT actloom.create_user('New.Person@Example.COM') IS NOT NULL AS created;
SELECT email FROM actloom.users WHERE email = 'new.person@example.com';
SELECT actloom.create_user('NEW.person@example.com');
SELECT actloom.create_user('no-at-sign.example.com');
SELECT actloom.create_user('two@@example.com');
SELECT actloom.create_user('space in@example.com');
SELECT actloom.create_user('nodot@localhost');
SELECT actloom.create_user(repeat('a', 65) || '@example.com');
SELECT actloom.create_user('a@' || repeat('b', 250) || '.com');
SELECT actloom.create_user(E'tab\t@example.com');
SELECT actloom.create_user('');
SELECT count(*) AS users FROM actloom.users;
-- The gateway reads ids and emails, and nothing else of a user.
SELECT disabled_at FROM actloom.users LIMIT 1;
SELECT * FROM actloom.memberships LIMIT 1;
UPDATE actloom.permissions SET min_role = 'member';

-- Companies: the creator becomes owner; the name is trimmed and checked.
BEGIN;
SELECT actloom.act_as(:'loner');
SELECT actloom.create_company('Initech') AS initech \gset
SELECT actloom.create_company('   ');
ROLLBACK;
BEGIN;
SELECT actloom.act_as(:'loner');
SELECT actloom.create_company(repeat('x', 201));
ROLLBACK;
SELECT actloom.create_company('Nobody acting');

-- add_member: admins invite up to their own role, not above.
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.add_member(:'acme', :'loner', 'executive');
SELECT actloom.add_member(:'acme', :'loner', 'owner');
ROLLBACK;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.add_member(:'acme', :'loner', 'admin');
SELECT actloom.add_member(:'acme', :'loner');
SELECT actloom.current_role();
COMMIT;
-- Members may not invite at all.
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT actloom.add_member(:'acme', :'acme_member');
ROLLBACK;

-- set_role: an admin cannot promote to executive, nor touch an executive.
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.set_role(:'acme', :'loner', 'executive');
ROLLBACK;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.set_role(:'acme', :'acme_exec', 'member');
ROLLBACK;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.set_role(:'acme', :'loner', 'member');
COMMIT;
-- An executive may make an executive, never an owner.
BEGIN;
SELECT actloom.act_as(:'acme_exec', :'acme');
SELECT actloom.set_role(:'acme', :'loner', 'executive');
SELECT actloom.set_role(:'acme', :'loner', 'owner');
ROLLBACK;

-- The last owner can be neither demoted nor removed, not even by themself.
BEGIN;
SELECT actloom.act_as(:'acme_owner', :'acme');
SELECT actloom.set_role(:'acme', :'acme_owner', 'executive');
ROLLBACK;
BEGIN;
SELECT actloom.act_as(:'acme_owner', :'acme');
SELECT actloom.remove_member(:'acme', :'acme_owner');
ROLLBACK;
-- With a second owner, the first may step down; then the second is last.
BEGIN;
SELECT actloom.act_as(:'acme_owner', :'acme');
SELECT actloom.set_role(:'acme', :'acme_exec', 'owner');
SELECT actloom.set_role(:'acme', :'acme_owner', 'executive');
SELECT actloom.current_role();
SELECT actloom.set_role(:'acme', :'acme_exec', 'admin');
ROLLBACK;

-- remove_member: admins remove members, not executives; anyone may leave.
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.remove_member(:'acme', :'acme_exec');
ROLLBACK;
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT actloom.remove_member(:'acme', :'loner');
ROLLBACK;
BEGIN;
SELECT actloom.act_as(:'loner', :'acme');
SELECT actloom.remove_member(:'acme', :'loner');
-- Removed in this transaction: refused at once.
SELECT actloom.can(:'acme', 'members.read');
COMMIT;
BEGIN;
SELECT actloom.act_as(:'acme_admin', :'acme');
SELECT actloom.remove_member(:'acme', :'loner');
SELECT actloom.set_role(:'acme', :'loner', 'member');
ROLLBACK;

-- A user acts only in companies they belong to.
BEGIN;
SELECT actloom.act_as(:'loner', :'acme');
ROLLBACK;
-- Foreign companies look like unknown ones.
BEGIN;
SELECT actloom.act_as(:'acme_owner', :'acme');
SELECT actloom.add_member(:'globex', :'loner');
SELECT actloom.members(:'globex');
ROLLBACK;
BEGIN;
SELECT actloom.act_as(:'acme_owner');
SELECT actloom.add_member(:'globex', :'loner');
SELECT actloom.add_member(gen_random_uuid(), :'loner');
ROLLBACK;

-- members(): a member lists their company.
BEGIN;
SELECT actloom.act_as(:'acme_member', :'acme');
SELECT email, role FROM actloom.members(:'acme');
ROLLBACK;
RESET ROLE;

SELECT c.name, u.email, m.role
  FROM actloom.memberships m JOIN actloom.companies c ON c.id = m.company_id
  JOIN actloom.users u ON u.id = m.user_id
 ORDER BY c.name, m.role DESC, u.email;
