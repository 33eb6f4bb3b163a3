# The shim under trouble: the database going away and coming back, a query
# past its timeout, SIGTERM with requests in flight, and hostile HTTP.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);
use ShimTest;

my $t = ShimTest->new(name => 'resilience', config => {
	limits => { body_bytes => 65536, header_bytes => 4096, json_depth => 16, request_timeout_ms => 1500 },
});
$t->psql(q{CREATE FUNCTION public.nap(body jsonb, query jsonb) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('slept', (body ->> 'seconds')::float8) FROM pg_sleep((body ->> 'seconds')::float8)
$$});
$t->psql(q{SELECT actloom.expose(1, 'POST', 'nap', 'public.nap(jsonb,jsonb)', 'reports.read', 'api',
	'{"type": "object", "properties": {"seconds": {"type": "number", "maximum": 5}}}')});
$t->psql(q{SELECT actloom.expose(1, 'POST', 'items', 'public.put_item(jsonb,jsonb)', 'reports.generate', 'api',
	'{"type": "object", "additionalProperties": true}')});
$t->start_shim;
my $key = $t->make_key(['reports.*']);

# --- the database goes away and comes back ---------------------------------------------
is($t->request('POST', '/v1/items', key => $key, json => {})->{status}, 200, 'served');
$t->node->stop('fast');
my $r = $t->request('POST', '/v1/items', key => $key, json => {});
is($r->{status}, 503, 'database stopped: 503');
like($r->{headers}{'retry-after'}, qr/^\d+$/, 'with Retry-After');
is($r->{json}{type}, 'urn:actloom:problem:unavailable', 'an unavailable problem');
is($t->request('GET', '/readyz')->{status}, 503, '/readyz says not ready');
is($t->request('GET', '/healthz')->{status}, 200, '/healthz: the process is alive');
$t->node->start;
my $status = 0;
my $start = time;
for (1 .. 200) { $status = $t->request('POST', '/v1/items', key => $key, json => {})->{status}; last if $status == 200; sleep 0.05; }
is($status, 200, 'database back: served again without restarting the shim');
cmp_ok(time - $start, '<', 8, 'recovered within the backoff');
like($t->request('GET', '/metrics')->{content}, qr/actloom_db_reconnects_total [1-9]/, 'reconnects are counted');

# --- a query past its timeout --------------------------------------------------------------
# Right after the outage another thread's pool may still be reconnecting
# (503); the timeout is what this checks.
for (1 .. 20)
{
	$r = $t->request('POST', '/v1/nap', key => $key, json => { seconds => 4 });
	last if $r->{status} != 503;
	sleep 0.25;
}
is($r->{status}, 504, 'a query past the timeout: 504');
is($t->request('POST', '/v1/nap', key => $key, json => { seconds => 0 })->{status}, 200, 'and the next is served');

# --- hostile HTTP ---------------------------------------------------------------------------------
my $out = $t->raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " . ('a' x 5000) . "\r\n\r\n", first => 1);
like($out, qr{^HTTP/1\.1 431}, 'headers over the configured limit: 431');
$out = $t->raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " . ('a' x 20000) . "\r\n\r\n");
like($out, qr{^HTTP/1\.1 4\d\d|^$}, 'headers over what h2o reads: refused or closed');
$out = $t->raw("POST /v1/items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer $key\r\nContent-Type: application/json\r\n"
	. "Content-Length: 1000000\r\n\r\n" . ('x' x 1000), first => 1);
