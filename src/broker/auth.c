/*
 * auth.c - the broker's use of password_file and acl_file (src/auth).
 *
 * The loaded files form one immutable auth_state, shared by all workers
 * and reference-counted. It holds one set of files, or with
 * per_listener_settings one per listener (mosquitto's security options of
 * a listener), found by the index of the listener a client connected on. Each worker reads only its own pointer to it, so
 * checks take no lock. A reload (SIGHUP) loads the files into a new state
 * on the main thread and hands it to every worker through its inbox; each
 * worker swaps its pointer and drops its reference to the old state, and
 * the last one frees it. A file that fails to load leaves the old state in
 * force, and the log says why.
 *
 * Password checks run off the loop (auth_pool.c): auth_check() says
 * whether one is needed, auth_ask() queues it, and the verdict comes back
 * to the worker's inbox (INBOX_AUTH_DONE). Waiting for it is the
 * connection's business (conn_sink.c): this file knows the files and the
 * rules, not connections. A request holds a reference to the state it is
 * checked against, so a reload meanwhile frees nothing under it.
 *
 * auth_allowed() also applies the broker-wide rules that come before any
 * acl_file, as in mosquitto: clients do not write to $SYS (bar the bridge
 * state topics) unless the acl_file names the topic, nor ever to $share.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/acl.h"
#include "auth/passwd.h"
#include "broker/auth.h"
#include "broker/auth_pool.h"
#include "broker/broker.h"
#include "broker/config.h"
#include "broker/stats.h"
#include "broker/transport.h"
#include "broker/worker.h"
#include "tern/codec.h"
#include "util/log.h"

struct auth_files {
	struct passwd_db *pw; /* NULL: no password_file */
	struct acl_db *acl;   /* NULL: no acl_file (everything allowed) */
};

struct auth_state {
	struct auth_files set[MAX_LISTENERS]; /* [0] only, or one per listener */
	unsigned n_sets;
	atomic_uint refs;
};

static void state_free(struct auth_state *a)
{
	for (unsigned i = 0; i < a->n_sets; i++) {
		passwd_free(a->set[i].pw);
		acl_free(a->set[i].acl);
	}
	free(a);
}

/* The files in force for listener (NULL for AUTH_LISTENER_NONE with
 * per_listener_settings: no one set applies). */
static const struct auth_files *files_of(const struct auth_state *a, unsigned listener)
{
	if (a->n_sets == 1)
		return &a->set[0];
	return listener < a->n_sets ? &a->set[listener] : NULL;
}

void auth_unref(struct auth_state *a)
{
	if (a && atomic_fetch_sub(&a->refs, 1) == 1)
		state_free(a);
}

/* Loads the configured files into a new state with `refs` references. */
static TERN_MUST_CHECK enum tern_err load(struct broker *b, unsigned refs, struct auth_state **out)
{
	const struct config *cfg = &b->cfg;
	struct auth_state *a = calloc(1, sizeof(*a));
	if (!a)
		return TERN_E_NOMEM;
	atomic_init(&a->refs, refs);
	a->n_sets =
	        cfg->per_listener_settings && cfg->n_listeners > 1 ? (unsigned)cfg->n_listeners : 1;
	char err[512];
	for (unsigned i = 0; i < a->n_sets; i++) {
		const struct security_cfg *sec = config_security(cfg, i);
		struct auth_files *f = &a->set[i];
		if (sec->password_file[0] &&
		    passwd_load(sec->password_file, &f->pw, err, sizeof(err))) {
			log_write(&b->log, LOG_TYPE_ERR, "Error: password_file: %s", err);
			state_free(a);
			return TERN_E_CONFIG;
		}
		if (sec->acl_file[0] && acl_load(sec->acl_file, &f->acl, err, sizeof(err))) {
			log_write(&b->log, LOG_TYPE_ERR, "Error: acl_file: %s", err);
			state_free(a);
			return TERN_E_CONFIG;
		}
	}
	*out = a;
	return TERN_OK;
}

