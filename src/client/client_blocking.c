/*
 * client_blocking.c - the blocking API: the non-blocking client driven by
 * a private poll() loop until the awaited answer arrives or time runs out.
 *
 * Each blocking call starts its request with the non-blocking function,
 * names what it waits for in c->wait (client_proto.c and client_out.c fill
 * in the answer when the packet with that id arrives, before the user's
 * callbacks run), then alternates poll() on the client's socket, bounded by
 * both the caller's deadline and tern_client_timeout_ms(), with
 * tern_client_step(). Callbacks still run as usual. c->wait is cleared
 * before returning, so no pointer into the caller's stack outlives the call.
 *
 * A lost connection ends a wait, with the connection's error, unless
 * auto_reconnect is on and the request survives a reconnect: a QoS 1/2
 * publish is kept and resent, so tern_client_publish_wait() keeps waiting
 * (within its timeout); a SUBSCRIBE does not survive and its wait ends.
 */
#include <poll.h>
#include <string.h>

#include "client/client_internal.h"
#include "util/clock.h"

/* Computes an absolute deadline for timeout_ms; 0 means none (-1). */
static uint64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? 0 : mono_ms() + (uint64_t)timeout_ms;
}

/* True once the deadline (0: none) has passed. */
static bool expired(uint64_t deadline)
{
	return deadline != 0 && mono_ms() >= deadline;
}

/* Waits for the socket or the client's next timer, at most until deadline,
 * then steps once. Returns what the step returned. */
static TERN_MUST_CHECK enum tern_err wait_step(struct tern_client *c, uint64_t deadline)
{
	int t = tern_client_timeout_ms(c);
	if (deadline != 0) {
		uint64_t now = mono_ms();
		uint64_t left = deadline > now ? deadline - now : 0;
		if (left > 0x7fffffff)
			left = 0x7fffffff;
		if (t < 0 || (uint64_t)t > left)
			t = (int)left;
	}
	if (c->fd >= 0) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		if (tern_client_want_write(c))
			pfd.events |= POLLOUT;
		poll(&pfd, 1, t);
	} else if (t < 0) {
		return TERN_E_CLOSED; /* nothing will ever happen */
	} else if (t > 0) {
		poll(NULL, 0, t);
	}
	return tern_client_step(c);
}

/* wait_step() for the loops that wait for an event: they learn how the
 * step went from what its callbacks recorded (c->ev_closed, c->ev_err, the
 * state), checked at the top of each round, because a lost connection need
 * not end the wait (auto_reconnect). The step's result adds nothing. */
static void wait_event(struct tern_client *c, uint64_t deadline)
{
	enum tern_err seen_through_events = wait_step(c, deadline);
	(void)seen_through_events;
}

/* The error to report for a connection that ended: its error, or
 * TERN_E_CLOSED after a clean close. */
static TERN_MUST_CHECK enum tern_err closed_err(const struct tern_client *c)
{
	return c->ev_err != TERN_OK ? c->ev_err : TERN_E_CLOSED;
}

static void wait_clear(struct tern_client *c)
{
	memset(&c->wait, 0, sizeof(c->wait));
}

enum tern_err tern_client_connect(struct tern_client *c, const struct tern_connect_opts *opts,
                                  int timeout_ms, uint8_t *reason, bool *session_present)
{
	if (reason != NULL)
		*reason = 0;
	if (session_present != NULL)
		*session_present = false;
	enum tern_err e = tern_client_connect_start(c, opts);
	if (e != TERN_OK)
		return e;
	c->ev_connack = false;
	c->ev_closed = false;
	uint64_t deadline =
	        deadline_of(timeout_ms < 0 ? (int)c->opts.connect_timeout_ms : timeout_ms);
	for (;;) {
		if (c->ev_connack) {
			if (reason != NULL)
				*reason = c->ev_reason;
			if (c->ev_reason != 0)
				return TERN_E_PROTOCOL;
			if (session_present != NULL)
				*session_present = c->ev_session;
			if (c->state == TERN__UP)
				return TERN_OK;
		}
		if (c->ev_closed)
			return closed_err(c);
		if (expired(deadline))
			return TERN_E_TIMEOUT;
		wait_event(c, deadline);
	}
}

