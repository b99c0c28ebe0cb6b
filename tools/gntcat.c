// SPDX-License-Identifier: GPL-2.0
/*
 * gntcat: netcat for AF_GNTSOCK.
 *
 *   gntcat -l PORT            accept one connection, copy it to stdout,
 *                             and stdin to it
 *   gntcat DOMID:PORT         connect, copy stdin to it and it to stdout
 *
 * When stdin ends, the write side is shut down (the peer sees EOF); gntcat
 * exits when the peer closes its side. --seqpacket uses SOCK_SEQPACKET (one
 * message per read of stdin); --grant FILE sends FILE by grant: in pieces
 * of at most net.gntsock.max_pages_msg pages, each a read-only grant
 * travelling with a 16-byte header (struct gntcat_hdr) that says how many
 * of its bytes are the file's. The receiving gntcat maps each piece,
 * writes those bytes to stdout, unmaps and releases it. See gntcat(1).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <getopt.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/gntsock.h>
#include "gntsock_grant_msg.h"

static void print_usage(FILE *f)
{
	fprintf(f,
		"usage: gntcat [-v] [--seqpacket] -l [DOMID:]PORT\n"
		"       gntcat [-v] [--seqpacket] [--grant FILE] DOMID:PORT\n"
		"Copy stdin to an AF_GNTSOCK socket and the socket to stdout, like netcat.\n"
		"Addresses are DOMID:PORT: the Xen domain id and the port (decimal or 0x hex).\n"
		"  -l, --listen [DOMID:]PORT  listen on PORT (DOMID: the local domain id to\n"
		"                             bind, default any) and serve one peer\n"
		"  -s, --seqpacket            SOCK_SEQPACKET instead of SOCK_STREAM: each\n"
		"                             read of stdin goes as one message\n"
		"  -g, --grant FILE           send FILE by grant (the receiver maps the\n"
		"                             pages) instead of copying it through the ring\n"
		"  -v, --verbose              report the peer and byte counts on stderr\n"
		"  -h, --help                 this help\n"
		"Exit status: 0 success, 1 failure (the error is printed), 2 usage error.\n"
		"See gntcat(1).\n");
}

/* "PORT" or "DOMID:PORT"; domid stays untouched when absent. */
static int parse_addr(const char *s, unsigned int *domid, unsigned int *port,
		      int need_domid);

static int parse_u32(const char *s, unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || v > 0xffffffffUL)
		return -1;
	*out = v;
	return 0;
}

static int parse_addr(const char *s, unsigned int *domid, unsigned int *port,
		      int need_domid)
{
	const char *colon = strchr(s, ':');
	char buf[32];

	if (!colon)
		return need_domid ? -1 : parse_u32(s, port);
	if ((size_t)(colon - s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, colon - s);
	buf[colon - s] = '\0';
	return parse_u32(buf, domid) || parse_u32(colon + 1, port) ? -1 : 0;
}

static int write_all(int fd, const char *buf, ssize_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += w;
		n -= w;
	}
	return 0;
}

/* Sent with every grant --grant makes: the grant's first @len bytes are
 * the file's (little-endian fields).
 */
struct gntcat_hdr {
	char magic[8];		/* GNTCAT_MAGIC */
	uint64_t len;
};

#define GNTCAT_MAGIC	"gntcat-g"

static long page_size;

/* A grant that arrived: map it, copy its payload to stdout, release it. */
static int take_grant(int sock, const struct gntsock_grant_info *gi,
		      const struct gntcat_hdr *h, unsigned long long *in)
{
	unsigned char *p;
	int ret = 0;

	if (memcmp(h->magic, GNTCAT_MAGIC, sizeof(h->magic)) ||
	    h->len > gi->len) {
		fprintf(stderr, "gntcat: a grant came without a gntcat header\n");
		ret = 1;
		goto release;
	}
	p = mmap(NULL, gi->len, PROT_READ, MAP_SHARED, sock,
		 (off_t)gi->id * page_size);
	if (p == MAP_FAILED) {
		perror("gntcat: mmap of a grant");
		ret = 1;
		goto release;
	}
	if (write_all(1, (const char *)p, h->len)) {
		perror("gntcat: write to stdout");
		ret = 1;
	}
	*in += h->len;
	munmap(p, gi->len);
release:
	if (ioctl(sock, GNTSOCK_IOC_RELEASE, &gi->id)) {
		perror("gntcat: release of a grant");
		ret = 1;
	}
	return ret;
}

