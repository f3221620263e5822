/**
 * @file client.c
 * @brief The interactive client: standard input to the server, what the
 *        server sends to standard output.
 *
 * Book: 9.6.1, listing 9-6 (the poll client with splice).
 *
 *     client [-h] HOST PORT
 *
 * The idea, as in the book: one poll() watches standard input and the
 * socket. Bytes typed go to the server and bytes received go to standard
 * output, through a pipe and splice(2) so that they never cross into user
 * space ("zero copy").
 *
 * What this client does differently from the book:
 * - both directions splice, each through its own pipe (the book copies
 *   server bytes with recv() into a 64-byte buffer and printf("%s\n"),
 *   which stops at a NUL byte and adds a newline after every chunk); the
 *   client is 8-bit clean both ways;
 * - splice(2) is tried and, where the kernel refuses it for one of our
 *   descriptors (EINVAL: a terminal on some kernels, a file opened for
 *   append, some /proc files), that direction falls back to read/write for
 *   good (the book has no fallback and ignores the error);
 * - every return value is checked: partial writes are finished later,
 *   EINTR is retried, EAGAIN waits for the next poll() (the book assumes
 *   each splice moves everything);
 * - end of standard input ends nothing at once: what was read is sent, then
 *   the socket is half-closed with shutdown(SHUT_WR) so the server sees
 *   end-of-file and relays our last, unterminated line; we keep printing
 *   until the server closes, at most #HALF_CLOSE_WAIT_MS later (the book
 *   never notices end of input: poll keeps reporting it, splice returns 0,
 *   and the loop spins);
 * - the end of the connection is a read returning 0 (or a reset), after
 *   everything received has been written out, not POLLRDHUP, which the book
 *   acts on while unread bytes may still wait in the socket;
 * - SIGPIPE is ignored, so a closed standard output or a reset connection
 *   is an error line and an exit status, not death by signal;
 * - a failed connect says what, where and why on standard error and exits
 *   1 (the book prints "connection failed" on standard output).
 *
 * Exit status: 0 when the server closed the connection or when the wait
 * after our half-close ran out, 1 on a runtime failure (#EXIT_RUNTIME), 2
 * on a bad command line (#EXIT_USAGE).
 */
#include "args.h"
#include "clock.h"
#include "log.h"
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/** Bytes one read(2) or splice(2) asks for: the default pipe capacity. */
#define PUMP_CHUNK 65536 /* 64 KiB */

/** How long the server may take to close after our shutdown(SHUT_WR). */
#define HALF_CLOSE_WAIT_MS 5000

/** How a direction moves its bytes; see pump_fill() and pump_flush(). */
enum pump_mode {
    PUMP_SPLICE, /**< src -> pipe -> dst with splice(2), no user-space copy */
    PUMP_COPY, /**< read(2) into pump::buf, write(2) from it */
};

/**
 * One direction of the client: standard input to the server ("up") or the
 * server to standard output ("down").
 *
 * Bytes wait in exactly one staging area: the pipe in splice mode, #buf in
 * copy mode. A direction that switches to copy mode may still hold bytes in
 * its pipe; they are moved out first, so the order of bytes never changes.
 */
struct pump {
    int src; /**< descriptor bytes come from */
    int dst; /**< descriptor bytes go to */
    enum pump_mode mode; /**< splice until the kernel refuses, then copy */
    int pipe_fd[2]; /**< [0] read end, [1] write end; -1 if none */
    size_t in_pipe; /**< bytes spliced into the pipe, not yet out */
    bool pipe_full; /**< the pipe refused more: stop watching src */
    size_t off; /**< first unwritten byte of #buf */
    size_t len; /**< unwritten bytes in #buf from #off */
    bool eof; /**< src ended (end of file, or the server left) */
    bool stopped; /**< given up: nothing more is read or written */
    char buf[PUMP_CHUNK]; /**< copy mode's staging buffer */
};

/**
 * @brief Prints the usage text.
 * @param out  stdout for `-h`, stderr after a mistake.
 * @param prog program name as invoked, without its directory.
 */
static void
usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [-h] HOST PORT\n"
            "  HOST  IPv4 or IPv6 address of the chat server "
            "(127.0.0.1, ::1)\n"
            "  PORT  its TCP port, 1-65535\n"
            "  -h    print this help and exit\n"
            "Standard input goes to the server, what the server sends goes "
            "to standard output.\n",
            prog);
}

