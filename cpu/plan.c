/* plan.c: the oneDNN part of a CPU plan: the convolution and transposed
 * convolution primitives of layers 1-14, the layout reorders between
 * them, their weights, and the check that none is a reference
 * implementation.
 *
 * oneDNN picks an implementation per primitive from the CPU and the
 * layouts asked for, and falls back silently to "ref:any" (scalar loops,
 * 100-1000x slower) when no JIT kernel takes those layouts: on AVX2, for
 * example, any mix of NHWC and nChw16c, and nChw16c itself.  So every
 * primitive's implementation string is read here, and one that names
 * "ref" is refused (-ENOTSUP): the engine then tries its next layout
 * configuration, and the last one runs layers 1-14 on our own 3x3 kernels
 * (aarch64 without SVE, where Debian's oneDNN has no JIT kernels). */
#include "cpu_engine.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The configurations, in the order the engine tries them. */
const struct plan_cfg sf_plan_cfgs[] = {
    { "nhwc + nChw16c stylefs Winograd residual", 32, 64, 128, 16, 0, 0, 1 },
    { "nhwc + nChw16c Winograd residual", 32, 64, 128, 16, 1, 0, 0 },
    { "nChw8c + stylefs Winograd residual", 8, 8, 8, 8, 0, 0, 1 },
    { "nChw16c", 16, 16, 16, 16, 0, 0, 0 },
    { "nChw8c", 8, 8, 8, 8, 0, 0, 0 },
    { "nhwc", 32, 64, 128, 128, 0, 0, 0 },
    { "nhwc, stylefs 3x3 kernels", 32, 64, 128, 128, 0, 1, 0 },  /* always plans: the last resort */
};
const int sf_plan_ncfgs = sizeof sf_plan_cfgs / sizeof *sf_plan_cfgs;

int sf_dnnl_errno(dnnl_status_t s)
{
    switch (s) {
    case dnnl_success: return 0;
    case dnnl_out_of_memory: return -ENOMEM;
    case dnnl_invalid_arguments: return -EINVAL;
    case dnnl_unimplemented: return -ENOSYS;
    default: return -EIO;
    }
}

