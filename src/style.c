/* style.c: finding, loading and validating styles: ml5 checkpoints, and
 * paintings for the arbitrary-style networks, along the styles search path;
 * their variants ("NAME@P+colors"); and the live set a mount serves (see
 * style.h).  It loads and checks only: a painting's style vector is
 * computed and cached by the pipeline's one produce (pipeline.h
 * sf_style_vector).
 *
 * DESIGN: a model's references count on its base (refs, atomic); the last
 * sf_model_free destroys the base with its variants.  A base's variant
 * table is guarded by its own lock (var->lock), taken alone.  A style set
 * (struct sf_style_set) guards its sorted table with `lock`, held only to
 * look up, insert or swap a pointer, never while loading; its loader (the
 * painting networks, opened on first need) is used by one thread at a time:
 * the load, then the mount's styles watcher. */
#include "style.h"
#include "arbitrary.h"
#include "image.h"
#include "log.h"
#include "util.h"

#include <pthread.h>

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#ifndef STYLEFS_PREFIX
#define STYLEFS_PREFIX "/usr/local"
#endif

/* Expected shape of tensor t (0..47). */
static int tensor_shape(int t, int dims[4])
{
    const struct sf_layer_spec *l = &sf_net[t / 3];

    if (t % 3) {
        dims[0] = l->cout;
        return 1;
    }
    dims[0] = l->k;
    dims[1] = l->k;
    dims[2] = l->kind == SF_DECONV ? l->cout : l->cin;
    dims[3] = l->kind == SF_DECONV ? l->cin : l->cout;
    return 4;
}

int sf_style_name_ok(const char *name)
{
    return name && *name && strlen(name) < SF_STYLE_NAME_MAX && !strchr(name, '/') &&
           strcmp(name, ".") && strcmp(name, "..");
}

/* A painting's identity, shared by its variants. */
struct sf_image_style {
    uint8_t content[16];            /* XXH3-128 of the painting's bytes at load */
};

/* A base style's variants, made on first use: [strength][colors]. */
struct sf_variants {
    pthread_mutex_t lock;           /* guards v; taken alone */
    struct sf_model *v[101][2];
};

const char *sf_style_kind_name(const struct sf_model *m)
{
    return m->kind == SF_STYLE_IMAGE ? "painting" : "network";
}

const char *sf_style_path(const struct sf_model *m)
{
    return m->path;
}

const uint8_t *sf_style_content(const struct sf_model *m)
{
    return m->kind == SF_STYLE_IMAGE ? m->img->content : NULL;
}

static void arb_put(struct sf_arb *a)
{
    if (a && atomic_fetch_sub(&a->refs, 1) == 1)
        sf_arb_close(a);
}

/* A new base model named name, holding one reference.  NULL: no memory. */
static struct sf_model *model_new(const char *name)
{
    struct sf_model *m = calloc(1, sizeof *m);

    if (!m)
        return NULL;
    if (!(m->var = calloc(1, sizeof *m->var))) {
        free(m);
        return NULL;
    }
    pthread_mutex_init(&m->var->lock, NULL);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->strength = 100;
    atomic_init(&m->refs, 1);
    return m;
}

static void model_destroy(struct sf_model *m)
{
    for (int s = 0; s <= 100; s++)
        for (int c = 0; c < 2; c++)
            free(m->var->v[s][c]);
    pthread_mutex_destroy(&m->var->lock);
    free(m->var);
    free(m->img);
    arb_put(m->arb);
    free(m->blob);
    free(m);
}

const struct sf_model *sf_model_ref(const struct sf_model *m)
{
    struct sf_model *b = (struct sf_model *)(m->base ? m->base : m);

    atomic_fetch_add(&b->refs, 1);
    return m;
}

void sf_model_free(const struct sf_model *m)
{
    struct sf_model *b;

    if (!m)
        return;
    b = (struct sf_model *)(m->base ? m->base : m);
    if (atomic_fetch_sub(&b->refs, 1) == 1)
        model_destroy(b);
}

/* A style's digest (see model.h): a painting's from its bytes, the
 * networks, the strength and the colours; a network variant's from its
 * base's digest, strength and colours.  (A painting at colors 0 keeps the
 * digest it had before colours existed, so its cache stays valid.) */
static void set_digest(struct sf_model *m)
{
    uint8_t buf[16 + 16 + 4 + 24];

    memset(buf, 0, sizeof buf);
    if (m->kind == SF_STYLE_IMAGE) {
        memcpy(buf, "stylefs painting style v1\0", 24);
        memcpy(buf + 24, m->img->content, 16);
        memcpy(buf + 40, m->arb->digest, 16);
    } else {
        memcpy(buf, "stylefs network variant", 24);
        memcpy(buf + 24, m->base->digest, 16);
    }
    buf[56] = (uint8_t)m->strength;
    buf[57] = (uint8_t)m->colors;
    XXH128_canonicalFromHash((XXH128_canonical_t *)m->digest, XXH3_128bits(buf, sizeof buf));
}

