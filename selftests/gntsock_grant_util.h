/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers for tests that send grants: the grant cmsg, the error queue,
 * /proc/net/gntsock_grants and the net.gntsock sysctls. Include after
 * gntsock_util.h.
 */
#ifndef GNTSOCK_GRANT_UTIL_H
#define GNTSOCK_GRANT_UTIL_H

#include <sys/socket.h>
#include "gntsock_grant_msg.h"

#define GRANTS_PATH	"/proc/net/gntsock_grants"
#define SYSCTL_DIR	"/proc/sys/net/gntsock/"

/* A counter of /proc/net/gntsock_grants. */
static int grants_get(const char *key, uint64_t *val)
{
	char buf[8192];
	int ret = gnt_read_file(GRANTS_PATH, buf, sizeof(buf));

	return ret ? ret : gnt_parse_stat(buf, key, val);
}

/* Set net.gntsock.NAME to @v; its old value in *@old if @old. */
static int sysctl_set(const char *name, unsigned int v, unsigned int *old)
{
	char path[128], buf[32];
	int fd, n;

	snprintf(path, sizeof(path), SYSCTL_DIR "%s", name);
	if (old) {
		if (gnt_read_file(path, buf, sizeof(buf)))
			return -errno;
		*old = (unsigned int)strtoul(buf, NULL, 10);
	}
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%u\n", v);
	if (write(fd, buf, n) != n) {
		n = -errno;
		close(fd);
		return n;
	}
	close(fd);
	return 0;
}


/* sendmsg() of @len bytes of @data with a grant of [buf, buf+blen). */
static ssize_t send_grant(int fd, void *buf, size_t blen, uint32_t flags,
			  uint64_t cookie, const void *data, size_t len)
{
	return gnt_grant_sendmsg(fd, buf, blen, flags, cookie, data, len,
				 MSG_NOSIGNAL);
}

/* One error-queue event within timeout_ms; 0 or -errno. */
static int wait_event(int fd, int timeout_ms, struct gntsock_grant_event *ev)
{
	return gnt_grant_event(fd, timeout_ms, ev);
}

#endif /* GNTSOCK_GRANT_UTIL_H */
