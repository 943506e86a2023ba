/*
 * auth.c - the broker's use of password_file and acl_file (src/auth).
 *
 * The loaded files form one immutable auth_state, shared by all workers
 * and reference-counted. Each worker reads only its own pointer to it, so
 * checks take no lock. A reload (SIGHUP) loads the files into a new state
 * on the main thread and hands it to every worker through its inbox; each
 * worker swaps its pointer and drops its reference to the old state, and
 * the last one frees it. A file that fails to load leaves the old state in
 * force, and the log says why.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/acl.h"
#include "auth/passwd.h"
#include "broker/broker.h"

struct auth_state {
	struct passwd_db *pw; /* NULL: no password_file */
	struct acl_db *acl;   /* NULL: no acl_file (everything allowed) */
	atomic_uint refs;
};

static void state_free(struct auth_state *a)
{
	passwd_free(a->pw);
	acl_free(a->acl);
	free(a);
}

void auth_unref(struct auth_state *a)
{
	if (a && atomic_fetch_sub(&a->refs, 1) == 1)
		state_free(a);
}

/* Loads the configured files into a new state with `refs` references. */
static enum tern_err load(struct broker *b, unsigned refs, struct auth_state **out)
{
	const struct tern_config *cfg = &b->cfg;
	struct auth_state *a = calloc(1, sizeof(*a));
	if (!a)
		return TERN_E_NOMEM;
	atomic_init(&a->refs, refs);
	char err[512];
	if (cfg->password_file[0] && passwd_load(cfg->password_file, &a->pw, err, sizeof(err))) {
		tern_log_write(&b->log, TERN_LOG_ERR, "Error: password_file: %s", err);
		state_free(a);
		return TERN_E_CONFIG;
	}
	if (cfg->acl_file[0] && acl_load(cfg->acl_file, &a->acl, err, sizeof(err))) {
		tern_log_write(&b->log, TERN_LOG_ERR, "Error: acl_file: %s", err);
		state_free(a);
		return TERN_E_CONFIG;
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
	return TERN_OK;
}

void auth_reload(struct broker *b)
{
	struct auth_state *a;
	if (load(b, b->n_workers, &a)) {
		tern_log_write(&b->log, TERN_LOG_ERR,
		               "Reload failed: the previous password and ACL files stay in force.");
		return;
	}
	for (unsigned i = 0; i < b->n_workers; i++) {
		struct inbox_item *it = calloc(1, sizeof(*it));
		if (!it) {
			/* This worker keeps the old state; say so. */
			tern_log_write(&b->log, TERN_LOG_ERR,
			               "Error: out of memory; worker %u keeps the old ACL", i);
			auth_unref(a);
			continue;
		}
		it->kind = INBOX_AUTH;
		it->u.auth = a;
		worker_post(b->workers[i], it);
	}
	tern_log_write(&b->log, TERN_LOG_NOTICE, "Reloaded the password and ACL files.");
}

void auth_swap(struct worker *w, struct auth_state *a)
{
	struct auth_state *old = w->auth;
	w->auth = a;
	auth_unref(old);
}

uint8_t auth_connect(struct conn *c, const struct tern_connect *p, struct tern_bytes *user)
{
	const struct tern_config *cfg = &c->w->broker->cfg;
	const struct auth_state *a = c->w->auth;
	if (c->listener->cfg->use_identity_as_username) {
		/* The certificate is the credential: no password is asked. */
		const char *id = tls_peer_identity(c);
		if (!id)
			return TERN_RC_NOT_AUTHORIZED;
		*user = (struct tern_bytes){(const uint8_t *)id, (uint32_t)strlen(id)};
		return TERN_RC_SUCCESS;
	}
	*user = p->has_username ? p->username : (struct tern_bytes){0};
	if (a && a->pw && p->has_username) {
		/* A username, when given, must be right, even where anonymous
		 * clients are welcome (as in mosquitto). */
		enum tern_err e =
		        passwd_check(a->pw, p->username.data, p->username.len,
		                     p->has_password ? p->password.data : NULL, p->password.len);
		return e ? TERN_RC_BAD_USERNAME_OR_PASSWORD : TERN_RC_SUCCESS;
	}
	if (cfg->allow_anonymous)
		return TERN_RC_SUCCESS;
	if (!p->has_username)
		return TERN_RC_NOT_AUTHORIZED;
	/* allow_anonymous false and no password file: nobody can be checked,
	 * so nobody gets in, as in mosquitto. */
	return TERN_RC_BAD_USERNAME_OR_PASSWORD;
}

bool auth_allowed(const struct worker *w, const uint8_t *cid, size_t cid_len, const uint8_t *user,
                  size_t ulen, bool has_user, struct tern_bytes topic, int access)
{
	const struct auth_state *a = w->auth;
	if (!a || !a->acl)
		return true;
	return acl_allowed(a->acl, cid, cid_len, has_user ? user : NULL, ulen, topic.data,
	                   topic.len, (enum acl_access)access);
}
