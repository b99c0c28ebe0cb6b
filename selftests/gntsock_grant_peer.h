/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gntsock_grant_peer.h - the GRANT responder service (port
 * GNTSOCK_PEER_PORT_GRANT) and its request/reply formats, shared by
 * gntsock_peer.c and gntsock_grant_test.c.
 *
 * The client sends struct gnt_grant_req, usually with a grant cmsg attached
 * to it; the responder does what req.op says with the grant and answers
 * with struct gnt_grant_reply. Errors are positive errno values.
 *
 * GR_XOR	map (writable if the grant is), val = FNV-1a of the contents,
 *		then fill it with the pattern keyed by req.val (if writable),
 *		munmap, release (e2 = errno of the release).
 * GR_READ	map read-only, val = FNV-1a, munmap, release.
 * GR_TRY_WRITE	e1 = errno of a PROT_WRITE mmap (expect EACCES); map
 *		read-only; e2 = errno of mprotect(PROT_WRITE); e3 = the signal
 *		a write to the mapping raised (0: the write went through);
 *		val = FNV-1a after the attempt; munmap, release.
 * GR_HOLD	map, val = FNV-1a, answer (e1 = mmap errno, flags = errno of a
 *		second mmap while mapped, 0 if it mapped); then wait up to
 *		10 s for an error-queue event and read the next request
 *		(GR_REPORT), answered with e1 = event type seen, e2 = signal
 *		raised by reading the mapping (0: read worked), e3 = errno of
 *		a second mmap after munmap, flags = errno of the release.
 * GR_KEEP	as GR_HOLD without mapping first (e2 = 0).
 * GR_COUNTS	no grant: val = out_grants, e1 = in_grants, e2 = in_mapped,
 *		e3 = deferred of this domain's /proc/net/gntsock_grants.
 * GR_ORDER	read req.arg more bytes; val = the offset in them at which a
 *		grant arrived (~0 if none), e1 = grants seen; releases them.
 * GR_RACE	the first half of the race test: answer at once (id), wait
 *		up to 10 s for the revoke event, sleep req.arg ms, then try
 *		to mmap the old grant; the outcome is kept under token
 *		req.val: e1 = event type seen, e2 = errno of the late mmap
 *		(0 if it mapped: then val = its first 8 bytes).
 * GR_RACE_RESULT no grant: the outcome kept under token req.val (waits up
 *		to 20 s for it).
 * GR_GNTDEV_MAP no grant: the old mechanism, for the race's control. Answer
 *		at once, sleep req.arg ms, then map grant reference
 *		(req.val & 0xffffffff) of domain (req.val >> 32) with
 *		/dev/xen/gntdev and answer again: e1 = errno of the map
 *		ioctl, e2 = errno of mmap, val = the first 8 bytes mapped.
 * GR_STUBBORN	as GR_HOLD, but first tells this domain's kernel to ignore
 *		the next revoke or link loss (module parameter
 *		fault_ignore_revoke), as an uncooperative peer kernel would;
 *		e1 of the first answer is the mmap errno, e3 the errno of
 *		setting the parameter. If the connection breaks, it keeps the
 *		mapping GR_STUBBORN_LINGER_S seconds more. At GR_REPORT it
 *		releases GR_LATE_RELEASE_MS after unmapping, so that the
 *		granter's reclaim pass can end the grant first.
 * GR_STUBBORN_RW as GR_STUBBORN, but at GR_REPORT (req.val = seed) it first
 *		answers val = FNV-1a of what the mapping shows now, e2 = the
 *		signal that reading raised, then fills the mapping with the
 *		pattern of the seed, and the usual GR_REPORT answer follows
 *		with val = FNV-1a of the mapping read back after the fill.
 * GR_PLAIN	tell this domain's kernel to map the next grant plainly
 *		(module parameter fault_plain_map), as a kernel without
 *		revocable maps would; e1 = errno of the mmap (the grant's own
 *		protection), val = FNV-1a if it mapped, e2 = errno of the
 *		release, e3 = errno of setting the parameter.
 * GR_MAP_DIE	fork a child that maps the grant and writes to it until it is
 *		killed with SIGKILL after req.arg microseconds; e1 = 0 if the
 *		child mapped it, e2 = errno of the release afterwards.
 * GR_REVOCABLE_MAP no grant: set this domain's module parameter
 *		revocable_map to "auto" (req.arg 1) or "0" (req.arg 0), for
 *		links that connect from then on; e1 = errno.
 * GR_COUNTER	no grant: val = the line req.name of this domain's
 *		/proc/net/gntsock_grants; e1 = errno (ENOENT: no such line).
 * GR_LINK_FIELD no grant: val = column req.name of this domain's line for
 *		the link to domain req.arg in /proc/net/gntsock_links; e1 =
 *		errno (ENOENT: no such link or column).
 * GR_SPLICE	map, vmsplice() the whole mapping into this responder's
 *		splice pipe (one, kept across connections): e1 = mmap errno,
 *		e2 = vmsplice errno (0: all spliced), val = bytes spliced.
 *		req.arg 0: munmap, release (e3 = errno of the release), answer.
 *		req.arg 1: answer, wait up to 10 s for the revoke event, munmap,
 *		release, answer again with e1 = event type, e3 = release errno.
 * GR_SPLICE_READ map the grant and, while it is mapped, read what the
 *		splice pipe holds: val = FNV-1a of the bytes read, e1 = mmap
 *		errno, e2 = read errno (0: read something), e3 = bytes read,
 *		flags = 1 | byte << 8 if all bytes read were that byte, else 0.
 *		Closes the pipe, munmaps, releases.
 * GR_MREMAP	map (a grant of 2 pages or more); fork a child that touches
 *		the mapping and exits with the signal that raised (0 if none);
 *		val = FNV-1a of the mapping; e2 = errno of munmap() of its
 *		second page; e3 = errno of mremap() of the mapping to another
 *		address (MREMAP_MAYMOVE | MREMAP_FIXED); flags = the signal a
 *		read of the old range then raised | child's exit code << 8 |
 *		1 << 16 if the first page is still mapped at its old address
 *		(mincore); e1 = mmap errno. Answers, waits up to 10 s for the
 *		revoke event, munmaps, releases, answers again with e1 = event
 *		type, e3 = errno of the release.
 * GR_REUSED	keep the grant unmapped and answer (id); wait up to 10 s for
 *		its revoke event, then read the next request, whose grant the
 *		granter gives the same id: answer e1 = the id of the grant
 *		that came with it (0: none, refused), e2 = errno of mmap() of
 *		the old id (ENOLINK: dead), e3 = the event type seen, val =
 *		errno of the release of the old id; and release the new grant
 *		if one came.
 * GR_GIVE	no grant: the other way round. The responder grants the
 *		client req.arg & 0xff pages (1 to 16) of its own memory,
 *		filled with the pattern of req.val, writable if req.arg &
 *		0x100, cookie req.val, with its reply: val = FNV-1a of the
 *		pages. If the grant fails, the reply goes alone with e1 = its
 *		errno. The responder keeps no mapping: the pages stay pinned
 *		until the client releases the grant or the connection ends.
 */
