/* remote.c: the shared result store on Redis (see remote.h for the key
 * layout, the fault rules and the DESIGN of the connection pool).
 *
 * hiredis's error space (the context's err and errno, error replies) is
 * turned into -errno in one place, redis_errno. */
#include "remote.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RECONNECT_S 1.0         /* at most one reconnect attempt per second */
#define ERRLOG_S 60.0           /* error replies: one warning a minute at most */
#define NAME_MAX_LEN 512        /* prefix + "done:" + 32 hex */

/* Compare-and-delete: release the lease only if it is still ours. */
static const char RELEASE_LUA[] =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

struct conn {
    redisContext *c;
    unsigned gen;               /* the generation it was opened in */
};

struct sf_remote {
    char *url, *host, *path, *prefix, *password;
    uint8_t mac_key[256];       /* redis_key=FILE's secret; mac_keylen 0: entries unsigned */
    size_t mac_keylen;
    EVP_MAC *mac;               /* OpenSSL's HMAC, fetched once (thread-safe to share) */
    int port;
    uint64_t ttl_s, lease_ms, timeout_ms;
    char holder[200];           /* "host:pid", the start of every token */
    atomic_ullong token_seq;
    pthread_mutex_t lock;       /* protects everything below it */
    pthread_cond_t freed;       /* a connection came back to the pool */
    struct conn pool[SF_REMOTE_CONNS];
    int nfree, nopen;           /* free contexts in pool[]; contexts open in all */
    unsigned gen;               /* bumped by each outage */
    int down, connecting;       /* an outage; a reconnect attempt in progress */
    double down_since, last_try, last_errlog;
    struct sf_remote_counters n;
};

/* ---- errors -------------------------------------------------------------- */

/* The one translation of hiredis's error space: a context error, or an
 * error reply (reply non-NULL, type REDIS_REPLY_ERROR). */
static int redis_errno(const redisContext *c, const redisReply *reply)
{
    if (reply)
        return reply->type == REDIS_REPLY_ERROR && !strncmp(reply->str, "OOM", 3) ? -ENOSPC : -EPROTO;
    if (!c)
        return -ENOMEM;
    switch (c->err) {
    case REDIS_ERR_IO:
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == ETIMEDOUT || errno == EINPROGRESS
                   ? -ETIMEDOUT : -ENOTCONN;
    case REDIS_ERR_EOF: return -ENOTCONN;
    case REDIS_ERR_PROTOCOL: return -EPROTO;
    case REDIS_ERR_OOM: return -ENOMEM;
    default: return -EIO;
    }
}

/* Log an error reply or a wrong-typed one, at most once a minute. */
static void reply_warn(struct sf_remote *r, const char *what, const redisReply *reply)
{
    double now = sf_monotonic();
    int say;

    atomic_fetch_add(&r->n.errors, 1);
    pthread_mutex_lock(&r->lock);
    say = r->last_errlog == 0 || now - r->last_errlog >= ERRLOG_S;
    if (say)
        r->last_errlog = now;
    pthread_mutex_unlock(&r->lock);
    if (say)
        sf_warn("redis %s: %s: %s%s; computing locally (said once a minute)", r->url, what,
                reply->type == REDIS_REPLY_ERROR ? "" : "a reply of the wrong type",
                reply->type == REDIS_REPLY_ERROR ? reply->str : "");
}

/* ---- the pool -------------------------------------------------------------- */

static void mark_down_locked(struct sf_remote *r, const char *why)
{
    if (r->down)
        return;
    r->down = 1;
    r->gen++;
    r->down_since = r->last_try = sf_monotonic();
    atomic_fetch_add(&r->n.outages, 1);
    sf_warn("redis %s: %s; serving from the local cache and local computation until it is back", r->url, why);
}

/* ---- replies, read within bounds ----------------------------------------------
 *
 * hiredis 0.14 has no cap of its own on what a reply may claim (1.x's
 * reader gained maxelements): "*2147483647" made it calloc 16 GiB for the
 * element pointers, and a bulk string is buffered whole however long it
 * says it is.  So every reply is read here, not by redisGetReply:
 *   - the arrays of one reply hold at most SF_REMOTE_MAX_ELEMENTS elements
 *     in all (the reader's createArray is wrapped; the count is per
 *     thread, reset for each reply);
 *   - the reader's unread bytes stay under SF_REMOTE_MAX_VALUE + 1 MiB;
 *   - the whole reply arrives within redis_timeout (hiredis bounds each
 *     read only, so a server dripping a byte at a time could hold a reader
 *     for ever).
 * A reply past a bound breaks its connection (-EPROTO or -ETIMEDOUT), like
 * any other protocol error: the read goes on locally. */

static _Thread_local struct { size_t elements; int over; } budget;
static redisReplyObjectFunctions capped_fns, hiredis_fns;
static pthread_once_t capped_once = PTHREAD_ONCE_INIT;
static redisReplyObjectFunctions *first_fns;    /* hiredis's, seen by the first dial */

static void *capped_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || (size_t)elements > SF_REMOTE_MAX_ELEMENTS - budget.elements) {
        budget.over = 1;
        return NULL;            /* the reader fails with REDIS_ERR_OOM */
    }
    budget.elements += (size_t)elements;
    return hiredis_fns.createArray(task, elements);
}

static void capped_init(void)
{
    hiredis_fns = *first_fns;
    capped_fns = hiredis_fns;
    capped_fns.createArray = capped_array;
}

static void set_error(redisContext *c, int type, const char *fmt, ...)
{
    va_list ap;

    c->err = type;
    va_start(ap, fmt);
    vsnprintf(c->errstr, sizeof c->errstr, fmt, ap);
    va_end(ap);
}

/* Send what the context has queued, then read one reply within the bounds
 * above, the whole of it within ms (0: no time bound; the blocking reads
 * of a worker's own connection).  Returns 0 with *out set (the caller frees it), or -ENOTCONN,
 * -ETIMEDOUT, -EPROTO (garbage, or a reply past a bound), -ENOMEM, with
 * the context's err and errstr set: the connection is then unusable. */
static int read_reply_within(const struct sf_remote *r, redisContext *c, redisReply **out, uint64_t ms)
{
    double deadline = ms ? sf_monotonic() + (double)ms / 1000.0 : 1e300;
    void *rep = NULL;
    int done = 0;

    budget.elements = 0;
    budget.over = 0;
    *out = NULL;
    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return redis_errno(c, NULL);
    for (;;) {
        if (redisReaderGetReply(c->reader, &rep) != REDIS_OK) {
            if (budget.over)
                set_error(c, REDIS_ERR_PROTOCOL, "a reply of over %d array elements", SF_REMOTE_MAX_ELEMENTS);
            else
                set_error(c, c->reader->err, "%s", c->reader->errstr);
            return redis_errno(c, NULL);
        }
        if (rep)
            break;
        if (c->reader->len - c->reader->pos > SF_REMOTE_MAX_VALUE + (1u << 20)) {
            set_error(c, REDIS_ERR_PROTOCOL, "a reply of over %llu bytes",
                      (unsigned long long)(SF_REMOTE_MAX_VALUE + (1u << 20)));
            return -EPROTO;
        }
        if (sf_monotonic() > deadline) {
            set_error(c, REDIS_ERR_OTHER, "no whole reply within %llu ms", (unsigned long long)ms);
            return -ETIMEDOUT;
        }
        if (redisBufferRead(c) != REDIS_OK)
            return redis_errno(c, NULL);
    }
    *out = rep;
    return 0;
}

