/**
 * @file tests/bench/flood.c
 * @brief The benchmark's flood row: one sender at full speed, a fast
 *        reader, a steady reader, and a human-sized line in the middle.
 *
 * Four chat clients in one process (issue 13's case, as a figure):
 *
 * - the sender sends L lines of B bytes (a zero-padded sequence number
 *   and `\n`) as fast as the server takes them;
 * - the fast reader reads as fast as it can;
 * - the steady reader reads no faster than R bytes a second;
 * - once half the flood is sent, a fourth client says one short line,
 *   timed until the fast reader has it.
 *
 * Both readers check every line of the flood exactly once, in order,
 * byte-exact, and the short line exactly once; a reader the server drops
 * (end of stream before the end) fails the run. The result is one line of
 * `key=value` pairs on stdout: the flood's rate (MB/s, until the fast
 * reader has its last line), the steady reader's time, and the short
 * line's latency. Exit 0 if the run was exact, 1 otherwise.
 *
 * Usage: `flood [-L lines] [-b bytes] [-r rate] [-d deadline] HOST PORT`
 */
#include "net.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/** Longest line a reader keeps ("user<id>: " + payload). */
#define LINE_CAP 2048
/** Bytes asked of one recv() or given to one send(). */
#define CHUNK 65536
/** The short line's text after `user<id>: `. */
#define HUMAN "hello from a human during the flood"

/** One reader's state. */
struct reader {
    int fd; /**< its socket */
    double rate; /**< bytes a second, 0: as fast as it can */
    unsigned long got; /**< flood lines checked so far */
    bool human; /**< the short line arrived */
    double human_at; /**< when (seconds since start) */
    double done_at; /**< when it had everything, 0 until then */
    size_t taken; /**< bytes read so far, for #rate */
    size_t len; /**< bytes of an unfinished line in #line */
    char line[LINE_CAP]; /**< the unfinished line */
};

static unsigned long lines = 20480, bytes = 1024; /**< -L and -b */
static unsigned long sender_id, human_id; /**< their user ids */
static int failed; /**< set by fail() */

/**
 * @brief Seconds since an arbitrary start (CLOCK_MONOTONIC).
 * @return the time.
 */
static double
now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/**
 * @brief Reports one failure on stderr; the run is not exact.
 * @param what what went wrong.
 */
static void
fail(const char *what)
{
    if (failed++ < 5)
        fprintf(stderr, "flood: %s\n", what);
}

/**
 * @brief Connects one client and reads its welcome, blocking.
 * @param sa  the server.
 * @param len its length.
 * @param id  receives N of user<N>.
 * @return the socket, nonblocking; exits 1 if the server is not there.
 */
static int
join(const struct sockaddr *sa, socklen_t len, unsigned long *id)
{
    char buf[256];
    size_t n = 0;
    int fd = net_connect(sa, len);

    if (fd < 0) {
        perror("flood: connect");
        exit(1);
    }
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
    if (net_set_nonblock(fd) < 0) {
        perror("flood: O_NONBLOCK");
        exit(1);
    }
    return fd;
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
 * @brief Checks one complete line a reader got (without its `\n`).
 * @param r   the reader.
 * @param p   the line.
 * @param n   its length.
 * @param now when it arrived.
 */
static void
check_line(struct reader *r, const char *p, size_t n, double now)
{
    char pre[32];
    int pn = snprintf(pre, sizeof pre, "user%lu: ", sender_id);

    if (n > 0 && p[0] == '*')
        return; /* a join notice; a leave of a reader fails at its EOF */
    if (n > (size_t)pn && memcmp(p, pre, (size_t)pn) == 0) {
        char want[LINE_CAP];
        flood_line(want, r->got + 1);
        if (n - (size_t)pn != bytes - 1 || memcmp(p + pn, want, bytes - 1) != 0)
            fail("a flood line is lost, repeated, reordered or changed");
        r->got++;
        return;
    }
    int hn = snprintf(pre, sizeof pre, "user%lu: ", human_id);
    if (r->human || n != (size_t)hn + strlen(HUMAN) ||
        memcmp(p, pre, (size_t)hn) != 0 ||
        memcmp(p + hn, HUMAN, strlen(HUMAN)) != 0)
        fail("an unexpected line");
    r->human = true;
    r->human_at = now;
}

/**
 * @brief Reads what a reader may take now, and checks its lines.
 * @param r  the reader.
 * @param t0 the start, for the steady reader's allowance.
 * @return false if the server closed it (it was dropped).
 */
static bool
reader_read(struct reader *r, double t0)
{
    static char buf[CHUNK];
    double now = now_s();
    size_t want = CHUNK;

    if (r->rate > 0) {
        double may = r->rate * (now - t0) - (double)r->taken;
        want = may < 1 ? 0 : may < CHUNK ? (size_t)may : CHUNK;
    }
    while (want > 0) {
        ssize_t n = recv(r->fd, buf, want, 0);
        if (n == 0)
            return false;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        r->taken += (size_t)n;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                check_line(r, r->line, r->len, now);
                r->len = 0;
            } else if (r->len < LINE_CAP) {
                r->line[r->len++] = buf[i];
            }
        }
        if (r->got == lines && r->human && r->done_at == 0)
            r->done_at = now;
        if (r->rate > 0)
            break; /* one read per look: the allowance is recomputed */
    }
    return true;
}

