/* cli_mount.c: the mount command, `stylefs [options] SOURCE MOUNTPOINT`:
 * its options (-o name=value and --name=value from one table, libfuse's
 * passed through), their checks, the mountpoint check and --help; then
 * the filesystem (fs.h) takes over. */
#include "cli.h"
#include "fs.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct mount_opts {
    char *styles, *cache, *max_side, *max_pixels, *quality, *cache_max, *device, *gpu_idle, *max_threads, *mem_max;
    char *compute, *offload_max, *offload_timeout;
    char *redis, *redis_auth, *redis_prefix, *redis_ttl, *redis_lease, *redis_timeout, *redis_key, *arbitrary;
    char *log;
    char *source, *mountpoint;
    int help, version, verbose, confine, nonempty, allow_other, strip_meta;
};

enum { KEY_HELP, KEY_VERSION, KEY_VERBOSE, KEY_ALLOW_OTHER };

#define MOPT(t, p) { t, offsetof(struct mount_opts, p), 1 }
/* One table for -o options and --flags alike ("--name=value" and
 * "--name value", as the other commands take them). */
static const struct fuse_opt mount_opt_spec[] = {
    MOPT("styles=%s", styles),         MOPT("--styles=%s", styles), MOPT("--styles %s", styles),
    MOPT("cache=%s", cache),           MOPT("--cache=%s", cache), MOPT("--cache %s", cache),
    MOPT("max_side=%s", max_side),     MOPT("--max-side=%s", max_side), MOPT("--max-side %s", max_side),
    MOPT("max_pixels=%s", max_pixels), MOPT("--max-pixels=%s", max_pixels), MOPT("--max-pixels %s", max_pixels),
    MOPT("quality=%s", quality),       MOPT("--quality=%s", quality), MOPT("--quality %s", quality),
    MOPT("cache_max=%s", cache_max),   MOPT("--cache-max=%s", cache_max), MOPT("--cache-max %s", cache_max),
    MOPT("device=%s", device),         MOPT("--device=%s", device), MOPT("--device %s", device),
    MOPT("gpu_idle=%s", gpu_idle),     MOPT("--gpu-idle=%s", gpu_idle), MOPT("--gpu-idle %s", gpu_idle),
    MOPT("max_threads=%s", max_threads), MOPT("--max-threads=%s", max_threads), MOPT("--max-threads %s", max_threads),
    MOPT("mem_max=%s", mem_max),       MOPT("--mem-max=%s", mem_max), MOPT("--mem-max %s", mem_max),
    MOPT("compute=%s", compute),       MOPT("--compute=%s", compute), MOPT("--compute %s", compute),
    MOPT("offload_max=%s", offload_max), MOPT("--offload-max=%s", offload_max), MOPT("--offload-max %s", offload_max),
    MOPT("offload_timeout=%s", offload_timeout), MOPT("--offload-timeout=%s", offload_timeout),
    MOPT("--offload-timeout %s", offload_timeout),
    MOPT("log=%s", log),               MOPT("--log=%s", log), MOPT("--log %s", log),
    MOPT("arbitrary=%s", arbitrary),   MOPT("--arbitrary=%s", arbitrary), MOPT("--arbitrary %s", arbitrary),
    MOPT("redis=%s", redis),           MOPT("--redis=%s", redis), MOPT("--redis %s", redis),
    MOPT("redis_auth=%s", redis_auth), MOPT("--redis-auth=%s", redis_auth), MOPT("--redis-auth %s", redis_auth),
    MOPT("redis_key=%s", redis_key),   MOPT("--redis-key=%s", redis_key), MOPT("--redis-key %s", redis_key),
    MOPT("redis_prefix=%s", redis_prefix), MOPT("--redis-prefix=%s", redis_prefix), MOPT("--redis-prefix %s", redis_prefix),
    MOPT("redis_ttl=%s", redis_ttl),   MOPT("--redis-ttl=%s", redis_ttl), MOPT("--redis-ttl %s", redis_ttl),
    MOPT("redis_lease=%s", redis_lease), MOPT("--redis-lease=%s", redis_lease), MOPT("--redis-lease %s", redis_lease),
    MOPT("redis_timeout=%s", redis_timeout), MOPT("--redis-timeout=%s", redis_timeout), MOPT("--redis-timeout %s", redis_timeout),
    { "confine", offsetof(struct mount_opts, confine), 1 },
    { "nonempty", offsetof(struct mount_opts, nonempty), 1 },
    { "strip_meta", offsetof(struct mount_opts, strip_meta), 1 },
    { "--strip-meta", offsetof(struct mount_opts, strip_meta), 1 },
    FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
    FUSE_OPT_KEY("-h", KEY_HELP),      FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),   FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_KEY("-v", KEY_VERBOSE),   FUSE_OPT_KEY("--verbose", KEY_VERBOSE),
    FUSE_OPT_END
};

