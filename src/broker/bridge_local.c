/*
 * bridge_local.c - a bridge's local side: the session of local_clientid
 * reached through a sink of the bridge's own (the ops a connection's sink
 * has, see sink.h), the acknowledgements passed to it, flow control's hold
 * on what comes from the remote, the notifications published here, and
 * the mapping of topics between the two sides. The design is at the top of
 * bridge.c; what the two files share is bridge_int.h.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/bridge_int.h"
#include "broker/delivery.h"
#include "broker/flow.h"
#include "broker/handlers.h"
#include "broker/retain.h"
#include "broker/route.h"
#include "broker/session.h"
#include "tern/codec.h"
#include "util/alias_in.h"
#include "util/msg.h"

/* ---- topics ---- */

/* The filter of topic t on one side: prefix then pattern (or the prefix
 * alone for an empty pattern, which is then a plain topic). */
void bridge_side_filter(const struct bridge_topic *t, bool local, char *out, size_t cap)
{
	snprintf(out, cap, "%s%s", local ? t->local_prefix : t->remote_prefix, t->pattern);
}

/*
 * Maps topic, seen on one side (from_local: the local one), to the other
 * side for a topic line of direction dir (or both), into out. False when no
 * line maps it.
 */
bool bridge_map_topic(const struct bridge *b, struct tern_bytes topic, bool from_local, char *out,
                      size_t cap)
{
	char filter[BRIDGE_PREFIX_MAX + BRIDGE_TOPIC_MAX];
	for (size_t i = 0; i < b->cfg->n_topics; i++) {
		const struct bridge_topic *t = &b->cfg->topics[i];
		if (t->dir != BRIDGE_BOTH && t->dir != (from_local ? BRIDGE_OUT : BRIDGE_IN))
			continue;
		bridge_side_filter(t, from_local, filter, sizeof(filter));
		if (!tern_topic_matches((const uint8_t *)filter, strlen(filter), topic.data,
		                        topic.len))
			continue;
		const char *from_prefix = from_local ? t->local_prefix : t->remote_prefix;
		const char *to_prefix = from_local ? t->remote_prefix : t->local_prefix;
		size_t skip = strlen(from_prefix);
		if (!t->pattern[0]) {
			snprintf(out, cap, "%s", to_prefix);
			return true;
		}
		if (skip > topic.len || memcmp(topic.data, from_prefix, skip) != 0)
			continue;
		int n = snprintf(out, cap, "%s%.*s", to_prefix, (int)(topic.len - skip),
		                 (const char *)topic.data + skip);
		if (n < 0 || (size_t)n >= cap)
			return false;
		return true;
	}
	return false;
}

/* ---- local acknowledgements ---- */

void bridge_ack_queue(struct bridge *b, uint8_t type, uint16_t packet_id, uint8_t reason)
{
	if (b->n_acks == b->cap_acks) {
		size_t cap = b->cap_acks ? b->cap_acks * 2 : 16;
		struct local_ack *a = realloc(b->acks, cap * sizeof(*a));
		if (!a) {
			/* The session keeps the message in flight; it is sent
			 * again when the session resumes. */
			log_write(blog(b), LOG_TYPE_ERR,
			          "Error: bridge %s: out of memory for an acknowledgement",
			          b->cfg->name);
			return;
		}
		b->acks = a;
		b->cap_acks = cap;
	}
	b->acks[b->n_acks++] =
	        (struct local_ack){.type = type, .reason = reason, .packet_id = packet_id};
}

/* Hands the queued acknowledgements to the local session, in order. What
 * the handlers answer (PUBREL after PUBREC) is queued again and handled in
 * the same call. */
void bridge_acks_run(struct bridge *b)
{
	for (size_t i = 0; i < b->n_acks && b->local_ok && !b->local_closing; i++) {
		struct local_ack a = b->acks[i];
		struct tern_ack ack = {.packet_id = a.packet_id, .reason = a.reason};
		struct session *s = b->sink.session;
		switch (a.type) {
		case TERN_PUBACK:
			handle_puback(&b->sink, s, &ack);
			break;
		case TERN_PUBREC:
			handle_pubrec(&b->sink, s, &ack);
			break;
		case TERN_PUBCOMP:
			handle_pubcomp(&b->sink, s, &ack);
			break;
		default:
			break;
		}
	}
	b->n_acks = 0;
}

/* ---- notifications ---- */

