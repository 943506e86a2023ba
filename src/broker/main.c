/*
 * main.c - ternd: read the configuration, start the broker, wait for a
 * signal, stop cleanly.
 *
 * Signals are blocked in every thread and taken synchronously here with
 * sigwait(), so no handler touches broker state.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/config.h"
#include "broker/sd_notify.h"
#include "http/http.h"
#include "util/log.h"

/* `user NAME`: once the ports are bound and the files open, a broker
 * started as root goes on as that user, as mosquitto does. */
static TERN_MUST_CHECK enum tern_err drop_privileges(const struct config *cfg)
{
	if (!cfg->user[0] || geteuid() != 0)
		return TERN_OK;
	struct passwd *pw = getpwnam(cfg->user);
	if (!pw) {
		fprintf(stderr, "ternd: user %s does not exist\n", cfg->user);
		return TERN_E_CONFIG;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) || setgid(pw->pw_gid) || setuid(pw->pw_uid)) {
		fprintf(stderr, "ternd: cannot become user %s: %s\n", cfg->user, strerror(errno));
		return TERN_E_SYS;
	}
	return TERN_OK;
}

/* Says who can reach the broker, and why, before anyone connects: local
 * only mode (as mosquitto 2 logs it), or a broker nobody can log in to. */
static void log_exposure(const struct broker *b)
{
	const struct config *cfg = &b->cfg;
	const struct listener_cfg *l = &cfg->listeners[0];
	if (cfg->local_only) {
		log_write(&b->log, LOG_TYPE_WARNING,
		          "Starting in local only mode: no listener is configured, so "
		          "ternd listens on %s port %u and only clients on this machine "
		          "can connect%s.",
		          l->bind, l->port,
		          config_allow_anonymous(cfg, 0) ? ", without a username" : "");
		log_write(&b->log, LOG_TYPE_WARNING,
		          "To allow remote access, define a listener in a configuration "
		          "file (ternd -c FILE), e.g. 'listener 1883 0.0.0.0', with "
		          "password_file (anonymous clients are then refused unless "
		          "'allow_anonymous true').");
		return;
	}
	/* Per listener: with per_listener_settings (or
	 * listener_allow_anonymous) one may be closed and another open. */
	for (size_t i = 0; i < cfg->n_listeners; i++) {
		const struct security_cfg *sec = config_security(cfg, i);
		if (config_allow_anonymous(cfg, i) || config_allow_anonymous_set(cfg, i) ||
		    sec->password_file[0] || cfg->listeners[i].use_identity_as_username)
			continue;
		char where[48] = "";
		if (cfg->n_listeners > 1)
			snprintf(where, sizeof(where), " to the listener on port %u",
			         cfg->listeners[i].port);
		log_write(&b->log, LOG_TYPE_WARNING,
		          "Warning: no client can connect%s: allow_anonymous defaults to false "
		          "once a listener is configured (or -b names an address other than "
		          "loopback), and there is no password_file. Set 'allow_anonymous "
		          "true', or password_file.",
		          where);
	}
}

/* Tells the service manager (Type=notify) where ternd is; a failure is
 * logged, and ternd goes on: systemd then times the start out itself. */
static void notify(struct broker *b, const char *state, enum tern_err rc)
{
	if (rc)
		log_write(&b->log, LOG_TYPE_WARNING, "cannot notify NOTIFY_SOCKET of %s: %s", state,
		          rc == TERN_E_SYS ? strerror(errno) : "not a socket name");
}

int main(int argc, char **argv)
{
	struct config cfg;
	config_defaults(&cfg);
	char err[512] = "";
	int code = 1;
	if (config_from_args(&cfg, argc, argv, err, sizeof(err), &code)) {
		if (err[0])
			fprintf(stderr, "ternd: %s\n", err);
		return code;
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct broker *b = malloc(sizeof(*b));
	if (!b) {
		fprintf(stderr, "ternd: out of memory\n");
		return 1;
	}
	if (broker_init(b, &cfg)) {
		free(b);
		return 1;
	}
	log_exposure(b);
	/* The HTTP listener binds its port and reads its key and password
	 * files now, while ternd may still be root. */
	struct http_server *http = NULL;
	if (http_open(b, &http)) {
		broker_free(b);
		free(b);
		return 1;
	}
	if (cfg.pid_file[0]) {
		FILE *f = fopen(cfg.pid_file, "w");
		if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0) {
			fprintf(stderr, "ternd: cannot write pid_file %s: %s\n", cfg.pid_file,
			        strerror(errno));
			if (f)
				fclose(f);
			http_close(http);
			broker_free(b);
			free(b);
			return 1;
		}
		fclose(f);
	}
	if (drop_privileges(&cfg) != TERN_OK) {
		http_close(http);
		broker_free(b);
		free(b);
		return 1;
	}
	if (broker_start(b)) {
		http_close(http);
		broker_free(b);
		free(b);
		return 1;
	}
	if (http_start(http)) {
		http_close(http);
		broker_stop(b);
		broker_free(b);
		free(b);
		return 1;
	}
	/* Every listener (the HTTP one too) accepts now. */
	notify(b, "READY=1", sd_notify_send("READY=1"));
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			/* Password and ACL files (http_password_file too) are
			 * reloaded without dropping anyone's connection; a bad
			 * file is logged and the old one stays. */
			notify(b, "RELOADING=1", sd_notify_reloading());
			enum tern_err logged = http_reload(b, http);
			(void)logged;
			notify(b, "READY=1", sd_notify_send("READY=1"));
			continue;
		}
		log_write(&b->log, LOG_TYPE_NOTICE, "ternd received signal %d, stopping.", sig);
		notify(b, "STOPPING=1", sd_notify_send("STOPPING=1"));
		break;
	}
	/* Its requests in progress wait for the workers: it stops first. */
	http_close(http);
	broker_stop(b);
	broker_free(b);
	free(b);
	if (cfg.pid_file[0])
		unlink(cfg.pid_file);
	return 0;
}