/* Options fstab and mount(8) may hand a mount helper that mean nothing to
 * the filesystem: dropped, as mount.fuse3 does for its own. */
static int fstab_only(const char *opt)
{
    static const char *const words[] = { "defaults", "auto", "noauto", "user", "nouser", "users", "nofail",
                                         "_netdev", "owner", "group", "comment" };
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (!strcmp(opt, words[i]) || (!strncmp(opt, words[i], strlen(words[i])) && opt[strlen(words[i])] == '='))
            return 1;
    return !strncmp(opt, "x-", 2);      /* x-systemd.*, x-gvfs-*: for userspace, not for us */
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
    struct mount_opts *o = data;

    switch (key) {
    case FUSE_OPT_KEY_OPT:
        return fstab_only(arg) ? 0 : 1;
    case FUSE_OPT_KEY_NONOPT:
        if (!o->source) {
            o->source = strdup(arg);
            return 0;       /* SOURCE is ours; MOUNTPOINT goes to libfuse */
        }
        if (!o->mountpoint)
            o->mountpoint = strdup(arg);    /* checked before libfuse sees it */
        return 1;
    case KEY_HELP: o->help = 1; return 0;
    case KEY_VERSION: o->version = 1; return 0;
    case KEY_VERBOSE: o->verbose = 1; return 0;
    case KEY_ALLOW_OTHER: o->allow_other = 1; return 1;     /* libfuse's too */
    }
    return 1;
}

static const char mount_help[] =
    "usage: stylefs [options] SOURCE MOUNTPOINT\n"
    "Mount SOURCE's images, stylized on read, under MOUNTPOINT/styled/<style>/.\n"
    "stylefs options (-o name=value, or --name=value):\n"
    "  styles=DIR[:DIR]  more styles folders, after the system's and the user's (see 'stylefs styles -v')\n"
    "  arbitrary=DIR     the arbitrary-style networks for paintings (found on the styles path)\n"
    "  cache=DIR         cache folder (default $XDG_CACHE_HOME/stylefs)\n"
    "  max_side=N        downscale longer side to N before stylizing (1024, 0 = off)\n"
    "  max_pixels=N      refuse sources over N pixels (50000000)\n"
    "  quality=N         quality of JPEG, WebP, HEIC and AVIF output (90)\n"
    "  cache_max=SIZE    evict least recently read entries beyond SIZE (K/M/G;\n"
    "                    default a tenth of the cache's filesystem; 0: no limit)\n"
    "  device=DEV        auto, cpu or cuda (auto)\n"
    "  gpu_idle=SECS     release the engine (GPU context and memory, CPU plans) after SECS idle (30)\n"
    "  max_threads=N     requests served at once (256): a cold read holds one while it waits\n"
    "  mem_max=SIZE      memory for computations at once (half the RAM); a photo over it alone: EFBIG\n"
    "  redis=URL         share results through Redis: unix:PATH or tcp://HOST[:PORT]\n"
    "  redis_auth=FILE   the Redis password, the first line of FILE\n"
    "  redis_key=FILE    sign entries with the secret in FILE, and take only entries signed with it\n"
    "  redis_prefix=P    prefix of every Redis key (stylefs:)\n"
    "  redis_ttl=AGE     how long Redis keeps a result (30d)\n"
    "  redis_lease=SECS  how long other hosts wait on a computation here (30)\n"
    "  redis_timeout=MS  bound on every Redis call (1000)\n"
    "  compute=MODE      local (default), auto (hand computations to live workers: stylefs worker)\n"
    "                    or remote (never compute here); needs redis=\n"
    "  offload_max=N     auto computes here past N queued jobs (64)\n"
    "  offload_timeout=SECS  a reader's wait on the workers before auto computes here and remote fails (30)\n"
    "  confine           serve nothing outside SOURCE through symlinks (always with allow_other)\n"
    "  nonempty          mount over a directory that is not empty\n"
    "  strip_meta        serve no EXIF, XMP or ICC profile (kept from the source by default)\n"
    "  log=FILE          append the log to FILE, one line per event (default: syslog; stderr with -f)\n"
    "  -v, --verbose     log each stylization\n"
    "Failed reads: cat MOUNTPOINT/.errors (the last 100: time, path, style, reason)\n"
    "Counters: cat MOUNTPOINT/.stats\n"
    "FUSE options:\n";

/* Undo /proc/mounts' octal escapes (\040 for a space) in place. */
static void unescape_mounts(char *s)
{
    char *w = s;

    for (; *s; s++, w++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
            *w = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *w = *s;
        }
    }
    *w = '\0';
}

