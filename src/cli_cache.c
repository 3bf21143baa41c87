/* cli_cache.c: `stylefs stats` and `stylefs prune`, the cache's commands
 * (stats also counts the shared store's entries with --redis). */
#include "cache.h"
#include "cli.h"
#include "remote.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Open an existing cache; a missing one is reported, not created. */
static int open_existing(const char *cmd, const char *opt, char *dir, size_t dirlen,
                         struct sf_cache **c)
{
    char why[512], path[PATH_MAX + 16];
    struct stat st;

    if (sf_cli_cache_dir(opt, dir, dirlen)) {
        fprintf(stderr, "stylefs: %s: no cache folder: set --cache, XDG_CACHE_HOME or HOME\n", cmd);
        return -ENOENT;
    }
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (stat(path, &st)) {
        fprintf(stderr, "stylefs: %s: %s: no cache there (%s)\n", cmd, dir, strerror(errno));
        return -ENOENT;
    }
    if (sf_cache_open(dir, NULL, c, why, sizeof why)) {
        fprintf(stderr, "stylefs: %s: %s\n", cmd, why);
        return -EIO;
    }
    return 0;
}

static const char stats_help[] =
    "usage: stylefs stats [--cache DIR] [--verify] [--redis URL [--redis-auth FILE]\n"
    "                     [--redis-prefix P] [--redis-timeout MS]]\n"
    "Print the cache's entries and bytes, its oldest and newest reads and\n"
    "the size of its file on disk.\n"
    "  --verify   also read every entry and check its checksum; exit 1 if any\n"
    "             is damaged (a damaged entry is never served: it is dropped)\n"
    "  --redis    also count the shared store's entries and bytes under the\n"
    "             prefix (SCAN), the workers alive (stylefs worker), the jobs\n"
    "             queued and the oldest one's age; exit 1 if it cannot be\n"
    "             reached.  Without a local cache, only those are printed.\n";

/* The shared store's part of stats.  0, or 1 after saying why. */
static int remote_stats(const struct sf_remote_opts *ro)
{
    struct sf_remote *r;
    uint64_t n, bytes;
    char why[512], a[64];
    int rc;

    if (sf_remote_open(ro, &r, why, sizeof why)) {
        fprintf(stderr, "stylefs: stats: %s\n", why);
        return 1;
    }
    rc = sf_remote_stats(r, &n, &bytes);
    printf("redis:        %s (prefix %s)\n", ro->url, ro->prefix ? ro->prefix : SF_REMOTE_DEFAULT_PREFIX);
    if (!rc) {
        printf("remote entries: %llu\n", (unsigned long long)n);
        printf("remote bytes: %llu (%s)\n", (unsigned long long)bytes, sf_fmt_size(bytes, a, sizeof a));
        struct sf_queue_info *qi = malloc(sizeof *qi);
        if (qi && (rc = sf_remote_queue_info(r, qi)) == 0) {
            printf("workers: %d\n", qi->nworkers);
            for (int i = 0; i < qi->nworkers; i++)
                printf("worker: %s\n", qi->workers[i]);
            printf("queued jobs: %llu\n", (unsigned long long)qi->depth);
            printf("oldest job: %.1f s\n", (double)qi->oldest_ms / 1e3);
        } else if (!qi) {
            rc = -ENOMEM;
        }
        free(qi);
        if (rc)
            fprintf(stderr, "stylefs: stats: redis %s: the work queue: %s\n", ro->url, strerror(-rc));
    } else {
        fprintf(stderr, "stylefs: stats: redis %s: %s\n", ro->url, strerror(-rc));
    }
    sf_remote_close(r);
    return rc ? 1 : 0;
}

