/* arbitrary.c: Magenta's arbitrary-style networks behind arbitrary.h. */
#include "arbitrary.h"

#include "log.h"
#include "tflite.h"
#include "tflnet.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include <stb_image_resize.h>

#define PREDICT_FILE "predict_int8.tflite"
#define TRANSFER_FILE "transfer_fp16.tflite"
#define MIN_SIDE 8

static int load_one(const char *dir, const char *file, uint8_t **buf, size_t *len, struct sf_tfl_model **m,
                    char *why, size_t whylen)
{
    char path[4096], w2[300];
    int rc;

    snprintf(path, sizeof path, "%s/%s", dir, file);
    if ((rc = sf_read_file(path, 1 << 28, buf, len))) {
        snprintf(why, whylen, "%s: %s%s", path, strerror(-rc),
                 rc == -ENOENT ? " (make models copies ../shared/arbitrary there; or -o arbitrary=DIR)" : "");
        return rc;
    }
    if ((rc = sf_tfl_parse(*buf, *len, m, w2, sizeof w2))) {
        snprintf(why, whylen, "%s: %s", path, w2);
        free(*buf);
        *buf = NULL;
    }
    return rc;
}

/* The reaper's view (idle.h), under a->lock: the transformer's plan. */
static int arb_held(void *arg)
{
    return ((struct sf_arb *)arg)->tplan != NULL;
}

static void arb_release(void *arg)
{
    struct sf_arb *a = arg;

    sf_tflnet_free(a->tplan);
    a->tplan = NULL;
    sf_info("arbitrary styles: the transformer's plan for %dx%d released after %u s idle", a->tw, a->th,
            a->idle.secs);
    a->th = a->tw = 0;
}

int sf_arb_open(const char *dir, struct sf_arb **out, char *why, size_t whylen)
{
    struct sf_arb *a = calloc(1, sizeof *a);
    size_t plen, tlen;
    char w2[300];
    int rc;

    *out = NULL;
    if (!a) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    if ((rc = load_one(dir, PREDICT_FILE, &a->pbuf, &plen, &a->predict, why, whylen)) ||
        (rc = load_one(dir, TRANSFER_FILE, &a->tbuf, &tlen, &a->transfer, why, whylen)))
        goto out_free;
    {
        struct sf_cpu_features f;
        if (sf_cpu_detect(&f, w2, sizeof w2) == 0) {
            sf_cpu_kernels_fill(&a->k, &f, f.level, 0);
            sf_info("arbitrary styles: convolutions on %s kernels (transformer tconv and tconvp, predictor qdot "
                    "and qdw), instance norm sums on %s; the rest (element-wise ops, the predictor's means) portable C",
                    a->k.tconv_name, a->k.norm_name);
        } else {
            sf_warn("arbitrary styles: %s; portable C only", w2);
        }
    }
    if ((rc = sf_tflnet_plan(a->predict, 0, 0, &a->k, &a->pplan, w2, sizeof w2))) {
        snprintf(why, whylen, "%s/%s: %s", dir, PREDICT_FILE, w2);
        goto out_free;
    }
    {
        size_t ne;
        if (a->predict->nin != 1 || a->transfer->nin != 2 || sf_tflnet_input(a->pplan, 0, &ne) == NULL ||
            ne != 256 * 256 * 3) {
            snprintf(why, whylen, "%s: not Magenta's arbitrary-style networks (inputs differ)", dir);
            rc = -EINVAL;
            goto out_free;
        }
    }
    {
        XXH3_state_t *st = XXH3_createState();
        XXH128_hash_t hh;
        if (!st) {
            rc = -ENOMEM;
            goto out_free;
        }
        XXH3_128bits_reset(st);
        XXH3_128bits_update(st, a->pbuf, plen);
        XXH3_128bits_update(st, a->tbuf, tlen);
        hh = XXH3_128bits_digest(st);
        XXH3_freeState(st);
        XXH128_canonicalFromHash((XXH128_canonical_t *)a->digest, hh);
    }
    pthread_mutex_init(&a->lock, NULL);
    if ((rc = sf_idle_init(&a->idle, &a->lock, a, arb_held, arb_release))) {
        snprintf(why, whylen, "arbitrary styles: cannot make a condition variable: %s", strerror(-rc));
        pthread_mutex_destroy(&a->lock);
        goto out_free;
    }
    a->refs = 1;
    *out = a;
    return 0;
out_free:
    sf_tflnet_free(a->pplan);
    sf_tfl_free(a->predict);
    sf_tfl_free(a->transfer);
    free(a->pbuf);
    free(a->tbuf);
    free(a);
    return rc;
}

