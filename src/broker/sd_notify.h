/*
 * sd_notify.h - telling the service manager how ternd is doing, without
 * libsystemd: systemd's notification protocol (sd_notify(3)) is one
 * datagram of "KEY=VALUE" lines to the unix socket named by $NOTIFY_SOCKET.
 */
#ifndef TERN_BROKER_SD_NOTIFY_H
#define TERN_BROKER_SD_NOTIFY_H

#include "tern/error.h"

/*
 * Sends state ("READY=1", "STOPPING=1", ... lines separated by '\n') to
 * $NOTIFY_SOCKET: a path, or an abstract socket name when it starts with
 * '@'. Without $NOTIFY_SOCKET (not started by a Type=notify service) it
 * does nothing and returns TERN_OK. TERN_E_CONFIG when the name is not one
 * a socket can have, TERN_E_SYS when the datagram cannot be sent (errno
 * says why). Safe from any thread: it keeps nothing between calls.
 */
TERN_MUST_CHECK enum tern_err sd_notify_send(const char *state);

/* "RELOADING=1" with the MONOTONIC_USEC= systemd asks of a reload. */
TERN_MUST_CHECK enum tern_err sd_notify_reloading(void);

#endif