/**
 * @brief Reports a command-line mistake and exits with #EXIT_USAGE.
 *
 * One line saying what is wrong, then the usage, both on standard error:
 * standard output belongs to the chat.
 * @param prog program name as invoked, without its directory.
 * @param why  one-line reason.
 */
static _Noreturn void
usage_error(const char *prog, const char *why)
{
    fprintf(stderr, "%s: %s\n", prog, why);
    usage(stderr, prog);
    exit(EXIT_USAGE);
}

/**
 * @brief Parses `[-h] HOST PORT`, or exits with the SPEC's status.
 *
 * Port 0 is refused here although net_parse_addr() accepts it: a server
 * may listen on "any port", but nobody can connect to port 0.
 * @param argc as passed to main().
 * @param argv as passed to main().
 * @param addr filled with the server's address.
 * @param len  filled with the used length of @p addr.
 */
static void
parse_args(int argc, char **argv, struct sockaddr_storage *addr, socklen_t *len)
{
    const char *prog = argc > 0 ? argv[0] : "client";
    const char *slash = strrchr(prog, '/');
    char why[160];
    int opt;

    if (slash != NULL)
        prog = slash + 1;
    opterr = 0; /* we word the complaint ourselves, on one line */
    while ((opt = getopt(argc, argv, "+h")) != -1) {
        switch (opt) {
        case 'h':
            usage(stdout, prog);
            exit(0);
        default:
            /* A control byte would not print as one line: say '?'. */
            snprintf(why, sizeof why, "unknown option -%c",
                     (unsigned char)optopt < ' ' || optopt == 0x7f ? '?'
                                                                   : optopt);
            usage_error(prog, why);
        }
    }
    if (argc - optind != 2)
        usage_error(prog, argc - optind < 2 ? "HOST and PORT are required"
                                            : "too many arguments");

    in_port_t port = 0;
    if (net_parse_addr(argv[optind], argv[optind + 1], addr, len) == 0)
        port = addr->ss_family == AF_INET
                   ? ((struct sockaddr_in *)addr)->sin_port
                   : ((struct sockaddr_in6 *)addr)->sin6_port;
    if (port == 0) {
        char host[61], text[21];
        snprintf(why, sizeof why,
                 "'%s' '%s' is not an IPv4/IPv6 address and a port 1-65535",
                 args_quote(host, sizeof host, argv[optind]),
                 args_quote(text, sizeof text, argv[optind + 1]));
        usage_error(prog, why);
    }
}

/**
 * @brief Says whether a splice(2) error means "not for these descriptors".
 *
 * Those errors are permanent for the pair of descriptors, so the direction
 * switches to read/write for good. Any other error is a real failure of
 * the source or the sink and is reported as such.
 * @param err errno after a failed splice(2).
 * @return true when read/write should be used instead.
 */
static bool
splice_unsupported(int err)
{
    /* EINVAL: a file system or device without splice support, a file
     * opened with O_APPEND. ENOSYS, EOPNOTSUPP: no splice at all. */
    return err == EINVAL || err == ENOSYS || err == EOPNOTSUPP;
}

/**
 * @brief Prepares one direction, in splice mode if a pipe can be made.
 *
 * Both pipe ends are non-blocking and only this process uses them, so no
 * splice into or out of them ever waits. Without a pipe (out of
 * descriptors) the direction simply starts in copy mode.
 * @param p   the direction to set up.
 * @param src where its bytes come from.
 * @param dst where its bytes go.
 */
static void
pump_init(struct pump *p, int src, int dst)
{
    p->src = src;
    p->dst = dst;
    p->in_pipe = 0;
    p->pipe_full = false;
    p->off = 0;
    p->len = 0;
    p->eof = false;
    p->stopped = false;
    if (pipe2(p->pipe_fd, O_NONBLOCK | O_CLOEXEC) == 0) {
        p->mode = PUMP_SPLICE;
    } else {
        p->mode = PUMP_COPY;
        p->pipe_fd[0] = p->pipe_fd[1] = -1;
    }
}

/**
 * @brief Says whether the direction wants poll() to watch its source.
 *
 * Never while the staging area is full: poll() would report the source
 * readable again and again and the loop would spin without moving a byte.
 * In copy mode the buffer is refilled only once it is empty (and any bytes
 * left in the old pipe are gone), which keeps the bookkeeping to one chunk.
 * @param p the direction.
 * @return true when src should be watched for POLLIN.
 */
