/* sf_kernels.cu: the GPU engine's own kernels and their C launchers.
 *
 * See sf_kernels.h for the tensor layout and each launcher's contract.
 * Every kernel is memory-bound: each thread moves 16 bytes (8 fp16
 * channels) per access, coalesced across the warp, and arithmetic is fp32.
 * The instance-norm statistics use Welford per thread, Chan's merge across
 * a block (fp32, at most ~50 k pixels per block) and across blocks (fp64),
 * so a mean far from zero does not cancel the variance away. */
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <errno.h>
#include <stdio.h>

#include "sf_kernels.h"

static __thread char last_err[160];

const char *sfk_last_error(void) { return last_err; }

/* The one place that turns a launch's CUDA status into 0 or -EIO. */
static int launched(const char *what)
{
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess)
        return 0;
    snprintf(last_err, sizeof last_err, "%s: %s", what, cudaGetErrorString(e));
    return -EIO;
}

static inline unsigned blocks_for(long n, int threads) { return (unsigned)((n + threads - 1) / threads); }

__device__ __forceinline__ void unpack8(uint4 v, float f[8])
{
    const __half2 *h = reinterpret_cast<const __half2 *>(&v);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 t = __half22float2(h[i]);
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}

__device__ __forceinline__ uint4 pack8(const float f[8])
{
    uint4 v;
    __half2 *h = reinterpret_cast<__half2 *>(&v);
#pragma unroll
    for (int i = 0; i < 4; i++)
        h[i] = __floats2half2_rn(f[2 * i], f[2 * i + 1]);
    return v;
}

/* ---- 8-bit RGB -> fp16 [h][w][8] --------------------------------------- */

__global__ void k_rgb_to_tensor(const uint8_t *__restrict__ rgb, long n, uint4 *__restrict__ x)
{
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    const uint8_t *p = rgb + 3 * i;
    float f[8] = {(float)p[0], (float)p[1], (float)p[2], 0, 0, 0, 0, 0};
    x[i] = pack8(f);
}

extern "C" int sfk_rgb_to_tensor(void *stream, const uint8_t *rgb, int w, int h, uint16_t *x)
{
    long n = (long)w * h;
    k_rgb_to_tensor<<<blocks_for(n, 256), 256, 0, (cudaStream_t)stream>>>(rgb, n, (uint4 *)x);
    return launched("rgb_to_tensor");
}

/* ---- instance-norm statistics ------------------------------------------ */

extern "C" int sfk_stats_blocks(long pixels, int c)
{
    /* about 64 KB of input per block: enough blocks to fill the device on
     * a quarter-resolution tensor, few enough for a quick merge */
    long b = pixels * c * 2 / 65536;
    return b < 1 ? 1 : b > SFK_STATS_MAX_BLOCKS ? SFK_STATS_MAX_BLOCKS : (int)b;
}

template <int C>
__global__ void __launch_bounds__(256) k_in_stats(const __half *__restrict__ x, int w, long npix, int ld,
                                                  float *__restrict__ part)
{
    constexpr int G = C / 8;        /* threads per pixel, 8 channels each */
    constexpr int LANES = 256 / G;  /* pixels per step of the block */
    __shared__ float sn[LANES], sm[LANES][C], sq[LANES][C];
    const int t = threadIdx.x, g = t % G, lane = t / G;
    const long p0 = npix * blockIdx.x / gridDim.x, p1 = npix * (blockIdx.x + 1) / gridDim.x;
    float n = 0, mean[8], m2[8];

#pragma unroll
    for (int k = 0; k < 8; k++)
        mean[k] = m2[k] = 0;
    for (long p = p0 + lane; p < p1; p += LANES) {
        long row = p / w, col = p - row * w;
        float f[8];
        unpack8(*reinterpret_cast<const uint4 *>(x + (row * ld + col) * C + g * 8), f);
        n += 1;
        float inv = 1.0f / n;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            float d = f[k] - mean[k];
            mean[k] += d * inv;
            m2[k] += d * (f[k] - mean[k]);
        }
    }
    if (g == 0)
        sn[lane] = n;
#pragma unroll
    for (int k = 0; k < 8; k++) {
        sm[lane][g * 8 + k] = mean[k];
        sq[lane][g * 8 + k] = m2[k];
    }
    __syncthreads();
    if (t < C) {
        float N = 0, M = 0, Q = 0;
        for (int l = 0; l < LANES; l++) {
            float nb = sn[l];
            if (nb == 0)
                continue;
            float d = sm[l][t] - M, nn = N + nb;
            M += d * (nb / nn);
            Q += sq[l][t] + d * d * (N * nb / nn);
            N = nn;
        }
        float *o = part + ((long)blockIdx.x * C + t) * 3;
        o[0] = N;
        o[1] = M;
        o[2] = Q;
    }
}

extern "C" int sfk_in_stats(void *stream, const uint16_t *x, int w, int h, int ld, int c, float *part,
                            int blocks)
{
    cudaStream_t s = (cudaStream_t)stream;
    const __half *hx = (const __half *)x;
    long n = (long)w * h;

    switch (c) {
    case 8: k_in_stats<8><<<blocks, 256, 0, s>>>(hx, w, n, ld, part); break;
    case 32: k_in_stats<32><<<blocks, 256, 0, s>>>(hx, w, n, ld, part); break;
    case 64: k_in_stats<64><<<blocks, 256, 0, s>>>(hx, w, n, ld, part); break;
    case 128: k_in_stats<128><<<blocks, 256, 0, s>>>(hx, w, n, ld, part); break;
    default:
        snprintf(last_err, sizeof last_err, "in_stats: %d channels not supported", c);
        return -EIO;
    }
    return launched("in_stats");
}

