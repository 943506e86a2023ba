/*
 * test_store.c - unit tests of the store (src/store): what fuzz_store
 * found, kept as tests.
 *
 * Each test works on a fresh database in a directory of its own under
 * /tmp. Rows are written with plain SQL, as a user (or damage) could, and
 * read back with store_load() through a loader that counts what it gets
 * and drops the references it is handed, so LeakSanitizer sees any that
 * the store forgets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/batch.h"
#include "store/store.h"

struct fix {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/ternd.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	char p[160];
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Creates the database with the schema, then runs sql on it. */
static void make_db(const struct fix *f, const char *sql)
{
	struct store *s = NULL;
	struct store_config sc = {.path = f->path, .sync = STORE_SYNC_OFF};
	char err[512] = "";
	assert_int_equal(store_open(&s, &sc, err, sizeof(err)), TERN_OK);
	store_close(s);
	sqlite3 *db = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("SQL failed: %s", msg);
	sqlite3_close(db);
}

struct counts {
	size_t sessions, subs, retained, deliveries, qos2;
};

static enum tern_err on_session(void *arg, const struct store_loaded_session *s)
{
	struct counts *c = arg;
	assert_non_null(s->client_id);
	msg_unref(s->will);
	c->sessions++;
	return TERN_OK;
}

static enum tern_err on_sub(void *arg, uint64_t session, const uint8_t *filter, size_t len,
                            uint8_t qos, uint8_t flags, uint8_t rh, uint32_t sub_id)
{
	struct counts *c = arg;
	assert_true(qos <= 2 && rh <= 2);
	c->subs++;
	return TERN_OK;
}

static enum tern_err on_retained(void *arg, struct msg *m, const struct store_retain_src *src)
{
	(void)src;
	struct counts *c = arg;
	msg_unref(m);
	c->retained++;
	return TERN_OK;
}

static enum tern_err on_delivery(void *arg, const struct store_loaded_delivery *d)
{
	struct counts *c = arg;
	msg_unref(d->msg);
	c->deliveries++;
	return TERN_OK;
}

static enum tern_err on_qos2(void *arg, uint64_t session, uint16_t packet_id)
{
	struct counts *c = arg;
	assert_true(packet_id != 0);
	c->qos2++;
	return TERN_OK;
}

/* Opens and loads the database; returns store_load()'s result (or
 * store_open()'s when it fails), with the message in err. */
static enum tern_err load(const struct fix *f, struct counts *c, char *err, size_t errlen)
{
	struct store *s = NULL;
	struct store_config sc = {.path = f->path, .sync = STORE_SYNC_OFF};
	enum tern_err rc = store_open(&s, &sc, err, errlen);
	if (rc)
		return rc;
	struct store_loader ld = {.arg = c,
	                          .session = on_session,
	                          .sub = on_sub,
	                          .retained = on_retained,
	                          .delivery = on_delivery,
	                          .qos2 = on_qos2};
	uint64_t max_id = 0;
	rc = store_load(s, &ld, &max_id, err, errlen);
	store_close(s);
	return rc;
}

/* Rows as ternd writes them, with values at the edges of their ranges,
 * all load. */
static void test_load_accepts_edge_values(void **state)
{
	struct fix *f = *state;
	make_db(f, "INSERT INTO messages VALUES(1, 'a/b', x'', 2, 1, 9007199254740992, 1, '',"
	           " 'r/t', x'', x'2600016b000176');"
	           "INSERT INTO messages VALUES(2, 'w', 'bye', 1, 0, NULL, NULL, NULL, NULL,"
	           " NULL, NULL);"
	           "INSERT INTO sessions VALUES(1, 'c1', 5, 4294967295, 0, 2, 1700000000000);"
	           "INSERT INTO sessions VALUES(9223372036854775807, 'c2', 3, 0, 1, NULL, NULL);"
	           "INSERT INTO subscriptions VALUES(1, '$share/g/a/#', 2, 0, 1, 2, 268435455);"
	           "INSERT INTO retained (topic, message_id) VALUES('a/b', 1);"
	           "INSERT INTO deliveries VALUES(1, 1, 2, 1, 65535, 2, x'0700000008000000');"
	           "INSERT INTO deliveries VALUES(1, 2, 0, 0, 0, 0, NULL);"
	           "INSERT INTO inbound_qos2 VALUES(1, 65535);");
	struct counts c = {0};
	char err[512] = "";
	assert_int_equal(load(f, &c, err, sizeof(err)), TERN_OK);
	assert_int_equal(c.sessions, 2);
	assert_int_equal(c.subs, 1);
	assert_int_equal(c.retained, 1);
	assert_int_equal(c.deliveries, 2);
	assert_int_equal(c.qos2, 1);
}

/* A row ternd cannot have written makes the load fail with a message
 * naming the table and the reason, before the broker sees it (found by
 * fuzz_store: a NULL client id reached memcpy() in session_new(), an
 * invalid filter failed in the router with the message "not an error", a
 * client id stored twice leaked a session). */
