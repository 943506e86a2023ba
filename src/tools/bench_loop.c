/*
 * bench_loop.c - the run of `tern bench`: worker threads, each an epoll
 * loop over its share of the clients, and the main thread that moves the
 * run through its phases.
 *
 * Clients are dealt to the workers round-robin, subscribers first, so that
 * every worker connects its subscribers before its publishers. A worker
 * owns its clients outright: it alone calls libtern on them, so nothing is
 * locked. It drives them through libtern's non-blocking API: each socket is
 * registered level-triggered for input, and for output only while
 * tern_client_want_write() says libtern holds unwritten bytes (or a TCP
 * connect is in progress); tern_client_step() runs when epoll reports the
 * socket. Timers (keep-alive, the connect deadline) are served by a sweep
 * once a second that steps the clients whose tern_client_timeout_ms() is
 * due before the next sweep; one second of slack is far inside the 1.5 x
 * keep-alive the broker allows, and a sweep, unlike a timer per client,
 * costs nothing per message.
 *
 * Connecting: at most MAX_CONNECTING handshakes per worker are in progress
 * at once (so a burst of SYNs does not overflow the broker's accept queue
 * and wait for TCP's one-second retransmit), optionally paced further by
 * --connect-rate. Bind addresses (--sources) are dealt round-robin by
 * client number, which lets one machine open more connections than one
 * source address has ephemeral ports.
 *
 * Publishing and back-pressure: publishers send in the worker's loop, up to
 * BATCH messages per publisher per turn so that one fast publisher cannot
 * starve the others or the input side. libtern writes a publish at once
 * when the socket takes it and keeps the rest in an output buffer that has
 * no bound of its own, so a publisher stops as soon as
 * tern_client_want_write() is true: the socket is full, and epoll's EPOLLOUT
 * will say when it drains. QoS 1/2 publishers also stop at --inflight
 * messages pending (tern_client_pending()); their acknowledgements wake
 * them. Memory stays bounded whatever the broker does. With --rate, each
 * publisher has a schedule (publishers staggered across the first
 * interval); a publisher that falls more than a second behind its schedule
 * drops the backlog rather than bursting to catch up.
 *
 * The clock, read per message, was the generator's largest single cost
 * (a read takes ~25 ns here, a delivered message ~150 ns in all), so it is
 * read per batch instead. The messages one step hands over (what the socket
 * held when epoll reported it) share one read, taken at the first of them
 * and again after every RX_CLOCK_EVERY: a latency sample is late by at most
 * that many messages' handling (a few microseconds), never early, and a
 * step with one message - the paced latency runs - reads the clock for it
 * as before. A publisher's batch (up to BATCH publishes, corked, sent in one
 * write) shares one read too, taken before its first publish.
 *
 * Phases (struct bench.phase, set by the main thread, read by the workers
 * each turn): CONNECT (connect everything, subscribe), RUN (publish; conn
 * mode: hold), DRAIN (publishing stopped: wait, bounded by --drain, for
 * the acknowledgements and deliveries still under way), CLOSE (DISCONNECT
 * everything, bounded, and exit). The main thread wakes ten times a second
 * to check the counters and print progress; the workers wait in epoll at
 * most 20 ms so that they see a phase change soon.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define MAX_CONNECTING   128 /* handshakes in progress, over all workers */
#define BATCH            32  /* publishes per publisher per loop turn */
#define MAX_EVENTS       256
#define MAX_WAIT_NS      (20 * 1000000LL)
#define SWEEP_NS         1000000000LL
#define BACKLOG_WAIT_NS  50000LL /* re-check a full backlog after 50 us */
#define BACKLOG_STALL_NS (200 * 1000000LL)
#define CLOSE_WAIT_NS    (3 * 1000000000LL)
#define SUB_MAX_PUBS     65536u     /* `bench sub`: publisher indexes tracked */
#define MAX_PAIRS        (1u << 22) /* subscriber x publisher tracking cells */
#define RX_CLOCK_EVERY   32         /* received messages per clock read, at most */

enum bench_role { ROLE_SUB, ROLE_PUB, ROLE_CONN };

enum bench_cstate {
	CS_IDLE,        /* not connected yet */
	CS_CONNECTING,  /* connect_start called, no CONNACK yet */
	CS_SUBSCRIBING, /* subscribers: SUBSCRIBE sent */
	CS_READY,
	CS_CLOSING, /* our DISCONNECT sent */
	CS_CLOSED,  /* gone (closed by us, refused, or lost) */
};

int64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Counters have a single writer, so a relaxed load and store is enough
 * (and cheaper than a locked add). */
static void ctr_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
	                      memory_order_relaxed);
}

