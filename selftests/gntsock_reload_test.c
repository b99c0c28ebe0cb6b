// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_reload_test - unloading and reloading the gntsock module (runs
 * as root in a domU of the rig).
 *
 * Environment:
 *   GNTSOCK_KO          (required, else SKIP) path of gntsock.ko
 *   GNTSOCK_PEER_DOMID  (required, else SKIP) a domain linked to this one
 *                       that runs gntsock_peer
 *   GNTSOCK_KO_PARAMS   module parameters for the reload (default none)
 *   GNTSOCK_MODNAME     module name (default gntsock)
 *   GNTSOCK_PEER_BIN    local responder to restart (default
 *                       /opt/gntsock/bin/gntsock_peer)
 *   GNTSOCK_PEER_LOG    where the restarted responder logs (default
 *                       /dev/console, else /dev/null)
 *
 * Each link bound to gntsock's xenbus drivers holds a module reference
 * (xenbus takes one per bound device), so the unload test first checks
 * that rmmod is refused with links bound, then unbinds them through sysfs
 * (which tears them down) and unloads; after the reload the links come
 * back by themselves.
 *
 * The local responder holds sockets, hence the module: the tests stop it
 * and start it again (detached, in its own session) so that the domain's
 * services are back afterwards.  The teardown also reloads the module if a
 * test left it unloaded.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "gntsock_util.h"
#include "gntsock_grant_peer.h"
#include "gntsock_grant_util.h"
/*
 * The 6.1 harness (kept unmodified) and its TEST() macro leave parameters
 * unused; as the kernel's own W=1 build, don't warn about those.
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "kselftest_harness.h"

#define PEER_COMM	"gntsock_peer"

/* Where the driver core lists the links bound to gntsock's xenbus drivers. */
static const char *const drv_dirs[] = {
	"/sys/bus/xen/drivers/gntsock",		/* frontends */
	"/sys/bus/xen-backend/drivers/gntsock",	/* backends */
};

/*
 * Unbind every gntsock link device from its driver, as an operator does
 * before rmmod: xenbus holds a module reference per bound device. Each
 * unbind tears that link down and tells the peer. Returns the number of
 * links unbound, or -errno.
 */
static int unbind_links(void)
{
	char path[512];
	struct dirent *de;
	unsigned int i;
	int n = 0, fd;
	DIR *d;

	for (i = 0; i < sizeof(drv_dirs) / sizeof(drv_dirs[0]); i++) {
		d = opendir(drv_dirs[i]);
		if (!d)
			continue;
		while ((de = readdir(d))) {
			if (strncmp(de->d_name, "gntsock-", 8))
				continue;
			snprintf(path, sizeof(path), "%s/unbind", drv_dirs[i]);
			fd = open(path, O_WRONLY);
			if (fd < 0 || write(fd, de->d_name,
					    strlen(de->d_name)) < 0) {
				int err = errno;

				if (fd >= 0)
					close(fd);
				closedir(d);
				return -err;
			}
			close(fd);
			n++;
		}
		closedir(d);
	}
	return n;
}

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return (v && *v) ? v : def;
}

static const char *mod_name(void)
{
	return env_or("GNTSOCK_MODNAME", "gntsock");
}

/* Is the module in /proc/modules? */
static bool module_loaded(const char *name)
{
	static char buf[65536];
	size_t len = strlen(name);
	const char *line;

	if (gnt_read_file("/proc/modules", buf, sizeof(buf)))
		return false;
	for (line = buf; line && *line; line = strchr(line, '\n'),
	     line = line ? line + 1 : NULL)
		if (!strncmp(line, name, len) && line[len] == ' ')
			return true;
	return false;
}

static int delete_module(const char *name, unsigned int flags)
{
	return (int)syscall(SYS_delete_module, name, flags);
}

/* Load the module from GNTSOCK_KO.  Returns 0 or -errno. */
static int load_module(const char *ko)
{
	const char *params = env_or("GNTSOCK_KO_PARAMS", "");
	int fd, ret = 0;

	fd = open(ko, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, params, 0))
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * Stop every local responder: SIGTERM, then SIGKILL after 5 s.  Returns
 * how many there were, or -ETIMEDOUT if one survives.
 */
static int stop_peers(void)
{
	pid_t pids[16];
	int n, i, sig;
	int64_t end;

	n = gnt_find_pids(PEER_COMM, pids, 16);
	if (n <= 0)
		return n;
	if (n > 16)
		n = 16;
	for (sig = SIGTERM; ; sig = SIGKILL) {
		for (i = 0; i < n; i++)
			kill(pids[i], sig);
		end = gnt_now_ms() + 5000;
		for (;;) {
			bool alive = false;

			for (i = 0; i < n; i++)
				alive |= gnt_pid_alive(pids[i]);
			if (!alive)
				return n;
			if (gnt_now_ms() >= end)
				break;
			gnt_sleep_ms(50);
		}
		if (sig == SIGKILL)
			return -ETIMEDOUT;
	}
}

