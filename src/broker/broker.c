/*
 * broker.c - building, starting and stopping a broker; see broker.h.
 *
 * Each worker opens its own listening socket on every configured address
 * with SO_REUSEPORT, so the kernel spreads accepted connections over the
 * workers and accepting needs no lock (as h2o and NGINX do). A port of 0
 * is resolved by the first worker's bind and reused by the others, which
 * lets tests run brokers on free ports.
 */

#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "util/clock.h"

#include "broker/auth.h"
#include "broker/archive_link.h"
#include "broker/bridge.h"
#include "broker/broker.h"
#include "broker/cluster_link.h"
#include "broker/config.h"
#include "broker/conn.h"
#include "broker/flow.h"
#include "broker/persist.h"
#include "broker/retain.h"
#include "broker/route.h"
#include "broker/router.h"
#include "broker/session.h"
#include "broker/stats.h"
#include "broker/mount.h"
#include "broker/sys.h"
#include "broker/topic_rate.h"
#include "broker/transport.h"
#include "broker/worker.h"
#include "store/store.h"
#include "tern/codec.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/log_limit.h"
#include "util/map.h"
#include "util/mpsc.h"
#include "util/msg.h"

/* bind_interface: an address of interface l->bind_interface of family
 * (AF_UNSPEC: IPv4 if it has one, else IPv6) into *out, with *ai's port;
 * when the listener names an address too, it must be one of the
 * interface's, as mosquitto requires. mosquitto finds the address this way
 * rather than with SO_BINDTODEVICE, which needs privileges. TERN_E_SYS
 * (logged) when the interface is missing or has no such address. */
static TERN_MUST_CHECK enum tern_err interface_address(struct broker *b,
                                                       const struct listener_cfg *l, int family,
                                                       const struct addrinfo *ai,
                                                       struct sockaddr_storage *out, socklen_t *len)
{
	struct ifaddrs *ifs = NULL;
	if (getifaddrs(&ifs) < 0) {
		log_write(&b->log, LOG_TYPE_ERR, "Error: bind_interface: %s", strerror(errno));
		return TERN_E_SYS;
	}
	bool named = false;
	const struct ifaddrs *pick = NULL;
	for (const struct ifaddrs *i = ifs; i; i = i->ifa_next) {
		if (!i->ifa_addr || strcmp(i->ifa_name, l->bind_interface) != 0)
			continue;
		named = true;
		int f = i->ifa_addr->sa_family;
		if ((f != AF_INET && f != AF_INET6) || (family != AF_UNSPEC && f != family))
			continue;
		if (l->bind[0]) {
			/* The listener's own address, if the interface has it. */
			bool same =
			        f == ai->ai_family &&
			        (f == AF_INET
			                 ? memcmp(&((struct sockaddr_in *)i->ifa_addr)->sin_addr,
			                          &((struct sockaddr_in *)ai->ai_addr)->sin_addr,
			                          sizeof(struct in_addr)) == 0
			                 : memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr,
			                          &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr,
			                          sizeof(struct in6_addr)) == 0);
			if (same)
				pick = i;
		} else if (!pick || (f == AF_INET && pick->ifa_addr->sa_family != AF_INET)) {
			pick = i;
		}
	}
	if (pick) {
		int f = pick->ifa_addr->sa_family;
		*len = f == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
		memcpy(out, pick->ifa_addr, *len);
		uint16_t port = ai->ai_family == AF_INET
		                        ? ((struct sockaddr_in *)ai->ai_addr)->sin_port
		                        : ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port;
		if (f == AF_INET)
			((struct sockaddr_in *)out)->sin_port = port;
		else
			((struct sockaddr_in6 *)out)->sin6_port = port;
	}
	freeifaddrs(ifs);
	if (pick)
		return TERN_OK;
	if (!named)
		log_write(&b->log, LOG_TYPE_ERR,
		          "Error: bind_interface: interface %s does not exist.", l->bind_interface);
	else
		log_write(&b->log, LOG_TYPE_ERR,
		          "Error: bind_interface: interface %s has no %s address%s%s.",
		          l->bind_interface,
		          family == AF_INET    ? "IPv4"
		          : family == AF_INET6 ? "IPv6"
		                               : "IP",
		          l->bind[0] ? " matching " : "", l->bind);
	return TERN_E_SYS;
}

