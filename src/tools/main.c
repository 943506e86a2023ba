/*
 * main.c - the `tern` command: dispatch to a subcommand.
 *
 *   tern pub ...    publish (pub.c), like mosquitto_pub
 *   tern sub ...    subscribe and print (sub.c), like mosquitto_sub
 *   tern bench ...  load generator and benchmarks (bench*.c)
 *   tern passwd ... manage a password file (passwd.c), like mosquitto_passwd
 *   tern history .. read an archive back (history.c, docs/archive.md)
 *   tern --help | --version
 *
 * Each subcommand gets argv from its own name on, so that it parses its
 * options as a standalone program would. Unknown subcommands and options
 * exit with status 1 and a message naming them.
 */
#include <string.h>

#include "bench.h"
#include "tools.h"

static void usage(FILE *f)
{
	fputs("tern is the command-line client of the tern MQTT broker.\n"
	      "tern version " TERN_LIB_VERSION ".\n"
	      "\n"
	      "Usage: tern pub [options]   publish a message (like mosquitto_pub)\n"
	      "       tern sub [options]   subscribe and print messages (like mosquitto_sub)\n"
	      "       tern bench MODE [options]   load generator: conn, pub, sub, run\n"
	      "       tern passwd [options] manage a password file (like mosquitto_passwd)\n"
	      "       tern history --sink URL [options]  print what an archive of ternd holds\n"
	      "       tern --help          this text\n"
	      "       tern --version       print the version\n"
	      "\n"
	      "See 'tern pub --help', 'tern sub --help' and 'tern bench --help' for the options.\n",
	      f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	if (strcmp(argv[1], "pub") == 0)
		return pub_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "sub") == 0)
		return sub_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "bench") == 0)
		return bench_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "passwd") == 0)
		return passwd_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "history") == 0)
		return history_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("tern version %s (libtern %s)\n", TERN_VERSION, TERN_LIB_VERSION);
		return 0;
	}
	fprintf(stderr, "Error: unknown command '%s'.\nUse 'tern --help' to see usage.\n", argv[1]);
	return 1;
}