void sf_arb_close(struct sf_arb *a)
{
    if (!a)
        return;
    sf_idle_stop(&a->idle);
    sf_tflnet_free(a->pplan);
    sf_tflnet_free(a->tplan);
    sf_tfl_free(a->predict);
    sf_tfl_free(a->transfer);
    free(a->pbuf);
    free(a->tbuf);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

void sf_arb_set_idle(struct sf_arb *a, unsigned secs)
{
    sf_idle_set(&a->idle, secs);
}

int sf_arb_predict(struct sf_arb *a, const uint8_t *rgb, int w, int h, float vec[SF_ARB_VEC],
                   const sf_cancel_flag *cancel)
{
    int side = w < h ? w : h, x0 = (w - side) / 2, y0 = (h - side) / 2, shape[4];
    uint8_t *sq = malloc(256 * 256 * 3);
    size_t ne;

    if (!sq)
        return -ENOMEM;
    /* the centred square, resized to 256x256 (copied when it is that size) */
    if (side == 256) {
        for (int y = 0; y < 256; y++)
            memcpy(sq + (size_t)y * 256 * 3, rgb + ((size_t)(y0 + y) * w + x0) * 3, 256 * 3);
    } else if (!stbir_resize_uint8_srgb(rgb + ((size_t)y0 * w + x0) * 3, side, side, w * 3, sq, 256, 256, 0, 3,
                                 STBIR_ALPHA_CHANNEL_NONE, 0)) {
        free(sq);
        return -ENOMEM;
    }
    pthread_mutex_lock(&a->lock);
    if (sf_cancelled(cancel)) {
        pthread_mutex_unlock(&a->lock);
        free(sq);
        return -ECANCELED;
    }
    float *in = sf_tflnet_input(a->pplan, 0, &ne);
    for (size_t i = 0; i < ne; i++)
        in[i] = sq[i] / 255.0f;
    sf_tflnet_run(a->pplan);
    memcpy(vec, sf_tflnet_output(a->pplan, 0, shape), SF_ARB_VEC * sizeof *vec);
    pthread_mutex_unlock(&a->lock);
    free(sq);
    return 0;
}

int sf_arb_transfer(struct sf_arb *a, const uint8_t *rgb, int w, int h, const float vec[SF_ARB_VEC], uint8_t *out,
                    const sf_cancel_flag *cancel, char *why, size_t whylen)
{
    int pw = w < MIN_SIDE ? MIN_SIDE : w, ph = h < MIN_SIDE ? MIN_SIDE : h, shape[4], rc = 0;
    size_t ne;
    char w2[300];

    pthread_mutex_lock(&a->lock);
    if (sf_cancelled(cancel)) {
        rc = -ECANCELED;
        goto out_unlock;
    }
    if (!a->tplan || a->th != ph || a->tw != pw) {
        sf_tflnet_free(a->tplan);
        a->tplan = NULL;
        if ((rc = sf_tflnet_plan(a->transfer, ph, pw, &a->k, &a->tplan, w2, sizeof w2))) {
            snprintf(why, whylen, "arbitrary style at %dx%d: %s", w, h, w2);
            goto out_unlock;
        }
        a->th = ph;
        a->tw = pw;
    }
    /* the photo, its edges repeated up to ph x pw */
    float *in = sf_tflnet_input(a->tplan, 0, &ne);
#pragma omp parallel for schedule(static)
    for (int y = 0; y < ph; y++)
        for (int x = 0; x < pw; x++)
            for (int c = 0; c < 3; c++)
                in[((size_t)y * pw + x) * 3 + c] =
                    rgb[((size_t)(y < h ? y : h - 1) * w + (x < w ? x : w - 1)) * 3 + c] / 255.0f;
    memcpy(sf_tflnet_input(a->tplan, 1, &ne), vec, SF_ARB_VEC * sizeof *vec);
    sf_tflnet_run(a->tplan);
    const float *y = sf_tflnet_output(a->tplan, 0, shape);
#pragma omp parallel for schedule(static)
    for (int yy = 0; yy < h; yy++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) {
                float v = roundf(y[((size_t)yy * shape[2] + x) * 3 + c] * 255.0f);
                out[((size_t)yy * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    sf_idle_touch(&a->idle);
out_unlock:
    pthread_mutex_unlock(&a->lock);
    return rc;
}
