/*
 * config_int.h - inside the config module: what its files share.
 *
 * The config module is split by concern:
 *   config.c           the public entry points: defaults, config_check,
 *                      the command line (config_from_args)
 *   config_load.c      the loader: lines, words, files, include_dir, and
 *                      apply(), the one loop over the directive tables
 *   config_value.c     the values: numbers, booleans, strings, durations,
 *                      names, and the error message naming file and line
 *   config_listener.c  the listener directives (listener, port, TLS, ...)
 *                      and their table
 *   config_broker.c    every other directive of the broker (security,
 *                      sessions and limits, persistence, logging, the
 *                      process, the cluster) and their table
 * A group of directives with a block of its own (mosquitto's `connection`
 * blocks for bridges) gets a file of its own too, config_bridge.c, with its
 * table listed in config_load.c's `config_tables[]` and its block as a scope
 * (enum scope) the way `listener` opens a block for S_LISTENER.
 *
 * Nothing here is public: config.h is the module's interface.
 */
#ifndef TERN_BROKER_CONFIG_INT_H
#define TERN_BROKER_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/config.h"

/* The state of one read of a file: where we are (for error messages) and
 * what a later line must know of earlier ones. */
struct config_ctx {
	const char *rest; /* the line after the directive, for free text */
	struct config *cfg;
	const char *file;
	int line;
	char *err;
	size_t errlen;
	bool log_type_seen;
	/* A security directive was read: per_listener_settings, which says
	 * where they go, may no longer change (as in mosquitto). */
	bool security_seen;
	bool included; /* a file read by include_dir */
	/* config_load_all(): a line in error is reported here and the
	 * reading goes on; NULL: the first error ends it. */
	config_report_fn report;
	void *report_arg;
	unsigned *problems;
};

/* ---- Values (config_value.c) ---- */

/* Writes "FILE:LINE: " and the message into c->err; returns TERN_E_CONFIG,
 * so that a caller can `return config_fail(...)`. */
