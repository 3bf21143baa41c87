/* cpu_engine.h: the CPU engine's state, shared by cpu/cpu_engine.c (ops,
 * buffers, steps, forward pass) and cpu/plan.c (the oneDNN primitives).
 *
 * DESIGN: an engine keeps one *plan* for the last image shape it ran: a
 * layout configuration, the oneDNN primitives and their memory objects,
 * every activation buffer, one shared scratchpad, and the list of steps
 * the forward pass runs.  A new shape rebuilds the plan (the only
 * allocation); forward() is a loop over the steps and allocates nothing.
 * Weights live in the read-only sf_model in their stored layout and are
 * reordered into the plan's layouts when the model differs from the last
 * one run.  From SF_BANDS_FROM_PIXELS up (engine.h) the plan is a banded
 * one instead (bands.c: the same primitives planned for bands of rows, an
 * arena, and a scratch file), made for one run and freed after it, so
 * memory stays bounded.  Callers are serialized by sf_engine.lock (src/engine.h), so
 * nothing here has a lock of its own.
 *
 * Layouts.  A plan's configuration (struct plan_cfg) gives each tensor's
 * channel block (cpu.h): NHWC, or oneDNN's nChw8c / nChw16c.  The plan
 * tries the configurations in order and takes the first in which oneDNN
 * has a vector implementation of every layer: it reads each primitive's
 * implementation string and refuses "ref".  On AVX-512, NHWC edges with
 * the residual stage in Winograd on nChw16c; on AVX2 (no Winograd in
 * oneDNN 2.6, and ref:any for NHWC <-> blocked mixes) nChw8c throughout.
 *
 * Shapes, for an input of h0 x w0 (SAME padding, see network.md):
 *   h1 = ceil(h0/2), h2 = ceil(h1/2), h3 = 2*h2, h4 = 2*h3 >= h0
 *   B [h4][w4][32]    layer 0 out (h0 x w0 of it); later layer 14 out
 *   M [h3][w3][64]    layer 1 out (h1 x w1); later layer 13 out
 *                     (layer 0's prepared input and layer 15's output O
 *                     [h4][w4][3] live in M while it is dead)
 *   X [h2][w2][128]   the residual stream
 *   T, U [h2][w2][128] inside a residual block (and, in the NHWC
 *                     configuration, layer 2's output before it is
 *                     reordered into X, and layer 13's input)
 * With bf16 (AVX512_BF16, NHWC configuration only), layer 13 reads T as
 * bf16 and layer 14 reads T as [h3][w3][64] bf16: the same bytes. */
#ifndef SF_CPU_ENGINE_IMPL_H
#define SF_CPU_ENGINE_IMPL_H

#include <dnnl.h>

#include "cpu.h"
#include "model.h"
#include "util.h"

/* One layout configuration.  cb_* are the channel blocks of the 32-, 64-
 * and 128-channel tensors (cb = C: NHWC); cb_res is the residual stream's.
 * With cb_128 != cb_res, layer 2's output is reordered into the residual
 * layout and back before layer 13. */
struct plan_cfg {
    const char *name;
    int cb_32, cb_64, cb_128, cb_res;
    int winograd;               /* residual convolutions in Winograd */
    int own;                    /* layers 1-14 on our 3x3 kernels, not oneDNN */
    int own_wino;               /* residual layers on our Winograd (cb_res = its wino_cb) */
};

/* A oneDNN convolution or transposed convolution of layer i. */
struct dnn_layer {
    dnnl_primitive_t prim;      /* forward inference */
    dnnl_primitive_t wreorder;  /* stored weights -> prim's layout */
    dnnl_memory_t src, dst;     /* views of the activation buffers */
    dnnl_memory_t wuser;        /* stored layout; handle set per model */
    dnnl_memory_t wprim;        /* prim's layout, in wbuf */
    dnnl_memory_t scratch;      /* view of the shared scratchpad */
    void *wbuf;
};

enum step_op {
    OP_CONV0,       /* our layer 0: prepare the input, then the rows */
    OP_DNNL,        /* a oneDNN layer */
    OP_CONV3,       /* one of layers 1-14 on our 3x3 kernel */
    OP_WINO,        /* a residual layer on our Winograd kernel */
    OP_REORDER,     /* a oneDNN reorder (layouts) */
    OP_NORM,        /* instance norm of a layer's output: ReLU, residual add or plain */
    OP_NORM_STATS,  /* layer 14's norm, statistics only (outconv applies it) */
    OP_NORM_BF16,   /* layer 13's norm and ReLU into bf16 (bf16 plans) */
    OP_OUTCONV,     /* our layer 15 */
    OP_OUTPUT,      /* layer 15's norm, tanh, 8 bits, crop */
};

