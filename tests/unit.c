/* unit.c: in-process tests of the parsers, the model loader, the engine's
 * shape handling, the codecs and the cache.
 *
 * usage: unit SHARED_MODELS_DIR TMPDIR
 * Prints "PASS name", "FAIL name: why" or "SKIP name: why" per test;
 * tests/run.sh counts them. */
#include "cache.h"
#include "engine.h"
#include "image.h"
#include "meta.h"
#include "pipeline.h"
#include "style.h"
#include "util.h"

#include <errno.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *g_models, *g_tmp;
static int g_fail;

/* A styles path of the one folder dir (static: one in use at a time). */
static const struct sf_styles_path *one(const char *dir)
{
    static struct sf_styles_path sp;
    sf_styles_path_one(&sp, dir);
    return &sp;
}

#define EXPECT(cond, ...)                                              \
    do {                                                               \
        if (!(cond)) {                                                 \
            printf("FAIL %s: ", name);                                 \
            printf(__VA_ARGS__);                                       \
            printf(" (%s:%d)\n", __FILE__, __LINE__);                  \
            g_fail++;                                                  \
            return;                                                    \
        }                                                              \
    } while (0)
#define PASS() printf("PASS %s\n", name)

static void t_parse(void)
{
    const char *name = "parse sizes, ages and numbers";
    uint64_t v;
    EXPECT(sf_parse_size("500M", &v) == 0 && v == 500ULL << 20, "500M");
    EXPECT(sf_parse_size("2G", &v) == 0 && v == 2ULL << 30, "2G");
    EXPECT(sf_parse_size("1KiB", &v) == 0 && v == 1024, "1KiB");
    EXPECT(sf_parse_size("123", &v) == 0 && v == 123, "123");
    EXPECT(sf_parse_size("12X", &v) == -EINVAL, "12X accepted");
    EXPECT(sf_parse_size("-1", &v) == -EINVAL, "-1 accepted");
    EXPECT(sf_parse_size("", &v) == -EINVAL, "empty accepted");
    EXPECT(sf_parse_size("99999999999T", &v) == -EINVAL, "overflow accepted");
    EXPECT(sf_parse_age("30d", &v) == 0 && v == 30 * 86400, "30d");
    EXPECT(sf_parse_age("2w", &v) == 0 && v == 14 * 86400, "2w");
    EXPECT(sf_parse_age("90", &v) == 0 && v == 90, "90");
    EXPECT(sf_parse_age("5y", &v) == -EINVAL, "5y accepted");
    EXPECT(sf_parse_age("5dd", &v) == -EINVAL, "5dd accepted");
    EXPECT(sf_parse_u64("12a", 0, 100, &v) == -EINVAL, "12a accepted");
    EXPECT(sf_parse_u64("101", 0, 100, &v) == -ERANGE, "101 in range");
    EXPECT(sf_parse_u64(" 5", 0, 100, &v) == -EINVAL, "leading space accepted");
    PASS();
}

static int copy_style(const char *from, const char *to)
{
    char cmd[5 * PATH_MAX];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s' && cp -r '%s/.' '%s/'", to, to, from, to);
    return system(cmd);
}

static void t_model_good(void)
{
    const char *name = "model loader: good checkpoint";
    struct sf_model *m, *m2;
    char err[512];
    int rc = sf_model_load(one(g_models), NULL, "udnie", &m, err, sizeof err);
    EXPECT(rc == 0, "load udnie: %s", err);
    /* the network's exact parameter count: 48 tensors (network.md) */
    {
        size_t want = 0;
        for (int i = 0; i < SF_LAYERS; i++)
            want += (size_t)sf_net[i].k * sf_net[i].k * sf_net[i].cin * sf_net[i].cout + 2 * (size_t)sf_net[i].cout;
        EXPECT(m->nfloats == want, "nfloats %zu, the network has %zu", m->nfloats, want);
    }
    EXPECT(sf_model_load(one(g_models), NULL, "wave", &m2, err, sizeof err) == 0, "load wave: %s", err);
    EXPECT(memcmp(m->digest, m2->digest, 16) != 0, "two styles share a digest");
    sf_model_free(m);
    sf_model_free(m2);
    EXPECT(sf_model_load(one(g_models), NULL, "no_such_style", &m, err, sizeof err) == -ENOENT, "missing style");
    EXPECT(sf_model_load(one(g_models), NULL, "../udnie", &m, err, sizeof err) == -ENOENT, "path escape");
    PASS();
}

