/*
 * memory_limit.h - mosquitto's memory_limit: "the maximum number of heap
 * memory bytes that the broker will allocate". While the heap in use is
 * over it, an incoming PUBLISH is dropped and its client disconnected, and
 * a CONNECT that would make a new session is refused, as mosquitto does
 * when an allocation is denied; what ternd already holds (sessions, queues,
 * in-flight messages) goes on being delivered, so the heap comes down.
 *
 * mosquitto counts each of its own allocations; ternd reads the allocator's
 * count of bytes in use (glibc's mallinfo2(), or the sanitizer allocator's
 * in an ASan build), which includes what its libraries allocate (OpenSSL,
 * SQLite, libnats), every 200 ms on worker 0: over the limit by at most
 * what arrives in that time.
 */
#ifndef TERN_BROKER_MEMORY_LIMIT_H
#define TERN_BROKER_MEMORY_LIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct broker;

/* The heap's bytes in use now. */
uint64_t memory_in_use(void);

/* Worker 0's tick: compares the heap with memory_limit (when set), sets
 * b->over_memory and logs the start and end of each episode. */
void memory_limit_tick(struct broker *b);

#endif
