/*
 * conn_proxy.c - enable_proxy_protocol on a connection: the PROXY header
 * (proxy_proto.h) is read before the first MQTT byte, and the client's
 * address it gives stands for the socket's in the log and everywhere
 * conn_peer() is asked.
 *
 * The address is kept in the worker's map (conn_worker.proxied), not in
 * struct conn, so that connections of other listeners stay as small as
 * they are; a connection handed to another worker carries it in its inbox
 * item. The header must come whole within the CONNECT timeout, as the
 * CONNECT itself must.
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
	if (cfg->proxy_v2_require_tls && !info.tls) {
		conn_close(c, TERN_RC_NOT_AUTHORIZED,
		           "PROXY header without TLS (proxy_protocol_v2_require_tls)");
		return false;
	}
	conn_peer(c, was);
	c->proxy_done = true;
	if (info.peer[0]) {
		char *peer = strdup(info.peer);
		if (!peer || map64_put(&c->w->conn_state->proxied, key_of(c), peer) != TERN_OK) {
			free(peer);
			conn_close(c, TERN_RC_UNSPECIFIED, "out of memory");
			return false;
		}
		log_write(&c->w->broker->log, LOG_TYPE_DEBUG,
		          "Connection from %s is client %s (PROXY protocol v%u).", was, info.peer,
		          cfg->proxy_protocol);
	}
	return true;
}

const char *conn_proxy_peer(const struct conn *c)
{
	if (!c->proxy_done || !c->listener || !c->listener->cfg->proxy_protocol)
		return NULL;
	return map64_get(&c->w->conn_state->proxied, key_of(c));
}

char *conn_proxy_take(struct conn *c)
{
	if (!c->proxy_done || !c->listener->cfg->proxy_protocol)
		return NULL;
	return map64_del(&c->w->conn_state->proxied, key_of(c));
}

void conn_proxy_arrive(struct conn *c, char *peer)
{
	if (!peer)
		return;
	if (map64_put(&c->w->conn_state->proxied, key_of(c), peer) != TERN_OK)
		free(peer); /* the log shows the proxy's address then */
}

void conn_proxy_forget(struct conn *c)
{
	if (c->proxy_done && c->listener && c->listener->cfg->proxy_protocol)
		free(map64_del(&c->w->conn_state->proxied, key_of(c)));
}
