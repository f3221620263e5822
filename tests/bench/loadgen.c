/**
 * @file tests/bench/loadgen.c
 * @brief The benchmark's load generator: many chat clients in one process.
 *
 * One process, one epoll instance, nonblocking sockets, so that the
 * generator costs far less than the server it measures (it reports its own
 * CPU time beside the server's). Three modes:
 *
 * - `fanout`: N clients join; S of them (the first S to join) each send
 *   messages of B bytes, with at most W of their messages outstanding: a
 *   sender sends message k only once its message k-W has reached every
 *   other client. Every receiver checks exactly-once delivery, per-sender
 *   order and byte-exact content; any loss, duplicate, reordering or
 *   corruption fails the run (exit 1), whatever its speed.
 * - `connect`: N clients connect and wait for their welcome line; the rate
 *   is clients per second from the first connect() to the last welcome.
 * - `hold`: N clients join, then stay idle for -t seconds (or until SIGINT
 *   or SIGTERM) while the caller measures the server's memory. A line
 *   `holding clients=N` on stdout says when they are all in (in fanout,
 *   `sending clients=N` when the sending begins).
 *
 * Two ways to send (fanout):
 *
 * - closed loop (default): a sender sends whatever its window allows, as
 *   soon as it allows it, stamped with the time of sending; the server's
 *   speed sets the pace.
 * - paced (`-R rate`): sender s sends its message k at the scheduled time
 *   start + (k + s/S) / rate, stamped with that scheduled time, not the
 *   time it actually left. A server that stalls therefore shows the whole
 *   delay in the latency of every message that should have left during
 *   the stall (no "coordinated omission"). The window still applies, as a
 *   bound on the queues; a message it holds back is late, and counted so.
 *
 * Two protocols (`-p`):
 *
 * - `chat` (default): the SPEC's chat room. A client is welcomed by
 *   `* welcome, you are user<id> ...`; a message is a line; receivers get
 *   `user<id>: <line>`, every client but the sender.
 * - `redis`: Redis pub/sub, the real-world baseline. The N clients are N
 *   subscribers of one channel, each welcomed by its SUBSCRIBE reply;
 *   each of the S senders publishes through a connection of its own (so
 *   N + S connections), welcomed by its PING reply. Redis delivers a
 *   message to every subscriber, the sender's own subscriber included, so
 *   a message makes N deliveries (N-1 in the chat room); every delivery
 *   is checked as in the chat room, and every PUBLISH reply must count N
 *   receivers.
 *
 * The result is one line of `key=value` pairs on stdout, the last line
 * printed, for tests/bench/run.sh to parse. Diagnostics go to stderr.
 *
 * A message's payload is fixed-width text, `SSSS:QQQQQQQQ:TTTTTTTTTTTT:`
 * (sender index, sequence number, send time in ns since the generator
 * started, all hex), padded to B bytes with letters derived from those
 * three fields, so a corrupted byte anywhere is noticed.
 *
 * Usage: `loadgen [-m fanout|connect|hold] [-p chat|redis] [-n clients]
 * [-s senders] [-M messages] [-b bytes] [-w window] [-R rate]
 * [-t seconds] [-d deadline] [-T send-seconds] [-P server-pid] HOST PORT`
 *
 * -T bounds a fan-out run in time: a sender stops after M messages or T
 * seconds, whichever comes first, and the run ends when everything sent
 * has been delivered (and checked). -P names the server whose CPU time
 * (all its threads and child processes) is measured over the fan-out
 * phase.
 */
#include "log.h"
#include "net.h"
#include "resp.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/** Bytes of the payload header `SSSS:QQQQQQQQ:TTTTTTTTTTTT:`. */
#define PAYLOAD_HDR 27
/** Largest payload: the server relays lines up to 1023 bytes whole. */
#define PAYLOAD_MAX 1000
/** Longest line kept between two reads ("user<id>: " + payload + slack). */
#define LINE_CAP 2048
/** Bytes asked of one recv(). */
#define READ_SIZE 65536
/** Connections that may be connecting or awaiting their welcome at once;
 * more would overflow the listen backlog and wait for SYN retransmits. */
#define CONNECT_INFLIGHT 128
/** Events taken from one epoll_wait(). */
#define EPOLL_BATCH 1024
/** Errors described on stderr before the rest are only counted. */
#define ERRORS_SHOWN 10
/** Sub-buckets per power of two in the latency histogram (~1.5 %). */
#define HIST_SUB 64
/** Buckets of the latency histogram: 64 exact, then 58 octaves. */
#define HIST_BUCKETS (HIST_SUB + 58 * HIST_SUB)

/** Which server the generator talks to. */
enum proto {
    PROTO_CHAT, /**< the SPEC's chat room */
    PROTO_REDIS, /**< Redis pub/sub */
};

/** Where one connection stands. */
enum conn_state {
    CONN_IDLE, /**< not yet started */
    CONN_CONNECTING, /**< nonblocking connect() under way */
    CONN_WELCOME, /**< connected, waiting for the welcome line */
    CONN_READY, /**< welcomed: its id is known */
    CONN_CLOSED, /**< failed or closed by the server */
};

/** One chat client (or, with Redis, a subscriber or a publisher). */
struct conn {
    int fd; /**< its socket, -1 before connect and after close */
    enum conn_state state; /**< where it stands */
    unsigned long id; /**< N of `user<N>`, learnt from the welcome */
    size_t inlen; /**< bytes of an unfinished line in #in */
    char *in; /**< the unfinished line, #LINE_CAP bytes */
};

/** What a sending client owes and has had acknowledged. */
struct sender {
    size_t conn; /**< index of its connection */
    uint32_t next; /**< sequence number of the next message to send */
    uint32_t done; /**< messages that reached every other client */
    uint32_t replies; /**< Redis: PUBLISH replies received */
    uint32_t *count; /**< receivers reached, per message, by seq % W */
    char *out; /**< bytes not yet written */
    size_t outlen; /**< bytes in #out */
    size_t outoff; /**< bytes of #out already written */
    bool wants_out; /**< EPOLLOUT is being watched (a write fell short) */
    bool flagged; /**< on the list of senders to top up */
    bool stopped; /**< -T passed: sends nothing more */
    bool finished; /**< everything it sent reached everyone */
};

