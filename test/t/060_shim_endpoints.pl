# The versioned machine endpoints end to end: every status path in the
# order of the checks, each schema keyword accepted and refused, the
# database unchanged after every refusal, the security headers, the access
# log, and registry changes served without a restart.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ShimTest;

my $t = ShimTest->new(name => 'endpoints', config => {
	rate_limits => { classes => { api => { limit => 100000, period => 1, burst => 100000, key => ['api_key'] } } },
});

# Every keyword of the subset, on one endpoint.
my $schema = q({
	"type": "object",
	"properties": {
		"title": {"type": "string", "minLength": 2, "maxLength": 8, "pattern": "^[a-z ]+$"},
		"kind": {"enum": ["daily", "weekly"]},
		"count": {"type": "integer", "minimum": 1, "maximum": 10},
		"ratio": {"type": "number", "minimum": 0, "maximum": 1},
		"draft": {"type": "boolean"},
		"note": {"type": ["string", "null"]},
		"tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
		"owner": {"type": "string", "format": "email"},
		"ref": {"type": "string", "format": "uuid"},
		"link": {"type": "string", "format": "uri"},
		"due": {"type": "string", "format": "date-time"},
		"meta": {"type": "object", "additionalProperties": true}
	},
	"required": ["title"]
});
my $query = q({"type": "object", "properties": {
	"limit": {"type": "integer", "minimum": 1, "maximum": 50}, "verbose": {"type": "boolean"},
	"ratio": {"type": "number"}, "q": {"type": "string", "maxLength": 5}}});
$t->psql(qq{SELECT actloom.expose(1, 'POST', 'items', 'public.put_item(jsonb,jsonb)', 'reports.generate',
	'report', '$schema', '$query')});
$t->psql(q{SELECT actloom.expose(1, 'GET', 'whoami', 'public.whoami(jsonb,jsonb)', 'reports.read', 'api', NULL,
	'{"type": "object", "properties": {"limit": {"type": "integer"}}}')});
