/*
 * conn.c - connecting and disconnecting, for both subcommands.
 *
 * Everything that turns struct tool_opts into a libtern connection lives
 * here: the connect options (TLS included), the will, the v5 CONNECT properties (where -x
 * and -c decide the session expiry interval, as in mosquitto: -c alone
 * means "never expires"), TCP_NODELAY, and the words printed when the
 * broker says no. The tool uses libtern's blocking calls; the callbacks
 * below only record what they saw (a DISCONNECT from the broker, a failed
 * acknowledgement) and print -d lines.
 *
 * -d lines imitate libmosquitto's ("Client <id> sending CONNECT") but go to
 * stderr, not stdout, so that `tern sub -d | ...` still pipes only
 * messages.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "tools.h"

int64_t tool_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tool_debug(const struct tool_conn *tc, const char *fmt, ...)
{
	va_list ap;

	if (!tc->o->debug)
		return;
	fprintf(stderr, "Client %s ", tc->id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Keeps a reason string the broker sent, for the error message. */
static void keep_reason_string(struct tool_conn *tc, const struct tern_props *props)
{
	if (props == NULL || !(props->present & TERN_PROP_BIT(TERN_PROP_REASON_STRING)))
		return;
	snprintf(tc->reason_str, sizeof(tc->reason_str), "%.*s", (int)props->reason_string.len,
	         (const char *)props->reason_string.data);
}

/* Prints "<words for reason>" and, when it says more, the broker's reason
 * string in parentheses. */
static void print_reason(const struct tool_conn *tc, uint8_t reason, bool v3)
{
	const char *words = tern_reason_string(reason, v3);

	fputs(words, stderr);
	if (tc->reason_str[0] != '\0' && strcasecmp(tc->reason_str, words) != 0)
		fprintf(stderr, " (%s)", tc->reason_str);
}

/* What libtern says about a TLS failure, or the generic words. */
static const char *tls_error(struct tern_client *c)
{
	const char *s = c != NULL ? tern_client_tls_error(c) : "";

	return s[0] != '\0' ? s : tern_strerror(TERN_E_TLS);
}

static void on_connect(struct tern_client *c, void *ud, uint8_t reason, bool session_present,
                       const struct tern_props *props)
{
	struct tool_conn *tc = ud;

	(void)c;
	(void)reason; /* tern_client_connect() returns it too */
	tc->session_present = session_present;
	keep_reason_string(tc, props);
}

static void on_disconnect(struct tern_client *c, void *ud, enum tern_err err, uint8_t reason,
                          const struct tern_props *props)
{
	struct tool_conn *tc = ud;

	(void)c;
	tc->closed = true;
	tc->err = err;
	tc->reason = reason;
	keep_reason_string(tc, props);
	if (reason != 0)
		tool_debug(tc, "received DISCONNECT (%u)", reason);
}

static void on_publish(struct tern_client *c, void *ud, uint16_t packet_id, uint8_t reason,
                       const struct tern_props *props)
{
	struct tool_conn *tc = ud;
	/* `tern sub` publishes only to clear retained messages, at QoS 1. */
	uint8_t qos = tc->o->mode == TOOL_SUB ? 1 : tc->o->qos;
	const char *ack = qos == 1 ? "PUBACK" : reason >= 0x80 ? "PUBREC" : "PUBCOMP";

	(void)c;
	tool_debug(tc, "received %s (Mid: %u, RC:%u)", ack, packet_id, reason);
	if (reason >= 0x80) {
		tc->publish_failed = true;
		keep_reason_string(tc, props);
		if (!tc->o->common.quiet)
			fprintf(stderr, "Warning: Publish %u failed: %s.\n", packet_id,
			        tern_reason_string(reason, false));
	}
}

static void on_message(struct tern_client *c, void *ud, const struct tern_message *msg)
{
	struct tool_conn *tc = ud;

	(void)c;
	tool_debug(tc, "received PUBLISH (d%d, q%u, r%d, m%u, '%s', ... (%zu bytes))",
	           msg->dup ? 1 : 0, msg->qos, msg->retain ? 1 : 0, msg->packet_id, msg->topic,
	           msg->payload_len);
	tc->on_message(tc, msg);
}

