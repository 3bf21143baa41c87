/* arbitrary.h: any painting as a style, with Magenta's arbitrary-style
 * networks (../shared/docs/arbitrary.md): the int8 style predictor turns a
 * painting into 100 floats, the fp16 transformer (run in float32) turns a
 * photo and those floats into the styled photo.
 *
 * An sf_arb holds both networks, read from a folder holding
 * predict_int8.tflite and transfer_fp16.tflite, and their digest (part of
 * every key made with them).  Runs go through tflnet.h plans: the
 * predictor's (256x256), and the transformer's for the last size run,
 * planned again when the size changes.
 *
 * Inputs to the predictor: the largest centred square of the image,
 * resized to 256x256 (sRGB-aware, stb's Mitchell filter), so a painting's
 * style is not squashed out of shape.  The transformer takes the photo at
 * its own size: the network's output (4 * ceil(ceil(n/2)/2) per side) is
 * cropped to it, and an image under 8 pixels on a side is first extended
 * by repeating its edges (the network needs 5), then cropped back.
 *
 * Strength s (percent): the style vector is s% the painting's and
 * (100 - s)% the photo's own (Magenta's interpolation), so 0 gives back
 * roughly the photo.
 *
 * DESIGN: one sf_arb per set of styles (style.c), shared by their threads;
 * `lock` serializes runs (one image at a time, like the engines) and guards
 * the plans and the idle state.  It is the innermost lock: the pipeline
 * runs the predictor and the transformer holding none of its own (a
 * painting's single flight waits on a condition, not a lock).  The transformer's plan (its arena: 48 MB at 1 MP, and the
 * widened weights) is kept for the next image of the same size; with an
 * idle time set (sf_arb_set_idle: the mount's gpu_idle), idle.h's reaper,
 * the engine's too, started by the first transfer, frees it once no
 * transfer has run for that long, and sleeps without a timer while there
 * is none.
 * The predictor's plan (256x256, a few MB) stays.
 * Returns 0 or -errno. */
#ifndef SF_ARBITRARY_H
#define SF_ARBITRARY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu.h"
#include "idle.h"
#include "util.h"

#define SF_ARB_VEC 100

struct sf_tfl_model;
struct sf_tflnet;

struct sf_arb {
    uint8_t *pbuf, *tbuf;               /* the two files, which the models point into */
    struct sf_tfl_model *predict, *transfer;
    uint8_t digest[16];                 /* XXH3-128 of both files */
    pthread_mutex_t lock;               /* one run at a time; guards the plans below */
    struct sf_tflnet *pplan, *tplan;    /* predictor plan; transformer plan at th x tw */
    int th, tw;
    struct sf_cpu_kernels k;            /* the networks' kernels (cpu.h) */
    atomic_int refs;                    /* styles and loaders holding it (style.c); the last frees it */
    struct sf_idle idle;                /* frees tplan when unused (idle.h), under lock */
};

/* Read the networks from dir.  Returns 0, -ENOENT (a file is missing: why
 * names it), -EINVAL (damaged: why says what), -ENOMEM. */
int sf_arb_open(const char *dir, struct sf_arb **out, char *why, size_t whylen);
void sf_arb_close(struct sf_arb *a);

/* Free the transformer's plan after secs without a transfer (0: keep
 * it).  Takes effect from the next transfer. */
void sf_arb_set_idle(struct sf_arb *a, unsigned secs);

/* The style vector of an RGB image (w x h).  Returns 0, -ENOMEM,
 * -ECANCELED. */
int sf_arb_predict(struct sf_arb *a, const uint8_t *rgb, int w, int h, float vec[SF_ARB_VEC],
                   const sf_cancel_flag *cancel);
/* Stylize rgb (w x h) into out (w x h x 3) with style vector vec.
 * Returns 0, -ENOMEM, -EINVAL (why says), -ECANCELED. */
int sf_arb_transfer(struct sf_arb *a, const uint8_t *rgb, int w, int h, const float vec[SF_ARB_VEC], uint8_t *out,
                    const sf_cancel_flag *cancel, char *why, size_t whylen);

#endif
