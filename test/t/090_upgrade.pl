# Upgrading 0.1 to 0.2 as a DBA does.  A database is created with actloom
# 0.1 (its frozen install script, and its library when run-tests.sh could
# build it from the release commit: ACTLOOM_V01_LIB) and populated; the
# server restarts with this checkout's library; ALTER EXTENSION actloom
# UPDATE.  Then every row is still there, every chain verifies with both
# verifiers, the sealed values open, the API key authenticates, the session
# and the password still work, the application table is still confined; and
# the database's schema, described from the catalogs and pg_dump, is the
# same as that of a fresh CREATE EXTENSION in another database.
#
# The description, and its normalisation (the least that makes two
# databases with the same objects compare equal):
# - every extension, with its version, schema and configuration tables
#   (by name), and every member object of each, by pg_describe_object;
# - pg_dump --binary-upgrade --schema-only, which dumps extension members
#   with their definitions, owners, privileges (those recorded at creation
#   and those since) and comments, cut into its "-- Name:" entries and
#   sorted; less what records physical state rather than schema: the
#   lines that carry OIDs, relfilenodes and LSNs (SELECT
#   binary_upgrade_set_next_..., and binary_upgrade_create_empty_extension,
#   whose configuration tables the first part names), the UPDATEs of
#   pg_class that carry relfrozenxid and relminmxid, the random key of
#   pg_dump's \restrict lines, and the SEQUENCE SET entries, which are data.
# Both databases also hold the same application objects (a protected table,
# an endpoint function), made by the same statements.
use strict;
use warnings;
use File::Basename qw(dirname basename);
use File::Copy qw(copy);
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $tmp = $PostgreSQL::Test::Utils::tmp_check;
my $testdir = $ENV{TESTDIR} or die 'TESTDIR is not set';

sub pg_config
{
	my ($what) = @_;
	my ($out) = run_command([ 'pg_config', "--$what" ]);
	chomp $out;
	return $out;
}

# A private installation: a copy of this PostgreSQL and of what "make
# install" put into it, plus the frozen 0.1 script, which is not installed.
my %dir = map { $_ => pg_config($_) } qw(bindir pkglibdir sharedir);
die "bindir $dir{bindir} does not end in bin" unless basename($dir{bindir}) eq 'bin';
my $root = "$tmp/install";
for my $d (values %dir)
{
	make_path("$root$d");
	system('cp', '-a', "$d/.", "$root$d/") == 0 or die "cannot copy $d";
}
copy("$testdir/upgrade/actloom--0.1.sql", "$root$dir{sharedir}/extension/actloom--0.1.sql") or die "copy: $!";
my $lib = "$root$dir{pkglibdir}/actloom.so";
my $v01_lib = $ENV{ACTLOOM_V01_LIB};
if ($v01_lib)
{
	copy($v01_lib, $lib) or die "copy $v01_lib: $!";
}

my $ring = "$tmp/keyring";
open(my $fh, '>', $ring) or die "$ring: $!";
printf $fh "key 1 %s\nactive 1\n", join('', map { sprintf '%02x', int(rand(256)) } 1 .. 32);
close $fh;
chmod 0600, $ring;
my $signing_key = "$tmp/audit_signing.key";
system('openssl', 'genpkey', '-algorithm', 'ed25519', '-out', $signing_key) == 0 or die 'openssl genpkey';
chmod 0600, $signing_key;

my $node = PostgreSQL::Test::Cluster->new('upgrade', install_path => dirname("$root$dir{bindir}"));
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'actloom'
actloom.keyring_file = '$ring'
actloom.audit_signing_key_file = '$signing_key'
});
$node->start;

sub sql { my ($db, $q) = @_; return $node->safe_psql($db, $q, on_error_stop => 1); }

