/*
 * node.c - this node's NATS connections, its interest table, forwarding
 * and receiving; see cluster.h for the contract and docs/cluster.md for
 * why routing rides on NATS' own subject interest.
 *
 * Two connections. P carries the publishes of this node and the
 * subscriptions of its ordinary filters, with no_echo: NATS does not hand
 * the node back its own messages, which it has delivered locally already.
 * S carries the subscriptions of shared groups, with echo: for a group,
 * NATS picks one member subscription among every node's, this node's
 * included, so a message published here may have to come back here.
 *
 * Queue groups. Every ordinary subscription of the node is in the queue
 * group "<cluster>.n.<node>": NATS gives a message to one member per group,
 * whatever subjects the members have, so a message matching several of the
 * node's filters arrives once, and the node's router merges its local
 * matches exactly as for a local publish. A shared subscription (G, F) is
 * in the queue group subject_share_queue(G, F), the same on every node.
 *
 * The interest table maps (group, filter) to the number of local
 * subscriptions on it, behind one mutex. Workers only count and mark an
 * entry dirty; the control thread reconciles a dirty entry with NATS
 * (subscribe when counted and not subscribed, unsubscribe when no longer
 * counted), flushes once per round so the server has processed the
 * subscriptions, then answers the adds that waited. Only the control
 * thread subscribes, unsubscribes and frees entries, so it can call
 * libnats without the mutex held.
 *
 * Lifetimes. A NATS subscription's callback may run until its completion
 * callback has; each subscription counts in live_subs until then, and
 * cluster_close() waits for zero before freeing what callbacks use.
 */
#include "cluster/cluster.h"
#include "cluster/cluster_int.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/subject.h"
#include "cluster/wire.h"
#include "util/clock.h"
#include "util/map.h"

/* How long a stop waits for libnats' threads to end (cluster_close()). */
#define CLOSE_WAIT_MS 5000u

/* ---- connection events (libnats threads) ---- */

static void on_connected_p(natsConnection *nc, void *arg)
{
	(void)nc;
	struct cluster *c = arg;
	atomic_store(&c->up_p, true);
	log_write(c->log, LOG_TYPE_NOTICE, "Cluster: node %s connected to NATS.", c->node);
}

static void on_reconnected_p(natsConnection *nc, void *arg)
{
	struct cluster *c = arg;
	atomic_fetch_add(&c->reconnects, 1);
	on_connected_p(nc, arg);
}

static void on_disconnected_p(natsConnection *nc, void *arg)
{
	(void)nc;
	struct cluster *c = arg;
	if (atomic_exchange(&c->up_p, false))
		log_write(
		        c->log, LOG_TYPE_WARNING,
		        "Cluster: node %s lost NATS; serving local clients only until it is back.",
		        c->node);
}

static void on_connected_s(natsConnection *nc, void *arg)
{
	(void)nc;
	atomic_store(&((struct cluster *)arg)->up_s, true);
}

static void on_disconnected_s(natsConnection *nc, void *arg)
{
	(void)nc;
	atomic_store(&((struct cluster *)arg)->up_s, false);
}

/* ---- receiving ---- */

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *arg)
{
	(void)nc;
	(void)sub;
	struct sub_ref *ref = arg;
	struct cluster *c = ref->c;
	struct msg *m = NULL;
	enum tern_err err = wire_decode((const uint8_t *)natsMsg_GetData(nm),
	                                (size_t)natsMsg_GetDataLength(nm), mono_ms(), &m);
	natsMsg_Destroy(nm);
	if (err) {
		/* Not from a ternd of this cluster's version: counted, and
		 * said once in a while rather than per message. */
		if (atomic_fetch_add(&c->malformed, 1) % 1000 == 0)
			log_write(c->log, LOG_TYPE_WARNING,
			          "Cluster: dropped a message from NATS that did not decode (%s).",
			          tern_strerror(err));
		return;
	}
	atomic_fetch_add(&c->received, 1);
	c->cb.deliver(c->cb.arg, m, ref->share.group.len ? &ref->share : NULL);
}

