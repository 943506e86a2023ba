/*
 * options.h - the one table of command-line options of `tern pub`,
 * `tern sub` and `tern bench`.
 *
 * Every option is one row of the table in options.c: its short and long
 * names, the subcommands that take it, what kind of value it has and where
 * that goes (a field of struct common_opts, struct tool_opts or struct
 * bench_opts, with its bounds, or a small setter), the message for a bad
 * value, and its help text. The options every subcommand shares (broker,
 * protocol, TLS, --quiet, --help) are declared once and land in a struct
 * common_opts that struct tool_opts and struct bench_opts both embed, so
 * they parse, check and connect the same way everywhere. Checks that need
 * the whole command line stay with each subcommand (opts.c, bench.c);
 * common_finish() holds the shared TLS rules.
 */
#ifndef TERN_TOOLS_OPTIONS_H
#define TERN_TOOLS_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tern/tern.h"

/* The subcommands, as a mask: a row names the ones that take it. */
enum tool_cmd {
	CMD_PUB = 1 << 0,
	CMD_SUB = 1 << 1,
	CMD_BENCH = 1 << 2,
};

/* What every subcommand takes to reach the broker. Strings point into argv. */
struct common_opts {
	const char *host;
	uint16_t port;
	bool port_given; /* -p (or a port in -L): no TLS default port */
	uint8_t version; /* TERN_V311 (default), TERN_V5 or TERN_V31 */
	uint16_t keepalive;
	/* TLS (mosquitto's flags): on with --cafile, --capath,
	 * --tls-use-os-certs (pub, sub: also an mqtts:// URL, or -p 8883
	 * alone). */
	bool tls;
	const char *cafile;
	const char *capath;
	const char *certfile;
	const char *keyfile;
	bool insecure;
	bool tls_use_os_certs;
	/* TLS-PSK: --psk (hexadecimal, decoded into psk by common_finish())
	 * and --psk-identity, together; turn TLS on. */
	const char *psk_hex;
	const char *psk_identity;
	uint8_t psk[256];
	size_t psk_len;
	bool quiet; /* --quiet: no error messages once connected */
};

/* Result of option parsing. */
enum tool_parse {
	PARSE_OK,
	PARSE_HELP,  /* --help was printed: exit 0 */
	PARSE_ERROR, /* an error naming the option was printed: exit 1 */
};

struct tool_opts;
struct bench_opts;

/* The table allows this many rows (for the record of those seen). */
#define OPT_MAX_ROWS 128

/* One parse of one command line. The caller fills cmd, prog, common and
 * tool (pub, sub) or bench, with their defaults set, before
 * options_parse(). */
struct optparse {
	enum tool_cmd cmd;
	const char *prog; /* "tern pub", "tern bench run", ... for messages */
	struct common_opts *common;
	struct tool_opts *tool;
	struct bench_opts *bench;
	void (*usage)(FILE *f);           /* prints --help */
	uint64_t seen[OPT_MAX_ROWS / 64]; /* rows given, by index */
};

/* Parses argv[1..argc) as the rows for p->cmd say. Prints --help (and
 * returns PARSE_HELP), or the first error, naming the option, with a hint
 * to --help (and returns PARSE_ERROR). Leaves checks that need the whole
 * line to the caller. */
enum tool_parse options_parse(struct optparse *p, int argc, char **argv);

/* Whether the option with this long name (or short name, for options that
 * have no long one) was given. */
bool option_given(const struct optparse *p, const char *name);

/* The TLS rules of mosquitto's clients: --cert and --key go together; what
 * turns TLS on; --cert, --key and --insecure need it; with TLS and no -p
 * the port is 8883. port_8883_means_tls: -p 8883 without TLS options means
 * TLS with the system's CAs (mosquitto_pub / mosquitto_sub do that).
 * Prints the error and returns false on a conflict. */
bool common_finish(struct optparse *p, bool port_8883_means_tls);

/* Fills the broker, protocol and TLS part of *co from c. */
void common_connect_opts(const struct common_opts *c, struct tern_connect_opts *co);

/* Prints the option list of cmd, by section, from the table: mosquitto's
 * layout (" -q : text") for pub and sub, columns of names and values for
 * bench. */
void options_usage(FILE *f, enum tool_cmd cmd);

/* Prints "Error: <message>" and "Use '<prog> --help' to see usage." to
 * stderr. */
void tool_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
