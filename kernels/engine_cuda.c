/* engine_cuda.c: the style network on an NVIDIA GPU (CUDA + cuDNN).
 *
 * Built into its own shared module, stylefs-cuda.so, which engine.c loads
 * with dlopen: the stylefs binary itself links no CUDA library, so it runs
 * on machines with no NVIDIA driver or cuDNN and falls back to the CPU.
 * The module links cudart statically and libcudnn.so.9 dynamically.
 *
 * cuDNN runs every convolution (fp16 NHWC data, fp32 accumulation, tensor
 * core math); kernels/sf_kernels.cu runs the rest.  The transposed
 * convolutions are cuDNN backward-data of the matching strided forward
 * convolution (no kernel flip needed: the adjoint of a cross-correlation is
 * exactly network.md's scatter).
 *
 * DESIGN: one engine = one CUDA stream and one cuDNN handle, created at the
 * first stylization (engine.c opens engines lazily) and destroyed, with the
 * primary context, by close() (engine.c closes an idle engine after
 * gpu_idle seconds, so an idle process holds no GPU memory).  Callers are
 * serialized by sf_engine.lock: one queue.  Per image shape the engine
 * builds a *plan*: descriptors, chosen algorithms, every activation
 * buffer, pinned host staging, one workspace, and a CUDA graph of the whole
 * pass (upload, 16 layers, download).  forward() allocates nothing: it
 * copies the image into pinned memory, launches the graph and waits.
 * Weights are converted to fp16 in cuDNN's KRSC layout once per style and
 * kept on the device (a few MB each); the active style is copied into the
 * fixed buffers the graph reads, so one graph serves every style.
 *
 * Shapes, for an input of h0 x w0 (SAME padding, network.md), per side:
 *   h1 = ceil(h0/2), h2 = ceil(h1/2), h3 = 2*h2, h4 = 2*h3 (>= h0).
 *   A strided 3x3 convolution pads (n odd ? 1 : 0) before and 1 after,
 *   which cuDNN cannot express, so its input is written into a zeroed
 *   buffer with that border (P1, P2) and cuDNN pads nothing.
 *   IN [h0][w0][8]      input (channels 3..7 zero)             in B
 *   C0 [h0][w0][32]     layer 0 conv                            in A
 *   P1 [h0+pb+1][w0+pb+1][32]  layer 0 out, bordered            in B
 *   C1 [h1][w1][64]     layer 1 conv                            in MA
 *   P2 [h1+pb+1][w1+pb+1][64]  layer 1 out, bordered            in MB
 *   T, U, X [h2][w2][128]  residual blocks; X is the stream
 *   D3 [2h2+1][2w2+1][64]  layer 13 backward-data (top-left h3 x w3 used) in MA
 *   Y3 [h3][w3][64]     layer 13 out                            in MB
 *   D4 [2h3+1][2w3+1][32]  layer 14 backward-data               in A
 *   Y4 [h4][w4][32]     layer 14 out                            in B
 *   O  [h4][w4][8]      layer 15 conv (channels 3..7 zero weights) in A
 *   then norm + tanh on the top-left h0 x w0 into 8-bit RGB. */
/* Messages are cut to their buffers on purpose. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "engine.h"
#include "log.h"
#include "sf_kernels.h"

#include <cuda_runtime.h>
#include <cudnn.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MODELS 16
#define WS_CAP (512UL << 20)    /* largest cuDNN workspace we accept */

static void (*logf_)(int level, const char *msg);

static void say(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int level, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (logf_)
        logf_(level, buf);
}

/* The one place that turns CUDA runtime statuses into -errno. */
static int cuda_errno(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return 0;
    case cudaErrorMemoryAllocation: return -ENOMEM;
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInitializationError:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorCompatNotSupportedOnDevice:
    case cudaErrorNoKernelImageForDevice:
        return -ENODEV;
    default: return -EIO;
    }
}

