# The chain lock is out of user code's reach: an appender that calls
# pg_advisory_unlock_all() keeps it, so the next appender of the chain waits
# for its commit instead of failing with 23505 on (chain, seq).  The lock is
# also released by a backend that is terminated while holding it, and takes
# part in deadlock detection like any lock.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ActloomTest;

my $node = actloom_node('audit_lock', 'deadlock_timeout = 100ms');
actloom_companies($node, 2);
my %co = map { $_ => $node->safe_psql('postgres', "SELECT c FROM bench_targets WHERE n = $_") } 1, 2;

# A session whose transaction appends to company n's chain; returns it with
# its backend's pid.
sub appender
{
	my ($n, $action) = @_;
	my $s = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	$s->query_safe("BEGIN; SELECT actloom.act_as(u, c) FROM bench_targets WHERE n = $n");
	$s->query_safe("SELECT actloom.audit('$action')") if defined $action;
	return ($s, $pid);
}

# Sends an append and COMMIT without waiting for them; the marker comes
# once both are done.
sub append_async
{
	my ($s, $action, $marker) = @_;
	$s->{stdin} .= "SELECT actloom.audit('$action');\nCOMMIT;\n\\echo $marker\n";
	$s->{run}->pump_nb;
}

sub waits_for_lock
{
	my ($pid) = @_;
	return $node->poll_query_until('postgres',
		"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $pid");
}

# The chain locks a backend holds (granted) or waits for.
sub chain_locks
{
	my ($pid, $granted) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT count(*) FROM pg_locks
		 WHERE pid = $pid AND granted = $granted AND locktype = 'object'
		   AND classid = 'actloom.audit_log'::regclass});
}

sub finish
{
	my ($s, $marker) = @_;
	my $out = $s->query_until(qr/$marker/, '');
	my $err = $s->{stderr};
	$s->{stderr} = '';
	return ($out, $err);
}

# 1. pg_advisory_unlock_all() in the middle of an appending transaction.
my ($a, $apid) = appender(1, 'lock.first');
$a->query_safe('SELECT pg_advisory_lock(42)');
$a->query_safe('SELECT pg_advisory_unlock_all()');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_locks WHERE pid = $apid AND locktype = 'advisory'"),
	'0', "pg_advisory_unlock_all() released the session's own advisory lock");
is(chain_locks($apid, 'true'), '1', 'and not the chain lock');

my ($b, $bpid) = appender(1);
append_async($b, 'lock.second', 'second_done');
ok(waits_for_lock($bpid), 'the next appender of the chain waits');
is(chain_locks($bpid, 'false'), '1', 'for the chain lock');
is($node->safe_psql('postgres', "SELECT count(*) FROM actloom.audit_log WHERE action = 'lock.second'"),
	'0', 'and has appended nothing yet');
$a->query('COMMIT');
is($a->{stderr}, '', 'the first commits');
my ($out, $err) = finish($b, 'second_done');
is($err, '', 'once the first commits, the second appends and commits: no 23505');
is($node->safe_psql('postgres', qq{
	SELECT string_agg(action, ' ' ORDER BY seq) FROM actloom.audit_log
	 WHERE chain = '$co{1}' AND action LIKE 'lock.%'}), 'lock.first lock.second', 'both entries, in order');
is($node->safe_psql('postgres', "SELECT ok FROM actloom.audit_verify('$co{1}')"), 't', 'the chain verifies');

# 2. lock_timeout applies to the wait; a holder terminated by
# pg_terminate_backend (FATAL) lets go.
($a, $apid) = appender(1, 'lock.terminated');
my ($c) = appender(1);
$c->query("SET LOCAL lock_timeout = '100ms'; SELECT actloom.audit('lock.timed_out')");
like($c->{stderr}, qr/canceling statement due to lock timeout/, 'a wait for the chain lock obeys lock_timeout');
$c->quit;
($b, $bpid) = appender(1);
append_async($b, 'lock.after_terminate', 'after_terminate_done');
ok(waits_for_lock($bpid), 'an appender waits for a holder that will be terminated');
is($node->safe_psql('postgres', "SELECT pg_terminate_backend($apid)"), 't', 'the holder is terminated');
($out, $err) = finish($b, 'after_terminate_done');
is($err, '', 'the waiting appender then appends and commits');
$a->quit;
is($node->safe_psql('postgres', qq{
	SELECT string_agg(action, ' ' ORDER BY seq) FROM actloom.audit_log
	 WHERE chain = '$co{1}' AND action LIKE 'lock.%'}), 'lock.first lock.second lock.after_terminate',
	'the terminated append left no entry and no hole');

# 3. Two transactions that append to two chains in opposite orders: the
# deadlock detector breaks the cycle and the survivor commits.
($a, $apid) = appender(1, 'lock.deadlock_a1');
($b, $bpid) = appender(2, 'lock.deadlock_b2');
$a->{stdin} .= "SELECT actloom._audit_to('$co{2}', 'lock.deadlock_a2', NULL, NULL, NULL);\n\\echo a_done\n";
$a->{run}->pump_nb;
ok(waits_for_lock($apid), "a waits for company 2's chain lock");
$b->{stdin} .= "SELECT actloom._audit_to('$co{1}', 'lock.deadlock_b1', NULL, NULL, NULL);\n\\echo b_done\n";
$b->{run}->pump_nb;
my ($bout, $berr) = finish($b, 'b_done');
my ($aout, $aerr) = finish($a, 'a_done');
is(scalar(grep { /deadlock detected/ } $aerr, $berr), 1, 'one of the two is refused with a deadlock')
  or diag("a: $aerr\nb: $berr");
$a->query('COMMIT');
$b->query('COMMIT');
is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM actloom.audit_log WHERE action LIKE 'lock.deadlock_%'}), '2',
	'the other commits both of its entries');
$a->quit;
$b->quit;

is($node->safe_psql('postgres', 'SELECT count(*) FROM actloom.audit_verify() WHERE NOT ok'), '0',
	'every chain verifies');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM (SELECT chain FROM actloom.audit_log GROUP BY chain
						  HAVING max(seq) <> count(*)) gaps}), '0', 'no gaps');

$node->stop;
done_testing();
