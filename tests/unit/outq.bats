#!/usr/bin/env bats
# Unit tests of the output queue, common/outq.c. Each case lives in
# tests/unit/test_outq.c; this file runs one case per Bats test.

setup() {
    load ../helpers/common
    TEST_OUTQ=${TEST_OUTQ:-$BUILD_DIR/tests/test_outq}
    [ -x "$TEST_OUTQ" ] || fail "build $TEST_OUTQ first (make all)"
}

@test "outq: a push of 0 bytes is a no-op, even on an empty queue (found by fuzzing)" { run "$TEST_OUTQ" zero; assert_success; }
@test "outq: a push past the limit is refused with ENOBUFS, all or nothing" { run "$TEST_OUTQ" limit; assert_success; }
@test "outq: a flush writes all and frees the memory; a gone peer is EPIPE" { run "$TEST_OUTQ" flush; assert_success; }
