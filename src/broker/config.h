/*
 * config.h - ternd's configuration: mosquitto.conf directives and flags.
 *
 * A struct config is a plain value filled once before the broker starts
 * and read-only afterwards, so workers read it without locks. The file
 * format is mosquitto's: one directive a line, '#' comments, the same names
 * and meanings. A directive we do not support is an error naming the file
 * and the line, never silently ignored. The module's files, one per
 * concern (loader, values, listener directives, the broker's directives),
 * are listed in config_int.h.
 */
#ifndef TERN_BROKER_CONFIG_H
#define TERN_BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config_archive.h"
#include "broker/config_bridge.h"
#include "tern/error.h"

#define MAX_LISTENERS 16

/* The authentication and access settings that mosquitto's
 * per_listener_settings makes per listener (password_file, acl_file,
 * allow_anonymous, allow_zero_length_clientid, auto_id_prefix): struct
 * config's own, for every listener, unless per_listener_settings is true;
 * then each listener's. Read them through config_security(). */
struct security_cfg {
	char password_file[256]; /* mosquitto_passwd format; "": none */
	char acl_file[256];      /* mosquitto acl_file format; "": none */
	char psk_file[256];      /* identity:hexkey lines, for psk_hint listeners */
	char auto_id_prefix[32]; /* prefix of assigned client ids */
	/* Let clients in without a username. Defaults (config_from_args),
	 * as in mosquitto 2: true in local mode, false once the
	 * configuration defines a listener or the command line binds a
	 * non-loopback address. */
	bool allow_anonymous;
	bool allow_anonymous_set;        /* the file says so: no default applies */
	bool allow_zero_length_clientid; /* assign ids to clients that send none */
};

/* socket_domain: the address family a listener uses. */
enum socket_domain { SOCKET_DOMAIN_ANY, SOCKET_DOMAIN_IPV4, SOCKET_DOMAIN_IPV6 };

/* listener_allow_anonymous, zero when not given. */
enum listener_anon { LISTENER_ANON_UNSET, LISTENER_ANON_FALSE, LISTENER_ANON_TRUE };

/* One listener; the TLS settings follow the `listener` line they belong
 * to, as in mosquitto. TLS is on when certfile or psk_hint is set. */
struct listener_cfg {
	char where[300];         /* "FILE:LINE" of the line that opened it */
	char bind[64];           /* "" : every address */
	char bind_interface[32]; /* listen on this interface's address; "": none */
	uint16_t port;
	uint8_t socket_domain; /* enum socket_domain */
	char certfile[256];
	char keyfile[256];
	char cafile[256];
	char capath[256];
	char tls_version[16]; /* minimum: "tlsv1.2" (default) or "tlsv1.3" */
	char ciphers[256];
	char ciphers_tls13[256];
	char crlfile[256];         /* revoked client certificates (PEM) */
	char dhparamfile[256];     /* DH parameters for DHE ciphers (PEM) */
	char psk_hint[128];        /* TLS-PSK on (psk_file's keys), this hint sent; "": off */
	char mount_point[128];     /* its clients' topics live under this prefix; "": none */
	uint8_t proxy_protocol;    /* enable_proxy_protocol: 1 or 2; 0: off */
	bool proxy_v2_require_tls; /* proxy_protocol_v2_require_tls */
	bool require_certificate;
	/* The client certificate's CN (identity) or whole subject, RFC 2253
	 * (subject), is the username; identity wins when both are set. */
	bool use_identity_as_username;
	bool use_subject_as_username;
	bool websockets; /* `protocol websockets` */
	/* websockets_origin (mosquitto 2.1): the Origin headers an upgrade
	 * may carry, one a line; "": any. */
	char websockets_origins[1024];
	/* http_dir: the files a websockets listener serves to plain HTTP
	 * GET / HEAD requests; "": none (such requests are refused). */
	char http_dir[256];
	/* Its own security settings, in force with per_listener_settings. */
	struct security_cfg sec;
	/* mosquitto 2.1's listener_allow_anonymous (enum listener_anon) and
	 * listener_auto_id_prefix (""), which override the security
	 * settings for this listener whatever per_listener_settings says. */
	uint8_t listener_allow_anonymous;
	char listener_auto_id_prefix[32];
	/* max_qos + 1, 0 when not given (2): read it with config_max_qos(). */
	uint8_t max_qos_plus1;
	/* accept_protocol_versions (mosquitto 2.1): bit 1 << level set for
	 * each protocol level (3, 4, 5) NOT accepted; 0: all are. */
	uint8_t refused_versions;
	bool use_username_as_clientid; /* the username is the client id */
};

enum storage_kind { STORAGE_MEMORY, STORAGE_SQLITE };