enum tern_err auth_init(struct broker *b)
{
	struct auth_state *a;
	enum tern_err err = load(b, b->n_workers, &a);
	if (err)
		return err;
	for (unsigned i = 0; i < b->n_workers; i++)
		b->workers[i]->auth = a;
	bool any = false;
	for (unsigned i = 0; i < a->n_sets; i++)
		any |= a->set[i].pw != NULL;
	if (!any)
		return TERN_OK;
	/* Half the cores: the workers keep the rest for the clients. */
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = cpus > 1 ? (unsigned)(cpus / 2) : 1;
	err = auth_pool_new(threads, AUTH_POOL_QUEUE_MAX, &b->auth_pool);
	if (err)
		log_write(&b->log, LOG_TYPE_ERR,
		          "Error: cannot start the password check threads: %s", tern_strerror(err));
	return err;
}

void auth_stop(struct broker *b)
{
	auth_pool_free(b->auth_pool);
	b->auth_pool = NULL;
}

enum tern_err auth_reload(struct broker *b)
{
	struct auth_state *a;
	enum tern_err err = load(b, b->n_workers, &a);
	if (err) {
		log_write(&b->log, LOG_TYPE_ERR,
		          "Reload failed: the previous password and ACL files stay in force.");
		return err;
	}
	for (unsigned i = 0; i < b->n_workers; i++) {
		struct inbox_item *it = calloc(1, sizeof(*it));
		if (!it) {
			/* This worker keeps the old state; say so. */
			log_write(&b->log, LOG_TYPE_ERR,
			          "Error: out of memory; worker %u keeps the old ACL", i);
			auth_unref(a);
			continue;
		}
		it->kind = INBOX_AUTH;
		it->u.auth = a;
		worker_post(b->workers[i], it);
	}
	log_write(&b->log, LOG_TYPE_NOTICE, "Reloaded the password and ACL files.");
	/* psk_file too, as mosquitto reloads it; a bad one leaves that
	 * listener its keys. */
	for (size_t l = 0; l < b->n_listeners; l++) {
		char why[600];
		if (!b->listeners[l].psk_lock_made)
			continue;
		if (tls_listener_reload_psk(&b->listeners[l], config_security(&b->cfg, l)->psk_file,
		                            why, sizeof(why)) != TERN_OK) {
			log_write(&b->log, LOG_TYPE_ERR, "Error: %s; its keys stay as they were.",
			          why);
			err = TERN_E_CONFIG;
		} else {
			log_write(&b->log, LOG_TYPE_NOTICE, "Reloaded the psk_file of listener %u.",
			          b->listeners[l].cfg->port);
		}
	}
	return err;
}

void auth_swap(struct worker *w, struct auth_state *a)
{
	struct auth_state *old = w->auth;
	w->auth = a;
	auth_unref(old);
}

enum tern_err auth_ask(struct worker *w, unsigned listener, uint64_t conn_id,
                       const struct tern_connect *p, uint8_t *rc)
{
	struct auth_state *a = w->auth;
	const struct auth_files *f = files_of(a, listener);
	atomic_fetch_add(&a->refs, 1);
	enum tern_err err = auth_pool_submit(
	        w->broker->auth_pool, w, conn_id, a, f ? f->pw : NULL, p->username.data,
	        p->username.len, p->has_password ? p->password.data : NULL, p->password.len);
	if (err) {
		auth_unref(a);
		/* A full queue means more CONNECTs than the threads can
		 * hash: refuse this one now rather than queue without
		 * bound (v5 0x89; 3.1.1 "server unavailable"). */
		*rc = err == TERN_E_LIMIT ? TERN_RC_SERVER_BUSY : TERN_RC_SERVER_UNAVAILABLE;
		return TERN_OK;
	}
	stat_add(&w->stats, STAT_PASSWORD_CHECKS, 1);
	return TERN_E_INCOMPLETE;
}

enum tern_err auth_check(const struct worker *w, unsigned listener, const struct tern_connect *p,
                         uint8_t *rc)
{
	const struct auth_state *a = w->auth;
	const struct auth_files *f = a ? files_of(a, listener) : NULL;
	*rc = TERN_RC_SUCCESS;
	if (f && f->pw && p->has_username) {
		/* A username, when given, must be right, even where anonymous
		 * clients are welcome (as in mosquitto). The pool exists
		 * whenever a password_file is configured. */
		return TERN_E_INCOMPLETE;
	}
	/* Left: no username, or no password_file to check one against. With
	 * allow_anonymous false neither gets in: Not authorized, as mosquitto
	 * answers both. */
	if (!config_allow_anonymous(&w->broker->cfg, listener))
		*rc = TERN_RC_NOT_AUTHORIZED;
	return TERN_OK;
}

