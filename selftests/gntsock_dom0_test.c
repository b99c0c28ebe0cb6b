// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_dom0_test - AF_GNTSOCK when a peer domain dies or is paused
 * (runs in dom0).
 *
 * Environment:
 *   GNTSOCK_DOMU_CREATE  (required, else SKIP) a rig script; given a domain
 *                        name it creates a PV domU with gntsock loaded and
 *                        gntsock_peer running, and prints its domid (the
 *                        last line of its output that is a number).
 *   GNTSOCK_DOMU_NAME    domain name to use (default domU3).
 *   GNTSOCK_LINK_TOOL    gntsock-link to use (default: gntsock-link on PATH).
 *
 * Each test gets a fresh domain from the fixture: it is created, linked
 * to dom0 with `gntsock-link add 0 <id>`, and destroyed in the teardown.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/wait.h>

#include <sys/mman.h>

#include "gntsock_util.h"
#include "gntsock_grant_peer.h"
#include "gntsock_grant_msg.h"
/*
 * The 6.1 harness (kept unmodified) and its TEST() macro leave parameters
 * unused; as the kernel's own W=1 build, don't warn about those.
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"

#define CHUNK		65536
#define MiB		(1024ULL * 1024)
#define SETTLE_MS	10000		/* what must happen within 10 s */
#define IO_TIMEOUT_S	30

/* ---- shell helpers ------------------------------------------------- */

/* Append s to cmd, single-quoted for sh. */
static void shq(char *cmd, size_t size, const char *s)
{
	size_t len = strlen(cmd);

	if (len + 1 < size)
		cmd[len++] = '\'';
	for (; *s && len + 5 < size; s++) {
		if (*s == '\'') {
			memcpy(cmd + len, "'\\''", 4);
			len += 4;
		} else {
			cmd[len++] = *s;
		}
	}
	if (len + 1 < size)
		cmd[len++] = '\'';
	cmd[len] = '\0';
}

/*
 * Run cmd with sh, capturing stdout and stderr into out.  Returns the exit
 * status (0..255), or -1 if it could not run or was killed.
 */
static int run(const char *cmd, char *out, size_t size)
{
	char full[1024];
	size_t off = 0;
	FILE *f;
	int st;

	snprintf(full, sizeof(full), "%s 2>&1", cmd);
	fflush(NULL);
	f = popen(full, "r");
	if (!f)
		return -1;
	if (out && size) {
		while (off + 1 < size) {
			size_t n = fread(out + off, 1, size - 1 - off, f);

			if (!n)
				break;
			off += n;
		}
		out[off] = '\0';
	}
	/* drain the rest so the command never blocks on a full pipe */
	while (fgetc(f) != EOF)
		;
	st = pclose(f);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

static const char *link_tool(void)
{
	const char *t = getenv("GNTSOCK_LINK_TOOL");

	return (t && *t) ? t : "gntsock-link";
}

static int xl_destroy(const char *name, char *out, size_t size)
{
	char cmd[512] = "xl destroy ";

	shq(cmd, sizeof(cmd), name);
	return run(cmd, out, size);
}

static int link_cmd(const char *op, unsigned int a, unsigned int b,
		    const char *extra, char *out, size_t size)
{
	char cmd[768] = "";

	shq(cmd, sizeof(cmd), link_tool());
	snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd),
		 " %s %u %u%s", op, a, b, extra);
	return run(cmd, out, size);
}

/*
 * Look at `xl list`: *named is set if a domain called name exists, *zombie
 * if a "(null)" one does.  Returns 0 or -1 if xl failed.
 */
static int xl_list(const char *name, bool *named, bool *zombie, char *out,
		   size_t size)
{
	char *line, *save = NULL, first[128];
	int ret;

	*named = *zombie = false;
	ret = run("xl list", out, size);
	if (ret)
		return -1;
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%127s", first) != 1)
			continue;
		if (!strcmp(first, name))
			*named = true;
		if (!strcmp(first, "(null)"))
			*zombie = true;
	}
	return 0;
}

