#!/usr/bin/env bats
# Fault: a process of the server is stopped (SIGSTOP) under traffic and
# later continued (SIGCONT) -- chapter 3's child of one client, chapter
# 4's worker of some clients, or the server's main process in every step.
# The room must not wedge: the others keep talking while it is stopped.
# Afterwards the stopped process either catches up -- its clients get
# every line, once, in order -- or, if it fell a whole ring behind, its
# clients are dropped and announced as left. Nothing is lost or garbled
# for a client that stays connected.

setup() {
    load ../helpers/common
    load faults
}

# Lines a sends while the process is stopped: SHORT fit in the stopped
# reader's ring cursor's reach, LONG lap it (rings of 256 records in
# chapter 3, 4096 in chapter 4).
short_lines() {
    if ((STEP_NUM == 3)); then echo 200; else echo 1000; fi
}
long_lines() {
    if ((STEP_NUM == 3)); then echo 3000; else echo 12000; fi
}

# start_room: the server, a (sender) and b (reader), and victims x and y
# whose serving process is VICTIM_PID: x's child (chapter 3), or the
# worker that serves both (chapter 4).
start_room() {
    if ((STEP_NUM == 3)); then
        server_start -v -n 20
        client_join a
        client_join b nc
        client_join x
        client_join y socat
        VICTIMS=(x)
        VICTIM_PID=$(child_pid_of "$(user_of x)")
    else
        server_start -v -w 3 -n 100
        client_join a
        client_join b nc
        join_victims 2 a b
    fi
    [ -n "$VICTIM_PID" ] || fail "no process found for the victims"
}

# is_stopped PID: the process is in the stopped state.
is_stopped() {
    [ "$(proc_state "$1")" = T ]
}

# stopped_for SINCE MS: MS milliseconds have passed since SINCE (now_ms).
stopped_for() {
    (($(now_ms) - $1 >= $2))
}

@test "a child or worker stopped for a short while: the room goes on, and after SIGCONT its clients catch up exactly" {
    only_steps "chapters 1 and 2 have one process (see the last case)" 3 4
    start_room
    local n sent=$BATS_TEST_TMPDIR/sent
    n=$(short_lines)
    seq -f "short %g" 1 "$n" >"$sent"
    kill -STOP "$VICTIM_PID"
    wait_until "the victim's process to stop" is_stopped "$VICTIM_PID"
    # While it is stopped: b hears all of a, a hears b, the victims talk
    # into the kernel, and a newcomer is served.
    send_file a "$sent"
    heard_all b "$(user_of a)" "$sent"
    say b "while it is stopped"
    expect a "$(user_of b): while it is stopped"
    say "${VICTIMS[0]}" "said while stopped"
    client_join z
    say z "newcomer"
    expect a "$(user_of z): newcomer"
    kill -CONT "$VICTIM_PID"
    # It catches up: every victim hears everything, once and in order.
    local v
    for v in "${VICTIMS[@]}"; do
        heard_all "$v" "$(user_of a)" "$sent"
        expect "$v" "$(user_of b): while it is stopped"
        expect "$v" "$(user_of z): newcomer"
    done
    expect a "$(user_of "${VICTIMS[0]}"): said while stopped"
    expect b "$(user_of "${VICTIMS[0]}"): said while stopped"
    for v in "${VICTIMS[@]}"; do
        run count_lines "$(out_of a)" "* $(user_of "$v") left"
        assert_output 0
    done
    run grep -E "died; replacing it|killed by signal" "$SERVER_ERR"
    assert_output ""
    figure 1 "stopped and continued with $n lines in between; every victim heard all $n"
    server_stop
}

@test "a child or worker stopped for long: it is lapped, never waited for long; after SIGCONT its clients are dropped and announced, the rest heard everything" {
    only_steps "chapters 1 and 2 have one process (see the last case)" 3 4
    start_room
    local n sent=$BATS_TEST_TMPDIR/sent
    n=$(long_lines)
    seq -f "long %g" 1 "$n" >"$sent"
    kill -STOP "$VICTIM_PID"
    wait_until "the victim's process to stop" is_stopped "$VICTIM_PID"
    # More than a ring: a's lines can only all reach b if a's writer
    # passes the stopped reader over -- the room is not wedged.
    send_file a "$sent" 3>&- &
    local writer=$!
    WAIT_SECONDS=60 heard_all b "$(user_of a)" "$sent"
    wait "$writer"
    say b "while it is stopped"
    expect a "$(user_of b): while it is stopped"
    kill -CONT "$VICTIM_PID"
    # It finds itself lapped and leaves; its clients are announced.
    local v who
    for v in "${VICTIMS[@]}"; do
        wait_until "$v's client to see the close" client_gone "$v"
        for who in a b; do expect "$who" "* $(user_of "$v") left"; done
        # What v got of a's lines is a gapless start: nothing garbled.
        local k
        k=$(lines_from "$(out_of "$v")" "$(user_of a)" | wc -l)
        run diff <(lines_from "$(out_of "$v")" "$(user_of a)") <(head -n "$k" "$sent")
        assert_success
    done
    # The rest of the room goes on, and newcomers are served.
    client_join z
    say z "after the stop"
    expect a "$(user_of z): after the stop"
    expect b "$(user_of z): after the stop"
    wait_until "every dead child to be reaped" no_zombies
    figure 1 "stopped while $n lines passed (more than a ring); victims dropped and announced, b heard all $n"
    server_stop
}

