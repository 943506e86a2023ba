/*
 * fuzz_store.c - libFuzzer target for the store loader, through the broker.
 *
 * Input: SQL text. Each run starts from a fresh database with tern's real
 * schema (a copy of a file made once by store_open(), so the schema is
 * never written twice), runs the input on it statement by statement (a
 * statement that fails is skipped: whatever succeeds shapes the file), and
 * then starts a broker on the file the way ternd does: broker_init() with
 * sqlite storage, one worker and no listener, which opens the store,
 * checks it, loads sessions, subscriptions, retained messages, deliveries
 * and QoS 2 ids into the workers, and starts the storage thread. Then
 * broker_stop() and broker_free() shut it down as ternd does. So the
 * loader meets what a damaged, hand-edited or hostile database holds:
 * NULLs, wrong types, out-of-range numbers, invalid topics and filters,
 * dangling references, duplicates, a missing or re-created table, another
 * application id or version.
 *
 * The input runs on a connection of its own, fenced in: an authorizer
 * refuses ATTACH, PRAGMAs other than user_version and application_id, and
 * triggers (which would run later inside the broker's own statements, out
 * of this fence); inputs naming VACUUM or ATTACH are not run at all
 * (VACUUM INTO writes a file anywhere); a progress handler stops a
 * statement after PROGRESS_LIMIT steps and values are capped at 64 KiB, so
 * a recursive query cannot turn into a timeout.
 *
 * Files live in a directory made with mkdtemp() under /dev/shm (or /tmp):
 * the database and its -wal and -shm files are deleted after every run,
 * the directory at exit (not after a crash). Dictionary: fuzz/store.dict (tables, columns, SQL words).
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "broker/transport.h"
#include "store/store.h"
#include "util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DB_NAME        "ternd.db"
#define PROGRESS_LIMIT 20000 /* progress callbacks of 100 VM steps each */
#define VALUE_LIMIT    65536

static char dir[64];
static char db_path[128];
static uint8_t *template_db; /* the bytes of a fresh database */
static size_t template_len;

static void fatal(const char *what)
{
	fprintf(stderr, "fuzz_store: %s: %s\n", what, strerror(errno));
	abort();
}

static void remove_db(void)
{
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	char p[160];
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", db_path, suffix[i]);
		unlink(p);
	}
}

static void cleanup(void)
{
	remove_db();
	rmdir(dir);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fatal(path);
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0, got;
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			if (!buf)
				fatal("realloc");
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
	} while (got > 0);
	fclose(f);
	*len = n;
	return buf;
}

/* Once per process: the directory and the template database. */
static void setup(void)
{
	/* Memory (tmpfs) when there is one: a run writes several files. */
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(dir, sizeof(dir), "%s/fuzz_store.XXXXXX", base);
	if (!mkdtemp(dir))
		fatal("mkdtemp");
	snprintf(db_path, sizeof(db_path), "%s/%s", dir, DB_NAME);
	atexit(cleanup);
	struct store *s = NULL;
	struct store_config sc = {.path = db_path, .sync = STORE_SYNC_OFF};
	char err[512];
	if (store_open(&s, &sc, err, sizeof(err)) != TERN_OK) {
		fprintf(stderr, "fuzz_store: store_open: %s\n", err);
		abort();
	}
	store_close(s);
	/* Closing the last connection checkpoints the WAL into the file. */
	template_db = read_file(db_path, &template_len);
	remove_db();
}

