#!/usr/bin/env bats
# Unit tests of the line framer, common/line.c. Each case lives in
# tests/unit/test_line.c; this file runs one case per Bats test.

setup() {
    load ../helpers/common
    TEST_LINE=${TEST_LINE:-$BUILD_DIR/tests/test_line}
    [ -x "$TEST_LINE" ] || fail "build $TEST_LINE first (make all)"
}

@test "framer: two lines are two messages" { run "$TEST_LINE" simple; assert_success; }
@test "framer: a \\r before \\n is dropped, elsewhere kept" { run "$TEST_LINE" crlf; assert_success; }
@test "framer: empty lines are messages" { run "$TEST_LINE" empty; assert_success; }
@test "framer: a last line without \\n is delivered at the end" { run "$TEST_LINE" last_partial; assert_success; }
@test "framer: NUL and high bytes pass unchanged" { run "$TEST_LINE" binary; assert_success; }
@test "framer: 5000 bytes become 4 x 1023 + 908" { run "$TEST_LINE" long; assert_success; }
@test "framer: 1023 bytes is one message, 1024 two, 2046 two" { run "$TEST_LINE" boundary; assert_success; }
@test "framer: a \\r as byte 1024 is decided by the next byte" { run "$TEST_LINE" cr_at_boundary; assert_success; }
@test "framer: a 1 MiB line keeps every byte in 1025 pieces" { run "$TEST_LINE" huge; assert_success; }
@test "framer: holds a buffer only while a line is unfinished" { run "$TEST_LINE" held_only; assert_success; }
