/**
 * @file room.h
 * @brief The chat room: its users, their lines, fan-out into output
 *        queues, the notices, and flow control.
 *
 * Book: 9.6.2, listing 9-7 -- the room that the poll server of chapter 1
 * serves. Chapters 2, 3 and 4 carry this module unchanged: what they
 * change is how they wait, never the room (in chapter 3 a child's room
 * has one client, in chapter 4 a worker's has many).
 *
 * The loop that drives the room knows nothing about chat, and the room
 * knows nothing about poll() or epoll. The loop tells the room what
 * happened -- a connection to admit (room_join()), a client readable
 * (room_readable()) or writable (room_writable()) -- and, once per pass,
 * lets it settle (room_settle()): read the clients with input, announce
 * who left, write the queues. The loop asks back whether the room reads
 * at all now (room_reading()) and how long it may sleep (room_timeout()).
 *
 * Cost follows who is online: the users sit in a dense array, and each
 * list (input to read, output to write, queues too long, clients leaving)
 * holds only the clients that have something to do. A client's line
 * buffer and queue exist from its join to its leave.
 *
 * Flow control: a client's queue that passes the high mark pauses the
 * reading of every sender (their bytes wait in the kernel, and TCP slows
 * them down) until it is back under the low mark. A reader that does not
 * get there within the grace period is dropped as a slow reader. So a
 * flood slows its sender, never the readers who keep up, and a stalled
 * reader holds the room for at most the grace period.
 */
#ifndef ROOM_H
#define ROOM_H

#include "line.h"
#include "outq.h"

#include <stdbool.h>
#include <stddef.h>

/* [types] */
/** A link of one of the room's lists; not on a list while next is NULL. */
struct room_link {
    struct room_link *prev; /**< the one before, or the list's head */
    struct room_link *next; /**< the one after, or the list's head */
};

/** One connected user, from its join to its leave. */
struct client {
    int fd; /**< its socket */
    unsigned long id; /**< lifetime-unique: user<id> */
    size_t seat; /**< its index in room::users */
    size_t tag; /**< the chapter's own number for it (chapter 4: its entry
                   in the shared table of users) */
    bool leaving; /**< dropped: announced and freed by room_settle() */
    bool shut; /**< shutdown(SHUT_WR) done (the server is closing) */
    long long over_since; /**< when its queue passed the high mark */
    struct room_link ready; /**< on room::ready: input waits to be read */
    struct room_link dirty; /**< on room::dirty: output queued this pass */
    struct room_link over; /**< on room::over: its queue is too long */
    struct room_link gone; /**< on room::leaving */
    struct line_framer in; /**< its unfinished input line */
    struct outq out; /**< output not yet written to it */
};

/** What a room spread over several processes adds (chapter 4): where the
 * books of the whole room are, and how its lines reach the other parts.
 * A room in one process passes NULL to room_init(). */
struct room_hooks {
    void *ctx; /**< passed to every hook */
    /** A fresh id, unique in the whole room. */
    unsigned long (*new_id)(void *ctx);
    /** Users online in the whole room, this part's included. */
    size_t (*online)(void *ctx);
    /** Lines #publish may take now; below 3, input waits. */
    size_t (*room_to_publish)(void *ctx);
    /** A line said here (message or notice), for the rest of the room. */
    void (*publish)(void *ctx, const char *line, size_t len);
    /** @p c joined here: 0, or -1 with errno set to turn it away. */
    int (*joined)(void *ctx, struct client *c);
    /** @p c left, and its leave has been published; it is freed next. */
    void (*left)(void *ctx, struct client *c);
    /** Joins and leaves are said elsewhere (chapter 3's parent writes
     * them): the room neither says nor logs them, and only welcomes. */
    bool quiet;
};

/** Counts for the SIGHUP status line. */
struct room_stats {
    unsigned long relayed; /**< messages relayed */
    unsigned long pauses; /**< times reading was paused for a long queue */
    unsigned long slow; /**< readers dropped for being too slow */
};

/** The room. */
struct room {
    size_t limit; /**< most users at once (`-n`), room-wide */
    size_t online; /**< users here: entries of #users */
    unsigned long next_id; /**< the last id given out (without hooks) */
    struct client **users; /**< [0, #online): everyone here, dense */
    size_t cap; /**< entries allocated in #users */
    struct room_link ready; /**< clients with input to read */
    struct room_link dirty; /**< clients given output in this pass */
    struct room_link over; /**< queues over the high mark, oldest first */
    struct room_link leaving; /**< clients to announce and free */
    int spare_fd; /**< spare descriptor, spent when out of descriptors */
    bool held; /**< input waits for the rest of the room (hooks) */
    bool closing; /**< shutting down: nothing more is relayed */
    long long trim_at; /**< the heap is trimmed again no sooner */
    const struct room_hooks *hooks; /**< NULL in one process */
    struct room_stats stats; /**< for the status line */
};
/* [types] */

