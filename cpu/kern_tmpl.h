/* kern_tmpl.h: the element-wise kernels (instance norm sums and apply,
 * the bf16 norm, the tanh output stage) and the arbitrary-style networks'
 * convolutions (the transformer's tconv and tconvp, the int8 predictor's
 * qdot and qdw), written once in plain C and included by kern_ref.c and by
 * each instruction-set file, where the compiler vectorizes them with that
 * file's flags.  The includer defines KT(name) to give the functions its
 * own prefix, and may set KT_VBYTES (its vector width, 16 by default) and
 * KT_NREG (its vector registers, 16 by default).
 *
 * Channel counts are compile-time constants inside (one inlined copy per
 * cb in {3, 8, 16, 32, 64, 128}), so the channel loops vectorize. */
#include <math.h>
#include <string.h>

#define KT_BLK 64   /* pixels summed in float before the double sum */

static inline __attribute__((always_inline)) void
KT(sums_c)(const float *x, const int cb, size_t p0, size_t p1, const float *shift, double *sum, double *sq)
{
    for (size_t b0 = p0; b0 < p1; b0 += KT_BLK) {
        size_t end = b0 + KT_BLK < p1 ? b0 + KT_BLK : p1;
        float fs[cb], fq[cb];
        for (int c = 0; c < cb; c++)
            fs[c] = fq[c] = 0;
        for (size_t p = b0; p < end; p++) {
            const float *px = x + p * cb;
#pragma omp simd
            for (int c = 0; c < cb; c++) {
                float d = px[c] - shift[c];
                fs[c] += d;
                fq[c] += d * d;
            }
        }
        for (int c = 0; c < cb; c++) {
            sum[c] += fs[c];
            sq[c] += fq[c];
        }
    }
}

static void KT(norm_sums)(const float *x, int cb, size_t p0, size_t p1, const float *shift, double *sum,
                          double *sq)
{
    switch (cb) {
    case 3: KT(sums_c)(x, 3, p0, p1, shift, sum, sq); break;
    case 8: KT(sums_c)(x, 8, p0, p1, shift, sum, sq); break;
    case 16: KT(sums_c)(x, 16, p0, p1, shift, sum, sq); break;
    case 32: KT(sums_c)(x, 32, p0, p1, shift, sum, sq); break;
    case 64: KT(sums_c)(x, 64, p0, p1, shift, sum, sq); break;
    default: KT(sums_c)(x, 128, p0, p1, shift, sum, sq); break;
    }
}

static inline __attribute__((always_inline)) void
KT(apply_c)(float *x, const int cb, size_t p0, size_t p1, const float *a, const float *b, int relu, float *res)
{
    for (size_t p = p0; p < p1; p++) {
        float *px = x + p * cb;
        if (res) {
            float *r = res + p * cb;
#pragma omp simd
            for (int c = 0; c < cb; c++)
                r[c] += px[c] * a[c] + b[c];
        } else if (relu) {
#pragma omp simd
            for (int c = 0; c < cb; c++) {
                float y = px[c] * a[c] + b[c];
                px[c] = y > 0 ? y : 0;
            }
        } else {
#pragma omp simd
            for (int c = 0; c < cb; c++)
                px[c] = px[c] * a[c] + b[c];
        }
    }
}

static void KT(norm_apply)(float *x, int cb, size_t p0, size_t p1, const float *a, const float *b, int relu,
                           float *res)
{
    switch (cb) {
    case 3: KT(apply_c)(x, 3, p0, p1, a, b, relu, res); break;
    case 8: KT(apply_c)(x, 8, p0, p1, a, b, relu, res); break;
    case 16: KT(apply_c)(x, 16, p0, p1, a, b, relu, res); break;
    case 32: KT(apply_c)(x, 32, p0, p1, a, b, relu, res); break;
    case 64: KT(apply_c)(x, 64, p0, p1, a, b, relu, res); break;
    default: KT(apply_c)(x, 128, p0, p1, a, b, relu, res); break;
    }
}

static void KT(norm_bf16)(const float *x, size_t p0, size_t p1, const float *a, const float *b, uint16_t *out)
{
    for (size_t p = p0; p < p1; p++) {
#pragma omp simd
        for (int c = 0; c < 64; c++) {
            float y = x[p * 64 + c] * a[c] + b[c];
            out[p * 64 + c] = sf_bf16_bits(y > 0 ? y : 0);
        }
    }
}

