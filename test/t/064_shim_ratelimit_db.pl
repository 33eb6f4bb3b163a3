# Rate limits shared through the database (rate_limits.store: database) by
# two shims on one database, as behind a load balancer: a burst consumed
# across both, 429 from the second with the memory store's headers and
# nothing written, failed authentications counted per address across both,
# recovery after the advertised wait, exactly the burst allowed out of
# concurrent requests to both, sign-in limited per account across both, and
# 503 while the database is down.
use strict;
use warnings;
use HTTP::CookieJar;
use HTTP::Tiny;
use JSON::PP;
use POSIX ();
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use ShimTest;

my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $keys = "$dir/rldb.keys";
open my $kf, '>', $keys or die $!;
printf $kf "key k %s\nactive k\n", '44' x 32;
close $kf;
chmod 0600, $keys;
my $origin = 'http://app.example.test';

# Emission intervals of 10 s and more: the assertions do not depend on how
# fast this machine runs the requests, only on waiting at least as long as
# the shims say.
my %classes = (
	api => { limit => 1000, period => 1, burst => 1000, key => ['api_key'] },
	report => { limit => 2, period => 20, burst => 2, key => ['api_key'] },
	crowd => { limit => 5, period => 500, burst => 5, key => ['api_key'] },
	login => { limit => 3, period => 300, burst => 3, key => ['account'] },
	api_auth_failed => { limit => 2, period => 300, burst => 2, key => ['address'] },
);
my $a = ShimTest->new(name => 'rldb_a', config => {
	rate_limits => { store => 'database', classes => \%classes },
	session => { key_file => $keys, cookie => 'insecure-dev', origins => [$origin] },
	trusted_proxies => ['127.0.0.1'],
});
$a->psql(q{SELECT actloom.expose(1, 'POST', 'items', 'public.put_item(jsonb,jsonb)', 'reports.generate', 'report',
	'{"type": "object", "additionalProperties": true}')});
$a->psql(q{SELECT actloom.expose(1, 'POST', 'crowd', 'public.put_item(jsonb,jsonb)', 'reports.generate', 'crowd',
	'{"type": "object", "additionalProperties": true}')});
$a->psql(q{SELECT actloom.expose(1, 'GET', 'ping', 'public.whoami(jsonb,jsonb)', 'reports.read')});
$a->start_shim;
my $b = $a->peer('rldb_b');
$b->start_shim;
isnt($a->{port}, $b->{port}, 'two shims, one database');

my $key = $a->make_key(['reports.*']);
my $other = $a->make_key(['reports.*']);
my $crowd_key = $a->make_key(['reports.*']);

