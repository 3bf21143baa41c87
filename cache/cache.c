/* cache.c: the LMDB cache of stylized images (format and locking in cache.h). */
#include "cache.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <xxhash.h>

#define MAGIC "SFCE"
#define HDR_VERSION 1
#define DEFAULT_MAP (1ULL << 30)
#define DEFAULT_MAP_MAX (1ULL << 40)

struct sf_cache {
    MDB_env *env;
    MDB_dbi dbi;
    pthread_rwlock_t rw;    /* shared: any txn; exclusive: map resize */
    uint64_t map_size;      /* guarded by rw (exclusive to change) */
    uint64_t map_max;
    int lockfd;             /* stylefs.lock, held LOCK_SH while open */
    atomic_int disk_warned; /* "the disk is full" logged once per open */
    char dir[PATH_MAX];
};

int sf_mdb_errno(int rc)
{
    switch (rc) {
    case MDB_SUCCESS: return 0;
    case MDB_NOTFOUND: return -ENOENT;
    case MDB_MAP_FULL: return -ENOSPC;
    case MDB_TXN_FULL: return -ENOSPC;
    case MDB_MAP_RESIZED: return -EAGAIN;
    case MDB_READERS_FULL: return -EAGAIN;
    case MDB_KEYEXIST: return -EEXIST;
    case MDB_BAD_VALSIZE: return -E2BIG;
    case MDB_CORRUPTED: case MDB_PAGE_NOTFOUND: case MDB_INVALID:
    case MDB_VERSION_MISMATCH: case MDB_PANIC: case MDB_BAD_TXN:
        return -EIO;
    default:
        return rc > 0 && rc < 4096 ? -rc : -EIO;
    }
}

static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Check a value's header (not the checksum).  Returns 0 or -EIO. */
static int parse_header(const MDB_val *v, struct sf_entry_meta *m)
{
    const uint8_t *p = v->mv_data;

    if (v->mv_size < SF_CACHE_HDR_LEN || memcmp(p, MAGIC, 4) ||
        get_u16(p + 4) != HDR_VERSION || get_u16(p + 6) != SF_CACHE_HDR_LEN ||
        get_u64(p + 24) != v->mv_size - SF_CACHE_HDR_LEN)
        return -EIO;
    m->created = get_u64(p + 8);
    m->last_read = get_u64(p + 16);
    m->data_len = get_u64(p + 24);
    m->width = get_u32(p + 32);
    m->height = get_u32(p + 36);
    m->format = get_u32(p + 40);
    return 0;
}

static void write_header(uint8_t *p, const struct sf_entry_meta *m, uint64_t sum)
{
    memset(p, 0, SF_CACHE_HDR_LEN);
    memcpy(p, MAGIC, 4);
    put_u16(p + 4, HDR_VERSION);
    put_u16(p + 6, SF_CACHE_HDR_LEN);
    put_u64(p + 8, m->created);
    put_u64(p + 16, m->last_read);
    put_u64(p + 24, m->data_len);
    put_u32(p + 32, m->width);
    put_u32(p + 36, m->height);
    put_u32(p + 40, m->format);
    put_u64(p + 48, sum);
}

void sf_entry_header(uint8_t hdr[SF_CACHE_HDR_LEN], const void *data, size_t len, uint32_t width,
                     uint32_t height, uint32_t format, uint64_t now)
{
    struct sf_entry_meta m = { .created = now, .last_read = now, .data_len = len,
                               .width = width, .height = height, .format = format };
    write_header(hdr, &m, XXH3_64bits(data, len));
}

int sf_entry_check(const void *value, size_t vlen, struct sf_entry_meta *m)
{
    MDB_val v = { vlen, (void *)value };

    if (parse_header(&v, m) ||
        XXH3_64bits((const uint8_t *)value + SF_CACHE_HDR_LEN, m->data_len) !=
            get_u64((const uint8_t *)value + 48))
        return -EIO;
    return 0;
}

void sf_vector_put(uint8_t out[SF_VECTOR_BYTES], const float v[SF_VECTOR_FLOATS])
{
    for (int i = 0; i < SF_VECTOR_FLOATS; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        put_u32(out + 4 * i, u);
    }
}