/* GCC's vector extension at the includer's register width (KT_VBYTES,
 * 16 bytes unless it says otherwise): KT_PV floats. */
#ifndef KT_VBYTES
#define KT_VBYTES 16
#endif
#define KT_PV (KT_VBYTES / 4)
typedef float KT(v16) __attribute__((vector_size(KT_VBYTES)));

/* The tanh output stage, written with vector types (auto-vectorization
 * failed on its clamps from SSE4.1 up, and the loop ran scalar: 8-17 ms
 * at 1 MP on AVX-512, 1-2 ms like this).  tanh x = (e - 1) / (e + 1),
 * e = exp 2x, exp from a degree-6 polynomial on x - k ln 2 (k rounded to
 * nearest, ties away from zero).  Absolute error under 2e-7; over 2.4
 * million points in [-12, 12] no 8-bit output differs from tanhf's. */
typedef int32_t KT(oi) __attribute__((vector_size(KT_VBYTES)));

static inline KT(v16) KT(osel)(KT(oi) m, KT(v16) a, KT(v16) b)        /* m ? a : b, lane by lane */
{
    return (KT(v16))(((KT(oi))a & m) | ((KT(oi))b & ~m));
}

static inline KT(v16) KT(tanh_vec)(KT(v16) x)
{
    const KT(v16) lo = (KT(v16)){ 0 } - 9.f, hi = -lo;
    const KT(oi) sign = (KT(oi)){ 0 } + (int32_t)0x80000000u;
    KT(v16) e, t, p, r, kf, half;
    KT(oi) k;

    x = KT(osel)(x < lo, lo, x);
    x = KT(osel)(x > hi, hi, x);
    x = 2.f * x;                                        /* exp 2x, |2x| <= 18 */
    t = x * 1.44269504f;
    half = (KT(v16))(((KT(oi))t & sign) | (KT(oi))((KT(v16)){ 0 } + 0.5f));    /* copysign(0.5, t) */
    k = __builtin_convertvector(t + half, KT(oi));
    kf = __builtin_convertvector(k, KT(v16));
    r = x - kf * 0.693145752f - kf * 1.42860677e-6f;
    p = 1.f + r * (1.f + r * (0.5f + r * (1.f / 6 + r * (1.f / 24 + r * (1.f / 120 + r * (1.f / 720))))));
    e = p * (KT(v16))((k + 127) * (1 << 23));
    return (e - 1.f) / (e + 1.f);
}

/* Rows y0..y1 of the 8-bit output from O (rows of w4 x 3 floats); a
 * row's last, partial vector goes through a zero-padded copy. */
static void KT(output)(const float *O, int w4, int w, const float *a, const float *b, uint8_t *out, int y0,
                       int y1)
{
    float a3[48], b3[48];       /* the 3 channels' coefficients, 16 times over (48 = 3 x 16 lanes at most) */

    for (int j = 0; j < 48; j++) {
        a3[j] = a[j % 3];
        b3[j] = b[j % 3];
    }
    for (int y = y0; y < y1; y++) {
        const float *src = O + (size_t)y * w4 * 3;
        uint8_t *dst = out + (size_t)y * w * 3;
        for (int x0 = 0; x0 < w * 3; x0 += 48)
            for (int j0 = 0; j0 < 48 && x0 + j0 < w * 3; j0 += KT_PV) {
                KT(v16) x, ga, gb, v;
                KT(oi) q;
                uint8_t bytes[KT_PV];
                int n = w * 3 - (x0 + j0) < KT_PV ? w * 3 - (x0 + j0) : KT_PV;
                if (n == KT_PV)
                    memcpy(&x, src + x0 + j0, sizeof x);
                else {
                    float part[KT_PV] = { 0 };
                    memcpy(part, src + x0 + j0, (size_t)n * sizeof(float));
                    memcpy(&x, part, sizeof x);
                }
                memcpy(&ga, a3 + j0, sizeof ga);
                memcpy(&gb, b3 + j0, sizeof gb);
                v = KT(tanh_vec)(x * ga + gb) * 150.0f + 127.5f;
                v = KT(osel)(v < 0.f, (KT(v16)){ 0 }, v);
                v = KT(osel)(v > 255.f, (KT(v16)){ 0 } + 255.f, v);
                q = __builtin_convertvector(v + 0.5f, KT(oi));
                for (int i = 0; i < KT_PV; i++)
                    bytes[i] = (uint8_t)q[i];
                memcpy(dst + x0 + j0, bytes, (size_t)n);
            }
    }
}

