/*
 * transport_tcp.c - plain TCP: the socket calls themselves.
 */
#include <errno.h>
#include <sys/socket.h>

#include "broker/conn.h"
#include "broker/transport.h"

static enum tern_err tcp_open(struct conn *c, const struct listener *l)
{
	(void)c;
	(void)l;
	return TERN_OK;
}

static ssize_t tcp_read(struct conn *c, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = recv(c->fd, buf, len, 0);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN || errno == EWOULDBLOCK ? TP_AGAIN : TP_ERROR;
	}
}

static ssize_t tcp_write(struct conn *c, const void *buf, size_t len)
{
	if (len == 0)
		return 0;
	for (;;) {
		ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n > 0)
			return n;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? TP_AGAIN : TP_ERROR;
	}
}

static ssize_t tcp_writev(struct conn *c, const struct iovec *iov, int n)
{
	struct msghdr mh = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
	for (;;) {
		ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
		if (w > 0)
			return w;
		if (w < 0 && errno == EINTR)
			continue;
		return w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? TP_AGAIN : TP_ERROR;
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
