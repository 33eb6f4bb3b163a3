# A client that has not proved an API key learns nothing about the machine
# endpoints: with no key, a malformed one, a self-made one, or a genuine
# key's id with a forged secret, every request (to a real or an unknown
# endpoint, with the right or a wrong method, with a good or a bad body)
# gets the same 401, in both stores, and writes nothing.  A genuine key gets
# the answers that tell.  A 422 lists at most 50 issues and counts them all,
# and large invalid bodies do not stall /healthz.  Malformed bodies of
# sign-in, sign-up and a secret are refused without quoting them, and a
# problem says where the text went wrong instead.
use strict;
use warnings;
use Compress::Zlib ();
use HTTP::CookieJar;
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use ShimTest;

my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $keys = "$dir/unauth.keys";
open my $kf, '>', $keys or die $!;
printf $kf "key k %s\nactive k\n", '55' x 32;
close $kf;
chmod 0600, $keys;
open my $kr, '>', "$dir/keyring" or die $!;
printf $kr "key 1 %s\nactive 1\n", '66' x 32;
close $kr;
chmod 0600, "$dir/keyring";
my $origin = 'http://app.example.test';

my %classes = (
	api => { limit => 100000, period => 1, burst => 100000, key => ['api_key'] },
	api_address => { limit => 100000, period => 1, burst => 100000, key => ['address'] },
	api_auth_failed => { limit => 100000, period => 1, burst => 100000, key => ['address'] },
	report => { limit => 100000, period => 1, burst => 100000, key => ['api_key'] },
	login => { limit => 100, period => 60, burst => 100, key => ['address'] },
	signup => { limit => 100, period => 60, burst => 100, key => ['address'] },
);
my $t = ShimTest->new(name => 'unauth', pg_conf => ["actloom.keyring_file = '$dir/keyring'"], config => {
	rate_limits => { classes => \%classes },
	session => { key_file => $keys, cookie => 'insecure-dev', origins => [$origin] },
});
$t->psql(q{SELECT actloom.expose(1, 'POST', 'items', 'public.put_item(jsonb,jsonb)', 'reports.generate', 'report',
	'{"type": "object", "properties": {"title": {"type": "string", "maxLength": 8}}, "required": ["title"]}')});
$t->start_shim;
my $db = $t->peer('unauth_db');
$db->{config}{rate_limits} = { store => 'database', classes => \%classes };
$db->start_shim;
my $key = $t->make_key(['reports.*']);

# A key of the right shape and checksum: the given id and secret.
sub key_with
{
	my ($id, $secret) = @_;
	my $body = "alk_${id}_$secret";
	my $crc = Compress::Zlib::crc32($body);
	my @a = ('0' .. '9', 'A' .. 'Z', 'a' .. 'z');
	my $sum = '';
	for (1 .. 6) { $sum = $a[$crc % 62] . $sum; $crc = int($crc / 62); }
	return $body . $sum;
}
(my $flipped = $key) =~ s/^(.{30})(.)/$1 . ($2 eq 'a' ? 'b' : 'a')/e;
my %credentials = (
	'no Authorization' => undef,
	'a Basic credential' => "Basic $key",
	'a malformed key' => 'Bearer alk_short',
	'a bad checksum' => "Bearer $flipped",
	'a self-made key' => 'Bearer ' . ShimTest::forged_key(),
	'a genuine key id with a forged secret' => 'Bearer ' . key_with(substr($key, 4, 12), 'F' x 43),
);
my $valid = { title => 'ab' };
my @requests = (
	[ 'POST', '/v1/items', json => $valid, 'a valid request' ],
	[ 'GET', '/v1/items', 'a wrong method' ],
	[ 'DELETE', '/v1/items', 'another wrong method' ],
	[ 'POST', '/v1/nothing', json => $valid, 'an unknown endpoint' ],
	[ 'POST', '/v2/items', json => $valid, 'an unknown version' ],
	[ 'POST', '/vx', json => $valid, 'an unversioned path' ],
	[ 'POST', '/v1/items', body => '{"title":"ab"}', headers => { 'Content-Type' => 'text/plain' }, 'a text body' ],
	[ 'POST', '/v1/items', body => '{"title":', headers => { 'Content-Type' => 'application/json' }, 'malformed JSON' ],
	[ 'POST', '/v1/items', json => { title => 'far too long', extra => 1 }, 'a body against the schema' ],
	[ 'POST', '/v1/items', 'no body' ],
	[ 'POST', '/v1/items?x=1', json => $valid, 'an unknown query parameter' ],
);

