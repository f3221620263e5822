#!/usr/bin/env bats
# Fault: two instances of the same server on one machine, busy at the same
# time. Each must be its own room -- no line, id or count crosses -- and in
# chapters 3 and 4 their shared memory must never meet: each instance maps
# an object of its own (its own name, its own inode), and the death of one
# leaves the other untouched.

setup() {
    load ../helpers/common
    load faults
}

@test "two instances side by side, both busy: two rooms, nothing crosses, and killing one leaves the other talking" {
    server_start -n 10
    local x_pid=$SERVER_PID
    client_join x1
    client_join x2 nc
    server_start -n 10
    local y_pid=$SERVER_PID
    client_join y1
    client_join y2 socat
    # Each room numbers its own users from 1.
    expect x2 "* welcome, you are user2 (2 online)"
    expect y2 "* welcome, you are user2 (2 online)"
    if ((STEP_NUM >= 3)); then
        local xs ys
        xs=$(mapped_shm "$x_pid")
        ys=$(mapped_shm "$y_pid")
        [ -n "$xs" ] && [ -n "$ys" ] || fail "no shared memory mapped: '$xs' '$ys'"
        # Different names and different objects (inodes).
        [ "${xs% *}" != "${ys% *}" ] || fail "both map $xs"
        [ "${xs#* }" != "${ys#* }" ] || fail "both map inode ${xs#* }"
        # Every process of an instance maps that instance's object.
        local pid
        for pid in $(kids_of "$x_pid"); do
            [ "$(mapped_shm "$pid")" = "$xs" ] || fail "$pid of the first maps $(mapped_shm "$pid")"
        done
        for pid in $(kids_of "$y_pid"); do
            [ "$(mapped_shm "$pid")" = "$ys" ] || fail "$pid of the second maps $(mapped_shm "$pid")"
        done
    fi
    # Both rooms stream at once.
    local n=5000 who
    seq -f "room x %g" 1 "$n" >"$BATS_TEST_TMPDIR/x.lines"
    seq -f "room y %g" 1 "$n" >"$BATS_TEST_TMPDIR/y.lines"
    send_file x1 "$BATS_TEST_TMPDIR/x.lines" 3>&- &
    local wx=$!
    send_file y1 "$BATS_TEST_TMPDIR/y.lines" 3>&- &
    local wy=$!
    wait "$wx" "$wy"
    heard_all x2 user1 "$BATS_TEST_TMPDIR/x.lines"
    heard_all y2 user1 "$BATS_TEST_TMPDIR/y.lines"
    for who in x1 x2; do
        run grep -c 'room y' "$(out_of "$who")"
        assert_output 0
    done
    for who in y1 y2; do
        run grep -c 'room x' "$(out_of "$who")"
        assert_output 0
    done
    # The first dies, with all its processes; the second does not notice.
    local x_kids kid
    x_kids=$(kids_of "$x_pid")
    kill -KILL "$x_pid"
    for kid in $x_kids; do wait_for_exit "$kid"; done
    wait_until "x1's client to see the close" client_gone x1
    run shm_left "$x_pid"
    assert_output ""
    say y2 "still here"
    expect y1 "user2: still here"
    client_join y3
    expect y3 "* welcome, you are user3 (3 online)"
    SERVER_PID=$y_pid
    figure 1 "two instances, $((2 * n)) lines relayed at once, nothing crossed; one SIGKILLed, the other untouched"
    server_stop
}
