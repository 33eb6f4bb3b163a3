# The master key ring file: missing, unreadable, too open, malformed or in
# the data directory, it makes the functions that need a key fail with a
# clear error (F0000) while the server keeps running, also when it starts
# with a bad file; repaired, it is used again without a restart; its key
# material never reaches the server log.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use ActloomTest;

my $dir = $PostgreSQL::Test::Utils::tmp_check;
my $ring = "$dir/keyring";
my $key1 = '6f1c2a9be3d4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4';
my $key2 = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';
my $good = "# test ring\nkey 1 $key1\nkey 2 $key2\nactive 1\n";

sub write_ring
{
	my ($content, $mode) = @_;
	unlink $ring;
	open(my $fh, '>:raw', $ring) or die "$ring: $!";
	print $fh $content;
	close $fh;
	chmod($mode // 0600, $ring) or die "chmod: $!";
}

write_ring($good);
my $node = actloom_node('keyring', "actloom.keyring_file = '$ring'");
my $user = $node->safe_psql('postgres', q{SELECT actloom.create_user('ring@example.test')});
my $company = $node->safe_psql('postgres', qq{
	BEGIN;
	SELECT actloom.act_as('$user') \\g /dev/null
	SELECT actloom.create_company('Ring');
	COMMIT;
});

# Seal a value in one session; open it in new sessions (so no cached key).
my $sealed = $node->safe_psql('postgres', qq{
	BEGIN;
	SELECT actloom.act_as('$user', '$company') \\g /dev/null
	SELECT actloom.seal('$company', 'tap', 'the sealed value');
	COMMIT;
});
like($sealed, qr/^\\x01/, 'sealed with the ring');

sub unseal
{
	return $node->psql('postgres', qq{
		BEGIN;
		SELECT actloom.act_as('$user', '$company') \\g /dev/null
		SELECT convert_from(actloom.unseal('$company', 'tap', '$sealed'), 'UTF8');
		COMMIT;
	});
}

my ($rc, $out, $err) = unseal();
is($out, 'the sealed value', 'opens with the ring');

my @cases = (
	[ 'missing', sub { unlink $ring }, qr/could not open key ring file ".*": No such file or directory/ ],
	[ 'unreadable', sub { write_ring($good, 0000) }, qr/could not open key ring file ".*": Permission denied/ ],
	[ 'readable by group', sub { write_ring($good, 0640) }, qr/key ring file ".*" has group or world access/ ],
	[ 'readable by others', sub { write_ring($good, 0604) }, qr/key ring file ".*" has group or world access/ ],
	[ 'writable by group', sub { write_ring($good, 0620) }, qr/key ring file ".*" has group or world access/ ],
	[ 'a directory', sub { unlink $ring; mkdir $ring, 0700 }, qr/key ring file ".*" is not a regular file/ ],
	[ 'empty', sub { rmdir $ring; write_ring('') }, qr/is malformed\nDETAIL:  The file holds no key\./ ],
	[ 'short key', sub { write_ring("key 1 abcdef\nactive 1\n") },
		qr/is malformed\nDETAIL:  Line 1: A key is 64 hexadecimal digits \(256 bits\)\./ ],
	[ 'non-hex key', sub { write_ring("key 1 " . ('g' x 64) . "\nactive 1\n") },
		qr/Line 1: A key is 64 hexadecimal digits/ ],
	[ 'duplicate id', sub { write_ring("key 1 $key1\nkey 1 $key2\nactive 1\n") },
		qr/Line 2: The key id is used twice\./ ],
	[ 'id zero', sub { write_ring("key 0 $key1\nactive 0\n") }, qr/Line 1: A key id is an integer from 1 to 2147483647\./ ],
	[ 'no active key', sub { write_ring("key 1 $key1\n") }, qr/No key is marked active\./ ],
	[ 'active key absent', sub { write_ring("key 1 $key1\nactive 3\n") }, qr/The active key id is not a key of the file\./ ],
	[ 'two active lines', sub { write_ring("key 1 $key1\nactive 1\nactive 1\n") }, qr/Line 3: Only one key can be active\./ ],
	[ 'unknown line', sub { write_ring("key 1 $key1\nactive 1\nsecret sauce\n") },
		qr/Line 3: A line starts with "key" or "active"\./ ],
	[ 'NUL byte', sub { write_ring("key 1 $key1\nactive 1\n\0\n") }, qr/The file contains a NUL byte\./ ],
	[ 'over 64 kB', sub { write_ring($good . ('#' x 70000) . "\n") }, qr/The file is larger than 64 kB\./ ],
	[ 'without key 1', sub { write_ring("key 2 $key2\nactive 2\n") }, qr/master key 1 is not in the key ring/ ],
	[ 'key 1 replaced', sub { write_ring("key 1 $key2\nactive 1\n") }, qr/cannot unwrap the data key of company/ ],
);
for my $case (@cases)
{
	my ($name, $break, $expect) = @$case;
	$break->();
	($rc, $out, $err) = unseal();
	isnt($rc, 0, "$name: refused");
	like($err, $expect, "$name: says why");
	like($err, qr/ERROR:  /, "$name: as an error") && unlike($err, qr/FATAL|PANIC/, "$name: not fatal");
	is($node->safe_psql('postgres', 'SELECT 1'), 1, "$name: the server keeps running");
}

# The message never shows the file's content.
write_ring("key 1 $key1 extra\nactive 1\n");
($rc, $out, $err) = unseal();
like($err, qr/Line 1: A key line has a key id and the key\./, 'a bad key line is named by number');
unlike($err, qr/$key1/, 'and not quoted');

# Inside the data directory.
my $inside = $node->data_dir . '/keyring';
write_ring($good);
system('cp', '-p', $ring, $inside) == 0 or die 'cp';
$node->safe_psql('postgres', "ALTER SYSTEM SET actloom.keyring_file = '$inside'");
$node->reload;
($rc, $out, $err) = unseal();
like($err, qr/key ring file ".*" is inside the data directory/, 'a ring in the data directory is refused');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET actloom.keyring_file');
$node->reload;

# Repaired, the ring is used again without a restart.
write_ring($good);
($rc, $out, $err) = unseal();
is($out, 'the sealed value', 'a repaired ring is read again without a restart');

# The server starts with a missing ring, and only key functions fail.
unlink $ring;
$node->restart;
is($node->safe_psql('postgres', "SELECT actloom.create_user('after\@example.test') IS NOT NULL"),
	't', 'the server starts without its key ring, and what needs no key works');
($rc, $out, $err) = unseal();
like($err, qr/could not open key ring file/, 'what needs a key says why it cannot');
write_ring($good);
($rc, $out, $err) = unseal();
is($out, 'the sealed value', 'and works once the file is back');

# A backend that cached a data key drops it when the ring changes, at its
# next transaction.
($rc, $out, $err) = $node->psql('postgres', qq{
	BEGIN;
	SELECT actloom.act_as('$user', '$company') \\g /dev/null
	SELECT convert_from(actloom.unseal('$company', 'tap', '$sealed'), 'UTF8');
	COMMIT;
	\\! chmod 0644 $ring
	BEGIN;
	SELECT actloom.act_as('$user', '$company') \\g /dev/null
	SELECT convert_from(actloom.unseal('$company', 'tap', '$sealed'), 'UTF8');
	COMMIT;
});
like($out, qr/^the sealed value$/, 'a backend opens the value once');
like($err, qr/has group or world access/, 'and refuses it after the file went bad, cache or not');
chmod 0600, $ring;

# Key material never reaches the log.
my $log = slurp_file($node->logfile);
unlike($log, qr/$key1|$key2/i, 'no key material in the server log');
like($log, qr/key ring file/, 'while the problems are logged');

done_testing();
