#!/usr/bin/perl
# More clients than the server has descriptors for, for
# tests/faults/fd_exhaustion.bats:
#
#   fill.pl HOST PORT N
#
# Opens N connections at once and reads each until its fate is clear:
# welcomed ("* welcome, you are user<id> (<n> online)"), refused ("too many
# users", then end of stream), closed (end of stream, nothing said), reset
# (ECONNRESET), odd (anything else), or still pending when 60 s are up.
# Prints
#
#   fates welcomed W refused R closed C reset E odd O pending P
#
# Then the first welcomed client says "while full", and once every other
# welcomed client has heard it (or 60 s are up) it prints "heard H". The
# welcomed clients stay connected, read all the time, until standard input
# ends; then all connections are closed and it prints "drained".
use strict;
use warnings;
use IO::Select;
use Socket qw(AF_INET AF_INET6 SOCK_STREAM inet_pton pack_sockaddr_in
              pack_sockaddr_in6);

my ($host, $port, $n) = @ARGV;
die "usage: $0 HOST PORT N\n" unless defined $n;
$| = 1;

my ($family, $addr) = $host =~ /:/
    ? (AF_INET6, pack_sockaddr_in6($port, inet_pton(AF_INET6, $host)))
    : (AF_INET, pack_sockaddr_in($port, inet_pton(AF_INET, $host)));

my $sel = IO::Select->new;
my (%buf, %fate, %id, %heard, @welcomed);
for my $i (1 .. $n) {
    socket(my $s, $family, SOCK_STREAM, 0) or die "socket: $!\n";
    connect($s, $addr) or die "connection $i: cannot connect: $!\n";
    $s->blocking(0);
    $sel->add($s);
    $buf{$s} = '';
}

# The fates, as they become clear.
my $deadline = time + 60;
my $said;
while (time < $deadline) {
    pump(0.2);
    my $open = grep { !defined $fate{$_} || $fate{$_} eq 'refusing' }
        $sel->handles;
    last if $open == 0 && keys(%fate) == $n;
}
my %count = map { $_ => 0 } qw(welcomed refused closed reset odd);
$count{$_}++ for values %fate;
my $pending = $n - keys(%fate) + ($count{refusing} // 0);
print "fates welcomed $count{welcomed} refused $count{refused}",
    " closed $count{closed} reset $count{reset} odd $count{odd}",
    " pending $pending\n";

# The room still talks while it is full.
if (@welcomed) {
    my $speaker = $welcomed[0];
    $said = "user$id{$speaker}: while full";
    syswrite($speaker, "while full\n");
    $deadline = time + 60;
    while (keys(%heard) < @welcomed - 1 && time < $deadline) {
        pump(0.2);
    }
}
print "heard ", scalar(keys %heard), "\n";

# Stay, reading, until told to go.
my $stdin = IO::Select->new(\*STDIN);
while (1) {
    last if $stdin->can_read(0) && !sysread(STDIN, my $junk, 4096);
    pump(0.2);
}
close($_) for $sel->handles;
print "drained\n";
exit 0;

# pump TIMEOUT: read what has arrived; settle fates, note who heard $said.
sub pump {
    my ($timeout) = @_;
    for my $s ($sel->can_read($timeout)) {
        my $r = sysread($s, my $chunk, 65536);
        if (!defined $r) {
            next if $!{EAGAIN} || $!{EINTR};
            settle($s, $!{ECONNRESET} ? 'reset' : 'odd');
            next;
        }
        if ($r == 0) {
            my $was = $fate{$s};
            if (!defined $was) {
                settle($s, $buf{$s} eq '' ? 'closed' : 'odd');
            } elsif ($was eq 'refusing') {
                settle($s, $buf{$s} eq '' ? 'refused' : 'odd');
            } else {
                $fate{$s} = 'odd';    # a welcomed client was closed
                $sel->remove($s);
            }
            next;
        }
        $buf{$s} .= $chunk;
        while ($buf{$s} =~ s/^([^\n]*)\n//) {
            line($s, $1);
        }
    }
}

# line SOCKET LINE: one whole line arrived.
sub line {
    my ($s, $line) = @_;
    my $was = $fate{$s};
    if (!defined $was) {
        if ($line =~ /^\* welcome, you are user(\d+) \(\d+ online\)$/) {
            $fate{$s} = 'welcomed';
            $id{$s} = $1;
            push @welcomed, $s;
        } elsif ($line eq 'too many users') {
            $fate{$s} = 'refusing';    # refused once the close follows
        } else {
            $fate{$s} = 'odd';
        }
    } elsif ($was eq 'refusing') {
        $fate{$s} = 'odd';    # more than the refusal
    } elsif ($was eq 'welcomed' && defined $said && $line eq $said) {
        $heard{$s} = 1;
    }
}

# settle SOCKET FATE: the connection is over.
sub settle {
    my ($s, $fate) = @_;
    $fate{$s} = $fate;
    $sel->remove($s);
    close($s);
}
