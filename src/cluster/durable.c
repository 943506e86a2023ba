/*
 * durable.c - QoS 1/2 messages that survive a node: the messages stream
 * and the durable queues of persistent sessions, as NATS' own MQTT layer
 * keeps them (its README-MQTT.md: a messages stream, a durable consumer
 * per session subscription).
 *
 * The stream "<cluster>_msgs" holds subjects "<cluster>.q.<the topic's
 * subject after the cluster name>" (so "<cluster>.q.m.a.b" for topic a/b),
 * on file, with cluster_replicas replicas, and interest retention: a
 * message stays until every durable consumer whose filter it matches has
 * acked it, and one that matches none is not kept. durable_store.c
 * publishes local clients' QoS 1/2 messages there; durable_ack.c keeps the
 * handles of the messages delivered to the broker until they are acked.
 *
 * A durable queue is one durable push consumer per subject of the filter
 * (NATS 2.9 takes one filter subject per consumer, so "a/#" needs "a.>"
 * and "a"). Its name is a hash of (cluster, client id, filter) and the
 * subject's position, so every node finds the consumers of a session
 * without asking anyone; consumer names cannot hold the bytes a client
 * id or filter may ('.', '*', '>', spaces, '/'), nor grow without bound,
 * hence the hash (128 bits: two SipHash-2-4 under fixed keys, the same
 * on every node). Its deliver subject is "<cluster>.dlv.<name>", which
 * no topic's subject and no stream subject can be.
 *
 * Binding a session's queues is a core NATS subscription to each deliver
 * subject, not libnats' js_Subscribe(): JetStream delivers a push
 * consumer's messages to whoever listens on its deliver subject, and a
 * plain subscription needs no consumer-info request per bind and is not
 * refused while the node that held the client before still listens
 * (libnats refuses to bind a push consumer another subscription holds,
 * which a takeover across nodes would hit).
 *
 * The stream is set up by the control thread (node.c). Every request
 * about the queues (consumers made, deleted, listed) and every binding is
 * made on a queue thread of this file's, from a queue of operations in
 * call order, so a worker never waits on the network and an add, a bind,
 * an unbind and a delete of one session happen in the order the broker
 * asked for them. Not on the control thread: a JetStream request may wait
 * JS_REQUEST_WAIT_MS for its answer (while a stream elects a new leader
 * after the loss of a nats-server), and every SUBACK waits for the control
 * thread's interest rounds; a clean start's delete of the client's queues
 * made each CONNECT's SUBACK wait that long behind it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cluster/cluster_int.h"
#include "cluster/wire.h"
#include "util/clock.h"

#define STREAM_FMT "%s_msgs"
/* How long a JetStream request (stream, consumer) of the control and queue
 * threads waits for the answer. */
#define JS_REQUEST_WAIT_MS 5000

/* Fixed keys: consumer names must be the same on every node. */
static const struct hash_key NAME_KEY_A = {0x7465726e2d647572ull, 0x61626c652d6e616dull};
static const struct hash_key NAME_KEY_B = {0x652d74776f2d6f66ull, 0x2d7477652d6b6579ull};

enum op_kind { OP_ADD, OP_DEL, OP_DEL_CLIENT, OP_BIND, OP_UNBIND };

/* One consumer an operation is about. */
struct op_cons {
	uint8_t *filter; /* the subscription's, in a bind and in cons[0] of an
	                  * add (owned) */
	uint32_t flen;
	char *subject; /* its filter subject (add only) */
	char name[DURABLE_NAME_MAX];
};

struct durable_op {
	struct durable_op *next;
	enum op_kind kind;
	uint64_t token;
	uint64_t deadline; /* an add with a token: monotonic ms it is failed at */
	uint32_t max_inflight;
	uint64_t session;
	uint16_t home;
	int64_t at; /* OP_DEL_CLIENT: wall ns of the clean start */
	/* OP_BIND with load: the broker's, for the pubrels callback, and the
	 * client id whose PUBREL entries to read (owned). OP_DEL_CLIENT: the
	 * client id too, whose entries go. */
	void *load;
	uint8_t *cid;
	size_t cid_len;
	size_t n;
	struct op_cons cons[];
};

/* The subscriptions that deliver a bound session's queues here. */
struct binding {
	uint64_t session;
	size_t n;
	natsSubscription *subs[];
};

/* The closure of a binding's subscription: a sub_ref first, so that
 * cluster_sub_done() frees it. */
struct durable_ref {
	struct sub_ref ref;
	uint64_t session;
	uint16_t home;
	uint32_t flen;
	uint8_t filter[]; /* the subscription's */
};

/* "<cluster>.m.a.b" (subject.h) -> "<cluster>.q.m.a.b" in out (room for
 * SUBJECT_MAX + 8). */
