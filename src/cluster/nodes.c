/*
 * nodes.c - which nodes of the cluster are alive: the key-value bucket
 * "<cluster>_nodes" (docs/cluster.md, "When a node dies").
 *
 * Every node puts its key (clients_key() of its name) every
 * CLUSTER_NODE_BEAT_MS with its incarnation (the wall clock in
 * microseconds when it opened) as the value, and follows the bucket with
 * an ordered consumer (the last value of every key first, then every
 * change). A node whose heartbeat has not been seen for
 * CLUSTER_NODE_DEAD_MS is dead; a node that stops cleanly puts "<inc> left"
 * as its last value, and is gone at once.
 *
 * A dead node is acted for on one node only, the live node whose name
 * sorts first: it adopts the dead node's sessions (adopt.c). Every node
 * follows the same bucket, so they pick the same one; while their views differ (a node
 * that has just started, or just missed a beat) two may act, which is why
 * the adoption of a session is a conditional write (adopt.c). Once every
 * session is adopted, that node deletes the dead node's key, and every
 * node forgets it. The key stays until then, so when the acting node dies
 * midway its successor (the next name) acts again. A clean stop leaves its
 * key with the "left" mark rather than deleting it for the same reason.
 *
 * Heartbeats are core NATS publishes on the bucket's subject: JetStream
 * stores them, no answer is waited for, and the node's own heartbeats
 * come back through the consumer. A node declares nobody dead unless its
 * own heartbeats come back: when JetStream stalls (a leader election, or
 * this node cut off from NATS), every heartbeat stalls with it, and
 * silence says nothing about the other nodes.
 *
 * The work runs on a thread of its own, not the control thread: that one
 * blocks on JetStream requests (setting up streams, flushes of 2 s) for
 * longer than a beat may be late without the node looking dead. The
 * adoption runs on this thread too and may take its time (it reads the
 * sessions bucket and writes records, each request waiting up to 2 s
 * while JetStream elects a leader), so the beats go from a thread that
 * does nothing else (beat_main()).
 *
 * A node cut off from NATS for longer than the bound is counted dead by
 * the others while it goes on serving its clients. When its beats come
 * back after such a silence it takes back the sessions they adopted of
 * its connected clients (adopt_rejoin()), and the others count it alive
 * again: a beat of a run counted dead revives it.
 *
 * A node that restarts within CLUSTER_NODE_DEAD_MS under the same name is
 * not seen to die (its new incarnation just replaces the old one), so it
 * acts for its earlier run itself once its first beat is out (adopt_own():
 * the wills of the clients that were online then go, and a session its
 * store restored that went to another node meanwhile is dropped).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cluster/cluster_int.h"
#include "util/clock.h"

#define BUCKET_FMT "%s_nodes"
/* Rejoining (adopt_rejoin()): a silence of our own beats this much short
 * of the bound may already be the bound for a node that heard our last
 * beat before we did; the passes go on for as long as a node that counted
 * us dead may take to adopt (a beat, its check, its pass over the bucket),
 * one every REJOIN_EVERY_MS. */
#define REJOIN_SLACK_MS 500u
/* Our own beats flow: the last one came back within two beats. */
#define FLOWING_MS      (2u * CLUSTER_NODE_BEAT_MS)
#define REJOIN_FOR_MS   (2u * CLUSTER_NODE_DEAD_MS + 10000u)
#define REJOIN_EVERY_MS 2000u
#define LEFT_MARK       " left"
/* A node name is at most 127 bytes (cluster_open()). */
#define NODE_KEY_MAX CLIENT_KEY_LEN(128)

/* What this node knows of another one. */
struct peer {
	struct peer *next;
	uint64_t incarnation;
	uint64_t seen;     /* monotonic ms of its last heartbeat here */
	uint64_t retry_at; /* when to act for it again after a failure */
	bool left;         /* it stopped cleanly */
	bool dead;         /* declared dead (or left): not counted live */
	size_t len;
	char name[128];
};

static uint64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static struct peer **peer_find(struct cluster *c, const char *name, size_t len)
{
	struct peer **p = &c->peers;
	while (*p && !((*p)->len == len && memcmp((*p)->name, name, len) == 0))
		p = &(*p)->next;
	return p;
}

