/* engine_cpu.c: the style network on the CPU, with oneDNN convolutions.
 *
 * oneDNN (Debian libdnnl) runs the convolutions and transposed
 * convolutions on all cores through OpenMP; instance norm, ReLU, the
 * residual add, the 8-bit conversions and the tanh output are fused loops
 * here, parallel with OpenMP too.  Tensors are NHWC float32 (the residual
 * stream is oneDNN's blocked nChw16c).  Layer 0 runs in exact integer sums
 * with int16 weights on CPUs with AVX512_VNNI (conv0_vnni, about f32
 * accuracy, 1.5x faster than oneDNN's f32).  And on CPUs with
 * AVX512_BF16 the last three layers (the transposed convolutions 13, 14
 * and the output convolution 15) read bfloat16 inputs and weights and sum
 * in float32, about twice as fast.  The input T of 13 and 14 is then bf16
 * NHWC, written by the X -> T reorder (layer 13) and by layer 13's norm
 * (layer 14); outconv converts as it fills its bands (layer 15).
 * Measured against ONNX Runtime on all nine styles x two 1 MP photos, at
 * least 99.97% of 8-bit outputs stay within one step (the oracle's bar is
 * 99.9%); bf16 in the first layers broke that bar (down to 99.3%), so it
 * starts at 13, and images under BF16_MIN_PIXELS stay float32.
 * STYLEFS_CPU_BF16=0 keeps everything float32, layer 0 included.
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
 *                      (with bf16, layer 13's normed out goes to T as
 *                      [h3][w3][64] bf16: the same bytes as T's f32 size)
 *   X [h2][w2][128]    layer 2 out, the residual stream
 *   T, U [h2][w2][128] inside a residual block
 *   O [h4][w4][3]      layer 15 out, cropped to h0 x w0 on the way out */
#include "engine.h"
#include "log.h"

#include <dnnl.h>
#include <immintrin.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IN_EPS 1e-3f
/* Smallest image (pixels) whose layers 13-15 run in bf16: below it they
 * cost well under a millisecond, and at 37x29 one style came within 0.007%
 * of the oracle's 99.9% bar, against >= 99.998% at 1 MP. */
#define BF16_MIN_PIXELS (128 * 128)

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
    char impl[48];              /* oneDNN's implementation, for the profile */
    int blocked_out;            /* dst is nChw16c, not NHWC */
    double flops;               /* multiply-adds * 2 of this layer */
};

