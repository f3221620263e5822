/**
 * @file sysv_demo.c
 * @brief Two windows chat through a System V shared memory segment and two
 *        FIFOs; the segment outlives a killed window unless
 *        shmctl(IPC_RMID) removed it (book 13.4, 13.6.1 to 13.6.3, 13.8).
 *
 * The "small program" of \ref step03_sysv "System V shared memory beside
 * POSIX", run by `make sysv-demo` (docs/sysv/demo.sh). In two terminals in
 * one directory: `sysv_demo [rmid] chat NAME`. The first window creates the
 * segment (key `ftok(".", 'c')`, mode `0600`) and the FIFOs
 * `sysv_demo.fifo0` and `sysv_demo.fifo1`; the second finds the segment by
 * the key. A line typed in one window goes into the segment, and one byte
 * down the other window's FIFO tells it to print it. At the end of input
 * (Ctrl-D) a window leaves, the other sees its FIFO close and leaves too,
 * and each removes what it created: the FIFOs, then the segment.
 * A window killed first (SIGKILL, Ctrl-C) removes nothing. With `rmid`,
 * the segment is marked for removal as soon as both windows have attached
 * it, and goes with the last of them however they end: the cure.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

/** Bytes of one message; a longer line is sent as several messages. */
#define MSG_MAX 200
/** Messages one window can have in the segment not yet printed by the other. */
#define SLOTS 8
/** Room for a window's name and its NUL. */
#define NAME_LEN 16
/** ftok()'s project number: eight bits mixed into the key. */
#define PROJ_ID 'c'

/** The FIFO each window reads its wake-ups from, by side (0: the creator). */
static const char *const fifo_path[2] = {"sysv_demo.fifo0", "sysv_demo.fifo1"};

/** One direction of the chat: a ring of messages, one writer, one reader. */
struct ring {
    atomic_uint head; /**< messages written so far; only the writer stores */
    atomic_uint tail; /**< messages printed so far; only the reader stores */
    struct {
        unsigned len; /**< bytes of text */
        char text[MSG_MAX]; /**< the message, any bytes, no NUL added */
    } slot[SLOTS]; /**< message n is in slot[n % SLOTS] */
};

/** The shared segment: everything both windows see. */
struct segment {
    dev_t dev; /**< the directory ftok() was given ... */
    ino_t ino; /**< ... so a key collision is caught */
    atomic_int windows; /**< 1 once set up, 2 once the second joined */
    char name[2][NAME_LEN]; /**< the windows' names, by side */
    struct ring ring[2]; /**< ring[k] carries what window k types */
};

/** One window's state. */
struct window {
    struct segment *seg; /**< the attached segment */
    key_t key; /**< its key, as ftok() made it */
    int id; /**< its shmid, for ipcs, ipcrm and shmctl() */
    int side; /**< 0: created the segment, 1: joined it */
    int made_fifo[2]; /**< which FIFOs this window created */
    int in_fd; /**< our FIFO, read end: the other's wake-ups */
    int out_fd; /**< the other's FIFO, write end */
    char buf[2 * MSG_MAX]; /**< standard input not yet put in the segment */
    size_t len; /**< bytes in buf */
    int in_eof; /**< standard input has ended */
    int owned; /**< created the segment, not yet marked for removal */
};

/** This window, for cleanup() at exit(). */
static struct window *self;

/**
 * @brief Print `sysv_demo: REASON[: strerror(err)]` on stderr, exit 1.
 *
 * One line: what was tried, on what, and why (STYLE.md). exit() runs
 * cleanup(): only a window killed by a signal leaves anything behind.
 * @param err an errno value, or 0
 * @param fmt printf format of the reason, then its arguments
 */
static _Noreturn void
die(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sysv_demo: ", stderr);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "%s%s\n", err ? ": " : "", err ? strerror(err) : "");
    va_end(ap);
    exit(1);
}

/**
 * @brief Print one `* ...` line on stdout, flushed at once: the demo and
 *        the tests wait for these lines while the window runs.
 * @param fmt printf format, then its arguments
 */
static void
note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("* ", stdout);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    if (fflush(stdout) == EOF || ferror(stdout))
        die(errno, "cannot write to standard output");
}

