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

#include "engine.h"
#include "pipeline.h"

#define SF_VERSION "0.1.0"

enum { SF_EXIT_OK = 0, SF_EXIT_FAIL = 1, SF_EXIT_USAGE = 2 };

int cmd_stylize(int argc, char **argv);
int cmd_styles(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_prune(int argc, char **argv);
/* stylefs warm: precompute a folder into the cache (cli_warm.c); also
 * exits 130 when interrupted. */
int cmd_warm(int argc, char **argv);
int cmd_worker(int argc, char **argv);
/* The mount: stylefs [options] SOURCE MOUNTPOINT (cli_mount.c). */
int cmd_mount(int argc, char **argv);

/* path made absolute against the working folder (a mount leaves it for /
 * when it starts serving).  0, -ENAMETOOLONG, or getcwd's -errno. */
int sf_cli_abspath(const char *path, char *buf, size_t len);
/* Shared by the commands that open a cache: the --cache value (made
 * absolute) or the default directory.  Returns 0 or -ENOENT (no $HOME, or
 * a path that cannot be made absolute). */
int sf_cli_cache_dir(const char *opt, char *buf, size_t len);
void sf_print_version(void);
/* "stylefs: CMD: MSG ARG" and a pointer to --help; returns SF_EXIT_USAGE. */
int sf_cli_usage(const char *cmd, const char *msg, const char *arg);
/* Parse a whole number in lo..hi, or say "stylefs: [CMD: ]NAME must be a
 * whole number from LO to HI" and return -1.  CMD may be NULL. */
int sf_cli_parse_num(const char *cmd, const char *name, const char *val, uint64_t lo, uint64_t hi,
                     uint64_t *out);

/* The options that decide what is computed and where styles and results
 * live, shared by `stylize`, `warm` and the mount and parsed in one place
 * (sf_cli_setting): --styles, --cache, --arbitrary, --quality, --max-side,
 * --max-pixels, --device; the mount spells them -o styles=, max_side=, ...
 * The strings point into argv. */
struct sf_cli_settings {
    struct sf_settings set;         /* quality, max_side, max_pixels */
    enum sf_device device;
    const char *styles, *cache, *arbitrary;     /* as given (arbitrary made absolute), or NULL */
    char arbitrary_abs[4096];
};
enum { SF_OPT_STYLES = 0x100, SF_OPT_CACHE, SF_OPT_ARBITRARY, SF_OPT_QUALITY, SF_OPT_MAX_SIDE, SF_OPT_MAX_PIXELS,
       SF_OPT_DEVICE, SF_OPT_STRIP_META, SF_OPT_NEXT /* the first id free for a command's own options */ };
/* Their getopt_long entries, for a command's table. */
#define SF_CLI_SETTINGS_OPTIONS \
    { "styles", required_argument, 0, SF_OPT_STYLES }, { "cache", required_argument, 0, SF_OPT_CACHE }, \
    { "arbitrary", required_argument, 0, SF_OPT_ARBITRARY }, { "quality", required_argument, 0, SF_OPT_QUALITY }, \
    { "max-side", required_argument, 0, SF_OPT_MAX_SIDE }, { "max-pixels", required_argument, 0, SF_OPT_MAX_PIXELS }, \
    { "device", required_argument, 0, SF_OPT_DEVICE }, { "strip-meta", no_argument, 0, SF_OPT_STRIP_META }
void sf_cli_settings_init(struct sf_cli_settings *s);
/* Take option id (SF_OPT_*) with value val.  cmd names the command in
 * messages, which then spell the option --max-side; NULL (the mount)
 * spells it max_side.  Returns 0, or -1 after saying on stderr what is
 * wrong with it. */
int sf_cli_setting(struct sf_cli_settings *s, const char *cmd, int id, const char *val);

/* The shared store's options (remote.h) from their strings (any may be
 * NULL but url): ttl an age (30d), lease whole seconds, timeout ms.  A bad
 * one is said on stderr, naming it; returns 0 or -1.  The strings must
 * outlive o. */
struct sf_remote_opts;
int sf_cli_remote_opts(const char *url, const char *auth, const char *key, const char *prefix, const char *ttl,
                       const char *lease, const char *timeout, struct sf_remote_opts *o);

#endif
