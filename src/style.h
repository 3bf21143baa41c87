/* style.h: the style loader: finding, loading and validating styles.
 *
 * A network style is a directory holding manifest.json (ml5 /
 * deeplearn.js checkpoint format) and the 48 tensors that model.h
 * describes.
 *
 * An image file in the styles folder (any format stylefs decodes) is a style
 * named after the file without its extension: an SF_STYLE_IMAGE model,
 * run through Magenta's arbitrary-style networks (arbitrary/).  Loading
 * checks that it decodes and hashes its bytes; its 100-float style vector
 * is made on first use by the pipeline's one produce (pipeline.h
 * sf_style_vector), not here.  Its strength variants "NAME@P" (P a whole
 * percent, 0..100) are made on first use too, owned by the base style,
 * under the base's lock.  Apart from those, an sf_model is read-only once
 * loaded and may be shared between threads.
 *
 * The arbitrary-style networks are read from $STYLEFS_ARBITRARY, else the
 * `arb_dir` the caller passes (the mount's -o arbitrary=DIR, the
 * commands' --arbitrary; NULL: none), else STYLES/arbitrary.
 *
 * This loader includes no cache and no pipeline header. */
#ifndef SF_STYLE_H
#define SF_STYLE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Load and validate the style in directory `dir`, named `name`.
 * On failure writes a message naming the offending file into err.
 * Returns 0, -ENOENT (no such style), -EINVAL (damaged: bad JSON, missing
 * tensor, wrong shape or byte count), -ENOMEM or another -errno. */
int sf_model_load(const char *dir, const char *arb_dir, const char *name, struct sf_model **out, char *err,
                  size_t errlen);
void sf_model_free(struct sf_model *m);

/* Resolve the styles folder: `opt` when given, else $STYLEFS_STYLES,
 * $XDG_DATA_HOME/stylefs/styles (~/.local/share/...), PREFIX/share/stylefs/styles,
 * then the models/ folder beside the stylefs binary.  The first directory
 * that exists wins.  Returns 0, or -ENOENT with the places tried in err. */
int sf_styles_dir(const char *opt, char *out, size_t outlen, char *err, size_t errlen);

/* "network" or "painting"; a painting's file ("" for a network); the
 * XXH3-128 of a painting's bytes as loaded (NULL for a network). */
const char *sf_style_kind_name(const struct sf_model *m);
const char *sf_style_path(const struct sf_model *m);
const uint8_t *sf_style_content(const struct sf_model *m);

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
int sf_models_load(const char *dir, const char *arb_dir, char **names, size_t count, const char *who,
                   struct sf_model ***models, size_t *n);
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
/* Load the painting at path as a style named name (NAME or NAME@P), with
 * the networks found from styles_dir and arb_dir (above).  Returns 0,
 * -ENOENT, -EINVAL (not an image we decode, or the networks are damaged),
 * -ENOMEM. */
int sf_model_load_image(const char *path, const char *name, const char *styles_dir, const char *arb_dir,
                        struct sf_model **out, char *err, size_t errlen);

#endif
