/**
 * @file log.c
 * @brief Diagnostics on stderr: errors, fatal errors and the `-v` trace.
 *
 * Each line is built in one buffer of at most PIPE_BUF bytes and written
 * with a single write(2), so lines from several processes sharing stderr
 * never interleave mid-line.
 *
 * Nothing here may stall the server (SPEC: diagnostics never stall the
 * room). A pipe nobody reads (a stalled log collector, `server -v 2>&1 |
 * less` left paused) fills after 64 KiB, and a blocking write(2) would
 * then stop the event loop. So log_init() makes writes to stderr
 * nonblocking without touching the open file description the server
 * shares with its parent shell and siblings (setting O_NONBLOCK there
 * would make *their* writes fail with EAGAIN):
 *
 * - a pipe, FIFO or terminal is opened again through /proc/self/fd/2.
 *   That gives a new open file description of the same pipe or terminal,
 *   private to this server (and its children), and O_NONBLOCK goes on
 *   that one; dup2() puts it on descriptor 2. A nonblocking write of at
 *   most PIPE_BUF bytes to a pipe is all or nothing (POSIX), so a line is
 *   either written whole or refused with EAGAIN, whichever process of the
 *   server writes it. (The other way, poll() for POLLOUT before a
 *   blocking write, races with the other writers: in chapters 3 and 4
 *   a sibling may take the space between the poll and the write.)
 * - a socket is written with send(MSG_DONTWAIT), which is nonblocking for
 *   this call only; /proc cannot reopen a socket.
 * - a regular file or /dev/null never makes a writer wait: as it is.
 * - if the reopen fails (no /proc, a terminal of another user), a zero
 *   timeout poll() before each write is the fallback: exact with one
 *   writer, nearly so with several.
 *
 * When stderr is full, a trace line is dropped and counted; every other
 * line (an error, a warning, the SIGHUP status) has priority: it waits for
 * room, up to #LOG_WAIT_MS, before it is dropped and counted too. That
 * wait happens once per stall: while a dropped message is not yet
 * reported, the next ones are dropped at once, so a stalled stderr costs
 * the loop at most #LOG_WAIT_MS until it moves again. The first line
 * that gets through is preceded by one line saying how many were
 * dropped. Each process counts its own drops (chapters 3 and 4 share
 * stderr among many).
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

bool log_verbose;

/** Process tag set by log_set_tag(), or NULL. */
static const char *log_tag;

/** Longest diagnostic or trace line with its newline; longer ones are cut,
 *  never split. PIPE_BUF: a write of this size to a pipe is atomic. */
#define LOG_LINE_MAX PIPE_BUF

/** How long a line other than the trace waits for room in a full stderr
 *  before it is dropped too (once per stall, see the file comment). */
#define LOG_WAIT_MS 100

/** The `-v` line being assembled between trace_begin() and trace_end(). */
static char trace_buf[LOG_LINE_MAX];
/** Bytes used in #trace_buf. */
static size_t trace_len;

/** How descriptor 2 is written without blocking (chosen by log_init()). */
enum log_sink {
    SINK_PLAIN, /**< a file, /dev/null, or log_init() not called */
    SINK_OWN, /**< our own nonblocking open of a pipe, FIFO or terminal */
    SINK_SOCKET, /**< a socket: send() with MSG_DONTWAIT */
    SINK_POLL, /**< could not be reopened: poll() before each write */
};

/** The way stderr is written. */
static enum log_sink log_sink = SINK_PLAIN;

/** Lines this process could not write because stderr was full. */
static struct {
    pid_t pid; /**< the process they belong to (a child inherits them) */
    unsigned long traces; /**< trace lines dropped */
    unsigned long messages; /**< other lines dropped after their wait */
} log_drops;

/** Process whose diagnostics log_catch() keeps instead of printing, or 0. */
static pid_t catch_pid;
/** What log_catch() kept. */
static char caught[LOG_LINE_MAX];

unsigned
log_init(void)
{
    unsigned closed = 0;
    struct stat st;

    /* A supervisor may start us with 0, 1 or 2 closed. The first socket
     * or pipe would then get that number: the trace would go into the
     * signal pipe (a wake-up that traces, which wakes...), or a client's
     * socket. open() returns the lowest free number, and the lower ones
     * are open by now: this is fd itself. */
    for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        closed |= 1u << fd;
        if (open("/dev/null", O_RDWR) != fd)
            die_errno("cannot open /dev/null for descriptor %d", fd);
    }

    if (fstat(STDERR_FILENO, &st) < 0)
        return closed;
    if (S_ISSOCK(st.st_mode)) {
        log_sink = SINK_SOCKET;
    } else if (S_ISFIFO(st.st_mode) || isatty(STDERR_FILENO)) {
        int fd = open("/proc/self/fd/2",
                      O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd >= 0 && dup2(fd, STDERR_FILENO) == STDERR_FILENO)
            log_sink = SINK_OWN;
        else
            log_sink = SINK_POLL;
        if (fd > STDERR_FILENO)
            close(fd);
    }
    return closed;
}