sub send_one
{
	my ($shim, $auth, $req) = @_;
	my ($method, $path, @rest) = @$req;
	my %opt = @rest[ 0 .. $#rest - 1 ];
	$opt{headers} = { %{ $opt{headers} || {} }, defined $auth ? (Authorization => $auth) : () };
	return $shim->request($method, $path, %opt);
}

# What must be the same in every 401: status, headers but the changing
# ones, and the problem but its request id.
sub shape
{
	my ($r, $with_headers) = @_;
	my %problem = %{ $r->{json} || {} };
	delete $problem{request_id};
	my %h = %{ $r->{headers} };
	delete @h{qw(date x-request-id ratelimit)};
	return $ShimTest::JSON->encode({ status => $r->{status}, problem => \%problem,
		$with_headers ? (headers => \%h) : () });
}

my $items = $t->item_count;
for my $shim ($t, $db)
{
	my $store = $shim == $t ? 'memory store' : 'database store';
	# With the database store a request answered without the database is
	# not counted, and so carries no RateLimit headers: compare bodies there.
	my $with_headers = $shim == $t;
	my ($reference, $first);
	for my $c (sort keys %credentials)
	{
		for my $req (@requests)
		{
			my $r = send_one($shim, $credentials{$c}, $req);
			my $got = shape($r, $with_headers);
			if (!defined $reference)
			{
				$reference = $got;
				$first = $r;
				is($r->{status}, 401, "$store: 401");
				is($r->{json}{type}, 'urn:actloom:problem:unauthorized', "$store: an unauthorized problem");
				is($r->{json}{detail}, 'A valid API key is required: Authorization: Bearer <key>.',
					"$store: the detail says what is required");
				is($r->{headers}{'www-authenticate'}, 'Bearer realm="actloom"', "$store: WWW-Authenticate");
				next;
			}
			is($got, $reference, "$store: $c, $req->[-1]: the same 401");
		}
	}
	unlike($first->{content}, qr/items|report|schema|POST|maxLength/, "$store: the 401 names nothing of the endpoint");
}
is($t->item_count, $items, 'nothing was written');

# The size limit is h2o's, before any handler: the same 413 on every path.
my @too_large = map {
	$t->raw("POST $_ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n", first => 1)
} '/v1/items', '/v1/nothing', '/healthz';
is_deeply([ map { m{^HTTP/1\.1 (\d+)} ? $1 : $_ } @too_large ], [ 413, 413, 413 ],
	'a body announced over the limit: 413 on every path alike');

# --- a genuine key gets the answers that tell ---------------------------------------------------
my %told = (
	'a valid request' => 200, 'a wrong method' => 405, 'another wrong method' => 405,
	'an unknown endpoint' => 404, 'an unknown version' => 404, 'an unversioned path' => 404, 'a text body' => 415,
	'malformed JSON' => 400, 'a body against the schema' => 422, 'no body' => 422,
	'an unknown query parameter' => 422,
);
for my $req (@requests)
{
	is(send_one($t, "Bearer $key", $req)->{status}, $told{ $req->[-1] }, "genuine key, $req->[-1]: $told{$req->[-1]}");
}

# --- a 422 is bounded, and counts every issue ------------------------------------------------------
# Nearly 1 MiB: a valid title and 90,000 properties the schema does not allow.
my $props = 90_000;
my $big = '{"title":"ab"' . join('', map { ",\"x$_\":0" } 0 .. $props - 1) . '}';
ok(length($big) < 1024 * 1024, 'the invalid body is within the size limit (' . length($big) . ' bytes)');
my $started = time;
my $r = $t->request('POST', '/v1/items', key => $key, body => $big, headers => { 'Content-Type' => 'application/json' });
my $took = time - $started;
is($r->{status}, 422, 'a body with 90,000 unknown properties: 422');
is(scalar @{ $r->{json}{issues} }, 50, 'the first 50 issues are listed');
is($r->{json}{issue_count}, $props, 'issue_count says how many there were');
is_deeply([ map { $_->{path} } @{ $r->{json}{issues} }[ 0, 49 ] ], [ '/x0', '/x49' ], 'in document order');
ok(length($r->{content}) < 16384, 'the answer stays small (' . length($r->{content}) . ' bytes)');
diag(sprintf('the 1 MiB invalid body was answered in %.0f ms', $took * 1000));
$r = $t->request('POST', '/v1/items', key => $key, json => { title => 'far too long', extra => 1 });
is($r->{json}{issue_count}, 2, 'a small 422 counts its issues too');

# --- /healthz while large invalid bodies arrive ---------------------------------------------------
# Eight clients post the body above as fast as they can, for three seconds;
# meanwhile /healthz is asked every 50 ms.
my @senders;
for my $i (1 .. 8)
{
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		my $until = time + 3;
		my $http = HTTP::Tiny->new(timeout => 10);
		while (time < $until)
		{
			$http->request('POST', $t->url('/v1/items'), { content => $big,
				headers => { 'Content-Type' => 'application/json', Authorization => "Bearer $key" } });
		}
		POSIX::_exit(0);
	}
	push @senders, $pid;
}
sleep 0.3;
my @latency;
my $health = HTTP::Tiny->new(timeout => 10);
while (@latency < 40)
{
	my $t0 = time;
	my $s = $health->get($t->url('/healthz'))->{status};
	push @latency, [ time - $t0, $s ];
	sleep 0.05;
}
waitpid($_, 0) for @senders;
my @ms = sort { $a <=> $b } map { $_->[0] * 1000 } @latency;
is(scalar(grep { $_->[1] != 200 } @latency), 0, '/healthz answered 200 every time');
diag(sprintf('/healthz under load: median %.0f ms, 90th percentile %.0f ms, max %.0f ms', $ms[ $#ms / 2 ], $ms[ int($#ms * 0.9) ], $ms[-1]));
# The machine's cores are busy parsing meanwhile: what must not happen is a
# loop stalled for the length of a request.
ok($ms[-1] < 1000, sprintf('/healthz never waited for a request to be validated: at most %.0f ms', $ms[-1]));
ok($ms[ int($#ms * 0.9) ] < 250, sprintf('/healthz stays fast: 90th percentile %.0f ms', $ms[ int($#ms * 0.9) ]));

# Clients that hang up while their body is being checked: the checks are
# dropped when done (the sanitizer build finds anything left or freed twice).
for (1 .. 8)
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->{port}, Proto => 'tcp') or die "connect: $!";
	print $s "POST /v1/items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $key\r\nContent-Type: application/json\r\n"
	  . 'Content-Length: ' . length($big) . "\r\n\r\n$big";
	close $s;
}
is($t->request('POST', '/v1/items', key => $key, json => $valid)->{status}, 200, 'served on after clients hung up');

# --- malformed bodies that carry secrets are not quoted back ---------------------------------------
my $jar = HTTP::CookieJar->new;
my $browser = HTTP::Tiny->new(timeout => 10, cookie_jar => $jar);
sub raw_post
{
	my ($path, $body, %headers) = @_;
	my $r = $browser->request('POST', $t->url($path), { content => $body,
		headers => { 'Content-Type' => 'application/json', Origin => $origin, %headers } });
	$r->{json} = eval { $ShimTest::JSON->decode($r->{content}) };
	return $r;
}
my @secret_bodies = (
	[ '/auth/login', qq({"email":"p\@example.com",\n "password":"Hunter2-SECRET\\q"}), 'an invalid escape', 2 ],
	[ '/auth/login', qq({"email":"p\@example.com","password":"Hunter2-SECRET\xff"}), 'invalid UTF-8', 1 ],
	[ '/auth/login', qq({"email":"p\@example.com","password":"Hunter2-SECRET\x01"}), 'a control character', 1 ],
	[ '/auth/signup', qq({"email":"p\@example.com","name":"P","password":"Hunter2-SECRET), 'a truncated text', 1 ],
	[ '/auth/signup', qq({"email":"p\@example.com","name":"P","password":"Hunter2-SECRET\\uD834"}),
		'a lone surrogate escape', 1 ],
);
for my $c (@secret_bodies)
{
	my ($path, $body, $what, $line) = @$c;
	$r = raw_post($path, $body);
	is($r->{status}, 400, "$path, $what: 400");
	like($r->{json}{detail}, qr/^invalid JSON at line $line, column \d+: [a-z][a-zA-Z0-9 -]+$/,
		"$path, $what: the detail says where ($r->{json}{detail})");
	unlike($r->{content}, qr/Hunter2|SECRET|\\\\q|0x|D834/i, "$path, $what: and quotes nothing of the body");
}
$r = raw_post('/auth/signup', $ShimTest::JSON->encode({ email => 'p@example.com', name => 'P',
	password => 'Tr0ub4dor&3 staple' }));
is($r->{status}, 201, 'a person signs up');
my $csrf = $r->{json}{csrf_token};
$r = raw_post('/api/companies', '{"name":"Initech"}', 'X-CSRF-Token' => $csrf);
is($r->{status}, 201, 'and creates a company');
my $company = $r->{json}{id};
$r = $browser->request('PUT', $t->url("/api/companies/$company/secrets/stripe"), {
	content => '{"value":"sk_live_Hunter2-SECRET\q"}',
	headers => { 'Content-Type' => 'application/json', Origin => $origin, 'X-CSRF-Token' => $csrf } });
is($r->{status}, 400, 'a malformed secret: 400');
unlike($r->{content}, qr/Hunter2|SECRET|sk_live/, 'without quoting it');
like($r->{content}, qr/invalid JSON at line 1, column \d+/, 'saying where');

is($t->stop_shim, 0, 'memory store shim: SIGTERM, exit 0');
is($db->stop_shim, 0, 'database store shim: SIGTERM, exit 0');
done_testing();
