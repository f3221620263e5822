#!/usr/bin/perl
# Readers that never read, for tests/faults/slow_readers.bats:
#
#   noread.pl HOST PORT N
#
# Opens N connections with a small receive buffer, prints "connected N",
# and then holds them without ever reading, until killed. Whatever the
# server writes piles up in the kernel, then in its queue for them.
use strict;
use warnings;
use Socket qw(AF_INET SOCK_STREAM SOL_SOCKET SO_RCVBUF inet_pton
              pack_sockaddr_in);

my ($host, $port, $n) = @ARGV;
die "usage: $0 HOST PORT N\n" unless defined $n;
$| = 1;

my $addr = pack_sockaddr_in($port, inet_pton(AF_INET, $host));
my @held;
for my $i (1 .. $n) {
    socket(my $s, AF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
    # Set before connect, so that the window offered is small from the
    # start: the server's queue, not the kernel, holds what we do not read.
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, pack('i', 4096))
        or die "setsockopt SO_RCVBUF: $!\n";
    connect($s, $addr) or die "connection $i: cannot connect: $!\n";
    push @held, $s;
}
print "connected $n\n";
sleep 3600 while 1;
