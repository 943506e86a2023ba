/*
 * handle_connect.c - CONNECT: checks, hand-over to the home worker,
 * session resume or takeover, CONNACK; and the takeover of a client id
 * another node of the cluster claimed (connect_cluster_taken()).
 *
 * Order of work: everything that can refuse the connection is checked on
 * the worker that accepted it, so a refusal never moves a connection. Then,
 * if the client id's home is another worker, the connection (fd and the
 * still-unconsumed CONNECT bytes) is handed over and the home worker decodes
 * the CONNECT again and runs this same code, which now finds itself home.
 * An assigned client identifier is drawn so that it hashes to the current
 * worker, which keeps that path local.
 *
 * A password is checked off the loop (auth.c): this function then returns
 * early, the CONNECT stays buffered, and it runs again when the verdict is
 * in; everything before the check must therefore be free of side effects.
 */
#include "broker/handlers.h"
#include "broker/mount.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/acl.h"
#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/cluster_link.h"
#include "broker/config.h"
#include "broker/session.h"
#include "broker/sink.h"
#include "broker/stats.h"
#include "broker/worker.h"
#include "cluster/cluster.h"
#include "tern/codec.h"
#include "util/log.h"
#include "util/map.h"
#include "util/msg.h"

/* The v3 return code standing for a v5 reason code in a refusal. */
static uint8_t v3_code(uint8_t reason)
{
	switch (reason) {
	case TERN_RC_UNSUPPORTED_PROTOCOL_VERSION:
		return TERN_V3_UNACCEPTABLE_VERSION;
	case TERN_RC_CLIENT_ID_NOT_VALID:
		return TERN_V3_IDENTIFIER_REJECTED;
	case TERN_RC_BAD_USERNAME_OR_PASSWORD:
		/* 3.1.1's 4 is for a user name or password that is "malformed"
		 * (table 3.1); a wrong one that parses is "not authorized", 5,
		 * which is also what mosquitto answers and its users test for.
		 * v5's 0x86 is defined for credentials the Server does not
		 * accept, so v5 keeps it. */
	case TERN_RC_NOT_AUTHORIZED:
	case TERN_RC_PACKET_TOO_LARGE: /* as mosquitto answers a too large will */
		return TERN_V3_NOT_AUTHORIZED;
	default:
		return TERN_V3_SERVER_UNAVAILABLE;
	}
}

/* What a refusal by auth_connect() says in the log and the reason string. */
static const char *auth_refusal(uint8_t rc)
{
	switch (rc) {
	case TERN_RC_BAD_USERNAME_OR_PASSWORD:
		return "bad username or password";
	case TERN_RC_SERVER_BUSY:
		return "too many password checks waiting";
	case TERN_RC_SERVER_UNAVAILABLE:
		return "out of memory";
	default:
		return "not authorized";
	}
}

/* Sends a refusing CONNACK (session present 0 [MQTT-3.2.2-6]) and closes. */
static void refuse(struct worker *w, struct sink *k, uint8_t reason, const char *why)
{
	struct tern_packet p = {.type = TERN_CONNACK};
	p.u.connack.reason = k->version == TERN_V5 ? reason : v3_code(reason);
	sink_reason_string(k, &p.u.connack.props, why);
	sink_answer(k, &p); /* closed below whatever the result */
	log_write(&w->broker->log, LOG_TYPE_NOTICE, "Client connection from %s refused: %s.",
	          sink_name(k, (char[64]){0}), why);
	sink_close(k, 0, NULL);
}

