/* tflnet.c: the planned TFLite graph runner (tflnet.h).
 *
 * Each tensor gets a run-time record (struct rt): its 4-D shape at the
 * planned size (lower ranks padded with leading 1s), its type in the run
 * (F32, I8 or I32), and where its bytes are: in the file (int8 and int32
 * constants), in a widened copy (float16 constants, folded DEQUANTIZEs), or
 * in the arena (activations). */
#include "tflnet.h"

#include "cpu.h"

#include <errno.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CH 2048             /* output channels of a convolution (accumulators on the stack) */
/* Output rows per band of a planar convolution: its input band (rows +
 * kh - 1 rows of every channel, about 0.8 MB at 1024 pixels wide for the
 * 9x9 layer over 8 channels) is laid out by the thread that convolves it,
 * just before, so it is read back from the core's own cache. */
#define PLANAR_ROWS(kh) ((kh) > 5 ? 16 : 8)
/* Output pixels per qdot call: their taps, gathered, stay in the L1 cache. */
#define QDOT_PIXELS 16

struct rt {
    int d[4];                   /* N, H, W, C (lower ranks: leading 1s) */
    int type;                   /* SF_TFL_F32, I8, I32 */
    int is_const, is_act;
    const void *cdata;          /* constants */
    void *owned;                /* a widened or folded constant we own */
    size_t off, bytes;          /* activations: offset in the arena */
    int first, last;            /* ops producing and last reading it */
    int virt;                   /* never stored: its producer is fused into its one reader */
    float scale;                /* per-tensor quantization (activations) */
    int32_t zero;
};

struct sf_tflnet {
    const struct sf_tfl_model *m;
    const struct sf_cpu_kernels *k;     /* tconv, or NULL */
    float **cw;                 /* per op: tconv's weights [kh][kw][c][ocp] then bias [ocp], or NULL */
    int16_t **qw;               /* per op: an int8 convolution's weights for qdot, [oc][kp] int16, or NULL */
    int16_t *qx;                /* qdot's pixel taps, QDOT_PIXELS x the largest kp, one block per thread */
    int32_t *qd;                /* qdot's sums, QDOT_PIXELS x the largest oc, one block per thread */
    size_t qx_per, qd_per;      /* their values per thread */
    uint8_t *planar;            /* per op: run on tconvp (VALID, stride 1, oc 3, 8 or 16, c <= 16) */
    float *planes;              /* tconvp's input bands, [c][rows][w], one per thread (see conv_f32) */
    size_t band_floats;         /* floats per thread in planes: the largest planar op's band */
    int nthreads;               /* threads planned for: planes holds this many bands */
    struct rt *r;
    uint8_t *arena;
    size_t arena_bytes;
    uint8_t *skip;              /* ops folded at plan time, or fused into a later one */
    int *fuse;                  /* per op: the op fused into it (-1: none), see fuse_norms */
    struct pin *pin;            /* per op: where a tconv or tconvp convolution reads from, see fuse_pads */
    int **map;                  /* per op: tconv's row map, then its column map (cpu.h sf_tconv_fn), or NULL */
    float **var;                /* per MEAN op computing a norm's mean and variance in one pass (fuse_moments):
                                 * the variance, kept for the norm's second MEAN; NULL elsewhere */
    int *var_of;                /* per op: the MEAN whose var this MEAN copies (fuse_moments), or -1 */
};

/* A convolution's input read through a mirror pad and a nearest resize,
 * neither stored (fuse_pads): padded (yy, xx) -> reflected into hr x wr ->
 * divided by the resize factors -> src's pixel. */
struct pin {
    int src;                    /* tensor read, -1: the convolution's own input */
    int pt, pl, sym;            /* the pad before, top and left; 1 for SYMMETRIC */
    int hr, wr;                 /* the size between resize and pad */
    int fy, fx;                 /* the resize factors (1: none) */
};

static int fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static size_t elems4(const int d[4]) { return (size_t)d[0] * d[1] * d[2] * d[3]; }

/* This thread's number in a parallel region (0 without OpenMP): the index
 * of its slice of the per-thread scratch */
static inline int thread_no(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* How an operand of a binary op is indexed: the output's own shape, one
 * value per channel ([1,1,1,C]), or one value. */
enum { B_SAME, B_CHAN, B_ONE, B_OTHER };
static int bkind(const struct rt *x, const struct rt *o)
{
    if (elems4(x->d) == 1)
        return B_ONE;
    if (!memcmp(x->d, o->d, sizeof x->d))
        return B_SAME;
    if (x->d[0] == 1 && x->d[1] == 1 && x->d[2] == 1 && x->d[3] == o->d[3])
        return B_CHAN;
    return B_OTHER;
}


static void *ptr(struct sf_tflnet *n, int t)
{
    struct rt *r = &n->r[t];
    return r->is_act ? (void *)(n->arena + r->off) : (void *)r->cdata;
}

static float half_to_float(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, f = h & 1023, u;
    if (e == 0) {
        if (!f) {
            u = s;
        } else {                        /* subnormal */
            e = 113;
            while (!(f & 1024)) {
                f <<= 1;
                e--;
            }
            u = s | e << 23 | (f & 1023) << 13;
        }
    } else if (e == 31) {
        u = s | 0x7f800000u | f << 13;
    } else {
        u = s | (e + 112) << 23 | f << 13;
    }
    float x;
    memcpy(&x, &u, 4);
    return x;
}

static int8_t sat8(long v) { return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v); }
/* Round half to even, clamped far outside int8 (NaN to 0): what the int8
 * rules feed sat8, kept defined for any (damaged) scale. */
static long qround(double v)
{
    if (!(v > -1e9))
        return v != v ? 0 : -1000000000L;
    return v > 1e9 ? 1000000000L : lrint(v);
}
static int qok(float scale, int32_t zero) { return isfinite(scale) && scale > 0 && zero >= -128 && zero <= 127; }

/* ---- planning -------------------------------------------------------------- */

static void shape_of(const struct sf_tfl_tensor *t, int d[4])
{
    d[0] = d[1] = d[2] = d[3] = 1;
    for (int i = 0; i < t->ndim; i++)
        d[4 - t->ndim + i] = t->shape[i];
}

static int conv_out(int n, int k, int s, int same, int *before)
{
    if (same) {
        int out = (n + s - 1) / s, total = (out - 1) * s + k - n;
        *before = total > 0 ? total / 2 : 0;
        return out;
    }
    *before = 0;
    return n >= k ? (n - k) / s + 1 : 0;
}

static const int32_t *i32_const(struct sf_tflnet *n, int t, size_t count)
{
    struct rt *r = &n->r[t];
    return r->is_const && r->type == SF_TFL_I32 && elems4(r->d) == count ? r->cdata : NULL;
}

