/*
 * auth.h - authentication and ACL, broker side (auth.c, on src/auth): the
 * password and ACL files in force on each worker, the CONNECT credential
 * check (off the loop when a password must be hashed, see auth_pool.h) and
 * the ACL check of PUBLISH and SUBSCRIBE.
 */
#ifndef TERN_BROKER_AUTH_H
#define TERN_BROKER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/codec.h"
#include "tern/error.h"

struct auth_state;
struct broker;
struct conn;
struct worker;

/* Where a connection's password check is (auth.c). */
enum conn_auth {
	CONN_AUTH_NONE, /* not asked off the loop */
	CONN_AUTH_WAIT, /* asked; the CONNECT waits in rbuf, input paused */
	CONN_AUTH_DONE, /* the verdict is in auth_rc */
};

/* Loads password_file and acl_file for every worker and, with a
 * password_file, starts the password check threads (auth_pool.h); logs and
 * returns TERN_E_CONFIG when a file cannot be used, TERN_E_SYS / NOMEM
 * when the threads cannot start. */
enum tern_err auth_init(struct broker *b);

/* Stops the password check threads: after the workers stopped, before
 * their inboxes are drained for the last time. */
void auth_stop(struct broker *b);

/* SIGHUP: loads the files again and hands them to the workers; on a bad
 * file the old ones stay in force and the log says why. Main thread. */
void auth_reload(struct broker *b);

/* A worker takes a reloaded state (INBOX_AUTH); drops its old one. */
void auth_swap(struct worker *w, struct auth_state *a);
void auth_unref(struct auth_state *a);

/*
 * Checks the credentials of a CONNECT. Returns TERN_OK with *rc set to
 * TERN_RC_SUCCESS (and the username in force in *user: the certificate's
 * identity or the CONNECT's, len 0 data NULL for none) or to the v5 reason
 * to refuse with. Returns TERN_E_INCOMPLETE when the password is being
 * checked off the loop: the connection reads nothing meanwhile, its
 * CONNECT stays buffered, and once the verdict is in, the CONNECT is
 * handled again and this call gives the verdict (the hash runs once per
 * connection, whichever worker asks).
 */
enum tern_err auth_connect(struct conn *c, const struct tern_connect *p, struct tern_bytes *user,
                           uint8_t *rc);

/* INBOX_AUTH_DONE: the verdict rc for connection conn_id of w. Dropped
 * when that connection is gone or closing. */
void auth_verdict(struct worker *w, uint64_t conn_id, uint8_t rc);

/* A connection that waits for its verdict is freed: forget it, so the
 * verdict finds nothing. */
void auth_forget(struct conn *c);

/* When auth_connect() refused with rc because of allow_anonymous (no
 * username, or no password_file to check one against): why, naming the
 * directive, for the log and the v5 reason string (static text). NULL for
 * any other refusal. */
const char *auth_anonymous_refusal(const struct conn *c, const struct tern_connect *p, uint8_t rc);

/* ACL check (access is an enum acl_access): the acl_file if one is in
 * force (else allowed), after the broker-wide rules for writes under '$'
 * (no $share topic ever; a $SYS topic only with an acl_file grant naming
 * it, except $SYS/broker/connection/+/state). */
bool auth_allowed(const struct worker *w, const uint8_t *cid, size_t cid_len, const uint8_t *user,
                  size_t ulen, bool has_user, struct tern_bytes topic, int access);

#endif
