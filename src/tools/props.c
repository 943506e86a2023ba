/*
 * props.c - -D / --property: MQTT 5.0 properties from the command line.
 *
 *   -D command identifier value
 *   -D command user-property name value
 *
 * as in mosquitto_pub / mosquitto_sub. command is the packet the property
 * goes into (connect, publish, will, subscribe, unsubscribe, disconnect);
 * identifier is the property's name in the specification with '-' between
 * words. One table lists every property: its id, its value type and the
 * packets that may carry it, so that a property in the wrong packet is an
 * error here, with the names the user typed, rather than a protocol error
 * from the broker later.
 *
 * Values are not copied: strings and binary data point into argv, which
 * outlives the client. User properties are encoded with the codec's
 * tern_user_prop_encode() into a block owned by struct tool_props, which is
 * what struct tern_props takes. With MQTT 3.1 / 3.1.1 the properties are
 * accepted and not sent, as mosquitto does.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tools.h"

enum ptype {
	PT_BYTE,
	PT_U16,
	PT_U32,
	PT_VBI,
	PT_STR,
	PT_BIN,
	PT_PAIR,
};

/* Packets a property may be given for. */
enum {
	C_CONNECT = 1 << 0,
	C_PUBLISH = 1 << 1,
	C_WILL = 1 << 2,
	C_SUBSCRIBE = 1 << 3,
	C_UNSUBSCRIBE = 1 << 4,
	C_DISCONNECT = 1 << 5,
};

struct propdef {
	const char *name;
	uint8_t id;
	enum ptype type;
	unsigned cmds;
	uint32_t min, max; /* numeric range */
};

#define MSG_PROPS (C_PUBLISH | C_WILL)

static const struct propdef defs[] = {
        {"payload-format-indicator", TERN_PROP_PAYLOAD_FORMAT, PT_BYTE, MSG_PROPS, 0, 1},
        {"message-expiry-interval", TERN_PROP_MESSAGE_EXPIRY, PT_U32, MSG_PROPS, 0, UINT32_MAX},
        {"content-type", TERN_PROP_CONTENT_TYPE, PT_STR, MSG_PROPS, 0, 0},
        {"response-topic", TERN_PROP_RESPONSE_TOPIC, PT_STR, MSG_PROPS, 0, 0},
        {"correlation-data", TERN_PROP_CORRELATION_DATA, PT_BIN, MSG_PROPS, 0, 0},
        {"subscription-identifier", TERN_PROP_SUBSCRIPTION_ID, PT_VBI, C_SUBSCRIBE, 1,
         TERN_SUB_ID_MAX},
        {"session-expiry-interval", TERN_PROP_SESSION_EXPIRY, PT_U32, C_CONNECT | C_DISCONNECT, 0,
         UINT32_MAX},
        {"authentication-method", TERN_PROP_AUTH_METHOD, PT_STR, C_CONNECT, 0, 0},
        {"authentication-data", TERN_PROP_AUTH_DATA, PT_BIN, C_CONNECT, 0, 0},
        {"request-problem-information", TERN_PROP_REQUEST_PROBLEM_INFO, PT_BYTE, C_CONNECT, 0, 1},
        {"will-delay-interval", TERN_PROP_WILL_DELAY, PT_U32, C_WILL, 0, UINT32_MAX},
        {"request-response-information", TERN_PROP_REQUEST_RESPONSE_INFO, PT_BYTE, C_CONNECT, 0, 1},
        {"reason-string", TERN_PROP_REASON_STRING, PT_STR, C_DISCONNECT, 0, 0},
        {"receive-maximum", TERN_PROP_RECEIVE_MAXIMUM, PT_U16, C_CONNECT, 1, 65535},
        {"topic-alias-maximum", TERN_PROP_TOPIC_ALIAS_MAXIMUM, PT_U16, C_CONNECT, 0, 65535},
        {"topic-alias", TERN_PROP_TOPIC_ALIAS, PT_U16, C_PUBLISH, 1, 65535},
        {"user-property", TERN_PROP_USER_PROPERTY, PT_PAIR,
         C_CONNECT | C_PUBLISH | C_WILL | C_SUBSCRIBE | C_UNSUBSCRIBE | C_DISCONNECT, 0, 0},
        {"maximum-packet-size", TERN_PROP_MAXIMUM_PACKET_SIZE, PT_U32, C_CONNECT, 1, UINT32_MAX},
        /* Sent by servers only; named so that the error says so. */
        {"assigned-client-identifier", TERN_PROP_ASSIGNED_CLIENT_ID, PT_STR, 0, 0, 0},
        {"server-keep-alive", TERN_PROP_SERVER_KEEP_ALIVE, PT_U16, 0, 0, 0},
        {"response-information", TERN_PROP_RESPONSE_INFO, PT_STR, 0, 0, 0},
        {"server-reference", TERN_PROP_SERVER_REFERENCE, PT_STR, 0, 0, 0},
        {"maximum-qos", TERN_PROP_MAXIMUM_QOS, PT_BYTE, 0, 0, 0},
        {"retain-available", TERN_PROP_RETAIN_AVAILABLE, PT_BYTE, 0, 0, 0},
        {"wildcard-subscription-available", TERN_PROP_WILDCARD_SUB_AVAILABLE, PT_BYTE, 0, 0, 0},
        {"subscription-identifier-available", TERN_PROP_SUB_ID_AVAILABLE, PT_BYTE, 0, 0, 0},
        {"shared-subscription-available", TERN_PROP_SHARED_SUB_AVAILABLE, PT_BYTE, 0, 0, 0},
};

