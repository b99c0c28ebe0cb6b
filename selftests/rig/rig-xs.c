// SPDX-License-Identifier: GPL-2.0
/*
 * rig-xs: a tiny static xenstore client for the gntsock VM rig (busybox has none).
 *
 *   rig-xs read PATH                      print the value; exit 1 if PATH does not exist
 *   rig-xs write PATH VALUE
 *   rig-xs rm PATH
 *   rig-xs wait PATH TIMEOUT [NOT_VALUE]  wait until PATH exists (and its value differs from
 *                                         NOT_VALUE), print the value; exit 2 on timeout
 *   rig-xs domid                          print this domain's id
 *
 * Relative paths are relative to /local/domain/<own domid>. Works over /dev/xen/xenbus in a
 * domU and over xenstored's socket (or the device) in dom0.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

static struct xs_handle *xs;

static int usage(void)
{
	fprintf(stderr, "usage: rig-xs read PATH | write PATH VALUE | rm PATH |\n"
			"              wait PATH TIMEOUT [NOT_VALUE] | domid\n");
	return 64;
}

static char *xread(const char *path)
{
	unsigned int len;

	return xs_read(xs, XBT_NULL, path, &len);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Poll rather than watch: a read every 100 ms costs nothing next to a TCG guest, and keeps the
 * tool single-threaded (no watch thread, no watch pipe).
 */
static int do_wait(const char *path, double timeout, const char *not_value)
{
	double end = now() + timeout;

	for (;;) {
		char *v = xread(path);

		if (v && (!not_value || strcmp(v, not_value))) {
			printf("%s\n", v);
			free(v);
			return 0;
		}
		free(v);
		if (now() >= end)
			return 2;
		usleep(100000);
	}
}

int main(int argc, char **argv)
{
	char *v;

	if (argc < 2)
		return usage();
	xs = xs_open(0);
	if (!xs) {
		perror("rig-xs: xs_open");
		return 1;
	}
	if (!strcmp(argv[1], "read") && argc == 3) {
		v = xread(argv[2]);
		if (!v)
			return 1;
		printf("%s\n", v);
		free(v);
		return 0;
	}
	if (!strcmp(argv[1], "write") && argc == 4) {
		if (!xs_write(xs, XBT_NULL, argv[2], argv[3], strlen(argv[3]))) {
			fprintf(stderr, "rig-xs: write %s: %s\n", argv[2], strerror(errno));
			return 1;
		}
		return 0;
	}
	if (!strcmp(argv[1], "rm") && argc == 3) {
		if (!xs_rm(xs, XBT_NULL, argv[2]) && errno != ENOENT) {
			fprintf(stderr, "rig-xs: rm %s: %s\n", argv[2], strerror(errno));
			return 1;
		}
		return 0;
	}
	if (!strcmp(argv[1], "wait") && (argc == 4 || argc == 5))
		return do_wait(argv[2], atof(argv[3]), argc == 5 ? argv[4] : NULL);
	if (!strcmp(argv[1], "domid") && argc == 2) {
		v = xread("domid");
		if (!v)
			return 1;
		printf("%s\n", v);
		free(v);
		return 0;
	}
	return usage();
}
