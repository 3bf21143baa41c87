/* pipeline.c: source bytes to styled bytes (see pipeline.h). */
#include "pipeline.h"
#include "arbitrary.h"
#include "log.h"
#include "util.h"

#include <sys/stat.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

_Static_assert(SF_ARB_VEC == SF_VECTOR_FLOATS, "a stored style vector is the predictor's output");

void sf_settings_default(struct sf_settings *s)
{
    memset(s, 0, sizeof *s);        /* strip_meta and whatever is added later: off */
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

void sf_key_make(const uint8_t src_hash[16], const uint8_t digest[16], uint32_t kind, const struct sf_settings *s,
                 uint8_t key[16])
{
    /* Fixed little-endian layout, so keys agree across builds:
     *  0 "stylefs-key" 11 bytes + 1 pad, 12 u32 format version,
     * 16 source hash, 32 style digest, 48 u32 kind (an image's output
     * format, or SF_ENTRY_STYLE_VECTOR), 52 u32 max_side, 56 u32 quality
     * (lossy formats only: JPEG, WebP, HEIC, AVIF; else 0), 60 u32 flags
     * (bit 0: strip_meta); without settings, 52, 56 and 60 are 0 */
    uint8_t b[64] = "stylefs-key";
    uint32_t v[5] = { SF_FORMAT_VERSION, kind, s ? (uint32_t)s->max_side : 0,
                      s && kind < SF_ENTRY_STYLE_VECTOR && sf_format_lossy((enum sf_format)kind) ? (uint32_t)s->quality : 0,
                      s && s->strip_meta ? 1u : 0u };
    int off[5] = { 12, 48, 52, 56, 60 };

    memcpy(b + 16, src_hash, 16);
    memcpy(b + 32, digest, 16);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++)
            b[off[i] + j] = (uint8_t)(v[i] >> (8 * j));
    sf_hash_bytes(b, sizeof b, key);
}

