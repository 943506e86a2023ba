/*
 * conn_proxy.c - enable_proxy_protocol on a connection: the PROXY header
 * (proxy_proto.h) is read before the first MQTT byte, and the client's
 * address it gives stands for the socket's in the log and everywhere
 * conn_peer() is asked.
 *
 * What is kept (struct conn_proxied) is in the worker's map
 * (conn_worker.proxied), not in struct conn, so that connections of other
 * listeners stay as small as they are; a connection handed to another
 * worker carries it in its inbox item. The header must come whole within
 * the CONNECT timeout, as the CONNECT itself must.
 *
 * TLS ended at the proxy (enable_proxy_protocol 2, HAProxy's
 * send-proxy-v2-ssl and send-proxy-v2-ssl-cn): the header's SSL TLV stands
 * for the handshake ternd did not do, as mosquitto 2.1 reads it.
 * require_certificate refuses, as soon as the header is in, a connection
 * whose header does not say that a client certificate was presented and
 * verified. use_identity_as_username keeps that certificate's CN, which
 * conn_sink.c makes the username in place of the CONNECT's. Where mosquitto
 * 2.1 is looser, ternd takes the stricter way: mosquitto takes the CN
 * whether or not the certificate was verified and uses it only with
 * require_certificate (without, the CONNECT's username stands); ternd takes
 * the CN of a verified certificate only, with or without
 * require_certificate, and a client without one is refused at CONNECT, as
 * a TLS listener with use_identity_as_username refuses a client without a
 * certificate.
 */
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "broker/conn.h"
#include "broker/conn_internal.h"
#include "broker/proxy_proto.h"
#include "broker/transport.h"
#include "broker/worker.h"
#include "util/log.h"
#include "util/map.h"

static uint64_t key_of(const struct conn *c)
{
	return (uint64_t)(uintptr_t)c;
}

/* Keeps what c's header said that is used later: the client's address,
 * and the CN for use_identity_as_username. Nothing kept when there is
 * neither. TERN_E_NOMEM when it cannot be kept. */
static TERN_MUST_CHECK enum tern_err keep(struct conn *c, const struct proxy_info *info)
{
	const char *cn =
	        c->listener->cfg->use_identity_as_username && info->cert_verified && info->cn[0]
	                ? info->cn
	                : NULL;
	if (!info->peer[0] && !cn)
		return TERN_OK;
	size_t plen = strlen(info->peer), clen = cn ? strlen(cn) + 1 : 0;
	struct conn_proxied *p = malloc(sizeof(*p) + plen + 1 + clen);
	if (!p)
		return TERN_E_NOMEM;
	memcpy(p->text, info->peer, plen + 1);
	p->cn = NULL;
	if (cn) {
		memcpy(p->text + plen + 1, cn, clen);
		p->cn = p->text + plen + 1;
	}
	if (map64_put(&c->w->conn_state->proxied, key_of(c), p) != TERN_OK) {
		free(p);
		return TERN_E_NOMEM;
	}
	return TERN_OK;
}

/* Why c's header fails require_certificate, or NULL when it does not. */
static const char *certificate_missing(const struct proxy_info *info)
{
	if (info->cert_verified)
		return NULL;
	if (!info->tls)
		return "PROXY header without TLS, and require_certificate is set";
	if (info->verify != 0)
		return "PROXY header says the client certificate failed verification "
		       "(require_certificate)";
	return "PROXY header says the client presented no certificate (require_certificate)";
}

bool conn_proxy_header(struct conn *c, const uint8_t *data, size_t avail, size_t *used)
{
	const struct listener_cfg *cfg = c->listener->cfg;
	struct proxy_info info;
	char was[64];
	*used = 0;
	switch (proxy_parse(data, avail, cfg->proxy_protocol, used, &info)) {
	case PROXY_INCOMPLETE:
		*used = 0;
		return false;
	case PROXY_BAD:
		*used = 0;
		conn_close(c, TERN_RC_PROTOCOL_ERROR, "no valid PROXY protocol header");
		return false;
	case PROXY_OK:
		break;
	}
	conn_peer(c, was);
	/* Kept first, so that a refusal below is logged with the client's
	 * address rather than the proxy's. */
	c->proxy_done = true;
	if (keep(c, &info) != TERN_OK) {
		conn_close(c, TERN_RC_UNSPECIFIED, "out of memory");
		return false;
	}
	if (info.peer[0])
		log_write(&c->w->broker->log, LOG_TYPE_DEBUG,
		          "Connection from %s is client %s (PROXY protocol v%u).", was, info.peer,
		          cfg->proxy_protocol);
	if (cfg->proxy_v2_require_tls && !info.tls) {
		conn_close(c, TERN_RC_NOT_AUTHORIZED,
		           "PROXY header without TLS (proxy_protocol_v2_require_tls)");
		return false;
	}
	const char *missing = cfg->require_certificate ? certificate_missing(&info) : NULL;
	if (missing) {
		conn_close(c, TERN_RC_NOT_AUTHORIZED, missing);
		return false;
	}
	return true;
}

static const struct conn_proxied *proxied_of(const struct conn *c)
{
	if (!c->proxy_done || !c->listener || !c->listener->cfg->proxy_protocol)
		return NULL;
	return map64_get(&c->w->conn_state->proxied, key_of(c));
}

const char *conn_proxy_peer(const struct conn *c)
{
	const struct conn_proxied *p = proxied_of(c);
	return p && p->text[0] ? p->text : NULL;
}

const char *conn_proxy_identity(const struct conn *c)
{
	const struct conn_proxied *p = proxied_of(c);
	return p ? p->cn : NULL;
}

struct conn_proxied *conn_proxy_take(struct conn *c)
{
	if (!c->proxy_done || !c->listener->cfg->proxy_protocol)
		return NULL;
	return map64_del(&c->w->conn_state->proxied, key_of(c));
}

void conn_proxy_arrive(struct conn *c, struct conn_proxied *proxied)
{
	if (!proxied)
		return;
	/* When it cannot be kept the log shows the proxy's address, and a
	 * client whose CN was to be its username is refused at CONNECT:
	 * never someone else, never anonymous. */
	if (map64_put(&c->w->conn_state->proxied, key_of(c), proxied) != TERN_OK)
		free(proxied);
}

void conn_proxy_forget(struct conn *c)
{
	if (c->proxy_done && c->listener && c->listener->cfg->proxy_protocol)
		free(map64_del(&c->w->conn_state->proxied, key_of(c)));
}
