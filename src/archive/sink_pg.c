/*
 * sink_pg.c - the PostgreSQL sink: archive_sink postgresql://... (or
 * postgres://...), through libpq (docs/archive.md has the schema).
 *
 * A batch is one transaction of multi-row INSERT ... ON CONFLICT (msg_key)
 * DO NOTHING, at most ROWS_PER_STATEMENT rows a statement (13 parameters a
 * row, under PostgreSQL's 65535), so a batch written again after a failure
 * adds nothing twice. Every parameter and result goes in binary format:
 * topics, client ids and payloads are sent as the bytes they are, with no
 * escaping and no NUL terminator to add, and read back the same way.
 *
 * The connection string is the user's URL as libpq takes it, with a
 * connect_timeout of 10 s unless the URL sets one, so that the archive's
 * thread never waits for ever on a server that does not answer. The URL
 * is parsed by libpq itself at config time (PQconninfoParse, no I/O).
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archive/sink.h"
#include "util/buf.h"

#define ROWS_PER_STATEMENT 1000
#define COLS               13

/* Type OIDs of the built-in types we bind (pg_type.dat). */
#define OID_BOOL        16
#define OID_BYTEA       17
#define OID_INT8        20
#define OID_INT2        21
#define OID_TEXT        25
#define OID_TIMESTAMPTZ 1184
#define OID_JSONB       3802

/* Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch. */
#define PG_EPOCH_US INT64_C(946684800000000)

struct archive_db {
	PGconn *conn;
	char table[64];
	char *insert_sql;   /* for ROWS_PER_STATEMENT rows; shorter ones are built */
	struct buf scratch; /* JSON and fixed-width values of a statement */
	struct buf sql;
};

/* Makes msg (libpq's, several lines) one line of the log. */
static void one_line(char *msg)
{
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\t')
			*p = ' ';
	size_t n = strlen(msg);
	while (n && msg[n - 1] == ' ')
		msg[--n] = '\0';
}

/* Notices (a table that exists already, ...) are not errors: dropped,
 * rather than printed on ternd's stderr. */
static void no_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static bool is_pg_url(const char *url)
{
	return strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0;
}

static enum tern_err check(const char *url, char *err, size_t errlen)
{
	if (!is_pg_url(url)) {
		snprintf(err, errlen,
		         "'%s': expected postgresql://[user[:password]@]host[:port]/db", url);
		return TERN_E_CONFIG;
	}
	char *why = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &why);
	if (!opts) {
		snprintf(err, errlen, "'%s': %s", url, why ? why : "out of memory");
		one_line(err);
		PQfreemem(why);
		return TERN_E_CONFIG;
	}
	PQconninfoFree(opts);
	return TERN_OK;
}

static void db_close(struct archive_db *d)
{
	if (!d)
		return;
	PQfinish(d->conn);
	free(d->insert_sql);
	buf_free(&d->scratch);
	buf_free(&d->sql);
	free(d);
}

/* The server's message, one line. */
static enum tern_err fail(struct archive_db *d, char *err, size_t errlen, const char *what,
                          enum tern_err e)
{
	snprintf(err, errlen, "%s: %s", what, d->conn ? PQerrorMessage(d->conn) : "");
	one_line(err);
	return e;
}

static enum tern_err result_fail(struct archive_db *d, PGresult *r, char *err, size_t errlen,
                                 const char *what, enum tern_err e)
{
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(d->conn);
	snprintf(err, errlen, "%s: %s", what, msg && *msg ? msg : PQerrorMessage(d->conn));
	one_line(err);
	PQclear(r);
	return e;
}

static bool ok(PGresult *r, ExecStatusType want)
{
	return r && PQresultStatus(r) == want;
}

