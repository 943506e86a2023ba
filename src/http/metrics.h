/*
 * metrics.h - GET /metrics (metrics.c): the broker's counters in the
 * Prometheus text format, served by the HTTP listener (http.h).
 */
#ifndef TERN_HTTP_METRICS_H
#define TERN_HTTP_METRICS_H

#include "tern/error.h"

struct broker;
struct buf;

/* Writes the Prometheus text exposition of b into out; returns TERN_OK or
 * TERN_E_NOMEM. Any thread. */
TERN_MUST_CHECK enum tern_err metrics_render(struct broker *b, struct buf *out);

#endif
