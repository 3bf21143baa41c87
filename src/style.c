/* style.c: loading and validating styles: ml5 checkpoints, and paintings
 * for the arbitrary-style networks (see style.h).  It loads and checks
 * only: a painting's style vector is computed and cached by the pipeline's
 * one produce (pipeline.h sf_style_vector). */
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

/* A painting's state, shared by its strength variants. */
struct sf_image_style {
    char path[PATH_MAX];
    uint8_t content[16];            /* XXH3-128 of the painting's bytes at load */
    pthread_mutex_t lock;           /* guards variants */
    struct sf_model *variants[101];
};

const char *sf_style_kind_name(const struct sf_model *m)
{
    return m->kind == SF_STYLE_IMAGE ? "painting" : "network";
}

const char *sf_style_path(const struct sf_model *m)
{
    return m->kind == SF_STYLE_IMAGE ? m->img->path : "";
}

const uint8_t *sf_style_content(const struct sf_model *m)
{
    return m->kind == SF_STYLE_IMAGE ? m->img->content : NULL;
}

static void arb_put(struct sf_arb *a)
{
    if (a && --a->refs == 0)
        sf_arb_close(a);
}

void sf_model_free(struct sf_model *m)
{
    if (!m)
        return;
    if (m->kind == SF_STYLE_IMAGE && !m->base) {
        for (int i = 0; i < 101; i++)
            free(m->img->variants[i]);
        pthread_mutex_destroy(&m->img->lock);
        free(m->img);
        arb_put(m->arb);
    }
    if (m->base)                    /* a variant: its base frees it */
        return;
    free(m->blob);
    free(m);
}

/* An image style's digest: the painting, the networks and the strength. */
static void image_digest(struct sf_model *m)
{
    uint8_t buf[16 + 16 + 4 + 24];
    memcpy(buf, "stylefs painting style v1\0", 24);
    memcpy(buf + 24, m->img->content, 16);
    memcpy(buf + 40, m->arb->digest, 16);
    buf[56] = (uint8_t)m->strength;
    buf[57] = buf[58] = buf[59] = 0;
    XXH128_canonicalFromHash((XXH128_canonical_t *)m->digest, XXH3_128bits(buf, sizeof buf));
}

int sf_style_split(const char *name, size_t len, size_t *base_len, int *strength)
{
    const char *at = memchr(name, '@', len);
    size_t n;
    int v = 0;

    *base_len = len;
    *strength = 100;
    if (!at)
        return 0;
    *base_len = (size_t)(at - name);
    n = len - *base_len - 1;
    if (!*base_len || n < 1 || n > 3 || (n > 1 && at[1] == '0'))
        return -ENOENT;
    for (size_t i = 1; i <= n; i++) {
        if (at[i] < '0' || at[i] > '9')
            return -ENOENT;
        v = v * 10 + (at[i] - '0');
    }
    if (v > 100)
        return -ENOENT;
    *strength = v;
    return 0;
}

const struct sf_model *sf_model_variant(const struct sf_model *base, int strength)
{
    struct sf_model *v;

    if (!base || base->kind != SF_STYLE_IMAGE || strength < 0 || strength > 100)
        return NULL;
    if (strength == base->strength)
        return base;
    pthread_mutex_lock(&base->img->lock);
    if (!(v = base->img->variants[strength]) && (v = malloc(sizeof *v))) {
        *v = *base;
        snprintf(v->name, sizeof v->name, "%.*s@%d", SF_STYLE_NAME_MAX - 5, base->name, strength);
        v->strength = strength;
        v->base = base;
        image_digest(v);
        base->img->variants[strength] = v;
    }
    pthread_mutex_unlock(&base->img->lock);
    return v;
}

/* The arbitrary networks for styles in styles_dir (see style.h). */
static int arb_open_for(const char *styles_dir, const char *arb_dir, struct sf_arb **a, char *err, size_t errlen)
{
    char dir[PATH_MAX];
    const char *e = getenv("STYLEFS_ARBITRARY");

    if (e && *e)
        snprintf(dir, sizeof dir, "%s", e);
    else if (arb_dir)
        snprintf(dir, sizeof dir, "%s", arb_dir);
    else
        snprintf(dir, sizeof dir, "%s/arbitrary", styles_dir ? styles_dir : ".");
    return sf_arb_open(dir, a, err, errlen);
}

