// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_polling_victim_test - a busy-polling reader on a link whose peer
 * kernel attacks the ring (the rig's hostile step: domU1 runs
 * gntsock_hostile.ko, and while this test reads, its "index" or "flood"
 * command moves the producer index of our rx ring beyond the ring,
 * backwards, or keeps the ring full of valid messages for nobody).
 *
 * Environment:
 *   GNTSOCK_PEER_DOMID  (required, else SKIP) the attacking domain
 *   GNTSOCK_POLL_PORT   (required, else SKIP) its listener's port (it
 *                       sends nothing: every recv() of ours finds nothing
 *                       queued, so it busy-polls before it sleeps)
 *   GNTSOCK_POLL_READY  a file the test creates once it reads (the rig
 *                       starts the attack then)
 *   GNTSOCK_POLL_SECONDS how long it reads (default 20)
 *
 * The reader asks for a million looks per wait (GNTSOCK_SO_BUSY_POLL) and
 * a one-second SO_RCVTIMEO, and calls recv() until the time is up or the
 * connection ends. Whatever the peer does to the indices it polls:
 * - every recv() returns within its timeout and a margin (the poller never
 *   spins past its timeout nor sleeps through a reset);
 * - it returns only "nothing yet" (EAGAIN), the end of the connection
 *   (ECONNRESET when the link resets for a violation, or 0): never bytes,
 *   since the peer sent none on this connection;
 * - it did poll (rx_polls moved).
 */
#define _GNU_SOURCE
#include "gntsock_util.h"
/* The 6.1 harness (kept unmodified) leaves parameters unused. */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"

#define POLL_LOOKS	1000000U
#define RECV_TIMEOUT_MS	1000
/* A recv() may take its timeout and this much more (emulated, busy). */
#define RECV_SLACK_MS	4000

FIXTURE(victim) {
	int unused;
};

FIXTURE_SETUP(victim)
{
}

FIXTURE_TEARDOWN(victim)
{
}

TEST_F_TIMEOUT(victim, busy_poller_survives_a_peer_that_breaks_its_ring, 180)
{
	struct timeval tv = { .tv_sec = RECV_TIMEOUT_MS / 1000 };
	const char *p = getenv("GNTSOCK_POLL_PORT");
	const char *secs = getenv("GNTSOCK_POLL_SECONDS");
	uint64_t polls0 = 0, polls1 = 0, eagain = 0, calls = 0;
	int64_t t0, dt, slowest = 0, end;
	unsigned int peer, port, looks = POLL_LOOKS;
	const char *how = "time up";
	char buf[4096];
	ssize_t n;
	int fd, r;

	if (gnt_env_domid("GNTSOCK_PEER_DOMID", &peer) || !p || !*p)
		SKIP(return, "GNTSOCK_PEER_DOMID or GNTSOCK_POLL_PORT not set");
	port = (unsigned int)strtoul(p, NULL, 0);
	ASSERT_EQ(0, gnt_stat_get("rx_polls", &polls0));
	fd = gnt_connect(peer, port, 10);
	ASSERT_LE(0, fd) TH_LOG("connect: %s", strerror(-fd));
	ASSERT_EQ(0, setsockopt(fd, SOL_GNTSOCK, GNTSOCK_SO_BUSY_POLL, &looks,
				sizeof(looks)));
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
				sizeof(tv)));
	p = getenv("GNTSOCK_POLL_READY");
	if (p && *p) {
		r = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		ASSERT_LE(0, r) TH_LOG("%s: %s", p, strerror(errno));
		close(r);
	}
	end = gnt_now_ms() + 1000 * (secs && *secs ? strtol(secs, NULL, 0) :
				     20);
	while (gnt_now_ms() < end) {
		t0 = gnt_now_ms();
		n = recv(fd, buf, sizeof(buf), 0);
		dt = gnt_now_ms() - t0;
		calls++;
		if (dt > slowest)
			slowest = dt;
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			eagain += errno == EAGAIN;
			continue;
		}
		ASSERT_GE(0, n) TH_LOG("%zd bytes from a peer that sent none",
				       n);
		how = n ? strerror(errno) : "end of stream";
		ASSERT_TRUE(!n || errno == ECONNRESET)
			TH_LOG("recv: %s", strerror(errno));
		break;
	}
	close(fd);
	ASSERT_EQ(0, gnt_stat_get("rx_polls", &polls1));
	TH_LOG("%" PRIu64 " recv calls (%" PRIu64 " timed out), slowest %"
	       PRId64 " ms, ended by %s; rx_polls +%" PRIu64, calls, eagain,
	       slowest, how, polls1 - polls0);
	EXPECT_GT(polls1, polls0) TH_LOG("the reader never busy-polled");
	EXPECT_GE(RECV_TIMEOUT_MS + RECV_SLACK_MS, slowest)
		TH_LOG("a recv() with a %d ms timeout took %" PRId64 " ms",
		       RECV_TIMEOUT_MS, slowest);
}

TEST_HARNESS_MAIN
