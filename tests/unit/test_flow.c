/*
 * test_flow.c - unit tests of flow cells (src/broker/flow.h) and of how the
 * router holds and reads them (src/broker/router.c).
 *
 * The cell decides when a publisher must wait for a slow subscriber and
 * when it may go on; the router keeps a cell alive while a replica can
 * route to its session, and passes over full members of share groups.
 * These run without a broker: cells are driven through their counters and
 * state bits as the home worker would drive them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "broker/flow.h"
#include "broker/router.h"

static const struct hash_key KEY = {UINT64_C(0x0123456789abcdef), UINT64_C(0xfedcba9876543210)};

static struct tern_bytes B(const char *s) {
	return (struct tern_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static uint32_t
refs(struct flow_cell *f)
{
	return atomic_load(&f->refs);
}

/* Full above max_queued_messages, drained at half of it: publishers pause
 * over the high mark and go on at the low one. */
static void test_marks_have_hysteresis(void **state)
{
	(void)state;
	struct flow_cell *f = flow_cell_new(0, 10);
	assert_non_null(f);
	atomic_store(&f->state, FLOW_ONLINE);
	flow_add(f, 10);
	assert_false(flow_full(f)); /* at the mark, not over it */
	flow_add(f, 1);
	assert_true(flow_full(f));
	assert_false(flow_drained(f));
	flow_add(f, -3); /* 8: below the high mark, above the low one */
	assert_false(flow_full(f));
	assert_false(flow_drained(f));
	flow_add(f, -3); /* 5 */
	assert_true(flow_drained(f));
	flow_cell_unref(f);
}

/* Offline and stalled sessions never hold a publisher back; a cell without
 * a mark (max_queued_messages 0) is never full; queued bytes over
 * max_queued_bytes are full whatever the count. */
static void test_offline_stalled_and_unbounded_cells_do_not_hold_back(void **state)
{
	(void)state;
	struct flow_cell *f = flow_cell_new(100, 10); /* what was queued counts */
	assert_false(flow_full(f));                   /* offline */
	assert_true(flow_drained(f));
	atomic_store(&f->state, FLOW_ONLINE);
	assert_true(flow_full(f));
	atomic_store(&f->state, FLOW_ONLINE | FLOW_STALLED);
	assert_false(flow_full(f));
	assert_true(flow_drained(f));
	assert_false(flow_takes(f)); /* a share group picks others */
	flow_cell_unref(f);

	struct flow_cell *u = flow_cell_new(0, 0);
	atomic_store(&u->state, FLOW_ONLINE);
	flow_add(u, 1000000);
	assert_false(flow_full(u));
	atomic_store(&u->state, FLOW_ONLINE | FLOW_BYTES);
	assert_true(flow_full(u));
	assert_false(flow_drained(u));
	flow_cell_unref(u);
}

/* A stalled session that drains to its low mark slows its publishers
 * again (flow_sub clears the stall; nobody waits, so no wake-up). */
static void test_draining_ends_a_stall(void **state)
{
	(void)state;
	struct flow_cell *f = flow_cell_new(20, 10);
	atomic_store(&f->state, FLOW_ONLINE | FLOW_STALLED);
	flow_sub(NULL, f, 10); /* 10: not yet at the low mark */
	assert_true(atomic_load(&f->state) & FLOW_STALLED);
	flow_sub(NULL, f, 5);
	assert_false(atomic_load(&f->state) & FLOW_STALLED);
	flow_add(f, 6);
	assert_true(flow_full(f));
	flow_cell_unref(f);
}

/* Every stored route holds a reference: replacing the options keeps one,
 * removing the route or freeing the router drops it. */
