/*
 * test_ring.c - unit tests of util/ring.h: order kept across wrap-around
 * and growth, capacity a power of two, empty and reused rings.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/ring.h"

struct item {
	uint32_t seq;
	uint8_t pad[20]; /* an element size that is not a power of two */
};

/* Pushing then popping gives the elements back in order, first in first
 * out, across growth from nothing. */
static void test_fifo_order_across_growth(void **state)
{
	(void)state;
	struct ring r = {0};
	for (uint32_t i = 0; i < 1000; i++) {
		struct item *it = RING_PUSH(&r, struct item);
		assert_non_null(it);
		it->seq = i;
	}
	assert_int_equal(r.n, 1000);
	assert_int_equal(r.cap, 1024);
	for (uint32_t i = 0; i < 1000; i++) {
		assert_int_equal(RING_AT(&r, struct item, i)->seq, i);
	}
	for (uint32_t i = 0; i < 1000; i++) {
		assert_int_equal(RING_FRONT(&r, struct item)->seq, i);
		ring_pop(&r);
	}
	assert_int_equal(r.n, 0);
	ring_free(&r);
	assert_null(r.v);
	assert_int_equal(r.cap, 0);
}

/* A ring whose elements wrap past the end of its array grows with them in
 * order: the part from head to the end first, then the wrapped part. */
static void test_growth_while_wrapped_keeps_order(void **state)
{
	(void)state;
	struct ring r = {0};
	uint32_t next = 0, expect = 0;
	/* Fill the first 8 slots, take 5 off the front, add 5 more: the
	 * elements now wrap around the end of the array (head 5). */
	for (int i = 0; i < 8; i++)
		RING_PUSH(&r, struct item)->seq = next++;
	assert_int_equal(r.cap, 8);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(RING_FRONT(&r, struct item)->seq, expect++);
		ring_pop(&r);
	}
	for (int i = 0; i < 5; i++)
		RING_PUSH(&r, struct item)->seq = next++;
	assert_int_equal(r.cap, 8);
	assert_int_not_equal(r.head, 0);
	/* One more does not fit: the ring doubles. */
	RING_PUSH(&r, struct item)->seq = next++;
	assert_int_equal(r.cap, 16);
	assert_int_equal(r.head, 0);
	assert_int_equal(r.n, next - expect);
	for (uint32_t i = 0; i < r.n; i++)
		assert_int_equal(RING_AT(&r, struct item, i)->seq, expect + i);
	while (r.n) {
		assert_int_equal(RING_FRONT(&r, struct item)->seq, expect++);
		ring_pop(&r);
	}
	assert_int_equal(expect, next);
	ring_free(&r);
}

/* ring_reserve() makes room for several at once, and is a no-op when the
 * room is there. */
static void test_reserve(void **state)
{
	(void)state;
	struct ring r = {0};
	assert_int_equal(ring_reserve(&r, sizeof(struct item), 20), TERN_OK);
	assert_int_equal(r.cap, 32);
	void *v = r.v;
	assert_int_equal(ring_reserve(&r, sizeof(struct item), 32), TERN_OK);
	assert_ptr_equal(r.v, v);
	assert_int_equal(r.n, 0);
	ring_free(&r);
	/* A freed ring is reusable. */
	RING_PUSH(&r, struct item)->seq = 7;
	assert_int_equal(RING_FRONT(&r, struct item)->seq, 7);
	ring_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_fifo_order_across_growth),
	        cmocka_unit_test(test_growth_while_wrapped_keeps_order),
	        cmocka_unit_test(test_reserve),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