/* read_reply_within the timeout (the common case). */
static int read_reply(const struct sf_remote *r, redisContext *c, redisReply **out)
{
    return read_reply_within(r, c, out, r->timeout_ms);
}

/* Queue a command and read its reply (read_reply's returns). */
static int vcall(const struct sf_remote *r, redisContext *c, redisReply **out, const char *fmt, va_list ap)
{
    *out = NULL;
    if (redisvAppendCommand(c, fmt, ap) != REDIS_OK)
        return -ENOMEM;         /* hiredis: only allocation fails here */
    return read_reply(r, c, out);
}

static int call(const struct sf_remote *r, redisContext *c, redisReply **out, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vcall(r, c, out, fmt, ap);
    va_end(ap);
    return rc;
}

/* Open and authenticate a connection.  NULL with why on failure. */
static redisContext *dial(struct sf_remote *r, char *why, size_t whylen)
{
    struct timeval tv = { (time_t)(r->timeout_ms / 1000), (suseconds_t)(r->timeout_ms % 1000 * 1000) };
    redisContext *c = r->path ? redisConnectUnixWithTimeout(r->path, tv)
                              : redisConnectWithTimeout(r->host, r->port, tv);
    redisReply *rep;

    if (!c) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    if (c->err) {
        snprintf(why, whylen, "cannot connect (%s)", c->errstr);
        goto out_free;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(why, whylen, "cannot set the timeout (%s)", c->errstr);
        goto out_free;
    }
    first_fns = c->reader->fn;  /* the same static table in every context */
    pthread_once(&capped_once, capped_init);
    c->reader->fn = &capped_fns;
    if (r->password) {
        call(r, c, &rep, "AUTH %s", r->password);
        if (!rep || rep->type != REDIS_REPLY_STATUS) {
            snprintf(why, whylen, "authentication failed (%s)",
                     !rep ? c->errstr : rep->type == REDIS_REPLY_ERROR ? rep->str : "a reply of the wrong type");
            if (rep)
                freeReplyObject(rep);
            goto out_free;
        }
        freeReplyObject(rep);
    }
    return c;
out_free:
    redisFree(c);
    return NULL;
}

/* Borrow a connection.  Returns 0, -ENOTCONN (down, or it just failed),
 * -ETIMEDOUT (none came free within the timeout). */