/* Shapes and types of op i's outputs.  0 or -EINVAL. */
static int infer(struct sf_tflnet *n, int i, char *why, size_t whylen)
{
    const struct sf_tfl_model *m = n->m;
    const struct sf_tfl_op *op = &m->ops[i];
    struct rt *o = &n->r[op->out[0]], *a = op->nin > 0 && op->in[0] >= 0 ? &n->r[op->in[0]] : NULL;
    struct rt *b = op->nin > 1 && op->in[1] >= 0 ? &n->r[op->in[1]] : NULL;
    const struct sf_tfl_tensor *ot = &m->t[op->out[0]];
    int pb;

    if (!a || op->nout != 1)
        return fail(why, whylen, "op %d (code %d): %d inputs, %d outputs", i, op->code, op->nin, op->nout);
    o->type = ot->type;
    switch (op->code) {
    case SF_TFL_CONV_2D: case SF_TFL_DEPTHWISE_CONV_2D: {
        int dw = op->code == SF_TFL_DEPTHWISE_CONV_2D;
        if (!b || op->nin < 3 || op->in[2] < 0 || !b->is_const || !n->r[op->in[2]].is_const)
            return fail(why, whylen, "op %d: a convolution without constant weights and bias", i);
        int kh = b->d[1], kw = b->d[2];
        if ((!dw && b->d[3] != a->d[3]) || (dw && (b->d[0] != 1 || b->d[3] != a->d[3])))
            return fail(why, whylen, "op %d: weights [%d,%d,%d,%d] for %d input channels", i, b->d[0], b->d[1],
                        b->d[2], b->d[3], a->d[3]);
        o->d[0] = 1;
        o->d[1] = conv_out(a->d[1], kh, op->stride_h, op->padding == 0, &pb);
        o->d[2] = conv_out(a->d[2], kw, op->stride_w, op->padding == 0, &pb);
        o->d[3] = dw ? a->d[3] : b->d[0];
        if (o->d[3] > MAX_CH)
            return fail(why, whylen, "op %d: %d output channels (at most %d)", i, o->d[3], MAX_CH);
        if (elems4(n->r[op->in[2]].d) != (size_t)o->d[3])
            return fail(why, whylen, "op %d: bias of %zu for %d channels", i, elems4(n->r[op->in[2]].d), o->d[3]);
        break;
    }
    case SF_TFL_ADD: case SF_TFL_SUB: case SF_TFL_MUL: case SF_TFL_SQUARED_DIFFERENCE:
        if (!b)
            return fail(why, whylen, "op %d: one input", i);
        for (int k = 0; k < 4; k++) {
            if (a->d[k] != b->d[k] && a->d[k] != 1 && b->d[k] != 1)
                return fail(why, whylen, "op %d: shapes do not broadcast", i);
            o->d[k] = a->d[k] > b->d[k] ? a->d[k] : b->d[k];
        }
        break;
    case SF_TFL_MEAN: {
        const int32_t *ax = b ? i32_const(n, op->in[1], 2) : NULL;
        if (!ax || ax[0] != 1 || ax[1] != 2 || !op->keep_dims)
            return fail(why, whylen, "op %d: MEAN other than over axes 1, 2 with keep_dims", i);
        if (a->d[3] > MAX_CH)
            return fail(why, whylen, "op %d: MEAN over %d channels (at most %d)", i, a->d[3], MAX_CH);
        o->d[0] = o->d[1] = o->d[2] = 1;
        o->d[3] = a->d[3];
        break;
    }
    case SF_TFL_RESIZE_NEAREST: {
        const int32_t *sz = b ? i32_const(n, op->in[1], 2) : NULL;
        const struct sf_tfl_tensor *it = &m->t[op->in[0]];
        if (!sz || it->ndim != 4 || op->align_corners || op->half_pixel || sz[0] % it->shape[1] ||
            sz[1] % it->shape[2])
            return fail(why, whylen, "op %d: a resize other than by a whole factor", i);
        memcpy(o->d, a->d, sizeof o->d);
        o->d[1] = a->d[1] * (sz[0] / it->shape[1]);
        o->d[2] = a->d[2] * (sz[1] / it->shape[2]);
        break;
    }
    case SF_TFL_MIRROR_PAD: {
        const int32_t *p = b ? i32_const(n, op->in[1], 8) : NULL;
        if (!p || p[0] || p[1] || p[6] || p[7] || p[2] < 0 || p[3] < 0 || p[4] < 0 || p[5] < 0)
            return fail(why, whylen, "op %d: MIRROR_PAD other than spatial", i);
        int lim = op->mirror_mode == 0 ? 1 : 0;     /* REFLECT needs pad <= n - 1 */
        if (p[2] > a->d[1] - lim || p[3] > a->d[1] - lim || p[4] > a->d[2] - lim || p[5] > a->d[2] - lim)
            return fail(why, whylen, "the image is too small for this network (%dx%d at op %d)", a->d[2], a->d[1], i);
        memcpy(o->d, a->d, sizeof o->d);
        o->d[1] += p[2] + p[3];
        o->d[2] += p[4] + p[5];
        break;
    }
    case SF_TFL_RSQRT: case SF_TFL_LOGISTIC: case SF_TFL_QUANTIZE: case SF_TFL_DEQUANTIZE:
        memcpy(o->d, a->d, sizeof o->d);
        break;
    default:
        return fail(why, whylen, "op %d: operator code %d is not supported", i, op->code);
    }
    if (o->d[1] < 1 || o->d[2] < 1)
        return fail(why, whylen, "the image is too small for this network (op %d)", i);
    if (o->type != SF_TFL_F32 && o->type != SF_TFL_I8)
        return fail(why, whylen, "op %d: output type %d", i, o->type);
    /* the types each op takes */
    switch (op->code) {
    case SF_TFL_QUANTIZE: if (a->type != SF_TFL_F32 || o->type != SF_TFL_I8) goto bad_types; break;
    case SF_TFL_DEQUANTIZE: if (a->type != SF_TFL_I8 || o->type != SF_TFL_F32) goto bad_types; break;
    case SF_TFL_CONV_2D: case SF_TFL_DEPTHWISE_CONV_2D:
        if (a->type != o->type || b->type != (o->type == SF_TFL_I8 ? SF_TFL_I8 : SF_TFL_F32) ||
            n->r[op->in[2]].type != (o->type == SF_TFL_I8 ? SF_TFL_I32 : SF_TFL_F32))
            goto bad_types;
        break;
    case SF_TFL_ADD: case SF_TFL_SUB:
        if (a->type != o->type || b->type != o->type) goto bad_types;
        break;
    case SF_TFL_MEAN: if (a->type != o->type) goto bad_types; break;
    default: if (a->type != SF_TFL_F32 || o->type != SF_TFL_F32 || (b && op->code != SF_TFL_MIRROR_PAD &&
                  op->code != SF_TFL_RESIZE_NEAREST && b->type != SF_TFL_F32)) goto bad_types;
    }
    if (o->type == SF_TFL_I8) {
        const struct sf_tfl_tensor *t = &m->t[op->out[0]];
        if (t->nq != 1 || !qok(t->scale[0], t->zero[0]))
            return fail(why, whylen, "op %d: an int8 output without one usable scale", i);
        o->scale = t->scale[0];
        o->zero = t->zero[0];
    }
    for (int k = 0; k < 2; k++) {           /* int8 inputs: usable scales, per channel for weights */
        const struct rt *x = k ? b : a;
        const struct sf_tfl_tensor *t = x ? &m->t[op->in[k]] : NULL;
        if (!x || x->type != SF_TFL_I8)
            continue;
        if (t->nq < 1 || (t->nq > 1 && t->nq != o->d[3]))
            return fail(why, whylen, "op %d: int8 input %d without its scales", i, k);
        for (int q = 0; q < t->nq; q++)
            if (!qok(t->scale[q], x->is_const ? 0 : t->zero[q]) || (x->is_const && t->zero[q]))
                return fail(why, whylen, "op %d: int8 input %d has an unusable scale or zero point", i, k);
    }
    if (o->type == SF_TFL_I8 && (op->code == SF_TFL_ADD || op->code == SF_TFL_SUB)) {
        float ra = a->scale / o->scale, rb = b->scale / o->scale;
        int e;
        frexpf(ra > rb ? ra : rb, &e);
        if (20 - (e - 1) < 1 || 20 - (e - 1) > 40)
            return fail(why, whylen, "op %d: int8 scales too far apart for the fixed-point add", i);
    }
    return 0;
bad_types:
    return fail(why, whylen, "op %d (code %d): types %d, %d -> %d are not supported", i, op->code, a->type,
                b ? b->type : -1, o->type);
}

void sf_tflnet_free(struct sf_tflnet *n)
{
    if (!n)
        return;
    if (n->r)
        for (int i = 0; i < n->m->ntensors; i++)
            free(n->r[i].owned);
    if (n->cw)
        for (int i = 0; i < n->m->nops; i++)
            free(n->cw[i]);
    free(n->cw);
    free(n->planar);
    free(n->planes);
    free(n->fuse);
    free(n->pin);
    for (int i = 0; n->map && i < n->m->nops; i++)
        free(n->map[i]);
    free(n->map);
    for (int i = 0; n->qw && i < n->m->nops; i++)
        free(n->qw[i]);
    free(n->qw);
    free(n->qx);
    free(n->qd);
    for (int i = 0; n->var && i < n->m->nops; i++)
        free(n->var[i]);
    free(n->var);
    free(n->var_of);
    free(n->r);
    free(n->arena);
    free(n->skip);
    free(n);
}

/* The instance norms' full-size intermediates (arbitrary.md section 5),
 * fused away when their one reader is the next step of the norm:
 *   SQUARED_DIFFERENCE(x, mu) read only by MEAN: the MEAN takes (x - mu)^2
 *     as it sums, and the squares are never stored;
 *   MUL(x, m) read only by ADD(that, b): the ADD computes act(x m + b).
 * x is a full tensor, mu, m and b one value per channel; both are float32.
 * Returns 0 or -1 (out of memory). */
static int fuse_norms(struct sf_tflnet *n)
{
    const struct sf_tfl_model *m = n->m;
    int *readers = calloc((size_t)m->ntensors, sizeof *readers), *reader = malloc((size_t)m->ntensors * sizeof *reader);

    if (!readers || !reader) {
        free(readers);
        free(reader);
        return -1;
    }
    for (int i = 0; i < m->nops; i++)
        for (int k = 0; !n->skip[i] && k < m->ops[i].nin; k++)
            if (m->ops[i].in[k] >= 0) {
                readers[m->ops[i].in[k]]++;
                reader[m->ops[i].in[k]] = i;
            }
    for (int k = 0; k < m->nout; k++)
        readers[m->out[k]] += 2;            /* an output is always stored */
    for (int i = 0; i < m->nops; i++) {
        const struct sf_tfl_op *op = &m->ops[i];
        int o = op->out[0];
        if (n->skip[i] || op->nin != 2 || n->r[o].type != SF_TFL_F32 || readers[o] != 1)
            continue;
        const struct rt *x = &n->r[op->in[0]], *v = &n->r[op->in[1]], *ro = &n->r[o];
        if (x->type != SF_TFL_F32 || v->type != SF_TFL_F32 || bkind(x, ro) != B_SAME || bkind(v, ro) != B_CHAN)
            continue;
        int j = reader[o];
        const struct sf_tfl_op *nx = &m->ops[j];
        if (op->code == SF_TFL_SQUARED_DIFFERENCE && nx->code == SF_TFL_MEAN && nx->in[0] == o &&
            n->r[nx->out[0]].type == SF_TFL_F32) {
            /* the MEAN reads x and mu itself */
        } else if (op->code == SF_TFL_MUL && nx->code == SF_TFL_ADD && nx->nin == 2 &&
                   (nx->in[0] == o || nx->in[1] == o) && n->r[nx->out[0]].type == SF_TFL_F32 &&
                   bkind(&n->r[nx->in[nx->in[0] == o]], &n->r[nx->out[0]]) == B_CHAN &&
                   bkind(&n->r[nx->out[0]], ro) == B_SAME) {
            /* the ADD reads x and m itself */
        } else {
            continue;
        }
        n->skip[i] = 1;
        n->fuse[j] = i;
        n->r[o].virt = 1;
        for (int k = 0; k < 2; k++)         /* x and mu (or m) now live until j */
            if (n->r[op->in[k]].is_act && n->r[op->in[k]].last < j)
                n->r[op->in[k]].last = j;
    }
    free(readers);
    free(reader);
    return 0;
}

