/*
 * test_client_blocking.c - the blocking API of libtern against a scripted
 * broker (client_fake_broker.h), without threads: the broker's answer is
 * written into the socket before the blocking call starts (packet ids are
 * predictable: the client hands them out in order), so the call finds it
 * as soon as it polls. Timeouts and lost connections end the waits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "client_fake_broker.h"

/* Writes p for the connection's version without stepping the client. */
static void preload(struct fb *f, const struct tern_packet *p)
{
	uint8_t buf[512];
	size_t n = 0;
	assert_int_equal(tern_encode_packet(p, f->version, buf, sizeof(buf), &n), TERN_OK);
	assert_int_equal(write(f->fd, buf, n), (ssize_t)n);
}

static void preload_ack(struct fb *f, enum tern_packet_type type, uint16_t id, uint8_t reason)
{
	struct tern_packet p = {.type = type};
	p.u.ack.packet_id = id;
	p.u.ack.reason = reason;
	preload(f, &p);
}

static struct fb *connected(uint8_t version, bool queue)
{
	struct tern_connect_opts o = fb_opts(version, "blk");
	struct fb *f = fb_new(&o, queue);
	fb_handshake(f, 0, false, NULL);
	assert_true(tern_client_is_connected(f->c));
	return f;
}

static void test_publish_wait_qos1_and_qos2(void **state)
{
	(void)state;
	struct fb *f = connected(TERN_V5, false);
	struct tern_publish_args a = {.topic = "b/1", .payload = "x", .payload_len = 1, .qos = 1};
	uint8_t reason = 0xFF;

	preload_ack(f, TERN_PUBACK, 1, 0);
	assert_int_equal(tern_client_publish_wait(f->c, &a, 2000, &reason), TERN_OK);
	assert_int_equal(reason, 0);

	/* QoS 2: the PUBREC is answered with PUBREL inside the wait. */
	a.qos = 2;
	preload_ack(f, TERN_PUBREC, 2, 0);
	preload_ack(f, TERN_PUBCOMP, 2, 0);
	assert_int_equal(tern_client_publish_wait(f->c, &a, 2000, &reason), TERN_OK);
	assert_int_equal(tern_client_pending(f->c), 0);
	struct tern_packet p;
	fb_expect(f, &p, TERN_PUBLISH);
	fb_expect(f, &p, TERN_PUBLISH);
	fb_expect(f, &p, TERN_PUBREL);
	assert_int_equal(p.u.ack.packet_id, 2);

	/* QoS 0 returns once written. */
	a.qos = 0;
	assert_int_equal(tern_client_publish_wait(f->c, &a, 2000, &reason), TERN_OK);
	fb_expect(f, &p, TERN_PUBLISH);
	assert_int_equal(p.u.publish.qos, 0);
	fb_free(f);
}

static void test_publish_wait_failure_reason_is_protocol_error(void **state)
{
	(void)state;
	struct fb *f = connected(TERN_V5, false);
	struct tern_publish_args a = {.topic = "b/2", .payload = "x", .payload_len = 1, .qos = 1};
	uint8_t reason = 0;
	preload_ack(f, TERN_PUBACK, 1, TERN_RC_NOT_AUTHORIZED);
	assert_int_equal(tern_client_publish_wait(f->c, &a, 2000, &reason), TERN_E_PROTOCOL);
	assert_int_equal(reason, TERN_RC_NOT_AUTHORIZED);
	fb_free(f);
}

static void test_publish_wait_times_out_and_keeps_message(void **state)
{
	(void)state;
	struct fb *f = connected(TERN_V311, false);
	struct tern_publish_args a = {.topic = "b/3", .payload = "x", .payload_len = 1, .qos = 1};
	assert_int_equal(tern_client_publish_wait(f->c, &a, 100, NULL), TERN_E_TIMEOUT);
	assert_int_equal(tern_client_pending(f->c), 1);
	/* A late PUBACK still completes it. */
	fb_send_ack(f, TERN_PUBACK, 1, 0);
	assert_int_equal(tern_client_pending(f->c), 0);
	assert_int_equal(f->n_pub, 1);
	fb_free(f);
}

static void test_publish_wait_ends_when_connection_lost(void **state)
{
	(void)state;
	struct fb *f = connected(TERN_V311, false);
	struct tern_publish_args a = {.topic = "b/4", .payload = "x", .payload_len = 1, .qos = 1};
	fb_hangup(f);
	assert_int_equal(tern_client_publish_wait(f->c, &a, 2000, NULL), TERN_E_CLOSED);
	assert_int_equal(tern_client_pending(f->c), 1); /* kept for a later connection */
	/* Idle now: waiting again ends at once, not at the timeout. */
	assert_int_equal(tern_client_publish_wait(f->c, &a, -1, NULL), TERN_E_CLOSED);
	assert_int_equal(tern_client_loop(f->c, -1), TERN_OK);
	fb_free(f);
}