static bool
pump_wants_read(const struct pump *p)
{
    if (p->eof || p->stopped)
        return false;
    if (p->mode == PUMP_SPLICE)
        return !p->pipe_full;
    return p->len == 0 && p->in_pipe == 0;
}

/**
 * @brief Says whether the direction has bytes waiting for its sink.
 * @param p the direction.
 * @return true when dst should be watched for POLLOUT.
 */
static bool
pump_wants_write(const struct pump *p)
{
    return !p->stopped && (p->in_pipe > 0 || p->len > 0);
}

/**
 * @brief Says whether everything read from the source has been written.
 * @param p the direction.
 * @return true when neither the pipe nor the buffer holds a byte.
 */
static bool
pump_drained(const struct pump *p)
{
    return p->in_pipe == 0 && p->len == 0;
}

/**
 * @brief Moves one chunk from the source into the staging area.
 *
 * Called when poll() reported the source readable (or hung up, or in
 * error: the read then tells which). Sets pump::eof when the source ends.
 * In splice mode, EAGAIN while the pipe holds bytes means the pipe is full
 * (a pipe counts pages, not bytes, so we cannot know in advance): the
 * source is then left alone until pump_flush() has emptied some of it.
 * @param p the direction; pump_wants_read() must be true.
 * @return 0 when done (even if nothing moved), -1 with errno set when the
 *         source failed.
 */
static int
pump_fill(struct pump *p)
{
    ssize_t n;

    if (p->mode == PUMP_SPLICE) {
        do
            n = splice(p->src, NULL, p->pipe_fd[1], NULL, PUMP_CHUNK,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        while (n < 0 && errno == EINTR);
        if (n > 0) {
            p->in_pipe += (size_t)n;
            return 0;
        }
        if (n == 0) {
            p->eof = true;
            return 0;
        }
        if (errno == EAGAIN) {
            if (p->in_pipe > 0)
                p->pipe_full = true;
            return 0;
        }
        if (!splice_unsupported(errno))
            return -1;
        /* Book pitfall: splice without a fallback — guarded by
         * tests/client/client.bats */
        p->mode = PUMP_COPY;
        p->pipe_full = false;
        if (p->in_pipe > 0)
            return 0; /* older bytes first: pump_flush() empties the pipe */
    }
    do
        n = read(p->src, p->buf, sizeof p->buf);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        p->off = 0;
        p->len = (size_t)n;
        return 0;
    }
    if (n == 0) {
        p->eof = true;
        return 0;
    }
    /* EAGAIN: a source someone else made non-blocking; poll() again. */
    return errno == EAGAIN ? 0 : -1;
}

/**
 * @brief Writes as much of the staging area as the sink takes now.
 *
 * Called when poll() reported the sink writable. A partial write is
 * normal (a full socket buffer, a slow pipe reader): the rest stays staged
 * and pump_wants_write() keeps POLLOUT asked for. A sink that refuses
 * splice switches the direction to copy mode right here, without losing
 * the bytes already in the pipe: they are read back out of it first.
 *
 * Standard output is written in whatever mode we found it, usually
 * blocking: O_NONBLOCK belongs to the open file description, which a
 * terminal shares with the shell, and setting it would leave the shell a
 * non-blocking terminal if we were killed. poll() said it is writable, so
 * the call returns soon; at worst a stalled terminal (Ctrl-S) stalls us.
 * @param p the direction; pump_wants_write() must be true.
 * @return 0 when done (even if nothing moved), -1 with errno set when the
 *         sink failed.
 */
