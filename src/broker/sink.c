/*
 * sink.c - finding a session's connection again: answers that wait (for
 * every router replica, for a store commit) keep the ids of the session
 * and the connection they are for, not pointers, because the connection
 * may close and the session may end meanwhile.
 */
#include "broker/sink.h"

#include "broker/session.h"
#include "broker/worker.h"
#include "util/map.h"

struct sink *sink_find(struct worker *w, uint64_t session_id, uint64_t conn_id)
{
	struct session *s = session_by_id(w, session_id);
	struct sink *k = s ? session_sink(s) : NULL;
	return k && k->id == conn_id ? k : NULL;
}
