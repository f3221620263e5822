/**
 * @file room.c
 * @brief The chat room: users, lines, fan-out, notices, flow control.
 *
 * Book: 9.6.2, listing 9-7. What this module does differently from the
 * book's room:
 * - each client has its own output queue, so two messages in one pass, or
 *   a message read while the last one is still being written, are never
 *   lost (the book points every reader at the sender's one buffer);
 * - input is framed into lines (common/line.c) instead of relaying
 *   whatever one recv() returned;
 * - the users are a dense array, as the book's `fds[]` is: a message
 *   costs the users online, never the user limit;
 * - a flood pauses the reading of senders while a queue is over
 *   #HIGH_WATER; a reader that does not drain below #LOW_WATER within
 *   #GRACE_MS is dropped, never blocked on and never fed half a line.
 */
#include "room.h"

#include "clock.h"
#include "conn.h"
#include "log.h"
#include "proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/** Bytes read from one client per recv(). A read of empty lines grows
 * every queue by up to about 17 times this, so it stays small. */
/* [constants] */
#define READ_SIZE 16384
/** Reads from one client per turn before the next client's turn. */
#define READ_BUDGET 4
/** A queue longer than this pauses the reading of every sender. */
#define HIGH_WATER 262144 /* 256 KiB */
/** Reading resumes once every queue is shorter than this. */
#define LOW_WATER 65536 /* 64 KiB */
/** How long a queue may stay over #LOW_WATER once it passed #HIGH_WATER. */
#define GRACE_MS 1000
/** Most bytes ever queued for one client: past this it is dropped at
 * once (notices keep coming while reading is paused). */
#define QUEUE_LIMIT 1048576 /* 4 * HIGH_WATER, 1 MiB */
/** While the rest of the room can take no lines, how soon to try again. */
#define RETRY_MS 5
/** Least milliseconds between two trims of the heap (outq_trim()): a room
 * that frees much pass after pass (a flood's big buffers) walks the heap
 * at most this often, and a room that went idle after a burst gets its
 * memory back within this time. */
#define TRIM_MS 1000
/* [constants] */

/**
 * @brief The client a list link belongs to.
 * @param link   the link.
 * @param offset where that link sits in struct client.
 * @return the client.
 */
static struct client *
client_of(struct room_link *link, size_t offset)
{
    return (struct client *)(void *)((char *)link - offset);
}

/** The first client on list @p head, whose links are member @p m. */
#define FIRST(head, m) client_of((head)->next, offsetof(struct client, m))

/**
 * @brief Makes @p head an empty list.
 * @param head the list.
 */
static void
list_init(struct room_link *head)
{
    head->prev = head->next = head;
}

/**
 * @brief Tells whether a list is empty.
 * @param head the list.
 * @return true if nothing is on it.
 */
static bool
list_empty(const struct room_link *head)
{
    return head->next == head;
}

/**
 * @brief Tells whether a link is on a list.
 * @param link the link.
 * @return true if it is.
 */
static bool
listed(const struct room_link *link)
{
    return link->next != NULL;
}

/**
 * @brief Appends @p link at the end of @p head, if it is on no list.
 * @param head the list.
 * @param link the link.
 */
static void
list_add(struct room_link *head, struct room_link *link)
{
    if (listed(link))
        return;
    link->prev = head->prev;
    link->next = head;
    head->prev->next = link;
    head->prev = link;
}

/**
 * @brief Takes @p link off its list, if it is on one.
 * @param link the link.
 */
static void
list_del(struct room_link *link)
{
    if (!listed(link))
        return;
    link->prev->next = link->next;
    link->next->prev = link->prev;
    link->prev = link->next = NULL;
}

/* [room-init] */
void
room_init(struct room *room, size_t limit, const struct room_hooks *hooks)
{
    memset(room, 0, sizeof *room);
    room->limit = limit;
    room->hooks = hooks;
    list_init(&room->ready);
    list_init(&room->dirty);
    list_init(&room->over);
    list_init(&room->leaving);
    room->spare_fd = conn_spare_open();
}
/* [room-init] */

/* [drop] */
void
room_drop(struct room *room, struct client *c)
{
    if (c->leaving)
        return;
    c->leaving = true;
    list_del(&c->ready);
    list_del(&c->dirty);
    if (listed(&c->over)) {
        list_del(&c->over);
        if (list_empty(&room->over))
            trace_add("; reading resumed");
    }
    list_add(&room->leaving, &c->gone);
}
/* [drop] */

