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

enum bridge_dir { BRIDGE_OUT, BRIDGE_IN, BRIDGE_BOTH };

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
	bool notifications;           /* true */
	char notification_topic[256]; /* "": $SYS/broker/connection/<remote_clientid>/state */
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