void bridge_notify_local(struct bridge *b, bool up)
{
	if (!b->cfg->notifications)
		return;
	struct worker *w = b->w;
	struct msg *m = msg_new((struct tern_bytes){(const uint8_t *)b->note_topic,
	                                            (uint32_t)strlen(b->note_topic)},
	                        (struct tern_bytes){(const uint8_t *)(up ? "1" : "0"), 1}, 1, true,
	                        NULL, 0, w->now);
	if (!m)
		return;
	/* Like $SYS values, kept in memory only: the state is published
	 * again whenever it changes, and at every start. */
	if (retain_set(w->broker->retain, m) || route_publish(w, m, NULL, NULL))
		log_write(blog(b), LOG_TYPE_ERR,
		          "Error: bridge %s: out of memory publishing its notification",
		          b->cfg->name);
	msg_unref(m);
}

void bridge_out_entry_free(struct out_entry *e)
{
	if (e->msg)
		msg_unref(e->msg);
	free(e);
}

/* ---- the local side: the sink ---- */

static TERN_MUST_CHECK enum tern_err sink_b_send_ack(struct sink *k, enum tern_packet_type type,
                                                     uint16_t packet_id, uint8_t reason)
{
	struct bridge *b = bridge_of(k);
	switch (type) {
	case TERN_PUBACK:
	case TERN_PUBREC:
	case TERN_PUBCOMP: {
		/* The local side has it (or refused it): now the remote may
		 * forget it. Without a connection the remote resends it, and
		 * the session answers that again. */
		enum tern_err e = tern_client_ack(b->c, type, packet_id, reason);
		if (e && e != TERN_E_CLOSED)
			log_write(blog(b), LOG_TYPE_ERR,
			          "Error: bridge %s: cannot acknowledge to the remote: %s",
			          b->cfg->name, tern_strerror(e));
		return TERN_OK;
	}
	case TERN_PUBREL: {
		/* The local session is at PUBREL for packet_id: the remote's
		 * PUBREC came, now or before a restart of ternd. The session
		 * sends it once that state is committed (session_out.c), so
		 * the remote forgets the id only once our store knows the
		 * message is past PUBLISH. */
		struct out_entry *e = calloc(1, sizeof(*e));
		if (!e) {
			/* The session resends the PUBREL at its resume. */
			log_write(blog(b), LOG_TYPE_ERR,
			          "Error: bridge %s: out of memory for a release", b->cfg->name);
			return TERN_OK;
		}
		e->id = packet_id;
		e->qos = 2;
		e->release = true;
		e->restored = map64_get(&b->out, packet_id) == NULL;
		bridge_pend_push(b, e);
		return TERN_OK;
	}
	default:
		return TERN_E_INVALID;
	}
}

static TERN_MUST_CHECK enum tern_err sink_b_send(struct sink *k, const struct tern_packet *p)
{
	struct bridge *b = bridge_of(k);
	switch (p->type) {
	case TERN_PUBACK:
	case TERN_PUBREC:
	case TERN_PUBREL:
	case TERN_PUBCOMP:
		return sink_b_send_ack(k, p->type, p->u.ack.packet_id, p->u.ack.reason);
	case TERN_CONNACK:
		if (p->u.connack.reason)
			log_write(blog(b), LOG_TYPE_ERR,
			          "Error: bridge %s: the local broker refused its session: %s",
			          b->cfg->name, tern_reason_string(p->u.connack.reason, false));
		return TERN_OK;
	case TERN_SUBACK:
		for (uint32_t i = 0; i < p->u.subres.count; i++)
			if (p->u.subres.reasons[i] >= 0x80)
				log_write(blog(b), LOG_TYPE_WARNING,
				          "Warning: bridge %s: local subscription %u refused: %s",
				          b->cfg->name, i + 1,
				          tern_reason_string(p->u.subres.reasons[i], false));
		return TERN_OK;
	default:
		return TERN_OK; /* UNSUBACK, DISCONNECT (a close follows), PINGRESP */
	}
}

static TERN_MUST_CHECK enum tern_err sink_b_send_publish(struct sink *k, const struct delivery *d,
                                                         uint16_t packet_id, bool dup)
{
	struct bridge *b = bridge_of(k);
	struct out_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return TERN_E_NOMEM;
	/* The local session's packet id is the remote one, and its resend
	 * (dup) a resend there: what the store keeps of the session is where
	 * each message stands on the remote. */
	e->id = packet_id;
	e->qos = d->qos;
	e->retain = d->retain;
	e->dup = dup;
	e->msg = msg_ref(d->msg);
	/* A QoS 2 one comes once its packet id is committed (session_out.c). */
	bridge_pend_push(b, e);
	return TERN_OK;
}

static void sink_b_close(struct sink *k, uint8_t reason, const char *why)
{
	struct bridge *b = bridge_of(k);
	if (b->local_closing)
		return;
	b->local_closing = true;
	log_write(blog(b), LOG_TYPE_NOTICE, "Bridge %s: local session %s closed (%s).",
	          b->cfg->name, b->local_id, why ? why : tern_reason_string(reason, false));
}

