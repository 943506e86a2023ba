/*
 * sink_mongo.c - the MongoDB sink: archive_sink mongodb://HOST[:PORT]/DB?...
 * through the MongoDB C driver (Debian's libmongoc-dev); docs/archive.md
 * has the document layout.
 *
 * A message is one document of the collection named after the archive,
 * whose _id is the message key: MongoDB's own unique index is the one that
 * makes a batch written again add nothing. A batch is one unordered
 * insert_many; the documents already there come back as write errors 11000
 * (duplicate key), which are success for us, since the archive then has
 * them. Any other error fails the batch, and the archive writes it again
 * after its back-off. MongoDB has no multi-document atomicity without a
 * replica set, which at least once does not need.
 *
 * The driver's defaults wait 30 s to select a server; an archive's thread
 * would then sit out its stop on a dead server, so the URL gets
 * serverSelectionTimeoutMS=5000, connectTimeoutMS=5000 and
 * socketTimeoutMS=10000 unless it sets them.
 *
 * This file is a module of its own (tern_archive_mongo.so), loaded by
 * sink_mongo_load.c only when an archive or `tern history` names a
 * mongodb:// URL: Debian's libmongoc initialises itself when it is loaded,
 * making a /dev/shm/mongoc-PID counters file that a killed process leaves
 * behind and that makes a later process with that PID warn on stderr, so
 * ternd and tern must not carry it when nobody uses MongoDB.
 *
 * libmongoc wants mongoc_init()
 * once per process before any use: done here, once (pthread_once), as its
 * documentation asks; nothing else of ours is global.
 */
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive/sink.h"
#include "util/buf.h"

