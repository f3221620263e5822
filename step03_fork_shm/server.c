/**
 * @file step03_fork_shm/server.c
 * @brief Chapter 3: one process per client, messages in shared memory.
 *
 * Book: 13.6.5, listing 13-4 (the chat server with shared memory), with
 * 13.1-13.6.4 (fork, zombies, pipes and socketpair, semaphores, shared
 * memory) as background.
 *
 * The idea: the parent only listens, accepts and keeps the books. Each
 * client gets a child process of its own (child.c); the child writes its
 * client's lines into the client's ring in shared memory (shm.c) and pokes
 * the other children that sleep, which copy the new lines from shared
 * memory to their clients. Signals, SIGCHLD now among them, still arrive
 * through chapter 2's pipe.
 *
 * This file is the parent's loop, its signals, status and shutdown, and
 * main(); its management of the children (a slot and a child per client,
 * reaping, the leave notices) is children.c, and `struct server`
 * children.h.
 *
 * What this step does differently from the book:
 * - a ring of messages per client with sequence numbers and a cursor per
 *   reader, instead of one buffer per client that the next message
 *   overwrites before everyone has copied it;
 * - a slot is freed only when its child has been reaped, so no living
 *   child's slot is handed to a new client (the book's
 *   `users[del] = users[--user_count]` moves a living client's slot);
 * - children are found by a scan of the slots, not in a table indexed by
 *   raw pid (the book's `sub_process[PROCESS_LIMIT]`);
 * - the shared memory has a name unique to the instance, mode 0600 and
 *   O_EXCL, and is unlinked as soon as it is mapped: nothing stays in
 *   /dev/shm after any exit;
 * - children never outlive the parent (PR_SET_PDEATHSIG), close every
 *   descriptor that is not theirs, and runtime errors are handled, never
 *   asserted;
 * - notifications are batched, and go from child to child: a writer
 *   pokes only the children that sleep (their doorbells in shared
 *   memory), once per loop pass however many messages, and the parent is
 *   on no message's path;
 * - the shared region and the parent's tables grow linearly with the
 *   limit and are touched only for the slots in use; every walk visits
 *   only the users online.
 */
#include "args.h"
#include "child.h"
#include "children.h"
#include "clock.h"
#include "conn.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "shm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/** Default room size, the book's USER_LIMIT; `-n` changes it. */
#define USER_LIMIT 5
/* [constants] */
/** Most milliseconds a graceful shutdown waits for the children. */
#define SHUTDOWN_GRACE_MS 3000
/** Events taken from one epoll_wait(). */
#define EPOLL_BATCH 256
/** While doorbells are owed (shm_ring_bells()), how often to try again. */
#define BELL_RETRY_MS 5
/* [constants] */

/* [types] */
/** Both ends of the signal pipe: the handler writes [1], the loop reads
 * [0]. A global because a signal handler can reach nothing else. */
static int sig_pipefd[2];

/** epoll tokens of the two descriptors that are not children; a child's
 * token is its slot. */
static char token_listen;
/** See #token_listen. */
static char token_signal;
/* [types] */

/**
 * @brief Adds a descriptor to the epoll set.
 * @param srv    the server.
 * @param fd     the descriptor.
 * @param events EPOLLIN, EPOLLET...
 * @param token  what epoll hands back: a slot, or a token_ marker.
 * @return 0, or -1 with errno set.
 */
/* [watch] */
int
watch(struct server *srv, int fd, uint32_t events, void *token)
{
    struct epoll_event ev = {.events = events, .data.ptr = token};

    return epoll_ctl(srv->epfd, EPOLL_CTL_ADD, fd, &ev);
}
/* [watch] */

/**
 * @brief Allocates the room's tables and its shared memory.
 *
 * The shared region is created before any child exists, so every child
 * inherits the mapping; its name is unlinked at once (see shm.h). The
 * tables are sized by the limit but calloc()ed, so the pages of slots
 * never used are never touched: `-n 100000` costs address space, not
 * memory.
 * @param srv       the server to fill.
 * @param listen_fd the listening socket.
 * @param limit     most users at once.
 */
/* [server-init] */
static void
server_init(struct server *srv, int listen_fd, size_t limit)
{
    memset(srv, 0, sizeof *srv);
    srv->listen_fd = listen_fd;
    srv->sig_fd = sig_pipefd[0];
    srv->limit = limit;
    srv->children = calloc(limit, sizeof *srv->children);
    srv->live = calloc(limit, sizeof *srv->live);
    srv->free_slots = calloc(limit, sizeof *srv->free_slots);
    srv->view.cursor = calloc(limit, sizeof *srv->view.cursor);
    srv->view.group_seen =
        calloc(limit / SHM_GROUP + 1, sizeof *srv->view.group_seen);
    if (srv->children == NULL || srv->live == NULL || srv->free_slots == NULL ||
        srv->view.cursor == NULL || srv->view.group_seen == NULL)
        die_errno("cannot allocate a room for %zu users", limit);
    srv->started = clock_ms();

    srv->shm = shm_room_create(limit, srv->shm_name);
    if (srv->shm == NULL)
        die_errno("cannot create shared memory for %zu users", limit);
    if (log_verbose)
        log_msg("shared memory %s: mapped, and already unlinked",
                srv->shm_name);

    srv->bell_fd =
        socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (srv->bell_fd < 0)
        die_errno("cannot create a socket for the doorbells");
    srv->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (srv->epfd < 0)
        die_errno("cannot create an epoll instance");
    if (watch(srv, listen_fd, EPOLLIN, &token_listen) < 0 ||
        watch(srv, srv->sig_fd, EPOLLIN, &token_signal) < 0)
        die_errno("cannot watch the listening socket and the signal pipe");
    srv->spare_fd = conn_spare_open();
}
/* [server-init] */

