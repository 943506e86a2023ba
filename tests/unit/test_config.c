/*
 * test_config.c - unit tests of the configuration file parser
 * (src/broker/config*.c): what fuzzing found, kept as tests; and the
 * listener and allow_anonymous defaults of config_from_args (mosquitto 2's
 * local only mode); the errors and values of the directive table.
 *
 * Files are written to a directory of their own under /tmp.
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

#include "broker/config.h"
#include "broker/config_int.h"

struct fix {
	char dir[64];
	char main_path[128];
	char sub_path[128];
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_config.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	/* The main file outside the included directory. */
	snprintf(f->main_path, sizeof(f->main_path), "%s.main", f->dir);
	snprintf(f->sub_path, sizeof(f->sub_path), "%s/a.conf", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	unlink(f->sub_path);
	unlink(f->main_path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* A directory whose file includes the directory again ended in a stack
 * overflow (endless recursion; found with fuzz_config). As in mosquitto,
 * include_dir is only allowed in the main file. */
static void test_include_dir_only_in_main_file(void **state)
{
	struct fix *f = *state;
	char text[256];
	snprintf(text, sizeof(text), "include_dir %s\n", f->dir);
	write_file(f->sub_path, text);
	write_file(f->main_path, text);
	struct config cfg;
	config_defaults(&cfg);
	char err[512] = "";
	assert_int_equal(config_load(&cfg, f->main_path, err, sizeof(err)), TERN_E_CONFIG);
	assert_non_null(strstr(err, "only allowed in the main configuration file"));
	assert_non_null(strstr(err, "a.conf:1:"));
}

/* An included file gets the main file's line-length check: a line longer
 * than the buffer is an error, never read as two directives. */
static void test_include_dir_long_line(void **state)
{
	struct fix *f = *state;
	char *text = malloc(8192);
	assert_non_null(text);
	memset(text, ' ', 8190);
	memcpy(text, "sys_interval 5", 14);
	memcpy(text + 4090, "port 1", 6);
	text[8190] = '\n';
	text[8191] = '\0';
	write_file(f->sub_path, text);
	free(text);
	char main_text[256];
	snprintf(main_text, sizeof(main_text), "include_dir %s\n", f->dir);
	write_file(f->main_path, main_text);
	struct config cfg;
	config_defaults(&cfg);
	char err[512] = "";
	assert_int_equal(config_load(&cfg, f->main_path, err, sizeof(err)), TERN_E_CONFIG);
	assert_non_null(strstr(err, "line too long"));
}

/* The plain case still works: the included file's directives apply. */
static void test_include_dir_reads_file(void **state)
{
	struct fix *f = *state;
	write_file(f->sub_path, "sys_interval 42\n");
	char text[256];
	snprintf(text, sizeof(text), "include_dir %s\n", f->dir);
	write_file(f->main_path, text);
	struct config cfg;
	config_defaults(&cfg);
	char err[512] = "";
	assert_int_equal(config_load(&cfg, f->main_path, err, sizeof(err)), TERN_OK);
	assert_int_equal(cfg.sys_interval, 42);
}

/* Loads text as the main file; returns the result, the message in err. */
static enum tern_err load_text(struct fix *f, const char *text, struct config *cfg, char *err,
                               size_t errlen)
{
	write_file(f->main_path, text);
	config_defaults(cfg);
	err[0] = '\0';
	return config_load(cfg, f->main_path, err, errlen);
}

/* Expects text to fail with "FILE:LINE: message" (the file's name and the
 * line, as ternd prints it). */
static void expect_error(struct fix *f, const char *text, int line, const char *message)
{
	struct config cfg;
	char err[512], want[512];
	assert_int_equal(load_text(f, text, &cfg, err, sizeof(err)), TERN_E_CONFIG);
	snprintf(want, sizeof(want), "%s:%d: %s", f->main_path, line, message);
	assert_string_equal(err, want);
}

/* Every kind of value in the directive table reports its errors with the
 * file, the line and the directive, as the strcmp chain before it did. */
static void test_directive_errors_name_file_line_and_directive(void **state)
{
	struct fix *f = *state;
	expect_error(f, "port 1884\n\nfrobnicate_widgets 1\n", 3,
	             "unknown or unsupported directive 'frobnicate_widgets'");
	/* An unknown directive is named whatever follows it. */
	expect_error(f, "frobnicate 1 2 3 4 5 6\n", 1,
	             "unknown or unsupported directive 'frobnicate'");
	expect_error(f, "# c\nmax_keepalive 65536\n", 2,
	             "max_keepalive: '65536' is not a whole number from 0 to 65535");
	expect_error(f, "connect_timeout 0\n", 1,
	             "connect_timeout: '0' is not a whole number from 1 to 3600");
	expect_error(f, "workers\n", 1, "workers needs a value");
	expect_error(f, "workers -1\n", 1, "workers: '-1' is not a whole number from 0 to 256");
	expect_error(f, "retain_available yes\n", 1,
	             "retain_available: expected true or false, got 'yes'");
	expect_error(f, "retain_available\n", 1,
	             "retain_available: expected true or false, got ''");
	expect_error(f, "storage_sync always\n", 1, "storage_sync: expected full, normal or off");
	expect_error(f, "storage\n", 1, "storage: expected memory or sqlite");
	expect_error(f, "listener 1884\nprotocol ws\n", 2, "protocol: expected mqtt or websockets");
	expect_error(f, "auto_id_prefix 0123456789012345678901234567890123\n", 1,
	             "auto_id_prefix: value too long");
	expect_error(f, "persistent_client_expiration 3x\n", 1,
	             "persistent_client_expiration: '3x' is not a duration like 2h, 14d, 1w, 6m "
	             "or 1y");
	expect_error(f, "max_packet_size 19\n", 1, "max_packet_size must be 0 or at least 20");
	expect_error(f, "password_file /p\nper_listener_settings true\n", 2,
	             "per_listener_settings must be set before any other security setting "
	             "(allow_anonymous, password_file, acl_file, allow_zero_length_clientid, "
	             "auto_id_prefix)");
	expect_error(f, "listener 1884\nmax_qos 3\n", 2, "max_qos: expected 0, 1 or 2");
	expect_error(f, "listener 1884\naccept_protocol_versions 4, 6\n", 2,
	             "accept_protocol_versions: '6' is not 3, 4 or 5 (MQTT 3.1, 3.1.1, 5.0)");
	expect_error(f, "accept_protocol_versions # none\n", 1,
	             "accept_protocol_versions needs protocol levels (3, 4, 5)");
	expect_error(f, "global_max_clients -2\n", 1,
	             "global_max_clients: '-2' is not a whole number from 0 to 2147483647");
	expect_error(f, "listener 1884\nlistener_allow_anonymous maybe\n", 2,
	             "listener_allow_anonymous: expected true or false");
	/* Arity: more words than the directive takes is an error, never
	 * silently ignored; so is a third word for a two-word one. */
	expect_error(f, "workers 4 5\n", 1, "workers: too many arguments");
	expect_error(f, "listener 1884 127.0.0.1 x\n", 1, "listener: too many arguments");
	expect_error(f, "log_dest file /tmp/x y\n", 1, "log_dest: too many arguments");
}

/* Each row stores its value at its field's width, in struct config or in
 * the listener the line belongs to. */
static void test_directives_store_their_values(void **state)
{
	struct fix *f = *state;
	struct config cfg;
	char err[512];
	assert_int_equal(load_text(f,
	                           "max_keepalive 65535\n"
	                           "max_topic_alias 7\n"
	                           "max_queued_bytes 9000000000\n"
	                           "max_inflight_messages 0\n"
	                           "max_connections -1\n"
	                           "storage memory\n"
	                           "storage_sync full\n"
	                           "retain_available false\n"
	                           "persistent_client_expiration 2h\n"
	                           "autosave_interval 1800\n"
	                           "workers 3 # a comment after the value\n"
	                           "log_timestamp_format %Y-%m-%d %H:%M:%S\n"
	                           "certfile default.pem\n"
	                           "listener 1885 127.0.0.1\n"
	                           "protocol websockets\n"
	                           "keyfile second.key\n"
	                           "require_certificate true\n",
	                           &cfg, err, sizeof(err)),
	                 TERN_OK);
	assert_int_equal(cfg.max_keepalive, 65535);
	assert_int_equal(cfg.max_topic_alias, 7);
	assert_int_equal(cfg.max_topic_alias_broker, 10); /* its neighbour untouched */
	assert_true(cfg.max_queued_bytes == 9000000000ull);
	assert_int_equal(cfg.max_inflight_messages, 65535);
	assert_true(cfg.max_connections == -1);
	assert_int_equal(cfg.storage, STORAGE_MEMORY);
	assert_int_equal(cfg.storage_sync, 0); /* STORE_SYNC_FULL */
	assert_false(cfg.retain_available);
	assert_int_equal(cfg.persistent_client_expiration, 7200);
	assert_int_equal(cfg.workers, 3);
	assert_string_equal(cfg.log_timestamp_format, "%Y-%m-%d %H:%M:%S");
	/* certfile before any listener opened the default one on 1883. */
	assert_int_equal(cfg.n_listeners, 2);
	assert_int_equal(cfg.listeners[0].port, 1883);
	assert_string_equal(cfg.listeners[0].certfile, "default.pem");
	assert_false(cfg.listeners[0].websockets);
	assert_int_equal(cfg.listeners[1].port, 1885);
	assert_string_equal(cfg.listeners[1].bind, "127.0.0.1");
	assert_true(cfg.listeners[1].websockets);
	assert_string_equal(cfg.listeners[1].keyfile, "second.key");
	assert_true(cfg.listeners[1].require_certificate);
	assert_string_equal(cfg.listeners[1].certfile, "");
}

/* Runs config_from_args on "ternd ARGS..." (with "-c FILE" when text is not
 * NULL) and returns the result in *cfg. */
static void args(struct fix *f, const char *text, struct config *cfg, ...)
{
	char *argv[16] = {"ternd"};
	int argc = 1;
	if (text) {
		write_file(f->main_path, text);
		argv[argc++] = "-c";
		argv[argc++] = f->main_path;
	}
	va_list ap;
	va_start(ap, cfg);
	for (char *a; argc < 15 && (a = va_arg(ap, char *));)
		argv[argc++] = a;
	va_end(ap);
	config_defaults(cfg);
	char err[512] = "";
	int code = 0;
	if (config_from_args(cfg, argc, argv, err, sizeof(err), &code) != TERN_OK)
		fail_msg("config_from_args: %s", err);
}

/* `ternd -p 1884` listened on every interface with anonymous access. */
static void test_without_a_listener_the_broker_is_local_only(void **state)
{
	struct fix *f = *state;
	struct config cfg;
	args(f, NULL, &cfg, NULL);
	assert_int_equal(cfg.n_listeners, 1);
	assert_string_equal(cfg.listeners[0].bind, "127.0.0.1");
	assert_int_equal(cfg.listeners[0].port, 1883);
	assert_true(cfg.local_only);
	assert_true(cfg.sec.allow_anonymous);

	args(f, NULL, &cfg, "-p", "1884", NULL);
	assert_int_equal(cfg.n_listeners, 1);
	assert_string_equal(cfg.listeners[0].bind, "127.0.0.1");
	assert_int_equal(cfg.listeners[0].port, 1884);
	assert_true(cfg.local_only);
	assert_true(cfg.sec.allow_anonymous);

	/* make run: a loopback address named on the command line. */
	args(f, NULL, &cfg, "-b", "127.0.0.1", "-p", "1883", NULL);
	assert_true(cfg.local_only);
	assert_true(cfg.sec.allow_anonymous);

	/* A file that defines no listener: the same. */
	args(f, "max_keepalive 60\n", &cfg, "-p", "1885", NULL);
	assert_string_equal(cfg.listeners[0].bind, "127.0.0.1");
	assert_int_equal(cfg.listeners[0].port, 1885);
	assert_true(cfg.local_only);
	assert_true(cfg.sec.allow_anonymous);
	/* An explicit allow_anonymous false is kept (mosquitto would force
	 * true in local only mode; stricter is ours). */
	args(f, "allow_anonymous false\n", &cfg, NULL);
	assert_true(cfg.local_only);
	assert_false(cfg.sec.allow_anonymous);
}

static void test_a_configured_listener_refuses_anonymous_by_default(void **state)
{
	struct fix *f = *state;
	struct config cfg;
	args(f, "listener 1890\n", &cfg, NULL);
	assert_int_equal(cfg.n_listeners, 1);
	assert_string_equal(cfg.listeners[0].bind, "");
	assert_false(cfg.local_only);
	assert_false(cfg.sec.allow_anonymous);
	/* Even on loopback: the file defines a listener (mosquitto 2). */
	args(f, "listener 1890 127.0.0.1\n", &cfg, NULL);
	assert_false(cfg.local_only);
	assert_false(cfg.sec.allow_anonymous);
	args(f, "port 1891\n", &cfg, NULL);
	assert_false(cfg.sec.allow_anonymous);
	args(f, "bind_address 127.0.0.1\n", &cfg, NULL);
	assert_false(cfg.sec.allow_anonymous);
	args(f, "listener 1890\nallow_anonymous true\n", &cfg, NULL);
	assert_true(cfg.sec.allow_anonymous);
	/* -p overrides the configured listener's port. */
	args(f, "listener 1890\n", &cfg, "-p", "1892", NULL);
	assert_int_equal(cfg.n_listeners, 1);
	assert_int_equal(cfg.listeners[0].port, 1892);
	assert_false(cfg.sec.allow_anonymous);
	/* The command line opening the broker to the network is the same
	 * decision. */
	args(f, NULL, &cfg, "-b", "0.0.0.0", NULL);
	assert_string_equal(cfg.listeners[0].bind, "0.0.0.0");
	assert_false(cfg.local_only);
	assert_false(cfg.sec.allow_anonymous);
}

/* per_listener_settings true: the security directives go to the listener
 * they follow (the default one before any `listener`), and each listener
 * starts from mosquitto's defaults; false: to the broker, for all. */
static void test_per_listener_settings_put_security_on_the_listener(void **state)
{
	struct fix *f = *state;
	struct config cfg;
	char err[512];
	assert_int_equal(load_text(f,
	                           "per_listener_settings true\n"
	                           "password_file /before\n"
	                           "listener 1884\n"
	                           "allow_anonymous true\n"
	                           "acl_file /acl\n"
	                           "auto_id_prefix one-\n"
	                           "listener 1885\n"
	                           "allow_zero_length_clientid false\n"
	                           "listener 1886\n"
	                           "listener_allow_anonymous false\n"
	                           "listener_auto_id_prefix three-\n",
	                           &cfg, err, sizeof(err)),
	                 TERN_OK);
	assert_true(cfg.per_listener_settings);
	assert_int_equal(cfg.n_listeners, 4);
	/* The default listener, opened by password_file. */
	assert_int_equal(cfg.listeners[0].port, 1883);
	assert_string_equal(config_security(&cfg, 0)->password_file, "/before");
	assert_string_equal(config_security(&cfg, 1)->password_file, "");
	assert_string_equal(config_security(&cfg, 1)->acl_file, "/acl");
	assert_true(config_allow_anonymous(&cfg, 1));
	assert_string_equal(config_auto_id_prefix(&cfg, 1), "one-");
	assert_string_equal(config_auto_id_prefix(&cfg, 2), "auto-");
	assert_false(config_security(&cfg, 2)->allow_zero_length_clientid);
	assert_true(config_security(&cfg, 1)->allow_zero_length_clientid);
	assert_false(config_allow_anonymous(&cfg, 3));
	assert_true(config_allow_anonymous_set(&cfg, 3));
	assert_string_equal(config_auto_id_prefix(&cfg, 3), "three-");
	/* The broker's own settings are untouched. */
	assert_string_equal(cfg.sec.password_file, "");

	assert_int_equal(load_text(f,
	                           "listener 1884\n"
	                           "password_file /all\n"
	                           "listener 1885\n"
	                           "listener_allow_anonymous true\n",
	                           &cfg, err, sizeof(err)),
	                 TERN_OK);
	assert_false(cfg.per_listener_settings);
	assert_string_equal(config_security(&cfg, 0)->password_file, "/all");
	assert_string_equal(config_security(&cfg, 1)->password_file, "/all");
	assert_true(config_allow_anonymous(&cfg, 1));
	assert_false(config_allow_anonymous_set(&cfg, 0));
}

/* The tables are split by concern over the module's files; a name in two
 * of them would make the second row dead, whichever file it is in. */
static void test_every_directive_is_in_one_table(void **state)
{
	(void)state;
	size_t rows = 0;
	for (const struct directive_table *const *t = config_tables; *t; t++) {
		for (size_t i = 0; i < (*t)->n; i++, rows++) {
			const char *name = (*t)->rows[i].name;
			size_t seen = 0;
			for (const struct directive_table *const *u = config_tables; *u; u++)
				for (size_t j = 0; j < (*u)->n; j++)
					seen += strcmp(name, (*u)->rows[j].name) == 0;
			if (seen != 1)
				fail_msg("directive '%s' is in %zu rows", name, seen);
		}
	}
	/* The 64 of the table before the split. */
	assert_true(rows >= 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_include_dir_only_in_main_file, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_include_dir_long_line, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_include_dir_reads_file, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_without_a_listener_the_broker_is_local_only,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_a_configured_listener_refuses_anonymous_by_default, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_directive_errors_name_file_line_and_directive,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_directives_store_their_values, setup,
	                                        teardown),
	        cmocka_unit_test(test_every_directive_is_in_one_table),
	        cmocka_unit_test_setup_teardown(
	                test_per_listener_settings_put_security_on_the_listener, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