const char *auth_anonymous_refusal(const struct worker *w, unsigned listener,
                                   const struct tern_connect *p, uint8_t rc)
{
	const struct config *cfg = &w->broker->cfg;
	const struct auth_state *a = w->auth;
	const struct auth_files *f = a ? files_of(a, listener) : NULL;
	bool checked = f && f->pw && p->has_username;
	if (rc != TERN_RC_NOT_AUTHORIZED || config_allow_anonymous(cfg, listener) || checked)
		return NULL;
	bool set = config_allow_anonymous_set(cfg, listener);
	/* The log is where an operator finds out why nobody gets in: name
	 * the directive. */
	if (p->has_username)
		return set ? "not authorized: no password_file to check the username "
		             "against (allow_anonymous false); set password_file"
		           : "not authorized: no password_file to check the username "
		             "against, and allow_anonymous defaults to false once a "
		             "listener is configured; set password_file, or "
		             "allow_anonymous true";
	return set ? "not authorized: no username (allow_anonymous false)"
	           : "not authorized: no username, and allow_anonymous defaults to "
	             "false once a listener is configured; set allow_anonymous true, "
	             "or give clients a username and password (password_file)";
}

static bool has_prefix(struct tern_bytes t, const char *prefix)
{
	size_t n = strlen(prefix);
	return t.len >= n && memcmp(t.data, prefix, n) == 0;
}

/* What a client may write under '$', before any acl_file is consulted
 * (mosquitto 2.0.11's acl__check_dollar, src/security.c, prefixes and
 * all). */
enum dollar_write {
	DOLLAR_OPEN,     /* not a reserved topic: the acl_file decides, if any */
	DOLLAR_EXPLICIT, /* only an acl_file grant opens it */
	DOLLAR_NEVER,
};

static enum dollar_write dollar_write(struct tern_bytes topic)
{
	if (has_prefix(topic, "$share"))
		/* A shared subscription's name, never a topic anyone can
		 * subscribe to (section 4.8.2). */
		return DOLLAR_NEVER;
	if (!has_prefix(topic, "$SYS"))
		return DOLLAR_OPEN;
	/* Where a mosquitto bridge reports its state (its notifications,
	 * on by default): writable, as mosquitto leaves it. */
	static const uint8_t state[] = "$SYS/broker/connection/+/state";
	if (tern_topic_matches(state, sizeof(state) - 1, topic.data, topic.len))
		return DOLLAR_OPEN;
	return DOLLAR_EXPLICIT;
}

/* One set's verdict, after the rules for '$'. */
static bool files_allow(const struct auth_files *f, enum dollar_write d, const uint8_t *cid,
                        size_t cid_len, const uint8_t *user, size_t ulen, bool has_user,
                        struct tern_bytes topic, int access)
{
	if (d == DOLLAR_NEVER || (d == DOLLAR_EXPLICIT && !f->acl))
		return false;
	if (!f->acl)
		return true;
	return acl_allowed(f->acl, cid, cid_len, has_user ? user : NULL, ulen, topic.data,
	                   topic.len, (enum acl_access)access);
}

bool auth_allowed(const struct worker *w, unsigned listener, const uint8_t *cid, size_t cid_len,
                  const uint8_t *user, size_t ulen, bool has_user, struct tern_bytes topic,
                  int access)
{
	const struct auth_state *a = w->auth;
	/* $SYS is the broker's and $share names subscriptions: "The Server
	 * SHOULD prevent Clients from using such Topic Names to exchange
	 * messages with other Clients" (section 4.7.2). A $SYS topic opens
	 * only to an acl_file line that names it: a rule starting with a
	 * wildcard matches no '$' topic [MQTT-4.7.2-1], so `topic write #`
	 * does not. */
	if (listener == AUTH_LISTENER_BRIDGE)
		return true;
	enum dollar_write d = access == ACL_WRITE ? dollar_write(topic) : DOLLAR_OPEN;
	if (!a)
		return d == DOLLAR_OPEN;
	const struct auth_files *f = files_of(a, listener);
	if (f)
		return files_allow(f, d, cid, cid_len, user, ulen, has_user, topic, access);
	for (unsigned i = 0; i < a->n_sets; i++)
		if (files_allow(&a->set[i], d, cid, cid_len, user, ulen, has_user, topic, access))
			return true;
	return false;
}