static void ctr_sub(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - n,
	                      memory_order_relaxed);
}

uint64_t bench_ctr_sum(const struct bench *b, size_t offset)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < b->n_th; i++) {
		const char *base = (const char *)&b->th[i].ctr;
		sum += atomic_load_explicit((_Atomic uint64_t *)(uintptr_t)(base + offset),
		                            memory_order_relaxed);
	}
	return sum;
}

/* Keeps the first error of a worker, for the summary. */
static void note_error(struct bench_thread *t, const char *fmt, const char *detail)
{
	if (t->st.first_error[0] == '\0')
		snprintf(t->st.first_error, sizeof(t->st.first_error), fmt, detail);
}

/* An error of client c in words: errno's for TERN_E_SYS, libtern's TLS
 * detail for TERN_E_TLS. */
static const char *err_words(const struct tern_client *c, enum tern_err e)
{
	if (e == TERN_E_SYS)
		return strerror(errno);
	if (e == TERN_E_TLS && tern_client_tls_error(c)[0] != '\0')
		return tern_client_tls_error(c);
	return tern_strerror(e);
}

/* ---- epoll registration ---- */

/* Registers the client's socket for what libtern needs now: input always,
 * output only while it has bytes waiting (or a connect in progress). */
static void sync_events(struct bench_client *bc)
{
	int fd = tern_client_fd(bc->c);
	if (fd < 0) {
		bc->fd = -1;
		return;
	}
	uint32_t want = EPOLLIN | (tern_client_want_write(bc->c) ? EPOLLOUT : 0);
	struct epoll_event ev = {.events = want, .data.ptr = bc};
	if (fd != bc->fd) {
		if (epoll_ctl(bc->t->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			note_error(bc->t, "epoll_ctl: %s", strerror(errno));
			return;
		}
		bc->fd = fd;
		bc->ev = want;
	} else if (want != bc->ev) {
		if (epoll_ctl(bc->t->ep, EPOLL_CTL_MOD, fd, &ev) == 0)
			bc->ev = want;
	}
}

static void step(struct bench_client *bc)
{
	bc->t->rx_now_ns = 0; /* new input: its first message reads the clock */
	/* An error here ended the connection, and libtern has reported it
	 * through on_disconnect (which counts and notes it) before returning:
	 * the result has nothing more to tell. */
	enum tern_err reported = tern_client_step(bc->c);
	(void)reported;
	sync_events(bc);
}

/* ---- callbacks (run inside tern_client_step, on the owning worker) ---- */

static void on_connect(struct tern_client *c, void *ud, uint8_t reason, bool session_present,
                       const struct tern_props *props)
{
	struct bench_client *bc = ud;
	struct bench_thread *t = bc->t;
	const struct bench_opts *o = t->b->o;

	if (reason != 0) {
		/* libtern closes the connection next: on_disconnect counts it. */
		note_error(t, "connection refused: %s",
		           tern_reason_string(reason, o->common.version != TERN_V5));
		return;
	}
	t->connecting--;
	ctr_add(&t->ctr.connected, 1);
	bench_hist_add(&t->st.conn, (uint64_t)(bench_now_ns() - bc->t_connect));
	if (bc->role != ROLE_SUB) {
		bc->state = CS_READY;
		return;
	}
	struct tern_sub_entry e = {
	        .filter = {(const uint8_t *)bc->topic, (uint32_t)strlen(bc->topic)},
	        .qos = o->sub_qos,
	};
	enum tern_err err = tern_client_subscribe(c, &e, 1, NULL, NULL);
	if (err != TERN_OK) {
		note_error(t, "subscribe: %s", tern_strerror(err));
		ctr_add(&t->ctr.errors, 1);
		return;
	}
	bc->state = CS_SUBSCRIBING;
}

static void on_subscribe(struct tern_client *c, void *ud, uint16_t packet_id,
                         const uint8_t *reasons, size_t n, const struct tern_props *props)
{
	struct bench_client *bc = ud;
	struct bench_thread *t = bc->t;

	if (n < 1 || reasons[0] >= 0x80) {
		note_error(t, "subscription refused: %s",
		           n < 1 ? "no reason" : tern_reason_string(reasons[0], false));
		ctr_add(&t->ctr.errors, 1);
		return;
	}
	bc->state = CS_READY;
	ctr_add(&t->ctr.subscribed, 1);
}

static void on_disconnect(struct tern_client *c, void *ud, enum tern_err err, uint8_t reason,
                          const struct tern_props *props)
{
	struct bench_client *bc = ud;
	struct bench_thread *t = bc->t;

	switch (bc->state) {
	case CS_CLOSING:
		break;
	case CS_CONNECTING:
		t->connecting--;
		ctr_add(&t->ctr.conn_failed, 1);
		note_error(t, "connect failed: %s", err_words(c, err));
		break;
	default:
		ctr_add(&t->ctr.lost, 1);
		note_error(t, "connection lost: %s", err_words(c, err));
		break;
	}
	bc->state = CS_CLOSED;
	bc->fd = -1;
	ctr_add(&t->ctr.closed, 1);
}

static void on_publish(struct tern_client *c, void *ud, uint16_t packet_id, uint8_t reason,
                       const struct tern_props *props)
{
	struct bench_client *bc = ud;
	struct bench_thread *t = bc->t;

	ctr_sub(&t->ctr.pending, 1);
	if (reason >= 0x80) {
		note_error(t, "publish failed: %s", tern_reason_string(reason, false));
		ctr_add(&t->ctr.errors, 1);
		return;
	}
	ctr_add(&t->ctr.acked, 1);
}

/* The tracking cell of publisher pub in subscriber bc, or NULL. In `bench
 * sub` the table grows with the publisher indexes seen. */
static struct bench_pair *pair_of(struct bench_client *bc, uint32_t pub, bool grow)
{
	if (pub < bc->n_pairs)
		return &bc->pairs[pub];
	if (!grow || pub >= SUB_MAX_PUBS)
		return NULL;
	uint32_t n = bc->n_pairs ? bc->n_pairs : 16;
	while (n <= pub)
		n *= 2;
	struct bench_pair *p = realloc(bc->pairs, n * sizeof(*p));
	if (p == NULL)
		return NULL;
	memset(p + bc->n_pairs, 0, (n - bc->n_pairs) * sizeof(*p));
	bc->pairs = p;
	bc->n_pairs = n;
	return &p[pub];
}

static void on_message(struct tern_client *c, void *ud, const struct tern_message *msg)
{
	struct bench_client *bc = ud;
	struct bench_thread *t = bc->t;
	struct bench *b = t->b;
	if (t->rx_now_ns == 0 || ++t->rx_since_clock >= RX_CLOCK_EVERY) {
		t->rx_now_ns = bench_now_ns();
		t->rx_since_clock = 0;
	}
	int64_t now = t->rx_now_ns;
	int64_t t_measure = atomic_load_explicit(&b->t_measure_ns, memory_order_relaxed);
	int64_t t_stop = atomic_load_explicit(&b->t_stop_ns, memory_order_relaxed);

	bc->received++;
	ctr_add(&t->ctr.received, 1);
	t->st.last_recv_ns = now;
	if (t_measure != 0 && now >= t_measure) {
		t->st.recv_win_all++;
		if (t_stop == 0 || now < t_stop)
			t->st.recv_win++;
	}
	if (msg->payload_len >= BENCH_STAMP_SIZE) {
		struct bench_stamp st;
		memcpy(&st, msg->payload, sizeof(st));
		if (st.magic == BENCH_MAGIC) {
			unsigned q = st.qos <= 2 ? st.qos : 0;
			t->st.recv_qos[q]++;
			if (t_measure != 0 && st.ts_ns >= (uint64_t)t_measure &&
			    (uint64_t)now >= st.ts_ns)
				bench_hist_add(&t->st.lat[q], (uint64_t)now - st.ts_ns);
			struct bench_pair *p = pair_of(bc, st.pub, b->o->mode == BENCH_SUB);
			if (p != NULL) {
				p->qos = (uint8_t)q;
				bench_pair_add(p, st.seq);
			}
		}
	}
	if (b->o->mode == BENCH_SUB && b->o->count != 0 && !bc->done &&
	    bc->received >= b->o->count) {
		bc->done = true;
		ctr_add(&t->ctr.subs_done, 1);
	}
}

static const struct tern_callbacks callbacks = {
        .on_connect = on_connect,
        .on_disconnect = on_disconnect,
        .on_message = on_message,
        .on_publish = on_publish,
        .on_subscribe = on_subscribe,
};

/* ---- connecting ---- */

static void connect_one(struct bench_thread *t, struct bench_client *bc)
{
	const struct bench_opts *o = t->b->o;
	static const char role_letter[] = {'s', 'p', 'c'};
	char id[96];
	size_t global = (size_t)(bc - t->b->cl);

	snprintf(id, sizeof(id), "%s%c%u", o->id_prefix, role_letter[bc->role], bc->idx);
	struct tern_connect_opts co;
	tern_connect_opts_init(&co);
	common_connect_opts(&o->common, &co);
	co.client_id = id;
	co.connect_timeout_ms = 20000;
	if (o->n_sources > 0)
		co.bind_address = o->sources[global % o->n_sources];
	bc->t_connect = bench_now_ns();
	enum tern_err e = tern_client_connect_start(bc->c, &co);
	if (e != TERN_OK) {
		note_error(t, "connect: %s", err_words(bc->c, e));
		ctr_add(&t->ctr.conn_failed, 1);
		ctr_add(&t->ctr.closed, 1);
		bc->state = CS_CLOSED;
		return;
	}
	bc->state = CS_CONNECTING;
	t->connecting++;
	sync_events(bc);
}

/* Starts the connects the limits allow now. */
static void connect_more(struct bench_thread *t, int64_t now)
{
	const struct bench_opts *o = t->b->o;
	unsigned max = MAX_CONNECTING / t->b->n_th;
	if (max < 8)
		max = 8;
	while (t->next_connect < t->n && t->connecting < max) {
		if (o->conn_rate > 0) {
			if (now < t->next_conn_ns)
				return;
			int64_t iv = (int64_t)(1e9 * t->b->n_th / o->conn_rate);
			t->next_conn_ns = t->next_conn_ns < now - SWEEP_NS ? now : t->next_conn_ns;
			t->next_conn_ns += iv;
		}
		connect_one(t, t->cl[t->next_connect++]);
	}
}

/* ---- publishing ---- */

/* Publishes bc's next message, stamped with now (its batch's clock read). */
static bool publish_one(struct bench_thread *t, struct bench_client *bc, int64_t now)
{
	struct bench *b = t->b;
	const struct bench_opts *o = b->o;

	if (o->size >= BENCH_STAMP_SIZE) {
		struct bench_stamp st = {
		        .magic = BENCH_MAGIC,
		        .pub = bc->idx,
		        .seq = bc->seq,
		        .qos = bc->qos,
		        .ts_ns = (uint64_t)now,
		};
		memcpy(t->payload, &st, sizeof(st));
	}
	struct tern_publish_args a = {
	        .topic = bc->topic, .payload = t->payload, .payload_len = o->size, .qos = bc->qos};
	enum tern_err e = tern_client_publish(bc->c, &a, NULL);
	if (e != TERN_OK) {
		note_error(t, "publish: %s", tern_strerror(e));
		ctr_add(&t->ctr.errors, 1);
		return false;
	}
	bc->seq++;
	atomic_store_explicit(&bc->sent, bc->seq, memory_order_relaxed);
	ctr_add(&t->ctr.sent, 1);
	t->st.sent_qos[bc->qos]++;
	if (bc->qos > 0)
		ctr_add(&t->ctr.pending, 1);
	int64_t t_measure = atomic_load_explicit(&b->t_measure_ns, memory_order_relaxed);
	if (t_measure != 0 && now >= t_measure)
		t->st.sent_win++;
	return true;
}

/* Deliveries still under way (--backlog): what the publishers caused
 * minus what arrived and what was written off. */
static int64_t backlog_now(const struct bench *b)
{
	uint64_t exp = atomic_load_explicit(&b->expected, memory_order_relaxed);
	uint64_t done = BENCH_CTR(b, received) +
	                atomic_load_explicit(&b->written_off, memory_order_relaxed);
	return exp > done ? (int64_t)(exp - done) : 0;
}

/* Lets every ready publisher send what its schedule, the socket, its
 * in-flight window and the backlog allow, up to BATCH. Returns how long the
 * loop may sleep before publishers need it again (0: some have more to
 * send now). */
static int64_t publish_turn(struct bench_thread *t, int64_t now)
{
	struct bench *b = t->b;
	const struct bench_opts *o = b->o;
	int64_t wait = MAX_WAIT_NS;
	int64_t iv = o->rate > 0 ? (int64_t)(1e9 / o->rate) : 0;
	int64_t budget = INT64_MAX;

	if (o->backlog > 0) {
		budget = (int64_t)o->backlog - backlog_now(b);
		if (budget <= 0)
			return BACKLOG_WAIT_NS; /* deliveries (maybe on another thread) free it */
	}
	for (size_t i = 0; i < t->n_pubs; i++) {
		struct bench_client *bc = t->pubs[i];
		if (bc->state != CS_READY || bc->done)
			continue;
		uint32_t fan = b->nmatch[bc->idx];
		int n = 0;
		int64_t stamp = 0; /* the batch's clock read, at its first publish */
		/* A batch goes out in one write: corked, the publishes only
		 * queue, and uncorking sends them together. */
		tern_client_cork(bc->c, true);
		for (; n < BATCH; n++) {
			if (o->count != 0 && bc->seq >= o->count) {
				bc->done = true;
				ctr_add(&t->ctr.pubs_done, 1);
				break;
			}
			if (iv > 0) {
				if (bc->next_due > now) {
					if (bc->next_due - now < wait)
						wait = bc->next_due - now;
					break;
				}
				if (bc->next_due < now - SWEEP_NS)
					bc->next_due = now; /* too far behind: drop it */
			}
			if (n == 0 && tern_client_want_write(bc->c))
				break; /* socket full: EPOLLOUT wakes us */
			if (bc->qos > 0 && tern_client_pending(bc->c) >= o->inflight)
				break; /* the acknowledgements wake us */
			if (budget <= 0) {
				wait = wait < BACKLOG_WAIT_NS ? wait : BACKLOG_WAIT_NS;
				break;
			}
			if (stamp == 0)
				stamp = bench_now_ns();
			if (!publish_one(t, bc, stamp))
				break;
			budget -= fan;
			bc->next_due += iv;
		}
		tern_client_cork(bc->c, false);
		if (n > 0 && fan > 0)
			atomic_fetch_add_explicit(&b->expected, (uint64_t)n * fan,
			                          memory_order_relaxed);
		if (n == BATCH)
			wait = 0;
		sync_events(bc);
	}
	return wait;
}

/* Sets the publishers' schedules when publishing starts. */
static void publish_start(struct bench_thread *t, int64_t now)
{
	const struct bench_opts *o = t->b->o;
	double iv = o->rate > 0 ? 1e9 / o->rate : 0;
	for (size_t i = 0; i < t->n_pubs; i++) {
		struct bench_client *bc = t->pubs[i];
		/* Stagger the publishers over the first interval. */
		bc->next_due = now + (int64_t)(iv * bc->idx / (o->pubs ? o->pubs : 1));
	}
}

/* ---- timers and closing ---- */

/* Steps the clients whose timers fall due before the next sweep. */
static void sweep(struct bench_thread *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct bench_client *bc = t->cl[i];
		if (bc->state == CS_IDLE || bc->state == CS_CLOSED)
			continue;
		int ms = tern_client_timeout_ms(bc->c);
		if (ms >= 0 && ms <= SWEEP_NS / 1000000)
			step(bc);
	}
}

