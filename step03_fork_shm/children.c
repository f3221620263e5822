/**
 * @file step03_fork_shm/children.c
 * @brief Chapter 3's parent and its children: a slot, an id and a child
 *        process per client, and the books kept when a child dies.
 *
 * The parent's loop (server.c) calls in here when a connection is
 * accepted (client_add()), when a child's socketpair is readable
 * (on_child()), to tell the children to quit (poke_children()) and on
 * SIGCHLD (reap_children()). The parent writes a ring only while no child
 * does: a user's join before its child is forked, its leave after the
 * child has been reaped.
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
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/**
 * @brief Writes a notice ("* user3 left") into a slot's ring.
 *
 * The parent writes a ring only while no child does: the join before the
 * slot's child is forked (join_slot()), the leave after it has been
 * reaped. So each ring keeps a single writer, and a user's join, messages
 * and leave reach every reader in that order. The sleepers are poked once
 * at the end of the loop's pass, for every notice written in it.
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
 * @brief Writes a newcomer's join into its slot's ring, before the fork.
 *
 * The join is the first record of the user in its ring, before any of its
 * messages, and it is written before the fork, which may fail: whatever
 * ends the child, the parent announces the user as left -- a client that
 * resets before its welcome is written included (tests/faults/flood.bats).
 * The parent writes it, not the child, so that a burst of joins wakes the
 * room once per pass of the parent's loop, not once per join: each join
 * is news to every child.
 * @param srv  the server.
 * @param slot the newcomer's slot, its ring without a writer.
 * @param id   the newcomer's id.
 */
static void
join_slot(struct server *srv, size_t slot, unsigned long id)
{
    char line[PROTO_LINE_MAX];

    ring_restart(srv->shm, slot); /* the join at record 0, if it can */
    ring_put(srv->shm, slot, line, proto_joined(line, id));
    srv->news = true;
}

/**
 * @brief In a new child: drops everything of the parent's but its share.
 *
 * fork() copies every descriptor. A child holding the listening socket or
 * the parent's ends of other children's socketpairs would keep them open
 * after the parent closed them or died (those children would never see
 * end of stream from a dead parent), and signal handlers would write into
 * the parent's signal pipe. Signals are
 * blocked across fork() until this has run.
 * @param client_fd the client's socket, which the child keeps.
 * @param mine      the child's end of its own socketpair, which it keeps.
 */
/* [child-setup] */
static void
child_setup(int client_fd, int mine)
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
    if (conn_close_others(client_fd, mine) < 0)
        die_child("cannot close the parent's descriptors");
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
 * @brief Picks the slot for a newcomer: a freed one, or the next never
 *        used.
 *
 * Freed slots are reused first, so the slots ever used -- and the pages
 * behind them -- grow only with the largest room there has been; the one
 * freed longest ago first, since every child has most likely copied its
 * last user's leave by now, and the new user can start a new lap of the
 * ring (ring_restart() in join_slot()): its join then lies beside the
 * other rings' and costs the room few page faults. A slot
 * used for the first time gets its ring reserved now (shm_slot_reserve()):
 * if /dev/shm cannot supply it, the newcomer is refused, and nobody dies
 * of SIGBUS later.
 * @param srv  the server.
 * @param slot receives the slot.
 * @return 0, or -1 with errno set.
 */
static int
take_slot(struct server *srv, size_t *slot)
{
    if (srv->nfree > 0) {
        *slot = srv->free_slots[srv->free_first];
    } else {
        *slot = srv->used;
        int err = shm_slot_reserve(srv->shm, *slot);
        if (err != 0) {
            errno = err;
            return -1;
        }
    }
    return 0;
}

/**
 * @brief Forks the child of @p slot, to serve @p fd, its user's join
 *        written first.
 * @param srv  the server.
 * @param slot the newcomer's slot: its ring, its doorbell.
 * @param fd   the client's socket, which the child keeps.
 * @return 0, or -1 if no process could be made.
 */
/* [spawn] */
static int
spawn_child(struct server *srv, size_t slot, int fd)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        log_errno("cannot make room for a new client");
        return -1;
    }
    /* The child reads every ring from its current end; writers wait for
     * it from now on. Its doorbell gets a new name, the new process's. */
    shm_reader_start(srv->shm, slot, &srv->view);
    srv->shm->bell[slot] = bell_name();
    join_slot(srv, slot, ++srv->next_id);
    struct child_start cs = {.client_fd = fd,
                             .parent_fd = sv[1],
                             .slot = slot,
                             .id = srv->next_id,
                             .online = srv->online + 1,
                             .limit = srv->limit,
                             .parent = getpid(),
                             .shm = srv->shm,
                             .view = srv->view};
    pid_t pid = fork_child(&cs, fd);
    if (pid < 0) {
        log_errno("cannot fork a child for a new client");
        shm_reader_stop(srv->shm, slot);
        notice_left(srv, slot, srv->next_id);
        close(sv[0]);
        return -1;
    }
    struct child_slot *c = &srv->children[slot];
    c->pid = pid;
    c->fd = sv[0];
    c->id = srv->next_id;
    if (net_set_nonblock(c->fd) < 0 || watch(srv, c->fd, EPOLLIN, c) < 0)
        log_errno("cannot watch user%lu's socketpair", c->id);
    trace_add(": user%lu in child %ld", c->id, (long)pid);
    return 0;
}
/* [spawn] */