static int borrow(struct sf_remote *r, struct conn *out)
{
    char why[256];
    struct timespec until;
    unsigned gen;
    redisContext *c;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(r->timeout_ms / 1000);
    until.tv_nsec += (long)(r->timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    for (;;) {
        if (r->down) {
            double now = sf_monotonic();
            while (r->nfree > 0) {          /* idle contexts from before the outage */
                redisFree(r->pool[--r->nfree].c);
                r->nopen--;
            }
            if (r->connecting || now - r->last_try < RECONNECT_S || r->nopen >= SF_REMOTE_CONNS) {
                pthread_mutex_unlock(&r->lock);
                return -ENOTCONN;
            }
            r->connecting = 1;
            r->last_try = now;
            pthread_mutex_unlock(&r->lock);
            c = dial(r, why, sizeof why);
            pthread_mutex_lock(&r->lock);
            r->connecting = 0;
            if (!c) {
                pthread_mutex_unlock(&r->lock);
                return -ENOTCONN;
            }
            sf_warn("redis %s: connected again after %.1f s", r->url, sf_monotonic() - r->down_since);
            r->down = 0;
            r->nopen++;
            *out = (struct conn){ c, r->gen };
            pthread_mutex_unlock(&r->lock);
            return 0;
        }
        while (r->nfree > 0) {
            struct conn k = r->pool[--r->nfree];
            if (k.gen == r->gen) {
                *out = k;
                pthread_mutex_unlock(&r->lock);
                return 0;
            }
            redisFree(k.c);     /* from before an outage */
            r->nopen--;
        }
        if (r->nopen < SF_REMOTE_CONNS) {
            r->nopen++;
            gen = r->gen;
            pthread_mutex_unlock(&r->lock);
            c = dial(r, why, sizeof why);
            pthread_mutex_lock(&r->lock);
            if (!c) {
                r->nopen--;
                mark_down_locked(r, why);
                pthread_cond_broadcast(&r->freed);
                pthread_mutex_unlock(&r->lock);
                return -ENOTCONN;
            }
            *out = (struct conn){ c, gen };
            pthread_mutex_unlock(&r->lock);
            return 0;
        }
        if (pthread_cond_timedwait(&r->freed, &r->lock, &until) == ETIMEDOUT) {
            pthread_mutex_unlock(&r->lock);
            return -ETIMEDOUT;
        }
    }
}

/* Return a borrowed connection; a broken one is closed and marks Redis
 * down (why says how it broke). */
static void give_back(struct sf_remote *r, struct conn k, const char *broken)
{
    pthread_mutex_lock(&r->lock);
    if (broken || k.gen != r->gen) {
        redisFree(k.c);
        r->nopen--;
        if (broken)
            mark_down_locked(r, broken);
    } else {
        r->pool[r->nfree++] = k;
    }
    pthread_cond_signal(&r->freed);
    pthread_mutex_unlock(&r->lock);
}

/* Run one command.  Returns the reply (the caller frees it), or NULL with
 * *rc set (-ENOTCONN, -ETIMEDOUT, -EPROTO, -ENOMEM). */
static redisReply *command(struct sf_remote *r, int *rc, const char *fmt, ...)
{
    struct conn k;
    redisReply *rep;
    va_list ap;
    char why[300];

    if ((*rc = borrow(r, &k)))
        return NULL;
    va_start(ap, fmt);
    *rc = vcall(r, k.c, &rep, fmt, ap);
    va_end(ap);
    if (*rc) {
        snprintf(why, sizeof why, "%s (%s)", *rc == -ETIMEDOUT ? "no answer within the timeout" : "connection lost",
                 k.c->errstr);
        give_back(r, k, why);
        return NULL;
    }
    give_back(r, k, NULL);
    *rc = 0;
    return rep;
}

/* ---- names ------------------------------------------------------------------ */

static void name(const struct sf_remote *r, const char *kind, const uint8_t key[SF_CACHE_KEY_LEN],
                 char out[NAME_MAX_LEN])
{
    int n = snprintf(out, NAME_MAX_LEN, "%s%s", r->prefix, kind);
    for (int i = 0; i < SF_CACHE_KEY_LEN && n + 2 < NAME_MAX_LEN; i++)
        n += snprintf(out + n, (size_t)(NAME_MAX_LEN - n), "%02x", key[i]);
}

/* ---- open / close -------------------------------------------------------------- */

static int parse_url(struct sf_remote *r, const char *url, char *why, size_t whylen)
{
    if (!strncmp(url, "unix:", 5)) {
        const char *p = url + 5;
        if (!strncmp(p, "//", 2))
            p += 2;
        if (!*p) {
            snprintf(why, whylen, "redis: '%s' names no socket (unix:PATH)", url);
            return -EINVAL;
        }
        if (*p != '/') {        /* relative: to where it was given (a mount leaves it for /) */
            char cwd[PATH_MAX];
            if (!getcwd(cwd, sizeof cwd)) {
                snprintf(why, whylen, "redis: '%s': the current folder: %s", url, strerror(errno));
                return -errno;
            }
            if (asprintf(&r->path, "%s/%s", cwd, p) < 0) {
                r->path = NULL;
                return -ENOMEM;
            }
            return 0;
        }
        return (r->path = strdup(p)) ? 0 : -ENOMEM;
    }
    if (!strncmp(url, "tcp://", 6) || !strncmp(url, "redis://", 8)) {
        const char *h = strstr(url, "://") + 3, *end, *colon;
        uint64_t port = 6379;
        if (*h == '[') {                        /* [v6 address] */
            end = strchr(h, ']');
            if (!end)
                goto bad;
            colon = end[1] == ':' ? end + 1 : end[1] ? NULL : end + 1;
            if (!colon)
                goto bad;
            h++;
        } else {
            colon = strchr(h, ':');
            end = colon ? colon : h + strlen(h);
        }
        if (end == h || strchr(h, '/'))
            goto bad;
        if (*colon == ':' && sf_parse_u64(colon + 1, 1, 65535, &port))
            goto bad;
        r->port = (int)port;
        return (r->host = strndup(h, (size_t)(end - h))) ? 0 : -ENOMEM;
    }
bad:
    snprintf(why, whylen, "redis: '%s' is not unix:PATH or tcp://HOST[:PORT]", url);
    return -EINVAL;
}

/* A secret's file that others can read is warned about, naming the option. */
static void warn_if_shared(const char *opt, const char *file)
{
    struct stat st;

    if (stat(file, &st) == 0 && (st.st_mode & 077))
        sf_warn("%s: %s can be read by others (chmod 600 it)", opt, file);
}

static int read_password(struct sf_remote *r, const char *file, char *why, size_t whylen)
{
    uint8_t *d;
    size_t len, n;
    int rc = sf_read_file(file, 4096, &d, &len);

    if (rc) {
        snprintf(why, whylen, "redis_auth: %s: %s", file, rc == -EFBIG ? "larger than a password" : strerror(-rc));
        return rc == -EFBIG ? -EINVAL : rc;
    }
    for (n = 0; n < len && d[n] != '\n' && d[n] != '\r'; n++)
        if (!d[n])
            break;
    if (n == 0 || (n < len && !d[n])) {
        snprintf(why, whylen, "redis_auth: %s: %s", file, n == 0 ? "the first line is empty" : "contains a NUL byte");
        free(d);
        return -EINVAL;
    }
    warn_if_shared("redis_auth", file);
    r->password = strndup((char *)d, n);
    memset(d, 0, len);
    free(d);
    return r->password ? 0 : -ENOMEM;
}

/* redis_key=FILE: the whole file is the secret (a final newline is
 * dropped), 16 to 256 bytes. */
static int read_mac_key(struct sf_remote *r, const char *file, char *why, size_t whylen)
{
    uint8_t *d;
    size_t len;
    int rc = sf_read_file(file, sizeof r->mac_key + 2, &d, &len);

    if (rc) {
        snprintf(why, whylen, "redis_key: %s: %s", file, rc == -EFBIG ? "longer than 256 bytes" : strerror(-rc));
        return rc == -EFBIG ? -EINVAL : rc;
    }
    while (len && (d[len - 1] == '\n' || d[len - 1] == '\r'))
        len--;
    if (len < 16 || len > sizeof r->mac_key) {
        snprintf(why, whylen, "redis_key: %s: the secret must be 16 to 256 bytes (head -c 32 /dev/urandom | base64 >FILE)",
                 file);
        free(d);
        return -EINVAL;
    }
    warn_if_shared("redis_key", file);
    memcpy(r->mac_key, d, len);
    r->mac_keylen = len;
    memset(d, 0, len);
    free(d);
    if (!(r->mac = EVP_MAC_fetch(NULL, "HMAC", NULL))) {
        snprintf(why, whylen, "redis_key: OpenSSL has no HMAC here");
        return -ENOSYS;
    }
    return 0;
}

/* The entry's MAC (cache.h): HMAC-SHA256 under the secret over the Redis
 * key's name and the value with bytes 56..63 taken as zero, cut to its
 * first 8 bytes.  Binding the name stops an entry from being replayed
 * under another key.  Returns 0, or -EIO when OpenSSL fails. */
static int entry_mac(const struct sf_remote *r, const char *name, const uint8_t *v, size_t vlen, uint8_t out[8])
{
    static const uint8_t zero[8];
    uint8_t md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                            OSSL_PARAM_construct_end() };
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(r->mac);
    int ok = ctx && EVP_MAC_init(ctx, r->mac_key, r->mac_keylen, params) &&
             EVP_MAC_update(ctx, (const uint8_t *)name, strlen(name)) && EVP_MAC_update(ctx, v, 56) &&
             EVP_MAC_update(ctx, zero, 8) && EVP_MAC_update(ctx, v + 64, vlen - 64) &&
             EVP_MAC_final(ctx, md, &mdlen, sizeof md) && mdlen >= 8;

    EVP_MAC_CTX_free(ctx);
    if (!ok)
        return -EIO;
    memcpy(out, md, 8);
    return 0;
}

static void remote_free(struct sf_remote *r)
{
    memset(r->mac_key, 0, sizeof r->mac_key);
    EVP_MAC_free(r->mac);
    free(r->url);
    free(r->host);
    free(r->path);
    free(r->prefix);
    if (r->password) {
        memset(r->password, 0, strlen(r->password));
        free(r->password);
    }
    free(r);
}

