// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_sock_test - AF_GNTSOCK socket semantics, one test per behaviour:
 * SOCK_SEQPACKET records, the options and flags vsock users rely on,
 * connection life cycle, and what /proc shows.
 *
 * Runs against gntsock_peer in the domain GNTSOCK_PEER_DOMID names (decimal
 * or 0x-hex; every test SKIPs without it). That may be another domain (a
 * link must exist) or this very domain: its own id or GNTSOCK_DOMID_SELF
 * (0x7ff0) test same-domain loopback, which needs no link at all, with a
 * gntsock_peer running in this domain. KTAP output on stdout.
 *
 * The behaviours of Linux's tools/testing/vsock/vsock_test.c that apply
 * to a transport without zerocopy are all here (vsock_* tests), see
 * Documentation/testing.rst for the mapping. counters_idle must stay last.
 */
#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <linux/sockios.h>
#include <linux/time_types.h>

#include "gntsock_util.h"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"

#define IO_TIMEOUT_S	20
#define LISTEN_PORT	6010	/* this test's own listeners: 6010-6019 */

FIXTURE(sock) {
	unsigned int peer;	/* as given */
	unsigned int peer_id;	/* what getpeername() must show */
	bool loopback;
};

/* A connection to @domid:@port with IO_TIMEOUT_S for its I/O and for
 * connect() (whose 2 s default a busy rig's answer can exceed). Return:
 * the fd or -errno.
 */
static int sconnect(int type, unsigned int domid, unsigned int port)
{
	struct timeval ct = { .tv_sec = IO_TIMEOUT_S };
	struct sockaddr_gnt a = gnt_addr(domid, port);
	int fd, ret;

	fd = socket(AF_GNTSOCK, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = gnt_set_timeouts(fd, IO_TIMEOUT_S);
	if (!ret && setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_CONNECT_TIMEOUT,
			       &ct, sizeof(ct)))
		ret = -errno;
	if (!ret && connect(fd, (struct sockaddr *)&a, sizeof(a)))
		ret = -errno;
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

FIXTURE_SETUP(sock)
{
	struct sockaddr_gnt a = gnt_addr(GNTSOCK_DOMID_ANY, GNTSOCK_PORT_ANY);
	socklen_t len = sizeof(a);
	int ret, fd, lfd;

	signal(SIGPIPE, SIG_IGN);
	ret = gnt_env_domid("GNTSOCK_PEER_DOMID", &self->peer);
	if (ret == -ENOENT)
		SKIP(return, "GNTSOCK_PEER_DOMID is not set");
	ASSERT_EQ(0, ret);
	/* Our own id: the peer address of a loopback connection. */
	lfd = socket(AF_GNTSOCK, SOCK_STREAM, 0);
	ASSERT_LE(0, lfd);
	ASSERT_EQ(0, bind(lfd, (void *)&a, sizeof(a)));
	ASSERT_EQ(0, listen(lfd, 1));
	ASSERT_EQ(0, getsockname(lfd, (void *)&a, &len));
	fd = socket(AF_GNTSOCK, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	a.sgnt_domid = GNTSOCK_DOMID_SELF;
	ASSERT_EQ(0, connect(fd, (void *)&a, sizeof(a)))
		TH_LOG("loopback connect: %s", strerror(errno));
	len = sizeof(a);
	ASSERT_EQ(0, getpeername(fd, (void *)&a, &len));
	close(fd);
	close(lfd);
	self->peer_id = self->peer == GNTSOCK_DOMID_SELF ? a.sgnt_domid :
			self->peer;
	self->loopback = self->peer_id == a.sgnt_domid;
}

FIXTURE_TEARDOWN(sock)
{
}

#define NEED_PEER() do { if (_metadata->skip) return; } while (0)

static ssize_t seq_recvmsg(int fd, void *buf, size_t len, int flags,
			   int *msg_flags)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	n = recvmsg(fd, &m, flags);
	*msg_flags = m.msg_flags;
	return n < 0 ? -errno : n;
}

static ssize_t xsend(int fd, const void *buf, size_t len, int flags)
{
	ssize_t n = send(fd, buf, len, flags | MSG_NOSIGNAL);

	return n < 0 ? -errno : n;
}

static ssize_t xrecv(int fd, void *buf, size_t len, int flags)
{
	ssize_t n = recv(fd, buf, len, flags);

	return n < 0 ? -errno : n;
}

static int listen_on(int type, unsigned int port, int backlog)
{
	struct sockaddr_gnt a = gnt_addr(GNTSOCK_DOMID_ANY, port);
	int fd = socket(AF_GNTSOCK, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (void *)&a, sizeof(a)) || listen(fd, backlog)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Ask the peer's CONNECT_BACK to connect to our @port; its errno or 0. */
static int connect_back(unsigned int peer, unsigned int port)
{
	struct gnt_connect_back_req req = { .port = gnt_le32(port) };
	struct gnt_connect_back_status st;
	int fd, ret;

	fd = sconnect(SOCK_STREAM, peer, GNTSOCK_PEER_PORT_CONNECT_BACK);
	if (fd < 0)
		return fd;
	ret = gnt_send_all(fd, &req, sizeof(req), NULL);
	if (!ret)
		ret = gnt_recv_all(fd, &st, sizeof(st), NULL);
	close(fd);
	if (ret)
		return ret;
	return (int32_t)gnt_le32((uint32_t)st.err);
}

/* Lines of /proc/net/gntsock with local port @port (any state). */
static int proc_port_lines(unsigned int port, const char *type,
			   const char *state)
{
	char buf[65536], *line, *save = NULL;
	char t[16], s[16];
	unsigned int ld, lp;
	int n = 0;

	if (gnt_read_file("/proc/net/gntsock", buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%15s %15s %u:%u", t, s, &ld, &lp) != 4)
			continue;
		if (lp == port && (!type || !strcmp(t, type)) &&
		    (!state || !strcmp(s, state)))
			n++;
	}
	return n;
}

static int wait_port_gone(unsigned int port, int ms)
{
	int64_t end = gnt_now_ms() + ms;

	while (proc_port_lines(port, NULL, NULL) > 0) {
		if (gnt_now_ms() > end)
			return -ETIMEDOUT;
		gnt_sleep_ms(50);
	}
	return 0;
}

static int inq(int fd)
{
	int n = -1;

	return ioctl(fd, SIOCINQ, &n) ? -errno : n;
}

static int outq(int fd)
{
	int n = -1;

	return ioctl(fd, SIOCOUTQ, &n) ? -errno : n;
}

/* Wait until SIOCINQ reaches @n bytes. */
static int wait_inq(int fd, int n, int ms)
{
	int64_t end = gnt_now_ms() + ms;
	int q;

	while ((q = inq(fd)) < n) {
		if (q < 0)
			return q;
		if (gnt_now_ms() > end)
			return -ETIMEDOUT;
		gnt_sleep_ms(10);
	}
	return q;
}

/* ---- SOCK_SEQPACKET ------------------------------------------------ */

/* Records keep their bounds and MSG_EOR (vsock_test: msg bounds). */
TEST_F_TIMEOUT(sock, seqpacket_msg_bounds, 60)
{
	static const size_t sizes[] = { 1, 0, 100, 4096, 70007, 1, 0, 65536 };
	char *out = malloc(70007), *in = malloc(70008);
	unsigned int i;
	int fd, fl;

	NEED_PEER();
	ASSERT_TRUE(out && in);
	fd = sconnect(SOCK_SEQPACKET, self->peer, GNTSOCK_PEER_PORT_SEQ_ECHO);
	ASSERT_LE(0, fd) TH_LOG("connect: %s", strerror(-fd));
	/* All sent before any is read: the peer must not merge them. */
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		gnt_pattern_fill(i, 0, out, sizes[i]);
		ASSERT_EQ((ssize_t)sizes[i],
			  xsend(fd, out, sizes[i], i == 3 ? MSG_EOR : 0));
	}
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		memset(in, 0xee, 70008);
		ASSERT_EQ((ssize_t)sizes[i], seq_recvmsg(fd, in, 70008, 0, &fl))
			TH_LOG("record %u", i);
		EXPECT_EQ(i == 3, !!(fl & MSG_EOR)) TH_LOG("record %u", i);
		EXPECT_FALSE(fl & MSG_TRUNC);
		gnt_pattern_fill(i, 0, out, sizes[i]);
		EXPECT_EQ(0, memcmp(in, out, sizes[i])) TH_LOG("record %u", i);
	}
	ASSERT_EQ(-EAGAIN, xrecv(fd, in, 10, MSG_DONTWAIT));
	close(fd);
	free(out);
	free(in);
}

/* MSG_TRUNC reports the record's real length (vsock_test: MSG_TRUNC). */
TEST_F_TIMEOUT(sock, seqpacket_msg_trunc, 60)
{
	char buf[32], small[16];
	int fd, fl;

	NEED_PEER();
	fd = sconnect(SOCK_SEQPACKET, self->peer, GNTSOCK_PEER_PORT_SEQ_ECHO);
	ASSERT_LE(0, fd);
	memset(buf, 'x', sizeof(buf));
	ASSERT_EQ(32, xsend(fd, buf, 32, 0));
	ASSERT_EQ(32, seq_recvmsg(fd, small, sizeof(small), MSG_TRUNC, &fl));
	EXPECT_TRUE(fl & MSG_TRUNC);
	/* Without MSG_TRUNC in flags: bytes copied; the rest is dropped. */
	ASSERT_EQ(32, xsend(fd, buf, 32, 0));
	ASSERT_EQ(7, xsend(fd, "seven!!", 7, 0));
	ASSERT_EQ(16, seq_recvmsg(fd, small, sizeof(small), 0, &fl));
	EXPECT_TRUE(fl & MSG_TRUNC);
	ASSERT_EQ(7, seq_recvmsg(fd, buf, sizeof(buf), 0, &fl));
	EXPECT_FALSE(fl & MSG_TRUNC);
	EXPECT_EQ(0, memcmp(buf, "seven!!", 7));
	close(fd);
}

/* Records as large as the peer's buffer; larger ones get EMSGSIZE. */
TEST_F_TIMEOUT(sock, seqpacket_record_size_limit, 60)
{
	size_t max = GNTSOCK_BUFFER_SIZE_DEFAULT;
	char *out = malloc(max + 1), *in = malloc(max + 1);
	uint64_t bs = 0;
	socklen_t l = sizeof(bs);
	int fd, fl;

	NEED_PEER();
	ASSERT_TRUE(out && in);
	fd = sconnect(SOCK_SEQPACKET, self->peer, GNTSOCK_PEER_PORT_SEQ_ECHO);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, getsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUFFER_SIZE,
				&bs, &l));
	ASSERT_EQ(max, bs);
	gnt_pattern_fill(77, 0, out, max + 1);
	EXPECT_EQ(-EMSGSIZE, xsend(fd, out, max + 1, 0));
	ASSERT_EQ((ssize_t)max, xsend(fd, out, max, 0));
	ASSERT_EQ((ssize_t)max, seq_recvmsg(fd, in, max + 1, 0, &fl));
	EXPECT_EQ(0, memcmp(in, out, max));
	close(fd);
	free(out);
	free(in);
}