void sf_source_id(const struct stat *st, enum sf_format fmt, const struct sf_settings *s,
                  const struct sf_model *m, uint8_t id[16])
{
    uint64_t v[12] = {
        (uint64_t)st->st_dev, (uint64_t)st->st_ino, (uint64_t)st->st_size,
        (uint64_t)st->st_mtim.tv_sec, (uint64_t)st->st_mtim.tv_nsec,
        (uint64_t)st->st_ctim.tv_sec, (uint64_t)st->st_ctim.tv_nsec,
        (uint64_t)fmt, (uint64_t)s->max_side,
        sf_format_lossy(fmt) ? (uint64_t)s->quality : 0, SF_FORMAT_VERSION, (uint64_t)!!s->strip_meta,
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
    pthread_mutex_init(&p->mem_lock, NULL);
    if (sf_cond_init_monotonic(&p->mem_cond))
        pthread_cond_init(&p->mem_cond, NULL);     /* realtime: the 0.1 s polls only stretch or shrink */
    p->mem_max = sf_mem_default();
}

void sf_pipeline_close(struct sf_pipeline *p)
{
    sf_engine_close(p->engine);
    p->engine = NULL;
    pthread_mutex_destroy(&p->engine_lock);
    pthread_mutex_destroy(&p->flights_lock);
    pthread_mutex_destroy(&p->mem_lock);
    pthread_cond_destroy(&p->mem_cond);
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

/* A painting's styled pixels for img (its style vector through the one
 * produce, mixed with the photo's own below 100%) into out (img's size). */
static int stylize_painting(struct sf_pipeline *p, const struct sf_model *m, const struct sf_image *img,
                            uint8_t *out, char *why, size_t whylen)
{
    float vec[SF_ARB_VEC], own[SF_ARB_VEC];
    int rc;

    if ((rc = sf_style_vector(p, m, vec, why, whylen)))
        return rc;
    if (m->strength < 100) {
        if ((rc = sf_arb_predict(m->arb, img->rgb, img->w, img->h, own, p->cancel)))
            return rc;
        for (int i = 0; i < SF_ARB_VEC; i++)
            vec[i] = (float)(m->strength * (double)vec[i] + (100 - m->strength) * (double)own[i]) / 100.0f;
    }
    return sf_arb_transfer(m->arb, img->rgb, img->w, img->h, vec, out, p->cancel, why, whylen);
}

/* Mirror index i into 0..n-1 (reflection without repeating the edge, as
 * the network's own padding), for any i. */
static int mirror(int i, int n)
{
    int period = 2 * n - 2;

    if (n == 1)
        return 0;
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - i;
}

/* Run network style m on img into out (img's size): with m->pad, on img
 * mirrored out by pad pixels each side, then cropped back (model.h). */
static int run_network(struct sf_pipeline *p, struct sf_engine *e, const struct sf_model *m,
                       const struct sf_image *img, uint8_t *out)
{
    int pad = m->pad, pw = img->w + 2 * pad, ph = img->h + 2 * pad, rc;
    uint8_t *in, *res;

    if (!pad)
        return sf_engine_run(e, m, img->rgb, img->w, img->h, out, p->cancel);
    if (!(in = malloc((size_t)pw * ph * 3)) || !(res = malloc((size_t)pw * ph * 3))) {
        free(in);
        return -ENOMEM;
    }
    for (int y = 0; y < ph; y++) {
        const uint8_t *row = img->rgb + (size_t)mirror(y - pad, img->h) * img->w * 3;
        for (int x = 0; x < pw; x++)
            memcpy(in + ((size_t)y * pw + x) * 3, row + (size_t)mirror(x - pad, img->w) * 3, 3);
    }
    if (!(rc = sf_engine_run(e, m, in, pw, ph, res, p->cancel)))
        for (int y = 0; y < img->h; y++)
            memcpy(out + (size_t)y * img->w * 3, res + ((size_t)(y + pad) * pw + pad) * 3, (size_t)img->w * 3);
    free(res);
    free(in);
    return rc;
}

/* sRGB <-> linear light, by tables: to_lin for 8-bit values, to_srgb for
 * linear values in steps of 1/4095. */
static float g_to_lin[256];
static uint8_t g_to_srgb[4096];
static pthread_once_t g_srgb_once = PTHREAD_ONCE_INIT;

static void srgb_tables(void)
{
    for (int i = 0; i < 256; i++) {
        double c = i / 255.0;
        g_to_lin[i] = (float)(c <= 0.04045 ? c / 12.92 : pow((c + 0.055) / 1.055, 2.4));
    }
    for (int i = 0; i < 4096; i++) {
        double l = i / 4095.0, c = l <= 0.0031308 ? 12.92 * l : 1.055 * pow(l, 1 / 2.4) - 0.055;
        g_to_srgb[i] = (uint8_t)lrint(c * 255.0 < 0 ? 0 : c * 255.0 > 255 ? 255 : c * 255.0);
    }
}

static uint8_t clamp_u8(float v)
{
    return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)lrintf(v);
}

void sf_finish(const struct sf_model *m, const uint8_t *photo, uint8_t *styled, size_t pixels)
{
    int blend = m->kind == SF_STYLE_NET && m->strength < 100;
    float s = (float)m->strength / 100.0f;

    if (!blend && !m->colors)
        return;
    pthread_once(&g_srgb_once, srgb_tables);
    for (size_t i = 0; i < pixels; i++) {
        const uint8_t *c = photo + 3 * i;
        uint8_t *o = styled + 3 * i;
        if (blend)          /* the strength: a mix of the output and the photo in linear light */
            for (int k = 0; k < 3; k++)
                o[k] = g_to_srgb[(int)lrintf((s * g_to_lin[o[k]] + (1 - s) * g_to_lin[c[k]]) * 4095.0f)];
        if (m->colors) {    /* the output's luminance with the photo's chroma (YIQ) */
            float y = 0.299f * o[0] + 0.587f * o[1] + 0.114f * o[2];
            float ci = 0.596f * c[0] - 0.274f * c[1] - 0.322f * c[2];
            float cq = 0.211f * c[0] - 0.523f * c[1] + 0.312f * c[2];
            o[0] = clamp_u8(y + 0.956f * ci + 0.621f * cq);
            o[1] = clamp_u8(y - 0.272f * ci - 0.647f * cq);
            o[2] = clamp_u8(y - 1.106f * ci + 1.703f * cq);
        }
    }
}

/* ---- the memory budget ------------------------------------------------------ */

uint64_t sf_mem_default(void)
{
    uint64_t total = 0, lim = 0;
    char line[256];
    FILE *f;

    if ((f = fopen("/proc/meminfo", "r"))) {
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemTotal: %" SCNu64 " kB", &total) == 1) {
                total *= 1024;
                break;
            }
        fclose(f);
    }
    if ((f = fopen("/sys/fs/cgroup/memory.max", "r"))) {      /* cgroup v2; "max": none */
        if (!fgets(line, sizeof line, f) || sscanf(line, "%" SCNu64, &lim) != 1)
            lim = 0;
        fclose(f);
    }
    if (lim && (!total || lim < total))
        total = lim;
    return total ? total / 2 : 0;
}