int sf_vector_get(const uint8_t in[SF_VECTOR_BYTES], float v[SF_VECTOR_FLOATS])
{
    for (int i = 0; i < SF_VECTOR_FLOATS; i++) {
        uint32_t u = get_u32(in + 4 * i);
        memcpy(&v[i], &u, 4);
        if (!isfinite(v[i]))
            return -EINVAL;
    }
    return 0;
}

int sf_cache_default_dir(char *buf, size_t len)
{
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

    if (x && *x)
        snprintf(buf, len, "%s/stylefs", x);
    else if (home && *home)
        snprintf(buf, len, "%s/.cache/stylefs", home);
    else
        return -ENOENT;
    return 0;
}

static int mkdir_p(const char *dir)
{
    char tmp[PATH_MAX];
    size_t n = strlen(dir);

    if (n >= sizeof tmp)
        return -ENAMETOOLONG;
    memcpy(tmp, dir, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0700) && errno != EEXIST)
        return -errno;
    return 0;
}

static uint64_t env_u64(const char *name, uint64_t def)
{
    const char *s = getenv(name);
    uint64_t v;
    return s && !sf_parse_size(s, &v) && v ? v : def;
}

/* Begin a transaction with rw held shared.  Adopts a map grown by another
 * process (MDB_MAP_RESIZED).  On success the caller ends the txn and then
 * calls txn_done(). */
static int txn_begin(struct sf_cache *c, unsigned flags, MDB_txn **txn)
{
    for (int tries = 0; tries < 4; tries++) {
        int rc;
        pthread_rwlock_rdlock(&c->rw);
        rc = mdb_txn_begin(c->env, NULL, flags, txn);
        if (rc == MDB_SUCCESS)
            return 0;
        pthread_rwlock_unlock(&c->rw);
        if (rc != MDB_MAP_RESIZED)
            return sf_mdb_errno(rc);
        pthread_rwlock_wrlock(&c->rw);
        rc = mdb_env_set_mapsize(c->env, 0);
        if (rc == MDB_SUCCESS) {
            MDB_envinfo info;
            mdb_env_info(c->env, &info);
            c->map_size = info.me_mapsize;
        }
        pthread_rwlock_unlock(&c->rw);
        if (rc)
            return sf_mdb_errno(rc);
    }
    return -EAGAIN;
}

static void txn_done(struct sf_cache *c)
{
    pthread_rwlock_unlock(&c->rw);
}

/* End a write transaction begun with txn_begin: commit when rc is 0 (an
 * LMDB code), else abort.  Returns 0 or -errno. */
static int txn_end(struct sf_cache *c, MDB_txn *txn, int rc)
{
    if (rc)
        mdb_txn_abort(txn);
    else
        rc = mdb_txn_commit(txn);
    txn_done(c);
    return sf_mdb_errno(rc);
}

