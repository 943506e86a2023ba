/*
 * fuzz_decode.c - libFuzzer target for the whole decoder.
 *
 * Input: one byte choosing the protocol level (3, 4 or 5: byte % 3 + 3),
 * then a stream of packets, as a connection would deliver them. The loop
 * decodes fixed header after fixed header; each body is copied into a
 * buffer of exactly its size so AddressSanitizer catches any read past it.
 * A CONNECT that decodes switches the stream to the level it carries.
 *
 * For every packet that decodes, the target walks every iterator, then
 * re-encodes the packet (rebuilding the arrays the encoder wants from the
 * iterators), checks tern_packet_size() and the PUBLISH header encoder
 * agree with the output, decodes the output again and compares the
 * important fields. Any disagreement abort()s, which libFuzzer reports as a
 * crash. It also checks two matching invariants on every topic name: a
 * topic matches itself, and "#" matches it unless it starts with '$'.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_decode: check failed at line %d: %s\n", __LINE__,    \
			        #cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Heap blocks that back one rebuilt packet. */
struct scratch {
	uint32_t *sub_ids;
	uint8_t *user;
	struct tern_sub_entry *entries;
	struct tern_bytes *filters;
};

static void *xmalloc(size_t n)
{
	void *p = malloc(n > 0 ? n : 1);
	if (p == NULL)
		abort();
	return p;
}

