/* idle.h: the one idle reaper: release something costly (an engine's
 * backend and its GPU context, the painting transformer's plan) once it
 * has gone unused for a while, and hold no timer while nothing is held.
 *
 * An owner embeds a struct sf_idle and lends it the mutex that guards the
 * costly thing.  After each use, under that mutex, it calls
 * sf_idle_touch(); the first touch with a limit set starts the reaper
 * thread.  The reaper sleeps on `wake` with a deadline only while the
 * owner's held() says there is something to release; when the deadline
 * passes with no newer touch it calls release() and then sleeps without a
 * deadline until the next touch.
 *
 * DESIGN: one thread per owner, started lazily, joined by sf_idle_stop().
 * Every field is guarded by *lock (the owner's): held() and release() run
 * with it held, so they see and change the owner's state safely.  Lock
 * order: the owner's lock only; the reaper takes no other.
 * Functions return 0 or -errno where they return anything. */
#ifndef SF_IDLE_H
#define SF_IDLE_H

#include <pthread.h>

struct sf_idle {
    pthread_mutex_t *lock;          /* the owner's: guards all below */
    pthread_cond_t wake;            /* a touch, a new limit, or stop (monotonic clock) */
    unsigned secs;                  /* release after this long unused; 0: never */
    double last_use;                /* sf_monotonic() of the last touch */
    int running, stop;              /* the reaper thread exists; it must end */
    pthread_t thread;
    void *owner;
    int (*held)(void *owner);       /* is there something to release now? */
    void (*release)(void *owner);   /* release it */
};

/* Set up r for owner (nothing starts yet).  Returns 0 or -errno (the
 * condition variable could not be made). */
int sf_idle_init(struct sf_idle *r, pthread_mutex_t *lock, void *owner, int (*held)(void *),
                 void (*release)(void *));
/* The limit in seconds (0: never release); takes *lock itself. */
void sf_idle_set(struct sf_idle *r, unsigned secs);
/* A use just ended: call with *lock held.  Stamps the time, starts the
 * reaper at the first use with a limit, wakes it. */
void sf_idle_touch(struct sf_idle *r);
/* Stop and join the reaper (call without *lock held), then free the
 * condition variable.  Safe on a reaper that never started. */
void sf_idle_stop(struct sf_idle *r);

#endif
