// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_stalled_peer_test - a non-blocking sender against a peer kernel
 * that stops draining its ring (the rig's hostile step: domU1 runs
 * gntsock_hostile.ko and its "stall" command holds its receive ring for a
 * few seconds while a gntcat listener there reads everything it gets).
 *
 * Environment:
 *   GNTSOCK_PEER_DOMID  (required, else SKIP) the stalling domain
 *   GNTSOCK_STALL_PORT  (required, else SKIP) its listener's port
 *   GNTSOCK_STALL_READY a file the test creates once it is connected and
 *                       sending (the rig starts the stall then)
 *
 * The sender keeps writing 64 KiB with MSG_DONTWAIT and polls for POLLOUT
 * after every EAGAIN, until 8 MiB went after the stall. The connection has
 * more credit (the listener's 256 KiB buffer) than the link's ring holds,
 * so during the stall the ring fills with credit left. Then:
 * - no send() may wait for the peer's kernel (it used to, for two seconds
 *   each time);
 * - poll() must not report POLLOUT while the ring stays full (it used to,
 *   since credit was left: a busy loop of POLLOUT and EAGAIN), and must
 *   report it once the peer drains the ring again;
 * - the sender must have seen the stall: a poll() that waited a second.
 */
#define _GNU_SOURCE
#include "gntsock_util.h"
/* The 6.1 harness (kept unmodified) leaves parameters unused. */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"

#define WRITE_SIZE	(64 * 1024)
#define AFTER_STALL	(8ULL << 20)

FIXTURE(stall) {
	int unused;
};

FIXTURE_SETUP(stall)
{
}

FIXTURE_TEARDOWN(stall)
{
}

TEST_F_TIMEOUT(stall, nonblocking_send_does_not_wait_for_a_stalled_peer_kernel,
	       120)
{
	int64_t t0, dt, max_send = 0, longest_poll = 0, end;
	uint64_t sent = 0, after = 0, blocked0 = 0, blocked1 = 0;
	unsigned int peer, port, eagain = 0, false_out = 0;
	struct gnt_link_info li;
	bool stalled = false, polled_out = false;
	const char *p = getenv("GNTSOCK_STALL_PORT");
	char *buf;
	ssize_t n;
	int fd, r;

	if (gnt_env_domid("GNTSOCK_PEER_DOMID", &peer) || !p || !*p)
		SKIP(return, "GNTSOCK_PEER_DOMID or GNTSOCK_STALL_PORT not set");
	port = (unsigned int)strtoul(p, NULL, 0);
	ASSERT_EQ(0, gnt_link_get(peer, &li));
	ASSERT_GT(256U * 1024, li.ring_pages * 4096)
		TH_LOG("a ring of %" PRIu64 " pages holds the whole credit",
		       li.ring_pages);
	EXPECT_EQ(0, gnt_stat_get("tx_ring_blocked", &blocked0));
	buf = calloc(1, WRITE_SIZE);
	ASSERT_NE(NULL, buf);
	fd = gnt_connect(peer, port, 10);
	ASSERT_LE(0, fd) TH_LOG("connect: %s", strerror(-fd));
	ASSERT_EQ(0, gnt_set_nonblock(fd, true));
	p = getenv("GNTSOCK_STALL_READY");
	if (p && *p) {
		r = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		ASSERT_LE(0, r) TH_LOG("%s: %s", p, strerror(errno));
		close(r);
	}
	end = gnt_now_ms() + 90000;
	while (after < AFTER_STALL) {
		ASSERT_GT(end, gnt_now_ms())
			TH_LOG("%" PRIu64 " bytes in 90 s, stall %sseen by poll(); "
			       "longest send %" PRId64 " ms, %u EAGAIN, %u of "
			       "them after POLLOUT", sent, stalled ? "" : "not ",
			       max_send, eagain, false_out);
		t0 = gnt_now_ms();
		n = send(fd, buf, WRITE_SIZE, MSG_NOSIGNAL);
		dt = gnt_now_ms() - t0;
		if (dt > max_send)
			max_send = dt;
		if (n > 0) {
			sent += (uint64_t)n;
			if (stalled)
				after += (uint64_t)n;
			polled_out = false;
			continue;
		}
		ASSERT_EQ(EAGAIN, errno) TH_LOG("send: %s", strerror(errno));
		eagain++;
		/* POLLOUT that was no room after all. */
		false_out += polled_out;
		t0 = gnt_now_ms();
		r = gnt_poll1(fd, POLLOUT, 30000);
		dt = gnt_now_ms() - t0;
		ASSERT_LT(0, r) TH_LOG("not writable for 30 s: %s",
				       r ? strerror(-r) : "timeout");
		ASSERT_TRUE(r & POLLOUT);
		polled_out = true;
		if (dt > longest_poll)
			longest_poll = dt;
		if (dt >= 1000)
			stalled = true;
	}
	EXPECT_EQ(0, gnt_stat_get("tx_ring_blocked", &blocked1));
	TH_LOG("%" PRIu64 " bytes, %u EAGAIN, longest send %" PRId64
	       " ms, longest poll %" PRId64 " ms, %u POLLOUT without room, "
	       "tx_ring_blocked +%" PRIu64, sent, eagain, max_send,
	       longest_poll, false_out, blocked1 - blocked0);
	EXPECT_TRUE(stalled) TH_LOG("no poll() waited for the stall");
	EXPECT_GT(500, max_send) TH_LOG("a send() waited for the peer kernel");
	EXPECT_GE(eagain / 4 + 1, false_out)
		TH_LOG("poll() said writable while the ring stayed full");
	EXPECT_LT(blocked0, blocked1);
	close(fd);
	free(buf);
}

TEST_HARNESS_MAIN