int sf_remote_open(const struct sf_remote_opts *o, struct sf_remote **out, char *why, size_t whylen)
{
    struct sf_remote *r = calloc(1, sizeof *r);
    char host[128] = "?", dwhy[256];
    redisContext *c;
    int rc;

    *out = NULL;
    if (!r) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    if (!(r->url = strdup(o->url)) ||
        !(r->prefix = strdup(o->prefix ? o->prefix : SF_REMOTE_DEFAULT_PREFIX))) {
        snprintf(why, whylen, "out of memory");
        rc = -ENOMEM;
        goto out_free;
    }
    if (strlen(r->prefix) > 200) {
        snprintf(why, whylen, "redis_prefix: longer than 200 bytes");
        rc = -EINVAL;
        goto out_free;
    }
    if ((rc = parse_url(r, o->url, why, whylen)))
        goto out_free;
    if (o->key_file && (rc = read_mac_key(r, o->key_file, why, whylen)))
        goto out_free;
    if (o->auth_file && (rc = read_password(r, o->auth_file, why, whylen)))
        goto out_free;
    r->ttl_s = o->ttl_s ? o->ttl_s : SF_REMOTE_DEFAULT_TTL_S;
    r->lease_ms = o->lease_ms ? o->lease_ms : SF_REMOTE_DEFAULT_LEASE_MS;
    r->timeout_ms = o->timeout_ms ? o->timeout_ms : SF_REMOTE_DEFAULT_TIMEOUT_MS;
    gethostname(host, sizeof host - 1);
    snprintf(r->holder, sizeof r->holder, "%s:%ld", host, (long)getpid());
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->freed, NULL);
    /* One connection now, to say at once whether Redis is there. */
    if ((c = dial(r, dwhy, sizeof dwhy))) {
        r->pool[r->nfree++] = (struct conn){ c, 0 };
        r->nopen = 1;
    } else {
        mark_down_locked(r, dwhy);
    }
    *out = r;
    return 0;
out_free:
    remote_free(r);
    return rc;
}

void sf_remote_close(struct sf_remote *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->nfree; i++)
        redisFree(r->pool[i].c);
    pthread_cond_destroy(&r->freed);
    pthread_mutex_destroy(&r->lock);
    remote_free(r);
}

const struct sf_remote_counters *sf_remote_counters(const struct sf_remote *r) { return &r->n; }
uint64_t sf_remote_lease_ms(const struct sf_remote *r) { return r->lease_ms; }
const char *sf_remote_url(const struct sf_remote *r) { return r->url; }

/* ---- entries ----------------------------------------------------------------- */

/* Drop the entry named k (a damaged, forged or oversized one): logged,
 * counted, deleted.  A good entry another host stored meanwhile goes too:
 * it is then computed again, which costs time and nothing else. */
static void drop_named(struct sf_remote *r, const char *k, const char *why)
{
    redisReply *d;
    int rc;

    sf_warn("redis %s: dropping entry %s: %s; computing it again", r->url, k, why);
    atomic_fetch_add(&r->n.damaged, 1);
    if ((d = command(r, &rc, "DEL %s", k)))
        freeReplyObject(d);
}

void sf_remote_drop(struct sf_remote *r, const uint8_t key[SF_CACHE_KEY_LEN], const char *why)
{
    char k[NAME_MAX_LEN];

    name(r, "r:", key, k);
    drop_named(r, k, why);
}

/* With a secret: the entry must be signed (flags bit 0) with a MAC that
 * checks.  0 or -EIO. */
static int signature_ok(const struct sf_remote *r, const char *k, const uint8_t *v, size_t vlen)
{
    uint8_t mac[8];

    if (!r->mac_keylen)
        return 0;
    if (!(v[44] & 1) || entry_mac(r, k, v, vlen, mac) || memcmp(mac, v + 56, 8))
        return -EIO;
    return 0;
}

/* GET, unless the value is over SF_REMOTE_MAX_VALUE: one round trip
 * (a script answers the length instead of a value that long). */
static const char get_capped[] =
    "local n = redis.call('strlen', KEYS[1]) if n > tonumber(ARGV[1]) then return n end "
    "return redis.call('get', KEYS[1])";

int sf_remote_get(struct sf_remote *r, const uint8_t key[SF_CACHE_KEY_LEN], uint8_t **data, size_t *len,
                  struct sf_entry_meta *meta)
{
    char k[NAME_MAX_LEN], why[96];
    struct sf_entry_meta m;
    redisReply *rep;
    int rc;

    name(r, "r:", key, k);
    if (!(rep = command(r, &rc, "EVAL %s 1 %s %llu", get_capped, k, (unsigned long long)SF_REMOTE_MAX_VALUE)))
        return rc;
    if (rep->type == REDIS_REPLY_NIL) {
        rc = -ENOENT;
        atomic_fetch_add(&r->n.misses, 1);
    } else if (rep->type == REDIS_REPLY_INTEGER) {
        snprintf(why, sizeof why, "%lld bytes, over the %llu a value may have", rep->integer,
                 (unsigned long long)SF_REMOTE_MAX_VALUE);
        freeReplyObject(rep);
        drop_named(r, k, why);
        return -ENOENT;
    } else if (rep->type != REDIS_REPLY_STRING) {
        reply_warn(r, "reading an entry", rep);
        rc = redis_errno(NULL, rep);
    } else if ((rc = sf_entry_check(rep->str, rep->len, &m)) || signature_ok(r, k, (uint8_t *)rep->str, rep->len)) {
        snprintf(why, sizeof why, "%s (%zu bytes)", rc ? "damaged" : "not signed with redis_key's secret",
                 (size_t)rep->len);
        freeReplyObject(rep);
        drop_named(r, k, why);
        return -ENOENT;
    } else if (!(*data = malloc(m.data_len ? m.data_len : 1))) {
        rc = -ENOMEM;
    } else {
        memcpy(*data, rep->str + SF_CACHE_HDR_LEN, m.data_len);
        *len = m.data_len;
        if (meta)
            *meta = m;
        atomic_fetch_add(&r->n.hits, 1);
        rc = 0;
    }
    freeReplyObject(rep);
    return rc;
}

int sf_remote_exists(struct sf_remote *r, const uint8_t key[SF_CACHE_KEY_LEN])
{
    char k[NAME_MAX_LEN];
    redisReply *rep;
    int rc;

    name(r, "r:", key, k);
    if (!(rep = command(r, &rc, "EXISTS %s", k)))
        return rc;
    if (rep->type == REDIS_REPLY_INTEGER)
        rc = rep->integer > 0 ? 0 : -ENOENT;
    else {
        reply_warn(r, "looking up an entry", rep);
        rc = redis_errno(NULL, rep);
    }
    freeReplyObject(rep);
    return rc;
}

int sf_remote_put(struct sf_remote *r, const uint8_t key[SF_CACHE_KEY_LEN], const void *data, size_t len,
                  uint32_t width, uint32_t height, uint32_t format)
{
    char k[NAME_MAX_LEN];
    uint8_t *v = malloc(SF_CACHE_HDR_LEN + len);
    redisReply *rep;
    int rc;

    if (!v)
        return -ENOMEM;
    if (SF_CACHE_HDR_LEN + len > SF_REMOTE_MAX_VALUE) {
        free(v);
        return -EFBIG;          /* no reader would take it */
    }
    sf_entry_header(v, data, len, width, height, format, sf_now());
    memcpy(v + SF_CACHE_HDR_LEN, data, len);
    name(r, "r:", key, k);
    if (r->mac_keylen) {        /* signed: flags bit 0, the MAC at 56 (cache.h) */
        v[44] |= 1;
        if (entry_mac(r, k, v, SF_CACHE_HDR_LEN + len, v + 56)) {
            free(v);
            return -EIO;
        }
    }
    rep = command(r, &rc, "SET %s %b PX %llu", k, v, SF_CACHE_HDR_LEN + len,
                  (unsigned long long)(r->ttl_s * 1000));
    free(v);
    if (!rep)
        return rc;
    if (rep->type == REDIS_REPLY_STATUS) {
        atomic_fetch_add(&r->n.stores, 1);
        rc = 0;
    } else {
        reply_warn(r, "storing an entry", rep);
        rc = redis_errno(NULL, rep);
    }
    freeReplyObject(rep);
    return rc;
}

