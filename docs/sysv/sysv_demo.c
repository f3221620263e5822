/**
 * @file sysv_demo.c
 * @brief A System V shared memory segment outlives its process unless
 *        shmctl(IPC_RMID) removes it (book 13.6.1 to 13.6.3, 13.8).
 *
 * The "small program" of \ref step03_sysv "System V shared memory beside
 * POSIX", run by `make sysv-demo` (docs/sysv/demo.sh):
 *
 *     sysv_demo [rmid] [PATH]
 *
 * It finds or creates a 5 KiB segment (shmget() with `IPC_CREAT`, without
 * `IPC_EXCL`: "find or create"), the key made by `ftok(PATH, 'c')`, or
 * `IPC_PRIVATE` without PATH; attaches it; with `rmid`, marks it for
 * removal at once; prints what it found in it and the key and shmid; writes
 * `hello` into it; then copies its standard input to its standard output
 * (a FIFO, in the book's two-window chat), each line into the segment too,
 * and at the end of input detaches and, without `rmid`, removes the
 * segment. A process killed before that end, by SIGKILL or by the SIGPIPE
 * of a FIFO whose reader is gone, never gets there: without `rmid` it
 * leaves its segment behind; with `rmid` the segment goes with
 * the last process attached, however that process ends. That is the cure
 * chapter 3 applies to POSIX shared memory, with shm_unlink() right after
 * mmap() in shm_room_create().
 *
 * The segment is created `0600`, like the chapters' shared memory, not
 * the `0666` of many book examples.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <unistd.h>

/** The segment's size, 5 KiB as in the page's transcript. */
#define SEG_SIZE 5120

/** Bytes of the old contents printed at most (the rest is not the lesson). */
#define SHOW_MAX 64

/** ftok()'s project number: eight bits mixed into the key. */
#define PROJ_ID 'c'

/**
 * @brief Print "cannot WHAT OBJECT: cause" for the errno of a failed call,
 *        exit 1.
 *
 * One line naming what was tried, on what, and why it failed, as every
 * program of the tree does for a runtime failure (STYLE.md, "Errors and
 * exit codes").
 *
 * @param what   what was tried, e.g. "shmget"
 * @param object what it was tried on, e.g. a path, or "" if nothing
 */
static _Noreturn void
die(const char *what, const char *object)
{
    fprintf(stderr, "sysv_demo: cannot %s%s%s: %s\n", what, *object ? " " : "",
            object, strerror(errno));
    exit(1);
}

/**
 * @brief Print the usage line and exit: 0 for `-h`, 2 for a bad argument.
 *
 * A bad argument is the caller's mistake, not a runtime failure, so it
 * exits 2 with the usage on stderr, like every program of the tree.
 *
 * @param status 0 (usage asked for, on stdout) or 2 (on stderr)
 */
static _Noreturn void
usage(int status)
{
    fputs("usage: sysv_demo [rmid] [PATH]\n", status ? stderr : stdout);
    exit(status);
}

/**
 * @brief The key to look the segment up by: ftok(PATH) or IPC_PRIVATE.
 *
 * ftok() builds the key from PATH's inode and device numbers and
 * #PROJ_ID, so every run on the same PATH meets the same segment, and so
 * would any other program that chose the same file. IPC_PRIVATE always
 * makes a new segment, which only this process and its children (through
 * fork()) can reach.
 *
 * @param path the file to derive the key from, or NULL
 * @return the key; exits 1 when PATH cannot be stat()ed
 */
static key_t
segment_key(const char *path)
{
    if (path == NULL)
        return IPC_PRIVATE;
    key_t key = ftok(path, PROJ_ID);
    if (key == (key_t)-1)
        die("make a key from", path);
    return key;
}

/**
 * @brief Find or create the segment of KEY and attach it.
 *
 * `IPC_CREAT` without `IPC_EXCL` is the book's "find or create": a segment
 * left by an earlier run with the same key is found again, contents and
 * all. The segment belongs to the kernel, not to this process: exiting
 * only detaches it.
 *
 * @param key the segment's key (segment_key())
 * @param id  receives the segment's shmid, for ipcs and shmctl()
 * @return the attached segment; exits 1 on failure
 */
