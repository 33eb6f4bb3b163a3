# The webhook management API, /api/companies/{company}/webhooks...: every
# route and its refusals, another company's endpoints answering 404, a
# member without webhooks.manage refused, the rate class "webhooks", and
# the secret shown once: in no answer after that, and in no log (the
# server's, with log_statement = all and the gateway role's documented
# settings; the shim's; the access log).
use strict;
use warnings;
use Digest::SHA qw(sha256_hex);
use HTTP::CookieJar;
use HTTP::Tiny;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use ShimTest;
use WebhookReceiver;

my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $keyring = WebhookReceiver::keyring("$dir/keyring");
my $JSON = JSON::PP->new->canonical;
my $PASSWORD = 'Tr0ub4dor&3 staple';
my $keys = "$dir/api.keys";
open my $kf, '>', $keys or die $!;
printf $kf "key k %s\nactive k\n", '55' x 32;
close $kf;
chmod 0600, $keys;
my $origin = 'http://app.example.test';

my $t = ShimTest->new(name => 'whapi', pg_conf => [ "actloom.keyring_file = '$keyring'", 'log_statement = all', 'actloom.webhook_allow_http = on',
	'actloom.webhook_max_endpoints = 2' ],
	config => {
	session => { key_file => $keys, cookie => 'insecure-dev', origins => [$origin] },
	webhooks => { deliver => 'true', allow_networks => ['127.0.0.1/32', '::1/128'], poll_ms => 500 },
	rate_limits => { classes => {
		signup => { limit => 100, period => 60, burst => 100, key => ['address'] },
		login => { limit => 100, period => 60, burst => 100, key => ['address'] },
		manage => { limit => 100000, period => 1, burst => 100000, key => ['user'] },
		webhooks => { limit => 40, period => 600, burst => 40, key => ['user'] },
	} },
});
# The documented settings of the gateway role: its statements carry secrets.
$t->psql(join(';', map { "ALTER ROLE shim SET $_" } "log_statement = 'none'", "log_min_error_statement = 'panic'",
	'log_min_duration_statement = -1', 'log_min_duration_sample = -1', 'log_duration = off',
	'log_parameter_max_length = 0', 'log_parameter_max_length_on_error = 0'));
$t->start_shim;
my $rx = WebhookReceiver->new(dir => "$dir/rx");

sub browser
{
	my %b = (jar => HTTP::CookieJar->new);
	$b{http} = HTTP::Tiny->new(timeout => 10, cookie_jar => $b{jar});
	return \%b;
}

