/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gntsock_util.h - helpers shared by the AF_GNTSOCK selftests.
 *
 * Everything is static inline; the parsers take text so that they can be
 * unit tested on a host without the module (gntsock_helpers_test.c).
 * Functions that return int return 0 or a negative errno unless noted.
 */
#ifndef GNTSOCK_UTIL_H
#define GNTSOCK_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <linux/gntsock.h>

#include "gntsock_peer.h"

#ifndef GNT_STAT_PATH
#define GNT_STAT_PATH	"/proc/net/gntsock_stat"
#endif
#ifndef GNT_LINKS_PATH
#define GNT_LINKS_PATH	"/proc/net/gntsock_links"
#endif

_Static_assert(AF_GNTSOCK == 22, "wrong gntsock.h: check -I order");
_Static_assert(sizeof(struct sockaddr_gnt) == 16, "sockaddr_gnt size");

/* ---- time ---------------------------------------------------------- */

static inline int64_t gnt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void gnt_sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- parsing ------------------------------------------------------- */

/* Parse a domid: decimal or 0x-hex, 0..0x7fff.  Returns 0 or -EINVAL. */
static inline int gnt_parse_domid(const char *s, unsigned int *domid)
{
	unsigned long v;
	char *end;

	if (!s || !*s || isspace((unsigned char)*s) || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || v > 0x7fff)
		return -EINVAL;
	*domid = (unsigned int)v;
	return 0;
}

/*
 * Find "key value" in the text of /proc/net/gntsock_stat.  Returns 0,
 * -ENOENT if the key is absent, -ERANGE if the value is negative (a
 * counting bug), -EINVAL if it is not a number.
 */
static inline int gnt_parse_stat(const char *text, const char *key,
				 uint64_t *val)
{
	size_t klen = strlen(key);
	const char *line = text;
	char *end;

	while (line && *line) {
		const char *p = line;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!strncmp(p, key, klen) &&
		    (p[klen] == ' ' || p[klen] == '\t' || p[klen] == ':')) {
			p += klen;
			while (*p == ' ' || *p == '\t' || *p == ':')
				p++;
			if (*p == '-' && isdigit((unsigned char)p[1]))
				return -ERANGE;	/* a counter went negative */
			if (!isdigit((unsigned char)*p))
				return -EINVAL;
			errno = 0;
			*val = strtoull(p, &end, 10);
			if (errno || (*end && !isspace((unsigned char)*end)))
				return -EINVAL;
			return 0;
		}
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return -ENOENT;
}

/* One line of /proc/net/gntsock_links. */
struct gnt_link_info {
	unsigned int peer;
	char role[16];		/* frontend | backend */
	char state[16];		/* connected | connecting | closed */
	uint64_t ring_pages;
	uint64_t tx_msgs;
	uint64_t rx_msgs;
	uint64_t tx_bytes;
	uint64_t rx_bytes;
	uint64_t resets;
	uint64_t violations;
	uint64_t sockets;
	uint64_t events_rx;	/* 0 where the line has no such column */
	uint64_t events_tx;
};

/*
 * Parse one data line:
 * "peer role state ring_pages tx_msgs rx_msgs tx_bytes rx_bytes resets
 *  violations sockets [events_rx events_tx ...]".  Returns 0, or -EINVAL
 *  (e.g. the header line).
 */
static inline int gnt_parse_link_line(const char *line,
				      struct gnt_link_info *li)
{
	unsigned long long v[8], ev[2];
	unsigned int peer;
	int n = 0;

	memset(li, 0, sizeof(*li));
	if (sscanf(line, " %u %15s %15s %llu %llu %llu %llu %llu %llu %llu "
		   "%llu%n", &peer, li->role, li->state, &v[0], &v[1], &v[2],
		   &v[3], &v[4], &v[5], &v[6], &v[7], &n) != 11 || !n)
		return -EINVAL;
	li->peer = peer;
	li->ring_pages = v[0];
	li->tx_msgs = v[1];
	li->rx_msgs = v[2];
	li->tx_bytes = v[3];
	li->rx_bytes = v[4];
	li->resets = v[5];
	li->violations = v[6];
	li->sockets = v[7];
	if (sscanf(line + n, " %llu %llu", &ev[0], &ev[1]) == 2) {
		li->events_rx = ev[0];
		li->events_tx = ev[1];
	}
	return 0;
}