like($out, qr{^HTTP/1\.1 413}, 'a body over the limit: 413');
like($out, qr{\r\nx-content-type-options: nosniff\r\n}i, 'h2o\'s own 413 carries the security headers');
like($out, qr{\r\ncontent-security-policy: default-src 'none'}i, 'with the content security policy');
unlike($out, qr{\r\nserver: h2o}i, 'and no h2o version');
my $big = '{"a":"' . ('x' x 70000) . '"}';
$r = $t->request('POST', '/v1/items', key => $key, body => $big, headers => { 'Content-Type' => 'application/json' });
is($r->{status}, 413, 'a chunk of body over the limit via the client: 413');
$out = $t->raw("GET /he\0althz HTTP/1.1\r\nHost: x\r\n\r\n", first => 1);
like($out, qr{^HTTP/1\.1 400|^$}, 'a NUL byte in the request line: 400 or closed');
$out = $t->raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", first => 1);
like($out, qr{^HTTP/1\.1 400|^$}, 'a NUL byte in a header: 400 or closed');
$out = $t->raw("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" . ("\xff" x 200), first => 1);
unlike($out, qr{^HTTP/1\.1 200}, 'binary garbage is not served');
$r = $t->request('GET', "/v1/items/\xff\xfe", key => $key);
ok($r->{status} == 404 || $r->{status} == 400, 'invalid UTF-8 in the path: 404 or 400');
$r = $t->request('POST', '/v1/items', key => $key, body => ('[' x 10000) . (']' x 10000),
	headers => { 'Content-Type' => 'application/json' });
is($r->{status}, 400, 'ten thousand levels of nesting: 400');
$r = $t->request('POST', '/v1/items', key => $key, body => '{"n": ' . ('9' x 5000) . '}',
	headers => { 'Content-Type' => 'application/json' });
is($r->{status}, 400, 'a 5000-digit number: 400');
$r = $t->request('POST', '/v1/items', key => $key, body => '{"n": 1' . ('0' x 400) . '.5}',
	headers => { 'Content-Type' => 'application/json' });
is($r->{status}, 400, 'a real number out of range: 400');
$r = $t->request('POST', '/v1/items', key => $key, body => "{\"s\": \"\xed\xa0\x80\"}",
	headers => { 'Content-Type' => 'application/json' });
is($r->{status}, 400, 'a UTF-16 surrogate in UTF-8: 400');

# A slow client is cut off at the request timeout while others are served.
my $t0 = time;
$out = $t->raw("GET /healthz HTTP/1.1\r\nHost: x\r\n", timeout => 6);
my $cut = time - $t0;
cmp_ok($cut, '<', 5, 'a request that never ends is closed by the server');
my $pid = fork();
if ($pid == 0) { $t->{shim_pid} = undef; $t->raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " . ('z' x 60), slow => 0.05, timeout => 4); POSIX::_exit(0); }
is($t->request('GET', '/healthz')->{status}, 200, 'other clients are served meanwhile');
waitpid($pid, 0);
is($t->request('GET', '/healthz')->{status}, 200, 'still alive after all of it');

# --- SIGTERM with requests in flight -------------------------------------------------------------
my @kids;
my $dir = $PostgreSQL::Test::Utils::tmp_check;
for my $i (1 .. 4)
{
	my $kid = fork();
	if ($kid == 0)
	{
		$t->{shim_pid} = undef;
		my $res = $t->request('POST', '/v1/nap', key => $key, json => { seconds => 0.8 });
		open my $fh, '>', "$dir/inflight-$i" or die;
		print $fh $res->{status};
		close $fh;
		POSIX::_exit(0);    # not exit: END blocks would stop the cluster
	}
	push @kids, $kid;
}
# Wait until they are in the database, not merely forked.
for (1 .. 200)
{
	last if $t->psql(q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%public.nap%' AND state = 'active'}) >= 2;
	sleep 0.025;
}
sleep 0.2;
my $exit = $t->stop_shim;
waitpid($_, 0) for @kids;
is($exit, 0, 'SIGTERM: exit 0');
is_deeply([ map { slurp_file("$dir/inflight-$_") } 1 .. 4 ], [ (200) x 4 ], 'requests in flight complete');
$r = HTTP::Tiny->new(timeout => 2)->get($t->url('/healthz'));
is($r->{status}, 599, 'no longer accepting');
done_testing();
