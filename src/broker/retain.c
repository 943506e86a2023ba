/*
 * retain.c - the retained-message store; see retain.h for the contract.
 *
 * A topic trie: one struct rnode per topic level, holding at most one
 * message reference. Exact children are keyed by their level bytes, owned by
 * the child; a single child sits in node->one and the hash map is only built
 * from the second child on (most levels of real trees have one child, and an
 * empty map costs 8 slots of 32 bytes once it holds anything). Topic names
 * have no wildcards, so unlike the router there are no '+' or '#' children:
 * the wildcards are in the filter, and matching walks the filter's levels,
 * fanning out over all children at a '+' and over a whole subtree at a '#'.
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

#include "proto/topic.h"
#include "util/map.h"

struct rnode {
	struct rnode *parent; /* NULL for the root */
	struct rnode *one;    /* the only child, when kids is empty */
	struct map kids;      /* children, when there are two or more */
	struct msg *msg;      /* the retained message, or NULL */
	uint32_t klen;
	uint8_t key[]; /* this level's bytes, owned; the map key points here */
};

struct retain_store {
	pthread_mutex_t lock;
	struct rnode *root;
	size_t count;
	struct hash_key hk; /* the key of every node's kids map */
};

/* State of one retain_match() walk. */
struct walk {
	struct retain_store *s;
	uint64_t now;
	struct retain_hits *out;
	struct rnode **dead; /* emptied leaves, pruned after the walk */
	size_t ndead;
	size_t capdead;
};

/* ---- nodes ---- */

static struct rnode *node_new(struct rnode *parent, const uint8_t *key, size_t klen)
{
	struct rnode *n = malloc(sizeof(*n) + klen);
	if (!n)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->parent = parent;
	n->klen = (uint32_t)klen;
	if (klen)
		memcpy(n->key, key, klen);
	return n;
}

static bool has_kids(const struct rnode *n)
{
	return n->one || n->kids.count;
}

static struct rnode *kid_get(const struct hash_key *hk, const struct rnode *n, const uint8_t *key,
                             size_t klen)
{
	if (n->kids.count)
		return map_get(&n->kids, hk, key, klen);
	struct rnode *c = n->one;
	if (c && c->klen == klen && (klen == 0 || memcmp(c->key, key, klen) == 0))
		return c;
	return NULL;
}

static enum tern_err kid_put(const struct hash_key *hk, struct rnode *n, struct rnode *c)
{
	if (!has_kids(n)) {
		n->one = c;
		return TERN_OK;
	}
	if (n->one) {
		if (map_put(&n->kids, hk, n->one->key, n->one->klen, n->one))
			return TERN_E_NOMEM;
		if (map_put(&n->kids, hk, c->key, c->klen, c)) {
			map_free(&n->kids);
			return TERN_E_NOMEM;
		}
		n->one = NULL;
		return TERN_OK;
	}
	return map_put(&n->kids, hk, c->key, c->klen, c);
}

static void kid_del(const struct hash_key *hk, struct rnode *n, struct rnode *c)
{
	if (n->one == c) {
		n->one = NULL;
		return;
	}
	(void)map_del(&n->kids, hk, c->key, c->klen);
	if (n->kids.count <= 1) {
		size_t pos = 0;
		n->one = n->kids.count ? map_next(&n->kids, &pos) : NULL;
		map_free(&n->kids);
	}
}

/* Walks the children of n: start with *pos = 0; returns the next child or
 * NULL at the end. The children must not change during the walk. */
static struct rnode *kid_next(const struct rnode *n, size_t *pos)
{
	if (n->kids.count)
		return map_next(&n->kids, pos);
	return (*pos)++ == 0 ? n->one : NULL;
}

/* Frees n and its ancestors while they hold nothing; the root stays. */
static void prune(const struct hash_key *hk, struct rnode *n)
{
	while (n->parent && !n->msg && !has_kids(n)) {
		struct rnode *p = n->parent;
		kid_del(hk, p, n);
		map_free(&n->kids);
		free(n);
		n = p;
	}
}

/* Drops the message of n, if any. */
static void clear_msg(struct retain_store *s, struct rnode *n)
{
	if (n->msg) {
		msg_unref(n->msg);
		n->msg = NULL;
		s->count--;
	}
}

/* ---- the API ---- */

