/*
 * msg.c - refcounted messages; see msg.h.
 *
 * One allocation holds the struct and every byte the message carries, so a
 * message costs one malloc and one free whatever its properties.
 */
#include "util/msg.h"

#include <stdlib.h>
#include <string.h>

static struct tern_bytes copy_in(uint8_t **dst, struct tern_bytes src)
{
	struct tern_bytes out = {*dst, src.len};
	if (src.len)
		memcpy(*dst, src.data, src.len);
	*dst += src.len;
	return out;
}

struct msg *msg_new(struct tern_bytes topic, struct tern_bytes payload, uint8_t qos, bool retain,
                    const struct tern_props *props, uint64_t origin, uint64_t now)
{
	struct tern_props none = {0};
	if (!props)
		props = &none;
	bool has_ct = props->present & TERN_PROP_BIT(TERN_PROP_CONTENT_TYPE);
	bool has_rt = props->present & TERN_PROP_BIT(TERN_PROP_RESPONSE_TOPIC);
	bool has_cd = props->present & TERN_PROP_BIT(TERN_PROP_CORRELATION_DATA);

	/* User properties are re-encoded from the decoded block so that the
	 * message keeps only what is forwarded [MQTT-3.3.2-17]. */
	size_t user_len = 0;
	size_t cur = 0;
	struct tern_bytes k, v;
	while (tern_props_next_user(props, &cur, &k, &v))
		user_len += 5u + k.len + v.len;

	size_t total = sizeof(struct msg) + topic.len + payload.len + user_len +
	               (has_ct ? props->content_type.len : 0) +
	               (has_rt ? props->response_topic.len : 0) +
	               (has_cd ? props->correlation_data.len : 0);
	struct msg *m = malloc(total);
	if (!m)
		return NULL;
	memset(m, 0, sizeof(*m));
	atomic_init(&m->refs, 1);
	m->qos = qos;
	m->retain = retain;
	m->origin = origin;
	uint8_t *p = (uint8_t *)(m + 1);
	m->topic = copy_in(&p, topic);
	m->payload = copy_in(&p, payload);
	if (has_ct) {
		m->content_type = copy_in(&p, props->content_type);
		m->has_content_type = true;
	}
	if (has_rt)
		m->response_topic = copy_in(&p, props->response_topic);
	if (has_cd) {
		m->correlation_data = copy_in(&p, props->correlation_data);
		/* An empty correlation data is still present. */
		if (!m->correlation_data.data)
			m->correlation_data.data = p;
	}
	if (props->present & TERN_PROP_BIT(TERN_PROP_PAYLOAD_FORMAT)) {
		m->has_payload_format = true;
		m->payload_format = props->payload_format;
	}
	if (props->present & TERN_PROP_BIT(TERN_PROP_MESSAGE_EXPIRY))
		m->expire_at = now + (uint64_t)props->message_expiry * 1000u;
	size_t ulen = 0;
	cur = 0;
	while (tern_props_next_user(props, &cur, &k, &v)) {
		/* The room was counted above, so this cannot fail; if that count
		 * were ever wrong, refuse the message rather than keep a list
		 * that stops short. */
		if (tern_user_prop_encode(p, user_len, &ulen, k, v) != TERN_OK) {
			free(m);
			return NULL;
		}
		m->n_user++;
	}
	m->user_raw.data = p;
	m->user_raw.len = (uint32_t)ulen;
	return m;
}

void msg_unref(struct msg *m)
{
	if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
		free(m);
}

uint32_t msg_expiry_left(const struct msg *m, uint64_t now, bool *expired)
{
	*expired = false;
	if (!m->expire_at)
		return 0;
	if (now >= m->expire_at) {
		*expired = true;
		return 0;
	}
	uint64_t left = (m->expire_at - now + 999u) / 1000u;
	return left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
}
