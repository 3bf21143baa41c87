/* pipeline.c: source bytes to styled bytes (see pipeline.h). */
#include "pipeline.h"
#include "arbitrary.h"
#include "util.h"

#include <sys/stat.h>
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

void sf_settings_default(struct sf_settings *s)
{
    s->max_side = SF_DEFAULT_MAX_SIDE;
    s->max_pixels = SF_DEFAULT_MAX_PIXELS;
    s->quality = SF_DEFAULT_QUALITY;
}

void sf_hash_bytes(const void *d, size_t n, uint8_t out[16])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(d, n));
    memcpy(out, c.digest, 16);
}

void sf_key_make(const uint8_t src_hash[16], const struct sf_model *m, enum sf_format out,
                 const struct sf_settings *s, uint8_t key[16])
{
    /* Fixed little-endian layout, so keys agree across builds:
     *  0 "stylefs-key" 11 bytes + 1 pad, 12 u32 format version,
     * 16 source hash, 32 weights digest, 48 u32 output format,
     * 52 u32 max_side, 56 u32 quality (JPEG only, else 0), 60 u32 0 */
    uint8_t b[64] = "stylefs-key";
    uint32_t v[5] = { SF_FORMAT_VERSION, (uint32_t)out, (uint32_t)s->max_side,
                      out == SF_FMT_JPEG ? (uint32_t)s->quality : 0, 0 };
    int off[5] = { 12, 48, 52, 56, 60 };

    memcpy(b + 16, src_hash, 16);
    memcpy(b + 32, m->digest, 16);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++)
            b[off[i] + j] = (uint8_t)(v[i] >> (8 * j));
    sf_hash_bytes(b, sizeof b, key);
}

static const char *const img_exts[] = { "jpg", "jpeg", "png", "bmp", "tga",
                                        "gif", "psd", "ppm", "pgm", "pnm" };

/* 1: a format stylefs writes, 2: one it only reads, 0: not an image */
static int source_kind(const char *name)
{
    char ext[16];
    sf_path_ext(name, ext, sizeof ext);
    for (size_t i = 0; i < sizeof img_exts / sizeof *img_exts; i++)
        if (!strcmp(ext, img_exts[i]))
            return i < 5 ? 1 : 2;
    return 0;
}

int sf_served_name(const char *src, char *out, size_t outlen, enum sf_format *fmt)
{
    int kind = source_kind(src);

    if (!kind)
        return 0;
    if (out && snprintf(out, outlen, "%s%s", src, kind == 2 ? ".png" : "") >= (int)outlen)
        return -ENAMETOOLONG;
    if (fmt)
        *fmt = kind == 1 ? sf_format_for_output(src) : SF_FMT_PNG;
    return 1;
}

int sf_source_names(const char *served, char names[2][PATH_MAX], enum sf_format fmts[2])
{
    size_t len = strlen(served);
    int n = 0;

    if (len >= PATH_MAX)
        return 0;
    if (source_kind(served) == 1) {           /* served under its own name */
        memcpy(names[n], served, len + 1);
        fmts[n++] = sf_format_for_output(served);
    }
    if (len > 4 && !strcasecmp(served + len - 4, ".png")) {    /* NAME.gif.png -> NAME.gif */
        memcpy(names[n], served, len - 4);
        names[n][len - 4] = '\0';
        if (source_kind(names[n]) == 2)
            fmts[n++] = SF_FMT_PNG;
    }
    return n;
}

void sf_source_id(const struct stat *st, enum sf_format fmt, const struct sf_settings *s,
                  const struct sf_model *m, uint8_t id[16])
{
    uint64_t v[12] = {
        (uint64_t)st->st_dev, (uint64_t)st->st_ino, (uint64_t)st->st_size,
        (uint64_t)st->st_mtim.tv_sec, (uint64_t)st->st_mtim.tv_nsec,
        (uint64_t)st->st_ctim.tv_sec, (uint64_t)st->st_ctim.tv_nsec,
        (uint64_t)fmt, (uint64_t)s->max_side,
        fmt == SF_FMT_JPEG ? (uint64_t)s->quality : 0, SF_FORMAT_VERSION, 0,
    };
    uint8_t buf[sizeof v + 16];
    memcpy(buf, v, sizeof v);
    memcpy(buf + sizeof v, m->digest, 16);
    sf_hash_bytes(buf, sizeof buf, id);
}

