/* engine.c: choosing an engine at run time, loading the CUDA module, and
 * releasing an idle backend (see engine.h for the design). */
/* Messages are cut to their buffers on purpose. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "engine.h"
#include "cpu.h"
#include "log.h"
#include "util.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dnnl.h>

#ifndef STYLEFS_LIBDIR
#define STYLEFS_LIBDIR STYLEFS_PREFIX "/lib"
#endif

int sf_device_parse(const char *s, enum sf_device *out)
{
    if (!strcmp(s, "auto"))
        *out = SF_DEVICE_AUTO;
    else if (!strcmp(s, "cpu"))
        *out = SF_DEVICE_CPU;
    else if (!strcmp(s, "cuda"))
        *out = SF_DEVICE_CUDA;
    else
        return -EINVAL;
    return 0;
}


/* ---- the CUDA module ---------------------------------------------------- */

typedef const struct sf_engine_ops *(*module_fn)(int abi, void (*log)(int, const char *));

static void module_log(int level, const char *msg)
{
    sf_log((enum sf_log_level)level, "%s", msg);
}

/* Where the module is looked for, in order; fills paths[], returns count. */
static int module_paths(char paths[3][PATH_MAX])
{
    const char *env = getenv("STYLEFS_CUDA_MODULE");
    char exe[PATH_MAX];
    ssize_t n;
    int k = 0;

    if (env && *env) {
        snprintf(paths[k++], PATH_MAX, "%s", env);
        return k;       /* an explicit path is the only place looked */
    }
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(paths[k++], PATH_MAX, "%s/%s", exe, SF_CUDA_MODULE_NAME);
        }
    }
    snprintf(paths[k++], PATH_MAX, "%s/stylefs/%s", STYLEFS_LIBDIR, SF_CUDA_MODULE_NAME);
    return k;
}

/* dlopen the module.  Returns its ops, or NULL with the reason in why. */
static const struct sf_engine_ops *module_load(void **handle, char *where, size_t wherelen, char *why,
                                               size_t whylen)
{
    char paths[3][PATH_MAX];
    int n = module_paths(paths);

    for (int i = 0; i < n; i++) {
        if (access(paths[i], F_OK))
            continue;
        snprintf(where, wherelen, "%s", paths[i]);
        void *h = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            snprintf(why, whylen, "cannot load %s: %s", paths[i], dlerror());
            return NULL;
        }
        module_fn fn = (module_fn)(uintptr_t)dlsym(h, "sf_cuda_module");
        const struct sf_engine_ops *ops = fn ? fn(SF_ENGINE_ABI, module_log) : NULL;
        if (!ops) {
            snprintf(why, whylen, "%s is from another stylefs version", paths[i]);
            dlclose(h);
            return NULL;
        }
        *handle = h;
        return ops;
    }
    snprintf(why, whylen, "%s not found (looked in %s%s%s)", SF_CUDA_MODULE_NAME, paths[0],
             n > 1 ? " and " : "", n > 1 ? paths[n - 1] : "");
    snprintf(where, wherelen, "%s", paths[0]);
    return NULL;
}

const char *sf_engines_built_in(void)
{
    static char buf[PATH_MAX + 600];
    const dnnl_version_t *v = dnnl_version();
    char where[PATH_MAX], why[PATH_MAX + 300], levels[64];
    void *h = NULL;

    sf_cpu_levels_str(levels, sizeof levels);
    if (module_load(&h, where, sizeof where, why, sizeof why)) {
        snprintf(buf, sizeof buf, "cpu (oneDNN %d.%d; kernels this CPU runs: %s); cuda (cuDNN, module %s)",
                 v->major, v->minor, levels, where);
        dlclose(h);
    } else {
        snprintf(buf, sizeof buf, "cpu (oneDNN %d.%d; kernels this CPU runs: %s); cuda unavailable: %s", v->major,
                 v->minor, levels, why);
    }
    return buf;
}

/* Whether the NVIDIA driver's library loads (1) or not (0). */
static int driver_present(void)
{
    void *drv = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);

    if (!drv)
        return 0;
    dlclose(drv);
    return 1;
}

int sf_engine_probe(enum sf_device dev, char *why, size_t whylen)
{
    char where[PATH_MAX], reason[PATH_MAX + 300];
    void *h = NULL;

    if (dev != SF_DEVICE_CUDA)
        return 0;
    if (!module_load(&h, where, sizeof where, reason, sizeof reason)) {
        snprintf(why, whylen, "device cuda: %s", reason);
        return -ENODEV;
    }
    dlclose(h);
    if (!driver_present()) {
        snprintf(why, whylen, "device cuda: no NVIDIA driver (libcuda.so.1 not found)");
        return -ENODEV;
    }
    return 0;
}

