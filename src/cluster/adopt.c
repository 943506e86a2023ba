/*
 * adopt.c - the sessions of a dead node (docs/cluster.md, "When a node
 * dies"): the node that acts for it (nodes.c) takes over every session
 * whose record (session_record.h, in the bucket "<cluster>_sessions") names
 * the dead node as its holder, and hands each to the broker (the adopt
 * callback), which keeps it offline here: its will goes after its delay,
 * the session expires after its interval, both counted from when the node
 * died (or from when the session went offline, if it was offline then).
 *
 * Exactly one node adopts a session, whatever the nodes' views: the
 * adoption is the record rewritten with this node as the holder, offline
 * since then, and the write expects the revision the record had when it
 * was read (Nats-Expected-Last-Subject-Sequence). Of two nodes acting for
 * the same dead node at once, one write fails on the revision, and so does
 * ours when the client reconnected on some node meanwhile (that node wrote
 * the record): the session is then not ours, and its will is not ours to
 * publish. So a will goes once cluster-wide.
 *
 * The adopted record keeps the dead holder's claim stamp: this node does
 * not claim the client id. A claim of ours would be newer than one a
 * reconnecting client made a moment before on another node and would take
 * the live connection over; without one, the adopted session is older than
 * any claim (session_claim_older() of stamp 0), so the client reconnecting
 * anywhere takes it over, as it would from its own node.
 *
 * A client that reconnects on another node while the adoption runs may have
 * its claim heard here before the adopted session exists to be taken over:
 * once the record is ours, the clients bucket's last claim of the client
 * id is read, and a newer claim of another node leaves the session to it.
 *
 * At start a node also acts for its own earlier run (adopt_own()): the
 * records that still name it as their holder, written before this run,
 * are those of clients that were online when it stopped or died (and
 * restarted within the bound, so that nobody counted it dead): adopted
 * here like a dead node's, so their wills go and they go offline. A
 * record that names another node tells the broker that a copy it restored
 * from its store went elsewhere meanwhile.
 *
 * A node cut off from NATS for longer than the bound is counted dead while
 * it may still serve clients (docs/cluster.md, "When a node loses NATS"):
 * another node adopts their sessions and publishes their wills, and binds
 * their durable queues, which the cut-off node still listens on too. Once
 * its beats come back it passes over the bucket (adopt_rejoin()) and tells
 * the broker of every record another node holds, with the record's claim
 * stamp: a session here with that very claim is one of those adopted from
 * this node, and the broker claims it again, which makes the adopter let
 * its copy go as any takeover does; a session here with another claim is
 * left to the claims (clients.c), which know which is newer.
 *
 * The bucket is read in one pass with an ordered consumer (the last
 * message of every key), on the nodes thread: the dead node's records are
 * found without a request per key.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cluster/cluster_int.h"
#include "cluster/session_record.h"
#include "util/buf.h"
#include "util/clock.h"

/* A pass over the bucket: for a dead node, for our own earlier run, or
 * after this node was counted dead while it was alive. */
enum pass { PASS_DEAD, PASS_OWN, PASS_REJOIN };

/* How long a read of the bucket or a write waits for JetStream. */
#define ADOPT_WAIT_MS 2000

/* The record rec (decoded from the bytes of the bucket) as this node
 * holds it, offline since offline_at, into out. */
static enum tern_err rewrite(struct cluster *c, const struct session_record *rec,
                             int64_t offline_at, struct buf *out)
{
	struct session_record r = *rec;
	r.node = bytes_of(c->node);
	r.online = false;
	r.offline_at = offline_at;
	struct session_record_sub *subs = NULL;
	if (rec->n_subs) {
		subs = calloc(rec->n_subs, sizeof(*subs));
		if (!subs)
			return TERN_E_NOMEM;
	}
	size_t cur = 0;
	uint32_t n = 0;
	while (n < rec->n_subs && session_record_next_sub(rec, &cur, &subs[n]))
		n++;
	r.subs = subs;
	r.n_subs = n;
	struct msg *will = NULL;
	enum tern_err err = rec->has_will ? session_record_will(rec, mono_ms(), &will) : TERN_OK;
	r.will = will;
	if (!err)
		err = session_record_encode(out, &r, 0);
	msg_unref(will);
	free(subs);
	return err;
}

