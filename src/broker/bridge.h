/*
 * bridge.h - mosquitto-style bridges (`connection` blocks): ternd connects
 * to another broker as a client and forwards the configured topics both
 * ways. bridge.c holds the design; config_bridge.h the configuration.
 *
 * Each bridge lives on the home worker of its local client id and runs on
 * that worker's loop; nothing of it is touched by another thread. The
 * worker calls in at four points: bridge_worker_new() when it is made,
 * bridge_on_event() for a readiness event of a bridge's socket (an epoll
 * tag with bit 0 set, see bridge_tag()), bridge_timeout_ms() and
 * bridge_run() once per iteration, and bridge_worker_free() at shutdown.
 */
#ifndef TERN_BROKER_BRIDGE_H
#define TERN_BROKER_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>

#include "tern/error.h"

struct bridge;
struct worker;

/* Makes the bridges of the configuration whose home is w (none: nothing
 * is allocated). They start on w's first bridge_run(). TERN_E_NOMEM. */
TERN_MUST_CHECK enum tern_err bridge_worker_new(struct worker *w);

/* At shutdown, on w's thread or after it was joined: each bridge's local
 * session is detached (kept, for the store, as any session is at stop) and
 * its remote connection closed without DISCONNECT, so the remote broker
 * publishes the bridge's will (notifications "0"). Frees everything. */
void bridge_worker_free(struct worker *w);

/* True when an epoll tag (not the inbox's 0 or a listener's 1..n, which
 * the loop tells apart first) is a bridge's: bit 0 set. Connections are
 * tagged with their pointer, which is aligned, so the bit is free. */
static inline bool bridge_tag(uint64_t tag)
{
	return (tag & 1u) != 0;
}

/* A readiness event (EPOLLIN, EPOLLOUT, ...) for the bridge whose tag it
 * is. */
void bridge_on_event(struct worker *w, uint64_t tag, uint32_t events);

/* Milliseconds until some bridge of w needs bridge_run() without an
 * event (a keep-alive, a restart, a deferred acknowledgement); -1: none. */
int bridge_timeout_ms(const struct worker *w);

/* Runs what is due in w's bridges: starts and restarts, timers of their
 * clients, acknowledgements passed between the two sides. */
void bridge_run(struct worker *w);

#endif