/* Load the painting at path as style name, with the networks a (a
 * reference is taken). */
static int load_image(const char *path, const char *name, int strength, struct sf_arb *a, struct sf_model **out,
                      char *err, size_t errlen)
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
    if (!(m = calloc(1, sizeof *m)) || !(m->img = calloc(1, sizeof *m->img))) {
        free(m);
        free(d);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    snprintf(m->name, sizeof m->name, "%s", name);
    m->kind = SF_STYLE_IMAGE;
    m->strength = strength;
    m->arb = a;
    a->refs++;
    snprintf(m->img->path, sizeof m->img->path, "%s", path);
    XXH128_canonicalFromHash((XXH128_canonical_t *)m->img->content, XXH3_128bits(d, len));
    free(d);
    pthread_mutex_init(&m->img->lock, NULL);
    image_digest(m);
    *out = m;
    return 0;
}

int sf_model_load_image(const char *path, const char *name, const char *styles_dir, const char *arb_dir,
                        struct sf_model **out, char *err, size_t errlen)
{
    struct sf_arb *a;
    size_t blen;
    int strength, rc;

    *out = NULL;
    if (sf_style_split(name, strlen(name), &blen, &strength)) {
        snprintf(err, errlen, "%s: the strength must be a whole percent from 0 to 100", name);
        return -ENOENT;
    }
    if ((rc = arb_open_for(styles_dir, arb_dir, &a, err, errlen)))
        return rc;
    rc = load_image(path, name, strength, a, out, err, errlen);
    arb_put(a);                     /* the style holds its own reference */
    return rc;
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

static int is_dir(const char *p);

/* The painting in dir whose name without its extension is stem (an image
 * file stylefs reads, by the sources' naming rules): 0 with its path, or
 * -ENOENT. */
static int find_painting(const char *dir, const char *stem, size_t stemlen, char *path, size_t pathlen)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int rc = -ENOENT;

    if (!d)
        return -ENOENT;
    while ((de = readdir(d))) {
        const char *dot = strrchr(de->d_name, '.');
        if (de->d_name[0] == '.' || !dot || (size_t)(dot - de->d_name) != stemlen ||
            memcmp(de->d_name, stem, stemlen) || sf_served_name(de->d_name, NULL, 0, NULL) != 1)
            continue;
        snprintf(path, pathlen, "%s/%s", dir, de->d_name);
        if (!is_dir(path)) {
            rc = 0;
            break;
        }
    }
    closedir(d);
    return rc;
}

/* sf_model_load's painting: NAME or NAME@P where dir holds NAME.<image>. */
static int load_named_painting(const char *dir, const char *arb_dir, const char *name, struct sf_model **out,
                               char *err, size_t errlen)
{
    char path[PATH_MAX];
    size_t blen;
    int strength;

    if (sf_style_split(name, strlen(name), &blen, &strength)) {
        snprintf(err, errlen, "%s: no such style (a strength is a whole percent from 0 to 100: NAME@50)", name);
        return -ENOENT;
    }
    /* a network's name takes no strength, and hides a painting of that name */
    if ((snprintf(path, sizeof path, "%s/%.*s", dir, (int)blen, name), is_dir(path)) ||
        find_painting(dir, name, blen, path, sizeof path)) {
        snprintf(err, errlen, "%s/%.*s: no such style", dir, (int)blen, name);
        return -ENOENT;
    }
    return sf_model_load_image(path, name, dir, arb_dir, out, err, errlen);
}

