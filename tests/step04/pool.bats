#!/usr/bin/env bats
# Chapter 4: the process pool (book 15.3) -- one room across the workers,
# workers that die and are replaced, and scale.

setup() {
    load ../helpers/common
}

# status_of [N]: send SIGHUP and wait for the status lines of the pool's
# N workers (default $WORKERS); prints "INDEX PID CLIENTS" per worker from
# the newest report.
status_of() {
    local n=${1:-$WORKERS} before
    before=$(grep -c 'status: worker ' "$SERVER_ERR" || true)
    kill -HUP "$SERVER_PID"
    wait_until "a new status report" eval \
        "[ \$(grep -c 'status: worker ' '$SERVER_ERR') -ge $((before + n)) ]"
    grep 'status: worker ' "$SERVER_ERR" | tail -n "$n" |
        sed -E 's/.*status: worker ([0-9]+) pid ([0-9]+): ([0-9]+) clients.*/\1 \2 \3/'
}

# worker_pid INDEX: the pid of worker INDEX, from a fresh status report.
worker_pid() {
    status_of "$WORKERS" | awk -v i="$1" '$1 == i { print $2 }'
}

WORKERS=3

@test "clients spread over the workers all hear each other, exactly once and in order" {
    server_start -w "$WORKERS" -n 100
    local who
    for who in a b c d e f; do client_join "$who"; done
    # Round-robin: every worker has clients.
    run status_of
    assert_success
    [ "$(echo "$output" | awk '$3 >= 1' | wc -l)" -eq "$WORKERS" ] ||
        fail "not every worker has a client: $output"
    local n=200
    for who in a b c d e f; do
        seq -f "$who %g" 1 "$n" >"$BATS_TEST_TMPDIR/$who.lines"
    done
    local pids=()
    for who in a b c d e f; do
        send_file "$who" "$BATS_TEST_TMPDIR/$who.lines" 3>&- &
        pids+=("$!")
    done
    wait "${pids[@]}"
    local from to
    for to in a b c d e f; do
        for from in a b c d e f; do
            [ "$from" = "$to" ] && continue
            expect "$to" "$(user_of "$from"): $from $n"
            run diff <(sed -n "s/^$(user_of "$from"): //p" "$(out_of "$to")") \
                "$BATS_TEST_TMPDIR/$from.lines"
            assert_success
        done
        run grep -c "^$(user_of "$to"): " "$(out_of "$to")"
        assert_output 0
    done
}

@test "ids, the online count and the user limit are room-wide" {
    server_start -w "$WORKERS" -n 4
    client_join a
    client_join b
    client_join c
    client_join d
    expect d "* welcome, you are user4 (4 online)"
    client_start e socat
    wait_until "the fifth client to be refused" client_gone e
    run cat "$(out_of e)"
    assert_output "too many users"
    client_close b
    expect a "* user2 left"
    client_join f
    expect f "* welcome, you are user5 (4 online)"
}

@test "a worker killed with SIGKILL is replaced; its clients are announced as left; the rest talk on and new clients are served" {
    server_start -v -w "$WORKERS" -n 100
    local who
    for who in a b c d e f; do client_join "$who"; done
    local victim
    victim=$(worker_pid 1)
    [ -n "$victim" ] || fail "no worker 1"
    # Who is on worker 1, from its trace: "user3 on fd 7".
    local on_victim
    on_victim=" $(grep "^\[worker 1 pid $victim\]" "$SERVER_ERR" |
        grep -oE 'user[0-9]+ on fd' | cut -d' ' -f1 | tr '\n' ' ')"
    local dead=() alive=()
    for who in a b c d e f; do
        if [[ $on_victim == *" $(user_of "$who") "* ]]; then
            dead+=("$who")
        else
            alive+=("$who")
        fi
    done
    [ "${#dead[@]}" -ge 1 ] || fail "no client on worker 1: $on_victim"
    [[ " ${alive[*]} " == *" a "* ]] || fail "a is on worker 1"
    # Traffic from a while the worker dies.
    local n=300
    seq -f "a %g" 1 "$n" >"$BATS_TEST_TMPDIR/a.lines"
    send_file a "$BATS_TEST_TMPDIR/a.lines" 3>&- &
    local writer=$!
    kill -KILL "$victim"
    wait "$writer"
    wait_until "a replacement for worker 1" eval \
        "grep -q 'worker 1 (pid $victim) died; replacing it' '$SERVER_ERR'"
    local d l
    for d in "${dead[@]}"; do
        wait_until "$d's client to see the close" client_gone "$d"
        for l in "${alive[@]}"; do
            expect "$l" "* $(user_of "$d") left"
        done
    done
    # The survivors heard a's lines exactly once, in order.
    for l in "${alive[@]}"; do
        [ "$l" = a ] && continue
        expect "$l" "user1: a $n"
        run diff <(sed -n 's/^user1: //p' "$(out_of "$l")") "$BATS_TEST_TMPDIR/a.lines"
        assert_success
    done
    # New clients are served, on every worker including the new one.
    for who in g h i; do client_join "$who"; done
    say g "after the death"
    expect h "$(user_of g): after the death"
    expect i "$(user_of g): after the death"
    expect a "$(user_of g): after the death"
}

