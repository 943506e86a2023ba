/*
 * durable_ack.c - the handles of the durable-queue messages the broker
 * holds (cluster.h: cluster_ack_*), from their delivery (durable.c's
 * on_durable()) to their ack: the node's list of them, kept in progress
 * while a client holds a message for long (+WPI), acked once its client
 * acknowledged it (+ACK), given back at a clean stop (-NAK), detached when
 * the cluster closes with handles still held by the broker.
 *
 * Acks are published to the message's reply subject on connection P rather
 * than with natsMsg_Ack(), which reads the natsMsg's subscription: the
 * broker may ack after the unbind, when that subscription is gone.
 *
 * An ack is a publish that may be lost with the NATS connection (its
 * nats-server dies with the ack on its way): JetStream then delivers the
 * message again after the ack wait. For QoS 1 that is a duplicate the
 * protocol allows; for a QoS 2 message whose PUBCOMP came it would be a
 * second delivery [MQTT-4.3.3-3]. So the ack of a QoS 2 message is a
 * request, which JetStream answers once it has the ack (libnats' AckSync,
 * sent without waiting), and the message is not forgotten before that
 * answer:
 * - the handle outlives cluster_ack_done() on c->settling, its ack sent
 *   again every ACK_RETRY_MS until answered;
 * - every handle is known by (consumer, stream sequence) in c->held: a
 *   delivery again of a message this node holds or settles is not a new
 *   message (durable_ack_new() refuses it; a settling one is acked again
 *   with it);
 * - its PUBREL entry, which stands for the message on another node if
 *   this one dies, is deleted only once the ack is confirmed (the next
 *   binder would otherwise take the message delivered again for a new
 *   one).
 * A handle JetStream never answers for SETTLE_GIVE_UP_MS (its consumer
 * deleted meanwhile: nobody answers) is let go.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"
#include "util/clock.h"

/* An ack request without an answer after this long is sent again. */
#define ACK_RETRY_MS 1000
/* An ended QoS 2 handle whose ack JetStream does not answer for this long
 * is let go (logged). */
#define SETTLE_GIVE_UP_MS 60000
/* Room for a newer delivery's ack subject, which differs from the first in
 * its delivery count, timestamp and pending count. */
#define REPLY_SLACK 32

static void ack_unlink(struct cluster_ack **head, struct cluster_ack *a)
{
	if (a->prev)
		a->prev->next = a->next;
	else
		*head = a->next;
	if (a->next)
		a->next->prev = a->prev;
	a->prev = a->next = NULL;
}

static void ack_link(struct cluster_ack **head, struct cluster_ack *a)
{
	a->prev = NULL;
	a->next = *head;
	if (a->next)
		a->next->prev = a;
	*head = a;
}

/* Takes a out of the maps (ack_mu held): nothing finds it any more. */
static void ack_unkey(struct cluster *c, struct cluster_ack *a)
{
	if (a->keyed) {
		(void)map_del(&c->held, &c->hk, a->key, a->klen);
		a->keyed = false;
	}
	if (a->token) {
		(void)map64_del(&c->ack_tokens, a->token);
		a->token = 0;
	}
}

void durable_ack_send(struct cluster *c, struct cluster_ack *a)
{
	if (!a->acked)
		atomic_fetch_add_explicit(&c->dur_acked, 1, memory_order_relaxed);
	a->acked = true;
	a->asked_at = mono_ms();
	if (!a->reply[0])
		return; /* a loaded entry's, before its message came again */
	if (a->token) {
		(void)map64_del(&c->ack_tokens, a->token);
		a->token = 0;
	}
	uint64_t t = ++c->ack_token;
	if (!c->ack_sub || map64_put(&c->ack_tokens, t, a) != TERN_OK) {
		/* No answer can come (out of memory: sent again later). */
		if (natsConnection_PublishString(c->p, a->reply, "+ACK") == NATS_OK && !c->ack_sub)
			a->confirmed = true;
		return;
	}
	a->token = t;
	char inbox[sizeof(c->ack_inbox) + 24];
	snprintf(inbox, sizeof(inbox), "%s.%" PRIu64, c->ack_inbox, t);
	/* A request that does not go out is sent again (durable_keep()). */
	(void)natsConnection_PublishRequestString(c->p, a->reply, inbox, "+ACK");
}

void durable_settle(struct cluster *c, struct cluster_ack *a)
{
	if (!a->done || !a->confirmed || a->put)
		return;
	if (a->entry_seq)
		pubrel_delete(c, a->entry_seq);
	ack_unlink(&c->settling, a);
	ack_unkey(c, a);
	free(a);
}

