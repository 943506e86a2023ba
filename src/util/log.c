/*
 * log.c - see log.h. Lines look like mosquitto's: "1700000000: message", or
 * with log_timestamp_format "2026-11-25T22:33:10: message"; with syslog
 * the level follows the log type.
 */
#include "util/log.h"

#include <stdarg.h>
#include <syslog.h>
#include <time.h>

static int syslog_level(unsigned type)
{
	if (type & TERN_LOG_ERR)
		return LOG_ERR;
	if (type & TERN_LOG_WARNING)
		return LOG_WARNING;
	if (type & TERN_LOG_NOTICE)
		return LOG_NOTICE;
	if (type & TERN_LOG_DEBUG)
		return LOG_DEBUG;
	return LOG_INFO;
}

void tern_log_write(const struct tern_log *log, unsigned type, const char *fmt, ...)
{
	if (!tern_log_on(log, type))
		return;
	char line[1024];
	int n = 0;
	if (log->timestamps && !log->syslog) {
		time_t t = time(NULL);
		if (log->ts_format && log->ts_format[0]) {
			struct tm tm;
			localtime_r(&t, &tm);
			n = (int)strftime(line, sizeof(line) - 3, log->ts_format, &tm);
			line[n++] = ':';
			line[n++] = ' ';
		} else {
			n = snprintf(line, sizeof(line), "%lld: ", (long long)t);
		}
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (log->syslog) {
		syslog(syslog_level(type), "%s", line);
		return;
	}
	/* One call per line so that lines of two workers never interleave. */
	fprintf(log->out, "%s\n", line);
	fflush(log->out);
}

void tern_log_close(struct tern_log *log)
{
	if (log->own_out && log->out)
		fclose(log->out);
	if (log->syslog)
		closelog();
	log->out = NULL;
	log->own_out = false;
	log->syslog = false;
}
