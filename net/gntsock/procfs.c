// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/net/gntsock (sockets), /proc/net/gntsock_stat (counters) and
 * /proc/net/gntsock_links (links): what an operator, and the tests, read to
 * see connections, links and resources in use.
 */
#include <linux/moduleparam.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/timekeeping.h>
#include <net/net_namespace.h>

#include "gntsock.h"

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

static int gntsock_stat_show(struct seq_file *m, void *v)
{
	struct gntsock_stats *s = &gntsock_stats;
	int i;

	seq_printf(m, "links %d\n", atomic_read(&s->links));
	seq_printf(m, "links_connected %d\n", atomic_read(&s->links_connected));
	seq_printf(m, "sockets %d\n", atomic_read(&s->sockets));
	seq_printf(m, "ring_grants %d\n", atomic_read(&s->ring_grants));
	seq_printf(m, "ring_maps %d\n", atomic_read(&s->ring_maps));
	seq_printf(m, "ring_refs_stale %d\n",
		   atomic_read(&s->ring_refs_stale));
	seq_printf(m, "ring_refs_kept %lld\n",
		   atomic64_read(&s->ring_refs_kept));
	seq_printf(m, "resets %lld\n", atomic64_read(&s->resets));
	seq_printf(m, "link_ups %lld\n", atomic64_read(&s->link_ups));
	seq_printf(m, "link_log_suppressed %lld\n",
		   atomic64_read(&s->link_log_suppressed));
	seq_printf(m, "violations %lld\n", atomic64_read(&s->violations));
	seq_printf(m, "ctl_dropped %lld\n", atomic64_read(&s->ctl_dropped));
	seq_printf(m, "rx_buf_msgs %lld\n", atomic64_read(&s->rx_buf_msgs));
	seq_printf(m, "rx_buf_bytes %lld\n", atomic64_read(&s->rx_buf_bytes));
	seq_printf(m, "rx_buf_vmalloc %lld\n",
		   atomic64_read(&s->rx_buf_vmalloc));
	seq_printf(m, "rx_buf_appended %lld\n",
		   atomic64_read(&s->rx_buf_appended));
	seq_printf(m, "rx_mem %lld\n", atomic64_read(&s->rx_mem));
	seq_printf(m, "loop_full %lld\n", atomic64_read(&s->loop_full));
	seq_printf(m, "rx_page_allocs %lld\n",
		   atomic64_read(&s->rx_page_allocs));
	seq_printf(m, "rx_direct_msgs %lld\n",
		   atomic64_read(&s->rx_direct_msgs));
	seq_printf(m, "rx_direct_bytes %lld\n",
		   atomic64_read(&s->rx_direct_bytes));
	seq_printf(m, "rx_posts %lld\n", atomic64_read(&s->rx_posts));
	seq_printf(m, "rx_post_pages %lld\n", atomic64_read(&s->rx_post_pages));
	seq_printf(m, "rx_user_bytes %lld\n", atomic64_read(&s->rx_user_bytes));
	seq_printf(m, "rx_user_ns %lld\n", atomic64_read(&s->rx_user_ns));
	seq_printf(m, "rx_ring_msgs %lld\n", atomic64_read(&s->rx_ring_msgs));
	seq_printf(m, "rx_ring_bytes %lld\n", atomic64_read(&s->rx_ring_bytes));
	seq_printf(m, "rx_ring_faults %lld\n",
		   atomic64_read(&s->rx_ring_faults));
	seq_printf(m, "rx_deferred %lld\n", atomic64_read(&s->rx_deferred));
	seq_printf(m, "rx_fallbacks %lld\n", atomic64_read(&s->rx_fallbacks));
	seq_printf(m, "rx_work_runs %lld\n", atomic64_read(&s->rx_work_runs));
	seq_printf(m, "rx_work_ns %lld\n", atomic64_read(&s->rx_work_ns));
	seq_printf(m, "tx_ring_waits %lld\n", atomic64_read(&s->tx_ring_waits));
	seq_printf(m, "tx_ring_wakeups %lld\n",
		   atomic64_read(&s->tx_ring_wakeups));
	seq_printf(m, "tx_ring_futile %lld\n",
		   atomic64_read(&s->tx_ring_futile));
	seq_printf(m, "tx_ring_blocked %lld\n",
		   atomic64_read(&s->tx_ring_blocked));
	seq_printf(m, "tx_ring_rechecks %lld\n",
		   atomic64_read(&s->tx_ring_rechecks));
	seq_printf(m, "tx_faults_retried %lld\n",
		   atomic64_read(&s->tx_faults_retried));
	seq_printf(m, "rx_faults_retried %lld\n",
		   atomic64_read(&s->rx_faults_retried));
	seq_printf(m, "tx_grant_resets %lld\n",
		   atomic64_read(&s->tx_grant_resets));
	seq_printf(m, "rx_wakeups %lld\n", atomic64_read(&s->rx_wakeups));
	seq_printf(m, "buf_grown %lld\n", atomic64_read(&s->buf_grown));
	seq_printf(m, "buf_grow_refused %lld\n",
		   atomic64_read(&s->buf_grow_refused));
	for (i = GNTSOCK_V_NONE + 1; i < GNTSOCK_V_MAX; i++)
		seq_printf(m, "violation_%s %lld\n", gntsock_violation_names[i],
			   atomic64_read(&s->violation[i]));
	return 0;
}

static int gntsock_links_seq_show(struct seq_file *m, void *v)
{
	gntsock_links_show(m);
	return 0;
}

static int gntsock_sockets_seq_show(struct seq_file *m, void *v)
{
	gntsock_sockets_show(m);
	return 0;
}

int gntsock_proc_init(void)
{
	if (!proc_create_single("gntsock", 0444, init_net.proc_net,
				gntsock_sockets_seq_show))
		return -ENOMEM;
	if (!proc_create_single("gntsock_stat", 0444, init_net.proc_net,
				gntsock_stat_show)) {
		remove_proc_entry("gntsock", init_net.proc_net);
		return -ENOMEM;
	}
	if (!proc_create_single("gntsock_links", 0444, init_net.proc_net,
				gntsock_links_seq_show)) {
		remove_proc_entry("gntsock_stat", init_net.proc_net);
		remove_proc_entry("gntsock", init_net.proc_net);
		return -ENOMEM;
	}
	return 0;
}

void gntsock_proc_exit(void)
{
	remove_proc_entry("gntsock_links", init_net.proc_net);
	remove_proc_entry("gntsock_stat", init_net.proc_net);
	remove_proc_entry("gntsock", init_net.proc_net);
}