/* True unless /proc/xen/capabilities says this is not dom0. */
static bool maybe_dom0(void)
{
	char buf[256];

	if (gnt_read_file("/proc/xen/capabilities", buf, sizeof(buf)))
		return true;
	return strstr(buf, "control_d") != NULL;
}

/* ---- fixture ------------------------------------------------------- */

FIXTURE(dom0) {
	char name[64];
	uint64_t maps0;		/* ring pages dom0 mapped before the domain */
	unsigned int domid;
	bool created;
	bool linked;
};

static void domu_cleanup(FIXTURE_DATA(dom0) *self)
{
	char out[1024];

	if (self->created)
		xl_destroy(self->name, out, sizeof(out));
	if (self->linked)
		link_cmd("del", 0, self->domid, " --force", out, sizeof(out));
	self->created = self->linked = false;
}

/* Returns 0, or -1 with a message in err. */
static int domu_setup(FIXTURE_DATA(dom0) *self, const char *create,
		      char *err, size_t errsize)
{
	static char out[16384];
	char cmd[768] = "", *line, *save = NULL;
	struct gnt_link_info li;
	bool found = false;
	int64_t end;
	int ret, fd;

	/* A run killed by the harness timeout skips its teardown. */
	xl_destroy(self->name, out, sizeof(out));
	if (gnt_stat_get("ring_maps", &self->maps0)) {
		snprintf(err, errsize, "cannot read ring_maps");
		return -1;
	}

	shq(cmd, sizeof(cmd), create);
	strcat(cmd, " ");
	shq(cmd, sizeof(cmd), self->name);
	ret = run(cmd, out, sizeof(out));
	self->created = true;	/* even if it failed half-way */
	if (ret) {
		snprintf(err, errsize, "%s exited with %d: %.400s", cmd, ret,
			 out);
		return -1;
	}
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned int d;

		line[strcspn(line, " \t\r")] = '\0';
		if (!gnt_parse_domid(line, &d) && d) {
			self->domid = d;
			found = true;
		}
	}
	if (!found) {
		snprintf(err, errsize, "%s printed no domid", cmd);
		return -1;
	}

	ret = link_cmd("add", 0, self->domid, "", out, sizeof(out));
	self->linked = true;
	if (ret) {
		snprintf(err, errsize, "%s add 0 %u: exit %d: %.400s",
			 link_tool(), self->domid, ret, out);
		return -1;
	}
	ret = gnt_wait_link_state(self->domid, "connected", 60000, &li);
	if (ret) {
		snprintf(err, errsize, "link to %u not connected in 60 s: "
			 "%s (last state '%s')", self->domid, strerror(-ret),
			 li.peer == self->domid ? li.state : "no line");
		return -1;
	}
	/* The domain's responder may start after the link. */
	end = gnt_now_ms() + 60000;
	for (;;) {
		fd = gnt_connect(self->domid, GNTSOCK_PEER_PORT_ECHO, 10);
		if (fd >= 0)
			break;
		if (gnt_now_ms() >= end) {
			snprintf(err, errsize, "responder in %u not reachable "
				 "in 60 s: %s", self->domid, strerror(-fd));
			return -1;
		}
		gnt_sleep_ms(250);
	}
	close(fd);
	return 0;
}

FIXTURE_SETUP(dom0)
{
	const char *create = getenv("GNTSOCK_DOMU_CREATE");
	const char *name = getenv("GNTSOCK_DOMU_NAME");
	char err[1024] = "";
	int ret;

	signal(SIGPIPE, SIG_IGN);
	if (!create || !*create)
		SKIP(return, "GNTSOCK_DOMU_CREATE is not set");
	if (!maybe_dom0())
		SKIP(return, "not dom0");
	snprintf(self->name, sizeof(self->name), "%s",
		 name && *name ? name : "domU3");
	/* The harness skips the teardown if the setup fails: clean here. */
	ret = domu_setup(self, create, err, sizeof(err));
	if (ret)
		domu_cleanup(self);
	ASSERT_EQ(0, ret) TH_LOG("%s", err);
	TH_LOG("%s is domain %u, linked and answering", self->name,
	       self->domid);
}

