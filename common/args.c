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

/**
 * @brief Reports a command-line mistake and exits with #EXIT_USAGE.
 * @param prog     program name as invoked.
 * @param features which optional options this step accepts.
 * @param def      the default user limit.
 * @param why      one-line reason, or NULL when getopt already said it.
 */
static _Noreturn void
usage_error(const char *prog, unsigned features, long def, const char *why)
{
    if (why != NULL)
        fprintf(stderr, "%s: %s\n", prog, why);
    usage(stderr, prog, features, def);
    exit(EXIT_USAGE);
}

/**
 * @brief Reads a decimal number in [1, max] or exits with #EXIT_USAGE.
 * @param text     the option's argument.
 * @param max      largest value accepted.
 * @param what     the option's name for the message.
 * @param prog     program name as invoked.
 * @param features which optional options this step accepts.
 * @param def      the default user limit.
 * @return the number.
 */
static long
parse_count(const char *text, long max, const char *what, const char *prog,
            unsigned features, long def)
{
    char why[128];
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || errno != 0 || *end != '\0' || v < 1 ||
        v > max) {
        snprintf(why, sizeof why, "%s must be a number from 1 to %ld: '%.40s'",
                 what, max, text);
        usage_error(prog, features, def, why);
    }
    return v;
}

void
args_parse(int argc, char **argv, struct server_args *args, unsigned features,
           long default_users)
{
    const char *prog = argc > 0 ? argv[0] : "server";
    const char *slash = strrchr(prog, '/');
    const char *optstring = (features & ARGS_WORKERS) ? "+hvn:w:" : "+hvn:";
    char why[160];
    int opt;

    if (slash != NULL)
        prog = slash + 1;
    memset(args, 0, sizeof *args);
    args->users = default_users;
    opterr = 0; /* we word the complaint ourselves, on one line */
    while ((opt = getopt(argc, argv, optstring)) != -1) {
        switch (opt) {
        case 'h':
            usage(stdout, prog, features, default_users);
            exit(0);
        case 'v':
            args->verbose = true;
            break;
        case 'n':
            args->users = parse_count(optarg, ARGS_USERS_MAX, "USERS", prog,
                                      features, default_users);
            break;
        case 'w':
            args->workers = parse_count(optarg, ARGS_WORKERS_MAX, "WORKERS",
                                        prog, features, default_users);
            break;
        default:
            if (optopt != 0 && strchr(optstring + 1, optopt) != NULL)
                snprintf(why, sizeof why, "option -%c needs an argument",
                         optopt);
            else
                snprintf(why, sizeof why, "unknown option -%c",
                         optopt ? optopt : '?');
            usage_error(prog, features, default_users, why);
        }
    }
    if (argc - optind != 2)
        usage_error(prog, features, default_users,
                    argc - optind < 2 ? "HOST and PORT are required"
                                      : "too many arguments");
    if (net_parse_addr(argv[optind], argv[optind + 1], &args->addr,
                       &args->addrlen) < 0) {
        snprintf(why, sizeof why,
                 "'%.60s' '%.20s' is not an IPv4/IPv6 address and a port "
                 "0-65535",
                 argv[optind], argv[optind + 1]);
        usage_error(prog, features, default_users, why);
    }
    log_verbose = args->verbose;
}