int sf_style_split(const char *name, size_t len, struct sf_style_suffix *sx, char *why, size_t whylen)
{
    const char *at = memchr(name, '@', len), *plus = memchr(name, '+', len);
    const char *end = name + len;
    int v = 0;

    sx->base_len = len;
    sx->strength = 100;
    sx->colors = 0;
    if (plus) {
        if (at > plus) {
            snprintf(why, whylen, "'%.*s': write the strength before +colors (NAME@P+colors)", (int)len, name);
            return -ENOENT;
        }
        if ((size_t)(end - plus) != 7 || memcmp(plus, "+colors", 7)) {
            snprintf(why, whylen, "'%.*s': the only option after '+' is +colors", (int)len, name);
            return -ENOENT;
        }
        sx->colors = 1;
        end = plus;
    }
    sx->base_len = (size_t)((at ? at : end) - name);
    if (!sx->base_len) {
        snprintf(why, whylen, "'%.*s': no style name before the suffix", (int)len, name);
        return -ENOENT;
    }
    if (at) {
        size_t n = (size_t)(end - at - 1);
        int ok = n >= 1 && n <= 3 && !(n > 1 && at[1] == '0');
        for (size_t i = 1; ok && i <= n; i++) {
            ok = at[i] >= '0' && at[i] <= '9';
            v = v * 10 + (at[i] - '0');
        }
        if (!ok || v > 100) {
            snprintf(why, whylen, "'%.*s': a strength is a whole percent from 0 to 100 written plainly (NAME@50)",
                     (int)len, name);
            return -ENOENT;
        }
        sx->strength = v;
    }
    return 0;
}

const struct sf_model *sf_model_variant(const struct sf_model *base, int strength, int colors)
{
    struct sf_model *v;

    if (!base || base->base || strength < 0 || strength > 100)
        return NULL;
    colors = !!colors;
    if (strength == 100 && !colors)
        return base;
    pthread_mutex_lock(&base->var->lock);
    if (!(v = base->var->v[strength][colors]) && (v = malloc(sizeof *v))) {
        int n;
        memcpy(v, base, sizeof *v);
        n = snprintf(v->name, sizeof v->name, "%.*s", SF_STYLE_NAME_MAX - 13, base->name);
        if (strength < 100)
            n += snprintf(v->name + n, sizeof v->name - (size_t)n, "@%d", strength);
        if (colors)
            snprintf(v->name + n, sizeof v->name - (size_t)n, "+colors");
        v->strength = strength;
        v->colors = colors;
        v->base = base;
        v->var = NULL;
        atomic_init(&v->refs, 0);
        set_digest(v);
        base->var->v[strength][colors] = v;
    }
    pthread_mutex_unlock(&base->var->lock);
    return v;
}

/* ---- the search path ------------------------------------------------------- */

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

void sf_styles_path_one(struct sf_styles_path *sp, const char *dir)
{
    sp->n = 1;
    snprintf(sp->dir[0], sizeof sp->dir[0], "%s", dir);
}

/* Append each folder of the colon-separated list to sp; a missing one is
 * an error when `must` is set, else skipped.  0 or -ENOENT with err. */
static int path_add(struct sf_styles_path *sp, const char *list, int must, char *err, size_t errlen)
{
    const char *p = list;

    while (p && *p) {
        const char *c = strchr(p, ':');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        char given[PATH_MAX], dir[PATH_MAX];
        if (len && len < sizeof given) {
            /* absolute, links resolved: a mount's watcher runs after it left
             * the working directory, and messages name real folders */
            snprintf(given, sizeof given, "%.*s", (int)len, p);
            if (!realpath(given, dir))
                snprintf(dir, sizeof dir, "%s", given);
            if (!is_dir(dir)) {
                if (must) {
                    snprintf(err, errlen, "styles folder %s: %s", given, strerror(errno ? errno : ENOTDIR));
                    return -ENOENT;
                }
            } else if (sp->n < SF_STYLES_DIRS_MAX) {
                int dup = 0;
                for (int i = 0; i < sp->n; i++)
                    dup |= !strcmp(sp->dir[i], dir);
                if (!dup)
                    snprintf(sp->dir[sp->n++], PATH_MAX, "%s", dir);
            } else {
                snprintf(err, errlen, "more than %d styles folders", SF_STYLES_DIRS_MAX);
                return -ENOENT;
            }
        }
        p = c ? c + 1 : NULL;
    }
    return 0;
}

int sf_styles_path(const char *opt, struct sf_styles_path *sp, char *err, size_t errlen)
{
    char sys[PATH_MAX], user[PATH_MAX] = "", exe[PATH_MAX];
    const char *e;
    ssize_t r;
    int rc;

    sp->n = 0;
    snprintf(sys, sizeof sys, "%s/share/stylefs/styles", STYLEFS_PREFIX);
    if ((e = getenv("XDG_DATA_HOME")) && *e)
        snprintf(user, sizeof user, "%s/stylefs/styles", e);
    else if ((e = getenv("HOME")) && *e)
        snprintf(user, sizeof user, "%s/.local/share/stylefs/styles", e);
    if ((rc = path_add(sp, sys, 0, err, errlen)) || (rc = path_add(sp, user, 0, err, errlen)) ||
        (rc = path_add(sp, getenv("STYLEFS_STYLES"), 1, err, errlen)) || (rc = path_add(sp, opt, 1, err, errlen)))
        return rc;
    if (sp->n)
        return 0;
    /* a build tree: the models/ folder beside the stylefs binary */
    if ((r = readlink("/proc/self/exe", exe, sizeof exe - 8)) > 0) {
        char *slash;
        exe[r] = '\0';
        if ((slash = strrchr(exe, '/')))
            snprintf(slash, sizeof exe - (size_t)(slash - exe), "/models");
        if ((rc = path_add(sp, exe, 0, err, errlen)))
            return rc;
    }
    if (sp->n)
        return 0;
    snprintf(err, errlen, "no styles folder found (tried %s, %s); run 'make models' or give --styles DIR", sys,
             user[0] ? user : "$XDG_DATA_HOME/stylefs/styles");
    return -ENOENT;
}

