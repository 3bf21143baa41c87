/* cpu.h: the CPU engine's insides: instruction-set levels, feature
 * detection and the kernel dispatch table.
 *
 * The CPU engine (cpu/cpu_engine.c) runs oneDNN for the 3x3 convolutions
 * (cpu/plan.c) and kernels of our own for the rest: layer 0 (9x9, 3->32),
 * layer 15 (9x9, 32->3), the instance norms and the tanh output.  The
 * painting networks' runner (src/tflnet.c) takes its convolutions and norm
 * sums from the same table.  Each kernel exists once in portable C
 * (kern_ref.c: the oracle, and the fallback) and again per instruction
 * set, one file each, built with that file's own compiler flags:
 *
 *   kern_avx2.c         x86-64 AVX2 + FMA
 *   kern_avx512.c       x86-64 AVX-512 (F, BW, DQ, VL)
 *   kern_avx512_vnni.c  layer 0 in int16 sums (AVX512_VNNI)
 *   kern_avx512_bf16.c  layer 15 in bf16 (AVX512_BF16)
 *   kern_neon.c         aarch64 Advanced SIMD
 *
 * sf_cpu_kernels_fill() fills one table, once per engine, from the
 * portable kernels up: each file overwrites the slots it provides, in the
 * order above, if the CPU has its instructions and the level cap
 * (STYLEFS_CPU_ISA) allows them.  No ifunc or target_clones: the table is
 * what runs, and a test can build the table of any level the machine
 * supports and compare each slot with the portable one.
 *
 * Conventions shared by every kernel:
 * - A tensor of C channels, h x w pixels, is stored in channel blocks of
 *   cb: [C/cb][h][w][cb] floats.  cb = C is NHWC; cb = 8 and 16 are
 *   oneDNN's nChw8c and nChw16c.  Kernels take cb in {8, 16, C}.
 * - Kernels are single-threaded and work on a range of rows (or pixels)
 *   given by the caller; the engine splits the work over its threads.
 * - Kernels allocate nothing and cannot fail. */
#ifndef SF_CPU_H
#define SF_CPU_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

enum sf_cpu_level {
    SF_CPU_GENERIC = 0, /* portable C only */
    SF_CPU_NEON,        /* aarch64 Advanced SIMD */
    SF_CPU_AVX2,        /* x86-64 AVX2 + FMA */
    SF_CPU_AVX512,      /* x86-64 AVX-512 F/BW/DQ/VL */
};

struct sf_cpu_features {
    enum sf_cpu_level best;     /* the best level this CPU runs */
    enum sf_cpu_level level;    /* the level in use: best, capped by STYLEFS_CPU_ISA */
    int avx512_vnni, avx512_bf16;   /* extras, 0 when level < AVX512 */
    int capped;                 /* STYLEFS_CPU_ISA lowered the level */
};

/* The level's name: "generic", "neon", "avx2", "avx512". */
const char *sf_cpu_level_name(enum sf_cpu_level l);
/* Parse a level name.  Returns 0 or -EINVAL. */
int sf_cpu_level_parse(const char *s, enum sf_cpu_level *out);
/* Whether this CPU can run level l. */
int sf_cpu_level_supported(enum sf_cpu_level l);
/* Detect the CPU (cpuid and XGETBV on x86-64, getauxval(AT_HWCAP) on
 * aarch64) and apply the cap in $STYLEFS_CPU_ISA.  Returns 0, or -EINVAL
 * when STYLEFS_CPU_ISA names no level or one this CPU cannot run (why
 * says which). */
int sf_cpu_detect(struct sf_cpu_features *f, char *why, size_t whylen);
/* The levels this CPU runs, best first, as "avx2 generic". */
void sf_cpu_levels_str(char *buf, size_t len);

/* Layer 0's input, prepared: kernel-specific (a zero-bordered float copy,
 * or int16 pixel pairs); conv0_buf_bytes() says its size. */
typedef size_t (*sf_conv0_buf_fn)(int h, int w);
/* Prepare rows r0..r1 of the buffer (h + 8 rows in all) from rgb
 * [h][w][3]. */