int sf_cache_open(const char *dir, const struct sf_cache_opts *o, struct sf_cache **out,
                  char *why, size_t whylen)
{
    struct sf_cache *c;
    char path[PATH_MAX + 32];
    MDB_txn *txn;
    MDB_envinfo info;
    int rc;

    rc = mkdir_p(dir);
    if (rc) {
        snprintf(why, whylen, "cache %s: %s", dir, strerror(-rc));
        return rc;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    c->map_size = env_u64("STYLEFS_MAP_SIZE", o && o->map_size ? o->map_size : DEFAULT_MAP);
    c->map_max = env_u64("STYLEFS_MAP_MAX", o && o->map_max ? o->map_max : DEFAULT_MAP_MAX);
    if (c->map_max < c->map_size)
        c->map_max = c->map_size;
    snprintf(path, sizeof path, "%s/stylefs.lock", dir);
    c->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (c->lockfd < 0) {
        rc = -errno;
        snprintf(why, whylen, "cache %s: %s", path, strerror(errno));
        goto out_free;
    }
    while (flock(c->lockfd, LOCK_SH) && errno == EINTR)
        ;
    pthread_rwlock_init(&c->rw, NULL);
    rc = mdb_env_create(&c->env);
    if (rc)
        goto out_mdb;
    mdb_env_set_maxreaders(c->env, 256);
    /* An existing, larger map wins (another process grew it). */
    rc = mdb_env_set_mapsize(c->env, c->map_size);
    if (rc)
        goto out_env;
    rc = mdb_env_open(c->env, dir, MDB_NOTLS, 0600);
    if (rc)
        goto out_env;
    mdb_env_info(c->env, &info);
    if (info.me_mapsize > c->map_size)
        c->map_size = info.me_mapsize;
    rc = mdb_txn_begin(c->env, NULL, 0, &txn);
    if (rc)
        goto out_env;
    rc = mdb_dbi_open(txn, NULL, 0, &c->dbi);
    if (rc) {
        mdb_txn_abort(txn);
        goto out_env;
    }
    rc = mdb_txn_commit(txn);
    if (rc)
        goto out_env;
    *out = c;
    return 0;

out_env:
    mdb_env_close(c->env);
out_mdb:
    snprintf(why, whylen, "cache %s: %s", dir, mdb_strerror(rc));
    rc = sf_mdb_errno(rc);
    pthread_rwlock_destroy(&c->rw);
    close(c->lockfd);
out_free:
    free(c);
    return rc;
}

void sf_cache_close(struct sf_cache *c)
{
    if (!c)
        return;
    mdb_env_close(c->env);
    pthread_rwlock_destroy(&c->rw);
    close(c->lockfd);
    free(c);
}

static int delete_key(struct sf_cache *c, const uint8_t *key)
{
    MDB_txn *txn;
    MDB_val k = { SF_CACHE_KEY_LEN, (void *)key };
    int rc = txn_begin(c, 0, &txn);

    if (rc)
        return rc;
    rc = mdb_del(txn, c->dbi, &k, NULL);
    return txn_end(c, txn, rc == MDB_NOTFOUND ? 0 : rc);
}

/* Rewrite an entry with a fresh last_read.  Best effort. */
static void touch(struct sf_cache *c, const uint8_t *key, const uint8_t *data,
                  struct sf_entry_meta *m, uint64_t sum, uint64_t now)
{
    MDB_txn *txn;
    MDB_val k = { SF_CACHE_KEY_LEN, (void *)key }, v;
    struct sf_entry_meta cur;
    int rc;

    if (txn_begin(c, 0, &txn))
        return;
    rc = mdb_get(txn, c->dbi, &k, &v);
    /* Only if it is still the same entry (another process may have replaced it). */
    if (rc || parse_header(&v, &cur) || get_u64((uint8_t *)v.mv_data + 48) != sum) {
        mdb_txn_abort(txn);
        goto out;
    }
    v.mv_size = SF_CACHE_HDR_LEN + m->data_len;
    rc = mdb_put(txn, c->dbi, &k, &v, MDB_RESERVE);
    if (rc) {
        mdb_txn_abort(txn);
        goto out;
    }
    m->last_read = now;
    write_header(v.mv_data, m, sum);
    memcpy((uint8_t *)v.mv_data + SF_CACHE_HDR_LEN, data, m->data_len);
    mdb_txn_commit(txn);
out:
    txn_done(c);
}

int sf_cache_get(struct sf_cache *c, const uint8_t key[SF_CACHE_KEY_LEN],
                 uint8_t **data, size_t *len, struct sf_entry_meta *meta)
{
    MDB_txn *txn;
    MDB_val k = { SF_CACHE_KEY_LEN, (void *)key }, v;
    struct sf_entry_meta m;
    uint8_t *buf = NULL;
    uint64_t sum = 0, now;
    int rc, bad = 0;

    rc = txn_begin(c, MDB_RDONLY, &txn);
    if (rc)
        return rc;
    rc = mdb_get(txn, c->dbi, &k, &v);
    if (rc) {
        rc = sf_mdb_errno(rc);
        goto out_abort;
    }
    if (parse_header(&v, &m) ||
        XXH3_64bits((uint8_t *)v.mv_data + SF_CACHE_HDR_LEN, m.data_len) !=
            (sum = get_u64((uint8_t *)v.mv_data + 48))) {
        bad = 1;
        rc = -ENOENT;
        goto out_abort;
    }
    buf = malloc(m.data_len ? m.data_len : 1);
    if (!buf) {
        rc = -ENOMEM;
        goto out_abort;
    }
    memcpy(buf, (uint8_t *)v.mv_data + SF_CACHE_HDR_LEN, m.data_len);
out_abort:
    mdb_txn_abort(txn);
    txn_done(c);
    if (bad) {
        sf_warn("cache %s: dropping a damaged entry", c->dir);
        delete_key(c, key);
    }
    if (rc)
        return rc;
    now = sf_now();
    if (now > m.last_read + SF_CACHE_ATIME_SLACK)
        touch(c, key, buf, &m, sum, now);
    *data = buf;
    *len = m.data_len;
    if (meta)
        *meta = m;
    return 0;
}

int sf_cache_peek(struct sf_cache *c, const uint8_t key[SF_CACHE_KEY_LEN],
                  struct sf_entry_meta *meta)
{
    MDB_txn *txn;
    MDB_val k = { SF_CACHE_KEY_LEN, (void *)key }, v;
    int rc = txn_begin(c, MDB_RDONLY, &txn);

    if (rc)
        return rc;
    rc = mdb_get(txn, c->dbi, &k, &v);
    rc = rc ? sf_mdb_errno(rc) : parse_header(&v, meta);
    mdb_txn_abort(txn);
    txn_done(c);
    return rc;
}

/* Double the map, up to map_max.  Returns 0 or -ENOSPC. */
static int grow_map(struct sf_cache *c, uint64_t seen)
{
    int rc = 0;

    pthread_rwlock_wrlock(&c->rw);
    if (c->map_size == seen) {      /* nobody grew it meanwhile */
        uint64_t want = c->map_size * 2;
        if (want > c->map_max)
            want = c->map_max;
        if (want <= c->map_size) {
            rc = -ENOSPC;
        } else if ((rc = mdb_env_set_mapsize(c->env, want)) == 0) {
            sf_info("cache %s: map grown to %llu bytes", c->dir, (unsigned long long)want);
            c->map_size = want;
        } else {
            rc = sf_mdb_errno(rc);
        }
    }
    pthread_rwlock_unlock(&c->rw);
    return rc;
}

struct lru_item {
    uint8_t key[SF_CACHE_KEY_LEN];
    uint64_t last_read, size;
};

static int cmp_lru(const void *a, const void *b)
{
    const struct lru_item *x = a, *y = b;
    if (x->last_read != y->last_read)
        return x->last_read < y->last_read ? -1 : 1;
    return memcmp(x->key, y->key, SF_CACHE_KEY_LEN);
}

/* Call fn(key, value, ctx) for every entry (aliases skipped) in one read
 * transaction; fn returns 0 to go on, or a positive errno or MDB code to
 * stop with.  Returns 0 or -errno. */
static int each_entry(struct sf_cache *c, int (*fn)(const MDB_val *k, const MDB_val *v, void *ctx),
                      void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    MDB_cursor_op op;
    int rc = txn_begin(c, MDB_RDONLY, &txn);

    if (rc)
        return rc;
    rc = mdb_cursor_open(txn, c->dbi, &cur);
    if (rc)
        goto out_txn;
    /* (the cursor op follows the cursor: aliases are skipped) */
    for (op = MDB_FIRST; (rc = mdb_cursor_get(cur, &k, &v, op)) == MDB_SUCCESS; op = MDB_NEXT)
        if (k.mv_size == SF_CACHE_KEY_LEN && (rc = fn(&k, &v, ctx)))
            break;
    if (rc == MDB_NOTFOUND)
        rc = 0;
    mdb_cursor_close(cur);
out_txn:
    mdb_txn_abort(txn);
    txn_done(c);
    return sf_mdb_errno(rc);
}

struct lru_list {
    struct lru_item *it;
    size_t n, cap;
};

static int lru_add(const MDB_val *k, const MDB_val *v, void *ctx)
{
    struct lru_list *l = ctx;
    struct sf_entry_meta m;

    if (l->n == l->cap) {
        struct lru_item *ni = realloc(l->it, (l->cap = l->cap ? l->cap * 2 : 256) * sizeof *ni);
        if (!ni)
            return ENOMEM;
        l->it = ni;
    }
    memcpy(l->it[l->n].key, k->mv_data, SF_CACHE_KEY_LEN);
    l->it[l->n].last_read = parse_header(v, &m) ? 0 : m.last_read;
    l->it[l->n].size = v->mv_size;
    l->n++;
    return 0;
}

/* All entries, least recently read first. Damaged headers sort first with
 * last_read 0 so that they are the first to go. */
static int list_entries(struct sf_cache *c, struct lru_item **items, size_t *count)
{
    struct lru_list l = { 0 };
    int rc = each_entry(c, lru_add, &l);

    if (rc) {
        free(l.it);
        return rc;
    }
    if (l.n)
        qsort(l.it, l.n, sizeof *l.it, cmp_lru);
    *items = l.it;
    *count = l.n;
    return 0;
}

/* Delete items[0..n) in one write transaction. */
static int delete_items(struct sf_cache *c, const struct lru_item *items, size_t n)
{
    MDB_txn *txn;
    int rc;

    if (!n)
        return 0;
    rc = txn_begin(c, 0, &txn);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        MDB_val k = { SF_CACHE_KEY_LEN, (void *)items[i].key };
        rc = mdb_del(txn, c->dbi, &k, NULL);
        if (rc && rc != MDB_NOTFOUND)
            break;
        rc = 0;
    }
    return txn_end(c, txn, rc);
}

