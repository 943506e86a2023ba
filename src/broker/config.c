/*
 * config.c - ternd's configuration: the defaults, the checks of a whole
 * configuration, and the command line; see config.h.
 *
 * Reading mosquitto.conf files is config_load.c's, with the directives in
 * the files named in config_int.h.
 */
#include "broker/config.h"

#include <stdio.h>
#include <string.h>

#include "broker/config_int.h"
#include "store/store.h"
#include "util/log.h"

void config_security_defaults(struct security_cfg *sec)
{
	memset(sec, 0, sizeof(*sec));
	/* Local mode's value; config_from_args() turns it to false when a
	 * listener is configured and the file does not say otherwise. */
	sec->allow_anonymous = true;
	sec->allow_zero_length_clientid = true;
	strcpy(sec->auto_id_prefix, "auto-");
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->workers = 0;
	/* Local mode's value; config_from_args() turns it to false when a
	 * listener is configured and the file does not say otherwise. */
	config_security_defaults(&cfg->sec);
	cfg->max_inflight_messages = 20;
	cfg->max_queued_messages = 1000;
	cfg->max_stall_time = 30;
	cfg->max_subscriptions = 10000;
	cfg->max_topic_levels = 256;
	cfg->max_keepalive = 65535;
	cfg->retain_available = true;
	cfg->max_topic_alias = 10;
	cfg->max_topic_alias_broker = 10; /* mosquitto 2.1's default */
	cfg->connect_timeout = 10;
	cfg->max_connections = -1;
	cfg->check_retain_source = true; /* mosquitto's default */
	cfg->global_max_connections = -1;
	cfg->global_max_clients = -1;
	cfg->max_output_bytes = 8u << 20;
	cfg->set_tcp_nodelay = true;
	cfg->sys_interval = 10;
	snprintf(cfg->cluster_name, sizeof(cfg->cluster_name), "tern");
	cfg->cluster_replicas = 1;
	cfg->connection_messages = true;
	cfg->storage = STORAGE_SQLITE;
	strcpy(cfg->persistence_file, "ternd.db");
	cfg->storage_sync = STORE_SYNC_NORMAL;
	cfg->log_mask = LOG_TYPE_DEFAULT;
	cfg->log_dest = LOG_DEST_STDERR;
	cfg->log_timestamp = true;
}

/* The cluster's directives agree. */
static TERN_MUST_CHECK enum tern_err check_cluster(const struct config *cfg, char *err,
                                                   size_t errlen)
{
	if (!cfg->cluster_nats[0] && (cfg->cluster_cafile[0] || cfg->cluster_certfile[0] ||
	                              cfg->cluster_username[0] || cfg->cluster_credentials[0])) {
		snprintf(err, errlen, "cluster_* directives need cluster_nats");
		return TERN_E_CONFIG;
	}
	if (!cfg->cluster_certfile[0] != !cfg->cluster_keyfile[0]) {
		snprintf(err, errlen, "cluster_certfile and cluster_keyfile go together");
		return TERN_E_CONFIG;
	}
	if (cfg->cluster_certfile[0] && !cfg->cluster_cafile[0]) {
		snprintf(err, errlen, "cluster_certfile needs cluster_cafile (TLS to NATS)");
		return TERN_E_CONFIG;
	}
	return TERN_OK;
}

/* The HTTP listener's directives agree. */
static TERN_MUST_CHECK enum tern_err check_http(const struct config *cfg, char *err, size_t errlen)
{
	if (!cfg->http_certfile[0] != !cfg->http_keyfile[0]) {
		snprintf(err, errlen, "http_certfile and http_keyfile go together");
		return TERN_E_CONFIG;
	}
	if (!cfg->http_port && (cfg->http_certfile[0] || cfg->http_password_file[0])) {
		snprintf(err, errlen,
		         "http_certfile, http_keyfile and http_password_file need "
		         "http_listener");
		return TERN_E_CONFIG;
	}
	return TERN_OK;
}

enum tern_err config_check(const struct config *cfg, char *err, size_t errlen)
{
	enum tern_err rc;
	for (size_t i = 0; i < cfg->n_listeners; i++)
		if ((rc = config_check_listener(cfg, i, err, errlen)))
			return rc;
	if ((rc = check_cluster(cfg, err, errlen)) || (rc = check_http(cfg, err, errlen)))
		return rc;
	rc = config_bridge_check(cfg->bridges, cfg->n_bridges, err, errlen);
	if (rc)
		return rc;
	return config_archive_check(cfg->archives, cfg->n_archives, err, errlen);
}

