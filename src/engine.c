/* engine.c: choosing an engine at run time (see engine.h).
 *
 * Today the CPU engine is the only one built in; `cuda` is refused with a
 * clear message and `auto` says in the log that it fell back to the CPU. */
#include "engine.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

const char *sf_engines_built_in(void)
{
    return "cpu (oneDNN)";
}

int sf_engine_open(enum sf_device dev, struct sf_engine **out, char *why, size_t whylen)
{
    struct sf_engine *e;
    int rc;

    if (dev == SF_DEVICE_CUDA) {
        snprintf(why, whylen, "device cuda: this build has no CUDA engine");
        return -ENODEV;
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(why, whylen, "out of memory");
        return -ENOMEM;
    }
    e->ops = &sf_engine_cpu;
    rc = e->ops->open(&e->impl, why, whylen);
    if (rc)
        goto out_free;
    pthread_mutex_init(&e->lock, NULL);
    sf_info("engine: cpu (%s)", dev == SF_DEVICE_AUTO ? "auto: no GPU engine in this build" : "asked for");
    *out = e;
    return 0;
out_free:
    free(e);
    return rc;
}

int sf_engine_run(struct sf_engine *e, const struct sf_model *m,
                  const uint8_t *rgb, int w, int h, uint8_t *out, const volatile int *cancel)
{
    int rc;

    pthread_mutex_lock(&e->lock);
    rc = e->ops->run(e->impl, m, rgb, w, h, out, cancel);
    pthread_mutex_unlock(&e->lock);
    return rc;
}

void sf_engine_close(struct sf_engine *e)
{
    if (!e)
        return;
    e->ops->close(e->impl);
    pthread_mutex_destroy(&e->lock);
    free(e);
}
