// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock-link - create, remove and list AF_GNTSOCK links between Xen
 * domains (run in dom0).
 *
 * A link is a PV-device-style frontend/backend pair in xenstore.  For domains
 * A and B, the backend is the lower domid (so dom0 is always the backend),
 * the frontend the other one, and the device id is the backend's domid:
 *
 *   /local/domain/<F>/device/gntsock/<B>/          owner F, read B
 *       backend     = /local/domain/<B>/backend/gntsock/<F>/<B>
 *       backend-id  = <B>
 *       state       = 1 (XenbusStateInitialising)
 *       ring-order  = N (only with --ring-order)
 *   /local/domain/<B>/backend/gntsock/<F>/<B>/     owner B, read F
 *       frontend    = /local/domain/<F>/device/gntsock/<B>
 *       frontend-id = <F>
 *       online      = 1
 *       state       = 1
 *
 * Both directories are written in one xenstore transaction.  `del` asks the
 * link to close the way the toolstack closes PV devices (backend online = 0
 * and state = 5 (Closing), then waits for the backend to reach 6 (Closed)),
 * then removes both directories in one transaction.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xenstore.h>

#define DOMID_FIRST_RESERVED	0x7ff0U
#define MAX_RING_ORDER		15	/* the module enforces its own limit */
#define TXN_RETRIES		100
#define DEFAULT_DEL_TIMEOUT	10	/* seconds */

#define XENBUS_STATE_INITIALISING	1
#define XENBUS_STATE_CLOSING		5
#define XENBUS_STATE_CLOSED		6

static const char *prog = "gntsock-link";

static void __attribute__((format(printf, 1, 2))) err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static const char usage_text[] =
	"Usage: %s add A B [--ring-order N]\n"
	"       %s del A B [--force] [--timeout SECONDS]\n"
	"       %s list\n"
	"\n"
	"Manage AF_GNTSOCK links between Xen domains (xenstore, run in dom0).\n"
	"The lower domid of a pair is the backend, the other the frontend.\n"
	"\n"
	"  add   create the link between domains A and B; --ring-order N asks\n"
	"        for a ring of 2^N pages (the module's default if omitted)\n"
	"  del   close the link (backend online=0, state=Closing, wait up to\n"
	"        --timeout seconds, default %d, for state=Closed) and remove it;\n"
	"        --force removes it at once\n"
	"  list  print one line per link: frontend backend fe-state be-state\n"
	"        (XenbusState numbers, - if absent)\n"
	"\n"
	"Exit status: 0 success, 1 failure, 2 usage error.\n";

static void usage(FILE *f)
{
	fprintf(f, usage_text, prog, prog, prog, DEFAULT_DEL_TIMEOUT);
}

static int parse_domid(const char *s, unsigned int *domid)
{
	unsigned long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v >= DOMID_FIRST_RESERVED)
		return -1;
	*domid = (unsigned int)v;
	return 0;
}

struct link_paths {
	unsigned int front, back;
	char fe[160];		/* /local/domain/F/device/gntsock/B */
	char be[160];		/* /local/domain/B/backend/gntsock/F/B */
	char be_parent[128];	/* /local/domain/B/backend/gntsock/F */
	char fe_dom[64];	/* /local/domain/F */
	char be_dom[64];	/* /local/domain/B */
};

static void link_paths(unsigned int a, unsigned int b, struct link_paths *p)
{
	p->back = a < b ? a : b;
	p->front = a < b ? b : a;
	snprintf(p->fe_dom, sizeof(p->fe_dom), "/local/domain/%u", p->front);
	snprintf(p->be_dom, sizeof(p->be_dom), "/local/domain/%u", p->back);
	snprintf(p->fe, sizeof(p->fe), "%s/device/gntsock/%u", p->fe_dom,
		 p->back);
	snprintf(p->be_parent, sizeof(p->be_parent), "%s/backend/gntsock/%u",
		 p->be_dom, p->front);
	snprintf(p->be, sizeof(p->be), "%s/%u", p->be_parent, p->back);
}

/* Does path exist?  1 yes, 0 no, -1 error (errno set). */
static int xs_exists(struct xs_handle *xs, xs_transaction_t t,
		     const char *path)
{
	unsigned int len;
	void *v = xs_read(xs, t, path, &len);

	if (v) {
		free(v);
		return 1;
	}
	return errno == ENOENT ? 0 : -1;
}

/* Read a small value; returns a malloc'd string or NULL. */
static char *xs_get(struct xs_handle *xs, xs_transaction_t t,
		    const char *path)
{
	unsigned int len;

	return xs_read(xs, t, path, &len);
}

