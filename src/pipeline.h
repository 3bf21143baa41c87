/* pipeline.h: from source bytes to styled bytes, through the cache.
 *
 * One produce path (pipeline.c produce()) makes everything that is
 * computed and cached, so that the mount, `stylefs warm` and `stylefs
 * stylize` give the same bytes under the same keys for the same source,
 * style and settings:
 *   hash the input -> key (sf_key_make) -> cache hit?  else join a
 *   computation of the same key already running in this process; else,
 *   with a shared store (remote.h), its entry, or its lease (waiting for
 *   another host's computation while that host holds it); else compute
 *   -> store (locally, and in the shared store).
 * Two things go through it (cache.h KIND):
 *   sf_produce: a styled image.  Compute = decode -> fit to max_side ->
 *     engine (or, for a painting, its style vector and the transformer)
 *     -> the variant's finish (sf_finish) -> put alpha back -> encode; then the source's stat identity is
 *     aliased to the key.
 *   sf_style_vector: a painting's style vector.  Input = the painting's
 *     bytes, read once and checked against the hash taken at load;
 *     compute = decode -> the style predictor.
 * The naming rules (which sources are images, the name each is served
 * under) are the codec's: image.h sf_served_name.
 *
 * DESIGN: an sf_pipeline is shared by every thread of a process.  The
 * engine is opened on first use (not at mount, not on a cache hit) under
 * engine_lock; after that `engine` never changes until sf_pipeline_close
 * (with idle_s set, the engine itself releases its backend when idle and
 * reopens it on the next pass, see engine.h).  flights_lock protects the
 * list of computations in flight (of both kinds: their keys differ) and
 * every flight's fields; it is never held while computing, and the two
 * locks are never held together; mem_lock (the memory budget) is only
 * ever held alone.  A styled image's computation may lead or join its
 * painting's vector flight; a vector's never waits on an image, so
 * flights cannot wait on each other in a circle.  The counters are
 * atomics.
 * All functions return 0 or -errno. */
#ifndef SF_PIPELINE_H
#define SF_PIPELINE_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "engine.h"
#include "image.h"
#include "remote.h"
#include "style.h"

/* Bump when the engine's output or the encoders' bytes change: it is part
 * of every cache key, so old entries stop matching. */
#define SF_FORMAT_VERSION 5     /* 4: the source's EXIF, XMP and ICC profile kept; 5: in PNG and TIFF too */

#define SF_DEFAULT_MAX_SIDE 1024
#define SF_DEFAULT_QUALITY 90
/* Bytes a computation needs per pixel it runs the network on (measured:
 * peak RSS 275 MB at 1 MP, 2393 MB at 12 MP, CPU engine, AMD EPYC Zen 5),
 * for the memory budget. */
#define SF_MEM_PER_PIXEL 200
/* The same for a network style from SF_BANDS_FROM_PIXELS up, which the CPU
 * engine runs in bands: a base (its arena, up to about 0.5 GB) and a
 * little per pixel (the output, 3 bytes, and the encoder's), with the
 * source's 4 above: 1.25 GB at 44 MP against 0.93 GB measured from a HEIC
 * to JPEG and 1.20 GB (the HEIC encoder's) to HEIC, same machine. */
#define SF_MEM_BANDED_BASE (448u << 20)
#define SF_MEM_BANDED_PER_PIXEL 14

struct sf_settings {
    int max_side;           /* 0 = no downscale */
    uint64_t max_pixels;    /* refuse larger sources (header check) */
    int quality;            /* lossy formats' quality 1..100 */
    int strip_meta;         /* leave out the source's EXIF, XMP and ICC profile */
};

struct sf_flight;                   /* a computation in flight (pipeline.c) */

/* What the produce path did for one kind of value: cache hits, misses,
 * computations started, misses that joined one already running, misses
 * served from the shared store. */
struct sf_produce_counts {
    atomic_ullong hits, misses, computes, joins, remote_hits;
};

