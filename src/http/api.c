/*
 * api.c - the admin API's dispatch: a routed request (api_route.h) to the
 * handler of its endpoint (api_broker.c, api_clients.c, api_actions.c), and
 * the dashboard page.
 */
#include <string.h>

#include "http/http.h"
#include "http/http_int.h"
#include "http/json.h"
#include "http/metrics.h"

/* GET /: the dashboard. Its script and style are inline and it talks to
 * this origin only; the policy says so, and that it is framed nowhere. */
static void dashboard(struct api_reply *reply)
{
	reply->status = 200;
	reply->ctype = "text/html; charset=utf-8";
	reply->csp =
	        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
	        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
	if (buf_append(&reply->body, dashboard_page, dashboard_page_len, 0))
		api_error(reply, 500, "out of memory");
}

static void reload(struct http_server *h, struct api_reply *reply)
{
	if (http_reload(h->b, h) != TERN_OK) {
		api_error(reply, 500,
		          "reload failed: the previous files stay in force (the log says why)");
		return;
	}
	struct json j;
	json_init(&j, &reply->body);
	json_obj(&j, NULL);
	json_bool(&j, "reloaded", true);
	json_obj_end(&j);
	reply->status = 200;
	if (json_end(&j))
		api_error(reply, 500, "out of memory");
}

void api_dispatch(struct http_server *h, const struct api_route *route, struct api_reply *reply)
{
	switch (route->ep) {
	case EP_DASHBOARD:
		dashboard(reply);
		return;
	case EP_METRICS:
		reply->status = 200;
		reply->ctype = "text/plain; version=0.0.4; charset=utf-8";
		if (metrics_render(h->b, &reply->body) != TERN_OK)
			api_error(reply, 500, "out of memory");
		return;
	case EP_BROKER:
		api_broker(h, reply);
		return;
	case EP_RELOAD:
		reload(h, reply);
		return;
	case EP_CLIENTS:
		api_clients(h, route, reply);
		return;
	case EP_CLIENT:
		api_client(h, route, false, reply);
		return;
	case EP_CLIENT_SUBS:
		api_client(h, route, true, reply);
		return;
	case EP_TOPICS:
		api_topics(h, route, reply);
		return;
	case EP_CLIENT_DISCONNECT:
		api_disconnect(h, route, reply);
		return;
	case EP_SESSION_DELETE:
		api_session_delete(h, route, reply);
		return;
	case EP_RETAINED:
		api_retained(h, route, reply);
		return;
	case EP_RETAINED_DELETE:
		api_retained_delete(h, route, reply);
		return;
	case EP_NONE:
		break;
	}
	api_error(reply, 404, "no such path");
}