/* ---- loading ------------------------------------------------------------------ */

/* What loads styles along a path: the painting networks, opened on the
 * first painting and shared by every painting it loads. */
struct loader {
    const struct sf_styles_path *sp;
    const char *arb_dir;            /* the caller's --arbitrary / -o arbitrary=, or NULL */
    struct sf_arb *arb;             /* a reference, or NULL: not opened yet */
    int arb_failed;                 /* opening failed: arb_why says why */
    char arb_why[700];
};

/* The painting networks for L (opened on first call): $STYLEFS_ARBITRARY,
 * else L->arb_dir, else the last folder of the path holding arbitrary/.
 * 0 or -errno with why. */
static int loader_arb(struct loader *L, char *why, size_t whylen)
{
    char dir[PATH_MAX];
    const char *e = getenv("STYLEFS_ARBITRARY");
    int rc, i;

    if (L->arb)
        return 0;
    if (L->arb_failed) {
        snprintf(why, whylen, "%s", L->arb_why);
        return -ENOENT;
    }
    if (e && *e)
        snprintf(dir, sizeof dir, "%s", e);
    else if (L->arb_dir)
        snprintf(dir, sizeof dir, "%s", L->arb_dir);
    else {
        for (i = L->sp->n - 1; i >= 0; i--)
            if (snprintf(dir, sizeof dir, "%s/arbitrary", L->sp->dir[i]) < (int)sizeof dir && is_dir(dir))
                break;
        if (i < 0) {
            size_t used = (size_t)snprintf(L->arb_why, sizeof L->arb_why,
                                           "a painting needs the arbitrary-style networks, and none are installed "
                                           "(looked in");
            for (i = 0; i < L->sp->n && used < sizeof L->arb_why; i++)
                used += (size_t)snprintf(L->arb_why + used, sizeof L->arb_why - used, "%s %s/arbitrary",
                                         i ? "," : "", L->sp->dir[i]);
            if (used < sizeof L->arb_why)
                snprintf(L->arb_why + used, sizeof L->arb_why - used,
                         "): run 'make models', or give --arbitrary DIR (-o arbitrary=DIR)");
            L->arb_failed = 1;
            snprintf(why, whylen, "%s", L->arb_why);
            return -ENOENT;
        }
    }
    if ((rc = sf_arb_open(dir, &L->arb, L->arb_why, sizeof L->arb_why))) {
        L->arb_failed = 1;
        snprintf(why, whylen, "%s", L->arb_why);
    }
    return rc;
}

static void loader_done(struct loader *L)
{
    arb_put(L->arb);
    L->arb = NULL;
}

