/**
 * @file tests/fuzz/fuzz_args.c
 * @brief libFuzzer target: the server command line (common/args.c).
 *
 * args_parse() exits, so this drives args_scan(), the part that decides
 * (args_parse() only prints and exits on its verdict). The first input
 * byte picks the mode and the step's features:
 *
 * - raw mode: the rest, split at NUL bytes, is argv[1..]; every verdict
 *   must be sound (check_verdict());
 * - model mode: the rest describes options in a shape getopt(3) parses
 *   one way only (`-v`, `-h`, `-n TEXT`, `-w TEXT`, an unknown option,
 *   `--`, HOST, PORT), and the verdict, the values and the reason for an
 *   unknown option must be what a plain reading of the SPEC's command
 *   line gives (model()).
 *
 * A sound verdict: a reason is one line of printable text; an accepted
 * command line has limits in range and an address that parses back to
 * the same bytes from the two operands.
 */
#include "args.h"
#include "net.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/** Most arguments built from one input. */
#define MAX_ARGS 24
/** Default user limit passed to args_scan() (steps 1-3 use 5). */
#define DEFAULT_USERS 5

/**
 * @brief Stops the run: prints why, and aborts so libFuzzer keeps the input.
 * @param what the broken rule.
 */
static _Noreturn void
fail(const char *what)
{
    fprintf(stderr, "fuzz_args: %s\n", what);
    abort();
}

/**
 * @brief Plain decimal digits (no sign, no space) of a value up to @p max.
 * @param text the text.
 * @param max  the largest value.
 * @param v    receives the value when valid.
 * @return 1 if valid, else 0.
 */
static int
digits_ok(const char *text, long max, long *v)
{
    long value = 0;

    if (text[0] == '\0')
        return 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        value = value * 10 + (*p - '0');
        if (value > max)
            return 0;
    }
    *v = value;
    return 1;
}

/**
 * @brief The SPEC's count: plain decimal digits, a value from 1 to @p max.
 * @param text the option's argument.
 * @param max  the largest value.
 * @param v    receives the value when valid.
 * @return 1 if valid, else 0.
 */
static int
count_ok(const char *text, long max, long *v)
{
    return digits_ok(text, max, v) && *v >= 1;
}

/**
 * @brief The SPEC's HOST PORT: a literal address and a port 0-65535.
 * @param host the HOST operand.
 * @param port the PORT operand.
 * @return 1 if both are valid, else 0.
 */
static int
addr_ok(const char *host, const char *port)
{
    unsigned char buf[sizeof(struct in6_addr)];
    long p;

    if (!digits_ok(port, 65535, &p))
        return 0;
    return inet_pton(AF_INET, host, buf) == 1 ||
           inet_pton(AF_INET6, host, buf) == 1;
}

/**
 * @brief Checks what any verdict must satisfy.
 * @param r        the verdict.
 * @param args     the parsed values.
 * @param why      the reason.
 * @param features the step's features.
 * @param argc     argument count.
 * @param argv     arguments.
 */
static void
check_verdict(enum args_result r, const struct server_args *args,
              const char *why, unsigned features, int argc, char **argv)
{
    if (r == ARGS_BAD) {
        if (why[0] == '\0')
            fail("a refusal without a reason");
        for (const char *p = why; *p != '\0'; p++)
            if ((unsigned char)*p < ' ' || *p == 0x7f)
                fail("the reason is not one line of printable text");
        return;
    }
    if (r != ARGS_OK)
        return;
    if (args->users < 1 || args->users > ARGS_USERS_MAX)
        fail("accepted a user limit out of range");
    if (args->workers < 0 || args->workers > ARGS_WORKERS_MAX ||
        (args->workers != 0 && !(features & ARGS_WORKERS)))
        fail("accepted a worker count out of range or not offered");
    if (argc < 3)
        fail("accepted a command line without HOST and PORT");

    /* With "+" getopt stops at the first operand: HOST and PORT are the
     * last two arguments. They must parse to the very same address. */
    struct sockaddr_storage ss;
    socklen_t len;
    if (net_parse_addr(argv[argc - 2], argv[argc - 1], &ss, &len) < 0 ||
        len != args->addrlen || memcmp(&ss, &args->addr, len) != 0)
        fail("the address is not the one HOST and PORT name");
    if (!addr_ok(argv[argc - 2], argv[argc - 1]))
        fail("accepted an address the SPEC refuses");
}

/** What the model expects. */
struct expect {
    enum args_result r; /**< the verdict */
    long users; /**< `-n`, when accepted */
    long workers; /**< `-w`, when accepted */
    bool verbose; /**< `-v` */
    char why[32]; /**< the reason for an unknown option, "" if not one */
};

/**
 * @brief Builds a command line in a shape getopt parses one way only, and
 *        what the SPEC says of it.
 *
 * Each step takes a byte: an option, or the operands; texts come
 * from the input up to a NUL. Operands are preceded by `--` whenever
 * HOST starts with '-', so getopt never reads them as options.
 * @param in       input bytes.
 * @param n        their number.
 * @param features the step's features.
 * @param argv     receives the arguments (argv[0] set by the caller).
 * @param argc     receives the count.
 * @param e        receives the expected verdict.
 */