/**
 * @brief Parses the options, runs the flood, prints the result line.
 * @param argc as given.
 * @param argv as given.
 * @return 0 if the run was exact and finished, 1 otherwise.
 */
int
main(int argc, char **argv)
{
    double rate = 2e6, deadline = 120;
    struct sockaddr_storage ss;
    socklen_t len;
    int opt;

    while ((opt = getopt(argc, argv, "L:b:r:d:")) != -1) {
        if (opt == 'L')
            lines = strtoul(optarg, NULL, 10);
        else if (opt == 'b')
            bytes = strtoul(optarg, NULL, 10);
        else if (opt == 'r')
            rate = strtod(optarg, NULL);
        else if (opt == 'd')
            deadline = strtod(optarg, NULL);
        else
            return 2;
    }
    if (argc - optind != 2 || lines < 2 || bytes < 22 || bytes > 1024 ||
        rate <= 0 ||
        net_parse_addr(argv[optind], argv[optind + 1], &ss, &len) < 0) {
        fprintf(stderr, "usage: flood [-L lines] [-b 22..1024] [-r rate] "
                        "[-d deadline] HOST PORT\n");
        return 2;
    }
    static struct reader fast, steady;
    unsigned long id;
    int tx = join((struct sockaddr *)&ss, len, &sender_id);
    fast.fd = join((struct sockaddr *)&ss, len, &id);
    steady.fd = join((struct sockaddr *)&ss, len, &id);
    steady.rate = rate;
    int hx = join((struct sockaddr *)&ss, len, &human_id);

    static char out[CHUNK + 1024];
    size_t out_len = 0, out_off = 0;
    unsigned long made = 0;
    double t0 = now_s(), human_sent = 0;
    while (failed == 0 && (fast.done_at == 0 || steady.done_at == 0)) {
        if (now_s() - t0 > deadline) {
            fail("deadline passed");
            break;
        }
        if (out_off == out_len && made < lines) { /* the next chunk */
            out_len = out_off = 0;
            while (made < lines && out_len + bytes <= CHUNK) {
                flood_line(out + out_len, ++made);
                out_len += bytes;
            }
        }
        if (human_sent == 0 && made >= lines / 2) {
            human_sent = now_s();
            if (send(hx, HUMAN "\n", strlen(HUMAN) + 1, MSG_NOSIGNAL) < 0)
                fail("the short line could not be sent");
        }
        struct pollfd p[4] = {
            {tx, out_off < out_len ? POLLOUT : 0, 0},
            {fast.fd, POLLIN, 0},
            {steady.fd, POLLIN, 0},
            {hx, POLLIN, 0},
        };
        if (poll(p, 4, 10) < 0 && errno != EINTR) {
            perror("flood: poll");
            return 1;
        }
        if (p[0].revents & (POLLOUT | POLLERR | POLLHUP)) {
            ssize_t w =
                send(tx, out + out_off, out_len - out_off, MSG_NOSIGNAL);
            if (w > 0)
                out_off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                fail("the sender's connection failed");
        }
        /* The human hears the flood too, and must keep up with it. */
        static char junk[CHUNK];
        if ((p[3].revents & POLLIN) && recv(hx, junk, sizeof junk, 0) == 0)
            fail("the human was dropped");
        if (!reader_read(&fast, t0))
            fail("the fast reader was dropped");
        if (!reader_read(&steady, t0))
            fail("the steady reader was dropped");
    }
    double mb = (double)lines * (double)bytes / 1e6;
    double fs = fast.done_at > t0 ? fast.done_at - t0 : 0;
    printf("mode=flood lines=%lu bytes=%lu steady_rate=%.0f flood_mb=%.1f "
           "seconds=%.3f mb_per_s=%.1f steady_s=%.3f human_ms=%.1f "
           "fast_lines=%lu steady_lines=%lu ok=%d\n",
           lines, bytes, rate, mb, fs, fs > 0 ? mb / fs : 0,
           steady.done_at > t0 ? steady.done_at - t0 : 0,
           fast.human ? 1e3 * (fast.human_at - human_sent) : -1, fast.got,
           steady.got, failed == 0);
    close(tx);
    close(hx);
    close(fast.fd);
    close(steady.fd);
    return failed != 0;
}