/* A change of the bucket (the delivery thread, in the bucket's order). */
static void on_node(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *arg)
{
	(void)nc;
	(void)sub;
	struct sub_ref *ref = arg;
	struct cluster *c = ref->c;
	char bucket[SUBJECT_CLUSTER_MAX + 16];
	int blen = snprintf(bucket, sizeof(bucket), "$KV." BUCKET_FMT ".", c->prefix);
	const char *subj = natsMsg_GetSubject(nm), *op = NULL;
	uint8_t name[CLIENT_ID_KEY_MAX];
	size_t len = 0;
	if (!subj || strncmp(subj, bucket, (size_t)blen) != 0 ||
	    clients_id(subj + blen, strlen(subj + blen), name, &len) || len >= 128) {
		natsMsg_Destroy(nm);
		return;
	}
	bool deleted = natsMsgHeader_Get(nm, "KV-Operation", &op) == NATS_OK;
	char value[64] = "";
	int vlen = natsMsg_GetDataLength(nm);
	if (natsMsg_GetData(nm) && vlen > 0 && vlen < (int)sizeof(value))
		memcpy(value, natsMsg_GetData(nm), (size_t)vlen);
	natsMsg_Destroy(nm);
	uint64_t inc = strtoull(value, NULL, 10);
	bool left = strstr(value, LEFT_MARK) != NULL;
	uint64_t now = mono_ms();
	pthread_mutex_lock(&c->nodes_mu);
	if (len == strlen(c->node) && memcmp(name, c->node, len) == 0) {
		/* Our own beat came back: the bucket moves. A key of an
		 * earlier run of ours is not ours to act on. After a silence
		 * the others may have counted as our death (they count from
		 * the last beat they heard, which came before our last one
		 * that came back), what they adopted is taken back: passes
		 * until they are surely done adopting. */
		if (!deleted && inc == c->incarnation) {
			if (c->own_seen &&
			    now - c->own_seen >= CLUSTER_NODE_DEAD_MS - REJOIN_SLACK_MS) {
				c->rejoin_at = now;
				c->rejoin_until = now + REJOIN_FOR_MS;
				log_write(
				        c->log, LOG_TYPE_NOTICE,
				        "Cluster: this node was cut off from the cluster for "
				        "%" PRIu64
				        " ms; the other nodes may have counted it dead and adopted "
				        "its sessions, which it takes back.",
				        now - c->own_seen);
			}
			c->own_seen = now;
		}
		pthread_mutex_unlock(&c->nodes_mu);
		return;
	}
	struct peer **pp = peer_find(c, (const char *)name, len), *p = *pp;
	if (deleted) {
		/* The node that acted for it is done: forget it. */
		if (p) {
			*pp = p->next;
			free(p);
		}
		pthread_mutex_unlock(&c->nodes_mu);
		return;
	}
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p) {
			pthread_mutex_unlock(&c->nodes_mu);
			log_write(c->log, LOG_TYPE_ERR, "Error: out of memory following the nodes");
			return;
		}
		memcpy(p->name, name, len);
		p->len = len;
		*pp = p;
	} else if (p->incarnation != inc) {
		/* A new run of the node: alive again, whatever we thought
		 * of the old one. */
		p->dead = false;
	} else if (p->dead && !left) {
		/* The same run beats again: it was cut off (or we were), not
		 * dead. Whatever was adopted of its sessions meanwhile it
		 * takes back itself (adopt_rejoin()). */
		p->dead = false;
		log_write(c->log, LOG_TYPE_NOTICE,
		          "Cluster: node %.*s is back (its heartbeats are).", (int)len,
		          (const char *)name);
	}
	p->incarnation = inc;
	p->seen = now;
	p->left = left;
	pthread_mutex_unlock(&c->nodes_mu);
}

static void nodes_log_fail(struct cluster *c, const char *what, natsStatus st, jsErrCode jerr)
{
	log_write(c->log, LOG_TYPE_WARNING,
	          "Cluster: the nodes bucket is not available yet (%s): %s (JetStream error %d)",
	          what, natsStatus_GetText(st), (int)jerr);
}

