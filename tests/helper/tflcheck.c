/* tflcheck.c: the TFLite reader and runner (arbitrary/tflite.c, arbitrary/tflnet.c)
 * on Magenta's arbitrary-style networks, for tests/t_arbitrary.sh.
 *
 *   tflcheck parse DIR        parse DIR's three .tflite files (op counts of
 *                             arbitrary.md), then damage each one many ways
 *                             (truncations, byte flips, hostile counts) and
 *                             check that parsing and planning fail cleanly,
 *                             and that what plans runs (under ASan in CI),
 *                             one in four on the vector kernels
 *   tflcheck predict MODEL STYLE OUT.f32
 *                             the 100 style floats of an image (resized by
 *                             nothing: it must be 256x256)
 *   tflcheck predict-float MODEL STYLE OUT.f32
 *                             the same with the int8 model computed in
 *                             float32 (sf_tfl_to_float), to measure what
 *                             the integer arithmetic does
 *   tflcheck transfer MODEL CONTENT BOTTLENECK.f32 OUT.ppm
 *                             the styled image, 8-bit (round(255 x), as the
 *                             LiteRT anchor writes it), at the network's
 *                             output size for the content's size
 * Prints PASS/FAIL lines (parse) or one line of facts; exits 0, or 1 on a
 * failure. */
#include "cpu.h"
#include "image.h"
#include "tflite.h"
#include "tflnet.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void report(int ok, const char *what, const char *detail)
{
    printf("%s tflite: %s%s%s\n", ok ? "PASS" : "FAIL", what, ok ? "" : ": ", ok ? "" : detail);
    failures += !ok;
}

