/*
 * archive_link.c - the archives (src/archive) plugged into the broker; see
 * archive_link.h and docs/archive.md.
 *
 * The hook is one call on the publish path, in session_publish() after the
 * message was routed (accepted), and one where a will is published: archive_link_publish() asks each archive
 * whether it wants the message and, if so, makes an entry and keeps it in
 * the worker's chain for that archive. With durable storage a QoS >= 1
 * entry is also written into the iteration's store batch, the one that
 * holds the message's other rows, so the PUBACK / PUBREC that waits for
 * that batch's commit (session_ack()) promises the archive entry too: a
 * kill -9 after the acknowledgement finds it in the store at the next
 * start (archive_link_restore()). QoS 0 entries, and every entry without
 * durable storage, live in memory only.
 *
 * Before the worker sleeps, after it submitted the store batch,
 * archive_link_flush() pushes each chain to its archive's thread, one
 * mutex round per archive and iteration. Submitting first keeps the
 * store's order: the batch that writes an entry reaches the storage thread
 * before the archive can ask it to delete the entry. The archive may write
 * the entry to its database before the store commits; if that commit then
 * fails, the message is archived but not acknowledged, which at least once
 * allows.
 *
 * With no archive configured, b->archives is NULL and the publish path
 * pays one test.
 */
#include "broker/archive_link.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive.h"
#include "broker/broker.h"
#include "broker/persist.h"
#include "broker/worker.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/msg.h"

/* How long a stopping ternd waits for an archive's database. */
#define STOP_GRACE_MS 5000u

/* A worker's chains, one per archive, and its entry blocks (w->archive). */
struct archive_worker {
	struct archive_chain *chains;
	struct archive_credit *credits; /* one per archive, as chains */
	struct archive_pool *pool;
	/* The wall clock of the loop iteration at w->now: a message is
	 * stamped with when its iteration read it, one clock read each. */
	uint64_t wall_of;
	int64_t wall;
};

enum tern_err archive_link_open(struct broker *b)
{
	const struct config *cfg = &b->cfg;
	if (!cfg->n_archives)
		return TERN_OK;
	b->archives = calloc(cfg->n_archives, sizeof(*b->archives));
	if (!b->archives)
		return TERN_E_NOMEM;
	for (size_t i = 0; i < cfg->n_archives; i++) {
		const struct archive_cfg *ac = &cfg->archives[i];
		const char *filters[MAX_ARCHIVE_TOPICS];
		for (size_t t = 0; t < ac->n_topics; t++)
			filters[t] = ac->topics[t];
		struct archive_spec spec = {.name = ac->name,
		                            .url = ac->url,
		                            .filters = filters,
		                            .n_filters = ac->n_topics,
		                            .qos = ac->qos,
		                            .batch_n = ac->batch_n,
		                            .batch_ms = ac->batch_ms,
		                            .queue_n = ac->queue_n,
		                            .queue_bytes = ac->queue_bytes,
		                            .where = ac->where};
		char err[1024] = "";
		enum tern_err e = archive_new(&b->archives[i], &spec, &b->log, err, sizeof(err));
		if (!e)
			e = archive_connect(b->archives[i], err, sizeof(err));
		b->n_archives = i + 1;
		if (e) {
			log_write(&b->log, LOG_TYPE_ERR, "Error: %s",
			          err[0] ? err : tern_strerror(e));
			return e;
		}
	}
	for (unsigned i = 0; i < b->n_workers; i++) {
		struct worker *w = b->workers[i];
		w->archive = calloc(1, sizeof(*w->archive));
		if (!w->archive ||
		    !(w->archive->chains = calloc(b->n_archives, sizeof(struct archive_chain))) ||
		    !(w->archive->credits = calloc(b->n_archives, sizeof(struct archive_credit))) ||
		    !(w->archive->pool = archive_pool_new()))
			return TERN_E_NOMEM;
	}
	return TERN_OK;
}

enum tern_err archive_link_restore(struct broker *b, const struct store_loaded_archive *a)
{
	for (size_t i = 0; i < b->n_archives; i++)
		if (strcmp(archive_name(b->archives[i]), a->name) == 0)
			return archive_restore(b->archives[i], a->msg, a->boot, a->seq,
			                       a->received_at, a->client_id, a->client_id_len,
			                       a->username, a->username_len, a->username != NULL);
	/* Acknowledged messages are never dropped silently: they wait in
	 * the store for the archive to come back into the config. */
	log_write(&b->log, LOG_TYPE_WARNING,
	          "Warning: the store holds messages for archive %s, which is not configured; "
	          "they stay there until it is",
	          a->name);
	msg_unref(a->msg);
	return TERN_OK;
}

enum tern_err archive_link_start(struct broker *b)
{
	for (size_t i = 0; i < b->n_archives; i++)
		if (archive_start(b->archives[i], b->store))
			return TERN_E_SYS;
	return TERN_OK;
}

void archive_link_publish(struct worker *w, struct msg *m, const uint8_t *cid, size_t cid_len,
                          const uint8_t *user, size_t user_len, bool has_user)
{
	struct broker *b = w->broker;
	struct archive_worker *aw = w->archive;
	for (size_t i = 0; i < b->n_archives; i++) {
		struct archive *a = b->archives[i];
		if (!archive_wants(a, m))
			continue;
		if (aw->wall_of != w->now || !aw->wall) {
			aw->wall = wall_ms();
			aw->wall_of = w->now;
		}
		struct archive_entry *e =
		        archive_entry_new(a, aw->pool, &aw->credits[i], m, aw->wall, cid, cid_len,
		                          user, user_len, has_user);
		if (!e)
			continue; /* counted and logged by the archive */
		if (m->qos > 0 && m->store_id) {
			struct store_batch *batch = persist_batch(w);
			/* Not spilled (out of memory): it is archived from memory,
			 * and a crash before that loses it, as without a store. */
			if (batch)
				persist_note(w, archive_entry_spill(a, e, batch));
		}
		struct archive_chain *c = &w->archive->chains[i];
		if (c->tail)
			c->tail->next = e;
		else
			c->head = e;
		c->tail = e;
		c->n++;
	}
}