struct archive_db {
	mongoc_client_t *client;
	mongoc_collection_t *coll;
	char db_name[128];
	char table[64];
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void driver_init(void)
{
	mongoc_init();
}

static enum tern_err parse(const char *url, mongoc_uri_t **out, char *err, size_t errlen)
{
	pthread_once(&init_once, driver_init);
	if (strncmp(url, "mongodb://", 10) != 0 && strncmp(url, "mongodb+srv://", 14) != 0) {
		snprintf(err, errlen, "'%s': expected mongodb://HOST[:PORT]/DB[?...]", url);
		return TERN_E_CONFIG;
	}
	bson_error_t e;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(url, &e);
	if (!uri) {
		snprintf(err, errlen, "'%s': %s", url, e.message);
		return TERN_E_CONFIG;
	}
	const char *db = mongoc_uri_get_database(uri);
	if (!db || !*db || strlen(db) >= sizeof(((struct archive_db *)0)->db_name)) {
		snprintf(err, errlen, "'%s': the URL names no database (mongodb://HOST/DB)", url);
		mongoc_uri_destroy(uri);
		return TERN_E_CONFIG;
	}
	*out = uri;
	return TERN_OK;
}

static enum tern_err check(const char *url, char *err, size_t errlen)
{
	mongoc_uri_t *uri = NULL;
	enum tern_err e = parse(url, &uri, err, errlen);
	mongoc_uri_destroy(uri);
	return e;
}

static void db_close(struct archive_db *d)
{
	if (!d)
		return;
	if (d->coll)
		mongoc_collection_destroy(d->coll);
	if (d->client)
		mongoc_client_destroy(d->client);
	free(d);
}

static void default_ms(mongoc_uri_t *uri, const char *option, int32_t ms)
{
	if (mongoc_uri_get_option_as_int32(uri, option, -1) == -1)
		mongoc_uri_set_option_as_int32(uri, option, ms);
}

static enum tern_err db_open(struct archive_db **out, const char *url, const char *table,
                             bool create, char *err, size_t errlen)
{
	mongoc_uri_t *uri = NULL;
	enum tern_err e = parse(url, &uri, err, errlen);
	if (e)
		return e;
	/* The collection's name was checked by the loader (sink_mongo_load.c). */
	default_ms(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 5000);
	default_ms(uri, MONGOC_URI_CONNECTTIMEOUTMS, 5000);
	default_ms(uri, MONGOC_URI_SOCKETTIMEOUTMS, 10000);
	struct archive_db *d = calloc(1, sizeof(*d));
	if (!d) {
		mongoc_uri_destroy(uri);
		return TERN_E_NOMEM;
	}
	snprintf(d->db_name, sizeof(d->db_name), "%s", mongoc_uri_get_database(uri));
	snprintf(d->table, sizeof(d->table), "%s", table);
	bson_error_t be;
	d->client = mongoc_client_new_from_uri_with_error(uri, &be);
	mongoc_uri_destroy(uri);
	if (!d->client) {
		snprintf(err, errlen, "%s", be.message);
		db_close(d);
		return TERN_E_CONFIG;
	}
	mongoc_client_set_error_api(d->client, MONGOC_ERROR_API_VERSION_2);
	d->coll = mongoc_client_get_collection(d->client, d->db_name, table);
	/* The driver connects lazily: a ping says now whether the server is
	 * there. */
	bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
	bool up = mongoc_client_command_simple(d->client, d->db_name, ping, NULL, NULL, &be);
	bson_destroy(ping);
	if (!up) {
		snprintf(err, errlen, "cannot connect: %s", be.message);
		db_close(d);
		return TERN_E_SYS;
	}
	if (create) {
		char name1[96], name2[96];
		snprintf(name1, sizeof(name1), "%s_topic_time", table);
		snprintf(name2, sizeof(name2), "%s_time", table);
		bson_t *cmd =
		        BCON_NEW("createIndexes", BCON_UTF8(table), "indexes", "[", "{", "key", "{",
		                 "topic", BCON_INT32(1), "received_at", BCON_INT32(1), "}", "name",
		                 BCON_UTF8(name1), "}", "{", "key", "{", "received_at",
		                 BCON_INT32(1), "}", "name", BCON_UTF8(name2), "}", "]");
		bool ok = mongoc_client_command_simple(d->client, d->db_name, cmd, NULL, NULL, &be);
		bson_destroy(cmd);
		if (!ok) {
			/* The server answered and refused: a configuration to fix
			 * (rights, an index of that name with other keys). */
			snprintf(err, errlen, "the database refuses the archive's indexes: %s",
			         be.message);
			bool answered = be.domain == MONGOC_ERROR_SERVER ||
			                be.domain == MONGOC_ERROR_WRITE_CONCERN;
			db_close(d);
			return answered ? TERN_E_CONFIG : TERN_E_SYS;
		}
	}
	*out = d;
	return TERN_OK;
}

static void append_str(bson_t *b, const char *key, struct tern_bytes s)
{
	bson_append_utf8(b, key, -1, s.len ? (const char *)s.data : "", (int)s.len);
}

static void append_bin(bson_t *b, const char *key, struct tern_bytes s)
{
	bson_append_binary(b, key, -1, BSON_SUBTYPE_BINARY, s.len ? s.data : (const uint8_t *)"",
	                   s.len);
}

/* MongoDB's maximum document size (16 MiB, a limit of the server). */
#define DOC_MAX (16u << 20)

/* The document of r into b. */
static bool document(bson_t *b, const struct archive_record *r)
{
	bson_init(b);
	bool ok = bson_append_utf8(b, "_id", 3, r->key, -1);
	ok &= bson_append_date_time(b, "received_at", -1, r->received_at);
	append_str(b, "topic", r->topic);
	append_bin(b, "payload", r->payload);
	ok &= bson_append_int32(b, "qos", -1, r->qos);
	ok &= bson_append_bool(b, "retain", -1, r->retain);
	append_str(b, "client_id", r->client_id);
	if (r->has_username)
		append_str(b, "username", r->username);
	if (r->has_payload_format)
		ok &= bson_append_int32(b, "payload_format", -1, r->payload_format);
	if (r->has_content_type)
		append_str(b, "content_type", r->content_type);
	if (r->has_correlation_data)
		append_bin(b, "correlation_data", r->correlation_data);
	if (r->has_response_topic)
		append_str(b, "response_topic", r->response_topic);
	if (r->user_raw.len) {
		/* [[name, value], ...], as the SQL sinks' JSON. */
		bson_t arr, pair;
		struct tern_props props = {.raw = r->user_raw};
		size_t cur = 0;
		struct tern_bytes k, v;
		uint32_t i = 0;
		ok &= bson_append_array_begin(b, "user_properties", -1, &arr);
		while (tern_props_next_user(&props, &cur, &k, &v)) {
			char idx[16];
			snprintf(idx, sizeof(idx), "%u", i++);
			ok &= bson_append_array_begin(&arr, idx, -1, &pair);
			append_str(&pair, "0", k);
			append_str(&pair, "1", v);
			ok &= bson_append_array_end(&arr, &pair);
		}
		ok &= bson_append_array_end(b, &arr);
	}
	return ok && b->len <= DOC_MAX;
}

/* True when every write error of reply is a duplicate key (11000): the
 * documents are there already. */
static bool only_duplicates(const bson_t *reply)
{
	bson_iter_t it, errs;
	bool any = false;
	if (bson_iter_init_find(&it, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&it)) {
		bson_iter_t wc;
		if (bson_iter_recurse(&it, &wc) && bson_iter_next(&wc))
			return false;
	}
	if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
	    !bson_iter_recurse(&it, &errs))
		return false;
	while (bson_iter_next(&errs)) {
		bson_iter_t one;
		if (!BSON_ITER_HOLDS_DOCUMENT(&errs) || !bson_iter_recurse(&errs, &one) ||
		    !bson_iter_find(&one, "code") || bson_iter_as_int64(&one) != 11000)
			return false;
		any = true;
	}
	return any;
}

