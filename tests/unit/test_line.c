/**
 * @file tests/unit/test_line.c
 * @brief Unit tests of the line framer (common/line.c).
 *
 * `test_line NAME` runs one case and exits 0 if it passes; `test_line`
 * alone runs them all. tests/unit/line.bats runs each case as one Bats
 * test, so a failure names the case.
 */
#include "line.h"
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/** Everything the framer delivered, as "<len>:<bytes>|" records. */
struct sink {
    char out[1 << 18]; /**< the records (one 64 KiB read fits) */
    size_t len; /**< bytes used in #out */
    size_t count; /**< messages received */
};

/**
 * @brief line_fn that records each message in a struct sink.
 * @param ctx  the sink.
 * @param line message bytes.
 * @param len  message length.
 */
static void
collect(void *ctx, const char *line, size_t len)
{
    struct sink *s = ctx;
    s->len +=
        (size_t)snprintf(s->out + s->len, sizeof s->out - s->len, "%zu:", len);
    memcpy(s->out + s->len, line, len);
    s->len += len;
    s->out[s->len++] = '|';
    s->count++;
}

/**
 * @brief Feeds @p n bytes in pieces of @p step bytes, then ends the stream.
 * @param s    where the messages go.
 * @param data the stream.
 * @param n    its length.
 * @param step bytes per line_feed() call; 0 for all at once.
 */
static void
run(struct sink *s, const char *data, size_t n, size_t step)
{
    struct line_framer f;

    line_init(&f);
    memset(s, 0, sizeof *s);
    if (step == 0)
        step = n ? n : 1;
    for (size_t i = 0; i < n; i += step)
        if (line_feed(&f, data + i, n - i < step ? n - i : step, collect, s))
            s->count = (size_t)-1; /* out of memory: no expected count */
    line_finish(&f, collect, s);
}

/**
 * @brief Checks the records against the expected text for every split.
 * @param name   case name for the failure message.
 * @param data   the stream.
 * @param n      its length.
 * @param expect the records expected (see struct sink).
 * @param elen   length of @p expect.
 * @return 0 if every split gave @p expect, 1 otherwise.
 */
static int
check(const char *name, const char *data, size_t n, const char *expect,
      size_t elen)
{
    /* The result may not depend on how TCP split the bytes. */
    static const size_t steps[] = {0, 1, 2, 3, 7, 1022, 1023, 1024, 1025};
    static struct sink s;

    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        run(&s, data, n, steps[i]);
        if (s.len != elen || memcmp(s.out, expect, elen) != 0) {
            fprintf(stderr,
                    "%s: reads of %zu bytes: got %zu bytes "
                    "(%zu messages), expected %zu bytes\n",
                    name, steps[i], s.len, s.count, elen);
            fwrite(s.out, 1, s.len < 200 ? s.len : 200, stderr);
            fputc('\n', stderr);
            return 1;
        }
    }
    return 0;
}

/** check() for NUL-free literal strings. */
#define CHECK(name, data, expect)                                              \
    check(name, data, sizeof(data) - 1, expect, sizeof(expect) - 1)

/**
 * @brief Builds "<len>:" + @p len copies of @p c + "|" into @p out.
 * @param out where to append.
 * @param c   the byte.
 * @param len how many.
 * @return bytes written.
 */
static size_t
rec(char *out, char c, size_t len)
{
    size_t n = (size_t)sprintf(out, "%zu:", len);
    memset(out + n, c, len);
    out[n + len] = '|';
    return n + len + 1;
}

/** @brief Two lines, each one message. @return 0 on success. */
static int
t_simple(void)
{
    return CHECK("simple", "hello\nworld\n", "5:hello|5:world|");
}

/** @brief A `\r` before `\n` is dropped, one elsewhere kept. @return 0 on
 * success. */
static int
t_crlf(void)
{
    return CHECK("crlf", "a\r\nb\rc\r\n\r\n", "1:a|3:b\rc|0:|");
}

/** @brief Empty lines are messages too. @return 0 on success. */
static int
t_empty(void)
{
    return CHECK("empty", "\n\nx\n", "0:|0:|1:x|");
}

/** @brief A last line without `\n` is delivered at the end. @return 0 on
 * success. */
static int
t_last_partial(void)
{
    return CHECK("last_partial", "one\ntwo", "3:one|3:two|") ||
           CHECK("lone_cr_at_end", "x\r", "2:x\r|") || CHECK("nothing", "", "");
}

/** @brief NUL and high bytes pass unchanged. @return 0 on success. */
static int
t_binary(void)
{
    static const char in[] = "a\0b\xff\xfe\n\0\n";
    static const char out[] = "5:a\0b\xff\xfe|1:\0|";
    return check("binary", in, sizeof in - 1, out, sizeof out - 1);
}

/** @brief 5000 bytes become 4 x 1023 + 908. @return 0 on success. */
static int
t_long(void)
{
    static char in[5001], out[6000];
    size_t o = 0;
    memset(in, 'x', 5000);
    in[5000] = '\n';
    for (int i = 0; i < 4; i++)
        o += rec(out + o, 'x', 1023);
    o += rec(out + o, 'x', 908);
    return check("long", in, sizeof in, out, o);
}

/** @brief Exactly 1023 bytes is one message, 1024 is two. @return 0 on success.
 */
