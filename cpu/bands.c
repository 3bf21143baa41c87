/* bands.c: the CPU engine's banded pass: a full-size photo in memory that
 * does not grow with it.  The network is run layer by layer over bands of
 * rows; what a later layer needs of an earlier one goes to a scratch file
 * (pread/pwrite, so the page cache holds it, not the process), and the
 * picture is the whole-image pass's (the same kernels and the same
 * statistics, summed in another order: see "Exactness").
 *
 * DESIGN.  Instance norm needs each layer's mean and variance over the
 * whole image before the next layer can read it, so each layer is one
 * pass over the image in bands: it reads its input rows (and a halo) from
 * the scratch file, applies the previous layer's norm (and ReLU, and the
 * residual add) as it loads them, runs the convolution on the band, adds
 * the band's rows to this layer's sums, and writes its raw output rows
 * back.  Seventeen passes in all:
 *   L0 stats   layer 0 over every row, only for its sums (its output,
 *              128 bytes a pixel, is not kept)
 *   L1         layer 0 again on the band and its halo, normed, then layer 1
 *   L2, L3..L12
 *   L13        the residual stage's output, then layer 13
 *   L14 stats  layer 14 over every row, only for its sums
 *   L14+15     layer 14 again with a 4-row halo, normed, then layer 15
 *   output     layer 15's norm, tanh, 8 bits
 * Computing layers 0 and 14 twice costs about 6% and 4% more
 * multiply-adds (network.md: 7.8 and 4.6 of 131 G a megapixel) and keeps
 * 256 bytes a pixel of their outputs off the scratch file.  Bands are q rows at quarter resolution (4q at full
 * resolution); every band of a layer has the same shape, so each oneDNN
 * layer is planned once (rows outside the image are zero rows in the
 * buffer, which is what SAME padding adds), and the residual layers run
 * on q + 2 rows (one halo row each side) and keep the middle q.
 *
 * Memory: one arena, carved anew for each pass (the passes do not
 * overlap), sized from the width and q; q is chosen so that the arena
 * stays near BAND_ARENA_MB whatever the height.  Threads: each pass is
 * one thread at a time here (the engine's lock); the work inside a band
 * is split over OpenMP threads like the whole-image pass's, and oneDNN
 * threads itself.
 *
 * The scratch file: created for one run in $TMPDIR (else /var/tmp, else
 * /tmp) with O_TMPFILE (or mkostemp and unlink), so nothing is left
 * behind, even on a crash; closed at the end of the run.  Byte by byte
 * it is rows of RB = 512 * w2 bytes (128 float32 channels at quarter
 * resolution, w2 = the decoder's width / 4); a tensor's row y sits at
 * its own offset + y * RB and holds, from its start, C/cb groups of W
 * pixels of cb channels ([C/cb][W][cb], cb the channel block of the
 * layer that wrote it; 64 channels at half width fit the same RB).  In
 * rows of RB, with SL = 8 spare rows first:
 *   R1    layer 1's raw output, h1 rows from row SL
 *   R2    layer 2's, over R1 row for row (band p reads R1 from row 2p - 1,
 *         writes R2 rows below p + q)
 *   X_j   residual block j's input, normed: X_0 one row above R2, each
 *         next one a row above the last (X_4 at SL - 5)
 *   R_i   residual layer i's raw output: R_3 from row SL + h2 + 12, each
 *         next one a row above the last
 *   R13   layer 13's raw output, 2 h2 rows of 64 channels at half width:
 *         its even rows over X_4 (row 2r at X_4's row r - 1), its odd
 *         ones over R_12 the same way
 * A layer that writes its output one row above its input never writes
 * a row that a later band still reads: a band reads rows p0 - 1 ..
 * p0 + q, writes p0 .. p0 + q - 1 at p0 - 1 .., and the next band reads
 * from p0 + q - 1 (layer 13 writes two rows for each it reads, one in
 * each of the two tensors it reads).  Layer 15's raw output O (3
 * channels, 4 h2 rows of 12 * w4 bytes) follows the last row, at
 * (2 h2 + 20) RB.  So the file is 76 bytes a pixel, about 3.7 GB at
 * 48 MP.
 * posix_fallocate reserves it first: a full disk fails the run at once
 * (-ENOSPC), before any work.
 *
 * Exactness.  The convolutions are the whole-image pass's kernels on the
 * same values in the same precisions (bf16 inputs of layers 13-15 where
 * the whole-image plan has them), so each output is the same sum, but
 * oneDNN may block a band's rows differently from the whole image's and
 * the norms' sums are added row by row here: bits can differ by float
 * rounding and an 8-bit output by one step.  t_bands holds every output
 * within one step of the whole image, and the oracle on banded images. */
#include "cpu_engine.h"
#include "engine.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The arena's target.  At 8064 pixels wide (48 MP) it gives q = 46 and
 * about 480 MB; narrower images get taller bands, up to BAND_Q_MAX. */
#define BAND_ARENA_MB 512
#define BAND_Q_MAX 64

/* A tensor on the scratch file: H rows of [C/cb][W][cb] float32, row y
 * at off + y * stride, or split in two (off1 > 0): even rows y at off +
 * (y / 2) * stride, odd ones at off1 + (y / 2) * stride. */
struct tensor {
    off_t off, stride;
    int H, W, C, cb;
    off_t off1;
};

static off_t row_at(const struct tensor *t, int y)
{
    return t->off1 ? ((y & 1) ? t->off1 : t->off) + (off_t)(y >> 1) * t->stride : t->off + (off_t)y * t->stride;
}

