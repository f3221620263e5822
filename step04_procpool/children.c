/**
 * @file step04_procpool/children.c
 * @brief Chapter 4's parent and its workers: the pool forked at start, a
 *        worker's messages, and a dead worker replaced.
 *
 * The parent's loop (server.c) calls in here to fork the pool
 * (spawn_child(), from server_init()), when a worker's socketpair is
 * readable (on_child()), to tell the workers to quit (poke_children()),
 * on SIGCHLD (reap_children()) and when the forks that failed are due
 * again (retry_forks()). A dead worker's clients are announced as left
 * (announce_leaves()) whether or not a replacement can be forked
 * (replace_worker()).
 */
#include "child.h"
#include "children.h"
#include "clock.h"
#include "conn.h"
#include "log.h"
#include "net.h"
#include "proto.h"
#include "shm.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/** How long the parent waits before it tries again to fork a worker it
 * could not replace (fork() failed: out of processes or memory). */
#define RESPAWN_RETRY_MS 200

/**
 * @brief Writes a notice ("* user3 left") into a slot's ring.
 *
 * The parent writes a ring only while no child does: the leaves of a
 * worker's users after it has been reaped, before its replacement is
 * forked (announce_leaves()). So each ring keeps a single writer, and a
 * user's join, messages and leave reach every reader in that order. The
 * sleepers are poked once at the end of the loop's pass, for every notice
 * written in it.
 * @param srv  the server.
 * @param slot the ring.
 * @param id   the user who left.
 */
/* [notice] */
static void
notice_left(struct server *srv, size_t slot, unsigned long id)
{
    char line[PROTO_LINE_MAX];

    ring_put(srv->shm, slot, line, proto_left(line, id));
    srv->news = true;
}
/* [notice] */

/**
 * @brief In a new child: drops everything of the parent's but its share.
 *
 * fork() copies every descriptor. A child holding the parent's ends of
 * other children's socketpairs would keep them open after the parent
 * closed them or died (those children would never see end of stream from
 * a dead parent), and signal handlers would write into the parent's
 * signal pipe. A worker keeps the listening socket: it accepts. Signals
 * are blocked across fork() until this has run.
 * @param listen_fd the listening socket, which the worker keeps.
 * @param mine      the worker's end of its own socketpair, which it keeps.
 */
/* [child-setup] */
static void
child_setup(int listen_fd, int mine)
{
    static const int parent_only[] = {SIGINT, SIGHUP, SIGCHLD};
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    struct sigaction ign = {.sa_handler = SIG_IGN};

    /* Ctrl-C and a hang-up reach the whole process group; the parent
     * handles them for everyone and tells the children over the
     * socketpair. SIGTERM sent to a child alone ends that child. */
    sigaction(SIGTERM, &dfl, NULL);
    for (size_t i = 0; i < sizeof parent_only / sizeof parent_only[0]; i++)
        sigaction(parent_only[i], parent_only[i] == SIGCHLD ? &dfl : &ign,
                  NULL);

    /* Book pitfall (15.3's pool has it too): a child keeps the parent's
     * ends of the earlier children's socketpairs, so when the parent dies
     * those children never see their socketpair close. All of the
     * parent's descriptors go but the two kept, in a call per gap: a
     * close() per child made each fork cost one call per child. */
    if (conn_close_others(listen_fd, mine) < 0) {
        log_errno("cannot close the parent's descriptors");
        _exit(CHILD_EXIT_FATAL); /* a replacement would fail the same way */
    }
}
/* [child-setup] */

/**
 * @brief Forks the child that runs run_child(@p cs), every signal blocked
 *        across fork().
 *
 * Between fork() and child_setup() the child still has the parent's
 * handlers: a signal there would run the parent's handler in the child,
 * which would write into the parent's signal pipe, and the parent would
 * act on a signal that was not its own. Blocked, the signal waits until
 * the child has put its own dispositions in place.
 * @param cs      what the child is handed; `cs->parent_fd`, the child's
 *                end of the socketpair, is closed here in the parent.
 * @param keep_fd the other descriptor the child keeps (child_setup()).
 * @return the child's pid, or -1 with errno set if no process could be
 *         made.
 */
/* [fork] */
static pid_t
fork_child(const struct child_start *cs, int keep_fd)
{
    sigset_t all, old;

    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        child_setup(keep_fd, cs->parent_fd);
        sigprocmask(SIG_SETMASK, &old, NULL);
        run_child(cs);
    }
    int saved = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(cs->parent_fd);
    errno = saved;
    return pid;
}
/* [fork] */

/**
 * @brief A random name for a new child's doorbell.
 *
 * Abstract socket names can be seen by every local user
 * (/proc/net/unix); a name drawn at random for each child cannot be
 * taken by someone else before the child binds it.
 * @return 64 random bits (from the clock and a counter, if the kernel
 *         has no randomness to give yet: still unique).
 */