void
log_set_tag(const char *tag)
{
    log_tag = tag;
}

void
log_catch(bool on)
{
    catch_pid = on ? getpid() : 0;
    caught[0] = '\0';
}

const char *
log_caught(void)
{
    return caught[0] != '\0' ? caught : "no reason given";
}

/**
 * @brief Appends formatted text to a line buffer, never past its end.
 *
 * A message too long for the buffer is cut, not split: a diagnostic is
 * always one line.
 * @param line the buffer.
 * @param size its size.
 * @param len  bytes used so far; updated.
 * @param fmt  printf-style format.
 * @param ap   arguments of @p fmt.
 */
static void
line_vadd(char *line, size_t size, size_t *len, const char *fmt, va_list ap)
{
    if (*len >= size - 1)
        return;
    int n = vsnprintf(line + *len, size - *len, fmt, ap);
    if (n > 0)
        *len = *len + (size_t)n < size - 1 ? *len + (size_t)n : size - 1;
}

/**
 * @brief line_vadd() with a variable argument list.
 * @param line the buffer.
 * @param size its size.
 * @param len  bytes used so far; updated.
 * @param fmt  printf-style format.
 */
static void __attribute__((format(printf, 4, 5)))
line_add(char *line, size_t size, size_t *len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    line_vadd(line, size, len, fmt, ap);
    va_end(ap);
}

/**
 * @brief One write to stderr that never blocks (except #SINK_PLAIN,
 *        which cannot).
 * @param p   bytes.
 * @param len their number, at most #LOG_LINE_MAX.
 * @return what write(2) returns; -1 with EAGAIN when stderr is full.
 */
static ssize_t
sink_write(const char *p, size_t len)
{
    if (log_sink == SINK_SOCKET)
        return send(STDERR_FILENO, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (log_sink == SINK_POLL) {
        struct pollfd pfd = {.fd = STDERR_FILENO, .events = POLLOUT};
        if (poll(&pfd, 1, 0) == 0) {
            errno = EAGAIN;
            return -1;
        }
    }
    return write(STDERR_FILENO, p, len);
}

/**
 * @brief Milliseconds from now until @p deadline (CLOCK_MONOTONIC).
 * @param deadline the moment.
 * @return the time left, 0 if it has passed.
 */
static int
ms_until(const struct timespec *deadline)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (deadline->tv_sec - now.tv_sec) * 1000 +
              (deadline->tv_nsec - now.tv_nsec) / 1000000;
    return ms > 0 ? (int)ms : 0;
}

/**
 * @brief Writes one whole line to stderr, waiting for room at most
 *        @p wait_ms.
 *
 * A pipe takes a line of at most PIPE_BUF bytes whole or not at all; a
 * stream socket may take part of it, and then the rest must follow, so
 * a started line waits up to #LOG_WAIT_MS whatever @p wait_ms says
 * (it is torn only if stderr stays full that long mid-line).
 * @param p       the line, with its newline.
 * @param len     its length, at most #LOG_LINE_MAX.
 * @param wait_ms how long a full stderr may be waited for; 0: not at all.
 * @return false if stderr was full and nothing was written; true if the
 *         line was written, or failed for good (there is nowhere left to
 *         report a broken stderr).
 */
