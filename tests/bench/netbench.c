/* netbench.c: the network alone, timed, for `make bench` and tests/gpu.sh.
 *
 * usage: netbench STYLES STYLE WxH [--device cpu|cuda] [--runs N]
 * Runs one warm-up pass (plans, weights, GPU graph capture), then N timed
 * passes of sf_engine_run on a photo-like synthetic image (gradients and
 * noise, never zeros), and prints one line:
 *   net WxH DEVICE median_ms=.. min_ms=.. ms_per_mp=.. first_ms=..
 * first_ms is the warm-up pass (what a cold read pays for a new shape). */
#include "engine.h"
#include "log.h"
#include "style.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    enum sf_device dev = SF_DEVICE_CPU;
    struct sf_model *m;
    struct sf_engine *e;
    int w, h, runs = 5;
    char err[512];

    if (argc < 4 || sscanf(argv[3], "%dx%d", &w, &h) != 2 || w < 1 || h < 1) {
        fprintf(stderr, "usage: netbench STYLES STYLE WxH [--device cpu|cuda] [--runs N]\n");
        return 2;
    }
    for (int i = 4; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--device") && !sf_device_parse(argv[i + 1], &dev))
            continue;
        if (!strcmp(argv[i], "--runs") && (runs = atoi(argv[i + 1])) > 0 && runs < 10000)
            continue;
        fprintf(stderr, "netbench: bad option %s %s\n", argv[i], argv[i + 1]);
        return 2;
    }
    sf_log_set_level(getenv("NETBENCH_VERBOSE") ? SF_LOG_DEBUG : getenv("STYLEFS_PROFILE") ? SF_LOG_INFO : SF_LOG_WARN);
    struct sf_styles_path sp;
    sf_styles_path_one(&sp, argv[1]);
    if (sf_model_load(&sp, NULL, argv[2], &m, err, sizeof err)) {
        fprintf(stderr, "netbench: %s\n", err);
        return 1;
    }
    if (sf_engine_open(dev, &e, err, sizeof err)) {
        fprintf(stderr, "netbench: %s\n", err);
        return 1;
    }
    size_t n = (size_t)w * h * 3;
    uint8_t *in = malloc(n), *out = malloc(n);
    double *t = calloc((size_t)runs, sizeof *t), first;
    if (!in || !out || !t)
        return 1;
    srand(1);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                in[((size_t)y * w + x) * 3 + c] =
                    (uint8_t)((x * (c + 1) * 255 / w + y * 255 / h) / 2 + rand() % 32);
    first = now_ms();
    if (sf_engine_run(e, m, in, w, h, out, NULL)) {
        fprintf(stderr, "netbench: the %s engine failed at %dx%d\n", e->ops->name, w, h);
        return 1;
    }
    first = now_ms() - first;
    for (int r = 0; r < runs; r++) {
        double t0 = now_ms();
        if (sf_engine_run(e, m, in, w, h, out, NULL))
            return 1;
        t[r] = now_ms() - t0;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_d);
    printf("net %dx%d %s median_ms=%.3f min_ms=%.3f ms_per_mp=%.3f first_ms=%.1f\n", w, h, e->ops->name,
           t[runs / 2], t[0], t[runs / 2] / ((double)w * h / 1e6), first);
    sf_engine_close(e);
    sf_model_free(m);
    free(in);
    free(out);
    free(t);
    return 0;
}
