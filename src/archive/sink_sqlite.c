/*
 * sink_sqlite.c - the SQLite sink: archive_sink sqlite:PATH, the
 * zero-set-up choice (docs/archive.md has the schema).
 *
 * The file is the archive's own (never ternd's store file, which ternd
 * holds with an exclusive lock) and runs in WAL mode, so the sqlite3 shell
 * and `tern history` read it while ternd writes. A batch is one
 * transaction of INSERT OR IGNORE on the unique msg_key: a batch written
 * again after a failure adds nothing twice. A reader that holds the file
 * briefly is waited for (busy timeout) rather than failing the batch.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/sink.h"
#include "util/buf.h"

#define BUSY_MS 5000

/* Rows per INSERT of a full chunk of a batch. One statement per row spent
 * a fifth of the archive thread's instructions starting and ending
 * statements (and their cursors on the table and its three indexes); 32
 * rows of 13 parameters stay far below SQLite's variable limit. */
#define ROWS 32
#define COLS 13

enum { ST_INSERT, ST_INSERT_MANY, ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_N };

struct archive_db {
	sqlite3 *db;
	sqlite3_stmt *st[ST_N];
	char table[64];
	char path[512];
	struct buf json[ROWS]; /* the user properties of the rows being written */
};

/* sqlite:PATH, also written sqlite://PATH (sqlite:///abs/path). */
static const char *url_path(const char *url)
{
	const char *p = url + strlen("sqlite:");
	if (strncmp(p, "//", 2) == 0)
		p += 2;
	return p;
}

static enum tern_err check(const char *url, char *err, size_t errlen)
{
	if (strncmp(url, "sqlite:", 7) != 0 || !*url_path(url)) {
		snprintf(err, errlen, "'%s': expected sqlite:PATH", url);
		return TERN_E_CONFIG;
	}
	return TERN_OK;
}

static enum tern_err fail(struct archive_db *d, char *err, size_t errlen, const char *what,
                          enum tern_err e)
{
	snprintf(err, errlen, "%s: %s: %s", d->path, what, d->db ? sqlite3_errmsg(d->db) : "");
	return e;
}

static void db_close(struct archive_db *d)
{
	if (!d)
		return;
	for (int i = 0; i < ST_N; i++)
		sqlite3_finalize(d->st[i]);
	sqlite3_close(d->db);
	for (int i = 0; i < ROWS; i++)
		buf_free(&d->json[i]);
	free(d);
}

/* The INSERT of rows rows into table, NUL-terminated, into *out. */
static enum tern_err insert_sql(struct buf *out, const char *table, int rows)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
	                 "INSERT OR IGNORE INTO \"%s\"(msg_key, received_at, topic, payload, qos,"
	                 " retain, client_id, username, payload_format, content_type,"
	                 " correlation_data, response_topic, user_properties) VALUES",
	                 table);
	enum tern_err e = buf_append(out, head, (size_t)n, 0);
	for (int r = 0; r < rows && !e; r++) {
		char row[128];
		int p = r * COLS + 1;
		n = snprintf(row, sizeof(row),
		             "%s(?%d,?%d,?%d,?%d,?%d,?%d,?%d,?%d,?%d,?%d,?%d,?%d,?%d)",
		             r ? "," : "", p, p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, p + 7,
		             p + 8, p + 9, p + 10, p + 11, p + 12);
		e = buf_append(out, row, (size_t)n, 0);
	}
	if (!e)
		e = buf_append(out, "", 1, 0);
	return e;
}

