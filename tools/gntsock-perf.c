// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock-perf: AF_GNTSOCK against TCP, libxenvchan and memcpy, in one run.
 *
 *   gntsock-perf serve [options]      in the receiving domain
 *   gntsock-perf run --peer DOMID     in the sending domain: prints the table
 *   gntsock-perf memcpy               the copy ceiling inside this domain
 *   gntsock-perf smoke --peer DOMID   short KTAP self-test of every mode
 *   gntsock-perf grant --peer DOMID   grant cmsg vs streaming (needs grants)
 *   gntsock-perf seqpacket --peer D   SOCK_SEQPACKET throughput (needs it)
 *
 * Every transport carries the same little protocol: a request header, then
 * for a stream request the client writes `total` bytes in `msgsize` writes
 * and the server answers with the byte count it received (so the clock stops
 * only when the receiver has the last byte); for a ping request the two
 * bounce one byte `count` times. Reading the clock is slow in a PV domain
 * (tens of microseconds), so throughput runs are timed as whole batches
 * whose size is calibrated to last about --time seconds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <linux/gntsock.h>
#include "gntsock_grant_msg.h"
#ifdef HAVE_VCHAN
#include <libxenvchan.h>
#endif

#define PERF_MAGIC	0x46524550U	/* "PERF" */
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
/* serve's SOCK_SEQPACKET listener is this many ports above --port */
#define SEQ_PORT_OFFSET	100
#define OP_STREAM	1
#define OP_PING		2
#define OP_GRANT	3	/* count grants follow, each with an 8-byte length */
#define OP_QUIT		3
#define DEF_PORT	6100
#define DEF_VCHAN_PATH	"data/gntsock-perf-vchan"
#define DEF_VCHAN_RING	1048576U
#define MAX_MSG		1048576U
#define RX_MIN		65536U
#define MEMCPY_BUF	(64U << 20)
#define MAX_CONNS	1024

struct req {
	uint32_t magic;
	uint32_t op;
	uint32_t msgsize;
	uint32_t count;		/* OP_STREAM: REQ_COST for a struct cost answer */
	uint64_t total;
};

/* An OP_STREAM request with this count is answered with the receiving
 * domain's struct cost after the byte count; otherwise the count alone.
 */
#define REQ_COST	1

/* What a domain's kernel counted in /proc/stat: CPU time busy (user,
 * nice, system, irq, softirq: not idle, iowait or steal), in clock ticks,
 * context switches and interrupts (event-channel upcalls among them).
 * Busy time is sampled at the tick: a domain that works in bursts shorter
 * than a tick between waits shows less than it used (see
 * Documentation/performance.rst); the two counts are exact.
 */
struct cost {
	uint64_t busy, ctxt, intr;
};

static void cost_read(struct cost *c)
{
	unsigned long long v[8] = { 0 };
	char line[256];
	FILE *f = fopen("/proc/stat", "r");

	memset(c, 0, sizeof(*c));
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "cpu  %llu %llu %llu %llu %llu %llu %llu %llu",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
			   &v[7]) == 8)
			c->busy = v[0] + v[1] + v[2] + v[5] + v[6];
		else if (sscanf(line, "ctxt %llu", &v[0]) == 1)
			c->ctxt = v[0];
		else if (sscanf(line, "intr %llu", &v[0]) == 1)
			c->intr = v[0];
	}
	fclose(f);
}

/* @c becomes what was counted since @c0. */
static void cost_since(struct cost *c, const struct cost *c0)
{
	struct cost now;

	cost_read(&now);
	c->busy = now.busy - c0->busy;
	c->ctxt = now.ctxt - c0->ctxt;
	c->intr = now.intr - c0->intr;
}

/* The answer to an OP_STREAM request: the byte count, and with REQ_COST
 * the receiving domain's cost of the request.
 */
struct stream_ans {
	uint64_t got;
	struct cost cost;
};

static size_t stream_ans_len(const struct req *r)
{
	return r->count == REQ_COST ? sizeof(struct stream_ans) :
				      sizeof(uint64_t);
}

/* ------------------------------------------------------------------ */
/* Transports: a file descriptor (gntsock, TCP) or a vchan. */

struct xport {
	const char *name;
	int fd;
#ifdef HAVE_VCHAN
	struct libxenvchan *vc;
#endif
};

static int xp_write(struct xport *x, const void *buf, size_t len)
{
	const char *p = buf;

#ifdef HAVE_VCHAN
	if (x->vc)
		return libxenvchan_write(x->vc, buf, len) == (int)len ? 0 : -1;
#endif
	while (len) {
		ssize_t n = write(x->fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* Read at least one byte, at most len; 0 at end of stream, -1 on error. */
static ssize_t xp_read_some(struct xport *x, void *buf, size_t len)
{
#ifdef HAVE_VCHAN
	if (x->vc) {
		int n = libxenvchan_read(x->vc, buf, len);

		if (n < 0)
			return libxenvchan_is_open(x->vc) ? -1 : 0;
		return n;
	}
#endif
	for (;;) {
		ssize_t n = read(x->fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		return n;
	}
}

static int xp_read_exact(struct xport *x, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = xp_read_some(x, p, len);

		if (n <= 0) {
			if (n == 0)
				errno = ECONNRESET;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static void xp_close(struct xport *x)
{
#ifdef HAVE_VCHAN
	if (x->vc) {
		libxenvchan_close(x->vc);
		x->vc = NULL;
		return;
	}
#endif
	if (x->fd >= 0)
		close(x->fd);
	x->fd = -1;
}

/* ------------------------------------------------------------------ */
/* Helpers. */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int parse_ul(const char *s, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 0);
	if (errno || end == s)
		return -1;
	if (*end == 'K' || *end == 'k')
		*out <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		*out <<= 20, end++;
	return *end ? -1 : 0;
}

/* "64,1K,..." into v[]; returns the count or -1. */
static int parse_list(const char *s, unsigned long *v, int max)
{
	char *copy = strdup(s), *tok, *save = NULL;
	int n = 0;

	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (n == max || parse_ul(tok, &v[n])) {
			free(copy);
			return -1;
		}
		n++;
	}
	free(copy);
	return n;
}

static char *fmt_size(unsigned long v, char *buf, size_t len)
{
	if (v >= (1UL << 20) && !(v % (1UL << 20)))
		snprintf(buf, len, "%lu MiB", v >> 20);
	else if (v >= 1024 && !(v % 1024))
		snprintf(buf, len, "%lu KiB", v >> 10);
	else
		snprintf(buf, len, "%lu B", v);
	return buf;
}

static void *xmalloc(size_t len)
{
	void *p = malloc(len);

	if (!p) {
		fprintf(stderr, "gntsock-perf: out of memory (%zu bytes)\n", len);
		exit(1);
	}
	memset(p, 0x5a, len);
	return p;
}

/* ------------------------------------------------------------------ */
/* Server. */

struct srv_opts {
	unsigned int port;
	unsigned int tcp_port;
	int tcp;
	int vchan_peer;
	const char *vchan_path;
	unsigned long vchan_ring;
	unsigned long gnt_buffer;
	unsigned int busy_poll;
};

/* OP_GRANT, receiving side: map each grant, read one byte of every page,
 * unmap and release it; *touched counts the bytes so covered.
 */
static int serve_grants(int fd, uint32_t count, uint64_t *touched)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint32_t i;

	for (i = 0; i < count; i++) {
		union gnt_grant_cbuf u;
		uint64_t len;
		struct iovec iov = { &len, sizeof(len) };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
				    .msg_control = u.i,
				    .msg_controllen = sizeof(u.i) };
		struct gntsock_grant_info gi;
		const unsigned char *p;
		unsigned char sum = 0;
		size_t off;

		if (recvmsg(fd, &m, MSG_WAITALL) != sizeof(len) ||
		    !gnt_grant_info(&m, &gi))
			return -1;
		p = mmap(NULL, gi.len, PROT_READ, MAP_SHARED, fd,
			 (off_t)gi.id * pg);
		if (p == MAP_FAILED)
			return -1;
		for (off = 0; off < gi.len; off += pg)
			sum += p[off];
		/* Keep the reads from being optimised away. */
		__asm__ __volatile__("" : : "r"(sum) : "memory");
		munmap((void *)p, gi.len);
		if (ioctl(fd, GNTSOCK_IOC_RELEASE, &gi.id))
			return -1;
		*touched += gi.len;
	}
	return 0;
}

/* The read size of an OP_STREAM request: as large as its writes (at
 * least RX_MIN, at most MAX_MSG).
 */
static size_t stream_want(const struct req *r)
{
	size_t want = r->msgsize > RX_MIN ? r->msgsize : RX_MIN;

	return want > MAX_MSG ? MAX_MSG : want;
}

/* Serve one request whose header *r was read; buf holds MAX_MSG bytes.
 * Returns 0 to go on with the next request, -1 to end the connection.
 */
static int serve_req(struct xport *x, const struct req *r, char *buf)
{
	if (r->magic != PERF_MAGIC)
		return -1;
	if (r->op == OP_STREAM) {
		size_t want = stream_want(r);
		struct stream_ans a = { 0 };
		struct cost c0;

		cost_read(&c0);
		while (a.got < r->total) {
			size_t left = r->total - a.got;
			ssize_t n = xp_read_some(x, buf,
						 left < want ? left : want);

			if (n <= 0)
				return -1;
			a.got += n;
		}
		cost_since(&a.cost, &c0);
		return xp_write(x, &a, stream_ans_len(r));
	} else if (r->op == OP_GRANT && x->fd >= 0) {
		uint64_t touched = 0;

		if (serve_grants(x->fd, r->count, &touched))
			return -1;
		return xp_write(x, &touched, sizeof(touched));
	} else if (r->op == OP_PING) {
		uint32_t i;

		for (i = 0; i < r->count; i++) {
			if (xp_read_exact(x, buf, 1) || xp_write(x, buf, 1))
				return -1;
		}
		return 0;
	}
	return -1;
}

/* Serve requests on one connection until it ends, starting with *first
 * if it is not NULL (its header already read).
 */
static void serve_xport_from(struct xport *x, const struct req *first)
{
	/* Not cleared: reads use only as much of it as a request's writes
	 * need (at least RX_MIN), so hundreds of connections touch little.
	 */
	char *buf = malloc(MAX_MSG);
	struct req r;

	if (!buf)
		return;
	if (!first || !serve_req(x, first, buf)) {
		while (!xp_read_exact(x, &r, sizeof(r)) &&
		       !serve_req(x, &r, buf))
			;
	}
	free(buf);
}

static void serve_xport(struct xport *x)
{
	serve_xport_from(x, NULL);
}

static void *conn_thread(void *arg)
{
	struct xport x = { .name = "conn", .fd = (int)(intptr_t)arg };

	serve_xport(&x);
	xp_close(&x);
	return NULL;
}

static int spawn(void *(*fn)(void *), void *arg)
{
	pthread_attr_t a;
	pthread_t t;
	int err;

	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 256 << 10);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&t, &a, fn, arg);
	pthread_attr_destroy(&a);
	return err;
}

