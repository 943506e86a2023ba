/*
 * transport_tcp.c - plain TCP: the socket calls themselves.
 */
#include <errno.h>
#include <sys/socket.h>

#include "broker/conn.h"
#include "broker/conn_internal.h"
#include "broker/transport.h"

static TERN_MUST_CHECK enum tern_err tcp_open(struct conn *c, const struct listener *l)
{
	(void)c;
	(void)l;
	return TERN_OK;
}

/* The result of a failed socket call, from errno. */
static TERN_MUST_CHECK enum tern_err sock_err(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK ? TERN_E_INCOMPLETE : TERN_E_SYS;
}

static TERN_MUST_CHECK enum tern_err tcp_read(struct conn *c, void *buf, size_t len, size_t *n)
{
	*n = 0;
	for (;;) {
		ssize_t r = recv(c->fd, buf, len, 0);
		if (r > 0) {
			*n = (size_t)r;
			return TERN_OK;
		}
		if (r == 0)
			return TERN_E_CLOSED;
		if (errno != EINTR)
			return sock_err();
	}
}

static TERN_MUST_CHECK enum tern_err tcp_write(struct conn *c, const void *buf, size_t len,
                                               size_t *n)
{
	*n = 0;
	if (len == 0)
		return TERN_OK;
	for (;;) {
		ssize_t w = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (w > 0) {
			*n = (size_t)w;
			return TERN_OK;
		}
		if (w == 0)
			return TERN_E_SYS; /* send() of len > 0 moves bytes or fails */
		if (errno != EINTR)
			return sock_err();
	}
}

static TERN_MUST_CHECK enum tern_err tcp_writev(struct conn *c, const struct iovec *iov, int iovcnt,
                                                size_t *n)
{
	struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
	*n = 0;
	for (;;) {
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (w > 0) {
			*n = (size_t)w;
			return TERN_OK;
		}
		if (w == 0)
			return TERN_E_SYS;
		if (errno != EINTR)
			return sock_err();
	}
}

static bool tcp_pending(const struct conn *c)
{
	(void)c;
	return false;
}

static bool tcp_out_pending(const struct conn *c)
{
	(void)c;
	return false;
}

static void tcp_close(struct conn *c)
{
	(void)c;
}

const struct transport transport_tcp = {
        .name = "tcp",
        .open = tcp_open,
        .read = tcp_read,
        .write = tcp_write,
        .out_pending = tcp_out_pending,
        .writev = tcp_writev,
        .pending = tcp_pending,
        .close = tcp_close,
};
