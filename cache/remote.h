/* remote.h: the shared result store, on Redis, that lets several hosts
 * (several mounts, `stylefs warm`) compute each image once for all of them.
 *
 * One Redis primary (not Redis Cluster: hiredis 0.14 cannot follow MOVED
 * redirects; a replica and sentinel may stand beside it).  Every key is
 * under a prefix (default "stylefs:"), so that clusters can share a Redis:
 *   PREFIX "r:" HEX   an entry: exactly the bytes of a local cache VALUE
 *                     (cache.h: the 64-byte header, then the encoded
 *                     image or vector), stored with SET ... PX ttl, at
 *                     most SF_REMOTE_MAX_VALUE bytes (read by a script
 *                     that answers the length of a longer one instead).
 *                     Checked like a local entry (header, length, XXH3-64
 *                     of the data), with redis_key's secret also signed
 *                     (cache.h: flags bit 0 and the MAC at 56, bound to
 *                     the key's name), and by the pipeline against its
 *                     kind (it must decode as the image its header
 *                     names) before it is served or kept; a damaged,
 *                     oversized, unsigned or unfit one is deleted.
 *   PREFIX "l:" HEX   the lease on computing HEX: SET NX PX lease, value
 *                     a token unique to the holder ("host:pid:random");
 *                     released by compare-and-delete (a Lua script), so a
 *                     holder whose lease expired never deletes another's.
 *   channel PREFIX "done:" HEX
 *                     the holder PUBLISHes "ok" or "failed" when it is
 *                     done.  Waiters here poll instead (GET, then whether
 *                     the lease still exists, with a backoff from 5 to
 *                     100 ms) and only while a reader waits.
 * HEX is the 32 lower-case hex digits of the 16-byte content key
 * (pipeline.c sf_key_make), so every host derives the same names.
 *
 * Faults never fail a read.  Every call is bounded by the timeout (connect,
 * send, and the whole reply), and a reply by its size (SF_REMOTE_MAX_VALUE
 * plus 1 MiB unread, SF_REMOTE_MAX_ELEMENTS elements): one past a bound
 * breaks its connection like garbage does.  A call that finds the connection broken marks Redis
 * down: one warning per outage, further calls return -ENOTCONN at once, and
 * one caller at a time tries to reconnect, at most once per second; the
 * first success logs that Redis is back.  A reply of the wrong type is
 * -EPROTO and leaves the connection up.
 *
 * DESIGN: one sf_remote per process, shared by its threads.  hiredis
 * contexts are not thread-safe, so each call borrows one from a small pool
 * (at most SF_REMOTE_CONNS; a caller finding none free waits, up to the
 * timeout, on `freed`).  `lock` protects the pool, the connection count,
 * the generation and the outage state; it is never held across network
 * I/O.  An outage bumps the generation: contexts of an older generation
 * are closed when they come back, so a restarted Redis gets fresh
 * connections.  The counters are atomics.
 *
 * All functions return 0 or -errno. */
#ifndef SF_REMOTE_H
#define SF_REMOTE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"

#define SF_REMOTE_CONNS 4
#define SF_REMOTE_DEFAULT_PREFIX "stylefs:"
#define SF_REMOTE_DEFAULT_TTL_S (30ULL * 86400)
#define SF_REMOTE_DEFAULT_LEASE_MS 30000
#define SF_REMOTE_DEFAULT_TIMEOUT_MS 1000
#define SF_REMOTE_TOKEN_LEN 64
/* The largest value stored or fetched (header included): a larger one is
 * neither written nor read (a forged 200 MB value took a daemon from 37 to
 * 674 MB).  A 50 MP styled JPEG is about 20 MB. */
#define SF_REMOTE_MAX_VALUE (64ULL << 20)
/* The most array elements one reply may hold, nested ones included (SCAN
 * answers at most a few thousand names): hiredis 0.14 would allocate 8
 * bytes per element claimed before any arrives (remote.c read_reply). */
