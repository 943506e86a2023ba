/*
 * batch.c - building store batches; see store.h.
 *
 * A batch is an array of fixed-size operations plus one byte buffer that
 * holds every variable-length argument (client ids, filters, topics,
 * subscription ids), so recording an operation costs no allocation of its
 * own once the arrays have grown. Messages are not copied: the batch holds
 * a reference until it is freed, and reads only their immutable parts on
 * the storage thread; their expiry, which a will gets only when it is
 * published, is copied into the operation when it is recorded.
 */
#include "store/batch.h"

#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

struct store_batch *store_batch_new(void)
{
	return calloc(1, sizeof(struct store_batch));
}

void store_batch_free(struct store_batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		if (b->ops[i].kind == STORE_OP_MSG_PUT)
			msg_unref(b->ops[i].msg);
	free(b->ops);
	buf_free(&b->bytes);
	free(b);
}

bool store_batch_empty(const struct store_batch *b)
{
	return b->n == 0;
}

size_t store_batch_count(const struct store_batch *b)
{
	return b ? b->n : 0;
}

void store_batch_on_done(struct store_batch *b, store_done_fn done, void *arg, uint64_t ticket)
{
	b->done = done;
	b->done_arg = arg;
	b->ticket = ticket;
}

/* Appends an operation with len bytes of data; returns it, or NULL. */
static struct store_op *add(struct store_batch *b, enum store_op_kind kind, const void *data,
                            size_t len)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		struct store_op *ops = realloc(b->ops, cap * sizeof(*ops));
		if (!ops)
			return NULL;
		b->ops = ops;
		b->cap = cap;
	}
	size_t off = b->bytes.len;
	if (len && buf_append(&b->bytes, data, len, 0))
		return NULL;
	struct store_op *op = &b->ops[b->n++];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->off = off;
	op->len = len;
	return op;
}

/* An operation whose data is parts[0..n) one after the other (below). */
static struct store_op *add_parts(struct store_batch *b, enum store_op_kind kind,
                                  const void *const *parts, const size_t *lens, size_t n);

enum tern_err store_session_put(struct store_batch *b, uint64_t id, const uint8_t *cid, size_t len,
                                uint8_t version, uint32_t expiry, int64_t disconnected_at)
{
	struct store_op *op = add(b, STORE_OP_SESSION_PUT, cid, len);
	if (!op)
		return TERN_E_NOMEM;
	op->session = id;
	op->u8a = version;
	op->u32 = expiry;
	op->when = disconnected_at;
	return TERN_OK;
}

enum tern_err store_session_del(struct store_batch *b, uint64_t id)
{
	struct store_op *op = add(b, STORE_OP_SESSION_DEL, NULL, 0);
	if (!op)
		return TERN_E_NOMEM;
	op->session = id;
	return TERN_OK;
}

enum tern_err store_sub_put(struct store_batch *b, uint64_t session, const uint8_t *filter,
                            size_t len, uint8_t qos, uint8_t flags, uint8_t retain_handling,
                            uint32_t sub_id)
{
	struct store_op *op = add(b, STORE_OP_SUB_PUT, filter, len);
	if (!op)
		return TERN_E_NOMEM;
	op->session = session;
	op->u8a = qos;
	op->u8b = flags;
	op->u8c = retain_handling;
	op->u32 = sub_id;
	return TERN_OK;
}

enum tern_err store_sub_del(struct store_batch *b, uint64_t session, const uint8_t *filter,
                            size_t len)
{
	struct store_op *op = add(b, STORE_OP_SUB_DEL, filter, len);
	if (!op)
		return TERN_E_NOMEM;
	op->session = session;
	return TERN_OK;
}

enum tern_err store_msg_put(struct store_batch *b, struct msg *m)
{
	/* The expiry is taken now, on the recording thread: it is the one
	 * field a message's owner may still set after recording it (a will
	 * gets it when it is published), so the storage thread must not read
	 * it from m. Stored on the wall clock, which means the same after a
	 * restart. */
	int64_t expire_wall = 0;
	if (m->expire_at) {
		uint64_t now = mono_ms();
		int64_t left = m->expire_at > now ? (int64_t)(m->expire_at - now) : 0;
		expire_wall = wall_ms() + left;
		if (expire_wall == 0)
			expire_wall = 1;
	}
	/* The same message is often put for several deliveries in a row
	 * (again only if it has gained an expiry since). */
	for (size_t i = b->n; i > 0 && i + 8 > b->n; i--)
		if (b->ops[i - 1].kind == STORE_OP_MSG_PUT && b->ops[i - 1].msg == m &&
		    (b->ops[i - 1].when != 0) == (expire_wall != 0))
			return TERN_OK;
	struct store_op *op = add(b, STORE_OP_MSG_PUT, NULL, 0);
	if (!op)
		return TERN_E_NOMEM;
	op->msg = msg_ref(m);
	op->msg_id = m->store_id;
	op->when = expire_wall;
	return TERN_OK;
}

/* Retained: data is the topic (u16 bytes), then with a source (u8b) its
 * client id (u32 bytes) and its username (the rest; u8c says whether
 * there is one); u8a is its listener. */
