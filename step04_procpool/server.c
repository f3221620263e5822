/**
 * @file step04_procpool/server.c
 * @brief Chapter 4: a pre-forked pool of workers serving one room.
 *
 * Book: chapter 15, 15.3 (the half-sync/half-async processpool, listing
 * 15-1), with 8.x (server models) and chapter 13 as background.
 *
 * The idea: the parent creates the listening socket and forks a fixed
 * pool of workers (child.c), one per CPU by default. It watches the
 * listening socket; when a connection waits, it tells one worker,
 * round-robin, to accept it, and that worker serves the client from then
 * on with its own epoll loop. The workers share one room through shared
 * memory (shm.c): a ring of messages per worker, read by all the others.
 *
 * This file is the parent's loop, its signals, status and shutdown, and
 * main(); its management of the workers (forking, reaping and replacing
 * them) is children.c, and `struct server` children.h.
 *
 * What this step does differently from the book's processpool.h:
 * - the worker accepts until EAGAIN, not once per notification, and the
 *   parent's listening socket is EPOLLONESHOT, re-armed when the worker
 *   says it is done, instead of edge-triggered and one accept per edge;
 * - the notification pipe is read until EAGAIN and its bytes are commands,
 *   so notices that arrive together are all seen;
 * - children never outlive the parent (PR_SET_PDEATHSIG), close every
 *   descriptor that is not theirs, and runtime errors are handled, never
 *   asserted; the signal handler writes one unsigned char, the signal
 *   number, on any machine;
 * - notifications are batched, and go from child to child: a writer
 *   pokes only the children that sleep (their doorbells in shared
 *   memory), once per loop pass however many messages, and the parent is
 *   on no message's path;
 * - a worker that dies is replaced (unless it could not even start); the
 *   parent announces its clients as left as soon as it has reaped it,
 *   whether or not a replacement can be forked, and a fork that fails
 *   (out of processes) is tried again on a short timer;
 * - one room across the whole pool, with room-wide ids and user limit.
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

/* [constants] */
/** Most milliseconds a graceful shutdown waits for the children. */
#define SHUTDOWN_GRACE_MS 3000
/** How long the parent waits for a worker's 'D' before it re-arms. */
#define ACCEPT_TIMEOUT_MS 1000
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
 * @brief Re-arms the one-shot listening socket: the next connection will
 *        be reported again.
 * @param srv the server.
 */
/* [rearm] */
void
rearm_listen(struct server *srv)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT,
                             .data.ptr = &token_listen};

    srv->accepting = NULL;
    if (srv->listen_fd >= 0 &&
        epoll_ctl(srv->epfd, EPOLL_CTL_MOD, srv->listen_fd, &ev) < 0)
        log_errno("cannot re-arm the listening socket");
}
/* [rearm] */

/**
 * @brief Creates the pool: tables, shared memory, loop, workers.
 * @param srv       the server to fill.
 * @param listen_fd the listening socket.
 * @param limit     most users at once, room-wide.
 * @param nworkers  the pool's size.
 */