void cluster_sub_done(void *arg)
{
	struct sub_ref *ref = arg;
	struct cluster *c = ref->c;
	free(ref);
	pthread_mutex_lock(&c->mu);
	if (--c->live_subs == 0)
		pthread_cond_broadcast(&c->done);
	pthread_mutex_unlock(&c->mu);
}

natsStatus cluster_sub_keep(struct cluster *c, natsSubscription **sub, natsStatus st,
                            struct sub_ref *ref)
{
	if (st == NATS_OK)
		st = natsSubscription_SetPendingLimits(*sub, PENDING_MSGS, PENDING_BYTES);
	if (st == NATS_OK)
		st = natsSubscription_SetOnCompleteCB(*sub, cluster_sub_done, ref);
	if (st != NATS_OK) {
		if (*sub) {
			natsSubscription_Unsubscribe(*sub);
			natsSubscription_Destroy(*sub);
			*sub = NULL;
		}
		free(ref);
		return st;
	}
	pthread_mutex_lock(&c->mu);
	c->live_subs++;
	pthread_mutex_unlock(&c->mu);
	return NATS_OK;
}

/* ---- the interest table ---- */

static void key_parts(const struct interest *in, struct tern_bytes *group,
                      struct tern_bytes *filter)
{
	*group = (struct tern_bytes){in->key + 2, in->glen};
	*filter = (struct tern_bytes){in->key + 2 + in->glen, in->klen - 2 - in->glen};
}

/* Subscribes in's subjects (control thread, mutex not held). */
static enum tern_err subscribe(struct cluster *c, struct interest *in)
{
	struct tern_bytes group, filter;
	key_parts(in, &group, &filter);
	char subj[2][SUBJECT_MAX + 1];
	size_t n_subj = 0, qlen;
	enum tern_err err =
	        subject_of_filter(c->prefix, filter, subj[0], subj[1], SUBJECT_MAX, &n_subj);
	if (err)
		return err;
	char queue[SUBJECT_MAX + 1];
	natsConnection *nc = c->p;
	if (group.len) {
		if ((err = subject_queue_shared(c->prefix, group, filter, queue, SUBJECT_MAX,
		                                &qlen)))
			return err;
		nc = c->s;
	} else {
		snprintf(queue, sizeof(queue), "%s", c->node_queue);
	}
	for (size_t i = 0; i < n_subj; i++) {
		/* Each subscription its own closure: their completions come
		 * one by one. */
		struct sub_ref *ref = calloc(1, sizeof(*ref) + in->klen);
		if (!ref)
			return TERN_E_NOMEM;
		ref->c = c;
		if (group.len) {
			uint8_t *copy = (uint8_t *)(ref + 1);
			memcpy(copy, group.data, group.len);
			memcpy(copy + group.len, filter.data, filter.len);
			ref->share.group = (struct tern_bytes){copy, group.len};
			ref->share.filter = (struct tern_bytes){copy + group.len, filter.len};
		}
		natsSubscription *sub = NULL;
		natsStatus st =
		        natsConnection_QueueSubscribe(&sub, nc, subj[i], queue, on_msg, ref);
		if ((st = cluster_sub_keep(c, &sub, st, ref)) != NATS_OK) {
			log_write(c->log, LOG_TYPE_ERR, "Cluster: cannot subscribe to %s: %s",
			          subj[i], natsStatus_GetText(st));
			return TERN_E_SYS;
		}
		/* cluster_stats() reads the pointers under the mutex. */
		pthread_mutex_lock(&c->mu);
		in->sub[i] = sub;
		pthread_mutex_unlock(&c->mu);
		atomic_fetch_add(&c->n_subs, 1);
	}
	return TERN_OK;
}

