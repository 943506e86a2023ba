/*
 * batch.h - the inside of a store batch, shared by batch.c, store.c and the
 * back-ends. Nothing outside src/store includes it.
 */
#ifndef TERN_STORE_BATCH_H
#define TERN_STORE_BATCH_H

#include "store/store.h"
#include "util/buf.h"
#include "util/mpsc.h"

enum store_op_kind {
	STORE_OP_SESSION_PUT,
	STORE_OP_SESSION_DEL,
	STORE_OP_SUB_PUT,
	STORE_OP_SUB_DEL,
	STORE_OP_MSG_PUT,
	STORE_OP_RETAIN_PUT,
	STORE_OP_DELIVERY_PUT,
	STORE_OP_DELIVERY_STATE,
	STORE_OP_DELIVERY_DEL,
	STORE_OP_QOS2_PUT,
	STORE_OP_QOS2_DEL,
	STORE_OP_WILL_PUT,
	STORE_OP_ARCHIVE_PUT,
	STORE_OP_ARCHIVE_DEL,
};

/* One operation. Which fields mean what depends on kind (see batch.c);
 * variable-length data is bytes[off..off+len) of the batch. */
struct store_op {
	enum store_op_kind kind;
	uint8_t u8a, u8b, u8c;
	uint16_t u16;
	uint32_t u32;
	uint64_t session;
	uint64_t msg_id;
	int64_t when;
	size_t off, len;
	struct msg *msg; /* STORE_OP_MSG_PUT: a reference (when: its
	                       * wall-clock expiry, 0 for none) */
};

struct store_batch {
	struct mpsc_node node; /* the storage thread's queue */
	struct store_op *ops;
	size_t n, cap;
	struct buf bytes;
	store_done_fn done;
	void *done_arg;
	uint64_t ticket;
};

/* The variable-length data of op; NULL when the batch holds no bytes at all
 * (only operations without data, such as deletions: the buffer was never
 * allocated, and NULL + 0 is undefined behaviour in C). */
static inline const uint8_t *store_op_data(const struct store_batch *b, const struct store_op *op)
{
	if (!b->bytes.data)
		return NULL;
	return b->bytes.data + b->bytes.off + op->off;
}

/* A back-end: one ops table per storage technology. */
struct store_backend;

struct store_ops {
	const char *name;
	/* Opens the back-end's storage for cfg into *out (as store_open(),
	 * whose errors it returns, with the reason in err). */
	TERN_MUST_CHECK enum tern_err (*open)(struct store_backend **out,
	                                      const struct store_config *cfg, char *err,
	                                      size_t errlen);
	/* Reads everything back through loader (as store_load()). */
	TERN_MUST_CHECK enum tern_err (*load)(struct store_backend *be,
	                                      const struct store_loader *loader, uint64_t *max_id,
	                                      char *err, size_t errlen);
	/* Applies batches[0..n) in one transaction. */
	TERN_MUST_CHECK enum tern_err (*apply)(struct store_backend *be,
	                                       struct store_batch *const *batches, size_t n);
	/* Closes the storage and frees be. */
	void (*close)(struct store_backend *be);
};

/* The SQLite back-end (sqlite.c). */
extern const struct store_ops store_sqlite_ops;

#endif
