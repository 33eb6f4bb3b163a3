# Nothing secret in the server log.  The server logs every statement
# (log_statement = 'all'); the application's login role gets the settings the
# README documents for the gateway role; then the application exercises
# every secrets function, with successes and errors.  No plaintext password,
# secret value, sealed plaintext or API key may appear in the log, while the
# superuser's statements, the errors and the reasons for refused API keys do.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ActloomTest;
use Compress::Zlib qw(crc32);

my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $ring = "$dir/keyring";
open(my $fh, '>', $ring) or die $!;
print $fh "key 1 " . ('5a' x 32) . "\nactive 1\n";
close $fh;
chmod 0600, $ring;

my $node = actloom_node('secrets_log', "actloom.keyring_file = '$ring'",
	"log_statement = 'all'", "log_min_error_statement = 'error'",
	"log_min_duration_statement = 0");

# The role settings of the README, section "Keeping secrets out of the log".
$node->safe_psql('postgres', q{
	CREATE ROLE app LOGIN IN ROLE actloom_gateway;
	ALTER ROLE app SET log_statement = 'none';
	ALTER ROLE app SET log_min_error_statement = 'panic';
	ALTER ROLE app SET log_min_duration_statement = -1;
	ALTER ROLE app SET log_min_duration_sample = -1;
	ALTER ROLE app SET log_duration = off;
	ALTER ROLE app SET log_parameter_max_length = 0;
	ALTER ROLE app SET log_parameter_max_length_on_error = 0;
	SELECT 'superuser-statement-marker';
});

my @plaintexts = (
	'AlicePlaintextPw-1', 'WrongPlaintextPw-2', 'NobodyPlaintextPw-3', 'Short7!',
	'BobPlaintextPw-4', 'xxlog.bobxx', 'rasmuslerdorf', 'SecretValuePlaintext-5',
	'SealedPlaintext-6', 'SecretValuePlaintext-7', 'ImportedHashPlaintext-8',
	'BCryptRequires22Chrcte', 'vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a',
	'SecretValuePlaintext-9');

my ($rc, $out, $err) = $node->psql('postgres', q{
\set VERBOSITY terse
SELECT actloom.create_user('log.alice@example.test', 'AlicePlaintextPw-1') AS alice \gset
SELECT actloom.create_user('log.bob@example.test') AS bob \gset
SELECT actloom.verify_password('log.alice@example.test', 'AlicePlaintextPw-1') IS NOT NULL AS alice_in;
SELECT actloom.verify_password('log.alice@example.test', 'WrongPlaintextPw-2') IS NULL AS wrong_refused;
SELECT actloom.verify_password('nobody@example.test', 'NobodyPlaintextPw-3') IS NULL AS nobody_refused;
SELECT actloom.create_user('log.carol@example.test', 'Short7!');
SELECT actloom.set_password(:'bob', 'BobPlaintextPw-4');
SELECT actloom.set_password(:'bob', 'xxlog.bobxx');
SELECT actloom.import_password_hash(:'bob', '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a');
SELECT actloom.import_password_hash(:'bob', '$2y$07$BCryptRequires22Chrcte/VlQH0piJtjXl.0t1XkA8pw9dMXTpOq-ImportedHashPlaintext-8');
SELECT actloom.verify_password('log.bob@example.test', 'rasmuslerdorf') IS NOT NULL AS bob_in;
BEGIN;
SELECT actloom.act_as(:'alice') \g /dev/null
SELECT actloom.create_company('Logco') AS c \gset
COMMIT;
BEGIN;
SELECT actloom.act_as(:'alice', :'c') \g /dev/null
SELECT actloom.secret_put(:'c', 'google.client_secret', 'SecretValuePlaintext-5');
SELECT actloom.secret_get(:'c', 'google.client_secret') = 'SecretValuePlaintext-5' AS secret_back;
SELECT actloom.seal(:'c', 'p', 'SealedPlaintext-6') AS s \gset
SELECT convert_from(actloom.unseal(:'c', 'p', :'s'), 'UTF8') = 'SealedPlaintext-6' AS sealed_back;
SAVEPOINT a;
SELECT actloom.unseal(:'c', 'q', :'s');
ROLLBACK TO a;
SELECT actloom.secret_put(:'c', 'Bad Name', 'SecretValuePlaintext-7');
ROLLBACK TO a;
SELECT actloom.api_key_create(:'c', 'ci', ARRAY['reports.read']) AS key \gset
SELECT actloom.api_key_create(:'c', 'doomed', ARRAY['reports.read']) AS doomed \gset
SELECT count(*) > 0 AS listed FROM actloom.api_keys(:'c');
SELECT actloom.api_key_revoke(substr(:'doomed', 5, 12));
SELECT actloom.secret_put(:'c', 'okta', 'SecretValuePlaintext-9');
SELECT count(*) = 2 AS names FROM actloom.secret_names(:'c');
SELECT actloom.secret_delete(:'c', 'okta');
COMMIT;
SELECT * FROM actloom.authenticate_api_key(:'doomed');
SELECT key_id = substr(:'key', 5, 12) AS key_in FROM actloom.authenticate_api_key(:'key');
SELECT * FROM actloom.authenticate_api_key(:'key', 'members.invite');
SELECT * FROM actloom.authenticate_api_key(left(:'key', 65) || 'x');
SELECT * FROM actloom.authenticate_api_key(left(:'key', 17) || repeat('A', 43) || right(:'key', 6));
\echo KEY=:key
\echo DOOMED=:doomed
}, extra_params => [ '-U', 'app' ], on_error_stop => 0);

