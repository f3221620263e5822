/**
 * @file tests/unit/test_room.c
 * @brief Unit tests of the room module (step01_poll_chat/room.c, carried
 *        unchanged into chapters 2, 3 and 4), driven alone over socketpairs.
 *
 * No loop and no server: each case plays the loop itself -- it admits
 * one end of a socketpair with room_join(), writes at the other end as a
 * client would, tells the room what is readable, and lets it settle.
 * `test_room NAME` runs one case; tests/unit/room.bats runs each.
 */
/* The module of chapter 1, the one every later chapter carries. */
#include "../../step01_poll_chat/room.h"
#include "unit.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/** One client of a case: the room's side and the client's side. */
struct peer {
    struct client *c; /**< the room's client */
    int fd; /**< the client's end of the socketpair */
};

/**
 * @brief Connects a new client to the room through a socketpair.
 * @param room the room.
 * @param p    receives both sides; p->c is NULL if the room refused.
 * @return 0, or -1 if no socketpair could be made.
 */
static int
join(struct room *room, struct peer *p)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) < 0)
        return -1;
    p->fd = sv[1];
    p->c = room_join(room, sv[0]);
    room_settle(room, true);
    return 0;
}

/**
 * @brief Reads everything the room has written to a client so far.
 * @param p    the client.
 * @param buf  receives the bytes, NUL-terminated.
 * @param size size of @p buf.
 * @return bytes read; -1 at end of stream with nothing read.
 */
static long
drain(const struct peer *p, char *buf, size_t size)
{
    size_t len = 0;

    for (;;) {
        ssize_t n = read(p->fd, buf + len, size - 1 - len);
        if (n > 0) {
            len += (size_t)n;
            if (len == size - 1)
                break;
            continue;
        }
        if (n == 0 && len == 0) {
            buf[0] = '\0';
            return -1;
        }
        break; /* EAGAIN: all there is */
    }
    buf[len] = '\0';
    return (long)len;
}

/**
 * @brief Checks that a client has received exactly @p want.
 * @param name the case.
 * @param p    the client.
 * @param want the bytes expected, as a string.
 * @return 0 if so.
 */
static int
expect(const char *name, const struct peer *p, const char *want)
{
    char got[65536];

    drain(p, got, sizeof got);
    if (strcmp(got, want) != 0) {
        fprintf(stderr, "%s: expected [%s], got [%s]\n", name, want, got);
        return 1;
    }
    return 0;
}

/**
 * @brief A client says something: bytes written, the room told, settled.
 * @param room the room.
 * @param p    the client.
 * @param text what it writes.
 */
static void
say(struct room *room, const struct peer *p, const char *text)
{
    if (write(p->fd, text, strlen(text)) < 0)
        perror("write");
    room_readable(room, p->c);
    room_settle(room, true);
}

/**
 * @brief The welcome counts the newcomer; everyone else hears the join.
 * @return 0 on success.
 */
static int
t_join(void)
{
    struct room room;
    struct peer a, b;

    room_init(&room, 5, NULL);
    if (join(&room, &a) < 0 || join(&room, &b) < 0 || !a.c || !b.c)
        return unit_fail("join", "a join failed");
    if (room.online != 2 || a.c->id != 1 || b.c->id != 2)
        return unit_fail("join", "two joins are not users 1 and 2");
    int bad = expect("join", &a,
                     "* welcome, you are user1 (1 online)\n"
                     "* user2 joined\n") ||
              expect("join", &b, "* welcome, you are user2 (2 online)\n");
    room_close(&room);
    return bad;
}

/**
 * @brief A full room refuses with "too many users" and closes.
 * @return 0 on success.
 */
static int
t_limit(void)
{
    struct room room;
    struct peer a, b, c;
    char buf[256];

    room_init(&room, 2, NULL);
    if (join(&room, &a) < 0 || join(&room, &b) < 0 || join(&room, &c) < 0)
        return unit_fail("limit", "no socketpair");
    if (c.c != NULL || room.online != 2)
        return unit_fail("limit", "a third user joined a room of 2");
    if (drain(&c, buf, sizeof buf) != 15 ||
        strcmp(buf, "too many users\n") != 0)
        return unit_fail("limit", "the refused client did not hear why");
    if (drain(&c, buf, sizeof buf) != -1)
        return unit_fail("limit", "the refused client was not closed");
    int bad = expect("limit", &a,
                     "* welcome, you are user1 (1 online)\n"
                     "* user2 joined\n");
    room_close(&room);
    return bad;
}

/**
 * @brief Lines reach everyone else in the order sent, never the sender;
 *        a line split across writes is one message.
 * @return 0 on success.
 */
