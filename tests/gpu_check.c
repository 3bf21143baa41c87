/* gpu_check.c: each GPU kernel against its CPU twin (kernels/twins.c).
 *
 * Fresh random inputs for every case (never zeros), outputs poisoned
 * before each run, pitched rows (ld > w) so that both reading a corner of
 * a larger buffer and leaving the rest of it alone are checked.  Prints
 * PASS/FAIL lines for tests/run.sh, or SKIP lines when this machine has no
 * usable CUDA device.  Exit status 0 unless a check failed. */
#include "sf_kernels.h"

#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed;
static unsigned long long rng = 0x9e3779b97f4a7c15ULL;

static double urand(void)   /* uniform [0, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (rng >> 11) * (1.0 / 9007199254740992.0);
}

static void report(int ok, const char *name, const char *detail)
{
    printf("%s gpu kernel: %s (%s)\n", ok ? "PASS" : "FAIL", name, detail);
    failed |= !ok;
}

#define CK(call)                                                                          \
    do {                                                                                  \
        cudaError_t e_ = (call);                                                          \
        if (e_ != cudaSuccess) {                                                          \
            printf("FAIL gpu kernel: %s: %s\n", #call, cudaGetErrorString(e_));          \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)
#define LAUNCH(call)                                                                      \
    do {                                                                                  \
        if ((call) != 0) {                                                                \
            printf("FAIL gpu kernel: %s: %s\n", #call, sfk_last_error());                 \
            exit(1);                                                                      \
        }                                                                                 \
        CK(cudaDeviceSynchronize());                                                      \
    } while (0)

static void *dup_to_dev(const void *h, size_t n)
{
    void *d;
    CK(cudaMalloc(&d, n));
    CK(cudaMemcpy(d, h, n, cudaMemcpyHostToDevice));
    return d;
}

static void random_tensor(uint16_t *x, size_t n, double offset, double spread)
{
    for (size_t i = 0; i < n; i++)
        x[i] = sfk_f2h((float)(offset + spread * (urand() * 2 - 1)));
}

static void check_rgb(int w, int h)
{
    size_t n = (size_t)w * h;
    uint8_t *rgb = malloc(n * 3);
    uint16_t *want = malloc(n * 16), *got = malloc(n * 16);
    char d[80];

    for (size_t i = 0; i < n * 3; i++)
        rgb[i] = (uint8_t)(urand() * 256);
    sfk_cpu_rgb_to_tensor(rgb, w, h, want);
    void *drgb = dup_to_dev(rgb, n * 3), *dx;
    CK(cudaMalloc(&dx, n * 16));
    CK(cudaMemset(dx, 0xff, n * 16));
    LAUNCH(sfk_rgb_to_tensor(NULL, drgb, w, h, dx));
    CK(cudaMemcpy(got, dx, n * 16, cudaMemcpyDeviceToHost));
    snprintf(d, sizeof d, "%dx%d, bit-exact", w, h);
    report(!memcmp(want, got, n * 16), "rgb_to_tensor", d);
    cudaFree(drgb);
    cudaFree(dx);
    free(rgb);
    free(want);
    free(got);
}

/* statistics + finalize, then apply (with relu or residual), on w x h of a
 * buffer with rows of ld pixels; apply writes into rows of ldy pixels */
