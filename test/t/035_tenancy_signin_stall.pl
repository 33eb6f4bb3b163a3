# No role outside actloom_gateway (superusers aside) holds a lock that
# sign-ins wait on.  In 0.1 any role that owned a table, a TEMP one will do,
# called protect_table in a transaction, which appended to the system chain
# under the chain's lock, and left the transaction open: every sign-in,
# verify_password and create_user waited until statement_timeout.
#
# Now protect_table is for members of actloom_dba, and its entries go to the
# schema chain.  The test holds, each in a transaction left open on a second
# connection, everything a role outside the gateway can do that appends or
# writes to the audit trail: protect_table by a DBA, a partition added to a
# protected table by its owner outside actloom_dba (the event trigger
# protects and audits it), a signed checkpoint of the system chain by an
# auditor.  Meanwhile people sign in over HTTP through the shim, and the
# gateway calls verify_password, create_user, sign_in and sign_up: each
# completes, well within its timeouts.  That the DBA's transaction does hold
# the schema chain is shown by a second DBA's protect_table, which waits
# for it.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use ShimTest;

my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $keys = "$dir/stall.keys";
open my $kf, '>', $keys or die $!;
printf $kf "key k %s\nactive k\n", '55' x 32;
close $kf;
chmod 0600, $keys;
my $signing_key = "$dir/stall_signing.key";
system('openssl', 'genpkey', '-algorithm', 'ed25519', '-out', $signing_key) == 0 or die 'openssl genpkey';
chmod 0600, $signing_key;

my $PASSWORD = 'a passphrase while migrations run';
# A sign-in that waited on a lock would end at the shim's query timeout
# (3 s, a 504) or at the statement_timeout of the SQL calls; one that did
# not takes a few argon2id hashes, well under the bound on a loaded machine.
my $statement_timeout = 30;
my $bound = 20;

my $t = ShimTest->new(name => 'signin_stall',
	pg_conf => ["actloom.audit_signing_key_file = '$signing_key'"],
	config => {
		session => { key_file => $keys, cookie => 'insecure-dev' },
		rate_limits => { classes => { login => { limit => 1000, period => 60, burst => 1000, key => ['address'] } } },
	});
my $node = $t->node;
$t->psql(qq{
	CREATE ROLE outsider LOGIN;
	CREATE ROLE migrator LOGIN IN ROLE actloom_dba;
	CREATE ROLE partowner LOGIN;
	CREATE ROLE auditor LOGIN IN ROLE actloom_auditor;
	GRANT CREATE ON SCHEMA public TO migrator, partowner;
	SET ROLE shim;
	SELECT actloom.create_user('ada\@acme.test', '$PASSWORD');
	RESET ROLE;
	CREATE TABLE public.ledger (id int NOT NULL, company_id uuid NOT NULL) PARTITION BY LIST (company_id);
	CREATE INDEX ON public.ledger (company_id);
	ALTER TABLE public.ledger OWNER TO partowner;
	SELECT actloom.protect_table('public.ledger');
});
$t->start_shim;

# Every way a person signs in or up, from other connections, while $what.
my $n = 0;
sub sign_ins_go_through
{
	my ($what) = @_;
	my $started = time;
	my $r = $t->request('POST', '/auth/login', json => { email => 'ada@acme.test', password => $PASSWORD });
	is($r->{status}, 200, "$what: a sign-in over HTTP succeeds");
	$n++;
	my ($rc, $out, $err) = $node->psql('actloom', qq{
		SET statement_timeout = '${statement_timeout}s';
		SELECT actloom.verify_password('ada\@acme.test', '$PASSWORD') IS NOT NULL;
		SELECT actloom.create_user('user$n\@acme.test') IS NOT NULL;
		SELECT count(*) FROM actloom.sign_in('ada\@acme.test', '$PASSWORD');
		SELECT count(*) FROM actloom.sign_up('new$n\@acme.test', 'another passphrase $n', 'New $n');
	}, extra_params => [ '-U', 'shim' ]);
	is("$rc $out", "0 t\nt\n1\n1", "$what: verify_password, create_user, sign_in and sign_up succeed")
	  or diag($err);
	cmp_ok(time - $started, '<', $bound, "$what: all of them within ${bound} s");
}

# Whether a backend, named by application_name, waits on a lock.
sub waits_on_lock
{
	my ($name) = @_;
	return $node->poll_query_until('actloom',
		"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE application_name = '$name'");
}