static void accept_loop(int ls, const char *what)
{
	for (;;) {
		int c = accept(ls, NULL, NULL);

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "gntsock-perf: accept (%s): %s\n", what,
				strerror(errno));
			sleep(1);
			continue;
		}
		if (spawn(conn_thread, (void *)(intptr_t)c)) {
			fprintf(stderr, "gntsock-perf: no thread for a %s connection\n",
				what);
			close(c);
		}
	}
}

/* ------------------------------------------------------------------ */
/* The gntsock stream service, event-driven: one thread and epoll serve
 * every connection's OP_STREAM requests (the scale test's hundreds of
 * connections then cost the server no thread each, as they cost the
 * client none). A connection whose request is anything else (a ping, a
 * grant) leaves the loop for a thread of its own, which goes on with it.
 */

struct econn {
	int fd;
	struct req r;
	size_t hdr;		/* bytes of r read */
	struct stream_ans a;	/* OP_STREAM: payload bytes read (a.got) */
	struct cost c0;		/* /proc/stat when the request came */
};

struct handoff {
	int fd;
	struct req r;
};

static void *handoff_thread(void *arg)
{
	struct handoff *h = arg;
	struct xport x = { .name = "conn", .fd = h->fd };

	serve_xport_from(&x, &h->r);
	xp_close(&x);
	free(h);
	return NULL;
}

/* Give @c to a thread of its own, blocking again: its request is not a
 * stream. Returns 0, or -1 if the connection is to be closed.
 */
static int econn_handoff(struct econn *c)
{
	struct handoff *h = malloc(sizeof(*h));
	int fl = fcntl(c->fd, F_GETFL);

	if (!h || fl < 0 || fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK)) {
		free(h);
		return -1;
	}
	h->fd = c->fd;
	h->r = c->r;
	if (spawn(handoff_thread, h)) {
		free(h);
		return -1;
	}
	return 0;
}

/* Answer a finished OP_STREAM request: 8 or 32 bytes, which a
 * non-blocking socket may not take at once (no credit yet): then wait
 * for room.
 */
static int econn_answer(struct econn *c)
{
	const char *p = (const char *)&c->a;
	size_t left = stream_ans_len(&c->r);

	cost_since(&c->a.cost, &c->c0);
	while (left) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
		ssize_t n = write(c->fd, p, left);

		if (n > 0) {
			p += n;
			left -= n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (n < 0 && errno == EAGAIN && poll(&pfd, 1, 10000) <= 0)
			return -1;
	}
	return 0;
}

/* Read what @c has for us now. Returns 1 while the connection stays in
 * the loop, 0 once it left for a thread of its own, -1 to close it.
 */
static int econn_step(struct econn *c, char *buf)
{
	int reads;

	for (reads = 0; reads < 4; reads++) {
		ssize_t n;

		if (c->hdr < sizeof(c->r)) {
			n = read(c->fd, (char *)&c->r + c->hdr,
				 sizeof(c->r) - c->hdr);
		} else {
			uint64_t left = c->r.total - c->a.got;
			size_t want = stream_want(&c->r);

			n = read(c->fd, buf, left < want ? left : want);
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 1;
		if (n <= 0)
			return -1;
		if (c->hdr < sizeof(c->r)) {
			c->hdr += n;
			if (c->hdr < sizeof(c->r))
				continue;
			if (c->r.magic != PERF_MAGIC)
				return -1;
			if (c->r.op != OP_STREAM)
				return econn_handoff(c) ? -1 : 0;
			c->a.got = 0;
			cost_read(&c->c0);
		} else {
			c->a.got += n;
		}
		if (c->a.got == c->r.total) {
			if (econn_answer(c))
				return -1;
			c->hdr = 0;
		}
	}
	return 1;
}

/* Accept and serve gntsock stream connections on listener @ls. */
static void stream_loop(int ls)
{
	struct epoll_event ev = { .events = EPOLLIN }, evs[64];
	char *buf = malloc(MAX_MSG);
	int ep = epoll_create1(EPOLL_CLOEXEC), n, k;

	if (!buf || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev)) {
		fprintf(stderr, "gntsock-perf: epoll: %s\n", strerror(errno));
		free(buf);
		accept_loop(ls, "gntsock");
		return;
	}
	for (;;) {
		n = epoll_wait(ep, evs, 64, -1);
		for (k = 0; k < n; k++) {
			struct econn *c = evs[k].data.ptr;
			int fd, st;

			if (!c) {	/* the listener (its data.ptr is NULL) */
				fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
				c = fd < 0 ? NULL : calloc(1, sizeof(*c));
				if (!c) {
					if (fd >= 0)
						close(fd);
					continue;
				}
				c->fd = fd;
				ev.events = EPOLLIN;
				ev.data.ptr = c;
				if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
					close(fd);
					free(c);
				}
				continue;
			}
			st = econn_step(c, buf);
			if (st == 1)
				continue;
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			if (st < 0)
				close(c->fd);
			free(c);
		}
	}
}

static void *tcp_listener(void *arg)
{
	unsigned int port = (unsigned int)(uintptr_t)arg;
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port) };
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, MAX_CONNS)) {
		fprintf(stderr, "gntsock-perf: TCP listen on %u: %s\n", port,
			strerror(errno));
		return NULL;
	}
	accept_loop(s, "tcp");
	return NULL;
}

#ifdef HAVE_VCHAN
static void *vchan_server(void *arg)
{
	struct srv_opts *o = arg;
	struct xport x = { .name = "vchan", .fd = -1 };

	x.vc = libxenvchan_server_init(NULL, o->vchan_peer, o->vchan_path,
				       o->vchan_ring, o->vchan_ring);
	if (!x.vc) {
		fprintf(stderr, "gntsock-perf: vchan server for domain %d at %s: %s\n",
			o->vchan_peer, o->vchan_path, strerror(errno));
		return NULL;
	}
	x.vc->blocking = 1;
	serve_xport(&x);
	xp_close(&x);
	return NULL;
}
#endif