static void close_all(struct bench_thread *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct bench_client *bc = t->cl[i];
		if (bc->state == CS_IDLE) {
			bc->state = CS_CLOSED;
			ctr_add(&t->ctr.closed, 1);
			continue;
		}
		if (bc->state == CS_CLOSED)
			continue;
		bc->state = CS_CLOSING;
		if (tern_client_disconnect(bc->c, 0, NULL) != TERN_OK) {
			/* No connection left to close. */
			bc->state = CS_CLOSED;
			ctr_add(&t->ctr.closed, 1);
			continue;
		}
		sync_events(bc);
	}
	/* Those not yet in the connected state counted as failed. */
	t->next_connect = t->n;
}

static void *worker_main(void *arg)
{
	struct bench_thread *t = arg;
	struct bench *b = t->b;
	struct epoll_event evs[MAX_EVENTS];
	int64_t next_sweep = bench_now_ns() + SWEEP_NS;
	int64_t close_deadline = 0;
	int seen_phase = PHASE_CONNECT;

	for (;;) {
		int phase = atomic_load_explicit(&b->phase, memory_order_acquire);
		int64_t now = bench_now_ns();
		int64_t wait = MAX_WAIT_NS;

		if (phase != seen_phase) {
			if (phase == PHASE_RUN)
				publish_start(t, now);
			if (phase == PHASE_CLOSE) {
				close_all(t);
				close_deadline = now + CLOSE_WAIT_NS;
			}
			seen_phase = phase;
		}
		if (phase == PHASE_CLOSE) {
			uint64_t closed =
			        atomic_load_explicit(&t->ctr.closed, memory_order_relaxed);
			if (closed >= t->n || now >= close_deadline)
				break;
		} else {
			connect_more(t, now);
			if (t->next_connect < t->n && b->o->conn_rate > 0 &&
			    t->next_conn_ns > now && t->next_conn_ns - now < wait)
				wait = t->next_conn_ns - now;
		}
		if (phase == PHASE_RUN) {
			int64_t w = publish_turn(t, now);
			if (w < wait)
				wait = w;
		}
		if (now >= next_sweep) {
			sweep(t);
			next_sweep = now + SWEEP_NS;
		}
		struct timespec ts = {.tv_sec = wait / 1000000000LL,
		                      .tv_nsec = wait % 1000000000LL};
		int n = epoll_pwait2(t->ep, evs, MAX_EVENTS, &ts, NULL);
		if (n < 0 && errno == ENOSYS) {
			/* Kernels before 5.11: millisecond timeouts. */
			n = epoll_wait(t->ep, evs, MAX_EVENTS, (int)((wait + 999999) / 1000000));
		}
		for (int i = 0; i < n; i++)
			step(evs[i].data.ptr);
	}
	return NULL;
}

