#!/usr/bin/perl
# A stream through the server, sent no faster than it is read:
#
#   paced.pl HOST PORT FILE go|now
#
# Connects a reader, then a sender, and prints "reader user<r>" and
# "sender user<s>". The sender sends FILE -- at once (now), or on a line
# "go" on standard input (go) -- a line at a time as the window allows;
# the reader checks that the sender's messages are FILE's lines, each
# once, in order, and prints "heard N lines, B bytes" when all have come
# (or "wrong line K: ..." and exits 1). Every other line the reader
# receives (joins, leaves) is copied to standard output as it comes. Both
# stay connected, reading, until standard input ends (go) or until killed
# (now).
#
# The server drops a reader whose queue passes its limit (256 KiB), and a
# reader that is a little slower than an unpaced sender (or that a busy
# machine does not run for a while) soon is one. A sender that never runs
# more than WINDOW bytes ahead of its reader keeps that reader's queue
# under the limit, whatever the scheduler does. Gives up after 300 s.
use strict;
use warnings;
use IO::Handle;
use Socket qw(AF_INET SOCK_STREAM inet_pton pack_sockaddr_in);

my ($host, $port, $file, $mode) = @ARGV;
die "usage: $0 HOST PORT FILE go|now\n"
    unless defined $mode && $mode =~ /^(go|now)$/;
use constant WINDOW => 128 * 1024;
STDOUT->autoflush(1);

open(my $fh, '<:raw', $file) or die "$file: $!\n";
my @want = <$fh>;
close $fh;
my $addr = pack_sockaddr_in($port, inet_pton(AF_INET, $host));

# join_room NAME: a connection and the user name in its welcome line.
sub join_room {
    socket(my $s, AF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
    connect($s, $addr) or die "cannot connect to $host:$port: $!\n";
    my $line = '';
    while ($line !~ /\n/) {
        sysread($s, $line, 1, length $line) or die "no welcome\n";
    }
    $line =~ /^\* welcome, you are (user\d+) / or die "not a welcome: $line";
    print "$_[0] $1\n";
    $s->blocking(0);
    return ($s, $1);
}

my ($rx) = join_room('reader');
my ($tx, $sender) = join_room('sender');
my $prefix = "$sender: ";

my ($next_send, $next_heard, $bytes) = (0, 0, 0);
my ($sent, $heard) = (0, 0);    # bytes of FILE sent, and heard back
my ($out, $in) = ('', '');
my $go = $mode eq 'now';
my $stdin_open = !$go;    # now: standard input is not ours to watch
my $deadline = $go ? time + 300 : undef;
while ($stdin_open || $mode eq 'now') {
    my ($r, $w) = ('', '');
    vec($r, fileno($_), 1) = 1 for $rx, $tx;
    vec($r, fileno(STDIN), 1) = 1 if $stdin_open;
    # Top up the output from FILE while the window allows.
    while ($go && $next_send < @want && $sent - $heard < WINDOW) {
        $out .= $want[$next_send];
        $sent += length $want[$next_send++];
    }
    vec($w, fileno($tx), 1) = 1 if length $out;
    select(my $rout = $r, my $wout = $w, undef, 1) >= 0 or die "select: $!\n";
    die "gave up after 300 s: heard $next_heard lines\n"
        if $deadline && time > $deadline && $next_heard < @want;
    if ($stdin_open && vec($rout, fileno(STDIN), 1)) {
        my $cmd = <STDIN>;
        if (!defined $cmd) {
            $stdin_open = 0;
        } elsif ($cmd eq "go\n") {
            $go = 1;
            $deadline = time + 300;
        }
    }
    if (vec($wout, fileno($tx), 1)) {
        my $n = syswrite($tx, $out);
        die "send: $!\n" if !defined $n && !$!{EAGAIN};
        substr($out, 0, $n) = '' if $n;
    }
    if (vec($rout, fileno($tx), 1)) {
        my $n = sysread($tx, my $junk, 65536);
        die "the sender's connection was closed\n" if defined $n && $n == 0;
    }
    next unless vec($rout, fileno($rx), 1);
    my $n = sysread($rx, $in, 1 << 20, length $in);
    next if !defined $n && $!{EAGAIN};
    die "the reader's connection was closed\n" unless $n;
    while ($in =~ s/^([^\n]*\n)//) {
        my $line = $1;
        if (substr($line, 0, length $prefix) ne $prefix) {
            print $line;
            next;
        }
        my $got = substr($line, length $prefix);
        if ($next_heard >= @want || $got ne $want[$next_heard]) {
            print "wrong line ", $next_heard + 1, ": $line";
            exit 1;
        }
        $heard += length $got;
        $bytes += length $got;
        print "heard ", scalar(@want), " lines, $bytes bytes\n"
            if ++$next_heard == @want;
    }
}
print "closed\n";
exit 0;
