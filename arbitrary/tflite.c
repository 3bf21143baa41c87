/* tflite.c: the bounded TFLite flatbuffer reader (format in tflite.h).
 *
 * Every read goes through the fb_* helpers, which check the position and
 * length against the buffer first; a failed check records why (the first
 * one only) and makes the parse fail with -EINVAL. */
#include "tflite.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TENSORS 100000
#define MAX_OPS 100000
#define MAX_DIM (1 << 24)

struct fb {
    const uint8_t *b;
    size_t n;
    int bad;
    char *why;
    size_t whylen;
};

static int fb_fail(struct fb *f, const char *fmt, ...)
{
    va_list ap;

    if (!f->bad) {
        va_start(ap, fmt);
        vsnprintf(f->why, f->whylen, fmt, ap);
        va_end(ap);
    }
    f->bad = 1;
    return -EINVAL;
}

static int fb_has(struct fb *f, size_t pos, size_t len)
{
    if (pos > f->n || f->n - pos < len)
        return fb_fail(f, "offset %zu+%zu is outside the file (%zu bytes)", pos, len, f->n);
    return 0;
}
static uint32_t fb_u32(struct fb *f, size_t pos)
{
    uint32_t v = 0;
    if (!fb_has(f, pos, 4))
        memcpy(&v, f->b + pos, 4);
    return v;
}
static uint16_t fb_u16(struct fb *f, size_t pos)
{
    uint16_t v = 0;
    if (!fb_has(f, pos, 2))
        memcpy(&v, f->b + pos, 2);
    return v;
}

/* Where table tab's field lives: 0 when absent (or on error, with f->bad). */
static size_t fb_field(struct fb *f, size_t tab, int field)
{
    int32_t soff = (int32_t)fb_u32(f, tab);
    int64_t vt = (int64_t)tab - soff;
    uint16_t vtsize, tabsize, off;

    if (f->bad)
        return 0;
    if (vt < 0 || (uint64_t)vt > f->n - 4) {
        fb_fail(f, "table at %zu: its vtable offset %d points outside the file", tab, soff);
        return 0;
    }
    vtsize = fb_u16(f, (size_t)vt);
    tabsize = fb_u16(f, (size_t)vt + 2);
    if (vtsize < 4 || vtsize % 2 || fb_has(f, (size_t)vt, vtsize) || fb_has(f, tab, tabsize < 4 ? 4 : tabsize)) {
        fb_fail(f, "table at %zu: a damaged vtable (size %u, table size %u)", tab, vtsize, tabsize);
        return 0;
    }
    if (4 + 2 * (size_t)field + 2 > vtsize)
        return 0;                       /* beyond the vtable: absent */
    off = fb_u16(f, (size_t)vt + 4 + 2 * (size_t)field);
    if (!off)
        return 0;
    if (off >= tabsize) {
        fb_fail(f, "table at %zu: field %d at %u lies outside its %u bytes", tab, field, off, tabsize);
        return 0;
    }
    return tab + off;
}

/* Scalars with defaults. */
static int64_t fb_int(struct fb *f, size_t tab, int field, int size, int is_signed, int64_t def)
{
    size_t p = fb_field(f, tab, field);
    uint8_t raw[8] = { 0 };

    if (!p || fb_has(f, p, (size_t)size))
        return def;
    memcpy(raw, f->b + p, (size_t)size);
    switch (size) {
    case 1: return is_signed ? (int64_t)(int8_t)raw[0] : raw[0];
    case 2: { uint16_t v; memcpy(&v, raw, 2); return is_signed ? (int64_t)(int16_t)v : v; }
    case 4: { uint32_t v; memcpy(&v, raw, 4); return is_signed ? (int64_t)(int32_t)v : v; }
    default: { int64_t v; memcpy(&v, raw, 8); return v; }
    }
}

