/* cli_worker.c: `stylefs worker`: compute what mounts with compute=auto
 * or compute=remote hand over through the shared store's queue (remote.h
 * "the work queue"), and store each result there, where the mount that
 * asked (and every other) finds it.
 *
 * A job names its content key, the style (its name and digest), the
 * output format and the settings; its source bytes are in Redis beside
 * it.  The worker takes a job only for a style it has with that digest
 * and only when the key it makes from the bytes and settings is the
 * job's: a job it cannot verify is refused, and the mount is told why.
 * A painting style it lacks comes with the job as bytes (checked against
 * their hash and the digest); it is kept loaded, as a file in a private
 * folder, for the jobs after.
 * Each computation is sf_stylize, the mount's own, within the same
 * guards (max_pixels, the memory budget), so a hostile job fails like a
 * hostile local read and cannot take the worker down.
 *
 * DESIGN: --jobs threads, each with its own pipeline (its own engine) and
 * its own Redis connection, blocked in XREADGROUP until a job comes: no
 * polling.  One heartbeat thread refreshes the worker's key every
 * SF_HEARTBEAT_MS (and queues again the jobs of dead workers).  The main
 * thread waits for SIGINT or SIGTERM (blocked in every thread, taken by
 * sigwait), then sets `stop` and interrupts the blocked reads; a
 * computation in flight is cancelled between layers, its job left to be
 * queued again.  Counters are atomics. */
#include "cli.h"
#include "log.h"
#include "pipeline.h"
#include "style.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static sf_cancel_flag g_stop;

#define MAX_PAINTINGS 64         /* paintings from jobs' bytes kept loaded */

struct worker {
    struct sf_remote *remote;
    struct sf_style_set *styles;
    const struct sf_styles_path *sp;    /* where the painting networks are found */
    struct sf_cli_settings cs;
    char id[200], info[256];
    char tmpdir[64];            /* the paintings from jobs, as files (removed at exit) */
    pthread_mutex_t plock;      /* protects paintings[] and npaintings */
    struct sf_model *paintings[MAX_PAINTINGS];
    int npaintings;
    atomic_ullong computed, skipped, refused;
};

static void hex16(const uint8_t *k, char out[33])
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", k[i]);
}

/* The painting style a job names, from the bytes the mount sent
 * ("paint:" HEX): kept loaded (MAX_PAINTINGS at most) under the job's
 * digest.  0 with *m (owned by w), or -errno with why. */
static int painting_from_job(struct worker *w, const struct sf_job *j, const struct sf_model **m, char *why,
                             size_t whylen)
{
    char hex[33], path[128];
    uint8_t *d = NULL, h[16];
    size_t n = 0;
    struct sf_model *mm = NULL;
    int rc = 0;

    pthread_mutex_lock(&w->plock);
    for (int i = 0; i < w->npaintings; i++)
        if (!memcmp(w->paintings[i]->digest, j->digest, 16)) {
            *m = w->paintings[i];
            goto out_unlock;
        }
    if (w->npaintings == MAX_PAINTINGS) {
        snprintf(why, whylen, "already %d paintings from jobs loaded", MAX_PAINTINGS);
        rc = -ENOSPC;
        goto out_unlock;
    }
    if ((rc = sf_remote_get_blob(w->remote, "paint:", j->content, &d, &n))) {
        snprintf(why, whylen, "the painting's bytes: %s", rc == -ENOENT ? "expired" : strerror(-rc));
        goto out_unlock;
    }
    sf_hash_bytes(d, n, h);
    hex16(j->content, hex);
    if (memcmp(h, j->content, 16)) {
        snprintf(why, whylen, "the painting's bytes are not the ones the job names");
        rc = -EINVAL;
        goto out_unlock;
    }
    snprintf(path, sizeof path, "%s/%s", w->tmpdir, hex);
    if ((rc = sf_write_file_atomic(path, d, n))) {
        snprintf(why, whylen, "cannot keep the painting in %s: %s", w->tmpdir, strerror(-rc));
        goto out_unlock;
    }
    if ((rc = sf_model_load_image(path, j->style, w->sp, w->cs.arbitrary, &mm, why, whylen)))
        goto out_unlock;
    if (memcmp(mm->digest, j->digest, 16)) {
        snprintf(why, whylen, "the painting %s from the job's bytes is not the mount's (their digests differ)",
                 j->style);
        sf_model_free(mm);
        rc = -EINVAL;
        goto out_unlock;
    }
    w->paintings[w->npaintings++] = mm;
    *m = mm;
    sf_info("painting %s (%s) loaded from a job's bytes", j->style, hex);
out_unlock:
    pthread_mutex_unlock(&w->plock);
    free(d);
    return rc;
}

struct job_thread {
    struct worker *w;
    struct sf_pipeline pipe;
    struct sf_remote_consumer *q;
    pthread_t th;
    int started;
};

