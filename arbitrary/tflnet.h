/* tflnet.h: runs a TFLite graph (tflite.h) planned for one input size:
 * Magenta's arbitrary-style networks (../shared/docs/arbitrary.md).
 *
 * A plan is the model's read-only constants (float16 widened to float32
 * once, float DEQUANTIZEs of constants folded), every tensor's shape at
 * that size, and one arena holding all activations at offsets chosen by
 * liveness (greedy by size; an element-wise op's output over its dying
 * input: 48 MB at 1 MP for the transformer).  The instance norms' two full-size intermediates (the squared
 * differences, and x times the scale) are fused into their one reader and
 * never stored, and so are the mirror pad and nearest resize in front of a
 * full-resolution convolution, which reads through them as it lays out its
 * planar input, a band of rows at a time, in a buffer per thread.
 * sf_tflnet_run allocates nothing: it is a loop over the ops.  With
 * STYLEFS_PROFILE=1 the plan logs its memory and each run its time per
 * convolution and per other op over 1 ms, to stderr.
 *
 * Sizes generalize as arbitrary.md section 7 says: the spatial size of the
 * first input may differ from the file's; RESIZE_NEAREST_NEIGHBOR scales
 * by the ratio of its constant size to its input's size in the file.
 *
 * Arithmetic: float32 ops in float32 (reductions summed in double, the
 * instance norms' statistics from float sums over blocks of pixels); int8
 * ops (the full-integer predictor) by the integer rules of section 3,
 * which reproduce LiteRT bit for bit.  The loops here are portable C (the
 * reference); with a kernel table, float convolutions with few output
 * channels (all of the transformer's) run on its tconv and tconvp, int8
 * ones on its qdot and qdw (exact int32 sums), and the norms' sums on its
 * norm_sums.
 *
 * Returns 0 or -errno. */
#ifndef SF_TFLNET_H
#define SF_TFLNET_H

#include <stddef.h>

#include "tflite.h"

struct sf_tflnet;
struct sf_cpu_kernels;

/* Plan m with its first input at h x w (0, 0: the file's own size).
 * k (may be NULL: portable loops only) supplies the vector kernels (cpu.h:
 * tconv and tconvp for float convolutions with at most 64 output
 * channels, qdot and qdw for int8 ones, norm_sums).
 * Returns 0, -EINVAL (an op, type or shape this runner does not support,
 * or a size the graph cannot take: why says which), -ENOMEM. */
int sf_tflnet_plan(const struct sf_tfl_model *m, int h, int w, const struct sf_cpu_kernels *k,
                   struct sf_tflnet **out, char *why, size_t whylen);
void sf_tflnet_free(struct sf_tflnet *n);

/* Input i as float32 NHWC (quantized inputs are not supported): where to
 * write it, and its element count. */
float *sf_tflnet_input(struct sf_tflnet *n, int i, size_t *elems);
/* Run the plan.  Returns 0. */
int sf_tflnet_run(struct sf_tflnet *n);
/* Output i (float32 NHWC, valid until the next run) and its shape. */
const float *sf_tflnet_output(const struct sf_tflnet *n, int i, int shape[4]);

#endif
