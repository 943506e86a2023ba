/*
 * config_bridge.h - mosquitto's bridge directives (`connection` blocks):
 * what a bridge is configured with, and the parser of those lines.
 *
 * A `connection NAME` line opens a bridge; the bridge directives after it
 * (address, topic, remote_clientid, ...) belong to it, as in mosquitto,
 * until the next `connection`. Other directives stay global wherever they
 * appear. The values are kept as written (defaults that depend on other
 * values, such as local_clientid "local.<remote_clientid>", are resolved by
 * bridge.c), in fixed arrays, so struct config stays a plain value.
 */
#ifndef TERN_BROKER_CONFIG_BRIDGE_H
#define TERN_BROKER_CONFIG_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"

#define MAX_BRIDGES           8
#define MAX_BRIDGE_TOPICS     32
#define MAX_BRIDGE_ADDRESSES  8
#define BRIDGE_TOPIC_MAX      256 /* bytes of a pattern, "" included */
#define BRIDGE_PREFIX_MAX     128 /* bytes of a local or remote prefix */
#define BRIDGE_DEFAULT_PORT   1883
#define BRIDGE_KEEPALIVE_MIN  5
#define BRIDGE_RESTART_BASE_S 5
#define BRIDGE_RESTART_CAP_S  30

#define BRIDGE_THRESHOLD      10 /* lazy start: messages waiting */
#define BRIDGE_IDLE_TIMEOUT_S 60 /* lazy start: idle seconds before the stop */
#define BRIDGE_PATH_MAX       1024

enum bridge_dir { BRIDGE_OUT, BRIDGE_IN, BRIDGE_BOTH };

/* start_type: started with the broker and restarted after every failure;
 * started once the local side holds `threshold` messages for the remote
 * and stopped after idle_timeout without traffic; or started with the
 * broker and never again. */
enum bridge_start { BRIDGE_START_AUTOMATIC, BRIDGE_START_LAZY, BRIDGE_START_ONCE };

/* One `topic PATTERN [DIR [QOS [LOCAL-PREFIX REMOTE-PREFIX]]]` line. A
 * prefix written "" is empty; the pattern may be "" when both prefixes
 * are set (a single topic remapped). */
struct bridge_topic {
	char pattern[BRIDGE_TOPIC_MAX];
	char local_prefix[BRIDGE_PREFIX_MAX];
	char remote_prefix[BRIDGE_PREFIX_MAX];
	uint8_t dir; /* enum bridge_dir */
	uint8_t qos;
};

struct bridge_address {
	char host[256];
	uint16_t port;
};

struct bridge_cfg {
	char name[128];
	struct bridge_address addresses[MAX_BRIDGE_ADDRESSES];
	size_t n_addresses;
	struct bridge_topic topics[MAX_BRIDGE_TOPICS];
	size_t n_topics;
	uint8_t protocol_version;  /* TERN_V31, TERN_V311 (default), TERN_V5 */
	bool cleansession;         /* false */
	uint16_t keepalive;        /* keepalive_interval, 60 */
	char remote_clientid[256]; /* "": <hostname>.<name> */
	char remote_username[256]; /* "": none */
	char remote_password[256];
	bool has_remote_password;
	bool try_private; /* true */
	/* restart_timeout: a constant (cap 0) or base and cap of a back-off
	 * with decorrelated jitter, in seconds; 5 and 30 by default. */
	uint32_t restart_base, restart_cap;
	bool notifications;            /* true */
	char notification_topic[256];  /* "": $SYS/broker/connection/<remote_clientid>/state */
	bool notifications_local_only; /* false: also on the remote, "0" as the will */
	bool round_robin;              /* false: addresses[0] is the main one */
	uint8_t start_type;            /* enum bridge_start, automatic */
	uint32_t threshold;            /* lazy: 10 */
	uint32_t idle_timeout;         /* lazy: seconds, 60 */
	char local_clientid[256];      /* "": local.<remote_clientid> */
	char local_username[256];      /* "": none (the local side needs no password) */
	char local_password[256];
	bool has_local_password;
	int8_t local_cleansession; /* -1: as cleansession */
	bool attempt_unsubscribe;  /* true: UNSUBSCRIBE the "out" patterns remotely */
	bool outgoing_retain;      /* true; false clears RETAIN on what goes out */
	uint32_t max_packet_size;  /* bytes of a PUBLISH to the remote, 0: none */
	char bind_address[256];    /* local source address, "": any */
	uint16_t receive_maximum;  /* v5, 0: max_inflight_messages */
	bool has_session_expiry;   /* bridge_session_expiry_interval given (v5) */
	uint32_t session_expiry;
	/* TLS to the remote: on with cafile, capath or tls_use_os_certs. */
	char tls_cafile[BRIDGE_PATH_MAX];
	char tls_capath[BRIDGE_PATH_MAX];
	char tls_certfile[BRIDGE_PATH_MAX];
	char tls_keyfile[BRIDGE_PATH_MAX];
	char tls_alpn[256];
	uint16_t tls_version; /* minimum, as OpenSSL's TLS1_x_VERSION; 0: TLS 1.2 */
	bool tls_insecure;
	bool tls_use_os_certs;
	bool tls_require_ocsp; /* bridge_require_ocsp: a stapled GOOD response */
	/* TLS-PSK instead of certificates: bridge_identity, bridge_psk (the
	 * key decoded from its hexadecimal). */
	char psk_identity[129];
	uint8_t psk[256];
	size_t psk_len;
};

/*
 * Applies one line (key and its words arg[0..n)) to the bridges of
 * *bridges (n_bridges of them, at most MAX_BRIDGES). Returns
 * TERN_E_NOT_FOUND when key is no bridge directive (the caller goes on with
 * its own table), TERN_OK, or TERN_E_CONFIG with why[0..whylen) saying what
 * is wrong with the line (a bridge directive before any `connection`, a bad
 * value, a limit).
 */
TERN_MUST_CHECK enum tern_err config_bridge_apply(struct bridge_cfg *bridges, size_t *n_bridges,
                                                  const char *key, const char *const *arg, int n,
                                                  char *why, size_t whylen);

/* Checks what only the whole block can tell (every bridge has an address
 * and a topic, names are unique, remote_password needs remote_username).
 * TERN_E_CONFIG with the reason in err. */
TERN_MUST_CHECK enum tern_err config_bridge_check(const struct bridge_cfg *bridges, size_t n,
                                                  char *err, size_t errlen);

#endif
