/*
 * pubrel.c - the PUBREL state of persistent sessions: which QoS 2
 * messages of a durable queue the client has answered with PUBREC, so
 * that whoever holds the session next sends PUBREL for them
 * [MQTT-4.3.3-4] [MQTT-4.4.0-1] rather than the message again.
 *
 * The stream "<cluster>_pubrel" (subjects "<cluster>.pr.>", file,
 * cluster_replicas replicas, one message per subject) holds one entry per
 * (client id, packet id) awaiting PUBCOMP: the subject
 * "<cluster>.pr.<clients_key(client id)>.<packet id>", the payload the
 * sequence of the queue message it was, in decimal, a space and the name
 * of the consumer that delivered it. A stream rather than
 * a key-value bucket:
 * - deleting an entry by its sequence leaves nothing behind, where a
 *   bucket's delete leaves a marker per key (one per client and packet
 *   id, up to 65535 per client, kept until someone sweeps them);
 * - one client's entries are listed (a stream info with a subject
 *   filter: one request, which in the common case finds none) and purged
 *   (a clean start) with a subject filter, without a watcher over the
 *   whole bucket;
 * - a new PUBREC of the same packet id replaces a stale entry by itself
 *   (one message per subject).
 *
 * The flow of one message: the client's PUBREC puts the entry
 * (cluster_ack_pubrec(), asynchronously, from the worker); once JetStream
 * has it, the answer (libnats' thread) acks the queue message, which
 * leaves the queue: from then on the entry stands for it, and it is no
 * longer reported in progress. The client's PUBCOMP ends the handle
 * (cluster_ack_done()), which deletes the entry by its sequence (an
 * asynchronous request whose answer only counts) once JetStream confirmed
 * the queue's ack (durable_ack.c: an ack lost on its way would bring the
 * message back, and without the entry its next holder would take it for
 * a new one). If PUBCOMP comes first, the entry is deleted as soon as its
 * sequence is known and the ack confirmed. So a QoS 2 message of a
 * persistent session costs one put and one delete; the queue's ack only
 * moves earlier.
 *
 * When the node dies with an entry stored, the next binder of the
 * session's queues (cluster_durable_bind() with load, durable.c) reads
 * the entries before the queues deliver anything and hands them to the
 * broker as handles (acked, with the entry's sequence): the session puts
 * them in flight waiting for PUBCOMP. An entry stored whose queue ack was
 * lost (the node died between the two) also comes back from the queue:
 * the handle loaded for the entry knows it by (consumer, sequence) and
 * acks it (durable_ack.c); for an entry without the consumer (an earlier
 * version's), the broker knows it by its sequence (cluster_ack_seq()).
 * Without an entry (its put failed or did not get there in time) the
 * message comes again as before: PUBLISH with DUP and the same packet id,
 * which the client answers with PUBREC without delivering it twice.
 *
 * Handles and puts point at each other under ack_mu: a handle ended or
 * dropped before its put's answer leaves the put to finish alone.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"
#include "util/clock.h"

#define STREAM_FMT "%s_pubrel"
/* How long the control thread waits for JetStream's answers. */
#define PUBREL_WAIT_MS 5000

/* A put waiting for JetStream's answer. */
struct pubrel_put {
	struct cluster_ack *a; /* its handle; NULL once ended or dropped */
	bool done;             /* ended (PUBCOMP): delete the entry once stored */
	char reply[];          /* the queue message's ack subject */
};

enum tern_err pubrel_subject(const char *cluster, struct tern_bytes client_id, int packet_id,
                             char *out)
{
	int plen = snprintf(out, PUBREL_SUBJECT_MAX, "%s.pr.", cluster);
	size_t klen;
	enum tern_err err = clients_key(client_id, out + plen, &klen);
	if (err)
		return err;
	size_t used = (size_t)plen + klen;
	if (packet_id < 0)
		snprintf(out + used, PUBREL_SUBJECT_MAX - used, ".*");
	else
		snprintf(out + used, PUBREL_SUBJECT_MAX - used, ".%d", packet_id & 0xffff);
	return TERN_OK;
}

uint16_t pubrel_subject_id(const char *subject)
{
	const char *dot = strrchr(subject, '.');
	if (!dot || !dot[1] || dot[1] == '0' || strlen(dot + 1) > 5)
		return 0;
	unsigned v = 0;
	for (const char *p = dot + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (unsigned)(*p - '0');
	}
	return v <= 65535 ? (uint16_t)v : 0;
}