int cmd_stats(int argc, char **argv)
{
    enum { O_REDIS = 256, O_RAUTH, O_RPREFIX, O_RTIMEOUT };
    static const struct option opts[] = {
        { "cache", required_argument, 0, 'c' }, { "help", no_argument, 0, 'h' },
        { "verify", no_argument, 0, 'v' }, { "redis", required_argument, 0, O_REDIS },
        { "redis-auth", required_argument, 0, O_RAUTH }, { "redis-prefix", required_argument, 0, O_RPREFIX },
        { "redis-timeout", required_argument, 0, O_RTIMEOUT }, { 0, 0, 0, 0 },
    };
    const char *cache_opt = NULL, *redis = NULL, *rauth = NULL, *rprefix = NULL, *rtimeout = NULL;
    char dir[PATH_MAX], path[PATH_MAX + 16], a[64], b[64];
    struct sf_cache *c;
    struct sf_cache_stats st;
    struct sf_remote_opts ro;
    struct stat sst;
    uint64_t checked = 0, damaged = 0;
    int opt, rc, verify = 0, remote_bad = 0;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': cache_opt = optarg; break;
        case 'v': verify = 1; break;
        case O_REDIS: redis = optarg; break;
        case O_RAUTH: rauth = optarg; break;
        case O_RPREFIX: rprefix = optarg; break;
        case O_RTIMEOUT: rtimeout = optarg; break;
        case 'h': return fputs(stats_help, stdout), SF_EXIT_OK;
        default: return sf_cli_usage("stats", "bad option", NULL);
        }
    }
    if (optind != argc)
        return sf_cli_usage("stats", "unexpected argument", argv[optind]);
    if (!redis && (rauth || rprefix || rtimeout))
        return sf_cli_usage("stats", "the --redis-* options need --redis URL", NULL);
    if (redis && sf_cli_remote_opts(redis, rauth, NULL, rprefix, NULL, NULL, rtimeout, &ro))
        return SF_EXIT_USAGE;
    if (redis && !sf_cli_cache_dir(cache_opt, dir, sizeof dir)) {
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        if (stat(path, &sst)) {                     /* a host without a local cache */
            printf("cache:        %s (none)\n", dir);
            return remote_stats(&ro) ? SF_EXIT_FAIL : SF_EXIT_OK;
        }
    }
    if (open_existing("stats", cache_opt, dir, sizeof dir, &c))
        return SF_EXIT_FAIL;
    rc = sf_cache_stats(c, &st);
    if (!rc && verify)
        rc = sf_cache_verify(c, &checked, &damaged);
    sf_cache_close(c);
    if (rc) {
        fprintf(stderr, "stylefs: stats: %s: %s\n", dir, strerror(-rc));
        return SF_EXIT_FAIL;
    }
    printf("cache:        %s\n", dir);
    printf("entries:      %llu\n", (unsigned long long)st.entries);
    printf("bytes:        %llu (%s)\n", (unsigned long long)st.bytes, sf_fmt_size(st.bytes, a, sizeof a));
    printf("oldest read:  %s\n", sf_fmt_time(st.oldest_read, a, sizeof a));
    printf("newest read:  %s\n", sf_fmt_time(st.newest_read, b, sizeof b));
    printf("file size:    %llu (%s on disk)\n", (unsigned long long)st.file_size,
           sf_fmt_size(st.file_alloc, a, sizeof a));
    printf("map:          %s used of %s\n", sf_fmt_size(st.map_used, a, sizeof a),
           sf_fmt_size(st.map_size, b, sizeof b));
    if (verify)
        printf("verified:     %llu %s, %llu damaged\n", (unsigned long long)checked,
               SF_PLURAL(checked, "entry", "entries"), (unsigned long long)damaged);
    if (redis)
        remote_bad = remote_stats(&ro);
    return damaged || remote_bad ? SF_EXIT_FAIL : SF_EXIT_OK;
}

static const char prune_help[] =
    "usage: stylefs prune [--cache DIR] [--max-size SIZE] [--older-than AGE] [--all]\n"
    "                     [--dry-run] [--compact]\n"
    "Remove cache entries.  Works while a mount or another command uses the cache.\n"
    "  --max-size SIZE   remove the least recently read entries until the cache\n"
    "                    holds at most SIZE bytes (K, M, G, T suffixes)\n"
    "  --older-than AGE  remove entries not read for AGE (s, m, h, d, w suffixes)\n"
    "  --all             remove every entry\n"
    "  --dry-run         say what would be removed, remove nothing\n"
    "  --compact         then shrink the file on disk (needs no other process\n"
    "                    to have the cache open)\n";