struct sf_engine_impl {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    int h, w;                   /* planned shape, 0 = none */
    struct plan_layer L[SF_LAYERS];
    float *I, *B, *M, *X, *T, *U, *O;
    dnnl_memory_t mT, mX;       /* T as NHWC, X as nChw16c, for the reorders */
    dnnl_memory_t mT16;         /* T as NHWC bf16: from_blocked's output when bf16 */
    float *band;                /* layer 15's per-thread planar bands */
    int nthreads;               /* bands allocated for this many threads */
    float wout[32 * 9 * 9 * 3]; /* layer 15's weights, [ci][ky][kx][co] */
    uint32_t wout16[16 * 9 * 9 * 3]; /* the same as bf16 channel pairs, [ci/2][ky][kx][co] */
    int32_t w0i[3 * 9 * 5 * 32];   /* layer 0 as int16 tap pairs, [ci][ky][kx/2][co] (conv0_vnni) */
    float w0s[32];              /* and the scale back to float per output channel */
    int32_t *P;                 /* conv0_vnni's input, [3][h0 + 8][P_pw] int16 pairs;
                                 * in M's space when it fits (M is dead until layer 1) */
    int l0vnni_ok;              /* CPU has AVX512_VNNI, not STYLEFS_CPU_BF16=0 */
    float na[32], nb[32];       /* layer 14's norm, y = na * x + nb, applied by outconv */
    dnnl_primitive_t to_blocked, from_blocked;
    void *scratch;              /* scratchpad of layers 0-2, 13, 14 */
    void *scratch_res;          /* of layers 3..12 when B's block is too small */
    const float *wmodel;        /* blob whose weights are in wprim */
    uint8_t wdigest[16];
    int profile;                /* STYLEFS_PROFILE=1: log per-layer times */
    int winograd;               /* residual stage in Winograd (default on) */
    int bf16_ok;                /* CPU has AVX512_BF16, Winograd on, not STYLEFS_CPU_BF16=0 */
    int bf16;                   /* this plan runs layers 13-15 in bf16 */
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
    if (e->to_blocked) dnnl_primitive_destroy(e->to_blocked);
    if (e->from_blocked) dnnl_primitive_destroy(e->from_blocked);
    if (e->mT) dnnl_memory_destroy(e->mT);
    if (e->mT16) dnnl_memory_destroy(e->mT16);
    if (e->mX) dnnl_memory_destroy(e->mX);
    e->to_blocked = e->from_blocked = NULL;
    e->mT = e->mX = e->mT16 = NULL;
    if (e->P != (int32_t *)e->M)   /* else it lives in M, inside B's block */
        free(e->P);
    e->P = NULL;
    free(e->B); free(e->X); free(e->T); free(e->U);   /* I, M, O live inside B's block */
    free(e->scratch_res);
    e->scratch_res = NULL;
    free(e->scratch);
    free(e->band);
    e->band = NULL;
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

/* Activation buffers: 2 MB aligned and marked for transparent huge pages,
 * which cuts the first pass's page faults (about 90,000 at 1 MP with 4 KB
 * pages) to a few hundred.  Freed with free(). */
static float *alloc_f(size_t n)
{
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    void *p;

    if (bytes < (4u << 20))
        return aligned_alloc(64, bytes);
    bytes = (bytes + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
    p = aligned_alloc(2u << 20, bytes);
    if (p)
        madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

/* ---- layer 15: the 9x9 32->3 output convolution ---------------------------
 * Three output channels do not fill a vector, so oneDNN runs this layer at
 * about 40 GFLOP/s.  Here it is vectorized over width instead: each thread
 * takes bands of OUT_BAND rows, transposes the 8 + OUT_BAND input rows it
 * needs into a zero-bordered planar buffer [32][rows][pw], and then makes
 * two output rows y, y+1 at a time, 64 pixels wide: 2 rows x 3 channels x
 * 4 vectors of 16 sums stay in registers while it walks the 32 input
 * channels and the 10 input rows y-4..y+5 those two output rows read.  An
 * input row's 4 loads (per kx) feed both output rows: 24 FMAs per 4 loads
 * and 6 broadcasts (one row at a time was 12 per 4 and 3, and ran at about
 * 100 GFLOP/s against 160-180 now).  h4 is a multiple of 4, so every band
 * has an even number of rows.  target_clones builds AVX-512, AVX2 and
 * baseline versions and picks one at load time. */
#define OUT_BAND 16
#define OUT_VX 64                 /* output pixels per inner step */
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
typedef int v16i __attribute__((vector_size(64)));

#define OUT_LPAD 16               /* band columns left of x = 0: a 64-byte line */

/* Band row length: OUT_LPAD, the image rounded up to OUT_VX, and room for
 * the last step's kx reach (OUT_LPAD - 4 + 8 + 63 < OUT_LPAD + OUT_VX + 16). */
static size_t outconv_pw(int w4) { return (size_t)((w4 + OUT_VX - 1) / OUT_VX * OUT_VX + OUT_LPAD + 16); }

/* Per-thread planar band size, in floats. */
static size_t outconv_band_floats(int w4) { return (size_t)32 * (OUT_BAND + 8) * outconv_pw(w4); }

/* Transpose 16 x 16 floats in registers: t[i][k] <- t[k][i].  Four rounds
 * swap the off-diagonal blocks of 8, 4, 2 and 1 (two-input shuffles). */
static inline __attribute__((always_inline)) void transpose16(v16 *t)
{
#define T16_ROUND(d, lo, hi)                                                            \
    _Pragma("GCC unroll 16")                                                            \
    for (int i = 0; i < 16; i++)                                                        \
        if (!(i & (d))) {                                                               \
            v16 a_ = t[i], b_ = t[i + (d)];                                             \
            t[i] = __builtin_shuffle(a_, b_, (v16i)lo);                                 \
            t[i + (d)] = __builtin_shuffle(a_, b_, (v16i)hi);                           \
        }
    /* lo[k] = k & d ? b[k - d] : a[k];  hi[k] = k & d ? b[k] : a[k + d] */
    T16_ROUND(8, ((v16i){ 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23 }),
              ((v16i){ 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31 }))
    T16_ROUND(4, ((v16i){ 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27 }),
              ((v16i){ 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31 }))
    T16_ROUND(2, ((v16i){ 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29 }),
              ((v16i){ 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31 }))
    T16_ROUND(1, ((v16i){ 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30 }),
              ((v16i){ 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31 }))
#undef T16_ROUND
}

/* The 4 input vectors at row + kx .. row + kx + 63. */
#define OC_LOAD(row)                                                                     \
    v16 a0 = *(const v16u *)(row), a1 = *(const v16u *)((row) + 16),                     \
        a2 = *(const v16u *)((row) + 32), a3 = *(const v16u *)((row) + 48)
/* Accumulate them into output row P's 3 x 4 sums with the weights at wk[0..2]. */
#define OC_ACC(P, wk)                                                                    \
    do {                                                                                 \
        float w0_ = (wk)[0], w1_ = (wk)[1], w2_ = (wk)[2];                               \
        P##00 += a0 * w0_; P##01 += a1 * w0_; P##02 += a2 * w0_; P##03 += a3 * w0_;      \
        P##10 += a0 * w1_; P##11 += a1 * w1_; P##12 += a2 * w1_; P##13 += a3 * w1_;      \
        P##20 += a0 * w2_; P##21 += a1 * w2_; P##22 += a2 * w2_; P##23 += a3 * w2_;      \
    } while (0)

/* Store output rows y, y+1 from x0 (up to OUT_VX pixels, fewer at the
 * right edge) from acc[row][channel][vector], interleaving the channels. */
static inline __attribute__((always_inline)) void oc_store(v16 acc[2][3][4], float *out, int w4, int y,
                                                           int x0)
{
    int n = w4 - x0 < OUT_VX ? w4 - x0 : OUT_VX;

    for (int k = 0; k < 2; k++) {
        float *o = out + ((size_t)(y + k) * w4 + x0) * 3;
        for (int i = 0; i < n; i++)
            for (int co = 0; co < 3; co++)
                o[i * 3 + co] = acc[k][co][i / 16][i % 16];
    }
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
static void outconv_rows(const float *in, int h4, int w4, const float *na, const float *nb,
                         const float *wt, float *out, float *band, int y0, int y1)
{
    size_t pw = outconv_pw(w4), rows = (size_t)(y1 - y0) + 8;

    /* band[ci][r][OUT_LPAD + x] = max(na * in[y0 - 4 + r][x][ci] + nb, 0): layer
     * 14's norm and ReLU, applied here; zero outside the image.  16 pixels
     * x 16 channels at a time are transposed in registers. */
    for (size_t r = 0; r < rows; r++) {
        int y = y0 - 4 + (int)r, x;
        const float *src = in + (size_t)y * w4 * 32;
        float *d0 = band + r * pw;
        size_t cstride = rows * pw;             /* from one channel's row to the next's */
        if (y < 0 || y >= h4) {
            for (int ci = 0; ci < 32; ci++)
                memset(d0 + ci * cstride, 0, pw * sizeof(float));
            continue;
        }
        for (int ci = 0; ci < 32; ci++) {
            memset(d0 + ci * cstride, 0, OUT_LPAD * sizeof(float));
            memset(d0 + ci * cstride + OUT_LPAD + w4, 0, (pw - OUT_LPAD - (size_t)w4) * sizeof(float));
        }
        for (x = 0; x + 16 <= w4; x += 16)
            for (int cb = 0; cb < 32; cb += 16) {
                v16 t[16];
                v16 ga = *(const v16u *)(na + cb), gb = *(const v16u *)(nb + cb), zero = { 0 };
#pragma GCC unroll 16
                for (int j = 0; j < 16; j++) {              /* t[j]: pixel x + j */
                    v16 v = *(const v16u *)(src + (size_t)(x + j) * 32 + cb) * ga + gb;
                    t[j] = (v16)((v16i)v & (v > zero));     /* ReLU */
                }
                transpose16(t);                             /* t[c]: channel cb + c */
#pragma GCC unroll 16
                for (int c = 0; c < 16; c++)
                    *(v16 *)(d0 + (size_t)(cb + c) * cstride + OUT_LPAD + x) = t[c];
            }
        for (; x < w4; x++)                                 /* w4 is a multiple of 4 */
            for (int ci = 0; ci < 32; ci++) {
                float v = src[(size_t)x * 32 + ci] * na[ci] + nb[ci];
                d0[ci * cstride + OUT_LPAD + x] = v > 0 ? v : 0;
            }
    }
    for (int y = y0; y < y1; y += 2) {
        size_t r0_ = (size_t)(y - y0);
        for (int x0 = 0; x0 < w4; x0 += OUT_VX) {
            /* p: output row y, q: row y+1; [channel][vector] */
            v16 p00 = { 0 }, p01 = p00, p02 = p00, p03 = p00, p10 = p00, p11 = p00, p12 = p00,
                p13 = p00, p20 = p00, p21 = p00, p22 = p00, p23 = p00;
            v16 q00 = p00, q01 = p00, q02 = p00, q03 = p00, q10 = p00, q11 = p00, q12 = p00,
                q13 = p00, q20 = p00, q21 = p00, q22 = p00, q23 = p00;
            for (int ci = 0; ci < 32; ci++) {
                const float *rowc = band + ((size_t)ci * rows + r0_) * pw + OUT_LPAD - 4 + x0;
                const float *wc = wt + (size_t)ci * 9 * 9 * 3;     /* [ky][kx][co] */
                for (int kx = 0; kx < 9; kx++) {        /* input row y-4: ky 0 of row y */
                    OC_LOAD(rowc + kx);
                    OC_ACC(p, wc + kx * 3);
                }
                for (int r = 1; r < 9; r++)             /* ky r of row y, r-1 of y+1 */
                    for (int kx = 0; kx < 9; kx++) {
                        OC_LOAD(rowc + r * pw + kx);
                        OC_ACC(p, wc + (r * 9 + kx) * 3);
                        OC_ACC(q, wc + ((r - 1) * 9 + kx) * 3);
                    }
                for (int kx = 0; kx < 9; kx++) {        /* input row y+5: ky 8 of y+1 */
                    OC_LOAD(rowc + 9 * pw + kx);
                    OC_ACC(q, wc + (8 * 9 + kx) * 3);
                }
            }
            v16 acc[2][3][4] = { { { p00, p01, p02, p03 }, { p10, p11, p12, p13 }, { p20, p21, p22, p23 } },
                                 { { q00, q01, q02, q03 }, { q10, q11, q12, q13 }, { q20, q21, q22, q23 } } };
            oc_store(acc, out, w4, y, x0);
        }
    }
}

/* bfloat16 bits of f, rounded to nearest even. */
static inline uint16_t bf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

/* outconv_rows in bf16 (AVX512_BF16, with the plan's bf16 layers): the
 * band holds channel pairs, [ci/2][rows][pw] x (2ci, 2ci+1) as bf16, and
 * each vdpbf16ps does the two channels' 16 x 2 multiply-adds at once, so
 * the same 24-accumulator walk covers 16 channel pairs instead of 32
 * channels.  Sums stay float32. */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void outconv_rows_bf16(const float *in, int h4, int w4, const float *na, const float *nb,
                              const uint32_t *wt, float *out, float *bandf, int y0, int y1)
{
    size_t pw = outconv_pw(w4), rows = (size_t)(y1 - y0) + 8, cstride = rows * pw;
    uint32_t *band = (uint32_t *)bandf;         /* one bf16 pair per 32 bits */
    __m512 ga0 = _mm512_loadu_ps(na), ga1 = _mm512_loadu_ps(na + 16);
    __m512 gb0 = _mm512_loadu_ps(nb), gb1 = _mm512_loadu_ps(nb + 16), zero = _mm512_setzero_ps();

    for (size_t r = 0; r < rows; r++) {
        int y = y0 - 4 + (int)r, x;
        const float *src = in + (size_t)y * w4 * 32;
        uint32_t *d0 = band + r * pw;
        if (y < 0 || y >= h4) {
            for (int cp = 0; cp < 16; cp++)
                memset(d0 + cp * cstride, 0, pw * sizeof *d0);
            continue;
        }
        for (int cp = 0; cp < 16; cp++) {
            memset(d0 + cp * cstride, 0, OUT_LPAD * sizeof *d0);
            memset(d0 + cp * cstride + OUT_LPAD + w4, 0, (pw - OUT_LPAD - (size_t)w4) * sizeof *d0);
        }
        for (x = 0; x + 16 <= w4; x += 16) {
            v16 t[16];
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++) {      /* t[j]: pixel x + j, its 16 pairs */
                const float *px = src + (size_t)(x + j) * 32;
                __m512 lo = _mm512_max_ps(_mm512_fmadd_ps(_mm512_loadu_ps(px), ga0, gb0), zero);
                __m512 hi = _mm512_max_ps(_mm512_fmadd_ps(_mm512_loadu_ps(px + 16), ga1, gb1), zero);
                t[j] = (v16)_mm512_cvtne2ps_pbh(hi, lo);
            }
            transpose16(t);                     /* t[cp]: pair cp of 16 pixels */
#pragma GCC unroll 16
            for (int cp = 0; cp < 16; cp++)
                *(v16 *)(d0 + (size_t)cp * cstride + OUT_LPAD + x) = t[cp];
        }
        for (; x < w4; x++)
            for (int cp = 0; cp < 16; cp++) {
                float v0 = src[(size_t)x * 32 + 2 * cp] * na[2 * cp] + nb[2 * cp];
                float v1 = src[(size_t)x * 32 + 2 * cp + 1] * na[2 * cp + 1] + nb[2 * cp + 1];
                d0[cp * cstride + OUT_LPAD + x] =
                    bf16_bits(v0 > 0 ? v0 : 0) | (uint32_t)bf16_bits(v1 > 0 ? v1 : 0) << 16;
            }
    }
    for (int y = y0; y < y1; y += 2) {
        size_t r0_ = (size_t)(y - y0);
        for (int x0 = 0; x0 < w4; x0 += OUT_VX) {
            __m512 p00 = _mm512_setzero_ps(), p01 = p00, p02 = p00, p03 = p00, p10 = p00, p11 = p00,
                   p12 = p00, p13 = p00, p20 = p00, p21 = p00, p22 = p00, p23 = p00;
            __m512 q00 = p00, q01 = p00, q02 = p00, q03 = p00, q10 = p00, q11 = p00, q12 = p00,
                   q13 = p00, q20 = p00, q21 = p00, q22 = p00, q23 = p00;
#define OB_LOAD(row)                                                                           \
    __m512bh a0 = (__m512bh)_mm512_loadu_si512(row), a1 = (__m512bh)_mm512_loadu_si512((row) + 16), \
             a2 = (__m512bh)_mm512_loadu_si512((row) + 32), a3 = (__m512bh)_mm512_loadu_si512((row) + 48)
#define OB_ACC(P, wk)                                                                          \
    do {                                                                                       \
        __m512bh w0_ = (__m512bh)_mm512_set1_epi32((int)(wk)[0]);                              \
        __m512bh w1_ = (__m512bh)_mm512_set1_epi32((int)(wk)[1]);                              \
        __m512bh w2_ = (__m512bh)_mm512_set1_epi32((int)(wk)[2]);                              \
        P##00 = _mm512_dpbf16_ps(P##00, a0, w0_); P##01 = _mm512_dpbf16_ps(P##01, a1, w0_);    \
        P##02 = _mm512_dpbf16_ps(P##02, a2, w0_); P##03 = _mm512_dpbf16_ps(P##03, a3, w0_);    \
        P##10 = _mm512_dpbf16_ps(P##10, a0, w1_); P##11 = _mm512_dpbf16_ps(P##11, a1, w1_);    \
        P##12 = _mm512_dpbf16_ps(P##12, a2, w1_); P##13 = _mm512_dpbf16_ps(P##13, a3, w1_);    \
        P##20 = _mm512_dpbf16_ps(P##20, a0, w2_); P##21 = _mm512_dpbf16_ps(P##21, a1, w2_);    \
        P##22 = _mm512_dpbf16_ps(P##22, a2, w2_); P##23 = _mm512_dpbf16_ps(P##23, a3, w2_);    \
    } while (0)
            for (int cp = 0; cp < 16; cp++) {
                const uint32_t *rowc = band + ((size_t)cp * rows + r0_) * pw + OUT_LPAD - 4 + x0;
                const uint32_t *wc = wt + (size_t)cp * 9 * 9 * 3;
                for (int kx = 0; kx < 9; kx++) {
                    OB_LOAD(rowc + kx);
                    OB_ACC(p, wc + kx * 3);
                }
                for (int r = 1; r < 9; r++)
                    for (int kx = 0; kx < 9; kx++) {
                        OB_LOAD(rowc + r * pw + kx);
                        OB_ACC(p, wc + (r * 9 + kx) * 3);
                        OB_ACC(q, wc + ((r - 1) * 9 + kx) * 3);
                    }
                for (int kx = 0; kx < 9; kx++) {
                    OB_LOAD(rowc + 9 * pw + kx);
                    OB_ACC(q, wc + (8 * 9 + kx) * 3);
                }
            }
#undef OB_LOAD
#undef OB_ACC
            v16 acc[2][3][4] = {
                { { (v16)p00, (v16)p01, (v16)p02, (v16)p03 }, { (v16)p10, (v16)p11, (v16)p12, (v16)p13 },
                  { (v16)p20, (v16)p21, (v16)p22, (v16)p23 } },
                { { (v16)q00, (v16)q01, (v16)q02, (v16)q03 }, { (v16)q10, (v16)q11, (v16)q12, (v16)q13 },
                  { (v16)q20, (v16)q21, (v16)q22, (v16)q23 } }
            };
            oc_store(acc, out, w4, y, x0);
        }
    }
}

/* in [h4][w4][32] NHWC, before its norm (y = na * x + nb, then ReLU)
 * -> out [h4][w4][3]; wt [ci][ky][kx][co]. */
static void outconv(struct sf_engine_impl *e, const float *in, int h4, int w4, const float *na,
                    const float *nb, float *out)
{
    int nbands = (h4 + OUT_BAND - 1) / OUT_BAND;

#pragma omp parallel
    {
        float *band = e->band + (size_t)omp_get_thread_num() * outconv_band_floats(w4);
#pragma omp for schedule(dynamic, 1)
        for (int b = 0; b < nbands; b++) {
            int y0 = b * OUT_BAND, y1 = y0 + OUT_BAND < h4 ? y0 + OUT_BAND : h4;
            if (e->bf16)
                outconv_rows_bf16(in, h4, w4, na, nb, e->wout16, out, band, y0, y1);
            else
                outconv_rows(in, h4, w4, na, nb, e->wout, out, band, y0, y1);
        }
    }
}

/* ---- layer 0 in int16 (AVX512_VNNI) ----------------------------------------
 * The input pixels are integers 0..255, exact in int16, so with the weights
 * quantized to int16 per output channel (scale 32767 / max |w|, relative
 * error about 1.5e-5 of the largest weight) vpdpwssd computes layer 0 in
 * exact integer sums, two taps per instruction: 32 multiply-adds where a
 * float FMA does 16.  (bf16 weights, 8 bits of mantissa, broke the oracle
 * bar when used here.)  The sums cannot overflow: 243 taps x 255 x 32767
 * < 2^31.  P holds, per input channel, each pixel paired with its right
 * neighbour as one 32-bit word, with a zero border of 4: P[ci][4 + y][4 + x]
 * = (v[y][x], v[y][x + 1]); then the pair at P column x + 2k serves taps
 * kx = 2k, 2k + 1 of output pixel x (kx = 9 has weight 0).  Each step makes
 * 12 output pixels x 32 channels in 24 registers: per tap pair, 2 weight
 * loads and 12 broadcasts feed 24 vpdpwssd. */
#define P_BLK 12
static size_t p_pw(int w0) { return (size_t)(w0 + 8 + P_BLK + 8 + 15) / 16 * 16; }

static void conv0_pairs(const uint8_t *rgb, int h0, int w0, int32_t *P)
{
    size_t pw = p_pw(w0), rows = (size_t)h0 + 8;

#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        int y = (int)r - 4;
        for (int ci = 0; ci < 3; ci++) {
            int32_t *d = P + ((size_t)ci * rows + r) * pw;
            memset(d, 0, pw * sizeof *d);
            if (y < 0 || y >= h0)
                continue;
            const uint8_t *src = rgb + (size_t)y * w0 * 3 + ci;
            for (int x = 0; x < w0; x++)
                d[4 + x] = src[3 * x] | (x + 1 < w0 ? (int32_t)src[3 * x + 3] << 16 : 0);
            d[3] = (int32_t)src[0] << 16;                       /* (0, v[y][0]) */
        }
    }
}

__attribute__((target("avx512f,avx512vnni")))
static void conv0_vnni(const int32_t *P, int h0, int w0, const int32_t *wq, const float *ws, float *out)
{
    size_t pw = p_pw(w0), rows = (size_t)h0 + 8;
    __m512 s0 = _mm512_loadu_ps(ws), s1 = _mm512_loadu_ps(ws + 16);

#pragma omp parallel for schedule(static)
    for (int y = 0; y < h0; y++)
        for (int x0 = 0; x0 < w0; x0 += P_BLK) {
            /* aP_c: pixel x0 + P, channels 16c .. 16c + 15 */
            __m512i a0_0 = _mm512_setzero_si512(), a0_1 = a0_0, a1_0 = a0_0, a1_1 = a0_0, a2_0 = a0_0,
                    a2_1 = a0_0, a3_0 = a0_0, a3_1 = a0_0, a4_0 = a0_0, a4_1 = a0_0, a5_0 = a0_0, a5_1 = a0_0,
                    a6_0 = a0_0, a6_1 = a0_0, a7_0 = a0_0, a7_1 = a0_0, a8_0 = a0_0, a8_1 = a0_0, a9_0 = a0_0,
                    a9_1 = a0_0, a10_0 = a0_0, a10_1 = a0_0, a11_0 = a0_0, a11_1 = a0_0;
            for (int ci = 0; ci < 3; ci++)
                for (int ky = 0; ky < 9; ky++) {
                    const int32_t *row = P + ((size_t)ci * rows + y + ky) * pw + x0;
                    const int32_t *wk = wq + ((size_t)ci * 9 + ky) * 5 * 32;
                    for (int k = 0; k < 5; k++, row += 2, wk += 32) {
                        __m512i w_0 = _mm512_loadu_si512(wk), w_1 = _mm512_loadu_si512(wk + 16);
/* Inline asm, with the pixel pair broadcast from memory ({1to16}): GCC 12
 * copied and spilled the intrinsic's tied accumulator and held the 12
 * broadcasts in registers, and ran this layer at 97 ms instead of 55. */
#define C0_PIX(P_)                                                                        \
    __asm__("vpdpwssd %2%{1to16%}, %1, %0" : "+v"(a##P_##_0) : "v"(w_0), "m"(row[P_]));   \
    __asm__("vpdpwssd %2%{1to16%}, %1, %0" : "+v"(a##P_##_1) : "v"(w_1), "m"(row[P_]));
                        C0_PIX(0) C0_PIX(1) C0_PIX(2) C0_PIX(3) C0_PIX(4) C0_PIX(5)
                        C0_PIX(6) C0_PIX(7) C0_PIX(8) C0_PIX(9) C0_PIX(10) C0_PIX(11)
#undef C0_PIX
                    }
                }
            int n = w0 - x0 < P_BLK ? w0 - x0 : P_BLK;
            float *o = out + ((size_t)y * w0 + x0) * 32;
#define C0_OUT(P_)                                                                        \
    if (P_ < n) {                                                                         \
        _mm512_storeu_ps(o + P_ * 32, _mm512_mul_ps(_mm512_cvtepi32_ps(a##P_##_0), s0));  \
        _mm512_storeu_ps(o + P_ * 32 + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(a##P_##_1), s1)); \
    }
            C0_OUT(0) C0_OUT(1) C0_OUT(2) C0_OUT(3) C0_OUT(4) C0_OUT(5)
            C0_OUT(6) C0_OUT(7) C0_OUT(8) C0_OUT(9) C0_OUT(10) C0_OUT(11)
#undef C0_OUT
        }
}

/* Layer 0's weights, stored [ky][kx][ci][co], as conv0_vnni's int16 pairs. */
static void conv0_weights(const float *w, int32_t *wq, float *ws)
{
    for (int co = 0; co < 32; co++) {
        float mx = 0;
        for (int t = 0; t < 81 * 3; t++)
            mx = fabsf(w[t * 32 + co]) > mx ? fabsf(w[t * 32 + co]) : mx;
        float scale = mx > 0 ? 32767.0f / mx : 1.0f;
        ws[co] = 1.0f / scale;
        for (int ci = 0; ci < 3; ci++)
            for (int ky = 0; ky < 9; ky++)
                for (int k = 0; k < 5; k++) {
                    int32_t q[2];
                    for (int j = 0; j < 2; j++) {
                        int kx = 2 * k + j;
                        q[j] = kx < 9 ? (int32_t)lrintf(w[((ky * 9 + kx) * 3 + ci) * 32 + co] * scale) : 0;
                    }
                    wq[((ci * 9 + ky) * 5 + k) * 32 + co] = (q[0] & 0xffff) | (int32_t)((uint32_t)q[1] << 16);
                }
    }
}

/* Build the primitives of layer i: input [hin][win][cin] in `src`, output
 * into `dst`.  Sets *hout, *wout.  Returns 0 or -errno. */
static int plan_layer(struct sf_engine_impl *e, int i, float *src, int hin, int win,
                      float *dst, int *hout, int *wout, size_t *scratch_need)
{
    /* The residual stage (layers 3..12, 73% of the work) runs oneDNN's
     * Winograd F(4x4, 3x3) where the CPU has it, on the blocked nChw16c
     * layout it wants.  Layer 2 writes NHWC into T, which is reordered
     * into X (blocked) after its norm; X is reordered back into T (NHWC)
     * for layer 13 (to_blocked / from_blocked, about 1% of the time).
     * STYLEFS_CPU_WINOGRAD=0 turns it off (for measurements). */
    int wino = e->winograd && i >= 3 && i <= 12;
    /* bf16 (see DESIGN): source and weights; the output stays f32 */
    dnnl_data_type_t dt = e->bf16 && (i == 13 || i == 14) ? dnnl_bf16 : dnnl_f32;
    dnnl_format_tag_t src_tag = wino ? dnnl_nChw16c : dnnl_nhwc;
    dnnl_format_tag_t dst_tag = wino ? dnnl_nChw16c : dnnl_nhwc;
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

    CHECK(dnnl_memory_desc_init_by_tag(&src_md, 4, sdims, dt, src_tag));
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 4, ddims, dnnl_f32, dst_tag));
    CHECK(dnnl_memory_desc_init_by_tag(&w_any, 4, wdims, dt, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_strides(&w_user, 4, wdims, dnnl_f32, wstrides));
    CHECK(dnnl_primitive_attr_create(&attr));
    CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (s->kind == SF_CONV) {
        dnnl_convolution_desc_t cd;
        CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                 wino ? dnnl_convolution_winograd : dnnl_convolution_auto,
                                                 &src_md, &w_any, NULL, &dst_md, strides, pl, pr));
        if (wino && dnnl_primitive_desc_create(&pd, &cd, attr, e->eng, NULL) != dnnl_success) {
            /* no Winograd on this CPU: the same layouts, any algorithm */
            pd = NULL;
            CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_auto,
                                                     &src_md, &w_any, NULL, &dst_md, strides, pl, pr));
        }
        if (!pd)
            CHECK(dnnl_primitive_desc_create(&pd, &cd, attr, e->eng, NULL));
    } else {
        dnnl_deconvolution_desc_t dd;
        CHECK(dnnl_deconvolution_forward_desc_init(&dd, dnnl_forward_inference,
                                                   dnnl_deconvolution_direct, &src_md, &w_any,
                                                   NULL, &dst_md, strides, pl, pr));
        CHECK(dnnl_primitive_desc_create(&pd, &dd, attr, e->eng, NULL));
    }
    CHECK(dnnl_primitive_create(&l->prim, pd));
    {
        const char *impl = NULL;
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        snprintf(l->impl, sizeof l->impl, "%s", impl ? impl : "?");
    }

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
    l->blocked_out = dst_tag == dnnl_nChw16c;
    l->out_hw = (size_t)oh * ow;
    l->flops = 2.0 * s->k * s->k * s->cin * s->cout *
               (s->kind == SF_CONV ? (double)oh * ow : (double)hin * win);
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
    size_t scratch_need = 0, res_need = 0, bm = full * 32 + half * 64;
    int rc = 0, i, oh, ow;

    plan_free(e);
    e->bf16 = e->bf16_ok && (size_t)h0 * w0 >= BF16_MIN_PIXELS;
    /* One block holds B, then M.  I (read by layer 0 only) and O (written
     * by layer 15 only) live in M, which is dead at those times; and while
     * the residual layers run, B and M are both dead, so the block is
     * their (large, Winograd) scratchpad.  This keeps 1 MP under 400 MB. */
    e->B = alloc_f(bm);                 /* h4*w4 >= h0*w0 */
    e->M = e->B ? e->B + full * 32 : NULL;  /* h3*w3 >= h1*w1 */
    e->I = e->M;
    e->O = e->M;
    e->X = alloc_f(quarter * 128);
    e->T = alloc_f(quarter * 128);
    e->U = alloc_f(quarter * 128);
    if (!e->I || !e->B || !e->M || !e->X || !e->T || !e->U || !e->O) {
        rc = -ENOMEM;
        goto out_free;
    }
    if ((rc = plan_layer(e, 0, e->I, h0, w0, e->B, &oh, &ow, &scratch_need)) ||
        (rc = plan_layer(e, 1, e->B, h0, w0, e->M, &oh, &ow, &scratch_need)) ||
        (rc = plan_layer(e, 2, e->M, h1, w1, e->winograd ? e->T : e->X, &oh, &ow, &scratch_need)))
        goto out_free;
    if (e->winograd) {
        dnnl_memory_desc_t nhwc, blk;
        dnnl_primitive_desc_t rpd = NULL;
        dnnl_dims_t d = { 1, 128, h2, w2 };
        CHECK(dnnl_memory_desc_init_by_tag(&nhwc, 4, d, dnnl_f32, dnnl_nhwc));
        CHECK(dnnl_memory_desc_init_by_tag(&blk, 4, d, dnnl_f32, dnnl_nChw16c));
        CHECK(dnnl_memory_create(&e->mT, &nhwc, e->eng, e->T));
        CHECK(dnnl_memory_create(&e->mX, &blk, e->eng, e->X));
        CHECK(dnnl_reorder_primitive_desc_create(&rpd, &nhwc, e->eng, &blk, e->eng, NULL));
        rc = dnnl_errno(dnnl_primitive_create(&e->to_blocked, rpd));
        dnnl_primitive_desc_destroy(rpd);
        if (rc)
            goto out_free;
        if (e->bf16) {          /* layer 13 reads T as bf16 */
            dnnl_memory_desc_t nhwc16;
            CHECK(dnnl_memory_desc_init_by_tag(&nhwc16, 4, d, dnnl_bf16, dnnl_nhwc));
            CHECK(dnnl_memory_create(&e->mT16, &nhwc16, e->eng, e->T));
            CHECK(dnnl_reorder_primitive_desc_create(&rpd, &blk, e->eng, &nhwc16, e->eng, NULL));
        } else {
            CHECK(dnnl_reorder_primitive_desc_create(&rpd, &blk, e->eng, &nhwc, e->eng, NULL));
        }
        rc = dnnl_errno(dnnl_primitive_create(&e->from_blocked, rpd));
        dnnl_primitive_desc_destroy(rpd);
        if (rc)
            goto out_free;
    }
    for (i = 3; i <= 12; i += 2)
        if ((rc = plan_layer(e, i, e->X, h2, w2, e->T, &oh, &ow, &res_need)) ||
            (rc = plan_layer(e, i + 1, e->T, h2, w2, e->U, &oh, &ow, &res_need)))
            goto out_free;
    if ((rc = plan_layer(e, 13, e->winograd ? e->T : e->X, h2, w2, e->M, &oh, &ow, &scratch_need)) ||
        (rc = plan_layer(e, 14, e->bf16 ? e->T : e->M, h3, w3, e->B, &oh, &ow, &scratch_need)) ||
        0)
        goto out_free;
    /* layer 15 is ours (outconv) */
    e->L[15].out = e->O;
    e->L[15].out_hw = full;
    e->L[15].flops = 2.0 * 81 * 32 * 3 * (double)full;
    snprintf(e->L[15].impl, sizeof e->L[15].impl, "stylefs outconv");
    e->nthreads = omp_get_max_threads();
    e->band = alloc_f(outconv_band_floats(w4) * (size_t)e->nthreads);
    if (e->l0vnni_ok) {     /* in M, dead until layer 1, where it fits */
        snprintf(e->L[0].impl, sizeof e->L[0].impl, "stylefs conv0_vnni (int16)");
        size_t pn = 3 * ((size_t)h0 + 8) * p_pw(w0);
        e->P = pn <= half * 64 ? (int32_t *)e->M : (int32_t *)alloc_f(pn);
    }
    if (!e->band || (e->l0vnni_ok && !e->P)) {
        rc = -ENOMEM;
        goto out_free;
    }
    if (scratch_need) {
        e->scratch = aligned_alloc(64, (scratch_need + 63) / 64 * 64);
        if (!e->scratch) {
            rc = -ENOMEM;
            goto out_free;
        }
        for (i = 0; i < SF_LAYERS; i++)
            if (i < 3 || i > 12)
                dnnl_memory_set_data_handle(e->L[i].scratch, e->scratch);
    }
    e->h = h0;
    e->w = w0;
    if (res_need) {
        void *rs = e->B;
        if (res_need > bm * sizeof(float) && !(rs = e->scratch_res = aligned_alloc(64, (res_need + 63) / 64 * 64))) {
            rc = -ENOMEM;
            goto out_free;
        }
        for (i = 3; i <= 12; i++)
            dnnl_memory_set_data_handle(e->L[i].scratch, rs);
    }
    sf_debug("cpu engine: planned %dx%d (scratchpad %zu bytes, residual stage %zu bytes in %s)", w0, h0,
             scratch_need, res_need, res_need > bm * sizeof(float) ? "its own block" : "B's block");
    return 0;
out_fail:
out_free:
    plan_free(e);
    return rc;
}

/* Instance norm, fused with ReLU or the residual add:
 *   y = gamma * (x - mean) / sqrt(var + eps) + beta  =  a * x + b
 *   relu:     x = max(y, 0)
 *   residual: res += y          (x is left as it was)
 * The tensor is G groups of [hw][CG] floats, one after the other: NHWC is
 * one group of all channels; oneDNN's blocked nChw16c is c/16 groups of 16.
 * Statistics are taken around a per-channel shift (the first pixel) in
 * float over blocks of 64 pixels and summed in double, so the one-pass
 * variance does not cancel.  CG is a compile-time constant in every call
 * (the norm_* functions are inlined per width), so the channel loops
 * vectorize.  Layer 14's norm is split: norm_stats here, and outconv
 * applies it as it reads. */
#define NORM_BLK 64

/* a, b from per-channel sums of (x - shift) and of its square over hw. */
static void norm_coeffs(const double *sum, const double *sq, const float *shift, size_t hw, int c,
                        const float *gamma, const float *beta, float *a, float *b)
{
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
}

static inline __attribute__((always_inline)) void
norm_stats(const float *x, size_t hw, int G, const int CG, const float *gamma, const float *beta, float *a,
           float *b)
{
    size_t nblk = (hw + NORM_BLK - 1) / NORM_BLK;
    double sum[128] = { 0 }, sq[128] = { 0 };
    float shift[128];

    for (int g = 0; g < G; g++)
        for (int ch = 0; ch < CG; ch++)
            shift[g * CG + ch] = x[(size_t)g * hw * CG + ch];
#pragma omp parallel
    {
        double ls[128] = { 0 }, lq[128] = { 0 };
#pragma omp for schedule(static) collapse(2)
        for (int g = 0; g < G; g++)
            for (size_t bi = 0; bi < nblk; bi++) {
                float fs[CG], fq[CG];
                const float *sh = shift + g * CG;
                const float *base = x + (size_t)g * hw * CG;
                size_t end = (bi + 1) * NORM_BLK < hw ? (bi + 1) * NORM_BLK : hw;
                for (int ch = 0; ch < CG; ch++)
                    fs[ch] = fq[ch] = 0;
                for (size_t p = bi * NORM_BLK; p < end; p++) {
                    const float *px = base + p * CG;
#pragma omp simd
                    for (int ch = 0; ch < CG; ch++) {
                        float d = px[ch] - sh[ch];
                        fs[ch] += d;
                        fq[ch] += d * d;
                    }
                }
                for (int ch = 0; ch < CG; ch++) {
                    ls[g * CG + ch] += fs[ch];
                    lq[g * CG + ch] += fq[ch];
                }
            }
#pragma omp critical
        for (int ch = 0; ch < G * CG; ch++) {
            sum[ch] += ls[ch];
            sq[ch] += lq[ch];
        }
    }
    norm_coeffs(sum, sq, shift, hw, G * CG, gamma, beta, a, b);
}

static inline __attribute__((always_inline)) void
norm_fixed(float *x, size_t hw, int G, const int CG, const float *gamma, const float *beta, int relu,
           float *res)
{
    size_t nblk = (hw + NORM_BLK - 1) / NORM_BLK;
    float a[128], b[128];

    norm_stats(x, hw, G, CG, gamma, beta, a, b);
#pragma omp parallel for schedule(static) collapse(2)
    for (int g = 0; g < G; g++)
        for (size_t bi = 0; bi < nblk; bi++) {
            const float *ga = a + g * CG, *gb = b + g * CG;
            size_t end = (bi + 1) * NORM_BLK < hw ? (bi + 1) * NORM_BLK : hw;
            for (size_t p = bi * NORM_BLK; p < end; p++) {
                size_t off = ((size_t)g * hw + p) * CG;
                float *px = x + off;
                if (res) {
                    float *r = res + off;
#pragma omp simd
                    for (int ch = 0; ch < CG; ch++)
                        r[ch] += px[ch] * ga[ch] + gb[ch];
                } else if (relu) {
#pragma omp simd
                    for (int ch = 0; ch < CG; ch++) {
                        float y = px[ch] * ga[ch] + gb[ch];
                        px[ch] = y > 0 ? y : 0;
                    }
                } else {
#pragma omp simd
                    for (int ch = 0; ch < CG; ch++)
                        px[ch] = px[ch] * ga[ch] + gb[ch];
                }
            }
        }
}

/* c channels, NHWC (blocked = 0) or nChw16c (blocked = 1). */
static void inorm(float *x, size_t hw, int c, int blocked, const float *gamma, const float *beta,
                  int relu, float *res)
{
    if (blocked)
        norm_fixed(x, hw, c / 16, 16, gamma, beta, relu, res);
    else if (c == 32)
        norm_fixed(x, hw, 1, 32, gamma, beta, relu, res);
    else if (c == 64)
        norm_fixed(x, hw, 1, 64, gamma, beta, relu, res);
    else
        norm_fixed(x, hw, 1, 128, gamma, beta, relu, res);
}

/* Layer 13's norm and ReLU when layer 14 runs in bf16: x [hw][64] f32 ->
 * out [hw][64] bf16, rounded to nearest even. */
static void norm_relu_bf16(const float *x, size_t hw, const float *gamma, const float *beta, uint16_t *out)
{
    float a[64], b[64];

    norm_stats(x, hw, 1, 64, gamma, beta, a, b);
#pragma omp parallel for schedule(static)
    for (size_t p = 0; p < hw; p++) {
#pragma omp simd
        for (int ch = 0; ch < 64; ch++) {
            float y = x[p * 64 + ch] * a[ch] + b[ch];
            out[p * 64 + ch] = bf16_bits(y > 0 ? y : 0);
        }
    }
}

/* tanh for the output stage, in plain arithmetic so that it vectorizes:
 * tanh x = (e - 1) / (e + 1), e = exp 2x, with exp from a degree-6
 * polynomial on x - k ln 2.  Absolute error under 2e-7 (libm's tanhf is
 * 8 times slower here); over 2.4 million points in [-12, 12] no 8-bit
 * output value differs from tanhf's. */
static inline float exp_poly(float x)       /* |x| <= 20 */
{
    float t = x * 1.44269504f;
    int k = (int)(t + (t >= 0 ? 0.5f : -0.5f));
    float r = x - (float)k * 0.693145752f - (float)k * 1.42860677e-6f;
    float p = 1.f + r * (1.f + r * (0.5f + r * (1.f / 6 + r * (1.f / 24 + r * (1.f / 120 + r * (1.f / 720))))));
    int32_t bits = (k + 127) * (1 << 23);
    float s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
}

static inline float tanh_poly(float x)
{
    float e;
    x = x < -9.f ? -9.f : x > 9.f ? 9.f : x;
    e = exp_poly(2.f * x);
    return (e - 1.f) / (e + 1.f);
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


static int exec_reorder(struct sf_engine_impl *e, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to)
{
    dnnl_exec_arg_t args[2] = { { DNNL_ARG_FROM, from }, { DNNL_ARG_TO, to } };
    int rc = 0;

    CHECK(dnnl_primitive_execute(r, e->stream, 2, args));
    CHECK(dnnl_stream_wait(e->stream));
out_fail:
    return rc;
}

static int load_weights(struct sf_engine_impl *e, const struct sf_model *m)
{
    int rc = 0;

    if (e->wmodel == m->blob && !memcmp(e->wdigest, m->digest, 16))
        return 0;
    /* layer 15: stored [ky][kx][ci][co] -> [ci][ky][kx][co] */
    for (int ky = 0; ky < 9; ky++)
        for (int kx = 0; kx < 9; kx++)
            for (int ci = 0; ci < 32; ci++)
                for (int co = 0; co < 3; co++)
                    e->wout[((ci * 9 + ky) * 9 + kx) * 3 + co] = m->weights[15][((ky * 9 + kx) * 32 + ci) * 3 + co];
    conv0_weights(m->weights[0], e->w0i, e->w0s);
    for (int i = 0; i < 16 * 81 * 3; i++) {     /* [cp][ky][kx][co]: (2cp, 2cp+1) */
        int cp = i / 243, rest = i % 243;
        e->wout16[i] = bf16_bits(e->wout[(2 * cp) * 243 + rest]) |
                       (uint32_t)bf16_bits(e->wout[(2 * cp + 1) * 243 + rest]) << 16;
    }
    for (int i = 0; i < SF_LAYERS - 1; i++) {
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

    if (e->P) {
        conv0_pairs(rgb, h, w, e->P);
    } else {
#pragma omp parallel for schedule(static)
        for (size_t p = 0; p < n0 * 3; p++)
            e->I[p] = rgb[p];
    }

    double t0 = omp_get_wtime(), t1, t2, tconv = 0, tnorm = 0;
    for (i = 0; i < SF_LAYERS; i++) {
        const struct sf_layer_spec *s = &sf_net[i];
        struct plan_layer *l = &e->L[i];
        if (cancel && *cancel)
            return -ECANCELED;
        t1 = omp_get_wtime();
        if (i == 13 && e->from_blocked &&
            (rc = exec_reorder(e, e->from_blocked, e->mX, e->bf16 ? e->mT16 : e->mT)))
            return rc;
        if (i == SF_LAYERS - 1)
            outconv(e, e->B, 4 * ((((h + 1) / 2) + 1) / 2), 4 * ((((w + 1) / 2) + 1) / 2), e->na, e->nb,
                    e->O);
        else if (i == 0 && e->P)
            conv0_vnni(e->P, h, w, e->w0i, e->w0s, e->B);
        else if ((rc = exec_layer(e, i)))
            return rc;
        t2 = omp_get_wtime();
        if (i == 14)
            norm_stats(l->out, l->out_hw, 1, 32, m->gamma[i], m->beta[i], e->na, e->nb);
        else if (i == 13 && e->bf16)
            norm_relu_bf16(l->out, l->out_hw, m->gamma[i], m->beta[i], (uint16_t *)e->T);
        else if (i < SF_LAYERS - 1)
            inorm(l->out, l->out_hw, s->cout, l->blocked_out, m->gamma[i], m->beta[i], s->relu,
                  s->residual ? e->X : NULL);
        if (i == 2 && e->to_blocked && (rc = exec_reorder(e, e->to_blocked, e->mT, e->mX)))
            return rc;
        if (e->profile) {
            double t3 = omp_get_wtime();
            tconv += t2 - t1;
            tnorm += t3 - t2;
            sf_info("profile: layer %2d conv %7.1f ms %6.1f GFLOP/s  norm %5.1f ms  %s", i,
                    (t2 - t1) * 1e3, l->flops / (t2 - t1) / 1e9, (t3 - t2) * 1e3, l->impl);
        }
        if (i == SF_LAYERS - 1)
            break;
    }
    /* Layer 15: instance norm, then tanh * 150 + 127.5, cropped to h x w,
     * in one pass; a3/b3 repeat the 3 channels' coefficients 16 times so
     * that the loop runs over whole vectors of interleaved RGB. */
    {
        struct plan_layer *l = &e->L[15];
        int w4 = 4 * ((((w + 1) / 2) + 1) / 2);
        float a[3], b[3], a3[48], b3[48];
        norm_stats(l->out, l->out_hw, 1, 3, m->gamma[15], m->beta[15], a, b);
        for (int j = 0; j < 48; j++) {
            a3[j] = a[j % 3];
            b3[j] = b[j % 3];
        }
#pragma omp parallel for schedule(static)
        for (int y = 0; y < h; y++) {
            const float *src = e->O + (size_t)y * w4 * 3;
            uint8_t *dst = out + (size_t)y * w * 3;
            for (int x0 = 0; x0 < w * 3; x0 += 48) {
                int n = w * 3 - x0 < 48 ? w * 3 - x0 : 48;
#pragma omp simd
                for (int j = 0; j < n; j++) {
                    float v = tanh_poly(src[x0 + j] * a3[j] + b3[j]) * 150.0f + 127.5f;
                    v = v < 0 ? 0 : v > 255 ? 255 : v;
                    dst[x0 + j] = (uint8_t)(v + 0.5f);
                }
            }
        }
    }
    if (e->profile)
        sf_info("profile: %dx%d total %.1f ms: convolutions %.1f, norms %.1f, output and rest %.1f", w, h,
                (omp_get_wtime() - t0) * 1e3, tconv * 1e3, tnorm * 1e3,
                (omp_get_wtime() - t0 - tconv - tnorm) * 1e3);
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
    e->profile = getenv("STYLEFS_PROFILE") && *getenv("STYLEFS_PROFILE") == '1';
    e->winograd = !(getenv("STYLEFS_CPU_WINOGRAD") && *getenv("STYLEFS_CPU_WINOGRAD") == '0');
    {
        dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
        int has_bf16 = (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
        int has_vnni = (isa & dnnl_cpu_isa_avx512_core_vnni) == dnnl_cpu_isa_avx512_core_vnni;
        int off = getenv("STYLEFS_CPU_BF16") && *getenv("STYLEFS_CPU_BF16") == '0';
        e->bf16_ok = e->winograd && has_bf16 && !off;
        e->l0vnni_ok = has_vnni && !off;
        snprintf(why, whylen, "oneDNN %d.%d, %d threads, %s%s", dnnl_version()->major, dnnl_version()->minor,
                 omp_get_max_threads(), e->l0vnni_ok ? "layer 0 in int16 (AVX512_VNNI), " : "",
                 e->bf16_ok ? "layers 13-15 in bf16 from 128x128 pixels up (AVX512_BF16)"
                 : off ? "all float32 (STYLEFS_CPU_BF16=0)"
                 : !has_bf16 ? "all float32 (no AVX512_BF16)" : "all float32 (Winograd off)");
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
