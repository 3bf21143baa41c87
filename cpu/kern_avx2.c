/* kern_avx2.c: kernels for x86-64 with AVX2 and FMA (Intel Haswell and
 * later, AMD Zen 1-3, and every AVX-512 CPU), built with -mavx2 -mfma.
 *
 * Layer 0 (9x9, 3->32) and layer 15 (9x9, 32->3) are where oneDNN 2.6 has
 * no JIT kernel on AVX2 (gemm at 5-80 GFLOP/s, or ref:any in blocked
 * layouts).  Both are direct convolutions here, register-blocked so that
 * each loaded value feeds several FMAs:
 * - conv0: 6 output pixels x 16 channels (12 accumulators) per step; per
 *   tap, 2 weight loads and 6 pixel broadcasts feed 12 FMAs.  Where
 *   reduced precision is allowed, in int16 sums instead (vpmaddwd on pixel
 *   pairs, as kern_avx512_vnni.c does with vpdpwssd).
 * - outconv: 24 output pixels x 3 channels (9 accumulators) per step,
 *   vectorized over width from a planar band [ci][row][x] that the kernel
 *   fills itself (layer 14's norm and ReLU applied on the way, 8x8
 *   register transposes); per tap, 3 loads and 3 broadcasts feed 9 FMAs,
 *   all in registers (77 -> 112 GFLOP/s on a Zen 3 against 32 pixels with
 *   12 sums, where GCC reloaded every input vector per channel).
 * - the residual layers' Winograd F(6x6,3x3): wino_tmpl.h at 8 lanes.
 * The element-wise kernels are kern_tmpl.h, vectorized by the compiler. */
#include "cpu.h"

#include <immintrin.h>

#define KT(name) avx2_##name
#define KT_VBYTES 32
#include "kern_tmpl.h"

/* ---- layer 0 ------------------------------------------------------------ */
#define C0_P 6      /* output pixels per step */

