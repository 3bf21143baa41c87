/* engine_cpu.c: the style network on the CPU, with oneDNN convolutions.
 *
 * oneDNN (Debian libdnnl) runs the convolutions and transposed
 * convolutions on all cores through OpenMP; instance norm, ReLU, the
 * residual add, the 8-bit conversions and the tanh output are fused loops
 * here, parallel with OpenMP too.  All tensors are NHWC float32.
 *
 * DESIGN: the engine keeps one *plan* for the last image shape it ran:
 * the oneDNN primitives, their memory objects, every activation buffer and
 * one shared scratchpad.  A new shape rebuilds the plan (that is the only
 * allocation); forward() itself allocates nothing.  Weights live in the
 * read-only sf_model in their stored layout and are reordered into the
 * primitives' preferred layouts when the model differs from the last one
 * run (about 7 MB of copying).  Callers are serialized by sf_engine.lock.
 *
 * Shapes, for an input of h0 x w0 (SAME padding, see network.md):
 *   h1 = ceil(h0/2), h2 = ceil(h1/2), h3 = 2*h2, h4 = 2*h3 >= h0
 *   I [h0][w0][3]      input, 0..255
 *   B [h0][w0][32]     layer 0 out;  later layer 14 out [h4][w4][32]
 *   M [h1][w1][64]     layer 1 out;  later layer 13 out [h3][w3][64]
 *   X [h2][w2][128]    layer 2 out, the residual stream
 *   T, U [h2][w2][128] inside a residual block
 *   O [h4][w4][3]      layer 15 out, cropped to h0 x w0 on the way out */
#include "engine.h"
#include "log.h"

#include <dnnl.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IN_EPS 1e-3f

struct plan_layer {
    dnnl_primitive_t prim;      /* conv or deconv, forward inference */
    dnnl_primitive_t wreorder;  /* stored weights -> prim's layout */
    dnnl_memory_t src, dst;     /* views of the activation buffers */
    dnnl_memory_t wuser;        /* stored layout; handle set per model */
    dnnl_memory_t wprim;        /* prim's layout, in wbuf */
    dnnl_memory_t scratch;      /* view of the shared scratchpad */
    float *out;                 /* dst buffer */
    size_t out_hw;              /* dst pixels */
    void *wbuf;
};

struct sf_engine_impl {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    int h, w;                   /* planned shape, 0 = none */
    struct plan_layer L[SF_LAYERS];
    float *I, *B, *M, *X, *T, *U, *O;
    void *scratch;
    const float *wmodel;        /* blob whose weights are in wprim */
    uint8_t wdigest[16];
};

/* The one place that turns oneDNN statuses into -errno. */
static int dnnl_errno(dnnl_status_t s)
{
    switch (s) {
    case dnnl_success: return 0;
    case dnnl_out_of_memory: return -ENOMEM;
    case dnnl_invalid_arguments: return -EINVAL;
    case dnnl_unimplemented: return -ENOSYS;
    default: return -EIO;
    }
}

