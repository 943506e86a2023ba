/*
 * log.c - see log.h. Lines look like mosquitto's: "1700000000: message", or
 * with log_timestamp_format "2026-11-25T22:33:10: message"; with syslog
 * the level follows the log type.
 *
 * The writer. Producers append records (time, type, length, text) to the
 * writer's `fill` buffer under its mutex; the writer thread sleeps on a
 * condition variable until `fill` holds something, swaps it with its
 * `drain` buffer (two pointers), and writes the records with the mutex
 * released. A producer signals only when it finds `fill` empty: the
 * writer is either asleep then, or about to look at `fill` again before
 * it sleeps, so no wakeup is lost and a busy log costs no futex call per
 * line. The time is taken by the producer (when the event happened) and
 * formatted by the writer (strftime and localtime are not cheap).
 *
 * Order: one buffer, appended under one mutex, written in order; so lines
 * of one thread keep their order, and lines of two threads never mix.
 */
#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#define LINE_MAX_BYTES 1024
/* Each of the two buffers: some 2,000 lines of a burst the writer has not
 * caught up with yet. The rate limiter keeps per-message lines far below. */
#define BUF_BYTES (256u * 1024u)

struct rec {
	int64_t time; /* seconds since the epoch */
	uint32_t type;
	uint32_t len; /* bytes of text that follow, no NUL */
};

struct log_writer {
	const struct log *log; /* the destination */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	char *fill; /* producers append here */
	size_t fill_len;
	char *drain;   /* the writer's, while it writes */
	uint64_t lost; /* lines that found fill full, not yet reported */
	bool stop;
	pthread_t thread;
};

static int syslog_level(unsigned type)
{
	if (type & LOG_TYPE_ERR)
		return LOG_ERR;
	if (type & LOG_TYPE_WARNING)
		return LOG_WARNING;
	if (type & LOG_TYPE_NOTICE)
		return LOG_NOTICE;
	if (type & LOG_TYPE_DEBUG)
		return LOG_DEBUG;
	return LOG_INFO;
}

/* Writes one line to the destination, with its timestamp. */
static void emit(const struct log *log, time_t t, unsigned type, const char *text, size_t len)
{
	if (log->syslog) {
		syslog(syslog_level(type), "%.*s", (int)len, text);
		return;
	}
	if (!log->out)
		return;
	char ts[128];
	int n = 0;
	if (log->timestamps) {
		if (log->ts_format && log->ts_format[0]) {
			struct tm tm;
			localtime_r(&t, &tm);
			n = (int)strftime(ts, sizeof(ts) - 2, log->ts_format, &tm);
			ts[n++] = ':';
			ts[n++] = ' ';
		} else {
			n = snprintf(ts, sizeof(ts), "%lld: ", (long long)t);
		}
	}
	/* One call per line: with the synchronous path, two threads may
	 * write at once, and stdio locks per call. */
	fprintf(log->out, "%.*s%.*s\n", n, ts, (int)len, text);
}

static void *writer_main(void *arg)
{
	struct log_writer *wr = arg;
	const struct log *log = wr->log;
	pthread_mutex_lock(&wr->lock);
	for (;;) {
		while (!wr->fill_len && !wr->lost && !wr->stop)
			pthread_cond_wait(&wr->wake, &wr->lock);
		if (!wr->fill_len && !wr->lost && wr->stop)
			break;
		char *batch = wr->fill;
		size_t len = wr->fill_len;
		uint64_t lost = wr->lost;
		wr->fill = wr->drain;
		wr->fill_len = 0;
		wr->lost = 0;
		wr->drain = NULL;
		pthread_mutex_unlock(&wr->lock);

		for (size_t at = 0; at < len;) {
			struct rec r;
			memcpy(&r, batch + at, sizeof(r));
			emit(log, (time_t)r.time, r.type, batch + at + sizeof(r), r.len);
			at += sizeof(r) + r.len;
		}
		if (lost) {
			char text[128];
			int n = snprintf(
			        text, sizeof(text),
			        "Warning: %llu log lines lost: the log writer fell behind.",
			        (unsigned long long)lost);
			emit(log, time(NULL), LOG_TYPE_WARNING, text, (size_t)n);
		}
		if (log->out && !log->syslog)
			fflush(log->out);

		pthread_mutex_lock(&wr->lock);
		wr->drain = batch;
	}
	pthread_mutex_unlock(&wr->lock);
	return NULL;
}

/* Appends one record for the writer; false when it was not running. */
static bool hand_over(const struct log *log, unsigned type, time_t t, const char *text, size_t len)
{
	struct log_writer *wr = atomic_load_explicit(&log->writer, memory_order_acquire);
	if (!wr)
		return false;
	struct rec r = {(int64_t)t, type, (uint32_t)len};
	pthread_mutex_lock(&wr->lock);
	bool was_empty = wr->fill_len == 0 && wr->lost == 0;
	if (wr->fill_len + sizeof(r) + len > BUF_BYTES) {
		wr->lost++;
	} else {
		memcpy(wr->fill + wr->fill_len, &r, sizeof(r));
		memcpy(wr->fill + wr->fill_len + sizeof(r), text, len);
		wr->fill_len += sizeof(r) + len;
	}
	pthread_mutex_unlock(&wr->lock);
	if (was_empty)
		pthread_cond_signal(&wr->wake);
	return true;
}

void log_write(const struct log *log, unsigned type, const char *fmt, ...)
{
	if (!log_on(log, type))
		return;
	char line[LINE_MAX_BYTES];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	time_t t = time(NULL);
	if (hand_over(log, type, t, line, len))
		return;
	emit(log, t, type, line, len);
	if (log->out && !log->syslog)
		fflush(log->out);
}

enum tern_err log_start(struct log *log)
{
	if (atomic_load(&log->writer) || (!log->out && !log->syslog))
		return TERN_OK;
	struct log_writer *wr = calloc(1, sizeof(*wr));
	if (!wr)
		return TERN_E_NOMEM;
	wr->fill = malloc(BUF_BYTES);
	wr->drain = malloc(BUF_BYTES);
	if (!wr->fill || !wr->drain) {
		free(wr->fill);
		free(wr->drain);
		free(wr);
		return TERN_E_NOMEM;
	}
	enum tern_err err = TERN_E_SYS;
	if (pthread_mutex_init(&wr->lock, NULL))
		goto fail_lock;
	if (pthread_cond_init(&wr->wake, NULL))
		goto fail_cond;
	wr->log = log;
	if (pthread_create(&wr->thread, NULL, writer_main, wr) == 0) {
		atomic_store_explicit(&log->writer, wr, memory_order_release);
		return TERN_OK;
	}
	pthread_cond_destroy(&wr->wake);
fail_cond:
	pthread_mutex_destroy(&wr->lock);
fail_lock:
	free(wr->fill);
	free(wr->drain);
	free(wr);
	return err;
}

void log_close(struct log *log)
{
	struct log_writer *wr = atomic_exchange(&log->writer, NULL);
	if (wr) {
		pthread_mutex_lock(&wr->lock);
		wr->stop = true;
		pthread_mutex_unlock(&wr->lock);
		pthread_cond_signal(&wr->wake);
		/* The writer empties its buffer before it returns. */
		pthread_join(wr->thread, NULL);
		pthread_cond_destroy(&wr->wake);
		pthread_mutex_destroy(&wr->lock);
		free(wr->fill);
		free(wr->drain);
		free(wr);
	}
	if (log->own_out && log->out)
		fclose(log->out);
	if (log->syslog)
		closelog();
	log->out = NULL;
	log->own_out = false;
	log->syslog = false;
}
