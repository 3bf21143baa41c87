/* util.h: small helpers shared by the CLI, the mount and the cache:
 * strict number, size and age parsing, whole-file reads, time, and the
 * stop flag that engines and networks poll.
 *
 * Every function returns 0 or -errno unless noted. */
#ifndef SF_UTIL_H
#define SF_UTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Parse a decimal unsigned integer in [min, max].  The whole string must be
 * consumed.  Returns 0, -EINVAL (not a number) or -ERANGE. */
int sf_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Sizes: "123", "500K", "500M", "2G", "1T" (binary units, optional "B" or
 * "iB").  Returns 0 or -EINVAL. */
int sf_parse_size(const char *s, uint64_t *bytes);
/* Ages: "90s", "30m", "12h", "30d", "2w"; a bare number is seconds.
 * Returns 0 or -EINVAL. */
int sf_parse_age(const char *s, uint64_t *seconds);
/* "1.5 MiB" style rendering into buf; returns buf. */
char *sf_fmt_size(uint64_t bytes, char *buf, size_t len);
/* "2026-11-22 14:09:00" in local time, or "-" for 0; returns buf. */
char *sf_fmt_time(uint64_t unix_s, char *buf, size_t len);
/* A name made safe for one line of output (the log, `stylefs styles`),
 * as `ls -b` writes it: a backslash becomes "\\", a control byte
 * (below 0x20, and 0x7f) "\n", "\t", "\r" or "\xHH"; other bytes (UTF-8
 * included) are kept.  Truncated to fit len (at least 1); returns buf. */
char *sf_escape(const char *in, char *buf, size_t len);

/* Read a whole regular file into a malloc'd buffer.  Refuses files larger
 * than max_bytes with -EFBIG.  On success *data must be freed by the caller.
 * Opens without blocking, so a FIFO, socket or device is refused at once.
 * Returns 0 or -errno (-ENOENT, -EACCES, -EISDIR, -EINVAL (not a regular
 * file), -EFBIG, -ENOMEM, -EIO). */
int sf_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *len);
/* Same for an open descriptor (reads from offset 0). */
int sf_read_fd(int fd, size_t max_bytes, uint8_t **data, size_t *len);
/* Write all of buf to path atomically: a temporary file beside it with an
 * unpredictable name, created exclusively, then renamed over it.  An
 * existing file keeps its mode (a new one gets 0666 less the umask), and
 * an existing symlink is written through (the link stays).
 * Returns 0 or -errno. */
int sf_write_file_atomic(const char *path, const void *buf, size_t len);

uint64_t sf_now(void);          /* wall clock, seconds since the epoch */
double sf_monotonic(void);      /* monotonic clock, seconds */
/* A condition variable whose timed waits count on the monotonic clock (the
 * deadlines of sf_monotonic()), for the idle reaper (idle.h). Returns 0 or an errno. */
int sf_cond_init_monotonic(pthread_cond_t *c);
/* Wait on c (made by sf_cond_init_monotonic; m held) until signalled or
 * until deadline, in sf_monotonic() seconds.  Returns 0 or ETIMEDOUT. */
int sf_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, double deadline);

/* Lower-case extension of a path without the dot ("" if none) in buf. */
const char *sf_path_ext(const char *path, char *buf, size_t len);

/* A stop flag that a signal handler sets and engines poll from other
 * threads: a lock-free atomic (async-signal-safe, and visible across
 * threads), read with sf_cancelled(). */
typedef atomic_int sf_cancel_flag;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "a stop flag set in a signal handler must be lock-free");
static inline int sf_cancelled(const sf_cancel_flag *c)
{
    return c && atomic_load_explicit(c, memory_order_relaxed);
}

/* "entry" or "entries": n's noun, singular for 1 (word, plural). */
#define SF_PLURAL(n, one, many) ((n) == 1 ? (one) : (many))

#endif
