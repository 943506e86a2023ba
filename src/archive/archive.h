/*
 * archive.h - messages into databases (docs/archive.md): an archive is a
 * sink (sink.h), the filters and QoS of the messages it keeps, and a
 * bounded queue drained by a thread of its own (archive.c). The broker
 * plugs in through src/broker/archive_link.c; nothing here knows it.
 *
 * Who calls what:
 *   main thread   archive_new, archive_connect (at start: a database that
 *                 refuses the schema stops ternd), archive_restore (the
 *                 entries spilled to the store by the last run),
 *                 archive_start, archive_stop, archive_free
 *   a worker      archive_wants, archive_entry_new (which admits the entry
 *                 into the queue's bound or counts it dropped),
 *                 archive_push (a chain of entries, once per loop
 *                 iteration), archive_entry_drop
 *   any thread    archive_stats
 *
 * Ownership: an entry holds a reference of its message. It belongs to
 * whoever made it until archive_push(), then to the archive, which frees it
 * once its database has it (and, for a spilled entry, asks the store to
 * forget it) or at archive_free().
 */
#ifndef TERN_ARCHIVE_ARCHIVE_H
#define TERN_ARCHIVE_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/codec.h"
#include "tern/error.h"

struct archive;
struct log;
struct msg;
struct store;
struct store_batch;

/* How an archive is configured (the broker's `archive` block). The
 * strings are copied by archive_new(). */
struct archive_spec {
	const char *name;           /* also the table / collection */
	const char *url;            /* archive_sink */
	const char *const *filters; /* archive_topic, valid MQTT filters */
	size_t n_filters;
	uint8_t qos;          /* archive_qos: lower QoS is not archived */
	uint32_t batch_n;     /* archive_batch N: flush at N messages */
	uint32_t batch_ms;    /*   or T ms after the first waits */
	uint64_t queue_n;     /* archive_queue: messages waiting, at most */
	uint64_t queue_bytes; /*   and their bytes */
	const char *where;    /* "FILE:LINE" of the block, for errors */
};

struct archive_pool;

/* One message on its way to the database. Fields are the archive's. */
struct archive_entry {
	struct archive_entry *next;
	struct archive_pool *pool; /* the block's pool; NULL: malloc's */
	struct msg *msg;           /* a reference */
	uint64_t boot, seq;        /* the unique key */
	int64_t received_at;       /* wall-clock ms */
	uint64_t spilled_id; /* the message's store id when the entry is in the store; 0: not */
	uint64_t queued_at;  /* monotonic ms it reached the queue */
	uint32_t size;       /* what it counts against queue_bytes */
	uint16_t cid_len, user_len;
	bool has_user;
	uint8_t data[]; /* client id, then username */
};

/* A chain of entries (head..tail, n of them), as a worker gathers them. */
struct archive_chain {
	struct archive_entry *head, *tail;
	size_t n;
};

/* Counters of one archive, for /metrics and $SYS. */
struct archive_stats {
	uint64_t archived; /* written to the database */
	uint64_t queued;   /* admitted, not written yet */
	uint64_t queued_bytes;
	uint64_t dropped;      /* refused: the queue was full */
	uint64_t batches;      /* batches written */
	uint64_t batch_us_sum; /* their write time, in all */
	uint64_t batch_us_last;
	uint64_t failures; /* failed writes and connection attempts */
	bool connected;
};

/* Makes the archive of spec (no I/O, no thread): finds its sink, checks
 * the URL. TERN_E_CONFIG with "WHERE: why" in err; TERN_E_NOMEM. log is
 * the broker's, for the archive's thread (it must outlive the archive). */
TERN_MUST_CHECK enum tern_err archive_new(struct archive **out, const struct archive_spec *spec,
                                          const struct log *log, char *err, size_t errlen);

/* Connects to the database and creates the schema that is missing (main
 * thread, before archive_start). TERN_E_CONFIG with "WHERE: why" in err
 * when the database refuses it; a database that cannot be reached is
 * logged and connected later, with back-off (TERN_OK). */
TERN_MUST_CHECK enum tern_err archive_connect(struct archive *a, char *err, size_t errlen);

/* The archive's name. */
const char *archive_name(const struct archive *a);