# What PUBLIC may run of the extension: nothing that appends to a chain.
is($t->psql(q{
	SELECT string_agg(p.oid::regprocedure::text, ' ' ORDER BY p.oid::regprocedure::text)
	  FROM pg_proc p WHERE p.pronamespace = 'actloom'::regnamespace
	   AND has_function_privilege('outsider', p.oid, 'EXECUTE')}),
	'actloom._require_arg(anyelement,text) actloom.audit_canonical(actloom.audit_log) '
	  . 'actloom.audit_checkpoint_message(uuid,bigint,bytea,timestamp with time zone) actloom.audit_genesis() '
	  . 'actloom.current_actor_kind() actloom.current_api_key() actloom.current_company() '
	  . 'actloom.current_session() actloom.current_user_id() actloom.refuse_tenant_move() '
	  . 'actloom.schema_chain() actloom.system_chain() actloom.valid_email(text) '
	  . 'actloom.webhook_signature(text,text,bigint,text)',
	'a role outside the extension\'s roles may run only functions that write nothing');

# A role outside every role of the extension, with a TEMP table: refused.
my $outsider = $node->background_psql('actloom', on_error_stop => 0, extra_params => [ '-U', 'outsider' ]);
$outsider->query_safe('\set VERBOSITY verbose');
$outsider->query_safe('BEGIN');
$outsider->query_safe('CREATE TEMP TABLE mine (company_id uuid)');
$outsider->query(q{SELECT actloom.protect_table('pg_temp.mine')});
like($outsider->{stderr}, qr/ERROR:  42501: permission denied for function protect_table/,
	'protect_table by a role outside actloom_dba: 42501');
$outsider->{stderr} = '';
sign_ins_go_through('after that, in its open transaction');
$outsider->query_safe('ROLLBACK');
$outsider->quit;

# A DBA's migration protects a table and keeps its transaction open.
my $migration = $node->background_psql('actloom', extra_params => [ '-U', 'migrator' ]);
$migration->query_safe('BEGIN');
$migration->query_safe('CREATE TABLE public.docs (id int NOT NULL, company_id uuid NOT NULL)');
$migration->query_safe('CREATE INDEX ON public.docs (company_id)');
$migration->query_safe(q{SELECT actloom.protect_table('public.docs')});
my $second = $node->background_psql('actloom', extra_params => [ '-U', 'migrator' ]);
$second->query_safe(q{SET application_name = 'second_migration'});
$second->query_safe('BEGIN');
$second->query_safe('CREATE TABLE public.docs2 (id int NOT NULL, company_id uuid NOT NULL)');
$second->query_safe('CREATE INDEX ON public.docs2 (company_id)');
$second->query_until(qr/sent/, "\\echo sent\nSELECT actloom.protect_table('public.docs2');\n");
ok(waits_on_lock('second_migration'), 'a second migration\'s protect_table waits for the schema chain');
sign_ins_go_through('while a migration holds the schema chain');
$migration->query_safe('COMMIT');
$migration->quit;
$second->query_safe('COMMIT');
$second->quit;
is($t->psql(q{SELECT string_agg(target_id, ' ' ORDER BY seq) FROM actloom.audit_log
	WHERE chain = actloom.schema_chain() AND target_id IN ('public.docs', 'public.docs2')}),
	'public.docs public.docs2', 'both migrations protected their tables, in turn');

# The owner of a protected table, outside actloom_dba, adds a partition and
# keeps its transaction open: the event trigger protected and audited it.
my $owner = $node->background_psql('actloom', extra_params => [ '-U', 'partowner' ]);
$owner->query_safe('BEGIN');
$owner->query_safe(q{CREATE TABLE public.ledger_rest PARTITION OF public.ledger DEFAULT});
is($owner->query_safe(q{SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = 'public.ledger_rest'::regclass}),
	't', 'the new partition is protected');
sign_ins_go_through('while the owner of a protected table adds a partition');
$owner->query_safe('COMMIT');
$owner->quit;

# An auditor signs a checkpoint of the system chain, and stays.
my $auditor = $node->background_psql('actloom', extra_params => [ '-U', 'auditor' ]);
$auditor->query_safe('BEGIN');
$auditor->query_safe(q{SELECT seq FROM actloom.audit_checkpoint(actloom.system_chain())});
sign_ins_go_through('while an auditor checkpoints the system chain');
$auditor->query_safe('COMMIT');
$auditor->quit;

is($t->psql(q{SELECT count(*) FROM actloom.audit_log WHERE action = 'table.protect' AND chain = actloom.system_chain()}),
	'0', 'the system chain holds no table.protect entry');
is($t->psql(q{SELECT count(*) FILTER (WHERE NOT ok) FROM actloom.audit_verify()}), '0', 'every chain verifies');
is($t->stop_shim, 0, 'the shim exits cleanly');
done_testing();
