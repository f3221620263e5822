#!/usr/bin/env bats
# Chapter 2: what is particular to the epoll server's trace.

setup() {
    load ../helpers/common
}

@test "-v names epoll events and signals, one line per wake-up" {
    server_start -v
    client_join a
    client_join b
    say a "traced"
    expect b "user1: traced"
    kill -HUP "$SERVER_PID"
    wait_until "the SIGHUP in the trace" grep -q '^epoll: 1 ready; signal pipe fd [0-9]*: HUP$' "$SERVER_ERR"
    run grep -E '^epoll: [0-9]+ ready; listen fd [0-9]+ IN: user1 on fd [0-9]+' "$SERVER_ERR"
    assert_success
    run grep -E '^epoll: [0-9]+ ready; user1 fd [0-9]+ IN(\|OUT)?(\|RDHUP)?; user1 read 7' "$SERVER_ERR"
    assert_success
}