/*
 * Find the link to @peer in the text of /proc/net/gntsock_links (a header
 * line, then one line per link).  Returns 0, -ENOENT if there is no such
 * line, -EINVAL if a non-header line does not parse.
 */
static inline int gnt_parse_links(const char *text, unsigned int peer,
				  struct gnt_link_info *out)
{
	const char *line = text;
	bool first = true;
	char buf[512];
	size_t len;

	while (line && *line) {
		const char *nl = strchr(line, '\n');

		len = nl ? (size_t)(nl - line) : strlen(line);
		if (len >= sizeof(buf))
			len = sizeof(buf) - 1;
		memcpy(buf, line, len);
		buf[len] = '\0';
		line = nl ? nl + 1 : NULL;
		if (first) {
			first = false;
			/* header: first token is not a number */
			if (!isdigit((unsigned char)buf[strspn(buf, " \t")]))
				continue;
		}
		if (!buf[strspn(buf, " \t")])
			continue;
		if (gnt_parse_link_line(buf, out))
			return -EINVAL;
		if (out->peer == peer)
			return 0;
	}
	return -ENOENT;
}

/* ---- files --------------------------------------------------------- */

/* Read a whole (small, /proc) file into buf, NUL-terminated. */
static inline int gnt_read_file(const char *path, char *buf, size_t size)
{
	size_t off = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (off + 1 < size) {
		n = read(fd, buf + off, size - 1 - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			n = -errno;
			close(fd);
			return (int)n;
		}
		if (!n)
			break;
		off += (size_t)n;
	}
	buf[off] = '\0';
	close(fd);
	return 0;
}

/* Write @val to a (sysfs, proc, cgroup) file in one write(). */
static inline int gnt_write_file(const char *path, const char *val)
{
	size_t len = strlen(val);
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, len) != (ssize_t)len)
		ret = errno ? -errno : -EIO;
	close(fd);
	return ret;
}

#define GNT_PARAM_DIR	"/sys/module/gntsock/parameters/"

/* Read the gntsock module parameter @name into buf, NUL-terminated. */
static inline int gnt_param_get(const char *name, char *buf, size_t size)
{
	char path[128];

	snprintf(path, sizeof(path), GNT_PARAM_DIR "%s", name);
	return gnt_read_file(path, buf, size);
}

/* Write @val to the gntsock module parameter @name (root only).
 * Returns 0 or -errno.
 */
static inline int gnt_param_set(const char *name, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), GNT_PARAM_DIR "%s", name);
	return gnt_write_file(path, val);
}

static inline int gnt_stat_get(const char *key, uint64_t *val)
{
	char buf[4096];
	int ret;

	ret = gnt_read_file(GNT_STAT_PATH, buf, sizeof(buf));
	if (ret)
		return ret;
	return gnt_parse_stat(buf, key, val);
}

static inline int gnt_link_get(unsigned int peer, struct gnt_link_info *li)
{
	static char buf[65536];
	int ret;

	ret = gnt_read_file(GNT_LINKS_PATH, buf, sizeof(buf));
	if (ret)
		return ret;
	return gnt_parse_links(buf, peer, li);
}

/*
 * Wait up to timeout_ms for the link to @peer to be in @state.  Returns 0,
 * -ETIMEDOUT, or another negative errno if the file cannot be read.
 * last (may be NULL) gets the last line seen (peer = ~0 if none).
 */
static inline int gnt_wait_link_state(unsigned int peer, const char *state,
				      int timeout_ms,
				      struct gnt_link_info *last)
{
	int64_t end = gnt_now_ms() + timeout_ms;
	struct gnt_link_info li;
	int ret;

