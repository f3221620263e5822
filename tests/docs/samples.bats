#!/usr/bin/env bats
# The samples the pages show cannot go stale: every transcript and -v trace
# is included from docs/samples/, and this suite reruns the sessions that
# made them (tests/docs/samples.sh) and compares. After a change to what a
# server or the client prints, `make samples` updates the files; review
# the diff, and the page prose that explains them, and commit. The diff
# hunks the pages quote, and the counts of lines and hunks they give for
# each diff, are checked against the real diff (check_quotes.py,
# check_counts.py): a change to a chapter's code that moves them fails
# here until the page follows.
#
# The samples show the plain build (build/), whatever BUILD_DIR says.

setup() {
    load ../helpers/common
    cd "$REPO_ROOT" || return 1
    local step
    for step in step01 step02 step03 step04; do
        [ -x "build/$step/server" ] || fail "no build/$step/server (run make all)"
    done
    [ -x build/client ] || fail "no build/client (run make all)"
}

# included_samples: every docs/samples file a page includes, one a line.
included_samples() {
    grep -ohE '^\\verbinclude +docs/samples/[^ ]+' docs/*.md README.md |
        sed -E 's/^\\verbinclude +//' | sort -u
}

@test "every sample on the pages is what a fresh run of the servers prints (make samples updates them)" {
    TMPDIR=$BATS_TEST_TMPDIR SAMPLES_WAIT=30 run bash tests/docs/samples.sh generate "$BATS_TEST_TMPDIR/fresh"
    assert_success
    run bash tests/docs/samples.sh compare "$BATS_TEST_TMPDIR/fresh"
    assert_success
}

@test "every file in docs/samples is included by a page, and every included one exists" {
    local f missing=() orphans=()
    while read -r f; do
        [ -f "$f" ] || missing+=("$f")
    done < <(included_samples)
    for f in docs/samples/*.txt; do
        included_samples | grep -Fxq -- "$f" || orphans+=("$f")
    done
    [ ${#missing[@]} -eq 0 ] || fail "included but missing: ${missing[*]}"
    [ ${#orphans[@]} -eq 0 ] || fail "in docs/samples but on no page: ${orphans[*]}"
}

@test "no chapter page pastes a transcript: its sample chat and trace sections include docs/samples" {
    local page bad=()
    for page in docs/step0*.md; do
        # A pasted transcript starts with the server's own command line.
        if grep -nE '^    \$ build/step0[0-9]/server ' "$page"; then
            bad+=("$page")
        fi
    done
    [ ${#bad[@]} -eq 0 ] || fail "pasted transcripts in: ${bad[*]}"
}

@test "the command lines that README.md and the main page show are what server -h prints" {
    local usages=() step line shown bad=()
    for step in build/step0*/server; do
        line=$("$step" -h | head -n 1)
        usages+=("${line#usage: }")
    done
    while read -r shown; do
        shown=${shown%%(chapter*}
        shown=$(sed -E 's/^ +//; s/ +$//' <<<"$shown")
        printf '%s\n' "${usages[@]}" | grep -Fxq -- "$shown" || bad+=("$shown")
    done < <(grep -hE '^    server \[' README.md docs/mainpage.md)
    [ ${#bad[@]} -eq 0 ] || fail "$(printf 'shown, but no server -h says: %s\n' "${bad[@]}")"
}

@test "the diff hunks and 'carried unchanged' lines the chapter pages quote are in the real make diff" {
    run python3 tests/docs/check_quotes.py
    assert_success
    assert_output ''
}

@test "the counts the chapter pages give for their diffs (lines, hunks, per file) are the real diff's" {
    run python3 tests/docs/check_counts.py
    assert_success
    assert_output ''
}
