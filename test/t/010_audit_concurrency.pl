# Sixteen clients append concurrently, over eight companies and one hot
# company, at each isolation level: every chain verifies (no gap, no fork)
# and holds exactly the appends that committed.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use ActloomTest;

my $node = actloom_node('audit_concurrency');
actloom_companies($node, 9);

my $script = "${PostgreSQL::Test::Utils::tmp_check}/append.sql";
open(my $fh, '>', $script) or die $!;
# Half the transactions go to company 9, the hot one.
print $fh <<'SQL';
\set r random(1, 16)
BEGIN ISOLATION LEVEL :iso;
SELECT actloom.act_as(u, c) FROM bench_targets WHERE n = least(:r, 9);
SELECT actloom.audit('bench.append', 'level', ':iso', jsonb_build_object('r', :r));
COMMIT;
SQL
close $fh;

my $total = 0;
for my $iso ('READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE')
{
	my ($out, $err);
	my @cmd = ('pgbench', '-n', '-c', '16', '-j', '4', '-t', '150', '--max-tries', '1000',
		'-D', "iso=$iso", '-f', $script, '-h', $node->host, '-p', $node->port, 'postgres');
	my $ok = IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	ok($ok, "pgbench at $iso") or diag($err);
	my ($processed) = $out =~ /number of transactions actually processed: (\d+)/;
	my ($failed) = $out =~ /number of failed transactions: (\d+)/;
	is($processed, 16 * 150, "every transaction committed at $iso");
	is($failed // 0, 0, "no transaction failed for good at $iso");
	$total += $processed // 0;

	my $entries = $node->safe_psql('postgres',
		"SELECT count(*) FROM actloom.audit_log WHERE action = 'bench.append' AND target_id = '$iso'");
	is($entries, $processed, "one entry per committed transaction at $iso");
	is($node->safe_psql('postgres',
		'SELECT count(*) FROM actloom.audit_verify() WHERE NOT ok'), '0',
		"every chain verifies after $iso");
}

# Gap-free and fork-free, said directly: per chain, seq runs 1..n, and no
# two entries share a predecessor.
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (
		SELECT chain FROM actloom.audit_log GROUP BY chain
		HAVING max(seq) <> count(*) OR min(seq) <> 1
		    OR count(DISTINCT prev_hash) <> count(*)) bad}), '0', 'no gaps, no forks');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM actloom.audit_log WHERE action = 'bench.append'"), $total,
	'all appends are there');

# The plain SQL verifier agrees with the C one.
my $query = slurp_file('audit-verify.sql');
is($node->safe_psql('postgres', "SELECT array_agg(v ORDER BY chain)::text FROM ($query) v"),
	$node->safe_psql('postgres',
		'SELECT array_agg(v ORDER BY chain)::text FROM actloom.audit_verify() v'),
	'SQL and C verdicts agree');

$node->stop;
done_testing();
