/**
 * @file tests/fuzz/protofuzz.c
 * @brief The protocol fuzzer: hostile clients against a real server, and
 *        well-behaved ones that must hear exactly what was said.
 *
 *     protofuzz [-s SEED] [-r ROUNDS] [-t SECONDS] [-S STEP] [-b BYTES]
 *               [-o OBSERVERS] [-w MS] [-q] SERVER [SERVER-OPTIONS...]
 *
 * It starts `SERVER SERVER-OPTIONS... 127.0.0.1 0` in a process group of
 * its own, reads the `listening on` line, and plays rounds until ROUNDS
 * or SECONDS run out (`-t 0`: no time limit). `protofuzz` without
 * arguments explains the options. In one round:
 *
 * - a few **observers** (well-behaved clients that stay connected from
 *   round to round) send ordinary lines now and then;
 * - one to six **fuzz clients** connect one after another and send random
 *   bytes (NUL, `\r`, invalid UTF-8, lines around the 1023-byte piece
 *   boundary, huge lines) in random splits with random pauses; some never
 *   read; each ends with a half-close, a close, a reset (SO_LINGER 0),
 *   sometimes in the middle of its bytes, or stays to the round's end;
 * - random signals reach the server: SIGPIPE and SIGCHLD (every step),
 *   SIGHUP to the server and to its whole process group (step 2 on),
 *   SIGHUP or SIGPIPE to a child, SIGKILL of a child or worker (steps 3
 *   and 4);
 * - at the end every observer sends a sync line, and the fuzzer waits
 *   until every observer has heard every other one's sync and every leave.
 *
 * Then it checks: the server process is alive; nothing in its stderr
 * reports a sanitizer error; a fresh client is welcomed; and every line
 * each observer received is accounted for. For each sender, an observer
 * must hear its join, then its messages -- exactly the ones the SPEC's
 * framing rules make of the bytes it wrote, in order, none twice -- then
 * its leave. Senders whose end cannot lose anything (observers, and fuzz
 * clients that read and half-close) must be heard completely; the others
 * (a reset, a close over unread data, a client that never reads and may
 * be dropped as slow, a client whose process the fuzzer killed) must be
 * heard as a prefix of what they sent. Fuzz clients that read are checked
 * the same way for what they heard, as a prefix.
 *
 * A SIGKILL is sent only while no connection is being set up: the fuzzer
 * first looks in /proc which connections the victim process holds, and
 * exactly those clients must then be disconnected (and announced as left);
 * every other observer must stay and keep hearing everything.
 *
 * Everything random comes from SEED (printed at the start): the same seed
 * replays the same bytes, splits, ends and signals, so a failing seed
 * reproduces. The exit status is 0 when every round passed, 1 on the first
 * failure (with the round, the seed and what was seen), 2 on bad usage.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/** Longest message (SPEC): longer lines are relayed in pieces of this. */
#define PIECE 1023
/** Most fuzz clients in one round. */
#define MAX_FUZZ 6
/** Most signals sent in one round. */
#define MAX_SIGNALS 4
/** Bytes taken from a socket per recv(). */
#define RX_CHUNK 65536
/** Most milliseconds of pauses between the writes of one client. */
#define PAUSES_MAX_MS 300
/** Shortest line a fuzz client may get as one huge line. */
#define HUGE_MIN 65536 /* 64 KiB */
/** Longest line a fuzz client may get as one huge line. */
#define HUGE_MAX (1024 * 1024)

/* ---- settings and run-wide state --------------------------------------- */

/** What the command line asked for. */
struct settings {
    uint64_t seed; /**< everything random derives from it */
    unsigned rounds; /**< most rounds, 0 for no limit */
    double seconds; /**< time budget for all rounds */
    int step; /**< 1-4: which signals the server must take */
    size_t budget; /**< most bytes the fuzz clients send per round */
    size_t observers; /**< well-behaved clients kept connected */
    long wait_ms; /**< deadline of every wait */
    bool quiet; /**< no line per round */
    char **server_argv; /**< SERVER and its options */
    int server_argc; /**< entries in #server_argv */
};

/** Figures for the closing summary. */
struct stats {
    unsigned rounds; /**< rounds passed */
    unsigned long fuzz_clients; /**< fuzz clients connected */
    unsigned long long bytes; /**< bytes written by fuzz clients */
    unsigned long writes; /**< send() calls of fuzz clients */
    unsigned long checked; /**< received messages matched to a sender */
    unsigned long resets; /**< SO_LINGER 0 closes */
    unsigned long half_closes; /**< shutdown(SHUT_WR) */
    unsigned long closes; /**< plain close() mid-stream */
    unsigned long signals; /**< signals sent to the server */
    unsigned long kills; /**< SIGKILLs of a child or worker */
    unsigned long victims; /**< clients disconnected by those kills */
    unsigned long huge; /**< huge lines sent */
    unsigned long dropped_readers; /**< fuzz readers the server dropped */
    unsigned long probes; /**< fresh clients welcomed after a round */
};

static struct settings opt;
static struct stats st;
/** The server's pid (also its process group). */
static pid_t server_pid;
/** The server's port on 127.0.0.1. */
static int server_port;
/** File receiving the server's stderr. */
static char err_path[64];
/** How far the server's stderr has been scanned for sanitizer reports. */
static long err_scanned;
/** The round being played, for failure messages. */
static unsigned cur_round;
/** Start of the run (CLOCK_MONOTONIC ms). */
static int64_t run_start;
/** The run is over: the server is being stopped, clients may be closed. */
static bool stopping;
/** Counts events, to order joins and ends of clients. */
static uint64_t event_seq;

/* ---- small helpers ------------------------------------------------------- */

/**
 * @brief Milliseconds of CLOCK_MONOTONIC.
 * @return the time now.
 */
static int64_t
now_ms(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static _Noreturn void failf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void dump_peers(void);

/**
 * @brief Prints the last bytes of the server's stderr, for a failure.
 */
static void
show_server_stderr(void)
{
    char buf[2048];
    int fd = open(err_path, O_RDONLY);

    if (fd < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > (off_t)sizeof buf - 1 ? end - (off_t)sizeof buf + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof buf - 1, from);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    fprintf(stderr, "--- the server's stderr (last %zd bytes; all in %s):\n%s",
            n, err_path, buf);
    if (buf[n - 1] != '\n')
        fputc('\n', stderr);
}

/**
 * @brief Reports a failed check, stops the server, exits 1.
 * @param fmt printf-style description of what was wrong.
 */
static void
failf(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "protofuzz: FAILED in round %u: ", cur_round);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    show_server_stderr();
    dump_peers();
    fprintf(stderr,
            "protofuzz: reproduce with: protofuzz -s %" PRIu64
            " -r %u -t 0 -S %d -b %zu -o %zu",
            opt.seed, cur_round, opt.step, opt.budget, opt.observers);
    for (int i = 0; i < opt.server_argc; i++)
        fprintf(stderr, " %s", opt.server_argv[i]);
    fputc('\n', stderr);
    if (server_pid > 0)
        kill(-server_pid, SIGKILL);
    exit(1);
}

/**
 * @brief Flushes standard output, where each round and the summary go.
 *
 * tests/fuzz/run.sh reads the seed and the summary from there: a line
 * that could not be written is a failure, not a silent loss.
 */
static void
flush_stdout(void)
{
    if (fflush(stdout) == EOF)
        failf("cannot write to standard output: %s", strerror(errno));
}

/**
 * @brief Reads a number of plain decimal digits, as the SPEC writes ports,
 *        ids and counts.
 *
 * strtoul() alone would also take leading blanks and a sign, and its
 * overflow would pass unseen; from the server, any of these is wrong.
 * @param s   the text, NUL-terminated.
 * @param v   receives the value.
 * @param end receives the first byte after the digits.
 * @return true if @p s starts with a digit and the value fits.
 */
static bool
parse_number(const char *s, unsigned long *v, const char **end)
{
    char *e;

    if (!isdigit((unsigned char)s[0]))
        return false;
    errno = 0;
    *v = strtoul(s, &e, 10);
    *end = e;
    return errno == 0;
}

/**
 * @brief malloc/realloc that cannot fail quietly.
 * @param p    the block to grow, or NULL.
 * @param size its new size.
 * @return the block.
 */
static void *
xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);

    if (q == NULL) {
        fprintf(stderr, "protofuzz: out of memory\n");
        exit(1);
    }
    return q;
}

/**
 * @brief Shows up to @p max bytes for a failure message, escaped.
 * @param p   the bytes.
 * @param n   their number.
 * @param out receives the text; 4 * max + 8 bytes.
 * @param max most bytes shown.
 * @return @p out.
 */
static char *
escape(const char *p, size_t n, char *out, size_t max)
{
    size_t k = 0;

    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= ' ' && c < 0x7f && c != '\\')
            out[k++] = (char)c;
        else
            k += (size_t)sprintf(out + k, "\\x%02x", c);
    }
    if (n > max)
        k += (size_t)sprintf(out + k, "...(%zu)", n);
    out[k] = '\0';
    return out;
}

/* ---- random numbers: splitmix64, one stream per client and round ------- */

/** A random stream. */
struct rng {
    uint64_t s; /**< state */
};

/**
 * @brief Next 64 random bits (splitmix64).
 * @param r the stream.
 * @return the bits.
 */
