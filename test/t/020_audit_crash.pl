# Clients append while the postmaster is killed with SIGKILL and restarted,
# three times: afterwards every chain verifies, and every append a client
# saw committed is in the trail.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use POSIX ();
use Time::HiRes qw(usleep);
use ActloomTest;

my $node = actloom_node('audit_crash', 'restart_after_crash = off');
actloom_companies($node, 3);
my $dir = $PostgreSQL::Test::Utils::tmp_check;
my ($host, $port) = ($node->host, $node->port);

# One client: appends in its own transactions until the server goes away,
# and records each append only once its COMMIT was acknowledged.
sub client
{
	my ($round, $id) = @_;
	my $company = 1 + $id % 3;
	open(my $log, '>>', "$dir/acked_${round}_$id") or die $!;
	$log->autoflush(1);
	for (my $n = 1;; $n++)
	{
		my $rc = system('psql', '-X', '-q', '-h', $host, '-p', $port, '-d', 'postgres',
			'-v', 'ON_ERROR_STOP=1', '-o', '/dev/null', '-c',
			"BEGIN; SELECT actloom.act_as(u, c) FROM bench_targets WHERE n = $company; "
			  . "SELECT actloom.audit('crash.append', 'client', '$round-$id', '{\"n\": $n}'); COMMIT;");
		last if $rc != 0;
		print $log "$round-$id $n\n";
	}
	close $log;
	# Skip the END blocks of the test modules: they belong to the parent.
	POSIX::_exit(0);
}

for my $round (1 .. 3)
{
	my @pids;
	for my $id (1 .. 6)
	{
		my $pid = fork();
		die "fork: $!" unless defined $pid;
		if ($pid == 0)
		{
			open(STDERR, '>', '/dev/null');
			client($round, $id);
		}
		push @pids, $pid;
	}
	usleep(1_500_000);
	$node->kill9;
	waitpid($_, 0) for @pids;
	# Orphaned server processes notice the postmaster's death and exit;
	# until they do, the new postmaster refuses the shared memory.
	my $started = 0;
	for (1 .. 60)
	{
		last if ($started = $node->start(fail_ok => 1));
		$node->{_pid} = undef;    # a failed start read the stale pid file
		usleep(500_000);
	}
	BAIL_OUT("the cluster did not restart after round $round") unless $started;
	pass("round $round: killed with appends in flight, restarted");
}

# What the clients saw committed.
my @acked;
for my $f (glob("$dir/acked_*"))
{
	open(my $fh, '<', $f) or die $!;
	push @acked, map { chomp; [ split / / ] } <$fh>;
}
cmp_ok(scalar(@acked), '>', 10, 'clients committed appends before the kills');
my $values = join(',', map { "('$_->[0]', $_->[1])" } @acked);
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM (VALUES $values) AS acked(client, n)
	 WHERE NOT EXISTS (SELECT FROM actloom.audit_log a
						WHERE a.action = 'crash.append' AND a.target_id = acked.client
						  AND (a.detail->>'n')::int = acked.n)}), '0',
	'every acknowledged append survived the crashes');
is($node->safe_psql('postgres', 'SELECT count(*) FROM actloom.audit_verify() WHERE NOT ok'), '0',
	'every chain verifies after the crashes');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT chain FROM actloom.audit_log GROUP BY chain
						  HAVING max(seq) <> count(*)) gaps}), '0', 'no gaps');

$node->stop;
done_testing();
