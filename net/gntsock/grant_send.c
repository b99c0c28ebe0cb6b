// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock grants, sending side: the grant cmsg of sendmsg(), pinning and
 * granting the pages to the connection's peer, and the records of grants
 * in flight (their events on the sender's error queue: grant_events.c).
 *
 * A record (struct gntsock_gout) lives from sendmsg() until every grant
 * reference of it has been ended: after the peer's kernel reports it
 * unmapped (GRANT_RELEASE), or after the hypervisor took it back, or on
 * the deferred list until Xen lets us end it. Its references are never
 * freed or reused before that, whatever happens to the socket or process.
 *
 * With the xen-backend extension, towards a peer that said on the link that
 * it can map revocably (feature-revocable-map, link_xenbus.c), every
 * reference is marked revocable-only before its grant entry is written, so
 * the peer can only ever map it revocably. Such a grant is ended through the
 * hypervisor (GNTTABOP_revoke with GNTTAB_REVOKE_END_ACCESS,
 * gntsock_xen_revoke_refs() in xen_revoke.c): Xen revokes
 * whatever mapping the peer still holds, ends access and drops the mark,
 * atomically, before the reference is freed. Other grants are plain and
 * ended with gnttab_try_end_foreign_access(); a plain grant the peer does
 * not give back is quarantined. A forced grant, and a quarantined one
 * reclaimed before the peer answered the revoke, leaves a small tombstone
 * (no pages, no references) until the peer's late GRANT_RELEASE or the
 * link's end, so that the late answer is accepted quietly.
 */
#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/workqueue.h>
#include <linux/backing-dev.h>
#include <linux/slab.h>
#include <linux/skbuff.h>
#include <linux/hashtable.h>
#include <linux/capability.h>
#include <linux/delay.h>
#include <xen/grant_table.h>
#include <xen/page.h>
#include <asm/xen/hypercall.h>

#include "gntsock.h"
#include "grant.h"
#include "xen_revoke.h"

enum gntsock_gout_state {
	GOUT_OFFERED,		/* the peer may map it */
	GOUT_REVOKING,		/* GRANT_REVOKE sent, waiting for the answer */
	GOUT_QUARANTINED,	/* on the deferred list */
	GOUT_TOMB,		/* ended before the peer answered: tombstone */
};

/**
 * struct gntsock_gout - a grant this kernel made
 * @hnode: entry in gntsock_gout_hash, by @id
 * @sock_node: entry in the owning socket's gntsock_grants.out
 * @reclaim_node: entry in gntsock_reclaim_list (REVOKING, QUARANTINED),
 *	or in its peer's gntsock_peer_acct.tombs (TOMB)
 * @link: link to the peer, reference held
 * @pa: the peer's accounting (made before the grant, never freed while
 *	the module is loaded)
 * @owner: owning socket's grants, NULL once the socket closed
 * @sk: owning socket, valid while @owner is set
 * @id: grant id on the wire, unique in this kernel
 * @npages: pages
 * @writable: the peer may write
 * @revocable: the references are marked revocable-only (the peer can
 *	map revocably and this domain can revoke); otherwise a plain grant
 * @state: enum gntsock_gout_state
 * @sending: sendmsg() still owns it (between prepare and commit/abort):
 *	nobody else may free it; what happens meanwhile is noted below
 * @revoke_pending: a revoke came while @sending
 * @release_flags: a GRANT_RELEASE came while @sending (flags | 0x8000)
 * @link_dead: the link went down while @sending
 * @late_release: quarantined after an unanswered GRANT_REVOKE on a live
 *	link: the peer's GRANT_RELEASE may still come
 * @cookie: the application's cookie
 * @deadline: jiffies when a revoke gives up waiting
 * @pages: pinned pages
 * @refs: grant references, 0 once ended and freed
 */
struct gntsock_gout {
	struct hlist_node hnode;
	struct list_head sock_node;
	struct list_head reclaim_node;
	struct gntsock_link *link;
	struct gntsock_peer_acct *pa;
	struct gntsock_grants *owner;
	struct sock *sk;
	u32 id;
	u32 npages;
	bool writable;
	bool revocable;
	int state;
	bool sending;
	bool revoke_pending;
	bool link_dead;
	bool late_release;
	u16 release_flags;
	u64 cookie;
	unsigned long deadline;
	struct page **pages;
	grant_ref_t refs[];
};

static DEFINE_HASHTABLE(gntsock_gout_hash, 8);
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
static u32 gntsock_next_id;

/* Testing only (root): the id the next grant takes if it is free, as a
 * granting kernel may reuse the id of a grant the receiver answered for
 * (the receiver must not confuse the two). One shot.
 */
static unsigned int gntsock_fault_grant_id;
module_param_named(fault_grant_id, gntsock_fault_grant_id, uint, 0600);
MODULE_PARM_DESC(fault_grant_id,
		 "testing: the id of the next grant if it is free (0: off)");

void gntsock_grants_init(struct gntsock_grants *gs)
{
	INIT_LIST_HEAD(&gs->out);
	INIT_LIST_HEAD(&gs->in);
	atomic64_set(&gs->ev_lost, 0);
	gs->out_pages = 0;
	gs->in_pages = 0;
}

static struct gntsock_gout *gntsock_gout_find(struct gntsock_link *link,
					      u32 id)
{
	struct gntsock_gout *g;

	hash_for_each_possible(gntsock_gout_hash, g, hnode, id)
		if (g->id == id && g->link == link)
			return g;
	return NULL;
}

static int gntsock_grant_parse(struct msghdr *msg,
			       struct gntsock_grant_send *gs_out)
{
	struct cmsghdr *cmsg;
	bool found = false;

	for_each_cmsghdr(cmsg, msg) {
		if (!CMSG_OK(msg, cmsg))
			return -EINVAL;
		if (cmsg->cmsg_level != SOL_GNTSOCK ||
		    cmsg->cmsg_type != GNTSOCK_CMSG_GRANT ||
		    cmsg->cmsg_len != CMSG_LEN(sizeof(*gs_out)) || found)
			return -EINVAL;
		memcpy(gs_out, CMSG_DATA(cmsg), sizeof(*gs_out));
		found = true;
	}
	return found ? 1 : 0;
}

static void gntsock_gout_free(struct gntsock_gout *g)
{
	if (g->pages) {
		unpin_user_pages_dirty_lock(g->pages, g->npages, g->writable);
		kvfree(g->pages);
	}
	gntsock_link_put(g->link);
	kvfree(g);
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

/* Count (@add) or uncount one grant of @npages pages to @peer in flight.
 * gntsock_grant_lock held.
 */
static void gntsock_acct(domid_t peer, u32 npages, bool add)
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

static void gntsock_gout_detach(struct gntsock_gout *g)
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

/* Free a tombstone. gntsock_grant_lock held. */
static void gntsock_gout_tomb_free(struct gntsock_gout *g)
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
	unpin_user_pages_dirty_lock(g->pages, g->npages, g->writable);
	kvfree(g->pages);
	g->pages = NULL;
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

/* May a grant of @npages pages to the peer of @pa be made while the
 * deferred list holds what it does? The peer's own quarantined pages count
 * against quarantine_max_pages_peer, everyone's against the larger
 * quarantine_max_pages: a peer that keeps every grant fills only its own
 * budget, and grants to other peers go on. gntsock_grant_lock held.
 */
static bool gntsock_quarantine_room(const struct gntsock_peer_acct *pa,
				    u32 npages)
{
	const struct gntsock_grant_limits *l = &gntsock_grant_limits;

	return pa->deferred_pages + npages <=
	       READ_ONCE(l->quarantine_max_pages_peer) &&
	       atomic_read(&gntsock_grant_stats.deferred_pages) + npages <=
	       READ_ONCE(l->quarantine_max_pages);
}

/* Is @req within every limit? On success *@pap is the peer's accounting.
 * gntsock_grant_lock held.
 */
static int gntsock_grant_check(struct gntsock_grants *gs,
			       struct gntsock_link *link,
			       const struct gntsock_grant_send *req,
			       struct gntsock_peer_acct **pap)
{
	const struct gntsock_grant_limits *l = &gntsock_grant_limits;
	struct gntsock_peer_acct *pa;
	u64 npages;

	lockdep_assert_held(&gntsock_grant_lock);
	if (READ_ONCE(l->require_cap) && !capable(CAP_IPC_LOCK))
		return -EPERM;
	if (req->flags & ~GNTSOCK_GRANT_WRITABLE || req->reserved)
		return -EINVAL;
	if (!req->len || !PAGE_ALIGNED(req->addr) || !PAGE_ALIGNED(req->len))
		return -EINVAL;
	/* The loopback link has no other domain to grant to. */
	if (link->loopback)
		return -EOPNOTSUPP;
	npages = req->len >> PAGE_SHIFT;
	if (npages > min_t(u32, READ_ONCE(l->max_pages_msg),
			   GNTSOCK_GRANT_MAX_PAGES))
		return -EMSGSIZE;
	if (gs->out_pages + npages > READ_ONCE(l->max_pages_sock))
		return -ENOBUFS;
	pa = gntsock_peer_acct(link->peer);
	if (!pa)
		return -ENOMEM;
	if (pa->out_pages + npages > READ_ONCE(l->max_pages_peer))
		return -ENOBUFS;
	if (!gntsock_quarantine_room(pa, npages)) {
		atomic64_inc(&gntsock_grant_stats.quarantine_full);
		return -ENOBUFS;
	}
	*pap = pa;
	return 0;
}

/* Unmark @ops' references whose mark Xen set (the entries were never
 * written, so nobody can have mapped them) and free them; a reference
 * whose mark cannot be removed is never freed, so that no later user of it
 * inherits the mark.
 */
static void gntsock_gout_unmark_free(struct gnttab_set_revocable_only *ops,
				     u32 n)
{
	u32 i;

	for (i = 0; i < n; i++) {
		struct gnttab_set_revocable_only *op = ops + i;

		if (op->status == GNTST_okay &&
		    gntsock_xen_set_revocable_only(op->ref, op->domid,
						   op->frame, false)) {
			pr_warn_ratelimited("gntsock: grant reference %u stays revocable-only: not reused\n",
					    op->ref);
			continue;
		}
		gnttab_free_grant_reference(op->ref);
	}
}

/* Claim @g's references and grant its pages to @peer. A revocable-only
 * grant is marked, all references in one hypercall, before any of its
 * entries is written, so that no plain map of it can succeed at any time.
 * Return: 0, or -ENOBUFS (no reference free, or the hypervisor refused a
 * mark) or -ENOMEM, with nothing granted.
 */
static int gntsock_gout_grant(struct gntsock_gout *g, domid_t peer,
			      bool revocable)
{
	struct gnttab_set_revocable_only *ops = NULL;
	grant_ref_t head;
	int err = 0, rc;
	u32 i;

	if (revocable) {
		ops = kvcalloc(g->npages, sizeof(*ops), GFP_KERNEL);
		if (!ops)
			return -ENOMEM;
	}
	if (gnttab_alloc_grant_references(g->npages, &head)) {
		kvfree(ops);
		return -ENOBUFS;
	}
	for (i = 0; i < g->npages; i++)
		g->refs[i] = gnttab_claim_grant_reference(&head);
	if (revocable) {
		for (i = 0; i < g->npages; i++) {
			ops[i].ref = g->refs[i];
			ops[i].domid = peer;
			ops[i].frame = xen_page_to_gfn(g->pages[i]);
			ops[i].flags = GNTTAB_REVOCABLE_ONLY_SET;
			/* Stays so for an entry Xen did not process. */
			ops[i].status = GNTST_general_error;
		}
		rc = HYPERVISOR_grant_table_op(GNTTABOP_set_revocable_only,
					       ops, g->npages);
		for (i = 0; i < g->npages; i++)
			if (rc || ops[i].status != GNTST_okay)
				err = -ENOBUFS;
		if (err) {
			pr_warn_ratelimited("gntsock: marking %u grant references revocable-only failed (%d, status %d)\n",
					    g->npages, rc, ops[0].status);
			gntsock_gout_unmark_free(ops, g->npages);
			memset(g->refs, 0, g->npages * sizeof(g->refs[0]));
			kvfree(ops);
			return err;
		}
		kvfree(ops);
	}
	g->revocable = revocable;
	for (i = 0; i < g->npages; i++)
		gnttab_grant_foreign_access_ref(g->refs[i], peer,
						xen_page_to_gfn(g->pages[i]),
						!g->writable);
	return 0;
}

/* As vma_needs_dirty_tracking() upstream (not in 6.1): a shared writable
 * mapping of a file whose filesystem wants to hear of writes (page_mkwrite)
 * or writes pages back. Shared memory (shmem, hugetlbfs) needs neither.
 */
static bool gntsock_vma_dirty_tracked(struct vm_area_struct *vma)
{
	const struct vm_operations_struct *ops = vma->vm_ops;

	if ((vma->vm_flags & (VM_SHARED | VM_WRITE)) != (VM_SHARED | VM_WRITE))
		return false;
	if (ops && (ops->page_mkwrite || ops->pfn_mkwrite))
		return true;
	return vma->vm_file && vma->vm_file->f_mapping &&
	       mapping_can_writeback(vma->vm_file->f_mapping);
}

/* Pin [@addr, @addr + @nr pages) of one VMA, @vma, for gntsock_grant_pin():
 * a mapping the filesystem tracks only read-only. Return: pages pinned, or
 * a negative errno. mmap_lock held.
 */
static long gntsock_pin_vma(struct vm_area_struct *vma, unsigned long addr,
			    unsigned long nr, bool writable,
			    struct page **pages)
{
	long n;

	mmap_assert_locked(vma->vm_mm);
	if (gntsock_vma_dirty_tracked(vma))
		return writable ? -EOPNOTSUPP :
		       pin_user_pages(addr, nr, FOLL_LONGTERM, pages, NULL);
	/* Pin for writing even a read-only grant when we may: that breaks
	 * copy-on-write (and never pins the shared zero page), so the peer
	 * sees the very pages the process writes to.
	 */
	n = pin_user_pages(addr, nr, FOLL_LONGTERM | FOLL_WRITE, pages, NULL);
	if (n == nr || writable)
		return n;
	if (n > 0)
		unpin_user_pages(pages, n);
	return pin_user_pages(addr, nr, FOLL_LONGTERM, pages, NULL);
}

/**
 * gntsock_grant_pin() - pin the pages of a grant for as long as it lives
 * @addr: first byte, page aligned
 * @npages: pages
 * @writable: the peer may write them
 * @pages: where the pages go
 *
 * The peer writes a writable grant's pages behind the back of the page
 * tables, for as long as it likes: a filesystem that tracks dirty pages
 * (writeback, page_mkwrite) would write back, or truncate, a page it
 * believes clean while the peer writes it. Such a mapping is refused for
 * a writable grant, as GUP refuses it for FOLL_LONGTERM | FOLL_WRITE since
 * 6.5; a read-only grant of it is pinned without FOLL_WRITE. The range is
 * pinned VMA by VMA, each as its kind allows, under one mmap_lock, so that
 * no file can be mapped over it between the check and the pin. Unlike
 * pin_user_pages_fast(), no VMA means EFAULT: nothing without one (the
 * gate page) is ever granted.
 *
 * Return: 0, or -EOPNOTSUPP, -EFAULT or another errno of GUP.
 */
static int gntsock_grant_pin(unsigned long addr, u32 npages, bool writable,
			     struct page **pages)
{
	unsigned long len = (unsigned long)npages << PAGE_SHIFT, done = 0;
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	long n = 0;

	addr = untagged_addr(addr);
	if (!access_ok((void __user *)addr, len))
		return -EFAULT;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	while (done < npages) {
		unsigned long a = addr + (done << PAGE_SHIFT), nr;

		vma = vma_lookup(mm, a);
		if (!vma) {
			n = -EFAULT;
			break;
		}
		nr = (min(addr + len, vma->vm_end) - a) >> PAGE_SHIFT;
		n = gntsock_pin_vma(vma, a, nr, writable, pages + done);
		if (n > 0)
			done += n;
		if (n != nr)
			break;
	}
	mmap_read_unlock(mm);
	if (done == npages)
		return 0;
	if (done)
		unpin_user_pages(pages, done);
	return n < 0 ? n : -EFAULT;
}

/**
 * gntsock_grant_prepare() - parse sendmsg()'s grant cmsg, pin and grant
 * @sk: the sending socket, not locked (pinning may fault for long); its
 *	caller holds its tx_mutex
 * @gs: its grants
 * @link: its link
 * @msg: the message
 * @out: the new grant (state NEW), or NULL if @msg carries none
 *
 * Return: 0 or a negative errno for the caller to return.
 */
int gntsock_grant_prepare(struct sock *sk, struct gntsock_grants *gs,
			  struct gntsock_link *link, struct msghdr *msg,
			  struct gntsock_gout **out)
{
	struct gntsock_peer_acct *pa = NULL;
	struct gntsock_grant_send req;
	struct gntsock_gout *g;
	u32 npages;
	int err;

	*out = NULL;
	err = gntsock_grant_parse(msg, &req);
	if (err <= 0)
		return err;
	npages = req.len >> PAGE_SHIFT;
	/* Checked and counted in one step, so that concurrent senders to one
	 * peer cannot together pass a limit each of them checked alone.
	 */
	mutex_lock(&gntsock_grant_lock);
	err = gntsock_grant_check(gs, link, &req, &pa);
	if (!err)
		gntsock_acct(link->peer, npages, true);
	mutex_unlock(&gntsock_grant_lock);
	if (err)
		return err;
	g = kvzalloc(struct_size(g, refs, npages), GFP_KERNEL);
	if (!g) {
		err = -ENOMEM;
		goto unreserve;
	}
	g->pages = kvcalloc(npages, sizeof(*g->pages), GFP_KERNEL);
	if (!g->pages) {
		kvfree(g);
		err = -ENOMEM;
		goto unreserve;
	}
	INIT_HLIST_NODE(&g->hnode);
	INIT_LIST_HEAD(&g->sock_node);
	INIT_LIST_HEAD(&g->reclaim_node);
	g->npages = npages;
	g->writable = req.flags & GNTSOCK_GRANT_WRITABLE;
	g->cookie = req.cookie;
	kref_get(&link->kref);
	g->link = link;
	err = gntsock_grant_pin(req.addr, npages, g->writable, g->pages);
	if (err) {
		kvfree(g->pages);
		gntsock_link_put(link);
		kvfree(g);
		goto unreserve;
	}
	err = gntsock_gout_grant(g, link->peer,
				 gntsock_xen_revoke_supported() &&
				 READ_ONCE(link->peer_map_revocable));
	if (err) {
		unpin_user_pages(g->pages, npages);
		kvfree(g->pages);
		gntsock_link_put(link);
		kvfree(g);
		goto unreserve;
	}

	mutex_lock(&gntsock_grant_lock);
	g->state = GOUT_OFFERED;
	g->sending = true;
	g->id = xchg(&gntsock_fault_grant_id, 0);
	while (!g->id || gntsock_gout_find(link, g->id))
		g->id = ++gntsock_next_id;
	hash_add(gntsock_gout_hash, &g->hnode, g->id);
	g->pa = pa;	/* never freed before unload */
	g->owner = gs;
	g->sk = sk;
	list_add_tail(&g->sock_node, &gs->out);
	gs->out_pages += npages;
	mutex_unlock(&gntsock_grant_lock);
	*out = g;
	return 0;

unreserve:
	mutex_lock(&gntsock_grant_lock);
	gntsock_acct(link->peer, npages, false);
	mutex_unlock(&gntsock_grant_lock);
	return err;
}

static int gntsock_grant_copy(void *ring_mem, u32 len, void *ctx)
{
	u8 **p = ctx;

	memcpy(ring_mem, *p, len);
	*p += len;
	return 0;
}

/**
 * gntsock_grant_put() - send the GRANT message of a NEW grant
 * @link: the link
 * @h: header filled by the socket layer (ports, credit)
 * @g: the grant
 *
 * Return: as gntsock_link_send(); -ENOSPC means try again.
 */
int gntsock_grant_put(struct gntsock_link *link, struct gntsock_msg_hdr *h,
		      struct gntsock_gout *g)
{
	struct gntsock_grant_msg *m;
	u32 len = struct_size(m, refs, g->npages);
	u8 *p;
	int err;

	m = kmalloc(len, GFP_KERNEL);
	if (!m)
		return -ENOMEM;
	m->id = g->id;
	m->npages = g->npages;
	memcpy(m->refs, g->refs, g->npages * sizeof(m->refs[0]));
	h->op = GNTSOCK_OP_GRANT;
	h->len = len;
	h->flags = g->writable ? GNTSOCK_GRANT_F_WRITABLE : 0;
	p = (u8 *)m;
	err = len > link->max_payload ? -EMSGSIZE :
		gntsock_link_send(link, h, gntsock_grant_copy, &p);
	kfree(m);
	return err;
}

static void gntsock_grant_violation(struct gntsock_link *link, const char *why,
				    u32 id)
{
	atomic64_inc(&gntsock_grant_stats.violations);
	atomic64_inc(&link->stat_violations);
	atomic64_inc(&gntsock_stats.violations);
	atomic64_inc(&gntsock_stats.violation[GNTSOCK_V_GRANT]);
	pr_warn_ratelimited("gntsock: link to domain %u: %s (grant %u)\n",
			    link->peer, why, id);
}

static void gntsock_gout_send_revoke(struct gntsock_gout *g);
static void gntsock_gout_released(struct gntsock_gout *g, u16 flags);
static void gntsock_gout_link_dead(struct gntsock_gout *g);

/**
 * gntsock_grant_committed() - the GRANT message is in the ring
 * @g: the grant
 */
void gntsock_grant_committed(struct gntsock_gout *g)
{
	atomic64_inc(&gntsock_grant_stats.offered);
	if (!g->revocable)
		atomic64_inc(&gntsock_grant_stats.offered_plain);
	mutex_lock(&gntsock_grant_lock);
	g->sending = false;
	if (g->release_flags)
		gntsock_gout_released(g, g->release_flags & GNTSOCK_REL_MASK);
	else if (g->link_dead)
		gntsock_gout_link_dead(g);
	else if (g->revoke_pending)
		gntsock_gout_send_revoke(g);
	mutex_unlock(&gntsock_grant_lock);
}

/**
 * gntsock_grant_abort() - the GRANT message could not be sent
 * @g: the grant, still NEW
 */
void gntsock_grant_abort(struct gntsock_gout *g)
{
	u32 swapped = 0;

	mutex_lock(&gntsock_grant_lock);
	g->sending = false;
	if (gntsock_gout_end_access(g, &swapped))
		gntsock_gout_finish(g, 0);
	else
		gntsock_gout_quarantine(g);
	mutex_unlock(&gntsock_grant_lock);
}

static void gntsock_gout_send_revoke(struct gntsock_gout *g)
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

/**
 * gntsock_grant_revoke_cookie() - GNTSOCK_IOC_REVOKE
 * @sk: the socket
 * @gs: its grants
 * @cookie: revoke every offered grant with this cookie
 *
 * Return: 0, or -ENOENT if no grant has that cookie.
 */
int gntsock_grant_revoke_cookie(struct sock *sk, struct gntsock_grants *gs,
				u64 cookie)
{
	struct gntsock_gout *g;
	int err = -ENOENT;

	mutex_lock(&gntsock_grant_lock);
	list_for_each_entry(g, &gs->out, sock_node) {
		if (g->cookie != cookie)
			continue;
		if (g->sending)
			g->revoke_pending = true;
		else if (g->state == GOUT_OFFERED)
			gntsock_gout_send_revoke(g);
		err = 0;
	}
	mutex_unlock(&gntsock_grant_lock);
	return err;
}

/**
 * gntsock_grant_out_release() - the peer's GRANT_RELEASE
 * @link: the link it came on
 * @h: its validated header
 *
 * The peer says it no longer maps the grant. Xen has the last word: a
 * reference it still sees mapped is not ended, and the grant goes to the
 * deferred list (the peer lied). An unknown id is a counted violation.
 */
void gntsock_grant_out_release(struct gntsock_link *link,
			       const struct gntsock_msg_hdr *h)
{
	struct gntsock_gout *g;
	u32 swapped = 0;

	mutex_lock(&gntsock_grant_lock);
	g = gntsock_gout_find(link, h->grant_id);
#ifdef GNTSOCK_HOSTILE
	if (!g && h->grant_id >= GNTSOCK_HOSTILE_GRANT_ID) {
		/* The answer to a forged grant (hostile.c). */
		mutex_unlock(&gntsock_grant_lock);
		return;
	}
#endif
	if (g && g->state == GOUT_TOMB) {
		/* The peer unmapped after we ended the grant. */
		gntsock_gout_tomb_free(g);
	} else if (g && g->state == GOUT_QUARANTINED) {
		/* A late answer: the peer unmapped after the timeout. */
		g->late_release = false;
		if (gntsock_gout_end_access(g, &swapped)) {
			atomic64_inc(&gntsock_grant_stats.reclaimed);
			gntsock_gout_finish(g, 0);
		}
	} else if (!g || g->release_flags) {
		gntsock_grant_violation(link, g ? "release of a grant in the wrong state" :
					"release of an unknown grant", h->grant_id);
	} else if (g->sending) {
		g->release_flags = h->flags | 0x8000;
	} else {
		gntsock_gout_released(g, h->flags);
	}
	mutex_unlock(&gntsock_grant_lock);
}

/* The peer released @g: end it. A peer that still maps a plain grant
 * gets it quarantined; one that still maps a revocable-only grant has just
 * had its mappings revoked by the hypervisor. gntsock_grant_lock held.
 */
static void gntsock_gout_released(struct gntsock_gout *g, u16 flags)
{
	u32 ev, swapped = 0;

	lockdep_assert_held(&gntsock_grant_lock);
	if (!gntsock_gout_end_access(g, &swapped)) {
		gntsock_grant_violation(g->link, "released grant still mapped",
					g->id);
		gntsock_gout_quarantine(g);
		return;
	}
	if (swapped) {
		gntsock_grant_violation(g->link, "released grant still mapped",
					g->id);
		atomic64_inc(&gntsock_grant_stats.forced);
		gntsock_gout_finish(g, GNTSOCK_EV_FORCED);
		return;
	}
	if (flags & GNTSOCK_REL_REFUSED) {
		ev = GNTSOCK_EV_REFUSED;
		atomic64_inc(&gntsock_grant_stats.refused);
	} else if (g->state == GOUT_REVOKING) {
		ev = GNTSOCK_EV_REVOKED;
		atomic64_inc(&gntsock_grant_stats.revoked);
	} else {
		ev = GNTSOCK_EV_RELEASED;
		atomic64_inc(&gntsock_grant_stats.released);
	}
	gntsock_gout_finish(g, ev);
}

/**
 * gntsock_grant_out_close() - the owning socket closes: revoke everything
 * @gs: its grants; gntsock_grant_lock held
 *
 * The records stay until the peer answers or the revoke times out.
 */
void gntsock_grant_out_close(struct gntsock_grants *gs)
{
	struct gntsock_gout *g, *tmp;

	lockdep_assert_held(&gntsock_grant_lock);
	list_for_each_entry_safe(g, tmp, &gs->out, sock_node) {
		gntsock_gout_detach(g);
		if (g->state == GOUT_OFFERED)
			gntsock_gout_send_revoke(g);
	}
}

/**
 * gntsock_grant_out_link_down() - the link is gone: end or quarantine
 * @link: the link; gntsock_grant_lock held
 *
 * No answer can come any more. References the peer still maps (its kernel
 * has not unmapped yet, or will not) go to the deferred list; Xen drops
 * them when the peer unmaps or dies.
 */
void gntsock_grant_out_link_down(struct gntsock_link *link)
{
	struct gntsock_gout *g;
	struct hlist_node *tmp;
	int bkt;

	lockdep_assert_held(&gntsock_grant_lock);
	hash_for_each_safe(gntsock_gout_hash, bkt, tmp, g, hnode) {
		if (g->link != link)
			continue;
		if (g->state == GOUT_QUARANTINED) {
			/* Its release can no longer come. */
			g->late_release = false;
			continue;
		}
		if (g->state == GOUT_TOMB) {
			gntsock_gout_tomb_free(g);
			continue;
		}
		if (g->sending)
			g->link_dead = true;
		else
			gntsock_gout_link_dead(g);
	}
}

/* No answer can come for @g any more. A mapping the peer still holds
 * would pin our pages until its kernel or Xen lets go: a revocable-only
 * grant's is revoked at once (there is nobody left to wait for), a plain
 * grant is quarantined. No tombstone: no late release can come over a
 * dead link. gntsock_grant_lock held.
 */
static void gntsock_gout_link_dead(struct gntsock_gout *g)
{
	u32 swapped = 0;

	lockdep_assert_held(&gntsock_grant_lock);
	if (!gntsock_gout_end_access(g, &swapped)) {
		gntsock_gout_quarantine(g);
	} else if (swapped) {
		atomic64_inc(&gntsock_grant_stats.forced);
		gntsock_gout_finish(g, GNTSOCK_EV_FORCED);
	} else {
		atomic64_inc(&gntsock_grant_stats.revoked);
		gntsock_gout_finish(g, GNTSOCK_EV_REVOKED);
	}
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

static void gntsock_reclaim_fn(struct work_struct *work)
{
	unsigned int budget = READ_ONCE(gntsock_grant_limits.reclaim_batch);
	struct list_head *pos, *n;
	bool more;

	mutex_lock(&gntsock_grant_lock);
	list_for_each_safe(pos, n, &gntsock_reclaim_list)
		gntsock_gout_reclaim_one(list_entry(pos, struct gntsock_gout,
						    reclaim_node), &budget);
	more = !list_empty(&gntsock_reclaim_list);
	mutex_unlock(&gntsock_grant_lock);
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

/* Unload: times a revocable-only grant Xen could not end yet (an
 * operation of the peer in flight) is retried, 20 ms apart.
 */
#define GNTSOCK_EXIT_TRIES	50

/**
 * gntsock_grant_out_exit() - module unload: end what is left, or hand it
 * to the kernel's deferred freeing in grant-table.c
 *
 * Every link is down, so only quarantined grants remain. Each plain
 * reference the peer still maps is passed to gnttab_end_foreign_access()
 * together with a plain reference on its page, which the grant table code
 * drops once the peer unmaps; our long-term pin is dropped now. A
 * revocable-only reference is ended through the hypervisor; one it still
 * cannot end after %GNTSOCK_EXIT_TRIES attempts is leaked with its page
 * (never freed: the next user of the reference would inherit its mark).
 */
void gntsock_grant_out_exit(void)
{
	struct gntsock_gout *g;
	struct hlist_node *tmp;
	u32 i, swapped = 0;
	int bkt, tries;

	mutex_lock(&gntsock_grant_lock);
	hash_for_each_safe(gntsock_gout_hash, bkt, tmp, g, hnode) {
		if (g->state == GOUT_TOMB) {
			gntsock_gout_tomb_free(g);
			continue;
		}
		for (tries = 0; !gntsock_gout_end_access(g, &swapped) &&
		     g->revocable && tries < GNTSOCK_EXIT_TRIES; tries++)
			msleep(20);
		for (i = 0; i < g->npages; i++) {
			if (!g->refs[i])
				continue;
			get_page(g->pages[i]);
			if (g->revocable) {
				pr_warn_ratelimited("gntsock: unload: grant reference %u to domain %u cannot be ended: leaked\n",
						    g->refs[i], g->link->peer);
			} else {
				gnttab_end_foreign_access(g->refs[i],
							  g->pages[i]);
				pr_warn_ratelimited("gntsock: unload: grant reference %u still mapped by domain %u, left to deferred freeing\n",
						    g->refs[i], g->link->peer);
			}
			g->refs[i] = 0;
		}
		if (g->state == GOUT_QUARANTINED)
			atomic64_inc(&gntsock_grant_stats.reclaimed);
		gntsock_gout_finish(g, 0);
	}
	mutex_unlock(&gntsock_grant_lock);
}
