/**
 * @file line.h
 * @brief The line framer: turns a byte stream into the chat's messages.
 *
 * TCP delivers bytes, not lines: one read may hold half a line or many
 * lines. The framer keeps the unfinished line of one connection between
 * reads and hands every finished message to a callback:
 *
 * - a line ends at `\n`; one `\r` right before it is dropped (telnet);
 * - every other byte is kept as it is (NUL, invalid UTF-8, lone `\r`);
 * - a line longer than #LINE_MAX_PIECE bytes becomes several consecutive
 *   messages of at most #LINE_MAX_PIECE bytes: nothing lost, nothing padded;
 * - at end of stream, line_finish() delivers a last line without `\n`.
 *
 * Lines that arrive whole in one buffer are handed over without a copy.
 */
#ifndef COMMON_LINE_H
#define COMMON_LINE_H

#include <stddef.h>

/** Longest message relayed as one line (the book's BUFFER_SIZE 1024 - 1). */
#define LINE_MAX_PIECE 1023

/**
 * @brief Receives one message.
 * @param ctx  the caller's pointer passed to line_feed().
 * @param line the message bytes, without `\n` (not NUL-terminated).
 * @param len  length of @p line, 0 to #LINE_MAX_PIECE.
 */
typedef void line_fn(void *ctx, const char *line, size_t len);

/**
 * The unfinished line of one connection. Zero-initialised means empty.
 *
 * The buffer exists only while a line is unfinished: most reads end on a
 * `\n`, and an idle connection holds nothing, so ten thousand idle
 * clients cost no 10 MB of buffers they are not using.
 */
struct line_framer {
    size_t len; /**< bytes held in #buf */
    /** Held bytes, room for one more than a piece (a `\r` that may end a
     * line); NULL while #len is 0. */
    char *buf;
};

/**
 * @brief Makes an empty framer (a new connection).
 * @param f the framer; whatever it held is forgotten, not freed.
 */
void line_init(struct line_framer *f);

/**
 * @brief Feeds bytes just read; calls @p fn for every finished message.
 * @param f    the connection's framer.
 * @param data bytes read from the connection.
 * @param n    number of bytes in @p data.
 * @param fn   called once per message, in stream order.
 * @param ctx  passed to @p fn.
 * @return 0; or -1 with errno ENOMEM if an unfinished line could not be
 *         held: the messages before it were delivered, the rest of
 *         @p data was not, and the connection is best dropped.
 */
int line_feed(struct line_framer *f, const char *data, size_t n, line_fn *fn,
              void *ctx);

/**
 * @brief End of stream: delivers the last line if it had no `\n`.
 *
 * A lone `\r` at the very end is kept: it was not before a `\n`.
 * @param f   the connection's framer; empty on return.
 * @param fn  called for each remaining message.
 * @param ctx passed to @p fn.
 */
void line_finish(struct line_framer *f, line_fn *fn, void *ctx);

/**
 * @brief Forgets an unfinished line: the connection went away without
 *        finishing it (a reset, an error, a drop).
 * @param f the framer; empty on return, its buffer freed.
 */
void line_free(struct line_framer *f);

#endif