/* The transformer's NHWC convolution (cpu.h sf_tconv_fn), one inlined copy
 * per padded channel count, so that the channel loops vectorize: tiles of
 * TW output pixels along a row, each tap's weight registers loaded once for
 * the TW pixels.  The input is read through the row and column maps (zero
 * padding, a mirror pad, a nearest resize: whatever the plan folded into
 * them).
 *
 * One tile and tap: TW pixels x NB registers of output channels (NB 1 or
 * 2) accumulate c input channels in registers (KT_TC_BLK, a macro so that
 * its arrays have constant sizes); the tile's accumulators live in memory
 * between taps, which costs 2 TW NB loads and stores per c TW NB FMAs. */
#define KT_TC_BLK(TW, NB)                                                                             \
    static inline __attribute__((always_inline)) void KT(tconv_blk_##TW##_##NB)(                      \
        const float *const *xp, int c, const float *wk, int ocp, float *acc)                          \
    {                                                                                                 \
        KT(v16) va[TW][NB];                                                                           \
        _Pragma("GCC unroll 16") for (int p = 0; p < TW; p++)                                         \
            _Pragma("GCC unroll 2") for (int vi = 0; vi < NB; vi++)                                   \
                memcpy(&va[p][vi], acc + (size_t)p * ocp + vi * KT_PV, sizeof va[p][vi]);             \
        for (int ci = 0; ci < c; ci++) {                                                              \
            KT(v16) wv[NB];                                                                           \
            _Pragma("GCC unroll 2") for (int vi = 0; vi < NB; vi++)                                   \
                memcpy(&wv[vi], wk + (size_t)ci * ocp + vi * KT_PV, sizeof wv[vi]);                   \
            _Pragma("GCC unroll 16") for (int p = 0; p < TW; p++) {                                   \
                float v = xp[p][ci];                                                                  \
                _Pragma("GCC unroll 2") for (int vi = 0; vi < NB; vi++) va[p][vi] += v * wv[vi];      \
            }                                                                                         \
        }                                                                                             \
        _Pragma("GCC unroll 16") for (int p = 0; p < TW; p++)                                         \
            _Pragma("GCC unroll 2") for (int vi = 0; vi < NB; vi++)                                   \
                memcpy(acc + (size_t)p * ocp + vi * KT_PV, &va[p][vi], sizeof va[p][vi]);             \
    }
/* The tile widths: KT_TW1 pixels when one register holds the output
 * channels, KT_TW2 when two or more do (two at a time): accumulators for
 * most of the register file, less the weights and the broadcast pixel.
 * Chosen by measurement on an AMD EPYC Zen 5, 1 thread, the transformer's
 * 3x3 layers (32->32 at 256x256, 32->16 at 512x512, the two stride-2):
 *   AVX2 12/6: 88-97, 94-97, 61, 85-88 GFLOP/s (12/5, 8/4, 14/6 the same
 *   within the noise); the previous 4-pixel tiles: 70, 73, 35, 53
 *   AVX-512 12/8: 143-173, 108-131, 55-80, 73-129; 16/12: 121-127, 104,
 *   54, 88-92; 24/12 and 16/14 lower; the previous 4-pixel tiles: 152,
 *   96, 60, 90 */
#ifndef KT_TW1
#if KT_NREG == 32
#define KT_TW1 12
#define KT_TW2 8
#else
#define KT_TW1 12
#define KT_TW2 6
#endif
#endif
#define KT_TC_BLK_X(TW, NB) KT_TC_BLK(TW, NB)
#define KT_TC_CALL(TW, NB) KT(tconv_blk_##TW##_##NB)
#define KT_TC_CALL_X(TW, NB) KT_TC_CALL(TW, NB)
KT_TC_BLK_X(KT_TW1, 1)
#if KT_TW2 != KT_TW1
KT_TC_BLK_X(KT_TW2, 1)
#endif
KT_TC_BLK_X(KT_TW2, 2)

