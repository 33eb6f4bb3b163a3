# WebhookReceiver: an HTTP (or HTTPS) server on loopback that receives
# webhooks for the tests, verifies their signatures itself, and misbehaves
# when asked to.
#
#   my $r = WebhookReceiver->new(dir => $dir);                # plain HTTP
#   my $r = WebhookReceiver->new(dir => $dir, tls => 1);      # a self-signed certificate ($r->{cert})
#   $r->secret('ep1', 'whsec_...');   # signatures are checked against every secret given
#   $r->url('/ok')                    # http://localhost:PORT/ok
#   $r->requests                      # every request received, oldest first
#   $r->connections                   # connections accepted
#   $r->stop;
#
# What a path answers (its first segment decides; the rest is free, so
# that tests can tell endpoints apart):
#   /ok/...               200 {"ok":true}
#   /status/N/...         N, with a short body
#   /retry-after/N/S/...  N with "Retry-After: S"
#   /fail/K/...           500 for the first K requests to this exact path, then 200
#   /redirect/PORT/...    302 to http://localhost:PORT/ok
#   /huge/...             200 with a 1 MiB body
#   /hang/...             reads the request and never answers (the connection stays open)
#   /slow/MS/...          200 after MS milliseconds
#
# Each connection is served by a child process; the log is one JSON object a
# line, appended under an exclusive lock.  The signature check uses Perl's
# own HMAC (Digest::SHA), independent of the database's.
package WebhookReceiver;

use strict;
use warnings;
use Digest::SHA qw(hmac_sha256);
use Fcntl qw(:flock);
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(decode_base64 encode_base64);
use POSIX ();
use Time::HiRes qw(usleep time);

sub new
{
	my ($class, %args) = @_;
	my $self = bless { dir => $args{dir}, tls => $args{tls} }, $class;
	mkdir $self->{dir};
	mkdir "$self->{dir}/secrets";
	$self->{log} = "$self->{dir}/requests.jsonl";
	if (!$args{keep_log} || !-e $self->{log})
	{
		open my $fh, '>', $self->{log} or die "$self->{log}: $!";
		close $fh;
	}
	if ($self->{tls})
	{
		$self->{cert} = "$self->{dir}/cert.pem";
		$self->{key} = "$self->{dir}/key.pem";
		system("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
			  . "-subj /CN=127.0.0.1 -addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
			  . "-keyout '$self->{key}' -out '$self->{cert}' 2>/dev/null") == 0
		  or die 'openssl req failed';
		chmod 0644, $self->{key};
	}
	my $listener = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $args{port} // 0, Listen => 128,
		ReuseAddr => 1, Proto => 'tcp') or die "listen: $!";
	$self->{port} = $listener->sockport;
	if ($args{foreground})
	{
		# Its own process group, so that stopping the group stops the
		# connections' children too (a hanging one sleeps for an hour).
		POSIX::setpgid(0, 0);
		$self->serve($listener);
		return;
	}
	my $pid = fork // die "fork: $!";
	if ($pid == 0)
	{
		POSIX::setpgid(0, 0);
		$self->serve($listener);
		POSIX::_exit(0);
	}
	close $listener;
	$self->{pid} = $pid;
	return $self;
}

# A master key ring for the test's cluster (secrets are sealed); returns its path.
sub keyring
{
	my ($path) = @_;
	open my $fh, '>', $path or die "$path: $!";
	printf $fh "key 1 %s\nactive 1\n", unpack('H*', join('', map { chr(int(rand(256))) } 1 .. 32));
	close $fh;
	chmod 0600, $path;
	return $path;
}

sub port { $_[0]->{port} }

sub url
{
	my ($self, $path) = @_;
	# A name, since the database refuses loopback address literals outright;
	# the shim reaches it only through webhooks.allow_networks.
	return ($self->{tls} ? 'https' : 'http') . "://localhost:$self->{port}$path";
}

# Signatures are checked against this secret too, under this name.
sub secret
{
	my ($self, $name, $secret) = @_;
	open my $fh, '>', "$self->{dir}/secrets/$name" or die $!;
	print $fh $secret;
	close $fh;
}

sub forget_secret { my ($self, $name) = @_; unlink "$self->{dir}/secrets/$name"; }

sub log_lines
{
	my ($self) = @_;
	open my $fh, '<', $self->{log} or die $!;
	flock $fh, LOCK_SH;
	my @lines = map { decode_json($_) } grep { /\S/ } <$fh>;
	close $fh;
	return @lines;
}

sub requests { return grep { $_->{event} eq 'request' } $_[0]->log_lines }
sub connections { return scalar grep { $_->{event} eq 'connection' } $_[0]->log_lines }

