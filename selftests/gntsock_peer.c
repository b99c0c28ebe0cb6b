// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock_peer - the AF_GNTSOCK selftests' responder.
 *
 * Runs in every domain of the test rig, in the background, forever.  It
 * listens on the ports of gntsock_peer.h (bound to GNTSOCK_DOMID_ANY) and
 * serves each accepted connection in its own detached thread.  A
 * per-connection error is logged (rate-limited, stderr) and never ends the
 * daemon.  A port that is already taken is logged and skipped; if every
 * port is taken (another responder runs) it exits 0.
 *
 * Usage: gntsock_peer [-v] [-q] [-r READY_FILE]
 *	-v	log every connection
 *	-q	log nothing but start-up failures
 *	-r	create READY_FILE once every service listens
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <linux/gntsock.h>

#include "gntsock_peer.h"
#include "gntsock_grant_peer.h"

#define BUF_SIZE		65536
#define MAX_CONNS		1024
#define IDLE_TIMEOUT_S		120	/* SO_RCVTIMEO/SO_SNDTIMEO */
#define THREAD_STACK		(256 * 1024)
#define LOG_BURST		10	/* messages per LOG_PERIOD_S */
#define LOG_PERIOD_S		5

_Static_assert(AF_GNTSOCK == 22, "wrong gntsock.h: check -I order");

enum service {
	SVC_ECHO,
	SVC_SINK,
	SVC_SOURCE,
	SVC_SLOW_SINK,
	SVC_HOLD,
	SVC_CONNECT_BACK,
	SVC_STAT,
	SVC_SEQ_ECHO,
	SVC_SEQ_SOURCE,
	SVC_SEQ_HOLD,
	SVC_GRANT,
	SVC_GRANT_SEQ,
};

struct service_def {
	enum service svc;
	const char *name;
	unsigned int port;
};

static const struct service_def services[GNTSOCK_PEER_NR_SERVICES] = {
	{ SVC_ECHO,		"echo",		GNTSOCK_PEER_PORT_ECHO },
	{ SVC_SINK,		"sink",		GNTSOCK_PEER_PORT_SINK },
	{ SVC_SOURCE,		"source",	GNTSOCK_PEER_PORT_SOURCE },
	{ SVC_SLOW_SINK,	"slow_sink",	GNTSOCK_PEER_PORT_SLOW_SINK },
	{ SVC_HOLD,		"hold",		GNTSOCK_PEER_PORT_HOLD },
	{ SVC_CONNECT_BACK,	"connect_back",
	  GNTSOCK_PEER_PORT_CONNECT_BACK },
	{ SVC_STAT,		"stat",		GNTSOCK_PEER_PORT_STAT },
	{ SVC_SEQ_ECHO,		"seq_echo",	GNTSOCK_PEER_PORT_SEQ_ECHO },
	{ SVC_SEQ_SOURCE,	"seq_source",	GNTSOCK_PEER_PORT_SEQ_SOURCE },
	{ SVC_SEQ_HOLD,		"seq_hold",	GNTSOCK_PEER_PORT_SEQ_HOLD },
	{ SVC_GRANT,		"grant",	GNTSOCK_PEER_PORT_GRANT },
	{ SVC_GRANT_SEQ,	"grant_seq",	GNTSOCK_PEER_PORT_GRANT_SEQ },
};

/* Socket type a service listens with. */
static int svc_type(enum service svc)
{
	switch (svc) {
	case SVC_SEQ_ECHO:
	case SVC_SEQ_SOURCE:
	case SVC_SEQ_HOLD:
	case SVC_GRANT_SEQ:
		return SOCK_SEQPACKET;
	default:
		return SOCK_STREAM;
	}
}

enum listener_state { L_STARTING, L_LISTENING, L_IN_USE, L_RETRYING };

static enum listener_state lstate[GNTSOCK_PEER_NR_SERVICES];
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t state_cond = PTHREAD_COND_INITIALIZER;

static atomic_int nr_conns;
static int verbose = 1;	/* 0: quiet, 1: errors, 2: every connection */

struct conn {
	int fd;
	const struct service_def *def;
	struct sockaddr_gnt peer;
};

