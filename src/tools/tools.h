/*
 * tools.h - what the files of the `tern` command share.
 *
 * The command is split by concern: main.c dispatches to a subcommand,
 * options.c holds the one table of options of pub, sub and bench and
 * parses a command line with it, opts.c sets the defaults of pub and sub
 * and checks what needs the whole line, props.c reads -D properties,
 * usage.c prints --help around the table's option list, conn.c connects and
 * disconnects through libtern and prints what went wrong in words, pub.c
 * and sub.c are the subcommands, format.c prints received messages (-v,
 * -N, -F). Only the public libtern API (tern/tern.h, tern/codec.h) is
 * used: the tool is also a test of that API.
 *
 * Strings in struct tool_opts point into argv (which lives as long as the
 * process) unless noted; nothing else holds on to them.
 */
#ifndef TERN_TOOLS_H
#define TERN_TOOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "options.h"
#include "tern/tern.h"

/* Exit status of a usage error; mosquitto_pub/sub use the same. */
#define TOOL_EXIT_USAGE 1
/* Exit status when -W ran out (libmosquitto's MOSQ_ERR_TIMEOUT, so that
 * scripts written for mosquitto_sub keep working). */
#define TOOL_EXIT_TIMEOUT 27

enum tool_mode {
	TOOL_PUB,
	TOOL_SUB,
};

/* What `tern pub` sends. */
enum tool_msg {
	MSG_NONE,
	MSG_ARG,   /* -m */
	MSG_FILE,  /* -f */
	MSG_STDIN, /* -s */
	MSG_LINES, /* -l */
	MSG_NULL,  /* -n */
};

/* The v5 properties given with -D for one packet type. The strings point
 * into argv; the encoded user properties live in `user`, owned here. */
struct tool_props {
	struct tern_props p;
	uint8_t *user;
	size_t user_len;
	size_t user_cap;
	uint32_t sub_id; /* storage for p.sub_ids */
	bool any;        /* at least one property given */
};

struct tool_opts {
	enum tool_mode mode;
	const char *prog; /* "tern pub" or "tern sub", for messages */

	/* The broker, protocol, TLS and --quiet (options.h). */
	struct common_opts common;

	/* Client and session. */
	const char *bind_address;
	const char *id;
	const char *id_prefix;
	char id_buf[96]; /* generated or prefixed client id */
	char *url_copy;  /* -L's URL, cut into host, user, ...; owned */
	const char *username;
	const char *password;
	bool clean;
	bool debug;
	bool nodelay;
	bool session_expiry_set;
	uint32_t session_expiry;
	uint8_t qos;

	/* Will (--will-*). */
	const char *will_topic;
	const char *will_payload;
	uint8_t will_qos;
	bool will_retain;

	/* -D properties, one set per packet type. */
	struct tool_props connect_props;
	struct tool_props publish_props;
	struct tool_props will_props;
	struct tool_props subscribe_props;
	struct tool_props unsubscribe_props;
	struct tool_props disconnect_props;

	/* -t: one for pub, several for sub. Array owned here. */
	const char **topics;
	size_t n_topics;

	/* pub only. */
	enum tool_msg msg;
	const char *message; /* -m */
	const char *file;    /* -f */
	bool retain;         /* -r */
	unsigned long repeat;
	double repeat_delay; /* seconds */
	unsigned max_inflight;

	/* sub only. Arrays owned here. */
	const char **filter_out; /* -T */
	size_t n_filter_out;
	const char **unsub; /* -U */
	size_t n_unsub;
	bool verbose;         /* -v */
	bool no_eol;          /* -N */
	bool no_retain;       /* -R */
	bool retained_only;   /* --retained-only */
	bool remove_retained; /* --remove-retained */
	bool exit_after_sub;  /* -E */
	bool retain_as_published;
	bool pretty;             /* --pretty, for %j and %J */
	const char *format;      /* -F */
	unsigned long count;     /* -C; 0: unlimited */
	unsigned long timeout_s; /* -W; 0: none */
	double random_filter;    /* percent of messages printed */
};

/* ---- opts.c, usage.c ---- */

/* Parses argv[1..argc) of `tern pub` / `tern sub` into *o (which it
 * initialises) with the table of options.c, then checks what needs the
 * whole line. Prints errors to stderr and usage to stdout. On PARSE_OK
 * the caller must call opts_free(); otherwise it has been called. */