/* Make room: evict least recently read entries worth `goal` bytes (at
 * least one).  Returns 0, -ENOSPC (nothing left to evict), -errno. */
static int evict_for(struct sf_cache *c, uint64_t goal, const char *why)
{
    struct lru_item *items;
    size_t n, i = 0;
    uint64_t freed = 0;
    int rc = list_entries(c, &items, &n);

    if (rc)
        return rc;
    while (i < n && freed < goal)
        freed += items[i++].size;
    rc = i ? delete_items(c, items, i) : -ENOSPC;
    if (!rc)
        sf_info("cache %s: %s, evicted %zu %s (%llu bytes)", c->dir, why, i, SF_PLURAL(i, "entry", "entries"),
                (unsigned long long)freed);
    free(items);
    return rc;
}

/* Whether the cache's filesystem lacks room for `need` more bytes.  LMDB
 * reports a short write (a full disk) as EIO, the same as damage: a put
 * that fails with -EIO asks this to tell the two apart.  A commit writes
 * more than the value (branch pages, the free list), so a disk counts as
 * full below the value plus 1 MiB. */
static int disk_full(const struct sf_cache *c, uint64_t need)
{
    struct statvfs sv;

    if (statvfs(c->dir, &sv))
        return 0;
    return (uint64_t)sv.f_bavail * sv.f_frsize < need + (1u << 20);
}

