/*
 * auth_pool.h - password checks on threads of their own.
 *
 * A password check hashes (PBKDF2, mosquitto's `$7$`) on purpose slowly.
 * Run on a worker, a burst of CONNECTs would stall every client of that
 * worker; so the workers hand each check to this small pool and go on.
 * The pool belongs to the broker (no globals); it is made only when a
 * password_file is configured, so other configurations never hop threads.
 *
 * A request carries copies of the user name and password, one reference to
 * the auth state it is checked against (a SIGHUP reload may replace the
 * workers' state meanwhile), the id of the connection and the worker to
 * answer. The verdict goes back through that worker's inbox
 * (INBOX_AUTH_DONE), matched there by connection id: the pool never sees a
 * connection, so one that closed meanwhile is simply not found.
 */
#ifndef TERN_BROKER_AUTH_POOL_H
#define TERN_BROKER_AUTH_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"

struct auth_pool;
struct auth_state;
struct passwd_db;
struct worker;

/* Requests waiting for a thread, at most: beyond it a CONNECT is refused
 * as "server busy" rather than queued without bound. */
#define AUTH_POOL_QUEUE_MAX 1024u

/* How much nicer than the workers the pool's threads run. */
#define AUTH_POOL_NICE 10

/* Threads of the pool, at most. */
#define AUTH_POOL_THREADS_MAX 4u

/* Makes a pool of `threads` threads (1..AUTH_POOL_THREADS_MAX) with a
 * queue of `cap` requests and starts them. Returns TERN_OK and the pool in
 * *out (owned by the caller: auth_pool_free), TERN_E_NOMEM or TERN_E_SYS
 * (a thread could not start; nothing is left running). */
TERN_MUST_CHECK enum tern_err auth_pool_new(unsigned threads, unsigned cap, struct auth_pool **out);

/* Stops the threads (a check in progress finishes and is posted) and
 * frees the requests still queued, without answering them: call it before
 * the workers' inboxes are drained for the last time, after the workers
 * stopped. NULL is a no-op. */
void auth_pool_free(struct auth_pool *p);

/*
 * Queues the check of user / pw (copied; pw NULL when the CONNECT had no
 * password) against db, which belongs to state: the pool takes over the
 * caller's reference to state and drops it once the check is done. The
 * verdict, a CONNACK reason (TERN_RC_SUCCESS or
 * TERN_RC_BAD_USERNAME_OR_PASSWORD), is posted to w as INBOX_AUTH_DONE
 * for conn_id. Any thread may call it.
 * Returns TERN_OK; TERN_E_LIMIT when the queue is full or TERN_E_NOMEM (in
 * both cases nothing is queued and the reference stays with the caller:
 * it takes state only on TERN_OK, so it is not named _take).
 */
TERN_MUST_CHECK enum tern_err auth_pool_submit(struct auth_pool *p, struct worker *w,
                                               uint64_t conn_id, struct auth_state *state,
                                               const struct passwd_db *db, const uint8_t *user,
                                               size_t ulen, const uint8_t *pw, size_t pwlen);

#endif