/* The same service on SOCK_SEQPACKET, SEQ_PORT_OFFSET ports up: every write is a record
 * and the requests fit the reads, so serve_xport() works unchanged.
 */
static void *seqpacket_listener(void *arg)
{
	struct sockaddr_gnt a = { .sgnt_family = AF_GNTSOCK,
				  .sgnt_domid = GNTSOCK_DOMID_ANY,
				  .sgnt_port = (unsigned int)(uintptr_t)arg };
	int s = socket(AF_GNTSOCK, SOCK_SEQPACKET, 0);

	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(s, MAX_CONNS)) {
		fprintf(stderr, "gntsock-perf: seqpacket listen on %u: %s\n",
			a.sgnt_port, strerror(errno));
		return NULL;
	}
	accept_loop(s, "seqpacket");
	return NULL;
}

static int cmd_serve(struct srv_opts *o)
{
	struct sockaddr_gnt a = { .sgnt_family = AF_GNTSOCK,
				  .sgnt_domid = GNTSOCK_DOMID_ANY,
				  .sgnt_port = o->port };
	int s;

	signal(SIGPIPE, SIG_IGN);
	if (o->tcp && spawn(tcp_listener, (void *)(uintptr_t)o->tcp_port))
		return 1;
	if (o->vchan_peer >= 0) {
#ifdef HAVE_VCHAN
		if (spawn(vchan_server, o))
			return 1;
#else
		fprintf(stderr, "gntsock-perf: built without libxenvchan\n");
#endif
	}
	s = socket(AF_GNTSOCK, SOCK_STREAM, 0);
	if (s < 0) {
		perror("gntsock-perf: socket(AF_GNTSOCK) (is gntsock.ko loaded?)");
		pause();
		return 1;
	}
	if (o->gnt_buffer &&
	    setsockopt(s, SOL_GNTSOCK, GNTSOCK_SO_BUFFER_SIZE, &o->gnt_buffer,
		       sizeof(uint64_t)))
		perror("gntsock-perf: GNTSOCK_SO_BUFFER_SIZE");
	/* (accepted connections take the listener's value) */
	if (o->busy_poll &&
	    setsockopt(s, SOL_GNTSOCK, GNTSOCK_SO_BUSY_POLL, &o->busy_poll,
		       sizeof(o->busy_poll))) {
		perror("gntsock-perf: GNTSOCK_SO_BUSY_POLL");
		return 1;
	}
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, MAX_CONNS)) {
		perror("gntsock-perf: gntsock bind/listen");
		return 1;
	}
	if (spawn(seqpacket_listener, (void *)(uintptr_t)(o->port + SEQ_PORT_OFFSET)))
		return 1;
	fprintf(stderr, "gntsock-perf: serving gntsock port %u (SOCK_SEQPACKET %u)%s\n",
		o->port, o->port + SEQ_PORT_OFFSET, o->tcp ? ", TCP" : "");
	stream_loop(s);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Client. */

struct cli_opts {
	unsigned int peer;
	unsigned int port;
	unsigned int tcp_port;
	const char *tcp_addr;
	const char *vchan_path;
	unsigned long gnt_buffer;
	unsigned int busy_poll;
	double time;
	int reps;
	int rtt_count;
	unsigned long sizes[32];
	int nsizes;
	unsigned long scale[16];
	int nscale;
	int do_gnt, do_tcp, do_vchan, do_memcpy;
	int ring_order;		/* as reported by the link, for the header */
	unsigned long vchan_ring;
};

enum { T_GNT, T_TCP, T_VCHAN, T_MEMCPY, T_MAX };
static const char *const tname[T_MAX] = { "gntsock", "TCP", "vchan", "memcpy" };

static int connect_gnt(const struct cli_opts *o, int type)
{
	struct sockaddr_gnt a = { .sgnt_family = AF_GNTSOCK,
				  .sgnt_domid = o->peer,
				  .sgnt_port = o->port +
					       (type == SOCK_SEQPACKET) * SEQ_PORT_OFFSET };
	/* Hundreds of connects in a row on a loaded emulated host: more
	 * room than the default 2 s for the peer kernel's answer.
	 */
	struct timeval tv = { .tv_sec = 30 };
	int s = socket(AF_GNTSOCK, type, 0);

	if (s < 0)
		return -1;
	setsockopt(s, SOL_GNTSOCK, GNTSOCK_SO_CONNECT_TIMEOUT, &tv, sizeof(tv));
	if (o->gnt_buffer)
		setsockopt(s, SOL_GNTSOCK, GNTSOCK_SO_BUFFER_SIZE,
			   &o->gnt_buffer, sizeof(uint64_t));
	if (o->busy_poll &&
	    setsockopt(s, SOL_GNTSOCK, GNTSOCK_SO_BUSY_POLL, &o->busy_poll,
		       sizeof(o->busy_poll))) {
		close(s);
		return -1;
	}
	if (connect(s, (struct sockaddr *)&a, sizeof(a))) {
		int e = errno;

		close(s);
		errno = e;
		return -1;
	}
	return s;
}