/* Many records under tight flow control: none split, merged or lost. */
TEST_F_TIMEOUT(sock, seqpacket_flow_control, 120)
{
	struct gnt_seq_source_req req = {
		.count = gnt_le32(300), .len = gnt_le32(1000),
		.seed = gnt_le64(4242),
	};
	uint64_t bs = GNTSOCK_BUFFER_SIZE_MIN;
	char in[8192], want[8192];
	unsigned int i;
	int fd, fl;
	ssize_t n;

	NEED_PEER();
	fd = socket(AF_GNTSOCK, SOCK_SEQPACKET, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, gnt_set_timeouts(fd, IO_TIMEOUT_S));
	/* Records of 1000-1299 bytes into a 4096-byte buffer. */
	ASSERT_EQ(0, setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUFFER_SIZE,
				&bs, sizeof(bs)));
	{
		struct sockaddr_gnt a = gnt_addr(self->peer,
						 GNTSOCK_PEER_PORT_SEQ_SOURCE);

		ASSERT_EQ(0, connect(fd, (void *)&a, sizeof(a)));
	}
	ASSERT_EQ((ssize_t)sizeof(req), xsend(fd, &req, sizeof(req), 0));
	for (i = 0; i < 300; i++) {
		size_t len = gnt_seq_rec_len(1000, i);

		if (i % 7 == 0)
			gnt_sleep_ms(2);	/* let the queue fill */
		n = seq_recvmsg(fd, in, sizeof(in), 0, &fl);
		ASSERT_EQ((ssize_t)len, n) TH_LOG("record %u", i);
		EXPECT_EQ((int)(i % 2), !!(fl & MSG_EOR)) TH_LOG("record %u", i);
		gnt_pattern_fill(4242 + i, 0, want, len);
		ASSERT_EQ(0, memcmp(in, want, len)) TH_LOG("record %u", i);
	}
	close(fd);
}

/* SO_RCVTIMEO on an idle SEQPACKET socket (vsock_test: timeout). */
TEST_F_TIMEOUT(sock, seqpacket_rcvtimeo, 60)
{
	struct timeval tv = { .tv_sec = 1 };
	int64_t t0, dt;
	char c;
	int fd;

	NEED_PEER();
	fd = sconnect(SOCK_SEQPACKET, self->peer, GNTSOCK_PEER_PORT_SEQ_HOLD);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	t0 = gnt_now_ms();
	EXPECT_EQ(-EAGAIN, xrecv(fd, &c, 1, 0));
	dt = gnt_now_ms() - t0;
	EXPECT_LE(950, dt);
	/* Generous: the guests share two emulated CPUs. */
	EXPECT_GE(15000, dt);
	close(fd);
}

/*
 * A receive buffer with an unmapped page: EFAULT and the record stays
 * queued (vsock_test: invalid receive buffer; vsock gives ENOMEM and
 * drops the record, AF_GNTSOCK loses nothing).
 */
TEST_F_TIMEOUT(sock, seqpacket_invalid_rcv_buffer, 60)
{
	size_t pg = (size_t)getpagesize(), sz = 3 * pg;
	char *a = malloc(sz), *b = malloc(sz), *broken, *valid;
	size_t i;
	int fd, fl;

	NEED_PEER();
	ASSERT_TRUE(a && b);
	memset(a, 'a', sz);
	memset(b, 'b', sz);
	fd = sconnect(SOCK_SEQPACKET, self->peer, GNTSOCK_PEER_PORT_SEQ_ECHO);
	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)sz, xsend(fd, a, sz, 0));
	ASSERT_EQ((ssize_t)sz, xsend(fd, b, sz, 0));
	broken = mmap(NULL, sz, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, broken);
	ASSERT_EQ(0, munmap(broken + pg, pg));
	valid = malloc(sz);
	ASSERT_TRUE(valid != NULL);
	/* Wait for both records before the faulting read. */
	ASSERT_EQ((ssize_t)sz, seq_recvmsg(fd, valid, sz, MSG_PEEK, &fl));
	EXPECT_EQ(-EFAULT, xrecv(fd, broken, sz, 0));
	ASSERT_EQ((ssize_t)sz, xrecv(fd, valid, sz, 0));
	for (i = 0; i < sz && valid[i] == 'a'; i++)
		;
	EXPECT_EQ(sz, i) TH_LOG("first record lost or damaged at %zu", i);
	ASSERT_EQ((ssize_t)sz, xrecv(fd, valid, sz, 0));
	for (i = 0; i < sz && valid[i] == 'b'; i++)
		;
	EXPECT_EQ(sz, i);
	munmap(broken, pg);
	munmap(broken + 2 * pg, pg);
	free(valid);
	free(a);
	free(b);
	close(fd);
}

/* An invalid send buffer: EFAULT, nothing of it is sent. */
TEST_F_TIMEOUT(sock, seqpacket_invalid_send_buffer, 60)
{
	char buf[16];
	int fd, fl;

	NEED_PEER();
	fd = sconnect(SOCK_SEQPACKET, self->peer, GNTSOCK_PEER_PORT_SEQ_ECHO);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EFAULT, xsend(fd, (void *)16, 100000, 0));
	ASSERT_EQ(5, xsend(fd, "hello", 5, 0));
	ASSERT_EQ(5, seq_recvmsg(fd, buf, sizeof(buf), 0, &fl));
	EXPECT_EQ(0, memcmp(buf, "hello", 5));
	EXPECT_EQ(-EAGAIN, xrecv(fd, buf, sizeof(buf), MSG_DONTWAIT));
	close(fd);
}

/* MSG_PEEK leaves the record; MSG_DONTWAIT on none gives EAGAIN. */
TEST_F_TIMEOUT(sock, seqpacket_peek_dontwait, 60)
{
	char buf[64];
	int fd, fl;

	NEED_PEER();
	fd = sconnect(SOCK_SEQPACKET, self->peer, GNTSOCK_PEER_PORT_SEQ_ECHO);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EAGAIN, xrecv(fd, buf, sizeof(buf), MSG_DONTWAIT));
	ASSERT_EQ(10, xsend(fd, "0123456789", 10, MSG_EOR));
	ASSERT_EQ(4, seq_recvmsg(fd, buf, 4, MSG_PEEK, &fl));
	EXPECT_TRUE(fl & MSG_TRUNC);
	ASSERT_EQ(10, seq_recvmsg(fd, buf, sizeof(buf), MSG_PEEK, &fl));
	EXPECT_TRUE(fl & MSG_EOR);
	ASSERT_EQ(10, inq(fd));
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ(10, seq_recvmsg(fd, buf, sizeof(buf), MSG_DONTWAIT, &fl));
	EXPECT_EQ(0, memcmp(buf, "0123456789", 10));
	EXPECT_EQ(0, inq(fd));
	EXPECT_EQ(-EAGAIN, xrecv(fd, buf, sizeof(buf), MSG_DONTWAIT));
	close(fd);
}

/* Types do not mix: a SEQPACKET connect to a STREAM listener is refused
 * (reset, as vsock reports a refused connect).
 */
TEST_F(sock, seqpacket_type_mismatch_refused)
{
	NEED_PEER();
	EXPECT_EQ(-ECONNRESET, sconnect(SOCK_SEQPACKET, self->peer,
					  GNTSOCK_PEER_PORT_ECHO));
	EXPECT_EQ(-ECONNRESET, sconnect(SOCK_STREAM, self->peer,
					  GNTSOCK_PEER_PORT_SEQ_ECHO));
	EXPECT_EQ(-ESOCKTNOSUPPORT, -(socket(AF_GNTSOCK, SOCK_DGRAM, 0) < 0 ?
				     errno : 0));
}

/* Peer's shutdown: records queued before it are read, then 0. */
TEST_F_TIMEOUT(sock, seqpacket_eof_after_records, 60)
{
	char buf[16];
	int fd, fl;

	NEED_PEER();
	fd = sconnect(SOCK_SEQPACKET, self->peer, GNTSOCK_PEER_PORT_SEQ_ECHO);
	ASSERT_LE(0, fd);
	ASSERT_EQ(3, xsend(fd, "abc", 3, 0));
	ASSERT_EQ(3, seq_recvmsg(fd, buf, sizeof(buf), MSG_PEEK, &fl));
	ASSERT_EQ(0, shutdown(fd, SHUT_WR));
	EXPECT_EQ(-EPIPE, xsend(fd, "x", 1, 0));
	/* The echo service closes on our EOF. */
	EXPECT_EQ(3, xrecv(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(0, xrecv(fd, buf, sizeof(buf), 0));
	close(fd);
}

/* ---- both types ---------------------------------------------------- */

/* MSG_PEEK, also after a partial read (vsock_test: MSG_PEEK). */
TEST_F_TIMEOUT(sock, stream_msg_peek, 60)
{
	char buf[32];
	int fd;

	NEED_PEER();
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_ECHO);
	ASSERT_LE(0, fd);
	ASSERT_EQ(11, xsend(fd, "hello world", 11, 0));
	ASSERT_EQ(11, wait_inq(fd, 11, 10000));
	ASSERT_EQ(5, xrecv(fd, buf, 5, MSG_PEEK));
	EXPECT_EQ(0, memcmp(buf, "hello", 5));
	ASSERT_EQ(5, xrecv(fd, buf, 5, 0));
	EXPECT_EQ(0, memcmp(buf, "hello", 5));
	ASSERT_EQ(6, xrecv(fd, buf, sizeof(buf), MSG_PEEK));
	EXPECT_EQ(0, memcmp(buf, " world", 6));
	ASSERT_EQ(6, xrecv(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(0, memcmp(buf, " world", 6));
	close(fd);
}

TEST_F_TIMEOUT(sock, stream_dontwait, 60)
{
	char buf[8];
	int fd;

	NEED_PEER();
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_HOLD);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EAGAIN, xrecv(fd, buf, sizeof(buf), MSG_DONTWAIT));
	close(fd);
}

/* MSG_WAITALL waits for the whole length over many messages. */
TEST_F_TIMEOUT(sock, stream_waitall, 60)
{
	struct gnt_source_req req = { .nbytes = gnt_le64(300000),
				      .seed = gnt_le64(9) };
	char *buf = malloc(300000), scratch[256];
	int fd;

	NEED_PEER();
	ASSERT_TRUE(buf != NULL);
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_SOURCE);
	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)sizeof(req), xsend(fd, &req, sizeof(req), 0));
	ASSERT_EQ(300000, xrecv(fd, buf, 300000, MSG_WAITALL));
	EXPECT_EQ(-1, gnt_pattern_check(9, 0, buf, 300000, scratch,
					sizeof(scratch)));
	free(buf);
	close(fd);
}