void sf_pipeline_init(struct sf_pipeline *p, enum sf_device dev, const struct sf_settings *s,
                      struct sf_cache *cache)
{
    memset(p, 0, sizeof *p);
    p->device = dev;
    p->set = *s;
    p->cache = cache;
    pthread_mutex_init(&p->engine_lock, NULL);
    pthread_mutex_init(&p->flights_lock, NULL);
}

void sf_pipeline_close(struct sf_pipeline *p)
{
    sf_engine_close(p->engine);
    p->engine = NULL;
    pthread_mutex_destroy(&p->engine_lock);
    pthread_mutex_destroy(&p->flights_lock);
}

static int get_engine(struct sf_pipeline *p, struct sf_engine **e, char *why, size_t whylen)
{
    int rc = 0;

    pthread_mutex_lock(&p->engine_lock);
    if (!p->engine) {
        rc = sf_engine_open(p->device, &p->engine, why, whylen);
        if (!rc && p->idle_s)
            sf_engine_set_idle(p->engine, p->idle_s);
    }
    *e = p->engine;
    pthread_mutex_unlock(&p->engine_lock);
    return rc;
}

/* sf_stylize for a painting (an SF_STYLE_IMAGE style): its vector (blended
 * with the photo's own below 100%), the transformer, the encoder.  These
 * networks run on the CPU (tflnet.c, convolutions on the vector kernels), whatever the device. */
static int stylize_painting(struct sf_pipeline *p, const struct sf_model *m, const struct sf_image *img,
                            enum sf_format out_fmt, uint8_t **out, size_t *outlen, char *why, size_t whylen)
{
    struct sf_image styled = { .w = img->w, .h = img->h, .alpha = img->alpha };
    float vec[SF_ARB_VEC], own[SF_ARB_VEC];
    double t0 = sf_monotonic(), t1;
    int rc;

    if ((rc = sf_style_vector(m, p->cache, vec, p->cancel, why, whylen)))
        return rc;
    if (m->strength < 100) {
        if ((rc = sf_arb_predict(m->arb, img->rgb, img->w, img->h, own, p->cancel)))
            return rc;
        for (int i = 0; i < SF_ARB_VEC; i++)
            vec[i] = (float)(m->strength * (double)vec[i] + (100 - m->strength) * (double)own[i]) / 100.0f;
    }
    if (!(styled.rgb = malloc((size_t)img->w * img->h * 3))) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    rc = sf_arb_transfer(m->arb, img->rgb, img->w, img->h, vec, styled.rgb, p->cancel, why, whylen);
    t1 = sf_monotonic();
    if (!rc)
        rc = sf_image_encode(&styled, out_fmt, p->set.quality, out, outlen, why, whylen);
    if (!rc)
        sf_info("%dx%d: painting %s (cpu, tflnet): style vector and transformer %.0f ms, %s encode %.0f ms",
                img->w, img->h, m->name, (t1 - t0) * 1e3, sf_format_name(out_fmt), (sf_monotonic() - t1) * 1e3);
    free(styled.rgb);
    return rc;
}

int sf_stylize(struct sf_pipeline *p, const struct sf_model *m, const uint8_t *src, size_t len,
               enum sf_format out_fmt, uint8_t **out, size_t *outlen, int *ow, int *oh,
               char *why, size_t whylen)
{
    struct sf_image img, styled;
    struct sf_engine *e;
    double t0 = sf_monotonic(), t1, t2;
    int rc;

    rc = sf_image_decode(src, len, p->set.max_pixels, &img, why, whylen);
    if (rc)
        return rc;
    rc = sf_image_fit(&img, p->set.max_side);
    t1 = sf_monotonic();
    if (rc) {
        snprintf(why, whylen, "out of memory resizing");
        goto out_img;
    }
    if (m->kind == SF_STYLE_IMAGE) {
        rc = stylize_painting(p, m, &img, out_fmt, out, outlen, why, whylen);
        if (!rc && ow)
            *ow = img.w;
        if (!rc && oh)
            *oh = img.h;
        goto out_img;
    }
    rc = get_engine(p, &e, why, whylen);
    if (rc)
        goto out_img;
    styled.w = img.w;
    styled.h = img.h;
    styled.alpha = img.alpha;       /* the source alpha goes back on */
    styled.rgb = malloc((size_t)img.w * img.h * 3);
    if (!styled.rgb) {
        rc = -ENOMEM;
        snprintf(why, whylen, "out of memory");
        goto out_img;
    }
    rc = sf_engine_run(e, m, img.rgb, img.w, img.h, styled.rgb, p->cancel);
    t2 = sf_monotonic();
    if (rc) {
        snprintf(why, whylen, "%s engine failed: %s", e->ops->name, strerror(-rc));
        goto out_styled;
    }
    rc = sf_image_encode(&styled, out_fmt, p->set.quality, out, outlen, why, whylen);
    if (!rc)
        sf_info("%dx%d: decode %.0f ms, network (%s) %.0f ms, %s encode %.0f ms", img.w, img.h,
                (t1 - t0) * 1e3, e->ops->name, (t2 - t1) * 1e3, sf_format_name(out_fmt),
                (sf_monotonic() - t2) * 1e3);
    if (!rc && ow)
        *ow = styled.w;
    if (!rc && oh)
        *oh = styled.h;
out_styled:
    free(styled.rgb);
out_img:
    sf_image_free(&img);
    return rc;
}

