/*
 * auth.h - authentication and ACL, broker side (auth.c, on src/auth): the
 * password and ACL files in force on each worker, the CONNECT credential
 * check (off the loop when a password must be hashed, see auth_pool.h) and
 * the ACL check of PUBLISH and SUBSCRIBE. It knows no connection: waiting
 * for a verdict is conn_sink.c's.
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
struct worker;

/* The listener of a session restored from the store whose client has not
 * connected since (auth_allowed()). */
#define AUTH_LISTENER_NONE 0xff

/* The "listener" of the broker's own sessions, a bridge's local side
 * (bridge.c): the ACL does not apply to them, as in mosquitto, whose ACL
 * check lets a bridge's context through. */
#define AUTH_LISTENER_BRIDGE 0xfe

/* Loads password_file and acl_file for every worker and, with a
 * password_file, starts the password check threads (auth_pool.h); logs and
 * returns TERN_E_CONFIG when a file cannot be used, TERN_E_SYS / NOMEM
 * when the threads cannot start. */
TERN_MUST_CHECK enum tern_err auth_init(struct broker *b);

/* Stops the password check threads: after the workers stopped, before
 * their inboxes are drained for the last time. */
void auth_stop(struct broker *b);

/* SIGHUP: loads the files again and hands them to the workers; on a bad
 * file the old ones stay in force, the log says why and the load's error
 * is returned. One caller at a time: the main thread, or the admin API's
 * POST /api/v1/reload (src/http), which serialises the two. */
TERN_MUST_CHECK enum tern_err auth_reload(struct broker *b);

/* A worker takes a reloaded state (INBOX_AUTH); drops its old one. */
void auth_swap(struct worker *w, struct auth_state *a);
void auth_unref(struct auth_state *a);

/* The credentials of a CONNECT that came in on listener (an index of the
 * broker's listeners) against the password_file and allow_anonymous in
 * force there (config_security()), when the connection has no verdict yet
 * (and no certificate standing for the username, see conn_sink.c): TERN_OK
 * with *rc TERN_RC_SUCCESS or the v5 reason to refuse with, or
 * TERN_E_INCOMPLETE when the password must be checked (auth_ask()). */
TERN_MUST_CHECK enum tern_err auth_check(const struct worker *w, unsigned listener,
                                         const struct tern_connect *p, uint8_t *rc);

/* Queues the check of p's password for connection conn_id of w on the
 * password threads: TERN_E_INCOMPLETE when queued (the verdict comes as
 * INBOX_AUTH_DONE), else TERN_OK with the reason to refuse with in *rc
 * (queue full, out of memory). */
TERN_MUST_CHECK enum tern_err auth_ask(struct worker *w, unsigned listener, uint64_t conn_id,
                                       const struct tern_connect *p, uint8_t *rc);

/* When auth_check() refused with rc because of allow_anonymous (no
 * username, or no password_file to check one against): why, naming the
 * directive, for the log and the v5 reason string (static text). NULL for
 * any other refusal. */
const char *auth_anonymous_refusal(const struct worker *w, unsigned listener,
                                   const struct tern_connect *p, uint8_t rc);

/* ACL check (access is an enum acl_access) of a client of listener: the
 * acl_file in force there if there is one (else allowed), after the
 * broker-wide rules for writes under '$' (no $share topic ever; a $SYS
 * topic only with an acl_file grant naming it, except
 * $SYS/broker/connection/+/state). With per_listener_settings, a session
 * restored from the store keeps no listener (AUTH_LISTENER_NONE) until its
 * client connects again: what any listener's acl_file allows is let into
 * its queue, where it is checked again, against the listener the client
 * came back on, before it is sent. */
bool auth_allowed(const struct worker *w, unsigned listener, const uint8_t *cid, size_t cid_len,
                  const uint8_t *user, size_t ulen, bool has_user, struct tern_bytes topic,
                  int access);

#endif
