/* kern_avx512_vnni.c: layer 0 in int16 sums on CPUs with AVX512_VNNI
 * (Intel Cascade Lake and later, AMD Zen 4), built with -mavx512f
 * -mavx512vnni.  Used when reduced precision is allowed (not
 * STYLEFS_CPU_BF16=0).
 *
 * The input pixels are integers 0..255, exact in int16, so with the weights
 * quantized to int16 per output channel (scale 32767 / max |w|, relative
 * error about 1.5e-5 of the largest weight) vpdpwssd computes layer 0 in
 * exact integer sums, two taps per instruction: 32 multiply-adds where a
 * float FMA does 16.  (bf16 weights, 8 bits of mantissa, broke the oracle
 * bar when used here.)  The sums cannot overflow: 243 taps x 255 x 32767
 * < 2^31.  The prepared input P holds, per input channel, each pixel paired
 * with its right neighbour as one 32-bit word, with a zero border of 4:
 * P[ci][4 + y][4 + x] = (v[y][x], v[y][x + 1]); then the pair at P column
 * x + 2k serves taps kx = 2k, 2k + 1 of output pixel x (kx = 9 has weight
 * 0).  Each step makes 12 output pixels x 32 channels in 24 registers: per
 * tap pair, 2 weight loads and 12 broadcasts feed 24 vpdpwssd.
 *
 * Weights (wq): int32 [3][9][5][32] tap pairs, then float [32] scales; the
 * input and weights are laid out by kern_ref.c (sf_conv0_pairs_*), shared
 * with the AVX2 version (kern_avx2.c). */
#include "cpu.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "avx512_util.h"

#define P_BLK 12

static void vnni_rows(const void *buf, int h0, int w0, const void *wqv, float *out, int cb, int y0, int y1)
{
    const int32_t *P = buf, *wq = wqv;
    const float *ws = (const float *)(wq + SF_C0_PAIRS);
    size_t pw = sf_conv0_pairs_pw(w0), rows = (size_t)h0 + 8, hw = (size_t)h0 * w0;
    __m512 s0 = _mm512_loadu_ps(ws), s1 = _mm512_loadu_ps(ws + 16);

    for (int y = y0; y < y1; y++)
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
            size_t p = (size_t)y * w0 + x0;
#define C0_OUT(P_)                                                                        \
    if (P_ < n) {                                                                         \
        store16(out, cb, hw, p + P_, 0, _mm512_mul_ps(_mm512_cvtepi32_ps(a##P_##_0), s0));  \
        store16(out, cb, hw, p + P_, 16, _mm512_mul_ps(_mm512_cvtepi32_ps(a##P_##_1), s1)); \
    }
            C0_OUT(0) C0_OUT(1) C0_OUT(2) C0_OUT(3) C0_OUT(4) C0_OUT(5)
            C0_OUT(6) C0_OUT(7) C0_OUT(8) C0_OUT(9) C0_OUT(10) C0_OUT(11)
#undef C0_OUT
        }
}

void sf_kern_avx512_vnni(struct sf_cpu_kernels *k)
{
    sf_kern_set_conv0_int16(k, "conv0 avx512_vnni (int16 sums)", vnni_rows);
}
