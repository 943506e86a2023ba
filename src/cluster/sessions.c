/*
 * sessions.c - the cluster's session records: the key-value bucket
 * "<cluster>_sessions" keeps, per client id, the record of its session
 * (session_record.h) that the holder node writes, so that the session
 * resumes on any node and a dead node's sessions can be found.
 *
 * The bucket (one value per key, file storage, cluster_replicas replicas)
 * has the key clients_key() of the client id, as the clients bucket does.
 * Every request is made on the sessions thread of this file, from a queue
 * of operations in call order, so no worker waits on the network and the
 * writes of one session reach the bucket in the order the broker made
 * them; it is not the control thread, whose flushes and consumers a
 * record's round trip would delay.
 *
 * Concurrency (the loser of a client id must not overwrite the new
 * holder's record), as NATS' own MQTT layer does it: every write expects
 * the key's last revision (Nats-Expected-Last-Subject-Sequence) this node
 * knows, from its own last write or from its read at a resume; a key never
 * seen is written expecting no message. When JetStream answers "wrong last
 * sequence", another node wrote meanwhile: the record now there is read,
 * and ours is dropped when the other holder's claim is newer (the order of
 * claims, clients.c: the claim stamp, ties to the node name that sorts
 * last), else written again on top of it. So of two nodes that both held a
 * session, the newest claim's record stays, in whatever order the writes
 * arrive. A delete is the same conditional write with the KV-Operation DEL
 * header, as kvStore_Delete() writes it.
 *
 * A write that JetStream does not take (down, no answer within
 * SESSIONS_WAIT_MS) is kept, the last one per key, and tried again every
 * JS_RETRY_MS until a newer operation of that key supersedes it; the
 * broker's answer that waited for it (a SUBACK) is released at the first
 * failure, as for the durable queues: a subscription is never held back
 * for good. A lookup that cannot be made says so at once (the broker then
 * refuses the CONNECT: docs/cluster.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/cluster_int.h"
#include "cluster/session_record.h"
#include "util/clock.h"

#define BUCKET_FMT "%s_sessions"
/* How long one request of the sessions thread waits for JetStream. */
#define SESSIONS_WAIT_MS 2000
/* How long a stopping node still writes what its sessions queued (the
 * records of clients that just left, say) before it lets the rest go. */
#define SESSIONS_DRAIN_MS 2000
/* Conflicting writes of one operation before it gives up (each needs
 * another node to write in between). */
#define CONFLICT_TRIES 8

enum ses_kind { SES_PUT, SES_DEL, SES_GET, SES_FORGET };

struct session_op {
	struct session_op *next;
	enum ses_kind kind;
	uint64_t claim;
	uint64_t token;
	uint64_t queued_at; /* monotonic ms */
	uint64_t retry_at;  /* kept for a retry: monotonic ms */
	uint8_t *data;      /* the record of a put (owned) */
	size_t len;
	uint8_t *cid; /* a get's client id (owned) */
	uint32_t cid_len;
	char key[CLIENT_KEY_LEN(CLIENT_ID_KEY_MAX) + 1];
	size_t klen;
};

/* What the sessions thread knows of one key. */
struct ses_key {
	uint64_t rev;             /* last revision known; 0: none seen */
	struct session_op *retry; /* a write to try again (owned) */
	size_t klen;
	char key[];
};

static void op_free(struct session_op *op)
{
	if (!op)
		return;
	free(op->data);
	free(op->cid);
	free(op);
}

static struct session_op *op_new(enum ses_kind kind, struct tern_bytes cid, enum tern_err *err)
{
	struct session_op *op = calloc(1, sizeof(*op));
	if (!op) {
		*err = TERN_E_NOMEM;
		return NULL;
	}
	op->kind = kind;
	op->queued_at = mono_ms();
	if ((*err = clients_key(cid, op->key, &op->klen)) != TERN_OK) {
		free(op);
		return NULL;
	}
	return op;
}

static void enqueue(struct cluster *c, struct session_op *op)
{
	pthread_mutex_lock(&c->ses_mu);
	*c->ses_tail = op;
	c->ses_tail = &op->next;
	pthread_cond_signal(&c->ses_cv);
	pthread_mutex_unlock(&c->ses_mu);
}

