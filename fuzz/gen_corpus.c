/*
 * gen_corpus.c - writes the seed corpus of fuzz_decode: one valid packet of
 * every type for each protocol level, plus a few whole sessions, each file
 * prefixed with the level byte fuzz_decode reads (0: 3.1, 1: 3.1.1, 2: 5.0).
 *
 * Not a fuzz target (its name does not start with fuzz_). Rebuild the
 * committed corpus with:
 *   cc -std=c11 -Iinclude -Isrc src/proto/[a-z]*.c fuzz/gen_corpus.c -o /tmp/gen_corpus
 *   /tmp/gen_corpus fuzz/corpus/fuzz_decode
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/codec.h"

#define B(str) ((struct tern_bytes){(const uint8_t *)(str), sizeof(str) - 1})

static const char *outdir;

/* Appends p encoded for version to buf[*len..). */
static void put(uint8_t *buf, size_t *len, const struct tern_packet *p, uint8_t version)
{
	size_t n;
	if (tern_encode_packet(p, version, buf + *len, 4096 - *len, &n) != TERN_OK) {
		fprintf(stderr, "gen_corpus: cannot encode %s v%u\n", tern_packet_name(p->type),
		        version);
		exit(1);
	}
	*len += n;
}

/* Writes buf[0..len) to outdir/name. */
static void save(const char *name, const uint8_t *buf, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* Fills props with a few properties the packet type allows in 5.0. */
static void props_for(struct tern_packet *p, uint8_t *user, size_t cap)
{
	static const uint32_t ids[] = {7, 300};
	size_t len = 0;
	tern_user_prop_encode(user, cap, &len, B("k"), B("v"));
	struct tern_props *pr = NULL;
	switch (p->type) {
	case TERN_CONNECT:
		pr = &p->u.connect.props;
		pr->present = TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY) |
		              TERN_PROP_BIT(TERN_PROP_RECEIVE_MAXIMUM) |
		              TERN_PROP_BIT(TERN_PROP_AUTH_METHOD) |
		              TERN_PROP_BIT(TERN_PROP_AUTH_DATA);
		pr->session_expiry = 60;
		pr->receive_maximum = 10;
		pr->auth_method = B("PLAIN");
		pr->auth_data = B("\x00u\x00p");
		p->u.connect.will_props.present =
		        TERN_PROP_BIT(TERN_PROP_WILL_DELAY) | TERN_PROP_BIT(TERN_PROP_CONTENT_TYPE);
		p->u.connect.will_props.will_delay = 5;
		p->u.connect.will_props.content_type = B("text/plain");
		break;
	case TERN_CONNACK:
		pr = &p->u.connack.props;
		pr->present = TERN_PROP_BIT(TERN_PROP_MAXIMUM_QOS) |
		              TERN_PROP_BIT(TERN_PROP_ASSIGNED_CLIENT_ID) |
		              TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS_MAXIMUM);
		pr->maximum_qos = 1;
		pr->assigned_client_id = B("auto-1");
		pr->topic_alias_maximum = 10;
		break;
	case TERN_PUBLISH:
		pr = &p->u.publish.props;
		pr->present = TERN_PROP_BIT(TERN_PROP_PAYLOAD_FORMAT) |
		              TERN_PROP_BIT(TERN_PROP_MESSAGE_EXPIRY) |
		              TERN_PROP_BIT(TERN_PROP_RESPONSE_TOPIC) |
		              TERN_PROP_BIT(TERN_PROP_CORRELATION_DATA) |
		              TERN_PROP_BIT(TERN_PROP_TOPIC_ALIAS);
		pr->payload_format = 1;
		pr->message_expiry = 3600;
		pr->response_topic = B("reply/to");
		pr->correlation_data = B("\x01\x02");
		pr->topic_alias = 3;
		pr->sub_ids = ids;
		pr->n_sub_ids = 2;
		break;
	case TERN_SUBSCRIBE:
		pr = &p->u.subscribe.props;
		pr->sub_ids = ids;
		pr->n_sub_ids = 1;
		break;
	case TERN_UNSUBSCRIBE:
		pr = &p->u.unsubscribe.props;
		break;
	case TERN_PUBACK:
	case TERN_PUBREC:
	case TERN_PUBREL:
	case TERN_PUBCOMP:
		pr = &p->u.ack.props;
		pr->present = TERN_PROP_BIT(TERN_PROP_REASON_STRING);
		pr->reason_string = B("ok");
		break;
	case TERN_SUBACK:
	case TERN_UNSUBACK:
		pr = &p->u.subres.props;
		pr->present = TERN_PROP_BIT(TERN_PROP_REASON_STRING);
		pr->reason_string = B("done");
		break;
	case TERN_DISCONNECT:
	case TERN_AUTH:
		pr = &p->u.reasoned.props;
		pr->present = TERN_PROP_BIT(TERN_PROP_REASON_STRING);
		pr->reason_string = B("bye");
		if (p->type == TERN_AUTH) {
			pr->present |= TERN_PROP_BIT(TERN_PROP_AUTH_METHOD);
			pr->auth_method = B("SCRAM-SHA-1");
		}
		break;
	default:
		return;
	}
	pr->user_raw = (struct tern_bytes){user, (uint32_t)len};
}

