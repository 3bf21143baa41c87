/* peak.c: the machine's own fp32 FMA peak, for `make bench`: each thread
 * runs a loop of independent FMA chains (enough to cover the FMA latency
 * on every core we know: 12 chains of one vector register each), at one
 * instruction-set level, and the GFLOP/s of all threads together is
 * printed.  Measured in the same run as the figures it is compared with,
 * since these VMs' throughput varies from period to period.
 *
 * At the generic level (the portable kernels, compiled for the base
 * instruction set: SSE2 on x86-64) the loop is a multiply and an add of
 * 16-byte vectors, which the compiler may fuse where the base has FMA
 * (aarch64).
 *
 * usage: peak LEVEL [THREADS]     LEVEL: avx512, avx2, neon, generic
 * prints: peak LEVEL THREADS gflops=N
 *
 * peak touch MB: the machine's rate of first touch, one thread writing MB
 * of fresh memory (sf_big_alloc: huge pages where the kernel gives them),
 * then the same memory again: a large image's first pass pays the first
 * figure for every byte it allocates, a later pass the second.
 * prints: touch MB first_gbs=N again_gbs=N */
#include "cpu.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHAINS 12
#define ITERS 20000000L

/* FMA(a, b, c) = a * b + c, one instruction of the level */
#define PEAK_BODY(V, LANES, FMA)                                                        \
    V acc[CHAINS], m, c;                                                                \
    for (int i = 0; i < CHAINS; i++)                                                    \
        for (int l = 0; l < LANES; l++)                                                 \
            acc[i][l] = 1.0f + i * 1e-3f;                                               \
    for (int l = 0; l < LANES; l++) {                                                   \
        m[l] = 0.999999f;                                                               \
        c[l] = 1e-6f;                                                                   \
    }                                                                                   \
    for (long it = 0; it < iters; it++) {                                               \
        _Pragma("GCC unroll 12")                                                        \
        for (int i = 0; i < CHAINS; i++)                                                \
            acc[i] = FMA(acc[i], m, c);                                                 \
    }                                                                                   \
    float s = 0;                                                                        \
    for (int i = 0; i < CHAINS; i++)                                                    \
        s += acc[i][0];                                                                 \
    return s;

typedef float v4f __attribute__((vector_size(16)));
#define MULADD(a, b, c) ((a) * (b) + (c))
static float run_generic(long iters) { PEAK_BODY(v4f, 4, MULADD) }

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2,fma"))) static float run_avx2(long iters)
{
    PEAK_BODY(__m256, 8, _mm256_fmadd_ps)
}
__attribute__((target("avx512f,fma"))) static float run_avx512(long iters)
{
    PEAK_BODY(__m512, 16, _mm512_fmadd_ps)
}
#elif defined(__aarch64__)
#include <arm_neon.h>
#define NEON_FMA(a, b, c) vfmaq_f32(c, a, b)
static float run_neon(long iters) { PEAK_BODY(float32x4_t, 4, NEON_FMA) }
#endif

static int touch(size_t mb)
{
    size_t n = mb << 20;
    char *p = sf_big_alloc(n);
    double t0, t1, t2;

    if (!p) {
        fprintf(stderr, "peak: touch: out of memory\n");
        return 1;
    }
    t0 = omp_get_wtime();
    memset(p, 1, n);
    t1 = omp_get_wtime();
    memset(p, 2, n);
    t2 = omp_get_wtime();
    printf("touch %zu first_gbs=%.2f again_gbs=%.2f\n", mb, n / (t1 - t0) / 1e9, n / (t2 - t1) / 1e9);
    free(p);
    return 0;
}

int main(int argc, char **argv)
{
    enum sf_cpu_level lv;
    int threads = argc > 2 ? atoi(argv[2]) : omp_get_max_threads(), lanes = 0;
    float (*fn)(long) = NULL;

    if (argc == 3 && !strcmp(argv[1], "touch") && atoi(argv[2]) > 0)
        return touch((size_t)atoi(argv[2]));
    if (argc < 2 || sf_cpu_level_parse(argv[1], &lv) || !sf_cpu_level_supported(lv)) {
        fprintf(stderr, "usage: peak avx512|avx2|neon|generic [THREADS] (a level this CPU runs), or peak touch MB\n");
        return 2;
    }
    if (lv == SF_CPU_GENERIC) { fn = run_generic; lanes = 4; }
#if defined(__x86_64__)
    if (lv == SF_CPU_AVX2) { fn = run_avx2; lanes = 8; }
    if (lv == SF_CPU_AVX512) { fn = run_avx512; lanes = 16; }
#elif defined(__aarch64__)
    if (lv == SF_CPU_NEON) { fn = run_neon; lanes = 4; }
#endif
    if (!fn) {
        fprintf(stderr, "peak: no FMA loop for %s\n", argv[1]);
        return 2;
    }
    volatile float sink = 0;
    fn(ITERS / 20);                             /* warm up the clocks */
    double t = omp_get_wtime();
#pragma omp parallel num_threads(threads)
    {
        float s = fn(ITERS);
#pragma omp atomic
        sink += s;
    }
    t = omp_get_wtime() - t;
    printf("peak %s %d gflops=%.1f\n", argv[1], threads, 2.0 * lanes * CHAINS * ITERS * threads / t / 1e9);
    return 0;
}
