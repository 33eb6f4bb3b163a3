# Signed checkpoints: verified with the openssl command line as the README
# shows, and a kept checkpoint exposes a chain that was truncated or
# rewritten from scratch, which linkage alone cannot.  Also the checks on the
# signing key file.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ActloomTest;

my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $key = "$dir/audit_signing.key";
system('openssl', 'genpkey', '-algorithm', 'ed25519', '-out', $key) == 0 or die 'openssl genpkey';
chmod 0600, $key;

my $node = actloom_node('audit_checkpoint', "actloom.audit_signing_key_file = '$key'");
my $sys = '00000000-0000-0000-0000-000000000000';
$node->safe_psql('postgres', "SELECT actloom.audit('dba.note', 'n', i::text) FROM generate_series(1, 5) i");

# The checkpoint, its message rebuilt with built-in functions only.
my ($seq, $hash, $msg, $sig) = split /\|/, $node->safe_psql('postgres', qq{
	SELECT seq, encode(hash, 'hex'),
		   encode(convert_to('actloom-audit-checkpoint-v1', 'UTF8') || uuid_send(chain)
				  || int8send(seq) || hash || timestamptz_send(at), 'hex'),
		   encode(signature, 'hex')
	  FROM actloom.audit_checkpoint('$sys')});
is($seq, 5, 'the checkpoint names the head of the chain');
is($node->safe_psql('postgres', "SELECT encode(hash, 'hex') FROM actloom.audit_log WHERE chain = '$sys' AND seq = 5"),
	$hash, 'with its hash');
is($node->safe_psql('postgres', "SELECT count(*) FROM actloom.audit_checkpoints WHERE encode(signature, 'hex') = '$sig'"),
	1, 'and it is recorded');

sub write_hex
{
	my ($file, $hex) = @_;
	open(my $fh, '>:raw', $file) or die $!;
	print $fh pack('H*', $hex);
	close $fh;
}
open(my $pub, '>', "$dir/audit.pub") or die $!;
print $pub $node->safe_psql('postgres', 'SELECT actloom.audit_public_key()'), "\n";
close $pub;
write_hex("$dir/msg.bin", $msg);
write_hex("$dir/sig.bin", $sig);

my $verify = sub {
	my $out = `openssl pkeyutl -verify -pubin -inkey $dir/audit.pub -rawin -in $dir/msg.bin -sigfile $dir/sig.bin 2>&1`;
	return $out =~ /Signature Verified Successfully/;
};
ok($verify->(), 'openssl verifies the checkpoint signature');
write_hex("$dir/msg.bin", $msg =~ s/^(.{54}.{32}.{15})(.)/$1 . ($2 eq '0' ? '1' : '0')/er);
ok(!$verify->(), 'openssl refuses a changed checkpoint');

# The check an auditor runs against a kept checkpoint.
my $kept = "SELECT EXISTS (SELECT FROM actloom.audit_log WHERE chain = '$sys' AND seq = $seq AND hash = '\\x$hash')";
is($node->safe_psql('postgres', $kept), 't', 'the chain matches the kept checkpoint');

# Truncation: the last entries removed by a superuser.  The rest still links.
$node->safe_psql('postgres', qq{
	ALTER TABLE actloom.audit_log DISABLE TRIGGER USER;
	DELETE FROM actloom.audit_log WHERE chain = '$sys' AND seq > 3;
	ALTER TABLE actloom.audit_log ENABLE ALWAYS TRIGGER audit_append;
	ALTER TABLE actloom.audit_log ENABLE ALWAYS TRIGGER audit_append_only;
	ALTER TABLE actloom.audit_log ENABLE ALWAYS TRIGGER audit_no_truncate;});
is($node->safe_psql('postgres', "SELECT ok FROM actloom.audit_verify('$sys')"), 't',
	'a truncated chain still verifies by linkage alone');
is($node->safe_psql('postgres', $kept), 'f', 'the kept checkpoint exposes the truncation');

# Rewritten from scratch: every entry replaced, chained anew, even longer.
$node->safe_psql('postgres', qq{
	ALTER TABLE actloom.audit_log DISABLE TRIGGER USER;
	DELETE FROM actloom.audit_log WHERE chain = '$sys';
	ALTER TABLE actloom.audit_log ENABLE ALWAYS TRIGGER audit_append;
	ALTER TABLE actloom.audit_log ENABLE ALWAYS TRIGGER audit_append_only;
	ALTER TABLE actloom.audit_log ENABLE ALWAYS TRIGGER audit_no_truncate;
	SELECT actloom.audit('dba.note', 'n', 'rewritten ' || i) FROM generate_series(1, 7) i;});
is($node->safe_psql('postgres', "SELECT ok FROM actloom.audit_verify('$sys')"), 't',
	'a rewritten chain verifies by linkage alone');
is($node->safe_psql('postgres', $kept), 'f', 'the kept checkpoint exposes the rewrite');

# Non-superusers cannot see where the key is.
$node->safe_psql('postgres', 'CREATE ROLE app LOGIN IN ROLE actloom_gateway');
my ($rc, $out, $err) = $node->psql('postgres', 'SHOW actloom.audit_signing_key_file', extra_params => ['-U', 'app']);
like($err, qr/must be superuser|permission denied/, 'the key file setting is hidden from non-superusers');

# The key file is checked like a TLS key.
my $checkpoint = "SELECT seq FROM actloom.audit_checkpoint('$sys')";
chmod 0644, $key;
($rc, $out, $err) = $node->psql('postgres', $checkpoint);
like($err, qr/audit signing key file ".*" has group or world access/, 'a readable key file is refused');
unlike($err, qr/PRIVATE KEY/, 'without showing the key');
chmod 0600, $key;
open(my $fh, '>', $key) or die $!;
print $fh "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
close $fh;
($rc, $out, $err) = $node->psql('postgres', $checkpoint);
like($err, qr/does not hold an Ed25519 private key/, 'a malformed key is refused');
system('openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', $key) == 0 or die;
chmod 0600, $key;
($rc, $out, $err) = $node->psql('postgres', $checkpoint);
like($err, qr/does not hold an Ed25519 private key/, 'a key of another kind is refused');
unlink $key;
($rc, $out, $err) = $node->psql('postgres', $checkpoint);
like($err, qr/could not access audit signing key file/, 'a missing key file is refused');
$node->append_conf('postgresql.conf', "actloom.audit_signing_key_file = ''");
$node->reload;
($rc, $out, $err) = $node->psql('postgres', $checkpoint);
like($err, qr/no audit signing key is configured/, 'no key configured');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server keeps running');

$node->stop;
done_testing();