FIXTURE_TEARDOWN(dom0)
{
	domu_cleanup(self);
}

/* The 6.1 harness runs the body after SKIP() in the setup. */
#define NEED_DOMU() do { if (_metadata->skip) return; } while (0)

/*
 * After the domain died: the link goes away (or shows closed), no socket is
 * left over, no page of its rings stays mapped, the domain is gone from `xl list` without a zombie, and
 * connecting to its domid gives ENETUNREACH.  All within SETTLE_MS.
 */
static void check_aftermath(struct __test_metadata *_metadata,
			    FIXTURE_DATA(dom0) *self)
{
	struct sockaddr_gnt a = gnt_addr(self->domid, GNTSOCK_PEER_PORT_ECHO);
	static char out[16384];
	struct gnt_link_info li;
	bool named, zombie;
	uint64_t stat = 0;
	int64_t end;
	int ret, held = -1, fd;

	end = gnt_now_ms() + SETTLE_MS;
	for (;;) {
		ret = gnt_link_get(self->domid, &li);
		if (ret == -ENOENT || (!ret && !strcmp(li.state, "closed")))
			break;
		ASSERT_GT(end, gnt_now_ms())
			TH_LOG("link to dead domain %u still listed as '%s'",
			       self->domid, ret ? strerror(-ret) : li.state);
		gnt_sleep_ms(100);
	}

	ret = gnt_wait_sockets_settled(SETTLE_MS, &stat, &held);
	EXPECT_EQ(0, ret) TH_LOG("sockets %" PRIu64 ", held by processes "
				 "%d: %s", stat, held, strerror(-ret));

	/* Every page of the dead domain's rings is unmapped again. */
	end = gnt_now_ms() + SETTLE_MS;
	for (;;) {
		ASSERT_EQ(0, gnt_stat_get("ring_maps", &stat));
		if (stat == self->maps0)
			break;
		ASSERT_GT(end, gnt_now_ms())
			TH_LOG("ring_maps %" PRIu64 ", %" PRIu64 " before the "
			       "domain existed: its rings are still mapped",
			       stat, self->maps0);
		gnt_sleep_ms(100);
	}

	end = gnt_now_ms() + SETTLE_MS;
	for (;;) {
		ASSERT_EQ(0, xl_list(self->name, &named, &zombie, out,
				     sizeof(out))) TH_LOG("xl list failed");
		if (!named && !zombie)
			break;
		if (gnt_now_ms() >= end) {
			/* xl_list tokenized out; run it again to show it */
			run("xl list", out, sizeof(out));
			ASSERT_TRUE(false) TH_LOG("after 10 s, xl list shows "
						  "%s%s:\n%s",
						  named ? self->name : "",
						  zombie ? " (null)" : "",
						  out);
		}
		gnt_sleep_ms(200);
	}

	fd = gnt_socket();
	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, connect(fd, (struct sockaddr *)&a, sizeof(a)));
	EXPECT_EQ(ENETUNREACH, errno) TH_LOG("connect to dead domain %u: %s",
					     self->domid, strerror(errno));
	close(fd);
}

/* Destroy the domain; returns the time xl destroy returned (ms). */
static int64_t destroy_domu(struct __test_metadata *_metadata,
			    FIXTURE_DATA(dom0) *self)
{
	char out[2048];
	int64_t t0 = gnt_now_ms(), t1;
	int ret;

	ret = xl_destroy(self->name, out, sizeof(out));
	t1 = gnt_now_ms();
	EXPECT_EQ(0, ret) TH_LOG("xl destroy %s: %s", self->name, out);
	TH_LOG("xl destroy took %" PRId64 " ms", t1 - t0);
	self->created = false;
	return t1;
}

struct xfer {
	int fd;
	uint64_t limit;
	atomic_uint_fast64_t bytes;
	atomic_int done;
	int err;		/* negative errno; -ENODATA: EOF; 0: finished */
};

