#!/usr/bin/env bats
# Signals through the event loop (book 10.4), from chapter 2 on: graceful
# shutdown, SIGHUP status, signal storms, resets mid-write, and scale.
# Written once, here; tests/stepNN/signals.bats links it for every chapter
# from 2 on (chapter 1 has no signal handling). Diagnostics may carry a
# "[process] " tag in the multi-process chapters.

setup() {
    load ../helpers/common
}

# shutdown_order FILE: FILE ends with the shutdown notice and holds it once.
notice_is_last() {
    [ "$(tail -n 1 "$1")" = "* server shutting down" ] &&
        [ "$(count_lines "$1" "* server shutting down")" -eq 1 ]
}

@test "SIGTERM: every client gets the notice, is closed, and the server exits 0" {
    server_start
    client_join a
    client_join b nc
    client_join c socat
    kill -TERM "$SERVER_PID"
    run server_exit_status
    assert_output 0
    local who
    for who in a b c; do
        expect "$who" "* server shutting down"
        run notice_is_last "$(out_of "$who")"
        assert_success
    done
    # The bundled client leaves when the server closes the connection.
    wait_until "a's client to see the close" client_gone a
    run grep -c 'connection closed by server' "$BATS_TEST_TMPDIR/a.err"
    assert_output 1
}

@test "SIGINT: the same graceful shutdown" {
    server_start
    client_join a
    client_join b
    kill -INT "$SERVER_PID"
    run server_exit_status
    assert_output 0
    expect a "* server shutting down"
    expect b "* server shutting down"
}

@test "SIGTERM with no clients: exit 0 at once" {
    server_start
    kill -TERM "$SERVER_PID"
    run server_exit_status
    assert_output 0
}

@test "SIGTERM with a client that never reads: exit 0 once the grace period ends" {
    server_start
    client_join a
    peer_start stuck noread
    expect a "* user2 joined"
    # Fill the stuck client's socket, so its queue can never drain.
    seq -f "%0500g" 1 4000 >"$BATS_TEST_TMPDIR/lines"
    send_file a "$BATS_TEST_TMPDIR/lines"
    kill -TERM "$SERVER_PID"
    run server_exit_status
    assert_output 0
    expect a "* server shutting down"
}

@test "output queued before SIGTERM arrives before the notice, without gaps" {
    server_start
    client_join a
    client_join b socat
    # About 210 KB for b: under the per-client queue limit even if b does
    # not read at all while they stream.
    local n=12000
    seq -f "line %g" 1 "$n" >"$BATS_TEST_TMPDIR/lines"
    send_file a "$BATS_TEST_TMPDIR/lines"
    # Signal while the lines are still streaming through the server.
    wait_until "the first lines to reach b" grep -q '^user1: line 100$' "$(out_of b)"
    kill -TERM "$SERVER_PID"
    run server_exit_status
    assert_output 0
    expect b "* server shutting down"
    run notice_is_last "$(out_of b)"
    assert_success
    # What b got of a's lines is exactly 1..k: nothing lost, nothing
    # reordered, however many the server had read when the signal came.
    local k
    k=$(grep -c '^user1: ' "$(out_of b)")
    run diff <(sed -n 's/^user1: //p' "$(out_of b)") <(seq -f "line %g" 1 "$k")
    assert_success
}

@test "SIGHUP: one status line on stderr, and the room goes on" {
    server_start
    client_join a
    client_join b
    say a "counted"
    expect b "user1: counted"
    kill -HUP "$SERVER_PID"
    wait_until "a status line" grep -qE '^(\[[^]]*\] )?status: ' "$SERVER_ERR"
    run grep -E '^(\[[^]]*\] )?status: ' "$SERVER_ERR"
    assert_output --regexp '^(\[[^]]*\] )?status: 2 users online, 1 messages relayed, up [0-9]+ s, .+$'
    say b "still here"
    expect a "user2: still here"
    run server_alive
    assert_success
}

@test "a storm of SIGHUPs during traffic loses and repeats nothing" {
    server_start
    client_join a
    client_join b nc
    local n=5000
    seq -f "storm %g" 1 "$n" >"$BATS_TEST_TMPDIR/lines"
    send_file a "$BATS_TEST_TMPDIR/lines" 3>&- &
    local writer=$!
    for _ in $(seq 1 300); do
        kill -HUP "$SERVER_PID"
    done
    wait "$writer"
    expect b "user1: storm $n"
    run diff <(sed -n 's/^user1: //p' "$(out_of b)") "$BATS_TEST_TMPDIR/lines"
    assert_success
    run grep -cE '^(\[[^]]*\] )?status: ' "$SERVER_ERR"
    ((output >= 1))
    say b "the loop is not wedged"
    expect a "user2: the loop is not wedged"
}

@test "a client that resets while the server writes to it costs only that client" {
    server_start
    client_join a
    client_join b socat
    # r waits for its first bytes, then resets: the server is mid-way
    # through writing a flood to it.
    peer_start r reset
    expect a "* user3 joined"
    # 4 MB at full speed: the server paces the sender.
    local n=20000
    seq -f "%0200g" 1 "$n" >"$BATS_TEST_TMPDIR/lines"
    send_file a "$BATS_TEST_TMPDIR/lines" 3>&- &
    bg_track "$!"
    # shellcheck disable=SC2034 # read by the helpers' waits
    WAIT_SECONDS=60
    expect a "* user3 left"
    expect b "user1: $(printf '%0200d' "$n")"
    run grep -c '^user1: ' "$(out_of b)"
    assert_output "$n"
    run server_alive
    assert_success
}

@test "hundreds of concurrent clients all hear one broadcast" {
    # 500 (the issue's figure for chapter 2) in one process or a pool;
    # 150 for chapter 3, where every join wakes every child process.
    local n=500
    [ "$STEP" != step03 ] || n=150
    server_start -n $((n + 100))
    perl "$HELPERS/crowd.pl" 127.0.0.1 "$SERVER_PORT" "$n" "user$((n + 1)): to all" \
        >"$BATS_TEST_TMPDIR/crowd.out" 2>&1 3>&- &
    bg_track "$!"
    WAIT_SECONDS=60 wait_for_line "$BATS_TEST_TMPDIR/crowd.out" "joined $n"
    client_join speaker
    expect speaker "* welcome, you are user$((n + 1)) ($((n + 1)) online)"
    say speaker "to all"
    WAIT_SECONDS=60 wait_for_line "$BATS_TEST_TMPDIR/crowd.out" "heard $n"
}

@test "a client streaming without pause does not hold the loop: signals are still answered" {
    server_start
    client_join a
    client_join b socat
    # a streams for as long as the test lasts: one read-until-EAGAIN loop
    # would never end, and the signal pipe would never be read.
    yes "$(printf '%0100d' 7)" >"$BATS_TEST_TMPDIR/a.in" 3>&- &
    bg_track "$!"
    wait_until "b to hear the stream" grep -q '^user1: 0000' "$(out_of b)"
    kill -HUP "$SERVER_PID"
    wait_until "a status line" grep -qE '^(\[[^]]*\] )?status: ' "$SERVER_ERR"
    # (Whether b's notice gets through depends on how fast b drains the
    # stream queued before it within the grace period; other tests check
    # the notice. This one checks that the signal is handled at all.)
    kill -TERM "$SERVER_PID"
    run server_exit_status
    assert_output 0
}
