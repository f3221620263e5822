#!/usr/bin/env bats
# Chapter 2: one epoll loop holds a thousand clients (issue: "with a high
# limit the server holds at least 1000 concurrent clients"), raising its
# descriptor limit itself when -n needs it.

setup() {
    load ../helpers/common
}

@test "-n 1100 with a soft limit of 256: 1000 clients are held and all hear one broadcast" {
    local hard
    hard=$(ulimit -Hn)
    [ "$hard" = unlimited ] || ((hard >= 1200)) || skip "hard limit $hard is too low"
    SERVER_NOFILE=256 server_start -v -n 1100
    run grep -E '^raised the descriptor limit from 256 to [0-9]+ for 1100 users$' "$SERVER_ERR"
    assert_success
    perl "$HELPERS/crowd.pl" 127.0.0.1 "$SERVER_PORT" 1000 "user1001: to all" \
        >"$BATS_TEST_TMPDIR/crowd.out" 2>&1 3>&- &
    bg_track "$!"
    WAIT_SECONDS=60 wait_for_line "$BATS_TEST_TMPDIR/crowd.out" "joined 1000"
    client_join speaker
    expect speaker "* welcome, you are user1001 (1001 online)"
    say speaker "to all"
    WAIT_SECONDS=60 wait_for_line "$BATS_TEST_TMPDIR/crowd.out" "heard 1000"
    run server_alive
    assert_success
}