static int connect_tcp(const struct cli_opts *o)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(o->tcp_port) };
	int s;

	if (inet_pton(AF_INET, o->tcp_addr, &a.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		return -1;
	if (connect(s, (struct sockaddr *)&a, sizeof(a))) {
		int e = errno;

		close(s);
		errno = e;
		return -1;
	}
	return s;
}

static int xp_open(const struct cli_opts *o, int t, struct xport *x)
{
	memset(x, 0, sizeof(*x));
	x->name = tname[t];
	x->fd = -1;
	switch (t) {
	case T_GNT:
		x->fd = connect_gnt(o, SOCK_STREAM);
		return x->fd < 0 ? -1 : 0;
	case T_TCP:
		x->fd = connect_tcp(o);
		return x->fd < 0 ? -1 : 0;
#ifdef HAVE_VCHAN
	case T_VCHAN: {
		double end = now() + 30;

		/* The server may still be setting up: retry a while. */
		for (;;) {
			x->vc = libxenvchan_client_init(NULL, o->peer,
							o->vchan_path);
			if (x->vc)
				break;
			if (now() > end)
				return -1;
			usleep(200000);
		}
		x->vc->blocking = 1;
		return 0;
	}
#endif
	default:
		errno = EOPNOTSUPP;
		return -1;
	}
}

static char *sendbuf;

/* One timed stream of total bytes in msgsize writes; MB/s or -1. With
 * @cost (sender's, receiver's), what each domain counted meanwhile is
 * added there.
 */
static double stream_once(struct xport *x, uint32_t msgsize, uint64_t total,
			  struct cost *cost)
{
	struct req r = { PERF_MAGIC, OP_STREAM, msgsize,
			 cost ? REQ_COST : 0, total };
	struct stream_ans a = { 0 };
	uint64_t sent = 0, ack;
	struct cost c0, c;
	double t0, t1;

	if (cost)
		cost_read(&c0);
	t0 = now();
	if (xp_write(x, &r, sizeof(r)))
		return -1;
	while (sent < total) {
		uint64_t n = total - sent < msgsize ? total - sent : msgsize;

		if (xp_write(x, sendbuf, n))
			return -1;
		sent += n;
	}
	if (xp_read_exact(x, &a, stream_ans_len(&r)))
		return -1;
	t1 = now();
	ack = a.got;
	if (cost) {
		cost_since(&c, &c0);
		cost[0].busy += c.busy;
		cost[0].ctxt += c.ctxt;
		cost[0].intr += c.intr;
		cost[1].busy += a.cost.busy;
		cost[1].ctxt += a.cost.ctxt;
		cost[1].intr += a.cost.intr;
	}
	if (ack != total) {
		fprintf(stderr, "gntsock-perf: %s: receiver got %llu of %llu bytes\n",
			x->name, (unsigned long long)ack,
			(unsigned long long)total);
		return -1;
	}
	return total / (t1 - t0) / 1e6;
}

/* Bytes that take about `secs` at `rate` MB/s, a multiple of msgsize. */
static uint64_t batch_for(double rate, double secs, uint32_t msgsize,
			  uint64_t min)
{
	double b = rate * 1e6 * secs;
	uint64_t n;

	if (b > 4e9)
		b = 4e9;
	n = (uint64_t)b / msgsize * msgsize;
	return n < min ? min : n;
}

static uint64_t pilot_bytes(uint32_t msgsize)
{
	uint64_t b = (uint64_t)msgsize * 32;

	if (b < (256 << 10))
		b = 256 << 10;
	if (b > (8 << 20))
		b = 8 << 20;
	return b / msgsize * msgsize;
}

/* A point of the throughput table: median MB/s of the reps, and their
 * spread; -1 on error.
 */
struct tput {
	double med, lo, hi;
	uint64_t bytes;		/* of the timed runs, which cost[] is of */
	struct cost cost[2];	/* sender's domain, receiver's */
};

/*
 * One write size on every transport in @have: each is calibrated first
 * (a pilot stream sizes its batch to ~o->time s), then the reps take
 * turns, A-B-C-A-B-C, so that a slow spell of the machine (TCG, another
 * guest) lands on every transport rather than on one. A transport that
 * fails drops out (have[t] cleared, res[t].med -1).
 */
static void stream_points(const struct cli_opts *o, struct xport *x,
			  int *have, uint32_t msgsize, struct tput *res)
{
	double v[T_MEMCPY][16], rate;
	uint64_t total[T_MEMCPY];
	int i, t;

	for (t = 0; t < T_MEMCPY; t++) {
		memset(&res[t], 0, sizeof(res[t]));
		res[t].med = -1;
		res[t].lo = -1;
		res[t].hi = -1;
		if (!have[t])
			continue;
		rate = stream_once(&x[t], msgsize, pilot_bytes(msgsize),
				   NULL);
		if (rate <= 0) {
			have[t] = 0;
			continue;
		}
		total[t] = batch_for(rate, o->time, msgsize,
				     pilot_bytes(msgsize));
	}
	for (i = 0; i < o->reps; i++)
		for (t = 0; t < T_MEMCPY; t++) {
			if (!have[t])
				continue;
			v[t][i] = stream_once(&x[t], msgsize, total[t],
					      res[t].cost);
			if (v[t][i] <= 0)
				have[t] = 0;
			res[t].bytes += total[t];
		}
	for (t = 0; t < T_MEMCPY; t++) {
		if (!have[t])
			continue;
		res[t].med = median(v[t], o->reps);	/* (sorts them) */
		res[t].lo = v[t][0];
		res[t].hi = v[t][o->reps - 1];
	}
}

struct rtt {
	double med, p99;
};

static int ping(struct xport *x, int count, struct rtt *res)
{
	struct req r = { PERF_MAGIC, OP_PING, 1, count, 0 };
	double *t = xmalloc((count + 1) * sizeof(double));
	char c = 'p';
	int i, one = 1;

	/* Round trips of single bytes: no Nagle delay on TCP (a no-op on
	 * gntsock, whose writes are never held back).
	 */
	if (x->fd >= 0 && !strcmp(x->name, "TCP"))
		setsockopt(x->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (xp_write(x, &r, sizeof(r)))
		goto fail;
	/* One clock read per round trip: sample i is t[i+1] - t[i]. */
	for (i = 0; i < count; i++) {
		t[i] = now();
		if (xp_write(x, &c, 1) || xp_read_exact(x, &c, 1))
			goto fail;
	}
	t[count] = now();
	for (i = 0; i < count; i++)
		t[i] = (t[i + 1] - t[i]) * 1e6;
	qsort(t, count, sizeof(*t), cmp_double);
	res->med = median(t, count);
	res->p99 = t[(int)(count * 0.99)];
	free(t);
	return 0;
fail:
	free(t);
	return -1;
}

/* The cost of one clock read, in microseconds (median of batches). */
static double clock_cost_us(void)
{
	double v[5];
	int i, j;

	for (i = 0; i < 5; i++) {
		double t0 = now();

		for (j = 0; j < 200; j++)
			now();
		v[i] = (now() - t0) / 201 * 1e6;
	}
	return median(v, 5);
}

/* memcpy through two MEMCPY_BUF buffers in msgsize pieces; MB/s. */
/* Bytes memcpy_rate() copies per pass; the smoke test uses less, to fit
 * a small domU next to the other test programs.
 */
static size_t memcpy_buf = MEMCPY_BUF;

static double memcpy_rate(const struct cli_opts *o, uint32_t msgsize)
{
	static char *src, *dst;
	double v[16], t0, t1, pass_s;
	unsigned long passes, p;
	size_t off;
	int i;

	if (!src) {
		src = xmalloc(memcpy_buf);
		dst = xmalloc(memcpy_buf);
	}
	t0 = now();
	for (off = 0; off + msgsize <= memcpy_buf; off += msgsize)
		memcpy(dst + off, src + off, msgsize);
	pass_s = now() - t0;
	/* No memcpy() runs at 50 GB/s: a shorter pilot is a clock that
	 * jumped (a guest's clocksource marked unstable mid-run), and would
	 * size a run that never ends.
	 */
	if (pass_s < memcpy_buf / 50e9)
		pass_s = memcpy_buf / 50e9;
	passes = (unsigned long)(o->time / pass_s);
	if (passes < 1)
		passes = 1;
	for (i = 0; i < o->reps; i++) {
		t0 = now();
		for (p = 0; p < passes; p++) {
			for (off = 0; off + msgsize <= memcpy_buf; off += msgsize)
				memcpy(dst + off, src + off, msgsize);
			/* Keep the copies from being optimised away. */
			__asm__ __volatile__("" : : "r"(dst) : "memory");
		}
		t1 = now();
		v[i] = (double)passes * (memcpy_buf / msgsize * msgsize) /
		       (t1 - t0) / 1e6;
	}
	return median(v, o->reps);
}

/* Counters of the link to the peer from /proc/net/gntsock_links. */
struct linkstat {
	unsigned long long tx_msgs, rx_msgs, tx_bytes, rx_bytes, ev_rx, ev_tx;
	unsigned int ring_pages;
	int ok;
};

static void link_stat(unsigned int peer, struct linkstat *ls)
{
	FILE *f = fopen("/proc/net/gntsock_links", "r");
	char line[512], role[32], state[32];
	unsigned long long resets, viol, socks;
	unsigned int p;

	memset(ls, 0, sizeof(*ls));
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%u %31s %31s %u %llu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &p, role, state, &ls->ring_pages, &ls->tx_msgs,
			   &ls->rx_msgs, &ls->tx_bytes, &ls->rx_bytes, &resets,
			   &viol, &socks, &ls->ev_rx, &ls->ev_tx) == 13 &&
		    p == peer) {
			ls->ok = 1;
			break;
		}
	}
	fclose(f);
}

/* One connection of the scale test: its request, then @bytes of data,
 * then the server's 8-byte count back.
 */
struct scale_conn {
	int fd;
	struct req r;
	size_t hdr_done;	/* bytes of @r written */
	uint64_t sent;		/* data bytes written */
	uint64_t bytes;
	uint64_t ack;
	size_t ack_done;	/* bytes of @ack read */
	int done;
	int err;
};

/* Move @c on as far as its socket lets it without blocking: 0 while more
 * is to come, 1 once acknowledged, -1 on error (c->err set).
 */
static int scale_step(struct scale_conn *c)
{
	ssize_t n;

	while (c->hdr_done < sizeof(c->r)) {
		n = write(c->fd, (char *)&c->r + c->hdr_done,
			  sizeof(c->r) - c->hdr_done);
		if (n < 0)
			goto again;
		c->hdr_done += n;
	}
	while (c->sent < c->bytes) {
		uint64_t left = c->bytes - c->sent;

		n = write(c->fd, sendbuf, left < 65536 ? left : 65536);
		if (n < 0)
			goto again;
		c->sent += n;
	}
	while (c->ack_done < sizeof(c->ack)) {
		n = read(c->fd, (char *)&c->ack + c->ack_done,
			 sizeof(c->ack) - c->ack_done);
		if (n == 0) {
			c->err = ECONNRESET;
			return -1;
		}
		if (n < 0)
			goto again;
		c->ack_done += n;
	}
	if (c->ack != c->bytes) {
		c->err = EIO;
		return -1;
	}
	return 1;
again:
	if (errno == EAGAIN || errno == EINTR)
		return 0;
	c->err = errno;
	return -1;
}

/* Aggregate MB/s of n connections each sending per bytes in 64 KiB
 * writes, all driven by this one thread with epoll (non-blocking
 * sockets; EPOLLOUT while a connection has data to write, EPOLLIN while
 * it waits for its count), as an event-driven server or proxy would;
 * -1 on error.
 */