typedef void (*sf_conv0_prep_fn)(const uint8_t *rgb, int h, int w, void *buf, int r0, int r1);
/* Layer 0's weights from the stored [ky][kx][ci][co] into wq (conv0_wbytes). */
typedef void (*sf_conv0_weights_fn)(const float *w, void *wq);
/* Output rows y0..y1 of layer 0: out [32/cb][h][w][cb]. */
typedef void (*sf_conv0_rows_fn)(const void *buf, int h, int w, const void *wq, float *out, int cb, int y0,
                                 int y1);

/* The engine gives layer 15's kernels at most this many rows a call. */
#define SF_OC_ROWS 16
/* Layer 15's per-thread band, in floats, for a row of w4 pixels. */
typedef size_t (*sf_oc_band_fn)(int w4);
/* Layer 15's weights from the stored [ky][kx][ci][co] into wt (oc_wbytes). */
typedef void (*sf_oc_weights_fn)(const float *w, void *wt);
/* Output rows y0..y1 (y0 even; y1 even or h4) of layer 15: in is layer
 * 14's output [32/cb][h4][w4][cb] before its norm; each input value x is
 * used as max(na[c] * x + nb[c], 0) (that norm and ReLU), zero outside the
 * image.  out [h4][w4][3]. */
typedef void (*sf_oc_rows_fn)(const float *in, int h4, int w4, int cb, const float *na, const float *nb,
                              const void *wt, float *out, float *band, int y0, int y1);

/* Instance norm statistics of one channel group ([hw][cb], cb channels),
 * pixels p0..p1: sum[c] += sum of (x - shift[c]), sq[c] += its square. */
typedef void (*sf_norm_sums_fn)(const float *x, int cb, size_t p0, size_t p1, const float *shift, double *sum,
                                double *sq);
/* Apply y = a[c] * x + b[c] to one group's pixels p0..p1: then ReLU
 * (relu), or res += y (res not NULL; x unchanged), or x = y. */
typedef void (*sf_norm_apply_fn)(float *x, int cb, size_t p0, size_t p1, const float *a, const float *b,
                                 int relu, float *res);
/* NHWC direct convolution for small channel counts (Magenta's
 * arbitrary-style transformer), reading its input through row and column
 * maps: for output rows oy0..oy1,
 *   y[oy][ox][o] = act(b[o] + sum over ky, kx, ci of X(oy s + ky, ox s + kx, ci) wt[ky][kx][ci][o]),
 *   X(py, px, ci) = x[rmap[py]][cmap[px]][ci] (rows of ws pixels), or 0
 *   where rmap[py] or cmap[px] is negative,
 * so that zero padding, a mirror pad and a nearest upsampling are all
 * index maps, never stored.  rmap has (oh - 1) s + kh entries, cmap
 * (ow - 1) s + kw.  act 0 none, 1 ReLU, 3 ReLU6.  wt and b hold ocp =
 * SF_TCONV_OCP(oc) output channels (zeros past oc); y gets oc.  oc <= 64. */
#define SF_TCONV_OCP(oc) ((oc) <= 8 ? 8 : (oc) <= 16 ? 16 : (oc) <= 32 ? 32 : 64)
typedef void (*sf_tconv_fn)(const float *x, int ws, int c, const int *rmap, const int *cmap, const float *wt,
                            const float *b, int oc, int kh, int kw, int s, float *y, int ow, int act, int oy0,
                            int oy1);

/* A VALID, stride-1 convolution of planar input
 * ([c][h][w]: vectorized over a register of output pixels, for the full-resolution
 * layers with 3 to 16 channels): output NHWC, oh = h - kh + 1, ow = w -
 * kw + 1, wt as above with ocp channels, oc in {3, 8, 16},
 * kh kw c <= SF_TCONVP_TAPS (it writes nothing otherwise). */
#define SF_TCONVP_TAPS (11 * 11 * 16)
typedef void (*sf_tconvp_fn)(const float *planes, int h, int w, int c, const float *wt, const float *b, int oc,
                             int ocp, int kh, int kw, float *y, int ow, int act, int oy0, int oy1);

