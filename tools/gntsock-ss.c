// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock-ss: show AF_GNTSOCK sockets and links, as ss(8) does for vsock.
 *
 * Reads /proc/net/gntsock, /proc/net/gntsock_links and
 * /proc/net/gntsock_stat (or the same names in the directory given with
 * -P, for testing) and prints them as a table. Numeric only: domain ids
 * and ports, with "*" for the ANY wildcards.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ANY		4294967295U
#define LINE_MAX_LEN	512

enum {
	SHOW_CONNECTED = 1,	/* every state but LISTEN (default) */
	SHOW_LISTENING = 2,
};

struct opts {
	unsigned int states;
	int stream;		/* 1: show STREAM sockets */
	int seqpacket;		/* 1: show SEQPACKET sockets */
	int links;
	int summary;
	int header;
	const char *dir;
};

static void print_usage(FILE *f)
{
	fprintf(f,
		"usage: gntsock-ss [-a|-l] [-t] [-S] [-L] [-s] [-H] [-n] [-P DIR]\n"
		"Show AF_GNTSOCK sockets (default: connected and connecting ones).\n"
		"  -a, --all         all sockets, listening ones too\n"
		"  -l, --listening   listening sockets only\n"
		"  -t, --stream      SOCK_STREAM sockets only\n"
		"  -S, --seqpacket   SOCK_SEQPACKET sockets only (with -t: both)\n"
		"  -L, --links       links instead: peer, role, state, ring pages\n"
		"                    and counters (messages, bytes, resets,\n"
		"                    violations)\n"
		"  -s, --summary     sockets per type and state, links, errors\n"
		"  -H, --no-header   no header line\n"
		"  -n, --numeric     numeric output (always; accepted as for ss)\n"
		"  -P, --proc-dir DIR  read gntsock, gntsock_links, gntsock_stat\n"
		"                    from DIR instead of /proc/net\n"
		"  -h, --help        this help\n"
		"Columns: Type State Recv-Q Send-Q Local:Port Peer:Port Inode.\n"
		"Recv-Q: bytes received, not read; Send-Q: bytes sent that the\n"
		"peer's reader has not consumed. \"*\" is the ANY wildcard.\n");
}

static FILE *open_proc(const struct opts *o, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", o->dir, name);
	f = fopen(path, "r");
	if (!f)
		fprintf(stderr, "gntsock-ss: %s: %s%s\n", path, strerror(errno),
			errno == ENOENT ? " (is gntsock loaded?)" : "");
	return f;
}

static void fmt_addr(char *buf, size_t len, unsigned int domid,
		     unsigned int port)
{
	char d[16], p[16];

	if (domid == ANY)
		snprintf(d, sizeof(d), "*");
	else
		snprintf(d, sizeof(d), "%u", domid);
	if (port == ANY)
		snprintf(p, sizeof(p), "*");
	else
		snprintf(p, sizeof(p), "%u", port);
	snprintf(buf, len, "%s:%s", d, p);
}

struct sock_line {
	char type[16];
	char state[16];
	unsigned int ldom, lport, pdom, pport;
	unsigned long rxq, txq, inode;
};

static int parse_sock(const char *line, struct sock_line *s)
{
	return sscanf(line, "%15s %15s %u:%u %u:%u %lu %lu %lu", s->type,
		      s->state, &s->ldom, &s->lport, &s->pdom, &s->pport,
		      &s->rxq, &s->txq, &s->inode) == 9 ? 0 : -1;
}

static int wanted(const struct opts *o, const struct sock_line *s)
{
	int listening = !strcmp(s->state, "LISTEN");

	if (listening && !(o->states & SHOW_LISTENING))
		return 0;
	if (!listening && !(o->states & SHOW_CONNECTED))
		return 0;
	if (!strcmp(s->type, "STREAM"))
		return o->stream;
	if (!strcmp(s->type, "SEQPACKET"))
		return o->seqpacket;
	return o->stream && o->seqpacket;
}

static int show_sockets(const struct opts *o)
{
	char line[LINE_MAX_LEN], la[32], pa[32];
	struct sock_line s;
	FILE *f = open_proc(o, "gntsock");
	int first = 1;

	if (!f)
		return 1;
	if (o->header)
		printf("%-10s %-12s %8s %8s %-18s %-18s %s\n", "Type", "State",
		       "Recv-Q", "Send-Q", "Local:Port", "Peer:Port", "Inode");
	while (fgets(line, sizeof(line), f)) {
		if (first) {
			first = 0;
			if (!strncmp(line, "type ", 5))
				continue;
		}
		if (parse_sock(line, &s)) {
			fprintf(stderr, "gntsock-ss: cannot parse: %s", line);
			continue;
		}
		if (!wanted(o, &s))
			continue;
		fmt_addr(la, sizeof(la), s.ldom, s.lport);
		fmt_addr(pa, sizeof(pa), s.pdom, s.pport);
		printf("%-10s %-12s %8lu %8lu %-18s %-18s %lu\n", s.type,
		       s.state, s.rxq, s.txq, la, pa, s.inode);
	}
	fclose(f);
	return 0;
}

