/*
 * conn_sink.c - the sink (sink.h) of a real connection: what a handler
 * sends is queued in the connection's write buffer by conn.c, a close marks
 * the connection for the reaper, and a hand-over moves it to another worker.
 * Authentication: the certificate standing for the username, the verdict a
 * connection carries, and the wait for a password check (auth.c decides,
 * the connection waits). In a cluster, the wait for the record of a
 * session another node may hold works the same way (handle_connect.c
 * asks, the cluster answers, the CONNECT is handled again).
 *
 * Kept apart from conn.c so that conn.c stays about bytes (framing, buffers,
 * transports, lifetime) and this file is the one place where the handlers'
 * view of a connection meets it.
 */
#include "broker/conn.h"

#include <stdlib.h>
#include <string.h>

#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/config.h"
#include "broker/conn_internal.h"
#include "broker/flow.h"
#include "broker/sink.h"
#include "broker/transport.h"
#include "broker/worker.h"
#include "cluster/cluster.h"
#include "util/map.h"

static struct conn *conn_of(struct sink *k)
{
	return (struct conn *)((char *)k - offsetof(struct conn, sink));
}

static const struct conn *conn_of_const(const struct sink *k)
{
	return (const struct conn *)((const char *)k - offsetof(struct conn, sink));
}

static TERN_MUST_CHECK enum tern_err sink_conn_send(struct sink *k, const struct tern_packet *p)
{
	return conn_send(conn_of(k), p);
}

static TERN_MUST_CHECK enum tern_err
sink_conn_send_publish(struct sink *k, const struct delivery *d, uint16_t packet_id, bool dup)
{
	return conn_send_publish(conn_of(k), d, packet_id, dup);
}

static TERN_MUST_CHECK enum tern_err sink_conn_send_ack(struct sink *k, enum tern_packet_type type,
                                                        uint16_t packet_id, uint8_t reason)
{
	return conn_send_ack(conn_of(k), type, packet_id, reason);
}

static void sink_conn_close(struct sink *k, uint8_t reason, const char *why)
{
	conn_close(conn_of(k), reason, why);
}

static void sink_conn_end(struct sink *k, const char *why)
{
	struct conn *c = conn_of(k);
	/* The client ends the stream next: nothing of ours is left to read. */
	c->no_linger = true;
	conn_close(c, 0, why);
}

static TERN_MUST_CHECK enum tern_err sink_conn_authenticate(struct sink *k,
                                                            const struct tern_connect *p,
                                                            struct tern_bytes *user, uint8_t *rc,
                                                            const char **why)
{
	struct conn *c = conn_of(k);
	struct worker *w = c->w;
	*why = NULL;
	*rc = TERN_RC_SUCCESS;
	if (c->listener->cfg->use_identity_as_username ||
	    c->listener->cfg->use_subject_as_username) {
		/* The certificate is the credential: no password is asked.
		 * Behind a PROXY v2 proxy that ended the TLS, the certificate
		 * is the one its header vouches for (conn_proxy.c). A client
		 * without one (require_certificate false) gets what mosquitto
		 * answers it, bad username or password: v5 0x86 (3.1.1: not
		 * authorized, v3_code()). */
		bool proxied = c->listener->cfg->proxy_protocol != 0;
		const char *id = proxied ? conn_proxy_identity(c) : tls_peer_identity(c);
		if (id) {
			*user = (struct tern_bytes){(const uint8_t *)id, (uint32_t)strlen(id)};
		} else {
			*rc = TERN_RC_BAD_USERNAME_OR_PASSWORD;
			*why = proxied ? "no verified client certificate CN in the PROXY header "
			                 "(use_identity_as_username)"
			               : "no client certificate (use_identity_as_username)";
		}
		return TERN_OK;
	}
	*user = p->has_username ? p->username : (struct tern_bytes){0};
	if (c->auth == CONN_AUTH_DONE) {
		/* Checked already, off the loop (possibly on the worker that
		 * handed this connection over). */
		*rc = c->auth_rc;
		return TERN_OK;
	}
	if (auth_check(w, k->listener, p, rc) == TERN_OK) {
		if (*rc)
			*why = auth_anonymous_refusal(w, k->listener, p, *rc);
		return TERN_OK;
	}
	/* The password is checked off the loop. The CONNECT is checked on
	 * the worker that accepted the connection, before it is handed to
	 * its session's home worker, so that a refusal never moves a
	 * connection: input pauses, the CONNECT stays in the read buffer, and
	 * conn_auth_verdict() handles it again, which then takes the stored
	 * verdict; a hand-over that follows carries the verdict with the
	 * connection, so the home worker does not hash again. */
	if (map64_put(&w->conn_state->auth_wait, c->sink.id, c)) {
		*rc = TERN_RC_SERVER_UNAVAILABLE;
		return TERN_OK;
	}
	if (auth_ask(w, k->listener, c->sink.id, p, rc) == TERN_OK) {
		map64_del(&w->conn_state->auth_wait, c->sink.id);
		return TERN_OK;
	}
	c->auth = CONN_AUTH_WAIT;
	conn_pause_input(c, true);
	return TERN_E_INCOMPLETE;
}

void conn_auth_verdict(struct worker *w, uint64_t conn_id, uint8_t rc)
{
	struct conn *c = map64_del(&w->conn_state->auth_wait, conn_id);
	if (!c || c->state == CONN_CLOSING)
		return; /* gone, or going: nobody to answer */
	c->auth = CONN_AUTH_DONE;
	c->auth_rc = rc;
	/* Input resumes first: handling the CONNECT may hand c to another
	 * worker, after which it is not ours to touch. Bytes the client sent
	 * behind its CONNECT are still in the socket, and epoll reports them
	 * (level-triggered) once the CONNECT is answered. */
	conn_pause_input(c, false);
	(void)conn_process(c);
}