/* Whether mp is a mount point now: 1 with what is mounted there (its
 * source and type) in what, else 0. */
static int mounted_at(const char *mp, char *what, size_t whatlen)
{
    char real[PATH_MAX], line[3 * PATH_MAX], src[PATH_MAX], dir[PATH_MAX], type[128];
    FILE *f;
    int found = 0;

    if (!realpath(mp, real) && snprintf(real, sizeof real, "%s", mp) >= (int)sizeof real)
        return 0;
    if (!(f = fopen("/proc/self/mounts", "r")))
        return 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%4095s %4095s %127s", src, dir, type) != 3)
            continue;
        unescape_mounts(dir);
        unescape_mounts(src);
        if (!strcmp(dir, real)) {        /* the last one listed is on top */
            snprintf(what, whatlen, "%s (%s)", src, type);
            found = 1;
        }
    }
    fclose(f);
    return found;
}

/* The mountpoint must be an empty directory (unless nonempty): mounting
 * over files hides them, which is rarely meant; and not a mount already.
 * 0, or 1 after saying why. */
static int check_mountpoint(const char *mp, int nonempty)
{
    struct stat st;
    struct dirent *de;
    DIR *d;
    char what[PATH_MAX + 160];
    int empty = 1;

    if (mounted_at(mp, what, sizeof what)) {
        fprintf(stderr, "stylefs: mountpoint %s is already mounted: %s; unmount it first (fusermount3 -u %s)\n",
                mp, what, mp);
        return 1;
    }
    if (stat(mp, &st)) {
        fprintf(stderr, "stylefs: mountpoint %s: %s%s\n", mp, strerror(errno),
                errno == ENOTCONN ? " (a stale mount: fusermount3 -u it first)" : "");
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "stylefs: mountpoint %s: %s\n", mp, strerror(ENOTDIR));
        return 1;
    }
    if (nonempty || !(d = opendir(mp)))
        return 0;
    while (empty && (de = readdir(d)))
        empty = de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2]));
    closedir(d);
    if (!empty)
        fprintf(stderr, "stylefs: mountpoint %s is not empty; mounting would hide its files "
                        "(-o nonempty mounts anyway)\n", mp);
    return !empty;
}

/* The option values into c (and ro and cs, which c then points into); a
 * bad one is said on stderr.  0 or -1. */
static int parse_values(const struct mount_opts *o, struct sf_fs_config *c, struct sf_cli_settings *cs,
                        struct sf_remote_opts *ro)
{
    uint64_t v;

    if (o->redis || o->redis_auth || o->redis_prefix || o->redis_ttl || o->redis_lease || o->redis_timeout ||
        o->redis_key) {
        if (!o->redis) {
            fprintf(stderr, "stylefs: the redis_* options need redis=URL\n");
            return -1;
        }
        if (sf_cli_remote_opts(o->redis, o->redis_auth, o->redis_key, o->redis_prefix, o->redis_ttl, o->redis_lease,
                               o->redis_timeout, ro))
            return -1;
        c->remote = ro;
    }
    {
        /* the settings shared with stylize and warm (cli.h), as -o name=value */
        const struct { int id; const char *val; } shared[] = {
            { SF_OPT_STYLES, o->styles },         { SF_OPT_CACHE, o->cache },
            { SF_OPT_ARBITRARY, o->arbitrary },   { SF_OPT_QUALITY, o->quality },
            { SF_OPT_MAX_SIDE, o->max_side },     { SF_OPT_MAX_PIXELS, o->max_pixels },
            { SF_OPT_DEVICE, o->device },
        };
        for (size_t i = 0; i < sizeof shared / sizeof *shared; i++)
            if (shared[i].val && sf_cli_setting(cs, NULL, shared[i].id, shared[i].val))
                return -1;
        cs->set.strip_meta = o->strip_meta;
        c->set = cs->set;
        c->device = cs->device;
        c->styles = cs->styles;
        c->arbitrary = cs->arbitrary;
    }
    if (o->gpu_idle) {
        if (sf_cli_parse_num(NULL, "gpu_idle", o->gpu_idle, 1, 86400 * 365, &v))
            return -1;
        c->gpu_idle = (unsigned)v;
    }
    if (o->max_threads) {
        if (sf_cli_parse_num(NULL, "max_threads", o->max_threads, 2, 100000, &v))
            return -1;
        c->max_threads = (unsigned)v;
    }
    if (o->mem_max && (sf_parse_size(o->mem_max, &c->mem_max) || c->mem_max < (16u << 20))) {
        fprintf(stderr, "stylefs: mem_max takes a size of at least 16M like 2G, not '%s'\n", o->mem_max);
        return -1;
    }
    if (o->compute) {
        if (!strcmp(o->compute, "local"))
            c->compute = SF_COMPUTE_LOCAL;
        else if (!strcmp(o->compute, "auto"))
            c->compute = SF_COMPUTE_AUTO;
        else if (!strcmp(o->compute, "remote"))
            c->compute = SF_COMPUTE_REMOTE;
        else {
            fprintf(stderr, "stylefs: compute takes local, auto or remote, not '%s'\n", o->compute);
            return -1;
        }
    }
    if ((o->offload_max || o->offload_timeout || c->compute != SF_COMPUTE_LOCAL) && !o->redis) {
        fprintf(stderr, "stylefs: compute=auto or remote, offload_max and offload_timeout need redis=URL "
                        "(the workers' queue)\n");
        return -1;
    }
    if (o->offload_max) {
        if (sf_cli_parse_num(NULL, "offload_max", o->offload_max, 1, 1000000, &v))
            return -1;
        c->offload_max = v;
    }
    if (o->offload_timeout) {
        if (sf_cli_parse_num(NULL, "offload_timeout", o->offload_timeout, 1, 86400, &v))
            return -1;
        c->offload_timeout = (unsigned)v;
    }
    if (o->cache_max && sf_parse_size(o->cache_max, &c->cache_max)) {
        fprintf(stderr, "stylefs: cache_max takes a size like 500M or 2G, not '%s'\n", o->cache_max);
        return -1;
    }
    return 0;
}