struct step {
    enum step_op op;
    int layer;                  /* the network layer it belongs to */
    float *x;                   /* OP_NORM*: the tensor */
    size_t hw;                  /* its pixels */
    int c, cb;                  /* its channels, channel block */
    int relu;
    float *res;                 /* OP_NORM: add into this (residual) */
    int fused;                  /* OP_NORM: the coefficients come from the sums the
                                 * step before took (fsum, fsq: OP_WINO, OP_CONV0) */
    int defer;                  /* and nothing is applied here: the next OP_WINO (pre)
                                 * applies them, with the ReLU */
    int pre;                    /* OP_WINO: apply pa, pb (and ReLU) to the input */
    dnnl_primitive_t reorder;   /* OP_REORDER */
    dnnl_memory_t from, to;
};

#define MAX_STEPS 48

struct sf_engine_impl {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    struct sf_cpu_features feat;
    struct sf_cpu_kernels k;    /* this engine's kernels, chosen once at open */
    int profile;                /* STYLEFS_PROFILE=1: log per-layer times */
    int winograd;               /* STYLEFS_CPU_WINOGRAD=0 turns it off */
    int lowp;                   /* int16 / bf16 allowed (not STYLEFS_CPU_BF16=0) */
    int dnnl_off;               /* STYLEFS_CPU_DNNL=0: our 3x3 kernels only */

    /* the plan (h = 0: none) */
    int h, w;
    const struct plan_cfg *cfg;
    int bf16;                   /* this plan runs layers 13-15 in bf16 */
    struct dnn_layer L[SF_LAYERS];
    char impl[SF_LAYERS][72];   /* what each layer runs */
    double flops[SF_LAYERS];
    float *B, *M, *X, *T, *U, *O;   /* all in one block (the layout in plan_try) */
    float *Y;                   /* layer 14's output, in the block too */
    uint16_t *T16;              /* layer 14's bf16 input, in the block too */
    void *c0buf;                /* layer 0's prepared input (in M when it fits) */
    float *band;                /* layer 15's per-thread bands */
    size_t band_floats;         /* per thread */
    int nthreads;
    dnnl_primitive_t to_res, from_res;  /* 128-channel layout changes */
    dnnl_memory_t mT, mX;       /* to_res's views of T and X */
    dnnl_memory_t mXr, mTr;     /* from_res's views of X and T (T maybe bf16) */
    void *scratch;              /* scratchpad of layers 0-2, 13, 14 */
    void *scratch_res;          /* of layers 3..12 when the block's tail is too small */
    struct sf_conv3_shape c3[SF_LAYERS];    /* layers on our 3x3 kernel */
    float *c3in[SF_LAYERS], *c3out[SF_LAYERS];
    const float *c3w[SF_LAYERS];            /* their weights, [ky][kx][cin][cout] */
    float *wU;                  /* own Winograd: layers 3-12's U [10][36][128][128] */
    float *wscratch;            /* and its per-thread scratch */
    double *wstat;              /* and its sums, [blocks of tiles][2][128] */
    double *c0stat;             /* layer 0's sums, [pairs of rows][2][32] */
    double fsum[128], fsq[128]; /* the last OP_WINO's or OP_CONV0's output sums, added
                                 * up block by block in order, so whatever the threads
                                 * and their schedule, the same to the last bit */
    float pa[128], pb[128];     /* a fused norm's coefficients, for the next OP_WINO */
    struct step steps[MAX_STEPS];
    int nsteps;

    struct sf_bands *bands;     /* the banded plan's own state (bands.c), or NULL */
    int bands_refused;          /* times no banded plan could be made (said once) */

    /* weights of our kernels (sizes from k), and the model they hold */
    void *w0q, *wout, *wout16;
    float *wdec[2];             /* layers 13, 14 as [ky][kx][cin][cout] (own configuration) */
    float na[32], nb[32];       /* layer 14's norm, applied by outconv */
    const float *wmodel;        /* NULL: no model's weights loaded */
    uint8_t wdigest[16];
};

