# A database whose protected tables have partitions and inheritance children
# dumps and restores as before: pg_dump attaches partitions and inherits
# before it creates any policy, so the event trigger that protects new
# partitions and children finds no protected parent during a restore, and
# the restore (one transaction, stopping at the first error) rebuilds the
# same protection and the same audit entries, adding none.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ActloomTest;

my $node = actloom_node('tenancy_restore');
$node->safe_psql('postgres', q{
	CREATE TABLE public.docs (id int NOT NULL, company_id uuid NOT NULL) PARTITION BY LIST (company_id);
	CREATE INDEX ON public.docs (company_id);
	CREATE TABLE public.docs_a PARTITION OF public.docs
		FOR VALUES IN ('aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa') PARTITION BY RANGE (id);
	CREATE TABLE public.docs_a1 PARTITION OF public.docs_a FOR VALUES FROM (0) TO (100);
	CREATE TABLE public.docs_rest PARTITION OF public.docs DEFAULT;
	SELECT actloom.protect_table('public.docs');
	CREATE TABLE public.docs_later PARTITION OF public.docs FOR VALUES IN ('bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb');
	CREATE TABLE public.memo (id int NOT NULL, company_id uuid NOT NULL);
	CREATE INDEX ON public.memo (company_id);
	SELECT actloom.protect_table('public.memo');
	CREATE TABLE public.memo_kid () INHERITS (public.memo);
	INSERT INTO public.docs VALUES (1, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa'), (2, 'cccccccc-cccc-4ccc-8ccc-cccccccccccc');
	INSERT INTO public.memo_kid VALUES (3, 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa');
});

# Protection, table by table; and the audit trail.
my $protection = q{
	SELECT string_agg(format('%s %s %s %s %s', c.relname, c.relrowsecurity, c.relforcerowsecurity,
							 (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid),
							 (SELECT string_agg(t.tgname || (t.tgparentid <> 0), ',') FROM pg_trigger t
							   WHERE t.tgrelid = c.oid AND NOT t.tgisinternal)),
					  E'\n' ORDER BY c.relname)
	  FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p');
};
# The entries, by what they say: a restore appends each entry again through
# the audit trigger, with the time of the restore.
my $trail = q{SELECT string_agg(format('%s %s %s %s %s', chain, seq, action, target_id, detail), E'\n' ORDER BY chain, seq)
	FROM actloom.audit_log};
my $before = $node->safe_psql('postgres', $protection);
like($before, qr/^docs_later t t 5 actloom_tenant_movetrue$/m, 'a partition created later is protected');
like($before, qr/^memo_kid t t 5 actloom_tenant_movefalse$/m, 'so is a child');

my $dump = "${PostgreSQL::Test::Utils::tmp_check}/tenancy.sql";
my ($out, $err) = run_command([ $node->installed_command('pg_dump'), '-f', $dump, '-d', $node->connstr('postgres') ]);
is($err, '', 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
($out, $err) = run_command([ $node->installed_command('psql'), '-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1',
	'-f', $dump, '-d', $node->connstr('restored') ]);
unlike($err, qr/ERROR/, 'the dump restores in one transaction, without an error') or diag($err);
is($node->safe_psql('restored', $protection), $before, 'with the same protection on every table');
is($node->safe_psql('restored', $trail), $node->safe_psql('postgres', $trail), 'and the same audit entries, none added');
is($node->safe_psql('restored', 'SELECT count(*) FILTER (WHERE NOT ok) FROM actloom.audit_verify()'), '0',
	'which verifies');
$node->stop;
done_testing();
