/* wino_tmpl.h: the residual convolutions (3x3, 128 -> 128, stride 1, SAME)
 * in Winograd F(6x6, 3x3), written once for any vector width and included
 * by kern_avx2.c (8 lanes, nChw8c) and kern_avx512.c (16 lanes, nChw16c).
 * The includer defines KT(name) for its prefix, KT_VBYTES (its vector
 * width in bytes: the channel block is KT_VBYTES / 4) and KW_R, KW_C (the
 * register tile of the matrix products: KW_R rows of V by KW_C vectors of
 * U's columns, KW_R * KW_C accumulators; KW_R divides SF_WINO_TB).
 *
 * Per block of up to SF_WINO_TB tiles of 6x6 outputs (one call):
 * - the input transform of every tile and channel block (a vector of
 *   channels at a time, the 8x8 window loaded straight from the blocked
 *   layout, the window two tiles ahead prefetched: with 6 rows x 8 blocks
 *   of streams the hardware prefetchers fall behind) into V;
 * - 64 products M[xi] = V[xi] (TB x 128) x U[xi] (128 x 128), each a
 *   KW_R x KW_C register tile walking K = 128: per k, KW_C loads of U and
 *   KW_R broadcasts of V feed KW_R * KW_C FMAs, U's panel of
 *   KW_C * lanes columns (128 rows) staying in L1 across the tile rows;
 * - the output transform into the blocked output.
 * Two instance-norm passes ride along (cpu.h sf_wino_fn): the previous
 * layer's norm and ReLU applied to each input value as it is loaded, and
 * the output's per-channel sums for this layer's norm, added up per call
 * (at most 24 x 36 pixels) in float around the first tile's first pixel
 * and carried in double (per tile, the double sums cost 1 ms a layer).
 * V and M are tile-major, [TB][64][128] with tiles SF_WINO_TS floats
 * apart: a tile's 64 points are one contiguous 32 KB run for the
 * transforms (point-major [64][TB][128] made them 64 streams 6-12 KB
 * apart; tile-major measured 7% faster a layer), and the 64 bytes past it
 * keep the KW_R rows a product broadcasts from, and the KW_R rows it
 * stores, out of one L1 set (at 32 KB apart they all fell in one: the
 * residual layers took 24.1 ms each at 1 MP, 20.3 ms padded, median of 5
 * alternating, AVX-512 on an AMD EPYC Zen 5; AVX2 about the same).
 * Rows of V past the last tile of a partial block are zero.  The
 * portable reference, with the matrices spelled out, is kern_ref.c. */
#include <stdint.h>
#include <string.h>

#define KW_L (KT_VBYTES / 4)            /* lanes = channel block */
typedef float KT(wv) __attribute__((vector_size(KT_VBYTES)));
typedef int32_t KT(wi) __attribute__((vector_size(KT_VBYTES)));
typedef float KT(wh) __attribute__((vector_size(KT_VBYTES / 2)));      /* half the lanes */
typedef double KT(wd) __attribute__((vector_size(KT_VBYTES)));         /* those, in double */

/* Add a block's sums (float, around ref) into the double sums of its
 * KW_L channels: sum x = s + n ref, sum x^2 = s2 + 2 ref s + n ref^2 */
static inline __attribute__((always_inline)) void KT(wstats)(double *sum, double *sq, KT(wv) s, KT(wv) s2,
                                                              KT(wv) ref, int n)
{
    for (int hf = 0; hf < 2; hf++) {
        KT(wh) a, b, c;
        KT(wd) sd, s2d, rd, acc, acc2;
        memcpy(&a, (const float *)&s + hf * (KW_L / 2), sizeof a);
        memcpy(&b, (const float *)&s2 + hf * (KW_L / 2), sizeof b);
        memcpy(&c, (const float *)&ref + hf * (KW_L / 2), sizeof c);
        sd = __builtin_convertvector(a, KT(wd));
        s2d = __builtin_convertvector(b, KT(wd));
        rd = __builtin_convertvector(c, KT(wd));
        memcpy(&acc, sum + hf * (KW_L / 2), sizeof acc);
        memcpy(&acc2, sq + hf * (KW_L / 2), sizeof acc2);
        acc += sd + n * rd;
        acc2 += s2d + 2 * rd * sd + n * rd * rd;
        memcpy(sum + hf * (KW_L / 2), &acc, sizeof acc);
        memcpy(sq + hf * (KW_L / 2), &acc2, sizeof acc2);
    }
}