/**
 * @brief The second window's checks on the segment it found by key.
 *
 * A key is only a number: the segment may be left over from a chat whose
 * creator was killed (found again, contents and all), have two windows
 * already, or be another directory's whose ftok() key collides with ours.
 * @param w  the window, with seg, key and id set
 * @param st what stat() says of the directory, "."
 */
static void
segment_check(struct window *w, const struct stat *st)
{
    struct shmid_ds ds;

    if (shmctl(w->id, IPC_STAT, &ds) == -1)
        die(errno, "cannot stat segment %d", w->id);
    if (kill(ds.shm_cpid, 0) == -1 && errno == ESRCH) {
        const struct ring *r = &w->seg->ring[0];
        unsigned n = atomic_load(&r->head);
        unsigned len = n ? r->slot[(n - 1) % SLOTS].len : 0;
        die(0,
            "segment %d (key 0x%08x) is left over, still holding %s's "
            "\"%.*s\": ipcrm -m %d removes it",
            w->id, (unsigned)w->key, w->seg->name[0], (int)len,
            n ? r->slot[(n - 1) % SLOTS].text : "", w->id);
    }
    int one = 1;
    if (!atomic_compare_exchange_strong(&w->seg->windows, &one, 2))
        die(0,
            one ? "segment %d already has two windows"
                : "segment %d is still being set up: try again",
            w->id);
    if (st->st_dev != w->seg->dev || st->st_ino != w->seg->ino)
        die(0,
            "key 0x%08x is taken by another directory's chat (an ftok() "
            "collision): chat in another directory",
            (unsigned)w->key);
}

/**
 * @brief Find or create the chat's segment and attach it.
 *
 * `IPC_EXCL` tells the windows apart: one shmget() creates the key's
 * segment, the other gets EEXIST and looks it up. The segment belongs to
 * the kernel: exiting, even being killed, only detaches it.
 * @param w    the window; sets seg, key, id and side
 * @param name this window's name
 */
static void
segment_open(struct window *w, const char *name)
{
    struct stat st;
    if (stat(".", &st) == -1)
        die(errno, "cannot stat .");
    w->key = ftok(".", PROJ_ID);
    if (w->key == (key_t)-1)
        die(errno, "cannot make a key from .");
    w->id = shmget(w->key, sizeof *w->seg, IPC_CREAT | IPC_EXCL | 0600);
    w->side = w->id == -1 && errno == EEXIST;
    if (w->side)
        w->id = shmget(w->key, 0, 0600);
    if (w->id == -1)
        die(errno, "cannot get the segment of key 0x%08x", (unsigned)w->key);
    void *p = shmat(w->id, NULL, 0);
    if ((intptr_t)p == -1) /* shmat() fails with (void *)-1, not NULL */
        die(errno, "cannot attach segment %d", w->id);
    w->seg = p;
    if (w->side) {
        segment_check(w, &st);
        note("found segment %d (key 0x%08x)", w->id, (unsigned)w->key);
    } else {
        w->owned = 1;
        w->seg->dev = st.st_dev;
        w->seg->ino = st.st_ino;
        atomic_store(&w->seg->windows, 1);
    }
    snprintf(w->seg->name[w->side], NAME_LEN, "%s", name);
}

/**
 * @brief Make both FIFOs (either may exist already) and open our two ends.
 *
 * Our FIFO is opened for reading without blocking, the other's for
 * writing with blocking: that open() waits until the other window has
 * opened its FIFO for reading. So the first window waits here for the
 * second, and neither waits for the other in a circle.
 * @param w the window, side set; sets in_fd, out_fd and made_fifo
 */
static void
fifos_open(struct window *w)
{
    for (int k = 0; k < 2; k++) {
        w->made_fifo[k] = mkfifo(fifo_path[k], 0600) == 0;
        if (!w->made_fifo[k] && errno != EEXIST)
            die(errno, "cannot make FIFO %s", fifo_path[k]);
    }
    if (w->side == 0)
        note("created segment %d (key 0x%08x), waiting for the other window",
             w->id, (unsigned)w->key);
    const char *mine = fifo_path[w->side], *theirs = fifo_path[!w->side];
    w->in_fd = open(mine, O_RDONLY | O_NONBLOCK);
    if (w->in_fd == -1)
        die(errno, "cannot open FIFO %s", mine);
    do
        w->out_fd = open(theirs, O_WRONLY);
    while (w->out_fd == -1 && errno == EINTR);
    if (w->out_fd == -1 || fcntl(w->out_fd, F_SETFL, O_NONBLOCK) == -1)
        die(errno, "cannot open FIFO %s", theirs);
}