/* The full-integer style predictor's convolution sums (src/tflnet.c):
 * for np pixels and oc output channels,
 *   dot[p][o] = sum over t < kp of xs[p kp + t] w[o kp + t],
 * xs the pixels' taps (input minus its zero point) and w the weights, both
 * int16, rows of kp = SF_QDOT_PAD(taps) values, zeros past the taps.
 * Exact: with kp <= SF_QDOT_MAX_K and |xs| <= 255, |w| <= 128 no sum can
 * leave int32, so any order gives LiteRT's integers. */
#define SF_QDOT_PAD(k) (((k) + 15) / 16 * 16)
#define SF_QDOT_MAX_K 65536
typedef void (*sf_qdot_fn)(const int16_t *xs, int np, int kp, const int16_t *w, int oc, int32_t *dot);
/* Its depthwise convolutions' sums, output row oy (NHWC int8, c channels):
 *   dot[ox][ci] = sum over ky, kx of (x[iy][ix][ci] - zin) wt[ky][kx][ci],
 *   iy = oy s + ky - pt, ix = ox s + kx - pl, taps outside the image left
 * out (they hold the zero point).  Exact for kh kw <= SF_QDOT_MAX_K. */
typedef void (*sf_qdw_fn)(const int8_t *x, int h, int w, int c, int zin, const int8_t *wt, int kh, int kw, int s,
                          int pt, int pl, int oy, int ow, int32_t *dot);

/* The same with ReLU into bf16 (NHWC, cb = 64): out = bf16(max(y, 0)). */
typedef void (*sf_norm_bf16_fn)(const float *x, size_t p0, size_t p1, const float *a, const float *b,
                                uint16_t *out);
/* The output stage, rows y0..y1: out[y][x][c] = 8-bit of
 * tanh(a[c] * O[y][x][c] + b[c]) * 150 + 127.5, O [.][w4][3]. */
typedef void (*sf_output_fn)(const float *O, int w4, int w, const float *a, const float *b, uint8_t *out,
                             int y0, int y1);

/* A 3x3 layer of our own, for CPUs where oneDNN has only reference
 * kernels (aarch64 without SVE): a convolution with stride 1 or 2 and
 * SAME padding (pt, pl before), or the transposed convolution with stride
 * 2 of network.md (deconv), NHWC, cout a multiple of 16.  wt is
 * [ky][kx][cin][cout] (the stored layout of convolutions; transposed
 * convolutions are rearranged at load). */
struct sf_conv3_shape {
    int hin, win, cin, hout, wout, cout;
    int stride, deconv, pt, pl;
};
/* Input row (or column) of tap k for output o, or -1 when the tap falls
 * outside the input (zero padding) or, for the transposed convolution,
 * on no input pixel (o - k odd). */
static inline int sf_tap_in(int o, int k, int stride, int deconv, int pad, int n)
{
    int i;
    if (deconv) {
        if (o < k || ((o - k) & 1))
            return -1;
        i = (o - k) / 2;
    } else {
        i = o * stride + k - pad;
    }
    return i >= 0 && i < n ? i : -1;
}
/* Output rows y0..y1 of out [hout][wout][cout]. */
typedef void (*sf_conv3_rows_fn)(const float *in, const float *wt, float *out, const struct sf_conv3_shape *s,
                                 int y0, int y1);

/* The residual convolutions (3x3, 128 -> 128, stride 1, SAME) in
 * Winograd F(6x6, 3x3) (wino_tmpl.h; kern_ref.c's is the oracle): per 6x6
 * output tile the 8x8 input is transformed (V = Bt d B), multiplied per
 * each of the 64 points with the transformed weights (U = G g Gt, 128 x
 * 128) as 64 matrix products over a block of tiles, and transformed back
 * (Y = At M A): 5.06x fewer multiply-adds than the direct convolution
 * (F(4x4, 3x3): 4x), at about 3e-6 of the largest output in float32.
 * Tiles are numbered row by row, ceil(h/6) x ceil(w/6) of them; a call
 * does tiles t0..t1 (at most SF_WINO_TB) with its thread's scratch of
 * sf_wino_scratch_floats() floats.  in and out are [128/cb][h][w][cb].
 * Fused instance-norm passes: with pre_a, each input value x is read as
 * max(pre_a[c] x + pre_b[c], 0) (the previous layer's norm and ReLU; the
 * zero padding stays zero); with sum, the outputs' per-channel sums of x
 * and x^2 are added into sum[128] and sq[128] (the caller's, per thread). */
