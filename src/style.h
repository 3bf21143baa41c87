/* style.h: the styles: pretrained networks in the ml5 / deeplearn.js
 * checkpoint format, and paintings (image files) run through Magenta's
 * arbitrary-style networks (arbitrary.h).
 *
 * A style is a directory holding manifest.json and 48 raw little-endian
 * float32 tensors (../shared/docs/network.md).  Layer L (0..15) owns the
 * tensors 3L (conv weights, no bias), 3L+1 (instance-norm beta) and 3L+2
 * (instance-norm gamma).  Weight layouts as stored:
 *   conv            [kh][kw][cin][cout]
 *   transposed conv [kh][kw][cout][cin]   (layers 13 and 14)
 *
 * An image file in the styles folder (any format stylefs decodes) is a style
 * named after the file without its extension: an SF_STYLE_IMAGE model.  Its
 * 100-float style vector is computed on first use (not at load), under the
 * style's own lock, and cached (sf_style_vector); its strength variants
 * "NAME@P" (P a whole percent, 0..100) are made on first use too, owned by
 * the base style.  Apart from those, an sf_model is read-only once loaded
 * and may be shared between threads.
 *
 * The arbitrary-style networks are read from $STYLEFS_ARBITRARY, else the
 * folder set by sf_styles_set_arbitrary (the mount's -o arbitrary=DIR),
 * else STYLES/arbitrary. */
#ifndef SF_STYLE_H
#define SF_STYLE_H

#include <limits.h>
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
struct sf_cache;

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

/* Load and validate the style in directory `dir`, named `name`.
 * On failure writes a message naming the offending file into err.
 * Returns 0, -ENOENT (no such style), -EINVAL (damaged: bad JSON, missing
 * tensor, wrong shape or byte count), -ENOMEM or another -errno. */
int sf_model_load(const char *dir, const char *name, struct sf_model **out,
                  char *err, size_t errlen);
void sf_model_free(struct sf_model *m);

/* Resolve the styles folder: `opt` when given, else $STYLEFS_STYLES,
 * $XDG_DATA_HOME/stylefs/styles (~/.local/share/...), PREFIX/share/stylefs/styles,
 * then the models/ folder beside the stylefs binary.  The first directory
 * that exists wins.  Returns 0, or -ENOENT with the places tried in err. */
int sf_styles_dir(const char *opt, char *out, size_t outlen, char *err, size_t errlen);

/* "network" or "painting"; a painting's file. */
const char *sf_style_kind_name(const struct sf_model *m);
const char *sf_style_path(const struct sf_model *m);

/* Names of the subdirectories of dir that hold a manifest.json, sorted.
 * *names is a malloc'd array of malloc'd strings (free with
 * sf_names_free).  Returns 0 or -errno. */
int sf_styles_list(const char *dir, char ***names, size_t *count);
void sf_names_free(char **names, size_t count);

/* Load a set of styles from dir: the named ones (names, count), where an
 * unknown or damaged one fails the load; or, with names NULL, every style
 * there, where a damaged one is skipped and the others load.  Each refusal
 * is reported on stderr as "stylefs: <who>..." naming the file at fault.
 * On success *models (malloc'd; free with sf_models_free) holds *n >= 1
 * models, in the names' order (sorted for all).  Returns 0, -ENOENT (no
 * usable style, or an unknown name), -EINVAL (a named style is damaged),
 * -ENOMEM or another -errno. */
int sf_models_load(const char *dir, char **names, size_t count, const char *who, struct sf_model ***models,
                   size_t *n);
void sf_models_free(struct sf_model **models, size_t n);

/* A style name is a single path component: no '/', not "." or "..". */
int sf_style_name_ok(const char *name);

/* Split "NAME@P" into NAME's length and P (100 when there is no '@').
 * Returns 0, or -ENOENT when P is not a whole percent from 0 to 100
 * written plainly (no sign, no leading zero, no spaces). */
int sf_style_split(const char *name, size_t len, size_t *base_len, int *strength);
/* The strength variant of an image style (base itself for 100); made on
 * first use, owned by base.  NULL: base is not an image style, or out of
 * memory. */
const struct sf_model *sf_model_variant(const struct sf_model *base, int strength);
/* Load the painting at path as a style named name.  Returns 0, -ENOENT,
 * -EINVAL (not an image we decode, or the networks are damaged), -ENOMEM. */
int sf_model_load_image(const char *path, const char *name, const char *styles_dir, struct sf_model **out,
                        char *err, size_t errlen);
/* The painting's style vector (computed once; cached in cache under the
 * painting's bytes and the networks when cache is not NULL).  Returns 0,
 * -EINVAL (the painting no longer decodes), -ENOMEM, -ECANCELED. */
int sf_style_vector(const struct sf_model *m, struct sf_cache *cache, float vec[100], const void *cancel,
                    char *why, size_t whylen);
/* The folder of the arbitrary-style networks (see above); NULL: the default. */
void sf_styles_set_arbitrary(const char *dir);

#endif
