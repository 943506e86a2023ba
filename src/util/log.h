/*
 * log.h - the broker's log, with mosquitto's log types.
 *
 * A tern_log is a value owned by the broker (no global logger): a mask of
 * enabled types and a destination. Writes from several worker threads are
 * safe because each line is one stdio call, which POSIX locks.
 */
#ifndef TERN_UTIL_LOG_H
#define TERN_UTIL_LOG_H

#include <stdbool.h>
#include <stdio.h>

/* Log types, as mosquitto's `log_type` names them. */
enum tern_log_type {
	TERN_LOG_ERR = 1u << 0,         /* error */
	TERN_LOG_WARNING = 1u << 1,     /* warning */
	TERN_LOG_NOTICE = 1u << 2,      /* notice */
	TERN_LOG_INFO = 1u << 3,        /* information */
	TERN_LOG_SUBSCRIBE = 1u << 4,   /* subscribe */
	TERN_LOG_UNSUBSCRIBE = 1u << 5, /* unsubscribe */
	TERN_LOG_WEBSOCKETS = 1u << 6,  /* websockets */
	TERN_LOG_DEBUG = 1u << 7,       /* debug */
	TERN_LOG_ALL = 0xffu,
	TERN_LOG_DEFAULT = TERN_LOG_ERR | TERN_LOG_WARNING | TERN_LOG_NOTICE | TERN_LOG_INFO,
};

struct tern_log {
	unsigned mask;         /* enum tern_log_type bits */
	FILE *out;             /* NULL: logging off (unless syslog) */
	bool own_out;          /* out was opened by us and is closed by tern_log_close */
	bool syslog;           /* lines go to syslog(3) instead of out */
	bool timestamps;       /* prefix lines with a timestamp, as mosquitto */
	const char *ts_format; /* strftime format, or NULL for Unix seconds */
};

/* Writes one line (no trailing newline needed) if type is enabled. */
void tern_log_write(const struct tern_log *log, unsigned type, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* True if lines of this type would be written; lets callers skip work. */
static inline bool tern_log_on(const struct tern_log *log, unsigned type)
{
	return (log->out || log->syslog) && (log->mask & type);
}

/* Closes a destination we opened. */
void tern_log_close(struct tern_log *log);

#endif
