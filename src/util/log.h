/*
 * log.h - the broker's log, with mosquitto's log types.
 *
 * A log is a value owned by the broker (no global logger): a mask of
 * enabled types and a destination (a FILE, or syslog).
 *
 * Writing is asynchronous once log_start() has run: a worker formats
 * its line and copies it into a bounded buffer under a mutex held only for
 * that copy; a writer thread of the log takes the buffered lines in one
 * swap and does the I/O (one write and one fflush per batch, or syslog(3)
 * per line) with the mutex released. So a worker never waits for a disk, a
 * pipe or syslogd. When the buffer is full the line is counted, not
 * written, and the writer reports how many were lost in its next batch.
 * Before log_start() and after log_close() lines are written
 * synchronously by the caller: startup errors are on the terminal before
 * the process exits, whatever happens next.
 *
 * Lines that repeat per message (drops, denied publishes) go through a
 * rate limiter first (util/log_limit.h).
 */
#ifndef TERN_UTIL_LOG_H
#define TERN_UTIL_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "tern/error.h"

/* Log types, as mosquitto's `log_type` names them. */
enum log_type {
	LOG_TYPE_ERR = 1u << 0,         /* error */
	LOG_TYPE_WARNING = 1u << 1,     /* warning */
	LOG_TYPE_NOTICE = 1u << 2,      /* notice */
	LOG_TYPE_INFO = 1u << 3,        /* information */
	LOG_TYPE_SUBSCRIBE = 1u << 4,   /* subscribe */
	LOG_TYPE_UNSUBSCRIBE = 1u << 5, /* unsubscribe */
	LOG_TYPE_WEBSOCKETS = 1u << 6,  /* websockets */
	LOG_TYPE_DEBUG = 1u << 7,       /* debug */
	LOG_TYPE_ALL = 0xffu,
	LOG_TYPE_DEFAULT = LOG_TYPE_ERR | LOG_TYPE_WARNING | LOG_TYPE_NOTICE | LOG_TYPE_INFO,
};

struct log_writer;

struct log {
	unsigned mask;         /* enum log_type bits */
	FILE *out;             /* NULL: logging off (unless syslog) */
	bool own_out;          /* out was opened by us and is closed by log_close */
	bool syslog;           /* lines go to syslog(3) instead of out */
	bool timestamps;       /* prefix lines with a timestamp, as mosquitto */
	const char *ts_format; /* strftime format, or NULL for Unix seconds */
	/* The writer thread and its buffer, from log_start() to
	 * log_close(); NULL: lines are written by the caller. Atomic
	 * because a thread that exists before the start (the store's) may
	 * log while it is set. */
	_Atomic(struct log_writer *) writer;
};

/* Writes one line (no trailing newline needed) if type is enabled: hands
 * it to the writer thread, or writes it before the start. Lines longer
 * than 1023 bytes are cut. */
void log_write(const struct log *log, unsigned type, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* True if lines of this type would be written; lets callers skip work. */
static inline bool log_on(const struct log *log, unsigned type)
{
	return (log->out || log->syslog) && (log->mask & type);
}

/* Starts the writer thread, after which log_write() no longer does
 * I/O itself. Call once, with the destination set. With no destination
 * nothing is started. TERN_OK, or TERN_E_NOMEM / TERN_E_SYS (then lines
 * stay synchronous, and the log still works). */
TERN_MUST_CHECK enum tern_err log_start(struct log *log);

/* Stops the writer after it has written every line handed to it (so what
 * was logged before a shutdown is on disk after it), then closes a
 * destination we opened. No other thread may log during or after the
 * call. */
void log_close(struct log *log);

#endif
