// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_backlog_victim_test - a socket whose lock a local user holds
 * while the peer kernel floods it (the rig's hostile step: domU1 runs
 * gntsock_hostile.ko, connects to our port, and its "backlog" command sends,
 * as fast as the ring takes them, one-byte data messages each followed by a
 * SHUTDOWN, then credit requests, credit updates and empty data messages).
 *
 * Environment:
 *   GNTSOCK_PEER_DOMID  (required, else SKIP) the attacking domain
 *   GNTSOCK_BL_PORT     (required, else SKIP) the port we listen on; the
 *                       attacker connects to it
 *   GNTSOCK_BL_READY    a file the test creates once it holds the lock (the
 *                       rig starts the attack then)
 *   GNTSOCK_BL_SECONDS  how long it watches (default 20)
 *
 * A thread holds the accepted socket's lock for the whole attack:
 * SO_ATTACH_FILTER copies its filter from user memory under the lock, and
 * the filter lies in a userfaultfd range nobody serves (as a FUSE mapping
 * whose daemon does not answer) until the test closes it. The whole flood
 * meets the held lock and goes on the socket's backlog. Kept one by one,
 * its messages would take far more memory than they are allowed; merged
 * and appended they take little:
 * - the backlog was used (rx_deferred moved);
 * - the domain's slab memory grows by less than 16 MiB while it lasts;
 * - no violation: the attacker stays within the credit we gave, and our
 *   bounds must not take a legal flood for one.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/mman.h>
#include <linux/filter.h>

#include "gntsock_util.h"
#include "gntsock_grant_peer.h"
#include "gntsock_stall.h"
/* The 6.1 harness (kept unmodified) leaves parameters unused. */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"

#define SLAB_MAX_KB	16384

FIXTURE(victim) {
	int unused;
};

FIXTURE_SETUP(victim)
{
}

FIXTURE_TEARDOWN(victim)
{
}

struct holder {
	int fd;
	void *buf;
};

/* Hold @arg's socket lock until the userfaultfd range is let go. */
static void *hold_fn(void *arg)
{
	struct holder *h = arg;
	struct sock_fprog prog = { .len = 1, .filter = h->buf };

	setsockopt(h->fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
	return NULL;
}

/* The domain's slab memory, kB. */
static long slab_kb(void)
{
	char text[8192], *p;
	int ret = gnt_read_file("/proc/meminfo", text, sizeof(text));

	if (ret < 0)
		return -1;
	p = strstr(text, "\nSlab:");
	return p ? strtol(p + 6, NULL, 10) : -1;
}

TEST_F_TIMEOUT(victim, flooded_backlog_stays_bounded, 180)
{
	const char *p = getenv("GNTSOCK_BL_PORT");
	const char *secs = getenv("GNTSOCK_BL_SECONDS");
	uint64_t d0 = 0, d1 = 0, r0 = 0, r1 = 0, v0 = 0, v1 = 0;
	unsigned int peer, port;
	struct sockaddr_gnt a;
	struct holder h;
	long s0, s, smax;
	pthread_t tid;
	int lfd, r, uffd;
	int64_t end;

	if (gnt_env_domid("GNTSOCK_PEER_DOMID", &peer) || !p || !*p)
		SKIP(return, "GNTSOCK_PEER_DOMID or GNTSOCK_BL_PORT not set");
	port = (unsigned int)strtoul(p, NULL, 0);
	h.buf = gnt_uffd_region(4096, &uffd);
	if (!h.buf)
		SKIP(return, "userfaultfd: %s", strerror(errno));
	lfd = gnt_socket();
	ASSERT_LE(0, lfd);
	a = gnt_addr(GNTSOCK_DOMID_ANY, port);
	ASSERT_EQ(0, bind(lfd, (void *)&a, sizeof(a)));
	ASSERT_EQ(0, listen(lfd, 4));
	h.fd = accept(lfd, NULL, NULL);
	ASSERT_LE(0, h.fd) TH_LOG("accept: %s", strerror(errno));
	ASSERT_EQ(0, gnt_stat_get("rx_deferred", &d0));
	ASSERT_EQ(0, gnt_stat_get("rx_defer_refused", &r0));
	ASSERT_EQ(0, gnt_stat_get("violations", &v0));
	s0 = slab_kb();
	ASSERT_LT(0, s0);
	ASSERT_EQ(0, pthread_create(&tid, NULL, hold_fn, &h));
	usleep(200000);
	p = getenv("GNTSOCK_BL_READY");
	if (p && *p) {
		r = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		ASSERT_LE(0, r) TH_LOG("%s: %s", p, strerror(errno));
		close(r);
	}
	smax = s0;
	end = gnt_now_ms() + 1000 * (secs && *secs ? strtol(secs, NULL, 0) :
				     20);
	while (gnt_now_ms() < end) {
		s = slab_kb();
		if (s > smax)
			smax = s;
		gnt_sleep_ms(200);
	}
	close(uffd);	/* lets go of the lock */
	ASSERT_EQ(0, pthread_join(tid, NULL));
	close(h.fd);
	close(lfd);
	munmap(h.buf, 4096);
	ASSERT_EQ(0, gnt_stat_get("rx_deferred", &d1));
	ASSERT_EQ(0, gnt_stat_get("rx_defer_refused", &r1));
	ASSERT_EQ(0, gnt_stat_get("violations", &v1));
	TH_LOG("rx_deferred +%" PRIu64 ", rx_defer_refused +%" PRIu64
	       ", violations +%" PRIu64 "; slab %ld kB, at most %ld", d1 - d0,
	       r1 - r0, v1 - v0, s0, smax);
	EXPECT_LT(d0, d1) TH_LOG("the flood never met the held lock");
	EXPECT_GT(SLAB_MAX_KB, smax - s0);
	EXPECT_EQ(v0, v1) TH_LOG("a flood within the credit was a violation");
}

TEST_HARNESS_MAIN