#ifndef GNTSOCK_GRANT_PEER_H
#define GNTSOCK_GRANT_PEER_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GNTSOCK_PEER_PORT_GRANT	5020
/* The same responder on a SOCK_SEQPACKET listener: one request per record. */
#define GNTSOCK_PEER_PORT_GRANT_SEQ	5029

enum gnt_grant_op {
	GR_XOR = 1,
	GR_READ,
	GR_TRY_WRITE,
	GR_HOLD,
	GR_REPORT,
	GR_KEEP,
	GR_COUNTS,
	GR_ORDER,
	GR_MAP_DIE,
	GR_RACE,
	GR_RACE_RESULT,
	GR_GNTDEV_MAP,
	GR_STUBBORN,
	GR_STUBBORN_RW,
	GR_PLAIN,
	GR_REVOCABLE_MAP,
	GR_COUNTER,
	GR_LINK_FIELD,
	GR_SPLICE,
	GR_SPLICE_READ,
	GR_MREMAP,
	GR_EFAULT_NEXT,
	GR_EFAULT_CHECK,
	GR_REUSED,
	GR_GIVE,
};

struct gnt_grant_req {
	uint32_t op;
	uint32_t arg;
	uint64_t val;
	char name[32];		/* GR_COUNTER, GR_LINK_FIELD: NUL-terminated */
};

struct gnt_grant_reply {
	int32_t err;		/* 0, or errno of the request as a whole */
	uint32_t id;		/* id of the grant received, 0 if none */
	uint64_t val;
	int32_t e1;
	int32_t e2;
	int32_t e3;
	uint32_t flags;		/* grant flags seen, or as documented */
};

_Static_assert(sizeof(struct gnt_grant_req) == 48, "wire size");
_Static_assert(sizeof(struct gnt_grant_reply) == 32, "wire size");

/*
 * Column @col (named by the header line) of this domain's line for the link
 * to @peer in /proc/net/gntsock_links; 0 or a positive errno.
 */