/* One job, start to end.  Nothing returned: every outcome is logged,
 * counted and acknowledged, except a store failure, which leaves the job
 * pending for the heartbeat to queue again. */
static void run_job(struct job_thread *t, const struct sf_job *j)
{
    struct worker *w = t->w;
    const struct sf_model *m = NULL;
    char hk[33], token[SF_REMOTE_TOKEN_LEN], why[512] = "";
    uint8_t *src = NULL, *out = NULL, h[16], key[16];
    size_t len = 0, outlen = 0;
    double t0 = sf_monotonic();
    int rc, ow = 0, oh = 0;

    hex16(j->key, hk);
    rc = sf_remote_job_lease(w->remote, j, token);
    if (rc == -EEXIST || rc == -EBUSY) {
        sf_info("job %s (%s from %s): %s", hk, j->style, j->from,
                rc == -EEXIST ? "done already" : "another holder computes it");
        atomic_fetch_add(&w->skipped, 1);
        sf_remote_job_done(w->remote, j, rc == -EEXIST);
        return;
    }
    if (rc) {
        sf_warn("job %s: cannot take its lease (%s); left for later", hk, strerror(-rc));
        return;
    }
    if ((rc = sf_remote_job_source(w->remote, j, &src, &len))) {
        snprintf(why, sizeof why, "its source %s", rc == -ENOENT ? "expired" : strerror(-rc));
        goto out_refuse;
    }
    if (sf_style_set_get(w->styles, j->style, strlen(j->style), &m, why, sizeof why) ||
        memcmp(m->digest, j->digest, 16)) {
        if (!m || !memcmp(m->digest, j->digest, 16))
            ;                   /* not here: why says so */
        else
            snprintf(why, sizeof why, "this worker's style %s is not the mount's (their digests differ)", j->style);
        if (!j->has_content || painting_from_job(w, j, &m, why, sizeof why))
            goto out_refuse;
    }
    if (j->fmt == 0 || !sf_format_writable((enum sf_format)j->fmt) || j->quality < 1 || j->quality > 100 ||
        j->max_side < 0) {
        snprintf(why, sizeof why, "settings out of range");
        goto out_refuse;
    }
    t->pipe.set.max_side = j->max_side;
    t->pipe.set.quality = j->quality;
    t->pipe.set.strip_meta = j->strip_meta != 0;
    sf_hash_bytes(src, len, h);
    sf_key_make(h, m->digest, j->fmt, &t->pipe.set, key);
    if (memcmp(key, j->key, 16)) {
        snprintf(why, sizeof why, "its key is not the one its source and settings make");
        goto out_refuse;
    }
    sf_info("job %s (%s from %s): computing", hk, j->style, j->from);
    rc = sf_stylize(&t->pipe, m, src, len, (enum sf_format)j->fmt, &out, &outlen, &ow, &oh, why, sizeof why);
    if (rc == -ECANCELED) {
        sf_remote_release(w->remote, j->key, token, 0);     /* queued again after a lease */
        goto out_free;
    }
    if (rc)
        goto out_refuse;
    if ((rc = sf_remote_put(w->remote, j->key, out, outlen, (uint32_t)ow, (uint32_t)oh, j->fmt))) {
        sf_warn("job %s: cannot store the result (%s); left for later", hk, strerror(-rc));
        sf_remote_release(w->remote, j->key, token, 0);
        goto out_free;
    }
    sf_remote_release(w->remote, j->key, token, 1);
    sf_remote_job_done(w->remote, j, 1);
    atomic_fetch_add(&w->computed, 1);
    sf_info("job %s (%s from %s): %dx%d %s computed in %.0f ms", hk, j->style, j->from, ow, oh,
            sf_format_name((enum sf_format)j->fmt), (sf_monotonic() - t0) * 1e3);
    goto out_free;
out_refuse:
    sf_warn("job %s (%s from %s): refused: %s", hk, j->style, j->from, why);
    atomic_fetch_add(&w->refused, 1);
    sf_remote_job_refuse(w->remote, j, token, why);
    sf_remote_job_done(w->remote, j, 1);
out_free:
    free(src);
    free(out);
}

static void *job_main(void *arg)
{
    struct job_thread *t = arg;
    struct sf_job j;

    while (!atomic_load(&g_stop)) {
        int rc = sf_remote_job_next(t->q, &j);
        if (rc == -ECANCELED)
            break;
        if (rc) {               /* Redis down or failing: try again in a second */
            for (int i = 0; i < 10 && !atomic_load(&g_stop); i++)
                nanosleep(&(struct timespec){ 0, 100000000L }, NULL);
            continue;
        }
        run_job(t, &j);
    }
    return NULL;
}