/* Write dir/key = val and give it perms.  Returns 0 or -1 (errno set). */
static int xs_put(struct xs_handle *xs, xs_transaction_t t, const char *dir,
		  const char *key, const char *val,
		  struct xs_permissions *perms)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	if (!xs_write(xs, t, path, val, (unsigned int)strlen(val)))
		return -1;
	if (!xs_set_permissions(xs, t, path, perms, 2))
		return -1;
	return 0;
}

enum txn_result { TXN_OK, TXN_RETRY, TXN_FAIL };

/*
 * Run fn in a transaction, retrying on EAGAIN.  fn returns TXN_OK to
 * commit, TXN_FAIL to abort (having printed why).  Returns 0 or -1.
 */
static int in_transaction(struct xs_handle *xs,
			  enum txn_result (*fn)(struct xs_handle *,
						xs_transaction_t, void *),
			  void *arg)
{
	enum txn_result r;
	xs_transaction_t t;
	int i;

	for (i = 0; i < TXN_RETRIES; i++) {
		t = xs_transaction_start(xs);
		if (t == XBT_NULL) {
			err("cannot start a xenstore transaction: %s",
			    strerror(errno));
			return -1;
		}
		r = fn(xs, t, arg);
		if (r != TXN_OK) {
			xs_transaction_end(xs, t, true);
			if (r == TXN_FAIL)
				return -1;
			continue;
		}
		if (xs_transaction_end(xs, t, false))
			return 0;
		if (errno != EAGAIN) {
			err("xenstore transaction failed: %s",
			    strerror(errno));
			return -1;
		}
	}
	err("xenstore transaction kept conflicting; giving up");
	return -1;
}

/* TXN_RETRY if errno says the transaction conflicted, else TXN_FAIL. */
static enum txn_result xs_failed(const char *what, const char *path)
{
	if (errno == EAGAIN)
		return TXN_RETRY;
	err("%s %s: %s", what, path, strerror(errno));
	return TXN_FAIL;
}

/* ---- add ----------------------------------------------------------- */

struct add_args {
	struct link_paths p;
	int ring_order;		/* -1: omit */
};

static enum txn_result add_txn(struct xs_handle *xs, xs_transaction_t t,
			       void *arg)
{
	struct add_args *a = arg;
	struct link_paths *p = &a->p;
	struct xs_permissions fe_perms[2] = {
		{ .id = p->front, .perms = XS_PERM_NONE },
		{ .id = p->back, .perms = XS_PERM_READ },
	};
	struct xs_permissions be_perms[2] = {
		{ .id = p->back, .perms = XS_PERM_NONE },
		{ .id = p->front, .perms = XS_PERM_READ },
	};
	char v[160];
	int e;

	e = xs_exists(xs, t, p->fe_dom);
	if (e < 0)
		return xs_failed("cannot read", p->fe_dom);
	if (!e) {
		err("domain %u does not exist (no %s)", p->front, p->fe_dom);
		return TXN_FAIL;
	}
	e = xs_exists(xs, t, p->be_dom);
	if (e < 0)
		return xs_failed("cannot read", p->be_dom);
	if (!e) {
		err("domain %u does not exist (no %s)", p->back, p->be_dom);
		return TXN_FAIL;
	}
	e = xs_exists(xs, t, p->fe);
	if (e < 0)
		return xs_failed("cannot read", p->fe);
	if (!e) {
		e = xs_exists(xs, t, p->be);
		if (e < 0)
			return xs_failed("cannot read", p->be);
	}
	if (e) {
		err("a link between %u and %u already exists: %s",
		    p->back, p->front, strerror(EEXIST));
		return TXN_FAIL;
	}

	/* frontend */
	if (!xs_mkdir(xs, t, p->fe))
		return xs_failed("cannot create", p->fe);
	if (!xs_set_permissions(xs, t, p->fe, fe_perms, 2))
		return xs_failed("cannot set permissions of", p->fe);
	if (xs_put(xs, t, p->fe, "backend", p->be, fe_perms))
		return xs_failed("cannot write under", p->fe);
	snprintf(v, sizeof(v), "%u", p->back);
	if (xs_put(xs, t, p->fe, "backend-id", v, fe_perms))
		return xs_failed("cannot write under", p->fe);
	snprintf(v, sizeof(v), "%d", XENBUS_STATE_INITIALISING);
	if (xs_put(xs, t, p->fe, "state", v, fe_perms))
		return xs_failed("cannot write under", p->fe);
	if (a->ring_order >= 0) {
		snprintf(v, sizeof(v), "%d", a->ring_order);
		if (xs_put(xs, t, p->fe, "ring-order", v, fe_perms))
			return xs_failed("cannot write under", p->fe);
	}

	/* backend */
	if (!xs_mkdir(xs, t, p->be))
		return xs_failed("cannot create", p->be);
	if (!xs_set_permissions(xs, t, p->be, be_perms, 2))
		return xs_failed("cannot set permissions of", p->be);
	if (xs_put(xs, t, p->be, "frontend", p->fe, be_perms))
		return xs_failed("cannot write under", p->be);
	snprintf(v, sizeof(v), "%u", p->front);
	if (xs_put(xs, t, p->be, "frontend-id", v, be_perms))
		return xs_failed("cannot write under", p->be);
	if (xs_put(xs, t, p->be, "online", "1", be_perms))
		return xs_failed("cannot write under", p->be);
	snprintf(v, sizeof(v), "%d", XENBUS_STATE_INITIALISING);
	if (xs_put(xs, t, p->be, "state", v, be_perms))
		return xs_failed("cannot write under", p->be);
	return TXN_OK;
}