static void *sender_fn(void *arg)
{
	struct xfer *x = arg;
	char *buf = calloc(1, CHUNK);
	uint64_t off = 0;
	ssize_t n;

	x->err = buf ? 0 : -ENOMEM;
	while (buf && off < x->limit) {
		n = send(x->fd, buf, CHUNK, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			x->err = -errno;
			break;
		}
		off += (uint64_t)n;
		atomic_store(&x->bytes, off);
	}
	free(buf);
	atomic_store(&x->done, 1);
	return NULL;
}

static void *receiver_fn(void *arg)
{
	struct xfer *x = arg;
	char *buf = malloc(CHUNK);
	uint64_t off = 0;
	ssize_t n;

	x->err = buf ? 0 : -ENOMEM;
	while (buf) {
		n = recv(x->fd, buf, CHUNK, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			x->err = -errno;
			break;
		}
		if (!n) {
			x->err = -ENODATA;
			break;
		}
		off += (uint64_t)n;
		atomic_store(&x->bytes, off);
	}
	free(buf);
	atomic_store(&x->done, 1);
	return NULL;
}

static const char *xfer_err(int err)
{
	return err == -ENODATA ? "EOF" : strerror(-err);
}

/* Wait until x->bytes >= n or x is done, at most ms. */
static bool wait_bytes(struct xfer *x, uint64_t n, int ms)
{
	int64_t end = gnt_now_ms() + ms;

	while (atomic_load(&x->bytes) < n && !atomic_load(&x->done)) {
		if (gnt_now_ms() >= end)
			return false;
		gnt_sleep_ms(20);
	}
	return atomic_load(&x->bytes) >= n;
}

static bool wait_done(struct xfer *x, int64_t until)
{
	while (!atomic_load(&x->done)) {
		if (gnt_now_ms() >= until)
			return false;
		gnt_sleep_ms(20);
	}
	return true;
}

TEST_F_TIMEOUT(dom0, destroy_mid_transfer, 300)
{
	struct xfer s = { .limit = 1024 * MiB };
	pthread_t tid;
	int64_t t;

	NEED_DOMU();
	s.fd = gnt_connect(self->domid, GNTSOCK_PEER_PORT_SINK, IO_TIMEOUT_S);
	ASSERT_LE(0, s.fd) TH_LOG("connect to SINK in %u: %s", self->domid,
				  strerror(-s.fd));
	ASSERT_EQ(0, pthread_create(&tid, NULL, sender_fn, &s));
	ASSERT_TRUE(wait_bytes(&s, 16 * MiB, 60000))
		TH_LOG("sent %" PRIu64 " bytes in 60 s (%s)",
		       (uint64_t)atomic_load(&s.bytes),
		       atomic_load(&s.done) ? xfer_err(s.err) : "running");

	t = destroy_domu(_metadata, self);
	ASSERT_TRUE(wait_done(&s, t + SETTLE_MS))
		TH_LOG("send() still blocked 10 s after the destroy (%" PRIu64
		       " bytes sent)", (uint64_t)atomic_load(&s.bytes));
	pthread_join(tid, NULL);
	TH_LOG("send() ended after %" PRIu64 " bytes, %" PRId64 " ms after "
	       "the destroy: %s", (uint64_t)atomic_load(&s.bytes),
	       gnt_now_ms() - t, xfer_err(s.err));
	EXPECT_TRUE(s.err == -ECONNRESET || s.err == -EPIPE)
		TH_LOG("send() ended with %s", xfer_err(s.err));
	EXPECT_LT(atomic_load(&s.bytes), s.limit);
	close(s.fd);

	check_aftermath(_metadata, self);
}

