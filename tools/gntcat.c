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
 * message per read of stdin); --grant FILE sends FILE by grant. See
 * gntcat(1).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <getopt.h>
#include <sys/socket.h>
#include <linux/gntsock.h>

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
			n = read(sock, buf, sizeof(buf));
			if (n < 0) {
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
	if (grant_file) {
		/* Grants travel as control messages; this module's ABI has
		 * none yet (<linux/gntsock.h> defines no grant cmsg).
		 */
		fprintf(stderr,
			"gntcat: --grant %s: sending by grant is not supported by this gntsock module (%s)\n",
			grant_file, strerror(EOPNOTSUPP));
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
	return pump(s, verbose);
}
