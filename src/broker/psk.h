/*
 * psk.h - mosquitto's psk_file: the identities and pre-shared keys a
 * TLS-PSK listener (psk_hint) lets in.
 *
 * The file has one "identity:key" a line, the key in hexadecimal without
 * "0x"; blank lines and lines starting with '#' are skipped. It is read
 * once, when the listener's TLS context is made, into a table that the
 * handshake callback reads (from any worker: it is never written after
 * psk_load()). An identity is at most PSK_IDENTITY_MAX bytes and a key at
 * most PSK_KEY_MAX bytes, OpenSSL's own limits.
 */
#ifndef TERN_BROKER_PSK_H
#define TERN_BROKER_PSK_H

#include <stddef.h>
#include <stdint.h>

#include "tern/error.h"

#define PSK_IDENTITY_MAX 128
#define PSK_KEY_MAX      256

struct psk_table;

/* Reads path into *out (owned by the caller, psk_free()). TERN_E_CONFIG
 * with "path:line: why" in err for a bad line, TERN_E_SYS when it cannot
 * be read, TERN_E_NOMEM. */
TERN_MUST_CHECK enum tern_err psk_load(const char *path, struct psk_table **out, char *err,
                                       size_t errlen);

/* Copies the key of identity into key[0..cap) and returns its length; 0
 * when the identity is not in t (or its key does not fit, which psk_load
 * rules out for PSK_KEY_MAX). */
size_t psk_key(const struct psk_table *t, const char *identity, uint8_t *key, size_t cap);

/* Number of identities in t. */
size_t psk_count(const struct psk_table *t);

/* Frees t; NULL is allowed. */
void psk_free(struct psk_table *t);

#endif
