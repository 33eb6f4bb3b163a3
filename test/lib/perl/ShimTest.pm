# ShimTest: a real PostgreSQL and a real actloom-shim for end-to-end tests.
#
#   my $t = ShimTest->new(name => 'endpoints', config => {...});
#   $t->start_shim;                        # waits for /healthz
#   my $res = $t->request('POST', '/v1/x', key => $key, json => {...});
#   $t->stop_shim;                         # SIGTERM; checks exit 0 and no sanitizer report
#   my $u = $t->peer('other');             # a second shim on the same database
#
# The database "actloom" has the extension, a gateway login role "shim", a
# company "Acme" whose owner is o@acme.test, and a protected table
# public.items written by the endpoint functions the tests expose.
package ShimTest;

use strict;
use warnings;
use Compress::Zlib ();
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);

our $JSON = JSON::PP->new->canonical;

sub new
{
	my ($class, %args) = @_;
	my $self = bless { name => $args{name}, shim_pid => undef }, $class;
	my $node = PostgreSQL::Test::Cluster->new($args{name});
	$node->init;
	$node->append_conf('postgresql.conf', join("\n", "shared_preload_libraries = 'actloom'", 'max_connections = 50',
		@{ $args{pg_conf} || [] }) . "\n");
	$node->start;
	$self->{node} = $node;
	$node->safe_psql('postgres', 'CREATE DATABASE actloom');
	$node->safe_psql('actloom', 'CREATE EXTENSION actloom CASCADE');
	$node->safe_psql('actloom', q{
		CREATE ROLE shim LOGIN IN ROLE actloom_gateway;
		SET ROLE shim;
		SELECT actloom.create_user('o@acme.test');
		SELECT actloom.create_user('o@globex.test');
		RESET ROLE;
		BEGIN;
		SET LOCAL ROLE shim;
		SELECT actloom.act_as(id) FROM actloom.users WHERE email = 'o@acme.test';
		SELECT actloom.create_company('Acme');
		COMMIT;
		BEGIN;
		SET LOCAL ROLE shim;
		SELECT actloom.act_as(id) FROM actloom.users WHERE email = 'o@globex.test';
		SELECT actloom.create_company('Globex');
		COMMIT;
		CREATE TABLE public.items (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			company_id uuid NOT NULL,
			doc jsonb NOT NULL
		);
		CREATE INDEX ON public.items (company_id);
		SELECT actloom.protect_table('public.items');
		GRANT SELECT, INSERT ON public.items TO shim;
		-- Stores the body under the acting company and echoes it with the query.
		CREATE FUNCTION public.put_item(body jsonb, query jsonb) RETURNS jsonb LANGUAGE sql AS $$
			INSERT INTO public.items (company_id, doc) VALUES (actloom.current_company(), body)
			RETURNING jsonb_build_object('id', id, 'body', doc, 'query', query)
		$$;
		-- Reads nothing but the actor: proves the actor is set.
		CREATE FUNCTION public.whoami(body jsonb, query jsonb) RETURNS jsonb LANGUAGE sql AS $$
			SELECT jsonb_build_object('company', actloom.current_company(), 'query', query,
									  'items', (SELECT count(*) FROM public.items))
		$$;
	});
	$self->{acme} = $node->safe_psql('actloom', q{SELECT id FROM actloom.companies WHERE name = 'Acme'});
	$self->{globex} = $node->safe_psql('actloom', q{SELECT id FROM actloom.companies WHERE name = 'Globex'});
	$self->{owner}{ $self->{acme} } = $node->safe_psql('actloom', q{SELECT id FROM actloom.users WHERE email = 'o@acme.test'});
	$self->{owner}{ $self->{globex} } =
	  $node->safe_psql('actloom', q{SELECT id FROM actloom.users WHERE email = 'o@globex.test'});
	$self->{config} = $args{config} || {};
	return $self;
}

sub node { $_[0]->{node} }

