/*
 * retain.c - the retained-message store; see retain.h for the contract.
 *
 * A topic trie: one struct rnode per topic level, holding at most one
 * message reference, in the trie of topic levels the router uses too
 * (trie.h: children keyed by their level bytes, a single child inline, the
 * hash map from the second child on, iterative free). It is a trie of names
 * (no wildcards: '+' and '#' would be ordinary keys), so unlike the router's
 * there are no '+' or '#' children: the wildcards are in the filter, and
 * matching walks the filter's levels, fanning out over all children at a '+'
 * and over a whole subtree at a '#'.
 *
 * Expiry is lazy: a message whose expire_at has passed is dropped when a
 * lookup reaches it, never returned. Dropping it may leave its node empty,
 * but the node cannot be freed there, because the walk may be iterating the
 * parent's map (which must not change under map_next()). So the walk
 * records the nodes it emptied that have no children (leaves) and prunes
 * them after it is done. Only leaves are recorded, and pruning a leaf frees
 * only that leaf and its ancestors, which are never leaves; so no recorded
 * node is freed before its own turn.
 *
 * Every public function takes the store's mutex for its whole duration. The
 * recursion of a '#' or '+' walk is as deep as the trie, which the broker's
 * maximum topic levels bounds.
 */
#include "broker/retain.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker/trie.h"
#include "proto/topic.h"

/* A trie node (trie.h) with the message retained on its topic. */
struct rnode {
	struct trie_node t;        /* first: the trie's part */
	struct msg *msg;           /* the retained message, or NULL */
	struct retain_source *src; /* its publisher, one allocation; NULL: unknown */
};

struct retain_store {
	pthread_mutex_t lock;
	struct trie trie; /* of struct rnode, a trie of names */
	size_t count;
};

/* State of one retain_match() walk. */
struct walk {
	struct retain_store *s;
	uint64_t now;
	struct retain_hits *out;
	retain_keep_fn keep;
	void *keep_arg;
	struct rnode **dead; /* emptied leaves, pruned after the walk */
	size_t ndead;
	size_t capdead;
	bool sweep; /* retain_expire(): every topic, nothing collected */
};

/* ---- nodes ---- */

static struct rnode *rnode_of(struct trie_node *t)
{
	return (struct rnode *)t;
}

static bool rnode_payload_empty(const struct trie_node *t)
{
	return ((const struct rnode *)t)->msg == NULL;
}

static void rnode_payload_free(struct trie_node *t)
{
	struct rnode *n = rnode_of(t);
	msg_unref(n->msg);
	n->msg = NULL;
	free(n->src);
	n->src = NULL;
}

static const struct trie_ops RNODE_OPS = {
        .node_size = sizeof(struct rnode),
        .wildcards = false,
        .payload_empty = rnode_payload_empty,
        .payload_free = rnode_payload_free,
};

/* Drops the message of n, if any. */
static void clear_msg(struct retain_store *s, struct rnode *n)
{
	if (n->msg) {
		msg_unref(n->msg);
		n->msg = NULL;
		s->count--;
	}
	free(n->src);
	n->src = NULL;
}

/* A copy of src in one allocation; NULL for none or out of memory (the
 * message is then kept as one whose publisher is not known). */
static struct retain_source *source_copy(const struct retain_source *src)
{
	if (!src)
		return NULL;
	size_t ulen = src->username.data ? src->username.len : 0;
	struct retain_source *c = malloc(sizeof(*c) + src->client_id.len + ulen + 1);
	if (!c)
		return NULL;
	uint8_t *p = (uint8_t *)(c + 1);
	memcpy(p, src->client_id.data, src->client_id.len);
	c->client_id = (struct tern_bytes){p, src->client_id.len};
	p += src->client_id.len;
	if (ulen)
		memcpy(p, src->username.data, ulen);
	c->username = (struct tern_bytes){src->username.data ? p : NULL, (uint32_t)ulen};
	c->listener = src->listener;
	return c;
}

/* ---- the API ---- */

struct retain_store *retain_new(const struct hash_key *hk)
{
	struct retain_store *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (trie_init(&s->trie, &RNODE_OPS, hk)) {
		free(s);
		return NULL;
	}
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		trie_fini(&s->trie);
		free(s);
		return NULL;
	}
	return s;
}