void durable_queue_subject(const struct cluster *c, const char *subject, char *out)
{
	size_t plen = strlen(c->prefix);
	snprintf(out, SUBJECT_MAX + 8, "%s.q.%s", c->prefix, subject + plen + 1);
}

enum tern_err durable_names(const char *cluster, struct tern_bytes client_id,
                            struct tern_bytes filter, char names[2][DURABLE_NAME_MAX], size_t *n)
{
	char subj[2][SUBJECT_MAX + 1];
	size_t n_subj = 0;
	*n = 0;
	if (client_id.len > 0xffff ||
	    subject_of_filter(cluster, filter, subj[0], subj[1], SUBJECT_MAX, &n_subj))
		return TERN_E_INVALID;
	/* Length-prefixed, so that no two (client id, filter) pairs hash
	 * the same bytes. */
	size_t plen = strlen(cluster), len = plen + 1 + 2 + client_id.len + filter.len;
	uint8_t stack[1024];
	uint8_t *key = len <= sizeof(stack) ? stack : malloc(len);
	if (!key)
		return TERN_E_NOMEM;
	memcpy(key, cluster, plen + 1);
	key[plen + 1] = (uint8_t)(client_id.len >> 8);
	key[plen + 2] = (uint8_t)client_id.len;
	memcpy(key + plen + 3, client_id.data, client_id.len);
	memcpy(key + plen + 3 + client_id.len, filter.data, filter.len);
	/* The client's part first, so that every queue of one client id
	 * shares a prefix (durable_client_prefix()). */
	uint64_t a = siphash24(&NAME_KEY_A, key, plen + 3 + client_id.len),
	         b = siphash24(&NAME_KEY_B, key, len);
	if (key != stack)
		free(key);
	for (size_t i = 0; i < n_subj; i++)
		snprintf(names[i], DURABLE_NAME_MAX, "%s_d_%016" PRIx64 "_%016" PRIx64 "_%zu",
		         cluster, a, b, i);
	*n = n_subj;
	return TERN_OK;
}

enum tern_err durable_client_prefix(const char *cluster, struct tern_bytes client_id,
                                    char out[DURABLE_NAME_MAX])
{
	if (client_id.len > 0xffff)
		return TERN_E_INVALID;
	size_t plen = strlen(cluster), len = plen + 3 + client_id.len;
	uint8_t *key = malloc(len);
	if (!key)
		return TERN_E_NOMEM;
	memcpy(key, cluster, plen + 1);
	key[plen + 1] = (uint8_t)(client_id.len >> 8);
	key[plen + 2] = (uint8_t)client_id.len;
	memcpy(key + plen + 3, client_id.data, client_id.len);
	uint64_t a = siphash24(&NAME_KEY_A, key, len);
	free(key);
	snprintf(out, DURABLE_NAME_MAX, "%s_d_%016" PRIx64 "_", cluster, a);
	return TERN_OK;
}

/* Writes the consumers of (client_id, filter) into cons[0..*n): names,
 * and the filter subjects when with_subjects (malloc'd). */
static enum tern_err consumers_of(const struct cluster *c, struct tern_bytes client_id,
                                  struct tern_bytes filter, bool with_subjects,
                                  struct op_cons *cons, size_t *n)
{
	char names[2][DURABLE_NAME_MAX];
	enum tern_err err = durable_names(c->prefix, client_id, filter, names, n);
	if (err)
		return err;
	char subj[2][SUBJECT_MAX + 1];
	size_t n_subj = 0;
	if (with_subjects &&
	    subject_of_filter(c->prefix, filter, subj[0], subj[1], SUBJECT_MAX, &n_subj))
		return TERN_E_INVALID;
	for (size_t i = 0; i < *n; i++) {
		memcpy(cons[i].name, names[i], sizeof(cons[i].name));
		cons[i].subject = NULL;
		if (with_subjects) {
			cons[i].subject = malloc(SUBJECT_MAX + 8);
			if (!cons[i].subject) {
				for (size_t j = 0; j < i; j++)
					free(cons[j].subject);
				*n = 0;
				return TERN_E_NOMEM;
			}
			durable_queue_subject(c, subj[i], cons[i].subject);
		}
	}
	return TERN_OK;
}

static void op_free(struct durable_op *op)
{
	for (size_t i = 0; i < op->n; i++) {
		free(op->cons[i].subject);
		free(op->cons[i].filter);
	}
	free(op->cid);
	free(op);
}

/* A copy of client_id into op (op->cid). */
static enum tern_err op_client(struct durable_op *op, struct tern_bytes client_id)
{
	op->cid = malloc(client_id.len ? client_id.len : 1);
	if (!op->cid)
		return TERN_E_NOMEM;
	memcpy(op->cid, client_id.data, client_id.len);
	op->cid_len = client_id.len;
	return TERN_OK;
}