static void
model(const char *in, size_t n, unsigned features, char **argv, int *argc,
      struct expect *e)
{
    static char store[8192];
    size_t used = 0, at = 0;
    bool decided = false;

    *e = (struct expect){.r = ARGS_OK, .users = DEFAULT_USERS};
    *argc = 1;

/* Next text: input up to a NUL, copied into the store. */
#define TEXT(dst)                                                              \
    do {                                                                       \
        size_t k = strnlen(in + at, n - at);                                   \
        if (used + k + 1 > sizeof store)                                       \
            k = 0;                                                             \
        memcpy(store + used, in + at, k);                                      \
        store[used + k] = '\0';                                                \
        (dst) = store + used;                                                  \
        used += k + 1;                                                         \
        at += k < n - at ? k + 1 : k;                                          \
    } while (0)

    while (at < n && *argc < MAX_ARGS - 4) {
        unsigned char op = (unsigned char)in[at++] % 6;
        char *text;
        long v;
        if (op == 4)
            break; /* on to the operands */
        if (op == 5) {
            /* An option byte no step knows ("--" would end the options). */
            static char opts[MAX_ARGS][3];
            unsigned char b = at < n ? (unsigned char)in[at++] : 'x';
            if (b == 0 || strchr("hvnw-", b) != NULL)
                b = 'x';
            char *o = opts[*argc];
            o[0] = '-';
            o[1] = (char)b;
            o[2] = '\0';
            argv[(*argc)++] = o;
            if (!decided) {
                e->r = ARGS_BAD;
                snprintf(e->why, sizeof e->why, "unknown option -%c",
                         b < ' ' || b == 0x7f ? '?' : b);
                decided = true;
            }
        } else if (op == 0) {
            argv[(*argc)++] = "-v";
            if (!decided)
                e->verbose = true;
        } else if (op == 1) {
            argv[(*argc)++] = "-h";
            if (!decided) {
                e->r = ARGS_HELP;
                decided = true;
            }
        } else {
            bool w = op == 3;
            argv[(*argc)++] = w ? "-w" : "-n";
            TEXT(text);
            argv[(*argc)++] = text;
            if (decided)
                continue;
            if (w && !(features & ARGS_WORKERS)) {
                e->r = ARGS_BAD;
                snprintf(e->why, sizeof e->why, "unknown option -w");
                decided = true;
            } else if (!count_ok(text, w ? ARGS_WORKERS_MAX : ARGS_USERS_MAX,
                                 &v)) {
                e->r = ARGS_BAD;
                decided = true;
            } else if (w) {
                e->workers = v;
            } else {
                e->users = v;
            }
        }
    }
    char *host, *port;
    TEXT(host);
    TEXT(port);
    if (host[0] == '-')
        argv[(*argc)++] = "--";
    argv[(*argc)++] = host;
    argv[(*argc)++] = port;
    if (!decided && !addr_ok(host, port))
        e->r = ARGS_BAD;
#undef TEXT
}

/**
 * @brief Raw mode: the input, split at NUL bytes, is the argument list.
 * @param in   input bytes.
 * @param n    their number.
 * @param argv receives the arguments (argv[0] set by the caller).
 * @param argc receives the count.
 */
static void
raw(const char *in, size_t n, char **argv, int *argc)
{
    static char store[8192];
    size_t k = n < sizeof store - 1 ? n : sizeof store - 1;

    memcpy(store, in, k);
    store[k] = '\0';
    *argc = 1;
    for (size_t at = 0; at <= k && *argc < MAX_ARGS - 1;) {
        argv[(*argc)++] = store + at;
        at += strlen(store + at) + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size);

/**
 * @brief libFuzzer's entry point: one command line, every check.
 * @param in   the input (mode byte, then the command line's description).
 * @param size its length.
 * @return 0 (a broken rule aborts instead).
 */
int
LLVMFuzzerTestOneInput(const uint8_t *in, size_t size)
{
    char *argv[MAX_ARGS + 1] = {"server"};
    struct server_args args;
    struct expect e;
    char why[160];
    int argc;

    if (size == 0)
        return 0;
    unsigned features = (in[0] & 1) ? ARGS_WORKERS : 0;
    bool use_model = (in[0] & 2) != 0;
    if (use_model)
        model((const char *)in + 1, size - 1, features, argv, &argc, &e);
    else
        raw((const char *)in + 1, size - 1, argv, &argc);
    argv[argc] = NULL;

    enum args_result r =
        args_scan(argc, argv, &args, features, DEFAULT_USERS, why, sizeof why);
    check_verdict(r, &args, why, features, argc, argv);
    if (!use_model)
        return 0;
    if (r != e.r)
        fail("the verdict is not the SPEC's");
    if (r == ARGS_OK && (args.users != e.users || args.workers != e.workers ||
                         args.verbose != e.verbose))
        fail("the values are not the ones given");
    if (r == ARGS_BAD && e.why[0] != '\0' && strcmp(why, e.why) != 0)
        fail("an unknown option is not reported as one");
    return 0;
}
