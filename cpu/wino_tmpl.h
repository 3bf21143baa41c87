/* wino_tmpl.h: the residual convolutions (3x3, 128 -> 128, stride 1, SAME)
 * in Winograd F(4x4, 3x3), written once for any vector width and included
 * by kern_avx2.c (8 lanes, nChw8c) and kern_avx512.c (16 lanes, nChw16c).
 * The includer defines KT(name) for its prefix, KT_VBYTES (its vector
 * width in bytes: the channel block is KT_VBYTES / 4) and KW_R, KW_C (the
 * register tile of the matrix products: KW_R rows of V by KW_C vectors of
 * U's columns, KW_R * KW_C accumulators; KW_R divides SF_WINO_TB).
 *
 * Per block of up to SF_WINO_TB tiles (one call):
 * - the input transform of every tile and channel block (a vector of
 *   channels at a time, the 6x6 tile loaded straight from the blocked
 *   layout) into V [36][TB][128];
 * - 36 products M[xi] = V[xi] (TB x 128) x U[xi] (128 x 128), each a
 *   KW_R x KW_C register tile walking K = 128: per k, KW_C loads of U and
 *   KW_R broadcasts of V feed KW_R * KW_C FMAs, U's panel of
 *   KW_C * lanes columns (128 rows) staying in L1 across the tile rows;
 * - the output transform into the blocked output.
 * Rows of V past the last tile of a partial block are zero.  The
 * portable reference, with the matrices spelled out, is kern_ref.c. */
#include <string.h>

#define KW_L (KT_VBYTES / 4)            /* lanes = channel block */
typedef float KT(wv) __attribute__((vector_size(KT_VBYTES)));

/* Bt applied to 6 vectors: o = Bt x */
static inline __attribute__((always_inline)) void KT(bt6)(const KT(wv) x[6], KT(wv) o[6])
{
    o[0] = 4 * x[0] - 5 * x[2] + x[4];
    o[1] = x[3] + x[4] - 4 * (x[1] + x[2]);
    o[2] = 4 * (x[1] - x[2]) + x[4] - x[3];
    o[3] = 2 * (x[3] - x[1]) + x[4] - x[2];
    o[4] = 2 * (x[1] - x[3]) + x[4] - x[2];
    o[5] = 4 * x[1] - 5 * x[3] + x[5];
}

/* At applied to 6 vectors: 4 results */
static inline __attribute__((always_inline)) void KT(at6)(const KT(wv) m[6], KT(wv) o[4])
{
    KT(wv) a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
    o[0] = m[0] + a + c;
    o[1] = b + 2 * d;
    o[2] = a + 4 * c;
    o[3] = b + 8 * d + m[5];
}