int cmd_prune(int argc, char **argv)
{
    enum { O_MAX = 256, O_OLDER, O_ALL, O_DRY, O_COMPACT, O_CACHE };
    static const struct option opts[] = {
        { "cache", required_argument, 0, O_CACHE },  { "max-size", required_argument, 0, O_MAX },
        { "older-than", required_argument, 0, O_OLDER }, { "all", no_argument, 0, O_ALL },
        { "dry-run", no_argument, 0, O_DRY },        { "compact", no_argument, 0, O_COMPACT },
        { "help", no_argument, 0, 'h' },             { 0, 0, 0, 0 },
    };
    const char *cache_opt = NULL;
    char dir[PATH_MAX], why[512], a[64], b[64];
    struct sf_prune_opts po = { 0 };
    struct sf_prune_result pr;
    struct sf_cache *c;
    int opt, rc, compact = 0, have_max = 0, have_age = 0;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case O_CACHE: cache_opt = optarg; break;
        case O_MAX:
            if (sf_parse_size(optarg, &po.max_size))
                return sf_cli_usage("prune", "--max-size takes a size like 500M or 2G, not", optarg);
            have_max = 1;
            break;
        case O_OLDER:
            if (sf_parse_age(optarg, &po.older_than) || !po.older_than)
                return sf_cli_usage("prune", "--older-than takes an age like 30d or 12h, not", optarg);
            have_age = 1;
            break;
        case O_ALL: po.all = 1; break;
        case O_DRY: po.dry_run = 1; break;
        case O_COMPACT: compact = 1; break;
        case 'h': return fputs(prune_help, stdout), SF_EXIT_OK;
        default: return sf_cli_usage("prune", "bad option", NULL);
        }
    }
    if (optind != argc)
        return sf_cli_usage("prune", "unexpected argument", argv[optind]);
    if (!have_max && !have_age && !po.all && !compact)
        return sf_cli_usage("prune", "nothing to do: give --max-size, --older-than, --all or --compact", NULL);
    if (po.all && (have_max || have_age))
        return sf_cli_usage("prune", "--all cannot be combined with --max-size or --older-than", NULL);
    if (compact && po.dry_run)
        return sf_cli_usage("prune", "--compact cannot be combined with --dry-run", NULL);
    if (have_max && po.max_size == 0)
        po.all = 1;     /* --max-size 0 empties the cache */
    if (open_existing("prune", cache_opt, dir, sizeof dir, &c))
        return SF_EXIT_FAIL;
    if (have_max || have_age || po.all) {
        rc = sf_cache_prune(c, &po, &pr);
        if (rc) {
            sf_cache_close(c);
            fprintf(stderr, "stylefs: prune: %s: %s\n", dir, strerror(-rc));
            return SF_EXIT_FAIL;
        }
        printf("%s %llu %s (%s); %llu %s (%s) %s\n",
               po.dry_run ? "would remove" : "removed", (unsigned long long)pr.removed,
               SF_PLURAL(pr.removed, "entry", "entries"), sf_fmt_size(pr.removed_bytes, a, sizeof a),
               (unsigned long long)pr.kept, SF_PLURAL(pr.kept, "entry", "entries"),
               sf_fmt_size(pr.kept_bytes, b, sizeof b), SF_PLURAL(pr.kept, "remains", "remain"));
    }
    sf_cache_close(c);
    if (compact) {
        uint64_t before = 0, after = 0;
        rc = sf_cache_compact(dir, &before, &after, why, sizeof why);
        if (rc) {
            fprintf(stderr, "stylefs: prune: %s\n", why);
            return SF_EXIT_FAIL;
        }
        printf("compacted %s: %s -> %s\n", dir, sf_fmt_size(before, a, sizeof a),
               sf_fmt_size(after, b, sizeof b));
    }
    return SF_EXIT_OK;
}