static int
pump_flush(struct pump *p)
{
    ssize_t n;

    if (p->mode == PUMP_SPLICE) {
        do
            n = splice(p->pipe_fd[0], NULL, p->dst, NULL, p->in_pipe,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        while (n < 0 && errno == EINTR);
        if (n > 0) {
            p->in_pipe -= (size_t)n;
            p->pipe_full = false; /* room again: watch the source */
            return 0;
        }
        if (n == 0) {
            errno = EIO; /* cannot happen: our pipe holds in_pipe bytes */
            return -1;
        }
        if (errno == EAGAIN)
            return 0;
        if (!splice_unsupported(errno))
            return -1;
        p->mode = PUMP_COPY;
        p->pipe_full = false;
    }
    if (p->len == 0) {
        /* Bytes left in the pipe by splice mode came first, so they leave
         * first: read them back into the buffer. */
        size_t want = p->in_pipe < sizeof p->buf ? p->in_pipe : sizeof p->buf;
        do
            n = read(p->pipe_fd[0], p->buf, want);
        while (n < 0 && errno == EINTR);
        if (n <= 0) {
            if (n == 0)
                errno = EIO; /* cannot happen: we hold the write end */
            return -1;
        }
        p->in_pipe -= (size_t)n;
        p->off = 0;
        p->len = (size_t)n;
    }
    do
        n = write(p->dst, p->buf + p->off, p->len);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        p->off += (size_t)n;
        p->len -= (size_t)n;
        return 0;
    }
    if (n == 0) {
        errno = EIO; /* write(2) of a non-zero count never returns 0 */
        return -1;
    }
    return errno == EAGAIN ? 0 : -1;
}

/**
 * @brief Sets up the poll() entry for one descriptor.
 *
 * A descriptor with nothing to wait for gets fd -1, which poll() skips.
 * Merely clearing its events would not do: POLLHUP and POLLERR are
 * reported even when not asked for (a pipe whose other end closed), and
 * the loop would wake for them forever without acting.
 * @param pfd    the entry.
 * @param fd     the descriptor.
 * @param events POLLIN, POLLOUT, both or 0.
 */
static void
watch(struct pollfd *pfd, int fd, int events)
{
    pfd->fd = events != 0 ? fd : -1;
    pfd->events = (short)events; /* int, as `POLLIN | POLLOUT` is */
    pfd->revents = 0;
}

/**
 * @brief Says whether poll() answered a request on an entry.
 *
 * POLLHUP and POLLERR count as an answer to both requests: the read or
 * write that follows then reports the end or the error.
 * @param pfd  the entry after poll().
 * @param want POLLIN or POLLOUT.
 * @return true when @p want was asked for and the descriptor is ready.
 */
static bool
ready(const struct pollfd *pfd, short want)
{
    return (pfd->events & want) && (pfd->revents & (want | POLLHUP | POLLERR));
}

/**
 * @brief Says how the connection ended, on standard error.
 *
 * A reset is the server going away, not ours to die of; a close that
 * answers our own end of input (Ctrl-D, the end of a file) is no kick,
 * and must not read like one.
 * @param close_err   ECONNRESET if the server reset us, else 0.
 * @param half_closed whether our end of input had been sent first.
 */
static void
say_closed(int close_err, bool half_closed)
{
    errno = close_err;
    if (close_err != 0)
        log_errno("connection closed by server");
    else if (half_closed)
        log_msg("input ended; left the room");
    else
        log_msg("connection closed by server");
}

/**
 * @brief Does what poll() said is ready: read, send, write out.
 *
 * The server's errors that mean "it is gone" (a reset on receive, EPIPE
 * or a reset on send) end the direction they hit, not the client: what
 * the server sent before going (a "too many users" line) and its end are
 * still read and written out. Any other error is fatal, one line.
 * @param fds       the three entries after poll().
 * @param up        standard input to the socket.
 * @param down      the socket to standard output.
 * @param peer      the server's address as text, for messages.
 * @param close_err set to ECONNRESET when the server reset us.
 */
static void
pump_ready(const struct pollfd fds[3], struct pump *up, struct pump *down,
           const char *peer, int *close_err)
{
    if (ready(&fds[0], POLLIN) && pump_fill(up) < 0)
        die_errno("cannot read standard input");
    if (ready(&fds[1], POLLIN)) {
        if (pump_fill(down) < 0) {
            if (errno != ECONNRESET)
                die_errno("cannot receive from %s", peer);
            *close_err = errno;
            down->eof = true;
        }
        if (down->eof)
            up->stopped = true; /* nobody left to send to */
    }
    if (ready(&fds[1], POLLOUT) && pump_wants_write(up) && pump_flush(up) < 0) {
        if (errno != EPIPE && errno != ECONNRESET)
            die_errno("cannot send to %s", peer);
        up->stopped = true; /* drop what could not be sent */
    }
    if (ready(&fds[2], POLLOUT) && pump_flush(down) < 0)
        die_errno("cannot write to standard output");
}

