/*
 * alias_in.h - the inbound topic alias table of one v5 network connection:
 * the aliases the peer set in the PUBLISHes it sent us (alias_in.c explains
 * the rules and the storage). The broker keeps one per connection for what
 * clients publish, libtern one per connection for what the server sends.
 * The aliases ternd assigns itself are another table (broker/topic_alias.h).
 *
 * The table is a pointer: NULL is the empty table (nothing allocated, so a
 * connection that never uses aliases holds nothing). The bound is passed to
 * each call, as it is a property of the connection (the Topic Alias Maximum
 * the receiver announced), not of the table.
 */
#ifndef TERN_UTIL_ALIAS_IN_H
#define TERN_UTIL_ALIAS_IN_H

#include <stdint.h>

#include "tern/codec.h"
#include "tern/error.h"

struct alias_in;

/*
 * The topic a PUBLISH with Topic Alias alias and Topic Name topic (empty or
 * not, as in the packet) stands for, on a connection whose receiver
 * announced Topic Alias Maximum max (0: none). On TERN_OK, *out is that
 * topic: the packet's own (topic is not empty: the alias now maps to it, a
 * copy is kept), or the one the alias maps to (topic is empty); the latter
 * points into the table and stays valid until the next call that changes
 * the table. Allocates the table on the first alias set (*t, NULL before).
 * Fails, leaving the table as it was, with:
 *   TERN_E_INVALID    alias is 0 or above max (reason 0x94 Topic Alias
 *                     invalid);
 *   TERN_E_NOT_FOUND  topic is empty and the alias maps to nothing (reason
 *                     0x82 Protocol Error);
 *   TERN_E_NOMEM      the copy could not be allocated.
 */
TERN_MUST_CHECK enum tern_err alias_in_resolve(struct alias_in **t, uint16_t max, uint16_t alias,
                                               struct tern_bytes topic, struct tern_bytes *out);

/* Forgets every alias (a new network connection starts with none) and
 * keeps the storage for the next connection's. t may be NULL. */
void alias_in_reset(struct alias_in *t);

/* Frees the table and sets *t to NULL. */
void alias_in_free(struct alias_in **t);

#endif