static void test_subscribe_and_unsubscribe_wait(void **state)
{
	(void)state;
	struct fb *f = connected(TERN_V5, false);
	uint8_t granted[2] = {1, TERN_RC_NOT_AUTHORIZED};
	struct tern_packet s = {.type = TERN_SUBACK};
	s.u.subres.packet_id = 1;
	s.u.subres.count = 2;
	s.u.subres.reasons = granted;
	preload(f, &s);
	struct tern_sub_entry es[2] = {{.filter = B("x/#"), .qos = 1},
	                               {.filter = B("y"), .qos = 2}};
	uint8_t reasons[2] = {0xFF, 0xFF};
	assert_int_equal(tern_client_subscribe_wait(f->c, es, 2, NULL, 2000, reasons), TERN_OK);
	assert_int_equal(reasons[0], 1);
	assert_int_equal(reasons[1], TERN_RC_NOT_AUTHORIZED);

	uint8_t ok[1] = {0};
	struct tern_packet u = {.type = TERN_UNSUBACK};
	u.u.subres.packet_id = 2;
	u.u.subres.count = 1;
	u.u.subres.reasons = ok;
	preload(f, &u);
	const char *filters[] = {"x/#"};
	assert_int_equal(tern_client_unsubscribe_wait(f->c, filters, 1, NULL, 2000), TERN_OK);

	/* No answer: timeout; then a lost connection ends the wait. */
	assert_int_equal(tern_client_subscribe_wait(f->c, es, 1, NULL, 50, reasons),
	                 TERN_E_TIMEOUT);
	fb_hangup(f);
	assert_int_equal(tern_client_subscribe_wait(f->c, es, 1, NULL, 2000, reasons),
	                 TERN_E_CLOSED);
	fb_free(f);
}

static void test_receive_waits_for_message(void **state)
{
	(void)state;
	struct fb *f = connected(TERN_V311, true);
	struct tern_message *m = NULL;
	assert_int_equal(tern_client_receive(f->c, &m, 50), TERN_E_TIMEOUT);
	assert_null(m);

	struct tern_packet p = {.type = TERN_PUBLISH};
	p.u.publish.topic = B("r/1");
	p.u.publish.payload = B("first");
	p.u.publish.qos = 1;
	p.u.publish.packet_id = 77;
	preload(f, &p);
	p.u.publish.payload = B("second");
	p.u.publish.qos = 0;
	p.u.publish.packet_id = 0;
	preload(f, &p);
	assert_int_equal(tern_client_receive(f->c, &m, 2000), TERN_OK);
	assert_string_equal(m->topic, "r/1");
	assert_int_equal(m->qos, 1);
	assert_memory_equal(m->payload, "first", 5);
	tern_message_free(m);
	assert_int_equal(tern_client_receive(f->c, &m, 2000), TERN_OK);
	assert_memory_equal(m->payload, "second", 6);
	tern_message_free(m);
	struct tern_packet ack;
	fb_expect(f, &ack, TERN_PUBACK);
	assert_int_equal(ack.u.ack.packet_id, 77);

	/* A message still queued when the client is freed is freed with it. */
	p.u.publish.payload = B("left over");
	fb_send(f, &p);
	fb_hangup(f);
	fb_wait_disconnect(f, FB_WAIT_MS);
	assert_int_equal(tern_client_receive(f->c, &m, 0), TERN_OK);
	tern_message_free(m);
	assert_int_equal(tern_client_receive(f->c, &m, 2000), TERN_E_CLOSED);
	fb_free(f);
}

static void test_receive_refused_with_on_message(void **state)
{
	(void)state;
	struct fb *f = connected(TERN_V311, false);
	struct tern_message *m;
	assert_int_equal(tern_client_receive(f->c, &m, 0), TERN_E_INVALID);
	fb_free(f);
}

static void test_loop_returns_when_disconnect_is_written(void **state)
{
	(void)state;
	struct fb *f = connected(TERN_V311, false);
	/* Connected and nothing to do: the loop runs until its timeout. */
	assert_int_equal(tern_client_loop(f->c, 50), TERN_OK);
	assert_true(tern_client_is_connected(f->c));
	assert_int_equal(tern_client_disconnect(f->c, 0, NULL), TERN_OK);
	assert_int_equal(tern_client_loop(f->c, -1), TERN_OK);
	assert_int_equal(tern_client_fd(f->c), -1);
	assert_int_equal(tern_client_disconnect(f->c, 0, NULL), TERN_E_CLOSED);
	fb_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_publish_wait_qos1_and_qos2),
	        cmocka_unit_test(test_publish_wait_failure_reason_is_protocol_error),
	        cmocka_unit_test(test_publish_wait_times_out_and_keeps_message),
	        cmocka_unit_test(test_publish_wait_ends_when_connection_lost),
	        cmocka_unit_test(test_subscribe_and_unsubscribe_wait),
	        cmocka_unit_test(test_receive_waits_for_message),
	        cmocka_unit_test(test_receive_refused_with_on_message),
	        cmocka_unit_test(test_loop_returns_when_disconnect_is_written),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