/* Readers of each tensor among the ops that run (outputs count twice). */
static int *count_readers(const struct sf_tflnet *n)
{
    const struct sf_tfl_model *m = n->m;
    int *readers = calloc((size_t)m->ntensors, sizeof *readers);

    if (!readers)
        return NULL;
    for (int i = 0; i < m->nops; i++)
        for (int k = 0; !n->skip[i] && k < m->ops[i].nin; k++)
            if (m->ops[i].in[k] >= 0)
                readers[m->ops[i].in[k]]++;
    for (int k = 0; k < m->nout; k++)
        readers[m->out[k]] += 2;
    return readers;
}

/* A convolution on tconv or tconvp whose input is
 * MIRROR_PAD(RESIZE_NEAREST(t)) or MIRROR_PAD(t), each read by nothing
 * else, reads t itself (arbitrary.md 8: the upsampling folds into the
 * input indexing): the padded and the upsampled tensors are never stored.
 * tconvp reads through them while it lays out its planes, tconv through
 * its row and column maps (tconv_maps).  0 or -1. */
static int fuse_pads(struct sf_tflnet *n)
{
    const struct sf_tfl_model *m = n->m;
    int *readers = count_readers(n);

    if (!readers)
        return -1;
    for (int i = 0; i < m->nops; i++) {
        if (!n->planar[i] && !(n->cw[i] && m->ops[i].stride_h == m->ops[i].stride_w))
            continue;
        int p = m->ops[i].in[0], j = n->r[p].first;
        if (j < 0 || readers[p] != 1 || m->ops[j].code != SF_TFL_MIRROR_PAD || n->skip[j])
            continue;
        const struct sf_tfl_op *pad = &m->ops[j];
        const int32_t *pp = ptr(n, pad->in[1]);
        struct pin q = { .src = pad->in[0], .pt = pp[2], .pl = pp[4], .sym = pad->mirror_mode == 1,
                         .hr = n->r[pad->in[0]].d[1], .wr = n->r[pad->in[0]].d[2], .fy = 1, .fx = 1 };
        int k = n->r[q.src].first;
        if (k >= 0 && readers[q.src] == 1 && m->ops[k].code == SF_TFL_RESIZE_NEAREST && !n->skip[k]) {
            int src = m->ops[k].in[0];
            q.fy = q.hr / n->r[src].d[1];
            q.fx = q.wr / n->r[src].d[2];
            if (q.fy * n->r[src].d[1] == q.hr && q.fx * n->r[src].d[2] == q.wr) {
                n->skip[k] = 1;
                n->r[q.src].virt = 1;
                q.src = src;
            } else {
                q.fy = q.fx = 1;
            }
        }
        n->skip[j] = 1;
        n->r[p].virt = 1;
        if (n->r[q.src].last < i)
            n->r[q.src].last = i;
        n->pin[i] = q;
    }
    free(readers);
    return 0;
}

/* An instance norm's two statistics in one pass: MEAN(x) -> mu, then
 * MEAN(SQUARED_DIFFERENCE(x, mu)) (the squares fused, fuse_norms) -> var.
 * The first MEAN computes both, from shifted sums (moments), and keeps
 * var; the second copies it.  0 or -1 (out of memory). */
static int fuse_moments(struct sf_tflnet *n)
{
    const struct sf_tfl_model *m = n->m;

    for (int j = 0; j < m->nops; j++) {
        if (m->ops[j].code != SF_TFL_MEAN || n->fuse[j] < 0 || n->r[m->ops[j].out[0]].type != SF_TFL_F32)
            continue;
        const struct sf_tfl_op *sq = &m->ops[n->fuse[j]];
        int x = sq->in[0], mu = sq->in[1], i = n->r[mu].first;
        if (i < 0 || i >= j || m->ops[i].code != SF_TFL_MEAN || n->skip[i] || n->fuse[i] >= 0 ||
            m->ops[i].in[0] != x || n->r[x].type != SF_TFL_F32 || n->var[i])
            continue;
        if (!(n->var[i] = malloc((size_t)n->r[x].d[3] * sizeof(float))))
            return -1;
        n->var_of[j] = i;
    }
    return 0;
}

/* Reflect i into 0..n-1 (sym: SYMMETRIC, else REFLECT), as MIRROR_PAD. */
static int reflect(int i, int n, int sym)
{
    return i < 0 ? -i - sym : i >= n ? 2 * n - 2 - i + sym : i;
}

/* tconv's row and column maps for op i (cpu.h sf_tconv_fn): its own zero
 * padding (SAME), then the fused pad and resize (pin).  0 or -1. */
static int tconv_maps(struct sf_tflnet *n, int i)
{
    const struct sf_tfl_op *op = &n->m->ops[i];
    const struct rt *a = &n->r[op->in[0]], *wt = &n->r[op->in[1]], *o = &n->r[op->out[0]];
    const struct pin *q = &n->pin[i];
    int s = op->stride_h, pt, pl, nr = (o->d[1] - 1) * s + wt->d[1], nc = (o->d[2] - 1) * s + wt->d[2];
    int *mp = malloc(((size_t)nr + nc) * sizeof *mp);

    if (!mp)
        return -1;
    conv_out(a->d[1], wt->d[1], s, op->padding == 0, &pt);
    conv_out(a->d[2], wt->d[2], s, op->padding == 0, &pl);
    for (int k = 0; k < nr + nc; k++) {
        int col = k >= nr, v = col ? k - nr - pl : k - pt, lim = a->d[1 + col];
        if (v < 0 || v >= lim)
            v = -1;                             /* the convolution's zero padding */
        else if (q->src >= 0)
            v = reflect(v - (col ? q->pl : q->pt), col ? q->wr : q->hr, q->sym) / (col ? q->fx : q->fy);
        mp[k] = v;
    }
    n->map[i] = mp;
    return 0;
}

/* An input of op i that its output t can overwrite (-1: none): an
 * element-wise float op (ADD, SUB, MUL, SQUARED_DIFFERENCE, LOGISTIC,
 * RSQRT; a fused ADD's product's x too) writes element k after reading
 * element k of a same-shaped operand, so when that operand is read by
 * nothing after op i, the output takes its place in the arena. */
static int inplace_input(const struct sf_tflnet *n, int i, int t)
{
    const struct sf_tfl_op *op = &n->m->ops[i];
    int cand[3], nc = 0;

    if (n->r[t].type != SF_TFL_F32 || n->r[t].virt)
        return -1;
    switch (op->code) {
    case SF_TFL_ADD: case SF_TFL_SUB: case SF_TFL_MUL: case SF_TFL_SQUARED_DIFFERENCE:
        cand[nc++] = op->in[0];
        cand[nc++] = op->in[1];
        if (n->fuse[i] >= 0 && op->code == SF_TFL_ADD)
            cand[nc++] = n->m->ops[n->fuse[i]].in[0];
        break;
    case SF_TFL_LOGISTIC: case SF_TFL_RSQRT:
        cand[nc++] = op->in[0];
        break;
    default:
        return -1;
    }
    for (int k = 0; k < nc; k++) {
        const struct rt *a = &n->r[cand[k]];
        if (cand[k] >= 0 && a->is_act && !a->virt && a->type == SF_TFL_F32 && a->last == i &&
            memcmp(a->d, n->r[t].d, sizeof a->d) == 0)
            return cand[k];
    }
    return -1;
}

/* ---- planning: sf_tflnet_plan is a list of these steps, each 0 or -errno
 * (-EINVAL with why, -ENOMEM) ---------------------------------------------- */

/* The per-op and per-tensor tables. */
static int plan_tables(struct sf_tflnet *n, const struct sf_tfl_model *m)
{
    if (!(n->r = calloc((size_t)m->ntensors, sizeof *n->r)) || !(n->skip = calloc((size_t)m->nops, 1)) ||
        !(n->cw = calloc((size_t)m->nops, sizeof *n->cw)) || !(n->planar = calloc((size_t)m->nops, 1)) ||
        !(n->fuse = malloc((size_t)m->nops * sizeof *n->fuse)) || !(n->pin = calloc((size_t)m->nops, sizeof *n->pin)) ||
        !(n->map = calloc((size_t)m->nops, sizeof *n->map)) || !(n->qw = calloc((size_t)m->nops, sizeof *n->qw)) ||
        !(n->var = calloc((size_t)m->nops, sizeof *n->var)) || !(n->var_of = malloc((size_t)m->nops * sizeof(int))))
        return -ENOMEM;
    for (int i = 0; i < m->nops; i++) {
        n->fuse[i] = -1;
        n->pin[i].src = -1;
        n->var_of[i] = -1;
    }
    return 0;
}

/* Constants: int8/int32 in place; float16 widened; float32 in place. */
static int plan_constants(struct sf_tflnet *n)
{
    const struct sf_tfl_model *m = n->m;

    for (int i = 0; i < m->ntensors; i++) {
        const struct sf_tfl_tensor *t = &m->t[i];
        struct rt *r = &n->r[i];
        shape_of(t, r->d);
        r->type = t->type;
        r->first = -1;
        r->last = -1;
        if (t->nq == 1) {
            r->scale = t->scale[0];
            r->zero = t->zero[0];
        }
        if (!t->data)
            continue;
        r->is_const = 1;
        r->cdata = t->data;
        if (t->type == SF_TFL_F16 || t->type == SF_TFL_F32) {
            size_t ne = sf_tfl_elems(t);
            float *f = malloc(ne * sizeof *f);
            if (!f)
                return -ENOMEM;
            for (size_t k = 0; k < ne; k++) {
                if (t->type == SF_TFL_F16) {
                    uint16_t hv;
                    memcpy(&hv, t->data + 2 * k, 2);
                    f[k] = half_to_float(hv);
                } else {
                    memcpy(&f[k], t->data + 4 * k, 4);
                }
            }
            r->owned = f;
            r->cdata = f;
            r->type = SF_TFL_F32;
        }
    }
    return 0;
}

