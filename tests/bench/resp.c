/**
 * @file tests/bench/resp.c
 * @brief The benchmark's RESP: the PUBLISH head and a parser for what
 *        Redis sends a pub/sub client (see resp.h).
 */
#include "resp.h"

#include <stdio.h>
#include <string.h>

size_t
resp_publish_head(char *dst, size_t bytes)
{
    int n = snprintf(dst, REDIS_CMD_OVERHEAD - 2,
                     "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%zu\r\n",
                     strlen(REDIS_CHANNEL), REDIS_CHANNEL, bytes);

    return n > 0 ? (size_t)n : 0;
}

bool
resp_number(const char *p, size_t len, long long *v)
{
    bool neg = len > 0 && p[0] == '-';
    long long x = 0;
    size_t i = neg ? 1 : 0;

    if (len == i || len - i > 18)
        return false;
    for (; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        x = x * 10 + (p[i] - '0');
    }
    *v = neg ? -x : x;
    return true;
}

/**
 * @brief Finds the end of the RESP header line at the start of @p p.
 * @param p   bytes received.
 * @param len how many.
 * @return bytes of the line with its `\r\n`, 0 if it is not complete
 *         yet, -1 if it is not a header line (empty, or `\r` alone).
 */
static long
resp_line(const char *p, size_t len)
{
    const char *cr = len > 0 ? memchr(p, '\r', len) : NULL;

    if (cr == NULL || (size_t)(cr - p) + 2 > len)
        return len > RESP_CAP ? -1 : 0;
    if (cr[1] != '\n' || cr == p)
        return -1;
    return (long)(cr - p) + 2;
}

/**
 * @brief Parses one RESP item (not an array) at the start of @p p.
 * @param p   bytes received.
 * @param len how many.
 * @param it  receives the item; its text points into @p p.
 * @return bytes the item takes, 0 if it is not complete yet, -1 if the
 *         bytes are not RESP.
 */
static long
resp_item_parse(const char *p, size_t len, struct resp_item *it)
{
    long line = resp_line(p, len);

    if (line <= 0)
        return line;
    size_t head = (size_t)line;
    it->type = p[0];
    it->p = p + 1;
    it->len = head - 3;
    switch (p[0]) {
    case '+':
    case '-':
    case ':':
        return (long)head;
    case '$':
        break;
    default:
        return -1;
    }
    long long n;
    if (!resp_number(p + 1, it->len, &n) || n < 0 || n > RESP_CAP)
        return -1; /* a null bulk string is no reply we expect */
    if (len < head + (size_t)n + 2)
        return 0;
    if (p[head + (size_t)n] != '\r' || p[head + (size_t)n + 1] != '\n')
        return -1;
    it->p = p + head;
    it->len = (size_t)n;
    return (long)(head + (size_t)n + 2);
}

long
resp_parse(const char *p, size_t len, struct resp_frame *f)
{
    if (len == 0)
        return 0;
    if (p[0] != '*') {
        f->array = false;
        f->n = 1;
        return resp_item_parse(p, len, &f->item[0]);
    }
    long off = resp_line(p, len);
    long long n;
    if (off <= 0)
        return off;
    if (!resp_number(p + 1, (size_t)off - 3, &n) || n < 1 || n > RESP_MAX_ITEMS)
        return -1;
    f->array = true;
    f->n = (size_t)n;
    for (size_t i = 0; i < f->n; i++) {
        long k = resp_item_parse(p + off, len - (size_t)off, &f->item[i]);
        if (k <= 0)
            return k;
        off += k;
    }
    return off;
}

bool
resp_is(const struct resp_frame *f, size_t i, const char *text)
{
    size_t n = strlen(text);

    return i < f->n && (f->item[i].type == '$' || f->item[i].type == '+') &&
           f->item[i].len == n && memcmp(f->item[i].p, text, n) == 0;
}

bool
resp_is_int(const struct resp_frame *f, size_t i, long long v)
{
    long long x;

    return i < f->n && f->item[i].type == ':' &&
           resp_number(f->item[i].p, f->item[i].len, &x) && x == v;
}