#define CHECK(call)                                                        \
    do {                                                                   \
        dnnl_status_t s_ = (call);                                         \
        if (s_ != dnnl_success) {                                          \
            sf_err("oneDNN: %s failed (status %d)", #call, (int)s_);       \
            rc = dnnl_errno(s_);                                           \
            goto out_fail;                                                 \
        }                                                                  \
    } while (0)

static void plan_free(struct sf_engine_impl *e)
{
    for (int i = 0; i < SF_LAYERS; i++) {
        struct plan_layer *l = &e->L[i];
        if (l->prim) dnnl_primitive_destroy(l->prim);
        if (l->wreorder) dnnl_primitive_destroy(l->wreorder);
        if (l->src) dnnl_memory_destroy(l->src);
        if (l->dst) dnnl_memory_destroy(l->dst);
        if (l->wuser) dnnl_memory_destroy(l->wuser);
        if (l->wprim) dnnl_memory_destroy(l->wprim);
        if (l->scratch) dnnl_memory_destroy(l->scratch);
        free(l->wbuf);
    }
    memset(e->L, 0, sizeof e->L);
    free(e->I); free(e->B); free(e->M); free(e->X); free(e->T); free(e->U); free(e->O);
    free(e->scratch);
    e->I = e->B = e->M = e->X = e->T = e->U = e->O = NULL;
    e->scratch = NULL;
    e->h = e->w = 0;
    e->wmodel = NULL;
}

static void same_pad(int n, int k, int s, int *out, int *before, int *after)
{
    int o = (n + s - 1) / s;
    int total = (o - 1) * s + k - n;
    if (total < 0)
        total = 0;
    *out = o;
    *before = total / 2;
    *after = total - total / 2;
}

static float *alloc_f(size_t n)
{
    return aligned_alloc(64, ((n * sizeof(float)) + 63) / 64 * 64);
}

/* Build the primitives of layer i: input [hin][win][cin] in `src`, output
 * into `dst`.  Sets *hout, *wout.  Returns 0 or -errno. */
static int plan_layer(struct sf_engine_impl *e, int i, float *src, int hin, int win,
                      float *dst, int *hout, int *wout, size_t *scratch_need)
{
    const struct sf_layer_spec *s = &sf_net[i];
    struct plan_layer *l = &e->L[i];
    dnnl_memory_desc_t src_md, dst_md, w_any, w_user;
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_dims_t sdims, ddims, wdims, wstrides;
    dnnl_dims_t strides = { s->stride, s->stride }, pl, pr;
    const dnnl_memory_desc_t *md;
    int rc = 0, oh, ow, pbh, pah, pbw, paw;

    if (s->kind == SF_CONV) {
        same_pad(hin, s->k, s->stride, &oh, &pbh, &pah);
        same_pad(win, s->k, s->stride, &ow, &pbw, &paw);
    } else {
        /* transposed: output s*n; pad_before from SAME on the output (0 for
         * 3x3 s2), the rest cut at the end so the output is exactly s*n. */
        oh = hin * s->stride;
        ow = win * s->stride;
        pbh = pbw = 0;
        pah = (hin - 1) * s->stride + s->k - oh;
        paw = (win - 1) * s->stride + s->k - ow;
    }
    pl[0] = pbh; pl[1] = pbw; pr[0] = pah; pr[1] = paw;
    sdims[0] = 1; sdims[1] = s->cin; sdims[2] = hin; sdims[3] = win;
    ddims[0] = 1; ddims[1] = s->cout; ddims[2] = oh; ddims[3] = ow;
    wdims[0] = s->cout; wdims[1] = s->cin; wdims[2] = s->k; wdims[3] = s->k;
    if (s->kind == SF_CONV) {       /* stored [kh][kw][cin][cout] */
        wstrides[0] = 1; wstrides[1] = s->cout;
    } else {                        /* stored [kh][kw][cout][cin] */
        wstrides[0] = s->cin; wstrides[1] = 1;
    }
    wstrides[3] = (dnnl_dim_t)s->cin * s->cout;
    wstrides[2] = wstrides[3] * s->k;

    CHECK(dnnl_memory_desc_init_by_tag(&src_md, 4, sdims, dnnl_f32, dnnl_nhwc));
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 4, ddims, dnnl_f32, dnnl_nhwc));
    CHECK(dnnl_memory_desc_init_by_tag(&w_any, 4, wdims, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_strides(&w_user, 4, wdims, dnnl_f32, wstrides));
    CHECK(dnnl_primitive_attr_create(&attr));
    CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (s->kind == SF_CONV) {
        dnnl_convolution_desc_t cd;
        CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_auto,
                                                 &src_md, &w_any, NULL, &dst_md, strides, pl, pr));
        CHECK(dnnl_primitive_desc_create(&pd, &cd, attr, e->eng, NULL));
    } else {
        dnnl_deconvolution_desc_t dd;
        CHECK(dnnl_deconvolution_forward_desc_init(&dd, dnnl_forward_inference,
                                                   dnnl_deconvolution_direct, &src_md, &w_any,
                                                   NULL, &dst_md, strides, pl, pr));
        CHECK(dnnl_primitive_desc_create(&pd, &dd, attr, e->eng, NULL));
    }
    CHECK(dnnl_primitive_create(&l->prim, pd));

    md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    l->wbuf = aligned_alloc(64, (dnnl_memory_desc_get_size(md) + 63) / 64 * 64);
    if (!l->wbuf) {
        rc = -ENOMEM;
        goto out_fail;
    }
    CHECK(dnnl_memory_create(&l->wprim, md, e->eng, l->wbuf));
    CHECK(dnnl_memory_create(&l->wuser, &w_user, e->eng, DNNL_MEMORY_NONE));
    CHECK(dnnl_reorder_primitive_desc_create(&rpd, &w_user, e->eng, md, e->eng, NULL));
    CHECK(dnnl_primitive_create(&l->wreorder, rpd));

    CHECK(dnnl_memory_create(&l->src, &src_md, e->eng, src));
    CHECK(dnnl_memory_create(&l->dst, &dst_md, e->eng, dst));
    md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (md && dnnl_memory_desc_get_size(md) > *scratch_need)
        *scratch_need = dnnl_memory_desc_get_size(md);
    /* the scratch memory object is made once the shared buffer exists */
    CHECK(dnnl_memory_create(&l->scratch, md, e->eng, DNNL_MEMORY_NONE));
    l->out = dst;
    l->out_hw = (size_t)oh * ow;
    *hout = oh;
    *wout = ow;