/**
 * @brief Tell the other window to look at the segment: a byte down its FIFO.
 *
 * EAGAIN: its FIFO is full of wake-ups not yet read, it will look anyway.
 * EPIPE: it is gone (SIGPIPE is ignored, so the write fails instead of
 * killing us, the book exercise's pitfall); end of file on our FIFO follows.
 * @param w the window
 */
static void
wake(struct window *w)
{
    ssize_t n;
    do
        n = write(w->out_fd, "!", 1);
    while (n == -1 && errno == EINTR);
    if (n == -1 && errno != EAGAIN && errno != EPIPE)
        die(errno, "cannot write to FIFO %s", fifo_path[!w->side]);
}

/**
 * @brief Put the complete lines of buf into our ring while it has room.
 *
 * A line goes without its `\n`, one longer than #MSG_MAX as several
 * messages, a last one without `\n` at the end of input. A full ring waits
 * for the other window's wake-up: a message not yet printed is never
 * overwritten (the pitfall of one shared slot).
 * @param w the window
 */
static void
send_lines(struct window *w)
{
    struct ring *r = &w->seg->ring[w->side];
    int sent = 0;

    while (w->len > 0) {
        unsigned head = atomic_load(&r->head);
        if (head - atomic_load(&r->tail) == SLOTS)
            break;
        size_t look = w->len < MSG_MAX + 1 ? w->len : MSG_MAX + 1;
        char *nl = memchr(w->buf, '\n', look);
        size_t len = nl ? (size_t)(nl - w->buf) : MSG_MAX;
        if (!nl && w->len <= MSG_MAX && !w->in_eof)
            break; /* the rest of the line is still to come */
        if (len > w->len)
            len = w->len;
        size_t used = len + (nl != NULL);
        r->slot[head % SLOTS].len = (unsigned)len;
        memcpy(r->slot[head % SLOTS].text, w->buf, len);
        /* Release: the text is in the slot before head says it is. */
        atomic_store_explicit(&r->head, head + 1, memory_order_release);
        memmove(w->buf, w->buf + used, w->len - used);
        w->len -= used;
        sent = 1;
    }
    if (sent)
        wake(w);
}

/**
 * @brief Print every message the other window has put in its ring, then
 *        wake it: the freed slots may let it send what a full ring held.
 * @param w the window
 */
static void
print_lines(struct window *w)
{
    struct ring *r = &w->seg->ring[!w->side];
    unsigned tail = atomic_load(&r->tail), printed = 0;
    /* Acquire: pairs with the release in send_lines(). */
    unsigned head = atomic_load_explicit(&r->head, memory_order_acquire);

    for (; tail != head; tail++, printed++) {
        printf("%s: ", w->seg->name[!w->side]);
        fwrite(r->slot[tail % SLOTS].text, 1, r->slot[tail % SLOTS].len,
               stdout);
        putchar('\n');
    }
    if (fflush(stdout) == EOF || ferror(stdout))
        die(errno, "cannot write to standard output");
    atomic_store(&r->tail, tail);
    if (printed)
        wake(w);
}

/**
 * @brief The chat: wait for standard input or a wake-up, until one side ends.
 *
 * Returns at the end of our input, once all of it is in the segment, or at
 * end of file on our FIFO (the other window left, however it ended), once
 * what it sent is printed.
 * @param w the window, FIFOs open
 */
