/*
 * test_auth_pool.c - unit tests of the password check threads
 * (src/broker/auth_pool.c).
 *
 * The pool answers into a worker's inbox; each test builds a broker
 * in-process (memory storage, no listener, no worker thread) for its
 * worker 0 and pops the verdicts from that inbox itself. The users come
 * from tests/unit/data/mosquitto.passwd (written by the real
 * mosquitto_passwd; see test_passwd.c): alice 'alice-secret' (101 rounds),
 * erin 'thousand' (1000 rounds, about 1 ms a check).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/passwd.h"
#include "broker/auth_pool.h"
#include "broker/broker.h"
#include "broker/config.h"
#include "broker/worker.h"
#include "tern/codec.h"
#include "util/mpsc.h"

struct fixture {
	struct broker b;
	struct passwd_db *db;
};

static int setup(void **state)
{
	static struct config cfg;
	config_defaults(&cfg);
	cfg.storage = STORAGE_MEMORY;
	cfg.workers = 1;
	cfg.n_listeners = 0;
	cfg.log_dest = LOG_DEST_NONE;
	cfg.sys_interval = 0;
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(broker_init(&f->b, &cfg), TERN_OK);
	assert_int_equal(passwd_load(TERN_TEST_DATA "/mosquitto.passwd", &f->db, NULL, 0), TERN_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	broker_stop(&f->b);
	broker_free(&f->b);
	passwd_free(f->db);
	free(f);
	return 0;
}

/* Pops verdicts from w's inbox until n arrived (or 20 s passed): rc[conn id]
 * gets each one's reason. Returns how many arrived. */
static unsigned collect(struct worker *w, unsigned n, int *rc, size_t rc_len)
{
	unsigned got = 0;
	for (int spin = 0; got < n && spin < 20000; spin++) {
		struct mpsc_node *node;
		while ((node = mpsc_pop(&w->inbox))) {
			struct inbox_item *it = (struct inbox_item *)node;
			assert_int_equal(it->kind, INBOX_AUTH_DONE);
			assert_true(it->u.verdict.conn < rc_len);
			assert_int_equal(rc[it->u.verdict.conn], -1); /* one verdict each */
			rc[it->u.verdict.conn] = it->u.verdict.rc;
			free(it);
			got++;
		}
		if (got < n)
			nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	return got;
}

static enum tern_err ask(struct auth_pool *p, struct worker *w, struct passwd_db *db, uint64_t id,
                         const char *user, const char *pw)
{
	return auth_pool_submit(p, w, id, NULL, db, (const uint8_t *)user, strlen(user),
	                        (const uint8_t *)pw, pw ? strlen(pw) : 0);
}

/* Every verdict reaches the worker once, under the connection id it was
 * asked for, with the answer for that request's own password. */
static void test_verdicts_come_back_matched_by_conn_id(void **state)
{
	struct fixture *f = *state;
	struct worker *w = f->b.workers[0];
	struct auth_pool *p;
	assert_int_equal(auth_pool_new(2, 64, &p), TERN_OK);
	int rc[40];
	for (uint64_t i = 0; i < 40; i++) {
		rc[i] = -1;
		const char *pw = i % 3 == 0 ? "alice-secret" : i % 3 == 1 ? "wrong" : NULL;
		assert_int_equal(ask(p, w, f->db, i, i % 5 ? "alice" : "nobody", pw), TERN_OK);
	}
	assert_int_equal(collect(w, 40, rc, 40), 40);
	for (unsigned i = 0; i < 40; i++) {
		bool good = i % 3 == 0 && i % 5 != 0;
		assert_int_equal(rc[i], good ? TERN_RC_SUCCESS : TERN_RC_BAD_USERNAME_OR_PASSWORD);
	}
	auth_pool_free(p);
}

/* The queue is bounded: with one thread busy on 1 ms checks, requests
 * beyond the queue's room are refused (TERN_E_LIMIT) and never answered;
 * every accepted one is. */
static void test_queue_is_bounded(void **state)
{
	struct fixture *f = *state;
	struct worker *w = f->b.workers[0];
	struct auth_pool *p;
	assert_int_equal(auth_pool_new(1, 4, &p), TERN_OK);
	int rc[2000];
	unsigned accepted = 0, refused = 0;
	for (uint64_t i = 0; i < 2000; i++) {
		rc[i] = -1;
		enum tern_err e = ask(p, w, f->db, i, "erin", "not-thousand");
		if (e == TERN_OK)
			accepted++;
		else if (e == TERN_E_LIMIT)
			refused++;
		else
			fail_msg("unexpected %d", e);
	}
	assert_true(refused > 0);
	assert_int_equal(collect(w, accepted, rc, 2000), accepted);
	for (unsigned i = 0; i < 2000; i++)
		assert_true(rc[i] == -1 || rc[i] == TERN_RC_BAD_USERNAME_OR_PASSWORD);
	auth_pool_free(p);
}

/* Freeing the pool with requests still queued drops them (the sanitizer
 * build checks nothing leaks); at most the checks in progress answer. */
static void test_free_drops_what_is_queued(void **state)
{
	struct fixture *f = *state;
	struct worker *w = f->b.workers[0];
	struct auth_pool *p;
	assert_int_equal(auth_pool_new(1, 64, &p), TERN_OK);
	for (uint64_t i = 0; i < 64; i++)
		assert_int_equal(ask(p, w, f->db, i, "erin", "thousand"), TERN_OK);
	auth_pool_free(p);
	unsigned answered = 0;
	struct mpsc_node *node;
	while ((node = mpsc_pop(&w->inbox))) {
		struct inbox_item *it = (struct inbox_item *)node;
		assert_int_equal(it->u.verdict.rc, TERN_RC_SUCCESS);
		free(it);
		answered++;
	}
	assert_true(answered < 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_verdicts_come_back_matched_by_conn_id, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_queue_is_bounded, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_free_drops_what_is_queued, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