#define SF_WINO_TB 24
#define SF_WINO_P 64    /* points per tile: (6 + 2) x (6 + 2) */
/* A tile's floats in V and M: its 64 points of 128 channels, and 16 more
 * (64 bytes), so that the rows a matrix product walks together (one per
 * tile) do not all fall in the same L1 cache set, as 32 KB apart they would */
#define SF_WINO_TS ((size_t)SF_WINO_P * 128 + 16)
typedef void (*sf_wino_fn)(const float *in, int h, int w, int cb, const float *U, float *out, float *scratch,
                           int t0, int t1, const float *pre_a, const float *pre_b, double *sum, double *sq);

struct sf_cpu_kernels {
    enum sf_cpu_level level;
    const char *conv0_name;
    sf_conv0_buf_fn conv0_buf_bytes;
    sf_conv0_prep_fn conv0_prep;
    size_t conv0_wbytes;
    sf_conv0_weights_fn conv0_weights;
    sf_conv0_rows_fn conv0_rows;
    int conv0_int16;            /* int16 sums (reduced precision weights) */

    const char *oc_name;
    sf_oc_band_fn oc_band;
    size_t oc_wbytes;
    sf_oc_weights_fn oc_weights;
    sf_oc_rows_fn oc_rows;
    /* layer 15 in bf16 (NULL unless AVX512_BF16): used in bf16 plans */
    const char *oc16_name;
    sf_oc_band_fn oc16_band;
    size_t oc16_wbytes;
    sf_oc_weights_fn oc16_weights;
    sf_oc_rows_fn oc16_rows;

    const char *conv3_name;
    sf_conv3_rows_fn conv3_rows;

    const char *wino_name;      /* NULL: none at this level */
    int wino_cb;                /* the channel block it takes */
    sf_wino_fn wino_tiles;

    /* the arbitrary-style transformer's convolutions (src/tflnet.c) */
    const char *tconv_name;
    sf_tconv_fn tconv;
    sf_tconvp_fn tconvp;
    sf_qdot_fn qdot;            /* and the int8 predictor's convolutions */
    sf_qdw_fn qdw;

    const char *norm_name;
    sf_norm_sums_fn norm_sums;
    sf_norm_apply_fn norm_apply;
    sf_norm_bf16_fn norm_bf16;
    const char *output_name;
    sf_output_fn output;
};

/* Fill k for level `level` (at most f->level) with the features in f:
 * the portable kernels, then each instruction set's that applies.
 * `lowp` allows the reduced-precision extras (int16 layer 0, bf16 layer
 * 15); without it they stay float32. */
void sf_cpu_kernels_fill(struct sf_cpu_kernels *k, const struct sf_cpu_features *f, enum sf_cpu_level level,
                         int lowp);

/* Each file's part of the table (in kern_*.c). */
void sf_kern_ref(struct sf_cpu_kernels *k);
void sf_kern_avx2(struct sf_cpu_kernels *k);
void sf_kern_avx512(struct sf_cpu_kernels *k);
void sf_kern_avx2_int16(struct sf_cpu_kernels *k);
void sf_kern_avx512_vnni(struct sf_cpu_kernels *k);
void sf_kern_avx512_bf16(struct sf_cpu_kernels *k);
void sf_kern_neon(struct sf_cpu_kernels *k);