static uint64_t
rng_next(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/**
 * @brief A stream of its own for (seed, a, b): the draws of one client do
 *        not depend on how the others' events interleaved.
 * @param a first index (the round).
 * @param b second index (the client in the round).
 * @return the stream.
 */
static struct rng
rng_for(uint64_t a, uint64_t b)
{
    struct rng r = {opt.seed ^ (a * 0xd1342543de82ef95ULL) ^
                    (b * 0x2545f4914f6cdd1dULL)};

    rng_next(&r);
    return r;
}

/**
 * @brief A number in [0, n).
 * @param r the stream.
 * @param n the bound (0 gives 0).
 * @return the number.
 */
static size_t
rng_below(struct rng *r, size_t n)
{
    return n ? (size_t)(rng_next(r) % n) : 0;
}

/**
 * @brief True with probability @p pct percent.
 * @param r   the stream.
 * @param pct the chance in percent.
 * @return the outcome.
 */
static bool
chance(struct rng *r, unsigned pct)
{
    return rng_below(r, 100) < pct;
}

/* ---- byte buffers and the expected messages ----------------------------- */

/** A growable byte buffer. */
struct buf {
    char *p; /**< the bytes */
    size_t len; /**< bytes used */
    size_t cap; /**< bytes allocated */
};

/**
 * @brief Appends bytes.
 * @param b the buffer.
 * @param d the bytes.
 * @param n their number.
 */
static void
buf_add(struct buf *b, const void *d, size_t n)
{
    if (n == 0)
        return; /* b->p may still be NULL */
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

/**
 * @brief Drops the first @p n bytes.
 * @param b the buffer.
 * @param n bytes to drop, at most its length.
 */
static void
buf_drop(struct buf *b, size_t n)
{
    if (n == 0)
        return; /* b->p may still be NULL */
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

/**
 * @brief What one sender's bytes must become: the SPEC's framing, written
 *        plainly (the same rules tests/fuzz/fuzz_line.c holds the framer
 *        to).
 */
struct msgs {
    struct buf bytes; /**< every complete message, back to back */
    size_t *off; /**< start of message i in #bytes */
    size_t *len; /**< length of message i */
    size_t n; /**< complete messages */
    size_t cap; /**< entries allocated */
    struct buf line; /**< the line being written (no `\n` yet) */
    size_t line_off; /**< bytes of #line already given out as pieces */
};

/**
 * @brief Adds one message.
 * @param m the list.
 * @param p its bytes.
 * @param n their number.
 */
static void
msgs_push(struct msgs *m, const char *p, size_t n)
{
    if (m->n == m->cap) {
        m->cap = m->cap * 2 + 16;
        m->off = xrealloc(m->off, m->cap * sizeof *m->off);
        m->len = xrealloc(m->len, m->cap * sizeof *m->len);
    }
    m->off[m->n] = m->bytes.len;
    m->len[m->n] = n;
    buf_add(&m->bytes, p, n);
    m->n++;
}

/**
 * @brief Cuts one line into pieces of at most #PIECE bytes.
 * @param m the list.
 * @param p the line.
 * @param n its length; 0 is one empty message.
 */
static void
msgs_cut(struct msgs *m, const char *p, size_t n)
{
    size_t at = 0;

    do {
        size_t k = n - at < PIECE ? n - at : PIECE;
        msgs_push(m, p + at, k);
        at += k;
    } while (at < n);
}

/**
 * @brief Gives out the full pieces of the unfinished line that are sure.
 *
 * A server relays a piece as soon as it has more than #PIECE bytes of a
 * line -- unless byte 1024 is a `\r` that a `\n` may follow. Giving the
 * pieces out as early keeps the count of messages sent never behind what
 * a reader may hear (the rules stay those of whole lines: see
 * tests/fuzz/README.md).
 * @param m the sender's list.
 */
static void
msgs_pieces(struct msgs *m)
{
    for (;;) {
        size_t left = m->line.len - m->line_off;
        if (left < PIECE + 1 ||
            (left == PIECE + 1 && m->line.p[m->line_off + PIECE] == '\r'))
            break;
        msgs_push(m, m->line.p + m->line_off, PIECE);
        m->line_off += PIECE;
    }
    if (m->line_off > 0 && m->line_off >= m->line.len / 2) {
        buf_drop(&m->line, m->line_off);
        m->line_off = 0;
    }
}

/**
 * @brief Bytes a sender has written: every `\n` ends a line, which loses
 *        one `\r` at its end; a line is cut into pieces of #PIECE bytes.
 * @param m the sender's list.
 * @param p the bytes.
 * @param n their number.
 */
static void
msgs_feed(struct msgs *m, const char *p, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) : n;
        buf_add(&m->line, p, k);
        msgs_pieces(m);
        if (nl == NULL)
            return;
        size_t len = m->line.len - m->line_off;
        if (len > 0 && m->line.p[m->line.len - 1] == '\r')
            len--;
        /* What is left is one message (never empty after pieces). */
        if (len > 0)
            msgs_push(m, m->line.p + m->line_off, len);
        else if (m->line_off == 0)
            msgs_push(m, "", 0); /* an empty line */
        m->line.len = m->line_off = 0;
        p += k + 1;
        n -= k + 1;
    }
}

/**
 * @brief The sender's stream ended: a last line without `\n` (if any)
 *        counts, a final `\r` kept.
 * @param m the sender's list.
 */
static void
msgs_finish(struct msgs *m)
{
    if (m->line.len > m->line_off)
        msgs_cut(m, m->line.p + m->line_off, m->line.len - m->line_off);
    m->line.len = m->line_off = 0;
}

/* ---- clients ----------------------------------------------------------- */

/** What a client is for. */
enum kind {
    OBSERVER, /**< well-behaved, stays, hears everything */
    FUZZ, /**< hostile bytes, ends badly */
    PROBE, /**< a fresh client after a round: must be welcomed */
};

/** How a fuzz client ends. */
enum ending {
    END_HALF_CLOSE, /**< shutdown(SHUT_WR), then reads until the server
                         closes */
    END_RESET, /**< SO_LINGER 0 and close(): RST */
    END_CLOSE, /**< close() */
    END_AT_ROUND_END, /**< stays; half-closes (readers) or closes at the end */
};

/** One write of a client's plan. */
struct piece {
    size_t off; /**< start in the payload */
    size_t len; /**< bytes */
    int delay_ms; /**< pause before it */
};

/**
 * The per-sender state of one reading client.
 *
 * A sender that joined after the reader must be heard from its first
 * message on: #cursor is the next one. For a sender that was there before
 * the reader, the first message heard may be one it wrote just before the
 * reader joined (the server had not relayed it yet) -- but none after a
 * gap, and none that an observer had heard before the reader even
 * connected (#k_min: the server had relayed it while the reader was not
 * there). Where it starts is then known only up to equal messages (many
 * empty lines look alike), so the possible starts are kept in #cand until
 * one is left.
 */
struct view {
    size_t cursor; /**< next expected message of that sender */
    size_t k_join; /**< that sender's messages when the reader joined */
    size_t k_min; /**< its messages an observer heard before the reader
                       connected: the reader must not hear them */
    bool old_join; /**< its join was heard before the reader connected */
    bool old_left; /**< its leave was heard before the reader connected */
    bool before; /**< the sender was there before the reader joined */
    bool joined; /**< its join was heard */
    bool left; /**< its leave was heard */
    bool started; /**< a message of it was heard (before-senders) */
    bool resolved; /**< before-sender: one start left, #cursor is right */
    size_t *cand; /**< before-sender: the possible first messages */
    size_t ncand; /**< entries in #cand */
    size_t heard; /**< before-sender: messages heard while unresolved */
};

/** A connection the fuzzer plays. */
struct peer {
    enum kind kind; /**< what it is for */
    size_t index; /**< its place in #peers */
    int fd; /**< its socket, -1 once closed */
    int port; /**< its local port, to find it in /proc */
    unsigned long id; /**< user<id>, from its welcome */
    bool welcomed; /**< its welcome has arrived */
    bool reads; /**< reads its socket after the welcome */
    bool exact; /**< everything it sent must be heard */
    bool eof; /**< the server closed (or reset) its connection */
    bool finished; /**< it has stopped sending: ended, or killed */
    bool victim; /**< the fuzzer killed the process serving it */
    bool dropped; /**< the server dropped it before it ended */
    bool half_closed; /**< waits for the server to close after EOF */
    bool retired; /**< done, heard leaving: its bytes are freed */
    uint64_t join_seq; /**< #event_seq when it was welcomed */
    uint64_t end_seq; /**< #event_seq when it finished */
    int64_t connect_at; /**< when the connection was started */
    /* the plan */
    struct buf payload; /**< every byte it means to send */
    struct piece *pieces; /**< the writes */
    size_t npieces; /**< entries in #pieces */
    size_t next; /**< the piece being written */
    size_t done; /**< bytes of it written */
    int64_t due; /**< when it may be written */
    size_t end_after; /**< pieces written before the ending */
    enum ending ending; /**< how it ends */
    /* what it sent and heard */
    struct msgs msgs; /**< its messages, as the SPEC frames its bytes */
    struct buf rx; /**< bytes heard, not yet checked */
    struct view *views; /**< [peer index]: per sender */
    size_t nviews; /**< entries in #views */
};

/** Every client of the run, in the order of connection (= of ids). */
static struct peer **peers;
/** Entries in #peers. */
static size_t npeers;

/**
 * @brief A new client in the table (not connected yet).
 * @param kind what it is for.
 * @return its index.
 */
static size_t
peer_new(enum kind kind)
{
    struct peer *p = xrealloc(NULL, sizeof *p);

    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->fd = -1;
    p->index = npeers;
    /* Grown at powers of two. #peers holds pointers, so sizeof *peers is
     * one pointer, as meant; the check takes every sizeof of a pointer to
     * a struct for a mistaken sizeof(&s). */
    if ((npeers & (npeers - 1)) == 0)
        /* NOLINTNEXTLINE(bugprone-sizeof-expression) */
        peers = xrealloc(peers, (npeers ? npeers * 2 : 1) * sizeof *peers);
    peers[npeers] = p;
    return npeers++;
}

/**
 * @brief The client whose id is @p id (ids grow with the index).
 * @param id a user id.
 * @return the client, or NULL if no client of ours has it.
 */
static struct peer *
peer_by_id(unsigned long id)
{
    size_t lo = 0, hi = npeers;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        unsigned long m = peers[mid]->id;
        if (m == 0 || m > id) /* not welcomed yet: later than any known */
            hi = mid;
        else if (m < id)
            lo = mid + 1;
        else
            return peers[mid];
    }
    return NULL;
}

/**
 * @brief The index of a client in #peers.
 * @param p the client.
 * @return its index.
 */
static size_t
peer_index(const struct peer *p)
{
    return p->index;
}

/**
 * @brief Connects a client to the server (nonblocking, TCP_NODELAY so
 *        that small writes leave as small segments).
 * @param p the client.
 */
