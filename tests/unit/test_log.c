/*
 * test_log.c - unit tests of the log writer (src/util/log.c) and of the
 * rate limiter of repeated lines (src/util/log_limit.c).
 *
 * The log writes to a tmpfile() that the tests read back. The limiter is
 * driven with made-up monotonic times, so windows open and close without
 * waiting; the writer tests run real threads and check that every line
 * handed over before log_close() is in the file, in order, and that a
 * destination that blocks costs lines (counted and reported), never a
 * caller that waits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/log_limit.h"

static const struct hash_key KEY = {UINT64_C(0x1111111111111111), UINT64_C(0x2222222222222222)};
static const struct log_kind DROPPED = {LOG_TYPE_WARNING, "dropped"};
static const struct log_kind DENIED = {LOG_TYPE_NOTICE, "denied PUBLISH"};

#define WINDOW 10000u

static void open_log(struct log *log)
{
	memset(log, 0, sizeof(*log));
	log->mask = LOG_TYPE_DEFAULT;
	log->out = tmpfile();
	assert_non_null(log->out);
	log->own_out = false;
}

/* Everything written so far; the caller frees it. */
static char *contents(struct log *log)
{
	fflush(log->out);
	long n = ftell(log->out);
	assert_true(n >= 0);
	char *s = malloc((size_t)n + 1);
	assert_non_null(s);
	rewind(log->out);
	assert_int_equal(fread(s, 1, (size_t)n, log->out), (size_t)n);
	s[n] = 0;
	fseek(log->out, 0, SEEK_END);
	return s;
}