static void avx2_conv0_rows(const void *buf, int h, int w, const void *wq, float *out, int cb, int y0, int y1)
{
    const float *in = buf, *wt = wq;
    size_t pw = sf_conv0_fbuf_pw(w), hw = (size_t)h * w;

    for (int y = y0; y < y1; y++)
        for (int x0 = 0; x0 < w; x0 += C0_P)
            for (int half = 0; half < 2; half++) {
                __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00,
                       a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
                for (int ky = 0; ky < 9; ky++) {
                    const float *row = in + ((size_t)(y + ky) * pw + x0) * 3;
                    const float *wk = wt + ky * 9 * 3 * 32 + half * 16;
                    for (int t = 0; t < 27; t++, wk += 32) {    /* t = kx * 3 + ci */
                        __m256 w0 = _mm256_loadu_ps(wk), w1 = _mm256_loadu_ps(wk + 8), b;
#define C0_PIX(P)                                                  \
    b = _mm256_broadcast_ss(row + t + 3 * (P));                    \
    a##P##0 = _mm256_fmadd_ps(b, w0, a##P##0);                     \
    a##P##1 = _mm256_fmadd_ps(b, w1, a##P##1);
                        C0_PIX(0) C0_PIX(1) C0_PIX(2) C0_PIX(3) C0_PIX(4) C0_PIX(5)
#undef C0_PIX
                    }
                }
                int n = w - x0 < C0_P ? w - x0 : C0_P;
                size_t p = (size_t)y * w + x0;
                int c0 = half * 16;
#define C0_OUT(P)                                                                      \
    if (P < n) {                                                                       \
        _mm256_storeu_ps(out + sf_at(cb, hw, p + P, c0), a##P##0);                     \
        _mm256_storeu_ps(out + sf_at(cb, hw, p + P, c0 + 8), a##P##1);                 \
    }
                C0_OUT(0) C0_OUT(1) C0_OUT(2) C0_OUT(3) C0_OUT(4) C0_OUT(5)
#undef C0_OUT
            }
}

/* ---- layer 0 in int16 sums -----------------------------------------------
 * The AVX2 form of kern_avx512_vnni.c (same input pairs and int16 weights,
 * kern_ref.c): vpmaddwd multiplies a broadcast pixel pair by 8 channels'
 * tap pairs and sums each pair in int32, 16 multiply-adds in one
 * instruction where an FMA does 8; vpaddd accumulates.  The sums are exact,
 * so they equal the VNNI kernel's.  Each step makes 6 output pixels x 16
 * channels (12 accumulators); per tap pair, 2 weight loads and 6
 * broadcasts feed 12 vpmaddwd and 12 vpaddd, which spread over more
 * ports than FMAs do. */
#define C0I_P 6

static void avx2_conv0_i16_rows(const void *buf, int h0, int w0, const void *wqv, float *out, int cb, int y0,
                                int y1)
{
    const int32_t *P = buf, *wq = wqv;
    const float *ws = (const float *)(wq + SF_C0_PAIRS);
    size_t pw = sf_conv0_pairs_pw(w0), rows = (size_t)h0 + 8, hw = (size_t)h0 * w0;

    for (int y = y0; y < y1; y++)
        for (int x0 = 0; x0 < w0; x0 += C0I_P)
            for (int half = 0; half < 2; half++) {
                __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00,
                        a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
                for (int ci = 0; ci < 3; ci++)
                    for (int ky = 0; ky < 9; ky++) {
                        const int32_t *row = P + ((size_t)ci * rows + y + ky) * pw + x0;
                        const int32_t *wk = wq + ((size_t)ci * 9 + ky) * 5 * 32 + half * 16;
                        for (int k = 0; k < 5; k++, row += 2, wk += 32) {
                            __m256i w0v = _mm256_loadu_si256((const __m256i *)wk);
                            __m256i w1v = _mm256_loadu_si256((const __m256i *)(wk + 8)), b, t;
/* Inline asm, the pair broadcast from memory: with intrinsics GCC 12 moved
 * each pair through a general register and spilled accumulators (99-135
 * ms for this layer at 1 MP, against 76-79 for the float32 kernel). */
#define C0I_PIX(P_)                                                                               \
    __asm__("vpbroadcastd %[m], %[b]\n\t"                                                          \
            "vpmaddwd %[w0], %[b], %[t]\n\t"                                                        \
            "vpaddd %[t], %[a0], %[a0]\n\t"                                                         \
            "vpmaddwd %[w1], %[b], %[t]\n\t"                                                        \
            "vpaddd %[t], %[a1], %[a1]"                                                             \
            : [a0] "+x"(a##P_##0), [a1] "+x"(a##P_##1), [b] "=&x"(b), [t] "=&x"(t)                 \
            : [w0] "x"(w0v), [w1] "x"(w1v), [m] "m"(row[P_]));
                            C0I_PIX(0) C0I_PIX(1) C0I_PIX(2) C0I_PIX(3) C0I_PIX(4) C0I_PIX(5)
#undef C0I_PIX
                        }
                    }
                int n = w0 - x0 < C0I_P ? w0 - x0 : C0I_P;
                size_t p = (size_t)y * w0 + x0;
                int c0 = half * 16;
                __m256 s0 = _mm256_loadu_ps(ws + c0), s1 = _mm256_loadu_ps(ws + c0 + 8);
#define C0I_OUT(P_)                                                                                      \
    if (P_ < n) {                                                                                        \
        _mm256_storeu_ps(out + sf_at(cb, hw, p + P_, c0), _mm256_mul_ps(_mm256_cvtepi32_ps(a##P_##0), s0));     \
        _mm256_storeu_ps(out + sf_at(cb, hw, p + P_, c0 + 8), _mm256_mul_ps(_mm256_cvtepi32_ps(a##P_##1), s1)); \
    }
                C0I_OUT(0) C0I_OUT(1) C0I_OUT(2) C0I_OUT(3) C0I_OUT(4) C0I_OUT(5)
#undef C0I_OUT
            }
}

/* Layer 0 in int16 sums, where reduced precision is allowed (cpu.h). */
void sf_kern_avx2_int16(struct sf_cpu_kernels *k)
{
    sf_kern_set_conv0_int16(k, "conv0 avx2 (int16 sums)", avx2_conv0_i16_rows);
}

/* ---- layer 15 ----------------------------------------------------------- */
#define OC_VX 24    /* output pixels per step */
#define OC_LPAD 8   /* band columns left of x = 0 (one 32-byte line) */

/* Band row: OC_LPAD, the width rounded up to OC_VX, and the last step's
 * reach past it (kx up to 8, from x0 - 4). */
static size_t oc_pw(int w4) { return (size_t)((w4 + OC_VX - 1) / OC_VX * OC_VX + OC_LPAD + 8); }
static size_t avx2_oc_band(int w4) { return (size_t)32 * (SF_OC_ROWS + 8) * oc_pw(w4); }

static inline void transpose8(__m256 *r)
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

static void avx2_oc_rows(const float *in, int h4, int w4, int cb, const float *na, const float *nb,
                         const void *wtv, float *out, float *band, int y0, int y1)
{
    const float *wt = wtv;
    size_t pw = oc_pw(w4), rows = (size_t)(y1 - y0) + 8, cstride = rows * pw, hw = (size_t)h4 * w4;
    const __m256 zero = _mm256_setzero_ps();

    /* band[ci][r][OC_LPAD + x] = max(na * in[y0 - 4 + r][x][ci] + nb, 0), zero outside */
    for (size_t r = 0; r < rows; r++) {
        int y = y0 - 4 + (int)r, x;
        float *d0 = band + r * pw;
        if (!sf_oc_band_row(band, r, rows, pw, 32, OC_LPAD, w4, y, h4))
            continue;
        size_t p0 = (size_t)y * w4;
        for (int c0 = 0; c0 < 32; c0 += 8) {
            __m256 ga = _mm256_loadu_ps(na + c0), gb = _mm256_loadu_ps(nb + c0);
            const float *src = in + sf_at(cb, hw, p0, c0);
            for (x = 0; x + 8 <= w4; x += 8) {
                __m256 t[8];
                for (int j = 0; j < 8; j++)
                    t[j] = _mm256_max_ps(_mm256_fmadd_ps(_mm256_loadu_ps(src + (size_t)(x + j) * cb), ga, gb),
                                         zero);
                transpose8(t);
                for (int c = 0; c < 8; c++)
                    _mm256_storeu_ps(d0 + (size_t)(c0 + c) * cstride + OC_LPAD + x, t[c]);
            }
            for (; x < w4; x++)
                for (int c = 0; c < 8; c++) {
                    float v = src[(size_t)x * cb + c] * na[c0 + c] + nb[c0 + c];
                    d0[(size_t)(c0 + c) * cstride + OC_LPAD + x] = v > 0 ? v : 0;
                }
        }
    }
    for (int y = y0; y < y1; y++) {
        size_t r0 = (size_t)(y - y0);
        for (int x0 = 0; x0 < w4; x0 += OC_VX) {
            /* 3 channels x 3 vectors: 9 sums, 3 input vectors and 3
             * weights in registers (with 4 input vectors, 19 would not fit
             * and GCC loads every input vector once per channel) */
            __m256 p00 = _mm256_setzero_ps(), p01 = p00, p02 = p00, p10 = p00, p11 = p00, p12 = p00,
                   p20 = p00, p21 = p00, p22 = p00;
            for (int ci = 0; ci < 32; ci++)
                for (int ky = 0; ky < 9; ky++) {
                    const float *row = band + ((size_t)ci * rows + r0 + ky) * pw + OC_LPAD - 4 + x0;
                    const float *wk = wt + ((ci * 9 + ky) * 9) * 3;
                    for (int kx = 0; kx < 9; kx++, wk += 3) {
                        __m256 a0 = _mm256_loadu_ps(row + kx), a1 = _mm256_loadu_ps(row + kx + 8),
                               a2 = _mm256_loadu_ps(row + kx + 16);
                        __m256 w0 = _mm256_broadcast_ss(wk), w1 = _mm256_broadcast_ss(wk + 1),
                               w2 = _mm256_broadcast_ss(wk + 2);
                        p00 = _mm256_fmadd_ps(a0, w0, p00); p01 = _mm256_fmadd_ps(a1, w0, p01);
                        p02 = _mm256_fmadd_ps(a2, w0, p02);
                        p10 = _mm256_fmadd_ps(a0, w1, p10); p11 = _mm256_fmadd_ps(a1, w1, p11);
                        p12 = _mm256_fmadd_ps(a2, w1, p12);
                        p20 = _mm256_fmadd_ps(a0, w2, p20); p21 = _mm256_fmadd_ps(a1, w2, p21);
                        p22 = _mm256_fmadd_ps(a2, w2, p22);
                    }
                }
            float acc[3][OC_VX];
            _mm256_storeu_ps(acc[0], p00); _mm256_storeu_ps(acc[0] + 8, p01); _mm256_storeu_ps(acc[0] + 16, p02);
            _mm256_storeu_ps(acc[1], p10); _mm256_storeu_ps(acc[1] + 8, p11); _mm256_storeu_ps(acc[1] + 16, p12);
            _mm256_storeu_ps(acc[2], p20); _mm256_storeu_ps(acc[2] + 8, p21); _mm256_storeu_ps(acc[2] + 16, p22);
            int n = w4 - x0 < OC_VX ? w4 - x0 : OC_VX;
            float *o = out + ((size_t)y * w4 + x0) * 3;
            for (int i = 0; i < n; i++)
                for (int co = 0; co < 3; co++)
                    o[i * 3 + co] = acc[co][i];
        }
    }
}

/* ---- the residual convolutions in Winograd F(6x6, 3x3), on nChw8c ------
 * wino_tmpl.h at 8 lanes; the register tile is 6 rows x 2 vectors (12
 * accumulators, 2 loads of U and 6 broadcasts of V feed 12 FMAs per k). */
#define KW_R 6
#define KW_C 2
#include "wino_tmpl.h"

void sf_kern_avx2(struct sf_cpu_kernels *k)
{
    sf_kern_set_conv0_f32(k, "conv0 avx2 (float32)", avx2_conv0_rows);
    sf_kern_set_oc_f32(k, "outconv avx2 (float32)", avx2_oc_band, avx2_oc_rows);
    k->wino_name = "winograd avx2 F(6x6,3x3) (float32)";
    k->wino_cb = 8;
    k->wino_tiles = avx2_wino_tiles;
    avx2_fill_elementwise(k, "avx2");
}
