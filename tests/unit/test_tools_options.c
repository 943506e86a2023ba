/*
 * test_tools_options.c - unit tests of the one option table of `tern pub`,
 * `tern sub` and `tern bench` (src/tools/options.c) and of what pub and
 * sub check on the whole line (src/tools/opts.c).
 *
 * The options every subcommand shares (broker, protocol, TLS) are declared
 * once; these tests hold that they land in the same struct common_opts with
 * the same checks and messages whichever subcommand reads them, that a
 * letter a subcommand uses for its own option means that option there, and
 * that the help lists what the table holds. Messages on stderr are caught
 * in a temporary file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "tools.h"

/* What the last parse printed on stderr. */
static char err_text[4096];

/* Runs argv (NULL-terminated, argv[0] the subcommand) through opts_parse
 * for pub or sub, with stderr caught into err_text. */
static enum tool_parse parse_tool(struct tool_opts *o, enum tool_mode mode, const char **args)
{
	char *argv[64];
	int argc = 0;
	while (args[argc] != NULL && argc < 63) {
		argv[argc] = (char *)args[argc];
		argc++;
	}
	argv[argc] = NULL;

	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	enum tool_parse rc = opts_parse(o, mode, argc, argv);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	size_t n = fread(err_text, 1, sizeof(err_text) - 1, tmp);
	err_text[n] = '\0';
	fclose(tmp);
	return rc;
}

/* The same for bench's options: the table alone, then the shared TLS
 * rules, as bench.c runs them. */
static enum tool_parse parse_bench(struct bench_opts *b, const char **args)
{
	char *argv[64];
	int argc = 0;
	while (args[argc] != NULL && argc < 63) {
		argv[argc] = (char *)args[argc];
		argc++;
	}
	memset(b, 0, sizeof(*b));
	b->prog = "tern bench run";
	b->common.host = "127.0.0.1";
	b->common.port = 1883;
	struct optparse p = {.cmd = CMD_BENCH,
	                     .prog = b->prog,
	                     .common = &b->common,
	                     .bench = b,
	                     .usage = usage_bench};

	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	enum tool_parse rc = options_parse(&p, argc, argv);
	if (rc == PARSE_OK && !common_finish(&p, false))
		rc = PARSE_ERROR;
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	size_t n = fread(err_text, 1, sizeof(err_text) - 1, tmp);
	err_text[n] = '\0';
	fclose(tmp);
	for (size_t i = 0; i < b->n_sources; i++)
		free(b->sources[i]);
	free(b->sources);
	b->sources = NULL;
	return rc;
}

/* The broker, protocol and TLS flags fill the same fields for pub and for
 * bench: one declaration each. */
static void test_shared_flags_land_in_common_opts_for_every_command(void **state)
{
	(void)state;
	const char *shared[] = {
	        "-h",         "broker.example", "-p", "1884",   "-V",    "5",     "-k",
	        "7",          "--cafile",       "ca", "--cert", "c.pem", "--key", "k.pem",
	        "--insecure", "--quiet",        NULL};
	const char *pub[64] = {"pub", "-t", "a", "-m", "x"};
	size_t n = 5;
	for (size_t i = 0; shared[i] != NULL; i++)
		pub[n++] = shared[i];
	pub[n] = NULL;
	const char *bench[64] = {"run"};
	n = 1;
	for (size_t i = 0; shared[i] != NULL; i++)
		bench[n++] = shared[i];
	bench[n] = NULL;

	struct tool_opts o;
	assert_int_equal(parse_tool(&o, TOOL_PUB, pub), PARSE_OK);
	struct bench_opts b;
	assert_int_equal(parse_bench(&b, bench), PARSE_OK);
	const struct common_opts *c[] = {&o.common, &b.common};
	for (size_t i = 0; i < 2; i++) {
		assert_string_equal(c[i]->host, "broker.example");
		assert_int_equal(c[i]->port, 1884);
		assert_true(c[i]->port_given);
		assert_int_equal(c[i]->version, TERN_V5);
		assert_int_equal(c[i]->keepalive, 7);
		assert_true(c[i]->tls);
		assert_string_equal(c[i]->cafile, "ca");
		assert_string_equal(c[i]->certfile, "c.pem");
		assert_string_equal(c[i]->keyfile, "k.pem");
		assert_true(c[i]->insecure);
		assert_true(c[i]->quiet);
	}
	opts_free(&o);
}

/* A bad or missing value of a shared flag is the same error, naming the
 * option, for every subcommand. */