/* Damage a copy of udnie with `how`, load it, expect -EINVAL naming `file`. */
static void damaged(const char *what, const char *how, const char *file)
{
    char name[128], dir[PATH_MAX], src[PATH_MAX], cmd[2 * PATH_MAX], err[512];
    struct sf_model *m = NULL;
    int rc;

    snprintf(name, sizeof name, "model loader: damaged (%s) refused naming the file", what);
    snprintf(dir, sizeof dir, "%s/styles/broken", g_tmp);
    snprintf(src, sizeof src, "%s/udnie", g_models);
    EXPECT(copy_style(src, dir) == 0, "copy");
    snprintf(cmd, sizeof cmd, "cd '%s' && %s", dir, how);
    EXPECT(system(cmd) == 0, "damage: %s", how);
    snprintf(src, sizeof src, "%s/styles", g_tmp);
    rc = sf_model_load(one(src), NULL, "broken", &m, err, sizeof err);
    EXPECT(rc == -EINVAL, "rc %d (%s)", rc, err);
    EXPECT(strstr(err, file) != NULL, "message '%s' does not name %s", err, file);
    PASS();
}

static void t_engine_shapes(void)
{
    const char *name = "engine: output has exactly the input size (1x1, 1xN, Nx1, odd), every engine here";
    static const int sz[][2] = { { 1, 1 }, { 1, 9 }, { 9, 1 }, { 5, 3 }, { 3, 5 }, { 301, 2 }, { 2, 157 }, { 17, 13 } };
    static const enum sf_device devs[] = { SF_DEVICE_CPU, SF_DEVICE_CUDA };
    struct sf_model *m;
    struct sf_engine *e;
    char err[512];

    EXPECT(sf_model_load(one(g_models), NULL, "udnie", &m, err, sizeof err) == 0, "%s", err);
    for (size_t d = 0; d < 2; d++) {
        int rc = sf_engine_open(devs[d], &e, err, sizeof err);
        if (devs[d] == SF_DEVICE_CUDA && rc) {
            /* no GPU here: the refusal must be -ENODEV and say why */
            EXPECT(rc == -ENODEV && strstr(err, "cuda: "), "cuda without a GPU must fail clearly: '%s'", err);
            break;
        }
        EXPECT(rc == 0, "%s", err);
        for (size_t i = 0; i < sizeof sz / sizeof *sz; i++) {
            int w = sz[i][0], h = sz[i][1];
            size_t n = (size_t)w * h * 3;
            uint8_t *in = malloc(n), *out = malloc(n + 64);
            for (size_t k = 0; k < n; k++)
                in[k] = (uint8_t)(k * 37);
            /* run twice over two different fills: every output byte must be
             * written (the same on both runs), none past the end */
            uint8_t *out2 = malloc(n + 64);
            memset(out, 0xA5, n + 64);
            memset(out2, 0x5A, n + 64);
            EXPECT(sf_engine_run(e, m, in, w, h, out, NULL) == 0, "%s run %dx%d", e->ops->name, w, h);
            EXPECT(sf_engine_run(e, m, in, w, h, out2, NULL) == 0, "%s run %dx%d", e->ops->name, w, h);
            EXPECT(!memcmp(out, out2, n), "%s %dx%d left output bytes unwritten", e->ops->name, w, h);
            for (int k = 0; k < 64; k++)
                EXPECT(out[n + k] == 0xA5 && out2[n + k] == 0x5A, "%s %dx%d wrote past the output", e->ops->name, w, h);
            free(out2);
            free(in);
            free(out);
        }
        sf_engine_close(e);
    }
    sf_model_free(m);
    PASS();
}

/* An engine with an idle limit releases its backend after that long
 * without a pass, and reopens it for the next. */
static void t_engine_idle(void)
{
    const char *name = "engine: released after gpu_idle seconds, reopened on the next pass";
    struct sf_model *m;
    struct sf_engine *e;
    uint8_t in[12 * 3], out[12 * 3];
    char err[512];

    for (size_t k = 0; k < sizeof in; k++)
        in[k] = (uint8_t)(k * 11);
    EXPECT(sf_model_load(one(g_models), NULL, "udnie", &m, err, sizeof err) == 0, "%s", err);
    EXPECT(sf_engine_open(SF_DEVICE_CPU, &e, err, sizeof err) == 0, "%s", err);
    sf_engine_set_idle(e, 1);
    EXPECT(sf_engine_run(e, m, in, 4, 3, out, NULL) == 0, "first pass");
    EXPECT(sf_engine_is_open(e), "open right after a pass");
    for (int i = 0; i < 40 && sf_engine_is_open(e); i++)
        usleep(100 * 1000);
    EXPECT(!sf_engine_is_open(e), "still open 4 s after a pass with gpu_idle=1");
    EXPECT(sf_engine_run(e, m, in, 4, 3, out, NULL) == 0, "pass after release");
    EXPECT(sf_engine_is_open(e), "reopened");
    sf_engine_close(e);
    sf_model_free(m);
    PASS();
}

