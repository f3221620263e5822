#!/usr/bin/perl
# A client that half-closes, for tests/faults/half_open.bats:
#
#   halfclose.pl HOST PORT BYTES
#
# Connects, waits for its first line, and on a line "go" on standard input
# sends BYTES (printf-style \n escapes) and shuts down its sending side
# (shutdown(SHUT_WR): a FIN, as `nc -N` sends at the end of its input).
# It reads all the time, before and after, and copies what it receives to
# standard output, until the server closes the connection; then it says
# on standard error how: "end of stream" or "reset". Gives up after 60 s.
use strict;
use warnings;
use IO::Select;
use IO::Socket::IP;
use Socket qw(SHUT_WR);

my ($host, $port, $bytes) = @ARGV;
die "usage: $0 HOST PORT BYTES\n" unless defined $bytes;
$bytes =~ s/\\n/\n/g;
$| = 1;

my $s = IO::Socket::IP->new(PeerHost => $host, PeerPort => $port,
                            Proto => 'tcp')
    or die "cannot connect to $host:$port: $@\n";
binmode STDOUT;
my $sel = IO::Select->new($s, \*STDIN);
my $deadline = time + 60;
while (time < $deadline) {
    for my $h ($sel->can_read(1)) {
        if ($h == $s) {
            my $r = sysread($s, my $chunk, 65536);
            if (!defined $r) {
                next if $!{EAGAIN} || $!{EINTR};
                print STDERR $!{ECONNRESET} ? "reset\n" : "error: $!\n";
                exit 0;
            }
            if ($r == 0) {
                print STDERR "end of stream\n";
                exit 0;
            }
            print $chunk;
        } else {
            my $line = <STDIN>;
            $sel->remove(\*STDIN);
            next unless defined $line && $line eq "go\n";
            syswrite($s, $bytes);
            shutdown($s, SHUT_WR) or die "shutdown: $!\n";
            print STDERR "half-closed\n";
        }
    }
}
print STDERR "timed out\n";
exit 1;
