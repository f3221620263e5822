#!/usr/bin/perl
# A connect-and-vanish flood, for tests/faults/flood.bats:
#
#   flood.pl HOST PORT N MODE
#
# Opens N connections one after another and drops each at once, without
# reading or sending anything: MODE fin closes normally (FIN), rst aborts
# with SO_LINGER 0 (RST), mixed alternates. At most WINDOW connections are
# open at a time. Prints "flooded N fin F rst R failed E" when done, and
# exits 1 if a connect failed. Gives up after 120 s.
use strict;
use warnings;
use Socket qw(AF_INET AF_INET6 SOCK_STREAM SOL_SOCKET SO_LINGER inet_pton
              pack_sockaddr_in pack_sockaddr_in6);

my ($host, $port, $n, $mode) = @ARGV;
die "usage: $0 HOST PORT N fin|rst|mixed\n"
    unless defined $mode && $mode =~ /^(fin|rst|mixed)$/;
$| = 1;

my ($family, $addr) = $host =~ /:/
    ? (AF_INET6, pack_sockaddr_in6($port, inet_pton(AF_INET6, $host)))
    : (AF_INET, pack_sockaddr_in($port, inet_pton(AF_INET, $host)));

my $deadline = time + 120;
my ($fin, $rst, $failed) = (0, 0, 0);
for my $i (1 .. $n) {
    last if time > $deadline;
    socket(my $s, $family, SOCK_STREAM, 0) or die "socket: $!\n";
    if (!connect($s, $addr)) {
        warn "connection $i: cannot connect: $!\n";
        $failed++;
        next;
    }
    my $abort = $mode eq 'rst' || ($mode eq 'mixed' && $i % 2 == 0);
    if ($abort) {
        # SO_LINGER with a zero timeout: close() sends RST, not FIN.
        setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0))
            or die "setsockopt SO_LINGER: $!\n";
        $rst++;
    } else {
        $fin++;
    }
    close($s);
}
print "flooded ", $fin + $rst, " fin $fin rst $rst failed $failed\n";
exit($failed == 0 && $fin + $rst == $n ? 0 : 1);
