/*
 * sqlite.c - the SQLite back-end of the store (docs/storage.md has the
 * schema for users who open the file with the sqlite3 shell).
 *
 * The database runs in WAL mode with an exclusive lock, so a second ternd
 * pointed at the same file refuses to start instead of corrupting it.
 * Every statement is prepared once at open. A group of batches is one
 * transaction; storage_sync picks the synchronous level (FULL: fsync at
 * every commit; NORMAL: the WAL is fsynced at checkpoints only, which
 * survives a crash of the process but not of the machine).
 *
 * Rows that depend on a session (subscriptions, deliveries, inbound QoS 2
 * ids) are inserted only if the session is stored, which is how sessions
 * that end at disconnect stay out of the file without the publisher having
 * to know which subscribers are persistent. A message row lives while a
 * delivery, a retained entry or a will refers to it: each operation that
 * drops a reference checks the message, and a sweep after session
 * deletions catches what cascaded away.
 *
 * The schema is versioned with PRAGMA user_version and an application id;
 * a file that is not ours or is newer than this build is refused, never
 * rewritten.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/batch.h"
#include "tern/codec.h"
#include "util/clock.h"

#define APP_ID         0x7465726e /* "tern" */
#define SCHEMA_VERSION 3

static const char SCHEMA_V1[] =
        "CREATE TABLE sessions ("
        " id INTEGER PRIMARY KEY,"
        " client_id TEXT NOT NULL UNIQUE,"
        " protocol INTEGER NOT NULL,"
        " expiry INTEGER NOT NULL,"
        " disconnected_at INTEGER NOT NULL,"
        " will_message INTEGER,"
        " will_at INTEGER);"
        "CREATE INDEX sessions_will ON sessions(will_message) WHERE will_message IS NOT NULL;"
        "CREATE TABLE subscriptions ("
        " session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
        " filter TEXT NOT NULL,"
        " qos INTEGER NOT NULL,"
        " no_local INTEGER NOT NULL,"
        " retain_as_published INTEGER NOT NULL,"
        " retain_handling INTEGER NOT NULL,"
        " subscription_id INTEGER NOT NULL,"
        " PRIMARY KEY (session_id, filter)) WITHOUT ROWID;"
        "CREATE TABLE messages ("
        " id INTEGER PRIMARY KEY,"
        " topic TEXT NOT NULL,"
        " payload BLOB NOT NULL,"
        " qos INTEGER NOT NULL,"
        " retain INTEGER NOT NULL,"
        " expire_at INTEGER,"
        " payload_format INTEGER,"
        " content_type TEXT,"
        " response_topic TEXT,"
        " correlation_data BLOB,"
        " user_properties BLOB);"
        "CREATE TABLE retained ("
        " topic TEXT PRIMARY KEY,"
        " message_id INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE INDEX retained_message ON retained(message_id);"
        "CREATE TABLE deliveries ("
        " session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
        " message_id INTEGER NOT NULL,"
        " qos INTEGER NOT NULL,"
        " retain INTEGER NOT NULL,"
        " packet_id INTEGER NOT NULL,"
        " state INTEGER NOT NULL,"
        " subscription_ids BLOB,"
        " PRIMARY KEY (session_id, message_id)) WITHOUT ROWID;"
        "CREATE INDEX deliveries_message ON deliveries(message_id);"
        "CREATE TABLE inbound_qos2 ("
        " session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
        " packet_id INTEGER NOT NULL,"
        " PRIMARY KEY (session_id, packet_id)) WITHOUT ROWID;";

/* Version 2: messages waiting for an archive's database (src/archive), so
 * that a restart loses none that was acknowledged. */
static const char SCHEMA_V2[] = "CREATE TABLE archive_queue ("
                                " archive TEXT NOT NULL,"
                                " boot INTEGER NOT NULL,"
                                " seq INTEGER NOT NULL,"
                                " message_id INTEGER NOT NULL,"
                                " received_at INTEGER NOT NULL,"
                                " client_id TEXT NOT NULL,"
                                " username TEXT,"
                                " PRIMARY KEY (archive, boot, seq)) WITHOUT ROWID;"
                                "CREATE INDEX archive_queue_message ON archive_queue(message_id);";

/* The publisher of each retained message (check_retain_source), NULL
 * where not known: rows of version 2 and the broker's own messages. */
static const char SCHEMA_V3[] = "ALTER TABLE retained ADD COLUMN src_client TEXT;"
                                "ALTER TABLE retained ADD COLUMN src_user TEXT;"
                                "ALTER TABLE retained ADD COLUMN src_listener INTEGER;";

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SESSION_PUT,
	ST_SESSION_DEL,
	ST_SUB_PUT,
	ST_SUB_DEL,
	ST_MSG_PUT,
	ST_RETAIN_OLD,
	ST_RETAIN_PUT,
	ST_RETAIN_DEL,
	ST_DELIVERY_PUT,
	ST_DELIVERY_STATE,
	ST_DELIVERY_DEL,
	ST_QOS2_PUT,
	ST_QOS2_DEL,
	ST_WILL_OLD,
	ST_WILL_PUT,
	ST_ARCHIVE_PUT,
	ST_ARCHIVE_DEL,
	ST_MSG_GC,
	ST_MSG_SWEEP,
	ST_COUNT
};

