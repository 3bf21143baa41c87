/* kernels.c: every CPU kernel against the portable one (cpu/kern_ref.c),
 * on random data, at every instruction-set level this machine runs.
 *
 * usage: kernels [LEVEL...]     (default: every level the CPU supports)
 * Prints "PASS name" or "FAIL name: why" per slot and level, "SKIP" for
 * levels the CPU cannot run, and exits 1 if anything failed.  The
 * reduced-precision kernels (int16 layer 0, bf16 layer 15) are compared
 * with a tolerance that fits their rounding; float32 kernels with one that
 * fits a different order of summation. */
#include "cpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static uint32_t rng = 12345;
static float frand(void)     /* -1 .. 1 */
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* Largest |a - b| relative to the largest |b|; 0 when both are zero. */
static double rel_err(const float *a, const float *b, size_t n, size_t *at)
{
    double mx = 0, d = 0;
    *at = 0;
    for (size_t i = 0; i < n; i++)
        mx = fabs(b[i]) > mx ? fabs(b[i]) : mx;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i] - b[i]) > d) {
            d = fabs(a[i] - b[i]);
            *at = i;
        }
    return mx > 0 ? d / mx : d;
}

/* Keep the worst error seen (a NaN counts as worst), where, and the shape
 * it came from. */
static int worse(double e, double *worst, size_t at, size_t *wat)
{
    if (!(e > *worst || e != e))
        return 0;
    *worst = e;
    *wat = at;
    return 1;
}

static void report(const char *what, const char *level, const char *impl, double err, double tol, size_t at,
                   const char *shape)
{
    if (err <= tol && err == err) {
        printf("PASS kernels: %s at %s (%s) matches %s (rel err %.2g)\n", what, level, impl,
               strstr(what, " against ") ? "it" : "the portable kernel", err);
    } else {
        printf("FAIL kernels: %s at %s (%s): rel err %.3g > %.2g at element %zu (%s)\n", what, level, impl, err, tol,
               at, shape);
        failures++;
    }
}

/* Reflect i into 0..n-1 (MIRROR_PAD's REFLECT). */
static int mirror(int i, int n)
{
    return i < 0 ? -i : i >= n ? 2 * n - 2 - i : i;
}

/* The arbitrary-style transformer's convolutions: tconv (NHWC) and tconvp
 * (planar input) against a direct loop written here, the oracle of both.
 * The convolution's input X is x (hs x ws) upsampled f times (nearest) and
 * mirror-padded by mir on every side, then zero-padded by pad: the direct
 * loop reads X laid out in full, tconv reads x through its row and column
 * maps, built here as tflnet.c builds them. */