/**
 * @brief Queues bytes for one client; a queue that grows too long pauses
 *        the room.
 *
 * Nothing is written here: the queue is written at the end of the pass
 * (edge-triggered loops) or when the socket is writable, so several
 * messages leave in one write.
 * @param room the room.
 * @param c    the receiving client.
 * @param data bytes to queue (whole lines only).
 * @param n    number of bytes.
 */
/* [send] */
static void
client_send(struct room *room, struct client *c, const char *data, size_t n)
{
    if (c->leaving)
        return;
    /* Book pitfall: send() once and forget, so a partial write or EAGAIN
     * loses the rest -- guarded by tests/protocol/protocol.bats ("a reader
     * that never reads is dropped while the rest keep chatting"). */
    if (outq_push(&c->out, data, n, QUEUE_LIMIT) < 0) {
        if (errno == ENOBUFS) {
            log_msg("dropping user%lu: more than %d bytes queued (slow "
                    "reader)",
                    c->id, QUEUE_LIMIT);
            room->stats.slow++;
        } else {
            log_errno("dropping user%lu: cannot queue output", c->id);
        }
        room_drop(room, c);
        return;
    }
    list_add(&room->dirty, &c->dirty);
    if (c->out.len > HIGH_WATER && !listed(&c->over)) {
        if (list_empty(&room->over)) {
            trace_add("; reading paused: user%lu has %zu bytes queued", c->id,
                      c->out.len);
            room->stats.pauses++;
        }
        c->over_since = clock_ms();
        list_add(&room->over, &c->over);
    }
}
/* [send] */

/**
 * @brief Queues one line for every user here but @p from.
 * @param room the room.
 * @param from the sender, who never hears itself; NULL for nobody.
 * @param data the line, ending in `\n`.
 * @param n    its length.
 */
/* [broadcast] */
static void
fan_out(struct room *room, const struct client *from, const char *data,
        size_t n)
{
    for (size_t i = 0; i < room->online; i++)
        if (room->users[i] != from)
            client_send(room, room->users[i], data, n);
}
/* [broadcast] */

void
room_broadcast(struct room *room, const char *line, size_t len)
{
    fan_out(room, NULL, line, len);
}

/**
 * @brief Says a line to the whole room: here, and through the hooks to
 *        the rest of it.
 * @param room the room.
 * @param from the client it is about, who does not hear it.
 * @param line the line, ending in `\n`.
 * @param len  its length.
 */
/* [say] */
static void
say(struct room *room, const struct client *from, const char *line, size_t len)
{
    fan_out(room, from, line, len);
    if (room->hooks != NULL)
        room->hooks->publish(room->hooks->ctx, line, len);
}
/* [say] */

int
room_accept(struct room *room, int listen_fd)
{
    return conn_accept(listen_fd, &room->spare_fd);
}

/**
 * @brief Whether this room says and logs its joins and leaves.
 *
 * It does, but where they are said elsewhere (room_hooks::quiet):
 * chapter 3's parent writes each join before the child exists, and each
 * leave after the child is gone, however it died.
 * @param room the room.
 * @return true unless the hooks are quiet.
 */
static bool
announces(const struct room *room)
{
    return room->hooks == NULL || !room->hooks->quiet;
}

/**
 * @brief Users online in the whole room.
 * @param room the room.
 * @return the count, this part's included.
 */
static size_t
online_in_room(const struct room *room)
{
    if (room->hooks != NULL)
        return room->hooks->online(room->hooks->ctx);
    return room->online;
}

/**
 * @brief Takes a client out of the dense table, moving the last one into
 *        its seat.
 * @param room the room.
 * @param c    the client.
 */
/* [unseat] */
static void
unseat(struct room *room, struct client *c)
{
    struct client *last = room->users[--room->online];

    last->seat = c->seat;
    room->users[c->seat] = last;
}
/* [unseat] */