static void test_load_refuses_bad_rows(void **state)
{
	struct fix *f = *state;
	static const struct {
		const char *sql;
		const char *want; /* in the error message */
	} cases[] = {
	        {"DROP TABLE sessions; CREATE TABLE sessions(id INTEGER PRIMARY KEY,"
	         " client_id TEXT, protocol, expiry, disconnected_at, will_message, will_at);"
	         "INSERT INTO sessions VALUES(3, NULL, 4, 100, 0, NULL, NULL);",
	         "bad client id"},
	        {"DROP TABLE sessions; CREATE TABLE sessions(id INTEGER PRIMARY KEY,"
	         " client_id TEXT, protocol, expiry, disconnected_at, will_message, will_at);"
	         "INSERT INTO sessions VALUES(1, 'c', 4, 100, 0, NULL, NULL);"
	         "INSERT INTO sessions VALUES(2, 'c', 5, 100, 0, NULL, NULL);",
	         "same client id"},
	        {"INSERT INTO sessions VALUES(1, 'c', 9, 100, 0, NULL, NULL);",
	         "bad protocol level"},
	        {"INSERT INTO sessions VALUES(-1, 'c', 4, 100, 0, NULL, NULL);", "bad id"},
	        {"INSERT INTO sessions VALUES(1, 'c', 4, 100, 9223372036854775807, NULL, NULL);",
	         "bad disconnection time"},
	        {"INSERT INTO sessions VALUES(1, 'c', 4, 100, 0, NULL, NULL);"
	         "INSERT INTO subscriptions VALUES(1, 'a/#/b', 0, 0, 0, 0, 0);",
	         "not a valid topic filter"},
	        {"INSERT INTO sessions VALUES(1, 'c', 4, 100, 0, NULL, NULL);"
	         "INSERT INTO subscriptions VALUES(1, 'a', 3, 0, 0, 0, 0);",
	         "bad qos"},
	        {"INSERT INTO messages VALUES(1, 'a/+', 'p', 0, 1, NULL, NULL, NULL, NULL, NULL,"
	         " NULL); INSERT INTO retained (topic, message_id) VALUES('a', 1);",
	         "not a valid topic name"},
	        {"INSERT INTO messages VALUES(1, 'a', 'p', 0, 0, -9223372036854775808, NULL, NULL,"
	         " NULL, NULL, NULL);"
	         "INSERT INTO sessions VALUES(1, 'c', 5, 100, 0, 1, 0);",
	         "bad message expiry time"},
	        {"INSERT INTO messages VALUES(1, 'a', 'p', 0, 1, NULL, NULL, NULL, NULL, NULL,"
	         " x'26ffff'); INSERT INTO retained (topic, message_id) VALUES('a', 1);",
	         "bad message user properties"},
	        {"INSERT INTO sessions VALUES(1, 'c', 4, 100, 0, NULL, NULL);"
	         "INSERT INTO messages VALUES(1, 't', 'p', 1, 0, NULL, NULL, NULL, NULL, NULL, "
	         "NULL);"
	         "INSERT INTO messages VALUES(2, 't', 'p', 1, 0, NULL, NULL, NULL, NULL, NULL, "
	         "NULL);"
	         "INSERT INTO deliveries VALUES(1, 1, 1, 0, 7, 1, NULL);"
	         "INSERT INTO deliveries VALUES(1, 2, 1, 0, 7, 1, NULL);",
	         "same packet id"},
	        {"INSERT INTO sessions VALUES(1, 'c', 4, 100, 0, NULL, NULL);"
	         "INSERT INTO messages VALUES(1, 't', 'p', 1, 0, NULL, NULL, NULL, NULL, NULL, "
	         "NULL);"
	         "INSERT INTO deliveries VALUES(1, 1, 1, 0, 0, 1, NULL);",
	         "in flight without"},
	        {"INSERT INTO sessions VALUES(1, 'c', 4, 100, 0, NULL, NULL);"
	         "INSERT INTO inbound_qos2 VALUES(1, 0);",
	         "bad packet id"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		teardown(state);
		assert_int_equal(setup(state), 0);
		f = *state;
		make_db(f, cases[i].sql);
		struct counts c = {0};
		char err[512] = "";
		enum tern_err rc = load(f, &c, err, sizeof(err));
		if (rc != TERN_E_CONFIG || !strstr(err, cases[i].want))
			fail_msg("case %zu: got %d '%s', want '%s'", i, rc, err, cases[i].want);
	}
}

static void on_done(void *arg, uint64_t ticket, enum tern_err err)
{
	*(enum tern_err *)arg = err;
}

/* A batch of deletions only has no byte buffer; applying it must not
 * compute NULL + 0 (undefined; found by fuzz_store under UBSan). */
static void test_deletion_only_batch(void **state)
{
	struct fix *f = *state;
	make_db(f, "INSERT INTO sessions VALUES(1, 'c', 4, 100, 0, NULL, NULL);");
	struct store_batch *b = store_batch_new();
	assert_non_null(b);
	assert_int_equal(store_session_del(b, 1), TERN_OK);
	assert_int_equal(store_delivery_del(b, 1, 1), TERN_OK);
	assert_null(store_op_data(b, &b->ops[0]));

	struct store *s = NULL;
	struct store_config sc = {.path = f->path, .sync = STORE_SYNC_OFF};
	char err[512] = "";
	assert_int_equal(store_open(&s, &sc, err, sizeof(err)), TERN_OK);
	enum tern_err done = TERN_E_INVALID;
	store_batch_on_done(b, on_done, &done, 1);
	store_submit_take(s, b); /* applied by store_close() at the latest */
	store_close(s);
	assert_int_equal(done, TERN_OK);

	struct counts c = {0};
	assert_int_equal(load(f, &c, err, sizeof(err)), TERN_OK);
	assert_int_equal(c.sessions, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_load_accepts_edge_values, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_load_refuses_bad_rows, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_deletion_only_batch, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
