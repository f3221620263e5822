#!/usr/bin/env bats
# The interactive client, common/client.c, against peers nobody here wrote
# (socat; perl for a connection reset). It belongs to chapter 1 (the book's
# listing 9-6); later chapters use it unchanged. Point it at another build
# with  CLIENT=build/san/client bats tests/step01/client.bats
#
# SC2016: the single-quoted bash -c scripts expand their own "$1".
# SC2154: bats's run sets stderr and stderr_lines.
# shellcheck disable=SC2016,SC2154

setup() {
    load ../helpers/common
    [ -x "$CLIENT" ] || fail "build $CLIENT first (make build/client)"
    T=$BATS_TEST_TMPDIR
    PEER_PID=
}

# start_peer OUTFILE SOCAT_OPTIONS RIGHT_ADDRESS [LISTEN_ADDRESS]
# Starts socat listening on a kernel-chosen loopback port, its output in
# OUTFILE, its input from $PEER_STDIN (default /dev/null), and sets
# PEER_PID and PORT.
start_peer() {
    local out=$1 opts=$2 right=$3
    local listen=${4:-TCP-LISTEN:0,bind=127.0.0.1,reuseaddr}
    # shellcheck disable=SC2086 # opts is a list of options
    socat -d -d $opts "$listen" "$right" <"${PEER_STDIN:-/dev/null}" \
        >"$out" 2>"$T/peer.err" 3>&- &
    PEER_PID=$!
    bg_track "$PEER_PID"
    wait_until "socat to listen" grep -q 'listening on' "$T/peer.err" ||
        fail "socat did not listen: $(cat "$T/peer.err")"
    PORT=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$T/peer.err")
    [ -n "$PORT" ] || fail "no port in: $(cat "$T/peer.err")"
}

# wait_peer_exit: the peer has closed the connection and written its output.
wait_peer_exit() {
    wait_for_exit "$PEER_PID" || fail "socat $PEER_PID still running"
    PEER_PID=
}

# run_client OUTFILE ARGS...: runs the client with standard output into
# OUTFILE (bats's run would capture it) and standard input inherited.
run_client() {
    local out=$1
    shift
    run --separate-stderr bash -c 'out=$1; shift; exec "$@" >"$out"' _ \
        "$out" "$CLIENT" "$@"
}

# need_strace: skip unless strace can trace here (ptrace may be forbidden).
need_strace() {
    command -v strace >/dev/null || skip "strace is not installed"
    strace -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
    # LeakSanitizer stops itself with ptrace, which fails under strace.
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
}

@test "-h prints the usage on stdout and exits 0" {
    run --separate-stderr "$CLIENT" -h
    assert_success
    assert_line --index 0 "usage: client [-h] HOST PORT"
    [ -z "$stderr" ]
}

@test "no arguments: a reason and the usage on stderr, exit 2" {
    run --separate-stderr "$CLIENT"
    assert_failure 2
    assert_output ""
    [ "${stderr_lines[0]}" = "client: HOST and PORT are required" ]
    [ "${stderr_lines[1]}" = "usage: client [-h] HOST PORT" ]
}

@test "an unknown option exits 2" {
    run --separate-stderr "$CLIENT" -x 127.0.0.1 1
    assert_failure 2
    [ "${stderr_lines[0]}" = "client: unknown option -x" ]
}

@test "a host name instead of an address exits 2" {
    run --separate-stderr "$CLIENT" localhost 4444
    assert_failure 2
    [[ "${stderr_lines[0]}" == "client: 'localhost' '4444' is not an"* ]]
}

@test "a control byte in an argument is quoted as '?': the reason stays one line" {
    # Found by tests/fuzz/fuzz_args.c (the server's twin of this code).
    run --separate-stderr "$CLIENT" $'127.0.0.1\n' $'1\e'
    assert_failure 2
    [ "${stderr_lines[0]}" = "client: '127.0.0.1?' '1?' is not an IPv4/IPv6 address and a port 1-65535" ]
    [ "${stderr_lines[1]}" = "usage: client [-h] HOST PORT" ]
    run --separate-stderr "$CLIENT" -$'\n' 127.0.0.1 1
    assert_failure 2
    [ "${stderr_lines[0]}" = "client: unknown option -?" ]
}

@test "ports 0, 65536 and -1 exit 2" {
    for port in 0 65536 -1 12x; do
        run --separate-stderr "$CLIENT" 127.0.0.1 "$port"
        assert_failure 2
    done
}

@test "too many arguments exit 2" {
    run --separate-stderr "$CLIENT" 127.0.0.1 1 2
    assert_failure 2
    [ "${stderr_lines[0]}" = "client: too many arguments" ]
}