void connect_refuse_decoded(struct worker *w, struct sink *k, enum tern_err err,
                            const uint8_t *body, size_t len)
{
	/* Peek at the protocol name and level. */
	uint8_t level = 0;
	bool named = false;
	if (len >= 2) {
		size_t nlen = ((size_t)body[0] << 8) | body[1];
		if (len > 2 + nlen)
			level = body[2 + nlen];
		named = (nlen == 4 && len >= 6 && memcmp(body + 2, "MQTT", 4) == 0) ||
		        (nlen == 6 && len >= 8 && memcmp(body + 2, "MQIsdp", 6) == 0);
	}
	if (err == TERN_E_UNSUPPORTED_VERSION && named) {
		/* [MQTT-3.1.2-2]: CONNACK 0x01 (v3 form), or 0x84 for a v5
		 * client whose CONNECT names a level we do not speak. */
		k->version = level == TERN_V5 ? TERN_V5 : TERN_V311;
		k->problem_info = false;
		refuse(w, k, TERN_RC_UNSUPPORTED_PROTOCOL_VERSION, "unsupported protocol version");
		return;
	}
	/* Any other bad CONNECT, or a protocol name that is not MQTT's, closes
	 * the connection without a CONNACK: the Server MAY disconnect on an
	 * unknown protocol name [MQTT-3.1.2-1], and MAY (not must) answer a
	 * malformed v5 CONNECT with a CONNACK (section 4.13.1). A client that
	 * does not speak the protocol could not read the CONNACK anyway, and
	 * mosquitto closes silently in both cases, which clients and tests
	 * (mosquitto's sequence data) expect. The log says why. */
	log_write(&w->broker->log, LOG_TYPE_NOTICE, "Client connection from %s closed: %s (%s).",
	          sink_name(k, (char[64]){0}),
	          err == TERN_E_UNSUPPORTED_VERSION ? "unknown protocol name" : "malformed CONNECT",
	          tern_strerror(err));
	sink_close(k, 0, NULL);
}

/* Draws a client id that is home on this worker: the prefix and 16 hex
 * digits. The digits are SipHash-2-4, under the per-process secret key, of
 * a fresh counter value: a client can neither guess the id another client
 * was given (and take its session over) nor get, after a restart, the id of
 * a session the store kept. An id that names a session this worker already
 * has (one in 2^64) is drawn again. */
static void assign_client_id(struct worker *w, const char *prefix, char out[64])
{
	struct broker *b = w->broker;
	for (;;) {
		uint64_t n = broker_new_id(b);
		uint64_t r = siphash24(&b->hash_key, &n, sizeof(n));
		int len = snprintf(out, 64, "%s%016llx", prefix, (unsigned long long)r);
		if (broker_home_of(b, (const uint8_t *)out, (size_t)len) == w->id &&
		    !session_find(w, (const uint8_t *)out, (size_t)len))
			return;
	}
}

static void connect_on_home(struct worker *w, struct sink *k, const struct tern_connect *p,
                            struct tern_bytes cid, bool assigned, struct tern_bytes user);