static void *beat_main(void *arg)
{
    struct worker *w = arg;

    while (!atomic_load(&g_stop)) {
        sf_remote_heartbeat(w->remote, w->id, w->info, 3 * SF_HEARTBEAT_MS);
        for (int i = 0; i < SF_HEARTBEAT_MS / 100 && !atomic_load(&g_stop); i++)
            nanosleep(&(struct timespec){ 0, 100000000L }, NULL);
    }
    return NULL;
}

static const char worker_help[] =
    "usage: stylefs worker --redis URL [options]\n"
    "Compute what mounts with compute=auto or compute=remote hand over through\n"
    "Redis (the same redis=, prefix and secret as theirs), until SIGINT or SIGTERM.\n"
    "  --redis URL         the shared store: unix:PATH or tcp://HOST[:PORT]\n"
    "  --redis-auth FILE   its password, the first line of FILE\n"
    "  --redis-key FILE    sign results with the secret in FILE (as the mounts' redis_key)\n"
    "  --redis-prefix P    --redis-ttl AGE   --redis-lease SECS   --redis-timeout MS\n"
    "                      as the mounts' redis_prefix, redis_ttl, redis_lease, redis_timeout\n"
    "  --styles DIR        more styles folders (DIR[:DIR...]), after the defaults\n"
    "  --arbitrary DIR     the arbitrary-style networks (default: found on the styles path)\n"
    "  --jobs N            computations at once, each with its own engine (1)\n"
    "  --device DEV        auto, cpu or cuda (auto)\n"
    "  --max-pixels N      refuse sources over N pixels (50000000)\n"
    "  --id NAME           the name in its heartbeat (host:pid)\n"
    "  -v, --verbose       log each job\n"
    "Exit status: 0 stopped by a signal, 1 cannot start, 2 usage.\n";