TEST_F_TIMEOUT(dom0, destroy_blocked_recv, 300)
{
	struct gnt_source_req req = {
		.nbytes = gnt_le64(1ULL << 40), .seed = gnt_le64(1),
	};
	struct xfer a = { 0 }, b = { 0 };
	pthread_t ta, tb;
	int64_t t;

	NEED_DOMU();
	/* a: streaming from SOURCE; b: blocked on HOLD, which never sends */
	a.fd = gnt_connect(self->domid, GNTSOCK_PEER_PORT_SOURCE,
			   IO_TIMEOUT_S);
	ASSERT_LE(0, a.fd) TH_LOG("connect to SOURCE: %s", strerror(-a.fd));
	b.fd = gnt_connect(self->domid, GNTSOCK_PEER_PORT_HOLD, 0);
	ASSERT_LE(0, b.fd) TH_LOG("connect to HOLD: %s", strerror(-b.fd));
	ASSERT_EQ(0, gnt_send_all(a.fd, &req, sizeof(req), NULL));
	ASSERT_EQ(0, pthread_create(&ta, NULL, receiver_fn, &a));
	ASSERT_EQ(0, pthread_create(&tb, NULL, receiver_fn, &b));
	ASSERT_TRUE(wait_bytes(&a, 16 * MiB, 60000))
		TH_LOG("received %" PRIu64 " bytes in 60 s (%s)",
		       (uint64_t)atomic_load(&a.bytes),
		       atomic_load(&a.done) ? xfer_err(a.err) : "running");
	ASSERT_FALSE(atomic_load(&b.done))
		TH_LOG("recv() from HOLD returned: %s", xfer_err(b.err));

	t = destroy_domu(_metadata, self);
	ASSERT_TRUE(wait_done(&a, t + SETTLE_MS))
		TH_LOG("streaming recv() still going 10 s after the destroy");
	ASSERT_TRUE(wait_done(&b, t + SETTLE_MS))
		TH_LOG("blocked recv() still blocked 10 s after the destroy");
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	EXPECT_EQ(-ECONNRESET, a.err) TH_LOG("streaming recv(): %s",
					     xfer_err(a.err));
	EXPECT_EQ(-ECONNRESET, b.err) TH_LOG("blocked recv(): %s",
					     xfer_err(b.err));
	EXPECT_EQ(0ULL, (uint64_t)atomic_load(&b.bytes));
	close(a.fd);
	close(b.fd);

	check_aftermath(_metadata, self);
}

/*
 * The toolstack removes a live link (gntsock-link del, which asks the
 * backend to close as for any PV device): the connection on it gets
 * ECONNRESET, the link and its mappings go away in this kernel, and the
 * domain is unreachable until the link is added back, after which it
 * works again.
 */
TEST_F_TIMEOUT(dom0, link_del_resets_connections, 300)
{
	struct sockaddr_gnt a = gnt_addr(self->domid, GNTSOCK_PEER_PORT_ECHO);
	static char out[16384];
	struct gnt_link_info li;
	char buf[64];
	uint64_t maps;
	int64_t end;
	int fd, ret;
	ssize_t n;

	NEED_DOMU();
	fd = gnt_connect(self->domid, GNTSOCK_PEER_PORT_HOLD, IO_TIMEOUT_S);
	ASSERT_LE(0, fd) TH_LOG("connect to HOLD in %u: %s", self->domid,
				strerror(-fd));
	ret = link_cmd("del", 0, self->domid, "", out, sizeof(out));
	EXPECT_EQ(0, ret) TH_LOG("gntsock-link del: %.400s", out);
	self->linked = ret != 0;

	/* HOLD never sends: only the link going down ends this recv. */
	n = recv(fd, buf, sizeof(buf), 0);
	EXPECT_EQ(-1, n);
	EXPECT_EQ(ECONNRESET, errno) TH_LOG("recv after del: %zd, %s", n,
					    strerror(errno));
	close(fd);

	end = gnt_now_ms() + SETTLE_MS;
	while (gnt_link_get(self->domid, &li) != -ENOENT) {
		ASSERT_GT(end, gnt_now_ms())
			TH_LOG("link to %u still listed after del", self->domid);
		gnt_sleep_ms(100);
	}
	end = gnt_now_ms() + SETTLE_MS;
	for (;;) {
		ASSERT_EQ(0, gnt_stat_get("ring_maps", &maps));
		if (maps == self->maps0)
			break;
		ASSERT_GT(end, gnt_now_ms())
			TH_LOG("ring_maps %" PRIu64 " after del, %" PRIu64
			       " before the link", maps, self->maps0);
		gnt_sleep_ms(100);
	}
	fd = gnt_socket();
	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, connect(fd, (struct sockaddr *)&a, sizeof(a)));
	EXPECT_EQ(ENETUNREACH, errno) TH_LOG("connect after del: %s",
					     strerror(errno));
	close(fd);

	/* Added back, the same two domains talk again. */
	ret = link_cmd("add", 0, self->domid, "", out, sizeof(out));
	ASSERT_EQ(0, ret) TH_LOG("gntsock-link add: %.400s", out);
	self->linked = true;
	ret = gnt_wait_link_state(self->domid, "connected", 60000, &li);
	ASSERT_EQ(0, ret) TH_LOG("link not connected 60 s after re-adding");
	end = gnt_now_ms() + 30000;
	while ((fd = gnt_connect(self->domid, GNTSOCK_PEER_PORT_ECHO,
				 IO_TIMEOUT_S)) < 0) {
		ASSERT_GT(end, gnt_now_ms())
			TH_LOG("connect after re-adding: %s", strerror(-fd));
		gnt_sleep_ms(250);
	}
	memset(buf, 'e', sizeof(buf));
	ASSERT_EQ(0, gnt_send_all(fd, buf, sizeof(buf), NULL));
	ASSERT_EQ(0, gnt_recv_all(fd, buf, sizeof(buf), NULL));
	close(fd);
}