/** The options, as given on the command line. */
struct options {
    const char *mode; /**< "fanout", "connect" or "hold" */
    const char *proto; /**< -p, "chat" or "redis" */
    size_t clients; /**< -n */
    size_t senders; /**< -s */
    uint32_t messages; /**< -M, per sender */
    size_t bytes; /**< -b, payload size */
    uint32_t window; /**< -w */
    double hold_s; /**< -t, seconds to hold in hold mode */
    double deadline_s; /**< -d, seconds after which the run fails */
    double send_s; /**< -T, seconds after which senders stop, 0: never */
    long server_pid; /**< -P, server whose CPU time to measure, or 0 */
    double rate; /**< -R, messages/s per sender; 0: closed loop */
};

/** The generator's whole state. */
struct gen {
    struct options opt; /**< the options */
    enum proto proto; /**< from opt.proto */
    bool fanout; /**< opt.mode is "fanout" */
    size_t nconns; /**< connections: clients, plus Redis publishers */
    size_t receivers; /**< deliveries one message makes */
    int epfd; /**< the epoll instance */
    struct sockaddr_storage addr; /**< the server */
    socklen_t addrlen; /**< length of #addr */
    struct conn *conns; /**< #nconns connections; receivers first */
    struct sender *senders; /**< opt.senders senders */
    uint32_t *expect; /**< [receiver * S + sender]: next sequence due */
    size_t *flagged; /**< senders to top up after this pass */
    size_t nflagged; /**< entries in #flagged */
    size_t started; /**< connections started */
    size_t inflight; /**< connecting or awaiting a welcome */
    size_t ready; /**< connections welcomed */
    size_t failed; /**< connections that failed to join */
    size_t senders_done; /**< senders whose every message is delivered */
    uint64_t deliveries; /**< messages that arrived at a receiver */
    uint64_t errors; /**< exactness errors seen */
    size_t join_said; /**< failures to join described on stderr */
    bool running; /**< fanout phase under way: messages are expected */
    bool holding; /**< hold phase: its end is the deadline, no failure */
    uint64_t hist[HIST_BUCKETS]; /**< latency histogram, see hist_index() */
    uint64_t max_ns; /**< largest latency seen */
    struct timespec t0; /**< the generator's start, origin of send times */
    uint64_t start_ns; /**< when the fan-out began, since #t0 */
    uint64_t send_end_ns; /**< when senders stop (-T), since #t0 */
    uint64_t deadline_ns; /**< when the run gives up, since #t0 */
};

/** Set by SIGINT/SIGTERM: a hold ends early (and successfully). */
static volatile sig_atomic_t stop_requested;

/**
 * @brief Nanoseconds since @p t0 on the monotonic clock.
 * @param t0 the origin.
 * @return elapsed nanoseconds.
 */
static uint64_t
ns_since(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)(now.tv_sec - t0->tv_sec) * 1000000000u +
           (uint64_t)(now.tv_nsec - t0->tv_nsec);
}

/**
 * @brief Seconds of CPU this process has used, user plus system.
 * @return CPU seconds.
 */
static double
self_cpu_s(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/**
 * @brief Reads ppid and CPU ticks of one process from /proc/PID/stat.
 * @param pid     the process.
 * @param ppid    receives its parent's pid.
 * @param own     receives utime + stime, in clock ticks.
 * @param reaped  receives cutime + cstime (children it has waited for).
 * @return true if the file was read and parsed.
 */
static bool
proc_stat(long pid, long *ppid, unsigned long long *own,
          unsigned long long *reaped)
{
    char path[64], buf[1024];
    FILE *f;

    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    (void)fclose(f); /* read-only: nothing to lose at close */
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields start
     * after the last ')'. Field 3 (state) comes first. */
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return false;
    char state;
    unsigned long long ut, st, cut, cst;
    /* The kernel writes these fields: numbers that fit their types, so
     * sscanf's unreported overflow cannot happen. */
    /* NOLINTNEXTLINE(cert-err34-c) */
    if (sscanf(p + 1,
               " %c %ld %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu "
               "%llu",
               &state, ppid, &ut, &st, &cut, &cst) != 6)
        return false;
    *own = ut + st;
    *reaped = cut + cst;
    return true;
}

/**
 * @brief CPU nanoseconds used so far by every thread of one process.
 *
 * The first field of /proc/PID/task/TID/schedstat is the time the thread
 * has run, in ns: far finer than the 10 ms clock ticks of /proc/PID/stat,
 * which a run of a fraction of a second would round to nothing.
 * @param pid the process.
 * @return its threads' CPU time in ns; 0 if it is gone.
 */
static unsigned long long
proc_threads_ns(long pid)
{
    char path[96];
    unsigned long long total = 0, ns;
    DIR *d;
    struct dirent *e;

    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    d = opendir(path);
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/%ld/task/%.20s/schedstat", pid,
                 e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue; /* the thread just ended */
        /* The kernel's number: it fits (see proc_stat()). */
        /* NOLINTNEXTLINE(cert-err34-c) */
        if (fscanf(f, "%llu", &ns) == 1)
            total += ns;
        (void)fclose(f); /* read-only: nothing to lose at close */
    }
    closedir(d);
    return total;
}

/**
 * @brief CPU seconds used so far by a server and all its children.
 *
 * The server's own threads, what its reaped children used (cutime+cstime,
 * in clock ticks), and what its living children used: a child moves from
 * the last sum to the second when reaped, so the total only grows. The
 * caller takes the difference of two readings.
 * @param pid the server, or 0 for none.
 * @return CPU seconds, or 0 when @p pid is 0 or unreadable.
 */
static double
server_cpu_s(long pid)
{
    unsigned long long own, reaped, total;
    long ppid;
    DIR *d;
    struct dirent *e;

    if (pid <= 0 || !proc_stat(pid, &ppid, &own, &reaped))
        return 0;
    total = proc_threads_ns(pid) +
            reaped * 1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK);
    d = opendir("/proc");
    if (d != NULL) {
        while ((e = readdir(d)) != NULL) {
            char *end;
            long child = strtol(e->d_name, &end, 10);
            if (*end != '\0' || child <= 0 || child == pid)
                continue;
            if (proc_stat(child, &ppid, &own, &reaped) && ppid == pid)
                total += proc_threads_ns(child);
        }
        closedir(d);
    }
    return (double)total / 1e9;
}

/**
 * @brief Index of a latency in the histogram (log-linear buckets).
 *
 * Below #HIST_SUB ns each value has its own bucket; above, each power of
 * two is cut into #HIST_SUB buckets, so a bucket is at most 1/64 wide.
 * @param v latency in ns.
 * @return the bucket.
 */
