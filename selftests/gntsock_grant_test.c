// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_grant_test - grants as control messages between two Xen domains.
 *
 * Runs in one domain against the GRANT service of gntsock_peer
 * (gntsock_grant_peer.h) in the domain GNTSOCK_PEER_DOMID names. Both
 * kernels' counters (/proc/net/gntsock_grants here, GR_COUNTS there) must
 * come back to zero grants in flight after every test; counters_idle,
 * the last test, checks that nothing leaked in either kernel.
 * GNTSOCK_GRANT_TESTS (comma-separated test names) runs only those.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/sock_diag.h>

#include "gntsock_util.h"
#include <xen/sys/gntalloc.h>
#include "gntsock_grant_peer.h"
#include "gntsock_grant_util.h"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include "kselftest_harness.h"

#define IO_TIMEOUT_S	20
#define KILL_LOOPS	200

static long page_size;

static uint64_t test_token(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)getpid();
}

FIXTURE(grant) {
	unsigned int peer;
	bool restore_peer_rmap;	/* put the peer's revocable_map back */
	bool restore_own_rmap;	/* put ours back */
};

static int reconnect(unsigned int peer);
static int peer_set_revocable_map(unsigned int peer, bool on);
static int own_set_revocable_map(bool on);

/* GNTSOCK_GRANT_TESTS: comma-separated names of the tests to run. */
static bool test_selected(const char *name)
{
	const char *list = getenv("GNTSOCK_GRANT_TESTS"), *p;
	size_t n = strlen(name);

	if (!list || !*list)
		return true;
	for (p = list; (p = strstr(p, name)); p += n)
		if ((p == list || p[-1] == ',') && (!p[n] || p[n] == ','))
			return true;
	return false;
}

FIXTURE_SETUP(grant)
{
	int ret;

	if (!test_selected(_metadata->name))
		SKIP(return, "not in GNTSOCK_GRANT_TESTS");
	signal(SIGPIPE, SIG_IGN);
	page_size = sysconf(_SC_PAGESIZE);
	ret = gnt_env_domid("GNTSOCK_PEER_DOMID", &self->peer);
	if (ret == -ENOENT)
		SKIP(return, "GNTSOCK_PEER_DOMID is not set");
	ASSERT_EQ(0, ret);
}

/* A test that changed revocable_map leaves both ends as it found them. */
FIXTURE_TEARDOWN(grant)
{
	if (!self->restore_peer_rmap && !self->restore_own_rmap)
		return;
	if (self->restore_peer_rmap)
		EXPECT_EQ(0, peer_set_revocable_map(self->peer, true));
	if (self->restore_own_rmap)
		EXPECT_EQ(0, own_set_revocable_map(true));
	EXPECT_EQ(0, reconnect(self->peer))
		TH_LOG("the link did not come back after revocable_map=auto");
}

#define NEED_PEER() do { if (_metadata->skip) return; } while (0)
#define NEED_LINK_TOOL() do {						\
		if (!getenv("GNTSOCK_LINK_TOOL"))			\
			SKIP(return, "GNTSOCK_LINK_TOOL not set (dom0 only)"); \
	} while (0)

/*
 * Does this kernel see the xen-backend extension (forced revokes, revocable
 * maps)? 1 or 0, or -errno if the module does not say.
 */
static int xen_revoke_present(void)
{
	uint64_t v = 0;
	int ret = grants_get("xen_revoke", &v);

	return ret ? ret : !!v;
}

/* Write this domain's revocable_map module parameter ("auto" or "0"). */
static int own_set_revocable_map(bool on)
{
	const char *v = on ? "auto" : "0";
	int fd = open("/sys/module/gntsock/parameters/revocable_map",
		      O_WRONLY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, v, strlen(v)) != (ssize_t)strlen(v))
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * Are our grants to @peer revocable-only, so that a forced revoke can take
 * them back? The extension must be there, and the peer must have said on
 * the link that it maps revocably. 1 or 0, or -errno.
 */
static int revocable_towards(unsigned int peer)
{
	uint64_t v = 0;
	int xr = xen_revoke_present(), ret;

	if (xr <= 0)
		return xr;
	ret = gnt_link_field(peer, "peer_revocable_map", &v);
	return ret ? -ret : !!v;
}