static const char *const SQL[ST_COUNT] = {
        [ST_BEGIN] = "BEGIN IMMEDIATE",
        [ST_COMMIT] = "COMMIT",
        [ST_ROLLBACK] = "ROLLBACK",
        [ST_SESSION_PUT] = "INSERT INTO sessions(id, client_id, protocol, expiry, disconnected_at)"
                           " VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(id) DO UPDATE SET"
                           " protocol = excluded.protocol, expiry = excluded.expiry,"
                           " disconnected_at = excluded.disconnected_at",
        [ST_SESSION_DEL] = "DELETE FROM sessions WHERE id = ?1",
        [ST_SUB_PUT] = "INSERT OR REPLACE INTO subscriptions SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7"
                       " WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ?1)",
        [ST_SUB_DEL] = "DELETE FROM subscriptions WHERE session_id = ?1 AND filter = ?2",
        [ST_MSG_PUT] = "INSERT OR IGNORE INTO messages VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
                       " ?10, ?11)",
        [ST_RETAIN_OLD] = "SELECT message_id FROM retained WHERE topic = ?1",
        [ST_RETAIN_PUT] = "INSERT OR REPLACE INTO retained VALUES(?1, ?2, ?3, ?4, ?5)",
        [ST_RETAIN_DEL] = "DELETE FROM retained WHERE topic = ?1",
        [ST_DELIVERY_PUT] = "INSERT OR REPLACE INTO deliveries SELECT ?1, ?2, ?3, ?4, 0, 0, ?5"
                            " WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ?1)",
        [ST_DELIVERY_STATE] = "UPDATE deliveries SET packet_id = ?3, state = ?4"
                              " WHERE session_id = ?1 AND message_id = ?2",
        [ST_DELIVERY_DEL] = "DELETE FROM deliveries WHERE session_id = ?1 AND message_id = ?2",
        [ST_QOS2_PUT] = "INSERT OR IGNORE INTO inbound_qos2 SELECT ?1, ?2"
                        " WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ?1)",
        [ST_QOS2_DEL] = "DELETE FROM inbound_qos2 WHERE session_id = ?1 AND packet_id = ?2",
        [ST_WILL_OLD] = "SELECT will_message FROM sessions WHERE id = ?1",
        [ST_WILL_PUT] = "UPDATE sessions SET will_message = ?2, will_at = ?3 WHERE id = ?1",
        [ST_ARCHIVE_PUT] = "INSERT OR IGNORE INTO archive_queue VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        [ST_ARCHIVE_DEL] =
                "DELETE FROM archive_queue WHERE archive = ?1 AND boot = ?2 AND seq = ?3",
        [ST_MSG_GC] = "DELETE FROM messages WHERE id = ?1"
                      " AND NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id = ?1)"
                      " AND NOT EXISTS (SELECT 1 FROM retained WHERE message_id = ?1)"
                      " AND NOT EXISTS (SELECT 1 FROM sessions WHERE will_message = ?1)"
                      " AND NOT EXISTS (SELECT 1 FROM archive_queue WHERE message_id = ?1)",
        [ST_MSG_SWEEP] =
                "DELETE FROM messages WHERE"
                " NOT EXISTS (SELECT 1 FROM deliveries WHERE message_id = messages.id)"
                " AND NOT EXISTS (SELECT 1 FROM retained WHERE message_id = messages.id)"
                " AND NOT EXISTS (SELECT 1 FROM sessions WHERE will_message = messages.id)"
                " AND NOT EXISTS (SELECT 1 FROM archive_queue WHERE message_id = messages.id)",
};

struct store_backend {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	char path[512];
};

static TERN_MUST_CHECK enum tern_err fail(struct store_backend *be, char *err, size_t errlen,
                                          const char *what)
{
	snprintf(err, errlen, "%s: %s: %s", be->path, what, be->db ? sqlite3_errmsg(be->db) : "");
	return TERN_E_SYS;
}

static void be_close(struct store_backend *be)
{
	if (!be)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(be->st[i]);
	sqlite3_close(be->db);
	free(be);
}

/* Runs a statement without results; returns the SQLite code. */
static int exec(struct store_backend *be, const char *sql)
{
	return sqlite3_exec(be->db, sql, NULL, NULL, NULL);
}

