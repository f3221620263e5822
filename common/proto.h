/**
 * @file proto.h
 * @brief The chat protocol's text: every line the server itself says.
 *
 * The SPEC fixes these lines to the byte, and every chapter says them, so
 * they are written once, here. Each formatter fills a buffer of
 * #PROTO_LINE_MAX bytes and returns the line's length, `\n` included (no
 * NUL is counted: the lines go to sockets, not to printf).
 */
#ifndef COMMON_PROTO_H
#define COMMON_PROTO_H

#include "line.h"

#include <stddef.h>

/** Longest line the server sends: "user<id>: " + a message + "\n". */
#define PROTO_LINE_MAX (LINE_MAX_PIECE + 32)

/** Sent to a client that cannot join, which is then closed. */
#define PROTO_ROOM_FULL "too many users\n"

/** Sent to every client when the server shuts down gracefully. */
#define PROTO_SHUTDOWN "* server shutting down\n"

/**
 * @brief "* welcome, you are user<id> (<online> online)\n".
 * @param buf    receives the line; #PROTO_LINE_MAX bytes.
 * @param id     the newcomer's id.
 * @param online users in the room, the newcomer counted.
 * @return the line's length.
 */
size_t proto_welcome(char *buf, unsigned long id, size_t online);

/**
 * @brief "* user<id> joined\n", for everyone but the newcomer.
 * @param buf receives the line; #PROTO_LINE_MAX bytes.
 * @param id  the newcomer's id.
 * @return the line's length.
 */
size_t proto_joined(char *buf, unsigned long id);

/**
 * @brief "* user<id> left\n", for everyone still there.
 * @param buf receives the line; #PROTO_LINE_MAX bytes.
 * @param id  the id of the user who left.
 * @return the line's length.
 */
size_t proto_left(char *buf, unsigned long id);

/**
 * @brief "user<id>: <message>\n": one message as the others receive it.
 *
 * The message is copied byte for byte: NUL bytes, invalid UTF-8 and
 * control characters pass unchanged (the server is 8-bit clean).
 * @param buf  receives the line; #PROTO_LINE_MAX bytes.
 * @param id   the sender's id.
 * @param msg  the message, without `\n`, not NUL-terminated.
 * @param len  its length, at most #LINE_MAX_PIECE.
 * @return the line's length.
 */
size_t proto_message(char *buf, unsigned long id, const char *msg, size_t len);

#endif