static void t_codec_roundtrip(void)
{
    const char *name = "codecs: encode and decode JPEG, PNG, BMP, TGA with and without alpha";
    static const enum sf_format fmts[] = { SF_FMT_JPEG, SF_FMT_PNG, SF_FMT_BMP, SF_FMT_TGA };
    char why[256];
    for (int alpha = 0; alpha < 2; alpha++)
        for (size_t f = 0; f < 4; f++) {
            struct sf_image img = { .w = 13, .h = 7, .rgb = malloc(13 * 7 * 3), .alpha = alpha ? malloc(13 * 7) : NULL }, back;
            uint8_t *enc;
            size_t len;
            enum sf_format got;
            int w, h;
            for (int i = 0; i < 13 * 7 * 3; i++)
                img.rgb[i] = (uint8_t)(i * 5);
            for (int i = 0; alpha && i < 13 * 7; i++)
                img.alpha[i] = (uint8_t)(i * 3);
            EXPECT(sf_image_encode(&img, fmts[f], 90, &enc, &len, why, sizeof why) == 0, "%s", why);
            EXPECT(sf_image_probe(enc, len, &got, &w, &h, why, sizeof why) == 0 && got == fmts[f] &&
                   w == 13 && h == 7, "probe %s", sf_format_name(fmts[f]));
            EXPECT(sf_image_decode(enc, len, 1000, &back, why, sizeof why) == 0, "%s", why);
            if (fmts[f] != SF_FMT_JPEG) {
                EXPECT(!memcmp(back.rgb, img.rgb, 13 * 7 * 3), "%s rgb not lossless", sf_format_name(fmts[f]));
                EXPECT(!alpha || (back.alpha && !memcmp(back.alpha, img.alpha, 13 * 7)),
                       "%s lost alpha", sf_format_name(fmts[f]));
            }
            EXPECT(sf_image_decode(enc, len, 13 * 7 - 1, &back, why, sizeof why) == -EFBIG,
                   "max_pixels not enforced");
            for (size_t cut = 1; cut < len; cut += cut < 16 ? 1 : len / 7)
                EXPECT(sf_image_decode(enc, len - cut, 1000, &back, why, sizeof why) != 0 ||
                       (fmts[f] == SF_FMT_PNG && cut <= 4),        /* only IEND's CRC lost */
                       "%s cut by %zu bytes decoded", sf_format_name(fmts[f]), cut);
            free(enc);
            sf_image_free(&img);
        }
    /* PNG at a size that takes the parallel filter path, with flat,
     * gradient and noisy regions so that every filter type gets chosen */
    for (int alpha = 0; alpha < 2; alpha++) {
        int w = 701, h = 503;
        struct sf_image img = { .w = w, .h = h, .rgb = malloc((size_t)w * h * 3), .alpha = alpha ? malloc((size_t)w * h) : NULL }, back;
        uint8_t *enc;
        size_t len;
        uint32_t r = 12345;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w * 3; x++) {
                r = r * 1103515245u + 12345u;
                img.rgb[(size_t)y * w * 3 + x] = (uint8_t)(y < 100 ? 7u : y < 250 ? (uint32_t)(x / 3 + y) : y < 400 ? (uint32_t)(x * y) >> 6 : r >> 24);
            }
        for (int i = 0; alpha && i < w * h; i++)
            img.alpha[i] = (uint8_t)(i % 251);
        EXPECT(sf_image_encode(&img, SF_FMT_PNG, 90, &enc, &len, why, sizeof why) == 0, "%s", why);
        EXPECT(sf_image_decode(enc, len, 1u << 20, &back, why, sizeof why) == 0, "%s", why);
        EXPECT(back.w == w && back.h == h && !memcmp(back.rgb, img.rgb, (size_t)w * h * 3),
               "701x503 PNG rgb not lossless");
        EXPECT(!alpha || (back.alpha && !memcmp(back.alpha, img.alpha, (size_t)w * h)), "701x503 PNG lost alpha");
        free(enc);
        sf_image_free(&back);
        sf_image_free(&img);
    }
    {
        struct sf_image back;
        EXPECT(sf_image_decode((const uint8_t *)"hello", 5, 1000, &back, why, sizeof why) == -EINVAL,
               "text decoded");
        EXPECT(sf_image_decode((const uint8_t *)"", 0, 1000, &back, why, sizeof why) == -EINVAL,
               "empty decoded");
    }
    PASS();
}

