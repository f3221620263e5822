#!/usr/bin/perl
# A burst of connections with the server SIGKILLed in the middle of it,
# for tests/faults/kill.bats:
#
#   burst.pl HOST PORT N PID AFTER
#
# Opens up to N connections one after another, as fast as connect(2)
# returns, and sends SIGKILL to PID (the server) right after the AFTER-th;
# the burst goes on until N or until a connect fails (the listening socket
# died with the server). Then it waits up to 10 s for the server's side of
# every connection to close (end of stream or a reset; what the server
# sent before is read and discarded), probes those still open (see
# below), and prints "connected C refused R half-made H open O": O
# connections stayed open, held by a process that outlived the server.
# Exits 1 if O > 0.
use strict;
use warnings;
use IO::Select;
use Socket qw(AF_INET AF_INET6 SOCK_STREAM inet_pton pack_sockaddr_in
              pack_sockaddr_in6);
use Time::HiRes qw(time);

my ($host, $port, $n, $pid, $after) = @ARGV;
die "usage: $0 HOST PORT N PID AFTER\n" unless defined $after;
$| = 1;
$SIG{PIPE} = 'IGNORE'; # a probe may meet a reset

my ($family, $addr) = $host =~ /:/
    ? (AF_INET6, pack_sockaddr_in6($port, inet_pton(AF_INET6, $host)))
    : (AF_INET, pack_sockaddr_in($port, inet_pton(AF_INET, $host)));

my @open;
my $refused = 0;
for my $i (1 .. $n) {
    socket(my $s, $family, SOCK_STREAM, 0) or die "socket: $!\n";
    if (!connect($s, $addr)) {
        $refused = $n - $i + 1;
        last;
    }
    push @open, $s;
    kill 'KILL', $pid if $i == $after;
}
kill 'KILL', $pid if @open < $after; # the burst ended early: kill anyway
my $connected = @open;

# wait_closed SECONDS SOCKETS...: waits up to SECONDS for the server's side
# of each socket to close (end of stream or a reset; what the server sent
# is read and discarded). Returns the sockets still open.
sub wait_closed {
    my ($seconds, @socks) = @_;
    my $sel = IO::Select->new(@socks);
    my $deadline = time + $seconds;
    while ($sel->count > 0 && time < $deadline) {
        for my $s ($sel->can_read(0.1)) {
            my $got = sysread($s, my $buf, 4096);
            next if defined $got && $got > 0; # a welcome: still open
            $sel->remove($s);
        }
    }
    return $sel->handles;
}

my @left = wait_closed(10, @open);
# A connection whose handshake completes while the listening socket is
# being destroyed can be left half made: ESTABLISHED here, only a request
# (SYN-RECV) on the server's side, no process holding it, and the kernel
# drops that request without telling us. Bytes sent to it are answered
# with a reset. Bytes sent to a connection a living process holds are not.
for my $s (@left) {
    send($s, "anyone there?\n", 0);
}
my @held = wait_closed(2, @left);
printf "connected %d refused %d half-made %d open %d\n", scalar(@open), $refused,
    @left - @held, scalar(@held);
exit(@held == 0 ? 0 : 1);