static void test_tconv(const struct sf_cpu_kernels *k, const char *lv)
{
    static const struct { int h, w, c, oc, kh, s, pad, f, mir; } cs[] = {
        { 20, 37, 3, 8, 9, 1, 0, 1, 0 }, { 19, 21, 8, 16, 3, 2, 1, 1, 0 }, { 12, 13, 32, 32, 3, 1, 1, 1, 0 }, { 9, 40, 16, 8, 3, 1, 0, 1, 0 },
        { 30, 33, 8, 3, 9, 1, 0, 1, 0 }, { 12, 70, 8, 3, 9, 1, 0, 1, 0 }, { 11, 75, 3, 8, 9, 1, 0, 1, 0 }, { 1, 1, 100, 32, 1, 1, 0, 1, 0 },
        { 7, 9, 5, 64, 3, 2, 0, 1, 0 }, { 10, 130, 8, 3, 9, 1, 0, 1, 0 }, { 5, 200, 16, 8, 3, 1, 0, 1, 0 },
        /* through a mirror pad, and an upsampling: the transformer's 3x3 layers */
        { 9, 11, 32, 32, 3, 1, 0, 1, 1 }, { 6, 7, 32, 16, 3, 1, 0, 2, 1 }, { 13, 10, 8, 16, 3, 2, 0, 1, 1 },
        { 5, 6, 16, 8, 9, 1, 1, 2, 4 },
    };
    double worst = 0, worstp = 0;
    size_t wat = 0, watp = 0;
    char shape[96] = "", shapep[80] = "";

    for (size_t t = 0; t < sizeof cs / sizeof *cs; t++) {
        int hs = cs[t].h, ws = cs[t].w, c = cs[t].c, oc = cs[t].oc, kh = cs[t].kh, s = cs[t].s, pad = cs[t].pad;
        int f = cs[t].f, mir = cs[t].mir, h = hs * f + 2 * mir, w = ws * f + 2 * mir;
        int ocp = SF_TCONV_OCP(oc), oh = (h + 2 * pad - kh) / s + 1, ow = (w + 2 * pad - kh) / s + 1;
        int nr = (oh - 1) * s + kh, nc = (ow - 1) * s + kh;
        size_t no = (size_t)oh * ow * oc;
        float *xs = malloc(sizeof(float) * hs * ws * c), *x = malloc(sizeof(float) * h * w * c);
        float *pl = malloc(sizeof(float) * h * w * c);
        float *wt = calloc((size_t)kh * kh * c * ocp + ocp, sizeof(float)), *b = wt + (size_t)kh * kh * c * ocp;
        float *ok = malloc(no * sizeof(float)), *got = malloc(no * sizeof(float));
        int *map = malloc(((size_t)nr + nc) * sizeof *map);
        for (int i = 0; i < hs * ws * c; i++)
            xs[i] = frand();
        for (int yy = 0; yy < h; yy++)                  /* X, laid out in full */
            for (int xx = 0; xx < w; xx++)
                for (int ci = 0; ci < c; ci++)
                    x[((size_t)yy * w + xx) * c + ci] =
                        xs[((size_t)(mirror(yy - mir, hs * f) / f) * ws + mirror(xx - mir, ws * f) / f) * c + ci];
        for (int i = 0; i < nr + nc; i++) {             /* the maps: zero pad, mirror, upsampling */
            int col = i >= nr, v = (col ? i - nr : i) - pad, lim = col ? w : h;
            map[i] = v < 0 || v >= lim ? -1 : mirror(v - mir, (col ? ws : hs) * f) / f;
        }
        for (int i = 0; i < kh * kh * c; i++)
            for (int o = 0; o < oc; o++)
                wt[(size_t)i * ocp + o] = frand() * 0.2f;
        for (int o = 0; o < oc; o++)
            b[o] = frand();
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int o = 0; o < oc; o++) {
                    double acc = b[o];
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kh; kx++) {
                            int iy = oy * s + ky - pad, ix = ox * s + kx - pad;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                continue;
                            for (int ci = 0; ci < c; ci++)
                                acc += (double)x[((size_t)iy * w + ix) * c + ci] *
                                       wt[(((size_t)ky * kh + kx) * c + ci) * ocp + o];
                        }
                    ok[((size_t)oy * ow + ox) * oc + o] = acc > 0 ? (float)acc : 0;    /* ReLU */
                }
        for (int y = 0; y < oh; y += 3)
            k->tconv(xs, ws, c, map, map + nr, wt, b, oc, kh, kh, s, got, ow, 1, y, y + 3 < oh ? y + 3 : oh);
        size_t at;
        double e = rel_err(got, ok, no, &at);
        if (worse(e, &worst, at, &wat))
            snprintf(shape, sizeof shape, "%dx%d, %d->%d, %dx%d s%d, x%d, mirror %d", w, h, c, oc, kh, kh, s, f, mir);
        if (s == 1 && !pad && (oc == 3 || oc == 8 || oc == 16) && c <= 16) {
            for (int i = 0; i < h * w; i++)
                for (int ci = 0; ci < c; ci++)
                    pl[(size_t)ci * h * w + i] = x[(size_t)i * c + ci];
            memset(got, 0, no * sizeof(float));
            k->tconvp(pl, h, w, c, wt, b, oc, ocp, kh, kh, got, ow, 1, 0, oh);
            e = rel_err(got, ok, no, &at);
            if (worse(e, &worstp, at, &watp))
                snprintf(shapep, sizeof shapep, "%dx%d, %d->%d, %dx%d", w, h, c, oc, kh, kh);
        }
        free(xs); free(x); free(pl); free(wt); free(ok); free(got); free(map);
    }
    report("transformer convolution (tconv, NHWC, through index maps) against a direct loop", lv, k->tconv_name,
           worst, 2e-5, wat, shape);
    report("transformer convolution (tconvp, planar) against a direct loop", lv, k->tconv_name, worstp, 2e-5, watp,
           shapep);
}

/* The int8 predictor's sums, qdot and qdw, against direct loops written
 * here: exact integers, on the extreme values too (255 x -128 products). */