static void t_fit(void)
{
    const char *name = "codecs: --max-side downscale keeps aspect";
    struct sf_image img = { .w = 400, .h = 100, .rgb = calloc(400 * 100, 3), .alpha = calloc(400 * 100, 1) };
    EXPECT(sf_image_fit(&img, 100) == 0 && img.w == 100 && img.h == 25 && img.alpha, "%dx%d", img.w, img.h);
    EXPECT(sf_image_fit(&img, 0) == 0 && img.w == 100, "0 must be off");
    EXPECT(sf_image_fit(&img, 1000) == 0 && img.w == 100, "never upscales");
    sf_image_free(&img);
    PASS();
}

static void key_for(const char *style, enum sf_format f, int q, int side, uint8_t key[16])
{
    static struct sf_model a, b;
    struct sf_settings s;
    uint8_t h[16];
    memset(a.digest, 1, 16);
    memset(b.digest, 2, 16);
    sf_settings_default(&s);
    s.quality = q;
    s.max_side = side;
    sf_hash_bytes("photo", 5, h);
    sf_key_make(h, (!strcmp(style, "a") ? &a : &b)->digest, (uint32_t)f, &s, key);
}

static void t_keys(void)
{
    const char *name = "cache key: settings that change bytes change the key";
    uint8_t k0[16], k[16];
    key_for("a", SF_FMT_JPEG, 90, 1024, k0);
    key_for("a", SF_FMT_JPEG, 90, 1024, k);
    EXPECT(!memcmp(k0, k, 16), "not deterministic");
    key_for("b", SF_FMT_JPEG, 90, 1024, k);
    EXPECT(memcmp(k0, k, 16), "style ignored");
    key_for("a", SF_FMT_JPEG, 91, 1024, k);
    EXPECT(memcmp(k0, k, 16), "quality ignored");
    key_for("a", SF_FMT_JPEG, 90, 512, k);
    EXPECT(memcmp(k0, k, 16), "max_side ignored");
    key_for("a", SF_FMT_PNG, 90, 1024, k);
    EXPECT(memcmp(k0, k, 16), "format ignored");
    key_for("a", SF_FMT_PNG, 90, 1024, k0);
    key_for("a", SF_FMT_PNG, 50, 1024, k);
    EXPECT(!memcmp(k0, k, 16), "quality must not split PNG entries");
    key_for("a", SF_FMT_WEBP, 90, 1024, k0);
    key_for("a", SF_FMT_WEBP, 50, 1024, k);
    EXPECT(memcmp(k0, k, 16), "quality must split WebP entries");
    {
        struct sf_settings st;
        uint8_t h[16], d[16] = { 1 }, ks[16];
        sf_settings_default(&st);
        sf_hash_bytes("photo", 5, h);
        sf_key_make(h, d, SF_FMT_JPEG, &st, k);
        st.strip_meta = 1;
        sf_key_make(h, d, SF_FMT_JPEG, &st, ks);
        EXPECT(memcmp(k, ks, 16), "strip_meta ignored");
    }
    {
        /* the bytes of a key are part of every cache and shared store:
         * pinned, so that a refactor cannot orphan them (moved on purpose
         * with SF_FORMAT_VERSION 5: PNG and TIFF outputs now carry the
         * source's metadata too) */
        static const uint8_t pinned[16] = { 0x9c, 0x1f, 0x61, 0xde, 0xef, 0xa0, 0x2a, 0x17,
                                            0xea, 0x3e, 0x90, 0xc0, 0x40, 0xdc, 0x42, 0x56 };
        key_for("a", SF_FMT_JPEG, 90, 1024, k);
        EXPECT(!memcmp(k, pinned, 16), "the key of (photo, a, JPEG, 90, 1024) moved: %02x%02x%02x%02x...", k[0], k[1],
               k[2], k[3]);
    }
    {
        /* a style vector's key: its own kind, no settings */
        uint8_t h[16], d[16], kv[16], ki[16];
        sf_hash_bytes("photo", 5, h);
        memset(d, 1, 16);
        sf_key_make(h, d, SF_ENTRY_STYLE_VECTOR, NULL, kv);
        sf_key_make(h, d, SF_FMT_JPEG, NULL, ki);
        EXPECT(memcmp(kv, ki, 16), "a style vector's key equals an image's");
    }
    PASS();
}

