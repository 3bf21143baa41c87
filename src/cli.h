/* cli.h: the subcommands of the stylefs binary.
 *
 * Each cmd_* takes the arguments after the subcommand name (argv[0] is the
 * subcommand) and returns the process exit status:
 *   0 ok, 1 failure, 2 usage error.
 * Errors go to stderr as "stylefs: <what failed>: <why>". */
#ifndef SF_CLI_H
#define SF_CLI_H

#include <stddef.h>
#include <stdint.h>

#define SF_VERSION "0.1.0"

enum { SF_EXIT_OK = 0, SF_EXIT_FAIL = 1, SF_EXIT_USAGE = 2 };

int cmd_stylize(int argc, char **argv);
int cmd_styles(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_prune(int argc, char **argv);
/* stylefs warm: precompute a folder into the cache (cli_warm.c); also
 * exits 130 when interrupted. */
int cmd_warm(int argc, char **argv);
/* The mount: stylefs [options] SOURCE MOUNTPOINT (cli_mount.c). */
int cmd_mount(int argc, char **argv);

/* Shared by the commands that open a cache: the --cache value or the
 * default directory.  Returns 0 or -ENOENT (no $HOME). */
int sf_cli_cache_dir(const char *opt, char *buf, size_t len);
void sf_print_version(void);
/* "stylefs: CMD: MSG ARG" and a pointer to --help; returns SF_EXIT_USAGE. */
int sf_cli_usage(const char *cmd, const char *msg, const char *arg);
/* Parse a whole number in lo..hi, or say "stylefs: [CMD: ]NAME must be a
 * whole number from LO to HI" and return -1.  CMD may be NULL. */
int sf_cli_parse_num(const char *cmd, const char *name, const char *val, uint64_t lo, uint64_t hi,
                     uint64_t *out);

/* The shared store's options (remote.h) from their strings (any may be
 * NULL but url): ttl an age (30d), lease whole seconds, timeout ms.  A bad
 * one is said on stderr, naming it; returns 0 or -1.  The strings must
 * outlive o. */
struct sf_remote_opts;
int sf_cli_remote_opts(const char *url, const char *auth, const char *prefix, const char *ttl,
                       const char *lease, const char *timeout, struct sf_remote_opts *o);

#endif