static void *grant_buf(size_t pages)
{
	void *p = mmap(NULL, pages * page_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int req_grant(int fd, void *buf, size_t blen, uint32_t flags,
		     uint64_t cookie, uint32_t op, uint32_t arg, uint64_t val)
{
	struct gnt_grant_req req = { .op = op, .arg = arg, .val = val };
	ssize_t n = send_grant(fd, buf, blen, flags, cookie, &req,
			       sizeof(req));

	if (n < 0)
		return -errno;
	return n == sizeof(req) ? 0 : -EIO;
}

static int req_plain(int fd, uint32_t op, uint32_t arg)
{
	struct gnt_grant_req req = { .op = op, .arg = arg };

	return gnt_send_all(fd, &req, sizeof(req), NULL);
}

static int get_reply(int fd, struct gnt_grant_reply *r)
{
	return gnt_recv_all(fd, r, sizeof(*r), NULL);
}

/* The peer kernel's counters through the GRANT service. */
static int peer_counts(unsigned int peer, struct gnt_grant_reply *r)
{
	int fd = gnt_connect(peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	int ret;

	if (fd < 0)
		return fd;
	ret = req_plain(fd, GR_COUNTS, 0);
	if (!ret)
		ret = get_reply(fd, r);
	close(fd);
	return ret ? ret : (r->err ? -r->err : 0);
}

/* One request without a grant to the peer's GRANT service. */
static int peer_req(unsigned int peer, uint32_t op, uint32_t arg,
		    const char *name, struct gnt_grant_reply *r)
{
	struct gnt_grant_req req = { .op = op, .arg = arg };
	int fd = gnt_connect(peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	int ret;

	if (fd < 0)
		return fd;
	if (name)
		snprintf(req.name, sizeof(req.name), "%s", name);
	ret = gnt_send_all(fd, &req, sizeof(req), NULL);
	if (!ret)
		ret = get_reply(fd, r);
	close(fd);
	if (ret)
		return ret;
	return r->err ? -r->err : (r->e1 ? -r->e1 : 0);
}

/* A counter of the peer's /proc/net/gntsock_grants. */
static int peer_counter(unsigned int peer, const char *name, uint64_t *val)
{
	struct gnt_grant_reply r;
	int ret = peer_req(peer, GR_COUNTER, 0, name, &r);

	if (!ret)
		*val = r.val;
	return ret;
}

/* The peer's revocable_map module parameter: "auto" (@on) or "0". */
static int peer_set_revocable_map(unsigned int peer, bool on)
{
	struct gnt_grant_reply r;

	return peer_req(peer, GR_REVOCABLE_MAP, on, NULL, &r);
}

/*
 * Both kernels back to zero grants in flight (within timeout_ms): no grant
 * pinned or deferred here, none held or mapped there.
 */
static int wait_idle(unsigned int peer, int timeout_ms, char *why, size_t wl)
{
	int64_t end = gnt_now_ms() + timeout_ms;
	struct gnt_grant_reply r;
	uint64_t out, def, in, mapped;
	int ret, pret;

	memset(&r, 0, sizeof(r));
	for (;;) {
		ret = grants_get("out_grants", &out);
		ret = ret ?: grants_get("deferred", &def);
		ret = ret ?: grants_get("in_grants", &in);
		ret = ret ?: grants_get("in_mapped", &mapped);
		if (ret)
			return ret;
		/* A connect that times out under a loaded emulator is retried
		 * until the deadline like any other "not idle yet".
		 */
		pret = peer_counts(peer, &r);
		if (pret && pret != -ETIMEDOUT)
			return pret;
		if (!pret && !out && !def && !in && !mapped && !r.val &&
		    !r.e1 && !r.e2 && !r.e3)
			return 0;
		if (gnt_now_ms() > end) {
			snprintf(why, wl, "local out %" PRIu64 " deferred %"
				 PRIu64 " in %" PRIu64 " mapped %" PRIu64
				 "; peer out %" PRIu64 " in %d mapped %d "
				 "deferred %d%s", out, def, in, mapped, r.val,
				 r.e1, r.e2, r.e3,
				 pret ? " (peer counters: timed out)" : "");
			return -ETIMEDOUT;
		}
		gnt_sleep_ms(100);
	}
}

static int run_link_tool(const char *op, unsigned int peer)
{
	const char *tool = getenv("GNTSOCK_LINK_TOOL");
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "'%s' %s 0 %u >/dev/null 2>&1", tool, op,
		 peer);
	return system(cmd);
}

/* Re-add the link to @peer and wait until the GRANT service answers. */
static int relink(unsigned int peer)
{
	struct gnt_link_info li;
	int64_t end;
	int fd;

	if (run_link_tool("add", peer))
		return -1;
	if (gnt_wait_link_state(peer, "connected", 60000, &li))
		return -1;
	end = gnt_now_ms() + 30000;
	while ((fd = gnt_connect(peer, GNTSOCK_PEER_PORT_GRANT,
				 IO_TIMEOUT_S)) < 0 && gnt_now_ms() < end)
		gnt_sleep_ms(250);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/*
 * Remove the link to @peer and add it again (dom0 only): both ends
 * negotiate afresh, with the revocable_map each has now.
 */
static int reconnect(unsigned int peer)
{
	if (run_link_tool("del", peer))
		return -1;
	return relink(peer);
}

/*
 * Grant violations this kernel counted that no test caused on purpose.
 * A test that makes a peer commit one on purpose adds it to the file below
 * (in this domain, so across the suite's runs in one boot), and the checks
 * that no violation was counted take those off.
 */
#define VIOLATIONS_MEANT "/tmp/gntsock_grant_violations_meant"

static uint64_t violations_meant(void)
{
	unsigned long long n = 0;
	FILE *f = fopen(VIOLATIONS_MEANT, "r");

	if (f) {
		if (fscanf(f, "%llu", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n;
}

static int violations_meant_add(uint64_t n)
{
	uint64_t total = violations_meant() + n;
	FILE *f = fopen(VIOLATIONS_MEANT, "w");
	int ret;

	if (!f)
		return -errno;
	ret = fprintf(f, "%llu\n", (unsigned long long)total) < 0 ? -EIO : 0;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

static int unexpected_violations(uint64_t *v)
{
	int ret = grants_get("violations", v);

	if (!ret)
		*v -= violations_meant();
	return ret;
}

#define EXPECT_IDLE(peer) do {						\
		char _why[256] = "";					\
		EXPECT_EQ(0, wait_idle(peer, 15000, _why, sizeof(_why)))\
			TH_LOG("grants left: %s", _why);		\
	} while (0)

/* The peer released the grant of @cookie: its RELEASED event is next on
 * @fd's error queue.
 */
static void expect_released(struct __test_metadata *_metadata, int fd,
			    uint64_t cookie)
{
	struct gntsock_grant_event ev;

	ASSERT_EQ(0, wait_event(fd, 10000, &ev));
	EXPECT_EQ(GNTSOCK_EV_RELEASED, ev.type) TH_LOG("event %u", ev.type);
	EXPECT_EQ(cookie, ev.cookie);
}

/* A writable grant: the peer reads what we wrote and writes back. */
TEST_F_TIMEOUT(grant, writable_round_trip, 60)
{
	size_t pages = 4, len = pages * page_size;
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r;
	unsigned char *buf, scratch[64];
	uint64_t seed_out = 0x1234, seed_back = 0xfeedULL << 20;
	uint64_t released0 = 0, released1 = 0;
	int fd;

	NEED_PEER();
	buf = grant_buf(pages);
	ASSERT_NE(NULL, buf);
	gnt_pattern_fill(seed_out, 0, buf, len);
	grants_get("released", &released0);
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd) TH_LOG("connect: %s", strerror(-fd));
	ASSERT_EQ(0, req_grant(fd, buf, len, GNTSOCK_GRANT_WRITABLE, 77,
			       GR_XOR, 0, seed_back));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.err);
	EXPECT_EQ(0, r.e1) TH_LOG("peer mmap: %s", strerror(r.e1));
	EXPECT_EQ(0, r.e2) TH_LOG("peer release: %s", strerror(r.e2));
	EXPECT_EQ(GNTSOCK_GRANT_WRITABLE, r.flags);
	EXPECT_NE(0, r.id);
	gnt_pattern_fill(seed_out, 0, scratch, 0);
	{
		unsigned char *tmp = malloc(len);

		ASSERT_NE(NULL, tmp);
		gnt_pattern_fill(seed_out, 0, tmp, len);
		EXPECT_EQ(gnt_fnv1a64(GNT_FNV1A64_INIT, tmp, len), r.val)
			TH_LOG("the peer did not read what we granted");
		free(tmp);
	}
	/* The peer's writes are in our memory. */
	EXPECT_EQ(-1, gnt_pattern_check(seed_back, 0, buf, len, scratch,
					sizeof(scratch)));
	ASSERT_EQ(0, wait_event(fd, 10000, &ev));
	EXPECT_EQ(GNTSOCK_EV_RELEASED, ev.type);
	EXPECT_EQ(77, ev.cookie);
	EXPECT_EQ(r.id, ev.id);
	EXPECT_EQ(pages, ev.pages);
	grants_get("released", &released1);
	EXPECT_EQ(released0 + 1, released1);
	close(fd);
	munmap(buf, len);
	EXPECT_IDLE(self->peer);
}

/* A read-only grant cannot be written by the peer. */
TEST_F_TIMEOUT(grant, readonly_enforced, 60)
{
	size_t len = 2 * page_size;
	struct gnt_grant_reply r;
	unsigned char *buf, scratch[64];
	int fd;

	NEED_PEER();
	buf = grant_buf(2);
	ASSERT_NE(NULL, buf);
	gnt_pattern_fill(99, 0, buf, len);
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_grant(fd, buf, len, 0, 5, GR_TRY_WRITE, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.err) TH_LOG("peer: %s", strerror(r.err));
	EXPECT_EQ(0, r.flags);
	EXPECT_EQ(EACCES, r.e1) TH_LOG("PROT_WRITE mmap of a read-only grant");
	EXPECT_EQ(EACCES, r.e2) TH_LOG("mprotect(PROT_WRITE)");
	EXPECT_NE(0, r.e3) TH_LOG("the write to a read-only grant went through");
	EXPECT_EQ(-1, gnt_pattern_check(99, 0, buf, len, scratch,
					sizeof(scratch)));
	EXPECT_EQ(gnt_fnv1a64(GNT_FNV1A64_INIT, buf, len), r.val);
	expect_released(_metadata, fd, 5);
	close(fd);
	munmap(buf, len);
	EXPECT_IDLE(self->peer);
}

static void revoke_case(struct __test_metadata *_metadata, unsigned int peer,
			bool mapped)
{
	size_t len = page_size;
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r;
	uint64_t cookie = mapped ? 0xabc : 0xdef, revoked0 = 0, revoked1 = 0;
	unsigned char *buf;
	int fd;

	buf = grant_buf(1);
	ASSERT_NE(NULL, buf);
	memset(buf, 0x5a, len);
	grants_get("revoked", &revoked0);
	fd = gnt_connect(peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_grant(fd, buf, len, GNTSOCK_GRANT_WRITABLE, cookie,
			       mapped ? GR_HOLD : GR_KEEP, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.e1);
	if (mapped) {
		EXPECT_EQ(gnt_fnv1a64(GNT_FNV1A64_INIT, buf, len), r.val);
		/* Mapped once only: a second mmap of it is refused. */
		EXPECT_EQ(EBUSY, r.flags) TH_LOG("second mmap: %s",
						 strerror(r.flags));
	}
	EXPECT_EQ(-1, ioctl(fd, GNTSOCK_IOC_REVOKE, &(uint64_t){ 12345 }));
	EXPECT_EQ(ENOENT, errno);
	ASSERT_EQ(0, ioctl(fd, GNTSOCK_IOC_REVOKE, &cookie));
	ASSERT_EQ(0, wait_event(fd, 10000, &ev));
	EXPECT_EQ(GNTSOCK_EV_REVOKED, ev.type);
	EXPECT_EQ(cookie, ev.cookie);
	grants_get("revoked", &revoked1);
	EXPECT_EQ(revoked0 + 1, revoked1);
	ASSERT_EQ(0, req_plain(fd, GR_REPORT, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.err);
	EXPECT_EQ(GNTSOCK_EV_REVOKED, r.e1) TH_LOG("receiver saw no revoke");
	if (mapped)
		EXPECT_EQ(SIGBUS, r.e2)
			TH_LOG("access after revoke: signal %d", r.e2);
	EXPECT_EQ(ENOLINK, r.e3) TH_LOG("mmap after revoke: %s",
					strerror(r.e3));
	EXPECT_EQ(0, r.flags) TH_LOG("release after revoke: %s",
				     strerror(r.flags));
	close(fd);
	munmap(buf, len);
	EXPECT_IDLE(peer);
}

TEST_F_TIMEOUT(grant, revoke_while_mapped, 60)
{
	NEED_PEER();
	revoke_case(_metadata, self->peer, true);
}

TEST_F_TIMEOUT(grant, revoke_while_unmapped, 60)
{
	NEED_PEER();
	revoke_case(_metadata, self->peer, false);
}

/* Closing the sending socket revokes what the peer still maps. */
TEST_F_TIMEOUT(grant, close_revokes, 60)
{
	struct gnt_grant_reply r;
	unsigned char *buf;
	int fd;

	NEED_PEER();
	buf = grant_buf(8);
	ASSERT_NE(NULL, buf);
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_grant(fd, buf, 8 * page_size, GNTSOCK_GRANT_WRITABLE,
			       1, GR_HOLD, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.e1);
	close(fd);
	munmap(buf, 8 * page_size);
	EXPECT_IDLE(self->peer);
}

/*
 * A peer kernel that ignores the revoke: after revoke_timeout_ms the grant
 * is quarantined (pinned, deferred, reported); once the peer finally
 * unmaps, it is reclaimed and nothing is left.
 */
TEST_F_TIMEOUT(grant, quarantine_then_reclaim, 120)
{
	unsigned int old_timeout = 0;
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r;
	uint64_t q0 = 0, q1 = 0, d = 0, rc0 = 0, rc1 = 0;
	unsigned char *buf;
	int fd;

	NEED_PEER();
	if (revocable_towards(self->peer) > 0)
		SKIP(return, "the hypervisor revokes by force (forced_revoke_reclaims)");
	buf = grant_buf(2);
	ASSERT_NE(NULL, buf);
	grants_get("quarantined", &q0);
	grants_get("reclaimed", &rc0);
	ASSERT_EQ(0, sysctl_set("revoke_timeout_ms", 300, &old_timeout));
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_grant(fd, buf, 2 * page_size, GNTSOCK_GRANT_WRITABLE,
			       42, GR_STUBBORN, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.e1);
	ASSERT_EQ(0, r.e3) TH_LOG("peer could not set fault_ignore_revoke: %s",
				  strerror(r.e3));
	ASSERT_EQ(0, ioctl(fd, GNTSOCK_IOC_REVOKE, &(uint64_t){ 42 }));
	ASSERT_EQ(0, wait_event(fd, 10000, &ev));
	EXPECT_EQ(GNTSOCK_EV_QUARANTINED, ev.type);
	EXPECT_EQ(42, ev.cookie);
	grants_get("quarantined", &q1);
	EXPECT_EQ(q0 + 1, q1);
	grants_get("deferred", &d);
	EXPECT_EQ(1, d);
	/* The peer finally lets go: munmap and release. */
	ASSERT_EQ(0, req_plain(fd, GR_REPORT, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.e2) TH_LOG("the mapping should still have worked");
	EXPECT_EQ(0, r.flags);
	ASSERT_EQ(0, sysctl_set("revoke_timeout_ms", old_timeout, NULL));
	close(fd);
	munmap(buf, 2 * page_size);
	EXPECT_IDLE(self->peer);
	grants_get("reclaimed", &rc1);
	EXPECT_EQ(rc0 + 1, rc1);
}

static uint64_t fnv(const void *p, size_t len)
{
	return gnt_fnv1a64(GNT_FNV1A64_INIT, p, len);
}

/*
 * A peer kernel that ignores the revoke keeps a writable mapping of 16
 * pages. With the xen-backend extension (decided by discovery) the revoke
 * is forced once revoke_timeout_ms passes: every page comes back at once
 * (GNTSOCK_EV_FORCED, nothing pinned or deferred), the peer's mapping then
 * shows its own zeroed replacement pages, never our new data, and its
 * writes land there, not in our pages. On a stock hypervisor the grant is
 * quarantined instead, and the peer's mapping still reaches our pages.
 */
TEST_F_TIMEOUT(grant, forced_revoke_reclaims, 120)
{
	const size_t pages = 16, len = pages * page_size;
	const unsigned int timeout = 500;
	unsigned int old_timeout = 0, old_interval = 0;
	uint64_t f0 = 0, f1 = 0, q0 = 0, q1 = 0, rc0 = 0, rc1 = 0, v = 0;
	uint64_t seed = test_token(), fnv_a, fnv_b, fnv_zero, fnv_pat;
	struct gnt_grant_req req = { .op = GR_REPORT };
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r, r1;
	unsigned char *buf, *tmp;
	int64_t t0, dt;
	int fd, xr;

	NEED_PEER();
	xr = revocable_towards(self->peer);
	ASSERT_LE(0, xr) TH_LOG("no xen_revoke line in " GRANTS_PATH
				" or no peer_revocable_map in " GNT_LINKS_PATH);
	TH_LOG("revocable-only grants to the peer %s: expecting %s",
	       xr ? "yes" : "no", xr ? "a forced revoke" : "quarantine");
	buf = grant_buf(pages);
	tmp = malloc(len);
	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, tmp);
	gnt_pattern_fill(seed, 0, buf, len);
	fnv_a = fnv(buf, len);
	memset(tmp, 0, len);
	fnv_zero = fnv(tmp, len);
	gnt_pattern_fill(seed + 1, 0, tmp, len);
	fnv_pat = fnv(tmp, len);
	ASSERT_EQ(0, grants_get("forced", &f0));
	ASSERT_EQ(0, grants_get("quarantined", &q0));
	ASSERT_EQ(0, grants_get("reclaimed", &rc0));
	ASSERT_EQ(0, sysctl_set("revoke_timeout_ms", timeout, &old_timeout));
	ASSERT_EQ(0, sysctl_set("reclaim_interval_ms", 100, &old_interval));
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_grant(fd, buf, len, GNTSOCK_GRANT_WRITABLE, 77,
			       GR_STUBBORN_RW, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	ASSERT_EQ(0, r.e1) TH_LOG("peer could not map: %s", strerror(r.e1));
	ASSERT_EQ(0, r.e3) TH_LOG("peer could not set fault_ignore_revoke: %s",
				  strerror(r.e3));
	EXPECT_EQ(fnv_a, r.val) TH_LOG("the peer's mapping shows other data");

	t0 = gnt_now_ms();
	ASSERT_EQ(0, ioctl(fd, GNTSOCK_IOC_REVOKE, &(uint64_t){ 77 }));
	ASSERT_EQ(0, wait_event(fd, timeout + 10000, &ev));
	dt = gnt_now_ms() - t0;
	TH_LOG("event %u after %" PRId64 " ms (revoke_timeout_ms %u)", ev.type,
	       dt, timeout);
	EXPECT_EQ(77, ev.cookie);
	EXPECT_EQ(pages, ev.pages);
	ASSERT_EQ(0, grants_get("forced", &f1));
	ASSERT_EQ(0, grants_get("quarantined", &q1));
	if (xr) {
		EXPECT_EQ(GNTSOCK_EV_FORCED, ev.type);
		EXPECT_EQ(f0 + 1, f1);
		EXPECT_EQ(q0, q1);
		/* Not before the timeout; an upper bound with slack for
		 * emulated CPUs (a quarantine would not be FORCED anyway).
		 */
		EXPECT_LE(timeout, dt);
		EXPECT_LE(dt, timeout + 10000);
		/* Every page is back: nothing pinned, granted or deferred. */
		EXPECT_EQ(0, grants_get("out_grants", &v));
		EXPECT_EQ(0, v);
		EXPECT_EQ(0, grants_get("out_pages", &v));
		EXPECT_EQ(0, v);
		EXPECT_EQ(0, grants_get("deferred", &v));
		EXPECT_EQ(0, v);
		/* ...while the peer still holds its mapping. */
		EXPECT_EQ(0, peer_counts(self->peer, &r1));
		EXPECT_EQ(1, r1.e2) TH_LOG("peer in_mapped");
	} else {
		EXPECT_EQ(GNTSOCK_EV_QUARANTINED, ev.type);
		EXPECT_EQ(q0 + 1, q1);
		EXPECT_EQ(f0, f1);
		EXPECT_EQ(0, grants_get("deferred", &v));
		EXPECT_EQ(1, v);
	}

	/* New data in our pages; then the peer reads and writes its mapping. */
	gnt_pattern_fill(seed + 2, 0, buf, len);
	fnv_b = fnv(buf, len);
	req.val = seed + 1;
	ASSERT_EQ(0, gnt_send_all(fd, &req, sizeof(req), NULL));
	ASSERT_EQ(0, get_reply(fd, &r1));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r1.e2) TH_LOG("reading the mapping raised signal %d", r1.e2);
	EXPECT_EQ(0, r.e2) TH_LOG("reading back raised signal %d", r.e2);
	EXPECT_EQ(fnv_pat, r.val) TH_LOG("the peer's writes did not stick");
	EXPECT_EQ(0, r.flags) TH_LOG("peer release: %s", strerror(r.flags));
	if (xr) {
		EXPECT_EQ(fnv_zero, r1.val)
			TH_LOG("the peer should see its zeroed replacement pages");
		EXPECT_NE(fnv_b, r1.val) TH_LOG("the peer saw our new data");
		EXPECT_EQ(fnv_b, fnv(buf, len))
			TH_LOG("the peer's writes reached our pages");
	} else {
		/* Quarantine keeps the pages shared: that is its weakness. */
		EXPECT_EQ(fnv_b, r1.val);
		EXPECT_EQ(fnv_pat, fnv(buf, len));
	}
	ASSERT_EQ(0, sysctl_set("revoke_timeout_ms", old_timeout, NULL));
	ASSERT_EQ(0, sysctl_set("reclaim_interval_ms", old_interval, NULL));
	close(fd);
	munmap(buf, len);
	free(tmp);
	EXPECT_IDLE(self->peer);
	ASSERT_EQ(0, grants_get("reclaimed", &rc1));
	EXPECT_EQ(rc0 + (xr ? 0 : 1), rc1);
	/* The peer's late release of the forced grant is no violation. */
	ASSERT_EQ(0, unexpected_violations(&v));
	EXPECT_EQ(0, v);
}

/*
 * A receiving kernel without revocable maps (the peer told to map plainly
 * through its fault_plain_map parameter): with the extension our grants are
 * revocable-only and Xen must refuse the map (EFAULT from mmap); on a stock
 * hypervisor the plain map works and shows our data.
 */
TEST_F_TIMEOUT(grant, plain_map_of_revocable_only_fails, 60)
{
	const size_t pages = 2, len = pages * page_size;
	struct gnt_grant_reply r;
	unsigned char *buf;
	int fd, xr;

	NEED_PEER();
	xr = revocable_towards(self->peer);
	ASSERT_LE(0, xr) TH_LOG("no xen_revoke line in " GRANTS_PATH
				" or no peer_revocable_map in " GNT_LINKS_PATH);
	buf = grant_buf(pages);
	ASSERT_NE(NULL, buf);
	gnt_pattern_fill(test_token(), 0, buf, len);
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_grant(fd, buf, len, GNTSOCK_GRANT_WRITABLE, 78,
			       GR_PLAIN, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	ASSERT_EQ(0, r.e3) TH_LOG("peer could not set fault_plain_map: %s",
				  strerror(r.e3));
	if (xr) {
		EXPECT_EQ(EFAULT, r.e1)
			TH_LOG("a plain map of a revocable-only grant: %s",
			       strerror(r.e1));
	} else {
		EXPECT_EQ(0, r.e1) TH_LOG("plain map: %s", strerror(r.e1));
		EXPECT_EQ(fnv(buf, len), r.val);
	}
	EXPECT_EQ(0, r.e2) TH_LOG("peer release: %s", strerror(r.e2));
	close(fd);
	munmap(buf, len);
	EXPECT_IDLE(self->peer);
}

/* Wait until this kernel has no grant out and none deferred. */
static int wait_out_idle(int timeout_ms, uint64_t *out, uint64_t *def)
{
	int64_t end = gnt_now_ms() + timeout_ms;

	for (;;) {
		if (grants_get("out_grants", out) || grants_get("deferred", def))
			return -1;
		if (!*out && !*def)
			return 0;
		if (gnt_now_ms() >= end)
			return -1;
		gnt_sleep_ms(100);
	}
}

/*
 * dom0 removes the link under a mapped grant (GNTSOCK_LINK_TOOL set: dom0
 * only): the receiver unmaps, the granter ends the grant; if the receiver
 * still maps it, the hypervisor extension revokes it at once (FORCED, never
 * quarantined), a stock hypervisor leaves it quarantined until the
 * receiver has unmapped. Then the link comes back.
 */
TEST_F_TIMEOUT(grant, link_teardown_ends_grants, 240)
{
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r;
	uint64_t out = 1, def = 1;
	unsigned char *buf;
	int fd, xr;

	NEED_PEER();
	if (!getenv("GNTSOCK_LINK_TOOL"))
		SKIP(return, "GNTSOCK_LINK_TOOL not set (dom0 only)");
	buf = grant_buf(4);
	ASSERT_NE(NULL, buf);
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_grant(fd, buf, 4 * page_size, GNTSOCK_GRANT_WRITABLE,
			       9, GR_HOLD, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.e1);
	xr = revocable_towards(self->peer);
	ASSERT_LE(0, xr);
	ASSERT_EQ(0, run_link_tool("del", self->peer));
	ASSERT_EQ(0, wait_event(fd, 10000, &ev));
	TH_LOG("event %u (xen_revoke %d)", ev.type, xr);
	if (xr) {
		EXPECT_TRUE(ev.type == GNTSOCK_EV_REVOKED ||
			    ev.type == GNTSOCK_EV_FORCED)
			TH_LOG("event %u", ev.type);
		/* Nothing waits for the receiver: nothing deferred. */
		grants_get("deferred", &def);
		EXPECT_EQ(0, def);
	} else {
		EXPECT_TRUE(ev.type == GNTSOCK_EV_REVOKED ||
			    ev.type == GNTSOCK_EV_QUARANTINED)
			TH_LOG("event %u", ev.type);
	}
	EXPECT_EQ(9, ev.cookie);
	/* Nothing is left (at the latest once the receiver has unmapped). */
	EXPECT_EQ(0, wait_out_idle(15000, &out, &def))
		TH_LOG("out_grants %" PRIu64 ", deferred %" PRIu64, out, def);
	close(fd);
	ASSERT_EQ(0, relink(self->peer)) TH_LOG("link not back after re-adding");
	munmap(buf, 4 * page_size);
	EXPECT_IDLE(self->peer);
}

/*
 * As above, but the receiving kernel does not let go when the link goes
 * (fault_ignore_revoke) and its process keeps the mapping a few seconds
 * more: with the hypervisor extension the grant is revoked by force at
 * once (FORCED; nothing pinned, granted or deferred right after the
 * event); on a stock hypervisor it is quarantined and reclaimed once the
 * receiver unmaps.
 */
TEST_F_TIMEOUT(grant, link_teardown_stubborn_receiver, 240)
{
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r;
	uint64_t out = 1, def = 1, f0 = 0, f1 = 0;
	unsigned char *buf;
	int fd, xr;

	NEED_PEER();
	if (!getenv("GNTSOCK_LINK_TOOL"))
		SKIP(return, "GNTSOCK_LINK_TOOL not set (dom0 only)");
	xr = revocable_towards(self->peer);
	ASSERT_LE(0, xr);
	buf = grant_buf(4);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, grants_get("forced", &f0));
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_grant(fd, buf, 4 * page_size, GNTSOCK_GRANT_WRITABLE,
			       19, GR_STUBBORN, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	ASSERT_EQ(0, r.e1) TH_LOG("peer could not map: %s", strerror(r.e1));
	ASSERT_EQ(0, r.e3) TH_LOG("peer could not set fault_ignore_revoke: %s",
				  strerror(r.e3));
	ASSERT_EQ(0, run_link_tool("del", self->peer));
	ASSERT_EQ(0, wait_event(fd, 10000, &ev));
	TH_LOG("event %u (xen_revoke %d)", ev.type, xr);
	EXPECT_EQ(19, ev.cookie);
	EXPECT_EQ(4, ev.pages);
	if (xr) {
		EXPECT_EQ(GNTSOCK_EV_FORCED, ev.type);
		ASSERT_EQ(0, grants_get("forced", &f1));
		EXPECT_EQ(f0 + 1, f1);
		ASSERT_EQ(0, grants_get("out_grants", &out));
		EXPECT_EQ(0, out);
		ASSERT_EQ(0, grants_get("deferred", &def));
		EXPECT_EQ(0, def);
	} else {
		EXPECT_EQ(GNTSOCK_EV_QUARANTINED, ev.type);
	}
	/* Nothing is left (at the latest once the receiver has unmapped). */
	EXPECT_EQ(0, wait_out_idle(15000, &out, &def))
		TH_LOG("out_grants %" PRIu64 ", deferred %" PRIu64, out, def);
	close(fd);
	ASSERT_EQ(0, relink(self->peer)) TH_LOG("link not back after re-adding");
	munmap(buf, 4 * page_size);
	EXPECT_IDLE(self->peer);
}

/*
 * Per-link negotiation (dom0 only: it reconnects the link). Each end tells
 * the other whether it maps grants revocably (xenstore
 * feature-revocable-map), and /proc/net/gntsock_links shows both answers
 * at both ends. Then this end says it cannot (revocable_map=0), the link
 * reconnects, and both views follow: this checks the backend's key (we are
 * the backend of a link to a domU), the next test the frontend's.
 */
TEST_F_TIMEOUT(grant, link_negotiates_revocable_map, 240)
{
	uint64_t own = 9, peer_can = 9, v = 9;
	struct gnt_grant_reply r;

	NEED_PEER();
	NEED_LINK_TOOL();
	ASSERT_EQ(0, grants_get("xen_map_revocable", &own));
	ASSERT_EQ(0, peer_counter(self->peer, "xen_map_revocable", &peer_can));
	TH_LOG("maps revocably: this domain %" PRIu64 ", the peer %" PRIu64,
	       own, peer_can);
	EXPECT_EQ(0, gnt_link_field(self->peer, "revocable_map", &v));
	EXPECT_EQ(own, v) TH_LOG("what we told the peer");
	EXPECT_EQ(0, gnt_link_field(self->peer, "peer_revocable_map", &v));
	EXPECT_EQ(peer_can, v) TH_LOG("what the peer told us");
	ASSERT_EQ(0, peer_req(self->peer, GR_LINK_FIELD, 0,
			      "peer_revocable_map", &r));
	EXPECT_EQ(own, r.val) TH_LOG("what the peer heard from us");

	self->restore_own_rmap = true;
	ASSERT_EQ(0, own_set_revocable_map(false));
	ASSERT_EQ(0, grants_get("xen_map_revocable", &v));
	EXPECT_EQ(0, v);
	/* Links already up keep what they negotiated... */
	EXPECT_EQ(0, gnt_link_field(self->peer, "revocable_map", &v));
	EXPECT_EQ(own, v);
	/* ...until they reconnect. */
	ASSERT_EQ(0, reconnect(self->peer));
	EXPECT_EQ(0, gnt_link_field(self->peer, "revocable_map", &v));
	EXPECT_EQ(0, v);
	EXPECT_EQ(0, gnt_link_field(self->peer, "peer_revocable_map", &v));
	EXPECT_EQ(peer_can, v);
	ASSERT_EQ(0, peer_req(self->peer, GR_LINK_FIELD, 0,
			      "peer_revocable_map", &r));
	EXPECT_EQ(0, r.val) TH_LOG("the peer still thinks we map revocably");
	/* The teardown says "auto" again and reconnects. */
}

/*
 * A receiver that cannot map revocably (dom0 only), as a PV domain whose
 * grant maps need IOMMU mappings: told so through its revocable_map
 * parameter, it says so when the link reconnects; our grants to it are
 * then plain (offered_plain here) and it maps them plainly (mapped_plain
 * there) instead of failing, with the hypervisor extension as without.
 * Data goes both ways, the cooperative revoke works, and a revoke it
 * ignores ends in quarantine and reclaim, never in a forced revoke.
 */
TEST_F_TIMEOUT(grant, plain_receiver_gets_plain_grants, 300)
{
	const size_t pages = 4, len = pages * page_size;
	uint64_t op0 = 0, op1 = 0, mp0 = 0, mp1 = 0, m0 = 0, m1 = 0, v = 9;
	uint64_t q0 = 0, q1 = 0, f0 = 0, f1 = 0, rc0 = 0, rc1 = 0;
	uint64_t seed = test_token();
	unsigned int old_timeout = 0;
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r;
	unsigned char *buf, scratch[64];
	int fd;

	NEED_PEER();
	NEED_LINK_TOOL();
	self->restore_peer_rmap = true;
	ASSERT_EQ(0, peer_set_revocable_map(self->peer, false))
		TH_LOG("the peer could not set revocable_map");
	ASSERT_EQ(0, reconnect(self->peer));
	ASSERT_EQ(0, gnt_link_field(self->peer, "peer_revocable_map", &v));
	EXPECT_EQ(0, v) TH_LOG("the peer still says it maps revocably");
	EXPECT_EQ(0, revocable_towards(self->peer));
	TH_LOG("xen_revoke %d", xen_revoke_present());

	/* A writable round trip. */
	buf = grant_buf(pages);
	ASSERT_NE(NULL, buf);
	gnt_pattern_fill(seed, 0, buf, len);
	ASSERT_EQ(0, grants_get("offered_plain", &op0));
	ASSERT_EQ(0, peer_counter(self->peer, "mapped_plain", &mp0));
	ASSERT_EQ(0, peer_counter(self->peer, "mapped", &m0));
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_grant(fd, buf, len, GNTSOCK_GRANT_WRITABLE, 31,
			       GR_XOR, 0, seed + 1));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.err);
	EXPECT_EQ(0, r.e1) TH_LOG("peer mmap of a plain grant: %s",
				  strerror(r.e1));
	EXPECT_EQ(0, r.e2) TH_LOG("peer release: %s", strerror(r.e2));
	{
		unsigned char *tmp = malloc(len);

		ASSERT_NE(NULL, tmp);
		gnt_pattern_fill(seed, 0, tmp, len);
		EXPECT_EQ(fnv(tmp, len), r.val)
			TH_LOG("the peer did not read what we granted");
		free(tmp);
	}
	EXPECT_EQ(-1, gnt_pattern_check(seed + 1, 0, buf, len, scratch,
					sizeof(scratch)))
		TH_LOG("the peer's writes are not in our pages");
	ASSERT_EQ(0, wait_event(fd, 10000, &ev));
	EXPECT_EQ(GNTSOCK_EV_RELEASED, ev.type);
	close(fd);
	ASSERT_EQ(0, grants_get("offered_plain", &op1));
	EXPECT_EQ(op0 + 1, op1) TH_LOG("offered_plain");
	ASSERT_EQ(0, peer_counter(self->peer, "mapped_plain", &mp1));
	ASSERT_EQ(0, peer_counter(self->peer, "mapped", &m1));
	EXPECT_EQ(mp0 + 1, mp1) TH_LOG("the peer's mapped_plain");
	EXPECT_EQ(m0 + 1, m1) TH_LOG("the peer's mapped");

	/* The cooperative revoke, mapped and not mapped. */
	revoke_case(_metadata, self->peer, true);
	revoke_case(_metadata, self->peer, false);
	ASSERT_EQ(0, grants_get("offered_plain", &op1));
	EXPECT_EQ(op0 + 3, op1) TH_LOG("offered_plain");

	/* A revoke it ignores: quarantine, also with the extension. */
	ASSERT_EQ(0, grants_get("quarantined", &q0));
	ASSERT_EQ(0, grants_get("forced", &f0));
	ASSERT_EQ(0, grants_get("reclaimed", &rc0));
	ASSERT_EQ(0, sysctl_set("revoke_timeout_ms", 300, &old_timeout));
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_grant(fd, buf, 2 * page_size, GNTSOCK_GRANT_WRITABLE,
			       43, GR_STUBBORN, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.e1) TH_LOG("peer mmap: %s", strerror(r.e1));
	ASSERT_EQ(0, r.e3) TH_LOG("peer could not set fault_ignore_revoke: %s",
				  strerror(r.e3));
	ASSERT_EQ(0, ioctl(fd, GNTSOCK_IOC_REVOKE, &(uint64_t){ 43 }));
	ASSERT_EQ(0, wait_event(fd, 10000, &ev));
	EXPECT_EQ(GNTSOCK_EV_QUARANTINED, ev.type) TH_LOG("event %u", ev.type);
	ASSERT_EQ(0, grants_get("quarantined", &q1));
	ASSERT_EQ(0, grants_get("forced", &f1));
	EXPECT_EQ(q0 + 1, q1);
	EXPECT_EQ(f0, f1) TH_LOG("a plain grant cannot be revoked by force");
	ASSERT_EQ(0, req_plain(fd, GR_REPORT, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.e2) TH_LOG("the mapping should still have worked");
	EXPECT_EQ(0, r.flags);
	ASSERT_EQ(0, sysctl_set("revoke_timeout_ms", old_timeout, NULL));
	close(fd);
	munmap(buf, len);
	EXPECT_IDLE(self->peer);
	ASSERT_EQ(0, grants_get("reclaimed", &rc1));
	EXPECT_EQ(rc0 + 1, rc1);
	ASSERT_EQ(0, unexpected_violations(&v));
	EXPECT_EQ(0, v);
}

/*
 * The end of access of a revocable-only grant (dom0 only). Its reference is
 * ended by Xen together with the removal of its revocable-only mark
 * (GNTTABOP_revoke, GNTTAB_REVOKE_END_ACCESS) before it is freed: never
 * freed with the mark, never unmarked while mapped. A one-page grant is
 * ended (round 1) by the peer's release, (round 2) by a forced revoke of a
 * peer that keeps its mapping; the grant table hands the reference just
 * freed out first again, so granting the same page to the same peer, now
 * told to map plainly (revocable_map=0, link reconnected), reuses the same
 * reference for the same frame and peer: a mark left on it would make the
 * plain map fail. It must work and show our data.
 */
TEST_F_TIMEOUT(grant, revocable_refs_freed_unmarked, 300)
{
	const unsigned int timeout = 500;
	unsigned int old_timeout = 0, old_interval = 0, round;
	uint64_t mp0 = 0, mp1 = 0, f0 = 0, f1 = 0, v = 9;
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r;
	unsigned char *buf;
	int fd, xr;

	NEED_PEER();
	NEED_LINK_TOOL();
	xr = revocable_towards(self->peer);
	ASSERT_LE(0, xr);
	if (!xr)
		SKIP(return, "our grants to the peer are not revocable-only (xen_revoke %d)",
		     xen_revoke_present());
	buf = grant_buf(1);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, sysctl_set("revoke_timeout_ms", timeout, &old_timeout));
	ASSERT_EQ(0, sysctl_set("reclaim_interval_ms", 100, &old_interval));
	for (round = 1; round <= 2; round++) {
		gnt_pattern_fill(test_token(), 0, buf, page_size);
		fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT,
				 IO_TIMEOUT_S);
		ASSERT_LE(0, fd);
		if (round == 1) {
			/* Mapped revocably, written, released. */
			ASSERT_EQ(0, req_grant(fd, buf, page_size,
					       GNTSOCK_GRANT_WRITABLE, 51,
					       GR_XOR, 0, test_token()));
			ASSERT_EQ(0, get_reply(fd, &r));
			EXPECT_EQ(0, r.e1) TH_LOG("peer mmap: %s",
						  strerror(r.e1));
			ASSERT_EQ(0, wait_event(fd, 10000, &ev));
			EXPECT_EQ(GNTSOCK_EV_RELEASED, ev.type);
		} else {
			/* Kept mapped through the revoke: forced. */
			ASSERT_EQ(0, grants_get("forced", &f0));
			ASSERT_EQ(0, req_grant(fd, buf, page_size,
					       GNTSOCK_GRANT_WRITABLE, 52,
					       GR_STUBBORN, 0, 0));
			ASSERT_EQ(0, get_reply(fd, &r));
			EXPECT_EQ(0, r.e1) TH_LOG("peer mmap: %s",
						  strerror(r.e1));
			ASSERT_EQ(0, r.e3);
			ASSERT_EQ(0, ioctl(fd, GNTSOCK_IOC_REVOKE,
					   &(uint64_t){ 52 }));
			ASSERT_EQ(0, wait_event(fd, timeout + 10000, &ev));
			EXPECT_EQ(GNTSOCK_EV_FORCED, ev.type);
			ASSERT_EQ(0, grants_get("forced", &f1));
			EXPECT_EQ(f0 + 1, f1);
			ASSERT_EQ(0, req_plain(fd, GR_REPORT, 0));
			ASSERT_EQ(0, get_reply(fd, &r));
			EXPECT_EQ(0, r.flags) TH_LOG("late release: %s",
						     strerror(r.flags));
		}
		close(fd);
		EXPECT_IDLE(self->peer);

		/* The same page, plainly, to a peer that maps plainly. */
		self->restore_peer_rmap = true;
		ASSERT_EQ(0, peer_set_revocable_map(self->peer, false));
		ASSERT_EQ(0, reconnect(self->peer));
		ASSERT_EQ(0, gnt_link_field(self->peer, "peer_revocable_map",
					    &v));
		ASSERT_EQ(0, v);
		ASSERT_EQ(0, peer_counter(self->peer, "mapped_plain", &mp0));
		fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT,
				 IO_TIMEOUT_S);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, req_grant(fd, buf, page_size, 0, 53, GR_READ, 0,
				       0));
		ASSERT_EQ(0, get_reply(fd, &r));
		EXPECT_EQ(0, r.e1)
			TH_LOG("round %u: a plain map of the reused reference failed: %s",
			       round, strerror(r.e1));
		EXPECT_EQ(fnv(buf, page_size), r.val);
		ASSERT_EQ(0, wait_event(fd, 10000, &ev));
		EXPECT_EQ(GNTSOCK_EV_RELEASED, ev.type);
		close(fd);
		ASSERT_EQ(0, peer_counter(self->peer, "mapped_plain", &mp1));
		EXPECT_EQ(mp0 + 1, mp1);
		EXPECT_IDLE(self->peer);
		ASSERT_EQ(0, peer_set_revocable_map(self->peer, true));
		ASSERT_EQ(0, reconnect(self->peer));
		self->restore_peer_rmap = false;
		ASSERT_LT(0, revocable_towards(self->peer))
			TH_LOG("the peer does not map revocably again");
	}
	ASSERT_EQ(0, sysctl_set("revoke_timeout_ms", old_timeout, NULL));
	ASSERT_EQ(0, sysctl_set("reclaim_interval_ms", old_interval, NULL));
	munmap(buf, page_size);
	ASSERT_EQ(0, unexpected_violations(&v));
	EXPECT_EQ(0, v);
}

/* The grant is ordered with the bytes it travels with. */
TEST_F_TIMEOUT(grant, stream_ordering, 60)
{
	unsigned char data[250], *buf;
	struct gnt_grant_reply r;
	int fd;

	NEED_PEER();
	buf = grant_buf(1);
	ASSERT_NE(NULL, buf);
	memset(data, 'x', sizeof(data));
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_plain(fd, GR_ORDER, sizeof(data)));
	ASSERT_EQ(0, gnt_send_all(fd, data, 100, NULL));
	ASSERT_EQ(50, send_grant(fd, buf, page_size, 0, 3, data, 50));
	ASSERT_EQ(0, gnt_send_all(fd, data, 100, NULL));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.err);
	EXPECT_EQ(1, r.e1);
	EXPECT_EQ(100, r.val) TH_LOG("grant arrived at offset %" PRIu64,
				     r.val);
	close(fd);
	munmap(buf, page_size);
	EXPECT_IDLE(self->peer);
}

/*
 * SOCK_SEQPACKET: the grant travels with its record, records stay whole,
 * and a writable grant round-trips as on a stream.
 */
TEST_F_TIMEOUT(grant, seqpacket_ordering, 60)
{
	size_t len = 2 * page_size;
	struct sockaddr_gnt a;
	char data[250];
	struct gnt_grant_reply r;
	unsigned char *buf, *want;
	uint64_t seed = 0x5e9;
	int fd, ret;

	NEED_PEER();
	buf = grant_buf(2);
	want = malloc(len);
	ASSERT_NE(NULL, buf);
	ASSERT_NE(NULL, want);
	memset(data, 's', sizeof(data));
	a = gnt_addr(self->peer, GNTSOCK_PEER_PORT_GRANT_SEQ);
	fd = socket(AF_GNTSOCK, SOCK_SEQPACKET, 0);
	ASSERT_LE(0, fd);
	ret = gnt_set_timeouts(fd, IO_TIMEOUT_S);
	ASSERT_EQ(0, ret);
	ret = connect(fd, (struct sockaddr *)&a, sizeof(a));
	ASSERT_EQ(0, ret) TH_LOG("connect: %s", strerror(errno));
	/* Records of 100, 50 (with the grant) and 100 bytes: the peer reads
	 * them one record per recvmsg() and sees the grant with the second.
	 */
	ASSERT_EQ(0, req_plain(fd, GR_ORDER, sizeof(data)));
	ASSERT_EQ(100, send(fd, data, 100, 0));
	ASSERT_EQ(50, send_grant(fd, buf, page_size, 0, 4, data, 50));
	ASSERT_EQ(100, send(fd, data, 100, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.err);
	EXPECT_EQ(1, r.e1);
	EXPECT_EQ(100, r.val) TH_LOG("grant arrived at offset %" PRIu64,
				     r.val);
	expect_released(_metadata, fd, 4);

	/* A writable grant in a record: the peer reads and writes it. */
	gnt_pattern_fill(seed, 0, buf, len);
	gnt_pattern_fill(seed, 0, want, len);
	ASSERT_EQ(0, req_grant(fd, buf, len, GNTSOCK_GRANT_WRITABLE, 5,
			       GR_XOR, 0, seed + 1));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.err);
	EXPECT_EQ(0, r.e1) TH_LOG("peer mmap: %s", strerror(r.e1));
	EXPECT_EQ(gnt_fnv1a64(GNT_FNV1A64_INIT, want, len), r.val)
		TH_LOG("the peer did not read what we granted");
	EXPECT_EQ(-1, gnt_pattern_check(seed + 1, 0, buf, len, want, 64))
		TH_LOG("the peer's writes did not reach our pages");
	expect_released(_metadata, fd, 5);
	close(fd);
	munmap(buf, len);
	free(want);
	EXPECT_IDLE(self->peer);
}

/* Loopback has no other domain to grant to: EOPNOTSUPP, the data unsent. */
TEST_F_TIMEOUT(grant, loopback_refused, 60)
{
	unsigned char *buf;
	char data[8] = "loopback", back[8];
	int fd;

	NEED_PEER();
	buf = grant_buf(1);
	ASSERT_NE(NULL, buf);
	fd = gnt_connect(GNTSOCK_DOMID_SELF, GNTSOCK_PEER_PORT_ECHO,
			 IO_TIMEOUT_S);
	ASSERT_LE(0, fd) TH_LOG("loopback connect: %s", strerror(-fd));
	EXPECT_EQ(-1, send_grant(fd, buf, page_size, 0, 6, data, 4));
	EXPECT_EQ(EOPNOTSUPP, errno);
	/* The connection still works and nothing of the refused call went. */
	ASSERT_EQ(0, gnt_send_all(fd, data, sizeof(data), NULL));
	ASSERT_EQ(0, gnt_recv_all(fd, back, sizeof(back), NULL));
	EXPECT_EQ(0, memcmp(data, back, sizeof(back)));
	close(fd);
	munmap(buf, page_size);
}

static int drop_cap_ipc_lock(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		return -errno;
	d[CAP_IPC_LOCK / 32].effective &= ~(1U << (CAP_IPC_LOCK % 32));
	if (syscall(SYS_capset, &h, d))
		return -errno;
	return 0;
}

/* Bad requests and policy: clear errnos, nothing in flight lost. */
TEST_F_TIMEOUT(grant, errors_and_limits, 120)
{
	struct gntsock_grant_event ev;
	struct gnt_grant_req req = { .op = GR_READ };
	struct gnt_grant_reply r;
	unsigned int old_msg = 0, old_sock = 0;
	unsigned char *buf;
	pid_t pid;
	int fd, st;

	NEED_PEER();
	buf = grant_buf(8);
	ASSERT_NE(NULL, buf);
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	/* unaligned address, length, no data, bad flags */
	EXPECT_EQ(-1, send_grant(fd, buf + 1, page_size, 0, 0, &req, sizeof(req)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, send_grant(fd, buf, page_size + 1, 0, 0, &req, sizeof(req)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, send_grant(fd, buf, 0, 0, 0, &req, sizeof(req)));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, send_grant(fd, buf, page_size, 0, 0, &req, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, send_grant(fd, buf, page_size, 0x80, 0, &req, sizeof(req)));
	EXPECT_EQ(EINVAL, errno);
	/* unmapped memory */
	EXPECT_EQ(-1, send_grant(fd, (void *)(uintptr_t)page_size, page_size,
				 0, 0, &req, sizeof(req)));
	EXPECT_EQ(EFAULT, errno);
	/* per-message limit */
	ASSERT_EQ(0, sysctl_set("max_pages_msg", 4, &old_msg));
	EXPECT_EQ(-1, send_grant(fd, buf, 5 * page_size, 0, 0, &req, sizeof(req)));
	EXPECT_EQ(EMSGSIZE, errno);
	ASSERT_EQ(0, sysctl_set("max_pages_msg", old_msg, NULL));
	/* per-socket limit, with one grant in flight that must survive */
	ASSERT_EQ(0, sysctl_set("max_pages_sock", 2, &old_sock));
	ASSERT_EQ(0, req_grant(fd, buf, page_size, 0, 11, GR_KEEP, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.err);
	EXPECT_EQ(-1, send_grant(fd, buf, 2 * page_size, 0, 0, &req, sizeof(req)));
	EXPECT_EQ(ENOBUFS, errno);
	ASSERT_EQ(0, sysctl_set("max_pages_sock", old_sock, NULL));
	ASSERT_EQ(0, ioctl(fd, GNTSOCK_IOC_REVOKE, &(uint64_t){ 11 }));
	ASSERT_EQ(0, wait_event(fd, 10000, &ev));
	EXPECT_EQ(GNTSOCK_EV_REVOKED, ev.type);
	EXPECT_EQ(11, ev.cookie);
	ASSERT_EQ(0, req_plain(fd, GR_REPORT, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(GNTSOCK_EV_REVOKED, r.e1);
	/* mmap of a grant id this socket never received */
	EXPECT_EQ(MAP_FAILED, mmap(NULL, page_size, PROT_READ, MAP_SHARED, fd,
				   123 * page_size));
	EXPECT_EQ(ENOENT, errno);
	/* release of an unknown id */
	EXPECT_EQ(-1, ioctl(fd, GNTSOCK_IOC_RELEASE, &(uint32_t){ 123 }));
	EXPECT_EQ(ENOENT, errno);
	/* the capability policy */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (drop_cap_ipc_lock())
			_exit(2);
		_exit(send_grant(fd, buf, page_size, 0, 0, &req, sizeof(req)) == -1 &&
		      errno == EPERM ? 0 : 1);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0)
		TH_LOG("without CAP_IPC_LOCK: status %#x", st);
	close(fd);
	munmap(buf, 8 * page_size);
	EXPECT_IDLE(self->peer);
}

/*
 * net.gntsock.max_pages_peer holds for concurrent senders: eight
 * processes, each on its own connection, send a one-page grant to the same
 * peer at once, with room for four. Exactly four get through and stay in
 * flight (the peer keeps them), the others get ENOBUFS, and the four
 * survive the refusals.
 */
TEST_F_TIMEOUT(grant, peer_limit_concurrent, 120)
{
	enum { NPROC = 8, LIMIT = 4 };
	int go[2], res[2], done[2], i, rc, ok = 0, nobufs = 0, st;
	unsigned int old = 0;
	unsigned char *buf;
	pid_t pids[NPROC];
	char gobuf[NPROC];

	NEED_PEER();
	buf = grant_buf(NPROC);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(res));
	ASSERT_EQ(0, pipe(done));
	ASSERT_EQ(0, sysctl_set("max_pages_peer", LIMIT, &old));
	for (i = 0; i < NPROC; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (!pids[i]) {
			struct gnt_grant_reply r;
			int fd;
			char c;

			close(go[1]);
			close(res[0]);
			close(done[1]);
			fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT,
					 IO_TIMEOUT_S);
			if (read(go[0], &c, 1) != 1)
				_exit(2);
			rc = fd < 0 ? fd :
			     req_grant(fd, buf + i * page_size, page_size, 0,
				       100 + i, GR_KEEP, 0, 0);
			if (!rc)
				rc = get_reply(fd, &r) ? -EIO :
				     r.err ? -(int)r.err : 0;
			if (write(res[1], &rc, sizeof(rc)) != sizeof(rc))
				_exit(2);
			/* Keep the grant in flight until every sender tried. */
			(void)!read(done[0], &c, 1);
			_exit(0);
		}
	}
	close(go[0]);
	close(res[1]);
	close(done[0]);
	memset(gobuf, 'g', sizeof(gobuf));
	ASSERT_EQ(NPROC, write(go[1], gobuf, sizeof(gobuf)));
	for (i = 0; i < NPROC; i++) {
		ASSERT_EQ(sizeof(rc), read(res[0], &rc, sizeof(rc)));
		if (!rc)
			ok++;
		else if (rc == -ENOBUFS)
			nobufs++;
		else
			TH_LOG("a sender got %s", strerror(-rc));
	}
	close(done[1]);
	for (i = 0; i < NPROC; i++)
		ASSERT_EQ(pids[i], waitpid(pids[i], &st, 0));
	close(go[1]);
	close(res[0]);
	ASSERT_EQ(0, sysctl_set("max_pages_peer", old, NULL));
	EXPECT_EQ(LIMIT, ok);
	EXPECT_EQ(NPROC - LIMIT, nobufs);
	munmap(buf, NPROC * page_size);
	EXPECT_IDLE(self->peer);
}

/* Give this kernel's next grant the id @id (module parameter). */
static int next_grant_id(uint32_t id)
{
	FILE *f = fopen("/sys/module/gntsock/parameters/fault_grant_id", "w");
	int ret;

	if (!f)
		return -errno;
	ret = fprintf(f, "%u\n", id) < 0 ? -EIO : 0;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

/*
 * A granter may reuse the id of a grant the receiver answered for (defect
 * 9 of issue 12: a dead grant stayed listed and shadowed the new one, whose
 * mmap() then failed with ENOLINK). While the application has not released
 * the dead grant, its id stays taken on that socket: a new grant under it
 * is refused (the granter hears REFUSED), mmap() of the id still says
 * ENOLINK; once released, the id maps the new grant.
 */
TEST_F_TIMEOUT(grant, reused_id_of_a_dead_grant, 60)
{
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r;
	unsigned char *buf;
	uint64_t cookie = 1;
	uint32_t id;
	int fd;

	NEED_PEER();
	buf = grant_buf(1);
	ASSERT_NE(NULL, buf);
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_grant(fd, buf, page_size, 0, 1, GR_REUSED, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	ASSERT_EQ(0, r.err);
	id = r.id;
	ASSERT_NE(0, id);
	ASSERT_EQ(0, ioctl(fd, GNTSOCK_IOC_REVOKE, &cookie));
	ASSERT_EQ(0, wait_event(fd, 10000, &ev));
	EXPECT_EQ(GNTSOCK_EV_REVOKED, ev.type) TH_LOG("event %u", ev.type);
	/* The peer still lists the dead grant: a new one under its id. */
	ASSERT_EQ(0, next_grant_id(id));
	ASSERT_EQ(0, req_grant(fd, buf, page_size, 0, 2, GR_READ, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.e1) TH_LOG("the peer got grant %d under a dead id",
				  r.e1);
	EXPECT_EQ(ENOLINK, r.e2) TH_LOG("mmap of the dead id: %s",
					strerror(r.e2));
	EXPECT_EQ(0, r.val) TH_LOG("release of the dead id: %s",
				   strerror((int)r.val));
	ASSERT_EQ(0, wait_event(fd, 10000, &ev));
	EXPECT_EQ(GNTSOCK_EV_REFUSED, ev.type) TH_LOG("event %u", ev.type);
	EXPECT_EQ(2, ev.cookie);
	/* Released: the id is free on that socket and maps the new grant. */
	ASSERT_EQ(0, next_grant_id(id));
	ASSERT_EQ(0, req_grant(fd, buf, page_size, 0, 3, GR_READ, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(id, r.id);
	EXPECT_EQ(0, r.e1) TH_LOG("map: %s", strerror(r.e1));
	expect_released(_metadata, fd, 3);
	close(fd);
	munmap(buf, page_size);
	EXPECT_IDLE(self->peer);
}

/*
 * A STREAM send with a grant waits for the peer's credit before the grant
 * goes (defect 9 of issue 12): it used to put the grant in the ring, then
 * fail with EAGAIN for want of credit, so that the retry sent it twice.
 */
TEST_F_TIMEOUT(grant, stream_grant_waits_for_credit, 60)
{
	uint64_t offered0 = 0, offered1 = 0, out0 = 0, out1 = 0;
	unsigned char data[65536] = { 0 };
	uint64_t filled;
	unsigned char *buf;
	ssize_t n;
	int fd;

	NEED_PEER();
	buf = grant_buf(1);
	ASSERT_NE(NULL, buf);
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_HOLD, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	/* HOLD never reads: take all of its credit. */
	ASSERT_LE(0, gnt_fill_credit(fd, data, sizeof(data), 30000, &filled));
	ASSERT_EQ(0, grants_get("offered", &offered0));
	ASSERT_EQ(0, grants_get("out_grants", &out0));
	n = gnt_grant_sendmsg(fd, buf, page_size, 0, 9, data, 1,
			      MSG_DONTWAIT | MSG_NOSIGNAL);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(EAGAIN, errno);
	ASSERT_EQ(0, grants_get("offered", &offered1));
	ASSERT_EQ(0, grants_get("out_grants", &out1));
	EXPECT_EQ(offered0, offered1) TH_LOG("the grant went without its byte");
	EXPECT_EQ(out0, out1);
	close(fd);
	munmap(buf, page_size);
	EXPECT_IDLE(self->peer);
}

/*
 * A writable grant of a shared mapping of a file whose filesystem tracks
 * dirty pages is refused (defect 9 of issue 12): the peer would write the
 * long-term pinned page behind the filesystem's back, which may write it
 * back or truncate it as clean meanwhile. ramfs stands for them here: its
 * mappings have page_mkwrite, as ext4's or FUSE's do. A read-only grant
 * of the same page still goes, and the peer reads the file's data.
 */
TEST_F_TIMEOUT(grant, shared_file_mapping_not_granted_writable, 60)
{
	char dir[] = "/tmp/gntsock-ramfs-XXXXXX", path[64];
	uint64_t offered0 = 0, offered1 = 0;
	struct gnt_grant_reply r;
	unsigned char *buf;
	int fd, ffd;

	NEED_PEER();
	ASSERT_NE(NULL, mkdtemp(dir));
	if (mount("gntsock", dir, "ramfs", 0, NULL)) {
		rmdir(dir);
		SKIP(return, "mount ramfs: %s", strerror(errno));
	}
	snprintf(path, sizeof(path), "%s/f", dir);
	ffd = open(path, O_RDWR | O_CREAT, 0600);
	ASSERT_LE(0, ffd);
	ASSERT_EQ(0, ftruncate(ffd, page_size));
	buf = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, ffd, 0);
	ASSERT_NE(MAP_FAILED, buf);
	gnt_pattern_fill(31, 0, buf, page_size);
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, grants_get("offered", &offered0));
	EXPECT_EQ(-EOPNOTSUPP, req_grant(fd, buf, page_size,
					 GNTSOCK_GRANT_WRITABLE, 1, GR_READ,
					 0, 0));
	ASSERT_EQ(0, grants_get("offered", &offered1));
	EXPECT_EQ(offered0, offered1) TH_LOG("granted writable");
	/* Nothing went: the connection carries the read-only grant next. */
	ASSERT_EQ(0, req_grant(fd, buf, page_size, 0, 2, GR_READ, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.e1) TH_LOG("map: %s", strerror(r.e1));
	EXPECT_EQ(gnt_fnv1a64(GNT_FNV1A64_INIT, buf, page_size), r.val);
	expect_released(_metadata, fd, 2);
	close(fd);
	munmap(buf, page_size);
	close(ffd);
	EXPECT_EQ(0, umount(dir));
	rmdir(dir);
	EXPECT_IDLE(self->peer);
}

/*
 * The receiving kernel's own limit (net.gntsock.max_in_pages_sock, at its
 * default of 4096 pages in the peer): grants queue on a socket whose
 * reader never takes them (the HOLD service does not read) until it holds
 * 4096 pages; the next grant is refused, the sender learns it (REFUSED,
 * with its cookie), and the grants already queued stay out until the
 * connection closes, when they all come back.
 */
#define IN_LIMIT_PAGES	4096	/* max_in_pages_sock's default */
#define IN_PIECE_PAGES	256	/* max_pages_msg's default */
TEST_F_TIMEOUT(grant, receiver_refuses_beyond_its_limit, 120)
{
	size_t n = IN_LIMIT_PAGES / IN_PIECE_PAGES + 1, piece, i;
	struct gntsock_grant_event ev;
	unsigned int old_sock = 0;
	uint64_t out = 0, refused0 = 0, refused1 = 0;
	unsigned char *buf;
	int fd;

	NEED_PEER();
	piece = IN_PIECE_PAGES * page_size;
	buf = grant_buf(n * IN_PIECE_PAGES);
	ASSERT_NE(NULL, buf);
	/* Our own per-socket limit must not stop us first. */
	ASSERT_EQ(0, sysctl_set("max_pages_sock", 2 * IN_LIMIT_PAGES,
				&old_sock));
	grants_get("refused", &refused0);
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_HOLD, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	for (i = 0; i < n; i++)
		ASSERT_EQ(0, req_grant(fd, buf + i * piece, piece, 0, 500 + i,
				       GR_KEEP, 0, 0))
			TH_LOG("grant %zu", i);
	ASSERT_EQ(0, wait_event(fd, 10000, &ev));
	EXPECT_EQ(GNTSOCK_EV_REFUSED, ev.type) TH_LOG("event %u", ev.type);
	EXPECT_EQ(500 + n - 1, ev.cookie);
	EXPECT_EQ(IN_PIECE_PAGES, ev.pages);
	/* Counted here too; the grants queued before it stay out. */
	grants_get("refused", &refused1);
	EXPECT_EQ(refused0 + 1, refused1);
	ASSERT_EQ(0, grants_get("out_pages", &out));
	EXPECT_EQ(IN_LIMIT_PAGES, out);
	ASSERT_EQ(0, sysctl_set("max_pages_sock", old_sock, NULL));
	close(fd);
	munmap(buf, n * piece);
	EXPECT_IDLE(self->peer);
}

/* Kill -9 the receiving process while it maps, many times. */
TEST_F_TIMEOUT(grant, receiver_killed_while_mapped, 120)
{
	struct gnt_grant_reply r;
	unsigned char *buf;
	int fd, i, bad = 0;

	NEED_PEER();
	buf = grant_buf(4);
	ASSERT_NE(NULL, buf);
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	srand(getpid());
	for (i = 0; i < 20; i++) {
		ASSERT_EQ(0, req_grant(fd, buf, 4 * page_size,
				       GNTSOCK_GRANT_WRITABLE, i, GR_MAP_DIE,
				       rand() % 20000, 0));
		ASSERT_EQ(0, get_reply(fd, &r));
		if (r.err || r.e1 || r.e2)
			bad++;
		expect_released(_metadata, fd, i);
	}
	EXPECT_EQ(0, bad);
	close(fd);
	munmap(buf, 4 * page_size);
	EXPECT_IDLE(self->peer);
}

/* One sender's life: connect, grant, maybe revoke, until killed. */
static void sender_child(unsigned int peer, unsigned int seed)
{
	struct gnt_grant_reply r;
	unsigned char *buf = grant_buf(4);
	uint64_t c;
	int fd;

	srand(seed);
	if (!buf)
		_exit(1);
	for (c = 1;; c++) {
		fd = gnt_connect(peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
		if (fd < 0)
			_exit(1);
		switch (rand() % 3) {
		case 0:
			if (!req_grant(fd, buf, 4 * page_size,
				       GNTSOCK_GRANT_WRITABLE, c, GR_XOR, 0, c))
				get_reply(fd, &r);
			break;
		case 1:
			if (!req_grant(fd, buf, page_size, 0, c, GR_HOLD, 0, 0))
				get_reply(fd, &r);
			ioctl(fd, GNTSOCK_IOC_REVOKE, &c);
			break;
		default:
			if (!req_grant(fd, buf, 2 * page_size,
				       GNTSOCK_GRANT_WRITABLE, c, GR_HOLD, 0, 0))
				get_reply(fd, &r);
		}
		close(fd);
	}
}

/*
 * >= 200 random kill -9 during grant traffic, of a sender here (a child
 * granting in a loop, killed after a random delay) or of a receiver there
 * (GR_MAP_DIE: a child of the responder that maps our grant, killed after
 * a random delay): nothing leaks in either kernel.
 */
TEST_F_TIMEOUT(grant, kill_loop, 600)
{
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r;
	int i, st, fd, senders = 0, receivers = 0, bad = 0;
	unsigned char *buf;
	pid_t pid;

	NEED_PEER();
	buf = grant_buf(2);
	ASSERT_NE(NULL, buf);
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	srand(getpid() ^ 0x5eed);
	for (i = 0; i < KILL_LOOPS; i++) {
		if (rand() % 2) {
			receivers++;
			ASSERT_EQ(0, req_grant(fd, buf, 2 * page_size,
					       GNTSOCK_GRANT_WRITABLE, i,
					       GR_MAP_DIE, rand() % 20000, 0));
			ASSERT_EQ(0, get_reply(fd, &r));
			if (r.err || r.e1 || r.e2)
				bad++;
			ASSERT_EQ(0, wait_event(fd, 10000, &ev));
			if (ev.type != GNTSOCK_EV_RELEASED ||
			    ev.cookie != (uint64_t)i)
				bad++;
			continue;
		}
		senders++;
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			sender_child(self->peer, rand());
		usleep(rand() % 30000);
		kill(pid, SIGKILL);
		ASSERT_EQ(pid, waitpid(pid, &st, 0));
	}
	TH_LOG("killed %d senders and %d receivers", senders, receivers);
	EXPECT_EQ(0, bad);
	close(fd);
	munmap(buf, 2 * page_size);
	EXPECT_IDLE(self->peer);
}

/*
 * The race this interface exists for (design doc, steps 1-4), against
 * AF_GNTSOCK: the sender C offers a grant, the receiver S learns its name
 * and is "preempted"; C is killed; C's kernel ends the grant and reuses its
 * references for new grants to S; S wakes up and tries to map the old
 * grant. It must fail cleanly (ENOLINK), and what S maps later is only ever
 * what was offered to it under that name.
 */
TEST_F_TIMEOUT(grant, race_late_map_fails, 120)
{
	struct gnt_grant_reply r;
	uint64_t token = test_token(), v0 = 0, v1 = 0;
	unsigned char *buf;
	int i, fd, pfd[2];
	char c;
	pid_t pid;

	NEED_PEER();
	ASSERT_EQ(0, pipe(pfd));
	grants_get("revoked", &v0);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {		/* C */
		buf = grant_buf(1);
		if (!buf)
			_exit(1);
		memcpy(buf, "OLD-DATA", 8);
		fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT,
				 IO_TIMEOUT_S);
		if (fd < 0 || req_grant(fd, buf, page_size, 0, 1, GR_RACE,
					1500, token) || get_reply(fd, &r))
			_exit(1);
		c = 1;
		if (write(pfd[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	ASSERT_EQ(1, read(pfd[0], &c, 1)) TH_LOG("C never got its grant out");
	close(pfd[0]);
	/* Step 2: C dies while S sleeps. */
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, NULL, 0));
	/* Step 3: the references are ended and reused for new grants to S,
	 * which S maps and unmaps legitimately.
	 */
	buf = grant_buf(1);
	ASSERT_NE(NULL, buf);
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	for (i = 0; i < 8; i++) {
		memcpy(buf, "NEW-DATA", 8);
		ASSERT_EQ(0, req_grant(fd, buf, page_size,
				       GNTSOCK_GRANT_WRITABLE, 100 + i,
				       GR_XOR, 0, i));
		ASSERT_EQ(0, get_reply(fd, &r));
		EXPECT_EQ(0, r.e1);
	}
	close(fd);
	grants_get("revoked", &v1);
	EXPECT_LE(v0 + 1, v1) TH_LOG("C's grant was not revoked");
	/* Step 4: S wakes up and tries the old grant. */
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, gnt_send_all(fd, &(struct gnt_grant_req){
			.op = GR_RACE_RESULT, .val = token },
			sizeof(struct gnt_grant_req), NULL));
	ASSERT_EQ(0, get_reply(fd, &r));
	close(fd);
	EXPECT_EQ(0, r.err);
	EXPECT_EQ(GNTSOCK_EV_REVOKED, r.e1) TH_LOG("S saw no revoke");
	EXPECT_EQ(ENOLINK, r.e2)
		TH_LOG("late mmap of the dead grant: %s (read '%.8s')",
		       strerror(r.e2), (char *)&r.val);
	munmap(buf, page_size);
	EXPECT_IDLE(self->peer);
}

/*
 * A revoke that reaches the receiver while its mmap() is mapping the grant
 * (claimed, and mapped without the grant lock) waits for the mapping, takes
 * it down at once, and only then is answered. Grants of MAPRACE_PAGES
 * pages go to the peer's GR_READ (map, read, unmap, release), each revoked
 * after a delay that sweeps the peer's map. Each must end revoked or
 * released, never quarantined or forced, with no violation (an answer
 * before the unmap would leave the grant mapped when we end it), and the
 * peer's mmap() must succeed (then the range is taken down) or fail with
 * ENOLINK. The peer's killed_mapping counts the revokes that met a mapping
 * in progress: none in MAPRACE_TRIES means the window was never hit (SKIP).
 */
#define MAPRACE_TRIES	80
#define MAPRACE_PAGES	256

TEST_F_TIMEOUT(grant, revoke_while_mapping, 300)
{
	size_t len = MAPRACE_PAGES * page_size;
	uint64_t k0 = 0, k1 = 0, v0 = 0, v1 = 0, q0 = 0, q1 = 0, f0 = 0, f1 = 0;
	int i, fd, mapped = 0, refused = 0, ev_revoked = 0, ev_released = 0;
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r;
	unsigned char *buf;

	NEED_PEER();
	buf = grant_buf(MAPRACE_PAGES);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, peer_counter(self->peer, "killed_mapping", &k0));
	ASSERT_EQ(0, unexpected_violations(&v0));
	grants_get("quarantined", &q0);
	grants_get("forced", &f0);
	for (i = 0; i < MAPRACE_TRIES; i++) {
		uint64_t cookie = 5000 + i;

		/* A connection each: a grant revoked before the peer read it
		 * stays on the peer's socket, dead, until that socket goes.
		 */
		fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT,
				 IO_TIMEOUT_S);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, req_grant(fd, buf, len, 0, cookie, GR_READ, 0, 0));
		usleep((unsigned int)(i * 131) % 8000);
		if (ioctl(fd, GNTSOCK_IOC_REVOKE, &cookie))
			EXPECT_EQ(ENOENT, errno);	/* released already */
		ASSERT_EQ(0, get_reply(fd, &r));
		/* ENOENT: revoked before the peer read it (no cmsg came) */
		if (r.err == ENOENT)
			r.e1 = ENOLINK;
		else
			EXPECT_EQ(0, r.err);
		if (!r.e1)
			mapped++;
		else if (r.e1 == ENOLINK)
			refused++;
		else
			EXPECT_EQ(0, r.e1) TH_LOG("try %d: peer mmap: %s", i,
						  strerror(r.e1));
		ASSERT_EQ(0, wait_event(fd, 10000, &ev));
		EXPECT_EQ(cookie, ev.cookie);
		ev_revoked += ev.type == GNTSOCK_EV_REVOKED;
		ev_released += ev.type == GNTSOCK_EV_RELEASED;
		EXPECT_TRUE(ev.type == GNTSOCK_EV_REVOKED ||
			    ev.type == GNTSOCK_EV_RELEASED)
			TH_LOG("try %d: event %u", i, ev.type);
		close(fd);
	}
	munmap(buf, len);
	EXPECT_IDLE(self->peer);
	ASSERT_EQ(0, peer_counter(self->peer, "killed_mapping", &k1));
	ASSERT_EQ(0, unexpected_violations(&v1));
	grants_get("quarantined", &q1);
	grants_get("forced", &f1);
	TH_LOG("%d tries: peer mapped %d, revoked first %d; %d revoked, %d released; %"
	       PRIu64 " revokes met a mapping in progress", MAPRACE_TRIES,
	       mapped, refused, ev_revoked, ev_released, k1 - k0);
	EXPECT_EQ(v0, v1) TH_LOG("violations: the peer answered a revoke while it still mapped");
	EXPECT_EQ(q0, q1) TH_LOG("grants quarantined");
	EXPECT_EQ(f0, f1) TH_LOG("grants taken back by force");
	if (k1 == k0)
		SKIP(return, "no revoke met the peer's mmap() in progress");
}

/*
 * Control: the same sequence with gntalloc/gntdev, where the grant
 * reference travels as a number in user space. S's late map succeeds and
 * shows a frame that was never offered to it under that reference: the
 * old mechanism races.
 */
TEST_F_TIMEOUT(grant, race_control_gntalloc_gntdev_races, 120)
{
	struct ioctl_gntalloc_alloc_gref a[65];
	struct ioctl_gntalloc_dealloc_gref d;
	struct sockaddr_gnt me;
	socklen_t ml = sizeof(me);
	struct gnt_grant_reply r;
	struct gnt_grant_req req = { .op = GR_GNTDEV_MAP, .arg = 1500 };
	uint32_t old_ref;
	int ga, fd, i, n = 0, reused = -1;
	void *p;

	NEED_PEER();
	ga = open("/dev/xen/gntalloc", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, ga) TH_LOG("/dev/xen/gntalloc: %s", strerror(errno));
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, getsockname(fd, (struct sockaddr *)&me, &ml));
	/* Step 1: C allocates grant X for S and tells S its number. */
	memset(a, 0, sizeof(a));
	a[0].domid = self->peer;
	a[0].flags = GNTALLOC_FLAG_WRITABLE;
	a[0].count = 1;
	ASSERT_EQ(0, ioctl(ga, IOCTL_GNTALLOC_ALLOC_GREF, &a[0]));
	p = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, ga,
		 a[0].index);
	ASSERT_NE(MAP_FAILED, p);
	memcpy(p, "OLD-DATA", 8);
	old_ref = a[0].gref_ids[0];
	req.val = (uint64_t)me.sgnt_domid << 32 | old_ref;
	ASSERT_EQ(0, gnt_send_all(fd, &req, sizeof(req), NULL));
	ASSERT_EQ(0, get_reply(fd, &r));	/* S has the number, sleeps */
	/* Step 2: C is done with X; its kernel frees the reference. */
	munmap(p, page_size);
	d.index = a[0].index;
	d.count = 1;
	ASSERT_EQ(0, ioctl(ga, IOCTL_GNTALLOC_DEALLOC_GREF, &d));
	/* Step 3: the reference is reused for another page granted to S. */
	for (i = 1; i < 65 && reused < 0; i++) {
		a[i].domid = self->peer;
		a[i].flags = GNTALLOC_FLAG_WRITABLE;
		a[i].count = 1;
		if (ioctl(ga, IOCTL_GNTALLOC_ALLOC_GREF, &a[i]))
			break;
		n = i;
		p = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED,
			 ga, a[i].index);
		if (p == MAP_FAILED)
			break;
		memcpy(p, "NEW-DATA", 8);
		munmap(p, page_size);
		if (a[i].gref_ids[0] == old_ref)
			reused = i;
	}
	ASSERT_LE(1, reused) TH_LOG("reference %u was not reused in %d allocations",
				    old_ref, n);
	/* Step 4: S wakes up and maps "X". */
	ASSERT_EQ(0, get_reply(fd, &r));
	close(fd);
	EXPECT_EQ(0, r.err) TH_LOG("peer: %s", strerror(r.err));
	EXPECT_EQ(0, r.e1) TH_LOG("late gntdev map: %s", strerror(r.e1));
	EXPECT_EQ(0, r.e2);
	EXPECT_EQ(0, memcmp(&r.val, "NEW-DATA", 8))
		TH_LOG("the late map read '%.8s'", (char *)&r.val);
	TH_LOG("control: reference %u reused after %d allocations; the late map read '%.8s'",
	       old_ref, reused, (char *)&r.val);
	for (i = 1; i <= n; i++) {
		d.index = a[i].index;
		ioctl(ga, IOCTL_GNTALLOC_DEALLOC_GREF, &d);
	}
	close(ga);
}

/*
 * Issue 12, defect 7a: a sender that never reads its error queue while it
 * makes thousands of grants. The queue is charged to its receive buffer
 * and stops at SO_RCVBUF (SO_MEMINFO shows it); the events without room
 * are counted (events_lost) and, once the queued ones are read, reported
 * by one GNTSOCK_EV_LOST event with their number; then the queue works as
 * before. Before the fix every event stayed queued, uncharged.
 */
#define ERRQ_MIN_GRANTS	1000
#define ERRQ_BATCH	32
#define ERRQ_MIN_TRUESIZE 512	/* an event skb takes at least this much */

static int errq_meminfo(int fd, uint32_t *rmem, uint32_t *rcvbuf)
{
	uint32_t mi[SK_MEMINFO_VARS];
	socklen_t ml = sizeof(mi);

	if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mi, &ml))
		return -errno;
	*rmem = mi[SK_MEMINFO_RMEM_ALLOC];
	*rcvbuf = mi[SK_MEMINFO_RCVBUF];
	return 0;
}