/* The inputs: float32 activations, the first an image of h x w (its own
 * size when h or w is 0). */
static int plan_inputs(struct sf_tflnet *n, int h, int w, char *why, size_t whylen)
{
    const struct sf_tfl_model *m = n->m;

    if (m->nin < 1 || m->t[m->in[0]].ndim != 4 || m->t[m->in[0]].type != SF_TFL_F32)
        return fail(why, whylen, "the first input is not a float32 image");
    for (int k = 0; k < m->nin; k++) {
        if (m->t[m->in[k]].type != SF_TFL_F32 || n->r[m->in[k]].is_const)
            return fail(why, whylen, "input %d is not float32", k);
        n->r[m->in[k]].is_act = 1;
        n->r[m->in[k]].first = -1;
    }
    if (h > 0 && w > 0) {
        n->r[m->in[0]].d[1] = h;
        n->r[m->in[0]].d[2] = w;
    }
    return 0;
}

/* Shapes, op by op, and each activation's first writer and last reader;
 * DEQUANTIZE of a constant folds into a constant. */
static int plan_shapes(struct sf_tflnet *n, char *why, size_t whylen)
{
    const struct sf_tfl_model *m = n->m;
    int rc;

    for (int i = 0; i < m->nops; i++) {
        const struct sf_tfl_op *op = &m->ops[i];
        if (op->nout != 1 || op->nin < 1 || op->in[0] < 0)
            return fail(why, whylen, "op %d: %d inputs, %d outputs", i, op->nin, op->nout);
        struct rt *o = &n->r[op->out[0]];
        if (o->is_const || o->is_act)
            return fail(why, whylen, "op %d writes a constant or an input", i);
        if (op->code == SF_TFL_DEQUANTIZE && op->nin == 1 && n->r[op->in[0]].is_const &&
            n->r[op->in[0]].type == SF_TFL_F32) {
            struct rt *a = &n->r[op->in[0]];
            size_t bytes = elems4(a->d) * sizeof(float);
            if (elems4(a->d) != sf_tfl_elems(&m->t[op->out[0]]))
                return fail(why, whylen, "op %d: DEQUANTIZE changes the size", i);
            if (!(o->owned = malloc(bytes)))
                return -ENOMEM;
            memcpy(o->owned, a->cdata, bytes);
            memcpy(o->d, a->d, sizeof o->d);
            o->cdata = o->owned;
            o->type = SF_TFL_F32;
            o->is_const = 1;
            n->skip[i] = 1;
            continue;
        }
        for (int k = 0; k < op->nin; k++)
            if (op->in[k] >= 0 && !n->r[op->in[k]].is_const && !n->r[op->in[k]].is_act)
                return fail(why, whylen, "op %d reads tensor %d before it is written", i, op->in[k]);
        if ((rc = infer(n, i, why, whylen)))
            return rc;
        o->is_act = 1;
        o->first = i;
        for (int k = 0; k < op->nin; k++)
            if (op->in[k] >= 0 && n->r[op->in[k]].is_act)
                n->r[op->in[k]].last = i;
    }
    return 0;
}

/* tconv's weights: [kh][kw][c][ocp], then the bias [ocp]; which ops run
 * planar (tconvp), and the largest band they need (*planes_max floats). */
static int plan_tconv_weights(struct sf_tflnet *n, size_t *planes_max)
{
    const struct sf_tfl_model *m = n->m;

    *planes_max = 0;
    for (int i = 0; n->k && i < m->nops; i++) {
        const struct sf_tfl_op *op = &m->ops[i];
        const struct rt *wt = &n->r[op->in[1 < op->nin ? 1 : 0]], *o = &n->r[op->out[0]];
        if (op->code != SF_TFL_CONV_2D || n->skip[i] || o->type != SF_TFL_F32 || o->d[3] > 64)
            continue;
        int oc = o->d[3], ocp = SF_TCONV_OCP(oc), kh = wt->d[1], kw = wt->d[2], c = wt->d[3];
        const float *W = wt->cdata, *b = n->r[op->in[2]].cdata;
        size_t nw = (size_t)kh * kw * c * ocp;
        float *p = calloc(nw + (size_t)ocp, sizeof *p);
        if (!p)
            return -ENOMEM;
        for (int o2 = 0; o2 < oc; o2++) {
            for (int t = 0; t < kh * kw; t++)
                for (int ci = 0; ci < c; ci++)
                    p[((size_t)t * c + ci) * ocp + o2] = W[((size_t)o2 * kh * kw + t) * c + ci];
            p[nw + o2] = b[o2];
        }
        n->cw[i] = p;
        const struct rt *a = &n->r[op->in[0]];
        if (n->k->tconvp && op->padding == 1 && op->stride_w == 1 && op->stride_h == 1 && c <= 16 &&
            (oc == 3 || oc == 8 || oc == 16) && (size_t)kh * kw * c <= SF_TCONVP_TAPS && (size_t)a->d[1] * a->d[2] >= 4096) {
            n->planar[i] = 1;
            if ((size_t)(PLANAR_ROWS(kh) + kh - 1) * a->d[2] * c > *planes_max)
                *planes_max = (size_t)(PLANAR_ROWS(kh) + kh - 1) * a->d[2] * c;
        }
    }
    return 0;
}

/* qdot's weights: int8 convolutions (not depthwise), [oc][kp] int16; and
 * the per-thread scratch sizes of qdot and qdw (qdw's row of sums takes
 * the weights as they are). */
static int plan_qdot_weights(struct sf_tflnet *n)
{
    const struct sf_tfl_model *m = n->m;

    for (int i = 0; n->k && n->k->qdot && i < m->nops; i++) {
        const struct sf_tfl_op *op = &m->ops[i];
        if (op->code == SF_TFL_DEPTHWISE_CONV_2D && !n->skip[i] && n->r[op->out[0]].type == SF_TFL_I8) {
            size_t row = (size_t)n->r[op->out[0]].d[2] * n->r[op->out[0]].d[3];
            if (row > n->qd_per)
                n->qd_per = row;
            continue;
        }
        if (op->code != SF_TFL_CONV_2D || n->skip[i] || n->r[op->out[0]].type != SF_TFL_I8)
            continue;
        const struct rt *wt = &n->r[op->in[1]];
        size_t kt = (size_t)wt->d[1] * wt->d[2] * wt->d[3], oc = (size_t)n->r[op->out[0]].d[3];
        if (kt > SF_QDOT_MAX_K || wt->type != SF_TFL_I8)
            continue;
        size_t kp = SF_QDOT_PAD(kt);
        int16_t *q = calloc(oc * kp, sizeof *q);
        if (!q)
            return -ENOMEM;
        for (size_t o2 = 0; o2 < oc; o2++)
            for (size_t t = 0; t < kt; t++)
                q[o2 * kp + t] = ((const int8_t *)wt->cdata)[o2 * kt + t];
        n->qw[i] = q;
        if (QDOT_PIXELS * kp > n->qx_per)
            n->qx_per = QDOT_PIXELS * kp;
        if (QDOT_PIXELS * oc > n->qd_per)
            n->qd_per = QDOT_PIXELS * oc;
    }
    return 0;
}

/* The per-thread scratch: qdot's and qdw's, and tconvp's bands. */
static int plan_scratch(struct sf_tflnet *n, size_t planes_max)
{
#ifdef _OPENMP
    n->nthreads = omp_get_max_threads();
#else
    n->nthreads = 1;
#endif
    if ((n->qx_per && !(n->qx = malloc(n->qx_per * n->nthreads * sizeof *n->qx))) ||
        (n->qd_per && !(n->qd = malloc(n->qd_per * n->nthreads * sizeof *n->qd))))
        return -ENOMEM;
    n->band_floats = (planes_max + 15) / 16 * 16;
    if (planes_max && !(n->planes = sf_big_alloc(n->band_floats * n->nthreads * sizeof *n->planes)))
        return -ENOMEM;
    return 0;
}

/* The outputs are float32 activations kept to the end; an unread input
 * lives to op 0.  Then the fusions and tconv's index maps. */
static int plan_outputs_and_fusions(struct sf_tflnet *n, char *why, size_t whylen)
{
    const struct sf_tfl_model *m = n->m;

    for (int k = 0; k < m->nout; k++) {
        if (!n->r[m->out[k]].is_act || n->r[m->out[k]].type != SF_TFL_F32)
            return fail(why, whylen, "output %d is not a float32 activation", k);
        n->r[m->out[k]].last = m->nops;         /* kept to the end */
    }
    for (int k = 0; k < m->nin; k++)
        if (n->r[m->in[k]].last < 0)
            n->r[m->in[k]].last = 0;
    if (fuse_norms(n) < 0 || fuse_pads(n) < 0 || fuse_moments(n) < 0)
        return -ENOMEM;
    for (int i = 0; i < m->nops; i++)
        if (n->cw[i] && !n->planar[i] && m->ops[i].stride_h == m->ops[i].stride_w && tconv_maps(n, i) < 0)
            return -ENOMEM;
    return 0;
}

/* A group of tensors sharing bytes in the arena: its size, its life in
 * ops, and its offset once placed. */
struct span {
    size_t off, len;
    int first, last;
};

/* The arena's groups: tensors that share bytes (an element-wise op's
 * output over its dying input, inplace_input) form a group living from
 * its first producer to its last reader.  root[t] is t's group (-1: no
 * arena bytes); g[root] its span; order[0..*nroots) the roots. */