static void unsubscribe(struct cluster *c, struct interest *in)
{
	for (size_t i = 0; i < 2; i++) {
		/* cluster_stats() reads the pointers under the mutex. */
		pthread_mutex_lock(&c->mu);
		natsSubscription *sub = in->sub[i];
		in->sub[i] = NULL;
		pthread_mutex_unlock(&c->mu);
		if (!sub)
			continue;
		/* The completion callback frees the closure. */
		natsSubscription_Unsubscribe(sub);
		natsSubscription_Destroy(sub);
		atomic_fetch_sub(&c->n_subs, 1);
	}
}

enum tern_err cluster_interest(struct cluster *c, bool add, struct tern_bytes filter,
                               struct tern_bytes group, uint64_t token, bool *pending)
{
	if (pending)
		*pending = false;
	size_t klen = 2 + group.len + filter.len;
	uint8_t stack[512];
	uint8_t *key = klen <= sizeof(stack) ? stack : malloc(klen);
	if (!key)
		return TERN_E_NOMEM;
	key[0] = (uint8_t)(group.len >> 8);
	key[1] = (uint8_t)group.len;
	if (group.len)
		memcpy(key + 2, group.data, group.len);
	memcpy(key + 2 + group.len, filter.data, filter.len);
	enum tern_err err = TERN_OK;
	pthread_mutex_lock(&c->mu);
	struct interest *in = map_get(&c->interests, &c->hk, key, klen);
	if (!in && add) {
		in = calloc(1, sizeof(*in) + klen);
		if (!in) {
			err = TERN_E_NOMEM;
			goto out;
		}
		/* The key first: the map hashes it. */
		memcpy(in->key, key, klen);
		in->klen = klen;
		in->glen = (uint16_t)group.len;
		if (map_put(&c->interests, &c->hk, in->key, klen, in)) {
			free(in);
			err = TERN_E_NOMEM;
			goto out;
		}
	}
	if (!in)
		goto out; /* removing what was never counted */
	if (add) {
		in->count++;
		/* Waits while NATS may not have the interest yet. */
		if (token && (!in->subscribed || in->n_waiting)) {
			if (in->n_waiting == in->cap_waiting) {
				size_t cap = in->cap_waiting ? 2 * in->cap_waiting : 4;
				uint64_t *v = realloc(in->waiting, cap * sizeof(*v));
				if (!v) {
					in->count--;
					err = TERN_E_NOMEM;
					goto out;
				}
				in->waiting = v;
				in->cap_waiting = cap;
			}
			in->waiting[in->n_waiting++] = token;
			if (pending)
				*pending = true;
		}
	} else if (in->count > 0) {
		in->count--;
	}
	bool wants = in->count > 0;
	if (wants != in->subscribed || in->n_waiting) {
		if (!in->dirty) {
			in->dirty = true;
			in->next_dirty = c->dirty;
			c->dirty = in;
		}
		pthread_cond_signal(&c->cv);
	}
out:
	pthread_mutex_unlock(&c->mu);
	if (key != stack)
		free(key);
	return err;
}

/* One round of the control thread: reconciles the dirty entries with
 * NATS, flushes, answers the waiting adds. Called with the mutex held;
 * returns with it held. */
