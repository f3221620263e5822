#!/usr/bin/env bats
# Fault: connections that are half open. In this protocol end of input is
# a leave (SPEC: "a client leaves (EOF, reset, error, or dropped)"): a
# client that shuts down its sending side (shutdown(SHUT_WR), as `nc -N`
# does at the end of its input) has its last line relayed, is announced as
# left, and the server closes the connection -- the client, still reading,
# gets what had been written to it, then end of stream, never a reset.
# Messages sent after its leave no longer reach it.
#
# And peers that vanish without a FIN (a stopped client: its socket stays
# open, nobody reads or closes it) must not wedge the server.

# SC2154: CLIENT_ID[h] is an associative array's key, not a variable.
# SC2153: CLIENT_PID is common.bash's; SC2034: CHECKED_BYTES is figure's.
# shellcheck disable=SC2154,SC2153,SC2034

setup() {
    load ../helpers/common
    load faults
}

# halfclose_start NAME BYTES: a halfclose.pl client; say NAME go makes it
# send BYTES and half-close.
halfclose_start() {
    piped_start "$1" perl "$FAULTS_DIR/halfclose.pl" 127.0.0.1 "$SERVER_PORT" "$2"
    wait_until "$1's welcome" grep -q '^\* welcome, you are user' "$(out_of "$1")"
    local line
    line=$(head -n 1 "$(out_of "$1")")
    [[ $line =~ ^\*\ welcome,\ you\ are\ user([0-9]+)\  ]] || fail "no welcome: $line"
    CLIENT_ID[$1]=${BASH_REMATCH[1]}
}

# ended_cleanly NAME: NAME's connection was closed by the server with a
# FIN after its half-close.
ended_cleanly() {
    wait_until "$1 to see the end of the stream" client_gone "$1"
    run cat "$BATS_TEST_TMPDIR/$1.err"
    assert_output "half-closed
end of stream"
}

@test "a half-closed client leaves: its last lines are relayed, it is announced once, then its connection ends cleanly" {
    server_start
    client_join a
    client_join b nc
    halfclose_start h 'complete\nno newline at the end'
    expect a "* $(user_of h) joined"
    say a "before the half-close"
    expect h "$(user_of a): before the half-close"
    say h go
    local u
    u=$(user_of h)
    expect a "* $u left"
    expect b "* $u left"
    for who in a b; do
        run grep -E "^(\\* )?$u( |:)" "$(out_of "$who")"
        assert_output "* $u joined
$u: complete
$u: no newline at the end
* $u left"
    done
    ended_cleanly h
    # After its leave nothing more reaches it; the room goes on.
    say a "after the half-close"
    expect b "$(user_of a): after the half-close"
    run cat "$(out_of h)"
    assert_output "* welcome, you are $u (3 online)
$(user_of a): before the half-close"
    client_join c socat
    expect c "* welcome, you are user$((CLIENT_ID[h] + 1)) (3 online)"
    figure 1 "half-close: last lines relayed, one leave, clean end of stream"
    server_stop
}

@test "clients half-close in the middle of a stream: each got a gapless start of it, the rest got all of it" {
    server_start -n 20
    client_join a
    client_join b socat
    local i
    for i in 1 2 3 4 5; do halfclose_start "h$i" "bye from h$i\\n"; done
    # About 190 KiB for each reader: under the queue limit (HIGH_WATER)
    # however late a reader is scheduled.
    local n=10000 sent=$BATS_TEST_TMPDIR/sent
    seq -f "stream %g" 1 "$n" >"$sent"
    send_file a "$sent" 3>&- &
    local writer=$!
    # Each half-closes at a different point of the stream.
    for i in 1 2 3 4 5; do
        expect "h$i" "$(user_of a): stream $((i * 1000))"
        say "h$i" go
    done
    wait "$writer"
    heard_all b "$(user_of a)" "$sent"
    local k
    for i in 1 2 3 4 5; do
        ended_cleanly "h$i"
        expect b "$(user_of "h$i"): bye from h$i"
        expect b "* $(user_of "h$i") left"
        # What h got of the stream: whole lines 1..k, and at most the start
        # of line k + 1 if the close came in the middle of a write.
        k=$(grep -c "^$(user_of a): stream " "$(out_of "h$i")")
        run diff <(grep "^$(user_of a): stream " "$(out_of "h$i")") \
            <(head -n "$k" "$sent" | sed "s/^/$(user_of a): /")
        assert_success
        local last
        last=$(tail -c 1 "$(out_of "h$i")" | od -An -c | tr -d ' ')
        if [ "$last" != '\n' ]; then
            local partial want
            partial=$(tail -n 1 "$(out_of "h$i")")
            want="$(user_of a): $(sed -n "$((k + 1))p" "$sent")"
            [[ $want == "$partial"* ]] || fail "h$i got a garbled last line: $partial"
        fi
    done
    figure 5 "5 clients half-closed during a stream of $n lines; each got a gapless start, b got all"
    server_stop
}

@test "a peer that vanishes without a FIN does not wedge the room: idle it costs nothing, under traffic it is dropped as a slow reader" {
    server_start
    # r reads as fast as it can, s sends at full speed: no pacing by the
    # test (the server's flow control slows s while g holds the room).
    local n=20000 sent=$BATS_TEST_TMPDIR/sent
    seq -f "%0900g" 1 "$n" >"$sent"
    client_join r socat
    client_join s socat
    local log
    log=$(out_of r)
    client_join g
    client_join b nc
    # g's client stops: its socket stays open, nothing reads or closes it.
    kill -STOP "${CLIENT_PID[g]}"
    say b "while g is gone"
    wait_for_line "$log" "$(user_of b): while g is gone"
    assert_no_spin "with a vanished peer"
    # Under traffic its queue passes the high mark and stays there: it
    # holds the room for the grace period, then is dropped, announced.
    send_file s "$sent" 3>&- &
    bg_track "$!"
    WAIT_SECONDS=120 heard_all r "$(user_of s)" "$sent"
    wait_for_line "$log" "* $(user_of g) left"
    expect b "* $(user_of g) left"
    # Back, it finds its connection closed.
    kill -CONT "${CLIENT_PID[g]}"
    wait_until "g's client to see the close" client_gone g
    say b "after g"
    wait_for_line "$log" "$(user_of b): after g"
    figure 1 "a vanished peer dropped after $((n * 901)) bytes of traffic; the reader heard all $n lines"
    server_stop
}
