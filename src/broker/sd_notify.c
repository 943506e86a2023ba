/*
 * sd_notify.c - systemd's notification protocol, as sd_notify(3) and
 * systemd's own sd_notify.c (the reference implementation) write it: a
 * datagram socket, a sendto() of the state to $NOTIFY_SOCKET, and nothing
 * kept (a socket per call; ternd notifies a handful of times in its life).
 * An abstract name ('@' first) has a NUL instead of '@', and its address
 * length counts the name's bytes only, as abstract addresses must.
 */
#include "broker/sd_notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum tern_err sd_notify_send(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	if (!name || !name[0])
		return TERN_OK;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(name);
	/* A path must keep its NUL; an abstract name has none. */
	if (name[0] != '/' && name[0] != '@')
		return TERN_E_CONFIG;
	if (len >= sizeof(sa.sun_path) + (name[0] == '@'))
		return TERN_E_CONFIG;
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = 0;
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
	                              (name[0] == '/' ? 1 : 0));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return TERN_E_SYS;
	ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)strlen(state) ? TERN_OK : TERN_E_SYS;
}

enum tern_err sd_notify_reloading(void)
{
	/* systemd 253's Type=notify-reload wants the time the reload began
	 * on CLOCK_MONOTONIC, so that it can tell this reload's READY=1 from
	 * an earlier one; older systemd reads RELOADING=1 alone. */
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts))
		return TERN_E_SYS;
	char state[64];
	snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
	         (unsigned long long)ts.tv_sec * 1000000ull +
	                 (unsigned long long)ts.tv_nsec / 1000);
	return sd_notify_send(state);
}