@test "killing workers again and again never wedges the room" {
    server_start -w "$WORKERS" -n 100
    client_join a
    client_join b
    local round victim
    for round in 1 2 3 4 5 6; do
        victim=$(worker_pid $((round % WORKERS)))
        kill -KILL "$victim"
        wait_until "worker $((round % WORKERS)) to be replaced" eval \
            "grep -q 'worker $((round % WORKERS)) (pid $victim) died; replacing it' '$SERVER_ERR'"
        client_join "x$round"
        client_join "y$round"
        say "x$round" "round $round"
        expect "y$round" "$(user_of "x$round"): round $round"
    done
    run server_alive
    assert_success
}

@test "-w chooses the pool's size; by default one worker per CPU" {
    server_start -w 2
    run status_of 2
    [ "${#lines[@]}" -eq 2 ]
    run children_of "$SERVER_PID"
    [ "${#lines[@]}" -eq 2 ]
    stop_all
    server_start
    run children_of "$SERVER_PID"
    [ "${#lines[@]}" -eq "$(nproc)" ]
}

@test "a bad -w is a usage error" {
    run "$SERVER" -w 0 127.0.0.1 0
    assert_failure 2
    run "$SERVER" -w many 127.0.0.1 0
    assert_failure 2
}

@test "the default user limit is what the descriptor limit allows" {
    SERVER_NOFILE=300 SERVER_NOFILE_HARD=300 server_start -w 1
    local i
    for i in $(seq 1 5); do client_join "c$i"; done
    expect c5 "* welcome, you are user5 (5 online)"
    run "$SERVER" -h
    assert_output --partial "default: what the descriptor limit allows"
}

@test "nothing stays in /dev/shm and no worker stays after SIGTERM or a SIGKILLed parent" {
    server_start -w "$WORKERS"
    client_join a
    local kids pid=$SERVER_PID
    kids=$(children_of "$SERVER_PID")
    [ "$(echo "$kids" | wc -w)" -eq "$WORKERS" ]
    grep -q "/dev/shm/chat-$pid-.* (deleted)" "/proc/$pid/maps"
    run find /dev/shm -maxdepth 1 -name "chat-$pid-*"
    assert_output ""
    kill -TERM "$pid"
    run server_exit_status
    assert_output 0
    local kid
    for kid in $kids; do wait_for_exit "$kid"; done

    server_start -w "$WORKERS"
    client_join b
    pid=$SERVER_PID
    kids=$(children_of "$pid")
    kill -KILL "$pid"
    for kid in $kids; do wait_for_exit "$kid"; done
    run find /dev/shm -maxdepth 1 -name "chat-$pid-*"
    assert_output ""
}

