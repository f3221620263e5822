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

# instance_procs PID: the processes still alive (not zombies) that map
# the shared memory of the chapter 3 server that had pid PID: its
# children, wherever they were reparented.
instance_procs() {
    local maps pid
    for maps in /proc/[0-9]*/maps; do
        pid=${maps#/proc/}
        pid=${pid%/maps}
        grep -q " /dev/shm/chat-$1-" "$maps" 2>/dev/null || continue
        [ "$(proc_state "$pid")" = Z ] || echo "$pid"
    done
}

# no_instance_procs PID: no process of that server is left.
no_instance_procs() {
    [ -z "$(instance_procs "$1")" ]
}

@test "chapter 3: the parent SIGKILLed during bursts of connects: no child outlives it, no connection stays open" {
    only_steps "chapter 3 forks a child per connection" 3
    # A child forked in the moment the parent dies must notice at once
    # (PR_SET_PDEATHSIG, then getppid()), else it serves its client on
    # with the parent gone. Eight bursts of 69 connections, the kill after
    # a different number in each, so that it lands while the parent forks.
    local round after pid half=0 got
    for round in $(seq 1 8); do
        server_start -n 80
        pid=$SERVER_PID
        after=$((round * 8))
        run perl "$FAULTS_DIR/burst.pl" 127.0.0.1 "$SERVER_PORT" 69 "$pid" "$after"
        got=$output
        assert_success
        [[ $got =~ half-made\ ([0-9]+) ]] && half=$((half + BASH_REMATCH[1]))
        run server_exit_status
        assert_output 137
        wait_until "every child of server $pid to die" no_instance_procs "$pid" || {
            ps -o pid,ppid,stat,cmd -p "$(instance_procs "$pid" | paste -sd,)" >&2
            return 1
        }
        run shm_left "$pid"
        assert_output ""
    done
    figure 8 "8 parents SIGKILLed during bursts of 69 connects: no child left, no connection held open ($half half-made by the kernel, reset when probed)"
}