static size_t count_lines(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void close_log(struct log *log)
{
	FILE *f = log->out;
	log_close(log);
	fclose(f);
}

static void test_first_event_passes_and_repeats_are_counted(void **state)
{
	(void)state;
	struct log log;
	open_log(&log);
	struct log_limiter l;
	log_limiter_init(&l, &log, &KEY, WINDOW);

	assert_true(log_limit_pass(&l, &DROPPED, "sub1", 4, 0));
	for (uint64_t t = 1; t <= 99; t++)
		assert_false(log_limit_pass(&l, &DROPPED, "sub1", 4, t));
	/* Another client, and another kind for the same client, have
	 * windows of their own. */
	assert_true(log_limit_pass(&l, &DROPPED, "sub2", 4, 50));
	assert_true(log_limit_pass(&l, &DENIED, "sub1", 4, 60));
	assert_false(log_limit_pass(&l, &DENIED, "sub1", 4, 70));

	log_limiter_tick(&l, WINDOW - 1);
	char *s = contents(&log);
	assert_string_equal(s, ""); /* no window is over yet */
	free(s);

	log_limiter_tick(&l, WINDOW + 60);
	s = contents(&log);
	/* sub2 had no repeats: no summary for it. */
	assert_string_equal(s, "Warning: 99 more dropped for client sub1 in the last 10 s.\n"
	                       "1 more denied PUBLISH for client sub1 in the last 10 s.\n");
	free(s);

	/* The windows are over: the next event writes its line again. */
	assert_true(log_limit_pass(&l, &DROPPED, "sub1", 4, WINDOW + 61));
	assert_true(log_limit_pass(&l, &DROPPED, "sub2", 4, WINDOW + 61));
	log_limiter_flush(&l, WINDOW + 62);
	close_log(&log);
}

static void test_a_steady_flood_writes_two_lines_per_window(void **state)
{
	(void)state;
	struct log log;
	open_log(&log);
	struct log_limiter l;
	log_limiter_init(&l, &log, &KEY, WINDOW);
	/* 100 events a second for 60 s, ticking every 200 ms as a worker
	 * does: a line per window, a summary per window. */
	size_t passed = 0;
	for (uint64_t t = 0; t < 60000; t += 10) {
		if (log_limit_pass(&l, &DROPPED, "c", 1, t)) {
			passed++;
			log_write(&log, LOG_TYPE_WARNING, "Warning: dropped one");
		}
		if (t % 200 == 0)
			log_limiter_tick(&l, t);
	}
	log_limiter_flush(&l, 60000);
	char *s = contents(&log);
	assert_int_equal(passed, 6);
	assert_int_equal(count_lines(s), 12);
	/* Every event is accounted for: written, or in a summary. */
	uint64_t total = passed;
	for (const char *p = s; (p = strstr(p, "Warning: ")) != NULL; p++) {
		unsigned long long n;
		if (sscanf(p, "Warning: %llu more dropped", &n) == 1)
			total += n;
	}
	assert_int_equal(total, 6000);
	free(s);
	close_log(&log);
}

static void test_a_full_table_counts_other_clients_together(void **state)
{
	(void)state;
	struct log log;
	open_log(&log);
	struct log_limiter l;
	log_limiter_init(&l, &log, &KEY, WINDOW);
	char id[32];
	for (unsigned i = 0; i < LOG_LIMIT_CLIENTS; i++) {
		int n = snprintf(id, sizeof(id), "client-%u", i);
		assert_true(log_limit_pass(&l, &DROPPED, id, (size_t)n, 0));
	}
	/* Beyond the bound no line is written: many distinct clients
	 * cannot flood the log either. */
	for (unsigned i = 0; i < 10; i++) {
		int n = snprintf(id, sizeof(id), "late-%u", i);
		assert_false(log_limit_pass(&l, &DROPPED, id, (size_t)n, 5));
	}
	log_limiter_tick(&l, WINDOW + 5);
	char *s = contents(&log);
	assert_string_equal(s, "Warning: 10 more repeated lines (dropped, ...) for other clients "
	                       "in the last 10 s.\n");
	free(s);
	/* The table emptied: new clients get their line again. */
	assert_true(log_limit_pass(&l, &DROPPED, "late-0", 6, WINDOW + 6));
	log_limiter_flush(&l, WINDOW + 6);
	close_log(&log);
}

static void test_flush_reports_open_windows_with_their_length(void **state)
{
	(void)state;
	struct log log;
	open_log(&log);
	struct log_limiter l;
	log_limiter_init(&l, &log, &KEY, WINDOW);
	/* An id longer than the key keeps shares its entry with its prefix
	 * and is shown cut. */
	char longid[LOG_LIMIT_ID_MAX + 20];
	memset(longid, 'x', sizeof(longid));
	assert_true(log_limit_pass(&l, &DENIED, longid, sizeof(longid), 1000));
	longid[sizeof(longid) - 1] = 'y';
	assert_false(log_limit_pass(&l, &DENIED, longid, sizeof(longid), 1500));
	assert_false(log_limit_pass(&l, &DENIED, longid, sizeof(longid), 2000));
	log_limiter_flush(&l, 3500);
	char *s = contents(&log);
	char want[512];
	snprintf(want, sizeof(want), "2 more denied PUBLISH for client %.*s... in the last 3 s.\n",
	         (int)LOG_LIMIT_ID_MAX, longid);
	assert_string_equal(s, want);
	free(s);
	close_log(&log);
}

static void test_a_type_that_is_off_passes_nothing_and_keeps_nothing(void **state)
{
	(void)state;
	struct log log;
	open_log(&log);
	log.mask = LOG_TYPE_ERR;
	struct log_limiter l;
	log_limiter_init(&l, &log, &KEY, WINDOW);
	assert_false(log_limit_pass(&l, &DROPPED, "a", 1, 0));
	assert_int_equal(l.entries.count, 0);
	log_limiter_flush(&l, WINDOW);
	char *s = contents(&log);
	assert_string_equal(s, "");
	free(s);
	close_log(&log);
}

/* ---- the writer thread ---- */

#define PER_THREAD 3000

struct producer {
	struct log *log;
	int id;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	for (int i = 0; i < PER_THREAD; i++)
		log_write(p->log, LOG_TYPE_NOTICE, "thread %d line %d", p->id, i);
	return NULL;
}

static void test_writer_keeps_every_line_logged_before_close(void **state)
{
	(void)state;
	struct log log;
	open_log(&log);
	FILE *f = log.out;
	log_write(&log, LOG_TYPE_NOTICE, "before the start");
	assert_int_equal(log_start(&log), TERN_OK);
	pthread_t t[2];
	struct producer p[2] = {{&log, 0}, {&log, 1}};
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, produce, &p[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	log_write(&log, LOG_TYPE_NOTICE, "the last line");
	/* Closing drains: what was handed over is written. The FILE is
	 * ours (own_out false), so it stays open to be read. */
	log_close(&log);
	fflush(f);
	long n = ftell(f);
	char *s = malloc((size_t)n + 1);
	assert_non_null(s);
	rewind(f);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = 0;
	fclose(f);

	assert_true(strncmp(s, "before the start\n", 17) == 0);
	const char *tail = "the last line\n";
	assert_true((size_t)n > strlen(tail));
	assert_string_equal(s + n - (long)strlen(tail), tail);
	/* Each thread's lines in order; every line written or counted lost. */
	int next[2] = {0, 0};
	unsigned long long written = 0, lost = 0;
	for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
		int id, i;
		unsigned long long k;
		if (sscanf(line, "thread %d line %d", &id, &i) == 2) {
			assert_true(id == 0 || id == 1);
			assert_true(i >= next[id]);
			next[id] = i + 1;
			written++;
		} else if (sscanf(line, "Warning: %llu log lines lost", &k) == 1) {
			lost += k;
		}
	}
	assert_int_equal(written + lost, 2 * PER_THREAD);
	free(s);
}

/* Reads a pipe to its end into a growing buffer. */
struct reader {
	int fd;
	char *buf;
	size_t len;
};

static void *read_all(void *arg)
{
	struct reader *r = arg;
	size_t cap = 1 << 20;
	r->buf = malloc(cap + 1);
	assert_non_null(r->buf);
	for (;;) {
		if (r->len == cap) {
			cap *= 2;
			r->buf = realloc(r->buf, cap + 1);
			assert_non_null(r->buf);
		}
		ssize_t n = read(r->fd, r->buf + r->len, cap - r->len);
		if (n <= 0)
			break;
		r->len += (size_t)n;
	}
	r->buf[r->len] = 0;
	return NULL;
}

static void test_a_stuck_destination_costs_lines_not_a_blocked_caller(void **state)
{
	(void)state;
	/* A pipe nobody reads yet: the writer thread blocks once the pipe
	 * is full, as on a stuck disk or a stopped syslogd. */
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	struct log log;
	memset(&log, 0, sizeof(log));
	log.mask = LOG_TYPE_DEFAULT;
	log.out = fdopen(fds[1], "w");
	assert_non_null(log.out);
	assert_int_equal(log_start(&log), TERN_OK);
	/* Far more than the pipe and the writer's buffer hold: if a caller
	 * waited for the writer, this loop would never end. */
	enum { LINES = 40000 };
	for (int i = 0; i < LINES; i++)
		log_write(&log, LOG_TYPE_NOTICE, "line %06d of a burst nobody can write yet", i);
	struct reader r = {.fd = fds[0]};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, read_all, &r), 0);
	FILE *out = log.out;
	log_close(&log); /* drains what was kept */
	fclose(out);     /* the reader's end of file */
	pthread_join(t, NULL);
	close(fds[0]);

	unsigned long long written = 0, lost = 0, k;
	for (char *line = strtok(r.buf, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, "line ", 5) == 0)
			written++;
		else if (sscanf(line, "Warning: %llu log lines lost", &k) == 1)
			lost += k;
	}
	assert_true(lost > 0);
	assert_int_equal(written + lost, LINES);
	free(r.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_first_event_passes_and_repeats_are_counted),
	        cmocka_unit_test(test_a_steady_flood_writes_two_lines_per_window),
	        cmocka_unit_test(test_a_full_table_counts_other_clients_together),
	        cmocka_unit_test(test_flush_reports_open_windows_with_their_length),
	        cmocka_unit_test(test_a_type_that_is_off_passes_nothing_and_keeps_nothing),
	        cmocka_unit_test(test_writer_keeps_every_line_logged_before_close),
	        cmocka_unit_test(test_a_stuck_destination_costs_lines_not_a_blocked_caller),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
