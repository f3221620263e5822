#!/usr/bin/env bats
# Chapter 1: what is particular to the poll server, its -v trace. The
# book's pitfalls that every chapter must keep fixed (the events |= ~POLLIN
# spin, EMFILE...) are guarded by the shared suites in tests/protocol/.

setup() {
    load ../helpers/common
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