/* The target of the reference field at p (a table, vector or string). */
static size_t fb_deref(struct fb *f, size_t p)
{
    uint32_t rel = fb_u32(f, p);
    if (f->bad)
        return 0;
    if (rel == 0 || rel > f->n - p || f->n - (p + rel) < 4) {
        fb_fail(f, "a reference at %zu points outside the file", p);
        return 0;
    }
    return p + rel;
}

/* A vector field: its element count and first element; 0 elements when
 * absent.  elem is the element size, for the bounds check. */
static uint32_t fb_vector(struct fb *f, size_t tab, int field, size_t elem, size_t *start)
{
    size_t p = fb_field(f, tab, field), v;
    uint32_t count;

    *start = 0;
    if (!p)
        return 0;
    if (!(v = fb_deref(f, p)))
        return 0;
    count = fb_u32(f, v);
    if (f->bad)
        return 0;
    if ((uint64_t)count * elem > f->n - (v + 4)) {
        fb_fail(f, "a vector at %zu: %u elements of %zu bytes overrun the file", v, count, elem);
        return 0;
    }
    *start = v + 4;
    return count;
}

/* Element i of a vector of tables. */
static size_t fb_table_at(struct fb *f, size_t start, uint32_t i)
{
    return fb_deref(f, start + 4 * (size_t)i);
}

size_t sf_tfl_type_size(int type)
{
    switch (type) {
    case SF_TFL_F32: case SF_TFL_I32: return 4;
    case SF_TFL_F16: return 2;
    case SF_TFL_U8: case SF_TFL_I8: return 1;
    case SF_TFL_I64: return 8;
    default: return 0;
    }
}