static void test_qdot(const struct sf_cpu_kernels *k, const char *lv)
{
    static const int cs[][3] = { { 1, 1, 16 }, { 37, 27, 32 }, { 16, 960, 160 }, { 5, 96, 576 }, { 3, 1280, 7 } };
    static const int ds[][6] = { { 9, 11, 32, 3, 1, 1 }, { 16, 16, 144, 3, 2, 0 }, { 5, 7, 17, 3, 1, 1 },
                                 { 2, 3, 960, 3, 1, 1 } };     /* h, w, c, k, stride, SAME */
    long bad = 0, checked = 0;
    char shape[80] = "";

    for (size_t t = 0; t < sizeof cs / sizeof *cs; t++) {
        int np = cs[t][0], kt = cs[t][1], oc = cs[t][2], kp = SF_QDOT_PAD(kt);
        int16_t *xs = calloc((size_t)np * kp, sizeof *xs), *w = calloc((size_t)oc * kp, sizeof *w);
        int32_t *dot = malloc((size_t)np * oc * sizeof *dot);
        for (int p = 0; p < np; p++)
            for (int i = 0; i < kt; i++)
                xs[(size_t)p * kp + i] = (int16_t)(t == 4 ? 255 : (int)(frand() * 255.9));
        for (int o = 0; o < oc; o++)
            for (int i = 0; i < kt; i++)
                w[(size_t)o * kp + i] = (int16_t)(t == 4 ? -128 : (int)(frand() * 127.9));
        k->qdot(xs, np, kp, w, oc, dot);
        for (int p = 0; p < np; p++)
            for (int o = 0; o < oc; o++) {
                int64_t s = 0;
                for (int i = 0; i < kt; i++)
                    s += (int64_t)xs[(size_t)p * kp + i] * w[(size_t)o * kp + i];
                checked++;
                if (s != dot[(size_t)p * oc + o] && !bad++)
                    snprintf(shape, sizeof shape, "qdot %d pixels, %d taps, %d outputs", np, kt, oc);
            }
        free(xs); free(w); free(dot);
    }
    for (size_t t = 0; t < sizeof ds / sizeof *ds; t++) {
        int h = ds[t][0], w = ds[t][1], c = ds[t][2], kh = ds[t][3], s = ds[t][4], same = ds[t][5], pt = 0, zin = -7;
        int oh = same ? (h + s - 1) / s : (h - kh) / s + 1, ow = same ? (w + s - 1) / s : (w - kh) / s + 1;
        if (same)
            pt = ((oh - 1) * s + kh - h) / 2;
        int8_t *x = malloc((size_t)h * w * c), *wt = malloc((size_t)kh * kh * c);
        int32_t *dot = malloc((size_t)ow * c * sizeof *dot);
        for (int i = 0; i < h * w * c; i++)
            x[i] = (int8_t)(int)(frand() * 127.9);
        for (int i = 0; i < kh * kh * c; i++)
            wt[i] = (int8_t)(int)(frand() * 127.9);
        for (int oy = 0; oy < oh; oy++) {
            k->qdw(x, h, w, c, zin, wt, kh, kh, s, pt, pt, oy, ow, dot);
            for (int ox = 0; ox < ow; ox++)
                for (int ci = 0; ci < c; ci++) {
                    int64_t sum = 0;
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kh; kx++) {
                            int iy = oy * s + ky - pt, ix = ox * s + kx - pt;
                            if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                                sum += (int64_t)(x[((size_t)iy * w + ix) * c + ci] - zin) * wt[(ky * kh + kx) * c + ci];
                        }
                    checked++;
                    if (sum != dot[(size_t)ox * c + ci] && !bad++)
                        snprintf(shape, sizeof shape, "qdw %dx%d, %d channels, stride %d", w, h, c, s);
                }
        }
        free(x); free(wt); free(dot);
    }
    if (!bad && checked) {
        printf("PASS kernels: int8 predictor sums (qdot, qdw) at %s equal a direct loop's (%ld sums)\n", lv, checked);
    } else {
        printf("FAIL kernels: int8 predictor sums (qdot, qdw) at %s: %ld of %ld differ, the first in %s\n", lv, bad,
               checked, shape);
        failures++;
    }
}