static inline __attribute__((always_inline)) void
KT(tconv_c)(const int OCP, const float *x, int ws, int c, const int *rmap, const int *cmap, const float *wt,
            const float *b, int oc, int kh, int kw, int s, float *y, int ow, int act, int oy0, int oy1)
{
    const int NV = OCP / KT_PV, TW = NV >= 2 ? KT_TW2 : KT_TW1;
    float acc[KT_TW1 > KT_TW2 ? KT_TW1 : KT_TW2][OCP];
    const float *xp[KT_TW1 > KT_TW2 ? KT_TW1 : KT_TW2];

    for (int oy = oy0; oy < oy1; oy++) {
        for (int ox0 = 0; ox0 < ow; ox0 += TW) {
            int np = ow - ox0 < TW ? ow - ox0 : TW;
            for (int p = 0; p < np; p++)
#pragma omp simd
                for (int o = 0; o < OCP; o++)
                    acc[p][o] = b[o];
            for (int ky = 0; ky < kh; ky++) {
                int sy = rmap[oy * s + ky];
                if (sy < 0)
                    continue;
                const float *xr = x + (size_t)sy * ws * c;
                for (int kx = 0; kx < kw; kx++) {
                    const float *wk = wt + ((size_t)ky * kw + kx) * c * OCP;
                    const int *cm = cmap + ox0 * s + kx;
                    int all = np == TW;
                    for (int p = 0; all && p < TW; p++) {
                        all = cm[p * s] >= 0;
                        xp[p] = xr + (size_t)cm[p * s] * c;
                    }
                    if (all && OCP % KT_PV == 0) {
                        /* whole registers of channels, two at a time */
                        for (int vb = 0; vb < NV; vb += 2) {
                            if (NV - vb >= 2 && TW == KT_TW2)
                                KT_TC_CALL_X(KT_TW2, 2)(xp, c, wk + vb * KT_PV, OCP, &acc[0][vb * KT_PV]);
                            else if (TW == KT_TW1)
                                KT_TC_CALL_X(KT_TW1, 1)(xp, c, wk + vb * KT_PV, OCP, &acc[0][vb * KT_PV]);
                            else
                                KT_TC_CALL_X(KT_TW2, 1)(xp, c, wk + vb * KT_PV, OCP, &acc[0][vb * KT_PV]);
                        }
                    } else {
                        for (int p = 0; p < np; p++) {
                            int sx = cm[p * s];
                            if (sx < 0)
                                continue;
                            const float *xq = xr + (size_t)sx * c;
                            for (int ci = 0; ci < c; ci++) {
                                const float *wr = wk + (size_t)ci * OCP;
                                float v = xq[ci];
#pragma omp simd
                                for (int o = 0; o < OCP; o++)
                                    acc[p][o] += v * wr[o];
                            }
                        }
                    }
                }
            }
            for (int p = 0; p < np; p++) {
                float *yo = y + ((size_t)oy * ow + ox0 + p) * oc;
                for (int o = 0; o < oc; o++) {
                    float v = acc[p][o];
                    yo[o] = act == 1 ? (v > 0 ? v : 0) : act == 3 ? (v < 0 ? 0 : v > 6 ? 6 : v) : v;
                }
            }
        }
    }
}

static void KT(tconv)(const float *x, int ws, int c, const int *rmap, const int *cmap, const float *wt,
                      const float *b, int oc, int kh, int kw, int s, float *y, int ow, int act, int oy0, int oy1)
{
    switch (SF_TCONV_OCP(oc)) {
    case 8: KT(tconv_c)(8, x, ws, c, rmap, cmap, wt, b, oc, kh, kw, s, y, ow, act, oy0, oy1); break;
    case 16: KT(tconv_c)(16, x, ws, c, rmap, cmap, wt, b, oc, kh, kw, s, y, ow, act, oy0, oy1); break;
    case 32: KT(tconv_c)(32, x, ws, c, rmap, cmap, wt, b, oc, kh, kw, s, y, ow, act, oy0, oy1); break;
    default: KT(tconv_c)(64, x, ws, c, rmap, cmap, wt, b, oc, kh, kw, s, y, ow, act, oy0, oy1); break;
    }
}

