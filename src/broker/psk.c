/*
 * psk.c - the psk_file reader and lookup; see psk.h.
 *
 * A flat array searched linearly: a PSK file names devices or bridges one
 * by one, tens of them, and it is looked up once per handshake, beside
 * which a scan is nothing. The lookup compares every entry's identity in
 * full, so its time does not tell how much of a guessed identity matched
 * the first entries; the key comparison is OpenSSL's, in the handshake.
 */
#include "broker/psk.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hex.h"

struct psk_entry {
	char identity[PSK_IDENTITY_MAX + 1];
	uint8_t key[PSK_KEY_MAX];
	size_t key_len;
};

struct psk_table {
	struct psk_entry *v;
	size_t n, cap;
};

/* One "identity:hexkey" line (trimmed) into e; a static reason when bad. */
static const char *parse_line(char *line, struct psk_entry *e)
{
	char *colon = strchr(line, ':');
	if (!colon)
		return "expected identity:key";
	size_t id_len = (size_t)(colon - line);
	if (id_len == 0)
		return "empty identity";
	if (id_len > PSK_IDENTITY_MAX)
		return "identity longer than 128 bytes";
	const char *hex = colon + 1;
	size_t hex_len = strlen(hex);
	if (hex_len == 0 || hex_len % 2)
		return "the key must be an even number of hexadecimal digits";
	if (hex_len / 2 > PSK_KEY_MAX)
		return "key longer than 256 bytes";
	for (size_t i = 0; i < hex_len; i += 2) {
		int hi = hex_digit(hex[i]), lo = hex_digit(hex[i + 1]);
		if (hi < 0 || lo < 0)
			return "the key is not hexadecimal";
		e->key[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(e->identity, line, id_len);
	e->identity[id_len] = '\0';
	e->key_len = hex_len / 2;
	return NULL;
}

enum tern_err psk_load(const char *path, struct psk_table **out, char *err, size_t errlen)
{
	*out = NULL;
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return TERN_E_SYS;
	}
	struct psk_table *t = calloc(1, sizeof(*t));
	enum tern_err rc = t ? TERN_OK : TERN_E_NOMEM;
	char line[1024];
	for (unsigned no = 1; rc == TERN_OK && fgets(line, sizeof(line), f); no++) {
		size_t len = strlen(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			snprintf(err, errlen, "%s:%u: line too long", path, no);
			rc = TERN_E_CONFIG;
			break;
		}
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
		               line[len - 1] == ' ' || line[len - 1] == '\t'))
			line[--len] = '\0';
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		if (t->n == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 8;
			struct psk_entry *v = realloc(t->v, cap * sizeof(*v));
			if (!v) {
				rc = TERN_E_NOMEM;
				break;
			}
			t->v = v;
			t->cap = cap;
		}
		const char *why = parse_line(p, &t->v[t->n]);
		if (why) {
			snprintf(err, errlen, "%s:%u: %s", path, no, why);
			rc = TERN_E_CONFIG;
			break;
		}
		for (size_t i = 0; i < t->n && !why; i++)
			if (strcmp(t->v[i].identity, t->v[t->n].identity) == 0)
				why = "identity given twice";
		if (why) {
			snprintf(err, errlen, "%s:%u: %s", path, no, why);
			rc = TERN_E_CONFIG;
			break;
		}
		t->n++;
	}
	if (rc == TERN_OK && ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		rc = TERN_E_SYS;
	}
	fclose(f);
	if (rc == TERN_E_NOMEM)
		snprintf(err, errlen, "%s: out of memory", path);
	if (rc) {
		psk_free(t);
		return rc;
	}
	*out = t;
	return TERN_OK;
}

size_t psk_key(const struct psk_table *t, const char *identity, uint8_t *key, size_t cap)
{
	if (!t || !identity)
		return 0;
	const struct psk_entry *hit = NULL;
	for (size_t i = 0; i < t->n; i++) {
		bool same = strcmp(t->v[i].identity, identity) == 0;
		if (same && !hit)
			hit = &t->v[i];
	}
	if (!hit || hit->key_len > cap)
		return 0;
	memcpy(key, hit->key, hit->key_len);
	return hit->key_len;
}

size_t psk_count(const struct psk_table *t)
{
	return t ? t->n : 0;
}

void psk_free(struct psk_table *t)
{
	if (!t)
		return;
	/* The keys are secrets: not left in freed memory. */
	if (t->v)
		explicit_bzero(t->v, t->cap * sizeof(*t->v));
	free(t->v);
	free(t);
}
