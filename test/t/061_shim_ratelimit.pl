# Rate limits end to end: a burst, 429 with its headers and problem, the
# database untouched, recovery after the advertised wait; the client address
# behind trusted and untrusted proxies; SIGHUP reloading classes and proxies.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use ShimTest;

# Periods leave each burst seconds of slack on a slow machine.
my %classes = (
	api => { limit => 1000, period => 1, burst => 1000, key => ['api_key'] },
	report => { limit => 3, period => 9, burst => 3, key => ['api_key'] },
	tiny => { limit => 2, period => 8, burst => 2, key => ['address'] },
);
my $t = ShimTest->new(name => 'ratelimit', config => {
	rate_limits => { classes => \%classes },
	trusted_proxies => ['127.0.0.1'],
});
$t->psql(q{SELECT actloom.expose(1, 'POST', 'items', 'public.put_item(jsonb,jsonb)', 'reports.generate', 'report',
	'{"type": "object", "additionalProperties": true}')});
$t->psql(q{SELECT actloom.expose(1, 'GET', 'ping', 'public.whoami(jsonb,jsonb)', 'reports.read', 'tiny')});
$t->start_shim;
my $key = $t->make_key(['reports.*']);
my $other = $t->make_key(['reports.*']);

sub joined { my $v = shift; return join(', ', ref $v ? @$v : ($v // '')); }

# --- burst, refusal, recovery -------------------------------------------------------
my @status = map { $t->request('POST', '/v1/items', key => $key, json => { n => $_ })->{status} } 1 .. 3;
is_deeply(\@status, [200, 200, 200], 'a burst of 3 is served');
my $count = $t->item_count;
my $r = $t->request('POST', '/v1/items', key => $key, json => { n => 4 });
is($r->{status}, 429, 'the 4th is refused');
is($r->{json}{type}, 'urn:actloom:problem:rate-limited', 'a rate-limited problem');
like($r->{json}{detail}, qr/"report"/, 'the problem names the policy');
like($r->{headers}{'retry-after'}, qr/^[1-9]\d*$/, 'Retry-After in seconds');
like(joined($r->{headers}{'ratelimit-policy'}), qr/"report";q=3;w=9/, 'RateLimit-Policy');
like(joined($r->{headers}{ratelimit}), qr/"report";r=0;t=\d+/, 'RateLimit says none remain');
is($t->item_count, $count, 'nothing written when refused');
is($t->request('POST', '/v1/items', key => $other, json => {})->{status}, 200, 'another key has its own budget');
sleep($r->{headers}{'retry-after'});
is($t->request('POST', '/v1/items', key => $key, json => {})->{status}, 200, 'served again after the advertised wait');
my @after = map { $t->request('POST', '/v1/items', key => $key, json => {})->{status} } 1 .. 4;
ok((grep { $_ == 429 } @after), 'and the limit holds again (' . join(' ', @after) . ')');

# --- the per-key class comes before the endpoint lookup -------------------------------
# (a burst of 1000 is too large to exhaust here; the ordering is covered by
# the 401/404 tests; the headers show the class was applied)
$r = $t->request('GET', '/v1/nothing', key => $other);
like(joined($r->{headers}{'ratelimit-policy'}), qr/"api";q=1000;w=1/, 'per-key limit applies to unknown paths too');

# --- client address behind a trusted proxy ---------------------------------------------------
sub ping { my ($xff) = @_; return $t->request('GET', '/v1/ping', key => $key,
	headers => defined $xff ? { 'X-Forwarded-For' => $xff } : {})->{status}; }
is_deeply([ map { ping('203.0.113.1') } 1 .. 3 ], [200, 200, 429], 'per address behind a trusted proxy');
is(ping('203.0.113.2'), 200, 'another client address has its own budget');
is(ping('198.51.100.9, 203.0.113.1'), 429, 'a spoofed left-most entry does not escape the limit');
is(ping('203.0.113.3, 127.0.0.1'), 200, 'trusted hops are skipped from the right');
like($t->access_log, qr/"client":"203\.0\.113\.1"/, 'the access log records the resolved client');

# --- SIGHUP: the peer is no longer trusted; the class changes ------------------------------------
$t->{config}{trusted_proxies} = ['10.0.0.0/8'];
$t->{config}{rate_limits}{classes}{tiny} = { limit => 3, period => 4, burst => 3, key => ['address'] };
$t->write_config;
$t->signal_shim('HUP');
my $policy = '';
for (1 .. 100)
{
	$policy = joined($t->request('GET', '/v1/ping', key => $key,
		headers => { 'X-Forwarded-For' => '192.0.2.77' })->{headers}{'ratelimit-policy'});
	last if $policy =~ /"tiny";q=3/;
	sleep 0.05;
}
like($policy, qr/"tiny";q=3;w=4/, 'SIGHUP reloads the rate-limit classes');
my @untrusted = map { ping("192.0.2.$_") } 10 .. 13;
is($untrusted[-1], 429, 'X-Forwarded-For of an untrusted peer is ignored: all share the peer\'s budget');

$r = $t->request('GET', '/metrics');
like($r->{content}, qr/actloom_rate_limited_total\{class="report"\} [1-9]/, 'refusals by class in /metrics');
like($r->{content}, qr/actloom_rate_limited_total\{class="tiny"\} [1-9]/, 'for each class');

is($t->stop_shim, 0, 'SIGTERM: exit 0');
done_testing();
