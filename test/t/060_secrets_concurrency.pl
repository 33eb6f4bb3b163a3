# Secrets under concurrency: 8 clients seal for 40 fresh companies at once
# (so data keys are created in races), authenticate API keys and rotate the
# master key meanwhile.  Every company ends with one data key, every sealed
# value opens, and every transaction succeeds.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ActloomTest;

my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $ring = "$dir/keyring";
my $ring2 = "$dir/keyring2";
my ($k1, $k2) = ('11' x 32, '22' x 32);
for ([ $ring, "key 1 $k1\nactive 1\n" ], [ $ring2, "key 1 $k1\nkey 2 $k2\nactive 2\n" ])
{
	open(my $fh, '>', $_->[0]) or die $!;
	print $fh $_->[1];
	close $fh;
	chmod 0600, $_->[0];
}

my $node = actloom_node('secrets_concurrency', "actloom.keyring_file = '$ring'");
actloom_companies($node, 40);
$node->safe_psql('postgres', q{
	CREATE TABLE sealed (n int, c uuid, v bytea, plain text);
	CREATE TABLE keys (n int PRIMARY KEY, key text);
	DO $$
	DECLARE t record;
	BEGIN
		FOR t IN SELECT * FROM bench_targets LOOP
			PERFORM actloom.act_as(t.u, t.c);
			INSERT INTO keys VALUES (t.n, actloom.api_key_create(t.c, 'k', ARRAY['reports.*']));
		END LOOP;
	END
	$$;
});

# Half the clients seal, the other half authenticate; all at once.
my $seal = q{
\set n random(1, 40)
BEGIN;
SELECT actloom.act_as(u, c) FROM bench_targets WHERE n = :n;
INSERT INTO sealed SELECT :n, c, actloom.seal(c, 'p', convert_to('value ' || :client_id, 'UTF8')), 'value ' || :client_id
  FROM bench_targets WHERE n = :n;
COMMIT;
};
my $auth = q{
\set n random(1, 40)
SELECT count(*) FROM keys k, actloom.authenticate_api_key(k.key, 'reports.generate') a WHERE k.n = :n;
};
$node->pgbench('-n -c 8 -j 4 -t 100', 0, [qr{processed: 800/800}], [qr{^$}],
	'sealing for new companies and authenticating concurrently',
	{ 'seal' => "$seal", 'auth' => "$auth" });

is($node->safe_psql('postgres', q{
	SELECT count(*) FROM actloom.company_keys k JOIN bench_targets t ON t.c = k.company_id}),
	$node->safe_psql('postgres', q{SELECT count(DISTINCT n) FROM sealed}),
	'one data key per company that sealed something');

# Rotate while clients keep sealing and opening.
my $open = q{
\set n random(1, 40)
BEGIN;
SELECT actloom.act_as(u, c) FROM bench_targets WHERE n = :n;
SELECT count(*) FROM sealed s WHERE s.n = :n AND convert_from(actloom.unseal(s.c, 'p', s.v), 'UTF8') <> s.plain;
COMMIT;
};
$node->safe_psql('postgres', "ALTER SYSTEM SET actloom.keyring_file = '$ring2'");
$node->reload;
my $rotated = $node->safe_psql('postgres', 'SELECT actloom.rotate_master_key(2)');
ok($rotated > 0, 'rotation re-wrapped the company keys');
$node->pgbench('-n -c 8 -j 4 -t 50', 0, [qr{processed: 400/400}], [qr{^$}],
	'sealing and opening after a rotation', { 'seal_again' => "$seal", 'open' => "$open" });

is($node->safe_psql('postgres', q{
	SELECT count(*) FROM actloom.company_keys WHERE master_key_id <> 2}), 0,
	'every data key is wrapped by the new master key');
is($node->safe_psql('postgres', q{
	CREATE FUNCTION pg_temp.opens_all() RETURNS bigint LANGUAGE plpgsql AS $$
	DECLARE t record; bad bigint := 0; v text;
	BEGIN
		FOR t IN SELECT s.*, b.u FROM sealed s JOIN bench_targets b ON b.n = s.n LOOP
			PERFORM actloom.act_as(t.u, t.c);
			v := convert_from(actloom.unseal(t.c, 'p', t.v), 'UTF8');
			IF v <> t.plain THEN bad := bad + 1; END IF;
		END LOOP;
		RETURN bad;
	END
	$$;
	SELECT pg_temp.opens_all();
}), 0, 'every sealed value opens to what was sealed');

done_testing();