static int pragma_int(struct store_backend *be, const char *sql, int64_t *out)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(be->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

static TERN_MUST_CHECK enum tern_err check_and_migrate(struct store_backend *be, char *err,
                                                       size_t errlen)
{
	int64_t app = 0, version = 0, tables = 0;
	if (pragma_int(be, "PRAGMA application_id", &app) != SQLITE_OK ||
	    pragma_int(be, "PRAGMA user_version", &version) != SQLITE_OK ||
	    pragma_int(be, "SELECT count(*) FROM sqlite_master", &tables) != SQLITE_OK)
		return fail(be, err, errlen, "cannot read the database (is it a SQLite file?)");
	if (tables == 0 && app == 0 && version == 0) {
		/* A new, empty file: create the schema. */
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; PRAGMA user_version = %d;",
		         APP_ID, SCHEMA_VERSION);
		if (exec(be, "BEGIN") != SQLITE_OK || exec(be, SCHEMA_V1) != SQLITE_OK ||
		    exec(be, SCHEMA_V2) != SQLITE_OK || exec(be, SCHEMA_V3) != SQLITE_OK ||
		    exec(be, sql) != SQLITE_OK || exec(be, "COMMIT") != SQLITE_OK)
			return fail(be, err, errlen, "cannot create the schema");
		return TERN_OK;
	}
	if (app != APP_ID) {
		snprintf(err, errlen,
		         "%s: not a tern database (application id %lld); refusing to touch it",
		         be->path, (long long)app);
		return TERN_E_CONFIG;
	}
	if (version > SCHEMA_VERSION) {
		snprintf(err, errlen,
		         "%s: schema version %lld is newer than this ternd understands (%d); "
		         "use a newer ternd",
		         be->path, (long long)version, SCHEMA_VERSION);
		return TERN_E_CONFIG;
	}
	if (version < 1) {
		snprintf(err, errlen, "%s: schema version %lld is unknown", be->path,
		         (long long)version);
		return TERN_E_CONFIG;
	}
	/* Migrations from older versions, one step each, inside a
	 * transaction. Version 1 is the first. */
	if (version == 1) {
		if (exec(be, "BEGIN") != SQLITE_OK || exec(be, SCHEMA_V2) != SQLITE_OK ||
		    exec(be, "PRAGMA user_version = 2") != SQLITE_OK ||
		    exec(be, "COMMIT") != SQLITE_OK) {
			exec(be, "ROLLBACK");
			return fail(be, err, errlen, "cannot upgrade the schema to version 2");
		}
		version = 2;
	}
	if (version == 2) {
		if (exec(be, "BEGIN") != SQLITE_OK || exec(be, SCHEMA_V3) != SQLITE_OK ||
		    exec(be, "PRAGMA user_version = 3") != SQLITE_OK ||
		    exec(be, "COMMIT") != SQLITE_OK) {
			exec(be, "ROLLBACK");
			return fail(be, err, errlen, "cannot upgrade the schema to version 3");
		}
	}
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err
be_open(struct store_backend **out, const struct store_config *cfg, char *err, size_t errlen)
{
	struct store_backend *be = calloc(1, sizeof(*be));
	if (!be)
		return TERN_E_NOMEM;
	snprintf(be->path, sizeof(be->path), "%s", cfg->path);
	int rc = sqlite3_open_v2(cfg->path, &be->db,
	                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                         NULL);
	if (rc != SQLITE_OK) {
		enum tern_err e = fail(be, err, errlen, "cannot open the database");
		be_close(be);
		return e;
	}
	sqlite3_busy_timeout(be->db, 0);
	const char *sync = cfg->sync == STORE_SYNC_FULL     ? "PRAGMA synchronous = FULL"
	                   : cfg->sync == STORE_SYNC_NORMAL ? "PRAGMA synchronous = NORMAL"
	                                                    : "PRAGMA synchronous = OFF";
	/* The exclusive lock is taken by the first write below and kept. */
	if (exec(be, "PRAGMA locking_mode = EXCLUSIVE") != SQLITE_OK) {
		enum tern_err e = fail(be, err, errlen, "cannot set the locking mode");
		be_close(be);
		return e;
	}
	int64_t ok = 0;
	sqlite3_stmt *qc = NULL;
	rc = sqlite3_prepare_v2(be->db, "PRAGMA quick_check", -1, &qc, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(qc);
	if (rc == SQLITE_ROW) {
		const unsigned char *res = sqlite3_column_text(qc, 0);
		ok = res && strcmp((const char *)res, "ok") == 0;
	}
	if (!ok) {
		enum tern_err e;
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
			e = fail(be, err, errlen, "the database is in use by another process");
		else if (rc == SQLITE_ROW)
			e = fail(be, err, errlen, "the database is corrupt (quick_check failed)");
		else
			e = fail(be, err, errlen, "cannot read the database");
		sqlite3_finalize(qc);
		be_close(be);
		return e;
	}
	sqlite3_finalize(qc);
	enum tern_err e = check_and_migrate(be, err, errlen);
	if (e) {
		be_close(be);
		return e;
	}
	int64_t mode = 0;
	(void)mode;
	if (exec(be, "PRAGMA journal_mode = WAL") != SQLITE_OK || exec(be, sync) != SQLITE_OK ||
	    exec(be, "PRAGMA foreign_keys = ON") != SQLITE_OK) {
		e = fail(be, err, errlen, "cannot configure the database");
		be_close(be);
		return e;
	}
	/* Take the exclusive lock now, so that a second broker fails here. */
	if (exec(be, "BEGIN IMMEDIATE") != SQLITE_OK || exec(be, "COMMIT") != SQLITE_OK) {
		e = fail(be, err, errlen, "the database is in use by another process");
		be_close(be);
		return e;
	}
	for (int i = 0; i < ST_COUNT; i++) {
		if (sqlite3_prepare_v3(be->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &be->st[i],
		                       NULL) != SQLITE_OK) {
			e = fail(be, err, errlen, "cannot prepare a statement");
			be_close(be);
			return e;
		}
	}
	*out = be;
	return TERN_OK;
}

/* Runs a prepared statement to completion and resets it. */
static int run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Reads one integer column of a one-row query; 0 when there is no row. */
static int64_t query_id(sqlite3_stmt *st)
{
	int64_t v = 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return v;
}

static int gc(struct store_backend *be, uint64_t msg_id)
{
	if (!msg_id)
		return SQLITE_OK;
	sqlite3_bind_int64(be->st[ST_MSG_GC], 1, (sqlite3_int64)msg_id);
	return run(be->st[ST_MSG_GC]);
}

static void bind_text(sqlite3_stmt *st, int i, const void *p, size_t len)
{
	sqlite3_bind_text(st, i, len ? p : "", (int)len, SQLITE_STATIC);
}

static void bind_opt_blob(sqlite3_stmt *st, int i, struct tern_bytes b, bool text)
{
	if (!b.data)
		sqlite3_bind_null(st, i);
	else if (text)
		sqlite3_bind_text(st, i, (const char *)b.data, (int)b.len, SQLITE_STATIC);
	else
		sqlite3_bind_blob(st, i, b.len ? (const void *)b.data : "", (int)b.len,
		                  SQLITE_STATIC);
}

/* The message's fields but its expiry, which is the operation's (see
 * store_msg_put). */
static int put_msg(struct store_backend *be, const struct store_op *op)
{
	const struct msg *m = op->msg;
	sqlite3_stmt *st = be->st[ST_MSG_PUT];
	sqlite3_bind_int64(st, 1, (sqlite3_int64)m->store_id);
	bind_text(st, 2, m->topic.data, m->topic.len);
	sqlite3_bind_blob(st, 3, m->payload.len ? (const void *)m->payload.data : "",
	                  (int)m->payload.len, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, m->qos);
	sqlite3_bind_int(st, 5, m->retain);
	if (op->when)
		sqlite3_bind_int64(st, 6, op->when);
	if (m->has_payload_format)
		sqlite3_bind_int(st, 7, m->payload_format);
	bind_opt_blob(st, 8, m->content_type.len ? m->content_type : (struct tern_bytes){0}, true);
	bind_opt_blob(st, 9, m->response_topic.len ? m->response_topic : (struct tern_bytes){0},
	              true);
	bind_opt_blob(st, 10, m->correlation_data, false);
	bind_opt_blob(st, 11, m->user_raw.len ? m->user_raw : (struct tern_bytes){0}, false);
	return run(st);
}

static int apply_op(struct store_backend *be, const struct store_batch *b,
                    const struct store_op *op, bool *sweep)
{
	sqlite3_stmt *st;
	const uint8_t *data = store_op_data(b, op);
	switch (op->kind) {
	case STORE_OP_SESSION_PUT:
		st = be->st[ST_SESSION_PUT];
		sqlite3_bind_int64(st, 1, (sqlite3_int64)op->session);
		bind_text(st, 2, data, op->len);
		sqlite3_bind_int(st, 3, op->u8a);
		sqlite3_bind_int64(st, 4, op->u32);
		sqlite3_bind_int64(st, 5, op->when);
		return run(st);
	case STORE_OP_SESSION_DEL:
		st = be->st[ST_SESSION_DEL];
		sqlite3_bind_int64(st, 1, (sqlite3_int64)op->session);
		*sweep = true;
		return run(st);
	case STORE_OP_SUB_PUT:
		st = be->st[ST_SUB_PUT];
		sqlite3_bind_int64(st, 1, (sqlite3_int64)op->session);
		bind_text(st, 2, data, op->len);
		sqlite3_bind_int(st, 3, op->u8a);
		sqlite3_bind_int(st, 4, (op->u8b & 1) != 0);
		sqlite3_bind_int(st, 5, (op->u8b & 2) != 0);
		sqlite3_bind_int(st, 6, op->u8c);
		sqlite3_bind_int64(st, 7, op->u32);
		return run(st);
	case STORE_OP_SUB_DEL:
		st = be->st[ST_SUB_DEL];
		sqlite3_bind_int64(st, 1, (sqlite3_int64)op->session);
		bind_text(st, 2, data, op->len);
		return run(st);
	case STORE_OP_MSG_PUT:
		return put_msg(be, op);
	case STORE_OP_RETAIN_PUT: {
		st = be->st[ST_RETAIN_OLD];
		bind_text(st, 1, data, op->u16);
		uint64_t old = (uint64_t)query_id(st);
		if (op->msg_id) {
			/* Data: topic (u16), then with a source (u8b) its
			 * client id (u32) and username (batch.c). */
			st = be->st[ST_RETAIN_PUT];
			bind_text(st, 1, data, op->u16);
			sqlite3_bind_int64(st, 2, (sqlite3_int64)op->msg_id);
			if (op->u8b) {
				const uint8_t *cid = data + op->u16;
				bind_text(st, 3, cid, op->u32);
				if (op->u8c)
					bind_text(st, 4, cid + op->u32,
					          op->len - op->u16 - op->u32);
				else
					sqlite3_bind_null(st, 4);
				sqlite3_bind_int(st, 5, op->u8a);
			} else {
				sqlite3_bind_null(st, 3);
				sqlite3_bind_null(st, 4);
				sqlite3_bind_null(st, 5);
			}
		} else {
			st = be->st[ST_RETAIN_DEL];
			bind_text(st, 1, data, op->u16);
		}
		int rc = run(st);
		return rc != SQLITE_OK || old == op->msg_id ? rc : gc(be, old);
	}
	case STORE_OP_DELIVERY_PUT:
		st = be->st[ST_DELIVERY_PUT];
		sqlite3_bind_int64(st, 1, (sqlite3_int64)op->session);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)op->msg_id);
		sqlite3_bind_int(st, 3, op->u8a);
		sqlite3_bind_int(st, 4, op->u8b);
		if (op->len)
			sqlite3_bind_blob(st, 5, data, (int)op->len, SQLITE_STATIC);
		return run(st);
	case STORE_OP_DELIVERY_STATE:
		st = be->st[ST_DELIVERY_STATE];
		sqlite3_bind_int64(st, 1, (sqlite3_int64)op->session);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)op->msg_id);
		sqlite3_bind_int(st, 3, op->u16);
		sqlite3_bind_int(st, 4, op->u8a);
		return run(st);
	case STORE_OP_DELIVERY_DEL: {
		st = be->st[ST_DELIVERY_DEL];
		sqlite3_bind_int64(st, 1, (sqlite3_int64)op->session);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)op->msg_id);
		int rc = run(st);
		return rc != SQLITE_OK ? rc : gc(be, op->msg_id);
	}
	case STORE_OP_QOS2_PUT:
	case STORE_OP_QOS2_DEL:
		st = be->st[op->kind == STORE_OP_QOS2_PUT ? ST_QOS2_PUT : ST_QOS2_DEL];
		sqlite3_bind_int64(st, 1, (sqlite3_int64)op->session);
		sqlite3_bind_int(st, 2, op->u16);
		return run(st);
	case STORE_OP_WILL_PUT: {
		st = be->st[ST_WILL_OLD];
		sqlite3_bind_int64(st, 1, (sqlite3_int64)op->session);
		uint64_t old = (uint64_t)query_id(st);
		st = be->st[ST_WILL_PUT];
		sqlite3_bind_int64(st, 1, (sqlite3_int64)op->session);
		if (op->msg_id) {
			sqlite3_bind_int64(st, 2, (sqlite3_int64)op->msg_id);
			sqlite3_bind_int64(st, 3, op->when);
		}
		int rc = run(st);
		return rc != SQLITE_OK || old == op->msg_id ? rc : gc(be, old);
	}
	case STORE_OP_ARCHIVE_PUT:
	case STORE_OP_ARCHIVE_DEL: {
		/* Data: boot id, name with its NUL, then (put) client id and
		 * username (batch.c). */
		uint64_t boot;
		memcpy(&boot, data, sizeof(boot));
		const uint8_t *p = data + sizeof(boot);
		st = be->st[op->kind == STORE_OP_ARCHIVE_PUT ? ST_ARCHIVE_PUT : ST_ARCHIVE_DEL];
		bind_text(st, 1, p, op->u16 - 1u);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)boot);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)op->session);
		if (op->kind == STORE_OP_ARCHIVE_DEL) {
			int rc = run(st);
			return rc != SQLITE_OK ? rc : gc(be, op->msg_id);
		}
		p += op->u16;
		size_t user_len = op->len - sizeof(boot) - op->u16 - op->u32;
		sqlite3_bind_int64(st, 4, (sqlite3_int64)op->msg_id);
		sqlite3_bind_int64(st, 5, op->when);
		bind_text(st, 6, p, op->u32);
		if (op->u8a)
			bind_text(st, 7, p + op->u32, user_len);
		return run(st);
	}
	}
	return SQLITE_MISUSE;
}

