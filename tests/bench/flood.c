/**
 * @file tests/bench/flood.c
 * @brief The benchmark's flood rows: one sender at full speed, readers
 *        that read as fast as they can, and, if asked, a steady reader
 *        and a human-sized line in the middle; in the chat room or in
 *        Redis pub/sub.
 *
 * Clients in one process (issue 13's cases, as figures):
 *
 * - the sender sends L lines of B bytes (a zero-padded sequence number
 *   and `\n`) as fast as the server takes them;
 * - N readers (`-n`, default 10) read as fast as they can;
 * - with `-r R`, one more reader reads no faster than R bytes a second;
 * - with `-H`, once half the flood is sent, another client says one short
 *   line, timed until the first reader has it (chat only).
 *
 * Every reader checks every line of the flood exactly once, in order,
 * byte-exact (and the short line exactly once). A reader the server drops
 * sees its connection end before the last line; in the chat room the
 * others also hear `* user<id> left`. The SPEC promises that a reader who
 * keeps up is never dropped, so in the chat room a drop fails the run.
 *
 * With `-p redis` the readers SUBSCRIBE to one channel and the sender
 * PUBLISHes each line (without its `\n`) through a connection of its own,
 * reading Redis's replies. Redis promises no flow control: past its
 * client output buffer limit for pub/sub it closes the subscriber. Here a
 * dropped subscriber is a figure (`dropped=`), not a failure; the lines a
 * subscriber did get must still be exact.
 *
 * The result is one line of `key=value` pairs on stdout:
 *
 * - `sender_s`, `sender_mb_per_s`, `sender_lines_per_s`: the sender's
 *   achieved rate, from its first line until the server had taken its
 *   last (Redis: the last PUBLISH reply; the chat room answers the sender
 *   nothing, so: the first reader to have the last line). The time send()
 *   took the last byte would flatter the sender by the megabytes the
 *   kernel's socket buffers hold.
 * - `seconds`, `mb_per_s`: until the last fast reader had everything;
 *   `steady_s`: the steady reader's time; `human_ms`: the short line's
 *   latency;
 * - `complete`, `dropped`: readers (fast and steady) that had every line,
 *   and that the server dropped; `first_drop_s`: when the first was.
 *
 * Exit 0 if the run was exact and finished (and, in the chat room, no
 * reader was dropped), 1 otherwise, 2 for a usage error.
 *
 * Usage: `flood [-p chat|redis] [-n readers] [-r rate] [-H] [-L lines]
 * [-b bytes] [-d deadline] HOST PORT`
 */
#include "net.h"
#include "resp.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/** Longest line or frame a connection keeps between two reads. */
#define LINE_CAP 2048
/** Bytes asked of one recv() or given to one send(). */
#define CHUNK 65536
/** The short line's text after `user<id>: `. */
#define HUMAN "hello from a human during the flood"
/** Most fast readers (-n). */
#define MAX_READERS 64

/** One connection that reads: a reader, or the sender or the human,
 *  who hear the room (or Redis's replies) too. */
struct reader {
    const char *name; /**< for messages: "a fast reader", "the sender"... */
    unsigned long id; /**< chat: N of user<N> */
    double rate; /**< bytes a second, 0: as fast as it can */
    unsigned long got; /**< flood lines checked so far */
    double human_at; /**< when the short line arrived (now_s()) */
    double done_at; /**< when it had everything (now_s()), 0 until then */
    size_t taken; /**< bytes read so far, for #rate */
    size_t len; /**< bytes of an unfinished line or frame in #line */
    int fd; /**< its socket, -1 once closed */
    bool human; /**< the short line arrived */
    bool dropped; /**< closed by the server, or announced as left */
    char line[LINE_CAP]; /**< the unfinished line or frame */
};

static unsigned long lines = 20480, bytes = 1024; /**< -L and -b */
static bool redis; /**< -p redis */
static bool say_human; /**< -H */
static struct reader readers[MAX_READERS + 1]; /**< fast, then steady */
static size_t nreaders; /**< fast readers, plus the steady one */
static struct reader sender, human; /**< what they hear */
static unsigned long replies; /**< Redis: PUBLISH replies received */
static double taken_at; /**< the server had the whole flood */
static double first_drop; /**< when the first reader was dropped */
static int failed; /**< set by fail() */

