/* pipeline.h: from source bytes to styled bytes, through the cache.
 *
 * The one path that both `stylefs stylize` and the mount use, so that the
 * two give the same bytes for the same source, style and settings:
 *   hash source -> key -> cache hit?  else decode -> fit to max_side ->
 *   engine -> put alpha back -> encode -> store -> return.
 *
 * DESIGN: an sf_pipeline is shared by every thread of a process.  The
 * engine is opened on first use (not at mount, not on a cache hit) under
 * engine_lock; after that `engine` never changes until sf_pipeline_close
 * (with idle_s set, the engine itself releases its backend when idle and
 * reopens it on the next pass, see engine.h).
 * All functions return 0 or -errno. */
#ifndef SF_PIPELINE_H
#define SF_PIPELINE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "engine.h"
#include "image.h"
#include "style.h"

/* Bump when the engine's output or the encoders' bytes change: it is part
 * of every cache key, so old entries stop matching. */
#define SF_FORMAT_VERSION 3

#define SF_DEFAULT_MAX_SIDE 1024
#define SF_DEFAULT_MAX_PIXELS 50000000ULL
#define SF_DEFAULT_QUALITY 90
#define SF_MAX_SOURCE_BYTES (1ULL << 30)

struct sf_settings {
    int max_side;           /* 0 = no downscale */
    uint64_t max_pixels;    /* refuse larger sources (header check) */
    int quality;            /* JPEG quality 1..100 */
};

struct sf_pipeline {
    enum sf_device device;
    struct sf_settings set;
    struct sf_cache *cache;         /* NULL: no caching */
    pthread_mutex_t engine_lock;    /* guards opening `engine` */
    struct sf_engine *engine;       /* NULL until the first miss */
    unsigned idle_s;                /* release the engine after this idle time; 0 = never */
    const sf_cancel_flag *cancel;     /* set non-zero to abandon running passes */
};

void sf_settings_default(struct sf_settings *s);

/* XXH3-128 of bytes, canonical (big-endian) form. */
void sf_hash_bytes(const void *d, size_t n, uint8_t out[16]);

/* The cache key: XXH3-128 over the source hash, the style's weight digest,
 * the output format, the settings that change output bytes (max_side;
 * quality for JPEG only) and SF_FORMAT_VERSION. */
void sf_key_make(const uint8_t src_hash[16], const struct sf_model *m, enum sf_format out,
                 const struct sf_settings *s, uint8_t key[16]);

/* What the mount does with a source file name: 1 served under the same
 * name (.jpg .jpeg .png .bmp .tga), 2 served as NAME.png (.gif .psd .ppm
 * .pgm .pnm: formats stylefs reads but does not write), 0 not an image. */
int sf_source_kind(const char *name);

/* The output format for a source name of kind 1 or 2. */
enum sf_format sf_source_format(const char *name);

/* The stat identity of a source (device, inode, size, times) with the
 * output format, the settings and the style: the cache's alias for it, so
 * that a cached file's exact size is known without reading the source. */
struct stat;
void sf_source_id(const struct stat *st, enum sf_format fmt, const struct sf_settings *s,
                  const struct sf_model *m, uint8_t id[16]);

void sf_pipeline_init(struct sf_pipeline *p, enum sf_device dev, const struct sf_settings *s,
                      struct sf_cache *cache);
void sf_pipeline_close(struct sf_pipeline *p);

/* Stylize src without the cache.  On success *out is malloc'd and *ow, *oh
 * (either may be NULL) hold the output image's size.
 * Returns 0, -EINVAL (undecodable), -EFBIG (over max_pixels), -ENOMEM,
 * -ENODEV (engine unavailable), -ECANCELED, -EIO. */
int sf_stylize(struct sf_pipeline *p, const struct sf_model *m, const uint8_t *src, size_t len,
               enum sf_format out_fmt, uint8_t **out, size_t *outlen, int *ow, int *oh,
               char *why, size_t whylen);

/* Store a stylized image under key (when p->cache).  A failure is logged,
 * naming `what`, and not returned: the image is served uncached. */
void sf_pipeline_store(struct sf_pipeline *p, const uint8_t key[16], const uint8_t *data,
                       size_t len, int w, int h, enum sf_format fmt, const char *what);

/* The same through the cache (when p->cache).  *hit tells whether it came
 * from the cache.  A failure to store is logged and not returned. */
int sf_stylize_cached(struct sf_pipeline *p, const struct sf_model *m, const uint8_t *src,
                      size_t len, enum sf_format out_fmt, uint8_t **out, size_t *outlen,
                      int *hit, char *why, size_t whylen);

#endif
