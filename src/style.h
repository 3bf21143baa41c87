/* style.h: the style loader: the styles search path, loading and
 * validating styles, their variants, and the live set a mount serves.
 *
 * A network style is a folder holding manifest.json (ml5 / deeplearn.js
 * checkpoint format) and the 48 tensors that model.h describes.  Its
 * manifest may carry stylefs's own settings under the key "stylefs":
 * {"pad": N} (model.h).
 *
 * An image file in a styles folder (any format stylefs decodes) is a style
 * named after the file without its extension: an SF_STYLE_IMAGE model,
 * run through Magenta's arbitrary-style networks (arbitrary/).  Loading
 * checks that it decodes and hashes its bytes; its 100-float style vector
 * is made on first use by the pipeline's one produce (pipeline.h
 * sf_style_vector), not here.
 *
 * The search path: the system folder (PREFIX/share/stylefs/styles), then
 * the user's ($XDG_DATA_HOME/stylefs/styles, else
 * ~/.local/share/stylefs/styles), then $STYLEFS_STYLES, then the caller's
 * list (-o styles=DIR[:DIR...], --styles): the defaults are skipped when
 * missing, a folder named by the user must exist.  A later folder's style
 * shadows an earlier one's of the same name (one line says so); within a
 * folder, a network's folder hides a painting of its name.  With none of
 * them, the models/ folder beside the stylefs binary (a build tree).
 *
 * Variants: "NAME@P" (P a whole percent, 0..100) and "NAME+colors", or
 * both as "NAME@P+colors", of any style.  A painting's strength mixes its
 * style vector with the photo's own; a network's blends its output with
 * the photo in linear light; +colors keeps the photo's colours (the
 * pipeline applies both, pipeline.c finish()).  Variants are made on first
 * use and owned by their base.
 *
 * The painting networks are read from $STYLEFS_ARBITRARY, else the
 * `arb_dir` the caller passes (the mount's -o arbitrary=DIR, the
 * commands' --arbitrary; NULL: none), else the last folder of the search
 * path that has an arbitrary/ subfolder.
 *
 * References: every loaded model holds references on its base; the
 * loaders return one, sf_model_ref takes another, sf_model_free drops one
 * (of the base, given the base or any of its variants) and the last frees
 * the base and its variants.
 *
 * This loader includes no cache and no pipeline header. */
#ifndef SF_STYLE_H
#define SF_STYLE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

#define SF_STYLES_DIRS_MAX 16
#define SF_PAD_MAX 256          /* the most extra padding a manifest may ask */

/* The styles folders, in order: a later one shadows an earlier one. */
struct sf_styles_path {
    int n;
    char dir[SF_STYLES_DIRS_MAX][PATH_MAX];
};

/* Resolve the search path (above) with the caller's colon-separated list
 * `opt` (NULL: none).  Returns 0, or -ENOENT with why in err (a folder the
 * user named is missing, or no folder at all: the places tried and the
 * fix). */
int sf_styles_path(const char *opt, struct sf_styles_path *sp, char *err, size_t errlen);
/* A path of the one folder dir (tests, tools). */
void sf_styles_path_one(struct sf_styles_path *sp, const char *dir);

/* A style name's variant suffix. */
struct sf_style_suffix {
    size_t base_len;            /* the base style's name: the first base_len bytes */
    int strength;               /* percent, 100 without "@P" */
    int colors;                 /* "+colors" */
};
/* Split NAME[@P][+colors] (len bytes).  Returns 0, or -ENOENT with why:
 * P not a whole percent from 0 to 100 written plainly (no sign, no
 * leading zero, no spaces), anything after '+' but "colors", or the
 * parts out of order. */
int sf_style_split(const char *name, size_t len, struct sf_style_suffix *sx, char *why, size_t whylen);

/* Load the style `name` (with any variant suffix) along the path: the last
 * folder that has it wins.  On failure writes a message naming the
 * offending file into err.  Returns 0 (*out holds a reference), -ENOENT
 * (no such style, or a malformed suffix), -EINVAL (damaged: bad JSON,
 * missing tensor, wrong shape or byte count, an undecodable painting, no
 * painting networks), -ENOMEM or another -errno. */
int sf_model_load(const struct sf_styles_path *sp, const char *arb_dir, const char *name, struct sf_model **out,
                  char *err, size_t errlen);
