#!/usr/bin/env bats
# Flow control (SPEC "Flow control"), the same in every chapter: a flood
# slows its sender, never the readers who keep up, and a reader that does
# not keep up holds the room for at most the grace period (1 s), then is
# dropped and announced as left. No case here paces its flood: sending as
# fast as loopback allows is what users do, and the server does the
# pacing (its bytes wait in the kernel; TCP slows the sender).
#
# Linked into every step's suite (tests/stepNN/flow.bats).

# Each case floods at full speed; side by side they would only measure
# how the machine shares its cores, so they run one after the other.
setup_file() {
    export BATS_NO_PARALLELIZE_WITHIN_FILE=true
}

setup() {
    load ../helpers/common
    # A 2 MB/s reader takes about 10 s for the flood; sanitizer builds on
    # a busy machine are slower.
    # shellcheck disable=SC2034 # read by the helpers' waits
    WAIT_SECONDS=120
    FLOOD=$BATS_TEST_TMPDIR/flood
    # 21,000 lines of 1,000 bytes (999 digits and "\n"): 21 MB, far more
    # than the kernel's socket buffers and any queue hold.
    LINES=21000
    seq -f "%0999g" 1 "$LINES" >"$FLOOD"
}

# flood_start: user1 (client a, socat) sends the flood at full speed, in
# the background.
flood_start() {
    send_file a "$FLOOD" 3>&- &
    bg_track "$!"
}

# heard_all NAME: NAME received every line of the flood, once, in order.
heard_all() {
    sed -n 's/^user1: //p' "$(out_of "$1")" | cmp -s - "$FLOOD"
}

# has_all NAME: NAME has received the flood's last line.
has_all() {
    has_line "$(out_of "$1")" "user1: $(printf '%0999d' "$LINES")"
}

# reader_start NAME RATE: a peer that reads RATE bytes a second (0: as
# fast as it can), copying what it hears to its out file.
reader_start() {
    peer_start "$1" read "$2"
}

@test "a full-speed flood of 21 MB reaches a 2 MB/s reader and a fast reader whole; neither is dropped" {
    server_start -n 10
    client_join a socat
    client_join fast socat
    reader_start slow 2000000
    expect fast "* user3 joined"
    flood_start
    wait_until "the fast reader to hear the whole flood" has_all fast
    wait_until "the 2 MB/s reader to hear the whole flood" has_all slow
    run heard_all fast
    assert_success
    run heard_all slow
    assert_success
    run grep -c 'left$' "$(out_of fast)"
    assert_output 0
    run grep -c 'dropping' "$SERVER_ERR"
    assert_output 0
}

@test "the same flood with a reader that never reads: it is dropped within the grace period, the others hear everything" {
    server_start -n 10
    client_join a socat
    client_join fast socat
    reader_start slow 2000000
    peer_start never noread
    expect fast "* user4 joined"
    local t0 t1
    t0=$(now_ms)
    flood_start
    WAIT_SECONDS=30 expect fast "* user4 left"
    t1=$(now_ms)
    # The grace period is 1 s from when its queue passed the high mark,
    # which is soon after the flood began; 5 s is the margin of a busy,
    # sanitized build.
    ((t1 - t0 < 6000)) || fail "the stalled reader held the room for $((t1 - t0)) ms"
    grep -q 'dropping.*(slow reader)$' "$SERVER_ERR"
    wait_until "the fast reader to hear the whole flood" has_all fast
    wait_until "the 2 MB/s reader to hear the whole flood" has_all slow
    run heard_all fast
    assert_success
    run heard_all slow
    assert_success
}

@test "a line typed during a flood reaches a fast reader within 2 s" {
    server_start -n 10
    client_join a socat
    client_join fast socat
    # The 2 MB/s reader keeps the flood going for about 10 s.
    reader_start slow 2000000
    client_join b nc
    expect fast "* user4 joined"
    flood_start
    wait_until "the flood to be under way" \
        eval "[ \$(grep -c '^user1: ' '$(out_of fast)') -ge 500 ]"
    say b "a line typed by hand"
    WAIT_SECONDS=2 expect fast "user4: a line typed by hand"
    # The flood is still going: the line did not wait for its end.
    run has_all slow
    assert_failure
}

# stop_reader_for SECONDS [first]: a flood while a fast reader is stopped
# (SIGSTOP) for SECONDS, then continued. The reader is stopped once it has
# read 100 lines of the flood, or, with "first", just before the flood
# starts: a reader that must be dropped cannot then have read the whole
# flood before the stop, however the machine schedules this shell.
stop_reader_for() {
    server_start -n 10
    client_join a socat
    client_join fast socat
    client_join stopped socat
    expect fast "* user3 joined"
    if [ "${2:-}" = first ]; then
        kill -STOP "${CLIENT_PID[stopped]}"
        flood_start
    else
        flood_start
        wait_until "the flood to be under way" \
            eval "[ \$(grep -c '^user1: ' '$(out_of stopped)') -ge 100 ]"
        kill -STOP "${CLIENT_PID[stopped]}"
    fi
    # The fault itself lasts this long; this is no wait for a condition.
    sleep "$1"
    kill -CONT "${CLIENT_PID[stopped]}"
}

@test "a reader stopped for 3 s during a flood is dropped, and the room goes on" {
    stop_reader_for 3 first
    expect fast "* user3 left"
    wait_until "the fast reader to hear the whole flood" has_all fast
    run heard_all fast
    assert_success
    run server_alive
    assert_success
}

@test "a reader stopped for 0.3 s during a flood is not dropped, and hears everything" {
    stop_reader_for 0.3
    wait_until "the fast reader to hear the whole flood" has_all fast
    wait_until "the stopped reader to hear the whole flood" has_all stopped
    run heard_all stopped
    assert_success
    run grep -c 'left$' "$(out_of fast)"
    assert_output 0
}
