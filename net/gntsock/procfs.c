// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/net/gntsock (sockets), /proc/net/gntsock_stat (counters),
 * /proc/net/gntsock_links (links) and /proc/net/gntsock_grants (the grant
 * layer's counters and per-peer accounting): what an operator, and the
 * tests, read to see connections, links and resources in use. The one
 * procfs of the module: it calls down into every layer, none calls it.
 */
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <net/net_namespace.h>

#include "gntsock.h"
#include "grant.h"
#include "xen_revoke.h"

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
	seq_printf(m, "rx_user_bytes %lld\n", atomic64_read(&s->rx_user_bytes));
	seq_printf(m, "rx_user_ns %lld\n", atomic64_read(&s->rx_user_ns));
	seq_printf(m, "rx_budget_runs %lld\n",
		   atomic64_read(&s->rx_budget_runs));
	seq_printf(m, "rx_polls %lld\n", atomic64_read(&s->rx_polls));
	seq_printf(m, "rx_poll_looks %lld\n", atomic64_read(&s->rx_poll_looks));
	seq_printf(m, "rx_poll_found %lld\n", atomic64_read(&s->rx_poll_found));
	seq_printf(m, "rx_stale %lld\n", atomic64_read(&s->rx_stale));
	seq_printf(m, "rx_deferred %lld\n", atomic64_read(&s->rx_deferred));
	seq_printf(m, "rx_defer_refused %lld\n",
		   atomic64_read(&s->rx_defer_refused));
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
	seq_printf(m, "credit_requests %lld\n",
		   atomic64_read(&s->credit_requests));
	for (i = GNTSOCK_V_NONE + 1; i < GNTSOCK_V_MAX; i++)
		seq_printf(m, "violation_%s %lld\n", gntsock_violation_names[i],
			   atomic64_read(&s->violation[i]));
	return 0;
}

static int gntsock_grants_show(struct seq_file *m, void *v)
{
	struct gntsock_grant_stats *s = &gntsock_grant_stats;

	seq_printf(m, "offered %lld\n", atomic64_read(&s->offered));
	seq_printf(m, "offered_plain %lld\n", atomic64_read(&s->offered_plain));
	seq_printf(m, "mapped %lld\n", atomic64_read(&s->mapped));
	seq_printf(m, "mapped_plain %lld\n", atomic64_read(&s->mapped_plain));
	seq_printf(m, "unmapped %lld\n", atomic64_read(&s->unmapped));
	seq_printf(m, "released %lld\n", atomic64_read(&s->released));
	seq_printf(m, "revoked %lld\n", atomic64_read(&s->revoked));
	seq_printf(m, "forced %lld\n", atomic64_read(&s->forced));
	seq_printf(m, "quarantined %lld\n", atomic64_read(&s->quarantined));
	seq_printf(m, "reclaimed %lld\n", atomic64_read(&s->reclaimed));
	seq_printf(m, "refused %lld\n", atomic64_read(&s->refused));
	seq_printf(m, "violations %lld\n", atomic64_read(&s->violations));
	seq_printf(m, "events_lost %lld\n", atomic64_read(&s->events_lost));
	seq_printf(m, "quarantine_full %lld\n",
		   atomic64_read(&s->quarantine_full));
	seq_printf(m, "tombs_dropped %lld\n", atomic64_read(&s->tombs_dropped));
	seq_printf(m, "killed_mapping %lld\n",
		   atomic64_read(&s->killed_mapping));
	seq_printf(m, "out_grants %d\n", atomic_read(&s->out_grants));
	seq_printf(m, "out_pages %d\n", atomic_read(&s->out_pages));
	seq_printf(m, "in_grants %d\n", atomic_read(&s->in_grants));
	seq_printf(m, "in_mapped %d\n", atomic_read(&s->in_mapped));
	seq_printf(m, "in_held %d\n", atomic_read(&s->in_held));
	seq_printf(m, "in_held_pages %d\n", atomic_read(&s->in_held_pages));
	seq_printf(m, "in_held_total %lld\n",
		   atomic64_read(&s->in_held_total));
	seq_printf(m, "deferred %d\n", atomic_read(&s->deferred));
	seq_printf(m, "deferred_pages %d\n", atomic_read(&s->deferred_pages));
	seq_printf(m, "xen_revoke %d\n", gntsock_xen_revoke_supported());
	seq_printf(m, "xen_map_revocable %d\n", gntsock_grant_map_revocable());
	gntsock_peer_acct_show(m);
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
	if (!proc_create_single("gntsock_grants", 0444, init_net.proc_net,
				gntsock_grants_show)) {
		remove_proc_entry("gntsock_links", init_net.proc_net);
		remove_proc_entry("gntsock_stat", init_net.proc_net);
		remove_proc_entry("gntsock", init_net.proc_net);
		return -ENOMEM;
	}
	return 0;
}

void gntsock_proc_exit(void)
{
	remove_proc_entry("gntsock_grants", init_net.proc_net);
	remove_proc_entry("gntsock_links", init_net.proc_net);
	remove_proc_entry("gntsock_stat", init_net.proc_net);
	remove_proc_entry("gntsock", init_net.proc_net);
}
