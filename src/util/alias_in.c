/*
 * alias_in.c - the inbound topic alias table (MQTT 5.0 section 3.3.2.3.4),
 * shared by the broker and libtern so that both read the same rules the
 * same way.
 *
 * The rules, for a PUBLISH that carries a Topic Alias (section 3.3.4 says
 * how the receiver processes it):
 *   - 0 is not a valid alias [MQTT-3.3.2-8], and a sender must stay within
 *     the maximum the receiver announced [MQTT-3.3.2-9] [MQTT-3.3.2-11]; the
 *     receiver accepts every value from 1 to that maximum [MQTT-3.3.2-10]
 *     [MQTT-3.3.2-12]. Anything else is Topic Alias invalid (0x94):
 *     TERN_E_INVALID here.
 *   - A Topic Name with the alias sets (or replaces) the mapping and the
 *     packet uses that name.
 *   - An empty Topic Name uses the name the alias maps to; an alias that
 *     maps to nothing is a Protocol Error (0x82): TERN_E_NOT_FOUND here.
 *   - Mappings last for one network connection [MQTT-3.3.2-7]:
 *     alias_in_reset() or alias_in_free() when it ends.
 * What the caller does with an error (the broker's DISCONNECT, the client's
 * failure) is the caller's.
 *
 * Storage: one array of slots indexed by alias, allocated when the first
 * alias is set and grown (doubling, up to the maximum) as higher aliases are
 * set, so its size follows the aliases in use rather than the maximum
 * announced (which may be 65535). Each slot owns a copy of its topic and
 * keeps that allocation when the alias is set again to a topic that fits,
 * and across alias_in_reset(): a peer that re-sets its aliases to topics of
 * the same or a shorter length, message after message or connection after
 * connection, costs no allocation.
 */
#include "util/alias_in.h"

#include <stdlib.h>
#include <string.h>

struct alias_slot {
	uint8_t *topic; /* owned; cap bytes */
	uint32_t len;   /* 0: the alias maps to nothing */
	uint32_t cap;
};

struct alias_in {
	uint32_t n;               /* slots for aliases 1..n */
	struct alias_slot slot[]; /* slot[a - 1] is alias a */
};

/* Makes room for alias a (a <= max) in *t. */
static TERN_MUST_CHECK enum tern_err grow(struct alias_in **t, uint16_t max, uint16_t a)
{
	uint32_t n = *t ? (*t)->n : 0;
	if (a <= n)
		return TERN_OK;
	uint32_t want = n ? 2 * n : 8;
	if (want > max)
		want = max;
	if (want < a)
		want = a;
	struct alias_in *g = realloc(*t, sizeof(*g) + (size_t)want * sizeof(g->slot[0]));
	if (!g)
		return TERN_E_NOMEM;
	memset(&g->slot[n], 0, (size_t)(want - n) * sizeof(g->slot[0]));
	g->n = want;
	*t = g;
	return TERN_OK;
}

enum tern_err alias_in_resolve(struct alias_in **t, uint16_t max, uint16_t alias,
                               struct tern_bytes topic, struct tern_bytes *out)
{
	if (alias == 0 || alias > max)
		return TERN_E_INVALID;
	if (topic.len == 0) {
		const struct alias_slot *s = *t && alias <= (*t)->n ? &(*t)->slot[alias - 1] : NULL;
		if (!s || s->len == 0)
			return TERN_E_NOT_FOUND;
		out->data = s->topic;
		out->len = s->len;
		return TERN_OK;
	}
	enum tern_err err = grow(t, max, alias);
	if (err != TERN_OK)
		return err;
	struct alias_slot *s = &(*t)->slot[alias - 1];
	if (topic.len > s->cap) {
		/* A new block rather than realloc: the old topic need not be
		 * copied, and it stays as it was if this fails. */
		uint8_t *p = malloc(topic.len);
		if (!p)
			return TERN_E_NOMEM;
		free(s->topic);
		s->topic = p;
		s->cap = topic.len;
	}
	memcpy(s->topic, topic.data, topic.len);
	s->len = topic.len;
	*out = topic;
	return TERN_OK;
}

void alias_in_reset(struct alias_in *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->n; i++)
		t->slot[i].len = 0;
}

void alias_in_free(struct alias_in **t)
{
	if (!*t)
		return;
	for (uint32_t i = 0; i < (*t)->n; i++)
		free((*t)->slot[i].topic);
	free(*t);
	*t = NULL;
}