/* One KW_R x (KW_C * KW_L) tile of M = V U over K = 128 */
static inline __attribute__((always_inline)) void KT(wino_mm_tile)(const float *a, const float *b, float *c)
{
    KT(wv) acc[KW_R][KW_C];
#pragma GCC unroll 16
    for (int r = 0; r < KW_R; r++)
#pragma GCC unroll 4
        for (int j = 0; j < KW_C; j++)
            acc[r][j] = (KT(wv)){ 0 };
    for (int kk = 0; kk < 128; kk++, b += 128) {
        KT(wv) bv[KW_C];
#pragma GCC unroll 4
        for (int j = 0; j < KW_C; j++)
            memcpy(&bv[j], b + j * KW_L, sizeof bv[j]);
#pragma GCC unroll 16
        for (int r = 0; r < KW_R; r++) {
            float av = a[r * 128 + kk];
#pragma GCC unroll 4
            for (int j = 0; j < KW_C; j++)
                acc[r][j] += av * bv[j];
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < KW_R; r++)
#pragma GCC unroll 4
        for (int j = 0; j < KW_C; j++)
            memcpy(c + r * 128 + j * KW_L, &acc[r][j], sizeof acc[r][j]);
}

static void KT(wino_tiles)(const float *in, int h, int w, int cb, const float *U, float *out, float *scratch,
                           int t0, int t1)
{
    int ntx = (w + 3) / 4, nt = t1 - t0, rows = (nt + KW_R - 1) / KW_R * KW_R;
    size_t hw = (size_t)h * w, TB = SF_WINO_TB;
    float *V = scratch, *M = scratch + 36 * TB * 128;
    const KT(wv) zero = { 0 };

    (void)cb;                   /* always KW_L: the plan asks for this kernel's wino_cb */
    /* input transform */
    for (int t = t0; t < t1; t++) {
        int y0 = (t / ntx) * 4 - 1, x0 = (t % ntx) * 4 - 1;
        int inside = y0 >= 0 && y0 + 6 <= h && x0 >= 0 && x0 + 6 <= w;
        for (int g = 0; g < 128 / KW_L; g++) {
            const float *base = in + (size_t)g * hw * KW_L;
            KT(wv) d[6][6], u[6][6], col[6], r6[6];
            for (int r = 0; r < 6; r++)
                for (int q = 0; q < 6; q++) {
                    int y = y0 + r, x = x0 + q;
                    if (inside || (y >= 0 && y < h && x >= 0 && x < w))
                        memcpy(&d[r][q], base + ((size_t)y * w + x) * KW_L, sizeof(KT(wv)));
                    else
                        d[r][q] = zero;
                }
            for (int q = 0; q < 6; q++) {           /* columns: u = Bt d */
                for (int r = 0; r < 6; r++)
                    col[r] = d[r][q];
                KT(bt6)(col, r6);
                for (int i = 0; i < 6; i++)
                    u[i][q] = r6[i];
            }
            for (int i = 0; i < 6; i++) {           /* rows: V = u B */
                KT(bt6)(u[i], r6);
                for (int j = 0; j < 6; j++)
                    memcpy(V + ((size_t)(i * 6 + j) * TB + (t - t0)) * 128 + g * KW_L, &r6[j], sizeof(KT(wv)));
            }
        }
    }
    if (nt < rows)          /* zero rows for the register tiles of a partial block */
        for (int xi = 0; xi < 36; xi++)
            memset(V + ((size_t)xi * TB + nt) * 128, 0, (size_t)(rows - nt) * 128 * sizeof(float));
    /* 36 products */
    for (int xi = 0; xi < 36; xi++) {
        const float *Vx = V + (size_t)xi * TB * 128, *Ux = U + (size_t)xi * 128 * 128;
        float *Mx = M + (size_t)xi * TB * 128;
        for (int j0 = 0; j0 < 128; j0 += KW_C * KW_L)
            for (int i0 = 0; i0 < rows; i0 += KW_R)
                KT(wino_mm_tile)(Vx + (size_t)i0 * 128, Ux + j0, Mx + (size_t)i0 * 128 + j0);
    }
    /* output transform */
    for (int t = t0; t < t1; t++) {
        int y0 = (t / ntx) * 4, x0 = (t % ntx) * 4;
        for (int g = 0; g < 128 / KW_L; g++) {
            KT(wv) m[6][6], u[4][6], col[6], o4[4];
            for (int i = 0; i < 36; i++)
                memcpy(&m[i / 6][i % 6], M + ((size_t)i * TB + (t - t0)) * 128 + g * KW_L, sizeof(KT(wv)));
            for (int q = 0; q < 6; q++) {           /* columns: u = At m */
                for (int r = 0; r < 6; r++)
                    col[r] = m[r][q];
                KT(at6)(col, o4);
                for (int i = 0; i < 4; i++)
                    u[i][q] = o4[i];
            }
            float *base = out + (size_t)g * hw * KW_L;
            for (int i = 0; i < 4 && y0 + i < h; i++) {     /* rows: Y = u A */
                KT(at6)(u[i], o4);
                for (int j = 0; j < 4 && x0 + j < w; j++)
                    memcpy(base + ((size_t)(y0 + i) * w + x0 + j) * KW_L, &o4[j], sizeof(KT(wv)));
            }
        }
    }
}