out_fail:
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

static int plan_build(struct sf_engine_impl *e, int h0, int w0)
{
    int h1 = (h0 + 1) / 2, w1 = (w0 + 1) / 2;
    int h2 = (h1 + 1) / 2, w2 = (w1 + 1) / 2;
    int h3 = 2 * h2, w3 = 2 * w2, h4 = 2 * h3, w4 = 2 * w3;
    size_t full = (size_t)h4 * w4, half = (size_t)h3 * w3, quarter = (size_t)h2 * w2;
    size_t scratch_need = 0;
    int rc = 0, i, oh, ow;

    plan_free(e);
    e->I = alloc_f((size_t)h0 * w0 * 3);
    e->B = alloc_f(full * 32);          /* h4*w4 >= h0*w0 */
    e->M = alloc_f(half * 64);          /* h3*w3 >= h1*w1 */
    e->X = alloc_f(quarter * 128);
    e->T = alloc_f(quarter * 128);
    e->U = alloc_f(quarter * 128);
    e->O = alloc_f(full * 3);
    if (!e->I || !e->B || !e->M || !e->X || !e->T || !e->U || !e->O) {
        rc = -ENOMEM;
        goto out_free;
    }
    if ((rc = plan_layer(e, 0, e->I, h0, w0, e->B, &oh, &ow, &scratch_need)) ||
        (rc = plan_layer(e, 1, e->B, h0, w0, e->M, &oh, &ow, &scratch_need)) ||
        (rc = plan_layer(e, 2, e->M, h1, w1, e->X, &oh, &ow, &scratch_need)))
        goto out_free;
    for (i = 3; i <= 12; i += 2)
        if ((rc = plan_layer(e, i, e->X, h2, w2, e->T, &oh, &ow, &scratch_need)) ||
            (rc = plan_layer(e, i + 1, e->T, h2, w2, e->U, &oh, &ow, &scratch_need)))
            goto out_free;
    if ((rc = plan_layer(e, 13, e->X, h2, w2, e->M, &oh, &ow, &scratch_need)) ||
        (rc = plan_layer(e, 14, e->M, h3, w3, e->B, &oh, &ow, &scratch_need)) ||
        (rc = plan_layer(e, 15, e->B, h4, w4, e->O, &oh, &ow, &scratch_need)))
        goto out_free;
    if (scratch_need) {
        e->scratch = aligned_alloc(64, (scratch_need + 63) / 64 * 64);
        if (!e->scratch) {
            rc = -ENOMEM;
            goto out_free;
        }
        for (i = 0; i < SF_LAYERS; i++)
            dnnl_memory_set_data_handle(e->L[i].scratch, e->scratch);
    }
    e->h = h0;
    e->w = w0;
    sf_debug("cpu engine: planned %dx%d (scratchpad %zu bytes)", w0, h0, scratch_need);
    return 0;
out_free:
    plan_free(e);
    return rc;
}