static struct ses_key *key_of(struct cluster *c, const struct session_op *op, bool make)
{
	struct ses_key *k = map_get(&c->ses_keys, &c->hk, op->key, op->klen);
	if (k || !make)
		return k;
	k = calloc(1, sizeof(*k) + op->klen + 1);
	if (!k)
		return NULL;
	memcpy(k->key, op->key, op->klen);
	k->klen = op->klen;
	if (map_put(&c->ses_keys, &c->hk, k->key, k->klen, k)) {
		free(k);
		return NULL;
	}
	return k;
}

static void key_drop(struct cluster *c, struct ses_key *k)
{
	if (!k)
		return;
	(void)map_del(&c->ses_keys, &c->hk, k->key, k->klen);
	op_free(k->retry);
	free(k);
}

/* Whether a record's holder (claim, node) is newer than our claim: the
 * order of clients.c's claims. Our own node's earlier records (a restart)
 * never are. */
static bool holder_newer(const struct cluster *c, uint64_t claim, struct tern_bytes node,
                         uint64_t ours)
{
	size_t nlen = strlen(c->node);
	if (node.len == nlen && memcmp(node.data, c->node, nlen) == 0)
		return false;
	if (claim != ours)
		return claim > ours;
	size_t m = node.len < nlen ? node.len : nlen;
	int cmp = memcmp(node.data, c->node, m);
	return cmp > 0 || (cmp == 0 && node.len > nlen);
}

static void subject_of_key(const struct cluster *c, const char *key, char *out, size_t cap)
{
	snprintf(out, cap, "$KV." BUCKET_FMT ".%s", c->prefix, key);
}

/* The last message of key: *found false when there is none or it is a
 * deletion (then *rev is the deletion's revision, or 0). *msg, when found,
 * is the caller's. */
static natsStatus last_of(struct cluster *c, const char *key, natsMsg **msg, uint64_t *rev,
                          bool *found)
{
	char stream[SUBJECT_CLUSTER_MAX + 24],
	        subj[SUBJECT_CLUSTER_MAX + 24 + CLIENT_KEY_LEN(CLIENT_ID_KEY_MAX)];
	snprintf(stream, sizeof(stream), "KV_" BUCKET_FMT, c->prefix);
	subject_of_key(c, key, subj, sizeof(subj));
	*msg = NULL;
	*rev = 0;
	*found = false;
	jsErrCode jerr = 0;
	natsMsg *m = NULL;
	natsStatus st = js_GetLastMsg(&m, c->js_sessions, stream, subj, NULL, &jerr);
	if (st == NATS_NOT_FOUND)
		return NATS_OK;
	if (st != NATS_OK)
		return st;
	*rev = natsMsg_GetSequence(m);
	const char *kvop = NULL;
	if (natsMsgHeader_Get(m, "KV-Operation", &kvop) == NATS_OK) {
		natsMsg_Destroy(m);
		return NATS_OK;
	}
	*found = true;
	*msg = m;
	return NATS_OK;
}

/* The result of one conditional write. */
enum wr { WR_OK, WR_CONFLICT, WR_FAILED };

static enum wr write_once(struct cluster *c, const struct session_op *op, uint64_t rev,
                          uint64_t *new_rev)
{
	char subj[SUBJECT_CLUSTER_MAX + 24 + CLIENT_KEY_LEN(CLIENT_ID_KEY_MAX)];
	subject_of_key(c, op->key, subj, sizeof(subj));
	natsMsg *m = NULL;
	natsStatus st =
	        natsMsg_Create(&m, subj, NULL, op->kind == SES_PUT ? (char *)op->data : NULL,
	                       op->kind == SES_PUT ? (int)op->len : 0);
	if (st == NATS_OK && op->kind == SES_DEL)
		st = natsMsgHeader_Set(m, "KV-Operation", "DEL");
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = SESSIONS_WAIT_MS;
	if (rev)
		po.ExpectLastSubjectSeq = rev;
	else
		po.ExpectNoMessage = true;
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	if (st == NATS_OK)
		st = js_PublishMsg(&pa, c->js_sessions, m, &po, &jerr);
	natsMsg_Destroy(m);
	if (st == NATS_OK) {
		*new_rev = pa->Sequence;
		jsPubAck_Destroy(pa);
		return WR_OK;
	}
	if (jerr == JSStreamWrongLastSequenceErr)
		return WR_CONFLICT;
	log_write(c->log, LOG_TYPE_WARNING,
	          "Cluster: a session record was not %s in JetStream: %s (JetStream error %d); "
	          "tried again.",
	          op->kind == SES_PUT ? "stored" : "deleted", natsStatus_GetText(st), (int)jerr);
	return WR_FAILED;
}

