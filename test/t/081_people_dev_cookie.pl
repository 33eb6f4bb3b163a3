# The session settings of the shim: the development cookie for plain HTTP
# (named for what it is, without Secure), origins configured explicitly, and
# a session key file the shim refuses to start with.
use strict;
use warnings;
use HTTP::CookieJar;
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use ShimTest;

my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $keys = "$dir/dev.keys";
open my $kf, '>', $keys or die $!;
printf $kf "key dev %s\nactive dev\n", '33' x 32;
close $kf;
chmod 0600, $keys;

my $t = ShimTest->new(name => 'dev_cookie', config => {
	session => { key_file => $keys, cookie => 'insecure-dev', origins => ['http://app.example.test:8080'] },
});
$t->start_shim;
my $JSON = JSON::PP->new->canonical;
my $jar = HTTP::CookieJar->new;
my $http = HTTP::Tiny->new(timeout => 10, cookie_jar => $jar);
my $origin = 'http://app.example.test:8080';

sub post
{
	my ($path, $body, %h) = @_;
	return $http->request('POST', $t->url($path), { headers => { 'Content-Type' => 'application/json', %h },
		content => $JSON->encode($body) });
}

my $r = post('/auth/signup', { email => 'dev@example.com', password => 'Tr0ub4dor&3 staple', name => 'Dev' },
	Origin => $origin);
is($r->{status}, 201, 'sign-up over plain HTTP');
my @set = ref $r->{headers}{'set-cookie'} ? @{ $r->{headers}{'set-cookie'} } : ($r->{headers}{'set-cookie'});
my ($session) = grep { /^actloom_insecure_dev_session=/ } @set;
like($session, qr/; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Lax$/, 'the development session cookie: no Secure');
ok(!(grep { /__Host-/ } @set), 'and no __Host- cookie, which plain HTTP could not set');
my ($csrf_cookie) = grep { /^actloom_insecure_dev_csrf=/ } @set;
like($csrf_cookie, qr/; SameSite=Strict$/, 'the development CSRF cookie');
my $csrf = $JSON->decode($r->{content})->{csrf_token};

is($http->get($t->url('/auth/session'))->{status}, 200, 'the browser is signed in');
$r = post('/api/companies', { name => 'Dev Co' }, 'X-CSRF-Token' => $csrf, Origin => $origin);
is($r->{status}, 201, 'a configured origin is accepted');
$r = post('/api/companies', { name => 'Dev Co' }, 'X-CSRF-Token' => $csrf, Origin => 'http://127.0.0.1:' . $t->{port});
is($r->{status}, 403, 'the Host-derived origin is not, once origins are configured');
$r = post('/auth/login', { email => 'dev@example.com', password => 'Tr0ub4dor&3 staple' }, Origin => 'http://evil.test');
is($r->{status}, 403, 'sign-in from a foreign origin is refused (login CSRF)');

# The secure cookie is not what a development shim reads.
my ($value) = $session =~ /^actloom_insecure_dev_session=([^;]+)/;
my $plain = HTTP::Tiny->new(timeout => 10)->get($t->url('/auth/session'),
	{ headers => { Cookie => "__Host-actloom_session=$value" } });
is($plain->{status}, 401, 'a token under the other mode\'s name is not read');
$t->stop_shim;

# A key file with group access, or missing, keeps the shim from starting.
chmod 0640, $keys;
my $cfg = $t->write_config;
my ($out, $err) = ('', '');
IPC::Run::run([ 'actloom-shim', '--check-config', '--config', $cfg ], '>', \$out, '2>', \$err);
like($err, qr/has group or world access; it must be 0600 or less/, 'a key file readable by the group: refused');
chmod 0600, $keys;
IPC::Run::run([ 'actloom-shim', '--check-config', '--config', $cfg ], '>', \$out, '2>', \$err);
like($out, qr/is valid/, 'at 0600: valid');
open $kf, '>', $keys or die $!;
print $kf "key dev 1234\nactive dev\n";
close $kf;
IPC::Run::run([ 'actloom-shim', '--check-config', '--config', $cfg ], '>', \$out, '2>', \$err);
like($err, qr/line 1 of the key file: a key has 64 to 128 hexadecimal digits/, 'a short key: refused, without the key in the message');
unlike($err, qr/1234/, 'the key material is not echoed');
done_testing();