/* The pubrels callback of a bind with load that will not read the
 * entries (it is cancelled, or the node closes): called once, as the
 * broker waits for it. */
static void op_unload(struct cluster *c, struct durable_op *op)
{
	if (op->kind == OP_BIND && op->load) {
		c->cb.pubrels(c->cb.arg, op->load, NULL, 0, TERN_E_SYS);
		op->load = NULL;
	}
}

static struct durable_op *op_new(enum op_kind kind, size_t n)
{
	struct durable_op *op = calloc(1, sizeof(*op) + n * sizeof(op->cons[0]));
	if (op)
		op->kind = kind;
	return op;
}

/* Queues op for the queue thread. */
static void op_post(struct cluster *c, struct durable_op *op)
{
	pthread_mutex_lock(&c->mu);
	op->next = NULL;
	if (!c->dur_tail)
		c->dur_tail = &c->dur_ops;
	*c->dur_tail = op;
	c->dur_tail = &op->next;
	pthread_cond_signal(&c->dur_cv);
	pthread_mutex_unlock(&c->mu);
}

/* ---- the API ---- */

enum tern_err cluster_durable_add(struct cluster *c, struct tern_bytes client_id,
                                  struct tern_bytes filter, uint32_t max_inflight, uint64_t token,
                                  bool *pending)
{
	if (pending)
		*pending = false;
	struct durable_op *op = op_new(OP_ADD, 2);
	if (!op)
		return TERN_E_NOMEM;
	enum tern_err err = consumers_of(c, client_id, filter, true, op->cons, &op->n);
	if (err) {
		free(op);
		return err;
	}
	/* The filter, for the answer (queue_made) to name. */
	op->cons[0].filter = malloc(filter.len ? filter.len : 1);
	if (!op->cons[0].filter) {
		op_free(op);
		return TERN_E_NOMEM;
	}
	memcpy(op->cons[0].filter, filter.data, filter.len);
	op->cons[0].flen = (uint32_t)filter.len;
	op->token = token;
	op->deadline = mono_ms() + CLUSTER_QUEUE_WAIT_MS;
	op->max_inflight = max_inflight ? max_inflight : 1;
	op_post(c, op);
	if (pending && token)
		*pending = true;
	return TERN_OK;
}

enum tern_err cluster_durable_del(struct cluster *c, struct tern_bytes client_id,
                                  struct tern_bytes filter)
{
	struct durable_op *op = op_new(OP_DEL, 2);
	if (!op)
		return TERN_E_NOMEM;
	enum tern_err err = consumers_of(c, client_id, filter, false, op->cons, &op->n);
	if (err) {
		free(op);
		return err;
	}
	op_post(c, op);
	return TERN_OK;
}

enum tern_err cluster_durable_forget(struct cluster *c, struct tern_bytes client_id)
{
	struct durable_op *op = op_new(OP_DEL_CLIENT, 1);
	if (!op)
		return TERN_E_NOMEM;
	enum tern_err err = durable_client_prefix(c->prefix, client_id, op->cons[0].name);
	if (!err)
		err = op_client(op, client_id);
	if (err) {
		op_free(op);
		return err;
	}
	op->n = 1;
	op->at = (int64_t)wall_ms() * 1000000;
	op_post(c, op);
	return TERN_OK;
}

enum tern_err cluster_durable_bind(struct cluster *c, uint64_t session, uint16_t home,
                                   struct tern_bytes client_id, const struct tern_bytes *filters,
                                   size_t n, void *load)
{
	if (n > SIZE_MAX / 2 - 1)
		return TERN_E_NOMEM;
	struct durable_op *op = op_new(OP_BIND, 2 * n);
	if (!op)
		return TERN_E_NOMEM;
	op->session = session;
	op->home = home;
	if (load && op_client(op, client_id)) {
		op_free(op);
		return TERN_E_NOMEM;
	}
	op->load = load;
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		enum tern_err err =
		        consumers_of(c, client_id, filters[i], false, op->cons + op->n, &k);
		if (err) {
			op_free(op);
			return err;
		}
		for (size_t j = 0; j < k; j++) {
			struct op_cons *oc = &op->cons[op->n + j];
			oc->filter = malloc(filters[i].len ? filters[i].len : 1);
			if (!oc->filter) {
				op->n += j;
				op_free(op);
				return TERN_E_NOMEM;
			}
			memcpy(oc->filter, filters[i].data, filters[i].len);
			oc->flen = (uint32_t)filters[i].len;
		}
		op->n += k;
	}
	op_post(c, op);
	return TERN_OK;
}

void cluster_durable_unbind(struct cluster *c, uint64_t session)
{
	struct durable_op *op = op_new(OP_UNBIND, 0);
	if (!op) {
		/* The subscriptions then stay until the session binds again
		 * or the node closes: what they deliver the broker drops. */
		log_write(c->log, LOG_TYPE_ERR, "Cluster: out of memory unbinding a session");
		return;
	}
	op->session = session;
	op_post(c, op);
}