/* ---- rate-limited logging ------------------------------------------ */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void __attribute__((format(printf, 2, 3)))
plog(bool always, const char *fmt, ...)
{
	static time_t window;
	static unsigned int in_window, suppressed;
	struct timespec ts;
	char msg[512];
	va_list ap;

	if (!verbose && !always)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	clock_gettime(CLOCK_MONOTONIC, &ts);
	pthread_mutex_lock(&log_lock);
	if (ts.tv_sec - window >= LOG_PERIOD_S) {
		if (suppressed)
			fprintf(stderr,
				"gntsock_peer: %u messages suppressed\n",
				suppressed);
		window = ts.tv_sec;
		in_window = 0;
		suppressed = 0;
	}
	if (always || in_window < LOG_BURST) {
		in_window++;
		fprintf(stderr, "gntsock_peer: %s\n", msg);
	} else {
		suppressed++;
	}
	pthread_mutex_unlock(&log_lock);
}

#define LOG(fmt, ...)	plog(false, fmt, ##__VA_ARGS__)
#define VLOG(fmt, ...)					\
	do {							\
		if (verbose > 1)				\
			plog(false, fmt, ##__VA_ARGS__);	\
	} while (0)

/* ---- I/O ----------------------------------------------------------- */

/* Returns 0 or -errno. */
static int send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!n)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Returns bytes read (> 0), 0 on EOF, or -errno. */
static ssize_t recv_some(int fd, void *buf, size_t len)
{
	ssize_t n;

	do {
		n = recv(fd, buf, len, 0);
	} while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Returns 0, -ENODATA on early EOF, or -errno. */
static int recv_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	ssize_t n;

	while (len) {
		n = recv_some(fd, p, len);
		if (n < 0)
			return (int)n;
		if (!n)
			return -ENODATA;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = IDLE_TIMEOUT_S };

	/* Best effort: a module that ignores them only loses the reaping. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* ---- services ------------------------------------------------------ */

/* Echo until EOF.  Returns 0 or -errno. */
static int do_echo(int fd, char *buf)
{
	ssize_t n;
	int ret;

	for (;;) {
		n = recv_some(fd, buf, BUF_SIZE);
		if (n <= 0)
			return (int)n;
		ret = send_all(fd, buf, (size_t)n);
		if (ret)
			return ret;
	}
}

static int do_sink(int fd, char *buf, bool slow)
{
	struct gnt_sink_reply r;
	uint64_t h = GNT_FNV1A64_INIT, bytes = 0;
	size_t chunk = slow ? GNTSOCK_PEER_SLOW_CHUNK : BUF_SIZE;
	ssize_t n;

	for (;;) {
		n = recv_some(fd, buf, chunk);
		if (n < 0)
			return (int)n;
		if (!n)
			break;
		h = gnt_fnv1a64(h, buf, (size_t)n);
		bytes += (uint64_t)n;
		if (slow)
			usleep(GNTSOCK_PEER_SLOW_SLEEP_US);
	}
	r.bytes = gnt_le64(bytes);
	r.checksum = gnt_le64(h);
	return send_all(fd, &r, sizeof(r));
}

static int do_source(int fd, char *buf)
{
	struct gnt_source_req req;
	uint64_t nbytes, seed, off = 0;
	size_t n;
	int ret;

	ret = recv_all(fd, &req, sizeof(req));
	if (ret)
		return ret;
	nbytes = gnt_le64(req.nbytes);
	seed = gnt_le64(req.seed);
	while (off < nbytes) {
		n = nbytes - off > BUF_SIZE ? BUF_SIZE : (size_t)(nbytes - off);
		gnt_pattern_fill(seed, off, buf, n);
		ret = send_all(fd, buf, n);
		if (ret)
			return ret;
		off += n;
	}
	return 0;
}

/* Never read; return when the peer closes (or after HOLD_MAX_S). */
/* STAT: this domain's gntsock counters, as /proc shows them. */
static int do_stat(int fd, char *buf)
{
	ssize_t n, off = 0;
	int f = open("/proc/net/gntsock_stat", O_RDONLY | O_CLOEXEC);

	if (f < 0)
		return -errno;
	while (off < BUF_SIZE) {
		n = read(f, buf + off, BUF_SIZE - off);
		if (n <= 0)
			break;
		off += n;
	}
	close(f);
	return send_all(fd, buf, off);
}

/*
 * One record into buf (GNTSOCK_PEER_SEQ_MAX); returns its length or -errno.
 * A zero-length record and EOF both read 0: *eof is set when the peer had
 * already shut down before the read (tests send no empty record after
 * shutting down).
 */
static ssize_t seq_recv(int fd, char *buf, int *flags, bool *eof)
{
	struct iovec iov = { .iov_base = buf, .iov_len = GNTSOCK_PEER_SEQ_MAX };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };
	bool hup;
	ssize_t n;

	hup = poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP));
	do {
		m.msg_flags = 0;
		n = recvmsg(fd, &m, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (m.msg_flags & MSG_TRUNC)
		return -EMSGSIZE;
	*flags = m.msg_flags;
	*eof = !n && hup;
	return n;
}

static int seq_send(int fd, const char *buf, size_t len, int flags)
{
	ssize_t n;

	do {
		n = send(fd, buf, len, MSG_NOSIGNAL | flags);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

/* SEQ_ECHO: records back whole, until EOF. */
static int do_seq_echo(int fd, char *buf)
{
	bool eof;
	ssize_t n;
	int flags, ret;

	for (;;) {
		n = seq_recv(fd, buf, &flags, &eof);
		if (n < 0)
			return (int)n;
		if (eof)
			return 0;
		ret = seq_send(fd, buf, (size_t)n, flags & MSG_EOR);
		if (ret == -EPIPE && !n)
			return 0;	/* that 0 was the peer's close */
		if (ret)
			return ret;
	}
}

static int do_seq_source(int fd, char *buf)
{
	struct gnt_seq_source_req req;
	uint32_t i, count, len, n;
	bool eof;
	ssize_t r;
	int flags, ret;

	r = seq_recv(fd, buf, &flags, &eof);
	if (r < 0)
		return (int)r;
	if (r != sizeof(req))
		return -EBADMSG;
	memcpy(&req, buf, sizeof(req));
	count = gnt_le32(req.count);
	len = gnt_le32(req.len);
	if (len > GNTSOCK_PEER_SEQ_MAX / 5)
		return -EINVAL;
	for (i = 0; i < count; i++) {
		n = gnt_seq_rec_len(len, i);
		gnt_pattern_fill(gnt_le64(req.seed) + i, 0, buf, n);
		ret = seq_send(fd, buf, n, i % 2 ? MSG_EOR : 0);
		if (ret)
			return ret;
	}
	/* Wait for the peer to close. */
	while ((r = seq_recv(fd, buf, &flags, &eof)) >= 0 && !eof)
		;
	return r < 0 ? (int)r : 0;
}

static int do_hold(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLRDHUP };
	time_t end = time(NULL) + GNTSOCK_PEER_HOLD_MAX_S;
	int ret;

	while (time(NULL) < end) {
		pfd.revents = 0;
		ret = poll(&pfd, 1, 1000);
		if (ret < 0 && errno != EINTR)
			return -errno;
		if (ret > 0 && (pfd.revents & (POLLRDHUP | POLLHUP |
					       POLLNVAL)))
			return 0;
		/* POLLERR alone: grant events queued for a reader that
		 * never reads them (a revoke) are no reason to close; a
		 * reset also sets the socket's error.
		 */
		if (ret > 0 && (pfd.revents & POLLERR)) {
			int err = 0;
			socklen_t len = sizeof(err);

			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) ||
			    err)
				return 0;
			usleep(100000);
		}
	}
	return -ETIMEDOUT;
}

