// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_sockfuzz - an unprivileged syscall fuzzer for AF_GNTSOCK.
 *
 * Usage: gntsock_sockfuzz [-s SECONDS] [-S SEED] [-w WORKERS] [-c] [-p PEER]...
 *
 * Design. The parent (root) notes the module's socket count, then forks
 * WORKERS processes (4 by default). Each worker drops to uid/gid 65534
 * (setgroups, setgid, setuid; it checks geteuid() != 0 afterwards and says
 * so in shared memory) and for SECONDS does random operations, one at a
 * time, each under a one-shot interval timer whose SIGALRM (no SA_RESTART)
 * interrupts any blocking call: no worker can block forever in a call that
 * a signal interrupts. A worker keeps small pools of sockets (STREAM and
 * SEQPACKET, listening, connecting, connected; to its own domain by
 * GNTSOCK_DOMID_SELF and by its numeric id, to every -p PEER, and to
 * invalid domain ids), of grant mappings and of grant buffers, and picks
 * among: socket, bind, listen, connect (blocking and not), accept,
 * send/recv/sendmsg/recvmsg with random lengths, iovecs and flags, grant
 * cmsgs (well formed, with random fields, or garbage), the error queue,
 * get/setsockopt (every SOL_GNTSOCK option, SOL_SOCKET options, random
 * levels and names, short, long and NULL buffers), mmap of grant ids and
 * random offsets, munmap, mremap (and reuse of the old range), mprotect,
 * madvise, mlock, fork (the child touches the mappings and the sockets,
 * then exits), vmsplice and splice, ioctls (the module's, and random
 * numbers), fcntl, shutdown, dup, close, poll and epoll. Ports come mostly
 * from a small shared range (FUZZ_PORT..+15) so that workers, and a fuzzer
 * running at the same time in a peer domain, find each other's listeners:
 * grants need another domain (loopback refuses them). Requests to the peer
 * responder's GRANT service (well formed, so that the peer maps, writes
 * and releases our grants, or grants us its pages: GR_GIVE) and
 * connections to its ECHO/SINK ports make the data and grant paths run
 * against a real peer as well.
 *
 * Sending a grant needs CAP_IPC_LOCK while net.gntsock.require_cap is 1
 * (the default): the parent sets it to 0 for the run, as a site that lets
 * its users grant would, and restores it afterwards, so that the grant
 * paths run unprivileged too; -c keeps it (then grants fail with EPERM).
 *
 * Everything random comes from a xorshift generator seeded from -S (the
 * time by default; printed) and the worker's index, so a run can be
 * repeated; what the kernel answers decides the rest. The last ops of
 * each worker are kept in shared memory and printed when a worker dies.
 *
 * Results (KTAP on stdout):
 *   1 fuzz_ran_N_s_unprivileged: every worker dropped root and ran ops,
 *     and (with a -p PEER, grants allowed) mapped at least one grant it
 *     received, so that the mapping ops had grant mappings to work on;
 *     the diagnostic has the op count and the errors by errno.
 *   2 no_worker_crashed: no worker died of a signal other than the
 *     parent's SIGKILL at the end (which only comes if the worker overran
 *     its time by 15 s; a worker that SIGKILL cannot reap within 20 s is
 *     stuck in the kernel, also a failure, with its kernel stack).
 *   3 module_still_works: as root, a loopback STREAM connection carries
 *     1 MiB intact.
 *   4 sockets_released: "sockets" of /proc/net/gntsock_stat and the
 *     entries of /proc/net/gntsock (one line per bound or connected
 *     socket) are back to their values before the run within 10 s.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <grp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/sockios.h>

#include "gntsock_util.h"
#include "gntsock_grant_msg.h"
#include "gntsock_grant_peer.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#endif

#define MAX_WORKERS	16
#define MAX_PEERS	8
#define NSLOTS		16	/* sockets per worker */
#define NMAPS		16	/* grant mappings per worker */
#define NGINS		8	/* received grants remembered per socket */
#define FUZZ_PORT	40000	/* the shared range: FUZZ_PORT..+15 */
#define OP_TIMER_MS	1000	/* SIGALRM after this long in one op */
#define SVC_TIMER_MS	3000	/* ... in a GRANT-service request */
#define START_DELAY_S	3	/* between the baseline and the first op */
#define GRACE_S		15	/* past the end before the parent's SIGKILL */
#define REAP_S		20	/* after SIGKILL before "stuck" */
#define TRACE_LEN	32	/* last ops kept per worker */
#define TRACE_W		96
#define ERRNO_MAX	160
#define NOBODY		65534
#define DATA_LEN	(1 << 20)
#define GBUF_PAGES	8

enum op {
	OP_SOCKET, OP_BIND, OP_LISTEN, OP_CONNECT, OP_ACCEPT, OP_PAIR,
	OP_SEND, OP_RECV, OP_SENDMSG, OP_RECVMSG, OP_GRANT, OP_GRANT_SVC,
	OP_ERRQUEUE, OP_SETSOCKOPT, OP_GETSOCKOPT, OP_MMAP, OP_TOUCH,
	OP_MUNMAP, OP_MREMAP, OP_REUSE_OLD, OP_MPROTECT, OP_MADVISE, OP_FORK,
	OP_VMSPLICE, OP_SPLICE, OP_IOCTL, OP_GRANT_IOCTL, OP_FCNTL,
	OP_SHUTDOWN, OP_DUP, OP_CLOSE, OP_POLL, OP_EPOLL, OP_GETNAME,
	OP_MAX
};

static const char *const op_names[OP_MAX] = {
	"socket", "bind", "listen", "connect", "accept", "pair",
	"send", "recv", "sendmsg", "recvmsg", "grant", "grant_svc",
	"errqueue", "setsockopt", "getsockopt", "mmap", "touch",
	"munmap", "mremap", "reuse_old", "mprotect", "madvise", "fork",
	"vmsplice", "splice", "ioctl", "grant_ioctl", "fcntl",
	"shutdown", "dup", "close", "poll", "epoll", "getname",
};

/* Relative weights of the ops. */
static const unsigned int op_weight[OP_MAX] = {
	[OP_SOCKET] = 6, [OP_BIND] = 5, [OP_LISTEN] = 5, [OP_CONNECT] = 8,
	[OP_ACCEPT] = 6, [OP_PAIR] = 4, [OP_SEND] = 10, [OP_RECV] = 10,
	[OP_SENDMSG] = 6, [OP_RECVMSG] = 10, [OP_GRANT] = 8,
	[OP_GRANT_SVC] = 4, [OP_ERRQUEUE] = 4, [OP_SETSOCKOPT] = 5,
	[OP_GETSOCKOPT] = 4, [OP_MMAP] = 6, [OP_TOUCH] = 4, [OP_MUNMAP] = 3,
	[OP_MREMAP] = 3, [OP_REUSE_OLD] = 2, [OP_MPROTECT] = 2,
	[OP_MADVISE] = 3, [OP_FORK] = 1, [OP_VMSPLICE] = 2, [OP_SPLICE] = 2,
	[OP_IOCTL] = 3, [OP_GRANT_IOCTL] = 4, [OP_FCNTL] = 2,
	[OP_SHUTDOWN] = 3, [OP_DUP] = 1, [OP_CLOSE] = 5, [OP_POLL] = 3,
	[OP_EPOLL] = 3, [OP_GETNAME] = 2,
};

/* What a worker shares with the parent (MAP_SHARED, one per worker). */
struct wstat {
	int dropped;		/* 1: running as nobody; -errno: drop failed */
	unsigned int euid;	/* geteuid() after the drop */
	int cur_op;		/* op in progress, -1 between ops */
	int fatal_sig;		/* a signal the worker died of (its own note) */
	uint64_t nops;
	uint64_t ops[OP_MAX];
	uint64_t fails[OP_MAX];
	uint64_t err[ERRNO_MAX];
	uint64_t touch_faults;	/* SIGSEGV/SIGBUS caught touching mappings */
	uint64_t grants_sent, grants_recv, grants_mapped, svc_ok;
	uint64_t fork_stuck;
	unsigned int trace_pos;
	char trace[TRACE_LEN][TRACE_W];
};

struct gin_rec {
	uint32_t id;
	uint32_t flags;
	uint64_t len;
};

struct slot {
	int fd;			/* -1: free */
	int type;
	bool listener;
	bool svc;		/* a GRANT-service connection */
	unsigned int domid;	/* where it connected, or ~0 */
	struct gin_rec gin[NGINS];
	unsigned int ngin;
	uint64_t cookie[4];
};

struct gmap {
	void *addr;		/* NULL: free */
	size_t len;
	int prot;
	bool grant;		/* a received grant (else an anonymous map) */
};

static struct {
	unsigned int seconds;
	uint64_t seed;
	unsigned int nworkers;
	unsigned int peers[MAX_PEERS];
	unsigned int npeers;
	unsigned int self;	/* own numeric domid, ~0 if unknown */
	bool keep_cap;		/* -c: leave net.gntsock.require_cap alone */
} cfg = { .seconds = 60, .nworkers = 4, .self = ~0U };

#define REQUIRE_CAP	"/proc/sys/net/gntsock/require_cap"

static struct wstat *ws;	/* this worker's */
static long page;
static uint64_t rng;

static struct slot slots[NSLOTS];
static struct gmap maps[NMAPS];
static void *old_ranges[NMAPS];
static unsigned int nold;
static int epfd = -1;
static char *data;		/* DATA_LEN bytes to send, and to recv into */
static char *gbuf;		/* GBUF_PAGES writable pages to grant */
static char *gbuf_ro;		/* 2 read-only pages */
static char *gbuf_shm;		/* 4 pages of a MAP_SHARED memfd */
static char *scratch;		/* 64 KiB, then an inaccessible guard page */
static char *ro_page;		/* a read-only page: EFAULT for writes */

