/* engine.h: the style network behind a small ops table.
 *
 * An engine runs one forward pass of the network of
 * ../shared/docs/network.md: 8-bit RGB in, 8-bit RGB of exactly the same
 * width and height out.  Engines are chosen at run time (the CPU engine is
 * always built in and is the fallback); a GPU engine plugs in beside it
 * through the same table.
 *
 * The CPU engine (oneDNN) is linked in.  The CUDA engine lives in a
 * module, stylefs-cuda.so, loaded with dlopen when `cuda` or `auto` asks
 * for it, so this binary needs no CUDA library to run.  The module is found
 * at $STYLEFS_CUDA_MODULE, beside the stylefs binary, or in
 * PREFIX/lib/stylefs/, and exports one function, sf_cuda_module(), which
 * returns its ops table when its SF_ENGINE_ABI matches ours.
 *
 * DESIGN: an engine owns its scratch (activations, reordered weights, per
 * shape plans, a GPU context) and runs one image at a time: sf_engine_run
 * serializes callers on the engine's mutex, because one pass already uses
 * every core (CPU) or the whole device; concurrent callers queue there.
 * Models (model.h) are read-only and shared.  With an idle limit set
 * (sf_engine_set_idle), a reaper thread, started at the first run, closes
 * the backend after that many seconds without a run and reopens it at the
 * next one: an idle mount holds no GPU context or GPU memory.  The reaper
 * is idle.h's, shared with the painting networks: it sleeps with a
 * deadline only while a backend is open (no timer runs once released).
 *
 * Return codes: 0 or -errno throughout.  Where `why` is given, a one-line
 * human reason is written there on failure. */
#ifndef SF_ENGINE_H
#define SF_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "idle.h"
#include "model.h"
#include "util.h"

struct sf_engine_impl; /* an engine's private state */

/* Bump when struct sf_engine_ops or the meaning of its calls changes. */
#define SF_ENGINE_ABI 2
#define SF_CUDA_MODULE_NAME "stylefs-cuda.so"

struct sf_engine_ops {
    const char *name;
    /* Create the engine's context.  Allocates no per-image memory yet.
     * On success writes a one-line description of the device into why.
     * Returns 0, -ENODEV (no usable device), -ENOMEM. */
    int (*open)(struct sf_engine_impl **out, char *why, size_t whylen);
    /* One forward pass.  rgb: [h][w][3] uint8, out: [h][w][3] uint8.
     * `cancel` (may be NULL) is polled between layers.
     * Returns 0, -ENOMEM (scratch for this size could not be had),
     * -ECANCELED (*cancel became non-zero), -EIO (the backend failed). */
    int (*run)(struct sf_engine_impl *e, const struct sf_model *m,
               const uint8_t *rgb, int w, int h, uint8_t *out, const sf_cancel_flag *cancel);
    void (*close)(struct sf_engine_impl *e);
};

enum sf_device { SF_DEVICE_AUTO = 0, SF_DEVICE_CPU, SF_DEVICE_CUDA };

/* From this many pixels (of the decoder's size, a multiple of 4 each way)
 * up, the CPU engine runs the network in bands, in memory that does not
 * grow with the image (cpu/bands.c); STYLEFS_CPU_BANDS overrides it. */
#define SF_BANDS_FROM_PIXELS (6u * 1000 * 1000)

struct sf_engine {
    const struct sf_engine_ops *ops;
    enum sf_device asked;
    void *module;               /* dlopen handle of the CUDA module, or NULL */
    pthread_mutex_t lock;       /* protects everything below; held through run() */
    struct sf_engine_impl *impl;/* NULL while released for idleness */
    struct sf_idle idle;        /* releases impl when unused (idle.h), under lock */
};

extern const struct sf_engine_ops sf_engine_cpu;

/* Parse "auto", "cpu" or "cuda".  Returns 0 or -EINVAL. */
int sf_device_parse(const char *s, enum sf_device *out);

/* Open the engine for `dev`, logging which engine runs and why: `auto`
 * takes the CUDA engine when its module loads and a usable GPU and cuDNN
 * are present, else the CPU.  Returns 0, -ENODEV (cuda asked for and
 * unavailable; why says what is missing), -ENOMEM. */
int sf_engine_open(enum sf_device dev, struct sf_engine **out, char *why, size_t whylen);
/* Check, without touching the GPU (no CUDA call, so it is safe before
 * fork), that `dev` can be had: for cuda, that the module loads and an
 * NVIDIA driver library is present.  Returns 0 or -ENODEV with why. */
int sf_engine_probe(enum sf_device dev, char *why, size_t whylen);
/* Release the backend after `secs` idle seconds (0: never).  Call before
 * the first run. */
void sf_engine_set_idle(struct sf_engine *e, unsigned secs);
/* One pass; see sf_engine_ops.run.  Also -ENODEV when a released backend
 * cannot be reopened. */
int sf_engine_run(struct sf_engine *e, const struct sf_model *m,
                  const uint8_t *rgb, int w, int h, uint8_t *out, const sf_cancel_flag *cancel);
/* Whether the backend is open now (not released). */
int sf_engine_is_open(struct sf_engine *e);
void sf_engine_close(struct sf_engine *e);

/* The engines this binary can run, for --version, e.g.
 * "cpu (oneDNN 2.6); cuda (module ./stylefs-cuda.so)". */
const char *sf_engines_built_in(void);

#endif
