/* idle.c: the idle reaper shared by the engines and the painting networks
 * (see idle.h for the design). */
#include "idle.h"
#include "util.h"

#include <errno.h>

int sf_idle_init(struct sf_idle *r, pthread_mutex_t *lock, void *owner, int (*held)(void *),
                 void (*release)(void *))
{
    int rc;

    *r = (struct sf_idle){ .lock = lock, .owner = owner, .held = held, .release = release };
    if ((rc = sf_cond_init_monotonic(&r->wake)))        /* deadlines on sf_monotonic() */
        return -rc;
    return 0;
}

void sf_idle_set(struct sf_idle *r, unsigned secs)
{
    pthread_mutex_lock(r->lock);
    r->secs = secs;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(r->lock);
}

static void *reaper_main(void *arg)
{
    struct sf_idle *r = arg;

    pthread_mutex_lock(r->lock);
    while (!r->stop) {
        if (!r->secs || !r->held(r->owner)) {
            pthread_cond_wait(&r->wake, r->lock);       /* nothing to release: no timer */
            continue;
        }
        double due = r->last_use + r->secs;
        if (sf_monotonic() >= due) {
            r->release(r->owner);
            continue;
        }
        sf_cond_wait_until(&r->wake, r->lock, due);
    }
    pthread_mutex_unlock(r->lock);
    return NULL;
}

void sf_idle_touch(struct sf_idle *r)
{
    r->last_use = sf_monotonic();
    if (r->secs && !r->running)
        r->running = pthread_create(&r->thread, NULL, reaper_main, r) == 0;
    pthread_cond_signal(&r->wake);
}

void sf_idle_stop(struct sf_idle *r)
{
    pthread_mutex_lock(r->lock);
    r->stop = 1;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(r->lock);
    if (r->running)
        pthread_join(r->thread, NULL);
    r->running = 0;
    pthread_cond_destroy(&r->wake);
}
