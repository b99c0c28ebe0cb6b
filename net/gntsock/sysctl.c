// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock sysctls: net.gntsock.*, the grant layer's limits
 * (grant_acct.c holds them), the socket limit buffer_size_max and the
 * sockets' default busy_poll (sock.c). Only the tables: nothing
 * below calls in here. Units, defaults and ranges:
 * Documentation/grants.rst and Documentation/gntsock.rst.
 */
#include <linux/sysctl.h>

#include "gntsock.h"
#include "grant.h"

static unsigned int gntsock_zero;
static unsigned int gntsock_one = 1;
static unsigned int gntsock_max_msg = GNTSOCK_GRANT_MAX_PAGES;
static unsigned int gntsock_max_pages = 1U << 20;	/* 4 GiB */
static unsigned int gntsock_min_ms = 10;
static unsigned int gntsock_max_ms = 600000;
static unsigned int gntsock_max_batch = 65536;
static unsigned int gntsock_max_tombs = 65536;
static unsigned int gntsock_buf_min = GNTSOCK_BUFFER_SIZE_MIN;
static unsigned int gntsock_buf_max = GNTSOCK_BUFFER_SIZE_MAX;
static unsigned int gntsock_polls_max = GNTSOCK_BUSY_POLL_MAX;

#define GNTSOCK_SYSCTL(field, lo, hi) {					\
	.procname = #field,						\
	.data = &gntsock_grant_limits.field,				\
	.maxlen = sizeof(unsigned int),					\
	.mode = 0644,							\
	.proc_handler = proc_douintvec_minmax,				\
	.extra1 = (void *)(lo),						\
	.extra2 = (void *)(hi),						\
}

static struct ctl_table gntsock_sysctls[] = {
	GNTSOCK_SYSCTL(require_cap, &gntsock_zero, &gntsock_one),
	GNTSOCK_SYSCTL(max_pages_msg, &gntsock_one, &gntsock_max_msg),
	GNTSOCK_SYSCTL(max_pages_sock, &gntsock_one, &gntsock_max_pages),
	GNTSOCK_SYSCTL(max_pages_peer, &gntsock_one, &gntsock_max_pages),
	GNTSOCK_SYSCTL(max_in_pages_sock, &gntsock_one, &gntsock_max_pages),
	GNTSOCK_SYSCTL(revoke_timeout_ms, &gntsock_min_ms, &gntsock_max_ms),
	GNTSOCK_SYSCTL(reclaim_batch, &gntsock_one, &gntsock_max_batch),
	GNTSOCK_SYSCTL(reclaim_interval_ms, &gntsock_min_ms, &gntsock_max_ms),
	GNTSOCK_SYSCTL(quarantine_max_pages, &gntsock_one, &gntsock_max_pages),
	GNTSOCK_SYSCTL(quarantine_max_pages_peer, &gntsock_one,
		       &gntsock_max_pages),
	GNTSOCK_SYSCTL(tombstones_max, &gntsock_one, &gntsock_max_tombs),
	GNTSOCK_SYSCTL(tombstones_max_peer, &gntsock_one, &gntsock_max_tombs),
	{
		.procname = "buffer_size_max",
		.data = &gntsock_buffer_size_max,
		.maxlen = sizeof(unsigned int),
		.mode = 0644,
		.proc_handler = proc_douintvec_minmax,
		.extra1 = &gntsock_buf_min,
		.extra2 = &gntsock_buf_max,
	},
	{
		.procname = "busy_poll",
		.data = &gntsock_busy_poll,
		.maxlen = sizeof(unsigned int),
		.mode = 0644,
		.proc_handler = proc_douintvec_minmax,
		.extra1 = &gntsock_zero,
		.extra2 = &gntsock_polls_max,
	},
	{ }
};

static struct ctl_table_header *gntsock_sysctl_hdr;

/**
 * gntsock_sysctl_init() - register net.gntsock.*
 *
 * Return: 0 or -ENOMEM.
 */
int gntsock_sysctl_init(void)
{
	gntsock_sysctl_hdr = register_sysctl("net/gntsock", gntsock_sysctls);
	return gntsock_sysctl_hdr ? 0 : -ENOMEM;
}

/**
 * gntsock_sysctl_exit() - unregister them
 */
void gntsock_sysctl_exit(void)
{
	unregister_sysctl_table(gntsock_sysctl_hdr);
}
