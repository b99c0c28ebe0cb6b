// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock grants: revocation and deferred reclaim.
 *
 * A revoke (ioctl, close of the sending socket, death of its process)
 * sends GRANT_REVOKE; the peer's kernel unmaps and answers with
 * GRANT_RELEASE. If no answer comes within net.gntsock.revoke_timeout_ms,
 * a forced revoke through the hypervisor is tried first
 * (gntsock_grant_force_revoke(), which needs the Xen extension); without
 * it the grant is quarantined: its pages stay pinned on a bounded deferred
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
 * gntsock_grant_force_revoke() - take a grant back by force
 * @g: a grant whose revoke timed out; gntsock_grant_lock held
 *
 * With the hypervisor extension (xen-backend/) the granter can revoke a
 * mapping the peer still holds; Xen then swaps in the mapper's replacement
 * frame, and the references can be ended at once. It works only for
 * grants marked revocable-only when they were made (so that every mapping
 * of them is revocable). Stock Xen has no such operation.
 *
 * Return: 0 if the hypervisor revoked every mapping; -EOPNOTSUPP for a
 * grant that is not revocable-only (stock Xen); -EAGAIN if a mapping
 * remains; another negative errno if the hypercall failed.
 */
int gntsock_grant_force_revoke(struct gntsock_gout *g)
{
	struct gnttab_revoke *ops;
	grant_ref_t *refs;
	u32 i, n, k = 0;
	int rc;

	refs = gntsock_gout_refs(g, &n);
	if (!refs)
		return -EOPNOTSUPP;
	ops = kvcalloc(n, sizeof(*ops), GFP_KERNEL);
	if (!ops)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		if (refs[i])
			ops[k++].ref = refs[i];
	rc = k ? gntsock_xen_revoke(ops, k) : 0;
	for (i = 0; !rc && i < k; i++)
		if (ops[i].status != GNTST_okay)
			rc = gntsock_xen_gntst_to_errno(ops[i].status);
	kvfree(ops);
	return rc;
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