static void t_vector_value(void)
{
    const char *name = "cache: a style vector's value, 100 float32 little-endian";
    float v[SF_VECTOR_FLOATS], back[SF_VECTOR_FLOATS];
    uint8_t b[SF_VECTOR_BYTES];
    for (int i = 0; i < SF_VECTOR_FLOATS; i++)
        v[i] = (float)i * 0.25f - 3.0f;
    sf_vector_put(b, v);
    EXPECT(b[4] == 0x00 && b[5] == 0x00 && b[6] == 0x30 && b[7] == 0xc0, "element 1 (-2.75f) is not 0000 30c0 LE");
    EXPECT(sf_vector_get(b, back) == 0 && !memcmp(v, back, sizeof v), "round trip");
    b[4 * 7 + 3] = 0x7f;
    b[4 * 7 + 2] = 0xc0;    /* element 7: a NaN */
    EXPECT(sf_vector_get(b, back) == -EINVAL, "a NaN was accepted");
    PASS();
}

static int open_cache(const char *sub, struct sf_cache **c)
{
    char dir[PATH_MAX], why[256], cmd[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/%s", g_tmp, sub);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd))
        return -1;
    return sf_cache_open(dir, NULL, c, why, sizeof why);
}

static void t_cache_basic(void)
{
    const char *name = "cache: put, get, miss, peek, header";
    struct sf_cache *c;
    uint8_t key[16] = { 1 }, other[16] = { 2 }, *data;
    size_t len;
    struct sf_entry_meta m;
    EXPECT(open_cache("c1", &c) == 0, "open");
    EXPECT(sf_cache_get(c, key, &data, &len, NULL) == -ENOENT, "empty cache hit");
    EXPECT(sf_cache_put(c, key, "hello image", 11, 3, 4, SF_FMT_PNG) == 0, "put");
    EXPECT(sf_cache_get(c, key, &data, &len, &m) == 0 && len == 11 && !memcmp(data, "hello image", 11),
           "get");
    free(data);
    EXPECT(m.width == 3 && m.height == 4 && m.format == SF_FMT_PNG && m.created, "meta");
    EXPECT(sf_cache_peek(c, key, &m) == 0 && m.data_len == 11, "peek");
    EXPECT(sf_cache_get(c, other, &data, &len, NULL) == -ENOENT, "other key hit");
    sf_cache_close(c);
    PASS();
}

static void t_cache_corrupt(void)
{
    const char *name = "cache: a damaged entry is dropped, never served";
    struct sf_cache *c;
    uint8_t key[16] = { 9 }, *data;
    size_t len;
    char dir[PATH_MAX];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = { 16, key }, v;

    EXPECT(open_cache("c2", &c) == 0, "open");
    EXPECT(sf_cache_put(c, key, "0123456789", 10, 1, 1, SF_FMT_PNG) == 0, "put");
    sf_cache_close(c);
    /* flip one data byte behind the cache's back */
    snprintf(dir, sizeof dir, "%s/c2", g_tmp);
    EXPECT(mdb_env_create(&env) == 0 && mdb_env_open(env, dir, 0, 0644) == 0, "raw open");
    EXPECT(mdb_txn_begin(env, NULL, 0, &txn) == 0 && mdb_dbi_open(txn, NULL, 0, &dbi) == 0, "raw txn");
    EXPECT(mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size <= 128 && v.mv_size > SF_CACHE_HDR_LEN + 3, "raw get");
    {
        uint8_t buf[128];
        memcpy(buf, v.mv_data, v.mv_size);
        buf[SF_CACHE_HDR_LEN + 3] ^= 0x40;
        v.mv_data = buf;
        EXPECT(mdb_put(txn, dbi, &k, &v, 0) == 0 && mdb_txn_commit(txn) == 0, "raw put");
    }
    mdb_env_close(env);
    EXPECT(sf_cache_open(dir, NULL, &c, dir, sizeof dir) == 0, "reopen");
    EXPECT(sf_cache_get(c, key, &data, &len, NULL) == -ENOENT, "corrupt entry served");
    {
        struct sf_cache_stats st;
        EXPECT(sf_cache_stats(c, &st) == 0 && st.entries == 0, "corrupt entry kept");
    }
    sf_cache_close(c);
    PASS();
}

static void t_cache_full(void)
{
    const char *name = "cache: a full map grows, then evicts LRU, never fails a put";
    struct sf_cache *c;
    struct sf_cache_opts o = { 512 << 10, 2 << 20 };
    struct sf_cache_stats st;
    char dir[PATH_MAX], why[256];
    uint8_t *blob = malloc(512 << 10), key[16] = { 0 }, *data;
    size_t len;

    snprintf(dir, sizeof dir, "%s/c3", g_tmp);
    EXPECT(sf_cache_open(dir, &o, &c, why, sizeof why) == 0, "%s", why);
    for (int i = 0; i < 40; i++) {
        memset(blob, i, 100 << 10);
        key[0] = (uint8_t)i;
        int rc = sf_cache_put(c, key, blob, 100 << 10, 1, 1, SF_FMT_PNG);
        EXPECT(rc == 0, "put %d: %s", i, strerror(-rc));
    }
    EXPECT(sf_cache_stats(c, &st) == 0, "stats");
    EXPECT(st.map_size == 2 << 20, "map did not grow to its max: %llu", (unsigned long long)st.map_size);
    EXPECT(st.entries < 40 && st.entries > 0, "entries %llu", (unsigned long long)st.entries);
    key[0] = 39;
    EXPECT(sf_cache_get(c, key, &data, &len, NULL) == 0 && data[0] == 39, "newest entry missing");
    free(data);
    key[0] = 0;
    EXPECT(sf_cache_get(c, key, &data, &len, NULL) == -ENOENT, "oldest entry survived");
    EXPECT(sf_cache_put(c, key, blob, 512 << 10, 1, 1, SF_FMT_PNG) == -E2BIG, "oversized put");
    sf_cache_close(c);
    free(blob);
    PASS();
}

static void t_cache_prune(void)
{
    const char *name = "cache: prune by age and by size, least recently read first; dry run";
    struct sf_cache *c;
    struct sf_prune_opts po;
    struct sf_prune_result r;
    uint8_t key[16] = { 0 }, *data;
    size_t len;
    char t[32];

    EXPECT(open_cache("c4", &c) == 0, "open");
    for (int i = 0; i < 10; i++) {     /* entry i stored (and read) at day i */
        snprintf(t, sizeof t, "%d", 1700000000 + i * 86400);
        setenv("STYLEFS_NOW", t, 1);
        key[0] = (uint8_t)i;
        EXPECT(sf_cache_put(c, key, "xxxxxxxxxx", 10, 1, 1, SF_FMT_PNG) == 0, "put");
    }
    snprintf(t, sizeof t, "%d", 1700000000 + 20 * 86400);
    setenv("STYLEFS_NOW", t, 1);
    key[0] = 0;                         /* reading entry 0 makes it the newest */
    EXPECT(sf_cache_get(c, key, &data, &len, NULL) == 0, "get 0");
    free(data);
    memset(&po, 0, sizeof po);
    po.older_than = 15 * 86400;         /* entries 1..5 were last read >= 15 days ago; 0 was just read */
    po.dry_run = 1;
    EXPECT(sf_cache_prune(c, &po, &r) == 0 && r.removed == 5 && r.kept == 5, "dry %llu", (unsigned long long)r.removed);
    EXPECT(sf_cache_prune(c, &po, &r) == 0 && r.removed == 5, "dry run removed something");
    po.dry_run = 0;
    EXPECT(sf_cache_prune(c, &po, &r) == 0 && r.removed == 5 && r.kept == 5, "age prune");
    key[0] = 0;
    EXPECT(sf_cache_peek(c, key, &(struct sf_entry_meta){ 0 }) == 0, "recently read entry pruned");
    memset(&po, 0, sizeof po);
    po.max_size = 2 * (SF_CACHE_HDR_LEN + 10);
    /* least recently read first: 6, 7, 8 go; 9 and the re-read 0 stay */
    EXPECT(sf_cache_prune(c, &po, &r) == 0 && r.removed == 3 && r.kept == 2, "size prune %llu", (unsigned long long)r.removed);
    key[0] = 8;
    EXPECT(sf_cache_peek(c, key, &(struct sf_entry_meta){ 0 }) == -ENOENT, "LRU entry 8 kept");
    key[0] = 9;
    EXPECT(sf_cache_peek(c, key, &(struct sf_entry_meta){ 0 }) == 0, "entry 9 removed");
    memset(&po, 0, sizeof po);
    po.all = 1;
    EXPECT(sf_cache_prune(c, &po, &r) == 0 && r.kept == 0, "all");
    unsetenv("STYLEFS_NOW");
    sf_cache_close(c);
    PASS();
}

static void t_style_suffix(void)
{
    const char *name = "style names: NAME[@P][+colors] parsed, malformed ones refused with a reason";
    static const struct { const char *s; int ok, blen, strength, colors; } c[] = {
        { "wave", 1, 4, 100, 0 },        { "wave@50", 1, 4, 50, 0 },       { "wave@0", 1, 4, 0, 0 },
        { "wave@100", 1, 4, 100, 0 },    { "wave+colors", 1, 4, 100, 1 },  { "wave@25+colors", 1, 4, 25, 1 },
        { "wave@101", 0, 0, 0, 0 },      { "wave@050", 0, 0, 0, 0 },       { "wave@", 0, 0, 0, 0 },
        { "wave@-5", 0, 0, 0, 0 },       { "wave+color", 0, 0, 0, 0 },     { "wave+colors@50", 0, 0, 0, 0 },
        { "@50", 0, 0, 0, 0 },           { "+colors", 0, 0, 0, 0 },        { "wave+colors+colors", 0, 0, 0, 0 },
        { "wave@5 0", 0, 0, 0, 0 },
    };
    struct sf_style_suffix sx;
    char why[256];

    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        int rc = sf_style_split(c[i].s, strlen(c[i].s), &sx, why, sizeof why);
        EXPECT((rc == 0) == c[i].ok, "%s: rc %d", c[i].s, rc);
        if (rc)
            EXPECT(strstr(why, c[i].s), "%s: the reason does not name it: %s", c[i].s, why);
        else
            EXPECT((int)sx.base_len == c[i].blen && sx.strength == c[i].strength && sx.colors == c[i].colors,
                   "%s: %zu %d %d", c[i].s, sx.base_len, sx.strength, sx.colors);
    }
    PASS();
}