/* One check of config_check_all(): a problem found is reported. */
static void note(enum tern_err rc, config_report_fn report, void *arg, unsigned *problems,
                 const char *err)
{
	if (!rc)
		return;
	report(arg, err);
	(*problems)++;
}

enum tern_err config_check_all(const struct config *cfg, config_report_fn report, void *arg,
                               unsigned *problems, char *err, size_t errlen)
{
	unsigned before = *problems;
	for (size_t i = 0; i < cfg->n_listeners; i++)
		note(config_check_listener(cfg, i, err, errlen), report, arg, problems, err);
	note(check_cluster(cfg, err, errlen), report, arg, problems, err);
	note(check_http(cfg, err, errlen), report, arg, problems, err);
	/* The bridges are checked together (two may not share a local
	 * client id), and so are the archives: the first problem of each. */
	note(config_bridge_check(cfg->bridges, cfg->n_bridges, err, errlen), report, arg, problems,
	     err);
	note(config_archive_check(cfg->archives, cfg->n_archives, err, errlen), report, arg,
	     problems, err);
	return *problems == before ? TERN_OK : TERN_E_CONFIG;
}

/* --test-config's report: each problem on a line of its own, as ternd's
 * other errors are written. */
static void report_problem(void *arg, const char *problem)
{
	(void)arg;
	fprintf(stderr, "ternd: %s\n", problem);
}

static void usage(FILE *out)
{
	fputs("Usage: ternd [-c FILE] [-p PORT] [-b ADDRESS] [--workers N] [--storage "
	      "memory|sqlite]\n"
	      "             [--db FILE] [-v]\n"
	      "  -c, --config-file FILE  read mosquitto.conf-style directives from FILE\n"
	      "  -p, --port PORT         listen on PORT (default 1883)\n"
	      "  -b, --bind ADDRESS      listen on ADDRESS only\n"
	      "  -w, --workers N         worker threads (default: one per core)\n"
	      "      --storage KIND      sqlite (durable, the default) or memory\n"
	      "      --db FILE           the SQLite database (default ./ternd.db)\n"
	      "  -v, --verbose           log everything (log_type all)\n"
	      "      --test-config       read and check the configuration file, then exit\n"
	      "  -h, --help              this help\n"
	      "  -V, --version           print the version\n",
	      out);
}