enum tern_err store_retain_put(struct store_batch *b, const uint8_t *topic, size_t len,
                               uint64_t msg_id, const struct store_retain_src *src)
{
	if (len > UINT16_MAX || (src && src->client_id_len > UINT32_MAX))
		return TERN_E_INVALID;
	bool with = src && msg_id;
	const void *parts[] = {topic, with ? src->client_id : NULL, with ? src->username : NULL};
	size_t lens[] = {len, with ? src->client_id_len : 0,
	                 with && src->has_user ? src->username_len : 0};
	struct store_op *op = add_parts(b, STORE_OP_RETAIN_PUT, parts, lens, 3);
	if (!op)
		return TERN_E_NOMEM;
	op->msg_id = msg_id;
	op->u16 = (uint16_t)len;
	if (with) {
		op->u8b = 1;
		op->u8c = src->has_user;
		op->u8a = src->listener;
		op->u32 = (uint32_t)src->client_id_len;
	}
	return TERN_OK;
}

enum tern_err store_delivery_put(struct store_batch *b, uint64_t session, uint64_t msg_id,
                                 uint8_t qos, bool retain, const uint32_t *sub_ids,
                                 uint16_t n_sub_ids)
{
	struct store_op *op =
	        add(b, STORE_OP_DELIVERY_PUT, sub_ids, (size_t)n_sub_ids * sizeof(uint32_t));
	if (!op)
		return TERN_E_NOMEM;
	op->session = session;
	op->msg_id = msg_id;
	op->u8a = qos;
	op->u8b = retain;
	return TERN_OK;
}

enum tern_err store_delivery_state(struct store_batch *b, uint64_t session, uint64_t msg_id,
                                   uint16_t packet_id, enum store_dstate state)
{
	struct store_op *op = add(b, STORE_OP_DELIVERY_STATE, NULL, 0);
	if (!op)
		return TERN_E_NOMEM;
	op->session = session;
	op->msg_id = msg_id;
	op->u16 = packet_id;
	op->u8a = (uint8_t)state;
	return TERN_OK;
}

enum tern_err store_delivery_del(struct store_batch *b, uint64_t session, uint64_t msg_id)
{
	struct store_op *op = add(b, STORE_OP_DELIVERY_DEL, NULL, 0);
	if (!op)
		return TERN_E_NOMEM;
	op->session = session;
	op->msg_id = msg_id;
	return TERN_OK;
}

enum tern_err store_qos2_put(struct store_batch *b, uint64_t session, uint16_t packet_id)
{
	struct store_op *op = add(b, STORE_OP_QOS2_PUT, NULL, 0);
	if (!op)
		return TERN_E_NOMEM;
	op->session = session;
	op->u16 = packet_id;
	return TERN_OK;
}

enum tern_err store_qos2_del(struct store_batch *b, uint64_t session, uint16_t packet_id)
{
	struct store_op *op = add(b, STORE_OP_QOS2_DEL, NULL, 0);
	if (!op)
		return TERN_E_NOMEM;
	op->session = session;
	op->u16 = packet_id;
	return TERN_OK;
}

enum tern_err store_will_put(struct store_batch *b, uint64_t session, uint64_t msg_id,
                             int64_t will_at)
{
	struct store_op *op = add(b, STORE_OP_WILL_PUT, NULL, 0);
	if (!op)
		return TERN_E_NOMEM;
	op->session = session;
	op->msg_id = msg_id;
	op->when = will_at;
	return TERN_OK;
}

/* Appends an operation whose data is the n parts[i] of lens[i] bytes one
 * after the other; returns it, or NULL with the batch unchanged. */
static struct store_op *add_parts(struct store_batch *b, enum store_op_kind kind,
                                  const void *const *parts, const size_t *lens, size_t n)
{
	size_t mark = b->bytes.len;
	struct store_op *op = add(b, kind, NULL, 0);
	if (!op)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (lens[i] && buf_append(&b->bytes, parts[i], lens[i], 0)) {
			b->n--;
			b->bytes.len = mark;
			return NULL;
		}
		op->len += lens[i];
	}
	return op;
}

/* Archive entries: data is the boot id (8 bytes, host order), the archive
 * name with its NUL (u16 bytes with it), the client id (u32 bytes) and the
 * username (the rest; u8a says whether there is one); session is the
 * sequence number, when the reception time. */
enum tern_err store_archive_put(struct store_batch *b, const char *name, uint64_t boot,
                                uint64_t seq, uint64_t msg_id, int64_t received_at,
                                const uint8_t *cid, size_t cid_len, const uint8_t *user,
                                size_t user_len, bool has_user)
{
	size_t name_len = strlen(name) + 1;
	if (name_len > UINT16_MAX || cid_len > UINT32_MAX)
		return TERN_E_INVALID;
	const void *parts[] = {&boot, name, cid, user};
	size_t lens[] = {sizeof(boot), name_len, cid_len, has_user ? user_len : 0};
	struct store_op *op = add_parts(b, STORE_OP_ARCHIVE_PUT, parts, lens, 4);
	if (!op)
		return TERN_E_NOMEM;
	op->session = seq;
	op->msg_id = msg_id;
	op->when = received_at;
	op->u16 = (uint16_t)name_len;
	op->u32 = (uint32_t)cid_len;
	op->u8a = has_user;
	return TERN_OK;
}

enum tern_err store_archive_del(struct store_batch *b, const char *name, uint64_t boot,
                                uint64_t seq, uint64_t msg_id)
{
	size_t name_len = strlen(name) + 1;
	if (name_len > UINT16_MAX)
		return TERN_E_INVALID;
	const void *parts[] = {&boot, name};
	size_t lens[] = {sizeof(boot), name_len};
	struct store_op *op = add_parts(b, STORE_OP_ARCHIVE_DEL, parts, lens, 2);
	if (!op)
		return TERN_E_NOMEM;
	op->session = seq;
	op->msg_id = msg_id;
	op->u16 = (uint16_t)name_len;
	return TERN_OK;
}