/* [join] */
struct client *
room_join(struct room *room, int fd)
{
    char msg[PROTO_LINE_MAX];
    size_t everyone = online_in_room(room);

    if (everyone >= room->limit) {
        trace_add(": room full, refused fd %d", fd);
        conn_refuse(fd);
        return NULL;
    }
    if (room->online == room->cap) {
        size_t cap = room->cap ? 2 * room->cap : 16;
        struct client **users =
            realloc(room->users, cap * sizeof(struct client *));
        if (users == NULL) {
            log_errno("cannot admit a client");
            close(fd);
            return NULL;
        }
        room->users = users;
        room->cap = cap;
    }
    struct client *c = calloc(1, sizeof *c);
    if (c == NULL) {
        log_errno("cannot admit a client");
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->id = room->hooks != NULL ? room->hooks->new_id(room->hooks->ctx)
                                : ++room->next_id;
    c->seat = room->online;
    room->users[room->online++] = c;
    if (room->hooks != NULL && room->hooks->joined(room->hooks->ctx, c) < 0) {
        log_errno("cannot admit user%lu", c->id);
        unseat(room, c);
        close(fd);
        free(c);
        return NULL;
    }
    trace_add(": user%lu on fd %d", c->id, fd);
    client_send(room, c, msg, proto_welcome(msg, c->id, everyone + 1));
    if (announces(room)) {
        log_note("user%lu joined (%zu online)", c->id, everyone + 1);
        say(room, c, msg, proto_joined(msg, c->id));
    }
    return c;
}
/* [join] */

/** What on_line() needs to know about the sender. */
struct line_ctx {
    struct room *room; /**< the room */
    struct client *sender; /**< who sent the line */
};

/**
 * @brief The framer found one message: relay it to everyone else.
 *
 * The message is formatted once and the same bytes are queued for each
 * receiver; the sender never hears itself.
 * @param ctx  a struct line_ctx.
 * @param line message bytes, 8-bit clean, no `\n`.
 * @param len  length of @p line.
 */
/* [on-line] */
static void
on_line(void *ctx, const char *line, size_t len)
{
    struct line_ctx *lc = ctx;
    char msg[PROTO_LINE_MAX];

    if (lc->room->closing)
        return; /* the room is closing: nothing more is relayed */
    /* Book pitfall: every reader's write_buf points at the sender's one
     * buffer, so a second message overwrites the first before it is sent
     * -- guarded by tests/protocol/protocol.bats ("concurrent senders").
     * Here each receiver gets its own copy in its own queue. */
    say(lc->room, lc->sender, msg,
        proto_message(msg, lc->sender->id, line, len));
    lc->room->stats.relayed++;
}
/* [on-line] */

/**
 * @brief How many bytes the next read may take.
 *
 * In a room spread over processes, the rest of the room may be unable to
 * take lines now: then the room is held, and input waits. n bytes make
 * at most n + 2 lines, so asking for room - 2 never makes more.
 * @param room the room.
 * @return bytes to ask recv() for; 0 if input must wait.
 */
static size_t
read_allowance(struct room *room)
{
    if (room->hooks == NULL)
        return READ_SIZE;
    size_t lines = room->hooks->room_to_publish(room->hooks->ctx);
    if (lines < 3) {
        room->held = true;
        return 0;
    }
    return lines - 2 < READ_SIZE ? lines - 2 : READ_SIZE;
}

/**
 * @brief Gives one client its turn: reads, frames and relays its input.
 *
 * At most #READ_BUDGET reads, and none once the room has stopped
 * reading: the rest waits in the kernel for the client's next turn. End
 * of stream relays a last line without `\n`; a reset or error discards
 * an unfinished line (the client never finished it).
 * @param room the room.
 * @param c    the client.
 * @return true if input may be left to read.
 */
/* [read] */
static bool
client_read(struct room *room, struct client *c)
{
    static char buf[READ_SIZE];
    struct line_ctx lc = {room, c};

    for (int reads = 0; reads < READ_BUDGET && !c->leaving; reads++) {
        size_t want = room_reading(room) ? read_allowance(room) : 0;
        if (want == 0)
            return true;
        ssize_t n = recv(c->fd, buf, want, 0);
        if (n > 0) {
            trace_add("; user%lu read %zd", c->id, n);
            /* Book pitfall: one recv() relayed as one message, split
             * lines and all -- guarded by tests/protocol/protocol.bats
             * ("a line written byte by byte is relayed once"). */
            if (line_feed(&c->in, buf, (size_t)n, on_line, &lc) < 0) {
                log_errno("dropping user%lu: cannot hold its line", c->id);
                room_drop(room, c);
            }
        } else if (n == 0) {
            trace_add("; user%lu end of stream", c->id);
            line_finish(&c->in, on_line, &lc);
            room_drop(room, c);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return false;
        } else if (errno != EINTR) {
            trace_add("; user%lu %s", c->id, strerror(errno));
            room_drop(room, c);
        }
    }
    return !c->leaving;
}
/* [read] */

/* [readable] */
void
room_readable(struct room *room, struct client *c)
{
    if (!c->leaving)
        list_add(&room->ready, &c->ready);
}
/* [readable] */

/**
 * @brief Gives every client with input its turn, as long as the room
 *        reads.
 *
 * Round-robin: a client that still has input after its turn goes to the
 * end of the list, so a flood gets one turn in each round, like every
 * other sender, and a line typed during a flood is not held up by it.
 * @param room the room.
 */
/* [read-ready] */
static void
read_ready(struct room *room)
{
    size_t turns = 0;

    /* One round: as many turns as clients wait now. Those dropped in the
     * round leave the list, and a client put back at its end waits for
     * the next pass. */
    for (struct room_link *l = room->ready.next; l != &room->ready; l = l->next)
        turns++;
    while (turns-- > 0 && !list_empty(&room->ready) && room_reading(room)) {
        struct client *c = FIRST(&room->ready, ready);
        list_del(&c->ready);
        if (client_read(room, c))
            list_add(&room->ready, &c->ready);
    }
}
/* [read-ready] */

/**
 * @brief Writes a client's queue until it is empty or the socket is full.
 *
 * A queue back under #LOW_WATER no longer holds the room. While the
 * server shuts down, an emptied queue is followed by shutdown(SHUT_WR),
 * so the client reads every byte and then end of stream.
 * @param room the room.
 * @param c    the client.
 */
/* [write] */
static void
client_flush(struct room *room, struct client *c)
{
    long n = outq_flush(&c->out, c->fd);

    if (n < 0) {
        trace_add("; user%lu write: %s", c->id, strerror(errno));
        room_drop(room, c);
        return;
    }
    if (n > 0)
        trace_add("; user%lu wrote %ld", c->id, n);
    if (listed(&c->over) && c->out.len < LOW_WATER) {
        list_del(&c->over);
        if (list_empty(&room->over))
            trace_add("; reading resumed");
    }
    if (room->closing && !outq_pending(&c->out) && !c->shut) {
        shutdown(c->fd, SHUT_WR);
        c->shut = true;
    }
}
/* [write] */

void
room_writable(struct room *room, struct client *c)
{
    if (!c->leaving && outq_pending(&c->out))
        client_flush(room, c);
}

/**
 * @brief Drops the readers that held the room for longer than #GRACE_MS.
 *
 * The list is in the order the queues passed the high mark, so only its
 * head can be due.
 * @param room the room.
 */
/* [slow] */
static void
drop_slow_readers(struct room *room)
{
    long long now = list_empty(&room->over) ? 0 : clock_ms();

    while (!list_empty(&room->over)) {
        struct client *c = FIRST(&room->over, over);
        if (now - c->over_since < GRACE_MS)
            return;
        log_msg("dropping user%lu: its output queue did not drain below %d "
                "bytes within %d ms (slow reader)",
                c->id, LOW_WATER, GRACE_MS);
        room->stats.slow++;
        room_drop(room, c);
    }
}
/* [slow] */

/**
 * @brief Closes every dropped client and tells the room it left.
 *
 * The announcement may drop more slow readers; they join the list and
 * are handled in the same call.
 * @param room the room.
 */
/* [reap] */
static void
reap(struct room *room)
{
    char msg[PROTO_LINE_MAX];

    while (!list_empty(&room->leaving)) {
        /* The analyzer cannot follow the list: c was taken off it before
         * it was freed. */
        struct client *c =
            FIRST(&room->leaving, gone); // NOLINT(clang-analyzer-unix.Malloc)
        list_del(&c->gone);

        close(c->fd); /* an epoll set forgets it too */
        unseat(room, c);
        trace_add("; user%lu left", c->id);
        if (announces(room)) {
            log_note("user%lu left", c->id);
            /* While shutting down, everyone leaves: nobody to tell. */
            if (!room->closing)
                say(room, c, msg, proto_left(msg, c->id));
        }
        if (room->hooks != NULL)
            room->hooks->left(room->hooks->ctx, c);
        line_free(&c->in);
        outq_free(&c->out);
        free(c);
    }
}
/* [reap] */

/**
 * @brief Whether a trim of the heap is owed: enough freed, or kept.
 *
 * Freed: a burst's buffers lie between the clients' records, and free()
 * gives back only the top of the heap, so an idle room would keep the
 * burst resident for good. Kept: emptied buffers whose queues may have
 * fallen idle. Below a megabyte of either (#OUTQ_TRIM_AFTER) a walk of
 * the heap and of the room is not worth it.
 * @return true if trim_heap() has work once it is due.
 */
static bool
trim_owed(void)
{
    return outq_freed() + outq_kept() >= OUTQ_TRIM_AFTER;
}

/**
 * @brief Gives the buffers of the queues that fell idle, and the freed
 *        ones, back to the kernel.
 *
 * At most once every #TRIM_MS: a queue given nothing since the last trim
 * lets its kept buffer go (outq_release_idle()), one pushed to keeps it,
 * so a busy room keeps every buffer and an idle one, after a burst of ten
 * thousand joins, holds none. Then malloc_trim() hands back the whole
 * free pages, wherever they lie. room_timeout() wakes the loop for a trim
 * that is owed, so a room that falls silent right after a burst is
 * trimmed too.
 * @param room the room.
 */
static void
trim_heap(struct room *room)
{
    if (!trim_owed())
        return;
    long long now = clock_ms();
    if (now < room->trim_at)
        return;
    for (size_t i = 0; i < room->online; i++)
        outq_release_idle(&room->users[i]->out);
    if (outq_freed() >= OUTQ_TRIM_AFTER) {
        trace_add("; heap trimmed (%zu KiB freed)", outq_freed() / 1024);
        outq_trim();
    }
    room->trim_at = now + TRIM_MS;
}

/* [flush] */
void
room_settle(struct room *room, bool write)
{
    drop_slow_readers(room);
    room->held = false;
    read_ready(room);
    /* A leave is news that fills queues; a failed write is a leave. */
    while (!list_empty(&room->leaving) || !list_empty(&room->dirty)) {
        reap(room);
        while (!list_empty(&room->dirty)) {
            struct client *c = FIRST(&room->dirty, dirty);
            list_del(&c->dirty);
            if (write)
                client_flush(room, c);
        }
    }
    trim_heap(room);
}
/* [flush] */

/* [reading] */
bool
room_reading(const struct room *room)
{
    return list_empty(&room->over) && !room->held;
}

bool
room_taking(const struct room *room)
{
    return list_empty(&room->over);
}

int
room_timeout(const struct room *room)
{
    int wait = -1;

    if (!list_empty(&room->over)) {
        const struct client *c =
            client_of(room->over.next, offsetof(struct client, over));
        wait = clock_ms_until(c->over_since + GRACE_MS);
    } else if (room->held) {
        wait = RETRY_MS;
    } else if (!list_empty(&room->ready)) {
        wait = 0;
    }
    if (trim_owed()) {
        int due = clock_ms_until(room->trim_at); /* see trim_heap() */
        if (wait < 0 || due < wait)
            wait = due;
    }
    return wait;
}
/* [reading] */

/* [shutdown] */
void
room_shutdown(struct room *room)
{
    if (room->closing)
        return;
    room->closing = true;
    fan_out(room, NULL, PROTO_SHUTDOWN, strlen(PROTO_SHUTDOWN));
}
/* [shutdown] */

size_t
room_largest_queue(const struct room *room)
{
    size_t largest = 0;

    for (size_t i = 0; i < room->online; i++)
        if (room->users[i]->out.len > largest)
            largest = room->users[i]->out.len;
    return largest;
}

/* [room-close] */
void
room_close(struct room *room)
{
    for (size_t i = 0; i < room->online; i++) {
        close(room->users[i]->fd);
        line_free(&room->users[i]->in);
        outq_free(&room->users[i]->out);
        free(room->users[i]);
    }
    free(room->users);
    room->users = NULL;
    room->online = room->cap = 0;
    if (room->spare_fd >= 0)
        close(room->spare_fd);
}
/* [room-close] */
