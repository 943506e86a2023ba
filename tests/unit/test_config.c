/*
 * test_config.c - unit tests of the configuration file parser
 * (src/broker/config.c): what fuzzing found, kept as tests; and the
 * listener and allow_anonymous defaults of config_from_args (mosquitto 2's
 * local only mode).
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
	assert_true(cfg.allow_anonymous);

	args(f, NULL, &cfg, "-p", "1884", NULL);
	assert_int_equal(cfg.n_listeners, 1);
	assert_string_equal(cfg.listeners[0].bind, "127.0.0.1");
	assert_int_equal(cfg.listeners[0].port, 1884);
	assert_true(cfg.local_only);
	assert_true(cfg.allow_anonymous);

	/* make run: a loopback address named on the command line. */
	args(f, NULL, &cfg, "-b", "127.0.0.1", "-p", "1883", NULL);
	assert_true(cfg.local_only);
	assert_true(cfg.allow_anonymous);

	/* A file that defines no listener: the same. */
	args(f, "max_keepalive 60\n", &cfg, "-p", "1885", NULL);
	assert_string_equal(cfg.listeners[0].bind, "127.0.0.1");
	assert_int_equal(cfg.listeners[0].port, 1885);
	assert_true(cfg.local_only);
	assert_true(cfg.allow_anonymous);
	/* An explicit allow_anonymous false is kept (mosquitto would force
	 * true in local only mode; stricter is ours). */
	args(f, "allow_anonymous false\n", &cfg, NULL);
	assert_true(cfg.local_only);
	assert_false(cfg.allow_anonymous);
}

static void test_a_configured_listener_refuses_anonymous_by_default(void **state)
{
	struct fix *f = *state;
	struct config cfg;
	args(f, "listener 1890\n", &cfg, NULL);
	assert_int_equal(cfg.n_listeners, 1);
	assert_string_equal(cfg.listeners[0].bind, "");
	assert_false(cfg.local_only);
	assert_false(cfg.allow_anonymous);
	/* Even on loopback: the file defines a listener (mosquitto 2). */
	args(f, "listener 1890 127.0.0.1\n", &cfg, NULL);
	assert_false(cfg.local_only);
	assert_false(cfg.allow_anonymous);
	args(f, "port 1891\n", &cfg, NULL);
	assert_false(cfg.allow_anonymous);
	args(f, "bind_address 127.0.0.1\n", &cfg, NULL);
	assert_false(cfg.allow_anonymous);
	args(f, "listener 1890\nallow_anonymous true\n", &cfg, NULL);
	assert_true(cfg.allow_anonymous);
	/* -p overrides the configured listener's port. */
	args(f, "listener 1890\n", &cfg, "-p", "1892", NULL);
	assert_int_equal(cfg.n_listeners, 1);
	assert_int_equal(cfg.listeners[0].port, 1892);
	assert_false(cfg.allow_anonymous);
	/* The command line opening the broker to the network is the same
	 * decision. */
	args(f, NULL, &cfg, "-b", "0.0.0.0", NULL);
	assert_string_equal(cfg.listeners[0].bind, "0.0.0.0");
	assert_false(cfg.local_only);
	assert_false(cfg.allow_anonymous);
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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
