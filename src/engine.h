/* engine.h: the style network behind a small ops table.
 *
 * An engine runs one forward pass of the network of
 * ../shared/docs/network.md: 8-bit RGB in, 8-bit RGB of exactly the same
 * width and height out.  Engines are chosen at run time (the CPU engine is
 * always built in and is the fallback); a GPU engine plugs in beside it
 * through the same table.
 *
 * DESIGN: an engine owns its scratch (activations, reordered weights, per
 * shape plans) and runs one image at a time: sf_engine_run serializes
 * callers on the engine's mutex, because one pass already uses every core
 * (CPU) or the whole device.  Models (style.h) are read-only and shared.
 *
 * Return codes: 0 or -errno throughout.  Where `why` is given, a one-line
 * human reason is written there on failure. */
#ifndef SF_ENGINE_H
#define SF_ENGINE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "style.h"

struct sf_engine_impl; /* an engine's private state */

struct sf_engine_ops {
    const char *name;
    /* Create the engine's context.  Allocates no per-image memory yet.
     * Returns 0, -ENODEV (no usable device), -ENOMEM. */
    int (*open)(struct sf_engine_impl **out, char *why, size_t whylen);
    /* One forward pass.  rgb: [h][w][3] uint8, out: [h][w][3] uint8.
     * `cancel` (may be NULL) is polled between layers.
     * Returns 0, -ENOMEM (scratch for this size could not be had),
     * -ECANCELED (*cancel became non-zero), -EIO (the backend failed). */
    int (*run)(struct sf_engine_impl *e, const struct sf_model *m,
               const uint8_t *rgb, int w, int h, uint8_t *out, const volatile int *cancel);
    void (*close)(struct sf_engine_impl *e);
};

enum sf_device { SF_DEVICE_AUTO = 0, SF_DEVICE_CPU, SF_DEVICE_CUDA };

struct sf_engine {
    const struct sf_engine_ops *ops;
    struct sf_engine_impl *impl;
    pthread_mutex_t lock;   /* serializes run(): one image at a time */
};

extern const struct sf_engine_ops sf_engine_cpu;

/* Parse "auto", "cpu" or "cuda".  Returns 0 or -EINVAL. */
int sf_device_parse(const char *s, enum sf_device *out);

/* Open the engine for `dev`, logging which engine runs and why.
 * Returns 0, -ENODEV (cuda asked for and unavailable), -ENOMEM. */
int sf_engine_open(enum sf_device dev, struct sf_engine **out, char *why, size_t whylen);
int sf_engine_run(struct sf_engine *e, const struct sf_model *m,
                  const uint8_t *rgb, int w, int h, uint8_t *out, const volatile int *cancel);
void sf_engine_close(struct sf_engine *e);

/* Names of the engines this binary has, e.g. "cpu (oneDNN 2.6.3)". */
const char *sf_engines_built_in(void);

#endif