# --- 0.1, populated --------------------------------------------------------
# The application's objects, the same in both databases.
# 0.1 left the partitions and children of a protected table open; the
# update protects them.
my $app_objects = q{
	CREATE TABLE public.reports (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
								 company_id uuid NOT NULL, title text NOT NULL, body bytea);
	CREATE INDEX ON public.reports (company_id);
	ALTER TABLE public.reports OWNER TO upgrade_owner;
	CREATE TABLE public.ledger (id int NOT NULL, company_id uuid NOT NULL) PARTITION BY LIST (company_id);
	CREATE INDEX ON public.ledger (company_id);
	CREATE TABLE public.ledger_rest PARTITION OF public.ledger DEFAULT;
	CREATE TABLE public.notes (id int NOT NULL, company_id uuid NOT NULL);
	CREATE INDEX ON public.notes (company_id);
	CREATE TABLE public.notes_kid () INHERITS (public.notes);
	ALTER TABLE public.ledger OWNER TO upgrade_owner;
	ALTER TABLE public.ledger_rest OWNER TO upgrade_owner;
	ALTER TABLE public.notes OWNER TO upgrade_owner;
	ALTER TABLE public.notes_kid OWNER TO upgrade_owner;
	SET ROLE upgrade_owner;
	SELECT actloom.protect_table('public.reports');
	SELECT actloom.protect_table('public.ledger');
	SELECT actloom.protect_table('public.notes');
	GRANT SELECT, INSERT, UPDATE, DELETE ON public.reports TO upgrade_app;
	GRANT SELECT ON public.ledger, public.ledger_rest, public.notes, public.notes_kid TO upgrade_app;
	RESET ROLE;
	CREATE FUNCTION public.report(body jsonb, query jsonb) RETURNS jsonb
		LANGUAGE sql RETURN jsonb_build_object('title', body->'title');
};
sql('postgres', 'CREATE DATABASE old');
sql('old', q{CREATE EXTENSION actloom VERSION '0.1' CASCADE});
sql('old', q{
	CREATE ROLE upgrade_owner LOGIN;
	CREATE ROLE upgrade_app LOGIN IN ROLE actloom_gateway;
});
sql('old', $app_objects);
is(sql('old', q{SELECT extversion FROM pg_extension WHERE extname = 'actloom'}), '0.1', 'the old database is at 0.1');

my ($olivia, $adam, $mia, $gus) = map { sql('old', "SELECT actloom.create_user('$_', 'a passphrase kept across upgrades')") }
	qw(olivia@acme.test adam@acme.test mia@acme.test gus@globex.test);
my $acme = sql('old', qq{
	BEGIN;
	SELECT actloom.act_as('$olivia') \\g /dev/null
	SELECT actloom.create_company('Acme');
	COMMIT;
});
my $globex = sql('old', qq{
	BEGIN;
	SELECT actloom.act_as('$gus') \\g /dev/null
	SELECT actloom.create_company('Globex');
	COMMIT;
});
my $key = sql('old', qq{
	BEGIN;
	SELECT actloom.act_as('$olivia', '$acme') \\g /dev/null
	SELECT actloom.add_member('$acme', '$adam', 'admin') \\g /dev/null
	SELECT actloom.add_member('$acme', '$mia') \\g /dev/null
	SELECT actloom.secret_put('$acme', 'stripe.api_key', 'sk_live_kept_across_upgrades') \\g /dev/null
	SELECT actloom.audit('reports.exported', 'report', '7', '{"rows": 12}') \\g /dev/null
	INSERT INTO public.reports (company_id, title, body)
		VALUES ('$acme', 'acme q1', actloom.seal('$acme', 'report.body', 'the q1 numbers'));
	SELECT actloom.api_key_create('$acme', 'reporting job', ARRAY['reports.*']);
	COMMIT;
});
like($key, qr/^alk_/, 'an API key was made');
sql('old', qq{
	BEGIN;
	SELECT actloom.act_as('$gus', '$globex') \\g /dev/null
	INSERT INTO public.reports (company_id, title) VALUES ('$globex', 'globex q1');
	COMMIT;
	SELECT actloom.expose(1, 'POST', 'reports', 'public.report(jsonb,jsonb)', 'reports.generate');
	SELECT actloom.rate_limit_take('login', 'a:192.0.2.1', 10, 60, 10);
	SELECT actloom.audit_checkpoint('$acme');
	INSERT INTO public.ledger VALUES (1, '$acme'), (2, '$globex');
	INSERT INTO public.notes_kid VALUES (1, '$acme'), (2, '$globex');
});
my $open_children = qq{
	BEGIN;
	SET LOCAL ROLE upgrade_app;
	SELECT actloom.act_as('$adam', '$acme') \\g /dev/null
	SELECT count(*) FROM public.ledger_rest;
	SELECT count(*) FROM public.notes_kid;
	COMMIT;
};
is(sql('old', $open_children), "2\n2", 'at 0.1, a protected table\'s partition and child show every company');
my $session = sql('old', q{SELECT session FROM actloom.sign_in('mia@acme.test', 'a passphrase kept across upgrades')});
like($session, qr/^[0-9a-f-]{36}$/, 'a session was started');

# --- the new library, before the update --------------------------------------
# Installing the new release replaces the library; a preloaded library
# changes only with a restart.  Until ALTER EXTENSION UPDATE, the 0.1 objects
# run on it.
$node->stop;
copy("$dir{pkglibdir}/actloom.so", $lib) or die "copy: $!";
$node->start;
diag('ACTLOOM_V01_LIB is not set: the 0.1 objects were populated by the new library') unless $v01_lib;

