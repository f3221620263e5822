/**
 * @file proto.c
 * @brief The chat protocol's text: every line the server itself says.
 */
#include "proto.h"

#include <stdio.h>
#include <string.h>

/**
 * @brief The length snprintf() reported, as a size.
 *
 * Every format here fits #PROTO_LINE_MAX (an id is at most 20 digits), so
 * the result is never cut; a failing snprintf() would yield an empty line.
 * @param n what snprintf() returned.
 * @return @p n, or 0 if it was negative.
 */
static size_t
length_of(int n)
{
    return n > 0 ? (size_t)n : 0;
}

size_t
proto_welcome(char *buf, unsigned long id, size_t online)
{
    return length_of(snprintf(buf, PROTO_LINE_MAX,
                              "* welcome, you are user%lu (%zu online)\n", id,
                              online));
}

size_t
proto_joined(char *buf, unsigned long id)
{
    return length_of(snprintf(buf, PROTO_LINE_MAX, "* user%lu joined\n", id));
}

size_t
proto_left(char *buf, unsigned long id)
{
    return length_of(snprintf(buf, PROTO_LINE_MAX, "* user%lu left\n", id));
}

size_t
proto_message(char *buf, unsigned long id, const char *msg, size_t len)
{
    size_t n = length_of(snprintf(buf, PROTO_LINE_MAX, "user%lu: ", id));

    memcpy(buf + n, msg, len);
    buf[n + len] = '\n';
    return n + len + 1;
}
