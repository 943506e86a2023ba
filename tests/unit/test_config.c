/*
 * test_config.c - unit tests of the configuration file parser
 * (src/broker/config.c): what fuzzing found, kept as tests.
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
	struct tern_config cfg;
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
	struct tern_config cfg;
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
	struct tern_config cfg;
	config_defaults(&cfg);
	char err[512] = "";
	assert_int_equal(config_load(&cfg, f->main_path, err, sizeof(err)), TERN_OK);
	assert_int_equal(cfg.sys_interval, 42);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_include_dir_only_in_main_file, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_include_dir_long_line, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_include_dir_reads_file, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
