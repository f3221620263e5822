/**
 * @file step03_fork_shm/child.h
 * @brief The process that serves one client (book 13.6, run_child).
 */
#ifndef STEP03_CHILD_H
#define STEP03_CHILD_H

#include "shm.h"

#include <stddef.h>
#include <sys/types.h>

/* [child-start] */
/** Exit status of a child whose client read too slowly. */
#define CHILD_EXIT_SLOW 3

/** What a new child is handed by its parent across fork(). */
struct child_start {
    int client_fd; /**< the client's socket */
    int parent_fd; /**< the child's end of the socketpair */
    size_t slot; /**< its slot: the ring it writes */
    unsigned long id; /**< user<id> */
    size_t online; /**< users in the room, for the welcome */
    size_t limit; /**< the room's user limit */
    pid_t parent; /**< the parent's pid, to notice its death */
    struct shm_room *shm; /**< the shared rings */
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