void handle_connect(struct worker *w, struct sink *k, const struct tern_connect *p)
{
	const struct config *cfg = &w->broker->cfg;
	k->version = p->version;
	k->bridge = p->bridge;
	/* A Reason String goes on a refusing CONNACK or a DISCONNECT only when
	 * the client asked for problem information in so many words. The
	 * Server MAY send one when the property is absent (its value is then 1,
	 * 3.1.2.11.7) and whatever its value on CONNACK and DISCONNECT
	 * [MQTT-3.1.2-29]; mosquitto never does, and clients and tests that
	 * compare those packets byte for byte (mosquitto's sequence data) rely
	 * on the short form. The reason is always in the log. */
	k->problem_info = p->version == TERN_V5 &&
	                  (p->props.present & TERN_PROP_BIT(TERN_PROP_REQUEST_PROBLEM_INFO)) &&
	                  p->props.request_problem_info;

	const struct listener_cfg *lc = &cfg->listeners[k->listener];
	if (!k->internal && (lc->refused_versions & (1u << p->version))) {
		/* accept_protocol_versions (mosquitto 2.1): as a level we do
		 * not speak [MQTT-3.1.2-2]. */
		refuse(w, k, TERN_RC_UNSUPPORTED_PROTOCOL_VERSION,
		       "protocol version not accepted on this listener (accept_protocol_versions)");
		return;
	}
	struct tern_bytes cid = p->client_id;
	char idbuf[64];
	bool assigned = false;
	const struct security_cfg *sec = config_security(cfg, k->listener);
	if (cid.len == 0) {
		if (!sec->allow_zero_length_clientid) {
			refuse(w, k, TERN_RC_CLIENT_ID_NOT_VALID,
			       "empty client id (allow_zero_length_clientid false)");
			return;
		}
		if (p->version == TERN_V31) {
			/* 3.1 requires 1 to 23 characters. */
			refuse(w, k, TERN_RC_CLIENT_ID_NOT_VALID, "empty client id (MQTT 3.1)");
			return;
		}
		if (p->version == TERN_V311 && !p->clean_start) {
			/* [MQTT-3.1.3-8] */
			refuse(w, k, TERN_RC_CLIENT_ID_NOT_VALID,
			       "empty client id needs clean session");
			return;
		}
		assign_client_id(w, config_auto_id_prefix(cfg, k->listener), idbuf);
		cid = (struct tern_bytes){(const uint8_t *)idbuf, (uint32_t)strlen(idbuf)};
		assigned = true;
	}
	size_t plen = strlen(cfg->clientid_prefixes);
	if (!k->internal && plen &&
	    (cid.len < plen || memcmp(cid.data, cfg->clientid_prefixes, plen) != 0)) {
		refuse(w, k, TERN_RC_NOT_AUTHORIZED, "client id without clientid_prefixes");
		return;
	}
	if (p->will && p->will_qos > config_max_qos(cfg, k->listener)) {
		/* [MQTT-3.2.2-12]: v5 CONNACK 0x9B. 3.1.1 has no word for it:
		 * closed without a CONNACK, as mosquitto does. */
		if (p->version == TERN_V5) {
			refuse(w, k, TERN_RC_QOS_NOT_SUPPORTED, "will QoS above max_qos");
		} else {
			log_write(&w->broker->log, LOG_TYPE_NOTICE,
			          "Client connection from %s refused: will QoS above max_qos.",
			          sink_name(k, (char[64]){0}));
			sink_close(k, 0, NULL);
		}
		return;
	}
	if (p->version == TERN_V5 && (p->props.present & TERN_PROP_BIT(TERN_PROP_AUTH_METHOD))) {
		/* No enhanced authentication method is configured
		 * [MQTT-4.12.0-1]. */
		refuse(w, k, TERN_RC_BAD_AUTHENTICATION_METHOD,
		       "authentication method not supported");
		return;
	}
	struct tern_bytes user = {0};
	uint8_t rc;
	const char *why;
	if (k->ops->authenticate(k, p, &user, &rc, &why) == TERN_E_INCOMPLETE)
		return; /* handled again once the password is checked */
	if (rc) {
		refuse(w, k, rc, why ? why : auth_refusal(rc));
		return;
	}
	if (!k->internal && lc->use_username_as_clientid) {
		/* The username (checked above) stands for the client id, so
		 * that one client cannot take over another's session by its
		 * id, as in mosquitto. */
		if (!user.data) {
			refuse(w, k, TERN_RC_NOT_AUTHORIZED,
			       "no username for use_username_as_clientid");
			return;
		}
		cid = user;
		assigned = false;
	}
	/* mount_point: the will goes under the listener's prefix, and the
	 * ACL reads the whole topic (mount.h). */
	struct tern_bytes will_topic = p->will_topic;
	const char *mount = mount_of(w, k);
	if (p->will && mount && mount_join(w, mount, p->will_topic, false, &will_topic)) {
		refuse(w, k, TERN_RC_TOPIC_NAME_INVALID, "will topic too long under mount_point");
		return;
	}
	if (p->will && !auth_allowed(w, k->listener, cid.data, cid.len, user.data, user.len,
	                             user.data != NULL, will_topic, ACL_WRITE)) {
		/* The will is a publish to its topic: the ACL applies to it. */
		refuse(w, k, TERN_RC_NOT_AUTHORIZED, "will topic not allowed by the ACL");
		return;
	}
	if (p->will && cfg->message_size_limit && p->will_payload.len > cfg->message_size_limit) {
		/* A will is a message like any other: one over the limit
		 * would be refused when published, so the CONNECT that carries
		 * it is refused (as mosquitto does: 3.1.1 CONNACK 5, v5
		 * 0x95). */
		refuse(w, k, TERN_RC_PACKET_TOO_LARGE, "will payload over message_size_limit");
		return;
	}
	if (p->version != TERN_V5 && p->keep_alive > cfg->max_keepalive) {
		/* A v3 client cannot be told another keep-alive; refuse as
		 * mosquitto does. */
		refuse(w, k, TERN_RC_CLIENT_ID_NOT_VALID, "keep alive above max_keepalive");
		return;
	}
	if (p->will && topic_too_deep(w->broker, will_topic)) {
		refuse(w, k,
		       p->version == TERN_V5 ? TERN_RC_TOPIC_NAME_INVALID : TERN_RC_NOT_AUTHORIZED,
		       "will topic has too many levels");
		return;
	}
	if (p->will && p->will_retain && !cfg->retain_available) {
		/* [MQTT-3.2.2-12] */
		refuse(w, k,
		       p->version == TERN_V5 ? TERN_RC_RETAIN_NOT_SUPPORTED
		                             : TERN_RC_NOT_AUTHORIZED,
		       "retained will but retain is not available");
		return;
	}
	/* An assigned id was drawn to hash to this worker (assign_client_id). */
	unsigned home = assigned ? w->id : broker_home_of(w->broker, cid.data, cid.len);
	if (home != w->id) {
		k->ops->hand_over(k, home);
		return;
	}
	connect_on_home(w, k, p, cid, assigned, user);
}