static int cmd_add(struct xs_handle *xs, unsigned int a, unsigned int b,
		   int ring_order)
{
	struct add_args args = { .ring_order = ring_order };

	link_paths(a, b, &args.p);
	if (in_transaction(xs, add_txn, &args))
		return 1;
	printf("link %u (frontend) <-> %u (backend) created\n",
	       args.p.front, args.p.back);
	return 0;
}

/* ---- del ----------------------------------------------------------- */

struct del_args {
	struct link_paths p;
	bool fe_there, be_there, doms_there;
};

static enum txn_result del_check_txn(struct xs_handle *xs,
				     xs_transaction_t t, void *arg)
{
	struct del_args *d = arg;
	int e[4], i;

	e[0] = xs_exists(xs, t, d->p.fe);
	e[1] = xs_exists(xs, t, d->p.be);
	e[2] = xs_exists(xs, t, d->p.fe_dom);
	e[3] = xs_exists(xs, t, d->p.be_dom);
	for (i = 0; i < 4; i++)
		if (e[i] < 0)
			return xs_failed("cannot read", "xenstore");
	d->fe_there = e[0];
	d->be_there = e[1];
	d->doms_there = e[2] && e[3];
	if (!d->fe_there && !d->be_there) {
		err("no link between %u and %u", d->p.back, d->p.front);
		return TXN_FAIL;
	}
	/* Ask the link to close, as the toolstack does for PV devices. */
	if (d->be_there && d->doms_there) {
		char path[256];

		snprintf(path, sizeof(path), "%s/online", d->p.be);
		if (!xs_write(xs, t, path, "0", 1))
			return xs_failed("cannot write", path);
		snprintf(path, sizeof(path), "%s/state", d->p.be);
		if (!xs_write(xs, t, path, "5", 1))
			return xs_failed("cannot write", path);
	}
	return TXN_OK;
}

static enum txn_result del_rm_txn(struct xs_handle *xs, xs_transaction_t t,
				  void *arg)
{
	struct del_args *d = arg;
	unsigned int n = 0;
	char **ents;

	if (!xs_rm(xs, t, d->p.fe) && errno != ENOENT)
		return xs_failed("cannot remove", d->p.fe);
	if (!xs_rm(xs, t, d->p.be) && errno != ENOENT)
		return xs_failed("cannot remove", d->p.be);
	/* .../backend/gntsock/<F> is ours too once empty */
	ents = xs_directory(xs, t, d->p.be_parent, &n);
	if (ents && !n && !xs_rm(xs, t, d->p.be_parent) && errno != ENOENT) {
		free(ents);
		return xs_failed("cannot remove", d->p.be_parent);
	}
	free(ents);
	return TXN_OK;
}