/* ---- setup ---- */

/* Expands pattern with %i = idx (and %% = %) into a new string. */
static char *expand(const char *pattern, unsigned idx)
{
	size_t cap = strlen(pattern) + 16;
	char *s = malloc(cap), *w = s;
	if (s == NULL)
		return NULL;
	for (const char *p = pattern; *p; p++) {
		if (p[0] == '%' && p[1] == 'i') {
			w += sprintf(w, "%u", idx);
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			*w++ = '%';
			p++;
		} else {
			*w++ = *p;
		}
		if ((size_t)(w - s) + 12 > cap) {
			size_t off = (size_t)(w - s);
			char *ns = realloc(s, cap * 2);
			if (ns == NULL) {
				free(s);
				return NULL;
			}
			s = ns;
			w = s + off;
			cap *= 2;
		}
	}
	*w = '\0';
	return s;
}

/* Lifts the soft limit on open files to what n sockets need (up to the
 * hard limit). */
static void raise_nofile(size_t n)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rlim_t want = (rlim_t)n + 64;
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || want < rl.rlim_max ? want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < want)
		fprintf(stderr, "Warning: only %lu open files allowed (ulimit -n); %zu needed.\n",
		        (unsigned long)rl.rlim_cur, (size_t)want);
}

/* Allocates the clients and threads of b and assigns the clients to the
 * threads. TERN_E_NOMEM, TERN_E_SYS (no epoll instance) or the error of
 * tern_client_new(); bench_free() frees what was made. */
