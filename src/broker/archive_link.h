/*
 * archive_link.h - the broker's side of the archives (archive_link.c,
 * src/archive, docs/archive.md): made from the config's `archive` blocks,
 * fed from the publish path, stopped at shutdown. With no archive
 * configured, b->archives is NULL and every hook costs one test.
 */
#ifndef TERN_BROKER_ARCHIVE_LINK_H
#define TERN_BROKER_ARCHIVE_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"

struct broker;
struct buf;
struct msg;
struct store_loaded_archive;
struct worker;

/* Makes the archives of b->cfg and connects them (a sink URL or a
 * database that refuses the schema: logged with its file and line,
 * TERN_E_CONFIG), and each worker's chains. Before persist_open(), whose
 * loader gives them their spilled entries. Nothing to do: TERN_OK. */
TERN_MUST_CHECK enum tern_err archive_link_open(struct broker *b);

/* An entry the last run spilled (persist.c's loader): back into its
 * archive's queue. One of an archive no longer configured stays in the
 * store (logged). Takes the reference of a->msg. */
TERN_MUST_CHECK enum tern_err archive_link_restore(struct broker *b,
                                                   const struct store_loaded_archive *a);

/* Starts the archives' threads, after the store is loaded. */
TERN_MUST_CHECK enum tern_err archive_link_start(struct broker *b);

/*
 * m was accepted from client cid / user (has_user false: none) and routed
 * (session_publish()): each archive that wants it gets an entry, spilled
 * into this iteration's store batch (the session module's, passed as
 * batch; NULL: memory only) when m is QoS >= 1, so that it is durable with
 * the message before the acknowledgement. The entries wait in w's chains
 * until archive_link_flush().
 */
void archive_link_publish(struct worker *w, struct msg *m, const uint8_t *cid, size_t cid_len,
                          const uint8_t *user, size_t user_len, bool has_user);

/* Hands w's chains to the archives' threads: after persist_submit(), so
 * the store has the batch with their rows before an archive can ask it to
 * delete them. */
void archive_link_flush(struct worker *w);

/* Stops the archives (their queues written, or left in the store) once
 * the workers stopped, before the store closes. */
void archive_link_stop(struct broker *b);

/* Frees the archives and the workers' chains. */
void archive_link_free(struct broker *b);

/* /metrics lines of every archive into o; false when out of memory. */
bool archive_link_metrics(struct broker *b, struct buf *o);

/* $SYS: publishes every archive's counters through pub(w, topic, value). */
void archive_link_sys(struct worker *w,
                      void (*pub)(struct worker *w, const char *topic, const char *value));

#endif
