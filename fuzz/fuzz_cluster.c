/*
 * fuzz_cluster.c - libFuzzer target for the cluster module's two pure
 * codecs: the cross-node message format (src/cluster/wire.c) and the
 * topic <-> subject mapping (src/cluster/subject.c).
 *
 * The whole input is first a cross-node message: wire_decode() must
 * refuse it or decode it, and a message it decodes must encode again to
 * exactly the input (the format is canonical: one encoding per message),
 * with a valid topic name and QoS.
 *
 * Then the input is cut into a and b: the first byte n, then a (the next
 * n % size bytes, at most what is left), then b (the rest). Both map as
 * topics (any bytes do) to subjects made only of non-empty tokens without
 * space or control bytes, which map back to exactly a and b, and two
 * different strings never share a subject. b maps as a filter to subjects
 * of the same shape where '*' and '>' stand alone ('>' last); when b is a
 * valid filter and a a valid topic name, NATS' matching of b's subjects
 * against a's (a reference of nats-server's sublist rules) is MQTT's,
 * tern_topic_matches(). The queue name of the shared subscription (a, b)
 * holds no whitespace and ends in b's filter subject. Any disagreement
 * aborts.
 *
 * Dictionary: fuzz/cluster.dict.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/subject.h"
#include "cluster/wire.h"
#include "tern/codec.h"
#include "util/buf.h"
#include "util/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_cluster: check failed at line %d: %s\n", __LINE__,   \
			        #cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define CLUSTER "fz"
/* libFuzzer's inputs are at most a few KiB; 3 bytes per input byte fit. */
#define MAX (1u << 16)

static void check_wire(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so ASan sees a read past them. */
	uint8_t *in = malloc(size ? size : 1);
	CHECK(in != NULL);
	if (size)
		memcpy(in, data, size);
	struct msg *m = NULL;
	enum tern_err e = wire_decode(in, size, 1000, &m);
	if (e != TERN_OK) {
		CHECK(m == NULL);
		CHECK(e == TERN_E_MALFORMED || e == TERN_E_UNSUPPORTED_VERSION);
		free(in);
		return;
	}
	CHECK(m != NULL && m->qos <= 2 && m->origin == 0);
	CHECK(tern_topic_name_check(m->topic.data, m->topic.len) == TERN_OK);
	struct buf out = {0};
	CHECK(wire_size(m) == size);
	CHECK(wire_encode(&out, m, 1000, 0) == TERN_OK);
	CHECK(out.len == size && memcmp(out.data, in, size) == 0);
	buf_free(&out);
	msg_unref(m);
	free(in);
}

/* True if s holds only non-empty tokens free of bytes <= 0x20 and 0x7f;
 * with wild, '*' and '>' only as whole tokens and '>' only last, without,
 * no '*' or '>' at all. */
static bool subject_ok(const char *s, bool wild)
{
	size_t i = 0, n = strlen(s);
	for (;;) {
		size_t j = i;
		while (j < n && s[j] != '.')
			j++;
		if (j == i)
			return false;
		for (size_t k = i; k < j; k++) {
			uint8_t c = (uint8_t)s[k];
			if (c <= 0x20 || c == 0x7f)
				return false;
			if ((c == '*' || c == '>') && (!wild || j - i != 1 || (c == '>' && j != n)))
				return false;
		}
		if (j == n)
			return true;
		i = j + 1;
	}
}

/* nats-server's matching: '*' one token, '>' as last token one or more. */
static bool nats_match(const char *filter, const char *subject)
{
	const char *f = filter, *s = subject;
	for (;;) {
		const char *fe = strchr(f, '.'), *se = strchr(s, '.');
		size_t fl = fe ? (size_t)(fe - f) : strlen(f);
		size_t sl = se ? (size_t)(se - s) : strlen(s);
		if (fl == 1 && f[0] == '>')
			return true;
		if (!(fl == 1 && f[0] == '*') && (fl != sl || memcmp(f, s, fl) != 0))
			return false;
		if (!fe || !se)
			return !fe && !se;
		f = fe + 1;
		s = se + 1;
	}
}

static char sa[MAX + 1], sb[MAX + 1], fs[MAX + 1], fp[MAX + 1], q[MAX + 1];
static uint8_t back[MAX];

/* Maps t as a topic into s and checks the way back. */
static void check_topic(struct tern_bytes t, char *s)
{
	size_t len, blen;
	CHECK(subject_of_topic(CLUSTER, t, s, MAX, &len) == TERN_OK);
	CHECK(strlen(s) == len && subject_ok(s, false));
	CHECK(subject_to_topic(CLUSTER, s, len, back, sizeof(back), &blen) == TERN_OK);
	CHECK(blen == t.len && (blen == 0 || memcmp(back, t.data, blen) == 0));
}

static void check_subjects(const uint8_t *data, size_t size)
{
	if (size == 0)
		return;
	size_t left = size - 1, na = data[0] % size;
	if (na > left)
		na = left;
	struct tern_bytes a = {data + 1, (uint32_t)na};
	struct tern_bytes b = {data + 1 + na, (uint32_t)(left - na)};
	check_topic(a, sa);
	check_topic(b, sb);
	CHECK((strcmp(sa, sb) == 0) == (a.len == b.len && memcmp(a.data, b.data, a.len) == 0));

	size_t n = 0, len;
	CHECK(subject_of_filter(CLUSTER, b, fs, fp, MAX, &n) == TERN_OK);
	CHECK(subject_ok(fs, true));
	CHECK(n == 1 || n == 2);
	bool parent = b.len >= 2 && b.data[b.len - 1] == '#' && b.data[b.len - 2] == '/';
	CHECK((n == 2) == parent);
	if (n == 2) {
		CHECK(subject_ok(fp, true));
		CHECK(strlen(fs) == strlen(fp) + 2 && strncmp(fs, fp, strlen(fp)) == 0);
	}
	if (tern_topic_filter_check(b.data, b.len) == TERN_OK &&
	    !tern_topic_filter_share(b, &(struct tern_bytes){0}, &(struct tern_bytes){0}) &&
	    tern_topic_name_check(a.data, a.len) == TERN_OK) {
		bool nats = nats_match(fs, sa) || (n == 2 && nats_match(fp, sa));
		CHECK(nats == tern_topic_matches(b.data, b.len, a.data, a.len));
	}

	CHECK(subject_queue_shared(CLUSTER, a, b, q, MAX, &len) == TERN_OK);
	CHECK(strlen(q) == len && strpbrk(q, " \t\r\n") == NULL);
	/* "fz.s.<a>.<b's subject after "fz.">": the tail is b's subject. */
	size_t tail = strlen(fs) - strlen(CLUSTER ".");
	CHECK(len > tail && q[len - tail - 1] == '.' &&
	      strcmp(q + len - tail, fs + strlen(CLUSTER ".")) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_wire(data, size);
	if (size <= MAX / 4)
		check_subjects(data, size);
	return 0;
}
