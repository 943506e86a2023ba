/*
 * config_broker.c - the broker's directives of mosquitto.conf other than the
 * listeners' (config_listener.c): security, sessions and limits,
 * persistence, logging, the process and the cluster; see config_int.h.
 *
 * Most are a row of the table at the end; the setters above it are those
 * whose value needs more than a range check (a special value, a side
 * effect on another field, several words).
 */
#include "broker/config_int.h"

#include <string.h>

#include "store/store.h"
#include "util/log.h"

static TERN_MUST_CHECK enum tern_err set_allow_anonymous(struct config_ctx *c,
                                                         const struct directive *d, void *field,
                                                         const char *const *arg)
{
	(void)field;
	struct security_cfg *sec = config_current_security(c);
	if (!sec)
		return TERN_E_CONFIG;
	enum tern_err err = config_parse_bool(c, d->name, arg[0], &sec->allow_anonymous);
	if (!err)
		sec->allow_anonymous_set = true;
	return err;
}

static TERN_MUST_CHECK enum tern_err set_per_listener_settings(struct config_ctx *c,
                                                               const struct directive *d,
                                                               void *field, const char *const *arg)
{
	(void)field;
	bool on = false;
	enum tern_err err = config_parse_bool(c, d->name, arg[0], &on);
	if (err)
		return err;
	/* It says where the security directives go: one read before it
	 * went to the broker's settings, which would then apply to no
	 * listener. mosquitto refuses this too. */
	if (on && c->security_seen)
		return config_fail(c, "per_listener_settings must be set before any other "
		                      "security setting (allow_anonymous, password_file, "
		                      "acl_file, allow_zero_length_clientid, auto_id_prefix)");
	c->cfg->per_listener_settings = on;
	return TERN_OK;
}

/* mosquitto's plugins are shared objects written against its own
 * broker's API: ternd cannot load them, and running without the checks a
 * plugin makes would open the broker. */
static TERN_MUST_CHECK enum tern_err set_plugin(struct config_ctx *c, const struct directive *d,
                                                void *field, const char *const *arg)
{
	(void)field;
	(void)arg;
	return config_fail(c,
	                   "%s: ternd does not load mosquitto plugins; use password_file (tern "
	                   "passwd or mosquitto_passwd writes it), acl_file, "
	                   "use_identity_as_username or use_subject_as_username (client "
	                   "certificates) instead; for dynamic security, ternd reloads "
	                   "password_file and acl_file on SIGHUP",
	                   d->name);
}

static TERN_MUST_CHECK enum tern_err set_max_inflight_messages(struct config_ctx *c,
                                                               const struct directive *d,
                                                               void *field, const char *const *arg)
{
	/* 0 means "no limit" in mosquitto; the v5 ceiling is 65535. */
	uint64_t n = 0;
	enum tern_err err = config_parse_u64(c, d->name, arg[0], 0, 65535, &n);
	if (err)
		return err;
	config_store_uint(field, d->size, n ? n : 65535);
	return TERN_OK;
}

