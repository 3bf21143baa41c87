/* log.c: stderr or syslog output for stylefs (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

static enum sf_log_level g_level = SF_LOG_NOTICE;
static int g_syslog;

void sf_log_set_level(enum sf_log_level level) { g_level = level; }

void sf_log_use_syslog(void)
{
    openlog("stylefs", LOG_PID, LOG_DAEMON);
    g_syslog = 1;
}

void sf_log(enum sf_log_level level, const char *fmt, ...)
{
    static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG };
    char buf[1024];
    va_list ap;

    if (level > g_level)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (g_syslog) {
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
