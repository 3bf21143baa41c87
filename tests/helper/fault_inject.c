/* fault_inject.c: an LD_PRELOAD library for the tests that makes one
 * library call fail, to check that stylefs reports it instead of going on.
 *
 *   LD_PRELOAD=build/tests/fault_inject.so STYLEFS_FAULT=fuse_loop_cfg_create stylefs ...
 *
 * Calls (STYLEFS_FAULT):
 *   fuse_loop_cfg_create   returns NULL, as it does when out of memory
 *   strdup:TEXT            strdup(TEXT) returns NULL (out of memory) for
 *                          that one string; every other strdup works */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct fuse_loop_config;

static int faulty(const char *call)
{
    const char *f = getenv("STYLEFS_FAULT");
    return f && !strcmp(f, call);
}

char *strdup(const char *str)
{
    const char *f = getenv("STYLEFS_FAULT");
    size_t n = strlen(str) + 1;
    char *p;

    if (f && !strncmp(f, "strdup:", 7) && !strcmp(f + 7, str)) {
        errno = ENOMEM;
        return NULL;
    }
    if ((p = malloc(n)))
        memcpy(p, str, n);
    return p;
}

struct fuse_loop_config *fuse_loop_cfg_create(void)
{
    struct fuse_loop_config *(*real)(void) =
        (struct fuse_loop_config * (*)(void)) dlsym(RTLD_NEXT, "fuse_loop_cfg_create");
    if (faulty("fuse_loop_cfg_create") || !real)
        return NULL;
    return real();
}