void conn_auth_forget(struct conn *c)
{
	map64_del(&c->w->conn_state->auth_wait, c->sink.id);
	c->auth = CONN_AUTH_NONE;
}

static TERN_MUST_CHECK enum tern_err sink_conn_session_lookup(struct sink *k, struct tern_bytes cid,
                                                              uint8_t **rec, size_t *len)
{
	struct conn *c = conn_of(k);
	struct worker *w = c->w;
	struct conn_worker *cw = w->conn_state;
	*rec = NULL;
	*len = 0;
	if (c->lookup == CONN_LOOKUP_DONE) {
		struct lookup_answer *a = map64_del(&cw->lookup_done, c->sink.id);
		c->lookup = CONN_LOOKUP_NONE;
		if (!a)
			return TERN_E_SYS;
		enum tern_err err = a->err;
		if (!err && a->len) {
			/* The answer's memory becomes the caller's record. */
			size_t n = a->len;
			memmove(a, a->rec, n);
			*rec = (uint8_t *)a;
			*len = n;
			return TERN_OK;
		}
		free(a);
		return err;
	}
	struct cluster *cl = w->broker->cluster;
	if (!cl)
		return TERN_OK;
	if (map64_put(&cw->lookup_wait, c->sink.id, c))
		return TERN_E_NOMEM;
	/* The answer goes to this worker, the client id's home. */
	enum tern_err err = cluster_session_get(cl, cid, c->sink.id << 16 | w->id);
	if (err) {
		map64_del(&cw->lookup_wait, c->sink.id);
		return err;
	}
	c->lookup = CONN_LOOKUP_WAIT;
	conn_pause_input(c, true);
	return TERN_E_INCOMPLETE;
}

void conn_session_found(struct worker *w, uint64_t conn_id, const uint8_t *rec, size_t len,
                        enum tern_err err)
{
	struct conn_worker *cw = w->conn_state;
	struct conn *c = map64_del(&cw->lookup_wait, conn_id);
	if (!c || c->state == CONN_CLOSING)
		return; /* gone, or going: nobody to answer */
	struct lookup_answer *a = malloc(sizeof(*a) + (len ? len : 1));
	if (!a || map64_put(&cw->lookup_done, conn_id, a)) {
		free(a);
		conn_close(c, TERN_RC_SERVER_UNAVAILABLE, "out of memory");
		return;
	}
	a->err = err;
	a->len = len;
	if (len)
		memcpy(a->rec, rec, len);
	c->lookup = CONN_LOOKUP_DONE;
	/* As for a password verdict (conn_auth_verdict()). */
	conn_pause_input(c, false);
	(void)conn_process(c);
}

void conn_lookup_forget(struct conn *c)
{
	struct conn_worker *cw = c->w->conn_state;
	map64_del(&cw->lookup_wait, c->sink.id);
	free(map64_del(&cw->lookup_done, c->sink.id));
	c->lookup = CONN_LOOKUP_NONE;
}

static void sink_conn_hand_over(struct sink *k, unsigned home)
{
	struct conn *c = conn_of(k);
	struct worker *w = c->w;
	struct worker *to = w->broker->workers[home];
	struct inbox_item *it = calloc(1, sizeof(*it));
	if (!it) {
		conn_close(c, TERN_RC_SERVER_UNAVAILABLE, "out of memory");
		return;
	}
	conn_unlink(c);
	it->kind = INBOX_CONN;
	it->u.conn = c;
	it->proxied = conn_proxy_take(c);
	c->w = to;
	w->conn_state->handed_off = c;
	worker_post(to, it);
}

static void sink_conn_accept(struct sink *k)
{
	conn_of(k)->state = CONN_ACTIVE;
}

static size_t sink_conn_pending_out(const struct sink *k)
{
	return conn_pending_out(conn_of_const(k));
}

static const char *sink_conn_name(const struct sink *k, char buf[64])
{
	return conn_peer(conn_of_const(k), buf);
}

static void sink_conn_info(const struct sink *k, struct sink_info *out)
{
	const struct conn *c = conn_of_const(k);
	out->bytes_in = c->rx_bytes;
	out->bytes_out = c->tx_bytes;
	out->since_ms = c->since_ms;
}

static bool sink_conn_flow_ack(struct sink *k, const struct flow_hit *hit, uint8_t type,
                               uint16_t packet_id, uint8_t reason)
{
	struct conn *c = conn_of(k);
	if (c->flow) {
		/* Paused: in order after the held ones (flow.c). */
		flow_hold(c, type, packet_id, reason);
		return true;
	}
	return hit && hit->cell && flow_pause(c, hit, type, packet_id, reason);
}

const struct sink_ops conn_sink_ops = {
        .send = sink_conn_send,
        .send_publish = sink_conn_send_publish,
        .send_ack = sink_conn_send_ack,
        .close = sink_conn_close,
        .end = sink_conn_end,
        .authenticate = sink_conn_authenticate,
        .session_lookup = sink_conn_session_lookup,
        .hand_over = sink_conn_hand_over,
        .accept = sink_conn_accept,
        .pending_out = sink_conn_pending_out,
        .name = sink_conn_name,
        .flow_ack = sink_conn_flow_ack,
        .info = sink_conn_info,
};
