// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock grants: policy and limits (sysctl net.gntsock.*, and the socket
 * limit buffer_size_max), counters and per-peer accounting
 * (/proc/net/gntsock_grants).
 * Units, defaults and ranges: Documentation/grants.rst.
 */
#include <linux/sysctl.h>
#include <linux/xarray.h>
#include <linux/slab.h>
#include <linux/seq_file.h>
#include <linux/proc_fs.h>
#include <net/net_namespace.h>

#include "gntsock.h"
#include "grant.h"
#include "xen_revoke.h"

struct gntsock_grant_limits gntsock_grant_limits = {
	.require_cap = 1,
	.max_pages_msg = 256,
	.max_pages_sock = 4096,
	.max_pages_peer = 16384,
	.max_in_pages_sock = 4096,
	.revoke_timeout_ms = 5000,
	.reclaim_batch = 64,
	.reclaim_interval_ms = 1000,
	.quarantine_max_pages = 16384,
	.quarantine_max_pages_peer = 4096,
	.tombstones_max = 4096,
	.tombstones_max_peer = 1024,
};

struct gntsock_grant_stats gntsock_grant_stats;

static DEFINE_XARRAY(gntsock_peers);

/**
 * gntsock_peer_acct() - accounting of one peer domain, made on first use
 * @peer: its domain id
 *
 * gntsock_grant_lock held. Return: the entry, or NULL without memory.
 */
struct gntsock_peer_acct *gntsock_peer_acct(domid_t peer)
{
	struct gntsock_peer_acct *pa = xa_load(&gntsock_peers, peer);

	lockdep_assert_held(&gntsock_grant_lock);
	if (pa)
		return pa;
	pa = kzalloc(sizeof(*pa), GFP_KERNEL);
	if (!pa)
		return NULL;
	INIT_LIST_HEAD(&pa->tombs);
	if (xa_err(xa_store(&gntsock_peers, peer, pa, GFP_KERNEL))) {
		kfree(pa);
		return NULL;
	}
	return pa;
}

/**
 * gntsock_peer_acct_most_tombs() - the peer holding the most tombstones
 * @pref: returned if none holds more
 *
 * For the global tombstone budget: its excess is taken from whoever holds
 * most, so that peers that never answer do not push out the few tombstones
 * of a peer that does. Walks every peer; gntsock_grant_lock held.
 *
 * Return: @pref, or the peer with more tombstones than @pref.
 */
struct gntsock_peer_acct *gntsock_peer_acct_most_tombs(struct gntsock_peer_acct *pref)
{
	struct gntsock_peer_acct *pa, *most = pref;
	unsigned long peer;

	lockdep_assert_held(&gntsock_grant_lock);
	xa_for_each(&gntsock_peers, peer, pa)
		if (pa->ntombs > most->ntombs)
			most = pa;
	return most;
}

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
	{ }
};

static struct ctl_table_header *gntsock_sysctl_hdr;

static int gntsock_grants_show(struct seq_file *m, void *v)
{
	struct gntsock_grant_stats *s = &gntsock_grant_stats;
	struct gntsock_peer_acct *pa;
	unsigned long peer;

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
	mutex_lock(&gntsock_grant_lock);
	xa_for_each(&gntsock_peers, peer, pa)
		seq_printf(m, "peer %lu out_grants %u out_pages %u in_grants %u deferred_pages %u tombs %u\n",
			   peer, pa->out_grants, pa->out_pages, pa->in_grants,
			   pa->deferred_pages, pa->ntombs);
	mutex_unlock(&gntsock_grant_lock);
	return 0;
}

int gntsock_grant_sysctl_init(void)
{
	gntsock_sysctl_hdr = register_sysctl("net/gntsock", gntsock_sysctls);
	if (!gntsock_sysctl_hdr)
		return -ENOMEM;
	if (!proc_create_single("gntsock_grants", 0444, init_net.proc_net,
				gntsock_grants_show)) {
		unregister_sysctl_table(gntsock_sysctl_hdr);
		return -ENOMEM;
	}
	return 0;
}

void gntsock_grant_sysctl_exit(void)
{
	struct gntsock_peer_acct *pa;
	unsigned long peer;

	remove_proc_entry("gntsock_grants", init_net.proc_net);
	unregister_sysctl_table(gntsock_sysctl_hdr);
	xa_for_each(&gntsock_peers, peer, pa)
		kfree(pa);
	xa_destroy(&gntsock_peers);
}
