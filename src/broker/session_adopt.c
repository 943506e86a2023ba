/*
 * session_adopt.c - a session of a dead cluster node, adopted by this one
 * (docs/cluster.md, "When a node dies"; src/cluster/adopt.c chose this
 * node and rewrote the session's record to name it).
 *
 * The session is built here, on its client id's home worker, from its
 * record, as if its client had just gone offline: its subscriptions with
 * their routes on every replica (its durable queues, made by the dead node
 * at SUBSCRIBE, keep what is published for it and are bound here, as for
 * any session this node holds), its will, and its expiry. The will goes
 * after its Will Delay Interval and the session ends after its Session
 * Expiry Interval, both counted from the record's offline time: when the
 * dead node's heartbeat stopped, or when the client left before that
 * [MQTT-3.1.2-8] [MQTT-3.1.3-9]. A session with expiry 0 (a record kept
 * for its will only) ends at once, its will with it. Nothing here claims
 * the client id: the adopted session is older than any claim, so the
 * client reconnecting on any node takes it over (the pending will then
 * cancelled), and reconnecting here resumes it.
 */
#include "broker/session.h"

#include <stdlib.h>

#include "broker/broker.h"
#include "broker/cluster_link.h"
#include "broker/config.h"
#include "broker/route.h"
#include "broker/router.h"
#include "broker/session_int.h"
#include "broker/worker.h"
#include "cluster/session_record.h"
#include "store/store.h"
#include "tern/codec.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/msg.h"

/* s takes will, the will of record r: due r->will_delay (at most the
 * session's expiry [MQTT-3.1.3-9]) after the record's offline time, and
 * kept in the local store as a delayed will, which must survive a restart
 * too. */
static void take_will(struct session *s, const struct session_record *r, struct msg *will)
{
	struct worker *w = s->w;
	uint64_t now = w->now;
	int64_t wall = wall_ms();
	uint32_t delay = r->will_delay < s->expiry ? r->will_delay : s->expiry;
	s->will = will;
	s->will_has_expiry = r->will_has_expiry;
	s->will_expiry = r->will_expiry;
	s->will_at = session_mono_of_wall(r->offline_at + (int64_t)delay * 1000, now, wall);
	struct store_batch *batch = stored_batch(s);
	persist_assign_id(w, will);
	if (batch && will->store_id) {
		persist_note(w, store_msg_put(batch, will));
		persist_note(w, store_will_put(batch, s->id, will->store_id,
		                               wall + (int64_t)(s->will_at - now)));
	}
}

void session_held_elsewhere(struct worker *w, struct tern_bytes cid)
{
	struct session *s = session_find(w, cid.data, cid.len);
	if (!s || session_sink(s))
		return;
	log_write(&w->broker->log, LOG_TYPE_NOTICE,
	          "Client %.*s: its session went to another node while this one was down; the "
	          "restored copy goes.",
	          (int)cid.len, (const char *)cid.data);
	session_will_cancel(s);
	session_destroy_moved(s, false);
}

void session_rejoined(struct worker *w, struct tern_bytes cid, uint64_t claim)
{
	struct session *s = session_find(w, cid.data, cid.len);
	/* One this node adopted carries the dead holder's claim too: a pass
	 * of this node's own that read the record before its adoption was
	 * written must not drop it. */
	if (!s || !claim || s->claim != claim || s->adopted)
		return;
	if (!session_sink(s)) {
		session_held_elsewhere(w, cid);
		return;
	}
	/* Its connection never left: a claim newer than the adoption takes
	 * the session back wherever it was adopted, and the record names
	 * this node again. The will the adopter published while this node
	 * was cut off has gone (docs/cluster.md). */
	session_claim_set(s, cluster_link_claim(w, cid, false));
	session_cluster_write(s, NULL);
	log_write(&w->broker->log, LOG_TYPE_NOTICE,
	          "Client %.*s: its session was adopted by another node while this one was cut off "
	          "from the cluster; its connection is here, so it is taken back.",
	          (int)cid.len, (const char *)cid.data);
}