static void
peer_connect(struct peer *p)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)server_port)};
    int one = 1;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    p->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0)
        failf("socket: %s", strerror(errno));
    setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(p->fd, (struct sockaddr *)&sa, sizeof sa) < 0 &&
        errno != EINPROGRESS)
        failf("cannot connect to 127.0.0.1:%d: %s", server_port,
              strerror(errno));
    /* Zeroed: a port getsockname() did not fill in reads as 0. */
    struct sockaddr_in me = {0};
    socklen_t len = sizeof me;
    if (getsockname(p->fd, (struct sockaddr *)&me, &len) < 0)
        failf("getsockname: %s", strerror(errno));
    p->port = ntohs(me.sin_port);
    p->connect_at = now_ms();
}

/**
 * @brief Closes a client's socket (if still open).
 * @param p     the client.
 * @param reset true for SO_LINGER 0: the kernel sends RST.
 */
static void
peer_close(struct peer *p, bool reset)
{
    if (p->fd < 0)
        return;
    if (reset) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(p->fd);
    p->fd = -1;
}

/**
 * @brief The client stops sending: what it wrote is all there will be.
 * @param p the client.
 */
static void
peer_finish(struct peer *p)
{
    if (p->finished)
        return;
    p->finished = true;
    p->end_seq = ++event_seq;
    p->next = p->npieces;
    msgs_finish(&p->msgs);
}

/**
 * @brief On a failure, writes what each client sent to $PROTOFUZZ_DUMP.
 *
 * `DIR/user<id>.sent` holds the bytes the client wrote, in order, and
 * `DIR/user<id>.pieces` one line per write: offset, length, pause, so a
 * failure can be replayed with any tool.
 */
static void
dump_peers(void)
{
    const char *dir = getenv("PROTOFUZZ_DUMP");
    char path[512];

    if (dir == NULL || *dir == '\0')
        return;
    mkdir(dir, 0700);
    for (size_t i = 0; i < npeers; i++) {
        struct peer *p = peers[i];
        size_t written = p->next < p->npieces
                             ? p->pieces[p->next].off + p->done
                             : (p->npieces ? p->pieces[p->npieces - 1].off +
                                                 p->pieces[p->npieces - 1].len
                                           : 0);
        if (p->finished && p->next < p->npieces)
            written = p->pieces[p->next].off + p->done;
        snprintf(path, sizeof path, "%s/user%lu.sent", dir, p->id);
        FILE *f = fopen(path, "w");
        if (f == NULL)
            continue;
        if (written > 0)
            fwrite(p->payload.p, 1, written, f);
        if (fclose(f) != 0) /* also reports a failed fwrite() */
            fprintf(stderr, "protofuzz: cannot write %s: %s\n", path,
                    strerror(errno));
        snprintf(path, sizeof path, "%s/user%lu.pieces", dir, p->id);
        f = fopen(path, "w");
        if (f == NULL)
            continue;
        for (size_t k = 0; k < p->npieces; k++)
            fprintf(f, "%zu %zu %d\n", p->pieces[k].off, p->pieces[k].len,
                    p->pieces[k].delay_ms);
        if (fclose(f) != 0)
            fprintf(stderr, "protofuzz: cannot write %s: %s\n", path,
                    strerror(errno));
    }
    fprintf(stderr, "protofuzz: what each client sent is in %s/\n", dir);
}

/* ---- the server ---------------------------------------------------------- */

/**
 * @brief Starts the server and reads its `listening on` line.
 */