sub joined { my $v = shift; return join(', ', ref $v ? @$v : ($v // '')); }

# What a request could change: the items, the audit trail, the keys' use,
# the state of class "report", and admissions left behind.
sub snapshot
{
	return $a->psql(q{SELECT (SELECT count(*) FROM public.items),
		(SELECT count(*) FROM actloom.audit_log),
		(SELECT string_agg(coalesce(last_used_at::text, '-'), ',' ORDER BY key_id) FROM actloom.api_keys),
		(SELECT string_agg(tat::text, ',' ORDER BY key_hash) FROM actloom.rate_limits WHERE class = 'report'),
		(SELECT count(*) FROM actloom.rate_limit_admissions)});
}

# --- one burst across both shims ------------------------------------------------------
my $r = $a->request('POST', '/v1/items', key => $key, json => { n => 1 });
is($r->{status}, 200, 'shim A serves the first');
like(joined($r->{headers}{ratelimit}), qr/"report";r=1;t=\d+/, 'one remains');
$r = $b->request('POST', '/v1/items', key => $key, json => { n => 2 });
is($r->{status}, 200, 'shim B serves the second');
like(joined($r->{headers}{ratelimit}), qr/"report";r=0;t=\d+/, 'shim B knows of the first: none remains');
my $before = snapshot();
$r = $b->request('POST', '/v1/items', key => $key, json => { n => 3 });
is($r->{status}, 429, 'the third is refused by shim B');
is($r->{json}{type}, 'urn:actloom:problem:rate-limited', 'a rate-limited problem');
like($r->{json}{detail}, qr/^Rate limit "report" exceeded: 2 requests per 20 seconds\. Retry in \d+ seconds\.$/,
	'the problem names the policy');
like($r->{headers}{'retry-after'}, qr/^[1-9]\d*$/, 'Retry-After in seconds');
like(joined($r->{headers}{'ratelimit-policy'}), qr/^"api_address";q=6000;w=60, "api";q=1000;w=1, "report";q=2;w=20$/,
	'RateLimit-Policy of every class taken, as the memory store says it');
like(joined($r->{headers}{ratelimit}), qr/^"api_address";r=\d+;t=\d+, "api";r=\d+;t=1, "report";r=0;t=\d+$/,
	'RateLimit: none remain');
is(snapshot(), $before, 'the refused request changed nothing: items, audit, keys, state, admissions');
$r = $a->request('POST', '/v1/items', key => $key, json => { n => 4 });
is($r->{status}, 429, 'shim A refuses it too');
my $wait = $r->{headers}{'retry-after'};
is($b->request('POST', '/v1/items', key => $other, json => {})->{status}, 200, 'another key has its own budget');

# --- failed authentications count per address, across shims ------------------------------
my $forged = ShimTest::forged_key();
$r = undef;
is_deeply([ map { ($r = $_->request('POST', '/v1/items', key => $forged, json => {},
		headers => { 'X-Forwarded-For' => '203.0.113.7' }))->{status} } $a, $b, $a ],
	[ 401, 401, 429 ], 'a key that does not exist: two attempts, one on each shim, then 429');
like(joined($r->{headers}{'ratelimit-policy'}), qr/"api_auth_failed";q=2;w=300/, 'by class "api_auth_failed"');
my $admissions = $a->psql('SELECT count(*) FROM actloom.rate_limit_admissions');
is($admissions, 0, 'the failed attempts consumed their admissions when they were charged; the refused had none');

# --- recovery ------------------------------------------------------------------------------------------
sleep($wait);
is($b->request('POST', '/v1/items', key => $key, json => { n => 5 })->{status}, 200,
	'served again after the advertised wait');

# --- concurrent requests to both shims: exactly the burst gets through -------------------------
my $items = $a->item_count;
my @kids;
for my $i (1 .. 12)
{
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		my $s = ($i % 2 ? $a : $b)->request('POST', '/v1/crowd', key => $crowd_key, json => { i => $i })->{status};
		POSIX::_exit($s == 200 ? 0 : $s == 429 ? 1 : 2);
	}
	push @kids, $pid;
}
my %outcome;
for my $pid (@kids) { waitpid($pid, 0); $outcome{ $? >> 8 }++; }
is($outcome{0}, 5, 'of 12 concurrent requests over both shims, the burst of 5 is served');
is($outcome{1}, 7, 'and the other 7 are refused');
is($a->item_count, $items + 5, 'only the served ones wrote');
is($a->psql('SELECT count(*) FROM actloom.rate_limit_admissions'), $admissions,
	'the served requests consumed their admissions; the refused had none');

# --- the keys are stored as digests --------------------------------------------------------------
my $key_id = substr($crowd_key, 4, 12);
is($a->psql(qq{SELECT count(*) FROM actloom.rate_limits
	WHERE class = 'crowd' AND key_hash = sha256(convert_to('k:$key_id', 'UTF8'))}), 1,
	'the state is keyed by the SHA-256 of the key');

# --- sign-in: limited per account, whichever shim is asked --------------------------------------
my $JSON = JSON::PP->new->canonical;
sub post
{
	my ($t, $path, $body, $jar) = @_;
	my $http = HTTP::Tiny->new(timeout => 10, $jar ? (cookie_jar => $jar) : ());
	return $http->request('POST', $t->url($path),
		{ headers => { 'Content-Type' => 'application/json', Origin => $origin }, content => $JSON->encode($body) });
}
my $jar = HTTP::CookieJar->new;
is(post($a, '/auth/signup', { email => 'p@example.com', password => 'Tr0ub4dor&3 staple', name => 'P' }, $jar)->{status},
	201, 'sign-up through shim A');
is(HTTP::Tiny->new(timeout => 10, cookie_jar => $jar)->get($b->url('/auth/session'))->{status}, 200,
	'the session works on shim B');
my @tries = map { post($_, '/auth/login', { email => 'p@example.com', password => 'wrong password' })->{status} }
	$a, $b, $a;
is_deeply(\@tries, [ 401, 401, 401 ], 'three wrong passwords, over both shims');
$r = post($b, '/auth/login', { email => 'P@example.com', password => 'Tr0ub4dor&3 staple' });
is($r->{status}, 429, 'the fourth, even right and on shim B: 429');
like(joined($r->{headers}{'ratelimit-policy'}), qr/"login";q=3;w=300/, 'naming the login policy');

$r = $b->request('GET', '/metrics');
like($r->{content}, qr/actloom_rate_limited_total\{class="report"\} [1-9]/, 'refusals by class in /metrics');

# --- the database is down: 503, no limiter of its own --------------------------------------------
$a->node->stop('fast');
$r = $a->request('GET', '/v1/ping', key => $key);
is($r->{status}, 503, 'the database is unreachable: 503');
like($r->{headers}{'retry-after'}, qr/^[1-9]\d*$/, 'with Retry-After');
is($r->{json}{type}, 'urn:actloom:problem:unavailable', 'an unavailable problem');
$a->node->start;
my $status = 0;
for (1 .. 200)
{
	$status = $a->request('GET', '/v1/ping', key => $key)->{status};
	last if $status == 200;
	sleep 0.1;
}
is($status, 200, 'served again once the database is back');

is($a->stop_shim, 0, 'shim A: SIGTERM, exit 0');
is($b->stop_shim, 0, 'shim B: SIGTERM, exit 0');
done_testing();
