/* fs.c: the FUSE filesystem: SOURCE mirrored under /styled/<style>/, each
 * image stylized when it is first opened, then served from the cache.  The
 * mount command (cli_mount.c) parses the options and calls sf_fs_main
 * (fs.h); producing the bytes and the naming rules are the pipeline's
 * (pipeline.h), shared with warm and stylize.
 *
 * Tree:
 *   /                 holds styled/ (and the hidden .stats file)
 *   /styled/          one directory per style
 *   /styled/S/REL     a directory of SOURCE, or an image file of SOURCE
 *                     (jpg jpeg png bmp tga webp tif tiff heic heif avif
 *                     gif psd ppm pgm pnm, any case).
 *                     A format stylefs cannot write (gif psd ppm pgm pnm)
 *                     shows as NAME.png and is served as PNG
 *                     (sf_served_name, sf_source_names).
 *   /.errors          the last 100 failed reads, oldest first, one a line:
 *                     time (UTC), path in the mount, style, reason, by tabs
 *   /.stats           counters: hits, misses, computes, joins, errors (of
 *                     styled images), vectors (paintings' style vectors
 *                     predicted); with
 *                     redis=, remote_hits, remote_misses, remote_stores,
 *                     remote_damaged, remote_errors, remote_waits,
 *                     remote_outages
 *
 * DESIGN: all mount state lives in struct sf_fs, passed as FUSE userdata.
 * Settings, the source fd and the shared store (remote.h, its own locks)
 * are set before the mount and read-only after.  The styles are a live set
 * (style.h sf_style_set, its own lock): loaded before the mount, changed
 * only by the styles watcher (below); each request holds a reference on
 * the style it uses for the length of the call (node_put).  The cache, the pipeline and the engine are opened in
 * init() (after FUSE daemonizes).  Requests run on libfuse's worker threads;
 * a stylization blocks only its own reader.  With cache_max, one more
 * thread, the trimmer (trim_main), keeps the cache under it: a store that
 * takes the running estimate over the limit wakes it, and it counts and
 * prunes the cache off the readers' path; otherwise it sleeps on a
 * condition variable, with no timer.
 *
 * Directories: opendir opens the source directory and keeps it until
 * releasedir; readdir hands out its telldir cookies as offsets and, for
 * readdirplus, each entry's attributes (the same as getattr's).
 *
 * Links: symlinks within SOURCE are followed.  A symlink to a directory
 * that is one of its own ancestors (by real path) gives ELOOP, so the tree
 * stays finite; a loop of links gives the kernel's ELOOP.  Links that leave
 * SOURCE are followed on a private mount (only its owner sees it, who can
 * read those files anyway) and never served when the mount is confined:
 * with allow_other, or with -o confine.  Then every source path is opened
 * with openat2(RESOLVE_BENEATH); an absolute link is accepted only when its
 * real path lies inside SOURCE, and that path is then opened with
 * openat2(RESOLVE_NO_SYMLINKS), so that a link swapped in anywhere on it
 * fails.  Such links are left out of listings and give EACCES.  A confined
 * mount needs openat2 (Linux 5.6): without it (O_NOFOLLOW checks only the
 * last component of a path) the mount is refused.
 *
 * Sizes: getattr never stylizes.  When a stylized copy is in the cache,
 * found through a stat-keyed alias (cache.h), getattr reports its exact
 * size; otherwise the source's size stands in.  open() stylizes (or reads
 * the cache) and holds the finished bytes, so after open() returns fstat
 * gives the exact size: the kernel caches attributes for a second, and
 * open() invalidates them when the estimate was wrong.  No direct_io: the page cache
 * and mmap work as on any file, and the size never changes under a reader.
 *
 * One size per file while it is open: the kernel keeps one size per path
 * (per inode) and cuts page-cache reads at it.  So while a styled file is
 * open anywhere, every open of that path shares the same bytes and every
 * getattr reports their length, even if the source changed meanwhile;
 * the next open after the last close sees the change.  Otherwise a stat
 * of a replaced source (or an uncached file's estimate) would cut another
 * reader's image short.
 *
 * Threads: libfuse's workers; the trimmer (with cache_max); the styles
 * watcher (live styles, below), which sleeps in poll() until a styles
 * folder changes or the mount ends.
 *
 * Locks (never nested, and never held across a call into the pipeline,
 * whose flights_lock keeps one computation per cache key, pipeline.h):
 *   fail_lock  the table of remembered failures.
 *   errors_lock  the ring of recent failed reads (/.errors).
 *   open_lock  the table of open styled files (path -> bytes); open_cond
 *              waits on it for the first opener's size announcement.
 *   trim_lock  the trimmer's wake-up (cache_max).
 * Counters are atomics. */
#include "fs.h"
#include "arbitrary.h"
#include "log.h"
#include "pipeline.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xxhash.h>

#define FAIL_SLOTS 512
#define FAIL_TTL 600            /* seconds a failure is remembered */

/* Refcounted finished image bytes, shared by open files and waiters. */
struct blob {
    atomic_int refs;
    size_t len;
    uint8_t data[];
};

/* A styled file open somewhere: its path in the mount and the bytes every
 * open of that path shares. */
struct openf {
    struct openf *next;
    struct blob *b;             /* the table's own reference */
    unsigned opens;
    int announced;              /* the first opener has told the kernel the size */
    char path[];
};
#define OPEN_BUCKETS 256

struct fail {
    uint8_t id[16];             /* stat identity + style + settings */
    uint64_t when;
    int rc;
    char why[200];              /* the reason, for .errors */
};

/* The last ERRORS_KEPT failed reads, for /.errors. */
#define ERRORS_KEPT 100
struct read_error {
    time_t when;
    char path[1024];            /* in the mount, cut at 1023 bytes */
    char style[SF_STYLE_NAME_MAX];
    char why[300];
};

struct sf_fs {
    /* set before the mount, read-only after */
    char source[PATH_MAX];
    int source_fd;              /* O_PATH|O_DIRECTORY fd of SOURCE */
    char cache_dir[PATH_MAX];
    struct sf_settings set;
    enum sf_device device;
    int confine;                /* serve nothing outside SOURCE (allow_other, confine) */
    unsigned gpu_idle;          /* seconds before an idle engine is released */
    uint64_t mem_max;           /* the memory budget (mem_max=); 0: the pipeline's default */
    int compute;                /* compute=, offload_max=, offload_timeout= (fs.h) */
    uint64_t offload_max;
    unsigned offload_timeout;
    uint64_t cache_max;         /* 0 = no limit */
    atomic_ullong cache_est;    /* cache bytes as trim_cache last counted, plus adds */
    struct sf_style_set *styles; /* the styles served (its own lock; style.h): changed only by the watcher */
    struct sf_remote *remote;   /* the shared store (opened before the mount: a bad option fails it), or NULL */
    /* opened in init() */
    struct sf_cache *cache;     /* NULL if it could not be opened */
    struct sf_pipeline pipe;
    pthread_mutex_t fail_lock;  /* protects fails */
    struct fail fails[FAIL_SLOTS];
    pthread_mutex_t trim_lock;  /* protects trim_wanted, trim_stop */
    pthread_cond_t trim_wake;   /* the trimmer: work wanted, or stop */
    int trim_wanted, trim_stop, trim_started;
    pthread_t trim_thread;      /* with cache_max: keeps the cache under it, off the readers' path */
    pthread_mutex_t open_lock;  /* protects open_files and every openf */
    pthread_cond_t open_cond;   /* an openf was announced */
    struct openf *open_files[OPEN_BUCKETS];
    atomic_ullong errors;       /* reads that failed (hits, misses, computes, joins: pipe's) */
    pthread_mutex_t errors_lock;    /* protects recent, nrecent */
    struct read_error recent[ERRORS_KEPT];  /* a ring: the newest at (nrecent - 1) % ERRORS_KEPT */
    uint64_t nrecent;
    /* the styles watcher (live styles): inotify on every styles folder */
    struct fuse *fuse;          /* for invalidating changed styles' entries */
    int watch_fd;               /* the inotify fd, or -1: styles are fixed at mount */
    int watch_stop[2];          /* a pipe: a byte written stops the watcher */
    pthread_t watch_thread;
    int watch_started;
};