/*
 * Start the responder detached (double fork, new session), stdin from
 * /dev/null, output to GNTSOCK_PEER_LOG, and wait until it runs.
 * Returns 0 or -errno.
 */
static int start_peer(void)
{
	const char *bin = env_or("GNTSOCK_PEER_BIN",
				 "/opt/gntsock/bin/gntsock_peer");
	const char *log = env_or("GNTSOCK_PEER_LOG", "/dev/console");
	pid_t pid, pids[1];
	int64_t end;
	int st;

	if (access(bin, X_OK))
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		int nul, out, fd;

		setsid();
		pid = fork();
		if (pid)
			_exit(pid < 0);
		nul = open("/dev/null", O_RDWR);
		out = open(log, O_WRONLY | O_APPEND | O_NOCTTY);
		if (out < 0)
			out = nul;
		dup2(nul, 0);
		dup2(out, 1);
		dup2(out, 2);
		for (fd = 3; fd < 1024; fd++)
			close(fd);
		signal(SIGPIPE, SIG_DFL);
		signal(SIGALRM, SIG_DFL);
		execl(bin, bin, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
	    WEXITSTATUS(st))
		return -ECHILD;
	end = gnt_now_ms() + 5000;
	while (gnt_find_pids(PEER_COMM, pids, 1) < 1) {
		if (gnt_now_ms() >= end)
			return -ESRCH;
		gnt_sleep_ms(50);
	}
	return 0;
}

FIXTURE(reload) {
	unsigned int peer;
	const char *ko;
	bool restart_peer;	/* we stopped a responder */
};

FIXTURE_SETUP(reload)
{
	int ret;

	signal(SIGPIPE, SIG_IGN);
	self->ko = getenv("GNTSOCK_KO");
	if (geteuid())
		SKIP(return, "needs root");
	if (!self->ko || !*self->ko)
		SKIP(return, "GNTSOCK_KO is not set");
	ret = gnt_env_domid("GNTSOCK_PEER_DOMID", &self->peer);
	if (ret == -ENOENT)
		SKIP(return, "GNTSOCK_PEER_DOMID is not set");
	ASSERT_EQ(0, ret) TH_LOG("bad GNTSOCK_PEER_DOMID");
	ASSERT_TRUE(module_loaded(mod_name()))
		TH_LOG("module %s is not loaded", mod_name());
}

FIXTURE_TEARDOWN(reload)
{
	pid_t pids[1];
	int ret;

	if (_metadata->skip)
		return;
	if (!module_loaded(mod_name())) {
		ret = load_module(self->ko);
		if (ret)
			TH_LOG("teardown: cannot load %s: %s", self->ko,
			       strerror(-ret));
	}
	if (self->restart_peer && gnt_find_pids(PEER_COMM, pids, 1) < 1) {
		ret = start_peer();
		if (ret)
			TH_LOG("teardown: cannot restart %s: %s", PEER_COMM,
			       strerror(-ret));
	}
}

#define NEED_SETUP() do { if (_metadata->skip) return; } while (0)

/* Stop the responder and wait for the module to count no socket. */
static void quiesce(struct __test_metadata *_metadata,
		    FIXTURE_DATA(reload) *self)
{
	uint64_t stat = 0;
	int n, held = -1, ret;

	n = stop_peers();
	ASSERT_LE(0, n) TH_LOG("cannot stop %s: %s", PEER_COMM,
			       strerror(-n));
	if (n > 0)
		self->restart_peer = true;
	TH_LOG("stopped %d local %s", n, PEER_COMM);
	ret = gnt_wait_sockets_settled(15000, &stat, &held);
	EXPECT_EQ(0, ret) TH_LOG("sockets %" PRIu64 ", held by processes "
				 "%d: %s", stat, held, strerror(-ret));
	EXPECT_EQ(0, held);
}

TEST_F_TIMEOUT(reload, unload_with_socket_refused, 60)
{
	int fd, ret, err;

	NEED_SETUP();
	quiesce(_metadata, self);

	fd = gnt_socket();
	ASSERT_LE(0, fd) TH_LOG("socket: %s", strerror(errno));
	ret = delete_module(mod_name(), O_NONBLOCK);
	err = errno;
	if (!ret) {
		/* The socket did not pin the module: put it back. */
		close(fd);
		fd = -1;
		ret = load_module(self->ko);
		TH_LOG("module unloaded under an open socket; reload: %s",
		       strerror(-ret));
		ASSERT_TRUE(false);
	}
	EXPECT_TRUE(err == EBUSY || err == EAGAIN || err == EWOULDBLOCK)
		TH_LOG("delete_module: %s", strerror(err));
	EXPECT_TRUE(module_loaded(mod_name()));
	EXPECT_EQ(0, access(GNT_STAT_PATH, F_OK));
	/* The socket still works after the refused unload. */
	EXPECT_EQ(0, getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &ret,
				&(socklen_t){ sizeof(ret) }));
	EXPECT_EQ(AF_GNTSOCK, ret);
	close(fd);
}