static TERN_MUST_CHECK enum tern_err be_apply(struct store_backend *be,
                                              struct store_batch *const *batches, size_t n)
{
	size_t ops = 0;
	for (size_t i = 0; i < n; i++)
		ops += batches[i]->n;
	if (ops == 0)
		return TERN_OK;
	if (run(be->st[ST_BEGIN]) != SQLITE_OK)
		return TERN_E_SYS;
	bool sweep = false;
	int rc = SQLITE_OK;
	for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
		for (size_t j = 0; j < batches[i]->n && rc == SQLITE_OK; j++)
			rc = apply_op(be, batches[i], &batches[i]->ops[j], &sweep);
	/* Messages stored for sessions that turned out not to be stored
	 * (they end at disconnect) are dropped again here. */
	for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
		for (size_t j = 0; j < batches[i]->n && rc == SQLITE_OK; j++)
			if (batches[i]->ops[j].kind == STORE_OP_MSG_PUT)
				rc = gc(be, batches[i]->ops[j].msg_id);
	if (rc == SQLITE_OK && sweep)
		rc = run(be->st[ST_MSG_SWEEP]);
	if (rc != SQLITE_OK || run(be->st[ST_COMMIT]) != SQLITE_OK) {
		run(be->st[ST_ROLLBACK]);
		return TERN_E_SYS;
	}
	return TERN_OK;
}

