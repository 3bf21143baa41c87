/* kern_tmpl.h: the element-wise kernels (instance norm sums and apply,
 * the bf16 norm, the tanh output stage) and the arbitrary-style
 * transformer's small NHWC convolution, written once in plain C and
 * included by kern_ref.c and by each instruction-set file, where the
 * compiler vectorizes them with that file's flags.  The includer defines
 * KT(name) to give the functions its own prefix.
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

/* tanh in plain arithmetic so that it vectorizes: tanh x = (e - 1) / (e + 1),
 * e = exp 2x, exp from a degree-6 polynomial on x - k ln 2.  Absolute error
 * under 2e-7; over 2.4 million points in [-12, 12] no 8-bit output differs
 * from tanhf's. */
static inline float KT(exp_poly)(float x)       /* |x| <= 20 */
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

static inline float KT(tanh_poly)(float x)
{
    float e;
    x = x < -9.f ? -9.f : x > 9.f ? 9.f : x;
    e = KT(exp_poly)(2.f * x);
    return (e - 1.f) / (e + 1.f);
}

static void KT(output)(const float *O, int w4, int w, const float *a, const float *b, uint8_t *out, int y0,
                       int y1)
{
    float a3[48], b3[48];       /* the 3 channels' coefficients, 16 times over */

    for (int j = 0; j < 48; j++) {
        a3[j] = a[j % 3];
        b3[j] = b[j % 3];
    }
    for (int y = y0; y < y1; y++) {
        const float *src = O + (size_t)y * w4 * 3;
        uint8_t *dst = out + (size_t)y * w * 3;
        for (int x0 = 0; x0 < w * 3; x0 += 48) {
            int n = w * 3 - x0 < 48 ? w * 3 - x0 : 48;
#pragma omp simd
            for (int j = 0; j < n; j++) {
                float v = KT(tanh_poly)(src[x0 + j] * a3[j] + b3[j]) * 150.0f + 127.5f;
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                dst[x0 + j] = (uint8_t)(v + 0.5f);
            }
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

/* The transformer's NHWC convolution (cpu.h sf_tconv_fn), one inlined copy
 * per padded channel count, so that the channel loops vectorize: tiles of
 * 4 output pixels along a row, each tap's weight row loaded once for the 4. */
static inline __attribute__((always_inline)) void
KT(tconv_c)(const int OCP, const float *x, int h, int w, int c, const float *wt, const float *b, int oc, int kh,
            int kw, int s, int pt, int pl, float *y, int ow, int act, int oy0, int oy1)
{
    for (int oy = oy0; oy < oy1; oy++) {
        for (int ox0 = 0; ox0 < ow; ox0 += 4) {
            int np = ow - ox0 < 4 ? ow - ox0 : 4;
            float acc[4][OCP];
            for (int p = 0; p < 4; p++)
#pragma omp simd
                for (int o = 0; o < OCP; o++)
                    acc[p][o] = b[o];
            for (int ky = 0; ky < kh; ky++) {
                int iy = oy * s + ky - pt;
                if (iy < 0 || iy >= h)
                    continue;
                const float *xr = x + (size_t)iy * w * c;
                for (int kx = 0; kx < kw; kx++) {
                    const float *wk = wt + ((size_t)ky * kw + kx) * c * OCP;
                    int ix0 = ox0 * s + kx - pl, ixl = (ox0 + np - 1) * s + kx - pl;
                    if (np == 4 && ix0 >= 0 && ixl < w && OCP % KT_PV == 0) {
                        /* whole registers of channels: the accumulators stay in them */
                        const int NV = OCP >= KT_PV ? OCP / KT_PV : 1;
                        const float *x0 = xr + (size_t)ix0 * c, *x1 = x0 + (size_t)s * c, *x2 = x1 + (size_t)s * c,
                                    *x3 = x2 + (size_t)s * c;
                        /* two registers of channels at a time: 8 accumulators */
                        for (int vb = 0; vb < NV; vb += 2) {
                            const int nb = NV - vb < 2 ? NV - vb : 2;
                            KT(v16) va[4][2];
                            for (int p = 0; p < 4; p++)
                                memcpy(va[p], &acc[p][vb * KT_PV], (size_t)nb * sizeof va[p][0]);
                            for (int ci = 0; ci < c; ci++) {
                                const float *wr = wk + (size_t)ci * OCP + vb * KT_PV;
                                float v0 = x0[ci], v1 = x1[ci], v2 = x2[ci], v3 = x3[ci];
#pragma GCC unroll 2
                                for (int vi = 0; vi < nb; vi++) {
                                    KT(v16) wv;
                                    memcpy(&wv, wr + vi * KT_PV, sizeof wv);
                                    va[0][vi] += v0 * wv;
                                    va[1][vi] += v1 * wv;
                                    va[2][vi] += v2 * wv;
                                    va[3][vi] += v3 * wv;
                                }
                            }
                            for (int p = 0; p < 4; p++)
                                memcpy(&acc[p][vb * KT_PV], va[p], (size_t)nb * sizeof va[p][0]);
                        }
                    } else if (np == 4 && ix0 >= 0 && ixl < w) {
                        const float *x0 = xr + (size_t)ix0 * c, *x1 = x0 + (size_t)s * c, *x2 = x1 + (size_t)s * c,
                                    *x3 = x2 + (size_t)s * c;
                        for (int ci = 0; ci < c; ci++) {
                            const float *wr = wk + (size_t)ci * OCP;
                            float v0 = x0[ci], v1 = x1[ci], v2 = x2[ci], v3 = x3[ci];
#pragma omp simd
                            for (int o = 0; o < OCP; o++) {
                                acc[0][o] += v0 * wr[o];
                                acc[1][o] += v1 * wr[o];
                                acc[2][o] += v2 * wr[o];
                                acc[3][o] += v3 * wr[o];
                            }
                        }
                    } else {
                        for (int p = 0; p < np; p++) {
                            int ix = (ox0 + p) * s + kx - pl;
                            if (ix < 0 || ix >= w)
                                continue;
                            const float *xp = xr + (size_t)ix * c;
                            for (int ci = 0; ci < c; ci++) {
                                const float *wr = wk + (size_t)ci * OCP;
                                float v = xp[ci];
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

static void KT(tconv)(const float *x, int h, int w, int c, const float *wt, const float *b, int oc, int kh, int kw,
                      int s, int pt, int pl, float *y, int oh, int ow, int act, int oy0, int oy1)
{
    (void)oh;
    switch (SF_TCONV_OCP(oc)) {
    case 8: KT(tconv_c)(8, x, h, w, c, wt, b, oc, kh, kw, s, pt, pl, y, ow, act, oy0, oy1); break;
    case 16: KT(tconv_c)(16, x, h, w, c, wt, b, oc, kh, kw, s, pt, pl, y, ow, act, oy0, oy1); break;
    case 32: KT(tconv_c)(32, x, h, w, c, wt, b, oc, kh, kw, s, pt, pl, y, ow, act, oy0, oy1); break;
    default: KT(tconv_c)(64, x, h, w, c, wt, b, oc, kh, kw, s, pt, pl, y, ow, act, oy0, oy1); break;
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
}
