/**
 * @file tests/unit/test_outq.c
 * @brief Unit tests of the output queue (common/outq.c).
 *
 * `test_outq NAME` runs one case and exits 0 if it passes; `test_outq`
 * alone runs them all. tests/unit/outq.bats runs each case as one Bats
 * test. tests/fuzz/fuzz_outq.c checks the queue against a model; these
 * cases pin down what it found.
 */
#include "outq.h"
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/**
 * @brief Reports a failed expectation.
 * @param name the case.
 * @param what what went wrong.
 * @return 1, for the case to return.
 */
static int
failed(const char *name, const char *what)
{
    fprintf(stderr, "%s: %s\n", name, what);
    return 1;
}

/**
 * @brief Pushing nothing onto an empty queue is a no-op (found by fuzzing:
 *        it used to do arithmetic on the NULL buffer).
 * @return 0 on success.
 */
static int
t_zero(void)
{
    struct outq q = {0};

    if (outq_push(&q, "", 0, 100) != 0)
        return failed("zero", "a push of 0 bytes was refused");
    if (q.buf != NULL || q.len != 0 || outq_pending(&q))
        return failed("zero", "a push of 0 bytes changed the empty queue");
    if (outq_push(&q, "ab", 2, 100) != 0 || outq_push(&q, "", 0, 100) != 0 ||
        q.len != 2 || memcmp(q.buf + q.head, "ab", 2) != 0)
        return failed("zero", "a push of 0 bytes changed a queue");
    outq_free(&q);
    return 0;
}

/**
 * @brief A push past the limit is refused with ENOBUFS, all or nothing.
 * @return 0 on success.
 */
static int
t_limit(void)
{
    struct outq q = {0};

    if (outq_push(&q, "abcd", 4, 6) != 0)
        return failed("limit", "a push under the limit was refused");
    errno = 0;
    if (outq_push(&q, "efg", 3, 6) != -1 || errno != ENOBUFS)
        return failed("limit", "a push past the limit was not ENOBUFS");
    if (q.len != 4 || memcmp(q.buf + q.head, "abcd", 4) != 0)
        return failed("limit", "a refused push changed the queue");
    if (outq_push(&q, "ef", 2, 6) != 0 || q.len != 6)
        return failed("limit", "a push up to the limit was refused");
    outq_free(&q);
    return 0;
}

/**
 * @brief A flush writes everything to a socket and frees the memory; a
 *        gone peer is -1 with EPIPE, not SIGPIPE.
 * @return 0 on success.
 */
static int
t_flush(void)
{
    struct outq q = {0};
    char buf[16];
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return failed("flush", "socketpair failed");
    if (outq_push(&q, "hello\n", 6, 100) != 0 || outq_flush(&q, sv[0]) != 6)
        return failed("flush", "the flush did not write 6 bytes");
    if (q.buf != NULL || outq_pending(&q))
        return failed("flush", "an emptied queue keeps its memory");
    if (read(sv[1], buf, sizeof buf) != 6 || memcmp(buf, "hello\n", 6) != 0)
        return failed("flush", "the peer did not read what was queued");
    close(sv[1]);
    outq_push(&q, "x\n", 2, 100);
    errno = 0;
    if (outq_flush(&q, sv[0]) != -1 || errno != EPIPE)
        return failed("flush", "a gone peer is not -1 with EPIPE");
    close(sv[0]);
    outq_free(&q);
    return 0;
}

/** Every case, in the order `test_outq` runs them. */
static const struct test_case cases[] = {
    {"zero", t_zero},
    {"limit", t_limit},
    {"flush", t_flush},
};

/**
 * @brief Runs the named case, or all of them (unit_run()).
 * @param argc 1 or 2.
 * @param argv optional case name.
 * @return 0 if every case run passed, 1 otherwise, 2 for an unknown name.
 */
int
main(int argc, char **argv)
{
    return unit_run("test_outq", cases, sizeof cases / sizeof cases[0], argc,
                    argv);
}