$t->psql(q{CREATE FUNCTION public.fails(body jsonb, query jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
	BEGIN
		CASE body ->> 'how'
		WHEN 'unique' THEN RAISE unique_violation USING MESSAGE = 'secret detail';
		WHEN 'data' THEN PERFORM 1 / 0;
		WHEN 'nodata' THEN RETURN NULL;
		WHEN 'missing' THEN RAISE no_data_found;
		WHEN 'denied' THEN RAISE insufficient_privilege USING MESSAGE = 'secret reason';
		ELSE RAISE EXCEPTION 'internal secret %', body;
		END CASE;
		RETURN '{}';
	END $$});
$t->psql(q{SELECT actloom.expose(1, 'POST', 'fails', 'public.fails(jsonb,jsonb)', 'reports.read', 'api',
	'{"type": "object", "properties": {"how": {"type": "string"}}}')});
$t->start_shim;

my $key = $t->make_key(['reports.*']);
my $read_only = $t->make_key(['reports.read']);
my $valid = { title => 'ab cd', kind => 'daily', count => 3, ratio => 0.5, draft => JSON::PP::true,
	note => undef, tags => ['x'], owner => 'a@b.example', ref => '123e4567-e89b-12d3-a456-426614174000',
	link => 'https://example.com/x', due => '2024-02-29T12:00:00Z', meta => { any => [1] } };

# --- 200 and what it carries -----------------------------------------------
my $r = $t->request('POST', '/v1/items?limit=5&verbose=true&ratio=0.25&q=a+b', key => $key, json => $valid);
is($r->{status}, 200, 'a valid request is served');
is_deeply($r->{json}{body}, $JSON::PP::true ? $ShimTest::JSON->decode($ShimTest::JSON->encode($valid)) : undef,
	'the function gets the body');
is_deeply($r->{json}{query}, { limit => 5, verbose => JSON::PP::true, ratio => 0.25, q => 'a b' },
	'query parameters arrive coerced to their types');
is($t->item_count, 1, 'the function wrote its row');
is($t->psql("SELECT count(*) FROM public.items WHERE company_id = '$t->{acme}'"), 1,
	'under the key\'s company');
my $h = $r->{headers};
is($h->{'x-content-type-options'}, 'nosniff', 'nosniff');
is($h->{'cache-control'}, 'no-store', 'no-store');
is($h->{'referrer-policy'}, 'no-referrer', 'Referrer-Policy');
like($h->{'content-security-policy'}, qr/default-src 'none'/, 'restrictive CSP');
like($h->{'x-request-id'}, qr/^[0-9a-f]{20}$/, 'X-Request-Id');
is($h->{server}, 'actloom', 'Server does not advertise h2o or a version');
ok(!exists $h->{'strict-transport-security'}, 'no HSTS without TLS');
my $both = join(', ', ref $h->{ratelimit} ? @{ $h->{ratelimit} } : $h->{ratelimit});
like($both, qr/"report";r=\d+;t=\d+/, 'RateLimit of the endpoint class');
$both = join(', ', ref $h->{'ratelimit-policy'} ? @{ $h->{'ratelimit-policy'} } : $h->{'ratelimit-policy'});
like($both, qr/"api";q=100000;w=1/, 'RateLimit-Policy of the per-key class');
like($both, qr/"report";q=60;w=60/, 'RateLimit-Policy of the endpoint class');

$r = $t->request('GET', '/v1/whoami?limit=2', key => $read_only);
is($r->{status}, 200, 'a GET endpoint with a query');
is($r->{json}{company}, $t->{acme}, 'the function runs under the key\'s actor');

my $count = $t->item_count;
sub refused
{
	my ($r, $status, $type, $name) = @_;
	is($r->{status}, $status, "$name: $status");
	is($r->{headers}{'content-type'}, 'application/problem+json', "$name: problem+json");
	is($r->{json}{type}, "urn:actloom:problem:$type", "$name: type $type");
	is($r->{json}{request_id}, $r->{headers}{'x-request-id'}, "$name: the request id");
	is($t->item_count, $count, "$name: nothing written");
}

# --- 1. the key ------------------------------------------------------------------
$r = $t->request('POST', '/v1/items', json => $valid);
refused($r, 401, 'unauthorized', 'no key');
is($r->{headers}{'www-authenticate'}, 'Bearer realm="actloom"', 'WWW-Authenticate');
refused($t->request('POST', '/v1/items', key => 'alk_short', json => $valid), 401, 'unauthorized', 'malformed key');
(my $flipped = $key) =~ s/^(.{30})(.)/$1 . ($2 eq 'a' ? 'b' : 'a')/e;
refused($t->request('POST', '/v1/items', key => $flipped, json => $valid), 401, 'unauthorized', 'bad checksum');
refused($t->request('POST', '/v1/items', headers => { Authorization => "Basic $key" }, json => $valid),
	401, 'unauthorized', 'not a Bearer token');
refused($t->request('POST', '/v1/items', key => ShimTest::forged_key(), json => $valid), 401, 'unauthorized',
	'well-formed unknown key (refused by the database)');
refused($t->request('POST', '/v1/nothing', json => $valid), 401, 'unauthorized',
	'unauthenticated clients learn nothing about paths');

# --- 3. the endpoint ------------------------------------------------------------------
refused($t->request('POST', '/v1/nothing', key => $key, json => $valid), 404, 'not-found', 'unknown path');
refused($t->request('POST', '/v2/items', key => $key, json => $valid), 404, 'not-found', 'unknown version');
refused($t->request('POST', '/v1/items/', key => $key, json => $valid), 404, 'not-found', 'trailing slash');
refused($t->request('POST', '/v1/%69tems', key => $key, json => $valid), 404, 'not-found', 'percent-encoded path');
$r = $t->request('DELETE', '/v1/items', key => $key);
refused($r, 405, 'method-not-allowed', 'wrong method');
is($r->{headers}{allow}, 'POST', 'Allow names the methods');

# --- 4. type and size ---------------------------------------------------------------------
refused($t->request('POST', '/v1/items', key => $key, body => '{"title":"ab"}',
	headers => { 'Content-Type' => 'text/plain' }), 415, 'unsupported-media-type', 'text/plain');
refused($t->request('POST', '/v1/items', key => $key, body => '{"title":"ab"}',
	headers => { 'Content-Type' => 'application/json; charset=latin1' }), 415, 'unsupported-media-type',
	'a charset other than UTF-8');
is($t->request('POST', '/v1/items', key => $key, body => '{"title":"ab"}',
	headers => { 'Content-Type' => 'application/json; charset=utf-8' })->{status}, 200, 'charset=utf-8 is fine');
$count = $t->item_count;

# --- 5. parsing ------------------------------------------------------------------------------
for my $case (['{"title":"ab","title":"cd"}', 'duplicate keys'], ["{\"title\":\"a\xff\"}", 'invalid UTF-8'],
	['{"title":"a\u0000b"}', 'escaped NUL'], ["{\"title\":\"a\0b\"}", 'raw NUL'], ['{"title":', 'truncated'],
	['{"title":"ab","count":1e400}', 'number overflow'], ['{"title":"ab","count":123456789012345678901234}', 'huge integer'],
	[('[' x 40) . (']' x 40), 'deep nesting'])
{
	refused($t->request('POST', '/v1/items', key => $key, body => $case->[0],
		headers => { 'Content-Type' => 'application/json' }), 400, 'malformed-json', $case->[1]);
}

# --- 6. every keyword refused --------------------------------------------------------------------
my @refusals = (
	[{ %$valid, title => 5 }, '/title', 'type'],
	[{ %$valid, title => 'a' }, '/title', 'minLength'],
	[{ %$valid, title => 'abcdefghi' }, '/title', 'maxLength'],
	[{ %$valid, title => 'ab1' }, '/title', 'pattern'],
	[{ %$valid, kind => 'hourly' }, '/kind', 'enum'],
	[{ %$valid, count => 2.5 }, '/count', 'type'],
	[{ %$valid, count => 0 }, '/count', 'minimum'],
	[{ %$valid, count => 11 }, '/count', 'maximum'],
	[{ %$valid, ratio => 'x' }, '/ratio', 'type'],
	[{ %$valid, draft => 'yes' }, '/draft', 'type'],
	[{ %$valid, note => 1 }, '/note', 'type'],
	[{ %$valid, tags => 'x' }, '/tags', 'type'],
	[{ %$valid, tags => [] }, '/tags', 'minItems'],
	[{ %$valid, tags => [qw(a b c)] }, '/tags', 'maxItems'],
	[{ %$valid, tags => [1] }, '/tags/0', 'type'],
	[{ %$valid, owner => 'nobody' }, '/owner', 'format'],
	[{ %$valid, ref => 'not-a-uuid' }, '/ref', 'format'],
	[{ %$valid, link => 'javascript:alert(1)' }, '/link', 'format'],
	[{ %$valid, due => '2023-02-29T00:00:00Z' }, '/due', 'format'],
	[{ %$valid, extra => 1 }, '/extra', 'additionalProperties'],
	[{ kind => 'daily' }, '/title', 'required'],
);
for my $c (@refusals)
{
	my ($body, $path, $rule) = @$c;
	$r = $t->request('POST', '/v1/items', key => $key, json => $body);
	refused($r, 422, 'validation-failed', "$rule at $path");
	is_deeply([ map { [ $_->{path}, $_->{rule} ] } @{ $r->{json}{issues} } ], [ [ $path, $rule ] ],
		"$rule at $path: exactly that issue");
}
$r = $t->request('POST', '/v1/items', key => $key, json => { title => 'a', count => 0, extra => 1 });
is(scalar @{ $r->{json}{issues} }, 3, 'every failing field is listed');
is($r->{json}{issue_count}, 3, 'and counted');
ok((grep { $_->{message} } @{ $r->{json}{issues} }) == 3, 'each issue has a message');
refused($t->request('POST', '/v1/items', key => $key), 422, 'validation-failed', 'a missing body');
for my $q (['limit=x', '/limit', 'type'], ['limit=0', '/limit', 'minimum'], ['verbose=1', '/verbose', 'type'],
	['q=toolong', '/q', 'maxLength'], ['other=1', '/other', 'additionalProperties'], ['limit=1&limit=2', '/limit', 'duplicate'],
	['q=%ff', '', 'encoding'], ['ratio=nan', '/ratio', 'type'])
{
	$r = $t->request('POST', "/v1/items?$q->[0]", key => $key, json => $valid);
	refused($r, 422, 'validation-failed', "query $q->[0]");
	is($r->{json}{issues}[0]{rule}, $q->[2], "query $q->[0]: rule $q->[2]");
}
refused($t->request('GET', '/v1/whoami', key => $key, body => '{}', headers => { 'Content-Type' => 'application/json' }),
	422, 'validation-failed', 'a body where none is taken');

# --- 8. database verdicts ----------------------------------------------------------------------------
refused($t->request('POST', '/v1/items', key => $read_only, json => $valid), 403, 'forbidden', 'missing scope (42501)');
my %db = (unique => [409, 'conflict'], data => [422, 'unprocessable'], nodata => [404, 'not-found'],
	missing => [404, 'not-found'], denied => [403, 'forbidden'], other => [500, 'internal']);
for my $how (sort keys %db)
{
	$r = $t->request('POST', '/v1/fails', key => $key, json => { how => $how });
	refused($r, $db{$how}[0], $db{$how}[1], "database: $how");
	unlike($r->{content}, qr/secret|SELECT|ERROR/, "database: $how: no SQL or message leaks");
}
$t->revoke_key($key);
refused($t->request('POST', '/v1/items', key => $key, json => $valid), 401, 'unauthorized', 'revoked key');
$key = $t->make_key(['reports.*']);

# --- the registry changes without a restart ------------------------------------------------------------
$t->psql(q{SELECT actloom.expose(1, 'PUT', 'whoami', 'public.whoami(jsonb,jsonb)', 'reports.read')});
my $served;
for (1 .. 100) { $served = $t->request('PUT', '/v1/whoami', key => $key)->{status}; last if $served == 200; sleep 0.05; }
is($served, 200, 'a newly exposed endpoint is served without a restart');
$t->psql(q{SELECT actloom.unexpose(1, 'PUT', 'whoami')});
for (1 .. 100) { $served = $t->request('PUT', '/v1/whoami', key => $key)->{status}; last if $served != 200; sleep 0.05; }
is($served, 405, 'an unexposed endpoint is gone without a restart');

# --- the shim's own routes -----------------------------------------------------------------------------
is($t->request('GET', '/healthz')->{status}, 200, '/healthz');
is($t->request('GET', '/readyz')->{status}, 200, '/readyz');
$r = $t->request('GET', '/metrics');
is($r->{status}, 200, '/metrics');
like($r->{content}, qr/actloom_http_requests_total\{route="POST \/v1\/items",status="422"\} \d+/, 'requests by route and status');
like($r->{content}, qr/actloom_http_request_duration_seconds_bucket\{le="\+Inf"\}/, 'latency histogram');
like($r->{content}, qr/actloom_db_connections\{state="idle"\}/, 'pool state');
like($r->{content}, qr/actloom_db_reconnects_total \d+/, 'reconnects');
refused($t->request('GET', '/nowhere'), 404, 'not-found', 'unknown route');
$r = $t->request('GET', '/healthz?verbose=1');
refused($r, 422, 'validation-failed', 'the same validator guards the own routes');
is($r->{json}{issues}[0]{path}, '/verbose', 'naming the unknown parameter');
refused($t->request('POST', '/healthz'), 405, 'method-not-allowed', 'wrong method on an own route');

# --- the access log ---------------------------------------------------------------------------------------
my $log = $t->access_log;
my @lines = split /\n/, $log;
ok(@lines > 50, 'one access log line a request');
my $all_json = !grep { !eval { $ShimTest::JSON->decode($_); 1 } } @lines;
ok($all_json, 'every line is JSON');
my $first = $ShimTest::JSON->decode($lines[0]);
is_deeply([ sort keys %$first ], [qw(actor_id actor_kind client duration_ms method request_id route status time)],
	'the fields of a line');
unlike($log, qr/alk_/, 'no API key in the access log');
unlike($log, qr/limit=|verbose|a\+b/, 'no query value in the access log');
like($log, qr/"actor_kind":"api_key","actor_id":"[0-9A-Za-z]{12}"/, 'the actor is the key id');
unlike(slurp_file($t->{log}), qr/alk_/, 'no API key in the error log');

is($t->stop_shim, 0, 'SIGTERM: exit 0');
done_testing();