/* JetStream's answer to an ack request (libnats' delivery thread). */
static void on_ack_answer(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *arg)
{
	(void)nc;
	(void)sub;
	struct cluster *c = ((struct sub_ref *)arg)->c;
	const char *subj = natsMsg_GetSubject(nm);
	const char *dot = subj ? strrchr(subj, '.') : NULL;
	uint64_t token = dot ? strtoull(dot + 1, NULL, 10) : 0;
	/* No responders: the consumer has no leader at the moment (or is
	 * gone): asked again later, given up at last. */
	bool answered = !natsMsg_IsNoResponders(nm);
	pthread_mutex_lock(&c->ack_mu);
	struct cluster_ack *a = token && answered ? map64_del(&c->ack_tokens, token) : NULL;
	if (a) {
		a->token = 0;
		a->confirmed = true;
		atomic_fetch_add_explicit(&c->acks_confirmed, 1, memory_order_relaxed);
		durable_settle(c, a);
	}
	pthread_mutex_unlock(&c->ack_mu);
	natsMsg_Destroy(nm);
}

enum tern_err durable_ack_setup(struct cluster *c)
{
	natsInbox *inbox = NULL;
	natsStatus st = natsInbox_Create(&inbox);
	if (st != NATS_OK)
		return TERN_E_SYS;
	char subj[sizeof(c->ack_inbox) + 2];
	pthread_mutex_lock(&c->ack_mu);
	snprintf(c->ack_inbox, sizeof(c->ack_inbox), "%s", (const char *)inbox);
	pthread_mutex_unlock(&c->ack_mu);
	natsInbox_Destroy(inbox);
	snprintf(subj, sizeof(subj), "%s.*", c->ack_inbox);
	struct sub_ref *ref = calloc(1, sizeof(*ref));
	if (!ref)
		return TERN_E_NOMEM;
	ref->c = c;
	natsSubscription *sub = NULL;
	st = natsConnection_Subscribe(&sub, c->p, subj, on_ack_answer, ref);
	if ((st = cluster_sub_keep(c, &sub, st, ref)) != NATS_OK) {
		log_write(c->log, LOG_TYPE_WARNING,
		          "Cluster: cannot subscribe to the answers of the queue acks: %s",
		          natsStatus_GetText(st));
		return TERN_E_SYS;
	}
	pthread_mutex_lock(&c->ack_mu);
	c->ack_sub = sub;
	pthread_mutex_unlock(&c->ack_mu);
	return TERN_OK;
}

void durable_ack_stop(struct cluster *c)
{
	pthread_mutex_lock(&c->ack_mu);
	natsSubscription *sub = c->ack_sub;
	c->ack_sub = NULL;
	pthread_mutex_unlock(&c->ack_mu);
	if (sub) {
		natsSubscription_Unsubscribe(sub);
		natsSubscription_Destroy(sub);
	}
}

void durable_keep(struct cluster *c, uint64_t now)
{
	uint64_t given_up = 0;
	pthread_mutex_lock(&c->ack_mu);
	for (struct cluster_ack *a = c->acks; a; a = a->next) {
		if (a->acked) {
			/* Its PUBREL entry stands for it; the queue's ack
			 * must get there. */
			if (a->confirmed)
				continue;
			if (a->reply[0] && now >= a->asked_at + ACK_RETRY_MS)
				durable_ack_send(c, a);
			else if (!a->reply[0] && now >= a->quiet_at)
				a->confirmed = true;
		} else if (now >= a->kept_at + CLUSTER_ACK_KEEP_MS) {
			(void)natsConnection_PublishString(c->p, a->reply, "+WPI");
			a->kept_at = now;
		}
	}
	for (struct cluster_ack *a = c->settling, *next; a; a = next) {
		next = a->next;
		if (a->confirmed)
			continue; /* its PUBREL entry's put is on its way */
		if (!a->reply[0]) {
			/* A loaded entry's, its message not delivered again. */
			if (now >= a->quiet_at) {
				a->confirmed = true;
				durable_settle(c, a);
			}
		} else if (now >= a->settle_since + SETTLE_GIVE_UP_MS) {
			a->confirmed = true;
			given_up++;
			durable_settle(c, a);
		} else if (now >= a->asked_at + ACK_RETRY_MS) {
			durable_ack_send(c, a);
		}
	}
	pthread_mutex_unlock(&c->ack_mu);
	if (given_up && atomic_fetch_add(&c->settle_given_up, given_up) % 1000 == 0)
		log_write(c->log, LOG_TYPE_WARNING,
		          "Cluster: JetStream did not confirm the ack of a completed QoS 2 message "
		          "within %u s; it is let go (a delivery again would be a duplicate)",
		          SETTLE_GIVE_UP_MS / 1000);
}

