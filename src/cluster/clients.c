/*
 * clients.c - a client id is unique in the cluster [MQTT-3.1.4-3]: the
 * key-value bucket "<cluster>_clients" says which node last accepted a
 * CONNECT of each client id.
 *
 * The bucket (the last CLIENTS_HISTORY claims per key, file storage,
 * cluster_replicas replicas) has one key per client id, its unpadded base64url form (clients_key(): NATS
 * allows only [-/_=.A-Za-z0-9] in a key, and a client id is any UTF-8), and
 * the value is the name of the node that claimed it. A claim is a put on
 * "$KV.<bucket>.<key>" sent with js_PublishMsgAsync() from the worker that
 * accepted the CONNECT, so no worker waits on the network; the put carries
 * the claim's number (a header), which the node gave out in increasing
 * order.
 *
 * Every node follows the bucket with an ordered consumer from the time it
 * starts following (earlier claims are of clients that connected before:
 * the node that holds one hears of the next claim) and hands every other
 * node's claim to the broker (the taken callback), which ends its local
 * connection and session of that client id when their own claim is older.
 *
 * Which claim is newer is decided by the claims' stamps, not by the
 * bucket's order: a CONNECT's CONNACK goes out before its claim is stored,
 * so a client that connects on A and, at once, on B may have B's claim
 * stored first; the bucket's order would then keep the older connection.
 * A stamp is a hybrid clock (the wall clock in microseconds, kept above
 * every stamp the node gave or heard of), so a claim made after its node
 * heard of another is newer than it whatever the skew between the nodes'
 * clocks, and two claims made before either node heard of the other (two
 * CONNECTs at nearly the same time) are ordered by the wall clocks, ties
 * by node name. Every node compares the same pairs, so one claim wins
 * everywhere and exactly one connection stays; no decision needs a round
 * trip of its own, and no table of claims outlives a session.
 *
 * A claim that could not be put (JetStream down) is not retried: the client
 * id is then unique on its node only until its next CONNECT. Deletes and
 * purges of keys (none of ours) are ignored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cluster/cluster_int.h"

#define BUCKET_FMT   "%s_clients"
#define CLAIM_HEADER "Tern-Claim"
/* Present ("1") on the claim of a CONNECT with clean start: the node that
 * held the session ends it for good, its record with it [MQTT-3.1.2-4]. */
#define CLEAN_HEADER "Tern-Clean"
/* Claims kept per key. A consumer delivers only what the stream still
 * holds: with one per key, a claim stored just before another of the same
 * client id can be gone before a node's consumer reaches it (seen with two
 * CONNECTs at once), and a node that missed the newer claim would keep its
 * connection. A few kept per key cover any burst short of that many
 * CONNECTs of one client id faster than a node follows the bucket. */
#define CLIENTS_HISTORY 8

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

enum tern_err clients_key(struct tern_bytes id, char *key, size_t *key_len)
{
	if (id.len == 0)
		return TERN_E_INVALID;
	if (id.len > CLIENT_ID_KEY_MAX)
		return TERN_E_TOO_LARGE;
	size_t o = 0, i = 0;
	for (; i + 3 <= id.len; i += 3) {
		uint32_t v =
		        (uint32_t)id.data[i] << 16 | (uint32_t)id.data[i + 1] << 8 | id.data[i + 2];
		key[o++] = b64url[v >> 18];
		key[o++] = b64url[(v >> 12) & 63];
		key[o++] = b64url[(v >> 6) & 63];
		key[o++] = b64url[v & 63];
	}
	if (id.len - i == 1) {
		uint32_t v = (uint32_t)id.data[i] << 16;
		key[o++] = b64url[v >> 18];
		key[o++] = b64url[(v >> 12) & 63];
	} else if (id.len - i == 2) {
		uint32_t v = (uint32_t)id.data[i] << 16 | (uint32_t)id.data[i + 1] << 8;
		key[o++] = b64url[v >> 18];
		key[o++] = b64url[(v >> 12) & 63];
		key[o++] = b64url[(v >> 6) & 63];
	}
	key[o] = '\0';
	*key_len = o;
	return TERN_OK;
}