/* ---- open, run, release --------------------------------------------------- */

/* The reaper's view of an engine (idle.h), called under e->lock. */
static int engine_held(void *arg)
{
    return ((struct sf_engine *)arg)->impl != NULL;
}

static void engine_release(void *arg)
{
    struct sf_engine *e = arg;

    e->ops->close(e->impl);
    e->impl = NULL;
    sf_info("engine: %s released after %u s idle", e->ops->name, e->idle.secs);
}

int sf_engine_open(enum sf_device dev, struct sf_engine **out, char *why, size_t whylen)
{
    struct sf_engine *e;
    char where[PATH_MAX], reason[PATH_MAX + 300] = "", desc[300] = "";
    int rc = 0;

    e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    e->asked = dev;
    if (dev == SF_DEVICE_AUTO && !driver_present()) {
        /* the module and cuDNN take 5-30 ms to load; without a driver
         * they would only say so (the same words as the module's) */
        snprintf(reason, sizeof reason, "no NVIDIA driver (libcuda.so.1 not found)");
        dev = SF_DEVICE_CPU;
    }
    if (dev != SF_DEVICE_CPU) {
        const struct sf_engine_ops *ops = module_load(&e->module, where, sizeof where, reason, sizeof reason);
        if (ops) {
            rc = ops->open(&e->impl, desc, sizeof desc);
            if (rc == 0)
                e->ops = ops;
            else {
                snprintf(reason, sizeof reason, "%s", desc);
                dlclose(e->module);
                e->module = NULL;
                e->impl = NULL;
            }
        }
        if (!e->ops && dev == SF_DEVICE_CUDA) {
            snprintf(why, whylen, "device cuda: %s", reason);
            rc = -ENODEV;
            goto out_free;
        }
    }
    if (!e->ops) {
        e->ops = &sf_engine_cpu;
        rc = e->ops->open(&e->impl, desc, sizeof desc);
        if (rc) {
            snprintf(why, whylen, "%s", desc);
            goto out_free;
        }
    }
    pthread_mutex_init(&e->lock, NULL);
    if ((rc = sf_idle_init(&e->idle, &e->lock, e, engine_held, engine_release))) {
        snprintf(why, whylen, "engine: cannot make a condition variable: %s", strerror(-rc));
        pthread_mutex_destroy(&e->lock);
        goto out_close;
    }
    if (e->ops == &sf_engine_cpu)
        sf_info("engine: cpu (%s%s); %s", e->asked == SF_DEVICE_AUTO ? "auto: " : "asked for",
                e->asked == SF_DEVICE_AUTO ? reason : "", desc);
    else
        sf_info("engine: cuda (%s%s)", dev == SF_DEVICE_AUTO ? "auto: " : "", desc);
    *out = e;
    return 0;
out_close:
    e->ops->close(e->impl);
    if (e->module)
        dlclose(e->module);
out_free:
    free(e);
    return rc;
}

void sf_engine_set_idle(struct sf_engine *e, unsigned secs)
{
    sf_idle_set(&e->idle, secs);
}

int sf_engine_run(struct sf_engine *e, const struct sf_model *m,
                  const uint8_t *rgb, int w, int h, uint8_t *out, const sf_cancel_flag *cancel)
{
    char desc[300];
    int rc;

    pthread_mutex_lock(&e->lock);
    if (!e->impl) {
        rc = e->ops->open(&e->impl, desc, sizeof desc);
        if (rc && e->ops != &sf_engine_cpu && e->asked == SF_DEVICE_AUTO) {
            sf_warn("engine: cuda cannot be reopened (%s); switching to cpu", desc);
            e->ops = &sf_engine_cpu;
            rc = e->ops->open(&e->impl, desc, sizeof desc);
        }
        if (rc) {
            sf_err("engine: %s cannot be reopened: %s", e->ops->name, desc);
            e->impl = NULL;
            goto out_unlock;
        }
        sf_info("engine: %s reopened", e->ops->name);
    }
    rc = e->ops->run(e->impl, m, rgb, w, h, out, cancel);
    sf_idle_touch(&e->idle);
out_unlock:
    pthread_mutex_unlock(&e->lock);
    return rc;
}

int sf_engine_is_open(struct sf_engine *e)
{
    int open;

    pthread_mutex_lock(&e->lock);
    open = e->impl != NULL;
    pthread_mutex_unlock(&e->lock);
    return open;
}

void sf_engine_close(struct sf_engine *e)
{
    if (!e)
        return;
    sf_idle_stop(&e->idle);
    if (e->impl)
        e->ops->close(e->impl);
    if (e->module)
        dlclose(e->module);
    pthread_mutex_destroy(&e->lock);
    free(e);
}