/* ---- the ack handle ---- */

uint64_t cluster_ack_seq(const struct cluster_ack *a)
{
	return a->seq;
}

uint64_t cluster_ack_delivered(const struct cluster_ack *a)
{
	return a->delivered;
}

void cluster_ack_progress(struct cluster_ack *a)
{
	struct cluster *c = a->c;
	if (!c)
		return;
	pthread_mutex_lock(&c->ack_mu);
	if (!a->acked)
		(void)natsConnection_PublishString(c->p, a->reply, "+WPI");
	pthread_mutex_unlock(&c->ack_mu);
}

void cluster_ack_done(struct cluster_ack *a)
{
	struct cluster *c = a->c;
	if (!c) {
		/* After cluster_close(): JetStream delivers it again. */
		free(a);
		return;
	}
	pthread_mutex_lock(&c->ack_mu);
	ack_unlink(&c->acks, a);
	if (a->exact && !a->confirmed && c->ack_sub) {
		/* Kept until JetStream confirms the ack (its PUBREL entry
		 * with it, once its put is answered). */
		a->done = true;
		a->settle_since = mono_ms();
		ack_link(&c->settling, a);
		if (!a->acked)
			durable_ack_send(c, a);
		durable_settle(c, a);
		pthread_mutex_unlock(&c->ack_mu);
		return;
	}
	if (a->put)
		pubrel_put_done(a->put); /* the entry goes once it is stored */
	else if (a->entry_seq)
		pubrel_delete(c, a->entry_seq);
	bool ack = !a->acked;
	ack_unkey(c, a);
	pthread_mutex_unlock(&c->ack_mu);
	/* An ack lost with the connection leaves the message unacked:
	 * JetStream delivers it again, which QoS 1 allows (DUP). */
	if (ack && natsConnection_PublishString(c->p, a->reply, "+ACK") == NATS_OK)
		atomic_fetch_add_explicit(&c->dur_acked, 1, memory_order_relaxed);
	free(a);
}

void cluster_ack_drop(struct cluster_ack *a)
{
	if (!a)
		return;
	struct cluster *c = a->c;
	if (c) {
		pthread_mutex_lock(&c->ack_mu);
		ack_unlink(&c->acks, a);
		if (a->put)
			pubrel_put_dropped(a->put);
		ack_unkey(c, a);
		pthread_mutex_unlock(&c->ack_mu);
	}
	free(a);
}

/* A delivery again of held (ack_mu held): JetStream did not have its
 * in-progress report or its ack in time. */
static void held_again(struct cluster *c, struct cluster_ack *held, const char *reply)
{
	/* Reports and acks go to the newest delivery's subject. */
	size_t rlen = strlen(reply);
	if (rlen < held->rcap)
		memcpy(held->reply, reply, rlen + 1);
	held->kept_at = mono_ms();
	/* Acked already (ended, or its PUBREL entry stored): that ack was
	 * lost; again. Else the broker still holds it and acks it when its
	 * client is done. */
	if (held->acked)
		durable_ack_send(c, held);
}

/* A handle not yet on any list or map; the key (consumer, seq) when
 * consumer is given; rcap bytes for its ack subject. */
static struct cluster_ack *ack_alloc(struct cluster *c, const char *reply, size_t rcap,
                                     const char *consumer, uint64_t seq)
{
	size_t rlen = strlen(reply), clen = consumer ? strlen(consumer) : 0;
	size_t klen = consumer ? clen + 8 : 0;
	if (rcap < rlen + 1)
		rcap = rlen + 1;
	if (rcap > UINT16_MAX || klen > UINT16_MAX)
		return NULL;
	struct cluster_ack *a = calloc(1, sizeof(*a) + rcap + klen);
	if (!a)
		return NULL;
	a->c = c;
	a->seq = seq;
	a->kept_at = mono_ms();
	a->rcap = (uint16_t)rcap;
	memcpy(a->reply, reply, rlen + 1);
	a->key = (uint8_t *)a->reply + rcap;
	a->klen = (uint16_t)klen;
	if (consumer) {
		memcpy(a->key, consumer, clen);
		for (int i = 0; i < 8; i++)
			a->key[clen + (size_t)i] = (uint8_t)(seq >> (8 * i));
	}
	return a;
}