/* Bt applied to 8 vectors: o = Bt x (the points 0, +-1, +-2, +-1/2, inf) */
static inline __attribute__((always_inline)) void KT(bt8)(const KT(wv) x[8], KT(wv) o[8])
{
    KT(wv) a12 = x[2] + x[6] - 4.25f * x[4], b12 = x[1] + x[5] - 4.25f * x[3];
    KT(wv) a34 = x[6] + 0.25f * x[2] - 1.25f * x[4], b34 = 0.5f * x[1] - 2.5f * x[3] + 2 * x[5];
    KT(wv) a56 = x[6] + 4 * (x[2] - 1.25f * x[4]), b56 = 2 * x[1] - 2.5f * x[3] + 0.5f * x[5];
    o[0] = x[0] - x[6] + 5.25f * (x[4] - x[2]);
    o[1] = a12 + b12;
    o[2] = a12 - b12;
    o[3] = a34 + b34;
    o[4] = a34 - b34;
    o[5] = a56 + b56;
    o[6] = a56 - b56;
    o[7] = x[7] - x[1] + 5.25f * (x[3] - x[5]);
}

/* At applied to 8 vectors: 6 results */
static inline __attribute__((always_inline)) void KT(at8)(const KT(wv) m[8], KT(wv) o[6])
{
    KT(wv) a0 = m[1] + m[2], a1 = m[1] - m[2], b0 = m[3] + m[4], b1 = m[3] - m[4];
    KT(wv) c0 = m[5] + m[6], c1 = m[5] - m[6];
    o[0] = m[0] + a0 + b0 + 32 * c0;
    o[1] = a1 + 2 * b1 + 16 * c1;
    o[2] = a0 + 4 * b0 + 8 * c0;
    o[3] = a1 + 8 * b1 + 4 * c1;
    o[4] = a0 + 16 * b0 + 2 * c0;
    o[5] = m[7] + a1 + 32 * b1 + c1;
}

/* One KW_R x (KW_C * KW_L) tile of M = V U over K = 128; rows of a and c
 * are rs floats apart */
static inline __attribute__((always_inline)) void KT(wino_mm_tile)(const float *a, const float *b, float *c,
                                                                   size_t rs)
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
            float av = a[r * rs + kk];
#pragma GCC unroll 4
            for (int j = 0; j < KW_C; j++)
                acc[r][j] += av * bv[j];
        }
    }
#pragma GCC unroll 16
    for (int r = 0; r < KW_R; r++)
#pragma GCC unroll 4
        for (int j = 0; j < KW_C; j++)
            memcpy(c + r * rs + j * KW_L, &acc[r][j], sizeof acc[r][j]);
}