/* ---- receiving (libnats' delivery thread) ---- */

static void on_durable(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *arg)
{
	(void)nc;
	(void)sub;
	struct durable_ref *d = arg;
	struct cluster *c = d->ref.c;
	jsMsgMetaData *meta = NULL;
	const char *reply = natsMsg_GetReply(nm);
	if (!reply || natsMsg_GetMetaData(&meta, nm) != NATS_OK) {
		/* Not from JetStream: someone else's publish on our subject. */
		natsMsg_Destroy(nm);
		atomic_fetch_add(&c->malformed, 1);
		return;
	}
	struct msg *m = NULL;
	enum tern_err err = wire_decode((const uint8_t *)natsMsg_GetData(nm),
	                                (size_t)natsMsg_GetDataLength(nm), mono_ms(), &m);
	struct cluster_ack *a =
	        err ? NULL
	            : durable_ack_new(c, reply, meta->Consumer, meta->Sequence.Stream,
	                              meta->NumDelivered, m->qos == 2);
	if (err || !a) {
		/* One that does not decode would come back for good: it is
		 * taken out of the queue. Out of memory: it comes back. A
		 * delivery again of one this node holds or completed: not a
		 * second message (durable_ack.c). */
		if (err) {
			(void)natsConnection_PublishString(c->p, reply, "+TERM");
			atomic_fetch_add(&c->malformed, 1);
		}
		msg_unref(m);
		jsMsgMetaData_Destroy(meta);
		natsMsg_Destroy(nm);
		return;
	}
	uint64_t now = mono_ms();
	if (m->expire_at && meta->Timestamp > 0) {
		/* Its expiry counts from when it was stored, not from now
		 * [MQTT-3.3.2-5]: less its age in the stream. */
		int64_t age_ms = (int64_t)wall_ms() - meta->Timestamp / 1000000;
		if (age_ms > 0)
			m->expire_at = m->expire_at > now + (uint64_t)age_ms
			                       ? m->expire_at - (uint64_t)age_ms
			                       : now;
	}
	jsMsgMetaData_Destroy(meta);
	natsMsg_Destroy(nm);
	atomic_fetch_add_explicit(&c->dur_delivered, 1, memory_order_relaxed);
	c->cb.durable(c->cb.arg, d->session, d->home, (struct tern_bytes){d->filter, d->flen}, m,
	              a);
}

/* ---- the control thread (the stream), the queue thread (the rest) ---- */

enum tern_err durable_setup(struct cluster *c)
{
	jsErrCode jerr = 0;
	natsStatus st = NATS_OK;
	if (!c->js_store) {
		jsOptions o;
		jsOptions_Init(&o);
		o.PublishAsync.AckHandler = durable_on_stored;
		o.PublishAsync.AckHandlerClosure = c;
		/* cluster_store() bounds the stores itself: libnats must
		 * never make a worker wait for the window. */
		o.PublishAsync.MaxPending = 2 * STORE_MAX_WAITING;
		o.PublishAsync.StallWait = 1;
		/* Making a replicated consumer starts a Raft group: on a
		 * loaded cluster that takes seconds. */
		o.Wait = JS_REQUEST_WAIT_MS;
		if ((st = natsConnection_JetStream(&c->js_store, c->p, &o)) != NATS_OK)
			goto fail;
	}
	char name[SUBJECT_CLUSTER_MAX + 16], subj[SUBJECT_CLUSTER_MAX + 8];
	snprintf(name, sizeof(name), STREAM_FMT, c->prefix);
	snprintf(subj, sizeof(subj), "%s.q.>", c->prefix);
	const char *subjects[] = {subj};
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	sc.Name = name;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Retention = js_InterestPolicy;
	sc.Storage = js_FileStorage;
	sc.Replicas = (int64_t)c->replicas;
	st = js_AddStream(NULL, c->js_store, &sc, NULL, &jerr);
	if (st != NATS_OK && jerr == JSStreamNameExistErr) {
		jerr = 0;
		st = js_UpdateStream(NULL, c->js_store, &sc, NULL, &jerr);
	}
	if (st != NATS_OK)
		goto fail;
	return TERN_OK;
fail:
	log_write(c->log, LOG_TYPE_WARNING,
	          "Cluster: the messages stream is not available yet: %s (JetStream error %d)",
	          natsStatus_GetText(st), (int)jerr);
	return TERN_E_SYS;
}

/* Whether the queue thread has work now (mutex held). */
static bool durable_due(struct cluster *c, uint64_t now)
{
	return c->dur_ops ||
	       (c->dur_later && atomic_load_explicit(&c->js_up, memory_order_acquire) &&
	        now >= c->dur_retry_at);
}

