/* cpu_engine.c: the CPU engine: its ops table, its plan (buffers and steps)
 * and the forward pass, a loop over the planned steps.
 *
 * What runs where (see cpu.h and cpu_engine.h):
 * - layer 0 (9x9, 3->32) and layer 15 (9x9, 32->3): our kernels, from the
 *   dispatch table filled once at open for the CPU's best instruction set
 *   (or the STYLEFS_CPU_ISA cap);
 * - layers 1-14: oneDNN, in the first layout configuration in which it has
 *   a vector implementation of every layer (plan.c); on AVX2 and AVX-512
 *   the residual layers 3-12 in our Winograd F(6x6,3x3) (oneDNN's
 *   F(4x4,3x3) is the next configuration on AVX-512); where oneDNN has
 *   only reference kernels, our own 3x3 kernels;
 * - instance norms, fused with ReLU or the residual add, and the tanh
 *   output: our element-wise kernels; in the residual stage on our
 *   Winograd, the kernel itself takes each output's sums and applies the
 *   previous layer's norm and ReLU to its input, so only the residual add
 *   is a pass of its own.
 * The work of our kernels is split here over OpenMP threads by rows or
 * pixel blocks; oneDNN threads itself.  This file has no intrinsics.
 * Images from SF_BANDS_FROM_PIXELS up run in bands instead (bands.c), in
 * memory that does not grow with them.
 *
 * Reduced precision (not with STYLEFS_CPU_BF16=0): on CPUs with
 * AVX512_VNNI layer 0 sums in int16 (exact in the pixels, weights rounded
 * per channel at about 1.5e-5 of the largest); on CPUs with AVX512_BF16
 * the last three layers read bf16 inputs and weights and sum in float32,
 * in the NHWC configuration, from BF16_MIN_PIXELS up.  Measured against
 * ONNX Runtime on all nine styles x two 1 MP photos, at least 99.97% of
 * 8-bit outputs stay within one step (the oracle's bar is 99.9%); bf16 in
 * the first layers broke that bar (99.3%), so it starts at 13. */
#include "engine.h"
#include "cpu_engine.h"
#include "log.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IN_EPS 1e-3f
/* Pixels per parallel chunk of the element-wise kernels. */
#define NORM_CHUNK 2048

/* Activation buffers of n floats (cpu.h sf_big_alloc: huge pages). */
static void *alloc_f(size_t n) { return sf_big_alloc(n * sizeof(float)); }

void sf_cpu_plan_free(struct sf_engine_impl *e)
{
    sf_plan_free_dnnl(e);
    sf_bands_free(e);
    if (e->c0buf != (void *)e->M)    /* else it lives in M (plan_try) */
        free(e->c0buf);
    free(e->B);                 /* the block: M, O, X, T, U and T16 live in it */
    free(e->scratch_res);
    free(e->scratch);
    free(e->band);
    free(e->wU);
    free(e->wscratch);
    free(e->wstat);
    free(e->c0stat);
    e->wU = e->wscratch = NULL;
    e->wstat = e->c0stat = NULL;
    e->c0buf = e->band = e->scratch = e->scratch_res = NULL;
    e->B = e->M = e->X = e->T = e->U = e->O = e->Y = NULL;
    e->T16 = NULL;
    e->h = e->w = 0;
    e->nsteps = 0;
    e->cfg = NULL;
    e->wmodel = NULL;           /* the oneDNN weights went with the primitives */
}

static void add_step(struct sf_engine_impl *e, struct step s)
{
    if (e->nsteps < MAX_STEPS)  /* the plan below makes 34 at most */
        e->steps[e->nsteps++] = s;
}

static void add_norm(struct sf_engine_impl *e, int i, float *x, size_t hw, int cb, float *res)
{
    add_step(e, (struct step){ .op = OP_NORM, .layer = i, .x = x, .hw = hw, .c = sf_net[i].cout, .cb = cb,
                               .relu = sf_net[i].relu, .res = res });
}

/* Layer i (1-14) of the plan: oneDNN's primitive, or in the own
 * configuration our 3x3 kernel (NHWC), and its step.  Returns as
 * sf_plan_layer. */