static void test_router_holds_a_reference_per_stored_route(void **state)
{
	(void)state;
	struct router *r = router_new(&KEY);
	struct flow_cell *f = flow_cell_new(0, 10);
	struct route rt = {.session = 7, .flow = f, .qos = 1};
	assert_int_equal(router_add(r, B("a/b"), (struct tern_bytes){0}, &rt), TERN_OK);
	assert_int_equal(refs(f), 2);
	rt.qos = 2; /* the same (filter, session): options replaced */
	assert_int_equal(router_add(r, B("a/b"), (struct tern_bytes){0}, &rt), TERN_OK);
	assert_int_equal(refs(f), 2);
	assert_int_equal(router_add(r, B("a/#"), (struct tern_bytes){0}, &rt), TERN_OK);
	assert_int_equal(router_add(r, B("x"), B("g"), &rt), TERN_OK);
	assert_int_equal(refs(f), 4);
	assert_int_equal(router_remove(r, B("a/b"), (struct tern_bytes){0}, 7), TERN_OK);
	assert_int_equal(refs(f), 3);
	router_free(r); /* drops the two left */
	assert_int_equal(refs(f), 1);
	flow_cell_unref(f);
}

/* A share group passes over a full member while another can take the
 * message; when all are full it prefers one that still drains (not slow),
 * and says so with ROUTE_ALL_FULL. */
static void test_share_group_passes_over_full_members(void **state)
{
	(void)state;
	struct router *r = router_new(&KEY);
	struct flow_cell *a = flow_cell_new(0, 10), *b = flow_cell_new(0, 10);
	atomic_store(&a->state, FLOW_ONLINE);
	atomic_store(&b->state, FLOW_ONLINE);
	struct route ra = {.session = 1, .flow = a, .qos = 1, .home = 0};
	struct route rb = {.session = 2, .flow = b, .qos = 1, .home = 0};
	assert_int_equal(router_add(r, B("t"), B("g"), &ra), TERN_OK);
	assert_int_equal(router_add(r, B("t"), B("g"), &rb), TERN_OK);
	struct route_matches m = {0};
	unsigned to_a = 0, to_b = 0;
	for (int i = 0; i < 10; i++) {
		assert_int_equal(router_match(r, (const uint8_t *)"t", 1, &m), TERN_OK);
		assert_int_equal(m.n, 1);
		assert_true(m.v[0].flags & ROUTE_SHARED);
		assert_false(m.v[0].flags & ROUTE_ALL_FULL);
		to_a += m.v[0].session == 1;
		to_b += m.v[0].session == 2;
	}
	assert_int_equal(to_a, 5); /* round-robin while both take */
	assert_int_equal(to_b, 5);

	flow_add(a, 11); /* a is full: b gets every message */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(router_match(r, (const uint8_t *)"t", 1, &m), TERN_OK);
		assert_int_equal(m.v[0].session, 2);
		assert_false(m.v[0].flags & ROUTE_ALL_FULL);
	}
	flow_add(b, 11); /* both full, a is slow: b, marked all full */
	atomic_store(&a->state, FLOW_ONLINE | FLOW_SLOW);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(router_match(r, (const uint8_t *)"t", 1, &m), TERN_OK);
		assert_int_equal(m.v[0].session, 2);
		assert_true(m.v[0].flags & ROUTE_ALL_FULL);
	}
	atomic_store(&b->state, FLOW_ONLINE | FLOW_STALLED); /* b drops: a is fine */
	assert_int_equal(router_match(r, (const uint8_t *)"t", 1, &m), TERN_OK);
	assert_int_equal(m.v[0].session, 1);
	assert_true(m.v[0].flags & ROUTE_ALL_FULL);
	free(m.v);
	router_free(r);
	flow_cell_unref(a);
	flow_cell_unref(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_marks_have_hysteresis),
	        cmocka_unit_test(test_offline_stalled_and_unbounded_cells_do_not_hold_back),
	        cmocka_unit_test(test_draining_ends_a_stall),
	        cmocka_unit_test(test_router_holds_a_reference_per_stored_route),
	        cmocka_unit_test(test_share_group_passes_over_full_members),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
