/* twins.c: CPU twins of the kernels in sf_kernels.cu, and fp16 helpers.
 *
 * Each sfk_cpu_* function computes what its GPU kernel computes, in the
 * same order with the same fp32 arithmetic (statistics in double), so that
 * tests/gpu_check.c can compare the two on random data.  The fp16
 * conversions round to nearest even, like __float2half_rn, and are also
 * what the CUDA engine uses to convert weights on the host. */
#include "sf_kernels.h"

#include <math.h>
#include <string.h>

uint16_t sfk_f2h(float f)
{
    uint32_t x, sign, mant;
    int exp;

    memcpy(&x, &f, 4);
    sign = (x >> 16) & 0x8000u;
    exp = (int)((x >> 23) & 0xff) - 127 + 15;
    mant = x & 0x7fffffu;
    if (((x >> 23) & 0xff) == 0xff)                     /* inf, NaN */
        return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u : 0));
    if (exp >= 31)                                       /* overflow */
        return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) {                                      /* subnormal or zero */
        if (exp < -10)
            return (uint16_t)sign;
        mant |= 0x800000u;
        int shift = 14 - exp;
        uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t h = sign | ((uint32_t)exp << 10) | (mant >> 13), rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
        h++;                                             /* may carry into inf: correct */
    return (uint16_t)h;
}

float sfk_h2f(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, x;
    float f;

    if (exp == 0) {
        f = ldexpf((float)mant, -24);
        return sign ? -f : f;
    }
    if (exp == 31)
        x = sign | 0x7f800000u | (mant << 13);
    else
        x = sign | ((exp + 112) << 23) | (mant << 13);
    memcpy(&f, &x, 4);
    return f;
}

void sfk_cpu_rgb_to_tensor(const uint8_t *rgb, int w, int h, uint16_t *x)
{
    for (long i = 0; i < (long)w * h; i++)
        for (int k = 0; k < 8; k++)
            x[i * 8 + k] = k < 3 ? sfk_f2h((float)rgb[3 * i + k]) : 0;
}

void sfk_cpu_in_stats_ab(const uint16_t *x, int w, int h, int ld, int c, const float *gamma,
                         const float *beta, float eps, float *ab)
{
    for (int ch = 0; ch < c; ch++) {
        double s = 0, q = 0, n = (double)w * h, mean, var;
        for (int r = 0; r < h; r++)
            for (int col = 0; col < w; col++)
                s += sfk_h2f(x[((long)r * ld + col) * c + ch]);
        mean = s / n;
        for (int r = 0; r < h; r++)
            for (int col = 0; col < w; col++) {
                double d = sfk_h2f(x[((long)r * ld + col) * c + ch]) - mean;
                q += d * d;
            }
        var = q / n;
        float a = (float)(gamma[ch] / sqrt(var + (double)eps));
        ab[2 * ch] = a;
        ab[2 * ch + 1] = (float)(beta[ch] - mean * a);
    }
}

void sfk_cpu_in_apply(const uint16_t *x, int w, int h, int ldx, int c, const float *ab,
                      const uint16_t *res, int relu, uint16_t *y, int ldy)
{
    for (int r = 0; r < h; r++)
        for (int col = 0; col < w; col++)
            for (int ch = 0; ch < c; ch++) {
                /* one rounding, as the kernel's __fmaf_rn: the norm's a*x
                 * and b nearly cancel, so a second rounding of a*x alone
                 * can move the fp16 result by more than a step */
                float f = fmaf(sfk_h2f(x[((long)r * ldx + col) * c + ch]), ab[2 * ch], ab[2 * ch + 1]);
                if (res)
                    f += sfk_h2f(res[((long)r * w + col) * c + ch]);
                if (relu)
                    f = f > 0 ? f : 0;
                y[((long)r * ldy + col) * c + ch] = sfk_f2h(f);
            }
}

void sfk_cpu_tanh_to_rgb(const uint16_t *x, int w, int h, int ld, const float *ab, uint8_t *rgb)
{
    for (int r = 0; r < h; r++)
        for (int col = 0; col < w; col++)
            for (int k = 0; k < 3; k++) {
                float v = tanhf(sfk_h2f(x[((long)r * ld + col) * 8 + k]) * ab[2 * k] + ab[2 * k + 1]);
                v = v * 150.0f + 127.5f;
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                rgb[((long)r * w + col) * 3 + k] = (uint8_t)(v + 0.5f);
            }
}