size_t sf_tfl_elems(const struct sf_tfl_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

static int read_tensor(struct fb *f, size_t tab, size_t bufs, uint32_t nbufs, struct sf_tfl_tensor *t, int idx)
{
    size_t start, bstart, p;
    uint32_t n;

    n = fb_vector(f, tab, 0, 4, &start);
    if (n > SF_TFL_MAX_DIMS)
        return fb_fail(f, "tensor %d: %u dimensions (at most %d)", idx, n, SF_TFL_MAX_DIMS);
    t->ndim = (int)n;
    for (uint32_t i = 0; i < n; i++) {
        int32_t d = (int32_t)fb_u32(f, start + 4 * i);
        if (d < 1 || d > MAX_DIM)
            return fb_fail(f, "tensor %d: dimension %u is %d", idx, i, d);
        t->shape[i] = d;
    }
    if (t->ndim && sf_tfl_elems(t) > (size_t)1 << 31)
        return fb_fail(f, "tensor %d: too many elements", idx);
    t->type = (int)fb_int(f, tab, 1, 1, 1, 0);
    if (!sf_tfl_type_size(t->type))
        return fb_fail(f, "tensor %d: type %d is not supported", idx, t->type);
    uint32_t b = (uint32_t)fb_int(f, tab, 2, 4, 0, 0);
    if (b >= nbufs && nbufs)
        return fb_fail(f, "tensor %d: buffer %u of %u", idx, b, nbufs);
    if (nbufs) {
        size_t btab = fb_table_at(f, bufs, b);
        uint32_t bytes = btab ? fb_vector(f, btab, 0, 1, &bstart) : 0;
        if (f->bad)
            return -EINVAL;
        if (bytes) {
            if (bytes != sf_tfl_elems(t) * sf_tfl_type_size(t->type))
                return fb_fail(f, "tensor %d: %u bytes of data for %zu elements of type %d", idx, bytes,
                               sf_tfl_elems(t), t->type);
            t->data = f->b + bstart;
            t->bytes = bytes;
        }
    }
    p = fb_field(f, tab, 3);                    /* name */
    if (p) {
        size_t s = fb_deref(f, p);
        uint32_t len = s ? fb_u32(f, s) : 0;
        if (f->bad || len > f->n - (s + 4))
            return fb_fail(f, "tensor %d: a damaged name", idx);
        if (!(t->name = strndup((const char *)f->b + s + 4, len)))
            return -ENOMEM;
    }
    p = fb_field(f, tab, 4);                    /* quantization */
    if (p) {
        size_t q = fb_deref(f, p), sstart, zstart;
        uint32_t ns, nz;
        if (!q)
            return -EINVAL;
        ns = fb_vector(f, q, 2, 4, &sstart);
        nz = fb_vector(f, q, 3, 8, &zstart);
        if (f->bad)
            return -EINVAL;
        if (ns > MAX_DIM || (nz && nz != ns))
            return fb_fail(f, "tensor %d: %u scales and %u zero points", idx, ns, nz);
        if (ns) {
            t->scale = malloc(ns * sizeof *t->scale);
            t->zero = calloc(ns, sizeof *t->zero);
            if (!t->scale || !t->zero)
                return -ENOMEM;
            for (uint32_t i = 0; i < ns; i++) {
                memcpy(&t->scale[i], f->b + sstart + 4 * i, 4);
                if (nz) {
                    int64_t z;
                    memcpy(&z, f->b + zstart + 8 * i, 8);
                    if (z < -32768 || z > 32767)
                        return fb_fail(f, "tensor %d: zero point %lld", idx, (long long)z);
                    t->zero[i] = (int32_t)z;
                }
            }
            t->nq = (int)ns;
            t->qdim = (int)fb_int(f, q, 6, 4, 1, 0);
            if (t->qdim < 0 || (t->ndim && t->qdim >= t->ndim) ||
                (ns > 1 && (!t->ndim || (uint32_t)t->shape[t->qdim] != ns)))
                return fb_fail(f, "tensor %d: %u scales along dimension %d", idx, ns, t->qdim);
        }
    }
    return f->bad ? -EINVAL : 0;
}

static int read_indices(struct fb *f, size_t tab, int field, int ntensors, int allow_none, int32_t *out,
                        int *count, const char *what, int idx)
{
    size_t start;
    uint32_t n = fb_vector(f, tab, field, 4, &start);

    if (f->bad)
        return -EINVAL;
    if (n > SF_TFL_MAX_IO)
        return fb_fail(f, "%s %d: %u tensors (at most %d)", what, idx, n, SF_TFL_MAX_IO);
    for (uint32_t i = 0; i < n; i++) {
        int32_t v = (int32_t)fb_u32(f, start + 4 * i);
        if (v >= ntensors || v < (allow_none ? -1 : 0))
            return fb_fail(f, "%s %d: tensor index %d of %d", what, idx, v, ntensors);
        out[i] = v;
    }
    for (uint32_t i = n; i < SF_TFL_MAX_IO; i++)
        out[i] = -1;
    *count = (int)n;
    return 0;
}

static int read_op(struct fb *f, size_t tab, const int *codes, uint32_t ncodes, int ntensors,
                   struct sf_tfl_op *op, int idx)
{
    uint32_t oc = (uint32_t)fb_int(f, tab, 0, 4, 0, 0);
    size_t o;
    int rc;

    if (oc >= ncodes)
        return fb_fail(f, "operator %d: opcode index %u of %u", idx, oc, ncodes);
    op->code = codes[oc];
    if ((rc = read_indices(f, tab, 1, ntensors, 1, op->in, &op->nin, "operator", idx)) ||
        (rc = read_indices(f, tab, 2, ntensors, 0, op->out, &op->nout, "operator", idx)))
        return rc;
    op->stride_w = op->stride_h = op->depth_mult = 1;
    o = fb_field(f, tab, 4);
    if (!o)
        return f->bad ? -EINVAL : 0;
    if (!(o = fb_deref(f, o)))
        return -EINVAL;
    switch (op->code) {
    case SF_TFL_CONV_2D:
    case SF_TFL_DEPTHWISE_CONV_2D: {
        int dw = op->code == SF_TFL_DEPTHWISE_CONV_2D;
        op->padding = (int)fb_int(f, o, 0, 1, 1, 0);
        op->stride_w = (int)fb_int(f, o, 1, 4, 1, 0);
        op->stride_h = (int)fb_int(f, o, 2, 4, 1, 0);
        if (dw)
            op->depth_mult = (int)fb_int(f, o, 3, 4, 1, 0);
        op->act = (int)fb_int(f, o, dw ? 4 : 3, 1, 1, 0);
        int dil_w = (int)fb_int(f, o, dw ? 5 : 4, 4, 1, 1), dil_h = (int)fb_int(f, o, dw ? 6 : 5, 4, 1, 1);
        if (op->stride_w < 1 || op->stride_h < 1 || op->stride_w > 16 || op->stride_h > 16 ||
            op->padding < 0 || op->padding > 1 || dil_w != 1 || dil_h != 1 || (dw && op->depth_mult != 1))
            return fb_fail(f, "operator %d: unsupported convolution options (stride %dx%d, padding %d, "
                              "dilation %dx%d, depth multiplier %d)", idx, op->stride_w, op->stride_h,
                           op->padding, dil_w, dil_h, op->depth_mult);
        break;
    }
    case SF_TFL_ADD: case SF_TFL_SUB: case SF_TFL_MUL:
        op->act = (int)fb_int(f, o, 0, 1, 1, 0);
        break;
    case SF_TFL_MEAN: op->keep_dims = (int)fb_int(f, o, 0, 1, 0, 0); break;
    case SF_TFL_RESIZE_NEAREST:
        op->align_corners = (int)fb_int(f, o, 0, 1, 0, 0);
        op->half_pixel = (int)fb_int(f, o, 1, 1, 0, 0);
        break;
    case SF_TFL_MIRROR_PAD: op->mirror_mode = (int)fb_int(f, o, 0, 1, 1, 0); break;
    default: break;
    }
    if (op->act != 0 && op->act != 1 && op->act != 3)
        return fb_fail(f, "operator %d: fused activation %d is not supported", idx, op->act);
    return f->bad ? -EINVAL : 0;
}

void sf_tfl_free(struct sf_tfl_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->ntensors; i++) {
        free(m->t[i].scale);
        free(m->t[i].zero);
        free(m->t[i].name);
        free(m->t[i].owned);
    }
    free(m->t);
    free(m->ops);
    free(m);
}

