#!/usr/bin/env bats
# Fault: many clients that never read while a sender streams. Each client's
# queue of unwritten output is bounded (HIGH_WATER in the sources): the
# server's memory must stay under a bound that follows from it, the slow
# readers must be dropped and announced as left, and a reader that keeps
# up must get every line.

setup() {
    load ../helpers/common
    load faults
    small_quarantine
}

# Clients that never read.
SLOW=50
# What the sender streams: far more than the kernel's socket buffers and
# every slow reader's queue hold (20000 lines of 900 bytes, 18 MB).
LINES=20000

@test "50 readers that never read: dropped and announced as left, memory bounded by the queue limit, the rest hear everything" {
    server_start -n $((SLOW + 10))
    # w reads as fast as it can, s sends at full speed: no pacing by the
    # test. While a slow reader's queue is over the high mark the server
    # stops reading s (TCP slows it); each slow reader holds the room for
    # at most the grace period, then is dropped (SPEC "Flow control").
    local sent=$BATS_TEST_TMPDIR/sent
    seq -f "%0900g" 1 "$LINES" >"$sent"
    client_join w socat
    client_join s socat
    local log
    log=$(out_of w)
    perl "$FAULTS_DIR/noread.pl" 127.0.0.1 "$SERVER_PORT" "$SLOW" \
        >"$BATS_TEST_TMPDIR/slow.out" 2>&1 3>&- &
    bg_track "$!"
    wait_for_line "$BATS_TEST_TMPDIR/slow.out" "connected $SLOW"
    WAIT_SECONDS=60 wait_until "w to hear the $SLOW slow readers join" eval \
        "[ \$(grep -c '^\\* user[0-9]* joined\$' '$log') -eq $((SLOW + 1)) ]"
    # The bound: every client's queue at its limit, and the slack (see
    # memory_bound_kb). A server that kept what the slow readers did not
    # read would hold 18 MB for each.
    local before bound peak=$BATS_TEST_TMPDIR/peak
    bound=$(memory_bound_kb $((SLOW + 2))) || fail "no memory bound for $STEP"
    before=$(pss_kb)
    echo "$before" >"$peak"
    sample_pss_peak "$peak" 3>&- &
    bg_track "$!"
    local sampler=$!
    send_file s "$sent" 3>&- &
    bg_track "$!"
    # w, reading all along, hears every line, once and in order, and
    # every slow reader is dropped, announced to w as left.
    WAIT_SECONDS=120 heard_all w "$(user_of s)" "$sent"
    WAIT_SECONDS=60 wait_until "w to hear the $SLOW slow readers leave" eval \
        "[ \$(grep -c '^\\* user[0-9]* left\$' '$log') -eq $SLOW ]"
    kill "$sampler"
    local grew=$(($(cat "$peak") - before))
    ((grew <= bound)) ||
        fail "the server grew by $grew KiB with $SLOW slow readers (bound $bound KiB)"
    # Nobody but the slow readers left, and the room goes on.
    client_join late
    expect late "* welcome, you are user$((SLOW + 3)) (3 online)"
    run grep -c '^\* user[0-9]* left$' "$log"
    assert_output "$SLOW"
    wait_until "every dead child to be reaped" no_zombies
    figure "$SLOW" "$SLOW slow readers dropped; $LINES lines ($((LINES * 901)) bytes) to the reader that kept up, none lost; PSS grew $grew KiB (bound $bound KiB)"
    server_stop
}