static size_t
hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (size_t)v;
    int e = 63 - __builtin_clzll(v); /* >= 6 */
    uint64_t sub = (v >> (e - 6)) - HIST_SUB;
    return HIST_SUB + (size_t)(e - 6) * HIST_SUB + (size_t)sub;
}

/**
 * @brief The middle value of a histogram bucket.
 * @param i the bucket.
 * @return latency in ns that the bucket stands for.
 */
static double
hist_value(size_t i)
{
    if (i < HIST_SUB)
        return (double)i;
    size_t e = (i - HIST_SUB) / HIST_SUB + 6;
    size_t sub = (i - HIST_SUB) % HIST_SUB + HIST_SUB;
    double lo = (double)sub * (double)(1ull << (e - 6));
    return lo + (double)(1ull << (e - 6)) / 2;
}

/**
 * @brief A latency percentile, in microseconds.
 * @param g the generator.
 * @param p the fraction, e.g. 0.99.
 * @return the latency below which a fraction @p p of deliveries fell.
 */
static double
hist_percentile_us(const struct gen *g, double p)
{
    uint64_t total = 0, seen = 0;

    for (size_t i = 0; i < HIST_BUCKETS; i++)
        total += g->hist[i];
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)(p * (double)total);
    if (want < 1)
        want = 1;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += g->hist[i];
        if (seen >= want) {
            double v = hist_value(i);
            return (v > (double)g->max_ns ? (double)g->max_ns : v) / 1e3;
        }
    }
    return (double)g->max_ns / 1e3;
}

/**
 * @brief Reports one exactness error (the first few on stderr) and counts it.
 * @param g   the generator.
 * @param fmt printf-style description.
 */
static void __attribute__((format(printf, 2, 3)))
fail_event(struct gen *g, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (g->errors++ < ERRORS_SHOWN) {
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        log_msg("FAIL: %s", msg);
    } else if (g->errors == ERRORS_SHOWN + 1) {
        log_msg("FAIL: further errors are only counted");
    }
}

/**
 * @brief Whether to describe one more failure to join on stderr.
 *
 * A server that refuses a thousand connections would otherwise bury the
 * one line that matters; the first few are described, the rest counted
 * (the result line has `connected=`).
 * @param g the generator.
 * @return true for the first #ERRORS_SHOWN failures.
 */
static bool
join_say(struct gen *g)
{
    if (g->join_said < ERRORS_SHOWN) {
        g->join_said++;
        return true;
    }
    if (g->join_said++ == ERRORS_SHOWN)
        log_msg("further failures to join are only counted");
    return false;
}

/**
 * @brief The padding letters of a message, derived from its header fields.
 * @param s sender index.
 * @param q sequence number.
 * @param t send time.
 * @return a seed; letter i of the padding is pad_letter(seed, i).
 */
static uint32_t
pad_seed(uint32_t s, uint32_t q, uint64_t t)
{
    uint32_t h = s * 2654435761u ^ q * 40503u ^ (uint32_t)(t ^ (t >> 29));
    return h ^ (h >> 15);
}

/**
 * @brief One padding letter.
 * @param seed from pad_seed().
 * @param i    position in the padding.
 * @return a letter 'a'..'z'.
 */
static char
pad_letter(uint32_t seed, size_t i)
{
    return (char)('a' + (seed + (uint32_t)i * 7u) % 26u);
}

/**
 * @brief Writes one message's payload, exactly @p bytes long, no `\n`.
 * @param dst   where to write; room for @p bytes + 1.
 * @param bytes payload size, at least #PAYLOAD_HDR.
 * @param s     sender index.
 * @param q     sequence number.
 * @param t     send time, ns since the generator started.
 */
static void
payload_write(char *dst, size_t bytes, uint32_t s, uint32_t q, uint64_t t)
{
    uint32_t seed = pad_seed(s, q, t);

    snprintf(dst, PAYLOAD_HDR + 1, "%04x:%08x:%012llx:", (unsigned)s,
             (unsigned)q, (unsigned long long)(t & 0xffffffffffffull));
    for (size_t i = PAYLOAD_HDR; i < bytes; i++)
        dst[i] = pad_letter(seed, i);
}

/**
 * @brief Parses exactly @p n lowercase hex digits.
 * @param p text.
 * @param n digits to read.
 * @param v receives the value.
 * @return true if all @p n characters were hex digits.
 */
static bool
parse_hex(const char *p, size_t n, uint64_t *v)
{
    uint64_t x = 0;

    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c >= '0' && c <= '9')
            x = x << 4 | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            x = x << 4 | (uint64_t)(c - 'a' + 10);
        else
            return false;
    }
    *v = x;
    return true;
}

/**
 * @brief Puts a sender on the list of senders to top up after this pass.
 * @param g the generator.
 * @param s sender index.
 */
static void
flag_sender(struct gen *g, size_t s)
{
    if (!g->senders[s].flagged) {
        g->senders[s].flagged = true;
        g->flagged[g->nflagged++] = s;
    }
}

/**
 * @brief Counts one arrival of message @p q of sender @p s.
 *
 * A receiver gets a sender's messages in order, so when message q has
 * reached everyone, q-1 already had: `done` only moves forward.
 * @param g the generator.
 * @param s sender index.
 * @param q sequence number.
 */
static void
count_arrival(struct gen *g, size_t s, uint32_t q)
{
    struct sender *sd = &g->senders[s];
    uint32_t w = g->opt.window;
    uint32_t need = (uint32_t)g->receivers;

    sd->count[q % w]++;
    while (sd->done < sd->next && sd->count[sd->done % w] == need) {
        sd->count[sd->done % w] = 0;
        sd->done++;
        flag_sender(g, s);
    }
}

/**
 * @brief Checks one delivered payload and counts it.
 *
 * The same checks for every protocol: the sender index, sequence number
 * and send time parse; every padding byte is the one they imply; the
 * message is the next one due from that sender at this receiver (so
 * nothing was lost, duplicated or reordered before it); it was sent.
 * @param g    the generator.
 * @param r    the receiving connection.
 * @param id   chat: the `user<id>` it came from, checked against the
 *             sender's connection; 0 for Redis, which does not say.
 * @param p    the payload.
 * @param plen its length.
 * @param now  arrival time, ns since the generator started.
 */