/* One record of the bucket: adopted when it names the dead node. */
static enum tern_err one(struct cluster *c, natsMsg *nm, uint64_t rev, struct tern_bytes dead,
                         int64_t died_at, enum pass pass)
{
	bool own = pass == PASS_OWN;
	const uint8_t *data = (const uint8_t *)natsMsg_GetData(nm);
	size_t len = data ? (size_t)natsMsg_GetDataLength(nm) : 0;
	uint64_t claim;
	struct tern_bytes holder;
	if (!data || session_record_holder(data, len, &claim, &holder) != TERN_OK)
		return TERN_OK;
	const char *subj = natsMsg_GetSubject(nm), *key = strrchr(subj, '.');
	bool ours = holder.len == dead.len && memcmp(holder.data, dead.data, dead.len) == 0;
	if (pass == PASS_REJOIN) {
		uint8_t id[CLIENT_ID_KEY_MAX];
		size_t id_len;
		if (!ours && key && !clients_id(key + 1, strlen(key + 1), id, &id_len) &&
		    c->cb.rejoined)
			c->cb.rejoined(c->cb.arg, (struct tern_bytes){id, id_len}, claim);
		return TERN_OK;
	}
	if (own && !ours) {
		uint8_t id[CLIENT_ID_KEY_MAX];
		size_t id_len;
		if (key && !clients_id(key + 1, strlen(key + 1), id, &id_len) &&
		    c->cb.held_elsewhere)
			c->cb.held_elsewhere(c->cb.arg, (struct tern_bytes){id, id_len});
		return TERN_OK;
	}
	/* Not the dead node's; or, for our own earlier run, written by this
	 * one (a claim of this run is newer than its start). */
	if (!ours || (own && claim >= c->incarnation))
		return TERN_OK;
	uint8_t cid[CLIENT_ID_KEY_MAX];
	size_t cid_len;
	struct session_record rec;
	if (!key || clients_id(key + 1, strlen(key + 1), cid, &cid_len) ||
	    session_record_decode(data, len, &rec)) {
		log_write(c->log, LOG_TYPE_WARNING,
		          "Cluster: a session record of dead node %.*s does not decode; left as "
		          "it is.",
		          (int)dead.len, (const char *)dead.data);
		return TERN_OK;
	}
	struct buf out = {0};
	enum tern_err err = rewrite(c, &rec, rec.online ? died_at : rec.offline_at, &out);
	if (err) {
		buf_free(&out);
		return err;
	}
	natsMsg *m = NULL;
	natsStatus st = natsMsg_Create(&m, subj, NULL, (const char *)out.data, (int)out.len);
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MaxWait = ADOPT_WAIT_MS;
	po.ExpectLastSubjectSeq = rev;
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	if (st == NATS_OK)
		st = js_PublishMsg(&pa, c->js_nodes, m, &po, &jerr);
	natsMsg_Destroy(m);
	jsPubAck_Destroy(pa);
	if (st == NATS_OK && clients_claimed_since(c, c->js_nodes, key + 1, dead, rec.claim)) {
		/* The client connected again on another node before we
		 * wrote, and that node's claim may have reached this one
		 * before the session exists here to be taken over: not ours
		 * (its node writes the record over ours, its claim being
		 * newer). */
		buf_free(&out);
		atomic_fetch_add(&c->adopt_lost, 1);
		return TERN_OK;
	}
	if (st == NATS_OK) {
		atomic_fetch_add(&c->adopted, 1);
		log_write(c->log, LOG_TYPE_NOTICE,
		          "Cluster: adopted the session of %.*s from dead node %.*s.", (int)cid_len,
		          (const char *)cid, (int)dead.len, (const char *)dead.data);
		if (c->cb.adopt)
			c->cb.adopt(c->cb.arg, (struct tern_bytes){cid, cid_len}, out.data,
			            out.len);
		buf_free(&out);
		return TERN_OK;
	}
	buf_free(&out);
	if (jerr == JSStreamWrongLastSequenceErr) {
		/* Written meanwhile: by another node adopting it, or by the
		 * node the client is back on. Not ours. */
		atomic_fetch_add(&c->adopt_lost, 1);
		return TERN_OK;
	}
	log_write(c->log, LOG_TYPE_WARNING,
	          "Cluster: could not adopt a session of dead node %.*s: %s (JetStream error %d)",
	          (int)dead.len, (const char *)dead.data, natsStatus_GetText(st), (int)jerr);
	return TERN_E_SYS;
}

