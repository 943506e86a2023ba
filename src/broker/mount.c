/*
 * mount.c - mount_point prefixes; see mount.h.
 */
#include "broker/mount.h"

#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "broker/sink.h"
#include "broker/worker.h"

#define TOPIC_MAX 65535u

const char *mount_of(const struct worker *w, const struct sink *k)
{
	if (k->internal || k->listener >= w->broker->cfg.n_listeners)
		return NULL;
	const char *m = w->broker->cfg.listeners[k->listener].mount_point;
	return m[0] ? m : NULL;
}

enum tern_err mount_join(struct worker *w, const char *mount, struct tern_bytes in, bool filter,
                         struct tern_bytes *out)
{
	size_t mlen = strlen(mount);
	if (in.len + mlen > TOPIC_MAX)
		return TERN_E_TOO_LARGE;
	if (!w->mount_buf && !(w->mount_buf = malloc(TOPIC_MAX)))
		return TERN_E_NOMEM;
	struct tern_bytes group, plain;
	size_t head = 0;
	if (filter && tern_topic_filter_share(in, &group, &plain))
		head = in.len - plain.len; /* "$share/GROUP/" */
	uint8_t *o = w->mount_buf;
	memcpy(o, in.data, head);
	memcpy(o + head, mount, mlen);
	memcpy(o + head + mlen, in.data + head, in.len - head);
	*out = (struct tern_bytes){o, (uint32_t)(in.len + mlen)};
	return TERN_OK;
}

bool mount_strip(const char *mount, struct tern_bytes in, struct tern_bytes *out)
{
	size_t mlen = strlen(mount);
	if (in.len < mlen || memcmp(in.data, mount, mlen) != 0)
		return false;
	*out = (struct tern_bytes){in.data + mlen, (uint32_t)(in.len - mlen)};
	return true;
}

void mount_worker_free(struct worker *w)
{
	free(w->mount_buf);
	w->mount_buf = NULL;
}