/* Layer 0 of table k against table r's (tolerance tol, relative). */
static void cmp_conv0(const struct sf_cpu_kernels *k, const struct sf_cpu_kernels *r, const char *what,
                      const char *lv, double tol)
{
    static const int sz[][2] = { { 1, 1 }, { 7, 5 }, { 37, 29 }, { 64, 3 }, { 13, 40 } };
    static const int cbs[] = { 8, 16, 32 };
    double worst = 0;
    size_t wat = 0;
    char shape[64] = "";
    float w[9 * 9 * 3 * 32];

    for (size_t i = 0; i < sizeof w / sizeof *w; i++)
        w[i] = frand() * 0.1f;
    void *wk = malloc(k->conv0_wbytes), *wr = malloc(r->conv0_wbytes);
    k->conv0_weights(w, wk);
    r->conv0_weights(w, wr);
    for (size_t s = 0; s < sizeof sz / sizeof *sz; s++)
        for (size_t c = 0; c < 3; c++) {
            int h = sz[s][0], wd = sz[s][1], cb = cbs[c];
            size_t n = (size_t)h * wd;
            uint8_t *rgb = malloc(n * 3);
            float *ok = calloc(n * 32, sizeof(float)), *got = calloc(n * 32, sizeof(float));
            void *bk = malloc(k->conv0_buf_bytes(h, wd)), *br = malloc(r->conv0_buf_bytes(h, wd));
            for (size_t i = 0; i < n * 3; i++)
                rgb[i] = (uint8_t)(frand() * 127.5f + 127.5f);
            k->conv0_prep(rgb, h, wd, bk, 0, h + 8);
            r->conv0_prep(rgb, h, wd, br, 0, h + 8);
            for (int y = 0; y < h; y += 3)      /* in row ranges, as the engine calls it */
                k->conv0_rows(bk, h, wd, wk, got, cb, y, y + 3 < h ? y + 3 : h);
            r->conv0_rows(br, h, wd, wr, ok, cb, 0, h);
            size_t at;
            double e = rel_err(got, ok, n * 32, &at);
            if (worse(e, &worst, at, &wat))
                snprintf(shape, sizeof shape, "%dx%d, cb %d", wd, h, cb);
            free(rgb); free(ok); free(got); free(bk); free(br);
        }
    report(what, lv, k->conv0_name, worst, tol, wat, shape);
    free(wk);
    free(wr);
}

static void test_conv0(const struct sf_cpu_kernels *k, const struct sf_cpu_kernels *r, const char *lv)
{
    cmp_conv0(k, r, "layer 0 (conv0)", lv, k->conv0_int16 ? 2e-3 : 2e-5);
}

static void test_outconv(const struct sf_cpu_kernels *k, const struct sf_cpu_kernels *r, const char *lv, int bf16)
{
    static const int sz[][2] = { { 4, 4 }, { 8, 12 }, { 20, 36 }, { 36, 132 }, { 4, 68 } };
    static const int cbs[] = { 8, 16, 32 };
    double worst = 0, tol = bf16 ? 2e-2 : 2e-5;
    size_t wat = 0;
    char shape[64] = "";
    float w[9 * 9 * 32 * 3], na[32], nb[32];
    sf_oc_weights_fn wfn = bf16 ? k->oc16_weights : k->oc_weights;
    sf_oc_rows_fn rows = bf16 ? k->oc16_rows : k->oc_rows;
    sf_oc_band_fn bandf = bf16 ? k->oc16_band : k->oc_band;

    for (size_t i = 0; i < sizeof w / sizeof *w; i++)
        w[i] = frand() * 0.05f;
    for (int c = 0; c < 32; c++) {
        na[c] = 0.5f + frand() * 0.4f;
        nb[c] = frand() * 0.3f;
    }
    void *wk = malloc(bf16 ? k->oc16_wbytes : k->oc_wbytes), *wr = malloc(r->oc_wbytes);
    wfn(w, wk);
    r->oc_weights(w, wr);
    for (size_t s = 0; s < sizeof sz / sizeof *sz; s++)
        for (size_t c = 0; c < 3; c++) {
            int h4 = sz[s][0], w4 = sz[s][1], cb = cbs[c];
            size_t n = (size_t)h4 * w4;
            float *in = malloc(n * 32 * sizeof(float));
            float *ok = calloc(n * 3, sizeof(float)), *got = calloc(n * 3, sizeof(float));
            size_t bn = bandf(w4);
            float *band = malloc((bn ? bn : 1) * sizeof(float));
            for (size_t i = 0; i < n * 32; i++)
                in[i] = frand() * 2.0f;
            for (int y = 0; y < h4; y += SF_OC_ROWS)
                rows(in, h4, w4, cb, na, nb, wk, got, band, y, y + SF_OC_ROWS < h4 ? y + SF_OC_ROWS : h4);
            r->oc_rows(in, h4, w4, cb, na, nb, wr, ok, NULL, 0, h4);
            size_t at;
            double e = rel_err(got, ok, n * 3, &at);
            if (worse(e, &worst, at, &wat))
                snprintf(shape, sizeof shape, "%dx%d, cb %d", w4, h4, cb);
            free(in); free(ok); free(got); free(band);
        }
    report(bf16 ? "layer 15 (outconv, bf16)" : "layer 15 (outconv)", lv, bf16 ? k->oc16_name : k->oc_name, worst,
           tol, wat, shape);
    free(wk);
    free(wr);
}