/* Instance norm over [hw][c], fused with ReLU or the residual add:
 *   y = gamma * (x - mean) / sqrt(var + eps) + beta
 *   relu:     x = max(y, 0)
 *   residual: res += y          (x is left as it was)
 * Statistics are taken around a per-channel shift (the first pixel) so
 * that the one-pass variance does not cancel. */
static void inorm(float *x, size_t hw, int c, const float *gamma, const float *beta,
                  int relu, float *res)
{
    double sum[128] = { 0 }, sq[128] = { 0 };
    float shift[128], a[128], b[128];
    const size_t blk = 64;
    size_t nblk = (hw + blk - 1) / blk;

    for (int ch = 0; ch < c; ch++)
        shift[ch] = x[ch];
#pragma omp parallel
    {
        double ls[128] = { 0 }, lq[128] = { 0 };
#pragma omp for schedule(static)
        for (size_t bi = 0; bi < nblk; bi++) {
            float fs[128] = { 0 }, fq[128] = { 0 };
            size_t end = (bi + 1) * blk < hw ? (bi + 1) * blk : hw;
            for (size_t p = bi * blk; p < end; p++) {
                const float *px = x + p * c;
                for (int ch = 0; ch < c; ch++) {
                    float d = px[ch] - shift[ch];
                    fs[ch] += d;
                    fq[ch] += d * d;
                }
            }
            for (int ch = 0; ch < c; ch++) {
                ls[ch] += fs[ch];
                lq[ch] += fq[ch];
            }
        }
#pragma omp critical
        for (int ch = 0; ch < c; ch++) {
            sum[ch] += ls[ch];
            sq[ch] += lq[ch];
        }
    }
    for (int ch = 0; ch < c; ch++) {
        double m = sum[ch] / (double)hw;
        double var = sq[ch] / (double)hw - m * m;
        double mean = shift[ch] + m;
        double inv;
        if (var < 0)
            var = 0;
        inv = 1.0 / sqrt(var + IN_EPS);
        a[ch] = (float)(gamma[ch] * inv);
        b[ch] = (float)(beta[ch] - mean * gamma[ch] * inv);
    }
#pragma omp parallel for schedule(static)
    for (size_t bi = 0; bi < nblk; bi++) {
        size_t end = (bi + 1) * blk < hw ? (bi + 1) * blk : hw;
        for (size_t p = bi * blk; p < end; p++) {
            float *px = x + p * c;
            if (res) {
                float *r = res + p * c;
                for (int ch = 0; ch < c; ch++)
                    r[ch] += px[ch] * a[ch] + b[ch];
            } else if (relu) {
                for (int ch = 0; ch < c; ch++) {
                    float y = px[ch] * a[ch] + b[ch];
                    px[ch] = y > 0 ? y : 0;
                }
            } else {
                for (int ch = 0; ch < c; ch++)
                    px[ch] = px[ch] * a[ch] + b[ch];
            }
        }
    }
}