int conn_open(struct tool_conn *tc, const struct tool_opts *o,
              void (*on_msg)(struct tool_conn *tc, const struct tern_message *msg), void *app)
{
	const struct tern_callbacks cb = {
	        .on_connect = on_connect,
	        .on_disconnect = on_disconnect,
	        .on_publish = on_publish,
	        .on_message = on_msg != NULL ? on_message : NULL,
	};
	struct tern_connect_opts co;
	struct tern_will will;
	struct tern_props cprops = o->connect_props.p;
	bool any_cprops = o->connect_props.any;
	uint8_t reason = 0;
	bool session_present = false;
	enum tern_err err;

	memset(tc, 0, sizeof(*tc));
	tc->o = o;
	tc->on_message = on_msg;
	tc->app = app;
	snprintf(tc->id, sizeof(tc->id), "%s", o->id != NULL ? o->id : "(null)");
	err = tern_client_new(&tc->c, &cb, tc);
	if (err != TERN_OK) {
		fprintf(stderr, "Error: %s.\n", tern_strerror(err));
		return 1;
	}
	tern_connect_opts_init(&co);
	common_connect_opts(&o->common, &co);
	co.bind_address = o->bind_address;
	co.client_id = o->id;
	co.clean_start = o->clean;
	co.username = o->username;
	co.password = o->password;
	co.password_len = o->password != NULL ? strlen(o->password) : 0;
	if (o->common.version == TERN_V5) {
		/* -x wins over -D connect session-expiry-interval; -c alone
		 * keeps the session forever, as in mosquitto. */
		if (o->session_expiry_set) {
			cprops.session_expiry = o->session_expiry;
			cprops.present |= TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY);
			any_cprops = true;
		} else if (!o->clean &&
		           !(cprops.present & TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY))) {
			cprops.session_expiry = UINT32_MAX;
			cprops.present |= TERN_PROP_BIT(TERN_PROP_SESSION_EXPIRY);
			any_cprops = true;
		}
		co.props = any_cprops ? &cprops : NULL;
	}
	if (o->will_topic != NULL) {
		memset(&will, 0, sizeof(will));
		will.topic = o->will_topic;
		will.payload = o->will_payload;
		will.payload_len = o->will_payload != NULL ? strlen(o->will_payload) : 0;
		will.qos = o->will_qos;
		will.retain = o->will_retain;
		will.props = props_get(&o->will_props);
		co.will = &will;
	}

	tool_debug(tc, "sending CONNECT");
	err = tern_client_connect(tc->c, &co, -1, &reason, &session_present);
	if (err == TERN_OK) {
		const char *id = tern_client_id(tc->c);

		if (id != NULL && id[0] != '\0')
			snprintf(tc->id, sizeof(tc->id), "%s", id);
		tc->session_present = session_present;
		tool_debug(tc, "received CONNACK (0)");
		if (o->nodelay) {
			int one = 1;

			/* After CONNACK: the library owns the socket, we only
			 * tune it. */
			if (setsockopt(tern_client_fd(tc->c), IPPROTO_TCP, TCP_NODELAY, &one,
			               sizeof(one)) != 0 &&
			    !o->common.quiet)
				fprintf(stderr, "Warning: --nodelay: %s\n", strerror(errno));
		}
		return 0;
	}
	if (err == TERN_E_PROTOCOL && reason != 0) {
		tool_debug(tc, "received CONNACK (%u)", reason);
		if (!o->common.quiet) {
			fputs("Connection error: Connection Refused: ", stderr);
			print_reason(tc, reason, o->common.version != TERN_V5);
			fputs(".\n", stderr);
		}
		conn_abort(tc);
		return reason;
	}
	if (!o->common.quiet) {
		if (err == TERN_E_SYS)
			fprintf(stderr, "Error: cannot connect to %s port %u: %s.\n",
			        o->common.host, o->common.port, strerror(errno));
		else if (err == TERN_E_TLS)
			fprintf(stderr, "Error: cannot connect to %s port %u: %s.\n",
			        o->common.host, o->common.port, tls_error(tc->c));
		else if (err == TERN_E_TIMEOUT)
			fprintf(stderr,
			        "Error: cannot connect to %s port %u: no CONNACK in time.\n",
			        o->common.host, o->common.port);
		else
			fprintf(stderr, "Error: cannot connect to %s port %u: %s.\n",
			        o->common.host, o->common.port, tern_strerror(err));
	}
	conn_abort(tc);
	return 1;
}

void conn_close(struct tool_conn *tc)
{
	if (tc->c == NULL)
		return;
	if (!tc->closed && tern_client_is_connected(tc->c)) {
		tool_debug(tc, "sending DISCONNECT");
		if (tern_client_disconnect(tc->c, 0, props_get(&tc->o->disconnect_props)) ==
		    TERN_OK) {
			/* Bounded: a broker that never reads must not hang us. */
			int64_t deadline = tool_now_ms() + 2000;

			while (!tc->closed && tern_client_fd(tc->c) >= 0) {
				int64_t left = deadline - tool_now_ms();

				if (left <= 0 || tern_client_loop(tc->c, (int)left) != TERN_OK)
					break;
			}
		}
	}
	tern_client_free(tc->c);
	tc->c = NULL;
}

void conn_abort(struct tool_conn *tc)
{
	tern_client_free(tc->c);
	tc->c = NULL;
}

void conn_report_lost(const struct tool_conn *tc, enum tern_err err)
{
	if (tc->o->common.quiet)
		return;
	if (tc->reason != 0) {
		fputs("Error: disconnected by the broker: ", stderr);
		print_reason(tc, tc->reason, false);
		fputs(".\n", stderr);
	} else if (err == TERN_E_TLS)
		fprintf(stderr, "Error: connection lost: %s.\n", tls_error(tc->c));
	else
		fprintf(stderr, "Error: connection lost: %s.\n", tern_strerror(err));
}

enum tern_err conn_poll(struct tool_conn *tc, int extra_fd, int timeout_ms, bool *extra_ready)
{
	struct pollfd fds[2];
	nfds_t n = 0;
	int fd = tern_client_fd(tc->c);
	int t = tern_client_timeout_ms(tc->c);

	if (extra_ready != NULL)
		*extra_ready = false;
	if (fd < 0)
		return tc->closed && tc->err != TERN_OK ? tc->err : TERN_E_CLOSED;
	if (t < 0 || (timeout_ms >= 0 && timeout_ms < t))
		t = timeout_ms;
	fds[n].fd = fd;
	fds[n].events = (short)(POLLIN | (tern_client_want_write(tc->c) ? POLLOUT : 0));
	fds[n].revents = 0;
	n++;
	if (extra_fd >= 0) {
		fds[n].fd = extra_fd;
		fds[n].events = POLLIN;
		fds[n].revents = 0;
		n++;
	}
	if (poll(fds, n, t) < 0 && errno != EINTR)
		return TERN_E_SYS;
	if (extra_fd >= 0 && extra_ready != NULL)
		*extra_ready = fds[1].revents != 0;
	return tern_client_step(tc->c);
}