/* ---- checking what is loaded ----
 *
 * The file may have been edited by hand, damaged, or written by something
 * that is not ternd. Every value is checked against what ternd itself
 * writes before it reaches the broker: a NULL where ternd never writes one,
 * a wrong type, a number out of range, a topic or filter the codec would
 * refuse, a malformed property block. Such a row makes the load fail with
 * the table, the row and the reason, as a corrupt file does: nothing is
 * dropped silently, and nothing invalid reaches a session, the router or
 * the encoder (which trust what they are given). */

/* Wall-clock instants beyond this (the year ~287,000) are not ours; the bound
 * keeps the arithmetic on them (instant + expiry, instant - now) far from
 * int64 overflow. */
#define WALL_MAX (INT64_C(1) << 53)

/* Longest MQTT string or binary data. */
#define MQTT_STR_MAX 65535u

struct row_err {
	const char *why; /* NULL: the row is good */
};

static bool bad(struct row_err *re, const char *why)
{
	if (!re->why)
		re->why = why;
	return false;
}

/* An INTEGER column within [min, max]. */
static bool col_int(sqlite3_stmt *st, int col, int64_t min, int64_t max, int64_t *out,
                    struct row_err *re, const char *why)
{
	if (sqlite3_column_type(st, col) != SQLITE_INTEGER)
		return bad(re, why);
	int64_t v = sqlite3_column_int64(st, col);
	if (v < min || v > max)
		return bad(re, why);
	*out = v;
	return true;
}

/* A TEXT column of at most max bytes of valid UTF-8 (an MQTT string). */
static bool col_str(sqlite3_stmt *st, int col, size_t max, struct tern_bytes *out,
                    struct row_err *re, const char *why)
{
	if (sqlite3_column_type(st, col) != SQLITE_TEXT)
		return bad(re, why);
	const uint8_t *p = sqlite3_column_text(st, col);
	size_t len = (size_t)sqlite3_column_bytes(st, col);
	if (!p || len > max || !tern_utf8_valid(p, len))
		return bad(re, why);
	*out = (struct tern_bytes){p, (uint32_t)len};
	return true;
}

/* A BLOB (or TEXT) column of at most max bytes; an empty one points at ""
 * rather than NULL. */
static bool col_bin(sqlite3_stmt *st, int col, size_t max, struct tern_bytes *out,
                    struct row_err *re, const char *why)
{
	int type = sqlite3_column_type(st, col);
	if (type != SQLITE_BLOB && type != SQLITE_TEXT)
		return bad(re, why);
	const void *p = sqlite3_column_blob(st, col);
	size_t len = (size_t)sqlite3_column_bytes(st, col);
	if (len > max)
		return bad(re, why);
	*out = (struct tern_bytes){p && len ? p : (const uint8_t *)"", (uint32_t)len};
	return true;
}

/* True when raw[0..len) is a sequence of encoded user properties (0x26,
 * name, value), as ternd stores them. */
static bool user_props_ok(const uint8_t *raw, size_t len)
{
	size_t i = 0;
	while (i < len) {
		if (raw[i++] != TERN_PROP_USER_PROPERTY)
			return false;
		for (int k = 0; k < 2; k++) {
			if (len - i < 2)
				return false;
			size_t n = (size_t)raw[i] << 8 | raw[i + 1];
			i += 2;
			if (len - i < n || !tern_utf8_valid(raw + i, n))
				return false;
			i += n;
		}
	}
	return true;
}

/* Builds a message from the current row of st, whose columns from `col` on
 * are those of the messages table. Returns NULL when it expired, when the
 * row is invalid (re->why says why) or when out of memory; *expired tells
 * the first. */
static struct msg *row_msg(sqlite3_stmt *st, int col, bool *expired, struct row_err *re)
{
	*expired = false;
	struct tern_props props = {0};
	struct tern_bytes topic, payload;
	int64_t id, qos, retain, v;
	if (!col_int(st, col, 1, INT64_MAX, &id, re, "bad message id") ||
	    !col_str(st, col + 1, MQTT_STR_MAX, &topic, re, "bad message topic") ||
	    !col_bin(st, col + 2, TERN_VBI_MAX, &payload, re, "bad message payload") ||
	    !col_int(st, col + 3, 0, 2, &qos, re, "bad message qos") ||
	    !col_int(st, col + 4, 0, 1, &retain, re, "bad message retain flag"))
		return NULL;
	if (tern_topic_name_check(topic.data, topic.len) != TERN_OK) {
		bad(re, "message topic is not a valid topic name");
		return NULL;
	}
	if (sqlite3_column_type(st, col + 5) != SQLITE_NULL) {
		if (!col_int(st, col + 5, 0, WALL_MAX, &v, re, "bad message expiry time"))
			return NULL;
		int64_t left = v - wall_ms();
		if (left <= 0) {
			*expired = true;
			return NULL;
		}
		int64_t secs = (left + 999) / 1000;
		props.present |= TERN_PROP_BIT(TERN_PROP_MESSAGE_EXPIRY);
		props.message_expiry = secs > UINT32_MAX ? UINT32_MAX : (uint32_t)secs;
	}
	if (sqlite3_column_type(st, col + 6) != SQLITE_NULL) {
		/* Any byte: the codec passes on what the publisher sent. */
		if (!col_int(st, col + 6, 0, UINT8_MAX, &v, re, "bad message payload format"))
			return NULL;
		props.present |= TERN_PROP_BIT(TERN_PROP_PAYLOAD_FORMAT);
		props.payload_format = (uint8_t)v;
	}
	if (sqlite3_column_type(st, col + 7) != SQLITE_NULL) {
		if (!col_str(st, col + 7, MQTT_STR_MAX, &props.content_type, re,
		             "bad message content type"))
			return NULL;
		props.present |= TERN_PROP_BIT(TERN_PROP_CONTENT_TYPE);
	}
	if (sqlite3_column_type(st, col + 8) != SQLITE_NULL) {
		if (!col_str(st, col + 8, MQTT_STR_MAX, &props.response_topic, re,
		             "bad message response topic"))
			return NULL;
		if (tern_topic_name_check(props.response_topic.data, props.response_topic.len)) {
			bad(re, "message response topic is not a valid topic name");
			return NULL;
		}
		props.present |= TERN_PROP_BIT(TERN_PROP_RESPONSE_TOPIC);
	}
	if (sqlite3_column_type(st, col + 9) != SQLITE_NULL) {
		if (!col_bin(st, col + 9, MQTT_STR_MAX, &props.correlation_data, re,
		             "bad message correlation data"))
			return NULL;
		props.present |= TERN_PROP_BIT(TERN_PROP_CORRELATION_DATA);
	}
	if (sqlite3_column_type(st, col + 10) != SQLITE_NULL) {
		/* Checked, so that it is a valid property block for the codec's
		 * iterator. */
		if (!col_bin(st, col + 10, TERN_VBI_MAX, &props.raw, re,
		             "bad message user properties") ||
		    !user_props_ok(props.raw.data, props.raw.len)) {
			bad(re, "bad message user properties");
			return NULL;
		}
	}
	struct msg *m = msg_new(topic, payload, (uint8_t)qos, retain != 0, &props, 0, mono_ms());
	if (m)
		m->store_id = (uint64_t)id;
	return m;
}

