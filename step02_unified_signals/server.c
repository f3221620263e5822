/**
 * @file step02_unified_signals/server.c
 * @brief Chapter 2: epoll, and signals as events of the same loop.
 *
 * Book: 10.4, listing 10-1 (unified event source), with 9.3 (epoll, LT
 * and ET) as background; the chat room is chapter 1's (room.c).
 *
 * The idea: every source of events goes through one epoll_wait(): the
 * listening socket, the clients, and the signals, whose handlers only
 * write the signal number into a pipe the loop watches. So SIGTERM is
 * handled in the loop like any message: the room is told, queues are
 * flushed, and the server exits 0 -- nothing is cut off mid-write.
 *
 * What this step does differently from the book:
 * - client sockets are edge-triggered, so every read and every write loops
 *   until EAGAIN, and output is written at the end of the pass that queued
 *   it (an idle socket gives no new EPOLLOUT edge to wait for);
 * - the handler writes one byte that is the signal number (the book sends
 *   the first byte of an int, right only on little-endian machines) and
 *   preserves errno;
 * - SIGINT/SIGTERM shut down gracefully within #SHUTDOWN_GRACE_MS, SIGHUP
 *   prints a status line, SIGPIPE is ignored.
 */
#include "args.h"
#include "clock.h"
#include "conn.h"
#include "events.h"
#include "log.h"
#include "net.h"
#include "room.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/** Default room size, the book's USER_LIMIT; `-n` changes it. */
#define USER_LIMIT 5
/* [constants] */
/** Most milliseconds a graceful shutdown waits for output to drain. */
#define SHUTDOWN_GRACE_MS 2000
/** Events taken from one epoll_wait(). */
#define EPOLL_BATCH 256
/* [constants] */

/* [types] */
/** The epoll server: the listening socket, the signal pipe, the room. */
struct server {
    int epfd; /**< the epoll instance */
    int listen_fd; /**< the listening socket, -1 once closing */
    int sig_fd; /**< read end of the signal pipe */
    struct room room; /**< the chat room */
    long long started; /**< start time, for the uptime (SIGHUP) */
    long long deadline; /**< when a graceful shutdown gives up */
};

/** Both ends of the signal pipe: the handler writes [1], the loop reads
 * [0]. A global because a signal handler can reach nothing else. */
static int sig_pipefd[2];

/** epoll tokens of the two descriptors that are not clients; a client's
 * token is the client itself. */
static char token_listen;
/** See #token_listen. */
static char token_signal;
/* [types] */

/**
 * @brief Adds a descriptor to the epoll set.
 * @param srv    the server.
 * @param fd     the descriptor.
 * @param events EPOLLIN, EPOLLET...
 * @param token  what epoll hands back: a client, or a token_ marker.
 * @return 0, or -1 with errno set.
 */
/* [watch] */
static int
watch(struct server *srv, int fd, uint32_t events, void *token)
{
    struct epoll_event ev = {.events = events, .data.ptr = token};

    return epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev);
}
/* [watch] */

/**
 * @brief Creates the epoll instance and watches the listening socket and
 *        the signal pipe.
 *
 * Both stay level-triggered: if an accept or a read is cut short, epoll
 * simply reports them again.
 * @param srv       the server to fill.
 * @param listen_fd the listening socket.
 * @param limit     most users at once.
 */
/* [server-init] */
static void
server_init(struct server *srv, int listen_fd, size_t limit)
{
    srv->listen_fd = listen_fd;
    srv->sig_fd = sig_pipefd[0];
    srv->started = clock_ms();
    room_init(&srv->room, limit, NULL);

    srv->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (srv->epfd < 0)
        die_errno("cannot create an epoll instance");
    if (watch(srv, listen_fd, EPOLLIN, &token_listen) < 0 ||
        watch(srv, srv->sig_fd, EPOLLIN, &token_signal) < 0)
        die_errno("cannot watch the listening socket and the signal pipe");
}
/* [server-init] */

/**
 * @brief The listening socket is readable: admit every waiting connection.
 *
 * The listening socket is nonblocking, so the loop ends at EAGAIN instead
 * of blocking when another wake-up already took the connection.
 * @param srv the server.
 */