my ($rc, $out, $err);
my $verify_sql = slurp_file("$testdir/audit-verify.sql");
sub chains_intact
{
	my ($db, $what) = @_;
	my $chains = q{(SELECT count(DISTINCT chain) FROM actloom.audit_log)};
	is(sql($db, "SELECT count(*) FILTER (WHERE NOT ok) || ' bad, all: ' || (count(*) = $chains) FROM actloom.audit_verify()"),
		'0 bad, all: true', "$what: audit_verify() finds every chain intact");
	is(sql($db, "SELECT count(*) FILTER (WHERE NOT ok) || ' bad, all: ' || (count(*) = $chains) FROM ($verify_sql) v"),
		'0 bad, all: true', "$what: so does the SQL verification query");
}
is(sql('old', q{SELECT count(DISTINCT chain) FROM actloom.audit_log}), '3', 'three chains: the system\'s, Acme\'s, Globex\'s');
chains_intact('old', 'on the new library at 0.1');
# Every C function of 0.1 finds its symbol in the new library: defining it
# again, as it is, looks the symbol up.
($rc, $out, $err) = $node->psql('old', q{
	BEGIN;
	DO $$
	DECLARE f oid; n int := 0;
	BEGIN
		FOR f IN SELECT p.oid FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
				  WHERE l.lanname = 'c' AND p.pronamespace = 'actloom'::regnamespace LOOP
			EXECUTE pg_get_functiondef(f);
			n := n + 1;
		END LOOP;
		RAISE NOTICE 'C functions defined again: %', n;
	END
	$$;
	ROLLBACK;
});
like($err, qr/NOTICE:  C functions defined again: 33$/, 'on the new library at 0.1: the 33 C functions of 0.1 resolve');
is(sql('old', "SELECT company_id FROM actloom.authenticate_api_key('$key', 'reports.generate')"),
	$acme, 'on the new library at 0.1: the API key authenticates');

# --- the update ------------------------------------------------------------
# Every row of every table of 0.1, by the columns it had then; of the audit
# trail, less the schema chain, where the update records the tables it
# protects.
my @tables = split /\n/, sql('old', q{
	SELECT format('SELECT count(*) || '' '' || md5(coalesce(string_agg(r::text, E''\n'' ORDER BY r::text), '''')) FROM (SELECT %s FROM %s %s) r',
				  string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum), c.oid::regclass,
				  CASE WHEN c.oid = 'actloom.audit_log'::regclass
					   THEN 'WHERE chain <> ''00000000-0000-0000-0000-000000000001''' END)
	  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	 WHERE c.relkind = 'r' AND c.relnamespace IN ('actloom'::regnamespace, 'public'::regnamespace)
	 GROUP BY c.oid ORDER BY c.oid::regclass::text
});
sub rows { return { map { $_ => sql('old', $_) } @tables }; }
my $before = rows();
cmp_ok(scalar(@tables), '>=', 14, 'the tables of 0.1 are known');

($rc, $out, $err) = $node->psql('old', q{
	BEGIN;
	ALTER EXTENSION actloom UPDATE;
	ROLLBACK;
	SELECT extversion FROM pg_extension WHERE extname = 'actloom';
});
is($out, '0.1', 'an update that does not commit leaves 0.1 as it was');

sql('old', 'ALTER EXTENSION actloom UPDATE');
is(sql('old', q{SELECT extversion FROM pg_extension WHERE extname = 'actloom'}), '0.2', 'updated to 0.2');
is_deeply(rows(), $before, 'every row of every table is kept');
is(sql('old', $open_children), "1\n1", 'the partition and the child are confined now');
is(sql('old', q{SELECT string_agg(target_id, ' ' ORDER BY seq) FROM actloom.audit_log WHERE chain = actloom.schema_chain()}),
	'public.ledger public.ledger_rest public.notes public.notes_kid', 'and recorded in the schema chain');
# protect_table is for actloom_dba now: the migrations' role joins it.
sql('old', 'GRANT actloom_dba TO upgrade_owner');

# --- 0.2, after the update ---------------------------------------------------
chains_intact('old', 'after the update');
is(sql('old', "SELECT actloom.secret_get('$acme', 'stripe.api_key')"), 'sk_live_kept_across_upgrades',
	'the sealed secret opens');