#define MSG_COLS                                                                                   \
	"m.id, m.topic, m.payload, m.qos, m.retain, m.expire_at, m.payload_format,"                \
	" m.content_type, m.response_topic, m.correlation_data, m.user_properties"

/* A loader callback failed: says which and why (not SQLite's message,
 * which would be "not an error"). */
static TERN_MUST_CHECK enum tern_err loader_fail(struct store_backend *be, sqlite3_stmt *st,
                                                 char *err, size_t errlen, const char *what,
                                                 enum tern_err e)
{
	sqlite3_finalize(st);
	snprintf(err, errlen, "%s: %s: %s", be->path, what, tern_strerror(e));
	return e;
}

/* A row failed its checks (re->why): names the table and the row's key
 * (column 0 of st, when it is a number) and refuses the file. */
static TERN_MUST_CHECK enum tern_err row_fail(struct store_backend *be, sqlite3_stmt *st, char *err,
                                              size_t errlen, const char *table, const char *key,
                                              const char *why)
{
	if (sqlite3_column_type(st, 0) == SQLITE_INTEGER)
		snprintf(err, errlen,
		         "%s: table %s, row with %s %lld: %s; the file was not written "
		         "by ternd or is damaged",
		         be->path, table, key, (long long)sqlite3_column_int64(st, 0), why);
	else
		snprintf(err, errlen,
		         "%s: table %s, a row: %s; the file was not written by ternd "
		         "or is damaged",
		         be->path, table, why);
	sqlite3_finalize(st);
	return TERN_E_CONFIG;
}

/* The archive entries, with their messages read without expiry (an
 * expired message is still archived: it was acknowledged). */
static TERN_MUST_CHECK enum tern_err
load_archive(struct store_backend *be, const struct store_loader *ld, char *err, size_t errlen)
{
	if (!ld->archive)
		return TERN_OK;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(be->db,
	                       "SELECT a.archive, a.boot, a.seq, a.received_at, a.client_id,"
	                       " a.username, m.id, m.topic, m.payload, m.qos, m.retain, NULL,"
	                       " m.payload_format, m.content_type, m.response_topic,"
	                       " m.correlation_data, m.user_properties FROM archive_queue a"
	                       " JOIN messages m ON m.id = a.message_id"
	                       " ORDER BY a.archive, a.boot, a.seq",
	                       -1, &st, NULL) != SQLITE_OK)
		return fail(be, err, errlen, "cannot read the archive queue");
	enum tern_err e = TERN_OK;
	struct row_err re = {NULL};
	bool expired;
	while (!e && sqlite3_step(st) == SQLITE_ROW) {
		struct tern_bytes name, cid, user = {0};
		int64_t boot, seq, at;
		if (!col_str(st, 0, 255, &name, &re, "bad archive name") ||
		    !col_int(st, 1, INT64_MIN, INT64_MAX, &boot, &re, "bad boot id") ||
		    !col_int(st, 2, 1, INT64_MAX, &seq, &re, "bad sequence number") ||
		    !col_int(st, 3, 0, WALL_MAX, &at, &re, "bad reception time") ||
		    !col_str(st, 4, MQTT_STR_MAX, &cid, &re, "bad client id") ||
		    (sqlite3_column_type(st, 5) != SQLITE_NULL &&
		     !col_str(st, 5, MQTT_STR_MAX, &user, &re, "bad username")))
			return row_fail(be, st, err, errlen, "archive_queue", "archive", re.why);
		char nbuf[256];
		memcpy(nbuf, name.data, name.len);
		nbuf[name.len] = '\0';
		struct store_loaded_archive a = {
		        .name = nbuf,
		        .boot = (uint64_t)boot,
		        .seq = (uint64_t)seq,
		        .received_at = at,
		        .client_id = cid.data,
		        .client_id_len = cid.len,
		        .username = user.data,
		        .username_len = user.len,
		};
		a.msg = row_msg(st, 6, &expired, &re);
		if (re.why)
			return row_fail(be, st, err, errlen, "archive_queue", "archive", re.why);
		if (!a.msg)
			e = TERN_E_NOMEM;
		else
			e = ld->archive(ld->arg, &a);
	}
	if (e)
		return loader_fail(be, st, err, errlen, "cannot load the archive queue", e);
	sqlite3_finalize(st);
	return TERN_OK;
}