static void sink_b_end(struct sink *k, const char *why)
{
	sink_b_close(k, 0, why);
}

static TERN_MUST_CHECK enum tern_err sink_b_authenticate(struct sink *k,
                                                         const struct tern_connect *p,
                                                         struct tern_bytes *user, uint8_t *rc,
                                                         const char **why)
{
	/* The bridge is part of the broker, as mosquitto's bridges are: its
	 * local session needs no password. */
	(void)k;
	*user = p->has_username ? p->username : (struct tern_bytes){0};
	*rc = TERN_RC_SUCCESS;
	*why = NULL;
	return TERN_OK;
}

static void sink_b_hand_over(struct sink *k, unsigned home)
{
	/* The bridge was made on its client id's home (bridge_worker_new). */
	struct bridge *b = bridge_of(k);
	log_write(blog(b), LOG_TYPE_ERR, "Error: bridge %s: session home %u is not worker %u",
	          b->cfg->name, home, b->w->id);
	sink_b_close(k, TERN_RC_IMPLEMENTATION_SPECIFIC, "wrong worker");
}

static void sink_b_accept(struct sink *k)
{
	bridge_of(k)->local_ok = true;
}

static size_t sink_b_pending_out(const struct sink *k)
{
	(void)k;
	return 0; /* libtern keeps what the socket did not take */
}

static const char *sink_b_name(const struct sink *k, char buf[64])
{
	const struct bridge *b =
	        (const struct bridge *)((const char *)k - offsetof(struct bridge, sink));
	snprintf(buf, 64, "bridge %.50s", b->cfg->name);
	return buf;
}

static bool hold_may_go_on(const struct bridge *b)
{
	return flow_drained(b->hold) ||
	       (b->hold_shared && (atomic_load(&b->hold->state) & FLOW_SLOW));
}

/* Drops the held acknowledgements without sending them (the connection
 * they were for is gone: the remote sends those messages again). */
static void hold_clear(struct bridge *b)
{
	flow_cell_unref(b->hold);
	b->hold = NULL;
	b->n_held = 0;
}

static bool sink_b_flow_ack(struct sink *k, const struct flow_hit *hit, uint8_t type,
                            uint16_t packet_id, uint8_t reason)
{
	struct bridge *b = bridge_of(k);
	if (!b->hold) {
		if (!hit || !hit->cell)
			return false;
		/* As flow_pause(): our bit first, then a look, so that a drain
		 * in between still wakes this worker. */
		atomic_fetch_or(&hit->cell->waiters, UINT64_C(1) << (b->w->id % 64));
		if (flow_drained(hit->cell) ||
		    (hit->shared && (atomic_load(&hit->cell->state) & FLOW_SLOW)))
			return false;
		flow_cell_ref(hit->cell);
		b->hold = hit->cell;
		b->hold_shared = hit->shared;
		stat_add(&b->w->stats, STAT_FLOW_PAUSES, 1);
	}
	if (b->n_held == b->cap_held) {
		size_t cap = b->cap_held ? b->cap_held * 2 : 16;
		struct local_ack *v = realloc(b->held, cap * sizeof(*v));
		if (!v) {
			/* Better unacknowledged (the remote sends it again
			 * after a reconnect) than out of order. */
			log_write(blog(b), LOG_TYPE_ERR,
			          "Error: bridge %s: out of memory holding an acknowledgement",
			          b->cfg->name);
			return true;
		}
		b->held = v;
		b->cap_held = cap;
	}
	b->held[b->n_held++] =
	        (struct local_ack){.type = type, .reason = reason, .packet_id = packet_id};
	return true;
}

/* From bridge_run(): once the receiver drained, the held acknowledgements
 * go, in order, each after the commit of what it acknowledges (as
 * flow_resume() sends a connection's). */
void bridge_hold_run(struct bridge *b)
{
	if (!hold_may_go_on(b)) {
		atomic_fetch_or(&b->hold->waiters, UINT64_C(1) << (b->w->id % 64));
		if (!hold_may_go_on(b))
			return;
	}
	struct flow_cell *cell = b->hold;
	b->hold = NULL;
	size_t n = b->n_held;
	b->n_held = 0;
	for (size_t i = 0; i < n && b->local_ok && !b->local_closing && b->sink.session; i++)
		session_ack(b->sink.session, (enum tern_packet_type)b->held[i].type,
		            b->held[i].packet_id, b->held[i].reason, true);
	flow_cell_unref(cell);
}

static const struct sink_ops bridge_sink_ops = {
        .send = sink_b_send,
        .send_publish = sink_b_send_publish,
        .send_ack = sink_b_send_ack,
        .close = sink_b_close,
        .end = sink_b_end,
        .authenticate = sink_b_authenticate,
        .hand_over = sink_b_hand_over,
        .accept = sink_b_accept,
        .pending_out = sink_b_pending_out,
        .name = sink_b_name,
        .flow_ack = sink_b_flow_ack,
};