static void arena_groups(struct sf_tflnet *n, int *root, struct span *g, int *order, int *nroots)
{
    const struct sf_tfl_model *m = n->m;

    for (int t = 0; t < m->ntensors; t++)
        root[t] = -1;
    for (int i = -1; i < m->nops; i++)          /* in op order, so a group's root comes first */
        for (int t = 0; t < m->ntensors; t++) {
            struct rt *r = &n->r[t];
            if (!r->is_act || r->virt || r->first != i)
                continue;
            r->bytes = (elems4(r->d) * sf_tfl_type_size(r->type) + 63) / 64 * 64;
            int in = i >= 0 ? inplace_input(n, i, t) : -1;
            root[t] = in >= 0 ? root[in] : t;
        }
    *nroots = 0;
    for (int t = 0; t < m->ntensors; t++)
        if (root[t] == t) {
            struct span *q = &g[t];
            q->len = n->r[t].bytes;
            q->first = n->r[t].first;
            q->last = n->r[t].last > n->r[t].first ? n->r[t].last : n->r[t].first;     /* written, never read */
            order[(*nroots)++] = t;
        }
    for (int t = 0; t < m->ntensors; t++)       /* then the members: a group lives to its last reader */
        if (root[t] >= 0 && root[t] != t && n->r[t].last > g[root[t]].last)
            g[root[t]].last = n->r[t].last;
}

/* Place the groups, greedy by size (TFLite's planner's rule): the largest
 * first, each at the lowest offset that overlaps no placed group alive at
 * the same time.  O(n^2) in the activations: a few hundred here.  Returns
 * the arena's size. */
static size_t arena_place(struct span *g, int *order, int nroots, struct span *busy)
{
    size_t top = 0;

    for (int a1 = 1; a1 < nroots; a1++)         /* largest first (insertion sort: stable) */
        for (int b1 = a1; b1 > 0 && g[order[b1]].len > g[order[b1 - 1]].len; b1--) {
            int tmp = order[b1];
            order[b1] = order[b1 - 1];
            order[b1 - 1] = tmp;
        }
    for (int k = 0; k < nroots; k++) {
        struct span *q = &g[order[k]];
        int nb = 0;
        for (int j = 0; j < k; j++) {           /* placed groups alive with this one, by offset */
            const struct span *o2 = &g[order[j]];
            if (o2->first <= q->last && q->first <= o2->last) {
                int at = nb++;
                while (at > 0 && busy[at - 1].off > o2->off) {
                    busy[at] = busy[at - 1];
                    at--;
                }
                busy[at] = *o2;
            }
        }
        size_t off = 0;
        for (int j = 0; j < nb; j++) {          /* the lowest gap that holds it */
            if (busy[j].off >= off + q->len)
                break;
            if (busy[j].off + busy[j].len > off)
                off = busy[j].off + busy[j].len;
        }
        q->off = off;
        if (off + q->len > top)
            top = off + q->len;
    }
    return top;
}

/* The activations' arena: grouped, placed, allocated. */
static int plan_arena(struct sf_tflnet *n)
{
    const struct sf_tfl_model *m = n->m;
    int *root = malloc((size_t)m->ntensors * sizeof *root), *order = malloc((size_t)m->ntensors * sizeof *order);
    struct span *g = calloc((size_t)m->ntensors, sizeof *g), *busy = malloc((size_t)m->ntensors * sizeof *busy);
    int nroots, rc = -ENOMEM;

    if (!root || !order || !g || !busy)
        goto out_free;
    arena_groups(n, root, g, order, &nroots);
    n->arena_bytes = arena_place(g, order, nroots, busy);
    for (int t = 0; t < m->ntensors; t++)
        if (root[t] >= 0)
            n->r[t].off = g[root[t]].off;
    if ((n->arena = sf_big_alloc(n->arena_bytes)))
        rc = 0;
out_free:
    free(root);
    free(g);
    free(order);
    free(busy);
    return rc;
}

/* With STYLEFS_PROFILE=1: the plan's time and memory, and its largest
 * tensors, on stderr. */
static void plan_profile(const struct sf_tflnet *n, int h, int w, double ms)
{
    const struct sf_tfl_model *m = n->m;

    if (!getenv("STYLEFS_PROFILE") || *getenv("STYLEFS_PROFILE") != '1')
        return;
    fprintf(stderr, "tflnet: plan at %dx%d in %.1f ms: activations %.1f MB, planar bands %.1f MB\n", h, w, ms,
            n->arena_bytes / 1048576.0, n->band_floats * n->nthreads * 4 / 1048576.0);
    for (int t = 0; t < m->ntensors; t++)
        if (n->r[t].is_act && !n->r[t].virt && n->r[t].bytes >= (8u << 20))
            fprintf(stderr, "tflnet:   tensor %d %dx%dx%d: %.1f MB at %.1f, ops %d-%d\n", t, n->r[t].d[1],
                    n->r[t].d[2], n->r[t].d[3], n->r[t].bytes / 1048576.0, n->r[t].off / 1048576.0,
                    n->r[t].first, n->r[t].last);
}