struct sf_pipeline {
    enum sf_device device;
    struct sf_settings set;
    struct sf_cache *cache;         /* NULL: no caching */
    struct sf_remote *remote;       /* the shared store, or NULL; set after init */
    pthread_mutex_t engine_lock;    /* guards opening `engine` */
    struct sf_engine *engine;       /* NULL until the first miss */
    unsigned idle_s;                /* release the engine after this idle time; 0 = never */
    const sf_cancel_flag *cancel;   /* set non-zero to abandon running passes */
    pthread_mutex_t flights_lock;   /* protects flights and every flight */
    struct sf_flight *flights;
    struct sf_produce_counts images;    /* sf_produce */
    struct sf_produce_counts vectors;   /* sf_style_vector: computes = predictions */
    /* the memory budget: computations admitted by their estimate (from
     * the source's header) while the sum stays within mem_max (0: none);
     * one over it alone is refused with -EFBIG */
    uint64_t mem_max;               /* set after init (default: sf_mem_default) */
    pthread_mutex_t mem_lock;       /* protects mem_used; held alone, briefly */
    pthread_cond_t mem_cond;        /* mem_used went down */
    uint64_t mem_used;
    /* sources served downscaled by max_side: how many, and the last one's
     * sizes packed as four 16-bit fields (from w, from h, to w, to h; the
     * 16k guard keeps each in 16 bits); the first is also a notice */
    atomic_ullong resized;
    atomic_ullong last_resize;
    /* handing computations to workers over the shared store's queue
     * (remote.h), set after init: compute is SF_COMPUTE_LOCAL (default),
     * _AUTO (when a worker is alive and the queue is shorter than
     * offload_max) or _REMOTE (never here); a job not done within
     * offload_timeout_s is computed here (auto) or fails (remote) */
    int compute;
    uint64_t offload_max;
    unsigned offload_timeout_s;
    atomic_ullong offloaded;        /* images a worker computed for a reader here */
    atomic_ullong offload_fallbacks;    /* images compute=auto computed here (no worker, a full queue,
                                         * Redis down, or the workers too slow) */
    atomic_ullong offload_wait_ms;  /* readers' total wait on workers */
};

enum { SF_COMPUTE_LOCAL = 0, SF_COMPUTE_AUTO, SF_COMPUTE_REMOTE };
#define SF_OFFLOAD_MAX_DEFAULT 64
#define SF_OFFLOAD_TIMEOUT_DEFAULT 30

/* One sf_produce call. */
struct sf_produce_req {
    const struct sf_model *model;
    enum sf_format fmt;             /* output format (sf_served_name) */
    const uint8_t *src;             /* the source bytes */
    size_t len;
    const uint8_t *id;              /* sf_source_id to alias to the key, or NULL */
    int peek;                       /* a hit need not be read: *out stays NULL (warm) */
    int publish;                    /* a local hit missing from the shared store is copied there (warm) */
    const char *what;               /* names the source in messages */
};

enum sf_produced { SF_PRODUCED_HIT = 1, SF_PRODUCED_COMPUTED, SF_PRODUCED_JOINED, SF_PRODUCED_REMOTE,
                   SF_PRODUCED_OFFLOADED };

void sf_settings_default(struct sf_settings *s);

/* XXH3-128 of bytes, canonical (big-endian) form. */
void sf_hash_bytes(const void *d, size_t n, uint8_t out[16]);

/* The cache key: XXH3-128 over the input's hash, the style's digest (a
 * network's weights, a painting style's; the networks' for a style
 * vector), the entry kind (cache.h: an image's output format, or
 * SF_ENTRY_STYLE_VECTOR), the settings that change output bytes (max_side;
 * quality for the lossy formats only; strip_meta; s may be NULL: none) and
 * SF_FORMAT_VERSION. */
void sf_key_make(const uint8_t src_hash[16], const uint8_t digest[16], uint32_t kind, const struct sf_settings *s,
                 uint8_t key[16]);