/* Attaches (makes or resumes) the local session through the sink, then
 * subscribes it to the local side of the out topics. */
void bridge_local_attach(struct bridge *b)
{
	struct worker *w = b->w;
	b->sink = (struct sink){
	        .ops = &bridge_sink_ops, .id = broker_new_id(w->broker), .internal = true};
	b->local_ok = b->local_closing = false;
	struct tern_packet p = {.type = TERN_CONNECT};
	struct tern_connect *cn = &p.u.connect;
	cn->version = TERN_V5; /* No Local and reason codes on the local side */
	bool lazy = b->cfg->start_type == BRIDGE_START_LAZY;
	/* A lazy bridge's session goes offline whenever the bridge stops, to
	 * queue what it is to forward until the threshold starts it again:
	 * it is kept then, and started clean (local_cleansession) only once
	 * per run of ternd, as the session of any other bridge is. */
	cn->clean_start = b->local_cleansession && !b->attached_once;
	cn->client_id =
	        (struct tern_bytes){(const uint8_t *)b->local_id, (uint32_t)strlen(b->local_id)};
	cn->props.present = TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY);
	cn->props.session_expiry = b->local_cleansession && !lazy ? 0 : UINT32_MAX;
	if (b->cfg->local_username[0]) {
		/* mosquitto's local_username: the local session's username
		 * (logs, $SYS); the bridge is the broker's own, so neither
		 * the password file nor the ACL is asked (sink_b_authenticate). */
		cn->has_username = true;
		cn->username = (struct tern_bytes){(const uint8_t *)b->cfg->local_username,
		                                   (uint32_t)strlen(b->cfg->local_username)};
		if (b->cfg->has_local_password) {
			cn->has_password = true;
			cn->password =
			        (struct tern_bytes){(const uint8_t *)b->cfg->local_password,
			                            (uint32_t)strlen(b->cfg->local_password)};
		}
	}
	handle_connect(w, &b->sink, cn);
	b->attached_once = true;
	if (!b->local_ok || !b->sink.session) {
		b->local_ok = false;
		return;
	}

	struct tern_sub_entry entries[MAX_BRIDGE_TOPICS];
	char filters[MAX_BRIDGE_TOPICS][BRIDGE_PREFIX_MAX + BRIDGE_TOPIC_MAX];
	uint32_t n = 0;
	for (size_t i = 0; i < b->cfg->n_topics; i++) {
		const struct bridge_topic *t = &b->cfg->topics[i];
		if (t->dir == BRIDGE_IN)
			continue;
		bridge_side_filter(t, true, filters[n], sizeof(filters[n]));
		entries[n] = (struct tern_sub_entry){
		        .filter = {(const uint8_t *)filters[n], (uint32_t)strlen(filters[n])},
		        .qos = t->qos,
		        .no_local = true,
		        .retain_as_published = true,
		        /* Retained messages go out once, when the
		         * subscription is new, not at every restart. */
		        .retain_handling = 1,
		};
		n++;
	}
	if (!n)
		return;
	/* Through the codec, so the handler gets what it gets from a
	 * connection: a decoded SUBSCRIBE. */
	struct tern_packet sp = {.type = TERN_SUBSCRIBE};
	sp.u.subscribe = (struct tern_subscribe){.packet_id = 1, .count = n, .entries = entries};
	size_t size = tern_packet_size(&sp, TERN_V5), len = 0;
	uint8_t *buf = size ? malloc(size) : NULL;
	struct tern_fixed_header fh;
	struct tern_packet dec;
	if (!buf || tern_encode_packet(&sp, TERN_V5, buf, size, &len) ||
	    tern_decode_fixed_header_v(buf, len, 0, TERN_V5, &fh) ||
	    tern_decode_packet(&fh, buf + fh.header_len, TERN_V5, &dec)) {
		log_write(blog(b), LOG_TYPE_ERR, "Error: bridge %s: cannot subscribe locally",
		          b->cfg->name);
		free(buf);
		return;
	}
	handle_subscribe(&b->sink, b->sink.session, &dec.u.subscribe);
	free(buf);
}

/* Lets the local session go (it stays, as the session of a connection
 * that went away does, when it is persistent). */
void bridge_local_detach(struct bridge *b)
{
	if (b->sink.session)
		handle_detach(&b->sink);
	b->sink.session = NULL;
	b->local_ok = false;
	b->local_closing = false;
	b->n_acks = 0;
	bridge_pend_clear(b);
	hold_clear(b);
	alias_in_free(&b->sink.alias_in);
	if (b->sink.will) {
		msg_unref(b->sink.will);
		b->sink.will = NULL;
	}
}