TERN_MUST_CHECK enum tern_err config_fail(struct config_ctx *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* A whole number in [min, max] into *out; an error naming `name` for
 * anything else (a sign, trailing characters, NULL). */
TERN_MUST_CHECK enum tern_err config_parse_u64(struct config_ctx *c, const char *name,
                                               const char *s, uint64_t min, uint64_t max,
                                               uint64_t *out);

/* "true" or "false" into *out. */
TERN_MUST_CHECK enum tern_err config_parse_bool(struct config_ctx *c, const char *name,
                                                const char *s, bool *out);

/* A non-empty v into dst[0..cap), refused when it does not fit. */
TERN_MUST_CHECK enum tern_err config_copy_value(struct config_ctx *c, const char *key,
                                                const char *v, char *dst, size_t cap);

/* mosquitto's durations (2h, 14d, 1w, 6m, 1y) as seconds into *out. */
TERN_MUST_CHECK enum tern_err config_parse_duration(struct config_ctx *c, const char *key,
                                                    const char *v, uint32_t *out);

/* Stores v into an unsigned integer, bool or enum field of `size` bytes
 * (1, 2, 4 or 8; any other size stores nothing). The caller keeps v within
 * the field's width. */
void config_store_uint(void *field, size_t size, uint64_t v);

/* One name of an enumerated value. Tables of them end with a NULL name. */
struct config_choice {
	const char *name;
	unsigned value;
};

/* The entry of a NULL-terminated table named v; NULL when none is (or v is
 * NULL). */
const struct config_choice *config_choice_find(const struct config_choice *table, const char *v);

/* ---- The directive tables ---- */

enum kind {
	K_UINT,     /* whole number in [min, max] */
	K_BOOL,     /* true or false */
	K_STR,      /* a non-empty string that fits the char array */
	K_DURATION, /* 2h, 14d, 1w, 6m, 1y: seconds in a uint32_t */
	K_ENUM,     /* one of .choices: its value into the field */
	K_FUNC,     /* .set does it all */
};

/* Which struct a row's field is in; config_load.c's apply() finds it. */
enum scope {
	S_GLOBAL,   /* a member of struct config */
	S_LISTENER, /* a member of the current struct listener_cfg */
	S_SECURITY, /* a member of the current struct security_cfg
	             * (config_current_security()) */
};

/* Words after the directive that a line may have: 1, 2, ... or the rest
 * of the line as one string. */
#define ARGS_REST 0
#define MAX_ARGS  4
/* Words a line may have after its directive, for any directive. */
#define MAX_WORDS 16

struct directive;

/* A K_FUNC setter: arg[0..MAX_ARGS] are the words after the directive
 * (NULL past the last one; with ARGS_REST, arg[0] is the rest of the
 * line); field is the row's field (NULL with NO_FIELD). */
typedef enum tern_err (*config_setter)(struct config_ctx *c, const struct directive *d, void *field,
                                       const char *const *arg);

struct directive {
	const char *name;
	enum kind kind;
	unsigned char args; /* words the line may have after the name, or ARGS_REST */
	enum scope scope;
	size_t off, size;                    /* the field; size 0: none */
	uint64_t min, max;                   /* K_UINT */
	const struct config_choice *choices; /* K_ENUM, ending with a NULL name */
	config_setter set;                   /* K_FUNC */
};

/* The rows one file of the module contributes. */
struct directive_table {
	const struct directive *rows;
	size_t n;
};

#define MEMBER_SIZE(type, m) sizeof(((type *)0)->m)
#define G(m)                                                                                       \
	.scope = S_GLOBAL, .off = offsetof(struct config, m), .size = MEMBER_SIZE(struct config, m)
#define L(m)                                                                                       \
	.scope = S_LISTENER, .off = offsetof(struct listener_cfg, m),                              \
	.size = MEMBER_SIZE(struct listener_cfg, m)
#define SEC(m)                                                                                     \
	.scope = S_SECURITY, .off = offsetof(struct security_cfg, m),                              \
	.size = MEMBER_SIZE(struct security_cfg, m)
#define NO_FIELD      .size = 0
#define RANGE(lo, hi) .min = (lo), .max = (hi)
#define TABLE(rows)                                                                                \
	{                                                                                          \
		rows, sizeof(rows) / sizeof(rows[0])                                               \
	}

extern const struct directive_table config_listener_table; /* config_listener.c */
extern const struct directive_table config_broker_table;   /* config_broker.c */
extern const struct directive_table config_load_table;     /* config_load.c: include_dir */

/* Every table of the module, ending with NULL (config_load.c). A name is
 * in one table only (test_config.c checks it). */
extern const struct directive_table *const config_tables[];

/* ---- Listeners (config_listener.c) ---- */

/* Opens a listener on port and bind (NULL: every address); refused past
 * MAX_LISTENERS or with an address too long. */
TERN_MUST_CHECK enum tern_err config_add_listener(struct config_ctx *c, uint16_t port,
                                                  const char *bind);

/* The listener a listener-specific directive belongs to: the last one, or
 * the default listener when none was declared yet (as mosquitto does);
 * NULL, with the error in c->err, when it cannot be opened. */
struct listener_cfg *config_current_listener(struct config_ctx *c);

/* The security settings a security directive goes into: the current
 * listener's with per_listener_settings (opening the default listener
 * when none was declared yet, as a listener directive does), else the
 * broker's; NULL, with the error in c->err, when the listener cannot be
 * opened. Notes that a security directive was read. */
struct security_cfg *config_current_security(struct config_ctx *c);

/* mosquitto's defaults of the security settings (config.c). */
void config_security_defaults(struct security_cfg *sec);

/* A loopback address: 127.0.0.0/8, ::1 or localhost. */
bool config_is_loopback(const char *a);

/* config_check's part for listener i: a TLS listener has what it needs,
 * ...; "FILE:LINE: listener PORT: why" into err. */
TERN_MUST_CHECK enum tern_err config_check_listener(const struct config *cfg, size_t i, char *err,
                                                    size_t errlen);

#endif
