/*
 * topic_alias.h - the outbound topic alias table of one v5 connection
 * (topic_alias.c explains the policy).
 */
#ifndef TERN_BROKER_TOPIC_ALIAS_H
#define TERN_BROKER_TOPIC_ALIAS_H

#include <stdbool.h>
#include <stdint.h>

#include "tern/codec.h"
#include "tern/error.h"

struct topic_alias;

/*
 * The alias to send topic with, for a connection whose bound is max (the
 * client's Topic Alias Maximum capped by max_topic_alias_broker). t may be
 * NULL (nothing assigned yet). *known is true when the client already maps
 * that alias to topic (send an empty topic name); otherwise the alias is one
 * to (re)assign (send the topic name too) and nothing is recorded until
 * topic_alias_set(), so a PUBLISH that is not sent leaves the table as the
 * client knows it. Returns 0 when max is 0 (no aliases).
 */
uint16_t topic_alias_pick(struct topic_alias *t, uint16_t max, struct tern_bytes topic,
                          bool *known);

/* Records that alias now maps to topic (a copy is kept), after the
 * PUBLISH that sets it was queued; allocates the table on first use.
 * TERN_E_NOMEM, or TERN_E_INVALID for an alias topic_alias_pick() did not
 * give. */
TERN_MUST_CHECK enum tern_err topic_alias_set(struct topic_alias **t, uint16_t max, uint16_t alias,
                                              struct tern_bytes topic);

/* Frees the table and sets *t to NULL. */
void topic_alias_free(struct topic_alias **t);

#endif
