/*
 * config_archive.h - the archive directives (`archive NAME` blocks,
 * docs/archive.md): what an archive is configured with, and the parser of
 * those lines (config_archive.c).
 *
 * An `archive NAME` line opens an archive; archive_sink, archive_topic,
 * archive_qos, archive_batch and archive_queue after it belong to it, until
 * the next `archive`. Other directives stay global wherever they appear,
 * as with bridges. Kept in fixed arrays so struct config stays a plain
 * value.
 */
#ifndef TERN_BROKER_CONFIG_ARCHIVE_H
#define TERN_BROKER_CONFIG_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"

#define MAX_ARCHIVES         8
#define MAX_ARCHIVE_TOPICS   32
#define ARCHIVE_TOPIC_MAX    256
#define ARCHIVE_URL_MAX      1024
#define ARCHIVE_BATCH_N      500 /* archive_batch default: 500 messages */
#define ARCHIVE_BATCH_MS     50  /*   or 50 ms */
#define ARCHIVE_BATCH_N_MAX  10000
#define ARCHIVE_BATCH_MS_MAX 60000
#define ARCHIVE_QUEUE_N      100000      /* archive_queue default: messages */
#define ARCHIVE_QUEUE_BYTES  (64u << 20) /*   and 64 MiB */

struct archive_cfg {
	char name[64];
	char url[ARCHIVE_URL_MAX]; /* archive_sink; "": not given */
	char topics[MAX_ARCHIVE_TOPICS][ARCHIVE_TOPIC_MAX];
	size_t n_topics;
	uint8_t qos;       /* archive_qos, 0 */
	uint32_t batch_n;  /* archive_batch N */
	uint32_t batch_ms; /*   T */
	uint64_t queue_n;  /* archive_queue N */
	uint64_t queue_bytes;
	char where[300]; /* "FILE:LINE" of its `archive` line */
};

struct config_ctx;

/*
 * Applies one line (key and its words arg[0..n)) to the archives of
 * c->cfg. TERN_E_NOT_FOUND when key is no archive directive (the caller
 * calls it unknown), TERN_OK, or TERN_E_CONFIG with FILE:LINE and the
 * reason in c->err (a directive before any `archive`, a bad value, a
 * limit, a sink URL that cannot be parsed).
 */
TERN_MUST_CHECK enum tern_err config_archive_apply(struct config_ctx *c, const char *key,
                                                   const char *const *arg, int n);

/* Checks what only the whole block can tell (a sink and a topic in every
 * archive, unique names): TERN_E_CONFIG with "FILE:LINE: why" in err. */
TERN_MUST_CHECK enum tern_err config_archive_check(const struct archive_cfg *archives, size_t n,
                                                   char *err, size_t errlen);

#endif
