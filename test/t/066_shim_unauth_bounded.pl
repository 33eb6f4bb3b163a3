# Unauthenticated clients are bounded per address, with both stores: 300
# requests from one address, each with a different self-made key (right
# shape, right checksum) to a real endpoint, get the burst of class
# "api_auth_failed" checked by the database and 429 for the rest, with the
# usual headers and problem; the server log (log_statement = all) counts
# the database's work: exactly that many authentications, and with the
# database store no more round trips than the limit needs.  Every request to /v... is limited per
# address by class "api_address" before any work.
use strict;
use warnings;
use Compress::Zlib ();
use IO::Socket::INET;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use ShimTest;

my %classes = (
	api_address => { limit => 40, period => 600, burst => 40, key => ['address'] },
	api_auth_failed => { limit => 5, period => 60, burst => 5, key => ['address'] },
	report => { limit => 100000, period => 1, burst => 100000, key => ['api_key'] },
);
my $t = ShimTest->new(name => 'bounded',
	pg_conf => [ "log_statement = 'all'", 'log_parameter_max_length = 0' ],
	config => {
		rate_limits => { classes => \%classes, refusal_delay_ms => 0 },
		trusted_proxies => ['127.0.0.1'],
	});
$t->psql(q{SELECT actloom.expose(1, 'POST', 'items', 'public.put_item(jsonb,jsonb)', 'reports.generate', 'report',
	'{"type": "object", "additionalProperties": true}')});
$t->start_shim;
my $db = $t->peer('bounded_db');
$db->{config}{rate_limits} = { %{ $t->{config}{rate_limits} }, store => 'database' };
$db->start_shim;

sub joined { my $v = shift; return join(', ', ref $v ? @$v : ($v // '')); }

my @base62 = ('0' .. '9', 'A' .. 'Z', 'a' .. 'z');
sub self_made
{
	my $body = 'alk_' . join('', map { $base62[ int(rand(62)) ] } 1 .. 12) . '_'
	  . join('', map { $base62[ int(rand(62)) ] } 1 .. 43);
	my $crc = Compress::Zlib::crc32($body);
	my $sum = '';
	for (1 .. 6) { $sum = $base62[ $crc % 62 ] . $sum; $crc = int($crc / 62); }
	return $body . $sum;
}

# Statements the server logged since the last mark whose text matches.
my $mark;
sub mark { $mark = -s $t->node->logfile; }
sub calls
{
	my ($re) = @_;
	my $log = slurp_file($t->node->logfile, $mark);
	return scalar(() = $log =~ /LOG:  execute [^:]*: $re/g);
}

my $items = $t->item_count;
for my $shim ($t, $db)
{
	my $store = $shim == $t ? 'memory store' : 'database store';

	# --- 300 self-made keys from one address ---------------------------------------------
	mark();
	my @r = map {
		$shim->request('POST', '/v1/items', key => self_made(), json => { n => $_ },
			headers => { 'X-Forwarded-For' => '203.0.113.5' })
	} 1 .. 300;
	is_deeply([ map { $_->{status} } @r[ 0 .. 4 ] ], [ (401) x 5 ], "$store: the burst of 5 is checked: 401");
	is(scalar(grep { $_->{status} != 429 } @r[ 5 .. 299 ]), 0, "$store: the other 295 get 429");
	my $first = $r[5];
	is($first->{json}{type}, 'urn:actloom:problem:rate-limited', "$store: a rate-limited problem");
	like($first->{json}{detail}, qr/^Rate limit "api_auth_failed" exceeded: 5 requests per 60 seconds\. Retry in \d+ seconds\.$/,
		"$store: naming the class");
	like($first->{headers}{'retry-after'}, qr/^[1-9]\d*$/, "$store: Retry-After");
	like(joined($first->{headers}{'ratelimit-policy'}), qr/"api_auth_failed";q=5;w=60/, "$store: RateLimit-Policy");
	like(joined($first->{headers}{ratelimit}), qr/"api_auth_failed";r=0;t=\d+/, "$store: RateLimit");
	is(scalar(grep { ($_->{json}{detail} // '') !~ /^Rate limit "api_(auth_failed|address)" exceeded/ } @r[ 5 .. 299 ]),
		0, "$store: every refusal by an address class");
	is(calls('SELECT FROM actloom\\.authenticate_api_key'), 5, "$store: the database authenticated 5 keys, not 300");
	if ($shim == $t)
	{
		is(calls('(?!SELECT actloom\\.rate_limit_purge)'), 5, "$store: and nothing else");
	}
	else
	{
		# The first refusal is the database's; the shim remembers it until
		# its Retry-After and refuses the rest itself.
		is(calls('SELECT class, allowed.*rate_limit_admit'), 6, "$store: 6 round trips: 5 checked, 1 refused");
	}

	# --- clients that hang up before the answer pay as well -------------------------------
	mark();
	for (1 .. 10)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $shim->{port}, Proto => 'tcp')
		  or die "connect: $!";
		print $s "POST /v1/items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " . self_made()
		  . "\r\nX-Forwarded-For: 203.0.113.8\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
		close $s;
	}
	# Wait until the database has checked the burst of them, and a little more.
	for (1 .. 100) { last if calls('SELECT FROM actloom\\.authenticate_api_key') >= 5; sleep 0.05; }
	sleep 0.3;
	my $after = $shim->request('POST', '/v1/items', key => self_made(), json => {},
		headers => { 'X-Forwarded-For' => '203.0.113.8' });
	is($after->{status}, 429, "$store: ten self-made keys sent by clients that hung up exhaust the burst too");

	# --- a genuine key from one address: "api_address" ------------------------------------
	my $key = $t->make_key(['reports.*']);
	mark();
	my @g = map {
		$shim->request('POST', '/v1/items', key => $key, json => {}, headers => { 'X-Forwarded-For' => '198.51.100.9' })
	} 1 .. 45;
	is_deeply([ map { $_->{status} } @g ], [ (200) x 40, (429) x 5 ], "$store: 40 requests from an address, then 429");
	like($g[40]{json}{detail}, qr/^Rate limit "api_address" exceeded: 40 requests per 600 seconds/,
		"$store: by class \"api_address\"");
	like(joined($g[40]{headers}{'ratelimit-policy'}), qr/^"api_address";q=40;w=600$/,
		"$store: before any other class");
	like($g[40]{headers}{'retry-after'}, qr/^[1-9]\d*$/, "$store: with Retry-After");
	is(calls('SELECT public\\.put_item'), 40, "$store: only the 40 reached the endpoint");
}
is($t->item_count, $items + 80, 'only the genuine requests wrote');
unlike(slurp_file($t->node->logfile), qr/alk_/, 'no key in the server log, for all the statements it logged');

# --- requests with no key at all: limited before anything else (memory store) ---------------------
my @n = map { $t->request('GET', '/v1/items', headers => { 'X-Forwarded-For' => '198.51.100.77' })->{status} } 1 .. 41;
is_deeply(\@n, [ (401) x 40, 429 ], 'requests without a key: 40 from an address, then 429');

is($t->stop_shim, 0, 'memory store shim: SIGTERM, exit 0');
is($db->stop_shim, 0, 'database store shim: SIGTERM, exit 0');
done_testing();