static void stream_name(const struct cluster *c, char *out, size_t len)
{
	snprintf(out, len, STREAM_FMT, c->prefix);
}

/* ---- puts ---- */

/* JetStream's answer to a put (libnats' thread). */
static void on_put(jsCtx *js, natsMsg *nm, jsPubAck *pa, jsPubAckErr *pae, void *arg)
{
	(void)js;
	struct cluster *c = arg;
	bool ok = pa && !pae;
	pthread_mutex_lock(&c->ack_mu);
	struct pubrel_put *p = map64_del(&c->pubrel_puts, (uint64_t)(uintptr_t)nm);
	if (p && ok) {
		struct cluster_ack *a = p->a;
		if (a) {
			a->put = NULL;
			a->entry_seq = pa->Sequence;
			/* The entry stands for the message now: the queue's
			 * ack, confirmed before the entry may go
			 * (durable_ack.c). Ended meanwhile (settling): acked
			 * then, the entry goes once that is confirmed. */
			if (!a->acked)
				durable_ack_send(c, a);
			durable_settle(c, a);
		} else if (p->done) {
			/* Its PUBCOMP came first: the flow is over. */
			pubrel_delete(c, pa->Sequence);
		} else {
			/* The session dropped it meanwhile (it left the
			 * node): the next binder sends PUBREL for it. */
			if (natsConnection_PublishString(c->p, p->reply, "+ACK") == NATS_OK)
				atomic_fetch_add_explicit(&c->dur_acked, 1, memory_order_relaxed);
		}
	} else if (p) {
		/* The message stays unacked, and is acked at PUBCOMP as
		 * without an entry. */
		if (p->a) {
			p->a->put = NULL;
			durable_settle(c, p->a);
		}
	}
	pthread_mutex_unlock(&c->ack_mu);
	natsMsg_Destroy(nm);
	if (!p)
		return; /* forgotten at close */
	free(p);
	if (ok) {
		atomic_fetch_add_explicit(&c->pubrel_stored, 1, memory_order_relaxed);
	} else if (atomic_fetch_add(&c->pubrel_failed, 1) % 1000 == 0) {
		log_write(c->log, LOG_TYPE_WARNING,
		          "Cluster: a PUBREL entry was not stored in JetStream: %s (%d); its "
		          "message stays in its queue until PUBCOMP",
		          pae && pae->ErrText ? pae->ErrText
		                              : natsStatus_GetText(pae ? pae->Err : NATS_ERR),
		          pae ? (int)pae->ErrCode : 0);
	}
}

void pubrel_put_done(struct pubrel_put *p)
{
	p->a = NULL;
	p->done = true;
}

void pubrel_put_dropped(struct pubrel_put *p)
{
	p->a = NULL;
}