static TERN_MUST_CHECK enum tern_err be_load(struct store_backend *be,
                                             const struct store_loader *ld, uint64_t *max_id,
                                             char *err, size_t errlen)
{
	int64_t a = 0, b = 0;
	pragma_int(be, "SELECT coalesce(max(id), 0) FROM sessions", &a);
	pragma_int(be, "SELECT coalesce(max(id), 0) FROM messages", &b);
	/* Ids are checked to be positive below; a table with other ids
	 * fails to load, so these do not matter then. */
	int64_t top = a > b ? a : b;
	*max_id = top > 0 ? (uint64_t)top : 0;
	/* Expired messages go first, with what refers to them. */
	int64_t now = wall_ms();
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "BEGIN; DELETE FROM deliveries WHERE message_id IN (SELECT id FROM messages WHERE "
	         "expire_at <= %lld); DELETE FROM retained WHERE message_id IN (SELECT id FROM "
	         "messages WHERE expire_at <= %lld); COMMIT;",
	         (long long)now, (long long)now);
	if (exec(be, sql) != SQLITE_OK || run(be->st[ST_BEGIN]) != SQLITE_OK ||
	    run(be->st[ST_MSG_SWEEP]) != SQLITE_OK || run(be->st[ST_COMMIT]) != SQLITE_OK)
		return fail(be, err, errlen, "cannot remove expired messages");

	/* The schema's keys make these impossible; a file whose tables were
	 * re-created without them could still hold such rows, which the
	 * broker would turn into two sessions under one client id or two
	 * messages under one packet id. */
	static const char *const unique[][2] = {
	        {"SELECT 1 FROM sessions GROUP BY client_id HAVING count(*) > 1",
	         "two sessions have the same client id"},
	        {"SELECT 1 FROM subscriptions GROUP BY session_id, filter HAVING count(*) > 1",
	         "a session has the same subscription twice"},
	        {"SELECT 1 FROM deliveries GROUP BY session_id, message_id HAVING count(*) > 1",
	         "a message is queued twice for one session"},
	        {"SELECT 1 FROM deliveries WHERE state != 0 GROUP BY session_id, packet_id"
	         " HAVING count(*) > 1",
	         "two messages are in flight with the same packet id"},
	        {"SELECT 1 FROM inbound_qos2 GROUP BY session_id, packet_id HAVING count(*) > 1",
	         "an inbound QoS 2 packet id is stored twice"},
	};
	for (size_t i = 0; i < sizeof(unique) / sizeof(unique[0]); i++) {
		int64_t dup = 0;
		int rc = pragma_int(be, unique[i][0], &dup); /* no row: SQLITE_DONE */
		if (rc != SQLITE_OK && rc != SQLITE_DONE)
			return fail(be, err, errlen, "cannot read the tables");
		if (dup) {
			snprintf(err, errlen,
			         "%s: %s; the file was not written by ternd or is damaged",
			         be->path, unique[i][1]);
			return TERN_E_CONFIG;
		}
	}

	sqlite3_stmt *st = NULL;
	enum tern_err e = TERN_OK;
	bool expired;
	struct row_err re = {NULL};
	int64_t v[8];
	if (sqlite3_prepare_v2(be->db,
	                       "SELECT s.id, s.client_id, s.protocol, s.expiry, s.disconnected_at,"
	                       " s.will_at, " MSG_COLS " FROM sessions s"
	                       " LEFT JOIN messages m ON m.id = s.will_message",
	                       -1, &st, NULL) != SQLITE_OK)
		return fail(be, err, errlen, "cannot read sessions");
	while (!e && sqlite3_step(st) == SQLITE_ROW) {
		struct tern_bytes cid;
		if (!col_int(st, 0, 1, INT64_MAX, &v[0], &re, "bad id") ||
		    !col_str(st, 1, MQTT_STR_MAX, &cid, &re, "bad client id") ||
		    !col_int(st, 2, 3, 5, &v[1], &re, "bad protocol level") ||
		    !col_int(st, 3, 0, UINT32_MAX, &v[2], &re, "bad expiry") ||
		    !col_int(st, 4, 0, WALL_MAX, &v[3], &re, "bad disconnection time"))
			return row_fail(be, st, err, errlen, "sessions", "id", re.why);
		if (cid.len == 0)
			return row_fail(be, st, err, errlen, "sessions", "id", "empty client id");
		struct store_loaded_session s = {
		        .id = (uint64_t)v[0],
		        .client_id = cid.data,
		        .client_id_len = cid.len,
		        .version = (uint8_t)v[1],
		        .expiry = (uint32_t)v[2],
		        .disconnected_at = v[3],
		};
		if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
			if (!col_int(st, 5, 0, WALL_MAX, &v[4], &re, "bad will time"))
				return row_fail(be, st, err, errlen, "sessions", "id", re.why);
			s.will_at = v[4];
			s.will = row_msg(st, 6, &expired, &re);
			if (re.why)
				return row_fail(be, st, err, errlen, "sessions", "id", re.why);
			if (!s.will && !expired)
				e = TERN_E_NOMEM;
		}
		if (!e)
			e = ld->session(ld->arg, &s);
	}
	if (e)
		return loader_fail(be, st, err, errlen, "cannot load sessions", e);
	sqlite3_finalize(st);

	if (sqlite3_prepare_v2(be->db,
	                       "SELECT session_id, filter, qos, no_local, retain_as_published,"
	                       " retain_handling, subscription_id FROM subscriptions",
	                       -1, &st, NULL) != SQLITE_OK)
		return fail(be, err, errlen, "cannot read subscriptions");
	while (!e && sqlite3_step(st) == SQLITE_ROW) {
		struct tern_bytes f;
		if (!col_int(st, 0, 1, INT64_MAX, &v[0], &re, "bad session id") ||
		    !col_str(st, 1, MQTT_STR_MAX, &f, &re, "bad filter") ||
		    !col_int(st, 2, 0, 2, &v[1], &re, "bad qos") ||
		    !col_int(st, 3, 0, 1, &v[2], &re, "bad no_local") ||
		    !col_int(st, 4, 0, 1, &v[3], &re, "bad retain_as_published") ||
		    !col_int(st, 5, 0, 2, &v[4], &re, "bad retain_handling") ||
		    !col_int(st, 6, 0, TERN_SUB_ID_MAX, &v[5], &re, "bad subscription_id"))
			return row_fail(be, st, err, errlen, "subscriptions", "session_id", re.why);
		if (tern_topic_filter_check(f.data, f.len) != TERN_OK)
			return row_fail(be, st, err, errlen, "subscriptions", "session_id",
			                "filter is not a valid topic filter");
		uint8_t flags = (uint8_t)((v[2] ? 1 : 0) | (v[3] ? 2 : 0));
		e = ld->sub(ld->arg, (uint64_t)v[0], f.data, f.len, (uint8_t)v[1], flags,
		            (uint8_t)v[4], (uint32_t)v[5]);
	}
	if (e)
		return loader_fail(be, st, err, errlen, "cannot load subscriptions", e);
	sqlite3_finalize(st);

	if (sqlite3_prepare_v2(be->db,
	                       "SELECT r.src_client, r.src_user, r.src_listener, " MSG_COLS
	                       " FROM retained r JOIN messages m ON m.id = r.message_id",
	                       -1, &st, NULL) != SQLITE_OK)
		return fail(be, err, errlen, "cannot read retained messages");
	while (!e && sqlite3_step(st) == SQLITE_ROW) {
		struct msg *m = row_msg(st, 3, &expired, &re);
		if (re.why)
			return row_fail(be, st, err, errlen, "messages", "id", re.why);
		if (!m && !expired) {
			e = TERN_E_NOMEM;
		} else if (m) {
			struct store_retain_src src = {0};
			bool known = sqlite3_column_type(st, 0) == SQLITE_TEXT;
			if (known) {
				src.client_id = sqlite3_column_text(st, 0);
				src.client_id_len = (size_t)sqlite3_column_bytes(st, 0);
				src.has_user = sqlite3_column_type(st, 1) == SQLITE_TEXT;
				if (src.has_user) {
					src.username = sqlite3_column_text(st, 1);
					src.username_len = (size_t)sqlite3_column_bytes(st, 1);
				}
				src.listener = (uint8_t)sqlite3_column_int(st, 2);
			}
			e = ld->retained(ld->arg, m, known ? &src : NULL);
		}
	}
	if (e)
		return loader_fail(be, st, err, errlen, "cannot load retained messages", e);
	sqlite3_finalize(st);

	if (sqlite3_prepare_v2(be->db,
	                       "SELECT d.session_id, d.qos, d.retain, d.packet_id, d.state,"
	                       " d.subscription_ids, " MSG_COLS " FROM deliveries d"
	                       " JOIN messages m ON m.id = d.message_id"
	                       " ORDER BY d.session_id, d.message_id",
	                       -1, &st, NULL) != SQLITE_OK)
		return fail(be, err, errlen, "cannot read deliveries");
	while (!e && sqlite3_step(st) == SQLITE_ROW) {
		if (!col_int(st, 0, 1, INT64_MAX, &v[0], &re, "bad session id") ||
		    !col_int(st, 1, 0, 2, &v[1], &re, "bad qos") ||
		    !col_int(st, 2, 0, 1, &v[2], &re, "bad retain flag") ||
		    !col_int(st, 3, 0, 65535, &v[3], &re, "bad packet id") ||
		    !col_int(st, 4, STORE_D_QUEUED, STORE_D_PUBREL, &v[4], &re, "bad state"))
			return row_fail(be, st, err, errlen, "deliveries", "session_id", re.why);
		/* Only QoS 1 and 2 go in flight, with a packet id; only QoS 2
		 * waits for PUBCOMP. */
		if (v[4] != STORE_D_QUEUED && (v[1] == 0 || v[3] == 0))
			return row_fail(be, st, err, errlen, "deliveries", "session_id",
			                "in flight without QoS > 0 and a packet id");
		if (v[4] == STORE_D_PUBREL && v[1] != 2)
			return row_fail(be, st, err, errlen, "deliveries", "session_id",
			                "PUBREL state for a QoS 1 delivery");
		struct store_loaded_delivery d = {
		        .session = (uint64_t)v[0],
		        .qos = (uint8_t)v[1],
		        .retain = v[2] != 0,
		        .packet_id = (uint16_t)v[3],
		        .state = (enum store_dstate)v[4],
		};
		uint32_t idv[64];
		if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
			struct tern_bytes ids;
			if (!col_bin(st, 5, TERN_VBI_MAX, &ids, &re, "bad subscription ids") ||
			    ids.len % 4 != 0)
				return row_fail(be, st, err, errlen, "deliveries", "session_id",
				                "bad subscription ids");
			/* At most 64 are kept, as many as a PUBLISH carries in
			 * practice. */
			d.n_sub_ids = (uint16_t)(ids.len / 4 > 64 ? 64 : ids.len / 4);
			memcpy(idv, ids.data, (size_t)d.n_sub_ids * 4u);
			for (uint16_t i = 0; i < d.n_sub_ids; i++)
				if (idv[i] == 0 || idv[i] > TERN_SUB_ID_MAX)
					return row_fail(be, st, err, errlen, "deliveries",
					                "session_id", "bad subscription id");
		}
		d.sub_ids = idv;
		d.msg = row_msg(st, 6, &expired, &re);
		if (re.why)
			return row_fail(be, st, err, errlen, "deliveries", "session_id", re.why);
		if (!d.msg && !expired)
			e = TERN_E_NOMEM;
		else if (d.msg)
			e = ld->delivery(ld->arg, &d);
	}
	if (e)
		return loader_fail(be, st, err, errlen, "cannot load deliveries", e);
	sqlite3_finalize(st);

	if (sqlite3_prepare_v2(be->db, "SELECT session_id, packet_id FROM inbound_qos2", -1, &st,
	                       NULL) != SQLITE_OK)
		return fail(be, err, errlen, "cannot read QoS 2 ids");
	while (!e && sqlite3_step(st) == SQLITE_ROW) {
		if (!col_int(st, 0, 1, INT64_MAX, &v[0], &re, "bad session id") ||
		    !col_int(st, 1, 1, 65535, &v[1], &re, "bad packet id"))
			return row_fail(be, st, err, errlen, "inbound_qos2", "session_id", re.why);
		e = ld->qos2(ld->arg, (uint64_t)v[0], (uint16_t)v[1]);
	}
	if (e)
		return loader_fail(be, st, err, errlen, "cannot load QoS 2 ids", e);
	sqlite3_finalize(st);
	return load_archive(be, ld, err, errlen);
}

const struct store_ops store_sqlite_ops = {
        .name = "sqlite",
        .open = be_open,
        .load = be_load,
        .apply = be_apply,
        .close = be_close,
};
