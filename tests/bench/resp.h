/**
 * @file tests/bench/resp.h
 * @brief The little of Redis's protocol (RESP) the benchmark speaks:
 *        the pub/sub commands it sends, and a parser for what Redis
 *        sends a pub/sub client.
 *
 * Shared by the load generator (tests/bench/loadgen.c) and the flood
 * (tests/bench/flood.c), whose Redis variants are the same room: N
 * subscribers of one channel, each publisher on a connection of its own.
 * Only replies and pushes that are one item or a flat array of a few
 * items are read; anything else is "not RESP we can read", which to the
 * benchmark is a failed run, not something to skip.
 */
#ifndef BENCH_RESP_H
#define BENCH_RESP_H

#include <stdbool.h>
#include <stddef.h>

/** The one Redis channel every subscriber joins (the room). */
#define REDIS_CHANNEL "chat"
/** A subscriber's first command: join #REDIS_CHANNEL. */
#define REDIS_SUBSCRIBE "*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\n" REDIS_CHANNEL "\r\n"
/** A publisher's first command, whose `+PONG` is its welcome. */
#define REDIS_PING "*1\r\n$4\r\nPING\r\n"
/** Bytes a PUBLISH command adds around a payload of up to 999 bytes. */
#define REDIS_CMD_OVERHEAD 48
/** Elements kept of one RESP array (a pub/sub push has three). */
#define RESP_MAX_ITEMS 4
/** Longest header line or bulk string read; longer is not ours. */
#define RESP_CAP 2048

/** One RESP item: a simple string, an error, an integer or a bulk string. */
struct resp_item {
    char type; /**< '+', '-', ':' or '$' */
    const char *p; /**< its text (the digits of an integer) */
    size_t len; /**< bytes at #p */
};

/** One RESP frame: an item, or an array of up to #RESP_MAX_ITEMS items. */
struct resp_frame {
    bool array; /**< an array of #n items, else #item[0] alone */
    size_t n; /**< items */
    struct resp_item item[RESP_MAX_ITEMS]; /**< the items */
};

/**
 * @brief Writes the head of `PUBLISH REDIS_CHANNEL <payload>`.
 *
 * The caller appends the @p bytes of the payload and `\r\n`: the payload
 * is then written in place, with no copy.
 * @param dst   receives the head, at most #REDIS_CMD_OVERHEAD - 2 bytes.
 * @param bytes the payload's length, below 1000.
 * @return bytes written.
 */
size_t resp_publish_head(char *dst, size_t bytes);

/**
 * @brief Parses the decimal number that ends a RESP header line.
 * @param p   the digits (an optional '-' first).
 * @param len their count.
 * @param v   receives the value.
 * @return true if the text was a number of at most 18 digits.
 */
bool resp_number(const char *p, size_t len, long long *v);

/**
 * @brief Parses one RESP frame at the start of @p p.
 *
 * Only what Redis sends a pub/sub client: replies and pushes that are an
 * item, or a flat array of a few items.
 * @param p   bytes received.
 * @param len how many.
 * @param f   receives the frame; its text points into @p p.
 * @return bytes the frame takes, 0 if it is not complete yet, -1 if the
 *         bytes are not a frame we can read.
 */
long resp_parse(const char *p, size_t len, struct resp_frame *f);

/**
 * @brief Is item @p i of @p f the bulk or simple string @p text?
 * @param f    the frame.
 * @param i    the item.
 * @param text the expected text.
 * @return true if it is.
 */
bool resp_is(const struct resp_frame *f, size_t i, const char *text);

/**
 * @brief Is item @p i of @p f the integer @p v?
 * @param f the frame.
 * @param i the item.
 * @param v the expected value.
 * @return true if it is.
 */
bool resp_is_int(const struct resp_frame *f, size_t i, long long v);

#endif
