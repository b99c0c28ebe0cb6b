// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock grants: what the grant layer's files share, and nothing else:
 * gntsock_grant_lock and the work it defers (gntsock_grant_dispose()), the
 * limits (net.gntsock.*, registered by sysctl.c), the counters
 * (/proc/net/gntsock_grants, procfs.c) and the accounting of each peer
 * domain. A leaf: it calls no other file of the module.
 * Units, defaults and ranges: Documentation/grants.rst.
 *
 * gntsock_grant_lock is a spinlock. Every socket's grants share it, and a
 * link's receive work takes it for each grant message: a holder that could
 * sleep, fault or be preempted (a task whose cgroup is out of CPU time
 * stays off the CPU up to its next period) would hold up every link and
 * every other user of grants meanwhile. So nothing under it allocates
 * except atomically, sleeps or takes a sleeping lock: records are made
 * before it is taken, mmap() works on a claimed record without it
 * (GIN_MAPPING), and what must sleep to end a record (unpinning pages,
 * returning frames, vfree) is handed to the dispose work.
 */
#include <linux/llist.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include "gntsock.h"
#include "grant.h"

/* Protects every grant record, both directions, and the per-socket lists. */
DEFINE_SPINLOCK(gntsock_grant_lock);

/* What gntsock_grant_dispose() was given, newest first. */
static LLIST_HEAD(gntsock_dispose_list);

/* Run what was disposed of, oldest first. */
static void gntsock_dispose_fn(struct work_struct *work)
{
	struct llist_node *n = llist_del_all(&gntsock_dispose_list);
	struct gntsock_grant_dispose *d, *tmp;

	llist_for_each_entry_safe(d, tmp, llist_reverse_order(n), node) {
		d->fn(d);
		cond_resched();
	}
}

static DECLARE_WORK(gntsock_dispose_work, gntsock_dispose_fn);

/**
 * gntsock_grant_dispose() - finish ending a record without the grant lock
 * @d: the record's entry, not on the list
 * @fn: called with @d from a work item, without any lock, after every
 *	entry disposed of before it (a record disposed of twice, its pages
 *	then itself, is freed after its pages are unpinned)
 *
 * For what must not happen under gntsock_grant_lock because it may sleep;
 * may be called with it held.
 */
void gntsock_grant_dispose(struct gntsock_grant_dispose *d,
			   void (*fn)(struct gntsock_grant_dispose *d))
{
	d->fn = fn;
	if (llist_add(&d->node, &gntsock_dispose_list))
		schedule_work(&gntsock_dispose_work);
}

/**
 * gntsock_grant_dispose_flush() - wait until everything disposed of is done
 *
 * Module unload; without gntsock_grant_lock.
 */
void gntsock_grant_dispose_flush(void)
{
	flush_work(&gntsock_dispose_work);
}

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
 * gntsock_peer_acct_make() - make the accounting of a peer domain
 * @peer: its domain id
 *
 * Before a grant to or from @peer is counted: without gntsock_grant_lock,
 * as it allocates. Entries are freed only at module unload.
 *
 * Return: 0, or -ENOMEM (gntsock_peer_acct() then finds none).
 */
int gntsock_peer_acct_make(domid_t peer)
{
	struct gntsock_peer_acct *pa;
	int err;

	if (xa_load(&gntsock_peers, peer))
		return 0;
	pa = kzalloc(sizeof(*pa), GFP_KERNEL);
	if (!pa)
		return -ENOMEM;
	INIT_LIST_HEAD(&pa->tombs);
	err = xa_insert(&gntsock_peers, peer, pa, GFP_KERNEL);
	if (err)
		kfree(pa);
	/* -EBUSY: another grant made it meanwhile. */
	return err == -EBUSY ? 0 : err;
}

/**
 * gntsock_peer_acct() - the accounting of one peer domain
 * @peer: its domain id
 *
 * gntsock_grant_lock held. Return: the entry gntsock_peer_acct_make()
 * made, or NULL if it had no memory.
 */
struct gntsock_peer_acct *gntsock_peer_acct(domid_t peer)
{
	lockdep_assert_held(&gntsock_grant_lock);
	return xa_load(&gntsock_peers, peer);
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

	spin_lock(&gntsock_grant_lock);
	xa_for_each(&gntsock_peers, peer, pa)
		seq_printf(m, "peer %lu out_grants %u out_pages %u in_grants %u deferred_pages %u tombs %u\n",
			   peer, pa->out_grants, pa->out_pages, pa->in_grants,
			   pa->deferred_pages, pa->ntombs);
	spin_unlock(&gntsock_grant_lock);
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