static void t_variants(void)
{
    const char *name = "network variants: own digests and names, owned by the base, 100 and no colours is the base";
    struct sf_model *m;
    const struct sf_model *v50, *vc, *v50c, *again;
    char err[512];

    EXPECT(sf_model_load(one(g_models), NULL, "udnie", &m, err, sizeof err) == 0, "%s", err);
    v50 = sf_model_variant(m, 50, 0);
    vc = sf_model_variant(m, 100, 1);
    v50c = sf_model_variant(m, 50, 1);
    again = sf_model_variant(m, 50, 0);
    EXPECT(v50 && vc && v50c && v50 == again && sf_model_variant(m, 100, 0) == m, "variants not made once");
    EXPECT(!strcmp(v50->name, "udnie@50") && !strcmp(vc->name, "udnie+colors") && !strcmp(v50c->name, "udnie@50+colors"),
           "names %s %s %s", v50->name, vc->name, v50c->name);
    EXPECT(memcmp(v50->digest, m->digest, 16) && memcmp(vc->digest, m->digest, 16) &&
           memcmp(v50c->digest, v50->digest, 16) && memcmp(v50c->digest, vc->digest, 16), "digests collide");
    EXPECT(v50->base == m && v50->weights[0] == m->weights[0], "a variant runs its base's weights");
    sf_model_ref(v50c);                 /* a reference through a variant is on the base */
    EXPECT(atomic_load(&m->refs) == 2, "refs %d", atomic_load(&m->refs));
    sf_model_free(v50c);
    sf_model_free(m);
    EXPECT(sf_model_load(one(g_models), NULL, "udnie@50+colors", &m, err, sizeof err) == 0, "%s", err);
    EXPECT(!strcmp(m->name, "udnie@50+colors") && m->strength == 50 && m->colors && m->base, "%s", m->name);
    sf_model_free(m);
    EXPECT(sf_model_load(one(g_models), NULL, "udnie@500", &m, err, sizeof err) == -ENOENT && strstr(err, "percent"),
           "udnie@500: %s", err);
    PASS();
}