enum tern_err tern_client_loop(struct tern_client *c, int timeout_ms)
{
	if (timeout_ms == 0)
		return tern_client_step(c);
	uint64_t deadline = deadline_of(timeout_ms);
	for (;;) {
		if (c->state == TERN__IDLE)
			return TERN_OK;
		enum tern_err e = wait_step(c, deadline);
		if (e != TERN_OK)
			return e;
		if (expired(deadline))
			return TERN_OK;
	}
}

/* Runs until c->wait.done, the deadline, or (when the request cannot
 * survive it, or nothing will reconnect) the end of the connection. */
static TERN_MUST_CHECK enum tern_err run_wait(struct tern_client *c, uint64_t deadline,
                                              bool survives_reconnect)
{
	for (;;) {
		if (c->wait.done)
			return TERN_OK;
		if (c->ev_closed && (!survives_reconnect || c->state == TERN__IDLE))
			return closed_err(c);
		if (c->state == TERN__IDLE)
			return TERN_E_CLOSED; /* nothing will answer */
		if (expired(deadline))
			return TERN_E_TIMEOUT;
		wait_event(c, deadline);
	}
}

enum tern_err tern_client_publish_wait(struct tern_client *c, const struct tern_publish_args *args,
                                       int timeout_ms, uint8_t *reason)
{
	uint16_t id = 0;
	if (reason != NULL)
		*reason = 0;
	c->ev_closed = false;
	enum tern_err e = tern_client_publish(c, args, &id);
	if (e != TERN_OK)
		return e;
	uint64_t deadline = deadline_of(timeout_ms);
	if (args->qos == 0) {
		/* Done once the packet is handed to the kernel. */
		while (tern_client_want_write(c) && c->state == TERN__UP) {
			if (expired(deadline))
				return TERN_E_TIMEOUT;
			wait_event(c, deadline);
		}
		return c->ev_closed ? closed_err(c) : TERN_OK;
	}
	wait_clear(c);
	c->wait.type = TERN_PUBLISH;
	c->wait.packet_id = id;
	e = run_wait(c, deadline, true);
	uint8_t r = c->wait.reason;
	wait_clear(c);
	if (e != TERN_OK)
		return e;
	if (reason != NULL)
		*reason = r;
	return r >= 0x80 ? TERN_E_PROTOCOL : TERN_OK;
}

enum tern_err tern_client_subscribe_wait(struct tern_client *c,
                                         const struct tern_sub_entry *entries, size_t n,
                                         const struct tern_props *props, int timeout_ms,
                                         uint8_t *reasons)
{
	uint16_t id = 0;
	c->ev_closed = false;
	enum tern_err e = tern_client_subscribe(c, entries, n, props, &id);
	if (e != TERN_OK)
		return e;
	wait_clear(c);
	c->wait.type = TERN_SUBSCRIBE;
	c->wait.packet_id = id;
	c->wait.reasons = reasons;
	c->wait.n = reasons != NULL ? n : 0;
	e = run_wait(c, deadline_of(timeout_ms), false);
	wait_clear(c);
	return e;
}

enum tern_err tern_client_unsubscribe_wait(struct tern_client *c, const char *const *filters,
                                           size_t n, const struct tern_props *props, int timeout_ms)
{
	uint16_t id = 0;
	c->ev_closed = false;
	enum tern_err e = tern_client_unsubscribe(c, filters, n, props, &id);
	if (e != TERN_OK)
		return e;
	wait_clear(c);
	c->wait.type = TERN_UNSUBSCRIBE;
	c->wait.packet_id = id;
	e = run_wait(c, deadline_of(timeout_ms), false);
	wait_clear(c);
	return e;
}

enum tern_err tern_client_receive(struct tern_client *c, struct tern_message **msg, int timeout_ms)
{
	if (c == NULL || msg == NULL || c->cb.on_message != NULL)
		return TERN_E_INVALID;
	*msg = NULL;
	uint64_t deadline = deadline_of(timeout_ms);
	bool stepped = false; /* timeout 0 still looks at the socket once */
	for (;;) {
		struct tern__rx *rx = c->rx_head;
		if (rx != NULL) {
			c->rx_head = rx->next;
			if (c->rx_head == NULL)
				c->rx_tail = NULL;
			c->n_rx--;
			*msg = &rx->msg;
			return TERN_OK;
		}
		if (c->state == TERN__IDLE)
			return c->ev_closed ? closed_err(c) : TERN_E_CLOSED;
		if (stepped && expired(deadline))
			return TERN_E_TIMEOUT;
		stepped = true;
		wait_event(c, deadline);
	}
}