/* The one place that turns cuDNN statuses into -errno. */
static int cudnn_errno(cudnnStatus_t s)
{
    int v = (int)s;

    if (v == 0)
        return 0;
    if (v == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED ||
        v == CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
        return -ENOMEM;
    if (v >= 2000 && v < 3000)
        return -EINVAL;
    if (v >= 3000 && v < 4000)
        return -ENOTSUP;
    return -EIO;
}

#define CU(call)                                                                   \
    do {                                                                           \
        cudaError_t e_ = (call);                                                   \
        if (e_ != cudaSuccess) {                                                   \
            say(SF_LOG_ERR, "cuda: %s: %s", #call, cudaGetErrorString(e_));        \
            rc = cuda_errno(e_);                                                   \
            goto out_fail;                                                         \
        }                                                                          \
    } while (0)
#define DNN(call)                                                                  \
    do {                                                                           \
        cudnnStatus_t s_ = (call);                                                 \
        if (s_ != CUDNN_STATUS_SUCCESS) {                                          \
            say(SF_LOG_ERR, "cudnn: %s: %s", #call, cudnnGetErrorString(s_));      \
            rc = cudnn_errno(s_);                                                  \
            goto out_fail;                                                         \
        }                                                                          \
    } while (0)
#define K(call)                                                                    \
    do {                                                                           \
        if ((rc = (call)) != 0) {                                                  \
            say(SF_LOG_ERR, "cuda kernel: %s", sfk_last_error());                  \
            goto out_fail;                                                         \
        }                                                                          \
    } while (0)

/* Padded channel counts: the first conv's input and the last conv's
 * output are widened to 8 so every tensor suits the tensor cores. */
static int cin_pad(int l) { return sf_net[l].cin < 8 ? 8 : sf_net[l].cin; }
static int cout_pad(int l) { return sf_net[l].cout < 8 ? 8 : sf_net[l].cout; }

struct dev_model {
    uint8_t digest[16];
    int used;
    unsigned long tick;
    uint16_t *w;                /* every layer's KRSC fp16 weights */
    float *gb;                  /* every layer's gamma[cp], beta[cp] */
};

struct layer_plan {
    cudnnTensorDescriptor_t xd, yd;     /* conv input / output (deconv: dy / dx) */
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    int algo;                           /* fwd or bwd-data algorithm */
    size_t ws;
    const uint16_t *in;
    uint16_t *out;
    int ow, oh, old;                    /* normed region of out and its row pitch */
    int blocks;                         /* statistics blocks */
    uint16_t *dst;                      /* apply target (interior) */
    int ldy, relu;
    const uint16_t *res;
    uint16_t *zero;                     /* bordered buffer to clear first, or NULL */
    size_t zero_bytes;
};

struct sf_engine_impl {
    int dev;
    char desc[256];
    cudaStream_t st;
    cudnnHandle_t dnn;
    int find;                           /* benchmark algorithms (STYLEFS_CUDA_FIND=1) */
    int use_graph;                      /* STYLEFS_CUDA_GRAPH=0 turns graphs off */
    int timing;                         /* STYLEFS_CUDA_TIMING=1: log device time per pass */
    cudaEvent_t ev0, ev1;

    /* weights: per style on the device, and the active copy the plan reads */
    size_t w_off[SF_LAYERS], w_total;   /* in halves */
    size_t gb_off[SF_LAYERS], gb_total; /* in floats */
    struct dev_model models[MAX_MODELS];
    unsigned long tick;
    uint16_t *w_act;
    float *gb_act;
    uint8_t act_digest[16];
    int act_valid;

    /* the plan for one shape */
    int h, w;
    uint16_t *A, *B, *MA, *MB, *T, *U, *X;
    void *ws;
    float *part;                        /* [1024][128][3] statistics partials */
    float *ab;                          /* [16][128][2] per-layer a, b */
    uint8_t *d_in, *d_out, *h_in, *h_out;
    struct layer_plan L[SF_LAYERS];
    cudaGraphExec_t graph;
};

/* ---- weights ------------------------------------------------------------- */

static void weight_layout(struct sf_engine_impl *e)
{
    size_t wo = 0, go = 0;

    for (int l = 0; l < SF_LAYERS; l++) {
        const struct sf_layer_spec *s = &sf_net[l];
        e->w_off[l] = wo;
        e->gb_off[l] = go;
        wo += (size_t)cout_pad(l) * s->k * s->k * cin_pad(l);
        go += 2 * (size_t)cout_pad(l);
    }
    e->w_total = wo;
    e->gb_total = go;
}

/* Stored layouts (style.h) -> KRSC fp16 with zero padding; gamma/beta
 * padded with zeros.  Host buffers w[w_total], gb[gb_total]. */
static void convert_weights(const struct sf_engine_impl *e, const struct sf_model *m, uint16_t *w,
                            float *gb)
{
    memset(w, 0, e->w_total * 2);
    memset(gb, 0, e->gb_total * 4);
    for (int l = 0; l < SF_LAYERS; l++) {
        const struct sf_layer_spec *s = &sf_net[l];
        int k = s->k, cp = cin_pad(l), kp = cout_pad(l);
        uint16_t *dst = w + e->w_off[l];
        const float *src = m->weights[l];

        for (int r = 0; r < k; r++)
            for (int c = 0; c < k; c++)
                for (int a = 0; a < s->cin; a++)
                    for (int b = 0; b < s->cout; b++) {
                        if (s->kind == SF_CONV) {
                            /* stored [r][c][cin a][cout b] -> [K=b][r][c][C=a] */
                            float v = src[(((size_t)r * k + c) * s->cin + a) * s->cout + b];
                            dst[(((size_t)b * k + r) * k + c) * cp + a] = sfk_f2h(v);
                        } else {
                            /* stored [r][c][cout b][cin a]; the forward conv this is the
                             * adjoint of maps cout -> cin: filter [K=a][r][c][C=b] */
                            float v = src[(((size_t)r * k + c) * s->cout + b) * s->cin + a];
                            dst[(((size_t)a * k + r) * k + c) * s->cout + b] = sfk_f2h(v);
                        }
                    }
        for (int b = 0; b < s->cout; b++) {
            gb[e->gb_off[l] + b] = m->gamma[l][b];
            gb[e->gb_off[l] + kp + b] = m->beta[l][b];
        }
    }
}

/* Make m the active style: upload it once, then a device-to-device copy
 * into the buffers the plan reads, ordered on the stream. */
static int activate_model(struct sf_engine_impl *e, const struct sf_model *m)
{
    struct dev_model *slot = NULL, *oldest = &e->models[0];
    uint16_t *hw = NULL;
    float *hgb = NULL;
    int rc = 0;

    if (e->act_valid && !memcmp(e->act_digest, m->digest, 16))
        return 0;
    for (int i = 0; i < MAX_MODELS; i++) {
        struct dev_model *d = &e->models[i];
        if (d->used && !memcmp(d->digest, m->digest, 16)) {
            slot = d;
            break;
        }
        if (!d->used || (oldest->used && d->tick < oldest->tick))
            oldest = d;
    }
    if (!slot) {
        slot = oldest;
        if (slot->used) {
            cudaFree(slot->w);
            cudaFree(slot->gb);
            slot->used = 0;
        }
        hw = malloc(e->w_total * 2);
        hgb = malloc(e->gb_total * 4);
        if (!hw || !hgb) {
            rc = -ENOMEM;
            goto out_fail;
        }
        convert_weights(e, m, hw, hgb);
        CU(cudaMalloc((void **)&slot->w, e->w_total * 2));
        CU(cudaMalloc((void **)&slot->gb, e->gb_total * 4));
        /* on our stream (non-blocking: the legacy default stream does not
         * order against it), and finished before the host buffers go */
        CU(cudaMemcpyAsync(slot->w, hw, e->w_total * 2, cudaMemcpyHostToDevice, e->st));
        CU(cudaMemcpyAsync(slot->gb, hgb, e->gb_total * 4, cudaMemcpyHostToDevice, e->st));
        CU(cudaStreamSynchronize(e->st));
        memcpy(slot->digest, m->digest, 16);
        slot->used = 1;
    }
    slot->tick = ++e->tick;
    CU(cudaMemcpyAsync(e->w_act, slot->w, e->w_total * 2, cudaMemcpyDeviceToDevice, e->st));
    CU(cudaMemcpyAsync(e->gb_act, slot->gb, e->gb_total * 4, cudaMemcpyDeviceToDevice, e->st));
    memcpy(e->act_digest, m->digest, 16);
    e->act_valid = 1;
out_fail:
    if (rc && slot && !slot->used) {
        cudaFree(slot->w);
        cudaFree(slot->gb);
        slot->w = NULL;
        slot->gb = NULL;
    }
    free(hw);
    free(hgb);
    return rc;
}

/* ---- the plan ------------------------------------------------------------ */

static void plan_free(struct sf_engine_impl *e)
{
    if (e->graph)
        cudaGraphExecDestroy(e->graph);
    e->graph = NULL;
    for (int l = 0; l < SF_LAYERS; l++) {
        struct layer_plan *p = &e->L[l];
        if (p->xd) cudnnDestroyTensorDescriptor(p->xd);
        if (p->yd) cudnnDestroyTensorDescriptor(p->yd);
        if (p->wd) cudnnDestroyFilterDescriptor(p->wd);
        if (p->cd) cudnnDestroyConvolutionDescriptor(p->cd);
    }
    memset(e->L, 0, sizeof e->L);
    void *dev[] = {e->A, e->B, e->MA, e->MB, e->T, e->U, e->X, e->ws, e->part, e->ab, e->d_in, e->d_out};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        if (dev[i])
            cudaFree(dev[i]);
    if (e->h_in) cudaFreeHost(e->h_in);
    if (e->h_out) cudaFreeHost(e->h_out);
    e->A = e->B = e->MA = e->MB = e->T = e->U = e->X = NULL;
    e->ws = NULL;
    e->part = e->ab = NULL;
    e->d_in = e->d_out = e->h_in = e->h_out = NULL;
    e->h = e->w = 0;
}

static size_t max3(size_t a, size_t b, size_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

/* Descriptors and algorithm for layer l: input x of xh x xw x xc,
 * output y of yh x yw x yc (for a deconv, x is dy and y is dx). */
static int layer_desc(struct sf_engine_impl *e, int l, int xh, int xw, int yh, int yw, int pad)
{
    const struct sf_layer_spec *s = &sf_net[l];
    struct layer_plan *p = &e->L[l];
    int xc = s->kind == SF_CONV ? cin_pad(l) : s->cin, yc = s->kind == SF_CONV ? cout_pad(l) : s->cout;
    int rc = 0, n = 0, oh, ow, on, oc;

    DNN(cudnnCreateTensorDescriptor(&p->xd));
    DNN(cudnnCreateTensorDescriptor(&p->yd));
    DNN(cudnnCreateFilterDescriptor(&p->wd));
    DNN(cudnnCreateConvolutionDescriptor(&p->cd));
    DNN(cudnnSetTensor4dDescriptor(p->xd, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, 1, xc, xh, xw));
    DNN(cudnnSetTensor4dDescriptor(p->yd, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, 1, yc, yh, yw));
    DNN(cudnnSetConvolution2dDescriptor(p->cd, pad, pad, s->stride, s->stride, 1, 1,
                                        CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    DNN(cudnnSetConvolutionMathType(p->cd, CUDNN_TENSOR_OP_MATH));
    if (s->kind == SF_CONV) {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        DNN(cudnnSetFilter4dDescriptor(p->wd, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC, yc, xc, s->k, s->k));
        DNN(cudnnGetConvolution2dForwardOutputDim(p->cd, p->xd, p->wd, &on, &oc, &oh, &ow));
        if (oh != yh || ow != yw || oc != yc) {
            say(SF_LOG_ERR, "cuda: layer %d: cuDNN output %dx%dx%d, expected %dx%dx%d", l, oh, ow, oc, yh,
                yw, yc);
            return -EIO;
        }
        if (e->find)
            DNN(cudnnFindConvolutionForwardAlgorithm(e->dnn, p->xd, p->wd, p->cd, p->yd,
                                                     CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
        else
            DNN(cudnnGetConvolutionForwardAlgorithm_v7(e->dnn, p->xd, p->wd, p->cd, p->yd,
                                                       CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf));
        for (int i = 0; i < n; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= WS_CAP) {
                p->algo = perf[i].algo;
                DNN(cudnnSetConvolutionMathType(p->cd, perf[i].mathType));
                DNN(cudnnGetConvolutionForwardWorkspaceSize(e->dnn, p->xd, p->wd, p->cd, p->yd,
                                                            perf[i].algo, &p->ws));
                return 0;
            }
    } else {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        /* forward conv dx (cout ch) -> dy (cin ch): filter K = cin, C = cout */
        DNN(cudnnSetFilter4dDescriptor(p->wd, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC, xc, yc, s->k, s->k));
        DNN(cudnnGetConvolution2dForwardOutputDim(p->cd, p->yd, p->wd, &on, &oc, &oh, &ow));
        if (oh != xh || ow != xw || oc != xc) {
            say(SF_LOG_ERR, "cuda: layer %d: cuDNN adjoint shape %dx%dx%d, expected %dx%dx%d", l, oh, ow,
                oc, xh, xw, xc);
            return -EIO;
        }
        if (e->find)
            DNN(cudnnFindConvolutionBackwardDataAlgorithm(e->dnn, p->wd, p->xd, p->cd, p->yd,
                                                          CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf));
        else
            DNN(cudnnGetConvolutionBackwardDataAlgorithm_v7(e->dnn, p->wd, p->xd, p->cd, p->yd,
                                                            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf));
        for (int i = 0; i < n; i++)
            if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= WS_CAP) {
                p->algo = perf[i].algo;
                DNN(cudnnSetConvolutionMathType(p->cd, perf[i].mathType));
                DNN(cudnnGetConvolutionBackwardDataWorkspaceSize(e->dnn, p->wd, p->xd, p->cd, p->yd,
                                                                 perf[i].algo, &p->ws));
                return 0;
            }
    }
    say(SF_LOG_ERR, "cuda: layer %d: cuDNN has no algorithm for this shape", l);
    return -ENOTSUP;
out_fail:
    return rc;
}

/* Where layer l's norm reads and writes, and what it clears first. */
static void layer_io(struct layer_plan *p, const uint16_t *in, uint16_t *out, int oh, int ow, int old, int c,
                     uint16_t *dst, int ldy, int relu, const uint16_t *res)
{
    p->in = in;
    p->out = out;
    p->oh = oh;
    p->ow = ow;
    p->old = old;
    p->blocks = sfk_stats_blocks((long)oh * ow, c);
    p->dst = dst;
    p->ldy = ldy;
    p->relu = relu;
    p->res = res;
}

static int enqueue(struct sf_engine_impl *e);

static int plan_build(struct sf_engine_impl *e, int h0, int w0)
{
    int h1 = (h0 + 1) / 2, w1 = (w0 + 1) / 2, h2 = (h1 + 1) / 2, w2 = (w1 + 1) / 2;
    int h3 = 2 * h2, w3 = 2 * w2, h4 = 2 * h3, w4 = 2 * w3;
    int pbh0 = h0 & 1, pbw0 = w0 & 1, pbh1 = h1 & 1, pbw1 = w1 & 1;
    int p1h = h0 + pbh0 + 1, p1w = w0 + pbw0 + 1, p2h = h1 + pbh1 + 1, p2w = w1 + pbw1 + 1;
    size_t px0 = (size_t)h0 * w0, nA, nB, nMA, nMB, nQ, ws = 0;
    int rc = 0;

    /* buffer sizes in halves, see the table at the top */
    nA = max3(px0 * 32, (size_t)(2 * h3 + 1) * (2 * w3 + 1) * 32, (size_t)h4 * w4 * 8);
    nB = max3(px0 * 8, (size_t)p1h * p1w * 32, (size_t)h4 * w4 * 32);
    nMA = max3((size_t)h1 * w1 * 64, (size_t)(2 * h2 + 1) * (2 * w2 + 1) * 64, 0);
    nMB = max3((size_t)p2h * p2w * 64, (size_t)h3 * w3 * 64, 0);
    nQ = (size_t)h2 * w2 * 128;

    CU(cudaMalloc((void **)&e->A, nA * 2));
    CU(cudaMalloc((void **)&e->B, nB * 2));
    CU(cudaMalloc((void **)&e->MA, nMA * 2));
    CU(cudaMalloc((void **)&e->MB, nMB * 2));
    CU(cudaMalloc((void **)&e->T, nQ * 2));
    CU(cudaMalloc((void **)&e->U, nQ * 2));
    CU(cudaMalloc((void **)&e->X, nQ * 2));
    CU(cudaMalloc((void **)&e->part, (size_t)SFK_STATS_MAX_BLOCKS * 128 * 3 * 4));
    CU(cudaMalloc((void **)&e->ab, (size_t)SF_LAYERS * 128 * 2 * 4));
    CU(cudaMalloc((void **)&e->d_in, px0 * 3));
    CU(cudaMalloc((void **)&e->d_out, px0 * 3));
    CU(cudaHostAlloc((void **)&e->h_in, px0 * 3, cudaHostAllocDefault));
    CU(cudaHostAlloc((void **)&e->h_out, px0 * 3, cudaHostAllocDefault));

    /* layer 0: IN (B) -> C0 (A) -> P1 (B, bordered) */
    if ((rc = layer_desc(e, 0, h0, w0, h0, w0, 4)))
        goto out_fail;
    layer_io(&e->L[0], e->B, e->A, h0, w0, w0, 32, e->B + ((size_t)pbh0 * p1w + pbw0) * 32, p1w, 1, NULL);
    e->L[0].zero = e->B;
    e->L[0].zero_bytes = (size_t)p1h * p1w * 32 * 2;
    /* layer 1: P1 (B) -> C1 (MA) -> P2 (MB, bordered) */
    if ((rc = layer_desc(e, 1, p1h, p1w, h1, w1, 0)))
        goto out_fail;
    layer_io(&e->L[1], e->B, e->MA, h1, w1, w1, 64, e->MB + ((size_t)pbh1 * p2w + pbw1) * 64, p2w, 1, NULL);
    e->L[1].zero = e->MB;
    e->L[1].zero_bytes = (size_t)p2h * p2w * 64 * 2;
    /* layer 2: P2 (MB) -> T -> X */
    if ((rc = layer_desc(e, 2, p2h, p2w, h2, w2, 0)))
        goto out_fail;
    layer_io(&e->L[2], e->MB, e->T, h2, w2, w2, 128, e->X, w2, 1, NULL);
    /* residual blocks: X -> T -> U (ReLU), U -> T -> X (+ X) */
    for (int l = 3; l <= 12; l++) {
        if ((rc = layer_desc(e, l, h2, w2, h2, w2, 1)))
            goto out_fail;
        if (l % 2)
            layer_io(&e->L[l], e->X, e->T, h2, w2, w2, 128, e->U, w2, 1, NULL);
        else
            layer_io(&e->L[l], e->U, e->T, h2, w2, w2, 128, e->X, w2, 0, e->X);
    }
    /* layer 13: X -> D3 (MA, (2h2+1) x (2w2+1)) -> Y3 (MB) */
    if ((rc = layer_desc(e, 13, h2, w2, 2 * h2 + 1, 2 * w2 + 1, 0)))
        goto out_fail;
    layer_io(&e->L[13], e->X, e->MA, h3, w3, 2 * w2 + 1, 64, e->MB, w3, 1, NULL);
    /* layer 14: Y3 (MB) -> D4 (A) -> Y4 (B) */
    if ((rc = layer_desc(e, 14, h3, w3, 2 * h3 + 1, 2 * w3 + 1, 0)))
        goto out_fail;
    layer_io(&e->L[14], e->MB, e->A, h4, w4, 2 * w3 + 1, 32, e->B, w4, 1, NULL);
    /* layer 15: Y4 (B) -> O (A), then norm + tanh -> d_out */
    if ((rc = layer_desc(e, 15, h4, w4, h4, w4, 4)))
        goto out_fail;
    layer_io(&e->L[15], e->B, e->A, h4, w4, w4, 8, NULL, 0, 0, NULL);

    for (int l = 0; l < SF_LAYERS; l++)
        ws = e->L[l].ws > ws ? e->L[l].ws : ws;
    if (ws)
        CU(cudaMalloc(&e->ws, ws));
    e->h = h0;
    e->w = w0;

    /* Capture the pass once for this shape.  A failed capture is not an
     * error: the pass then runs launch by launch, and the log says so. */
    if (e->use_graph) {
        cudaGraph_t g = NULL;
        cudaError_t ce;
        int erc;

        ce = cudaStreamBeginCapture(e->st, cudaStreamCaptureModeThreadLocal);
        if (ce == cudaSuccess) {
            erc = enqueue(e);
            ce = cudaStreamEndCapture(e->st, &g);
            if (!erc && ce == cudaSuccess)
                ce = cudaGraphInstantiate(&e->graph, g, 0);
            if (g)
                cudaGraphDestroy(g);
        }
        if (ce != cudaSuccess || !e->graph) {
            say(SF_LOG_WARN, "cuda: graph capture failed (%s); running launch by launch",
                cudaGetErrorString(ce));
            (void)cudaGetLastError();
            e->graph = NULL;
        }
    }
    say(SF_LOG_DEBUG, "cuda: plan for %dx%d: %.1f MB of buffers, %.1f MB workspace, graph %s", w0, h0,
        (double)(nA + nB + nMA + nMB + 3 * nQ) * 2 / 1e6, (double)ws / 1e6, e->graph ? "yes" : "no");
    return 0;
out_fail:
    plan_free(e);
    return rc ? rc : -EIO;
}

/* The whole pass on the stream: upload, 16 layers, download. */
static int enqueue(struct sf_engine_impl *e)
{
    const float alpha = 1.0f, beta = 0.0f;
    size_t npx = (size_t)e->h * e->w * 3;
    int rc = 0;

    CU(cudaMemcpyAsync(e->d_in, e->h_in, npx, cudaMemcpyHostToDevice, e->st));
    K(sfk_rgb_to_tensor(e->st, e->d_in, e->w, e->h, e->B));
    for (int l = 0; l < SF_LAYERS; l++) {
        struct layer_plan *p = &e->L[l];
        const struct sf_layer_spec *s = &sf_net[l];
        int c = cout_pad(l);
        float *ab = e->ab + (size_t)l * 256;
        const float *gamma = e->gb_act + e->gb_off[l], *beta_ = gamma + c;

        if (s->kind == SF_CONV)
            DNN(cudnnConvolutionForward(e->dnn, &alpha, p->xd, p->in, p->wd, e->w_act + e->w_off[l], p->cd,
                                        (cudnnConvolutionFwdAlgo_t)p->algo, e->ws, p->ws, &beta, p->yd,
                                        p->out));
        else
            DNN(cudnnConvolutionBackwardData(e->dnn, &alpha, p->wd, e->w_act + e->w_off[l], p->xd, p->in,
                                             p->cd, (cudnnConvolutionBwdDataAlgo_t)p->algo, e->ws, p->ws,
                                             &beta, p->yd, p->out));
        K(sfk_in_stats(e->st, p->out, p->ow, p->oh, p->old, c, e->part, p->blocks));
        K(sfk_in_finalize(e->st, e->part, p->blocks, c, gamma, beta_, SFK_IN_EPS, ab));
        if (p->zero)
            CU(cudaMemsetAsync(p->zero, 0, p->zero_bytes, e->st));
        if (l < SF_LAYERS - 1)
            K(sfk_in_apply(e->st, p->out, p->ow, p->oh, p->old, c, ab, p->res, p->relu, p->dst, p->ldy));
        else
            K(sfk_tanh_to_rgb(e->st, p->out, e->w, e->h, p->old, ab, e->d_out));
    }
    CU(cudaMemcpyAsync(e->h_out, e->d_out, npx, cudaMemcpyDeviceToHost, e->st));
    return 0;
out_fail:
    return rc ? rc : -EIO;
}

/* ---- the ops table ------------------------------------------------------- */

static void cuda_close(struct sf_engine_impl *e)
{
    if (!e)
        return;
    plan_free(e);
    for (int i = 0; i < MAX_MODELS; i++)
        if (e->models[i].used) {
            cudaFree(e->models[i].w);
            cudaFree(e->models[i].gb);
        }
    if (e->w_act) cudaFree(e->w_act);
    if (e->gb_act) cudaFree(e->gb_act);
    if (e->timing) {
        cudaEventDestroy(e->ev0);
        cudaEventDestroy(e->ev1);
    }
    if (e->dnn) cudnnDestroy(e->dnn);
    if (e->st) cudaStreamDestroy(e->st);
    /* drop the primary context: after this the process holds no GPU memory */
    cudaDeviceReset();
    free(e);
}

static int cuda_open(struct sf_engine_impl **out, char *why, size_t whylen)
{
    struct sf_engine_impl *e;
    struct cudaDeviceProp prop;
    cudaError_t ce;
    int n = 0, rc = 0;
    size_t ver;
    const char *env;

    /* cudart reports a missing driver as "insufficient"; say it plainly */
    void *drv = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!drv) {
        snprintf(why, whylen, "no NVIDIA driver (libcuda.so.1 not found)");
        return -ENODEV;
    }
    dlclose(drv);
    ce = cudaGetDeviceCount(&n);
    if (ce != cudaSuccess || n == 0) {
        snprintf(why, whylen, "no usable NVIDIA GPU (%s)",
                 ce != cudaSuccess ? cudaGetErrorString(ce) : "no device found");
        return -ENODEV;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    e->dev = 0;     /* the first visible device; CUDA_VISIBLE_DEVICES picks */
    ce = cudaGetDeviceProperties(&prop, e->dev);
    if (ce != cudaSuccess) {
        snprintf(why, whylen, "cannot query GPU 0: %s", cudaGetErrorString(ce));
        rc = cuda_errno(ce);
        goto out_free;
    }
    if (prop.major < 7) {
        snprintf(why, whylen, "%s (sm_%d%d) has no tensor cores; sm_70 or newer needed", prop.name,
                 prop.major, prop.minor);
        rc = -ENODEV;
        goto out_free;
    }
    ver = cudnnGetVersion();
    if (ver / 10000 != CUDNN_MAJOR) {
        snprintf(why, whylen, "cuDNN %zu found, version %d needed", ver, CUDNN_MAJOR);
        rc = -ENODEV;
        goto out_free;
    }
    if ((ce = cudaSetDevice(e->dev)) != cudaSuccess ||
        (ce = cudaStreamCreateWithFlags(&e->st, cudaStreamNonBlocking)) != cudaSuccess) {
        snprintf(why, whylen, "cannot create a CUDA stream: %s", cudaGetErrorString(ce));
        rc = cuda_errno(ce);
        goto out_close;
    }
    if (cudnnCreate(&e->dnn) != CUDNN_STATUS_SUCCESS || cudnnSetStream(e->dnn, e->st) != CUDNN_STATUS_SUCCESS) {
        snprintf(why, whylen, "cuDNN could not start on %s", prop.name);
        rc = -ENODEV;
        goto out_close;
    }
    weight_layout(e);
    if ((ce = cudaMalloc((void **)&e->w_act, e->w_total * 2)) != cudaSuccess ||
        (ce = cudaMalloc((void **)&e->gb_act, e->gb_total * 4)) != cudaSuccess) {
        snprintf(why, whylen, "GPU memory: %s", cudaGetErrorString(ce));
        rc = cuda_errno(ce);
        goto out_close;
    }
    env = getenv("STYLEFS_CUDA_FIND");
    e->find = env && *env == '1';
    env = getenv("STYLEFS_CUDA_GRAPH");
    e->use_graph = !(env && *env == '0');
    env = getenv("STYLEFS_CUDA_TIMING");
    e->timing = env && *env == '1' && cudaEventCreate(&e->ev0) == cudaSuccess &&
                cudaEventCreate(&e->ev1) == cudaSuccess;
    snprintf(e->desc, sizeof e->desc, "%s, sm_%d%d, %.0f GiB, cuDNN %zu.%zu.%zu, algorithms by %s%s", prop.name,
             prop.major, prop.minor, (double)prop.totalGlobalMem / (1 << 30), ver / 10000, ver / 100 % 100,
             ver % 100, e->find ? "benchmark" : "heuristics", e->use_graph ? ", CUDA graphs" : "");
    snprintf(why, whylen, "%s", e->desc);
    *out = e;
    return 0;
out_close:
    cuda_close(e);
    return rc;
out_free:
    free(e);
    return rc;
}

static int cuda_run(struct sf_engine_impl *e, const struct sf_model *m, const uint8_t *rgb, int w, int h,
                    uint8_t *out, const sf_cancel_flag *cancel)
{
    size_t n = (size_t)w * h * 3;
    int rc = 0;

    if (sf_cancelled(cancel))
        return -ECANCELED;
    if (e->h != h || e->w != w) {
        plan_free(e);
        if ((rc = plan_build(e, h, w)))
            return rc;
    }
    if ((rc = activate_model(e, m)))
        return rc;
    memcpy(e->h_in, rgb, n);
    if (e->timing)
        CU(cudaEventRecord(e->ev0, e->st));
    if (e->graph)
        CU(cudaGraphLaunch(e->graph, e->st));
    else if ((rc = enqueue(e)))
        goto out_fail;
    if (e->timing)
        CU(cudaEventRecord(e->ev1, e->st));
    CU(cudaStreamSynchronize(e->st));
    if (e->timing) {
        float ms = 0;
        cudaEventElapsedTime(&ms, e->ev0, e->ev1);
        say(SF_LOG_INFO, "cuda: pass %dx%d: %.3f ms on the device (upload, network, download)", w, h, ms);
    }
    if (sf_cancelled(cancel))
        return -ECANCELED;
    memcpy(out, e->h_out, n);
    return 0;
out_fail:
    /* a failed pass may leave the stream in error; rebuild next time */
    plan_free(e);
    e->act_valid = 0;
    return rc ? rc : -EIO;
}

static const struct sf_engine_ops cuda_ops = {
    .name = "cuda",
    .open = cuda_open,
    .run = cuda_run,
    .close = cuda_close,
};

/* The module's one exported symbol: engine.c finds it with dlsym() by
 * this name and calls it with its SF_ENGINE_ABI. */
const struct sf_engine_ops *sf_cuda_module(int abi, void (*log)(int level, const char *msg))
{
    if (abi != SF_ENGINE_ABI)
        return NULL;
    logf_ = log;
    return &cuda_ops;
}