static double scale_once(const struct cli_opts *o, int t, int n, uint64_t per)
{
	struct scale_conn *c = calloc(n, sizeof(*c));
	struct epoll_event ev, evs[64];
	double t0, t1, res = -1;
	int i, k, m, left = n, ep = -1;

	if (!c)
		return -1;
	for (i = 0; i < n; i++)
		c[i].fd = -1;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		goto out;
	for (i = 0; i < n; i++) {
		c[i].fd = t == T_GNT ? connect_gnt(o, SOCK_STREAM) : connect_tcp(o);
		if (c[i].fd < 0 ||
		    fcntl(c[i].fd, F_SETFL, fcntl(c[i].fd, F_GETFL) | O_NONBLOCK)) {
			fprintf(stderr, "gntsock-perf: scale %d: connection %d: %s\n",
				n, i, strerror(errno));
			goto out;
		}
		c[i].r = (struct req){ PERF_MAGIC, OP_STREAM, 65536, 0, per };
		c[i].bytes = per;
	}
	t0 = now();
	for (i = 0; i < n; i++) {
		ev.events = EPOLLOUT | EPOLLIN;
		ev.data.u32 = i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c[i].fd, &ev)) {
			fprintf(stderr, "gntsock-perf: scale %d: epoll: %s\n", n,
				strerror(errno));
			goto out;
		}
	}
	while (left) {
		m = epoll_wait(ep, evs, 64, 60000);
		if (m < 0 && errno == EINTR)
			continue;
		if (m <= 0) {
			fprintf(stderr, "gntsock-perf: scale %d: %s\n", n,
				m ? strerror(errno) : "no progress for 60 s");
			goto out;
		}
		for (k = 0; k < m; k++) {
			struct scale_conn *x = &c[evs[k].data.u32];
			int s;

			if (x->done)
				continue;
			s = scale_step(x);
			if (s < 0) {
				fprintf(stderr, "gntsock-perf: scale %d: connection %u: %s\n",
					n, evs[k].data.u32, strerror(x->err));
				goto out;
			}
			if (s > 0) {
				x->done = 1;
				left--;
				epoll_ctl(ep, EPOLL_CTL_DEL, x->fd, NULL);
			} else if (x->sent == x->bytes &&
				   x->hdr_done == sizeof(x->r)) {
				/* All written: only the count is awaited. */
				ev.events = EPOLLIN;
				ev.data.u32 = evs[k].data.u32;
				epoll_ctl(ep, EPOLL_CTL_MOD, x->fd, &ev);
			}
		}
	}
	t1 = now();
	res = (double)per * n / (t1 - t0) / 1e6;
out:
	for (i = 0; i < n; i++)
		if (c[i].fd >= 0)
			close(c[i].fd);
	if (ep >= 0)
		close(ep);
	free(c);
	return res;
}

static void print_ratio(double v, double base)
{
	if (v < 0 || base <= 0)
		printf(" %8s", "-");
	else
		printf(" %7.2fx", v / base);
}

static void print_rate(double v)
{
	if (v < 0)
		printf(" %9s", "n/a");
	else
		printf(" %9.1f", v);
}

static const char *tr_note(int t, const struct cli_opts *o, char *buf,
			   size_t len)
{
	char a[32];

	if (t == T_GNT)
		snprintf(buf, len, "gntsock = AF_GNTSOCK SOCK_STREAM, link ring %s each way",
			 o->ring_order >= 0 ?
			 fmt_size(4096UL << o->ring_order, a, sizeof(a)) : "?");
	else if (t == T_TCP)
		snprintf(buf, len, "TCP     = %s:%u over netfront/netback via dom0's bridge",
			 o->tcp_addr ? o->tcp_addr : "-", o->tcp_port);
	else if (t == T_VCHAN)
		snprintf(buf, len, "vchan   = libxenvchan, %s ring each way",
			 fmt_size(o->vchan_ring, a, sizeof(a)));
	else
		snprintf(buf, len, "memcpy  = memcpy() in this domain through two %u MiB buffers",
			 MEMCPY_BUF >> 20);
	return buf;
}

/* Each transport's lowest and highest run, next to the medians above. */
static void print_spread(const struct cli_opts *o, struct tput tp[][T_MAX])
{
	char a[32], c[40];
	int i, t;

	if (o->reps < 2)
		return;
	printf("\n== spread: lowest..highest of the %d runs, MB/s (the runs of\n"
	       "   all transports took turns, A-B-C-A-B-C) ==\n", o->reps);
	printf("%9s %17s %17s %17s\n", "write", "gntsock", "TCP", "vchan");
	for (i = 0; i < o->nsizes; i++) {
		printf("%9s", fmt_size(o->sizes[i], a, sizeof(a)));
		for (t = 0; t < T_MEMCPY; t++) {
			if (tp[i][t].med < 0)
				snprintf(c, sizeof(c), "n/a");
			else
				snprintf(c, sizeof(c), "%.1f..%.1f",
					 tp[i][t].lo, tp[i][t].hi);
			printf(" %17s", c);
		}
		printf("\n");
	}
}

/* What each domain's kernel counted per MiB of the timed runs of the
 * main table: CPU time, context switches, interrupts, the sender's
 * (domain of this client) and the receiver's (the server's domain).
 */
static void print_cost(const struct cli_opts *o, struct tput tp[][T_MAX])
{
	static const char *const what[] = {
		"CPU busy (ticks), ms", "context switches", "interrupts",
	};
	double hz = (double)sysconf(_SC_CLK_TCK), mib, tx, rx;
	char a[32];
	int i, k, t;

	printf("\n== cost per MiB moved, each domain's /proc/stat over the timed\n"
	       "   runs above: tx = the writer's domain, rx = the reader's ==\n");
	for (k = 0; k < 3; k++) {
		printf("%-20s %15s %15s %15s\n", what[k], "gntsock tx/rx",
		       "TCP tx/rx", "vchan tx/rx");
		for (i = 0; i < o->nsizes; i++) {
			printf("%20s", fmt_size(o->sizes[i], a, sizeof(a)));
			for (t = 0; t < T_MEMCPY; t++) {
				const struct cost *c = tp[i][t].cost;
				char cell[40];

				mib = tp[i][t].bytes / 1048576.0;
				if (tp[i][t].med < 0 || mib <= 0) {
					printf(" %15s", "n/a");
					continue;
				}
				tx = k == 0 ? c[0].busy * 1000.0 / hz :
				     k == 1 ? c[0].ctxt : c[0].intr;
				rx = k == 0 ? c[1].busy * 1000.0 / hz :
				     k == 1 ? c[1].ctxt : c[1].intr;
				snprintf(cell, sizeof(cell), "%.1f/%.1f",
					 tx / mib, rx / mib);
				printf(" %15s", cell);
			}
			printf("\n");
		}
	}
}