/* The planar variant (cpu.h sf_tconvp_fn): P registers of KT_PV output
 * pixels of one row per step (GCC's vector extension, KT_VBYTES wide: the
 * includer's register width, 16 bytes unless it says otherwise), the P x OC
 * accumulators kept in registers across all the kh kw c taps, which are one
 * flat loop over a table of plane offsets (so the compiler never spills the
 * accumulators between taps), each weight broadcast once per tap.
 *
 * P is chosen per OC and register file (KT_NREG: 16 below AVX-512, 32 with
 * it and on aarch64): enough independent accumulators to cover the FMA
 * latency (2 pipes x 4 cycles on current x86), few enough to leave a
 * register for the pixels and one for the weight. */
#ifndef KT_NREG
#define KT_NREG 16
#endif

/* One step: P registers of pixels, OC channels.  A macro, so that the
 * arrays have constant sizes (a VLA, even one whose size is constant after
 * inlining, stays in memory). */
#define KT_TP_STEP(OC, P)                                                                             \
    static inline __attribute__((always_inline)) void KT(tconvp_step_##OC##_##P)(                    \
        const float *xp, const int *off, int nt, const float *wt, int ocp, const float *b, float *yo, int act) \
    {                                                                                                 \
        KT(v16) a[P][OC];                                                                             \
        _Pragma("GCC unroll 16") for (int p = 0; p < P; p++)                                          \
            _Pragma("GCC unroll 16") for (int o = 0; o < OC; o++) a[p][o] = (KT(v16)){ 0 } + b[o];    \
        for (int t = 0; t < nt; t++) {                                                                \
            const float *xt = xp + off[t], *wr = wt + (size_t)t * ocp;                                \
            KT(v16) xv[P];                                                                            \
            _Pragma("GCC unroll 16") for (int p = 0; p < P; p++)                                      \
                memcpy(&xv[p], xt + p * KT_PV, sizeof xv[p]);                                         \
            _Pragma("GCC unroll 16") for (int o = 0; o < OC; o++) {                                   \
                float wv = wr[o];                                                                     \
                _Pragma("GCC unroll 16") for (int p = 0; p < P; p++) a[p][o] += xv[p] * wv;           \
            }                                                                                         \
        }                                                                                             \
        _Pragma("GCC unroll 16") for (int p = 0; p < P; p++)                                          \
            _Pragma("GCC unroll 16") for (int o = 0; o < OC; o++) {                                   \
                float t[KT_PV];                                                                       \
                memcpy(t, &a[p][o], sizeof t);                                                        \
                for (int j = 0; j < KT_PV; j++) {                                                     \
                    float v = t[j];                                                                   \
                    yo[(size_t)(p * KT_PV + j) * OC + o] =                                            \
                        act == 1 ? (v > 0 ? v : 0) : act == 3 ? (v < 0 ? 0 : v > 6 ? 6 : v) : v;      \
                }                                                                                     \
            }                                                                                         \
    }
/* The widths of the main steps: KT_P3 registers of pixels for 3 output
 * channels, KT_P8 for 8 (16 channels: 1).  Chosen by measurement on an AMD
 * EPYC Zen 5, 1 thread, the transformer's three full-size layers (1 thread
 * FMA peak: 120 GFLOP/s at AVX2, 200 at AVX-512):
 *   AVX2, 3 channels: P = 3 105 GFLOP/s; 2: 82; 4 and 5 spill: 53-59
 *   AVX2, 8 channels: P = 1 80-96 GFLOP/s (2 would need 16 accumulators)
 *   AVX-512: P3 = 6, P8 = 3: 170-206 GFLOP/s; 4/2 and 8/2 a little lower
 *   SSE2 (generic), 3 channels: P = 3 44 GFLOP/s; 2: 38; 4: 22
 * The previous kernel (the taps in three nested loops, 1 or 2 registers)
 * ran 52-57 GFLOP/s at AVX2 and 66-108 at AVX-512. */
