# Shared helpers of the TAP tests: a cluster with actloom, and a fixture of
# companies with an owner each.
package ActloomTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Exporter 'import';

our @EXPORT = qw(actloom_node actloom_companies);

# A started cluster with the extension loaded at server start; extra
# postgresql.conf lines may be given.
sub actloom_node
{
	my ($name, @conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		join("\n", "shared_preload_libraries = 'actloom'", 'max_connections = 60', @conf) . "\n");
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION actloom CASCADE');
	return $node;
}

# Creates companies 1..$n, each with its own owner, and a table
# bench_targets(n, u, c) naming them.
sub actloom_companies
{
	my ($node, $n) = @_;
	$node->safe_psql('postgres', qq{
		CREATE TABLE bench_targets (n int PRIMARY KEY, u uuid, c uuid);
		DO \$\$
		DECLARE u uuid; c uuid;
		BEGIN
			FOR i IN 1..$n LOOP
				u := actloom.create_user(format('owner%s\@co%s.test', i, i));
				PERFORM actloom.act_as(u);
				c := actloom.create_company(format('Company %s', i));
				INSERT INTO bench_targets VALUES (i, u, c);
			END LOOP;
		END
		\$\$;
	});
}

1;