static int cmd_run(struct cli_opts *o)
{
	static struct tput tp[32][T_MAX];
	static struct linkstat prof[32][2];
	struct rtt rtt[T_MAX];
	struct xport x[T_MAX];
	int have[T_MAX] = { 0 }, t, i, err = 0;
	struct linkstat ls;
	char a[32], note[160];
	double cc;

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	sendbuf = xmalloc(MAX_MSG);
	link_stat(o->peer, &ls);
	o->ring_order = -1;
	if (ls.ok)
		for (i = 0; i <= 8; i++)
			if ((1U << i) == ls.ring_pages)
				o->ring_order = i;
	cc = clock_cost_us();

	have[T_GNT] = o->do_gnt;
	have[T_TCP] = o->do_tcp && o->tcp_addr;
	have[T_VCHAN] = o->do_vchan;
	have[T_MEMCPY] = o->do_memcpy;
	for (t = 0; t < T_MEMCPY; t++) {
		if (!have[t])
			continue;
		if (xp_open(o, t, &x[t])) {
			fprintf(stderr, "gntsock-perf: %s: cannot connect: %s\n",
				tname[t], strerror(errno));
			have[t] = 0;
			err = 1;
		}
	}

	for (i = 0; i < o->nsizes; i++) {
		int was[T_MEMCPY];

		memcpy(was, have, sizeof(was));
		/* (only gntsock moves the link's counters) */
		link_stat(o->peer, &prof[i][0]);
		stream_points(o, x, have, o->sizes[i], tp[i]);
		link_stat(o->peer, &prof[i][1]);
		tp[i][T_MEMCPY].med = -1;
		tp[i][T_MEMCPY].lo = -1;
		tp[i][T_MEMCPY].hi = -1;
		if (have[T_MEMCPY])
			tp[i][T_MEMCPY].med = memcpy_rate(o, o->sizes[i]);
		for (t = 0; t < T_MAX; t++) {
			if (t < T_MEMCPY && !was[t])
				continue;
			if (t == T_MEMCPY && !have[t])
				continue;
			fprintf(stderr, "# %s %lu-byte writes: %.1f MB/s\n",
				tname[t], o->sizes[i], tp[i][t].med);
			if (t != T_MEMCPY && !have[t]) {
				fprintf(stderr,
					"gntsock-perf: %s stream of %lu-byte writes failed: %s\n",
					tname[t], o->sizes[i], strerror(errno));
				err = 1;
			}
		}
	}
	for (t = 0; t < T_MEMCPY; t++) {
		rtt[t].med = -1;
		rtt[t].p99 = -1;
		if (have[t] && ping(&x[t], o->rtt_count, &rtt[t])) {
			fprintf(stderr, "gntsock-perf: %s ping-pong failed: %s\n",
				tname[t], strerror(errno));
			err = 1;
		}
	}

	printf("\n== throughput, MB/s (10^6 bytes/s), one writer -> peer domid %u\n",
	       o->peer);
	printf("   median of %d runs of ~%.1f s, transports taking turns ==\n",
	       o->reps, o->time);
	for (t = 0; t < T_MAX; t++)
		if (have[t] || t != T_MEMCPY)
			printf("   %s\n", tr_note(t, o, note, sizeof(note)));
	printf("%9s %9s %9s %9s %9s | %8s %8s %8s\n", "write", "gntsock", "TCP",
	       "vchan", "memcpy", "gnt/TCP", "gnt/vch", "gnt/mcp");
	for (i = 0; i < o->nsizes; i++) {
		printf("%9s", fmt_size(o->sizes[i], a, sizeof(a)));
		for (t = 0; t < T_MAX; t++)
			print_rate(tp[i][t].med);
		printf(" |");
		print_ratio(tp[i][T_GNT].med, tp[i][T_TCP].med);
		print_ratio(tp[i][T_GNT].med, tp[i][T_VCHAN].med);
		print_ratio(tp[i][T_GNT].med, tp[i][T_MEMCPY].med);
		printf("\n");
	}
	print_spread(o, tp);
	/* (what was asked: a transport that failed later has rows before) */
	if (o->do_gnt || o->do_tcp || o->do_vchan)
		print_cost(o, tp);

	if (have[T_GNT] || have[T_TCP] || have[T_VCHAN] || err)
		printf("\n== 1-byte ping-pong round trip, microseconds, %d round trips\n"
		       "   (one clock read per sample, %.1f us each) ==\n"
		       "%9s %10s %10s %12s\n", o->rtt_count, cc, "transport",
		       "median", "p99", "median/gnt");
	for (t = 0; t < T_MEMCPY; t++) {
		if (!o->do_gnt && !o->do_tcp && !o->do_vchan)
			break;
		if (rtt[t].med < 0) {
			printf("%9s %10s %10s %12s\n", tname[t], "n/a", "n/a", "-");
			continue;
		}
		printf("%9s %10.1f %10.1f", tname[t], rtt[t].med, rtt[t].p99);
		if (rtt[T_GNT].med > 0)
			printf(" %11.2fx\n", rtt[t].med / rtt[T_GNT].med);
		else
			printf(" %12s\n", "-");
	}

	if (have[T_GNT]) {
		printf("\n== gntsock profile: link counters per MiB sent\n"
		       "   (sender's view of /proc/net/gntsock_links) ==\n"
		       "   tx_msgs: data messages; rx_msgs: credit updates back;\n"
		       "   ev_tx: notifications sent (a hypercall each); ev_rx: received\n");
		printf("%9s %10s %10s %10s %10s\n", "write", "tx_msgs", "rx_msgs",
		       "ev_tx", "ev_rx");
		for (i = 0; i < o->nsizes; i++) {
			struct linkstat *b = &prof[i][0], *e = &prof[i][1];
			double mib = (e->tx_bytes - b->tx_bytes) / 1048576.0;

			if (!b->ok || !e->ok || mib <= 0)
				continue;
			printf("%9s %10.1f %10.1f %10.1f %10.1f\n",
			       fmt_size(o->sizes[i], a, sizeof(a)),
			       (e->tx_msgs - b->tx_msgs) / mib,
			       (e->rx_msgs - b->rx_msgs) / mib,
			       (e->ev_tx - b->ev_tx) / mib,
			       (e->ev_rx - b->ev_rx) / mib);
		}
	}

	for (t = 0; t < T_MEMCPY; t++)
		if (have[t])
			xp_close(&x[t]);

	if (o->nscale && o->do_gnt) {
		double base = -1, v;
		uint64_t total;

		printf("\n== scale: aggregate gntsock throughput, 64 KiB writes,\n"
		       "   N connections on one link ==\n");
		printf("%9s %10s %10s\n", "conns", "MB/s", "vs 1");
		/* Size the batch from one connection so each point lasts ~time s. */
		v = scale_once(o, T_GNT, 1, pilot_bytes(65536));
		total = batch_for(v > 0 ? v : 1, o->time, 65536, 4 << 20);
		for (i = 0; i < o->nscale; i++) {
			unsigned long n = o->scale[i];
			double r[16];
			int k;
			uint64_t per = total / n;

			per = per < 65536 ? 65536 : per / 65536 * 65536;
			for (k = 0; k < o->reps; k++) {
				r[k] = scale_once(o, T_GNT, n, per);
				if (r[k] < 0)
					break;
			}
			v = k == o->reps ? median(r, o->reps) : -1;
			if (v < 0)
				err = 1;
			if (n == 1)
				base = v;
			fprintf(stderr, "# scale %lu: %.1f MB/s\n", n, v);
			printf("%9lu", n);
			print_rate(v);
			print_ratio(v, base);
			printf("\n");
		}
	}
	fflush(stdout);
	return err;
}

/* ------------------------------------------------------------------ */
/* Smoke test (KTAP): every mode, small, checked. */

/* Wait for one error-queue event on fd; its type, or -1. */
static int grant_event(int fd)
{
	struct gntsock_grant_event ev;

	return gnt_grant_event(fd, 30000, &ev) ? -1 : (int)ev.type;
}

/* Pass @total bytes of @buf to the peer by grants of @piece bytes; the peer
 * maps each and reads every page. MB/s, or -1.
 */
static double grant_once(int fd, unsigned char *buf, uint64_t total,
			 uint64_t piece)
{
	uint32_t count = (uint32_t)((total + piece - 1) / piece), sent = 0,
		 done = 0;
	struct req r = { PERF_MAGIC, OP_GRANT, 0, count, total };
	struct xport x = { .name = "grant", .fd = fd };
	uint64_t ack = 0;
	double t0 = now(), t1;

	if (write(fd, &r, sizeof(r)) != sizeof(r))
		return -1;
	while (sent < count) {
		uint64_t off = (uint64_t)sent * piece;
		uint64_t len = total - off < piece ? total - off : piece;

		if (gnt_grant_sendmsg(fd, buf + off, len, 0, sent, &len,
				      sizeof(len), MSG_NOSIGNAL) == sizeof(len)) {
			sent++;
			continue;
		}
		/* The in-flight limits: wait for the peer to release one. */
		if (errno != ENOBUFS || done == sent ||
		    grant_event(fd) != GNTSOCK_EV_RELEASED)
			return -1;
		done++;
	}
	if (xp_read_exact(&x, &ack, sizeof(ack)))
		return -1;
	t1 = now();
	while (done < count) {
		if (grant_event(fd) != GNTSOCK_EV_RELEASED)
			return -1;
		done++;
	}
	if (ack < total) {
		fprintf(stderr, "gntsock-perf: grant: the peer touched %llu of %llu bytes\n",
			(unsigned long long)ack, (unsigned long long)total);
		return -1;
	}
	return total / (t1 - t0) / 1e6;
}