static TERN_MUST_CHECK enum tern_err setup(struct bench *b)
{
	const struct bench_opts *o = b->o;
	b->n_cl = (size_t)o->subs + o->pubs + o->conns;
	b->cl = calloc(b->n_cl, sizeof(*b->cl));
	b->pub_of = calloc(o->pubs ? o->pubs : 1, sizeof(*b->pub_of));
	b->n_th = o->threads < b->n_cl ? o->threads : (unsigned)b->n_cl;
	if (b->n_th == 0)
		b->n_th = 1;
	b->th = calloc(b->n_th, sizeof(*b->th));
	if (b->cl == NULL || b->pub_of == NULL || b->th == NULL)
		return TERN_E_NOMEM;
	bool track = o->mode == BENCH_RUN && (uint64_t)o->subs * o->pubs <= MAX_PAIRS;

	for (size_t i = 0; i < b->n_cl; i++) {
		struct bench_client *bc = &b->cl[i];
		bc->fd = -1;
		if (i < o->subs) {
			bc->role = ROLE_SUB;
			bc->idx = (uint32_t)i;
			bc->topic = expand(o->filter, bc->idx);
			if (track && o->pubs > 0) {
				bc->pairs = calloc(o->pubs, sizeof(*bc->pairs));
				bc->n_pairs = bc->pairs ? o->pubs : 0;
			}
		} else if (i < (size_t)o->subs + o->pubs) {
			bc->role = ROLE_PUB;
			bc->idx = (uint32_t)(i - o->subs);
			bc->qos = o->qos[bc->idx % o->n_qos];
			bc->topic = expand(o->topic, bc->idx);
			b->pub_of[bc->idx] = bc;
		} else {
			bc->role = ROLE_CONN;
			bc->idx = (uint32_t)(i - o->subs - o->pubs);
		}
		if (bc->role != ROLE_CONN && bc->topic == NULL)
			return TERN_E_NOMEM;
		enum tern_err err = tern_client_new(&bc->c, &callbacks, bc);
		if (err != TERN_OK)
			return err;
	}
	for (unsigned k = 0; k < b->n_th; k++) {
		struct bench_thread *t = &b->th[k];
		t->b = b;
		t->id = k;
		size_t share = b->n_cl / b->n_th + (k < b->n_cl % b->n_th);
		t->cl = calloc(share ? share : 1, sizeof(*t->cl));
		t->pubs = calloc(share ? share : 1, sizeof(*t->pubs));
		t->payload = calloc(1, o->size ? o->size : 1);
		t->ep = epoll_create1(EPOLL_CLOEXEC);
		if (t->cl == NULL || t->pubs == NULL || t->payload == NULL)
			return TERN_E_NOMEM;
		if (t->ep < 0)
			return TERN_E_SYS;
		memset(t->payload, 'x', o->size);
	}
	b->nmatch = calloc(o->pubs ? o->pubs : 1, sizeof(*b->nmatch));
	if (b->nmatch == NULL)
		return TERN_E_NOMEM;
	for (unsigned p = 0; p < o->pubs; p++) {
		const char *topic = b->pub_of[p]->topic;
		for (unsigned s = 0; s < o->subs; s++) {
			const char *f = b->cl[s].topic;
			if (tern_topic_matches((const uint8_t *)f, strlen(f),
			                       (const uint8_t *)topic, strlen(topic)))
				b->nmatch[p]++;
		}
	}
	for (size_t i = 0; i < b->n_cl; i++) {
		struct bench_client *bc = &b->cl[i];
		struct bench_thread *t = &b->th[i % b->n_th];
		bc->t = t;
		t->cl[t->n++] = bc;
		if (bc->role == ROLE_PUB)
			t->pubs[t->n_pubs++] = bc;
	}
	return TERN_OK;
}