struct sf_bands {
    int q, k, M;                /* quarter rows per band; layer 13's input rows less one (q + 3);
                                 * layer 14's output rows (4k - 2) */
    int h0, w0, h1, w1, h2, w2, h3, w3, h4, w4, pt1, pt2;
    int cb32, cb64, cb128, cbr; /* channel blocks: layers 0-2's (the configuration's), the residual's */
    int cb2, cbu;               /* layer 2's output; layers 13-14's (bands_try: 128 = the configuration's) */
    int cu128, cu64, cu32;      /* so layer 13's input, its output (14's input), 14's output */
    int bf16;                   /* layers 13 and 14 read bf16 (as the whole-image plan's do) */
    dnnl_primitive_t to16[2];   /* then: layer 13's and 14's normed input into bf16 */
    dnnl_memory_t m16[2][2];    /* their from and to */
    void *I13h, *I14h;          /* the bf16 inputs */
    int wino;                   /* residual layers on our Winograd (else our 3x3, NHWC) */
    int own;                    /* layers 1, 2, 13, 14 on our 3x3 kernel too (no oneDNN JIT: aarch64) */
    off_t RB;                   /* bytes of a scratch row: 128 x w2 floats */
    int fd;                     /* the scratch file while a run lasts, else -1 */
    /* the arena, carved per pass (plan) */
    float *arena;
    void *c0buf;
    float *A0, *I1, *O1, *I2, *O2, *IR, *OR, *TR, *I13, *T13, *O13, *O14, *OO;
    float *rowtmp;              /* per thread: one row of the widest tensor */
    size_t row_floats;
    double *rsum;               /* per row: sums [2][128] */
    double sum[128], sq[128];   /* the pass's sums */
    double io;                  /* seconds in scratch reads and writes this run (profile) */
    float a[SF_LAYERS][128], b[SF_LAYERS][128];     /* each layer's norm, once known */
};

/* ---- geometry and plan ---------------------------------------------------- */

int sf_bands_rows(const struct sf_engine_impl *e, int h, int w)
{
    const char *env = getenv("STYLEFS_CPU_BANDS");
    size_t h4 = 4 * (size_t)((((h + 1) / 2) + 1) / 2), w4 = 4 * (size_t)((((w + 1) / 2) + 1) / 2);
    int q;

    (void)e;
    if (env && *env) {          /* "0": never; "N": bands of N quarter rows */
        q = atoi(env);
        return q < 0 ? 0 : q > BAND_Q_MAX ? BAND_Q_MAX : q;
    }
    if (h4 * w4 < SF_BANDS_FROM_PIXELS)    /* the whole-image pass: about 1.1 GB there */
        return 0;
    /* the arena grows by about 1300 bytes a full-resolution column per
     * quarter row (layer 0's and 1's buffers: bands_plan) */
    q = (int)(((size_t)BAND_ARENA_MB << 20) / (1300 * w4));
    q -= (q + 2) % 6;           /* q + 2 rows: whole Winograd tiles */
    return q < 4 ? 4 : q > BAND_Q_MAX ? BAND_Q_MAX : q;
}

/* The bf16 reorders of layers 13 and 14's inputs, if planned. */
static void free_to16(struct sf_bands *b)
{
    for (int i = 0; i < 2; i++) {
        if (b->to16[i])
            dnnl_primitive_destroy(b->to16[i]);
        for (int j = 0; j < 2; j++)
            if (b->m16[i][j])
                dnnl_memory_destroy(b->m16[i][j]);
        b->to16[i] = NULL;
        b->m16[i][0] = b->m16[i][1] = NULL;
    }
}

void sf_bands_free(struct sf_engine_impl *e)
{
    struct sf_bands *b = e->bands;

    if (!b)
        return;
    if (b->fd >= 0)
        close(b->fd);
    free_to16(b);
    free(b->arena);
    free(b->rowtmp);
    free(b->rsum);
    free(b);
    e->bands = NULL;
}

/* Floats of a [C][rows][w] band, rounded to a cache line. */
static size_t fl(int C, int rows, int w) { return ((size_t)C * rows * w + 15) / 16 * 16; }

/* The configurations the banded pass takes: our Winograd residual (its
 * channel block) or, without Winograd, the residual stage NHWC on our 3x3
 * kernel, with layers 1, 2, 13 and 14 on oneDNN; else (STYLEFS_CPU_DNNL=0,
 * or no oneDNN JIT kernels: aarch64 without SVE) all of them on our 3x3
 * kernel, NHWC. */
static int cfg_fits(const struct sf_engine_impl *e, const struct plan_cfg *c)
{
    if (c->own)                 /* the last resort: all on our 3x3 kernel, NHWC */
        return 1;
    if (e->dnnl_off)
        return 0;
    if (c->own_wino)
        return e->winograd && e->k.wino_tiles && e->k.wino_cb == c->cb_res && e->k.level >= SF_CPU_AVX2;
    return !c->winograd && c->cb_res == 128;
}

/* Layers 1, 2, 13 and 14 on our 3x3 kernel, for bands: the convolutions
 * read rows as given (pt 0), the transposed ones compute from the band's
 * first input row a, whose output rows start at 2a: layer 13 keeps rows
 * 1 .. 2k and layer 14 rows 2 .. M + 1, written from the first row of
 * their buffers (the rows before them are room in the arena, unused). */
static void plan_own(struct sf_engine_impl *e, struct sf_bands *b)
{
    int q = b->q, k = b->k, pl1, pl2, o, a;

    sf_same_pad(b->w0, 3, 2, &o, &pl1, &a);
    sf_same_pad(b->w1, 3, 2, &o, &pl2, &a);
    e->c3[1] = (struct sf_conv3_shape){ .hin = 4 * q + 1, .win = b->w0, .cin = 32, .hout = 2 * q, .wout = b->w1,
                                        .cout = 64, .stride = 2, .pt = 0, .pl = pl1 };
    e->c3[2] = (struct sf_conv3_shape){ .hin = 2 * q + 1, .win = b->w1, .cin = 64, .hout = q, .wout = b->w2,
                                        .cout = 128, .stride = 2, .pt = 0, .pl = pl2 };
    e->c3[13] = (struct sf_conv3_shape){ .hin = k + 1, .win = b->w2, .cin = 128, .hout = 2 * k + 1, .wout = b->w3,
                                         .cout = 64, .stride = 2, .deconv = 1 };
    e->c3[14] = (struct sf_conv3_shape){ .hin = 2 * k, .win = b->w3, .cin = 64, .hout = b->M + 2, .wout = b->w4,
                                         .cout = 32, .stride = 2, .deconv = 1 };
    e->c3in[1] = b->I1;
    e->c3out[1] = b->O1;
    e->c3in[2] = b->I2;
    e->c3out[2] = b->O2;
    e->c3in[13] = b->I13;
    e->c3out[13] = b->O13 - (size_t)b->w3 * 64;
    e->c3in[14] = b->O13;
    e->c3out[14] = b->O14 - (size_t)2 * b->w4 * 32;
    for (int i = 1; i < SF_LAYERS - 1; i++)
        if (i < 3 || i > 12)
            snprintf(e->impl[i], sizeof e->impl[i], "stylefs %s", e->k.conv3_name);
}