static void check_norm(int w, int h, int ld, int ldy, int c, int relu, int res, double offset)
{
    size_t nx = (size_t)h * ld * c, ny = (size_t)h * ldy * c, nr = (size_t)w * h * c;
    uint16_t *x = malloc(nx * 2), *r = malloc(nr * 2), *want = malloc(ny * 2), *got = malloc(ny * 2);
    float gamma[128], beta[128], ab_cpu[256], ab_gpu[256];
    int blocks = sfk_stats_blocks((long)w * h, c);
    double worst_a = 0, worst_b = 0, worst_y = 0;
    char name[96], d[160];
    int ok = 1;

    random_tensor(x, nx, offset, 2.0);
    random_tensor(r, nr, 0, 1.0);
    for (int i = 0; i < c; i++) {
        gamma[i] = (float)(0.5 + urand());
        beta[i] = (float)(urand() - 0.5);
    }
    sfk_cpu_in_stats_ab(x, w, h, ld, c, gamma, beta, SFK_IN_EPS, ab_cpu);

    void *dx = dup_to_dev(x, nx * 2), *dr = dup_to_dev(r, nr * 2), *dg = dup_to_dev(gamma, sizeof gamma);
    void *db = dup_to_dev(beta, sizeof beta), *dpart, *dab, *dy;
    CK(cudaMalloc(&dpart, (size_t)SFK_STATS_MAX_BLOCKS * c * 12));
    CK(cudaMalloc(&dab, 256 * 4));
    CK(cudaMemset(dab, 0xff, 256 * 4));
    LAUNCH(sfk_in_stats(NULL, dx, w, h, ld, c, dpart, blocks));
    LAUNCH(sfk_in_finalize(NULL, dpart, blocks, c, dg, db, SFK_IN_EPS, dab));
    CK(cudaMemcpy(ab_gpu, dab, (size_t)c * 8, cudaMemcpyDeviceToHost));
    for (int i = 0; i < c; i++) {
        double ea = fabs(ab_gpu[2 * i] - ab_cpu[2 * i]) / fabs(ab_cpu[2 * i]);
        double eb = fabs(ab_gpu[2 * i + 1] - ab_cpu[2 * i + 1]);
        worst_a = ea > worst_a ? ea : worst_a;
        worst_b = eb > worst_b ? eb : worst_b;
        if (!(ea < 1e-4) || !(eb < 1e-4 * (1 + fabs(offset * ab_cpu[2 * i]))))
            ok = 0;
    }
    snprintf(name, sizeof name, "in_stats+finalize %dx%d ld %d c %d mean %.0f", w, h, ld, c, offset);
    snprintf(d, sizeof d, "%d blocks, max rel err a %.2g, max abs err b %.2g", blocks, worst_a, worst_b);
    report(ok, name, d);

    /* apply with the CPU's a, b on both sides, so only apply is compared */
    CK(cudaMemcpy(dab, ab_cpu, (size_t)c * 8, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&dy, ny * 2));
    for (size_t i = 0; i < ny; i++)
        want[i] = 0x7e7e;   /* poison: what apply must leave alone */
    CK(cudaMemcpy(dy, want, ny * 2, cudaMemcpyHostToDevice));
    sfk_cpu_in_apply(x, w, h, ld, c, ab_cpu, res ? r : NULL, relu, want, ldy);
    LAUNCH(sfk_in_apply(NULL, dx, w, h, ld, c, dab, res ? dr : NULL, relu, dy, ldy));
    CK(cudaMemcpy(got, dy, ny * 2, cudaMemcpyDeviceToHost));
    ok = 1;
    size_t bad = 0;
    for (size_t i = 0; i < ny; i++) {
        if (want[i] == got[i])
            continue;
        double a = sfk_h2f(want[i]), b = sfk_h2f(got[i]);
        double ulp = fmax(fabs(a), 6.1e-5) * 9.8e-4;   /* one fp16 step */
        if (want[i] == 0x7e7e || got[i] == 0x7e7e || !(fabs(a - b) <= ulp)) {
            ok = 0;
            bad = i;
            break;
        }
        worst_y = fmax(worst_y, fabs(a - b) / ulp);
    }
    snprintf(name, sizeof name, "in_apply %dx%d ld %d->%d c %d%s%s", w, h, ld, ldy, c, relu ? " relu" : "",
             res ? " residual" : "");
    if (ok)
        snprintf(d, sizeof d, "largest difference %.2f fp16 steps, padding untouched", worst_y);
    else
        snprintf(d, sizeof d, "element %zu: the twin %.8g (0x%04x), the GPU %.8g (0x%04x); before it, at most %.2f "
                 "fp16 steps", bad, sfk_h2f(want[bad]), want[bad], sfk_h2f(got[bad]), got[bad], worst_y);
    report(ok, name, d);

    cudaFree(dx); cudaFree(dr); cudaFree(dg); cudaFree(db); cudaFree(dpart); cudaFree(dab); cudaFree(dy);
    free(x); free(r); free(want); free(got);
}

static void check_tanh(int w, int h, int ld)
{
    size_t nx = (size_t)h * ld * 8, n = (size_t)w * h * 3;
    uint16_t *x = malloc(nx * 2);
    uint8_t *want = malloc(n), *got = malloc(n);
    float ab[16];
    int worst = 0;
    char d[96];

    random_tensor(x, nx, 0.3, 3.0);
    for (int i = 0; i < 8; i++) {
        ab[2 * i] = (float)(0.2 + urand());
        ab[2 * i + 1] = (float)(urand() - 0.5);
    }
    sfk_cpu_tanh_to_rgb(x, w, h, ld, ab, want);
    void *dx = dup_to_dev(x, nx * 2), *dab = dup_to_dev(ab, sizeof ab), *drgb;
    CK(cudaMalloc(&drgb, n));
    CK(cudaMemset(drgb, 0xa5, n));
    LAUNCH(sfk_tanh_to_rgb(NULL, dx, w, h, ld, dab, drgb));
    CK(cudaMemcpy(got, drgb, n, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++) {
        int dd = abs((int)want[i] - (int)got[i]);
        worst = dd > worst ? dd : worst;
    }
    snprintf(d, sizeof d, "%dx%d of ld %d, largest difference %d", w, h, ld, worst);
    report(worst <= 1, "tanh_to_rgb", d);
    cudaFree(dx); cudaFree(dab); cudaFree(drgb);
    free(x); free(want); free(got);
}

int main(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);

    if (e != cudaSuccess || n == 0) {
        printf("SKIP gpu kernels against their CPU twins: no CUDA device (%s)\n",
               e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        return 0;
    }
    check_rgb(257, 131);
    check_norm(64, 48, 64, 64, 32, 1, 0, 0.0);
    check_norm(301, 199, 303, 301, 32, 1, 0, 40.0);       /* pitched read, big mean */
    check_norm(1024, 1024, 1024, 1025, 32, 1, 0, 3.0);    /* 1024 blocks, pitched write */
    check_norm(129, 77, 129, 129, 64, 1, 0, -5.0);
    check_norm(256, 256, 256, 256, 128, 0, 1, 1.0);       /* residual */
    check_norm(33, 17, 35, 33, 128, 1, 0, 0.5);
    check_norm(97, 61, 97, 97, 8, 0, 0, 2.0);
    check_tanh(97, 61, 100);
    check_tanh(1, 1, 4);
    return failed;
}
