#!/usr/bin/env bats
# Unit tests of chapter 4's rings, step04_procpool/shm.c. Each case lives
# in tests/unit/test_ring.c; this file runs one case per Bats test.

setup() {
    load ../helpers/common
    TEST_RING=${TEST_RING:-$BUILD_DIR/tests/test_ring}
    [ -x "$TEST_RING" ] || fail "build $TEST_RING first (make all)"
}

@test "ring: a writer never fills the last record, so a reader of a full ring is never taken for lapped" { run "$TEST_RING" full; assert_success; }

@test "ring: a slot whose ring every reader has copied starts its next user on a new lap, and one with a record unread does not" { run "$TEST_RING" restart; assert_success; }