is(sql('old', qq{
	BEGIN;
	SET LOCAL ROLE upgrade_app;
	SELECT actloom.act_as('$adam', '$acme') \\g /dev/null
	SELECT title || ': ' || convert_from(actloom.unseal('$acme', 'report.body', body), 'UTF8') FROM public.reports;
	COMMIT;
}), 'acme q1: the q1 numbers', 'a value sealed into the application table opens, and the table shows its company only');
is(sql('old', qq{
	BEGIN;
	SET LOCAL ROLE upgrade_app;
	SELECT company_id || ' ' || array_to_string(scopes, ',')
	  FROM actloom.authenticate_api_key('$key', 'reports.generate');
	SELECT title FROM public.reports;
	COMMIT;
}), "$acme reports.*\nacme q1", 'the API key authenticates, with its scopes, and sees its company only');
is(sql('old', qq{
	BEGIN;
	SET LOCAL ROLE upgrade_app;
	SELECT actloom.act_as_session('$session', '$acme') = '$mia';
	COMMIT;
}), 't', 'the session is still valid');
is(sql('old', q{SELECT actloom.verify_password('mia@acme.test', 'a passphrase kept across upgrades')}), $mia,
	'the password still verifies');
($rc, $out, $err) = $node->psql('old', qq{
	BEGIN;
	SET LOCAL ROLE upgrade_app;
	SELECT actloom.act_as('$mia', '$acme');
	INSERT INTO public.reports (company_id, title) VALUES ('$globex', 'planted');
	COMMIT;
});
like($err, qr/new row violates row-level security policy/, 'the application table is still confined');
is(sql('old', q{SELECT count(*) FROM actloom.endpoint_registry()}), '1', 'the endpoint is still registered');
is(sql('old', "SELECT count(*) FROM actloom.audit_checkpoints WHERE chain = '$acme'"), '1',
	'the checkpoint is kept');
is(sql('old', qq{
	BEGIN;
	SELECT actloom.act_as('$olivia', '$acme') \\g /dev/null
	SELECT max(seq) AS last FROM actloom.audit_log WHERE chain = '$acme' \\gset
	SELECT actloom.audit('upgrade.checked') = :last + 1;
	COMMIT;
	SELECT ok FROM actloom.audit_verify('$acme');
	SELECT seq = (SELECT max(seq) FROM actloom.audit_log WHERE chain = '$acme') FROM actloom.audit_checkpoint('$acme');
}), "t\nt\nt", 'the chain goes on after the update: appended, verified, signed');

# --- the same schema as a fresh install ---------------------------------------
sql('postgres', 'CREATE DATABASE fresh');
sql('fresh', 'CREATE EXTENSION actloom CASCADE');
sql('fresh', $app_objects);

sub describe
{
	my ($db) = @_;
	my $catalog = sql($db, q{
		SELECT format('extension %s %s, schema %s, relocatable %s, configuration %s %s', extname, extversion,
					  extnamespace::regnamespace, extrelocatable, extconfig::regclass[], extcondition)
		  FROM pg_extension ORDER BY extname;
		SELECT format('member of %s: %s', e.extname, pg_describe_object(d.classid, d.objid, d.objsubid))
		  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
		 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
		 ORDER BY 1;
	});
	my ($dump, $dump_err) = run_command([ $node->installed_command('pg_dump'), '--binary-upgrade',
		'--schema-only', '-d', $node->connstr($db) ]);
	die "pg_dump $db: $dump_err" if $dump eq '' || $dump_err ne '';
	$dump =~ s/^SELECT pg_catalog\.binary_upgrade_(?:set_next_\w+|create_empty_extension)\(.*\n//mg;
	$dump =~ s/^-- For binary upgrade, set \w+'s relfrozenxid and relminmxid\n(?:.*\n){3}//mg;
	$dump =~ s/^\\(?:un)?restrict \w+$//mg;
	my @entries = split /(?=^--\n-- Name: )/m, $dump;
	@entries = sort grep { !/\A--\n-- Name: [^\n]*; Type: SEQUENCE SET;/ } @entries;
	return join("\n", $catalog, '', @entries);
}

my %description = map { $_ => describe($_) } qw(old fresh);
like($description{fresh}, qr/^member of actloom: function actloom\.audit_verify\(uuid\)$/m,
	'the description names the extension\'s members');
like($description{fresh}, qr/^REVOKE ALL ON FUNCTION actloom\.audit_verify\(chain uuid\) FROM PUBLIC;$/m,
	'with their privileges');
like($description{fresh}, qr/^COMMENT ON TABLE actloom\.users IS /m, 'and comments');
for my $db (keys %description)
{
	open(my $out, '>', "$tmp/schema-$db.sql") or die $!;
	print $out $description{$db};
	close $out;
}
my ($diff) = run_command([ 'diff', '-u', "$tmp/schema-fresh.sql", "$tmp/schema-old.sql" ]);
ok($diff eq '', 'the upgraded database has the schema of a fresh install')
	or diag("fresh install (-) against upgraded (+):\n$diff");

$node->stop;
done_testing();