int sf_tflnet_plan(const struct sf_tfl_model *m, int h, int w, const struct sf_cpu_kernels *kern,
                   struct sf_tflnet **out, char *why, size_t whylen)
{
    struct sf_tflnet *n = calloc(1, sizeof *n);
    struct timespec t0, t1;
    size_t planes_max;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    *out = NULL;
    if (!n) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    n->m = m;
    n->k = kern && kern->tconv ? kern : NULL;
    if ((rc = plan_tables(n, m)) || (rc = plan_constants(n)) || (rc = plan_inputs(n, h, w, why, whylen)) ||
        (rc = plan_shapes(n, why, whylen)) || (rc = plan_tconv_weights(n, &planes_max)) ||
        (rc = plan_qdot_weights(n)) || (rc = plan_scratch(n, planes_max)) ||
        (rc = plan_outputs_and_fusions(n, why, whylen)) || (rc = plan_arena(n))) {
        if (rc == -ENOMEM)
            snprintf(why, whylen, "out of memory");
        sf_tflnet_free(n);
        return rc;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    plan_profile(n, h, w, ((double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9) * 1e3);
    *out = n;
    return 0;
}

float *sf_tflnet_input(struct sf_tflnet *n, int i, size_t *elems)
{
    int t = n->m->in[i];
    *elems = elems4(n->r[t].d);
    return ptr(n, t);
}

const float *sf_tflnet_output(const struct sf_tflnet *n, int i, int shape[4])
{
    int t = n->m->out[i];
    memcpy(shape, n->r[t].d, sizeof n->r[t].d);
    return (const float *)(n->arena + n->r[t].off);
}

/* ---- kernels (portable C) ------------------------------------------------------ */

static float act_f(float v, int act)
{
    if (act == 1)
        return v > 0 ? v : 0;
    if (act == 3)
        return v < 0 ? 0 : v > 6 ? 6 : v;
    return v;
}

static void conv_f32(struct sf_tflnet *n, int i, const struct sf_tfl_op *op, int dw)
{
    const struct rt *a = &n->r[op->in[0]], *wt = &n->r[op->in[1]], *o = &n->r[op->out[0]];
    const float *x = ptr(n, op->in[0]), *W = ptr(n, op->in[1]), *bias = ptr(n, op->in[2]);
    float *y = ptr(n, op->out[0]);
    int H = a->d[1], Wd = a->d[2], C = a->d[3], kh = wt->d[1], kw = wt->d[2], OC = o->d[3];
    int pt, pl, sh = op->stride_h, sw = op->stride_w;

    conv_out(H, kh, sh, op->padding == 0, &pt);
    conv_out(Wd, kw, sw, op->padding == 0, &pl);
    if (n->planar[i]) {                   /* planar input, a band of rows at a time */
        const float *cw = n->cw[i], *cb = cw + (size_t)kh * kw * C * SF_TCONV_OCP(OC);
        int oh = o->d[1], ow = o->d[2], rows = PLANAR_ROWS(kh);
        const struct pin *q = &n->pin[i];
        const float *sx = q->src >= 0 ? ptr(n, q->src) : x;
        int ws = q->src >= 0 ? n->r[q->src].d[2] : Wd;
#pragma omp parallel num_threads(n->nthreads)
        {
            float *pln = n->planes + (size_t)thread_no() * n->band_floats;
#pragma omp for schedule(dynamic, 1)
            for (int r = 0; r < oh; r += rows) {
                int nr = oh - r < rows ? oh - r : rows, ih = nr + kh - 1;
                /* input rows r .. r + ih - 1 as [C][ih][Wd], read through
                 * the fused pad and resize when there are some */
                for (int yy = 0; yy < ih; yy++) {
                    const float *srow;
                    if (q->src >= 0) {
                        int iy = r + yy - q->pt;
                        iy = reflect(iy, q->hr, q->sym);
                        srow = sx + (size_t)(iy / q->fy) * ws * C;
                    } else {
                        srow = sx + (size_t)(r + yy) * ws * C;
                    }
                    float *drow = pln + (size_t)yy * Wd;
                    for (int xx = 0; xx < Wd; xx++) {
                        const float *px;
                        if (q->src >= 0) {
                            int ix = xx - q->pl;
                            ix = reflect(ix, q->wr, q->sym);
                            px = srow + (size_t)(ix / q->fx) * C;
                        } else {
                            px = srow + (size_t)xx * C;
                        }
                        for (int ci = 0; ci < C; ci++)
                            drow[(size_t)ci * ih * Wd + xx] = px[ci];
                    }
                }
                n->k->tconvp(pln, ih, Wd, C, cw, cb, OC, SF_TCONV_OCP(OC), kh, kw, y + (size_t)r * ow * OC, ow,
                             op->act, 0, nr);
            }
        }
        return;
    }
    if (n->map[i]) {                      /* the vector kernel, 4 output rows a task */
        const float *cw = n->cw[i], *cb = cw + (size_t)kh * kw * C * SF_TCONV_OCP(OC);
        const struct pin *q = &n->pin[i];
        const float *sx = q->src >= 0 ? ptr(n, q->src) : x;
        int oh = o->d[1], ws = q->src >= 0 ? n->r[q->src].d[2] : Wd;
        const int *rmap = n->map[i], *cmap = rmap + (size_t)(oh - 1) * sh + kh;
#pragma omp parallel for schedule(dynamic, 1)
        for (int r = 0; r < oh; r += 4)
            n->k->tconv(sx, ws, C, rmap, cmap, cw, cb, OC, kh, kw, sh, y, o->d[2], op->act, r,
                        r + 4 < oh ? r + 4 : oh);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int oy = 0; oy < o->d[1]; oy++) {
        float acc[MAX_CH];
        for (int ox = 0; ox < o->d[2]; ox++) {
            float *yo = y + ((size_t)oy * o->d[2] + ox) * OC;
            for (int c = 0; c < OC; c++)
                acc[c] = 0;
            for (int ky = 0; ky < kh; ky++) {
                int iy = oy * sh + ky - pt;
                if (iy < 0 || iy >= H)
                    continue;
                for (int kx = 0; kx < kw; kx++) {
                    int ix = ox * sw + kx - pl;
                    if (ix < 0 || ix >= Wd)
                        continue;
                    const float *xi = x + ((size_t)iy * Wd + ix) * C;
                    if (dw) {
                        const float *wk = W + ((size_t)ky * kw + kx) * C;
                        for (int c = 0; c < C; c++)
                            acc[c] += xi[c] * wk[c];
                    } else {
                        for (int c = 0; c < OC; c++) {
                            const float *wk = W + (((size_t)c * kh + ky) * kw + kx) * C;
                            float s = 0;
                            for (int ci = 0; ci < C; ci++)
                                s += xi[ci] * wk[ci];
                            acc[c] += s;
                        }
                    }
                }
            }
            for (int c = 0; c < OC; c++)
                yo[c] = act_f(acc[c] + bias[c], op->act);
        }
    }
}

/* One int8 output of a convolution: its int32 sums (with the bias) times
 * the channel's multiplier, rounded, shifted by the zero point, clamped
 * to the activation's range (arbitrary.md section 3). */
static inline int8_t requant(int64_t acc, float mc, int32_t zero, int qmin, int qmax)
{
    long q = qround((float)acc * mc) + zero;
    return (int8_t)(q < qmin ? qmin : q > qmax ? qmax : q);
}

static void conv_i8(struct sf_tflnet *n, int i, const struct sf_tfl_op *op, int dw)
{
    const struct sf_tfl_tensor *wtt = &n->m->t[op->in[1]];
    const struct rt *a = &n->r[op->in[0]], *wt = &n->r[op->in[1]], *o = &n->r[op->out[0]];
    const int8_t *x = ptr(n, op->in[0]), *W = ptr(n, op->in[1]);
    const uint8_t *braw = ptr(n, op->in[2]);
    int8_t *y = ptr(n, op->out[0]);
    int H = a->d[1], Wd = a->d[2], C = a->d[3], kh = wt->d[1], kw = wt->d[2], OC = o->d[3];
    int pt, pl, sh = op->stride_h, sw = op->stride_w, zin = a->zero;
    int qmin = -128, qmax = 127;

    if (op->act == 1 || op->act == 3) {
        long lo = o->zero + qround(0.0f / o->scale);
        qmin = lo > -128 ? (int)lo : -128;
        if (op->act == 3) {
            long hi = o->zero + qround(6.0f / o->scale);
            qmax = hi < 127 ? (int)hi : 127;
        }
    }
    conv_out(H, kh, sh, op->padding == 0, &pt);
    conv_out(Wd, kw, sw, op->padding == 0, &pl);
    float mcs[MAX_CH];                      /* per output channel: the requantizing multiplier, and the bias */
    int32_t bias[MAX_CH];
    for (int c = 0; c < OC; c++) {             /* OC <= MAX_CH (infer) */
        float sw_c = wtt->nq > 1 ? wtt->scale[c] : wtt->scale[0];
        mcs[c] = (float)(a->scale * sw_c) / o->scale;
        memcpy(&bias[c], braw + 4 * (size_t)c, 4);
    }
    if (!dw && n->qw[i]) {                  /* the vector kernel: taps gathered as int16, int32 sums */
        int kt = kh * kw * C, kp = SF_QDOT_PAD(kt), OW = o->d[2];
        size_t npx = (size_t)o->d[1] * OW;
#pragma omp parallel num_threads(n->nthreads)
        {
            int tid = thread_no();
            int16_t *xs = n->qx + (size_t)tid * n->qx_per;
            int32_t *dot = n->qd + (size_t)tid * n->qd_per;
#pragma omp for schedule(static)
            for (size_t p0 = 0; p0 < npx; p0 += QDOT_PIXELS) {
                int np = npx - p0 < QDOT_PIXELS ? (int)(npx - p0) : QDOT_PIXELS;
                for (int j = 0; j < np; j++) {
                    int oy = (int)((p0 + j) / OW), ox = (int)((p0 + j) % OW);
                    int16_t *row = xs + (size_t)j * kp;
                    for (int ky = 0; ky < kh; ky++)
                        for (int kx = 0; kx < kw; kx++) {
                            int iy = oy * sh + ky - pt, ix = ox * sw + kx - pl;
                            int16_t *tap = row + ((size_t)ky * kw + kx) * C;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= Wd) {     /* padding: the zero point */
                                memset(tap, 0, (size_t)C * sizeof *tap);
                                continue;
                            }
                            const int8_t *xi = x + ((size_t)iy * Wd + ix) * C;
                            for (int ci = 0; ci < C; ci++)
                                tap[ci] = (int16_t)(xi[ci] - zin);
                        }
                    memset(row + kt, 0, (size_t)(kp - kt) * sizeof *row);
                }
                n->k->qdot(xs, np, kp, n->qw[i], OC, dot);
                for (int j = 0; j < np; j++) {
                    int8_t *yo = y + (p0 + j) * OC;
                    for (int c = 0; c < OC; c++)
                        yo[c] = requant((int64_t)bias[c] + dot[(size_t)j * OC + c], mcs[c], o->zero, qmin, qmax);
                }
            }
        }
        return;
    }
    if (dw && n->qd && n->k->qdw && C == OC && (size_t)kh * kw <= SF_QDOT_MAX_K) {   /* the vector kernel, a row at a time */
        int OW = o->d[2];
#pragma omp parallel num_threads(n->nthreads)
        {
            int32_t *dot = n->qd + (size_t)thread_no() * n->qd_per;
#pragma omp for schedule(static)
            for (int oy = 0; oy < o->d[1]; oy++) {
                n->k->qdw(x, H, Wd, C, zin, W, kh, kw, sh, pt, pl, oy, OW, dot);
                for (int ox = 0; ox < OW; ox++) {
                    int8_t *yo = y + ((size_t)oy * OW + ox) * OC;
                    for (int c = 0; c < OC; c++)
                        yo[c] = requant((int64_t)bias[c] + dot[(size_t)ox * OC + c], mcs[c], o->zero, qmin, qmax);
                }
            }
        }
        return;
    }
#pragma omp parallel for schedule(static)
    for (int oy = 0; oy < o->d[1]; oy++) {
        int64_t acc[MAX_CH];         /* int32 in LiteRT; wider here, so never overflowing */
        for (int ox = 0; ox < o->d[2]; ox++) {
            for (int c = 0; c < OC; c++)
                acc[c] = bias[c];
            for (int ky = 0; ky < kh; ky++) {
                int iy = oy * sh + ky - pt;
                if (iy < 0 || iy >= H)
                    continue;
                for (int kx = 0; kx < kw; kx++) {
                    int ix = ox * sw + kx - pl;
                    if (ix < 0 || ix >= Wd)
                        continue;
                    const int8_t *xi = x + ((size_t)iy * Wd + ix) * C;
                    if (dw) {
                        const int8_t *wk = W + ((size_t)ky * kw + kx) * C;
                        for (int c = 0; c < C; c++)
                            acc[c] += (xi[c] - zin) * wk[c];
                    } else {
                        for (int c = 0; c < OC; c++) {
                            const int8_t *wk = W + (((size_t)c * kh + ky) * kw + kx) * C;
                            int32_t s = 0;
                            for (int ci = 0; ci < C; ci++)
                                s += (xi[ci] - zin) * wk[ci];
                            acc[c] += s;
                        }
                    }
                }
            }
            int8_t *yo = y + ((size_t)oy * o->d[2] + ox) * OC;
            for (int c = 0; c < OC; c++)
                yo[c] = requant(acc[c], mcs[c], o->zero, qmin, qmax);
        }
    }
}

/* Broadcast index: flat output index -> input index (4-D). */
static size_t bidx(const int od[4], const int id[4], size_t k)
{
    size_t c = k % (size_t)od[3], rest = k / (size_t)od[3];
    size_t x = rest % (size_t)od[2], y = rest / (size_t)od[2] % (size_t)od[1];
    return (((size_t)(id[1] == 1 ? 0 : y) * id[2]) + (id[2] == 1 ? 0 : x)) * id[3] + (id[3] == 1 ? 0 : c);
}

#define BIN_OP(code, u, v) \
    ((code) == SF_TFL_ADD ? (u) + (v) : (code) == SF_TFL_SUB ? (u) - (v) : (code) == SF_TFL_MUL ? (u) * (v) \
                          : ((u) - (v)) * ((u) - (v)))

/* The common shapes without index arithmetic: pixels x channels, each
 * operand SAME (index p C + c), CHAN (c) or ONE (0). */
#define BIN_LOOP(code, AI, BI)                                                              \
    _Pragma("omp parallel for schedule(static)")                                            \
    for (size_t p = 0; p < np; p++) {                                                       \
        _Pragma("omp simd")                                                                 \
        for (int c = 0; c < C; c++) {                                                       \
            float r = BIN_OP(code, x[AI], z[BI]);                                           \
            y[p * C + c] = act == 1 ? (r > 0 ? r : 0) : act == 3 ? (r < 0 ? 0 : r > 6 ? 6 : r) : r; \
        }                                                                                   \
    }

static int binary_fast(int code, int ka, int kb, const float *x, const float *z, float *y, size_t np, int C,
                       int act)
{
#define BIN_CASES(code)                                                                                      \
    if (ka == B_SAME && kb == B_SAME) { BIN_LOOP(code, p * C + c, p * C + c) return 1; }                     \
    if (ka == B_SAME && kb == B_CHAN) { BIN_LOOP(code, p * C + c, c) return 1; }                             \
    if (ka == B_CHAN && kb == B_SAME) { BIN_LOOP(code, c, p * C + c) return 1; }                             \
    if (ka == B_SAME && kb == B_ONE) { BIN_LOOP(code, p * C + c, 0) return 1; }                              \
    if (ka == B_CHAN && kb == B_CHAN) { BIN_LOOP(code, c, c) return 1; }                                     \
    if (ka == B_CHAN && kb == B_ONE) { BIN_LOOP(code, c, 0) return 1; }
    switch (code) {
    case SF_TFL_ADD: BIN_CASES(SF_TFL_ADD) break;
    case SF_TFL_SUB: BIN_CASES(SF_TFL_SUB) break;
    case SF_TFL_MUL: BIN_CASES(SF_TFL_MUL) break;
    default: BIN_CASES(SF_TFL_SQUARED_DIFFERENCE) break;
    }
    return 0;
#undef BIN_CASES
}

static void binary_f32(struct sf_tflnet *n, int i, const struct sf_tfl_op *op)
{
    const struct rt *a = &n->r[op->in[0]], *b = &n->r[op->in[1]], *o = &n->r[op->out[0]];
    const float *x = ptr(n, op->in[0]), *z = ptr(n, op->in[1]);
    float *y = ptr(n, op->out[0]);
    size_t ne = elems4(o->d);

    if (n->fuse[i] >= 0) {                  /* act(x m + b): the product not stored */
        const struct sf_tfl_op *mul = &n->m->ops[n->fuse[i]];
        const float *xv = ptr(n, mul->in[0]), *mv = ptr(n, mul->in[1]);
        const float *bv = ptr(n, op->in[op->in[0] == mul->out[0]]);
        int C = o->d[3], act = op->act;
        size_t np = ne / (size_t)C;
        if (y == xv && n->k && n->k->norm_apply && (act == 0 || act == 1) &&
            (C == 3 || C == 8 || C == 16 || C == 32 || C == 64)) {
            /* in place (inplace_input), on the kernel table's norm apply */
#pragma omp parallel for schedule(static)
            for (size_t p0 = 0; p0 < np; p0 += 4096)
                n->k->norm_apply(y, C, p0, np - p0 < 4096 ? np : p0 + 4096, mv, bv, act == 1, NULL);
            return;
        }
#pragma omp parallel for schedule(static)
        for (size_t p = 0; p < np; p++) {
#pragma omp simd
            for (int c = 0; c < C; c++) {
                float r = xv[p * C + c] * mv[c] + bv[c];
                y[p * C + c] = act == 1 ? (r > 0 ? r : 0) : act == 3 ? (r < 0 ? 0 : r > 6 ? 6 : r) : r;
            }
        }
        return;
    }

    if (binary_fast(op->code, bkind(a, o), bkind(b, o), x, z, y, ne / (size_t)o->d[3], o->d[3], op->act))
        return;

#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < ne; k++) {
        float u = x[bidx(o->d, a->d, k)], v = z[bidx(o->d, b->d, k)], r;
        switch (op->code) {
        case SF_TFL_ADD: r = u + v; break;
        case SF_TFL_SUB: r = u - v; break;
        case SF_TFL_MUL: r = u * v; break;
        default: r = (u - v) * (u - v); break;
        }
        y[k] = act_f(r, op->act);
    }
}

