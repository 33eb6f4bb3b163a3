# Sessions across connections: a revocation or a removal made on one
# connection refuses the very next request of another; concurrent requests of
# one session never wait for each other's last_seen_at refresh; the reason of
# a refusal reaches the server log and never the client.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ActloomTest;

my $node = actloom_node('sessions');
$node->safe_psql('postgres', q{
	CREATE ROLE app LOGIN IN ROLE actloom_gateway;
	CREATE TABLE ids (name text PRIMARY KEY, id uuid);
	INSERT INTO ids SELECT 'owner', actloom.create_user('owner@acme.test');
	INSERT INTO ids SELECT 'member', actloom.create_user('member@acme.test');
	DO $$
	DECLARE c uuid;
	BEGIN
		PERFORM actloom.act_as((SELECT id FROM ids WHERE name = 'owner'));
		c := actloom.create_company('Acme');
		PERFORM actloom.add_member(c, (SELECT id FROM ids WHERE name = 'member'));
		INSERT INTO ids VALUES ('acme', c);
	END
	$$;
	GRANT SELECT ON ids TO app;
});
my %id = map { split /\|/ } split /\n/, $node->safe_psql('postgres', "SELECT name || '|' || id FROM ids");

sub new_session
{
	my ($user) = @_;
	return $node->safe_psql('postgres', "SELECT session FROM actloom.session_create('$id{$user}', 'tap')",
		extra_params => [ '-U', 'app' ]);
}

# One request of the gateway: its own transaction, as the shim sends it.
sub request
{
	my ($session, $company) = @_;
	my $c = defined $company ? "'$company'" : 'NULL';
	my ($ret, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT actloom.act_as_session('$session', $c) IS NOT NULL",
		extra_params => [ '-U', 'app' ]);
	return ($ret == 0 && $out eq 't') ? 'ok' : $err;
}

# A request refused on one connection after a revocation made on another.
my $s = new_session('member');
my $client = $node->background_psql('postgres', on_error_stop => 0, extra_params => [ '-U', 'app' ]);
is($client->query_safe("SELECT actloom.act_as_session('$s', '$id{acme}') IS NOT NULL"), 't',
	'a live session acts in its company');
$node->safe_psql('postgres', "BEGIN; SELECT actloom.act_as_session('$s'); SELECT actloom.session_revoke_all(); COMMIT;",
	extra_params => [ '-U', 'app' ]);
my ($out, $ret) = $client->query("SELECT actloom.act_as_session('$s', '$id{acme}')");
like($client->{stderr}, qr/invalid or expired session/, 'signed out elsewhere: refused on the next request');
$client->{stderr} = '';

# A member removed by an owner loses the company on the next request.
$s = new_session('member');
is(request($s, $id{acme}), 'ok', 'a member acts in the company');
$node->safe_psql('postgres', "BEGIN; SELECT actloom.act_as('$id{owner}', '$id{acme}');
	SELECT actloom.remove_member('$id{acme}', '$id{member}'); COMMIT;", extra_params => [ '-U', 'app' ]);
like(request($s, $id{acme}), qr/42501.*user is not a member of the company/s,
	'removed: refused in that company on the next request');
is(request($s), 'ok', 'the session itself still lives');

# Concurrent requests of one session: the second does not wait for the first
# one's refresh of last_seen_at, even while the first holds the row.
$node->safe_psql('postgres', "UPDATE actloom.sessions SET last_seen_at = now() - interval '5 minutes' WHERE id = '$s'");
$client->query_safe("BEGIN");
$client->query_safe("SELECT actloom.act_as_session('$s')");
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
	WHERE a.usename = 'app' AND l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock'"), '1',
	'the first request holds the refreshed row');
my ($r2, $o2, $e2) = $node->psql('postgres',
	"SET statement_timeout = '3s'; SELECT actloom.act_as_session('$s') IS NOT NULL",
	extra_params => [ '-U', 'app' ]);
is("$r2 $o2", '0 t', 'a second request of the same session does not wait for it');
$client->query_safe("COMMIT");
is($node->safe_psql('postgres', "SELECT last_seen_at > now() - interval '1 minute' FROM actloom.sessions WHERE id = '$s'"),
	't', 'the refresh committed');
$client->quit;

# Refusals: the client sees one message without detail; the log says why.
my $revoked = new_session('owner');
$node->safe_psql('postgres', "UPDATE actloom.sessions SET revoked_at = now(), revoked_reason = 'sign_out' WHERE id = '$revoked'");
my $idle = new_session('owner');
$node->safe_psql('postgres', "UPDATE actloom.sessions SET last_seen_at = now() - interval '31 minutes' WHERE id = '$idle'");
my $expired = new_session('owner');
$node->safe_psql('postgres', "UPDATE actloom.sessions SET created_at = now() - interval '13 hours',
	last_seen_at = now() - interval '1 minute', expires_at = now() - interval '1 hour' WHERE id = '$expired'");
my $unknown = '11111111-2222-4333-8444-555555555555';
my %why = (
	$revoked => qr/Session $revoked was revoked at .* \(sign_out\)\./,
	$idle => qr/Session $idle was idle since .*, longer than actloom.session_idle_timeout \(1800 s\)\./,
	$expired => qr/Session $expired expired at /,
	$unknown => qr/Session $unknown does not exist\./);
for my $sid ($revoked, $idle, $expired, $unknown)
{
	my $offset = -s $node->logfile;
	my $err = request($sid);
	like($err, qr/^psql:<stdin>:2: ERROR:  28000: invalid or expired session\nLOCATION:  [^\n]*$/,
		"the client sees one message, no detail ($sid)");
	unlike($err, qr/revoked|idle|expired at|exist/, 'and no reason');
	ok($node->wait_for_log($why{$sid}, $offset), 'the server log says why');
}
$node->safe_psql('postgres', "UPDATE actloom.users SET disabled_at = now() WHERE id = '$id{member}'");
my $offset = -s $node->logfile;
like(request($s), qr/28000: invalid or expired session/, 'a disabled user: the same refusal');
ok($node->wait_for_log(qr/The user of session $s is disabled\./, $offset), 'and the log says why');

is($node->safe_psql('postgres', "SELECT bool_and(ok) FROM actloom.audit_verify()"), 't', 'the audit trail verifies');
done_testing();