bool cluster_ack_pubrec(struct cluster_ack *a, struct tern_bytes client_id, uint16_t packet_id)
{
	struct cluster *c = a->c;
	if (!c || !packet_id || !atomic_load_explicit(&c->js_up, memory_order_acquire) ||
	    !atomic_load_explicit(&c->up_p, memory_order_relaxed))
		return false;
	/* One entry per handle: a PUBREC again (after a PUBREL resent) has
	 * it already, or its put on the way, whose answer writes these. */
	pthread_mutex_lock(&c->ack_mu);
	bool asked = a->acked || a->put || a->entry_seq;
	pthread_mutex_unlock(&c->ack_mu);
	if (asked)
		return false;
	char subj[PUBREL_SUBJECT_MAX], seq[24 + DURABLE_NAME_MAX];
	if (pubrel_subject(c->prefix, client_id, packet_id, subj))
		return false;
	/* The sequence, and the consumer it came from: the next binder
	 * knows the message by both when JetStream delivers it again
	 * (durable_ack.c). */
	int clen = a->klen > 8 ? (int)(a->klen - 8) : 0;
	int slen = clen ? snprintf(seq, sizeof(seq), "%" PRIu64 " %.*s", a->seq, clen,
	                           (const char *)a->key)
	                : snprintf(seq, sizeof(seq), "%" PRIu64, a->seq);
	if (slen < 0 || (size_t)slen >= sizeof(seq))
		return false;
	size_t rlen = strlen(a->reply);
	struct pubrel_put *p = malloc(sizeof(*p) + rlen + 1);
	natsMsg *nm = NULL;
	if (!p || natsMsg_Create(&nm, subj, NULL, seq, slen) != NATS_OK) {
		free(p);
		return false;
	}
	p->a = a;
	p->done = false;
	memcpy(p->reply, a->reply, rlen + 1);
	uint64_t key = (uint64_t)(uintptr_t)nm;
	/* In the map before the publish: the answer may come before
	 * js_PublishMsgAsync() returns. */
	pthread_mutex_lock(&c->ack_mu);
	enum tern_err err = map64_put(&c->pubrel_puts, key, p);
	if (!err)
		a->put = p;
	pthread_mutex_unlock(&c->ack_mu);
	if (err) {
		free(p);
		natsMsg_Destroy(nm);
		return false;
	}
	atomic_store_explicit(&c->pubrel_used, true, memory_order_relaxed);
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = CLUSTER_STORE_WAIT_MS;
	natsMsg *sent = nm;
	if (js_PublishMsgAsync(c->js_pubrel, &sent, &po) != NATS_OK) {
		/* Not sent, and libnats will not call back for it. */
		pthread_mutex_lock(&c->ack_mu);
		(void)map64_del(&c->pubrel_puts, key);
		a->put = NULL;
		pthread_mutex_unlock(&c->ack_mu);
		free(p);
		natsMsg_Destroy(sent);
		return false;
	}
	return true;
}

/* ---- deletes ---- */

void pubrel_delete(struct cluster *c, uint64_t seq)
{
	char subj[SUBJECT_CLUSTER_MAX + 48], body[64];
	int n = snprintf(subj, sizeof(subj), "$JS.API.STREAM.MSG.DELETE." STREAM_FMT, c->prefix);
	(void)n;
	/* No erase: the entry's bytes need no overwriting. */
	snprintf(body, sizeof(body), "{\"seq\":%" PRIu64 ",\"no_erase\":true}", seq);
	/* A delete that does not get there leaves the entry: its next binder
	 * sends a PUBREL the client answers with PUBCOMP, which deletes it. */
	(void)natsConnection_PublishRequestString(c->p, subj, c->pubrel_inbox, body);
}

/* The answer to a delete (libnats' delivery thread): only counted. */
static void on_deleted(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *arg)
{
	(void)nc;
	(void)sub;
	struct cluster *c = ((struct sub_ref *)arg)->c;
	const char *d = natsMsg_GetData(nm);
	if (d && strstr(d, "\"success\":true")) {
		atomic_fetch_add_explicit(&c->pubrel_deleted, 1, memory_order_relaxed);
	} else if (!d || !strstr(d, "\"err_code\":10037")) {
		/* 10037, no message: replaced by a newer entry of that
		 * packet id, or purged by a clean start. */
		if (atomic_fetch_add(&c->pubrel_failed, 1) % 1000 == 0)
			log_write(c->log, LOG_TYPE_WARNING,
			          "Cluster: a PUBREL entry could not be deleted: %.200s",
			          d ? d : "(no answer)");
	}
	natsMsg_Destroy(nm);
}

/* ---- the control thread ---- */

