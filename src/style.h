/* style.h: pretrained styles in the ml5 / deeplearn.js checkpoint format.
 *
 * A style is a directory holding manifest.json and 48 raw little-endian
 * float32 tensors (../shared/docs/network.md).  Layer L (0..15) owns the
 * tensors 3L (conv weights, no bias), 3L+1 (instance-norm beta) and 3L+2
 * (instance-norm gamma).  Weight layouts as stored:
 *   conv            [kh][kw][cin][cout]
 *   transposed conv [kh][kw][cout][cin]   (layers 13 and 14)
 *
 * An sf_model is read-only once loaded and may be shared between threads. */
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

struct sf_model {
    char name[SF_STYLE_NAME_MAX];
    float *weights[SF_LAYERS];  /* stored layout, see above */
    float *beta[SF_LAYERS];     /* [cout] */
    float *gamma[SF_LAYERS];    /* [cout] */
    float *blob;                /* all 48 tensors, in order, one allocation */
    size_t nfloats;
    uint8_t digest[16];         /* XXH3-128 of blob: identifies the weights */
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

#endif