static int
t_fanout(void)
{
    struct room room;
    struct peer a, b, c;
    char buf[256];

    room_init(&room, 5, NULL);
    if (join(&room, &a) < 0 || join(&room, &b) < 0 || join(&room, &c) < 0)
        return unit_fail("fanout", "no socketpair");
    drain(&a, buf, sizeof buf);
    drain(&b, buf, sizeof buf);
    drain(&c, buf, sizeof buf);
    say(&room, &a, "one\ntwo\nthr");
    say(&room, &a, "ee\n");
    say(&room, &b, "four\n");
    int bad = expect("fanout", &a, "user2: four\n") ||
              expect("fanout", &b, "user1: one\nuser1: two\nuser1: three\n") ||
              expect("fanout", &c,
                     "user1: one\nuser1: two\nuser1: three\nuser2: four\n");
    if (room.stats.relayed != 4)
        bad = unit_fail("fanout", "4 messages were not counted as relayed");
    room_close(&room);
    return bad;
}

/**
 * @brief A leave is announced, frees the seat, and ids are never reused.
 * @return 0 on success.
 */
static int
t_leave(void)
{
    struct room room;
    struct peer a, b, c, d;
    char buf[256];

    room_init(&room, 3, NULL);
    if (join(&room, &a) < 0 || join(&room, &b) < 0 || join(&room, &c) < 0)
        return unit_fail("leave", "no socketpair");
    drain(&b, buf, sizeof buf);
    drain(&c, buf, sizeof buf);
    say(&room, &a, "last words, no newline");
    drain(&a, buf, sizeof buf); /* closed with unread bytes, it resets */
    close(a.fd);
    room_readable(&room, a.c);
    room_settle(&room, true);
    if (room.online != 2)
        return unit_fail("leave", "the leaver is still online");
    /* c moved into a's seat: the table stays dense. */
    if (room.users[0] != c.c || c.c->seat != 0 || room.users[1] != b.c)
        return unit_fail("leave", "the table of users has a hole");
    int bad =
        expect("leave", &b, "user1: last words, no newline\n* user1 left\n");
    if (join(&room, &d) < 0 || d.c == NULL || d.c->id != 4)
        return unit_fail("leave", "the next user is not user4");
    bad |= expect("leave", &d, "* welcome, you are user4 (3 online)\n");
    room_close(&room);
    return bad;
}

/**
 * @brief Writes as much of a stream of repeated lines as a client's
 *        socket takes now.
 * @param p    the client.
 * @param line one line to repeat.
 * @param part how much of @p line the last call wrote; updated, so the
 *             stream goes on where a short write left it.
 * @return bytes written.
 */
static size_t
flood(const struct peer *p, const char *line, size_t *part)
{
    size_t total = 0, n = strlen(line);
    ssize_t w;

    while ((w = write(p->fd, line + *part, n - *part)) > 0) {
        total += (size_t)w;
        *part = (*part + (size_t)w) % n;
    }
    return total;
}

/**
 * @brief A queue over the high mark pauses reading; once it drains under
 *        the low mark, reading resumes and nothing was lost.
 * @return 0 on success.
 */
static int
t_pause(void)
{
    static char line[1001], buf[1 << 20];
    struct room room;
    struct peer a, b;
    size_t sent = 0, got = 0, part = 0;

    memset(line, 'x', 999);
    line[999] = '\n';
    room_init(&room, 5, NULL);
    if (join(&room, &a) < 0 || join(&room, &b) < 0)
        return unit_fail("pause", "no socketpair");
    drain(&a, buf, sizeof buf);
    drain(&b, buf, sizeof buf);
    /* b does not read: a's lines pile up in b's queue until it passes the
     * high mark, and then the room stops reading a. */
    for (int round = 0; round < 100 && room_reading(&room); round++) {
        sent += flood(&a, line, &part);
        room_readable(&room, a.c);
        room_settle(&room, true);
    }
    if (room_reading(&room))
        return unit_fail("pause", "a long queue did not pause reading");
    if (room_timeout(&room) <= 0 || room_timeout(&room) > 1000)
        return unit_fail("pause", "the timeout is not the end of the grace");
    /* b reads; each time its socket drains, the room writes more. */
    for (int round = 0; round < 10000 && got < sent / 1000 * 1007; round++) {
        long n = drain(&b, buf, sizeof buf);
        got += n > 0 ? (size_t)n : 0;
        room_writable(&room, b.c);
        room_readable(&room, a.c);
        room_settle(&room, true);
    }
    if (!room_reading(&room) || room.online != 2 || room.stats.pauses < 1)
        return unit_fail("pause", "reading did not resume, or b was dropped");
    if (got != sent / 1000 * 1007) /* "user1: " + 999 + "\\n" */
        return unit_fail("pause", "b did not get every line");
    room_close(&room);
    return 0;
}

/**
 * @brief A reader that does not drain within the grace period is dropped
 *        and announced; the room reads again.
 * @return 0 on success.
 */
