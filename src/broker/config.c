/*
 * config.c - mosquitto.conf directives and ternd's flags; see config.h.
 *
 * The parser is a table of directives, `directives[]` below: one row per
 * directive names it, says what kind of value it takes, how many words may
 * follow it on the line, which struct the value goes into (the broker's
 * struct config, or the listener the line belongs to) and where (a field
 * offset and size), with the bounds of a number. apply() is the one loop
 * over it: it finds the row, refuses a line with more words than the row
 * allows, and hands the words to the kind's parser, which checks the value
 * as strictly as mosquitto does (a number must be a whole number in range,
 * a boolean "true" or "false") and stores it. Every error names the file
 * and the line; a directive not in the table is an error naming it, never
 * silently ignored.
 *
 * Adding a directive is one row in most cases:
 *
 *   {"max_foo", K_UINT, 1, G(max_foo), RANGE(0, 65535)},      number into struct config
 *   {"foo_file", K_STR, 1, G(foo_file)},               string (a char array)
 *   {"use_foo", K_BOOL, 1, L(use_foo)},                boolean of the current listener
 *   {"foo_mode", K_ENUM, 1, G(foo_mode), .choices = foo_modes},   one of some names
 *   {"foo_expiry", K_DURATION, 1, G(foo_expiry)},      2h, 14d, 1w, 6m, 1y (uint32_t)
 *   {"foo_interval", K_UINT, 1, NO_FIELD, RANGE(0, 60)},      accepted and checked, not used
 *
 * G(member) is a member of struct config, L(member) one of struct
 * listener_cfg (the last `listener`, or the default listener, which such a
 * line opens as mosquitto does); the field's size comes from the member, so
 * the parser writes exactly its width. A directive whose value needs more
 * than a range check (several arguments, a side effect, a special value
 * such as -1) gets kind K_FUNC and a setter of a few lines, `.set = ...`.
 * The words of a line are split on blanks; a word starting with '#' after
 * the first argument begins a comment; ARGS_REST hands the setter the rest
 * of the line verbatim (free text with spaces).
 */
#include "broker/config.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/log.h"

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->workers = 0;
	/* Local mode's value; config_from_args() turns it to false when a
	 * listener is configured and the file does not say otherwise. */
	cfg->allow_anonymous = true;
	cfg->allow_zero_length_clientid = true;
	strcpy(cfg->auto_id_prefix, "auto-");
	cfg->max_inflight_messages = 20;
	cfg->max_queued_messages = 1000;
	cfg->max_stall_time = 30;
	cfg->max_subscriptions = 10000;
	cfg->max_topic_levels = 256;
	cfg->max_keepalive = 65535;
	cfg->retain_available = true;
	cfg->max_topic_alias = 10;
	cfg->max_topic_alias_broker = 10; /* mosquitto 2.1's default */
	cfg->connect_timeout = 10;
	cfg->max_connections = -1;
	cfg->max_output_bytes = 8u << 20;
	cfg->set_tcp_nodelay = true;
	cfg->sys_interval = 10;
	snprintf(cfg->cluster_name, sizeof(cfg->cluster_name), "tern");
	cfg->cluster_replicas = 1;
	cfg->connection_messages = true;
	cfg->storage = STORAGE_SQLITE;
	strcpy(cfg->persistence_file, "ternd.db");
	cfg->storage_sync = STORE_SYNC_NORMAL;
	cfg->log_mask = LOG_TYPE_DEFAULT;
	cfg->log_dest = LOG_DEST_STDERR;
	cfg->log_timestamp = true;
}

struct ctx {
	const char *rest; /* the line after the directive, for free text */
	struct config *cfg;
	const char *file;
	int line;
	char *err;
	size_t errlen;
	bool log_type_seen;
	bool included; /* a file read by include_dir */
};