static int b64url_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '-')
		return 62;
	if (ch == '_')
		return 63;
	return -1;
}

enum tern_err clients_id(const char *key, size_t key_len, uint8_t *out, size_t *out_len)
{
	/* A lone character after the groups of 4 encodes no whole byte. */
	if (key_len == 0 || key_len % 4 == 1 || key_len > CLIENT_KEY_LEN(CLIENT_ID_KEY_MAX))
		return TERN_E_INVALID;
	size_t o = 0;
	for (size_t i = 0; i < key_len; i += 4) {
		size_t n = key_len - i < 4 ? key_len - i : 4;
		uint32_t v = 0;
		for (size_t j = 0; j < 4; j++) {
			int d = j < n ? b64url_value(key[i + j]) : 0;
			if (d < 0)
				return TERN_E_INVALID;
			v = v << 6 | (uint32_t)d;
		}
		/* The bits past the last byte are 0 in a key clients_key()
		 * made: any other would decode to the same id. */
		if ((n == 2 && (v & 0xffff)) || (n == 3 && (v & 0xff)))
			return TERN_E_INVALID;
		out[o++] = (uint8_t)(v >> 16);
		if (n > 2)
			out[o++] = (uint8_t)(v >> 8);
		if (n > 3)
			out[o++] = (uint8_t)v;
	}
	*out_len = o;
	return TERN_OK;
}

/* A claim of ours JetStream did not store: the client id is unique on
 * this node only until its next CONNECT. */
static void on_claim_error(jsCtx *js, jsPubAckErr *pae, void *arg)
{
	(void)js;
	struct cluster *c = arg;
	log_write(c->log, LOG_TYPE_WARNING,
	          "Cluster: a client id claim was not stored in JetStream: %s (%d)",
	          pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err), (int)pae->ErrCode);
}

/* A change of the bucket (the delivery thread, in the bucket's order). */
static void on_claim(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *arg)
{
	(void)nc;
	(void)sub;
	struct sub_ref *ref = arg;
	struct cluster *c = ref->c;
	char bucket[SUBJECT_CLUSTER_MAX + 16];
	int blen = snprintf(bucket, sizeof(bucket), "$KV." BUCKET_FMT ".", c->prefix);
	const char *subj = natsMsg_GetSubject(nm), *op = NULL, *num = NULL, *clean = NULL;
	uint8_t id[CLIENT_ID_KEY_MAX];
	size_t id_len = 0;
	bool deleted = natsMsgHeader_Get(nm, "KV-Operation", &op) == NATS_OK;
	if (deleted || !subj || strncmp(subj, bucket, (size_t)blen) != 0 ||
	    clients_id(subj + blen, strlen(subj + blen), id, &id_len)) {
		natsMsg_Destroy(nm);
		return;
	}
	const char *value = natsMsg_GetData(nm);
	size_t vlen = value ? (size_t)natsMsg_GetDataLength(nm) : 0, nlen = strlen(c->node);
	if (!value)
		value = "";
	uint64_t stamp = 0;
	if (natsMsgHeader_Get(nm, CLAIM_HEADER, &num) == NATS_OK && num)
		stamp = strtoull(num, NULL, 10);
	bool is_clean =
	        natsMsgHeader_Get(nm, CLEAN_HEADER, &clean) == NATS_OK && clean && clean[0] == '1';
	/* Our own claims are decided on the worker as they are made. */
	bool own = vlen == nlen && memcmp(value, c->node, nlen) == 0;
	/* The tie goes to the name that sorts last, on every node. */
	size_t mlen = vlen < nlen ? vlen : nlen;
	int cmp = memcmp(value, c->node, mlen);
	bool tie_wins = cmp > 0 || (cmp == 0 && vlen > nlen);
	if (own || stamp == 0) {
		natsMsg_Destroy(nm);
		return;
	}
	/* Heard of: every later claim of ours is newer. */
	uint64_t seen = atomic_load(&c->claim_clock);
	while (seen < stamp && !atomic_compare_exchange_weak(&c->claim_clock, &seen, stamp))
		;
	atomic_fetch_add(&c->claims_seen, 1);
	if (log_on(c->log, LOG_TYPE_DEBUG))
		log_write(c->log, LOG_TYPE_DEBUG,
		          "Cluster: node %.*s claimed client id %.*s (%llu).", (int)vlen, value,
		          (int)id_len, (const char *)id, (unsigned long long)stamp);
	natsMsg_Destroy(nm);
	if (c->cb.taken)
		c->cb.taken(c->cb.arg, (struct tern_bytes){id, id_len}, stamp, tie_wins, is_clean);
}

