/*
 * config.c - mosquitto.conf directives and ternd's flags; see config.h.
 *
 * The parser is a table of directives, each with a small setter, so the list
 * of what we accept is in one place. Values are checked as strictly as
 * mosquitto checks them (a number must be a whole number in range, a boolean
 * "true" or "false"); every error names the file and the line.
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

static enum tern_err fail(struct ctx *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static enum tern_err fail(struct ctx *c, const char *fmt, ...)
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

static enum tern_err parse_u64(struct ctx *c, const char *name, const char *s, uint64_t min,
                               uint64_t max, uint64_t *out)
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

static enum tern_err parse_bool(struct ctx *c, const char *name, const char *s, bool *out)
{
	if (s && strcmp(s, "true") == 0)
		*out = true;
	else if (s && strcmp(s, "false") == 0)
		*out = false;
	else
		return fail(c, "%s: expected true or false, got '%s'", name, s ? s : "");
	return TERN_OK;
}

/* A loopback address: 127.0.0.0/8, ::1 or localhost. */
static bool is_loopback(const char *a)
{
	return strncmp(a, "127.", 4) == 0 || strcmp(a, "::1") == 0 || strcmp(a, "localhost") == 0;
}

static enum tern_err add_listener(struct ctx *c, uint16_t port, const char *bind)
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

static enum tern_err set_log_type(struct ctx *c, const char *v)
{
	static const struct {
		const char *name;
		unsigned bits;
	} types[] = {
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
	};
	if (!v)
		return fail(c, "log_type needs a value");
	/* Like mosquitto, the first log_type replaces the defaults and later
	 * ones add to it. */
	if (!c->log_type_seen)
		c->cfg->log_mask = 0;
	c->log_type_seen = true;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(v, types[i].name) == 0) {
			c->cfg->log_mask |= types[i].bits;
			return TERN_OK;
		}
	}
	return fail(c, "log_type: unknown type '%s'", v);
}

static enum tern_err set_log_dest(struct ctx *c, const char *v, const char *arg)
{
	struct config *cfg = c->cfg;
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
		if (!arg || strlen(arg) >= sizeof(cfg->log_file))
			return fail(c, "log_dest file needs a path");
		cfg->log_dest = LOG_DEST_FILE;
		strcpy(cfg->log_file, arg);
	} else
		return fail(c,
		            "log_dest: '%s' is not supported (stderr, stdout, file, syslog, none)",
		            v);
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

static enum tern_err copy_value(struct ctx *c, const char *key, const char *v, char *dst,
                                size_t cap)
{
	if (!v || !v[0])
		return fail(c, "%s needs a value", key);
	if (strlen(v) >= cap)
		return fail(c, "%s: value too long", key);
	strcpy(dst, v);
	return TERN_OK;
}

static enum tern_err set_tls(struct ctx *c, const char *key, const char *v)
{
	struct listener_cfg *l = current_listener(c);
	if (!l)
		return TERN_E_CONFIG;
	if (strcmp(key, "certfile") == 0)
		return copy_value(c, key, v, l->certfile, sizeof(l->certfile));
	if (strcmp(key, "keyfile") == 0)
		return copy_value(c, key, v, l->keyfile, sizeof(l->keyfile));
	if (strcmp(key, "cafile") == 0)
		return copy_value(c, key, v, l->cafile, sizeof(l->cafile));
	if (strcmp(key, "capath") == 0)
		return copy_value(c, key, v, l->capath, sizeof(l->capath));
	if (strcmp(key, "ciphers") == 0)
		return copy_value(c, key, v, l->ciphers, sizeof(l->ciphers));
	if (strcmp(key, "ciphers_tls1.3") == 0)
		return copy_value(c, key, v, l->ciphers_tls13, sizeof(l->ciphers_tls13));
	if (strcmp(key, "tls_version") == 0) {
		if (!v || (strcmp(v, "tlsv1.2") != 0 && strcmp(v, "tlsv1.3") != 0))
			return fail(c, "tls_version: expected tlsv1.2 or tlsv1.3 (older versions "
			               "are not offered)");
		strcpy(l->tls_version, v);
		return TERN_OK;
	}
	if (strcmp(key, "require_certificate") == 0)
		return parse_bool(c, key, v, &l->require_certificate);
	return parse_bool(c, key, v, &l->use_identity_as_username);
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
	return TERN_OK;
}