static void
check_payload(struct gen *g, size_t r, unsigned long id, const char *p,
              size_t plen, uint64_t now)
{
    const struct options *o = &g->opt;
    uint64_t s, q, t;
    int shown = (int)(plen < 80 ? plen : 80);

    if (!g->running) {
        fail_event(g, "receiver %zu got a message before any was sent: %.*s", r,
                   shown, p);
        return;
    }
    if (plen != o->bytes || !parse_hex(p, 4, &s) || p[4] != ':' ||
        !parse_hex(p + 5, 8, &q) || p[13] != ':' ||
        !parse_hex(p + 14, 12, &t) || p[26] != ':' || s >= o->senders) {
        fail_event(g, "receiver %zu got a corrupted message (%zu bytes): %.*s",
                   r, plen, shown, p);
        return;
    }
    struct sender *sd = &g->senders[s];
    /* In the chat room the sender never hears itself; a Redis subscriber
     * hears every publisher, its own sender's too. */
    if (g->proto == PROTO_CHAT &&
        (g->conns[sd->conn].id != id || sd->conn == r)) {
        fail_event(g, "user%lu got sender %u's message as from user%lu",
                   g->conns[r].id, (unsigned)s, id);
        return;
    }
    uint32_t seed = pad_seed((uint32_t)s, (uint32_t)q, t);
    for (size_t k = PAYLOAD_HDR; k < plen; k++) {
        if (p[k] != pad_letter(seed, k)) {
            fail_event(g,
                       "receiver %zu got a corrupted message (byte %zu): "
                       "%.*s",
                       r, k, shown, p);
            return;
        }
    }
    uint32_t *exp = &g->expect[r * o->senders + s];
    if (q != *exp || q >= sd->next) {
        fail_event(g,
                   "receiver %zu: from sender %u expected message %u, got %u "
                   "(%s)",
                   r, (unsigned)s, (unsigned)*exp, (unsigned)q,
                   q >= sd->next ? "never sent"
                   : q < *exp    ? "duplicate or reordered"
                                 : "lost or reordered");
        if (q > *exp && q < sd->next)
            *exp = (uint32_t)q + 1; /* resynchronise: count the loss once */
        return;
    }
    (*exp)++;
    g->deliveries++;
    uint64_t lat = now > t ? now - t : 0;
    g->hist[hist_index(lat)]++;
    if (lat > g->max_ns)
        g->max_ns = lat;
    count_arrival(g, s, (uint32_t)q);
}

/**
 * @brief Checks one chat line `user<id>: <payload>` received by @p r.
 * @param g    the generator.
 * @param r    the receiving connection.
 * @param line the line, without `\n`.
 * @param len  its length.
 * @param now  arrival time, ns since the generator started.
 */
static void
on_message(struct gen *g, size_t r, const char *line, size_t len, uint64_t now)
{
    unsigned long id = 0;
    size_t i = 4;

    while (i < len && line[i] >= '0' && line[i] <= '9' && i < 24)
        id = id * 10 + (unsigned long)(line[i++] - '0');
    if (i == 4 || i + 2 > len || line[i] != ':' || line[i + 1] != ' ') {
        fail_event(g, "user%lu got a malformed line: %.*s", g->conns[r].id,
                   (int)(len < 80 ? len : 80), line);
        return;
    }
    check_payload(g, r, id, line + i + 2, len - i - 2, now);
}

/**
 * @brief Closes a connection that failed or that the server closed.
 * @param g the generator.
 * @param c the connection.
 */
