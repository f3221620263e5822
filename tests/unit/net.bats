#!/usr/bin/env bats
# Unit tests of the socket plumbing, common/net.c. Each case lives in
# tests/unit/test_net.c; this file runs one case per Bats test.

setup() {
    load ../helpers/common
    TEST_NET=${TEST_NET:-$BUILD_DIR/tests/test_net}
    [ -x "$TEST_NET" ] || fail "build $TEST_NET first (make all)"
}

@test "net: an accepted socket inherits TCP_NODELAY from the listening socket (no Nagle stalls)" { run "$TEST_NET" listen_nodelay; assert_success; }