static enum tern_err db_write(struct archive_db *d, const struct archive_record *recs, size_t n,
                              char *err, size_t errlen)
{
	/* bson_t is declared 128-byte aligned, which calloc does not give. */
	bson_t *docs = aligned_alloc(BSON_ALIGNOF(bson_t), n * sizeof(*docs));
	const bson_t **ptrs = calloc(n, sizeof(*ptrs));
	if (!docs || !ptrs) {
		free(docs);
		free(ptrs);
		snprintf(err, errlen, "out of memory");
		return TERN_E_NOMEM;
	}
	bool built = true;
	for (size_t i = 0; i < n; i++) {
		built &= document(&docs[i], &recs[i]);
		ptrs[i] = &docs[i];
	}
	enum tern_err e = TERN_OK;
	if (!built) {
		snprintf(err, errlen, "a message is over MongoDB's document size limit (16 MiB)");
		e = TERN_E_TOO_LARGE;
	} else {
		bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
		bson_t reply;
		bson_error_t be;
		bool ok = mongoc_collection_insert_many(d->coll, ptrs, n, opts, &reply, &be);
		if (!ok && !only_duplicates(&reply)) {
			snprintf(err, errlen, "cannot insert: %s", be.message);
			e = TERN_E_SYS;
		}
		bson_destroy(&reply);
		bson_destroy(opts);
	}
	for (size_t i = 0; i < n; i++)
		bson_destroy(&docs[i]);
	free(docs);
	free(ptrs);
	return e;
}

/* A string or binary field of doc as bytes; false when absent. */
static bool field(const bson_t *doc, const char *key, struct tern_bytes *out)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, doc, key))
		return false;
	if (BSON_ITER_HOLDS_UTF8(&it)) {
		uint32_t len = 0;
		const char *s = bson_iter_utf8(&it, &len);
		*out = (struct tern_bytes){len ? (const uint8_t *)s : (const uint8_t *)"", len};
		return true;
	}
	if (BSON_ITER_HOLDS_BINARY(&it)) {
		bson_subtype_t st;
		uint32_t len = 0;
		const uint8_t *p = NULL;
		bson_iter_binary(&it, &st, &len, &p);
		*out = (struct tern_bytes){len && p ? p : (const uint8_t *)"", len};
		return true;
	}
	return false;
}

static int64_t num(const bson_t *doc, const char *key, bool *has)
{
	bson_iter_t it;
	*has = bson_iter_init_find(&it, doc, key) &&
	       (BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_INT64(&it) ||
	        BSON_ITER_HOLDS_BOOL(&it) || BSON_ITER_HOLDS_DATE_TIME(&it));
	if (!*has)
		return 0;
	if (BSON_ITER_HOLDS_BOOL(&it))
		return bson_iter_bool(&it);
	if (BSON_ITER_HOLDS_DATE_TIME(&it))
		return bson_iter_date_time(&it);
	return bson_iter_as_int64(&it);
}