static void add_i8(struct sf_tflnet *n, const struct sf_tfl_op *op)
{
    const struct rt *a = &n->r[op->in[0]], *b = &n->r[op->in[1]], *o = &n->r[op->out[0]];
    const int8_t *x = ptr(n, op->in[0]), *z = ptr(n, op->in[1]);
    int8_t *y = ptr(n, op->out[0]);
    float ra = a->scale / o->scale, rb = b->scale / o->scale;
    int e;
    frexpf(ra > rb ? ra : rb, &e);
    int shift = 20 - (e - 1);
    if (shift < 1 || shift > 40)        /* scales this far apart: refused at plan (infer) */
        return;
    int64_t ma = llrintf(ldexpf(ra, shift)), mb = llrintf(ldexpf(rb, shift));
    if (op->code == SF_TFL_SUB)
        mb = -mb;
    size_t ne = elems4(o->d);
    for (size_t k = 0; k < ne; k++) {
        int64_t s = (x[bidx(o->d, a->d, k)] - a->zero) * ma + (z[bidx(o->d, b->d, k)] - b->zero) * mb +
                    ((int64_t)1 << (shift - 1));
        y[k] = sat8((long)((s >> shift) + o->zero));
    }
}

/* Per-channel sums of x (or of (x - mu)^2 when mu is given) over hw pixels
 * into sum[C], in double.  The pixels are cut into MEAN_CHUNKS fixed
 * chunks, summed in parallel, and the chunks' sums added in their order:
 * the same bits whatever the threads' timing and count. */
#define MEAN_CHUNKS 16
static void channel_sums(const float *x, size_t hw, int C, const float *mu, double *sum)
{
    double part[MEAN_CHUNKS][64];

    for (int c0 = 0; c0 < C; c0 += 64) {    /* 64 channels at a time: the partials stay small */
        int nc = C - c0 < 64 ? C - c0 : 64;
#pragma omp parallel for schedule(static, 1)
        for (int k = 0; k < MEAN_CHUNKS; k++) {
            size_t p0 = hw * (size_t)k / MEAN_CHUNKS, p1 = hw * (size_t)(k + 1) / MEAN_CHUNKS;
            double acc[64] = { 0 };
            for (size_t p = p0; p < p1; p++) {
                const float *px = x + p * C + c0;
                if (mu) {
                    for (int c = 0; c < nc; c++) {
                        float d = px[c] - mu[c0 + c];
                        acc[c] += d * d;
                    }
                } else {
                    for (int c = 0; c < nc; c++)
                        acc[c] += px[c];
                }
            }
            memcpy(part[k], acc, sizeof acc);
        }
        for (int c = 0; c < nc; c++) {
            double t = 0;
            for (int k = 0; k < MEAN_CHUNKS; k++)
                t += part[k][c];
            sum[c0 + c] = t;
        }
    }
}

/* Per-channel mean and variance of x over hw pixels, in one pass: sums of
 * (x - shift) and of its square, shift being the first pixel (so the
 * subtraction loses nothing when the mean is far from 0), on the kernel
 * table's norm_sums (float sums over blocks of pixels, then double) for the
 * channel counts it takes, else in double here; MEAN_CHUNKS fixed chunks
 * added in order, as channel_sums. */
static void channel_moments(const struct sf_cpu_kernels *k, const float *x, size_t hw, int C, float *mean,
                            float *var)
{
    double s[MEAN_CHUNKS][64], q[MEAN_CHUNKS][64];

    for (int c0 = 0; c0 < C; c0 += 64) {
        int nc = C - c0 < 64 ? C - c0 : 64;
        int kern = k && k->norm_sums && nc == C && (C == 3 || C == 8 || C == 16 || C == 32 || C == 64);
        const float *shift = x + c0;
#pragma omp parallel for schedule(static, 1)
        for (int ch = 0; ch < MEAN_CHUNKS; ch++) {
            size_t p0 = hw * (size_t)ch / MEAN_CHUNKS, p1 = hw * (size_t)(ch + 1) / MEAN_CHUNKS;
            double as[64] = { 0 }, aq[64] = { 0 };
            if (kern) {
                k->norm_sums(x, C, p0, p1, shift, as, aq);
            } else {
                for (size_t p = p0; p < p1; p++)
                    for (int c = 0; c < nc; c++) {
                        double d = (double)x[p * C + c0 + c] - shift[c];
                        as[c] += d;
                        aq[c] += d * d;
                    }
            }
            memcpy(s[ch], as, sizeof as);
            memcpy(q[ch], aq, sizeof aq);
        }
        for (int c = 0; c < nc; c++) {
            double ts = 0, tq = 0;
            for (int ch = 0; ch < MEAN_CHUNKS; ch++) {
                ts += s[ch][c];
                tq += q[ch][c];
            }
            double d = ts / (double)hw, v = tq / (double)hw - d * d;
            mean[c0 + c] = (float)(shift[c] + d);
            var[c0 + c] = (float)(v > 0 ? v : 0);
        }
    }
}

