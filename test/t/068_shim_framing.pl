# Request smuggling: a request whose body another server on the path could
# delimit otherwise (Content-Length with Transfer-Encoding, Content-Length
# values that differ, a Transfer-Encoding other than one "chunked", folded
# or LF-ended head lines) gets 400 and its connection is closed: nothing
# hidden in its body is served, over plain TCP or TLS.  What h2o refuses
# itself is closed as well; well-framed requests keep their connection.
use strict;
use warnings;
use IO::Socket::INET;
use IO::Socket::SSL;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use ShimTest;

my $t = ShimTest->new(name => 'framing');
$t->psql(q{SELECT actloom.expose(1, 'POST', 'items', 'public.put_item(jsonb,jsonb)', 'reports.generate', 'api',
	'{"type": "object", "additionalProperties": true}')});
$t->start_shim;
my $key = $t->make_key(['reports.*']);

# A request that stores an item: served, it leaves a trace in the database.
sub post_item
{
	my ($doc, %opt) = @_;
	my $version = $opt{version} || '1.1';
	my $framing = exists $opt{framing} ? $opt{framing} : 'Content-Length: ' . length($doc) . "\r\n";
	return "POST /v1/items HTTP/$version\r\nHost: x\r\nAuthorization: Bearer $key\r\n"
	  . "Content-Type: application/json\r\n$framing\r\n$doc";
}
my $hidden = post_item('{"hidden":true}');
my $chunked_empty = "2\r\n{}\r\n0\r\n\r\n";

# Writes the bytes on a new connection and reads until the server closes it
# or 4 s pass.  Returns the responses (status, head, body) and whether the
# server closed the connection.
sub exchange
{
	my ($bytes, %opt) = @_;
	my %peer = (PeerAddr => '127.0.0.1', PeerPort => $opt{port} || $t->{port}, Proto => 'tcp');
	my $s = $opt{tls}
	  ? IO::Socket::SSL->new(%peer, SSL_verify_mode => SSL_VERIFY_NONE)
	  : IO::Socket::INET->new(%peer);
	die "connect: $! $SSL_ERROR" unless $s;
	$s->autoflush(1);
	print $s $bytes;
	my ($out, $closed) = ('', 0);
	my $deadline = time + 4;
	$s->blocking(0);
	while (time < $deadline)
	{
		my $n = sysread($s, my $buf, 65536);
		if (defined $n && $n == 0) { $closed = 1; last; }
		if (defined $n) { $out .= $buf; next; }
		if (!$!{EAGAIN} && !$!{EWOULDBLOCK} && !($opt{tls} && $SSL_ERROR == SSL_WANT_READ)) { $closed = 1; last; }
		sleep 0.02;
	}
	close $s;
	my @responses;
	while ($out =~ s{\AHTTP/1\.1 (\d{3})[^\r\n]*\r\n(.*?)\r\n\r\n}{}s)
	{
		my ($status, $head) = ($1, $2);
		my ($len) = $head =~ /^content-length: *(\d+)\r?$/mi;
		push @responses, { status => $status, head => $head, body => substr($out, 0, $len || 0, '') };
	}
	return { responses => \@responses, closed => $closed, rest => $out };
}

sub items { return $t->psql('SELECT count(*) FROM public.items'); }

# The request is refused with the problem, alone on a connection the server
# closed, and neither it nor what its body hides stored anything.
sub refused
{
	my ($name, $bytes, $detail, %opt) = @_;
	my $before = items();
	my $x = exchange($bytes, %opt);
	my @r = @{ $x->{responses} };
	is(scalar @r, 1, "$name: one response") or diag(explain(\@r));
	is($r[0]{status}, 400, "$name: 400");
	like($r[0]{head}, qr{^content-type: application/problem\+json\r?$}mi, "$name: a problem document");
	my $problem = eval { $ShimTest::JSON->decode($r[0]{body}) } || {};
	is($problem->{type}, 'urn:actloom:problem:ambiguous-framing', "$name: ambiguous-framing");
	like($problem->{detail} || '', $detail, "$name: the detail names the rule");
	like($r[0]{head}, qr{^connection: close\r?$}mi, "$name: Connection: close");
	ok($x->{closed}, "$name: the server closed the connection");
	is($x->{rest}, '', "$name: nothing else came back");
	is(items(), $before, "$name: nothing was stored");
}

# --- ambiguous framing: refused by the shim ------------------------------------------------
refused('Content-Length and Transfer-Encoding',
	post_item($chunked_empty . $hidden,
		framing => 'Content-Length: ' . length($chunked_empty . $hidden) . "\r\nTransfer-Encoding: chunked\r\n"),
	qr/both Content-Length and Transfer-Encoding/);
refused('Transfer-Encoding before Content-Length',
	post_item($chunked_empty . $hidden, framing => "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n"),
	qr/both Content-Length and Transfer-Encoding/);
refused('two Content-Length values, the smaller first',
	post_item('{}' . $hidden, framing => "Content-Length: 2\r\nContent-Length: " . length('{}' . $hidden) . "\r\n"),
	qr/several Content-Length fields that differ/);