struct retain_store *retain_new(const struct hash_key *hk)
{
	struct retain_store *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->hk = *hk;
	s->root = node_new(NULL, NULL, 0);
	if (!s->root || pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s->root);
		free(s);
		return NULL;
	}
	return s;
}

void retain_free(struct retain_store *s)
{
	if (!s)
		return;
	/* Iterative: the nodes still to free are chained through their parent
	 * pointers, so no deep topic can overflow the stack. */
	struct rnode *stack = s->root;
	stack->parent = NULL;
	while (stack) {
		struct rnode *n = stack, *c;
		stack = n->parent;
		for (size_t pos = 0; (c = kid_next(n, &pos));) {
			c->parent = stack;
			stack = c;
		}
		msg_unref(n->msg);
		map_free(&n->kids);
		free(n);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

enum tern_err retain_set(struct retain_store *s, struct msg *msg)
{
	const uint8_t *t = msg->topic.data;
	size_t len = msg->topic.len;
	bool clear = msg->payload.len == 0;
	if (len == 0)
		return TERN_E_INVALID; /* no topic name is empty [MQTT-4.7.3-1] */

	pthread_mutex_lock(&s->lock);
	struct rnode *n = s->root;
	struct topic_iter it;
	struct topic_level lv;
	topic_iter_init(&it, t, len);
	while (topic_iter_next(&it, &lv)) {
		struct rnode *c = kid_get(&s->hk, n, lv.p, lv.len);
		if (!c && clear) {
			/* Clearing a topic that holds nothing. */
			pthread_mutex_unlock(&s->lock);
			return TERN_OK;
		}
		if (!c) {
			c = node_new(n, lv.p, lv.len);
			if (c && kid_put(&s->hk, n, c)) {
				free(c);
				c = NULL;
			}
			if (!c) {
				prune(&s->hk, n);
				pthread_mutex_unlock(&s->lock);
				return TERN_E_NOMEM;
			}
		}
		n = c;
	}
	if (clear) {
		/* [MQTT-3.3.1-6] [MQTT-3.3.1-7] */
		clear_msg(s, n);
		prune(&s->hk, n);
	} else {
		/* [MQTT-3.3.1-5]. Ref before unref: msg may be the stored
		 * one already. */
		msg_ref(msg);
		if (n->msg)
			msg_unref(n->msg);
		else
			s->count++;
		n->msg = msg;
	}
	pthread_mutex_unlock(&s->lock);
	return TERN_OK;
}

static enum tern_err hit(struct walk *w, struct rnode *n)
{
	struct msg *m = n->msg;
	if (!m)
		return TERN_OK;
	if (m->expire_at != 0 && w->now >= m->expire_at) {
		/* [MQTT-3.3.2-5]: never delivered; dropped from the store. */
		clear_msg(w->s, n);
		if (!has_kids(n)) {
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
	return parent == w->s->root && c->klen > 0 && c->key[0] == '$';
}

/* Every message strictly below n ('#'). */
static enum tern_err hit_below(struct walk *w, struct rnode *n)
{
	struct rnode *c;
	for (size_t pos = 0; (c = kid_next(n, &pos));) {
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
static enum tern_err walk_from(struct walk *w, struct rnode *n, struct topic_iter it)
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
			struct rnode *c;
			for (size_t kpos = 0; (c = kid_next(n, &kpos));) {
				if (hidden(w, n, c))
					continue;
				enum tern_err err = walk_from(w, c, it);
				if (err)
					return err;
			}
			return TERN_OK;
		}
		n = kid_get(&w->s->hk, n, lv.p, lv.len);
		if (!n)
			return TERN_OK;
	}
}

enum tern_err retain_match(struct retain_store *s, const uint8_t *filter, size_t flen, uint64_t now,
                           struct retain_hits *out)
{
	out->n = 0;
	if (flen == 0)
		return TERN_OK;
	struct walk w = {.s = s, .now = now, .out = out};
	struct topic_iter it;
	topic_iter_init(&it, filter, flen);
	pthread_mutex_lock(&s->lock);
	enum tern_err err = walk_from(&w, s->root, it);
	for (size_t i = 0; i < w.ndead; i++)
		prune(&s->hk, w.dead[i]);
	pthread_mutex_unlock(&s->lock);
	free(w.dead);
	return err;
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