/* read() that also takes grants (and the header bytes they come with). */
static ssize_t sock_read(int sock, char *buf, size_t len,
			 unsigned long long *in, int *err)
{
	union gnt_grant_cbuf u;
	struct iovec iov = { buf, len };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = u.i, .msg_controllen = sizeof(u.i) };
	struct gntsock_grant_info gi;
	struct gntcat_hdr h;
	size_t got, rest;
	ssize_t n;

	*err = 0;
	n = recvmsg(sock, &m, 0);
	if (n <= 0)
		return n;
	if (!gnt_grant_info(&m, &gi))
		return n;
	/* The header is the first bytes the grant came with. */
	got = (size_t)n < sizeof(h) ? (size_t)n : sizeof(h);
	rest = (size_t)n - got;
	memcpy(&h, buf, got);
	while (got < sizeof(h)) {
		n = read(sock, (char *)&h + got, sizeof(h) - got);
		if (n <= 0) {
			fprintf(stderr, "gntcat: short grant header\n");
			*err = 1;
			return -1;
		}
		got += n;
	}
	*err = take_grant(sock, &gi, &h, in);
	if (*err)
		return -1;
	/* Bytes after the header are ordinary data. */
	if (rest)
		memmove(buf, buf + sizeof(h), rest);
	return rest ? (ssize_t)rest : -2;	/* -2: nothing for stdout yet */
}

static int pump(int sock, int verbose)
{
	static char buf[65536];
	unsigned long long in = 0, out = 0;
	int stdin_open = 1, sock_open = 1;
	struct pollfd p[2];

	/* Done when the peer closed its side and all of stdin was sent. */
	while (sock_open || stdin_open) {
		ssize_t n;

		p[0] = (struct pollfd){ .fd = sock_open ? sock : -1,
					.events = POLLIN };
		p[1] = (struct pollfd){ .fd = stdin_open ? 0 : -1,
					.events = POLLIN };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("gntcat: poll");
			return 1;
		}
		if (p[0].revents) {
			int gerr;

			n = sock_read(sock, buf, sizeof(buf), &in, &gerr);
			if (n == -2)
				continue;
			if (n < 0) {
				if (!gerr)
					perror("gntcat: read from socket");
				return 1;
			}
			if (n == 0) {
				sock_open = 0;
				continue;
			}
			if (write_all(1, buf, n)) {
				perror("gntcat: write to stdout");
				return 1;
			}
			in += n;
		}
		if (p[1].revents) {
			n = read(0, buf, sizeof(buf));
			if (n < 0) {
				perror("gntcat: read from stdin");
				return 1;
			}
			if (n == 0) {
				stdin_open = 0;
				if (shutdown(sock, SHUT_WR)) {
					perror("gntcat: shutdown");
					return 1;
				}
				continue;
			}
			if (write_all(sock, buf, n)) {
				perror("gntcat: write to socket");
				return 1;
			}
			out += n;
		}
	}
	if (verbose)
		fprintf(stderr, "gntcat: sent %llu bytes, received %llu bytes\n",
			out, in);
	return 0;
}

/* Largest grant the sending kernel allows, in pages. */
static unsigned long max_grant_pages(void)
{
	unsigned long v = 256;
	FILE *f = fopen("/proc/sys/net/gntsock/max_pages_msg", "r");

	if (f) {
		if (fscanf(f, "%lu", &v) != 1 || !v)
			v = 256;
		fclose(f);
	}
	return v;
}