/* Load the painting at path as the style name. */
static int load_image(struct loader *L, const char *path, const char *name, struct sf_model **out, char *err,
                      size_t errlen)
{
    struct sf_model *m;
    struct sf_image img;
    uint8_t *d;
    size_t len;
    char why[256];
    int rc;

    *out = NULL;
    if ((rc = sf_read_file(path, SF_MAX_SOURCE_BYTES, &d, &len))) {
        snprintf(err, errlen, "%s: %s", path, rc == -EINVAL ? "not a regular file" : strerror(-rc));
        return rc == -ENOENT ? -ENOENT : rc == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    if ((rc = sf_image_decode(d, len, SF_DEFAULT_MAX_PIXELS, &img, why, sizeof why))) {
        snprintf(err, errlen, "%s: not an image stylefs can read (%s)", path, why);
        free(d);
        return rc == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    sf_image_free(&img);
    if ((rc = loader_arb(L, err, errlen))) {
        free(d);
        return rc == -ENOMEM ? rc : -EINVAL;
    }
    if (!(m = model_new(name)) || !(m->img = calloc(1, sizeof *m->img))) {
        sf_model_free(m);
        free(d);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    m->kind = SF_STYLE_IMAGE;
    m->arb = L->arb;
    atomic_fetch_add(&L->arb->refs, 1);
    snprintf(m->path, sizeof m->path, "%s", path);
    XXH128_canonicalFromHash((XXH128_canonical_t *)m->img->content, XXH3_128bits(d, len));
    free(d);
    set_digest(m);
    *out = m;
    return 0;
}

/* The painting in dir whose name without its extension is stem (an image
 * file stylefs reads, by the sources' naming rules; the first by name when
 * there are several): 0 with its path, or -ENOENT. */
static int find_painting(const char *dir, const char *stem, char *path, size_t pathlen)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t stemlen = strlen(stem);
    char best[256] = "";

    if (!d)
        return -ENOENT;
    while ((de = readdir(d))) {
        const char *dot = strrchr(de->d_name, '.');
        if (de->d_name[0] == '.' || !dot || (size_t)(dot - de->d_name) != stemlen ||
            memcmp(de->d_name, stem, stemlen) || sf_served_name(de->d_name, NULL, 0, NULL) != 1 ||
            snprintf(path, pathlen, "%s/%s", dir, de->d_name) >= (int)pathlen || is_dir(path))
            continue;
        if (!best[0] || strcmp(de->d_name, best) < 0)
            snprintf(best, sizeof best, "%s", de->d_name);
    }
    closedir(d);
    if (!best[0])
        return -ENOENT;
    snprintf(path, pathlen, "%s/%s", dir, best);
    return 0;
}

static int load_network(const char *dir, const char *name, struct sf_model **out, char *err, size_t errlen);

/* The style `name` (no suffix) in dir: the network folder dir/name, else
 * the painting dir/name.<image>.  Returns 0, -ENOENT (neither), or the
 * loaders' codes. */
static int load_in_dir(struct loader *L, const char *dir, const char *name, struct sf_model **out, char *err,
                       size_t errlen)
{
    char path[PATH_MAX];

    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        snprintf(err, errlen, "%s/%s: path too long", dir, name);
        return -ENAMETOOLONG;
    }
    if (is_dir(path))       /* a network's folder hides a painting of its name */
        return load_network(dir, name, out, err, errlen);
    if (find_painting(dir, name, path, sizeof path)) {
        snprintf(err, errlen, "%s: no such style", name);
        return -ENOENT;
    }
    if (strchr(name, '@') || strchr(name, '+')) {
        snprintf(err, errlen, "%s: a style's name has no '@' or '+' (they start a variant: NAME@50+colors)", path);
        return -EINVAL;
    }
    return load_image(L, path, name, out, err, errlen);
}

/* The style `name` (no suffix) along the path: the last folder that has it
 * wins.  Returns 0, -ENOENT (no folder has it), or the loaders' codes. */
static int load_by_name(struct loader *L, const char *name, struct sf_model **out, char *err, size_t errlen)
{
    int rc = -ENOENT;

    for (int i = L->sp->n - 1; i >= 0 && rc == -ENOENT; i--)
        rc = load_in_dir(L, L->sp->dir[i], name, out, err, errlen);
    if (rc == -ENOENT)
        snprintf(err, errlen, "%s: no such style", name);
    return rc;
}

/* The variant sx names of the base m just loaded, into *out: the caller's
 * reference on the base, through the variant.  0, or -ENOMEM (m freed). */
static int as_variant(struct sf_model *m, const struct sf_style_suffix *sx, struct sf_model **out, char *err,
                      size_t errlen)
{
    if (!(*out = (struct sf_model *)sf_model_variant(m, sx->strength, sx->colors))) {
        sf_model_free(m);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

int sf_model_load(const struct sf_styles_path *sp, const char *arb_dir, const char *name, struct sf_model **out,
                  char *err, size_t errlen)
{
    struct loader L = { .sp = sp, .arb_dir = arb_dir };
    struct sf_style_suffix sx;
    char base[SF_STYLE_NAME_MAX];
    struct sf_model *m;
    int rc;

    *out = NULL;
    if (!sf_style_name_ok(name)) {
        snprintf(err, errlen, "%s: not a style name", name ? name : "(null)");
        return -ENOENT;
    }
    if (sf_style_split(name, strlen(name), &sx, err, errlen))
        return -ENOENT;
    snprintf(base, sizeof base, "%.*s", (int)sx.base_len, name);
    rc = load_by_name(&L, base, &m, err, errlen);
    loader_done(&L);
    return rc ? rc : as_variant(m, &sx, out, err, errlen);
}

int sf_model_load_image(const char *path, const char *name, const struct sf_styles_path *sp, const char *arb_dir,
                        struct sf_model **out, char *err, size_t errlen)
{
    struct loader L = { .sp = sp, .arb_dir = arb_dir };
    struct sf_style_suffix sx;
    char base[SF_STYLE_NAME_MAX];
    struct sf_model *m;
    int rc;

    *out = NULL;
    if (sf_style_split(name, strlen(name), &sx, err, errlen))
        return -ENOENT;
    snprintf(base, sizeof base, "%.*s", (int)sx.base_len, name);
    rc = load_image(&L, path, base, &m, err, errlen);
    loader_done(&L);
    return rc ? rc : as_variant(m, &sx, out, err, errlen);
}

static int check_entry(const cJSON *entry, const char *style, const char *var, int t,
                       char *file, size_t filelen, char *err, size_t errlen)
{
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(entry, "filename");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    int want[4], nd = tensor_shape(t, want), i;

    if (!cJSON_IsString(fn) || !sf_style_name_ok(fn->valuestring)) {
        snprintf(err, errlen, "%s/manifest.json: entry %s has no valid \"filename\"", style, var);
        return -EINVAL;
    }
    snprintf(file, filelen, "%s", fn->valuestring);
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) != nd)
        goto bad_shape;
    for (i = 0; i < nd; i++) {
        const cJSON *d = cJSON_GetArrayItem(shape, i);
        if (!cJSON_IsNumber(d) || d->valuedouble != want[i])
            goto bad_shape;
    }
    return 0;
bad_shape:
    if (nd == 1)
        snprintf(err, errlen, "%s/manifest.json: %s must have shape [%d]", style, var, want[0]);
    else
        snprintf(err, errlen, "%s/manifest.json: %s must have shape [%d,%d,%d,%d]", style, var,
                 want[0], want[1], want[2], want[3]);
    return -EINVAL;
}

/* stylefs's own settings in a network's manifest.json, under the key
 * "stylefs" (ml5 ignores it): {"pad": N}, N from 0 to SF_PAD_MAX, the
 * extra mirror padding (model.h).  0 or -EINVAL with err. */
static int manifest_settings(const cJSON *root, struct sf_model *m, char *err, size_t errlen)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "stylefs"), *pad;

    if (!o)
        return 0;
    pad = cJSON_GetObjectItemCaseSensitive(o, "pad");
    if (!cJSON_IsObject(o) || (pad && (!cJSON_IsNumber(pad) || pad->valuedouble != (int)pad->valuedouble ||
                                       pad->valueint < 0 || pad->valueint > SF_PAD_MAX))) {
        snprintf(err, errlen, "%s/manifest.json: \"stylefs\" must be an object like {\"pad\": 32} "
                 "(pad: whole pixels, 0 to %d)", m->path, SF_PAD_MAX);
        return -EINVAL;
    }
    m->pad = pad ? pad->valueint : 0;
    return 0;
}