static uint64_t
bell_name(void)
{
    static uint64_t count;
    uint64_t v;

    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
        return v;
    return ((uint64_t)clock_ms() << 20) ^ ((uint64_t)getpid() << 44) ^ ++count;
}

/**
 * @brief Forks the worker of @p slot, or replaces it after its death.
 * @param srv  the server.
 * @param slot the worker's slot: its ring, its rows of the tables.
 * @return 0, or -1 if no process could be made.
 */
/* [spawn] */
int
spawn_child(struct server *srv, size_t slot)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        log_errno("cannot create a socketpair for worker %zu", slot);
        return -1;
    }
    /* The child reads every ring from its current end; writers wait for
     * it from now on. Its doorbell gets a new name, the new process's. */
    shm_reader_start(srv->shm, slot, &srv->view);
    srv->shm->bell[slot] = bell_name();
    struct child_start cs = {.listen_fd = srv->listen_fd,
                             .parent_fd = sv[1],
                             .slot = slot,
                             .limit = srv->limit,
                             .parent = getpid(),
                             .shm = srv->shm,
                             .view = srv->view};
    pid_t pid = fork_child(&cs, srv->listen_fd);
    if (pid < 0) {
        log_errno("cannot fork worker %zu", slot);
        shm_reader_stop(srv->shm, slot);
        close(sv[0]);
        return -1;
    }
    struct child_slot *c = &srv->children[slot];
    c->pid = pid;
    c->fd = sv[0];
    if (net_set_nonblock(c->fd) < 0 || watch(srv, c->fd, EPOLLIN, c) < 0)
        log_errno("cannot watch worker %zu's socketpair", slot);
    trace_add("; worker %zu is pid %ld", slot, (long)pid);
    if (srv->parked) {
        srv->parked = false; /* someone can accept again */
        rearm_listen(srv);
    }
    return 0;
}
/* [spawn] */

/**
 * @brief A worker wrote: "done accepting", or death.
 *
 * News in a ring does not come here: the workers ring each other's
 * doorbells themselves (ring_bells() in child.c).
 * @param srv the server.
 * @param c   the worker's slot.
 */
/* [read] */
void
on_child(struct server *srv, struct child_slot *c)
{
    char buf[256];

    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n > 0) {
            for (ssize_t k = 0; k < n; k++) {
                if (buf[k] == 'D' && srv->accepting == c) {
                    trace_add(" done accepting");
                    rearm_listen(srv);
                }
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        trace_add(" closed");
        close(c->fd); /* also leaves the epoll set */
        c->fd = -1;
        if (srv->accepting == c)
            rearm_listen(srv);
        return;
    }
}
/* [read] */

/**
 * @brief Tells every worker a command over its socketpair.
 *
 * Only 'Q' (shut down) now: news in the rings rings the doorbells.
 * @param srv the server.
 * @param cmd 'Q' to shut down.
 */