static inline int gnt_link_field(unsigned int peer, const char *col,
				 uint64_t *val)
{
	char buf[8192], *save = NULL, *line, *tok;
	int want = -1, i;
	ssize_t n;
	int f = open("/proc/net/gntsock_links", O_RDONLY | O_CLOEXEC);

	if (f < 0)
		return errno;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return EIO;
	buf[n] = 0;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *s2 = NULL;

		tok = strtok_r(line, " ", &s2);
		if (want < 0) {
			/* The header names the columns. */
			for (i = 0; tok; tok = strtok_r(NULL, " ", &s2), i++)
				if (!strcmp(tok, col))
					want = i;
			if (want < 0)
				return ENOENT;
			continue;
		}
		if (!tok || strtoul(tok, NULL, 10) != peer)
			continue;
		for (i = 0; tok && i < want; i++)
			tok = strtok_r(NULL, " ", &s2);
		if (!tok)
			return EPROTO;
		*val = strtoull(tok, NULL, 10);
		return 0;
	}
	return ENOENT;
}

#endif /* GNTSOCK_GRANT_PEER_H */

/* The responder: gntsock_peer.c includes this again, defining
 * GNT_GRANT_RESPONDER, once send_all() exists.
 */
#if defined(GNT_GRANT_RESPONDER) && !defined(GNT_GRANT_RESPONDER_DONE)
#define GNT_GRANT_RESPONDER_DONE
#include <poll.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <xen/sys/gntdev.h>

#include "gntsock_grant_msg.h"

#define GR_RACE_SLOTS	16

/* Seconds a stubborn holder keeps its mapping after its connection broke. */
#define GR_STUBBORN_LINGER_S	3
#define GR_LATE_RELEASE_MS	500

static struct {
	uint64_t token;
	int done;
	struct gnt_grant_reply r;
} gr_race[GR_RACE_SLOTS];
static pthread_mutex_t gr_race_lock = PTHREAD_MUTEX_INITIALIZER;

static void gr_race_put(uint64_t token, const struct gnt_grant_reply *r)
{
	pthread_mutex_lock(&gr_race_lock);
	gr_race[token % GR_RACE_SLOTS].token = token;
	gr_race[token % GR_RACE_SLOTS].r = *r;
	gr_race[token % GR_RACE_SLOTS].done = 1;
	pthread_mutex_unlock(&gr_race_lock);
}

static int gr_race_get(uint64_t token, struct gnt_grant_reply *r)
{
	int i, found = 0;

	for (i = 0; i < 200 && !found; i++) {
		pthread_mutex_lock(&gr_race_lock);
		if (gr_race[token % GR_RACE_SLOTS].done &&
		    gr_race[token % GR_RACE_SLOTS].token == token) {
			*r = gr_race[token % GR_RACE_SLOTS].r;
			found = 1;
		}
		pthread_mutex_unlock(&gr_race_lock);
		if (!found)
			usleep(100000);
	}
	return found ? 0 : ETIMEDOUT;
}

/* The old way: map (domid, ref) with gntdev; first 8 bytes into r->val. */
static void gr_gntdev_map(uint32_t domid, uint32_t ref,
			  struct gnt_grant_reply *r)
{
	struct ioctl_gntdev_map_grant_ref map = {
		.count = 1, .refs[0] = { .domid = domid, .ref = ref },
	};
	struct ioctl_gntdev_unmap_grant_ref unmap = { .count = 1 };
	long ps = sysconf(_SC_PAGESIZE);
	int fd = open("/dev/xen/gntdev", O_RDWR | O_CLOEXEC);
	void *p;

	if (fd < 0) {
		r->err = errno;
		return;
	}
	if (ioctl(fd, IOCTL_GNTDEV_MAP_GRANT_REF, &map)) {
		r->e1 = errno;
		close(fd);
		return;
	}
	p = mmap(NULL, ps, PROT_READ, MAP_SHARED, fd, map.index);
	if (p == MAP_FAILED) {
		r->e2 = errno;
	} else {
		memcpy(&r->val, p, sizeof(r->val));
		munmap(p, ps);
	}
	unmap.index = map.index;
	ioctl(fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &unmap);
	close(fd);
}

static __thread sigjmp_buf gr_jmp;
static __thread volatile int gr_armed;

