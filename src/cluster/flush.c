/*
 * flush.c - what a node writes to NATS goes out at once when traffic is
 * sparse, and in batches when it is dense.
 *
 * libnats (3.4, Debian 12) buffers every publish of a connection and
 * leaves the write to its flusher thread, which, once kicked, waits a full
 * millisecond for more before it writes (natsOptions_SetSendAsap is the
 * other extreme: one write(2) per publish, under the connection's lock).
 * A QoS 1 PUBLISH's PUBACK waits for JetStream's answer, and a cross-node
 * message for the write, so that millisecond was most of the cluster's
 * latency (bench/cluster, "latency": p50 1.2 ms against 0.28 ms with
 * SendAsap), while SendAsap halved the cross-node throughput (fan-in QoS
 * 0: 680k against 265k msg/s) and doubled its CPU per message.
 *
 * So the publishing paths (cluster_forward(), the stores, the claims) kick
 * this thread, which writes the connection's buffer at once with a NATS
 * flush (natsConnection_FlushTimeout() writes a PING behind what is
 * buffered, in place, then waits for its PONG). What is published while
 * that round trip runs waits for the next flush, so under load one write
 * carries everything of a round trip, and the PINGs are bounded by the
 * round-trip rate; libnats' own flusher still runs and writes what is left
 * within its millisecond. A kick costs a publisher one relaxed load while
 * a flush is already due, and a mutex and a signal when the thread is
 * idle.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "cluster/cluster_int.h"

/* How long one flush waits for its PONG. A connection that is down
 * answers at once (libnats fails the PING); this only bounds a stalled
 * server, and how long cluster_close() may wait for the thread. */
#define FLUSH_WAIT_MS 200

struct flusher {
	natsConnection *nc;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_bool due; /* a publish since the last flush began */
	bool stopping;   /* under mu */
	pthread_t thread;
};

static void *flush_main(void *arg)
{
	struct flusher *f = arg;
	for (;;) {
		pthread_mutex_lock(&f->mu);
		while (!f->stopping && !atomic_load_explicit(&f->due, memory_order_acquire))
			pthread_cond_wait(&f->cv, &f->mu);
		bool stop = f->stopping;
		pthread_mutex_unlock(&f->mu);
		if (stop)
			return NULL;
		/* Cleared before the flush: a publish from now on needs the
		 * next one. */
		atomic_store_explicit(&f->due, false, memory_order_release);
		(void)natsConnection_FlushTimeout(f->nc, FLUSH_WAIT_MS);
	}
}

enum tern_err flush_start(natsConnection *nc, struct flusher **out)
{
	*out = NULL;
	struct flusher *f = calloc(1, sizeof(*f));
	if (!f)
		return TERN_E_NOMEM;
	f->nc = nc;
	atomic_init(&f->due, false);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	if (pthread_create(&f->thread, NULL, flush_main, f) != 0) {
		pthread_cond_destroy(&f->cv);
		pthread_mutex_destroy(&f->mu);
		free(f);
		return TERN_E_SYS;
	}
	*out = f;
	return TERN_OK;
}

void flush_kick(struct flusher *f)
{
	if (!f || atomic_load_explicit(&f->due, memory_order_relaxed) ||
	    atomic_exchange_explicit(&f->due, true, memory_order_acq_rel))
		return;
	pthread_mutex_lock(&f->mu);
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

void flush_stop(struct flusher *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->mu);
	f->stopping = true;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
	pthread_join(f->thread, NULL);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}