/* [accept] */
static void
on_accept(struct server *srv)
{
    int fd;

    while ((fd = room_accept(&srv->room, srv->listen_fd)) >= 0) {
        struct client *c = room_join(&srv->room, fd);
        /* Edge-triggered: one report per change, so the room reads and
         * writes until EAGAIN, or the rest waits forever. */
        if (c != NULL &&
            watch(srv, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, c) < 0) {
            log_errno("cannot watch user%lu", c->id);
            room_drop(&srv->room, c);
        }
    }
}
/* [accept] */

/**
 * @brief The signal handler: puts the signal number into the pipe.
 *
 * It does nothing else, so it is async-signal-safe and cannot race with
 * the loop: the loop reads the number and acts on it between two events.
 * write() may change errno under the interrupted code, so errno is saved
 * and restored. If the pipe were ever full, the loop has not read the
 * numbers already waiting; it will, and wake.
 * @param sig the signal number.
 */
/* [sig-handler] */
static void
sig_handler(int sig)
{
    int saved = errno;
    /* Book pitfall: `send(pipefd[1], (char *)&msg, 1, 0)` sends the first
     * byte of an int, the signal number only on little-endian machines.
     * One unsigned char holds every signal number, on any machine. */
    unsigned char byte = (unsigned char)sig;

    if (write(sig_pipefd[1], &byte, 1) < 0) {
        /* EAGAIN: the pipe is full and the loop will wake anyway. */
    }
    errno = saved;
}
/* [sig-handler] */

/**
 * @brief Creates the signal pipe and routes SIGINT, SIGTERM, SIGHUP into it.
 *
 * Both ends are nonblocking: the handler must never block, and the loop
 * reads until EAGAIN. SA_RESTART spares the rest of the program EINTR
 * from most calls; epoll_wait() still returns EINTR, which the loop
 * expects. SIGPIPE is ignored.
 */
