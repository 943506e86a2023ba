/*
 * test_store_roundtrip.c - the SQLite store on its own: what a batch writes comes back
 * from store_load(), in order; sessions that are not stored take nothing
 * with them; deletions cascade; messages go when nothing refers to them;
 * a file that is not ours is refused and left alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"
#include "util/clock.h"

struct seen {
	int sessions, subs, retained, deliveries, qos2;
	uint64_t session_ids[8];
	char client_ids[8][32];
	char filters[8][32];
	char retained_topic[32];
	char retained_src[64]; /* "client|user|listener", "-" when not kept */
	char delivery_payloads[8][32];
	uint16_t delivery_pids[8];
	int delivery_states[8];
	uint16_t qos2_ids[8];
};

static enum tern_err on_session(void *arg, const struct store_loaded_session *s)
{
	struct seen *v = arg;
	v->session_ids[v->sessions] = s->id;
	snprintf(v->client_ids[v->sessions], 32, "%.*s", (int)s->client_id_len,
	         (const char *)s->client_id);
	v->sessions++;
	msg_unref(s->will);
	return TERN_OK;
}

static enum tern_err on_sub(void *arg, uint64_t session, const uint8_t *filter, size_t len,
                            uint8_t qos, uint8_t flags, uint8_t rh, uint32_t sub_id)
{
	struct seen *v = arg;
	(void)session;
	(void)qos;
	(void)flags;
	(void)rh;
	(void)sub_id;
	snprintf(v->filters[v->subs++], 32, "%.*s", (int)len, (const char *)filter);
	return TERN_OK;
}

static enum tern_err on_retained(void *arg, struct msg *m, const struct store_retain_src *src)
{
	struct seen *v = arg;
	snprintf(v->retained_topic, 32, "%.*s", (int)m->topic.len, (const char *)m->topic.data);
	if (src)
		snprintf(v->retained_src, sizeof(v->retained_src), "%.*s|%.*s|%u",
		         (int)src->client_id_len, (const char *)src->client_id,
		         src->has_user ? (int)src->username_len : 1,
		         src->has_user ? (const char *)src->username : "-", src->listener);
	else
		snprintf(v->retained_src, sizeof(v->retained_src), "-");
	v->retained++;
	msg_unref(m);
	return TERN_OK;
}

static enum tern_err on_delivery(void *arg, const struct store_loaded_delivery *d)
{
	struct seen *v = arg;
	snprintf(v->delivery_payloads[v->deliveries], 32, "%.*s", (int)d->msg->payload.len,
	         (const char *)d->msg->payload.data);
	v->delivery_pids[v->deliveries] = d->packet_id;
	v->delivery_states[v->deliveries] = d->state;
	v->deliveries++;
	msg_unref(d->msg);
	return TERN_OK;
}

static enum tern_err on_qos2(void *arg, uint64_t session, uint16_t packet_id)
{
	struct seen *v = arg;
	(void)session;
	v->qos2_ids[v->qos2++] = packet_id;
	return TERN_OK;
}

static void temp_path(char *out, size_t len)
{
	snprintf(out, len, "/tmp/tern-test-store-%d-%llu.db", (int)getpid(),
	         (unsigned long long)mono_us());
}