refused('two Content-Length values, the larger first',
	post_item('{}' . $hidden, framing => 'Content-Length: ' . length('{}' . $hidden) . "\r\nContent-Length: 2\r\n"),
	qr/several Content-Length fields that differ/);
refused('Transfer-Encoding gzip, then chunked in another field',
	post_item($chunked_empty . $hidden, framing => "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"),
	qr/single field whose value is chunked/);
refused('chunked twice',
	post_item($chunked_empty . $hidden, framing => "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
	qr/single field whose value is chunked/);
refused('Transfer-Encoding in HTTP/1.0',
	post_item($chunked_empty . $hidden,
		version => '1.0', framing => "Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n"),
	qr/HTTP\/1\.0 request cannot carry Transfer-Encoding/);
refused('a folded field',
	post_item('{}' . $hidden, framing => "Content-Length: 2\r\nX-Note: a\r\n Transfer-Encoding: chunked\r\n"),
	qr/folded/);
refused('a field line ended by LF alone',
	post_item('{}' . $hidden, framing => "Content-Length: 2\nX-Note: a\r\n"),
	qr/ends in LF without CR/);

# --- what h2o refuses itself: 400 in text, and the connection closed -------------------------
for my $case (
	[ 'Transfer-Encoding gzip', "Transfer-Encoding: gzip\r\n", qr/unknown transfer-encoding/ ],
	[ 'chunked, then gzip in another field', "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
		qr/unknown transfer-encoding/ ],
	[ 'a Content-Length list', "Content-Length: 2, 2\r\n", qr/broken content-length header/ ],
	[ 'Content-Length and Transfer-Encoding identity', "Content-Length: 2\r\nTransfer-Encoding: identity\r\n",
		qr/unknown transfer-encoding/ ])
{
	my ($name, $framing, $body) = @$case;
	my $before = items();
	my $x = exchange(post_item('{}' . $hidden, framing => $framing));
	my @r = @{ $x->{responses} };
	is(scalar @r, 1, "$name: one response, from h2o");
	is($r[0]{status}, 400, "$name: 400");
	like($r[0]{body}, $body, "$name: h2o's text");
	like($r[0]{head}, qr{^x-content-type-options: nosniff\r?$}mi, "$name: with the security headers");
	ok($x->{closed} && $x->{rest} eq '', "$name: the connection closed after it");
	is(items(), $before, "$name: nothing was stored");
}

# --- well-framed requests keep their connection ------------------------------------------------------
for my $case (
	[ 'Content-Length', post_item('{"n":1}') ],
	[ 'the same Content-Length twice', post_item('{"n":2}', framing => "Content-Length: 7\r\nContent-Length: 7\r\n") ],
	[ 'chunked', post_item("7\r\n{\"n\":3}\r\n0\r\n\r\n", framing => "Transfer-Encoding: chunked\r\n") ])
{
	my ($name, $bytes) = @$case;
	my $before = items();
	my $x = exchange($bytes . post_item('{"n":0}') . "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	is(join(' ', map { $_->{status} } @{ $x->{responses} }), '200 200 200', "$name: served, and what follows too");
	is(items(), $before + 2, "$name: both items stored");
}

# HTTP/2 is not offered in clear: "Upgrade: h2c" is not followed.
my $x = exchange("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\n"
	  . "HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n");
is(join(' ', map { $_->{status} } @{ $x->{responses} }), '200', 'Upgrade: h2c is answered in HTTP/1.1');
unlike(join('', map { $_->{head} } @{ $x->{responses} }), qr/^upgrade:/mi, 'without switching protocols');
$x = exchange("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
is($x->{responses}[0]{status}, 400, 'the HTTP/2 preface in clear: 400');

# --- the same over TLS -------------------------------------------------------------------------
my $dir = $PostgreSQL::Test::Utils::tmp_check;
system("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 -keyout $dir/key.pem "
	  . "-out $dir/cert.pem 2>/dev/null") == 0
  or die 'openssl req failed';
my $u = $t->peer('framing-tls');
$u->{config}{tls} = { certificate => "$dir/cert.pem", key => "$dir/key.pem" };
$u->start_shim;
refused('over TLS: Content-Length and Transfer-Encoding',
	post_item($chunked_empty . $hidden, framing => "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"),
	qr/both Content-Length and Transfer-Encoding/, tls => 1, port => $u->{port});
refused('over TLS: two Content-Length values',
	post_item('{}' . $hidden, framing => "Content-Length: 2\r\nContent-Length: 3\r\n"),
	qr/several Content-Length fields that differ/, tls => 1, port => $u->{port});
$x = exchange(post_item('{"n":4}') . post_item('{"n":5}', framing => "Content-Length: 7\r\nConnection: close\r\n"),
	tls => 1, port => $u->{port});
is(join(' ', map { $_->{status} } @{ $x->{responses} }), '200 200', 'over TLS: well-framed requests are served');

is($u->stop_shim, 0, 'the TLS shim: SIGTERM, exit 0');
is($t->stop_shim, 0, 'SIGTERM: exit 0');
done_testing();