uint64_t sf_mem_estimate(int w, int h, int max_side, int net)
{
    uint64_t src = (uint64_t)w * (uint64_t)h, fit = src;

    if (max_side > 0 && (w > max_side || h > max_side)) {
        double s = (double)max_side / (w > h ? w : h);
        fit = (uint64_t)(w * s + 1) * (uint64_t)(h * s + 1);
    }
    if (net && fit >= SF_BANDS_FROM_PIXELS)
        return src * 4 + SF_MEM_BANDED_BASE + fit * SF_MEM_BANDED_PER_PIXEL;
    return src * 4 + fit * SF_MEM_PER_PIXEL;
}

/* Take est bytes of the budget, waiting while others hold it (a lone
 * computation is always let in once it fits the budget by itself).
 * 0, -EFBIG (est alone is over the budget), -ECANCELED. */
static int mem_admit(struct sf_pipeline *p, uint64_t est, char *why, size_t whylen)
{
    if (!p->mem_max)
        return 0;
    if (est > p->mem_max) {
        snprintf(why, whylen, "needs about %llu MB to stylize, over mem_max (%llu MB)",
                 (unsigned long long)(est >> 20), (unsigned long long)(p->mem_max >> 20));
        return -EFBIG;
    }
    pthread_mutex_lock(&p->mem_lock);
    while (p->mem_used && p->mem_used + est > p->mem_max && !sf_cancelled(p->cancel))
        sf_cond_wait_until(&p->mem_cond, &p->mem_lock, sf_monotonic() + 0.1);  /* the stop flag, 10 times a second */
    if (sf_cancelled(p->cancel)) {
        pthread_mutex_unlock(&p->mem_lock);
        return -ECANCELED;
    }
    p->mem_used += est;
    pthread_mutex_unlock(&p->mem_lock);
    return 0;
}

static void mem_release(struct sf_pipeline *p, uint64_t est)
{
    if (!p->mem_max)
        return;
    pthread_mutex_lock(&p->mem_lock);
    p->mem_used -= est;
    pthread_cond_broadcast(&p->mem_cond);
    pthread_mutex_unlock(&p->mem_lock);
}

static int stylize_admitted(struct sf_pipeline *p, const struct sf_model *m, const uint8_t *src, size_t len,
                            enum sf_format out_fmt, uint8_t **out, size_t *outlen, int *ow, int *oh,
                            char *why, size_t whylen);

int sf_stylize(struct sf_pipeline *p, const struct sf_model *m, const uint8_t *src, size_t len,
               enum sf_format out_fmt, uint8_t **out, size_t *outlen, int *ow, int *oh,
               char *why, size_t whylen)
{
    enum sf_format f;
    uint64_t est = 0;
    int w, h, rc;

    /* from the header alone (a source whose header does not read fails in
     * the decode, with its reason; one over max_pixels too) */
    if (sf_image_probe(src, len, &f, &w, &h, why, whylen) == 0 && (uint64_t)w * (uint64_t)h <= p->set.max_pixels &&
        (rc = mem_admit(p, est = sf_mem_estimate(w, h, p->set.max_side, m->kind == SF_STYLE_NET), why, whylen)))
        return rc;
    rc = stylize_admitted(p, m, src, len, out_fmt, out, outlen, ow, oh, why, whylen);
    mem_release(p, est);
    return rc;
}