	for (;;) {
		ret = gnt_link_get(peer, &li);
		if (ret && ret != -ENOENT && ret != -EINVAL)
			return ret;
		if (ret)
			li.peer = ~0U;
		if (last)
			*last = li;
		if (!ret && !strcmp(li.state, state))
			return 0;
		if (gnt_now_ms() >= end)
			return -ETIMEDOUT;
		gnt_sleep_ms(100);
	}
}

/* ---- sockets ------------------------------------------------------- */

static inline struct sockaddr_gnt gnt_addr(unsigned int domid,
					   unsigned int port)
{
	struct sockaddr_gnt a;

	memset(&a, 0, sizeof(a));
	a.sgnt_family = AF_GNTSOCK;
	a.sgnt_domid = domid;
	a.sgnt_port = port;
	return a;
}

static inline int gnt_socket(void)
{
	return socket(AF_GNTSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

/* SO_RCVTIMEO and SO_SNDTIMEO, in seconds. */
static inline int gnt_set_timeouts(int fd, int sec)
{
	struct timeval tv = { .tv_sec = sec };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)))
		return -errno;
	return 0;
}

static inline int gnt_set_nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	if (fcntl(fd, F_SETFL, fl))
		return -errno;
	return 0;
}

/*
 * Blocking connect to (domid, port); the new socket gets io_timeout_s as
 * SO_RCVTIMEO/SO_SNDTIMEO and as its connect timeout (if > 0; else the
 * connect timeout stays the default 2 s, which a test of timeouts may
 * want). In the debug-kernel lane under TCG, connects to a busy peer have
 * taken longer than 2 s and failed tests that were not about connecting;
 * a connect slower than that is reported on stderr as a KTAP comment, so
 * that such latencies show. Returns the fd or a negative errno.
 */