struct cmddef {
	const char *name;
	unsigned bit;
	size_t offset;  /* of its struct tool_props in struct tool_opts */
	unsigned modes; /* 1 << TOOL_PUB | 1 << TOOL_SUB */
};

#define BOTH ((1u << TOOL_PUB) | (1u << TOOL_SUB))

static const struct cmddef cmds[] = {
        {"connect", C_CONNECT, offsetof(struct tool_opts, connect_props), BOTH},
        {"publish", C_PUBLISH, offsetof(struct tool_opts, publish_props), 1u << TOOL_PUB},
        {"will", C_WILL, offsetof(struct tool_opts, will_props), BOTH},
        {"subscribe", C_SUBSCRIBE, offsetof(struct tool_opts, subscribe_props), 1u << TOOL_SUB},
        {"unsubscribe", C_UNSUBSCRIBE, offsetof(struct tool_opts, unsubscribe_props),
         1u << TOOL_SUB},
        {"disconnect", C_DISCONNECT, offsetof(struct tool_opts, disconnect_props), BOTH},
};

static bool add_user(struct tool_opts *o, struct tool_props *tp, const char *name,
                     const char *value)
{
	struct tern_bytes n = {(const uint8_t *)name, (uint32_t)strlen(name)};
	struct tern_bytes v = {(const uint8_t *)value, (uint32_t)strlen(value)};
	size_t need = tp->user_len + 5 + strlen(name) + strlen(value);
	enum tern_err err;

	if (strlen(name) > 65535 || strlen(value) > 65535) {
		opts_error(o, "user-property name or value longer than 65535 bytes.");
		return false;
	}
	if (need > tp->user_cap) {
		size_t cap = need * 2;
		uint8_t *p = realloc(tp->user, cap);

		if (p == NULL) {
			opts_error(o, "out of memory.");
			return false;
		}
		tp->user = p;
		tp->user_cap = cap;
	}
	err = tern_user_prop_encode(tp->user, tp->user_cap, &tp->user_len, n, v);
	if (err != TERN_OK) {
		opts_error(o, "invalid user-property '%s' '%s': %s.", name, value,
		           tern_strerror(err));
		return false;
	}
	tp->p.n_user++;
	tp->p.user_raw.data = tp->user;
	tp->p.user_raw.len = (uint32_t)tp->user_len;
	return true;
}

static bool set_number(struct tern_props *p, uint8_t id, uint32_t v, struct tool_props *tp)
{
	switch (id) {
	case TERN_PROP_PAYLOAD_FORMAT:
		p->payload_format = (uint8_t)v;
		break;
	case TERN_PROP_MESSAGE_EXPIRY:
		p->message_expiry = v;
		break;
	case TERN_PROP_SUBSCRIPTION_ID:
		tp->sub_id = v;
		p->sub_ids = &tp->sub_id;
		p->n_sub_ids = 1;
		return true; /* counted, not flagged */
	case TERN_PROP_SESSION_EXPIRY:
		p->session_expiry = v;
		break;
	case TERN_PROP_REQUEST_PROBLEM_INFO:
		p->request_problem_info = (uint8_t)v;
		break;
	case TERN_PROP_WILL_DELAY:
		p->will_delay = v;
		break;
	case TERN_PROP_REQUEST_RESPONSE_INFO:
		p->request_response_info = (uint8_t)v;
		break;
	case TERN_PROP_RECEIVE_MAXIMUM:
		p->receive_maximum = (uint16_t)v;
		break;
	case TERN_PROP_TOPIC_ALIAS_MAXIMUM:
		p->topic_alias_maximum = (uint16_t)v;
		break;
	case TERN_PROP_TOPIC_ALIAS:
		p->topic_alias = (uint16_t)v;
		break;
	case TERN_PROP_MAXIMUM_PACKET_SIZE:
		p->maximum_packet_size = v;
		break;
	default:
		return false;
	}
	p->present |= TERN_PROP_BIT(id);
	return true;
}

