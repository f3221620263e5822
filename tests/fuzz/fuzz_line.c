/**
 * @file tests/fuzz/fuzz_line.c
 * @brief libFuzzer target: the line framer (common/line.c).
 *
 * The input is a split plan and a byte stream:
 *
 *     [count][count split bytes][stream...]
 *
 * The stream is fed to one framer in pieces whose sizes cycle through the
 * split bytes (see split_size()), then once whole, once byte by byte and
 * once in steps of at most one piece or one line. Every run must give the same
 * messages, and they must be what the SPEC's rules give (reference()):
 *
 * - every message is at most #LINE_MAX_PIECE bytes and holds no `\n`;
 * - the messages, with the `\n` or `\r\n` the framer dropped put back,
 *   are the stream again, byte for byte (check_rebuild());
 * - one line_feed() of n bytes makes at most n + 2 messages (the room
 *   sizes its reads by it where a ring must take them: chapters 3 and 4),
 *   and one step of a piece or a line at most two.
 *
 * Any difference aborts, and libFuzzer saves the input.
 */
#include "line.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/** Most messages one input can make (a stream of `\n` only). */
#define MAX_MSGS 70000

/** The messages of one run, as offsets into one byte store. */
struct msgs {
    char *bytes; /**< every message's bytes, back to back */
    size_t len; /**< bytes used in #bytes */
    size_t cap; /**< size of #bytes */
    size_t off[MAX_MSGS]; /**< start of message i in #bytes */
    size_t mlen[MAX_MSGS]; /**< length of message i */
    size_t n; /**< messages */
    size_t in_call; /**< messages made by the current line_feed() */
};

/**
 * @brief Stops the run: prints why, and aborts so libFuzzer keeps the input.
 * @param what the broken rule.
 */
static _Noreturn void
fail(const char *what)
{
    fprintf(stderr, "fuzz_line: %s\n", what);
    abort();
}

/**
 * @brief Appends one message to a struct msgs.
 * @param m    the list.
 * @param line message bytes.
 * @param len  their number.
 */
static void
msgs_add(struct msgs *m, const char *line, size_t len)
{
    if (m->n == MAX_MSGS)
        fail("more messages than the input has bytes");
    if (m->len + len > m->cap) {
        m->cap = (m->len + len) * 2;
        m->bytes = realloc(m->bytes, m->cap);
        if (m->bytes == NULL)
            fail("out of memory");
    }
    memcpy(m->bytes + m->len, line, len);
    m->off[m->n] = m->len;
    m->mlen[m->n] = len;
    m->len += len;
    m->n++;
    m->in_call++;
}

/**
 * @brief line_fn: checks the per-message rules and records the message.
 * @param ctx  the struct msgs.
 * @param line message bytes.
 * @param len  their number.
 */
static void
collect(void *ctx, const char *line, size_t len)
{
    if (len > LINE_MAX_PIECE)
        fail("a message is longer than LINE_MAX_PIECE");
    if (memchr(line, '\n', len) != NULL)
        fail("a message holds a newline");
    msgs_add(ctx, line, len);
}

/**
 * @brief Empties a struct msgs, keeping its storage.
 * @param m the list.
 */
static void
msgs_clear(struct msgs *m)
{
    m->len = m->n = m->in_call = 0;
}

/**
 * @brief The SPEC's rules, written without the framer's tricks.
 *
 * Each line (up to `\n`) loses one `\r` at its end and is cut into pieces
 * of #LINE_MAX_PIECE bytes; an empty line is one empty message. A last
 * line without `\n` is cut the same way and keeps a final `\r`.
 * @param m    receives the messages.
 * @param data the stream.
 * @param n    its length.
 */
static void
reference(struct msgs *m, const char *data, size_t n)
{
    size_t i = 0;

    msgs_clear(m);
    while (i < n) {
        const char *nl = memchr(data + i, '\n', n - i);
        size_t end = nl != NULL ? (size_t)(nl - data) : n;
        size_t len = end - i;
        if (nl != NULL && len > 0 && data[end - 1] == '\r')
            len--;
        size_t at = 0;
        do {
            size_t piece =
                len - at < LINE_MAX_PIECE ? len - at : LINE_MAX_PIECE;
            msgs_add(m, data + i + at, piece);
            at += piece;
        } while (at < len);
        i = end + 1;
    }
}

/**
 * @brief Size of piece number @p k of the split plan.
 *
 * Small values are common split sizes; the top values reach the 1023 and
 * 1024 boundaries and whole reads, where the framer's cases change.
 * @param plan  the split bytes.
 * @param count their number (0 means: all at once).
 * @param k     which piece.
 * @return bytes in that piece, at least 1.
 */
static size_t
split_size(const uint8_t *plan, size_t count, size_t k)
{
    if (count == 0)
        return SIZE_MAX;
    uint8_t b = plan[k % count];
    if (b < 240)
        return (size_t)b + 1;
    return LINE_MAX_PIECE - 8 + (size_t)(b - 240) * 2; /* 1015..1045 */
}