/* poll() honours SO_RCVLOWAT (vsock_test: poll() + SO_RCVLOWAT). */
TEST_F_TIMEOUT(sock, stream_poll_rcvlowat, 60)
{
	int lowat = 128, fd, ev;
	char buf[128];

	NEED_PEER();
	memset(buf, 'l', sizeof(buf));
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_ECHO);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat,
				sizeof(lowat)));
	ASSERT_EQ(1, xsend(fd, buf, 1, 0));
	ASSERT_EQ(1, wait_inq(fd, 1, 10000));
	EXPECT_EQ(0, gnt_poll1(fd, POLLIN | POLLRDNORM, 500));
	ASSERT_EQ(127, xsend(fd, buf, 127, 0));
	ev = gnt_poll1(fd, POLLIN | POLLRDNORM, 10000);
	EXPECT_EQ(POLLIN | POLLRDNORM, ev);
	EXPECT_EQ(128, xrecv(fd, buf, sizeof(buf), MSG_DONTWAIT));
	close(fd);
}

/* In a child: wait until the parent sleeps (state S in its
 * /proc/PID/stat), @ms at most. Return: 0, or -1 if it never did.
 */
static int wait_parent_asleep(int ms)
{
	char path[64], buf[512], *p;
	int64_t end = gnt_now_ms() + ms;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)getppid());
	do {
		/* (the state follows the command name's closing bracket) */
		if (gnt_read_file(path, buf, sizeof(buf)) >= 0 &&
		    (p = strrchr(buf, ')')) && p[1] == ' ' && p[2] == 'S')
			return 0;
		gnt_sleep_ms(20);
	} while (gnt_now_ms() < end);
	return -1;
}

/* Lowering SO_RCVLOWAT below what is queued wakes a poll() that waits
 * for the old mark, as TCP does: nothing else may come to wake it. (A
 * poll() that is not woken still reports POLLIN when its timeout ends,
 * as it looks once more: so it must end well before its 20 s.)
 */
TEST_F_TIMEOUT(sock, stream_rcvlowat_lowered_wakes_poll, 60)
{
	int lowat = 128, one = 1, fd, ev, status;
	int64_t t0;
	pid_t pid;

	NEED_PEER();
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_ECHO);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat,
				sizeof(lowat)));
	ASSERT_EQ(1, xsend(fd, "l", 1, 0));
	ASSERT_EQ(1, wait_inq(fd, 1, 10000));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* The same socket, lowered once the parent sleeps in poll()
		 * (2 if it was never seen asleep: the test proves nothing).
		 */
		_exit(wait_parent_asleep(3000) ? 2 :
		      setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one,
				 sizeof(one)) ? 1 : 0);
	}
	t0 = gnt_now_ms();
	ev = gnt_poll1(fd, POLLIN | POLLRDNORM, 20000);
	EXPECT_EQ(POLLIN | POLLRDNORM, ev);
	EXPECT_GT(15000, gnt_now_ms() - t0) TH_LOG("not woken");
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	close(fd);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
		SKIP(return, "never saw this process asleep in poll()");
	EXPECT_EQ(0, status);
}

TEST_F_TIMEOUT(sock, stream_rcvtimeo, 60)
{
	struct timeval tv = { .tv_sec = 1 };
	int64_t t0, dt;
	char c;
	int fd;

	NEED_PEER();
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_HOLD);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	t0 = gnt_now_ms();
	EXPECT_EQ(-EAGAIN, xrecv(fd, &c, 1, 0));
	dt = gnt_now_ms() - t0;
	EXPECT_LE(950, dt);
	/* Generous: the guests share two emulated CPUs. */
	EXPECT_GE(15000, dt);
	close(fd);
}

/* SO_SNDTIMEO: a writer without credit gives up after the timeout. */
TEST_F_TIMEOUT(sock, sndtimeo_without_credit, 60)
{
	struct timeval tv = { .tv_sec = 1 };
	static char buf[65536];
	size_t total = 0;
	int64_t t0, dt;
	ssize_t n;
	int type, fd;

	NEED_PEER();
	for (type = SOCK_STREAM; type <= SOCK_SEQPACKET;
	     type += SOCK_SEQPACKET - SOCK_STREAM) {
		fd = sconnect(type, self->peer, type == SOCK_STREAM ?
			      GNTSOCK_PEER_PORT_HOLD :
			      GNTSOCK_PEER_PORT_SEQ_HOLD);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv,
					sizeof(tv)));
		total = 0;
		for (;;) {
			t0 = gnt_now_ms();
			n = xsend(fd, buf, sizeof(buf), 0);
			if (n < 0)
				break;
			total += n;
			ASSERT_GE(GNTSOCK_BUFFER_SIZE_DEFAULT, total);
		}
		dt = gnt_now_ms() - t0;
		EXPECT_EQ(-EAGAIN, n);
		EXPECT_LE(950, dt);
		EXPECT_GE(15000, dt);
		EXPECT_EQ(GNTSOCK_BUFFER_SIZE_DEFAULT, total);
		EXPECT_EQ((int)total, outq(fd));
		close(fd);
	}
}

/*
 * connect() takes the sender's lock (a connect must not move the socket to
 * another link under a sender's feet), but a connected socket still answers
 * EISCONN at once while another process is blocked in send() on it.
 */
TEST_F_TIMEOUT(sock, connect_while_a_sender_waits, 60)
{
	struct sockaddr_gnt a;
	struct timeval tv = { 0 };
	static char buf[65536];
	uint64_t filled;
	int64_t t0, dt;
	pid_t pid;
	int fd, st, ret, err;

	NEED_PEER();
	a = gnt_addr(self->peer, GNTSOCK_PEER_PORT_HOLD);
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_HOLD);
	ASSERT_LE(0, fd);
	ASSERT_LE(0, gnt_fill_credit(fd, buf, sizeof(buf), 30000, &filled));
	/* No timeout: the child blocks in send() until it is killed. */
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		send(fd, buf, sizeof(buf), 0);
		_exit(0);
	}
	usleep(500000);
	t0 = gnt_now_ms();
	ret = connect(fd, (struct sockaddr *)&a, sizeof(a));
	err = errno;
	dt = gnt_now_ms() - t0;
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EISCONN, err);
	EXPECT_GE(2000, dt);
	EXPECT_EQ(0, waitpid(pid, &st, WNOHANG)) TH_LOG("the sender did not block");
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	close(fd);
}

/* SO_LINGER: close() waits while the peer has not read our data. */
TEST_F_TIMEOUT(sock, so_linger_unread, 60)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 2 };
	char buf[4096] = { 0 };
	int64_t t0, dt;
	int fd;

	NEED_PEER();
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_HOLD);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	ASSERT_EQ(4096, xsend(fd, buf, sizeof(buf), 0));
	t0 = gnt_now_ms();
	ASSERT_EQ(0, close(fd));
	dt = gnt_now_ms() - t0;
	EXPECT_LE(1900, dt);
	EXPECT_GE(20000, dt);
}

/* SO_LINGER: close() returns once the peer read everything. */
TEST_F_TIMEOUT(sock, so_linger_consumed, 60)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 15 };
	static char buf[200000];
	int64_t t0, dt;
	int fd;

	NEED_PEER();
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_SINK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	ASSERT_EQ(0, gnt_send_all(fd, buf, sizeof(buf), NULL));
	t0 = gnt_now_ms();
	ASSERT_EQ(0, close(fd));
	dt = gnt_now_ms() - t0;
	/* Well before l_linger (15 s) runs out. */
	EXPECT_GE(12000, dt);
	/* Without SO_LINGER close() never waits. */
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_HOLD);
	ASSERT_LE(0, fd);
	ASSERT_EQ(4096, xsend(fd, buf, 4096, 0));
	t0 = gnt_now_ms();
	ASSERT_EQ(0, close(fd));
	EXPECT_GE(1900, gnt_now_ms() - t0);
}

/* Closing with unread received data frees it and leaves no socket. The
 * source has more to send than our buffer takes, so it is still connected
 * (a peer that closed takes the connection out of /proc at once).
 */
TEST_F_TIMEOUT(sock, close_with_unread_data, 60)
{
	struct gnt_source_req req = { .nbytes = gnt_le64(4000000),
				      .seed = gnt_le64(1) };
	struct sockaddr_gnt a;
	socklen_t l = sizeof(a);
	int fd;

	NEED_PEER();
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_SOURCE);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, getsockname(fd, (void *)&a, &l));
	ASSERT_EQ((ssize_t)sizeof(req), xsend(fd, &req, sizeof(req), 0));
	ASSERT_LE(1000, wait_inq(fd, 1000, 10000));
	ASSERT_EQ(1, proc_port_lines(a.sgnt_port, "STREAM", "ESTABLISHED"));
	ASSERT_EQ(0, close(fd));
	EXPECT_EQ(0, wait_port_gone(a.sgnt_port, 5000));
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_ECHO);
	ASSERT_LE(0, fd);
	ASSERT_EQ(2, xsend(fd, "ok", 2, 0));
	ASSERT_EQ(2, xrecv(fd, &a, 2, 0));
	close(fd);
}

/* Non-blocking connect: EINPROGRESS, poll, then SO_ERROR. */
TEST_F_TIMEOUT(sock, nonblocking_connect, 60)
{
	struct sockaddr_gnt a = gnt_addr(self->peer, GNTSOCK_PEER_PORT_ECHO);
	int fd, err, ev;
	socklen_t l = sizeof(err);

	NEED_PEER();
	fd = socket(AF_GNTSOCK, SOCK_STREAM | SOCK_NONBLOCK, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(-1, connect(fd, (void *)&a, sizeof(a)));
	ASSERT_EQ(EINPROGRESS, errno);
	ev = gnt_poll1(fd, POLLOUT, 10000);
	EXPECT_TRUE(ev & POLLOUT);
	EXPECT_FALSE(ev & POLLERR);
	ASSERT_EQ(0, getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l));
	EXPECT_EQ(0, err);
	EXPECT_EQ(-1, connect(fd, (void *)&a, sizeof(a)));
	EXPECT_EQ(EISCONN, errno);
	close(fd);

	a.sgnt_port = GNTSOCK_PEER_PORT_UNUSED;
	fd = socket(AF_GNTSOCK, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(-1, connect(fd, (void *)&a, sizeof(a)));
	ASSERT_EQ(EINPROGRESS, errno);
	ev = gnt_poll1(fd, POLLOUT, 10000);
	EXPECT_TRUE(ev & POLLERR);
	ASSERT_EQ(0, getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l));
	EXPECT_EQ(ECONNRESET, err);
	close(fd);
}