static int smoke(struct cli_opts *o)
{
	int n = 0, fails = 0, t, s;
	struct cost cost[2];
	struct xport x;
	struct rtt r;
	double v;

	signal(SIGPIPE, SIG_IGN);
	sendbuf = xmalloc(MAX_MSG);
	printf("KTAP version 1\n1..%d\n", 10);
#define RESULT(ok, ...) do { \
		int _ok = (ok); \
		n++; fails += !_ok; \
		printf("%sok %d ", _ok ? "" : "not ", n); \
		printf(__VA_ARGS__); printf("\n"); fflush(stdout); \
	} while (0)
	for (t = 0; t < T_MEMCPY; t++) {
		const char *why = NULL;

		if (t == T_TCP && !o->tcp_addr)
			why = "no TCP address";
#ifndef HAVE_VCHAN
		if (t == T_VCHAN)
			why = "built without libxenvchan";
#endif
		if (why) {
			RESULT(1, "%s_stream # SKIP %s", tname[t], why);
			RESULT(1, "%s_pingpong # SKIP %s", tname[t], why);
			continue;
		}
		if (xp_open(o, t, &x)) {
			RESULT(0, "%s_stream # connect: %s", tname[t], strerror(errno));
			RESULT(0, "%s_pingpong # not connected", tname[t]);
			continue;
		}
		/* Uneven sizes: the receiver's count must match exactly. */
		/* (the second with the receiver's cost: its answer is
		 * longer, and stream_once() checks its count)
		 */
		memset(cost, 0, sizeof(cost));
		v = stream_once(&x, 65536, 3 * 65536 + 4096, NULL);
		if (v > 0)
			v = stream_once(&x, 100, 100 * 333, cost);
		RESULT(v > 0, "%s_stream # %.1f MB/s; receiver: %llu context switches",
		       tname[t], v, (unsigned long long)cost[1].ctxt);
		r.med = -1;
		s = ping(&x, 20, &r);
		RESULT(!s && r.med > 0, "%s_pingpong # median %.1f us", tname[t], r.med);
		xp_close(&x);
	}
	o->time = 0.05;
	o->reps = 1;
	memcpy_buf = 4 << 20;
	v = memcpy_rate(o, 65536);
	RESULT(v > 0, "memcpy # %.1f MB/s", v);
	v = scale_once(o, T_GNT, 16, 65536 * 2);
	RESULT(v > 0, "gntsock_16_connections # %.1f MB/s", v);
	memset(&x, 0, sizeof(x));
	x.name = "seqpacket";
	x.fd = connect_gnt(o, SOCK_SEQPACKET);
	if (x.fd >= 0) {
		v = stream_once(&x, 65536, 3 * 65536 + 4096, NULL);
		r.med = -1;
		s = v > 0 ? ping(&x, 20, &r) : -1;
		RESULT(v > 0 && !s && r.med > 0,
		       "gntsock_seqpacket # %.1f MB/s, median %.1f us", v, r.med);
		xp_close(&x);
	} else {
		RESULT(0, "gntsock_seqpacket # connect: %s", strerror(errno));
	}
	memset(&x, 0, sizeof(x));
	x.name = "grant";
	x.fd = connect_gnt(o, SOCK_STREAM);
	if (x.fd >= 0) {
		unsigned char *g = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
					-1, 0);

		v = g == MAP_FAILED ? -1 : grant_once(x.fd, g, 1 << 20, 256 << 12);
		RESULT(v > 0, "gntsock_grant_1MiB # %.1f MB/s", v);
		if (g != MAP_FAILED)
			munmap(g, 1 << 20);
		xp_close(&x);
	} else {
		RESULT(0, "gntsock_grant_1MiB # connect: %s", strerror(errno));
	}
	printf("# %d passed, %d failed\n", n - fails, fails);
	return fails ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Modes that need later module features. */

static int cmd_seqpacket(struct cli_opts *o)
{
	struct xport x = { .name = "seqpacket" };
	struct rtt r = { .med = -1 };
	double v;
	int i;

	signal(SIGPIPE, SIG_IGN);
	sendbuf = xmalloc(MAX_MSG);
	x.fd = connect_gnt(o, SOCK_SEQPACKET);
	if (x.fd < 0) {
		fprintf(stderr, "gntsock-perf: seqpacket: %s\n", strerror(errno));
		return 1;
	}
	printf("# SOCK_SEQPACKET to %u:%u, one record per write\n", o->peer,
	       o->port + SEQ_PORT_OFFSET);
	for (i = 0; i < o->nsizes; i++) {
		uint32_t size = o->sizes[i];

		if (size > 131072)	/* a record must fit the peer's buffer */
			break;
		v = stream_once(&x, size, (uint64_t)size * 256, NULL);
		if (v <= 0)
			return 1;
		printf("%8u B records: %10.1f MB/s\n", size, v);
	}
	if (ping(&x, o->rtt_count, &r))
		return 1;
	printf("1-byte records ping-pong: median %.1f us, p99 %.1f us\n", r.med,
	       r.p99);
	xp_close(&x);
	return 0;
}

static int cmd_grant(struct cli_opts *o)
{
	static const unsigned int mib[] = { 1, 16, 64 };
	unsigned long pages = 256;
	struct xport x = { .name = "gntsock" };
	unsigned int i;
	FILE *f;

	signal(SIGPIPE, SIG_IGN);
	sendbuf = xmalloc(MAX_MSG);
	f = fopen("/proc/sys/net/gntsock/max_pages_msg", "r");
	if (f) {
		if (fscanf(f, "%lu", &pages) != 1 || !pages)
			pages = 256;
		fclose(f);
	}
	x.fd = connect_gnt(o, SOCK_STREAM);
	if (x.fd < 0) {
		fprintf(stderr, "gntsock-perf: grant: connect: %s\n", strerror(errno));
		return 1;
	}
	printf("grant path: N MiB passed by grant (pieces of %lu KiB; the peer maps each\n"
	       "and reads every page) versus streamed (64 KiB writes), same connection\n",
	       pages * 4);
	printf("%8s %14s %14s %8s\n", "MiB", "grant MB/s", "stream MB/s", "ratio");
	for (i = 0; i < ARRAY_SIZE(mib); i++) {
		uint64_t total = (uint64_t)mib[i] << 20;
		unsigned char *buf = mmap(NULL, total, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS |
					  MAP_POPULATE, -1, 0);
		double g, st;

		if (buf == MAP_FAILED) {
			perror("gntsock-perf: grant: mmap");
			return 1;
		}
		memset(buf, 0x47, total);
		g = grant_once(x.fd, buf, total, (uint64_t)pages * 4096);
		munmap(buf, total);
		if (g <= 0) {
			fprintf(stderr, "gntsock-perf: grant: %u MiB failed: %s\n",
				mib[i], strerror(errno));
			return 1;
		}
		st = stream_once(&x, 65536, total, NULL);
		if (st <= 0)
			return 1;
		printf("%8u %14.1f %14.1f %7.2fx\n", mib[i], g, st, g / st);
		fflush(stdout);
	}
	xp_close(&x);
	return 0;
}

/* ------------------------------------------------------------------ */

static void print_help(FILE *f)
{
	fprintf(f,
		"Usage: gntsock-perf serve [--port P] [--tcp-port P] [--no-tcp]\n"
		"                          [--vchan-peer DOMID] [--vchan-path PATH] [--vchan-ring BYTES]\n"
		"                          [--gnt-buffer BYTES] [--busy-poll N]\n"
		"       gntsock-perf run --peer DOMID [--tcp ADDR] [--port P] [--tcp-port P]\n"
		"                          [--vchan-path PATH] [--vchan-ring BYTES] [--no-vchan]\n"
		"                          [--sizes LIST] [--time SEC] [--reps N] [--rtt-count N]\n"
		"                          [--scale LIST] [--only LIST] [--gnt-buffer BYTES]\n"
		"                          [--busy-poll N]\n"
		"       gntsock-perf memcpy [--sizes LIST] [--time SEC] [--reps N]\n"
		"       gntsock-perf smoke --peer DOMID [--tcp ADDR] [--vchan-path PATH]\n"
		"       gntsock-perf grant --peer DOMID    N MiB by grant vs streamed\n"
		"       gntsock-perf seqpacket --peer DOMID SOCK_SEQPACKET records\n"
		"\n"
		"Throughput (MB/s = 10^6 bytes/s) of one writer for each write size, and the\n"
		"1-byte ping-pong round trip (median and p99, microseconds), over AF_GNTSOCK,\n"
		"TCP and libxenvchan to the same peer domain, plus memcpy() in this domain,\n"
		"printed as a table with ratios to gntsock. The receiver acknowledges the\n"
		"byte count at the end of every batch; batches last about --time seconds.\n"
		"\n"
		"  --peer DOMID       peer domain (runs `gntsock-perf serve`)\n"
		"  --port P           gntsock port (default %u); --tcp-port P TCP port (same)\n"
		"  --tcp ADDR         peer's IPv4 address; TCP is skipped without it\n"
		"  --vchan-path PATH  xenstore path of the vchan, relative to the server\n"
		"                     domain's home unless absolute (default %s)\n"
		"  --vchan-ring BYTES vchan ring size each way (default 1M)\n"
		"  --vchan-peer DOMID serve: offer a vchan to this domain\n"
		"  --sizes LIST       write sizes (default 64,256,1K,4K,16K,64K,256K,1M)\n"
		"  --time SEC         length of one timed batch (default 1.0)\n"
		"  --reps N           batches per point, median reported (default 3)\n"
		"  --rtt-count N      round trips (default 2000)\n"
		"  --scale LIST       gntsock connection counts (default 1,16,64,256; 0: none)\n"
		"  --only LIST        transports: any of gntsock,tcp,vchan,memcpy\n"
		"  --gnt-buffer BYTES GNTSOCK_SO_BUFFER_SIZE on gntsock sockets\n"
		"  --busy-poll N      GNTSOCK_SO_BUSY_POLL on gntsock sockets: a blocking\n"
		"                     reader looks at the ring N times before it sleeps\n"
		"Exit status: 0 success, 1 a measurement failed, 2 bad arguments.\n",
		DEF_PORT, DEF_VCHAN_PATH);
}

