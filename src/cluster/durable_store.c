/*
 * durable_store.c - the QoS 1/2 messages of local clients into the
 * messages stream (durable.c has the stream and the queues): cluster_store()
 * and cluster_retain() publish asynchronously, and the stored callback
 * reports JetStream's answer, which comes once the message is on its
 * replicas, so the broker acknowledges the PUBLISH only when the loss of
 * this node cannot lose it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"
#include "cluster/wire.h"
#include "util/clock.h"

/* A cluster_store() waiting for JetStream. */
struct store_wait {
	uint64_t token;
};

/* ---- storing ---- */

void durable_on_stored(jsCtx *js, natsMsg *nm, jsPubAck *pa, jsPubAckErr *pae, void *arg)
{
	(void)js;
	struct cluster *c = arg;
	pthread_mutex_lock(&c->store_mu);
	struct store_wait *w = map64_del(&c->stores, (uint64_t)(uintptr_t)nm);
	pthread_mutex_unlock(&c->store_mu);
	natsMsg_Destroy(nm);
	if (!w)
		return;
	uint64_t token = w->token;
	free(w);
	atomic_fetch_sub(&c->store_waiting, 1);
	enum tern_err err = TERN_OK;
	if (!pa || pae) {
		err = TERN_E_SYS;
		if (atomic_fetch_add(&c->stored_failed, 1) % 1000 == 0)
			log_write(c->log, LOG_TYPE_WARNING,
			          "Cluster: a QoS 1/2 message was not stored in JetStream: %s (%d)",
			          pae && pae->ErrText
			                  ? pae->ErrText
			                  : natsStatus_GetText(pae ? pae->Err : NATS_ERR),
			          pae ? (int)pae->ErrCode : 0);
	} else {
		atomic_fetch_add_explicit(&c->stored_ok, 1, memory_order_relaxed);
	}
	c->cb.stored(c->cb.arg, token, err);
}

/* Stores m on a subject of one of the cluster's streams: "<cluster>.<kind>.
 * <topic subject after "<cluster>.">", kind 'q' for the messages stream,
 * 'r' for the retained one; stored(token) follows (token 0: nobody waits,
 * the callback still comes and is ignored by the broker). */
static bool store_as(struct cluster *c, char kind, const struct msg *m, uint64_t now,
                     struct buf *scratch, uint64_t token)
{
	if (cluster_topic_local(m->topic) ||
	    !atomic_load_explicit(&c->js_up, memory_order_acquire) ||
	    !atomic_load_explicit(&c->up_p, memory_order_relaxed) ||
	    atomic_load_explicit(&c->store_waiting, memory_order_relaxed) >= STORE_MAX_WAITING)
		return false;
	char topic_subj[SUBJECT_MAX + 1], subj[SUBJECT_MAX + 8];
	size_t len;
	if (subject_of_topic(c->prefix, m->topic, topic_subj, SUBJECT_MAX, &len))
		return false;
	if (kind == 'q')
		durable_queue_subject(c, topic_subj, subj);
	else
		snprintf(subj, sizeof(subj), "%s.%c.%s", c->prefix, kind,
		         topic_subj + strlen(c->prefix) + 1);
	scratch->off = scratch->len = 0;
	if (wire_encode(scratch, m, now, (size_t)c->max_payload))
		return false;
	natsMsg *nm = NULL;
	struct store_wait *w = malloc(sizeof(*w));
	if (!w || natsMsg_Create(&nm, subj, NULL, (const char *)scratch->data, (int)scratch->len) !=
	                  NATS_OK) {
		free(w);
		return false;
	}
	w->token = token;
	/* In the map before the publish: the answer may come before
	 * js_PublishMsgAsync() returns. */
	uint64_t key = (uint64_t)(uintptr_t)nm;
	pthread_mutex_lock(&c->store_mu);
	enum tern_err err = map64_put(&c->stores, key, w);
	pthread_mutex_unlock(&c->store_mu);
	if (err) {
		free(w);
		natsMsg_Destroy(nm);
		return false;
	}
	atomic_fetch_add(&c->store_waiting, 1);
	atomic_store_explicit(&c->store_used, true, memory_order_relaxed);
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = CLUSTER_STORE_WAIT_MS;
	natsMsg *sent = nm;
	if (js_PublishMsgAsync(c->js_store, &sent, &po) != NATS_OK) {
		/* Not sent, and libnats will not call back for it. */
		pthread_mutex_lock(&c->store_mu);
		(void)map64_del(&c->stores, key);
		pthread_mutex_unlock(&c->store_mu);
		atomic_fetch_sub(&c->store_waiting, 1);
		free(w);
		natsMsg_Destroy(sent);
		return false;
	}
	flush_kick(c->flusher);
	return true;
}

bool cluster_store(struct cluster *c, const struct msg *m, uint64_t now, struct buf *scratch,
                   uint64_t token)
{
	return store_as(c, 'q', m, now, scratch, token);
}

bool cluster_retain(struct cluster *c, const struct msg *m, uint64_t now, struct buf *scratch,
                    uint64_t token)
{
	if (!store_as(c, 'r', m, now, scratch, token))
		return false;
	atomic_fetch_add(&c->retained_out, 1);
	return true;
}

void durable_close(struct cluster *c)
{
	if (c->js_store) {
		/* Stores JetStream did not answer are forgotten (no callback
		 * after close); one whose callback is running is waited for:
		 * libnats counts it pending until the callback returns. */
		natsMsgList list = {0};
		/* libnats 3.4 reads a table it makes at the first publish. */
		if (atomic_load(&c->store_used) &&
		    js_PublishAsyncGetPendingList(&list, c->js_store) == NATS_OK) {
			for (int i = 0; i < list.Count; i++) {
				pthread_mutex_lock(&c->store_mu);
				free(map64_del(&c->stores, (uint64_t)(uintptr_t)list.Msgs[i]));
				pthread_mutex_unlock(&c->store_mu);
			}
			natsMsgList_Destroy(&list);
		}
		(void)js_PublishAsyncComplete(c->js_store, NULL);
		jsCtx_Destroy(c->js_store);
		c->js_store = NULL;
	}
	size_t pos = 0;
	struct store_wait *w;
	while ((w = map_next(&c->stores, &pos)))
		free(w);
	map_free(&c->stores);
}