static void KT(wino_tiles)(const float *in, int h, int w, int cb, const float *U, float *out, float *scratch,
                           int t0, int t1, const float *pre_a, const float *pre_b, double *sum, double *sq)
{
    int ntx = (w + 5) / 6, nt = t1 - t0, rows = (nt + KW_R - 1) / KW_R * KW_R;
    size_t hw = (size_t)h * w, TS = SF_WINO_TS;        /* a tile's floats in V and M */
    float *V = scratch, *M = scratch + SF_WINO_TB * TS;
    const KT(wv) zero = { 0 };

    (void)cb;                   /* always KW_L: the plan asks for this kernel's wino_cb */
    /* input transform */
    for (int t = t0; t < t1; t++) {
        int y0 = (t / ntx) * 6 - 1, x0 = (t % ntx) * 6 - 1;
        int inside = y0 >= 0 && y0 + 8 <= h && x0 >= 0 && x0 + 8 <= w;
        int yp = ((t + 2) / ntx) * 6 - 1, xp = ((t + 2) % ntx) * 6 - 1;
        for (int g = 0; g < 128 / KW_L; g++) {
            const float *base = in + (size_t)g * hw * KW_L;
            KT(wv) d[8][8], u[8][8], col[8], r8[8];
            if (t + 2 < t1 && xp >= 0 && xp + 8 <= w)
                for (int r = 0; r < 8; r++)
                    if (yp + r >= 0 && yp + r < h)
                        for (int q = 0; q < 8 * KW_L; q += 16)
                            __builtin_prefetch(base + ((size_t)(yp + r) * w + xp) * KW_L + q);
            KT(wv) ga = zero, gb = zero;
            if (pre_a) {
                memcpy(&ga, pre_a + g * KW_L, sizeof ga);
                memcpy(&gb, pre_b + g * KW_L, sizeof gb);
            }
            for (int r = 0; r < 8; r++)
                for (int q = 0; q < 8; q++) {
                    int y = y0 + r, x = x0 + q;
                    if (inside || (y >= 0 && y < h && x >= 0 && x < w)) {
                        memcpy(&d[r][q], base + ((size_t)y * w + x) * KW_L, sizeof(KT(wv)));
                        if (pre_a) {    /* in bounds only: the padding is the normalized tensor's zero */
                            KT(wv) v = d[r][q] * ga + gb;
                            d[r][q] = (KT(wv))((KT(wi))v & (v > zero));      /* ReLU */
                        }
                    } else
                        d[r][q] = zero;
                }
            for (int q = 0; q < 8; q++) {           /* columns: u = Bt d */
                for (int r = 0; r < 8; r++)
                    col[r] = d[r][q];
                KT(bt8)(col, r8);
                for (int i = 0; i < 8; i++)
                    u[i][q] = r8[i];
            }
            float *vt = V + (size_t)(t - t0) * TS + g * KW_L;
            for (int i = 0; i < 8; i++) {           /* rows: V = u B */
                KT(bt8)(u[i], r8);
                for (int j = 0; j < 8; j++)
                    memcpy(vt + (size_t)(i * 8 + j) * 128, &r8[j], sizeof(KT(wv)));
            }
        }
    }
    if (nt < rows)          /* zero rows for the register tiles of a partial block */
        memset(V + (size_t)nt * TS, 0, (size_t)(rows - nt) * TS * sizeof(float));
    /* 64 products */
    for (int xi = 0; xi < SF_WINO_P; xi++) {
        const float *Vx = V + (size_t)xi * 128, *Ux = U + (size_t)xi * 128 * 128;
        float *Mx = M + (size_t)xi * 128;
        for (int j0 = 0; j0 < 128; j0 += KW_C * KW_L)
            for (int i0 = 0; i0 < rows; i0 += KW_R)
                KT(wino_mm_tile)(Vx + (size_t)i0 * TS, Ux + j0, Mx + (size_t)i0 * TS + j0, TS);
    }
    /* output transform */
    KT(wv) bs[128 / KW_L], bs2[128 / KW_L], bref[128 / KW_L];
    int bn = 0;
    for (int t = t0; t < t1; t++) {
        int y0 = (t / ntx) * 6, x0 = (t % ntx) * 6;
        bn += ((h - y0) < 6 ? h - y0 : 6) * ((w - x0) < 6 ? w - x0 : 6);
        for (int g = 0; g < 128 / KW_L; g++) {
            KT(wv) m[8][8], u[6][8], col[8], o6[6];
            const float *mt = M + (size_t)(t - t0) * TS + g * KW_L;
            for (int i = 0; i < SF_WINO_P; i++)
                memcpy(&m[i / 8][i % 8], mt + (size_t)i * 128, sizeof(KT(wv)));
            for (int q = 0; q < 8; q++) {           /* columns: u = At m */
                for (int r = 0; r < 8; r++)
                    col[r] = m[r][q];
                KT(at8)(col, o6);
                for (int i = 0; i < 6; i++)
                    u[i][q] = o6[i];
            }
            float *base = out + (size_t)g * hw * KW_L;
            KT(wv) s, s2, ref;
            if (t == t0)
                s = s2 = ref = zero;    /* ref: the block's first output, below */
            else {
                s = bs[g];
                s2 = bs2[g];
                ref = bref[g];
            }
            for (int i = 0; i < 6 && y0 + i < h; i++) {     /* rows: Y = u A */
                KT(at8)(u[i], o6);
                if (t == t0 && i == 0)
                    ref = o6[0];
                for (int j = 0; j < 6 && x0 + j < w; j++) {
                    KT(wv) dv = o6[j] - ref;
                    memcpy(base + ((size_t)(y0 + i) * w + x0 + j) * KW_L, &o6[j], sizeof(KT(wv)));
                    s += dv;
                    s2 += dv * dv;
                }
            }
            bs[g] = s;
            bs2[g] = s2;
            bref[g] = ref;
        }
    }
    if (sum)
        for (int g = 0; g < 128 / KW_L; g++)
            KT(wstats)(sum + g * KW_L, sq + g * KW_L, bs[g], bs2[g], bref[g], bn);
}