enum log_dest { LOG_DEST_STDERR, LOG_DEST_STDOUT, LOG_DEST_FILE, LOG_DEST_SYSLOG, LOG_DEST_NONE };

struct config {
	struct listener_cfg listeners[MAX_LISTENERS];
	size_t n_listeners;
	unsigned workers; /* 0: one per core */
	/* The security settings of every listener, unless
	 * per_listener_settings (then each listener has its own). */
	struct security_cfg sec;
	bool per_listener_settings;
	/* No listener configured and the one from the command line is on a
	 * loopback address (127.0.0.1 unless -b says otherwise): mosquitto's
	 * "local only mode". Set by config_from_args. */
	bool local_only;
	uint32_t persistent_client_expiration; /* seconds for v3 persistent
						* sessions; 0: never expire */
	bool queue_qos0_messages;              /* queue QoS 0 for offline sessions */
	/* Deliver at the subscription's QoS even above the message's
	 * (mosquitto's non-standard option; [MQTT-3.8.4-8] says the
	 * lower of the two). */
	bool upgrade_outgoing_qos;
	/* Before a retained message goes to a new subscriber, check that its
	 * publisher may still write it (the ACL may have changed since). */
	bool check_retain_source;
	char pid_file[256];
	char user[64]; /* drop root privileges to this user */
	uint32_t
	        max_inflight_messages; /* per client, outbound QoS 1/2; also our v5 Receive Maximum */
	uint32_t max_queued_messages;    /* per session; 0: no bound */
	uint64_t max_queued_bytes;       /* payload bytes queued per session; 0: no bound */
	uint64_t max_inflight_bytes;     /* payload bytes of outbound QoS 1/2 in flight per
	                               * client; 0: no bound (one message always goes) */
	uint32_t retain_expiry_interval; /* minutes between sweeps of expired retained
	                                  * messages; 0: only when looked up */
	uint32_t max_stall_time;         /* seconds an online session over its queue bound
	                               * may slow its publishers without progress before
	                               * it drops instead; 0: never slow them */
	uint32_t max_subscriptions;      /* per client; 0: no bound */
	uint32_t max_topic_levels;       /* in a topic name or filter; 0: no bound */
	uint32_t message_size_limit;     /* payload bytes; 0: protocol limit */
	uint64_t memory_limit;           /* heap bytes (memory_limit.h); 0: none */
	uint32_t max_packet_size;        /* whole packet bytes; 0: protocol limit */
	uint16_t max_keepalive;          /* seconds */
	bool retain_available;
	uint16_t max_topic_alias;        /* v5 Topic Alias Maximum we accept */
	uint16_t max_topic_alias_broker; /* aliases we assign per v5 client */
	uint32_t connect_timeout;        /* seconds from accept to CONNECT */
	int64_t max_connections;         /* -1: no bound */
	int64_t global_max_connections;  /* mosquitto 2.1's, as max_connections here; -1 */
	int64_t global_max_clients;      /* sessions, online or not; -1: no bound */
	char clientid_prefixes[64];      /* client ids must start so; "": any */
	size_t max_output_bytes;         /* bytes queued to one socket before QoS 0 drops */
	bool set_tcp_nodelay;
	enum storage_kind storage;      /* sqlite by default; memory keeps nothing */
	char persistence_location[256]; /* directory of the database ("": cwd) */
	char persistence_file[128];     /* its file name */
	int storage_sync;               /* enum store_sync */
	uint32_t sys_interval;          /* seconds between $SYS updates; 0: none */
	uint16_t http_port;             /* http_listener: /metrics, /api/v1; 0: none */
	char http_bind[64];             /* its address ("": loopback) */
	char http_certfile[256];        /* TLS on it (src/http): PEM chain; "": plain */
	char http_keyfile[256];         /* its PEM key */
	char http_password_file[256];   /* basic auth, mosquitto_passwd format; "": none */
	bool connection_messages;       /* log connects and disconnects */
	char log_timestamp_format[64];  /* strftime format; "": Unix seconds */
	unsigned log_mask;              /* enum log_type bits */
	enum log_dest log_dest;
	uint8_t log_facility;             /* syslog: local N + 1; 0: daemon */
	uint32_t websockets_headers_size; /* bytes of an upgrade request; 0: 8192 */
	char log_file[256];
	bool log_timestamp;
	/* Cluster (docs/cluster.md): on when cluster_nats is set. */
	char cluster_nats[1024];       /* NATS URLs, comma separated; "": single node */
	char cluster_name[65];         /* prefix of subjects, streams, buckets */
	char cluster_node_name[128];   /* unique per node; "": the host name */
	uint32_t cluster_replicas;     /* JetStream replicas of what the cluster stores */
	char cluster_cafile[256];      /* TLS to NATS ("": plain) */
	char cluster_certfile[256];    /* client certificate for NATS */
	char cluster_keyfile[256];     /* its key */
	char cluster_username[128];    /* NATS user ("": none) */
	char cluster_password[128];    /* its password */
	char cluster_credentials[256]; /* NATS .creds file ("": none) */
	/* Bridges (`connection` blocks, config_bridge.h), in file order. */
	struct bridge_cfg bridges[MAX_BRIDGES];
	size_t n_bridges;
	/* Archives (`archive` blocks, config_archive.h), in file order. */
	struct archive_cfg archives[MAX_ARCHIVES];
	size_t n_archives;
};