/* Creates the bucket and follows it (the nodes thread, JetStream up). */
static enum tern_err nodes_setup(struct cluster *c)
{
	natsStatus st = NATS_OK;
	jsErrCode jerr = 0;
	if (!c->js_nodes) {
		jsOptions o;
		jsOptions_Init(&o);
		/* The "left" mark at close waits at most this long. */
		o.Wait = 2000;
		if ((st = natsConnection_JetStream(&c->js_nodes, c->p, &o)) != NATS_OK) {
			nodes_log_fail(c, "context", st, jerr);
			return TERN_E_SYS;
		}
	}
	char bucket[SUBJECT_CLUSTER_MAX + 16], stream[SUBJECT_CLUSTER_MAX + 20],
	        subj[SUBJECT_CLUSTER_MAX + 24];
	snprintf(bucket, sizeof(bucket), BUCKET_FMT, c->prefix);
	snprintf(stream, sizeof(stream), "KV_%s", bucket);
	snprintf(subj, sizeof(subj), "$KV.%s.>", bucket);
	if (!c->kv_nodes) {
		kvConfig kc;
		kvConfig_Init(&kc);
		kc.Bucket = bucket;
		kc.History = 1;
		kc.StorageType = js_FileStorage;
		kc.Replicas = (int)c->replicas;
		st = js_CreateKeyValue(&c->kv_nodes, c->js_nodes, &kc);
		if (st != NATS_OK) {
			/* Made by another node with another configuration:
			 * it serves as it is. */
			st = js_KeyValue(&c->kv_nodes, c->js_nodes, bucket);
		}
		if (st != NATS_OK) {
			c->kv_nodes = NULL;
			nodes_log_fail(c, "bucket", st, jerr);
			return TERN_E_SYS;
		}
	}
	struct sub_ref *ref = calloc(1, sizeof(*ref));
	if (!ref)
		return TERN_E_NOMEM;
	ref->c = c;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Ordered = true;
	so.Config.Heartbeat = FOLLOW_HEARTBEAT_NS;
	so.Config.DeliverPolicy = js_DeliverLastPerSubject;
	natsSubscription *sub = NULL;
	jsOptions jo = follow_js_options();
	st = js_Subscribe(&sub, c->js_nodes, subj, on_node, ref, &jo, &so, &jerr);
	if ((st = cluster_sub_keep(c, &sub, st, ref)) != NATS_OK) {
		nodes_log_fail(c, "consumer", st, jerr);
		return TERN_E_SYS;
	}
	c->nodes_sub = sub;
	return TERN_OK;
}

static void key_subject(struct cluster *c, char *subj, size_t cap, char **key)
{
	int plen = snprintf(subj, cap, "$KV." BUCKET_FMT ".", c->prefix);
	size_t klen;
	*key = subj + plen;
	/* A node name is 1 to 127 bytes: it always has a key. */
	if (clients_key(bytes_of(c->node), *key, &klen))
		**key = '\0';
}

static void beat(struct cluster *c)
{
	char subj[SUBJECT_CLUSTER_MAX + 24 + NODE_KEY_MAX + 1], *key, value[32];
	key_subject(c, subj, sizeof(subj), &key);
	int n = snprintf(value, sizeof(value), "%" PRIu64, c->incarnation);
	/* Not waited for: a beat lost with NATS is made up by the next. */
	(void)natsConnection_Publish(c->p, subj, value, n);
}

bool nodes_going(struct cluster *c)
{
	pthread_mutex_lock(&c->nodes_mu);
	bool stopping = c->nodes_stopping;
	pthread_mutex_unlock(&c->nodes_mu);
	return !stopping;
}

/* The name of the node that acts for dead ones: the first live one. */
static bool acting(struct cluster *c)
{
	size_t own = strlen(c->node);
	for (struct peer *p = c->peers; p; p = p->next) {
		if (p->dead)
			continue;
		size_t m = p->len < own ? p->len : own;
		int cmp = memcmp(p->name, c->node, m);
		if (cmp < 0 || (cmp == 0 && p->len < own))
			return false;
	}
	return true;
}

/* Declares the peers whose beats stopped dead, counts the live ones, and
 * picks a dead one to act for (copied into name), if this node acts. */