/* Opens a listening socket (SO_REUSEPORT, so that every worker has its own)
 * for listener l on port (0: any) into *out: on l->bind (every address when
 * empty), or bind_interface's address, of the family socket_domain names;
 * first: the listener's first socket, which makes sure nobody else listens
 * there.
 * TERN_E_SYS (logged) when the address does not resolve or the socket
 * cannot listen. */
static TERN_MUST_CHECK enum tern_err open_listener(struct broker *b, const struct listener_cfg *l,
                                                   uint16_t port, bool first, int *out)
{
	struct addrinfo hints = {0}, *res = NULL;
	int family = l->socket_domain == SOCKET_DOMAIN_IPV4   ? AF_INET
	             : l->socket_domain == SOCKET_DOMAIN_IPV6 ? AF_INET6
	                                                      : AF_UNSPEC;
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	char ps[8];
	snprintf(ps, sizeof(ps), "%u", port);
	int rc = getaddrinfo(l->bind[0] ? l->bind : NULL, ps, &hints, &res);
	if (rc) {
		log_write(&b->log, LOG_TYPE_ERR, "Error: cannot resolve '%s': %s", l->bind,
		          gai_strerror(rc));
		return TERN_E_SYS;
	}
	/* Prefer IPv6 (dual stack) for the wildcard address, like mosquitto. */
	struct addrinfo *ai = res;
	for (struct addrinfo *p = res; p && !l->bind[0]; p = p->ai_next)
		if (p->ai_family == AF_INET6)
			ai = p;
	struct sockaddr_storage ifaddr;
	socklen_t iflen = 0;
	if (l->bind_interface[0] && interface_address(b, l, family, ai, &ifaddr, &iflen)) {
		freeaddrinfo(res);
		return TERN_E_SYS;
	}
	struct sockaddr_storage sa;
	socklen_t addrlen = iflen ? iflen : ai->ai_addrlen;
	memcpy(&sa, iflen ? (const struct sockaddr *)&ifaddr : ai->ai_addr, addrlen);
	struct sockaddr *addr = (struct sockaddr *)&sa;
	int fd = -1, one = 1, zero = 0;
	/* Every worker's socket joins one SO_REUSEPORT group, and the kernel
	 * lets any process of the same user join it too: a second ternd on
	 * the same port would silently take half of the connections. So the
	 * group's first socket is preceded by a plain bind, which fails with
	 * EADDRINUSE as mosquitto's does when anyone listens there, and which
	 * picks the port when the listener asks for any (0). */
	if (first) {
		fd = socket(addr->sa_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			goto fail;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (addr->sa_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, family == AF_INET6 ? &one : &zero,
			           sizeof(int));
		if (bind(fd, addr, addrlen) < 0)
			goto fail;
		socklen_t len = addrlen;
		if (getsockname(fd, addr, &len) < 0)
			goto fail;
		close(fd);
	}
	fd = socket(addr->sa_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	/* Dual stack, unless socket_domain asks for IPv6 only. */
	if (addr->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, family == AF_INET6 ? &one : &zero,
		           sizeof(int));
	if (bind(fd, addr, addrlen) < 0 || listen(fd, 1024) < 0)
		goto fail;
	freeaddrinfo(res);
	*out = fd;
	return TERN_OK;
fail:
	log_write(&b->log, LOG_TYPE_ERR, "Error: cannot listen on %s:%u: %s",
	          l->bind[0] ? l->bind : "*", port, strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return TERN_E_SYS;
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static TERN_MUST_CHECK enum tern_err open_log(struct broker *b)
{
	const struct config *cfg = &b->cfg;
	b->log.mask = cfg->log_mask;
	b->log.timestamps = cfg->log_timestamp;
	b->log.ts_format = cfg->log_timestamp_format;
	switch (cfg->log_dest) {
	case LOG_DEST_STDERR:
		b->log.out = stderr;
		break;
	case LOG_DEST_STDOUT:
		b->log.out = stdout;
		break;
	case LOG_DEST_NONE:
		b->log.out = NULL;
		break;
	case LOG_DEST_SYSLOG:
		/* log_facility N: local N, else daemon, as mosquitto. */
		openlog("ternd", LOG_PID,
		        cfg->log_facility ? LOG_LOCAL0 + ((cfg->log_facility - 1) << 3)
		                          : LOG_DAEMON);
		b->log.syslog = true;
		break;
	case LOG_DEST_FILE:
		b->log.out = fopen(cfg->log_file, "a");
		if (!b->log.out) {
			fprintf(stderr, "Error: cannot open log file %s: %s\n", cfg->log_file,
			        strerror(errno));
			return TERN_E_SYS;
		}
		b->log.own_out = true;
		break;
	}
	return TERN_OK;
}

static void worker_shutdown(struct worker *w);
static void worker_release(struct worker *w);

static struct worker *worker_new(struct broker *b, unsigned id)
{
	struct worker *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->broker = b;
	w->id = id;
	w->evfd = -1;
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	mpsc_init(&w->inbox);
	atomic_init(&w->wake_pending, false);
	atomic_init(&w->backlog, 0);
	w->router = router_new(&b->hash_key);
	log_limiter_init(&w->log_limit, &b->log, &b->hash_key, LOG_REPEAT_WINDOW_MS);
	w->outbox = calloc(b->n_workers, sizeof(*w->outbox));
	w->deliver_open = calloc(b->n_workers, sizeof(*w->deliver_open));
	/* Spare buffer memory kept per size class (util/buf.h). */
	enum tern_err bins = buf_bins_init(&w->bins, 256u * 1024u);
	w->msg_pool = msg_pool_new();
	enum tern_err persist = persist_worker_new(w);
	enum tern_err flow = flow_worker_new(w);
	enum tern_err route = route_worker_new(w);
	enum tern_err sessions = session_worker_new(w);
	enum tern_err conns = conn_worker_new(w);
	enum tern_err bridges = bridge_worker_new(w);
	/* The admin API's view of the published topics: only with one. */
	if (b->cfg.http_port)
		w->topic_rates = topic_rates_new(&b->hash_key);
	if (w->epfd < 0 || w->evfd < 0 || !w->router || !w->outbox || !w->deliver_open || bins ||
	    !w->msg_pool || persist || flow || route || sessions || conns || bridges ||
	    (b->cfg.http_port && !w->topic_rates)) {
		worker_release(w);
		return NULL;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) < 0) {
		worker_release(w);
		return NULL;
	}
	return w;
}

/* Ends what a worker holds: connections, sessions, queued items; hands its
 * last store batch over. Its memory stays until worker_release(). */
static void worker_shutdown(struct worker *w)
{
	if (!w)
		return;
	/* Bridges and connections first: they detach from their sessions. */
	bridge_worker_free(w);
	conn_close_all(w);
	conn_linger_expire(w, UINT64_MAX);
	session_destroy_all(w);
	struct mpsc_node *node;
	while ((node = mpsc_pop(&w->inbox))) {
		struct inbox_item *it = (struct inbox_item *)node;
		if (it->kind == INBOX_CONN) {
			conn_free(it->u.conn);
			free(it->proxied);
			free(it);
		} else {
			worker_inbox_item(w, it); /* frees the item; no acks go out at stop */
		}
	}
	for (unsigned i = 0; w->outbox && i < w->broker->n_workers; i++) {
		deliver_batch_close(w, i);
		while (w->outbox[i]) {
			struct inbox_item *it = w->outbox[i];
			w->outbox[i] = it->next;
			worker_inbox_item(w, it);
		}
	}
	route_pending_free(w);
	persist_worker_free(w);
	/* The counts of the last windows, before the log closes. */
	log_limiter_flush(&w->log_limit, mono_ms());
}

/* Frees a worker's memory, after worker_shutdown() and after the store
 * stopped: the storage thread may hold a pointer to it until then. */
static void worker_release(struct worker *w)
{
	if (!w)
		return;
	sys_free(w);
	bridge_worker_free(w); /* after a failed worker_new() only */
	auth_unref(w->auth);
	for (size_t i = 0; i < w->n_lfds; i++)
		close(w->lfds[i]);
	if (w->evfd >= 0)
		close(w->evfd);
	if (w->epfd >= 0)
		close(w->epfd);
	router_free(w->router);
	persist_worker_free(w); /* after a failed worker_new() only */
	flow_worker_free(w);
	mount_worker_free(w);
	session_worker_free(w);
	conn_worker_free(w);
	free(w->outbox);
	free(w->deliver_open);
	route_worker_free(w);
	topic_rates_free(w->topic_rates);
	buf_bins_free(&w->bins);
	msg_pool_release(w->msg_pool);
	free(w);
}

enum tern_err broker_init(struct broker *b, const struct config *cfg)
{
	memset(b, 0, sizeof(*b));
	b->cfg = *cfg;
	atomic_init(&b->stop, false);
	atomic_init(&b->next_id, 0);
	atomic_init(&b->n_conns, 0);
	b->start_ms = mono_ms();
	enum tern_err err = open_log(b);
	if (err)
		return err;
	if (hash_key_random(&b->hash_key)) {
		log_write(&b->log, LOG_TYPE_ERR, "Error: no random bytes for the hash key: %s",
		          strerror(errno));
		broker_free(b);
		return TERN_E_SYS;
	}
	b->n_workers = cfg->workers;
	if (b->n_workers == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		b->n_workers = n > 0 ? (unsigned)n : 1;
	}
	b->retain = retain_new(&b->hash_key);
	b->workers = calloc(b->n_workers, sizeof(*b->workers));
	if (!b->retain || !b->workers) {
		broker_free(b);
		return TERN_E_NOMEM;
	}
	for (unsigned i = 0; i < b->n_workers; i++) {
		b->workers[i] = worker_new(b, i);
		if (!b->workers[i]) {
			log_write(&b->log, LOG_TYPE_ERR, "Error: cannot create worker %u: %s", i,
			          strerror(errno));
			broker_free(b);
			return TERN_E_SYS;
		}
	}
	b->n_listeners = cfg->n_listeners;
	for (size_t l = 0; l < cfg->n_listeners; l++) {
		struct listener *li = &b->listeners[l];
		li->cfg = &b->cfg.listeners[l];
		li->index = (uint8_t)l;
		li->base = &transport_tcp;
		if (li->cfg->certfile[0] || li->cfg->psk_hint[0]) {
			char why[512];
			if (tls_listener_init(li, config_security(&b->cfg, l)->psk_file, why,
			                      sizeof(why))) {
				log_write(&b->log, LOG_TYPE_ERR, "Error: %s", why);
				broker_free(b);
				return TERN_E_CONFIG;
			}
			li->base = &transport_tls;
		}
		li->tp = li->cfg->websockets ? &transport_ws : li->base;
		if (li->cfg->http_dir[0] && !li->cfg->websockets) {
			/* As mosquitto: the directive means something on a
			 * websockets listener only. */
			log_write(
			        &b->log, LOG_TYPE_WARNING,
			        "Warning: http_dir %s is ignored: listener %u is not a websockets "
			        "listener.",
			        li->cfg->http_dir, li->cfg->port);
		} else if (li->cfg->http_dir[0]) {
			li->http_dir = open(li->cfg->http_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (li->http_dir < 0) {
				log_write(&b->log, LOG_TYPE_ERR, "Error: http_dir %s: %s",
				          li->cfg->http_dir, strerror(errno));
				broker_free(b);
				return TERN_E_CONFIG;
			}
			li->http_dir_open = true;
		}
	}
	err = auth_init(b);
	if (err) {
		broker_free(b);
		return err;
	}
	/* Before the store: restored subscriptions are the cluster's
	 * interest too. */
	err = cluster_link_open(b);
	if (err) {
		broker_free(b);
		return err;
	}
	/* The archives before the store: its loader gives them what the
	 * last run spilled. */
	err = archive_link_open(b);
	if (err) {
		broker_free(b);
		return err;
	}
	/* The store is loaded before anyone can connect. */
	err = persist_open(b);
	if (err) {
		broker_free(b);
		return err;
	}
	err = archive_link_start(b);
	if (err) {
		broker_free(b);
		return err;
	}
	/* Then the cluster's JetStream part, before the listeners open: a
	 * client that connects once it can finds its durable queues able to
	 * exist. */
	err = cluster_link_start(b);
	if (err) {
		broker_free(b);
		return err;
	}
	for (size_t l = 0; l < cfg->n_listeners; l++) {
		uint16_t port = cfg->listeners[l].port;
		for (unsigned i = 0; i < b->n_workers; i++) {
			struct worker *w = b->workers[i];
			int fd = -1;
			err = open_listener(b, &cfg->listeners[l], port, i == 0, &fd);
			if (err != TERN_OK) {
				broker_free(b);
				return err;
			}
			port = bound_port(fd);
			b->cfg.listeners[l].port = port;
			w->lfds[w->n_lfds++] = fd;
			/* A listening socket is told apart from connections
			 * by its small tagged pointer value: index + 1. */
			struct epoll_event ev = {.events = EPOLLIN,
			                         .data.u64 = (uint64_t)(w->n_lfds)};
			if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
				broker_free(b);
				return TERN_E_SYS;
			}
		}
		const struct listener_cfg *lc = &cfg->listeners[l];
		log_write(&b->log, LOG_TYPE_NOTICE, "Opening %s%s listen socket on %s%s port %u.",
		          b->listeners[l].tp->name,
		          b->listeners[l].tp == &transport_ws &&
		                          b->listeners[l].base == &transport_tls
		                  ? " over tls"
		                  : "",
		          lc->bind_interface[0] ? "interface " : "",
		          lc->bind_interface[0] ? lc->bind_interface
		          : lc->bind[0]         ? lc->bind
		                                : "*",
		          port);
	}
	return TERN_OK;
}

enum tern_err broker_start(struct broker *b)
{
	/* From here on, log I/O is the log writer's, not the workers'. What
	 * was logged before (startup errors) is already written. */
	if (log_start(&b->log))
		log_write(&b->log, LOG_TYPE_WARNING,
		          "Warning: no log writer thread; lines are written synchronously.");
	log_write(&b->log, LOG_TYPE_NOTICE, "ternd version %s running with %u worker%s",
	          TERN_VERSION, b->n_workers, b->n_workers == 1 ? "" : "s");
	for (unsigned i = 0; i < b->n_workers; i++) {
		struct worker *w = b->workers[i];
		int rc = pthread_create(&w->thread, NULL, worker_main, w);
		if (rc) {
			log_write(&b->log, LOG_TYPE_ERR, "Error: cannot start worker %u: %s", i,
			          strerror(rc));
			broker_stop(b);
			return TERN_E_SYS;
		}
		w->thread_started = true;
	}
	return TERN_OK;
}

void broker_stop(struct broker *b)
{
	atomic_store(&b->stop, true);
	for (unsigned i = 0; i < b->n_workers; i++) {
		struct worker *w = b->workers[i];
		uint64_t one = 1;
		if (write(w->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_write(&b->log, LOG_TYPE_ERR, "Error: cannot wake worker %u", i);
	}
	for (unsigned i = 0; i < b->n_workers; i++) {
		struct worker *w = b->workers[i];
		if (w->thread_started) {
			pthread_join(w->thread, NULL);
			w->thread_started = false;
		}
	}
	/* Once no worker can forward through it any more (they read
	 * b->cluster unlocked); what it still posts meanwhile is dropped
	 * (the stop flag) or freed with the inboxes. */
	cluster_link_close(b);
}

void broker_free(struct broker *b)
{
	/* Tearing down, not ending sessions: nothing may be deleted from the
	 * store from here on (this also runs when broker_init() fails). */
	atomic_store(&b->stop, true);
	/* The password threads post to the workers' inboxes: they stop
	 * before those are drained for the last time. */
	auth_stop(b);
	cluster_link_close(b);
	for (unsigned i = 0; b->workers && i < b->n_workers; i++)
		worker_shutdown(b->workers[i]);
	/* The archives write what waits (or leave it spilled in the store),
	 * and ask the store to forget what they wrote, before it closes. */
	archive_link_stop(b);
	/* Their last batches are applied here; the storage thread is gone
	 * before the workers' memory is. */
	store_close(b->store);
	b->store = NULL;
	archive_link_free(b);
	for (unsigned i = 0; b->workers && i < b->n_workers; i++)
		worker_release(b->workers[i]);
	free(b->workers);
	b->workers = NULL;
	retain_free(b->retain);
	b->retain = NULL;
	for (size_t l = 0; l < b->n_listeners; l++) {
		tls_listener_free(&b->listeners[l]);
		if (b->listeners[l].http_dir_open)
			close(b->listeners[l].http_dir);
	}
	log_write(&b->log, LOG_TYPE_NOTICE, "ternd version %s terminating", TERN_VERSION);
	log_close(&b->log);
}