/* Set by SIGTERM, SIGINT and SIGHUP: running stylizations stop at the next
 * layer so that the daemon exits promptly (nothing half-done is stored). */
static sf_cancel_flag g_stop;
static struct fuse_session *g_se;

static void on_stop_signal(int sig)
{
    atomic_store(&g_stop, 1);
    if (g_se)
        fuse_session_exit(g_se);
}

static struct sf_fs *FS(void)
{
    return fuse_get_context()->private_data;
}

/* ---- the source tree ----------------------------------------------------- */

/* Whether real path p is SOURCE or inside it. */
static int inside_source(const struct sf_fs *fs, const char *p)
{
    size_t n = strlen(fs->source);
    return !strncmp(p, fs->source, n) && (p[n] == '/' || !p[n] || n == 1);
}

static int openat2_fd(int dirfd, const char *path, int flags, uint64_t resolve)
{
    struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC), .resolve = resolve };
    static int absent = -1;     /* STYLEFS_NO_OPENAT2=1: act as a kernel without it (tests) */

    if (absent < 0)
        absent = getenv("STYLEFS_NO_OPENAT2") && *getenv("STYLEFS_NO_OPENAT2") == '1';
    if (absent) {
        errno = ENOSYS;
        return -1;
    }
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/* Open rel (relative to SOURCE) with flags, following the link policy
 * (see Links above).  Returns an fd, or -errno: -EACCES for a path that
 * leaves a confined SOURCE. */
