/*
 * msg.c - refcounted messages; see msg.h.
 *
 * One allocation holds the struct and every byte the message carries, so a
 * message costs one malloc and one free whatever its properties, or none
 * when its block comes from a worker's pool (msg.h).
 *
 * The pool's count of references is one for its owner plus one per block it
 * made (spare, in use or on its way back), so it never changes per message.
 * A block that comes back after the owner let go is freed by whoever brings
 * it: the owner sets `released` before it empties the stack, a returner
 * checks `released` after its push (both sequentially consistent), so every
 * block is freed by one of them. Spare blocks are poisoned for
 * AddressSanitizer, so a message used after its last reference is still
 * reported in a sanitizer build.
 */
#include "util/msg.h"

#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TERN_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(TERN_ASAN)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* A block while it is not a message: a link of the pool's lists. */
struct block {
	struct block *next;
};

/* The blocks of one size class. */
struct bin {
	_Atomic(struct block *) back; /* blocks given back, any thread */
	struct block *spare;          /* the owner's */
};

/* Each class twice the one before, so a message holds at most twice its
 * size. */
static const uint32_t class_size[MSG_POOL_CLASSES] = {MSG_POOL_SMALL, 2 * MSG_POOL_SMALL,
                                                      MSG_POOL_BLOCK};
/* Spare blocks kept per class: 1 MiB each. */
static const uint32_t class_spare[MSG_POOL_CLASSES] = {(1u << 20) / MSG_POOL_SMALL,
                                                       (1u << 20) / (2 * MSG_POOL_SMALL),
                                                       (1u << 20) / MSG_POOL_BLOCK};

struct msg_pool {
	atomic_uint refs;
	atomic_bool released;
	struct bin bins[MSG_POOL_CLASSES];
};

static void pool_unref(struct msg_pool *p)
{
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1)
		free(p);
}

/* Frees a list of blocks of class k of p, each taking its reference along. */
static void blocks_free(struct msg_pool *p, unsigned k, struct block *b)
{
	while (b) {
		UNPOISON(b, class_size[k]);
		struct block *next = b->next;
		free(b);
		pool_unref(p);
		b = next;
	}
}

struct msg_pool *msg_pool_new(void)
{
	struct msg_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	atomic_init(&p->refs, 1);
	atomic_init(&p->released, false);
	for (unsigned k = 0; k < MSG_POOL_CLASSES; k++)
		atomic_init(&p->bins[k].back, NULL);
	return p;
}

void msg_pool_release(struct msg_pool *p)
{
	if (!p)
		return;
	atomic_store(&p->released, true);
	for (unsigned k = 0; k < MSG_POOL_CLASSES; k++) {
		blocks_free(p, k, p->bins[k].spare);
		p->bins[k].spare = NULL;
		blocks_free(p, k, atomic_exchange(&p->bins[k].back, NULL));
	}
	pool_unref(p);
}

/* A block of class k for a new message: a spare one, else those given back
 * since the last time (at most class_spare[k] of them kept), else a new
 * one. NULL when out of memory. */
static struct block *block_take(struct msg_pool *p, unsigned k)
{
	struct bin *bin = &p->bins[k];
	if (!bin->spare) {
		struct block *b = atomic_exchange_explicit(&bin->back, NULL, memory_order_acquire);
		uint32_t n = 0;
		struct block *keep = b, *last = NULL;
		while (b && n < class_spare[k]) {
			UNPOISON(b, sizeof(*b));
			last = b;
			b = b->next;
			n++;
		}
		if (last)
			last->next = NULL;
		blocks_free(p, k, b);
		bin->spare = keep;
	}
	struct block *b = bin->spare;
	if (b) {
		UNPOISON(b, class_size[k]);
		bin->spare = b->next;
		return b;
	}
	b = malloc(class_size[k]);
	if (b)
		atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return b;
}

/* The last reference of m, a block of m->pool, went: back to the pool. */
static void block_give_back(struct msg *m)
{
	struct msg_pool *p = m->pool;
	unsigned k = m->pool_class;
	struct bin *bin = &p->bins[k];
	struct block *b = (struct block *)m;
	/* Poisoned before the push: once pushed, the owner may reuse it. */
	POISON((uint8_t *)b + sizeof(*b), class_size[k] - sizeof(*b));
	struct block *head = atomic_load_explicit(&bin->back, memory_order_relaxed);
	do {
		b->next = head;
	} while (!atomic_compare_exchange_weak(&bin->back, &head, b));
	if (atomic_load(&p->released))
		blocks_free(p, k, atomic_exchange(&bin->back, NULL));
}

