/**
 * @file step03_fork_shm/children.h
 * @brief The parent's state, shared by its loop (server.c) and its
 *        management of its children (children.c).
 */
#ifndef STEP03_CHILDREN_H
#define STEP03_CHILDREN_H

#include "shm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* [types] */
/** One user, served by one child process. A slot with pid 0 is free. */
struct child_slot {
    pid_t pid; /**< its child, 0 when the slot is free */
    int fd; /**< parent's end of the socketpair, -1 once closed */
    unsigned long id; /**< lifetime-unique: user<id> */
    size_t live; /**< its index in server.live while online */
};

/** The parent: the listening socket, the children, the event loop. */
struct server {
    int epfd; /**< the epoll instance */
    int listen_fd; /**< the listening socket, -1 once closing */
    int sig_fd; /**< read end of the signal pipe */
    int spare_fd; /**< spare descriptor, spent when out of fds */
    size_t limit; /**< most users at once (`-n`) */
    size_t online; /**< users in the room (children alive) */
    unsigned long next_id; /**< id of the last user admitted */
    struct child_slot *children; /**< #limit slots, touched only once used */
    size_t *live; /**< slots of the users online, dense: walks visit these */
    size_t used; /**< slots ever handed out: [0, used) */
    /** Freed slots, all below #used, oldest first: a queue of #limit
     * entries, from #free_first on (the longest free has its ring read by
     * everyone, and its next user starts a new lap: ring_restart()). */
    size_t *free_slots;
    size_t free_first; /**< the oldest entry of #free_slots */
    size_t nfree; /**< entries on #free_slots */
    struct shm_room *shm; /**< the shared rings, one per slot */
    char shm_name[64]; /**< its (already unlinked) name */
    struct shm_view view; /**< a newcomer's start, inherited at fork */
    int bell_fd; /**< datagram socket for ringing doorbells */
    bool news; /**< a join or a leave written in this pass: ring the bells */
    bool bells_owed; /**< a sleeper could not be poked yet: try again */
    unsigned long slow; /**< children that left as slow readers (SIGHUP) */
    long long started; /**< start time, for the uptime (SIGHUP) */
    bool closing; /**< SIGINT/SIGTERM seen: waiting for the children */
    long long deadline; /**< when a graceful shutdown gives up */
};
/* [types] */

/* Documented where they are defined: watch() in server.c, the rest in
 * children.c. The cond keeps Doxygen from taking chapter 3's and chapter
 * 4's functions of the same name for one. */
/** @cond */
int watch(struct server *srv, int fd, uint32_t events, void *token);
void client_add(struct server *srv, int fd);
void on_child(struct child_slot *c);
void poke_children(struct server *srv, char cmd);
void reap_children(struct server *srv);
/** @endcond */

#endif
