/* main.c: stylefs's entry point: dispatches to a subcommand, or mounts.
 *
 *   stylefs stylize | styles | warm | stats | prune ...   one-shot commands (cli_*.c)
 *   stylefs [options] SOURCE MOUNTPOINT            the filesystem (fs.c) */
#include "cli.h"
#include "log.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
        "usage: stylefs [options] SOURCE MOUNTPOINT      mount (see stylefs --help-mount)\n"
        "       stylefs stylize [options] STYLE INPUT OUTPUT     (STYLE may be NAME@P+colors)\n"
        "       stylefs stylize [options] --style-image PAINTING [--strength P] [--colors] INPUT OUTPUT\n"
        "       stylefs styles  [--styles DIR[:DIR...]] [--arbitrary DIR] [-v]\n"
        "       stylefs warm    [--styles DIR] [--style A,B] [--cache DIR] [--jobs N] [--redis URL] SOURCE\n"
        "       stylefs worker  --redis URL [--styles DIR] [--jobs N] [--device DEV]\n"
        "       stylefs stats   [--cache DIR] [--verify] [--redis URL]\n"
        "       stylefs prune   [--cache DIR] [--max-size SIZE] [--older-than AGE] [--all]\n"
        "                       [--dry-run] [--compact]\n"
        "       stylefs --version | --help\n"
        "Run 'stylefs COMMAND --help' for a command's options; 'man stylefs' for more.\n");
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        { "stylize", cmd_stylize }, { "styles", cmd_styles },
        { "stats", cmd_stats },     { "prune", cmd_prune },
        { "warm", cmd_warm },       { "worker", cmd_worker },
    };

    /* A Redis server that closes a connection while hiredis writes to it
     * would kill the process with SIGPIPE (a worker, warm --redis): every
     * command gets EPIPE instead, an error like any other.  (The mount's
     * libfuse ignores it too.) */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return SF_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        sf_print_version();
        return SF_EXIT_OK;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return SF_EXIT_OK;
    }
    if (!strcmp(argv[1], "--help-mount")) {
        char *help[] = { argv[0], "--help", NULL };
        return cmd_mount(2, help);
    }
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].fn(argc - 1, argv + 1);
    return cmd_mount(argc, argv);
}