static enum tern_err adopt_pass(struct cluster *c, struct tern_bytes dead, int64_t died_at,
                                enum pass pass);

enum tern_err adopt_sessions(struct cluster *c, struct tern_bytes dead, int64_t died_at)
{
	return adopt_pass(c, dead, died_at, PASS_DEAD);
}

enum tern_err adopt_own(struct cluster *c)
{
	/* The earlier run stopped before this one started. */
	return adopt_pass(c, bytes_of(c->node), (int64_t)(c->incarnation / 1000u), PASS_OWN);
}

enum tern_err adopt_rejoin(struct cluster *c)
{
	return adopt_pass(c, bytes_of(c->node), 0, PASS_REJOIN);
}

static enum tern_err adopt_pass(struct cluster *c, struct tern_bytes dead, int64_t died_at,
                                enum pass pass)
{
	char stream[SUBJECT_CLUSTER_MAX + 24], subj[SUBJECT_CLUSTER_MAX + 24];
	snprintf(stream, sizeof(stream), "KV_%s_sessions", c->prefix);
	snprintf(subj, sizeof(subj), "$KV.%s_sessions.>", c->prefix);
	jsErrCode jerr = 0;
	jsStreamInfo *si = NULL;
	natsStatus st = js_GetStreamInfo(&si, c->js_nodes, stream, NULL, &jerr);
	if (st == NATS_NOT_FOUND)
		return TERN_OK; /* no session was ever recorded */
	if (st != NATS_OK) {
		log_write(c->log, LOG_TYPE_WARNING,
		          "Cluster: the sessions bucket cannot be read: %s (JetStream error %d)",
		          natsStatus_GetText(st), (int)jerr);
		return TERN_E_SYS;
	}
	bool empty = si->State.Msgs == 0;
	jsStreamInfo_Destroy(si);
	if (empty)
		return TERN_OK;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverLastPerSubject;
	natsSubscription *sub = NULL;
	st = js_SubscribeSync(&sub, c->js_nodes, subj, NULL, &so, &jerr);
	if (st != NATS_OK) {
		log_write(c->log, LOG_TYPE_WARNING,
		          "Cluster: the sessions bucket cannot be read: %s (JetStream error %d)",
		          natsStatus_GetText(st), (int)jerr);
		return TERN_E_SYS;
	}
	enum tern_err err = TERN_OK;
	for (;;) {
		if (!nodes_going(c)) {
			err = TERN_E_SYS; /* stopping: the next node acts */
			break;
		}
		natsMsg *nm = NULL;
		if ((st = natsSubscription_NextMsg(&nm, sub, ADOPT_WAIT_MS)) != NATS_OK) {
			/* Not read to its end: the round is tried again. */
			err = TERN_E_SYS;
			break;
		}
		jsMsgMetaData *meta = NULL;
		uint64_t rev = 0, pending = 0;
		if (natsMsg_GetMetaData(&meta, nm) == NATS_OK) {
			rev = meta->Sequence.Stream;
			pending = meta->NumPending;
			jsMsgMetaData_Destroy(meta);
		}
		const char *op = NULL;
		bool deleted = natsMsgHeader_Get(nm, "KV-Operation", &op) == NATS_OK;
		enum tern_err e = rev && !deleted ? one(c, nm, rev, dead, died_at, pass) : TERN_OK;
		natsMsg_Destroy(nm);
		/* One failed write fails the round, to be tried again; the
		 * records adopted meanwhile name this node by then. */
		if (e)
			err = e;
		if (pending == 0)
			break;
	}
	natsSubscription_Unsubscribe(sub);
	natsSubscription_Destroy(sub);
	return err;
}