/* ---- random --------------------------------------------------------- */

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t rn(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static bool chance(unsigned int pct)
{
	return rn(100) < pct;
}

/* A length: mostly small, sometimes up to @max, sometimes odd. */
static size_t rlen(size_t max)
{
	switch (rn(8)) {
	case 0:
		return 0;
	case 1:
		return 1 + rn(16);
	case 2:
		return rn(max + 1);
	case 3:
		return (size_t)page * (1 + rn(4));
	default:
		return 1 + rn(max < 4096 ? max : 4096);
	}
}

/* ---- bookkeeping ------------------------------------------------------ */

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...)
{
	char *t = ws->trace[ws->trace_pos++ % TRACE_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t, TRACE_W, fmt, ap);
	va_end(ap);
}

/* Count the outcome of a call: @ret < 0 is a failure with errno. */
static long note(long ret)
{
	int e = errno;

	if (ret < 0) {
		ws->fails[ws->cur_op]++;
		ws->err[e > 0 && e < ERRNO_MAX ? e : 0]++;
	}
	errno = e;
	return ret;
}

static struct slot *any_slot(void)
{
	unsigned int i, start = rn(NSLOTS);

	for (i = 0; i < NSLOTS; i++) {
		struct slot *s = &slots[(start + i) % NSLOTS];

		if (s->fd >= 0)
			return s;
	}
	return NULL;
}

/* A socket, preferring connected (not listening) ones most of the time. */
static struct slot *conn_slot(void)
{
	unsigned int i, start = rn(NSLOTS);

	if (chance(85)) {
		for (i = 0; i < NSLOTS; i++) {
			struct slot *s = &slots[(start + i) % NSLOTS];

			if (s->fd >= 0 && !s->listener && s->domid != ~0U)
				return s;
		}
	}
	return any_slot();
}

static struct slot *free_slot(void)
{
	unsigned int i;

	for (i = 0; i < NSLOTS; i++)
		if (slots[i].fd < 0)
			return &slots[i];
	return NULL;
}

static void slot_close(struct slot *s)
{
	if (s->fd >= 0)
		close(s->fd);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->domid = ~0U;
}

static struct slot *slot_add(int fd, int type)
{
	struct slot *s = free_slot();
	struct timeval tv = { 0, 200000 + rn(300000) };

