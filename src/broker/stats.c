/*
 * stats.c - a counter summed over the workers, for the readers on other
 * threads ($SYS topics, /metrics): see stats.h.
 */
#include "broker/stats.h"

#include "broker/broker.h"
#include "broker/worker.h"

uint64_t stats_sum(const struct broker *b, enum stat_id id)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < b->n_workers; i++)
		sum += stat_get(&b->workers[i]->stats, id);
	return sum;
}