static TERN_MUST_CHECK enum tern_err fail(struct ctx *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static TERN_MUST_CHECK enum tern_err fail(struct ctx *c, const char *fmt, ...)
{
	int n = snprintf(c->err, c->errlen, "%s:%d: ", c->file, c->line);
	if (n < 0 || (size_t)n >= c->errlen)
		n = 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return TERN_E_CONFIG;
}

/* ---- Values ---- */

static TERN_MUST_CHECK enum tern_err parse_u64(struct ctx *c, const char *name, const char *s,
                                               uint64_t min, uint64_t max, uint64_t *out)
{
	if (!s)
		return fail(c, "%s needs a value", name);
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return fail(c, "%s: '%s' is not a whole number from %llu to %llu", name, s,
		            (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err parse_bool(struct ctx *c, const char *name, const char *s,
                                                bool *out)
{
	if (s && strcmp(s, "true") == 0)
		*out = true;
	else if (s && strcmp(s, "false") == 0)
		*out = false;
	else
		return fail(c, "%s: expected true or false, got '%s'", name, s ? s : "");
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err copy_value(struct ctx *c, const char *key, const char *v,
                                                char *dst, size_t cap)
{
	if (!v || !v[0])
		return fail(c, "%s needs a value", key);
	if (strlen(v) >= cap)
		return fail(c, "%s: value too long", key);
	strcpy(dst, v);
	return TERN_OK;
}

/* mosquitto's durations: a number with h, d, w, m (months) or y. */
static TERN_MUST_CHECK enum tern_err parse_duration(struct ctx *c, const char *key, const char *v,
                                                    uint32_t *out)
{
	char *end;
	if (!v || !*v)
		return fail(c, "%s needs a value", key);
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	uint64_t mult = 0;
	if (end == v || errno || v[0] == '-')
		mult = 0;
	else if (*end == 'h' && !end[1])
		mult = 3600;
	else if (*end == 'd' && !end[1])
		mult = 86400;
	else if (*end == 'w' && !end[1])
		mult = 7 * 86400;
	else if (*end == 'm' && !end[1])
		mult = 30 * 86400;
	else if (*end == 'y' && !end[1])
		mult = 365 * 86400;
	if (!mult || n == 0 || n > UINT32_MAX / mult)
		return fail(c, "%s: '%s' is not a duration like 2h, 14d, 1w, 6m or 1y", key, v);
	*out = (uint32_t)(n * mult);
	return TERN_OK;
}

/* Stores v into an unsigned integer, bool or enum field of `size` bytes
 * (the table's bounds keep v within the field's width). */
static void store_uint(void *field, size_t size, uint64_t v)
{
	uint8_t u8 = (uint8_t)v;
	uint16_t u16 = (uint16_t)v;
	uint32_t u32 = (uint32_t)v;

	switch (size) {
	case 1:
		memcpy(field, &u8, 1);
		break;
	case 2:
		memcpy(field, &u16, 2);
		break;
	case 4:
		memcpy(field, &u32, 4);
		break;
	case 8:
		memcpy(field, &v, 8);
		break;
	default: /* NO_FIELD: checked, not kept */
		break;
	}
}

/* ---- Listeners ---- */

/* A loopback address: 127.0.0.0/8, ::1 or localhost. */
static bool is_loopback(const char *a)
{
	return strncmp(a, "127.", 4) == 0 || strcmp(a, "::1") == 0 || strcmp(a, "localhost") == 0;
}

static TERN_MUST_CHECK enum tern_err add_listener(struct ctx *c, uint16_t port, const char *bind)
{
	struct config *cfg = c->cfg;
	if (cfg->n_listeners == MAX_LISTENERS)
		return fail(c, "too many listeners (at most %d)", MAX_LISTENERS);
	struct listener_cfg *l = &cfg->listeners[cfg->n_listeners++];
	memset(l, 0, sizeof(*l));
	l->port = port;
	if (bind) {
		if (strlen(bind) >= sizeof(l->bind))
			return fail(c, "address '%s' is too long", bind);
		strcpy(l->bind, bind);
	}
	return TERN_OK;
}

/* The listener a listener-specific directive belongs to: the last one, or
 * the default listener when none was declared yet (as mosquitto does). */
static struct listener_cfg *current_listener(struct ctx *c)
{
	struct config *cfg = c->cfg;
	if (cfg->n_listeners == 0 && add_listener(c, 1883, NULL))
		return NULL;
	return &cfg->listeners[cfg->n_listeners - 1];
}

enum tern_err config_check(const struct config *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct listener_cfg *l = &cfg->listeners[i];
		bool tls = l->certfile[0] || l->keyfile[0];
		if (tls && (!l->certfile[0] || !l->keyfile[0])) {
			snprintf(err, errlen, "listener %u: TLS needs both certfile and keyfile",
			         l->port);
			return TERN_E_CONFIG;
		}
		if (!tls && (l->cafile[0] || l->capath[0] || l->require_certificate ||
		             l->use_identity_as_username)) {
			snprintf(err, errlen,
			         "listener %u: cafile, capath, require_certificate and "
			         "use_identity_as_username need certfile and keyfile",
			         l->port);
			return TERN_E_CONFIG;
		}
		if (l->use_identity_as_username && !l->require_certificate) {
			snprintf(err, errlen,
			         "listener %u: use_identity_as_username needs require_certificate "
			         "true",
			         l->port);
			return TERN_E_CONFIG;
		}
	}
	if (!cfg->cluster_nats[0] && (cfg->cluster_cafile[0] || cfg->cluster_certfile[0] ||
	                              cfg->cluster_username[0] || cfg->cluster_credentials[0])) {
		snprintf(err, errlen, "cluster_* directives need cluster_nats");
		return TERN_E_CONFIG;
	}
	if (!cfg->cluster_certfile[0] != !cfg->cluster_keyfile[0]) {
		snprintf(err, errlen, "cluster_certfile and cluster_keyfile go together");
		return TERN_E_CONFIG;
	}
	if (cfg->cluster_certfile[0] && !cfg->cluster_cafile[0]) {
		snprintf(err, errlen, "cluster_certfile needs cluster_cafile (TLS to NATS)");
		return TERN_E_CONFIG;
	}
	return TERN_OK;
}

/* ---- The table ---- */

enum kind {
	K_UINT,     /* whole number in [min, max] */
	K_BOOL,     /* true or false */
	K_STR,      /* a non-empty string that fits the char array */
	K_DURATION, /* 2h, 14d, 1w, 6m, 1y: seconds in a uint32_t */
	K_ENUM,     /* one of .choices: its value into the field */
	K_FUNC,     /* .set does it all */
};

enum scope {
	S_GLOBAL,   /* a member of struct config */
	S_LISTENER, /* a member of the current struct listener_cfg */
};

/* Words after the directive that a line may have: 1, 2, ... or the rest
 * of the line as one string. */
#define ARGS_REST 0
#define MAX_ARGS  4

struct choice {
	const char *name;
	unsigned value;
};

/* The entry of a NULL-terminated table named v; NULL when none is. */
static const struct choice *choice_find(const struct choice *table, const char *v)
{
	for (const struct choice *ch = table; v && ch->name; ch++)
		if (strcmp(v, ch->name) == 0)
			return ch;
	return NULL;
}

struct directive;

/* A K_FUNC setter: arg[0..MAX_ARGS] are the words after the directive
 * (NULL past the last one; with ARGS_REST, arg[0] is the rest of the
 * line); field is the row's field (NULL with NO_FIELD). */
typedef enum tern_err (*setter)(struct ctx *c, const struct directive *d, void *field,
                                const char *const *arg);

struct directive {
	const char *name;
	enum kind kind;
	unsigned char args; /* words the line may have after the name, or ARGS_REST */
	enum scope scope;
	size_t off, size;             /* the field; size 0: none */
	uint64_t min, max;            /* K_UINT */
	const struct choice *choices; /* K_ENUM, ending with a NULL name */
	setter set;                   /* K_FUNC */
};

#define MEMBER_SIZE(type, m) sizeof(((type *)0)->m)
#define G(m)                                                                                       \
	.scope = S_GLOBAL, .off = offsetof(struct config, m), .size = MEMBER_SIZE(struct config, m)
#define L(m)                                                                                       \
	.scope = S_LISTENER, .off = offsetof(struct listener_cfg, m),                              \
	.size = MEMBER_SIZE(struct listener_cfg, m)
#define NO_FIELD      .size = 0
#define RANGE(lo, hi) .min = (lo), .max = (hi)

/* ---- Setters of the directives that are more than a field ---- */

static TERN_MUST_CHECK enum tern_err set_listener(struct ctx *c, const struct directive *d,
                                                  void *field, const char *const *arg)
{
	(void)field;
	uint64_t n = 0;
	enum tern_err err = parse_u64(c, d->name, arg[0], 0, 65535, &n);
	if (err)
		return err;
	return add_listener(c, (uint16_t)n, arg[1]);
}

/* mosquitto's `port` and `bind_address` set the default listener (the
 * first), opening it if need be. */
static TERN_MUST_CHECK enum tern_err set_port(struct ctx *c, const struct directive *d, void *field,
                                              const char *const *arg)
{
	(void)field;
	uint64_t n = 0;
	enum tern_err err = parse_u64(c, d->name, arg[0], 0, 65535, &n);
	if (err)
		return err;
	if (c->cfg->n_listeners == 0)
		return add_listener(c, (uint16_t)n, NULL);
	c->cfg->listeners[0].port = (uint16_t)n;
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_bind_address(struct ctx *c, const struct directive *d,
                                                      void *field, const char *const *arg)
{
	(void)d;
	(void)field;
	struct config *cfg = c->cfg;
	enum tern_err err;
	if (!arg[0] || strlen(arg[0]) >= sizeof(cfg->listeners[0].bind))
		return fail(c, "bind_address needs an address");
	if (cfg->n_listeners == 0 && (err = add_listener(c, 1883, NULL)))
		return err;
	strcpy(cfg->listeners[0].bind, arg[0]);
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_tls_version(struct ctx *c, const struct directive *d,
                                                     void *field, const char *const *arg)
{
	(void)d;
	const char *v = arg[0];
	if (!v || (strcmp(v, "tlsv1.2") != 0 && strcmp(v, "tlsv1.3") != 0))
		return fail(c, "tls_version: expected tlsv1.2 or tlsv1.3 (older versions "
		               "are not offered)");
	strcpy(field, v);
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_allow_anonymous(struct ctx *c, const struct directive *d,
                                                         void *field, const char *const *arg)
{
	c->cfg->allow_anonymous_set = true;
	return parse_bool(c, d->name, arg[0], field);
}

static TERN_MUST_CHECK enum tern_err set_per_listener_settings(struct ctx *c,
                                                               const struct directive *d,
                                                               void *field, const char *const *arg)
{
	(void)field;
	/* mosquitto's default, false, is how ternd works: allow_anonymous,
	 * password_file and acl_file apply to every listener. Saying so is
	 * fine; asking for per-listener security is not supported, and
	 * ignoring it would silently widen access. */
	bool on = false;
	enum tern_err err = parse_bool(c, d->name, arg[0], &on);
	if (err)
		return err;
	if (on)
		return fail(c, "per_listener_settings true is not supported: ternd "
		               "applies its security settings to every listener");
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_max_inflight_messages(struct ctx *c,
                                                               const struct directive *d,
                                                               void *field, const char *const *arg)
{
	/* 0 means "no limit" in mosquitto; the v5 ceiling is 65535. */
	uint64_t n = 0;
	enum tern_err err = parse_u64(c, d->name, arg[0], 0, 65535, &n);
	if (err)
		return err;
	store_uint(field, d->size, n ? n : 65535);
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_max_packet_size(struct ctx *c, const struct directive *d,
                                                         void *field, const char *const *arg)
{
	uint64_t n = 0;
	enum tern_err err = parse_u64(c, d->name, arg[0], 0, 268435460, &n);
	if (err)
		return err;
	if (n && n < 20)
		return fail(c, "max_packet_size must be 0 or at least 20");
	store_uint(field, d->size, n);
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_max_connections(struct ctx *c, const struct directive *d,
                                                         void *field, const char *const *arg)
{
	(void)field;
	uint64_t n = 0;
	if (arg[0] && strcmp(arg[0], "-1") == 0) {
		c->cfg->max_connections = -1;
		return TERN_OK;
	}
	enum tern_err err = parse_u64(c, d->name, arg[0], 0, INT32_MAX, &n);
	if (err)
		return err;
	c->cfg->max_connections = (int64_t)n;
	return TERN_OK;
}

/* mosquitto's switch: durable storage on or off. */
static TERN_MUST_CHECK enum tern_err set_persistence(struct ctx *c, const struct directive *d,
                                                     void *field, const char *const *arg)
{
	(void)field;
	bool on = false;
	enum tern_err err = parse_bool(c, d->name, arg[0], &on);
	if (err)
		return err;
	c->cfg->storage = on ? STORAGE_SQLITE : STORAGE_MEMORY;
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_persistence_location(struct ctx *c,
                                                              const struct directive *d,
                                                              void *field, const char *const *arg)
{
	if (!arg[0] || strlen(arg[0]) >= d->size)
		return fail(c, "persistence_location needs a directory");
	strcpy(field, arg[0]);
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_persistence_file(struct ctx *c, const struct directive *d,
                                                          void *field, const char *const *arg)
{
	if (!arg[0] || strlen(arg[0]) >= d->size || strchr(arg[0], '/'))
		return fail(c, "persistence_file needs a file name");
	strcpy(field, arg[0]);
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_log_type(struct ctx *c, const struct directive *d,
                                                  void *field, const char *const *arg)
{
	(void)d;
	(void)field;
	static const struct choice types[] = {
	        {"error", LOG_TYPE_ERR},
	        {"warning", LOG_TYPE_WARNING},
	        {"notice", LOG_TYPE_NOTICE},
	        {"information", LOG_TYPE_INFO},
	        {"subscribe", LOG_TYPE_SUBSCRIBE},
	        {"unsubscribe", LOG_TYPE_UNSUBSCRIBE},
	        {"websockets", LOG_TYPE_WEBSOCKETS},
	        {"debug", LOG_TYPE_DEBUG},
	        {"all", LOG_TYPE_ALL},
	        {"none", 0},
	        {NULL, 0},
	};
	const char *v = arg[0];
	if (!v)
		return fail(c, "log_type needs a value");
	/* Like mosquitto, the first log_type replaces the defaults and later
	 * ones add to it. */
	if (!c->log_type_seen)
		c->cfg->log_mask = 0;
	c->log_type_seen = true;
	const struct choice *t = choice_find(types, v);
	if (!t)
		return fail(c, "log_type: unknown type '%s'", v);
	c->cfg->log_mask |= t->value;
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_log_dest(struct ctx *c, const struct directive *d,
                                                  void *field, const char *const *arg)
{
	(void)d;
	(void)field;
	struct config *cfg = c->cfg;
	const char *v = arg[0];
	if (!v)
		return fail(c, "log_dest needs a value");
	if (strcmp(v, "stderr") == 0)
		cfg->log_dest = LOG_DEST_STDERR;
	else if (strcmp(v, "stdout") == 0)
		cfg->log_dest = LOG_DEST_STDOUT;
	else if (strcmp(v, "none") == 0)
		cfg->log_dest = LOG_DEST_NONE;
	else if (strcmp(v, "syslog") == 0)
		cfg->log_dest = LOG_DEST_SYSLOG;
	else if (strcmp(v, "file") == 0) {
		if (!arg[1] || strlen(arg[1]) >= sizeof(cfg->log_file))
			return fail(c, "log_dest file needs a path");
		cfg->log_dest = LOG_DEST_FILE;
		strcpy(cfg->log_file, arg[1]);
	} else
		return fail(c,
		            "log_dest: '%s' is not supported (stderr, stdout, file, syslog, none)",
		            v);
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_http_listener(struct ctx *c, const struct directive *d,
                                                       void *field, const char *const *arg)
{
	(void)field;
	struct config *cfg = c->cfg;
	uint64_t n = 0;
	enum tern_err err = parse_u64(c, d->name, arg[0], 1, 65535, &n);
	if (err)
		return err;
	cfg->http_port = (uint16_t)n;
	if (arg[1] && strlen(arg[1]) >= sizeof(cfg->http_bind))
		return fail(c, "http_listener: address too long");
	strcpy(cfg->http_bind, arg[1] ? arg[1] : "");
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_include_dir(struct ctx *c, const struct directive *d,
                                                     void *field, const char *const *arg);

static const struct choice storage_kinds[] = {
        {"memory", STORAGE_MEMORY},
        {"sqlite", STORAGE_SQLITE},
        {NULL, 0},
};
static const struct choice storage_syncs[] = {
        {"full", STORE_SYNC_FULL},
        {"normal", STORE_SYNC_NORMAL},
        {"off", STORE_SYNC_OFF},
        {NULL, 0},
};
static const struct choice protocols[] = {
        {"mqtt", false},
        {"websockets", true},
        {NULL, 0},
};

/* Every directive ternd reads, grouped as mosquitto.conf's manual groups
 * them. */
static const struct directive directives[] = {
        /* Listeners. */
        {"listener", K_FUNC, 2, NO_FIELD, .set = set_listener},
        {"port", K_FUNC, 1, NO_FIELD, .set = set_port},
        {"bind_address", K_FUNC, 1, NO_FIELD, .set = set_bind_address},
        {"protocol", K_ENUM, 1, L(websockets), .choices = protocols},
        {"http_listener", K_FUNC, 2, NO_FIELD, .set = set_http_listener},
        {"max_connections", K_FUNC, 1, NO_FIELD, .set = set_max_connections},
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
        /* Security. */
        {"allow_anonymous", K_FUNC, 1, G(allow_anonymous), .set = set_allow_anonymous},
        {"password_file", K_STR, 1, G(password_file)},
        {"acl_file", K_STR, 1, G(acl_file)},
        {"per_listener_settings", K_FUNC, 1, NO_FIELD, .set = set_per_listener_settings},
        {"allow_zero_length_clientid", K_BOOL, 1, G(allow_zero_length_clientid)},
        {"auto_id_prefix", K_STR, 1, G(auto_id_prefix)},
        /* Sessions, queues and limits. */
        {"persistent_client_expiration", K_DURATION, 1, G(persistent_client_expiration)},
        {"queue_qos0_messages", K_BOOL, 1, G(queue_qos0_messages)},
        {"max_inflight_messages", K_FUNC, 1, G(max_inflight_messages),
         .set = set_max_inflight_messages},
        {"max_queued_messages", K_UINT, 1, G(max_queued_messages), RANGE(0, UINT32_MAX)},
        {"max_queued_bytes", K_UINT, 1, G(max_queued_bytes), RANGE(0, UINT64_MAX / 2)},
        /* Ours: how long a subscriber that stopped reading may hold back
         * its publishers (flow control, src/broker/flow.h). */
        {"max_stall_time", K_UINT, 1, G(max_stall_time), RANGE(0, 86400)},
        {"max_subscriptions", K_UINT, 1, G(max_subscriptions), RANGE(0, UINT32_MAX)},
        {"max_topic_levels", K_UINT, 1, G(max_topic_levels), RANGE(0, 65535)},
        {"message_size_limit", K_UINT, 1, G(message_size_limit), RANGE(0, 268435455)},
        {"max_packet_size", K_FUNC, 1, G(max_packet_size), .set = set_max_packet_size},
        {"max_keepalive", K_UINT, 1, G(max_keepalive), RANGE(0, 65535)},
        {"max_topic_alias", K_UINT, 1, G(max_topic_alias), RANGE(0, 65535)},
        {"max_topic_alias_broker", K_UINT, 1, G(max_topic_alias_broker), RANGE(0, 65535)},
        {"connect_timeout", K_UINT, 1, G(connect_timeout), RANGE(1, 3600)},
        {"retain_available", K_BOOL, 1, G(retain_available)},
        /* Persistence. */
        {"persistence", K_FUNC, 1, NO_FIELD, .set = set_persistence},
        {"storage", K_ENUM, 1, G(storage), .choices = storage_kinds},
        {"storage_sync", K_ENUM, 1, G(storage_sync), .choices = storage_syncs},
        {"persistence_location", K_FUNC, 1, G(persistence_location),
         .set = set_persistence_location},
        {"persistence_file", K_FUNC, 1, G(persistence_file), .set = set_persistence_file},
        /* Meant to bound what a crash loses; ternd commits every change
         * before acknowledging it, so there is nothing to tune. */
        {"autosave_interval", K_UINT, 1, NO_FIELD, RANGE(0, UINT32_MAX)},
        {"autosave_on_changes", K_BOOL, 1, NO_FIELD},
        /* Logging and $SYS. */
        {"log_type", K_FUNC, 1, NO_FIELD, .set = set_log_type},
        {"log_dest", K_FUNC, 2, NO_FIELD, .set = set_log_dest},
        {"log_timestamp", K_BOOL, 1, G(log_timestamp)},
        /* The format may contain spaces: the rest of the line. */
        {"log_timestamp_format", K_STR, ARGS_REST, G(log_timestamp_format)},
        {"connection_messages", K_BOOL, 1, G(connection_messages)},
        {"sys_interval", K_UINT, 1, G(sys_interval), RANGE(0, 86400)},
        /* The process. */
        {"workers", K_UINT, 1, G(workers), RANGE(0, 256)},
        {"pid_file", K_STR, 1, G(pid_file)},
        {"user", K_STR, 1, G(user)},
        {"include_dir", K_FUNC, 1, NO_FIELD, .set = set_include_dir},
        /* Ours: the cluster (docs/cluster.md). */
        {"cluster_nats", K_STR, 1, G(cluster_nats)},
        {"cluster_name", K_STR, 1, G(cluster_name)},
        {"cluster_node_name", K_STR, 1, G(cluster_node_name)},
        {"cluster_replicas", K_UINT, 1, G(cluster_replicas), RANGE(1, 5)},
        {"cluster_cafile", K_STR, 1, G(cluster_cafile)},
        {"cluster_certfile", K_STR, 1, G(cluster_certfile)},
        {"cluster_keyfile", K_STR, 1, G(cluster_keyfile)},
        {"cluster_username", K_STR, 1, G(cluster_username)},
        {"cluster_password", K_STR, 1, G(cluster_password)},
        {"cluster_credentials", K_STR, 1, G(cluster_credentials)},
};

/* Applies one directive: finds its row, checks the number of words, then
 * parses and stores the value as the row's kind says. arg[0..n) are the
 * words after the name (arg[n..MAX_ARGS] NULL). */
static TERN_MUST_CHECK enum tern_err apply(struct ctx *c, const char *key, const char *const *arg,
                                           int n)
{
	const struct directive *d = NULL;
	for (size_t i = 0; i < sizeof(directives) / sizeof(directives[0]) && !d; i++)
		if (strcmp(key, directives[i].name) == 0)
			d = &directives[i];
	if (!d)
		return fail(c, "unknown or unsupported directive '%s'", key);
	const char *rest[MAX_ARGS + 1] = {c->rest};
	if (d->args == ARGS_REST)
		arg = rest;
	else if (n > d->args)
		return fail(c, "%s: too many arguments", key);

	void *field = NULL;
	if (d->size > 0) {
		void *base = c->cfg;
		if (d->scope == S_LISTENER && !(base = current_listener(c)))
			return TERN_E_CONFIG;
		field = (char *)base + d->off;
	}
	uint64_t v = 0;
	bool b = false;
	enum tern_err err;
	const struct choice *ch;
	switch (d->kind) {
	case K_UINT:
		if ((err = parse_u64(c, key, arg[0], d->min, d->max, &v)))
			return err;
		store_uint(field, d->size, v);
		return TERN_OK;
	case K_BOOL:
		if ((err = parse_bool(c, key, arg[0], &b)))
			return err;
		store_uint(field, d->size, b);
		return TERN_OK;
	case K_STR:
		return copy_value(c, key, arg[0], field, d->size);
	case K_DURATION:
		return parse_duration(c, key, arg[0], field);
	case K_ENUM:
		if ((ch = choice_find(d->choices, arg[0]))) {
			store_uint(field, d->size, ch->value);
			return TERN_OK;
		}
		/* "expected a, b or c", from the table. */
		char names[256] = "";
		size_t len = 0;
		for (ch = d->choices; ch->name; ch++) {
			const char *sep = ch == d->choices ? "" : ch[1].name ? ", " : " or ";
			int w = snprintf(names + len, sizeof(names) - len, "%s%s", sep, ch->name);
			if (w > 0 && (size_t)w < sizeof(names) - len)
				len += (size_t)w;
		}
		return fail(c, "%s: expected %s", key, names);
	case K_FUNC:
		return d->set(c, d, field, arg);
	}
	return fail(c, "%s: unknown kind of directive", key);
}

/* ---- Files ---- */

static TERN_MUST_CHECK enum tern_err parse_line(struct ctx *c, char *line);

/* Applies every line of f; a line too long for the buffer is an error,
 * never split into two directives. */
static TERN_MUST_CHECK enum tern_err parse_file(struct ctx *c, FILE *f)
{
	char line[4096];
	while (fgets(line, sizeof(line), f)) {
		c->line++;
		if (!strchr(line, '\n') && !feof(f))
			return fail(c, "line too long");
		enum tern_err rc = parse_line(c, line);
		if (rc)
			return rc;
	}
	return TERN_OK;
}

/* include_dir: every *.conf file of the directory, in alphabetical order,
 * as mosquitto reads them. */
static TERN_MUST_CHECK enum tern_err set_include_dir(struct ctx *c, const struct directive *d,
                                                     void *field, const char *const *arg)
{
	(void)d;
	(void)field;
	const char *dir = arg[0];
	if (!dir)
		return fail(c, "include_dir needs a directory");
	/* As in mosquitto: only the main file may include, so a directory
	 * cannot include itself (endless recursion). */
	if (c->included)
		return fail(c, "include_dir is only allowed in the main configuration file");
	struct dirent **names = NULL;
	int n = scandir(dir, &names, NULL, alphasort);
	if (n < 0)
		return fail(c, "include_dir %s: %s", dir, strerror(errno));
	enum tern_err rc = TERN_OK;
	for (int i = 0; i < n; i++) {
		size_t len = strlen(names[i]->d_name);
		if (!rc && len > 5 && strcmp(names[i]->d_name + len - 5, ".conf") == 0) {
			char path[1024];
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
			FILE *f = fopen(path, "r");
			if (!f) {
				rc = fail(c, "include_dir: cannot open %s: %s", path,
				          strerror(errno));
			} else {
				struct ctx sub = *c;
				sub.file = path;
				sub.line = 0;
				sub.included = true;
				rc = parse_file(&sub, f);
				fclose(f);
				c->log_type_seen = sub.log_type_seen;
			}
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

/* Splits a line into the directive and its words. A word starting with
 * '#' after the first argument starts a comment (the first argument may
 * be '#' itself, e.g. a topic filter). */
static TERN_MUST_CHECK enum tern_err parse_line(struct ctx *c, char *line)
{
	char *save = NULL;
	char copy[4096];
	snprintf(copy, sizeof(copy), "%s", line);
	char *key = strtok_r(line, " \t\r\n", &save);
	if (!key || key[0] == '#')
		return TERN_OK;
	/* The raw remainder of the line, trimmed, for free-text values. */
	char *rest = copy + (key - line) + strlen(key);
	while (*rest == ' ' || *rest == '\t')
		rest++;
	rest[strcspn(rest, "\r\n")] = 0;
	c->rest = rest;
	const char *arg[MAX_ARGS + 2] = {NULL};
	int n = 0;
	for (char *w; n <= MAX_ARGS && (w = strtok_r(NULL, " \t\r\n", &save)); n++) {
		if (n > 0 && w[0] == '#')
			break;
		arg[n] = w;
	}
	return apply(c, key, arg, n);
}

enum tern_err config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct ctx c = {NULL, cfg, path, 0, err, errlen, false, false};
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return TERN_E_SYS;
	}
	enum tern_err rc = parse_file(&c, f);
	fclose(f);
	return rc;
}

static void usage(FILE *out)
{
	fputs("Usage: ternd [-c FILE] [-p PORT] [-b ADDRESS] [--workers N] [--storage "
	      "memory|sqlite]\n"
	      "             [--db FILE] [-v]\n"
	      "  -c, --config-file FILE  read mosquitto.conf-style directives from FILE\n"
	      "  -p, --port PORT         listen on PORT (default 1883)\n"
	      "  -b, --bind ADDRESS      listen on ADDRESS only\n"
	      "  -w, --workers N         worker threads (default: one per core)\n"
	      "      --storage KIND      sqlite (durable, the default) or memory\n"
	      "      --db FILE           the SQLite database (default ./ternd.db)\n"
	      "  -v, --verbose           log everything (log_type all)\n"
	      "  -h, --help              this help\n"
	      "  -V, --version           print the version\n",
	      out);
}

enum tern_err config_from_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen,
                               int *exit_code)
{
	*exit_code = 1;
	struct ctx c = {NULL, cfg, "command line", 0, err, errlen, false, false};
	/* The file first, so that flags override it whatever their order. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config-file") == 0) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "%s needs a file", argv[i]);
				return TERN_E_INVALID;
			}
			if (config_load(cfg, argv[i + 1], err, errlen))
				return TERN_E_INVALID;
			i++;
		}
	}
	/* A listener from the files (listener, port, bind_address, or a
	 * listener directive such as certfile, which opens the default one on
	 * every address, as in mosquitto). */
	bool configured = cfg->n_listeners > 0;
	int port = -1;
	const char *bind = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config-file") == 0) {
			i++;
		} else if (strcmp(a, "-p") == 0 || strcmp(a, "--port") == 0) {
			if (parse_u64(&c, a, v, 1, 65535, &n))
				return TERN_E_INVALID;
			port = (int)n;
			i++;
		} else if (strcmp(a, "-b") == 0 || strcmp(a, "--bind") == 0) {
			if (!v) {
				snprintf(err, errlen, "%s needs an address", a);
				return TERN_E_INVALID;
			}
			bind = v;
			i++;
		} else if (strcmp(a, "-w") == 0 || strcmp(a, "--workers") == 0) {
			if (parse_u64(&c, a, v, 0, 256, &n))
				return TERN_E_INVALID;
			cfg->workers = (unsigned)n;
			i++;
		} else if (strcmp(a, "--storage") == 0) {
			if (v && strcmp(v, "memory") == 0)
				cfg->storage = STORAGE_MEMORY;
			else if (v && strcmp(v, "sqlite") == 0)
				cfg->storage = STORAGE_SQLITE;
			else {
				snprintf(err, errlen, "--storage: expected memory or sqlite");
				return TERN_E_INVALID;
			}
			i++;
		} else if (strcmp(a, "--db") == 0) {
			const char *slash = v ? strrchr(v, '/') : NULL;
			size_t dirlen = slash ? (size_t)(slash - v) : 0;
			if (!v || dirlen >= sizeof(cfg->persistence_location) ||
			    strlen(slash ? slash + 1 : v) >= sizeof(cfg->persistence_file) ||
			    !(slash ? slash[1] : v[0])) {
				snprintf(err, errlen, "--db needs a file path");
				return TERN_E_INVALID;
			}
			memcpy(cfg->persistence_location, v, dirlen);
			cfg->persistence_location[dirlen] = 0;
			if (slash && dirlen == 0)
				strcpy(cfg->persistence_location, "/");
			strcpy(cfg->persistence_file, slash ? slash + 1 : v);
			cfg->storage = STORAGE_SQLITE;
			i++;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			cfg->log_mask = LOG_TYPE_ALL;
		} else if (strcmp(a, "-d") == 0 || strcmp(a, "--daemon") == 0) {
			snprintf(err, errlen,
			         "%s: ternd does not daemonize; use your service manager", a);
			return TERN_E_INVALID;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			*exit_code = 0;
			return TERN_E_INVALID;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("ternd %s\n", TERN_VERSION);
			*exit_code = 0;
			return TERN_E_INVALID;
		} else {
			snprintf(err, errlen, "unknown option '%s' (see ternd --help)", a);
			return TERN_E_INVALID;
		}
	}
	if (bind && strlen(bind) >= sizeof(cfg->listeners[0].bind)) {
		snprintf(err, errlen, "address '%s' is too long", bind);
		return TERN_E_INVALID;
	}
	if (configured) {
		/* The flags override the default listener's port and address. */
		if (port >= 0)
			cfg->listeners[0].port = (uint16_t)port;
		if (bind)
			strcpy(cfg->listeners[0].bind, bind);
	} else if (add_listener(&c, port >= 0 ? (uint16_t)port : 1883, bind ? bind : "127.0.0.1")) {
		/* Without a configured listener, -p only picks the port: the
		 * broker listens on loopback, as mosquitto 2 does in its
		 * "local only mode", so that an unconfigured broker is not
		 * open to the network. */
		return TERN_E_INVALID;
	}
	/* Anonymous clients are welcome on a broker only this machine can
	 * reach; once the broker is open to the network, they are refused
	 * unless allow_anonymous says otherwise (mosquitto 2's default). */
	cfg->local_only = !configured && is_loopback(cfg->listeners[0].bind);
	if (!cfg->allow_anonymous_set)
		cfg->allow_anonymous = cfg->local_only;
	if (config_check(cfg, err, errlen))
		return TERN_E_INVALID;
	return TERN_OK;
}