/* The network style in folder dir/name (manifest.json and its tensors). */
static int load_network(const char *dir, const char *name, struct sf_model **out, char *err, size_t errlen)
{
    char path[PATH_MAX], file[256];
    uint8_t *json = NULL;
    size_t jlen, offs[48], total = 0;
    cJSON *root = NULL;
    struct sf_model *m = NULL;
    int rc, t;

    if (snprintf(path, sizeof path, "%s/%s/manifest.json", dir, name) >= (int)sizeof path) {
        snprintf(err, errlen, "%s/%s: path too long", dir, name);
        return -ENAMETOOLONG;
    }
    rc = sf_read_file(path, 1 << 20, &json, &jlen);
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, rc == -ENOENT ? "no such style" : strerror(-rc));
        return rc == -ENOENT ? -ENOENT : rc;
    }
    root = cJSON_ParseWithLength((const char *)json, jlen);
    if (!cJSON_IsObject(root)) {
        snprintf(err, errlen, "%s: not valid JSON", path);
        rc = -EINVAL;
        goto out_free_json;
    }
    for (t = 0; t < 48; t++) {
        int dims[4], nd = tensor_shape(t, dims), i;
        size_t n = 1;
        for (i = 0; i < nd; i++)
            n *= (size_t)dims[i];
        offs[t] = total;
        total += n;
    }
    m = model_new(name);
    if (!m || !(m->blob = malloc(total * sizeof(float)))) {
        snprintf(err, errlen, "%s/%s: out of memory", dir, name);
        rc = -ENOMEM;
        goto out_free_model;
    }
    for (t = 0; t < 48; t++) {
        char var[32];
        const cJSON *entry;
        size_t want = ((t < 47 ? offs[t + 1] : total) - offs[t]) * sizeof(float);
        uint8_t *data;
        size_t len;

        snprintf(var, sizeof var, t ? "Variable_%d" : "Variable", t);
        entry = cJSON_GetObjectItemCaseSensitive(root, var);
        if (!cJSON_IsObject(entry)) {
            snprintf(err, errlen, "%s/%s/manifest.json: tensor %s is missing", dir, name, var);
            rc = -EINVAL;
            goto out_free_model;
        }
        rc = check_entry(entry, name, var, t, file, sizeof file, err, errlen);
        if (rc)
            goto out_free_model;
        snprintf(path, sizeof path, "%s/%s/%s", dir, name, file);
        rc = sf_read_file(path, want + 1, &data, &len);
        if (rc) {
            snprintf(err, errlen, "%s: %s", path, rc == -EFBIG ? "too large" : strerror(-rc));
            rc = -EINVAL;
            goto out_free_model;
        }
        if (len != want) {
            snprintf(err, errlen, "%s: expected %zu bytes, found %zu", path, want, len);
            free(data);
            rc = -EINVAL;
            goto out_free_model;
        }
        memcpy(m->blob + offs[t], data, len); /* little-endian hosts only (x86-64, arm64) */
        free(data);
    }
    snprintf(m->path, sizeof m->path, "%s/%s", dir, name);
    if ((rc = manifest_settings(root, m, err, errlen)))
        goto out_free_model;
    m->nfloats = total;
    for (t = 0; t < SF_LAYERS; t++) {
        m->weights[t] = m->blob + offs[3 * t];
        m->beta[t] = m->blob + offs[3 * t + 1];
        m->gamma[t] = m->blob + offs[3 * t + 2];
    }
    for (size_t i = 0; i < total; i++) {
        if (!isfinite(m->blob[i])) {
            snprintf(err, errlen, "%s/%s: weights contain NaN or infinity", dir, name);
            rc = -EINVAL;
            goto out_free_model;
        }
    }
    {
        XXH3_state_t *st = XXH3_createState();
        XXH128_hash_t h;
        XXH128_canonical_t c;
        if (!st) {
            snprintf(err, errlen, "%s/%s: out of memory", dir, name);
            rc = -ENOMEM;
            goto out_free_model;
        }
        XXH3_128bits_reset(st);
        XXH3_128bits_update(st, m->blob, total * sizeof(float));
        if (m->pad) {           /* padded output differs: so do its keys */
            uint8_t pad[8] = "pad";
            pad[4] = (uint8_t)m->pad;
            pad[5] = (uint8_t)(m->pad >> 8);
            XXH3_128bits_update(st, pad, sizeof pad);
        }
        h = XXH3_128bits_digest(st);
        XXH3_freeState(st);
        XXH128_canonicalFromHash(&c, h);
        memcpy(m->digest, c.digest, 16);
    }
    cJSON_Delete(root);
    free(json);
    *out = m;
    return 0;

