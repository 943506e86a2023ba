/*
 * mount.h - mosquitto's mount_point: a listener's topic prefix.
 *
 * A client of a listener with `mount_point P` lives under P: what it
 * publishes (its will too) goes to P + topic, what it subscribes to or
 * unsubscribes from is P + filter (after "$share/GROUP/" for a shared
 * subscription), and what it is sent has P taken off. The ACL reads the
 * whole topic, P included, as mosquitto's does. The broker's own sinks
 * (bridges) have no mount point.
 *
 * Joined topics are written into a scratch buffer of the worker (one per
 * worker, made on first use), valid until the next mount_join() on that
 * worker: every caller copies what it keeps (the message, the
 * subscription) before it joins again.
 */
#ifndef TERN_BROKER_MOUNT_H
#define TERN_BROKER_MOUNT_H

#include <stdbool.h>

#include "tern/codec.h"
#include "tern/error.h"

struct sink;
struct worker;

/* The mount point of the listener k's client came in on; NULL: none (and
 * always for the broker's own sinks). */
const char *mount_of(const struct worker *w, const struct sink *k);

/*
 * mount + in into *out (w's scratch buffer); with filter, a shared
 * subscription's "$share/GROUP/" stays in front. TERN_E_TOO_LARGE when the
 * result is longer than a topic may be (65535 bytes), TERN_E_NOMEM.
 */
TERN_MUST_CHECK enum tern_err mount_join(struct worker *w, const char *mount, struct tern_bytes in,
                                         bool filter, struct tern_bytes *out);

/* in without the leading mount; false when in does not start with it
 * (nothing is left to send then). */
bool mount_strip(const char *mount, struct tern_bytes in, struct tern_bytes *out);

/* Frees w's scratch buffer (worker teardown). */
void mount_worker_free(struct worker *w);

#endif
