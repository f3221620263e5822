#!/usr/bin/perl
# A crowd of clients in one process, for the scale tests:
#
#   crowd.pl HOST PORT N LINE
#
# Opens N connections, waits until each has its welcome, prints
# "joined N", then waits until each has received LINE (a whole line) and
# prints "heard N". It reads every connection all the time, so none of
# them is a slow reader. It gives up after 60 s, printing what it reached.
use strict;
use warnings;
use IO::Handle;
use IO::Select;
use Socket qw(AF_INET AF_INET6 SOCK_STREAM inet_pton pack_sockaddr_in
              pack_sockaddr_in6);

my ($host, $port, $n, $want) = @ARGV;
die "usage: $0 HOST PORT N LINE\n" unless defined $want;
$| = 1;

# One address for every connection: no name lookup per connect.
my ($family, $addr) = $host =~ /:/
    ? (AF_INET6, pack_sockaddr_in6($port, inet_pton(AF_INET6, $host)))
    : (AF_INET, pack_sockaddr_in($port, inet_pton(AF_INET, $host)));

my $sel = IO::Select->new;
my (%buf, %welcomed, %heard);
for my $i (1 .. $n) {
    socket(my $s, $family, SOCK_STREAM, 0) or die "socket: $!\n";
    connect($s, $addr)
        or die "connection $i: cannot connect to $host:$port: $!\n";
    $s->blocking(0);
    $sel->add($s);
    $buf{$s} = '';
    # Read now and then while connecting, so welcomes and joins do not
    # pile up (select() over all sockets after every connect would make
    # the crowd itself the bottleneck).
    pump(0) if $i % 64 == 0;
}

my $deadline = time + 60;
my $said_joined = 0;
while (keys(%heard) < $n && time < $deadline) {
    pump(0.5);
    if (!$said_joined && keys(%welcomed) == $n) {
        print "joined $n\n";
        $said_joined = 1;
    }
}
print "joined ", scalar(keys %welcomed), "\n" unless $said_joined;
print "heard ", scalar(keys %heard), "\n";
exit(keys(%heard) == $n ? 0 : 1);

# pump TIMEOUT: read whatever has arrived, and record welcomes and LINE.
sub pump {
    my ($timeout) = @_;
    for my $s ($sel->can_read($timeout)) {
        my $r = sysread($s, my $chunk, 65536);
        if (!$r) {
            next if !defined $r && $!{EAGAIN};
            $sel->remove($s);    # closed: it will never hear LINE
            next;
        }
        $buf{$s} .= $chunk;
        while ($buf{$s} =~ s/^([^\n]*)\n//) {
            my $line = $1;
            $welcomed{$s} = 1 if $line =~ /^\* welcome, you are user\d+/;
            $heard{$s} = 1 if $line eq $want;
        }
    }
}