static int plan_conv(struct sf_engine_impl *e, int i, float *src, int hin, int win, int cb_in, float *dst,
                     int cb_out, int wino, int bf16, int *oh, int *ow, size_t *need)
{
    const struct sf_layer_spec *l = &sf_net[i];
    int rc;

    if (e->cfg->own_wino && i >= 3 && i <= 12) {
        *oh = hin;              /* 3x3, stride 1, SAME */
        *ow = win;
        e->c3[i] = (struct sf_conv3_shape){ .hin = hin, .win = win, .cin = 128, .hout = hin, .wout = win,
                                            .cout = 128, .stride = 1, .pt = 1, .pl = 1 };
        e->c3in[i] = src;
        e->c3out[i] = dst;
        e->flops[i] = 2.0 * 9 * 128 * 128 * (double)hin * win;     /* the direct convolution's, for GFLOP/s */
        snprintf(e->impl[i], sizeof e->impl[i], "stylefs %s", e->k.wino_name);
        add_step(e, (struct step){ .op = OP_WINO, .layer = i, .pre = i % 2 == 0 });
        return 0;
    }
    if (!e->cfg->own) {
        if ((rc = sf_plan_layer(e, i, src, hin, win, cb_in, dst, cb_out, wino, bf16, NULL, oh, ow, need)))
            return rc;
        add_step(e, (struct step){ .op = OP_DNNL, .layer = i });
        return 0;
    }
    struct sf_conv3_shape *s = &e->c3[i];
    int after;
    memset(s, 0, sizeof *s);
    s->hin = hin; s->win = win; s->cin = l->cin; s->cout = l->cout;
    s->stride = l->stride;
    s->deconv = l->kind == SF_DECONV;
    if (s->deconv) {
        s->hout = 2 * hin;
        s->wout = 2 * win;
    } else {
        sf_same_pad(hin, 3, l->stride, &s->hout, &s->pt, &after);
        sf_same_pad(win, 3, l->stride, &s->wout, &s->pl, &after);
    }
    e->c3in[i] = src;
    e->c3out[i] = dst;
    *oh = s->hout;
    *ow = s->wout;
    e->flops[i] = 2.0 * 9 * l->cin * l->cout * (s->deconv ? (double)hin * win : (double)s->hout * s->wout);
    snprintf(e->impl[i], sizeof e->impl[i], "stylefs %s", e->k.conv3_name);
    add_step(e, (struct step){ .op = OP_CONV3, .layer = i });
    return 0;
}

/* The shapes of a pass over h0 x w0 (cpu_engine.h), in pixels. */
struct dims {
    int h0, w0, h1, w1, h2, w2, h3, w3, h4, w4;
    size_t full, half, quarter;     /* h4 * w4, h3 * w3, h2 * w2 */
};

static struct dims dims_of(int h0, int w0)
{
    struct dims d = { .h0 = h0, .w0 = w0, .h1 = (h0 + 1) / 2, .w1 = (w0 + 1) / 2 };
    d.h2 = (d.h1 + 1) / 2;
    d.w2 = (d.w1 + 1) / 2;
    d.h3 = 2 * d.h2;
    d.w3 = 2 * d.w2;
    d.h4 = 2 * d.h3;
    d.w4 = 2 * d.w3;
    d.full = (size_t)d.h4 * d.w4;
    d.half = (size_t)d.h3 * d.w3;
    d.quarter = (size_t)d.h2 * d.w2;
    return d;
}

/* Every activation lives in one block, laid out by liveness (f = full
 * pixels, in floats; a fresh page costs more than its share of the pass
 * on these VMs, about 1.5 ms per MB when the host backs it anew, so the
 * block is as small as the liveness allows):
 *   [0, 32f)      B: layer 0's output (1-2 read it); Y, layer 14's output
 *                 (float32 plans)
 *   [32f, 48f)    M: layer 1's and 13's outputs; layer 0's prepared input
 *                 and O (layer 15's output, float32 plans) when each is
 *                 dead
 *   [0, 24f)      X, T, U (8f each): layers 2-13, while B is dead
 *   [24f, ...)    the residual layers' oneDNN scratchpad (Winograd's is
 *                 large: 152 MB at 1 MP), while B and M are dead
 *   bf16 plans:   T16, layer 14's bf16 input, at [0, 8f) (X is dead once
 *                 layer 13 has read T); Y at [16f, 48f) (M is dead once
 *                 T16 is written); O at [0, 3f) (T16 is dead once layer
 *                 14 has run)
 * so at 1 MP it is 192 MB (our Winograd, no scratchpad) to 240 MB
 * (oneDNN's), against 288 MB for separate buffers.  *res_avail: the
 * bytes at 24f free for the residual scratchpad. */
static int plan_block(struct sf_engine_impl *e, const struct plan_cfg *cfg, const struct dims *d, int wino,
                      size_t *res_avail)
{
    size_t res_need = 0, floats = d->full * 32 + d->half * 64, tail;
    int oh, ow, rc;

    if (wino && !cfg->own_wino && !cfg->own) {
        /* the scratchpad's size, from a plan of one residual layer (kept
         * in oneDNN's primitive cache for the real one) */
        if ((rc = sf_plan_layer(e, 3, NULL, d->h2, d->w2, cfg->cb_res, NULL, cfg->cb_res, wino, 0, NULL, &oh, &ow,
                                &res_need)))
            return rc;
        sf_plan_free_layer(e, 3);
    }
    tail = (res_need + sizeof(float) - 1) / sizeof(float);
    if (floats < d->full * 24 + tail)
        floats = d->full * 24 + tail;
    if (!(e->B = alloc_f(floats)))
        return -ENOMEM;
    e->M = e->B + d->full * 32;
    e->X = e->B;
    e->T = e->B + d->full * 8;
    e->U = e->B + d->full * 16;
    e->O = e->bf16 ? e->B : e->M;
    e->Y = e->bf16 ? e->B + d->full * 16 : e->B;
    e->T16 = e->bf16 ? (uint16_t *)e->B : NULL;
    *res_avail = (floats - d->full * 24) * sizeof(float);
    return 0;
}