/* The user_properties array back into encoded user properties. */
static void user_props(const bson_t *doc, struct buf *out)
{
	bson_iter_t it, arr;
	if (!bson_iter_init_find(&it, doc, "user_properties") || !BSON_ITER_HOLDS_ARRAY(&it) ||
	    !bson_iter_recurse(&it, &arr))
		return;
	while (bson_iter_next(&arr)) {
		bson_iter_t pair;
		struct tern_bytes kv[2];
		int n = 0;
		if (!BSON_ITER_HOLDS_ARRAY(&arr) || !bson_iter_recurse(&arr, &pair))
			continue;
		while (n < 2 && bson_iter_next(&pair) && BSON_ITER_HOLDS_UTF8(&pair)) {
			uint32_t len = 0;
			const char *s = bson_iter_utf8(&pair, &len);
			kv[n++] = (struct tern_bytes){(const uint8_t *)s, len};
		}
		uint8_t tmp[4 + 2 * 65535 + 1];
		size_t tl = 0;
		if (n == 2 &&
		    tern_user_prop_encode(tmp, sizeof(tmp), &tl, kv[0], kv[1]) == TERN_OK &&
		    buf_append(out, tmp, tl, 0) != TERN_OK)
			return;
	}
}

static enum tern_err db_read(struct archive_db *d, const struct archive_query *q,
                             archive_read_fn fn, void *arg, char *err, size_t errlen)
{
	bson_t filter, ts;
	bson_init(&filter);
	bson_append_document_begin(&filter, "received_at", -1, &ts);
	bson_append_date_time(&ts, "$gte", -1, q->since_ms);
	bson_append_document_end(&filter, &ts);
	if (q->prefix.len) {
		/* ^ and the prefix with every character that means something
		 * in a regular expression escaped. */
		struct buf re = {0};
		enum tern_err be = buf_append(&re, "^", 1, 0);
		for (uint32_t i = 0; !be && i < q->prefix.len; i++) {
			char c = (char)q->prefix.data[i];
			if (strchr("\\^$.|?*+()[]{}", c))
				be = buf_append(&re, "\\", 1, 0);
			if (!be)
				be = buf_append(&re, &c, 1, 0);
		}
		if (be) {
			buf_free(&re);
			bson_destroy(&filter);
			return TERN_E_NOMEM;
		}
		bson_t rx;
		bson_append_document_begin(&filter, "topic", -1, &rx);
		bson_append_utf8(&rx, "$regex", -1, (const char *)re.data, (int)re.len);
		bson_append_document_end(&filter, &rx);
		buf_free(&re);
	}
	bson_t *opts =
	        BCON_NEW("sort", "{", "received_at", BCON_INT32(1), "_id", BCON_INT32(1), "}");
	if (q->limit)
		BSON_APPEND_INT64(opts, "limit", (int64_t)q->limit);
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(d->coll, &filter, opts, NULL);
	bson_destroy(opts);
	bson_destroy(&filter);
	const bson_t *doc;
	enum tern_err e = TERN_OK;
	struct buf user = {0};
	while (!e && mongoc_cursor_next(cur, &doc)) {
		struct archive_record r = {0};
		struct tern_bytes k = {0};
		bool has;
		if (field(doc, "_id", &k))
			snprintf(r.key, sizeof(r.key), "%.*s", (int)k.len, (const char *)k.data);
		r.received_at = num(doc, "received_at", &has);
		field(doc, "topic", &r.topic);
		field(doc, "payload", &r.payload);
		r.qos = (uint8_t)num(doc, "qos", &has);
		r.retain = num(doc, "retain", &has) != 0;
		field(doc, "client_id", &r.client_id);
		r.has_username = field(doc, "username", &r.username);
		r.payload_format = (uint8_t)num(doc, "payload_format", &r.has_payload_format);
		r.has_content_type = field(doc, "content_type", &r.content_type);
		r.has_correlation_data = field(doc, "correlation_data", &r.correlation_data);
		r.has_response_topic = field(doc, "response_topic", &r.response_topic);
		user.len = user.off = 0;
		user_props(doc, &user);
		if (user.len)
			r.user_raw = (struct tern_bytes){user.data, (uint32_t)user.len};
		e = fn(arg, &r);
	}
	bson_error_t be;
	if (!e && mongoc_cursor_error(cur, &be)) {
		snprintf(err, errlen, "cannot read the archive: %s", be.message);
		e = TERN_E_SYS;
	}
	buf_free(&user);
	mongoc_cursor_destroy(cur);
	return e;
}

/* The module's one symbol, found by sink_mongo_load.c with dlsym(). */
__attribute__((visibility("default"))) const struct archive_sink_ops tern_archive_mongo_ops = {
        .scheme = "mongodb",
        .alias = "mongodb+srv",
        .check = check,
        .open = db_open,
        .write = db_write,
        .read = db_read,
        .close = db_close,
};