like($out, qr/^t$/m, 'the workload ran');
my ($key) = $out =~ /^KEY=(alk_\S+)/m;
my ($doomed) = $out =~ /^DOOMED=(alk_\S+)/m;
ok(defined $key && length($key) == 66, 'an API key was issued') or BAIL_OUT('no API key');
is(() = $out =~ /^t$/mg, 9, 'every check of the workload held');
like($err, qr/password is too short/, 'the application saw its errors');

# The documented format, with zlib's crc32: the issued key checks out, and a
# key with the right id, a wrong secret and a good checksum is made here.
sub base62
{
	my ($v, $width) = @_;
	my @digits = ('0' .. '9', 'A' .. 'Z', 'a' .. 'z');
	my $s = '';
	for (1 .. $width) { $s = $digits[ $v % 62 ] . $s; $v = int($v / 62); }
	return $s;
}
my $body = substr($key, 0, 60);
is(substr($key, 60), base62(crc32($body), 6), 'the checksum is zlib\'s crc32 in base62');
my $forged = substr($key, 0, 17) . ('A' x 43);
$forged .= base62(crc32($forged), 6);
($rc, $out, $err) = $node->psql('postgres', "SELECT * FROM actloom.authenticate_api_key('$forged')",
	extra_params => [ '-U', 'app' ]);
like($err, qr/invalid API key/, 'a wrong secret with a good checksum is refused');
like($err, qr/invalid API key/, 'including refused API keys');

my $log = slurp_file($node->logfile);
like($log, qr/superuser-statement-marker/, 'the server does log statements');
like($log, qr/ERROR:  password is too short/, 'and the application\'s errors');
like($log, qr/DETAIL:  API key: malformed key: bad checksum\./, 'and why a key was refused');
like($log, qr/DETAIL:  API key [0-9A-Za-z]{12}: wrong secret\./, 'with the key id only');
like($log, qr/DETAIL:  API key [0-9A-Za-z]{12}: revoked\./, 'also for a revoked key');
my @secrets = (@plaintexts, $key, substr($key, 17, 43), $forged, $doomed, substr($doomed, 17, 43));
for my $i (0 .. $#secrets)
{
	unlike($log, qr/\Q$secrets[$i]\E/, "secret " . ($i + 1) . " of " . scalar(@secrets) . " is not in the log");
}
unlike($log, qr/STATEMENT:.*actloom\.(verify_password|create_user|set_password|authenticate_api_key|secret_|seal|unseal|api_key_create)/,
	'no statement of the application');

done_testing();