/* Keeps op for when JetStream answers again. */
static void later(struct cluster *c, struct durable_op *op)
{
	op->next = NULL;
	if (!c->dur_later_tail || !c->dur_later)
		c->dur_later_tail = &c->dur_later;
	*c->dur_later_tail = op;
	c->dur_later_tail = &op->next;
}

/* Whether a failed JetStream request is worth trying again: it did not
 * get an answer, as opposed to an answer that says no. */
static bool transient(natsStatus st, jsErrCode jerr)
{
	return jerr == 0 &&
	       (st == NATS_TIMEOUT || st == NATS_NO_RESPONDERS || st == NATS_CONNECTION_CLOSED ||
	        st == NATS_CONNECTION_DISCONNECTED || st == NATS_NOT_YET_CONNECTED);
}

/* The sequence a new queue starts at: one past the stream's last message,
 * as the stream's leader knows it (it answers stream info requests and
 * holds every committed message). */
static natsStatus queue_start(struct cluster *c, const char *stream, uint64_t *start,
                              jsErrCode *jerr)
{
	jsStreamInfo *si = NULL;
	natsStatus st = js_GetStreamInfo(&si, c->js_store, stream, NULL, jerr);
	if (st != NATS_OK)
		return st;
	*start = si->State.LastSeq + 1;
	jsStreamInfo_Destroy(si);
	return NATS_OK;
}

/* How often a queue made too early is made again, DURABLE_REMAKE_MS
 * apart: a lagging replica learns of the commits it misses with the
 * leader's next append or heartbeat, within milliseconds. */
#define DURABLE_REMAKES   40
#define DURABLE_REMAKE_MS 25

/* Makes a new queue that starts at cc->OptStartSeq. A consumer's leader
 * picks its start from its own replica of the stream and clamps the asked
 * start to that replica's last message + 1; a replica just back from an
 * outage knows a message as committed only once the leader's next append
 * says so. A queue made there starts early and would get what was
 * published before its SUBSCRIBE (seen in test_cluster_durable: the last
 * message of an outage came with the first after the SUBACK). Such a queue
 * is deleted and made again until its leader starts where asked; nothing
 * is lost by that, as the subscription is granted only afterwards. After
 * DURABLE_REMAKES tries the early queue stays (it delivers more, never
 * less) and that is logged. */
static natsStatus queue_create(struct cluster *c, const char *stream, jsConsumerConfig *cc,
                               jsErrCode *jerr)
{
	for (int attempt = 0;; attempt++) {
		jsConsumerInfo *ci = NULL;
		*jerr = 0;
		natsStatus st = js_AddConsumer(&ci, c->js_store, stream, cc, NULL, jerr);
		if (st != NATS_OK)
			return st;
		bool early = ci->Delivered.Stream + 1 < cc->OptStartSeq;
		uint64_t at = ci->Delivered.Stream + 1;
		jsConsumerInfo_Destroy(ci);
		if (!early)
			return NATS_OK;
		if (attempt == DURABLE_REMAKES) {
			log_write(c->log, LOG_TYPE_WARNING,
			          "Cluster: durable queue %s starts at message %llu, not %llu: it "
			          "may deliver messages published before its subscription",
			          cc->Durable, (unsigned long long)at,
			          (unsigned long long)cc->OptStartSeq);
			return NATS_OK;
		}
		st = js_DeleteConsumer(c->js_store, stream, cc->Durable, NULL, jerr);
		if (st != NATS_OK && *jerr != JSConsumerNotFoundErr)
			return st;
		struct timespec pause = {0, DURABLE_REMAKE_MS * 1000000L};
		nanosleep(&pause, NULL);
	}
}

/* Sets the receive maximum of a queue that exists: its start (deliver
 * policy and sequence) is JetStream's to keep, as an update may not change
 * it and the queue is already past it. */
static natsStatus queue_update(struct cluster *c, const char *stream, jsConsumerConfig *cc,
                               jsErrCode *jerr)
{
	jsConsumerInfo *ci = NULL;
	natsStatus st = js_GetConsumerInfo(&ci, c->js_store, stream, cc->Durable, NULL, jerr);
	if (st != NATS_OK)
		return st;
	cc->DeliverPolicy = ci->Config->DeliverPolicy;
	cc->OptStartSeq = ci->Config->OptStartSeq;
	cc->OptStartTime = ci->Config->OptStartTime;
	*jerr = 0;
	st = js_UpdateConsumer(NULL, c->js_store, stream, cc, NULL, jerr);
	jsConsumerInfo_Destroy(ci);
	return st;
}

/* Creates or updates op's consumers. TERN_OK when JetStream has them,
 * TERN_E_TIMEOUT when it did not answer (worth trying again), TERN_E_SYS
 * when it refused (logged). */