static void
conn_close(struct gen *g, struct conn *c)
{
    if (c->state == CONN_CONNECTING || c->state == CONN_WELCOME) {
        g->inflight--;
        g->failed++;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->state = CONN_CLOSED;
}

/**
 * @brief Handles one complete line received by connection @p r.
 * @param g    the generator.
 * @param r    the connection.
 * @param line the line, without `\n`.
 * @param len  its length.
 * @param now  arrival time, ns since the generator started.
 */
static void
on_line(struct gen *g, size_t r, const char *line, size_t len, uint64_t now)
{
    struct conn *c = &g->conns[r];
    static const char welcome[] = "* welcome, you are user";

    if (c->state == CONN_WELCOME) {
        const char *digits = line + sizeof welcome - 1;
        char *end = NULL;
        unsigned long id = 0;
        /* strtoul stops at the ' ' after the id; the line's '\n' is in
         * the buffer, so it never reads past the line either. */
        if (len > sizeof welcome - 1 &&
            memcmp(line, welcome, sizeof welcome - 1) == 0 && *digits >= '0' &&
            *digits <= '9')
            id = strtoul(digits, &end, 10);
        if (end != NULL && *end == ' ') {
            c->id = id;
            c->state = CONN_READY;
            g->inflight--;
            g->ready++;
        } else {
            if (join_say(g))
                log_msg("connection %zu: expected a welcome, got: %.*s", r,
                        (int)(len < 80 ? len : 80), line);
            conn_close(g, c);
        }
        return;
    }
    if (len >= 2 && line[0] == '*' && line[1] == ' ') {
        if (len >= 24 && memcmp(line, "* server shutting down", 22) == 0)
            fail_event(g, "user%lu: the server is shutting down", c->id);
        return; /* joined / left notices */
    }
    if (len >= 4 && memcmp(line, "user", 4) == 0) {
        on_message(g, r, line, len, now);
        return;
    }
    fail_event(g, "user%lu got an unexpected line: %.*s", c->id,
               (int)(len < 80 ? len : 80), line);
}

/**
 * @brief Handles one RESP frame received by connection @p r.
 *
 * A subscriber is welcomed by its SUBSCRIBE reply (one subscription),
 * then gets `message` pushes from the channel; a publisher is welcomed
 * by `+PONG`, then gets one reply per PUBLISH: how many subscribers the
 * message reached, which must be all of them.
 * @param g   the generator.
 * @param r   the connection.
 * @param f   the frame.
 * @param now arrival time, ns since the generator started.
 */
static void
on_frame(struct gen *g, size_t r, const struct resp_frame *f, uint64_t now)
{
    struct conn *c = &g->conns[r];
    bool publisher = r >= g->opt.clients;

    if (c->state == CONN_WELCOME) {
        if (publisher
                ? !f->array && resp_is(f, 0, "PONG")
                : f->array && f->n == 3 && resp_is(f, 0, "subscribe") &&
                      resp_is(f, 1, REDIS_CHANNEL) && resp_is_int(f, 2, 1)) {
            c->state = CONN_READY;
            c->id = r + 1;
            g->inflight--;
            g->ready++;
        } else {
            if (join_say(g))
                log_msg("connection %zu: expected a %s reply, got a '%c' frame",
                        r, publisher ? "PING" : "SUBSCRIBE", f->item[0].type);
            conn_close(g, c);
        }
        return;
    }
    if (publisher) {
        size_t s = r - g->opt.clients;
        struct sender *sd = &g->senders[s];
        if (f->array || !resp_is_int(f, 0, (long long)g->receivers) ||
            sd->replies >= sd->next) {
            fail_event(g,
                       "publisher %zu: a PUBLISH reply that is not :%zu "
                       "(or one too many): '%c' %.*s",
                       s, g->receivers, f->item[0].type,
                       (int)(f->item[0].len < 80 ? f->item[0].len : 80),
                       f->item[0].p);
            return;
        }
        sd->replies++;
        flag_sender(g, s); /* may be what it waited for to finish */
        return;
    }
    if (f->array && f->n == 3 && resp_is(f, 0, "message") &&
        resp_is(f, 1, REDIS_CHANNEL) && f->item[2].type == '$') {
        check_payload(g, r, 0, f->item[2].p, f->item[2].len, now);
        return;
    }
    fail_event(g, "subscriber %zu got an unexpected '%c' frame", r,
               f->item[0].type);
}

/**
 * @brief A connection is readable: one recv(), then every complete line
 *        (chat) or frame (Redis).
 *
 * Level-triggered, one read per wake-up, so that no connection starves
 * the others. An unfinished line or frame waits in the connection's own
 * buffer.
 * @param g the generator.
 * @param r the connection.
 */
static void
on_readable(struct gen *g, size_t r)
{
    static char buf[LINE_CAP + READ_SIZE];
    struct conn *c = &g->conns[r];

    memcpy(buf, c->in, c->inlen);
    ssize_t n = recv(c->fd, buf + c->inlen, READ_SIZE, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
    }
    if (n <= 0) {
        if (c->state == CONN_READY)
            fail_event(g, "user%lu: connection %s", c->id,
                       n == 0 ? "closed by the server" : strerror(errno));
        else if (join_say(g))
            log_msg("connection %zu: %s before its welcome", r,
                    n == 0 ? "closed" : strerror(errno));
        conn_close(g, c);
        return;
    }
    uint64_t now = ns_since(&g->t0);
    size_t len = c->inlen + (size_t)n, start = 0;
    while (start < len) {
        if (g->proto == PROTO_CHAT) {
            char *nl = memchr(buf + start, '\n', len - start);
            if (nl == NULL)
                break;
            on_line(g, r, buf + start, (size_t)(nl - (buf + start)), now);
            start = (size_t)(nl - buf) + 1;
        } else {
            struct resp_frame f;
            long k = resp_parse(buf + start, len - start, &f);
            if (k == 0)
                break;
            if (k < 0) {
                fail_event(g, "connection %zu: not a RESP frame: %.*s", r,
                           (int)(len - start < 80 ? len - start : 80),
                           buf + start);
                conn_close(g, c);
                return;
            }
            on_frame(g, r, &f, now);
            start += (size_t)k;
        }
        if (c->state == CONN_CLOSED)
            return;
    }
    c->inlen = len - start;
    if (c->inlen > LINE_CAP) {
        fail_event(g, "connection %zu: a line longer than %d bytes", r,
                   LINE_CAP);
        conn_close(g, c);
        return;
    }
    memmove(c->in, buf + start, c->inlen);
}

/**
 * @brief The connection is up: say what a client says first, if anything.
 *
 * A chat client waits for the server's welcome. A Redis subscriber sends
 * SUBSCRIBE and a publisher PING; their replies are the welcome. A fresh
 * socket's send buffer takes a few dozen bytes whole.
 * @param g the generator.
 * @param r the connection.
 */
static void
conn_hello(struct gen *g, size_t r)
{
    struct conn *c = &g->conns[r];
    ssize_t n;

    if (g->proto != PROTO_REDIS)
        return;
    const char *cmd = r < g->opt.clients ? REDIS_SUBSCRIBE : REDIS_PING;
    size_t len = strlen(cmd);
    do
        n = send(c->fd, cmd, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)len) {
        if (n < 0 && join_say(g))
            log_errno("connection %zu: cannot send its first command", r);
        else if (n >= 0 && join_say(g))
            log_msg("connection %zu: its first command fell short", r);
        conn_close(g, c);
    }
}

/**
 * @brief Starts the nonblocking connect() of connection @p r.
 * @param g the generator.
 * @param r the connection.
 */