/* mosquitto's durations: a number with h, d, w, m (months) or y. */
static enum tern_err parse_duration(struct ctx *c, const char *key, const char *v, uint32_t *out)
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

static enum tern_err parse_line(struct ctx *c, char *line);

/* Applies every line of f; a line too long for the buffer is an error,
 * never split into two directives. */
static enum tern_err parse_file(struct ctx *c, FILE *f)
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
static enum tern_err include_dir(struct ctx *c, const char *dir)
{
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

/* Applies one directive with up to two arguments. */
static enum tern_err apply(struct ctx *c, const char *key, const char *v, const char *v2)
{
	struct config *cfg = c->cfg;
	uint64_t n;
	enum tern_err err;

	if (strcmp(key, "listener") == 0) {
		if ((err = parse_u64(c, key, v, 0, 65535, &n)))
			return err;
		return add_listener(c, (uint16_t)n, v2);
	}
	if (strcmp(key, "port") == 0) {
		if ((err = parse_u64(c, key, v, 0, 65535, &n)))
			return err;
		/* mosquitto's `port` sets the default listener. */
		if (cfg->n_listeners == 0)
			return add_listener(c, (uint16_t)n, NULL);
		cfg->listeners[0].port = (uint16_t)n;
		return TERN_OK;
	}
	if (strcmp(key, "bind_address") == 0) {
		if (!v || strlen(v) >= sizeof(cfg->listeners[0].bind))
			return fail(c, "bind_address needs an address");
		if (cfg->n_listeners == 0 && (err = add_listener(c, 1883, NULL)))
			return err;
		strcpy(cfg->listeners[0].bind, v);
		return TERN_OK;
	}
	if (strcmp(key, "workers") == 0) {
		if ((err = parse_u64(c, key, v, 0, 256, &n)))
			return err;
		cfg->workers = (unsigned)n;
		return TERN_OK;
	}
	if (strcmp(key, "allow_zero_length_clientid") == 0)
		return parse_bool(c, key, v, &cfg->allow_zero_length_clientid);
	if (strcmp(key, "auto_id_prefix") == 0)
		return copy_value(c, key, v, cfg->auto_id_prefix, sizeof(cfg->auto_id_prefix));
	if (strcmp(key, "queue_qos0_messages") == 0)
		return parse_bool(c, key, v, &cfg->queue_qos0_messages);
	if (strcmp(key, "persistent_client_expiration") == 0)
		return parse_duration(c, key, v, &cfg->persistent_client_expiration);
	if (strcmp(key, "pid_file") == 0)
		return copy_value(c, key, v, cfg->pid_file, sizeof(cfg->pid_file));
	if (strcmp(key, "user") == 0)
		return copy_value(c, key, v, cfg->user, sizeof(cfg->user));
	if (strcmp(key, "include_dir") == 0)
		return include_dir(c, v);
	if (strcmp(key, "autosave_interval") == 0 || strcmp(key, "autosave_on_changes") == 0) {
		/* Meant to bound what a crash loses; ternd commits every change
		 * before acknowledging it, so there is nothing to tune. */
		uint64_t unused;
		if (strcmp(key, "autosave_on_changes") == 0) {
			bool b;
			return parse_bool(c, key, v, &b);
		}
		return parse_u64(c, key, v, 0, UINT32_MAX, &unused);
	}
	if (strcmp(key, "password_file") == 0)
		return copy_value(c, key, v, cfg->password_file, sizeof(cfg->password_file));
	if (strcmp(key, "acl_file") == 0)
		return copy_value(c, key, v, cfg->acl_file, sizeof(cfg->acl_file));
	if (strcmp(key, "allow_anonymous") == 0) {
		cfg->allow_anonymous_set = true;
		return parse_bool(c, key, v, &cfg->allow_anonymous);
	}
	if (strcmp(key, "per_listener_settings") == 0) {
		/* mosquitto's default, false, is how ternd works: allow_anonymous,
		 * password_file and acl_file apply to every listener. Saying so is
		 * fine; asking for per-listener security is not supported, and
		 * ignoring it would silently widen access. */
		bool on;
		if ((err = parse_bool(c, key, v, &on)))
			return err;
		if (on)
			return fail(c, "per_listener_settings true is not supported: ternd "
			               "applies its security settings to every listener");
		return TERN_OK;
	}
	if (strcmp(key, "retain_available") == 0)
		return parse_bool(c, key, v, &cfg->retain_available);
	if (strcmp(key, "set_tcp_nodelay") == 0)
		return parse_bool(c, key, v, &cfg->set_tcp_nodelay);
	if (strcmp(key, "max_inflight_messages") == 0) {
		/* 0 means "no limit" in mosquitto; the v5 ceiling is 65535. */
		if ((err = parse_u64(c, key, v, 0, 65535, &n)))
			return err;
		cfg->max_inflight_messages = n ? (uint32_t)n : 65535;
		return TERN_OK;
	}
	if (strcmp(key, "max_queued_messages") == 0) {
		if ((err = parse_u64(c, key, v, 0, UINT32_MAX, &n)))
			return err;
		cfg->max_queued_messages = (uint32_t)n;
		return TERN_OK;
	}
	if (strcmp(key, "max_stall_time") == 0) {
		/* Ours: how long a subscriber that stopped reading may hold
		 * back its publishers (flow control, src/broker/flow.h). */
		if ((err = parse_u64(c, key, v, 0, 86400, &n)))
			return err;
		cfg->max_stall_time = (uint32_t)n;
		return TERN_OK;
	}
	if (strcmp(key, "max_queued_bytes") == 0) {
		if ((err = parse_u64(c, key, v, 0, UINT64_MAX / 2, &n)))
			return err;
		cfg->max_queued_bytes = n;
		return TERN_OK;
	}
	if (strcmp(key, "max_subscriptions") == 0) {
		if ((err = parse_u64(c, key, v, 0, UINT32_MAX, &n)))
			return err;
		cfg->max_subscriptions = (uint32_t)n;
		return TERN_OK;
	}
	if (strcmp(key, "max_topic_levels") == 0) {
		if ((err = parse_u64(c, key, v, 0, 65535, &n)))
			return err;
		cfg->max_topic_levels = (uint32_t)n;
		return TERN_OK;
	}
	if (strcmp(key, "message_size_limit") == 0) {
		if ((err = parse_u64(c, key, v, 0, 268435455, &n)))
			return err;
		cfg->message_size_limit = (uint32_t)n;
		return TERN_OK;
	}
	if (strcmp(key, "max_packet_size") == 0) {
		if ((err = parse_u64(c, key, v, 0, 268435460, &n)))
			return err;
		if (n && n < 20)
			return fail(c, "max_packet_size must be 0 or at least 20");
		cfg->max_packet_size = (uint32_t)n;
		return TERN_OK;
	}
	if (strcmp(key, "max_keepalive") == 0) {
		if ((err = parse_u64(c, key, v, 0, 65535, &n)))
			return err;
		cfg->max_keepalive = (uint16_t)n;
		return TERN_OK;
	}
	if (strcmp(key, "max_topic_alias_broker") == 0) {
		if ((err = parse_u64(c, key, v, 0, 65535, &n)))
			return err;
		cfg->max_topic_alias_broker = (uint16_t)n;
		return TERN_OK;
	}
	if (strcmp(key, "max_topic_alias") == 0) {
		if ((err = parse_u64(c, key, v, 0, 65535, &n)))
			return err;
		cfg->max_topic_alias = (uint16_t)n;
		return TERN_OK;
	}
	if (strcmp(key, "max_connections") == 0) {
		if (v && strcmp(v, "-1") == 0) {
			cfg->max_connections = -1;
			return TERN_OK;
		}
		if ((err = parse_u64(c, key, v, 0, INT32_MAX, &n)))
			return err;
		cfg->max_connections = (int64_t)n;
		return TERN_OK;
	}
	if (strcmp(key, "connect_timeout") == 0) {
		if ((err = parse_u64(c, key, v, 1, 3600, &n)))
			return err;
		cfg->connect_timeout = (uint32_t)n;
		return TERN_OK;
	}
	if (strcmp(key, "certfile") == 0 || strcmp(key, "keyfile") == 0 ||
	    strcmp(key, "cafile") == 0 || strcmp(key, "capath") == 0 ||
	    strcmp(key, "ciphers") == 0 || strcmp(key, "ciphers_tls1.3") == 0 ||
	    strcmp(key, "tls_version") == 0 || strcmp(key, "require_certificate") == 0 ||
	    strcmp(key, "use_identity_as_username") == 0)
		return set_tls(c, key, v);
	if (strcmp(key, "protocol") == 0) {
		struct listener_cfg *l = current_listener(c);
		if (!l)
			return TERN_E_CONFIG;
		if (v && strcmp(v, "websockets") == 0)
			l->websockets = true;
		else if (v && strcmp(v, "mqtt") == 0)
			l->websockets = false;
		else
			return fail(c, "protocol: expected mqtt or websockets");
		return TERN_OK;
	}
	if (strcmp(key, "persistence") == 0) {
		/* mosquitto's switch: durable storage on or off. */
		bool on;
		if ((err = parse_bool(c, key, v, &on)))
			return err;
		cfg->storage = on ? STORAGE_SQLITE : STORAGE_MEMORY;
		return TERN_OK;
	}
	if (strcmp(key, "storage") == 0) {
		if (v && strcmp(v, "memory") == 0)
			cfg->storage = STORAGE_MEMORY;
		else if (v && strcmp(v, "sqlite") == 0)
			cfg->storage = STORAGE_SQLITE;
		else
			return fail(c, "storage: expected memory or sqlite");
		return TERN_OK;
	}
	if (strcmp(key, "storage_sync") == 0) {
		if (v && strcmp(v, "full") == 0)
			cfg->storage_sync = STORE_SYNC_FULL;
		else if (v && strcmp(v, "normal") == 0)
			cfg->storage_sync = STORE_SYNC_NORMAL;
		else if (v && strcmp(v, "off") == 0)
			cfg->storage_sync = STORE_SYNC_OFF;
		else
			return fail(c, "storage_sync: expected full, normal or off");
		return TERN_OK;
	}
	if (strcmp(key, "persistence_location") == 0) {
		if (!v || strlen(v) >= sizeof(cfg->persistence_location))
			return fail(c, "persistence_location needs a directory");
		strcpy(cfg->persistence_location, v);
		return TERN_OK;
	}
	if (strcmp(key, "persistence_file") == 0) {
		if (!v || strlen(v) >= sizeof(cfg->persistence_file) || strchr(v, '/'))
			return fail(c, "persistence_file needs a file name");
		strcpy(cfg->persistence_file, v);
		return TERN_OK;
	}
	if (strcmp(key, "log_type") == 0)
		return set_log_type(c, v);
	if (strcmp(key, "log_dest") == 0)
		return set_log_dest(c, v, v2);
	if (strcmp(key, "sys_interval") == 0) {
		if ((err = parse_u64(c, key, v, 0, 86400, &n)))
			return err;
		cfg->sys_interval = (uint32_t)n;
		return TERN_OK;
	}
	if (strcmp(key, "http_listener") == 0) {
		if ((err = parse_u64(c, key, v, 1, 65535, &n)))
			return err;
		cfg->http_port = (uint16_t)n;
		if (v2 && strlen(v2) >= sizeof(cfg->http_bind))
			return fail(c, "http_listener: address too long");
		strcpy(cfg->http_bind, v2 ? v2 : "");
		return TERN_OK;
	}
	if (strcmp(key, "connection_messages") == 0)
		return parse_bool(c, key, v, &cfg->connection_messages);
	if (strcmp(key, "log_timestamp_format") == 0) {
		/* The format may contain spaces: take the rest of the line. */
		return copy_value(c, key, c->rest, cfg->log_timestamp_format,
		                  sizeof(cfg->log_timestamp_format));
	}
	if (strcmp(key, "log_timestamp") == 0)
		return parse_bool(c, key, v, &cfg->log_timestamp);
	return fail(c, "unknown or unsupported directive '%s'", key);
}

static enum tern_err parse_line(struct ctx *c, char *line)
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
	if (strcmp(key, "log_timestamp_format") == 0)
		return apply(c, key, rest, NULL);
	char *v = strtok_r(NULL, " \t\r\n", &save);
	char *v2 = strtok_r(NULL, " \t\r\n", &save);
	char *extra = strtok_r(NULL, " \t\r\n", &save);
	if (extra && extra[0] != '#')
		return fail(c, "%s: too many arguments", key);
	if (v2 && v2[0] == '#')
		v2 = NULL;
	return apply(c, key, v, v2);
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