/* A failed connect can be retried on the same socket. */
TEST_F_TIMEOUT(sock, connect_retry_after_failure, 60)
{
	struct sockaddr_gnt a = gnt_addr(self->peer, GNTSOCK_PEER_PORT_UNUSED);
	char buf[4];
	int fd;

	NEED_PEER();
	fd = socket(AF_GNTSOCK, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, gnt_set_timeouts(fd, IO_TIMEOUT_S));
	ASSERT_EQ(-1, connect(fd, (void *)&a, sizeof(a)));
	ASSERT_EQ(ECONNRESET, errno);
	a.sgnt_port = GNTSOCK_PEER_PORT_ECHO;
	ASSERT_EQ(0, connect(fd, (void *)&a, sizeof(a)));
	ASSERT_EQ(4, xsend(fd, "ping", 4, 0));
	ASSERT_EQ(4, xrecv(fd, buf, 4, MSG_WAITALL));
	EXPECT_EQ(0, memcmp(buf, "ping", 4));
	close(fd);
}

/* The connect timeout option: default, range, round trip. */
TEST_F(sock, connect_timeout_option)
{
	struct timeval tv;
	socklen_t l = sizeof(tv);
	int fd;

	NEED_PEER();
	fd = socket(AF_GNTSOCK, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, getsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_CONNECT_TIMEOUT,
				&tv, &l));
	EXPECT_EQ(2, tv.tv_sec);
	EXPECT_EQ(0, tv.tv_usec);
	tv.tv_sec = 1;
	tv.tv_usec = 500000;
	ASSERT_EQ(0, setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_CONNECT_TIMEOUT,
				&tv, sizeof(tv)));
	memset(&tv, 0, sizeof(tv));
	ASSERT_EQ(0, getsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_CONNECT_TIMEOUT,
				&tv, &l));
	EXPECT_EQ(1, tv.tv_sec);
	EXPECT_EQ(500000, tv.tv_usec);
	tv.tv_usec = 1000000;
	EXPECT_EQ(-1, setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_CONNECT_TIMEOUT,
				 &tv, sizeof(tv)));
	EXPECT_EQ(ERANGE, errno);
	EXPECT_EQ(-1, setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_CONNECT_TIMEOUT,
				 &tv, 4));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
}

/* Both variants of the connect timeout option, as vsock's
 * SO_VM_SOCKETS_CONNECT_TIMEOUT_OLD/_NEW: _OLD takes a struct timeval of
 * the caller's ABI (what the plain name means on 64-bit), _NEW a struct
 * __kernel_sock_timeval (64-bit seconds everywhere); each reads back what
 * either set.
 */
TEST_F(sock, connect_timeout_old_new)
{
	struct __kernel_sock_timeval nt = { 0 };
	struct timeval ot = { 0 };
	socklen_t l;
	int fd;

	NEED_PEER();
	EXPECT_EQ(GNTSOCK_SO_CONNECT_TIMEOUT_OLD, GNTSOCK_SO_CONNECT_TIMEOUT);
	fd = socket(AF_GNTSOCK, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	l = sizeof(nt);
	ASSERT_EQ(0, getsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_CONNECT_TIMEOUT_NEW,
				&nt, &l)) TH_LOG("%s", strerror(errno));
	EXPECT_EQ(sizeof(nt), l);
	EXPECT_EQ(2, nt.tv_sec);
	EXPECT_EQ(0, nt.tv_usec);
	nt.tv_sec = 3;
	nt.tv_usec = 500000;	/* whole jiffies for any HZ dividing 1000 */
	ASSERT_EQ(0, setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_CONNECT_TIMEOUT_NEW,
				&nt, sizeof(nt))) TH_LOG("%s", strerror(errno));
	l = sizeof(ot);
	ASSERT_EQ(0, getsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_CONNECT_TIMEOUT_OLD,
				&ot, &l));
	EXPECT_EQ(sizeof(ot), l);
	EXPECT_EQ(3, ot.tv_sec);
	EXPECT_EQ(500000, ot.tv_usec);
	ot.tv_sec = 1;
	ot.tv_usec = 0;
	ASSERT_EQ(0, setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_CONNECT_TIMEOUT_OLD,
				&ot, sizeof(ot)));
	memset(&nt, 0xff, sizeof(nt));
	l = sizeof(nt);
	ASSERT_EQ(0, getsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_CONNECT_TIMEOUT_NEW,
				&nt, &l));
	EXPECT_EQ(1, nt.tv_sec);
	EXPECT_EQ(0, nt.tv_usec);
	/* Limits as for _OLD. */
	nt.tv_sec = -1;
	EXPECT_EQ(-1, setsockopt(fd, SOL_GNTSOCK,
				 GNTSOCK_SO_CONNECT_TIMEOUT_NEW, &nt,
				 sizeof(nt)));
	EXPECT_EQ(ERANGE, errno);
	nt.tv_sec = 0;
	nt.tv_usec = 1000000;
	EXPECT_EQ(-1, setsockopt(fd, SOL_GNTSOCK,
				 GNTSOCK_SO_CONNECT_TIMEOUT_NEW, &nt,
				 sizeof(nt)));
	EXPECT_EQ(ERANGE, errno);
	EXPECT_EQ(-1, setsockopt(fd, SOL_GNTSOCK,
				 GNTSOCK_SO_CONNECT_TIMEOUT_NEW, &nt, 8));
	EXPECT_EQ(EINVAL, errno);
	l = 8;
	EXPECT_EQ(-1, getsockopt(fd, SOL_GNTSOCK,
				 GNTSOCK_SO_CONNECT_TIMEOUT_NEW, &nt, &l));
	EXPECT_EQ(EINVAL, errno);
	/* Still what _OLD set. */
	l = sizeof(ot);
	ASSERT_EQ(0, getsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_CONNECT_TIMEOUT_OLD,
				&ot, &l));
	EXPECT_EQ(1, ot.tv_sec);
	close(fd);
}

/* getsockname()/getpeername() and the peer domid option. */
TEST_F_TIMEOUT(sock, names_and_peer_domid, 60)
{
	struct sockaddr_gnt a;
	socklen_t l = sizeof(a);
	int fd, type, domid;
	socklen_t il = sizeof(domid);

	NEED_PEER();
	for (type = SOCK_STREAM; type <= SOCK_SEQPACKET;
	     type += SOCK_SEQPACKET - SOCK_STREAM) {
		fd = socket(AF_GNTSOCK, type, 0);
		ASSERT_LE(0, fd);
		EXPECT_EQ(-1, getpeername(fd, (void *)&a, &l));
		EXPECT_EQ(ENOTCONN, errno);
		EXPECT_EQ(-1, getsockopt(fd, SOL_GNTSOCK,
					 GNTSOCK_SO_PEER_DOMID, &domid, &il));
		EXPECT_EQ(ENOTCONN, errno);
		close(fd);
		fd = sconnect(type, self->peer, type == SOCK_STREAM ?
			      GNTSOCK_PEER_PORT_ECHO :
			      GNTSOCK_PEER_PORT_SEQ_ECHO);
		ASSERT_LE(0, fd);
		l = sizeof(a);
		ASSERT_EQ(0, getpeername(fd, (void *)&a, &l));
		EXPECT_EQ(sizeof(a), l);
		EXPECT_EQ(AF_GNTSOCK, a.sgnt_family);
		EXPECT_EQ(self->peer_id, a.sgnt_domid);
		EXPECT_EQ(type == SOCK_STREAM ? (unsigned int)GNTSOCK_PEER_PORT_ECHO :
			  GNTSOCK_PEER_PORT_SEQ_ECHO, a.sgnt_port);
		l = sizeof(a);
		ASSERT_EQ(0, getsockname(fd, (void *)&a, &l));
		EXPECT_LE(49152U, a.sgnt_port);
		EXPECT_NE(GNTSOCK_DOMID_ANY, a.sgnt_domid);
		if (self->loopback)
			EXPECT_EQ(self->peer_id, a.sgnt_domid);
		ASSERT_EQ(0, getsockopt(fd, SOL_GNTSOCK,
					GNTSOCK_SO_PEER_DOMID, &domid, &il));
		EXPECT_EQ((int)self->peer_id, domid);
		close(fd);
	}
}

