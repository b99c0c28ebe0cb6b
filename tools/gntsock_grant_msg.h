/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gntsock_grant_msg.h - user-space helpers for AF_GNTSOCK's grant ABI
 * (Documentation/grants.rst): send a buffer by grant, pick the grant out of
 * a received message, read one outcome from the error queue. Header-only,
 * shared by the tools and the selftests.
 */
#ifndef GNTSOCK_GRANT_MSG_H
#define GNTSOCK_GRANT_MSG_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/gntsock.h>

/* Room for one grant cmsg of either direction, aligned for cmsghdr. */
union gnt_grant_cbuf {
	char b[CMSG_SPACE(sizeof(struct gntsock_grant_send))];
	char i[CMSG_SPACE(sizeof(struct gntsock_grant_info))];
	char e[CMSG_SPACE(sizeof(struct gntsock_grant_event))];
	struct cmsghdr align;
};

/*
 * sendmsg() of @len bytes at @data with a grant of [@buf, @buf + @blen)
 * (@flags: GNTSOCK_GRANT_WRITABLE or 0; @cookie comes back in its
 * events). Returns what sendmsg() returns.
 */
static inline ssize_t gnt_grant_sendmsg(int fd, const void *buf, uint64_t blen,
					uint32_t flags, uint64_t cookie,
					const void *data, size_t len,
					int msg_flags)
{
	struct gntsock_grant_send gs = {
		.addr = (uintptr_t)buf, .len = blen, .flags = flags,
		.cookie = cookie,
	};
	union gnt_grant_cbuf u;
	struct iovec iov = { (void *)data, len };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.b, .msg_controllen = sizeof(u.b),
	};
	struct cmsghdr *c;

	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_GNTSOCK;
	c->cmsg_type = GNTSOCK_CMSG_GRANT;
	c->cmsg_len = CMSG_LEN(sizeof(gs));
	memcpy(CMSG_DATA(c), &gs, sizeof(gs));
	return sendmsg(fd, &m, msg_flags);
}

/* The grant a recvmsg() returned with its data, if any: 1, else 0. */
static inline int gnt_grant_info(struct msghdr *m,
				 struct gntsock_grant_info *gi)
{
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level == SOL_GNTSOCK &&
		    c->cmsg_type == GNTSOCK_CMSG_GRANT_INFO &&
		    c->cmsg_len == CMSG_LEN(sizeof(*gi))) {
			memcpy(gi, CMSG_DATA(c), sizeof(*gi));
			return 1;
		}
	}
	return 0;
}

/*
 * One event from the socket's error queue within @timeout_ms (-1: no
 * limit). Returns 0, -ETIMEDOUT, -EPROTO for something else, or -errno.
 */
static inline int gnt_grant_event(int fd, int timeout_ms,
				  struct gntsock_grant_event *ev)
{
	union gnt_grant_cbuf u;
	struct msghdr m = { .msg_control = u.e,
			    .msg_controllen = sizeof(u.e) };
	struct pollfd p = { .fd = fd };
	struct cmsghdr *c;
	int r;

	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (!r || !(p.revents & POLLERR))
		return -ETIMEDOUT;
	if (recvmsg(fd, &m, MSG_ERRQUEUE) < 0)
		return -errno;
	c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_level != SOL_GNTSOCK ||
	    c->cmsg_type != GNTSOCK_CMSG_GRANT_EVENT ||
	    c->cmsg_len != CMSG_LEN(sizeof(*ev)))
		return -EPROTO;
	memcpy(ev, CMSG_DATA(c), sizeof(*ev));
	return 0;
}

#endif /* GNTSOCK_GRANT_MSG_H */