static void gr_fault(int sig)
{
	if (gr_armed)
		siglongjmp(gr_jmp, sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void gr_install_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = gr_fault;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

/*
 * Checksum (and fill with the pattern of @seed if @fill) a mapping that
 * its granter may revoke under us (SIGBUS): the responder must survive its
 * peers. Returns the signal raised, or 0.
 */
#pragma GCC diagnostic push
/* After a longjmp only the signal number is used. */
#pragma GCC diagnostic ignored "-Wclobbered"
static __attribute__((noinline)) int gr_safe_fnv(unsigned char *p, size_t len, int fill, uint64_t seed,
		       uint64_t *out)
{
	int sig = sigsetjmp(gr_jmp, 1);

	if (sig) {
		gr_armed = 0;
		return sig;
	}
	gr_armed = 1;
	*out = gnt_fnv1a64(GNT_FNV1A64_INIT, p, len);
	if (fill)
		gnt_pattern_fill(seed, 0, p, len);
	gr_armed = 0;
	return 0;
}

static __attribute__((noinline)) int gr_safe_copy8(const unsigned char *p,
						    uint64_t *out)
{
	int sig = sigsetjmp(gr_jmp, 1);

	if (sig) {
		gr_armed = 0;
		return sig;
	}
	gr_armed = 1;
	memcpy(out, p, sizeof(*out));
	gr_armed = 0;
	return 0;
}
#pragma GCC diagnostic pop

/* Touch @p (write if @wr); the signal it raised, or 0. */
static int gr_touch(volatile unsigned char *p, int wr)
{
	int sig;

	sig = sigsetjmp(gr_jmp, 1);
	if (sig) {
		gr_armed = 0;
		return sig;
	}
	gr_armed = 1;
	if (wr)
		p[0] = (unsigned char)(p[0] + 1);
	else
		(void)p[0];
	gr_armed = 0;
	return 0;
}

/* GR_EFAULT_NEXT: the next request is first read into a bad buffer;
 * what that read failed with (GR_EFAULT_CHECK reports it).
 */
static int gr_efault_next;
static int gr_efault_errno;

/* Wait for the next request's bytes, then recvmsg() them into a buffer
 * that is not mapped, with room for a grant's cmsg: EFAULT, and the grant
 * must stay queued for the next read.
 */
static void gr_recv_bad(int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct gntsock_grant_info))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)8, sizeof(struct gnt_grant_req) };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	gr_efault_next = 0;
	gr_efault_errno = 0;
	if (poll(&pfd, 1, 10000) != 1)
		gr_efault_errno = ETIMEDOUT;
	else if (recvmsg(fd, &m, 0) < 0)
		gr_efault_errno = errno;
}

/* Read one request, and the grant attached to it if any. */
static int gr_recv_req(int fd, struct gnt_grant_req *req,
		       struct gntsock_grant_info *info, int *have)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct gntsock_grant_info))];
		struct cmsghdr align;
	} u;
	size_t got = 0;

	*have = 0;
	if (gr_efault_next)
		gr_recv_bad(fd);
	while (got < sizeof(*req)) {
		struct iovec iov = { (char *)req + got, sizeof(*req) - got };
		struct msghdr m = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
		};
		struct cmsghdr *c;
		ssize_t n = recvmsg(fd, &m, 0);

		if (n < 0)
			return -errno;
		for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			if (c->cmsg_level == SOL_GNTSOCK &&
			    c->cmsg_type == GNTSOCK_CMSG_GRANT_INFO) {
				memcpy(info, CMSG_DATA(c), sizeof(*info));
				*have = 1;
			}
		}
		if (!n)
			return got ? -EPROTO : 0;
		got += n;
	}
	return 1;
}

static int gr_release(int fd, uint32_t id)
{
	return ioctl(fd, GNTSOCK_IOC_RELEASE, &id) ? errno : 0;
}

static void *gr_map(int fd, const struct gntsock_grant_info *gi, int prot,
		    int *err)
{
	void *p = mmap(NULL, gi->len, prot, MAP_SHARED, fd,
		       (off_t)gi->id * sysconf(_SC_PAGESIZE));

	*err = p == MAP_FAILED ? errno : 0;
	return p == MAP_FAILED ? NULL : p;
}

/* Wait up to 10 s for one error-queue event; its type or 0. */
static int gr_wait_event(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = 0 };
	union {
		char buf[CMSG_SPACE(sizeof(struct gntsock_grant_event))];
		struct cmsghdr align;
	} u;
	struct msghdr m = { .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct gntsock_grant_event ev;
	struct cmsghdr *c;

	if (poll(&pfd, 1, 10000) <= 0 || !(pfd.revents & POLLERR))
		return 0;
	if (recvmsg(fd, &m, MSG_ERRQUEUE) < 0)
		return 0;
	c = CMSG_FIRSTHDR(&m);
	if (!c || c->cmsg_type != GNTSOCK_CMSG_GRANT_EVENT)
		return 0;
	memcpy(&ev, CMSG_DATA(c), sizeof(ev));
	return (int)ev.type;
}

/* Write a gntsock module parameter; 0 or errno. */
static int gr_param(const char *name, const char *val)
{
	char path[128];
	int f, err = 0;

	snprintf(path, sizeof(path), "/sys/module/gntsock/parameters/%s", name);
	f = open(path, O_WRONLY | O_CLOEXEC);
	if (f < 0)
		return errno;
	if (write(f, val, strlen(val)) != (ssize_t)strlen(val))
		err = errno ? errno : EIO;
	close(f);
	return err;
}