void archive_link_flush(struct worker *w)
{
	struct broker *b = w->broker;
	for (size_t i = 0; i < b->n_archives; i++)
		if (w->archive->chains[i].n || w->archive->credits[i].n)
			archive_push(b->archives[i], &w->archive->chains[i],
			             &w->archive->credits[i]);
}

void archive_link_stop(struct broker *b)
{
	/* What the workers gathered in their last steps is handed over
	 * first; its store batch was submitted by then. */
	for (unsigned i = 0; b->workers && b->archives && i < b->n_workers; i++)
		if (b->workers[i] && b->workers[i]->archive)
			archive_link_flush(b->workers[i]);
	for (size_t i = 0; i < b->n_archives; i++)
		archive_stop(b->archives[i], STOP_GRACE_MS);
}

void archive_link_free(struct broker *b)
{
	for (unsigned i = 0; b->workers && i < b->n_workers; i++) {
		struct worker *w = b->workers[i];
		if (!w || !w->archive)
			continue;
		for (size_t a = 0; w->archive->chains && a < b->n_archives; a++) {
			struct archive_chain *c = &w->archive->chains[a];
			for (struct archive_entry *e = c->head, *next; e; e = next) {
				next = e->next;
				archive_entry_drop(b->archives[a], e);
			}
		}
	}
	/* The archives free what they hold, into the workers' pools, which
	 * go last. */
	for (size_t i = 0; i < b->n_archives; i++)
		archive_free(b->archives[i]);
	free(b->archives);
	b->archives = NULL;
	b->n_archives = 0;
	for (unsigned i = 0; b->workers && i < b->n_workers; i++) {
		struct worker *w = b->workers[i];
		if (!w || !w->archive)
			continue;
		archive_pool_free(w->archive->pool);
		free(w->archive->chains);
		free(w->archive->credits);
		free(w->archive);
		w->archive = NULL;
	}
}

static bool line(struct buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool line(struct buf *o, const char *fmt, ...)
{
	char s[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(s, sizeof(s), fmt, ap);
	va_end(ap);
	if (n < 0)
		return false;
	return buf_append(o, s, (size_t)n < sizeof(s) ? (size_t)n : sizeof(s) - 1, 0) == TERN_OK;
}

bool archive_link_metrics(struct broker *b, struct buf *o)
{
	if (!b->n_archives)
		return true;
	static const struct {
		const char *name, *type, *help;
	} rows[] = {
	        {"tern_archive_messages_archived_total", "counter",
	         "Messages written to the archive's database."},
	        {"tern_archive_messages_queued", "gauge",
	         "Messages waiting for the archive's database (archive_queue bounds them)."},
	        {"tern_archive_bytes_queued", "gauge", "Bytes of the messages waiting."},
	        {"tern_archive_messages_dropped_total", "counter",
	         "Messages not archived: the archive's queue was full."},
	        {"tern_archive_failures_total", "counter",
	         "Failed writes and connection attempts to the archive's database."},
	        {"tern_archive_connected", "gauge", "1 while the archive's database is connected."},
	};
	bool ok = true;
	struct archive_stats st[MAX_ARCHIVES];
	for (size_t i = 0; i < b->n_archives; i++)
		archive_stats(b->archives[i], &st[i]);
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		ok &= line(o, "# HELP %s %s\n# TYPE %s %s\n", rows[r].name, rows[r].help,
		           rows[r].name, rows[r].type);
		for (size_t i = 0; i < b->n_archives; i++) {
			uint64_t v[] = {st[i].archived, st[i].queued,   st[i].queued_bytes,
			                st[i].dropped,  st[i].failures, st[i].connected};
			ok &= line(o, "%s{archive=\"%s\"} %" PRIu64 "\n", rows[r].name,
			           archive_name(b->archives[i]), v[r]);
		}
	}
	ok &= line(o, "# HELP tern_archive_batch_seconds Time to write one batch to the archive's "
	              "database.\n# TYPE tern_archive_batch_seconds summary\n");
	for (size_t i = 0; i < b->n_archives; i++) {
		const char *n = archive_name(b->archives[i]);
		ok &= line(o, "tern_archive_batch_seconds_sum{archive=\"%s\"} %.6f\n", n,
		           (double)st[i].batch_us_sum / 1e6);
		ok &= line(o, "tern_archive_batch_seconds_count{archive=\"%s\"} %" PRIu64 "\n", n,
		           st[i].batches);
	}
	return ok;
}

void archive_link_sys(struct worker *w,
                      void (*pub)(struct worker *w, const char *topic, const char *value))
{
	struct broker *b = w->broker;
	for (size_t i = 0; i < b->n_archives; i++) {
		struct archive_stats st;
		archive_stats(b->archives[i], &st);
		const char *n = archive_name(b->archives[i]);
		char topic[128], value[64];
		const struct {
			const char *what;
			uint64_t v;
		} rows[] = {{"archived", st.archived},
		            {"queued", st.queued},
		            {"dropped", st.dropped},
		            {"batch_latency_us", st.batches ? st.batch_us_sum / st.batches : 0},
		            {"connected", st.connected}};
		for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
			snprintf(topic, sizeof(topic), "archive/%s/%s", n, rows[r].what);
			snprintf(value, sizeof(value), "%" PRIu64, rows[r].v);
			pub(w, topic, value);
		}
	}
}