out_free_model:
    sf_model_free(m);
    cJSON_Delete(root);
out_free_json:
    free(json);
    return rc;
}

/* ---- every style on the path ------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_model(const void *a, const void *b)
{
    return strcmp((*(struct sf_model *const *)a)->name, (*(struct sf_model *const *)b)->name);
}

void sf_names_free(char **names, size_t count)
{
    for (size_t i = 0; names && i < count; i++)
        free(names[i]);
    free(names);
}

/* Append a copy of s to *v (n so far, cap its room).  0 or -ENOMEM. */
static int names_push(char ***v, size_t *n, size_t *cap, const char *s)
{
    if (*n == *cap) {
        char **nv = realloc(*v, (*cap = *cap ? *cap * 2 : 16) * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        *v = nv;
    }
    if (!((*v)[*n] = strdup(s)))
        return -ENOMEM;
    (*n)++;
    return 0;
}

/* The names in dir, sorted: of its network folders (paintings 0: the
 * subfolders holding a manifest.json) or of its painting files (paintings
 * 1: image files stylefs reads, by the sources' naming rules).  0 or
 * -errno. */
static int dir_list(const char *dir, int paintings, char ***names, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **v = NULL, path[PATH_MAX];
    size_t n = 0, cap = 0;
    struct stat st;
    int rc = 0;

    *names = NULL;
    *count = 0;
    if (!d)
        return -errno;
    while (!rc && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (paintings) {
            if (sf_served_name(de->d_name, NULL, 0, NULL) != 1 ||
                snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path || is_dir(path))
                continue;
        } else if (!sf_style_name_ok(de->d_name) ||
                   snprintf(path, sizeof path, "%s/%s/manifest.json", dir, de->d_name) >= (int)sizeof path ||
                   stat(path, &st) || !S_ISREG(st.st_mode)) {
            continue;
        }
        rc = names_push(&v, &n, &cap, de->d_name);
    }
    closedir(d);
    if (rc) {
        sf_names_free(v, n);
        return rc;
    }
    if (n)
        qsort(v, n, sizeof *v, cmp_str);
    *names = v;
    *count = n;
    return 0;
}

int sf_styles_list(const char *dir, char ***names, size_t *count)
{
    return dir_list(dir, 0, names, count);
}

/* Add m to the sorted set *v (*n styles): a style of the same name from
 * an earlier folder is shadowed (freed, with one line).  0 or -ENOMEM. */
static int add_style(struct sf_model ***v, size_t *n, struct sf_model *m, const char *who)
{
    struct sf_model **nv;

    for (size_t k = 0; k < *n; k++) {
        if (strcmp((*v)[k]->name, m->name))
            continue;
        sf_warn("%sstyle %s: %s shadows %s", who, m->name, m->path, (*v)[k]->path);
        sf_model_free((*v)[k]);
        (*v)[k] = m;
        return 0;
    }
    if (!(nv = realloc(*v, (*n + 1) * sizeof *nv)))
        return -ENOMEM;
    *v = nv;
    (*v)[(*n)++] = m;
    qsort(*v, *n, sizeof **v, cmp_model);
    return 0;
}

/* Every style in dir added to *v: its networks, then its paintings.  A
 * damaged one is skipped, naming the file at fault; a painting whose name
 * a network of this folder or an earlier painting here takes, or with '@'
 * or '+', is skipped; without the networks, every painting is, with one
 * line naming the folders looked in and the fix.  0 or -ENOMEM. */
static int load_dir(struct loader *L, const char *dir, const char *who, struct sf_model ***v, size_t *n)
{
    char **nets = NULL, **files = NULL, why[800], name[SF_STYLE_NAME_MAX], prev[SF_STYLE_NAME_MAX] = "";
    char path[PATH_MAX];
    size_t nn = 0, nf = 0, i, k;
    struct sf_model *m;
    int rc;

    if ((rc = dir_list(dir, 0, &nets, &nn)) || (rc = dir_list(dir, 1, &files, &nf))) {
        sf_warn("%sstyles folder %s: %s", who, dir, strerror(-rc));
        sf_names_free(nets, nn);
        return rc == -ENOMEM ? rc : 0;
    }
    for (i = 0; i < nn && rc != -ENOMEM; i++) {
        if ((rc = load_network(dir, nets[i], &m, why, sizeof why)))
            sf_warn("%sskipping damaged style %s: %s", who, nets[i], why);
        else
            rc = add_style(v, n, m, who);
    }
    for (i = 0; i < nf && rc != -ENOMEM; i++) {
        const char *dot = strrchr(files[i], '.');
        rc = 0;
        if ((size_t)(dot - files[i]) >= sizeof name)
            continue;
        snprintf(name, sizeof name, "%.*s", (int)(dot - files[i]), files[i]);
        for (k = 0; k < nn && strcmp(nets[k], name); k++)
            ;
        if (!sf_style_name_ok(name) || strchr(name, '@') || strchr(name, '+')) {
            sf_warn("%sskipping painting %s/%s: a style's name has no '@' or '+'", who, dir,
                    files[i]);
        } else if (k < nn) {
            sf_warn("%sstyle name %s: both the network %s/%s/ and the painting %s/%s; "
                            "skipping the painting", who, name, dir, name, dir, files[i]);
        } else if (!strcmp(name, prev)) {
            sf_warn("%sstyle name %s: two paintings in %s; skipping %s", who, name, dir, files[i]);
        } else if (L->arb_failed) {
            continue;               /* said once, below */
        } else if (snprintf(path, sizeof path, "%s/%s", dir, files[i]) >= (int)sizeof path) {
            sf_warn("%sskipping painting %s/%s: path too long", who, dir, files[i]);
        } else if ((rc = load_image(L, path, name, &m, why, sizeof why))) {
            if (L->arb_failed)
                sf_warn("%sskipping the paintings: %s", who, why);
            else if (rc != -ENOMEM)
                sf_warn("%sskipping damaged style %s: %s", who, name, why);
        } else {
            rc = add_style(v, n, m, who);
        }
        snprintf(prev, sizeof prev, "%s", name);
    }
    sf_names_free(nets, nn);
    sf_names_free(files, nf);
    return rc == -ENOMEM ? rc : 0;
}

/* sf_models_load with the loader L. */
static int load_all(struct loader *L, char **names, size_t count, const char *who, struct sf_model ***models,
                    size_t *n)
{
    struct sf_model **v = NULL;
    char why[800];
    int rc = 0;

    *models = NULL;
    *n = 0;
    if (!names) {
        for (int i = 0; i < L->sp->n && !rc; i++)
            rc = load_dir(L, L->sp->dir[i], who, &v, n);
    } else if (!(v = calloc(count ? count : 1, sizeof *v))) {
        rc = -ENOMEM;
    }
    for (size_t i = 0; names && i < count && !rc; i++) {
        struct sf_style_suffix sx;
        char base[SF_STYLE_NAME_MAX];
        if (!sf_style_name_ok(names[i]) || sf_style_split(names[i], strlen(names[i]), &sx, why, sizeof why)) {
            rc = -ENOENT;
        } else {
            snprintf(base, sizeof base, "%.*s", (int)sx.base_len, names[i]);
            struct sf_model *m;
            if (!(rc = load_by_name(L, base, &m, why, sizeof why)))
                rc = as_variant(m, &sx, &v[*n], why, sizeof why);
            if (!rc)
                (*n)++;
        }
        if (rc == -ENOENT)
            sf_warn("%sunknown style '%s' in %s%s (see 'stylefs styles')", who, names[i],
                    L->sp->dir[0], L->sp->n > 1 ? " and the folders after it" : "");
        else if (rc)
            sf_warn("%sstyle %s is damaged: %s", who, names[i], why);
    }
    if (!rc && !*n) {
        sf_warn("%sno styles in %s%s (a style is a folder with manifest.json, or a painting)",
                who, L->sp->dir[0], L->sp->n > 1 ? " or the folders after it" : "");
        rc = -ENOENT;
    }
    if (rc) {
        sf_models_free(v, *n);
        *n = 0;
        return rc;
    }
    *models = v;
    return 0;
}

int sf_models_load(const struct sf_styles_path *sp, const char *arb_dir, char **names, size_t count,
                   const char *who, struct sf_model ***models, size_t *n)
{
    struct loader L = { .sp = sp, .arb_dir = arb_dir };
    int rc = load_all(&L, names, count, who, models, n);

    loader_done(&L);
    return rc;
}

void sf_models_free(struct sf_model **models, size_t n)
{
    for (size_t i = 0; models && i < n; i++)
        sf_model_free(models[i]);
    free(models);
}

/* ---- the live set ------------------------------------------------------------ */

struct sf_style_set {
    struct sf_styles_path sp;
    char arb_dir[PATH_MAX];
    struct loader L;                /* the load's, then the watcher's only */
    unsigned idle;                  /* the painting networks' idle time */
    pthread_mutex_t lock;           /* guards models and n; taken alone, never while loading */
    struct sf_model **models;       /* sorted by name */
    size_t n;
};

int sf_style_set_open(const struct sf_styles_path *sp, const char *arb_dir, const char *who,
                      struct sf_style_set **out)
{
    struct sf_style_set *s = calloc(1, sizeof *s);
    int rc;

    *out = NULL;
    if (!s)
        return -ENOMEM;
    s->sp = *sp;
    s->L.sp = &s->sp;
    if (arb_dir) {
        snprintf(s->arb_dir, sizeof s->arb_dir, "%s", arb_dir);
        s->L.arb_dir = s->arb_dir;
    }
    if ((rc = load_all(&s->L, NULL, 0, who, &s->models, &s->n))) {
        loader_done(&s->L);
        free(s);
        return rc;
    }
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return 0;
}

void sf_style_set_free(struct sf_style_set *s)
{
    if (!s)
        return;
    sf_models_free(s->models, s->n);
    loader_done(&s->L);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

const struct sf_styles_path *sf_style_set_path(const struct sf_style_set *s)
{
    return &s->sp;
}

void sf_style_set_idle(struct sf_style_set *s, unsigned secs)
{
    s->idle = secs;
    if (s->L.arb)
        sf_arb_set_idle(s->L.arb, secs);
}

size_t sf_style_set_count(struct sf_style_set *s)
{
    size_t n;

    pthread_mutex_lock(&s->lock);
    n = s->n;
    pthread_mutex_unlock(&s->lock);
    return n;
}

int sf_style_set_nth(struct sf_style_set *s, size_t i, const struct sf_model **out)
{
    int rc = -ENOENT;

    pthread_mutex_lock(&s->lock);
    if (i < s->n) {
        *out = sf_model_ref(s->models[i]);
        rc = 0;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int sf_style_set_get(struct sf_style_set *s, const char *name, size_t len, const struct sf_model **out, char *why,
                     size_t whylen)
{
    struct sf_style_suffix sx;
    const struct sf_model *base = NULL;

    *out = NULL;
    if (sf_style_split(name, len, &sx, why, whylen))
        return -ENOENT;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n && !base; i++)
        if (strlen(s->models[i]->name) == sx.base_len && !memcmp(s->models[i]->name, name, sx.base_len))
            base = sf_model_ref(s->models[i]);
    pthread_mutex_unlock(&s->lock);
    if (!base) {
        snprintf(why, whylen, "'%.*s': no such style", (int)sx.base_len, name);
        return -ENOENT;
    }
    if (!(*out = sf_model_variant(base, sx.strength, sx.colors))) {
        sf_model_free(base);
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

int sf_style_set_changed(struct sf_style_set *s, const char *file, char *name, size_t namelen, char *msg,
                         size_t msglen)
{
    const char *dot = strrchr(file, '.');
    struct sf_model *m = NULL, *old = NULL;
    char why[800];
    size_t i;
    int rc, had_arb = s->L.arb != NULL, what = 0;

    if (file[0] == '.' || !sf_style_name_ok(file))
        return 0;
    if (dot && sf_served_name(file, NULL, 0, NULL) == 1)
        snprintf(name, namelen, "%.*s", (int)(dot - file), file);
    else
        snprintf(name, namelen, "%s", file);
    if (strchr(name, '@') || strchr(name, '+') || !sf_style_name_ok(name))
        return 0;
    s->L.arb_failed = 0;            /* the networks may have been installed since */
    rc = load_by_name(&s->L, name, &m, why, sizeof why);
    if (!had_arb && s->L.arb)
        sf_arb_set_idle(s->L.arb, s->idle);
    if (rc == -ENOMEM)
        return rc;
    pthread_mutex_lock(&s->lock);
    for (i = 0; i < s->n && strcmp(s->models[i]->name, name); i++)
        ;
    if (i < s->n && m && !memcmp(m->digest, s->models[i]->digest, 16) && !strcmp(m->path, s->models[i]->path)) {
        old = m;                    /* the same bytes again (a touch): keep the one loaded */
    } else if (i < s->n && m) {
        old = s->models[i];
        s->models[i] = m;
        what = SF_STYLE_REPLACED;
    } else if (i < s->n) {
        old = s->models[i];
        memmove(s->models + i, s->models + i + 1, (s->n - i - 1) * sizeof *s->models);
        s->n--;
        what = SF_STYLE_REMOVED;
    } else if (m) {
        struct sf_model **nv = realloc(s->models, (s->n + 1) * sizeof *nv);
        if (nv) {
            s->models = nv;
            s->models[s->n++] = m;
            qsort(s->models, s->n, sizeof *s->models, cmp_model);
            what = SF_STYLE_ADDED;
        } else {
            old = m;
            rc = -ENOMEM;
        }
    }
    pthread_mutex_unlock(&s->lock);
    sf_model_free(old);
    if (what == SF_STYLE_ADDED || what == SF_STYLE_REPLACED)
        snprintf(msg, msglen, "style %s: %s (%s %s)", name, what == SF_STYLE_ADDED ? "added" : "changed",
                 sf_style_kind_name(m), m->path);
    else if (what == SF_STYLE_REMOVED && rc && rc != -ENOENT)
        snprintf(msg, msglen, "style %s: removed: %s", name, why);
    else if (what == SF_STYLE_REMOVED)
        snprintf(msg, msglen, "style %s: removed", name);
    else if (rc && rc != -ENOENT)
        snprintf(msg, msglen, "style %s: not added: %s", name, why);
    else
        msg[0] = '\0';
    return rc == -ENOMEM ? rc : what;
}