/* Smallest image (pixels) whose layers 13-15 run in bf16: below it they
 * cost well under a millisecond, and at 37x29 one style came within 0.007%
 * of the oracle's 99.9% bar, against >= 99.998% at 1 MP. */
#define BF16_MIN_PIXELS (128 * 128)

/* SAME padding (network.md): output size and padding before and after. */
static inline void sf_same_pad(int n, int k, int s, int *out, int *before, int *after)
{
    int o = (n + s - 1) / s;
    int total = (o - 1) * s + k - n;
    if (total < 0)
        total = 0;
    *out = o;
    *before = total / 2;
    *after = total - total / 2;
}

/* cpu_engine.c, for bands.c */
/* Free the plan, whole-image or banded. */
void sf_cpu_plan_free(struct sf_engine_impl *e);
/* Load m's weights into the plan's layouts (nothing when they are there).
 * Returns 0 or -errno (oneDNN's reorders). */
int sf_cpu_load_weights(struct sf_engine_impl *e, const struct sf_model *m);
/* Instance-norm coefficients a, b of c channels from sums of (x - shift)
 * and its square over hw pixels (shift NULL: raw sums). */
void sf_cpu_coeffs(const double *sum, const double *sq, const float *shift, size_t hw, int c,
                   const float *gamma, const float *beta, float *a, float *b);

/* bands.c: the banded pass (a full-size image in bounded memory) */
/* Quarter-resolution rows per band for an h x w image, or 0 for the
 * whole-image pass (STYLEFS_CPU_BANDS, else by size: bands.c says how). */
int sf_bands_rows(const struct sf_engine_impl *e, int h, int w);
/* One forward pass in bands of q quarter rows, planning them first when
 * the plan is another.  Returns 0, -ENOTSUP (no banded plan on this CPU:
 * the caller runs the whole image), -ENOMEM, -ENOSPC or -EIO (the
 * scratch file), -ECANCELED. */
int sf_bands_run(struct sf_engine_impl *e, const struct sf_model *m, const uint8_t *rgb, int w, int h,
                 uint8_t *out, int q, const sf_cancel_flag *cancel);
void sf_bands_free(struct sf_engine_impl *e);

/* plan.c */
extern const struct plan_cfg sf_plan_cfgs[];
extern const int sf_plan_ncfgs;
/* Build the primitives of layer i (conv or transposed conv): input
 * [hin][win][cin] in src with channel block cb_in, output into dst with
 * cb_out; bf16 source and weights when bf16.  Padding is SAME (network.md)
 * unless vpad is given: then the rows are a band's, with vpad[0] rows of
 * zeros before and vpad[1] after for a convolution, or for a transposed
 * convolution vpad[0] output rows cut before and vpad[1] after (the
 * columns stay SAME).  Sets *hout, *wout and raises
 * *scratch_need to its scratchpad.  Writes what runs into e->impl[i].
 * Returns 0, -ENOTSUP (oneDNN has only a reference implementation, or no
 * Winograd when asked for), -ENOMEM, -EINVAL, -EIO. */
int sf_plan_layer(struct sf_engine_impl *e, int i, float *src, int hin, int win, int cb_in, float *dst,
                  int cb_out, int winograd, int bf16, const int *vpad, int *hout, int *wout, size_t *scratch_need);
/* A reorder of [1][c][h][w] between channel blocks (dt_to: bf16 or f32). */
int sf_plan_reorder(struct sf_engine_impl *e, int c, int h, int w, int cb_from, float *from, int cb_to,
                    int to_bf16, float *to, dnnl_primitive_t *r, dnnl_memory_t *mfrom, dnnl_memory_t *mto);
/* Free every oneDNN object of the plan, or of layer i. */
void sf_plan_free_dnnl(struct sf_engine_impl *e);
void sf_plan_free_layer(struct sf_engine_impl *e, int i);
/* Run a layer's primitive, or a reorder, and wait.  Returns 0 or -errno. */
int sf_plan_exec_layer(struct sf_engine_impl *e, int i);
int sf_plan_exec_reorder(struct sf_engine_impl *e, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to);
/* Reorder the stored weights of the model into every layer's layout. */
int sf_plan_load_weights(struct sf_engine_impl *e, const struct sf_model *m);
/* The one place that turns oneDNN statuses into -errno. */
int sf_dnnl_errno(dnnl_status_t s);

#endif