# Waits until $n requests (to paths matching $re, when given) arrived; returns them.
sub wait_requests
{
	my ($self, $n, $timeout, $re) = @_;
	my $until = time + ($timeout // 20);
	while (1)
	{
		my @r = grep { !defined $re || $_->{path} =~ $re } $self->requests;
		return @r if @r >= $n || time > $until;
		usleep(20_000);
	}
}

sub stop
{
	my ($self) = @_;
	return unless $self->{pid};
	kill 'KILL', -$self->{pid};
	waitpid $self->{pid}, 0;
	delete $self->{pid};
}

sub DESTROY { $_[0]->stop }

# --- the server (in the child) ---------------------------------------------------

sub append
{
	my ($self, $entry) = @_;
	open my $fh, '>>', $self->{log} or return;
	flock $fh, LOCK_EX;
	syswrite $fh, encode_json($entry) . "\n";
	close $fh;
}

sub serve
{
	my ($self, $listener) = @_;
	$SIG{CHLD} = 'IGNORE';
	require IO::Socket::SSL if $self->{tls};
	while (1)
	{
		my $conn = $listener->accept or next;
		$self->append({ event => 'connection', at => time });
		my $pid = fork;
		if (defined $pid && $pid == 0)
		{
			close $listener;
			if ($self->{tls})
			{
				IO::Socket::SSL->start_SSL($conn, SSL_server => 1, SSL_cert_file => $self->{cert},
					SSL_key_file => $self->{key}) or POSIX::_exit(0);
			}
			$self->connection($conn);
			POSIX::_exit(0);
		}
		close $conn;
	}
}

sub read_request
{
	my ($conn) = @_;
	my $head = '';
	while ($head !~ /\r\n\r\n/)
	{
		my $n = sysread($conn, my $chunk, 1);
		return undef unless $n;
		$head .= $chunk;
		return undef if length $head > 65536;
	}
	my ($line, @fields) = split /\r\n/, $head;
	my ($method, $path) = split / /, $line;
	my %h;
	for (@fields)
	{
		my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
		$h{ lc $k } = $v;
	}
	my $body = '';
	my $len = $h{'content-length'} // 0;
	while (length $body < $len)
	{
		my $n = sysread($conn, my $chunk, $len - length $body);
		return undef unless $n;
		$body .= $chunk;
	}
	return { method => $method, path => $path, headers => \%h, body => $body };
}

# The names of the secrets each v1 signature of the request verifies with.
sub verify
{
	my ($self, $req) = @_;
	my $h = $req->{headers};
	my @names;
	return \@names unless defined $h->{'webhook-id'} && defined $h->{'webhook-timestamp'};
	my $content = "$h->{'webhook-id'}.$h->{'webhook-timestamp'}.$req->{body}";
	opendir my $d, "$self->{dir}/secrets" or return \@names;
	my @secrets = sort grep { !/^\./ } readdir $d;
	for my $sig (split / /, $h->{'webhook-signature'} // '')
	{
		my ($v, $b64) = split /,/, $sig, 2;
		next unless $v eq 'v1' && defined $b64;
		for my $name (@secrets)
		{
			open my $fh, '<', "$self->{dir}/secrets/$name" or next;
			my $secret = <$fh>;
			close $fh;
			(my $key = $secret) =~ s/^whsec_//;
			my $mac = encode_base64(hmac_sha256($content, decode_base64($key)), '');
			push @names, $name if $mac eq $b64;
		}
	}
	return \@names;
}

sub respond
{
	my ($conn, $status, $body, @headers) = @_;
	my $head = "HTTP/1.1 $status X\r\nContent-Type: application/json\r\nContent-Length: " . length($body) . "\r\n";
	$head .= "$_\r\n" for @headers;
	syswrite $conn, "$head\r\n$body";
}

sub connection
{
	my ($self, $conn) = @_;
	while (my $req = read_request($conn))
	{
		my $at = time;    # when the request arrived, before the log is read
		my @seg = split m{/}, $req->{path};
		my $mode = $seg[1] // '';
		my $seen = grep { $_->{event} eq 'request' && $_->{path} eq $req->{path} } $self->log_lines;
		$self->append({ event => 'request', at => $at, method => $req->{method}, path => $req->{path},
			headers => $req->{headers}, body => $req->{body}, verified => $self->verify($req) });
		if ($mode eq 'ok') { respond($conn, 200, '{"ok":true}') }
		elsif ($mode eq 'status') { respond($conn, $seg[2], '{"status":' . ($seg[2] + 0) . '}') }
		elsif ($mode eq 'retry-after') { respond($conn, $seg[2], '{}', "Retry-After: $seg[3]") }
		elsif ($mode eq 'fail') { respond($conn, $seen < $seg[2] ? 500 : 200, '{}') }
		elsif ($mode eq 'redirect') { respond($conn, 302, '{}', "Location: http://localhost:$seg[2]/ok") }
		elsif ($mode eq 'huge') { respond($conn, 200, 'x' x (1024 * 1024)) }
		elsif ($mode eq 'hang') { sleep 3600 }
		elsif ($mode eq 'slow') { usleep($seg[2] * 1000); respond($conn, 200, '{}') }
		else { respond($conn, 404, '{}') }
	}
}

1;