/* accept4() flags and the accepted socket's addresses. */
TEST_F_TIMEOUT(sock, accept4_flags, 60)
{
	struct sockaddr_gnt a;
	socklen_t l = sizeof(a);
	char hello[GNTSOCK_PEER_HELLO_LEN];
	int lfd, cfd, fl;

	NEED_PEER();
	lfd = listen_on(SOCK_STREAM, LISTEN_PORT, 4);
	ASSERT_LE(0, lfd);
	ASSERT_EQ(0, connect_back(self->peer, LISTEN_PORT));
	cfd = accept4(lfd, (void *)&a, &l, SOCK_NONBLOCK | SOCK_CLOEXEC);
	ASSERT_LE(0, cfd);
	EXPECT_EQ(self->peer_id, a.sgnt_domid);
	fl = fcntl(cfd, F_GETFL);
	EXPECT_TRUE(fl & O_NONBLOCK);
	EXPECT_TRUE(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
	ASSERT_EQ(0, gnt_set_nonblock(cfd, false));
	ASSERT_EQ(0, gnt_set_timeouts(cfd, IO_TIMEOUT_S));
	ASSERT_EQ(GNTSOCK_PEER_HELLO_LEN,
		  xrecv(cfd, hello, sizeof(hello), MSG_WAITALL));
	EXPECT_EQ(0, memcmp(hello, GNTSOCK_PEER_HELLO,
			    GNTSOCK_PEER_HELLO_LEN));
	l = sizeof(a);
	ASSERT_EQ(0, getsockname(cfd, (void *)&a, &l));
	EXPECT_EQ(LISTEN_PORT, (int)a.sgnt_port);
	/* Plain accept4 without flags: blocking, no CLOEXEC. */
	ASSERT_EQ(0, connect_back(self->peer, LISTEN_PORT));
	close(cfd);
	cfd = accept4(lfd, NULL, NULL, 0);
	ASSERT_LE(0, cfd);
	EXPECT_FALSE(fcntl(cfd, F_GETFL) & O_NONBLOCK);
	EXPECT_FALSE(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
	close(cfd);
	close(lfd);
}

/* The backlog bounds pending connections; close frees the queue. */
TEST_F_TIMEOUT(sock, listen_backlog_limit, 60)
{
	int lfd, i, ok = 0, ret = 0;

	NEED_PEER();
	lfd = listen_on(SOCK_STREAM, LISTEN_PORT + 1, 1);
	ASSERT_LE(0, lfd);
	for (i = 0; i < 5; i++) {
		ret = connect_back(self->peer, LISTEN_PORT + 1);
		if (ret)
			break;
		ok++;
	}
	EXPECT_EQ(ECONNRESET, ret);
	EXPECT_LE(1, ok);
	EXPECT_GE(2, ok);
	EXPECT_EQ(ok + 1, proc_port_lines(LISTEN_PORT + 1, "STREAM", NULL));
	close(lfd);
	EXPECT_EQ(0, wait_port_gone(LISTEN_PORT + 1, 5000))
		TH_LOG("queued connections outlive their listener");
}

TEST_F_TIMEOUT(sock, siocinq_siocoutq, 60)
{
	char buf[1000] = { 0 };
	int fd, type;

	NEED_PEER();
	for (type = SOCK_STREAM; type <= SOCK_SEQPACKET;
	     type += SOCK_SEQPACKET - SOCK_STREAM) {
		fd = sconnect(type, self->peer, type == SOCK_STREAM ?
			      GNTSOCK_PEER_PORT_HOLD :
			      GNTSOCK_PEER_PORT_SEQ_HOLD);
		ASSERT_LE(0, fd);
		EXPECT_EQ(0, inq(fd));
		EXPECT_EQ(0, outq(fd));
		ASSERT_EQ(1000, xsend(fd, buf, 1000, 0));
		EXPECT_EQ(1000, outq(fd));
		close(fd);
		fd = sconnect(type, self->peer, type == SOCK_STREAM ?
			      GNTSOCK_PEER_PORT_ECHO :
			      GNTSOCK_PEER_PORT_SEQ_ECHO);
		ASSERT_LE(0, fd);
		ASSERT_EQ(1000, xsend(fd, buf, 1000, 0));
		EXPECT_EQ(1000, wait_inq(fd, 1000, 10000));
		ASSERT_EQ(600, xrecv(fd, buf, 600, 0));
		EXPECT_EQ(type == SOCK_STREAM ? 400 : 0, inq(fd));
		close(fd);
	}
}

/* The buffer size option: default, min, max, errors. */
TEST_F(sock, buffer_size_option)
{
	uint64_t v;
	socklen_t l = sizeof(v);
	int fd;

	NEED_PEER();
	fd = socket(AF_GNTSOCK, SOCK_SEQPACKET, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, getsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUFFER_SIZE,
				&v, &l));
	EXPECT_EQ(GNTSOCK_BUFFER_SIZE_DEFAULT, v);
	v = GNTSOCK_BUFFER_SIZE_MIN - 1;
	EXPECT_EQ(-1, setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUFFER_SIZE,
				 &v, sizeof(v)));
	EXPECT_EQ(EINVAL, errno);
	v = GNTSOCK_BUFFER_SIZE_MAX + 1;
	EXPECT_EQ(-1, setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUFFER_SIZE,
				 &v, sizeof(v)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUFFER_SIZE,
				 &v, 4));
	EXPECT_EQ(EINVAL, errno);
	v = GNTSOCK_BUFFER_SIZE_MIN;
	EXPECT_EQ(0, setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUFFER_SIZE,
				&v, sizeof(v)));
	v = GNTSOCK_BUFFER_SIZE_MAX;
	EXPECT_EQ(0, setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUFFER_SIZE,
				&v, sizeof(v)));
	v = 0;
	ASSERT_EQ(0, getsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUFFER_SIZE,
				&v, &l));
	EXPECT_EQ(GNTSOCK_BUFFER_SIZE_MAX, v);
	EXPECT_EQ(-1, setsockopt(fd, SOL_GNTSOCK, 99, &v, sizeof(v)));
	EXPECT_EQ(ENOPROTOOPT, errno);
	close(fd);
}

/* In a child without capabilities (uid 65534): set option @name of a new
 * socket to @v (@len bytes). Return: 0 or the errno.
 */
static int set_opt_unprivileged(int name, const void *v, socklen_t len)
{
	pid_t pid = fork();
	int status, fd;

	if (pid < 0)
		return -errno;
	if (!pid) {
		if (setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534))
			_exit(200);
		fd = socket(AF_GNTSOCK, SOCK_STREAM, 0);
		if (fd < 0)
			_exit(201);
		if (setsockopt(fd, SOL_GNTSOCK, name, v, len))
			_exit(errno);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* net.gntsock.@name into @v. Return: 0, or -1 without it. */
static int gntsock_sysctl(const char *name, unsigned long *v)
{
	char path[96];
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/sys/net/gntsock/%s", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	n = fscanf(f, "%lu", v);
	fclose(f);
	return n == 1 ? 0 : -1;
}

static int set_buffer_unprivileged(uint64_t v)
{
	return set_opt_unprivileged(GNTSOCK_SO_BUFFER_SIZE, &v, sizeof(v));
}

static int set_polls_unprivileged(uint32_t v)
{
	return set_opt_unprivileged(GNTSOCK_SO_BUSY_POLL, &v, sizeof(v));
}

/*
 * Issue 12, defect 4: any user could set a 16 MiB receive buffer, which a
 * peer may fill. Above net.gntsock.buffer_size_max (default 1 MiB) it
 * takes CAP_NET_ADMIN (EPERM without), as SO_RCVBUFFORCE above rmem_max.
 */
TEST(buffer_size_above_max_needs_cap_net_admin)
{
	uint64_t v = GNTSOCK_BUFFER_SIZE_MAX;
	unsigned long max = 0;
	int fd;

	ASSERT_EQ(0, gntsock_sysctl("buffer_size_max", &max))
		TH_LOG("no sysctl net.gntsock.buffer_size_max");
	TH_LOG("buffer_size_max %lu", max);
	ASSERT_GT(GNTSOCK_BUFFER_SIZE_MAX, max)
		TH_LOG("the limit is the hard maximum: nothing to test");
	EXPECT_EQ(0, set_buffer_unprivileged(max));
	EXPECT_EQ(EPERM, set_buffer_unprivileged(max + 4096));
	EXPECT_EQ(EPERM, set_buffer_unprivileged(GNTSOCK_BUFFER_SIZE_MAX));
	EXPECT_EQ(0, set_buffer_unprivileged(GNTSOCK_BUFFER_SIZE_MIN));
	/* root (CAP_NET_ADMIN) may */
	fd = socket(AF_GNTSOCK, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUFFER_SIZE, &v,
				sizeof(v)));
	close(fd);
}

/*
 * GNTSOCK_SO_BUSY_POLL: up to net.gntsock.busy_poll (default 0) any user
 * may set it; more takes CAP_NET_ADMIN (EPERM without), as SO_BUSY_POLL
 * above net.core.busy_read. Above GNTSOCK_BUSY_POLL_MAX is EINVAL for
 * anyone; the value reads back.
 */
TEST(busy_poll_above_sysctl_needs_cap_net_admin)
{
	uint32_t v = 1000, back = 0, over = GNTSOCK_BUSY_POLL_MAX + 1;
	socklen_t len = sizeof(back);
	unsigned long def = 1;
	int fd;

	ASSERT_EQ(0, gntsock_sysctl("busy_poll", &def))
		TH_LOG("no sysctl net.gntsock.busy_poll");
	ASSERT_EQ(0UL, def) TH_LOG("busy_poll is %lu, not its default", def);
	EXPECT_EQ(0, set_polls_unprivileged(0));
	EXPECT_EQ(EPERM, set_polls_unprivileged(1));
	EXPECT_EQ(EPERM, set_polls_unprivileged(GNTSOCK_BUSY_POLL_MAX));
	EXPECT_EQ(EINVAL, set_polls_unprivileged(over));
	fd = socket(AF_GNTSOCK, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, getsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUSY_POLL, &back,
				&len));
	EXPECT_EQ(0U, back);
	/* root (CAP_NET_ADMIN) may */
	EXPECT_EQ(0, setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUSY_POLL, &v,
				sizeof(v)));
	EXPECT_EQ(0, getsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUSY_POLL, &back,
				&len));
	EXPECT_EQ(v, back);
	EXPECT_EQ(-1, setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUSY_POLL, &over,
				 sizeof(over)));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
}

/* STREAM: bad user buffers give EFAULT and lose nothing. */
TEST_F_TIMEOUT(sock, stream_invalid_buffers, 60)
{
	char buf[16];
	int fd;

	NEED_PEER();
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_ECHO);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EFAULT, xsend(fd, (void *)16, 4096, 0));
	ASSERT_EQ(5, xsend(fd, "hello", 5, 0));
	ASSERT_EQ(5, wait_inq(fd, 5, 10000));
	EXPECT_EQ(-EFAULT, xrecv(fd, (void *)16, 5, 0));
	EXPECT_EQ(5, inq(fd));
	ASSERT_EQ(5, xrecv(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(0, memcmp(buf, "hello", 5));
	close(fd);
}

TEST_F(sock, double_bind)
{
	struct sockaddr_gnt a = gnt_addr(GNTSOCK_DOMID_ANY, LISTEN_PORT + 2);
	int fd, fd2;

	NEED_PEER();
	fd = socket(AF_GNTSOCK, SOCK_STREAM, 0);
	fd2 = socket(AF_GNTSOCK, SOCK_SEQPACKET, 0);
	ASSERT_LE(0, fd);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, bind(fd, (void *)&a, sizeof(a)));
	a.sgnt_port++;
	EXPECT_EQ(-1, bind(fd, (void *)&a, sizeof(a)));
	EXPECT_EQ(EINVAL, errno);
	a.sgnt_port--;
	EXPECT_EQ(-1, bind(fd2, (void *)&a, sizeof(a)));
	EXPECT_EQ(EADDRINUSE, errno);
	a.sgnt_domid = self->peer_id;
	if (!self->loopback) {
		EXPECT_EQ(-1, bind(fd2, (void *)&a, sizeof(a)));
		EXPECT_EQ(EADDRNOTAVAIL, errno);
	}
	close(fd);
	close(fd2);
}

/* SHUT_RD: reads return 0 at once; the socket still sends. */
TEST_F_TIMEOUT(sock, shutdown_rd, 60)
{
	struct gnt_sink_reply r;
	char c;
	int fd;

	NEED_PEER();
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_SINK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, shutdown(fd, SHUT_RD));
	EXPECT_EQ(0, xrecv(fd, &c, 1, 0));
	EXPECT_TRUE(gnt_poll1(fd, POLLIN | POLLRDHUP, 0) & POLLRDHUP);
	ASSERT_EQ(3, xsend(fd, "abc", 3, 0));
	ASSERT_EQ(0, shutdown(fd, SHUT_WR));
	/* The SINK's reply is dropped: we shut reading down. */
	EXPECT_EQ(0, xrecv(fd, &r, sizeof(r), 0));
	close(fd);
}

