/*
 * pubsub.c - libtern in sixty lines: connect, subscribe, publish a QoS 1
 * message and receive it back, all with the blocking API.
 *
 * Build against an installed libtern:  make  (uses pkg-config tern)
 * Run:  ./pubsub [host [port]]         (defaults: 127.0.0.1 1883)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tern/tern.h>

/* Prints what failed and exits. */
static void check(enum tern_err err, const char *what)
{
	if (err != TERN_OK) {
		fprintf(stderr, "pubsub: %s: %s\n", what, tern_strerror(err));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	struct tern_client *c;
	struct tern_connect_opts opts;
	uint8_t reason;

	/* Options start from the defaults; set only what differs. */
	tern_connect_opts_init(&opts);
	opts.host = argc > 1 ? argv[1] : "127.0.0.1";
	opts.port = (uint16_t)(argc > 2 ? atoi(argv[2]) : 1883);
	opts.client_id = "tern-example";

	/* No callbacks: blocking use only, messages wait for receive(). */
	check(tern_client_new(&c, NULL, NULL), "new");
	check(tern_client_connect(c, &opts, -1, &reason, NULL), "connect");

	/* Subscribe at QoS 1; granted[0] gets the broker's answer. */
	const char *filter = "tern/example/#";
	struct tern_sub_entry sub = {.filter = {(const uint8_t *)filter, strlen(filter)}, .qos = 1};
	uint8_t granted[1];
	check(tern_client_subscribe_wait(c, &sub, 1, NULL, 5000, granted), "subscribe");

	/* Publish at QoS 1 and wait for the PUBACK. */
	const char *text = "hello from libtern";
	struct tern_publish_args pub = {
	        .topic = "tern/example/greeting",
	        .payload = text,
	        .payload_len = strlen(text),
	        .qos = 1,
	};
	check(tern_client_publish_wait(c, &pub, 5000, &reason), "publish");

	/* Our own message comes back through the subscription. */
	struct tern_message *msg;
	check(tern_client_receive(c, &msg, 5000), "receive");
	printf("%s (QoS %u): %.*s\n", msg->topic, (unsigned)msg->qos, (int)msg->payload_len,
	       (const char *)msg->payload);
	tern_message_free(msg);

	/* A clean DISCONNECT: the broker drops our will (we have none). */
	check(tern_client_disconnect(c, 0, NULL), "disconnect");
	tern_client_free(c);
	return 0;
}