static int src_open(const struct sf_fs *fs, const char *rel, int flags)
{
    char full[PATH_MAX], real[PATH_MAX];
    int fd;

    if (!fs->confine) {
        fd = openat(fs->source_fd, rel, flags | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
    }
    fd = openat2_fd(fs->source_fd, rel, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
    if (fd >= 0 || (errno != EXDEV && errno != ENOSYS))
        return fd >= 0 ? fd : -errno;
    /* An absolute link: take its real path, accept it only inside SOURCE,
     * and open that path with no link in it, so a link swapped in
     * meanwhile fails instead of leading out.  (A confined mount is refused
     * on kernels without openat2, see Links above.) */
    if (snprintf(full, sizeof full, "%s/%s", fs->source, rel) >= (int)sizeof full)
        return -ENAMETOOLONG;
    if (!realpath(full, real))
        return -errno;
    if (!inside_source(fs, real))
        return -EACCES;
    fd = openat2_fd(AT_FDCWD, real, flags, RESOLVE_NO_SYMLINKS);
    return fd < 0 ? -errno : fd;
}

/* stat() of rel under the link policy.  0 or -errno. */
static int src_stat(const struct sf_fs *fs, const char *rel, struct stat *st)
{
    int fd, rc;

    if (!fs->confine)
        return fstatat(fs->source_fd, rel, st, 0) ? -errno : 0;
    if ((fd = src_open(fs, rel, O_PATH)) < 0)
        return fd;
    rc = fstat(fd, st) ? -errno : 0;
    close(fd);
    return rc;
}

/* Whether directory rel, reached through a link, is one of its own
 * ancestors: then following it would make the tree endless.  One
 * openat2 when no link is on the path (the usual case: this runs on
 * every directory's getattr); the real-path walk only when one is. */
static int dir_loops(const struct sf_fs *fs, const char *rel)
{
    char full[PATH_MAX], real[PATH_MAX], anc[PATH_MAX];
    size_t n;
    int fd = openat2_fd(fs->source_fd, rel, O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);

    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (snprintf(full, sizeof full, "%s/%s", fs->source, rel) >= (int)sizeof full || !realpath(full, real))
        return 0;
    if (!strcmp(full, real))
        return 0;
    for (n = strlen(full); n > strlen(fs->source); n--) {
        if (full[n] != '/')
            continue;
        full[n] = '\0';
        if (realpath(full, anc) && !strcmp(anc, real))
            return 1;
    }
    return !strcmp(fs->source, real);
}

/* ---- blobs and names ------------------------------------------------------ */

static struct blob *blob_new(const uint8_t *data, size_t len)
{
    struct blob *b = malloc(sizeof *b + len);
    if (!b)
        return NULL;
    atomic_init(&b->refs, 1);
    b->len = len;
    memcpy(b->data, data, len);
    return b;
}

static void blob_put(struct blob *b)
{
    if (b && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

/* ---- open styled files ------------------------------------------------------ */

/* The bucket of path in the open table. */
static struct openf **open_slot(struct sf_fs *fs, const char *path)
{
    return &fs->open_files[XXH3_64bits(path, strlen(path)) % OPEN_BUCKETS];
}

/* The open entry for path, or NULL.  Called with open_lock held. */
static struct openf *open_find(struct sf_fs *fs, const char *path)
{
    struct openf *e = *open_slot(fs, path);
    while (e && strcmp(e->path, path))
        e = e->next;
    return e;
}

/* Register one more open of path with bytes *b (the caller's reference).
 * If the path is already open, the caller's reference is traded for one
 * to the bytes already served (one size per file), and the call waits
 * until the first opener has told the kernel their size (open_announce);
 * else *first is set, and the caller must announce.  Returns 0 or -ENOMEM
 * (then *b is untouched and still the caller's). */
static int open_add(struct sf_fs *fs, const char *path, struct blob **b, int *first)
{
    struct openf *e;
    size_t len = strlen(path);
    int rc = 0;

    *first = 0;
    pthread_mutex_lock(&fs->open_lock);
    if ((e = open_find(fs, path))) {
        blob_put(*b);
        *b = e->b;
        atomic_fetch_add(&e->b->refs, 1);
        e->opens++;
        while (!e->announced)       /* e stays: this open holds it */
            pthread_cond_wait(&fs->open_cond, &fs->open_lock);
    } else if ((e = malloc(sizeof *e + len + 1))) {
        memcpy(e->path, path, len + 1);
        e->b = *b;
        atomic_fetch_add(&e->b->refs, 1);
        e->opens = 1;
        e->announced = 0;
        e->next = *open_slot(fs, path);
        *open_slot(fs, path) = e;
        *first = 1;
    } else {
        rc = -ENOMEM;
    }
    pthread_mutex_unlock(&fs->open_lock);
    return rc;
}

/* The first opener of path has told the kernel the size: let the others
 * of the same bytes return from open. */
static void open_announce(struct sf_fs *fs, const char *path)
{
    struct openf *e;

    pthread_mutex_lock(&fs->open_lock);
    if ((e = open_find(fs, path)))
        e->announced = 1;
    pthread_cond_broadcast(&fs->open_cond);
    pthread_mutex_unlock(&fs->open_lock);
}

/* The shared bytes of path if it is open (a new reference), else NULL. */
static struct blob *open_get(struct sf_fs *fs, const char *path)
{
    struct openf *e;
    struct blob *b = NULL;

    pthread_mutex_lock(&fs->open_lock);
    if ((e = open_find(fs, path))) {
        b = e->b;
        atomic_fetch_add(&b->refs, 1);
    }
    pthread_mutex_unlock(&fs->open_lock);
    return b;
}

/* One open of path with bytes b is closed. */
static void open_drop(struct sf_fs *fs, const char *path, struct blob *b)
{
    struct openf **pp, *e;

    pthread_mutex_lock(&fs->open_lock);
    for (pp = open_slot(fs, path); (e = *pp); pp = &e->next)
        if (e->b == b && !strcmp(e->path, path)) {
            if (--e->opens == 0) {
                *pp = e->next;
                blob_put(e->b);
                free(e);
            }
            break;
        }
    pthread_mutex_unlock(&fs->open_lock);
}

/* What a path under the mount is. */
struct node {
    enum { N_ROOT, N_STYLED, N_STATS, N_ERRORS, N_STYLE, N_DIR, N_FILE } kind;
    const struct sf_model *model;
    char rel[PATH_MAX];         /* relative to SOURCE ("." for its top) */
    enum sf_format fmt;         /* output format (N_FILE) */
};

/* The style of a styled/ directory name, with a reference the caller
 * drops (node_put): a loaded style, or a variant "NAME@P+colors"
 * (reachable, never listed).  A malformed suffix is no style, and one log
 * line says why.  0 or -ENOENT, -ENOMEM. */
static int find_model(struct sf_fs *fs, const char *name, size_t len, const struct sf_model **out)
{
    char why[300];
    int rc = sf_style_set_get(fs->styles, name, len, out, why, sizeof why);

    if (rc == -ENOENT && (memchr(name, '@', len) || memchr(name, '+', len)) && !strstr(why, "no such style"))
        sf_warn("/styled/%.*s: no such folder: %s", (int)len, name, why);
    return rc;
}

/* Drop the reference resolve took on n's style. */
static void node_put(struct node *n)
{
    sf_model_free(n->model);
    n->model = NULL;
}

/* Resolve path; stat the source into *st for N_DIR/N_FILE.  On success a
 * styled path's node holds a reference on its style, dropped by node_put
 * (on failure none is held).  0 or -errno. */
static int resolve_node(struct sf_fs *fs, const char *path, struct node *n, struct stat *st);
static int resolve(struct sf_fs *fs, const char *path, struct node *n, struct stat *st)
{
    int rc = resolve_node(fs, path, n, st);

    if (rc)
        node_put(n);
    return rc;
}

static int resolve_node(struct sf_fs *fs, const char *path, struct node *n, struct stat *st)
{
    const char *p, *slash;
    size_t len;
    int rc;

    memset(n, 0, sizeof *n);
    if (!strcmp(path, "/"))
        return n->kind = N_ROOT, 0;
    if (!strcmp(path, "/.stats"))
        return n->kind = N_STATS, 0;
    if (!strcmp(path, "/.errors"))
        return n->kind = N_ERRORS, 0;
    if (strncmp(path, "/styled", 7) || (path[7] && path[7] != '/'))
        return -ENOENT;
    if (!path[7] || !path[8])
        return n->kind = N_STYLED, 0;
    p = path + 8;
    slash = strchr(p, '/');
    len = slash ? (size_t)(slash - p) : strlen(p);
    if ((rc = find_model(fs, p, len, &n->model)))
        return rc;
    if (!slash || !slash[1]) {
        n->kind = N_STYLE;
        snprintf(n->rel, sizeof n->rel, ".");
        return fstatat(fs->source_fd, ".", st, 0) ? -errno : 0;
    }
    if (snprintf(n->rel, sizeof n->rel, "%s", slash + 1) >= (int)sizeof n->rel)
        return -ENAMETOOLONG;
    if ((rc = src_stat(fs, n->rel, st)) == 0 && S_ISDIR(st->st_mode))
        return dir_loops(fs, n->rel) ? -ELOOP : (n->kind = N_DIR, 0);
    if (rc && rc != -ENOENT)
        return rc;
    {
        /* the source a styled name comes from (pipeline.h's naming rules) */
        char cand[2][PATH_MAX];
        enum sf_format fmts[2];
        int nc = sf_source_names(n->rel, cand, fmts);
        for (int i = 0; i < nc; i++) {
            if (strcmp(cand[i], n->rel) && (rc = src_stat(fs, cand[i], st)))
                continue;           /* (the name itself was stat'ed above) */
            if (!rc && S_ISREG(st->st_mode)) {
                snprintf(n->rel, sizeof n->rel, "%s", cand[i]);
                n->kind = N_FILE;
                n->fmt = fmts[i];
                return 0;
            }
        }
        if (rc == -EACCES || rc == -ELOOP)
            return rc;
    }
    return -ENOENT;
}

/* The stat identity of a source under a style and the settings: the key
 * of the alias index and of the failure memo. */
static void stat_id(struct sf_fs *fs, const struct node *n, const struct stat *st, uint8_t id[16])
{
    sf_source_id(st, n->fmt, &fs->set, n->model, id);
}

/* ---- remembered failures ------------------------------------------------- */

/* A failure remembered for id: its code, and its reason in why. */
static int fail_lookup(struct sf_fs *fs, const uint8_t id[16], char *why, size_t whylen)
{
    uint64_t now = sf_now();
    int rc = 0;
    pthread_mutex_lock(&fs->fail_lock);
    for (int i = 0; i < FAIL_SLOTS; i++)
        if (fs->fails[i].when && !memcmp(fs->fails[i].id, id, 16) &&
            now < fs->fails[i].when + FAIL_TTL) {
            rc = fs->fails[i].rc;
            snprintf(why, whylen, "%s (failed at an earlier read: tried again %d min after it, or when the "
                     "source changes)", fs->fails[i].why, FAIL_TTL / 60);
        }
    pthread_mutex_unlock(&fs->fail_lock);
    return rc;
}

static void fail_remember(struct sf_fs *fs, const uint8_t id[16], int rc, const char *why)
{
    int slot = 0;
    pthread_mutex_lock(&fs->fail_lock);
    for (int i = 1; i < FAIL_SLOTS; i++)
        if (fs->fails[i].when < fs->fails[slot].when)
            slot = i;
    memcpy(fs->fails[slot].id, id, 16);
    fs->fails[slot].when = sf_now();
    fs->fails[slot].rc = rc;
    snprintf(fs->fails[slot].why, sizeof fs->fails[slot].why, "%.*s", (int)sizeof fs->fails[slot].why - 1, why);
    pthread_mutex_unlock(&fs->fail_lock);
}

/* ---- producing the bytes ------------------------------------------------- */

/* The default cache_max: a tenth of the cache's filesystem (0, no limit,
 * when statvfs fails, which is said). */
static uint64_t default_cache_max(const char *dir)
{
    struct statvfs sv;
    uint64_t max;
    char h[32];

    if (statvfs(dir, &sv)) {
        sf_warn("cache_max: cannot size %s (%s): the cache is not bounded", dir, strerror(errno));
        return 0;
    }
    max = (uint64_t)sv.f_blocks * sv.f_frsize / 10;
    sf_notice("cache_max: %s, a tenth of the filesystem that holds the cache (cache_max=SIZE to change, 0 for none)",
              sf_fmt_size(max, h, sizeof h));
    return max;
}

/* Keep the cache within cache_max: count the entries (a walk of the whole
 * cache) and prune the least recently read.  Runs on the trimmer thread,
 * never in a reader's open(). */
static void trim_cache(struct sf_fs *fs)
{
    struct sf_prune_opts po = { 0 };
    struct sf_prune_result r;
    struct sf_cache_stats st;

    if (sf_cache_stats(fs->cache, &st))
        return;
    atomic_store(&fs->cache_est, st.bytes);
    if (st.bytes <= fs->cache_max)
        return;
    po.max_size = fs->cache_max;
    if (sf_cache_prune(fs->cache, &po, &r) == 0) {
        atomic_store(&fs->cache_est, r.kept_bytes);
        if (r.removed)
            sf_info("cache_max: evicted %llu %s", (unsigned long long)r.removed, SF_PLURAL(r.removed, "entry", "entries"));
    }
}

/* The trimmer: sleeps on trim_wake (no timer) until a store takes the
 * running estimate over cache_max, then trims; at unmount it finishes a
 * trim still wanted, so the cache is within cache_max when the daemon
 * exits. */
static void *trim_main(void *arg)
{
    struct sf_fs *fs = arg;

    pthread_mutex_lock(&fs->trim_lock);
    for (;;) {
        while (!fs->trim_wanted && !fs->trim_stop)
            pthread_cond_wait(&fs->trim_wake, &fs->trim_lock);
        if (!fs->trim_wanted)
            break;
        fs->trim_wanted = 0;
        pthread_mutex_unlock(&fs->trim_lock);
        trim_cache(fs);
        pthread_mutex_lock(&fs->trim_lock);
    }
    pthread_mutex_unlock(&fs->trim_lock);
    return NULL;
}

/* After a miss that stored about `added` bytes: when the running estimate,
 * the last count plus what misses added since, goes over cache_max, wake
 * the trimmer (stores by other processes are seen at its next count). */
static void cache_max_note(struct sf_fs *fs, uint64_t added)
{
    if (!fs->cache || !fs->trim_started || atomic_fetch_add(&fs->cache_est, added) + added <= fs->cache_max)
        return;
    pthread_mutex_lock(&fs->trim_lock);
    fs->trim_wanted = 1;
    pthread_cond_signal(&fs->trim_wake);
    pthread_mutex_unlock(&fs->trim_lock);
}

/* The finished bytes of a styled file.  0, or -errno with the reason in
 * why (also logged). */
static int produce(struct sf_fs *fs, const struct node *n, struct blob **out, char *why, size_t whylen)
{
    uint8_t id[16], *src = NULL, *bytes = NULL;
    size_t len, blen = 0;
    struct stat st, after;
    int fd, rc, tries = 0;

    snprintf(why, whylen, "%s", "");
    if ((fd = src_open(fs, n->rel, O_RDONLY | O_NONBLOCK)) < 0) {   /* a FIFO must not hang the open */
        snprintf(why, whylen, "%.400s: %s", n->rel, strerror(-fd));
        return fd;
    }
again:
    if (fstat(fd, &st)) {
        rc = -errno;
        goto out_close;
    }
    stat_id(fs, n, &st, id);
    if ((rc = fail_lookup(fs, id, why, whylen)))
        goto out_close;
    rc = sf_read_fd(fd, SF_MAX_SOURCE_BYTES, &src, &len);
    if (rc) {
        if (rc == -EFBIG) {
            snprintf(why, whylen, "%.200s/%.200s: larger than %llu bytes", fs->source, n->rel,
                     (unsigned long long)SF_MAX_SOURCE_BYTES);
            sf_err("%s", why);
            rc = -EIO;
        } else {
            snprintf(why, whylen, "%.200s/%.200s: %s", fs->source, n->rel, strerror(-rc));
        }
        goto out_close;
    }
    /* A source written in place while it was read gives bytes that are
     * neither the old file nor the new: read again, up to three times.
     * (One replaced by rename is the old file, whole, through this fd.) */
    if (fstat(fd, &after) == 0 && (after.st_size != st.st_size ||
        after.st_mtim.tv_sec != st.st_mtim.tv_sec || after.st_mtim.tv_nsec != st.st_mtim.tv_nsec ||
        after.st_ctim.tv_sec != st.st_ctim.tv_sec || after.st_ctim.tv_nsec != st.st_ctim.tv_nsec)) {
        free(src);
        src = NULL;
        if (++tries < 3 && lseek(fd, 0, SEEK_SET) == 0)
            goto again;
        snprintf(why, whylen, "%.200s/%.200s: changed while being read; try again", fs->source, n->rel);
        sf_err("%s", why);
        rc = -EIO;
        goto out_close;
    }
    {
        struct sf_produce_req r = { .model = n->model, .fmt = n->fmt, .src = src, .len = len, .id = id,
                                    .what = n->rel };
        char pwhy[300];
        int how = 0;
        rc = sf_produce(&fs->pipe, &r, &bytes, &blen, &how, pwhy, sizeof pwhy);
        if (rc) {
            snprintf(why, whylen, "%.200s/%.200s: %.190s", fs->source, n->rel, pwhy[0] ? pwhy : strerror(-rc));
            if (how != SF_PRODUCED_JOINED)      /* logged once, by the computation */
                sf_err("%s", why);
        }
        if (rc == -EFBIG) {             /* over max_pixels, or alone over the memory budget */
            fail_remember(fs, id, -EFBIG, why);
        } else if (rc == -EINVAL) {
            fail_remember(fs, id, -EIO, why);
            rc = -EIO;
        } else if (rc == -ENODEV || rc == -ECANCELED || (rc && rc != -ENOMEM)) {
            rc = -EIO;
        }
        if (!rc && !(*out = blob_new(bytes, blen))) {
            snprintf(why, whylen, "out of memory");
            rc = -ENOMEM;
        }
        free(bytes);
        if (!rc && how != SF_PRODUCED_HIT && how != SF_PRODUCED_JOINED && fs->cache_max)
            cache_max_note(fs, (*out)->len + SF_CACHE_HDR_LEN);
    }
    if (rc)
        atomic_fetch_add(&fs->errors, 1);
    free(src);
out_close:
    close(fd);
    return rc;
}

/* A failed read of path in style, for /.errors. */
static void errors_add(struct sf_fs *fs, const char *path, const char *style, const char *why)
{
    struct read_error *e;

    pthread_mutex_lock(&fs->errors_lock);
    e = &fs->recent[fs->nrecent++ % ERRORS_KEPT];
    e->when = time(NULL);
    snprintf(e->path, sizeof e->path, "%.*s", (int)sizeof e->path - 1, path);
    snprintf(e->style, sizeof e->style, "%.*s", (int)sizeof e->style - 1, style);
    snprintf(e->why, sizeof e->why, "%.*s", (int)sizeof e->why - 1, why);
    for (char *c = e->why; *c; c++)     /* one line each, four tab-separated fields */
        if (*c == '\n' || *c == '\t')
            *c = ' ';
    pthread_mutex_unlock(&fs->errors_lock);
}

/* /.errors: the last ERRORS_KEPT failed reads, oldest first, one a line:
 * time (UTC, ISO 8601), path in the mount, style, reason, separated by
 * tabs.  *out is malloc'd.  0 or -ENOMEM. */
static int errors_text(struct sf_fs *fs, char **out, size_t *outlen)
{
    size_t cap = ERRORS_KEPT * (sizeof(struct read_error) + 32), n = 0;
    char *buf = malloc(cap);

    if (!buf)
        return -ENOMEM;
    pthread_mutex_lock(&fs->errors_lock);
    for (uint64_t i = fs->nrecent > ERRORS_KEPT ? fs->nrecent - ERRORS_KEPT : 0; i < fs->nrecent; i++) {
        const struct read_error *e = &fs->recent[i % ERRORS_KEPT];
        struct tm tm;
        char t[32];
        gmtime_r(&e->when, &tm);
        strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
        n += (size_t)snprintf(buf + n, cap - n, "%s\t%s\t%s\t%s\n", t, e->path, e->style, e->why);
    }
    pthread_mutex_unlock(&fs->errors_lock);
    *out = buf;
    *outlen = n;
    return 0;
}

static int stats_text(struct sf_fs *fs, char *buf, size_t len);

/* The text of /.stats or /.errors now: *out malloc'd (NULL on failure).
 * 0 or -ENOMEM. */
static int snapshot_text(struct sf_fs *fs, int kind, char **out, size_t *outlen)
{
    if (kind == N_ERRORS)
        return errors_text(fs, out, outlen);
    if (!(*out = malloc(1024)))
        return -ENOMEM;
    *outlen = (size_t)stats_text(fs, *out, 1024);
    return 0;
}

static int stats_text(struct sf_fs *fs, char *buf, size_t len)
{
    const struct sf_produce_counts *im = &fs->pipe.images;
    int n = snprintf(buf, len, "hits %llu\nmisses %llu\ncomputes %llu\njoins %llu\nerrors %llu\nvectors %llu\n",
                     (unsigned long long)im->hits, (unsigned long long)im->misses,
                     (unsigned long long)im->computes, (unsigned long long)im->joins,
                     (unsigned long long)fs->errors, (unsigned long long)fs->pipe.vectors.computes);
    if (n >= 0 && (size_t)n < len) {
        uint64_t r = atomic_load(&fs->pipe.last_resize);
        n += snprintf(buf + n, len - (size_t)n, "resized %llu\n", (unsigned long long)atomic_load(&fs->pipe.resized));
        if (r && n >= 0 && (size_t)n < len)
            n += snprintf(buf + n, len - (size_t)n, "last_resized %ux%u %ux%u\n", (unsigned)(r >> 48),
                          (unsigned)(r >> 32 & 0xffff), (unsigned)(r >> 16 & 0xffff), (unsigned)(r & 0xffff));
    }
    if (fs->remote && n >= 0 && (size_t)n < len) {
        const struct sf_remote_counters *rc = sf_remote_counters(fs->remote);
        n += snprintf(buf + n, len - (size_t)n,
                      "remote_hits %llu\nremote_misses %llu\nremote_stores %llu\nremote_damaged %llu\n"
                      "remote_errors %llu\nremote_waits %llu\nremote_outages %llu\n",
                      (unsigned long long)im->remote_hits, (unsigned long long)rc->misses,
                      (unsigned long long)rc->stores, (unsigned long long)rc->damaged,
                      (unsigned long long)rc->errors, (unsigned long long)rc->waits,
                      (unsigned long long)rc->outages);
    }
    if (fs->compute != SF_COMPUTE_LOCAL && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, "offloaded %llu\noffload_fallbacks %llu\noffload_wait_ms %llu\n",
                      (unsigned long long)atomic_load(&fs->pipe.offloaded),
                      (unsigned long long)atomic_load(&fs->pipe.offload_fallbacks),
                      (unsigned long long)atomic_load(&fs->pipe.offload_wait_ms));
    return n;
}

/* ---- live styles: the styles watcher -------------------------------------
 *
 * One thread blocks in poll() on an inotify fd that watches every styles
 * folder, and on a pipe that stops it: no timer, nothing runs while no
 * folder changes.  It reacts to a file closed after writing, renamed in or
 * out, or removed (never to a file being created or written: a half-written
 * painting is never loaded), and to a network's folder renamed in or out
 * or removed; it loads that style again (style.h sf_style_set_changed)
 * and drops the kernel's entries for it.  Keys name a painting's bytes,
 * so what was cached for its old bytes is never served for the new. */

#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE)

/* One entry `file` of a styles folder changed. */
static void style_changed(struct sf_fs *fs, const char *file)
{
    char name[SF_STYLE_NAME_MAX], msg[1200], path[SF_STYLE_NAME_MAX + 16];
    int rc = sf_style_set_changed(fs->styles, file, name, sizeof name, msg, sizeof msg);

    if (rc < 0)
        sf_err("styles: %s: %s", file, strerror(-rc));
    else if (msg[0])
        rc ? sf_notice("%s", msg) : sf_warn("%s", msg);
    if (rc > 0 && fs->fuse) {
        snprintf(path, sizeof path, "/styled/%s", name);
        fuse_invalidate_path(fs->fuse, path);
        fuse_invalidate_path(fs->fuse, "/styled");
    }
}

/* The events lost (the kernel's queue overflowed): look at every entry of
 * every folder and every style loaded again. */
static void styles_rescan(struct sf_fs *fs)
{
    const struct sf_styles_path *sp = sf_style_set_path(fs->styles);
    const struct sf_model *m;
    char name[SF_STYLE_NAME_MAX];

    sf_warn("styles: too many changes at once; looking at every styles folder again");
    for (size_t i = 0; sf_style_set_nth(fs->styles, i, &m) == 0; i++) {
        snprintf(name, sizeof name, "%s", m->name);
        sf_model_free(m);
        style_changed(fs, name);
    }
    for (int i = 0; i < sp->n; i++) {
        DIR *d = opendir(sp->dir[i]);
        struct dirent *de;
        while (d && (de = readdir(d)))
            style_changed(fs, de->d_name);
        if (d)
            closedir(d);
    }
}

static void *watch_main(void *arg)
{
    struct sf_fs *fs = arg;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    struct pollfd pfd[2] = { { .fd = fs->watch_fd, .events = POLLIN }, { .fd = fs->watch_stop[0], .events = POLLIN } };

    for (;;) {
        ssize_t len;
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            sf_err("styles watcher: %s; styles are now fixed until a remount", strerror(errno));
            break;
        }
        if (pfd[1].revents)
            break;
        if ((len = read(fs->watch_fd, buf, sizeof buf)) <= 0) {
            if (len < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            sf_err("styles watcher: %s; styles are now fixed until a remount", len ? strerror(errno) : "end of file");
            break;
        }
        for (char *p = buf; p < buf + len;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->mask & IN_Q_OVERFLOW)
                styles_rescan(fs);
            else if (ev->len && (ev->mask & WATCH_MASK))
                style_changed(fs, ev->name);
            p += sizeof *ev + ev->len;
        }
    }
    return NULL;
}

/* Watch every styles folder (in init(): threads do not survive the
 * daemon's fork).  Without inotify the styles stay as loaded, and the log
 * says so. */
static void watch_start(struct sf_fs *fs)
{
    const struct sf_styles_path *sp = sf_style_set_path(fs->styles);
    int e, watched = 0;

    if ((fs->watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0 || pipe2(fs->watch_stop, O_CLOEXEC)) {
        sf_warn("styles: cannot watch the styles folders (%s); new paintings need a remount", strerror(errno));
        goto out_close;
    }
    for (int i = 0; i < sp->n; i++) {
        if (inotify_add_watch(fs->watch_fd, sp->dir[i], WATCH_MASK | IN_ONLYDIR) >= 0)
            watched++;
        else
            sf_warn("styles: cannot watch %s (%s); changes there need a remount", sp->dir[i], strerror(errno));
    }
    if (!watched)
        goto out_close;
    if ((e = pthread_create(&fs->watch_thread, NULL, watch_main, fs))) {
        sf_warn("styles: cannot start the watcher (%s); new paintings need a remount", strerror(e));
        goto out_close;
    }
    pthread_setname_np(fs->watch_thread, "sf-styles");
    fs->watch_started = 1;
    return;
out_close:
    if (fs->watch_fd >= 0)
        close(fs->watch_fd);
    for (int i = 0; i < 2; i++)
        if (fs->watch_stop[i] >= 0)
            close(fs->watch_stop[i]);
    fs->watch_fd = fs->watch_stop[0] = fs->watch_stop[1] = -1;
}

static void watch_stop(struct sf_fs *fs)
{
    if (fs->watch_started) {
        if (write(fs->watch_stop[1], "", 1) != 1)
            sf_err("styles watcher: cannot stop it: %s", strerror(errno));
        else
            pthread_join(fs->watch_thread, NULL);
        fs->watch_started = 0;
    }
    if (fs->watch_fd >= 0) {
        close(fs->watch_fd);
        close(fs->watch_stop[0]);
        close(fs->watch_stop[1]);
        fs->watch_fd = -1;
    }
}

/* ---- FUSE callbacks: thin, 0 or -errno ------------------------------------ */

static void *sf_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
    struct sf_fs *fs = FS();
    char why[512];

    /* Attributes are cached for a second; open() invalidates them once the
     * exact size is known, so fstat after open is always exact. */
    cfg->attr_timeout = 1;
    cfg->entry_timeout = 1;
    cfg->negative_timeout = 0;
    cfg->use_ino = 0;
    cfg->nullpath_ok = 0;
    pthread_mutex_init(&fs->fail_lock, NULL);
    pthread_mutex_init(&fs->errors_lock, NULL);
    pthread_mutex_init(&fs->open_lock, NULL);
    pthread_cond_init(&fs->open_cond, NULL);
    if (sf_cache_open(fs->cache_dir, NULL, &fs->cache, why, sizeof why)) {
        sf_err("%s; serving without a cache", why);
        fs->cache = NULL;
    }
    pthread_mutex_init(&fs->trim_lock, NULL);
    pthread_cond_init(&fs->trim_wake, NULL);
    if (fs->cache_max == SF_CACHE_MAX_DEFAULT)
        fs->cache_max = fs->cache ? default_cache_max(fs->cache_dir) : 0;
    if (fs->cache && fs->cache_max) {
        int e = pthread_create(&fs->trim_thread, NULL, trim_main, fs);
        if (e)
            sf_err("cache_max: cannot start the trimmer (%s); the cache is not bounded", strerror(e));
        else
            pthread_setname_np(fs->trim_thread, "sf-cache-trim");
        fs->trim_started = !e;
    }
    sf_pipeline_init(&fs->pipe, fs->device, &fs->set, fs->cache);
    fs->pipe.remote = fs->remote;
    fs->pipe.idle_s = fs->gpu_idle;
    if (fs->mem_max)
        fs->pipe.mem_max = fs->mem_max;
    fs->pipe.compute = fs->compute;
    fs->pipe.offload_max = fs->offload_max ? fs->offload_max : SF_OFFLOAD_MAX_DEFAULT;
    fs->pipe.offload_timeout_s = fs->offload_timeout ? fs->offload_timeout : SF_OFFLOAD_TIMEOUT_DEFAULT;
    sf_style_set_idle(fs->styles, fs->gpu_idle);   /* the painting networks' plans: the same idle time */
    fs->pipe.cancel = &g_stop;
    fs->fuse = fuse_get_context()->fuse;
    watch_start(fs);
    sf_info("mounted %s: %zu %s, cache %s%s%s%s", fs->source, sf_style_set_count(fs->styles),
            SF_PLURAL(sf_style_set_count(fs->styles), "style", "styles"), fs->cache_dir,
            fs->confine ? ", confined to SOURCE" : "", fs->remote ? ", shared store redis " : "",
            fs->remote ? sf_remote_url(fs->remote) : "");
    return fs;
}

static void sf_destroy(void *data)
{
    struct sf_fs *fs = data;

    watch_stop(fs);
    if (fs->trim_started) {             /* finish a trim still wanted, then stop */
        pthread_mutex_lock(&fs->trim_lock);
        fs->trim_stop = 1;
        pthread_cond_signal(&fs->trim_wake);
        pthread_mutex_unlock(&fs->trim_lock);
        pthread_join(fs->trim_thread, NULL);
        fs->trim_started = 0;
    }
    sf_pipeline_close(&fs->pipe);
    sf_cache_close(fs->cache);
    fs->cache = NULL;
}

/* Modes: a styled file or directory has its source's read and search
 * bits and no write bit, with its source's owner, so that with
 * default_permissions (always on) the kernel lets read it exactly whom
 * the source lets read it: a private photo stays private under
 * allow_other. */
#define SF_FILE_MODE(src) (S_IFREG | ((src)->st_mode & 0444))
#define SF_DIR_MODE(src) (S_IFDIR | ((src)->st_mode & 0555))

static void fill_dir_stat(struct stat *st, const struct stat *src)
{
    memset(st, 0, sizeof *st);
    st->st_mode = src ? SF_DIR_MODE(src) : S_IFDIR | 0555;
    st->st_nlink = 2;
    if (src) {
        st->st_uid = src->st_uid;
        st->st_gid = src->st_gid;
        st->st_atim = src->st_atim;
        st->st_mtim = src->st_mtim;
        st->st_ctim = src->st_ctim;
    } else {
        st->st_uid = getuid();
        st->st_gid = getgid();
    }
}

/* Attributes of the styled file at mount path `path` from its source's
 * stat: while it is open, the length of the bytes it is read with; else
 * the exact size when the cache has it (through the alias); else the
 * source's size. */
static void file_stat(struct sf_fs *fs, const struct node *n, const struct stat *src,
                      const char *path, struct stat *st)
{
    uint8_t id[16], key[16];
    struct sf_entry_meta m;
    struct blob *b;

    *st = *src;
    st->st_mode = SF_FILE_MODE(src);
    st->st_nlink = 1;
    stat_id(fs, n, src, id);
    if ((b = open_get(fs, path))) {
        st->st_size = (off_t)b->len;
        blob_put(b);
    } else if (fs->cache && sf_cache_alias_get(fs->cache, id, key) == 0 &&
               sf_cache_peek(fs->cache, key, &m) == 0) {
        st->st_size = (off_t)m.data_len;        /* exact */
    }
    st->st_blocks = (st->st_size + 511) / 512;
}

/* The attributes of /.stats (size len): read-only, owned and readable like
 * the source folder, modified now (its counters change with every read). */
static void stats_stat(struct sf_fs *fs, struct stat *st, size_t len)
{
    struct stat root;
    struct timespec now;

    memset(st, 0, sizeof *st);
    st->st_mode = S_IFREG | 0444;
    if (!fstat(fs->source_fd, &root)) {
        st->st_uid = root.st_uid;
        st->st_gid = root.st_gid;
        st->st_mode = SF_FILE_MODE(&root);
    }
    clock_gettime(CLOCK_REALTIME, &now);
    st->st_atim = st->st_mtim = st->st_ctim = now;
    st->st_nlink = 1;
    st->st_size = (off_t)len;
    st->st_blocks = (blkcnt_t)((len + 511) / 512);
}

/* getattr's answer for the resolved node n (source stat *src). */
static void node_stat(struct sf_fs *fs, const struct node *n, struct stat *src, const char *path, struct stat *st)
{
    switch (n->kind) {
    case N_ROOT: case N_STYLED:
        fill_dir_stat(st, fstat(fs->source_fd, src) ? NULL : src);
        return;
    case N_STYLE: case N_DIR:
        fill_dir_stat(st, src);
        return;
    case N_STATS: case N_ERRORS: {
        char *text;
        size_t len;
        stats_stat(fs, st, snapshot_text(fs, n->kind, &text, &len) ? 0 : len);
        free(text);
        return;
    }
    case N_FILE:
        file_stat(fs, n, src, path, st);
        return;
    }
}

static int sf_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    struct sf_fs *fs = FS();
    struct node n;
    struct stat src;
    int rc;

    if (fi && fi->fh) {                 /* fstat on an open styled file or .stats snapshot */
        struct blob *b = (struct blob *)(uintptr_t)fi->fh;
        if ((rc = resolve(fs, path, &n, &src)) || n.kind != N_FILE) {
            if (!rc)
                node_put(&n);
            stats_stat(fs, st, b->len);  /* .stats, or a source gone since the open */
            return 0;
        }
        node_put(&n);
        memset(st, 0, sizeof *st);
        st->st_mode = SF_FILE_MODE(&src);
        st->st_nlink = 1;
        st->st_size = (off_t)b->len;
        st->st_uid = src.st_uid;
        st->st_gid = src.st_gid;
        st->st_atim = src.st_atim;
        st->st_mtim = src.st_mtim;
        st->st_ctim = src.st_ctim;
        st->st_blocks = (b->len + 511) / 512;
        return 0;
    }
    if ((rc = resolve(fs, path, &n, &src)))
        return rc;
    node_stat(fs, &n, &src, path, st);
    node_put(&n);
    return 0;
}

/* The attributes of source entry sname (stat *src), listed as name in the
 * styled directory dir at mount path dirpath: what getattr would say.
 * 0 or -ENAMETOOLONG. */
static int entry_stat(struct sf_fs *fs, const struct node *dir, const char *dirpath,
                      const char *name, const char *sname, const struct stat *src,
                      struct stat *st)
{
    struct node n = { .kind = N_FILE, .model = dir->model };
    char path[PATH_MAX];

    if (S_ISDIR(src->st_mode)) {
        fill_dir_stat(st, src);
        return 0;
    }
    if (snprintf(n.rel, sizeof n.rel, "%s/%s", dir->rel, sname) >= (int)sizeof n.rel ||
        snprintf(path, sizeof path, "%s/%s", dirpath, name) >= (int)sizeof path)
        return -ENAMETOOLONG;
    n.fmt = strcmp(name, sname) ? SF_FMT_PNG : sf_format_for_output(sname);
    file_stat(fs, &n, src, path, st);
    return 0;
}

/* Whether entry de of source directory n shows in the styled
 * tree: 0 no, 1 yes (a directory or an image), 2 for "." and "..".  Its
 * name there goes to name (NAME.gif -> NAME.gif.png); when *have_st, *st
 * is its stat (taken for links, which follow the policy: inside SOURCE,
 * no loops). */
static int listed_as(struct sf_fs *fs, const struct node *n, const struct dirent *de,
                     char name[NAME_MAX + 8], struct stat *st, int *have_st)
{
    const char *s = de->d_name;
    int isdir = de->d_type == DT_DIR;

    *have_st = 0;
    if (s[0] == '.' && (!s[1] || (s[1] == '.' && !s[2]))) {
        snprintf(name, NAME_MAX + 8, "%s", s);
        return 2;
    }
    if (de->d_type == DT_UNKNOWN || de->d_type == DT_LNK) {
        char rel[PATH_MAX];
        if (snprintf(rel, sizeof rel, "%s/%s", n->rel, s) >= (int)sizeof rel || src_stat(fs, rel, st))
            return 0;
        *have_st = 1;
        isdir = S_ISDIR(st->st_mode);
        if ((!isdir && !S_ISREG(st->st_mode)) || (isdir && de->d_type == DT_LNK && dir_loops(fs, rel)))
            return 0;
    } else if (!isdir && de->d_type != DT_REG) {
        return 0;
    }
    if (isdir)
        return snprintf(name, NAME_MAX + 8, "%s", s), 1;
    return sf_served_name(s, name, NAME_MAX + 8, NULL) == 1;
}

/* readdir's entries of the styled directory n (source stream d) from off. */
static void list_dir(struct sf_fs *fs, const struct node *n, DIR *d, const char *path, void *buf,
                     fuse_fill_dir_t fill, off_t off, enum fuse_fill_dir_flags plus)
{
    struct stat st, est;
    struct dirent *de;

    if (off != telldir(d))
        off ? seekdir(d, off) : rewinddir(d);
    while ((de = readdir(d))) {
        char name[NAME_MAX + 8];
        int have_st, how = listed_as(fs, n, de, name, &st, &have_st);
        if (!how)
            continue;
        if (how == 2 || !plus) {                /* "." and "..": libfuse's own */
            if (fill(buf, name, NULL, telldir(d), 0))
                break;
            continue;
        }
        if ((!have_st && fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW)) ||
            entry_stat(fs, n, path, name, de->d_name, &st, &est))
            continue;
        if (fill(buf, name, &est, telldir(d), plus))
            break;
    }
}

/* Listings use offsets (the source directory's own telldir cookies) and,
 * when the kernel asks for readdirplus, carry each entry's attributes, so
 * that the kernel needs no LOOKUP per name afterwards: ls -l on a
 * 10,000-image directory makes a few hundred requests instead of 10,000. */
static int sf_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
    struct sf_fs *fs = FS();
    enum fuse_fill_dir_flags plus = (flags & FUSE_READDIR_PLUS) ? FUSE_FILL_DIR_PLUS : 0;
    struct node n;
    struct stat st, est;
    DIR *d;
    int rc;

    if ((rc = resolve(fs, path, &n, &st)))
        return rc;
    if (n.kind == N_ROOT || n.kind == N_STYLED) {
        /* ".", "..", then styled/ or one directory per style, at offsets
         * 1..; styles come and go (live styles): each is looked up by its
         * place as the listing reaches it */
        fill_dir_stat(&est, fstat(fs->source_fd, &st) ? NULL : &st);
        for (off_t i = off;; i++) {
            const struct sf_model *m = NULL;
            int full;
            if (i >= 2 && (n.kind == N_ROOT ? i > 2 : sf_style_set_nth(fs->styles, (size_t)(i - 2), &m) != 0))
                break;
            full = fill(buf, i == 0 ? "." : i == 1 ? ".." : m ? m->name : "styled", &est, i + 1, i < 2 ? 0 : plus);
            sf_model_free(m);
            if (full)
                break;
        }
        return 0;
    }
    if (n.kind != N_STYLE && n.kind != N_DIR)
        rc = -ENOTDIR;
    else if (!fi || !(d = (DIR *)(uintptr_t)fi->fh))
        rc = -EBADF;
    else
        list_dir(fs, &n, d, path, buf, fill, off, plus);
    node_put(&n);
    return rc;
}

