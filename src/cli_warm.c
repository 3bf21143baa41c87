/* cli_warm.c: `stylefs warm`: precompute the styled versions of every
 * image under SOURCE into the cache, so that a later mount serves them at
 * once.
 *
 * Each file goes through the mount's own produce path (sf_produce, with
 * the naming rules of pipeline.h for its output format), so the keys are
 * the mount's, and each entry also gets the mount's stat alias, so a mount with the same --max-side and
 * --quality finds them as hits and reports exact sizes without reading.
 *
 * DESIGN: the main thread walks SOURCE (nftw with FTW_PHYS: links to
 * directories are not entered; a link to a file counts, wherever it
 * points, as a plain read of it would), then starts --jobs workers and
 * draws progress until they end.
 * Workers take tasks (one file in one style) from an atomic counter; each
 * reads, hashes, looks up, and on a miss stylizes through the shared
 * pipeline, whose engine runs one pass at a time: with more than one job,
 * reading, decoding, encoding and storing of other files overlap the
 * network (on the GPU this keeps it fed).  SIGINT and SIGTERM set `stop`:
 * workers take no new task, the pass in flight is cancelled between layers
 * (pipeline cancel flag), everything finished stays cached, and running
 * warm again resumes (finished files are then "already cached").
 * Shared counters are atomics; the list of failed names is under
 * fail_lock. */
#include "cli.h"
#include "log.h"
#include "pipeline.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static sf_cancel_flag g_warm_stop;     /* set by SIGINT/SIGTERM; polled by workers and engines */

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&g_warm_stop, 1);
}

struct warm {
    const char *root;
    char **files;               /* paths relative to root */
    size_t nfiles, cap;
    struct sf_model **models;
    size_t nmodels;
    struct sf_settings set;
    struct sf_pipeline pipe;
    struct sf_cache *cache;
    atomic_size_t next;         /* next task: file * nmodels + style */
    atomic_size_t computed, cached, fetched, failed, done;
    pthread_mutex_t fail_lock;  /* protects fails */
    char **fails;
    size_t nfails;
    int verbose;
};

static struct warm *g_walk;     /* nftw has no user pointer */

