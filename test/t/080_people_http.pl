# People end to end, over TLS with a real HTTP client and a cookie jar:
# sign-up, sign-in, the session cookie and CSRF, sign-out, the management
# API, and every refusal the issue names: bad credentials (indistinguishable),
# rate-limited sign-in, missing or wrong CSRF token, foreign Origin, tampered,
# expired, "alg: none", wrong-algorithm, unknown-kid and revoked tokens, a
# removed member's live session, cross-company access, role escalation.  At
# the end, the audit trail holds every action taken and verifies.
use strict;
use warnings;
use Digest::SHA qw(hmac_sha256 hmac_sha384);
use HTTP::CookieJar;
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64 qw(encode_base64url decode_base64url);
use PostgreSQL::Test::Utils;
use Test::More;
use ShimTest;

my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $JSON = JSON::PP->new->canonical;
my $PASSWORD = 'Tr0ub4dor&3 staple';

# The session key file: two keys, the newer one active.
my $old_key = '11' x 32;
my $new_key = '22' x 32;
my $keyfile = "$dir/session.keys";
open my $kf, '>', $keyfile or die $!;
print $kf "# test keys\nkey old $old_key\nkey new $new_key\nactive new\n";
close $kf;
chmod 0600, $keyfile;

# A self-signed certificate for 127.0.0.1: the secure cookie needs https.
system('openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
	'-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', "$dir/tls.key",
	'-out', "$dir/tls.crt") == 0 or die 'openssl req';
chmod 0600, "$dir/tls.key";

# The server's keys: the master key ring (secrets) and the audit signing key.
open my $kr, '>', "$dir/keyring" or die $!;
printf $kr "key 1 %s\nactive 1\n", unpack('H*', join('', map { chr(int(rand(256))) } 1 .. 32));
close $kr;
chmod 0600, "$dir/keyring";
system('openssl', 'genpkey', '-algorithm', 'ed25519', '-out', "$dir/audit.key") == 0 or die 'openssl genpkey';
chmod 0600, "$dir/audit.key";

my $t = ShimTest->new(name => 'people',
	pg_conf => [ "actloom.keyring_file = '$dir/keyring'", "actloom.audit_signing_key_file = '$dir/audit.key'" ],
	config => {
	tls => { certificate => "$dir/tls.crt", key => "$dir/tls.key" },
	session => { key_file => $keyfile, cookie => 'secure' },
	trusted_proxies => ['127.0.0.1'],
	rate_limits => { classes => {
		login => { limit => 5, period => 60, burst => 5, key => ['address', 'account'] },
		signup => { limit => 100, period => 60, burst => 100, key => ['address'] },
		manage => { limit => 100000, period => 1, burst => 100000, key => ['user'] },
		api_key => { limit => 100000, period => 1, burst => 100000, key => ['user'] },
	} },
});
# The gateway's statements carry passwords and secrets: keep them out of the
# log, as the README says, and check below that they stayed out.
$t->psql(join(';', map { "ALTER ROLE shim SET $_" } "log_statement = 'none'", "log_min_error_statement = 'panic'",
	'log_min_duration_statement = -1', 'log_min_duration_sample = -1', 'log_duration = off',
	'log_parameter_max_length = 0', 'log_parameter_max_length_on_error = 0'));
$t->start_shim;
my $base = $t->url('');
my $origin = $base;

# A browser: HTTP::Tiny with a cookie jar, over TLS to our certificate.
# Each comes from an address of its own, through the trusted proxy's
# X-Forwarded-For, so that the per-address limits see distinct clients.
my $next_addr = 1;
sub browser
{
	my %b = (jar => HTTP::CookieJar->new, csrf => undef, addr => '198.51.100.' . $next_addr++);
	$b{http} = HTTP::Tiny->new(timeout => 10, cookie_jar => $b{jar}, verify_SSL => 1,
		SSL_options => { SSL_ca_file => "$dir/tls.crt" });
	return \%b;
}

