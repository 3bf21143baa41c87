/* style.c: loading and validating ml5 checkpoints (see style.h). */
#include "style.h"
#include "util.h"

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

void sf_model_free(struct sf_model *m)
{
    if (!m)
        return;
    free(m->blob);
    free(m);
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

int sf_model_load(const char *dir, const char *name, struct sf_model **out,
                  char *err, size_t errlen)
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

int sf_models_load(const char *dir, char **names, size_t count, const char *who, struct sf_model ***models,
                   size_t *n)
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
        rc = sf_model_load(dir, names[i], &v[*n], why, sizeof why);
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
    if (!rc && !*n) {
        fprintf(stderr, "stylefs: %sstyles %s: %s\n", who, dir,
                count ? "no usable style" : "no styles there (a style is a folder with manifest.json)");
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