static bool check(struct cluster *c, uint64_t now, char *name, size_t *len, int64_t *died_at,
                  bool *left)
{
	bool found = false;
	pthread_mutex_lock(&c->nodes_mu);
	/* Silence means something only while our own beats come back, one
	 * a beat apart: a node cut off from NATS has the last beats it heard
	 * of the others about as old as its own, and counted them dead when
	 * its own were still less than the bound old. */
	bool moving = c->own_seen && now - c->own_seen < FLOWING_MS;
	uint64_t live = 1;
	for (struct peer *p = c->peers; p; p = p->next) {
		if (!p->dead && (p->left || (moving && now - p->seen >= CLUSTER_NODE_DEAD_MS))) {
			p->dead = true;
			log_write(c->log, LOG_TYPE_NOTICE,
			          p->left ? "Cluster: node %.*s left the cluster."
			                  : "Cluster: node %.*s is dead (no heartbeat for %u s).",
			          (int)p->len, p->name, CLUSTER_NODE_DEAD_MS / 1000u);
		}
		if (!p->dead)
			live++;
	}
	atomic_store(&c->live_nodes, live);
	if (moving && acting(c)) {
		for (struct peer *p = c->peers; p && !found; p = p->next) {
			if (!p->dead || now < p->retry_at)
				continue;
			memcpy(name, p->name, p->len);
			name[p->len] = '\0';
			*len = p->len;
			/* When it went quiet, by our wall clock: its
			 * sessions' expiry and wills count from then. */
			*died_at = (int64_t)wall_ms() - (int64_t)(now - p->seen);
			*left = p->left;
			found = true;
		}
	}
	pthread_mutex_unlock(&c->nodes_mu);
	return found;
}

/* The broker has done what a dead node needed: its key goes, and every
 * node forgets it. A failure leaves it for a later round. */
static void act(struct cluster *c, const char *name, size_t len, int64_t died_at, bool left)
{
	log_write(c->log, LOG_TYPE_NOTICE, "Cluster: node %s %s; this node acts for it.", name,
	          left ? "left" : "is dead");
	enum tern_err err =
	        adopt_sessions(c, (struct tern_bytes){(const uint8_t *)name, len}, died_at);
	if (!err) {
		char key[NODE_KEY_MAX + 1];
		size_t klen;
		natsStatus st = NATS_OK;
		if (!clients_key((struct tern_bytes){(const uint8_t *)name, len}, key, &klen))
			st = kvStore_Delete(c->kv_nodes, key);
		if (st == NATS_OK) {
			atomic_fetch_add(&c->nodes_handled, 1);
			log_write(c->log, LOG_TYPE_NOTICE,
			          "Cluster: this node acted for node %s, which is gone.", name);
			return;
		}
		err = TERN_E_SYS;
	}
	log_write(c->log, LOG_TYPE_WARNING,
	          "Cluster: acting for dead node %s failed (%s); trying again in %u ms.", name,
	          tern_strerror(err), CLUSTER_NODE_RETRY_MS);
	pthread_mutex_lock(&c->nodes_mu);
	struct peer *p = *peer_find(c, name, len);
	if (p)
		p->retry_at = mono_ms() + CLUSTER_NODE_RETRY_MS;
	pthread_mutex_unlock(&c->nodes_mu);
}

/* Waits a beat's time or until the node stops (nodes_mu held); false
 * when it stops. */
static bool wait_a_beat(struct cluster *c)
{
	if (c->nodes_stopping)
		return false;
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += (long)CLUSTER_NODE_BEAT_MS * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_cond_timedwait(&c->nodes_cv, &c->nodes_mu, &until);
	return true;
}

/* The heartbeats, on a thread that does nothing else: the nodes thread
 * waits on JetStream requests (reading the sessions bucket, writing
 * records) for seconds at a time while JetStream elects a leader, and a
 * beat late by that long got live nodes counted dead. */
static void *beat_main(void *arg)
{
	struct cluster *c = arg;
	pthread_mutex_lock(&c->nodes_mu);
	while (!c->nodes_stopping) {
		pthread_mutex_unlock(&c->nodes_mu);
		if (atomic_load(&c->beating) && atomic_load(&c->up_p))
			beat(c);
		pthread_mutex_lock(&c->nodes_mu);
		if (!wait_a_beat(c))
			break;
	}
	pthread_mutex_unlock(&c->nodes_mu);
	return NULL;
}