static void
conn_start(struct gen *g, size_t r)
{
    struct conn *c = &g->conns[r];
    int fd = socket(g->addr.ss_family,
                    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    g->started++;
    g->inflight++;
    c->state = CONN_CONNECTING;
    if (fd < 0) {
        if (join_say(g))
            log_errno("cannot create socket %zu", r);
        conn_close(g, c);
        return;
    }
    c->fd = fd;
    /* A real chat client's lines must not wait for the previous line's
     * ACK (Nagle); the server decides for its own side of the socket. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = r};
    bool now = false;
    if (connect(fd, (struct sockaddr *)&g->addr, g->addrlen) == 0) {
        c->state = CONN_WELCOME;
        ev.events = EPOLLIN;
        now = true;
    } else if (errno != EINPROGRESS) {
        if (join_say(g))
            log_errno("cannot connect socket %zu", r);
        conn_close(g, c);
        return;
    }
    if (epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        die_errno("epoll_ctl");
    if (now)
        conn_hello(g, r);
}

/**
 * @brief A connecting socket is writable: the connect() has finished.
 * @param g the generator.
 * @param r the connection.
 */
static void
on_connected(struct gen *g, size_t r)
{
    struct conn *c = &g->conns[r];
    int err = 0;
    socklen_t len = sizeof err;

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        errno = err;
        if (join_say(g))
            log_errno("cannot connect socket %zu", r);
        conn_close(g, c);
        return;
    }
    c->state = CONN_WELCOME;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = r};
    if (epoll_ctl(g->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die_errno("epoll_ctl");
    conn_hello(g, r);
}

/**
 * @brief Writes what a sender has queued; watches EPOLLOUT if it fell short.
 * @param g the generator.
 * @param s sender index.
 */
static void
sender_flush(struct gen *g, size_t s)
{
    struct sender *sd = &g->senders[s];
    struct conn *c = &g->conns[sd->conn];

    while (sd->outoff < sd->outlen && c->state == CONN_READY) {
        ssize_t n = send(c->fd, sd->out + sd->outoff, sd->outlen - sd->outoff,
                         MSG_NOSIGNAL);
        if (n > 0) {
            sd->outoff += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            fail_event(g, "user%lu: cannot send: %s", c->id, strerror(errno));
            conn_close(g, c);
            return;
        }
    }
    bool want = sd->outoff < sd->outlen;
    if (want != sd->wants_out && c->state == CONN_READY) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
                                 .data.u64 = sd->conn};
        if (epoll_ctl(g->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
            die_errno("epoll_ctl");
        sd->wants_out = want;
    }
    if (!want)
        sd->outoff = sd->outlen = 0;
}

/**
 * @brief When sender @p s is scheduled to send its message @p k (paced).
 *
 * Senders are spread evenly over one period, so that S senders at R
 * messages/s make one message every 1/(S R) seconds, not S at once.
 * @param g the generator.
 * @param s sender index.
 * @param k sequence number.
 * @return the scheduled time, ns since the generator started.
 */
static uint64_t
sched_ns(const struct gen *g, size_t s, uint32_t k)
{
    double period_ns = 1e9 / g->opt.rate;
    double slot = (double)k + (double)s / (double)g->opt.senders;

    return g->start_ns + (uint64_t)(slot * period_ns);
}

/**
 * @brief When a paced sender may send next, if nothing else holds it back.
 * @param g the generator.
 * @param s sender index.
 * @return the scheduled time of its next message, or UINT64_MAX when it is
 *         not paced, has stopped, is still writing, or its window is full
 *         (an arrival or EPOLLOUT wakes it then).
 */
static uint64_t
sender_due_ns(const struct gen *g, size_t s)
{
    const struct sender *sd = &g->senders[s];
    const struct options *o = &g->opt;

    if (o->rate <= 0 || !g->running || sd->stopped || sd->outoff < sd->outlen ||
        sd->next >= o->messages || sd->next - sd->done >= o->window)
        return UINT64_MAX;
    return sched_ns(g, s, sd->next);
}

/**
 * @brief Appends sender @p s's next message to its output, stamped @p t.
 *
 * Chat: the payload and `\n`. Redis: a PUBLISH command to the channel
 * with the payload as a bulk string.
 * @param g the generator.
 * @param s sender index.
 * @param t the send time it carries, ns since the generator started.
 */
static void
sender_compose(struct gen *g, size_t s, uint64_t t)
{
    struct sender *sd = &g->senders[s];
    size_t bytes = g->opt.bytes;
    char *dst = sd->out + sd->outlen;

    if (g->proto == PROTO_REDIS)
        dst += resp_publish_head(dst, bytes);
    payload_write(dst, bytes, (uint32_t)s, sd->next, t);
    dst += bytes;
    if (g->proto == PROTO_REDIS) {
        *dst++ = '\r';
        *dst++ = '\n';
    } else {
        *dst++ = '\n';
    }
    sd->outlen = (size_t)(dst - sd->out);
    sd->next++;
}

/**
 * @brief Fills a sender's window with new messages and sends them at once.
 *
 * Closed loop: each message is stamped with the time it is composed, and
 * all messages the window allows now leave in one send(), as a real
 * client would batch. Paced: only the messages whose scheduled time has
 * come, each stamped with its scheduled time. A sender is finished when
 * it has stopped and everything it sent reached everyone (and, with
 * Redis, every PUBLISH was answered).
 * @param g the generator.
 * @param s sender index.
 */
static void
sender_top_up(struct gen *g, size_t s)
{
    struct sender *sd = &g->senders[s];
    const struct options *o = &g->opt;

    if (sd->outoff < sd->outlen)
        return; /* still writing: EPOLLOUT will call back */
    uint64_t now = ns_since(&g->t0);
    if (o->rate <= 0 && now >= g->send_end_ns)
        sd->stopped = true;
    while (!sd->stopped && sd->next < o->messages &&
           sd->next - sd->done < o->window) {
        uint64_t t = now;
        if (o->rate > 0) {
            t = sched_ns(g, s, sd->next);
            if (t >= g->send_end_ns) {
                sd->stopped = true;
                break;
            }
            if (t > now)
                break; /* not yet: the loop wakes at sender_due_ns() */
        }
        sender_compose(g, s, t);
    }
    if (!sd->finished && sd->done == sd->next &&
        (sd->stopped || sd->next == o->messages) &&
        (g->proto == PROTO_CHAT || sd->replies == sd->next)) {
        sd->finished = true;
        g->senders_done++;
    }
    sender_flush(g, s);
}

/**
 * @brief Runs the event loop until @p done says so or the deadline passes.
 * @param g    the generator.
 * @param done predicate on the generator's state.
 * @return true if @p done became true, false on deadline or signal.
 */
static bool
run_until(struct gen *g, bool (*done)(const struct gen *))
{
    struct epoll_event events[EPOLL_BATCH];

    while (!done(g)) {
        uint64_t now = ns_since(&g->t0);
        if (now >= g->deadline_ns) {
            if (!g->holding)
                log_msg("deadline of %.0f s passed", g->opt.deadline_s);
            return false;
        }
        if (stop_requested)
            return false;
        /* Keep CONNECT_INFLIGHT connections joining at any time. */
        while (g->started < g->nconns && g->inflight < CONNECT_INFLIGHT)
            conn_start(g, g->started);

        /* Sleep until the deadline, a second at most, or until the next
         * paced message is due: to the nanosecond, not the millisecond. */
        uint64_t wake = g->deadline_ns;
        for (size_t s = 0; s < g->opt.senders && g->opt.rate > 0; s++) {
            uint64_t due = sender_due_ns(g, s);
            if (due < wake)
                wake = due;
        }
        uint64_t wait_ns = wake > now ? wake - now : 0;
        if (wait_ns > 1000000000u)
            wait_ns = 1000000000u;
        struct timespec ts = {.tv_sec = (time_t)(wait_ns / 1000000000u),
                              .tv_nsec = (long)(wait_ns % 1000000000u)};
        int n = epoll_pwait2(g->epfd, events, EPOLL_BATCH, &ts, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die_errno("epoll_pwait2");
        }
        for (int i = 0; i < n; i++) {
            size_t r = (size_t)events[i].data.u64;
            struct conn *c = &g->conns[r];
            if (c->state == CONN_CONNECTING) {
                on_connected(g, r);
                continue;
            }
            if (c->state == CONN_CLOSED)
                continue;
            if (events[i].events & EPOLLOUT) {
                for (size_t s = 0; s < g->opt.senders; s++)
                    if (g->senders[s].conn == r && g->senders[s].wants_out)
                        flag_sender(g, s);
            }
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(g, r);
        }
        if (g->opt.rate > 0) {
            now = ns_since(&g->t0);
            for (size_t s = 0; s < g->opt.senders; s++)
                if (sender_due_ns(g, s) <= now)
                    flag_sender(g, s);
        }
        while (g->nflagged > 0) {
            size_t s = g->flagged[--g->nflagged];
            g->senders[s].flagged = false;
            if (g->running) {
                if (g->senders[s].wants_out)
                    sender_flush(g, s);
                sender_top_up(g, s);
            }
        }
    }
    return true;
}

/**
 * @brief Done when every connection has joined or failed.
 * @param g the generator.
 * @return true when no connection is left to start or to welcome.
 */
static bool
all_joined(const struct gen *g)
{
    return g->ready + g->failed == g->nconns;
}

/**
 * @brief Done when every sender's every message reached everyone.
 * @param g the generator.
 * @return true at the end of a fan-out run.
 */
static bool
all_delivered(const struct gen *g)
{
    return g->senders_done == g->opt.senders || g->errors > 0;
}

/**
 * @brief Done only on an error: a hold runs until its deadline or a signal.
 * @param g the generator.
 * @return true once an exactness error (a dropped client) was seen.
 */
static bool
never(const struct gen *g)
{
    return g->errors > 0;
}

/**
 * @brief SIGINT/SIGTERM: end a hold.
 * @param sig the signal (unused).
 */
static void
on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/**
 * @brief Raises the descriptor limit to the hard limit: a client each.
 * @param need descriptors wanted.
 */
static void
raise_fd_limit(size_t need)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        die_errno("cannot read the descriptor limit");
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        die_errno("cannot raise the descriptor limit");
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        die("%zu clients need %zu descriptors, the hard limit is %lu",
            need - 16, need, (unsigned long)rl.rlim_cur);
}

/**
 * @brief Prints the usage text and exits.
 * @param status exit status: 0 for -h, #EXIT_USAGE for a mistake.
 */
static void __attribute__((noreturn)) usage(int status)
{
    fprintf(status == 0 ? stdout : stderr,
            "usage: loadgen [-m fanout|connect|hold] [-p chat|redis] "
            "[-n clients] [-s senders]\n"
            "               [-M messages] [-b bytes] [-w window] "
            "[-R messages-per-s]\n"
            "               [-t hold-seconds] [-d deadline-seconds] "
            "[-T send-seconds]\n"
            "               [-P server-pid] HOST PORT\n");
    exit(status);
}

/**
 * @brief Parses a positive number option within bounds, or exits 2.
 * @param name option letter, for the message.
 * @param text the argument.
 * @param lo   smallest allowed.
 * @param hi   largest allowed.
 * @return the value.
 */
static double
parse_num(char name, const char *text, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);

    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
        log_msg("-%c: expected a number from %g to %g, got '%s'", name, lo, hi,
                text);
        usage(EXIT_USAGE);
    }
    return v;
}