static int load(const char *path, uint8_t **buf, size_t *len, struct sf_tfl_model **m)
{
    char why[300];
    int rc = sf_read_file(path, 1 << 28, buf, len);

    if (rc) {
        fprintf(stderr, "tflcheck: %s: %s\n", path, strerror(-rc));
        return rc;
    }
    if ((rc = sf_tfl_parse(*buf, *len, m, why, sizeof why)))
        fprintf(stderr, "tflcheck: %s: %s\n", path, why);
    return rc;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Plan m at 16x16 on the portable loops, or (k given) at 64x64 on k's
 * vector kernels (64x64: big enough for the planar ones), and run it on
 * flat inputs.  Returns the plan's code, with why set when it refuses. */
static int plan_and_run(const struct sf_tfl_model *m, const struct sf_cpu_kernels *k, char *why, size_t whylen)
{
    struct sf_tflnet *net;
    int rc = sf_tflnet_plan(m, k ? 64 : 16, k ? 64 : 16, k, &net, why, whylen);

    if (rc)
        return rc;
    for (int i = 0; i < m->nin; i++) {
        size_t ne;
        float *x = sf_tflnet_input(net, i, &ne);
        for (size_t j = 0; j < ne; j++)
            x[j] = 0.5f;
    }
    sf_tflnet_run(net);
    sf_tflnet_free(net);
    return 0;
}

/* Parse, plan and run a damaged copy (one in four on the best level's
 * vector kernels, the others on the portable loops; and one in eight, its
 * float copy): must not crash, and must say why when it refuses.  Returns
 * 1 when refused. */
static int try_damaged(const uint8_t *d, size_t n, const struct sf_cpu_kernels *k, int *silent)
{
    static unsigned every;
    struct sf_tfl_model *m, *fm;
    char why[300] = "";
    int rc = sf_tfl_parse(d, n, &m, why, sizeof why);

    if (rc) {
        *silent += !why[0];
        return 1;
    }
    why[0] = '\0';
    if ((rc = plan_and_run(m, ++every % 4 == 0 ? k : NULL, why, sizeof why)))
        *silent += !why[0];
    if (every % 8 == 1 && sf_tfl_to_float(m, &fm, why, sizeof why) == 0) {   /* it is slower */
        plan_and_run(fm, NULL, why, sizeof why);
        sf_tfl_free(fm);
    }
    sf_tfl_free(m);
    return rc != 0;
}

static int cmd_parse(const char *dir)
{
    static const struct { const char *file; int ops, tensors; } want[] = {
        { "predict_int8.tflite", 66, 174 }, { "transfer_fp16.tflite", 285, 420 }, { "transfer_int8.tflite", 295, 430 },
    };
    char path[4096], msg[300];
    struct sf_cpu_features feat;
    struct sf_cpu_kernels kern, *vk = NULL;

    if (sf_cpu_detect(&feat, msg, sizeof msg) == 0) {     /* the best level's kernels */
        sf_cpu_kernels_fill(&kern, &feat, feat.level, 0);
        vk = &kern;
    }
    for (int f = 0; f < 3; f++) {
        uint8_t *buf = NULL, *cp;
        size_t len = 0;
        struct sf_tfl_model *m = NULL;
        snprintf(path, sizeof path, "%s/%s", dir, want[f].file);
        if (load(path, &buf, &len, &m)) {
            snprintf(msg, sizeof msg, "%s does not parse", want[f].file);
            report(0, msg, "see stderr");
            free(buf);
            continue;
        }
        snprintf(msg, sizeof msg, "%s: %d operators and %d tensors (arbitrary.md: %d and %d)", want[f].file,
                 m->nops, m->ntensors, want[f].ops, want[f].tensors);
        report(m->nops == want[f].ops && m->ntensors == want[f].tensors, msg, "counts differ");
        sf_tfl_free(m);

        /* damage: every truncation length near the start, then spread; byte
         * flips; hostile 32-bit values at random aligned places */
        int refused = 0, tries = 0, silent = 0;
        if (!(cp = malloc(len))) {
            free(buf);
            return 1;
        }
        for (size_t t = 0; t < len; t += t < 256 ? 1 : t < 65536 ? 97 : 4099) {
            refused += try_damaged(buf, t, vk, &silent);
            tries++;
        }
        for (int k = 0; k < 2000; k++) {
            memcpy(cp, buf, len);
            int nflip = 1 + (int)(next() % 4);
            for (int j = 0; j < nflip; j++) {
                size_t at = k % 2 ? next() % (len < 8192 ? len : 8192) : next() % len;
                if (k % 3 == 0 && at + 4 <= len) {
                    static const uint32_t hostile[] = { 0xffffffffu, 0x7fffffffu, 0x80000000u, 0x10000000u, 0, 1 };
                    memcpy(cp + (at & ~(size_t)3), &hostile[next() % 6], 4);
                } else {
                    cp[at] ^= (uint8_t)(1u << (next() % 8));
                }
            }
            refused += try_damaged(cp, len, vk, &silent);
            tries++;
        }
        snprintf(msg, sizeof msg, "%s damaged %d ways (truncated, flipped, hostile counts): no crash, %d refused, "
                                  "each with a reason", want[f].file, tries, refused);
        char detail[100];
        snprintf(detail, sizeof detail, "%d refusals said nothing", silent);
        report(silent == 0 && refused > tries / 4, msg, detail);
        free(cp);
        free(buf);
    }
    return failures ? 1 : 0;
}

/* An image file into float RGB in [0,1]. */
static float *load_image(const char *path, int *w, int *h)
{
    struct sf_image img;
    uint8_t *d;
    size_t n;
    char why[256];
    float *x;

    if (sf_read_file(path, 1 << 28, &d, &n) || sf_image_decode(d, n, 1ULL << 28, &img, why, sizeof why)) {
        fprintf(stderr, "tflcheck: %s: cannot read\n", path);
        return NULL;
    }
    free(d);
    *w = img.w;
    *h = img.h;
    if ((x = malloc((size_t)img.w * img.h * 3 * sizeof *x)))
        for (size_t i = 0; i < (size_t)img.w * img.h * 3; i++)
            x[i] = img.rgb[i] / 255.0f;
    sf_image_free(&img);
    return x;
}

static int cmd_run(int transfer, int as_float, const char *model, const char *img, const char *bfile,
                   const char *out)
{
    uint8_t *buf;
    size_t len, ne;
    struct sf_tfl_model *m;
    struct sf_tflnet *net;
    char why[300];
    int w, h, shape[4], rc = 1;
    float *x = load_image(img, &w, &h);
    FILE *f;

    if (!x || load(model, &buf, &len, &m))
        return 1;
    if (as_float) {
        struct sf_tfl_model *fm;
        if (sf_tfl_to_float(m, &fm, why, sizeof why)) {
            fprintf(stderr, "tflcheck: %s in float: %s\n", model, why);
            goto out_model0;
        }
        sf_tfl_free(m);
        m = fm;
    }
    struct sf_cpu_kernels k;
    struct sf_cpu_features feat;
    int portable = getenv("TFLCHECK_PORTABLE") != NULL;     /* the reference loops only */
    if (!portable && sf_cpu_detect(&feat, why, sizeof why) == 0)
        sf_cpu_kernels_fill(&k, &feat, feat.level, 0);
    else
        portable = 1;
    if (sf_tflnet_plan(m, transfer ? h : 0, transfer ? w : 0, portable ? NULL : &k, &net, why, sizeof why)) {
        fprintf(stderr, "tflcheck: %s at %dx%d: %s\n", model, w, h, why);
        goto out_model;
    }
    float *in = sf_tflnet_input(net, 0, &ne);
    if (ne != (size_t)w * h * 3) {
        fprintf(stderr, "tflcheck: %s takes %zu values, the image has %d\n", model, ne, w * h * 3);
        goto out_net;
    }
    memcpy(in, x, ne * sizeof *x);
    if (transfer) {
        float *b = sf_tflnet_input(net, 1, &ne);
        if (ne != 100 || !(f = fopen(bfile, "rb")) || fread(b, sizeof *b, 100, f) != 100) {
            fprintf(stderr, "tflcheck: %s: not 100 floats\n", bfile);
            goto out_net;
        }
        fclose(f);
    }
    double t0 = sf_monotonic();
    sf_tflnet_run(net);
    double t1 = sf_monotonic(), best = t1 - t0;
    /* TFLCHECK_RUNS=N: N - 1 runs more, for the best time (the first one
     * also touches the arena's fresh memory) */
    for (int r = 1, runs = getenv("TFLCHECK_RUNS") ? atoi(getenv("TFLCHECK_RUNS")) : 1; r < runs; r++) {
        double ta;
        memcpy(sf_tflnet_input(net, 0, &ne), x, (size_t)w * h * 3 * sizeof *x);
        ta = sf_monotonic();
        sf_tflnet_run(net);
        if (sf_monotonic() - ta < best)
            best = sf_monotonic() - ta;
    }
    const float *y = sf_tflnet_output(net, 0, shape);
    if (!(f = fopen(out, "wb")))
        goto out_net;
    if (transfer) {
        size_t np = (size_t)shape[1] * shape[2] * 3;
        uint8_t *px = malloc(np);
        if (!px) {
            fclose(f);
            goto out_net;
        }
        for (size_t i = 0; i < np; i++) {
            float v = roundf(y[i] * 255);
            px[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        fprintf(f, "P6\n%d %d\n255\n", shape[2], shape[1]);
        rc = fwrite(px, 1, np, f) != np;
        free(px);
    } else {
        rc = fwrite(y, sizeof *y, 100, f) != 100;
    }
    rc |= fclose(f) != 0;
    printf("%s %dx%d -> %dx%dx%d in %.1f ms", transfer ? "transfer" : "predict", w, h, shape[2], shape[1], shape[3],
           (t1 - t0) * 1e3);
    if (getenv("TFLCHECK_RUNS") && atoi(getenv("TFLCHECK_RUNS")) > 1)
        printf(", best of %d %.1f ms", atoi(getenv("TFLCHECK_RUNS")), best * 1e3);
    printf(" (float convolutions: %s)\n", portable ? "portable" : k.tconv_name);
out_net:
    sf_tflnet_free(net);
out_model:
out_model0:
    sf_tfl_free(m);
    free(buf);
    free(x);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "parse"))
        return cmd_parse(argv[2]);
    if (argc == 5 && !strcmp(argv[1], "predict"))
        return cmd_run(0, 0, argv[2], argv[3], NULL, argv[4]);
    if (argc == 5 && !strcmp(argv[1], "predict-float"))
        return cmd_run(0, 1, argv[2], argv[3], NULL, argv[4]);
    if (argc == 6 && !strcmp(argv[1], "transfer"))
        return cmd_run(1, 0, argv[2], argv[3], argv[4], argv[5]);
    fprintf(stderr, "usage: tflcheck parse DIR | predict[-float] MODEL STYLE OUT.f32 | "
                    "transfer MODEL CONTENT BOTTLENECK.f32 OUT.ppm\n");
    return 2;
}
