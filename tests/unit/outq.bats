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
@test "outq: a flush writes all, frees the memory when nothing may be kept; a gone peer is EPIPE" { run "$TEST_OUTQ" flush; assert_success; }
@test "outq: an emptied queue keeps its buffer within the budget and reuses it" { run "$TEST_OUTQ" keep; assert_success; }
@test "outq: past the budget or above OUTQ_KEEP_MAX an emptied buffer is freed" { run "$TEST_OUTQ" budget; assert_success; }
@test "outq: outq_free frees a kept buffer and gives its bytes back to the budget" { run "$TEST_OUTQ" free_kept; assert_success; }
@test "outq: every freed buffer is counted for the heap's trim; a trim starts the count again" { run "$TEST_OUTQ" freed; assert_success; }
@test "outq: outq_release_idle frees the kept buffer of a queue idle for a period, and only that" { run "$TEST_OUTQ" idle; assert_success; }
