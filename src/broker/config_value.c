/*
 * config_value.c - the values of mosquitto.conf's directives; see
 * config_int.h.
 *
 * Each parser checks a value as strictly as mosquitto does (a number must
 * be a whole number in range, a boolean "true" or "false") and, when it
 * does not pass, says so through config_fail(), which names the file and
 * the line. They store nothing on error, so a refused line leaves the
 * configuration as it was.
 */
#include "broker/config_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum tern_err config_fail(struct config_ctx *c, const char *fmt, ...)
{
	int n = snprintf(c->err, c->errlen, "%s:%d: ", c->file, c->line);
	if (n < 0 || (size_t)n >= c->errlen)
		n = 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return TERN_E_CONFIG;
}

enum tern_err config_parse_u64(struct config_ctx *c, const char *name, const char *s, uint64_t min,
                               uint64_t max, uint64_t *out)
{
	if (!s)
		return config_fail(c, "%s needs a value", name);
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return config_fail(c, "%s: '%s' is not a whole number from %llu to %llu", name, s,
		                   (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return TERN_OK;
}

enum tern_err config_parse_bool(struct config_ctx *c, const char *name, const char *s, bool *out)
{
	if (s && strcmp(s, "true") == 0)
		*out = true;
	else if (s && strcmp(s, "false") == 0)
		*out = false;
	else
		return config_fail(c, "%s: expected true or false, got '%s'", name, s ? s : "");
	return TERN_OK;
}

enum tern_err config_copy_value(struct config_ctx *c, const char *key, const char *v, char *dst,
                                size_t cap)
{
	if (!v || !v[0])
		return config_fail(c, "%s needs a value", key);
	if (strlen(v) >= cap)
		return config_fail(c, "%s: value too long", key);
	strcpy(dst, v);
	return TERN_OK;
}

/* mosquitto's durations: a number with h, d, w, m (months) or y. */
enum tern_err config_parse_duration(struct config_ctx *c, const char *key, const char *v,
                                    uint32_t *out)
{
	char *end;
	if (!v || !*v)
		return config_fail(c, "%s needs a value", key);
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	uint64_t mult = 0;
	if (end == v || errno || v[0] == '-')
		mult = 0;
	else if (*end == 'h' && !end[1])
		mult = 3600;
	else if (*end == 'd' && !end[1])
		mult = 86400;
	else if (*end == 'w' && !end[1])
		mult = 7 * 86400;
	else if (*end == 'm' && !end[1])
		mult = 30 * 86400;
	else if (*end == 'y' && !end[1])
		mult = 365 * 86400;
	if (!mult || n == 0 || n > UINT32_MAX / mult)
		return config_fail(c, "%s: '%s' is not a duration like 2h, 14d, 1w, 6m or 1y", key,
		                   v);
	*out = (uint32_t)(n * mult);
	return TERN_OK;
}

void config_store_uint(void *field, size_t size, uint64_t v)
{
	uint8_t u8 = (uint8_t)v;
	uint16_t u16 = (uint16_t)v;
	uint32_t u32 = (uint32_t)v;

	switch (size) {
	case 1:
		memcpy(field, &u8, 1);
		break;
	case 2:
		memcpy(field, &u16, 2);
		break;
	case 4:
		memcpy(field, &u32, 4);
		break;
	case 8:
		memcpy(field, &v, 8);
		break;
	default: /* NO_FIELD: checked, not kept */
		break;
	}
}

const struct config_choice *config_choice_find(const struct config_choice *table, const char *v)
{
	for (const struct config_choice *ch = table; v && ch->name; ch++)
		if (strcmp(v, ch->name) == 0)
			return ch;
	return NULL;
}