static inline int gnt_connect(unsigned int domid, unsigned int port,
			      int io_timeout_s)
{
	struct sockaddr_gnt a = gnt_addr(domid, port);
	int64_t t0;
	int fd, ret;

	fd = gnt_socket();
	if (fd < 0)
		return -errno;
	if (io_timeout_s > 0) {
		struct timeval ct = { .tv_sec = io_timeout_s };

		ret = gnt_set_timeouts(fd, io_timeout_s);
		if (!ret && setsockopt(fd, SOL_GNTSOCK,
				       GNTSOCK_SO_CONNECT_TIMEOUT, &ct,
				       sizeof(ct)))
			ret = -errno;
		if (ret) {
			close(fd);
			return ret;
		}
	}
	t0 = gnt_now_ms();
	ret = connect(fd, (struct sockaddr *)&a, sizeof(a)) ? -errno : 0;
	t0 = gnt_now_ms() - t0;
	if (t0 >= 2000)
		fprintf(stderr, "# slow connect to %u:%u: %" PRId64 " ms, %s\n",
			domid, port, t0, ret ? strerror(-ret) : "connected");
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/*
 * Wait for @events on fd for at most timeout_ms.  Returns revents (> 0),
 * 0 on timeout, or a negative errno.
 */
static inline int gnt_poll1(int fd, short events, int timeout_ms)
{
	int64_t end = gnt_now_ms() + timeout_ms;
	struct pollfd pfd = { .fd = fd, .events = events };
	int ret, left;

	for (;;) {
		left = (int)(end - gnt_now_ms());
		if (left < 0)
			left = 0;
		ret = poll(&pfd, 1, left);
		if (ret > 0)
			return pfd.revents;
		if (!ret)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

/*
 * Take all of the peer's credit on connected @fd: non-blocking sends of
 * @len bytes at @buf until poll() no longer says POLLOUT for
 * GNT_FILL_SETTLE_MS. On AF_GNTSOCK no POLLOUT means no credit (for
 * SEQPACKET: not enough for a record), or the link's ring full with
 * credit left: a non-blocking send then gives EAGAIN at once and poll()
 * waits until the peer's kernel frees room, which a slow peer kernel may
 * take a while to do. Returns the number of sends that went (*@bytes:
 * their bytes), -ETIMEDOUT if @fd still takes data after @timeout_ms, or
 * another -errno.
 */
#define GNT_FILL_SETTLE_MS	5000
static inline long gnt_fill_credit(int fd, const void *buf, size_t len,
				   int timeout_ms, uint64_t *bytes)
{
	int64_t end = gnt_now_ms() + timeout_ms;
	long sends = 0;
	ssize_t n;
	int r;

	*bytes = 0;
	for (;;) {
		n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			sends++;
			*bytes += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || errno != EAGAIN)
			return n ? -errno : -EIO;
		r = gnt_poll1(fd, POLLOUT, GNT_FILL_SETTLE_MS);
		if (r <= 0)
			return r ? r : sends;
		if (gnt_now_ms() > end)
			return -ETIMEDOUT;
	}
}

/*
 * Send all of buf (MSG_NOSIGNAL).  Returns 0 or a negative errno; *done
 * (may be NULL) gets the bytes sent.  EAGAIN from SO_SNDTIMEO is reported
 * as -ETIMEDOUT.
 */
static inline int gnt_send_all(int fd, const void *buf, size_t len,
			       size_t *done)
{
	const char *p = buf;
	size_t off = 0;
	ssize_t n;
	int ret = 0;

	while (off < len) {
		n = send(fd, p + off, len - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = (errno == EAGAIN) ? -ETIMEDOUT : -errno;
			break;
		}
		if (!n) {
			ret = -EIO;
			break;
		}
		off += (size_t)n;
	}
	if (done)
		*done = off;
	return ret;
}

/* A SOURCE connection asking for nbytes of the pattern keyed by seed, with
 * timeout_s as its receive and send timeouts. The fd, or -errno.
 */
static inline int gnt_source_open(unsigned int peer, uint64_t seed,
				  uint64_t nbytes, int timeout_s)
{
	struct gnt_source_req req;
	int fd, ret;

	fd = gnt_connect(peer, GNTSOCK_PEER_PORT_SOURCE, timeout_s);
	if (fd < 0)
		return fd;
	req.nbytes = gnt_le64(nbytes);
	req.seed = gnt_le64(seed);
	ret = gnt_send_all(fd, &req, sizeof(req), NULL);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/*
 * Receive exactly len bytes.  Returns 0, -ENODATA on EOF before len bytes,
 * -ETIMEDOUT on SO_RCVTIMEO, or another negative errno.  *done (may be NULL)
 * gets the bytes received.
 */
static inline int gnt_recv_all(int fd, void *buf, size_t len, size_t *done)
{
	char *p = buf;
	size_t off = 0;
	ssize_t n;
	int ret = 0;

	while (off < len) {
		n = recv(fd, p + off, len - off, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = (errno == EAGAIN) ? -ETIMEDOUT : -errno;
			break;
		}
		if (!n) {
			ret = -ENODATA;
			break;
		}
		off += (size_t)n;
	}
	if (done)
		*done = off;
	return ret;
}

/*
 * Expect EOF: returns 0 if recv() returns 0, -EPROTO if data arrives
 * instead, else a negative errno.
 */
static inline int gnt_expect_eof(int fd)
{
	char c;
	ssize_t n;

	do {
		n = recv(fd, &c, 1, 0);
	} while (n < 0 && errno == EINTR);
	if (!n)
		return 0;
	if (n > 0)
		return -EPROTO;
	return (errno == EAGAIN) ? -ETIMEDOUT : -errno;
}

/* ---- processes and socket accounting ------------------------------- */

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* True if /proc/<pid> is a live (not zombie) process. */
static inline bool gnt_pid_alive(pid_t pid)
{
	char path[64], buf[512], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (gnt_read_file(path, buf, sizeof(buf)))
		return false;
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return false;
	return p[2] != 'Z' && p[2] != 'X';
}

/*
 * Find live processes whose /proc/<pid>/comm equals comm.  Returns how
 * many were found (up to max stored in pids), or a negative errno.
 */
static inline int gnt_find_pids(const char *comm, pid_t *pids, int max)
{
	char path[300], buf[64];
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir("/proc");
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
		if (gnt_read_file(path, buf, sizeof(buf)))
			continue;
		buf[strcspn(buf, "\n")] = '\0';
		if (strcmp(buf, comm) || !gnt_pid_alive((pid_t)pid))
			continue;
		if (n < max)
			pids[n] = (pid_t)pid;
		n++;
	}
	closedir(d);
	return n;
}

/*
 * Count AF_GNTSOCK sockets held open by process @only, or (@only == 0) by
 * every process of this domain, ourselves included: each "socket:[...]" fd
 * in /proc/<pid>/fd is borrowed with pidfd_getfd() and asked for SO_DOMAIN.
 * Needs CAP_SYS_PTRACE over those processes (root).  Returns the count or
 * a negative errno (-ENOSYS: no pidfd_getfd, -EPERM: not allowed).
 * Processes that exit while we look are skipped.
 */
static inline int gnt_count_held_sockets(pid_t only)
{
	char path[300], link[64];
	struct dirent *de, *fe;
	int count = 0, ret = 0;
	DIR *d, *fd_dir;

	d = opendir("/proc");
	if (!d)
		return -errno;
	while (!ret && (de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		int pidfd;

		if (*end || pid <= 0 || (only && pid != only))
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
		fd_dir = opendir(path);
		if (!fd_dir)
			continue;	/* gone, or a kernel thread */
		pidfd = -1;
		while ((fe = readdir(fd_dir))) {
			long fdnum = strtol(fe->d_name, &end, 10);
			int dom, sfd;
			socklen_t len = sizeof(dom);
			ssize_t l;

			if (*end || fdnum < 0 || fe->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%ld/fd/%ld", pid,
				 fdnum);
			l = readlink(path, link, sizeof(link) - 1);
			if (l < 0)
				continue;
			link[l] = '\0';
			if (strncmp(link, "socket:[", 8))
				continue;
			if (pidfd < 0) {
				pidfd = (int)syscall(SYS_pidfd_open,
						     (pid_t)pid, 0);
				if (pidfd < 0) {
					if (errno == ENOSYS)
						ret = -ENOSYS;
					break;	/* exited */
				}
			}
			sfd = (int)syscall(SYS_pidfd_getfd, pidfd, (int)fdnum,
					   0);
			if (sfd < 0) {
				if (errno == ENOSYS || errno == EPERM) {
					ret = -errno;
					break;
				}
				continue;	/* closed meanwhile */
			}
			if (!getsockopt(sfd, SOL_SOCKET, SO_DOMAIN, &dom,
					&len) && dom == AF_GNTSOCK)
				count++;
			close(sfd);
		}
		if (pidfd >= 0)
			close(pidfd);
		closedir(fd_dir);
	}
	closedir(d);
	return ret ? ret : count;
}

/*
 * Wait up to timeout_ms until /proc/net/gntsock_stat "sockets" equals the
 * number of AF_GNTSOCK sockets user space holds open (the local responder's
 * listeners and connections; sockets whose close is still in progress in
 * the module settle meanwhile).  Returns 0, -ETIMEDOUT (then *stat_out and
 * *held_out hold the last values), or another negative errno.
 */
static inline int gnt_wait_sockets_settled(int timeout_ms, uint64_t *stat_out,
					   int *held_out)
{
	int64_t end = gnt_now_ms() + timeout_ms;
	uint64_t s1, s2;
	int held, ret;

	for (;;) {
		ret = gnt_stat_get("sockets", &s1);
		if (ret)
			return ret;
		held = gnt_count_held_sockets(0);
		if (held < 0)
			return held;
		ret = gnt_stat_get("sockets", &s2);
		if (ret)
			return ret;
		*stat_out = s2;
		*held_out = held;
		if (s1 == s2 && s2 == (uint64_t)held)
			return 0;
		if (gnt_now_ms() >= end)
			return -ETIMEDOUT;
		gnt_sleep_ms(200);
	}
}

/* Environment variable as a domid; -ENOENT if unset, -EINVAL if bad. */
static inline int gnt_env_domid(const char *name, unsigned int *domid)
{
	const char *s = getenv(name);

	if (!s || !*s)
		return -ENOENT;
	return gnt_parse_domid(s, domid);
}

#endif /* GNTSOCK_UTIL_H */