/* [poke] */
void
poke_children(struct server *srv, char cmd)
{
    for (size_t i = 0; i < srv->nworkers; i++) {
        struct child_slot *c = &srv->children[i];
        if (c->fd >= 0 &&
            send(c->fd, &cmd, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
            errno != EAGAIN && errno != EWOULDBLOCK && cmd == 'Q')
            log_errno("cannot tell worker %zu to quit", i);
    }
}
/* [poke] */

/**
 * @brief Tells the room that the users of dead worker @p i have left.
 *
 * Their connections died with the worker; its row of the users table
 * still lists them. The parent publishes their leaves in the dead
 * worker's ring itself, as soon as it has reaped it: until a replacement
 * is forked the ring has no writer, and the replacement may be long in
 * coming (fork() fails while the machine is out of processes). Meanwhile
 * the room must not list users who are gone: a newcomer is told the
 * count, and the users' ids must not hold seats of the user limit.
 *
 * The count goes down before the leaves are published: a newcomer who
 * joins after someone heard a leave is never told a count with the
 * leaver in it. A ring
 * still full of records the other workers have not read takes what fits;
 * the rest stays in the row for the next try (#RESPAWN_RETRY_MS) or for
 * the replacement (announce_predecessor() in child.c).
 * @param srv the server.
 * @param i   the dead worker; no process may own its ring now.
 */
/* [announce-leaves] */
static void
announce_leaves(struct server *srv, size_t i)
{
    struct shm_room *shm = srv->shm;
    _Atomic unsigned long *users = shm_users(shm, i);
    uint64_t floor = 0;
    size_t room = ring_room(shm, i, &floor), listed = 0, told = 0;
    size_t top = atomic_load(&shm->top[i]);

    for (size_t k = 0; k < top; k++)
        listed += atomic_load(&users[k]) != 0;
    if (listed == 0 && atomic_load(&shm->online[i]) == 0)
        return;
    atomic_store(&shm->online[i], listed - (listed < room ? listed : room));
    for (size_t k = 0; k < top && told < room; k++) {
        unsigned long id = atomic_load(&users[k]);
        if (id == 0)
            continue;
        notice_left(srv, i, id); /* the doorbells ring at the end of the pass */
        atomic_store(&users[k], 0);
        log_note("user%lu left", id);
        told++;
    }
    /* A trace, not a warning: with the fork failing, this runs on every
     * try. */
    trace_add("; %zu users of worker %zu announced as left, %zu wait for "
              "room in its ring",
              told, i, listed - told);
}
/* [announce-leaves] */

/**
 * @brief Announces dead worker @p i's users and forks its replacement; if
 *        that fails, arms the retry timer.
 *
 * The failure is logged once per streak of failed tries of that worker,
 * with its cause, and the streak's end once: a machine out of processes
 * for a minute must not fill the log with 300 lines.
 * @param srv the server.
 * @param i   the dead worker.
 */
/* [replace] */
static void
replace_worker(struct server *srv, size_t i)
{
    struct child_slot *c = &srv->children[i];
    char why[256];

    announce_leaves(srv, i);
    log_catch(true); /* spawn_child()'s reason, for one line per streak */
    int rc = spawn_child(srv, i);
    snprintf(why, sizeof why, "%s", log_caught());
    log_catch(false);
    if (rc == 0) {
        /* A warning of a worker that runs (log.h: "no reason given" is
         * what log_caught() says when nothing was kept). */
        if (strcmp(why, "no reason given") != 0)
            log_msg("%s", why);
        if (c->fork_failures > 0)
            log_msg("worker %zu replaced after %u failed tries", i,
                    c->fork_failures);
        c->fork_failures = 0;
        return;
    }
    if (c->fork_failures++ == 0)
        log_msg("cannot replace worker %zu: %s; trying again every %d ms", i,
                why, RESPAWN_RETRY_MS);
    else
        trace_add("; worker %zu: try %u failed", i, c->fork_failures);
    srv->respawn_at = clock_ms() + RESPAWN_RETRY_MS;
}
/* [replace] */

/**
 * @brief The retry timer: tries again to fork the workers that could not
 *        be replaced, once it is due.
 * @param srv the server.
 * @return milliseconds until the next try, or -1 if none is due.
 */
/* [retry] */
int
retry_forks(struct server *srv)
{
    if (srv->respawn_at == 0 || srv->closing)
        return -1;
    if (clock_ms_until(srv->respawn_at) > 0)
        return clock_ms_until(srv->respawn_at);
    srv->respawn_at = 0;
    trace_begin("retrying forks");
    for (size_t i = 0; i < srv->nworkers; i++)
        if (srv->children[i].pid == 0 && srv->children[i].fork_failures > 0)
            replace_worker(srv, i);
    if (srv->news) { /* leaves that had to wait for room */
        srv->news = false;
        srv->bells_owed =
            !shm_ring_bells(srv->shm, srv->nworkers, srv->bell_fd);
    }
    trace_end();
    return srv->respawn_at == 0 ? -1 : clock_ms_until(srv->respawn_at);
}
/* [retry] */

/**
 * @brief SIGCHLD: reaps every dead worker and replaces it.
 *
 * The parent announces the dead worker's clients as left at once (see
 * announce_leaves()), then forks the replacement, which owns the dead
 * worker's ring and rows from then on; a fork that fails is tried again
 * on a timer. A worker that exited with #CHILD_EXIT_FATAL could not even
 * start: replacing it would only fail again, forever (nginx's rule too);
 * its users are announced all the same.
 * @param srv the server.
 */
/* [reap] */
void
reap_children(struct server *srv)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        size_t slot = 0;
        while (slot < srv->nworkers && srv->children[slot].pid != pid)
            slot++;
        if (slot == srv->nworkers)
            continue; /* not a child of a slot */
        struct child_slot *c = &srv->children[slot];
        if (c->fd >= 0)
            close(c->fd);
        trace_add("; worker %zu (pid %ld) %s %d", slot, (long)pid,
                  WIFSIGNALED(status) ? "killed by signal" : "exited",
                  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        if (srv->accepting == c)
            rearm_listen(srv);
        shm_reader_stop(srv->shm, slot);
        c->pid = 0;
        c->fd = -1;
        if (srv->closing)
            continue;
        if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_EXIT_FATAL) {
            log_msg("worker %zu cannot start; not replacing it", slot);
            announce_leaves(srv, slot);
            continue;
        }
        log_msg("worker %zu (pid %ld) died; replacing it", slot, (long)pid);
        replace_worker(srv, slot);
    }
    if (pid < 0 && errno != ECHILD)
        log_errno("waitpid");
}
/* [reap] */