static int sf_open(const char *path, struct fuse_file_info *fi)
{
    struct sf_fs *fs = FS();
    struct node n;
    struct stat st;
    struct blob *b = NULL;
    int rc, first = 0;

    if ((fi->flags & O_ACCMODE) != O_RDONLY)
        return -EROFS;
    if ((rc = resolve(fs, path, &n, &st)))
        return rc;
    if (n.kind == N_STATS || n.kind == N_ERRORS) {
        char *text;
        size_t len;
        if ((rc = snapshot_text(fs, n.kind, &text, &len)))
            return rc;
        b = blob_new((uint8_t *)text, len);
        free(text);
        if (!b)
            return -ENOMEM;
        fi->direct_io = 1;      /* a snapshot per open; its size is not fixed */
        fi->fh = (uintptr_t)b;
        /* the kernel may hold an older snapshot's size for a second (on a
         * read-only mount no atime update drops it): fstat must give this
         * one's (direct_io: no page lock to wait for) */
        if ((off_t)len != st.st_size)
            fuse_invalidate_path(fuse_get_context()->fuse, path);
        return 0;
    }
    if (n.kind != N_FILE) {
        node_put(&n);
        return -EISDIR;
    }
    if (!(b = open_get(fs, path))) {
        char why[600];
        if ((rc = produce(fs, &n, &b, why, sizeof why)))
            errors_add(fs, path, n.model->name, why[0] ? why : strerror(-rc));
    }
    node_put(&n);
    if (rc)
        return rc;
    if ((rc = open_add(fs, path, &b, &first))) {
        blob_put(b);
        return rc;
    }
    fi->fh = (uintptr_t)b;              /* this open's reference */
    fi->keep_cache = 0;
    /* The kernel may hold the estimate: only the first opener of these
     * bytes invalidates (the others waited in open_add), so that no
     * invalidation waits for the page lock of a read from another open of
     * the same file while every worker thread sits in an invalidation (a
     * deadlock seen with 16 readers of one cold file). */
    if (first) {
        if ((off_t)b->len != st.st_size)
            fuse_invalidate_path(fuse_get_context()->fuse, path);
        open_announce(fs, path);
    }
    return 0;
}

