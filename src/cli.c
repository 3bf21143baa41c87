/* cli.c: what the commands share (cli.h): the version text, the cache
 * folder they default to, usage errors, number options and the shared
 * store's options. */
#include "cli.h"
#include "cache.h"
#include "engine.h"
#include "remote.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

void sf_print_version(void)
{
    printf("stylefs %s\nengines: %s\n", SF_VERSION, sf_engines_built_in());
}

int sf_cli_cache_dir(const char *opt, char *buf, size_t len)
{
    if (opt) {
        snprintf(buf, len, "%s", opt);
        return 0;
    }
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

int sf_cli_remote_opts(const char *url, const char *auth, const char *prefix, const char *ttl,
                       const char *lease, const char *timeout, struct sf_remote_opts *o)
{
    uint64_t v;

    memset(o, 0, sizeof *o);
    o->url = url;
    o->auth_file = auth;
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