static int show_links(const struct opts *o)
{
	unsigned long long pages, txm, rxm, txb, rxb, resets, viol, socks;
	char line[LINE_MAX_LEN], role[16], state[16];
	FILE *f = open_proc(o, "gntsock_links");
	unsigned int peer;
	int first = 1;

	if (!f)
		return 1;
	if (o->header)
		printf("%-6s %-9s %-11s %5s %10s %10s %12s %12s %6s %10s %7s\n",
		       "Peer", "Role", "State", "Pages", "Tx-Msgs", "Rx-Msgs",
		       "Tx-Bytes", "Rx-Bytes", "Resets", "Violations",
		       "Sockets");
	while (fgets(line, sizeof(line), f)) {
		if (first) {
			first = 0;
			if (!strncmp(line, "peer ", 5))
				continue;
		}
		if (sscanf(line, "%u %15s %15s %llu %llu %llu %llu %llu %llu %llu %llu",
			   &peer, role, state, &pages, &txm, &rxm, &txb, &rxb,
			   &resets, &viol, &socks) != 11) {
			fprintf(stderr, "gntsock-ss: cannot parse: %s", line);
			continue;
		}
		printf("%-6u %-9s %-11s %5llu %10llu %10llu %12llu %12llu %6llu %10llu %7llu\n",
		       peer, role, state, pages, txm, rxm, txb, rxb, resets,
		       viol, socks);
	}
	fclose(f);
	return 0;
}

#define NSTATES 4

static const char * const states[NSTATES] = {
	"LISTEN", "SYN_SENT", "ESTABLISHED", "CLOSE",
};

static int show_summary(const struct opts *o)
{
	unsigned long count[2][NSTATES] = { { 0 } };
	unsigned long links = 0, up = 0, v;
	char line[LINE_MAX_LEN], key[64], role[16], state[16];
	struct sock_line s;
	unsigned int i, t;
	FILE *f;

	f = open_proc(o, "gntsock");
	if (!f)
		return 1;
	while (fgets(line, sizeof(line), f)) {
		if (parse_sock(line, &s))
			continue;
		t = !strcmp(s.type, "SEQPACKET");
		for (i = 0; i < NSTATES; i++)
			if (!strcmp(s.state, states[i]))
				count[t][i]++;
	}
	fclose(f);
	printf("Sockets: STREAM %lu, SEQPACKET %lu\n",
	       count[0][0] + count[0][1] + count[0][2] + count[0][3],
	       count[1][0] + count[1][1] + count[1][2] + count[1][3]);
	for (t = 0; t < 2; t++) {
		printf("  %-10s", t ? "SEQPACKET" : "STREAM");
		for (i = 0; i < NSTATES; i++)
			printf(" %s %lu", states[i], count[t][i]);
		printf("\n");
	}

	f = open_proc(o, "gntsock_links");
	if (!f)
		return 1;
	while (fgets(line, sizeof(line), f)) {
		unsigned int peer;

		if (sscanf(line, "%u %15s %15s", &peer, role, state) != 3 ||
		    !strcmp(role, "loopback"))
			continue;
		links++;
		up += !strcmp(state, "connected");
	}
	fclose(f);
	printf("Links: %lu, connected %lu (plus loopback)\n", links, up);

	f = open_proc(o, "gntsock_stat");
	if (!f)
		return 1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%63s %lu", key, &v) != 2)
			continue;
		if (!strcmp(key, "sockets") || !strcmp(key, "resets") ||
		    !strcmp(key, "violations") || !strcmp(key, "ctl_dropped"))
			printf("  %s %lu\n", key, v);
	}
	fclose(f);
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {
		.states = SHOW_CONNECTED, .header = 1, .dir = "/proc/net",
	};
	static const struct option longopts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "listening", no_argument, NULL, 'l' },
		{ "stream", no_argument, NULL, 't' },
		{ "seqpacket", no_argument, NULL, 'S' },
		{ "links", no_argument, NULL, 'L' },
		{ "summary", no_argument, NULL, 's' },
		{ "no-header", no_argument, NULL, 'H' },
		{ "numeric", no_argument, NULL, 'n' },
		{ "proc-dir", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, t = 0, S = 0;

	while ((c = getopt_long(argc, argv, "altSLsHnP:h", longopts,
				NULL)) != -1) {
		switch (c) {
		case 'a':
			o.states = SHOW_CONNECTED | SHOW_LISTENING;
			break;
		case 'l':
			o.states = SHOW_LISTENING;
			break;
		case 't':
			t = 1;
			break;
		case 'S':
			S = 1;
			break;
		case 'L':
			o.links = 1;
			break;
		case 's':
			o.summary = 1;
			break;
		case 'H':
			o.header = 0;
			break;
		case 'n':
			break;
		case 'P':
			o.dir = optarg;
			break;
		case 'h':
			print_usage(stdout);
			return 0;
		default:
			print_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		print_usage(stderr);
		return 2;
	}
	o.stream = t || !S;
	o.seqpacket = S || !t;
	if (o.summary)
		return show_summary(&o);
	if (o.links)
		return show_links(&o);
	return show_sockets(&o);
}