struct cluster_ack *durable_ack_new(struct cluster *c, const char *reply, const char *consumer,
                                    uint64_t seq, uint64_t delivered, bool exact)
{
	size_t rlen = strlen(reply);
	struct cluster_ack *a = ack_alloc(c, reply, rlen + 1 + REPLY_SLACK, consumer, seq);
	if (!a)
		return NULL;
	a->delivered = delivered;
	a->exact = exact;
	pthread_mutex_lock(&c->ack_mu);
	if (a->klen) {
		struct cluster_ack *held = map_get(&c->held, &c->hk, a->key, a->klen);
		if (held) {
			held_again(c, held, reply);
			pthread_mutex_unlock(&c->ack_mu);
			atomic_fetch_add_explicit(&c->redeliveries_held, 1, memory_order_relaxed);
			free(a);
			return NULL;
		}
		if (map_put(&c->held, &c->hk, a->key, a->klen, a) != TERN_OK) {
			pthread_mutex_unlock(&c->ack_mu);
			free(a);
			return NULL; /* it comes again */
		}
		a->keyed = true;
	}
	ack_link(&c->acks, a);
	pthread_mutex_unlock(&c->ack_mu);
	return a;
}

struct cluster_ack *durable_ack_entry(struct cluster *c, const char *consumer, uint64_t seq)
{
	/* Room for the ack subject of the delivery again: "$JS.ACK.", the
	 * stream and consumer names and six numbers. */
	size_t rcap = consumer ? 8 + SUBJECT_CLUSTER_MAX + 16 + DURABLE_NAME_MAX + 6 * 21 : 1;
	struct cluster_ack *a = ack_alloc(c, "", rcap, consumer, seq);
	if (!a)
		return NULL;
	a->delivered = 1;
	a->acked = true; /* nothing to report or ack before it comes again */
	pthread_mutex_lock(&c->ack_mu);
	/* Held already (this node had the message delivered before the
	 * bind): that handle answers for it; this one goes by the flight. */
	if (a->klen && !map_get(&c->held, &c->hk, a->key, a->klen) &&
	    map_put(&c->held, &c->hk, a->key, a->klen, a) == TERN_OK) {
		a->keyed = true;
		a->exact = true;
		/* JetStream delivers a message unacked again at most its ack
		 * wait after its last delivery, which was before this bind. */
		a->quiet_at = mono_ms() + 2 * CLUSTER_ACK_WAIT_MS + 2000;
	} else {
		a->confirmed = true;
	}
	ack_link(&c->acks, a);
	pthread_mutex_unlock(&c->ack_mu);
	return a;
}

static int by_seq(const void *x, const void *y)
{
	uint64_t a = (*(struct cluster_ack *const *)x)->seq,
	         b = (*(struct cluster_ack *const *)y)->seq;
	return a < b ? -1 : a > b;
}

/* A NAK makes JetStream deliver the message again at once, ahead of what
 * the consumer has not delivered yet, where the ack wait would bring it
 * back seconds later behind messages published since: a client that
 * resumes its session on another node (or here after the restart) gets
 * them in the order they were published [MQTT-4.6.0-6]. Oldest first, so
 * that the redeliveries keep that order too. Nothing is NAKed when memory
 * runs out: the ack wait brings the messages back, later. */
void durable_nak(struct cluster *c)
{
	if (!c->p || !atomic_load(&c->up_p))
		return;
	pthread_mutex_lock(&c->ack_mu);
	size_t n = 0, k = 0;
	for (struct cluster_ack *a = c->acks; a; a = a->next)
		n += !a->acked;
	struct cluster_ack **v = n ? malloc(n * sizeof(*v)) : NULL;
	for (struct cluster_ack *a = c->acks; v && a; a = a->next)
		if (!a->acked)
			v[k++] = a;
	if (v) {
		qsort(v, k, sizeof(*v), by_seq);
		for (size_t i = 0; i < k; i++) {
			(void)natsConnection_PublishString(c->p, v[i]->reply, "-NAK");
			/* Given back: an ack now would take it from whoever it
			 * is delivered to next. */
			v[i]->acked = v[i]->confirmed = true;
		}
	}
	pthread_mutex_unlock(&c->ack_mu);
	free(v);
	if (k)
		(void)natsConnection_FlushTimeout(c->p, FLUSH_TIMEOUT_MS);
}

void durable_detach(struct cluster *c)
{
	pthread_mutex_lock(&c->ack_mu);
	for (struct cluster_ack *a = c->acks, *next; a; a = next) {
		next = a->next;
		a->c = NULL;
		a->prev = a->next = NULL;
		a->keyed = false;
		a->token = 0;
	}
	c->acks = NULL;
	/* Ended, unconfirmed: their PUBREL entries stay, and whoever binds
	 * the queues next takes the messages again for those entries. */
	for (struct cluster_ack *a = c->settling, *next; a; a = next) {
		next = a->next;
		free(a);
	}
	c->settling = NULL;
	map_free(&c->held);
	map_free(&c->ack_tokens);
	pthread_mutex_unlock(&c->ack_mu);
}
