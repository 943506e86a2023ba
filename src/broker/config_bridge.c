/*
 * config_bridge.c - the bridge directives of mosquitto.conf; see
 * config_bridge.h.
 *
 * Kept out of config.c's table because a bridge directive writes into the
 * bridge that the last `connection` line opened, not into struct config or
 * a listener, and because `topic` and `address` take more than a value
 * (several words, prefixes, host:port). config.c hands every line its own
 * table does not know to config_bridge_apply() before it calls the
 * directive unknown. Values are checked as strictly as mosquitto checks them
 * (a boolean is "true" or "false", a number a whole number in range), and a
 * bridge directive before any `connection` is an error, as in mosquitto.
 */
#include "broker/config_bridge.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/codec.h"

static TERN_MUST_CHECK enum tern_err why_fail(char *why, size_t len, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static TERN_MUST_CHECK enum tern_err why_fail(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return TERN_E_CONFIG;
}

static TERN_MUST_CHECK enum tern_err parse_bool(const char *key, const char *v, bool *out,
                                                char *why, size_t len)
{
	if (v && strcmp(v, "true") == 0)
		*out = true;
	else if (v && strcmp(v, "false") == 0)
		*out = false;
	else
		return why_fail(why, len, "%s: expected true or false", key);
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err parse_num(const char *key, const char *v, uint64_t min,
                                               uint64_t max, uint64_t *out, char *why, size_t len)
{
	if (!v || !*v || *v == '-' || *v == '+')
		return why_fail(why, len, "%s: expected a number", key);
	errno = 0;
	char *end = NULL;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || *end || n < min || n > max)
		return why_fail(why, len, "%s: expected a whole number from %llu to %llu", key,
		                (unsigned long long)min, (unsigned long long)max);
	*out = n;
	return TERN_OK;
}

/* Copies v into dst[size]; "" written as two quotes is the empty string,
 * mosquitto's place marker. */
static TERN_MUST_CHECK enum tern_err copy_word(const char *key, const char *v, char *dst,
                                               size_t size, bool empty_ok, char *why, size_t len)
{
	if (!v)
		return why_fail(why, len, "%s: missing value", key);
	if (strcmp(v, "\"\"") == 0)
		v = "";
	if (!*v && !empty_ok)
		return why_fail(why, len, "%s: empty value", key);
	if (strlen(v) >= size)
		return why_fail(why, len, "%s: value longer than %zu bytes", key, size - 1);
	strcpy(dst, v);
	return TERN_OK;
}

static bool has_wildcard(const char *s)
{
	return strchr(s, '+') || strchr(s, '#');
}

/* One host[:port] word into a; an IPv6 address needs its port (mosquitto
 * splits at the last colon), and may be written in brackets. */
static TERN_MUST_CHECK enum tern_err parse_address(struct bridge_address *a, const char *key,
                                                   const char *word, char *why, size_t len)
{
	const char *colon = strrchr(word, ':');
	size_t hlen = colon ? (size_t)(colon - word) : strlen(word);
	if (hlen == 0 || hlen >= sizeof(a->host))
		return why_fail(why, len, "%s: bad host in '%s'", key, word);
	a->port = BRIDGE_DEFAULT_PORT;
	if (colon) {
		uint64_t port = 0;
		enum tern_err err = parse_num(key, colon + 1, 1, 65535, &port, why, len);
		if (err)
			return err;
		a->port = (uint16_t)port;
	}
	memcpy(a->host, word, hlen);
	a->host[hlen] = '\0';
	/* "[::1]:1883": the brackets are not part of the address. */
	if (a->host[0] == '[' && hlen > 2 && a->host[hlen - 1] == ']') {
		memmove(a->host, a->host + 1, hlen - 2);
		a->host[hlen - 2] = '\0';
	}
	return TERN_OK;
}

/* address host[:port] [host[:port]]...: each line adds its addresses, in
 * order; the first is the main one unless round_robin (bridge.c). */
static TERN_MUST_CHECK enum tern_err set_address(struct bridge_cfg *br, const char *key,
                                                 const char *const *arg, int n, char *why,
                                                 size_t len)
{
	if (n < 1)
		return why_fail(why, len, "%s: expected host[:port]", key);
	for (int i = 0; i < n; i++) {
		if (br->n_addresses == MAX_BRIDGE_ADDRESSES)
			return why_fail(why, len, "%s: more than %d addresses", key,
			                MAX_BRIDGE_ADDRESSES);
		enum tern_err err =
		        parse_address(&br->addresses[br->n_addresses], key, arg[i], why, len);
		if (err)
			return err;
		br->n_addresses++;
	}
	return TERN_OK;
}

/* topic PATTERN [out|in|both [QOS [LOCAL-PREFIX REMOTE-PREFIX]]], with the
 * validity table of mosquitto.conf(5): an empty pattern needs both
 * prefixes; prefixes hold no wildcard; a prefix joined to the pattern must
 * make a valid filter. */
static TERN_MUST_CHECK enum tern_err set_topic(struct bridge_cfg *br, const char *key,
                                               const char *const *arg, int n, char *why, size_t len)
{
	if (n < 1)
		return why_fail(why, len, "%s: expected a pattern", key);
	if (n == 4)
		return why_fail(why, len, "%s: a local prefix needs a remote prefix", key);
	if (br->n_topics == MAX_BRIDGE_TOPICS)
		return why_fail(why, len, "%s: more than %d topics in one connection", key,
		                MAX_BRIDGE_TOPICS);
	struct bridge_topic t = {.dir = BRIDGE_OUT, .qos = 0};
	enum tern_err err;
	if ((err = copy_word(key, arg[0], t.pattern, sizeof(t.pattern), true, why, len)))
		return err;
	if (n >= 2) {
		if (strcmp(arg[1], "out") == 0)
			t.dir = BRIDGE_OUT;
		else if (strcmp(arg[1], "in") == 0)
			t.dir = BRIDGE_IN;
		else if (strcmp(arg[1], "both") == 0)
			t.dir = BRIDGE_BOTH;
		else
			return why_fail(why, len, "%s: direction must be in, out or both", key);
	}
	if (n >= 3) {
		uint64_t q = 0;
		if ((err = parse_num(key, arg[2], 0, 2, &q, why, len)))
			return err;
		t.qos = (uint8_t)q;
	}
	if (n >= 5) {
		if ((err = copy_word(key, arg[3], t.local_prefix, sizeof(t.local_prefix), true, why,
		                     len)) ||
		    (err = copy_word(key, arg[4], t.remote_prefix, sizeof(t.remote_prefix), true,
		                     why, len)))
			return err;
	}
	if (has_wildcard(t.local_prefix) || has_wildcard(t.remote_prefix))
		return why_fail(why, len, "%s: a prefix may not contain + or #", key);
	if (!t.pattern[0] && (!t.local_prefix[0] || !t.remote_prefix[0]))
		return why_fail(why, len, "%s: an empty pattern needs a local and a remote prefix",
		                key);
	char full[BRIDGE_PREFIX_MAX + BRIDGE_TOPIC_MAX];
	const char *prefixes[2] = {t.local_prefix, t.remote_prefix};
	for (int i = 0; i < 2; i++) {
		snprintf(full, sizeof(full), "%s%s", prefixes[i], t.pattern);
		if (tern_topic_filter_check((const uint8_t *)full, strlen(full)) != TERN_OK ||
		    strncmp(full, "$share/", 7) == 0)
			return why_fail(why, len, "%s: '%s' is not a valid topic filter", key,
			                full);
	}
	br->topics[br->n_topics++] = t;
	return TERN_OK;
}

/* restart_timeout CONSTANT, or restart_timeout BASE CAP. */
static TERN_MUST_CHECK enum tern_err set_restart(struct bridge_cfg *br, const char *key,
                                                 const char *const *arg, int n, char *why,
                                                 size_t len)
{
	uint64_t base = 0, cap = 0;
	enum tern_err err;
	if (n < 1 || n > 2)
		return why_fail(why, len, "%s: expected a constant, or a base and a cap", key);
	if ((err = parse_num(key, arg[0], 1, 86400, &base, why, len)))
		return err;
	if (n == 2) {
		if ((err = parse_num(key, arg[1], 1, 86400, &cap, why, len)))
			return err;
		if (cap < base)
			return why_fail(why, len, "%s: the cap is below the base", key);
	}
	br->restart_base = (uint32_t)base;
	br->restart_cap = (uint32_t)cap;
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_version(struct bridge_cfg *br, const char *key,
                                                 const char *v, char *why, size_t len)
{
	if (v && strcmp(v, "mqttv31") == 0)
		br->protocol_version = TERN_V31;
	else if (v && strcmp(v, "mqttv311") == 0)
		br->protocol_version = TERN_V311;
	else if (v && strcmp(v, "mqttv50") == 0)
		br->protocol_version = TERN_V5;
	else
		return why_fail(why, len, "%s: expected mqttv31, mqttv311 or mqttv50", key);
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err open_connection(struct bridge_cfg *bridges, size_t *n_bridges,
                                                     const char *key, const char *const *arg, int n,
                                                     char *why, size_t len)
{
	if (n != 1)
		return why_fail(why, len, "%s: expected a name", key);
	if (*n_bridges == MAX_BRIDGES)
		return why_fail(why, len, "%s: more than %d bridges", key, MAX_BRIDGES);
	struct bridge_cfg *br = &bridges[*n_bridges];
	memset(br, 0, sizeof(*br));
	enum tern_err err = copy_word(key, arg[0], br->name, sizeof(br->name), false, why, len);
	if (err)
		return err;
	/* mosquitto's defaults. */
	br->protocol_version = TERN_V311;
	br->keepalive = 60;
	br->try_private = true;
	br->restart_base = BRIDGE_RESTART_BASE_S;
	br->restart_cap = BRIDGE_RESTART_CAP_S;
	br->notifications = true;
	br->threshold = BRIDGE_THRESHOLD;
	br->idle_timeout = BRIDGE_IDLE_TIMEOUT_S;
	br->local_cleansession = -1;
	br->attempt_unsubscribe = true;
	br->outgoing_retain = true;
	(*n_bridges)++;
	return TERN_OK;
}

/* start_type automatic|lazy|once. */
static TERN_MUST_CHECK enum tern_err set_start_type(struct bridge_cfg *br, const char *key,
                                                    const char *v, char *why, size_t len)
{
	if (strcmp(v, "automatic") == 0)
		br->start_type = BRIDGE_START_AUTOMATIC;
	else if (strcmp(v, "lazy") == 0)
		br->start_type = BRIDGE_START_LAZY;
	else if (strcmp(v, "once") == 0)
		br->start_type = BRIDGE_START_ONCE;
	else
		return why_fail(why, len, "%s: expected automatic, lazy or once", key);
	return TERN_OK;
}

/* bridge_tls_version: the lowest version offered, as mosquitto's bridges
 * take it; libtern offers nothing below TLS 1.2. */
static TERN_MUST_CHECK enum tern_err set_tls_version(struct bridge_cfg *br, const char *key,
                                                     const char *v, char *why, size_t len)
{
	if (strcmp(v, "tlsv1.2") == 0)
		br->tls_version = 0x0303;
	else if (strcmp(v, "tlsv1.3") == 0)
		br->tls_version = 0x0304;
	else if (strcmp(v, "tlsv1.1") == 0 || strcmp(v, "tlsv1") == 0)
		return why_fail(why, len,
		                "%s: %s is not offered (TLS 1.2 is ternd's minimum, as it is "
		                "for its listeners)",
		                key, v);
	else
		return why_fail(why, len, "%s: expected tlsv1.2 or tlsv1.3", key);
	return TERN_OK;
}

/* The single-valued directives of mosquitto 1.x / 2.x added after the
 * first part, one value each (checked by the caller). */
static TERN_MUST_CHECK enum tern_err set_more(struct bridge_cfg *br, const char *key, const char *v,
                                              char *why, size_t len)
{
	uint64_t num = 0;
	enum tern_err err;
	bool b = false;
	if (strcmp(key, "notifications_local_only") == 0)
		return parse_bool(key, v, &br->notifications_local_only, why, len);
	if (strcmp(key, "round_robin") == 0)
		return parse_bool(key, v, &br->round_robin, why, len);
	if (strcmp(key, "bridge_attempt_unsubscribe") == 0)
		return parse_bool(key, v, &br->attempt_unsubscribe, why, len);
	if (strcmp(key, "bridge_outgoing_retain") == 0)
		return parse_bool(key, v, &br->outgoing_retain, why, len);
	if (strcmp(key, "bridge_insecure") == 0)
		return parse_bool(key, v, &br->tls_insecure, why, len);
	if (strcmp(key, "bridge_tls_use_os_certs") == 0)
		return parse_bool(key, v, &br->tls_use_os_certs, why, len);
	if (strcmp(key, "local_cleansession") == 0) {
		if ((err = parse_bool(key, v, &b, why, len)))
			return err;
		br->local_cleansession = b;
		return TERN_OK;
	}
	if (strcmp(key, "start_type") == 0)
		return set_start_type(br, key, v, why, len);
	if (strcmp(key, "threshold") == 0) {
		if ((err = parse_num(key, v, 1, UINT32_MAX, &num, why, len)))
			return err;
		br->threshold = (uint32_t)num;
		return TERN_OK;
	}
	if (strcmp(key, "idle_timeout") == 0) {
		if ((err = parse_num(key, v, 1, 86400 * 365, &num, why, len)))
			return err;
		br->idle_timeout = (uint32_t)num;
		return TERN_OK;
	}
	if (strcmp(key, "bridge_max_packet_size") == 0) {
		/* 0: none; else at least a PUBLISH's fixed header and a topic. */
		if ((err = parse_num(key, v, 0, 268435460, &num, why, len)))
			return err;
		if (num && num < 5)
			return why_fail(why, len, "%s: 0, or 5 bytes or more", key);
		br->max_packet_size = (uint32_t)num;
		return TERN_OK;
	}
	if (strcmp(key, "bridge_receive_maximum") == 0) {
		if ((err = parse_num(key, v, 1, 65535, &num, why, len)))
			return err;
		br->receive_maximum = (uint16_t)num;
		return TERN_OK;
	}
	if (strcmp(key, "bridge_session_expiry_interval") == 0) {
		if ((err = parse_num(key, v, 0, UINT32_MAX, &num, why, len)))
			return err;
		br->has_session_expiry = true;
		br->session_expiry = (uint32_t)num;
		return TERN_OK;
	}
	if (strcmp(key, "local_clientid") == 0) {
		if ((err = copy_word(key, v, br->local_clientid, sizeof(br->local_clientid), false,
		                     why, len)))
			return err;
		if (!tern_utf8_name_valid((const uint8_t *)v, strlen(v)))
			return why_fail(why, len, "%s: not valid UTF-8", key);
		return TERN_OK;
	}
	if (strcmp(key, "local_username") == 0)
		return copy_word(key, v, br->local_username, sizeof(br->local_username), false, why,
		                 len);
	if (strcmp(key, "local_password") == 0) {
		br->has_local_password = true;
		return copy_word(key, v, br->local_password, sizeof(br->local_password), true, why,
		                 len);
	}
	if (strcmp(key, "bridge_bind_address") == 0)
		return copy_word(key, v, br->bind_address, sizeof(br->bind_address), false, why,
		                 len);
	if (strcmp(key, "bridge_cafile") == 0)
		return copy_word(key, v, br->tls_cafile, sizeof(br->tls_cafile), false, why, len);
	if (strcmp(key, "bridge_capath") == 0)
		return copy_word(key, v, br->tls_capath, sizeof(br->tls_capath), false, why, len);
	if (strcmp(key, "bridge_certfile") == 0)
		return copy_word(key, v, br->tls_certfile, sizeof(br->tls_certfile), false, why,
		                 len);
	if (strcmp(key, "bridge_keyfile") == 0)
		return copy_word(key, v, br->tls_keyfile, sizeof(br->tls_keyfile), false, why, len);
	if (strcmp(key, "bridge_alpn") == 0)
		return copy_word(key, v, br->tls_alpn, sizeof(br->tls_alpn), false, why, len);
	if (strcmp(key, "bridge_tls_version") == 0)
		return set_tls_version(br, key, v, why, len);
	if (strcmp(key, "bridge_require_ocsp") == 0)
		return parse_bool(key, v, &br->tls_require_ocsp, why, len);
	if (strcmp(key, "bridge_identity") == 0)
		return copy_word(key, v, br->psk_identity, sizeof(br->psk_identity), false, why,
		                 len);
	if (strcmp(key, "bridge_psk") == 0) {
		size_t n = strlen(v);
		if (n == 0 || n % 2 || n / 2 > sizeof(br->psk))
			return why_fail(why, len,
			                "%s: expected 1 to 256 bytes in hexadecimal, without 0x",
			                key);
		for (size_t i = 0; i < n; i += 2) {
			char byte[3] = {v[i], v[i + 1], 0};
			char *end = NULL;
			unsigned long x = strtoul(byte, &end, 16);
			if (*end || byte[0] == '+' || byte[0] == '-' || byte[0] == ' ')
				return why_fail(why, len, "%s: not hexadecimal", key);
			br->psk[i / 2] = (uint8_t)x;
		}
		br->psk_len = n / 2;
		return TERN_OK;
	}
	return why_fail(why, len, "%s: not handled", key);
}

enum tern_err config_bridge_apply(struct bridge_cfg *bridges, size_t *n_bridges, const char *key,
                                  const char *const *arg, int n, char *why, size_t whylen)
{
	static const char *const names[] = {
	        "address",
	        "addresses",
	        "topic",
	        "bridge_protocol_version",
	        "cleansession",
	        "keepalive_interval",
	        "remote_clientid",
	        "clientid",
	        "remote_username",
	        "username",
	        "remote_password",
	        "password",
	        "try_private",
	        "restart_timeout",
	        "notifications",
	        "notification_topic",
	        "notifications_local_only",
	        "round_robin",
	        "start_type",
	        "threshold",
	        "idle_timeout",
	        "local_clientid",
	        "local_username",
	        "local_password",
	        "local_cleansession",
	        "bridge_attempt_unsubscribe",
	        "bridge_outgoing_retain",
	        "bridge_max_packet_size",
	        "bridge_bind_address",
	        "bridge_receive_maximum",
	        "bridge_session_expiry_interval",
	        "bridge_cafile",
	        "bridge_capath",
	        "bridge_certfile",
	        "bridge_keyfile",
	        "bridge_insecure",
	        "bridge_tls_version",
	        "bridge_alpn",
	        "bridge_tls_use_os_certs",
	        "bridge_require_ocsp",
	        "bridge_identity",
	        "bridge_psk",
	};
	if (strcmp(key, "connection") == 0)
		return open_connection(bridges, n_bridges, key, arg, n, why, whylen);
	bool known = false;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !known; i++)
		known = strcmp(key, names[i]) == 0;
	if (!known)
		return TERN_E_NOT_FOUND;
	if (*n_bridges == 0)
		return why_fail(why, whylen, "%s: only allowed after a connection line", key);
	struct bridge_cfg *br = &bridges[*n_bridges - 1];
	if (strcmp(key, "address") == 0 || strcmp(key, "addresses") == 0)
		return set_address(br, key, arg, n, why, whylen);
	if (strcmp(key, "topic") == 0)
		return set_topic(br, key, arg, n, why, whylen);
	if (strcmp(key, "restart_timeout") == 0)
		return set_restart(br, key, arg, n, why, whylen);
	if (n != 1)
		return why_fail(why, whylen, "%s: expected one value", key);
	uint64_t num = 0;
	enum tern_err err;
	if (strcmp(key, "bridge_protocol_version") == 0)
		return set_version(br, key, arg[0], why, whylen);
	if (strcmp(key, "cleansession") == 0)
		return parse_bool(key, arg[0], &br->cleansession, why, whylen);
	if (strcmp(key, "try_private") == 0)
		return parse_bool(key, arg[0], &br->try_private, why, whylen);
	if (strcmp(key, "notifications") == 0)
		return parse_bool(key, arg[0], &br->notifications, why, whylen);
	if (strcmp(key, "keepalive_interval") == 0) {
		if ((err = parse_num(key, arg[0], BRIDGE_KEEPALIVE_MIN, 65535, &num, why, whylen)))
			return err;
		br->keepalive = (uint16_t)num;
		return TERN_OK;
	}
	if (strcmp(key, "remote_clientid") == 0 || strcmp(key, "clientid") == 0)
		return copy_word(key, arg[0], br->remote_clientid, sizeof(br->remote_clientid),
		                 false, why, whylen);
	if (strcmp(key, "remote_username") == 0 || strcmp(key, "username") == 0)
		return copy_word(key, arg[0], br->remote_username, sizeof(br->remote_username),
		                 false, why, whylen);
	if (strcmp(key, "remote_password") == 0 || strcmp(key, "password") == 0) {
		br->has_remote_password = true;
		return copy_word(key, arg[0], br->remote_password, sizeof(br->remote_password),
		                 true, why, whylen);
	}
	if (strcmp(key, "notification_topic") == 0) {
		err = copy_word(key, arg[0], br->notification_topic, sizeof(br->notification_topic),
		                false, why, whylen);
		if (err)
			return err;
		if (tern_topic_name_check((const uint8_t *)br->notification_topic,
		                          strlen(br->notification_topic)) != TERN_OK)
			return why_fail(why, whylen, "%s: not a valid topic name", key);
		return TERN_OK;
	}
	return set_more(br, key, arg[0], why, whylen);
}

enum tern_err config_bridge_check(const struct bridge_cfg *bridges, size_t n, char *err,
                                  size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		const struct bridge_cfg *br = &bridges[i];
		if (br->n_addresses == 0)
			return why_fail(err, errlen, "connection %s: no address", br->name);
		if (br->n_topics == 0)
			return why_fail(err, errlen, "connection %s: no topic", br->name);
		if (br->has_remote_password && !br->remote_username[0])
			return why_fail(err, errlen,
			                "connection %s: remote_password needs remote_username",
			                br->name);
		if (br->has_local_password && !br->local_username[0])
			return why_fail(err, errlen,
			                "connection %s: local_password needs local_username",
			                br->name);
		if (!!br->tls_certfile[0] != !!br->tls_keyfile[0])
			return why_fail(err, errlen,
			                "connection %s: bridge_certfile and bridge_keyfile go "
			                "together",
			                br->name);
		if (br->tls_certfile[0] && !br->tls_cafile[0] && !br->tls_capath[0] &&
		    !br->tls_use_os_certs)
			return why_fail(err, errlen,
			                "connection %s: bridge_certfile needs bridge_cafile, "
			                "bridge_capath or bridge_tls_use_os_certs",
			                br->name);
		if (br->tls_require_ocsp && br->psk_len)
			return why_fail(err, errlen,
			                "connection %s: bridge_require_ocsp checks the remote's "
			                "certificate, and TLS-PSK (bridge_identity, bridge_psk) "
			                "has none",
			                br->name);
		if (br->tls_require_ocsp && !br->tls_cafile[0] && !br->tls_capath[0] &&
		    !br->tls_use_os_certs)
			return why_fail(err, errlen,
			                "connection %s: bridge_require_ocsp needs bridge TLS: "
			                "bridge_cafile, bridge_capath or bridge_tls_use_os_certs",
			                br->name);
		if (!br->psk_identity[0] != !br->psk_len)
			return why_fail(err, errlen,
			                "connection %s: bridge_identity and bridge_psk go together",
			                br->name);
		if (br->psk_len && (br->tls_cafile[0] || br->tls_capath[0] || br->tls_certfile[0]))
			return why_fail(
			        err, errlen,
			        "connection %s: a bridge uses certificate TLS (bridge_cafile, "
			        "...) or TLS-PSK (bridge_identity, bridge_psk), not both, as in "
			        "mosquitto",
			        br->name);
		for (size_t j = 0; j < i; j++) {
			if (strcmp(bridges[j].name, br->name) == 0)
				return why_fail(err, errlen, "connection %s: defined twice",
				                br->name);
			/* Two bridges on one local session would take it from
			 * each other at every start. */
			if (br->local_clientid[0] &&
			    strcmp(bridges[j].local_clientid, br->local_clientid) == 0)
				return why_fail(
				        err, errlen,
				        "connection %s: local_clientid %s is connection %s's "
				        "too",
				        br->name, br->local_clientid, bridges[j].name);
		}
	}
	return TERN_OK;
}
