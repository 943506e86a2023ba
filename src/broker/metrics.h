/*
 * metrics.h - the Prometheus endpoint (metrics.c): an HTTP listener on its
 * own thread that renders the workers' counters.
 */
#ifndef TERN_BROKER_METRICS_H
#define TERN_BROKER_METRICS_H

#include "tern/error.h"

struct broker;
struct buf;

/* Starts the HTTP endpoint of http_listener (its own thread), if one is
 * configured; stops and frees it. */
TERN_MUST_CHECK enum tern_err metrics_start(struct broker *b);
void metrics_stop(struct broker *b);

/* Writes the Prometheus text exposition of b into out; returns TERN_OK or
 * TERN_E_NOMEM. */
TERN_MUST_CHECK enum tern_err metrics_render(struct broker *b, struct buf *out);

#endif