@test "the server's main process stopped and continued under traffic: nothing lost, nothing doubled" {
    server_start -n 10
    client_join a
    client_join b nc
    # About 190 KiB for b: under the queue limit (HIGH_WATER) even if b
    # reads nothing until the server goes on.
    local n=10000 sent=$BATS_TEST_TMPDIR/sent
    seq -f "paused %g" 1 "$n" >"$sent"
    send_file a "$sent" 3>&- &
    local writer=$!
    expect b "$(user_of a): paused 1"
    kill -STOP "$SERVER_PID"
    wait_until "the server to stop" is_stopped "$SERVER_PID"
    # A client that connects meanwhile waits in the backlog.
    socat -u "TCP:127.0.0.1:$SERVER_PORT" - >"$(out_of late)" 2>&1 3>&- &
    bg_track "$!"
    kill -CONT "$SERVER_PID"
    wait "$writer"
    WAIT_SECONDS=60 heard_all b "$(user_of a)" "$sent"
    wait_for_line "$(out_of late)" "* welcome, you are user3 (3 online)"
    figure 1 "main process stopped and continued under traffic; $n lines, none lost"
    server_stop
}

# start_readers: the server, the sender a, and READERS: in chapter 3 b
# and c, each a child of its own; in chapter 4 (two workers) clients that
# join until two of them, b and c, are on the worker a is not on, so that
# every line a sends reaches them through a ring. Those that land on a's
# worker stay, as readers too.
start_readers() {
    READERS=()
    if ((STEP_NUM == 3)); then
        server_start -n 10
        client_join a
        client_join b nc
        client_join c socat
        READERS=(b c)
        return
    fi
    server_start -v -w 2 -n 20
    client_join a
    local mine w i name tools=(nc socat)
    local -a apart=() beside=()
    mine=$(worker_of "$(user_of a)")
    for i in 1 2 3 4 5 6 7 8; do
        ((${#apart[@]} < 2)) || break
        name=r$i
        client_join "$name" "${tools[i % 2]}"
        w=$(worker_of "$(user_of "$name")")
        if [ "${w%% *}" != "${mine%% *}" ]; then
            apart+=("$name")
        else
            beside+=("$name")
        fi
    done
    READERS=("${apart[@]}" "${beside[@]}")
    ((${#apart[@]} == 2)) || fail "not two clients on the worker a is not on"
}

@test "the parent stopped for 2 s under traffic: the children or workers wake each other, every reader hears every line meanwhile" {
    only_steps "chapters 1 and 2 have one process" 3 4
    start_readers
    local b=${READERS[0]} c=${READERS[1]} who
    say "$b" "before the stop"
    expect a "$(user_of "$b"): before the stop"
    kill -STOP "$SERVER_PID"
    wait_until "the parent to stop" is_stopped "$SERVER_PID"
    local t0 n=8000 sent=$BATS_TEST_TMPDIR/sent
    t0=$(now_ms)
    # 8,000 lines: many rings' worth in chapter 3, two in chapter 4. Were
    # the readers woken through the parent, nobody would copy them, a's
    # writer would pass the readers over after its grace period, and
    # they would be dropped as slow.
    seq -f "while the parent is stopped %g" 1 "$n" >"$sent"
    send_file a "$sent"
    for who in "${READERS[@]}"; do
        WAIT_SECONDS=60 heard_all "$who" "$(user_of a)" "$sent"
    done
    say "$c" "a reply while it is stopped"
    expect a "$(user_of "$c"): a reply while it is stopped"
    expect "$b" "$(user_of "$c"): a reply while it is stopped"
    # The fault lasts 2 s, however fast the lines went round; the parent
    # is still stopped when the readers have heard everything.
    wait_until "2 s with the parent stopped" stopped_for "$t0" 2000
    run is_stopped "$SERVER_PID"
    assert_success
    kill -CONT "$SERVER_PID"
    # Nobody was passed over as slow, and the parent goes on accepting.
    client_join z
    say z "after the stop"
    expect a "$(user_of z): after the stop"
    for who in a "${READERS[@]}"; do
        run grep -c ' left$' "$(out_of "$who")"
        assert_output 0
    done
    figure 1 "parent stopped 2 s while $n lines passed; ${#READERS[@]} readers heard all $n, nobody dropped"
    server_stop
}