static void test_conv3(const struct sf_cpu_kernels *k, const struct sf_cpu_kernels *r, const char *lv)
{
    /* the network's 3x3 layers at small, odd sizes: cin, cout, stride, deconv */
    static const int kinds[][4] = { { 32, 64, 2, 0 }, { 64, 128, 2, 0 }, { 128, 128, 1, 0 }, { 128, 64, 2, 1 },
                                    { 64, 32, 2, 1 }, { 32, 16, 1, 0 } };
    static const int sz[][2] = { { 1, 1 }, { 5, 7 }, { 9, 4 }, { 6, 13 } };
    double worst = 0;
    size_t wat = 0;
    char shape[80] = "";

    for (size_t t = 0; t < sizeof kinds / sizeof *kinds; t++)
        for (size_t z = 0; z < sizeof sz / sizeof *sz; z++) {
            struct sf_conv3_shape sh = { .hin = sz[z][0], .win = sz[z][1], .cin = kinds[t][0], .cout = kinds[t][1],
                                         .stride = kinds[t][2], .deconv = kinds[t][3] };
            int after;
            if (sh.deconv) {
                sh.hout = 2 * sh.hin;
                sh.wout = 2 * sh.win;
            } else {
                int o, b;
                o = (sh.hin + sh.stride - 1) / sh.stride; b = (o - 1) * sh.stride + 3 - sh.hin; b = b < 0 ? 0 : b;
                sh.hout = o; sh.pt = b / 2;
                o = (sh.win + sh.stride - 1) / sh.stride; after = (o - 1) * sh.stride + 3 - sh.win; after = after < 0 ? 0 : after;
                sh.wout = o; sh.pl = after / 2;
            }
            size_t nin = (size_t)sh.hin * sh.win * sh.cin, nout = (size_t)sh.hout * sh.wout * sh.cout;
            size_t nw = (size_t)9 * sh.cin * sh.cout;
            float *in = malloc(nin * sizeof(float)), *w = malloc(nw * sizeof(float));
            float *ok = calloc(nout, sizeof(float)), *got = calloc(nout, sizeof(float));
            for (size_t i = 0; i < nin; i++)
                in[i] = frand();
            for (size_t i = 0; i < nw; i++)
                w[i] = frand() * 0.1f;
            for (int y = 0; y < sh.hout; y += 2)
                k->conv3_rows(in, w, got, &sh, y, y + 2 < sh.hout ? y + 2 : sh.hout);
            r->conv3_rows(in, w, ok, &sh, 0, sh.hout);
            size_t at;
            double e = rel_err(got, ok, nout, &at);
            if (worse(e, &worst, at, &wat))
                snprintf(shape, sizeof shape, "%dx%d %d->%d stride %d%s", sh.win, sh.hin, sh.cin, sh.cout, sh.stride,
                         sh.deconv ? " transposed" : "");
            free(in); free(w); free(ok); free(got);
        }
    report("3x3 layers (conv3, where oneDNN has only reference kernels)", lv, k->conv3_name, worst, 2e-5, wat,
           shape);
}

/* Winograd: the portable one against the direct 3x3 convolution (the
 * math, NHWC), and each level's against the portable one (its layout). */