static void write_template(void)
{
	int fd = open(db_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		fatal(db_path);
	size_t off = 0;
	while (off < template_len) {
		ssize_t n = write(fd, template_db + off, template_len - off);
		if (n <= 0)
			fatal("write");
		off += (size_t)n;
	}
	close(fd);
}

static int authorize(void *arg, int action, const char *a1, const char *a2, const char *db,
                     const char *trigger)
{
	(void)arg;
	(void)a2;
	(void)db;
	(void)trigger;
	switch (action) {
	case SQLITE_ATTACH:
	case SQLITE_DETACH:
	case SQLITE_CREATE_TRIGGER:
	case SQLITE_CREATE_TEMP_TRIGGER:
		return SQLITE_DENY;
	case SQLITE_PRAGMA:
		if (a1 &&
		    (strcasecmp(a1, "user_version") == 0 || strcasecmp(a1, "application_id") == 0))
			return SQLITE_OK;
		return SQLITE_DENY;
	default:
		return SQLITE_OK;
	}
}

static int progress(void *arg)
{
	unsigned *calls = arg;
	return ++*calls > PROGRESS_LIMIT;
}

/* True when text contains word, ignoring case. */
static bool mentions(const char *text, const char *word)
{
	size_t wl = strlen(word);
	for (const char *p = text; *p; p++)
		if (strncasecmp(p, word, wl) == 0)
			return true;
	return false;
}

static void run_sql(const char *sql)
{
	if (mentions(sql, "vacuum") || mentions(sql, "attach"))
		return;
	sqlite3 *db = NULL;
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
		fatal("sqlite3_open_v2");
	/* Before the fence, which refuses this PRAGMA: no fsync (the store
	 * itself runs with storage_sync off too). */
	sqlite3_exec(db, "PRAGMA synchronous = OFF", NULL, NULL, NULL);
	unsigned calls = 0;
	sqlite3_limit(db, SQLITE_LIMIT_LENGTH, VALUE_LIMIT);
	sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, VALUE_LIMIT);
	sqlite3_set_authorizer(db, authorize, NULL);
	sqlite3_progress_handler(db, 100, progress, &calls);
	/* Statement by statement, going on after one fails (sqlite3_exec()
	 * would stop), so that one bad row does not hide the rest. */
	const char *p = sql;
	while (*p) {
		sqlite3_stmt *st = NULL;
		const char *tail = NULL;
		if (sqlite3_prepare_v2(db, p, -1, &st, &tail) != SQLITE_OK) {
			const char *semi = strchr(p, ';');
			if (!semi)
				break;
			p = semi + 1;
			continue;
		}
		if (st) {
			while (sqlite3_step(st) == SQLITE_ROW)
				;
			sqlite3_finalize(st);
		}
		if (!tail || tail <= p)
			break;
		p = tail;
	}
	sqlite3_close_v2(db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg;
	static struct broker b; /* large: keep it off the stack */
	if (!template_db) {
		setup();
		config_defaults(&cfg);
		cfg.storage = STORAGE_SQLITE;
		cfg.storage_sync = STORE_SYNC_OFF;
		cfg.workers = 1;
		cfg.n_listeners = 0;
		cfg.sys_interval = 0;
		/* Every log line is formatted: they quote stored strings.
		 * FUZZ_STORE_LOG=1 shows them, to check what a seed does. */
		cfg.log_dest = LOG_DEST_FILE;
		snprintf(cfg.log_file, sizeof(cfg.log_file), "/dev/null");
		if (getenv("FUZZ_STORE_LOG"))
			cfg.log_dest = LOG_DEST_STDERR;
		cfg.log_mask = LOG_TYPE_ALL;
		cfg.log_timestamp = false;
		snprintf(cfg.persistence_location, sizeof(cfg.persistence_location), "%s", dir);
		snprintf(cfg.persistence_file, sizeof(cfg.persistence_file), "%s", DB_NAME);
	}
	char *sql = malloc(size + 1);
	if (!sql)
		fatal("malloc");
	memcpy(sql, data, size);
	sql[size] = '\0';
	write_template();
	run_sql(sql);
	free(sql);

	if (broker_init(&b, &cfg) == TERN_OK) {
		/* broker_free() wants a stopped broker (no thread to join
		 * here): at shutdown sessions are freed, not ended, so the
		 * store keeps them. */
		broker_stop(&b);
		broker_free(&b);
	}
	remove_db();
	return 0;
}
