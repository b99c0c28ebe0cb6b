// SPDX-License-Identifier: GPL-2.0
/*
 * gntcat: netcat for AF_GNTSOCK.
 *
 *   gntcat -l PORT            accept one connection, copy it to stdout,
 *                             and stdin to it
 *   gntcat DOMID:PORT         connect, copy stdin to it and it to stdout
 *
 * When stdin ends, the write side is shut down (the peer sees EOF); gntcat
 * exits when the peer closes its side.
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
		"usage: gntcat [-v] -l PORT\n"
		"       gntcat [-v] DOMID:PORT\n"
		"Copy stdin to an AF_GNTSOCK stream socket and the socket to stdout.\n"
		"  -l PORT   listen on PORT (any local domain id) and serve one peer\n"
		"  -v        report the peer and byte counts on stderr\n"
		"  -h        this help\n");
}

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
	struct sockaddr_gnt addr = { .sgnt_family = AF_GNTSOCK };
	unsigned int port, domid;
	int listen_mode = 0, verbose = 0, opt, s, c;
	socklen_t alen = sizeof(addr);
	char *colon;

	while ((opt = getopt(argc, argv, "l:vh")) != -1) {
		switch (opt) {
		case 'l':
			if (parse_u32(optarg, &port)) {
				fprintf(stderr, "gntcat: bad port '%s'\n", optarg);
				return 2;
			}
			listen_mode = 1;
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
	if (optind + !listen_mode != argc) {
		print_usage(stderr);
		return 2;
	}

	s = socket(AF_GNTSOCK, SOCK_STREAM, 0);
	if (s < 0) {
		perror("gntcat: socket(AF_GNTSOCK) (is gntsock.ko loaded?)");
		return 1;
	}
	if (listen_mode) {
		addr.sgnt_domid = GNTSOCK_DOMID_ANY;
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
		colon = strchr(argv[optind], ':');
		if (!colon) {
			print_usage(stderr);
			return 2;
		}
		*colon = '\0';
		if (parse_u32(argv[optind], &domid) ||
		    parse_u32(colon + 1, &port)) {
			fprintf(stderr, "gntcat: bad address\n");
			return 2;
		}
		addr.sgnt_domid = domid;
		addr.sgnt_port = port;
		if (connect(s, (struct sockaddr *)&addr, sizeof(addr))) {
			perror("gntcat: connect");
			return 1;
		}
	}
	return pump(s, verbose);
}
