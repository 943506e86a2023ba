/*
 * log_limit.h - rate limiting of log lines that repeat per message.
 *
 * A slow subscriber can overflow its queue a hundred thousand times a
 * second, and a client denied by the ACL can publish as fast: one line per
 * event would flood the log and cost every other client of the worker the
 * time to format it. So such lines pass a limiter first: per (kind,
 * client), the first event of a window writes its line, the others of the
 * window are only counted, and when the window ends a summary says how
 * many there were: "Warning: 1999 more dropped for client sub1 in the last
 * 10 s." A kind whose window saw no more events is forgotten, so the next
 * event writes its full line again; under a steady flood that is two lines
 * per client and window.
 *
 * One limiter per worker, touched only by that worker's thread: no locks.
 * The table is bounded (LOG_LIMIT_CLIENTS entries); events of further
 * clients while it is full are counted together and summarised as "for
 * other clients". Client ids are table keys chosen by clients, so the table
 * hashes them under the broker's secret key (util/hash.h).
 */
#ifndef TERN_UTIL_LOG_LIMIT_H
#define TERN_UTIL_LOG_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/log.h"
#include "util/map.h"
#include "util/siphash.h"

/* Clients tracked at once per limiter. */
#define LOG_LIMIT_CLIENTS 1024u
/* Bytes of a client id kept for the summary; longer ids share an entry
 * with the ids of the same prefix. */
#define LOG_LIMIT_ID_MAX 128u

/* A kind of repeated line: its log type and what the summary calls the
 * events ("dropped", "denied PUBLISH"). Static: entries keep the pointer. */
struct log_kind {
	unsigned type;    /* enum log_type */
	const char *what; /* "N more <what> for client X" */
};

struct log_limit_entry;

struct log_limiter {
	const struct log *log;
	struct hash_key hk;
	uint64_t window_ms;
	struct map entries; /* (kind, client id) -> entry */
	/* Entries in the order their windows started (oldest first), so
	 * the ones due are at the head. */
	struct log_limit_entry *head, *tail;
	/* Events of clients that found the table full. */
	const struct log_kind *other_kind; /* the first such kind */
	uint64_t other_count;
	uint64_t other_since;
};

/* Sets up an empty limiter writing to log (which must outlive it), hashing
 * client ids under hk (copied), with windows of window_ms (10,000 in the
 * broker). */
void log_limiter_init(struct log_limiter *l, const struct log *log, const struct hash_key *hk,
                      uint64_t window_ms);

/*
 * Asks whether the line of one event of `kind` for client id
 * cid[0..cid_len) should be written now (monotonic time now_ms). True: the
 * caller writes its line. False: the event was counted for the summary, or
 * lines of that type are off. Costs one table lookup; allocates once per
 * (kind, client) and window (when that fails, the event is just counted
 * with "other clients").
 */
bool log_limit_pass(struct log_limiter *l, const struct log_kind *kind, const void *cid,
                    size_t cid_len, uint64_t now_ms);

/* Ends the windows that are over at now_ms: writes their summaries and
 * forgets them. Call it now and then (the worker's tick). */
void log_limiter_tick(struct log_limiter *l, uint64_t now_ms);

/* Writes the summaries of every open window, counted up to now_ms, and
 * frees the limiter's memory; it is empty and usable again after. */
void log_limiter_flush(struct log_limiter *l, uint64_t now_ms);

#endif