static void
chat(struct window *w)
{
    for (;;) {
        int want_in = !w->in_eof && w->len < sizeof w->buf;
        struct pollfd fds[2] = {{w->in_fd, POLLIN, 0},
                                {want_in ? 0 : -1, POLLIN, 0}};
        if (poll(fds, 2, -1) == -1) {
            if (errno == EINTR)
                continue;
            die(errno, "cannot poll");
        }
        if (fds[0].revents) {
            char junk[64];
            ssize_t n;
            while ((n = read(w->in_fd, junk, sizeof junk)) > 0 ||
                   (n == -1 && errno == EINTR))
                ;
            if (n == -1 && errno != EAGAIN)
                die(errno, "cannot read FIFO %s", fifo_path[w->side]);
            print_lines(w);
            send_lines(w);
            if (n == 0) {
                note("%s left", w->seg->name[!w->side]);
                return;
            }
        }
        if (fds[1].revents) {
            ssize_t n = read(0, w->buf + w->len, sizeof w->buf - w->len);
            if (n == -1 && errno != EINTR)
                die(errno, "cannot read standard input");
            w->in_eof = n == 0;
            w->len += n > 0 ? (size_t)n : 0;
            send_lines(w);
            if (w->in_eof && w->len == 0)
                return;
        }
    }
}

/**
 * @brief At exit(), a failure's too: remove what this window made and has
 *        not removed yet.
 *
 * Errors are ignored: the process is ending with its own message already.
 * A process killed by a signal never runs this, the page's lesson.
 */
static void
cleanup(void)
{
    for (int k = 0; k < 2; k++)
        if (self->made_fifo[k])
            (void)unlink(fifo_path[k]);
    if (self->owned)
        (void)shmctl(self->id, IPC_RMID, NULL);
}

/**
 * @brief Set up, chat, and only then clean up, the book's order.
 *
 * A window killed while it chats never gets to the clean-up. With `rmid`
 * the segment is marked once both windows have attached it, and the end
 * has nothing to remove.
 * @param argc argument count
 * @param argv `[rmid] chat NAME`
 * @return 0 when the chat ended; exits 1 on a failure, 2 on a bad argument
 */
int
main(int argc, char **argv)
{
    static struct window w; /* static: cleanup() reads it after main returns */
    int rmid = argc > 1 && strcmp(argv[1], "rmid") == 0;

    int help = argc == 2 && strcmp(argv[1], "-h") == 0;
    if (help || argc != 3 + rmid || strcmp(argv[1 + rmid], "chat") != 0 ||
        argv[2 + rmid][0] == '\0' || strlen(argv[2 + rmid]) >= NAME_LEN) {
        fputs("usage: sysv_demo [rmid] chat NAME   (NAME: 1 to 15 bytes)\n",
              help ? stdout : stderr);
        return help ? 0 : 2;
    }
    self = &w;
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR || atexit(cleanup) != 0)
        die(errno, "cannot set up");

    segment_open(&w, argv[2 + rmid]);
    fifos_open(&w);
    note("talking with %s", w.seg->name[!w.side]);
    /* The cure: both windows have attached (the other opened its FIFO
     * after its shmat()), so the key is needed no more. */
    if (rmid && shmctl(w.id, IPC_RMID, NULL) == -1)
        die(errno, "cannot remove segment %d", w.id);
    if (rmid) {
        w.owned = 0;
        note("marked segment %d for removal (IPC_RMID)", w.id);
    }
    chat(&w);

    if (close(w.out_fd) == -1 || close(w.in_fd) == -1)
        die(errno, "cannot close a FIFO");
    for (int k = 0; k < 2; k++) {
        if (w.made_fifo[k] && unlink(fifo_path[k]) == -1)
            die(errno, "cannot remove FIFO %s", fifo_path[k]);
        w.made_fifo[k] = 0;
    }
    /* Book pitfall: shmctl(IPC_RMID) left for the end is never reached by
     * a killed window -- guarded by tests/step03/sysv.bats. It comes
     * before shmdt(): with kernel.shm_rmid_forced=1 the last shmdt()
     * already destroys the segment, and its shmid would name nothing. */
    if (w.owned) {
        if (shmctl(w.id, IPC_RMID, NULL) == -1)
            die(errno, "cannot remove segment %d", w.id);
        w.owned = 0;
        note("removed segment %d (IPC_RMID)", w.id);
    }
    if (shmdt(w.seg) == -1)
        die(errno, "cannot detach segment %d", w.id);
    return 0;
}