#define SF_REMOTE_MAX_ELEMENTS (1 << 20)

struct sf_remote;

struct sf_remote_opts {
    const char *url;        /* "unix:PATH" or "tcp://HOST[:PORT]" (port 6379) */
    const char *auth_file;  /* NULL, or a file whose first line is the password */
    const char *key_file;   /* NULL, or a file holding the secret entries are signed with */
    const char *prefix;     /* NULL: SF_REMOTE_DEFAULT_PREFIX */
    uint64_t ttl_s;         /* 0: SF_REMOTE_DEFAULT_TTL_S */
    uint64_t lease_ms;      /* 0: SF_REMOTE_DEFAULT_LEASE_MS */
    uint64_t timeout_ms;    /* 0: SF_REMOTE_DEFAULT_TIMEOUT_MS */
};

/* What a process's store did (read by the mount's .stats). */
struct sf_remote_counters {
    atomic_ullong hits, misses, stores, damaged, errors, waits, outages;
};

/* Check the options (URL syntax, the password file) and try to connect
 * once.  Redis being unreachable is not an error: it is logged and the
 * store starts down.  Returns 0, -EINVAL (a bad URL or option: why says
 * which), -EACCES or -ENOENT (the password file), -ENOMEM. */
int sf_remote_open(const struct sf_remote_opts *o, struct sf_remote **out, char *why, size_t whylen);
void sf_remote_close(struct sf_remote *r);

const struct sf_remote_counters *sf_remote_counters(const struct sf_remote *r);
uint64_t sf_remote_lease_ms(const struct sf_remote *r);

/* Fetch the entry for key: on success *data (malloc'd) and *len hold the
 * encoded image and meta (may be NULL) its header.  A damaged entry, one
 * over SF_REMOTE_MAX_VALUE, or (with a secret) one not signed with it is
 * deleted, logged and reported as a miss.  Returns 0, -ENOENT (miss),
 * -ENOTCONN (Redis down), -ETIMEDOUT, -EPROTO (a reply of the wrong
 * type), -ENOMEM. */
int sf_remote_get(struct sf_remote *r, const uint8_t key[SF_CACHE_KEY_LEN], uint8_t **data, size_t *len,
                  struct sf_entry_meta *meta);
/* Drop the entry for key: a value the caller found unfit (it does not
 * decode as its kind).  Logged with why, counted as damaged, deleted. */
void sf_remote_drop(struct sf_remote *r, const uint8_t key[SF_CACHE_KEY_LEN], const char *why);
/* Whether the entry exists (not read, not checked).  Returns 0 (it
 * does), -ENOENT, or the errors of sf_remote_get. */
int sf_remote_exists(struct sf_remote *r, const uint8_t key[SF_CACHE_KEY_LEN]);
/* Store an entry with the TTL.  Returns 0, -ENOTCONN, -ETIMEDOUT, -ENOSPC
 * (Redis is out of memory under a maxmemory noeviction policy), -EPROTO
 * (another refusal, such as a value over proto-max-bulk-len), -EFBIG (over
 * SF_REMOTE_MAX_VALUE), -EIO (signing failed), -ENOMEM.  With a secret
 * the entry is signed (cache.h). */
int sf_remote_put(struct sf_remote *r, const uint8_t key[SF_CACHE_KEY_LEN], const void *data, size_t len,
                  uint32_t width, uint32_t height, uint32_t format);

/* Take the lease on computing key; token receives the holder's token.
 * Returns 0 (this process holds it), -EBUSY (another holder has it),
 * -ENOTCONN, -ETIMEDOUT, -EPROTO. */
int sf_remote_lease(struct sf_remote *r, const uint8_t key[SF_CACHE_KEY_LEN], char token[SF_REMOTE_TOKEN_LEN]);
/* Release a lease taken by sf_remote_lease (only if it is still this
 * token's) and publish the completion, "ok" or "failed".  Returns 0 or the
 * errors of sf_remote_lease; the caller has nothing to undo on failure
 * (the lease then expires by itself). */