TEST_F_TIMEOUT(reload, unload_reload_reconnect, 120)
{
	char out[4096], in[4096], scratch[256];
	struct gnt_link_info li;
	uint64_t v;
	int64_t end;
	int fd, ret, err;

	NEED_SETUP();
	quiesce(_metadata, self);

	/* No socket, but links bound: the unload is refused, nothing lost. */
	ret = delete_module(mod_name(), O_NONBLOCK);
	err = errno;
	EXPECT_EQ(-1, ret);
	EXPECT_TRUE(err == EBUSY || err == EAGAIN || err == EWOULDBLOCK)
		TH_LOG("delete_module with links bound: %s", strerror(err));
	EXPECT_TRUE(module_loaded(mod_name()));

	/* Unbinding tears the links down; then the module unloads. */
	ret = unbind_links();
	ASSERT_LT(0, ret) TH_LOG("unbinding the links: %s",
				 ret < 0 ? strerror(-ret) : "none bound");
	TH_LOG("unbound %d links", ret);

	/* sockets whose close is still in progress may pin it a little */
	end = gnt_now_ms() + 15000;
	for (;;) {
		ret = delete_module(mod_name(), O_NONBLOCK);
		err = errno;
		if (!ret)
			break;
		ASSERT_TRUE(err == EBUSY || err == EAGAIN ||
			    err == EWOULDBLOCK)
			TH_LOG("delete_module: %s", strerror(err));
		ASSERT_GT(end, gnt_now_ms())
			TH_LOG("module still busy 15 s after its last socket "
			       "closed");
		gnt_sleep_ms(200);
	}
	EXPECT_FALSE(module_loaded(mod_name()));
	EXPECT_EQ(-1, access(GNT_STAT_PATH, F_OK));
	EXPECT_EQ(ENOENT, errno);
	EXPECT_EQ(-1, gnt_socket());
	EXPECT_EQ(EAFNOSUPPORT, errno) TH_LOG("socket() without the module: "
					      "%s", strerror(errno));

	ret = load_module(self->ko);
	ASSERT_EQ(0, ret) TH_LOG("finit_module(%s): %s", self->ko,
				 strerror(-ret));
	EXPECT_TRUE(module_loaded(mod_name()));
	ASSERT_EQ(0, gnt_stat_get("sockets", &v));
	EXPECT_EQ(0ULL, v);

	ret = gnt_wait_link_state(self->peer, "connected", 30000, &li);
	ASSERT_EQ(0, ret) TH_LOG("link to %u not connected 30 s after the "
				 "reload: %s (state '%s')", self->peer,
				 strerror(-ret),
				 li.peer == self->peer ? li.state : "no line");

	end = gnt_now_ms() + 30000;
	for (;;) {
		fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_ECHO, 20);
		if (fd >= 0)
			break;
		ASSERT_GT(end, gnt_now_ms())
			TH_LOG("connect to %u:%u after the reload: %s",
			       self->peer, GNTSOCK_PEER_PORT_ECHO,
			       strerror(-fd));
		gnt_sleep_ms(250);
	}
	gnt_pattern_fill(7, 0, out, sizeof(out));
	ASSERT_EQ(0, gnt_send_all(fd, out, sizeof(out), NULL));
	ASSERT_EQ(0, gnt_recv_all(fd, in, sizeof(in), NULL));
	EXPECT_EQ(-1, gnt_pattern_check(7, 0, in, sizeof(in), scratch,
					sizeof(scratch)));
	close(fd);

	/* Bring this domain's services back. */
	ret = start_peer();
	ASSERT_EQ(0, ret) TH_LOG("restart %s: %s", PEER_COMM, strerror(-ret));
	self->restart_peer = false;
	end = gnt_now_ms() + 10000;
	for (;;) {
		ASSERT_EQ(0, gnt_stat_get("sockets", &v));
		if (v >= GNTSOCK_PEER_NR_SERVICES)
			break;
		ASSERT_GT(end, gnt_now_ms())
			TH_LOG("restarted %s has %" PRIu64 " sockets after "
			       "10 s", PEER_COMM, v);
		gnt_sleep_ms(100);
	}
}

/*
 * Unload with a grant still quarantined here (the peer kernel ignored our
 * revoke and keeps the pages mapped): unbinding the links ends it, the
 * module unloads without a splat, and after the reload the peer kernel
 * holds nothing of ours.
 */
