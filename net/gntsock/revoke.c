// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock grants: revocation and deferred reclaim.
 *
 * A revoke (ioctl, close of the sending socket, death of its process)
 * sends GRANT_REVOKE; the peer's kernel unmaps and answers with
 * GRANT_RELEASE. If no answer comes within net.gntsock.revoke_timeout_ms,
 * a revocable-only grant (Xen extension, and a peer that maps revocably)
 * is taken back through the hypervisor (gntsock_grant_force_revoke());
 * a plain grant is quarantined: its pages stay pinned on a bounded deferred
 * list that a work item retries in batches of net.gntsock.reclaim_batch
 * every net.gntsock.reclaim_interval_ms, until Xen lets us end access.
 */
#include <linux/workqueue.h>
#include <linux/jiffies.h>
#include <linux/slab.h>
#include <linux/mm.h>

#include "gntsock.h"
#include "grant.h"
#include "xen_revoke.h"

static void gntsock_reclaim_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(gntsock_reclaim_work, gntsock_reclaim_fn);
static bool gntsock_reclaim_stopped;

/**
 * gntsock_grant_force_revoke() - end a revocable-only grant through Xen
 * @g: the grant; gntsock_grant_lock held
 * @swapped: incremented by the mappings Xen took from the peer
 *
 * One GNTTABOP_revoke with GNTTAB_REVOKE_END_ACCESS for all references of
 * @g not yet ended (the Xen extension of xen-backend/). Xen points every
 * mapping the peer still holds at the peer's own replacement page, then,
 * once no mapping is left, ends access to the entry and drops its
 * revocable-only mark, atomically with respect to any new map, so that
 * nothing can be mapped between the revoke and the end of access and the
 * mark never goes while a mapping exists. A reference Xen answers
 * GNTST_okay for is therefore freed here (set to 0 in @g) and never granted
 * again; gnttab_try_end_foreign_access() only confirms that the entry is
 * ended before it frees it. GNTST_eagain (a map, unmap or copy in flight)
 * leaves the reference for a later attempt; Xen lets no new map or copy of
 * it succeed meanwhile. Only grants marked revocable-only when they were
 * made qualify: every mapping of them is revocable.
 *
 * Return: 0 if every reference is ended; -EOPNOTSUPP for a plain grant;
 * -EAGAIN (or another negative errno) if some are left.
 */
int gntsock_grant_force_revoke(struct gntsock_gout *g, u32 *swapped)
{
	struct gnttab_revoke *ops;
	grant_ref_t *refs;
	u32 i, n, k = 0;
	int rc, err = 0;

	lockdep_assert_held(&gntsock_grant_lock);
	refs = gntsock_gout_refs(g, &n);
	if (!refs)
		return -EOPNOTSUPP;
	for (i = 0; i < n; i++)
		k += !!refs[i];
	if (!k)
		return 0;
	ops = kvcalloc(k, sizeof(*ops), GFP_KERNEL);
	if (!ops)
		return -ENOMEM;
	for (i = 0, k = 0; i < n; i++) {
		if (!refs[i])
			continue;
		ops[k].ref = refs[i];
		ops[k].flags = GNTTAB_REVOKE_END_ACCESS;
		/* Stays so for an entry Xen did not process. */
		ops[k++].status = GNTST_general_error;
	}
	rc = gntsock_xen_revoke(ops, k);
	/* Each status counts, even when the call as a whole failed. */
	for (i = 0, k = 0; i < n; i++) {
		struct gnttab_revoke *op;

		if (!refs[i])
			continue;
		op = &ops[k++];
		*swapped += op->nr_revoked;
		if (op->status != GNTST_okay) {
			err = err ?: gntsock_xen_gntst_to_errno(op->status);
			continue;
		}
		if (!gnttab_try_end_foreign_access(refs[i])) {
			/* Xen said ended: never seen, but never free it then. */
			pr_warn_ratelimited("gntsock: grant reference %u revoked but not ended\n",
					    refs[i]);
			err = err ?: -EBUSY;
			continue;
		}
		refs[i] = 0;
	}
	kvfree(ops);
	return rc ?: err;
}

void gntsock_reclaim_kick(void)
{
	unsigned int ms = READ_ONCE(gntsock_grant_limits.reclaim_interval_ms);

	if (!READ_ONCE(gntsock_reclaim_stopped))
		queue_delayed_work(gntsock_wq, &gntsock_reclaim_work,
				   msecs_to_jiffies(ms));
}

static void gntsock_reclaim_fn(struct work_struct *work)
{
	unsigned int budget = READ_ONCE(gntsock_grant_limits.reclaim_batch);
	struct list_head *pos, *n;
	bool more;

	mutex_lock(&gntsock_grant_lock);
	list_for_each_safe(pos, n, &gntsock_reclaim_list)
		gntsock_gout_reclaim_one(gntsock_reclaim_entry(pos), &budget);
	more = !list_empty(&gntsock_reclaim_list);
	mutex_unlock(&gntsock_grant_lock);
	if (!budget)
		pr_info_ratelimited("gntsock: deferred reclaim: batch limit reached, %d grants deferred\n",
				    atomic_read(&gntsock_grant_stats.deferred));
	if (more)
		gntsock_reclaim_kick();
}

/**
 * gntsock_grant_link_msg() - handle a link-scoped grant message
 * @link: the link
 * @h: the validated header
 *
 * Return: true if @h was GRANT_REVOKE or GRANT_RELEASE (handled).
 */
bool gntsock_grant_link_msg(struct gntsock_link *link,
			    const struct gntsock_msg_hdr *h)
{
	switch (h->op) {
	case GNTSOCK_OP_GRANT_REVOKE:
		gntsock_grant_in_revoke(link, h);
		return true;
	case GNTSOCK_OP_GRANT_RELEASE:
		gntsock_grant_out_release(link, h);
		return true;
	default:
		return false;
	}
}

/**
 * gntsock_grant_sock_close() - a socket closes
 * @gs: its grants
 *
 * Grants it sent are revoked; grants it received are released.
 */
void gntsock_grant_sock_close(struct gntsock_grants *gs)
{
	mutex_lock(&gntsock_grant_lock);
	gntsock_grant_out_close(gs);
	gntsock_grant_in_close(gs);
	mutex_unlock(&gntsock_grant_lock);
}

/**
 * gntsock_grant_sock_destruct() - free what is left on the error queue
 * @sk: the socket being destroyed
 */
void gntsock_grant_sock_destruct(struct sock *sk)
{
	skb_queue_purge(&sk->sk_error_queue);
}

/**
 * gntsock_grant_link_down() - a link went down
 * @link: the link
 *
 * Received grants are unmapped; sent grants are ended, or quarantined
 * while the peer still maps them.
 */
void gntsock_grant_link_down(struct gntsock_link *link)
{
	mutex_lock(&gntsock_grant_lock);
	gntsock_grant_in_link_down(link);
	gntsock_grant_out_link_down(link);
	mutex_unlock(&gntsock_grant_lock);
}

int gntsock_grant_init(void)
{
	int err;

	WRITE_ONCE(gntsock_reclaim_stopped, false);
	err = gntsock_grant_in_init();
	if (err)
		return err;
	err = gntsock_grant_sysctl_init();
	if (err)
		gntsock_grant_in_exit();
	return err;
}

void gntsock_grant_exit(void)
{
	WRITE_ONCE(gntsock_reclaim_stopped, true);
	cancel_delayed_work_sync(&gntsock_reclaim_work);
	gntsock_grant_in_exit();
	gntsock_grant_out_exit();
	gntsock_grant_sysctl_exit();
}