/**
 * @brief Parses the command line into @p g, or exits 2.
 * @param g    the generator.
 * @param argc argument count.
 * @param argv arguments.
 */
static void
parse_options(struct gen *g, int argc, char **argv)
{
    struct options *o = &g->opt;
    int ch;

    *o = (struct options){.mode = "fanout",
                          .proto = "chat",
                          .clients = 10,
                          .senders = 1,
                          .messages = 1000,
                          .bytes = 32,
                          .window = 64,
                          .hold_s = 5,
                          .deadline_s = 120};
    while ((ch = getopt(argc, argv, "hm:p:n:s:M:b:w:R:t:d:T:P:")) != -1) {
        switch (ch) {
        case 'h':
            usage(0);
        case 'm':
            o->mode = optarg;
            break;
        case 'p':
            o->proto = optarg;
            break;
        case 'R':
            o->rate = parse_num('R', optarg, 0.001, 1e9);
            break;
        case 'n':
            o->clients = (size_t)parse_num('n', optarg, 1, 1e6);
            break;
        case 's':
            o->senders = (size_t)parse_num('s', optarg, 1, 65535);
            break;
        case 'M':
            o->messages = (uint32_t)parse_num('M', optarg, 1, 4e9);
            break;
        case 'b':
            o->bytes = (size_t)parse_num('b', optarg, PAYLOAD_HDR, PAYLOAD_MAX);
            break;
        case 'w':
            o->window = (uint32_t)parse_num('w', optarg, 1, 1e6);
            break;
        case 't':
            o->hold_s = parse_num('t', optarg, 0, 86400);
            break;
        case 'd':
            o->deadline_s = parse_num('d', optarg, 0.1, 86400);
            break;
        case 'T':
            o->send_s = parse_num('T', optarg, 0, 86400);
            break;
        case 'P':
            o->server_pid = (long)parse_num('P', optarg, 1, 1e9);
            break;
        default:
            usage(EXIT_USAGE);
        }
    }
    if (argc - optind != 2)
        usage(EXIT_USAGE);
    if (strcmp(o->mode, "fanout") != 0 && strcmp(o->mode, "connect") != 0 &&
        strcmp(o->mode, "hold") != 0) {
        log_msg("-m: unknown mode '%s'", o->mode);
        usage(EXIT_USAGE);
    }
    if (strcmp(o->proto, "chat") == 0) {
        g->proto = PROTO_CHAT;
    } else if (strcmp(o->proto, "redis") == 0) {
        g->proto = PROTO_REDIS;
    } else {
        log_msg("-p: unknown protocol '%s'", o->proto);
        usage(EXIT_USAGE);
    }
    if (strcmp(o->mode, "fanout") == 0 &&
        (o->clients < 2 || o->senders > o->clients)) {
        log_msg("fanout needs at least 2 clients and no more senders than "
                "clients");
        usage(EXIT_USAGE);
    }
    if (net_parse_addr(argv[optind], argv[optind + 1], &g->addr, &g->addrlen) <
        0) {
        log_msg("not a numeric address and port: %s %s", argv[optind],
                argv[optind + 1]);
        usage(EXIT_USAGE);
    }
}