enum tern_err clients_setup(struct cluster *c)
{
	natsStatus st = NATS_OK;
	jsErrCode jerr = 0;
	if (!c->js_clients) {
		jsOptions o;
		jsOptions_Init(&o);
		o.PublishAsync.ErrHandler = on_claim_error;
		o.PublishAsync.ErrHandlerClosure = c;
		/* One claim per CONNECT: a burst of connections must not make
		 * a worker wait for the window. */
		o.PublishAsync.MaxPending = 65536;
		if ((st = natsConnection_JetStream(&c->js_clients, c->p, &o)) != NATS_OK)
			goto fail;
	}
	char bucket[SUBJECT_CLUSTER_MAX + 16], stream[SUBJECT_CLUSTER_MAX + 20],
	        subj[SUBJECT_CLUSTER_MAX + 24];
	snprintf(bucket, sizeof(bucket), BUCKET_FMT, c->prefix);
	snprintf(stream, sizeof(stream), "KV_%s", bucket);
	snprintf(subj, sizeof(subj), "$KV.%s.>", bucket);
	kvConfig kc;
	kvConfig_Init(&kc);
	kc.Bucket = bucket;
	kc.History = CLIENTS_HISTORY;
	kc.StorageType = js_FileStorage;
	kc.Replicas = (int)c->replicas;
	kvStore *kv = NULL;
	st = js_CreateKeyValue(&kv, c->js_clients, &kc);
	if (st != NATS_OK) {
		/* Made by another node (or an earlier run) with another
		 * configuration: it serves as it is. */
		st = js_KeyValue(&kv, c->js_clients, bucket);
	}
	kvStore_Destroy(kv); /* the handle only: puts and watching are ours */
	if (st != NATS_OK)
		goto fail;
	struct sub_ref *ref = calloc(1, sizeof(*ref));
	if (!ref)
		return TERN_E_NOMEM;
	ref->c = c;
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Ordered = true;
	so.Config.Heartbeat = FOLLOW_HEARTBEAT_NS;
	so.Config.DeliverPolicy = js_DeliverNew;
	jsOptions jo = follow_js_options();
	st = js_Subscribe(&c->clients_sub, c->js_clients, subj, on_claim, ref, &jo, &so, &jerr);
	if ((st = cluster_sub_keep(c, &c->clients_sub, st, ref)) != NATS_OK)
		goto fail;
	return TERN_OK;
fail:
	log_write(c->log, LOG_TYPE_WARNING,
	          "Cluster: the clients bucket is not available yet: %s (JetStream error %d)",
	          natsStatus_GetText(st), (int)jerr);
	return TERN_E_SYS;
}

void clients_stop(struct cluster *c)
{
	if (c->clients_sub) {
		natsSubscription_Unsubscribe(c->clients_sub);
		natsSubscription_Destroy(c->clients_sub);
		c->clients_sub = NULL;
	}
}