/* ---- leases ------------------------------------------------------------------ */

int sf_remote_lease(struct sf_remote *r, const uint8_t key[SF_CACHE_KEY_LEN], char token[SF_REMOTE_TOKEN_LEN])
{
    char k[NAME_MAX_LEN];
    struct timespec ts;
    redisReply *rep;
    int rc;

    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(token, SF_REMOTE_TOKEN_LEN, "%.40s:%llx:%lx", r->holder,
             (unsigned long long)atomic_fetch_add(&r->token_seq, 1), (long)ts.tv_nsec);
    name(r, "l:", key, k);
    if (!(rep = command(r, &rc, "SET %s %s NX PX %llu", k, token, (unsigned long long)r->lease_ms)))
        return rc;
    if (rep->type == REDIS_REPLY_STATUS)
        rc = 0;
    else if (rep->type == REDIS_REPLY_NIL)
        rc = -EBUSY;
    else {
        reply_warn(r, "taking a lease", rep);
        rc = redis_errno(NULL, rep);
    }
    freeReplyObject(rep);
    return rc;
}

int sf_remote_release(struct sf_remote *r, const uint8_t key[SF_CACHE_KEY_LEN], const char *token, int ok)
{
    char k[NAME_MAX_LEN], ch[NAME_MAX_LEN];
    redisReply *rep;
    int rc;

    name(r, "l:", key, k);
    if (!(rep = command(r, &rc, "EVAL %s 1 %s %s", RELEASE_LUA, k, token)))
        return rc;
    if (rep->type != REDIS_REPLY_INTEGER) {
        reply_warn(r, "releasing a lease", rep);
        rc = redis_errno(NULL, rep);
    }
    freeReplyObject(rep);
    if (rc)
        return rc;
    name(r, "done:", key, ch);
    if (!(rep = command(r, &rc, "PUBLISH %s %s", ch, ok ? "ok" : "failed")))
        return rc;
    freeReplyObject(rep);
    return 0;
}

int sf_remote_wait(struct sf_remote *r, const uint8_t key[SF_CACHE_KEY_LEN], double deadline,
                   const atomic_int *cancel)
{
    char l[NAME_MAX_LEN];
    long sleep_ms = 5;
    int rc;

    atomic_fetch_add(&r->n.waits, 1);
    name(r, "l:", key, l);
    for (;;) {
        redisReply *rep;
        if ((rc = sf_remote_exists(r, key)) != -ENOENT)
            return rc;
        if (!(rep = command(r, &rc, "EXISTS %s", l)))
            return rc;
        rc = rep->type == REDIS_REPLY_INTEGER ? (rep->integer ? 1 : 0) : redis_errno(NULL, rep);
        if (rc < 0)
            reply_warn(r, "looking up a lease", rep);
        freeReplyObject(rep);
        if (rc <= 0)
            return rc;              /* the lease is free, or an error */
        double now = sf_monotonic();
        if (now >= deadline)
            return -ETIMEDOUT;
        if (cancel && atomic_load(cancel))
            return -ECANCELED;
        if (now + sleep_ms / 1e3 > deadline)
            sleep_ms = (long)((deadline - now) * 1e3) + 1;
        struct timespec ts = { sleep_ms / 1000, sleep_ms % 1000 * 1000000L };
        nanosleep(&ts, NULL);
        sleep_ms = sleep_ms * 2 > 100 ? 100 : sleep_ms * 2;
    }
}

/* A SCAN MATCH pattern (pat: 2 * NAME_MAX_LEN + 4 bytes): the prefix with
 * its glob characters escaped, then tail ("r:*"). */
static void prefix_glob(const struct sf_remote *r, const char *tail, char *pat)
{
    size_t n = 0;

    for (const char *p = r->prefix; *p; p++) {
        if (strchr("*?[]\\", *p))
            pat[n++] = '\\';
        pat[n++] = *p;
    }
    snprintf(pat + n, 8, "%s", tail);
}

/* ---- the work queue (remote.h: the stream, its group, the heartbeat) ----------- */

#define GROUP "workers"