static int
t_slow(void)
{
    static char line[1001], buf[1 << 20];
    struct room room;
    struct peer a, b;
    size_t part = 0;

    memset(line, 'y', 999);
    line[999] = '\n';
    room_init(&room, 5, NULL);
    if (join(&room, &a) < 0 || join(&room, &b) < 0)
        return unit_fail("slow", "no socketpair");
    drain(&a, buf, sizeof buf);
    for (int round = 0; round < 100 && room_reading(&room); round++) {
        flood(&a, line, &part);
        room_readable(&room, a.c);
        room_settle(&room, true);
    }
    /* Sleep as the loop would, for what room_timeout() says: the grace
     * period, after which b is dropped. */
    for (int round = 0; round < 10 && room.online == 2; round++) {
        poll(NULL, 0, room_timeout(&room));
        room_settle(&room, true);
    }
    if (room.online != 1 || room.stats.slow != 1)
        return unit_fail("slow", "the reader that never reads was not dropped");
    if (!room_reading(&room))
        return unit_fail("slow", "the room did not read again");
    drain(&a, buf, sizeof buf);
    if (strcmp(buf, "* user2 left\n") != 0)
        return unit_fail("slow", "the slow reader's leave was not announced");
    room_close(&room);
    return 0;
}

/**
 * @brief Shutting down: everyone gets the notice, then end of stream;
 *        nothing more is relayed.
 * @return 0 on success.
 */
static int
t_shutdown(void)
{
    struct room room;
    struct peer a, b;
    char buf[256];

    room_init(&room, 5, NULL);
    if (join(&room, &a) < 0 || join(&room, &b) < 0)
        return unit_fail("shutdown", "no socketpair");
    drain(&a, buf, sizeof buf);
    drain(&b, buf, sizeof buf);
    room_shutdown(&room);
    room_settle(&room, true);
    say(&room, &a, "too late\n");
    int bad = expect("shutdown", &b, "* server shutting down\n");
    if (drain(&b, buf, sizeof buf) != -1)
        bad = unit_fail("shutdown", "no end of stream after the notice");
    room_close(&room);
    return bad;
}

/**
 * @brief Frees a megabyte and moves the room's next trim to now: a trim
 *        is owed, and due at once (instead of a second later).
 * @param room the room.
 * @return 0, or -1 if there was no memory for the megabyte.
 */
static int
owe_trim(struct room *room)
{
    static char junk[OUTQ_TRIM_AFTER + 1];
    struct outq big = {0};

    if (outq_push(&big, junk, sizeof junk, sizeof junk) != 0)
        return -1;
    outq_free(&big);
    room->trim_at = 0;
    return 0;
}

/**
 * @brief Once a megabyte has been freed, the room trims the heap; a queue
 *        that had nothing to send for a whole period lets go of its kept
 *        buffer, one that was busy keeps it; the room talks on.
 *
 * What keeps an idle client small after a burst (ten thousand kept
 * buffers would otherwise stay with clients that say nothing), and what
 * spares a busy one an allocation per pass.
 * @return 0 on success.
 */
static int
t_trim(void)
{
    struct room room;
    struct peer a, b;
    char buf[256];

    room_init(&room, 5, NULL);
    if (join(&room, &a) < 0 || join(&room, &b) < 0)
        return unit_fail("trim", "no socketpair");
    drain(&a, buf, sizeof buf);
    drain(&b, buf, sizeof buf);
    if (outq_kept() < (size_t)2 * OUTQ_MIN_CAP)
        return unit_fail("trim", "the written queues kept no buffer");
    if (owe_trim(&room) < 0)
        return unit_fail("trim", "no memory for the megabyte");
    room_settle(&room, true);
    if (outq_freed() != 0)
        return unit_fail("trim", "the heap was not trimmed");
    if (a.c->out.buf == NULL || b.c->out.buf == NULL)
        return unit_fail("trim", "a queue busy this period lost its buffer");
    /* A period later: b was given a line, a was not. */
    say(&room, &a, "after\n");
    if (expect("trim", &b, "user1: after\n") != 0)
        return 1;
    if (owe_trim(&room) < 0)
        return unit_fail("trim", "no memory for the megabyte");
    room_settle(&room, true);
    if (a.c->out.buf != NULL || b.c->out.buf == NULL ||
        outq_kept() != b.c->out.cap)
        return unit_fail("trim", "not the idle queue alone let go");
    if (owe_trim(&room) < 0)
        return unit_fail("trim", "no memory for the megabyte");
    room_settle(&room, true); /* b idle for a period too */
    if (outq_kept() != 0) /* b's buffer was the one kept */
        return unit_fail("trim", "an idle queue still keeps its buffer");
    say(&room, &b, "again\n");
    int bad = expect("trim", &a, "user2: again\n");
    room_close(&room);
    return bad;
}

