/* kern_avx512_bf16.c: layer 15 in bf16 on CPUs with AVX512_BF16 (AMD Zen
 * 4, Intel Cooper Lake and Sapphire Rapids), built with -mavx512f
 * -mavx512bw -mavx512dq -mavx512vl -mavx512bf16.  Used in bf16 plans
 * (cpu/cpu_engine.c: layers 13-15 in bf16 from 128x128 pixels up).
 *
 * The same two-row, 64-pixel walk as kern_avx512.c's float32 outconv,
 * but the band holds channel pairs, [ci/2][rows][pw] x (2ci, 2ci+1) as
 * bf16, and each vdpbf16ps does the two channels' 16 x 2 multiply-adds at
 * once, so the 24-accumulator walk covers 16 channel pairs instead of 32
 * channels.  Sums stay float32.  Weights: uint32 [16][9][9][3] pairs. */
#include "cpu.h"

#include <immintrin.h>
#include <string.h>

#include "avx512_util.h"

static void bf16_oc_weights(const float *w, void *wtv)
{
    uint32_t *wt = wtv;
    float f[32 * 81 * 3];

    sf_oc_fweights(w, f);                   /* [ci][ky][kx][co] */
    for (int i = 0; i < 16 * 81 * 3; i++) { /* [cp][ky][kx][co]: (2cp, 2cp+1) */
        int cp = i / 243, rest = i % 243;
        wt[i] = sf_bf16_bits(f[(2 * cp) * 243 + rest]) | (uint32_t)sf_bf16_bits(f[(2 * cp + 1) * 243 + rest]) << 16;
    }
}

static size_t bf16_oc_band(int w4) { return sf_oc512_band(w4); }

static void bf16_oc_rows(const float *in, int h4, int w4, int cb, const float *na, const float *nb,
                         const void *wtv, float *out, float *bandf, int y0, int y1)
{
    const uint32_t *wt = wtv;
    size_t pw = sf_oc512_pw(w4), rows = (size_t)(y1 - y0) + 9, cstride = rows * pw, hw = (size_t)h4 * w4;
    uint32_t *band = (uint32_t *)bandf;         /* one bf16 pair per 32 bits */
    __m512 ga0 = _mm512_loadu_ps(na), ga1 = _mm512_loadu_ps(na + 16);
    __m512 gb0 = _mm512_loadu_ps(nb), gb1 = _mm512_loadu_ps(nb + 16), zero = _mm512_setzero_ps();

    for (size_t r = 0; r < rows; r++) {
        int y = y0 - 4 + (int)r, x;
        uint32_t *d0 = band + r * pw;
        if (!sf_oc_band_row(band, r, rows, pw, 16, OUT_LPAD, w4, y, h4))
            continue;
        size_t p0 = (size_t)y * w4;
        for (x = 0; x + 16 <= w4; x += 16) {
            v16 t[16];
#pragma GCC unroll 16
            for (int j = 0; j < 16; j++) {      /* t[j]: pixel x + j, its 16 pairs */
                __m512 lo = _mm512_max_ps(_mm512_fmadd_ps(load16(in, cb, hw, p0 + x + j, 0), ga0, gb0), zero);
                __m512 hi = _mm512_max_ps(_mm512_fmadd_ps(load16(in, cb, hw, p0 + x + j, 16), ga1, gb1), zero);
                t[j] = (v16)_mm512_cvtne2ps_pbh(hi, lo);
            }
            transpose16(t);                     /* t[cp]: pair cp of 16 pixels */
#pragma GCC unroll 16
            for (int cp = 0; cp < 16; cp++)
                *(v16u *)(d0 + (size_t)cp * cstride + OUT_LPAD + x) = t[cp];
        }
        for (; x < w4; x++)
            for (int cp = 0; cp < 16; cp++) {
                float v0 = in[sf_at(cb, hw, p0 + x, 2 * cp)] * na[2 * cp] + nb[2 * cp];
                float v1 = in[sf_at(cb, hw, p0 + x, 2 * cp + 1)] * na[2 * cp + 1] + nb[2 * cp + 1];
                d0[cp * cstride + OUT_LPAD + x] =
                    sf_bf16_bits(v0 > 0 ? v0 : 0) | (uint32_t)sf_bf16_bits(v1 > 0 ? v1 : 0) << 16;
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
            oc_store(acc, out, h4, w4, y, x0);
        }
    }
}

void sf_kern_avx512_bf16(struct sf_cpu_kernels *k)
{
    k->oc16_name = "outconv avx512_bf16 (bf16 inputs, float32 sums)";
    k->oc16_band = bf16_oc_band;
    k->oc16_wbytes = 16 * 81 * 3 * sizeof(uint32_t);
    k->oc16_weights = bf16_oc_weights;
    k->oc16_rows = bf16_oc_rows;
}