int sf_tfl_parse(const uint8_t *buf, size_t len, struct sf_tfl_model **out, char *why, size_t whylen)
{
    struct fb f = { buf, len, 0, why, whylen };
    struct sf_tfl_model *m;
    size_t root, cstart, sstart, bstart, tstart, ostart, sg;
    uint32_t ncodes, nsg, nbufs, nt, nops;
    int *codes = NULL, rc = -EINVAL;

    *out = NULL;
    if (len < 8 || memcmp(buf + 4, "TFL3", 4)) {
        snprintf(why, whylen, "not a TFLite model (no TFL3 identifier)");
        return -EINVAL;
    }
    if (!(m = calloc(1, sizeof *m))) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    root = fb_u32(&f, 0);
    if (root < 8 || root > len - 4) {
        fb_fail(&f, "the root table offset %zu is outside the file", root);
        goto out_fail;
    }
    ncodes = fb_vector(&f, root, 1, 4, &cstart);
    nsg = fb_vector(&f, root, 2, 4, &sstart);
    nbufs = fb_vector(&f, root, 4, 4, &bstart);
    if (f.bad)
        goto out_fail;
    if (!nsg) {
        fb_fail(&f, "no subgraph");
        goto out_fail;
    }
    if (ncodes > 1000 || !(codes = calloc(ncodes ? ncodes : 1, sizeof *codes))) {
        fb_fail(&f, "%u operator codes", ncodes);
        goto out_fail;
    }
    for (uint32_t i = 0; i < ncodes; i++) {
        size_t c = fb_table_at(&f, cstart, i);
        int64_t dep = c ? fb_int(&f, c, 0, 1, 1, 0) : 0, code = c ? fb_int(&f, c, 3, 4, 1, 0) : 0;
        if (f.bad)
            goto out_fail;
        codes[i] = (int)(dep > code ? dep : code);
    }
    sg = fb_table_at(&f, sstart, 0);
    if (!sg)
        goto out_fail;
    nt = fb_vector(&f, sg, 0, 4, &tstart);
    nops = fb_vector(&f, sg, 3, 4, &ostart);
    if (f.bad)
        goto out_fail;
    if (nt > MAX_TENSORS || nops > MAX_OPS || !nt || !nops) {
        fb_fail(&f, "%u tensors and %u operators", nt, nops);
        goto out_fail;
    }
    m->t = calloc(nt, sizeof *m->t);
    m->ops = calloc(nops, sizeof *m->ops);
    if (!m->t || !m->ops) {
        rc = -ENOMEM;
        snprintf(why, whylen, "out of memory");
        goto out_fail_rc;
    }
    m->ntensors = (int)nt;
    m->nops = (int)nops;
    for (uint32_t i = 0; i < nt; i++) {
        size_t t = fb_table_at(&f, tstart, i);
        if (!t)
            goto out_fail;
        if ((rc = read_tensor(&f, t, bstart, nbufs, &m->t[i], (int)i)) == -ENOMEM) {
            snprintf(why, whylen, "out of memory");
            goto out_fail_rc;
        } else if (rc) {
            goto out_fail;
        }
    }
    if (read_indices(&f, sg, 1, (int)nt, 0, m->in, &m->nin, "subgraph", 0) ||
        read_indices(&f, sg, 2, (int)nt, 0, m->out, &m->nout, "subgraph", 0))
        goto out_fail;
    for (uint32_t i = 0; i < nops; i++) {
        size_t o = fb_table_at(&f, ostart, i);
        if (!o || read_op(&f, o, codes, ncodes, (int)nt, &m->ops[i], (int)i))
            goto out_fail;
    }
    free(codes);
    *out = m;
    return 0;
out_fail:
    rc = -EINVAL;
    if (!f.bad)
        snprintf(why, whylen, "damaged model file");
out_fail_rc:
    free(codes);
    sf_tfl_free(m);
    return rc;
}