static void test_wino(const struct sf_cpu_kernels *k, const struct sf_cpu_kernels *r, const char *lv)
{
    /* 1 tile to 3 blocks of SF_WINO_TB (40x37: 49 tiles), edges partial or not */
    static const int sz[][2] = { { 1, 1 }, { 9, 7 }, { 12, 12 }, { 5, 30 }, { 33, 6 }, { 40, 37 } };
    double worst[2] = { 0, 0 }, worst_math[2] = { 0, 0 }, worst_stats = 0, worst_rstats = 0;
    size_t wat[2] = { 0, 0 }, nw = 9 * 128 * 128;
    char shape[2][64] = { "", "" };
    int cb = k->wino_cb ? k->wino_cb : 128;
    float *w = malloc(nw * sizeof(float)), *U = malloc((size_t)SF_WINO_P * 128 * 128 * sizeof(float));
    float *scr = malloc(sf_wino_scratch_floats() * sizeof(float)), pa[128], pb[128];

    for (size_t i = 0; i < nw; i++)
        w[i] = frand() * 0.05f;
    for (int c = 0; c < 128; c++) {
        pa[c] = 1.0f + frand() * 0.5f;
        pb[c] = frand() * 0.5f;
    }
    sf_wino_weights(w, U);
    /* fused 0: plain; 1: the previous norm and ReLU on the input (pa, pb)
     * and the output's sums, against the direct convolution of
     * max(pa x + pb, 0) and sums taken here in double */
    for (int fused = 0; fused <= 1; fused++)
        for (size_t z = 0; z < sizeof sz / sizeof *sz; z++) {
            int h = sz[z][0], wd = sz[z][1], nt = sf_wino_ntiles(h, wd);
            size_t n = (size_t)h * wd * 128;
            float *in = malloc(n * sizeof(float)), *inb = malloc(n * sizeof(float)), *pre = malloc(n * sizeof(float));
            float *direct = malloc(n * sizeof(float)), *ok = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
            float *gotn = malloc(n * sizeof(float));
            double rs[256] = { 0 }, ks[256] = { 0 }, ds[256] = { 0 };
            for (size_t i = 0; i < n; i++) {
                in[i] = fused ? frand() * 3 + 1 : frand();      /* fused: ReLU cuts a third */
                float v = in[i] * pa[i % 128] + pb[i % 128];
                pre[i] = fused ? (v > 0 ? v : 0) : in[i];
            }
            /* the same tensor in the kernel's layout */
            for (size_t p = 0; p < (size_t)h * wd; p++)
                for (int c = 0; c < 128; c++)
                    inb[sf_at(cb, (size_t)h * wd, p, c)] = in[p * 128 + c];
            struct sf_conv3_shape sh = { .hin = h, .win = wd, .cin = 128, .hout = h, .wout = wd, .cout = 128,
                                         .stride = 1, .pt = 1, .pl = 1 };
            r->conv3_rows(pre, w, direct, &sh, 0, h);
            for (int t = 0; t < nt; t += SF_WINO_TB) {
                int t1 = t + SF_WINO_TB < nt ? t + SF_WINO_TB : nt;
                r->wino_tiles(in, h, wd, 128, U, ok, scr, t, t1, fused ? pa : NULL, fused ? pb : NULL,
                              fused ? rs : NULL, fused ? rs + 128 : NULL);
                k->wino_tiles(inb, h, wd, cb, U, gotn, scr, t, t1, fused ? pa : NULL, fused ? pb : NULL,
                              fused ? ks : NULL, fused ? ks + 128 : NULL);
            }
            for (size_t p = 0; p < (size_t)h * wd; p++)      /* back to NHWC */
                for (int c = 0; c < 128; c++)
                    got[p * 128 + c] = gotn[sf_at(cb, (size_t)h * wd, p, c)];
            size_t at;
            double em = rel_err(ok, direct, n, &at), e = rel_err(got, ok, n, &at);
            worst_math[fused] = em > worst_math[fused] || em != em ? em : worst_math[fused];
            if (worse(e, &worst[fused], at, &wat[fused]))
                snprintf(shape[fused], sizeof shape[fused], "%dx%d, cb %d", wd, h, cb);
            if (fused && h * wd >= 36) {
                /* the sums as mean and variance: the kernel's against the
                 * portable one's, and the portable one's against ok's
                 * (from 36 pixels up: the variance of fewer is mostly
                 * rounding) */
                for (size_t i = 0; i < n; i++) {
                    ds[i % 128] += ok[i];
                    ds[128 + i % 128] += (double)ok[i] * ok[i];
                }
                for (int c = 0; c < 128; c++) {
                    double np = (double)h * wd, dm = ds[c] / np, dv = ds[128 + c] / np - dm * dm;
                    double rm = rs[c] / np, rv = rs[128 + c] / np - rm * rm;
                    double km = ks[c] / np, kv = ks[128 + c] / np - km * km, sd = sqrt(dv > 1e-12 ? dv : 1e-12);
                    double ek = fabs(km - rm) / sd + fabs(kv - rv) / (dv > 1e-12 ? dv : 1e-12);
                    double er = fabs(rm - dm) / sd + fabs(rv - dv) / (dv > 1e-12 ? dv : 1e-12);
                    worst_stats = ek > worst_stats || ek != ek ? ek : worst_stats;
                    worst_rstats = er > worst_rstats || er != er ? er : worst_rstats;
                }
            }
            free(in); free(inb); free(pre); free(direct); free(ok); free(got); free(gotn);
        }
    report("Winograd F(6x6,3x3), the portable one against the direct convolution", lv, r->wino_name, worst_math[0],
           1e-4, 0, "");
    report("Winograd F(6x6,3x3) with the input's norm and ReLU, the portable one against the direct convolution",
           lv, r->wino_name, worst_math[1], 1e-4, 0, "");
    report("Winograd F(6x6,3x3), the portable one's output sums (mean, variance) against the outputs'", lv,
           r->wino_name, worst_rstats, 1e-9, 0, "");
    /* F(6x6)'s transforms scale by up to 32 (F(4x4)'s by 8), so fused and
     * unfused multiply-adds part by about 1.3e-5 of the largest value:
     * 4e-5, against 1e-4 for the portable one's own error */
    report("Winograd F(6x6,3x3) residual convolution", lv, k->wino_name, worst[0], 4e-5, wat[0], shape[0]);
    report("Winograd F(6x6,3x3) with the input's norm and ReLU", lv, k->wino_name, worst[1], 4e-5, wat[1],
           shape[1]);
    /* the sums are of the kernel's own outputs, which part from the
     * portable one's by up to 4e-5 (above) */
    report("Winograd F(6x6,3x3) output sums (mean, variance)", lv, k->wino_name, worst_stats, 4e-5, 0, "");
    free(w); free(U); free(scr);
}