static enum tern_err do_add(struct cluster *c, struct durable_op *op)
{
	char stream[SUBJECT_CLUSTER_MAX + 16], deliver[SUBJECT_CLUSTER_MAX + DURABLE_NAME_MAX + 8];
	snprintf(stream, sizeof(stream), STREAM_FMT, c->prefix);
	uint64_t start = 0;
	jsErrCode jerr = 0;
	natsStatus st = queue_start(c, stream, &start, &jerr);
	if (st != NATS_OK) {
		if (transient(st, jerr))
			return TERN_E_TIMEOUT;
		log_write(c->log, LOG_TYPE_ERR,
		          "Cluster: cannot read the messages stream for a durable queue: %s "
		          "(JetStream error %d)",
		          natsStatus_GetText(st), (int)jerr);
		return TERN_E_SYS;
	}
	for (size_t i = 0; i < op->n; i++) {
		snprintf(deliver, sizeof(deliver), "%s.dlv.%s", c->prefix, op->cons[i].name);
		jsConsumerConfig cc;
		jsConsumerConfig_Init(&cc);
		cc.Durable = op->cons[i].name;
		cc.DeliverSubject = deliver;
		cc.FilterSubject = op->cons[i].subject;
		cc.AckPolicy = js_AckExplicit;
		cc.DeliverPolicy = js_DeliverByStartSequence;
		cc.OptStartSeq = start;
		cc.AckWait = (int64_t)CLUSTER_ACK_WAIT_MS * 1000000;
		cc.MaxAckPending = op->max_inflight;
		st = queue_create(c, stream, &cc, &jerr);
		if (st != NATS_OK && jerr != 0) {
			/* It exists (another start, another receive maximum). */
			jsErrCode uerr = 0;
			natsStatus ust = queue_update(c, stream, &cc, &uerr);
			if (ust == NATS_OK || transient(ust, uerr)) {
				st = ust;
				jerr = uerr;
			}
		}
		if (st != NATS_OK) {
			if (transient(st, jerr))
				return TERN_E_TIMEOUT;
			log_write(c->log, LOG_TYPE_ERR,
			          "Cluster: cannot create durable queue %s: %s (JetStream error "
			          "%d)",
			          op->cons[i].name, natsStatus_GetText(st), (int)jerr);
			return TERN_E_SYS;
		}
	}
	return TERN_OK;
}

/* Runs an add; returns whether it is done with (false: try again later).
 * *js_ok goes false when JetStream did not answer. An add a SUBSCRIBE
 * waits for is answered now, whatever happened: tried when JetStream is
 * reachable and its time is not up, failed otherwise, never kept for
 * later, as the broker refuses its subscription then. */
static bool run_add(struct cluster *c, struct durable_op *op, bool *js_ok)
{
	enum tern_err err = TERN_E_TIMEOUT;
	if (*js_ok && !(op->token && mono_ms() >= op->deadline)) {
		err = do_add(c, op);
		if (err == TERN_E_TIMEOUT)
			*js_ok = false;
	}
	if (!op->token)
		return err != TERN_E_TIMEOUT;
	if (err)
		log_write(c->log, LOG_TYPE_WARNING,
		          "Cluster: the durable queue of a subscription to '%.*s' could not be "
		          "made (%s); the subscription is refused.",
		          (int)op->cons[0].flen, (const char *)op->cons[0].filter,
		          err == TERN_E_TIMEOUT ? "JetStream not reachable" : "JetStream refused");
	c->cb.queue_made(c->cb.arg, op->token,
	                 (struct tern_bytes){op->cons[0].filter, op->cons[0].flen},
	                 err ? TERN_E_SYS : TERN_OK);
	op->token = 0;
	return true;
}

static bool do_del(struct cluster *c, struct durable_op *op)
{
	char stream[SUBJECT_CLUSTER_MAX + 16];
	snprintf(stream, sizeof(stream), STREAM_FMT, c->prefix);
	for (size_t i = 0; i < op->n; i++) {
		jsErrCode jerr = 0;
		natsStatus st =
		        js_DeleteConsumer(c->js_store, stream, op->cons[i].name, NULL, &jerr);
		if (st != NATS_OK && jerr != JSConsumerNotFoundErr) {
			if (transient(st, jerr))
				return false;
			log_write(c->log, LOG_TYPE_WARNING,
			          "Cluster: cannot delete durable queue %s: %s (JetStream error "
			          "%d)",
			          op->cons[i].name, natsStatus_GetText(st), (int)jerr);
		}
	}
	return true;
}

/* Deletes every queue whose name starts with op->cons[0].name, the
 * prefix of one client id's queues, made before the clean start asked for
 * it (op->at, wall ns): the client may already have subscribed again on
 * another node, whose new queue must stay. Clocks of nodes and NATS
 * servers agree to a few ms (NTP); a queue made within that of the clean
 * start may go either way. */
