/*
 * test_http_call.c - unit tests of the admin API's way to the workers
 * (src/http/http_call.h): every worker asked runs the function on its own
 * loop into its own slot, a subset can be asked, and a call whose waiter
 * gave up (timeout) stays alive until the last worker ran it, then is freed
 * by that worker (ASan checks the memory).
 *
 * Each test builds a broker in-process (memory storage, no listener, 2
 * workers, no worker thread) and drives its workers' loops itself with
 * worker_iterate(), from a thread of the test while the call waits.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "broker/worker.h"
#include "http/http_call.h"

struct fixture {
	struct broker b;
	atomic_int ran; /* functions run, over all workers */
	atomic_bool stop;
	pthread_t driver;
};

static int setup(void **state)
{
	static struct config cfg;
	config_defaults(&cfg);
	cfg.storage = STORAGE_MEMORY;
	cfg.workers = 2;
	cfg.n_listeners = 0;
	cfg.log_dest = LOG_DEST_NONE;
	cfg.sys_interval = 0;
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(broker_init(&f->b, &cfg), TERN_OK);
	assert_int_equal(f->b.n_workers, 2);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	broker_stop(&f->b);
	broker_free(&f->b);
	free(f);
	return 0;
}

/* The test's stand-in for the worker threads. */
static void *drive(void *arg)
{
	struct fixture *f = arg;
	while (!atomic_load(&f->stop))
		for (unsigned i = 0; i < f->b.n_workers; i++)
			worker_iterate(f->b.workers[i], 2);
	return NULL;
}

static void start_driver(struct fixture *f)
{
	atomic_store(&f->stop, false);
	assert_int_equal(pthread_create(&f->driver, NULL, drive, f), 0);
}

static void stop_driver(struct fixture *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->driver, NULL);
}

/* The arguments: the fixture, by pointer (copied into the call). */
static void note(struct worker *w, const void *args, struct http_slot *slot)
{
	struct fixture *f;
	memcpy(&f, args, sizeof(f));
	slot->n = w->id + 1;
	slot->err = buf_append(&slot->out, "w", 1, 0);
	atomic_fetch_add(&f->ran, 1);
}

static void test_every_worker_answers_into_its_slot(void **state)
{
	struct fixture *f = *state;
	struct http_call *c = http_call_new(&f->b, note, &f, sizeof(f));
	assert_non_null(c);
	start_driver(f);
	assert_int_equal(http_call_run(c, NULL, 0, 5000), TERN_OK);
	stop_driver(f);
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(http_call_slot(c, i)->n, i + 1);
		assert_int_equal(http_call_slot(c, i)->err, TERN_OK);
		assert_int_equal(buf_used(&http_call_slot(c, i)->out), 1);
	}
	assert_int_equal(atomic_load(&f->ran), 2);
	http_call_unref(c);
}

static void test_only_the_workers_asked_run_it(void **state)
{
	struct fixture *f = *state;
	struct http_call *c = http_call_new(&f->b, note, &f, sizeof(f));
	assert_non_null(c);
	unsigned one = 1;
	start_driver(f);
	assert_int_equal(http_call_run(c, &one, 1, 5000), TERN_OK);
	stop_driver(f);
	assert_int_equal(http_call_slot(c, 0)->n, 0);
	assert_int_equal(http_call_slot(c, 1)->n, 2);
	assert_int_equal(atomic_load(&f->ran), 1);
	http_call_unref(c);
}

/* Nobody runs the loops: the waiter gives up and drops its reference; the
 * call lives on in the inboxes, and the workers run it later and free it
 * (a use after free or a leak here is ASan's to report). */
static void test_a_call_given_up_is_freed_by_the_last_worker(void **state)
{
	struct fixture *f = *state;
	struct http_call *c = http_call_new(&f->b, note, &f, sizeof(f));
	assert_non_null(c);
	assert_int_equal(http_call_run(c, NULL, 0, 50), TERN_E_TIMEOUT);
	http_call_unref(c);
	assert_int_equal(atomic_load(&f->ran), 0);
	for (unsigned i = 0; i < 2; i++)
		worker_iterate(f->b.workers[i], 0);
	assert_int_equal(atomic_load(&f->ran), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_every_worker_answers_into_its_slot, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_only_the_workers_asked_run_it, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_a_call_given_up_is_freed_by_the_last_worker,
	                                        setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
