// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock grants, sending side: how a grant we made ends. Its references
 * are ended (gntsock_gout_end_access()) and its record finished
 * (gntsock_gout_finish()): the event reported on the sender's error queue
 * (grant_events.c), the pages unpinned, the accounting dropped. A grant
 * the peer does not give back on its own is revoked (GRANT_REVOKE, then
 * revoke_timeout_ms for the answer); one it still maps is quarantined on
 * the deferred list, which the reclaim work retries every
 * reclaim_interval_ms, reclaim_batch grants a pass. Whatever starts the
 * end (the peer's GRANT_RELEASE, a revoke, close, the link's end, unload:
 * grant_send.c), it goes this one way, kept in one file.
 *
 * A revocable-only grant (grant_pin.c) is ended through the hypervisor
 * (GNTTABOP_revoke with GNTTAB_REVOKE_END_ACCESS,
 * gntsock_xen_revoke_refs() in xen_revoke.c): Xen revokes
 * whatever mapping the peer still holds, ends access and drops the mark,
 * atomically, before the reference is freed. Other grants are plain and
 * ended with gnttab_try_end_foreign_access(); a plain grant the peer does
 * not give back is quarantined. A forced grant, and a quarantined one
 * reclaimed before the peer answered the revoke, leaves a small tombstone
 * (no pages, no references) until the peer's late GRANT_RELEASE or the
 * link's end, so that the late answer is accepted quietly. Both are
 * bounded: the deferred list by the quarantine budgets (new grants are
 * refused beyond them, grant_send.c), the tombstones by theirs (the oldest
 * go).
 */
#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/workqueue.h>
#include <linux/slab.h>
#include <linux/hashtable.h>
#include <xen/grant_table.h>

#include "gntsock.h"
#include "grant.h"
#include "grant_out.h"
#include "xen_revoke.h"

static LIST_HEAD(gntsock_reclaim_list);

static void gntsock_reclaim_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(gntsock_reclaim_work, gntsock_reclaim_fn);
static bool gntsock_reclaim_stopped;

/* Retry the deferred list after reclaim_interval_ms (unless unloading). */
static void gntsock_reclaim_kick(void)
{
	unsigned int ms = READ_ONCE(gntsock_grant_limits.reclaim_interval_ms);

	if (!READ_ONCE(gntsock_reclaim_stopped))
		queue_delayed_work(gntsock_wq, &gntsock_reclaim_work,
				   msecs_to_jiffies(ms));
}

/* Tombstones of every peer (each on its peer's list, gntsock_peer_acct). */
static unsigned int gntsock_tombs;

/* Unpin what gntsock_gout_drop_pages() took off @g. Unpinning a
 * writable page takes its page lock, which may sleep: not under
 * gntsock_grant_lock.
 */
static void gntsock_gout_unpin_fn(struct gntsock_grant_dispose *d)
{
	struct gntsock_gout *g = container_of(d, struct gntsock_gout,
					      unpin_d);

	unpin_user_pages_dirty_lock(g->dropped_pages, g->npages, g->writable);
	kvfree(g->dropped_pages);
}

/* Unpin @g's pages once gntsock_grant_lock is dropped (gntsock_grant_lock
 * held; @g has them).
 */
static void gntsock_gout_drop_pages(struct gntsock_gout *g)
{
	g->dropped_pages = g->pages;
	g->pages = NULL;
	gntsock_grant_dispose(&g->unpin_d, gntsock_gout_unpin_fn);
}

/* Unpin @g's pages, if it still has them, and free it: as
 * gntsock_gout_unpin_fn(), nothing else holds @g by now.
 */
static void gntsock_gout_free_fn(struct gntsock_grant_dispose *d)
{
	struct gntsock_gout *g = container_of(d, struct gntsock_gout, free_d);

	if (g->pages) {
		unpin_user_pages_dirty_lock(g->pages, g->npages, g->writable);
		kvfree(g->pages);
	}
	gntsock_link_put(g->link);
	kvfree(g);
}

/* Free @g, with its pages, once gntsock_grant_lock is dropped. */
static void gntsock_gout_free(struct gntsock_gout *g)
{
	gntsock_grant_dispose(&g->free_d, gntsock_gout_free_fn);
}