sub call
{
	my ($b, $method, $path, $body) = @_;
	my %h = (Origin => $origin);
	$h{'X-CSRF-Token'} = $b->{csrf} if $b->{csrf};
	my %o = (headers => \%h);
	if (defined $body) { $o{content} = ref $body ? $JSON->encode($body) : $body; $h{'Content-Type'} = 'application/json'; }
	my $r = $b->{http}->request($method, $t->url($path), \%o);
	$r->{json} = eval { $JSON->decode($r->{content}) } if ($r->{content} // '') ne '';
	return $r;
}

sub person
{
	my ($email) = @_;
	my $b = browser();
	my $r = call($b, 'POST', '/auth/signup', { email => $email, password => $PASSWORD, name => $email });
	die "signup $email: $r->{status} $r->{content}" unless $r->{status} == 201;
	$b->{csrf} = $r->{json}{csrf_token};
	$b->{id} = $t->psql("SELECT id FROM actloom.users WHERE email = '$email'");
	return $b;
}

my $alice = person('alice@hooli.test');
my $co = call($alice, 'POST', '/api/companies', { name => 'Hooli' })->{json}{id};
my $bob = person('bob@initech.test');
my $bco = call($bob, 'POST', '/api/companies', { name => 'Initech' })->{json}{id};
my $carol = person('carol@hooli.test');
is(call($alice, 'POST', "/api/companies/$co/members", { email => 'carol@hooli.test', role => 'member' })->{status}, 201,
	'carol joins Hooli as a member');
my $base = "/api/companies/$co/webhooks";

sub state_of { return $t->psql("SELECT count(*), coalesce(string_agg(url || ':' || enabled, ',' ORDER BY url), '')
	FROM actloom.webhook_endpoints WHERE company_id = '$co'"); }

# --- create ---------------------------------------------------------------------------------
my $r = call($alice, 'POST', $base, { url => $rx->url('/ok/api'), description => 'orders', event_types => ['order.*'] });
is($r->{status}, 201, 'create: 201');
my $ep = $r->{json};
like($ep->{secret}, qr/^whsec_[A-Za-z0-9+\/]{43}=$/, 'the secret, once');
like($ep->{id}, qr/^[0-9a-f-]{36}$/, 'an id');
is_deeply($ep->{event_types}, ['order.*'], 'its event types');
$rx->secret('api', $ep->{secret});
my $secrets = [ $ep->{secret} ];

my $second = call($alice, 'POST', $base, { url => $rx->url('/ok/second'), event_types => ['order.*'] });
is($second->{status}, 201, 'a second endpoint');
$r = call($alice, 'POST', $base, { url => $rx->url('/ok/third') });
is($r->{status}, 409, 'a third is over actloom.webhook_max_endpoints: 409');
like($r->{json}{detail}, qr/endpoints/, 'saying so');
is(call($alice, 'PATCH', "$base/$second->{json}{id}", { enabled => JSON::PP::false })->{status}, 200, 'disabled');
is(call($alice, 'POST', "$base/$second->{json}{id}/test")->{status}, 409, 'a test event to a disabled endpoint: 409');
is(call($alice, 'DELETE', "$base/$second->{json}{id}")->{status}, 204, 'and deleted');
push @$secrets, $second->{json}{secret};

my $before = state_of();
for my $bad (
	[ { url => 'ftp://127.0.0.1/x' }, qr/https/i, 'a scheme other than http(s)' ],
	[ { url => 'https://user:pw@hooks.example.com/' }, qr/userinfo|user/i, 'userinfo' ],
	[ { url => 'https://10.0.0.1/' }, qr/private|denied|address/i, 'a private address literal' ],
	[ { url => 'https://hooks.example.com/#frag' }, qr/fragment/i, 'a fragment' ],
	[ { url => 'https://hooks.example.com/', event_types => ['Bad Type'] }, qr/event type/i, 'a malformed event type' ])
{
	my ($body, $re, $what) = @$bad;
	$r = call($alice, 'POST', $base, $body);
	is($r->{status}, 422, "create refuses $what: 422");
	like($r->{json}{detail} // $r->{json}{title} // '', $re, "naming the problem ($what)");
}
$r = call($alice, 'POST', $base, { description => 'no url' });
is($r->{status}, 422, 'create without a url: 422');
$r = call($alice, 'POST', $base, { url => 'https://hooks.example.com/', colour => 'red' });
is($r->{status}, 422, 'an unknown field: 422');
is(state_of(), $before, 'the refusals wrote nothing');

# --- list and get: fingerprints, never secrets ---------------------------------------------------
$r = call($alice, 'GET', $base);
is($r->{status}, 200, 'list: 200');
is(scalar @{ $r->{json} }, 1, 'one endpoint');
ok(!exists $r->{json}[0]{secret}, 'the list shows no secret');
unlike($r->{content}, qr/whsec_/, 'nothing like a secret in it');
my $fp = [ map { $_->{fingerprint} } @{ $r->{json}[0]{secrets} } ];
is($fp->[0], substr(sha256_hex($ep->{secret}), 0, 16), 'the fingerprint is the first 8 bytes of the secret\'s SHA-256');
$r = call($alice, 'GET', "$base/$ep->{id}");
is($r->{status}, 200, 'get: 200');
is($r->{json}{url}, $rx->url('/ok/api'), 'get: its url');
ok(!exists $r->{json}{secret}, 'get shows no secret');
is(call($alice, 'GET', "$base/00000000-0000-0000-0000-000000000000")->{status}, 404, 'an unknown endpoint: 404');
is(call($bob, 'GET', "$base/$ep->{id}")->{status}, 404, 'another company\'s endpoint: 404');
is(call($bob, 'GET', "/api/companies/$bco/webhooks/$ep->{id}")->{status}, 404, 'not even through one\'s own company');
is(call($carol, 'POST', $base, { url => $rx->url('/ok/carol') })->{status}, 403, 'a member may not manage webhooks: 403');
is(call($carol, 'GET', $base)->{status}, 403, 'nor list them');

# --- update ---------------------------------------------------------------------------------------
$r = call($alice, 'PATCH', "$base/$ep->{id}", { description => 'all orders', enabled => JSON::PP::false });
is($r->{status}, 200, 'update: 200');
is($r->{json}{description}, 'all orders', 'description changed');
ok(!$r->{json}{enabled}, 'disabled by a person');
$r = call($alice, 'PATCH', "$base/$ep->{id}", { enabled => JSON::PP::true });
ok($r->{json}{enabled}, 're-enabled');
$before = state_of();
$r = call($alice, 'PATCH', "$base/$ep->{id}", { url => 'https://127.0.0.1/' });
is($r->{status}, 422, 'update to a loopback literal: 422');
is(state_of(), $before, 'and nothing changed');
is(call($bob, 'PATCH', "$base/$ep->{id}", { description => 'x' })->{status}, 404, 'update across companies: 404');

# --- test event, deliveries, redelivery ------------------------------------------------------------
$r = call($alice, 'POST', "$base/$ep->{id}/test");
is($r->{status}, 202, 'test event: 202');
my $test_msg = $r->{json}{message_id};
like($test_msg, qr/^msg_\w+$/, 'with its message id');
my ($got) = grep { ($_->{headers}{'webhook-id'} // '') eq $test_msg } $rx->wait_requests(1, 10, qr{^/ok/api$});
ok($got, 'the test event arrived');
is(decode_json($got->{body})->{type}, 'webhook.test', 'as webhook.test');
is_deeply($got->{verified}, ['api'], 'signed');
call($alice, 'POST', "$base/$ep->{id}/test") for 1 .. 2;
$rx->wait_requests(3, 10, qr{^/ok/api$});
sleep 0.5;
$r = call($alice, 'GET', "$base/$ep->{id}/deliveries?limit=2");
is($r->{status}, 200, 'deliveries: 200');
is(scalar @{ $r->{json}{deliveries} }, 2, 'a page of two');
ok($r->{json}{next}, 'with a cursor to the next');
ok(scalar @{ $r->{json}{deliveries}[0]{attempts} } >= 1, 'each delivery with its attempts');
my $page2 = call($alice, 'GET', "$base/$ep->{id}/deliveries?limit=2&after=" . $r->{json}{next});
is(scalar @{ $page2->{json}{deliveries} }, 1, 'the next page holds the rest');
my %ids = map { ($_->{id} => 1) } @{ $r->{json}{deliveries} }, @{ $page2->{json}{deliveries} };
is(scalar keys %ids, 3, 'no delivery on both pages');
is(call($alice, 'GET', "$base/$ep->{id}/deliveries?limit=0")->{status}, 422, 'limit 0: 422');
my $one = $r->{json}{deliveries}[0]{id};
$r = call($alice, 'POST', "/api/companies/$co/webhook-deliveries/$one/redeliver");
is($r->{status}, 202, 'redeliver one: 202');
is(call($bob, 'POST', "/api/companies/$bco/webhook-deliveries/$one/redeliver")->{status}, 404,
	'redeliver another company\'s delivery: 404');
$r = call($alice, 'POST', "$base/$ep->{id}/redeliver", { since => '2020-01-01T00:00:00Z' });
is($r->{status}, 202, 'redeliver failed since: 202');
is($r->{json}{redelivered}, 0, 'none had failed');
is(call($alice, 'POST', "$base/$ep->{id}/redeliver", { since => 'yesterday' })->{status}, 422, 'a bad time: 422');

# --- rotation -----------------------------------------------------------------------------------------
$r = call($alice, 'POST', "$base/$ep->{id}/rotate-secret", { grace_seconds => 3600 });
is($r->{status}, 200, 'rotate: 200');
like($r->{json}{secret}, qr/^whsec_/, 'the new secret, once');
isnt($r->{json}{secret}, $ep->{secret}, 'a new one');
push @$secrets, $r->{json}{secret};
is(call($alice, 'POST', "$base/$ep->{id}/rotate-secret", { grace_seconds => 8 * 86400 })->{status}, 422,
	'a grace period over 7 days: 422');
$r = call($alice, 'GET', "$base/$ep->{id}");
unlike($r->{content}, qr/whsec_/, 'after rotation still no secret in a read');

# --- the audit trail and the product's events ---------------------------------------------------------
my $actions = $t->psql("SELECT string_agg(DISTINCT action, ',' ORDER BY action) FROM actloom.audit_log
	WHERE chain = '$co' AND action LIKE 'webhook_endpoint.%'");
like($actions, qr/webhook_endpoint\.create/, 'creation audited');
like($actions, qr/webhook_endpoint\.update/, 'update audited');
like($actions, qr/webhook_endpoint\.rotate_secret/, 'rotation audited');
my $audit = $t->psql("SELECT string_agg(detail::text, ' ') FROM actloom.audit_log WHERE chain = '$co'");
unlike($audit, qr/whsec_/, 'no secret in the audit details');
unlike($audit, qr/[0-9a-f]{64}|[A-Za-z0-9+\/]{43}=/, 'nor a whole hash or key');

# --- delete ---------------------------------------------------------------------------------------------
is(call($bob, 'DELETE', "$base/$ep->{id}")->{status}, 404, 'delete across companies: 404');
is(call($alice, 'DELETE', "$base/$ep->{id}")->{status}, 204, 'delete: 204');
is(call($alice, 'GET', "$base/$ep->{id}")->{status}, 404, 'gone');
is(call($alice, 'DELETE', "$base/$ep->{id}")->{status}, 404, 'deleting again: 404');
is($t->psql("SELECT count(*) FROM actloom.webhook_secrets WHERE endpoint_id = '$ep->{id}'"), 0,
	'its secrets went with it');

# --- the rate class -----------------------------------------------------------------------------------
my $limited = 0;
for (1 .. 60) { $limited++ if call($alice, 'GET', $base)->{status} == 429; }
ok($limited > 0, 'the webhooks class limits the routes');

# --- no secret in any log -----------------------------------------------------------------------------
$t->stop_shim;
my $pglog = slurp_file($t->node->logfile);
like($pglog, qr/statement: /, 'the server logs statements (log_statement = all)');
my $logs = $pglog . slurp_file($t->{log}) . slurp_file($t->{access});
for my $s (@$secrets)
{
	(my $raw = $s) =~ s/^whsec_//;
	unlike($logs, qr/\Q$raw\E/, 'a secret is in no log');
}
$rx->stop;
done_testing;
