# A key's rate-limit budget is spent only by requests that proved its
# secret, with both stores: requests under a genuine key's public id with
# forged secrets (valid checksum), to a real endpoint and to unknown paths,
# are refused by the attacker's address limits, and the genuine key goes on
# being served with its budget untouched, even from the attacker's own
# address.  A key the shim has not seen yet is served as soon as it proves
# itself.  A key the database accepted counts as proved for
# api_keys.verified_ttl_s, and a revoked one is forgotten at its first
# request the database refuses, or when that time has passed.
use strict;
use warnings;
use Compress::Zlib ();
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use ShimTest;

my %classes = (
	api => { limit => 5, period => 300, burst => 5, key => ['api_key'] },
	report => { limit => 3, period => 300, burst => 3, key => ['api_key'] },
	api_auth_failed => { limit => 3, period => 300, burst => 3, key => ['address'] },
);
my $t = ShimTest->new(name => 'budget', config => {
	rate_limits => { classes => \%classes, refusal_delay_ms => 0 },
	trusted_proxies => ['127.0.0.1'],
});
$t->psql(q{SELECT actloom.expose(1, 'POST', 'items', 'public.put_item(jsonb,jsonb)', 'reports.generate', 'report',
	'{"type": "object", "additionalProperties": true}')});
$t->start_shim;
my $db = $t->peer('budget_db');
$db->{config}{rate_limits} = { %{ $t->{config}{rate_limits} }, store => 'database' };
$db->start_shim;

sub joined { my $v = shift; return join(', ', ref $v ? @$v : ($v // '')); }

# A key of the right shape and checksum with the given id and a random secret.
my @base62 = ('0' .. '9', 'A' .. 'Z', 'a' .. 'z');
sub forge
{
	my ($id) = @_;
	my $body = "alk_${id}_" . join('', map { $base62[ int(rand(62)) ] } 1 .. 43);
	my $crc = Compress::Zlib::crc32($body);
	my $sum = '';
	for (1 .. 6) { $sum = $base62[ $crc % 62 ] . $sum; $crc = int($crc / 62); }
	return $body . $sum;
}

sub post
{
	my ($shim, $path, $key, $from) = @_;
	return $shim->request('POST', $path, key => $key, json => { n => 1 }, headers => { 'X-Forwarded-For' => $from });
}

# The state of the key's classes in the database store: it must not move
# but for the genuine key's own requests.
sub key_state
{
	my ($key) = @_;
	my $id = substr($key, 4, 12);
	return $t->psql(qq{SELECT coalesce(string_agg(class || '=' || tat, ',' ORDER BY class), 'none')
		FROM actloom.rate_limits WHERE key_hash = sha256(convert_to('k:$id', 'UTF8'))});
}

for my $shim ($t, $db)
{
	my $store = $shim == $t ? 'memory store' : 'database store';
	my $key = $t->make_key(['reports.*']);
	my $id = substr($key, 4, 12);
	my $items = $t->item_count;

	my $r = post($shim, '/v1/items', $key, '198.51.100.1');
	is($r->{status}, 200, "$store: the genuine key is served");
	like(joined($r->{headers}{ratelimit}), qr/"api";r=4;t=\d+, "report";r=2;t=\d+/, "$store: and charged once");
	my $state = key_state($key);

	# The attack of the issue: 25 forged secrets to the endpoint, 110 to a path that does not exist.
	my @answers = map { post($shim, '/v1/items', forge($id), '203.0.113.66') } 1 .. 25;
	push @answers, map { post($shim, '/v1/nothing', forge($id), '203.0.113.66') } 1 .. 110;
	my %seen;
	$seen{ $_->{status} }++ for @answers;
	is_deeply([ map { $_->{status} } @answers[ 0 .. 2 ] ], [ 401, 401, 401 ], "$store: three forged secrets are checked");
	is_deeply(\%seen, { 401 => 3, 429 => 132 }, "$store: then the attacker's address is refused; never a 404");
	is(scalar(grep { $_->{status} == 429 && ($_->{json}{detail} // '') !~ /"api_auth_failed"/ } @answers), 0,
		"$store: by class \"api_auth_failed\"");
	is(key_state($key), $state, "$store: the key's own classes did not move") if $shim == $db;

	$r = post($shim, '/v1/items', $key, '198.51.100.1');
	is($r->{status}, 200, "$store: the genuine key is still served");
	like(joined($r->{headers}{ratelimit}), qr/"api";r=3;t=\d+, "report";r=1;t=\d+/,
		"$store: its budget spent by its own requests only");

	# Forged secrets from the genuine client's own address: refused, and the
	# genuine key, which the shim saw proved, is not.
	my @own = map { post($shim, '/v1/items', forge($id), '198.51.100.1')->{status} } 1 .. 5;
	is_deeply(\@own, [ 401, 401, 401, 429, 429 ], "$store: forged secrets from the genuine client's address");
	is(post($shim, '/v1/items', $key, '198.51.100.1')->{status}, 200, "$store: the genuine key is served there too");
	is($t->item_count, $items + 3, "$store: only the genuine requests wrote");

	# A key this shim has not seen, attacked first, is served once it proves itself.
	my $fresh = $t->make_key(['reports.*']);
	my @before = map { post($shim, '/v1/items', forge(substr($fresh, 4, 12)), '203.0.113.77')->{status} } 1 .. 4;
	is_deeply(\@before, [ 401, 401, 401, 429 ], "$store: an unused key's id attacked");
	$r = post($shim, '/v1/items', $fresh, '198.51.100.2');
	is($r->{status}, 200, "$store: the key, new to this shim, is served on its first request");
	like(joined($r->{headers}{ratelimit}), qr/"api";r=4;t=\d+/, "$store: with its whole budget");

	# Revoked: what the shim can answer by itself it may still answer for
	# a while (no data), until the database refuses the key once.
	$t->revoke_key($fresh);
	is(post($shim, '/v1/nothing', $fresh, '198.51.100.2')->{status}, 404,
		"$store: a key revoked a moment ago may still learn that a path does not exist");
	is(post($shim, '/v1/items', $fresh, '198.51.100.2')->{status}, 401, "$store: but gets no work done: 401");
	is(post($shim, '/v1/nothing', $fresh, '198.51.100.2')->{status}, 401,
		"$store: and once refused, it is forgotten: 401 for everything");
}

# The time a key counts as proved after the database last accepted it.
my $brief = $t->peer('budget_ttl');
$brief->{config}{api_keys} = { verified_ttl_s => 2 };
$brief->start_shim;
my $key = $t->make_key(['reports.*']);
is(post($brief, '/v1/items', $key, '198.51.100.3')->{status}, 200, 'a key is served');
$t->revoke_key($key);
is(post($brief, '/v1/nothing', $key, '198.51.100.3')->{status}, 404, 'revoked, within the TTL: 404');
sleep 2.5;
is(post($brief, '/v1/nothing', $key, '198.51.100.3')->{status}, 401, 'past it the key is checked again: 401');

is($t->stop_shim, 0, 'memory store shim: SIGTERM, exit 0');
is($db->stop_shim, 0, 'database store shim: SIGTERM, exit 0');
is($brief->stop_shim, 0, 'the third shim: SIGTERM, exit 0');
done_testing();