@test "cannot connect: one line naming the address and the cause, exit 1" {
    # A port that was just free: a peer listened on it and is gone.
    start_peer /dev/null "" STDIO
    kill "$PEER_PID"
    wait_peer_exit
    run --separate-stderr "$CLIENT" 127.0.0.1 "$PORT" </dev/null
    assert_failure 1
    assert_output ""
    [ "$stderr" = "cannot connect to 127.0.0.1:$PORT: Connection refused" ]
}

@test "cannot connect over IPv6: the address is in brackets" {
    grep -qs '^0\{31\}1 ' /proc/net/if_inet6 || skip "no IPv6 loopback"
    start_peer /dev/null "" STDIO "TCP6-LISTEN:0,bind=[::1],reuseaddr"
    kill "$PEER_PID"
    wait_peer_exit
    run --separate-stderr "$CLIENT" ::1 "$PORT" </dev/null
    assert_failure 1
    [ "$stderr" = "cannot connect to [::1]:$PORT: Connection refused" ]
}

@test "NUL bytes, invalid UTF-8 and a last line without newline round-trip" {
    printf 'a\0b\377\376 \r\n\0\0\nlast, no newline' >"$T/in"
    start_peer /dev/null "" PIPE # echoes, closes after our half-close
    run_client "$T/out" 127.0.0.1 "$PORT" <"$T/in"
    assert_success
    [ "$stderr" = "input ended; left the room" ]
    cmp "$T/in" "$T/out"
}

@test "5 MiB from a file reaches the server whole, then exit 0" {
    head -c 5242880 /dev/urandom >"$T/big"
    start_peer "$T/got" -u STDOUT
    run --separate-stderr "$CLIENT" 127.0.0.1 "$PORT" <"$T/big"
    assert_success
    [ "$stderr" = "input ended; left the room" ]
    wait_peer_exit
    cmp "$T/big" "$T/got"
}

@test "5 MiB from a pipe echo back whole into a pipe" {
    head -c 5242880 /dev/urandom >"$T/big"
    start_peer /dev/null "" PIPE
    run bash -c 'cat "$1" | "$2" 127.0.0.1 "$3" 2>/dev/null | cat >"$4";
                 echo "${PIPESTATUS[1]}"' _ "$T/big" "$CLIENT" "$PORT" "$T/out"
    assert_output 0
    cmp "$T/big" "$T/out"
}

@test "stdin from a file and from a pipe is moved with splice" {
    need_strace
    printf 'hello\n' >"$T/in"
    start_peer /dev/null "" PIPE
    strace -o "$T/trace" -e trace=splice,read,write \
        "$CLIENT" 127.0.0.1 "$PORT" <"$T/in" >"$T/out" 2>/dev/null
    cmp "$T/in" "$T/out"
    grep -q '^splice(0, NULL, [0-9]*, NULL, [0-9]*, .*) = 6$' "$T/trace"
    run ! grep -q '^read(0,' "$T/trace"
    wait_peer_exit

    start_peer /dev/null "" PIPE
    printf 'hello\n' | strace -o "$T/trace" -e trace=splice,read,write \
        "$CLIENT" 127.0.0.1 "$PORT" >"$T/out" 2>/dev/null
    cmp "$T/in" "$T/out"
    grep -q '^splice(0, NULL, [0-9]*, NULL, [0-9]*, .*) = 6$' "$T/trace"
}

@test "book pitfall: splice without fallback — stdout opened for append falls back to write" {
    need_strace
    printf 'one\0two\n' >"$T/in"
    printf 'before\n' >"$T/out"
    printf 'before\none\0two\n' >"$T/want"
    start_peer /dev/null "" PIPE
    strace -o "$T/trace" -e trace=splice,read,write \
        "$CLIENT" 127.0.0.1 "$PORT" <"$T/in" >>"$T/out" 2>/dev/null
    cmp "$T/want" "$T/out"
    # splice into an O_APPEND file is EINVAL; the bytes then go by write(2).
    grep -q '^splice([0-9]*, NULL, 1, .* = -1 EINVAL' "$T/trace"
    grep -qE '^write\(1, "one\\0two\\n", 8\) += 8$' "$T/trace"
}

@test "book pitfall: splice without fallback — stdin that cannot splice falls back to read" {
    need_strace
    # Some /proc files have no splice support: splice(2) says EINVAL.
    start_peer "$T/got" -u STDOUT
    strace -o "$T/trace" -e trace=splice,read \
        "$CLIENT" 127.0.0.1 "$PORT" </proc/self/status 2>/dev/null
    wait_peer_exit
    grep -q '^splice(0, NULL, .* = -1 EINVAL' "$T/trace"
    grep -q '^read(0, "Name:' "$T/trace"
    grep -q '^Name:' "$T/got"
    grep -q '^VmPeak:' "$T/got" # the whole file, not one line
}