static int walk_cb(const char *path, const struct stat *st, int type, struct FTW *f)
{
    struct warm *w = g_walk;
    struct stat tst;
    const char *rel = path + strlen(w->root);

    while (*rel == '/')
        rel++;
    if (type == FTW_SL && (stat(path, &tst) || !S_ISREG(tst.st_mode)))
        return 0;               /* dangling or a link to a directory */
    if ((type != FTW_F && type != FTW_SL) || sf_served_name(path + f->base, NULL, 0, NULL) != 1)
        return 0;
    if (w->nfiles == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 256;
        char **nf = realloc(w->files, nc * sizeof *nf);
        if (!nf)
            return -1;
        w->files = nf;
        w->cap = nc;
    }
    if (!(w->files[w->nfiles] = strdup(rel)))
        return -1;
    w->nfiles++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void note_failure(struct warm *w, const char *rel, const char *style, const char *why)
{
    char line[PATH_MAX + 600];

    snprintf(line, sizeof line, "%s (%s): %s", rel, style, why);
    atomic_fetch_add(&w->failed, 1);
    pthread_mutex_lock(&w->fail_lock);
    char **nf = realloc(w->fails, (w->nfails + 1) * sizeof *nf);
    if (nf) {
        w->fails = nf;
        if ((w->fails[w->nfails] = strdup(line)))
            w->nfails++;
    }
    pthread_mutex_unlock(&w->fail_lock);
}

/* One file in one style, through the mount's produce path (sf_produce,
 * with the same keys and stat alias).  Returns 0, or -ECANCELED when
 * stopped. */
static int warm_one(struct warm *w, const char *rel, const struct sf_model *m)
{
    enum sf_format fmt = SF_FMT_PNG;
    uint8_t id[16], key[16], *src = NULL, *out = NULL;
    struct sf_entry_meta meta;
    size_t len, outlen;
    struct stat st;
    char path[PATH_MAX], why[512] = "";
    int rc, fd, how = 0;

    sf_served_name(rel, NULL, 0, &fmt);
    snprintf(path, sizeof path, "%s/%s", w->root, rel);
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);     /* a FIFO must not hang the walk */
    if (fd < 0 || fstat(fd, &st)) {
        note_failure(w, rel, m->name, strerror(errno));
        if (fd >= 0)
            close(fd);
        return 0;
    }
    if (!S_ISREG(st.st_mode)) {
        note_failure(w, rel, m->name, "not a regular file");
        close(fd);
        return 0;
    }
    sf_source_id(&st, fmt, &w->set, m, id);
    if (w->cache && sf_cache_alias_get(w->cache, id, key) == 0 && sf_cache_peek(w->cache, key, &meta) == 0) {
        atomic_fetch_add(&w->cached, 1);        /* known without reading */
        sf_pipeline_publish(&w->pipe, key);     /* with --redis: shared too */
        close(fd);
        return 0;
    }
    rc = sf_read_fd(fd, SF_MAX_SOURCE_BYTES, &src, &len);
    close(fd);
    if (rc) {
        note_failure(w, rel, m->name, strerror(-rc));
        return 0;
    }
    {
        struct sf_produce_req r = { .model = m, .fmt = fmt, .src = src, .len = len, .id = id, .peek = 1,
                                    .publish = 1, .what = rel };
        rc = sf_produce(&w->pipe, &r, &out, &outlen, &how, why, sizeof why);
    }
    free(src);
    free(out);
    if (rc == -ECANCELED)
        return rc;
    if (rc) {
        note_failure(w, rel, m->name, why[0] ? why : strerror(-rc));
        return 0;
    }
    if (how == SF_PRODUCED_COMPUTED) {
        atomic_fetch_add(&w->computed, 1);
        if (w->verbose)
            sf_info("warm: %s (%s): computed", rel, m->name);
    } else if (how == SF_PRODUCED_REMOTE || how == SF_PRODUCED_OFFLOADED) {
        atomic_fetch_add(&w->fetched, 1);
    } else {
        atomic_fetch_add(&w->cached, 1);
    }
    return 0;
}

static void *worker(void *arg)
{
    struct warm *w = arg;
    size_t total = w->nfiles * w->nmodels;

    while (!atomic_load(&g_warm_stop)) {
        size_t t = atomic_fetch_add(&w->next, 1);
        if (t >= total)
            break;
        /* style-major within a file: one read serves all styles' hashes
         * from the page cache */
        if (warm_one(w, w->files[t / w->nmodels], w->models[t % w->nmodels]) == -ECANCELED)
            break;
        atomic_fetch_add(&w->done, 1);
    }
    return NULL;
}