static void reconcile(struct cluster *c)
{
	struct interest *list = c->dirty;
	c->dirty = NULL;
	for (struct interest *in = list; in; in = in->next_dirty)
		in->dirty = false;
	pthread_mutex_unlock(&c->mu);

	/* `subscribed` is written by this thread only, under the mutex, as
	 * cluster_interest() reads it there. */
	for (struct interest *in = list; in; in = in->next_dirty) {
		pthread_mutex_lock(&c->mu);
		bool wants = in->count > 0, subscribed = in->subscribed;
		pthread_mutex_unlock(&c->mu);
		if (wants && !subscribed) {
			enum tern_err err = subscribe(c, in);
			if (err) {
				struct tern_bytes g, f;
				key_parts(in, &g, &f);
				log_write(c->log, LOG_TYPE_WARNING,
				          "Cluster: filter %.*s stays local to this node (%s).",
				          (int)f.len, (const char *)f.data, tern_strerror(err));
				unsubscribe(c, in);
			}
			/* Subscribed or not, the entry is settled: no retry
			 * loop on a filter NATS cannot carry. */
			pthread_mutex_lock(&c->mu);
			in->subscribed = true;
			pthread_mutex_unlock(&c->mu);
		} else if (!wants && subscribed) {
			unsubscribe(c, in);
			pthread_mutex_lock(&c->mu);
			in->subscribed = false;
			pthread_mutex_unlock(&c->mu);
		}
	}
	/* The server has processed our SUBs once a PING after them is
	 * answered; without a connection there is nothing to wait for. */
	if (list && atomic_load(&c->up_p)) {
		natsStatus st = natsConnection_FlushTimeout(c->p, FLUSH_TIMEOUT_MS);
		if (st == NATS_OK && atomic_load(&c->up_s))
			st = natsConnection_FlushTimeout(c->s, FLUSH_TIMEOUT_MS);
		if (st != NATS_OK)
			log_write(c->log, LOG_TYPE_WARNING,
			          "Cluster: NATS did not confirm subscriptions: %s",
			          natsStatus_GetText(st));
	}

	pthread_mutex_lock(&c->mu);
	struct interest *next;
	for (struct interest *in = list; in; in = next) {
		next = in->next_dirty;
		uint64_t *waiting = in->waiting;
		size_t n = in->n_waiting;
		if (n) {
			in->waiting = NULL;
			in->n_waiting = in->cap_waiting = 0;
			pthread_mutex_unlock(&c->mu);
			for (size_t i = 0; i < n; i++)
				c->cb.interest_done(c->cb.arg, waiting[i]);
			free(waiting);
			pthread_mutex_lock(&c->mu);
		}
		/* An entry counted again meanwhile is dirty again: the next
		 * round settles it. One that nobody counts and nothing waits
		 * on goes. */
		if (!in->dirty && in->count == 0 && !in->subscribed && !in->n_waiting) {
			(void)map_del(&c->interests, &c->hk, in->key, in->klen);
			free(in->waiting);
			free(in);
		}
	}
}

/* Sets up what lives in JetStream once NATS is reachable, again a while
 * after a failure (JetStream may still be electing its leader). */
static void js_setup(struct cluster *c)
{
	uint64_t now = mono_ms();
	if (c->js_ready || !atomic_load(&c->up_p) || now < c->js_retry_at)
		return;
	/* The messages stream first (safe to try again); a part that
	 * subscribes (retained, clients) is set up once, its subscription
	 * its mark, while another is retried. */
	if (durable_setup(c) == TERN_OK && pubrel_setup(c) == TERN_OK &&
	    (c->ack_sub || durable_ack_setup(c) == TERN_OK) &&
	    (c->retained_sub || retained_setup(c) == TERN_OK) &&
	    (c->clients_sub || clients_setup(c) == TERN_OK) && sessions_setup(c) == TERN_OK) {
		c->js_ready = true;
		atomic_store_explicit(&c->js_up, true, memory_order_release);
		log_write(c->log, LOG_TYPE_NOTICE,
		          "Cluster: JetStream set up (messages, PUBREL and retained streams, "
		          "clients and sessions buckets).");
	} else {
		c->js_retry_at = now + JS_RETRY_MS;
	}
}