/* Run layer 1, 2, 13 or 14 on its band.  Returns 0 or -errno (oneDNN's). */
static int band_layer(struct sf_engine_impl *e, int i)
{
    const struct sf_conv3_shape *s = &e->c3[i];
    int y0 = i == 13 ? 1 : i == 14 ? 2 : 0;

    if (!e->bands->own)
        return sf_plan_exec_layer(e, i);
#pragma omp parallel for schedule(dynamic, 1)
    for (int y = y0; y < s->hout; y++)
        e->k.conv3_rows(e->c3in[i], e->c3w[i], e->c3out[i], s, y, y + 1);
    return 0;
}

static int bands_try(struct sf_engine_impl *e, struct sf_bands *b, const struct plan_cfg *cfg)
{
    int q = b->q, M = b->M, oh, ow, rc;
    static const int none[2] = { 0, 0 }, cut[2] = { 2, 1 }, cut13[2] = { 1, 2 };
    size_t need = 0, n1, n2, nr, n13, nmax, c0;

    e->cfg = cfg;
    e->bf16 = 0;
    b->cb32 = cfg->cb_32;
    b->cb64 = cfg->cb_64;
    b->cb128 = cfg->cb_128;
    b->cbr = cfg->cb_res;
    b->wino = cfg->own_wino;
    b->own = cfg->own;
    /* the passes' buffers, each pass from the arena's start */
    c0 = (e->k.conv0_buf_bytes(4 * q + 9, b->w0) + 63) / 64 * 16;     /* floats */
    n1 = c0 + fl(32, 4 * q + 9, b->w0) + fl(32, 4, b->w0) + fl(32, 4 * q + 1, b->w0) + fl(64, 2 * q, b->w1);
    n2 = fl(64, 2 * q + 1, b->w1) + fl(128, q, b->w2);
    nr = 3 * fl(128, q + 2, b->w2);
    /* layers 13-15 (bf16 inputs take half their float size) */
    n13 = 2 * fl(128, b->k + 1, b->w2) + fl(64, b->k + 1, b->w2) + fl(64, 2 * b->k, b->w3) +
          fl(32, 2 * b->k, b->w3) + fl(32, M, b->w4) + fl(3, M, b->w4);
    nmax = n1 > n2 ? n1 : n2;
    nmax = nmax > nr ? nmax : nr;
    nmax = nmax > n13 ? nmax : n13;
    if (!b->arena && !(b->arena = sf_big_alloc(nmax * sizeof(float))))
        return -ENOMEM;
    b->c0buf = b->arena;
    b->A0 = b->arena + c0;
    b->I1 = b->A0 + fl(32, 4 * q + 9, b->w0) + fl(32, 4, b->w0);     /* 4 rows of room before (conv0_band) */
    b->O1 = b->I1 + fl(32, 4 * q + 1, b->w0);
    b->I2 = b->arena;
    b->O2 = b->I2 + fl(64, 2 * q + 1, b->w1);
    b->IR = b->arena;
    b->OR = b->IR + fl(128, q + 2, b->w2);
    b->TR = b->OR + fl(128, q + 2, b->w2);
    b->I13 = b->arena;
    b->T13 = b->I13 + fl(128, b->k + 1, b->w2);
    b->I13h = b->T13 + fl(128, b->k + 1, b->w2);
    b->O13 = (float *)b->I13h + fl(64, b->k + 1, b->w2);
    b->I14h = b->O13 + fl(64, 2 * b->k, b->w3);
    b->O14 = (float *)b->I14h + fl(32, 2 * b->k, b->w3);
    b->OO = b->O14 + fl(32, M, b->w4);
    sf_info("cpu bands: %d rows a band at full size, arena %zu MB", 4 * q, nmax * sizeof(float) >> 20);

    if (b->own) {
        b->cb2 = b->cbu = b->cu128 = 128;
        b->cu64 = 64;
        b->cu32 = 32;
        b->bf16 = 0;
        plan_own(e, b);
        goto residual;
    }
    if ((rc = sf_plan_layer(e, 1, b->I1, 4 * q + 1, b->w0, b->cb32, b->O1, b->cb64, 0, 0, none, &oh, &ow, &need)))
        return rc;
    if (oh != 2 * q || ow != b->w1)
        return -EINVAL;
    /* layer 2 straight into the residual's block, and layers 13 and 14 in
     * it, where oneDNN has a vector kernel for that (no conversion as the
     * rows are loaded); else the configuration's */
    b->cb2 = b->cbr;
    if ((rc = sf_plan_layer(e, 2, b->I2, 2 * q + 1, b->w1, b->cb64, b->O2, b->cb2, 0, 0, none, &oh, &ow, &need)) ==
        -ENOTSUP) {
        sf_plan_free_layer(e, 2);
        b->cb2 = b->cb128;
        rc = sf_plan_layer(e, 2, b->I2, 2 * q + 1, b->w1, b->cb64, b->O2, b->cb2, 0, 0, none, &oh, &ow, &need);
    }
    if (rc)
        return rc;
    if (oh != q || ow != b->w2)
        return -EINVAL;
    /* layers 13 and 14 in the residual's block, else the configuration's;
     * in bf16 where the whole-image plan would be (AVX512_BF16), else
     * float32 */
    b->bf16 = e->k.oc16_rows && (size_t)b->h4 * b->w4 >= BF16_MIN_PIXELS;
    for (int t = 0; t < 4; t++) {
        b->cbu = t < 2 ? b->cbr : 128;
        b->cu128 = b->cbu == 128 ? b->cb128 : b->cbu;
        b->cu64 = b->cbu == 128 ? b->cb64 : b->cbu;
        b->cu32 = b->cbu == 128 ? b->cb32 : b->cbu;
        if (t % 2 == 1 && !b->bf16)
            continue;
        int h16 = t % 2 == 0 && b->bf16;
        if (h16 && ((rc = sf_plan_reorder(e, 128, b->k + 1, b->w2, b->cu128, b->I13, b->cu128, 1, b->I13h,
                                          &b->to16[0], &b->m16[0][0], &b->m16[0][1])) ||
                    (rc = sf_plan_reorder(e, 64, 2 * b->k, b->w3, b->cu64, b->O13, b->cu64, 1, b->I14h, &b->to16[1],
                                          &b->m16[1][0], &b->m16[1][1]))))
            return rc;
        if ((rc = sf_plan_layer(e, 13, h16 ? b->I13h : b->I13, b->k + 1, b->w2, b->cu128, b->O13, b->cu64, 0, h16,
                                cut13, &oh, &ow, &need)) == 0 &&
            (oh != 2 * b->k || ow != b->w3 ? (rc = -EINVAL) : 0) == 0 &&
            (rc = sf_plan_layer(e, 14, h16 ? b->I14h : b->O13, 2 * b->k, b->w3, b->cu64, b->O14, b->cu32, 0, h16,
                                cut, &oh, &ow, &need)) == 0) {
            b->bf16 = h16;
            break;
        }
        sf_plan_free_layer(e, 13);
        sf_plan_free_layer(e, 14);
        free_to16(b);
        if (rc != -ENOTSUP || t == 3)
            return rc;
    }
    if (oh != M || ow != b->w4)
        return -EINVAL;
residual:
    for (int i = 3; i <= 12; i++) {
        e->c3[i] = (struct sf_conv3_shape){ .hin = q + 2, .win = b->w2, .cin = 128, .hout = q + 2,
                                            .wout = b->w2, .cout = 128, .stride = 1, .pt = 1, .pl = 1 };
        e->flops[i] = 2.0 * 9 * 128 * 128 * (double)(q + 2) * b->w2;
        snprintf(e->impl[i], sizeof e->impl[i], "stylefs %s", b->wino ? e->k.wino_name : e->k.conv3_name);
    }
    snprintf(e->impl[0], sizeof e->impl[0], "stylefs %s", e->k.conv0_name);
    snprintf(e->impl[15], sizeof e->impl[15], "stylefs %s", b->bf16 ? e->k.oc16_name : e->k.oc_name);
    e->nthreads = omp_get_max_threads();
    if (b->wino && (!(e->wU = sf_big_alloc((size_t)10 * SF_WINO_P * 128 * 128 * sizeof(float))) ||
                    !(e->wscratch = sf_big_alloc(sf_wino_scratch_floats() * (size_t)e->nthreads * sizeof(float)))))
        return -ENOMEM;
    e->band_floats = (b->bf16 ? e->k.oc16_band : e->k.oc_band)(b->w4);
    if (e->band_floats && !(e->band = sf_big_alloc(e->band_floats * (size_t)e->nthreads * sizeof(float))))
        return -ENOMEM;
    if (need) {
        if (!(e->scratch = aligned_alloc(64, (need + 63) / 64 * 64)))
            return -ENOMEM;
        for (int i = 1; i < SF_LAYERS - 1; i++)
            if (e->L[i].scratch)
                dnnl_memory_set_data_handle(e->L[i].scratch, e->scratch);
    }
    /* one row of the widest tensor: 32 x w4, 64 x w3, 128 x w2 floats */
    b->row_floats = (size_t)32 * b->w4;
    if (!(b->rowtmp = sf_big_alloc(b->row_floats * (size_t)e->nthreads * sizeof(float))) ||
        !(b->rsum = malloc((size_t)(M > 4 * q + 1 ? M : 4 * q + 1) * 256 * sizeof(double))))
        return -ENOMEM;
    return 0;
}