#ifndef KT_P3
#if KT_NREG == 32
#define KT_P3 6
#define KT_P8 3
#else
#define KT_P3 3
#define KT_P8 1
#endif
#endif
#define KT_TP_STEP_X(OC, P) KT_TP_STEP(OC, P)
KT_TP_STEP(3, 1)
KT_TP_STEP(8, 1)
KT_TP_STEP(16, 1)
KT_TP_STEP_X(3, KT_P3)
#if KT_P8 != 1
KT_TP_STEP_X(8, KT_P8)
#endif
#define KT_TP_CALL_X(OC, P) KT_TP_CALL(OC, P)
#define KT_TP_CALL(OC, P) KT(tconvp_step_##OC##_##P)

static inline __attribute__((always_inline)) void
KT(tconvp_c)(const int OC, const float *pl, int h, int w, int c, const float *wt, const float *b, int ocp, int kh,
             int kw, float *y, int ow, int act, int oy0, int oy1)
{
    const int P = OC == 3 ? KT_P3 : OC == 8 ? KT_P8 : 1;
    int off[SF_TCONVP_TAPS], nt = kh * kw * c;

    if (nt > SF_TCONVP_TAPS)            /* cpu.h: the caller plans only those */
        return;
    for (int ky = 0, t = 0; ky < kh; ky++)      /* the weights' order: ky, kx, ci */
        for (int kx = 0; kx < kw; kx++)
            for (int ci = 0; ci < c; ci++)
                off[t++] = (ci * h + ky) * w + kx;
    for (int oy = oy0; oy < oy1; oy++) {
        const float *row = pl + (size_t)oy * w;
        float *yr = y + (size_t)oy * ow * OC;
        int ox0 = 0;
        for (; ox0 + P * KT_PV <= ow; ox0 += P * KT_PV) {
            const float *xp = row + ox0;
            float *yo = yr + (size_t)ox0 * OC;
            if (OC == 3) KT_TP_CALL_X(3, KT_P3)(xp, off, nt, wt, ocp, b, yo, act);
            else if (OC == 8) KT_TP_CALL_X(8, KT_P8)(xp, off, nt, wt, ocp, b, yo, act);
            else KT_TP_CALL(16, 1)(xp, off, nt, wt, ocp, b, yo, act);
        }
        for (; ox0 + KT_PV <= ow; ox0 += KT_PV) {   /* a register at a time */
            const float *xp = row + ox0;
            float *yo = yr + (size_t)ox0 * OC;
            if (OC == 3) KT_TP_CALL(3, 1)(xp, off, nt, wt, ocp, b, yo, act);
            else if (OC == 8) KT_TP_CALL(8, 1)(xp, off, nt, wt, ocp, b, yo, act);
            else KT_TP_CALL(16, 1)(xp, off, nt, wt, ocp, b, yo, act);
        }
        if (ox0 < ow) {                 /* the row's last few pixels */
            int np = ow - ox0;
            KT(v16) acc[OC];
            float t[KT_PV];
            for (int o = 0; o < OC; o++)
                acc[o] = (KT(v16)){ 0 } + b[o];
            for (int k = 0; k < nt; k++) {
                const float *xp = row + ox0 + off[k];
                KT(v16) xv;
                for (int j = 0; j < KT_PV; j++)
                    t[j] = j < np ? xp[j] : 0;
                memcpy(&xv, t, sizeof xv);
                for (int o = 0; o < OC; o++)
                    acc[o] += xv * wt[(size_t)k * ocp + o];
            }
            for (int o = 0; o < OC; o++) {
                memcpy(t, &acc[o], sizeof t);
                for (int j = 0; j < np; j++) {
                    float v = t[j];
                    yr[(size_t)(ox0 + j) * OC + o] =
                        act == 1 ? (v > 0 ? v : 0) : act == 3 ? (v < 0 ? 0 : v > 6 ? 6 : v) : v;
                }
            }
        }
    }
}

static void KT(tconvp)(const float *planes, int h, int w, int c, const float *wt, const float *b, int oc, int ocp,
                       int kh, int kw, float *y, int ow, int act, int oy0, int oy1)
{
    switch (oc) {
    case 3: KT(tconvp_c)(3, planes, h, w, c, wt, b, ocp, kh, kw, y, ow, act, oy0, oy1); break;
    case 8: KT(tconvp_c)(8, planes, h, w, c, wt, b, ocp, kh, kw, y, ow, act, oy0, oy1); break;
    default: KT(tconvp_c)(16, planes, h, w, c, wt, b, ocp, kh, kw, y, ow, act, oy0, oy1); break;
    }
}