int sf_tfl_to_float(const struct sf_tfl_model *m, struct sf_tfl_model **out, char *why, size_t whylen)
{
    struct sf_tfl_model *f = calloc(1, sizeof *f);
    int *alias = NULL, rc = -ENOMEM;

    *out = NULL;
    if (!f || !(f->t = calloc((size_t)m->ntensors, sizeof *f->t)) || !(f->ops = calloc((size_t)m->nops, sizeof *f->ops)) ||
        !(alias = malloc((size_t)m->ntensors * sizeof *alias)))
        goto out_fail;
    f->ntensors = m->ntensors;
    for (int i = 0; i < m->ntensors; i++) {
        const struct sf_tfl_tensor *t = &m->t[i];
        struct sf_tfl_tensor *g = &f->t[i];
        alias[i] = i;
        *g = *t;
        g->scale = NULL;
        g->zero = NULL;
        g->owned = NULL;
        g->nq = 0;
        if (!(g->name = strdup(t->name ? t->name : "")))
            goto out_fail;
        if (t->type == SF_TFL_I8) {
            g->type = SF_TFL_F32;
            if (t->data) {                  /* dequantize, per channel along qdim */
                size_t ne = sf_tfl_elems(t), inner = 1;
                float *d = malloc(ne * sizeof *d);
                if (!d)
                    goto out_fail;
                for (int k = t->qdim + 1; k < t->ndim; k++)
                    inner *= (size_t)t->shape[k];
                for (size_t e = 0; e < ne; e++) {
                    int q = t->nq > 1 ? (int)(e / inner % (size_t)t->nq) : 0;
                    d[e] = t->nq ? t->scale[q] * (float)((int8_t)t->data[e] - t->zero[q]) : (float)(int8_t)t->data[e];
                }
                g->owned = d;
                g->data = (const uint8_t *)d;
                g->bytes = ne * sizeof *d;
            }
        }
    }
    /* int32 biases of int8 convolutions: float, scale s_in * s_w[c] */
    for (int i = 0; i < m->nops; i++) {
        const struct sf_tfl_op *op = &m->ops[i];
        if ((op->code != SF_TFL_CONV_2D && op->code != SF_TFL_DEPTHWISE_CONV_2D) || op->nin < 3 || op->in[2] < 0)
            continue;
        const struct sf_tfl_tensor *x = &m->t[op->in[0]], *w = &m->t[op->in[1]], *b = &m->t[op->in[2]];
        if (b->type != SF_TFL_I32 || !b->data || x->type != SF_TFL_I8 || x->nq != 1 || w->nq < 1)
            continue;
        size_t nb = sf_tfl_elems(b);
        float *d = malloc(nb * sizeof *d);
        if (!d)
            goto out_fail;
        for (size_t c = 0; c < nb; c++) {
            int32_t v;
            memcpy(&v, b->data + 4 * c, 4);
            d[c] = (float)v * x->scale[0] * w->scale[w->nq > 1 ? c % (size_t)w->nq : 0];
        }
        /* a bias tensor may serve several convolutions: give this op its own */
        int nt = f->ntensors;
        struct sf_tfl_tensor *nt_ = realloc(f->t, (size_t)(nt + 1) * sizeof *f->t);
        if (!nt_) {
            free(d);
            goto out_fail;
        }
        f->t = nt_;
        f->t[nt] = f->t[op->in[2]];
        f->t[nt].type = SF_TFL_F32;
        f->t[nt].data = (const uint8_t *)d;
        f->t[nt].bytes = nb * sizeof *d;
        f->t[nt].owned = d;
        f->t[nt].name = strdup(b->name ? b->name : "");
        f->ntensors = nt + 1;
        if (!f->t[nt].name)
            goto out_fail;
        f->ops[i].in[2] = nt;               /* set below when the op is copied */
    }
    /* the ops, without QUANTIZE and DEQUANTIZE */
    for (int i = 0; i < m->nops; i++) {
        const struct sf_tfl_op *op = &m->ops[i];
        if (op->code == SF_TFL_QUANTIZE || op->code == SF_TFL_DEQUANTIZE) {
            if (op->nin < 1 || op->nout != 1 || op->in[0] < 0) {
                snprintf(why, whylen, "op %d: a (de)quantize without one input and output", i);
                rc = -EINVAL;
                goto out_fail;
            }
            alias[op->out[0]] = alias[op->in[0]];
            continue;
        }
        int bias = f->ops[i].in[2];
        struct sf_tfl_op *g = &f->ops[f->nops++];
        int had_bias = (op->code == SF_TFL_CONV_2D || op->code == SF_TFL_DEPTHWISE_CONV_2D) && bias > 0 &&
                       bias >= m->ntensors;
        *g = *op;
        for (int k = 0; k < g->nin; k++)
            if (g->in[k] >= 0 && g->in[k] < m->ntensors)
                g->in[k] = alias[g->in[k]];
        if (had_bias)
            g->in[2] = bias;
    }
    f->nin = m->nin;
    f->nout = m->nout;
    for (int k = 0; k < SF_TFL_MAX_IO; k++) {
        f->in[k] = m->in[k];
        f->out[k] = k < m->nout ? alias[m->out[k]] : -1;
    }
    free(alias);
    *out = f;
    return 0;
out_fail:
    if (rc == -ENOMEM)
        snprintf(why, whylen, "out of memory");
    free(alias);
    sf_tfl_free(f);
    return rc;
}
