/**
 * @file step04_procpool/children.h
 * @brief The parent's state, shared by its loop (server.c) and its
 *        management of its workers (children.c).
 */
#ifndef STEP04_CHILDREN_H
#define STEP04_CHILDREN_H

#include "shm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* [types] */
/** One worker process of the pool. */
struct child_slot {
    pid_t pid; /**< its pid, 0 while it is being replaced */
    int fd; /**< parent's end of the socketpair, -1 once closed */
    unsigned fork_failures; /**< failed tries to replace it, in a row; while
                               non-zero (and pid 0) it waits for a retry */
};

/** The parent: the listening socket, the pool, the event loop. */
struct server {
    int epfd; /**< the epoll instance */
    int listen_fd; /**< the listening socket, -1 once closing */
    int sig_fd; /**< read end of the signal pipe */
    size_t limit; /**< most users at once, room-wide */
    size_t nworkers; /**< the pool's size (`-w`) */
    struct child_slot *children; /**< #nworkers slots */
    size_t next; /**< round-robin: the next worker to accept */
    struct child_slot *accepting; /**< the worker told to accept, or NULL */
    long long accept_deadline; /**< when to stop waiting for it */
    bool parked; /**< listening socket left disarmed: no worker to accept */
    long long respawn_at; /**< when to retry the failed forks, 0 for none */
    struct shm_room *shm; /**< the shared rings and books */
    char shm_name[64]; /**< its (already unlinked) name */
    struct shm_view view; /**< a new worker's start, inherited at fork */
    int bell_fd; /**< datagram socket for ringing doorbells */
    bool news; /**< a dead worker's leaves written: ring the bells */
    bool bells_owed; /**< a sleeper could not be poked yet: try again */
    long long started; /**< start time, for the uptime (SIGHUP) */
    bool closing; /**< SIGINT/SIGTERM seen: waiting for the workers */
    long long deadline; /**< when a graceful shutdown gives up */
};
/* [types] */

/* Documented where they are defined: watch() and rearm_listen() in
 * server.c, the rest in children.c. The cond keeps Doxygen from taking
 * chapter 3's and chapter 4's functions of the same name for one. */
/** @cond */
int watch(struct server *srv, int fd, uint32_t events, void *token);
void rearm_listen(struct server *srv);
int spawn_child(struct server *srv, size_t slot);
void on_child(struct server *srv, struct child_slot *c);
void poke_children(struct server *srv, char cmd);
int retry_forks(struct server *srv);
void reap_children(struct server *srv);
/** @endcond */

#endif