/* The stat identity of a source (device, inode, size, times) with the
 * output format, the settings and the style: the cache's alias for it, so
 * that a cached file's exact size is known without reading the source. */
struct stat;
void sf_source_id(const struct stat *st, enum sf_format fmt, const struct sf_settings *s,
                  const struct sf_model *m, uint8_t id[16]);

void sf_pipeline_init(struct sf_pipeline *p, enum sf_device dev, const struct sf_settings *s,
                      struct sf_cache *cache);
/* The default memory budget: half of the machine's memory, or of the
 * cgroup's limit when that is lower; 0 when neither reads. */
uint64_t sf_mem_default(void);
/* A computation's estimated memory: the decoded source (4 bytes a pixel)
 * and SF_MEM_PER_PIXEL for each pixel after fitting to max_side, or for a
 * network style (net) that bands, SF_MEM_BANDED_*. */
uint64_t sf_mem_estimate(int w, int h, int max_side, int net);
void sf_pipeline_close(struct sf_pipeline *p);

/* Stylize src without the cache.  On success *out is malloc'd and *ow, *oh
 * (either may be NULL) hold the output image's size.
 * It first takes its estimate from the memory budget, waiting while other
 * computations hold it.  Returns 0, -EINVAL (undecodable), -EFBIG (over
 * max_pixels, or alone over the memory budget), -ENOMEM, -ENODEV (engine
 * unavailable), -ECANCELED, -EIO. */
int sf_stylize(struct sf_pipeline *p, const struct sf_model *m, const uint8_t *src, size_t len,
               enum sf_format out_fmt, uint8_t **out, size_t *outlen, int *ow, int *oh,
               char *why, size_t whylen);

/* A style variant's finish on its network's output `styled` (pixels RGB
 * pixels, the photo's size), in place: a network's strength below 100
 * blends it with the photo in linear light; +colors keeps the output's
 * luminance with the photo's chroma (YIQ; Gatys et al. 2016, "Preserving
 * color in neural artistic style transfer").  Nothing for a base. */
void sf_finish(const struct sf_model *m, const uint8_t *photo, uint8_t *styled, size_t pixels);

/* Copy the local entry for key to the shared store when the store lacks
 * it (warm: what this host computed before becomes the cluster's).  A
 * failure is logged by the store and not returned. */
void sf_pipeline_publish(struct sf_pipeline *p, const uint8_t key[16]);

/* The one produce path (see above).  On success *out (malloc'd; NULL for
 * a hit with r->peek) and *outlen hold the styled file and *how says what
 * happened (enum sf_produced); r->id, when given, is aliased to the key.
 * A failure to read or store the cache, or of the shared store, is logged
 * and not returned: the image is computed, or served uncached.  Returns 0 or sf_stylize's codes
 * (joiners of a failed computation get its code and reason). */
int sf_produce(struct sf_pipeline *p, const struct sf_produce_req *r, uint8_t **out, size_t *outlen, int *how,
               char *why, size_t whylen);

/* The style vector of painting style m (its base painting's: a strength
 * variant blends it later), through the one produce: keyed by the
 * painting's bytes and the networks' digest, one prediction per key in
 * the process, kept in the cache and the shared store like an image.
 * The painting is decoded within the pipeline's max_pixels.  Its failures
 * are the style's, never the photo's (no -EINVAL or -EFBIG, which mark a
 * photo as broken).  Returns 0, -EINVAL (not a painting style), -ESTALE
 * (the painting's bytes changed since load: its photos' keys name the old
 * bytes), -EIO (the painting no longer reads or decodes, is over
 * max_pixels, or a stored value is not a vector), -ENOMEM, -ECANCELED. */
int sf_style_vector(struct sf_pipeline *p, const struct sf_model *m, float vec[SF_VECTOR_FLOATS], char *why,
                    size_t whylen);

#endif
