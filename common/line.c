/**
 * @file line.c
 * @brief The line framer: split on `\n`, drop a `\r` before it, cut long
 *        lines into #LINE_MAX_PIECE-byte messages.
 *
 * The one subtle case is a `\r` arriving as byte 1024 of a line: if a `\n`
 * follows, the line is exactly 1023 bytes and is one message; if anything
 * else follows, the `\r` is content and starts the next piece. So the
 * framer holds such a `\r` until the next byte decides.
 */
#include "line.h"

#include <stdlib.h>
#include <string.h>

void
line_init(struct line_framer *f)
{
    f->len = 0;
    f->buf = NULL;
}

void
line_free(struct line_framer *f)
{
    free(f->buf);
    line_init(f);
}

/**
 * @brief Adds bytes that contain no `\n` to the unfinished line.
 *
 * Whenever the line grows past a piece, the full piece is delivered first.
 * The buffer is taken here, when there is something to hold.
 * @param f   the framer.
 * @param p   bytes without `\n`.
 * @param k   number of bytes.
 * @param fn  message callback.
 * @param ctx passed to @p fn.
 * @return 0, or -1 (ENOMEM) if there was no buffer to hold them in.
 */
static int
line_append(struct line_framer *f, const char *p, size_t k, line_fn *fn,
            void *ctx)
{
    if (k > 0 && f->buf == NULL) {
        f->buf = malloc(LINE_MAX_PIECE + 1);
        if (f->buf == NULL)
            return -1; /* errno is ENOMEM */
    }
    while (k > 0) {
        if (f->len == LINE_MAX_PIECE + 1) {
            /* The held '\r' is followed by content: it is part of the
             * next piece, and the full piece before it can go. */
            fn(ctx, f->buf, LINE_MAX_PIECE);
            f->buf[0] = '\r';
            f->len = 1;
        }
        if (f->len == LINE_MAX_PIECE) {
            if (p[0] == '\r') {
                /* Undecided until the next byte: hold it. */
                f->buf[f->len++] = '\r';
                p++;
                k--;
                continue;
            }
            fn(ctx, f->buf, LINE_MAX_PIECE);
            f->len = 0;
        }
        size_t room = LINE_MAX_PIECE - f->len;
        size_t take = k < room ? k : room;
        memcpy(f->buf + f->len, p, take);
        f->len += take;
        p += take;
        k -= take;
    }
    return 0;
}

/**
 * @brief A `\n` arrived: delivers the unfinished line, minus a final `\r`.
 * @param f   the framer; empty on return.
 * @param fn  message callback.
 * @param ctx passed to @p fn.
 */
static void
line_end(struct line_framer *f, line_fn *fn, void *ctx)
{
    size_t len = f->len;

    if (len > 0 && f->buf[len - 1] == '\r')
        len--;
    fn(ctx, len > 0 ? f->buf : "", len);
    line_free(f); /* the next line may never come: hold nothing */
}

int
line_feed(struct line_framer *f, const char *data, size_t n, line_fn *fn,
          void *ctx)
{
    while (n > 0) {
        const char *nl = memchr(data, '\n', n);
        size_t seg = nl != NULL ? (size_t)(nl - data) : n;

        if (nl != NULL && f->len == 0 &&
            (seg <= LINE_MAX_PIECE ||
             (seg == LINE_MAX_PIECE + 1 && data[LINE_MAX_PIECE] == '\r'))) {
            /* The common case: a whole line inside this read. Hand it
             * over in place instead of copying it through the buffer. */
            size_t len = seg;
            if (len > 0 && data[len - 1] == '\r')
                len--;
            fn(ctx, data, len);
        } else {
            if (line_append(f, data, seg, fn, ctx) < 0)
                return -1;
            if (nl == NULL)
                return 0;
            line_end(f, fn, ctx);
        }
        data += seg + 1;
        n -= seg + 1;
    }
    return 0;
}

void
line_finish(struct line_framer *f, line_fn *fn, void *ctx)
{
    if (f->len == LINE_MAX_PIECE + 1) {
        fn(ctx, f->buf, LINE_MAX_PIECE);
        fn(ctx, "\r", 1);
    } else if (f->len > 0) {
        fn(ctx, f->buf, f->len);
    }
    line_free(f);
}