/* A line "NAME VALUE" of /proc/net/gntsock_grants; 0 or errno. */
static int gr_counter(const char *name, uint64_t *val)
{
	char buf[8192], key[64];
	unsigned long long v;
	const char *line;
	ssize_t n;
	int f = open("/proc/net/gntsock_grants", O_RDONLY | O_CLOEXEC);

	if (f < 0)
		return errno;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return EIO;
	buf[n] = 0;
	for (line = buf; line && *line; line = strchr(line, '\n')) {
		if (*line == '\n')
			line++;
		if (sscanf(line, "%63s %llu", key, &v) == 2 &&
		    !strcmp(key, name)) {
			*val = v;
			return 0;
		}
	}
	return ENOENT;
}

static int gr_counts(struct gnt_grant_reply *r)
{
	char buf[4096], *s;
	ssize_t n;
	int f = open("/proc/net/gntsock_grants", O_RDONLY | O_CLOEXEC);

	if (f < 0)
		return errno;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return EIO;
	buf[n] = 0;
#define GR_FIELD(name, dst) do {					\
		s = strstr(buf, "\n" name " ");				\
		if (!s)							\
			return EPROTO;					\
		dst = strtoull(s + sizeof(name) + 1, NULL, 10);		\
	} while (0)
	GR_FIELD("out_grants", r->val);
	GR_FIELD("in_grants", r->e1);
	GR_FIELD("in_mapped", r->e2);
	GR_FIELD("deferred", r->e3);
#undef GR_FIELD
	return 0;
}

static void gr_hold(int fd, const struct gntsock_grant_info *gi, bool map,
		    bool rw, bool stubborn, struct gnt_grant_reply *r)
{
	int prot = PROT_READ | ((gi->flags & GNTSOCK_GRANT_WRITABLE) ?
				PROT_WRITE : 0);
	struct gntsock_grant_info info2;
	struct gnt_grant_req req2;
	unsigned char *p = NULL;
	int have2, err;

	if (map) {
		p = gr_map(fd, gi, prot, &r->e1);
		if (p) {
			void *q = gr_map(fd, gi, PROT_READ, &err);

			r->e2 = gr_safe_fnv(p, gi->len, 0, 0, &r->val);
			/* A grant maps once: a second mmap must fail. */
			if (q)
				munmap(q, gi->len);
			r->flags = q ? 0 : err;
		}
	}
	if (send_all(fd, r, sizeof(*r)))
		goto out;
	memset(r, 0, sizeof(*r));
	r->id = gi->id;
	r->e1 = gr_wait_event(fd);
	if (gr_recv_req(fd, &req2, &info2, &have2) <= 0 ||
	    req2.op != GR_REPORT) {
		r->err = EPROTO;
		goto out;
	}
	if (p && rw) {
		struct gnt_grant_reply r1 = { .id = gi->id, .e1 = r->e1 };

		r1.e2 = gr_safe_fnv(p, gi->len, 1, req2.val, &r1.val);
		if (send_all(fd, &r1, sizeof(r1)))
			goto out;
		r->e2 = gr_safe_fnv(p, gi->len, 0, 0, &r->val);
		munmap(p, gi->len);
		p = NULL;
	} else if (p) {
		r->e2 = gr_touch(p, 0);
		munmap(p, gi->len);
		p = NULL;
	}
	p = gr_map(fd, gi, PROT_READ, &r->e3);
	if (p) {
		munmap(p, gi->len);
		p = NULL;
	}
	/* A stubborn peer also answers late: the granter's reclaim pass
	 * sees the grant unmapped before the GRANT_RELEASE comes.
	 */
	if (stubborn)
		usleep(GR_LATE_RELEASE_MS * 1000);
	err = gr_release(fd, gi->id);
	r->flags = err;
	send_all(fd, r, sizeof(*r));
	r->err = -1;	/* answered */
out:
	/* A stubborn peer keeps its mapping a while after losing the
	 * connection (its kernel ignored the link's loss): time for the
	 * granter to see the mapping still there.
	 */
	if (p && stubborn)
		sleep(GR_STUBBORN_LINGER_S);
	if (p)
		munmap(p, gi->len);
}

static int gr_splice_pipe[2] = { -1, -1 };
static pthread_mutex_t gr_splice_lock = PTHREAD_MUTEX_INITIALIZER;

