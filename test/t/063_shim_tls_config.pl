# TLS (with HSTS), the separate metrics listener, and --check-config.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ShimTest;

my $dir = $PostgreSQL::Test::Utils::tmp_check;

# --- --check-config ------------------------------------------------------------------
sub check_config
{
	my ($text) = @_;
	open my $fh, '>', "$dir/check.yaml" or die $!;
	print $fh $text;
	close $fh;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ 'actloom-shim', '--config', "$dir/check.yaml", '--check-config' ],
		'>', \$stdout, '2>', \$stderr);
	return ($ok, $stdout . $stderr);
}
my ($ok, $out) = check_config("listen: {port: 9000}\nlimits: {json_depth: 8}\n");
ok($ok, '--check-config accepts a valid file');
like($out, qr/is valid/, 'and says so');
($ok, $out) = check_config("listen: {port: 9000}\nlimits: {json_dept: 8}\n");
ok(!$ok, '--check-config refuses an unknown setting');
like($out, qr/check\.yaml:2: unknown setting "limits\.json_dept"/, 'naming the file, line and setting');
($ok, $out) = check_config("rate_limits: {classes: {api: {limit: 5, burst: 9}}}\n");
ok(!$ok, '--check-config refuses a burst above the limit');
($ok, $out) = check_config("listen: [\n");
ok(!$ok, '--check-config refuses invalid YAML');

# --- TLS and the metrics listener ----------------------------------------------------------
system('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1',
	'-keyout', "$dir/key.pem", '-out', "$dir/cert.pem", '-loglevel', 'quiet') == 0
  or system("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 -keyout $dir/key.pem -out $dir/cert.pem 2>/dev/null") == 0
  or die 'openssl req failed';
my $metrics_port = PostgreSQL::Test::Cluster::get_free_port();
my $t = ShimTest->new(name => 'tls', config => {
	tls => { certificate => "$dir/cert.pem", key => "$dir/key.pem" },
	metrics => { address => '127.0.0.1', port => $metrics_port },
});
$t->psql(q{SELECT actloom.expose(1, 'GET', 'whoami', 'public.whoami(jsonb,jsonb)', 'reports.read')});
$t->start_shim;
my $key = $t->make_key(['reports.read']);
my $headers = `curl -sk -D - -o /dev/null -H 'Authorization: Bearer $key' https://127.0.0.1:$t->{port}/v1/whoami`;
like($headers, qr{^HTTP/\S+ 200}, 'served over TLS');
like($headers, qr/^strict-transport-security: max-age=\d+; includeSubDomains\r?$/mi, 'HSTS under TLS');
my $plain = `curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$t->{port}/healthz`;
isnt($plain, '200', 'no plain HTTP on the TLS listener');
is($t->request('GET', '/healthz')->{status}, 200, 'an HTTPS client is served');
my $h2 = `curl -sk --http2 -o /dev/null -w '%{http_version}' https://127.0.0.1:$t->{port}/healthz`;
is($h2, '2', 'HTTP/2 by ALPN');

my $metrics = `curl -s http://127.0.0.1:$metrics_port/metrics`;
like($metrics, qr/actloom_http_requests_total\{route="GET \/v1\/whoami",status="200"\} 1/, '/metrics on its own listener');
my $code = `curl -sk -o /dev/null -w '%{http_code}' https://127.0.0.1:$t->{port}/metrics`;
is($code, '404', 'and not on the main one');
$code = `curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$metrics_port/v1/whoami`;
is($code, '404', 'the metrics listener serves no endpoints');
is($t->stop_shim, 0, 'SIGTERM: exit 0');
done_testing();
