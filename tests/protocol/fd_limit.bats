#!/usr/bin/env bats
# Chapters 2 and 3 raise the soft descriptor limit when -n needs more
# (chapter 4 always raises it to the hard limit; see tests/step04).

setup() {
    load ../helpers/common
}

@test "-n beyond the descriptor limit raises it to the hard limit (-v says so)" {
    local hard
    hard=$(ulimit -Hn)
    [ "$hard" = unlimited ] || ((hard >= 2100)) || skip "hard limit $hard is too low"
    SERVER_NOFILE=256 server_start -v -n 2000
    run grep -E '^raised the descriptor limit from 256 to [0-9]+ for 2000 users$' "$SERVER_ERR"
    assert_success
    run cat "/proc/$SERVER_PID/limits"
    assert_output --regexp 'Max open files +2016 '
}
