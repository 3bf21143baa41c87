/* fs.c: the FUSE filesystem (placeholder until the mount lands). */
#include "cli.h"
#include <stdio.h>

int cmd_mount(int argc, char **argv)
{
    fprintf(stderr, "stylefs: unknown command '%s'\nTry 'stylefs --help'.\n", argc > 1 ? argv[1] : "");
    return SF_EXIT_USAGE;
}
