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
 */
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"
#include "util/clock.h"

/* Takes a off the node's list (ack_mu held). */
static void ack_unlink(struct cluster *c, struct cluster_ack *a)
{
	if (a->prev)
		a->prev->next = a->next;
	else
		c->acks = a->next;
	if (a->next)
		a->next->prev = a->prev;
}

/* Puts a on the node's list (ack_mu held). */
static void ack_link(struct cluster *c, struct cluster_ack *a)
{
	a->prev = NULL;
	a->next = c->acks;
	if (a->next)
		a->next->prev = a;
	c->acks = a;
}

void durable_keep(struct cluster *c, uint64_t now)
{
	pthread_mutex_lock(&c->ack_mu);
	for (struct cluster_ack *a = c->acks; a; a = a->next) {
		/* A message its PUBREL entry stands for left the queue. */
		if (a->acked || now < a->kept_at + CLUSTER_ACK_KEEP_MS)
			continue;
		(void)natsConnection_PublishString(c->p, a->reply, "+WPI");
		a->kept_at = now;
	}
	pthread_mutex_unlock(&c->ack_mu);
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
	ack_unlink(c, a);
	if (a->put)
		pubrel_put_done(a->put); /* the entry goes once it is stored */
	else if (a->entry_seq)
		pubrel_delete(c, a->entry_seq);
	bool ack = !a->acked;
	pthread_mutex_unlock(&c->ack_mu);
	/* An ack lost with the connection leaves the message unacked:
	 * JetStream delivers it again, which QoS 1/2 allows (DUP). */
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
		ack_unlink(c, a);
		if (a->put)
			pubrel_put_dropped(a->put);
		pthread_mutex_unlock(&c->ack_mu);
	}
	free(a);
}

struct cluster_ack *durable_ack_new(struct cluster *c, const char *reply, uint64_t seq,
                                    uint64_t delivered)
{
	size_t rlen = strlen(reply);
	struct cluster_ack *a = calloc(1, sizeof(*a) + rlen + 1);
	if (!a)
		return NULL;
	a->c = c;
	a->seq = seq;
	a->delivered = delivered;
	a->acked = rlen == 0;
	a->kept_at = mono_ms();
	memcpy(a->reply, reply, rlen + 1);
	pthread_mutex_lock(&c->ack_mu);
	ack_link(c, a);
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
			v[i]->acked = true;
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
	}
	c->acks = NULL;
	pthread_mutex_unlock(&c->ack_mu);
}
