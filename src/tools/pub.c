/*
 * pub.c - `tern pub`: publish, then disconnect cleanly.
 *
 * Two shapes, as in mosquitto_pub:
 *
 *   One message (-m, -f, -s, -n), sent --repeat times. The payload is read
 *   whole before connecting (so a missing file costs no connection) and
 *   published with tern_client_publish_wait(), which for QoS 1/2 returns
 *   once the broker has acknowledged it.
 *
 *   One message per line of stdin (-l). Lines may come slowly (a terminal,
 *   a pipe from a log), so the connection must stay alive while we wait
 *   for input: stdin and the client's socket are polled together
 *   (conn_poll), and stdin is only read while fewer than -M QoS 1/2
 *   messages are unacknowledged and the library has no output backed up,
 *   which bounds memory whatever the input rate.
 *
 * Either way the exit status is 0 only when every message was accepted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools.h"

/* Largest payload that fits in a packet (remaining length limit). */
#define MAX_PAYLOAD 268435455u

/* Reads all of f into *out (malloc'd, caller frees). */
static bool read_all(FILE *f, uint8_t **out, size_t *len)
{
	size_t cap = 65536, n = 0;
	uint8_t *buf = malloc(cap);

	if (buf == NULL)
		return false;
	for (;;) {
		size_t got;

		if (n == cap) {
			uint8_t *p;

			if (cap > MAX_PAYLOAD)
				break; /* too big: reported by the caller */
			cap *= 2;
			p = realloc(buf, cap);
			if (p == NULL) {
				free(buf);
				return false;
			}
			buf = p;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f)) {
				free(buf);
				return false;
			}
			break;
		}
	}
	*out = buf;
	*len = n;
	return true;
}

/* mid is 0 when not known (tern_client_publish_wait() does not tell). */
static void debug_publish(const struct tool_conn *tc, const struct tool_opts *o, uint16_t mid,
                          size_t len)
{
	char m[16] = "";

	if (mid != 0)
		snprintf(m, sizeof(m), "m%u, ", mid);
	tool_debug(tc, "sending PUBLISH (d0, q%u, r%d, %s'%s', ... (%zu bytes))", o->qos,
	           o->retain ? 1 : 0, m, o->topics[0], len);
}

/* Waits delay seconds with the connection kept alive. */
static TERN_MUST_CHECK enum tern_err pause_for(struct tool_conn *tc, double delay)
{
	int64_t deadline = tool_now_ms() + (int64_t)(delay * 1000.0);
	int64_t left;

	while ((left = deadline - tool_now_ms()) > 0) {
		enum tern_err err = conn_poll(tc, -1, (int)left, NULL);

		if (err != TERN_OK)
			return err;
	}
	return TERN_OK;
}

static int publish_repeat(struct tool_conn *tc, const struct tool_opts *o, const uint8_t *data,
                          size_t len)
{
	const struct tern_publish_args args = {
	        .topic = o->topics[0],
	        .payload = data,
	        .payload_len = len,
	        .qos = o->qos,
	        .retain = o->retain,
	        .props = props_get(&o->publish_props),
	};

	for (unsigned long r = 0; r < o->repeat; r++) {
		uint8_t reason = 0;
		enum tern_err err;

		debug_publish(tc, o, 0, len);
		err = tern_client_publish_wait(tc->c, &args, -1, &reason);
		if (err == TERN_E_PROTOCOL) {
			if (!tc->publish_failed && !o->common.quiet)
				fprintf(stderr, "Warning: Publish failed: %s.\n",
				        tern_reason_string(reason, false));
			return 1;
		}
		if (err == TERN_E_INVALID || err == TERN_E_TOO_LARGE) {
			if (!o->common.quiet)
				fprintf(stderr, "Error: cannot publish: %s.\n", tern_strerror(err));
			return 1;
		}
		if (err != TERN_OK) {
			conn_report_lost(tc, err);
			return 1;
		}
		if (r + 1 < o->repeat && o->repeat_delay > 0) {
			err = pause_for(tc, o->repeat_delay);
			if (err != TERN_OK) {
				conn_report_lost(tc, err);
				return 1;
			}
		}
	}
	return tc->publish_failed ? 1 : 0;
}