static int do_connect_back(struct conn *c, char *buf)
{
	struct gnt_connect_back_status st;
	struct gnt_connect_back_req req;
	struct sockaddr_gnt a;
	int ret, fd2;

	ret = recv_all(c->fd, &req, sizeof(req));
	if (ret)
		return ret;

	memset(&a, 0, sizeof(a));
	a.sgnt_family = AF_GNTSOCK;
	a.sgnt_domid = c->peer.sgnt_domid;
	a.sgnt_port = gnt_le32(req.port);

	ret = 0;
	fd2 = socket(AF_GNTSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd2 < 0) {
		ret = errno;
	} else {
		struct timeval ct = { .tv_sec = 20 };

		set_timeouts(fd2);
		/* (not the 2 s default: a busy rig may answer later) */
		setsockopt(fd2, SOL_GNTSOCK, GNTSOCK_SO_CONNECT_TIMEOUT, &ct,
			   sizeof(ct));
		if (connect(fd2, (struct sockaddr *)&a, sizeof(a))) {
			ret = errno;
			close(fd2);
			fd2 = -1;
		}
	}
	st.err = (int32_t)gnt_le32((uint32_t)ret);
	if (ret)
		LOG("connect_back: connect to %u:%u: %s", a.sgnt_domid,
		    a.sgnt_port, strerror(ret));
	ret = send_all(c->fd, &st, sizeof(st));
	if (ret || fd2 < 0) {
		if (fd2 >= 0)
			close(fd2);
		return ret;
	}
	ret = send_all(fd2, GNTSOCK_PEER_HELLO, GNTSOCK_PEER_HELLO_LEN);
	if (!ret)
		ret = do_echo(fd2, buf);
	close(fd2);
	return ret;
}