TEST_F_TIMEOUT(grant, errqueue_bounded, 600)
{
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r;
	uint64_t lost0 = 0, lost1 = 0, out = 0, def = 0, got = 0, lost = 0;
	uint32_t rmem = 0, rcvbuf = 0, n, i, j, end;
	bool trunc_read = false;
	unsigned char *buf;
	int fd, ret;

	NEED_PEER();
	buf = grant_buf(1);
	ASSERT_NE(NULL, buf);
	memset(buf, 0x3c, page_size);
	ASSERT_EQ(0, grants_get("events_lost", &lost0))
		TH_LOG("no events_lost counter: the error queue is unbounded");
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, errq_meminfo(fd, &rmem, &rcvbuf));
	n = rcvbuf / ERRQ_MIN_TRUESIZE + 200;
	if (n < ERRQ_MIN_GRANTS)
		n = ERRQ_MIN_GRANTS;
	/* The peer maps, reads, unmaps and releases each: one RELEASED
	 * event per grant on our error queue, which we do not read.
	 */
	for (i = 0; i < n; i = end) {
		end = i + ERRQ_BATCH < n ? i + ERRQ_BATCH : n;
		for (j = i; j < end; j++)
			ASSERT_EQ(0, req_grant(fd, buf, page_size, 0, j + 1,
					       GR_READ, 0, 0))
				TH_LOG("grant %u", j);
		for (j = i; j < end; j++) {
			ASSERT_EQ(0, get_reply(fd, &r));
			ASSERT_EQ(0, r.e1) TH_LOG("peer mmap: %s",
						  strerror(r.e1));
			ASSERT_EQ(0, r.e2) TH_LOG("peer release: %s",
						  strerror(r.e2));
		}
	}
	/* Every grant ended: every event was queued or counted. */
	ASSERT_EQ(0, wait_out_idle(15000, &out, &def));
	ASSERT_EQ(0, errq_meminfo(fd, &rmem, &rcvbuf));
	TH_LOG("%u grants; error queue holds %u bytes of %u", n, rmem, rcvbuf);
	EXPECT_LT(0, rmem) TH_LOG("events not charged to the socket");
	EXPECT_GE(rcvbuf, rmem);
	ASSERT_EQ(0, grants_get("events_lost", &lost1));
	EXPECT_LT(lost0, lost1) TH_LOG("no event was refused");
	/* The queued events, in order, then the report of the lost ones.
	 * Once the queue is empty, a read without room for a cmsg must not
	 * take the report: the count is all there is of those events.
	 */
	for (;;) {
		if (!trunc_read && !errq_meminfo(fd, &rmem, &rcvbuf) && !rmem) {
			struct msghdr m = { 0 };

			trunc_read = true;
			EXPECT_EQ(0, recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT))
				TH_LOG("read without a cmsg buffer: %s",
				       strerror(errno));
			EXPECT_TRUE(m.msg_flags & MSG_CTRUNC);
		}
		ret = wait_event(fd, 500, &ev);
		if (ret)
			break;
		if (ev.type == GNTSOCK_EV_LOST) {
			lost = ev.cookie;
			EXPECT_EQ(0, ev.id);
			EXPECT_EQ(0, ev.pages);
			break;
		}
		EXPECT_EQ(GNTSOCK_EV_RELEASED, ev.type);
		EXPECT_EQ(got + 1, ev.cookie) TH_LOG("event %" PRIu64, got);
		got++;
		if (got > n)
			break;
	}
	TH_LOG("%" PRIu64 " events read, %" PRIu64 " reported lost", got,
	       lost);
	EXPECT_TRUE(trunc_read);
	EXPECT_EQ(0, ret);
	EXPECT_LT(got, n) TH_LOG("every event was queued");
	EXPECT_GE(rcvbuf / ERRQ_MIN_TRUESIZE, got);
	EXPECT_EQ(n, got + lost);
	EXPECT_EQ(lost1 - lost0, lost);
	/* Nothing more, nothing charged; and events are queued again. */
	EXPECT_EQ(-ETIMEDOUT, wait_event(fd, 200, &ev));
	ASSERT_EQ(0, errq_meminfo(fd, &rmem, &rcvbuf));
	EXPECT_EQ(0, rmem);
	ASSERT_EQ(0, req_grant(fd, buf, page_size, 0, n + 1, GR_READ, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	expect_released(_metadata, fd, n + 1);
	close(fd);
	munmap(buf, page_size);
	EXPECT_IDLE(self->peer);
}

/*
 * Issue 12, defect 7b: a peer that never unmaps fills its own quarantine
 * budget (quarantine_max_pages_peer, lowered here to 4 pages); after that
 * grants to it fail with ENOBUFS (quarantine_full), and grants to another
 * peer (GNTSOCK_PEER2_DOMID) still work. Before the fix the budget was
 * global (quarantine_max_pages): the grant to the other peer failed too.
 */
#define STUBBORN_PAGES	4

TEST_F_TIMEOUT(grant, stubborn_peer_fills_only_its_budget, 120)
{
	unsigned int old_peer = 0, old_timeout = 0, peer2;
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r;
	uint64_t full0 = 0, full1 = 0;
	unsigned char *buf;
	int fd, fd2, fd3;

	NEED_PEER();
	if (gnt_env_domid("GNTSOCK_PEER2_DOMID", &peer2))
		SKIP(return, "GNTSOCK_PEER2_DOMID is not set");
	if (revocable_towards(self->peer) > 0)
		SKIP(return, "the hypervisor revokes by force: nothing is quarantined");
	buf = grant_buf(STUBBORN_PAGES);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, grants_get("quarantine_full", &full0));
	ASSERT_EQ(0, sysctl_set("quarantine_max_pages_peer", STUBBORN_PAGES,
				&old_peer));
	ASSERT_EQ(0, sysctl_set("revoke_timeout_ms", 300, &old_timeout));
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_grant(fd, buf, STUBBORN_PAGES * page_size,
			       GNTSOCK_GRANT_WRITABLE, 77, GR_STUBBORN, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.e1);
	ASSERT_EQ(0, r.e3) TH_LOG("peer could not set fault_ignore_revoke: %s",
				  strerror(r.e3));
	ASSERT_EQ(0, ioctl(fd, GNTSOCK_IOC_REVOKE, &(uint64_t){ 77 }));
	ASSERT_EQ(0, wait_event(fd, 10000, &ev));
	EXPECT_EQ(GNTSOCK_EV_QUARANTINED, ev.type);
	/* Its budget is full: one more page to it is refused... */
	fd2 = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(-ENOBUFS, req_grant(fd2, buf, page_size, 0, 78, GR_READ, 0,
				      0));
	close(fd2);
	ASSERT_EQ(0, grants_get("quarantine_full", &full1));
	EXPECT_EQ(full0 + 1, full1);
	/* ...but the other peer still gets its grants. */
	fd3 = gnt_connect(peer2, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd3);
	EXPECT_EQ(0, req_grant(fd3, buf, page_size, 0, 79, GR_READ, 0, 0));
	ASSERT_EQ(0, get_reply(fd3, &r));
	EXPECT_EQ(0, r.e1) TH_LOG("peer 2 mmap: %s", strerror(r.e1));
	EXPECT_EQ(0, r.e2) TH_LOG("peer 2 release: %s", strerror(r.e2));
	expect_released(_metadata, fd3, 79);
	close(fd3);
	/* The stubborn peer finally lets go. */
	ASSERT_EQ(0, req_plain(fd, GR_REPORT, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.flags);
	EXPECT_EQ(0, sysctl_set("revoke_timeout_ms", old_timeout, NULL));
	EXPECT_EQ(0, sysctl_set("quarantine_max_pages_peer", old_peer, NULL));
	close(fd);
	munmap(buf, STUBBORN_PAGES * page_size);
	EXPECT_IDLE(self->peer);
}

/*
 * Issue 12, defect 9: a recvmsg() whose data copy failed (EFAULT) had
 * already written the grant's cmsg and taken the grant off the queue: the
 * application never learnt its id, and the grant stayed mapped-able until
 * close. The peer reads our next request into an unmapped buffer first
 * (GR_EFAULT_NEXT): that read must fail with EFAULT and leave the grant
 * queued, so that the next read gets it with the bytes (GR_EFAULT_CHECK
 * answers ENOENT if the grant did not come).
 */
TEST_F_TIMEOUT(grant, recv_efault_keeps_the_grant, 60)
{
	struct gnt_grant_reply r;
	unsigned char *buf;
	int fd;

	NEED_PEER();
	buf = grant_buf(1);
	ASSERT_NE(NULL, buf);
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_plain(fd, GR_EFAULT_NEXT, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	ASSERT_EQ(0, r.err);
	ASSERT_EQ(0, req_grant(fd, buf, page_size, 0, 91, GR_EFAULT_CHECK, 0,
			       0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(EFAULT, r.e1) TH_LOG("the bad read: %s", strerror(r.e1));
	EXPECT_EQ(0, r.err) TH_LOG("the grant after the failed read: %s",
				   strerror(r.err));
	EXPECT_NE(0, r.id);
	EXPECT_EQ(0, r.e2) TH_LOG("release: %s", strerror(r.e2));
	expect_released(_metadata, fd, 91);
	close(fd);
	munmap(buf, page_size);
	EXPECT_IDLE(self->peer);
}

/*
 * Issue 12, defect 8: an event that brings no work is acknowledged with
 * XEN_EOI_FLAG_SPURIOUS and counted (events_spurious of
 * /proc/net/gntsock_links); every event handled is counted in events_rx,
 * a spurious one too. How many of a polite peer's events are spurious
 * depends on timing alone (an event whose data an earlier event's drain
 * already took is one), so this only checks that the counter is there and
 * is a part of events_rx. That a storm of events is counted as spurious
 * is checked by the hostile step (a peer kernel writing to the event
 * channel in a loop: events_spurious of the victim's link grows).
 */
TEST_F_TIMEOUT(grant, link_events_spurious_counted, 30)
{
	uint64_t rx = 0, spurious = 0;

	NEED_PEER();
	ASSERT_EQ(0, gnt_link_field(self->peer, "events_spurious", &spurious))
		TH_LOG("no events_spurious column");
	ASSERT_EQ(0, gnt_link_field(self->peer, "events_rx", &rx));
	TH_LOG("link to %u: %" PRIu64 " events, %" PRIu64 " spurious",
	       self->peer, rx, spurious);
	EXPECT_LT(0, rx);
	EXPECT_GE(rx, spurious);
}

/* Must stay last: both kernels hold no grant. */
/* The peer's counter @name, waiting up to @ms for it to equal @want. */
static int peer_counter_wait(unsigned int peer, const char *name,
			     uint64_t want, int ms, uint64_t *val)
{
	int ret;

	for (;;) {
		ret = peer_counter(peer, name, val);
		if (ret || *val == want || ms <= 0)
			return ret;
		usleep(100000);
		ms -= 100;
	}
}

/*
 * Defect 2 of issue 12: a pipe holds page references to a grant mapping
 * (vmsplice), the grant is unmapped (munmap and release, or the granter's
 * revoke), then a new grant with another pattern is mapped, likely at the
 * same unpopulated pages on an auto-translated peer (the pool is LIFO).
 * Reading the pipe then must never show the new grant: the old pages are
 * held back (in_held) until the pipe lets go, then returned (no leak).
 * On an auto-translated (PVH, HVM) peer vmsplice() works and in_held_total
 * moves; the grant itself is unmapped at once, so the pipe shows the
 * empty frame (Xen reads all ones) or the old pattern. On a PV peer the
 * grant's PTEs are special (GNTMAP_guest_avail0) in a VM_PFNMAP|VM_IO
 * VMA, so vmsplice() gets EFAULT: no page reference is ever taken, and
 * the test proves that, and that nothing is held.
 */
static void splice_case(struct __test_metadata *_metadata, unsigned int peer,
			bool revoke)
{
	uint64_t total0 = 0, total1 = 0, held0 = 0, held1 = 0, cookie = 0x5b1ce;
	uint64_t fnv_a, fnv_b;
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r;
	size_t len = page_size;
	unsigned char *a, *b;
	bool spliced;
	int fd;

	ASSERT_EQ(0, peer_counter(peer, "in_held_total", &total0))
		TH_LOG("the peer kernel counts no held pages (in_held_total)");
	ASSERT_EQ(0, peer_counter(peer, "in_held", &held0));
	a = grant_buf(1);
	b = grant_buf(1);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	gnt_pattern_fill(0xa11a5, 0, a, len);
	gnt_pattern_fill(0xbeef2, 0, b, len);
	fnv_a = gnt_fnv1a64(GNT_FNV1A64_INIT, a, len);
	fnv_b = gnt_fnv1a64(GNT_FNV1A64_INIT, b, len);

	fd = gnt_connect(peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_grant(fd, a, len, GNTSOCK_GRANT_WRITABLE, cookie,
			       GR_SPLICE, revoke, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.err);
	EXPECT_EQ(0, r.e1) TH_LOG("mmap: %s", strerror(r.e1));
	spliced = !r.e2;
	if (!spliced)
		EXPECT_EQ(EFAULT, r.e2)
			TH_LOG("vmsplice: %s", strerror(r.e2));
	TH_LOG("vmsplice of the mapping: %s (%s peer)",
	       spliced ? "took page references" : strerror(r.e2),
	       spliced ? "auto-translated" : "PV");
	if (revoke) {
		ASSERT_EQ(0, ioctl(fd, GNTSOCK_IOC_REVOKE, &cookie));
		ASSERT_EQ(0, wait_event(fd, 10000, &ev));
		EXPECT_EQ(GNTSOCK_EV_REVOKED, ev.type);
		ASSERT_EQ(0, get_reply(fd, &r));
		EXPECT_EQ(GNTSOCK_EV_REVOKED, r.e1)
			TH_LOG("the peer saw no revoke");
	}
	EXPECT_EQ(0, r.e3) TH_LOG("release: %s", strerror(r.e3));
	close(fd);

	/* The old grant's pages are held while the pipe has them. */
	EXPECT_EQ(0, peer_counter_wait(peer, "in_held_total",
				       total0 + spliced, 3000, &total1));
	EXPECT_EQ(total0 + spliced, total1);
	EXPECT_EQ(0, peer_counter(peer, "in_held", &held1));
	EXPECT_EQ(held0 + spliced, held1);

	/* A new grant maps; the pipe is read while it is mapped. */
	fd = gnt_connect(peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_grant(fd, b, len, 0, 0, GR_SPLICE_READ, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	close(fd);
	EXPECT_EQ(0, r.e1) TH_LOG("mmap of the new grant: %s",
				  strerror(r.e1));
	EXPECT_NE(fnv_b, r.val)
		TH_LOG("the pipe shows the NEW grant's memory");
	if (spliced) {
		EXPECT_EQ(len, (size_t)r.e3);
		EXPECT_TRUE(r.val == fnv_a || (r.flags & 1))
			TH_LOG("pipe: %d bytes, neither the old pattern nor an empty frame (flags %#x)",
			       r.e3, r.flags);
		TH_LOG("the pipe read %s", r.val == fnv_a ? "the old pattern" :
		       "an empty frame");
	} else {
		EXPECT_EQ(0, r.e3) TH_LOG("the pipe had %d bytes", r.e3);
	}

	/* The pipe is closed: the pages go back, nothing stays held. */
	EXPECT_EQ(0, peer_counter_wait(peer, "in_held", held0, 5000, &held1));
	EXPECT_EQ(held0, held1) TH_LOG("pages still held after the pipe closed");
	EXPECT_EQ(0, peer_counter(peer, "in_held_total", &total1));
	EXPECT_EQ(total0 + spliced, total1);
	munmap(a, len);
	munmap(b, len);
	EXPECT_IDLE(peer);
}

TEST_F_TIMEOUT(grant, vmsplice_then_unmap, 60)
{
	NEED_PEER();
	splice_case(_metadata, self->peer, false);
}

TEST_F_TIMEOUT(grant, vmsplice_then_revoke, 60)
{
	NEED_PEER();
	splice_case(_metadata, self->peer, true);
}

/*
 * Defect 6 of issue 12: a grant VMA that moved left the MMU notifier's
 * interval on the old range. Now mremap() of a grant mapping fails with
 * EINVAL; trying unmaps the grant (the notifier ran for the old range),
 * so the range stays and faults with SIGBUS, and the grant can still be
 * revoked and released. munmap() of part of it fails with EINVAL (no
 * split); a fork() child does not inherit it (VM_DONTCOPY: SIGSEGV).
 */
TEST_F_TIMEOUT(grant, mremap_fork_split, 60)
{
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r;
	size_t len = 2 * page_size;
	uint64_t cookie = 0x3e3a9;
	unsigned char *buf;
	int fd;

	NEED_PEER();
	buf = grant_buf(2);
	ASSERT_NE(NULL, buf);
	gnt_pattern_fill(0x3e3a9, 0, buf, len);
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, req_grant(fd, buf, len, GNTSOCK_GRANT_WRITABLE, cookie,
			       GR_MREMAP, 0, 0));
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.err);
	EXPECT_EQ(0, r.e1) TH_LOG("mmap: %s", strerror(r.e1));
	EXPECT_EQ(gnt_fnv1a64(GNT_FNV1A64_INIT, buf, len), r.val)
		TH_LOG("the mapping did not show the grant");
	EXPECT_EQ(SIGSEGV, (r.flags >> 8) & 0xff)
		TH_LOG("fork child touching the mapping: exit %u",
		       (r.flags >> 8) & 0xff);
	EXPECT_EQ(EINVAL, r.e2) TH_LOG("munmap of one page: %s",
				       strerror(r.e2));
	EXPECT_EQ(EINVAL, r.e3) TH_LOG("mremap: %s", strerror(r.e3));
	EXPECT_EQ(SIGBUS, r.flags & 0xff)
		TH_LOG("read of the old range after mremap: signal %u",
		       r.flags & 0xff);
	TH_LOG("old range after mremap: first page %s",
	       (r.flags >> 16) & 1 ? "resident" : "not resident");
	/* Still revocable, and released cleanly. */
	ASSERT_EQ(0, ioctl(fd, GNTSOCK_IOC_REVOKE, &cookie));
	ASSERT_EQ(0, wait_event(fd, 10000, &ev));
	EXPECT_EQ(GNTSOCK_EV_REVOKED, ev.type);
	ASSERT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(GNTSOCK_EV_REVOKED, r.e1) TH_LOG("the peer saw no revoke");
	EXPECT_EQ(0, r.e3) TH_LOG("release: %s", strerror(r.e3));
	close(fd);
	munmap(buf, len);
	EXPECT_IDLE(self->peer);
}

/*
 * A grant to @peer that it maps and whose revoke its kernel ignores
 * (GR_STUBBORN), revoked by force: it leaves a tombstone here until the
 * peer's late release, which GR_REPORT on the returned connection brings.
 */
static int tomb_grant(struct __test_metadata *_metadata, unsigned int peer,
		      unsigned char *buf, uint64_t cookie)
{
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r;
	int fd;

	fd = gnt_connect(peer, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	EXPECT_LE(0, fd);
	if (fd < 0)
		return -1;
	EXPECT_EQ(0, req_grant(fd, buf, page_size, GNTSOCK_GRANT_WRITABLE,
			       cookie, GR_STUBBORN, 0, 0));
	EXPECT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.e1) TH_LOG("peer %u mmap: %s", peer, strerror(r.e1));
	EXPECT_EQ(0, r.e3) TH_LOG("peer %u fault_ignore_revoke: %s", peer,
				  strerror(r.e3));
	EXPECT_EQ(0, ioctl(fd, GNTSOCK_IOC_REVOKE, &cookie));
	EXPECT_EQ(0, wait_event(fd, 10000, &ev));
	EXPECT_EQ(GNTSOCK_EV_FORCED, ev.type) TH_LOG("event %u", ev.type);
	EXPECT_EQ(cookie, ev.cookie);
	return fd;
}

/* The late release of tomb_grant()'s grant; then the connection ends. */
static void tomb_release(struct __test_metadata *_metadata, int fd)
{
	struct gnt_grant_reply r;

	if (fd < 0)
		return;
	EXPECT_EQ(0, req_plain(fd, GR_REPORT, 0));
	EXPECT_EQ(0, get_reply(fd, &r));
	EXPECT_EQ(0, r.flags) TH_LOG("release: %s", strerror(r.flags));
	close(fd);
}

/* Tombstones held here for all peers together (the "tombs" of every peer
 * line of /proc/net/gntsock_grants); -errno if the file cannot be read.
 */
static int tombs_held(void)
{
	char buf[8192], *p;
	int ret = gnt_read_file(GRANTS_PATH, buf, sizeof(buf)), n = 0;

	if (ret)
		return ret;
	for (p = strstr(buf, " tombs "); p; p = strstr(p + 1, " tombs "))
		n += atoi(p + strlen(" tombs "));
	return n;
}

/* Wait up to @ms for the tombstones of earlier tests to go (their
 * peers' late releases come when those tests end, and under a loaded
 * emulator they can still be on their way): a budget of two is only
 * the test's own if it starts from none. Return: those left (or -errno).
 */
static int tombs_wait_none(int ms)
{
	int64_t end = gnt_now_ms() + ms;
	int n;

	while ((n = tombs_held()) > 0 && gnt_now_ms() < end)
		gnt_sleep_ms(100);
	return n;
}

/*
 * Tombstones, budget of all (tombstones_max, lowered here to 2): beyond it
 * the peer holding most loses its oldest, not the peer adding one. Peer 2
 * holds two (forced revokes it has not answered), the peer adds a third:
 * peer 2's oldest goes, and the peer's late release then finds its own
 * and is accepted quietly. Before the fix the adder's own tombstone went,
 * and its release counted as a violation of its link: a peer that never
 * answers made another peer a violator. Peer 2's late release of the
 * dropped one is its own violation (meant, see VIOLATIONS_MEANT).
 */
TEST_F_TIMEOUT(grant, tombstone_budget_spares_the_quiet_peer, 120)
{
	unsigned int old_max = 0, old_peer = 0, old_timeout = 0, peer2;
	uint64_t d0 = 0, d1 = 0, v0 = 0, v1 = 0, w0 = 0, w1 = 0;
	unsigned char *buf;
	int fd[3];

	NEED_PEER();
	if (gnt_env_domid("GNTSOCK_PEER2_DOMID", &peer2))
		SKIP(return, "GNTSOCK_PEER2_DOMID is not set");
	if (revocable_towards(self->peer) <= 0 || revocable_towards(peer2) <= 0)
		SKIP(return, "no forced revoke (stock hypervisor): tombstones come from it");
	buf = grant_buf(3);
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, tombs_wait_none(15000))
		TH_LOG("tombstones of earlier tests still held after 15 s");
	ASSERT_EQ(0, sysctl_set("tombstones_max", 2, &old_max));
	ASSERT_EQ(0, sysctl_set("tombstones_max_peer", 2, &old_peer));
	ASSERT_EQ(0, sysctl_set("revoke_timeout_ms", 300, &old_timeout));
	ASSERT_EQ(0, grants_get("tombs_dropped", &d0));
	ASSERT_EQ(0, gnt_link_field(self->peer, "violations", &v0));
	ASSERT_EQ(0, gnt_link_field(peer2, "violations", &w0));
	fd[0] = tomb_grant(_metadata, peer2, buf, 90);
	fd[1] = tomb_grant(_metadata, peer2, buf + page_size, 91);
	ASSERT_EQ(0, grants_get("tombs_dropped", &d1));
	EXPECT_EQ(d0, d1) TH_LOG("peer 2's two fit in the budget");
	fd[2] = tomb_grant(_metadata, self->peer, buf + 2 * page_size, 92);
	ASSERT_EQ(0, grants_get("tombs_dropped", &d1));
	EXPECT_EQ(d0 + 1, d1);
	/* The quiet peer's late release finds its tombstone. */
	tomb_release(_metadata, fd[2]);
	ASSERT_EQ(0, gnt_link_field(self->peer, "violations", &v1));
	EXPECT_EQ(v0, v1) TH_LOG("the adder lost its own tombstone");
	/* Peer 2's release of its dropped oldest is its violation. */
	tomb_release(_metadata, fd[0]);
	tomb_release(_metadata, fd[1]);
	ASSERT_EQ(0, gnt_link_field(peer2, "violations", &w1));
	EXPECT_EQ(w0 + 1, w1);
	EXPECT_EQ(0, violations_meant_add(w1 - w0));
	EXPECT_EQ(0, sysctl_set("revoke_timeout_ms", old_timeout, NULL));
	EXPECT_EQ(0, sysctl_set("tombstones_max_peer", old_peer, NULL));
	EXPECT_EQ(0, sysctl_set("tombstones_max", old_max, NULL));
	munmap(buf, 3 * page_size);
	EXPECT_IDLE(self->peer);
	EXPECT_IDLE(peer2);
}

TEST_F_TIMEOUT(grant, counters_idle, 60)
{
	uint64_t v;

	NEED_PEER();
	EXPECT_IDLE(self->peer);
	ASSERT_EQ(0, unexpected_violations(&v));
	EXPECT_EQ(0, v);
}

TEST_HARNESS_MAIN