static bool bytes_eq(struct tern_bytes a, struct tern_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/* Walks the repeated properties of decoded props, checking the counts, and
 * fills the encoder's fields (sub_ids, user_raw) in *e. */
/* The blocks go to *s, which the caller frees. */
static void rebuild_props(const struct tern_props *d, struct tern_props *e, struct scratch *s)
{
	size_t cur = 0;
	uint32_t id, n = 0;
	uint32_t *ids = xmalloc(sizeof(uint32_t) * (d->n_sub_ids + 1));
	while (tern_props_next_sub_id(d, &cur, &id)) {
		CHECK(n < d->n_sub_ids);
		CHECK(id >= 1 && id <= TERN_SUB_ID_MAX);
		ids[n++] = id;
	}
	CHECK(n == d->n_sub_ids);

	uint8_t *user = xmalloc(d->raw.len);
	size_t len = 0;
	struct tern_bytes name, value;
	cur = 0;
	n = 0;
	while (tern_props_next_user(d, &cur, &name, &value)) {
		CHECK(tern_user_prop_encode(user, d->raw.len, &len, name, value) == TERN_OK);
		n++;
	}
	CHECK(n == d->n_user);

	*e = *d;
	e->sub_ids = ids;
	e->user_raw = (struct tern_bytes){user, (uint32_t)len};
	s->sub_ids = ids;
	s->user = user;
}

/* Compares two decoded property blocks field by field. */
static void props_eq(const struct tern_props *a, const struct tern_props *b)
{
	CHECK(a->present == b->present);
	CHECK(a->n_user == b->n_user);
	CHECK(a->n_sub_ids == b->n_sub_ids);
	CHECK(a->payload_format == b->payload_format);
	CHECK(a->message_expiry == b->message_expiry);
	CHECK(bytes_eq(a->content_type, b->content_type));
	CHECK(bytes_eq(a->response_topic, b->response_topic));
	CHECK(bytes_eq(a->correlation_data, b->correlation_data));
	CHECK(a->session_expiry == b->session_expiry);
	CHECK(bytes_eq(a->assigned_client_id, b->assigned_client_id));
	CHECK(a->server_keep_alive == b->server_keep_alive);
	CHECK(bytes_eq(a->auth_method, b->auth_method));
	CHECK(bytes_eq(a->auth_data, b->auth_data));
	CHECK(a->request_problem_info == b->request_problem_info);
	CHECK(a->will_delay == b->will_delay);
	CHECK(a->request_response_info == b->request_response_info);
	CHECK(bytes_eq(a->response_info, b->response_info));
	CHECK(bytes_eq(a->server_reference, b->server_reference));
	CHECK(bytes_eq(a->reason_string, b->reason_string));
	CHECK(a->receive_maximum == b->receive_maximum);
	CHECK(a->topic_alias_maximum == b->topic_alias_maximum);
	CHECK(a->topic_alias == b->topic_alias);
	CHECK(a->maximum_qos == b->maximum_qos);
	CHECK(a->retain_available == b->retain_available);
	CHECK(a->maximum_packet_size == b->maximum_packet_size);
	CHECK(a->wildcard_sub_available == b->wildcard_sub_available);
	CHECK(a->sub_id_available == b->sub_id_available);
	CHECK(a->shared_sub_available == b->shared_sub_available);
	size_t ca = 0, cb = 0;
	struct tern_bytes na, va, nb, vb;
	while (tern_props_next_user(a, &ca, &na, &va)) {
		CHECK(tern_props_next_user(b, &cb, &nb, &vb));
		CHECK(bytes_eq(na, nb) && bytes_eq(va, vb));
	}
	CHECK(!tern_props_next_user(b, &cb, &nb, &vb));
	uint32_t ia, ib;
	ca = cb = 0;
	while (tern_props_next_sub_id(a, &ca, &ia)) {
		CHECK(tern_props_next_sub_id(b, &cb, &ib));
		CHECK(ia == ib);
	}
	CHECK(!tern_props_next_sub_id(b, &cb, &ib));
}

/* Matching invariants that hold for every valid topic name. */
static void check_topic(struct tern_bytes t)
{
	if (t.len == 0)
		return;
	CHECK(tern_topic_name_check(t.data, t.len) == TERN_OK);
	CHECK(tern_topic_matches(t.data, t.len, t.data, t.len));
	CHECK(tern_topic_matches((const uint8_t *)"#", 1, t.data, t.len) == (t.data[0] != '$'));
}

/* Builds in *e an encodable copy of decoded packet d; s[0..2) receives the
 * heap blocks (two props blocks at most: CONNECT and its will). */
static void rebuild(const struct tern_packet *d, struct tern_packet *e, struct scratch *s)
{
	*e = *d;
	switch (d->type) {
	case TERN_CONNECT:
		rebuild_props(&d->u.connect.props, &e->u.connect.props, s);
		rebuild_props(&d->u.connect.will_props, &e->u.connect.will_props, &s[1]);
		if (d->u.connect.will)
			check_topic(d->u.connect.will_topic);
		break;
	case TERN_CONNACK:
		rebuild_props(&d->u.connack.props, &e->u.connack.props, s);
		break;
	case TERN_PUBLISH:
		rebuild_props(&d->u.publish.props, &e->u.publish.props, s);
		check_topic(d->u.publish.topic);
		break;
	case TERN_PUBACK:
	case TERN_PUBREC:
	case TERN_PUBREL:
	case TERN_PUBCOMP:
		rebuild_props(&d->u.ack.props, &e->u.ack.props, s);
		break;
	case TERN_SUBSCRIBE: {
		const struct tern_subscribe *sub = &d->u.subscribe;
		rebuild_props(&sub->props, &e->u.subscribe.props, s);
		s->entries = xmalloc(sizeof(*s->entries) * sub->count);
		size_t cur = 0;
		uint32_t n = 0;
		struct tern_sub_entry en;
		while (tern_subscribe_next(sub, &cur, &en)) {
			CHECK(n < sub->count);
			CHECK(tern_topic_filter_check(en.filter.data, en.filter.len) == TERN_OK);
			CHECK(en.qos <= 2 && en.retain_handling <= 2);
			s->entries[n++] = en;
		}
		CHECK(n == sub->count);
		e->u.subscribe.entries = s->entries;
		break;
	}
	case TERN_UNSUBSCRIBE: {
		const struct tern_unsubscribe *un = &d->u.unsubscribe;
		rebuild_props(&un->props, &e->u.unsubscribe.props, s);
		s->filters = xmalloc(sizeof(*s->filters) * un->count);
		size_t cur = 0;
		uint32_t n = 0;
		struct tern_bytes f;
		while (tern_unsubscribe_next(un, &cur, &f)) {
			CHECK(n < un->count);
			CHECK(tern_topic_filter_check(f.data, f.len) == TERN_OK);
			s->filters[n++] = f;
		}
		CHECK(n == un->count);
		e->u.unsubscribe.filters = s->filters;
		break;
	}
	case TERN_SUBACK:
	case TERN_UNSUBACK:
		rebuild_props(&d->u.subres.props, &e->u.subres.props, s);
		break;
	case TERN_DISCONNECT:
	case TERN_AUTH:
		rebuild_props(&d->u.reasoned.props, &e->u.reasoned.props, s);
		break;
	default:
		break;
	}
}

/* Compares the decodings of the original and of the re-encoded packet. */
static void packets_eq(const struct tern_packet *a, const struct tern_packet *b)
{
	CHECK(a->type == b->type);
	switch (a->type) {
	case TERN_CONNECT: {
		const struct tern_connect *x = &a->u.connect, *y = &b->u.connect;
		CHECK(x->version == y->version && x->clean_start == y->clean_start);
		CHECK(x->keep_alive == y->keep_alive && bytes_eq(x->client_id, y->client_id));
		CHECK(x->will == y->will && x->will_qos == y->will_qos);
		CHECK(x->will_retain == y->will_retain);
		CHECK(bytes_eq(x->will_topic, y->will_topic));
		CHECK(bytes_eq(x->will_payload, y->will_payload));
		CHECK(x->has_username == y->has_username && bytes_eq(x->username, y->username));
		CHECK(x->has_password == y->has_password && bytes_eq(x->password, y->password));
		props_eq(&x->props, &y->props);
		props_eq(&x->will_props, &y->will_props);
		break;
	}
	case TERN_CONNACK:
		CHECK(a->u.connack.session_present == b->u.connack.session_present);
		CHECK(a->u.connack.reason == b->u.connack.reason);
		props_eq(&a->u.connack.props, &b->u.connack.props);
		break;
	case TERN_PUBLISH: {
		const struct tern_publish *x = &a->u.publish, *y = &b->u.publish;
		CHECK(x->qos == y->qos && x->dup == y->dup && x->retain == y->retain);
		CHECK(x->packet_id == y->packet_id && bytes_eq(x->topic, y->topic));
		CHECK(bytes_eq(x->payload, y->payload));
		props_eq(&x->props, &y->props);
		break;
	}
	case TERN_PUBACK:
	case TERN_PUBREC:
	case TERN_PUBREL:
	case TERN_PUBCOMP:
		CHECK(a->u.ack.packet_id == b->u.ack.packet_id);
		CHECK(a->u.ack.reason == b->u.ack.reason);
		props_eq(&a->u.ack.props, &b->u.ack.props);
		break;
	case TERN_SUBSCRIBE: {
		CHECK(a->u.subscribe.packet_id == b->u.subscribe.packet_id);
		CHECK(a->u.subscribe.count == b->u.subscribe.count);
		props_eq(&a->u.subscribe.props, &b->u.subscribe.props);
		size_t ca = 0, cb = 0;
		struct tern_sub_entry x, y;
		while (tern_subscribe_next(&a->u.subscribe, &ca, &x)) {
			CHECK(tern_subscribe_next(&b->u.subscribe, &cb, &y));
			CHECK(bytes_eq(x.filter, y.filter) && x.qos == y.qos);
			CHECK(x.no_local == y.no_local && x.retain_handling == y.retain_handling);
			CHECK(x.retain_as_published == y.retain_as_published);
		}
		break;
	}
	case TERN_UNSUBSCRIBE: {
		CHECK(a->u.unsubscribe.packet_id == b->u.unsubscribe.packet_id);
		CHECK(a->u.unsubscribe.count == b->u.unsubscribe.count);
		props_eq(&a->u.unsubscribe.props, &b->u.unsubscribe.props);
		size_t ca = 0, cb = 0;
		struct tern_bytes x, y;
		while (tern_unsubscribe_next(&a->u.unsubscribe, &ca, &x)) {
			CHECK(tern_unsubscribe_next(&b->u.unsubscribe, &cb, &y));
			CHECK(bytes_eq(x, y));
		}
		break;
	}
	case TERN_SUBACK:
	case TERN_UNSUBACK:
		CHECK(a->u.subres.packet_id == b->u.subres.packet_id);
		CHECK(a->u.subres.count == b->u.subres.count);
		CHECK(a->u.subres.count == 0 ||
		      memcmp(a->u.subres.reasons, b->u.subres.reasons, a->u.subres.count) == 0);
		props_eq(&a->u.subres.props, &b->u.subres.props);
		break;
	case TERN_DISCONNECT:
	case TERN_AUTH:
		CHECK(a->u.reasoned.reason == b->u.reasoned.reason);
		props_eq(&a->u.reasoned.props, &b->u.reasoned.props);
		break;
	default:
		break;
	}
}

/* Re-encodes decoded packet d for version and checks the round trip. */
static void roundtrip(const struct tern_packet *d, uint8_t version)
{
	struct scratch s[2];
	memset(s, 0, sizeof(s));
	struct tern_packet e;
	rebuild(d, &e, s);

	size_t size = tern_packet_size(&e, version);
	CHECK(size >= 2);
	uint8_t *out = xmalloc(size);
	size_t n = 0;
	CHECK(tern_encode_packet(&e, version, out, size - 1, &n) == TERN_E_BUFFER);
	CHECK(tern_encode_packet(&e, version, out, size, &n) == TERN_OK);
	CHECK(n == size);

	if (e.type == TERN_PUBLISH) {
		size_t hs = tern_publish_header_size(&e.u.publish, version), hn = 0;
		uint8_t *hdr = xmalloc(hs);
		CHECK(hs + e.u.publish.payload.len == size);
		CHECK(tern_encode_publish_header(&e.u.publish, version, hdr, hs, &hn) == TERN_OK);
		CHECK(hn == hs && memcmp(hdr, out, hs) == 0);
		free(hdr);
	}

	struct tern_fixed_header fh;
	CHECK(tern_decode_fixed_header(out, n, (uint32_t)n, &fh) == TERN_OK);
	CHECK(fh.header_len + fh.remaining == n);
	struct tern_packet d2;
	CHECK(tern_decode_packet(&fh, out + fh.header_len, version, &d2) == TERN_OK);
	packets_eq(d, &d2);

	free(out);
	for (int i = 0; i < 2; i++) {
		free(s[i].sub_ids);
		free(s[i].user);
	}
	free(s[0].entries);
	free(s[0].filters);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t version = (uint8_t)(TERN_V31 + data[0] % 3);
	data++;
	size--;

	while (size > 0) {
		struct tern_fixed_header fh, small;
		enum tern_err e = tern_decode_fixed_header(data, size, 0, &fh);
		if (e != TERN_OK)
			break;
		/* A limit below the packet size is refused from the header. */
		uint64_t total = (uint64_t)fh.header_len + fh.remaining;
		if (total > 2) {
			CHECK(tern_decode_fixed_header(data, size, (uint32_t)total - 1, &small) ==
			      TERN_E_TOO_LARGE);
		}
		if (total > size)
			break;

		uint8_t *body = xmalloc(fh.remaining);
		memcpy(body, data + fh.header_len, fh.remaining);
		struct tern_packet p;
		e = tern_decode_packet(&fh, body, version, &p);
		CHECK(tern_strerror(e) != NULL);
		CHECK(tern_packet_name(fh.type) != NULL);
		(void)tern_err_reason(e);
		if (e == TERN_OK) {
			if (p.type == TERN_CONNECT)
				version = p.u.connect.version;
			roundtrip(&p, version);
		}
		free(body);
		data += total;
		size -= total;
	}
	return 0;
}
