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
 * painting live behind `arb` and `img` (style.c, arbitrary/).  A model is
 * read-only once loaded and may be shared between threads. */
#ifndef SF_MODEL_H
#define SF_MODEL_H

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

struct sf_model {
    char name[SF_STYLE_NAME_MAX];
    enum sf_style_kind kind;
    float *weights[SF_LAYERS];  /* stored layout, see above */
    float *beta[SF_LAYERS];     /* [cout] */
    float *gamma[SF_LAYERS];    /* [cout] */
    float *blob;                /* all 48 tensors, in order, one allocation */
    size_t nfloats;
    uint8_t digest[16];         /* XXH3-128 of blob, or for an image style of (the painting's
                                 * bytes, the networks, the strength): in every key */
    /* SF_STYLE_IMAGE only */
    struct sf_arb *arb;         /* the networks (shared by the styles of one load) */
    struct sf_image_style *img; /* the painting, its vector and variants (the base's) */
    int strength;               /* percent of the painting's vector: 100 for the base */
    const struct sf_model *base;    /* a variant's base style, or NULL */
};

#endif