# Another shim on the same database, with its own name, port, configuration
# file and logs (the configuration a copy of this one's): for what several
# shims behind one load balancer share.
sub peer
{
	my ($self, $name) = @_;
	my %copy = %$self;
	delete @copy{qw(shim_pid port config_path log access)};
	return bless { %copy, name => $name, config => { %{ $self->{config} } } }, ref $self;
}

# Runs SQL as the company's owner through the gateway role, as an
# application would; returns the output.
sub as_owner
{
	my ($self, $company, $sql) = @_;
	my $owner = $self->{owner}{$company};
	return $self->{node}->safe_psql('actloom', qq{
		BEGIN;
		SET LOCAL ROLE shim;
		SELECT actloom.act_as('$owner', '$company');
		$sql;
		COMMIT;});
}

# A new API key of Acme (or of the company given) with the scopes given,
# issued by the company's owner with actloom.api_key_create.
sub make_key
{
	my ($self, $scopes, $company) = @_;
	$company ||= $self->{acme};
	my $list = join(',', map { "'$_'" } @$scopes);
	my $out = $self->as_owner($company, "SELECT actloom.api_key_create('$company', 'test', ARRAY[$list]::text[])");
	my ($key) = $out =~ /^(alk_\S+)$/m or die "no key in: $out";
	return $key;
}

# Revokes a key by its id (characters 5 to 16 of the key).
sub revoke_key
{
	my ($self, $key, $company) = @_;
	$company ||= $self->{acme};
	$self->as_owner($company, "SELECT actloom.api_key_revoke(substr('$key', 5, 12))");
}

# A key of the right shape and checksum that the database does not know.
sub forged_key
{
	my $body = 'alk_' . ('A' x 12) . '_' . ('b' x 43);
	my $crc = Compress::Zlib::crc32($body);
	my @a = ('0' .. '9', 'A' .. 'Z', 'a' .. 'z');
	my $sum = '';
	for (1 .. 6) { $sum = $a[$crc % 62] . $sum; $crc = int($crc / 62); }
	return $body . $sum;
}

sub psql { my ($self, $sql) = @_; return $self->{node}->safe_psql('actloom', $sql); }

sub item_count { return $_[0]->psql('SELECT count(*) FROM public.items'); }

sub yaml_value
{
	my ($v, $indent) = @_;
	if (ref $v eq 'HASH')
	{
		return "\n" . join('', map { (' ' x $indent) . "$_:" . yaml_value($v->{$_}, $indent + 2) } sort keys %$v);
	}
	if (ref $v eq 'ARRAY') { return ' [' . join(', ', map { "\"$_\"" } @$v) . "]\n"; }
	return " \"$v\"\n" if $v =~ /[^0-9]/;
	return " $v\n";
}

sub write_config
{
	my ($self, $extra) = @_;
	my $node = $self->{node};
	my %cfg = (
		listen => { address => '127.0.0.1', port => $self->{port} },
		threads => 2,
		database => {
			conninfo => 'host=' . $node->host . ' port=' . $node->port . ' dbname=actloom user=shim',
			pool_size => 2,
			query_timeout_ms => 3000,
			connect_timeout_ms => 1000,
			reconnect_min_ms => 50,
			reconnect_max_ms => 500,
		},
		%{ $self->{config} },
		%{ $extra || {} });
	my $text = '';
	$text .= "$_:" . yaml_value($cfg{$_}, 2) for sort keys %cfg;
	$self->{config_path} = "$PostgreSQL::Test::Utils::tmp_check/shim-$self->{name}.yaml";
	open my $fh, '>', $self->{config_path} or die $!;
	print $fh $text;
	close $fh;
	return $self->{config_path};
}