void session_adopt(struct worker *w, struct tern_bytes cid, const uint8_t *rec, size_t len)
{
	struct broker *b = w->broker;
	struct session_record r;
	if (session_record_decode(rec, len, &r)) {
		log_write(&b->log, LOG_TYPE_ERR,
		          "Error: the adopted session record of %.*s does not decode.",
		          (int)cid.len, (const char *)cid.data);
		return;
	}
	struct session *here = session_find(w, cid.data, cid.len);
	if (here && !session_sink(here) && !here->will && r.has_will) {
		/* Our own earlier run's session, restored from the store,
		 * whose client was online when the run ended (adopt_own()):
		 * the store had no will for it, the record has. */
		struct msg *will = NULL;
		if (session_record_will(&r, w->now, &will)) {
			log_write(&b->log, LOG_TYPE_ERR,
			          "Error: out of memory restoring the will of %.*s", (int)cid.len,
			          (const char *)cid.data);
			return;
		}
		take_will(here, &r, will);
		here->cluster_rec = true;
		log_write(&b->log, LOG_TYPE_NOTICE,
		          "Client %.*s: the will of its connection before the restart is due.",
		          (int)cid.len, (const char *)cid.data);
		if (session_due(here, w->now))
			(void)session_tick(here, w->now);
		return;
	}
	if (here) {
		/* The client is back on this node already: the session of
		 * its connection is the one that holds. */
		log_write(&b->log, LOG_TYPE_DEBUG,
		          "Client %.*s is connected here already; the adopted session is not "
		          "needed.",
		          (int)cid.len, (const char *)cid.data);
		return;
	}
	struct msg *will = NULL;
	if (r.has_will && session_record_will(&r, w->now, &will)) {
		log_write(&b->log, LOG_TYPE_ERR,
		          "Error: out of memory adopting the session of %.*s", (int)cid.len,
		          (const char *)cid.data);
		return;
	}
	struct session *s = session_new(w, cid.data, cid.len, r.version);
	if (!s || session_register(w, s)) {
		free(s);
		msg_unref(will);
		log_write(&b->log, LOG_TYPE_ERR,
		          "Error: out of memory adopting the session of %.*s", (int)cid.len,
		          (const char *)cid.data);
		return;
	}
	uint32_t expiry = r.expiry, bound = b->cfg.persistent_client_expiration;
	if (expiry == UINT32_MAX && bound)
		expiry = bound;
	/* Stored (in a local store) as a session that just went offline. */
	session_set_expiry(s, expiry);
	/* The record adopt.c rewrote names this node under the dead
	 * holder's claim: later writes of it go on from there. */
	s->claim = r.claim;
	s->adopted = true;
	s->cluster_rec = true;
	size_t cur = 0;
	struct session_record_sub e;
	while (session_record_next_sub(&r, &cur, &e))
		if (session_record_sub_add(s, &e))
			log_write(&b->log, LOG_TYPE_ERR,
			          "Error: out of memory restoring a subscription of %.*s",
			          (int)cid.len, (const char *)cid.data);
	uint64_t now = w->now;
	if (expiry != UINT32_MAX)
		s->expire_at =
		        session_mono_of_wall(r.offline_at + (int64_t)expiry * 1000, now, wall_ms());
	if (will)
		take_will(s, &r, will);
	session_durable_bind(s);
	log_write(&b->log, LOG_TYPE_NOTICE,
	          "Client %.*s: session adopted from a dead node (%u subscriptions%s).",
	          (int)cid.len, (const char *)cid.data, (unsigned)session_sub_count(s),
	          will ? ", a will" : "");
	/* A will or an expiry already due (expiry 0: a session kept for its
	 * will only) goes now rather than at the next tick. */
	if (session_due(s, now))
		(void)session_tick(s, now);
}