/* Wait for the backend state to become Closed (or vanish). */
static bool wait_closed(struct xs_handle *xs, const struct link_paths *p,
			int timeout_s)
{
	struct timespec now, end, ms100 = { 0, 100000000L };
	char path[256], *v;
	bool closed;

	snprintf(path, sizeof(path), "%s/state", p->be);
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += timeout_s;
	for (;;) {
		v = xs_get(xs, XBT_NULL, path);
		closed = !v || atoi(v) == XENBUS_STATE_CLOSED;
		free(v);
		if (closed)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > end.tv_sec ||
		    (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
			return false;
		nanosleep(&ms100, NULL);
	}
}

static int cmd_del(struct xs_handle *xs, unsigned int a, unsigned int b,
		   bool force, int timeout_s)
{
	struct del_args d = { 0 };

	link_paths(a, b, &d.p);
	if (in_transaction(xs, del_check_txn, &d))
		return 1;
	if (!force && d.be_there && d.doms_there &&
	    !wait_closed(xs, &d.p, timeout_s))
		fprintf(stderr,
			"%s: warning: backend %s did not reach Closed in %d s; removing the link anyway\n",
			prog, d.p.be, timeout_s);
	if (in_transaction(xs, del_rm_txn, &d))
		return 1;
	printf("link %u (frontend) <-> %u (backend) removed\n", d.p.front,
	       d.p.back);
	return 0;
}

/* ---- list ---------------------------------------------------------- */

static int cmd_list(struct xs_handle *xs)
{
	unsigned int nd, nf, nv, i, j, k;
	char **doms, **fronts, **devs;
	char path[256], state_path[300];

	doms = xs_directory(xs, XBT_NULL, "/local/domain", &nd);
	if (!doms) {
		err("cannot list /local/domain: %s", strerror(errno));
		return 1;
	}
	for (i = 0; i < nd; i++) {
		snprintf(path, sizeof(path), "/local/domain/%s/backend/gntsock",
			 doms[i]);
		fronts = xs_directory(xs, XBT_NULL, path, &nf);
		if (!fronts)
			continue;
		for (j = 0; j < nf; j++) {
			snprintf(path, sizeof(path),
				 "/local/domain/%s/backend/gntsock/%s",
				 doms[i], fronts[j]);
			devs = xs_directory(xs, XBT_NULL, path, &nv);
			if (!devs)
				continue;
			for (k = 0; k < nv; k++) {
				char *fe, *fs, *bs;

				snprintf(state_path, sizeof(state_path),
					 "%s/%s/frontend", path, devs[k]);
				fe = xs_get(xs, XBT_NULL, state_path);
				snprintf(state_path, sizeof(state_path),
					 "%s/%s/state", path, devs[k]);
				bs = xs_get(xs, XBT_NULL, state_path);
				fs = NULL;
				if (fe) {
					snprintf(state_path,
						 sizeof(state_path),
						 "%s/state", fe);
					fs = xs_get(xs, XBT_NULL, state_path);
				}
				printf("%s %s %s %s\n", fronts[j], doms[i],
				       fs ? fs : "-", bs ? bs : "-");
				free(fe);
				free(fs);
				free(bs);
			}
			free(devs);
		}
		free(fronts);
	}
	free(doms);
	return 0;
}

/* ---- main ---------------------------------------------------------- */

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ring-order",	required_argument, NULL, 'r' },
		{ "force",	no_argument,	   NULL, 'f' },
		{ "timeout",	required_argument, NULL, 't' },
		{ "help",	no_argument,	   NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ring_order = -1, timeout_s = DEFAULT_DEL_TIMEOUT, opt, ret;
	bool force = false, ring_set = false, del_opts = false;
	unsigned int a = 0, b = 0;
	struct xs_handle *xs;
	const char *cmd;
	char *end;
	long v;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || !*optarg || v < 0 ||
			    v > MAX_RING_ORDER) {
				err("--ring-order: want 0..%d, got '%s'",
				    MAX_RING_ORDER, optarg);
				return 2;
			}
			ring_order = (int)v;
			ring_set = true;
			break;
		case 'f':
			force = true;
			del_opts = true;
			break;
		case 't':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || *end || !*optarg || v < 0 || v > 3600) {
				err("--timeout: want 0..3600 seconds, got '%s'",
				    optarg);
				return 2;
			}
			timeout_s = (int)v;
			del_opts = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	if (!strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "list")) {
		if (optind != argc || ring_set || del_opts) {
			err("list takes no arguments");
			return 2;
		}
	} else if (!strcmp(cmd, "add") || !strcmp(cmd, "del")) {
		if (argc - optind != 2) {
			err("%s needs two domain ids", cmd);
			usage(stderr);
			return 2;
		}
		if (parse_domid(argv[optind], &a) ||
		    parse_domid(argv[optind + 1], &b)) {
			err("bad domain id '%s': want 0..%u",
			    parse_domid(argv[optind], &a) ? argv[optind] :
			    argv[optind + 1], DOMID_FIRST_RESERVED - 1);
			return 2;
		}
		if (a == b) {
			err("cannot link domain %u to itself", a);
			return 2;
		}
		if (!strcmp(cmd, "add") && del_opts) {
			err("--force and --timeout are for del");
			return 2;
		}
		if (!strcmp(cmd, "del") && ring_set) {
			err("--ring-order is for add");
			return 2;
		}
	} else {
		err("unknown command '%s'", cmd);
		usage(stderr);
		return 2;
	}

	xs = xs_open(0);
	if (!xs) {
		err("cannot connect to xenstore: %s (run in dom0, with xenstored running)",
		    strerror(errno));
		return 1;
	}
	if (!strcmp(cmd, "list"))
		ret = cmd_list(xs);
	else if (!strcmp(cmd, "add"))
		ret = cmd_add(xs, a, b, ring_order);
	else
		ret = cmd_del(xs, a, b, force, timeout_s);
	xs_close(xs);
	return ret;
}