static int
t_boundary(void)
{
    static char in[1100], out[1200];
    size_t o;

    memset(in, 'y', 1023);
    in[1023] = '\n';
    o = rec(out, 'y', 1023);
    if (check("exact_1023", in, 1024, out, o))
        return 1;

    memset(in, 'y', 1024);
    in[1024] = '\n';
    o = rec(out, 'y', 1023);
    o += rec(out + o, 'y', 1);
    if (check("1024", in, 1025, out, o))
        return 1;

    /* 2046 bytes: two full pieces, no empty third message. */
    static char in2[2047], out2[2100];
    memset(in2, 'z', 2046);
    in2[2046] = '\n';
    o = rec(out2, 'z', 1023);
    o += rec(out2 + o, 'z', 1023);
    return check("2046", in2, sizeof in2, out2, o);
}

/**
 * @brief Copies the characters of @p s, without its NUL, to @p dst.
 *
 * The framer's input and the expected records are byte buffers, not C
 * strings: nothing in them is NUL-terminated, on purpose.
 * @param dst where the bytes go.
 * @param s   the bytes, as a string literal.
 * @return how many bytes were copied.
 */
static size_t
put(char *dst, const char *s)
{
    size_t n = strlen(s);
    /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): see above */
    memcpy(dst, s, n);
    return n;
}

/** @brief A `\r` as byte 1024: end of line if `\n` follows, else content.
 * @return 0 on success. */
static int
t_cr_at_boundary(void)
{
    static char in[1100], out[1200];
    size_t o;

    memset(in, 'c', 1023);
    put(in + 1023, "\r\n");
    o = rec(out, 'c', 1023);
    if (check("cr_then_lf", in, 1025, out, o))
        return 1;

    put(in + 1023, "\rq\n");
    o = rec(out, 'c', 1023);
    o += put(out + o, "2:\rq|");
    if (check("cr_then_text", in, 1026, out, o))
        return 1;

    put(in + 1023, "\r");
    o = rec(out, 'c', 1023);
    o += put(out + o, "1:\r|");
    return check("cr_then_eof", in, 1024, out, o);
}

/** @brief 1 MiB in one line: 1025 pieces, every byte kept. @return 0 on
 * success. */
static int
t_huge(void)
{
    size_t n = 1 << 20;
    char *in = malloc(n + 1);
    struct line_framer f;
    static struct sink s;
    size_t total = 0, count = 0;

    if (in == NULL)
        return 1;
    for (size_t i = 0; i < n; i++)
        in[i] = (char)('a' + i % 26);
    in[n] = '\n';
    line_init(&f);
    for (size_t i = 0; i <= n; i += 65536) {
        s.len = 0;
        line_feed(&f, in + i, n + 1 - i < 65536 ? n + 1 - i : 65536, collect,
                  &s);
        /* Each record is "1023:<1023 bytes>|" except the last. */
        for (size_t p = 0; p < s.len;) {
            size_t len = strtoul(s.out + p, NULL, 10);
            p = (size_t)((char *)memchr(s.out + p, ':', 8) - s.out) + 1;
            if (memcmp(s.out + p, in + total, len) != 0) {
                free(in);
                return 1;
            }
            total += len;
            count++;
            p += len + 1;
        }
    }
    free(in);
    if (total != n || count != n / 1023 + 1) {
        fprintf(stderr, "huge: %zu bytes in %zu messages\n", total, count);
        return 1;
    }
    return 0;
}

/**
 * @brief The buffer exists only while a line is unfinished: whole lines
 *        pass without one, a line end or line_free() gives it back.
 *
 * What keeps an idle client small (ten thousand of them would otherwise
 * hold 10 MB of empty buffers). ASan or valgrind catch a leak here.
 * @return 0 on success.
 */
static int
t_held_only(void)
{
    struct line_framer f;
    static struct sink s;
    int bad = 0;

    line_init(&f);
    bad |= line_feed(&f, "one\ntwo\n", 8, collect, &s) != 0;
    bad |= f.buf != NULL; /* whole lines: nothing held */
    bad |= line_feed(&f, "thr", 3, collect, &s) != 0;
    bad |= f.buf == NULL || f.len != 3;
    bad |= line_feed(&f, "ee\nfo", 5, collect, &s) != 0;
    bad |= f.buf == NULL || f.len != 2; /* "fo" held in a fresh buffer */
    bad |= line_feed(&f, "ur\n", 3, collect, &s) != 0;
    bad |= f.buf != NULL; /* the line ended: given back */
    bad |= line_feed(&f, "unfinished", 10, collect, &s) != 0;
    line_free(&f); /* the connection went away mid-line */
    bad |= f.buf != NULL || f.len != 0;
    if (bad || s.len != strlen("3:one|3:two|5:three|4:four|") ||
        memcmp(s.out, "3:one|3:two|5:three|4:four|", s.len) != 0) {
        fprintf(stderr, "held_only: %.*s\n", (int)s.len, s.out);
        return 1;
    }
    return 0;
}

/** Every case, in the order `test_line` runs them. */
static const struct test_case cases[] = {
    {"simple", t_simple},     {"crlf", t_crlf},
    {"empty", t_empty},       {"last_partial", t_last_partial},
    {"binary", t_binary},     {"long", t_long},
    {"boundary", t_boundary}, {"cr_at_boundary", t_cr_at_boundary},
    {"huge", t_huge},         {"held_only", t_held_only},
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
    return unit_run("test_line", cases, sizeof cases / sizeof cases[0], argc,
                    argv);
}