uint64_t cluster_claim(struct cluster *c, struct tern_bytes client_id, bool clean)
{
	if (!atomic_load_explicit(&c->js_up, memory_order_acquire) ||
	    !atomic_load_explicit(&c->up_p, memory_order_relaxed))
		return 0;
	char subj[SUBJECT_CLUSTER_MAX + 24 + CLIENT_KEY_LEN(CLIENT_ID_KEY_MAX) + 1];
	int plen = snprintf(subj, sizeof(subj), "$KV." BUCKET_FMT ".", c->prefix);
	size_t klen;
	if (clients_key(client_id, subj + plen, &klen))
		return 0;
	/* The wall clock, but above every stamp given or heard of. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t wall = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	uint64_t last = atomic_load(&c->claim_clock), stamp;
	do
		stamp = wall > last ? wall : last + 1;
	while (!atomic_compare_exchange_weak(&c->claim_clock, &last, stamp));
	char num[24];
	snprintf(num, sizeof(num), "%llu", (unsigned long long)stamp);
	natsMsg *m = NULL;
	natsStatus st = natsMsg_Create(&m, subj, NULL, c->node, (int)strlen(c->node));
	if (st == NATS_OK)
		st = natsMsgHeader_Set(m, CLAIM_HEADER, num);
	if (st == NATS_OK && clean)
		st = natsMsgHeader_Set(m, CLEAN_HEADER, "1");
	if (st == NATS_OK)
		st = js_PublishMsgAsync(c->js_clients, &m, NULL);
	/* On success the library took the message (m is NULL). */
	natsMsg_Destroy(m);
	if (st != NATS_OK)
		return 0;
	flush_kick(c->flusher);
	atomic_fetch_add(&c->claims, 1);
	if (log_on(c->log, LOG_TYPE_DEBUG))
		log_write(c->log, LOG_TYPE_DEBUG, "Cluster: claimed client id %.*s (%llu).",
		          (int)client_id.len, (const char *)client_id.data,
		          (unsigned long long)stamp);
	return stamp;
}

void cluster_taken(struct cluster *c)
{
	atomic_fetch_add(&c->taken_over, 1);
}

/* The last claim of key in the clients bucket (a request on js): its
 * stamp, whether it was a clean start and whose it is (into node, cap
 * bytes, NUL-terminated). false when there is none or the bucket cannot
 * tell. */
static bool last_claim(struct cluster *c, jsCtx *js, const char *key, uint64_t *stamp, bool *clean,
                       char *node, size_t cap)
{
	char stream[SUBJECT_CLUSTER_MAX + 24],
	        subj[SUBJECT_CLUSTER_MAX + 24 + CLIENT_KEY_LEN(CLIENT_ID_KEY_MAX)];
	snprintf(stream, sizeof(stream), "KV_" BUCKET_FMT, c->prefix);
	snprintf(subj, sizeof(subj), "$KV." BUCKET_FMT ".%s", c->prefix, key);
	natsMsg *m = NULL;
	jsErrCode jerr = 0;
	if (js_GetLastMsg(&m, js, stream, subj, NULL, &jerr) != NATS_OK)
		return false;
	const char *num = NULL, *cl = NULL, *value = natsMsg_GetData(m);
	size_t vlen = value ? (size_t)natsMsg_GetDataLength(m) : 0;
	*stamp = 0;
	if (natsMsgHeader_Get(m, CLAIM_HEADER, &num) == NATS_OK && num)
		*stamp = strtoull(num, NULL, 10);
	*clean = natsMsgHeader_Get(m, CLEAN_HEADER, &cl) == NATS_OK && cl && cl[0] == '1';
	if (vlen >= cap)
		vlen = cap - 1;
	memcpy(node, value ? value : "", vlen);
	node[vlen] = 0;
	natsMsg_Destroy(m);
	return true;
}

bool clients_claimed_since(struct cluster *c, jsCtx *js, const char *key, struct tern_bytes node,
                           uint64_t stamp)
{
	char holder[256];
	uint64_t last = 0;
	bool clean;
	if (!last_claim(c, js, key, &last, &clean, holder, sizeof(holder)))
		return false; /* none (or not known): nobody came back that we can tell */
	bool other = !(strlen(holder) == node.len && memcmp(holder, node.data, node.len) == 0);
	return other && last > stamp;
}

bool clients_clean_since(struct cluster *c, jsCtx *js, const char *key, uint64_t stamp)
{
	char holder[256];
	uint64_t last = 0;
	bool clean = false;
	return last_claim(c, js, key, &last, &clean, holder, sizeof(holder)) && clean &&
	       last > stamp;
}