static bool do_del_client(struct cluster *c, struct durable_op *op)
{
	char stream[SUBJECT_CLUSTER_MAX + 16];
	snprintf(stream, sizeof(stream), STREAM_FMT, c->prefix);
	jsConsumerInfoList *list = NULL;
	jsErrCode jerr = 0;
	natsStatus st = js_Consumers(&list, c->js_store, stream, NULL, &jerr);
	if (st == NATS_NOT_FOUND)
		return true; /* no queue at all */
	if (st != NATS_OK) {
		if (transient(st, jerr))
			return false;
		log_write(c->log, LOG_TYPE_WARNING,
		          "Cluster: cannot list durable queues: %s (JetStream error %d)",
		          natsStatus_GetText(st), (int)jerr);
		return true;
	}
	size_t plen = strlen(op->cons[0].name);
	bool ok = true;
	for (int i = 0; i < list->Count && ok; i++) {
		const jsConsumerInfo *ci = list->List[i];
		if (strncmp(ci->Name, op->cons[0].name, plen) != 0 || ci->Created > op->at)
			continue;
		jerr = 0;
		st = js_DeleteConsumer(c->js_store, stream, ci->Name, NULL, &jerr);
		if (st != NATS_OK && jerr != JSConsumerNotFoundErr) {
			if (transient(st, jerr))
				ok = false;
			else
				log_write(c->log, LOG_TYPE_WARNING,
				          "Cluster: cannot delete durable queue %s: %s (JetStream "
				          "error "
				          "%d)",
				          ci->Name, natsStatus_GetText(st), (int)jerr);
		}
	}
	jsConsumerInfoList_Destroy(list);
	/* Its PUBREL entries are of the session that ended too. */
	return ok && pubrel_forget(c, (struct tern_bytes){op->cid, op->cid_len});
}

static void unbind(struct cluster *c, uint64_t session)
{
	struct binding *b = map64_del(&c->bindings, session);
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++) {
		if (!b->subs[i])
			continue;
		/* The completion callback frees the closure. */
		natsSubscription_Unsubscribe(b->subs[i]);
		natsSubscription_Destroy(b->subs[i]);
		atomic_fetch_sub(&c->n_dur_subs, 1);
	}
	free(b);
}

/* Reads the PUBREL entries of a bind with load and hands them to the
 * broker before the queues deliver anything. Returns false when
 * JetStream did not answer: the bind is to be tried again. */
static bool do_load(struct cluster *c, struct durable_op *op)
{
	struct cluster_pubrel *v = NULL;
	size_t n = 0;
	enum tern_err err = pubrel_load(c, (struct tern_bytes){op->cid, op->cid_len}, &v, &n);
	if (err == TERN_E_SYS)
		return false;
	atomic_fetch_add_explicit(&c->pubrel_loaded, n, memory_order_relaxed);
	/* Another error (a client id with no key, out of memory) will not
	 * go away: the session goes on without its entries. */
	c->cb.pubrels(c->cb.arg, op->load, v, n, err);
	op->load = NULL;
	return true;
}

/* Whether a bind of session waits for JetStream. */
static bool later_bind(struct cluster *c, uint64_t session)
{
	for (struct durable_op *op = c->dur_later; op; op = op->next)
		if (op->kind == OP_BIND && op->session == session)
			return true;
	return false;
}

/* A bind with load waiting for JetStream whose session unbinds: it is
 * not bound after all (the unbind came after it). */
static void cancel_later_binds(struct cluster *c, uint64_t session)
{
	for (struct durable_op **pp = &c->dur_later, *op; (op = *pp);) {
		if (op->kind != OP_BIND || op->session != session) {
			pp = &op->next;
			continue;
		}
		*pp = op->next;
		if (c->dur_later_tail == &op->next)
			c->dur_later_tail = pp;
		op_unload(c, op);
		op_free(op);
	}
}

static void do_bind(struct cluster *c, struct durable_op *op)
{
	unbind(c, op->session);
	struct binding *b = calloc(1, sizeof(*b) + op->n * sizeof(b->subs[0]));
	if (!b || map64_put(&c->bindings, op->session, b)) {
		free(b);
		log_write(c->log, LOG_TYPE_ERR, "Cluster: out of memory binding a session");
		return;
	}
	b->session = op->session;
	b->n = op->n;
	char deliver[SUBJECT_CLUSTER_MAX + DURABLE_NAME_MAX + 8];
	for (size_t i = 0; i < op->n; i++) {
		snprintf(deliver, sizeof(deliver), "%s.dlv.%s", c->prefix, op->cons[i].name);
		struct durable_ref *d = calloc(1, sizeof(*d) + op->cons[i].flen);
		if (!d) {
			log_write(c->log, LOG_TYPE_ERR, "Cluster: out of memory binding a session");
			continue;
		}
		d->ref.c = c;
		d->session = op->session;
		d->home = op->home;
		d->flen = op->cons[i].flen;
		memcpy(d->filter, op->cons[i].filter, d->flen);
		natsSubscription *sub = NULL;
		natsStatus st = natsConnection_Subscribe(&sub, c->p, deliver, on_durable, d);
		if ((st = cluster_sub_keep(c, &sub, st, &d->ref)) != NATS_OK) {
			log_write(c->log, LOG_TYPE_ERR, "Cluster: cannot bind durable queue %s: %s",
			          op->cons[i].name, natsStatus_GetText(st));
			continue;
		}
		b->subs[i] = sub;
		atomic_fetch_add(&c->n_dur_subs, 1);
	}
}

