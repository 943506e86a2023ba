/*
 * worker.c - one worker's event loop.
 *
 * An iteration: wait for events; accept, read and handle packets (handlers
 * queue output and deliveries); drain the inbox; every TICK_MS (200 ms),
 * run the timers (keep-alive, CONNECT deadline, will delay, session
 * expiry). Then, "just before sleeping, in the hope we can write replies
 * without a syscall" (Redis), push the outbox to other workers (with one
 * batch of deliveries per target worker, route.c), write every
 * connection's gathered output once, reap connections marked closing, and
 * drop the PUBLISH headers cached for this iteration's messages.
 * Write readiness is asked for only after a write would block.
 *
 * Timers are a linear scan every TICK_MS: O(connections + sessions), a few
 * nanoseconds each, far below the cost of the traffic those connections
 * carry; a timer wheel can replace it without touching the handlers.
 */
#include "broker/worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker/auth.h"
#include "broker/archive_link.h"
#include "broker/bridge.h"
#include "broker/broker.h"
#include "broker/cluster_link.h"
#include "broker/conn.h"
#include "broker/flow.h"
#include "broker/handlers.h"
#include "broker/memory_limit.h"
#include "broker/persist.h"
#include "broker/retain.h"
#include "broker/route.h"
#include "broker/session.h"
#include "broker/stats.h"
#include "broker/sys.h"
#include "broker/transport.h"
#include "tern/codec.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/log_limit.h"
#include "util/map.h"
#include "util/mpsc.h"

#define MAX_EVENTS 256
/* Timer resolution: keep-alive is enforced within 1.5 x its period plus
 * this much. */
#define TICK_MS 200

static void flush_outbox(struct worker *w)
{
	for (unsigned i = 0; i < w->broker->n_workers; i++) {
		deliver_batch_close(w, i);
		struct inbox_item *it = w->outbox[i], *rev = NULL;
		if (!it)
			continue;
		w->outbox[i] = NULL;
		/* The outbox is a stack; restore publish order before pushing. */
		while (it) {
			struct inbox_item *next = it->next;
			it->next = rev;
			rev = it;
			it = next;
		}
		for (it = rev; it;) {
			struct inbox_item *next = it->next;
			if (it->kind == INBOX_DELIVER)
				atomic_fetch_add_explicit(&w->broker->workers[i]->backlog,
				                          it->u.deliver.n, memory_order_relaxed);
			worker_post(w->broker->workers[i], it);
			it = next;
		}
	}
}

static void accept_all(struct worker *w, size_t index)
{
	struct broker *b = w->broker;
	int lfd = w->lfds[index];
	const struct listener *l = &b->listeners[index];
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_write(&b->log, LOG_TYPE_ERR, "Error: accept: %s",
				          strerror(errno));
			return;
		}
		int64_t limit = b->cfg.max_connections;
		if (limit < 0 ||
		    (b->cfg.global_max_connections >= 0 && b->cfg.global_max_connections < limit))
			limit = b->cfg.global_max_connections;
		if (limit >= 0 && atomic_load(&b->n_conns) >= limit) {
			stat_add(&w->stats, STAT_CONN_REFUSED, 1);
			log_write(&b->log, LOG_TYPE_NOTICE,
			          "Client connection refused: %s reached.",
			          limit == b->cfg.max_connections ? "max_connections"
			                                          : "global_max_connections");
			close(fd);
			continue;
		}
		int one = 1;
		if (b->cfg.set_tcp_nodelay)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		/* TCP keep-alive finds half-open sockets of clients that asked
		 * for no MQTT keep-alive. */
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		struct conn *c = conn_new(w, fd, l);
		if (!c) {
			close(fd);
			continue;
		}
		if (conn_adopt(w, c)) {
			conn_free(c);
			continue;
		}
		stat_add(&w->stats, STAT_CONN_ACCEPTED, 1);
		if (log_on(&b->log, LOG_TYPE_DEBUG))
			log_write(&b->log, LOG_TYPE_DEBUG, "New connection from %s.",
			          conn_peer(c, (char[64]){0}));
	}
}