/* Sends the CONNACK; returns sink_send()'s result. TERN_E_TOO_LARGE when
 * it cannot be sent because it is larger than the client's Maximum Packet
 * Size even without reason string and user properties (conn_send() drops
 * those first [MQTT-3.2.2-19] [MQTT-3.2.2-20]): the server must not send it
 * [MQTT-3.1.2-24], and a client left without CONNACK would only wait, so
 * the caller closes. The other errors have closed k already, or found it
 * closed. */
static TERN_MUST_CHECK enum tern_err send_connack(const struct config *cfg, struct sink *k,
                                                  const struct tern_connect *p, bool present,
                                                  struct tern_bytes cid, bool assigned)
{
	struct tern_packet ack = {.type = TERN_CONNACK};
	/* Session present is 0 for 3.1, which has no such flag. */
	ack.u.connack.session_present = present && k->version != TERN_V31;
	ack.u.connack.reason = TERN_RC_SUCCESS;
	if (k->version == TERN_V5) {
		struct tern_props *pr = &ack.u.connack.props;
		if (assigned) {
			/* [MQTT-3.2.2-16] */
			pr->present |= TERN_PROP_BIT(TERN_PROP_ASSIGNED_CLIENT_ID);
			pr->assigned_client_id = cid;
		}
		if (k->keep_alive != p->keep_alive) {
			/* The client must use this value [MQTT-3.2.2-21]. */
			pr->present |= TERN_PROP_BIT(TERN_PROP_SERVER_KEEP_ALIVE);
			pr->server_keep_alive = k->keep_alive;
		}
		if (cfg->max_inflight_messages < 65535) {
			pr->present |= TERN_PROP_BIT(TERN_PROP_RECEIVE_MAXIMUM);
			pr->receive_maximum = (uint16_t)cfg->max_inflight_messages;
		}
		if (cfg->max_packet_size) {
			pr->present |= TERN_PROP_BIT(TERN_PROP_MAXIMUM_PACKET_SIZE);
			pr->maximum_packet_size = cfg->max_packet_size;
		}
		if (k->alias_max) {
			pr->present |= TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS_MAXIMUM);
			pr->topic_alias_maximum = k->alias_max;
		}
		if (!cfg->retain_available) {
			pr->present |= TERN_PROP_BIT(TERN_PROP_RETAIN_AVAILABLE);
			pr->retain_available = 0;
		}
		uint8_t max_qos = config_max_qos(cfg, k->listener);
		if (max_qos < 2) {
			/* [MQTT-3.2.2-9]: the client must not send above it. */
			pr->present |= TERN_PROP_BIT(TERN_PROP_MAXIMUM_QOS);
			pr->maximum_qos = max_qos;
		}
	}
	return sink_send(k, &ack);
}

struct session *connect_take_over(struct worker *w, struct session *s, struct tern_bytes cid)
{
	struct sink *old = session_sink(s);
	if (!old)
		return s;
	/* Takeover: the existing connection is closed [MQTT-3.1.4-3], with
	 * DISCONNECT 0x8E for v5. Its will follows the usual rules, and a
	 * session with expiry 0 ends with it (so s is looked up again). */
	sink_close(old, TERN_RC_SESSION_TAKEN_OVER, "session taken over");
	handle_detach(old);
	return session_find(w, cid.data, cid.len);
}

void connect_cluster_taken(struct worker *w, struct tern_bytes cid, uint64_t stamp, bool tie_wins,
                           bool clean)
{
	struct session *s = session_find(w, cid.data, cid.len);
	/* A newer claim of ours (made after this node heard of the other
	 * one, or at nearly the same time with a later clock) keeps it: the
	 * other node gives way when it hears of ours. */
	struct broker *b = w->broker;
	if (!s || !session_claim_older(s, stamp, tie_wins)) {
		if (s)
			log_write(&b->log, LOG_TYPE_DEBUG,
			          "Client %.*s stays: its claim is newer than another node's.",
			          (int)cid.len, (const char *)cid.data);
		return;
	}
	bool online = session_sink(s) != NULL;
	log_write(&b->log, b->cfg.connection_messages ? LOG_TYPE_NOTICE : 0,
	          "Client %.*s %s: taken over by another node of the cluster.", (int)cid.len,
	          (const char *)cid.data, online ? "disconnected" : "session ended");
	/* As a local takeover: the connection goes with 0x8E and its will
	 * follows the usual rules (at once with no Will Delay Interval).
	 * A will still pending is cancelled, as the new connection's attach
	 * cancels it on one node: the client is connected again, on the
	 * other node, before its delay passed [MQTT-3.1.3-9]. Then the
	 * session goes here; its durable queues stay for the new node, which
	 * deletes them itself on a clean start. */
	s = connect_take_over(w, s, cid);
	if (s) {
		session_will_cancel(s);
		session_destroy_moved(s, clean);
	}
	if (b->cluster)
		cluster_taken(b->cluster);
}