#define GNT_GRANT_RESPONDER
#include "gntsock_grant_peer.h"

static void *conn_thread(void *arg)
{
	struct conn *c = arg;
	char *buf = NULL;
	int ret = 0;

	if (c->def->svc != SVC_HOLD && c->def->svc != SVC_SEQ_HOLD) {
		buf = malloc(svc_type(c->def->svc) == SOCK_SEQPACKET ?
			     GNTSOCK_PEER_SEQ_MAX : BUF_SIZE);
		if (!buf) {
			ret = -ENOMEM;
			goto out;
		}
	}
	set_timeouts(c->fd);
	switch (c->def->svc) {
	case SVC_ECHO:
		ret = do_echo(c->fd, buf);
		break;
	case SVC_SINK:
		ret = do_sink(c->fd, buf, false);
		break;
	case SVC_SLOW_SINK:
		ret = do_sink(c->fd, buf, true);
		break;
	case SVC_SOURCE:
		ret = do_source(c->fd, buf);
		break;
	case SVC_HOLD:
		ret = do_hold(c->fd);
		break;
	case SVC_CONNECT_BACK:
		ret = do_connect_back(c, buf);
		break;
	case SVC_STAT:
		ret = do_stat(c->fd, buf);
		break;
	case SVC_SEQ_ECHO:
		ret = do_seq_echo(c->fd, buf);
		break;
	case SVC_SEQ_SOURCE:
		ret = do_seq_source(c->fd, buf);
		break;
	case SVC_SEQ_HOLD:
		ret = do_hold(c->fd);
		break;
	case SVC_GRANT:
	case SVC_GRANT_SEQ:	/* one request per record */
		ret = do_grant(c->fd);
		break;
	}
out:
	if (ret)
		LOG("%s: connection from %u:%u: %s", c->def->name,
		    c->peer.sgnt_domid, c->peer.sgnt_port, strerror(-ret));
	else
		VLOG("%s: connection from %u:%u done", c->def->name,
		     c->peer.sgnt_domid, c->peer.sgnt_port);
	close(c->fd);
	free(buf);
	free(c);
	atomic_fetch_sub(&nr_conns, 1);
	return NULL;
}

static void start_conn(const struct service_def *def, int fd,
		       const struct sockaddr_gnt *peer)
{
	pthread_attr_t attr;
	struct conn *c;
	pthread_t tid;
	int ret;

	if (atomic_fetch_add(&nr_conns, 1) >= MAX_CONNS) {
		LOG("%s: too many connections, dropping one from %u",
		    def->name, peer->sgnt_domid);
		goto drop;
	}
	c = malloc(sizeof(*c));
	if (!c) {
		LOG("%s: out of memory", def->name);
		goto drop;
	}
	c->fd = fd;
	c->def = def;
	c->peer = *peer;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	ret = pthread_create(&tid, &attr, conn_thread, c);
	pthread_attr_destroy(&attr);
	if (ret) {
		LOG("%s: pthread_create: %s", def->name, strerror(ret));
		free(c);
		goto drop;
	}
	return;
drop:
	atomic_fetch_sub(&nr_conns, 1);
	close(fd);
}

/* ---- listeners ----------------------------------------------------- */

static void set_lstate(int idx, enum listener_state st)
{
	pthread_mutex_lock(&state_lock);
	lstate[idx] = st;
	pthread_cond_broadcast(&state_cond);
	pthread_mutex_unlock(&state_lock);
}

/* Returns the listening fd, or -errno. */
static int open_listener(unsigned int port, int type)
{
	struct sockaddr_gnt a;
	int fd, err;

	fd = socket(AF_GNTSOCK, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&a, 0, sizeof(a));
	a.sgnt_family = AF_GNTSOCK;
	a.sgnt_domid = GNTSOCK_DOMID_ANY;
	a.sgnt_port = port;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(fd, 128)) {
		err = errno;
		close(fd);
		return -err;
	}
	return fd;
}