/**
 * gntsock_gout_end_access() - end every reference of @g Xen lets us end
 * @g: the grant, gntsock_grant_lock held
 * @swapped: incremented by the peer's mappings the hypervisor revoked
 *
 * A revocable-only grant is ended through the hypervisor
 * (gntsock_xen_revoke_refs()): a mapping the peer still holds is
 * revoked, and Xen ends access and drops the mark before the reference is
 * freed, so that the mark is never removed while the peer maps the page
 * and never left on a freed reference. A plain reference the peer still
 * maps stays; the others are ended and freed.
 *
 * Return: true if none is left.
 */
bool gntsock_gout_end_access(struct gntsock_gout *g, u32 *swapped)
{
	bool all = true;
	u32 i;

	lockdep_assert_held(&gntsock_grant_lock);
	if (g->revocable)
		return !gntsock_xen_revoke_refs(g->refs, g->npages, swapped);
	for (i = 0; i < g->npages; i++) {
		if (!g->refs[i])
			continue;
		/* Ends and frees the reference, quietly if still mapped. */
		if (gnttab_try_end_foreign_access(g->refs[i]))
			g->refs[i] = 0;
		else
			all = false;
	}
	return all;
}

/**
 * gntsock_acct() - count or uncount a grant in flight
 * @peer: the domain it is granted to
 * @npages: its pages
 * @add: true to count it, false to uncount it
 *
 * Count (@add) or uncount one grant of @npages pages to @peer in flight,
 * in all and in @peer's accounting. gntsock_grant_lock held.
 */
void gntsock_acct(domid_t peer, u32 npages, bool add)
{
	struct gntsock_peer_acct *pa = gntsock_peer_acct(peer);

	lockdep_assert_held(&gntsock_grant_lock);
	if (add) {
		if (pa) {
			pa->out_pages += npages;
			pa->out_grants++;
		}
		atomic_inc(&gntsock_grant_stats.out_grants);
		atomic_add(npages, &gntsock_grant_stats.out_pages);
		return;
	}
	if (pa) {
		pa->out_pages -= npages;
		pa->out_grants--;
	}
	atomic_dec(&gntsock_grant_stats.out_grants);
	atomic_sub(npages, &gntsock_grant_stats.out_pages);
}

static void gntsock_gout_unaccount(struct gntsock_gout *g)
{
	gntsock_acct(g->link->peer, g->npages, false);
}

/**
 * gntsock_gout_detach() - take @g off its owning socket
 * @g: the grant; gntsock_grant_lock held
 *
 * Its pages no longer count against the socket, and no event goes to the
 * socket from then on. Nothing to do once the socket is gone.
 */
void gntsock_gout_detach(struct gntsock_gout *g)
{
	if (g->owner) {
		list_del_init(&g->sock_node);
		g->owner->out_pages -= g->npages;
		g->owner = NULL;
		g->sk = NULL;
	}
}

/* Count (@add) or uncount @g on the deferred list, in all and against its
 * peer's quarantine budget. gntsock_grant_lock held.
 */
static void gntsock_gout_defer_acct(struct gntsock_gout *g, bool add)
{
	lockdep_assert_held(&gntsock_grant_lock);
	if (add) {
		g->pa->deferred_pages += g->npages;
		atomic_inc(&gntsock_grant_stats.deferred);
		atomic_add(g->npages, &gntsock_grant_stats.deferred_pages);
		return;
	}
	g->pa->deferred_pages -= g->npages;
	atomic_dec(&gntsock_grant_stats.deferred);
	atomic_sub(g->npages, &gntsock_grant_stats.deferred_pages);
}

/**
 * gntsock_gout_finish() - every reference ended: report, unpin and free
 * @g: the grant, gntsock_grant_lock held
 * @event: GNTSOCK_EV_* for the owner, 0 for none
 */
void gntsock_gout_finish(struct gntsock_gout *g, u32 event)
{
	lockdep_assert_held(&gntsock_grant_lock);
	if (g->state == GOUT_QUARANTINED)
		gntsock_gout_defer_acct(g, false);
	if (event && g->sk)
		gntsock_grant_event(g->sk, g->owner, event, g->id, g->cookie, g->npages);
	if (g->state == GOUT_REVOKING || g->state == GOUT_QUARANTINED)
		list_del(&g->reclaim_node);
	hash_del(&g->hnode);
	gntsock_gout_detach(g);
	gntsock_gout_unaccount(g);
	gntsock_gout_free(g);
}

/**
 * gntsock_gout_quarantine() - the peer still maps @g: keep it pinned
 * @g: the grant, gntsock_grant_lock held
 *
 * It goes on the deferred list, whose reclaim work retries ending it.
 */
