#!/usr/bin/env bats
# Fault: SIGKILL, again and again, of the processes that serve clients --
# chapter 3's children, chapter 4's workers -- while the room is busy. The
# server must stay up and reap every one (no zombies), the killed clients
# must be announced as left, the clients nobody killed must keep talking
# and hear each other exactly once and in order, and nothing may be left
# in /dev/shm at the end.

setup() {
    load ../helpers/common
    load faults
}

ROUNDS=6
# Lines each stable client sends per round, while the kill happens: c
# hears about 112 KiB a round, well under the queue limit (HIGH_WATER) even
# if the machine does not run c for a whole round.
CHUNK=2000

# stream_round ROUND: a and b each send a chunk in the background (pids in
# WRITERS); the lines also go to $BATS_TEST_TMPDIR/{a,b}.all. Returns once
# c has heard the first line of each: the traffic is flowing.
stream_round() {
    local who
    WRITERS=()
    for who in a b; do
        seq -f "$who round $1 line %g" 1 "$CHUNK" >"$BATS_TEST_TMPDIR/$who.chunk"
        cat "$BATS_TEST_TMPDIR/$who.chunk" >>"$BATS_TEST_TMPDIR/$who.all"
        send_file "$who" "$BATS_TEST_TMPDIR/$who.chunk" 3>&- &
        WRITERS+=("$!")
    done
    for who in a b; do
        expect c "$(user_of "$who"): $who round $1 line 1"
    done
}

# survivors_heard_all: a, b and c heard every line of a and b, exactly.
survivors_heard_all() {
    local to from
    for to in a b c; do
        for from in a b; do
            [ "$from" = "$to" ] ||
                WAIT_SECONDS=60 heard_all "$to" "$(user_of "$from")" "$BATS_TEST_TMPDIR/$from.all"
        done
    done
}

# all_hear_left NAME...: a, b and c hear each NAME announced as left, and
# each NAME's client sees its connection closed.
all_hear_left() {
    local v s
    for v in "$@"; do
        wait_until "$v's client to see the close" client_gone "$v"
        for s in a b c; do expect "$s" "* $(user_of "$v") left"; done
    done
}

@test "chapter 3: children SIGKILLed in a loop under traffic: reaped, announced, survivors hear everything exactly once" {
    only_steps "chapter 3 is the one with a child per client" 3
    server_start -v -n 20
    client_join a
    client_join b nc
    client_join c socat
    local round v kid killed=0
    for round in $(seq 1 "$ROUNDS"); do
        client_join "v${round}x"
        client_join "v${round}y"
        stream_round "$round"
        for v in "v${round}x" "v${round}y"; do
            kid=$(child_pid_of "$(user_of "$v")")
            [ -n "$kid" ] || fail "no child for $v in the trace"
            kill -KILL "$kid"
            killed=$((killed + 1))
        done
        wait "${WRITERS[@]}"
        all_hear_left "v${round}x" "v${round}y"
        wait_until "every dead child to be reaped" no_zombies
    done
    survivors_heard_all
    run server_alive
    assert_success
    figure "$killed" "$killed children SIGKILLed in $ROUNDS rounds; $((2 * ROUNDS * CHUNK)) lines to each survivor, none lost or doubled"
    server_stop
}

@test "chapter 4: workers SIGKILLed in a loop under traffic: replaced, their clients announced, survivors hear everything exactly once" {
    only_steps "chapter 4 is the one with a pool of workers" 4
    # Four workers, whatever the machine's CPU count: a, b and c take
    # three, the victims go to the fourth.
    server_start -v -w 4 -n 100
    client_join a
    client_join b nc
    client_join c socat
    local round killed=0
    for round in $(seq 1 "$ROUNDS"); do
        join_victims 2 a b c
        stream_round "$round"
        kill -KILL "$VICTIM_PID"
        killed=$((killed + 1))
        wait "${WRITERS[@]}"
        wait_until "worker $VICTIM_WORKER to be replaced" grep -q \
            "worker $VICTIM_WORKER (pid $VICTIM_PID) died; replacing it" "$SERVER_ERR"
        all_hear_left "${VICTIMS[@]}"
        wait_until "every dead worker to be reaped" no_zombies
    done
    survivors_heard_all
    run server_alive
    assert_success
    # The pool is whole again, and serves.
    [ "$(kids_of "$SERVER_PID" | wc -l)" -eq 4 ]
    client_join late
    say late "after the kills"
    expect a "$(user_of late): after the kills"
    figure "$killed" "$killed workers SIGKILLed in $ROUNDS rounds; $((2 * ROUNDS * CHUNK)) lines to each survivor, none lost or doubled"
    server_stop
}