/* Runs the queued operations (called with the mutex held, returns with it
 * held). */
static void durable_run(struct cluster *c)
{
	struct durable_op *list = c->dur_ops;
	c->dur_ops = NULL;
	c->dur_tail = &c->dur_ops;
	pthread_mutex_unlock(&c->mu);
	/* What waited for JetStream goes first, in its order. */
	bool js_up = atomic_load_explicit(&c->js_up, memory_order_acquire);
	if (c->dur_later && js_up && mono_ms() >= c->dur_retry_at) {
		*c->dur_later_tail = list;
		list = c->dur_later;
		c->dur_later = NULL;
		c->dur_later_tail = NULL;
	}
	bool subscribed = false;
	/* Once a request went unanswered, the rest of the round waits too:
	 * each would block the thread as long again. */
	bool js_ok = js_up && atomic_load(&c->up_p);
	struct durable_op *next;
	for (struct durable_op *op = list; op; op = next) {
		next = op->next;
		bool done = true;
		switch (op->kind) {
		case OP_ADD:
			done = run_add(c, op, &js_ok);
			break;
		case OP_DEL:
			done = js_ok && (js_ok = do_del(c, op));
			break;
		case OP_DEL_CLIENT:
			done = js_ok && (js_ok = do_del_client(c, op));
			break;
		case OP_BIND:
			/* The entries first: a PUBREL entry's packet id must be
			 * the session's before a queue message can take it. A
			 * bind behind one that waits for them waits too, so the
			 * last bind asked for is the one that stays. */
			if (later_bind(c, op->session)) {
				done = false;
				break;
			}
			if (op->load && !(done = js_ok && (js_ok = do_load(c, op))))
				break;
			do_bind(c, op);
			subscribed = true;
			break;
		case OP_UNBIND:
			cancel_later_binds(c, op->session);
			unbind(c, op->session);
			break;
		}
		if (done) {
			op_free(op);
		} else {
			later(c, op);
			c->dur_retry_at = mono_ms() + JS_RETRY_MS;
		}
	}
	/* The deliveries start once the server has the subscriptions. */
	if (subscribed && atomic_load(&c->up_p))
		(void)natsConnection_FlushTimeout(c->p, FLUSH_TIMEOUT_MS);
	pthread_mutex_lock(&c->mu);
}

static void *durable_main(void *arg)
{
	struct cluster *c = arg;
	pthread_mutex_lock(&c->mu);
	while (!c->stopping) {
		if (durable_due(c, mono_ms())) {
			durable_run(c);
			continue;
		}
		/* Woken for work, or at the latest when what waits for
		 * JetStream is to be tried again. */
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)JS_RETRY_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&c->dur_cv, &c->mu, &until);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

enum tern_err durable_start(struct cluster *c)
{
	if (pthread_create(&c->dur_thread, NULL, durable_main, c) != 0)
		return TERN_E_SYS;
	c->dur_started = true;
	return TERN_OK;
}

void durable_stop(struct cluster *c)
{
	pthread_mutex_lock(&c->mu);
	pthread_cond_signal(&c->dur_cv);
	pthread_mutex_unlock(&c->mu);
	if (c->dur_started)
		pthread_join(c->dur_thread, NULL);
	c->dur_started = false;
	size_t pos = 0;
	struct binding *b;
	uint64_t sessions[64];
	/* The map must not change during a walk: collect, then unbind. */
	for (;;) {
		size_t k = 0;
		pos = 0;
		while (k < 64 && (b = map_next(&c->bindings, &pos)))
			sessions[k++] = b->session;
		if (!k)
			break;
		for (size_t i = 0; i < k; i++)
			unbind(c, sessions[i]);
	}
	map_free(&c->bindings);
	struct durable_op *lists[2] = {c->dur_ops, c->dur_later}, *next;
	for (int l = 0; l < 2; l++)
		for (struct durable_op *op = lists[l]; op; op = next) {
			next = op->next;
			op_unload(c, op);
			op_free(op);
		}
	c->dur_ops = c->dur_later = NULL;
	c->dur_tail = &c->dur_ops;
	c->dur_later_tail = NULL;
}
