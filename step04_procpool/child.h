/**
 * @file step04_procpool/child.h
 * @brief A worker of the pool (book 15.3, processpool::run_child): a child
 *        process that serves many clients.
 */
#ifndef STEP04_CHILD_H
#define STEP04_CHILD_H

#include "shm.h"

#include <stddef.h>
#include <sys/types.h>

/* [child-start] */
/** Exit status of a worker that cannot even start: do not replace it. */
#define CHILD_EXIT_FATAL 70
/** Exit status of a worker that fell a whole ring behind (a slow reader). */
#define CHILD_EXIT_SLOW 3

/** What a new worker is handed by the parent across fork(). */
struct child_start {
    int listen_fd; /**< the listening socket, accepted from on 'A' */
    int parent_fd; /**< the worker's end of the socketpair */
    size_t slot; /**< its slot: the ring it writes, its row of the books */
    size_t limit; /**< the room's user limit */
    pid_t parent; /**< the parent's pid, to notice its death */
    struct shm_room *shm; /**< the shared rings and books */
    struct shm_view view; /**< where it starts reading (parent's memory) */
};
/* [child-start] */

/**
 * @brief Serves the child's clients until they have gone, then exits.
 *
 * The book's processpool names the body of each child run_child(); it is
 * that of chapter 3's child (one client) and of chapter 4's worker (many
 * clients). What it serves and how it talks to its parent: the file
 * comment of its child.c. It never returns: it leaves with _exit(), so
 * that the parent's stdio buffers are not flushed twice.
 * @param cs what the parent handed over; every other descriptor of the
 *           parent must already be closed.
 */
_Noreturn void run_child(const struct child_start *cs);

#endif
