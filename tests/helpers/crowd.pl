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
use IO::Socket::IP;
use IO::Select;

my ($host, $port, $n, $want) = @ARGV;
die "usage: $0 HOST PORT N LINE\n" unless defined $want;
$| = 1;

my $sel = IO::Select->new;
my (%buf, %welcomed, %heard);
for my $i (1 .. $n) {
    my $s = IO::Socket::IP->new(PeerHost => $host, PeerPort => $port,
                                Proto => 'tcp')
        or die "connection $i: cannot connect to $host:$port: $@\n";
    $s->blocking(0);
    $sel->add($s);
    $buf{$s} = '';
    # Read while connecting, so welcomes and joins never pile up.
    pump(0);
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