/* Layer 0 (ours), its norm's sums taken as it writes. */
static int plan_layer0(struct sf_engine_impl *e, const struct plan_cfg *cfg, const struct dims *d)
{
    size_t n = e->k.conv0_buf_bytes(d->h0, d->w0);

    e->c0buf = n <= d->half * 64 * sizeof(float) ? (void *)e->M : alloc_f(n / sizeof(float) + 1);
    if (!e->c0buf)
        return -ENOMEM;
    snprintf(e->impl[0], sizeof e->impl[0], "stylefs %s", e->k.conv0_name);
    e->flops[0] = 2.0 * 81 * 3 * 32 * (double)d->h0 * d->w0;
    add_step(e, (struct step){ .op = OP_CONV0, .layer = 0 });
    add_norm(e, 0, e->B, (size_t)d->h0 * d->w0, cfg->cb_32, NULL);
    e->steps[e->nsteps - 1].fused = 1;         /* conv0_step takes the sums */
    return 0;
}

/* Layers 1 and 2, and the reorder into the residual layout (split). */
static int plan_down(struct sf_engine_impl *e, const struct plan_cfg *cfg, const struct dims *d, int split,
                     size_t *scratch_need)
{
    int oh, ow, rc;

    if ((rc = plan_conv(e, 1, e->B, d->h0, d->w0, cfg->cb_32, e->M, cfg->cb_64, 0, 0, &oh, &ow, scratch_need)))
        return rc;
    add_norm(e, 1, e->M, (size_t)d->h1 * d->w1, cfg->cb_64, NULL);
    if ((rc = plan_conv(e, 2, e->M, d->h1, d->w1, cfg->cb_64, split ? e->T : e->X, cfg->cb_128, 0, 0, &oh, &ow,
                        scratch_need)))
        return rc;
    add_norm(e, 2, split ? e->T : e->X, d->quarter, cfg->cb_128, NULL);
    if (!split)
        return 0;
    if ((rc = sf_plan_reorder(e, 128, d->h2, d->w2, cfg->cb_128, e->T, cfg->cb_res, 0, e->X, &e->to_res, &e->mT,
                              &e->mX)))
        return rc;
    add_step(e, (struct step){ .op = OP_REORDER, .layer = 2, .reorder = e->to_res, .from = e->mT, .to = e->mX });
    return 0;
}

/* The residual stage, layers 3-12 (on our Winograd, the norms ride in
 * the kernel: fused, the first of each pair deferred to the next input). */
static int plan_residual(struct sf_engine_impl *e, const struct plan_cfg *cfg, const struct dims *d, int wino,
                         size_t *res_need)
{
    int oh, ow, rc;

    for (int i = 3; i <= 12; i += 2) {
        if ((rc = plan_conv(e, i, e->X, d->h2, d->w2, cfg->cb_res, e->T, cfg->cb_res, wino, 0, &oh, &ow, res_need)))
            return rc;
        add_norm(e, i, e->T, d->quarter, cfg->cb_res, NULL);
        e->steps[e->nsteps - 1].fused = e->steps[e->nsteps - 1].defer = cfg->own_wino;
        if ((rc = plan_conv(e, i + 1, e->T, d->h2, d->w2, cfg->cb_res, e->U, cfg->cb_res, wino, 0, &oh, &ow,
                            res_need)))
            return rc;
        add_norm(e, i + 1, e->U, d->quarter, cfg->cb_res, e->X);
        e->steps[e->nsteps - 1].fused = cfg->own_wino;
    }
    return 0;
}

/* Layers 13 and 14 (after the reorder out of the residual layout, split),
 * layer 15 (ours) and the output. */
static int plan_up(struct sf_engine_impl *e, const struct plan_cfg *cfg, const struct dims *d, int split,
                   size_t *scratch_need)
{
    int oh, ow, rc;

    if (split) {
        if ((rc = sf_plan_reorder(e, 128, d->h2, d->w2, cfg->cb_res, e->X, cfg->cb_128, e->bf16, e->T,
                                  &e->from_res, &e->mXr, &e->mTr)))
            return rc;
        add_step(e, (struct step){ .op = OP_REORDER, .layer = 13, .reorder = e->from_res, .from = e->mXr,
                                   .to = e->mTr });
    }
    if ((rc = plan_conv(e, 13, split ? e->T : e->X, d->h2, d->w2, split ? cfg->cb_128 : cfg->cb_res, e->M,
                        cfg->cb_64, 0, e->bf16, &oh, &ow, scratch_need)))
        return rc;
    if (e->bf16)
        add_step(e, (struct step){ .op = OP_NORM_BF16, .layer = 13, .x = e->M, .hw = d->half, .c = 64, .cb = 64 });
    else
        add_norm(e, 13, e->M, d->half, cfg->cb_64, NULL);
    if ((rc = plan_conv(e, 14, e->bf16 ? (float *)e->T16 : e->M, d->h3, d->w3, cfg->cb_64, e->Y, cfg->cb_32, 0,
                        e->bf16, &oh, &ow, scratch_need)))
        return rc;
    add_step(e, (struct step){ .op = OP_NORM_STATS, .layer = 14, .x = e->Y, .hw = d->full, .c = 32,
                               .cb = cfg->cb_32 });
    snprintf(e->impl[15], sizeof e->impl[15], "stylefs %s", e->bf16 ? e->k.oc16_name : e->k.oc_name);
    e->flops[15] = 2.0 * 81 * 32 * 3 * (double)d->full;
    add_step(e, (struct step){ .op = OP_OUTCONV, .layer = 15 });
    add_step(e, (struct step){ .op = OP_OUTPUT, .layer = 15, .x = e->O, .hw = d->full, .c = 3, .cb = 3 });
    return 0;
}