void gntsock_gout_quarantine(struct gntsock_gout *g)
{
	lockdep_assert_held(&gntsock_grant_lock);
	if (g->state == GOUT_QUARANTINED)
		return;
	if (g->state != GOUT_REVOKING)
		list_add_tail(&g->reclaim_node, &gntsock_reclaim_list);
	g->state = GOUT_QUARANTINED;
	atomic64_inc(&gntsock_grant_stats.quarantined);
	gntsock_gout_defer_acct(g, true);
	/* Counted first: whoever reads the event sees the counters agree. */
	if (g->sk)
		gntsock_grant_event(g->sk, g->owner, GNTSOCK_EV_QUARANTINED, g->id,
				    g->cookie, g->npages);
	gntsock_gout_detach(g);
	pr_warn_ratelimited("gntsock: grant %u (%u pages) to domain %u is still mapped: quarantined\n",
			    g->id, g->npages, g->link->peer);
	gntsock_reclaim_kick();
}

/**
 * gntsock_gout_tomb_free() - free a tombstone
 * @g: the tombstone (a TOMB grant); gntsock_grant_lock held
 */
void gntsock_gout_tomb_free(struct gntsock_gout *g)
{
	lockdep_assert_held(&gntsock_grant_lock);
	list_del(&g->reclaim_node);
	g->pa->ntombs--;
	gntsock_tombs--;
	hash_del(&g->hnode);
	gntsock_gout_free(g);
}

/* Keep @g as a tombstone of its peer. Beyond the peer's budget
 * (tombstones_max_peer) the peer's own oldest goes; beyond the budget of
 * all (tombstones_max) the oldest of the peer that holds most (the adding
 * peer on a tie): peers that never answer drop their own tombstones, and
 * the late answers of a peer with few stay quiet. A late answer that finds
 * no tombstone is a violation of the peer that sent it.
 * gntsock_grant_lock held.
 */
static void gntsock_gout_tomb_add(struct gntsock_gout *g)
{
	const struct gntsock_grant_limits *l = &gntsock_grant_limits;
	struct gntsock_peer_acct *pa = g->pa;

	lockdep_assert_held(&gntsock_grant_lock);
	g->state = GOUT_TOMB;
	list_add_tail(&g->reclaim_node, &pa->tombs);
	pa->ntombs++;
	gntsock_tombs++;
	if (pa->ntombs <= READ_ONCE(l->tombstones_max_peer)) {
		if (gntsock_tombs <= READ_ONCE(l->tombstones_max))
			return;
		pa = gntsock_peer_acct_most_tombs(pa);
	}
	atomic64_inc(&gntsock_grant_stats.tombs_dropped);
	gntsock_gout_tomb_free(list_first_entry(&pa->tombs, struct gntsock_gout,
						reclaim_node));
}

/* Every reference of @g is ended, but the peer may still answer: unpin
 * and unaccount now, keep the record without pages as a tombstone until
 * the late GRANT_RELEASE or the link's end, so that the answer is no
 * violation (gntsock_gout_tomb_add()). gntsock_grant_lock held.
 */
static void gntsock_gout_entomb(struct gntsock_gout *g)
{
	lockdep_assert_held(&gntsock_grant_lock);
	if (g->state == GOUT_QUARANTINED)
		gntsock_gout_defer_acct(g, false);
	list_del(&g->reclaim_node);
	gntsock_gout_detach(g);
	gntsock_gout_unaccount(g);
	gntsock_gout_drop_pages(g);
	gntsock_gout_tomb_add(g);
}

/**
 * gntsock_gout_forced() - the hypervisor took @g back: report and unpin
 * @g: a REVOKING grant whose references are all ended; gntsock_grant_lock
 *	held
 *
 * The pages are unpinned and the accounting dropped at once; the record
 * stays as a tombstone for the peer's late answer (gntsock_gout_entomb()).
 */
void gntsock_gout_forced(struct gntsock_gout *g)
{
	lockdep_assert_held(&gntsock_grant_lock);
	atomic64_inc(&gntsock_grant_stats.forced);
	if (g->sk)
		gntsock_grant_event(g->sk, g->owner, GNTSOCK_EV_FORCED, g->id, g->cookie,
				    g->npages);
	gntsock_gout_entomb(g);
}