/* [server-init] */
static void
server_init(struct server *srv, int listen_fd, size_t limit, size_t nworkers)
{
    memset(srv, 0, sizeof *srv);
    srv->listen_fd = listen_fd;
    srv->sig_fd = sig_pipefd[0];
    srv->limit = limit;
    srv->nworkers = nworkers;
    srv->accepting = NULL;
    srv->children = calloc(nworkers, sizeof *srv->children);
    srv->view.cursor = calloc(nworkers, sizeof *srv->view.cursor);
    srv->view.group_seen =
        calloc(nworkers / SHM_GROUP + 1, sizeof *srv->view.group_seen);
    if (srv->children == NULL || srv->view.cursor == NULL ||
        srv->view.group_seen == NULL)
        die_errno("cannot allocate a pool of %zu workers", nworkers);
    srv->started = clock_ms();

    srv->shm = shm_room_create(nworkers, limit, srv->shm_name);
    if (srv->shm == NULL)
        die_errno("cannot create shared memory for %zu workers", nworkers);
    if (log_verbose)
        log_msg("shared memory %s: mapped, and already unlinked",
                srv->shm_name);
    for (size_t i = 0; i < nworkers; i++) {
        int err = shm_slot_reserve(srv->shm, i);
        if (err != 0) {
            errno = err;
            die_errno("cannot reserve shared memory for worker %zu", i);
        }
    }

    srv->bell_fd =
        socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (srv->bell_fd < 0)
        die_errno("cannot create a socket for the doorbells");
    srv->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (srv->epfd < 0)
        die_errno("cannot create an epoll instance");
    /* Book pitfall (15.3): an edge-triggered listening socket and one
     * accept() per edge leave connections that arrive together in the
     * backlog. One-shot: reported once, re-armed when the worker that
     * accepted says it has emptied the backlog. */
    if (watch(srv, listen_fd, EPOLLIN | EPOLLONESHOT, &token_listen) < 0 ||
        watch(srv, srv->sig_fd, EPOLLIN, &token_signal) < 0)
        die_errno("cannot watch the listening socket and the signal pipe");

    for (size_t i = 0; i < nworkers; i++)
        srv->children[i].fd = -1; /* before any fork: see child_setup() */
    log_catch(true); /* why a worker cannot start: the cause, one line */
    for (size_t i = 0; i < nworkers; i++)
        if (spawn_child(srv, i) < 0)
            die("cannot start the pool: %s", log_caught());
    log_catch(false);
}
/* [server-init] */

/**
 * @brief Whether any worker can be told to accept.
 * @param srv the server.
 * @return true if at least one worker's socketpair is open.
 */
static bool
any_worker(const struct server *srv)
{
    for (size_t i = 0; i < srv->nworkers; i++)
        if (srv->children[i].fd >= 0)
            return true;
    return false;
}

/**
 * @brief A connection waits: tell the next living worker to accept it.
 *
 * Round-robin over the workers, as the book does; the listening socket
 * stays disarmed until that worker answers 'D' (or does not answer in
 * #ACCEPT_TIMEOUT_MS).
 * @param srv the server.
 */
