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

# as_nobody_prefix: sets AS_NOBODY to the command prefix that runs a
# process as nobody when the test runs as root (an empty array
# otherwise), or skips the case saying why it cannot.
as_nobody_prefix() {
    AS_NOBODY=()
    [ "$(id -u)" -eq 0 ] || return 0
    command -v setpriv >/dev/null || skip "as root, needs setpriv (util-linux) to run as nobody"
    AS_NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
    "${AS_NOBODY[@]}" test -x "$SERVER" || skip "nobody cannot run $SERVER"
}

# start_as_nobody ARGS...: server_start ARGS..., the server run as
# nobody if we are root (see as_nobody_prefix), for a process limit that
# binds it; skips if that cannot be done.
start_as_nobody() {
    as_nobody_prefix
    command -v prlimit >/dev/null || skip "needs prlimit (util-linux)"
    local wrapper=$BATS_TEST_TMPDIR/as-nobody
    {
        printf '#!/bin/bash\nexec'
        printf ' %q' "${AS_NOBODY[@]}" "$SERVER"
        printf ' "$@"\n'
    } >"$wrapper"
    chmod +x "$wrapper"
    SERVER=$wrapper server_start "$@"
}

# nproc_soft LIMIT: sets the server's soft process limit (RLIMIT_NPROC),
# with prlimit run as the server's own user: that needs no privilege,
# while root may lack CAP_SYS_RESOURCE for another user's process.
nproc_soft() {
    "${AS_NOBODY[@]}" prlimit --pid "$SERVER_PID" --nproc="$1:"
}

# pool_size_is N: the server has N children (its workers).
pool_size_is() {
    [ "$(kids_of "$SERVER_PID" | wc -l)" -eq "$1" ]
}

@test "chapter 4: a worker dies while fork fails: its clients are announced as left at once, a newcomer is told the right count, the fork is retried" {
    only_steps "chapter 4 is the one with a pool of workers" 4
    # fork() fails with EAGAIN while the server's user runs at least as
    # many processes as its soft RLIMIT_NPROC. That limit binds no root
    # process (CAP_SYS_RESOURCE or not: the kernel exempts uid 0), so as
    # root the server runs as nobody.
    start_as_nobody -v -w 2 -n 20
    client_join a
    # Six more: those on a's worker stay, the others (gone) are on the
    # worker that will be killed.
    local i who w mine stay=0 soft
    local -a gone=()
    mine=$(worker_of "$(user_of a)")
    for i in 1 2 3 4 5 6; do
        who=x$i
        client_join "$who"
        w=$(worker_of "$(user_of "$who")")
        if [ "${w%% *}" = "${mine%% *}" ]; then
            stay=$((stay + 1))
        else
            gone+=("$who")
            VICTIM_WORKER=${w%% *}
            VICTIM_PID=${w##* }
        fi
    done
    [ "${#gone[@]}" -gt 0 ] || fail "every client on a's worker"
    soft=$("${AS_NOBODY[@]}" prlimit --pid "$SERVER_PID" --nproc --raw --noheadings -o SOFT)
    # From now on the server's user is over its limit: no fork succeeds.
    nproc_soft 1
    kill -KILL "$VICTIM_PID"
    wait_until "worker $VICTIM_WORKER to be reaped" grep -q \
        "worker $VICTIM_WORKER (pid $VICTIM_PID) died" "$SERVER_ERR"
    # Its clients are announced as left, though nothing could replace it.
    for who in "${gone[@]}"; do
        expect a "* $(user_of "$who") left"
        wait_until "$who's client to see the close" client_gone "$who"
    done
    wait_until "the failed fork to be logged" grep -q "cannot replace worker $VICTIM_WORKER: cannot fork worker $VICTIM_WORKER: Resource temporarily unavailable; trying again every" "$SERVER_ERR"
    run pool_size_is 1
    assert_success
    # A newcomer is told the right count: a, those who stayed, itself.
    client_join late
    expect late "* welcome, you are $(user_of late) ($((stay + 2)) online)"
    say late "while a worker is missing"
    expect a "$(user_of late): while a worker is missing"
    # The fork is tried again and again; the failure is logged once.
    wait_until "more tries" grep -q "worker $VICTIM_WORKER: try 3 failed" "$SERVER_ERR"
    run grep -c "cannot replace worker" "$SERVER_ERR"
    assert_output 1
    # Forks work again: the pool is whole within a few tries.
    nproc_soft "$soft"
    WAIT_SECONDS=3 wait_until "the pool to be whole again" pool_size_is 2
    grep -q "worker $VICTIM_WORKER replaced after [0-9]* failed tries" "$SERVER_ERR"
    # The new worker serves: newcomers until one lands on it.
    local online=$((stay + 2)) served=
    for i in 1 2 3; do
        who=y$i
        client_join "$who"
        online=$((online + 1))
        expect "$who" "* welcome, you are $(user_of "$who") ($online online)"
        w=$(worker_of "$(user_of "$who")")
        if [ "${w%% *}" = "$VICTIM_WORKER" ]; then
            served=$who
            break
        fi
    done
    [ -n "$served" ] || fail "no newcomer on the new worker $VICTIM_WORKER"
    say "$served" "from the new worker"
    expect a "$(user_of "$served"): from the new worker"
    say a "to the new worker"
    expect "$served" "$(user_of a): to the new worker"
    figure 1 "a worker SIGKILLed while fork fails: ${#gone[@]} clients announced at once, the newcomer told $((stay + 2)) online, the pool whole again once forks work"
    server_stop
}

@test "chapter 4: a pool of one whose worker dies while fork fails waits for the fork, without spinning, then serves" {
    only_steps "chapter 4 is the one with a pool of workers" 4
    start_as_nobody -v -w 1 -n 20
    client_join v1
    client_join v2
    local soft worker
    soft=$("${AS_NOBODY[@]}" prlimit --pid "$SERVER_PID" --nproc --raw --noheadings -o SOFT)
    worker=$(kids_of "$SERVER_PID")
    nproc_soft 1
    kill -KILL "$worker"
    wait_until "v1's client to see the close" client_gone v1
    wait_until "v2's client to see the close" client_gone v2
    wait_until "the failed fork to be logged" grep -q "cannot replace worker 0: " "$SERVER_ERR"
    # No worker, and none can be made: the server waits for one, it does
    # not give up; a connection waits in the backlog, and the loop does
    # not wake for it over and over.
    run server_alive
    assert_success
    peer_start late read 1000000
    assert_no_spin "with no worker and a connection waiting"
    run server_alive
    assert_success
    # Forks work again: the worker is forked, and accepts the newcomer.
    nproc_soft "$soft"
    WAIT_SECONDS=3 wait_until "the pool to be whole again" pool_size_is 1
    wait_for_line "$(out_of late)" "* welcome, you are user3 (1 online)"
    client_join b
    say b "after the wait"
    wait_for_line "$(out_of late)" "user4: after the wait"
    figure 1 "a pool of one out of processes: it waited for the fork, no spin, then served the connection that waited"
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