int sf_remote_release(struct sf_remote *r, const uint8_t key[SF_CACHE_KEY_LEN], const char *token, int ok);
/* Wait, polling with backoff, until the entry exists or nobody holds the
 * lease any more, or until deadline (sf_monotonic seconds), or until
 * *cancel becomes non-zero (cancel may be NULL).  Returns 0 (look again:
 * the entry is there or the lease is free), -ETIMEDOUT (deadline),
 * -ECANCELED, -ENOTCONN, -EPROTO. */
int sf_remote_wait(struct sf_remote *r, const uint8_t key[SF_CACHE_KEY_LEN], double deadline,
                   const atomic_int *cancel);

/* Count the entries under the prefix and their bytes (SCAN and STRLEN;
 * for `stylefs stats`).  Returns 0, -ENOTCONN, -ETIMEDOUT, -EPROTO. */
int sf_remote_stats(struct sf_remote *r, uint64_t *entries, uint64_t *bytes);

/* The URL as given, for messages. */
const char *sf_remote_url(const struct sf_remote *r);

/* ---- the work queue: computations handed to workers -----------------------
 *
 * Keys, under the prefix:
 *   "jobs"        a stream; one consumer group, "workers".  An entry's
 *                 fields: key (32 hex, the content key), token (the lease
 *                 the mount took on key), style (its name with any
 *                 suffix), digest (32 hex, the style's), fmt (the output
 *                 format, enum sf_format), max_side, quality, strip_meta
 *                 (decimal), from (the mount's "host:pid").  A worker
 *                 acknowledges and deletes it when done, so XLEN is the
 *                 queue's depth.
 *   "src:" HEX    the job's source bytes, SET PX SF_JOB_SOURCE_TTL_MS by
 *                 the mount, deleted by the worker when done.
 *   "paint:" HEX  a painting style's bytes (HEX: their XXH3-128), SET PX
 *                 SF_JOB_SOURCE_TTL_MS by the mount with a job that names
 *                 them (field "content"), for a worker whose folders lack
 *                 the painting.
 *   "f:" HEX      a worker's refusal ("no style udnie with that digest"),
 *                 PX SF_JOB_REFUSAL_TTL_MS: the mount stops waiting.
 *   "w:" ID       a worker's heartbeat ("device jobs host:pid"), PX three
 *                 periods; "workers" ("1", the same TTL) is refreshed by
 *                 every live worker: a mount's one-key test.
 * A worker blocks in XREADGROUP (BLOCK 0) on a connection of its own; its
 * heartbeat (one EVAL every SF_HEARTBEAT_MS) also queues again, as new
 * entries, the jobs pending longer than a lease (XAUTOCLAIM): their
 * worker died, and the new entry wakes a blocked one.  The lease on a key
 * keeps computations to one: the mount takes it and names it in the job;
 * the worker renews it (or takes it anew once it expired) before it
 * computes, and releases it after storing the entry. */

#define SF_HEARTBEAT_MS 5000
#define SF_JOB_SOURCE_TTL_MS (10ULL * 60 * 1000)
#define SF_JOB_REFUSAL_TTL_MS 60000ULL
#define SF_QUEUE_MAX_WORKERS 64

struct sf_job {
    char id[64];                /* the stream entry's ID */
    uint8_t key[SF_CACHE_KEY_LEN];
    char token[SF_REMOTE_TOKEN_LEN];
    char style[256];
    uint8_t digest[16];
    uint32_t fmt;
    int max_side, quality, strip_meta;
    char from[200];
    int has_content;            /* a painting style: its bytes are under "paint:" HEX */
    uint8_t content[16];        /* ... HEX: their XXH3-128 (field "content", 32 hex) */
};

struct sf_queue_info {
    uint64_t depth, oldest_ms;  /* entries in the stream; the oldest's age */
    int nworkers;
    char workers[SF_QUEUE_MAX_WORKERS][160];    /* their heartbeats */
};