@test "a terminal as stdin and stdout: a typed line goes out, the answer comes back, Ctrl-D says the input ended" {
    command -v script >/dev/null || skip "script is not installed"
    start_peer /dev/null "" "SYSTEM:echo from-server; cat >$T/got"
    # script gives the client a pseudo-terminal; the end of its input is
    # the end of ours (the terminal's end-of-file).
    printf 'typed line\n' | script -qec "$CLIENT 127.0.0.1 $PORT" /dev/null \
        >"$T/screen" 3>&-
    wait_peer_exit
    grep -q '^typed line' "$T/got"
    grep -q '^from-server' "$T/screen"
    # The terminal's end of file (Ctrl-D) came first: we left, nobody
    # kicked us.
    grep -q '^input ended; left the room' "$T/screen"
    run grep -c 'connection closed by server' "$T/screen"
    assert_output 0
}

@test "the server closing while stdin is open: its bytes, one line, exit 0" {
    printf 'bye\0\377' >"$T/msg"
    mkfifo "$T/fifo"
    start_peer /dev/null -U "OPEN:$T/msg"
    # <> opens the fifo read-write: standard input never ends by itself.
    run_client "$T/out" 127.0.0.1 "$PORT" <>"$T/fifo"
    assert_success
    [ "$stderr" = "connection closed by server" ]
    cmp "$T/msg" "$T/out"
}

@test "a connection reset is the server leaving: exit 0" {
    mkfifo "$T/fifo"
    # A one-connection server that answers, then aborts with RST: SO_LINGER
    # with a zero timeout makes close() reset the connection.
    perl -MIO::Socket::IP -MSocket=SOL_SOCKET,SO_LINGER -e '
        my $s = IO::Socket::IP->new(LocalHost => "127.0.0.1", LocalPort => 0,
                                    Listen => 1) or die "listen: $@";
        $| = 1;
        print $s->sockport, "\n";
        my $c = $s->accept or die "accept: $!";
        syswrite($c, "too many users\n");
        setsockopt($c, SOL_SOCKET, SO_LINGER, pack("ii", 1, 0));
        close($c);' >"$T/port" 3>&- &
    PEER_PID=$!
    bg_track "$PEER_PID"
    wait_until "the perl server to start" grep -q . "$T/port" ||
        fail "perl server did not start"
    # <> opens the fifo read-write: standard input never ends by itself.
    run --separate-stderr "$CLIENT" 127.0.0.1 "$(cat "$T/port")" <>"$T/fifo"
    assert_success
    assert_output "too many users"
    [ "$stderr" = "connection closed by server: Connection reset by peer" ]
}

@test "end of input with a peer that never closes: exit 0 after the bounded wait" {
    # The peer's input is a fifo that never ends (we hold it open), and -t
    # keeps its socket open for 60 s after our end-of-file.
    mkfifo "$T/fifo"
    # shellcheck disable=SC2034 # only held open, never used
    exec {hold}<>"$T/fifo"
    PEER_STDIN=$T/fifo start_peer /dev/null "-t 60" STDIO
    run --separate-stderr timeout 30 "$CLIENT" 127.0.0.1 "$PORT" </dev/null
    assert_success
    [[ "$stderr" == "server 127.0.0.1:$PORT did not close the connection"* ]]
}

@test "a closed stdout pipe is an error: one line, exit 1, not SIGPIPE" {
    head -c 1048576 /dev/zero >"$T/zeros"
    mkfifo "$T/fifo"
    start_peer /dev/null -U "OPEN:$T/zeros"
    run bash -c '"$1" 127.0.0.1 "$2" <>"$3" 2>"$4" | head -c 10 >/dev/null;
                 echo "${PIPESTATUS[0]}"' _ "$CLIENT" "$PORT" "$T/fifo" "$T/err"
    assert_output 1
    [ "$(cat "$T/err")" = "cannot write to standard output: Broken pipe" ]
}

@test "a closed stdin counts as empty input; a closed stdout is an error" {
    start_peer /dev/null "" PIPE
    # Closed inside bash -c: with `run ... <&-` bats's own capture pipe
    # would land on descriptor 0.
    run --separate-stderr bash -c 'exec "$0" 127.0.0.1 "$1" <&-' \
        "$CLIENT" "$PORT"
    assert_success
    assert_output ""

    wait_peer_exit
    start_peer /dev/null "" PIPE
    run --separate-stderr bash -c 'exec "$0" 127.0.0.1 "$1" >&- </dev/null' \
        "$CLIENT" "$PORT"
    assert_failure 1
    [[ "$stderr" == "standard output is closed"* ]]
}