/* GR_SPLICE: the mapping's pages into the splice pipe, then unmap. */
static int gr_splice(int fd, const struct gntsock_grant_info *gi, int prot,
		     uint32_t arg, struct gnt_grant_reply *r)
{
	unsigned char *p = gr_map(fd, gi, prot, &r->e1);
	struct iovec iov;
	ssize_t n;

	if (!p)
		goto release;
	pthread_mutex_lock(&gr_splice_lock);
	if (gr_splice_pipe[0] < 0 && pipe(gr_splice_pipe))
		r->e2 = errno;
	if (!r->e2) {
		iov.iov_base = p;
		iov.iov_len = gi->len;
		n = vmsplice(gr_splice_pipe[1], &iov, 1, SPLICE_F_NONBLOCK);
		r->e2 = n < 0 ? errno : (size_t)n == gi->len ? 0 : EMSGSIZE;
		r->val = n < 0 ? 0 : (uint64_t)n;
	}
	pthread_mutex_unlock(&gr_splice_lock);
	if (arg) {
		if (send_all(fd, r, sizeof(*r)))
			return -EPIPE;
		memset(r, 0, sizeof(*r));
		r->id = gi->id;
		r->e1 = gr_wait_event(fd);
	}
	munmap(p, gi->len);
release:
	r->e3 = gr_release(fd, gi->id);
	return 0;
}

/* GR_SPLICE_READ: read the pipe while another grant is mapped. */
static void gr_splice_read(int fd, const struct gntsock_grant_info *gi,
			   struct gnt_grant_reply *r)
{
	unsigned char *p = gr_map(fd, gi, PROT_READ, &r->e1);
	static unsigned char buf[1 << 16];
	size_t got = 0, i;
	ssize_t n;

	pthread_mutex_lock(&gr_splice_lock);
	while (gr_splice_pipe[0] >= 0 && got < sizeof(buf)) {
		struct pollfd pfd = { .fd = gr_splice_pipe[0], .events = POLLIN };

		if (poll(&pfd, 1, 0) != 1)
			break;
		n = read(gr_splice_pipe[0], buf + got, sizeof(buf) - got);
		if (n <= 0) {
			r->e2 = n < 0 ? errno : 0;
			break;
		}
		got += n;
	}
	if (!got && !r->e2)
		r->e2 = EAGAIN;
	r->e3 = (int32_t)got;
	r->val = gnt_fnv1a64(GNT_FNV1A64_INIT, buf, got);
	for (i = 1; i < got && buf[i] == buf[0]; i++)
		;
	r->flags = got && i == got ? 1 | (uint32_t)buf[0] << 8 : 0;
	if (gr_splice_pipe[0] >= 0) {
		close(gr_splice_pipe[0]);
		close(gr_splice_pipe[1]);
		gr_splice_pipe[0] = gr_splice_pipe[1] = -1;
	}
	pthread_mutex_unlock(&gr_splice_lock);
	if (p)
		munmap(p, gi->len);
	gr_release(fd, gi->id);
}

/* GR_MREMAP: fork, partial munmap, mremap of a mapped grant. */
static int gr_mremap(int fd, const struct gntsock_grant_info *gi, int prot,
		     struct gnt_grant_reply *r)
{
	long ps = sysconf(_SC_PAGESIZE);
	unsigned char *p = gr_map(fd, gi, prot, &r->e1), *dst, *q;
	unsigned char vec = 0;
	int status = 0;
	pid_t pid;

	if (!p)
		goto release;
	pid = fork();
	if (!pid)
		_exit(gr_touch(p, 0));
	if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
		r->flags |= (uint32_t)(WEXITSTATUS(status) & 0xff) << 8;
	else
		r->flags |= 0xff << 8;
	gr_safe_fnv(p, gi->len, 0, 0, &r->val);
	r->e2 = munmap(p + ps, ps) ? errno : 0;
	dst = mmap(NULL, gi->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dst == MAP_FAILED) {
		r->e3 = -errno;
	} else {
		q = mremap(p, gi->len, gi->len, MREMAP_MAYMOVE | MREMAP_FIXED,
			   dst);
		r->e3 = q == MAP_FAILED ? errno : 0;
		if (q != MAP_FAILED) {
			/* Moved after all: the old range is gone, the new
			 * one is the grant's VMA.
			 */
			p = q;
		} else {
			munmap(dst, gi->len);
		}
	}
	if (!mincore(p, ps, &vec))
		r->flags |= 1 << 16;
	r->flags |= (uint32_t)gr_touch(p, 0);
	if (send_all(fd, r, sizeof(*r)))
		return -EPIPE;
	memset(r, 0, sizeof(*r));
	r->id = gi->id;
	r->e1 = gr_wait_event(fd);
	munmap(p, gi->len);
release:
	r->e3 = gr_release(fd, gi->id);
	return 0;
}

/* GR_REUSED, after its first answer. */
static int gr_reused(int fd, struct gntsock_grant_info *gi,
		     struct gnt_grant_reply *r)
{
	struct gntsock_grant_info old = *gi;
	struct gnt_grant_req req;
	int have, ret;
	void *p;