static void *nodes_main(void *arg)
{
	struct cluster *c = arg;
	uint64_t setup_at = 0;
	pthread_mutex_lock(&c->nodes_mu);
	while (!c->nodes_stopping) {
		pthread_mutex_unlock(&c->nodes_mu);
		uint64_t now = mono_ms();
		/* The bucket once JetStream is set up (the control thread's
		 * streams first), again a while after a failure. */
		if (!c->nodes_sub && now >= setup_at &&
		    atomic_load_explicit(&c->js_up, memory_order_acquire) &&
		    atomic_load(&c->up_p) && nodes_setup(c) != TERN_OK)
			setup_at = now + JS_RETRY_MS;
		if (c->nodes_sub && !atomic_load(&c->beating) && atomic_load(&c->up_p)) {
			beat(c);
			atomic_store(&c->beating, true);
		}
		/* Once, after our first beat: what our earlier run left. */
		if (c->nodes_sub && !c->own_adopted && atomic_load(&c->up_p) &&
		    adopt_own(c) == TERN_OK)
			c->own_adopted = true;
		/* After a silence long enough to be counted dead. */
		pthread_mutex_lock(&c->nodes_mu);
		bool rejoin = c->rejoin_at && now >= c->rejoin_at;
		if (rejoin)
			c->rejoin_at =
			        now + REJOIN_EVERY_MS < c->rejoin_until ? now + REJOIN_EVERY_MS : 0;
		pthread_mutex_unlock(&c->nodes_mu);
		if (rejoin && c->nodes_sub && atomic_load(&c->up_p) && adopt_rejoin(c) != TERN_OK) {
			/* Not read to its end: again at the next beat. */
			pthread_mutex_lock(&c->nodes_mu);
			if (!c->rejoin_at || c->rejoin_at > now + CLUSTER_NODE_BEAT_MS)
				c->rejoin_at = now + CLUSTER_NODE_BEAT_MS;
			pthread_mutex_unlock(&c->nodes_mu);
		}
		char name[128];
		size_t len;
		int64_t died_at;
		bool left;
		if (c->nodes_sub && check(c, now, name, &len, &died_at, &left))
			act(c, name, len, died_at, left);
		pthread_mutex_lock(&c->nodes_mu);
		if (!wait_a_beat(c))
			break;
	}
	pthread_mutex_unlock(&c->nodes_mu);
	return NULL;
}

void nodes_init(struct cluster *c)
{
	c->incarnation = wall_us();
	pthread_mutex_init(&c->nodes_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->nodes_cv, &ca);
	pthread_condattr_destroy(&ca);
	c->nodes_inited = true;
}

enum tern_err nodes_start(struct cluster *c)
{
	if (pthread_create(&c->nodes_thread, NULL, nodes_main, c) != 0)
		return TERN_E_SYS;
	c->nodes_started = true;
	if (pthread_create(&c->beat_thread, NULL, beat_main, c) != 0)
		return TERN_E_SYS;
	c->beat_started = true;
	return TERN_OK;
}

void nodes_stop(struct cluster *c)
{
	if (!c->nodes_inited)
		return;
	pthread_mutex_lock(&c->nodes_mu);
	c->nodes_stopping = true;
	pthread_cond_broadcast(&c->nodes_cv);
	pthread_mutex_unlock(&c->nodes_mu);
	if (c->nodes_started)
		pthread_join(c->nodes_thread, NULL);
	c->nodes_started = false;
	if (c->beat_started)
		pthread_join(c->beat_thread, NULL);
	c->beat_started = false;
	if (c->kv_nodes && atomic_load(&c->up_p)) {
		/* The last word of a clean stop: the node that acts for us
		 * does so at once rather than after the bound. Stored before
		 * we go (kvStore_Put waits for JetStream, at most the
		 * context's 2 s). */
		char key[NODE_KEY_MAX + 1], value[48];
		size_t klen;
		int n = snprintf(value, sizeof(value), "%" PRIu64 LEFT_MARK, c->incarnation);
		if (!clients_key(bytes_of(c->node), key, &klen) &&
		    kvStore_Put(NULL, c->kv_nodes, key, value, n) != NATS_OK)
			log_write(
			        c->log, LOG_TYPE_WARNING,
			        "Cluster: could not tell the cluster this node leaves; the others "
			        "will see it dead in %u s.",
			        CLUSTER_NODE_DEAD_MS / 1000u);
	}
	if (c->nodes_sub) {
		natsSubscription_Unsubscribe(c->nodes_sub);
		natsSubscription_Destroy(c->nodes_sub);
		c->nodes_sub = NULL;
	}
}

void nodes_free(struct cluster *c)
{
	if (!c->nodes_inited)
		return;
	kvStore_Destroy(c->kv_nodes);
	c->kv_nodes = NULL;
	jsCtx_Destroy(c->js_nodes);
	c->js_nodes = NULL;
	while (c->peers) {
		struct peer *p = c->peers;
		c->peers = p->next;
		free(p);
	}
	pthread_cond_destroy(&c->nodes_cv);
	pthread_mutex_destroy(&c->nodes_mu);
	c->nodes_inited = false;
}