enum tern_err pubrel_setup(struct cluster *c)
{
	jsErrCode jerr = 0;
	natsStatus st = NATS_OK;
	if (!c->js_pubrel) {
		jsOptions o;
		jsOptions_Init(&o);
		o.PublishAsync.AckHandler = on_put;
		o.PublishAsync.AckHandlerClosure = c;
		/* As for the stores (durable.c): never a wait on a worker. */
		o.PublishAsync.MaxPending = 2 * STORE_MAX_WAITING;
		o.PublishAsync.StallWait = 1;
		o.Wait = PUBREL_WAIT_MS;
		if ((st = natsConnection_JetStream(&c->js_pubrel, c->p, &o)) != NATS_OK)
			goto fail;
	}
	char name[SUBJECT_CLUSTER_MAX + 16], subj[SUBJECT_CLUSTER_MAX + 8];
	stream_name(c, name, sizeof(name));
	snprintf(subj, sizeof(subj), "%s.pr.>", c->prefix);
	const char *subjects[] = {subj};
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	sc.Name = name;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Replicas = (int64_t)c->replicas;
	/* A newer PUBREC of a packet id replaces the older entry. */
	sc.MaxMsgsPerSubject = 1;
	st = js_AddStream(NULL, c->js_pubrel, &sc, NULL, &jerr);
	if (st != NATS_OK && jerr == JSStreamNameExistErr) {
		jerr = 0;
		st = js_UpdateStream(NULL, c->js_pubrel, &sc, NULL, &jerr);
	}
	if (st != NATS_OK)
		goto fail;
	if (!c->pubrel_sub) {
		/* The answers to the deletes, on a subject of our own. */
		natsInbox *inbox = NULL;
		if ((st = natsInbox_Create(&inbox)) != NATS_OK)
			goto fail;
		snprintf(c->pubrel_inbox, sizeof(c->pubrel_inbox), "%s", (const char *)inbox);
		natsInbox_Destroy(inbox);
		struct sub_ref *ref = calloc(1, sizeof(*ref));
		if (!ref)
			return TERN_E_NOMEM;
		ref->c = c;
		st = natsConnection_Subscribe(&c->pubrel_sub, c->p, c->pubrel_inbox, on_deleted,
		                              ref);
		if ((st = cluster_sub_keep(c, &c->pubrel_sub, st, ref)) != NATS_OK)
			goto fail;
	}
	return TERN_OK;
fail:
	log_write(c->log, LOG_TYPE_WARNING,
	          "Cluster: the PUBREL stream is not available yet: %s (JetStream error %d)",
	          natsStatus_GetText(st), (int)jerr);
	return TERN_E_SYS;
}

static int by_entry_seq(const void *x, const void *y)
{
	uint64_t a = ((const struct cluster_pubrel *)x)->ack->entry_seq,
	         b = ((const struct cluster_pubrel *)y)->ack->entry_seq;
	return a < b ? -1 : a > b;
}