/* 0 when some worker's heartbeat is alive, -ENOENT when none, or the
 * store's errors (-ENOTCONN, -ETIMEDOUT, -EPROTO). */
int sf_remote_workers_alive(struct sf_remote *r);
/* The stream's length.  0 or the store's errors. */
int sf_remote_queue_depth(struct sf_remote *r, uint64_t *n);
/* Store the source (at most SF_REMOTE_MAX_VALUE: else -EFBIG) and queue
 * the job.  0 or the store's errors. */
int sf_remote_enqueue(struct sf_remote *r, const struct sf_job *j, const uint8_t *src, size_t len);
/* Workers, queue depth and the oldest job's age (stylefs stats --redis). */
int sf_remote_queue_info(struct sf_remote *r, struct sf_queue_info *qi);

/* A worker thread's consumer: its own connection, which blocks. */
struct sf_remote_consumer;
int sf_remote_consumer_open(struct sf_remote *r, const char *name, struct sf_remote_consumer **out);
/* Make a blocked sf_remote_job_next return -ECANCELED (signal-safe
 * enough: an atomic store and shutdown(2)). */
void sf_remote_consumer_interrupt(struct sf_remote_consumer *q);
void sf_remote_consumer_close(struct sf_remote_consumer *q);
/* Block until a job comes.  0 with *j, -ECANCELED (interrupted),
 * -ENOTCONN or -EPROTO (the connection failed: it is dialled again on the
 * next call), -ENOMEM.  A malformed entry is dropped and logged. */
int sf_remote_job_next(struct sf_remote_consumer *q, struct sf_job *j);
/* The job's source bytes (*src malloc'd).  0, -ENOENT (expired), -EFBIG,
 * or the store's errors. */
int sf_remote_job_source(struct sf_remote *r, const struct sf_job *j, uint8_t **src, size_t *len);
/* Before computing: the job's lease renewed (token = the job's), or a new
 * one taken once it expired (a fresh token).  0, -EEXIST (the entry is
 * stored already: nothing to do), -EBUSY (another holder computes it), or
 * the store's errors. */
int sf_remote_job_lease(struct sf_remote *r, const struct sf_job *j, char token[SF_REMOTE_TOKEN_LEN]);
/* Refuse a job (why, for the mount's log) and release its lease. */
int sf_remote_job_refuse(struct sf_remote *r, const struct sf_job *j, const char *token, const char *why);
/* A refusal of key's job: 0 with why, -ENOENT (none), the store's errors. */
int sf_remote_job_refused(struct sf_remote *r, const uint8_t key[SF_CACHE_KEY_LEN], char *why, size_t whylen);
/* Acknowledge and delete the entry, and with drop_source the source. */
int sf_remote_job_done(struct sf_remote *r, const struct sf_job *j, int drop_source);
/* The heartbeat of worker ID (info: "device jobs host:pid"), live for
 * ttl_ms; it also queues again the jobs pending past a lease. */
int sf_remote_heartbeat(struct sf_remote *r, const char *worker, const char *info, uint64_t ttl_ms);
/* A blob under PREFIX kind HEX(id) ("paint:"), at most SF_REMOTE_MAX_VALUE
 * bytes, for ttl_ms; and read back (*d malloc'd).  0, -ENOENT (none),
 * -EFBIG, or the store's errors. */
int sf_remote_put_blob(struct sf_remote *r, const char *kind, const uint8_t id[16], const void *d, size_t n,
                       uint64_t ttl_ms);
int sf_remote_get_blob(struct sf_remote *r, const char *kind, const uint8_t id[16], uint8_t **d, size_t *n);
/* The blob's TTL set to ttl_ms again: 0, -ENOENT (none), the store's errors. */
int sf_remote_touch_blob(struct sf_remote *r, const char *kind, const uint8_t id[16], uint64_t ttl_ms);
/* The holder name, "host:pid" (a worker's default ID). */
const char *sf_remote_holder(const struct sf_remote *r);

#endif