/* A put or a delete (sessions thread): false when JetStream did not take
 * it, to be tried again. */
static bool write_op(struct cluster *c, struct session_op *op)
{
	if (!atomic_load(&c->js_up) || !atomic_load(&c->up_p))
		return false;
	struct ses_key *k = key_of(c, op, true);
	uint64_t rev = k ? k->rev : 0;
	for (int i = 0; i < CONFLICT_TRIES; i++) {
		uint64_t new_rev = 0;
		enum wr r = write_once(c, op, rev, &new_rev);
		if (r == WR_OK) {
			atomic_fetch_add(&c->ses_written, 1);
			if (op->kind == SES_DEL)
				key_drop(c, k);
			else if (k)
				k->rev = new_rev;
			return true;
		}
		if (r == WR_FAILED)
			return false;
		/* Another node wrote: whose claim is newer decides. */
		atomic_fetch_add(&c->ses_conflicts, 1);
		natsMsg *m = NULL;
		bool found;
		if (last_of(c, op->key, &m, &rev, &found) != NATS_OK)
			return false;
		if (found) {
			uint64_t claim = 0;
			struct tern_bytes node = {0};
			bool newer = session_record_holder((const uint8_t *)natsMsg_GetData(m),
			                                   (size_t)natsMsg_GetDataLength(m), &claim,
			                                   &node) == TERN_OK &&
			             holder_newer(c, claim, node, op->claim);
			natsMsg_Destroy(m);
			if (newer) {
				/* The session is another node's now: ours is
				 * stale, and so is what we knew of the key. */
				atomic_fetch_add(&c->ses_stale, 1);
				key_drop(c, k);
				return true;
			}
		} else if (op->kind == SES_DEL) {
			key_drop(c, k);
			return true; /* nothing left to delete */
		}
	}
	log_write(c->log, LOG_TYPE_WARNING,
	          "Cluster: a session record kept changing under this node's write; left as "
	          "it is.");
	return true;
}

static void get_op(struct cluster *c, struct session_op *op)
{
	natsMsg *m = NULL;
	uint64_t rev = 0;
	bool found = false;
	enum tern_err err = TERN_OK;
	/* A lookup is answered within a bound, so the CONNECT waiting for
	 * it is too: one that waited behind others that long is not made. */
	if (!atomic_load(&c->js_up) || !atomic_load(&c->up_p))
		err = TERN_E_SYS;
	else if (mono_ms() - op->queued_at > SESSIONS_WAIT_MS)
		err = TERN_E_TIMEOUT;
	else if (last_of(c, op->key, &m, &rev, &found) != NATS_OK)
		err = TERN_E_TIMEOUT;
	if (!err && found) {
		/* A clean start since the record's claim ended the session,
		 * wherever its holder was (dead, say, so that nobody deleted
		 * the record) [MQTT-3.1.2-4]: it is not resumed. The next
		 * write of the key, knowing its revision, replaces it. */
		uint64_t claim = 0;
		struct tern_bytes node;
		if (session_record_holder((const uint8_t *)natsMsg_GetData(m),
		                          (size_t)natsMsg_GetDataLength(m), &claim,
		                          &node) == TERN_OK &&
		    clients_clean_since(c, c->js_sessions, op->key, claim)) {
			atomic_fetch_add(&c->ses_stale, 1);
			natsMsg_Destroy(m);
			m = NULL;
			found = false;
		}
	}
	if (!err) {
		/* The revision the holder's next write expects. */
		struct ses_key *k = key_of(c, op, rev != 0);
		if (k)
			k->rev = rev;
		atomic_fetch_add(&c->ses_read, 1);
	}
	struct tern_bytes cid = {op->cid, op->cid_len};
	if (!c->cb.session_found)
		;
	else if (found)
		c->cb.session_found(c->cb.arg, op->token, cid, (const uint8_t *)natsMsg_GetData(m),
		                    (size_t)natsMsg_GetDataLength(m), TERN_OK);
	else
		c->cb.session_found(c->cb.arg, op->token, cid, NULL, 0, err);
	natsMsg_Destroy(m);
}