enum tern_err pubrel_load(struct cluster *c, struct tern_bytes client_id,
                          struct cluster_pubrel **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	char stream[SUBJECT_CLUSTER_MAX + 16], filter[PUBREL_SUBJECT_MAX];
	stream_name(c, stream, sizeof(stream));
	if (pubrel_subject(c->prefix, client_id, -1, filter))
		return TERN_E_INVALID;
	jsOptions o;
	jsOptions_Init(&o);
	o.Stream.Info.SubjectsFilter = filter;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus st = js_GetStreamInfo(&si, c->js_pubrel, stream, &o, &jerr);
	if (st != NATS_OK) {
		log_write(c->log, LOG_TYPE_WARNING,
		          "Cluster: cannot list the PUBREL entries of a session: %s (JetStream "
		          "error %d)",
		          natsStatus_GetText(st), (int)jerr);
		return TERN_E_SYS;
	}
	jsStreamStateSubjects *subjects = si->State.Subjects;
	int count = subjects ? subjects->Count : 0;
	struct cluster_pubrel *v = count ? calloc((size_t)count, sizeof(*v)) : NULL;
	enum tern_err err = count && !v ? TERN_E_NOMEM : TERN_OK;
	size_t k = 0;
	for (int i = 0; i < count && !err; i++) {
		const char *subj = subjects->List[i].Subject;
		uint16_t id = pubrel_subject_id(subj);
		if (!id)
			continue; /* not one of ours */
		natsMsg *nm = NULL;
		jerr = 0;
		st = js_GetLastMsg(&nm, c->js_pubrel, stream, subj, NULL, &jerr);
		if (st == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
			continue; /* deleted meanwhile */
		if (st != NATS_OK) {
			err = TERN_E_SYS;
			break;
		}
		/* "<sequence>[ <consumer>]": without the consumer (an entry
		 * of an earlier version), the message delivered again is
		 * known by its sequence in the session's flight instead. */
		const char *d = natsMsg_GetData(nm);
		int dlen = natsMsg_GetDataLength(nm);
		char consumer[DURABLE_NAME_MAX];
		consumer[0] = 0;
		uint64_t seq = 0;
		int at = 0;
		for (; d && at < dlen && d[at] >= '0' && d[at] <= '9'; at++)
			seq = seq * 10 + (uint64_t)(d[at] - '0');
		if (d && at < dlen && d[at] == ' ' && dlen - at - 1 < (int)sizeof(consumer)) {
			memcpy(consumer, d + at + 1, (size_t)(dlen - at - 1));
			consumer[dlen - at - 1] = 0;
		}
		struct cluster_ack *a = durable_ack_entry(c, consumer[0] ? consumer : NULL, seq);
		if (!a) {
			natsMsg_Destroy(nm);
			err = TERN_E_NOMEM;
			break;
		}
		pthread_mutex_lock(&c->ack_mu);
		a->entry_seq = natsMsg_GetSequence(nm);
		pthread_mutex_unlock(&c->ack_mu);
		natsMsg_Destroy(nm);
		v[k].packet_id = id;
		v[k].ack = a;
		k++;
	}
	jsStreamInfo_Destroy(si);
	if (err) {
		for (size_t i = 0; i < k; i++)
			cluster_ack_drop(v[i].ack);
		free(v);
		if (err == TERN_E_SYS)
			log_write(c->log, LOG_TYPE_WARNING,
			          "Cluster: cannot read a PUBREL entry: %s (JetStream error %d)",
			          natsStatus_GetText(st), (int)jerr);
		return err;
	}
	/* In the order the PUBRECs came, which is the order PUBREL goes
	 * in [MQTT-4.6.0-3]. */
	if (k > 1)
		qsort(v, k, sizeof(*v), by_entry_seq);
	if (!k) {
		free(v);
		v = NULL;
	}
	*out = v;
	*n = k;
	return TERN_OK;
}

bool pubrel_forget(struct cluster *c, struct tern_bytes client_id)
{
	char stream[SUBJECT_CLUSTER_MAX + 16], filter[PUBREL_SUBJECT_MAX];
	stream_name(c, stream, sizeof(stream));
	if (pubrel_subject(c->prefix, client_id, -1, filter))
		return true; /* a client id with no key has no entry */
	jsOptions o;
	jsOptions_Init(&o);
	o.Stream.Purge.Subject = filter;
	jsErrCode jerr = 0;
	natsStatus st = js_PurgeStream(c->js_pubrel, stream, &o, &jerr);
	if (st == NATS_OK)
		return true;
	if (jerr == 0 &&
	    (st == NATS_TIMEOUT || st == NATS_NO_RESPONDERS || st == NATS_CONNECTION_CLOSED ||
	     st == NATS_CONNECTION_DISCONNECTED || st == NATS_NOT_YET_CONNECTED))
		return false;
	log_write(c->log, LOG_TYPE_WARNING,
	          "Cluster: cannot delete the PUBREL entries of a session: %s (JetStream error "
	          "%d)",
	          natsStatus_GetText(st), (int)jerr);
	return true;
}

void pubrel_stop(struct cluster *c)
{
	if (c->pubrel_sub) {
		natsSubscription_Unsubscribe(c->pubrel_sub);
		natsSubscription_Destroy(c->pubrel_sub);
		c->pubrel_sub = NULL;
	}
}

void pubrel_close(struct cluster *c)
{
	if (c->js_pubrel) {
		/* As durable_close(): the puts JetStream did not answer are
		 * taken back from libnats (no callback for them after this),
		 * and one whose callback runs is waited for. */
		natsMsgList list = {0};
		if (atomic_load(&c->pubrel_used) &&
		    js_PublishAsyncGetPendingList(&list, c->js_pubrel) == NATS_OK) {
			pthread_mutex_lock(&c->ack_mu);
			for (int i = 0; i < list.Count; i++) {
				struct pubrel_put *p = map64_del(&c->pubrel_puts,
				                                 (uint64_t)(uintptr_t)list.Msgs[i]);
				if (p && p->a)
					p->a->put = NULL;
				free(p);
			}
			pthread_mutex_unlock(&c->ack_mu);
			natsMsgList_Destroy(&list);
		}
		(void)js_PublishAsyncComplete(c->js_pubrel, NULL);
	}
	pthread_mutex_lock(&c->ack_mu);
	size_t pos = 0;
	struct pubrel_put *p;
	while ((p = map_next(&c->pubrel_puts, &pos))) {
		if (p->a)
			p->a->put = NULL;
		free(p);
	}
	map_free(&c->pubrel_puts);
	pthread_mutex_unlock(&c->ack_mu);
	jsCtx_Destroy(c->js_pubrel);
	c->js_pubrel = NULL;
}
