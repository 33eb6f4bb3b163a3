# Request heads and connections: limits.header_bytes counts an HTTP/1.1 head
# byte for byte as it came (Host and the framing fields included); h2o's own
# bounds (H2O_MAX_REQLEN bytes, 100 fields) answer 400 and close; and
# limits.connections caps the connections a worker thread holds, so that
# what heads can make it buffer is bounded (test/bench/headers.sh measures
# the memory).
use strict;
use warnings;
use IO::Socket::INET;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use ShimTest;

$SIG{PIPE} = 'IGNORE';    # h2o closes on heads past its limit while they are still being written

my $t = ShimTest->new(name => 'heads', config => { threads => 1, limits => { header_bytes => 4096, connections => 3 } });
$t->start_shim;

sub connect_shim
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $t->{port}, Proto => 'tcp')
	  or die "connect: $!";
	$s->autoflush(1);
	return $s;
}

# Whether a whole response (head and Content-Length bytes of body) is in $out.
sub complete
{
	my ($out) = @_;
	return 0 unless $out =~ /\A(.*?\r\n\r\n)/s;
	my $head = $1;
	my ($len) = $head =~ /^content-length: *(\d+)\r$/mi;
	return defined $len && length($out) - length($head) >= $len;
}

# What comes back within the time given (until a whole response, or until
# the server closes with until_close): the status, the bytes, and whether
# the server closed the connection.
sub answer
{
	my ($s, $timeout, %opt) = @_;
	my ($out, $closed) = ('', 0);
	my $deadline = time + $timeout;
	$s->blocking(0);
	while (time < $deadline)
	{
		my $n = sysread($s, my $buf, 65536);
		if (defined $n && $n == 0) { $closed = 1; last; }
		if (defined $n) { $out .= $buf; last if !$opt{until_close} && complete($out); next; }
		if (!$!{EAGAIN} && !$!{EWOULDBLOCK}) { $closed = 1; last; }
		sleep 0.02;
	}
	$s->blocking(1);
	my ($status) = $out =~ m{^HTTP/1\.1 (\d{3})};
	return { status => $status || 0, out => $out, closed => $closed };
}

# One request on its own connection, closed after the answer.
sub once
{
	my ($bytes, %opt) = @_;
	my $s = connect_shim();
	print $s $bytes;
	my $a = answer($s, 5, %opt);
	close $s;
	return $a;
}

# A GET /healthz whose head is exactly $len bytes long, padded in X-Pad.
sub head_of
{
	my ($len, %opt) = @_;
	my $host = $opt{host} || 'x';
	my $fixed = length("GET /healthz HTTP/1.1\r\nHost: $host\r\nX-Pad: \r\n\r\n");
	return "GET /healthz HTTP/1.1\r\nHost: $host\r\nX-Pad: " . ('a' x ($len - $fixed)) . "\r\n\r\n";
}

# --- limits.header_bytes, counted as the head came -----------------------------------------------
is(length head_of(4096), 4096, 'the head of 4096 bytes is what it says');
is(once(head_of(4096))->{status}, 200, 'a head of exactly header_bytes: served');
my $a = once(head_of(4097));
is($a->{status}, 431, 'one byte more: 431');
like($a->{out}, qr/"type":"urn:actloom:problem:headers-too-large"/, 'the headers-too-large problem');
is(once(head_of(4097, host => 'x' x 200))->{status}, 431, 'Host counts');
is(once("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nX-Pad: " . ('a' x 4040) . "\r\n\r\n")->{status},
	431, 'Content-Length counts');

# --- what h2o reads before the shim sees a request ------------------------------------------------
my $line = 'X-Pad: ' . ('a' x 7990) . "\r\n";
$a = once("GET /healthz HTTP/1.1\r\nHost: x\r\n" . ($line x 52) . "\r\n");
is($a->{status}, 431, 'a head of 416 KB (52 fields): the shim answers 431');
$a = once("GET /healthz HTTP/1.1\r\nHost: x\r\n" . ($line x 53), until_close => 1);
is($a->{status}, 400, 'a head past 417,792 bytes (H2O_MAX_REQLEN) that has not ended: h2o answers 400');
like($a->{out}, qr/\r\n\r\nBad Request$/, 'in text');
ok($a->{closed}, 'and closes the connection');
$a = once("GET /healthz HTTP/1.1\r\n" . ("X-A: b\r\n" x 101) . "\r\n", until_close => 1);
is($a->{status}, 400, '101 fields (H2O_MAX_HEADERS is 100): h2o answers 400');
ok($a->{closed}, 'and closes the connection');

# --- limits.connections ------------------------------------------------------------------------------------
my @held = map { connect_shim() } 1 .. 3;
print $_ "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " . ('a' x 3000) for @held;
sleep 0.3;
my $fourth = connect_shim();
print $fourth "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
is(answer($fourth, 1.5)->{status}, 0, 'three connections held: a fourth is not served');
print { $held[0] } "\r\n\r\n";
is(answer($held[0], 5)->{status}, 200, 'a held connection finishes its request: served');
is(answer($fourth, 1)->{status}, 0, 'it stays open, and the fourth still waits');
close $held[0];
$a = answer($fourth, 5);
is($a->{status}, 200, 'one closes: the fourth is served');
close $_ for $fourth, @held[ 1, 2 ];
sleep 0.2;
is($t->request('GET', '/healthz')->{status}, 200, 'all closed: new connections are served');

is($t->stop_shim, 0, 'SIGTERM: exit 0');
done_testing();