int cmd_worker(int argc, char **argv)
{
    enum { O_JOBS = SF_OPT_NEXT, O_REDIS, O_RAUTH, O_RPREFIX, O_RTTL, O_RLEASE, O_RTIMEOUT, O_RKEY, O_ID };
    static const struct option opts[] = {
        SF_CLI_SETTINGS_OPTIONS,
        { "jobs", required_argument, 0, O_JOBS },        { "redis", required_argument, 0, O_REDIS },
        { "redis-auth", required_argument, 0, O_RAUTH }, { "redis-key", required_argument, 0, O_RKEY },
        { "redis-prefix", required_argument, 0, O_RPREFIX }, { "redis-ttl", required_argument, 0, O_RTTL },
        { "redis-lease", required_argument, 0, O_RLEASE }, { "redis-timeout", required_argument, 0, O_RTIMEOUT },
        { "id", required_argument, 0, O_ID },
        { "verbose", no_argument, 0, 'v' },              { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 },
    };
    const char *redis = NULL, *rauth = NULL, *rprefix = NULL, *rttl = NULL, *rlease = NULL, *rtimeout = NULL,
               *rkey = NULL, *id = NULL;
    struct sf_remote_opts ro;
    struct sf_styles_path *sp = NULL;
    struct worker *w = NULL;
    struct job_thread *jt = NULL;
    pthread_t beat;
    sigset_t sigs;
    uint64_t jobs = 1;
    char why[900];
    int c, sig, status = SF_EXIT_FAIL, beat_started = 0;

    /* SIGINT and SIGTERM are taken by sigwait below, in this thread alone:
     * blocked before any thread starts (the styles' and engines' threads
     * inherit the mask) */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    if (!(w = calloc(1, sizeof *w)))
        return SF_EXIT_FAIL;
    sf_cli_settings_init(&w->cs);
    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case O_JOBS:
            if (sf_cli_parse_num("worker", "--jobs", optarg, 1, 64, &jobs)) {
                status = SF_EXIT_USAGE;
                goto out_free;
            }
            break;
        case O_REDIS: redis = optarg; break;
        case O_RAUTH: rauth = optarg; break;
        case O_RKEY: rkey = optarg; break;
        case O_RPREFIX: rprefix = optarg; break;
        case O_RTTL: rttl = optarg; break;
        case O_RLEASE: rlease = optarg; break;
        case O_RTIMEOUT: rtimeout = optarg; break;
        case O_ID: id = optarg; break;
        case 'v': sf_log_set_level(SF_LOG_INFO); break;
        case 'h': fputs(worker_help, stdout); status = SF_EXIT_OK; goto out_free;
        case '?': status = sf_cli_usage("worker", "bad option", NULL); goto out_free;
        default:
            if (sf_cli_setting(&w->cs, "worker", c, optarg)) {
                status = SF_EXIT_USAGE;
                goto out_free;
            }
        }
    }
    if (optind != argc) {
        status = sf_cli_usage("worker", "unexpected argument", argv[optind]);
        goto out_free;
    }
    if (!redis) {
        status = sf_cli_usage("worker", "--redis URL is required (the queue is there)", NULL);
        goto out_free;
    }
    if (sf_cli_remote_opts(redis, rauth, rkey, rprefix, rttl, rlease, rtimeout, &ro)) {
        status = SF_EXIT_USAGE;
        goto out_free;
    }
    if (!(sp = malloc(sizeof *sp)) || sf_styles_path(w->cs.styles, sp, why, sizeof why)) {
        fprintf(stderr, "stylefs: worker: %s\n", sp ? why : "out of memory");
        goto out_free;
    }
    if (sf_style_set_open(sp, w->cs.arbitrary, "worker: ", &w->styles))
        goto out_free;
    w->sp = sp;
    if (sf_remote_open(&ro, &w->remote, why, sizeof why)) {
        fprintf(stderr, "stylefs: worker: %s\n", why);
        goto out_styles;
    }
    pthread_mutex_init(&w->plock, NULL);
    {
        const char *t = getenv("TMPDIR");
        snprintf(w->tmpdir, sizeof w->tmpdir, "%s/stylefs-worker.XXXXXX", t && *t && strlen(t) < 32 ? t : "/tmp");
        if (!mkdtemp(w->tmpdir)) {
            fprintf(stderr, "stylefs: worker: cannot make a folder for paintings (%s): %s\n", w->tmpdir,
                    strerror(errno));
            w->tmpdir[0] = 0;
            goto out_remote;
        }
    }
    snprintf(w->id, sizeof w->id, "%s", id ? id : sf_remote_holder(w->remote));
    snprintf(w->info, sizeof w->info, "%s device=%s jobs=%llu styles=%zu", w->id,
             w->cs.device == SF_DEVICE_CPU ? "cpu" : w->cs.device == SF_DEVICE_CUDA ? "cuda" : "auto",
             (unsigned long long)jobs, sf_style_set_count(w->styles));
    if (!(jt = calloc(jobs, sizeof *jt)))
        goto out_remote;
    for (uint64_t i = 0; i < jobs; i++) {
        char cname[260];
        jt[i].w = w;
        sf_pipeline_init(&jt[i].pipe, w->cs.device, &w->cs.set, NULL);
        jt[i].pipe.remote = w->remote;
        jt[i].pipe.cancel = &g_stop;
        snprintf(cname, sizeof cname, "%s/%llu", w->id, (unsigned long long)i);
        if (sf_remote_consumer_open(w->remote, cname, &jt[i].q) ||
            pthread_create(&jt[i].th, NULL, job_main, &jt[i])) {
            fprintf(stderr, "stylefs: worker: cannot start job thread %llu\n", (unsigned long long)i);
            atomic_store(&g_stop, 1);
            goto out_threads;
        }
        jt[i].started = 1;
    }
    if (pthread_create(&beat, NULL, beat_main, w)) {
        fprintf(stderr, "stylefs: worker: cannot start the heartbeat\n");
        atomic_store(&g_stop, 1);
        goto out_threads;
    }
    beat_started = 1;
    sf_notice("worker %s: waiting for jobs on redis %s (%llu at once, %zu styles, heartbeat every %d s)", w->id,
              sf_remote_url(w->remote), (unsigned long long)jobs, sf_style_set_count(w->styles),
              SF_HEARTBEAT_MS / 1000);
    sigwait(&sigs, &sig);
    atomic_store(&g_stop, 1);
    status = SF_EXIT_OK;
out_threads:
    for (uint64_t i = 0; i < jobs; i++)
        if (jt[i].q)
            sf_remote_consumer_interrupt(jt[i].q);
    for (uint64_t i = 0; i < jobs; i++) {
        if (jt[i].started)
            pthread_join(jt[i].th, NULL);
        sf_remote_consumer_close(jt[i].q);
        sf_pipeline_close(&jt[i].pipe);
    }
    if (beat_started)
        pthread_join(beat, NULL);
    sf_notice("worker %s: stopped: %llu computed, %llu done elsewhere, %llu refused", w->id,
              (unsigned long long)w->computed, (unsigned long long)w->skipped, (unsigned long long)w->refused);
    free(jt);
out_remote:
    sf_remote_close(w->remote);
    for (int i = 0; i < w->npaintings; i++)
        sf_model_free(w->paintings[i]);
    if (w->tmpdir[0]) {
        DIR *dd = opendir(w->tmpdir);
        struct dirent *de;
        while (dd && (de = readdir(dd)))
            if (de->d_name[0] != '.')
                unlinkat(dirfd(dd), de->d_name, 0);
        if (dd)
            closedir(dd);
        rmdir(w->tmpdir);
    }
    pthread_mutex_destroy(&w->plock);
out_styles:
    sf_style_set_free(w->styles);
out_free:
    free(sp);
    free(w);
    return status;
}