/* memory_limit BYTES (memory_limit.h); 0, mosquitto's default: none. */
static TERN_MUST_CHECK enum tern_err set_memory_limit(struct config_ctx *c,
                                                      const struct directive *d, void *field,
                                                      const char *const *arg)
{
	uint64_t n = 0;
	enum tern_err err = config_parse_u64(c, d->name, arg[0], 0, UINT64_MAX / 2, &n);
	if (err)
		return err;
	*(uint64_t *)field = n;
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_max_packet_size(struct config_ctx *c,
                                                         const struct directive *d, void *field,
                                                         const char *const *arg)
{
	uint64_t n = 0;
	enum tern_err err = config_parse_u64(c, d->name, arg[0], 0, 268435460, &n);
	if (err)
		return err;
	if (n && n < 20)
		return config_fail(c, "max_packet_size must be 0 or at least 20");
	config_store_uint(field, d->size, n);
	return TERN_OK;
}

/* mosquitto's switch: durable storage on or off. */
static TERN_MUST_CHECK enum tern_err set_persistence(struct config_ctx *c,
                                                     const struct directive *d, void *field,
                                                     const char *const *arg)
{
	(void)field;
	bool on = false;
	enum tern_err err = config_parse_bool(c, d->name, arg[0], &on);
	if (err)
		return err;
	c->cfg->storage = on ? STORAGE_SQLITE : STORAGE_MEMORY;
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_persistence_location(struct config_ctx *c,
                                                              const struct directive *d,
                                                              void *field, const char *const *arg)
{
	if (!arg[0] || strlen(arg[0]) >= d->size)
		return config_fail(c, "persistence_location needs a directory");
	strcpy(field, arg[0]);
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_persistence_file(struct config_ctx *c,
                                                          const struct directive *d, void *field,
                                                          const char *const *arg)
{
	if (!arg[0] || strlen(arg[0]) >= d->size || strchr(arg[0], '/'))
		return config_fail(c, "persistence_file needs a file name");
	strcpy(field, arg[0]);
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_log_type(struct config_ctx *c, const struct directive *d,
                                                  void *field, const char *const *arg)
{
	(void)d;
	(void)field;
	static const struct config_choice types[] = {
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
		return config_fail(c, "log_type needs a value");
	/* Like mosquitto, the first log_type replaces the defaults and later
	 * ones add to it. */
	if (!c->log_type_seen)
		c->cfg->log_mask = 0;
	c->log_type_seen = true;
	const struct config_choice *t = config_choice_find(types, v);
	if (!t)
		return config_fail(c, "log_type: unknown type '%s'", v);
	c->cfg->log_mask |= t->value;
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err set_log_dest(struct config_ctx *c, const struct directive *d,
                                                  void *field, const char *const *arg)
{
	(void)d;
	(void)field;
	struct config *cfg = c->cfg;
	const char *v = arg[0];
	if (!v)
		return config_fail(c, "log_dest needs a value");
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
			return config_fail(c, "log_dest file needs a path");
		cfg->log_dest = LOG_DEST_FILE;
		strcpy(cfg->log_file, arg[1]);
	} else
		return config_fail(
		        c, "log_dest: '%s' is not supported (stderr, stdout, file, syslog, none)",
		        v);
	return TERN_OK;
}

static const struct config_choice storage_kinds[] = {
        {"memory", STORAGE_MEMORY},
        {"sqlite", STORAGE_SQLITE},
        {NULL, 0},
};
static const struct config_choice storage_syncs[] = {
        {"full", STORE_SYNC_FULL},
        {"normal", STORE_SYNC_NORMAL},
        {"off", STORE_SYNC_OFF},
        {NULL, 0},
};
/* log_facility N: syslog's local0 .. local7. */
static const struct config_choice facilities[] = {
        {"0", 1}, {"1", 2}, {"2", 3}, {"3", 4}, {"4", 5}, {"5", 6}, {"6", 7}, {"7", 8}, {NULL, 0},
};

/* Grouped as mosquitto.conf's manual groups them. */
static const struct directive rows[] = {
        /* Security. */
        /* Security: the broker's, or with per_listener_settings true
         * the current listener's (SEC). */
        {"per_listener_settings", K_FUNC, 1, NO_FIELD, .set = set_per_listener_settings},
        {"allow_anonymous", K_FUNC, 1, NO_FIELD, .set = set_allow_anonymous},
        {"password_file", K_STR, 1, SEC(password_file)},
        {"acl_file", K_STR, 1, SEC(acl_file)},
        {"psk_file", K_STR, 1, SEC(psk_file)},
        {"allow_zero_length_clientid", K_BOOL, 1, SEC(allow_zero_length_clientid)},
        {"auto_id_prefix", K_STR, 1, SEC(auto_id_prefix)},
        {"clientid_prefixes", K_STR, 1, G(clientid_prefixes)},
        {"auth_plugin", K_FUNC, ARGS_REST, NO_FIELD, .set = set_plugin},
        {"plugin", K_FUNC, ARGS_REST, NO_FIELD, .set = set_plugin},
        {"global_plugin", K_FUNC, ARGS_REST, NO_FIELD, .set = set_plugin},
        /* Sessions, queues and limits. */
        {"persistent_client_expiration", K_DURATION, 1, G(persistent_client_expiration)},
        {"queue_qos0_messages", K_BOOL, 1, G(queue_qos0_messages)},
        {"upgrade_outgoing_qos", K_BOOL, 1, G(upgrade_outgoing_qos)},
        {"check_retain_source", K_BOOL, 1, G(check_retain_source)},
        {"max_inflight_messages", K_FUNC, 1, G(max_inflight_messages),
         .set = set_max_inflight_messages},
        {"max_queued_messages", K_UINT, 1, G(max_queued_messages), RANGE(0, UINT32_MAX)},
        {"max_queued_bytes", K_UINT, 1, G(max_queued_bytes), RANGE(0, UINT64_MAX / 2)},
        {"max_inflight_bytes", K_UINT, 1, G(max_inflight_bytes), RANGE(0, UINT64_MAX / 2)},
        {"memory_limit", K_FUNC, 1, G(memory_limit), .set = set_memory_limit},
        /* mosquitto 2.0.21's: minutes between sweeps of the retained
         * messages whose Message Expiry Interval has passed. */
        {"retain_expiry_interval", K_UINT, 1, G(retain_expiry_interval), RANGE(0, 525600)},
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
        {"log_facility", K_ENUM, 1, G(log_facility), .choices = facilities},
        /* libwebsockets' log levels: ternd has its own WebSockets layer,
         * which logs with log_type websockets; checked, not used. */
        {"websockets_log_level", K_UINT, 1, NO_FIELD, RANGE(0, INT32_MAX)},
        {"websockets_headers_size", K_UINT, 1, G(websockets_headers_size), RANGE(0, 65535)},
        /* The format may contain spaces: the rest of the line. */
        {"log_timestamp_format", K_STR, ARGS_REST, G(log_timestamp_format)},
        {"connection_messages", K_BOOL, 1, G(connection_messages)},
        {"sys_interval", K_UINT, 1, G(sys_interval), RANGE(0, 86400)},
        /* The process. */
        {"workers", K_UINT, 1, G(workers), RANGE(0, 256)},
        {"pid_file", K_STR, 1, G(pid_file)},
        {"user", K_STR, 1, G(user)},
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

const struct directive_table config_broker_table = TABLE(rows);