static bool publish_line(struct tool_conn *tc, const struct tool_opts *o, const char *line,
                         size_t len)
{
	const struct tern_publish_args args = {
	        .topic = o->topics[0],
	        .payload = line,
	        .payload_len = len,
	        .qos = o->qos,
	        .retain = o->retain,
	        .props = props_get(&o->publish_props),
	};
	uint16_t mid = 0;
	enum tern_err err = tern_client_publish(tc->c, &args, &mid);

	debug_publish(tc, o, mid, len);
	if (err == TERN_OK)
		return true;
	if (err == TERN_E_CLOSED || err == TERN_E_SYS)
		conn_report_lost(tc, err);
	else if (!o->common.quiet)
		fprintf(stderr, "Error: cannot publish: %s.\n", tern_strerror(err));
	return false;
}

static int publish_lines(struct tool_conn *tc, const struct tool_opts *o)
{
	char *buf = NULL;
	size_t len = 0, cap = 0, off = 0;
	bool eof = false;
	int rc = 1;

	for (;;) {
		char *nl;
		bool can_read, ready;
		enum tern_err err;

		while (off < len && (nl = memchr(buf + off, '\n', len - off)) != NULL) {
			if (!publish_line(tc, o, buf + off, (size_t)(nl - (buf + off))))
				goto out;
			off = (size_t)(nl - buf) + 1;
		}
		if (eof) {
			/* A last line without its newline is still a line. */
			if (off < len && !publish_line(tc, o, buf + off, len - off))
				goto out;
			break;
		}
		if (off > 0) {
			memmove(buf, buf + off, len - off);
			len -= off;
			off = 0;
		}
		can_read = tern_client_pending(tc->c) < o->max_inflight &&
		           !tern_client_want_write(tc->c);
		err = conn_poll(tc, can_read ? STDIN_FILENO : -1, -1, &ready);
		if (err != TERN_OK) {
			conn_report_lost(tc, err);
			goto out;
		}
		if (ready) {
			ssize_t n;

			if (cap - len < 65536) {
				char *p;

				if (cap > MAX_PAYLOAD) {
					if (!o->common.quiet)
						fprintf(stderr,
						        "Error: line longer than %u bytes.\n",
						        MAX_PAYLOAD);
					goto out;
				}
				p = realloc(buf, cap * 2 + 65536);
				if (p == NULL)
					goto out;
				buf = p;
				cap = cap * 2 + 65536;
			}
			n = read(STDIN_FILENO, buf + len, cap - len);
			if (n == 0) {
				eof = true;
			} else if (n < 0) {
				if (errno != EINTR && errno != EAGAIN) {
					if (!o->common.quiet)
						fprintf(stderr, "Error: reading stdin: %s.\n",
						        strerror(errno));
					goto out;
				}
			} else {
				len += (size_t)n;
			}
		}
	}
	/* Every line is queued; wait for the acknowledgements. */
	while (tern_client_pending(tc->c) > 0) {
		enum tern_err err = conn_poll(tc, -1, -1, NULL);

		if (err != TERN_OK) {
			conn_report_lost(tc, err);
			goto out;
		}
	}
	rc = tc->publish_failed ? 1 : 0;
out:
	free(buf);
	return rc;
}

int pub_main(int argc, char **argv)
{
	struct tool_opts o;
	struct tool_conn tc;
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	switch (opts_parse(&o, TOOL_PUB, argc, argv)) {
	case PARSE_HELP:
		return 0;
	case PARSE_ERROR:
		return TOOL_EXIT_USAGE;
	case PARSE_OK:
		break;
	}
	if (o.msg == MSG_ARG) {
		len = strlen(o.message);
	} else if (o.msg == MSG_FILE || o.msg == MSG_STDIN) {
		FILE *f = o.msg == MSG_FILE ? fopen(o.file, "rb") : stdin;
		bool ok = f != NULL && read_all(f, &data, &len);

		if (!ok || len > MAX_PAYLOAD) {
			if (o.msg == MSG_FILE)
				fprintf(stderr, "Error: Unable to read file \"%s\": %s.\n", o.file,
				        !ok ? strerror(errno) : "larger than 268435455 bytes");
			else
				fprintf(stderr, "Error: Unable to read stdin: %s.\n",
				        !ok ? strerror(errno) : "larger than 268435455 bytes");
			if (f != NULL && f != stdin)
				fclose(f);
			free(data);
			opts_free(&o);
			return 1;
		}
		if (f != stdin)
			fclose(f);
	}

	rc = conn_open(&tc, &o, NULL, NULL);
	if (rc == 0) {
		if (o.msg == MSG_LINES)
			rc = publish_lines(&tc, &o);
		else
			rc = publish_repeat(
			        &tc, &o, o.msg == MSG_ARG ? (const uint8_t *)o.message : data, len);
		conn_close(&tc);
	}
	free(data);
	opts_free(&o);
	return rc;
}
