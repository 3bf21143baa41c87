/* model.h: the ground floor: the style network's fixed shape and the
 * loaded style (struct sf_model) that engines run and keys name.
 *
 * It includes nothing of the house, so that engines (cpu/, the CUDA
 * module in kernels/) read a model without the style loader (style.h),
 * the cache or the pipeline.
 *
 * A network style holds 48 raw little-endian float32 tensors
 * (../shared/docs/network.md).  Layer L (0..15) owns the tensors 3L (conv
 * weights, no bias), 3L+1 (instance-norm beta) and 3L+2 (instance-norm
 * gamma).  Weight layouts as stored:
 *   conv            [kh][kw][cin][cout]
 *   transposed conv [kh][kw][cout][cin]   (layers 13 and 14)
 * A painting style (SF_STYLE_IMAGE) holds no weights: its networks and
 * painting live behind `arb` and `img` (style.c, arbitrary/).
 *
 * A style's variants ("NAME@P+colors", style.h sf_style_split) are models
 * too, made on first use and owned by their base; an engine runs a
 * network variant's base (the variant's strength and colours are applied
 * to its output by the pipeline).  A model is read-only once loaded
 * (apart from `refs` and the base's variant table, under its own lock)
 * and may be shared between threads: each holder owns a reference on the
 * base (style.h sf_model_ref, sf_model_free). */
#ifndef SF_MODEL_H
#define SF_MODEL_H

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SF_LAYERS 16
#define SF_STYLE_NAME_MAX 128

enum sf_layer_kind { SF_CONV, SF_DECONV };

struct sf_layer_spec {
    enum sf_layer_kind kind;
    int k;          /* kernel size (square) */
    int stride;
    int cin, cout;
    int relu;       /* ReLU after instance norm */
    int residual;   /* add the residual block's input after the norm */
};

/* The network's fixed shape, indexed by layer. */
extern const struct sf_layer_spec sf_net[SF_LAYERS];

enum sf_style_kind { SF_STYLE_NET = 0, SF_STYLE_IMAGE };

struct sf_arb;
struct sf_image_style;
struct sf_variants;

struct sf_model {
    char name[SF_STYLE_NAME_MAX];
    enum sf_style_kind kind;
    float *weights[SF_LAYERS];  /* stored layout, see above */
    float *beta[SF_LAYERS];     /* [cout] */
    float *gamma[SF_LAYERS];    /* [cout] */
    float *blob;                /* all 48 tensors, in order, one allocation */
    size_t nfloats;
    uint8_t digest[16];         /* in every key: a network's is the XXH3-128 of blob (and of
                                 * its edge padding, when set); an image style's, of the
                                 * painting's bytes and the networks; a variant's adds its
                                 * strength and colours (style.c) */
    char path[PATH_MAX];        /* where it was loaded from: a network's folder, a painting's file */
    int pad;                    /* networks: extra mirror padding in pixels, cropped after
                                 * (manifest "stylefs": {"pad": N}); 0 = none */
    /* SF_STYLE_IMAGE only */
    struct sf_arb *arb;         /* the networks (shared by the styles of one load) */
    struct sf_image_style *img; /* the painting's identity (the base's) */
    /* every style */
    int strength;               /* percent: 100 for the base (a painting's: of its vector; a
                                 * network's: of its output, blended with the photo) */
    int colors;                 /* keep the photo's colours (+colors): luminance-only transfer */
    const struct sf_model *base;    /* a variant's base style, or NULL */
    struct sf_variants *var;    /* a base's variants, made on first use (style.c) */
    atomic_int refs;            /* a base's references (sf_model_ref); unused in a variant */
};

#endif