/* Runs one operation (sessions thread, mutex not held); frees it or keeps
 * it for a retry. */
static void run(struct cluster *c, struct session_op *op)
{
	if (op->kind == SES_GET) {
		get_op(c, op);
		op_free(op);
		return;
	}
	struct ses_key *k = key_of(c, op, false);
	if (k && k->retry) {
		/* A newer operation of the key supersedes the kept one. */
		op_free(k->retry);
		k->retry = NULL;
	}
	if (op->kind == SES_FORGET) {
		key_drop(c, k);
		op_free(op);
		return;
	}
	bool done = write_op(c, op);
	if (op->token) {
		/* Answered once, stored or not: never held back for good. */
		if (c->cb.interest_done)
			c->cb.interest_done(c->cb.arg, op->token);
		op->token = 0;
	}
	if (done) {
		op_free(op);
		return;
	}
	if (!(k = key_of(c, op, true))) {
		op_free(op);
		return;
	}
	op->retry_at = mono_ms() + JS_RETRY_MS;
	k->retry = op;
	c->ses_retries = true;
}

/* Takes the kept writes that are due back (sessions thread). */
static void retry_due(struct cluster *c, uint64_t now)
{
	if (!c->ses_retries || !atomic_load(&c->js_up))
		return;
	bool left = false;
	size_t pos = 0;
	struct ses_key *k;
	struct session_op *due = NULL;
	while ((k = map_next(&c->ses_keys, &pos))) {
		if (!k->retry)
			continue;
		if (k->retry->retry_at > now) {
			left = true;
			continue;
		}
		k->retry->next = due;
		due = k->retry;
		k->retry = NULL;
	}
	c->ses_retries = left;
	while (due) {
		struct session_op *next = due->next;
		due->next = NULL;
		run(c, due);
		due = next;
	}
}

static void *sessions_main(void *arg)
{
	struct cluster *c = arg;
	pthread_mutex_lock(&c->ses_mu);
	while (!c->ses_stopping || (c->ses_ops && mono_ms() < c->ses_drain_until)) {
		struct session_op *op = c->ses_ops;
		if (op && c->ses_stopping && op->kind == SES_GET) {
			/* Nobody waits for a lookup any more. */
			c->ses_ops = op->next;
			if (!c->ses_ops)
				c->ses_tail = &c->ses_ops;
			op_free(op);
			continue;
		}
		if (op) {
			c->ses_ops = op->next;
			if (!c->ses_ops)
				c->ses_tail = &c->ses_ops;
			op->next = NULL;
			pthread_mutex_unlock(&c->ses_mu);
			run(c, op);
			pthread_mutex_lock(&c->ses_mu);
			continue;
		}
		pthread_mutex_unlock(&c->ses_mu);
		retry_due(c, mono_ms());
		pthread_mutex_lock(&c->ses_mu);
		if (c->ses_ops || c->ses_stopping)
			continue;
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)JS_RETRY_MS * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&c->ses_cv, &c->ses_mu, &until);
	}
	pthread_mutex_unlock(&c->ses_mu);
	return NULL;
}