enum tern_err config_from_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen,
                               int *exit_code)
{
	*exit_code = 1;
	struct config_ctx c = {.cfg = cfg, .file = "command line", .err = err, .errlen = errlen};
	/* --test-config names every problem of the files, not the first
	 * only, so that one run is enough to mend them all. */
	bool test_config = false;
	for (int i = 1; i < argc; i++)
		test_config |= strcmp(argv[i], "--test-config") == 0;
	unsigned problems = 0;
	/* The file first, so that flags override it whatever their order. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config-file") == 0) {
			if (i + 1 >= argc) {
				snprintf(err, errlen, "%s needs a file", argv[i]);
				return TERN_E_INVALID;
			}
			enum tern_err rc =
			        test_config ? config_load_all(cfg, argv[i + 1], report_problem,
			                                      NULL, &problems, err, errlen)
			                    : config_load(cfg, argv[i + 1], err, errlen);
			/* Reported problems go on to the checks of the whole. */
			if (rc && !(test_config && rc == TERN_E_CONFIG))
				return TERN_E_INVALID;
			i++;
		}
	}
	/* A listener from the files (listener, port, bind_address, or a
	 * listener directive such as certfile, which opens the default one on
	 * every address, as in mosquitto). */
	bool configured = cfg->n_listeners > 0;
	bool have_file = false;
	int port = -1;
	const char *bind = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config-file") == 0) {
			have_file = true;
			i++;
		} else if (strcmp(a, "--test-config") == 0) {
			/* Seen above. */
		} else if (strcmp(a, "-p") == 0 || strcmp(a, "--port") == 0) {
			if (config_parse_u64(&c, a, v, 1, 65535, &n))
				return TERN_E_INVALID;
			port = (int)n;
			i++;
		} else if (strcmp(a, "-b") == 0 || strcmp(a, "--bind") == 0) {
			if (!v) {
				snprintf(err, errlen, "%s needs an address", a);
				return TERN_E_INVALID;
			}
			bind = v;
			i++;
		} else if (strcmp(a, "-w") == 0 || strcmp(a, "--workers") == 0) {
			if (config_parse_u64(&c, a, v, 0, 256, &n))
				return TERN_E_INVALID;
			cfg->workers = (unsigned)n;
			i++;
		} else if (strcmp(a, "--storage") == 0) {
			if (v && strcmp(v, "memory") == 0)
				cfg->storage = STORAGE_MEMORY;
			else if (v && strcmp(v, "sqlite") == 0)
				cfg->storage = STORAGE_SQLITE;
			else {
				snprintf(err, errlen, "--storage: expected memory or sqlite");
				return TERN_E_INVALID;
			}
			i++;
		} else if (strcmp(a, "--db") == 0) {
			const char *slash = v ? strrchr(v, '/') : NULL;
			size_t dirlen = slash ? (size_t)(slash - v) : 0;
			if (!v || dirlen >= sizeof(cfg->persistence_location) ||
			    strlen(slash ? slash + 1 : v) >= sizeof(cfg->persistence_file) ||
			    !(slash ? slash[1] : v[0])) {
				snprintf(err, errlen, "--db needs a file path");
				return TERN_E_INVALID;
			}
			memcpy(cfg->persistence_location, v, dirlen);
			cfg->persistence_location[dirlen] = 0;
			if (slash && dirlen == 0)
				strcpy(cfg->persistence_location, "/");
			strcpy(cfg->persistence_file, slash ? slash + 1 : v);
			cfg->storage = STORAGE_SQLITE;
			i++;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
			cfg->log_mask = LOG_TYPE_ALL;
		} else if (strcmp(a, "-d") == 0 || strcmp(a, "--daemon") == 0) {
			snprintf(err, errlen,
			         "%s: ternd does not daemonize; use your service manager", a);
			return TERN_E_INVALID;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			*exit_code = 0;
			return TERN_E_INVALID;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf("ternd %s\n", TERN_VERSION);
			*exit_code = 0;
			return TERN_E_INVALID;
		} else {
			snprintf(err, errlen, "unknown option '%s' (see ternd --help)", a);
			return TERN_E_INVALID;
		}
	}
	if (bind && strlen(bind) >= sizeof(cfg->listeners[0].bind)) {
		snprintf(err, errlen, "address '%s' is too long", bind);
		return TERN_E_INVALID;
	}
	if (configured) {
		/* The flags override the default listener's port and address. */
		if (port >= 0)
			cfg->listeners[0].port = (uint16_t)port;
		if (bind)
			strcpy(cfg->listeners[0].bind, bind);
	} else if (config_add_listener(&c, port >= 0 ? (uint16_t)port : 1883,
	                               bind ? bind : "127.0.0.1")) {
		/* Without a configured listener, -p only picks the port: the
		 * broker listens on loopback, as mosquitto 2 does in its
		 * "local only mode", so that an unconfigured broker is not
		 * open to the network. */
		return TERN_E_INVALID;
	}
	/* Anonymous clients are welcome on a broker only this machine can
	 * reach; once the broker is open to the network, they are refused
	 * unless allow_anonymous says otherwise (mosquitto 2's default). */
	cfg->local_only = !configured && config_is_loopback(cfg->listeners[0].bind);
	if (!cfg->sec.allow_anonymous_set)
		cfg->sec.allow_anonymous = cfg->local_only;
	for (size_t i = 0; i < cfg->n_listeners; i++)
		if (!cfg->listeners[i].sec.allow_anonymous_set)
			cfg->listeners[i].sec.allow_anonymous = cfg->local_only;
	if (test_config) {
		/* Every problem, reported as it is found. */
		enum tern_err reported =
		        config_check_all(cfg, report_problem, NULL, &problems, err, errlen);
		(void)reported;
	} else if (config_check(cfg, err, errlen)) {
		return TERN_E_INVALID;
	}
	if (test_config) {
		/* mosquitto 2.1's --test-config: the file is read and
		 * checked as for a start (files it names are opened only
		 * then), and ternd exits. */
		if (!have_file) {
			snprintf(err, errlen, "--test-config: give the file to test with -c FILE");
			return TERN_E_INVALID;
		}
		if (problems) {
			snprintf(err, errlen, "%u problem%s in the configuration", problems,
			         problems == 1 ? "" : "s");
			return TERN_E_INVALID;
		}
		puts("Configuration file is OK.");
		*exit_code = 0;
		return TERN_E_INVALID;
	}
	return TERN_OK;
}