static char *
segment_attach(key_t key, int *id)
{
    *id = shmget(key, SEG_SIZE, IPC_CREAT | 0600);
    if (*id == -1)
        die("shmget", "");
    void *p = shmat(*id, NULL, 0);
    /* shmat() fails with (void *)-1, not NULL. */
    if ((intptr_t)p == -1)
        die("shmat", "");
    return p;
}

/**
 * @brief Mark the segment for removal, right after it is attached.
 *
 * The cure: from now on the key no longer finds the segment (ipcs shows
 * key 0 and status `dest`), the processes attached go on using it, and the
 * kernel frees it when the last of them detaches, which exit() and being
 * killed both do. Nothing is left to clean up at the end, so nothing is
 * leaked when the end never comes.
 *
 * @param id the segment's shmid
 */
static void
segment_mark_removed(int id)
{
    if (shmctl(id, IPC_RMID, NULL) == -1)
        die("shmctl(IPC_RMID)", "");
}

/**
 * @brief Print what the segment holds, its key and its shmid.
 *
 * A new segment is zero-filled, so it shows `found ""`; one left by a
 * killed run shows that run's `hello`. The key is printed as the segment
 * was looked up (ipcs shows 0 once it is marked for removal). Flushed at
 * once: the demo script reads these lines while this process still runs.
 *
 * @param p   the attached segment
 * @param key the key it was looked up by
 * @param id  its shmid
 */
static void
segment_show(const char *p, key_t key, int id)
{
    printf("found \"%.*s\"\n", (int)strnlen(p, SHOW_MAX), p);
    printf("key 0x%08x shmid %d\n", (unsigned)key, id);
    if (fflush(stdout) == EOF)
        die("write to standard output", "");
}

/**
 * @brief One window's half of the chat: copy standard input to standard
 *        output a line at a time, each line also into the segment.
 *
 * In the book's two-window exercise standard output is a FIFO the other
 * window reads. When that window is closed, the next write() to the FIFO
 * raises SIGPIPE, whose default action ends this process here, before
 * main() reaches its clean-up. Returns at the end of input.
 *
 * @param p the attached segment
 */
static void
chat(char *p)
{
    char line[SEG_SIZE];

    while (fgets(line, sizeof line, stdin) != NULL) {
        snprintf(p, SEG_SIZE, "%s", line);
        if (fputs(line, stdout) == EOF || fflush(stdout) == EOF)
            die("write to standard output", "");
    }
    if (ferror(stdin))
        die("read standard input", "");
}

/**
 * @brief Find or create the segment, show it, chat, clean up at the end.
 *
 * The clean-up, shmdt() and then shmctl(IPC_RMID), comes at the end of
 * input, the book's order; a process killed while it chats (SIGKILL, or
 * SIGPIPE from a FIFO nobody reads) never gets there. With `rmid` the
 * segment was marked at the start, and the end has nothing to remove.
 *
 * @param argc argument count
 * @param argv `[rmid] [PATH]`
 * @return 0 at the end of input; exits 1 on a failure, 2 on a bad argument
 */
int
main(int argc, char **argv)
{
    const char *path = NULL;
    int rmid = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0)
            usage(0);
        else if (i == 1 && strcmp(argv[i], "rmid") == 0)
            rmid = 1;
        else if (path == NULL && argv[i][0] != '-')
            path = argv[i];
        else
            usage(2);
    }

    int id;
    key_t key = segment_key(path);
    char *p = segment_attach(key, &id);
    if (rmid)
        segment_mark_removed(id);
    segment_show(p, key, id);
    snprintf(p, SEG_SIZE, "hello");
    chat(p);

    if (shmdt(p) == -1)
        die("shmdt", "");
    /* Book pitfall: shmctl(IPC_RMID) left for the end is never reached by
     * a killed process -- guarded by tests/step03/sysv.bats. */
    if (!rmid)
        segment_mark_removed(id);
    return 0;
}