static void set_bytes(struct tern_props *p, uint8_t id, struct tern_bytes b)
{
	switch (id) {
	case TERN_PROP_CONTENT_TYPE:
		p->content_type = b;
		break;
	case TERN_PROP_RESPONSE_TOPIC:
		p->response_topic = b;
		break;
	case TERN_PROP_CORRELATION_DATA:
		p->correlation_data = b;
		break;
	case TERN_PROP_AUTH_METHOD:
		p->auth_method = b;
		break;
	case TERN_PROP_AUTH_DATA:
		p->auth_data = b;
		break;
	case TERN_PROP_REASON_STRING:
		p->reason_string = b;
		break;
	default:
		return;
	}
	p->present |= TERN_PROP_BIT(id);
}

bool props_parse(struct tool_opts *o, int argc, char **argv, int *i)
{
	const struct cmddef *cmd = NULL;
	const struct propdef *def = NULL;
	struct tool_props *tp;
	const char *value;
	size_t k;

	if (*i + 2 >= argc) {
		opts_error(o, "-D needs a command, a property name and a value "
		              "(-D publish user-property name value).");
		return false;
	}
	for (k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
		if (strcasecmp(argv[*i], cmds[k].name) == 0)
			cmd = &cmds[k];
	}
	if (cmd == NULL) {
		if (strcasecmp(argv[*i], "pubrel") == 0 || strcasecmp(argv[*i], "auth") == 0)
			opts_error(o, "-D %s: properties for %s are not supported by %s.", argv[*i],
			           argv[*i], o->prog);
		else
			opts_error(o, "Invalid command '%s' given in --property argument.",
			           argv[*i]);
		return false;
	}
	if (!(cmd->modes & (1u << o->mode))) {
		opts_error(o, "-D %s: %s sends no %s packet.", cmd->name, o->prog, cmd->name);
		return false;
	}
	for (k = 0; k < sizeof(defs) / sizeof(defs[0]); k++) {
		if (strcasecmp(argv[*i + 1], defs[k].name) == 0)
			def = &defs[k];
	}
	if (def == NULL) {
		opts_error(o, "Invalid property name '%s' given in --property argument.",
		           argv[*i + 1]);
		return false;
	}
	if (!(def->cmds & cmd->bit)) {
		opts_error(o, "%s property not allowed for %s in --property argument.", def->name,
		           cmd->name);
		return false;
	}
	tp = (struct tool_props *)((char *)o + cmd->offset);
	tp->any = true;
	if (def->type == PT_PAIR) {
		if (*i + 3 >= argc) {
			opts_error(o, "-D %s user-property needs a name and a value.", cmd->name);
			return false;
		}
		if (!add_user(o, tp, argv[*i + 2], argv[*i + 3]))
			return false;
		*i += 3;
		return true;
	}
	value = argv[*i + 2];
	if (def->id == TERN_PROP_SUBSCRIPTION_ID ? tp->p.n_sub_ids > 0
	                                         : (tp->p.present & TERN_PROP_BIT(def->id)) != 0) {
		opts_error(o, "-D %s %s given twice.", cmd->name, def->name);
		return false;
	}
	switch (def->type) {
	case PT_BYTE:
	case PT_U16:
	case PT_U32:
	case PT_VBI: {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(value, &end, 10);
		if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 ||
		    v < def->min || v > def->max) {
			opts_error(o, "Property value (%s) out of range for property %s.", value,
			           def->name);
			return false;
		}
		set_number(&tp->p, def->id, (uint32_t)v, tp);
		break;
	}
	case PT_STR:
	case PT_BIN: {
		struct tern_bytes b = {(const uint8_t *)value, (uint32_t)strlen(value)};

		if (strlen(value) > 65535) {
			opts_error(o, "Property value for %s longer than 65535 bytes.", def->name);
			return false;
		}
		if (def->type == PT_STR && !tern_utf8_valid(b.data, b.len)) {
			opts_error(o, "Property value for %s is not valid UTF-8.", def->name);
			return false;
		}
		if (def->id == TERN_PROP_RESPONSE_TOPIC &&
		    tern_topic_name_check(b.data, b.len) != TERN_OK) {
			opts_error(o, "Invalid response-topic '%s', does it contain '+' or '#'?",
			           value);
			return false;
		}
		set_bytes(&tp->p, def->id, b);
		break;
	}
	case PT_PAIR:
		break;
	}
	*i += 2;
	return true;
}

const struct tern_props *props_get(const struct tool_props *tp)
{
	return tp->any ? &tp->p : NULL;
}

void props_free(struct tool_props *tp)
{
	free(tp->user);
	tp->user = NULL;
	tp->user_len = tp->user_cap = 0;
}