	memset(r, 0, sizeof(*r));
	r->e3 = gr_wait_event(fd);
	ret = gr_recv_req(fd, &req, gi, &have);
	if (ret <= 0)
		return ret ? ret : -EPIPE;
	r->e1 = have ? (int32_t)gi->id : 0;
	p = gr_map(fd, &old, PROT_READ, &r->e2);
	if (p)
		munmap(p, old.len);
	r->val = (uint64_t)gr_release(fd, old.id);
	if (have)
		gr_release(fd, gi->id);
	return 0;
}

/* GR_GIVE: grant pages of ours to the client, with the reply. */
static int gr_give(int fd, const struct gnt_grant_req *req,
		   struct gnt_grant_reply *r)
{
	size_t pages = req->arg & 0xff, len, done = 0;
	uint32_t flags = req->arg & 0x100 ? GNTSOCK_GRANT_WRITABLE : 0;
	unsigned char *p;
	ssize_t n;

	if (pages < 1 || pages > 16)
		pages = 1;
	len = pages * sysconf(_SC_PAGESIZE);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		r->e1 = errno;
		return send_all(fd, r, sizeof(*r)) ? -EPIPE : 0;
	}
	gnt_pattern_fill(req->val, 0, p, len);
	r->val = gnt_fnv1a64(GNT_FNV1A64_INIT, p, len);
	n = gnt_grant_sendmsg(fd, p, len, flags, req->val, r, sizeof(*r),
			      MSG_NOSIGNAL);
	if (n > 0)
		done = (size_t)n;
	else
		r->e1 = errno;	/* nothing went: the reply alone */
	munmap(p, len);		/* pinned by the grant if it went */
	return send_all(fd, (char *)r + done, sizeof(*r) - done) ? -EPIPE : 0;
}