/* A computation in flight: the first miss of a key computes, later misses
 * of the same key wait for it (one computation per key in the process). */
struct sf_flight {
    struct sf_flight *next;
    uint8_t key[16];
    int done, rc, waiters;      /* waiters: every caller holding it, the computer too */
    uint8_t *out;               /* the result, kept for the waiters */
    size_t len;
    char why[256];
    pthread_cond_t cond;
};

/* Drop one holder; the last frees the flight.  flights_lock held. */
static void flight_leave(struct sf_flight *f)
{
    if (--f->waiters == 0) {
        pthread_cond_destroy(&f->cond);
        free(f->out);
        free(f);
    }
}

/* A copy of len bytes, or NULL. */
static uint8_t *dup_bytes(const uint8_t *b, size_t len)
{
    uint8_t *c = malloc(len ? len : 1);
    if (c)
        memcpy(c, b, len);
    return c;
}

/* Hit: the cached entry (or, with peek, only that it is there). */
static int cache_hit(struct sf_pipeline *p, const struct sf_produce_req *r, const uint8_t key[16],
                     uint8_t **out, size_t *outlen)
{
    struct sf_entry_meta meta;
    int rc;

    if (!p->cache)
        return -ENOENT;
    if (r->peek) {
        *out = NULL;
        *outlen = 0;
        return sf_cache_peek(p->cache, key, &meta);
    }
    rc = sf_cache_get(p->cache, key, out, outlen, NULL);
    if (rc && rc != -ENOENT)
        sf_warn("%s: cache read failed (%s); computing", r->what, strerror(-rc));
    return rc;
}

/* The flight leader after a local miss: the shared store's entry, or its
 * lease and a computation (waiting while another host holds the lease, up
 * to twice the lease, then computing anyway: a second computation of the
 * same key gives the same bytes), or, without a usable store, a local
 * computation.  Returns 0 or sf_stylize's codes. */
static int fetch_or_compute(struct sf_pipeline *p, const struct sf_produce_req *r, const uint8_t key[16],
                            uint8_t **out, size_t *outlen, int *how, char *why, size_t whylen)
{
    struct sf_remote *rm = p->remote;
    struct sf_entry_meta meta;
    char token[SF_REMOTE_TOKEN_LEN];
    int rc, leased = 0, w = 0, h = 0;

    if (rm) {
        double deadline = sf_monotonic() + 2 * (double)sf_remote_lease_ms(rm) / 1000;
        for (;;) {
            rc = sf_remote_get(rm, key, out, outlen, &meta);
            if (rc == 0) {
                atomic_fetch_add(&p->remote_hits, 1);
                *how = SF_PRODUCED_REMOTE;
                sf_pipeline_store(p, key, *out, *outlen, (int)meta.width, (int)meta.height,
                                  (enum sf_format)meta.format, r->what);
                return 0;
            }
            if (rc != -ENOENT || (rc = sf_remote_lease(rm, key, token)) != -EBUSY) {
                leased = rc == 0;
                break;
            }
            if (sf_remote_wait(rm, key, deadline, p->cancel))
                break;          /* waited long enough, or the store failed: compute */
        }
    }
    atomic_fetch_add(&p->computes, 1);
    *how = SF_PRODUCED_COMPUTED;
    rc = sf_stylize(p, r->model, r->src, r->len, r->fmt, out, outlen, &w, &h, why, whylen);
    if (!rc) {
        sf_pipeline_store(p, key, *out, *outlen, w, h, r->fmt, r->what);
        if (rm)
            sf_remote_put(rm, key, *out, *outlen, (uint32_t)w, (uint32_t)h, (uint32_t)r->fmt);
    }
    if (leased)
        sf_remote_release(rm, key, token, rc == 0);
    return rc;
}