/**
 * @brief Seconds since an arbitrary start (CLOCK_MONOTONIC).
 * @return the time; exits 1 if there is no such clock (no figure could
 *         be right).
 */
static double
now_s(void)
{
    struct timespec t;

    if (clock_gettime(CLOCK_MONOTONIC, &t) < 0) {
        perror("flood: clock_gettime");
        exit(1);
    }
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/**
 * @brief Reports one failure on stderr; the run is not exact.
 *
 * Only the first few are described: one lost line makes every later line
 * of that reader look wrong.
 * @param fmt printf format of what went wrong.
 * @param ... its arguments.
 */
static void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
    va_list ap;

    if (failed++ >= 5)
        return;
    va_start(ap, fmt);
    fputs("flood: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/**
 * @brief Connects one client, blocking; exits 1 if the server is not there.
 * @param sa  the server.
 * @param len its length.
 * @return the socket, still blocking.
 */
static int
dial(const struct sockaddr *sa, socklen_t len)
{
    int fd = net_connect(sa, len);

    if (fd < 0) {
        perror("flood: connect");
        exit(1);
    }
    return fd;
}

/**
 * @brief Makes a joined client's socket nonblocking, for the poll loop.
 * @param fd the socket.
 * @return @p fd; exits 1 if it cannot.
 */
static int
unblock(int fd)
{
    if (net_set_nonblock(fd) < 0) {
        perror("flood: O_NONBLOCK");
        exit(1);
    }
    return fd;
}

/**
 * @brief Joins the chat room and reads the welcome, blocking.
 * @param sa  the server.
 * @param len its length.
 * @param id  receives N of user<N>.
 * @return the socket, nonblocking; exits 1 if there is no welcome.
 */
static int
join_chat(const struct sockaddr *sa, socklen_t len, unsigned long *id)
{
    char buf[256];
    size_t n = 0;
    int fd = dial(sa, len);

    do { /* one byte at a time: the line is all that is read */
        ssize_t r = recv(fd, buf + n, 1, 0);
        if (r <= 0 || ++n == sizeof buf) {
            fprintf(stderr, "flood: no welcome line\n");
            exit(1);
        }
    } while (buf[n - 1] != '\n');
    buf[n] = '\0';
    static const char hello[] = "* welcome, you are user";
    char *end = NULL;
    if (strncmp(buf, hello, sizeof hello - 1) == 0)
        *id = strtoul(buf + sizeof hello - 1, &end, 10);
    if (end == NULL || end == buf + sizeof hello - 1) {
        fprintf(stderr, "flood: not a welcome: %s", buf);
        exit(1);
    }
    return unblock(fd);
}

/**
 * @brief Connects to Redis as a subscriber of #REDIS_CHANNEL or as the
 *        publisher, and reads the reply that welcomes it, blocking.
 *
 * Every subscriber is in the channel before the first PUBLISH, so each
 * must get the whole flood.
 * @param sa        the server.
 * @param len       its length.
 * @param publisher true for the sender (PING), false for a reader
 *                  (SUBSCRIBE).
 * @return the socket, nonblocking; exits 1 if the reply is not right.
 */
static int
join_redis(const struct sockaddr *sa, socklen_t len, bool publisher)
{
    const char *cmd = publisher ? REDIS_PING : REDIS_SUBSCRIBE;
    char buf[256];
    size_t n = 0;
    struct resp_frame f;
    long k;
    int fd = dial(sa, len);

    if (send(fd, cmd, strlen(cmd), MSG_NOSIGNAL) != (ssize_t)strlen(cmd)) {
        perror("flood: cannot send to Redis");
        exit(1);
    }
    do { /* one byte at a time: the reply is all that is read */
        ssize_t r = recv(fd, buf + n, 1, 0);
        if (r <= 0 || ++n == sizeof buf) {
            fprintf(stderr, "flood: no reply from Redis\n");
            exit(1);
        }
    } while ((k = resp_parse(buf, n, &f)) == 0);
    if (k < 0 ||
        (publisher
             ? f.array || !resp_is(&f, 0, "PONG")
             : !f.array || f.n != 3 || !resp_is(&f, 0, "subscribe") ||
                   !resp_is(&f, 1, REDIS_CHANNEL) || !resp_is_int(&f, 2, 1))) {
        fprintf(stderr, "flood: not the reply to %s\n",
                publisher ? "PING" : "SUBSCRIBE");
        exit(1);
    }
    return unblock(fd);
}

/**
 * @brief Writes flood line @p k (B - 1 digits and `\n`) into @p dst.
 * @param dst receives @p bytes bytes.
 * @param k   the line's number, from 1.
 */
static void
flood_line(char *dst, unsigned long k)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lu", k);
    size_t digits = (size_t)n;

    memset(dst, '0', bytes - 1 - digits);
    memcpy(dst + bytes - 1 - digits, tmp, digits);
    dst[bytes - 1] = '\n';
}

/**
 * @brief Writes what the sender sends for line @p k.
 *
 * Chat: the line. Redis: a PUBLISH of the line without its `\n`, so that
 * both servers deliver the same B - 1 digits.
 * @param dst receives at most @p bytes + #REDIS_CMD_OVERHEAD bytes.
 * @param k   the line's number, from 1.
 * @return bytes written.
 */
static size_t
compose(char *dst, unsigned long k)
{
    if (!redis) {
        flood_line(dst, k);
        return bytes;
    }
    size_t head = resp_publish_head(dst, bytes - 1);
    flood_line(dst + head, k);
    dst[head + bytes - 1] = '\r';
    dst[head + bytes] = '\n';
    return head + bytes + 1;
}

/**
 * @brief Checks that @p p is the next line of the flood for @p r.
 *
 * Whatever the check finds, the line counts, so that one lost line is
 * one failure and the reader's count still says how far it got.
 * @param r   the reader.
 * @param p   the line's B - 1 digits, as delivered.
 * @param n   their count.
 * @param now when it arrived.
 */
static void
check_flood(struct reader *r, const char *p, size_t n, double now)
{
    char want[LINE_CAP];

    flood_line(want, r->got + 1);
    if (r->got == lines || n != bytes - 1 || memcmp(p, want, n) != 0)
        fail("%s: flood line %lu is lost, repeated, reordered or changed",
             r->name, r->got + 1);
    if (++r->got == lines && taken_at == 0)
        taken_at = now; /* the chat server had the last line */
}

/**
 * @brief Marks reader @p r dropped by the server (once).
 *
 * In the chat room that fails the run: the SPEC drops only a reader that
 * does not keep up, and every reader here reads. Redis drops whom its
 * output buffer limit says; that is counted, not failed.
 * @param r   the reader.
 * @param now when it was noticed.
 */
static void
mark_dropped(struct reader *r, double now)
{
    if (r->dropped)
        return;
    r->dropped = true;
    if (first_drop == 0)
        first_drop = now;
    if (!redis)
        fail("%s (user%lu) was dropped after %lu lines", r->name, r->id,
             r->got);
}

/**
 * @brief Reads a notice: `* user<id> left` of a reader is its drop.
 *
 * Joins and other notices say nothing about the flood.
 * @param p   the line, without its `\n`.
 * @param n   its length.
 * @param now when it arrived.
 */
static void
check_notice(const char *p, size_t n, double now)
{
    static const char pre[] = "* user", post[] = " left";
    char text[64];
    unsigned long id;
    char *end;

    if (n >= sizeof text || n < sizeof pre + sizeof post - 1 ||
        memcmp(p, pre, sizeof pre - 1) != 0 ||
        memcmp(p + n - (sizeof post - 1), post, sizeof post - 1) != 0)
        return;
    memcpy(text, p, n);
    text[n] = '\0';
    id = strtoul(text + sizeof pre - 1, &end, 10);
    if (end != text + n - (sizeof post - 1))
        return;
    for (size_t i = 0; i < nreaders; i++)
        if (readers[i].id == id)
            mark_dropped(&readers[i], now);
}

/**
 * @brief Checks one complete chat line a connection got (without `\n`).
 * @param r   the connection.
 * @param p   the line.
 * @param n   its length.
 * @param now when it arrived.
 */
static void
check_line(struct reader *r, const char *p, size_t n, double now)
{
    char pre[32];
    int pn = snprintf(pre, sizeof pre, "user%lu: ", sender.id);

    if (n > 0 && p[0] == '*') {
        check_notice(p, n, now);
        return;
    }
    if (n >= (size_t)pn && memcmp(p, pre, (size_t)pn) == 0) {
        check_flood(r, p + pn, n - (size_t)pn, now);
        return;
    }
    int hn = snprintf(pre, sizeof pre, "user%lu: ", human.id);
    if (!say_human || r->human || n != (size_t)hn + strlen(HUMAN) ||
        memcmp(p, pre, (size_t)hn) != 0 ||
        memcmp(p + hn, HUMAN, strlen(HUMAN)) != 0) {
        fail("%s: an unexpected line: %.*s", r->name, (int)(n < 60 ? n : 60),
             p);
        return;
    }
    r->human = true;
    r->human_at = now;
}

/**
 * @brief Checks one RESP frame a Redis connection got.
 *
 * A subscriber gets `message` pushes of the channel, the sender one
 * integer reply per PUBLISH (how many subscribers it reached).
 * @param r   the connection.
 * @param f   the frame.
 * @param now when it arrived.
 */
static void
check_frame(struct reader *r, const struct resp_frame *f, double now)
{
    if (r == &sender) {
        if (f->array || f->item[0].type != ':' || replies == lines)
            fail("the sender: a PUBLISH reply that is not a count");
        else if (++replies == lines)
            taken_at = now; /* Redis had the last line */
        return;
    }
    if (f->array && f->n == 3 && resp_is(f, 0, "message") &&
        resp_is(f, 1, REDIS_CHANNEL) && f->item[2].type == '$') {
        check_flood(r, f->item[2].p, f->item[2].len, now);
        return;
    }
    fail("%s: an unexpected '%c' frame", r->name, f->item[0].type);
}

/**
 * @brief Checks every complete line (chat) or frame (Redis) in @p buf.
 * @param r   the connection.
 * @param buf bytes received, an unfinished line or frame first.
 * @param len how many.
 * @param now when they arrived.
 * @return bytes used; the rest is an unfinished line or frame.
 */
static size_t
take(struct reader *r, const char *buf, size_t len, double now)
{
    size_t start = 0;

    while (start < len) {
        if (!redis) {
            const char *nl = memchr(buf + start, '\n', len - start);
            if (nl == NULL)
                break;
            check_line(r, buf + start, (size_t)(nl - (buf + start)), now);
            start = (size_t)(nl - buf) + 1;
            continue;
        }
        struct resp_frame f;
        long k = resp_parse(buf + start, len - start, &f);
        if (k == 0)
            break;
        if (k < 0) {
            fail("%s: not a RESP frame", r->name);
            return len;
        }
        check_frame(r, &f, now);
        start += (size_t)k;
    }
    return start;
}

/**
 * @brief Reads what a connection may take now, and checks what it got.
 *
 * A reader as fast as it can reads until the socket is empty; the steady
 * reader reads once, no more than its allowance since @p t0.
 * @param r  the connection.
 * @param t0 the start, for the steady reader's allowance.
 * @return false if the connection ended (closed or reset by the server).
 */
static bool
reader_read(struct reader *r, double t0)
{
    static char buf[LINE_CAP + CHUNK];
    double now = now_s();
    size_t want = CHUNK;

    if (r->rate > 0) {
        double may = r->rate * (now - t0) - (double)r->taken;
        want = may < 1 ? 0 : may < CHUNK ? (size_t)may : CHUNK;
    }
    while (want > 0) {
        memcpy(buf, r->line, r->len);
        ssize_t n = recv(r->fd, buf + r->len, want, 0);
        if (n == 0)
            return false;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        r->taken += (size_t)n;
        size_t len = r->len + (size_t)n;
        size_t used = take(r, buf, len, now);
        r->len = len - used;
        if (r->len > LINE_CAP) {
            fail("%s: a line or frame longer than %d bytes", r->name, LINE_CAP);
            r->len = 0;
        }
        memmove(r->line, buf + used, r->len);
        if (r->got == lines && (r->human || !say_human) && r->done_at == 0)
            r->done_at = now;
        if (r->rate > 0)
            break; /* one read per look: the allowance is recomputed */
    }
    return true;
}

/**
 * @brief Should poll() wake us for reader @p r's input?
 *
 * Always for a reader as fast as it can. The steady reader only once it
 * may take 10 ms of its rate: woken for every byte it may take, the loop
 * would spin while its socket stays readable.
 * @param r  the reader.
 * @param t0 the start, for the steady reader's allowance.
 * @return true if so.
 */
static bool
may_read(const struct reader *r, double t0)
{
    return r->rate == 0 ||
           r->rate * (now_s() - t0) - (double)r->taken >= r->rate / 100;
}

/**
 * @brief Is the run over: the server has the whole flood, and every
 *        reader it did not drop has everything?
 * @return true if so.
 */
static bool
finished(void)
{
    if (redis ? replies < lines : taken_at == 0)
        return false;
    for (size_t i = 0; i < nreaders; i++)
        if (!readers[i].dropped && readers[i].done_at == 0)
            return false;
    return true;
}

/**
 * @brief Parses the options into the globals and the server's address.
 * @param argc as given.
 * @param argv as given.
 * @param ss   receives the address.
 * @param len  receives its length.
 * @param fast receives the number of fast readers.
 * @param rate receives the steady reader's rate, 0 for none.
 * @param deadline receives the seconds the run may take.
 * @return true if they are valid; false after a usage line on stderr.
 */
static bool
parse_options(int argc, char **argv, struct sockaddr_storage *ss,
              socklen_t *len, unsigned long *fast, double *rate,
              double *deadline)
{
    const char *proto = "chat";
    int opt;

    while ((opt = getopt(argc, argv, "p:n:r:HL:b:d:")) != -1) {
        if (opt == 'p')
            proto = optarg;
        else if (opt == 'n')
            *fast = strtoul(optarg, NULL, 10);
        else if (opt == 'r')
            *rate = strtod(optarg, NULL);
        else if (opt == 'H')
            say_human = true;
        else if (opt == 'L')
            lines = strtoul(optarg, NULL, 10);
        else if (opt == 'b')
            bytes = strtoul(optarg, NULL, 10);
        else if (opt == 'd')
            *deadline = strtod(optarg, NULL);
        else
            goto usage;
    }
    redis = strcmp(proto, "redis") == 0;
    if ((!redis && strcmp(proto, "chat") != 0) || (redis && say_human) ||
        argc - optind != 2 || *fast < 1 || *fast > MAX_READERS || lines < 2 ||
        bytes < 22 || bytes > 1024 || *rate < 0 || *deadline <= 0 ||
        net_parse_addr(argv[optind], argv[optind + 1], ss, len) < 0)
        goto usage;
    return true;
usage:
    fprintf(stderr,
            "usage: flood [-p chat|redis] [-n 1..%d readers] "
            "[-r steady-rate] [-H (chat)] [-L lines] [-b 22..1024] "
            "[-d deadline] HOST PORT\n",
            MAX_READERS);
    return false;
}

/**
 * @brief Connects the sender, the readers and the human, in that order.
 *
 * In the chat room the sender joins first, so that the readers' ids come
 * after its own and every reader is in the room before the first line.
 * @param ss   the server.
 * @param len  its length.
 * @param fast fast readers.
 * @param rate the steady reader's rate, 0 for none.
 */
static void
join_all(const struct sockaddr_storage *ss, socklen_t len, unsigned long fast,
         double rate)
{
    const struct sockaddr *sa = (const struct sockaddr *)ss;

    sender.name = "the sender";
    sender.fd =
        redis ? join_redis(sa, len, true) : join_chat(sa, len, &sender.id);
    nreaders = fast + (rate > 0);
    for (size_t i = 0; i < nreaders; i++) {
        struct reader *r = &readers[i];
        r->name = i < fast ? "a fast reader" : "the steady reader";
        r->rate = i < fast ? 0 : rate;
        r->fd = redis ? join_redis(sa, len, false) : join_chat(sa, len, &r->id);
    }
    human.name = "the human";
    human.fd = say_human ? join_chat(sa, len, &human.id) : -1;
}

/**
 * @brief Prints the result line (see the file's comment for its keys).
 * @param t0         when the flood began.
 * @param human_sent when the short line was said, 0 if it was not.
 * @param fast       fast readers.
 * @param rate       the steady reader's rate, 0 for none.
 */
static void
report(double t0, double human_sent, unsigned long fast, double rate)
{
    unsigned long complete = 0, dropped = 0;
    double last_fast = 0;

    for (size_t i = 0; i < nreaders; i++) {
        const struct reader *r = &readers[i];
        complete += r->got == lines;
        dropped += r->dropped;
        if (r->rate == 0 && !r->dropped && r->done_at > last_fast)
            last_fast = r->done_at;
    }
    double mb = (double)lines * (double)bytes / 1e6;
    double took = taken_at > t0 ? taken_at - t0 : 0;
    double fs = last_fast > t0 ? last_fast - t0 : 0;
    const struct reader *steady = rate > 0 ? &readers[nreaders - 1] : NULL;
    printf("mode=flood proto=%s readers=%lu lines=%lu bytes=%lu "
           "steady_rate=%.0f flood_mb=%.1f sender_s=%.3f "
           "sender_mb_per_s=%.1f sender_lines_per_s=%.0f seconds=%.3f "
           "mb_per_s=%.1f steady_s=%.3f human_ms=%.1f complete=%lu "
           "dropped=%lu first_drop_s=%.3f ok=%d\n",
           redis ? "redis" : "chat", fast, lines, bytes, rate, mb, took,
           took > 0 ? mb / took : 0, took > 0 ? (double)lines / took : 0, fs,
           fs > 0 ? mb / fs : 0,
           steady && steady->done_at > t0 ? steady->done_at - t0 : 0,
           human_sent > 0 && readers[0].human
               ? 1e3 * (readers[0].human_at - human_sent)
               : -1,
           complete, dropped, first_drop > t0 ? first_drop - t0 : 0,
           failed == 0);
}

/**
 * @brief Parses the options, runs the flood, prints the result line.
 * @param argc as given.
 * @param argv as given.
 * @return 0 if the run was exact and finished, 1 otherwise, 2 for a
 *         usage error.
 */
int
main(int argc, char **argv)
{
    double rate = 0, deadline = 120;
    unsigned long fast = 10;
    struct sockaddr_storage ss;
    socklen_t len;

    if (!parse_options(argc, argv, &ss, &len, &fast, &rate, &deadline))
        return 2;
    join_all(&ss, len, fast, rate);

    static char out[CHUNK + 1024 + REDIS_CMD_OVERHEAD];
    size_t out_len = 0, out_off = 0;
    unsigned long made = 0;
    double t0 = now_s(), human_sent = 0;
    while (failed == 0 && !finished()) {
        if (now_s() - t0 > deadline) {
            fail("deadline passed");
            break;
        }
        if (out_off == out_len && made < lines) { /* the next chunk */
            out_len = out_off = 0;
            while (made < lines &&
                   out_len + bytes + REDIS_CMD_OVERHEAD <= CHUNK)
                out_len += compose(out + out_len, ++made);
        }
        if (say_human && human_sent == 0 && made >= lines / 2) {
            human_sent = now_s();
            if (send(human.fd, HUMAN "\n", strlen(HUMAN) + 1, MSG_NOSIGNAL) !=
                (ssize_t)strlen(HUMAN) + 1)
                fail("the short line could not be sent");
        }
        /* The sender and the human hear the room (or Redis's replies)
         * too, and must keep up with it. A closed descriptor is -1, which
         * poll() skips. */
        struct pollfd p[MAX_READERS + 3];
        p[0] = (struct pollfd){sender.fd,
                               POLLIN | (out_off < out_len ? POLLOUT : 0), 0};
        p[1] = (struct pollfd){human.fd, POLLIN, 0};
        for (size_t i = 0; i < nreaders; i++)
            p[2 + i] = (struct pollfd){
                readers[i].fd, may_read(&readers[i], t0) ? POLLIN : 0, 0};
        if (poll(p, 2 + nreaders, 10) < 0 && errno != EINTR) {
            perror("flood: poll");
            return 1;
        }
        if (p[0].revents & (POLLOUT | POLLERR | POLLHUP)) {
            ssize_t w =
                send(sender.fd, out + out_off, out_len - out_off, MSG_NOSIGNAL);
            if (w > 0)
                out_off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                fail("the sender's connection failed: %s", strerror(errno));
        }
        if ((p[0].revents & (POLLIN | POLLERR | POLLHUP)) &&
            !reader_read(&sender, t0))
            fail("the sender was dropped");
        if ((p[1].revents & (POLLIN | POLLERR | POLLHUP)) &&
            !reader_read(&human, t0))
            fail("the human was dropped");
        for (size_t i = 0; i < nreaders; i++) {
            struct reader *r = &readers[i];
            if (r->fd < 0 || !(p[2 + i].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            if (!reader_read(r, t0)) {
                mark_dropped(r, now_s());
                close(r->fd);
                r->fd = -1;
            }
        }
    }

    report(t0, human_sent, fast, rate);
    for (size_t i = 0; i < nreaders; i++)
        if (readers[i].fd >= 0)
            close(readers[i].fd);
    close(sender.fd);
    if (human.fd >= 0)
        close(human.fd);
    return failed != 0;
}