void worker_inbox_item(struct worker *w, struct inbox_item *it)
{
	switch (it->kind) {
	case INBOX_DELIVER:
	case INBOX_ROUTE_ADD:
	case INBOX_ROUTE_DEL:
	case INBOX_ROUTE_ACK:
	case INBOX_REMOTE:
		route_inbox(w, it); /* frees or reuses the item */
		return;
	case INBOX_STORE_DONE:
		persist_done(w, it->u.done.ticket, it->u.done.err);
		break;
	case INBOX_CLUSTER_STORED:
		persist_cluster_done(w, it->u.done.ticket, it->u.done.err);
		break;
	case INBOX_DURABLE:
		cluster_link_durable_take(w, it);
		break;
	case INBOX_PUBREL:
		cluster_link_pubrels_take(w, it);
		break;
	case INBOX_AUTH:
		auth_swap(w, it->u.auth);
		break;
	case INBOX_AUTH_DONE:
		conn_auth_verdict(w, it->u.verdict.conn, it->u.verdict.rc);
		break;
	case INBOX_FLOW_WAKE:
		w->flow_recheck = true;
		break;
	case INBOX_CLAIM:
		/* At shutdown the sessions stay as they are, for the store. */
		if (!atomic_load_explicit(&w->broker->stop, memory_order_relaxed))
			connect_cluster_taken(
			        w, (struct tern_bytes){it->u.claim.cid, it->u.claim.len},
			        it->u.claim.stamp, it->u.claim.tie_wins, it->u.claim.clean);
		free(it->u.claim.cid);
		break;
	case INBOX_ADOPT:
		if (!atomic_load_explicit(&w->broker->stop, memory_order_relaxed))
			session_adopt(w, (struct tern_bytes){it->u.adopt.cid, it->u.adopt.len},
			              it->u.adopt.rec, it->u.adopt.rec_len);
		free(it->u.adopt.cid);
		free(it->u.adopt.rec);
		break;
	case INBOX_CALL:
		it->u.call.fn(w, it->u.call.arg);
		break;
	case INBOX_REJOINED:
		if (!atomic_load_explicit(&w->broker->stop, memory_order_relaxed))
			session_rejoined(w, (struct tern_bytes){it->u.claim.cid, it->u.claim.len},
			                 it->u.claim.stamp);
		free(it->u.claim.cid);
		break;
	case INBOX_HELD_ELSEWHERE:
		if (!atomic_load_explicit(&w->broker->stop, memory_order_relaxed))
			session_held_elsewhere(
			        w, (struct tern_bytes){it->u.claim.cid, it->u.claim.len});
		free(it->u.claim.cid);
		break;
	case INBOX_SESSION_FOUND:
		conn_session_found(w, it->u.found.conn, it->u.found.rec, it->u.found.len,
		                   it->u.found.err);
		free(it->u.found.rec);
		break;
	case INBOX_CONN: /* process_inbox() adopts it, worker_shutdown() frees it */
		break;
	}
	free(it);
}

static void process_inbox(struct worker *w)
{
	struct mpsc_node *node;
	while ((node = mpsc_pop(&w->inbox))) {
		struct inbox_item *it = (struct inbox_item *)node;
		if (it->kind == INBOX_CONN) {
			struct conn *c = it->u.conn;
			struct conn_proxied *proxied = it->proxied;
			free(it);
			conn_proxy_arrive(c, proxied);
			conn_arrive(w, c);
		} else {
			worker_inbox_item(w, it);
		}
	}
}

static void drain_inbox(struct worker *w)
{
	uint64_t v;
	ssize_t n = read(w->evfd, &v, sizeof(v));
	(void)n;
	atomic_store_explicit(&w->wake_pending, false, memory_order_seq_cst);
	process_inbox(w);
}