/* INSERT for n rows into d->sql (NUL-terminated). */
static enum tern_err build_insert(struct archive_db *d, size_t n)
{
	d->sql.len = d->sql.off = 0;
	char head[256];
	int hl = snprintf(head, sizeof(head),
	                  "INSERT INTO \"%s\" (msg_key, received_at, topic, payload, qos, retain,"
	                  " client_id, username, payload_format, content_type, correlation_data,"
	                  " response_topic, user_properties) VALUES ",
	                  d->table);
	enum tern_err e = buf_append(&d->sql, head, (size_t)hl, 0);
	for (size_t i = 0; !e && i < n; i++) {
		char row[160];
		size_t p = i * COLS;
		int rl = snprintf(
		        row, sizeof(row),
		        "%s($%zu,$%zu,$%zu,$%zu,$%zu,$%zu,$%zu,$%zu,$%zu,$%zu,$%zu,$%zu,$%zu)",
		        i ? "," : "", p + 1, p + 2, p + 3, p + 4, p + 5, p + 6, p + 7, p + 8, p + 9,
		        p + 10, p + 11, p + 12, p + 13);
		e = buf_append(&d->sql, row, (size_t)rl, 0);
	}
	static const char tail[] = " ON CONFLICT (msg_key) DO NOTHING";
	if (!e)
		e = buf_append(&d->sql, tail, sizeof(tail), 0); /* with its NUL */
	return e;
}

static enum tern_err db_open(struct archive_db **out, const char *url, const char *table,
                             bool create, char *err, size_t errlen)
{
	enum tern_err e = check(url, err, errlen);
	if (e)
		return e;
	if (!archive_name_ok(table)) {
		snprintf(err, errlen, "'%s' cannot name a table", table);
		return TERN_E_CONFIG;
	}
	struct archive_db *d = calloc(1, sizeof(*d));
	if (!d)
		return TERN_E_NOMEM;
	snprintf(d->table, sizeof(d->table), "%s", table);
	/* The URL's own settings, connect_timeout included, win: they come
	 * after ours (expand_dbname). */
	const char *const keys[] = {"connect_timeout", "client_encoding", "dbname", NULL};
	const char *const vals[] = {"10", "UTF8", url, NULL};
	d->conn = PQconnectdbParams(keys, vals, 1);
	if (!d->conn || PQstatus(d->conn) != CONNECTION_OK) {
		e = d->conn ? fail(d, err, errlen, "cannot connect", TERN_E_SYS) : TERN_E_NOMEM;
		db_close(d);
		return e;
	}
	PQsetNoticeProcessor(d->conn, no_notice, NULL);
	char sql[2048];
	if (create) {
		snprintf(sql, sizeof(sql),
		         "CREATE TABLE IF NOT EXISTS \"%s\" ("
		         " id bigserial PRIMARY KEY,"
		         " msg_key text NOT NULL UNIQUE,"
		         " received_at timestamptz NOT NULL,"
		         " topic text NOT NULL,"
		         " payload bytea NOT NULL,"
		         " qos smallint NOT NULL,"
		         " retain boolean NOT NULL,"
		         " client_id text NOT NULL,"
		         " username text,"
		         " payload_format smallint,"
		         " content_type text,"
		         " correlation_data bytea,"
		         " response_topic text,"
		         " user_properties jsonb);"
		         "CREATE INDEX IF NOT EXISTS \"%s_topic_time\" ON \"%s\" (topic, "
		         "received_at);"
		         "CREATE INDEX IF NOT EXISTS \"%s_time\" ON \"%s\" (received_at);",
		         table, table, table, table, table);
		PGresult *r = PQexec(d->conn, sql);
		if (!ok(r, PGRES_COMMAND_OK)) {
			/* A lost connection is worth retrying; a refusal is not. */
			e = PQstatus(d->conn) == CONNECTION_OK ? TERN_E_CONFIG : TERN_E_SYS;
			e = result_fail(d, r, err, errlen, "the database refuses the archive table",
			                e);
			db_close(d);
			return e;
		}
		PQclear(r);
		/* A table of that name made by someone else shows here: the
		 * statement names every column we write, with its type. */
		if (build_insert(d, 1)) {
			db_close(d);
			return TERN_E_NOMEM;
		}
		static const Oid types[COLS] = {OID_TEXT, OID_TIMESTAMPTZ, OID_TEXT,  OID_BYTEA,
		                                OID_INT2, OID_BOOL,        OID_TEXT,  OID_TEXT,
		                                OID_INT2, OID_TEXT,        OID_BYTEA, OID_TEXT,
		                                OID_JSONB};
		r = PQprepare(d->conn, "", (const char *)d->sql.data, COLS, types);
		if (!ok(r, PGRES_COMMAND_OK)) {
			e = PQstatus(d->conn) == CONNECTION_OK ? TERN_E_CONFIG : TERN_E_SYS;
			e = result_fail(d, r, err, errlen, "the archive table has another schema",
			                e);
			db_close(d);
			return e;
		}
		PQclear(r);
	}
	*out = d;
	return TERN_OK;
}

