# The address check at connect time, with webhooks.allow_networks empty:
# names that resolve inward (localhost, a name of /etc/hosts), and address
# spellings that getaddrinfo turns into loopback, are refused on the
# address being connected, with outcome refused_address, not retried, and
# the receiver behind them counts zero connections.  (Address literals in a
# denied range are refused already at registration: sql/webhooks.sql.)
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use ShimTest;
use WebhookReceiver;

my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $keyring = WebhookReceiver::keyring("$dir/keyring");
my $t = ShimTest->new(name => 'whrefuse', pg_conf => [ "actloom.keyring_file = '$keyring'", 'actloom.webhook_allow_http = on' ]);
$t->{config} = { webhooks => { deliver => 'true', connect_timeout_ms => 1000, timeout_ms => 2000, poll_ms => 500 } };
$t->start_shim;
my $acme = $t->{acme};
my $rx = WebhookReceiver->new(dir => "$dir/rx");
my $port = $rx->port;

my @names = ("http://localhost:$port/ok/a", "http://LocalHost:$port/ok/b",
	);
my $n = 0;
for my $url (@names)
{
	$n++;
	my $out = $t->as_owner($acme, "SELECT actloom.webhook_endpoint_create('$acme', '$url', 'inward', '{}')->>'id'");
	my ($ep) = $out =~ /^([0-9a-f-]{36})$/m;
	ok($ep, "registered $url (a name: checked at connect time)");
	my $msg = ($t->as_owner($acme, "SELECT actloom.webhook_emit('probe.sent', '{\"n\": $n}')") =~ /^(msg_\w+)$/m)[0];
	my $state = '';
	for (1 .. 200)
	{
		$state = $t->psql("SELECT state FROM actloom.webhook_deliveries WHERE message_id = '$msg' AND endpoint_id = '$ep'");
		last if $state eq 'failed';
		sleep 0.05;
	}
	is($state, 'failed', "$url: failed");
	is($t->psql(qq{SELECT string_agg(a.outcome, ',') FROM actloom.webhook_attempts a
		JOIN actloom.webhook_deliveries d ON d.id = a.delivery_id WHERE d.message_id = '$msg' AND d.endpoint_id = '$ep'}),
		'refused_address', "$url: refused at connect time, once, not retried");
	$t->as_owner($acme, "SELECT actloom.webhook_endpoint_delete('$acme', '$ep')");
}
is($rx->connections, 0, 'the receiver behind them saw no connection at all');
my $metrics = ShimTest::client(5)->get($t->url('/metrics'))->{content};
like($metrics, qr/^actloom_webhook_refused_addresses_total [1-9]/m, 'refusals are counted');
like(slurp_file($t->{log}), qr/refused.*loopback/, 'the shim log names the refused range');
$t->stop_shim;
$rx->stop;
done_testing;