static enum tern_err db_open(struct archive_db **out, const char *url, const char *table,
                             bool create, char *err, size_t errlen)
{
	if (check(url, err, errlen) || !archive_name_ok(table)) {
		if (!archive_name_ok(table))
			snprintf(err, errlen, "'%s' cannot name a table", table);
		return TERN_E_CONFIG;
	}
	struct archive_db *d = calloc(1, sizeof(*d));
	if (!d)
		return TERN_E_NOMEM;
	snprintf(d->path, sizeof(d->path), "%s", url_path(url));
	snprintf(d->table, sizeof(d->table), "%s", table);
	int flags = create ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
	/* A file that cannot be opened stays so until someone fixes the
	 * path or its rights: a configuration error, not one to retry. */
	if (sqlite3_open_v2(d->path, &d->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		enum tern_err e = fail(d, err, errlen, "cannot open", TERN_E_CONFIG);
		db_close(d);
		return e;
	}
	sqlite3_busy_timeout(d->db, BUSY_MS);
	char sql[2048];
	if (create) {
		snprintf(sql, sizeof(sql),
		         "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
		         "CREATE TABLE IF NOT EXISTS \"%s\" ("
		         " id INTEGER PRIMARY KEY,"
		         " msg_key TEXT NOT NULL UNIQUE,"
		         " received_at INTEGER NOT NULL,"
		         " topic TEXT NOT NULL,"
		         " payload BLOB NOT NULL,"
		         " qos INTEGER NOT NULL,"
		         " retain INTEGER NOT NULL,"
		         " client_id TEXT NOT NULL,"
		         " username TEXT,"
		         " payload_format INTEGER,"
		         " content_type TEXT,"
		         " correlation_data BLOB,"
		         " response_topic TEXT,"
		         " user_properties TEXT);"
		         "CREATE INDEX IF NOT EXISTS \"%s_topic_time\" ON \"%s\"(topic, "
		         "received_at);"
		         "CREATE INDEX IF NOT EXISTS \"%s_time\" ON \"%s\"(received_at);",
		         table, table, table, table, table);
		if (sqlite3_exec(d->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
			enum tern_err e = fail(d, err, errlen, "cannot create the archive table",
			                       TERN_E_CONFIG);
			db_close(d);
			return e;
		}
		/* A table of that name made by someone else shows here: the
		 * statement names every column we write. */
		struct buf one = {0}, many = {0};
		enum tern_err be = insert_sql(&one, table, 1);
		if (!be)
			be = insert_sql(&many, table, ROWS);
		if (be)
			snprintf(err, errlen, "%s: out of memory", d->path);
		static const char *const fixed[] = {[ST_BEGIN] = "BEGIN IMMEDIATE",
		                                    [ST_COMMIT] = "COMMIT",
		                                    [ST_ROLLBACK] = "ROLLBACK"};
		for (int i = 0; i < ST_N && !be; i++) {
			const char *text = i == ST_INSERT        ? (const char *)one.data
			                   : i == ST_INSERT_MANY ? (const char *)many.data
			                                         : fixed[i];
			if (sqlite3_prepare_v3(d->db, text, -1, SQLITE_PREPARE_PERSISTENT,
			                       &d->st[i], NULL) != SQLITE_OK)
				be = fail(d, err, errlen, "the archive table has another schema",
				          TERN_E_CONFIG);
		}
		buf_free(&one);
		buf_free(&many);
		if (be) {
			db_close(d);
			return be;
		}
	}
	*out = d;
	return TERN_OK;
}

static void bind_opt_text(sqlite3_stmt *st, int i, bool has, struct tern_bytes b)
{
	if (has)
		sqlite3_bind_text(st, i, b.len ? (const char *)b.data : "", (int)b.len,
		                  SQLITE_STATIC);
}

static void bind_blob(sqlite3_stmt *st, int i, struct tern_bytes b)
{
	sqlite3_bind_blob(st, i, b.len ? (const void *)b.data : "", (int)b.len, SQLITE_STATIC);
}

/* Binds record r as the row whose first parameter is p (1-based), its
 * user properties' JSON built in *json, which must live until the step. */
static enum tern_err bind_row(sqlite3_stmt *st, int p, struct buf *json,
                              const struct archive_record *r)
{
	json->len = json->off = 0;
	enum tern_err e = archive_user_json(json, r->user_raw);
	if (e)
		return e;
	sqlite3_bind_text(st, p, r->key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, p + 1, r->received_at);
	bind_opt_text(st, p + 2, true, r->topic);
	bind_blob(st, p + 3, r->payload);
	sqlite3_bind_int(st, p + 4, r->qos);
	sqlite3_bind_int(st, p + 5, r->retain);
	bind_opt_text(st, p + 6, true, r->client_id);
	bind_opt_text(st, p + 7, r->has_username, r->username);
	if (r->has_payload_format)
		sqlite3_bind_int(st, p + 8, r->payload_format);
	bind_opt_text(st, p + 9, r->has_content_type, r->content_type);
	if (r->has_correlation_data)
		bind_blob(st, p + 10, r->correlation_data);
	bind_opt_text(st, p + 11, r->has_response_topic, r->response_topic);
	if (json->len)
		sqlite3_bind_text(st, p + 12, (const char *)json->data, (int)json->len,
		                  SQLITE_STATIC);
	return TERN_OK;
}

/* Inserts n records (1 or ROWS) with one statement. */
static enum tern_err insert(struct archive_db *d, const struct archive_record *r, size_t n)
{
	sqlite3_stmt *st = d->st[n == 1 ? ST_INSERT : ST_INSERT_MANY];
	enum tern_err e = TERN_OK;
	for (size_t i = 0; i < n && !e; i++)
		e = bind_row(st, (int)(i * COLS) + 1, &d->json[i], &r[i]);
	int rc = e ? SQLITE_OK : sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (e)
		return e;
	return rc == SQLITE_DONE ? TERN_OK : TERN_E_SYS;
}

static int run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc;
}

static enum tern_err db_write(struct archive_db *d, const struct archive_record *recs, size_t n,
                              char *err, size_t errlen)
{
	if (!d->st[ST_INSERT]) {
		snprintf(err, errlen, "%s: opened for reading only", d->path);
		return TERN_E_INVALID;
	}
	if (run(d->st[ST_BEGIN]) != SQLITE_DONE)
		return fail(d, err, errlen, "cannot begin a transaction", TERN_E_SYS);
	enum tern_err e = TERN_OK;
	for (size_t i = 0; i < n && !e;) {
		size_t k = n - i >= ROWS ? ROWS : 1;
		e = insert(d, &recs[i], k);
		i += k;
	}
	if (e) {
		fail(d, err, errlen, "cannot insert", e);
		run(d->st[ST_ROLLBACK]);
		return e;
	}
	if (run(d->st[ST_COMMIT]) != SQLITE_DONE) {
		e = fail(d, err, errlen, "cannot commit", TERN_E_SYS);
		run(d->st[ST_ROLLBACK]);
		return e;
	}
	return TERN_OK;
}

/* A column as bytes: "" for an empty one, so data is never NULL. */
static struct tern_bytes col(sqlite3_stmt *st, int i)
{
	const void *p = sqlite3_column_blob(st, i);
	int n = sqlite3_column_bytes(st, i);
	return (struct tern_bytes){p && n ? p : (const uint8_t *)"", (uint32_t)n};
}

static enum tern_err db_read(struct archive_db *d, const struct archive_query *q,
                             archive_read_fn fn, void *arg, char *err, size_t errlen)
{
	char sql[1024];
	/* The prefix's upper bound: the prefix with its last byte raised
	 * (UTF-8 never has 0xff, so that byte is no wider than 0xfe). */
	snprintf(sql, sizeof(sql),
	         "SELECT msg_key, received_at, topic, payload, qos, retain, client_id, username,"
	         " payload_format, content_type, correlation_data, response_topic,"
	         " user_properties FROM \"%s\" WHERE received_at >= ?1%s"
	         " ORDER BY received_at, id%s",
	         d->table, q->prefix.len ? " AND topic >= ?2 AND topic < ?3" : "",
	         q->limit ? " LIMIT ?4" : "");
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(d->db, sql, -1, &st, NULL) != SQLITE_OK)
		return fail(d, err, errlen, "cannot read the archive table", TERN_E_CONFIG);
	uint8_t hi[65536];
	sqlite3_bind_int64(st, 1, q->since_ms);
	if (q->prefix.len) {
		memcpy(hi, q->prefix.data, q->prefix.len);
		hi[q->prefix.len - 1]++;
		sqlite3_bind_text(st, 2, (const char *)q->prefix.data, (int)q->prefix.len,
		                  SQLITE_STATIC);
		sqlite3_bind_text(st, 3, (const char *)hi, (int)q->prefix.len, SQLITE_STATIC);
	}
	if (q->limit)
		sqlite3_bind_int64(st, 4, (sqlite3_int64)q->limit);
	enum tern_err e = TERN_OK;
	struct buf user = {0};
	int rc = SQLITE_DONE;
	while (!e && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct archive_record r = {0};
		snprintf(r.key, sizeof(r.key), "%s", (const char *)sqlite3_column_text(st, 0));
		r.received_at = sqlite3_column_int64(st, 1);
		r.topic = col(st, 2);
		r.payload = col(st, 3);
		r.qos = (uint8_t)sqlite3_column_int(st, 4);
		r.retain = sqlite3_column_int(st, 5) != 0;
		r.client_id = col(st, 6);
		if ((r.has_username = sqlite3_column_type(st, 7) != SQLITE_NULL))
			r.username = col(st, 7);
		if ((r.has_payload_format = sqlite3_column_type(st, 8) != SQLITE_NULL))
			r.payload_format = (uint8_t)sqlite3_column_int(st, 8);
		if ((r.has_content_type = sqlite3_column_type(st, 9) != SQLITE_NULL))
			r.content_type = col(st, 9);
		if ((r.has_correlation_data = sqlite3_column_type(st, 10) != SQLITE_NULL))
			r.correlation_data = col(st, 10);
		if ((r.has_response_topic = sqlite3_column_type(st, 11) != SQLITE_NULL))
			r.response_topic = col(st, 11);
		user.len = user.off = 0;
		if (sqlite3_column_type(st, 12) != SQLITE_NULL) {
			struct tern_bytes j = col(st, 12);
			if (archive_user_parse(&user, (const char *)j.data, j.len) == TERN_OK &&
			    user.len)
				r.user_raw = (struct tern_bytes){user.data, (uint32_t)user.len};
		}
		e = fn(arg, &r);
	}
	if (!e && rc != SQLITE_DONE)
		e = fail(d, err, errlen, "cannot read the archive table", TERN_E_SYS);
	buf_free(&user);
	sqlite3_finalize(st);
	return e;
}

const struct archive_sink_ops archive_sqlite_ops = {
        .scheme = "sqlite",
        .check = check,
        .open = db_open,
        .write = db_write,
        .read = db_read,
        .close = db_close,
};