/* The per-thread and per-layer scratch: our Winograd's, layer 0's sums,
 * layer 15's bands, and oneDNN's scratchpads (the residual layers' in
 * the block when it fits there). */
static int plan_scratch(struct sf_engine_impl *e, const struct plan_cfg *cfg, const struct dims *d,
                        size_t scratch_need, size_t res_need, size_t res_avail)
{
    e->nthreads = omp_get_max_threads();
    if (cfg->own_wino &&
        (!(e->wU = alloc_f((size_t)10 * SF_WINO_P * 128 * 128)) ||
         !(e->wscratch = alloc_f(sf_wino_scratch_floats() * (size_t)e->nthreads)) ||
         !(e->wstat = malloc((size_t)sf_wino_nblocks(d->h2, d->w2) * 256 * sizeof(double)))))
        return -ENOMEM;
    if (!(e->c0stat = malloc((size_t)((d->h0 + 1) / 2) * 64 * sizeof(double))))
        return -ENOMEM;
    e->band_floats = (e->bf16 ? e->k.oc16_band : e->k.oc_band)(d->w4);
    if (e->band_floats && !(e->band = alloc_f(e->band_floats * (size_t)e->nthreads)))
        return -ENOMEM;
    if (scratch_need) {
        if (!(e->scratch = aligned_alloc(64, (scratch_need + 63) / 64 * 64)))
            return -ENOMEM;
        for (int i = 1; i < SF_LAYERS - 1; i++)
            if (i < 3 || i > 12)
                dnnl_memory_set_data_handle(e->L[i].scratch, e->scratch);
    }
    if (res_need) {
        void *rs = e->B + d->full * 24;
        if (res_need > res_avail && !(rs = e->scratch_res = aligned_alloc(64, (res_need + 63) / 64 * 64)))
            return -ENOMEM;
        for (int i = 3; i <= 12; i++)
            dnnl_memory_set_data_handle(e->L[i].scratch, rs);
    }
    return 0;
}

/* Plan h0 x w0 in configuration cfg: a list of the steps above.  Returns
 * 0, -ENOTSUP (a layer would run a reference implementation, or our
 * Winograd is not there for this configuration), -ENOMEM, -EIO. */
static int plan_try(struct sf_engine_impl *e, int h0, int w0, const struct plan_cfg *cfg)
{
    struct dims d = dims_of(h0, w0);
    size_t scratch_need = 0, res_need = 0, res_avail = 0;
    int wino = cfg->winograd && e->winograd, split = cfg->cb_128 != cfg->cb_res;     /* layers 2 and 13 see another layout */
    int rc;

    sf_cpu_plan_free(e);
    /* our Winograd: where this level has a vector one whose channel
     * block is the configuration's (AVX2: nChw8c, AVX-512: nChw16c) */
    if (cfg->own_wino && (!e->winograd || !e->k.wino_tiles || e->k.wino_cb != cfg->cb_res ||
                          e->k.level < SF_CPU_AVX2))
        return -ENOTSUP;
    e->cfg = cfg;
    e->bf16 = e->k.oc16_rows && split && (size_t)h0 * w0 >= BF16_MIN_PIXELS;
    if ((rc = plan_block(e, cfg, &d, wino, &res_avail)) || (rc = plan_layer0(e, cfg, &d)) ||
        (rc = plan_down(e, cfg, &d, split, &scratch_need)) || (rc = plan_residual(e, cfg, &d, wino, &res_need)) ||
        (rc = plan_up(e, cfg, &d, split, &scratch_need)) ||
        (rc = plan_scratch(e, cfg, &d, scratch_need, res_need, res_avail))) {
        sf_cpu_plan_free(e);
        return rc;
    }
    e->h = h0;
    e->w = w0;
    return 0;
}

/* Plan h0 x w0: the first configuration, in order, in which oneDNN has a
 * vector implementation of every layer (always from the first: one that
 * fails for a small image, such as oneDNN's Winograd, can suit the next),
 * else our own 3x3 kernels (the last configuration).  A refused
 * configuration costs only primitive descriptors (a few ms, once per
 * image shape).  Logs what each layer runs (at -v). */
static int plan_build(struct sf_engine_impl *e, int h0, int w0)
{
    int rc = -ENOTSUP, n = sf_plan_ncfgs - 1, c = n;

    for (c = 0; c < n && rc == -ENOTSUP && !e->dnnl_off; c++) {
        if (sf_plan_cfgs[c].winograd && !e->winograd)
            continue;
        rc = plan_try(e, h0, w0, &sf_plan_cfgs[c]);
        if (rc == -ENOTSUP)
            sf_debug("cpu plan %dx%d: layouts %s refused: no vector implementation of some layer "
                     "(oneDNN's is ref, or no Winograd)",
                     w0, h0, sf_plan_cfgs[c].name);
    }
    if (rc == -ENOTSUP) {
        c = n;
        rc = plan_try(e, h0, w0, &sf_plan_cfgs[c]);
        if (!rc)
            sf_info("cpu plan %dx%d: %s: layers 1-14 on stylefs's own 3x3 kernels", w0, h0,
                    e->dnnl_off ? "STYLEFS_CPU_DNNL=0" : "oneDNN has only reference implementations on this CPU");
    }
    if (rc)
        return rc;
    sf_info("cpu plan %dx%d: %s kernels, layouts %s%s", w0, h0, sf_cpu_level_name(e->k.level), e->cfg->name,
            e->bf16 ? ", layers 13-15 in bf16" : "");
    for (int i = 0; i < SF_LAYERS; i++)
        sf_info("cpu plan: layer %2d: %s", i, e->impl[i]);
    sf_info("cpu plan: norms %s, output %s", e->k.norm_name, e->k.output_name);
    return 0;
}