/** What the quiet case's hooks saw. */
struct quiet_log {
    unsigned long ids; /**< the last id handed out */
    char published[256]; /**< every line the room published, joined */
    int left; /**< leaves the room reported */
};

/** @brief Quiet hook: the next id. @param ctx the record. @return the id. */
static unsigned long
quiet_new_id(void *ctx)
{
    return ++((struct quiet_log *)ctx)->ids;
}

/** @brief Quiet hook: nobody elsewhere. @param ctx unused. @return 0. */
static size_t
quiet_online(void *ctx)
{
    (void)ctx;
    return 0;
}

/** @brief Quiet hook: room for any line. @param ctx unused. @return 100. */
static size_t
quiet_room(void *ctx)
{
    (void)ctx;
    return 100;
}

/**
 * @brief Quiet hook: records a published line.
 * @param ctx  the record.
 * @param line the line.
 * @param len  its length.
 */
static void
quiet_publish(void *ctx, const char *line, size_t len)
{
    struct quiet_log *qlog = ctx;
    size_t have = strlen(qlog->published);

    if (have + len < sizeof qlog->published)
        memcpy(qlog->published + have, line, len);
}

/** @brief Quiet hook: admits. @param ctx unused. @param c unused.
 *  @return 0. */
static int
quiet_joined(void *ctx, struct client *c)
{
    (void)ctx;
    (void)c;
    return 0;
}

/** @brief Quiet hook: counts a leave. @param ctx the record. @param c unused. */
static void
quiet_left(void *ctx, struct client *c)
{
    (void)c;
    ((struct quiet_log *)ctx)->left++;
}

/**
 * @brief A quiet room (chapter 3's child: its parent announces) welcomes,
 *        relays and publishes messages, but says no join or leave, here
 *        or through the hooks.
 * @return 0 on success.
 */
static int
t_quiet(void)
{
    static struct quiet_log qlog;
    const struct room_hooks hooks = {.ctx = &qlog,
                                     .new_id = quiet_new_id,
                                     .online = quiet_online,
                                     .room_to_publish = quiet_room,
                                     .publish = quiet_publish,
                                     .joined = quiet_joined,
                                     .left = quiet_left,
                                     .quiet = true};
    struct room room;
    struct peer a, b;
    char buf[256];

    room_init(&room, 5, &hooks);
    if (join(&room, &a) < 0 || join(&room, &b) < 0 || !a.c || !b.c)
        return unit_fail("quiet", "a join failed");
    if (expect("quiet", &a, "* welcome, you are user1 (1 online)\n") ||
        expect("quiet", &b, "* welcome, you are user2 (1 online)\n"))
        return 1;
    say(&room, &b, "hi\n");
    if (expect("quiet", &a, "user2: hi\n"))
        return 1;
    close(b.fd);
    room_readable(&room, b.c);
    room_settle(&room, true);
    if (room.online != 1 || qlog.left != 1)
        return unit_fail("quiet", "the leave was not reported to the hook");
    if (drain(&a, buf, sizeof buf) != 0)
        return unit_fail("quiet", "the room said something of the leave");
    if (strcmp(qlog.published, "user2: hi\n") != 0)
        return unit_fail("quiet", "the room published a join or a leave");
    room_close(&room);
    return 0;
}

/**
 * @brief Closing the room frees everything, a client's unfinished line
 *        included.
 *
 * Passes in any build; under `SAN=1` LeakSanitizer fails it at exit if
 * room_close() forgets the line's buffer.
 * @return 0 on success.
 */
static int
t_close(void)
{
    struct room room;
    struct peer a, b;
    char buf[256];

    room_init(&room, 5, NULL);
    if (join(&room, &a) < 0 || join(&room, &b) < 0)
        return unit_fail("close", "no socketpair");
    drain(&a, buf, sizeof buf);
    drain(&b, buf, sizeof buf);
    say(&room, &a, "half a line");
    if (a.c->in.len == 0)
        return unit_fail("close", "the unfinished line was not held");
    room_close(&room);
    close(a.fd);
    close(b.fd);
    return 0;
}

/** Every case, by name. */
static const struct test_case cases[] = {
    {"join", t_join},         {"limit", t_limit}, {"fanout", t_fanout},
    {"leave", t_leave},       {"pause", t_pause}, {"slow", t_slow},
    {"shutdown", t_shutdown}, {"trim", t_trim},   {"close", t_close},
    {"quiet", t_quiet},
};

/**
 * @brief Runs one case, or all of them.
 * @param argc 1 or 2.
 * @param argv argv[1] names the case.
 * @return 0 if every case run passed.
 */
int
main(int argc, char **argv)
{
    return unit_run("test_room", cases, sizeof cases / sizeof cases[0], argc,
                    argv);
}