/* One block per channel: each thread merges a stride of the partials, then
 * a tree merge in shared memory.  All in double. */
__global__ void k_in_finalize(const float *__restrict__ part, int blocks, int C, const float *__restrict__ gamma,
                              const float *__restrict__ beta, float eps, float2 *__restrict__ ab)
{
    __shared__ double sN[128], sM[128], sQ[128];
    const int c = blockIdx.x, t = threadIdx.x;
    double N = 0, M = 0, Q = 0;

    for (int b = t; b < blocks; b += blockDim.x) {
        const float *p = part + ((long)b * C + c) * 3;
        double nb = p[0];
        if (nb == 0)
            continue;
        double d = p[1] - M, nn = N + nb;
        M += d * nb / nn;
        Q += p[2] + d * d * N * nb / nn;
        N = nn;
    }
    sN[t] = N, sM[t] = M, sQ[t] = Q;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (t < half && sN[t + half] > 0) {
            double na = sN[t], nb = sN[t + half], nn = na + nb;
            double d = sM[t + half] - sM[t];
            sM[t] += d * nb / nn;
            sQ[t] += sQ[t + half] + d * d * na * nb / nn;
            sN[t] = nn;
        }
        __syncthreads();
    }
    if (t == 0) {
        double var = sN[0] > 0 ? sQ[0] / sN[0] : 0;
        float a = (float)(gamma[c] / sqrt(var + (double)eps));
        ab[c] = make_float2(a, (float)(beta[c] - sM[0] * a));
    }
}

extern "C" int sfk_in_finalize(void *stream, const float *part, int blocks, int c, const float *gamma,
                               const float *beta, float eps, float *ab)
{
    k_in_finalize<<<c, 128, 0, (cudaStream_t)stream>>>(part, blocks, c, gamma, beta, eps, (float2 *)ab);
    return launched("in_finalize");
}

/* ---- instance-norm apply, fused with ReLU or the residual add ------------ */

template <int C>
__global__ void k_in_apply(const __half *__restrict__ x, int w, long npix, int ldx, const float2 *__restrict__ ab,
                           const __half *res, int relu, __half *y, int ldy)
{
    constexpr int G = C / 8;
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i >= npix * G)
        return;
    long p = i / G, row = p / w, col = p - row * w;
    int g = (int)(i - p * G);
    float f[8];

    unpack8(*reinterpret_cast<const uint4 *>(x + (row * ldx + col) * C + g * 8), f);
#pragma unroll
    for (int k = 0; k < 8; k++) {
        float2 s = ab[g * 8 + k];
        f[k] = __fmaf_rn(f[k], s.x, s.y);   /* one rounding, as the twin's fmaf */
    }
    if (res) {
        float r[8];
        unpack8(*reinterpret_cast<const uint4 *>(res + p * C + g * 8), r);
#pragma unroll
        for (int k = 0; k < 8; k++)
            f[k] += r[k];
    }
    if (relu) {
#pragma unroll
        for (int k = 0; k < 8; k++)
            f[k] = fmaxf(f[k], 0.0f);
    }
    *reinterpret_cast<uint4 *>(y + (row * ldy + col) * C + g * 8) = pack8(f);
}

extern "C" int sfk_in_apply(void *stream, const uint16_t *x, int w, int h, int ldx, int c, const float *ab,
                            const uint16_t *res, int relu, uint16_t *y, int ldy)
{
    cudaStream_t s = (cudaStream_t)stream;
    const __half *hx = (const __half *)x, *hr = (const __half *)res;
    __half *hy = (__half *)y;
    const float2 *ab2 = (const float2 *)ab;
    long n = (long)w * h;
    unsigned nb = blocks_for(n * (c / 8), 256);

    switch (c) {
    case 8: k_in_apply<8><<<nb, 256, 0, s>>>(hx, w, n, ldx, ab2, hr, relu, hy, ldy); break;
    case 32: k_in_apply<32><<<nb, 256, 0, s>>>(hx, w, n, ldx, ab2, hr, relu, hy, ldy); break;
    case 64: k_in_apply<64><<<nb, 256, 0, s>>>(hx, w, n, ldx, ab2, hr, relu, hy, ldy); break;
    case 128: k_in_apply<128><<<nb, 256, 0, s>>>(hx, w, n, ldx, ab2, hr, relu, hy, ldy); break;
    default:
        snprintf(last_err, sizeof last_err, "in_apply: %d channels not supported", c);
        return -EIO;
    }
    return launched("in_apply");
}

/* ---- output: norm, tanh, 8-bit ------------------------------------------- */

__global__ void k_tanh_to_rgb(const __half *__restrict__ x, int w, long n, int ld, const float2 *__restrict__ ab,
                              uint8_t *__restrict__ rgb)
{
    long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    long row = i / w, col = i - row * w;
    const __half *px = x + (row * ld + col) * 8;
#pragma unroll
    for (int k = 0; k < 3; k++) {
        float2 s = ab[k];
        float v = tanhf(__half2float(px[k]) * s.x + s.y) * 150.0f + 127.5f;
        v = fminf(fmaxf(v, 0.0f), 255.0f);
        rgb[3 * i + k] = (uint8_t)(v + 0.5f);
    }
}

extern "C" int sfk_tanh_to_rgb(void *stream, const uint16_t *x, int w, int h, int ld, const float *ab,
                               uint8_t *rgb)
{
    long n = (long)w * h;
    k_tanh_to_rgb<<<blocks_for(n, 256), 256, 0, (cudaStream_t)stream>>>((const __half *)x, w, n, ld,
                                                                         (const float2 *)ab, rgb);
    return launched("tanh_to_rgb");
}