/* ---- weights ------------------------------------------------------------- */
int sf_cpu_load_weights(struct sf_engine_impl *e, const struct sf_model *m)
{
    int rc;

    if (e->wmodel == m->blob && !memcmp(e->wdigest, m->digest, 16))
        return 0;
    e->wmodel = NULL;           /* until all of them are in */
    e->k.conv0_weights(m->weights[0], e->w0q);
    e->k.oc_weights(m->weights[15], e->wout);
    if (e->k.oc16_weights)
        e->k.oc16_weights(m->weights[15], e->wout16);
    if (e->cfg->own) {
        for (int i = 1; i < SF_LAYERS - 1; i++)
            e->c3w[i] = m->weights[i];
        for (int d = 0; d < 2; d++) {       /* [ky][kx][cout][cin] -> [ky][kx][cin][cout] */
            const struct sf_layer_spec *l = &sf_net[13 + d];
            for (int t = 0; t < 9; t++)
                for (int co = 0; co < l->cout; co++)
                    for (int ci = 0; ci < l->cin; ci++)
                        e->wdec[d][((size_t)t * l->cin + ci) * l->cout + co] =
                            m->weights[13 + d][((size_t)t * l->cout + co) * l->cin + ci];
            e->c3w[13 + d] = e->wdec[d];
        }
    }
    if (e->cfg->own_wino) {
#pragma omp parallel for schedule(static)
        for (int i = 3; i <= 12; i++)
            sf_wino_weights(m->weights[i], e->wU + (size_t)(i - 3) * SF_WINO_P * 128 * 128);
    }
    if ((rc = sf_plan_load_weights(e, m)))
        return rc;
    e->wmodel = m->blob;
    memcpy(e->wdigest, m->digest, 16);
    return 0;
}

/* ---- the element-wise steps, split over threads ------------------------- */

/* The coefficients a, b of c channels from the sums of (x - shift) and
 * (x - shift)^2 over hw pixels (shift NULL: 0). */
void sf_cpu_coeffs(const double *sum, const double *sq, const float *shift, size_t hw, int c, const float *gamma,
                   const float *beta, float *a, float *b)
{
    for (int ch = 0; ch < c; ch++) {
        double mu = sum[ch] / (double)hw;
        double var = sq[ch] / (double)hw - mu * mu;
        double mean = (shift ? shift[ch] : 0) + mu, inv;
        if (var < 0)
            var = 0;
        inv = 1.0 / sqrt(var + IN_EPS);
        a[ch] = (float)(gamma[ch] * inv);
        b[ch] = (float)(beta[ch] - mean * gamma[ch] * inv);
    }
}

/* Instance norm coefficients of a tensor (groups of cb channels):
 *   y = gamma * (x - mean) / sqrt(var + eps) + beta  =  a * x + b
 * Statistics are taken around a per-channel shift (the first pixel), in
 * float over blocks of pixels and summed in double, so the one-pass
 * variance does not cancel. */
static void norm_coeffs(const struct sf_cpu_kernels *k, const float *x, size_t hw, int c, int cb,
                        const float *gamma, const float *beta, float *a, float *b)
{
    int G = c / cb;
    size_t nchunk = (hw + NORM_CHUNK - 1) / NORM_CHUNK;
    double sum[128] = { 0 }, sq[128] = { 0 };
    float shift[128];

    for (int ch = 0; ch < c; ch++)
        shift[ch] = x[sf_at(cb, hw, 0, ch)];
#pragma omp parallel
    {
        double ls[128] = { 0 }, lq[128] = { 0 };
#pragma omp for schedule(static) collapse(2)
        for (int g = 0; g < G; g++)
            for (size_t bi = 0; bi < nchunk; bi++) {
                size_t p0 = bi * NORM_CHUNK, p1 = p0 + NORM_CHUNK < hw ? p0 + NORM_CHUNK : hw;
                k->norm_sums(x + (size_t)g * hw * cb, cb, p0, p1, shift + g * cb, ls + g * cb, lq + g * cb);
            }
#pragma omp critical
        for (int ch = 0; ch < c; ch++) {
            sum[ch] += ls[ch];
            sq[ch] += lq[ch];
        }
    }
    sf_cpu_coeffs(sum, sq, shift, hw, c, gamma, beta, a, b);
}