static void hex_of(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static int unhex(const char *s, size_t len, uint8_t *out, size_t n)
{
    if (len != 2 * n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -EINVAL;
        out[i] = (uint8_t)v;
    }
    return 0;
}

int sf_remote_workers_alive(struct sf_remote *r)
{
    char k[NAME_MAX_LEN];
    redisReply *rep;
    int rc;

    snprintf(k, sizeof k, "%sworkers", r->prefix);
    if (!(rep = command(r, &rc, "EXISTS %s", k)))
        return rc;
    rc = rep->type == REDIS_REPLY_INTEGER ? (rep->integer ? 0 : -ENOENT) : redis_errno(NULL, rep);
    freeReplyObject(rep);
    return rc;
}

int sf_remote_queue_depth(struct sf_remote *r, uint64_t *n)
{
    char k[NAME_MAX_LEN];
    redisReply *rep;
    int rc;

    snprintf(k, sizeof k, "%sjobs", r->prefix);
    if (!(rep = command(r, &rc, "XLEN %s", k)))
        return rc;
    rc = rep->type == REDIS_REPLY_INTEGER ? 0 : redis_errno(NULL, rep);
    *n = rc ? 0 : (uint64_t)rep->integer;
    freeReplyObject(rep);
    return rc;
}

int sf_remote_enqueue(struct sf_remote *r, const struct sf_job *j, const uint8_t *src, size_t len)
{
    char k[NAME_MAX_LEN], hk[33], hd[33];
    redisReply *rep;
    int rc;

    if ((rc = sf_remote_put_blob(r, "src:", j->key, src, len, SF_JOB_SOURCE_TTL_MS)))
        return rc;
    hex_of(j->key, 16, hk);
    hex_of(j->digest, 16, hd);
    snprintf(k, sizeof k, "%sjobs", r->prefix);
    {
        char hc[33] = "";
        if (j->has_content)
            hex_of(j->content, 16, hc);
        if (!(rep = command(r, &rc, "XADD %s * key %s token %s style %s digest %s fmt %u max_side %d quality %d "
                                    "strip_meta %d from %s content %s", k, hk, j->token, j->style, hd, (unsigned)j->fmt,
                            j->max_side, j->quality, j->strip_meta, r->holder, hc)))
            return rc;
    }
    rc = rep->type == REDIS_REPLY_STRING ? 0 : redis_errno(NULL, rep);
    if (rc)
        reply_warn(r, "queueing a job", rep);
    freeReplyObject(rep);
    return rc;
}

/* A job's fields from a stream entry [id, [field, value, ...]]: 0, or
 * -EINVAL (a malformed entry: the caller acknowledges and drops it). */
static int job_of(const redisReply *e, struct sf_job *j)
{
    const redisReply *f;
    int got = 0;

    memset(j, 0, sizeof *j);
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
        return -EINVAL;
    snprintf(j->id, sizeof j->id, "%s", e->element[0]->str);
    f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY)
        return -EINVAL;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *n = f->element[i], *v = f->element[i + 1];
        long x;
        if (n->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            return -EINVAL;
        x = strtol(v->str, NULL, 10);
        if (!strcmp(n->str, "key"))
            got |= unhex(v->str, v->len, j->key, 16) ? 0 : 1;
        else if (!strcmp(n->str, "digest"))
            got |= unhex(v->str, v->len, j->digest, 16) ? 0 : 2;
        else if (!strcmp(n->str, "token") && v->len < sizeof j->token)
            got |= (snprintf(j->token, sizeof j->token, "%s", v->str), 4);
        else if (!strcmp(n->str, "style") && v->len < sizeof j->style)
            got |= (snprintf(j->style, sizeof j->style, "%s", v->str), 8);
        else if (!strcmp(n->str, "fmt"))
            got |= (j->fmt = (uint32_t)x, 16);
        else if (!strcmp(n->str, "max_side"))
            got |= (j->max_side = (int)x, 32);
        else if (!strcmp(n->str, "quality"))
            got |= (j->quality = (int)x, 64);
        else if (!strcmp(n->str, "strip_meta"))
            got |= (j->strip_meta = (int)x, 128);
        else if (!strcmp(n->str, "from") && v->len < sizeof j->from)
            snprintf(j->from, sizeof j->from, "%s", v->str);
        else if (!strcmp(n->str, "content") && v->len)
            j->has_content = unhex(v->str, v->len, j->content, 16) == 0;
    }
    return got == 255 ? 0 : -EINVAL;
}

struct sf_remote_consumer {
    struct sf_remote *r;
    pthread_mutex_t lock;       /* protects c's lifetime and stop against interrupt */
    redisContext *c;            /* its own, not the pool's: it blocks */
    char name[96];
    atomic_int stop;
};

int sf_remote_consumer_open(struct sf_remote *r, const char *cname, struct sf_remote_consumer **out)
{
    struct sf_remote_consumer *q = calloc(1, sizeof *q);

    if (!q)
        return -ENOMEM;
    q->r = r;
    pthread_mutex_init(&q->lock, NULL);
    snprintf(q->name, sizeof q->name, "%s", cname);
    *out = q;
    return 0;
}

void sf_remote_consumer_interrupt(struct sf_remote_consumer *q)
{
    pthread_mutex_lock(&q->lock);
    atomic_store(&q->stop, 1);
    if (q->c && q->c->fd >= 0)
        shutdown(q->c->fd, SHUT_RDWR);  /* the blocked read returns */
    pthread_mutex_unlock(&q->lock);
}

void sf_remote_consumer_close(struct sf_remote_consumer *q)
{
    if (!q)
        return;
    if (q->c)
        redisFree(q->c);
    pthread_mutex_destroy(&q->lock);
    free(q);
}

/* Connect (again), and make the group (from the stream's start, so that
 * jobs queued before any worker came are served).  0 or -ENOTCONN. */
static int consumer_dial(struct sf_remote_consumer *q)
{
    char why[256], k[NAME_MAX_LEN];
    redisReply *rep;
    int rc;

    if (q->c)
        return 0;
    if (!(q->c = dial(q->r, why, sizeof why))) {
        sf_warn("redis %s: %s", q->r->url, why);
        return -ENOTCONN;
    }
    snprintf(k, sizeof k, "%sjobs", q->r->prefix);
    rc = call(q->r, q->c, &rep, "XGROUP CREATE %s " GROUP " 0 MKSTREAM", k);
    if (!rc && rep->type == REDIS_REPLY_ERROR && strncmp(rep->str, "BUSYGROUP", 9)) {
        reply_warn(q->r, "creating the workers' group", rep);
        rc = -EPROTO;
    }
    if (rep)
        freeReplyObject(rep);
    if (rc) {
        redisFree(q->c);
        q->c = NULL;
        return rc == -EPROTO ? rc : -ENOTCONN;
    }
    redisSetTimeout(q->c, (struct timeval){ 0, 0 });    /* XREADGROUP BLOCK 0 waits as long as it must */
    return 0;
}

int sf_remote_job_next(struct sf_remote_consumer *q, struct sf_job *j)
{
    char k[NAME_MAX_LEN];
    redisReply *rep = NULL;
    int rc;

    for (;;) {
        /* under the lock up to the blocking read: an interrupt either
         * comes before (stop is seen here) or finds c to shut down */
        pthread_mutex_lock(&q->lock);
        if (atomic_load(&q->stop)) {
            pthread_mutex_unlock(&q->lock);
            return -ECANCELED;
        }
        if ((rc = consumer_dial(q))) {
            pthread_mutex_unlock(&q->lock);
            return rc;
        }
        snprintf(k, sizeof k, "%sjobs", q->r->prefix);
        rc = redisAppendCommand(q->c, "XREADGROUP GROUP " GROUP " %s COUNT 1 BLOCK 0 STREAMS %s >", q->name, k);
        pthread_mutex_unlock(&q->lock);
        if (rc != REDIS_OK)
            return -ENOMEM;
        rc = read_reply_within(q->r, q->c, &rep, 0);
        if (rc) {
            if (!atomic_load(&q->stop))
                sf_warn("redis %s: waiting for jobs: %s", q->r->url, q->c->errstr);
            pthread_mutex_lock(&q->lock);
            redisFree(q->c);
            q->c = NULL;
            pthread_mutex_unlock(&q->lock);
            return atomic_load(&q->stop) ? -ECANCELED : rc;
        }
        /* [[stream, [[id, [f, v, ...]]]]] */
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 && rep->element[0]->type == REDIS_REPLY_ARRAY &&
            rep->element[0]->elements == 2 && rep->element[0]->element[1]->type == REDIS_REPLY_ARRAY &&
            rep->element[0]->element[1]->elements == 1) {
            const redisReply *e = rep->element[0]->element[1]->element[0];
            rc = job_of(e, j);
            if (rc && e->type == REDIS_REPLY_ARRAY && e->elements >= 1 && e->element[0]->type == REDIS_REPLY_STRING) {
                snprintf(j->id, sizeof j->id, "%s", e->element[0]->str);
                sf_warn("redis %s: a malformed job %s; dropping it", q->r->url, j->id);
                sf_remote_job_done(q->r, j, 0);
                rc = -EAGAIN;
            }
        } else if (rep->type == REDIS_REPLY_ERROR && !strncmp(rep->str, "NOGROUP", 7)) {
            /* the stream went (FLUSHALL, an eviction, a restart without
             * persistence): dial again, which makes the group again */
            sf_notice("redis %s: the job stream or its group is gone; making it again", q->r->url);
            pthread_mutex_lock(&q->lock);
            redisFree(q->c);
            q->c = NULL;
            pthread_mutex_unlock(&q->lock);
            rc = -EAGAIN;
        } else if (rep->type == REDIS_REPLY_ERROR) {
            sf_warn("redis %s: waiting for jobs: %s", q->r->url, rep->str);
            rc = -EPROTO;
        } else {
            rc = -EAGAIN;           /* nothing (a nil reply) */
        }
        freeReplyObject(rep);
        if (rc != -EAGAIN)
            return rc;
    }
}

