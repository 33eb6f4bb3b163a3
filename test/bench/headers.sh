#!/usr/bin/env bash
# make bench ONLY=headers: what clients that send large request heads make
# the shim hold.  h2o buffers up to H2O_MAX_REQLEN (417,792) bytes of request
# line and headers per connection before the shim sees the request and
# answers 431 (README: Limits and memory).
#
#   headers.rss_per_conn_400k_200  resident memory per connection, 200
#                                  connections each holding a 400 KB head
#                                  that is not finished yet
#   headers.rss_per_conn_400k_500  the same with 500 connections
#   headers.answered_431           how many of those heads, once finished,
#                                  were answered 431 (of 700)
#   headers.capped_rss_mib         resident memory while 500 connections try,
#                                  with limits.connections 100 and 2 threads:
#                                  at most 200 are held
#
# Each figure is the median of three turns, each on a fresh shim (freed
# memory stays with the process, so a second run would measure less).
# Receives PGHOST, PGPORT, PGDATABASE, BENCH_WORK and PG_BINDIR from
# test/run-bench.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
. test/lib/cluster.sh
work=$BENCH_WORK/headers
mkdir -p "$work"

start_shim() {
	cat >"$work/shim.yaml" <<YAML
listen:
  address: 127.0.0.1
  port: $port
threads: 2
limits:
  request_timeout_ms: 60000
  connections: $1
database:
  conninfo: "host=$PGHOST port=$PGPORT dbname=$PGDATABASE"
  pool_size: 1
YAML
	"$PG_BINDIR/actloom-shim" --config "$work/shim.yaml" >/dev/null 2>>"$work/shim.err" &
	shim_pid=$!
	for _ in $(seq 1 100); do
		curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0
		sleep 0.1
	done
	echo "the shim did not start; see $work/shim.err" >&2
	return 1
}
stop_shim() { kill "$shim_pid" && wait "$shim_pid" || true; }
trap 'kill $shim_pid 2>/dev/null || true' EXIT

# Opens N connections, writes a 400 KB head on each without its empty last
# line, waits until the shim's memory settles, prints "held_kib_per_conn",
# then finishes every head, prints how many were answered 431, and closes.
# With "capped", prints the resident memory in MiB while the writes wait.
cat >"$work/heads.pl" <<'PERL'
use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
my ($port, $pid, $n, $mode) = @ARGV;
$SIG{PIPE} = 'IGNORE';
sub rss { open my $f, '<', "/proc/$pid/status" or die $!; while (<$f>) { return $1 if /^VmRSS:\s+(\d+)/ } die }
my $head = "GET /healthz HTTP/1.1\r\nHost: bench\r\n" . (('X-Pad: ' . ('a' x 7990) . "\r\n") x 50);
my $base = rss();
my (@s, @left);
for (1 .. $n)
{
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Blocking => 0) or die "connect: $!";
	push @s, $s;
	push @left, 0;
}
# Non-blocking writes: connections the shim has not accepted take what the kernel buffers.
my ($deadline, $progress_at) = (time + 30, time);
while (time < $deadline && time - $progress_at < 1)
{
	my $pending = 0;
	for my $i (0 .. $#s)
	{
		next if $left[$i] >= length $head;
		my $w = syswrite($s[$i], $head, length($head) - $left[$i], $left[$i]);
		if ($w) { $left[$i] += $w; $progress_at = time; }
		$pending++ if $left[$i] < length $head;
	}
	last if !$pending;
	sleep 0.01;
}
die "heads not written\n" if $mode ne 'capped' && grep { $_ < length $head } @left;
my ($last, $now) = (0, rss());
for (1 .. 50) { sleep 0.2; ($last, $now) = ($now, rss()); last if $now == $last; }
if ($mode eq 'capped') { printf "%.1f\n", $now / 1024; exit 0; }
printf "%.0f\n", ($now - $base) / $n;
my $answered = 0;
for my $s (@s)
{
	$s->blocking(1);
	print $s "\r\n";
	my $buf = '';
	while (sysread($s, my $b, 65536)) { $buf .= $b; last if $buf =~ /\r\n\r\n/ }
	$answered++ if $buf =~ m{^HTTP/1\.1 431 };
	close $s;
}
print "$answered\n";
PERL

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
port=$(free_port)
: >"$work/per200" >"$work/per500" >"$work/answered" >"$work/capped"
for _ in 1 2 3; do
	answered=0
	for n in 200 500; do
		start_shim 1024
		{ read -r per; read -r ok; } < <(perl "$work/heads.pl" "$port" "$shim_pid" "$n" held)
		echo "$per" >>"$work/per$n"
		answered=$((answered + ok))
		stop_shim
	done
	echo "$answered" >>"$work/answered"
	start_shim 100
	perl "$work/heads.pl" "$port" "$shim_pid" 500 capped >>"$work/capped"
	stop_shim
done
echo "# per connection (KiB, 200 then 500): $(tr '\n' ' ' <"$work/per200")/ $(tr '\n' ' ' <"$work/per500");" \
	"capped RSS (MiB): $(tr '\n' ' ' <"$work/capped")" >&2
printf 'BENCH headers.rss_per_conn_400k_200 %s KiB goal <= 640\n' "$(median <"$work/per200")"
printf 'BENCH headers.rss_per_conn_400k_500 %s KiB goal <= 640\n' "$(median <"$work/per500")"
printf 'BENCH headers.answered_431 %s count goal >= 700\n' "$(median <"$work/answered")"
printf 'BENCH headers.capped_rss_mib %s MiB goal <= 144\n' "$(median <"$work/capped")"