/**
 * @brief Admits a new connection: a slot, an id, and a child process to
 *        serve it (which writes the welcome).
 * @param srv the server.
 * @param fd  the accepted socket; the parent closes its copy.
 */
/* [join] */
void
client_add(struct server *srv, int fd)
{
    size_t slot;

    if (srv->online == srv->limit) {
        trace_add(": room full, refused fd %d", fd);
        conn_refuse(fd);
        return;
    }
    if (take_slot(srv, &slot) < 0) {
        log_errno("cannot make room for a new client");
        conn_refuse(fd);
        return;
    }
    if (spawn_child(srv, slot, fd) < 0) {
        conn_refuse(fd);
        return;
    }
    close(fd); /* the child serves it; our copy would keep it open */

    if (slot == srv->used) {
        srv->used++;
    } else { /* take it off the queue */
        srv->free_first = (srv->free_first + 1) % srv->limit;
        srv->nfree--;
    }
    srv->children[slot].live = srv->online;
    srv->live[srv->online++] = slot;
    log_note("user%lu joined (%zu online)", srv->next_id, srv->online);
}
/* [join] */

/**
 * @brief A child's socketpair is readable: the child died.
 *
 * Children send nothing on it (their news goes to the other children
 * directly, through the doorbells); end of stream means the child is
 * gone: its socketpair is closed here, and the slot waits for SIGCHLD
 * and reap_children().
 * @param c the child's slot.
 */
/* [read] */
void
on_child(struct child_slot *c)
{
    char buf[256];

    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n > 0)
            continue; /* nothing is said here; drain it anyway */
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        trace_add(" closed");
        close(c->fd); /* also leaves the epoll set */
        c->fd = -1;
        return;
    }
}
/* [read] */

/**
 * @brief Sends one byte to every child: the order to shut down.
 *
 * Only the users online are visited. Pokes for news no longer come from
 * the parent: writers ring the sleepers' doorbells themselves.
 * @param srv the server.
 * @param cmd 'Q' to shut down.
 */
/* [poke] */
void
poke_children(struct server *srv, char cmd)
{
    for (size_t i = 0; i < srv->online; i++) {
        struct child_slot *c = &srv->children[srv->live[i]];
        if (c->fd >= 0 &&
            send(c->fd, &cmd, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
            errno != EAGAIN && errno != EWOULDBLOCK && cmd == 'Q')
            log_errno("cannot tell user%lu's child to quit", c->id);
    }
}
/* [poke] */

/**
 * @brief SIGCHLD: reaps every dead child, announces its user, frees its
 *        slot.
 *
 * Signals merge, so one SIGCHLD may stand for several children: waitpid()
 * with WNOHANG runs until no dead child is left. Only now, with the child
 * gone, can its slot be given to someone else.
 * @param srv the server.
 */
/* [reap] */
void
reap_children(struct server *srv)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        /* Book pitfall: sub_process[pid] is a table indexed by raw pid,
         * far beyond PROCESS_LIMIT on any modern system. A scan of the
         * users online finds the child -- guarded by
         * tests/step03/children.bats. */
        size_t k = 0;
        while (k < srv->online && srv->children[srv->live[k]].pid != pid)
            k++;
        if (k == srv->online)
            continue; /* not a child of a slot */
        size_t slot = srv->live[k];
        struct child_slot *c = &srv->children[slot];
        if (c->fd >= 0)
            close(c->fd);
        trace_add("; user%lu's child %ld %s %d", c->id, (long)pid,
                  WIFSIGNALED(status) ? "killed by signal" : "exited",
                  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        log_note("user%lu left", c->id);
        if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_EXIT_SLOW)
            srv->slow++;
        shm_reader_stop(srv->shm, slot);
        if (!srv->closing)
            notice_left(srv, slot, c->id);
        c->pid = 0;
        c->fd = -1;
        /* Swap-remove: the last user online takes the leaver's place. */
        srv->live[k] = srv->live[--srv->online];
        srv->children[srv->live[k]].live = k;
        srv->free_slots[(srv->free_first + srv->nfree++) % srv->limit] = slot;
    }
    if (pid < 0 && errno != ECHILD)
        log_errno("waitpid");
}
/* [reap] */
