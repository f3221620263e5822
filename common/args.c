/**
 * @file args.c
 * @brief Parses the server command line with getopt(3).
 */
#include "args.h"

#include "log.h"
#include "net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/**
 * @brief Prints the usage text on @p out.
 * @param out      stdout for `-h`, stderr for a mistake.
 * @param prog     program name as invoked.
 * @param features which optional options this step accepts.
 * @param def      the default user limit.
 */
static void
usage(FILE *out, const char *prog, unsigned features, long def)
{
    fprintf(out, "usage: %s [-h] [-v] [-n USERS]%s HOST PORT\n", prog,
            (features & ARGS_WORKERS) ? " [-w WORKERS]" : "");
    fprintf(out, "  HOST        IPv4 or IPv6 address to listen on "
                 "(127.0.0.1, ::1)\n"
                 "  PORT        TCP port, 0 asks the kernel for a free one\n");
    if (def > 0)
        fprintf(out,
                "  -n USERS    most users in the room at once (default %ld)\n",
                def);
    else
        fprintf(out,
                "  -n USERS    most users in the room at once (default: what "
                "the descriptor limit allows)\n");
    if (features & ARGS_WORKERS)
        fprintf(out, "  -w WORKERS  worker processes in the pool "
                     "(default: online CPUs)\n");
    fprintf(out, "  -v          trace every wake-up of the event loop on "
                 "stderr\n"
                 "  -h          print this help and exit\n");
}

const char *
args_quote(char *buf, size_t size, const char *text)
{
    size_t i = 0;

    for (; i + 1 < size && text[i] != '\0'; i++) {
        unsigned char b = (unsigned char)text[i];
        if (b < ' ' || b == 0x7f)
            buf[i] = '?';
        else
            buf[i] = text[i];
    }
    if (size > 0)
        buf[i] = '\0';
    return buf;
}

/**
 * @brief The option byte getopt(3) complained about, fit for a message.
 *
 * Found by tests/fuzz/fuzz_args.c, like args_quote()'s reason to be:
 * `server -$'\n'` said "unknown option -" and a line break.
 * @return optopt, or '?' for none or a control byte.
 */
static int
bad_option(void)
{
    unsigned char b = (unsigned char)optopt;

    return b < ' ' || b == 0x7f ? '?' : b; /* 0: getopt names none */
}

/**
 * @brief Reads a decimal number in [1, max].
 * @param text     the option's argument.
 * @param max      largest value accepted.
 * @param what     the option's name for the message.
 * @param v        receives the number.
 * @param why      receives the reason when the text is not such a number.
 * @param why_size size of @p why.
 * @return 0, or -1 when @p text is not a number from 1 to @p max.
 */
static int
parse_count(const char *text, long max, const char *what, long *v, char *why,
            size_t why_size)
{
    char quoted[41];
    char *end;

    errno = 0;
    *v = strtol(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || errno != 0 || *end != '\0' ||
        *v < 1 || *v > max) {
        snprintf(why, why_size, "%s must be a number from 1 to %ld: '%s'", what,
                 max, args_quote(quoted, sizeof quoted, text));
        return -1;
    }
    return 0;
}

enum args_result
args_scan(int argc, char **argv, struct server_args *args, unsigned features,
          long default_users, char *why, size_t why_size)
{
    const char *optstring = (features & ARGS_WORKERS) ? "+hvn:w:" : "+hvn:";
    int opt;

    memset(args, 0, sizeof *args);
    args->users = default_users;
    why[0] = '\0';
    opterr = 0; /* we word the complaint ourselves, on one line */
    optind = 0; /* glibc: 0 also resets getopt's inner state */
    while ((opt = getopt(argc, argv, optstring)) != -1) {
        switch (opt) {
        case 'h':
            return ARGS_HELP;
        case 'v':
            args->verbose = true;
            break;
        case 'n':
            if (parse_count(optarg, ARGS_USERS_MAX, "USERS", &args->users, why,
                            why_size) < 0)
                return ARGS_BAD;
            break;
        case 'w':
            if (parse_count(optarg, ARGS_WORKERS_MAX, "WORKERS", &args->workers,
                            why, why_size) < 0)
                return ARGS_BAD;
            break;
        default:
            /* ':' is in optstring but no option (found by
             * tests/fuzz/fuzz_args.c: `-:` "needed an argument"). */
            if (optopt != 0 && optopt != ':' &&
                strchr(optstring + 1, optopt) != NULL)
                snprintf(why, why_size, "option -%c needs an argument",
                         bad_option());
            else
                snprintf(why, why_size, "unknown option -%c", bad_option());
            return ARGS_BAD;
        }
    }
    if (argc - optind != 2) {
        snprintf(why, why_size, "%s",
                 argc - optind < 2 ? "HOST and PORT are required"
                                   : "too many arguments");
        return ARGS_BAD;
    }
    if (net_parse_addr(argv[optind], argv[optind + 1], &args->addr,
                       &args->addrlen) < 0) {
        char host[61], port[21];
        snprintf(why, why_size,
                 "'%s' '%s' is not an IPv4/IPv6 address and a port 0-65535",
                 args_quote(host, sizeof host, argv[optind]),
                 args_quote(port, sizeof port, argv[optind + 1]));
        return ARGS_BAD;
    }
    return ARGS_OK;
}

void
args_parse(int argc, char **argv, struct server_args *args, unsigned features,
           long default_users)
{
    const char *prog = argc > 0 ? argv[0] : "server";
    const char *slash = strrchr(prog, '/');
    char why[160];

    if (slash != NULL)
        prog = slash + 1;
    switch (
        args_scan(argc, argv, args, features, default_users, why, sizeof why)) {
    case ARGS_HELP:
        usage(stdout, prog, features, default_users);
        exit(0);
    case ARGS_BAD:
        fprintf(stderr, "%s: %s\n", prog, why);
        usage(stderr, prog, features, default_users);
        exit(EXIT_USAGE);
    case ARGS_OK:
        break;
    }
    log_verbose = args->verbose;
}