static int try_put(struct sf_cache *c, const uint8_t *key, const void *data, size_t len,
                   const struct sf_entry_meta *m, uint64_t *map_seen)
{
    MDB_txn *txn;
    MDB_val k = { SF_CACHE_KEY_LEN, (void *)key }, v;
    int rc = txn_begin(c, 0, &txn);

    if (rc)
        return rc;
    *map_seen = c->map_size;
    v.mv_size = SF_CACHE_HDR_LEN + len;
    rc = mdb_put(txn, c->dbi, &k, &v, MDB_RESERVE);
    if (rc == MDB_SUCCESS) {
        write_header(v.mv_data, m, XXH3_64bits(data, len));
        memcpy((uint8_t *)v.mv_data + SF_CACHE_HDR_LEN, data, len);
    }
    return txn_end(c, txn, rc);
}

int sf_cache_put(struct sf_cache *c, const uint8_t key[SF_CACHE_KEY_LEN],
                 const void *data, size_t len, uint32_t width, uint32_t height,
                 uint32_t format)
{
    struct sf_entry_meta m = { 0 };
    uint64_t seen = 0;
    int rc, evictions = 0;

    /* LMDB needs room besides the value (freed pages are reusable only two
     * transactions later): refuse what could never fit. */
    if (SF_CACHE_HDR_LEN + (uint64_t)len > c->map_max / 4)
        return -E2BIG;
    m.created = m.last_read = sf_now();
    m.data_len = len;
    m.width = width;
    m.height = height;
    m.format = format;
    for (;;) {
        int disk = 0;

        rc = try_put(c, key, data, len, &m, &seen);
        if (rc == -EIO && disk_full(c, SF_CACHE_HDR_LEN + len)) {
            rc = -ENOSPC;
            disk = 1;
        }
        if (rc != -ENOSPC)
            return rc;
        if (!disk && grow_map(c, seen) == 0)
            continue;
        if (disk && !evictions && !atomic_exchange(&c->disk_warned, 1))
            sf_warn("cache %s: the disk is full: evicting least recently read entries to make room", c->dir);
        /* Pages freed by an eviction are reusable two transactions later,
         * so a put may need a second round before it fits. */
        if (evictions++ >= 8)
            return -ENOSPC;
        /* A full map: an eighth of it besides the value, so that the next
         * puts fit too.  A full disk: the value's size, a round at a time
         * (the first round's pages are reusable once the second commits). */
        rc = disk ? evict_for(c, SF_CACHE_HDR_LEN + len, "disk full")
                  : evict_for(c, SF_CACHE_HDR_LEN + len + c->map_size / 8, "map full");
        if (rc)
            return rc;
    }
}

