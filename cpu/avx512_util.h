/* avx512_util.h: loads and stores of 16 channels of one pixel in a tensor
 * stored in channel blocks of cb (8, 16 or 32; see cpu.h), shared by the
 * AVX-512 kernel files.  Include after <immintrin.h> and cpu.h, in a file
 * built with AVX-512 flags. */
#ifndef SF_AVX512_UTIL_H
#define SF_AVX512_UTIL_H

/* Store 16 channels c0.. of pixel p in a tensor of blocks of cb (8, 16 or 32). */
static inline __attribute__((always_inline)) void store16(float *out, int cb, size_t hw, size_t p, int c0, __m512 v)
{
    if (cb >= 16) {
        _mm512_storeu_ps(out + sf_at(cb, hw, p, c0), v);
    } else {
        _mm256_storeu_ps(out + sf_at(cb, hw, p, c0), _mm512_castps512_ps256(v));
        _mm256_storeu_ps(out + sf_at(cb, hw, p, c0 + 8), _mm512_extractf32x8_ps(v, 1));
    }
}

/* Load 16 channels c0.. of pixel p likewise. */
static inline __attribute__((always_inline)) __m512 load16(const float *in, int cb, size_t hw, size_t p, int c0)
{
    if (cb >= 16)
        return _mm512_loadu_ps(in + sf_at(cb, hw, p, c0));
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(in + sf_at(cb, hw, p, c0))),
                              _mm256_loadu_ps(in + sf_at(cb, hw, p, c0 + 8)), 1);
}

/* ---- layer 15's band, shared by the float32 and bf16 kernels ----------- */
#define OUT_VX 64                 /* output pixels per inner step */
#define OUT_LPAD 16               /* band columns left of x = 0: a 64-byte line */
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));
typedef int v16i __attribute__((vector_size(64)));

/* Band row length: OUT_LPAD, the image rounded up to OUT_VX, and room for
 * the last step's kx reach (OUT_LPAD - 4 + 8 + 63 < OUT_LPAD + OUT_VX + 16). */
static inline size_t sf_oc512_pw(int w4) { return (size_t)((w4 + OUT_VX - 1) / OUT_VX * OUT_VX + OUT_LPAD + 16); }
/* Per-thread band, in floats: 32 planes (or 16 of bf16 pairs) of up to
 * SF_OC_ROWS + 9 rows (the two-row walk reads one row past an odd count). */
static inline size_t sf_oc512_band(int w4) { return (size_t)32 * (SF_OC_ROWS + 9) * sf_oc512_pw(w4); }

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

/* Store output rows y, y+1 (y+1 only when below h4) from x0 (up to OUT_VX
 * pixels, fewer at the right edge) from acc[row][channel][vector],
 * interleaving the channels. */
static inline __attribute__((always_inline)) void oc_store(v16 acc[2][3][4], float *out, int h4, int w4, int y,
                                                           int x0)
{
    int n = w4 - x0 < OUT_VX ? w4 - x0 : OUT_VX;

    for (int k = 0; k < 2 && y + k < h4; k++) {
        float *o = out + ((size_t)(y + k) * w4 + x0) * 3;
        for (int i = 0; i < n; i++)
            for (int co = 0; co < 3; co++)
                o[i * 3 + co] = acc[k][co][i / 16][i % 16];
    }
}

#endif