static int exec_layer(struct sf_engine_impl *e, int i)
{
    struct plan_layer *l = &e->L[i];
    dnnl_exec_arg_t args[4] = {
        { DNNL_ARG_SRC, l->src }, { DNNL_ARG_WEIGHTS, l->wprim },
        { DNNL_ARG_DST, l->dst }, { DNNL_ARG_SCRATCHPAD, l->scratch },
    };
    int rc = 0;

    CHECK(dnnl_primitive_execute(l->prim, e->stream, 4, args));
    CHECK(dnnl_stream_wait(e->stream));
out_fail:
    return rc;
}

static int load_weights(struct sf_engine_impl *e, const struct sf_model *m)
{
    int rc = 0;

    if (e->wmodel == m->blob && !memcmp(e->wdigest, m->digest, 16))
        return 0;
    for (int i = 0; i < SF_LAYERS; i++) {
        struct plan_layer *l = &e->L[i];
        dnnl_exec_arg_t args[2] = { { DNNL_ARG_FROM, l->wuser }, { DNNL_ARG_TO, l->wprim } };
        CHECK(dnnl_memory_set_data_handle(l->wuser, m->weights[i]));
        CHECK(dnnl_primitive_execute(l->wreorder, e->stream, 2, args));
    }
    CHECK(dnnl_stream_wait(e->stream));
    e->wmodel = m->blob;
    memcpy(e->wdigest, m->digest, 16);
out_fail:
    return rc;
}

static int cpu_run(struct sf_engine_impl *e, const struct sf_model *m,
                   const uint8_t *rgb, int w, int h, uint8_t *out, const volatile int *cancel)
{
    size_t n0 = (size_t)w * h;
    int rc, i;

    if (w <= 0 || h <= 0)
        return -EINVAL;
    if ((e->h != h || e->w != w) && (rc = plan_build(e, h, w)))
        return rc;
    if ((rc = load_weights(e, m)))
        return rc;

#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < n0 * 3; p++)
        e->I[p] = rgb[p];

    for (i = 0; i < SF_LAYERS; i++) {
        const struct sf_layer_spec *s = &sf_net[i];
        struct plan_layer *l = &e->L[i];
        if (cancel && *cancel)
            return -ECANCELED;
        if ((rc = exec_layer(e, i)))
            return rc;
        if (i == SF_LAYERS - 1)
            break;
        inorm(l->out, l->out_hw, s->cout, m->gamma[i], m->beta[i], s->relu,
              s->residual ? e->X : NULL);
    }
    /* Layer 15: instance norm, then tanh * 150 + 127.5, cropped to h x w. */
    {
        struct plan_layer *l = &e->L[15];
        int w4 = 4 * ((((w + 1) / 2) + 1) / 2);
        inorm(l->out, l->out_hw, 3, m->gamma[15], m->beta[15], 0, NULL);
#pragma omp parallel for schedule(static)
        for (int y = 0; y < h; y++) {
            const float *src = e->O + (size_t)y * w4 * 3;
            uint8_t *dst = out + (size_t)y * w * 3;
            for (int x = 0; x < w * 3; x++) {
                float v = tanhf(src[x]) * 150.0f + 127.5f;
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                dst[x] = (uint8_t)(v + 0.5f);
            }
        }
    }
    return 0;
}

static int cpu_open(struct sf_engine_impl **out, char *why, size_t whylen)
{
    struct sf_engine_impl *e = calloc(1, sizeof *e);
    dnnl_status_t s;

    if (!e) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    s = dnnl_engine_create(&e->eng, dnnl_cpu, 0);
    if (s == dnnl_success)
        s = dnnl_stream_create(&e->stream, e->eng, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        snprintf(why, whylen, "oneDNN CPU engine: status %d", (int)s);
        if (e->eng)
            dnnl_engine_destroy(e->eng);
        free(e);
        return dnnl_errno(s);
    }
    *out = e;
    return 0;
}

static void cpu_close(struct sf_engine_impl *e)
{
    if (!e)
        return;
    plan_free(e);
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
