/*
 * main.c - ternd: read the configuration, start the broker, wait for a
 * signal, stop cleanly.
 *
 * Signals are blocked in every thread and taken synchronously here with
 * sigwait(), so no handler touches broker state.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker/broker.h"

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
	return 0;
}