/* A vchan path relative to the server's home: /local/domain/SERVER/PATH. */
static const char *vchan_abs(const char *path, unsigned int server)
{
	char *p;

	if (path[0] == '/')
		return path;
	if (asprintf(&p, "/local/domain/%u/%s", server, path) < 0)
		exit(1);
	return p;
}

static unsigned int self_domid(void)
{
	FILE *f = popen("rig-xs domid 2>/dev/null || xenstore-read domid 2>/dev/null", "r");
	unsigned int d = 0;

	if (f) {
		if (fscanf(f, "%u", &d) != 1)
			d = 0;
		pclose(f);
	}
	return d;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "peer", required_argument, NULL, 'p' },
		{ "port", required_argument, NULL, 'P' },
		{ "tcp", required_argument, NULL, 't' },
		{ "tcp-port", required_argument, NULL, 'T' },
		{ "no-tcp", no_argument, NULL, 'N' },
		{ "no-vchan", no_argument, NULL, 'V' },
		{ "vchan-peer", required_argument, NULL, 'c' },
		{ "vchan-path", required_argument, NULL, 'x' },
		{ "vchan-ring", required_argument, NULL, 'R' },
		{ "sizes", required_argument, NULL, 's' },
		{ "time", required_argument, NULL, 'm' },
		{ "reps", required_argument, NULL, 'r' },
		{ "rtt-count", required_argument, NULL, 'n' },
		{ "scale", required_argument, NULL, 'S' },
		{ "only", required_argument, NULL, 'o' },
		{ "gnt-buffer", required_argument, NULL, 'b' },
		{ "busy-poll", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cli_opts o = {
		.port = DEF_PORT, .tcp_port = DEF_PORT,
		.vchan_path = DEF_VCHAN_PATH, .time = 1.0, .reps = 3,
		.rtt_count = 2000, .do_gnt = 1, .do_tcp = 1, .do_vchan = 1,
		.do_memcpy = 1, .vchan_ring = DEF_VCHAN_RING,
	};
	struct srv_opts so = { .port = DEF_PORT, .tcp_port = DEF_PORT, .tcp = 1,
			       .vchan_peer = -1, .vchan_path = DEF_VCHAN_PATH,
			       .vchan_ring = DEF_VCHAN_RING };
	static const unsigned long def_sizes[] = { 64, 256, 1024, 4096, 16384,
						   65536, 262144, 1048576 };
	static const unsigned long def_scale[] = { 1, 16, 64, 256 };
	unsigned long v;
	const char *cmd;
	int opt, have_peer = 0, i;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		print_help(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	/*
	 * Never give memory back with madvise(MADV_DONTNEED): on the rig's
	 * PV guests (Linux 6.1, CONFIG_PTE_MARKER_UFFD_WP) zapping anonymous
	 * pages that way can hit a WARN_ON_ONCE(!pte_none()) in
	 * pte_install_uffd_wp_if_needed(), fatal with panic_on_warn. Fixed
	 * thresholds: large buffers are mmap()ed and munmap()ed, and arenas
	 * are never trimmed.
	 */
	mallopt(M_MMAP_THRESHOLD, 128 << 10);
	mallopt(M_TRIM_THRESHOLD, 1 << 30);
	memcpy(o.sizes, def_sizes, sizeof(def_sizes));
	o.nsizes = 8;
	memcpy(o.scale, def_scale, sizeof(def_scale));
	o.nscale = 4;
	optind = 2;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			if (parse_ul(optarg, &v) || v >= 0x7ff0)
				goto bad;
			o.peer = v;
			have_peer = 1;
			break;
		case 'P':
			if (parse_ul(optarg, &v) || v > 0xffffffffUL)
				goto bad;
			o.port = v;
			so.port = v;
			break;
		case 't':
			o.tcp_addr = optarg;
			break;
		case 'T':
			if (parse_ul(optarg, &v) || !v || v > 65535)
				goto bad;
			o.tcp_port = v;
			so.tcp_port = v;
			break;
		case 'N':
			so.tcp = 0;
			o.do_tcp = 0;
			break;
		case 'V':
			o.do_vchan = 0;
			break;
		case 'c':
			if (parse_ul(optarg, &v) || v >= 0x7ff0)
				goto bad;
			so.vchan_peer = v;
			break;
		case 'x':
			o.vchan_path = optarg;
			so.vchan_path = optarg;
			break;
		case 'R':
			if (parse_ul(optarg, &v) || v < 1024 || v > (1UL << 20))
				goto bad;
			o.vchan_ring = v;
			so.vchan_ring = v;
			break;
		case 's':
			o.nsizes = parse_list(optarg, o.sizes, 32);
			if (o.nsizes <= 0)
				goto bad;
			for (i = 0; i < o.nsizes; i++)
				if (!o.sizes[i] || o.sizes[i] > MAX_MSG)
					goto bad;
			break;
		case 'm':
			o.time = atof(optarg);
			if (o.time <= 0 || o.time > 60)
				goto bad;
			break;
		case 'r':
			if (parse_ul(optarg, &v) || !v || v > 16)
				goto bad;
			o.reps = v;
			break;
		case 'n':
			if (parse_ul(optarg, &v) || v < 10 || v > 1000000)
				goto bad;
			o.rtt_count = v;
			break;
		case 'S':
			if (!strcmp(optarg, "0")) {
				o.nscale = 0;
				break;
			}
			o.nscale = parse_list(optarg, o.scale, 16);
			if (o.nscale <= 0)
				goto bad;
			for (i = 0; i < o.nscale; i++)
				if (!o.scale[i] || o.scale[i] > MAX_CONNS)
					goto bad;
			break;
		case 'o':
			o.do_gnt = !!strstr(optarg, "gntsock");
			o.do_tcp = !!strstr(optarg, "tcp");
			o.do_vchan = !!strstr(optarg, "vchan");
			o.do_memcpy = !!strstr(optarg, "memcpy");
			break;
		case 'b':
			if (parse_ul(optarg, &v) || v < GNTSOCK_BUFFER_SIZE_MIN ||
			    v > GNTSOCK_BUFFER_SIZE_MAX)
				goto bad;
			o.gnt_buffer = v;
			so.gnt_buffer = v;
			break;
		case 'B':
			if (parse_ul(optarg, &v) || v > GNTSOCK_BUSY_POLL_MAX)
				goto bad;
			o.busy_poll = v;
			so.busy_poll = v;
			break;
		case 'h':
			print_help(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind != argc)
		goto bad;

	if (!strcmp(cmd, "serve")) {
		if (so.vchan_peer >= 0)
			so.vchan_path = vchan_abs(so.vchan_path, self_domid());
		return cmd_serve(&so);
	}
	if (!strcmp(cmd, "memcpy")) {
		o.do_gnt = 0;
		o.do_tcp = 0;
		o.do_vchan = 0;
		o.nscale = 0;
		return cmd_run(&o);
	}
	if (!have_peer) {
		fprintf(stderr, "gntsock-perf: %s needs --peer DOMID\n", cmd);
		return 2;
	}
	o.vchan_path = vchan_abs(o.vchan_path, o.peer);
	if (!strcmp(cmd, "run"))
		return cmd_run(&o);
	if (!strcmp(cmd, "smoke"))
		return smoke(&o);
	if (!strcmp(cmd, "grant"))
		return cmd_grant(&o);
	if (!strcmp(cmd, "seqpacket"))
		return cmd_seqpacket(&o);
bad:
	print_help(stderr);
	return 2;
}