/* SHUT_WR: EPIPE on send; the peer sees EOF and still answers. */
TEST_F_TIMEOUT(sock, shutdown_wr, 60)
{
	struct gnt_sink_reply r;
	int fd;

	NEED_PEER();
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_SINK);
	ASSERT_LE(0, fd);
	ASSERT_EQ(3, xsend(fd, "abc", 3, 0));
	ASSERT_EQ(0, shutdown(fd, SHUT_WR));
	EXPECT_EQ(-EPIPE, xsend(fd, "d", 1, 0));
	ASSERT_EQ(0, gnt_recv_all(fd, &r, sizeof(r), NULL));
	EXPECT_EQ(3U, gnt_le64(r.bytes));
	EXPECT_EQ(gnt_fnv1a64(GNT_FNV1A64_INIT, "abc", 3),
		  gnt_le64(r.checksum));
	EXPECT_EQ(0, gnt_expect_eof(fd));
	close(fd);
}

/* ---- vsock_test.c's remaining cases -------------------------------- */

/* Connecting to a port nobody listens on (vsock: connection reset). */
TEST_F(sock, vsock_connection_refused)
{
	NEED_PEER();
	EXPECT_EQ(-ECONNRESET, sconnect(SOCK_STREAM, self->peer,
					  GNTSOCK_PEER_PORT_UNUSED));
	EXPECT_EQ(-ECONNRESET, sconnect(SOCK_SEQPACKET, self->peer,
					  GNTSOCK_PEER_PORT_UNUSED));
}

/* A port that is bound but not listening refuses: ECONNRESET (vsock: bind
 * only).
 */
TEST_F(sock, vsock_bind_only)
{
	struct sockaddr_gnt a = gnt_addr(GNTSOCK_DOMID_ANY, LISTEN_PORT + 3);
	int fd;

	NEED_PEER();
	fd = socket(AF_GNTSOCK, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, bind(fd, (void *)&a, sizeof(a)));
	EXPECT_EQ(ECONNRESET, connect_back(self->peer, LISTEN_PORT + 3));
	close(fd);
}

/* The peer sends and closes: data, then EOF (vsock: server close). */
TEST_F_TIMEOUT(sock, vsock_server_close, 60)
{
	struct gnt_source_req req = { .nbytes = gnt_le64(1),
				      .seed = gnt_le64(5) };
	unsigned char c;
	int fd, ev;

	NEED_PEER();
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_SOURCE);
	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)sizeof(req), xsend(fd, &req, sizeof(req), 0));
	ev = gnt_poll1(fd, POLLIN | POLLRDHUP, 10000);
	EXPECT_TRUE(ev & POLLIN);
	if (!(ev & POLLRDHUP))	/* the data may come first */
		ev = gnt_poll1(fd, POLLRDHUP, 10000);
	EXPECT_TRUE(ev & POLLRDHUP);
	ASSERT_EQ(1, xrecv(fd, &c, 1, 0));
	EXPECT_EQ(gnt_pattern_byte(5, 0), c);
	EXPECT_EQ(0, xrecv(fd, &c, 1, 0));
	close(fd);
}

/* We close; the peer sees EOF and ends (vsock: client close). */
TEST_F_TIMEOUT(sock, vsock_client_close, 60)
{
	struct sockaddr_gnt a;
	socklen_t l = sizeof(a);
	int lfd, cfd, ev;
	char hello[GNTSOCK_PEER_HELLO_LEN];

	NEED_PEER();
	lfd = listen_on(SOCK_STREAM, LISTEN_PORT + 4, 4);
	ASSERT_LE(0, lfd);
	ASSERT_EQ(0, connect_back(self->peer, LISTEN_PORT + 4));
	cfd = accept(lfd, (void *)&a, &l);
	ASSERT_LE(0, cfd);
	ASSERT_EQ(0, gnt_set_timeouts(cfd, IO_TIMEOUT_S));
	ASSERT_EQ(0, gnt_recv_all(cfd, hello, sizeof(hello), NULL));
	/* The peer echoes until EOF: shut our side, it closes its end. */
	ASSERT_EQ(1, xsend(cfd, "x", 1, 0));
	ASSERT_EQ(0, shutdown(cfd, SHUT_WR));
	ev = gnt_poll1(cfd, POLLRDHUP, 10000);
	EXPECT_TRUE(ev & POLLRDHUP);
	ASSERT_EQ(1, xrecv(cfd, hello, 1, 0));
	EXPECT_EQ(0, xrecv(cfd, hello, 1, 0));
	EXPECT_EQ(-EPIPE, xsend(cfd, "y", 1, 0));
	close(cfd);
	close(lfd);
}

#define CLOSE_RACE_TRIES	100
#define CLOSE_RACE_EPOLLS	256

/* Add @fd to the epoll instances @ep, CLOSE_RACE_EPOLLS at most, until
 * shortly after its peer's close shows. Return: how many.
 */
static int add_until_closed(int fd, const int *ep)
{
	struct epoll_event e = { .events = EPOLLRDHUP };
	int k;

	for (k = 0; k < CLOSE_RACE_EPOLLS; k++) {
		if (epoll_ctl(ep[k], EPOLL_CTL_ADD, fd, &e))
			return -errno;
		if (k % 16 == 15 && gnt_poll1(fd, POLLRDHUP, 0) & POLLRDHUP)
			return k + 1;
	}
	return k;
}

/*
 * The peer's close is seen by every epoll that registers the socket as it
 * comes: poll() must join the socket's wait queue before it reads the
 * socket's state, or a change between the two wakes nobody, and a waiter
 * that saw no change sleeps through the end of the connection.
 * vsock_test's "server close" and "client close" failed that way, in about
 * one run of 25: on the domain's single vCPU, the receive work that takes
 * the close ran at the allocation in epoll_ctl() between the two.
 *
 * The window is a few microseconds of each epoll_ctl(), so many are made
 * to meet the close: we shut our side, and while the peer's ECHO answers
 * with its close (a round trip), we add the socket to one epoll instance
 * after the other. Once poll() sees the close, every instance must
 * report it (epoll_wait() looks only at what was woken): one that does
 * not within 5 s missed its wake-up, for good. On the kernel with
 * the defect, about one try in ten missed one.
 */
TEST_F_TIMEOUT(sock, peer_close_seen_by_an_epoll_registering_meanwhile, 240)
{
	int fd, ep[CLOSE_RACE_EPOLLS], i, k, n, missed = 0, tries = 0;
	int before = 0, after = 0;
	struct epoll_event e;
	char c;

	NEED_PEER();
	for (k = 0; k < CLOSE_RACE_EPOLLS; k++) {
		ep[k] = epoll_create1(EPOLL_CLOEXEC);
		ASSERT_LE(0, ep[k]);
	}
	for (i = 0; i < CLOSE_RACE_TRIES && missed < 3; i++, tries++) {
		fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_ECHO);
		ASSERT_LE(0, fd);
		ASSERT_EQ(1, xsend(fd, "\1", 1, 0));
		ASSERT_EQ(0, shutdown(fd, SHUT_WR));
		/* (where the close came: before the adds, or after them) */
		if (gnt_poll1(fd, POLLRDHUP, 0) & POLLRDHUP)
			before++;
		n = add_until_closed(fd, ep);
		ASSERT_LT(0, n) TH_LOG("epoll_ctl: %s", strerror(-n));
		if (n == CLOSE_RACE_EPOLLS &&
		    !(gnt_poll1(fd, POLLRDHUP, 0) & POLLRDHUP))
			after++;
		EXPECT_TRUE(gnt_poll1(fd, POLLRDHUP, 5000) & POLLRDHUP)
			TH_LOG("try %d: no close in 5 s", i);
		/* (not at once: on more than one CPU the waker may still be
		 * walking the wait queue; a lost wake-up never comes)
		 */
		for (k = 0; k < n; k++) {
			if (epoll_wait(ep[k], &e, 1, 5000) != 1) {
				missed++;
				TH_LOG("try %d: epoll %d of %d missed the close",
				       i, k, n);
			}
			ASSERT_EQ(0, epoll_ctl(ep[k], EPOLL_CTL_DEL, fd, NULL));
		}
		/* The byte echoed, then the end. */
		EXPECT_EQ(1, xrecv(fd, &c, 1, 0));
		EXPECT_EQ(1, c);
		EXPECT_EQ(0, xrecv(fd, &c, 1, 0));
		close(fd);
	}
	for (k = 0; k < CLOSE_RACE_EPOLLS; k++)
		close(ep[k]);
	/* (a try the close met before or after the adds proves nothing) */
	TH_LOG("%d tries, the close came during the adds in %d", tries,
	       tries - before - after);
	EXPECT_EQ(0, missed);
	if (!missed && tries - before - after < CLOSE_RACE_TRIES / 10)
		SKIP(return, "the close came during the adds in %d tries only",
		     tries - before - after);
}

/* Many connections one after the other (vsock: multiple connections). */
TEST_F_TIMEOUT(sock, vsock_multiple_connections, 120)
{
	int i, fd;
	char c;

	NEED_PEER();
	for (i = 0; i < 100; i++) {
		fd = sconnect(i % 2 ? SOCK_SEQPACKET : SOCK_STREAM, self->peer,
			      i % 2 ? GNTSOCK_PEER_PORT_SEQ_ECHO :
			      GNTSOCK_PEER_PORT_ECHO);
		ASSERT_LE(0, fd) TH_LOG("connection %d", i);
		c = (char)i;
		ASSERT_EQ(1, xsend(fd, &c, 1, 0));
		ASSERT_EQ(1, xrecv(fd, &c, 1, 0));
		EXPECT_EQ((char)i, c);
		close(fd);
	}
}

/* ---- a closed connection leaves the connection table ------------- */

