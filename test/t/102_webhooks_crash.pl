# At-least-once delivery across failures: the delivering shim is killed
# (SIGKILL) with deliveries in flight and started again, and PostgreSQL is
# restarted while events keep coming; every event is delivered at least
# once, none is lost.  Two shims deliver at once throughout, as several
# would behind a load balancer.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use ShimTest;
use WebhookReceiver;

my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $keyring = WebhookReceiver::keyring("$dir/keyring");
my $t = ShimTest->new(name => 'whcrash', pg_conf => [ "actloom.keyring_file = '$keyring'",
	"actloom.webhook_retry_schedule = '0s,1s,1s,1s,1s,1s,1s,1s,1s,1s'", 'actloom.webhook_allow_http = on' ]);
my %webhooks = (deliver => 'true', allow_networks => ['127.0.0.1/32', '::1/128'], connect_timeout_ms => 1000, timeout_ms => 2000, lease_s => 3,
	poll_ms => 500);
$t->{config} = { webhooks => \%webhooks };
$t->start_shim;
my $peer = $t->peer('whcrash_b');
$peer->start_shim;
my $acme = $t->{acme};
my $rx = WebhookReceiver->new(dir => "$dir/rx");
my $out = $t->as_owner($acme, "SELECT actloom.webhook_endpoint_create('$acme', '" . $rx->url('/slow/300/x')
	  . "', 'slow', '{}')->>'id'");
my ($ep) = $out =~ /^([0-9a-f-]{36})$/m;

sub emit_many
{
	my ($from, $to) = @_;
	my $ids = $t->as_owner($acme, "SELECT string_agg(actloom.webhook_emit('load.tick', jsonb_build_object('n', i)), ' ') "
		  . "FROM generate_series($from, $to) i");
	return ($ids =~ /(msg_\w+(?: msg_\w+)*)/)[0] =~ /(msg_\w+)/g;
}

sub wait_all_received
{
	my ($ids, $timeout) = @_;
	my $until = time + $timeout;
	my %got;
	while (time < $until)
	{
		%got = map { ($_->{headers}{'webhook-id'} => 1) } $rx->requests;
		last unless grep { !$got{$_} } @$ids;
		sleep 0.2;
	}
	return scalar grep { !$got{$_} } @$ids;
}

# --- SIGKILL with deliveries in flight --------------------------------------------------
my @ids = emit_many(1, 20);
is(scalar @ids, 20, '20 events emitted');
$rx->wait_requests(2, 10);
$t->signal_shim('KILL');
waitpid($t->{shim_pid}, 0);
$t->{shim_pid} = undef;
$peer->signal_shim('KILL');
waitpid($peer->{shim_pid}, 0);
$peer->{shim_pid} = undef;
my $leased = $t->psql("SELECT count(*) FROM actloom.webhook_deliveries WHERE state = 'delivering'");
ok($leased > 0, "the killed shims left $leased deliveries under lease");
$t->start_shim;
$peer->start_shim;
is(wait_all_received(\@ids, 60), 0, 'after the restart every event arrived at least once');
my $final = $t->psql("SELECT count(*) FROM actloom.webhook_deliveries WHERE endpoint_id = '$ep' AND state <> 'delivered'");
my $until = time + 20;
while ($final ne '0' && time < $until)
{
	sleep 0.2;
	$final = $t->psql("SELECT count(*) FROM actloom.webhook_deliveries WHERE endpoint_id = '$ep' AND state <> 'delivered'");
}
is($final, '0', 'and every delivery ends delivered');

# --- PostgreSQL restarted under load ------------------------------------------------------
my @more = emit_many(21, 40);
$t->node->restart;
push @more, emit_many(41, 60);
is(wait_all_received(\@more, 60), 0, 'delivery resumed by itself after PostgreSQL restarted');
is($t->stop_shim, 0, 'the first shim stops cleanly');
is($peer->stop_shim, 0, 'the second shim stops cleanly');
$rx->stop;
done_testing;