static void mean(struct sf_tflnet *n, int i, const struct sf_tfl_op *op)
{
    const struct rt *a = &n->r[op->in[0]], *o = &n->r[op->out[0]];
    size_t hw = (size_t)a->d[1] * a->d[2];
    int C = a->d[3];
    double sum[MAX_CH];

    if (n->var[i]) {                        /* the mean, and the variance for a MEAN to come */
        channel_moments(n->k, ptr(n, op->in[0]), hw, C, ptr(n, op->out[0]), n->var[i]);
        return;
    }
    if (n->var_of[i] >= 0) {                /* the variance, computed with the mean */
        memcpy(ptr(n, op->out[0]), n->var[n->var_of[i]], (size_t)C * sizeof(float));
        return;
    }

    if (n->fuse[i] >= 0) {                  /* the mean of (x - mu)^2, squares not stored */
        const struct sf_tfl_op *sq = &n->m->ops[n->fuse[i]];
        float *y = ptr(n, op->out[0]);
        channel_sums(ptr(n, sq->in[0]), hw, C, ptr(n, sq->in[1]), sum);
        for (int c = 0; c < C; c++)
            y[c] = (float)(sum[c] / (double)hw);
        return;
    }
    if (a->type == SF_TFL_F32) {
        float *y = ptr(n, op->out[0]);
        channel_sums(ptr(n, op->in[0]), hw, C, NULL, sum);
        for (int c = 0; c < C; c++)
            y[c] = (float)(sum[c] / (double)hw);
        return;
    }
    for (int c = 0; c < C; c++) {
        const int8_t *x = ptr(n, op->in[0]);
        double s = 0;
        for (size_t p = 0; p < hw; p++)
            s += x[p * C + c] - a->zero;
        ((int8_t *)ptr(n, op->out[0]))[c] = sat8(qround((double)a->scale * s / ((double)hw * o->scale)) + o->zero);
    }
}

/* y = 1 / (1 + e^-x) in plain arithmetic, so that the loop vectorizes:
 * e^-x as 2^k times a degree-6 polynomial on the remainder (relative
 * error under 3e-7; the transformer's output is this times 255, rounded).
 * GCC if-converts the clamps only without trapping math, and vectorizes
 * the loop only with an int index. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-trapping-math")))
#endif
static void sigmoid_block(float *y, const float *x, int m)
{
#pragma omp simd
    for (int k = 0; k < m; k++) {
        float t = -x[k];
        t = t < -87.f ? -87.f : t;
        t = t > 87.f ? 87.f : t;
        float kf = (t * 1.44269504f + 12582912.f) - 12582912.f;     /* rounded to an integer */
        int e = (int)kf;
        float r = t - kf * 0.693145752f - kf * 1.42860677e-6f;
        float p = 1.f + r * (1.f + r * (0.5f + r * (1.f / 6 + r * (1.f / 24 + r * (1.f / 120 + r * (1.f / 720))))));
        int32_t bits = (e + 127) * (1 << 23);
        float sc;
        memcpy(&sc, &bits, sizeof sc);
        y[k] = 1.f / (1.f + p * sc);
    }
}

static void unary(struct sf_tflnet *n, const struct sf_tfl_op *op)
{
    const struct rt *a = &n->r[op->in[0]], *o = &n->r[op->out[0]];
    size_t ne = elems4(o->d);
    void *yv = ptr(n, op->out[0]);
    const void *xv = ptr(n, op->in[0]);

    if (op->code == SF_TFL_LOGISTIC) {
#pragma omp parallel for schedule(static)
        for (size_t b = 0; b < ne; b += 4096)
            sigmoid_block((float *)yv + b, (const float *)xv + b, ne - b < 4096 ? (int)(ne - b) : 4096);
        return;
    }

#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < ne; k++) {
        switch (op->code) {
        case SF_TFL_RSQRT: ((float *)yv)[k] = 1.0f / sqrtf(((const float *)xv)[k]); break;
        case SF_TFL_QUANTIZE:
            ((int8_t *)yv)[k] = sat8(qround(((const float *)xv)[k] / o->scale) + o->zero);
            break;
        default:                    /* DEQUANTIZE */
            ((float *)yv)[k] = a->scale * (float)(((const int8_t *)xv)[k] - a->zero);
            break;
        }
    }
}

static void mirror_pad(struct sf_tflnet *n, const struct sf_tfl_op *op)
{
    const struct rt *a = &n->r[op->in[0]], *o = &n->r[op->out[0]];
    const int32_t *p = ptr(n, op->in[1]);
    const float *x = ptr(n, op->in[0]);
    float *y = ptr(n, op->out[0]);
    int H = a->d[1], W = a->d[2], C = a->d[3], sym = op->mirror_mode == 1;

#pragma omp parallel for schedule(static)
    for (int oy = 0; oy < o->d[1]; oy++) {
        int iy = oy - p[2];
        iy = iy < 0 ? -iy - sym : iy >= H ? 2 * H - 2 - iy + sym : iy;
        for (int ox = 0; ox < o->d[2]; ox++) {
            int ix = ox - p[4];
            ix = ix < 0 ? -ix - sym : ix >= W ? 2 * W - 2 - ix + sym : ix;
            memcpy(y + ((size_t)oy * o->d[2] + ox) * C, x + ((size_t)iy * W + ix) * C, (size_t)C * sizeof *y);
        }
    }
}

static void resize_nearest(struct sf_tflnet *n, const struct sf_tfl_op *op)
{
    const struct rt *a = &n->r[op->in[0]], *o = &n->r[op->out[0]];
    const float *x = ptr(n, op->in[0]);
    float *y = ptr(n, op->out[0]);
    int C = a->d[3];
    float sy = (float)a->d[1] / (float)o->d[1], sx = (float)a->d[2] / (float)o->d[2];

#pragma omp parallel for schedule(static)
    for (int oy = 0; oy < o->d[1]; oy++) {
        int iy = (int)floorf((float)oy * sy);
        iy = iy < a->d[1] - 1 ? iy : a->d[1] - 1;
        for (int ox = 0; ox < o->d[2]; ox++) {
            int ix = (int)floorf((float)ox * sx);
            ix = ix < a->d[2] - 1 ? ix : a->d[2] - 1;
            memcpy(y + ((size_t)oy * o->d[2] + ox) * C, x + ((size_t)iy * a->d[2] + ix) * C, (size_t)C * sizeof *y);
        }
    }
}

static const char *op_name(int code)
{
    switch (code) {
    case SF_TFL_ADD: return "add";
    case SF_TFL_SUB: return "sub";
    case SF_TFL_MUL: return "mul";
    case SF_TFL_SQUARED_DIFFERENCE: return "squared_difference";
    case SF_TFL_MEAN: return "mean";
    case SF_TFL_MIRROR_PAD: return "mirror_pad";
    case SF_TFL_RESIZE_NEAREST: return "resize_nearest";
    case SF_TFL_RSQRT: return "rsqrt";
    case SF_TFL_LOGISTIC: return "logistic";
    case SF_TFL_QUANTIZE: return "quantize";
    case SF_TFL_DEQUANTIZE: return "dequantize";
    default: return "conv";
    }
}

int sf_tflnet_run(struct sf_tflnet *n)
{
    static int profile = -1;
    if (profile < 0)
        profile = getenv("STYLEFS_PROFILE") && *getenv("STYLEFS_PROFILE") == '1';
    double tconv_s = 0, other_s = 0;
    for (int i = 0; i < n->m->nops; i++) {
        struct timespec t0, t1;
        if (profile)
            clock_gettime(CLOCK_MONOTONIC, &t0);
        const struct sf_tfl_op *op = &n->m->ops[i];
        int i8 = n->r[op->out[0]].type == SF_TFL_I8;
        if (n->skip[i])
            continue;
        switch (op->code) {
        case SF_TFL_CONV_2D: case SF_TFL_DEPTHWISE_CONV_2D:
            if (i8)
                conv_i8(n, i, op, op->code == SF_TFL_DEPTHWISE_CONV_2D);
            else
                conv_f32(n, i, op, op->code == SF_TFL_DEPTHWISE_CONV_2D);
            break;
        case SF_TFL_ADD: case SF_TFL_SUB:
            if (i8)
                add_i8(n, op);
            else
                binary_f32(n, i, op);
            break;
        case SF_TFL_MUL: case SF_TFL_SQUARED_DIFFERENCE: binary_f32(n, i, op); break;
        case SF_TFL_MEAN: mean(n, i, op); break;
        case SF_TFL_MIRROR_PAD: mirror_pad(n, op); break;
        case SF_TFL_RESIZE_NEAREST: resize_nearest(n, op); break;
        default: unary(n, op); break;
        }
        if (profile) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            double dt = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
            if (op->code == SF_TFL_CONV_2D && n->r[op->out[0]].d[1] > 1) {
                const struct rt *o = &n->r[op->out[0]], *a = &n->r[op->in[0]];
                fprintf(stderr, "tflnet: op %3d conv %dx%d %d->%d at %dx%d: %6.1f ms (%s)\n", i,
                        n->r[op->in[1]].d[1], n->r[op->in[1]].d[2], a->d[3], o->d[3], o->d[2], o->d[1], dt * 1e3,
                        n->planar[i] ? "tconvp" : n->cw[i] ? "tconv" : n->qw[i] ? "qdot" : "portable");
                tconv_s += dt;
            } else {
                other_s += dt;
                if (dt >= 1e-3) {
                    const struct rt *o = &n->r[op->out[0]];
                    fprintf(stderr, "tflnet: op %3d %s%s to %dx%dx%d: %6.1f ms\n", i, op_name(op->code),
                            n->fuse[i] >= 0 ? " (fused)" : "", o->d[1], o->d[2], o->d[3], dt * 1e3);
                }
            }
        }
    }
    if (profile)
        fprintf(stderr, "tflnet: convolutions %.1f ms, other ops %.1f ms\n", tconv_s * 1e3, other_s * 1e3);
    return 0;
}