static void norm_step(struct sf_engine_impl *e, const struct sf_model *m, const struct step *s)
{
    float a[128], b[128];
    int G = s->c / s->cb;
    size_t nchunk = (s->hw + NORM_CHUNK - 1) / NORM_CHUNK;

    if (s->fused) {             /* the Winograd kernel took the sums */
        sf_cpu_coeffs(e->fsum, e->fsq, NULL, s->hw, s->c, m->gamma[s->layer], m->beta[s->layer], a, b);
        if (s->defer) {         /* applied by the next layer's input transform */
            memcpy(e->pa, a, sizeof e->pa);
            memcpy(e->pb, b, sizeof e->pb);
            return;
        }
    } else
        norm_coeffs(&e->k, s->x, s->hw, s->c, s->cb, m->gamma[s->layer], m->beta[s->layer], a, b);
    if (s->op == OP_NORM_STATS) {
        memcpy(e->na, a, sizeof e->na);
        memcpy(e->nb, b, sizeof e->nb);
        return;
    }
#pragma omp parallel for schedule(static) collapse(2)
    for (int g = 0; g < G; g++)
        for (size_t bi = 0; bi < nchunk; bi++) {
            size_t p0 = bi * NORM_CHUNK, p1 = p0 + NORM_CHUNK < s->hw ? p0 + NORM_CHUNK : s->hw;
            size_t off = (size_t)g * s->hw * s->cb;
            if (s->op == OP_NORM_BF16)
                e->k.norm_bf16(s->x, p0, p1, a, b, e->T16);
            else
                e->k.norm_apply(s->x + off, s->cb, p0, p1, a + g * s->cb, b + g * s->cb, s->relu,
                                s->res ? s->res + off : NULL);
        }
}

/* Layer 0, and its output's per-channel sums into fsum, fsq (its norm's),
 * each pair of rows summed while it is still in the cache (from DRAM
 * afterwards it was a pass of 128 MB at 1 MP): around the pair's first
 * pixel, in float blocks and double (norm_sums), then moved to 0 in
 * double into the pair's slot of c0stat; the slots are added up in order
 * (the same sums whatever the threads). */
static void conv0_step(struct sf_engine_impl *e, const uint8_t *rgb, int h, int w)
{
    int cb = e->cfg->cb_32, G = 32 / cb;
    size_t hw = (size_t)h * w;

#pragma omp parallel for schedule(static)
    for (int r = 0; r < h + 8; r++)
        e->k.conv0_prep(rgb, h, w, e->c0buf, r, r + 1);
#pragma omp parallel for schedule(dynamic, 1)
    for (int y = 0; y < h; y += 2) {
        int y1 = y + 2 < h ? y + 2 : h;
        size_t p0 = (size_t)y * w, p1 = (size_t)y1 * w;
        double *ls = e->c0stat + (size_t)(y / 2) * 64, *lq = ls + 32;
        e->k.conv0_rows(e->c0buf, h, w, e->w0q, e->B, cb, y, y1);
        for (int g = 0; g < G; g++) {
            const float *x = e->B + (size_t)g * hw * cb;
            double s[32] = { 0 }, q[32] = { 0 }, n = (double)(p1 - p0);
            float shift[32];
            memcpy(shift, x + p0 * cb, (size_t)cb * sizeof(float));
            e->k.norm_sums(x, cb, p0, p1, shift, s, q);
            for (int c = 0; c < cb; c++) {
                ls[g * cb + c] = s[c] + n * shift[c];
                lq[g * cb + c] = q[c] + 2.0 * shift[c] * s[c] + n * shift[c] * shift[c];
            }
        }
    }
    memset(e->fsum, 0, sizeof e->fsum);
    memset(e->fsq, 0, sizeof e->fsq);
    for (int r = 0; r < (h + 1) / 2; r++)
        for (int c = 0; c < 32; c++) {
            e->fsum[c] += e->c0stat[(size_t)r * 64 + c];
            e->fsq[c] += e->c0stat[(size_t)r * 64 + 32 + c];
        }
}

static void conv3_step(struct sf_engine_impl *e, int i)
{
    const struct sf_conv3_shape *s = &e->c3[i];

#pragma omp parallel for schedule(dynamic, 1)
    for (int y = 0; y < s->hout; y++)
        e->k.conv3_rows(e->c3in[i], e->c3w[i], e->c3out[i], s, y, y + 1);
}

/* A residual layer on our Winograd kernel, the output's per-channel sums
 * taken on the way (into fsum, fsq: the next OP_NORM's), the previous
 * layer's norm and ReLU (pa, pb) applied to the input when the step says
 * pre. */
static void wino_step(struct sf_engine_impl *e, const struct step *st)
{
    int i = st->layer;
    const struct sf_conv3_shape *s = &e->c3[i];
    int nt = sf_wino_ntiles(s->hin, s->win), nb = sf_wino_nblocks(s->hin, s->win);
    const float *U = e->wU + (size_t)(i - 3) * SF_WINO_P * 128 * 128;

    memset(e->wstat, 0, (size_t)nb * 256 * sizeof(double));
#pragma omp parallel
    {
        float *scr = e->wscratch + (size_t)omp_get_thread_num() * sf_wino_scratch_floats();
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < nb; b++) {
            int t0 = b * SF_WINO_TB, t1 = t0 + SF_WINO_TB < nt ? t0 + SF_WINO_TB : nt;
            double *sum = e->wstat + (size_t)b * 256;
            e->k.wino_tiles(e->c3in[i], s->hin, s->win, e->cfg->cb_res, U, e->c3out[i], scr, t0, t1,
                            st->pre ? e->pa : NULL, st->pre ? e->pb : NULL, sum, sum + 128);
        }
    }
    memset(e->fsum, 0, sizeof e->fsum);
    memset(e->fsq, 0, sizeof e->fsq);
    for (int b = 0; b < nb; b++)
        for (int c = 0; c < 128; c++) {
            e->fsum[c] += e->wstat[(size_t)b * 256 + c];
            e->fsq[c] += e->wstat[(size_t)b * 256 + 128 + c];
        }
}

