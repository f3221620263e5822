#!/usr/bin/env bats
# Chapter 3: one child process per client (book 13.6) -- the rings that
# replace the book's one shared slot per client, slot reuse, dead children.

setup() {
    load ../helpers/common
}

# child_pid USER: the pid of the child serving USER (e.g. user2), from the
# parent's -v trace ("user2 in child 1234").
child_pid() {
    sed -nE "s/.*: $1 in child ([0-9]+).*/\\1/p" "$SERVER_ERR" | head -n 1
}

# How long a reader's process is stopped: long enough for a fast sender to
# fill the ring many times over, shorter than the writer's patience
# (LAG_GRACE_MS, 1 s), so the reader is waited for, not dropped.
STOP_WINDOW=0.3

@test "book pitfall: one shared slot per client -- a fast sender loses and garbles nothing while a reader is stopped" {
    server_start -v
    client_join a
    client_join b socat
    client_join c nc
    local kid n=3000
    kid=$(child_pid user2)
    [ -n "$kid" ] || fail "no child for user2 in the trace"
    # Lines of many lengths, some longer than one 1023-byte message (but
    # never exactly 1023 bytes, so the pieces can be joined again below).
    awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) {
        len = (i * 37) % 1500; if (len == 1023) len = 1000;
        s = sprintf("%d:", i); while (length(s) < len) s = s "x";
        print s } }' >"$BATS_TEST_TMPDIR/lines"
    kill -STOP "$kid"
    send_file a "$BATS_TEST_TMPDIR/lines" 3>&- &
    local writer=$!
    sleep "$STOP_WINDOW"
    kill -CONT "$kid"
    wait "$writer"
    expect b "user1: $(tail -n 1 "$BATS_TEST_TMPDIR/lines" | cut -c1-1023)"
    # The sender really outran the stopped reader: its ring filled up.
    run grep -c '^\[user1 pid [0-9]*\] .*ring full, waiting for readers' "$SERVER_ERR"
    ((output >= 1))
    expect c "user1: $(tail -n 1 "$BATS_TEST_TMPDIR/lines" | cut -c1-1023)"
    # Rebuild a's lines from the 1023-byte pieces each reader received.
    local who
    for who in b c; do
        run diff <(awk '/^user1: /{ sub(/^user1: /, ""); printf "%s%s", sep, $0;
                   sep = (length($0) == 1023 ? "" : "\n") } END { print "" }' \
                   "$(out_of "$who")") "$BATS_TEST_TMPDIR/lines"
        assert_success
    done
}

@test "book pitfall: users[del] = users[--count] -- slots are reused only after their child is gone, and every message names its true sender" {
    server_start -n 3
    client_join a
    local round
    for round in 1 2 3 4 5; do
        client_join "x$round" socat
        client_join "y$round" nc
        say "x$round" "x says $round"
        say "y$round" "y says $round"
        say a "a says $round"
        expect "x$round" "user1: a says $round"
        expect "y$round" "user$(( ${CLIENT_ID[x$round]} )): x says $round"
        client_close "x$round"
        client_close "y$round"
        expect a "* user${CLIENT_ID[x$round]} left"
        expect a "* user${CLIENT_ID[y$round]} left"
    done
    # a heard every x and y under its own id, in order: joined, said, left.
    for round in 1 2 3 4 5; do
        local x=${CLIENT_ID[x$round]} y=${CLIENT_ID[y$round]}
        run grep -E "^(\\* )?user($x|$y)( |:)" "$(out_of a)"
        assert_output --partial "* user$x joined"
        assert_output --partial "user$x: x says $round"
        assert_output --partial "user$y: y says $round"
        run grep -c -E "^user[0-9]+: x says $round$" "$(out_of a)"
        assert_output 1
        run grep -E ": x says $round$" "$(out_of a)"
        assert_output "user$x: x says $round"
        run grep -E ": y says $round$" "$(out_of a)"
        assert_output "user$y: y says $round"
    done
    # Order within one user: joined, message, left.
    run grep -E "^(\\* )?user${CLIENT_ID[x3]}( |:)" "$(out_of a)"
    assert_output "* user${CLIENT_ID[x3]} joined
user${CLIENT_ID[x3]}: x says 3
* user${CLIENT_ID[x3]} left"
}

@test "a child killed with SIGKILL: its client is closed, the room hears it left, the rest go on" {
    server_start -v
    client_join a
    client_join b
    client_join c socat
    local kid
    kid=$(child_pid user2)
    kill -KILL "$kid"
    expect a "* user2 left"
    expect c "* user2 left"
    wait_until "b's client to see the close" client_gone b
    say a "after the kill"
    expect c "user1: after the kill"
    client_join d
    expect d "* welcome, you are user4 (3 online)"
    say d "new here"
    expect a "user4: new here"
}

@test "book pitfall: sub_process[pid] -- children are found whatever their pid" {
    # The book indexes a table of PROCESS_LIMIT (65536) entries by pid; on
    # Linux pids go up to /proc/sys/kernel/pid_max (4194304 on 64-bit).
    # Reaping must find the slot by scanning, whatever the pid is.
    server_start -v
    client_join a
    client_join b
    local kid
    kid=$(child_pid user2)
    client_close b
    expect a "* user2 left"
    wait_for_exit "$kid"
    run grep -E "user2's child $kid exited 0" "$SERVER_ERR"
    assert_success
}

@test "SIGHUP counts the children" {
    server_start
    client_join a
    client_join b
    kill -HUP "$SERVER_PID"
    wait_until "a status line" grep -q 'status: ' "$SERVER_ERR"
    run grep -c '^\[parent\] status: 2 users online, 0 messages relayed, up [0-9]* s, 2 children, reading paused 0 times, 0 slow readers dropped$' "$SERVER_ERR"
    assert_output 1
}

@test "-v traces the parent and every child, each line naming its process" {
    server_start -v
    client_join a
    client_join b
    say a "traced"
    expect b "user1: traced"
    run grep -E '^\[parent\] epoll: [0-9]+ ready; listen fd [0-9]+ IN: user1 in child [0-9]+$' "$SERVER_ERR"
    assert_success
    run grep -E '^\[user1 pid [0-9]+\] epoll: [0-9]+ ready; user1 fd [0-9]+ [A-Z|]+; user1 read 7(;|$)' "$SERVER_ERR"
    assert_success
    run grep -E '^\[user2 pid [0-9]+\] epoll: [0-9]+ ready; doorbell: poke' "$SERVER_ERR"
    assert_success
}

# child_count_is N: the server has exactly N child processes.
child_count_is() {
    [ "$(children_of "$SERVER_PID" | wc -l)" -eq "$1" ]
}

@test "book pitfall: children inherit the other children's socketpair ends -- each child holds its client and its own end, nothing of the parent's" {
    server_start -n 5
    local who
    for who in a b c d; do client_join "$who"; done
    local kids
    wait_until "four children" child_count_is 4
    kids=$(children_of "$SERVER_PID")
    # The parent holds its end of every child's socketpair. Were one of
    # them inherited, the child would share that socket with the parent.
    local kid
    for kid in $kids; do
        run shared_sockets "$SERVER_PID" "$kid"
        assert_output ""
        # Its client's connection, its own end of the socketpair, and its
        # doorbell (the datagram socket other children poke it on).
        run socket_inodes "$kid"
        [ "${#lines[@]}" -eq 3 ] ||
            fail "child $kid holds ${#lines[@]} sockets: $(ls -l /proc/"$kid"/fd)"
    done
}