void bench_free(struct bench *b)
{
	for (size_t i = 0; b->cl != NULL && i < b->n_cl; i++) {
		tern_client_free(b->cl[i].c);
		free(b->cl[i].topic);
		free(b->cl[i].pairs);
	}
	for (unsigned k = 0; b->th != NULL && k < b->n_th; k++) {
		struct bench_thread *t = &b->th[k];
		free(t->cl);
		free(t->pubs);
		free(t->payload);
		if (t->ep > 0)
			close(t->ep);
	}
	free(b->cl);
	free(b->th);
	free(b->pub_of);
	free(b->nmatch);
	b->nmatch = NULL;
	b->cl = NULL;
	b->th = NULL;
	b->pub_of = NULL;
}

/* ---- the main thread: phases ---- */

/* Messages the subscribers should have received by now: for each
 * publisher, what it sent times the subscribers whose filter matches. */
static uint64_t expected_total(const struct bench *b, const uint32_t *nmatch)
{
	uint64_t sum = 0;
	for (unsigned p = 0; p < b->o->pubs; p++)
		sum += atomic_load_explicit(&b->pub_of[p]->sent, memory_order_relaxed) * nmatch[p];
	return sum;
}

static void set_phase(struct bench *b, enum bench_phase p)
{
	atomic_store_explicit(&b->phase, (int)p, memory_order_release);
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000LL, .tv_nsec = ns % 1000000000LL};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR && ts.tv_nsec + ts.tv_sec > 0) {
		/* A signal (^C) is seen by the caller's next check. */
		break;
	}
}

