#!/usr/bin/perl
# The webhook receiver of "make run" (test/lib/perl/WebhookReceiver.pm):
#
#   webhook-receiver.pl serve DIR PORT   receive on 127.0.0.1:PORT, in the foreground
#   webhook-receiver.pl show DIR [N]     the last N requests (default 1), with the
#                                        secrets each signature verified with
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib/perl";
use JSON::PP;
use WebhookReceiver;

my ($command, $dir, $arg) = @ARGV;
if (($command // '') eq 'serve' && $dir && $arg)
{
	WebhookReceiver->new(dir => $dir, port => $arg, foreground => 1, keep_log => 1);
}
elsif (($command // '') eq 'show' && $dir)
{
	my $json = JSON::PP->new->canonical->pretty;
	my @requests = bless({ log => "$dir/requests.jsonl" }, "WebhookReceiver")->requests;
	my $n = $arg // 1;
	print "no webhook has arrived yet\n" unless @requests;
	for my $r (@requests[ ($#requests - $n + 1 < 0 ? 0 : $#requests - $n + 1) .. $#requests ])
	{
		my %h = %{ $r->{headers} };
		printf "%s %s\n  webhook-id: %s\n  webhook-timestamp: %s\n  signature verified with: %s\n  body: %s\n",
			$r->{method}, $r->{path}, $h{'webhook-id'} // '-', $h{'webhook-timestamp'} // '-',
			@{ $r->{verified} } ? join(', ', @{ $r->{verified} }) : 'NOTHING (not signed by a known secret)',
			$r->{body};
	}
}
else
{
	print STDERR "usage: webhook-receiver.pl serve DIR PORT | show DIR [N]\n";
	exit 2;
}
