/* fs.h: the filesystem (fs.c) as the mount command (cli_mount.c) sees it.
 *
 * The command line parses and checks its options into an sf_fs_config and
 * libfuse's own options, then hands over; the filesystem loads what it
 * serves, mounts, and runs until it is unmounted or signalled.  The
 * filesystem includes no command-line header. */
#ifndef SF_FS_H
#define SF_FS_H

#include <stdint.h>

#include <fuse.h>
#include <fuse_lowlevel.h>

#include "engine.h"
#include "pipeline.h"
#include "remote.h"

/* The FUSE worker threads at most, by default.  A cold open holds its
 * thread while it waits for its computation (the engine runs one image at
 * a time), so libfuse's default of 10 let ten cold readers stall every
 * other request, listings and cache hits included. */
#define SF_FS_MAX_THREADS 256

/* cache_max when none is given: a tenth of the size of the filesystem that
 * holds the cache, found when the mount starts (and said in the log). */
#define SF_CACHE_MAX_DEFAULT UINT64_MAX

struct sf_fs_config {
    const char *source;         /* SOURCE as given */
    const char *styles;         /* styles=DIR, or NULL: the default search (style.h) */
    const char *arbitrary;      /* arbitrary=DIR, or NULL: the default (style.h) */
    const char *cache_dir;      /* the cache folder, resolved */
    struct sf_settings set;     /* max_side, max_pixels, quality */
    enum sf_device device;
    unsigned gpu_idle;          /* seconds before an idle engine is released */
    unsigned max_threads;       /* FUSE worker threads at most (max_threads=) */
    uint64_t mem_max;           /* the memory budget in bytes (mem_max=); 0: the default (pipeline.h) */
    uint64_t cache_max;         /* bytes; 0 = no limit; SF_CACHE_MAX_DEFAULT: a tenth of the cache's filesystem */
    int confine;                /* -o confine */
    int allow_other;            /* -o allow_other (confines too) */
    const struct sf_remote_opts *remote;    /* redis=..., or NULL: no shared store */
    int compute;                /* SF_COMPUTE_* (pipeline.h): compute=local, auto or remote */
    uint64_t offload_max;       /* offload_max= (0: SF_OFFLOAD_MAX_DEFAULT) */
    unsigned offload_timeout;   /* offload_timeout= seconds (0: SF_OFFLOAD_TIMEOUT_DEFAULT) */
};

/* Check SOURCE (and, when confined, that the kernel has openat2), load the
 * styles, make the FUSE session from args, mount it on co->mountpoint, go
 * to the background unless co->foreground, and serve until unmounted or
 * stopped by SIGTERM, SIGINT or SIGHUP.  A failure before the mount is
 * said on stderr (Redis unreachable is not a failure: it is said, and the
 * mount serves locally until Redis is back).  Returns 0 (a clean unmount),
 * or -errno: -ENOENT (no source, no usable style, no password file),
 * -ENOSYS (confined without openat2), -EINVAL (a bad redis option),
 * -EACCES, -ENOMEM, -EIO (libfuse failed). */
int sf_fs_main(const struct sf_fs_config *c, struct fuse_args *args, const struct fuse_cmdline_opts *co);

#endif