int sf_remote_put_blob(struct sf_remote *r, const char *kind, const uint8_t id[16], const void *d, size_t n,
                       uint64_t ttl_ms)
{
    char k[NAME_MAX_LEN];
    redisReply *rep;
    int rc;

    if (n > SF_REMOTE_MAX_VALUE)
        return -EFBIG;
    name(r, kind, id, k);
    if (!(rep = command(r, &rc, "SET %s %b PX %llu", k, d, n, (unsigned long long)ttl_ms)))
        return rc;
    rc = rep->type == REDIS_REPLY_STATUS ? 0 : redis_errno(NULL, rep);
    if (rc)
        reply_warn(r, "storing a job's bytes", rep);
    freeReplyObject(rep);
    return rc;
}

int sf_remote_touch_blob(struct sf_remote *r, const char *kind, const uint8_t id[16], uint64_t ttl_ms)
{
    char k[NAME_MAX_LEN];
    redisReply *rep;
    int rc;

    name(r, kind, id, k);
    if (!(rep = command(r, &rc, "PEXPIRE %s %llu", k, (unsigned long long)ttl_ms)))
        return rc;
    rc = rep->type != REDIS_REPLY_INTEGER ? redis_errno(NULL, rep) : rep->integer ? 0 : -ENOENT;
    freeReplyObject(rep);
    return rc;
}

int sf_remote_get_blob(struct sf_remote *r, const char *kind, const uint8_t id[16], uint8_t **d, size_t *n)
{
    char k[NAME_MAX_LEN];
    redisReply *rep;
    int rc;

    name(r, kind, id, k);
    if (!(rep = command(r, &rc, "EVAL %s 1 %s %llu", get_capped, k, (unsigned long long)SF_REMOTE_MAX_VALUE)))
        return rc;
    if (rep->type == REDIS_REPLY_NIL)
        rc = -ENOENT;
    else if (rep->type == REDIS_REPLY_INTEGER)
        rc = -EFBIG;
    else if (rep->type != REDIS_REPLY_STRING)
        rc = redis_errno(NULL, rep);
    else if (!(*d = malloc(rep->len ? rep->len : 1)))
        rc = -ENOMEM;
    else {
        memcpy(*d, rep->str, rep->len);
        *n = rep->len;
    }
    freeReplyObject(rep);
    return rc;
}

int sf_remote_job_source(struct sf_remote *r, const struct sf_job *j, uint8_t **src, size_t *len)
{
    return sf_remote_get_blob(r, "src:", j->key, src, len);
}

int sf_remote_job_done(struct sf_remote *r, const struct sf_job *j, int drop_source)
{
    static const char done[] =
        "redis.call('xack', KEYS[1], ARGV[1], ARGV[2]) redis.call('xdel', KEYS[1], ARGV[2]) "
        "if ARGV[3] == '1' then redis.call('del', KEYS[2]) end return 1";
    char k[NAME_MAX_LEN], s[NAME_MAX_LEN];
    redisReply *rep;
    int rc;

    snprintf(k, sizeof k, "%sjobs", r->prefix);
    name(r, "src:", j->key, s);
    if (!(rep = command(r, &rc, "EVAL %s 2 %s %s " GROUP " %s %d", done, k, s, j->id, drop_source ? 1 : 0)))
        return rc;
    rc = rep->type == REDIS_REPLY_INTEGER ? 0 : redis_errno(NULL, rep);
    if (rc)
        reply_warn(r, "acknowledging a job", rep);
    freeReplyObject(rep);
    return rc;
}

int sf_remote_job_lease(struct sf_remote *r, const struct sf_job *j, char token[SF_REMOTE_TOKEN_LEN])
{
    /* KEYS[1] the entry, KEYS[2] the lease; ARGV: the job's token, a new
     * token, the lease in ms.  0: done already; 1: the job's lease, ours
     * now (renewed); 2: a new lease; 3: another holder computes it. */
    static const char adopt[] =
        "if redis.call('exists', KEYS[1]) == 1 then return 0 end "
        "local v = redis.call('get', KEYS[2]) "
        "if v == ARGV[1] then redis.call('pexpire', KEYS[2], ARGV[3]) return 1 end "
        "if not v then redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3]) return 2 end return 3";
    char e[NAME_MAX_LEN], l[NAME_MAX_LEN], fresh[SF_REMOTE_TOKEN_LEN];
    struct timespec ts;
    redisReply *rep;
    int rc;

    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(fresh, sizeof fresh, "%.40s:%llx:%lx", r->holder,
             (unsigned long long)atomic_fetch_add(&r->token_seq, 1), (long)ts.tv_nsec);
    name(r, "r:", j->key, e);
    name(r, "l:", j->key, l);
    if (!(rep = command(r, &rc, "EVAL %s 2 %s %s %s %s %llu", adopt, e, l, j->token, fresh,
                        (unsigned long long)r->lease_ms)))
        return rc;
    if (rep->type != REDIS_REPLY_INTEGER) {
        reply_warn(r, "taking a job's lease", rep);
        rc = redis_errno(NULL, rep);
    } else if (rep->integer == 0) {
        rc = -EEXIST;
    } else if (rep->integer == 3) {
        rc = -EBUSY;
    } else {
        snprintf(token, SF_REMOTE_TOKEN_LEN, "%s", rep->integer == 1 ? j->token : fresh);
        rc = 0;
    }
    freeReplyObject(rep);
    return rc;
}

int sf_remote_job_refuse(struct sf_remote *r, const struct sf_job *j, const char *token, const char *why)
{
    char f[NAME_MAX_LEN];
    redisReply *rep;
    int rc;

    name(r, "f:", j->key, f);
    if ((rep = command(r, &rc, "SET %s %s PX %llu", f, why, (unsigned long long)SF_JOB_REFUSAL_TTL_MS)))
        freeReplyObject(rep);
    return sf_remote_release(r, j->key, token, 0);
}