#define CHECK(call)                                                        \
    do {                                                                   \
        dnnl_status_t s_ = (call);                                         \
        if (s_ != dnnl_success) {                                          \
            sf_err("oneDNN: %s failed (status %d)", #call, (int)s_);       \
            rc = sf_dnnl_errno(s_);                                        \
            goto out_fail;                                                 \
        }                                                                  \
    } while (0)

static dnnl_format_tag_t tag_of(int c, int cb)
{
    return cb == c ? dnnl_nhwc : cb == 16 ? dnnl_nChw16c : dnnl_nChw8c;
}

int sf_plan_layer(struct sf_engine_impl *e, int i, float *src, int hin, int win, int cb_in, float *dst,
                  int cb_out, int winograd, int bf16, const int *vpad, int *hout, int *wout, size_t *scratch_need)
{
    dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
    const struct sf_layer_spec *s = &sf_net[i];
    struct dnn_layer *l = &e->L[i];
    dnnl_memory_desc_t src_md, dst_md, w_any, w_user;
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_dims_t sdims, ddims, wdims, wstrides;
    dnnl_dims_t strides = { s->stride, s->stride }, pl, pr;
    const dnnl_memory_desc_t *md;
    const char *impl = NULL;
    int rc = 0, oh, ow, pbh, pah, pbw, paw;

    if (s->kind == SF_CONV) {
        sf_same_pad(hin, s->k, s->stride, &oh, &pbh, &pah);
        sf_same_pad(win, s->k, s->stride, &ow, &pbw, &paw);
    } else {
        /* transposed: output s*n; pad_before from SAME on the output (0 for
         * 3x3 s2), the rest cut at the end so the output is exactly s*n. */
        oh = hin * s->stride;
        ow = win * s->stride;
        pbh = pbw = 0;
        pah = (hin - 1) * s->stride + s->k - oh;
        paw = (win - 1) * s->stride + s->k - ow;
    }
    if (vpad) {                 /* a band: rows as given, cut vpad[0] before and vpad[1] after */
        pbh = vpad[0];
        pah = vpad[1];
        oh = s->kind == SF_CONV ? (hin + pbh + pah - s->k) / s->stride + 1 : (hin - 1) * s->stride + s->k - pbh - pah;
    }
    pl[0] = pbh; pl[1] = pbw; pr[0] = pah; pr[1] = paw;
    sdims[0] = 1; sdims[1] = s->cin; sdims[2] = hin; sdims[3] = win;
    ddims[0] = 1; ddims[1] = s->cout; ddims[2] = oh; ddims[3] = ow;
    wdims[0] = s->cout; wdims[1] = s->cin; wdims[2] = s->k; wdims[3] = s->k;
    if (s->kind == SF_CONV) {       /* stored [kh][kw][cin][cout] */
        wstrides[0] = 1; wstrides[1] = s->cout;
    } else {                        /* stored [kh][kw][cout][cin] */
        wstrides[0] = s->cin; wstrides[1] = 1;
    }
    wstrides[3] = (dnnl_dim_t)s->cin * s->cout;
    wstrides[2] = wstrides[3] * s->k;

    CHECK(dnnl_memory_desc_init_by_tag(&src_md, 4, sdims, dt, tag_of(s->cin, cb_in)));
    CHECK(dnnl_memory_desc_init_by_tag(&dst_md, 4, ddims, dnnl_f32, tag_of(s->cout, cb_out)));
    CHECK(dnnl_memory_desc_init_by_tag(&w_any, 4, wdims, dt, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_strides(&w_user, 4, wdims, dnnl_f32, wstrides));
    CHECK(dnnl_primitive_attr_create(&attr));
    CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (s->kind == SF_CONV) {
        dnnl_convolution_desc_t cd;
        CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference,
                                                 winograd ? dnnl_convolution_winograd : dnnl_convolution_auto,
                                                 &src_md, &w_any, NULL, &dst_md, strides, pl, pr));
        if (dnnl_primitive_desc_create(&pd, &cd, attr, e->eng, NULL) != dnnl_success) {
            pd = NULL;
            if (winograd) {         /* no Winograd on this CPU: another configuration */
                rc = -ENOTSUP;
                snprintf(e->impl[i], sizeof e->impl[i], "no Winograd");
                goto out_fail;
            }
            CHECK(dnnl_primitive_desc_create(&pd, &cd, attr, e->eng, NULL));
        }
    } else {
        dnnl_deconvolution_desc_t dd;
        CHECK(dnnl_deconvolution_forward_desc_init(&dd, dnnl_forward_inference,
                                                   dnnl_deconvolution_direct, &src_md, &w_any,
                                                   NULL, &dst_md, strides, pl, pr));
        CHECK(dnnl_primitive_desc_create(&pd, &dd, attr, e->eng, NULL));
    }
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl)
        impl = "?";
    snprintf(e->impl[i], sizeof e->impl[i], "oneDNN %s%s", impl, bf16 ? " (bf16)" : "");
    if (strstr(impl, "ref")) {
        rc = -ENOTSUP;
        goto out_fail;
    }
    CHECK(dnnl_primitive_create(&l->prim, pd));

    md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    l->wbuf = aligned_alloc(64, (dnnl_memory_desc_get_size(md) + 63) / 64 * 64);
    if (!l->wbuf) {
        rc = -ENOMEM;
        goto out_fail;
    }
    CHECK(dnnl_memory_create(&l->wprim, md, e->eng, l->wbuf));
    CHECK(dnnl_memory_create(&l->wuser, &w_user, e->eng, DNNL_MEMORY_NONE));
    CHECK(dnnl_reorder_primitive_desc_create(&rpd, &w_user, e->eng, md, e->eng, NULL));
    CHECK(dnnl_primitive_create(&l->wreorder, rpd));

    CHECK(dnnl_memory_create(&l->src, &src_md, e->eng, src));
    CHECK(dnnl_memory_create(&l->dst, &dst_md, e->eng, dst));
    md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (md && dnnl_memory_desc_get_size(md) > *scratch_need)
        *scratch_need = dnnl_memory_desc_get_size(md);
    /* the scratch memory object is made once the shared buffer exists */
    CHECK(dnnl_memory_create(&l->scratch, md, e->eng, DNNL_MEMORY_NONE));
    e->flops[i] = 2.0 * s->k * s->k * s->cin * s->cout * (s->kind == SF_CONV ? (double)oh * ow : (double)hin * win);
    *hout = oh;
    *wout = ow;
out_fail:
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