/* sf_stylize within the budget already taken. */
static int stylize_admitted(struct sf_pipeline *p, const struct sf_model *m, const uint8_t *src, size_t len,
                            enum sf_format out_fmt, uint8_t **out, size_t *outlen, int *ow, int *oh,
                            char *why, size_t whylen)
{
    struct sf_image img, styled;
    struct sf_engine *e = NULL;
    double t0 = sf_monotonic(), t1, t2;
    int rc, fw, fh;

    rc = sf_image_decode(src, len, p->set.max_pixels, &img, why, whylen);
    if (rc)
        return rc;
    fw = img.w;
    fh = img.h;
    rc = sf_image_fit(&img, p->set.max_side);
    t1 = sf_monotonic();
    if (rc) {
        snprintf(why, whylen, "out of memory resizing");
        goto out_img;
    }
    if (img.w != fw || img.h != fh) {
        uint64_t packed = (uint64_t)fw << 48 | (uint64_t)fh << 32 | (uint64_t)img.w << 16 | (uint64_t)img.h;
        atomic_store(&p->last_resize, packed);
        if (atomic_fetch_add(&p->resized, 1) == 0)
            sf_notice("a %dx%d photo is stylized at %dx%d (max_side=%d; max_side=0 for full size, at more time "
                      "and memory); said once, -v says each", fw, fh, img.w, img.h, p->set.max_side);
        else
            sf_info("%dx%d resized to %dx%d (max_side=%d)", fw, fh, img.w, img.h, p->set.max_side);
    }
    if (m->kind == SF_STYLE_NET && (rc = get_engine(p, &e, why, whylen)))
        goto out_img;
    styled.w = img.w;
    styled.h = img.h;
    styled.alpha = img.alpha;       /* the source alpha goes back on */
    memset(&styled.meta, 0, sizeof styled.meta);
    if (!p->set.strip_meta)         /* and its metadata, borrowed (freed with img) */
        styled.meta = img.meta;
    styled.rgb = malloc((size_t)img.w * img.h * 3);
    if (!styled.rgb) {
        rc = -ENOMEM;
        snprintf(why, whylen, "out of memory");
        goto out_img;
    }
    if (m->kind == SF_STYLE_IMAGE) {
        rc = stylize_painting(p, m, &img, styled.rgb, why, whylen);
    } else if ((rc = run_network(p, e, m->base ? m->base : m, &img, styled.rgb))) {
        snprintf(why, whylen, "%s engine failed: %s", e->ops->name, strerror(-rc));
    }
    t2 = sf_monotonic();
    if (rc)
        goto out_styled;
    sf_finish(m, img.rgb, styled.rgb, (size_t)img.w * img.h);
    rc = sf_image_encode(&styled, out_fmt, p->set.quality, out, outlen, why, whylen);
    if (!rc)
        sf_info("%dx%d %s: decode %.0f ms, network (%s) %.0f ms, %s encode %.0f ms", img.w, img.h, m->name,
                (t1 - t0) * 1e3, e ? e->ops->name : "cpu, tflnet", (t2 - t1) * 1e3, sf_format_name(out_fmt),
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

/* ---- the one produce ------------------------------------------------------
 *
 * Everything computed and cached goes through produce(): a styled image
 * (sf_produce) and a painting's style vector (sf_style_vector).  A job says
 * what to compute for a key and the entry kind it stores (cache.h KIND);
 * the rest (local hit, single flight, the shared store and its lease,
 * storing locally and remotely) is written once, here. */

struct produce_job {
    uint8_t key[16];
    uint32_t kind;                  /* the entry kind (cache.h) */
    int peek;                       /* a hit need not be read: *out stays NULL */
    int publish;                    /* a local hit missing from the shared store is copied there */
    const char *what;               /* names the value in messages */
    struct sf_produce_counts *counts;
    /* Compute the value: *out malloc'd, *w and *h for the entry's header.
     * Returns 0 or -errno with why. */
    int (*compute)(struct sf_pipeline *p, const void *ctx, uint8_t **out, size_t *outlen, int *w, int *h,
                   char *why, size_t whylen);
    const void *ctx;
    const struct sf_produce_req *req;   /* an image's request (a worker can take it), or NULL */
};

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

/* An entry read back (locally or from the shared store) is of the kind
 * asked for: 0, or -ENOENT (treated as a miss; a key names one kind, so
 * this takes a forged or damaged entry). */
static int kind_ok(const struct produce_job *j, const struct sf_entry_meta *m)
{
    if (m->format == j->kind)
        return 0;
    sf_warn("%s: cached entry of kind %u where %u was expected; ignoring it", j->what, m->format, j->kind);
    return -ENOENT;
}

/* A value from the shared store is what its kind says before it is
 * served or stored: an image whose header gives that format and size, or
 * a vector of finite numbers (a forged or damaged value with a valid
 * checksum is refused).  0, or -EINVAL with why. */
static int value_fits(const struct produce_job *j, const uint8_t *v, size_t len, const struct sf_entry_meta *m,
                      char *why, size_t whylen)
{
    enum sf_format f;
    float vec[SF_VECTOR_FLOATS];
    int w, h;

    if (j->kind == SF_ENTRY_STYLE_VECTOR) {
        if (len == SF_VECTOR_BYTES && sf_vector_get(v, vec) == 0)
            return 0;
        snprintf(why, whylen, "not a style vector (%zu bytes)", len);
        return -EINVAL;
    }
    if (sf_image_probe(v, len, &f, &w, &h, why, whylen) == 0 && (uint32_t)f == j->kind && (uint32_t)w == m->width &&
        (uint32_t)h == m->height)
        return 0;
    snprintf(why, whylen, "its bytes are not the %ux%u %s its header says", m->width, m->height,
             sf_format_name((enum sf_format)j->kind));
    return -EINVAL;
}

/* The local cache's entry for j (with peek, only that it is there):
 * 0, -ENOENT (miss, or the cache failed: logged). */
static int local_get(struct sf_pipeline *p, const struct produce_job *j, int peek, uint8_t **out, size_t *outlen)
{
    struct sf_entry_meta meta;
    int rc;

    if (!p->cache)
        return -ENOENT;
    *out = NULL;
    *outlen = 0;
    rc = peek ? sf_cache_peek(p->cache, j->key, &meta) : sf_cache_get(p->cache, j->key, out, outlen, &meta);
    if (rc && rc != -ENOENT)
        sf_warn("%s: cache read failed (%s); computing", j->what, strerror(-rc));
    if (!rc && (rc = kind_ok(j, &meta))) {
        free(*out);
        *out = NULL;
        *outlen = 0;
    }
    return rc ? -ENOENT : 0;
}

/* Store a value under key (when p->cache).  A failure is logged, naming
 * `what`, and not returned: the value is used uncached. */
static void local_put(struct sf_pipeline *p, const uint8_t key[16], const uint8_t *data, size_t len, int w, int h,
                      uint32_t kind, const char *what)
{
    int rc;

    if (!p->cache)
        return;
    rc = sf_cache_put(p->cache, key, data, len, (uint32_t)w, (uint32_t)h, kind);
    if (rc)
        sf_warn("%s: not cached: %s", what,
                rc == -ENOSPC ? "cache full (no space on disk or map)" : strerror(-rc));
}

static int offload(struct sf_pipeline *p, const struct produce_job *j, const char *token, uint8_t **out,
                   size_t *outlen, char *why, size_t whylen);

/* The shared store's entry for j, checked (of j's kind, and its bytes what
 * its header says: an unfit one is dropped, never served or stored) and
 * kept locally.  0 (*out), -EBADMSG (there, but unfit or of another kind),
 * or sf_remote_get's codes. */
static int remote_take(struct sf_pipeline *p, const struct produce_job *j, uint8_t **out, size_t *outlen)
{
    struct sf_entry_meta meta;
    char vwhy[160];
    int rc;

    if ((rc = sf_remote_get(p->remote, j->key, out, outlen, &meta)))
        return rc;
    if (kind_ok(j, &meta) == 0) {
        if (value_fits(j, *out, *outlen, &meta, vwhy, sizeof vwhy) == 0) {
            local_put(p, j->key, *out, *outlen, (int)meta.width, (int)meta.height, j->kind, j->what);
            return 0;
        }
        sf_remote_drop(p->remote, j->key, vwhy);
    }
    free(*out);                 /* another kind: computed, and the store gets ours */
    *out = NULL;
    return -EBADMSG;
}

/* The flight leader after a local miss: the shared store's entry, or its
 * lease and a computation (waiting while another host holds the lease, up
 * to twice the lease, then computing anyway: a second computation of the
 * same key gives the same bytes), or, without a usable store, a local
 * computation.  Returns 0 or the job's codes. */
static int fetch_or_compute(struct sf_pipeline *p, const struct produce_job *j, uint8_t **out, size_t *outlen,
                            int *how, char *why, size_t whylen)
{
    struct sf_remote *rm = p->remote;
    char token[SF_REMOTE_TOKEN_LEN];
    int rc, leased = 0, w = 0, h = 0;

    if (rm) {
        double deadline = sf_monotonic() + 2 * (double)sf_remote_lease_ms(rm) / 1000;
        for (;;) {
            if ((rc = remote_take(p, j, out, outlen)) == 0) {
                atomic_fetch_add(&j->counts->remote_hits, 1);
                *how = SF_PRODUCED_REMOTE;
                return 0;
            }
            if (rc == -EBADMSG)
                rc = -ENOENT;
            if (rc != -ENOENT || (rc = sf_remote_lease(rm, j->key, token)) != -EBUSY) {
                leased = rc == 0;
                break;
            }
            if (sf_remote_wait(rm, j->key, deadline, p->cancel))
                break;          /* waited long enough, or the store failed: compute */
        }
    }
    if (j->req && p->compute != SF_COMPUTE_LOCAL) {
        if (leased) {
            rc = offload(p, j, token, out, outlen, why, whylen);
            if (rc == 0)
                *how = SF_PRODUCED_OFFLOADED;
            if (rc != -EAGAIN)
                return rc;  /* a failure leaves the lease to expire: a worker may still hold it */
        } else if (p->compute == SF_COMPUTE_REMOTE) {
            snprintf(why, whylen, "compute=remote: %s", !rm ? "no shared store" :
                     "the shared store is unreachable, or another host's computation of it took too long");
            return -EIO;
        } else {
            atomic_fetch_add(&p->offload_fallbacks, 1);
        }
    }
    atomic_fetch_add(&j->counts->computes, 1);
    *how = SF_PRODUCED_COMPUTED;
    rc = j->compute(p, j->ctx, out, outlen, &w, &h, why, whylen);
    if (!rc) {
        local_put(p, j->key, *out, *outlen, w, h, j->kind, j->what);
        if (rm)
            sf_remote_put(rm, j->key, *out, *outlen, (uint32_t)w, (uint32_t)h, j->kind);
    }
    if (leased)
        sf_remote_release(rm, j->key, token, rc == 0);
    return rc;
}

/* Hand j to a worker (holding its lease, token): queue it, then wait for
 * its entry in the shared store, up to offload_timeout_s.  Returns 0 (the
 * entry, checked, stored locally: *out), -EAGAIN (compute here: auto mode
 * with no live worker or a full queue, or the job failed or took too
 * long), -EIO with why (remote mode: no worker did it), -ECANCELED. */
static int offload(struct sf_pipeline *p, const struct produce_job *j, const char *token, uint8_t **out,
                   size_t *outlen, char *why, size_t whylen)
{
    struct sf_remote *rm = p->remote;
    const struct sf_produce_req *r = j->req;
    double t0 = sf_monotonic(), deadline = t0 + p->offload_timeout_s;
    struct sf_job job;
    char refused[256] = "";
    uint64_t depth;
    int rc;

    if (p->compute == SF_COMPUTE_AUTO &&
        (sf_remote_workers_alive(rm) || sf_remote_queue_depth(rm, &depth) || depth >= p->offload_max)) {
        atomic_fetch_add(&p->offload_fallbacks, 1);
        return -EAGAIN;         /* no worker alive, Redis failing, or the queue full: here */
    }
    memset(&job, 0, sizeof job);
    memcpy(job.key, j->key, 16);
    snprintf(job.token, sizeof job.token, "%s", token);
    snprintf(job.style, sizeof job.style, "%s", r->model->name);
    memcpy(job.digest, r->model->digest, 16);
    job.fmt = (uint32_t)r->fmt;
    job.max_side = p->set.max_side;
    job.quality = p->set.quality;
    job.strip_meta = p->set.strip_meta;
    if (r->model->kind == SF_STYLE_IMAGE) {
        /* a painting: its bytes go too, for a worker whose folders lack
         * it (only the bytes the style was loaded from); read and sent
         * once while they stay in the store */
        const struct sf_model *b = r->model->base ? r->model->base : r->model;
        uint8_t *pb = NULL, ph[16];
        size_t plen;
        if (sf_remote_touch_blob(rm, "paint:", sf_style_content(b), SF_JOB_SOURCE_TTL_MS) == 0) {
            memcpy(job.content, sf_style_content(b), 16);
            job.has_content = 1;
        } else if (sf_read_file(sf_style_path(b), SF_MAX_SOURCE_BYTES, &pb, &plen) == 0) {
            sf_hash_bytes(pb, plen, ph);
            if (!memcmp(ph, sf_style_content(b), 16) &&
                sf_remote_put_blob(rm, "paint:", ph, pb, plen, SF_JOB_SOURCE_TTL_MS) == 0) {
                memcpy(job.content, ph, 16);
                job.has_content = 1;
            }
            free(pb);
        }
    }
    if ((rc = sf_remote_enqueue(rm, &job, r->src, r->len))) {
        snprintf(refused, sizeof refused, "cannot queue it (%s)", strerror(-rc));
        goto out_fallback;
    }
    for (;;) {
        rc = sf_remote_wait(rm, j->key, deadline, p->cancel);
        if (rc == -ECANCELED)
            return rc;
        if (rc == 0 && (rc = remote_take(p, j, out, outlen)) == 0) {
            atomic_fetch_add(&p->offloaded, 1);
            atomic_fetch_add(&p->offload_wait_ms, (unsigned long long)((sf_monotonic() - t0) * 1e3));
            return 0;
        }
        if (rc == -EBADMSG) {
            snprintf(refused, sizeof refused, "its result was unfit");
            break;
        }
        if (rc != -ENOENT)
            break;              /* timed out, or the store failed */
        /* no entry, and the lease is free: refused, or its worker died
         * (the heartbeat queues it again after a lease) */
        if (sf_remote_job_refused(rm, j->key, refused, sizeof refused) == 0)
            break;
        if (sf_monotonic() >= deadline)
            break;
        nanosleep(&(struct timespec){ 0, 100000000L }, NULL);
    }
out_fallback:
    atomic_fetch_add(&p->offload_wait_ms, (unsigned long long)((sf_monotonic() - t0) * 1e3));
    if (!refused[0])
        snprintf(refused, sizeof refused, "no worker did it within offload_timeout=%u", p->offload_timeout_s);
    if (p->compute == SF_COMPUTE_REMOTE) {
        snprintf(why, whylen, "compute=remote: %s", refused);
        return -EIO;
    }
    atomic_fetch_add(&p->offload_fallbacks, 1);
    sf_warn("%s: handed to the workers, but %s; computing here", j->what, refused);
    return -EAGAIN;
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

/* Join the computation of f (flights_lock held, and released here): its
 * bytes, or its code and reason. */
static int flight_join(struct sf_pipeline *p, struct sf_flight *f, uint8_t **out, size_t *outlen, char *why,
                       size_t whylen)
{
    int rc;

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
    return rc;
}

/* End the flight f that this caller led, with its result: waiters get a
 * copy of the bytes, or the code and reason. */
static void flight_land(struct sf_pipeline *p, struct sf_flight *f, int rc, const uint8_t *out, size_t outlen,
                        const char *why)
{
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
    else if (f->waiters > 1 && !(f->out = dup_bytes(out, outlen))) {
        f->rc = -ENOMEM;        /* the waiters get that; the leader has its bytes */
        snprintf(f->why, sizeof f->why, "out of memory");
    }
    f->len = outlen;
    pthread_cond_broadcast(&f->cond);
    flight_leave(f);
    pthread_mutex_unlock(&p->flights_lock);
}

/* The one produce path for job j (see the section's head).  On success
 * *out (malloc'd; NULL for a hit with j->peek) and *outlen hold the value
 * and *how says what happened.  Returns 0 or the job's codes (joiners of a
 * failed computation get its code and reason). */
static int produce(struct sf_pipeline *p, const struct produce_job *j, uint8_t **out, size_t *outlen, int *how,
                   char *why, size_t whylen)
{
    struct sf_flight *f;
    int rc;

    *out = NULL;
    *outlen = 0;
    why[0] = '\0';
    if (local_get(p, j, j->peek, out, outlen) == 0) {
        atomic_fetch_add(&j->counts->hits, 1);
        *how = SF_PRODUCED_HIT;
        if (j->publish)
            sf_pipeline_publish(p, j->key);
        return 0;
    }
    atomic_fetch_add(&j->counts->misses, 1);
    pthread_mutex_lock(&p->flights_lock);
    for (f = p->flights; f; f = f->next)
        if (!memcmp(f->key, j->key, 16))
            break;
    if (f) {
        atomic_fetch_add(&j->counts->joins, 1);
        *how = SF_PRODUCED_JOINED;
        return flight_join(p, f, out, outlen, why, whylen);   /* unlocks */
    }
    if (!(f = calloc(1, sizeof *f))) {
        pthread_mutex_unlock(&p->flights_lock);
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    memcpy(f->key, j->key, 16);
    pthread_cond_init(&f->cond, NULL);
    f->waiters = 1;
    f->next = p->flights;
    p->flights = f;
    pthread_mutex_unlock(&p->flights_lock);

    /* Another process may have stored it meanwhile (peek or not: the
     * waiters want bytes, so read it). */
    *how = SF_PRODUCED_HIT;
    if ((rc = local_get(p, j, 0, out, outlen)))
        rc = fetch_or_compute(p, j, out, outlen, how, why, whylen);
    flight_land(p, f, rc, *out, *outlen, why);
    if (rc) {
        free(*out);
        *out = NULL;
        return rc;
    }
    if (j->peek) {              /* the caller did not want the bytes */
        free(*out);
        *out = NULL;
        *outlen = 0;
    }
    return 0;
}

/* ---- styled images --------------------------------------------------------- */

static int compute_image(struct sf_pipeline *p, const void *ctx, uint8_t **out, size_t *outlen, int *w, int *h,
                         char *why, size_t whylen)
{
    const struct sf_produce_req *r = ctx;

    return sf_stylize(p, r->model, r->src, r->len, r->fmt, out, outlen, w, h, why, whylen);
}

int sf_produce(struct sf_pipeline *p, const struct sf_produce_req *r, uint8_t **out, size_t *outlen, int *how,
               char *why, size_t whylen)
{
    struct produce_job j = { .kind = (uint32_t)r->fmt, .peek = r->peek, .publish = r->publish, .what = r->what,
                             .counts = &p->images, .compute = compute_image, .ctx = r, .req = r };
    uint8_t h[16];
    int rc;

    sf_hash_bytes(r->src, r->len, h);
    sf_key_make(h, r->model->digest, (uint32_t)r->fmt, &p->set, j.key);
    if ((rc = produce(p, &j, out, outlen, how, why, whylen)))
        return rc;
    if (r->id && p->cache)
        sf_cache_alias_put(p->cache, r->id, j.key);
    return 0;
}

/* ---- style vectors ----------------------------------------------------------- */

/* What a style vector's computation needs: the painting's bytes, read
 * once, which its key was made from. */
struct vector_ctx {
    const struct sf_model *m;
    const uint8_t *src;
    size_t len;
};

static int compute_vector(struct sf_pipeline *p, const void *ctx, uint8_t **out, size_t *outlen, int *w, int *h,
                          char *why, size_t whylen)
{
    const struct vector_ctx *c = ctx;
    float vec[SF_ARB_VEC];
    struct sf_image img;
    double t0;
    int rc;

    /* the painting's failures are the style's, not the photo's: -EIO,
     * never -EINVAL or -EFBIG, which would mark the photo as broken */
    if ((rc = sf_image_decode(c->src, c->len, p->set.max_pixels, &img, why, whylen))) {
        char w2[256];
        snprintf(w2, sizeof w2, "%s", why);
        snprintf(why, whylen, "style %s: the painting %s: %s", c->m->name, sf_style_path(c->m), w2);
        return rc == -ENOMEM ? -ENOMEM : -EIO;
    }
    t0 = sf_monotonic();
    rc = sf_arb_predict(c->m->arb, img.rgb, img.w, img.h, vec, p->cancel);
    sf_image_free(&img);
    if (rc) {
        snprintf(why, whylen, "style %s: the style predictor: %s", c->m->name, strerror(-rc));
        return rc;
    }
    sf_info("style %s: its vector from %s in %.0f ms (predictor, cpu)", c->m->name, sf_style_path(c->m),
            (sf_monotonic() - t0) * 1e3);
    if (!(*out = malloc(SF_VECTOR_BYTES))) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    sf_vector_put(*out, vec);
    *outlen = SF_VECTOR_BYTES;
    *w = SF_VECTOR_FLOATS;
    *h = 1;
    return 0;
}

int sf_style_vector(struct sf_pipeline *p, const struct sf_model *m, float vec[SF_ARB_VEC], char *why,
                    size_t whylen)
{
    struct produce_job j = { .kind = SF_ENTRY_STYLE_VECTOR, .what = "style vector", .counts = &p->vectors,
                             .compute = compute_vector };
    struct vector_ctx c = { .m = m };
    uint8_t h[16], *d = NULL, *v;
    size_t vlen;
    int how, rc;

    if (m->kind != SF_STYLE_IMAGE) {
        snprintf(why, whylen, "style %s is not a painting", m->name);
        return -EINVAL;
    }
    if ((rc = sf_read_file(sf_style_path(m), SF_MAX_SOURCE_BYTES, &d, &c.len))) {
        snprintf(why, whylen, "style %s: the painting %s: %s", m->name, sf_style_path(m), strerror(-rc));
        return rc == -ENOMEM ? -ENOMEM : -EIO;
    }
    c.src = d;
    sf_hash_bytes(d, c.len, h);
    if (memcmp(h, sf_style_content(m), 16)) {
        /* its styled photos are keyed by the bytes seen at load: a vector
         * of other bytes must never be stored or used under them */
        snprintf(why, whylen, "style %s: %s changed since the styles were loaded (remount, or run again)", m->name,
                 sf_style_path(m));
        free(d);
        return -ESTALE;
    }
    sf_key_make(h, m->arb->digest, SF_ENTRY_STYLE_VECTOR, NULL, j.key);
    j.ctx = &c;
    rc = produce(p, &j, &v, &vlen, &how, why, whylen);
    free(d);
    if (rc)
        return rc;
    if (vlen != SF_VECTOR_BYTES || sf_vector_get(v, vec)) {
        /* a local entry is checked before it is served; this is a value
         * that checked but is not a vector: refuse it, never use it */
        snprintf(why, whylen, "style %s: its cached vector is damaged (%zu bytes)", m->name, vlen);
        free(v);
        return -EIO;
    }
    free(v);
    return 0;
}