static void t_finish(void)
{
    const char *name = "finish: strength blends in linear light, +colors keeps the photo's chroma";
    struct sf_model base = { .kind = SF_STYLE_NET, .strength = 100 }, v = base;
    uint8_t photo[4 * 3] = { 200, 40, 40, 40, 200, 40, 128, 128, 128, 0, 0, 0 };
    uint8_t styled[4 * 3] = { 10, 10, 10, 250, 250, 250, 30, 90, 200, 255, 255, 255 }, out[12];

    memcpy(out, styled, sizeof out);
    sf_finish(&base, photo, out, 4);
    EXPECT(!memcmp(out, styled, sizeof out), "a base changed its output");
    v.strength = 0;
    sf_finish(&v, photo, out, 4);
    for (int i = 0; i < 12; i++)
        EXPECT(abs(out[i] - photo[i]) <= 1, "@0 is not the photo: %d vs %d at %d", out[i], photo[i], i);
    memcpy(out, styled, sizeof out);
    v.strength = 50;
    sf_finish(&v, photo, out, 4);
    /* black and white at 50% in linear light: 0.5 linear is sRGB 188, not 128 */
    EXPECT(abs(out[9] - 188) <= 1 && abs(out[10] - 188) <= 1, "@50 of black and white: %d", out[9]);
    memcpy(out, styled, sizeof out);
    v.strength = 100;
    v.colors = 1;
    sf_finish(&v, photo, out, 4);
    EXPECT(abs(out[6] - out[7]) <= 2 && abs(out[7] - out[8]) <= 2, "a grey photo did not stay grey: %d %d %d",
           out[6], out[7], out[8]);
    EXPECT(out[0] > out[1] + 2 && out[0] > out[2] + 2 && out[4] > out[3] + 2, "the photo's hues are lost");
    EXPECT(abs((299 * out[6] + 587 * out[7] + 114 * out[8]) / 1000 - (299 * 30 + 587 * 90 + 114 * 200) / 1000) <= 2,
           "the output's luminance is lost");
    v.kind = SF_STYLE_IMAGE;            /* a painting's strength is inside its network: only colours here */
    v.strength = 50;
    v.colors = 0;
    memcpy(out, styled, sizeof out);
    sf_finish(&v, photo, out, 4);
    EXPECT(!memcmp(out, styled, sizeof out), "a painting's strength was applied twice");
    PASS();
}

