/*
 * memory_limit.c - see memory_limit.h.
 */
#include "broker/memory_limit.h"

#include <malloc.h>
#include <stddef.h>

#include "broker/broker.h"
#include "util/log.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TERN_SANITIZER_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TERN_SANITIZER_HEAP 1
#endif
#endif

#ifdef TERN_SANITIZER_HEAP
/* The sanitizers' allocator interface (sanitizer/allocator_interface.h,
 * which not every compiler installation ships). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

uint64_t memory_in_use(void)
{
#ifdef TERN_SANITIZER_HEAP
	/* The sanitizer's allocator serves every malloc: glibc's arenas are
	 * empty. */
	return (uint64_t)__sanitizer_get_current_allocated_bytes();
#else
	/* Every arena's bytes in use, and the chunks given their own
	 * mapping (large ones). */
	struct mallinfo2 mi = mallinfo2();
	return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
#endif
}

void memory_limit_tick(struct broker *b)
{
	uint64_t limit = b->cfg.memory_limit;
	if (!limit)
		return;
	uint64_t used = memory_in_use();
	bool over = used > limit;
	bool was = atomic_exchange_explicit(&b->over_memory, over, memory_order_relaxed);
	if (over && !was)
		log_write(&b->log, LOG_TYPE_WARNING,
		          "Warning: the heap holds %llu bytes, over memory_limit %llu: incoming "
		          "messages are dropped and their clients disconnected, and new sessions "
		          "refused, until it is below.",
		          (unsigned long long)used, (unsigned long long)limit);
	else if (!over && was)
		log_write(&b->log, LOG_TYPE_NOTICE,
		          "The heap holds %llu bytes, below memory_limit %llu again.",
		          (unsigned long long)used, (unsigned long long)limit);
}