static void remove_db(const char *path)
{
	char p[300];
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

static struct msg *msg(const char *topic, const char *payload, uint64_t id)
{
	struct msg *m = msg_new((struct tern_bytes){(const uint8_t *)topic, strlen(topic)},
	                        (struct tern_bytes){(const uint8_t *)payload, strlen(payload)}, 1,
	                        false, NULL, 0, mono_ms());
	assert_non_null(m);
	m->store_id = id;
	return m;
}

static void load(const char *path, struct seen *v)
{
	struct store *s;
	char err[512];
	struct store_config cfg = {.path = path, .sync = STORE_SYNC_NORMAL};
	assert_int_equal(store_open(&s, &cfg, err, sizeof(err)), TERN_OK);
	struct store_loader ld = {v, on_session, on_sub, on_retained, on_delivery, on_qos2, NULL};
	uint64_t max_id = 0;
	memset(v, 0, sizeof(*v));
	assert_int_equal(store_load(s, &ld, &max_id, err, sizeof(err)), TERN_OK);
	store_close(s);
}

/* Opens, applies one batch synchronously (store_close drains it), closes. */
static void write_batch(const char *path, struct store_batch *b)
{
	struct store *s;
	char err[512];
	struct store_config cfg = {.path = path, .sync = STORE_SYNC_NORMAL};
	assert_int_equal(store_open(&s, &cfg, err, sizeof(err)), TERN_OK);
	assert_int_equal(store_start(s), TERN_OK);
	store_submit_take(s, b);
	store_close(s);
}

static void test_round_trip_of_every_record(void **state)
{
	(void)state;
	char path[256];
	temp_path(path, sizeof(path));
	struct store_batch *b = store_batch_new();
	assert_int_equal(store_session_put(b, 7, (const uint8_t *)"dev-7", 5, 4, UINT32_MAX, 0),
	                 TERN_OK);
	assert_int_equal(store_sub_put(b, 7, (const uint8_t *)"a/#", 3, 1, 0, 0, 0), TERN_OK);
	struct msg *m1 = msg("a/b", "first", 100), *m2 = msg("a/c", "second", 101);
	struct msg *r = msg("status", "up", 102);
	assert_int_equal(store_msg_put(b, m1), TERN_OK);
	assert_int_equal(store_delivery_put(b, 7, 100, 1, false, NULL, 0), TERN_OK);
	assert_int_equal(store_msg_put(b, m2), TERN_OK);
	assert_int_equal(store_delivery_put(b, 7, 101, 1, false, NULL, 0), TERN_OK);
	assert_int_equal(store_delivery_state(b, 7, 100, 42, STORE_D_SENT), TERN_OK);
	assert_int_equal(store_msg_put(b, r), TERN_OK);
	/* Its publisher goes with it (check_retain_source after a restart). */
	struct store_retain_src src = {.client_id = (const uint8_t *)"pub-1",
	                               .client_id_len = 5,
	                               .username = (const uint8_t *)"alice",
	                               .username_len = 5,
	                               .has_user = true,
	                               .listener = 2};
	assert_int_equal(store_retain_put(b, (const uint8_t *)"status", 6, 102, &src), TERN_OK);
	assert_int_equal(store_qos2_put(b, 7, 9), TERN_OK);
	/* A delivery for a session that is not stored leaves no row. */
	assert_int_equal(store_delivery_put(b, 8, 101, 1, false, NULL, 0), TERN_OK);
	msg_unref(m1);
	msg_unref(m2);
	msg_unref(r);
	write_batch(path, b);

	struct seen v;
	load(path, &v);
	assert_int_equal(v.sessions, 1);
	assert_string_equal(v.client_ids[0], "dev-7");
	assert_int_equal(v.subs, 1);
	assert_string_equal(v.filters[0], "a/#");
	assert_int_equal(v.retained, 1);
	assert_string_equal(v.retained_topic, "status");
	assert_string_equal(v.retained_src, "pub-1|alice|2");
	/* Queue order is message order; the sent one keeps its packet id. */
	assert_int_equal(v.deliveries, 2);
	assert_string_equal(v.delivery_payloads[0], "first");
	assert_int_equal(v.delivery_pids[0], 42);
	assert_int_equal(v.delivery_states[0], STORE_D_SENT);
	assert_string_equal(v.delivery_payloads[1], "second");
	assert_int_equal(v.delivery_states[1], STORE_D_QUEUED);
	assert_int_equal(v.qos2, 1);
	assert_int_equal(v.qos2_ids[0], 9);

	/* Deleting the session takes its rows; the retained message stays. */
	b = store_batch_new();
	assert_int_equal(store_session_del(b, 7), TERN_OK);
	write_batch(path, b);
	load(path, &v);
	assert_int_equal(v.sessions, 0);
	assert_int_equal(v.subs, 0);
	assert_int_equal(v.deliveries, 0);
	assert_int_equal(v.qos2, 0);
	assert_int_equal(v.retained, 1);
	remove_db(path);
}

static void test_acknowledged_delivery_is_gone(void **state)
{
	(void)state;
	char path[256];
	temp_path(path, sizeof(path));
	struct store_batch *b = store_batch_new();
	assert_int_equal(store_session_put(b, 1, (const uint8_t *)"c", 1, 5, 600, 0), TERN_OK);
	struct msg *m = msg("t", "x", 10);
	assert_int_equal(store_msg_put(b, m), TERN_OK);
	assert_int_equal(store_delivery_put(b, 1, 10, 1, false, NULL, 0), TERN_OK);
	assert_int_equal(store_delivery_state(b, 1, 10, 1, STORE_D_SENT), TERN_OK);
	assert_int_equal(store_delivery_del(b, 1, 10), TERN_OK);
	msg_unref(m);
	write_batch(path, b);
	struct seen v;
	load(path, &v);
	assert_int_equal(v.sessions, 1);
	assert_int_equal(v.deliveries, 0);
	remove_db(path);
}

/* Records whether the loaded will has an expiry. */
static enum tern_err on_session_will(void *arg, const struct store_loaded_session *s)
{
	int *will = arg;
	*will = !s->will ? -1 : s->will->expire_at ? 1 : 0;
	msg_unref(s->will);
	return TERN_OK;
}

/* A batch writes a message as it was when recorded: a delayed will gets its
 * expiry from its session only when it is published (on the worker, while
 * the storage thread may be writing the batch that holds it), and that
 * change is not the batch's to read. */
static void test_message_is_stored_as_recorded(void **state)
{
	(void)state;
	char path[256];
	temp_path(path, sizeof(path));
	struct store_batch *b = store_batch_new();
	assert_int_equal(store_session_put(b, 3, (const uint8_t *)"w", 1, 5, 600, wall_ms()),
	                 TERN_OK);
	struct msg *will = msg("wills/w", "gone", 30);
	assert_int_equal(store_msg_put(b, will), TERN_OK);
	assert_int_equal(store_will_put(b, 3, 30, wall_ms() + 60000), TERN_OK);
	/* Published later: the worker sets the expiry. */
	will->expire_at = mono_ms() + 3600 * 1000;
	write_batch(path, b);
	msg_unref(will);

	int has_will = -2;
	struct store *s;
	char err[512];
	struct store_config cfg = {.path = path, .sync = STORE_SYNC_NORMAL};
	assert_int_equal(store_open(&s, &cfg, err, sizeof(err)), TERN_OK);
	struct seen v;
	memset(&v, 0, sizeof(v));
	struct store_loader ld = {&has_will,   on_session_will, on_sub, on_retained,
	                          on_delivery, on_qos2,         NULL};
	uint64_t max_id = 0;
	assert_int_equal(store_load(s, &ld, &max_id, err, sizeof(err)), TERN_OK);
	store_close(s);
	assert_int_equal(has_will, 0);
	remove_db(path);
}

static void test_foreign_file_is_refused_and_untouched(void **state)
{
	(void)state;
	char path[256];
	temp_path(path, sizeof(path));
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("not a database at all, just text that someone put here\n", f);
	fclose(f);
	struct store *s = NULL;
	char err[512] = "";
	struct store_config cfg = {.path = path, .sync = STORE_SYNC_NORMAL};
	assert_int_not_equal(store_open(&s, &cfg, err, sizeof(err)), TERN_OK);
	assert_non_null(strstr(err, path));
	f = fopen(path, "r");
	char line[128];
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_string_equal(line, "not a database at all, just text that someone put here\n");
	remove_db(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_round_trip_of_every_record),
	        cmocka_unit_test(test_acknowledged_delivery_is_gone),
	        cmocka_unit_test(test_message_is_stored_as_recorded),
	        cmocka_unit_test(test_foreign_file_is_refused_and_untouched),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