/* Shared by the portable kernels and the ISA files. */
size_t sf_conv0_fbuf_bytes(int h, int w);  /* the zero-bordered float input */
void sf_conv0_fbuf_prep(const uint8_t *rgb, int h, int w, void *buf, int r0, int r1);
size_t sf_conv0_fbuf_pw(int w);            /* its row length, in pixels */
void sf_conv0_fweights(const float *w, void *wq);   /* copy, [ky][kx][ci][co] */
/* Layer 0 in int16 sums (kern_avx512_vnni.c says how): the input as pixel
 * pairs P[ci][4 + y][4 + x] = (v[y][x], v[y][x + 1]) with a zero border,
 * rows of sf_conv0_pairs_pw(w) int32 words (room for 12-pixel steps); the
 * weights as int16 tap pairs [ci][ky][5][co], then float [32] scales. */
size_t sf_conv0_pairs_pw(int w);
size_t sf_conv0_pairs_bytes(int h, int w);
void sf_conv0_pairs_prep(const uint8_t *rgb, int h, int w, void *buf, int r0, int r1);
#define SF_C0_PAIRS (3 * 9 * 5 * 32)
#define SF_C0_PAIRS_WBYTES (SF_C0_PAIRS * sizeof(int32_t) + 32 * sizeof(float))
void sf_conv0_pairs_weights(const float *w, void *wq);
void sf_oc_fweights(const float *w, void *wt);      /* -> [ci][ky][kx][co] */
/* Index of channel c of pixel p in a tensor of hw pixels in blocks of cb. */
static inline size_t sf_at(int cb, size_t hw, size_t p, int c)
{
    return (size_t)(c / cb) * hw * cb + p * cb + (size_t)(c % cb);
}
/* Layer 15's band row r ([planes][rows][pw] of 4-byte elements, pw from
 * the kernel): zero it whole when the input row y is outside 0..h4-1 and
 * return 0, else zero its border (lpad before x = 0, past w4) and return 1
 * for the caller to fill x = 0..w4-1. */
int sf_oc_band_row(void *band, size_t r, size_t rows, size_t pw, int planes, int lpad, int w4, int y, int h4);
/* The float32 kernels' common slots: layer 0 from the zero-bordered float
 * input and layer 15 from [ci][ky][kx][co] weights. */
void sf_kern_set_conv0_f32(struct sf_cpu_kernels *k, const char *name, sf_conv0_rows_fn rows);
/* The int16 ones' (sf_conv0_pairs_*, conv0_int16 set). */
void sf_kern_set_conv0_int16(struct sf_cpu_kernels *k, const char *name, sf_conv0_rows_fn rows);
void sf_kern_set_oc_f32(struct sf_cpu_kernels *k, const char *name, sf_oc_band_fn band, sf_oc_rows_fn rows);
/* Winograd: the scratch a call needs, and the weights U [64][128][128]
 * from the stored [ky][kx][ci][co] (kern_ref.c). */
static inline size_t sf_wino_scratch_floats(void) { return 2 * SF_WINO_TB * SF_WINO_TS; }
/* The tiles of an h x w layer, and the calls (blocks of SF_WINO_TB) they make */
static inline int sf_wino_ntiles(int h, int w) { return ((h + 5) / 6) * ((w + 5) / 6); }
static inline int sf_wino_nblocks(int h, int w) { return (sf_wino_ntiles(h, w) + SF_WINO_TB - 1) / SF_WINO_TB; }
void sf_wino_weights(const float *w, float *U);
/* Activation buffers (the CPU engine's, the painting networks' arena):
 * 64-byte aligned; from 4 MB up, 2 MB aligned and marked for transparent
 * huge pages, which cuts a first pass's page faults (about 90,000 at 1 MP
 * with 4 KB pages) to a few hundred.  The advice may be refused: 4 KB
 * pages work too.  Freed with free(); NULL when out of memory. */
static inline void *sf_big_alloc(size_t bytes)
{
    void *p;

    bytes = bytes ? (bytes + 63) / 64 * 64 : 64;
    if (bytes < (4u << 20))
        return aligned_alloc(64, bytes);
    bytes = (bytes + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
    if ((p = aligned_alloc(2u << 20, bytes)))
        (void)madvise(p, bytes, MADV_HUGEPAGE);
    return p;
}

/* bfloat16 bits of f, rounded to nearest even. */
static inline uint16_t sf_bf16_bits(float f)
{
    union { float f; uint32_t u; } v = { f };
    return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1)) >> 16);
}

#endif
