/* log.h: one place where stylefs reports what it does and what failed.
 *
 * Messages go to stderr as "stylefs: <message>" (the CLI form), or to
 * syslog once the mount has daemonized (sf_log_use_syslog), or to a file
 * (the mount's log=FILE, sf_log_use_file), which wins over both: one line
 * per message, appended,
 *   2026-12-04T18:42:57.123Z stylefs[PID] LEVEL: message
 * with the time in UTC and LEVEL one of error, warning, notice, info,
 * debug.  A message is one line whatever it names: its control bytes and
 * backslashes are escaped as `ls -b` does (util.h sf_escape).  Thread-safe: each message is formatted into one buffer and
 * written with one call (O_APPEND: lines from several processes do not
 * interleave). */
#ifndef SF_LOG_H
#define SF_LOG_H

enum sf_log_level { SF_LOG_ERR = 0, SF_LOG_WARN, SF_LOG_NOTICE, SF_LOG_INFO, SF_LOG_DEBUG };

/* Messages above `level` are dropped.  Default: SF_LOG_NOTICE (changes a
 * user should see, such as a style added to a mount, are notices). */
void sf_log_set_level(enum sf_log_level level);
/* Route further messages to syslog(3) under the ident "stylefs". */
void sf_log_use_syslog(void);
/* Append further messages to the file at path (created 0600).  0 or
 * -errno (the file cannot be opened). */
int sf_log_use_file(const char *path);
void sf_log(enum sf_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define sf_err(...)   sf_log(SF_LOG_ERR, __VA_ARGS__)
#define sf_warn(...)  sf_log(SF_LOG_WARN, __VA_ARGS__)
#define sf_notice(...) sf_log(SF_LOG_NOTICE, __VA_ARGS__)
#define sf_info(...)  sf_log(SF_LOG_INFO, __VA_ARGS__)
#define sf_debug(...) sf_log(SF_LOG_DEBUG, __VA_ARGS__)

#endif
