// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock: what every layer shares and nothing above it owns: the module's
 * work queue, the global counters (/proc/net/gntsock_stat shows them,
 * procfs.c) and the clock of the time counters. A leaf: it calls no other
 * file of the module, so every layer may use it without an import circle.
 */
#include <linux/moduleparam.h>
#include <linux/ktime.h>
#include <linux/workqueue.h>

#include "gntsock.h"

struct gntsock_stats gntsock_stats;
struct workqueue_struct *gntsock_wq;

/* Reading the clock is a trap to the hypervisor in a PV guest without an
 * invariant TSC (25-50 us each under emulation): the time counters cost
 * more than what they time, so they are kept only when asked for.
 */
bool gntsock_stat_times;
module_param_named(stat_times, gntsock_stat_times, bool, 0644);
MODULE_PARM_DESC(stat_times,
		 "count rx_work_ns and rx_user_ns in gntsock_stat (reads the clock on the receive path; default N)");

/**
 * gntsock_stat_clock() - the clock for a time counter, if they are kept
 *
 * Return: ktime_get_ns() with the stat_times parameter set, else 0.
 */
u64 gntsock_stat_clock(void)
{
	return READ_ONCE(gntsock_stat_times) ? ktime_get_ns() : 0;
}

/**
 * gntsock_common_init() - create the module's work queue
 *
 * Return: 0 or -ENOMEM.
 */
int gntsock_common_init(void)
{
	gntsock_wq = alloc_workqueue("gntsock", 0, 0);
	return gntsock_wq ? 0 : -ENOMEM;
}

/**
 * gntsock_common_exit() - destroy it, once nothing can queue work
 */
void gntsock_common_exit(void)
{
	destroy_workqueue(gntsock_wq);
}
