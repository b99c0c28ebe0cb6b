// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock grants: what the grant layer's files share, and nothing else:
 * gntsock_grant_lock, the limits (net.gntsock.*, registered by sysctl.c),
 * the counters (/proc/net/gntsock_grants, procfs.c) and the accounting of
 * each peer domain. A leaf: it calls no other file of the module.
 * Units, defaults and ranges: Documentation/grants.rst.
 */
#include <linux/mutex.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/xarray.h>

#include "gntsock.h"
#include "grant.h"

/* Protects every grant record, both directions, and the per-socket lists. */
DEFINE_MUTEX(gntsock_grant_lock);

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

/**
 * gntsock_peer_acct_show() - one line per peer, for /proc/net/gntsock_grants
 * @m: the file
 */
void gntsock_peer_acct_show(struct seq_file *m)
{
	struct gntsock_peer_acct *pa;
	unsigned long peer;

	mutex_lock(&gntsock_grant_lock);
	xa_for_each(&gntsock_peers, peer, pa)
		seq_printf(m, "peer %lu out_grants %u out_pages %u in_grants %u deferred_pages %u tombs %u\n",
			   peer, pa->out_grants, pa->out_pages, pa->in_grants,
			   pa->deferred_pages, pa->ntombs);
	mutex_unlock(&gntsock_grant_lock);
}

/**
 * gntsock_peer_acct_exit() - free every peer's accounting, at unload
 */
void gntsock_peer_acct_exit(void)
{
	struct gntsock_peer_acct *pa;
	unsigned long peer;

	xa_for_each(&gntsock_peers, peer, pa)
		kfree(pa);
	xa_destroy(&gntsock_peers);
}