static void *control_main(void *arg)
{
	struct cluster *c = arg;
	pthread_mutex_lock(&c->mu);
	while (!c->stopping) {
		if (!c->js_ready) {
			pthread_mutex_unlock(&c->mu);
			js_setup(c);
			pthread_mutex_lock(&c->mu);
		}
		if (c->dirty) {
			reconcile(c);
			continue;
		}
		if (c->stopping)
			break;
		pthread_mutex_unlock(&c->mu);
		durable_keep(c, mono_ms());
		pthread_mutex_lock(&c->mu);
		if (c->dirty || c->stopping)
			continue;
		{
			/* Woken for work, or at the latest for the next
			 * JetStream retry and the held messages' reports. */
			struct timespec until;
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_nsec +=
			        (long)(JS_RETRY_MS < CLUSTER_ACK_KEEP_MS ? JS_RETRY_MS
			                                                 : CLUSTER_ACK_KEEP_MS) *
			        1000000L;
			until.tv_sec += until.tv_nsec / 1000000000L;
			until.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&c->cv, &c->mu, &until);
		}
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

enum tern_err cluster_start(struct cluster *c)
{
	if (sessions_start(c))
		return TERN_E_SYS;
	if (pthread_create(&c->thread, NULL, control_main, c) != 0)
		return TERN_E_SYS;
	c->thread_started = true;
	if (durable_start(c))
		return TERN_E_SYS;
	if (nodes_start(c))
		return TERN_E_SYS;
	/* A subscription made before the durable queues can exist would miss
	 * what is published until they do: the broker opens its listeners
	 * once JetStream is set up, as long as that takes a JetStream that
	 * answers. */
	uint64_t until = mono_ms() + CLUSTER_START_WAIT_MS;
	while (!atomic_load_explicit(&c->js_up, memory_order_acquire) && mono_ms() < until) {
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (!atomic_load(&c->js_up))
		log_write(c->log, LOG_TYPE_WARNING,
		          "Cluster: JetStream is not set up after %u s; serving clients without it "
		          "(QoS 1/2 refused) until it is.",
		          CLUSTER_START_WAIT_MS / 1000u);
	return TERN_OK;
}

/* ---- forwarding ---- */

bool cluster_topic_local(struct tern_bytes t)
{
	return t.len >= 4 && memcmp(t.data, "$SYS", 4) == 0 && (t.len == 4 || t.data[4] == '/');
}

bool cluster_forward(struct cluster *c, const struct msg *m, uint64_t now, struct buf *scratch)
{
	if (cluster_topic_local(m->topic))
		return false;
	if (!atomic_load_explicit(&c->up_p, memory_order_relaxed) ||
	    !atomic_load_explicit(&c->up_s, memory_order_relaxed))
		goto local;
	char subject[SUBJECT_MAX + 1];
	size_t subj_len;
	if (subject_of_topic(c->prefix, m->topic, subject, SUBJECT_MAX, &subj_len))
		goto local;
	scratch->off = scratch->len = 0;
	if (wire_encode(scratch, m, now, (size_t)c->max_payload))
		goto local;
	natsStatus st = natsConnection_Publish(c->p, subject, scratch->data, (int)scratch->len);
	if (st != NATS_OK)
		goto local;
	flush_kick(c->flusher);
	atomic_fetch_add_explicit(&c->forwarded, 1, memory_order_relaxed);
	return true;
local:
	atomic_fetch_add_explicit(&c->local_only, 1, memory_order_relaxed);
	return false;
}

void cluster_count_drop(struct cluster *c)
{
	atomic_fetch_add_explicit(&c->broker_dropped, 1, memory_order_relaxed);
}

const char *cluster_node(const struct cluster *c)
{
	return c->node;
}

void cluster_stats(struct cluster *c, struct cluster_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->connected = atomic_load(&c->up_p) && atomic_load(&c->up_s);
	out->reconnects = atomic_load(&c->reconnects);
	out->forwarded = atomic_load(&c->forwarded);
	out->received = atomic_load(&c->received);
	out->local_only = atomic_load(&c->local_only);
	out->malformed = atomic_load(&c->malformed);
	out->interests = atomic_load(&c->n_subs);
	out->retained_in = atomic_load(&c->retained_in);
	out->retained_out = atomic_load(&c->retained_out);
	out->jetstream = atomic_load(&c->js_up);
	out->retained_synced = atomic_load(&c->retained_synced);
	out->stored_ok = atomic_load(&c->stored_ok);
	out->stored_failed = atomic_load(&c->stored_failed);
	out->durable_delivered = atomic_load(&c->dur_delivered);
	out->durable_acked = atomic_load(&c->dur_acked);
	out->durables = atomic_load(&c->n_dur_subs);
	out->pubrel_stored = atomic_load(&c->pubrel_stored);
	out->pubrel_failed = atomic_load(&c->pubrel_failed);
	out->pubrel_loaded = atomic_load(&c->pubrel_loaded);
	out->pubrel_deleted = atomic_load(&c->pubrel_deleted);
	out->acks_confirmed = atomic_load(&c->acks_confirmed);
	out->redeliveries_held = atomic_load(&c->redeliveries_held);
	out->settle_given_up = atomic_load(&c->settle_given_up);
	out->claims = atomic_load(&c->claims);
	out->claims_seen = atomic_load(&c->claims_seen);
	out->taken_over = atomic_load(&c->taken_over);
	out->live_nodes = atomic_load(&c->live_nodes);
	out->nodes_handled = atomic_load(&c->nodes_handled);
	out->session_writes = atomic_load(&c->ses_written);
	out->session_reads = atomic_load(&c->ses_read);
	out->session_conflicts = atomic_load(&c->ses_conflicts);
	out->session_stale = atomic_load(&c->ses_stale);
	out->adopted = atomic_load(&c->adopted);
	out->adopt_lost = atomic_load(&c->adopt_lost);
	out->dropped = atomic_load(&c->broker_dropped);
	/* libnats counts what each subscription dropped as a slow consumer. */
	pthread_mutex_lock(&c->mu);
	size_t pos = 0;
	struct interest *in;
	while ((in = map_next(&c->interests, &pos))) {
		for (int i = 0; i < 2; i++) {
			int64_t d = 0;
			int msgs = 0, bytes = 0;
			if (!in->sub[i])
				continue;
			if (natsSubscription_GetDropped(in->sub[i], &d) == NATS_OK && d > 0)
				out->dropped += (uint64_t)d;
			if (natsSubscription_GetPending(in->sub[i], &msgs, &bytes) == NATS_OK &&
			    msgs > 0)
				out->pending += (uint64_t)msgs;
		}
	}
	pthread_mutex_unlock(&c->mu);
}

/* ---- opening and closing ---- */

static enum tern_err fail(char *err, size_t errlen, enum tern_err code, const char *fmt,
                          const char *a, const char *b)
{
	snprintf(err, errlen, fmt, a, b);
	return code;
}

/* Options of one connection; nats_GetLastError() tells about a TLS file
 * that did not load. */
static enum tern_err options(struct cluster *c, const struct cluster_cfg *cfg, bool echo,
                             natsConnectionHandler up, natsConnectionHandler down,
                             natsConnectionHandler reup, natsOptions **out, char *err,
                             size_t errlen)
{
	natsOptions *o = NULL;
	char name[300];
	snprintf(name, sizeof(name), "ternd %s %s", c->node, echo ? "shared" : "routes");
	/* cluster_nats is a comma-separated list: libnats takes the servers
	 * one by one (natsOptions_SetURL takes a single URL). */
	char urls[1024];
	snprintf(urls, sizeof(urls), "%s", cfg->urls);
	const char *servers[32];
	int n_servers = 0;
	for (char *save = NULL, *u = strtok_r(urls, ",", &save); u && n_servers < 32;
	     u = strtok_r(NULL, ",", &save)) {
		while (*u == ' ')
			u++;
		if (*u)
			servers[n_servers++] = u;
	}
	natsStatus st = natsOptions_Create(&o);
	if (st == NATS_OK)
		st = n_servers ? natsOptions_SetServers(o, servers, n_servers) : NATS_INVALID_ARG;
	if (st == NATS_OK)
		st = natsOptions_SetName(o, name);
	if (st == NATS_OK)
		st = natsOptions_SetNoEcho(o, !echo);
	if (st == NATS_OK)
		st = natsOptions_SetMaxReconnect(o, -1);
	if (st == NATS_OK)
		st = natsOptions_SetReconnectWait(o, 500);
	if (st == NATS_OK)
		st = natsOptions_UseGlobalMessageDelivery(o, true);
	if (st == NATS_OK)
		st = natsOptions_SetRetryOnFailedConnect(o, true, up, c);
	if (st == NATS_OK)
		st = natsOptions_SetDisconnectedCB(o, down, c);
	if (st == NATS_OK)
		st = natsOptions_SetReconnectedCB(o, reup, c);
	if (st == NATS_OK && cfg->username && *cfg->username)
		st = natsOptions_SetUserInfo(o, cfg->username, cfg->password ? cfg->password : "");
	if (st == NATS_OK && cfg->credentials && *cfg->credentials)
		st = natsOptions_SetUserCredentialsFromFiles(o, cfg->credentials, NULL);
	if (st == NATS_OK && cfg->cafile && *cfg->cafile) {
		st = natsOptions_SetSecure(o, true);
		if (st == NATS_OK)
			st = natsOptions_LoadCATrustedCertificates(o, cfg->cafile);
		if (st == NATS_OK && cfg->certfile && *cfg->certfile)
			st = natsOptions_LoadCertificatesChain(o, cfg->certfile, cfg->keyfile);
	}
	if (st != NATS_OK) {
		natsOptions_Destroy(o);
		const char *detail = nats_GetLastError(NULL);
		return fail(err, errlen, TERN_E_CONFIG, "cluster: %s (%s)", natsStatus_GetText(st),
		            detail ? detail : "");
	}
	*out = o;
	return TERN_OK;
}

static enum tern_err connect_one(natsOptions *o, natsConnection **nc, char *err, size_t errlen)
{
	natsStatus st = natsConnection_Connect(nc, o);
	/* With retry on failed connect, "not yet" means it keeps trying. */
	if (st == NATS_OK || st == NATS_NOT_YET_CONNECTED)
		return TERN_OK;
	const char *detail = nats_GetLastError(NULL);
	return fail(err, errlen, TERN_E_CONFIG, "cluster: cannot connect to NATS: %s (%s)",
	            natsStatus_GetText(st), detail ? detail : "");
}

enum tern_err cluster_open(const struct cluster_cfg *cfg, const struct cluster_cb *cb,
                           const struct hash_key *hk, struct log *log, struct cluster **out,
                           char *err, size_t errlen)
{
	*out = NULL;
	char queue[256];
	size_t qlen;
	if (subject_cluster_check(cfg->name))
		return fail(err, errlen, TERN_E_CONFIG,
		            "cluster_name '%s'%s: 1 to 64 letters, digits, '-' or '_'", cfg->name,
		            "");
	if (!*cfg->node || strlen(cfg->node) >= sizeof(((struct cluster *)0)->node) ||
	    subject_queue_node(cfg->name, bytes_of(cfg->node), queue, sizeof(queue) - 1, &qlen))
		return fail(err, errlen, TERN_E_CONFIG, "cluster_node_name '%s'%s: 1 to 127 bytes",
		            cfg->node, "");
	/* One delivery thread for every subscription of the process: the
	 * order messages come off the socket is the order they are handed
	 * on (libnats' pool is per process; ternd has one cluster). */
	if (nats_Open(-1) != NATS_OK || nats_SetMessageDeliveryPoolSize(1) != NATS_OK)
		return fail(err, errlen, TERN_E_SYS, "cluster: cannot start libnats%s%s", "", "");
	struct cluster *c = calloc(1, sizeof(*c));
	if (!c)
		return TERN_E_NOMEM;
	snprintf(c->prefix, sizeof(c->prefix), "%s", cfg->name);
	snprintf(c->node, sizeof(c->node), "%s", cfg->node);
	memcpy(c->node_queue, queue, qlen + 1);
	c->hk = *hk;
	c->log = log;
	c->cb = *cb;
	c->max_payload = 1 << 20;
	c->replicas = cfg->replicas ? cfg->replicas : 1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->ack_mu, NULL);
	pthread_mutex_init(&c->store_mu, NULL);
	pthread_mutex_init(&c->ses_mu, NULL);
	c->dur_tail = &c->dur_ops;
	c->ses_tail = &c->ses_ops;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cv, &ca);
	pthread_cond_init(&c->ses_cv, &ca);
	pthread_cond_init(&c->dur_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&c->done, NULL);
	nodes_init(c);
	enum tern_err e = options(c, cfg, false, on_connected_p, on_disconnected_p,
	                          on_reconnected_p, &c->opts_p, err, errlen);
	if (!e)
		e = options(c, cfg, true, on_connected_s, on_disconnected_s, on_connected_s,
		            &c->opts_s, err, errlen);
	if (!e)
		e = connect_one(c->opts_p, &c->p, err, errlen);
	if (!e)
		e = connect_one(c->opts_s, &c->s, err, errlen);
	if (!e && flush_start(c->p, &c->flusher))
		e = fail(err, errlen, TERN_E_SYS, "cluster: cannot start a thread%s%s", "", "");
	if (!e) {
		if (natsConnection_Status(c->p) == NATS_CONN_STATUS_CONNECTED)
			on_connected_p(c->p, c);
		if (natsConnection_Status(c->s) == NATS_CONN_STATUS_CONNECTED)
			on_connected_s(c->s, c);
		int64_t mp = natsConnection_GetMaxPayload(c->p);
		if (mp > 0)
			c->max_payload = mp;
	}
	if (e) {
		cluster_close(c);
		return e;
	}
	*out = c;
	return TERN_OK;
}