sub start_shim
{
	my ($self) = @_;
	$self->{port} ||= PostgreSQL::Test::Cluster::get_free_port();
	$self->write_config;
	$self->{log} = "$PostgreSQL::Test::Utils::log_path/shim-$self->{name}.err";
	$self->{access} = "$PostgreSQL::Test::Utils::log_path/shim-$self->{name}.access";
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open STDOUT, '>>', $self->{access} or die $!;
		open STDERR, '>>', $self->{log} or die $!;
		$ENV{LSAN_OPTIONS} = "suppressions=$ENV{TESTDIR}/lib/lsan.supp:print_suppressions=0";
		$ENV{ASAN_OPTIONS} = 'detect_leaks=1:abort_on_error=0';
		exec('actloom-shim', '--config', $self->{config_path}) or POSIX::_exit(127);
	}
	$self->{shim_pid} = $pid;
	for (1 .. 200)
	{
		my $r = client(1)->get($self->url('/readyz'));
		return 1 if $r->{status} == 200;
		sleep 0.05;
	}
	diag(slurp_file($self->{log}));
	die 'actloom-shim did not become ready';
}

# Sends SIGTERM and waits; returns the exit status.
sub stop_shim
{
	my ($self) = @_;
	return unless $self->{shim_pid};
	kill 'TERM', $self->{shim_pid};
	waitpid($self->{shim_pid}, 0);
	my $status = $?;
	$self->{shim_pid} = undef;
	my $log = slurp_file($self->{log});
	unlike($log, qr/AddressSanitizer|LeakSanitizer|runtime error:/, 'no sanitizer report');
	return $status;
}

sub signal_shim { my ($self, $sig) = @_; kill $sig, $self->{shim_pid}; }

sub url
{
	my ($self, $path) = @_;
	my $scheme = $self->{config}{tls} ? 'https' : 'http';
	return "$scheme://127.0.0.1:$self->{port}$path";
}

# The test certificate is self-signed: no verification.
sub client { my ($timeout) = @_; return HTTP::Tiny->new(timeout => $timeout, verify_SSL => 0); }

# One request: key => API key, json => a structure to send, body => raw
# bytes, headers => {...}.  Returns HTTP::Tiny's response plus "problem"
# (the decoded problem or JSON body).
sub request
{
	my ($self, $method, $path, %opt) = @_;
	my %headers = %{ $opt{headers} || {} };
	$headers{Authorization} = "Bearer $opt{key}" if defined $opt{key};
	my $content = $opt{body};
	if (exists $opt{json})
	{
		$content = $JSON->encode($opt{json});
		$headers{'Content-Type'} ||= 'application/json';
	}
	my $r = client(10)->request($method, $self->url($path),
		{ headers => \%headers, defined $content ? (content => $content) : () });
	$r->{json} = eval { $JSON->decode($r->{content}) } if ($r->{headers}{'content-type'} || '') =~ /json/;
	return $r;
}

# Raw bytes over a socket; returns what came back before the server closed
# or the timeout passed.
sub raw
{
	my ($self, $bytes, %opt) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $self->{port}, Proto => 'tcp')
	  or die "connect: $!";
	$s->autoflush(1);
	if ($opt{slow})
	{
		for my $c (split //, $bytes) { print $s $c; sleep $opt{slow}; }
	}
	else
	{
		print $s $bytes;
	}
	my $out = '';
	my $deadline = time + ($opt{timeout} || 5);
	$s->blocking(0);
	while (time < $deadline)
	{
		my $n = sysread($s, my $buf, 65536);
		if (defined $n && $n == 0) { last; }
		if (defined $n) { $out .= $buf; last if $opt{first} && $out =~ /\r\n\r\n/; next; }
		sleep 0.02;
	}
	close $s;
	return $out;
}

# The shim writes its access log every 50 ms: wait for one flush.
sub access_log { my ($self) = @_; sleep 0.2; return slurp_file($self->{access}); }

sub DESTROY
{
	my ($self) = @_;
	if ($self->{shim_pid}) { kill 'KILL', $self->{shim_pid}; waitpid($self->{shim_pid}, 0); }
}

1;