static void *listener_thread(void *arg)
{
	int idx = (int)(intptr_t)arg;
	const struct service_def *def = &services[idx];
	unsigned int errors;
	int fd, last_err = 0;

	for (;;) {
		fd = open_listener(def->port, svc_type(def->svc));
		if (fd == -EADDRINUSE) {
			plog(true, "%s: port %u already in use, skipped",
			     def->name, def->port);
			set_lstate(idx, L_IN_USE);
			return NULL;
		}
		if (fd < 0) {
			if (-fd != last_err)
				plog(true, "%s: cannot listen on port %u: %s; "
				     "retrying every second", def->name,
				     def->port, strerror(-fd));
			last_err = -fd;
			set_lstate(idx, L_RETRYING);
			sleep(1);
			continue;
		}
		if (last_err)
			plog(true, "%s: listening on port %u", def->name,
			     def->port);
		last_err = 0;
		set_lstate(idx, L_LISTENING);

		errors = 0;
		for (;;) {
			struct sockaddr_gnt peer;
			socklen_t len = sizeof(peer);
			int cfd;

			memset(&peer, 0, sizeof(peer));
			cfd = accept4(fd, (struct sockaddr *)&peer, &len,
				      SOCK_CLOEXEC);
			if (cfd >= 0) {
				errors = 0;
				if (len < sizeof(peer) ||
				    peer.sgnt_family != AF_GNTSOCK)
					LOG("%s: accept returned a bad address"
					    " (len %u family %u)", def->name,
					    (unsigned int)len,
					    peer.sgnt_family);
				VLOG("%s: connection from %u:%u", def->name,
				     peer.sgnt_domid, peer.sgnt_port);
				start_conn(def, cfd, &peer);
				continue;
			}
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EAGAIN)
				continue;
			LOG("%s: accept: %s", def->name, strerror(errno));
			if (++errors >= 100)
				break;	/* re-create the listener */
			usleep(errors < 10 ? 10000 : 100000);
		}
		LOG("%s: too many accept errors, re-creating the listener",
		    def->name);
		close(fd);
		sleep(1);
	}
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: gntsock_peer [-v] [-q] [-r READY_FILE]\n"
"AF_GNTSOCK selftest responder; serves, bound to any domid, on ports:\n"
"  %u echo, %u sink, %u source, %u slow_sink, %u hold, %u connect_back\n"
"  SOCK_SEQPACKET: %u seq_echo, %u seq_source, %u seq_hold\n"
"  -v  log every connection\n"
"  -q  log only start-up problems\n"
"  -r  create READY_FILE once every service listens\n",
		GNTSOCK_PEER_PORT_ECHO, GNTSOCK_PEER_PORT_SINK,
		GNTSOCK_PEER_PORT_SOURCE, GNTSOCK_PEER_PORT_SLOW_SINK,
		GNTSOCK_PEER_PORT_HOLD, GNTSOCK_PEER_PORT_CONNECT_BACK,
		GNTSOCK_PEER_PORT_SEQ_ECHO, GNTSOCK_PEER_PORT_SEQ_SOURCE,
		GNTSOCK_PEER_PORT_SEQ_HOLD);
}

int main(int argc, char **argv)
{
	const char *ready_file = NULL;
	bool all_settled, reported = false;
	int i, opt, listening, in_use;
	pthread_attr_t attr;
	pthread_t tid;

	while ((opt = getopt(argc, argv, "vqr:h")) != -1) {
		switch (opt) {
		case 'v':
			verbose = 2;
			break;
		case 'q':
			verbose = 0;
			break;
		case 'r':
			ready_file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stderr, NULL, _IOLBF, 0);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	for (i = 0; i < GNTSOCK_PEER_NR_SERVICES; i++) {
		lstate[i] = L_STARTING;
		if (pthread_create(&tid, &attr, listener_thread,
				   (void *)(intptr_t)i)) {
			plog(true, "cannot start listener threads");
			return 1;
		}
	}
	pthread_attr_destroy(&attr);

	/*
	 * Report once every listener has settled (listening or in use).
	 * Listeners that keep failing (module not loaded yet) retry forever.
	 */
	pthread_mutex_lock(&state_lock);
	for (;;) {
		listening = in_use = 0;
		all_settled = true;
		for (i = 0; i < GNTSOCK_PEER_NR_SERVICES; i++) {
			if (lstate[i] == L_LISTENING)
				listening++;
			else if (lstate[i] == L_IN_USE)
				in_use++;
			else
				all_settled = false;
		}
		if (in_use == GNTSOCK_PEER_NR_SERVICES) {
			pthread_mutex_unlock(&state_lock);
			plog(true, "every port is in use: another responder "
			     "runs; exiting");
			return 0;
		}
		if (all_settled && !reported) {
			reported = true;
			plog(true, "ready: %d services listening, %d ports "
			     "in use by others", listening, in_use);
			if (ready_file) {
				int fd = open(ready_file, O_WRONLY | O_CREAT |
					      O_TRUNC | O_CLOEXEC, 0644);

				if (fd < 0)
					plog(true, "cannot create %s: %s",
					     ready_file, strerror(errno));
				else
					close(fd);
			}
		}
		pthread_cond_wait(&state_cond, &state_lock);
	}
}
