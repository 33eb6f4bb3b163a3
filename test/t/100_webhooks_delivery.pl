# Webhook delivery end to end: a real shim delivering to receivers on
# loopback (test/lib/perl/WebhookReceiver.pm) that verify every signature
# with their own HMAC.  Signatures and headers, the body byte for byte,
# rotation, the transactional outbox, every outcome and the (compressed)
# retry schedule, Retry-After, 410, automatic disabling, redirects not
# followed, oversized answers cut off, a hanging receiver timed out while a
# healthy one keeps receiving, and TLS refused until its CA is configured.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use ShimTest;
use WebhookReceiver;

my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $keyring = WebhookReceiver::keyring("$dir/keyring");
my $t = ShimTest->new(name => 'webhooks', pg_conf => [ "actloom.keyring_file = '$keyring'",
	# The schedule compressed: attempts at once, after 1 s and after 2 s.
	"actloom.webhook_retry_schedule = '0s,1s,2s'",
	'actloom.webhook_allow_http = on',
]);
my %webhooks = (
	deliver => 'true',
	allow_networks => ['127.0.0.1/32', '::1/128'],
	connect_timeout_ms => 1000,
	timeout_ms => 2000,
	lease_s => 10,
	poll_ms => 500,
);
$t->{config} = { webhooks => \%webhooks };
$t->start_shim;
my $acme = $t->{acme};
my $rx = WebhookReceiver->new(dir => "$dir/rx");
my $json = JSON::PP->new->canonical;