/**
 * @brief Allocates the connection and sender tables for the options.
 * @param g the generator.
 */
static void
gen_init(struct gen *g)
{
    const struct options *o = &g->opt;
    bool fanout = strcmp(o->mode, "fanout") == 0;
    bool redis = g->proto == PROTO_REDIS;

    /* Redis: subscribers 0..N-1, then sender s publishes on N+s. */
    g->fanout = fanout;
    g->nconns = o->clients + (fanout && redis ? o->senders : 0);
    g->receivers = redis ? o->clients : o->clients - 1;
    g->conns = calloc(g->nconns, sizeof *g->conns);
    g->senders = calloc(o->senders, sizeof *g->senders);
    g->flagged = calloc(o->senders, sizeof *g->flagged);
    g->expect = calloc(fanout ? o->clients * o->senders : 1, sizeof *g->expect);
    if (!g->conns || !g->senders || !g->flagged || !g->expect)
        die_errno("cannot allocate tables for %zu clients", o->clients);
    for (size_t i = 0; i < g->nconns; i++) {
        g->conns[i].fd = -1;
        g->conns[i].in = malloc(LINE_CAP);
        if (g->conns[i].in == NULL)
            die_errno("cannot allocate input buffers");
    }
    for (size_t s = 0; fanout && s < o->senders; s++) {
        g->senders[s].conn = redis ? o->clients + s : s;
        g->senders[s].count = calloc(o->window, sizeof(uint32_t));
        g->senders[s].out =
            malloc((size_t)o->window * (o->bytes + 1 + REDIS_CMD_OVERHEAD));
        if (!g->senders[s].count || !g->senders[s].out)
            die_errno("cannot allocate sender buffers");
    }
    g->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (g->epfd < 0)
        die_errno("epoll_create1");
    clock_gettime(CLOCK_MONOTONIC, &g->t0);
    g->deadline_ns = (uint64_t)(o->deadline_s * 1e9);
}

/**
 * @brief Runs the generator: join, then the mode's work, then one result
 *        line.
 * @param argc argument count.
 * @param argv arguments, see the file comment.
 * @return 0 if the run was exact and complete, 1 otherwise.
 */
int
main(int argc, char **argv)
{
    static struct gen g;
    const struct options *o = &g.opt;
    struct sigaction sa = {.sa_handler = on_stop_signal};

    parse_options(&g, argc, argv);
    struct sigaction ign = {.sa_handler = SIG_IGN};
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
        sigaction(SIGPIPE, &ign, NULL) < 0)
        die_errno("cannot set up signal handling");
    gen_init(&g);
    raise_fd_limit(g.nconns + 16);
    /* Paced sends are due every few microseconds: wake on time, not up
     * to the default 50 us late. */
    if (o->rate > 0 && prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL) < 0)
        log_errno("cannot shorten the timer slack");

    /* Every mode starts by joining all clients. */
    bool ok = run_until(&g, all_joined) && g.failed == 0;
    double connect_s = (double)ns_since(&g.t0) / 1e9;
    double seconds = 0, gen_cpu = 0, srv_cpu = 0;

    if (ok && g.fanout) {
        /* For a profiler waiting to start (tests/bench/profile.sh). */
        if (printf("sending clients=%zu\n", g.ready) < 0 ||
            fflush(stdout) == EOF)
            die_errno("cannot write to standard output");
        double cpu0 = self_cpu_s(), srv0 = server_cpu_s(o->server_pid);
        uint64_t start = ns_since(&g.t0);
        g.start_ns = start;
        g.send_end_ns =
            o->send_s > 0 ? start + (uint64_t)(o->send_s * 1e9) : UINT64_MAX;
        g.running = true;
        for (size_t s = 0; s < o->senders; s++)
            sender_top_up(&g, s);
        ok = run_until(&g, all_delivered) && g.errors == 0;
        seconds = (double)(ns_since(&g.t0) - start) / 1e9;
        gen_cpu = self_cpu_s() - cpu0;
        srv_cpu = server_cpu_s(o->server_pid) - srv0;
        uint64_t sent = 0;
        for (size_t s = 0; s < o->senders; s++)
            sent += g.senders[s].next;
        uint64_t want = sent * g.receivers;
        if (ok && g.deliveries != want) {
            log_msg("FAIL: %llu deliveries, expected %llu",
                    (unsigned long long)g.deliveries, (unsigned long long)want);
            ok = false;
        }
    } else if (ok && strcmp(o->mode, "hold") == 0) {
        if (printf("holding clients=%zu\n", g.ready) < 0 ||
            fflush(stdout) == EOF)
            die_errno("cannot write to standard output");
        uint64_t end = ns_since(&g.t0) + (uint64_t)(o->hold_s * 1e9);
        if (end < g.deadline_ns)
            g.deadline_ns = end;
        g.holding = true;
        run_until(&g, never);
        ok = g.errors == 0; /* deadline or signal: the hold is over */
    }
    if (g.errors > 0)
        ok = false;

    uint64_t sent_total = 0;
    for (size_t s = 0; s < o->senders && g.fanout; s++)
        sent_total += g.senders[s].next;
    printf("mode=%s proto=%s clients=%zu senders=%zu messages=%llu bytes=%zu "
           "window=%u rate=%.0f "
           "connected=%zu connect_s=%.4f connects_per_s=%.0f "
           "deliveries=%llu seconds=%.4f deliveries_per_s=%.0f "
           "p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
           "gen_cpu_s=%.3f srv_cpu_s=%.3f errors=%llu ok=%d\n",
           o->mode, o->proto, o->clients, o->senders,
           (unsigned long long)sent_total, o->bytes, o->window, o->rate,
           g.ready, connect_s, connect_s > 0 ? (double)g.ready / connect_s : 0,
           (unsigned long long)g.deliveries, seconds,
           seconds > 0 ? (double)g.deliveries / seconds : 0,
           hist_percentile_us(&g, 0.50), hist_percentile_us(&g, 0.99),
           hist_percentile_us(&g, 0.999), (double)g.max_ns / 1e3, gen_cpu,
           srv_cpu, (unsigned long long)g.errors, ok ? 1 : 0);
    /* The result line is what run.sh reads: losing it is a failure. */
    if (fflush(stdout) == EOF)
        die_errno("cannot write the result line");
    return ok ? 0 : 1;
}
