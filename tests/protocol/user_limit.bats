#!/usr/bin/env bats
# The book's USER_LIMIT 5 as the default room size. Linked into the suites
# of chapters 1 to 3; the pool of chapter 4 defaults to what the machine
# allows instead.

setup() {
    load ../helpers/common
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