/* Connect from local port @port to (@domid, @to); the fd or -errno. */
static int bound_connect(unsigned int port, unsigned int domid,
			 unsigned int to)
{
	struct sockaddr_gnt b = gnt_addr(GNTSOCK_DOMID_ANY, port);
	struct sockaddr_gnt a = gnt_addr(domid, to);
	int fd, ret = 0;

	fd = socket(AF_GNTSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (gnt_set_timeouts(fd, IO_TIMEOUT_S) ||
	    bind(fd, (void *)&b, sizeof(b)) ||
	    connect(fd, (void *)&a, sizeof(a)))
		ret = -errno;
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

#define RECONNECTS	5

/* A client closes and connects again from the same (domain, port) while
 * the server still holds the first connection's fd: the peer's close took
 * the first connection out of the connection table, so the new request is
 * a new connection, not refused (ECONNRESET) as a duplicate; the held fd
 * reads its data, then EOF (as vsock since 3a5cc90a4d17). @accept_first:
 * the server accepted the first connection before the close, or only after
 * the reconnects. Same-domain, both ends here: the server's timing is ours.
 */
static void reconnect_same_port(struct __test_metadata *_metadata,
				bool accept_first)
{
	const unsigned int srv = LISTEN_PORT + 6, cli = LISTEN_PORT + 7;
	int lfd, c, first = -1, s[RECONNECTS], i;
	char ch;

	lfd = listen_on(SOCK_STREAM, srv, RECONNECTS + 2);
	ASSERT_LE(0, lfd);
	c = bound_connect(cli, GNTSOCK_DOMID_SELF, srv);
	ASSERT_LE(0, c) TH_LOG("connect: %s", strerror(-c));
	if (accept_first) {
		first = accept(lfd, NULL, NULL);
		ASSERT_LE(0, first);
	}
	ASSERT_EQ(1, xsend(c, "a", 1, 0));
	ASSERT_EQ(0, close(c));
	for (i = 0; i < RECONNECTS; i++) {
		c = bound_connect(cli, GNTSOCK_DOMID_SELF, srv);
		ASSERT_LE(0, c) TH_LOG("reconnect %d from port %u: %s", i, cli,
				       strerror(-c));
		if (first < 0) {
			first = accept(lfd, NULL, NULL);
			ASSERT_LE(0, first);
		}
		s[i] = accept(lfd, NULL, NULL);
		ASSERT_LE(0, s[i]);
		ASSERT_EQ(0, gnt_set_timeouts(s[i], IO_TIMEOUT_S));
		ASSERT_EQ(1, xsend(c, "b", 1, 0));
		ASSERT_EQ(1, xrecv(s[i], &ch, 1, 0));
		EXPECT_EQ('b', ch);
		ASSERT_EQ(0, close(c));
	}
	ASSERT_EQ(0, gnt_set_timeouts(first, IO_TIMEOUT_S));
	ASSERT_EQ(1, xrecv(first, &ch, 1, 0));
	EXPECT_EQ('a', ch);
	EXPECT_EQ(0, xrecv(first, &ch, 1, 0));
	EXPECT_EQ(-EPIPE, xsend(first, "x", 1, 0));
	for (i = 0; i < RECONNECTS; i++) {
		EXPECT_EQ(0, xrecv(s[i], &ch, 1, 0)) TH_LOG("connection %d", i);
		close(s[i]);
	}
	close(first);
	close(lfd);
}

TEST_F_TIMEOUT(sock, reconnect_same_port_after_accept, 60)
{
	NEED_PEER();
	reconnect_same_port(_metadata, true);
}

TEST_F_TIMEOUT(sock, reconnect_same_port_before_accept, 60)
{
	NEED_PEER();
	reconnect_same_port(_metadata, false);
}

/* The same from this domain to the peer's HOLD service, which closes its
 * end only once it notices ours: each reconnect from the same port reaches
 * the peer's kernel right behind our close, before its server closed.
 */
TEST_F_TIMEOUT(sock, reconnect_same_port_to_peer, 60)
{
	const unsigned int cli = LISTEN_PORT + 8;
	int c, i;

	NEED_PEER();
	for (i = 0; i <= RECONNECTS; i++) {
		c = bound_connect(cli, self->peer, GNTSOCK_PEER_PORT_HOLD);
		ASSERT_LE(0, c) TH_LOG("connect %d from port %u: %s", i, cli,
				       strerror(-c));
		ASSERT_EQ(1, xsend(c, "h", 1, 0));
		ASSERT_EQ(0, close(c));
	}
}

/* A connection its client closed (after sending) before the server
 * accepted it: accept() returns it, connected, and the reader gets the
 * data and then EOF at once (within 2 s), not an error.
 */
TEST_F_TIMEOUT(sock, close_before_accept_reads_eof, 60)
{
	const unsigned int srv = LISTEN_PORT + 9;
	static char buf[100000];
	struct sockaddr_gnt a;
	socklen_t l = sizeof(a);
	int lfd, c, s, ev, round;
	int64_t t0;
	ssize_t n, got;

	NEED_PEER();
	lfd = listen_on(SOCK_STREAM, srv, 4);
	ASSERT_LE(0, lfd);
	for (round = 0; round < 2; round++) {
		/* Round 0: data and close; round 1: close alone. */
		c = sconnect(SOCK_STREAM, GNTSOCK_DOMID_SELF, srv);
		ASSERT_LE(0, c) TH_LOG("connect: %s", strerror(-c));
		if (!round)
			ASSERT_EQ(0, gnt_send_all(c, buf, sizeof(buf), NULL));
		ASSERT_EQ(0, close(c));
		s = accept(lfd, (void *)&a, &l);
		ASSERT_LE(0, s);
		t0 = gnt_now_ms();
		EXPECT_EQ(0, getpeername(s, (void *)&a, &l))
			TH_LOG("%s", strerror(errno));
		ASSERT_EQ(0, gnt_set_timeouts(s, 2));
		ev = gnt_poll1(s, POLLRDHUP, 2000);
		EXPECT_TRUE(ev & POLLRDHUP);
		for (got = 0; (n = xrecv(s, buf, sizeof(buf), 0)) > 0; )
			got += n;
		EXPECT_EQ(0, n) TH_LOG("read: %s", strerror((int)-n));
		EXPECT_EQ(round ? 0 : (ssize_t)sizeof(buf), got);
		EXPECT_GE(2000, gnt_now_ms() - t0);
		close(s);
	}
	close(lfd);
}

/* ---- loopback and /proc -------------------------------------------- */

/* /proc/net/gntsock shows the socket type; _links the loopback link. */
TEST_F_TIMEOUT(sock, proc_types_and_loopback_link, 60)
{
	struct gnt_link_info li;
	struct sockaddr_gnt a;
	socklen_t l = sizeof(a);
	char links[16384];
	int fd;

	NEED_PEER();
	fd = sconnect(SOCK_SEQPACKET, self->peer, GNTSOCK_PEER_PORT_SEQ_HOLD);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, getsockname(fd, (void *)&a, &l));
	EXPECT_EQ(1, proc_port_lines(a.sgnt_port, "SEQPACKET", "ESTABLISHED"));
	EXPECT_EQ(0, proc_port_lines(a.sgnt_port, "STREAM", NULL));
	close(fd);
	ASSERT_EQ(0, gnt_read_file(GNT_LINKS_PATH, links, sizeof(links)));
	EXPECT_TRUE(strstr(links, " loopback connected ") != NULL)
		TH_LOG("%s", links);
	if (self->loopback) {
		ASSERT_EQ(0, gnt_link_get(self->peer_id, &li));
		EXPECT_STREQ("loopback", li.role);
		EXPECT_LT(0ULL, li.tx_msgs);
	}
}

/* Run tools/gntsock-ss (next to this program) with @args into @out. */
static int run_ss(const char *args, char *out, size_t size)
{
	char exe[4096], cmd[8192], *slash;
	size_t n = 0, r;
	ssize_t l;
	FILE *p;

	l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (l < 0)
		return -errno;
	exe[l] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	snprintf(cmd, sizeof(cmd), "%s/gntsock-ss %s", exe, args);
	p = popen(cmd, "r");
	if (!p)
		return -errno;
	while (n < size - 1 && (r = fread(out + n, 1, size - 1 - n, p)) > 0)
		n += r;
	out[n] = '\0';
	return pclose(p) ? -EIO : 0;
}

static void squeeze_blanks(char *q)
{
	for (; *q; q++) {
		while (q[0] == ' ' && q[1] == ' ')
			memmove(q, q + 1, strlen(q));
	}
}

/* Does @text have a line with these whitespace-separated fields? */
static bool ss_has(const char *text, const char *type, const char *state,
		   const char *local, const char *peer)
{
	char line[512], t[32], s[32], l[64], pe[64];
	const char *p = text, *nl;
	size_t len;

	while (*p) {
		nl = strchr(p, '\n');
		len = nl ? (size_t)(nl - p) : strlen(p);
		if (len >= sizeof(line))
			len = sizeof(line) - 1;
		memcpy(line, p, len);
		line[len] = '\0';
		p = nl ? nl + 1 : p + len;
		if (sscanf(line, "%31s %31s %*u %*u %63s %63s", t, s, l, pe) == 4 &&
		    !strcmp(t, type) && !strcmp(s, state) && !strcmp(l, local) &&
		    !strcmp(pe, peer))
			return true;
	}
	return false;
}

/* gntsock-ss lists known sockets with its filters, and the links. */
TEST_F_TIMEOUT(sock, ss_tool_output, 60)
{
	static char out[65536];
	struct sockaddr_gnt a;
	socklen_t l = sizeof(a);
	char local[64], peer[64], lis[64], want[256];
	int lfd, fd;

	NEED_PEER();
	lfd = listen_on(SOCK_SEQPACKET, LISTEN_PORT + 5, 1);
	ASSERT_LE(0, lfd);
	fd = sconnect(SOCK_STREAM, self->peer, GNTSOCK_PEER_PORT_HOLD);
	ASSERT_LE(0, fd);
	ASSERT_EQ(7, xsend(fd, "unread!", 7, 0));
	ASSERT_EQ(0, getsockname(fd, (void *)&a, &l));
	snprintf(local, sizeof(local), "%u:%u", a.sgnt_domid, a.sgnt_port);
	snprintf(peer, sizeof(peer), "%u:%u", self->peer_id,
		 GNTSOCK_PEER_PORT_HOLD);
	snprintf(lis, sizeof(lis), "*:%u", LISTEN_PORT + 5);

	ASSERT_EQ(0, run_ss("", out, sizeof(out)));
	EXPECT_TRUE(ss_has(out, "STREAM", "ESTABLISHED", local, peer))
		TH_LOG("%s", out);
	EXPECT_FALSE(ss_has(out, "SEQPACKET", "LISTEN", lis, "*:*"));
	ASSERT_EQ(0, run_ss("-l -S", out, sizeof(out)));
	EXPECT_TRUE(ss_has(out, "SEQPACKET", "LISTEN", lis, "*:*"))
		TH_LOG("%s", out);
	EXPECT_FALSE(ss_has(out, "STREAM", "ESTABLISHED", local, peer));
	ASSERT_EQ(0, run_ss("-a -t", out, sizeof(out)));
	EXPECT_TRUE(ss_has(out, "STREAM", "ESTABLISHED", local, peer));
	EXPECT_FALSE(ss_has(out, "SEQPACKET", "LISTEN", lis, "*:*"));
	/* Send-Q shows our unread 7 bytes. */
	snprintf(want, sizeof(want), " 7 %s ", local);
	ASSERT_EQ(0, run_ss("-H -t", out, sizeof(out)));
	squeeze_blanks(out);
	EXPECT_TRUE(strstr(out, want) != NULL) TH_LOG("%s", out);

	ASSERT_EQ(0, run_ss("-L", out, sizeof(out)));
	EXPECT_TRUE(strstr(out, "Violations") != NULL);
	snprintf(want, sizeof(want), "\n%-6u %-9s connected", self->peer_id,
		 self->loopback ? "loopback" : "");
	EXPECT_TRUE(!self->loopback || strstr(out, want)) TH_LOG("%s", out);
	snprintf(want, sizeof(want), "\n%-6u ", self->peer_id);
	EXPECT_TRUE(strstr(out, want) != NULL) TH_LOG("%s", out);
	ASSERT_EQ(0, run_ss("-s", out, sizeof(out)));
	EXPECT_TRUE(strstr(out, "Sockets: STREAM ") != NULL) TH_LOG("%s", out);
	EXPECT_TRUE(strstr(out, "SEQPACKET  LISTEN ") != NULL);
	/* A bad option fails (usage, status 2). */
	EXPECT_EQ(-EIO, run_ss("-x 2>/dev/null", out, sizeof(out)));
	close(fd);
	close(lfd);
}

/* Nothing leaked: every socket the module counts is held by a process. */
#define BURST_STREAM	(16 << 20)

/* The receive buffer of @fd (GNTSOCK_SO_BUFFER_SIZE), or -errno. */
static int64_t buffer_size(int fd)
{
	uint64_t v = 0;
	socklen_t l = sizeof(v);

	if (getsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUFFER_SIZE, &v, &l))
		return -errno;
	return (int64_t)v;
}

