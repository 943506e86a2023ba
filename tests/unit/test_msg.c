/*
 * test_msg.c - unit tests of util/msg.h's message pool: blocks are reused
 * once a message's last reference goes (on the owner's thread or another),
 * large messages bypass the pool, and a pool released while messages live
 * frees them as they go (the sanitizer build's leak check sees the rest).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "util/msg.h"

static struct msg *small(struct msg_pool *p, const char *payload)
{
	struct tern_bytes topic = {(const uint8_t *)"a/b", 3};
	struct tern_bytes pl = {(const uint8_t *)payload, (uint32_t)strlen(payload)};
	struct msg *m = msg_new_in(p, topic, pl, 1, false, NULL, 7, 0);
	assert_non_null(m);
	return m;
}

/* A message's block is the next message's once it was let go; the new
 * message's content is its own. */
static void test_block_is_reused(void **state)
{
	(void)state;
	struct msg_pool *p = msg_pool_new();
	assert_non_null(p);
	struct msg *a = small(p, "first");
	assert_ptr_equal(a->pool, p);
	void *block = a;
	msg_unref(a);
	struct msg *b = small(p, "second");
	assert_ptr_equal(b, block);
	assert_int_equal(b->payload.len, 6);
	assert_memory_equal(b->payload.data, "second", 6);
	assert_memory_equal(b->topic.data, "a/b", 3);
	assert_int_equal(b->origin, 7);
	/* A second reference keeps it: the block is not given back yet. */
	msg_ref(b);
	msg_unref(b);
	struct msg *c = small(p, "third");
	assert_ptr_not_equal(c, b);
	msg_unref(b);
	msg_unref(c);
	msg_pool_release(p);
}

/* A message larger than the largest block comes from malloc; one over
 * half of it takes a block of the largest class, reused for the next such
 * message, never for a small one. */
static void test_large_message_bypasses_the_pool(void **state)
{
	(void)state;
	struct msg_pool *p = msg_pool_new();
	static uint8_t big[MSG_POOL_BLOCK];
	struct msg *m = msg_new_in(p, (struct tern_bytes){(const uint8_t *)"t", 1},
	                           (struct tern_bytes){big, sizeof(big)}, 0, false, NULL, 0, 0);
	assert_non_null(m);
	assert_null(m->pool);
	msg_unref(m);
	static uint8_t mid[MSG_POOL_BLOCK / 2];
	struct msg *a = msg_new_in(p, (struct tern_bytes){(const uint8_t *)"t", 1},
	                           (struct tern_bytes){mid, sizeof(mid)}, 0, false, NULL, 0, 0);
	assert_non_null(a);
	assert_ptr_equal(a->pool, p);
	assert_int_equal(a->pool_class, MSG_POOL_CLASSES - 1);
	void *block = a;
	msg_unref(a);
	struct msg *small_one = small(p, "s");
	assert_ptr_not_equal(small_one, block); /* not from the other class */
	struct msg *b = msg_new_in(p, (struct tern_bytes){(const uint8_t *)"t", 1},
	                           (struct tern_bytes){mid, sizeof(mid)}, 0, false, NULL, 0, 0);
	assert_ptr_equal(b, block);
	msg_unref(b);
	msg_unref(small_one);
	msg_pool_release(p);
}

static void *unref_all(void *arg)
{
	struct msg **v = arg;
	for (int i = 0; i < 64; i++)
		msg_unref(v[i]);
	return NULL;
}

/* Blocks let go on another thread come back to the owner. */
static void test_blocks_come_back_from_another_thread(void **state)
{
	(void)state;
	struct msg_pool *p = msg_pool_new();
	struct msg *v[64];
	for (int i = 0; i < 64; i++)
		v[i] = small(p, "x");
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, unref_all, v), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	struct msg *m = small(p, "again");
	bool found = false;
	for (int i = 0; i < 64; i++)
		found |= (void *)m == (void *)v[i];
	assert_true(found);
	msg_unref(m);
	msg_pool_release(p);
}

/* A pool released while a message of it lives: the message stays whole and
 * is freed with its last reference, the pool with it. */
static void test_release_with_live_messages(void **state)
{
	(void)state;
	struct msg_pool *p = msg_pool_new();
	struct msg *m = small(p, "outlives");
	struct msg *spare = small(p, "spare");
	msg_unref(spare);
	msg_pool_release(p);
	assert_memory_equal(m->payload.data, "outlives", 8);
	msg_unref(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_block_is_reused),
	        cmocka_unit_test(test_large_message_bypasses_the_pool),
	        cmocka_unit_test(test_blocks_come_back_from_another_thread),
	        cmocka_unit_test(test_release_with_live_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