/* Fixed-width binary values of one row, kept in d->scratch. */
struct row_vals {
	int64_t at_be;
	int16_t qos_be, pf_be;
	uint8_t retain;
};

static uint64_t be64(uint64_t v)
{
	return __builtin_bswap64(v);
}

static uint16_t be16(uint16_t v)
{
	return __builtin_bswap16(v);
}

/* Inserts recs[0..n) (n <= ROWS_PER_STATEMENT) in one statement. */
static enum tern_err insert(struct archive_db *d, const struct archive_record *recs, size_t n,
                            char *err, size_t errlen)
{
	static const Oid type_of[COLS] = {OID_TEXT,  OID_TIMESTAMPTZ, OID_TEXT, OID_BYTEA, OID_INT2,
	                                  OID_BOOL,  OID_TEXT,        OID_TEXT, OID_INT2,  OID_TEXT,
	                                  OID_BYTEA, OID_TEXT,        OID_JSONB};
	size_t np = n * COLS;
	const char **vals = calloc(np, sizeof(*vals));
	int *lens = calloc(np, sizeof(*lens));
	int *fmts = calloc(np, sizeof(*fmts));
	Oid *types = calloc(np, sizeof(*types));
	size_t *json_off = calloc(n, sizeof(*json_off));
	size_t *json_len = calloc(n, sizeof(*json_len));
	enum tern_err e =
	        vals && lens && fmts && types && json_off && json_len ? TERN_OK : TERN_E_NOMEM;
	/* Scratch: the fixed-width values first, then each row's JSON (a
	 * jsonb in binary is a version byte, 1, then the text). Pointers into
	 * it are taken once it no longer grows. */
	d->scratch.len = d->scratch.off = 0;
	if (!e)
		e = buf_reserve(&d->scratch, n * sizeof(struct row_vals), 0);
	if (!e) {
		d->scratch.len = n * sizeof(struct row_vals);
		for (size_t i = 0; i < n && !e; i++) {
			const struct archive_record *r = &recs[i];
			json_off[i] = d->scratch.len;
			if (r->user_raw.len) {
				uint8_t version = 1;
				e = buf_append(&d->scratch, &version, 1, 0);
				if (!e)
					e = archive_user_json(&d->scratch, r->user_raw);
			}
			json_len[i] = d->scratch.len - json_off[i];
		}
	}
	if (!e && (e = build_insert(d, n)))
		e = TERN_E_NOMEM;
	if (e) {
		snprintf(err, errlen, "cannot build a batch: %s", tern_strerror(e));
		goto out;
	}
	uint8_t *base = d->scratch.data + d->scratch.off;
	struct row_vals *rv = (struct row_vals *)base;
	for (size_t i = 0; i < n; i++) {
		const struct archive_record *r = &recs[i];
		struct row_vals *v = &rv[i];
		v->at_be = (int64_t)be64((uint64_t)(r->received_at * 1000 - PG_EPOCH_US));
		v->qos_be = (int16_t)be16(r->qos);
		v->pf_be = (int16_t)be16(r->payload_format);
		v->retain = r->retain;
		const char **pv = vals + i * COLS;
		int *pl = lens + i * COLS;
		struct {
			bool has;
			const void *p;
			size_t len;
		} c[COLS] = {
		        {true, r->key, strlen(r->key)},
		        {true, &v->at_be, 8},
		        {true, r->topic.data, r->topic.len},
		        {true, r->payload.data, r->payload.len},
		        {true, &v->qos_be, 2},
		        {true, &v->retain, 1},
		        {true, r->client_id.data, r->client_id.len},
		        {r->has_username, r->username.data, r->username.len},
		        {r->has_payload_format, &v->pf_be, 2},
		        {r->has_content_type, r->content_type.data, r->content_type.len},
		        {r->has_correlation_data, r->correlation_data.data,
		         r->correlation_data.len},
		        {r->has_response_topic, r->response_topic.data, r->response_topic.len},
		        {json_len[i] != 0, base + json_off[i], json_len[i]},
		};
		for (int k = 0; k < COLS; k++) {
			/* An empty value is still a value: never NULL then. */
			pv[k] = c[k].has ? (c[k].p && c[k].len ? (const char *)c[k].p : "") : NULL;
			pl[k] = (int)c[k].len;
			fmts[i * COLS + (size_t)k] = 1;
			types[i * COLS + (size_t)k] = type_of[k];
		}
	}
	PGresult *res = PQexecParams(d->conn, (const char *)d->sql.data, (int)np, types, vals, lens,
	                             fmts, 1);
	if (!ok(res, PGRES_COMMAND_OK))
		e = result_fail(d, res, err, errlen, "cannot insert", TERN_E_SYS);
	else
		PQclear(res);
out:
	free(vals);
	free(lens);
	free(fmts);
	free(types);
	free(json_off);
	free(json_len);
	return e;
}