static void test_norms(const struct sf_cpu_kernels *k, const struct sf_cpu_kernels *r, const char *lv)
{
    static const int cbs[] = { 3, 8, 16, 32, 64, 128 };
    double worst = 0;
    size_t wat = 0, hw = 1000;
    char shape[64] = "";

    for (size_t c = 0; c < sizeof cbs / sizeof *cbs; c++) {
        int cb = cbs[c];
        float *x = malloc(hw * cb * sizeof(float)), a[128], b[128], shift[128];
        float *xk = malloc(hw * cb * sizeof(float)), *xr = malloc(hw * cb * sizeof(float));
        float *rk = malloc(hw * cb * sizeof(float)), *rr = malloc(hw * cb * sizeof(float));
        double sk[128] = { 0 }, qk[128] = { 0 }, sr[128] = { 0 }, qr[128] = { 0 };
        for (size_t i = 0; i < hw * cb; i++)
            x[i] = frand() * 3.0f + 1.0f;
        for (int ch = 0; ch < cb; ch++) {
            a[ch] = frand();
            b[ch] = frand();
            shift[ch] = x[ch];
        }
        k->norm_sums(x, cb, 7, hw, shift, sk, qk);
        r->norm_sums(x, cb, 7, hw, shift, sr, qr);
        float fk[256], fr[256];
        for (int ch = 0; ch < cb; ch++) {
            fk[ch] = (float)sk[ch]; fk[128 + ch] = (float)qk[ch];
            fr[ch] = (float)sr[ch]; fr[128 + ch] = (float)qr[ch];
        }
        size_t at;
        double e = fmax(rel_err(fk, fr, (size_t)cb, &at), rel_err(fk + 128, fr + 128, (size_t)cb, &at));
        for (int mode = 0; mode < 3; mode++) {     /* plain, ReLU, residual */
            memcpy(xk, x, hw * cb * sizeof(float));
            memcpy(xr, x, hw * cb * sizeof(float));
            for (size_t i = 0; i < hw * cb; i++)
                rk[i] = rr[i] = (float)i * 1e-3f;
            k->norm_apply(xk, cb, 3, hw, a, b, mode == 1, mode == 2 ? rk : NULL);
            r->norm_apply(xr, cb, 3, hw, a, b, mode == 1, mode == 2 ? rr : NULL);
            e = fmax(e, rel_err(xk, xr, hw * cb, &at));
            e = fmax(e, rel_err(rk, rr, hw * cb, &at));
        }
        if (worse(e, &worst, at, &wat))
            snprintf(shape, sizeof shape, "cb %d", cb);
        free(x); free(xk); free(xr); free(rk); free(rr);
    }
    report("instance norm (sums, apply, ReLU, residual)", lv, k->norm_name, worst, 1e-5, wat, shape);

    /* bf16 norm and the output stage: the same arithmetic at another vector
     * width, except that a vector file may contract x * a + b into one FMA.
     * That moves y by an ulp, which can move its bf16 rounding by one step:
     * allow one step, nothing more. */
    {
        float x[64 * 50], a[64], b[64];
        uint16_t ok[64 * 50], got[64 * 50];
        for (int i = 0; i < 64 * 50; i++)
            x[i] = frand() * 4;
        for (int i = 0; i < 64; i++) {
            a[i] = frand();
            b[i] = frand();
        }
        k->norm_bf16(x, 0, 50, a, b, got);
        r->norm_bf16(x, 0, 50, a, b, ok);
        int bad = 0;
        for (int i = 0; i < 64 * 50; i++)
            bad |= abs((int)got[i] - (int)ok[i]) > 1;

        int h = 9, w = 23, w4 = 24;
        float O[9 * 24 * 3], oa[3] = { 0.7f, -1.1f, 0.3f }, ob[3] = { 0.1f, 0.2f, -0.4f };
        uint8_t ok8[9 * 23 * 3], got8[9 * 23 * 3];
        for (int i = 0; i < 9 * 24 * 3; i++)
            O[i] = frand() * 12;     /* past the clamps at +-9 too */
        k->output(O, w4, w, oa, ob, got8, 0, h);
        r->output(O, w4, w, oa, ob, ok8, 0, h);
        int maxd = 0, mathd = 0;
        for (int i = 0; i < h * w * 3; i++)
            maxd = abs(got8[i] - ok8[i]) > maxd ? abs(got8[i] - ok8[i]) : maxd;
        for (int y = 0; y < h; y++)             /* and the math: tanhf's 8-bit value, within one step */
            for (int i = 0; i < w * 3; i++) {
                float v = tanhf(O[y * w4 * 3 + i] * oa[i % 3] + ob[i % 3]) * 150.f + 127.5f;
                int want = v < 0 ? 0 : v > 255 ? 255 : (int)(v + 0.5f), d = abs(got8[y * w * 3 + i] - want);
                mathd = d > mathd ? d : mathd;
            }
        maxd = mathd > maxd ? mathd : maxd;
        if (!bad && maxd <= 1) {
            printf("PASS kernels: bf16 norm and output stage at %s (%s) match the portable kernels (and tanhf)\n", lv,
                   k->output_name);
        } else {
            printf("FAIL kernels: bf16 norm and output stage at %s: bf16 %s, output max diff %d (against the "
                   "portable kernel or tanhf)\n", lv,
                   bad ? "differs by more than one step" : "within one step", maxd);
            failures++;
        }
    }
}

