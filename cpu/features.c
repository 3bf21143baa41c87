/* features.c: which instruction sets this CPU runs, and the
 * STYLEFS_CPU_ISA cap.
 *
 * x86-64: cpuid leaf 7 for AVX2, AVX-512 and its extensions, leaf 1 for
 * FMA and OSXSAVE, and XGETBV for the register state the kernel saves (a
 * CPU can have AVX-512 that the OS does not enable).  aarch64:
 * getauxval(AT_HWCAP) for Advanced SIMD.  Anything else is "generic". */
#include "cpu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1 << 1)
#endif
#endif

static const char *const names[] = { "generic", "neon", "avx2", "avx512" };

const char *sf_cpu_level_name(enum sf_cpu_level l)
{
    return (unsigned)l < sizeof names / sizeof *names ? names[l] : "?";
}

int sf_cpu_level_parse(const char *s, enum sf_cpu_level *out)
{
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(s, names[i])) {
            *out = (enum sf_cpu_level)i;
            return 0;
        }
    return -EINVAL;
}

/* The raw features, read once (cpuid is cheap, but this runs per engine). */
static void probe(enum sf_cpu_level *best, int *vnni, int *bf16)
{
    *best = SF_CPU_GENERIC;
    *vnni = *bf16 = 0;
#if defined(__x86_64__)
    unsigned a, b, c, d, max = __get_cpuid_max(0, NULL);
    unsigned long long xcr0 = 0;
    int fma, osxsave;

    if (max < 7 || !__get_cpuid(1, &a, &b, &c, &d))
        return;
    fma = (c >> 12) & 1;
    osxsave = (c >> 27) & 1;
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((unsigned long long)hi << 32) | lo;
    }
    __cpuid_count(7, 0, a, b, c, d);
    int avx2 = (b >> 5) & 1, f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    int vnni_ = (c >> 11) & 1;
    int ymm_os = (xcr0 & 0x6) == 0x6, zmm_os = (xcr0 & 0xe6) == 0xe6;
    if (avx2 && fma && ymm_os)
        *best = SF_CPU_AVX2;
    if (*best == SF_CPU_AVX2 && f && dq && bw && vl && zmm_os) {
        *best = SF_CPU_AVX512;
        *vnni = vnni_;
        __cpuid_count(7, 1, a, b, c, d);
        *bf16 = (a >> 5) & 1;
    }
#elif defined(__aarch64__)
    if (getauxval(AT_HWCAP) & HWCAP_ASIMD)
        *best = SF_CPU_NEON;
#endif
}

int sf_cpu_level_supported(enum sf_cpu_level l)
{
    enum sf_cpu_level best;
    int v, b;

    probe(&best, &v, &b);
    if (l == SF_CPU_GENERIC)
        return 1;
    if (l == SF_CPU_NEON)
        return best == SF_CPU_NEON;
    return (best == SF_CPU_AVX2 || best == SF_CPU_AVX512) && l <= best;
}

void sf_cpu_levels_str(char *buf, size_t len)
{
    size_t n = 0;

    buf[0] = 0;
    for (int l = SF_CPU_AVX512; l >= SF_CPU_GENERIC && n < len; l--)
        if (sf_cpu_level_supported((enum sf_cpu_level)l))
            n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? " " : "", names[l]);
}

int sf_cpu_detect(struct sf_cpu_features *f, char *why, size_t whylen)
{
    const char *cap = getenv("STYLEFS_CPU_ISA");
    enum sf_cpu_level want;

    memset(f, 0, sizeof *f);
    probe(&f->best, &f->avx512_vnni, &f->avx512_bf16);
    f->level = f->best;
    if (!cap || !*cap)
        return 0;
    if (sf_cpu_level_parse(cap, &want)) {
        snprintf(why, whylen, "STYLEFS_CPU_ISA=%s: not a level (generic, neon, avx2, avx512)", cap);
        return -EINVAL;
    }
    if (!sf_cpu_level_supported(want)) {
        snprintf(why, whylen, "STYLEFS_CPU_ISA=%s: this CPU cannot run it (best: %s)", cap,
                 sf_cpu_level_name(f->best));
        return -EINVAL;
    }
    f->capped = want != f->best;
    f->level = want;
    if (want < SF_CPU_AVX512)
        f->avx512_vnni = f->avx512_bf16 = 0;
    return 0;
}

void sf_cpu_kernels_fill(struct sf_cpu_kernels *k, const struct sf_cpu_features *f, enum sf_cpu_level level,
                         int lowp)
{
    memset(k, 0, sizeof *k);
    if (level > f->level)
        level = f->level;
    sf_kern_ref(k);
#if defined(__x86_64__)
    if (level >= SF_CPU_AVX2) {
        sf_kern_avx2(k);
        if (lowp)
            sf_kern_avx2_int16(k);
    }
    if (level >= SF_CPU_AVX512) {
        sf_kern_avx512(k);
        if (lowp && f->avx512_vnni)
            sf_kern_avx512_vnni(k);
        if (lowp && f->avx512_bf16)
            sf_kern_avx512_bf16(k);
    }
#elif defined(__aarch64__)
    if (level == SF_CPU_NEON)
        sf_kern_neon(k);
#endif
    k->level = level;
}
