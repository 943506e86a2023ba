/*
 * usage.c - the --help texts of `tern pub` and `tern sub`.
 *
 * Kept apart from the parser so that the option code reads without
 * screens of prose in between. The options and their meanings are
 * mosquitto_pub's and mosquitto_sub's; where tern differs, the text says
 * so.
 */
#include "tools.h"

static const char common[] =
        " -A : bind the outgoing socket to this host/ip address.\n"
        " -c : disable clean session / clean start: keep the session (and, in MQTT v5,\n"
        "      let it never expire unless -x says otherwise). Needs -i.\n"
        " -d : print debug messages (to stderr).\n"
        " -D : MQTT v5 property: -D command identifier value, or\n"
        "      -D command user-property name value. Commands: connect, will, disconnect,\n"
        "      and publish (pub) or subscribe / unsubscribe (sub).\n"
        " -h : broker host to connect to. Defaults to localhost.\n"
        " -i : client id. Defaults to a random id (v3.1/v3.1.1) or one the broker\n"
        "      assigns (v5).\n"
        " -I : client id prefix; the process id is appended.\n"
        " -k : keep alive in seconds. Defaults to 60; 0 disables it.\n"
        " -L : mqtt://[username[:password]@]host[:port]/topic\n"
        " -p : network port. Defaults to 1883.\n"
        " -P : password.\n"
        " -q : quality of service: 0, 1 or 2. Defaults to 0.\n"
        " -t : topic.\n"
        " -u : username.\n"
        " -V : MQTT version: mqttv5, mqttv311 or mqttv31 (or 5, 311, 31).\n"
        "      Defaults to mqttv311.\n"
        " -x : session expiry interval in seconds (MQTT v5), or -1 for never.\n"
        "      Defaults to -1 with -c, 0 otherwise.\n"
        " --help : display this message.\n"
        " --nodelay : disable Nagle's algorithm.\n"
        " --quiet : do not print error messages once connected.\n"
        " --will-topic : topic of the will, sent by the broker if the connection is\n"
        "                lost without DISCONNECT.\n"
        " --will-payload : payload of the will (default: empty).\n"
        " --will-qos : QoS of the will.\n"
        " --will-retain : make the will retained.\n"
        "\n"
        "Not supported (yet): TLS options, --proxy, --unix, -S, config files.\n";

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
	      "                [--will-topic [--will-payload payload] [--will-qos qos] "
	      "[--will-retain]]\n"
	      "                [-V version] [-D command identifier value]\n"
	      "       tern pub --help\n"
	      "\n"
	      " -f : send the contents of a file as the message.\n"
	      " -l : read messages from stdin, sending a separate message for each line.\n"
	      " -m : message payload to send.\n"
	      " -M : the maximum number of unacknowledged QoS 1/2 messages with -l. "
	      "Defaults to 20.\n"
	      " -n : send a null (zero length) message.\n"
	      " -r : message should be retained.\n"
	      " -s : read message from stdin, sending the entire input as a message.\n"
	      " --repeat : send the message (-m, -f, -s, -n) this many times.\n"
	      " --repeat-delay : seconds to wait between repeats.\n",
	      f);
	fputs(common, f);
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
	      "                [--will-topic [--will-payload payload] [--will-qos qos] "
	      "[--will-retain]]\n"
	      "                [-V version] [-D command identifier value]\n"
	      "       tern sub --help\n"
	      "\n"
	      " -C : disconnect and exit after receiving msg_count messages.\n"
	      " -E : exit once all subscriptions have been acknowledged by the broker.\n"
	      " -F : output format: %t topic, %p payload, %q QoS, %r retain, %m message id,\n"
	      "      %l length, %x / %X hex payload, %I ISO-8601 time, %U Unix time,\n"
	      "      %j / %J JSON, v5: %A topic alias, %C content type, %D correlation data,\n"
	      "      %E message expiry, %F payload format, %P user properties,\n"
	      "      %R response topic, %S subscription identifier; @X strftime fields,\n"
	      "      @N nanoseconds; \\n \\t \\0 \\a \\e \\r \\v \\\\ escapes. See 'man "
	      "mosquitto_sub'.\n"
	      " -N : do not add an end of line character when printing the payload.\n"
	      " -R : do not print stale messages (those with retain set).\n"
	      " -T : topic filter to leave out of the output. May be repeated.\n"
	      " -U : unsubscribe from a topic (after subscribing). May be repeated.\n"
	      " -v : print the topic before each payload.\n"
	      " -W : exit (status 27) after this many seconds.\n"
	      " --pretty : lay out %j / %J JSON over several lines.\n"
	      " --random-filter : print only this percentage of messages.\n"
	      " --retained-only : print only retained messages; exit at the first fresh one.\n"
	      " --remove-retained : clear every retained message received (except -T ones).\n"
	      " --retain-as-published : subscribe with the v5 retain-as-published option.\n",
	      f);
	fputs(common, f);
}