static void fmt_eta(double s, char *buf, size_t len)
{
    if (s < 0 || s > 360000)
        snprintf(buf, len, "--:--");
    else if (s >= 3600)
        snprintf(buf, len, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else
        snprintf(buf, len, "%d:%02d", (int)s / 60, (int)s % 60);
}

/* A bar on a terminal, plain lines otherwise (every 5 s and at the end). */
static void progress(struct warm *w, double t0, int tty, int final)
{
    static double last_line;
    size_t total = w->nfiles * w->nmodels, done = atomic_load(&w->done);
    double el = sf_monotonic() - t0, rate = el > 0 ? done / el : 0;
    char eta[32];

    fmt_eta(rate > 0 ? (total - done) / rate : -1, eta, sizeof eta);
    if (tty) {
        int width = 30, fill = total ? (int)(width * done / total) : width;
        fprintf(stderr, "\r[%.*s%*s] %zu/%zu  %.2f images/s  ETA %s  ", fill,
                "##############################", width - fill, "", done, total, rate, eta);
        if (final)
            fputc('\n', stderr);
    } else if (final || el - last_line >= 5) {
        last_line = el;
        fprintf(stderr, "stylefs: warm: %zu/%zu done, %.2f images/s, ETA %s\n", done, total, rate, eta);
    }
    fflush(stderr);
}

static const char warm_help[] =
    "usage: stylefs warm [options] SOURCE\n"
    "Precompute the styled version of every image under SOURCE into the cache,\n"
    "with the mount's keys: a later mount with the same settings serves them at once.\n"
    "  --styles DIR        more styles folders (DIR[:DIR...]), after the defaults\n"
    "  --style A,B,...     only these styles, each with any variant (wave@50+colors)\n"
    "                      (default: all, as listed by 'stylefs styles')\n"
    "  --cache DIR         cache folder (default $XDG_CACHE_HOME/stylefs)\n"
    "  --jobs N            files in flight (default 2); the network runs one at a time\n"
    "  --max-side N        as the mount's max_side (1024)\n"
    "  --max-pixels N      as the mount's max_pixels (50000000)\n"
    "  --quality N         as the mount's quality (90)\n"
    "  --strip-meta        as the mount's strip_meta\n"
    "  --device DEV        auto, cpu or cuda (auto)\n"
    "  --arbitrary DIR     the arbitrary-style networks (default: found on the styles path)\n"
    "  --redis URL         also fill (and use) a shared store: unix:PATH or tcp://HOST[:PORT]\n"
    "  --redis-auth FILE   its password, the first line of FILE\n"
    "  --redis-key FILE    sign entries with the secret in FILE (as the mount's redis_key)\n"
    "  --redis-prefix P    --redis-ttl AGE   --redis-lease SECS   --redis-timeout MS\n"
    "                      as the mount's redis_prefix, redis_ttl, redis_lease, redis_timeout\n"
    "  -v, --verbose       log each file\n"
    "Ctrl-C stops cleanly; running warm again resumes.\n"
    "Exit status: 0 all done, 1 some files failed, 2 usage, 130 interrupted.\n";

/* What `warm` was asked for. */
struct warm_args {
    struct sf_cli_settings cs;      /* the shared settings (cli.h) */
    const char *style_list, *source;
    const char *redis, *rauth, *rprefix, *rttl, *rlease, *rtimeout, *rkey;
    struct sf_remote_opts ro;
    uint64_t jobs;
    int verbose;
};

/* Parse argv into a.  Returns -1 to go on, else the exit status. */
static int warm_parse(int argc, char **argv, struct warm_args *a)
{
    enum { O_STYLE = SF_OPT_NEXT, O_JOBS, O_REDIS, O_RAUTH, O_RPREFIX, O_RTTL, O_RLEASE, O_RTIMEOUT, O_RKEY };
    static const struct option opts[] = {
        SF_CLI_SETTINGS_OPTIONS,
        { "style", required_argument, 0, O_STYLE },      { "jobs", required_argument, 0, O_JOBS },
        { "redis", required_argument, 0, O_REDIS },      { "redis-auth", required_argument, 0, O_RAUTH },
        { "redis-key", required_argument, 0, O_RKEY },
        { "redis-prefix", required_argument, 0, O_RPREFIX }, { "redis-ttl", required_argument, 0, O_RTTL },
        { "redis-lease", required_argument, 0, O_RLEASE }, { "redis-timeout", required_argument, 0, O_RTIMEOUT },
        { "verbose", no_argument, 0, 'v' },              { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    int c;

    memset(a, 0, sizeof *a);
    sf_cli_settings_init(&a->cs);
    a->jobs = 2;
    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case O_STYLE: a->style_list = optarg; break;
        case O_JOBS: if (sf_cli_parse_num("warm", "--jobs", optarg, 1, 256, &a->jobs)) return SF_EXIT_USAGE; break;
        case O_REDIS: a->redis = optarg; break;
        case O_RAUTH: a->rauth = optarg; break;
        case O_RKEY: a->rkey = optarg; break;
        case O_RPREFIX: a->rprefix = optarg; break;
        case O_RTTL: a->rttl = optarg; break;
        case O_RLEASE: a->rlease = optarg; break;
        case O_RTIMEOUT: a->rtimeout = optarg; break;
        case 'v': a->verbose = 1; break;
        case 'h': fputs(warm_help, stdout); return SF_EXIT_OK;
        case '?': return sf_cli_usage("warm", "bad option", NULL);
        default:
            if (sf_cli_setting(&a->cs, "warm", c, optarg)) return SF_EXIT_USAGE;
        }
    }
    if (argc - optind != 1)
        return sf_cli_usage("warm", "expected one SOURCE folder", NULL);
    a->source = argv[optind];
    if (!a->redis && (a->rauth || a->rprefix || a->rttl || a->rlease || a->rtimeout || a->rkey))
        return sf_cli_usage("warm", "the --redis-* options need --redis URL", NULL);
    if (a->redis && sf_cli_remote_opts(a->redis, a->rauth, a->rkey, a->rprefix, a->rttl, a->rlease, a->rtimeout, &a->ro))
        return SF_EXIT_USAGE;
    if (a->verbose)
        sf_log_set_level(SF_LOG_INFO);
    return -1;
}

/* --style A,B,... split into *names (malloc'd; free with sf_names_free).
 * Returns -1 to go on, else the exit status. */
static int split_styles(const char *list, char ***names, size_t *n)
{
    char *dup = strdup(list), *save = NULL;
    int rc = dup ? 0 : -ENOMEM;

    for (char *t = dup ? strtok_r(dup, ",", &save) : NULL; t && !rc; t = strtok_r(NULL, ",", &save)) {
        char **nn = realloc(*names, (*n + 1) * sizeof *nn);
        if (!nn) {
            rc = -ENOMEM;
            break;
        }
        *names = nn;                /* names[0..n) stay valid and are freed by the caller */
        if (!((*names)[*n] = strdup(t)))
            rc = -ENOMEM;
        else
            (*n)++;
    }
    free(dup);
    if (rc) {
        fprintf(stderr, "stylefs: warm: --style %s: %s\n", list, strerror(-rc));
        return SF_EXIT_FAIL;
    }
    if (!*n)
        return sf_cli_usage("warm", "--style names no style", list);
    return -1;
}

/* The styles: all, or the --style list, each loaded and checked.
 * Returns -1 to go on, else the exit status. */
static int warm_styles(const struct warm_args *a, struct warm *w)
{
    struct sf_styles_path *sp = malloc(sizeof *sp);
    char why[900], **names = NULL;
    size_t nnames = 0;
    int rc, status = -1;

    if (!sp || sf_styles_path(a->cs.styles, sp, why, sizeof why)) {
        fprintf(stderr, "stylefs: warm: %s\n", sp ? why : "out of memory");
        free(sp);
        return SF_EXIT_FAIL;
    }
    if (a->style_list && (status = split_styles(a->style_list, &names, &nnames)) >= 0)
        goto out_names;
    rc = sf_models_load(sp, a->cs.arbitrary, a->style_list ? names : NULL, nnames, "warm: ", &w->models,
                        &w->nmodels);
    if (rc)
        status = a->style_list && rc != -ENOMEM ? SF_EXIT_USAGE : SF_EXIT_FAIL;
out_names:
    sf_names_free(names, nnames);
    free(sp);
    return status;
}

/* The images under w->root, sorted.  0, or -1 after saying why. */
static int warm_walk(struct warm *w)
{
    g_walk = w;
    if (nftw(w->root, walk_cb, 64, FTW_PHYS)) {
        fprintf(stderr, "stylefs: warm: walking %s: %s\n", w->root, strerror(errno));
        return -1;
    }
    qsort(w->files, w->nfiles, sizeof *w->files, cmp_str);
    return 0;
}

/* The cache, the shared store (with --redis) and the pipeline over them.
 * 0, or -1 after saying why (nothing left open). */
static int warm_open(const struct warm_args *a, struct warm *w, struct sf_remote **remote)
{
    char dir[PATH_MAX], why[512];

    if (sf_cli_cache_dir(a->cs.cache, dir, sizeof dir)) {
        fprintf(stderr, "stylefs: warm: no cache folder: set --cache, XDG_CACHE_HOME or HOME\n");
        return -1;
    }
    if (sf_cache_open(dir, NULL, &w->cache, why, sizeof why)) {
        fprintf(stderr, "stylefs: warm: %s\n", why);
        return -1;
    }
    if (a->redis && sf_remote_open(&a->ro, remote, why, sizeof why)) {
        fprintf(stderr, "stylefs: warm: %s\n", why);
        sf_cache_close(w->cache);
        w->cache = NULL;
        return -1;
    }
    sf_pipeline_init(&w->pipe, a->cs.device, &w->set, w->cache);
    w->pipe.cancel = &g_warm_stop;
    w->pipe.remote = *remote;
    return 0;
}

/* Run `jobs` workers over every task, drawing progress, until done or
 * stopped (SIGINT, SIGTERM).  0, or -1 after saying why. */
static int warm_run(struct warm *w, uint64_t jobs, double t0)
{
    struct sigaction sa, old_int, old_term;
    pthread_t *th;
    size_t nth;
    int tty = isatty(STDERR_FILENO);

    if (!(th = calloc(jobs, sizeof *th)))
        return -1;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    for (nth = 0; nth < jobs; nth++)
        if (pthread_create(&th[nth], NULL, worker, w))
            break;
    if (nth) {
        while (atomic_load(&w->done) < w->nfiles * w->nmodels && !atomic_load(&g_warm_stop)) {
            progress(w, t0, tty, 0);
            struct timespec ts = { 0, 200 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
        for (size_t i = 0; i < nth; i++)
            pthread_join(th[i], NULL);
        progress(w, t0, tty, 1);
    } else {
        fprintf(stderr, "stylefs: warm: cannot start a worker thread\n");
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(th);
    return nth ? 0 : -1;
}

/* The summary line, the failures, and the exit status. */
static int warm_report(struct warm *w, int remote, double t0)
{
    char fetched[64] = "";
    int stopped = atomic_load(&g_warm_stop);

    if (remote)
        snprintf(fetched, sizeof fetched, ", %zu from redis", atomic_load(&w->fetched));
    printf("%s%zu computed, %zu already cached%s, %zu failed (%zu %s x %zu %s, %.1f s)\n",
           stopped ? "interrupted: " : "", atomic_load(&w->computed), atomic_load(&w->cached), fetched,
           atomic_load(&w->failed), w->nfiles, SF_PLURAL(w->nfiles, "file", "files"), w->nmodels,
           SF_PLURAL(w->nmodels, "style", "styles"), sf_monotonic() - t0);
    for (size_t i = 0; i < w->nfails; i++)
        printf("failed: %s\n", w->fails[i]);
    if (stopped)
        printf("run the same command again to resume\n");
    return stopped ? 130 : w->nfails ? SF_EXIT_FAIL : SF_EXIT_OK;
}

int cmd_warm(int argc, char **argv)
{
    struct warm_args a;
    struct sf_remote *remote = NULL;
    char root[PATH_MAX];
    struct warm w;
    int status;
    double t0;

    if ((status = warm_parse(argc, argv, &a)) >= 0)
        return status;
    if (!realpath(a.source, root)) {
        fprintf(stderr, "stylefs: warm: %s: %s\n", a.source, strerror(errno));
        return SF_EXIT_FAIL;
    }
    memset(&w, 0, sizeof w);
    w.root = root;
    w.set = a.cs.set;
    w.verbose = a.verbose;
    pthread_mutex_init(&w.fail_lock, NULL);
    if ((status = warm_styles(&a, &w)) >= 0)
        goto out_lock;
    status = SF_EXIT_FAIL;
    if (warm_walk(&w) || warm_open(&a, &w, &remote))
        goto out_files;
    t0 = sf_monotonic();
    if (warm_run(&w, a.jobs, t0) == 0)
        status = warm_report(&w, remote != NULL, t0);
    sf_pipeline_close(&w.pipe);
    sf_remote_close(remote);
    sf_cache_close(w.cache);
out_files:
    for (size_t i = 0; i < w.nfiles; i++)
        free(w.files[i]);
    free(w.files);
    for (size_t i = 0; i < w.nfails; i++)
        free(w.fails[i]);
    free(w.fails);
    sf_models_free(w.models, w.nmodels);
out_lock:
    pthread_mutex_destroy(&w.fail_lock);
    return status;
}