static void
server_start(void)
{
    int out[2];

    snprintf(err_path, sizeof err_path, "/tmp/protofuzz-%ld.err",
             (long)getpid());
    int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (err < 0 || pipe2(out, O_CLOEXEC) < 0) {
        fprintf(stderr, "protofuzz: cannot set up the server's output: %s\n",
                strerror(errno));
        exit(1);
    }
    char **argv = xrealloc(NULL, (size_t)(opt.server_argc + 3) * sizeof *argv);
    for (int i = 0; i < opt.server_argc; i++)
        argv[i] = opt.server_argv[i];
    argv[opt.server_argc] = "127.0.0.1";
    argv[opt.server_argc + 1] = "0";
    argv[opt.server_argc + 2] = NULL;

    server_pid = fork();
    if (server_pid < 0) {
        fprintf(stderr, "protofuzz: fork: %s\n", strerror(errno));
        exit(1);
    }
    if (server_pid == 0) {
        /* A group of its own: a SIGHUP to the group reaches the server
         * and its children, never the fuzzer. */
        setpgid(0, 0);
        /* Never outlive the fuzzer, even if it crashes. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* The fuzzer ignores SIGPIPE, and exec would keep it ignored. */
        if (signal(SIGPIPE, SIG_DFL) == SIG_ERR ||
            dup2(out[1], STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0) {
            fprintf(stderr, "protofuzz: cannot set up %s: %s\n", argv[0],
                    strerror(errno));
            _exit(127);
        }
        execv(argv[0], argv);
        fprintf(stderr, "protofuzz: cannot run %s: %s\n", argv[0],
                strerror(errno));
        _exit(127);
    }
    setpgid(server_pid, server_pid); /* whichever of us runs first */
    close(out[1]);
    close(err);
    free(argv);

    char line[256] = "";
    size_t len = 0;
    int64_t deadline = now_ms() + opt.wait_ms;
    while (memchr(line, '\n', len) == NULL) {
        struct pollfd pfd = {.fd = out[0], .events = POLLIN};
        int ms = (int)(deadline - now_ms());
        if (len == sizeof line - 1) /* full, and no line break in it */
            failf("not a listening line: %s", line);
        if (ms <= 0 || poll(&pfd, 1, ms) <= 0)
            failf("no 'listening on' line from %s", opt.server_argv[0]);
        ssize_t n = read(out[0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            failf("%s exited before listening", opt.server_argv[0]);
        len += (size_t)n;
        line[len] = '\0';
    }
    const char *end;
    unsigned long port;
    if (strncmp(line, "listening on 127.0.0.1:", 23) != 0 ||
        !parse_number(line + 23, &port, &end) || *end != '\n' || port == 0 ||
        port > 65535)
        failf("not a listening line: %s", line);
    server_port = (int)port;
    close(out[0]);
}

/**
 * @brief Fails if the server's stderr reports a sanitizer error (of the
 *        server or of any of its children, which share it).
 */
static void
scan_stderr(void)
{
    /* ASan, UBSan and LSan reports of the server and its children. */
    static const char *const marks[] = {"ERROR: AddressSanitizer",
                                        "ERROR: LeakSanitizer",
                                        "runtime error:", "Sanitizer:"};
    char buf[8192];
    int fd = open(err_path, O_RDONLY);
    if (fd < 0)
        return;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof buf - 1, err_scanned);
        if (n <= 0)
            break;
        buf[n] = '\0';
        /* Look only at whole lines; a cut one is scanned next time. */
        char *last = strrchr(buf, '\n');
        if (last == NULL)
            break;
        last[1] = '\0';
        for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
            if (strstr(buf, marks[i]) != NULL) {
                close(fd);
                failf("the server's stderr reports: %s", marks[i]);
            }
        err_scanned += last + 1 - buf;
    }
    close(fd);
}

/**
 * @brief Checks that the server still runs, and scan_stderr().
 */
static void
server_check(void)
{
    int status;
    pid_t r = waitpid(server_pid, &status, WNOHANG);

    if (r == server_pid) {
        server_pid = 0;
        if (WIFSIGNALED(status))
            failf("the server died of signal %d", WTERMSIG(status));
        failf("the server exited with status %d", WEXITSTATUS(status));
    }
    scan_stderr();
}

/**
 * @brief The server's child processes, from /proc.
 * @param out receives their pids, sorted.
 * @param max room in @p out.
 * @return how many.
 */
static size_t
server_children(pid_t *out, size_t max)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    size_t n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL && n < max) {
        unsigned long pid;
        const char *end;
        if (!parse_number(e->d_name, &pid, &end) || *end != '\0')
            continue; /* not a process */
        char path[300], stat[512];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t k = read(fd, stat, sizeof stat - 1);
        close(fd);
        if (k <= 0)
            continue;
        stat[k] = '\0';
        char *rp = strrchr(stat, ')'); /* the name may hold spaces */
        char state;
        int ppid;
        /* The kernel writes these fields: a pid fits an int, so sscanf's
         * unreported overflow cannot happen. */
        /* NOLINTNEXTLINE(cert-err34-c) */
        if (rp != NULL && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 &&
            ppid == server_pid && state != 'Z')
            out[n++] = (pid_t)pid;
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) /* few entries: insertion sort */
        for (size_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
            pid_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

/**
 * @brief Marks the clients whose connection process @p pid holds.
 *
 * The process's socket inodes (/proc/PID/fd) are looked up in
 * /proc/net/tcp{,6}: a connection to the server's port names the
 * client's port, which names our client.
 * @param pid a child or worker of the server.
 * @return how many clients were marked as victims.
 */
static size_t
mark_victims(pid_t pid)
{
    unsigned long inodes[4096];
    size_t ninodes = 0, marked = 0;
    char path[64], link[64];

    snprintf(path, sizeof path, "/proc/%ld/fd", (long)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && ninodes < 4096) {
        char fdpath[320];
        snprintf(fdpath, sizeof fdpath, "%s/%s", path, e->d_name);
        ssize_t k = readlink(fdpath, link, sizeof link - 1);
        if (k <= 0)
            continue;
        link[k] = '\0';
        unsigned long ino;
        /* The kernel writes the link: an inode number fits, so sscanf's
         * unreported overflow cannot happen. */
        /* NOLINTNEXTLINE(cert-err34-c) */
        if (sscanf(link, "socket:[%lu]", &ino) == 1)
            inodes[ninodes++] = ino;
    }
    closedir(d);

    static const char *const tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (size_t t = 0; t < 2; t++) {
        FILE *f = fopen(tables[t], "r");
        char line[512];
        if (f == NULL)
            continue;
        while (fgets(line, sizeof line, f) != NULL) {
            char local[64], remote[64];
            unsigned long ino;
            /* The kernel's table, as above. */
            /* NOLINTNEXTLINE(cert-err34-c) */
            if (sscanf(line, " %*s %63s %63s %*s %*s %*s %*s %*s %*s %lu",
                       local, remote, &ino) != 3)
                continue;
            char *lp = strrchr(local, ':'), *rp = strrchr(remote, ':');
            if (lp == NULL || rp == NULL ||
                strtol(lp + 1, NULL, 16) != server_port)
                continue;
            bool ours = false;
            for (size_t i = 0; i < ninodes && !ours; i++)
                ours = inodes[i] == ino;
            if (!ours)
                continue;
            int port = (int)strtol(rp + 1, NULL, 16);
            for (size_t i = 0; i < npeers; i++) {
                struct peer *p = peers[i];
                if (p->fd >= 0 && p->port == port && !p->victim) {
                    p->victim = true;
                    p->exact = false;
                    peer_finish(p);
                    marked++;
                }
            }
        }
        (void)fclose(f); /* read-only: nothing to lose at close */
    }
    return marked;
}

/* ---- hearing: the checks of every line a client receives -------------- */

/**
 * @brief Gives a reader a view of every client there now (before-senders).
 * @param r the reader, just welcomed.
 */
static void
views_start(struct peer *r)
{
    for (size_t i = 0; i < r->nviews; i++) {
        r->views[i].k_join = r->views[i].cursor = peers[i]->msgs.n;
        r->views[i].before = true;
    }
}

/**
 * @brief How many of the sender's messages the observer has surely heard.
 * @param v the observer's view of the sender.
 * @return the count (0 if it has heard none since it joined).
 */
static size_t
view_heard(const struct view *v)
{
    if (!v->before || v->resolved)
        return v->cursor;
    return v->started ? v->cand[0] + v->heard : 0;
}

static void hear(struct peer *r);

/**
 * @brief Right before a reader connects: what the observers have heard
 *        so far was relayed while it was not there, and must not reach it.
 *
 * Every client there now gets a view in the new reader; the observers'
 * streams are checked up to here first (no client is being connected,
 * so every id they may name is known).
 * @param r the reader about to connect (already in #peers).
 */
static void
views_before_connect(struct peer *r)
{
    for (size_t j = 0; j < npeers; j++) {
        struct peer *o = peers[j];
        if (o != r && o->kind == OBSERVER && !o->finished && o->welcomed)
            hear(o);
    }
    r->views = xrealloc(NULL, npeers * sizeof *r->views);
    r->nviews = npeers;
    for (size_t i = 0; i < npeers; i++) {
        struct view *v = &r->views[i];
        *v = (struct view){.before = true};
        for (size_t j = 0; j < npeers; j++) {
            struct peer *o = peers[j];
            if (j == i || o == r || o->kind != OBSERVER || o->finished ||
                i >= o->nviews)
                continue;
            const struct view *w = &o->views[i];
            size_t k = view_heard(w);
            if (k > v->k_min)
                v->k_min = k;
            v->old_join = v->old_join || w->joined;
            v->old_left = v->old_left || w->left;
        }
    }
}

/**
 * @brief The reader's view of sender @p s, grown as clients join.
 * @param r the reader.
 * @param s index of the sender.
 * @return the view.
 */
static struct view *
view_of(struct peer *r, size_t s)
{
    if (s >= r->nviews) {
        r->views = xrealloc(r->views, npeers * sizeof *r->views);
        memset(r->views + r->nviews, 0,
               (npeers - r->nviews) * sizeof *r->views);
        r->nviews = npeers;
    }
    return &r->views[s];
}

/**
 * @brief Is message @p j of sender @p s these bytes?
 * @param s   the sender.
 * @param j   index of one of its messages, below its count.
 * @param msg the bytes heard.
 * @param len their number.
 * @return true if they match.
 */
static bool
msg_is(const struct peer *s, size_t j, const char *msg, size_t len)
{
    return s->msgs.len[j] == len &&
           (len == 0 ||
            memcmp(s->msgs.bytes.p + s->msgs.off[j], msg, len) == 0);
}

/**
 * @brief Has the reader heard every message of the sender so far?
 * @param v the reader's view of the sender.
 * @param n the sender's messages.
 * @return true if so.
 */
static bool
view_complete(const struct view *v, size_t n)
{
    if (!v->before || v->resolved)
        return v->cursor == n;
    if (!v->started)
        return v->k_join == n;
    for (size_t i = 0; i < v->ncand; i++)
        if (v->cand[i] + v->heard == n)
            return true;
    return false;
}

/**
 * @brief How many of the sender's messages the reader has (for messages).
 * @param v the reader's view of the sender.
 * @return the count (the smallest possible while unresolved).
 */
static size_t
view_got(const struct view *v)
{
    if (!v->before || v->resolved)
        return v->cursor;
    if (!v->started)
        return v->k_join;
    return v->cand[0] + v->heard;
}

/**
 * @brief A message from a sender that was there before the reader, while
 *        where the reader came in is not known for sure.
 * @param r   the reader.
 * @param s   the sender.
 * @param v   the reader's view of it.
 * @param msg the bytes heard.
 * @param len their number.
 */
static void
hear_before(struct peer *r, struct peer *s, struct view *v, const char *msg,
            size_t len)
{
    char shown[4 * 80 + 16];
    size_t kept = 0;

    if (!v->started) {
        size_t top = v->k_join < s->msgs.n ? v->k_join + 1 : s->msgs.n;
        v->cand = xrealloc(NULL, (top + 1) * sizeof *v->cand);
        for (size_t j = v->k_min; j < top; j++)
            if (msg_is(s, j, msg, len))
                v->cand[kept++] = j;
        v->started = true;
    } else {
        for (size_t i = 0; i < v->ncand; i++) {
            size_t j = v->cand[i];
            if (j + v->heard < s->msgs.n && msg_is(s, j + v->heard, msg, len))
                v->cand[kept++] = j;
        }
    }
    if (kept == 0)
        failf("user%lu heard from user%lu (there before it) a message it "
              "never sent, or one after a gap: '%s'",
              r->id, s->id, escape(msg, len, shown, 80));
    v->ncand = kept;
    v->heard++;
    if (kept == 1) {
        v->cursor = v->cand[0] + v->heard;
        v->resolved = true;
        free(v->cand);
        v->cand = NULL;
    }
}

/**
 * @brief Reads "user<digits>" at @p p.
 * @param p   the text.
 * @param n   its length.
 * @param id  receives the number.
 * @param end receives the offset after the digits.
 * @return true if @p p starts so.
 */
static bool
parse_user(const char *p, size_t n, unsigned long *id, size_t *end)
{
    size_t i = 4;

    if (n < 5 || memcmp(p, "user", 4) != 0 || !isdigit((unsigned char)p[4]))
        return false;
    *id = 0;
    while (i < n && isdigit((unsigned char)p[i]) && i < 24)
        *id = *id * 10 + (unsigned long)(p[i++] - '0');
    *end = i;
    return true;
}

/**
 * @brief Checks one line heard by reader @p r against what was sent.
 * @param r the reader.
 * @param p the line, without `\n`.
 * @param n its length.
 */
static void
hear_line(struct peer *r, const char *p, size_t n)
{
    char shown[4 * 80 + 16];
    unsigned long id;
    size_t at;

    if (n >= 2 && p[0] == '*' && p[1] == ' ' &&
        parse_user(p + 2, n - 2, &id, &at)) {
        const char *what = p + 2 + at;
        size_t wlen = n - 2 - at;
        bool join = wlen == 7 && memcmp(what, " joined", 7) == 0;
        bool left = wlen == 5 && memcmp(what, " left", 5) == 0;
        struct peer *s = peer_by_id(id);
        if (!join && !left)
            failf("user%lu heard a notice that is no notice: '%s'", r->id,
                  escape(p, n, shown, 80));
        if (s == NULL)
            failf("user%lu heard '%s' about a user nobody connected", r->id,
                  escape(p, n, shown, 80));
        if (s == r)
            failf("user%lu heard its own %s", r->id, join ? "join" : "leave");
        struct view *v = view_of(r, peer_index(s));
        if (v->left)
            failf("user%lu heard user%lu %s after its leave", r->id, id,
                  join ? "join" : "leave");
        if ((join && v->old_join) || (left && v->old_left))
            failf("user%lu heard user%lu %s, which an observer had heard "
                  "before user%lu connected",
                  r->id, id, join ? "join" : "leave", r->id);
        if (join) {
            if (v->joined || v->started || (!v->before && v->cursor > 0))
                failf("user%lu heard user%lu join twice or after its "
                      "messages",
                      r->id, id);
            v->joined = true;
            return;
        }
        if (!v->before && !v->joined)
            failf("user%lu heard user%lu leave before it joined", r->id, id);
        if (!s->finished && s->kind == OBSERVER)
            failf("user%lu heard user%lu leave, but it is still connected "
                  "and reading",
                  r->id, id);
        if (s->finished && s->exact && !view_complete(v, s->msgs.n))
            failf("user%lu heard user%lu leave after %zu of its %zu "
                  "messages (it ended cleanly: all must arrive)",
                  r->id, id, view_got(v), s->msgs.n);
        v->left = true;
        return;
    }

    if (!parse_user(p, n, &id, &at) || n - at < 2 || p[at] != ':' ||
        p[at + 1] != ' ')
        failf("user%lu heard a line that is neither a message nor a "
              "notice: '%s'",
              r->id, escape(p, n, shown, 80));
    struct peer *s = peer_by_id(id);
    if (s == NULL)
        failf("user%lu heard a message from user%lu, whom nobody connected",
              r->id, id);
    if (s == r)
        failf("user%lu heard its own message", r->id);
    struct view *v = view_of(r, peer_index(s));
    const char *msg = p + at + 2;
    size_t mlen = n - at - 2;
    if (s->retired)
        failf("user%lu heard a message from user%lu, which had left (and "
              "been heard leaving) before: '%s'",
              r->id, id, escape(msg, mlen, shown, 80));
    if (v->left)
        failf("user%lu heard a message from user%lu after its leave: '%s'",
              r->id, id, escape(msg, mlen, shown, 80));
    if (!v->before && !v->joined)
        failf("user%lu heard a message from user%lu before its join", r->id,
              id);
    if (v->before && !v->resolved) {
        hear_before(r, s, v, msg, mlen);
        st.checked++;
        return;
    }
    if (v->cursor >= s->msgs.n)
        failf("user%lu heard from user%lu more messages than it sent "
              "(%zu): '%s'",
              r->id, id, s->msgs.n, escape(msg, mlen, shown, 80));
    size_t k = v->cursor;
    if (!msg_is(s, k, msg, mlen)) {
        char want[4 * 80 + 16];
        failf(
            "user%lu heard from user%lu, as message %zu of %zu:\n  got  "
            "'%s' (%zu bytes)\n  want '%s' (%zu bytes)",
            r->id, id, k + 1, s->msgs.n, escape(msg, mlen, shown, 80), mlen,
            escape(s->msgs.bytes.p + s->msgs.off[k], s->msgs.len[k], want, 80),
            s->msgs.len[k]);
    }
    v->cursor++;
    st.checked++;
}

/**
 * @brief Checks every complete line a reader has heard so far.
 * @param r the reader.
 */
static void
hear(struct peer *r)
{
    size_t at = 0;

    while (at < r->rx.len) {
        char *nl = memchr(r->rx.p + at, '\n', r->rx.len - at);
        if (nl == NULL)
            break;
        size_t n = (size_t)(nl - (r->rx.p + at));
        hear_line(r, r->rx.p + at, n);
        at += n + 1;
    }
    buf_drop(&r->rx, at);
}

/**
 * @brief Takes a client's welcome off the front of what it heard.
 * @param p the client.
 * @return true once the welcome was there and was right.
 */
static bool
take_welcome(struct peer *p)
{
    static const char head[] = "* welcome, you are user";
    static const char tail[] = " online)";
    char *nl = memchr(p->rx.p, '\n', p->rx.len);
    char shown[4 * 80 + 16];
    unsigned long id, online;
    const char *end;

    if (nl == NULL)
        return false;
    size_t n = (size_t)(nl - p->rx.p);
    *nl = '\0';
    /* "* welcome, you are user<id> (<n> online)", nothing more. */
    if (strncmp(p->rx.p, head, sizeof head - 1) != 0 ||
        !parse_number(p->rx.p + sizeof head - 1, &id, &end) ||
        strncmp(end, " (", 2) != 0 || !parse_number(end + 2, &online, &end) ||
        strcmp(end, tail) != 0 || end + sizeof tail - 1 != nl)
        failf("the first line of a new client is not a welcome: '%s'",
              escape(p->rx.p, n, shown, 80));
    for (size_t i = 0; i < npeers; i++)
        if (peers[i] != p && peers[i]->id >= id)
            failf("a new client got id %lu, but user%lu came before it", id,
                  peers[i]->id);
    if (online < 1)
        failf("the welcome counts %lu online", online);
    p->id = id;
    p->welcomed = true;
    p->join_seq = ++event_seq;
    buf_drop(&p->rx, n + 1);
    if (p->reads && p->kind != PROBE)
        views_start(p);
    if (p->kind == PROBE) {
        size_t live = 1;
        for (size_t i = 0; i < npeers; i++)
            if (peers[i]->kind == OBSERVER && !peers[i]->finished)
                live++;
        if (online < live)
            failf("the welcome counts %lu online, but %zu clients are "
                  "connected",
                  online, live);
    }
    return true;
}

/* ---- the event loop ---------------------------------------------------- */

/**
 * @brief The server closed a client's connection (EOF or reset).
 * @param p the client.
 * @param why "end of stream" or the error.
 */
static void
on_closed(struct peer *p, const char *why)
{
    p->eof = true;
    if (stopping) {
        peer_close(p, false); /* as any client does: the server lingers */
        return;
    }
    if (!p->welcomed)
        failf("a new client was closed before its welcome (%s)", why);
    if (p->victim || p->half_closed)
        return;
    if (p->kind == OBSERVER)
        failf("the server closed observer user%lu's connection (%s), "
              "though it reads everything and was not killed",
              p->id, why);
    if (!p->finished) {
        /* A fuzz reader cut off before it ended: only a slow reader may
         * be, and then what it sent is a prefix. */
        p->dropped = true;
        p->exact = false;
        st.dropped_readers++;
        peer_finish(p);
    }
}

/**
 * @brief The client's socket is readable: take everything.
 * @param p the client.
 */
static void
on_readable(struct peer *p)
{
    static char chunk[RX_CHUNK];

    for (int i = 0; i < 8; i++) {
        ssize_t n = recv(p->fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (n > 0) {
            if (p->reads || !p->welcomed)
                buf_add(&p->rx, chunk, (size_t)n);
            if (!p->welcomed && !take_welcome(p))
                continue;
            if (!p->reads && !p->victim)
                return; /* it stops reading once welcomed */
            continue;
        }
        if (n == 0) {
            on_closed(p, "end of stream");
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        if (errno == EINTR)
            continue;
        on_closed(p, strerror(errno));
        return;
    }
}

/**
 * @brief Has the client something to write, or an ending to perform?
 * @param p the client.
 * @return true if on_writable() has work.
 */
static bool
wants_write(const struct peer *p)
{
    return p->fd >= 0 && p->welcomed && !p->finished &&
           (p->next < p->npieces ||
            (p->kind == FUZZ && p->next == p->end_after));
}

/**
 * @brief Performs a fuzz client's ending.
 * @param p     the client.
 * @param how   the ending.
 */
static void
do_ending(struct peer *p, enum ending how)
{
    switch (how) {
    case END_HALF_CLOSE:
    case END_AT_ROUND_END:
        if (how == END_AT_ROUND_END && !p->reads) {
            peer_close(p, false);
            st.closes++;
            break;
        }
        if (p->fd >= 0 && shutdown(p->fd, SHUT_WR) == 0)
            p->half_closed = true;
        st.half_closes++;
        break;
    case END_RESET:
        peer_close(p, true);
        st.resets++;
        break;
    case END_CLOSE:
        peer_close(p, false);
        st.closes++;
        break;
    }
    peer_finish(p);
}

/**
 * @brief Writes as much of the client's due piece as the socket takes.
 * @param p the client.
 * @param t the time now.
 */
static void
on_writable(struct peer *p, int64_t t)
{
    while (wants_write(p)) {
        if (p->kind == FUZZ && p->next == p->end_after) {
            do_ending(p, p->ending);
            return;
        }
        if (p->due > t || p->next >= p->npieces)
            return;
        struct piece *pc = &p->pieces[p->next];
        ssize_t n = send(p->fd, p->payload.p + pc->off + p->done,
                         pc->len - p->done, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            /* The server closed us: a dropped reader, a killed process. */
            if (p->kind == OBSERVER && !p->victim)
                failf("observer user%lu cannot send: %s", p->id,
                      strerror(errno));
            p->exact = false;
            p->dropped = true;
            peer_finish(p);
            return;
        }
        msgs_feed(&p->msgs, p->payload.p + pc->off + p->done, (size_t)n);
        if (p->kind == FUZZ) {
            st.bytes += (unsigned long long)n;
            st.writes++;
        }
        p->done += (size_t)n;
        if (p->done == pc->len) {
            p->next++;
            p->done = 0;
            if (p->next < p->npieces)
                p->due = t + p->pieces[p->next].delay_ms;
        }
    }
    if (p->kind == FUZZ && p->next == p->end_after && !p->finished)
        do_ending(p, p->ending);
}

/**
 * @brief One pass of the loop: write what is due, wait up to @p max_ms for
 *        the sockets, read what arrived.
 * @param max_ms longest wait.
 */
static void
loop_once(int max_ms)
{
    static struct pollfd *fds;
    static size_t *idx;
    static size_t cap;
    int64_t t = now_ms();
    int64_t next_due = t + max_ms;
    size_t n = 0;

    if (cap < npeers) {
        cap = npeers * 2;
        fds = xrealloc(fds, cap * sizeof *fds);
        idx = xrealloc(idx, cap * sizeof *idx);
    }
    for (size_t i = 0; i < npeers; i++) {
        struct peer *p = peers[i];
        if (p->fd < 0)
            continue;
        if (wants_write(p))
            on_writable(p, t);
        if (p->fd < 0)
            continue;
        short ev = 0;
        if ((p->reads || !p->welcomed || p->victim) && !p->eof)
            ev |= POLLIN;
        if (wants_write(p)) {
            if (p->due <= t)
                ev |= POLLOUT;
            else if (p->due < next_due)
                next_due = p->due;
        }
        if (ev == 0)
            continue;
        fds[n] = (struct pollfd){.fd = p->fd, .events = ev};
        idx[n++] = i;
    }
    int ms = (int)(next_due - t);
    int ready = poll(fds, n, ms > 0 ? ms : 0);
    if (ready < 0 && errno != EINTR)
        failf("poll: %s", strerror(errno));
    t = now_ms();
    for (size_t k = 0; k < n && ready > 0; k++) {
        struct peer *p = peers[idx[k]];
        if (fds[k].revents == 0 || p->fd < 0)
            continue;
        if (fds[k].revents & (POLLIN | POLLHUP | POLLERR))
            on_readable(p);
        if ((fds[k].revents & POLLOUT) && p->fd >= 0)
            on_writable(p, t);
    }
}

/** A condition to wait for. */
typedef bool cond_fn(void *arg);

/**
 * @brief Runs the loop until @p cond holds; a failure after the deadline.
 * @param cond the condition.
 * @param arg  passed to it.
 * @param what what is awaited, for the failure message.
 */
static void
wait_for(cond_fn *cond, void *arg, const char *what)
{
    int64_t deadline = now_ms() + opt.wait_ms;

    while (!cond(arg)) {
        if (now_ms() > deadline)
            failf("timed out after %ld ms waiting for %s", opt.wait_ms, what);
        loop_once(20);
    }
}

/**
 * @brief cond_fn: the client has been welcomed.
 * @param arg the client.
 * @return true once welcomed.
 */
static bool
is_welcomed(void *arg)
{
    return ((struct peer *)arg)->welcomed;
}

/* ---- plans: what each client will send ------------------------------- */

/**
 * @brief Appends @p n printable ASCII bytes.
 * @param r the stream.
 * @param b the buffer.
 * @param n how many.
 */
static void
add_text(struct rng *r, struct buf *b, size_t n)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                   " .,:;!?*-_/()[]{}<>=+#@$%^&~'\"`|\\";
    for (size_t i = 0; i < n; i++) {
        char c = alphabet[rng_below(r, sizeof alphabet - 1)];
        buf_add(b, &c, 1);
    }
}

/**
 * @brief Appends one chunk of hostile bytes, of a random kind.
 * @param r    the stream.
 * @param b    the buffer.
 * @param room most bytes to add (roughly).
 */
static void
add_chunk(struct rng *r, struct buf *b, size_t room)
{
    static const char *const bad_utf8[] = {
        "\xc0\x80",     "\xed\xa0\x80",     "\xff",     "\xfe\xfe",
        "\x80\x80\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\xc3",
        "\xef\xbf\xbe", "\xf8\x88"};
    static const size_t edges[] = {1022, 1023, 1024, 1025, 2045,
                                   2046, 2047, 2048, 3069, 3070};
    size_t k;

    switch (rng_below(r, 9)) {
    case 0: /* text lines, some CRLF */
        for (size_t i = rng_below(r, 8) + 1; i > 0; i--) {
            add_text(r, b, rng_below(r, 80));
            /* One draw: two in one call would be evaluated in an
             * unspecified order, and a seed would replay differently
             * under another compiler. */
            if (chance(r, 30))
                buf_add(b, "\r\n", 2);
            else
                buf_add(b, "\n", 1);
        }
        break;
    case 1: /* any bytes at all */
        k = rng_below(r, room < 2000 ? room + 1 : 2000);
        for (size_t i = 0; i < k; i++) {
            char c = (char)rng_next(r);
            buf_add(b, &c, 1);
        }
        break;
    case 2: /* text with invalid UTF-8, NUL and lone \r */
        for (size_t i = rng_below(r, 12) + 1; i > 0; i--) {
            add_text(r, b, rng_below(r, 12));
            switch (rng_below(r, 4)) {
            case 0:
                buf_add(b, "\0", 1);
                break;
            case 1:
                buf_add(b, "\r", 1);
                break;
            default: {
                const char *s = bad_utf8[rng_below(r, 10)];
                buf_add(b, s, strlen(s));
            }
            }
        }
        buf_add(b, "\n", 1);
        break;
    case 3: { /* a line at a piece boundary, maybe a \r on it */
        size_t len = edges[rng_below(r, 10)];
        size_t start = b->len;
        add_text(r, b, len);
        if (len > PIECE && chance(r, 50))
            b->p[start + PIECE] = '\r'; /* byte 1024 */
        if (chance(r, 30))
            b->p[start + len - 1] = '\r';
        static const char *const ends[] = {"\n", "\r\n", "\rx\n", "", "\r"};
        const char *e = ends[rng_below(r, 5)];
        buf_add(b, e, strlen(e));
        break;
    }
    case 4: /* empty lines and \r storms */
        for (size_t i = rng_below(r, 10) + 1; i > 0; i--) {
            static const char *const bits[] = {"\n", "\r\n", "\r", "\r\r\n",
                                               "\n\n"};
            const char *s = bits[rng_below(r, 5)];
            buf_add(b, s, strlen(s));
        }
        break;
    case 5: /* NUL-heavy */
        for (size_t i = rng_below(r, 20) + 1; i > 0; i--)
            buf_add(b, chance(r, 70) ? "\0" : "a", 1);
        buf_add(b, "\n", 1);
        break;
    case 6: /* a long line */
        k = 3000 + rng_below(r, 60000);
        add_text(r, b, k < room ? k : room);
        buf_add(b, "\n", 1);
        break;
    case 7: /* a line with every byte value but \n */
        for (int c = 0; c < 256; c++)
            if (c != '\n') {
                char ch = (char)c;
                buf_add(b, &ch, 1);
            }
        buf_add(b, "\n", 1);
        break;
    default: /* a fragment without end: the next chunk continues it */
        add_text(r, b, rng_below(r, 300));
        break;
    }
}

/**
 * @brief Cuts a payload into writes: whole, byte by byte, small or large
 *        random pieces; with pauses now and then.
 * @param r        the stream.
 * @param p        the client (payload set).
 * @param start    first payload byte to cut.
 * @param pause_ms most pause before a piece.
 */
static void
cut_pieces(struct rng *r, struct peer *p, size_t start, int pause_ms)
{
    size_t mode = rng_below(r, 4);
    size_t at = start;

    while (at < p->payload.len) {
        size_t left = p->payload.len - at, k;
        switch (mode) {
        case 0:
            k = left;
            break;
        case 1:
            k = at - start < 64 ? 1 : 1 + rng_below(r, 512);
            break;
        case 2:
            k = 1 + rng_below(r, 64);
            break;
        default:
            k = 1 + rng_below(r, 65536);
            break;
        }
        if (k > left)
            k = left;
        p->pieces = xrealloc(p->pieces, (p->npieces + 1) * sizeof *p->pieces);
        int delay = chance(r, 15) ? (int)rng_below(r, (size_t)pause_ms + 1) : 0;
        p->pieces[p->npieces++] = (struct piece){at, k, delay};
        at += k;
    }
    /* All pauses of a client together stay within a few hundred ms, so a
     * round stays short however finely it was cut. */
    long total = 0;
    for (size_t i = 0; i < p->npieces; i++)
        total += p->pieces[i].delay_ms;
    if (total > PAUSES_MAX_MS)
        for (size_t i = 0; i < p->npieces; i++)
            p->pieces[i].delay_ms =
                (int)(p->pieces[i].delay_ms * (long)PAUSES_MAX_MS / total);
}

/**
 * @brief The plan of a fuzz client: its bytes, its writes, its end.
 * @param p      the client.
 * @param r      its stream.
 * @param budget bytes it may send.
 */
static void
plan_fuzz(struct peer *p, struct rng *r, size_t budget)
{
    p->reads = chance(r, 70);
    if (chance(r, 8) && budget > HUGE_MIN) {
        /* A huge line, possibly without its end. */
        size_t k = HUGE_MIN + rng_below(r, HUGE_MAX - HUGE_MIN);
        if (k > budget)
            k = budget;
        add_text(r, &p->payload, k);
        if (chance(r, 70))
            buf_add(&p->payload, "\n", 1);
        st.huge++;
    }
    while (p->payload.len < budget && !chance(r, 20))
        add_chunk(r, &p->payload, budget - p->payload.len);
    cut_pieces(r, p, 0, 30);

    static const enum ending ends[] = {
        END_HALF_CLOSE,   END_HALF_CLOSE,  END_HALF_CLOSE,   END_RESET,
        END_RESET,        END_CLOSE,       END_AT_ROUND_END, END_AT_ROUND_END,
        END_AT_ROUND_END, END_AT_ROUND_END};
    p->ending = ends[rng_below(r, 10)];
    p->end_after = p->npieces;
    if (p->ending != END_AT_ROUND_END && chance(r, 40))
        p->end_after = rng_below(r, p->npieces + 1); /* mid-stream */
    if (p->ending == END_AT_ROUND_END)
        p->end_after = SIZE_MAX; /* the round's end decides */
    p->exact = p->reads &&
               (p->ending == END_HALF_CLOSE || p->ending == END_AT_ROUND_END);
}

/**
 * @brief Adds an observer's lines for this round to its plan.
 * @param p     the observer.
 * @param r     the round's stream for it.
 * @param round the round.
 */
static void
plan_observer(struct peer *p, struct rng *r, unsigned round)
{
    size_t lines = rng_below(r, 13);

    for (size_t m = 0; m < lines; m++) {
        char head[64];
        int k = snprintf(head, sizeof head, "o%zu r%u m%zu ", peer_index(p),
                         round, m);
        size_t line_start = p->payload.len;
        buf_add(&p->payload, head, (size_t)k);
        size_t filler = chance(r, 80)   ? rng_below(r, 60)
                        : chance(r, 75) ? 100 + rng_below(r, 800)
                                        : 1000 + rng_below(r, 2000);
        add_text(r, &p->payload, filler);
        buf_add(&p->payload, "\n", 1);
        size_t end = p->payload.len;
        /* One write per line, or the line in two or three writes. */
        size_t cuts = chance(r, 30) ? 1 + rng_below(r, 2) : 0;
        size_t at = line_start;
        for (size_t c = 0; c <= cuts; c++) {
            size_t k2 = c == cuts ? end - at : 1 + rng_below(r, end - at);
            if (k2 >= end - at && c < cuts)
                k2 = end - at;
            p->pieces =
                xrealloc(p->pieces, (p->npieces + 1) * sizeof *p->pieces);
            p->pieces[p->npieces++] = (struct piece){
                at, k2, c == 0 ? (int)rng_below(r, PAUSES_MAX_MS / 12) : 0};
            at += k2;
            if (at == end)
                break;
        }
    }
}

/**
 * @brief Appends an observer's sync line as its last write.
 * @param p     the observer.
 * @param round the round.
 */
static void
plan_sync(struct peer *p, unsigned round)
{
    char line[64];
    int k =
        snprintf(line, sizeof line, "o%zu r%u sync\n", peer_index(p), round);
    size_t at = p->payload.len;

    buf_add(&p->payload, line, (size_t)k);
    p->pieces = xrealloc(p->pieces, (p->npieces + 1) * sizeof *p->pieces);
    p->pieces[p->npieces++] = (struct piece){at, (size_t)k, 0};
    if (p->next == p->npieces - 1 && p->done == 0)
        p->due = now_ms();
}

/* ---- a round ------------------------------------------------------------ */

/** A signal to send at a time of the round. */
struct sig_event {
    int64_t at; /**< ms after the round's start */
    int what; /**< index into the signal kinds (see send_signal()) */
    bool done; /**< sent */
};

/**
 * @brief Sends one of the round's signals.
 * @param what 0 SIGPIPE, 1 SIGCHLD, 2 SIGHUP, 3 SIGHUP to the group,
 *             4 SIGHUP or SIGPIPE to a child, 5 SIGKILL of a child or
 *             worker.
 * @param r    the round's stream (picks the child).
 * @return false if it must wait (a connection is being set up).
 */
static bool
send_signal(int what, struct rng *r)
{
    static const int sigs[] = {SIGPIPE, SIGCHLD, SIGHUP, SIGHUP, SIGHUP};
    pid_t kids[512];

    if (what < 3) {
        kill(server_pid, sigs[what]);
        st.signals++;
        return true;
    }
    if (what == 3) {
        kill(-server_pid, SIGHUP);
        st.signals++;
        return true;
    }
    /* A child: not while a connection is being set up, so that the
     * connections it holds are known for sure. */
    for (size_t i = 0; i < npeers; i++)
        if (peers[i]->fd >= 0 && !peers[i]->welcomed)
            return false;
    size_t n = server_children(kids, 512);
    if (n == 0)
        return true;
    pid_t pid = kids[rng_below(r, n)];
    if (what == 4) {
        /* Children leave SIGHUP to the parent and ignore SIGPIPE. */
        kill(pid, chance(r, 50) ? SIGHUP : SIGPIPE);
        st.signals++;
        return true;
    }
    size_t marked = mark_victims(pid);
    if (kill(pid, SIGKILL) == 0) {
        st.kills++;
        st.victims += marked;
        if (!opt.quiet)
            printf("  round %u: SIGKILL of pid %ld (%zu of our clients)\n",
                   cur_round, (long)pid, marked);
    }
    return true;
}

/**
 * @brief cond_fn: every observer has heard every other observer's messages
 *        and every leave it must hear; every half-closed and every killed
 *        client has been closed by the server.
 * @param arg unused.
 * @return true when the round is complete.
 */
static bool
round_synced(void *arg)
{
    (void)arg;
    for (size_t i = 0; i < npeers; i++) {
        struct peer *p = peers[i];
        if (p->fd < 0)
            continue;
        if (p->next < p->npieces && !p->finished)
            return false; /* still writing */
        if ((p->half_closed && p->reads && !p->eof) || (p->victim && !p->eof))
            return false; /* the server must close it */
    }
    for (size_t i = 0; i < npeers; i++) {
        struct peer *o = peers[i];
        if (o->kind != OBSERVER || o->finished || o->fd < 0)
            continue;
        hear(o);
        for (size_t j = 0; j < npeers; j++) {
            struct peer *s = peers[j];
            if (s == o || !s->welcomed)
                continue;
            struct view *v = view_of(o, j);
            if (!s->finished) {
                if (s->kind == OBSERVER && !view_complete(v, s->msgs.n))
                    return false;
            } else if (s->end_seq > o->join_seq && !v->left) {
                return false; /* it must be heard leaving */
            }
        }
    }
    return true;
}

/**
 * @brief Describes what the round's end still waits for (on a time-out).
 */
static void
explain_sync(void)
{
    for (size_t i = 0; i < npeers; i++) {
        struct peer *p = peers[i];
        if (p->fd >= 0 && ((p->half_closed && p->reads) || p->victim) &&
            !p->eof)
            fprintf(stderr, "  user%lu: %s, the server has not closed it\n",
                    p->id, p->victim ? "killed" : "half-closed");
        if (p->fd >= 0 && p->next < p->npieces && !p->finished)
            fprintf(stderr, "  user%lu: still writing piece %zu of %zu\n",
                    p->id, p->next, p->npieces);
    }
    for (size_t i = 0; i < npeers; i++) {
        struct peer *o = peers[i];
        if (o->kind != OBSERVER || o->finished || o->fd < 0)
            continue;
        for (size_t j = 0; j < npeers; j++) {
            struct peer *s = peers[j];
            if (s == o || !s->welcomed)
                continue;
            struct view *v = view_of(o, j);
            size_t got = view_got(v);
            if (!s->finished && s->kind == OBSERVER &&
                !view_complete(v, s->msgs.n))
                fprintf(stderr,
                        "  observer user%lu heard %zu of user%lu's %zu "
                        "messages\n",
                        o->id, got, s->id, s->msgs.n);
            else if (s->finished && s->end_seq > o->join_seq && !v->left)
                fprintf(stderr,
                        "  observer user%lu has not heard user%lu leave "
                        "(%s, heard %zu of %zu messages)\n",
                        o->id, s->id,
                        s->victim  ? "killed"
                        : s->exact ? "ended cleanly"
                                   : "ended abruptly",
                        got, s->msgs.n);
        }
    }
}

/**
 * @brief Waits for the round to complete; explains a time-out.
 */
static void
sync_round(void)
{
    int64_t deadline = now_ms() + opt.wait_ms;

    while (!round_synced(NULL)) {
        if (now_ms() > deadline) {
            fprintf(stderr, "protofuzz: the round did not complete:\n");
            explain_sync();
            failf("timed out after %ld ms waiting for the round to complete",
                  opt.wait_ms);
        }
        loop_once(20);
    }
    /* Fuzz readers are checked too, for what they heard (a prefix). */
    for (size_t i = 0; i < npeers; i++)
        if (peers[i]->kind == FUZZ && peers[i]->reads && peers[i]->welcomed)
            hear(peers[i]);
}

/**
 * @brief Frees what finished clients no longer need, so that a long run
 *        stays small.
 *
 * A reader that is gone needs no views. A fuzz client or probe that is
 * closed and was heard leaving by an observer can send nothing more: its
 * bytes go (a later message from it is a failure of its own).
 */
static void
retire(void)
{
    for (size_t i = 0; i < npeers; i++) {
        struct peer *p = peers[i];
        if (p->retired || !p->finished || p->fd >= 0)
            continue;
        free(p->views);
        p->views = NULL;
        p->nviews = 0;
        free(p->rx.p);
        p->rx = (struct buf){0};
        if (p->kind == OBSERVER)
            continue;
        bool heard = false;
        for (size_t j = 0; j < npeers && !heard; j++) {
            struct peer *o = peers[j];
            heard = o->kind == OBSERVER && !o->finished && i < o->nviews &&
                    o->views[i].left;
        }
        if (!heard)
            continue;
        free(p->payload.p);
        free(p->msgs.bytes.p);
        free(p->msgs.off);
        free(p->msgs.len);
        free(p->msgs.line.p);
        free(p->pieces);
        p->payload = p->msgs.bytes = p->msgs.line = (struct buf){0};
        p->msgs.off = p->msgs.len = NULL;
        p->pieces = NULL;
        p->npieces = p->next = 0;
        p->retired = true;
    }
}

/**
 * @brief Connects a client and waits for its welcome.
 * @param p the client.
 */
static void
connect_and_welcome(struct peer *p)
{
    if (p->reads && p->kind != PROBE)
        views_before_connect(p);
    peer_connect(p);
    wait_for(is_welcomed, p, "a new client's welcome");
}

/**
 * @brief Tops the observers up to their number (some may have been killed)
 *        and plans their lines for the round.
 * @param round the round.
 * @return the observers connected.
 */
static size_t
observers_for_round(unsigned round)
{
    size_t live = 0;

    for (size_t i = 0; i < npeers; i++)
        if (peers[i]->kind == OBSERVER && !peers[i]->finished)
            live++;
    while (live < opt.observers) {
        size_t k = peer_new(OBSERVER); /* peers may move: index first */
        struct peer *o = peers[k];
        o->reads = o->exact = true;
        connect_and_welcome(o);
        live++;
    }
    for (size_t i = 0; i < npeers; i++) {
        struct peer *o = peers[i];
        if (o->kind != OBSERVER || o->finished)
            continue;
        struct rng orr = rng_for(round, 1000 + i);
        plan_observer(o, &orr, round);
        if (o->next < o->npieces && o->done == 0)
            o->due = now_ms() + o->pieces[o->next].delay_ms;
    }
    return live;
}

/**
 * @brief Draws the round's signals: what, and when.
 * @param rr   the round's stream.
 * @param sigs receives them; room for #MAX_SIGNALS + 1.
 * @return how many.
 */
static size_t
plan_signals(struct rng *rr, struct sig_event *sigs)
{
    int kinds = opt.step >= 3 ? 5 : opt.step == 2 ? 4 : 2;
    size_t n = 0;

    for (size_t i = rng_below(rr, MAX_SIGNALS + 1); i > 0; i--)
        sigs[n++] =
            (struct sig_event){(int64_t)rng_below(rr, 400),
                               (int)rng_below(rr, (size_t)kinds), false};
    if (opt.step >= 3 && chance(rr, 30)) /* a SIGKILL */
        sigs[n++] = (struct sig_event){(int64_t)rng_below(rr, 400), 5, false};
    return n;
}

/**
 * @brief The round's hostile part: fuzz clients connect one after another
 *        and play their plans, signals go off, until all have ended (or
 *        wait for the round's end) and every signal is sent.
 * @param round the round.
 * @param rr    the round's stream.
 * @param nfuzz fuzz clients to connect.
 * @param sigs  the round's signals.
 * @param nsigs how many.
 */
static void
fuzz_phase(unsigned round, struct rng *rr, size_t nfuzz, struct sig_event *sigs,
           size_t nsigs)
{
    int64_t start = now_ms();
    int64_t fuzz_at[MAX_FUZZ];
    size_t first = npeers, launched = 0;
    struct peer *connecting = NULL;

    for (size_t i = 0; i < nfuzz; i++)
        fuzz_at[i] = (int64_t)rng_below(rr, 300);
    for (size_t i = 1; i < nfuzz; i++) /* in order of start */
        for (size_t j = i; j > 0 && fuzz_at[j - 1] > fuzz_at[j]; j--) {
            int64_t t = fuzz_at[j];
            fuzz_at[j] = fuzz_at[j - 1];
            fuzz_at[j - 1] = t;
        }
    for (;;) {
        int64_t t = now_ms() - start;
        if (connecting != NULL && connecting->welcomed)
            connecting = NULL;
        /* One connection at a time: ids then follow our order, and a
         * SIGKILL always knows every connection a process holds. */
        if (connecting == NULL && launched < nfuzz && fuzz_at[launched] <= t) {
            size_t k = peer_new(FUZZ);
            struct peer *f = peers[k];
            struct rng fr = rng_for(round, 1 + launched);
            plan_fuzz(f, &fr, opt.budget / nfuzz);
            f->due = 0; /* as soon as it is welcomed */
            if (f->reads)
                views_before_connect(f);
            peer_connect(f);
            st.fuzz_clients++;
            connecting = f;
            launched++;
        }
        for (size_t i = 0; i < nsigs; i++)
            if (!sigs[i].done && sigs[i].at <= t)
                sigs[i].done = send_signal(sigs[i].what, rr);
        bool busy = launched < nfuzz || connecting != NULL;
        for (size_t i = 0; i < nsigs && !busy; i++)
            busy = !sigs[i].done;
        for (size_t i = first; i < npeers && !busy; i++)
            busy = peers[i]->kind == FUZZ && wants_write(peers[i]);
        if (!busy)
            return;
        if (connecting != NULL &&
            now_ms() - connecting->connect_at > opt.wait_ms)
            failf("timed out after %ld ms waiting for a new client's "
                  "welcome",
                  opt.wait_ms);
        if (now_ms() - start > 60000)
            failf("the round's writes did not finish within 60 s");
        loop_once(10);
    }
}

/**
 * @brief The round's end: the fuzz clients still there end, observers
 *        sync, the server is checked, a fresh client must be welcomed.
 * @param round the round.
 * @param first the round's first fuzz client.
 */
static void
end_round(unsigned round, size_t first)
{
    for (size_t i = first; i < npeers; i++) {
        struct peer *f = peers[i];
        if (f->kind == FUZZ && !f->finished)
            do_ending(f, END_AT_ROUND_END);
    }
    for (size_t i = 0; i < npeers; i++)
        if (peers[i]->kind == OBSERVER && !peers[i]->finished)
            plan_sync(peers[i], round);
    sync_round();
    server_check();

    /* A fresh client must be welcomed; it leaves at once, and the next
     * sync awaits its leave. */
    size_t k = peer_new(PROBE);
    struct peer *probe = peers[k];
    probe->exact = probe->reads = true;
    connect_and_welcome(probe);
    if (shutdown(probe->fd, SHUT_WR) == 0)
        probe->half_closed = true;
    peer_finish(probe);
    st.probes++;

    retire();
    for (size_t i = 0; i < npeers; i++) {
        struct peer *p = peers[i];
        if (p->fd >= 0 && p->finished && p != probe && (p->eof || !p->reads))
            peer_close(p, false);
    }
}

/**
 * @brief Plays one round (see the file comment).
 * @param round its number, from 1.
 */
static void
play_round(unsigned round)
{
    struct rng rr = rng_for(round, 0);
    unsigned long long bytes0 = st.bytes;
    struct sig_event sigs[MAX_SIGNALS + 1];

    cur_round = round;
    size_t live = observers_for_round(round);
    size_t first = npeers;
    size_t nfuzz = 1 + rng_below(&rr, MAX_FUZZ);
    size_t nsigs = plan_signals(&rr, sigs);
    fuzz_phase(round, &rr, nfuzz, sigs, nsigs);
    end_round(round, first);
    st.rounds++;
    if (!opt.quiet)
        printf("round %u: %zu fuzz clients, %llu bytes, %zu observers, %zu "
               "signals\n",
               round, nfuzz, st.bytes - bytes0, live, nsigs);
    flush_stdout();
}

/**
 * @brief After the last round: one more sync (the last probe's leave),
 *        then the server is stopped -- gracefully from step 2 on, where it
 *        must exit 0.
 */
static void
finish_run(void)
{
    cur_round++;
    for (size_t i = 0; i < npeers; i++)
        if (peers[i]->kind == OBSERVER && !peers[i]->finished)
            plan_sync(peers[i], cur_round);
    sync_round();
    server_check();

    int status;
    stopping = true;
    kill(server_pid, opt.step >= 2 ? SIGTERM : SIGKILL);
    int64_t deadline = now_ms() + opt.wait_ms;
    while (waitpid(server_pid, &status, WNOHANG) == 0) {
        if (now_ms() > deadline)
            failf("the server did not exit within %ld ms of SIGTERM",
                  opt.wait_ms);
        loop_once(20); /* keep reading: the notices drain */
    }
    server_pid = 0;
    scan_stderr(); /* LeakSanitizer reports at exit */
    if (opt.step >= 2 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
        failf("after SIGTERM the server %s %d, not exit status 0",
              WIFSIGNALED(status) ? "died of signal" : "exited with status",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

/**
 * @brief Prints the usage and exits 2.
 * @param prog the program's name.
 */
static _Noreturn void
usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [-s SEED] [-r ROUNDS] [-t SECONDS] [-S STEP] "
            "[-b BYTES] [-o OBSERVERS] [-w MS] [-q] SERVER [OPTIONS...]\n"
            "  -s SEED       everything random derives from it (default: "
            "time)\n"
            "  -r ROUNDS     most rounds (default: no limit)\n"
            "  -t SECONDS    time for all rounds (default 10; 0: no limit)\n"
            "  -S STEP       1-4: which signals the server must take "
            "(default 1)\n"
            "  -b BYTES      bytes the fuzz clients send per round (default "
            "262144)\n"
            "  -o OBSERVERS  well-behaved clients (default 3)\n"
            "  -w MS         deadline of every wait (default 20000)\n"
            "  -q            no line per round\n"
            "Runs SERVER OPTIONS... 127.0.0.1 0 and fuzzes it.\n",
            prog);
    exit(2);
}

/**
 * @brief An option's whole number: plain decimal digits, @p min to @p max.
 *
 * strtoull() alone would take "", "x" or "-1" for a number, and a value
 * too large would pass cut.
 * @param c    the option, for the message.
 * @param text its value.
 * @param min  the smallest value allowed.
 * @param max  the largest value allowed.
 * @param prog the program's name, for the usage.
 * @return the value (anything else prints the usage and exits 2).
 */
static unsigned long long
number_arg(int c, const char *text, unsigned long long min,
           unsigned long long max, const char *prog)
{
    char *end;

    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (!isdigit((unsigned char)text[0]) || *end != '\0' || errno != 0 ||
        v < min || v > max) {
        fprintf(stderr, "%s: -%c takes a number from %llu to %llu, not '%s'\n",
                prog, c, min, max, text);
        usage(prog);
    }
    return v;
}

/**
 * @brief The -t option's seconds: a decimal number from 0 to 10^9.
 *
 * The bound keeps the milliseconds in range of an int64_t; it also turns
 * away "nan", "inf" and negative numbers, which strtod() accepts.
 * @param text the value.
 * @param prog the program's name, for the usage.
 * @return the seconds (anything else prints the usage and exits 2).
 */
static double
seconds_arg(const char *text, const char *prog)
{
    char *end;
    double v = strtod(text, &end);

    if (end == text || *end != '\0' || !(v >= 0 && v <= 1e9)) {
        fprintf(stderr, "%s: -t takes seconds from 0 to 1e9, not '%s'\n", prog,
                text);
        usage(prog);
    }
    return v;
}

/**
 * @brief Reads the command line, plays the rounds, prints the summary.
 * @param argc argument count.
 * @param argv arguments.
 * @return 0 when every round passed (a failure exits 1).
 */
int
main(int argc, char **argv)
{
    int c;

    opt = (struct settings){.seed = (uint64_t)time(NULL) ^
                                    ((uint64_t)getpid() << 20),
                            .seconds = 10,
                            .step = 1,
                            .budget = (size_t)256 * 1024,
                            .observers = 3,
                            .wait_ms = 20000};
    while ((c = getopt(argc, argv, "+s:r:t:S:b:o:w:q")) != -1) {
        switch (c) {
        case 's':
            opt.seed = number_arg(c, optarg, 0, UINT64_MAX, argv[0]);
            break;
        case 'r':
            opt.rounds = (unsigned)number_arg(c, optarg, 0, UINT_MAX, argv[0]);
            break;
        case 't':
            opt.seconds = seconds_arg(optarg, argv[0]);
            break;
        case 'S':
            opt.step = (int)number_arg(c, optarg, 1, 4, argv[0]);
            break;
        case 'b':
            opt.budget = number_arg(c, optarg, 0, SIZE_MAX, argv[0]);
            break;
        case 'o':
            opt.observers = number_arg(c, optarg, 2, SIZE_MAX, argv[0]);
            break;
        case 'w': /* poll() takes an int of milliseconds */
            opt.wait_ms = (long)number_arg(c, optarg, 100, INT_MAX, argv[0]);
            break;
        case 'q':
            opt.quiet = true;
            break;
        default:
            usage(argv[0]);
        }
    }
    if (optind >= argc)
        usage(argv[0]);
    opt.server_argv = argv + optind;
    opt.server_argc = argc - optind;
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        fprintf(stderr, "protofuzz: cannot ignore SIGPIPE: %s\n",
                strerror(errno));
        return 1;
    }

    printf("protofuzz: seed %" PRIu64 ", step %d, %s\n", opt.seed, opt.step,
           opt.server_argv[0]);
    flush_stdout();
    run_start = now_ms();
    server_start();
    for (unsigned round = 1; opt.rounds == 0 || round <= opt.rounds; round++) {
        if (opt.seconds > 0 &&
            now_ms() - run_start >= (int64_t)(opt.seconds * 1000))
            break;
        play_round(round);
    }
    finish_run();
    unlink(err_path);

    double secs = (double)(now_ms() - run_start) / 1000.0;
    printf("protofuzz: passed: %u rounds, %lu fuzz clients, %llu bytes in "
           "%lu writes, %lu messages checked, %lu resets, %lu half-closes, "
           "%lu closes, %lu huge lines, %lu signals, %lu kills (%lu clients "
           "cut off), %lu readers dropped as slow, %lu fresh clients "
           "welcomed, %.1f s, seed %" PRIu64 "\n",
           st.rounds, st.fuzz_clients, st.bytes, st.writes, st.checked,
           st.resets, st.half_closes, st.closes, st.huge, st.signals, st.kills,
           st.victims, st.dropped_readers, st.probes, secs, opt.seed);
    flush_stdout();
    return 0;
}
