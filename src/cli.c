/* cli.c: what the commands share (cli.h): the version text, the cache
 * folder they default to, usage errors, number options and the shared
 * store's options. */
#include "cli.h"
#include "cache.h"
#include "engine.h"
#include "remote.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void sf_print_version(void)
{
    printf("stylefs %s\nengines: %s\n", SF_VERSION, sf_engines_built_in());
}

int sf_cli_abspath(const char *path, char *buf, size_t len)
{
    char cwd[PATH_MAX];

    if (path[0] == '/') {
        snprintf(buf, len, "%s", path);
        return 0;
    }
    if (!getcwd(cwd, sizeof cwd))
        return -errno;
    return snprintf(buf, len, "%s/%s", cwd, path) < (int)len ? 0 : -ENAMETOOLONG;
}

int sf_cli_cache_dir(const char *opt, char *buf, size_t len)
{
    if (opt)        /* absolute: a mount leaves the working folder for / */
        return sf_cli_abspath(opt, buf, len) ? -ENOENT : 0;
    return sf_cache_default_dir(buf, len);
}

int sf_cli_usage(const char *cmd, const char *msg, const char *arg)
{
    fprintf(stderr, "stylefs: %s: %s%s%s\nTry 'stylefs %s --help'.\n", cmd, msg,
            arg ? " " : "", arg ? arg : "", cmd);
    return SF_EXIT_USAGE;
}

int sf_cli_parse_num(const char *cmd, const char *name, const char *val, uint64_t lo, uint64_t hi,
                     uint64_t *out)
{
    if (sf_parse_u64(val, lo, hi, out)) {
        fprintf(stderr, "stylefs: %s%s%s must be a whole number from %llu to %llu, not '%s'\n",
                cmd ? cmd : "", cmd ? ": " : "", name, (unsigned long long)lo, (unsigned long long)hi, val);
        return -1;
    }
    return 0;
}

void sf_cli_settings_init(struct sf_cli_settings *s)
{
    memset(s, 0, sizeof *s);
    sf_settings_default(&s->set);
    s->device = SF_DEVICE_AUTO;
}

/* The numeric settings: the flag's name, the mount's, and their range. */
static const struct {
    int id;
    const char *flag, *mount;
    uint64_t lo, hi;
} num_settings[] = {
    { SF_OPT_QUALITY, "--quality", "quality", 1, 100 },
    { SF_OPT_MAX_SIDE, "--max-side", "max_side", 0, 65535 },
    { SF_OPT_MAX_PIXELS, "--max-pixels", "max_pixels", 1, 1ULL << 40 },
};

int sf_cli_setting(struct sf_cli_settings *s, const char *cmd, int id, const char *val)
{
    uint64_t v;

    switch (id) {
    case SF_OPT_STYLES: s->styles = val; return 0;
    case SF_OPT_CACHE: s->cache = val; return 0;
    case SF_OPT_ARBITRARY:     /* absolute: a mount loads the networks later, from / */
        if (sf_cli_abspath(val, s->arbitrary_abs, sizeof s->arbitrary_abs)) {
            fprintf(stderr, "stylefs: %s%sarbitrary %s: cannot make it absolute\n", cmd ? cmd : "", cmd ? ": --" : "",
                    val);
            return -1;
        }
        s->arbitrary = s->arbitrary_abs;
        return 0;
    case SF_OPT_STRIP_META: s->set.strip_meta = 1; return 0;
    case SF_OPT_DEVICE:
        if (sf_device_parse(val, &s->device) == 0)
            return 0;
        if (cmd)
            sf_cli_usage(cmd, "--device must be auto, cpu or cuda, not", val);
        else
            fprintf(stderr, "stylefs: device must be auto, cpu or cuda, not '%s'\n", val);
        return -1;
    }
    for (size_t i = 0; i < sizeof num_settings / sizeof *num_settings; i++) {
        if (num_settings[i].id != id)
            continue;
        if (sf_cli_parse_num(cmd, cmd ? num_settings[i].flag : num_settings[i].mount, val, num_settings[i].lo,
                             num_settings[i].hi, &v))
            return -1;
        if (id == SF_OPT_QUALITY)
            s->set.quality = (int)v;
        else if (id == SF_OPT_MAX_SIDE)
            s->set.max_side = (int)v;
        else
            s->set.max_pixels = v;
        return 0;
    }
    fprintf(stderr, "stylefs: internal error: setting %d unknown\n", id);
    return -1;
}

int sf_cli_remote_opts(const char *url, const char *auth, const char *key, const char *prefix, const char *ttl,
                       const char *lease, const char *timeout, struct sf_remote_opts *o)
{
    uint64_t v;

    memset(o, 0, sizeof *o);
    o->url = url;
    o->auth_file = auth;
    o->key_file = key;
    o->prefix = prefix;
    if (ttl && (sf_parse_age(ttl, &o->ttl_s) || o->ttl_s == 0 || o->ttl_s > 3650ULL * 86400)) {
        fprintf(stderr, "stylefs: redis_ttl takes an age like 30d or 12h (up to 3650d), not '%s'\n", ttl);
        return -1;
    }
    if (lease) {
        if (sf_cli_parse_num(NULL, "redis_lease", lease, 1, 86400, &v))
            return -1;
        o->lease_ms = v * 1000;
    }
    if (timeout && sf_cli_parse_num(NULL, "redis_timeout", timeout, 10, 600000, &o->timeout_ms))
        return -1;
    return 0;
}
