/*
 * topic_rate.h - which topics are published most (topic_rate.c), for the
 * admin API's GET /api/v1/topics: a small table per worker of the topics
 * its clients publish to, with an estimate of each one's messages per
 * second.
 *
 * Only with an http_listener (otherwise w->topic_rates is NULL and the
 * publish path pays one test). The table has a fixed size, made once, so
 * counting allocates nothing; it keeps the heaviest topics (Space-Saving:
 * a topic not in a full table takes the place of the lightest one it may
 * go to), and sees one publish in TOPIC_RATE_SAMPLE, picked at random, so
 * its cost on the publish path is a random draw, and a hash and a lookup
 * for the sampled ones.
 */
#ifndef TERN_BROKER_TOPIC_RATE_H
#define TERN_BROKER_TOPIC_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/codec.h"
#include "tern/error.h"

struct hash_key;
struct topic_rates;

/* One publish in this many is counted (a power of two). */
#define TOPIC_RATE_SAMPLE 8u

/* Topic bytes a table entry keeps; a longer topic is kept cut there
 * (its full hash still tells it apart). */
#define TOPIC_RATE_KEEP 120u

/* A table for one worker, hashing under hk (the broker's key); NULL when
 * out of memory. Freed with topic_rates_free() (NULL is allowed). */
struct topic_rates *topic_rates_new(const struct hash_key *hk);
void topic_rates_free(struct topic_rates *t);

/* A publish to topic at now (monotonic ms), on the table's worker. */
void topic_rate_note(struct topic_rates *t, struct tern_bytes topic, uint64_t now);

/* One topic of the table as topic_rates_read() shows it. */
struct topic_rate_view {
	struct tern_bytes topic; /* points into the table: valid until it changes */
	bool cut;                /* longer than TOPIC_RATE_KEEP: only its start */
	double per_second;       /* estimated messages per second */
};

/* Fills out[0..max) with the table's topics, heaviest first; returns how
 * many. On the table's worker. */
size_t topic_rates_read(struct topic_rates *t, uint64_t now, struct topic_rate_view *out,
                        size_t max);

#endif