static void connect_on_home(struct worker *w, struct sink *k, const struct tern_connect *p,
                            struct tern_bytes cid, bool assigned, struct tern_bytes user)
{
	struct broker *b = w->broker;
	const struct config *cfg = &b->cfg;

	struct session *s = session_find(w, cid.data, cid.len);
	if (s)
		s = connect_take_over(w, s, cid);
	/* Timers run on a tick: what fell due since then happens now, so an
	 * expired session is not resumed [MQTT-3.1.2-23] and an overdue will
	 * is published, not cancelled [MQTT-3.1.2-8]. */
	if (s && !session_sink(s) && session_tick(s, w->now))
		s = NULL;
	bool present = false;
	if (!s && !p->clean_start && b->cluster && k->ops->session_lookup) {
		/* Another node may hold the session, or have held it: its
		 * record says what to resume. Without an answer the CONNECT
		 * is refused rather than given a new session: session
		 * present 0 would tell the client to drop the state it
		 * keeps [MQTT-3.2.2-2], and the new session's record would
		 * then overwrite the one the cluster still has. */
		uint8_t *rec = NULL;
		size_t rec_len = 0;
		enum tern_err err = k->ops->session_lookup(k, cid, &rec, &rec_len);
		if (err == TERN_E_INCOMPLETE)
			return; /* handled again once the record is in */
		if (err) {
			refuse(w, k, TERN_RC_SERVER_UNAVAILABLE,
			       "the cluster's sessions could not be read");
			return;
		}
		if (rec) {
			s = session_from_record(w, cid, rec, rec_len, &err);
			free(rec);
			if (!s && err) {
				refuse(w, k, TERN_RC_SERVER_UNAVAILABLE,
				       err == TERN_E_NOMEM
				               ? "out of memory"
				               : "the session's record is not readable");
				return;
			}
			if (s)
				session_durable_bind(s);
		}
	}
	if (s && p->clean_start) {
		/* Clean start discards the existing session [MQTT-3.1.2-4]. */
		session_destroy(s);
		s = NULL;
	}
	/* ... wherever in the cluster it was: its durable queues go too,
	 * before this session makes any. */
	if (p->clean_start)
		cluster_link_forget(w, cid);
	if (s) {
		present = true; /* [MQTT-3.2.2-2] / [MQTT-3.2.2-3] */
	} else {
		if (atomic_load_explicit(&b->over_memory, memory_order_relaxed)) {
			/* memory_limit: no new session (v5 0x97, 3.1.1 server
			 * unavailable); a session kept here resumes. */
			refuse(w, k, TERN_RC_QUOTA_EXCEEDED, "over memory_limit");
			return;
		}
		if (cfg->global_max_clients >= 0 &&
		    stats_sum(b, STAT_SESSIONS) >= (uint64_t)cfg->global_max_clients) {
			/* mosquitto 2.1's bound on sessions, online or kept:
			 * v5 0x89, 3.1.1 server unavailable. */
			refuse(w, k, TERN_RC_SERVER_BUSY, "global_max_clients reached");
			return;
		}
		s = session_new(w, cid.data, cid.len, p->version);
		if (!s || session_register(w, s)) {
			free(s);
			refuse(w, k, TERN_RC_SERVER_UNAVAILABLE, "out of memory");
			return;
		}
	}
	uint32_t expiry;
	if (p->version == TERN_V5)
		expiry = (p->props.present & TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY))
		                 ? p->props.session_expiry
		                 : 0;
	else
		expiry = p->clean_start ? 0 : UINT32_MAX;
	/* persistent_client_expiration bounds sessions that would otherwise
	 * never expire, as in mosquitto. */
	if (expiry == UINT32_MAX && cfg->persistent_client_expiration)
		expiry = cfg->persistent_client_expiration;
	/* A pending will is cancelled [MQTT-3.1.3-9]; the session is stored
	 * from now on, or (a stored session resumed with expiry 0, which ends
	 * at disconnect) no longer. */
	if (session_attach(s, k, p->version, user, expiry)) {
		refuse(w, k, TERN_RC_SERVER_UNAVAILABLE, "out of memory");
		return;
	}
	/* The client id is this node's in the cluster from now on
	 * [MQTT-3.1.4-3]: a node that holds it hears of the claim and lets
	 * its connection go. */
	session_claim_set(s, cluster_link_claim(w, cid, p->clean_start));

	k->keep_alive = p->keep_alive;
	if (p->version == TERN_V5 && cfg->max_keepalive < 65535 &&
	    (p->keep_alive == 0 || p->keep_alive > cfg->max_keepalive))
		k->keep_alive = cfg->max_keepalive;
	k->send_quota_max = 65535;
	if (p->version == TERN_V5) {
		const struct tern_props *pr = &p->props;
		if (pr->present & TERN_PROP_BIT(TERN_PROP_RECEIVE_MAXIMUM))
			k->send_quota_max = pr->receive_maximum;
		if (pr->present & TERN_PROP_BIT(TERN_PROP_MAXIMUM_PACKET_SIZE))
			k->client_max_packet = pr->maximum_packet_size;
		k->alias_max = cfg->max_topic_alias;
		/* Aliases for what we send: as many as the client accepts
		 * [MQTT-3.3.2-11], at most max_topic_alias_broker. */
		if (pr->present & TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS_MAXIMUM))
			k->alias_out_max = pr->topic_alias_maximum < cfg->max_topic_alias_broker
			                           ? pr->topic_alias_maximum
			                           : cfg->max_topic_alias_broker;
	}
	struct tern_bytes will_topic = p->will_topic;
	const char *mount = mount_of(w, k);
	if (p->will && mount && mount_join(w, mount, p->will_topic, false, &will_topic)) {
		refuse(w, k, TERN_RC_SERVER_UNAVAILABLE, "out of memory");
		return;
	}
	if (p->will) {
		k->will = msg_new(will_topic, p->will_payload, p->will_qos, p->will_retain,
		                  p->version == TERN_V5 ? &p->will_props : NULL, session_id(s),
		                  w->now);
		if (!k->will) {
			refuse(w, k, TERN_RC_SERVER_UNAVAILABLE, "out of memory");
			return;
		}
		if (p->version == TERN_V5 &&
		    (p->will_props.present & TERN_PROP_BIT(TERN_PROP_WILL_DELAY)))
			k->will_delay = p->will_props.will_delay;
		/* The will's Message Expiry Interval counts from when it is
		 * published (section 3.1.3.2.4), not from CONNECT. */
		k->will->expire_at = 0;
		k->will_has_expiry =
		        p->version == TERN_V5 &&
		        (p->will_props.present & TERN_PROP_BIT(TERN_PROP_MESSAGE_EXPIRY));
		k->will_expiry = p->will_props.message_expiry;
	}
	k->ops->accept(k);
	if (send_connack(cfg, k, p, present, cid, assigned) == TERN_E_TOO_LARGE) {
		/* Not connected, so no will: the client never learnt it was
		 * accepted. The session stays as the CONNECT made it. */
		k->will_suppressed = true;
		log_write(&b->log, LOG_TYPE_NOTICE,
		          "Client %.*s [%s] closed: CONNACK exceeds its Maximum Packet Size "
		          "of %u.",
		          (int)cid.len, (const char *)cid.data, sink_name(k, (char[64]){0}),
		          k->client_max_packet);
		sink_close(k, 0, NULL);
		return;
	}
	/* As mosquitto prints it, with u'name' when there is a username. */ bool named =
	        user.data != NULL;
	log_write(&b->log, cfg->connection_messages ? LOG_TYPE_NOTICE : 0,
	          "New client connected from %s as %.*s (p%u, c%u, k%u%s%.*s%s).",
	          sink_name(k, (char[64]){0}), (int)cid.len, (const char *)cid.data, p->version,
	          p->clean_start ? 1u : 0u, k->keep_alive, named ? ", u'" : "",
	          named ? (int)user.len : 0, named ? (const char *)user.data : "",
	          named ? "'" : "");
	/* The cluster's record of the session: online, with the will that
	 * goes if this node dies with the connection. */
	session_cluster_write(s, NULL);
	if (present)
		session_resume(s);
}