void sf_pipeline_publish(struct sf_pipeline *p, const uint8_t key[16])
{
    struct sf_entry_meta m;
    uint8_t *d;
    size_t len;

    if (!p->remote || !p->cache || sf_remote_exists(p->remote, key) != -ENOENT || sf_cache_get(p->cache, key, &d, &len, &m))
        return;
    sf_remote_put(p->remote, key, d, len, m.width, m.height, m.format);
    free(d);
}

int sf_produce(struct sf_pipeline *p, const struct sf_produce_req *r, uint8_t **out, size_t *outlen, int *how,
               char *why, size_t whylen)
{
    uint8_t h[16], key[16];
    struct sf_flight *f;
    int rc;

    *out = NULL;
    *outlen = 0;
    why[0] = '\0';
    sf_hash_bytes(r->src, r->len, h);
    sf_key_make(h, r->model, r->fmt, &p->set, key);
    if (cache_hit(p, r, key, out, outlen) == 0) {
        atomic_fetch_add(&p->hits, 1);
        *how = SF_PRODUCED_HIT;
        if (r->publish)
            sf_pipeline_publish(p, key);
        goto out_alias;
    }
    atomic_fetch_add(&p->misses, 1);
    pthread_mutex_lock(&p->flights_lock);
    for (f = p->flights; f; f = f->next)
        if (!memcmp(f->key, key, 16))
            break;
    if (f) {                            /* join it */
        atomic_fetch_add(&p->joins, 1);
        f->waiters++;
        while (!f->done)
            pthread_cond_wait(&f->cond, &p->flights_lock);
        rc = f->rc;
        if (!rc && !(*out = dup_bytes(f->out, f->len)))
            rc = -ENOMEM;
        if (!rc)
            *outlen = f->len;
        else
            snprintf(why, whylen, "%s", f->rc ? f->why : "out of memory");
        flight_leave(f);
        pthread_mutex_unlock(&p->flights_lock);
        *how = SF_PRODUCED_JOINED;
        if (rc)
            return rc;
        goto out_alias;
    }
    if (!(f = calloc(1, sizeof *f))) {
        pthread_mutex_unlock(&p->flights_lock);
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    memcpy(f->key, key, 16);
    pthread_cond_init(&f->cond, NULL);
    f->waiters = 1;
    f->next = p->flights;
    p->flights = f;
    pthread_mutex_unlock(&p->flights_lock);

    /* Another process may have stored it meanwhile (peek or not: the
     * waiters want bytes, so read it). */
    rc = p->cache ? sf_cache_get(p->cache, key, out, outlen, NULL) : -ENOENT;
    *how = SF_PRODUCED_HIT;
    if (rc)
        rc = fetch_or_compute(p, r, key, out, outlen, how, why, whylen);

    pthread_mutex_lock(&p->flights_lock);
    for (struct sf_flight **pp = &p->flights; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    f->done = 1;
    f->rc = rc;
    if (rc)
        snprintf(f->why, sizeof f->why, "%s", why[0] ? why : strerror(-rc));
    else if (f->waiters > 1 && !(f->out = dup_bytes(*out, *outlen))) {
        f->rc = -ENOMEM;        /* the waiters get that; this caller has its bytes */
        snprintf(f->why, sizeof f->why, "out of memory");
    }
    f->len = *outlen;
    pthread_cond_broadcast(&f->cond);
    flight_leave(f);
    pthread_mutex_unlock(&p->flights_lock);
    if (rc) {
        free(*out);
        *out = NULL;
        return rc;
    }
    if (r->peek) {              /* the caller did not want the bytes */
        free(*out);
        *out = NULL;
        *outlen = 0;
    }
out_alias:
    if (r->id && p->cache)
        sf_cache_alias_put(p->cache, r->id, key);
    return 0;
}

void sf_pipeline_store(struct sf_pipeline *p, const uint8_t key[16], const uint8_t *data,
                       size_t len, int w, int h, enum sf_format fmt, const char *what)
{
    int rc;

    if (!p->cache)
        return;
    rc = sf_cache_put(p->cache, key, data, len, (uint32_t)w, (uint32_t)h, (uint32_t)fmt);
    if (rc)
        sf_warn("%s: not cached: %s", what,
                rc == -ENOSPC ? "cache full (no space on disk or map)" : strerror(-rc));
}