static void outconv_step(struct sf_engine_impl *e, int h4, int w4)
{
    int nbands = (h4 + SF_OC_ROWS - 1) / SF_OC_ROWS;
    sf_oc_rows_fn rows = e->bf16 ? e->k.oc16_rows : e->k.oc_rows;
    const void *wt = e->bf16 ? e->wout16 : e->wout;

#pragma omp parallel
    {
        float *band = e->band ? e->band + (size_t)omp_get_thread_num() * e->band_floats : NULL;
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < nbands; b++) {
            int y0 = b * SF_OC_ROWS, y1 = y0 + SF_OC_ROWS < h4 ? y0 + SF_OC_ROWS : h4;
            rows(e->Y, h4, w4, e->cfg->cb_32, e->na, e->nb, wt, e->O, band, y0, y1);
        }
    }
}

static void output_step(struct sf_engine_impl *e, const struct sf_model *m, int h, int w, int h4, int w4,
                        uint8_t *out)
{
    float a[3], b[3];

    norm_coeffs(&e->k, e->O, (size_t)h4 * w4, 3, 3, m->gamma[15], m->beta[15], a, b);
#pragma omp parallel for schedule(static)
    for (int y = 0; y < h; y += 8)
        e->k.output(e->O, w4, w, a, b, out, y, y + 8 < h ? y + 8 : h);
}

/* ---- the forward pass ---------------------------------------------------- */
static int cpu_run(struct sf_engine_impl *e, const struct sf_model *m, const uint8_t *rgb, int w, int h,
                   uint8_t *out, const sf_cancel_flag *cancel)
{
    int h4 = 4 * ((((h + 1) / 2) + 1) / 2), w4 = 4 * ((((w + 1) / 2) + 1) / 2), rc, q;
    double tl[SF_LAYERS] = { 0 }, tn[SF_LAYERS] = { 0 }, t0 = omp_get_wtime();

    if (w <= 0 || h <= 0)
        return -EINVAL;
    if ((q = sf_bands_rows(e, h, w))) {
        /* the banded plan goes when its run ends: planning is milliseconds
         * of a run of seconds, and its arena (about 0.5 GB) is then not
         * held between photos, nor while this one is encoded */
        rc = sf_bands_run(e, m, rgb, w, h, out, q, cancel);
        sf_cpu_plan_free(e);
        if (rc != -ENOTSUP)
            return rc;
        if (!e->bands_refused++)    /* said once: it holds for every size */
            sf_warn("cpu: no banded plan on this CPU (oneDNN has no vector kernel for its layouts): "
                    "%dx%d runs whole, about %zu MB, and so will every full-size photo", w, h,
                    (size_t)h4 * w4 * 192 >> 20);
    }
    double tp, tw;
    if ((e->h != h || e->w != w) && (rc = plan_build(e, h, w)))
        return rc;
    tp = omp_get_wtime();
    if ((rc = sf_cpu_load_weights(e, m)))
        return rc;
    tw = omp_get_wtime();
    for (int si = 0; si < e->nsteps; si++) {
        const struct step *s = &e->steps[si];
        double t1 = omp_get_wtime();
        int conv = 1;
        if (sf_cancelled(cancel))
            return -ECANCELED;
        switch (s->op) {
        case OP_CONV0: conv0_step(e, rgb, h, w); break;
        case OP_DNNL: rc = sf_plan_exec_layer(e, s->layer); break;
        case OP_CONV3: conv3_step(e, s->layer); break;
        case OP_WINO: wino_step(e, s); break;
        case OP_REORDER: rc = sf_plan_exec_reorder(e, s->reorder, s->from, s->to); break;
        case OP_NORM: case OP_NORM_STATS: case OP_NORM_BF16: norm_step(e, m, s); conv = 0; break;
        case OP_OUTCONV: outconv_step(e, h4, w4); break;
        case OP_OUTPUT: output_step(e, m, h, w, h4, w4, out); conv = 0; break;
        }
        if (rc)
            return rc;
        (conv ? tl : tn)[s->layer] += omp_get_wtime() - t1;
    }
    if (e->profile) {
        double tc = 0, tm = 0;
        for (int i = 0; i < SF_LAYERS; i++) {
            sf_info("profile: layer %2d conv %7.1f ms %6.1f GFLOP/s  norm %5.1f ms  %s", i, tl[i] * 1e3,
                    e->flops[i] / tl[i] / 1e9, tn[i] * 1e3, e->impl[i]);
            tc += tl[i];
            tm += tn[i];
        }
        sf_info("profile: %dx%d total %.1f ms: plan %.1f, weights %.1f, convolutions %.1f, norms and output %.1f",
                w, h, (omp_get_wtime() - t0) * 1e3, (tp - t0) * 1e3, (tw - tp) * 1e3, tc * 1e3, tm * 1e3);
    }
    return 0;
}