/* Runs the phases until the run ends. */
static void control(struct bench *b, volatile sig_atomic_t *stop)
{
	const struct bench_opts *o = b->o;
	struct bench_progress prog = {0};
	const uint32_t *nmatch = b->nmatch;
	int64_t last_progress_ns = bench_now_ns(), last_change_ns = last_progress_ns;
	uint64_t last_recv = 0, last_done = 0;
	uint64_t total = b->n_cl;
	bool count_stop = false;

	prog.last_ns = last_progress_ns;
	for (;;) {
		sleep_ns(10000000LL);
		int64_t now = bench_now_ns();
		int phase = atomic_load_explicit(&b->phase, memory_order_relaxed);
		if (o->progress && now - last_progress_ns >= 1000000000LL) {
			bench_progress_line(b, &prog);
			last_progress_ns = now;
		}
		if (*stop && !b->interrupted) {
			b->interrupted = true;
			if (phase == PHASE_CONNECT) {
				b->aborted = true;
				b->abort_why = "interrupted while connecting";
				set_phase(b, PHASE_CLOSE);
				break;
			}
		}
		uint64_t connected = BENCH_CTR(b, connected);
		uint64_t failed = BENCH_CTR(b, conn_failed);
		uint64_t lost = BENCH_CTR(b, lost);
		if (phase == PHASE_CONNECT) {
			uint64_t done = connected + failed + BENCH_CTR(b, subscribed) +
			                BENCH_CTR(b, errors);
			if (done != last_done) {
				last_done = done;
				last_change_ns = now;
			}
			bool settled = connected + failed >= total;
			bool all = settled && BENCH_CTR(b, subscribed) >= o->subs;
			if (settled && failed > 0 && o->mode != BENCH_CONN) {
				b->aborted = true;
				b->abort_why = "connections failed";
			} else if (!all && BENCH_CTR(b, errors) > 0 && o->mode != BENCH_CONN) {
				b->aborted = true;
				b->abort_why = "subscribing failed";
			} else if (!all && now - last_change_ns > 30 * 1000000000LL) {
				b->aborted = true;
				b->abort_why = "connecting made no progress for 30 s";
			}
			if (b->aborted) {
				set_phase(b, PHASE_CLOSE);
				break;
			}
			if (!all)
				continue;
			b->t_connected_ns = b->t_run_ns = now;
			if (!o->common.quiet)
				fprintf(stderr, "%s%s: %llu connected in %.3f s%s\n",
				        o->progress ? "\r\033[K" : "", o->prog,
				        (unsigned long long)connected,
				        (double)(now - b->t_start_ns) / 1e9,
				        failed ? " (some failed)" : "");
			atomic_store_explicit(&b->t_measure_ns, now + (int64_t)(o->warmup * 1e9),
			                      memory_order_relaxed);
			last_change_ns = now;
			set_phase(b, PHASE_RUN);
			continue;
		}
		if (phase == PHASE_RUN) {
			bool stop_now = b->interrupted;
			uint64_t recv_now = BENCH_CTR(b, received);
			if (recv_now != last_recv) {
				last_recv = recv_now;
				last_change_ns = now;
			} else if (o->backlog > 0 && now - last_change_ns >= BACKLOG_STALL_NS) {
				/* Nothing arrives although the backlog is full: the
				 * broker dropped what is under way. Write it off so
				 * that the publishers go on (the loss is counted at
				 * the end all the same). */
				atomic_fetch_add_explicit(&b->written_off, (uint64_t)backlog_now(b),
				                          memory_order_relaxed);
				last_change_ns = now;
			}
			if (o->duration > 0 && now - b->t_run_ns >= (int64_t)(o->duration * 1e9))
				stop_now = true;
			if (o->count != 0) {
				if ((o->mode == BENCH_PUB || o->mode == BENCH_RUN) &&
				    BENCH_CTR(b, pubs_done) >= o->pubs)
					stop_now = count_stop = true;
				if (o->mode == BENCH_SUB && BENCH_CTR(b, subs_done) >= o->subs)
					stop_now = count_stop = true;
			}
			if (lost > 0 && lost + failed >= total)
				stop_now = true; /* nothing left to measure */
			if (!stop_now)
				continue;
			atomic_store_explicit(&b->t_stop_ns, now, memory_order_relaxed);
			b->count_stop = count_stop;
			last_change_ns = now;
			last_recv = BENCH_CTR(b, received);
			if (o->mode == BENCH_CONN || o->mode == BENCH_SUB) {
				b->t_end_ns = now;
				set_phase(b, PHASE_CLOSE);
				break;
			}
			set_phase(b, PHASE_DRAIN);
			continue;
		}
		/* PHASE_DRAIN: wait for acknowledgements and deliveries. */
		uint64_t recv = BENCH_CTR(b, received);
		if (recv != last_recv) {
			last_recv = recv;
			last_change_ns = now;
		}
		int64_t t_stop = atomic_load_explicit(&b->t_stop_ns, memory_order_relaxed);
		bool acked = BENCH_CTR(b, pending) == 0 || lost > 0;
		bool delivered = o->mode != BENCH_RUN || recv >= expected_total(b, nmatch);
		bool quiet = now - last_change_ns >= 300000000LL;
		if ((acked && (delivered || quiet)) || now - t_stop >= (int64_t)(o->drain * 1e9) ||
		    (*stop && now - t_stop > 200000000LL)) {
			b->t_end_ns = now;
			set_phase(b, PHASE_CLOSE);
			break;
		}
	}
	if (o->progress)
		fputs("\r\033[K", stderr);
}