static enum tern_err exec_simple(struct archive_db *d, const char *sql, char *err, size_t errlen)
{
	PGresult *r = PQexec(d->conn, sql);
	if (!ok(r, PGRES_COMMAND_OK))
		return result_fail(d, r, err, errlen, sql, TERN_E_SYS);
	PQclear(r);
	return TERN_OK;
}

static enum tern_err db_write(struct archive_db *d, const struct archive_record *recs, size_t n,
                              char *err, size_t errlen)
{
	enum tern_err e = exec_simple(d, "BEGIN", err, errlen);
	for (size_t i = 0; !e && i < n; i += ROWS_PER_STATEMENT)
		e = insert(d, recs + i, n - i < ROWS_PER_STATEMENT ? n - i : ROWS_PER_STATEMENT,
		           err, errlen);
	if (!e)
		return exec_simple(d, "COMMIT", err, errlen);
	if (PQstatus(d->conn) == CONNECTION_OK) {
		PGresult *r = PQexec(d->conn, "ROLLBACK");
		PQclear(r);
	}
	return e;
}

/* A binary result column as bytes ("" for an empty one). */
static struct tern_bytes col(const PGresult *r, int row, int c)
{
	int n = PQgetlength(r, row, c);
	const char *p = PQgetvalue(r, row, c);
	return (struct tern_bytes){n && p ? (const uint8_t *)p : (const uint8_t *)"", (uint32_t)n};
}

static int64_t col_i64(const PGresult *r, int row, int c)
{
	uint64_t v = 0;
	if (PQgetlength(r, row, c) == 8)
		memcpy(&v, PQgetvalue(r, row, c), 8);
	return (int64_t)be64(v);
}

static int col_i16(const PGresult *r, int row, int c)
{
	uint16_t v = 0;
	if (PQgetlength(r, row, c) == 2)
		memcpy(&v, PQgetvalue(r, row, c), 2);
	return (int16_t)be16(v);
}