/**
 * @brief Feeds the stream with the split plan; checks the per-call bound.
 * @param m     receives the messages.
 * @param data  the stream.
 * @param n     its length.
 * @param plan  the split bytes.
 * @param count their number.
 */
static void
run_split(struct msgs *m, const char *data, size_t n, const uint8_t *plan,
          size_t count)
{
    struct line_framer f;
    size_t at = 0;

    line_init(&f);
    msgs_clear(m);
    for (size_t k = 0; at < n; k++) {
        size_t step = split_size(plan, count, k);
        if (step > n - at)
            step = n - at;
        m->in_call = 0;
        if (line_feed(&f, data + at, step, collect, m) != 0)
            fail("line_feed() failed (out of memory?)");
        if (m->in_call > step + 2)
            fail("one line_feed() of n bytes made more than n + 2 messages");
        at += step;
    }
    m->in_call = 0;
    line_finish(&f, collect, m);
    if (m->in_call > 2)
        fail("line_finish() made more than two messages");
    if (f.len != 0 || f.buf != NULL)
        fail("the framer is not empty after line_finish()");
}

/**
 * @brief Feeds the stream in steps of at most one piece, or up to and
 *        including a `\n`.
 *
 * A writer that feeds its framer so (chapter 3's child did, before it
 * carried the room) may leave room in its ring for two records per step,
 * so a step must never make more.
 * @param m    receives the messages.
 * @param data the stream.
 * @param n    its length.
 */
static void
run_child_steps(struct msgs *m, const char *data, size_t n)
{
    struct line_framer f;
    size_t at = 0;

    line_init(&f);
    msgs_clear(m);
    while (at < n) {
        size_t step = n - at < LINE_MAX_PIECE ? n - at : LINE_MAX_PIECE;
        const char *nl = memchr(data + at, '\n', step);
        if (nl != NULL)
            step = (size_t)(nl - (data + at)) + 1;
        m->in_call = 0;
        if (line_feed(&f, data + at, step, collect, m) != 0)
            fail("line_feed() failed (out of memory?)");
        if (m->in_call > 2)
            fail("a step of a piece or a line made more than two messages");
        at += step;
    }
    line_finish(&f, collect, m);
}

/**
 * @brief Compares two runs message by message.
 * @param a    one run.
 * @param b    the other.
 * @param what which runs, for the failure message.
 */
static void
same(const struct msgs *a, const struct msgs *b, const char *what)
{
    if (a->n != b->n || a->len != b->len)
        fail(what);
    for (size_t i = 0; i < a->n; i++)
        if (a->mlen[i] != b->mlen[i] ||
            memcmp(a->bytes + a->off[i], b->bytes + b->off[i], a->mlen[i]) != 0)
            fail(what);
}

/**
 * @brief Puts the dropped line ends back and compares with the stream.
 *
 * After a message the stream goes on with `\n`, with `\r\n` (a dropped
 * `\r`), with nothing (a full piece of a longer line), or ends.
 * @param m    the messages.
 * @param data the stream.
 * @param n    its length.
 */
static void
check_rebuild(const struct msgs *m, const char *data, size_t n)
{
    size_t at = 0;

    for (size_t i = 0; i < m->n; i++) {
        size_t len = m->mlen[i];
        if (len > n - at || memcmp(data + at, m->bytes + m->off[i], len) != 0)
            fail("the messages are not the stream");
        at += len;
        if (at < n && data[at] == '\n')
            at++;
        else if (n - at >= 2 && data[at] == '\r' && data[at + 1] == '\n')
            at += 2;
        else if (at < n && len != LINE_MAX_PIECE)
            fail("a short message is not followed by a line end");
    }
    if (at != n)
        fail("bytes of the stream are missing from the messages");
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size);

/**
 * @brief libFuzzer's entry point: one input, every check.
 * @param in the input (split plan, then stream).
 * @param size its length.
 * @return 0 (a broken rule aborts instead).
 */
int
LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
    static struct msgs got, want, other;

    if (size == 0)
        return 0;
    size_t count = in[0] % 32;
    if (count > size - 1)
        count = size - 1;
    const uint8_t *plan = in + 1;
    const char *data = (const char *)in + 1 + count;
    size_t n = size - 1 - count;

    run_split(&got, data, n, plan, count);
    check_rebuild(&got, data, n);
    reference(&want, data, n);
    same(&got, &want, "split feeding differs from the SPEC's rules");
    run_split(&other, data, n, plan, 0);
    same(&other, &want, "feeding all at once differs from the SPEC's rules");
    static const uint8_t one[] = {0};
    run_split(&other, data, n, one, 1);
    same(&other, &want, "byte-by-byte feeding differs from the SPEC's rules");
    run_child_steps(&other, data, n);
    same(&other, &want, "the piece-or-line steps differ from the SPEC's rules");
    return 0;
}
