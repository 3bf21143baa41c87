/* util.c: parsing, formatting and file helpers (see util.h). */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int sf_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return -ERANGE;
    if (*end)
        return -EINVAL;
    if (v < min || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

static int split_number(const char *s, uint64_t *num, const char **suffix)
{
    char *end;
    unsigned long long v;

    if (!s || !isdigit((unsigned char)*s))
        return -EINVAL;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno)
        return -EINVAL;
    *num = v;
    *suffix = end;
    return 0;
}

static int mul_checked(uint64_t a, uint64_t b, uint64_t *out)
{
    if (b && a > UINT64_MAX / b)
        return -EINVAL;
    *out = a * b;
    return 0;
}

int sf_parse_size(const char *s, uint64_t *bytes)
{
    uint64_t n, mult = 1;
    const char *suf;

    if (split_number(s, &n, &suf))
        return -EINVAL;
    switch (toupper((unsigned char)*suf)) {
    case '\0': return (*bytes = n), 0;
    case 'B': mult = 1; break;
    case 'K': mult = 1ULL << 10; break;
    case 'M': mult = 1ULL << 20; break;
    case 'G': mult = 1ULL << 30; break;
    case 'T': mult = 1ULL << 40; break;
    default: return -EINVAL;
    }
    suf++;
    if (mult > 1 && (*suf == 'i' || *suf == 'I'))
        suf++;
    if (mult > 1 && (*suf == 'b' || *suf == 'B'))
        suf++;
    if (*suf)
        return -EINVAL;
    return mul_checked(n, mult, bytes);
}

int sf_parse_age(const char *s, uint64_t *seconds)
{
    uint64_t n, mult;
    const char *suf;

    if (split_number(s, &n, &suf))
        return -EINVAL;
    switch (*suf) {
    case '\0': case 's': mult = 1; break;
    case 'm': mult = 60; break;
    case 'h': mult = 3600; break;
    case 'd': mult = 86400; break;
    case 'w': mult = 7 * 86400; break;
    default: return -EINVAL;
    }
    if (*suf && suf[1])
        return -EINVAL;
    return mul_checked(n, mult, seconds);
}

char *sf_fmt_size(uint64_t bytes, char *buf, size_t len)
{
    static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)bytes;
    int u = 0;

    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, len, "%.1f %s", v, unit[u]);
    return buf;
}

char *sf_fmt_time(uint64_t unix_s, char *buf, size_t len)
{
    struct tm tm;
    time_t t = (time_t)unix_s;

    if (!unix_s || !localtime_r(&t, &tm))
        snprintf(buf, len, "-");
    else
        strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

char *sf_escape(const char *in, char *buf, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
        char e[5];
        size_t k = 0;
        if (*p == '\\' || *p == '\n' || *p == '\t' || *p == '\r') {
            e[k++] = '\\';
            e[k++] = *p == '\n' ? 'n' : *p == '\t' ? 't' : *p == '\r' ? 'r' : '\\';
        } else if (*p < 0x20 || *p == 0x7f) {
            e[k++] = '\\';
            e[k++] = 'x';
            e[k++] = hex[*p >> 4];
            e[k++] = hex[*p & 15];
        } else {
            e[k++] = (char)*p;
        }
        if (n + k >= len)
            break;
        memcpy(buf + n, e, k);
        n += k;
    }
    buf[n] = 0;
    return buf;
}

int sf_read_fd(int fd, size_t max_bytes, uint8_t **data, size_t *len)
{
    struct stat st;
    uint8_t *buf;
    size_t cap, n = 0;

    if (fstat(fd, &st))
        return -errno;
    if (S_ISDIR(st.st_mode))
        return -EISDIR;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    if ((uint64_t)st.st_size > max_bytes)
        return -EFBIG;
    /* The size may change under us: read until EOF, within max_bytes. */
    cap = (size_t)st.st_size + 1;
    buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        ssize_t r;
        if (n == cap) {
            size_t ncap = cap * 2;
            uint8_t *nb;
            if (cap > max_bytes) {
                free(buf);
                return -EFBIG;
            }
            nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
            cap = ncap;
        }
        r = pread(fd, buf + n, cap - n, (off_t)n);
        if (r < 0) {
            int e = errno;
            if (e == EINTR)
                continue;
            free(buf);
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > max_bytes) {
        free(buf);
        return -EFBIG;
    }
    *data = buf;
    *len = n;
    return 0;
}

int sf_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *len)
{
    /* O_NONBLOCK: a FIFO with an image's name must not hang the open;
     * sf_read_fd then refuses anything but a regular file */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    int rc;

    if (fd < 0)
        return -errno;
    rc = sf_read_fd(fd, max_bytes, data, len);
    close(fd);
    return rc;
}

int sf_write_file_atomic(const char *path, const void *buf, size_t len)
{
    char real[PATH_MAX], tmp[PATH_MAX + 16];
    const uint8_t *p = buf;
    struct stat st;
    mode_t mode, mask;
    int fd, rc = 0;

    /* an existing output that is a link is written through: the link
     * stays and its target is replaced */
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        if (!realpath(path, real))
            return -errno;
        path = real;
    }
    /* an existing file keeps its mode; a new one gets 0666 less the umask */
    if (stat(path, &st) == 0) {
        mode = st.st_mode & 07777;
    } else {
        mask = umask(0);
        umask(mask);
        mode = 0666 & ~mask;
    }
    /* an unpredictable name, created exclusively (mkostemp: O_EXCL, 0600) */
    if (snprintf(tmp, sizeof tmp, "%s.XXXXXX", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fchmod(fd, mode)) {
        rc = -errno;
        goto out_unlink;
    }
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto out_unlink;
        }
        p += w;
        len -= (size_t)w;
    }
    if (close(fd)) {
        fd = -1;
        rc = -errno;
        goto out_unlink;
    }
    fd = -1;
    if (rename(tmp, path)) {
        rc = -errno;
        goto out_unlink;
    }
    return 0;
out_unlink:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}

uint64_t sf_now(void)
{
    /* STYLEFS_NOW=<unix seconds> fixes the clock: a test hook for ages. */
    const char *fake = getenv("STYLEFS_NOW");
    uint64_t v;

    if (fake && !sf_parse_u64(fake, 1, UINT64_MAX, &v))
        return v;
    return (uint64_t)time(NULL);
}

double sf_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int sf_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, double deadline)
{
    struct timespec ts = { .tv_sec = (time_t)deadline,
                           .tv_nsec = (long)((deadline - (double)(time_t)deadline) * 1e9) };

    return pthread_cond_timedwait(c, m, &ts);
}

int sf_cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);

    if (rc)
        return rc;
    if (!(rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)))
        rc = pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

const char *sf_path_ext(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash + 1 : path, '.');
    size_t i = 0;

    if (dot && dot != (slash ? slash + 1 : path))
        for (dot++; *dot && i + 1 < len; dot++)
            buf[i++] = (char)tolower((unsigned char)*dot);
    buf[i] = '\0';
    return buf;
}