/* Plan bands of q quarter rows for h0 x w0 in the first configuration
 * that suits (cfg_fits) and in which oneDNN has a vector implementation
 * of layers 1, 2, 13 and 14, else on our own kernels.  Returns 0,
 * -ENOTSUP (none planned: not expected, the own configuration always
 * plans), -ENOMEM, -EIO. */
static int bands_plan(struct sf_engine_impl *e, int h0, int w0, int q)
{
    int rc = -ENOTSUP, after;

    for (int c = 0; c < sf_plan_ncfgs && rc == -ENOTSUP; c++) {
        struct sf_bands *b;
        if (!cfg_fits(e, &sf_plan_cfgs[c]))
            continue;
        sf_cpu_plan_free(e);
        if (!(b = e->bands = calloc(1, sizeof *b)))
            return -ENOMEM;
        b->fd = -1;
        b->q = q;
        b->k = q + 3;
        b->M = 4 * b->k - 2;
        b->h0 = h0;
        b->w0 = w0;
        sf_same_pad(h0, 3, 2, &b->h1, &b->pt1, &after);
        sf_same_pad(w0, 3, 2, &b->w1, &after, &after);
        sf_same_pad(b->h1, 3, 2, &b->h2, &b->pt2, &after);
        sf_same_pad(b->w1, 3, 2, &b->w2, &after, &after);
        b->h3 = 2 * b->h2;
        b->w3 = 2 * b->w2;
        b->h4 = 2 * b->h3;
        b->w4 = 2 * b->w3;
        b->RB = (off_t)b->w2 * 128 * (off_t)sizeof(float);
        rc = bands_try(e, b, &sf_plan_cfgs[c]);
        if (rc == -ENOTSUP)
            sf_debug("cpu bands %dx%d: layouts %s refused", w0, h0, sf_plan_cfgs[c].name);
    }
    if (rc) {
        sf_cpu_plan_free(e);
        return rc;
    }
    e->h = h0;
    e->w = w0;
    sf_info("cpu plan %dx%d: in bands of %d rows, %s kernels, layouts %s, layers 13-15 in %s", w0, h0, 4 * q,
            sf_cpu_level_name(e->k.level), e->cfg->name, e->bands->bf16 ? "bf16" : "float32");
    for (int i = 0; i < SF_LAYERS; i++)
        sf_info("cpu plan: layer %2d: %s", i, e->impl[i]);
    return 0;
}

/* ---- rows in and out -------------------------------------------------------- */

static void zero_rows(float *x, int dh, int r0, int n, int C, int cb, int w)
{
    for (int g = 0; g < C / cb; g++)
        memset(x + ((size_t)g * dh + r0) * w * cb, 0, (size_t)n * w * cb * sizeof(float));
}