static int sf_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
    struct blob *b = (struct blob *)(uintptr_t)fi->fh;

    if (!b)
        return -EBADF;
    if (off < 0 || (uint64_t)off >= b->len)
        return 0;
    if (size > b->len - (size_t)off)
        size = b->len - (size_t)off;
    memcpy(buf, b->data + off, size);
    return (int)size;
}

static int sf_release(const char *path, struct fuse_file_info *fi)
{
    struct blob *b = (struct blob *)(uintptr_t)fi->fh;

    if (path)                           /* a .stats snapshot is in no table: nothing found */
        open_drop(FS(), path, b);
    blob_put(b);
    return 0;
}

/* A source directory stays open from opendir to releasedir, so that the
 * offsets readdir hands out are cookies of that one stream. */
static int sf_opendir(const char *path, struct fuse_file_info *fi)
{
    struct sf_fs *fs = FS();
    struct node n;
    struct stat st;
    DIR *d;
    int rc = resolve(fs, path, &n, &st), fd;

    if (rc)
        return rc;
    node_put(&n);       /* the listing looks its style up again */
    if (n.kind == N_FILE || n.kind == N_STATS || n.kind == N_ERRORS)
        return -ENOTDIR;
    fi->fh = 0;
    if (n.kind != N_STYLE && n.kind != N_DIR)
        return 0;
    if ((fd = src_open(fs, n.rel, O_RDONLY | O_DIRECTORY)) < 0)
        return fd;
    if (!(d = fdopendir(fd))) {
        rc = -errno;
        close(fd);
        return rc;
    }
    fi->fh = (uintptr_t)d;
    return 0;
}

