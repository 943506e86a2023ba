/*
 * topic_alias.c - the topic aliases ternd assigns to the PUBLISHes it sends
 * one v5 connection (MQTT 5.0 section 3.3.2.3.4).
 *
 * A client that announces Topic Alias Maximum N > 0 in CONNECT accepts
 * aliases 1..N from us [MQTT-3.3.2-11]. The first PUBLISH of a topic
 * carries the topic name and an alias, which sets the mapping at the
 * client; later ones carry the alias and an empty topic name. When every
 * alias is taken, the least recently used one is given to the new topic (a
 * PUBLISH with a topic name and an alias in use replaces that mapping), so
 * the table follows the topics that are hot now, not the first ones seen
 * (mosquitto 2.1 keeps the first N).
 *
 * The table is per connection, as the mappings are [MQTT-3.3.2-7]: a
 * resumed session on a new connection starts with none. It is allocated
 * when the first alias is assigned and grows to the bound (the client's
 * maximum, capped by max_topic_alias_broker), so an idle connection or one
 * that never asked for aliases holds nothing. Lookups scan it: the bound is
 * small (10 by default) and a scan of a few entries that compares lengths
 * first is cheaper than hashing the topic.
 */
#include "broker/topic_alias.h"

#include <stdlib.h>
#include <string.h>

struct alias_entry {
	uint8_t *topic; /* owned copy */
	uint32_t len;
	uint64_t used; /* table clock at the last use */
};

struct topic_alias {
	uint16_t n;   /* aliases 1..n are set */
	uint16_t cap; /* entries allocated */
	uint64_t clock;
	struct alias_entry *e;
};

uint16_t topic_alias_pick(struct topic_alias *t, uint16_t max, struct tern_bytes topic, bool *known)
{
	*known = false;
	if (max == 0 || topic.len == 0)
		return 0;
	if (!t)
		return 1;
	uint16_t lru = 0;
	for (uint16_t i = 0; i < t->n; i++) {
		struct alias_entry *e = &t->e[i];
		if (e->len == topic.len && memcmp(e->topic, topic.data, topic.len) == 0) {
			e->used = ++t->clock;
			*known = true;
			return (uint16_t)(i + 1);
		}
		if (e->used < t->e[lru].used)
			lru = i;
	}
	if (t->n < max)
		return (uint16_t)(t->n + 1);
	return (uint16_t)(lru + 1);
}

enum tern_err topic_alias_set(struct topic_alias **tp, uint16_t max, uint16_t alias,
                              struct tern_bytes topic)
{
	struct topic_alias *t = *tp;
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return TERN_E_NOMEM;
		*tp = t;
	}
	if (alias == 0 || alias > max || alias > t->n + 1u)
		return TERN_E_INVALID;
	if (alias == t->n + 1u && t->n == t->cap) {
		uint16_t cap = t->cap ? (uint16_t)(t->cap * 2u < max ? t->cap * 2u : max) : 4u;
		if (cap > max)
			cap = max;
		struct alias_entry *e = realloc(t->e, (size_t)cap * sizeof(*e));
		if (!e)
			return TERN_E_NOMEM;
		t->e = e;
		t->cap = cap;
	}
	uint8_t *copy = malloc(topic.len);
	if (!copy)
		return TERN_E_NOMEM;
	memcpy(copy, topic.data, topic.len);
	struct alias_entry *e = &t->e[alias - 1];
	if (alias == t->n + 1u)
		t->n++;
	else
		free(e->topic);
	e->topic = copy;
	e->len = topic.len;
	e->used = ++t->clock;
	return TERN_OK;
}

void topic_alias_free(struct topic_alias **tp)
{
	struct topic_alias *t = *tp;
	if (!t)
		return;
	for (uint16_t i = 0; i < t->n; i++)
		free(t->e[i].topic);
	free(t->e);
	free(t);
	*tp = NULL;
}