static void copy_rows(float *d, int dh, int dr, const float *s, int sh, int sr, int n, int C, int cb, int w)
{
    for (int g = 0; g < C / cb; g++)
        memcpy(d + ((size_t)g * dh + dr) * w * cb, s + ((size_t)g * sh + sr) * w * cb,
               (size_t)n * w * cb * sizeof(float));
}

/* y = a x + b on rows r0..r0+n-1 of x ([C/cb][dh][w][cb]): then ReLU, or
 * res += y (res, same shape). */
static void norm_rows(const struct sf_engine_impl *e, float *x, int dh, int r0, int n, int C, int cb, int w,
                      const float *a, const float *b, int relu, float *res)
{
    int G = C / cb;
    size_t p0 = (size_t)r0 * w, np = (size_t)n * w, chunk = 4096, nc = (np + chunk - 1) / chunk;

    if (n <= 0)
        return;
#pragma omp parallel for schedule(static) collapse(2)
    for (int g = 0; g < G; g++)
        for (size_t c = 0; c < nc; c++) {
            size_t off = (size_t)g * dh * w * cb, q0 = p0 + c * chunk, q1 = q0 + chunk < p0 + np ? q0 + chunk : p0 + np;
            e->k.norm_apply(x + off, cb, q0, q1, a + g * cb, b + g * cb, relu, res ? res + off : NULL);
        }
}

static int pio(int fd, void *buf, size_t len, off_t off, int wr)
{
    while (len) {
        ssize_t n = wr ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;        /* read past what was written: a bug, not a disk */
        buf = (char *)buf + n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* Rows y0..y0+n-1 of t into rows r0.. of x ([C/cbd][dh][W][cbd]), zero
 * rows outside 0..H-1, converting the channel block.  0 or -errno. */
static int load_rows(struct sf_engine_impl *e, const struct tensor *t, int y0, int n, float *x, int dh, int r0,
                     int cbd)
{
    struct sf_bands *b = e->bands;
    size_t rowf = (size_t)t->C * t->W;
    double t0 = omp_get_wtime();
    int rc = 0;

#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *tmp = b->rowtmp + (size_t)omp_get_thread_num() * b->row_floats;
        int y = y0 + i, r;
        if (y < 0 || y >= t->H) {
            zero_rows(x, dh, r0 + i, 1, t->C, cbd, t->W);
            continue;
        }
        if ((r = pio(b->fd, tmp, rowf * sizeof(float), row_at(t, y), 0))) {
#pragma omp critical(bands_rc)
            rc = r;
            continue;
        }
        if (cbd == t->cb) {
            for (int g = 0; g < t->C / cbd; g++)
                memcpy(x + ((size_t)g * dh + r0 + i) * t->W * cbd, tmp + (size_t)g * t->W * cbd,
                       (size_t)t->W * cbd * sizeof(float));
        } else {
            int run = cbd < t->cb ? cbd : t->cb;   /* channels contiguous in both */
            for (int p = 0; p < t->W; p++)
                for (int c = 0; c < t->C; c += run)
                    memcpy(x + ((size_t)(c / cbd) * dh + r0 + i) * t->W * cbd + (size_t)p * cbd + c % cbd,
                           tmp + (size_t)(c / t->cb) * t->W * t->cb + (size_t)p * t->cb + c % t->cb,
                           (size_t)run * sizeof(float));
        }
    }
    b->io += omp_get_wtime() - t0;
    return rc;
}

/* Rows r0..r0+n-1 of x ([C/cb][dh][W][cb], cb = t->cb) to rows y0.. of t.
 * 0 or -errno. */
static int store_rows(struct sf_engine_impl *e, const struct tensor *t, int y0, int n, const float *x, int dh,
                      int r0)
{
    struct sf_bands *b = e->bands;
    size_t rowf = (size_t)t->C * t->W;
    double t0 = omp_get_wtime();
    int rc = 0;

#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *tmp = b->rowtmp + (size_t)omp_get_thread_num() * b->row_floats;
        int r;
        for (int g = 0; g < t->C / t->cb; g++)
            memcpy(tmp + (size_t)g * t->W * t->cb, x + ((size_t)g * dh + r0 + i) * t->W * t->cb,
                   (size_t)t->W * t->cb * sizeof(float));
        if ((r = pio(b->fd, tmp, rowf * sizeof(float), row_at(t, y0 + i), 1))) {
#pragma omp critical(bands_rc)
            rc = r;
        }
    }
    b->io += omp_get_wtime() - t0;
    return rc;
}

/* Add rows r0..r0+n-1 of x ([C/cb][dh][w][cb]) to the pass's sums: each
 * row around its first pixel, then in order (the same sums whatever the
 * threads). */
static void sum_rows(struct sf_engine_impl *e, const float *x, int dh, int r0, int n, int C, int cb, int w)
{
    struct sf_bands *b = e->bands;

#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        double *ls = b->rsum + (size_t)i * 256, *lq = ls + 128;
        for (int g = 0; g < C / cb; g++) {
            const float *xg = x + (size_t)g * dh * w * cb;
            size_t p0 = (size_t)(r0 + i) * w;
            double s[128] = { 0 }, q[128] = { 0 }, np = w;
            float shift[128];
            memcpy(shift, xg + p0 * cb, (size_t)cb * sizeof(float));
            e->k.norm_sums(xg, cb, p0, p0 + (size_t)w, shift, s, q);
            for (int c = 0; c < cb; c++) {
                ls[g * cb + c] = s[c] + np * shift[c];
                lq[g * cb + c] = q[c] + 2.0 * shift[c] * s[c] + np * shift[c] * shift[c];
            }
        }
    }
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) {
            b->sum[c] += b->rsum[(size_t)i * 256 + c];
            b->sq[c] += b->rsum[(size_t)i * 256 + 128 + c];
        }
}


static void sums_reset(struct sf_bands *b)
{
    memset(b->sum, 0, sizeof b->sum);
    memset(b->sq, 0, sizeof b->sq);
}

/* Layer i's norm from the pass's sums over hw pixels. */
static void sums_close(struct sf_bands *b, const struct sf_model *m, int i, size_t hw)
{
    sf_cpu_coeffs(b->sum, b->sq, NULL, hw, sf_net[i].cout, m->gamma[i], m->beta[i], b->a[i], b->b[i]);
}