int sf_model_load(const char *dir, const char *arb_dir, const char *name, struct sf_model **out, char *err,
                  size_t errlen)
{
    char path[PATH_MAX], file[256];
    uint8_t *json = NULL;
    size_t jlen, offs[48], total = 0;
    cJSON *root = NULL;
    struct sf_model *m = NULL;
    int rc, t;

    if (!sf_style_name_ok(name)) {
        snprintf(err, errlen, "%s: not a style name", name ? name : "(null)");
        return -ENOENT;
    }
    if (strchr(name, '@') || (snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path && !is_dir(path)))
        return load_named_painting(dir, arb_dir, name, out, err, errlen);
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
    m = calloc(1, sizeof *m);
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
    snprintf(m->name, sizeof m->name, "%s", name);
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
        XXH128_hash_t h = XXH3_128bits(m->blob, total * sizeof(float));
        XXH128_canonical_t c;
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

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int sf_styles_dir(const char *opt, char *out, size_t outlen, char *err, size_t errlen)
{
    char cand[4][PATH_MAX], exe[PATH_MAX];
    const char *e;
    int n = 0, i;
    ssize_t r;

    if (opt) {
        if (!is_dir(opt)) {
            snprintf(err, errlen, "styles folder %s: %s", opt, strerror(errno ? errno : ENOTDIR));
            return -ENOENT;
        }
        snprintf(out, outlen, "%s", opt);
        return 0;
    }
    if ((e = getenv("STYLEFS_STYLES")) && *e)
        snprintf(cand[n++], PATH_MAX, "%s", e);
    if ((e = getenv("XDG_DATA_HOME")) && *e)
        snprintf(cand[n++], PATH_MAX, "%s/stylefs/styles", e);
    else if ((e = getenv("HOME")) && *e)
        snprintf(cand[n++], PATH_MAX, "%s/.local/share/stylefs/styles", e);
    snprintf(cand[n++], PATH_MAX, "%s/share/stylefs/styles", STYLEFS_PREFIX);
    r = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (r > 0) {
        char *slash;
        exe[r] = '\0';
        slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        snprintf(cand[n++], PATH_MAX, "%.*s/models", PATH_MAX - 8, exe);
    }
    for (i = 0; i < n; i++) {
        if (is_dir(cand[i])) {
            snprintf(out, outlen, "%s", cand[i]);
            return 0;
        }
    }
    {
        size_t used = (size_t)snprintf(err, errlen, "no styles folder found (tried");
        for (i = 0; i < n && used < errlen; i++)
            used += (size_t)snprintf(err + used, errlen - used, "%s %s", i ? "," : "", cand[i]);
        if (used < errlen)
            snprintf(err + used, errlen - used, "); use --styles DIR or run 'make models'");
    }
    return -ENOENT;
}

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
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

int sf_styles_list(const char *dir, char ***names, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **v = NULL, path[PATH_MAX];
    size_t n = 0, cap = 0;
    struct stat st;

    if (!d)
        return -errno;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || !sf_style_name_ok(de->d_name))
            continue;
        if (snprintf(path, sizeof path, "%s/%s/manifest.json", dir, de->d_name) >= (int)sizeof path)
            continue;
        if (stat(path, &st) || !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            char **nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof *v);
            if (!nv)
                goto out_nomem;
            v = nv;
        }
        if (!(v[n] = strdup(de->d_name)))
            goto out_nomem;
        n++;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof *v, cmp_str);
    *names = v;
    *count = n;
    return 0;
out_nomem:
    closedir(d);
    sf_names_free(v, n);
    return -ENOMEM;
}

/* Every painting in dir (an image file stylefs reads) appended to *v (n
 * styles so far, sorted by name then): one set of networks for all of
 * them.  A name taken by a network folder or an earlier painting, a name
 * with '@', or a file that does not decode is refused, naming the files;
 * the others load.  Returns 0 or -ENOMEM. */
