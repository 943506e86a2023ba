/*
 * config_listener.c - the listener directives of mosquitto.conf; see
 * config_int.h.
 *
 * `listener PORT [ADDRESS]` opens a listener; the directives after it
 * (protocol, certfile, require_certificate, ...) are its own, rows of
 * scope S_LISTENER. One such directive before any `listener`, and `port` /
 * `bind_address`, open or change the default listener (the first), as in
 * mosquitto. What can only be judged once the whole file is read (a TLS
 * listener has both certfile and keyfile) is config_check_listener()'s.
 */
#include "broker/config_int.h"

#include <stdio.h>
#include <string.h>

#include "tern/codec.h"

bool config_is_loopback(const char *a)
{
	return strncmp(a, "127.", 4) == 0 || strcmp(a, "::1") == 0 || strcmp(a, "localhost") == 0;
}

enum tern_err config_add_listener(struct config_ctx *c, uint16_t port, const char *bind)
{
	struct config *cfg = c->cfg;
	if (cfg->n_listeners == MAX_LISTENERS)
		return config_fail(c, "too many listeners (at most %d)", MAX_LISTENERS);
	struct listener_cfg *l = &cfg->listeners[cfg->n_listeners++];
	memset(l, 0, sizeof(*l));
	/* For the checks of the whole, which find a problem only once every
	 * line is read, and name the line that opened the listener. */
	if (c->line)
		snprintf(l->where, sizeof(l->where), "%s:%d", c->file, c->line);
	else
		snprintf(l->where, sizeof(l->where), "%s", c->file);
	l->port = port;
	config_security_defaults(&l->sec);
	if (bind) {
		if (strlen(bind) >= sizeof(l->bind))
			return config_fail(c, "address '%s' is too long", bind);
		strcpy(l->bind, bind);
	}
	return TERN_OK;
}

struct listener_cfg *config_current_listener(struct config_ctx *c)
{
	struct config *cfg = c->cfg;
	if (cfg->n_listeners == 0 && config_add_listener(c, 1883, NULL))
		return NULL;
	return &cfg->listeners[cfg->n_listeners - 1];
}

struct security_cfg *config_current_security(struct config_ctx *c)
{
	c->security_seen = true;
	if (!c->cfg->per_listener_settings)
		return &c->cfg->sec;
	struct listener_cfg *l = config_current_listener(c);
	return l ? &l->sec : NULL;
}

enum tern_err config_check_listener(const struct config *cfg, size_t i, char *err, size_t errlen)
{
	const struct listener_cfg *l = &cfg->listeners[i];
	bool tls = l->certfile[0] || l->keyfile[0];
	if (tls && (!l->certfile[0] || !l->keyfile[0])) {
		snprintf(err, errlen, "%s: listener %u: TLS needs both certfile and keyfile",
		         l->where, l->port);
		return TERN_E_CONFIG;
	}
	if (l->proxy_protocol && (tls || l->psk_hint[0] || l->cafile[0] || l->capath[0] ||
	                          l->crlfile[0] || l->dhparamfile[0])) {
		/* mosquitto refuses certfile and keyfile there too. */
		snprintf(err, errlen,
		         "%s: listener %u: enable_proxy_protocol goes with a plain MQTT or "
		         "websockets listener only: TLS ends at the proxy (certfile, keyfile, "
		         "cafile, capath, crlfile, dhparamfile and psk_hint are refused; "
		         "require_certificate and use_identity_as_username read the client "
		         "certificate from a v2 header)",
		         l->where, l->port);
		return TERN_E_CONFIG;
	}
	if (l->proxy_protocol == 1 &&
	    (l->require_certificate || l->use_identity_as_username || l->use_subject_as_username)) {
		/* mosquitto 2.1 takes these and then ignores require_certificate
		 * (every client gets in) or refuses every client
		 * (use_identity_as_username): a v1 line carries nothing of TLS. */
		snprintf(err, errlen,
		         "%s: listener %u: require_certificate, use_identity_as_username and "
		         "use_subject_as_username need enable_proxy_protocol 2: a PROXY v1 "
		         "header says nothing of the client's TLS or certificate (HAProxy: "
		         "send-proxy-v2-ssl-cn)",
		         l->where, l->port);
		return TERN_E_CONFIG;
	}
	if (l->proxy_protocol == 2 && l->use_subject_as_username) {
		/* As mosquitto 2.1 refuses it: the header has no subject. */
		snprintf(err, errlen,
		         "%s: listener %u: use_subject_as_username cannot be used with "
		         "enable_proxy_protocol 2: the PROXY header carries the client "
		         "certificate's CN only, not its subject; use_identity_as_username "
		         "takes the CN",
		         l->where, l->port);
		return TERN_E_CONFIG;
	}
	if (l->proxy_v2_require_tls && l->proxy_protocol != 2) {
		snprintf(err, errlen,
		         "%s: listener %u: proxy_protocol_v2_require_tls needs "
		         "enable_proxy_protocol 2",
		         l->where, l->port);
		return TERN_E_CONFIG;
	}
	if (l->psk_hint[0] && !config_security(cfg, i)->psk_file[0]) {
		snprintf(err, errlen, "%s: listener %u: psk_hint needs a psk_file", l->where,
		         l->port);
		return TERN_E_CONFIG;
	}
	/* Behind a PROXY v2 proxy, the header stands for the handshake
	 * (conn_proxy.c). */
	bool cert_from_header = l->proxy_protocol == 2;
	if (!tls &&
	    (l->cafile[0] || l->capath[0] || (l->require_certificate && !cert_from_header) ||
	     l->use_subject_as_username || l->crlfile[0] || l->dhparamfile[0] ||
	     (l->use_identity_as_username && !l->psk_hint[0] && !cert_from_header))) {
		snprintf(err, errlen,
		         "%s: listener %u: cafile, capath, crlfile, dhparamfile, "
		         "require_certificate, use_identity_as_username and "
		         "use_subject_as_username need certfile and keyfile "
		         "(use_identity_as_username: or psk_hint)",
		         l->where, l->port);
		return TERN_E_CONFIG;
	}
	return TERN_OK;
}