/* The int8 predictor's convolution sums (cpu.h sf_qdot_fn): 2 pixels by
 * 4 output channels at a time, each an int32 dot product along the taps,
 * which the compiler turns into multiply-adds of int16 pairs (pmaddwd and
 * its wider forms). */
static void KT(qdot)(const int16_t *xs, int np, int kp, const int16_t *w, int oc, int32_t *dot)
{
    int p = 0;
    for (; p + 2 <= np; p += 2) {
        const int16_t *x0 = xs + (size_t)p * kp, *x1 = x0 + kp;
        int o = 0;
        for (; o + 4 <= oc; o += 4) {
            const int16_t *w0 = w + (size_t)o * kp, *w1 = w0 + kp, *w2 = w1 + kp, *w3 = w2 + kp;
            int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3, b0, b1, b2, b3)
            for (int t = 0; t < kp; t++) {
                a0 += x0[t] * w0[t];
                a1 += x0[t] * w1[t];
                a2 += x0[t] * w2[t];
                a3 += x0[t] * w3[t];
                b0 += x1[t] * w0[t];
                b1 += x1[t] * w1[t];
                b2 += x1[t] * w2[t];
                b3 += x1[t] * w3[t];
            }
            int32_t *d0 = dot + (size_t)p * oc + o, *d1 = d0 + oc;
            d0[0] = a0, d0[1] = a1, d0[2] = a2, d0[3] = a3;
            d1[0] = b0, d1[1] = b1, d1[2] = b2, d1[3] = b3;
        }
        for (; o < oc; o++) {
            const int16_t *wo = w + (size_t)o * kp;
            int32_t a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
            for (int t = 0; t < kp; t++) {
                a += x0[t] * wo[t];
                b += x1[t] * wo[t];
            }
            dot[(size_t)p * oc + o] = a;
            dot[(size_t)(p + 1) * oc + o] = b;
        }
    }
    for (; p < np; p++)
        for (int o = 0; o < oc; o++) {
            const int16_t *xp = xs + (size_t)p * kp, *wo = w + (size_t)o * kp;
            int32_t a = 0;
#pragma omp simd reduction(+ : a)
            for (int t = 0; t < kp; t++)
                a += xp[t] * wo[t];
            dot[(size_t)p * oc + o] = a;
        }
}

/* The int8 predictor's depthwise sums (cpu.h sf_qdw_fn): int32 lanes
 * along the channels. */
static void KT(qdw)(const int8_t *x, int h, int w, int c, int zin, const int8_t *wt, int kh, int kw, int s, int pt,
                    int pl, int oy, int ow, int32_t *dot)
{
    for (int ox = 0; ox < ow; ox++) {
        int32_t *d = dot + (size_t)ox * c;
        memset(d, 0, (size_t)c * sizeof *d);
        for (int ky = 0; ky < kh; ky++) {
            int iy = oy * s + ky - pt;
            if (iy < 0 || iy >= h)
                continue;
            for (int kx = 0; kx < kw; kx++) {
                int ix = ox * s + kx - pl;
                if (ix < 0 || ix >= w)
                    continue;
                const int8_t *xi = x + ((size_t)iy * w + ix) * c, *wk = wt + ((size_t)ky * kw + kx) * c;
#pragma omp simd
                for (int ci = 0; ci < c; ci++)
                    d[ci] += (int32_t)(xi[ci] - zin) * wk[ci];
            }
        }
    }
}

/* Put this file's element-wise kernels into k. */
static inline void KT(fill_elementwise)(struct sf_cpu_kernels *k, const char *name)
{
    k->norm_name = name;
    k->norm_sums = KT(norm_sums);
    k->norm_apply = KT(norm_apply);
    k->norm_bf16 = KT(norm_bf16);
    k->output_name = name;
    k->output = KT(output);
    k->tconv_name = name;
    k->tconv = KT(tconv);
    k->tconvp = KT(tconvp);
    k->qdot = KT(qdot);
    k->qdw = KT(qdw);
}
