/*
 * log_limit.c - rate limiting of repeated log lines; see log_limit.h.
 *
 * An entry is one open window of one (kind, client): created by the event
 * that wrote its line, it counts the events after it. Its map key is the
 * kind's address followed by (a prefix of) the client id, stored in the
 * entry itself. Entries are also chained in creation order, which is the
 * order their windows end in (all windows have the same length), so a tick
 * only looks at the head of the chain.
 */
#include "util/log_limit.h"

#include <stdlib.h>
#include <string.h>

struct log_limit_entry {
	struct log_limit_entry *next;
	const struct log_kind *kind;
	uint64_t since; /* when the window began: its line was written */
	uint64_t count; /* events since, not written */
	bool cut;       /* the client id was longer than the key keeps */
	uint32_t klen;
	unsigned char key[]; /* kind pointer, then the client id */
};

#define KIND_BYTES sizeof(const struct log_kind *)

void log_limiter_init(struct log_limiter *l, const struct log *log, const struct hash_key *hk,
                      uint64_t window_ms)
{
	memset(l, 0, sizeof(*l));
	l->log = log;
	l->hk = *hk;
	l->window_ms = window_ms;
}

static const char *prefix_of(unsigned type)
{
	if (type & LOG_TYPE_ERR)
		return "Error: ";
	if (type & LOG_TYPE_WARNING)
		return "Warning: ";
	return "";
}

/* Whole seconds covering ms, at least 1. */
static unsigned long long seconds(uint64_t ms)
{
	return ms < 1000 ? 1 : (unsigned long long)((ms + 999) / 1000);
}

static void summarise(struct log_limiter *l, const struct log_limit_entry *e, uint64_t span_ms)
{
	if (!e->count)
		return;
	log_write(l->log, e->kind->type, "%s%llu more %s for client %.*s%s in the last %llu s.",
	          prefix_of(e->kind->type), (unsigned long long)e->count, e->kind->what,
	          (int)(e->klen - KIND_BYTES), (const char *)e->key + KIND_BYTES,
	          e->cut ? "..." : "", seconds(span_ms));
}

static void summarise_others(struct log_limiter *l, uint64_t span_ms)
{
	if (!l->other_count)
		return;
	log_write(l->log, l->other_kind->type,
	          "%s%llu more repeated lines (%s, ...) for other clients in the last %llu s.",
	          prefix_of(l->other_kind->type), (unsigned long long)l->other_count,
	          l->other_kind->what, seconds(span_ms));
	l->other_count = 0;
	l->other_kind = NULL;
}

static void count_other(struct log_limiter *l, const struct log_kind *kind, uint64_t now_ms)
{
	if (!l->other_count) {
		l->other_kind = kind;
		l->other_since = now_ms;
	}
	l->other_count++;
}

bool log_limit_pass(struct log_limiter *l, const struct log_kind *kind, const void *cid,
                    size_t cid_len, uint64_t now_ms)
{
	if (!log_on(l->log, kind->type))
		return false;
	unsigned char key[KIND_BYTES + LOG_LIMIT_ID_MAX];
	bool cut = cid_len > LOG_LIMIT_ID_MAX;
	size_t idlen = cut ? LOG_LIMIT_ID_MAX : cid_len;
	memcpy(key, &kind, KIND_BYTES);
	if (idlen)
		memcpy(key + KIND_BYTES, cid, idlen);
	size_t klen = KIND_BYTES + idlen;
	struct log_limit_entry *e = map_get(&l->entries, &l->hk, key, klen);
	if (e) {
		e->count++;
		return false;
	}
	if (l->entries.count >= LOG_LIMIT_CLIENTS) {
		count_other(l, kind, now_ms);
		return false;
	}
	e = malloc(sizeof(*e) + klen);
	if (!e) {
		count_other(l, kind, now_ms);
		return false;
	}
	*e = (struct log_limit_entry){
	        .kind = kind, .since = now_ms, .cut = cut, .klen = (uint32_t)klen};
	memcpy(e->key, key, klen);
	if (map_put(&l->entries, &l->hk, e->key, klen, e)) {
		free(e);
		count_other(l, kind, now_ms);
		return false;
	}
	if (l->tail)
		l->tail->next = e;
	else
		l->head = e;
	l->tail = e;
	return true;
}

static void forget_head(struct log_limiter *l)
{
	struct log_limit_entry *e = l->head;
	l->head = e->next;
	if (!l->head)
		l->tail = NULL;
	map_del(&l->entries, &l->hk, e->key, e->klen);
	free(e);
}

void log_limiter_tick(struct log_limiter *l, uint64_t now_ms)
{
	while (l->head && now_ms - l->head->since >= l->window_ms) {
		summarise(l, l->head, l->window_ms);
		forget_head(l);
	}
	if (l->other_count && now_ms - l->other_since >= l->window_ms)
		summarise_others(l, l->window_ms);
	/* A table that emptied gives its slots back. */
	if (!l->entries.count)
		map_free(&l->entries);
}

void log_limiter_flush(struct log_limiter *l, uint64_t now_ms)
{
	while (l->head) {
		summarise(l, l->head, now_ms - l->head->since);
		forget_head(l);
	}
	summarise_others(l, now_ms - l->other_since);
	map_free(&l->entries);
}