/* Ask SOURCE for BURST_STREAM bytes of pattern @seed; a non-zero @bufsz
 * fixes our receive buffer at that size (before our first read: nothing
 * can have grown yet).
 */
static int source_connect(unsigned int peer, uint64_t seed, uint64_t bufsz)
{
	int fd = gnt_source_open(peer, seed, BURST_STREAM, IO_TIMEOUT_S);
	int err;

	if (fd >= 0 && bufsz &&
	    setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUFFER_SIZE, &bufsz,
		       sizeof(bufsz))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

/* At least @min_ms, then until credit_requests of /proc/net/gntsock_stat
 * is no longer *@seen (the new value then in *@seen), @max_ms at most.
 */
static void wait_credit_request(uint64_t *seen, int min_ms, int max_ms)
{
	int64_t t0 = gnt_now_ms();
	uint64_t v = *seen;

	gnt_sleep_ms(min_ms);
	while (!gnt_stat_get("credit_requests", &v) && v == *seen &&
	       gnt_now_ms() - t0 < max_ms)
		gnt_sleep_ms(5);
	*seen = v;
}

/*
 * A bursty reader: let the writer fill the whole buffer (it then waits for
 * credit and asks for it), then read until nothing is queued, @bursts times
 * or until the buffer is @until bytes. Checks the pattern from *@off on.
 * Returns the buffer size then, or -errno.
 *
 * The buffer grows at a read that finds nothing queued, once the writer's
 * credit request has come, which follows the data that filled the buffer
 * by an event hop or more on a busy rig: the reader waits 50 ms, and then
 * for credit_requests to move, 1 s at most. (Another socket's request may
 * end the wait early, and ours may have been counted before the reader
 * looked: the growth then waits for a later burst, or the wait for the
 * whole second.)
 */
static int64_t read_in_bursts(int fd, uint64_t seed, uint64_t *off,
			      int bursts, int64_t until)
{
	static char buf[65536];
	char scratch[256];
	int64_t bs = buffer_size(fd);
	uint64_t req = 0;
	ssize_t n;
	int i;

	if (gnt_stat_get("credit_requests", &req))
		return -ENOENT;
	for (i = 0; i < bursts && bs >= 0 && bs < until; i++) {
		if (*off + bs < BURST_STREAM) {
			if (wait_inq(fd, bs, 15000) < 0)
				return -ETIMEDOUT;
			wait_credit_request(&req, 50, 1000);
		}
		while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
			if (gnt_pattern_check(seed, *off, buf, n, scratch,
					      sizeof(scratch)) != -1)
				return -EBADMSG;
			*off += n;
		}
		if (n == 0 || errno != EAGAIN)
			return n ? -errno : -EPIPE;
		if (gnt_stat_get("credit_requests", &req))
			return -ENOENT;
		bs = buffer_size(fd);
	}
	return bs;
}

/* Read the rest of a SOURCE stream and its end. */
static int read_rest(int fd, uint64_t seed, uint64_t off)
{
	static char buf[65536];
	char scratch[256];
	ssize_t n;

	while (off < BURST_STREAM) {
		n = xrecv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return n ? (int)n : -EPIPE;
		if (gnt_pattern_check(seed, off, buf, n, scratch,
				      sizeof(scratch)) != -1)
			return -EBADMSG;
		off += n;
	}
	return xrecv(fd, buf, 1, 0) == 0 ? 0 : -EPROTO;
}

static int64_t buf_auto_max(void)
{
	char text[32];

	if (gnt_param_get("buf_auto_max", text, sizeof(text)))
		return -ENOENT;
	return strtoll(text, NULL, 10);
}

/*
 * A STREAM receive buffer doubles up to buf_auto_max when the writer ran
 * out of credit and the reader then found nothing queued; a buffer set with
 * GNTSOCK_SO_BUFFER_SIZE stays as set. No byte is lost or reordered.
 */
TEST_F_TIMEOUT(sock, stream_buffer_grows_for_a_starved_reader, 240)
{
	int64_t max = buf_auto_max(), bs;
	uint64_t off = 0, g0 = 0, g1 = 0, r0 = 0, r1 = 0;
	int fd;

	NEED_PEER();
	if (self->loopback)
		SKIP(return, "loopback: the writer runs on our own vCPU, bursts are not ours to control");
	if (max < (int64_t)GNTSOCK_BUFFER_SIZE_DEFAULT * 4)
		SKIP(return, "buf_auto_max %" PRId64 ": not the default", max);
	ASSERT_EQ(0, gnt_stat_get("buf_grown", &g0));
	ASSERT_EQ(0, gnt_stat_get("credit_requests", &r0));
	fd = source_connect(self->peer, 31, 0);
	ASSERT_LE(0, fd);
	EXPECT_EQ((int64_t)GNTSOCK_BUFFER_SIZE_DEFAULT, buffer_size(fd));
	bs = read_in_bursts(fd, 31, &off, 10, max);
	EXPECT_EQ(max, bs) TH_LOG("after %" PRIu64 " bytes", off);
	/* It stays at the maximum. */
	bs = read_in_bursts(fd, 31, &off, 2, INT64_MAX);
	EXPECT_EQ(max, bs);
	EXPECT_EQ(0, read_rest(fd, 31, off));
	close(fd);
	ASSERT_EQ(0, gnt_stat_get("buf_grown", &g1));
	/* 256 KiB -> 512 KiB -> 1 MiB: at least two steps. */
	EXPECT_LE(g0 + 2, g1);
	/* Each step followed a credit request of the starved writer. */
	ASSERT_EQ(0, gnt_stat_get("credit_requests", &r1));
	EXPECT_LE(r0 + 2, r1);

	/* Set by the application: never grows. */
	off = 0;
	fd = source_connect(self->peer, 32, GNTSOCK_BUFFER_SIZE_DEFAULT);
	ASSERT_LE(0, fd);
	bs = read_in_bursts(fd, 32, &off, 4, INT64_MAX);
	EXPECT_EQ((int64_t)GNTSOCK_BUFFER_SIZE_DEFAULT, bs);
	EXPECT_EQ(0, read_rest(fd, 32, off));
	close(fd);
}

/*
 * The growth of all sockets on one link adds up to at most buf_auto_max:
 * a second stream gets what the first left, and the rest once the first
 * is closed.
 */
TEST_F_TIMEOUT(sock, stream_buffer_growth_shares_a_link_budget, 240)
{
	int64_t max = buf_auto_max(), def = GNTSOCK_BUFFER_SIZE_DEFAULT, bs;
	uint64_t off_a = 0, off_b = 0, r0 = 0, r1 = 0;
	int a, b;

	NEED_PEER();
	if (self->loopback)
		SKIP(return, "loopback: the writer runs on our own vCPU, bursts are not ours to control");
	if (max != def * 4)
		SKIP(return, "buf_auto_max %" PRId64 ": not the default", max);
	a = source_connect(self->peer, 41, 0);
	ASSERT_LE(0, a);
	ASSERT_EQ(max, read_in_bursts(a, 41, &off_a, 10, max));
	/* a added 768 KiB of the 1 MiB budget: b may add 256 KiB. */
	ASSERT_EQ(0, gnt_stat_get("buf_grow_refused", &r0));
	b = source_connect(self->peer, 42, 0);
	ASSERT_LE(0, b);
	bs = read_in_bursts(b, 42, &off_b, 6, INT64_MAX);
	EXPECT_EQ(2 * def, bs);
	ASSERT_EQ(0, gnt_stat_get("buf_grow_refused", &r1));
	EXPECT_LT(r0, r1);
	/* a gone, its share is back. */
	close(a);
	bs = read_in_bursts(b, 42, &off_b, 10, max);
	EXPECT_EQ(max, bs);
	EXPECT_EQ(0, read_rest(b, 42, off_b));
	close(b);
}

/* Link ups and downs are counted, and so are their log lines left out
 * (rate-limited per link: a peer can make its link flap at will). All
 * from one read of the file, so that the three agree.
 */
TEST_F(sock, link_up_down_counted)
{
	uint64_t ups, downs, conn, supp;
	char buf[4096];

	NEED_PEER();
	ASSERT_EQ(0, gnt_read_file("/proc/net/gntsock_stat", buf,
				   sizeof(buf)));
	ASSERT_EQ(0, gnt_parse_stat(buf, "link_ups", &ups));
	ASSERT_EQ(0, gnt_parse_stat(buf, "resets", &downs));
	ASSERT_EQ(0, gnt_parse_stat(buf, "links_connected", &conn));
	ASSERT_EQ(0, gnt_parse_stat(buf, "link_log_suppressed", &supp));
	EXPECT_LE(downs, ups);
	EXPECT_EQ(conn, ups - downs);
	EXPECT_LE(supp, ups + downs);
	if (!self->loopback)
		EXPECT_LE(1ULL, ups);
}

TEST_F_TIMEOUT(sock, counters_idle, 60)
{
	uint64_t stat = 0, v, inj;
	int held = -1, ret;

	NEED_PEER();
	ret = gnt_wait_sockets_settled(15000, &stat, &held);
	if (ret == -ENOSYS || ret == -EPERM)
		SKIP(return, "cannot count other processes' sockets");
	EXPECT_EQ(0, ret) TH_LOG("sockets %" PRIu64 ", held %d", stat, held);
	ASSERT_EQ(0, gnt_stat_get("violations", &v));
	ASSERT_EQ(0, gnt_stat_get("violation_reserved", &inj));
	EXPECT_EQ(inj, v) TH_LOG("violations other than injected ones");
}

TEST_HARNESS_MAIN