@test "2000 concurrent clients hear one broadcast" {
    local hard
    hard=$(ulimit -Hn)
    [ "$hard" = unlimited ] || ((hard >= 2200)) || skip "hard limit $hard is too low"
    server_start -w "$WORKERS" -n 2100
    perl "$HELPERS/crowd.pl" 127.0.0.1 "$SERVER_PORT" 2000 "user2001: to all" \
        >"$BATS_TEST_TMPDIR/crowd.out" 2>&1 3>&- &
    bg_track "$!"
    WAIT_SECONDS=60 wait_for_line "$BATS_TEST_TMPDIR/crowd.out" "joined 2000"
    client_join speaker
    expect speaker "* welcome, you are user2001 (2001 online)"
    say speaker "to all"
    WAIT_SECONDS=60 wait_for_line "$BATS_TEST_TMPDIR/crowd.out" "heard 2000"
}

@test "-v traces every process, each line naming it" {
    server_start -v -w 2
    client_join a
    client_join b
    say a "traced"
    expect b "user1: traced"
    run grep -E '^\[parent\] epoll: [0-9]+ ready; listen fd [0-9]+ IN: worker [0-9] accepts$' "$SERVER_ERR"
    assert_success
    run grep -E '^\[worker [0-9] pid [0-9]+\] epoll: [0-9]+ ready; parent: accept: user1 on fd [0-9]+' "$SERVER_ERR"
    assert_success
}

# listening_inode PORT: the socket inode of the TCP listener on PORT.
listening_inode() {
    awk -v port="$(printf '%04X' "$1")" \
        '$4 == "0A" && $2 ~ (":" port "$") { print $10 }' /proc/net/tcp /proc/net/tcp6
}

# own_sockets WORKER LISTEN: fail unless WORKER shares no socket with the
# parent but the listening socket LISTEN; print how many others it holds.
own_sockets() {
    local shared
    shared=$(shared_sockets "$SERVER_PID" "$1")
    [ "$shared" = "$2" ] || {
        echo "worker $1 shares sockets $shared with the parent (listener $2)" >&2
        return 1
    }
    echo $(($(socket_inodes "$1" | wc -l) - 1))
}

# holds_only_its_end WORKER LISTEN: WORKER holds the listening socket and
# two sockets of its own: its end of the socketpair and its doorbell.
holds_only_its_end() {
    [ "$(own_sockets "$1" "$2" 2>/dev/null)" = 2 ]
}

# doorbells PID: the abstract names of the Unix sockets PID holds that are
# doorbells ("@chat-bell-..." in /proc/net/unix), sorted.
doorbells() {
    local inode
    for inode in $(socket_inodes "$1"); do
        awk -v inode="$inode" '$7 == inode && $8 ~ /^@chat-bell-/ { print $8 }' \
            /proc/net/unix
    done | sort
}