static bool
log_put(const char *p, size_t len, int wait_ms)
{
    struct timespec deadline;
    bool started = false;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += LOG_WAIT_MS / 1000;
    deadline.tv_nsec += (long)(LOG_WAIT_MS % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    while (len > 0) {
        ssize_t w = sink_write(p, len);
        if (w > 0) {
            started = true;
            p += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            return true;
        int left = ms_until(&deadline);
        if (!started && left > wait_ms)
            left = wait_ms;
        if (left == 0)
            return started;
        struct pollfd pfd = {.fd = STDERR_FILENO, .events = POLLOUT};
        if (poll(&pfd, 1, left) < 0 && errno != EINTR)
            return true;
    }
    return true;
}

/**
 * @brief Writes a line, or drops and counts it if stderr is full.
 *
 * A report of earlier drops goes first. A trace line or a note never
 * waits; any other line waits up to #LOG_WAIT_MS, unless one already
 * waited in vain and has not been reported yet (the stall is known: do
 * not wait again).
 * @param line  the line, with its newline.
 * @param len   its length, at most #LOG_LINE_MAX.
 * @param trace true for a `-v` trace line.
 * @param wait  false for a line that must never hold the loop (a note).
 */
static void
log_emit(const char *line, size_t len, bool trace, bool wait)
{
    if (log_drops.traces + log_drops.messages > 0 && log_drops.pid != getpid())
        memset(&log_drops, 0, sizeof log_drops); /* the parent's, not ours */
    int wait_ms = trace || !wait || log_drops.messages > 0 ? 0 : LOG_WAIT_MS;

    if (log_drops.traces + log_drops.messages > 0) {
        char note[160];
        size_t n = 0;
        if (log_tag != NULL)
            line_add(note, sizeof note - 1, &n, "[%s] ", log_tag);
        line_add(note, sizeof note - 1, &n, "dropped %lu trace lines",
                 log_drops.traces);
        if (log_drops.messages > 0)
            line_add(note, sizeof note - 1, &n, " and %lu other lines",
                     log_drops.messages);
        line_add(note, sizeof note - 1, &n, ": stderr was full");
        note[n++] = '\n';
        if (!log_put(note, n, wait_ms))
            goto drop;
        memset(&log_drops, 0, sizeof log_drops);
    }
    if (log_put(line, len, wait_ms))
        return;
drop:
    log_drops.pid = getpid();
    if (trace)
        log_drops.traces++;
    else
        log_drops.messages++;
}

/**
 * @brief Formats "[tag] message[: errno text]\n" and writes it at once.
 *
 * While log_catch() is on in this process, a line that is not @p fatal
 * is kept for log_caught() instead.
 * @param err   errno value to append, or 0 for none.
 * @param fatal true for the last line of a program (die() and friends).
 * @param wait  false for a note, which never waits for a full stderr.
 * @param fmt   printf-style format.
 * @param ap    arguments of @p fmt.
 */
static void
log_write(int err, bool fatal, bool wait, const char *fmt, va_list ap)
{
    char line[LOG_LINE_MAX];
    size_t len = 0;

    if (!fatal && catch_pid != 0 && catch_pid == getpid()) {
        len = strlen(caught);
        if (len > 0)
            line_add(caught, sizeof caught, &len, "; ");
        line_vadd(caught, sizeof caught, &len, fmt, ap);
        if (err != 0)
            line_add(caught, sizeof caught, &len, ": %s", strerror(err));
        return;
    }
    if (log_tag != NULL)
        line_add(line, sizeof line - 1, &len, "[%s] ", log_tag);
    line_vadd(line, sizeof line - 1, &len, fmt, ap);
    if (err != 0)
        line_add(line, sizeof line - 1, &len, ": %s", strerror(err));
    line[len++] = '\n'; /* room kept: the adds above stop one byte short */
    log_emit(line, len, false, wait);
}

void
log_msg(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    log_write(0, false, true, fmt, ap);
    va_end(ap);
    errno = saved;
}

void
log_note(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    if (log_verbose)
        return;
    va_start(ap, fmt);
    log_write(0, false, false, fmt, ap);
    va_end(ap);
    errno = saved;
}

void
log_errno(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    log_write(saved, false, true, fmt, ap);
    va_end(ap);
    errno = saved;
}

void
die_errno(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    log_write(saved, true, true, fmt, ap);
    va_end(ap);
    exit(EXIT_RUNTIME);
}

void
die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_write(0, true, true, fmt, ap);
    va_end(ap);
    exit(EXIT_RUNTIME);
}

void
die_child(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;

    va_start(ap, fmt);
    log_write(saved, true, true, fmt, ap);
    va_end(ap);
    _exit(EXIT_RUNTIME);
}

void
trace_begin(const char *fmt, ...)
{
    va_list ap;

    if (!log_verbose)
        return;
    trace_len = 0;
    va_start(ap, fmt);
    line_vadd(trace_buf, sizeof trace_buf, &trace_len, fmt, ap);
    va_end(ap);
}

void
trace_add(const char *fmt, ...)
{
    va_list ap;

    if (!log_verbose)
        return;
    va_start(ap, fmt);
    line_vadd(trace_buf, sizeof trace_buf, &trace_len, fmt, ap);
    va_end(ap);
}

void
trace_end(void)
{
    char line[LOG_LINE_MAX];
    size_t len = 0;
    int saved = errno;

    if (!log_verbose || trace_len == 0)
        return;
    if (log_tag != NULL)
        line_add(line, sizeof line - 1, &len, "[%s] ", log_tag);
    line_add(line, sizeof line - 1, &len, "%s", trace_buf);
    line[len++] = '\n'; /* room kept: the adds above stop one byte short */
    log_emit(line, len, true, false);
    trace_len = 0;
    errno = saved;
}