/* The grants' counters of this kernel (/proc/net/gntsock_grants). */
static int grants_stat(const char *key, uint64_t *val)
{
	char buf[8192];
	int ret = gnt_read_file("/proc/net/gntsock_grants", buf, sizeof(buf));

	return ret ? ret : gnt_parse_stat(buf, key, val);
}

/*
 * Grant 4 fresh pages (writable, with @cookie) to the domain's GRANT
 * service, which maps them and holds them (GR_HOLD). Returns the
 * connection, with the pages in *buf (4 pages to munmap), or -1 with a
 * message in err.
 */
static int grant_held(unsigned int domid, uint64_t cookie, void **buf,
		      char *err, size_t errsize)
{
	long ps = sysconf(_SC_PAGESIZE);
	struct gnt_grant_req req = { .op = GR_HOLD };
	struct gnt_grant_reply r;
	int fd, ret;

	*buf = mmap(NULL, 4 * ps, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (*buf == MAP_FAILED) {
		snprintf(err, errsize, "mmap: %s", strerror(errno));
		return -1;
	}
	fd = gnt_connect(domid, GNTSOCK_PEER_PORT_GRANT, IO_TIMEOUT_S);
	if (fd < 0) {
		snprintf(err, errsize, "connect to GRANT: %s", strerror(-fd));
		munmap(*buf, 4 * ps);
		return -1;
	}
	ret = gnt_grant_sendmsg(fd, *buf, 4 * ps, GNTSOCK_GRANT_WRITABLE,
				cookie, &req, sizeof(req), MSG_NOSIGNAL) ==
	      (ssize_t)sizeof(req) ? 0 : -errno;
	if (!ret)
		ret = gnt_recv_all(fd, &r, sizeof(r), NULL);
	if (!ret && r.e1)
		ret = -(int)r.e1;
	if (ret) {
		snprintf(err, errsize, "grant the domain maps: %s",
			 strerror(-ret));
		close(fd);
		munmap(*buf, 4 * ps);
		return -1;
	}
	return fd;
}

/*
 * xl destroy of a domain that maps one of our grants: dom0's grant ends
 * (quarantined until Xen drops the dead domain's mappings, then reclaimed)
 * and no page stays pinned or deferred.
 */
TEST_F_TIMEOUT(dom0, destroy_with_mapped_grant, 300)
{
	long ps = sysconf(_SC_PAGESIZE);
	uint64_t out = 1, def = 1;
	char err[256];
	void *buf;
	int64_t end;
	int fd;

	NEED_DOMU();
	fd = grant_held(self->domid, 3, &buf, err, sizeof(err));
	ASSERT_LE(0, fd) TH_LOG("%s", err);
	ASSERT_EQ(0, grants_stat("out_grants", &out));
	ASSERT_EQ(1ULL, (unsigned long long)out);

	destroy_domu(_metadata, self);
	end = gnt_now_ms() + 30000;
	while ((out || def) && gnt_now_ms() < end) {
		ASSERT_EQ(0, grants_stat("out_grants", &out));
		ASSERT_EQ(0, grants_stat("deferred", &def));
		gnt_sleep_ms(200);
	}
	EXPECT_EQ(0ULL, (unsigned long long)out) TH_LOG("grant still held 30 s after the destroy");
	EXPECT_EQ(0ULL, (unsigned long long)def) TH_LOG("grant still deferred 30 s after the destroy");
	close(fd);
	munmap(buf, 4 * ps);
	check_aftermath(_metadata, self);
}

static int xl_pause(const char *op, const char *name, char *out, size_t size)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "xl %s ", op);
	shq(cmd, sizeof(cmd), name);
	return run(cmd, out, size);
}

