/*
 * retained.c - retained messages, cluster-wide, in a JetStream stream.
 *
 * The stream "<cluster>_retained" holds subjects "<cluster>.r.<the topic's
 * subject after the cluster name>" (subject.h), keeps the last message per
 * subject (MaxMsgsPerSubject 1, as NATS' own MQTT layer keeps its retained
 * messages) on file, with cluster_replicas replicas, so the retained set
 * survives the restart of every node. A message is our cross-node encoding
 * (wire.h) with the retain flag; an empty payload is the removal of the
 * topic's retained message [MQTT-3.3.1-6], kept as the subject's last
 * message so that a node that was away learns of it too.
 *
 * Every node follows the stream with an ordered consumer from its first
 * message: at start it replays the whole set into its retained store, then
 * applies each change in stream order -- its own included, so that every
 * node ends at the stream's last word for a topic even when two nodes set
 * it at once (a node sets its own store at once too, so a subscriber on it
 * sees its own retained message without a round trip; the stream's order
 * then settles a race). A stored message's expiry counts from when it was
 * stored: seconds left when published, less its age in the stream
 * [MQTT-3.3.2-5].
 */
#include <stdio.h>
#include <stdlib.h>

#include "cluster/cluster_int.h"
#include "cluster/wire.h"
#include "util/clock.h"

#define STREAM_FMT "%s_retained"

static void on_retained(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *arg)
{
	(void)nc;
	(void)sub;
	struct sub_ref *ref = arg;
	struct cluster *c = ref->c;
	jsMsgMetaData *meta = NULL;
	int64_t stored_ns = 0;
	uint64_t pending = 1;
	if (natsMsg_GetMetaData(&meta, nm) == NATS_OK) {
		stored_ns = meta->Timestamp;
		pending = meta->NumPending;
		jsMsgMetaData_Destroy(meta);
	}
	uint64_t now = mono_ms();
	struct msg *m = NULL;
	enum tern_err err = wire_decode((const uint8_t *)natsMsg_GetData(nm),
	                                (size_t)natsMsg_GetDataLength(nm), now, &m);
	natsMsg_Destroy(nm);
	if (pending == 0 && !atomic_exchange(&c->retained_synced, true))
		log_write(c->log, LOG_TYPE_NOTICE, "Cluster: retained messages replayed.");
	if (err) {
		atomic_fetch_add(&c->malformed, 1);
		return;
	}
	if (m->expire_at && stored_ns > 0) {
		/* Its age in the stream, by the wall clock of the NATS server
		 * that stored it and ours. */
		int64_t age_ms = (int64_t)wall_ms() - stored_ns / 1000000;
		if (age_ms > 0)
			m->expire_at = m->expire_at > now + (uint64_t)age_ms
			                       ? m->expire_at - (uint64_t)age_ms
			                       : now;
	}
	atomic_fetch_add(&c->retained_in, 1);
	c->cb.retained(c->cb.arg, m);
}

enum tern_err retained_setup(struct cluster *c)
{
	jsErrCode jerr = 0;
	natsStatus st = NATS_OK;
	/* Stores go through the messages context (durable.c, store_as()),
	 * whose answers a PUBACK can wait for; this one follows the stream. */
	if (!c->js && (st = natsConnection_JetStream(&c->js, c->p, NULL)) != NATS_OK)
		goto fail;
	char name[SUBJECT_CLUSTER_MAX + 16], subj[SUBJECT_CLUSTER_MAX + 8];
	snprintf(name, sizeof(name), STREAM_FMT, c->prefix);
	snprintf(subj, sizeof(subj), "%s.r.>", c->prefix);
	const char *subjects[] = {subj};
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	sc.Name = name;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.MaxMsgsPerSubject = 1;
	sc.Storage = js_FileStorage;
	sc.Replicas = (int64_t)c->replicas;
	st = js_AddStream(NULL, c->js, &sc, NULL, &jerr);
	if (st != NATS_OK && jerr == JSStreamNameExistErr) {
		/* Made by another node (or an earlier run): ours to keep as
		 * configured, replicas included. */
		jerr = 0;
		st = js_UpdateStream(NULL, c->js, &sc, NULL, &jerr);
	}
	if (st != NATS_OK)
		goto fail;
	struct sub_ref *ref = calloc(1, sizeof(*ref));
	if (!ref)
		return TERN_E_NOMEM;
	ref->c = c;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = name;
	so.Ordered = true;
	so.Config.Heartbeat = FOLLOW_HEARTBEAT_NS;
	jsOptions jo = follow_js_options();
	st = js_Subscribe(&c->retained_sub, c->js, subj, on_retained, ref, &jo, &so, &jerr);
	if ((st = cluster_sub_keep(c, &c->retained_sub, st, ref)) != NATS_OK)
		goto fail;
	return TERN_OK;
fail:
	log_write(c->log, LOG_TYPE_WARNING,
	          "Cluster: the retained stream is not available yet: %s (JetStream error %d)",
	          natsStatus_GetText(st), (int)jerr);
	return TERN_E_SYS;
}

void retained_stop(struct cluster *c)
{
	if (c->retained_sub) {
		natsSubscription_Unsubscribe(c->retained_sub);
		natsSubscription_Destroy(c->retained_sub);
		c->retained_sub = NULL;
	}
}