void retain_free(struct retain_store *s)
{
	if (!s)
		return;
	trie_fini(&s->trie);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

enum tern_err retain_set(struct retain_store *s, struct msg *msg)
{
	return retain_set_source(s, msg, NULL);
}

enum tern_err retain_set_source(struct retain_store *s, struct msg *msg,
                                const struct retain_source *src)
{
	const uint8_t *t = msg->topic.data;
	size_t len = msg->topic.len;
	bool clear = msg->payload.len == 0;
	if (len == 0)
		return TERN_E_INVALID; /* no topic name is empty [MQTT-4.7.3-1] */

	pthread_mutex_lock(&s->lock);
	struct rnode *n = rnode_of(trie_node_for(&s->trie, t, len, !clear));
	if (!n) {
		/* Clearing a topic that holds nothing, or out of memory (the
		 * nodes created on the way are pruned again). */
		pthread_mutex_unlock(&s->lock);
		return clear ? TERN_OK : TERN_E_NOMEM;
	}
	if (clear) {
		/* [MQTT-3.3.1-6] [MQTT-3.3.1-7] */
		clear_msg(s, n);
		trie_prune(&s->trie, &n->t);
	} else {
		/* [MQTT-3.3.1-5]. Ref before unref: msg may be the stored
		 * one already. */
		msg_ref(msg);
		if (n->msg)
			msg_unref(n->msg);
		else
			s->count++;
		n->msg = msg;
		free(n->src);
		n->src = source_copy(src);
	}
	pthread_mutex_unlock(&s->lock);
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err hit(struct walk *w, struct rnode *n)
{
	struct msg *m = n->msg;
	if (!m)
		return TERN_OK;
	if (m->expire_at != 0 && w->now >= m->expire_at) {
		/* [MQTT-3.3.2-5]: never delivered; dropped from the store. */
		clear_msg(w->s, n);
		if (!trie_has_children(&n->t)) {
			if (w->ndead == w->capdead) {
				size_t cap = w->capdead ? w->capdead * 2 : 8;
				struct rnode **d = realloc(w->dead, cap * sizeof(*d));
				/* Without room the empty leaf just stays until
				 * retain_free(): harmless. */
				if (!d)
					return TERN_OK;
				w->dead = d;
				w->capdead = cap;
			}
			w->dead[w->ndead++] = n;
		}
		return TERN_OK;
	}
	if (w->sweep || (w->keep && !w->keep(w->keep_arg, m, n->src)))
		return TERN_OK;
	struct retain_hits *out = w->out;
	if (out->n == out->cap) {
		size_t cap = out->cap ? out->cap * 2 : 16;
		struct msg **v = realloc(out->v, cap * sizeof(*v));
		if (!v)
			return TERN_E_NOMEM;
		out->v = v;
		out->cap = cap;
	}
	out->v[out->n++] = msg_ref(m);
	return TERN_OK;
}

/* A topic starting with '$' is not matched by a filter starting with a
 * wildcard [MQTT-4.7.2-1]: at the root, '+' and '#' skip such levels. */
static bool hidden(const struct walk *w, const struct rnode *parent, const struct rnode *c)
{
	return !w->sweep && &parent->t == w->s->trie.root && c->t.klen > 0 && c->t.key[0] == '$';
}

/* Every message strictly below n ('#'). */
static TERN_MUST_CHECK enum tern_err hit_below(struct walk *w, struct rnode *n)
{
	struct trie_node *ct;
	for (size_t pos = 0; (ct = trie_child_next(&n->t, &pos));) {
		struct rnode *c = rnode_of(ct);
		if (hidden(w, n, c))
			continue;
		enum tern_err err = hit(w, c);
		if (!err)
			err = hit_below(w, c);
		if (err)
			return err;
	}
	return TERN_OK;
}

/* Matches the filter levels left in it below n. */
static TERN_MUST_CHECK enum tern_err walk_from(struct walk *w, struct rnode *n,
                                               struct topic_iter it)
{
	struct topic_level lv;
	for (;;) {
		if (!topic_iter_next(&it, &lv))
			return hit(w, n);
		if (topic_level_is(&lv, '#')) {
			/* "a/#" matches "a" too (section 4.7.1.2); the root
			 * is no level and holds nothing. */
			enum tern_err err = hit(w, n);
			return err ? err : hit_below(w, n);
		}
		if (topic_level_is(&lv, '+')) {
			struct trie_node *ct;
			for (size_t kpos = 0; (ct = trie_child_next(&n->t, &kpos));) {
				struct rnode *c = rnode_of(ct);
				if (hidden(w, n, c))
					continue;
				enum tern_err err = walk_from(w, c, it);
				if (err)
					return err;
			}
			return TERN_OK;
		}
		n = rnode_of(trie_child(&w->s->trie, &n->t, lv.p, lv.len));
		if (!n)
			return TERN_OK;
	}
}

enum tern_err retain_match(struct retain_store *s, const uint8_t *filter, size_t flen, uint64_t now,
                           struct retain_hits *out)
{
	return retain_match_checked(s, filter, flen, now, NULL, NULL, out);
}

enum tern_err retain_match_checked(struct retain_store *s, const uint8_t *filter, size_t flen,
                                   uint64_t now, retain_keep_fn keep, void *arg,
                                   struct retain_hits *out)
{
	out->n = 0;
	if (flen == 0)
		return TERN_OK;
	struct walk w = {.s = s, .now = now, .out = out, .keep = keep, .keep_arg = arg};
	struct topic_iter it;
	topic_iter_init(&it, filter, flen);
	pthread_mutex_lock(&s->lock);
	enum tern_err err = walk_from(&w, rnode_of(s->trie.root), it);
	for (size_t i = 0; i < w.ndead; i++)
		trie_prune(&s->trie, &w.dead[i]->t);
	pthread_mutex_unlock(&s->lock);
	free(w.dead);
	return err;
}

size_t retain_expire(struct retain_store *s, uint64_t now)
{
	struct walk w = {.s = s, .now = now, .sweep = true};
	pthread_mutex_lock(&s->lock);
	size_t before = s->count;
	/* Nothing is allocated but the list of emptied leaves; without room
	 * for it a leaf just stays (see hit()), so the walk cannot fail. */
	enum tern_err err = hit_below(&w, rnode_of(s->trie.root));
	(void)err;
	for (size_t i = 0; i < w.ndead; i++)
		trie_prune(&s->trie, &w.dead[i]->t);
	size_t gone = before - s->count;
	pthread_mutex_unlock(&s->lock);
	free(w.dead);
	return gone;
}

size_t retain_count(struct retain_store *s)
{
	pthread_mutex_lock(&s->lock);
	size_t n = s->count;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void retain_hits_free(struct retain_hits *hits)
{
	for (size_t i = 0; i < hits->n; i++)
		msg_unref(hits->v[i]);
	free(hits->v);
	hits->v = NULL;
	hits->n = 0;
	hits->cap = 0;
}