/* --grant FILE: each piece a read-only grant, one at a time. */
static int send_file_by_grant(int sock, const char *path, int verbose)
{
	size_t piece = max_grant_pages() * page_size, off, len, n;
	unsigned long long sent = 0, pieces = 0;
	unsigned char *buf;
	struct stat st;
	int fd, ev;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "gntcat: --grant %s: %s\n", path, strerror(errno));
		return 1;
	}
	buf = mmap(NULL, piece, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (buf == MAP_FAILED) {
		perror("gntcat: mmap");
		return 1;
	}
	for (off = 0; off < (size_t)st.st_size; off += len) {
		struct gntsock_grant_event gev;
		struct gntcat_hdr h = { .magic = GNTCAT_MAGIC };
		uint64_t glen;

		len = (size_t)st.st_size - off < piece ?
		      (size_t)st.st_size - off : piece;
		for (n = 0; n < len; ) {
			ssize_t r = pread(fd, buf + n, len - n, off + n);

			if (r <= 0) {
				fprintf(stderr, "gntcat: --grant %s: %s\n", path,
					r ? strerror(errno) : "file shrank");
				return 1;
			}
			n += r;
		}
		glen = (len + page_size - 1) / page_size * page_size;
		h.len = len;
		if (gnt_grant_sendmsg(sock, buf, glen, 0, pieces, &h, sizeof(h),
				      MSG_NOSIGNAL) != (ssize_t)sizeof(h)) {
			perror("gntcat: sendmsg with a grant");
			return 1;
		}
		/* The peer has copied it out once it released the grant. */
		ev = gnt_grant_event(sock, -1, &gev) ? -1 : (int)gev.type;
		if (ev != GNTSOCK_EV_RELEASED) {
			fprintf(stderr,
				"gntcat: piece %llu: not released by the peer (event %d)\n",
				pieces, ev);
			return 1;
		}
		sent += len;
		pieces++;
	}
	close(fd);
	munmap(buf, piece);
	if (verbose)
		fprintf(stderr, "gntcat: sent %llu bytes by grant in %llu pieces\n",
			sent, pieces);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "seqpacket", no_argument, NULL, 's' },
		{ "grant", required_argument, NULL, 'g' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct sockaddr_gnt addr = { .sgnt_family = AF_GNTSOCK };
	unsigned int port, domid = GNTSOCK_DOMID_ANY;
	int listen_mode = 0, verbose = 0, type = SOCK_STREAM, opt, s, c;
	const char *grant_file = NULL;
	socklen_t alen = sizeof(addr);

	while ((opt = getopt_long(argc, argv, "l:sg:vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (parse_addr(optarg, &domid, &port, 0)) {
				fprintf(stderr, "gntcat: bad address '%s' (want [DOMID:]PORT)\n",
					optarg);
				return 2;
			}
			listen_mode = 1;
			break;
		case 's':
			type = SOCK_SEQPACKET;
			break;
		case 'g':
			grant_file = optarg;
			break;
		case 'v':
			verbose = 1;
			break;
		case 'h':
			print_usage(stdout);
			return 0;
		default:
			print_usage(stderr);
			return 2;
		}
	}
	if (optind + !listen_mode != argc || (listen_mode && grant_file)) {
		print_usage(stderr);
		return 2;
	}
	if (!listen_mode && parse_addr(argv[optind], &domid, &port, 1)) {
		fprintf(stderr, "gntcat: bad address '%s' (want DOMID:PORT)\n",
			argv[optind]);
		return 2;
	}
	page_size = sysconf(_SC_PAGESIZE);
	if (grant_file && access(grant_file, R_OK)) {
		fprintf(stderr, "gntcat: --grant %s: %s\n", grant_file,
			strerror(errno));
		return 1;
	}

	s = socket(AF_GNTSOCK, type, 0);
	if (s < 0) {
		int e = errno;

		if (type == SOCK_SEQPACKET &&
		    (e == ESOCKTNOSUPPORT || e == EPROTONOSUPPORT || e == EOPNOTSUPP))
			fprintf(stderr,
				"gntcat: --seqpacket: SOCK_SEQPACKET is not supported by this gntsock module (%s)\n",
				strerror(e));
		else if (e == EAFNOSUPPORT)
			fprintf(stderr, "gntcat: socket(AF_GNTSOCK): %s (is gntsock.ko loaded?)\n",
				strerror(e));
		else
			fprintf(stderr, "gntcat: socket(AF_GNTSOCK): %s\n", strerror(e));
		return 1;
	}
	if (listen_mode) {
		addr.sgnt_domid = domid;
		addr.sgnt_port = port;
		if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) ||
		    listen(s, 1)) {
			perror("gntcat: bind/listen");
			return 1;
		}
		c = accept(s, (struct sockaddr *)&addr, &alen);
		if (c < 0) {
			perror("gntcat: accept");
			return 1;
		}
		close(s);
		s = c;
		if (verbose)
			fprintf(stderr, "gntcat: connection from %u:%u\n",
				addr.sgnt_domid, addr.sgnt_port);
	} else {
		addr.sgnt_domid = domid;
		addr.sgnt_port = port;
		if (connect(s, (struct sockaddr *)&addr, sizeof(addr))) {
			perror("gntcat: connect");
			return 1;
		}
	}
	if (grant_file) {
		if (send_file_by_grant(s, grant_file, verbose))
			return 1;
		/* Then as without --grant: stdin (usually empty) and EOF. */
	}
	return pump(s, verbose);
}
