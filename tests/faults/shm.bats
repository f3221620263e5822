#!/usr/bin/env bats
# Fault: /dev/shm is too small, full, or read-only. Chapters 3 and 4 keep
# the room in POSIX shared memory: they must refuse to start, with one line
# naming the cause and exit status 1 -- never start and die of SIGBUS on
# the first write into a page the full tmpfs cannot supply. Chapters 1 and
# 2 use no shared memory and must not care.
#
# Each case gets a /dev/shm of its own in a private mount namespace
# (shm_jail.sh), so nothing outside the test sees it; that needs root and
# unshare(1).

# SC2154: bats's run sets $stderr.
# shellcheck disable=SC2154

setup() {
    load ../helpers/common
    load faults
    JAIL=$FAULTS_DIR/shm_jail.sh
    [ "$(id -u)" -eq 0 ] || skip "needs root for a private mount namespace"
    command -v unshare >/dev/null || skip "needs unshare (util-linux)"
    "$JAIL" tiny true 2>/dev/null ||
        skip "cannot mount a tmpfs in a private mount namespace here"
}

# jailed_server MODE: a wrapper that starts $SERVER in a jail of MODE,
# keeping its pid (for server_start: SERVER=$(jailed_server full)).
jailed_server() {
    local wrapper=$BATS_TEST_TMPDIR/jailed-$1
    printf '#!/bin/sh\nexec %q %q %q "$@"\n' "$JAIL" "$1" "$SERVER" >"$wrapper"
    chmod +x "$wrapper"
    echo "$wrapper"
}

# Chapter 4 with a pool of 2, whatever the machine's CPU count.
pool_args() {
    ((STEP_NUM != 4)) || echo "-w 2"
}

# The one line chapters 3 and 4 print when the region cannot be made.
shm_error() {
    if ((STEP_NUM == 3)); then
        echo "cannot create shared memory for 5 users: $1"
    else
        echo "cannot create shared memory for 2 workers: $1"
    fi
}

# refuses_to_start MODE CAUSE: in a jail of MODE, the server exits 1 at
# once with the one line naming CAUSE, and leaves nothing in /dev/shm.
refuses_to_start() {
    local left=$BATS_TEST_TMPDIR/left
    # Bounded: a server that keeps dying and being replaced never exits.
    # shellcheck disable=SC2046 # no arguments, or -w 2
    SHM_JAIL_LIST=$left run --separate-stderr \
        timeout -k 5 "$WAIT_SECONDS" "$JAIL" "$1" "$SERVER" $(pool_args) 127.0.0.1 0
    assert_failure 1
    assert_output ""
    assert_equal "$stderr" "$(shm_error "$2")"
    run grep -v '^filler$' "$left"
    assert_output ""
    figure 1 "/dev/shm $1: one line, exit 1"
}

# chats_in MODE: in a jail of MODE, the server (chapters 1 and 2) works.
chats_in() {
    SERVER=$(jailed_server "$1") server_start
    client_join a
    client_join b nc
    say a "no shared memory needed"
    expect b "user1: no shared memory needed"
    figure 1 "/dev/shm $1: not used, the room works"
    server_stop
}

@test "/dev/shm far too small: chapters 3 and 4 exit 1 with one line at start; 1 and 2 just work" {
    if ((STEP_NUM >= 3)); then
        refuses_to_start tiny "No space left on device"
    else
        chats_in tiny
    fi
}

@test "/dev/shm full to the last byte: chapters 3 and 4 exit 1 with one line at start (not SIGBUS later); 1 and 2 just work" {
    if ((STEP_NUM >= 3)); then
        refuses_to_start full "No space left on device"
    else
        chats_in full
    fi
}

@test "/dev/shm read-only: chapters 3 and 4 exit 1 with one line at start; 1 and 2 just work" {
    if ((STEP_NUM >= 3)); then
        refuses_to_start ro "Read-only file system"
    else
        chats_in ro
    fi
}

@test "/dev/shm filling up while the server runs cannot hurt it: its pages were reserved at start" {
    only_steps "chapters 1 and 2 use no shared memory" 3 4
    # Room for the rings, then the test takes every page that is left.
    # shellcheck disable=SC2046 # no arguments, or -w 2
    SERVER=$(jailed_server size=64m) server_start -v -n 4 $(pool_args)
    run nsenter --mount --target "$SERVER_PID" \
        dd if=/dev/zero of=/dev/shm/filler bs=65536
    assert_failure
    assert_output --partial "No space left on device"
    run nsenter --mount --target "$SERVER_PID" df --output=avail /dev/shm
    assert_line --index 1 --regexp '^ *0$'
    # Now make the server write every page of its region: every user's
    # ring (chapter 3), every worker's ring (chapter 4) goes round once. A
    # record is 1060 bytes, less than a page, so even short lines touch
    # every page of a ring as it goes round.
    local who senders=() sent=$BATS_TEST_TMPDIR/sent n
    for who in a b c d; do client_join "$who"; done
    if ((STEP_NUM == 3)); then
        n=300 # RING_SLOTS is 256
        senders=(a b c d)
    else
        n=4200 # RING_SLOTS is 4096; one sender per worker
        local worker seen=" "
        for who in a b c d; do
            worker=$(worker_of "$(user_of "$who")")
            worker=${worker%% *}
            [[ $seen == *" $worker "* ]] || senders+=("$who")
            seen+="$worker "
        done
        [ "${#senders[@]}" -eq 2 ] || fail "four clients on one worker"
    fi
    seq -f "round the ring %g" 1 "$n" >"$sent"
    local pids=()
    for who in "${senders[@]}"; do
        send_file "$who" "$sent" 3>&- &
        pids+=("$!")
    done
    wait "${pids[@]}"
    local from to
    for to in a b c d; do
        for from in "${senders[@]}"; do
            [ "$from" = "$to" ] ||
                WAIT_SECONDS=60 heard_all "$to" "$(user_of "$from")" "$sent"
        done
    done
    run server_alive
    assert_success
    figure 1 "/dev/shm filled while running; ${#senders[@]} x $n lines relayed after, through every page"
    server_stop
}
