/*
 * sink.c - which sink a URL names (sink.h).
 */
#include "archive/sink.h"

#include <stdio.h>
#include <string.h>

static const struct archive_sink_ops *const sinks[] = {
        &archive_sqlite_ops,
        &archive_pg_ops,
        &archive_mongo_ops,
};

static bool is(const char *scheme, const char *url, size_t n)
{
	return scheme && strlen(scheme) == n && strncmp(url, scheme, n) == 0;
}

const struct archive_sink_ops *archive_sink_find(const char *url, char *err, size_t errlen)
{
	const char *colon = strchr(url, ':');
	size_t n = colon ? (size_t)(colon - url) : 0;
	for (size_t i = 0; colon && i < sizeof(sinks) / sizeof(sinks[0]); i++)
		if (is(sinks[i]->scheme, url, n) || is(sinks[i]->alias, url, n))
			return sinks[i];
	snprintf(err, errlen, "'%s': expected sqlite:PATH, postgresql://... or mongodb://...", url);
	return NULL;
}

bool archive_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
		if (!alpha && (i == 0 || c < '0' || c > '9'))
			return false;
	}
	return true;
}