# holds_its_doorbell WORKER: WORKER holds one doorbell, its own, and no
# eventfd (chapter 3's doorbells, not a descriptor per worker shared by
# all).
holds_its_doorbell() {
    local fd
    [ "$(doorbells "$1" | wc -l)" -eq 1 ] || return 1
    for fd in /proc/"$1"/fd/*; do
        [ "$(readlink "$fd" 2>/dev/null)" != "anon_inode:[eventfd]" ] || return 1
    done
}

# pool_replaced VICTIM: the pool is whole again, without VICTIM.
pool_replaced() {
    [ "$(children_of "$SERVER_PID" | wc -l)" -eq "$WORKERS" ] &&
        ! children_of "$SERVER_PID" | grep -qx "$1"
}

@test "book pitfall: a worker inherits the parent's ends of the other workers' socketpairs -- each worker, and a replacement, holds only its own, and its own doorbell" {
    server_start -w "$WORKERS" -n 100
    local who
    for who in a b c d e f; do client_join "$who"; done
    local listen
    listen=$(listening_inode "$SERVER_PORT")
    [ -n "$listen" ] || fail "no listening socket on port $SERVER_PORT"
    local workers worker own total=0
    workers=$(children_of "$SERVER_PID")
    [ "$(wc -w <<<"$workers")" -eq "$WORKERS" ] || fail "workers: $workers"
    # Besides the listening socket, a worker holds its clients, its own
    # end of its socketpair and its doorbell: 6 clients + 2 per worker.
    for worker in $workers; do
        own=$(own_sockets "$worker" "$listen") || fail "worker $worker"
        total=$((total + own))
    done
    [ "$total" -eq $((6 + 2 * WORKERS)) ] || fail "$total sockets besides the listener"
    # Each worker's doorbell is its own (bound under a name the parent
    # drew for it), and the parent holds none: it rings from an unbound
    # socket.
    [ -z "$(doorbells "$SERVER_PID")" ] ||
        fail "the parent holds doorbells: $(doorbells "$SERVER_PID")"
    local bells
    bells=$(for worker in $workers; do doorbells "$worker"; done | sort -u)
    [ "$(wc -l <<<"$bells")" -eq "$WORKERS" ] || fail "doorbells: $bells"
    for worker in $workers; do
        holds_its_doorbell "$worker" ||
            fail "worker $worker's doorbells: $(doorbells "$worker")"
    done
    # A replacement is forked from a parent that holds every living
    # worker's end: it must close them all too.
    local victim
    victim=$(worker_pid 1)
    kill -KILL "$victim"
    wait_until "a replacement worker" pool_replaced "$victim"
    local fresh
    fresh=$(comm -13 <(tr ' ' '\n' <<<"$workers" | sort) \
        <(children_of "$SERVER_PID" | sort))
    [ -n "$fresh" ] || fail "no new worker"
    # Its own end only (no client has joined it yet), once it is set up:
    # between fork() and its setup it still holds what the parent held.
    wait_until "the replacement to hold only its own end" \
        holds_only_its_end "$fresh" "$listen" ||
        fail "replacement $fresh: $(ls -l /proc/"$fresh"/fd)"
    holds_its_doorbell "$fresh" ||
        fail "replacement $fresh's doorbells: $(doorbells "$fresh")"
    # Under a new name: the victim's may not be taken over by anyone.
    ! grep -qxF "$(doorbells "$fresh")" <<<"$bells" ||
        fail "the replacement rings under its predecessor's name"
}

# Two floods in two workers, and a 2 MB/s reader in one of them: while
# its queue is long, worker 0 stops copying ring 1, so worker 1's ring
# fills and worker 1's room is held. A held worker must still copy the
# other rings (it only stops reading its own senders), or worker 0's
# ring fills too, each waits for the other until LAG_GRACE_MS, and then
# one laps the other: the lapped worker exits, and every one of its
# clients is dropped. (Found by reading the code; before room_taking()
# the case passed in eight runs here, so it guards the scenario rather
# than replays the interleaving.)
@test "two floods from clients of different workers reach every reader whole; no worker waits for the other, none is lapped" {
    # shellcheck disable=SC2034 # read by the helpers' waits
    WAIT_SECONDS=120
    local count=5000 who
    server_start -w 2 -n 10
    # Round-robin: a and the 2 MB/s reader c in worker 0, b and d in
    # worker 1.
    client_join a socat
    client_join b socat
    peer_start c read 2000000
    client_join d socat
    run status_of 2
    assert_success
    [ "$(echo "$output" | awk '$3 == 2' | wc -l)" -eq 2 ] ||
        fail "the clients are not two to a worker: $output"
    seq -f "a%0998g" 1 "$count" >"$BATS_TEST_TMPDIR/a.flood"
    seq -f "b%0998g" 1 "$count" >"$BATS_TEST_TMPDIR/b.flood"
    send_file a "$BATS_TEST_TMPDIR/a.flood" 3>&- &
    bg_track "$!"
    send_file b "$BATS_TEST_TMPDIR/b.flood" 3>&- &
    bg_track "$!"
    local last_a last_b
    last_a="user1: a$(printf '%0998d' "$count")"
    last_b="user2: b$(printf '%0998d' "$count")"
    for who in c d; do
        wait_until "$who to hear a's whole flood" has_line "$(out_of "$who")" "$last_a"
        wait_until "$who to hear b's whole flood" has_line "$(out_of "$who")" "$last_b"
        run cmp <(sed -n 's/^user1: //p' "$(out_of "$who")") "$BATS_TEST_TMPDIR/a.flood"
        assert_success
        run cmp <(sed -n 's/^user2: //p' "$(out_of "$who")") "$BATS_TEST_TMPDIR/b.flood"
        assert_success
        run grep -c 'left$' "$(out_of "$who")"
        assert_output 0
    done
    run grep -c 'dropping\|behind' "$SERVER_ERR"
    assert_output 0
}