/* [accept] */
static void
on_accept(struct server *srv)
{
    for (size_t tries = 0; tries < srv->nworkers; tries++) {
        size_t i = srv->next;
        srv->next = (srv->next + 1) % srv->nworkers;
        struct child_slot *c = &srv->children[i];
        if (c->fd < 0)
            continue; /* dead, not yet replaced */
        if (send(c->fd, "A", 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1) {
            trace_add(": worker %zu accepts", i);
            srv->accepting = c;
            srv->accept_deadline = clock_ms() + ACCEPT_TIMEOUT_MS;
            return;
        }
    }
    if (!any_worker(srv)) {
        /* Re-armed now, the waiting connection would report the socket
         * again at once, and again: a spin until a worker is forked.
         * spawn_child() re-arms it. */
        trace_add(": no worker, accepting paused");
        srv->accepting = NULL;
        srv->parked = true;
        return;
    }
    log_msg("no worker can accept now");
    rearm_listen(srv);
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
 *
 * Book pitfall (15.3): the sigaction() call sits inside an assert, so with
 * NDEBUG the call itself disappears and no handler is installed. Here the
 * call is made, and its failure is an error.
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
 * @brief SIGHUP: one status line for the room and one per worker.
 * @param srv the server.
 */
/* [status] */
static void
report_status(struct server *srv)
{
    struct shm_room *shm = srv->shm;

    log_msg("status: %zu users online, %lu messages relayed, up %lld s, "
            "%zu workers, reading paused %lu times, %lu slow readers dropped",
            shm_online(shm),
            atomic_load_explicit(&shm->relayed, memory_order_relaxed),
            (clock_ms() - srv->started) / 1000, srv->nworkers,
            atomic_load_explicit(&shm->pauses, memory_order_relaxed),
            atomic_load_explicit(&shm->slow, memory_order_relaxed));
    for (size_t i = 0; i < srv->nworkers; i++)
        log_msg("status: worker %zu pid %ld: %zu clients, %lu messages "
                "relayed",
                i, (long)srv->children[i].pid,
                atomic_load(&srv->shm->online[i]),
                atomic_load(&srv->shm->sent[i]));
}
/* [status] */

/**
 * @brief SIGINT/SIGTERM: stop accepting and tell every child to finish.
 *
 * Each worker sends its clients the notice, flushes, and exits; the loop
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
    close(srv->listen_fd); /* the workers' copies close as they exit */
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
 * @brief Counts the workers still running.
 * @param srv the server.
 * @return how many have a pid.
 */
static size_t
workers_alive(const struct server *srv)
{
    size_t n = 0;

    for (size_t i = 0; i < srv->nworkers; i++)
        n += srv->children[i].pid > 0;
    return n;
}

/**
 * @brief How long the parent may sleep: until the shutdown's deadline,
 *        the accepting worker's deadline, the next try of a fork, or of
 *        the doorbells owed.
 *
 * A worker that missed its deadline to accept is given up on here (the
 * listening socket re-armed for the next one), so that the wait that
 * follows is not 0 again and again.
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
    int timeout = -1;
    if (srv->accepting != NULL) {
        timeout = clock_ms_until(srv->accept_deadline);
        if (timeout == 0) {
            log_msg("worker %zu did not finish accepting in %d ms",
                    (size_t)(srv->accepting - srv->children),
                    ACCEPT_TIMEOUT_MS);
            rearm_listen(srv);
            timeout = -1;
        }
    }
    if (srv->bells_owed)
        timeout = clock_earlier(timeout, BELL_RETRY_MS);
    return clock_earlier(timeout, retry_forks(srv));
}
/* [wait-timeout] */

/**
 * @brief The parent's loop: hand out accepts, reap, replace.
 *
 * It runs while a worker runs, or while one waits to be forked again: a
 * pool of one whose worker died while fork() fails is not over.
 * @param srv the server.
 */
static void
loop(struct server *srv)
{
    struct epoll_event events[EPOLL_BATCH];

    while (workers_alive(srv) > 0 || (srv->respawn_at != 0 && !srv->closing)) {
        /* [loop-events] */
        int timeout = wait_timeout(srv);
        if (srv->closing && timeout == 0) {
            log_msg("shutdown: %zu children still running after %d ms; "
                    "killing them",
                    workers_alive(srv), SHUTDOWN_GRACE_MS);
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
            trace_add("; worker %zu", (size_t)(c - srv->children));
            on_child(srv, c);
        }
        if ((srv->news || srv->bells_owed) && !srv->closing) {
            srv->news = false; /* leaves of a dead worker */
            srv->bells_owed =
                !shm_ring_bells(srv->shm, srv->nworkers, srv->bell_fd);
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
    for (size_t i = 0; i < srv->nworkers; i++) {
        struct child_slot *c = &srv->children[i];
        if (c->pid > 0) {
            kill(c->pid, SIGKILL);
            while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
                ;
        }
        if (c->fd >= 0)
            close(c->fd);
    }
    free(srv->children);
    free(srv->view.cursor);
    free(srv->view.group_seen);
    close(srv->bell_fd);
    close(srv->epfd);
}
/* [server-close] */

/**
 * @brief Parses the command line, listens, runs the pool until a signal
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
    /* -n 0 (the default here) means: what the machine allows. */
    args_parse(argc, argv, &args, ARGS_WORKERS, 0);
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
    size_t users = conn_fd_limit((size_t)args.users);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t nworkers = args.workers > 0 ? (size_t)args.workers
                      : cpus > 0       ? (size_t)cpus
                                       : 1;
    server_init(&srv, listen_fd, users, nworkers);
    if (net_announce(listen_fd) < 0)
        die_errno("cannot write the listening line");
    log_set_tag("parent"); /* from now on, several processes share stderr */
    loop(&srv);
    bool graceful = srv.closing;
    server_close(&srv);
    if (!graceful) {
        log_msg("no worker could start; giving up");
        return EXIT_RUNTIME;
    }
    return 0;
    /* [run] */
}