/* oneDNN's own instruction-set cap must be set before its first
 * primitive, once per process: STYLEFS_CPU_ISA=avx2 sets it to AVX2
 * unless ONEDNN_MAX_CPU_ISA (or DNNL_MAX_CPU_ISA) already says. */
static void cap_onednn(const struct sf_cpu_features *f)
{
    static int done;

    /* generic caps our kernels only: oneDNN keeps its best */
    if (done || !f->capped || f->level != SF_CPU_AVX2 || getenv("ONEDNN_MAX_CPU_ISA") || getenv("DNNL_MAX_CPU_ISA"))
        return;
    done = 1;
    if (dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx2) != dnnl_success)
        sf_warn("cpu: could not cap oneDNN at %s (set ONEDNN_MAX_CPU_ISA before starting)",
                sf_cpu_level_name(f->level));
}

/* Our kernels' weight buffers (allocated at open). */
static void weights_free(struct sf_engine_impl *e)
{
    free(e->wdec[0]);
    free(e->wdec[1]);
    free(e->w0q);
    free(e->wout);
    free(e->wout16);
}

static int cpu_open(struct sf_engine_impl **out, char *why, size_t whylen)
{
    struct sf_engine_impl *e = calloc(1, sizeof *e);
    const char *env;
    dnnl_status_t s;
    int rc;

    if (!e) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    if ((rc = sf_cpu_detect(&e->feat, why, whylen)))
        goto out_free;
    cap_onednn(&e->feat);
    s = dnnl_engine_create(&e->eng, dnnl_cpu, 0);
    if (s == dnnl_success)
        s = dnnl_stream_create(&e->stream, e->eng, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        snprintf(why, whylen, "oneDNN CPU engine: status %d", (int)s);
        rc = sf_dnnl_errno(s);
        goto out_engine;
    }
    e->profile = (env = getenv("STYLEFS_PROFILE")) && *env == '1';
    e->winograd = !((env = getenv("STYLEFS_CPU_WINOGRAD")) && *env == '0');
    e->lowp = !((env = getenv("STYLEFS_CPU_BF16")) && *env == '0');
    e->dnnl_off = (env = getenv("STYLEFS_CPU_DNNL")) && *env == '0';
    sf_cpu_kernels_fill(&e->k, &e->feat, e->feat.level, e->lowp);
    e->w0q = aligned_alloc(64, (e->k.conv0_wbytes + 63) / 64 * 64);
    e->wout = aligned_alloc(64, (e->k.oc_wbytes + 63) / 64 * 64);
    e->wout16 = e->k.oc16_wbytes ? aligned_alloc(64, (e->k.oc16_wbytes + 63) / 64 * 64) : NULL;
    e->wdec[0] = malloc(9 * 128 * 64 * sizeof(float));
    e->wdec[1] = malloc(9 * 64 * 32 * sizeof(float));
    if (!e->w0q || !e->wout || (e->k.oc16_wbytes && !e->wout16) || !e->wdec[0] || !e->wdec[1]) {
        snprintf(why, whylen, "out of memory");
        rc = -ENOMEM;
        goto out_weights;
    }
    {
        /* e.g. "layer 0 in int16 (AVX512_VNNI), the rest float32 (no AVX512_BF16)" */
        char prec[200];
        const char *all = e->k.conv0_int16 ? "the rest" : "all";
        int n = e->k.conv0_int16 ? snprintf(prec, sizeof prec, "layer 0 in int16 (%s), ",
                                            strstr(e->k.conv0_name, "vnni") ? "AVX512_VNNI" : "AVX2 vpmaddwd")
                                 : 0;
        if (!e->lowp)
            snprintf(prec + n, sizeof prec - (size_t)n, "all float32 (STYLEFS_CPU_BF16=0)");
        else if (e->k.oc16_rows && e->winograd)
            snprintf(prec + n, sizeof prec - (size_t)n, "layers 13-15 in bf16 from 128x128 pixels up (AVX512_BF16)");
        else
            snprintf(prec + n, sizeof prec - (size_t)n, "%s float32 (%s)", all,
                     !e->feat.avx512_bf16 ? "no AVX512_BF16" : e->k.oc16_rows ? "Winograd off" : "STYLEFS_CPU_ISA");
        snprintf(why, whylen, "oneDNN %d.%d, %d threads, %s kernels%s, %s", dnnl_version()->major,
                 dnnl_version()->minor, omp_get_max_threads(), sf_cpu_level_name(e->k.level),
                 e->feat.capped ? " (capped by STYLEFS_CPU_ISA)" : "", prec);
    }
    *out = e;
    return 0;
out_weights:
    weights_free(e);
    dnnl_stream_destroy(e->stream);
out_engine:
    if (e->eng)
        dnnl_engine_destroy(e->eng);
out_free:
    free(e);
    return rc;
}

static void cpu_close(struct sf_engine_impl *e)
{
    if (!e)
        return;
    sf_cpu_plan_free(e);
    weights_free(e);
    dnnl_stream_destroy(e->stream);
    dnnl_engine_destroy(e->eng);
    free(e);
}

const struct sf_engine_ops sf_engine_cpu = {
    .name = "cpu",
    .open = cpu_open,
    .run = cpu_run,
    .close = cpu_close,
};