void cluster_close(struct cluster *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stopping = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (c->thread_started)
		pthread_join(c->thread, NULL);
	sessions_stop(c);
	/* Then the "left" mark, while the connection is there: after the
	 * last session record went, so the node that adopts our sessions
	 * reads them as we leave them. */
	nodes_stop(c);
	/* Closing a connection closes its subscriptions; their completion
	 * callbacks say when no message callback can run any more. */
	retained_stop(c);
	durable_stop(c);
	durable_nak(c);
	durable_ack_stop(c);
	pubrel_stop(c);
	clients_stop(c);
	size_t pos = 0;
	struct interest *in;
	while ((in = map_next(&c->interests, &pos)))
		unsubscribe(c, in);
	flush_stop(c->flusher);
	if (c->p)
		natsConnection_Close(c->p);
	if (c->s)
		natsConnection_Close(c->s);
	pthread_mutex_lock(&c->mu);
	while (c->live_subs > 0)
		pthread_cond_wait(&c->done, &c->mu);
	pthread_mutex_unlock(&c->mu);
	durable_close(c);
	pubrel_close(c);
	durable_detach(c);
	nodes_free(c);
	jsCtx_Destroy(c->js);
	jsCtx_Destroy(c->js_clients);
	natsConnection_Destroy(c->p);
	natsConnection_Destroy(c->s);
	natsOptions_Destroy(c->opts_p);
	natsOptions_Destroy(c->opts_s);
	/* libnats runs the connections' callbacks (disconnected, with c as
	 * their argument) on a thread of its own, after natsConnection_Close()
	 * returned: c may go only once that thread is done (an ASan
	 * use-after-free in on_disconnected_p() at a stop, seen once). Every
	 * object of the library is destroyed by now, so the wait ends as soon
	 * as its threads have; the bound keeps a stop from hanging on it. */
	if (nats_CloseAndWait(CLOSE_WAIT_MS) != NATS_OK)
		log_write(c->log, LOG_TYPE_WARNING,
		          "Cluster: the NATS library's threads did not end within %u ms.",
		          CLOSE_WAIT_MS);
	pos = 0;
	while ((in = map_next(&c->interests, &pos))) {
		free(in->waiting);
		free(in);
	}
	map_free(&c->interests);
	pthread_mutex_destroy(&c->store_mu);
	pthread_cond_destroy(&c->ses_cv);
	pthread_cond_destroy(&c->dur_cv);
	pthread_mutex_destroy(&c->ses_mu);
	pthread_mutex_destroy(&c->ack_mu);
	pthread_cond_destroy(&c->done);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
