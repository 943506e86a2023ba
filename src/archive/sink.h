/*
 * sink.h - the databases an archive writes to, behind one ops table: a
 * file per technology (sink_sqlite.c, sink_pg.c, sink_mongo.c),
 * picked by the scheme of the archive_sink URL.
 *
 * A sink is driven by one thread at a time: the archive's own thread
 * (archive.c) in ternd, the main thread in `tern history`. It never sees
 * the broker: it gets records (record.h) to write in one batch, and gives
 * records back when read.
 *
 * The schema (docs/archive.md) is one table (a collection in MongoDB)
 * named after the archive, with an index on (topic, received_at) and a
 * unique index on the message key, which makes a batch written twice (the
 * database committed it, but the answer was lost) write nothing new.
 */
#ifndef TERN_ARCHIVE_SINK_H
#define TERN_ARCHIVE_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive/record.h"
#include "tern/error.h"

struct archive_db;

/* What to read back: records received at since_ms or later (UTC ms),
 * oldest first, whose topic starts with prefix (len 0: any; the caller
 * matches its filter exactly), at most limit of them (0: all). */
struct archive_query {
	int64_t since_ms;
	struct tern_bytes prefix;
	uint64_t limit;
};

/* Called for each record read; r and its bytes are valid during the call
 * only. A non-zero return stops the read and is returned by it. */
typedef enum tern_err (*archive_read_fn)(void *arg, const struct archive_record *r);

struct archive_sink_ops {
	const char *scheme; /* the URL's, before ':' */
	const char *alias;  /* another scheme of the same sink, or NULL */
	/* Checks the form of url (no I/O): TERN_E_CONFIG with the reason in
	 * err when it cannot be used. */
	TERN_MUST_CHECK enum tern_err (*check)(const char *url, char *err, size_t errlen);
	/* Connects to url and, when create is set, creates the table and
	 * indexes that are missing. TERN_E_CONFIG when the database refuses
	 * the schema (or the table exists with columns we cannot write) or
	 * cannot ever be opened as given: ternd does not start then; any
	 * other error (unreachable, refused login) is worth retrying. */
	TERN_MUST_CHECK enum tern_err (*open)(struct archive_db **out, const char *url,
	                                      const char *table, bool create, char *err,
	                                      size_t errlen);
	/* Writes recs[0..n) in one transaction; a record whose key is there
	 * already is skipped. On error nothing may have been written, or all
	 * of it: the caller reopens and writes the same batch again.
	 * TERN_E_TOO_LARGE: a record is more than this database can ever
	 * store (nothing written); the caller then writes the records one by
	 * one and drops the one that alone is too large. */
	TERN_MUST_CHECK enum tern_err (*write)(struct archive_db *db,
	                                       const struct archive_record *recs, size_t n,
	                                       char *err, size_t errlen);
	/* Reads what q asks for, calling fn(arg, record) for each. */
	TERN_MUST_CHECK enum tern_err (*read)(struct archive_db *db, const struct archive_query *q,
	                                      archive_read_fn fn, void *arg, char *err,
	                                      size_t errlen);
	/* Disconnects and frees db; NULL allowed. */
	void (*close)(struct archive_db *db);
};

/* The SQLite sink: sqlite:PATH (sink_sqlite.c). */
extern const struct archive_sink_ops archive_sqlite_ops;

/* The PostgreSQL sink: postgresql://... or postgres://... (sink_pg.c). */
extern const struct archive_sink_ops archive_pg_ops;

/* The MongoDB sink: mongodb://HOST[:PORT]/DB?... (sink_mongo.c). */
extern const struct archive_sink_ops archive_mongo_ops;

/* The sink of url's scheme; NULL (with the reason in err) when no sink
 * has it. */
const struct archive_sink_ops *archive_sink_find(const char *url, char *err, size_t errlen);

/* True when name can name a table and a collection as it is: [A-Za-z_]
 * then [A-Za-z0-9_], at most 63 bytes (PostgreSQL's limit). */
bool archive_name_ok(const char *name);

#endif