/**
 * @brief Makes an empty room for @p limit users.
 *
 * Nothing is allocated per user of the limit: the table of users grows
 * with the users who are there. Exits with one line if the spare
 * descriptor cannot be opened (a start-up failure).
 * @param room  the room to fill.
 * @param limit most users at once, room-wide.
 * @param hooks NULL, or what a room spread over processes adds; must
 *              outlive the room.
 */
void room_init(struct room *room, size_t limit, const struct room_hooks *hooks);

/**
 * @brief Accepts the next waiting connection (common/conn.c).
 * @param room      the room, for its spare descriptor.
 * @param listen_fd the nonblocking listening socket.
 * @return the new socket, or -1 when nothing waits or accept failed (the
 *         failure is logged; stop accepting until the next wake-up).
 */
int room_accept(struct room *room, int listen_fd);

/**
 * @brief Admits a connection: an id, the welcome, and the join notice.
 *
 * A full room refuses it with "too many users" and closes it.
 * @param room the room.
 * @param fd   the accepted, nonblocking socket; the room owns it now.
 * @return the new client, or NULL if it was refused (fd closed).
 */
struct client *room_join(struct room *room, int fd);

/**
 * @brief Drops a client; room_settle() announces and frees it.
 *
 * Deferred, because a drop is often found in the middle of a fan-out,
 * and the announcement is itself a fan-out that may drop more: a list
 * keeps that iterative. The client stays valid until room_settle().
 * Calling it twice is harmless.
 * @param room the room.
 * @param c    the client.
 */
void room_drop(struct room *room, struct client *c);

/**
 * @brief The loop saw input, or a hang-up, on @p c: it will be read.
 *
 * Reading happens in room_settle(), client after client, so that one
 * client's flood does not hold up the others, and not at all while a
 * long queue pauses the room. Edge-triggered loops rely on the room to
 * remember the client until it has been read dry.
 * @param room the room.
 * @param c    the client.
 */
void room_readable(struct room *room, struct client *c);

/**
 * @brief The loop saw that @p c's socket can take data: write its queue.
 * @param room the room.
 * @param c    the client.
 */
void room_writable(struct room *room, struct client *c);

/**
 * @brief Ends a pass of the loop: reads, drops, announcements, writes.
 *
 * Drops the readers whose grace period has run out, reads the clients
 * with input (as long as the room reads), announces who left -- which
 * may drop more -- and, if @p write, writes every queue that was given
 * output in this pass.
 * @param room  the room.
 * @param write true to write the queues now (edge-triggered loops: the
 *              socket reports no new "writable" until it was full);
 *              false when the loop writes on its own readiness reports.
 */
void room_settle(struct room *room, bool write);

/**
 * @brief Whether the room reads its clients now.
 *
 * False while a queue is over the high mark (flow control) or the rest
 * of the room cannot take more lines (hooks): the loop need not watch for
 * input meanwhile.
 * @param room the room.
 * @return true if input is read.
 */
bool room_reading(const struct room *room);

/**
 * @brief Whether the room's queues take lines from elsewhere now.
 *
 * False only while a queue is over the high mark. A room that is `held`
 * still takes them: broadcasting says nothing to the rest of the room, so
 * chapter 4's worker copies the other workers' rings while its own is
 * full -- were it to wait, two workers with full rings would each wait
 * for the other.
 * @param room the room.
 * @return true if room_broadcast() may be called.
 */
bool room_taking(const struct room *room);

/**
 * @brief How long the loop may sleep before the room has work.
 * @param room the room.
 * @return 0 if input waits to be read, the milliseconds to the next
 *         grace period's end, a short retry while the rest of the room
 *         is full, the time until a trim of the heap that is owed, or -1
 *         for "until an event".
 */
int room_timeout(const struct room *room);

/**
 * @brief Gives every client here a line that was said elsewhere.
 *
 * For lines from other parts of a room spread over processes (chapter 4).
 * @param room the room.
 * @param line the line, ending in `\n`.
 * @param len  its length.
 */
void room_broadcast(struct room *room, const char *line, size_t len);

/**
 * @brief Shuts the room: the notice to everyone, and nothing more relayed.
 *
 * Each client's write side is shut once its queue is written, so that it
 * reads every byte and then end of stream. The loop goes on until
 * everyone has gone, or its own deadline.
 * @param room the room.
 */
void room_shutdown(struct room *room);

/**
 * @brief The longest output queue, for the status line.
 * @param room the room.
 * @return bytes queued for the client that has most.
 */
size_t room_largest_queue(const struct room *room);

/**
 * @brief Closes every connection and frees the room.
 * @param room the room.
 */
void room_close(struct room *room);

#endif