/* The security settings in force for listener i (an index of
 * cfg->listeners): the listener's own with per_listener_settings, else the
 * broker's. */
static inline const struct security_cfg *config_security(const struct config *cfg, size_t i)
{
	return cfg->per_listener_settings ? &cfg->listeners[i].sec : &cfg->sec;
}

/* Whether listener i lets clients in without a username:
 * listener_allow_anonymous when given, else its security settings'. */
static inline bool config_allow_anonymous(const struct config *cfg, size_t i)
{
	uint8_t own = cfg->listeners[i].listener_allow_anonymous;
	return own ? own == LISTENER_ANON_TRUE : config_security(cfg, i)->allow_anonymous;
}

/* Whether allow_anonymous for listener i was set by the configuration
 * (for log messages that say why a client was refused). */
static inline bool config_allow_anonymous_set(const struct config *cfg, size_t i)
{
	return cfg->listeners[i].listener_allow_anonymous != LISTENER_ANON_UNSET ||
	       config_security(cfg, i)->allow_anonymous_set;
}

/* The prefix of client ids assigned on listener i. */
static inline const char *config_auto_id_prefix(const struct config *cfg, size_t i)
{
	const char *own = cfg->listeners[i].listener_auto_id_prefix;
	return own[0] ? own : config_security(cfg, i)->auto_id_prefix;
}

/* The highest QoS clients of listener i may use (max_qos; 2 by default). */
static inline uint8_t config_max_qos(const struct config *cfg, size_t i)
{
	uint8_t v = cfg->listeners[i].max_qos_plus1;
	return v ? (uint8_t)(v - 1) : 2;
}

/* Told of one problem of a configuration: "FILE:LINE: why". */
typedef void (*config_report_fn)(void *arg, const char *problem);

/* Checks what can only be judged once the whole file is read (a TLS
 * listener has both certfile and keyfile, ...). */
TERN_MUST_CHECK enum tern_err config_check(const struct config *cfg, char *err, size_t errlen);

/* As config_check(), but every problem found goes to report(arg, ...),
 * *problems counting them: each listener's first, the cluster's, the HTTP
 * listener's, the bridges' and the archives' first (`ternd --test-config`).
 * TERN_E_CONFIG when there was any; err is scratch space. */
TERN_MUST_CHECK enum tern_err config_check_all(const struct config *cfg, config_report_fn report,
                                               void *arg, unsigned *problems, char *err,
                                               size_t errlen);

/* Fills cfg with the defaults (which `make run` uses). */
void config_defaults(struct config *cfg);

/*
 * Reads the file at path into cfg. On error returns TERN_E_CONFIG (or
 * TERN_E_SYS when the file cannot be read) and writes "FILE:LINE: why" into
 * err[0..errlen).
 */
TERN_MUST_CHECK enum tern_err config_load(struct config *cfg, const char *path, char *err,
                                          size_t errlen);

/*
 * As config_load(), but a line in error does not end the reading: its
 * "FILE:LINE: why" goes to report(arg, ...) and the next line is read, so
 * that one run names every problem of the file (and of the files its
 * include_dir reads), as `ternd --test-config` does. *problems is increased
 * by their number. Returns TERN_E_CONFIG when there was any, TERN_E_SYS
 * when the file itself cannot be read (err says why, and report is not
 * called for it); the lines in error leave cfg as if they were absent.
 */
TERN_MUST_CHECK enum tern_err config_load_all(struct config *cfg, const char *path,
                                              config_report_fn report, void *arg,
                                              unsigned *problems, char *err, size_t errlen);

/*
 * Applies the command line (argv[1..argc)): -c FILE is read first, then the
 * flags override it. Without a listener in the files, the one listener is
 * -b ADDRESS (127.0.0.1) port -p PORT (1883), and local_only is set when
 * that address is loopback; allow_anonymous, unless the files set it, is
 * local_only (mosquitto 2's defaults). Sets *exit_code and returns TERN_E_INVALID when ternd
 * should exit at once (help, version: exit_code 0; a bad flag or file:
 * exit_code 1, with the message in err).
 */
TERN_MUST_CHECK enum tern_err config_from_args(struct config *cfg, int argc, char **argv, char *err,
                                               size_t errlen, int *exit_code);

#endif
