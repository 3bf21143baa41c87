/* cli.c: what the commands share (cli.h): the version text, the cache
 * folder they default to, usage errors and number options. */
#include "cli.h"
#include "cache.h"
#include "engine.h"
#include "util.h"

#include <stdio.h>

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