/* ---- the passes --------------------------------------------------------------- */

/* Layer 0 on rgb rows ya..yb-1 (inside the image) into A0, the rows of a
 * sub-image with 4 more each side where the image has them: returns the
 * row of A0 that holds ya, and A0's height in *hs.  With to (NHWC only,
 * where the height is not part of the layout) the rows go straight to
 * to's rows from to_row on instead (to has 4 rows of room before it). */
static int conv0_band(struct sf_engine_impl *e, const uint8_t *rgb, int ya, int yb, int *hs, float *to, int to_row)
{
    struct sf_bands *b = e->bands;
    int sa = ya - 4 > 0 ? ya - 4 : 0, sb = yb + 4 < b->h0 ? yb + 4 : b->h0, h = sb - sa, w = b->w0;
    const uint8_t *sub = rgb + (size_t)sa * w * 3;

#pragma omp parallel for schedule(static)
    for (int r = 0; r < h + 8; r++)
        e->k.conv0_prep(sub, h, w, b->c0buf, r, r + 1);
    float *out = to ? to + ((ptrdiff_t)to_row - (ya - sa)) * w * 32 : b->A0;
#pragma omp parallel for schedule(dynamic, 1)
    for (int y = ya - sa; y < yb - sa; y += 2)
        e->k.conv0_rows(b->c0buf, h, w, e->w0q, out, b->cb32, y, y + 2 < yb - sa ? y + 2 : yb - sa);
    *hs = h;
    return ya - sa;
}

/* Layer i's input band: rows y0..y0+n-1 of tensor t, normed with layer
 * i-1's coefficients (ReLU when that layer has one), into x. */
static int load_normed(struct sf_engine_impl *e, const struct tensor *t, int y0, int n, float *x, int cbd, int prev)
{
    struct sf_bands *b = e->bands;
    int lo = y0 < 0 ? 0 : y0, hi = y0 + n < t->H ? y0 + n : t->H, rc;

    if ((rc = load_rows(e, t, y0, n, x, n, 0, cbd)))
        return rc;
    norm_rows(e, x, n, lo - y0, hi - lo, t->C, cbd, t->W, b->a[prev], b->b[prev], sf_net[prev].relu, NULL);
    return 0;
}

static int run_conv(struct sf_engine_impl *e, int i, const float *in, float *out)
{
    struct sf_bands *b = e->bands;
    const struct sf_conv3_shape *s = &e->c3[i];

    if (!b->wino) {
#pragma omp parallel for schedule(dynamic, 1)
        for (int y = 0; y < s->hout; y++)
            e->k.conv3_rows(in, e->c3w[i], out, s, y, y + 1);
        return 0;
    }
    int nt = sf_wino_ntiles(s->hin, s->win), nb = sf_wino_nblocks(s->hin, s->win);
    const float *U = e->wU + (size_t)(i - 3) * SF_WINO_P * 128 * 128;
#pragma omp parallel
    {
        float *scr = e->wscratch + (size_t)omp_get_thread_num() * sf_wino_scratch_floats();
#pragma omp for schedule(dynamic, 1)
        for (int k = 0; k < nb; k++) {
            int t0 = k * SF_WINO_TB, t1 = t0 + SF_WINO_TB < nt ? t0 + SF_WINO_TB : nt;
            e->k.wino_tiles(in, s->hin, s->win, b->cbr, U, out, scr, t0, t1, NULL, NULL, NULL, NULL);
        }
    }
    return 0;
}

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define TRY(call)                                                              \
    do {                                                                       \
        if ((rc = (call)))                                                     \
            goto out;                                                          \
    } while (0)
#define CANCEL()                                                               \
    do {                                                                       \
        if (sf_cancelled(cancel)) {                                            \
            rc = -ECANCELED;                                                   \
            goto out;                                                          \
        }                                                                      \
    } while (0)

/* The scratch file, size bytes reserved: in $TMPDIR, else /var/tmp, else
 * /tmp, a file nobody else sees (O_TMPFILE, or mkostemp and unlink),
 * gone when closed.  Returns the descriptor, or -errno (logged, with the
 * folder). */
static int scratch_open(off_t size)
{
    const char *env = getenv("TMPDIR"), *dirs[3] = { env && *env ? env : NULL, "/var/tmp", "/tmp" };
    char path[4096];
    int fd = -1, rc = -ENOENT;
    const char *dir = NULL;

    for (int i = 0; i < 3 && fd < 0; i++) {
        if (!(dir = dirs[i]))
            continue;
        fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
            snprintf(path, sizeof path, "%s/stylefs-bands-XXXXXX", dir);
            if ((fd = mkostemp(path, O_CLOEXEC)) >= 0)
                unlink(path);
        }
        if (fd < 0) {
            rc = -errno;
            sf_warn("cpu bands: no scratch file in %s: %s", dir, strerror(-rc));
        }
        if (dirs[0] && fd < 0)
            break;              /* $TMPDIR named and refused: say so, do not go elsewhere */
    }
    if (fd < 0)
        return rc;
    if ((rc = posix_fallocate(fd, 0, size)) && rc != EOPNOTSUPP && rc != EINVAL) {
        sf_err("cpu bands: cannot reserve %lld MB of scratch in %s: %s", (long long)(size >> 20), dir, strerror(rc));
        close(fd);
        return -rc;
    }
    sf_debug("cpu bands: %lld MB of scratch in %s", (long long)(size >> 20), dir);
    return fd;
}

/* Layer 14 for full-resolution rows s0 .. s0 + M - 1 (s0 a multiple of
 * 4) into O14, from layer 13's raw rows s0/2 - 1 .. s0/2 + 2k - 2,
 * normed (zero outside the image).  0 or -errno. */
static int l14_band(struct sf_engine_impl *e, const struct tensor *R13, int s0)
{
    struct sf_bands *b = e->bands;
    int rc;

    if ((rc = load_normed(e, R13, s0 / 2 - 1, 2 * b->k, b->O13, b->cu64, 13)))
        return rc;
    if (b->bf16 && (rc = sf_plan_exec_reorder(e, b->to16[1], b->m16[1][0], b->m16[1][1])))
        return rc;
    return band_layer(e, 14);
}

