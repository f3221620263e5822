#!/usr/bin/perl
# A raw TCP peer for the cases the ordinary tools cannot play:
#
#   peer.pl HOST PORT noread [BYTES]   connect, send BYTES (printf-style
#                                      escapes), then never read again
#   peer.pl HOST PORT reset  [BYTES]   connect, send BYTES, wait for the
#                                      server's first bytes, then close with
#                                      SO_LINGER 0: the kernel sends RST
#   peer.pl HOST PORT read RATE        connect, then read no faster than
#                                      RATE bytes a second, copying all
#                                      to stdout, until the server closes
#
# It prints "connected" on stdout once the connection is up, so a test can
# wait for that line instead of sleeping. Perl is part of every Debian
# system (perl-base), so this needs nothing installed.
use strict;
use warnings;
use IO::Socket::IP;
use Socket qw(SOL_SOCKET SO_LINGER);

my ($host, $port, $mode, $bytes) = @ARGV;
die "usage: $0 HOST PORT noread|reset [BYTES] | read RATE\n"
    unless defined $mode;
$bytes = '' unless defined $bytes;
my $rate = 0;
if ($mode eq 'read') {
    $rate = $bytes;
    die "RATE must be a number of bytes a second\n" unless $rate =~ /^[0-9]+$/;
    $bytes = '';
}
$bytes =~ s/\\n/\n/g;
$bytes =~ s/\\r/\r/g;
$bytes =~ s/\\0/\0/g;

my $s = IO::Socket::IP->new(PeerHost => $host, PeerPort => $port,
                            Proto => 'tcp')
    or die "cannot connect to $host:$port: $@\n";
$| = 1;
print "connected\n";
syswrite($s, $bytes) if length $bytes;

if ($mode eq 'noread') {
    # Hold the connection and read nothing until killed: the server's
    # output piles up in the kernel and then in its queue for us.
    sleep 3600 while 1;
} elsif ($mode eq 'reset') {
    # Wait until the server has written something we leave unread, then
    # abort the connection: SO_LINGER with a zero timeout makes close()
    # send RST instead of FIN.
    my $rin = '';
    vec($rin, fileno($s), 1) = 1;
    select(my $rout = $rin, undef, undef, 10);
    setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0))
        or die "setsockopt SO_LINGER: $!\n";
    close($s);
    print "reset\n";
} elsif ($mode eq 'read') {
    # A reader on a slow link: every TICK seconds it takes at most what
    # RATE allows in a tick, and sleeps the rest of it.
    use constant TICK => 0.02;
    my $per_tick = $rate * TICK;
    my $buf;
    binmode STDOUT;
    while (1) {
        my $n = sysread($s, $buf, $per_tick < 1 ? 1 : $per_tick);
        last unless $n;
        syswrite(STDOUT, $buf);
        select(undef, undef, undef, TICK);
    }
} else {
    die "unknown mode $mode\n";
}