/**
 * gntsock_gout_send_revoke() - ask the peer to give @g back
 * @g: an OFFERED grant; gntsock_grant_lock held
 *
 * GRANT_REVOKE goes to the peer, and @g waits on the reclaim list for the
 * answer until revoke_timeout_ms has passed (at once if the message could
 * not be queued); then the reclaim work ends it or quarantines it
 * (gntsock_gout_reclaim_one()).
 */
void gntsock_gout_send_revoke(struct gntsock_gout *g)
{
	struct gntsock_msg_hdr h = {
		.op = GNTSOCK_OP_GRANT_REVOKE,
		.type = GNTSOCK_TYPE_STREAM,
		.grant_id = g->id,
	};

	g->state = GOUT_REVOKING;
	g->deadline = jiffies +
		msecs_to_jiffies(READ_ONCE(gntsock_grant_limits.revoke_timeout_ms));
	list_add_tail(&g->reclaim_node, &gntsock_reclaim_list);
	if (gntsock_link_send_ctl(g->link, &h))
		g->deadline = jiffies;	/* not sent: give up at once */
	gntsock_reclaim_kick();
}

/* One step of the reclaim work for @g, a REVOKING or QUARANTINED grant;
 * @budget: quarantined grants this pass may still retry.
 * gntsock_grant_lock held. Return: true if @g changed state or was freed.
 */
static bool gntsock_gout_reclaim_one(struct gntsock_gout *g, unsigned int *budget)
{
	u32 swapped = 0;

	lockdep_assert_held(&gntsock_grant_lock);
	if (g->state == GOUT_REVOKING) {
		if (time_before(jiffies, g->deadline))
			return false;
		if (gntsock_gout_end_access(g, &swapped)) {
			if (swapped) {
				/* The hypervisor took it back. */
				gntsock_gout_forced(g);
				return true;
			}
			/* Unmapped, but the answer never came. */
			atomic64_inc(&gntsock_grant_stats.revoked);
			gntsock_gout_finish(g, GNTSOCK_EV_REVOKED);
			return true;
		}
		/* The peer may still answer, late. */
		g->late_release = true;
		gntsock_gout_quarantine(g);
		return true;
	}
	if (g->state != GOUT_QUARANTINED || !*budget)
		return false;
	(*budget)--;
	if (gntsock_gout_end_access(g, &swapped)) {
		atomic64_inc(&gntsock_grant_stats.reclaimed);
		/* Unmapped, but its GRANT_RELEASE may be on its way. */
		if (g->late_release)
			gntsock_gout_entomb(g);
		else
			gntsock_gout_finish(g, 0);
		return true;
	}
	return false;
}

/* Grants the reclaim work ends or moves per hold of gntsock_grant_lock:
 * every link's receive work waits meanwhile, and each may cost a
 * hypercall. It lets go in between, and starts again from the head.
 */
#define GNTSOCK_RECLAIM_HOLD	32

static void gntsock_reclaim_fn(struct work_struct *work)
{
	unsigned int budget = READ_ONCE(gntsock_grant_limits.reclaim_batch);
	unsigned int changed;
	struct list_head *pos, *n;
	bool more;

	spin_lock(&gntsock_grant_lock);
again:
	changed = 0;
	list_for_each_safe(pos, n, &gntsock_reclaim_list) {
		if (!gntsock_gout_reclaim_one(list_entry(pos, struct gntsock_gout,
							 reclaim_node), &budget))
			continue;
		if (++changed == GNTSOCK_RECLAIM_HOLD) {
			spin_unlock(&gntsock_grant_lock);
			cond_resched();
			spin_lock(&gntsock_grant_lock);
			goto again;
		}
	}
	more = !list_empty(&gntsock_reclaim_list);
	spin_unlock(&gntsock_grant_lock);
	if (!budget)
		pr_info_ratelimited("gntsock: deferred reclaim: batch limit reached, %d grants deferred\n",
				    atomic_read(&gntsock_grant_stats.deferred));
	if (more)
		gntsock_reclaim_kick();
}

/**
 * gntsock_reclaim_start() - let the deferred reclaim run (module load)
 */
void gntsock_reclaim_start(void)
{
	WRITE_ONCE(gntsock_reclaim_stopped, false);
}

/**
 * gntsock_reclaim_stop() - stop it for good (module unload)
 */
void gntsock_reclaim_stop(void)
{
	WRITE_ONCE(gntsock_reclaim_stopped, true);
	cancel_delayed_work_sync(&gntsock_reclaim_work);
}