int sf_remote_job_refused(struct sf_remote *r, const uint8_t key[SF_CACHE_KEY_LEN], char *why, size_t whylen)
{
    char f[NAME_MAX_LEN];
    redisReply *rep;
    int rc;

    name(r, "f:", key, f);
    if (!(rep = command(r, &rc, "GET %s", f)))
        return rc;
    if (rep->type == REDIS_REPLY_STRING) {
        snprintf(why, whylen, "%s", rep->str);
        rc = 0;
    } else {
        rc = rep->type == REDIS_REPLY_NIL ? -ENOENT : redis_errno(NULL, rep);
    }
    freeReplyObject(rep);
    return rc;
}

int sf_remote_heartbeat(struct sf_remote *r, const char *worker, const char *info, uint64_t ttl_ms)
{
    /* KEYS: w:ID, workers, jobs; ARGV: info, ttl, the lease.  Jobs pending
     * longer than a lease (their worker died) are queued again as new
     * entries, which wakes a blocked worker. */
    static const char beat[] =
        "redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) redis.call('set', KEYS[2], '1', 'PX', ARGV[2]) "
        "if redis.call('exists', KEYS[3]) == 0 then return 0 end "
        "local ok, r = pcall(redis.call, 'xautoclaim', KEYS[3], '" GROUP "', 'reclaim', ARGV[3], '0-0', 'COUNT', 16) "
        "if not ok then return 0 end "
        "local n = 0 "
        "for _, e in ipairs(r[2]) do "
        "  if e[2] then redis.call('xadd', KEYS[3], '*', unpack(e[2])) n = n + 1 end "
        "  redis.call('xack', KEYS[3], '" GROUP "', e[1]) redis.call('xdel', KEYS[3], e[1]) "
        "end return n";
    char w[NAME_MAX_LEN], all[NAME_MAX_LEN], k[NAME_MAX_LEN];
    redisReply *rep;
    int rc;

    snprintf(w, sizeof w, "%sw:%s", r->prefix, worker);
    snprintf(all, sizeof all, "%sworkers", r->prefix);
    snprintf(k, sizeof k, "%sjobs", r->prefix);
    if (!(rep = command(r, &rc, "EVAL %s 3 %s %s %s %s %llu %llu", beat, w, all, k, info, (unsigned long long)ttl_ms,
                        (unsigned long long)r->lease_ms)))
        return rc;
    if (rep->type != REDIS_REPLY_INTEGER) {
        reply_warn(r, "the heartbeat", rep);
        rc = redis_errno(NULL, rep);
    } else {
        if (rep->integer > 0)
            sf_warn("redis %s: %lld job(s) pending past the lease (their worker died) queued again", r->url,
                    rep->integer);
        rc = 0;
    }
    freeReplyObject(rep);
    return rc;
}

int sf_remote_queue_info(struct sf_remote *r, struct sf_queue_info *qi)
{
    /* workers alive (their heartbeat values), the depth, the oldest entry's
     * ID (milliseconds since the epoch first) */
    static const char info[] =
        "local out = {} local cur = '0' repeat "
        "  local s = redis.call('scan', cur, 'MATCH', ARGV[1], 'COUNT', 1000) cur = s[1] "
        "  for _, k in ipairs(s[2]) do local v = redis.call('get', k) if v then out[#out + 1] = v end end "
        "until cur == '0' "
        "local n = redis.call('exists', KEYS[1]) == 1 and redis.call('xlen', KEYS[1]) or 0 "
        "local first = n > 0 and redis.call('xrange', KEYS[1], '-', '+', 'COUNT', 1)[1][1] or '' "
        "return {n, first, out}";
    char k[NAME_MAX_LEN], pat[2 * NAME_MAX_LEN + 4];
    redisReply *rep;
    int rc;

    memset(qi, 0, sizeof *qi);
    prefix_glob(r, "w:*", pat);
    snprintf(k, sizeof k, "%sjobs", r->prefix);
    if (!(rep = command(r, &rc, "EVAL %s 1 %s %s", info, k, pat)))
        return rc;
    if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3 || rep->element[0]->type != REDIS_REPLY_INTEGER ||
        rep->element[1]->type != REDIS_REPLY_STRING || rep->element[2]->type != REDIS_REPLY_ARRAY) {
        reply_warn(r, "reading the queue", rep);
        rc = redis_errno(NULL, rep);
        freeReplyObject(rep);
        return rc;
    }
    qi->depth = (uint64_t)rep->element[0]->integer;
    if (rep->element[1]->len) {
        struct timespec ts;
        uint64_t first = strtoull(rep->element[1]->str, NULL, 10), now;
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        qi->oldest_ms = now > first ? now - first : 0;
    }
    for (size_t i = 0; i < rep->element[2]->elements && qi->nworkers < SF_QUEUE_MAX_WORKERS; i++) {
        const redisReply *v = rep->element[2]->element[i];
        if (v->type == REDIS_REPLY_STRING)
            snprintf(qi->workers[qi->nworkers++], sizeof qi->workers[0], "%s", v->str);
    }
    freeReplyObject(rep);
    return 0;
}

/* ---- stats ------------------------------------------------------------------- */

int sf_remote_stats(struct sf_remote *r, uint64_t *entries, uint64_t *bytes)
{
    char pat[2 * NAME_MAX_LEN + 4], cursor[32] = "0";
    struct conn k;
    int rc;

    *entries = *bytes = 0;
    prefix_glob(r, "r:*", pat);
    if ((rc = borrow(r, &k)))
        return rc;
    do {
        redisReply *rep;
        if ((rc = call(r, k.c, &rep, "SCAN %s MATCH %s COUNT 1000", cursor, pat)))
            goto out_broken;
        if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_STRING ||
            rep->element[1]->type != REDIS_REPLY_ARRAY) {
            reply_warn(r, "listing entries", rep);
            rc = redis_errno(NULL, rep);
            freeReplyObject(rep);
            give_back(r, k, NULL);
            return rc;
        }
        snprintf(cursor, sizeof cursor, "%s", rep->element[0]->str);
        redisReply *keys = rep->element[1];
        for (size_t i = 0; i < keys->elements; i++)
            redisAppendCommand(k.c, "STRLEN %b", keys->element[i]->str, (size_t)keys->element[i]->len);
        for (size_t i = 0; i < keys->elements; i++) {
            redisReply *len;
            if ((rc = read_reply(r, k.c, &len))) {
                freeReplyObject(rep);
                goto out_broken;
            }
            if (len->type == REDIS_REPLY_INTEGER && len->integer > 0) {
                (*entries)++;
                *bytes += (uint64_t)len->integer;
            }
            freeReplyObject(len);
        }
        freeReplyObject(rep);
    } while (strcmp(cursor, "0"));
    give_back(r, k, NULL);
    return 0;
out_broken:
    {
        char why[300];
        snprintf(why, sizeof why, "connection lost (%s)", k.c->errstr);
        give_back(r, k, why);
    }
    return rc;
}

const char *sf_remote_holder(const struct sf_remote *r) { return r->holder; }