/* [signals] */
static void
install_signals(void)
{
    static const int routed[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa = {.sa_handler = sig_handler, .sa_flags = SA_RESTART};

    if (pipe2(sig_pipefd, O_NONBLOCK | O_CLOEXEC) < 0)
        die_errno("cannot create the signal pipe");
    sigfillset(&sa.sa_mask); /* one handler at a time */
    for (size_t i = 0; i < sizeof routed / sizeof routed[0]; i++)
        if (sigaction(routed[i], &sa, NULL) < 0)
            die_errno("cannot install a handler for %s", strsignal(routed[i]));

    /* Book pitfall: SIGPIPE is left at its default, so writing to a
     * client that reset kills the server -- guarded by
     * tests/protocol/protocol.bats ("a client that resets mid-line...").
     * outq_flush() also sends with MSG_NOSIGNAL. */
    struct sigaction ign = {.sa_handler = SIG_IGN};
    if (sigaction(SIGPIPE, &ign, NULL) < 0)
        die_errno("cannot ignore SIGPIPE");
}
/* [signals] */

/**
 * @brief SIGHUP: one status line on stderr; the server goes on.
 * @param srv the server.
 */
/* [status] */
static void
report_status(struct server *srv)
{
    const struct room *room = &srv->room;

    log_msg("status: %zu users online, %lu messages relayed, up %lld s, "
            "largest output queue %zu bytes, reading paused %lu times, %lu "
            "slow readers dropped",
            room->online, room->stats.relayed,
            (clock_ms() - srv->started) / 1000, room_largest_queue(room),
            room->stats.pauses, room->stats.slow);
}
/* [status] */

/**
 * @brief SIGINT/SIGTERM: stop accepting, tell everyone, start draining.
 *
 * The loop keeps running until every client has been written its queue
 * (the notice last) and has closed, or #SHUTDOWN_GRACE_MS have passed.
 * @param srv the server.
 */
/* [shutdown] */
static void
begin_shutdown(struct server *srv)
{
    if (srv->room.closing)
        return;
    srv->deadline = clock_ms() + SHUTDOWN_GRACE_MS;
    close(srv->listen_fd); /* new connections are refused by the kernel */
    srv->listen_fd = -1;
    room_shutdown(&srv->room);
}
/* [shutdown] */

/**
 * @brief The signal pipe is readable: act on every signal number in it.
 *
 * Runs in the loop, not in a handler, so it may do anything.
 * @param srv the server.
 */
/* [on-signal] */
static void
on_signal(struct server *srv)
{
    unsigned char sigs[64];
    ssize_t n;

    while ((n = read(srv->sig_fd, sigs, sizeof sigs)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_errno("cannot read the signal pipe");
            return;
        }
        for (ssize_t i = 0; i < n; i++) {
            trace_add(" %s",
                      sigabbrev_np(sigs[i]) ? sigabbrev_np(sigs[i]) : "?");
            if (sigs[i] == SIGHUP)
                report_status(srv);
            else if (sigs[i] == SIGINT || sigs[i] == SIGTERM)
                begin_shutdown(srv);
        }
    }
}
/* [on-signal] */

/**
 * @brief How long epoll_wait() may sleep.
 *
 * What the room needs (input to read, a grace period that ends), and
 * after SIGINT/SIGTERM no longer than the shutdown deadline.
 * @param srv the server.
 * @return milliseconds, or -1 for "until an event".
 */
static int
wait_timeout(const struct server *srv)
{
    int timeout = room_timeout(&srv->room);

    if (srv->room.closing) {
        int left = clock_ms_until(srv->deadline);
        if (timeout < 0 || left < timeout)
            timeout = left;
    }
    return timeout;
}

/**
 * @brief The event loop: wait in epoll_wait(), tell the room what is
 *        ready, repeat.
 *
 * Each pass ends with room_settle(), which reads, announces who left and
 * writes every queue that received output. After SIGINT/SIGTERM the loop
 * runs on until every client is gone or the grace period is over.
 * @param srv the server.
 */
static void
loop(struct server *srv)
{
    struct room *room = &srv->room;
    struct epoll_event events[EPOLL_BATCH];
    char names[EVENTS_NAME_MAX];

    while (!room->closing || room->online > 0) {
        /* [loop-events] */
        if (room->closing && clock_ms_until(srv->deadline) == 0) {
            log_msg("shutdown: closing %zu client(s) that still had output "
                    "or had not closed after %d ms",
                    room->online, SHUTDOWN_GRACE_MS);
            return;
        }
        int ready =
            epoll_wait(srv->epfd, events, EPOLL_BATCH, wait_timeout(srv));
        if (ready < 0) {
            if (errno == EINTR)
                continue; /* a signal: its number waits in the pipe */
            die_errno("epoll_wait");
        }
        /* [loop-events] */
        /* [loop-dispatch] */
        trace_begin("epoll: %d ready", ready);
        for (int i = 0; i < ready; i++) {
            void *token = events[i].data.ptr;
            uint32_t ev = events[i].events;

            if (token == &token_listen) {
                trace_add("; listen fd %d IN", srv->listen_fd);
                if (srv->listen_fd >= 0)
                    on_accept(srv);
                continue;
            }
            if (token == &token_signal) {
                trace_add("; signal pipe fd %d:", srv->sig_fd);
                on_signal(srv);
                continue;
            }
            /* Clients are freed only in room_settle(), after this. */
            struct client *c = token;
            trace_add("; user%lu fd %d %s", c->id, c->fd,
                      epoll_events_name(ev, names));
            if (ev & EPOLLOUT)
                room_writable(room, c);
            if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                room_readable(room, c);
        }
        /* Edge-triggered: write now; EPOLLOUT comes only once a full
         * socket has room again. */
        room_settle(room, true);
        trace_end();
        /* [loop-dispatch] */
    }
}

/**
 * @brief Parses the command line, listens, runs the room until a signal
 *        ends it.
 * @param argc argument count.
 * @param argv arguments: [options] HOST PORT.
 * @return 0 after a graceful shutdown; exits 1 on a start-up failure.
 */
int
main(int argc, char **argv)
{
    struct server_args args;
    struct server srv = {0};
    char where[NET_ADDRSTRLEN];

    log_init(); /* first: 0-2 valid, stderr never blocks (common/log.c) */
    args_parse(argc, argv, &args, 0, USER_LIMIT);
    install_signals();

    /* [listen] */
    int listen_fd = net_listen((struct sockaddr *)&args.addr, args.addrlen);
    if (listen_fd < 0)
        die_errno("cannot listen on %s",
                  net_format_addr((struct sockaddr *)&args.addr, where,
                                  sizeof where));
    if (net_set_nonblock(listen_fd) < 0)
        die_errno("cannot make the listening socket nonblocking");
    /* [listen] */

    /* [run] */
    server_init(&srv, listen_fd, conn_fd_limit((size_t)args.users));
    if (net_announce(listen_fd) < 0)
        die_errno("cannot write the listening line");
    loop(&srv);
    room_close(&srv.room);
    close(srv.epfd);
    return 0;
    /* [run] */
}