	if (!s) {
		s = &slots[rn(NSLOTS)];
		slot_close(s);
	}
	s->fd = fd;
	s->type = type;
	/* Timeouts so that blocking calls return; the fuzz may change them. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (chance(50)) {
		tv.tv_sec = 0;
		tv.tv_usec = 300000;
		setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_CONNECT_TIMEOUT, &tv,
			   sizeof(tv));
	}
	if (epfd >= 0 && chance(30)) {
		struct epoll_event ev = { .events = (uint32_t)rnd() };

		epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
	}
	return s;
}

static struct gmap *free_map(void)
{
	unsigned int i;

	for (i = 0; i < NMAPS; i++)
		if (!maps[i].addr)
			return &maps[i];
	return NULL;
}

static struct gmap *any_map(void)
{
	unsigned int i, start = rn(NMAPS);

	for (i = 0; i < NMAPS; i++)
		if (maps[(start + i) % NMAPS].addr)
			return &maps[(start + i) % NMAPS];
	return NULL;
}

static void remember_old(void *addr)
{
	old_ranges[nold++ % NMAPS] = addr;
}

static void map_drop(struct gmap *m)
{
	if (m->addr)
		munmap(m->addr, m->len);
	memset(m, 0, sizeof(*m));
}

/* ---- touching memory that may fault ----------------------------------- */

static sigjmp_buf touch_jb;
static volatile sig_atomic_t in_touch;

static void fault_handler(int sig)
{
	if (in_touch) {
		in_touch = 0;
		siglongjmp(touch_jb, sig);
	}
	/* A fault outside a touch: die of it, after a note. */
	ws->fatal_sig = sig;
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Read (and write, if @wr) each page of [p, p + len); the signal or 0. */
static int touch(char *p, size_t len, bool wr)
{
	size_t off;
	int sig;

	sig = sigsetjmp(touch_jb, 1);
	if (sig) {
		ws->touch_faults++;
		return sig;
	}
	in_touch = 1;
	for (off = 0; off < len; off += (size_t)page) {
		volatile char *v = p + off;
		char c = *v;

		if (wr)
			*v = (char)(c + 1);
	}
	in_touch = 0;
	return 0;
}

static void alarm_handler(int sig)
{
	(void)sig;
}

static void arm_timer(int ms)
{
	struct itimerval it = {
		.it_value = { ms / 1000, (ms % 1000) * 1000 },
	};

	setitimer(ITIMER_REAL, &it, NULL);
}

/* ---- addresses --------------------------------------------------------- */

static unsigned int pick_domid(void)
{
	static const unsigned int bad[] = {
		GNTSOCK_DOMID_ANY, 0x7fff, 0x7ff1, 0x7ff2, 0x7ff4, 0x7ff5,
		0x8000, 12345, 0xfffffffe,
	};
	unsigned int r = rn(100);

	if (r < 30)
		return GNTSOCK_DOMID_SELF;
	if (r < 40 && cfg.self != ~0U)
		return cfg.self;
	if (r < 90 && cfg.npeers)
		return cfg.peers[rn(cfg.npeers)];
	if (r < 97)
		return bad[rn(ARRAY_SIZE(bad))];
	return (unsigned int)rnd();
}

static unsigned int pick_port(bool for_bind)
{
	static const unsigned int svc[] = {
		GNTSOCK_PEER_PORT_ECHO, GNTSOCK_PEER_PORT_SINK,
		GNTSOCK_PEER_PORT_SEQ_ECHO, GNTSOCK_PEER_PORT_UNUSED,
	};
	unsigned int r = rn(100);

	if (r < 75)
		return FUZZ_PORT + rn(16);
	if (r < 82)
		return GNTSOCK_PORT_ANY;
	if (r < 88 && !for_bind)
		return svc[rn(ARRAY_SIZE(svc))];
	if (r < 92)
		return rn(GNTSOCK_PORT_RESERVED);	/* privileged */
	if (r < 95)
		return 0;
	return (unsigned int)rnd();
}

/* A sockaddr, mostly valid; its length in *len. */
static void pick_addr(struct sockaddr_storage *ss, socklen_t *len,
		      bool for_bind)
{
	struct sockaddr_gnt *a = (struct sockaddr_gnt *)ss;
	unsigned int i;

	memset(ss, 0, sizeof(*ss));
	*a = gnt_addr(for_bind ? (chance(80) ? GNTSOCK_DOMID_ANY :
				  pick_domid()) : pick_domid(),
		      pick_port(for_bind));
	*len = sizeof(*a);
	switch (rn(30)) {
	case 0:
		*len = rn(sizeof(*a));
		break;
	case 1:
		*len = sizeof(*ss) + rn(64);
		break;
	case 2:
		a->sgnt_family = (sa_family_t)rn(64);
		break;
	case 3:
		a->sgnt_reserved1 = (unsigned short)rnd();
		break;
	case 4:
		a->sgnt_flags = (unsigned char)rnd();
		break;
	case 5:
		for (i = 0; i < sizeof(*ss); i++)
			((unsigned char *)ss)[i] = (unsigned char)rnd();
		break;
	}
}

/* ---- the ops ------------------------------------------------------------ */

static int rand_type(void)
{
	switch (rn(20)) {
	case 0:
		return SOCK_DGRAM;
	case 1:
		return (int)rn(16);
	default:
		return chance(50) ? SOCK_STREAM : SOCK_SEQPACKET;
	}
}

static void op_socket(void)
{
	int type = rand_type(), flags = 0, proto = 0, fd;

	if (chance(30))
		flags |= SOCK_NONBLOCK;
	if (chance(50))
		flags |= SOCK_CLOEXEC;
	if (chance(5))
		proto = chance(50) ? PF_GNTSOCK : (int)rn(300);
	fd = note(socket(AF_GNTSOCK, type | flags, proto));
	trace("socket(type %d flags %#x proto %d) = %d", type, flags, proto,
	      fd < 0 ? -errno : fd);
	if (fd >= 0)
		slot_add(fd, type);
}

static void op_bind(void)
{
	struct sockaddr_storage ss;
	struct slot *s = any_slot();
	socklen_t len;
	int r;

	if (!s)
		return;
	pick_addr(&ss, &len, true);
	r = note(bind(s->fd, chance(3) ? NULL : (struct sockaddr *)&ss, len));
	trace("bind(%d, port %u domid %#x len %u) = %d", s->fd,
	      ((struct sockaddr_gnt *)&ss)->sgnt_port,
	      ((struct sockaddr_gnt *)&ss)->sgnt_domid, len, r ? -errno : 0);
}

static void op_listen(void)
{
	struct slot *s = any_slot();
	int backlog = chance(10) ? (int)rnd() : (int)rn(8);
	int r;

	if (!s)
		return;
	r = note(listen(s->fd, backlog));
	trace("listen(%d, %d) = %d", s->fd, backlog, r ? -errno : 0);
	if (!r)
		s->listener = true;
}

static void op_connect(void)
{
	struct sockaddr_storage ss;
	struct slot *s = any_slot();
	socklen_t len;
	bool nb = chance(40);
	int r, fl;

	if (!s)
		return;
	pick_addr(&ss, &len, false);
	fl = fcntl(s->fd, F_GETFL);
	if (fl >= 0)
		fcntl(s->fd, F_SETFL, nb ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
	r = note(connect(s->fd, (struct sockaddr *)&ss, len));
	trace("connect(%d%s, domid %#x port %u len %u) = %d", s->fd,
	      nb ? " nb" : "", ((struct sockaddr_gnt *)&ss)->sgnt_domid,
	      ((struct sockaddr_gnt *)&ss)->sgnt_port, len, r ? -errno : 0);
	if (!r || errno == EINPROGRESS || errno == EALREADY)
		s->domid = ((struct sockaddr_gnt *)&ss)->sgnt_domid;
}

static void op_accept(void)
{
	struct sockaddr_storage ss;
	socklen_t len = rn(sizeof(ss) + 1);
	struct slot *s = any_slot();
	int fd, flags = 0;

	if (!s)
		return;
	if (chance(50))
		flags |= SOCK_NONBLOCK;
	fd = note(accept4(s->fd, chance(70) ? (struct sockaddr *)&ss : NULL,
			  chance(70) ? &len : NULL, flags));
	trace("accept4(%d, %#x) = %d", s->fd, flags, fd < 0 ? -errno : fd);
	if (fd >= 0) {
		struct slot *c = slot_add(fd, s->type);

		c->domid = 0x7ff0;	/* connected; the peer's id is unknown */
	}
}

/*
 * A listener on a shared port and a connection to it from here or from a
 * peer's fuzzer: gets established connections into the pool quickly.
 */
static void op_pair(void)
{
	int type = chance(50) ? SOCK_STREAM : SOCK_SEQPACKET;
	struct sockaddr_gnt a = gnt_addr(GNTSOCK_DOMID_ANY,
					 FUZZ_PORT + rn(16));
	unsigned int domid = chance(50) && cfg.npeers ?
		cfg.peers[rn(cfg.npeers)] : GNTSOCK_DOMID_SELF;
	struct slot *cs;
	int l, c, r;

	l = note(socket(AF_GNTSOCK, type | SOCK_CLOEXEC, 0));
	if (l < 0)
		return;
	r = note(bind(l, (struct sockaddr *)&a, sizeof(a)));
	if (!r)
		r = note(listen(l, 4));
	if (r) {
		close(l);
		l = -1;
	} else {
		slot_add(l, type)->listener = true;
	}
	c = note(socket(AF_GNTSOCK, type | SOCK_CLOEXEC, 0));
	if (c < 0)
		return;
	cs = slot_add(c, type);
	a.sgnt_domid = domid;
	r = note(connect(c, (struct sockaddr *)&a, sizeof(a)));
	trace("pair(type %d port %u listen %d, connect %d to %#x) = %d",
	      type, a.sgnt_port, l, c, domid, r ? -errno : 0);
	if (r)
		return;
	cs->domid = domid;
	if (l >= 0) {
		int fd = note(accept4(l, NULL, NULL, SOCK_NONBLOCK));

		if (fd >= 0)
			slot_add(fd, type)->domid = domid;
	}
}

static int rand_msg_flags(bool recv)
{
	static const int fl[] = {
		MSG_PEEK, MSG_DONTWAIT, MSG_ERRQUEUE, MSG_TRUNC, MSG_WAITALL,
		MSG_OOB, MSG_EOR, MSG_MORE, MSG_CMSG_CLOEXEC, MSG_ZEROCOPY,
		MSG_CONFIRM, MSG_DONTROUTE, MSG_CTRUNC, MSG_NOSIGNAL,
	};
	int f = 0;
	unsigned int i, n = rn(3);

	for (i = 0; i < n; i++)
		f |= fl[rn(ARRAY_SIZE(fl))];
	if (chance(3))
		f |= (int)rnd();
	if (!recv && chance(90))
		f |= MSG_NOSIGNAL;
	if (recv && chance(60))
		f |= MSG_DONTWAIT;
	return f;
}

/* A buffer for user data: ours, a grant mapping, read-only, or bad. */
static char *pick_buf(size_t *len, bool for_recv)
{
	struct gmap *m;

	switch (rn(20)) {
	case 0:
		return NULL;
	case 1:
		return (char *)(uintptr_t)(0xffff880000000000ULL + rn(1 << 20));
	case 2:
		if (*len > (size_t)page)
			*len = (size_t)page;
		return ro_page;		/* EFAULT when received into */
	case 3:
	case 4:
		m = any_map();
		if (m) {
			if (*len > m->len)
				*len = m->len;
			return m->addr;
		}
		break;
	}
	(void)for_recv;
	if (*len > DATA_LEN)
		*len = DATA_LEN;
	return data;
}

static void op_send(void)
{
	struct slot *s = conn_slot();
	size_t len = chance(5) ? DATA_LEN : rlen(256 << 10);
	char *buf;
	int fl = rand_msg_flags(false);
	ssize_t n;

	if (!s)
		return;
	buf = pick_buf(&len, false);
	n = note(send(s->fd, buf, len, fl));
	trace("send(%d, %p, %zu, %#x) = %zd", s->fd, (void *)buf, len, fl,
	      n < 0 ? -errno : n);
}

static void op_recv(void)
{
	struct slot *s = conn_slot();
	size_t len = rlen(256 << 10);
	char *buf;
	int fl = rand_msg_flags(true);
	ssize_t n;

	if (!s)
		return;
	buf = pick_buf(&len, true);
	n = note(recv(s->fd, buf, len, fl));
	trace("recv(%d, %p, %zu, %#x) = %zd", s->fd, (void *)buf, len, fl,
	      n < 0 ? -errno : n);
}

/* An iovec array of up to 8 random pieces. */
static int fill_iov(struct iovec *iov, bool for_recv)
{
	int i, n = 1 + (int)rn(8);

	for (i = 0; i < n; i++) {
		size_t len = rlen(64 << 10);

		iov[i].iov_base = pick_buf(&len, for_recv);
		iov[i].iov_len = len;
	}
	return n;
}

/* One garbage-or-valid grant cmsg (or several) into @cbuf. */
static size_t fill_grant_cmsg(char *cbuf, size_t room, struct slot *s)
{
	struct gntsock_grant_send gs = { 0 };
	struct cmsghdr *c = (struct cmsghdr *)cbuf;
	size_t used = 0, i;
	unsigned int n = chance(90) ? 1 : 1 + rn(3);

	while (n-- && used + CMSG_SPACE(sizeof(gs)) <= room) {
		switch (rn(10)) {
		case 0:
			gs.addr = (uintptr_t)gbuf_ro;
			gs.len = (uint64_t)page * (1 + rn(2));
			break;
		case 1:
			gs.addr = (uintptr_t)gbuf_shm;
			gs.len = (uint64_t)page * (1 + rn(4));
			break;
		case 2:
			gs.addr = rnd();
			gs.len = rnd() & ~(uint64_t)(page - 1);
			break;
		case 3:
			gs.addr = (uintptr_t)gbuf + rn(page);
			gs.len = rn(4 * page);
			break;
		case 4: {
			struct gmap *m = any_map();

			/* A received grant granted back, or an unmapped one. */
			gs.addr = m ? (uintptr_t)m->addr : (uintptr_t)gbuf +
				  GBUF_PAGES * page;
			gs.len = m ? m->len : (uint64_t)page;
			break;
		}
		default:
			gs.addr = (uintptr_t)gbuf + page * rn(GBUF_PAGES);
			gs.len = (uint64_t)page * (1 + rn(GBUF_PAGES));
			break;
		}
		gs.flags = chance(60) ? GNTSOCK_GRANT_WRITABLE :
			   chance(80) ? 0 : (uint32_t)rnd();
		gs.reserved = chance(95) ? 0 : (uint32_t)rnd();
		gs.cookie = chance(10) ? rnd() : 1 + rn(8);
		if (s)
			s->cookie[rn(4)] = gs.cookie;
		c = (struct cmsghdr *)(cbuf + used);
		c->cmsg_level = chance(95) ? SOL_GNTSOCK : (int)rn(300);
		c->cmsg_type = chance(90) ? GNTSOCK_CMSG_GRANT : (int)rn(8);
		c->cmsg_len = CMSG_LEN(sizeof(gs));
		memcpy(CMSG_DATA(c), &gs, sizeof(gs));
		switch (rn(20)) {
		case 0:
			c->cmsg_len = rn(CMSG_LEN(sizeof(gs)));
			break;
		case 1:
			c->cmsg_len = CMSG_LEN(sizeof(gs)) + rn(64);
			break;
		case 2:
			c->cmsg_len = (size_t)rnd();
			break;
		case 3:
			for (i = 0; i < CMSG_LEN(sizeof(gs)); i++)
				((unsigned char *)c)[i] = (unsigned char)rnd();
			break;
		}
		used += CMSG_SPACE(sizeof(gs));
	}
	return used;
}

static void do_sendmsg(bool grant)
{
	char cbuf[CMSG_SPACE(sizeof(struct gntsock_grant_send)) * 4]
		__attribute__((aligned(8)));
	struct sockaddr_storage ss;
	struct slot *s = conn_slot();
	struct iovec iov[8];
	struct msghdr m = { 0 };
	int fl = rand_msg_flags(false);
	ssize_t n;

	if (!s)
		return;
	memset(cbuf, 0, sizeof(cbuf));
	m.msg_iov = iov;
	m.msg_iovlen = fill_iov(iov, false);
	if (grant || chance(10)) {
		m.msg_control = cbuf;
		m.msg_controllen = fill_grant_cmsg(cbuf, sizeof(cbuf), s);
		if (chance(5))
			m.msg_controllen = rn(sizeof(cbuf) + 1);
		if (chance(3))
			m.msg_control = chance(50) ? NULL : ro_page + page - 8;
	}
	if (chance(10)) {
		socklen_t len;

		pick_addr(&ss, &len, false);
		m.msg_name = &ss;
		m.msg_namelen = len;
	}
	if (chance(3))
		m.msg_iovlen = rn(2000);	/* > UIO_MAXIOV: EMSGSIZE */
	n = note(sendmsg(s->fd, &m, fl));
	trace("sendmsg(%d, iovlen %zu ctl %zu, %#x) = %zd", s->fd,
	      (size_t)m.msg_iovlen, (size_t)m.msg_controllen, fl,
	      n < 0 ? -errno : n);
	if (n > 0 && m.msg_controllen)
		ws->grants_sent++;
}

static void op_sendmsg(void)
{
	do_sendmsg(false);
}

static void op_grant(void)
{
	do_sendmsg(true);
}

static void map_grant(struct slot *s, const struct gin_rec *g)
{
	/* Until one mapping worked, map well formed: the mapping ops need
	 * one, and a slow peer may give few grants.
	 */
	bool well_formed = !ws->grants_mapped;
	struct gmap *m = free_map();
	int prot = PROT_READ;
	size_t len = g->len;
	void *p;

	if (!m) {
		m = &maps[rn(NMAPS)];
		map_drop(m);
	}

	if ((g->flags & GNTSOCK_GRANT_WRITABLE) ? chance(70) : chance(10))
		prot |= PROT_WRITE;
	if (!(g->flags & GNTSOCK_GRANT_WRITABLE) && well_formed)
		prot = PROT_READ;
	if (chance(10) && !well_formed)
		len = (size_t)page * rn(4);
	p = mmap(NULL, len, prot,
		 chance(97) || well_formed ? MAP_SHARED : MAP_PRIVATE,
		 s->fd, (off_t)g->id * page);
	note(p == MAP_FAILED ? -1 : 0);
	trace("mmap(grant id %u len %zu prot %d fd %d) = %d", g->id, len,
	      prot, s->fd, p == MAP_FAILED ? -errno : 0);
	if (p == MAP_FAILED)
		return;
	ws->grants_mapped++;
	m->addr = p;
	m->len = len;
	m->prot = prot;
	m->grant = true;
	touch(p, len, prot & PROT_WRITE);
}

static void record_gin(struct slot *s, struct msghdr *m)
{
	struct gntsock_grant_info gi;

	if (!m->msg_control || !gnt_grant_info(m, &gi))
		return;
	ws->grants_recv++;
	s->gin[s->ngin % NGINS] = (struct gin_rec){ gi.id, gi.flags, gi.len };
	s->ngin++;
	if (chance(75) || !ws->grants_mapped)
		map_grant(s, &s->gin[(s->ngin - 1) % NGINS]);
}

static void op_recvmsg(void)
{
	static const size_t clens[] = {
		0, 8, CMSG_SPACE(sizeof(struct gntsock_grant_info)) - 1,
		CMSG_SPACE(sizeof(struct gntsock_grant_info)), 256,
	};
	char cbuf[256] __attribute__((aligned(8)));
	struct sockaddr_storage ss;
	struct slot *s = conn_slot();
	struct iovec iov[8];
	struct msghdr m = { 0 };
	int fl = rand_msg_flags(true) & ~MSG_ERRQUEUE;
	ssize_t n;

	if (!s)
		return;
	if (chance(5))
		fl |= MSG_ERRQUEUE;
	m.msg_iov = iov;
	m.msg_iovlen = fill_iov(iov, true);
	m.msg_control = cbuf;
	m.msg_controllen = chance(80) ? CMSG_SPACE(sizeof(struct
							   gntsock_grant_info)) :
			   clens[rn(ARRAY_SIZE(clens))];
	if (chance(3))
		m.msg_control = chance(50) ? NULL : ro_page;
	if (chance(20)) {
		m.msg_name = &ss;
		m.msg_namelen = rn(sizeof(ss) + 1);
	}
	n = note(recvmsg(s->fd, &m, fl));
	trace("recvmsg(%d, iovlen %zu ctl %zu, %#x) = %zd mflags %#x",
	      s->fd, (size_t)m.msg_iovlen, (size_t)m.msg_controllen, fl,
	      n < 0 ? -errno : n, m.msg_flags);
	if (n >= 0 && m.msg_control == cbuf)
		record_gin(s, &m);
}

static void op_errqueue(void)
{
	char cbuf[512] __attribute__((aligned(8)));
	struct slot *s = conn_slot();
	struct msghdr m = { .msg_control = cbuf };
	char b[16];
	struct iovec iov = { b, sizeof(b) };
	ssize_t n;

	if (!s)
		return;
	m.msg_controllen = chance(80) ? sizeof(cbuf) : rn(64);
	if (chance(30)) {
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
	}
	n = note(recvmsg(s->fd, &m, MSG_ERRQUEUE | (chance(80) ?
						    MSG_DONTWAIT : 0)));
	trace("recvmsg(%d, ERRQUEUE ctl %zu) = %zd", s->fd,
	      (size_t)m.msg_controllen, n < 0 ? -errno : n);
}

/* Ask the responder on @s for a grant of its pages (GR_GIVE): the only
 * source of grant mappings when no fuzzer runs in the peer domain.
 */
static void svc_give(struct slot *s)
{
	struct gnt_grant_req req = {
		.op = GR_GIVE, .arg = (uint32_t)(1 + rn(GBUF_PAGES)) |
				      (chance(70) ? 0x100 : 0),
		.val = rnd(),
	};
	char cbuf[CMSG_SPACE(sizeof(struct gntsock_grant_info))]
		__attribute__((aligned(8)));
	struct gnt_grant_reply rep;
	struct iovec iov = { &rep, sizeof(rep) };
	struct msghdr m = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	ssize_t n;

	n = note(send(s->fd, &req, sizeof(req), MSG_NOSIGNAL));
	trace("grant_svc(%d give %#x) = %zd", s->fd, req.arg,
	      n < 0 ? -errno : n);
	if (n != sizeof(req))
		return;
	n = note(recvmsg(s->fd, &m, MSG_WAITALL));
	if (n == sizeof(rep))
		ws->svc_ok++;
	else if (chance(50))
		slot_close(s);	/* out of step with the responder */
	if (n > 0)
		record_gin(s, &m);
}

/* The GRANT service of the peer's responder: a well-formed request. */
static void op_grant_svc(void)
{
	static const uint32_t ops[] = { GR_XOR, GR_READ, GR_HOLD, GR_XOR };
	struct gnt_grant_req req = { 0 };
	struct gnt_grant_reply rep;
	struct slot *s = NULL;
	unsigned int i, pages;
	ssize_t n;

	if (!cfg.npeers)
		return;
	for (i = 0; i < NSLOTS; i++)
		if (slots[i].fd >= 0 && slots[i].svc)
			s = &slots[i];
	if (!s || chance(10)) {
		struct sockaddr_gnt a = gnt_addr(cfg.peers[rn(cfg.npeers)],
						 GNTSOCK_PEER_PORT_GRANT);
		int fd = note(socket(AF_GNTSOCK, SOCK_STREAM | SOCK_CLOEXEC,
				     0));

		if (fd < 0)
			return;
		s = slot_add(fd, SOCK_STREAM);
		s->svc = true;
		gnt_set_timeouts(fd, 2);
		if (note(connect(fd, (struct sockaddr *)&a, sizeof(a)))) {
			trace("grant_svc connect(%#x) = %d", a.sgnt_domid,
			      -errno);
			slot_close(s);
			return;
		}
		s->domid = a.sgnt_domid;
	}
	/* Until a grant was mapped, always ask for one (see map_grant()). */
	if (chance(40) || !ws->grants_mapped) {
		svc_give(s);
		return;
	}
	req.op = ops[rn(ARRAY_SIZE(ops))];
	req.val = rnd();
	pages = 1 + rn(GBUF_PAGES);
	n = note(gnt_grant_sendmsg(s->fd, gbuf, (uint64_t)pages * page,
				   chance(70) ? GNTSOCK_GRANT_WRITABLE : 0,
				   100 + rn(4), &req, sizeof(req),
				   MSG_NOSIGNAL));
	s->cookie[0] = 100;
	trace("grant_svc(%d op %u pages %u) = %zd", s->fd, req.op, pages,
	      n < 0 ? -errno : n);
	if (n != sizeof(req))
		return;
	ws->grants_sent++;
	n = note(recv(s->fd, &rep, sizeof(rep), MSG_WAITALL));
	if (n == sizeof(rep))
		ws->svc_ok++;
	else if (chance(50))
		slot_close(s);	/* out of step with the responder */
}

static void fill_opt(void *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		((unsigned char *)buf)[i] = (unsigned char)rnd();
}

static void op_setsockopt(void)
{
	static const int so[] = {
		SO_RCVBUF, SO_SNDBUF, SO_RCVLOWAT, SO_SNDLOWAT, SO_LINGER,
		SO_RCVTIMEO_OLD, SO_SNDTIMEO_OLD, SO_RCVTIMEO_NEW,
		SO_SNDTIMEO_NEW, SO_KEEPALIVE, SO_PRIORITY, SO_ZEROCOPY,
		SO_PEEK_OFF, SO_OOBINLINE, SO_PASSCRED, SO_TIMESTAMP,
		SO_BUSY_POLL, SO_MARK, SO_REUSEADDR, SO_REUSEPORT,
		SO_BINDTODEVICE, SO_DEBUG, SO_BROADCAST, SO_SNDBUFFORCE,
		SO_RCVBUFFORCE, SO_TXTIME, SO_INCOMING_CPU, SO_DETACH_FILTER,
	};
	static const uint64_t sizes[] = {
		0, 1, 4095, 4096, 4097, 65536, 262144, 1 << 20,
		GNTSOCK_BUFFER_SIZE_MAX, GNTSOCK_BUFFER_SIZE_MAX + 1,
		~0ULL, 1ULL << 32,
	};
	struct slot *s = any_slot();
	union {
		uint64_t u64;
		uint32_t u32;
		int i;
		struct timeval tv;
		struct linger lg;
		char raw[256];
	} v;
	int level, name, r;
	socklen_t len;
	void *p = &v;

	if (!s)
		return;
	memset(&v, 0, sizeof(v));
	switch (rn(4)) {
	case 0:
	case 1:
		level = SOL_GNTSOCK;
		name = chance(90) ? 1 + (int)rn(5) : (int)rn(16) - 2;
		if (name == GNTSOCK_SO_BUFFER_SIZE) {
			v.u64 = chance(80) ? sizes[rn(ARRAY_SIZE(sizes))] :
				rnd();
			len = sizeof(v.u64);
		} else if (name == GNTSOCK_SO_BUSY_POLL) {
			/* (few looks: a blocking read spins that many) */
			v.u32 = chance(90) ? (uint32_t)rn(2000) :
				(uint32_t)rnd();
			len = sizeof(v.u32);
		} else {
			v.tv.tv_sec = chance(80) ? (time_t)rn(3) :
				      (time_t)rnd();
			v.tv.tv_usec = chance(80) ? (long)rn(1000000) :
				       (long)rnd();
			len = sizeof(v.tv);
		}
		break;
	case 2:
		level = SOL_SOCKET;
		name = so[rn(ARRAY_SIZE(so))];
		if (name == SO_LINGER) {
			v.lg.l_onoff = (int)rn(2);
			v.lg.l_linger = (int)rn(3);
			len = sizeof(v.lg);
		} else if (name == SO_RCVTIMEO_OLD ||
			   name == SO_SNDTIMEO_OLD) {
			v.tv.tv_usec = (long)rn(500000);
			len = sizeof(v.tv);
		} else {
			v.i = chance(50) ? (int)rn(1 << 20) : (int)rnd();
			len = sizeof(int);
		}
		break;
	default:
		level = chance(50) ? (int)rn(300) : (int)rnd();
		name = (int)rn(64);
		fill_opt(&v, sizeof(v));
		len = (socklen_t)rn(sizeof(v) + 1);
		break;
	}
	switch (rn(12)) {
	case 0:
		len = (socklen_t)rn(len + 1);	/* short */
		break;
	case 1:
		len = sizeof(v);		/* oversized */
		break;
	case 2:
		p = NULL;
		break;
	case 3:
		len = (socklen_t)rnd();
		break;
	}
	r = note(setsockopt(s->fd, level, name, p, len));
	trace("setsockopt(%d, %d, %d, %p, %u) = %d", s->fd, level, name, p,
	      len, r ? -errno : 0);
}

static void op_getsockopt(void)
{
	static const int so[] = {
		SO_RCVBUF, SO_SNDBUF, SO_RCVLOWAT, SO_LINGER, SO_RCVTIMEO_OLD,
		SO_RCVTIMEO_NEW, SO_ERROR, SO_TYPE, SO_DOMAIN, SO_PROTOCOL,
		SO_ACCEPTCONN, SO_PEERCRED, SO_PEERNAME, SO_PEERSEC,
		SO_COOKIE, SO_MEMINFO, SO_PEERGROUPS, SO_INCOMING_NAPI_ID,
	};
	char buf[512] __attribute__((aligned(8)));
	struct slot *s = any_slot();
	socklen_t len, *lp = &len;
	int level, name, r;
	void *p = buf;

	if (!s)
		return;
	switch (rn(3)) {
	case 0:
		level = SOL_GNTSOCK;
		name = chance(90) ? 1 + (int)rn(5) : (int)rn(16) - 2;
		break;
	case 1:
		level = SOL_SOCKET;
		name = so[rn(ARRAY_SIZE(so))];
		break;
	default:
		level = chance(50) ? (int)rn(300) : (int)rnd();
		name = (int)rn(64);
		break;
	}
	switch (rn(8)) {
	case 0:
		len = 0;
		break;
	case 1:
		len = (socklen_t)rn(8);
		break;
	case 2:
		len = (socklen_t)-1 - (socklen_t)rn(4);	/* negative */
		break;
	case 3:
		len = sizeof(buf);
		break;
	default:
		len = chance(50) ? 4 : 16;
		break;
	}
	switch (rn(16)) {
	case 0:
		p = NULL;
		break;
	case 1:
		lp = NULL;
		break;
	case 2:
		p = ro_page;
		break;
	case 3:
		lp = (socklen_t *)ro_page;
		break;
	}
	r = note(getsockopt(s->fd, level, name, p, lp));
	trace("getsockopt(%d, %d, %d, len %u) = %d", s->fd, level, name,
	      lp == &len ? len : 0, r ? -errno : 0);
}

static void op_mmap(void)
{
	struct slot *s = any_slot();
	struct gmap *m;
	off_t off;
	size_t len = (size_t)page * rn(5);
	int prot = (int)rn(8) & (PROT_READ | PROT_WRITE | PROT_EXEC);
	int flags = chance(90) ? MAP_SHARED : MAP_PRIVATE;
	void *p;

	if (!s)
		return;
	if (s->ngin && chance(70)) {
		const struct gin_rec *g = &s->gin[rn(s->ngin < NGINS ?
						      s->ngin : NGINS)];

		if (chance(60)) {
			map_grant(s, g);
			return;
		}
		off = (off_t)g->id * page;
	} else {
		off = chance(50) ? (off_t)rn(16) * page : (off_t)rnd();
	}
	if (chance(10))
		len = rn(1 << 20);
	if (chance(5))
		flags |= MAP_FIXED_NOREPLACE;
	p = mmap(chance(5) ? (void *)(uintptr_t)(rnd() & ~0xfffULL) : NULL,
		 len, prot, flags, s->fd, off);
	note(p == MAP_FAILED ? -1 : 0);
	trace("mmap(fd %d off %#llx len %zu prot %d flags %#x) = %d", s->fd,
	      (unsigned long long)off, len, prot, flags,
	      p == MAP_FAILED ? -errno : 0);
	if (p == MAP_FAILED)
		return;
	m = free_map();
	if (!m) {
		m = &maps[rn(NMAPS)];
		map_drop(m);
	}
	m->addr = p;
	m->len = len;
	m->prot = prot;
	m->grant = true;
}

static void op_touch(void)
{
	struct gmap *m = any_map();
	int sig;

	if (!m)
		return;
	sig = touch(m->addr, m->len, (m->prot & PROT_WRITE) && chance(50));
	trace("touch(%p len %zu) = sig %d", m->addr, m->len, sig);
}

static void op_munmap(void)
{
	struct gmap *m = any_map();
	size_t off = 0, len;
	int r;

	if (!m)
		return;
	len = m->len;
	if (chance(20) && m->len > (size_t)page) {
		off = (size_t)page * rn(m->len / page);
		len = (size_t)page * (1 + rn((m->len - off) / page));
	}
	r = note(munmap((char *)m->addr + off, len));
	trace("munmap(%p+%zu, %zu of %zu) = %d", m->addr, off, len, m->len,
	      r ? -errno : 0);
	if (!r && !off && len == m->len) {
		remember_old(m->addr);
		memset(m, 0, sizeof(*m));
	} else if (!r) {
		/* A split grant VMA: forget it (the rest goes at exit). */
		memset(m, 0, sizeof(*m));
	}
}

static void op_mremap(void)
{
	struct gmap *m = any_map();
	size_t nlen;
	int flags = 0;
	void *p, *dst = NULL;

	if (!m)
		return;
	switch (rn(4)) {
	case 0:
		nlen = m->len + page;
		break;
	case 1:
		nlen = m->len > (size_t)page ? m->len - page : m->len;
		break;
	default:
		nlen = m->len;
		break;
	}
	if (chance(80))
		flags |= MREMAP_MAYMOVE;
	if ((flags & MREMAP_MAYMOVE) && chance(50)) {
		/* Move to a fresh hole: reserve one, then move over it. */
		dst = mmap(NULL, nlen + page, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (dst == MAP_FAILED)
			dst = NULL;
		else
			flags |= MREMAP_FIXED;
	}
	p = mremap(m->addr, m->len, nlen, flags, dst);
	note(p == MAP_FAILED ? -1 : 0);
	trace("mremap(%p, %zu -> %zu, %#x, %p) = %p", m->addr, m->len, nlen,
	      flags, dst, p == MAP_FAILED ? NULL : p);
	if (p == MAP_FAILED) {
		if (dst)
			munmap(dst, nlen + page);
		return;
	}
	if (p != m->addr)
		remember_old(m->addr);
	m->addr = p;
	m->len = nlen;
}

/* Put ordinary memory where a grant mapping was, and work it. */
static void op_reuse_old(void)
{
	char *old;
	char *p;

	if (!nold)
		return;
	old = old_ranges[rn(nold < NMAPS ? nold : NMAPS)];
	p = mmap(old, 4 * page, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	note(p == MAP_FAILED ? -1 : 0);
	trace("reuse_old(%p) = %p", (void *)old, p == MAP_FAILED ? NULL :
	      (void *)p);
	if (p == MAP_FAILED)
		return;
	memset(p, 0x5a, 4 * page);
	madvise(p, 4 * page, MADV_DONTNEED);
	memset(p, 0xa5, page);
	if (chance(50))
		mprotect(p, page, PROT_READ);
	munmap(p, 4 * page);
}

static void op_mprotect(void)
{
	struct gmap *m = any_map();
	int prot = (int)rn(8), r;

	if (!m)
		return;
	r = note(mprotect(m->addr, chance(80) ? m->len : (size_t)page, prot));
	trace("mprotect(%p, %d) = %d", m->addr, prot, r ? -errno : 0);
	if (!r)
		m->prot = prot;
}

static void op_madvise(void)
{
	static const int adv[] = {
		MADV_DONTNEED, MADV_DONTNEED, MADV_WILLNEED, MADV_DONTFORK,
		MADV_DOFORK, MADV_WIPEONFORK, MADV_REMOVE, MADV_FREE,
		MADV_COLD, MADV_PAGEOUT, 22 /* POPULATE_READ */,
		23 /* POPULATE_WRITE */, MADV_MERGEABLE, MADV_HUGEPAGE,
		MADV_DONTDUMP, -1 /* mlock */, -2 /* msync */,
	};
	struct gmap *m = any_map();
	int a = adv[rn(ARRAY_SIZE(adv))], r;
	size_t len;

	if (!m)
		return;
	len = chance(80) ? m->len : (size_t)page;
	if (a == -1) {
		r = note(mlock(m->addr, len));
		if (!r)
			munlock(m->addr, len);
	} else if (a == -2) {
		r = note(msync(m->addr, len, chance(50) ? MS_SYNC :
			       MS_INVALIDATE));
	} else {
		r = note(madvise(m->addr, len, a));
	}
	trace("madvise(%p, %zu, %d) = %d", m->addr, len, a, r ? -errno : 0);
}

/* A child that touches the mappings, plays with a socket and exits. */
static void op_fork(void)
{
	int64_t end;
	pid_t pid;
	int st;

	pid = note(fork());
	if (pid < 0)
		return;
	if (!pid) {
		unsigned int i;
		struct slot *s;

		arm_timer(OP_TIMER_MS);
		for (i = 0; i < NMAPS; i++)
			if (maps[i].addr)
				touch(maps[i].addr, maps[i].len, chance(50));
		s = any_slot();
		if (s) {
			if (chance(50))
				send(s->fd, data, rlen(8192),
				     MSG_DONTWAIT | MSG_NOSIGNAL);
			if (chance(50))
				close(s->fd);
		}
		_exit(0);
	}
	end = gnt_now_ms() + 3000;
	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (gnt_now_ms() > end) {
			kill(pid, SIGKILL);
			if (gnt_now_ms() > end + 5000) {
				ws->fork_stuck++;
				break;
			}
		}
		gnt_sleep_ms(5);
	}
	trace("fork() = %d", pid);
}

static void op_vmsplice(void)
{
	struct gmap *m = any_map();
	struct iovec iov;
	int p[2], r;
	ssize_t n;

	if (!m || pipe2(p, O_NONBLOCK | O_CLOEXEC))
		return;
	iov.iov_base = m->addr;
	iov.iov_len = chance(70) ? m->len : (size_t)page;
	n = note(vmsplice(p[1], &iov, 1, chance(30) ? SPLICE_F_GIFT : 0));
	trace("vmsplice(%p, %zu) = %zd", m->addr, iov.iov_len,
	      n < 0 ? -errno : n);
	if (n > 0 && chance(25)) {
		/* Read the pipe after the mapping is gone. */
		munmap(m->addr, m->len);
		remember_old(m->addr);
		memset(m, 0, sizeof(*m));
	}
	do {
		r = (int)read(p[0], scratch, 65536);
	} while (r > 0);
	close(p[0]);
	close(p[1]);
}

static void op_splice(void)
{
	struct slot *s = conn_slot();
	int p[2];
	ssize_t n;

	if (!s || pipe2(p, O_NONBLOCK | O_CLOEXEC))
		return;
	if (chance(50)) {
		n = note(splice(s->fd, NULL, p[1], NULL, rlen(65536),
				SPLICE_F_NONBLOCK));
	} else {
		if (write(p[1], data, rlen(4096)) < 0)
			n = -1;
		n = note(splice(p[0], NULL, s->fd, NULL, rlen(65536),
				SPLICE_F_NONBLOCK));
	}
	trace("splice(%d) = %zd", s->fd, n < 0 ? -errno : n);
	close(p[0]);
	close(p[1]);
}

static void op_ioctl(void)
{
	static const unsigned long cmds[] = {
		SIOCINQ, SIOCOUTQ, FIONBIO, FIOASYNC, SIOCATMARK, SIOCGSTAMP,
		GNTSOCK_IOC_REVOKE, GNTSOCK_IOC_RELEASE, FIONREAD, TIOCOUTQ,
		SIOCOUTQNSD, SIOCGIFINDEX, SIOCGPGRP,
	};
	struct slot *s = any_slot();
	unsigned long cmd;
	void *arg;
	int r;

	if (!s)
		return;
	switch (rn(4)) {
	case 0:
		cmd = cmds[rn(ARRAY_SIZE(cmds))];
		break;
	case 1:
		cmd = _IOC(rn(4), 'G', rn(16), rn(64));
		break;
	default:
		cmd = (unsigned long)(uint32_t)rnd();
		break;
	}
	/* Never FIOASYNC/FIOSETOWN games on another process: SIGIO is off. */
	switch (rn(8)) {
	case 0:
		arg = NULL;
		break;
	case 1:
		arg = ro_page;
		break;
	case 2:
		arg = (void *)(uintptr_t)rnd();
		break;
	default:
		fill_opt(scratch, 64);
		arg = scratch + 65536 - 64 - rn(64);	/* near the guard */
		break;
	}
	r = note(ioctl(s->fd, cmd, arg));
	trace("ioctl(%d, %#lx, %p) = %d", s->fd, cmd, arg, r < 0 ? -errno : r);
}

static void op_grant_ioctl(void)
{
	struct slot *s = any_slot();
	uint64_t cookie;
	uint32_t id;
	int r;

	if (!s)
		return;
	if (chance(50)) {
		cookie = chance(80) ? s->cookie[rn(4)] : rnd();
		r = note(ioctl(s->fd, GNTSOCK_IOC_REVOKE, &cookie));
		trace("ioctl(%d, REVOKE %#llx) = %d", s->fd,
		      (unsigned long long)cookie, r < 0 ? -errno : r);
	} else {
		id = s->ngin && chance(80) ?
		     s->gin[rn(s->ngin < NGINS ? s->ngin : NGINS)].id :
		     (uint32_t)rn(64);
		r = note(ioctl(s->fd, GNTSOCK_IOC_RELEASE, &id));
		trace("ioctl(%d, RELEASE %u) = %d", s->fd, id,
		      r < 0 ? -errno : r);
	}
}

static void op_fcntl(void)
{
	struct slot *s = any_slot();
	int fl, r;

	if (!s)
		return;
	fl = fcntl(s->fd, F_GETFL);
	if (fl < 0)
		return;
	if (chance(70))
		fl ^= O_NONBLOCK;
	else
		fl ^= O_ASYNC;
	r = note(fcntl(s->fd, F_SETFL, fl));
	if (chance(20))
		fcntl(s->fd, F_SETOWN, getpid());
	trace("fcntl(%d, SETFL %#x) = %d", s->fd, fl, r ? -errno : 0);
}

static void op_shutdown(void)
{
	struct slot *s = conn_slot();
	int how = chance(90) ? (int)rn(3) : (int)rnd();
	int r;

	if (!s)
		return;
	r = note(shutdown(s->fd, how));
	trace("shutdown(%d, %d) = %d", s->fd, how, r ? -errno : 0);
}

static void op_dup(void)
{
	struct slot *s = any_slot(), *d;
	int fd;

	if (!s)
		return;
	fd = note(dup(s->fd));
	trace("dup(%d) = %d", s->fd, fd < 0 ? -errno : fd);
	if (fd < 0)
		return;
	d = free_slot();
	if (!d) {
		close(fd);
		return;
	}
	*d = *s;
	d->fd = fd;
}

static void op_close(void)
{
	struct slot *s = any_slot();

	if (!s)
		return;
	trace("close(%d)", s->fd);
	slot_close(s);
}

static void op_poll(void)
{
	struct pollfd p[NSLOTS];
	unsigned int i, n = 0;
	int r;

	for (i = 0; i < NSLOTS; i++) {
		if (slots[i].fd < 0 || chance(30))
			continue;
		p[n].fd = slots[i].fd;
		p[n].events = (short)rnd();
		n++;
	}
	r = note(poll(p, n, (int)rn(50)));
	trace("poll(%u fds) = %d", n, r < 0 ? -errno : r);
}

static void op_epoll(void)
{
	struct epoll_event ev[8];
	struct slot *s = any_slot();
	int r;

	if (epfd < 0)
		return;
	if (s && chance(50)) {
		struct epoll_event e = { .events = (uint32_t)rnd() };
		int o = 1 + (int)rn(3);

		r = note(epoll_ctl(epfd, o, s->fd, &e));
		trace("epoll_ctl(%d, %d, %#x) = %d", s->fd, o, e.events,
		      r ? -errno : 0);
	}
	r = note(epoll_wait(epfd, ev, 8, (int)rn(50)));
	trace("epoll_wait() = %d", r < 0 ? -errno : r);
}

static void op_getname(void)
{
	struct sockaddr_storage ss;
	struct slot *s = any_slot();
	socklen_t len = (socklen_t)rn(sizeof(ss) + 1);
	int r;

	if (!s)
		return;
	if (chance(50))
		r = note(getsockname(s->fd, (struct sockaddr *)&ss, &len));
	else
		r = note(getpeername(s->fd, (struct sockaddr *)&ss, &len));
	trace("getname(%d) = %d", s->fd, r ? -errno : 0);
}

static void (*const op_fn[OP_MAX])(void) = {
	[OP_SOCKET] = op_socket, [OP_BIND] = op_bind,
	[OP_LISTEN] = op_listen, [OP_CONNECT] = op_connect,
	[OP_ACCEPT] = op_accept, [OP_PAIR] = op_pair, [OP_SEND] = op_send,
	[OP_RECV] = op_recv, [OP_SENDMSG] = op_sendmsg,
	[OP_RECVMSG] = op_recvmsg, [OP_GRANT] = op_grant,
	[OP_GRANT_SVC] = op_grant_svc, [OP_ERRQUEUE] = op_errqueue,
	[OP_SETSOCKOPT] = op_setsockopt, [OP_GETSOCKOPT] = op_getsockopt,
	[OP_MMAP] = op_mmap, [OP_TOUCH] = op_touch, [OP_MUNMAP] = op_munmap,
	[OP_MREMAP] = op_mremap, [OP_REUSE_OLD] = op_reuse_old,
	[OP_MPROTECT] = op_mprotect, [OP_MADVISE] = op_madvise,
	[OP_FORK] = op_fork, [OP_VMSPLICE] = op_vmsplice,
	[OP_SPLICE] = op_splice, [OP_IOCTL] = op_ioctl,
	[OP_GRANT_IOCTL] = op_grant_ioctl, [OP_FCNTL] = op_fcntl,
	[OP_SHUTDOWN] = op_shutdown, [OP_DUP] = op_dup, [OP_CLOSE] = op_close,
	[OP_POLL] = op_poll, [OP_EPOLL] = op_epoll, [OP_GETNAME] = op_getname,
};

static int pick_op(void)
{
	static unsigned int total;
	unsigned int i, r;

	if (!total)
		for (i = 0; i < OP_MAX; i++)
			total += op_weight[i];
	r = rn(total);
	for (i = 0; i < OP_MAX; i++) {
		if (r < op_weight[i])
			return (int)i;
		r -= op_weight[i];
	}
	return OP_SOCKET;
}

/* ---- the worker --------------------------------------------------------- */

static void *map_anon(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int worker_setup(void)
{
	struct sigaction sa = { 0 };
	int mfd;

	sa.sa_handler = alarm_handler;		/* no SA_RESTART */
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = fault_handler;
	sa.sa_flags = SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGIO, SIG_IGN);
	signal(SIGURG, SIG_IGN);

	data = map_anon(DATA_LEN, PROT_READ | PROT_WRITE);
	gbuf = map_anon((GBUF_PAGES + 1) * page, PROT_READ | PROT_WRITE);
	gbuf_ro = map_anon(2 * page, PROT_READ | PROT_WRITE);
	scratch = map_anon(65536 + page, PROT_READ | PROT_WRITE);
	ro_page = map_anon(page, PROT_READ);
	if (!data || !gbuf || !gbuf_ro || !scratch || !ro_page)
		return -ENOMEM;
	memset(data, 0x3c, DATA_LEN);
	memset(gbuf, 0x11, GBUF_PAGES * page);
	munmap(gbuf + GBUF_PAGES * page, page);	/* a hole after it */
	memset(gbuf_ro, 0x22, 2 * page);
	mprotect(gbuf_ro, 2 * page, PROT_READ);
	mprotect(scratch + 65536, page, PROT_NONE);
	mfd = memfd_create("gntsock_sockfuzz", MFD_CLOEXEC);
	if (mfd >= 0 && !ftruncate(mfd, 4 * page)) {
		gbuf_shm = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE,
				MAP_SHARED, mfd, 0);
		if (gbuf_shm == MAP_FAILED)
			gbuf_shm = gbuf;
	} else {
		gbuf_shm = gbuf;
	}
	if (mfd >= 0)
		close(mfd);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	return 0;
}

static int drop_root(void)
{
	if (setgroups(0, NULL) || setgid(NOBODY) || setuid(NOBODY))
		return -errno;
	if (geteuid() == 0 || getegid() == 0 || !setuid(0))
		return -EPERM;		/* still privileged */
	return 0;
}

static void worker(unsigned int idx, struct wstat *st, int64_t end_ms)
{
	unsigned int i;
	int r;

	ws = st;
	ws->cur_op = -1;
	/* Not the parent's stdout: a worker stuck in the kernel must not
	 * keep the pipe of whoever reads our output open.
	 */
	r = open("/dev/null", O_RDWR);
	if (r >= 0) {
		dup2(r, 0);
		dup2(r, 1);
		dup2(r, 2);
		if (r > 2)
			close(r);
	}
	rng = cfg.seed ^ (0x9e3779b97f4a7c15ULL * (idx + 1));
	if (!rng)
		rng = 1;
	for (i = 0; i < NSLOTS; i++) {
		slots[i].fd = -1;
		slots[i].domid = ~0U;
	}
	r = worker_setup();
	if (!r)
		r = drop_root();
	ws->euid = geteuid();
	ws->dropped = r ? r : 1;
	if (r)
		_exit(2);
	while (gnt_now_ms() < end_ms) {
		int op = pick_op();

		ws->cur_op = op;
		ws->ops[op]++;
		ws->nops++;
		arm_timer(op == OP_GRANT_SVC ? SVC_TIMER_MS : OP_TIMER_MS);
		op_fn[op]();
		arm_timer(0);
		ws->cur_op = -1;
	}
	/* Leave some sockets and mappings to the exit path. */
	for (i = 0; i < NSLOTS; i++) {
		arm_timer(OP_TIMER_MS);		/* SO_LINGER */
		if (chance(50))
			slot_close(&slots[i]);
	}
	arm_timer(0);
	for (i = 0; i < NMAPS; i++)
		if (chance(50))
			map_drop(&maps[i]);
	_exit(0);
}

/* ---- the parent ---------------------------------------------------------- */

static unsigned int proc_entries(void)
{
	static char buf[1 << 16];
	unsigned int n = 0;
	char *p;

	if (gnt_read_file("/proc/net/gntsock", buf, sizeof(buf)))
		return ~0U;
	for (p = buf; (p = strchr(p, '\n')); p++)
		n++;
	return n ? n - 1 : 0;	/* the header */
}

static uint64_t stat_sockets(void)
{
	uint64_t v;

	return gnt_stat_get("sockets", &v) ? ~0ULL : v;
}

static void print_trace(unsigned int w, const struct wstat *st)
{
	unsigned int i, n = st->trace_pos < TRACE_LEN ? st->trace_pos :
			    TRACE_LEN;

	for (i = 0; i < n; i++)
		printf("#   worker %u op %u: %s\n", w,
		       st->trace_pos - n + i,
		       st->trace[(st->trace_pos - n + i) % TRACE_LEN]);
}

static void print_stack(pid_t pid)
{
	char path[64], buf[4096];

	snprintf(path, sizeof(path), "/proc/%d/stack", (int)pid);
	if (!gnt_read_file(path, buf, sizeof(buf)))
		printf("#   kernel stack of %d:\n%s", (int)pid, buf);
	snprintf(path, sizeof(path), "/proc/%d/wchan", (int)pid);
	if (!gnt_read_file(path, buf, sizeof(buf)))
		printf("#   wchan of %d: %s\n", (int)pid, buf);
}

struct xfer {
	int fd;
	const char *buf;
	int err;
};

static void *xfer_send(void *arg)
{
	struct xfer *x = arg;

	x->err = gnt_send_all(x->fd, x->buf, DATA_LEN, NULL);
	return NULL;
}

/* As root: 1 MiB over a loopback STREAM connection, intact. 0 or -errno. */
static int loopback_mib(char *why, size_t wlen)
{
	struct sockaddr_gnt a = gnt_addr(GNTSOCK_DOMID_ANY, GNTSOCK_PORT_ANY);
	socklen_t alen = sizeof(a);
	char *out = malloc(DATA_LEN), *in = malloc(DATA_LEN);
	struct xfer x = { .fd = -1 };
	int l = -1, c = -1, s = -1, r = -ENOMEM;
	pthread_t t;
	size_t i;

	if (!out || !in)
		goto out;
	for (i = 0; i < DATA_LEN; i++)
		out[i] = (char)(i * 131 + (i >> 12));
	r = -errno;
	l = socket(AF_GNTSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &alen)) {
		r = -errno;
		snprintf(why, wlen, "listener: %s", strerror(errno));
		goto out;
	}
	c = gnt_connect(GNTSOCK_DOMID_SELF, a.sgnt_port, 10);
	if (c < 0) {
		r = c;
		snprintf(why, wlen, "connect: %s", strerror(-c));
		goto out;
	}
	gnt_set_timeouts(l, 10);
	s = accept(l, NULL, NULL);
	if (s < 0 || gnt_set_timeouts(s, 10)) {
		r = -errno;
		snprintf(why, wlen, "accept: %s", strerror(errno));
		goto out;
	}
	x.fd = c;
	x.buf = out;
	if (pthread_create(&t, NULL, xfer_send, &x)) {
		snprintf(why, wlen, "pthread_create");
		goto out;
	}
	r = gnt_recv_all(s, in, DATA_LEN, &i);
	pthread_join(t, NULL);
	if (r || x.err) {
		snprintf(why, wlen, "recv %s after %zu bytes, send %s",
			 strerror(-r), i, strerror(-x.err));
		r = r ? r : x.err;
	} else if (memcmp(in, out, DATA_LEN)) {
		snprintf(why, wlen, "data differ");
		r = -EIO;
	}
out:
	if (s >= 0)
		close(s);
	if (c >= 0)
		close(c);
	if (l >= 0)
		close(l);
	free(in);
	free(out);
	return r;
}

static const char *errname(int e)
{
	const char *n = e ? strerrorname_np(e) : NULL;

	return n ? n : "E?";
}

/* Write @v to net.gntsock.require_cap; its old value, or -errno. */
static int set_require_cap(int v)
{
	char buf[16];
	int fd, old, n;

	if (gnt_read_file(REQUIRE_CAP, buf, sizeof(buf)))
		return -errno;
	old = atoi(buf);
	fd = open(REQUIRE_CAP, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%d\n", v);
	if (write(fd, buf, n) != n)
		old = -errno;
	close(fd);
	return old;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-s SECONDS] [-S SEED] [-w WORKERS] [-c] [-p PEER_DOMID]...\n",
		argv0);
	exit(2);
}

static void parse_args(int argc, char **argv)
{
	bool seeded = false;
	unsigned int d;
	int c;

	cfg.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	while ((c = getopt(argc, argv, "s:S:w:cp:")) != -1) {
		switch (c) {
		case 'c':
			cfg.keep_cap = true;
			break;
		case 's':
			cfg.seconds = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'S':
			cfg.seed = strtoull(optarg, NULL, 0);
			seeded = true;
			break;
		case 'w':
			cfg.nworkers = (unsigned int)strtoul(optarg, NULL, 0);
			if (!cfg.nworkers || cfg.nworkers > MAX_WORKERS)
				usage(argv[0]);
			break;
		case 'p':
			if (gnt_parse_domid(optarg, &d) ||
			    cfg.npeers >= MAX_PEERS)
				usage(argv[0]);
			cfg.peers[cfg.npeers++] = d;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind != argc || !cfg.seconds)
		usage(argv[0]);
	if (gnt_env_domid("GNTSOCK_SELF_DOMID", &d) == 0)
		cfg.self = d;
	/* Domains booted alike start us with the same pid at the same time:
	 * the domid tells their default seeds apart.
	 */
	if (!seeded && cfg.self != ~0U)
		cfg.seed ^= (uint64_t)cfg.self << 48;
}

int main(int argc, char **argv)
{
	struct wstat *st;
	pid_t pids[MAX_WORKERS];
	int status[MAX_WORKERS];
	bool reaped[MAX_WORKERS] = { 0 }, killed[MAX_WORKERS] = { 0 };
	uint64_t sock0, sock1, nops = 0, err[ERRNO_MAX] = { 0 };
	uint64_t ops[OP_MAX] = { 0 }, fails[OP_MAX] = { 0 };
	uint64_t gsent = 0, grecv = 0, gmapped = 0, faults = 0, svc = 0;
	unsigned int i, w, ent0, ent1, left, bad = 0, undropped = 0;
	bool unmapped;
	int64_t end_ms, deadline;
	char why[160], line[1024];
	size_t pos;
	int r, old_cap = -1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv);
	page = sysconf(_SC_PAGESIZE);
	printf("KTAP version 1\n");
	printf("# gntsock_sockfuzz: seed %#llx, %u s, %u workers, peers",
	       (unsigned long long)cfg.seed, cfg.seconds, cfg.nworkers);
	for (i = 0; i < cfg.npeers; i++)
		printf(" %u", cfg.peers[i]);
	printf(", self %d\n", (int)cfg.self);
	printf("1..4\n");
	signal(SIGPIPE, SIG_IGN);

	if (!cfg.keep_cap) {
		old_cap = set_require_cap(0);
		printf("# net.gntsock.require_cap %d -> 0 for the run%s\n",
		       old_cap, old_cap < 0 ? " (failed)" : "");
	}
	sock0 = stat_sockets();
	ent0 = proc_entries();
	printf("# before: sockets %lld, /proc/net/gntsock entries %d\n",
	       (long long)sock0, (int)ent0);

	st = mmap(NULL, sizeof(*st) * cfg.nworkers, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (st == MAP_FAILED) {
		printf("Bail out! shared memory: %s\n", strerror(errno));
		return 1;
	}
	memset(st, 0, sizeof(*st) * cfg.nworkers);
	/* A fuzzer started in a peer domain at about the same time must not
	 * touch our sockets before we have counted them.
	 */
	sleep(START_DELAY_S);
	end_ms = gnt_now_ms() + (int64_t)cfg.seconds * 1000;
	for (w = 0; w < cfg.nworkers; w++) {
		pids[w] = fork();
		if (pids[w] < 0) {
			printf("Bail out! fork: %s\n", strerror(errno));
			return 1;
		}
		if (!pids[w])
			worker(w, &st[w], end_ms);
	}

	/* Reap; after GRACE_S past the end, the stop: SIGKILL. */
	deadline = end_ms + GRACE_S * 1000;
	left = cfg.nworkers;
	while (left) {
		for (w = 0; w < cfg.nworkers; w++) {
			if (reaped[w] || waitpid(pids[w], &status[w],
						 WNOHANG) != pids[w])
				continue;
			reaped[w] = true;
			left--;
		}
		if (!left)
			break;
		if (gnt_now_ms() > deadline) {
			for (w = 0; w < cfg.nworkers; w++) {
				if (reaped[w] || killed[w])
					continue;
				printf("# worker %u overran its time by %d s in op %s: SIGKILL\n",
				       w, GRACE_S, st[w].cur_op >= 0 ?
				       op_names[st[w].cur_op] : "(none)");
				print_stack(pids[w]);
				kill(pids[w], SIGKILL);
				killed[w] = true;
			}
			if (gnt_now_ms() > deadline + REAP_S * 1000)
				break;
		}
		gnt_sleep_ms(100);
	}

	if (old_cap > 0 && set_require_cap(old_cap) < 0)
		printf("# restoring net.gntsock.require_cap %d failed: %s\n",
		       old_cap, strerror(errno));

	/* 1: ran, unprivileged. */
	for (w = 0; w < cfg.nworkers; w++) {
		nops += st[w].nops;
		gsent += st[w].grants_sent;
		grecv += st[w].grants_recv;
		gmapped += st[w].grants_mapped;
		faults += st[w].touch_faults;
		svc += st[w].svc_ok;
		for (i = 0; i < OP_MAX; i++) {
			ops[i] += st[w].ops[i];
			fails[i] += st[w].fails[i];
		}
		for (i = 0; i < ERRNO_MAX; i++)
			err[i] += st[w].err[i];
		if (st[w].dropped != 1 || st[w].euid == 0) {
			printf("# worker %u did not drop root: %s (euid %u)\n",
			       w, st[w].dropped < 0 ?
			       strerror(-st[w].dropped) : "never said",
			       st[w].euid);
			undropped++;
		}
		if (st[w].fork_stuck)
			printf("# worker %u: %llu fork children could not be reaped\n",
			       w, (unsigned long long)st[w].fork_stuck);
	}
	for (i = 0; i < OP_MAX; i++)
		printf("# op %-12s %8llu calls %8llu failed\n", op_names[i],
		       (unsigned long long)ops[i],
		       (unsigned long long)fails[i]);
	printf("# grants sent %llu, received %llu, mapped %llu; GRANT service answers %llu; faults caught touching mappings %llu\n",
	       (unsigned long long)gsent, (unsigned long long)grecv,
	       (unsigned long long)gmapped, (unsigned long long)svc,
	       (unsigned long long)faults);
	pos = 0;
	for (i = 0; i < ERRNO_MAX && pos < sizeof(line) - 40; i++)
		if (err[i])
			pos += snprintf(line + pos, sizeof(line) - pos, " %s=%llu",
					errname((int)i),
					(unsigned long long)err[i]);
	line[pos] = '\0';
	/* The mapping ops must have had grant mappings to work on. */
	unmapped = cfg.npeers && !cfg.keep_cap && !gmapped;
	if (unmapped)
		printf("# no received grant was mapped: the grant mappings went unfuzzed\n");
	printf("%sok 1 fuzz_ran_%u_s_unprivileged # ops=%llu errors by errno:%s\n",
	       undropped || !nops || unmapped ? "not " : "", cfg.seconds,
	       (unsigned long long)nops, pos ? line : " none");

	/* 2: no worker crashed. */
	for (w = 0; w < cfg.nworkers; w++) {
		const char *op = st[w].cur_op >= 0 ?
				 op_names[st[w].cur_op] : "(between ops)";

		if (!reaped[w]) {
			printf("# worker %u (pid %d) unkillable %d s after SIGKILL, in op %s: stuck in the kernel\n",
			       w, (int)pids[w], REAP_S, op);
			print_stack(pids[w]);
			print_trace(w, &st[w]);
			bad++;
		} else if (WIFSIGNALED(status[w]) &&
			   !(killed[w] && WTERMSIG(status[w]) == SIGKILL)) {
			printf("# worker %u killed by signal %d (%s) in op %s\n",
			       w, WTERMSIG(status[w]),
			       strsignal(WTERMSIG(status[w])), op);
			print_trace(w, &st[w]);
			bad++;
		} else if (WIFEXITED(status[w]) && WEXITSTATUS(status[w]) &&
			   WEXITSTATUS(status[w]) != 2) {
			printf("# worker %u exited with status %d in op %s\n",
			       w, WEXITSTATUS(status[w]), op);
			print_trace(w, &st[w]);
			bad++;
		} else if (killed[w]) {
			printf("# worker %u stopped by the parent in op %s\n",
			       w, op);
			print_trace(w, &st[w]);
		}
	}
	printf("%sok 2 no_worker_crashed\n", bad ? "not " : "");

	/* 3: the module still works. */
	r = loopback_mib(why, sizeof(why));
	if (r)
		printf("not ok 3 module_still_works # %s\n", why);
	else
		printf("ok 3 module_still_works # 1 MiB over loopback intact\n");

	/* 4: every socket released. */
	deadline = gnt_now_ms() + 10000;
	do {
		sock1 = stat_sockets();
		ent1 = proc_entries();
		if (sock1 == sock0 && ent1 == ent0)
			break;
		gnt_sleep_ms(200);
	} while (gnt_now_ms() < deadline);
	if (sock1 == sock0 && ent1 == ent0 && sock0 != ~0ULL) {
		printf("ok 4 sockets_released # sockets %llu, entries %u\n",
		       (unsigned long long)sock1, ent1);
	} else {
		printf("# /proc/net/gntsock now:\n");
		if (!gnt_read_file("/proc/net/gntsock", line, sizeof(line))) {
			char *save = NULL, *l;

			for (l = strtok_r(line, "\n", &save); l;
			     l = strtok_r(NULL, "\n", &save))
				printf("#   %s\n", l);
		}
		printf("not ok 4 sockets_released # sockets %lld -> %lld, /proc/net/gntsock entries %d -> %d after 10 s\n",
		       (long long)sock0, (long long)sock1, (int)ent0,
		       (int)ent1);
	}
	return 0;
}