enum tool_parse opts_parse(struct tool_opts *o, enum tool_mode mode, int argc, char **argv);

/* Frees what opts_parse() allocated. */
void opts_free(struct tool_opts *o);

/* Prints "Error: <message>" and the usage hint to stderr. */
void opts_error(const struct tool_opts *o, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* The --help texts of pub and sub (usage.c). */
void usage_pub(FILE *f);
void usage_sub(FILE *f);

/* ---- props.c ---- */

/* Parses one "-D command identifier value" (or "... name value" for
 * user-property) starting at argv[*i] (the word after -D) and leaves *i on
 * the last word it used. Returns false after printing an error. */
bool props_parse(struct tool_opts *o, int argc, char **argv, int *i);

/* The properties to hand to libtern: NULL when none was given. */
const struct tern_props *props_get(const struct tool_props *tp);

/* Frees the encoded user properties. */
void props_free(struct tool_props *tp);

/* ---- conn.c ---- */

/* What the connection's callbacks saw. */
struct tool_conn {
	struct tern_client *c;
	const struct tool_opts *o;
	bool closed;         /* on_disconnect ran */
	enum tern_err err;   /* its error */
	uint8_t reason;      /* its v5 DISCONNECT reason, if the broker sent one */
	bool publish_failed; /* an acknowledgement carried a failure reason */
	bool session_present;
	/* Called for each message when set (else they wait for
	 * tern_client_receive()); app is the caller's. */
	void (*on_message)(struct tool_conn *tc, const struct tern_message *msg);
	void *app;
	char id[128];         /* the client id, for -d lines */
	char reason_str[256]; /* the broker's last v5 reason string */
};

/* Creates the client and connects as the options say, printing the
 * broker's reason in words on failure. on_message (may be NULL) and app
 * are stored in *tc. Returns 0, or the exit status to use: the CONNACK
 * reason code when the broker refused (as mosquitto_pub does), 1 for
 * other failures. */
int conn_open(struct tool_conn *tc, const struct tool_opts *o,
              void (*on_message)(struct tool_conn *tc, const struct tern_message *msg), void *app);

/* Sends DISCONNECT (with -D disconnect properties) and waits, bounded, for
 * the connection to close; then frees the client. */
void conn_close(struct tool_conn *tc);

/* Frees the client without DISCONNECT (the broker then sends the will). */
void conn_abort(struct tool_conn *tc);

/* Prints why the connection ended (for errors seen after connecting). */
void conn_report_lost(const struct tool_conn *tc, enum tern_err err);

/* One turn of an event loop around the client: waits (poll) for its
 * socket, for extra_fd to be readable (when >= 0; *extra_ready tells) or
 * for timeout_ms (-1: only the library's own deadline), then lets the
 * library work (tern_client_step). Returns its error, TERN_OK normally. */
TERN_MUST_CHECK enum tern_err conn_poll(struct tool_conn *tc, int extra_fd, int timeout_ms,
                                        bool *extra_ready);

/* Milliseconds of CLOCK_MONOTONIC. */
int64_t tool_now_ms(void);

/* Prints one -d line ("Client <id> <text>") to stderr when -d is given. */
void tool_debug(const struct tool_conn *tc, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* ---- format.c ---- */

/* Checks a -F format string; on error prints it and returns false. */
bool format_check(const struct tool_opts *o, const char *fmt);

/* Prints msg to out as -F / -v / -N ask, then flushes. */
void format_message(FILE *out, const struct tool_opts *o, const struct tern_message *msg);

/* format_message() with the message's time stamp at (wall clock) rather
 * than now: `tern history` prints when ternd received it. */
void format_message_at(FILE *out, const struct tool_opts *o, const struct tern_message *msg,
                       const struct timespec *at);

/* ---- pub.c, sub.c ---- */

int pub_main(int argc, char **argv);
int sub_main(int argc, char **argv);

/* `tern history` (history.c): an archive read back; argv[0] is
 * "history". Returns the exit status. */
int history_main(int argc, char **argv);

/* ---- passwd.c ---- */

/* `tern passwd`, like mosquitto_passwd; argv[0] is "passwd". Returns the
 * exit status. */
int passwd_main(int argc, char **argv);

#endif