static void tick(struct worker *w)
{
	uint64_t now = w->now;
	conn_linger_expire(w, now);
	conn_check_timeouts(w, now);
	/* Collect first: session_tick() may destroy sessions (map changes). */
	size_t pos = 0, n = 0;
	struct session *s;
	struct session **due = NULL;
	size_t cap = 0;
	uint64_t queued = 0;
	while ((s = session_next(w, &pos))) {
		queued += session_held(s);
		if (session_sink(s)) {
			session_flow_tick(s, now);
			continue;
		}
		if (session_due(s, now)) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct session **d = realloc(due, ncap * sizeof(*d));
				if (!d)
					break;
				due = d;
				cap = ncap;
			}
			due[n++] = s;
		}
	}
	for (size_t i = 0; i < n; i++)
		session_tick(due[i], now);
	free(due);
	stat_set(&w->stats, STAT_QUEUED, queued);
	/* Wake-ups are not relied on alone: paused publishers are checked
	 * on every tick too. */
	if (flow_any_paused(w))
		flow_resume(w);
	/* Loop utilisation over the last second or so. */
	if (now - w->util_at >= 1000) {
		uint64_t busy = stat_get(&w->stats, STAT_LOOP_BUSY_US);
		uint64_t span = (now - w->util_at) * 1000u;
		uint64_t permille = span ? (busy - w->util_busy) * 1000u / span : 0;
		stat_set(&w->stats, STAT_LOOP_UTIL_PERMILLE, permille > 1000 ? 1000 : permille);
		w->util_at = now;
		w->util_busy = busy;
	}
	if (w->id == 0) {
		sys_tick(w);
		memory_limit_tick(w->broker);
	}
	if (w->id == 0 && w->broker->cfg.retain_expiry_interval) {
		/* Expired retained messages are dropped when a lookup reaches
		 * them; one nobody subscribes to again would stay for good
		 * without this sweep (mosquitto's retain_expiry_interval). */
		uint64_t every = (uint64_t)w->broker->cfg.retain_expiry_interval * 60000u;
		if (!w->retain_sweep_at)
			w->retain_sweep_at = now + every;
		else if (now >= w->retain_sweep_at) {
			size_t gone = retain_expire(w->broker->retain, now);
			if (gone)
				log_write(&w->broker->log, LOG_TYPE_DEBUG,
				          "Removed %zu expired retained messages.", gone);
			w->retain_sweep_at = now + every;
		}
	}
	log_limiter_tick(&w->log_limit, now);
}

static void before_sleep(struct worker *w)
{
	/* A push that was half done at the last drain is picked up here
	 * (no syscall: the queue is only read). */
	process_inbox(w);
	/* Publishers whose receivers drained go on now, so what they send
	 * joins this round's batches. */
	if (w->flow_recheck)
		flow_resume(w);
	/* The store batch goes before the outbox: a delivery's row must be
	 * queued for the disk before another worker can record its ack. */
	persist_submit(w);
	if (w->archive)
		archive_link_flush(w);
	flush_outbox(w);
	conn_flush_all(w);
	conn_reap_closing(w);
	/* Reaping can publish wills, which can queue output and deliveries. */
	if (conn_work_left(w)) {
		before_sleep(w);
		return;
	}
	pub_cache_clear(w);
	persist_submit(w);
	if (w->archive)
		archive_link_flush(w);
	flush_outbox(w);
}

void worker_iterate(struct worker *w, int max_wait_ms)
{
	struct broker *b = w->broker;
	struct epoll_event evs[MAX_EVENTS];
	int timeout = (int)(w->next_tick > w->now ? w->next_tick - w->now : 0);
	if (max_wait_ms >= 0 && timeout > max_wait_ms)
		timeout = max_wait_ms;
	int bridge_wait = bridge_timeout_ms(w);
	if (bridge_wait >= 0 && bridge_wait < timeout)
		timeout = bridge_wait;
	int n = epoll_wait(w->epfd, evs, MAX_EVENTS, timeout);
	if (n < 0) {
		if (errno != EINTR)
			log_write(&b->log, LOG_TYPE_ERR, "Error: epoll_wait: %s", strerror(errno));
		n = 0;
	}
	w->now = mono_ms();
	uint64_t t0 = mono_us();
	/* The inbox first, woken for it or not: a subscription another
	 * worker added before this one took its events applies to the
	 * PUBLISHes among them (a client that subscribes and another that
	 * publishes right after expect it, as on a broker with one thread).
	 * Empty, it costs a load. */
	bool woken = false;
	for (int i = 0; i < n && !woken; i++)
		woken = evs[i].data.u64 == 0;
	if (woken)
		drain_inbox(w);
	else
		process_inbox(w);
	for (int i = 0; i < n; i++) {
		uint64_t tag = evs[i].data.u64;
		if (tag == 0) {
			continue;
		} else if (tag <= w->n_lfds) {
			accept_all(w, (size_t)(tag - 1));
		} else if (bridge_tag(tag)) {
			bridge_on_event(w, tag, evs[i].events);
		} else {
			conn_on_event(evs[i].data.ptr, evs[i].events);
		}
	}
	if (w->now >= w->next_tick) {
		tick(w);
		w->next_tick = w->now + TICK_MS;
	}
	bridge_run(w);
	before_sleep(w);
	stat_add(&w->stats, STAT_LOOP_BUSY_US, mono_us() - t0);
}

void *worker_main(void *arg)
{
	struct worker *w = arg;
	w->now = mono_ms();
	w->next_tick = w->now + TICK_MS;
	w->util_at = w->now;
	while (!atomic_load_explicit(&w->broker->stop, memory_order_relaxed))
		worker_iterate(w, -1);
	return NULL;
}
