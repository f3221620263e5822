#!/usr/bin/env bats
# Chapter 1: the pitfalls of the book's poll server (listing 9-7) that the
# protocol suite does not already cover. Each test would fail if the
# pitfall were back.

setup() {
    load ../helpers/common
}

# How long CPU use is measured. Not a wait for a condition: a spinning
# server burns a whole second of CPU in it, an idle one none.
IDLE_WINDOW=1
# Clock ticks (normally 1/100 s) an idle server may use in IDLE_WINDOW.
IDLE_TICKS=5

# cpu_over_window: prints the CPU ticks the server used during IDLE_WINDOW.
cpu_over_window() {
    local before after
    before=$(server_cpu_ticks)
    sleep "$IDLE_WINDOW"
    after=$(server_cpu_ticks)
    echo $((after - before))
}

@test "idle clients cost no CPU (the book's events |= ~POLLIN spin)" {
    server_start
    client_join a
    client_join b nc
    client_join c socat
    say a "one message, so every queue has been used once"
    expect b "user1: one message, so every queue has been used once"
    expect c "user1: one message, so every queue has been used once"
    run cpu_over_window
    assert_success
    ((output <= IDLE_TICKS)) || fail "idle server used $output ticks in ${IDLE_WINDOW}s"
}

@test "out of file descriptors: the server refuses, stays up and does not spin" {
    SERVER_NOFILE=12 server_start -n 100
    local i refused=
    for i in $(seq 1 12); do
        client_start "c$i"
        wait_until "c$i's first line" grep -q . "$(out_of "c$i")"
        if has_line "$(out_of "c$i")" "too many users"; then
            refused=$i
            break
        fi
    done
    [ -n "$refused" ] || fail "12 descriptors never ran out"
    # It was the descriptor limit, not the room, that refused (-n 100).
    run grep -c 'Too many open files' "$SERVER_ERR"
    ((output >= 1))
    wait_until "the refused client to be closed" client_gone "c$refused"
    run server_alive
    assert_success
    run cpu_over_window
    ((output <= IDLE_TICKS)) || fail "server used $output ticks in ${IDLE_WINDOW}s at EMFILE"
    # A leave frees a descriptor, and the next client is served again.
    client_close c1
    expect c2 "* user1 left"
    client_join again
    say again "served"
    expect c2 "user$((refused)): served"
}

@test "the room holds 5 users by default (the book's USER_LIMIT)" {
    server_start
    local i
    for i in 1 2 3 4 5; do client_join "c$i"; done
    client_start sixth socat
    wait_until "the sixth client to be refused" client_gone sixth
    run cat "$(out_of sixth)"
    assert_output "too many users"
}

@test "-v traces one line per wake-up, naming descriptors and events" {
    server_start -v
    client_join a
    client_join b
    say a "traced"
    expect b "user1: traced"
    run grep -E '^poll: 1 ready; listen fd [0-9]+ IN: user1 on fd [0-9]+$' "$SERVER_ERR"
    assert_success
    run grep -c '^poll: ' "$SERVER_ERR"
    ((output >= 4))
    run grep -E '^poll: [0-9]+ ready; user1 fd [0-9]+ .*IN.* read 7' "$SERVER_ERR"
    assert_success
}