# A new endpoint of Acme for the receiver's path; returns (id, secret).
sub endpoint
{
	my ($url, $types) = @_;
	my $list = join(',', map { "'$_'" } @{ $types || [] });
	my $out = $t->as_owner($acme, "SELECT actloom.webhook_endpoint_create('$acme', '$url', 'test', "
		  . "ARRAY[$list]::text[])::text");
	my ($line) = grep { /^\{/ } split /\n/, $out;
	my $ep = decode_json($line);
	return ($ep->{id}, $ep->{secret});
}

# Emits an event in Acme, as an application would; returns the message id.
sub emit
{
	my ($type, $payload) = @_;
	my $out = $t->as_owner($acme, "SELECT actloom.webhook_emit('$type', '$payload')");
	my ($id) = $out =~ /^(msg_\w+)$/m or die "no message id in: $out";
	return $id;
}

# The request that carried a message, once it arrived.
sub arrival
{
	my ($receiver, $msg, $timeout) = @_;
	my $until = time + ($timeout // 10);
	while (time < $until)
	{
		my ($r) = grep { ($_->{headers}{'webhook-id'} // '') eq $msg } $receiver->requests;
		return $r if $r;
		sleep 0.02;
	}
	return undef;
}

# The delivery of a message to an endpoint once it reached the state wanted.
sub wait_state
{
	my ($msg, $ep, $state, $timeout) = @_;
	my $until = time + ($timeout // 20);
	my $got;
	while (time < $until)
	{
		$got = $t->psql("SELECT state FROM actloom.webhook_deliveries WHERE message_id = '$msg' AND endpoint_id = '$ep'");
		return $got if $got eq $state;
		sleep 0.05;
	}
	return $got;
}

sub attempts
{
	my ($msg, $ep) = @_;
	return $t->psql(qq{SELECT string_agg(concat_ws(':', a.outcome, a.http_status), ',' ORDER BY a.started_at)
		FROM actloom.webhook_attempts a JOIN actloom.webhook_deliveries d ON d.id = a.delivery_id
		WHERE d.message_id = '$msg' AND d.endpoint_id = '$ep'});
}

# --- signatures, headers, the body as stored ------------------------------------------
# Each endpoint below subscribes to event types of its own, so that it
# receives only what its test emits (the product's own events included).
my ($ep1, $secret1) = endpoint($rx->url('/ok/one'), ['order.*']);
like($secret1, qr/^whsec_[A-Za-z0-9+\/]{43}=$/, 'the secret is shown once, as whsec_ and 32 bytes of base64');
$rx->secret('one', $secret1);
my $t0 = time;
my $msg = emit('order.created', '{"n": 1, "name": "caf\u00e9"}');
my $req = arrival($rx, $msg);
ok($req, 'the event arrived');
my $latency = time - $t0;
my $h = $req->{headers};
is($h->{'webhook-id'}, $msg, 'webhook-id is the message id');
ok(abs($h->{'webhook-timestamp'} - time) < 30, 'webhook-timestamp is the time of the attempt');
is_deeply($req->{verified}, ['one'], 'the signature verifies with the endpoint\'s secret (independent HMAC)');
is($h->{'content-type'}, 'application/json', 'Content-Type');
like($h->{'user-agent'}, qr{^actloom-webhooks/\d+\.\d+$}, 'User-Agent names the product');
ok(!exists $h->{'accept-encoding'}, 'no compressed answers asked for');
is($req->{method}, 'POST', 'POST');
my $stored = $t->psql("SELECT body FROM actloom.webhook_messages WHERE id = '$msg'");
is($req->{body}, $stored, 'the body received is byte for byte the body stored and signed');
my $body = decode_json($req->{body});
is($body->{type}, 'order.created', 'envelope: type');
is_deeply($body->{data}, { n => 1, name => "caf\x{e9}" }, 'envelope: data');
like($body->{timestamp}, qr/^\d{4}-\d\d-\d\dT/, 'envelope: timestamp');
is(wait_state($msg, $ep1, 'delivered'), 'delivered', 'the delivery is marked delivered');
is(attempts($msg, $ep1), 'delivered:200', 'one attempt, delivered with 200');
diag(sprintf('commit to receipt: %.0f ms', $latency * 1000));

# --- rotation: both signatures during the grace period, the new one after -------------
my $rot = $t->as_owner($acme, "SELECT actloom.webhook_rotate_secret('$acme', '$ep1')::text");
my ($rotated) = grep { /^\{/ } split /\n/, $rot;
my $secret1b = decode_json($rotated)->{secret};
isnt($secret1b, $secret1, 'rotation gives a new secret');
$rx->secret('one-new', $secret1b);
$msg = emit('order.created', '{"n": 2}');
$req = arrival($rx, $msg);
is_deeply([ sort @{ $req->{verified} } ], [ 'one', 'one-new' ], 'during the grace period both secrets sign');
is(scalar(split / /, $req->{headers}{'webhook-signature'}), 2, 'two signatures, space-separated');
$t->psql("UPDATE actloom.webhook_secrets SET expires_at = now() - interval '1 second'
	WHERE endpoint_id = '$ep1' AND expires_at IS NOT NULL");
$msg = emit('order.created', '{"n": 3}');
$req = arrival($rx, $msg);
is_deeply($req->{verified}, ['one-new'], 'after the grace period only the new secret signs');

# --- an endpoint with no event types receives everything, the product's own events too
my ($epall, $allsecret) = endpoint($rx->url('/ok/all'));
$rx->secret('all', $allsecret);
my ($later) = endpoint($rx->url('/ok/later'), ['never.sent']);
my $created;
for (1 .. 200)
{
	($created) = grep { decode_json($_->{body})->{type} eq 'webhook.endpoint_created' && $_->{body} =~ /\Q$later\E/ }
	  $rx->requests;
	last if $created;
	sleep 0.05;
}
ok($created, 'an endpoint subscribed to everything receives webhook.endpoint_created');
is_deeply($created->{verified}, ['all'], 'signed with its own secret');
unlike($created->{body}, qr/whsec_|secret"\s*:/, 'the event carries no secret');
$t->as_owner($acme, "SELECT actloom.webhook_endpoint_delete('$acme', '$epall')");

# --- the outbox: nothing before the commit, nothing after a rollback ------------------
my $before = $t->psql('SELECT count(*) FROM actloom.webhook_messages');
$t->psql(qq{BEGIN; SET LOCAL ROLE shim;
	SELECT actloom.act_as('$t->{owner}{$acme}', '$acme');
	SELECT actloom.webhook_emit('order.created', '{"n": 4}'); ROLLBACK;});
is($t->psql('SELECT count(*) FROM actloom.webhook_messages'), $before, 'a rolled-back emit leaves no message');
my $s = $t->node->background_psql('actloom', on_error_stop => 1);
$s->query_safe(qq{BEGIN; SET LOCAL ROLE shim;
	SELECT actloom.act_as('$t->{owner}{$acme}', '$acme')});
my $open = $s->query_safe(q{SELECT actloom.webhook_emit('order.created', '{"n": 5}')});
sleep 1;
is($t->psql("SELECT count(*) FROM actloom.webhook_deliveries WHERE message_id = '$open'"), 0,
	'no delivery is visible before the commit');
is(scalar(grep { $_->{headers}{'webhook-id'} eq $open } $rx->requests), 0, 'and none was sent');
$s->query_safe('COMMIT');
$s->quit;
ok(arrival($rx, $open), 'delivered once committed');
is(scalar(grep { $_->{body} =~ /"n": ?4/ } $rx->requests), 0, 'the rolled-back event never arrived');

# --- outcomes and the schedule ---------------------------------------------------------------
my ($ep500) = endpoint($rx->url('/status/500/a'), ['retry.always']);
$msg = emit('retry.always', '{"n": 6}');
is(wait_state($msg, $ep500, 'failed'), 'failed', 'a receiver that keeps answering 500 ends failed');
is(attempts($msg, $ep500), 'http_status:500,http_status:500,http_status:500', 'after the three attempts of the schedule');
my $gaps = $t->psql(qq{SELECT string_agg(round(extract(epoch FROM a.started_at - lag)::numeric, 1)::text, ',')
	FROM (SELECT started_at, lag(started_at) OVER (ORDER BY started_at) FROM actloom.webhook_attempts a
	JOIN actloom.webhook_deliveries d ON d.id = a.delivery_id WHERE d.message_id = '$msg') a WHERE lag IS NOT NULL});
my @gaps = split /,/, $gaps;
ok($gaps[0] >= 0.8 && $gaps[0] <= 2.5 && $gaps[1] >= 1.6 && $gaps[1] <= 3.5, "retries 1 s and 2 s apart, with jitter ($gaps)");
is($t->psql(qq{SELECT a.response FROM actloom.webhook_attempts a JOIN actloom.webhook_deliveries d
	ON d.id = a.delivery_id WHERE d.message_id = '$msg' LIMIT 1}), '{"status":500}', 'the response body is recorded');

my ($epfail) = endpoint($rx->url('/fail/1/b'), ['retry.once']);
$msg = emit('retry.once', '{"n": 7}');
is(wait_state($msg, $epfail, 'delivered'), 'delivered', 'a failure, then delivered on the retry');
is(attempts($msg, $epfail), 'http_status:500,delivered:200', 'two attempts recorded');

my ($epra) = endpoint($rx->url('/retry-after/503/2/c'), ['retry.after']);
$msg = emit('retry.after', '{"n": 8}');
my @ra = map { $_->{at} } $rx->wait_requests(2, 10, qr{^/retry-after/503/2/c$});
ok($ra[1] - $ra[0] >= 1.8 && $ra[1] - $ra[0] <= 2.8,
	sprintf('Retry-After: 2 is honoured within [step, twice the step] (%.1f s)', $ra[1] - $ra[0]));

my ($ep410) = endpoint($rx->url('/status/410/d'), ['gone.*']);
$msg = emit('gone.first', '{"n": 9}');
is(wait_state($msg, $ep410, 'failed'), 'failed', '410: the delivery fails at once');
is($t->psql("SELECT enabled FROM actloom.webhook_endpoints WHERE id = '$ep410'"), 'f', '410 disables the endpoint');
like($t->psql("SELECT detail::text FROM actloom.audit_log WHERE chain = '$acme' AND action = 'webhook_endpoint.disable'
	ORDER BY seq DESC LIMIT 1"), qr/410/, 'the disabling is audited with its reason');
emit('gone.second', '{"n": 10}');
sleep 1;
is(scalar(grep { $_->{path} eq '/status/410/d' } $rx->requests), 1, 'a disabled endpoint receives nothing more');

my $rx2 = WebhookReceiver->new(dir => "$dir/rx2");
my ($ep302) = endpoint($rx->url('/redirect/' . $rx2->port . '/e'), ['redirect.sent']);
$msg = emit('redirect.sent', '{"n": 11}');
is(wait_state($msg, $ep302, 'failed'), 'failed', 'a 302 is a failed attempt');
like(attempts($msg, $ep302), qr/^http_status:302/, 'recorded as status 302');
is($rx2->connections, 0, 'the redirect target saw no connection');

my ($ephuge) = endpoint($rx->url('/huge/f'), ['huge.sent']);
$msg = emit('huge.sent', '{"n": 12}');
wait_state($msg, $ephuge, 'failed');
like(attempts($msg, $ephuge), qr/^response_too_large:200/, 'an oversized answer is cut off');
is($t->psql(qq{SELECT max(length(a.response)) FROM actloom.webhook_attempts a JOIN actloom.webhook_deliveries d
	ON d.id = a.delivery_id WHERE d.message_id = '$msg'}), 4096, 'and 4 KiB of it kept');

# A receiver that never answers holds its attempts until the timeout; a
# healthy endpoint keeps receiving meanwhile.
my ($ephang) = endpoint($rx->url('/hang/g'), ['hang.*']);
my ($epfast, $fastsecret) = endpoint($rx->url('/ok/fast'), ['hang.*']);
$msg = emit('hang.first', '{"n": 13}');
sleep 0.3;
my $t1 = time;
my $fast = emit('hang.second', '{"n": 14}');
is(wait_state($fast, $epfast, 'delivered', 5), 'delivered', 'the healthy endpoint received while the other hangs');
ok(time - $t1 < 1.5, sprintf('within %.2f s, not behind the hanging one', time - $t1));
is(wait_state($msg, $ephang, 'failed', 20), 'failed', 'the hanging receiver ends failed');
like(attempts($msg, $ephang), qr/^timeout/, 'its attempts timed out');

# --- TLS: refused until the receiver's CA is configured ------------------------------------
my $tls = WebhookReceiver->new(dir => "$dir/rxtls", tls => 1);
my ($eptls, $tlssecret) = endpoint($tls->url('/ok/tls'), ['tls.sent']);
$tls->secret('tls', $tlssecret);
$msg = emit('tls.sent', '{"n": 15}');
is(wait_state($msg, $eptls, 'failed'), 'failed', 'a self-signed receiver is refused');
like(attempts($msg, $eptls), qr/^tls/, 'with outcome tls');
$t->stop_shim;
$t->{config} = { webhooks => { %webhooks, ca_file => $tls->{cert} } };
$t->start_shim;
$msg = emit('tls.sent', '{"n": 16}');
is(wait_state($msg, $eptls, 'delivered'), 'delivered', 'delivered once webhooks.ca_file names its CA');
my $treq = arrival($tls, $msg);
is_deeply($treq->{verified}, ['tls'], 'over TLS, signed');

# --- automatic disabling --------------------------------------------------------------------
$t->psql("ALTER SYSTEM SET actloom.webhook_disable_after = '1s'");
$t->psql('SELECT pg_reload_conf()');
my ($epdown) = endpoint($rx->url('/status/503/h'), ['down.sent']);
$msg = emit('down.sent', '{"n": 17}');
wait_state($msg, $epdown, 'failed');
is($t->psql("SELECT enabled FROM actloom.webhook_endpoints WHERE id = '$epdown'"), 'f',
	'an endpoint whose every attempt failed for webhook_disable_after is disabled');
like($t->psql("SELECT detail::text FROM actloom.audit_log WHERE chain = '$acme' AND action = 'webhook_endpoint.disable'
	ORDER BY seq DESC LIMIT 1"), qr/automatic|failed/i, 'audited as automatic');

# --- metrics and logs ----------------------------------------------------------------------
my $metrics = ShimTest::client(5)->get($t->url('/metrics'))->{content};
like($metrics, qr/^actloom_webhook_attempts_total\{outcome="delivered"\} [1-9]/m, 'metrics: deliveries by outcome');
like($metrics, qr/^actloom_webhook_attempts_total\{outcome="http_status"\} [1-9]/m, 'metrics: failed statuses');
like($metrics, qr/^actloom_webhook_attempt_duration_seconds_count [1-9]/m, 'metrics: attempt durations');
like($metrics, qr/^actloom_webhook_in_flight \d+$/m, 'metrics: transfers in flight');
like($metrics, qr/^actloom_webhook_due \d+$/m, 'metrics: deliveries due and not claimed');
$t->stop_shim;
my $logs = slurp_file($t->{log}) . slurp_file($t->{access});
for my $secret ($secret1, $secret1b, $fastsecret, $tlssecret)
{
	(my $raw = $secret) =~ s/^whsec_//;
	unlike($logs, qr/\Q$raw\E/, 'no secret in the shim logs');
}
unlike($logs, qr/v1,[A-Za-z0-9+\/]{43}=/, 'no signature in the shim logs');
unlike($t->access_log, qr/127\.0\.0\.1:\d+\/(ok|status|hang)/, 'outbound requests are not in the access log');

$rx->stop;
$rx2->stop;
$tls->stop;
done_testing;
