/* kern_avx512.c: kernels for x86-64 with AVX-512 F, BW, DQ and VL (Intel
 * Skylake-SP and later, AMD Zen 4 and later), built with those flags.
 *
 * - conv0 (layer 0, 9x9 3->32) in float32: 6 output pixels x 32 channels
 *   (12 accumulators) per step; per tap, 2 weight loads and 6 broadcast
 *   pixels feed 12 FMAs.  (With AVX512_VNNI and reduced precision allowed,
 *   kern_avx512_vnni.c's int16 kernel replaces it.)
 * - outconv (layer 15, 9x9 32->3): vectorized over width.  Each call fills
 *   a zero-bordered planar band [32][rows][pw] (layer 14's norm and ReLU
 *   applied on the way, 16x16 register transposes), then makes two output
 *   rows y, y+1 at a time, 64 pixels wide: 2 rows x 3 channels x 4 vectors
 *   of 16 sums stay in registers while it walks the 32 input channels and
 *   the 10 input rows those two output rows read, so an input row's 4
 *   loads (per kx) feed both rows: 24 FMAs per 4 loads and 6 broadcasts.
 * - the residual layers' Winograd F(6x6,3x3): wino_tmpl.h at 16 lanes.
 * The element-wise kernels are kern_tmpl.h, vectorized by the compiler. */
#include "cpu.h"

#include <immintrin.h>

#define KT(name) avx512_##name
#define KT_VBYTES 64
#define KT_NREG 32
#include "kern_tmpl.h"
#include "avx512_util.h"

/* ---- layer 0 ------------------------------------------------------------ */
#define C0_P 6

static void avx512_conv0_rows(const void *buf, int h, int w, const void *wq, float *out, int cb, int y0,
                              int y1)
{
    const float *in = buf, *wt = wq;
    size_t pw = sf_conv0_fbuf_pw(w), hw = (size_t)h * w;

    for (int y = y0; y < y1; y++)
        for (int x0 = 0; x0 < w; x0 += C0_P) {
            __m512 a00 = _mm512_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00,
                   a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
            for (int ky = 0; ky < 9; ky++) {
                const float *row = in + ((size_t)(y + ky) * pw + x0) * 3;
                const float *wk = wt + ky * 9 * 3 * 32;
                for (int t = 0; t < 27; t++, wk += 32) {        /* t = kx * 3 + ci */
                    __m512 w0 = _mm512_loadu_ps(wk), w1 = _mm512_loadu_ps(wk + 16), b;
#define C0_PIX(P)                                              \
    b = _mm512_set1_ps(row[t + 3 * (P)]);                      \
    a##P##0 = _mm512_fmadd_ps(b, w0, a##P##0);                 \
    a##P##1 = _mm512_fmadd_ps(b, w1, a##P##1);
                    C0_PIX(0) C0_PIX(1) C0_PIX(2) C0_PIX(3) C0_PIX(4) C0_PIX(5)
#undef C0_PIX
                }
            }
            int n = w - x0 < C0_P ? w - x0 : C0_P;
            size_t p = (size_t)y * w + x0;
#define C0_OUT(P)                                               \
    if (P < n) {                                                \
        store16(out, cb, hw, p + P, 0, a##P##0);                \
        store16(out, cb, hw, p + P, 16, a##P##1);               \
    }
            C0_OUT(0) C0_OUT(1) C0_OUT(2) C0_OUT(3) C0_OUT(4) C0_OUT(5)
#undef C0_OUT
        }
}

/* ---- layer 15 ----------------------------------------------------------- */
static size_t avx512_oc_band(int w4) { return sf_oc512_band(w4); }

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

static void avx512_oc_rows(const float *in, int h4, int w4, int cb, const float *na, const float *nb,
                           const void *wtv, float *out, float *band, int y0, int y1)
{
    const float *wt = wtv;
    size_t pw = sf_oc512_pw(w4), rows = (size_t)(y1 - y0) + 9, hw = (size_t)h4 * w4;
    size_t cstride = rows * pw;             /* from one channel's row to the next's */

    /* band[ci][r][OUT_LPAD + x] = max(na * in[y0 - 4 + r][x][ci] + nb, 0): layer
     * 14's norm and ReLU, applied here; zero outside the image.  16 pixels
     * x 16 channels at a time are transposed in registers.  One row more
     * than y1 - y0 + 8, zero, when the band's row count is odd. */
    for (size_t r = 0; r < rows; r++) {
        int y = y0 - 4 + (int)r, x;
        float *d0 = band + r * pw;
        if (!sf_oc_band_row(band, r, rows, pw, 32, OUT_LPAD, w4, y, h4))
            continue;
        size_t p0 = (size_t)y * w4;
        for (x = 0; x + 16 <= w4; x += 16)
            for (int c0 = 0; c0 < 32; c0 += 16) {
                v16 t[16];
                __m512 ga = _mm512_loadu_ps(na + c0), gb = _mm512_loadu_ps(nb + c0), zero = _mm512_setzero_ps();
#pragma GCC unroll 16
                for (int j = 0; j < 16; j++)                /* t[j]: pixel x + j */
                    t[j] = (v16)_mm512_max_ps(_mm512_fmadd_ps(load16(in, cb, hw, p0 + x + j, c0), ga, gb), zero);
                transpose16(t);                             /* t[c]: channel c0 + c */
#pragma GCC unroll 16
                for (int c = 0; c < 16; c++)
                    *(v16u *)(d0 + (size_t)(c0 + c) * cstride + OUT_LPAD + x) = t[c];
            }
        for (; x < w4; x++)                                 /* w4 is a multiple of 4 */
            for (int ci = 0; ci < 32; ci++) {
                float v = in[sf_at(cb, hw, p0 + x, ci)] * na[ci] + nb[ci];
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
            oc_store(acc, out, h4, w4, y, x0);
        }
    }
}

/* ---- the residual convolutions in Winograd F(6x6, 3x3), on nChw16c -----
 * wino_tmpl.h at 16 lanes; the register tile is 8 rows x 2 vectors (16
 * accumulators; 2 loads of U and 8 broadcasts of V feed 16 FMAs per k;
 * 6x4, 12x2, 16x1 and 8x4 measured the same on a Zen 5). */
#define KW_R 8
#define KW_C 2
#include "wino_tmpl.h"

void sf_kern_avx512(struct sf_cpu_kernels *k)
{
    sf_kern_set_conv0_f32(k, "conv0 avx512 (float32)", avx512_conv0_rows);
    sf_kern_set_oc_f32(k, "outconv avx512 (float32)", avx512_oc_band, avx512_oc_rows);
    k->wino_name = "winograd avx512 F(6x6,3x3) (float32)";
    k->wino_cb = 16;
    k->wino_tiles = avx512_wino_tiles;
    avx512_fill_elementwise(k, "avx512");
}