/**
 * @brief Copies both ways until the server closes, then says so.
 *
 * The loop ends in one of three ways:
 * - the server closed (read 0) or reset the connection: what was received
 *   is written out first, then "connection closed by server", exit 0 (or,
 *   when our end of input came first and the server closed in answer,
 *   "input ended; left the room");
 * - standard input ended, everything was sent, we half-closed, and the
 *   server did not close within #HALF_CLOSE_WAIT_MS: exit 0 anyway, so a
 *   peer that never closes (nc, socat without a timeout) cannot hold us;
 * - a runtime error: one line, exit 1 (through die_errno()).
 * @param sock the connected socket, non-blocking.
 * @param peer the server's address as text, for messages.
 * @return the exit status, 0.
 */
static int
run(int sock, const char *peer)
{
    /* Static: two 64 KiB buffers are better kept off the stack. */
    static struct pump up, down;
    long long deadline = 0; /* once half-closed: when to stop waiting */
    bool half_closed = false;
    int close_err = 0;
    struct pollfd fds[3];

    pump_init(&up, STDIN_FILENO, sock);
    pump_init(&down, sock, STDOUT_FILENO);

    for (;;) {
        if (down.eof && pump_drained(&down)) {
            say_closed(close_err, half_closed);
            return 0;
        }
        if (!half_closed && up.eof && pump_drained(&up)) {
            /* Everything read from standard input has been sent: tell the
             * server with a FIN, and go on reading its answer. */
            if (shutdown(sock, SHUT_WR) < 0 && errno != ENOTCONN)
                die_errno("cannot shut down sending to %s", peer);
            half_closed = true;
            deadline = clock_ms() + HALF_CLOSE_WAIT_MS;
        }
        int timeout = -1; /* no busy loop: wait until something happens */
        if (half_closed) {
            timeout = clock_ms_until(deadline);
            if (timeout == 0) {
                log_msg("server %s did not close the connection within %d s "
                        "after end of input; leaving",
                        peer, HALF_CLOSE_WAIT_MS / 1000);
                return 0;
            }
        }

        watch(&fds[0], up.src, pump_wants_read(&up) ? POLLIN : 0);
        watch(&fds[1], sock,
              (pump_wants_read(&down) ? POLLIN : 0) |
                  (pump_wants_write(&up) ? POLLOUT : 0));
        watch(&fds[2], down.dst, pump_wants_write(&down) ? POLLOUT : 0);

        if (poll(fds, 3, timeout) < 0) {
            if (errno == EINTR)
                continue;
            die_errno("poll");
        }
        for (int i = 0; i < 3; i++)
            if (fds[i].revents & POLLNVAL)
                die("poll: descriptor %d is not open", fds[i].fd);
        pump_ready(fds, &up, &down, peer, &close_err);
    }
}

/**
 * @brief Parses the command line, connects, and copies until the end.
 * @param argc argument count.
 * @param argv `client [-h] HOST PORT`.
 * @return 0 after the connection ended normally; errors exit through
 *         die_errno() with 1, or usage_error() with 2.
 */
int
main(int argc, char **argv)
{
    struct sockaddr_storage addr;
    socklen_t len;
    char peer[NET_ADDRSTRLEN];

    /* A closed standard input or error is replaced by /dev/null (no
     * input; no diagnostics), so that our socket cannot take its number;
     * a closed standard output is an error: the chat would go nowhere. */
    if (log_init() & (1u << STDOUT_FILENO))
        die("standard output is closed: the server's messages would be lost");
    parse_args(argc, argv, &addr, &len);
    /* splice(2) into a socket has no MSG_NOSIGNAL, and standard output may
     * be a pipe whose reader left: EPIPE must be an error we report, not
     * a signal that kills us silently. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        die_errno("cannot ignore SIGPIPE");

    net_format_addr((struct sockaddr *)&addr, peer, sizeof peer);
    int sock = net_connect((struct sockaddr *)&addr, len);
    if (sock < 0)
        die_errno("cannot connect to %s", peer);
    /* Our own socket may be non-blocking; standard input and output stay
     * as we found them (see pump_flush()). */
    if (net_set_nonblock(sock) < 0)
        die_errno("cannot make the socket to %s non-blocking", peer);
    return run(sock, peer);
}