/* Load the painting at path as a style named name (NAME[@P][+colors]),
 * with the networks found from sp and arb_dir.  Returns 0, -ENOENT,
 * -EINVAL (not an image we decode, or no networks), -ENOMEM. */
int sf_model_load_image(const char *path, const char *name, const struct sf_styles_path *sp, const char *arb_dir,
                        struct sf_model **out, char *err, size_t errlen);
/* Take a reference (on m's base); returns m. */
const struct sf_model *sf_model_ref(const struct sf_model *m);
/* Drop a reference (on m's base; NULL: nothing). */
void sf_model_free(const struct sf_model *m);

/* The variant of base (a loaded base, not a variant) at strength and
 * colors (base itself for 100 and no colours); made on first use, owned by
 * base: it holds no reference of its own.  NULL: out of memory. */
const struct sf_model *sf_model_variant(const struct sf_model *base, int strength, int colors);

/* "network" or "painting"; where it was loaded from (a network's folder,
 * a painting's file); the XXH3-128 of a painting's bytes as loaded (NULL
 * for a network). */
const char *sf_style_kind_name(const struct sf_model *m);
const char *sf_style_path(const struct sf_model *m);
const uint8_t *sf_style_content(const struct sf_model *m);

/* Names of the subfolders of dir that hold a manifest.json, sorted.
 * *names is a malloc'd array of malloc'd strings (free with
 * sf_names_free).  Returns 0 or -errno. */
int sf_styles_list(const char *dir, char ***names, size_t *count);
void sf_names_free(char **names, size_t count);

/* Load a set of styles along the path: the named ones (names, count, each
 * with any variant suffix), where an unknown or damaged one fails the
 * load; or, with names NULL, every style of every folder, where a damaged
 * one is skipped and the others load.  Each refusal and each shadowing is
 * reported on stderr as "stylefs: <who>..." naming the files.  On success
 * *models (malloc'd; free with sf_models_free) holds *n >= 1 models, in
 * the names' order (sorted for all).  Returns 0, -ENOENT (no usable style,
 * or an unknown name), -EINVAL (a named style is damaged), -ENOMEM or
 * another -errno. */
int sf_models_load(const struct sf_styles_path *sp, const char *arb_dir, char **names, size_t count,
                   const char *who, struct sf_model ***models, size_t *n);
void sf_models_free(struct sf_model **models, size_t n);

/* A style's name is a single path component: no '/', not "." or "..". */
int sf_style_name_ok(const char *name);

/* ---- the live set: every style of the path, for a mount ----------------
 * Loaded as sf_models_load (all); then sf_style_set_changed, called by one
 * thread (the mount's watcher) when a file of a styles folder was written,
 * renamed or removed, loads that style again.  Lookups run on any thread;
 * each returns a reference the caller drops with sf_model_free. */
struct sf_style_set;
enum { SF_STYLE_ADDED = 1, SF_STYLE_CHANGED, SF_STYLE_REMOVED };
#define SF_STYLE_REPLACED SF_STYLE_CHANGED

/* Returns 0, or sf_models_load's codes. */
int sf_style_set_open(const struct sf_styles_path *sp, const char *arb_dir, const char *who,
                      struct sf_style_set **out);
void sf_style_set_free(struct sf_style_set *s);
const struct sf_styles_path *sf_style_set_path(const struct sf_style_set *s);
/* The painting networks' idle time (arbitrary.h sf_arb_set_idle), now and
 * for networks opened later. */
void sf_style_set_idle(struct sf_style_set *s, unsigned secs);
size_t sf_style_set_count(struct sf_style_set *s);
/* The i-th style by name.  0, or -ENOENT past the end. */
int sf_style_set_nth(struct sf_style_set *s, size_t i, const struct sf_model **out);
/* The style NAME[@P][+colors] (len bytes).  0, -ENOENT with why (no such
 * style, or a malformed suffix), -ENOMEM. */
int sf_style_set_get(struct sf_style_set *s, const char *name, size_t len, const struct sf_model **out, char *why,
                     size_t whylen);
/* The entry `file` of a styles folder was written, renamed or removed:
 * load the style it names again (name gets its name) and swap it in.
 * Returns SF_STYLE_ADDED, SF_STYLE_CHANGED or SF_STYLE_REMOVED with a line
 * for the log in msg; 0: nothing changed (msg may still say why a file
 * was refused); -ENOMEM. */
int sf_style_set_changed(struct sf_style_set *s, const char *file, char *name, size_t namelen, char *msg,
                         size_t msglen);

#endif