int bench_run(struct bench *b, const struct bench_opts *o, volatile sig_atomic_t *stop)
{
	b->o = o;
	atomic_init(&b->phase, PHASE_CONNECT);
	atomic_init(&b->t_measure_ns, 0);
	atomic_init(&b->t_stop_ns, 0);
	enum tern_err err = setup(b);
	if (err != TERN_OK) {
		fprintf(stderr, "Error: %s: cannot set up the clients and threads: %s.\n", o->prog,
		        tern_strerror(err));
		return 1;
	}
	raise_nofile(b->n_cl);
	b->t_start_ns = bench_now_ns();
	for (unsigned k = 0; k < b->n_th; k++) {
		struct bench_thread *t = &b->th[k];
		if (pthread_create(&t->th, NULL, worker_main, t) != 0) {
			fprintf(stderr, "Error: %s: cannot start a thread.\n", o->prog);
			set_phase(b, PHASE_CLOSE);
			for (unsigned j = 0; j < k; j++)
				pthread_join(b->th[j].th, NULL);
			return 1;
		}
		t->started = true;
	}
	control(b, stop);
	for (unsigned k = 0; k < b->n_th; k++)
		pthread_join(b->th[k].th, NULL);
	if (b->t_end_ns == 0)
		b->t_end_ns = bench_now_ns();
	return 0;
}