int sf_bands_run(struct sf_engine_impl *e, const struct sf_model *m, const uint8_t *rgb, int w, int h,
                 uint8_t *out, int q, const sf_cancel_flag *cancel)
{
    struct sf_bands *b = e->bands;
    int rc = 0, hs;

    if (!b || e->h != h || e->w != w || b->q != q) {
        if ((rc = bands_plan(e, h, w, q)))
            return rc;
        b = e->bands;
    }
    if ((rc = sf_cpu_load_weights(e, m)))
        return rc;
    if (!b->wino)
        for (int i = 3; i <= 12; i++)
            e->c3w[i] = m->weights[i];
    /* the scratch file's rows (the DESIGN above): SL spare rows first */
    enum { SL = 8 };
    off_t RB = b->RB, rtop = SL + b->h2 + 12;
    if ((rc = b->fd = scratch_open((rtop + b->h2) * RB + (off_t)b->h4 * b->w4 * 3 * (off_t)sizeof(float))) < 0)
        return rc;
    rc = 0;
    struct tensor R1 = { SL * RB, RB, b->h1, b->w1, 64, b->cb64, 0 }, R2 = { SL * RB, RB, b->h2, b->w2, 128, b->cb2, 0 },
                  S = { (SL - 1) * RB, RB, b->h2, b->w2, 128, b->cbr, 0 },
                  R = { rtop * RB, RB, b->h2, b->w2, 128, b->cbr, 0 },
                  O = { (rtop + b->h2) * RB, (off_t)b->w4 * 3 * (off_t)sizeof(float), b->h4, b->w4, 3, 3, 0 };
    double t0 = omp_get_wtime(), tp[SF_LAYERS + 2] = { 0 }, tio[SF_LAYERS + 2] = { 0 };

    b->io = 0;
    int F = 4 * q + 1, k = b->k, M = b->M;

    /* L0 stats: layer 0 on every row, for its sums */
    sums_reset(b);
    for (int y = 0; y < b->h0; y += F) {
        int yb = MIN(y + F, b->h0), r;
        CANCEL();
        r = conv0_band(e, rgb, y, yb, &hs, NULL, 0);
        sum_rows(e, b->A0, hs, r, yb - y, 32, b->cb32, b->w0);
    }
    sums_close(b, m, 0, (size_t)b->h0 * b->w0);
    tp[0] = omp_get_wtime();
    tio[0] = b->io;

    /* L1: layer 0 again on the band's rows, normed, then layer 1 */
    sums_reset(b);
    for (int o0 = 0; o0 < b->h1; o0 += 2 * q) {
        int y0 = 2 * o0 - b->pt1, ya = MAX(y0, 0), yb = MIN(y0 + F, b->h0), n = MIN(2 * q, b->h1 - o0), r;
        CANCEL();
        zero_rows(b->I1, F, 0, ya - y0, 32, b->cb32, b->w0);
        zero_rows(b->I1, F, yb - y0, y0 + F - yb, 32, b->cb32, b->w0);
        if (b->cb32 == 32) {    /* NHWC: layer 0 writes layer 1's input itself */
            conv0_band(e, rgb, ya, yb, &hs, b->I1, ya - y0);
        } else {
            r = conv0_band(e, rgb, ya, yb, &hs, NULL, 0);
            copy_rows(b->I1, F, ya - y0, b->A0, hs, r, yb - ya, 32, b->cb32, b->w0);
        }
        norm_rows(e, b->I1, F, ya - y0, yb - ya, 32, b->cb32, b->w0, b->a[0], b->b[0], 1, NULL);
        TRY(band_layer(e, 1));
        sum_rows(e, b->O1, 2 * q, 0, n, 64, b->cb64, b->w1);
        TRY(store_rows(e, &R1, o0, n, b->O1, 2 * q, 0));
    }
    sums_close(b, m, 1, (size_t)b->h1 * b->w1);
    tp[1] = omp_get_wtime();
    tio[1] = b->io;

    /* L2, its rows over layer 1's as they are read (row p over row p of
     * R1; the bands to come read from row 2p + 2q - 1 on) */
    sums_reset(b);
    for (int p0 = 0; p0 < b->h2; p0 += q) {
        int n = MIN(q, b->h2 - p0);
        CANCEL();
        TRY(load_normed(e, &R1, 2 * p0 - b->pt2, 2 * q + 1, b->I2, b->cb64, 1));
        TRY(band_layer(e, 2));
        sum_rows(e, b->O2, q, 0, n, 128, b->cb2, b->w2);
        TRY(store_rows(e, &R2, p0, n, b->O2, q, 0));
    }
    sums_close(b, m, 2, (size_t)b->h2 * b->w2);
    tp[2] = omp_get_wtime();
    tio[2] = b->io;

    /* L3..L12.  Each writes its raw output over its input, one row lower
     * (row p where row p - 1 was: the band reads p0 - 1 .. p0 + q, writes
     * p0 .. p0 + q - 1, and the next reads from p0 + q - 1 on), and
     * block j's first layer writes the block's input X_j over X_{j-1} the
     * same way (S). */
    for (int i = 3; i <= 12; i++) {
        struct tensor in = i == 3 ? R2 : R, to = R;
        int j = (i - 3) / 2;
        if (i > 3)
            to.off -= RB;
        sums_reset(b);
        for (int p0 = 0; p0 < b->h2; p0 += q) {
            int n = MIN(q, b->h2 - p0), y0 = p0 - 1, lo = MAX(y0, 0), hi = MIN(y0 + q + 2, b->h2);
            struct tensor Sto = S;
            CANCEL();
            if (i % 2 && j > 0) {       /* X_j = X_{j-1} + IN(R_{i-1}) */
                TRY(load_rows(e, &S, y0, q + 2, b->IR, q + 2, 0, b->cbr));
                TRY(load_rows(e, &in, y0, q + 2, b->TR, q + 2, 0, b->cbr));
                norm_rows(e, b->TR, q + 2, lo - y0, hi - lo, 128, b->cbr, b->w2, b->a[i - 1], b->b[i - 1], 0, b->IR);
                Sto.off -= RB;
            } else {
                TRY(load_normed(e, &in, y0, q + 2, b->IR, b->cbr, i - 1));
            }
            if (i % 2)
                TRY(store_rows(e, &Sto, p0, n, b->IR, q + 2, 1));
            TRY(run_conv(e, i, b->IR, b->OR));
            sum_rows(e, b->OR, q + 2, 1, n, 128, b->cbr, b->w2);
            TRY(store_rows(e, &to, p0, n, b->OR, q + 2, 1));
        }
        if (i % 2 && j > 0)
            S.off -= RB;
        R = to;
        sums_close(b, m, i, (size_t)b->h2 * b->w2);
        tp[i] = omp_get_wtime();
        tio[i] = b->io;
    }

    /* L13: X_5 = X_4 + IN(R12), then layer 13.  Its raw output, two half
     * rows for each quarter row read, goes over X_4 (even rows) and R12
     * (odd ones), one row above: the band reads a .. a + k of both and
     * writes half rows up to 2a + 2k, that is below a + k in each. */
    struct tensor R13 = { S.off - RB, RB, b->h3, b->w3, 64, b->cu64, R.off - RB };
    sums_reset(b);
    for (int a = -1; 2 * a + 1 < b->h3; a += k) {     /* half rows 2a + 1 .. 2a + 2k */
        int lo = MAX(a, 0), hi = MIN(a + k + 1, b->h2);
        int o0 = 2 * a + 1, olo = MAX(o0, 0), ohi = MIN(o0 + 2 * k, b->h3);
        CANCEL();
        TRY(load_rows(e, &S, a, k + 1, b->I13, k + 1, 0, b->cu128));
        TRY(load_rows(e, &R, a, k + 1, b->T13, k + 1, 0, b->cu128));
        norm_rows(e, b->T13, k + 1, lo - a, hi - lo, 128, b->cu128, b->w2, b->a[12], b->b[12], 0, b->I13);
        if (b->bf16)
            TRY(sf_plan_exec_reorder(e, b->to16[0], b->m16[0][0], b->m16[0][1]));
        TRY(band_layer(e, 13));
        sum_rows(e, b->O13, 2 * k, olo - o0, ohi - olo, 64, b->cu64, b->w3);
        TRY(store_rows(e, &R13, olo, ohi - olo, b->O13, 2 * k, olo - o0));
    }
    sums_close(b, m, 13, (size_t)b->h3 * b->w3);
    tp[13] = omp_get_wtime();
    tio[13] = b->io;

    /* L14 stats, in bands of 4k - 4 rows (of the M computed) */
    sums_reset(b);
    for (int s0 = 0; s0 < b->h4; s0 += 4 * k - 4) {
        CANCEL();
        TRY(l14_band(e, &R13, s0));
        sum_rows(e, b->O14, M, 0, MIN(4 * k - 4, b->h4 - s0), 32, b->cu32, b->w4);
    }
    sums_close(b, m, 14, (size_t)b->h4 * b->w4);
    tp[14] = omp_get_wtime();
    tio[14] = b->io;

    /* L14 again, 4 rows of halo each side, and layer 15 (which applies
     * layer 14's norm and ReLU as it reads); its raw output over R's
     * rows, dead since L13 */
    sums_reset(b);
    for (int y0 = 0; y0 < b->h4; y0 += 4 * q) {
        int s0 = MAX(y0 - 4, 0), end = MIN(b->h4, y0 + 4 * q + 4), hb = end - s0, n = MIN(4 * q, b->h4 - y0);
        int nch = (n + SF_OC_ROWS - 1) / SF_OC_ROWS, G = 32 / b->cu32;
        CANCEL();
        TRY(l14_band(e, &R13, s0));
        for (int g = 1; g < G && hb < M; g++)   /* the kernel reads [32/cb][hb][w4][cb] */
            memmove(b->O14 + (size_t)g * hb * b->w4 * b->cu32, b->O14 + (size_t)g * M * b->w4 * b->cu32,
                    (size_t)hb * b->w4 * b->cu32 * sizeof(float));
#pragma omp parallel for schedule(dynamic, 1)
        for (int c = 0; c < nch; c++) {
            float *band = e->band ? e->band + (size_t)omp_get_thread_num() * e->band_floats : NULL;
            int r0 = y0 - s0 + c * SF_OC_ROWS, r1 = MIN(r0 + SF_OC_ROWS, y0 - s0 + n);
            (b->bf16 ? e->k.oc16_rows : e->k.oc_rows)(b->O14, hb, b->w4, b->cu32, b->a[14], b->b[14],
                                                      b->bf16 ? e->wout16 : e->wout, b->OO, band, r0, r1);
        }
        sum_rows(e, b->OO, M, y0 - s0, n, 3, 3, b->w4);
        TRY(store_rows(e, &O, y0, n, b->OO, M, y0 - s0));
    }
    sums_close(b, m, 15, (size_t)b->h4 * b->w4);
    tp[15] = omp_get_wtime();
    tio[15] = b->io;

    /* the output: layer 15's norm, tanh, 8 bits, cropped to h x w */
    for (int y0 = 0; y0 < h; y0 += 4 * q) {
        int n = MIN(4 * q, h - y0);
        CANCEL();
        TRY(load_rows(e, &O, y0, n, b->OO, n, 0, 3));
#pragma omp parallel for schedule(static)
        for (int y = 0; y < n; y += 8)
            e->k.output(b->OO, b->w4, w, b->a[15], b->b[15], out + (size_t)y0 * w * 3, y, MIN(y + 8, n));
    }
    tp[16] = omp_get_wtime();
    tio[16] = b->io;
    if (e->profile) {
        static const char *const pass[17] = { "L0 stats", "L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8", "L9",
                                              "L10", "L11", "L12", "L13", "L14 stats", "L14+L15", "output" };
        for (int i = 0; i <= 16; i++)
            sf_info("profile: bands: pass %-9s %8.1f ms, of which scratch reads and writes %6.1f ms", pass[i],
                    (tp[i] - (i ? tp[i - 1] : t0)) * 1e3, (tio[i] - (i ? tio[i - 1] : 0)) * 1e3);
        sf_info("profile: %dx%d in bands of %d rows: total %.1f ms", w, h, 4 * q, (tp[16] - t0) * 1e3);
    }
out:
    close(b->fd);
    b->fd = -1;
    if (rc == -ENOSPC)
        sf_err("cpu bands: the scratch file's disk is full (set TMPDIR to a folder with room)");
    return rc;
}