/* ---- Setters ---- */

static TERN_MUST_CHECK enum tern_err set_listener(struct config_ctx *c, const struct directive *d,
                                                  void *field, const char *const *arg)
{
	(void)field;
	uint64_t n = 0;
	enum tern_err err = config_parse_u64(c, d->name, arg[0], 0, 65535, &n);
	if (err)
		return err;
	return config_add_listener(c, (uint16_t)n, arg[1]);
}

/* mosquitto's `port` and `bind_address` set the default listener (the
 * first), opening it if need be. */
static TERN_MUST_CHECK enum tern_err set_port(struct config_ctx *c, const struct directive *d,
                                              void *field, const char *const *arg)
{
	(void)field;
	uint64_t n = 0;
	enum tern_err err = config_parse_u64(c, d->name, arg[0], 0, 65535, &n);
	if (err)
		return err;
	if (c->cfg->n_listeners == 0)
		return config_add_listener(c, (uint16_t)n, NULL);
	c->cfg->listeners[0].port = (uint16_t)n;
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_bind_address(struct config_ctx *c,
                                                      const struct directive *d, void *field,
                                                      const char *const *arg)
{
	(void)d;
	(void)field;
	struct config *cfg = c->cfg;
	enum tern_err err;
	if (!arg[0] || strlen(arg[0]) >= sizeof(cfg->listeners[0].bind))
		return config_fail(c, "bind_address needs an address");
	if (cfg->n_listeners == 0 && (err = config_add_listener(c, 1883, NULL)))
		return err;
	strcpy(cfg->listeners[0].bind, arg[0]);
	return TERN_OK;
}

/* http_dir DIR: opened, as certfile is read, when the listener opens
 * (broker.c; a DIR that is not a directory stops ternd there), and served
 * by transport_ws.c. */
static TERN_MUST_CHECK enum tern_err set_http_dir(struct config_ctx *c, const struct directive *d,
                                                  void *field, const char *const *arg)
{
	if (!arg[0] || !arg[0][0] || strlen(arg[0]) >= d->size)
		return config_fail(c, "%s needs a directory (at most %zu bytes)", d->name,
		                   d->size - 1);
	strcpy(field, arg[0]);
	return TERN_OK;
}

/* mount_point PREFIX: a valid topic name (no wildcards, no control
 * characters), as mosquitto requires, since topics are joined to it. */
static TERN_MUST_CHECK enum tern_err set_mount_point(struct config_ctx *c,
                                                     const struct directive *d, void *field,
                                                     const char *const *arg)
{
	const char *v = arg[0];
	if (!v || !*v || tern_topic_name_check((const uint8_t *)v, strlen(v)) != TERN_OK)
		return config_fail(c, "%s: not a valid topic prefix (no + or #)", d->name);
	return config_copy_value(c, d->name, v, field, d->size);
}

static TERN_MUST_CHECK enum tern_err set_tls_version(struct config_ctx *c,
                                                     const struct directive *d, void *field,
                                                     const char *const *arg)
{
	(void)d;
	const char *v = arg[0];
	if (!v || (strcmp(v, "tlsv1.2") != 0 && strcmp(v, "tlsv1.3") != 0))
		return config_fail(c, "tls_version: expected tlsv1.2 or tlsv1.3 (older versions "
		                      "are not offered)");
	strcpy(field, v);
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_http_listener(struct config_ctx *c,
                                                       const struct directive *d, void *field,
                                                       const char *const *arg)
{
	(void)field;
	struct config *cfg = c->cfg;
	uint64_t n = 0;
	enum tern_err err = config_parse_u64(c, d->name, arg[0], 1, 65535, &n);
	if (err)
		return err;
	cfg->http_port = (uint16_t)n;
	if (arg[1] && strlen(arg[1]) >= sizeof(cfg->http_bind))
		return config_fail(c, "http_listener: address too long");
	strcpy(cfg->http_bind, arg[1] ? arg[1] : "");
	return TERN_OK;
}

/* A count where -1 means no bound, into an int64_t field. */
static TERN_MUST_CHECK enum tern_err set_limit(struct config_ctx *c, const struct directive *d,
                                               void *field, const char *const *arg)
{
	int64_t v = -1;
	uint64_t n = 0;
	if (!arg[0] || strcmp(arg[0], "-1") != 0) {
		enum tern_err err = config_parse_u64(c, d->name, arg[0], 0, INT32_MAX, &n);
		if (err)
			return err;
		v = (int64_t)n;
	}
	memcpy(field, &v, sizeof(v));
	return TERN_OK;
}

/* accept_protocol_versions 3, 4, 5: protocol levels, separated by commas
 * and blanks (the rest of the line). */
static TERN_MUST_CHECK enum tern_err set_accept_protocol_versions(struct config_ctx *c,
                                                                  const struct directive *d,
                                                                  void *field,
                                                                  const char *const *arg)
{
	uint8_t accepted = 0;
	char words[256];
	if (!arg[0] || !arg[0][0] || strlen(arg[0]) >= sizeof(words))
		return config_fail(c, "%s needs protocol levels (3, 4, 5)", d->name);
	strcpy(words, arg[0]);
	char *save = NULL;
	for (char *w = strtok_r(words, ", \t", &save); w; w = strtok_r(NULL, ", \t", &save)) {
		if (w[0] == '#')
			break;
		if ((w[0] != '3' && w[0] != '4' && w[0] != '5') || w[1])
			return config_fail(c, "%s: '%s' is not 3, 4 or 5 (MQTT 3.1, 3.1.1, 5.0)",
			                   d->name, w);
		accepted |= (uint8_t)(1u << (w[0] - '0'));
	}
	if (!accepted)
		return config_fail(c, "%s needs protocol levels (3, 4, 5)", d->name);
	uint8_t refused = (uint8_t)((1u << 3 | 1u << 4 | 1u << 5) & ~accepted);
	memcpy(field, &refused, 1);
	return TERN_OK;
}

static const struct config_choice anon_choices[] = {
        {"true", LISTENER_ANON_TRUE},
        {"false", LISTENER_ANON_FALSE},
        {NULL, 0},
};

static const struct config_choice qos_choices[] = {
        {"0", 1},
        {"1", 2},
        {"2", 3},
        {NULL, 0},
};

static const struct config_choice domains[] = {
        {"ipv4", SOCKET_DOMAIN_IPV4},
        {"ipv6", SOCKET_DOMAIN_IPV6},
        {NULL, 0},
};

static const struct config_choice protocols[] = {
        {"mqtt", false},
        {"websockets", true},
        {NULL, 0},
};

/* websockets_origin: one more origin the listener lets upgrade; may be
 * given several times. */
static TERN_MUST_CHECK enum tern_err set_websockets_origin(struct config_ctx *c,
                                                           const struct directive *d, void *field,
                                                           const char *const *arg)
{
	char *list = field;
	size_t used = strlen(list);
	if (!arg[0] || !arg[0][0])
		return config_fail(c, "%s needs an origin", d->name);
	if (used + strlen(arg[0]) + 2 > d->size)
		return config_fail(c, "%s: too many origins for one listener", d->name);
	snprintf(list + used, d->size - used, "%s%s", used ? "\n" : "", arg[0]);
	return TERN_OK;
}

/* As mosquitto.conf's manual groups them: listeners, then their TLS. */
static const struct directive rows[] = {
        /* Listeners. */
        {"listener", K_FUNC, 2, NO_FIELD, .set = set_listener},
        {"port", K_FUNC, 1, NO_FIELD, .set = set_port},
        {"bind_address", K_FUNC, 1, NO_FIELD, .set = set_bind_address},
        {"protocol", K_ENUM, 1, L(websockets), .choices = protocols},
        {"bind_interface", K_STR, 1, L(bind_interface)},
        {"websockets_origin", K_FUNC, 1, L(websockets_origins), .set = set_websockets_origin},
        {"socket_domain", K_ENUM, 1, L(socket_domain), .choices = domains},
        {"http_listener", K_FUNC, 2, NO_FIELD, .set = set_http_listener},
        {"http_certfile", K_STR, 1, G(http_certfile)},
        {"http_keyfile", K_STR, 1, G(http_keyfile)},
        {"http_password_file", K_STR, 1, G(http_password_file)},
        {"max_connections", K_FUNC, 1, G(max_connections), .set = set_limit},
        {"global_max_connections", K_FUNC, 1, G(global_max_connections), .set = set_limit},
        {"global_max_clients", K_FUNC, 1, G(global_max_clients), .set = set_limit},
        {"max_qos", K_ENUM, 1, L(max_qos_plus1), .choices = qos_choices},
        /* mosquitto's parser takes this spelling too (conf.c), so
         * configs carry it. */
        {"maximum_qos", K_ENUM, 1, L(max_qos_plus1), .choices = qos_choices},
        {"accept_protocol_versions", K_FUNC, ARGS_REST, L(refused_versions),
         .set = set_accept_protocol_versions},
        {"use_username_as_clientid", K_BOOL, 1, L(use_username_as_clientid)},
        {"set_tcp_nodelay", K_BOOL, 1, G(set_tcp_nodelay)},
        /* TLS, per listener. */
        {"certfile", K_STR, 1, L(certfile)},
        {"keyfile", K_STR, 1, L(keyfile)},
        {"cafile", K_STR, 1, L(cafile)},
        {"capath", K_STR, 1, L(capath)},
        {"ciphers", K_STR, 1, L(ciphers)},
        {"ciphers_tls1.3", K_STR, 1, L(ciphers_tls13)},
        {"tls_version", K_FUNC, 1, L(tls_version), .set = set_tls_version},
        {"require_certificate", K_BOOL, 1, L(require_certificate)},
        {"use_identity_as_username", K_BOOL, 1, L(use_identity_as_username)},
        {"use_subject_as_username", K_BOOL, 1, L(use_subject_as_username)},
        {"crlfile", K_STR, 1, L(crlfile)},
        {"dhparamfile", K_STR, 1, L(dhparamfile)},
        {"psk_hint", K_STR, 1, L(psk_hint)},
        {"mount_point", K_FUNC, 1, L(mount_point), .set = set_mount_point},
        {"http_dir", K_FUNC, 1, L(http_dir), .set = set_http_dir},
        /* mosquitto 2.1's: HAProxy's PROXY header before MQTT. */
        {"enable_proxy_protocol", K_UINT, 1, L(proxy_protocol), RANGE(1, 2)},
        {"proxy_protocol_v2_require_tls", K_BOOL, 1, L(proxy_v2_require_tls)},
        /* mosquitto 2.1: this listener's, whatever per_listener_settings
         * says. */
        {"listener_allow_anonymous", K_ENUM, 1, L(listener_allow_anonymous),
         .choices = anon_choices},
        {"listener_auto_id_prefix", K_STR, 1, L(listener_auto_id_prefix)},
};

const struct directive_table config_listener_table = TABLE(rows);