static enum tern_err db_read(struct archive_db *d, const struct archive_query *q,
                             archive_read_fn fn, void *arg, char *err, size_t errlen)
{
	char since[32], limit[32], where[64] = "", lim[32] = "";
	char *prefix = malloc(q->prefix.len + 1);
	if (!prefix)
		return TERN_E_NOMEM;
	memcpy(prefix, q->prefix.len ? (const char *)q->prefix.data : "", q->prefix.len);
	prefix[q->prefix.len] = '\0';
	snprintf(since, sizeof(since), "%lld", (long long)q->since_ms);
	snprintf(limit, sizeof(limit), "%llu", (unsigned long long)q->limit);
	const char *vals[3] = {since};
	int n = 1;
	if (q->prefix.len) {
		vals[n++] = prefix;
		snprintf(where, sizeof(where), " AND left(topic, length($%d)) = $%d", n, n);
	}
	if (q->limit) {
		vals[n++] = limit;
		snprintf(lim, sizeof(lim), " LIMIT $%d::int8", n);
	}
	char sql[1024];
	snprintf(sql, sizeof(sql),
	         "SELECT msg_key, (extract(epoch FROM received_at) * 1000)::int8, topic, payload,"
	         " qos, retain, client_id, username, payload_format, content_type,"
	         " correlation_data, response_topic, user_properties::text FROM \"%s\""
	         " WHERE received_at >= to_timestamp($1::int8 / 1000.0)%s"
	         " ORDER BY received_at, id%s",
	         d->table, where, lim);
	PGresult *r = PQexecParams(d->conn, sql, n, NULL, vals, NULL, NULL, 1);
	free(prefix);
	if (!ok(r, PGRES_TUPLES_OK))
		return result_fail(d, r, err, errlen, "cannot read the archive table", TERN_E_SYS);
	enum tern_err e = TERN_OK;
	struct buf user = {0};
	for (int i = 0; i < PQntuples(r) && !e; i++) {
		struct archive_record rec = {0};
		struct tern_bytes k = col(r, i, 0);
		snprintf(rec.key, sizeof(rec.key), "%.*s", (int)k.len, (const char *)k.data);
		rec.received_at = col_i64(r, i, 1);
		rec.topic = col(r, i, 2);
		rec.payload = col(r, i, 3);
		rec.qos = (uint8_t)col_i16(r, i, 4);
		rec.retain = PQgetlength(r, i, 5) == 1 && PQgetvalue(r, i, 5)[0];
		rec.client_id = col(r, i, 6);
		if ((rec.has_username = !PQgetisnull(r, i, 7)))
			rec.username = col(r, i, 7);
		if ((rec.has_payload_format = !PQgetisnull(r, i, 8)))
			rec.payload_format = (uint8_t)col_i16(r, i, 8);
		if ((rec.has_content_type = !PQgetisnull(r, i, 9)))
			rec.content_type = col(r, i, 9);
		if ((rec.has_correlation_data = !PQgetisnull(r, i, 10)))
			rec.correlation_data = col(r, i, 10);
		if ((rec.has_response_topic = !PQgetisnull(r, i, 11)))
			rec.response_topic = col(r, i, 11);
		user.len = user.off = 0;
		if (!PQgetisnull(r, i, 12)) {
			struct tern_bytes j = col(r, i, 12);
			if (archive_user_parse(&user, (const char *)j.data, j.len) == TERN_OK &&
			    user.len)
				rec.user_raw = (struct tern_bytes){user.data, (uint32_t)user.len};
		}
		e = fn(arg, &rec);
	}
	buf_free(&user);
	PQclear(r);
	return e;
}

const struct archive_sink_ops archive_pg_ops = {
        .scheme = "postgresql",
        .alias = "postgres",
        .check = check,
        .open = db_open,
        .write = db_write,
        .read = db_read,
        .close = db_close,
};