int cmd_mount(int argc, char **argv)
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct mount_opts o = { 0 };
    struct fuse_cmdline_opts co = { 0 };
    struct sf_fs_config c = { .gpu_idle = 30, .max_threads = SF_FS_MAX_THREADS, .cache_max = SF_CACHE_MAX_DEFAULT };
    struct sf_remote_opts ro;
    struct sf_cli_settings cs;
    char why[512], cache_dir[PATH_MAX];
    int rc, status = SF_EXIT_USAGE;

    sf_cli_settings_init(&cs);
    if (fuse_opt_parse(&args, &o, mount_opt_spec, opt_proc))
        goto out_args;
    if (o.version || o.help) {
        if (o.version) {
            sf_print_version();
            printf("FUSE library %s\n", fuse_pkgversion());
        } else {
            fputs(mount_help, stdout);
            fuse_lib_help(&args);
        }
        status = SF_EXIT_OK;
        goto out_args;
    }
    if (o.mountpoint && check_mountpoint(o.mountpoint, o.nonempty)) {
        status = SF_EXIT_FAIL;
        goto out_args;
    }
    if (fuse_parse_cmdline(&args, &co) || !o.source || !co.mountpoint) {
        fprintf(stderr, "stylefs: usage: stylefs [options] SOURCE MOUNTPOINT\n"
                        "Try 'stylefs --help' or 'stylefs -h' for the mount's options.\n");
        goto out_args;
    }
    sf_log_set_level(co.debug ? SF_LOG_DEBUG : o.verbose ? SF_LOG_INFO : SF_LOG_NOTICE);
    if (parse_values(&o, &c, &cs, &ro))
        goto out_args;
    if (o.log && (rc = sf_log_use_file(o.log))) {
        fprintf(stderr, "stylefs: log file %s: %s\n", o.log, strerror(-rc));
        status = SF_EXIT_FAIL;
        goto out_args;
    }
    status = SF_EXIT_FAIL;
    if (sf_engine_probe(c.device, why, sizeof why)) {
        fprintf(stderr, "stylefs: %s\n", why);
        goto out_args;
    }
    if (sf_cli_cache_dir(cs.cache, cache_dir, sizeof cache_dir)) {
        fprintf(stderr, "stylefs: no cache folder: set cache=DIR, XDG_CACHE_HOME or HOME\n");
        goto out_args;
    }
    c.source = o.source;
    c.cache_dir = cache_dir;
    c.confine = o.confine;
    c.allow_other = o.allow_other;
    rc = sf_fs_main(&c, &args, &co);
    status = rc ? SF_EXIT_FAIL : SF_EXIT_OK;
out_args:
    free(co.mountpoint);
    fuse_opt_free_args(&args);
    free(o.source);
    free(o.mountpoint);
    free(o.styles); free(o.cache); free(o.max_side); free(o.max_pixels);
    free(o.quality); free(o.cache_max); free(o.device); free(o.gpu_idle); free(o.max_threads); free(o.mem_max);
    free(o.compute); free(o.offload_max); free(o.offload_timeout);
    free(o.redis); free(o.redis_auth); free(o.redis_key); free(o.redis_prefix); free(o.redis_ttl); free(o.redis_lease);
    free(o.redis_timeout); free(o.arbitrary); free(o.log);
    return status;
}
