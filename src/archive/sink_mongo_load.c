/*
 * sink_mongo_load.c - the MongoDB sink as sink.c sees it: archive_mongo_ops
 * loads the real one (sink_mongo.c, built as the module
 * tern_archive_mongo.so) on first use, with dlopen().
 *
 * Why a module: Debian's libmongoc runs mongoc_init() from a constructor
 * when it is loaded, which creates /dev/shm/mongoc-PID for its counters.
 * A process killed with SIGKILL leaves that file behind, and a later
 * process given the same PID prints "Falling back to malloc for counters"
 * on stderr: every ternd and every `tern pub` would risk that, and leak a
 * file per kill, though most never talk to MongoDB. Loaded here instead,
 * after MONGOC_DISABLE_SHM is set (the counters then live in memory), only
 * by a process that has a mongodb:// URL.
 *
 * Where the module is: first beside the running program's installation,
 * PREFIX/LIBDIR/tern/ for PREFIX/bin/tern or PREFIX/sbin/ternd (found from
 * /proc/self/exe, TERN_MONGO_MODULE_RELATIVE), so that an installation
 * made with another prefix than the one the build was configured with
 * (`make install PREFIX=...`, the Debian package) finds its own module;
 * then beside the build's binaries while running from the build tree
 * (TERN_MONGO_MODULE_BUILD, an absolute path); then where the configured
 * prefix puts it (TERN_MONGO_MODULE_INSTALL). A failure to load is a
 * configuration error that says why (dlerror()).
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive/sink.h"

struct loaded {
	pthread_once_t once;
	const struct archive_sink_ops *ops; /* NULL: not loadable */
	char why[512];                      /* room for the three reasons below */
};

/* Process-wide by nature: dlopen() is. Written once, under pthread_once. */
static struct loaded mongo = {.once = PTHREAD_ONCE_INIT};

/* PREFIX/TERN_MONGO_MODULE_RELATIVE for the program PREFIX/DIR/NAME
 * running, into out; "" when /proc/self/exe cannot tell. */
static void installed_path(char *out, size_t len)
{
	out[0] = 0;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return;
	exe[n] = 0;
	for (int up = 0; up < 2; up++) {
		char *slash = strrchr(exe, '/');
		if (!slash)
			return;
		*slash = 0;
	}
	snprintf(out, len, "%s/%s", exe, TERN_MONGO_MODULE_RELATIVE);
}

static void load(void)
{
	/* Only if the user did not choose otherwise. */
	setenv("MONGOC_DISABLE_SHM", "1", 0);
	char installed[PATH_MAX + 64];
	installed_path(installed, sizeof(installed));
	const char *paths[] = {installed, TERN_MONGO_MODULE_BUILD, TERN_MONGO_MODULE_INSTALL};
	char errs[3][120] = {"", "", ""};
	for (size_t i = 0; i < 3; i++) {
		if (!paths[i][0] || access(paths[i], R_OK) != 0) {
			snprintf(errs[i], sizeof(errs[i]), "%s: not found", paths[i]);
			continue;
		}
		void *h = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			snprintf(errs[i], sizeof(errs[i]), "%s", dlerror());
			continue;
		}
		mongo.ops = dlsym(h, "tern_archive_mongo_ops");
		if (mongo.ops)
			return;
		snprintf(errs[i], sizeof(errs[i]), "%s: no tern_archive_mongo_ops", paths[i]);
		dlclose(h);
	}
	snprintf(mongo.why, sizeof(mongo.why), "MongoDB support cannot be loaded (%s; %s; %s)",
	         errs[0], errs[1], errs[2]);
}

static const struct archive_sink_ops *ops(char *err, size_t errlen)
{
	pthread_once(&mongo.once, load);
	if (!mongo.ops)
		snprintf(err, errlen, "%s", mongo.why);
	return mongo.ops;
}

static enum tern_err check(const char *url, char *err, size_t errlen)
{
	const struct archive_sink_ops *o = ops(err, errlen);
	return o ? o->check(url, err, errlen) : TERN_E_CONFIG;
}

static enum tern_err db_open(struct archive_db **out, const char *url, const char *table,
                             bool create, char *err, size_t errlen)
{
	if (!archive_name_ok(table)) {
		snprintf(err, errlen, "'%s' cannot name a collection", table);
		return TERN_E_CONFIG;
	}
	const struct archive_sink_ops *o = ops(err, errlen);
	return o ? o->open(out, url, table, create, err, errlen) : TERN_E_CONFIG;
}

/* A db exists only once the module is loaded, so these find it. */
static enum tern_err db_write(struct archive_db *d, const struct archive_record *recs, size_t n,
                              char *err, size_t errlen)
{
	return mongo.ops->write(d, recs, n, err, errlen);
}

static enum tern_err db_read(struct archive_db *d, const struct archive_query *q,
                             archive_read_fn fn, void *arg, char *err, size_t errlen)
{
	return mongo.ops->read(d, q, fn, arg, err, errlen);
}

static void db_close(struct archive_db *d)
{
	if (d)
		mongo.ops->close(d);
}

const struct archive_sink_ops archive_mongo_ops = {
        .scheme = "mongodb",
        .alias = "mongodb+srv",
        .check = check,
        .open = db_open,
        .write = db_write,
        .read = db_read,
        .close = db_close,
};