enum tern_err sessions_setup(struct cluster *c)
{
	natsStatus st = NATS_OK;
	if (!c->js_sessions) {
		jsOptions o;
		jsOptions_Init(&o);
		o.Wait = SESSIONS_WAIT_MS;
		if ((st = natsConnection_JetStream(&c->js_sessions, c->p, &o)) != NATS_OK)
			goto fail;
	}
	char bucket[SUBJECT_CLUSTER_MAX + 16];
	snprintf(bucket, sizeof(bucket), BUCKET_FMT, c->prefix);
	kvConfig kc;
	kvConfig_Init(&kc);
	kc.Bucket = bucket;
	kc.History = 1;
	kc.StorageType = js_FileStorage;
	kc.Replicas = (int)c->replicas;
	kvStore *kv = NULL;
	st = js_CreateKeyValue(&kv, c->js_sessions, &kc);
	if (st != NATS_OK) {
		/* Made by another node (or an earlier run) with another
		 * configuration: it serves as it is. */
		st = js_KeyValue(&kv, c->js_sessions, bucket);
	}
	kvStore_Destroy(kv); /* the handle only: the requests are ours */
	if (st == NATS_OK)
		return TERN_OK;
fail:
	log_write(c->log, LOG_TYPE_WARNING, "Cluster: the sessions bucket is not available yet: %s",
	          natsStatus_GetText(st));
	return TERN_E_SYS;
}

enum tern_err sessions_start(struct cluster *c)
{
	if (pthread_create(&c->ses_thread, NULL, sessions_main, c) != 0)
		return TERN_E_SYS;
	c->ses_started = true;
	return TERN_OK;
}

void sessions_stop(struct cluster *c)
{
	pthread_mutex_lock(&c->ses_mu);
	c->ses_stopping = true;
	/* What is queued still goes, within a bound: a record left behind
	 * would say what is no longer so (a session that ended, a will that
	 * went). */
	c->ses_drain_until = mono_ms() + SESSIONS_DRAIN_MS;
	pthread_cond_signal(&c->ses_cv);
	pthread_mutex_unlock(&c->ses_mu);
	if (c->ses_started)
		pthread_join(c->ses_thread, NULL);
	c->ses_started = false;
	/* What was not done is not answered: the broker is stopping. */
	while (c->ses_ops) {
		struct session_op *next = c->ses_ops->next;
		op_free(c->ses_ops);
		c->ses_ops = next;
	}
	c->ses_tail = &c->ses_ops;
	size_t pos = 0;
	struct ses_key *k;
	while ((k = map_next(&c->ses_keys, &pos))) {
		op_free(k->retry);
		free(k);
	}
	map_free(&c->ses_keys);
	jsCtx_Destroy(c->js_sessions);
	c->js_sessions = NULL;
}

enum tern_err cluster_session_put(struct cluster *c, struct tern_bytes client_id, uint64_t claim,
                                  const uint8_t *rec, size_t len, uint64_t token, bool *pending)
{
	if (pending)
		*pending = false;
	enum tern_err err;
	struct session_op *op = op_new(SES_PUT, client_id, &err);
	if (!op)
		return err;
	if (!(op->data = malloc(len ? len : 1))) {
		op_free(op);
		return TERN_E_NOMEM;
	}
	memcpy(op->data, rec, len);
	op->len = len;
	op->claim = claim;
	op->token = token;
	if (token && pending)
		*pending = true;
	enqueue(c, op);
	return TERN_OK;
}

enum tern_err cluster_session_del(struct cluster *c, struct tern_bytes client_id, uint64_t claim)
{
	enum tern_err err;
	struct session_op *op = op_new(SES_DEL, client_id, &err);
	if (!op)
		return err;
	op->claim = claim;
	enqueue(c, op);
	return TERN_OK;
}

enum tern_err cluster_session_get(struct cluster *c, struct tern_bytes client_id, uint64_t token)
{
	enum tern_err err;
	struct session_op *op = op_new(SES_GET, client_id, &err);
	if (!op)
		return err;
	if (!(op->cid = malloc(client_id.len))) {
		op_free(op);
		return TERN_E_NOMEM;
	}
	memcpy(op->cid, client_id.data, client_id.len);
	op->cid_len = client_id.len;
	op->token = token;
	enqueue(c, op);
	return TERN_OK;
}

void cluster_session_forget(struct cluster *c, struct tern_bytes client_id)
{
	enum tern_err err;
	struct session_op *op = op_new(SES_FORGET, client_id, &err);
	/* Out of memory, the next write of the key finds out by a conflict
	 * what it would have forgotten. */
	if (op)
		enqueue(c, op);
}