/**
 * @brief The listening socket is readable: accept every waiting connection.
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

    while ((fd = conn_accept(srv->listen_fd, &srv->spare_fd)) >= 0)
        client_add(srv, fd);
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
 * @brief Creates the signal pipe and routes SIGINT, SIGTERM, SIGHUP and
 *        SIGCHLD into it.
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
    static const int routed[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD};
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
    log_msg("status: %zu users online, %lu messages relayed, up %lld s, "
            "%zu children, reading paused %lu times, %lu slow readers "
            "dropped",
            srv->online,
            atomic_load_explicit(&srv->shm->relayed, memory_order_relaxed),
            (clock_ms() - srv->started) / 1000, srv->online,
            atomic_load_explicit(&srv->shm->pauses, memory_order_relaxed),
            srv->slow);
}
/* [status] */

/**
 * @brief SIGINT/SIGTERM: stop accepting and tell every child to finish.
 *
 * Each child sends its client the notice, flushes, and exits; the loop
 * runs on until every child has been reaped or #SHUTDOWN_GRACE_MS have
 * passed.
 * @param srv the server.
 */
/* [shutdown] */
static void
begin_shutdown(struct server *srv)
{
    if (srv->closing)
        return;
    srv->closing = true;
    srv->deadline = clock_ms() + SHUTDOWN_GRACE_MS;
    close(srv->listen_fd); /* new connections are refused by the kernel */
    srv->listen_fd = -1;
    poke_children(srv, 'Q');
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
            else if (sigs[i] == SIGCHLD)
                reap_children(srv);
        }
    }
}
/* [on-signal] */

/**
 * @brief How long the parent may sleep: until the shutdown's deadline, or
 *        the next try of the doorbells owed.
 * @param srv the server.
 * @return milliseconds, -1 for "until an event"; 0 while shutting down
 *         means the grace period is over.
 */
/* [wait-timeout] */
static int
wait_timeout(struct server *srv)
{
    if (srv->closing)
        return clock_ms_until(srv->deadline);
    return srv->bells_owed ? BELL_RETRY_MS : -1;
}
/* [wait-timeout] */

/**
 * @brief The parent's loop: accept, reap, hear of children's deaths.
 *
 * After SIGINT/SIGTERM it runs on until every child is gone or the grace
 * period is over.
 * @param srv the server.
 */
static void
loop(struct server *srv)
{
    struct epoll_event events[EPOLL_BATCH];

    while (!srv->closing || srv->online > 0) {
        /* [loop-events] */
        int timeout = wait_timeout(srv);
        if (srv->closing && timeout == 0) {
            log_msg("shutdown: %zu children still running after %d ms; "
                    "killing them",
                    srv->online, SHUTDOWN_GRACE_MS);
            return;
        }
        int ready = epoll_wait(srv->epfd, events, EPOLL_BATCH, timeout);
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
            struct child_slot *c = token;
            if (c->fd < 0)
                continue; /* closed earlier in this pass */
            trace_add("; user%lu's child fd %d", c->id, c->fd);
            on_child(c);
        }
        if (srv->news || srv->bells_owed) { /* joins and leaves */
            srv->news = false;
            srv->bells_owed =
                !shm_ring_bells(srv->shm, srv->limit, srv->bell_fd);
        }
        trace_end();
        /* [loop-dispatch] */
    }
}

/**
 * @brief Ends every child still running once the loop is over, and waits
 *        for it: no child outlives the server, no zombie stays.
 * @param srv the server.
 */
/* [server-close] */
static void
server_close(struct server *srv)
{
    for (size_t i = 0; i < srv->online; i++) {
        struct child_slot *c = &srv->children[srv->live[i]];
        if (c->pid > 0) {
            kill(c->pid, SIGKILL);
            while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        if (c->fd >= 0)
            close(c->fd);
    }
    free(srv->children);
    free(srv->live);
    free(srv->free_slots);
    free(srv->view.cursor);
    free(srv->view.group_seen);
    close(srv->bell_fd);
    close(srv->epfd);
}
/* [server-close] */

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
    struct server srv;
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
    server_init(&srv, listen_fd, (size_t)args.users);
    (void)conn_fd_limit(srv.limit); /* after: warns only a run that goes on */
    if (net_announce(listen_fd) < 0)
        die_errno("cannot write the listening line");
    log_set_tag("parent"); /* from now on, several processes share stderr */
    loop(&srv);
    server_close(&srv);
    return 0;
    /* [run] */
}
