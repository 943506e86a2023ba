/*
 * usage.c - the --help texts of `tern pub`, `tern sub` and `tern bench`.
 *
 * Each is an introduction and a synopsis written here, then the list of
 * options printed from the table of options.c (options_usage()), so that
 * an option's help is declared with the option. The options and their
 * meanings are mosquitto_pub's and mosquitto_sub's; where tern differs,
 * the text says so.
 */
#include "bench.h"
#include "tools.h"

void usage_pub(FILE *f)
{
	fputs("tern pub publishes a message on a topic and exits.\n"
	      "tern version " TERN_LIB_VERSION ".\n"
	      "\n"
	      "Usage: tern pub {[-h host] [-p port] [-u username] [-P password] -t topic | -L "
	      "URL}\n"
	      "                {-f file | -l | -n | -m message | -s}\n"
	      "                [-c] [-k keepalive] [-q qos] [-r] [--repeat N] [--repeat-delay "
	      "time]\n"
	      "                [-x session-expiry] [-A bind_address] [--nodelay]\n"
	      "                [-i id] [-I id_prefix] [-d] [--quiet] [-M max_inflight]\n"
	      "                [{--cafile file | --capath dir | --tls-use-os-certs}\n"
	      "                 [--cert file --key file] [--insecure]]\n"
	      "                [--will-topic [--will-payload payload] [--will-qos qos] "
	      "[--will-retain]]\n"
	      "                [-V version] [-D command identifier value]\n"
	      "       tern pub --help\n",
	      f);
	options_usage(f, CMD_PUB);
}

void usage_sub(FILE *f)
{
	fputs("tern sub subscribes to topics and prints the messages it receives.\n"
	      "tern version " TERN_LIB_VERSION ".\n"
	      "\n"
	      "Usage: tern sub {[-h host] [-p port] [-u username] [-P password] -t topic ... "
	      "| -L URL [-t topic]}\n"
	      "                [-c] [-k keepalive] [-q qos] [-x session-expiry]\n"
	      "                [-C msg_count] [-E] [-R] [--retained-only] [--remove-retained]\n"
	      "                [-T filter_out ...] [-U topic ...] [-F format] [--pretty]\n"
	      "                [-W timeout_secs] [-A bind_address] [--nodelay]\n"
	      "                [-i id] [-I id_prefix] [-d] [-N] [--quiet] [-v]\n"
	      "                [{--cafile file | --capath dir | --tls-use-os-certs}\n"
	      "                 [--cert file --key file] [--insecure]]\n"
	      "                [--will-topic [--will-payload payload] [--will-qos qos] "
	      "[--will-retain]]\n"
	      "                [-V version] [-D command identifier value]\n"
	      "       tern sub --help\n",
	      f);
	options_usage(f, CMD_SUB);
}

static const char bench_intro[] =
        "Usage: tern bench conn [options]   open connections at a rate and hold them\n"
        "       tern bench pub [options]    publishers (rate-limited or flat out)\n"
        "       tern bench sub [options]    subscribers on a filter\n"
        "       tern bench run [options]    publishers and subscribers in one process:\n"
        "                                   delivered messages/s, end-to-end latency,\n"
        "                                   lost and duplicated messages\n"
        "\n"
        "Every run must be bounded: give --count and/or --duration (conn: --duration).\n";

static const char bench_outro[] =
        "A progress line (connections, sent/s, received/s, errors) is printed to stderr\n"
        "every second when it is a terminal. Loopback testing is your responsibility:\n"
        "do not point this at a broker you do not own.\n";

void usage_bench(FILE *f)
{
	fputs(bench_intro, f);
	options_usage(f, CMD_BENCH);
	fputs("\n", f);
	fputs(bench_outro, f);
}