int sf_cache_alias_get(struct sf_cache *c, const uint8_t alias[16], uint8_t key[SF_CACHE_KEY_LEN])
{
    uint8_t ak[17] = { 'A' };
    MDB_txn *txn;
    MDB_val k = { 17, ak }, v;
    int rc;

    memcpy(ak + 1, alias, 16);
    if ((rc = txn_begin(c, MDB_RDONLY, &txn)))
        return rc;
    rc = mdb_get(txn, c->dbi, &k, &v);
    if (rc == 0 && v.mv_size == SF_CACHE_KEY_LEN)
        memcpy(key, v.mv_data, SF_CACHE_KEY_LEN);
    else if (rc == 0)
        rc = MDB_NOTFOUND;
    mdb_txn_abort(txn);
    txn_done(c);
    return sf_mdb_errno(rc);
}

int sf_cache_alias_put(struct sf_cache *c, const uint8_t alias[16], const uint8_t key[SF_CACHE_KEY_LEN])
{
    uint8_t ak[17] = { 'A' };
    MDB_txn *txn;
    MDB_val k = { 17, ak }, v = { SF_CACHE_KEY_LEN, (void *)key };
    int rc;

    memcpy(ak + 1, alias, 16);
    if ((rc = txn_begin(c, 0, &txn)))
        return rc;
    return txn_end(c, txn, mdb_put(txn, c->dbi, &k, &v, 0));
}

/* Delete aliases whose entry is gone. */
static int drop_dangling_aliases(struct sf_cache *c)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = txn_begin(c, 0, &txn), op = MDB_FIRST;

    if (rc)
        return rc;
    rc = mdb_cursor_open(txn, c->dbi, &cur);
    while (!rc && (rc = mdb_cursor_get(cur, &k, &v, op)) == MDB_SUCCESS) {
        MDB_val ek = { SF_CACHE_KEY_LEN, v.mv_data }, ev;
        op = MDB_NEXT;
        if (k.mv_size != 17 || ((uint8_t *)k.mv_data)[0] != 'A')
            continue;
        if (v.mv_size != SF_CACHE_KEY_LEN || mdb_get(txn, c->dbi, &ek, &ev) == MDB_NOTFOUND)
            rc = mdb_cursor_del(cur, 0);
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
    return txn_end(c, txn, rc);    /* a write txn's cursors end with it */
}

/* each_entry's step for sf_cache_verify: counts[0] checked, [1] damaged. */
static int verify_one(const MDB_val *k, const MDB_val *v, void *ctx)
{
    uint64_t *counts = ctx;
    struct sf_entry_meta m;

    (void)k;
    counts[0]++;
    if (parse_header(v, &m) ||
        XXH3_64bits((const uint8_t *)v->mv_data + SF_CACHE_HDR_LEN, m.data_len) !=
            get_u64((const uint8_t *)v->mv_data + 48))
        counts[1]++;
    return 0;
}

int sf_cache_verify(struct sf_cache *c, uint64_t *checked, uint64_t *damaged)
{
    uint64_t counts[2] = { 0, 0 };
    int rc = each_entry(c, verify_one, counts);

    *checked = counts[0];
    *damaged = counts[1];
    return rc;
}

/* each_entry's step for sf_cache_stats. */
static int stats_one(const MDB_val *k, const MDB_val *v, void *ctx)
{
    struct sf_cache_stats *st = ctx;
    struct sf_entry_meta m;

    (void)k;
    st->entries++;
    st->bytes += v->mv_size;
    if (parse_header(v, &m))
        return 0;
    if (!st->oldest_read || m.last_read < st->oldest_read)
        st->oldest_read = m.last_read;
    if (m.last_read > st->newest_read)
        st->newest_read = m.last_read;
    return 0;
}