static int do_grant(int fd)
{
	struct gntsock_grant_info gi;
	struct gnt_grant_req req;
	struct gnt_grant_reply r;
	unsigned char *p;
	int have, ret, prot;

	gr_install_handlers();
	for (;;) {
		ret = gr_recv_req(fd, &req, &gi, &have);
		if (ret <= 0)
			return ret;
		memset(&r, 0, sizeof(r));
		if (have) {
			r.id = gi.id;
			r.flags = gi.flags;
		}
		prot = PROT_READ | ((have && (gi.flags & GNTSOCK_GRANT_WRITABLE)) ?
				    PROT_WRITE : 0);
		if (!have && req.op != GR_COUNTS && req.op != GR_ORDER &&
		    req.op != GR_RACE_RESULT && req.op != GR_GNTDEV_MAP &&
		    req.op != GR_REVOCABLE_MAP && req.op != GR_COUNTER &&
		    req.op != GR_LINK_FIELD && req.op != GR_EFAULT_NEXT &&
		    req.op != GR_GIVE) {
			r.err = ENOENT;
			goto reply;
		}
		switch (req.op) {
		case GR_XOR:
		case GR_READ:
			p = gr_map(fd, &gi, req.op == GR_READ ? PROT_READ : prot,
				   &r.e1);
			if (p) {
				r.e3 = gr_safe_fnv(p, gi.len,
						   req.op == GR_XOR &&
						   (prot & PROT_WRITE),
						   req.val, &r.val);
				munmap(p, gi.len);
			}
			r.e2 = gr_release(fd, gi.id);
			break;
		case GR_TRY_WRITE:
			p = gr_map(fd, &gi, PROT_READ | PROT_WRITE, &r.e1);
			if (p) {
				munmap(p, gi.len);
				r.err = EEXIST;	/* mapped writable: wrong */
				break;
			}
			p = gr_map(fd, &gi, PROT_READ, &ret);
			if (!p) {
				r.err = ret;
				break;
			}
			r.e2 = mprotect(p, gi.len, PROT_READ | PROT_WRITE) ?
				errno : 0;
			r.e3 = gr_touch(p, 1);
			gr_safe_fnv(p, gi.len, 0, 0, &r.val);
			munmap(p, gi.len);
			gr_release(fd, gi.id);
			break;
		case GR_PLAIN:
			r.e3 = gr_param("fault_plain_map", "1");
			p = gr_map(fd, &gi, prot, &r.e1);
			if (p) {
				gr_safe_fnv(p, gi.len, 0, 0, &r.val);
				munmap(p, gi.len);
			}
			gr_param("fault_plain_map", "0");
			r.e2 = gr_release(fd, gi.id);
			break;
		case GR_STUBBORN:
		case GR_STUBBORN_RW:
			r.e3 = gr_param("fault_ignore_revoke", "1");
			/* fall through */
		case GR_HOLD:
		case GR_KEEP:
			gr_hold(fd, &gi, req.op != GR_KEEP,
				req.op == GR_STUBBORN_RW,
				req.op == GR_STUBBORN || req.op == GR_STUBBORN_RW,
				&r);
			if (r.err == -1)
				continue;
			break;
		case GR_COUNTS:
			r.err = gr_counts(&r);
			break;
		case GR_SPLICE:
			if (gr_splice(fd, &gi, prot, req.arg, &r))
				return -EPIPE;
			break;
		case GR_SPLICE_READ:
			gr_splice_read(fd, &gi, &r);
			break;
		case GR_MREMAP:
			if (gr_mremap(fd, &gi, prot, &r))
				return -EPIPE;
			break;
		case GR_REVOCABLE_MAP:
			r.e1 = gr_param("revocable_map", req.arg ? "auto" : "0");
			break;
		case GR_EFAULT_NEXT:
			gr_efault_next = 1;
			break;
		case GR_REUSED:
			if (send_all(fd, &r, sizeof(r)))
				return -EPIPE;
			ret = gr_reused(fd, &gi, &r);
			if (ret)
				return ret;
			break;
		case GR_EFAULT_CHECK:
			/* (have: the grant came with the second read) */
			r.e1 = gr_efault_errno;
			r.e2 = gr_release(fd, gi.id);
			break;
		case GR_COUNTER:
			req.name[sizeof(req.name) - 1] = 0;
			r.e1 = gr_counter(req.name, &r.val);
			break;
		case GR_LINK_FIELD:
			req.name[sizeof(req.name) - 1] = 0;
			r.e1 = gnt_link_field(req.arg, req.name, &r.val);
			break;
		case GR_ORDER: {
			unsigned char buf[256];
			uint64_t got = 0;

			r.val = ~0ULL;
			while (got < req.arg) {
				size_t want = req.arg - got;
				struct iovec iov = { buf, want < sizeof(buf) ?
						     want : sizeof(buf) };
				union {
					char b[CMSG_SPACE(sizeof(gi))];
					struct cmsghdr a;
				} u;
				struct msghdr m = {
					.msg_iov = &iov, .msg_iovlen = 1,
					.msg_control = u.b,
					.msg_controllen = sizeof(u.b),
				};
				struct cmsghdr *c;
				ssize_t n = recvmsg(fd, &m, 0);

				if (n <= 0) {
					r.err = n ? errno : EPROTO;
					break;
				}
				for (c = CMSG_FIRSTHDR(&m); c;
				     c = CMSG_NXTHDR(&m, c)) {
					if (c->cmsg_type !=
					    GNTSOCK_CMSG_GRANT_INFO)
						continue;
					memcpy(&gi, CMSG_DATA(c), sizeof(gi));
					if (!r.e1)
						r.val = got;
					r.e1++;
					gr_release(fd, gi.id);
				}
				got += n;
			}
			break;
		}
		case GR_MAP_DIE: {
			int pfd[2];
			char c = 1;
			pid_t pid;

			if (pipe(pfd)) {
				r.err = errno;
				break;
			}
			pid = fork();
			if (pid < 0) {
				r.err = errno;
				close(pfd[0]);
				close(pfd[1]);
				break;
			}
			if (!pid) {
				volatile unsigned char *q;
				int e;

				close(pfd[0]);
				q = gr_map(fd, &gi, prot, &e);
				c = q ? 0 : 1;
				if (write(pfd[1], &c, 1) != 1)
					_exit(1);
				for (;;)
					if (q)
						(void)q[0];
			}
			close(pfd[1]);
			if (read(pfd[0], &c, 1) != 1)
				c = 1;
			close(pfd[0]);
			r.e1 = c;
			usleep(req.arg);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			r.e2 = gr_release(fd, gi.id);
			break;
		}
		case GR_RACE:
			if (send_all(fd, &r, sizeof(r)))
				return -EPIPE;
			memset(&r, 0, sizeof(r));
			r.id = gi.id;
			r.e1 = gr_wait_event(fd);
			usleep(req.arg * 1000);
			p = gr_map(fd, &gi, PROT_READ, &r.e2);
			if (p) {
				r.e3 = gr_safe_copy8(p, &r.val);
				munmap(p, gi.len);
			}
			gr_release(fd, gi.id);
			gr_race_put(req.val, &r);
			continue;
		case GR_RACE_RESULT:
			r.err = gr_race_get(req.val, &r);
			break;
		case GR_GIVE:
			if (have)
				gr_release(fd, gi.id);
			if (gr_give(fd, &req, &r))
				return -EPIPE;
			continue;
		case GR_GNTDEV_MAP:
			if (send_all(fd, &r, sizeof(r)))
				return -EPIPE;
			usleep(req.arg * 1000);
			gr_gntdev_map((uint32_t)(req.val >> 32),
				      (uint32_t)req.val, &r);
			break;
		default:
			r.err = EINVAL;
			if (have)
				gr_release(fd, gi.id);
		}
reply:
		if (send_all(fd, &r, sizeof(r)))
			return -EPIPE;
	}
}
#endif /* GNT_GRANT_RESPONDER */