int main(int argc, char **argv)
{
    static const enum sf_cpu_level all[] = { SF_CPU_GENERIC, SF_CPU_NEON, SF_CPU_AVX2, SF_CPU_AVX512 };
    struct sf_cpu_features f;
    struct sf_cpu_kernels ref, k;
    char why[256];

    unsetenv("STYLEFS_CPU_ISA");        /* the features of the machine itself */
    if (sf_cpu_detect(&f, why, sizeof why)) {
        printf("FAIL kernels: cpu detection: %s\n", why);
        return 1;
    }
    sf_cpu_kernels_fill(&ref, &f, SF_CPU_GENERIC, 0);
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        enum sf_cpu_level lv = all[i];
        const char *name = sf_cpu_level_name(lv);
        int asked = argc < 2;
        for (int a = 1; a < argc; a++)
            asked |= !strcmp(argv[a], name);
        if (!asked)
            continue;
        if (!sf_cpu_level_supported(lv)) {
#if defined(__aarch64__)
            int here = lv == SF_CPU_NEON;       /* levels of this architecture */
#else
            int here = lv != SF_CPU_NEON;
#endif
            if (argc >= 2 || here)
                printf("SKIP kernels at %s: this CPU cannot run it\n", name);
            continue;
        }
        for (int lowp = 0; lowp <= 1; lowp++) {
            sf_cpu_kernels_fill(&k, &f, lv, lowp);
            if (k.level != lv) {
                printf("FAIL kernels: the table for %s came out as %s\n", name, sf_cpu_level_name(k.level));
                failures++;
                continue;
            }
            /* each slot names its level (the portable ones say generic) */
            if (lv != SF_CPU_GENERIC && !lowp &&
                (!strstr(k.conv0_name, name) || !strstr(k.oc_name, name) || !strstr(k.norm_name, name))) {
                printf("FAIL kernels: at %s some slot has no %s kernel: %s / %s / %s\n", name, name, k.conv0_name,
                       k.oc_name, k.norm_name);
                failures++;
            }
            if (lowp && !k.conv0_int16 && !k.oc16_rows)
                continue;               /* nothing reduced-precision at this level */
            if (!lowp || k.conv0_int16)
                test_conv0(&k, &ref, name);
            if (lowp && k.conv0_int16 && lv == SF_CPU_AVX2 && f.avx512_vnni) {
                struct sf_cpu_kernels vn;       /* the same integer sums: equal to the last bit */
                sf_cpu_kernels_fill(&vn, &f, SF_CPU_AVX512, 1);
                cmp_conv0(&k, &vn, "layer 0 (conv0, int16 sums) against avx512_vnni's to the last bit", name, 0);
            }
            if (!lowp) {
                test_outconv(&k, &ref, name, 0);
                test_conv3(&k, &ref, name);
                if (k.wino_tiles)
                    test_wino(&k, &ref, name);
                test_norms(&k, &ref, name);
                test_tconv(&k, name);
                test_qdot(&k, name);
            } else if (k.oc16_rows) {
                test_outconv(&k, &ref, name, 1);
            }
        }
    }
    return failures ? 1 : 0;
}
