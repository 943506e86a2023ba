/*
 * log.c - see log.h. Lines look like mosquitto's: "1700000000: message".
 */
#include "util/log.h"

#include <stdarg.h>
#include <time.h>

void tern_log_write(const struct tern_log *log, unsigned type, const char *fmt, ...)
{
	if (!tern_log_on(log, type))
		return;
	char line[1024];
	int n = 0;
	if (log->timestamps)
		n = snprintf(line, sizeof(line), "%lld: ", (long long)time(NULL));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One call per line so that lines of two workers never interleave. */
	fprintf(log->out, "%s\n", line);
	fflush(log->out);
}

void tern_log_close(struct tern_log *log)
{
	if (log->own_out && log->out)
		fclose(log->out);
	log->out = NULL;
	log->own_out = false;
}