static struct tern_bytes copy_in(uint8_t **dst, struct tern_bytes src)
{
	struct tern_bytes out = {*dst, src.len};
	if (src.len)
		memcpy(*dst, src.data, src.len);
	*dst += src.len;
	return out;
}

struct msg *msg_new(struct tern_bytes topic, struct tern_bytes payload, uint8_t qos, bool retain,
                    const struct tern_props *props, uint64_t origin, uint64_t now)
{
	return msg_new_in(NULL, topic, payload, qos, retain, props, origin, now);
}

struct msg *msg_new_in(struct msg_pool *pool, struct tern_bytes topic, struct tern_bytes payload,
                       uint8_t qos, bool retain, const struct tern_props *props, uint64_t origin,
                       uint64_t now)
{
	struct tern_props none = {0};
	if (!props)
		props = &none;
	bool has_ct = props->present & TERN_PROP_BIT(TERN_PROP_CONTENT_TYPE);
	bool has_rt = props->present & TERN_PROP_BIT(TERN_PROP_RESPONSE_TOPIC);
	bool has_cd = props->present & TERN_PROP_BIT(TERN_PROP_CORRELATION_DATA);

	/* User properties are re-encoded from the decoded block so that the
	 * message keeps only what is forwarded [MQTT-3.3.2-17]. */
	size_t user_len = 0;
	size_t cur = 0;
	struct tern_bytes k, v;
	/* The iterator walks the property block: most messages have none. */
	while (props->raw.len && tern_props_next_user(props, &cur, &k, &v))
		user_len += 5u + k.len + v.len;

	size_t total = sizeof(struct msg) + topic.len + payload.len + user_len +
	               (has_ct ? props->content_type.len : 0) +
	               (has_rt ? props->response_topic.len : 0) +
	               (has_cd ? props->correlation_data.len : 0);
	bool pooled = pool && total <= MSG_POOL_BLOCK;
	unsigned cls = 0;
	while (cls + 1 < MSG_POOL_CLASSES && total > class_size[cls])
		cls++;
	struct msg *m = pooled ? (struct msg *)block_take(pool, cls) : malloc(total);
	if (!m)
		return NULL;
	memset(m, 0, sizeof(*m));
	m->pool = pooled ? pool : NULL;
	m->pool_class = (uint8_t)cls;
	atomic_init(&m->refs, 1);
	m->qos = qos;
	m->retain = retain;
	m->origin = origin;
	uint8_t *p = (uint8_t *)(m + 1);
	m->topic = copy_in(&p, topic);
	m->payload = copy_in(&p, payload);
	if (has_ct) {
		m->content_type = copy_in(&p, props->content_type);
		m->has_content_type = true;
	}
	if (has_rt)
		m->response_topic = copy_in(&p, props->response_topic);
	if (has_cd) {
		m->correlation_data = copy_in(&p, props->correlation_data);
		/* An empty correlation data is still present. */
		if (!m->correlation_data.data)
			m->correlation_data.data = p;
	}
	if (props->present & TERN_PROP_BIT(TERN_PROP_PAYLOAD_FORMAT)) {
		m->has_payload_format = true;
		m->payload_format = props->payload_format;
	}
	if (props->present & TERN_PROP_BIT(TERN_PROP_MESSAGE_EXPIRY))
		m->expire_at = now + (uint64_t)props->message_expiry * 1000u;
	size_t ulen = 0;
	cur = 0;
	while (user_len && tern_props_next_user(props, &cur, &k, &v)) {
		/* The room was counted above, so this cannot fail; if that count
		 * were ever wrong, refuse the message rather than keep a list
		 * that stops short. */
		if (tern_user_prop_encode(p, user_len, &ulen, k, v) != TERN_OK) {
			/* Through msg_unref: a pooled block goes back to its pool
			 * and drops the pool reference it holds. */
			msg_unref(m);
			return NULL;
		}
		m->n_user++;
	}
	m->user_raw.data = p;
	m->user_raw.len = (uint32_t)ulen;
	return m;
}

void msg_unref(struct msg *m)
{
	if (!m || atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (m->pool)
		block_give_back(m);
	else
		free(m);
}

uint32_t msg_expiry_left(const struct msg *m, uint64_t now, bool *expired)
{
	*expired = false;
	if (!m->expire_at)
		return 0;
	if (now >= m->expire_at) {
		*expired = true;
		return 0;
	}
	uint64_t left = (m->expire_at - now + 999u) / 1000u;
	return left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
}