# One request; opts: json, headers, csrf => 0 to leave the token out, origin.
sub call
{
	my ($b, $method, $path, %opt) = @_;
	my %h = ('X-Forwarded-For' => $b->{addr}, %{ $opt{headers} || {} });
	$h{Origin} = $opt{origin} // $origin if $method ne 'GET';
	delete $h{Origin} if exists $opt{origin} && !defined $opt{origin};
	$h{'X-CSRF-Token'} = $b->{csrf} if $method ne 'GET' && defined $b->{csrf} && !exists $h{'X-CSRF-Token'}
		&& !(exists $opt{csrf} && !$opt{csrf});
	my $content;
	if (exists $opt{json}) { $content = $JSON->encode($opt{json}); $h{'Content-Type'} = 'application/json'; }
	my $r = $b->{http}->request($method, "$base$path", { headers => \%h, defined $content ? (content => $content) : () });
	$r->{json} = eval { $JSON->decode($r->{content}) } if ($r->{content} // '') ne '';
	return $r;
}

sub session_cookie
{
	my ($b) = @_;
	my ($c) = grep { $_->{name} eq '__Host-actloom_session' } $b->{jar}->cookies_for("$base/");
	return $c ? $c->{value} : undef;
}

sub set_session_cookie
{
	my ($b, $value) = @_;
	$b->{jar}->add("$base/", "__Host-actloom_session=$value; Path=/; Secure; HttpOnly; SameSite=Lax");
}

sub sign_up
{
	my ($b, $email, $name) = @_;
	my $r = call($b, 'POST', '/auth/signup', json => { email => $email, password => $PASSWORD, name => $name });
	$b->{csrf} = $r->{json}{csrf_token} if $r->{status} == 201;
	return $r;
}

sub sign_in
{
	my ($b, $email, $password) = @_;
	my $r = call($b, 'POST', '/auth/login', json => { email => $email, password => $password // $PASSWORD });
	$b->{csrf} = $r->{json}{csrf_token} if $r->{status} == 200;
	return $r;
}

sub without_id { my %p = %{ $_[0] }; delete $p{request_id}; return $JSON->encode(\%p); }

sub audit_count { return $t->psql("SELECT count(*) FROM actloom.audit_log"); }

sub write_file { my ($path, $bytes) = @_; open my $fh, '>:raw', $path or die $!; print $fh $bytes; close $fh; }

# ---- sign-up and the cookies ---------------------------------------------
my $owner = browser();
my $r = sign_up($owner, 'Ada@Example.com', 'Ada');
is($r->{status}, 201, 'sign-up: 201');
is($r->{json}{user}{email}, 'ada@example.com', 'sign-up: the address lower-cased');
my ($set) = grep { /^__Host-actloom_session=/ } @{ ref $r->{headers}{'set-cookie'} ? $r->{headers}{'set-cookie'} : [ $r->{headers}{'set-cookie'} ] };
like($set, qr/; Path=\/; Max-Age=\d+; Secure; HttpOnly; SameSite=Lax$/, 'the session cookie: __Host-, Secure, HttpOnly, Lax, Path=/');
my $ada_id = $r->{json}{user}{id};
ok(session_cookie($owner), 'the jar holds the session cookie');
is(sign_up(browser(), 'ada@example.com', 'Ada again')->{status}, 409, 'sign-up with a taken address: 409');
is(call(browser(), 'POST', '/auth/signup', json => { email => 'b@example.com', password => 'short', name => 'B' })->{status},
	422, 'sign-up with a weak password: 422');

$r = call($owner, 'GET', '/auth/session');
is($r->{status}, 200, 'GET /auth/session');
is($r->{json}{user}{email}, 'ada@example.com', 'names the user');
is_deeply($r->{json}{companies}, [], 'with no companies yet');

# ---- CSRF and Origin ------------------------------------------------------
$r = call($owner, 'POST', '/api/companies', json => { name => 'Acme' }, csrf => 0);
is($r->{status}, 403, 'no CSRF token: 403');
is($r->{json}{type}, 'urn:actloom:problem:csrf-token-missing', 'with its problem type');
$r = call($owner, 'POST', '/api/companies', json => { name => 'Acme' }, headers => { 'X-CSRF-Token' => 'new.AAAAAAAAAAAAAAAAAAAAAA.' . ('A' x 43) });
is($r->{status}, 403, 'a forged CSRF token: 403');
$r = call($owner, 'POST', '/api/companies', json => { name => 'Acme' }, origin => 'https://evil.example');
is($r->{status}, 403, 'a foreign Origin: 403');
is($r->{json}{type}, 'urn:actloom:problem:foreign-origin', 'with its problem type');
$r = call($owner, 'POST', '/api/companies', json => { name => 'Acme' }, origin => 'null');
is($r->{status}, 403, 'Origin null: 403');
$r = call($owner, 'GET', '/auth/csrf');
is($r->{status}, 200, 'GET /auth/csrf');
$owner->{csrf} = $r->{json}{token};
$r = call($owner, 'POST', '/api/companies', json => { name => 'Acme' }, origin => undef);
is($r->{status}, 201, 'no Origin header but a good token: created');
my $acme = $r->{json}{id};
$r = call($owner, 'POST', '/api/companies', json => { name => 'Acme Labs' });
is($r->{status}, 201, 'a second company');
my $labs = $r->{json}{id};
$r = call($owner, 'GET', '/api/companies');
is_deeply([ map { "$_->{name}:$_->{role}" } @{ $r->{json} } ], [ 'Acme:owner', 'Acme Labs:owner' ], 'GET /api/companies');

# ---- sign-in: bad credentials are indistinguishable -----------------------
my $bob = browser();
is(sign_up($bob, 'bob@example.com', 'Bob')->{status}, 201, 'Bob signs up');
my $eve = browser();
is(sign_up($eve, 'eve@example.com', 'Eve')->{status}, 201, 'Eve signs up');

# A CSRF token of another session, in header and cookie alike: its MAC names
# Bob's session, not Ada's.
my $ada_csrf = $owner->{csrf};
$owner->{jar}->add("$base/", "__Host-actloom_csrf=$bob->{csrf}; Path=/; Secure; SameSite=Strict");
$r = call($owner, 'POST', '/api/companies', json => { name => 'Nope' }, headers => { 'X-CSRF-Token' => $bob->{csrf} });
is($r->{status}, 403, 'the CSRF token of another session: 403');
is($r->{json}{type}, 'urn:actloom:problem:csrf-token-invalid', 'with its problem type');
$owner->{jar}->add("$base/", "__Host-actloom_csrf=$ada_csrf; Path=/; Secure; SameSite=Strict");
$r = call($owner, 'POST', '/api/companies', json => { name => 'Nope' }, headers => { 'X-CSRF-Token' => $bob->{csrf} });
is($r->{status}, 403, 'a header that differs from the cookie: 403');
my $anon = browser();
my $wrong = sign_in($anon, 'bob@example.com', 'not his password');
my $unknown = sign_in($anon, 'nobody@example.com', 'whatever pw');
is($wrong->{status}, 401, 'wrong password: 401');
is($unknown->{status}, 401, 'unknown email: 401');
is(without_id($wrong->{json}), without_id($unknown->{json}), 'the same body either way');
ok(!session_cookie($anon), 'and no cookie');
my $bob2 = browser();
$r = sign_in($bob2, 'BOB@example.com');
is($r->{status}, 200, 'sign-in with the right password (address in any case)');
isnt(session_cookie($bob2), session_cookie($bob), 'a new session, not the sign-up one');

# Sign-in replaces the session the browser carried: the id changes.
my $before = session_cookie($bob2);
my $before_sid = $JSON->decode(decode_base64url((split /\./, $before)[1]))->{sid};
is(sign_in($bob2, 'bob@example.com')->{status}, 200, 'signing in again on the same browser');
my $after_sid = $JSON->decode(decode_base64url((split /\./, session_cookie($bob2))[1]))->{sid};
isnt($after_sid, $before_sid, 'gets a new session id');
my $replay = browser();
set_session_cookie($replay, $before);
is(call($replay, 'GET', '/auth/session')->{status}, 401, 'and the replaced one is refused');

# Rate limits: five attempts a minute per account, from anywhere, then 429
# with headers; and five per address, whatever the accounts.
my @statuses = map { sign_in(browser(), 'eve@example.com', "guess $_")->{status} } 1 .. 5;
is_deeply(\@statuses, [ (401) x 5 ], 'five wrong guesses from five addresses: 401 each');
$r = sign_in(browser(), 'eve@example.com');
is($r->{status}, 429, 'the sixth, even right: 429');
ok($r->{headers}{'retry-after'} && $r->{headers}{'ratelimit-policy'}, 'with Retry-After and RateLimit-Policy');
like($r->{json}{detail}, qr/"login"/, 'naming the policy');
my $sprayer = browser();
@statuses = map { sign_in($sprayer, "user$_\@example.com", 'password1')->{status} } 1 .. 6;
is_deeply(\@statuses, [ (401) x 5, 429 ], 'one address trying six accounts: the sixth is refused');

# ---- forged, tampered and expired tokens ----------------------------------
sub jwt
{
	my (%o) = @_;
	my $header = $o{header} // { alg => 'HS256', typ => 'JWT', kid => $o{kid} // 'new' };
	my $payload = $o{payload} // { iss => 'actloom', sub => $ada_id, sid => $o{sid}, iat => time, nbf => time,
		exp => time + 3600 };
	my $h = ref $header ? encode_base64url($JSON->encode($header)) : encode_base64url($header);
	my $p = encode_base64url($JSON->encode($payload));
	my $key = pack('H*', $o{key} // $new_key);
	my $sig = $o{sig} // encode_base64url(($o{mac} // \&hmac_sha256)->("$h.$p", $key));
	return "$h.$p.$sig";
}
my $ada_cookie = session_cookie($owner);
my $ada_claims = $JSON->decode(decode_base64url((split /\./, $ada_cookie)[1]));
my $sid = $ada_claims->{sid};
my %forged = (
	'a token signed by the test with the real key (control)' => [ 200, jwt(sid => $sid) ],
	'a token of the old key (rotation)' => [ 200, jwt(sid => $sid, kid => 'old', key => $old_key) ],
	'tampered: another user in the payload' => [ 401, do { my @p = split /\./, $ada_cookie;
		my $c = $JSON->decode(decode_base64url($p[1])); $c->{sub} = '00000000-0000-4000-8000-000000000001';
		join('.', $p[0], encode_base64url($JSON->encode($c)), $p[2]) } ],
	'tampered: signature changed' => [ 401, substr($ada_cookie, 0, -2) . (substr($ada_cookie, -2, 1) eq 'A' ? 'BA' : 'AA') ],
	'expired' => [ 401, jwt(sid => $sid, payload => { iss => 'actloom', sub => $ada_id, sid => $sid,
		iat => time - 7200, nbf => time - 7200, exp => time - 3600 }) ],
	'alg none, unsigned' => [ 401, jwt(sid => $sid, header => { alg => 'none', typ => 'JWT', kid => 'new' }, sig => '') ],
	'alg none, any signature' => [ 401, jwt(sid => $sid, header => { alg => 'none', typ => 'JWT', kid => 'new' }) ],
	'wrong algorithm: HS384 with the same key' => [ 401, jwt(sid => $sid,
		header => { alg => 'HS384', typ => 'JWT', kid => 'new' }, mac => \&hmac_sha384) ],
	'wrong algorithm: RS256 header' => [ 401, jwt(sid => $sid, header => { alg => 'RS256', typ => 'JWT', kid => 'new' }) ],
	'unknown kid' => [ 401, jwt(sid => $sid, kid => 'gone') ],
	'jku header' => [ 401, jwt(sid => $sid, header => { alg => 'HS256', kid => 'new', jku => 'https://evil.example/k' }) ],
	'duplicate alg' => [ 401, jwt(sid => $sid, header => '{"alg":"none","kid":"new","alg":"HS256"}') ],
	'a session id that does not exist' => [ 401, jwt(sid => '00000000-0000-4000-8000-000000000000') ],
);
for my $name (sort keys %forged)
{
	my ($want, $token) = @{ $forged{$name} };
	my $b = browser();
	set_session_cookie($b, $token);
	is(call($b, 'GET', '/auth/session')->{status}, $want, "$name: $want");
}
my $two = browser();
$two->{jar}->add("$base/", "__Host-actloom_session=$ada_cookie; Path=/; Secure");
$two->{jar}->add("$base/auth", "__Host-actloom_session=$ada_cookie; Path=/auth; Secure");
is(call($two, 'GET', '/auth/session')->{status}, 401, 'a session cookie sent twice: 401');

# ---- members: the kernel's rules through the API --------------------------
my $members = "/api/companies/$acme/members";
$r = call($owner, 'POST', $members, json => { email => 'bob@example.com', role => 'admin' });
is($r->{status}, 201, 'the owner adds Bob as admin');
my $bob_id = $r->{json}{user_id};
is(call($owner, 'POST', $members, json => { email => 'eve@example.com', role => 'member' })->{status}, 201, 'and Eve as member');
my $eve_id = $t->psql(q{SELECT id FROM actloom.users WHERE email = 'eve@example.com'});
is(call($owner, 'POST', $members, json => { email => 'nobody@example.com', role => 'member' })->{status}, 404, 'an unknown address: 404');
is(call($owner, 'POST', $members, json => { email => 'bob@example.com', role => 'member' })->{status}, 409, 'a member twice: 409');
is(call($owner, 'POST', $members, json => { email => 'x@example.com', role => 'boss' })->{status}, 422, 'an unknown role: 422');
$r = call($owner, 'GET', $members);
is_deeply([ map { "$_->{email}:$_->{role}" } @{ $r->{json} } ], [ 'ada@example.com:owner', 'bob@example.com:admin', 'eve@example.com:member' ], 'the member list');

# Role escalation attempts.
$bob->{csrf} = call($bob, 'GET', '/auth/csrf')->{json}{token};
$eve->{csrf} = call($eve, 'GET', '/auth/csrf')->{json}{token};
is(call($bob, 'PUT', "$members/$eve_id", json => { role => 'owner' })->{status}, 403, 'an admin cannot grant owner');
is(call($bob, 'PUT', "$members/$bob_id", json => { role => 'executive' })->{status}, 403, 'nor raise themself');
is(call($bob, 'PUT', "$members/$ada_id", json => { role => 'member' })->{status}, 403, 'nor demote the owner');
is(call($bob, 'DELETE', "$members/$ada_id")->{status}, 403, 'nor remove the owner');
is(call($eve, 'POST', $members, json => { email => 'x@example.com', role => 'member' })->{status}, 403, 'a member cannot invite');
is(call($eve, 'PUT', "$members/$eve_id", json => { role => 'admin' })->{status}, 403, 'nor promote themself');
is(call($eve, 'GET', "/api/companies/$acme/api-keys")->{status}, 403, 'nor list API keys');
is(call($owner, 'PUT', "$members/$ada_id", json => { role => 'admin' })->{status}, 409, 'the last owner cannot step down');
is(call($bob, 'PUT', "$members/$eve_id", json => { role => 'admin' })->{status}, 200, 'an admin promotes a member to admin');
is(call($owner, 'PUT', "$members/$eve_id", json => { role => 'member' })->{status}, 200, 'the owner sets her back');

# ---- cross-company access: as if it did not exist ------------------------
my $carol = browser();
sign_up($carol, 'carol@globex.example', 'Carol');
$r = call($carol, 'POST', '/api/companies', json => { name => 'Globex' });
my $globex = $r->{json}{id};
my $nowhere = '00000000-0000-4000-8000-00000000abcd';
for my $path ("/api/companies/$acme/members", "/api/companies/$acme/api-keys", "/api/companies/$acme/secrets",
	"/api/companies/$acme/audit")
{
	my $foreign = call($carol, 'GET', $path);
	(my $p2 = $path) =~ s/$acme/$nowhere/;
	my $missing = call($carol, 'GET', $p2);
	is($foreign->{status}, 404, "another company's $path: 404");
	is(without_id($foreign->{json}), without_id($missing->{json}), 'exactly as a company that does not exist');
}
is(call($carol, 'POST', "/api/companies/$acme/members", json => { email => 'carol@globex.example', role => 'owner' })->{status},
	404, 'joining another company: 404');
is(call($carol, 'DELETE', "/api/companies/$acme/members/$ada_id")->{status}, 404, 'removing its owner: 404');

# ---- API keys --------------------------------------------------------------
my $keys = "/api/companies/$acme/api-keys";
$r = call($owner, 'POST', $keys, json => { name => 'ci', scopes => ['reports.generate'] });
is($r->{status}, 201, 'an API key is created');
like($r->{json}{key}, qr/^alk_[0-9A-Za-z]{12}_/, 'shown once, in full');
my $key_id = $r->{json}{key_id};
$r = call($owner, 'GET', $keys);
is(scalar @{ $r->{json} }, 1, 'listed');
unlike($r->{content}, qr/alk_|hash/, 'without secret material');
is(call($owner, 'POST', $keys, json => { name => 'x', scopes => ['reports.generate'], extra => 1 })->{status}, 422,
	'an unknown field: 422');
is(call($bob, 'POST', $keys, json => { name => 'too much', scopes => ['company.delete'] })->{status}, 403,
	'a scope beyond one\'s own role: 403');
my $carol_key = call($carol, 'POST', "/api/companies/$globex/api-keys", json => { name => 'g', scopes => ['reports.read'] })->{json}{key_id};
is(call($owner, 'DELETE', "$keys/$carol_key")->{status}, 404, 'revoking another company\'s key through one\'s own: 404');
is(call($owner, 'DELETE', "$keys/$key_id")->{status}, 204, 'revoked');
is(call($owner, 'DELETE', "$keys/AAAAAAAAAAAA")->{status}, 404, 'an unknown key: 404');

# ---- integration secrets ---------------------------------------------------
my $secrets = "/api/companies/$acme/secrets";
is(call($owner, 'PUT', "$secrets/stripe.api-key", json => { value => 'sk_live_very_secret' })->{status}, 204, 'a secret is stored');
$r = call($owner, 'GET', $secrets);
is_deeply([ map { $_->{name} } @{ $r->{json} } ], ['stripe.api-key'], 'its name is listed');
unlike($r->{content}, qr/sk_live/, 'its value never');
is(call($eve, 'PUT', "$secrets/x", json => { value => 'v' })->{status}, 403, 'a member may not store one');
is(call($owner, 'PUT', "$secrets/Bad%20Name", json => { value => 'v' })->{status}, 404, 'a malformed name: 404');
is(call($owner, 'DELETE', "$secrets/stripe.api-key")->{status}, 204, 'deleted');
is(call($owner, 'DELETE', "$secrets/stripe.api-key")->{status}, 404, 'deleting it again: 404');

# ---- a removed member's live session --------------------------------------
is(call($eve, 'GET', $members)->{status}, 200, 'Eve reads the members');
is(call($owner, 'DELETE', "$members/$eve_id")->{status}, 204, 'the owner removes Eve');
is(call($eve, 'GET', $members)->{status}, 404, 'her next request, same session: 404');
is(call($eve, 'GET', '/auth/session')->{status}, 200, 'her session itself lives on');

# ---- the audit chain through the API --------------------------------------
$r = call($owner, 'GET', "/api/companies/$acme/audit?limit=3");
is($r->{status}, 200, 'the audit chain, first page');
is_deeply([ map { $_->{seq} } @{ $r->{json}{entries} } ], [ 1, 2, 3 ], 'three entries');
my $page2 = call($owner, 'GET', "/api/companies/$acme/audit?after=$r->{json}{next_after}&limit=1000");
is($page2->{json}{entries}[0]{seq}, 4, 'the next page starts after the cursor');
my @actions = map { $_->{action} } @{ $r->{json}{entries} }, @{ $page2->{json}{entries} };
for my $a (qw(company.create member.add member.set_role member.remove api_key.create api_key.revoke secret.put secret.delete))
{
	ok((grep { $_ eq $a } @actions), "the chain records $a");
}
ok((grep { defined $_->{actor_session} } @{ $page2->{json}{entries} }), 'entries name the acting session');
is(call($owner, 'GET', "/api/companies/$acme/audit?after=-1")->{status}, 422, 'a bad cursor: 422');
is(call($bob, 'GET', "/api/companies/$acme/audit")->{status}, 403, 'an admin may not read it');
$r = call($owner, 'GET', "/api/companies/$acme/audit/verify");
is($r->{json}{ok}, JSON::PP::true, 'it verifies');
$r = call($owner, 'POST', "/api/companies/$acme/audit/checkpoint");
is($r->{status}, 201, 'a signed checkpoint');
ok($r->{json}{signature} && $r->{json}{hash}, 'with its hash and signature');
# The key that comes with it is the signing key's public half, and checks the
# signature over the message with openssl alone.
my $pub = $r->{json}{public_key} // '';
like($pub, qr/^-----BEGIN PUBLIC KEY-----\n.+\n-----END PUBLIC KEY-----\n?$/s, 'with the public key, PEM');
system("openssl pkey -in '$dir/audit.key' -pubout -out '$dir/audit.pub'") == 0 or die 'openssl pkey';
is($pub, slurp_file("$dir/audit.pub"), 'the public half of the audit signing key');
write_file("$dir/cp.pub", $pub);
write_file("$dir/cp.sig", pack('H*', $r->{json}{signature}));
write_file("$dir/cp.msg", pack('H*', $r->{json}{message}));
my $verify = "openssl pkeyutl -verify -pubin -inkey '$dir/cp.pub' -rawin -in '$dir/cp.msg' -sigfile '$dir/cp.sig' >/dev/null 2>&1";
is(system($verify), 0, 'the signature verifies with it');
write_file("$dir/cp.msg", pack('H*', $r->{json}{message}) . 'x');
isnt(system($verify), 0, 'and not over another message');

# ---- sessions: list, revoke one, sign out, everywhere ----------------------
my $ada2 = browser();
sign_in($ada2, 'ada@example.com');
$r = call($owner, 'GET', '/api/sessions');
is(scalar(@{ $r->{json} }), 2, 'Ada has two sessions');
my ($other) = grep { !$_->{current} } @{ $r->{json} };
is(call($owner, 'DELETE', "/api/sessions/$other->{id}")->{status}, 204, 'she revokes the other one');
is(call($ada2, 'GET', '/auth/session')->{status}, 401, 'which is refused on its next request');
is(call($owner, 'DELETE', "/api/sessions/$other->{id}")->{status}, 204, 'revoking it again changes nothing');
is(call($carol, 'DELETE', "/api/sessions/$sid")->{status}, 404, 'another user\'s session: 404');

my $stolen = session_cookie($bob2);
$r = call($bob2, 'POST', '/auth/logout');
is($r->{status}, 204, 'sign-out: 204');
ok(!session_cookie($bob2), 'the cookie is deleted');
my $thief = browser();
set_session_cookie($thief, $stolen);
is(call($thief, 'GET', '/auth/session')->{status}, 401, 'the signed-out token replayed: 401');

my $bob3 = browser();
sign_in($bob3, 'bob@example.com');
$r = call($bob, 'POST', '/auth/logout-all');
is($r->{status}, 200, 'sign-out everywhere');
is($r->{json}{revoked}, 2, 'ends both of Bob\'s live sessions');
is(call($bob3, 'GET', '/auth/session')->{status}, 401, 'the other browser is signed out on its next request');
is(call($bob, 'GET', '/auth/session')->{status}, 401, 'and so is this one');

# Password change: every session ends.
my $ada3 = browser();
sign_in($ada3, 'ada@example.com');
$t->node->safe_psql('actloom', "SELECT actloom.set_password('$ada_id', 'a whole new password')",
	extra_params => [ '-U', 'shim' ]);
is(call($ada3, 'GET', '/auth/session')->{status}, 401, 'a password change ends the sessions');
is(sign_in(browser(), 'ada@example.com', 'a whole new password')->{status}, 200, 'the new password signs in');

# Idle and absolute expiry, decided by the database on the next request.
my $idle = browser();
sign_in($idle, 'carol@globex.example');
my $idle_sid = $JSON->decode(decode_base64url((split /\./, session_cookie($idle))[1]))->{sid};
$t->psql("UPDATE actloom.sessions SET last_seen_at = now() - interval '31 minutes' WHERE id = '$idle_sid'");
is(call($idle, 'GET', '/auth/session')->{status}, 401, 'an idle session: 401');
ok(!session_cookie($idle), 'and its cookie deleted');

# ---- the audit trail: every action of this test, and intact --------------
my $system = $t->psql(q{SELECT string_agg(DISTINCT action, ',' ORDER BY action) FROM actloom.audit_log
	WHERE chain = actloom.system_chain()});
for my $a (qw(user.create user.sign_in user.sign_in_failed session.create session.revoke session.revoke_all user.password_set))
{
	like($system, qr/\b\Q$a\E\b/, "the system chain records $a");
}
is($t->psql(qq{SELECT count(*) FROM actloom.audit_log WHERE action = 'user.sign_in_failed'
	AND client_addr = '$anon->{addr}'}), 2, 'failed sign-ins are recorded with the client address');
is($t->psql('SELECT bool_and(ok) FROM actloom.audit_verify()'), 't', 'every chain verifies');
my $server_log = slurp_file($t->node->logfile);
unlike($server_log, qr/\Q$PASSWORD\E|a whole new password/, 'no password reached the server log');
unlike($server_log, qr/sk_live_very_secret/, 'no secret value either');
unlike($server_log, qr/alk_[0-9A-Za-z]{12}_/, 'nor an API key');
is($t->stop_shim, 0, 'the shim exits cleanly');
done_testing();