int sf_cache_stats(struct sf_cache *c, struct sf_cache_stats *st)
{
    MDB_envinfo info;
    MDB_stat ms;
    char path[PATH_MAX + 16];
    struct stat fst;
    int rc;

    memset(st, 0, sizeof *st);
    rc = each_entry(c, stats_one, st);
    if (rc)
        return rc;
    pthread_rwlock_rdlock(&c->rw);
    mdb_env_info(c->env, &info);
    mdb_env_stat(c->env, &ms);
    pthread_rwlock_unlock(&c->rw);
    st->map_size = info.me_mapsize;
    st->map_used = (uint64_t)(info.me_last_pgno + 1) * ms.ms_psize;
    snprintf(path, sizeof path, "%s/data.mdb", c->dir);
    if (stat(path, &fst) == 0) {
        st->file_size = (uint64_t)fst.st_size;
        st->file_alloc = (uint64_t)fst.st_blocks * 512;
    }
    return 0;
}

int sf_cache_prune(struct sf_cache *c, const struct sf_prune_opts *o, struct sf_prune_result *r)
{
    struct lru_item *items;
    size_t n, i, cut = 0;
    uint64_t total = 0, now = sf_now();
    int rc = list_entries(c, &items, &n);

    if (rc)
        return rc;
    memset(r, 0, sizeof *r);
    for (i = 0; i < n; i++)
        total += items[i].size;
    if (o->all) {
        cut = n;
    } else {
        /* oldest first: everything older than the age, then more until it fits */
        uint64_t left = total;
        while (cut < n && o->older_than && items[cut].last_read + o->older_than <= now)
            left -= items[cut++].size;
        while (cut < n && o->max_size && left > o->max_size)
            left -= items[cut++].size;
    }
    for (i = 0; i < n; i++) {
        if (i < cut) {
            r->removed++;
            r->removed_bytes += items[i].size;
        } else {
            r->kept++;
            r->kept_bytes += items[i].size;
        }
    }
    /* in batches, so that readers and writers of other processes get turns */
    for (i = 0; !o->dry_run && i < cut && !rc; i += 512)
        rc = delete_items(c, items + i, cut - i < 512 ? cut - i : 512);
    free(items);
    if (!rc && !o->dry_run)
        rc = drop_dangling_aliases(c);
    return rc;
}

int sf_cache_compact(const char *dir, uint64_t *before, uint64_t *after, char *why, size_t whylen)
{
    char lockp[PATH_MAX + 16], data[PATH_MAX + 16], tmp[PATH_MAX + 32];
    MDB_env *env = NULL;
    struct stat st;
    int fd, rc;

    snprintf(lockp, sizeof lockp, "%s/stylefs.lock", dir);
    snprintf(data, sizeof data, "%s/data.mdb", dir);
    snprintf(tmp, sizeof tmp, "%s/data.mdb.compact", dir);
    if (stat(data, &st)) {
        snprintf(why, whylen, "cache %s: %s", dir, strerror(errno));
        return -errno;
    }
    *before = (uint64_t)st.st_size;
    fd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(why, whylen, "%s: %s", lockp, strerror(errno));
        return -errno;
    }
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        snprintf(why, whylen, "cache %s is in use by another process; not compacting", dir);
        close(fd);
        return -EBUSY;
    }
    unlink(tmp);
    rc = mdb_env_create(&env);
    if (!rc)
        rc = mdb_env_set_mapsize(env, (size_t)st.st_size + (1 << 20));
    if (!rc)
        rc = mdb_env_open(env, dir, MDB_NOTLS, 0600);
    if (!rc) {
        int tfd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        rc = tfd < 0 ? errno : mdb_env_copyfd2(env, tfd, MDB_CP_COMPACT);
        if (tfd >= 0 && !rc && fsync(tfd))
            rc = errno;
        if (tfd >= 0)
            close(tfd);
    }
    if (env)
        mdb_env_close(env);
    if (!rc && rename(tmp, data))
        rc = errno;
    if (rc) {
        snprintf(why, whylen, "compacting %s: %s", dir, mdb_strerror(rc));
        unlink(tmp);
        close(fd);
        return sf_mdb_errno(rc);
    }
    if (stat(data, &st) == 0)
        *after = (uint64_t)st.st_size;
    close(fd);
    return 0;
}