/* Whether m (its topic and QoS) is for a. */
bool archive_wants(const struct archive *a, const struct msg *m);

/*
 * A worker's stock of entry blocks (ARCHIVE_POOL_BLOCK bytes each), so that
 * an entry costs no allocation in steady state, as msg_pool does for
 * messages: an entry that fits takes a spare block; whoever frees it (the
 * archive's thread, mostly) pushes the block back onto the pool's
 * lock-free stack, which the owner takes whole when it has no spare left
 * (only pushes race, so no ABA). The owner keeps at most
 * ARCHIVE_POOL_SPARE spare blocks. Free the pool only once every entry made
 * from it is freed (archive_link.c frees the archives first).
 */
#define ARCHIVE_POOL_BLOCK 256u
#define ARCHIVE_POOL_SPARE 4096u

/* A new, empty pool for the calling thread; NULL when out of memory. */
struct archive_pool *archive_pool_new(void);

/* Frees p and its spare blocks (NULL allowed). */
void archive_pool_free(struct archive_pool *p);

/*
 * A worker's share of an archive's bound and of its keys, taken in blocks:
 * the bound's counters and the key sequence are every worker's cache line,
 * and three atomic operations on them per message were a tenth of what
 * archiving cost a worker. Zero-initialised by its owner; what it still
 * holds of the bound goes back with archive_push() (the keys it holds are
 * skipped, which only their uniqueness allows).
 */
struct archive_credit {
	uint64_t n, bytes;          /* room in the bound, taken and not used */
	uint64_t seq_next, seq_end; /* keys [seq_next, seq_end) */
};

/*
 * A new entry for m, received at received_at (wall-clock ms) from client id
 * cid and username user (has_user false: none), with a fresh key, admitted
 * into the queue's bound through cr (the caller's); its block comes from
 * pool (the caller's; NULL: malloc). NULL when the queue is full (counted
 * dropped, logged once per episode) or out of memory (counted dropped
 * too). The caller owns it until archive_push() or archive_entry_drop().
 */
struct archive_entry *archive_entry_new(struct archive *a, struct archive_pool *pool,
                                        struct archive_credit *cr, struct msg *m,
                                        int64_t received_at, const uint8_t *cid, size_t cid_len,
                                        const uint8_t *user, size_t user_len, bool has_user);

/* Records e in store batch b (the message, with store_msg_put(), then the
 * entry), so that it survives a restart until the database has it; marks
 * e spilled. m->store_id must be set. TERN_E_NOMEM leaves e as it was. */
TERN_MUST_CHECK enum tern_err archive_entry_spill(struct archive *a, struct archive_entry *e,
                                                  struct store_batch *b);

/* Frees an entry that will not be pushed, giving back its room in the
 * queue (a spilled one stays in the store, for the next start). */
void archive_entry_drop(struct archive *a, struct archive_entry *e);

/* Hands the chain c to a's thread (any thread); c is emptied. The room
 * credit cr (NULL: none) holds in the bound is given back. */
void archive_push(struct archive *a, struct archive_chain *c, struct archive_credit *cr);

/* An entry the last run spilled (store_load): queued as it was, key and
 * all, beyond the bound if need be (it was acknowledged). Takes the
 * reference of m. TERN_E_NOMEM drops it (it stays in the store). */
TERN_MUST_CHECK enum tern_err archive_restore(struct archive *a, struct msg *m, uint64_t boot,
                                              uint64_t seq, int64_t received_at, const uint8_t *cid,
                                              size_t cid_len, const uint8_t *user, size_t user_len,
                                              bool has_user);

/* Starts the thread; store (NULL: none) is told which spilled entries the
 * database has. */
TERN_MUST_CHECK enum tern_err archive_start(struct archive *a, struct store *store);

/* Stops the thread after it wrote what is queued, or gave up on a
 * database that does not answer within grace_ms (what was spilled stays
 * in the store; the rest is lost, logged with its count). No entry may be
 * pushed during or after. */
void archive_stop(struct archive *a, uint32_t grace_ms);

/* Frees a (stopped or never started) and what it still holds; NULL
 * allowed. */
void archive_free(struct archive *a);

/* Reads a's counters (any thread). */
void archive_stats(const struct archive *a, struct archive_stats *st);

#endif