/* Out-grants and deferred (quarantined) grants both 0 within ms. */
static bool grants_gone(int ms, uint64_t *out, uint64_t *def)
{
	int64_t end = gnt_now_ms() + ms;

	for (;;) {
		if (grants_stat("out_grants", out) ||
		    grants_stat("deferred", def))
			return false;
		if (!*out && !*def)
			return true;
		if (gnt_now_ms() >= end)
			return false;
		gnt_sleep_ms(200);
	}
}

#define PAUSE_COOKIE	0x9a05e

/*
 * xl pause of a peer for longer than the connect and revoke timeouts, then
 * xl unpause (Documentation/gntsock.rst, "Domain lifecycle"). While it is
 * paused: a stream to it stalls without an error; connect() to it fails
 * with ETIMEDOUT after the connect timeout (2 s); revoking a grant it maps
 * ends, after revoke_timeout_ms, FORCED (the hypervisor took the pages back)
 * or QUARANTINED (they stay pinned until the peer unmaps), never hangs.
 * After unpause: the stream goes on with no byte lost and no error, the
 * link never went down, a new connection works, the peer's kernel unmaps
 * the revoked grant and nothing stays granted or deferred; destroyed
 * afterwards, the domain leaves nothing behind.
 */
TEST_F_TIMEOUT(dom0, pause_beyond_timeouts, 300)
{
	long ps = sysconf(_SC_PAGESIZE);
	struct xfer s = { .limit = 1024 * MiB };
	struct gntsock_grant_event ev = { 0 };
	uint64_t cookie = PAUSE_COOKIE, out = 1, def = 1, resets0, resets1, b0;
	struct gnt_link_info li;
	int64_t t0, t_conn, t_rev, paused;
	char xout[2048], buf[4096];
	bool unpaused = false;
	int gfd, fd, ret;
	pthread_t tid;
	void *gbuf;

	NEED_DOMU();
	ASSERT_EQ(0, gnt_stat_get("resets", &resets0));
	s.fd = gnt_connect(self->domid, GNTSOCK_PEER_PORT_SINK, IO_TIMEOUT_S);
	ASSERT_LE(0, s.fd) TH_LOG("connect to SINK: %s", strerror(-s.fd));
	/* (no SO_SNDTIMEO: the writer must wait out the pause) */
	ASSERT_EQ(0, setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO,
				&(struct timeval){ 0 },
				sizeof(struct timeval)));
	ASSERT_EQ(0, pthread_create(&tid, NULL, sender_fn, &s));
	ASSERT_TRUE(wait_bytes(&s, 4 * MiB, 60000))
		TH_LOG("sent %" PRIu64 " bytes in 60 s",
		       (uint64_t)atomic_load(&s.bytes));
	gfd = grant_held(self->domid, cookie, &gbuf, xout, sizeof(xout));
	ASSERT_LE(0, gfd) TH_LOG("%s", xout);

	ASSERT_EQ(0, xl_pause("pause", self->name, xout, sizeof(xout)))
		TH_LOG("xl pause: %s", xout);
	paused = gnt_now_ms();
	/* A connect() the paused peer cannot answer. */
	t0 = gnt_now_ms();
	fd = gnt_connect(self->domid, GNTSOCK_PEER_PORT_ECHO, 0);
	t_conn = gnt_now_ms() - t0;
	if (fd >= 0)
		close(fd);
	EXPECT_EQ(-ETIMEDOUT, fd) TH_LOG("connect to a paused domain: %s",
					 fd >= 0 ? "connected" :
					 strerror(-fd));
	EXPECT_GT(10000, t_conn) TH_LOG("connect took %" PRId64 " ms", t_conn);
	/* A revoke the paused peer cannot answer. */
	t0 = gnt_now_ms();
	ret = ioctl(gfd, GNTSOCK_IOC_REVOKE, &cookie);
	EXPECT_EQ(0, ret) TH_LOG("GNTSOCK_IOC_REVOKE: %s", strerror(errno));
	ret = ret ? -1 : gnt_grant_event(gfd, 60000, &ev);
	t_rev = gnt_now_ms() - t0;
	EXPECT_EQ(0, ret) TH_LOG("no grant event within 60 s of the revoke");
	EXPECT_TRUE(ev.type == GNTSOCK_EV_FORCED ||
		    ev.type == GNTSOCK_EV_QUARANTINED)
		TH_LOG("revoke of a paused peer's mapping ended with event %u",
		       ev.type);
	EXPECT_EQ(0, gnt_link_get(self->domid, &li));
	EXPECT_STREQ("connected", li.state);
	TH_LOG("paused %" PRId64 " ms: connect gave up after %" PRId64
	       " ms, revoke ended (event %u) after %" PRId64 " ms; %" PRIu64
	       " bytes streamed", gnt_now_ms() - paused, t_conn, ev.type,
	       t_rev, (uint64_t)atomic_load(&s.bytes));

	unpaused = !xl_pause("unpause", self->name, xout, sizeof(xout));
	ASSERT_TRUE(unpaused) TH_LOG("xl unpause: %s", xout);
	b0 = atomic_load(&s.bytes);
	EXPECT_TRUE(wait_bytes(&s, b0 + 8 * MiB, 60000))
		TH_LOG("after unpause the stream moved %" PRIu64
		       " bytes in 60 s (%s)",
		       (uint64_t)atomic_load(&s.bytes) - b0,
		       atomic_load(&s.done) ? xfer_err(s.err) : "running");
	fd = gnt_connect(self->domid, GNTSOCK_PEER_PORT_ECHO, IO_TIMEOUT_S);
	EXPECT_LE(0, fd) TH_LOG("connect after unpause: %s", strerror(-fd));
	if (fd >= 0) {
		memset(buf, 'p', sizeof(buf));
		EXPECT_EQ(0, gnt_send_all(fd, buf, sizeof(buf), NULL));
		EXPECT_EQ(0, gnt_recv_all(fd, buf, sizeof(buf), NULL));
		close(fd);
	}
	EXPECT_TRUE(grants_gone(30000, &out, &def))
		TH_LOG("30 s after unpause: out_grants %" PRIu64
		       ", deferred %" PRIu64, out, def);
	EXPECT_EQ(0, gnt_stat_get("resets", &resets1));
	EXPECT_EQ(resets0, resets1) TH_LOG("the link was reset");
	EXPECT_FALSE(atomic_load(&s.done))
		TH_LOG("the stream ended: %s", xfer_err(s.err));
	/* The domain's death ends the writer (destroy_mid_transfer). */
	destroy_domu(_metadata, self);
	pthread_join(tid, NULL);
	close(s.fd);
	close(gfd);
	munmap(gbuf, 4 * ps);
	check_aftermath(_metadata, self);
}

TEST_HARNESS_MAIN