static void t_meta_jpeg(void)
{
    const char *name = "metadata: a JPEG's EXIF, XMP and a 100 kB ICC profile (two APP2 chunks) survive a round trip";
    struct sf_image img = { .w = 8, .h = 8, .rgb = calloc(8 * 8, 3) };
    struct sf_meta m = { 0 }, back;
    uint8_t exif[64] = { 'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    uint8_t *out = NULL;
    size_t outlen;
    char why[200];

    m.exif = malloc(sizeof exif);
    m.xmp = (uint8_t *)strdup("<x:xmpmeta>test</x:xmpmeta>");
    m.icc = malloc(100000);
    EXPECT(img.rgb && m.exif && m.xmp && m.icc, "out of memory");
    memcpy(m.exif, exif, sizeof exif);
    m.exif_len = sizeof exif;
    m.xmp_len = strlen((char *)m.xmp);
    m.icc_len = 100000;
    for (size_t i = 0; i < m.icc_len; i++)
        m.icc[i] = (uint8_t)(i * 7 + 3);
    EXPECT(sf_exif_for_copy(m.exif, m.exif_len) == 0 && m.exif[18] == 1 && m.exif[19] == 0, "orientation not 1");
    img.meta = m;
    EXPECT(sf_image_encode(&img, SF_FMT_JPEG, 90, &out, &outlen, why, sizeof why) == 0, "%s", why);
    EXPECT(sf_meta_from_jpeg(out, outlen, &back) == 0, "read back");
    EXPECT(back.exif_len == m.exif_len && !memcmp(back.exif, m.exif, m.exif_len), "EXIF differs");
    EXPECT(back.xmp_len == m.xmp_len && !memcmp(back.xmp, m.xmp, m.xmp_len), "XMP differs");
    EXPECT(back.icc_len == m.icc_len && !memcmp(back.icc, m.icc, m.icc_len), "ICC differs (%zu bytes back)", back.icc_len);
    sf_meta_free(&back);
    EXPECT(sf_exif_for_copy((uint8_t *)"II*\0\xff\xff\xff\x7f", 8) == -EINVAL, "a wild IFD offset accepted");
    free(out);
    sf_image_free(&img);
    PASS();
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: unit SHARED_MODELS_DIR TMPDIR\n");
        return 2;
    }
    g_models = argv[1];
    g_tmp = argv[2];
    t_parse();
    t_model_good();
    damaged("missing tensor file", "rm Variable_7", "Variable_7");
    damaged("truncated tensor", "truncate -s 1000 Variable_12", "Variable_12");
    damaged("bad JSON", "printf '{\"Variable\": ' > manifest.json", "manifest.json");
    damaged("wrong shape", "sed -i '0,/9, /s//7, /' manifest.json", "manifest.json");
    damaged("tensor missing from manifest",
            "python3 -c \"import json;m=json.load(open('manifest.json'));del m['Variable_47'];json.dump(m,open('manifest.json','w'))\"",
            "Variable_47");
    t_style_suffix();
    t_variants();
    t_finish();
    t_engine_shapes();
    t_engine_idle();
    t_codec_roundtrip();
    t_meta_jpeg();
    t_fit();
    t_keys();
    t_vector_value();
    t_cache_basic();
    t_cache_corrupt();
    t_cache_full();
    t_cache_prune();
    return g_fail ? 1 : 0;
}
