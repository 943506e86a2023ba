/*
 * admin.c - the admin API's actions on a worker (admin.h).
 *
 * Clearing a retained message goes the way a client's empty retained
 * PUBLISH goes (session.c's retain()): the store row through the worker's
 * batch, the retained store, then the cluster's stream, but the message is
 * never routed: nobody subscribed receives an empty message for an
 * operator's delete.
 */
#include "broker/admin.h"
#include "broker/broker.h"
#include "broker/cluster_link.h"
#include "broker/persist.h"
#include "broker/retain.h"
#include "broker/worker.h"
#include "store/store.h"
#include "util/msg.h"

enum tern_err admin_retain_clear(struct worker *w, struct tern_bytes topic)
{
	struct broker *b = w->broker;
	struct retain_hits hits = {0};
	/* A topic name has no wildcard: as a filter it matches itself only. */
	enum tern_err err = retain_match(b->retain, topic.data, topic.len, w->now, &hits);
	size_t found = hits.n;
	retain_hits_free(&hits);
	if (err)
		return err;
	if (!found)
		return TERN_E_NOT_FOUND;
	struct msg *m = msg_new(topic, (struct tern_bytes){0}, 0, true, NULL, 0, w->now);
	if (!m)
		return TERN_E_NOMEM;
	struct store_batch *batch = persist_batch(w);
	if (batch)
		persist_note(w, store_retain_put(batch, topic.data, topic.len, 0, NULL));
	err = retain_set(b->retain, m);
	if (!err)
		cluster_link_retain(w, m, false);
	msg_unref(m);
	return err;
}
