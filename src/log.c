/* log.c: stderr, syslog or file output for stylefs (see log.h). */
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum sf_log_level g_level = SF_LOG_NOTICE;
static int g_syslog;
static int g_file = -1;             /* log=FILE's fd, or -1 */

int sf_log_use_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);

    if (fd < 0)
        return -errno;
    if (g_file >= 0)
        close(g_file);
    g_file = fd;
    return 0;
}

void sf_log_set_level(enum sf_log_level level) { g_level = level; }

void sf_log_use_syslog(void)
{
    openlog("stylefs", LOG_PID, LOG_DAEMON);
    g_syslog = 1;
}

void sf_log(enum sf_log_level level, const char *fmt, ...)
{
    static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG };
    char raw[1024], buf[1024];
    va_list ap;

    if (level > g_level)
        return;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    sf_escape(raw, buf, sizeof buf);    /* a name's newline never splits a line */
    if (g_file >= 0) {
        static const char *const names[] = { "error", "warning", "notice", "info", "debug" };
        char line[1200], t[32];
        struct timespec now;
        struct tm tm;
        int n;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
        n = snprintf(line, sizeof line, "%s.%03ldZ stylefs[%ld] %s: %s\n", t, now.tv_nsec / 1000000L,
                     (long)getpid(), names[level], buf);
        if (n > (int)sizeof line - 1) {
            n = sizeof line - 1;
            line[n - 1] = '\n';
        }
        if (write(g_file, line, (size_t)n) < 0) {
            /* nowhere left to report it */
        }
    } else if (g_syslog) {
        syslog(prio[level], "%s", buf);
    } else {
        char line[1100];
        int n = snprintf(line, sizeof line, "stylefs: %s\n", buf);
        if (n > (int)sizeof line - 1)
            n = sizeof line - 1;
        if (write(STDERR_FILENO, line, (size_t)n) < 0) {
            /* nowhere left to report it */
        }
    }
}
