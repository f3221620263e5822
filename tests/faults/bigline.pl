#!/usr/bin/perl
# One enormous line through the server, for tests/faults/big_line.bats:
#
#   bigline.pl HOST PORT BLOCK COUNT
#
# Connects a receiver, then a sender. The sender streams one line made of
# the file BLOCK (which holds no "\n") COUNT times over, then "\n". The
# receiver reads as it goes: every message from the sender must be a piece
# of exactly 1023 bytes, but the last; the pieces' bytes, joined, go to
# standard output (for sha256sum). The sender sends as fast as the
# server takes its bytes, CHUNK bytes a write: no pacing here; the
# server's flow control stops reading it while the receiver's queue is
# over its high mark. Reports on standard error:
#
#   pieces P bytes B short S other O
#
# S counts pieces shorter than 1023 bytes before the last, O other lines
# (but the sender's join). Exits 0 once the whole line is through, 1 on any fault or
# after 300 s.
use strict;
use warnings;
use IO::Select;
use Socket qw(AF_INET SOCK_STREAM inet_pton pack_sockaddr_in);

my ($host, $port, $block_file, $count) = @ARGV;
die "usage: $0 HOST PORT BLOCK COUNT\n" unless defined $count;
use constant PIECE => 1023;
use constant CHUNK => 256 * 1024;

open(my $bf, '<:raw', $block_file) or die "$block_file: $!\n";
my $block = do { local $/; <$bf> };
die "$block_file holds a newline\n" if $block =~ /\n/;
my $total = length($block) * $count;

my $addr = pack_sockaddr_in($port, inet_pton(AF_INET, $host));
my $deadline = time + 300;

# join_room: a connection and the id in its welcome line.
sub join_room {
    socket(my $s, AF_INET, SOCK_STREAM, 0) or die "socket: $!\n";
    connect($s, $addr) or die "cannot connect to $host:$port: $!\n";
    my $line = '';
    while ($line !~ /\n/) {
        sysread($s, $line, 1, length $line) or die "no welcome\n";
    }
    $line =~ /^\* welcome, you are user(\d+) / or die "not a welcome: $line";
    $s->blocking(0);
    return ($s, $1);
}

my ($rx) = join_room();
my ($tx, $sender) = join_room();
my $prefix = "user$sender: ";
binmode STDOUT;

my ($sent, $got, $pieces, $short, $other) = (0, 0, 0, 0, 0);
my ($inbuf, $last_short, $done) = ('', 0, 0);
my $line_end = 0;    # the final "\n" has been sent
my $sel = IO::Select->new($rx, $tx);
while (!$done && time < $deadline) {
    my $w = '';
    vec($w, fileno($tx), 1) = 1 if !$line_end;
    my $r = '';
    vec($r, fileno($_), 1) = 1 for $rx, $tx;
    select(my $rout = $r, my $wout = $w, undef, 1) >= 0 or die "select: $!\n";
    if (vec($wout, fileno($tx), 1)) {
        # The next bytes of the line.
        my $off = $sent % length $block;
        my $chunk = substr($block, $off, CHUNK);
        $chunk = substr($chunk, 0, $total - $sent) if $total - $sent < length $chunk;
        $chunk .= "\n" if $sent + length($chunk) == $total;
        my $n = syswrite($tx, $chunk);
        die "send: $!\n" if !defined $n && !$!{EAGAIN};
        if ($n) {
            if ($sent + $n > $total) {    # the "\n" went too
                $line_end = 1;
                $n--;
            }
            $sent += $n;
        }
    }
    if (vec($rout, fileno($tx), 1)) {
        my $n = sysread($tx, my $junk, 65536);
        die "the sender's connection was closed\n" if defined $n && $n == 0;
    }
    next unless vec($rout, fileno($rx), 1);
    my $n = sysread($rx, $inbuf, 1 << 20, length $inbuf);
    next if !defined $n && $!{EAGAIN};
    die "the receiver's connection was closed after $got bytes\n" unless $n;
    my $pos = 0;
    while ((my $nl = index($inbuf, "\n", $pos)) >= 0) {
        my $len = $nl - $pos;
        if (substr($inbuf, $pos, length $prefix) eq $prefix) {
            my $plen = $len - length $prefix;
            $short++ if $last_short;    # a short piece that was not last
            $last_short = $plen != PIECE;
            print substr($inbuf, $pos + length $prefix, $plen);
            $got += $plen;
            $pieces++;
            $done = 1 if $got >= $total && $last_short;
        } elsif (substr($inbuf, $pos, $len) ne "* user$sender joined") {
            $other++;
        }
        $pos = $nl + 1;
    }
    substr($inbuf, 0, $pos) = '';
}
close STDOUT;
print STDERR "pieces $pieces bytes $got short $short other $other\n";
exit($done && $got == $total && $short == 0 && $other == 0 ? 0 : 1);
