/*
 * admin.h - what the admin API (src/http) asks a worker to do that belongs
 * to no other module's functions (admin.c). Runs on the worker's thread,
 * from an INBOX_CALL item (worker.h).
 */
#ifndef TERN_BROKER_ADMIN_H
#define TERN_BROKER_ADMIN_H

#include "tern/codec.h"
#include "tern/error.h"

struct worker;

/*
 * Clears the retained message of topic (a topic name, validated by the
 * caller), as a retained PUBLISH with an empty payload would
 * [MQTT-3.3.1-6], but without delivering anything to subscribers: from the
 * retained store, from the store's table (in w's batch) and from the
 * cluster's stream. TERN_E_NOT_FOUND when topic has no retained message,
 * TERN_E_NOMEM.
 */
TERN_MUST_CHECK enum tern_err admin_retain_clear(struct worker *w, struct tern_bytes topic);

#endif