TEST_F_TIMEOUT(reload, unload_with_quarantined_grant, 120)
{
	struct gnt_grant_req req = { .op = GR_STUBBORN };
	struct gntsock_grant_event ev;
	struct gnt_grant_reply r;
	size_t len = 2 * sysconf(_SC_PAGESIZE);
	uint64_t deferred = 0, cookie = 99;
	unsigned char *buf;
	int64_t end;
	int fd, ret, err;

	NEED_SETUP();
	quiesce(_metadata, self);
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	ASSERT_NE(MAP_FAILED, buf);
	memset(buf, 0x5a, len);
	ASSERT_EQ(0, sysctl_set("revoke_timeout_ms", 300, NULL));
	fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, 20);
	ASSERT_LE(0, fd) TH_LOG("connect to the GRANT service: %s",
				strerror(-fd));
	ASSERT_EQ((ssize_t)sizeof(req),
		  send_grant(fd, buf, len, GNTSOCK_GRANT_WRITABLE, cookie,
			     &req, sizeof(req)));
	ASSERT_EQ(0, gnt_recv_all(fd, &r, sizeof(r), NULL));
	ASSERT_EQ(0, r.e1) TH_LOG("peer mmap: %s", strerror(r.e1));
	ASSERT_EQ(0, r.e3) TH_LOG("peer fault_ignore_revoke: %s",
				  strerror(r.e3));
	ASSERT_EQ(0, ioctl(fd, GNTSOCK_IOC_REVOKE, &cookie));
	ASSERT_EQ(0, wait_event(fd, 10000, &ev));
	EXPECT_EQ((__u32)GNTSOCK_EV_QUARANTINED, ev.type);
	ASSERT_EQ(0, grants_get("deferred", &deferred));
	EXPECT_EQ(1ULL, deferred) TH_LOG("the grant should be quarantined");

	/* The links go while the peer still maps the grant (its responder
	 * lets go only when our connection ends); then the module unloads,
	 * whether or not the peer kernel has unmapped by then.
	 */
	ret = unbind_links();
	ASSERT_LT(0, ret) TH_LOG("unbinding the links: %s",
				 ret < 0 ? strerror(-ret) : "none bound");
	ret = recv(fd, &r, sizeof(r), 0);
	err = errno;
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ECONNRESET, err) TH_LOG("recv after the link went: %s",
					  strerror(err));
	close(fd);
	deferred = ~0ULL;
	grants_get("deferred", &deferred);
	TH_LOG("grants still quarantined at unload: %" PRIu64, deferred);
	end = gnt_now_ms() + 15000;
	while (delete_module(mod_name(), O_NONBLOCK)) {
		err = errno;
		ASSERT_TRUE(err == EBUSY || err == EAGAIN ||
			    err == EWOULDBLOCK)
			TH_LOG("delete_module: %s", strerror(err));
		ASSERT_GT(end, gnt_now_ms())
			TH_LOG("module busy 15 s after its links went");
		gnt_sleep_ms(200);
	}
	EXPECT_FALSE(module_loaded(mod_name()));
	/* The memory we granted is ours again, untouched by the peer. */
	EXPECT_EQ(0x5a, buf[0]);
	EXPECT_EQ(0x5a, buf[len - 1]);
	munmap(buf, len);

	ret = load_module(self->ko);
	ASSERT_EQ(0, ret) TH_LOG("finit_module(%s): %s", self->ko,
				 strerror(-ret));
	ret = gnt_wait_link_state(self->peer, "connected", 30000, NULL);
	ASSERT_EQ(0, ret) TH_LOG("link to %u after the reload: %s",
				 self->peer, strerror(-ret));
	/* The peer kernel unmapped and let go of everything. */
	end = gnt_now_ms() + 15000;
	for (;;) {
		struct gnt_grant_req cq = { .op = GR_COUNTS };

		fd = gnt_connect(self->peer, GNTSOCK_PEER_PORT_GRANT, 20);
		if (fd >= 0) {
			ret = gnt_send_all(fd, &cq, sizeof(cq), NULL);
			ret = ret ?: gnt_recv_all(fd, &r, sizeof(r), NULL);
			close(fd);
			ASSERT_EQ(0, ret);
			ASSERT_EQ(0, r.err);
			if (!r.val && !r.e1 && !r.e2 && !r.e3)
				break;
		}
		ASSERT_GT(end, gnt_now_ms())
			TH_LOG("peer still holds: out %" PRIu64 " in %d mapped %d deferred %d",
			       r.val, r.e1, r.e2, r.e3);
		gnt_sleep_ms(250);
	}
	ret = start_peer();
	ASSERT_EQ(0, ret) TH_LOG("restart %s: %s", PEER_COMM, strerror(-ret));
	self->restart_peer = false;
}

TEST_HARNESS_MAIN