static int load_paintings(const char *dir, const char *arb_dir, const char *who, struct sf_model ***v, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **files = NULL, path[PATH_MAX], why[600];
    size_t nf = 0, cap = 0, base = *n;
    struct sf_arb *a = NULL;
    int rc = 0, arb_failed = 0;

    if (!d)
        return 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || sf_served_name(de->d_name, NULL, 0, NULL) != 1 ||
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path || is_dir(path))
            continue;
        if (nf == cap) {
            char **nv = realloc(files, (cap = cap ? cap * 2 : 16) * sizeof *nv);
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            files = nv;
        }
        if (!(files[nf] = strdup(de->d_name))) {
            rc = -ENOMEM;
            break;
        }
        nf++;
    }
    closedir(d);
    if (nf)
        qsort(files, nf, sizeof *files, cmp_str);
    for (size_t i = 0; i < nf && !rc; i++) {
        char name[SF_STYLE_NAME_MAX], *dot = strrchr(files[i], '.');
        struct sf_model *m, **nv;
        size_t k;
        if ((size_t)(dot - files[i]) >= sizeof name)
            continue;
        snprintf(name, sizeof name, "%.*s", (int)(dot - files[i]), files[i]);
        if (!sf_style_name_ok(name) || strchr(name, '@')) {
            fprintf(stderr, "stylefs: %sskipping painting %s/%s: a style name has no '@'\n", who, dir, files[i]);
            continue;
        }
        for (k = 0; k < *n && strcmp((*v)[k]->name, name); k++)
            ;
        if (k < *n) {
            if ((*v)[k]->kind == SF_STYLE_IMAGE)
                fprintf(stderr, "stylefs: %sstyle name %s: both %s and %s/%s; skipping the second\n", who, name,
                        (*v)[k]->img->path, dir, files[i]);
            else
                fprintf(stderr, "stylefs: %sstyle name %s: both the network %s/%s/ and the painting %s/%s; "
                                "skipping the painting\n", who, name, dir, name, dir, files[i]);
            continue;
        }
        if (!a && !arb_failed && arb_open_for(dir, arb_dir, &a, why, sizeof why)) {
            fprintf(stderr, "stylefs: %sskipping the paintings in %s: %s\n", who, dir, why);
            arb_failed = 1;
        }
        if (arb_failed)
            break;
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        rc = load_image(path, name, 100, a, &m, why, sizeof why);
        if (rc == -ENOMEM)
            break;
        if (rc) {
            fprintf(stderr, "stylefs: %sskipping damaged style %s: %s\n", who, name, why);
            rc = 0;
            continue;
        }
        if (!(nv = realloc(*v, (*n + 1) * sizeof *nv))) {
            sf_model_free(m);
            rc = -ENOMEM;
            break;
        }
        *v = nv;
        (*v)[(*n)++] = m;
    }
    arb_put(a);
    sf_names_free(files, nf);
    if (*n > base)      /* networks and paintings in one sorted list */
        qsort(*v, *n, sizeof **v, cmp_model);
    return rc;
}

int sf_models_load(const char *dir, const char *arb_dir, char **names, size_t count, const char *who,
                   struct sf_model ***models, size_t *n)
{
    char **all = NULL, why[512];
    size_t nall = 0;
    struct sf_model **v;
    int rc = 0;

    *models = NULL;
    *n = 0;
    if (!names) {
        if ((rc = sf_styles_list(dir, &all, &nall))) {
            fprintf(stderr, "stylefs: %sstyles %s: %s\n", who, dir, strerror(-rc));
            return rc;
        }
        names = all;
        count = nall;
    }
    if (!(v = calloc(count ? count : 1, sizeof *v))) {
        sf_names_free(all, nall);
        return -ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        rc = sf_model_load(dir, arb_dir, names[i], &v[*n], why, sizeof why);
        if (!rc) {
            (*n)++;
        } else if (all) {            /* every style: skip the damaged one */
            fprintf(stderr, "stylefs: %sskipping damaged style %s: %s\n", who, names[i], why);
            rc = 0;
        } else {                     /* a named one: the load fails */
            if (rc == -ENOENT)
                fprintf(stderr, "stylefs: %sunknown style '%s' in %s (see 'stylefs styles')\n", who, names[i], dir);
            else
                fprintf(stderr, "stylefs: %sstyle %s is damaged: %s\n", who, names[i], why);
            break;
        }
    }
    if (!rc && all)
        rc = load_paintings(dir, arb_dir, who, &v, n);
    if (!rc && !*n) {
        fprintf(stderr, "stylefs: %sstyles %s: %s\n", who, dir,
                count ? "no usable style" : "no styles there (a style is a folder with manifest.json, or a painting)");
        rc = -ENOENT;
    }
    sf_names_free(all, nall);
    if (rc) {
        sf_models_free(v, *n);
        *n = 0;
        return rc;
    }
    *models = v;
    return 0;
}

void sf_models_free(struct sf_model **models, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sf_model_free(models[i]);
    free(models);
}