int sf_plan_reorder(struct sf_engine_impl *e, int c, int h, int w, int cb_from, float *from, int cb_to,
                    int to_bf16, float *to, dnnl_primitive_t *r, dnnl_memory_t *mfrom, dnnl_memory_t *mto)
{
    dnnl_memory_desc_t a, b;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_dims_t d = { 1, c, h, w };
    const char *impl = NULL;
    int rc = 0;

    CHECK(dnnl_memory_desc_init_by_tag(&a, 4, d, dnnl_f32, tag_of(c, cb_from)));
    CHECK(dnnl_memory_desc_init_by_tag(&b, 4, d, to_bf16 ? dnnl_bf16 : dnnl_f32, tag_of(c, cb_to)));
    CHECK(dnnl_memory_create(mfrom, &a, e->eng, from));
    CHECK(dnnl_memory_create(mto, &b, e->eng, to));
    CHECK(dnnl_reorder_primitive_desc_create(&rpd, &a, e->eng, &b, e->eng, NULL));
    if (dnnl_primitive_desc_query(rpd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        sf_debug("cpu plan: reorder of %d channels: oneDNN %s", c, impl);
    CHECK(dnnl_primitive_create(r, rpd));
out_fail:
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    return rc;
}

void sf_plan_free_layer(struct sf_engine_impl *e, int i)
{
    struct dnn_layer *l = &e->L[i];

    if (l->prim) dnnl_primitive_destroy(l->prim);
    if (l->wreorder) dnnl_primitive_destroy(l->wreorder);
    if (l->src) dnnl_memory_destroy(l->src);
    if (l->dst) dnnl_memory_destroy(l->dst);
    if (l->wuser) dnnl_memory_destroy(l->wuser);
    if (l->wprim) dnnl_memory_destroy(l->wprim);
    if (l->scratch) dnnl_memory_destroy(l->scratch);
    free(l->wbuf);
    memset(l, 0, sizeof *l);
}

void sf_plan_free_dnnl(struct sf_engine_impl *e)
{
    for (int i = 0; i < SF_LAYERS; i++)
        sf_plan_free_layer(e, i);
    if (e->to_res) dnnl_primitive_destroy(e->to_res);
    if (e->from_res) dnnl_primitive_destroy(e->from_res);
    if (e->mT) dnnl_memory_destroy(e->mT);
    if (e->mX) dnnl_memory_destroy(e->mX);
    if (e->mXr) dnnl_memory_destroy(e->mXr);
    if (e->mTr) dnnl_memory_destroy(e->mTr);
    e->to_res = e->from_res = NULL;
    e->mT = e->mX = e->mXr = e->mTr = NULL;
}

int sf_plan_exec_layer(struct sf_engine_impl *e, int i)
{
    struct dnn_layer *l = &e->L[i];
    dnnl_exec_arg_t args[4] = {
        { DNNL_ARG_SRC, l->src }, { DNNL_ARG_WEIGHTS, l->wprim },
        { DNNL_ARG_DST, l->dst }, { DNNL_ARG_SCRATCHPAD, l->scratch },
    };
    int rc = 0;

    CHECK(dnnl_primitive_execute(l->prim, e->stream, 4, args));
    CHECK(dnnl_stream_wait(e->stream));
out_fail:
    return rc;
}

int sf_plan_exec_reorder(struct sf_engine_impl *e, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to)
{
    dnnl_exec_arg_t args[2] = { { DNNL_ARG_FROM, from }, { DNNL_ARG_TO, to } };
    int rc = 0;

    CHECK(dnnl_primitive_execute(r, e->stream, 2, args));
    CHECK(dnnl_stream_wait(e->stream));
out_fail:
    return rc;
}

int sf_plan_load_weights(struct sf_engine_impl *e, const struct sf_model *m)
{
    int rc = 0;

    for (int i = 1; i < SF_LAYERS - 1; i++) {
        struct dnn_layer *l = &e->L[i];
        if (!l->wreorder)
            continue;               /* one of our 3x3 layers */
        dnnl_exec_arg_t args[2] = { { DNNL_ARG_FROM, l->wuser }, { DNNL_ARG_TO, l->wprim } };
        CHECK(dnnl_memory_set_data_handle(l->wuser, m->weights[i]));
        CHECK(dnnl_primitive_execute(l->wreorder, e->stream, 2, args));
    }
    CHECK(dnnl_stream_wait(e->stream));
out_fail:
    return rc;
}