static void test_shared_flag_errors_are_the_same_everywhere(void **state)
{
	(void)state;
	static const struct {
		const char *args[4];
		const char *message;
	} cases[] = {
	        {{"-p", "0"}, "Error: Invalid port given: 0\n"},
	        {{"--port", "x"}, "Error: Invalid port given: x\n"},
	        {{"-V", "7"},
	         "Error: Invalid protocol version argument given: 7 (use mqttv5, mqttv311 or "
	         "mqttv31).\n"},
	        {{"-k", "65536"},
	         "Error: Invalid keepalive given, it must be between 0 and 65535 inclusive.\n"},
	        {{"-h"}, "Error: -h argument given but no host specified.\n"},
	        {{"--capath"}, "Error: --capath argument given but no directory specified.\n"},
	        {{"--ciphers", "x"},
	         "Error: '--ciphers' is not supported by %s (no TLS cipher, version, ALPN, "
	         "engine or PSK options; no proxy, SRV or unix socket support).\n"},
	        {{"--cert", "c"},
	         "Error: --cert and --key must be given together (both certfile and keyfile).\n"},
	        {{"--insecure"},
	         "Error: --cert, --key and --insecure need TLS: give --cafile, --capath or "
	         "--tls-use-os-certs.\n"},
	        {{"--frobnicate"}, "Error: Unknown option '--frobnicate'.\n"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[512], hint[128];
		const char *pub[16] = {"pub", "-t", "a", "-m", "x"};
		const char *bench[16] = {"run"};
		for (size_t k = 0; k < 4 && cases[i].args[k]; k++) {
			pub[5 + k] = cases[i].args[k];
			bench[1 + k] = cases[i].args[k];
		}
		struct tool_opts o;
		assert_int_equal(parse_tool(&o, TOOL_PUB, pub), PARSE_ERROR);
		snprintf(want, sizeof(want), cases[i].message, "tern pub");
		snprintf(hint, sizeof(hint), "Use '%s --help' to see usage.\n", "tern pub");
		strncat(want, hint, sizeof(want) - strlen(want) - 1);
		assert_string_equal(err_text, want);

		struct bench_opts b;
		assert_int_equal(parse_bench(&b, bench), PARSE_ERROR);
		snprintf(want, sizeof(want), cases[i].message, "tern bench run");
		snprintf(hint, sizeof(hint), "Use '%s --help' to see usage.\n", "tern bench run");
		strncat(want, hint, sizeof(want) - strlen(want) - 1);
		assert_string_equal(err_text, want);
	}
}

/* A letter means the subcommand's own option: -c keeps the session in pub
 * and sub and counts clients in bench; -S is mosquitto's (unsupported) in
 * pub and sub and the subscribers of bench run; -q is one QoS or a list. */
static void test_a_letter_means_the_option_of_its_command(void **state)
{
	(void)state;
	struct tool_opts o;
	const char *sub[] = {"sub", "-t", "a", "-c", "-i", "me", "-q", "2", NULL};
	assert_int_equal(parse_tool(&o, TOOL_SUB, sub), PARSE_OK);
	assert_false(o.clean);
	assert_int_equal(o.qos, 2);
	opts_free(&o);
	const char *sub_s[] = {"sub", "-t", "a", "-S", NULL};
	assert_int_equal(parse_tool(&o, TOOL_SUB, sub_s), PARSE_ERROR);
	assert_non_null(strstr(err_text, "'-S' is not supported by tern sub"));

	struct bench_opts b;
	const char *bench[] = {"run", "-c", "12", "-S", "3", "-q", "0,2", "--clients", "13", NULL};
	assert_int_equal(parse_bench(&b, bench), PARSE_OK);
	assert_int_equal(b.clients, 13);
	assert_int_equal(b.subs, 3);
	assert_int_equal(b.n_qos, 2);
	assert_int_equal(b.qos[1], 2);
	/* pub's -m is no bench option. */
	const char *bench_m[] = {"run", "-m", "x", NULL};
	assert_int_equal(parse_bench(&b, bench_m), PARSE_ERROR);
	assert_non_null(strstr(err_text, "Unknown option '-m'"));
}

/* -p 8883 alone means TLS with the system's CAs for pub and sub (as
 * mosquitto_pub does), not for bench; TLS without -p moves to 8883. */
static void test_tls_port_rules(void **state)
{
	(void)state;
	struct tool_opts o;
	const char *pub[] = {"pub", "-t", "a", "-m", "x", "-p", "8883", NULL};
	assert_int_equal(parse_tool(&o, TOOL_PUB, pub), PARSE_OK);
	assert_true(o.common.tls);
	assert_true(o.common.tls_use_os_certs);
	opts_free(&o);
	const char *pub_url[] = {"pub", "-L", "mqtts://u:pw@[::1]/t/x", "-m", "x", NULL};
	assert_int_equal(parse_tool(&o, TOOL_PUB, pub_url), PARSE_OK);
	assert_true(o.common.tls);
	assert_int_equal(o.common.port, 8883);
	assert_string_equal(o.common.host, "::1");
	assert_string_equal(o.username, "u");
	assert_string_equal(o.topics[0], "t/x");
	opts_free(&o);

	struct bench_opts b;
	const char *bench[] = {"run", "-p", "8883", NULL};
	assert_int_equal(parse_bench(&b, bench), PARSE_OK);
	assert_false(b.common.tls);
	const char *bench_tls[] = {"run", "--tls-use-os-certs", NULL};
	assert_int_equal(parse_bench(&b, bench_tls), PARSE_OK);
	assert_true(b.common.tls);
	assert_int_equal(b.common.port, 8883);
}

/* Numbers are checked against the row's range and stored at the field's
 * width; a value-less option at the end names what is missing. */
static void test_ranges_and_missing_values(void **state)
{
	(void)state;
	struct tool_opts o;
	const char *ok[] = {
	        "sub", "-t", "a", "-C", "18446744073709551615", "-W", "31536000", "--random-filter",
	        "0.1", NULL};
	assert_int_equal(parse_tool(&o, TOOL_SUB, ok), PARSE_OK);
	assert_true(o.count == 18446744073709551615ul);
	assert_true(o.timeout_s == 31536000ul);
	assert_true(o.random_filter == 0.1);
	opts_free(&o);
	const char *far[] = {"sub", "-t", "a", "-W", "31536001", NULL};
	assert_int_equal(parse_tool(&o, TOOL_SUB, far), PARSE_ERROR);
	assert_non_null(strstr(err_text, "Error: Invalid timeout \"31536001\"."));
	const char *missing[] = {"pub", "-t", "a", "--will-qos", NULL};
	assert_int_equal(parse_tool(&o, TOOL_PUB, missing), PARSE_ERROR);
	assert_non_null(strstr(err_text, "--will-qos argument given but no will QoS specified."));
	/* --will-qos without --will-topic: found through the record of rows
	 * seen. */
	const char *will[] = {"pub", "-t", "a", "-m", "x", "--will-qos", "1", NULL};
	assert_int_equal(parse_tool(&o, TOOL_PUB, will), PARSE_ERROR);
	assert_non_null(strstr(err_text, "need --will-topic"));

	struct bench_opts b;
	const char *bench[] = {"run",       "-d",        "0.5",        "-s",
	                       "268435456", "--backlog", "4294967295", NULL};
	assert_int_equal(parse_bench(&b, bench), PARSE_OK);
	assert_true(b.duration == 0.5);
	assert_true(b.size == 268435456u);
	assert_true(b.backlog == 4294967295u);
	const char *zero[] = {"run", "--duration", "0", NULL};
	assert_int_equal(parse_bench(&b, zero), PARSE_ERROR);
	assert_non_null(
	        strstr(err_text, "--duration: expected a positive number of seconds, got '0'."));
}

/* The help is printed from the table: each command lists its own options
 * and not the others'. */
static void test_help_comes_from_the_table(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	usage_pub(f);
	fclose(f);
	assert_non_null(strstr(text, "\n -m : message payload to send."));
	assert_non_null(strstr(text, "\n --cafile : "));
	assert_null(strstr(text, "\n -F : "));
	assert_null(strstr(text, "--clients"));
	free(text);

	f = open_memstream(&text, &len);
	assert_non_null(f);
	usage_bench(f);
	fclose(f);
	assert_non_null(strstr(text, "\n -c, --clients N "));
	assert_non_null(strstr(text, "\n     --cafile FILE "));
	assert_non_null(strstr(text, "\n -d, --duration S "));
	assert_null(strstr(text, "--will-topic"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_shared_flags_land_in_common_opts_for_every_command),
	        cmocka_unit_test(test_shared_flag_errors_are_the_same_everywhere),
	        cmocka_unit_test(test_a_letter_means_the_option_of_its_command),
	        cmocka_unit_test(test_tls_port_rules),
	        cmocka_unit_test(test_ranges_and_missing_values),
	        cmocka_unit_test(test_help_comes_from_the_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