int main(int argc, char **argv)
{
	static const uint8_t versions[] = {TERN_V31, TERN_V311, TERN_V5};
	static const struct tern_sub_entry entries[] = {
	        {.filter = {(const uint8_t *)"a/+/c", 5}, .qos = 1},
	        {.filter = {(const uint8_t *)"$share/g/t/#", 12}, .qos = 2, .retain_handling = 1},
	};
	static const struct tern_bytes filters[] = {{(const uint8_t *)"a/#", 3}};
	static const uint8_t reasons[] = {0x00, 0x01};

	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];

	for (size_t v = 0; v < sizeof(versions); v++) {
		uint8_t ver = versions[v];
		uint8_t session[4096];
		size_t slen = 0;
		session[slen++] = (uint8_t)v;
		for (int t = TERN_CONNECT; t <= TERN_AUTH; t++) {
			if (t == TERN_AUTH && ver != TERN_V5)
				continue;
			struct tern_packet p;
			memset(&p, 0, sizeof(p));
			p.type = (enum tern_packet_type)t;
			uint8_t user[64];
			switch (t) {
			case TERN_CONNECT:
				p.u.connect.clean_start = true;
				p.u.connect.keep_alive = 30;
				p.u.connect.client_id = B("fuzz-client");
				p.u.connect.will = true;
				p.u.connect.will_qos = 1;
				p.u.connect.will_topic = B("will/topic");
				p.u.connect.will_payload = B("gone");
				p.u.connect.has_username = true;
				p.u.connect.username = B("user");
				p.u.connect.has_password = true;
				p.u.connect.password = B("pass");
				break;
			case TERN_CONNACK:
				p.u.connack.session_present = true;
				break;
			case TERN_PUBLISH:
				p.u.publish.qos = 1;
				p.u.publish.retain = true;
				p.u.publish.packet_id = 1;
				p.u.publish.topic = B("sensors/temp");
				p.u.publish.payload = B("21.5");
				break;
			case TERN_PUBACK:
			case TERN_PUBREC:
			case TERN_PUBREL:
			case TERN_PUBCOMP:
				p.u.ack.packet_id = 1;
				break;
			case TERN_SUBSCRIBE:
				p.u.subscribe.packet_id = 2;
				p.u.subscribe.entries = entries;
				p.u.subscribe.count = 2;
				break;
			case TERN_UNSUBSCRIBE:
				p.u.unsubscribe.packet_id = 3;
				p.u.unsubscribe.filters = filters;
				p.u.unsubscribe.count = 1;
				break;
			case TERN_SUBACK:
			case TERN_UNSUBACK:
				p.u.subres.packet_id = 2;
				p.u.subres.reasons = reasons;
				p.u.subres.count = t == TERN_SUBACK ? 2 : 1;
				break;
			case TERN_AUTH:
				p.u.reasoned.reason = TERN_RC_CONTINUE_AUTHENTICATION;
				break;
			default:
				break;
			}
			uint8_t buf[4096];
			size_t len = 0;
			char name[64];
			buf[len++] = (uint8_t)v;
			put(buf, &len, &p, ver);
			snprintf(name, sizeof(name), "v%u-%s", ver, tern_packet_name(p.type));
			save(name, buf, len);
			put(session, &slen, &p, ver);
			if (ver == TERN_V5 && t != TERN_PINGREQ && t != TERN_PINGRESP) {
				props_for(&p, user, sizeof(user));
				len = 1;
				put(buf, &len, &p, ver);
				snprintf(name, sizeof(name), "v5-%s-props",
				         tern_packet_name(p.type));
				save(name, buf, len);
			}
		}
		char name[32];
		snprintf(name, sizeof(name), "v%u-session", ver);
		save(name, session, slen);
	}
	return 0;
}
