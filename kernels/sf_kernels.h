/* sf_kernels.h: the GPU engine's own kernels, behind plain C launchers.
 *
 * cuDNN runs the convolutions; these kernels do the rest of the network of
 * ../shared/docs/network.md: the 8-bit RGB to tensor conversion, the
 * instance-norm statistics and their application (fused with ReLU or the
 * residual add), and the tanh output back to 8-bit RGB.  Host C code
 * includes this header only; it never sees CUDA syntax.
 *
 * Tensors are NHWC fp16, stored as uint16_t bit patterns, with C a multiple
 * of 8 so that every thread moves 16 bytes.  A row holds `ld` pixels
 * (ld >= w), which lets a kernel read the top-left w x h of a larger
 * buffer (the transposed convolutions' outputs) or write into the interior
 * of a zero-bordered one (the strided convolutions' inputs).
 *
 * Every launcher enqueues on `stream` (a cudaStream_t passed as void *)
 * and returns 0, or -EIO when the launch failed (sfk_last_error() then
 * names the CUDA error).  Nothing here allocates or synchronizes, so the
 * launchers can be captured in a CUDA graph.
 *
 * Each kernel has a CPU twin, sfk_cpu_*, in twins.c: the same arithmetic
 * in plain C, which tests/gpu_check.c compares against the GPU. */
#ifndef SF_KERNELS_H
#define SF_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SFK_IN_EPS 1e-3f
#define SFK_STATS_MAX_BLOCKS 1024

/* Partial-statistics blocks used for an h x w x c tensor (1..1024);
 * the scratch `part` of sfk_in_stats holds blocks * c * 3 floats. */
int sfk_stats_blocks(long pixels, int c);

/* rgb [h][w][3] uint8 -> x [h][w][8] fp16: channels 0..2 the values
 * 0..255, channels 3..7 zero (the first convolution's input is padded to
 * 8 channels for the tensor cores). */
int sfk_rgb_to_tensor(void *stream, const uint8_t *rgb, int w, int h, uint16_t *x);

/* Instance-norm statistics of x (w x h of a buffer with rows of ld pixels,
 * c in {8, 32, 64, 128}) into part[blocks][c][3] = count, mean, M2. */
int sfk_in_stats(void *stream, const uint16_t *x, int w, int h, int ld, int c,
                 float *part, int blocks);

/* Merge the partials (in double) into ab[c][2] = {a, b} with
 * a = gamma / sqrt(var + eps), b = beta - mean * a, so that the norm is
 * y = x * a + b. */
int sfk_in_finalize(void *stream, const float *part, int blocks, int c,
                    const float *gamma, const float *beta, float eps, float *ab);

/* y = x * a + b, then + res when res is not NULL (res: packed [h][w][c]),
 * then max(y, 0) when relu.  x has rows of ldx pixels, y rows of ldy
 * pixels.  y may equal res (the residual stream is updated in place). */
int sfk_in_apply(void *stream, const uint16_t *x, int w, int h, int ldx, int c,
                 const float *ab, const uint16_t *res, int relu, uint16_t *y, int ldy);

/* The output layer: for the top-left w x h of x (rows of ld pixels, c = 8,
 * channels 0..2 used), v = tanh(x * a + b) * 150 + 127.5, clamped to
 * 0..255 and rounded, into rgb [h][w][3]. */
int sfk_tanh_to_rgb(void *stream, const uint16_t *x, int w, int h, int ld,
                    const float *ab, uint8_t *rgb);

/* The CUDA error text behind the last -EIO from a launcher in this thread. */
const char *sfk_last_error(void);

/* ---- CPU twins (twins.c) and fp16 helpers ---------------------------- */

uint16_t sfk_f2h(float f);      /* round to nearest even, as __float2half_rn */
float sfk_h2f(uint16_t h);

void sfk_cpu_rgb_to_tensor(const uint8_t *rgb, int w, int h, uint16_t *x);
/* Statistics and finalize in one step: ab[c][2] as sfk_in_finalize. */
void sfk_cpu_in_stats_ab(const uint16_t *x, int w, int h, int ld, int c,
                         const float *gamma, const float *beta, float eps, float *ab);
void sfk_cpu_in_apply(const uint16_t *x, int w, int h, int ldx, int c, const float *ab,
                      const uint16_t *res, int relu, uint16_t *y, int ldy);
void sfk_cpu_tanh_to_rgb(const uint16_t *x, int w, int h, int ld, const float *ab,
                         uint8_t *rgb);

#ifdef __cplusplus
}
#endif

#endif