static int sf_releasedir(const char *path, struct fuse_file_info *fi)
{
    if (fi->fh)
        closedir((DIR *)(uintptr_t)fi->fh);
    return 0;
}

static int sf_access(const char *path, int mask)
{
    struct node n;
    struct stat st;
    int rc = resolve(FS(), path, &n, &st);
    if (rc)
        return rc;
    node_put(&n);
    return (mask & W_OK) ? -EROFS : 0;
}

static int sf_statfs(const char *path, struct statvfs *sv)
{
    return fstatvfs(FS()->source_fd, sv) ? -errno : 0;
}

static const struct fuse_operations sf_ops;

/* ---- mounting ------------------------------------------------------------ */

/* SOURCE (with the confinement check), the styles and the cache folder
 * into fs, before mounting, so that mistakes are said on stderr and not
 * in syslog.  0, or -errno after saying why. */
static int fs_prepare(struct sf_fs *fs, const struct sf_fs_config *c)
{
    char why[512];

    if (!realpath(c->source, fs->source) ||
        (fs->source_fd = open(fs->source, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
        int e = errno;
        fprintf(stderr, "stylefs: source %s: %s\n", c->source, strerror(e));
        return -e;
    }
    if (fs->confine) {          /* confinement needs openat2 (see Links) */
        int fd = openat2_fd(fs->source_fd, ".", O_PATH | O_DIRECTORY, RESOLVE_BENEATH);
        if (fd < 0 && errno == ENOSYS) {
            fprintf(stderr, "stylefs: %s needs openat2 (Linux 5.6 or later) to keep links from leading out of "
                            "SOURCE, and this kernel has none; mount without it, or on a newer kernel\n",
                    c->allow_other ? "allow_other" : "confine");
            return -ENOSYS;
        }
        if (fd >= 0)
            close(fd);
    }
    {
        struct sf_styles_path *sp = malloc(sizeof *sp);
        int rc = sp ? sf_styles_path(c->styles, sp, why, sizeof why) : -ENOMEM;
        if (rc)
            fprintf(stderr, "stylefs: %s\n", sp ? why : strerror(ENOMEM));
        else if ((rc = sf_style_set_open(sp, c->arbitrary, "", &fs->styles)) && rc != -ENOMEM)
            rc = -ENOENT;
        free(sp);
        if (rc)
            return rc;
    }
    snprintf(fs->cache_dir, sizeof fs->cache_dir, "%s", c->cache_dir);
    if (!strncmp(fs->cache_dir, fs->source, strlen(fs->source)) &&
        (fs->cache_dir[strlen(fs->source)] == '/' || !fs->cache_dir[strlen(fs->source)]))
        sf_warn("the cache %s is inside SOURCE; its files are not images and stay hidden", fs->cache_dir);
    return 0;
}

/* Stop signals: running stylizations stop at the next layer, and the FUSE
 * loop ends. */
static void install_stop_signals(struct fuse *fuse)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    g_se = fuse_get_session(fuse);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* The FUSE loop, multi-threaded unless co says single, with up to
 * max_threads workers.  0 or -errno. */
static int run_loop(struct fuse *fuse, const struct fuse_cmdline_opts *co, unsigned max_threads)
{
    struct fuse_loop_config *lc;
    int rc;

    if (co->singlethread)
        return fuse_loop(fuse) ? -EIO : 0;
    if (!(lc = fuse_loop_cfg_create())) {
        sf_err("cannot start the FUSE loop: %s", strerror(ENOMEM));
        return -ENOMEM;
    }
    fuse_loop_cfg_set_clone_fd(lc, co->clone_fd);
    if (co->max_idle_threads <= 100000)     /* UINT_MAX: not given (libfuse warns on it) */
        fuse_loop_cfg_set_idle_threads(lc, co->max_idle_threads);
    fuse_loop_cfg_set_max_threads(lc, max_threads);
    rc = fuse_loop_mt(fuse, lc) ? -EIO : 0;
    fuse_loop_cfg_destroy(lc);
    return rc;
}

/* Name the mount after SOURCE (what mount(8) and /proc/mounts show, and
 * what a second mount on it is told) unless the user chose an fsname.
 * 0 or -ENOMEM. */
static int add_fsname(struct fuse_args *args, const char *source)
{
    char opt[2 * PATH_MAX + 16], *w = opt + snprintf(opt, sizeof opt, "-ofsname=");

    for (int i = 0; i < args->argc; i++)
        if (strstr(args->argv[i], "fsname="))
            return 0;
    for (const char *r = source; *r && w < opt + sizeof opt - 3; r++) {
        if (*r == ',' || *r == '\\')     /* fuse_opt's escapes */
            *w++ = '\\';
        *w++ = *r;
    }
    *w = '\0';
    return fuse_opt_add_arg(args, opt) ? -ENOMEM : 0;
}

int sf_fs_main(const struct sf_fs_config *c, struct fuse_args *args, const struct fuse_cmdline_opts *co)
{
    struct sf_fs *fs = calloc(1, sizeof *fs);
    struct fuse *fuse = NULL;
    int rc;

    if (!fs)
        return -ENOMEM;
    fs->source_fd = -1;
    fs->watch_fd = -1;
    fs->watch_stop[0] = fs->watch_stop[1] = -1;
    fs->set = c->set;
    fs->device = c->device;
    fs->gpu_idle = c->gpu_idle;
    fs->mem_max = c->mem_max;
    fs->compute = c->compute;
    fs->offload_max = c->offload_max;
    fs->offload_timeout = c->offload_timeout;
    fs->cache_max = c->cache_max;
    fs->confine = c->confine || c->allow_other;
    atomic_init(&fs->cache_est, UINT64_MAX / 2);    /* count at the first miss */
    if ((rc = fs_prepare(fs, c)))
        goto out_prepared;
    if (c->remote) {        /* no threads in it: its connection survives daemonizing */
        char why[512];
        if ((rc = sf_remote_open(c->remote, &fs->remote, why, sizeof why))) {
            fprintf(stderr, "stylefs: %s\n", why);
            goto out_prepared;
        }
    }
    /* read-only by construction: the kernel answers EROFS to every write,
     * create, rename, chmod, utimens and xattr change, so the operations
     * table has none of them (added last, so a user's -o rw cannot undo
     * it); and the kernel checks each access against the modes served
     * (default_permissions), which are the sources' */
    rc = -ENOMEM;
    if (fuse_opt_add_arg(args, "-oro") || fuse_opt_add_arg(args, "-odefault_permissions") || add_fsname(args, fs->source))
        goto out_prepared;
    rc = -EIO;
    if (!(fuse = fuse_new(args, &sf_ops, sizeof sf_ops, fs)))
        goto out_prepared;
    if (fuse_mount(fuse, co->mountpoint)) {
        fprintf(stderr, "stylefs: cannot mount on %s\n", co->mountpoint);
        goto out_fuse;
    }
    if (fuse_daemonize(co->foreground)) {
        fprintf(stderr, "stylefs: cannot go to the background\n");
        goto out_unmount;
    }
    if (!co->foreground)
        sf_log_use_syslog();
    if (fuse_set_signal_handlers(fuse_get_session(fuse)))
        goto out_unmount;
    install_stop_signals(fuse);
    rc = run_loop(fuse, co, c->max_threads ? c->max_threads : SF_FS_MAX_THREADS);
    fuse_remove_signal_handlers(fuse_get_session(fuse));
out_unmount:
    fuse_unmount(fuse);
out_fuse:
    fuse_destroy(fuse);
out_prepared:
    sf_remote_close(fs->remote);
    sf_style_set_free(fs->styles);
    if (fs->source_fd >= 0)
        close(fs->source_fd);
    free(fs);
    return rc;
}

static const struct fuse_operations sf_ops = {
    .init = sf_init,
    .destroy = sf_destroy,
    .getattr = sf_getattr,
    .readdir = sf_readdir,
    .opendir = sf_opendir,
    .releasedir = sf_releasedir,
    .open = sf_open,
    .read = sf_read,
    .release = sf_release,
    .access = sf_access,
    .statfs = sf_statfs,
};
