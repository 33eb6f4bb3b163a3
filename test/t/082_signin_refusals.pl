# Refused sign-ins are answered late (rate_limits.refusal_delay_ms): the
# worker's loop serves other requests meanwhile, at most
# rate_limits.refusals_held_max refusals wait at once, a client that goes
# away while its refusal waits costs nothing, and no refusal reaches the
# database.  Assertions are about order, not durations, but for a lower
# bound on the delay.
use strict;
use warnings;
use IO::Socket::INET;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use ShimTest;

my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $keys = "$dir/refusals.keys";
open my $kf, '>', $keys or die $!;
printf $kf "key k %s\nactive k\n", '44' x 32;
close $kf;
chmod 0600, $keys;

my $delay_ms = 3000;
my $t = ShimTest->new(name => 'refusals', config => {
	# One worker, so that the bound on waiting refusals is the whole shim's.
	threads => 1,
	session => { key_file => $keys, cookie => 'insecure-dev' },
	rate_limits => {
		refusal_delay_ms => $delay_ms,
		refusals_held_max => 2,
		classes => {
			login => { limit => 1, period => 3600, burst => 1, key => ['address'] },
			signup => { limit => 1, period => 3600, burst => 1, key => ['address'] },
		},
	},
});
$t->start_shim;
my $JSON = JSON::PP->new->canonical;

# A sign-in (or sign-up) sent on a connection of its own, not read yet.
sub send_auth
{
	my ($path) = @_;
	my $body = $JSON->encode({ email => 'nobody@example.com', password => 'wrong password',
		$path eq '/auth/signup' ? (name => 'N') : () });
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->{port}, Proto => 'tcp') or die "connect: $!";
	$s->autoflush(1);
	print $s "POST $path HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
	  . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
	return $s;
}

# The status line, once it arrived (waiting at most $timeout seconds), or ''.
sub status_of
{
	my ($s, $timeout) = @_;
	my ($out, $deadline) = ('', time + $timeout);
	$s->blocking(0);
	while (time < $deadline)
	{
		my $n = sysread($s, my $buf, 65536);
		last if defined $n && $n == 0;
		if (defined $n) { $out .= $buf; last if $out =~ /\r\n\r\n/; next; }
		sleep 0.01;
	}
	return $out =~ m{^HTTP/1\.1 (\d+)} ? $1 : '';
}

sub sign_in_failures
{
	return $t->psql("SELECT count(*) FROM actloom.audit_log WHERE action = 'user.sign_in_failed'");
}

# The budget of this address: one attempt, which fails in the database.
my $s = send_auth('/auth/login');
is(status_of($s, 10), '401', 'the first attempt reaches the database: 401');
my $failures = sign_in_failures();

# The next is refused, late; meanwhile the loop answers others.
my $started = time;
my $held = send_auth('/auth/login');
is(status_of($held, 0.3), '', 'a refused sign-in is not answered at once');
is($t->request('GET', '/healthz')->{status}, 200, 'while it waits, the worker serves other requests');
is(status_of($held, 10), '429', 'then it gets its 429');
cmp_ok(time - $started, '>=', $delay_ms / 1000 / 2, 'no sooner than (about) the delay');
is(sign_in_failures(), $failures, 'a refusal does no database work: nothing audited');

# Sign-up refusals wait too.
$s = send_auth('/auth/signup');
isnt(status_of($s, 10), '429', 'the first sign-up is not refused');
$held = send_auth('/auth/signup');
is(status_of($held, 0.3), '', 'a refused sign-up waits as well');
is(status_of($held, 10), '429', 'and gets its 429');

# At most refusals_held_max wait at once; the next is answered at once.
my @held = map { send_auth('/auth/login') } 1 .. 2;
sleep 0.3;
my $over = send_auth('/auth/login');
is(status_of($over, $delay_ms / 1000 / 2), '429', 'beyond the bound, a refusal is answered at once');
is(status_of($_, 0.1), '', 'while those within it still wait') for @held;
is(status_of($_, 10), '429', 'and get theirs later') for @held;

# Clients that go away while their refusal waits: the shim carries on.
for (1 .. 3) { my $gone = send_auth('/auth/login'); sleep 0.05; close $gone; }
sleep $delay_ms / 1000 + 0.5;
is($t->request('GET', '/healthz')->{status}, 200, 'clients gone while waiting: the shim carries on');
like($t->request('GET', '/metrics')->{content}, qr/actloom_rate_limited_total\{class="login"\} [1-9]/,
	'refusals are counted');

is($t->stop_shim, 0, 'the shim exits cleanly');

# The delay must leave room within the request timeout.
my $cfg = $t->write_config({ rate_limits => { refusal_delay_ms => 10000 }, limits => { request_timeout_ms => 5000 } });
my ($out, $err) = ('', '');
IPC::Run::run([ 'actloom-shim', '--check-config', '--config', $cfg ], '>', \$out, '2>', \$err);
like($err, qr/"rate_limits.refusal_delay_ms" must be less than "limits.request_timeout_ms"/,
	'a delay beyond the request timeout is refused');
done_testing();
