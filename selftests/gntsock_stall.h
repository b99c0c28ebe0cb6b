/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gntsock_stall.h - a user buffer that faults until the test says so, and
 * the check that such a fault stalls only the thread that met it (issue
 * 12, defect 1). Include after gntsock_util.h and gntsock_grant_peer.h.
 *
 * The scene: a connection to the peer's grant responder asks GR_GNTDEV_MAP,
 * which answers at once and again GNT_STALL_LATE_MS later. With the first
 * answer queued, a thread does something on that connection with a buffer
 * of a userfaultfd range nobody serves (as a FUSE mapping whose daemon
 * never answers); the second answer arrives while it is stalled, and the
 * link's receive work must deliver it without waiting for the stalled
 * thread. Meanwhile an echo over another connection must answer.
 */
#ifndef GNTSOCK_STALL_H
#define GNTSOCK_STALL_H

#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/userfaultfd.h>

#define GNT_STALL_LATE_MS	1500
#define GNT_STALL_WAIT_US	3000000	/* the second answer came meanwhile */

/*
 * @len bytes whose first touch waits until *@uffd is closed; NULL (errno
 * set) if userfaultfd is not available.
 */
static inline void *gnt_uffd_region(size_t len, int *uffd)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_MISSING };
	void *p;
	int e;

	*uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (*uffd < 0)
		return NULL;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		goto fail;
	reg.range.start = (unsigned long)p;
	reg.range.len = len;
	if (!ioctl(*uffd, UFFDIO_API, &api) &&
	    !ioctl(*uffd, UFFDIO_REGISTER, &reg))
		return p;
	munmap(p, len);
fail:
	e = errno;
	close(*uffd);
	errno = e;
	return NULL;
}

/* An echo of 4 KiB over a new connection within @timeout_s: 0 or -errno. */
static inline int gnt_link_alive(unsigned int peer, int timeout_s)
{
	char out[4096], in[4096];
	int fd, ret = 0;

	fd = gnt_connect(peer, GNTSOCK_PEER_PORT_ECHO, timeout_s);
	if (fd < 0)
		return fd;
	memset(out, 0xa5, sizeof(out));
	if (send(fd, out, sizeof(out), MSG_NOSIGNAL) != sizeof(out))
		ret = -errno;
	else if (recv(fd, in, sizeof(in), MSG_WAITALL) != sizeof(in))
		ret = errno ? -errno : -EPIPE;
	else if (memcmp(in, out, sizeof(in)))
		ret = -EBADMSG;
	close(fd);
	return ret;
}

struct gnt_stall {
	int fd;			/* to the grant responder */
	void *buf;		/* one page of the userfaultfd range */
	ssize_t ret;		/* what the stalled call returned */
	int err;		/* and its errno */
	int alive;		/* gnt_link_alive() during the stall */
	int64_t alive_ms;	/* how long that took */
};

/*
 * Connect @st->fd (@type) to the responder on @port, ask GR_GNTDEV_MAP and
 * wait for its first answer; run @fn(@st) in a thread until it stalls on
 * @st->buf, check the link, resolve the fault, join. Return: 0, or a
 * negative errno if the scene could not be set (the test skips on
 * -ENOSYS: no userfaultfd).
 */
static inline int gnt_stall_run(unsigned int peer, int type,
				unsigned int port, void *(*fn)(void *),
				struct gnt_stall *st)
{
	struct gnt_grant_req req = {
		.op = GR_GNTDEV_MAP, .arg = GNT_STALL_LATE_MS,
		.val = (uint64_t)0x7ff4 << 32,	/* DOMID_INVALID: fails */
	};
	struct sockaddr_gnt a = gnt_addr(peer, port);
	struct timeval ct = { .tv_sec = 20 };
	pthread_t tid;
	int uffd, ret;
	int64_t t0;

	st->buf = gnt_uffd_region(4096, &uffd);
	if (!st->buf)
		return -ENOSYS;
	st->fd = socket(AF_GNTSOCK, type | SOCK_CLOEXEC, 0);
	if (st->fd < 0 || gnt_set_timeouts(st->fd, 20) ||
	    setsockopt(st->fd, SOL_GNTSOCK, GNTSOCK_SO_CONNECT_TIMEOUT, &ct,
		       sizeof(ct)) ||
	    connect(st->fd, (struct sockaddr *)&a, sizeof(a)) ||
	    send(st->fd, &req, sizeof(req), MSG_NOSIGNAL) != sizeof(req)) {
		ret = errno ? -errno : -EIO;
		goto out;
	}
	ret = -ETIMEDOUT;
	if (gnt_poll1(st->fd, POLLIN, 10000) <= 0)
		goto out;
	ret = -pthread_create(&tid, NULL, fn, st);
	if (ret)
		goto out;
	usleep(GNT_STALL_WAIT_US);
	t0 = gnt_now_ms();
	st->alive = gnt_link_alive(peer, 10);
	st->alive_ms = gnt_now_ms() - t0;
	close(uffd);	/* resolves the fault */
	uffd = -1;
	pthread_join(tid, NULL);
	return 0;
out:
	if (uffd >= 0)
		close(uffd);
	return ret;
}

#endif /* GNTSOCK_STALL_H */
