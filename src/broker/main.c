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

#include "broker/broker.h"

/* `user NAME`: once the ports are bound and the files open, a broker
 * started as root goes on as that user, as mosquitto does. */
static int drop_privileges(const struct tern_config *cfg)
{
	if (!cfg->user[0] || geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(cfg->user);
	if (!pw) {
		fprintf(stderr, "ternd: user %s does not exist\n", cfg->user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) || setgid(pw->pw_gid) || setuid(pw->pw_uid)) {
		fprintf(stderr, "ternd: cannot become user %s: %s\n", cfg->user, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct tern_config cfg;
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
	if (cfg.pid_file[0]) {
		FILE *f = fopen(cfg.pid_file, "w");
		if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0) {
			fprintf(stderr, "ternd: cannot write pid_file %s: %s\n", cfg.pid_file,
			        strerror(errno));
			if (f)
				fclose(f);
			broker_free(b);
			free(b);
			return 1;
		}
		fclose(f);
	}
	if (drop_privileges(&cfg)) {
		broker_free(b);
		free(b);
		return 1;
	}
	if (broker_start(b)) {
		broker_free(b);
		free(b);
		return 1;
	}
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			/* Password and ACL files are reloaded without dropping
			 * anyone's connection. */
			auth_reload(b);
			continue;
		}
		tern_log_write(&b->log, TERN_LOG_NOTICE, "ternd received signal %d, stopping.",
		               sig);
		break;
	}
	broker_stop(b);
	broker_free(b);
	free(b);
	if (cfg.pid_file[0])
		unlink(cfg.pid_file);
	return 0;
}
