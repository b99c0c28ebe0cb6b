// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock grants, receiving side: the record of a grant that arrived
 * (struct gntsock_gin), its delivery as a recvmsg() cmsg, mapping into the
 * application with mmap() on the socket, unmapping on munmap(), revoke or
 * close, and the GRANT_RELEASE that tells the granter it may end access.
 *
 * Mapping, x86 PV: the grant is mapped straight into the user's page
 * table entries with GNTMAP_application_map | GNTMAP_contains_pte, as
 * gntdev does for PV. Xen refuses a foreign frame in a PTE written the
 * ordinary way, and kills a PV domain whose kernel clears a grant-mapped
 * PTE without the grant unmap operation; so an MMU interval notifier unmaps
 * the grant before anything (munmap, exit, mremap, mprotect) zaps the
 * range. The VMA is VM_DONTCOPY (fork does not copy it) and cannot be
 * split. After an unmap the range stays empty: a later access gets SIGBUS
 * from the fault handler, never the granter's frame.
 *
 * Mapping, auto-translated (x86 PVH, HVM): as gntdev does there, each page
 * of the grant goes into the p2m at the guest frame of an unpopulated page
 * of ours (GNTMAP_host_map, host_addr = that frame's guest physical
 * address), and those pages are inserted into the VMA (VM_IO, so
 * get_user_pages() refuses them as it refuses the PV range, but
 * get_user_pages_fast() does not: see below). The same
 * notifier unmaps the grant before the range is zapped. An unmap that is
 * not the application's doing (revoke, link down) zaps the range
 * afterwards from a work item, so that it faults (SIGBUS) as on PV; the
 * unpopulated pages go back to their pool only when the last VMA is gone
 * and nobody else holds a reference to them. Those pages are ordinary
 * pages in ordinary PTEs, so get_user_pages_fast() (vmsplice(), O_DIRECT)
 * can take references that outlive the VMA, as with gntdev's pages; a page
 * still referenced then would come back from the pool for the next
 * mapping, and the holder would see that grant, perhaps another domain's
 * memory. So the grant itself is unmapped at once (the granter gets its
 * page back and a forced revoke is not held up: the holder sees an empty
 * frame), but pages with references left are held back on a list that a
 * work item polls, as gnttab_unmap_refs_async() polls page_count(), and
 * freed when the last reference is gone (in_held, in_held_total).
 *
 * Locking: the MMU notifier takes only the grant's own map_lock, which is
 * never held while allocating (the unmap arrays are allocated at mmap())
 * nor while taking another lock; gntsock_grant_lock (held across
 * GFP_KERNEL allocations) comes before it. A notifier that reclaim enters
 * can therefore not wait for an allocation. A grant VMA cannot be moved
 * (mremap() fails with EINVAL), so the notifier's interval always covers
 * the VMA it was registered for.
 *
 * When this domain can map revocably (the hypervisor has the xen-backend
 * extension and lets it use GNTTABOP_map_revocable, xen_revoke.c) and
 * said so on the link (feature-revocable-map, link_xenbus.c), every page is
 * mapped revocably (GNTTABOP_map_revocable on the same user PTE) with a
 * replacement page of ours: a distinct zeroed page per page of a writable
 * grant, one shared zeroed page for a read-only grant. If the granter
 * takes the grant back by force, the user's range shows those pages from
 * then on; the later unmap works as usual, and the replacement pages are
 * freed only after it (Xen holds references to them until then). A
 * domain that cannot map revocably (a PV domain whose grant maps need
 * IOMMU mappings) says so, gets plain grants, and maps them plainly.
 *
 * Each grant is mapped at most once, only through the socket it arrived
 * on, never after a revoke, and every unmap is reported (GRANT_RELEASE
 * once the application released it, or at once after a revoke).
 */
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/hashtable.h>
#include <linux/mmu_notifier.h>
#include <linux/sched/mm.h>
#include <linux/workqueue.h>
#include <linux/delay.h>
#include <linux/moduleparam.h>
#include <linux/sysfs.h>
#include <xen/xen.h>
#include <xen/features.h>
#include <xen/grant_table.h>
#include <xen/page.h>
#include <xen/xen-ops.h>
#include <asm/xen/hypercall.h>

#include "gntsock.h"
#include "grant.h"
#include "xen_revoke.h"

enum gntsock_gin_state {
	GIN_QUEUED,	/* in the socket's receive queue */
	GIN_DELIVERED,	/* the application got its cmsg */
	GIN_MAPPED,	/* mapped into a VMA */
	GIN_UNMAPPED,	/* was mapped, no more: release pending */
	GIN_DEAD,	/* revoked or link gone; the granter knows */
	GIN_FREE,	/* released */
};

/**
 * struct gntsock_gin - a grant this kernel received
 * @kref: the socket's list, the receive queue entry and the VMA
 * @hnode: entry in gntsock_gin_hash while the granter may revoke it
 * @sock_node: entry in the owner's gntsock_grants.in
 * @link: the link it came on, reference held
 * @owner: the socket's grants, NULL once released
 * @sk: the socket, valid while @owner is set
 * @id: the granter's id
 * @npages: pages
 * @writable: may be mapped writable
 * @state: enum gntsock_gin_state, under gntsock_grant_lock; GIN_MAPPED
 *	may lag behind @mapped (the notifier does not take that lock)
 * @map_lock: protects @mapped and the mapping (@handles, @repl, the
 *	zap); the only lock the MMU notifier takes; nothing allocates or
 *	takes another lock under it
 * @mapped: the grant is mapped now
 * @unmap_ops: @npages unmap operations, allocated at mmap()
 * @unmap_idx: @npages indexes into @handles, allocated at mmap()
 * @gone: @npages flags, which replacement pages Xen released
 * @held_node: entry in gntsock_held_list while its @pages wait for
 *	their last references (the rest of the record is freed by then)
 * @held_age: polls of @held_node so far
 * @vmas: VMAs pointing at this grant (mremap copies)
 * @notifier: unmaps before the kernel zaps the range
 * @notifier_live: @notifier is registered
 * @start: user address of the mapping
 * @map_flags: GNTMAP_* flags of the mapping
 * @pte: per page, the host_addr of its mapping: machine address of the
 *	user PTE (PV), or guest physical address of @pages[i]
 *	(auto-translated)
 * @handles: grant handles of the mapping
 * @pages: auto-translated only: the unpopulated pages whose frames hold
 *	the grant, inserted into the VMA; NULL on PV
 * @zap_work: auto-translated only: zaps the VMA after an unmap that the
 *	application did not ask for
 * @zap_mm: the mm to zap, held (mmgrab) while @zap_work is pending
 * @zap_event: @zap_work queues the revoke event once the range is zapped
 * @repl: replacement pages of a revocable mapping, NULL for a plain one;
 *	a read-only grant has one page, in @repl[0]
 * @nrepl: pages in @repl
 * @refs: the granter's references
 */
struct gntsock_gin {
	struct kref kref;
	struct hlist_node hnode;
	struct list_head sock_node;
	struct gntsock_link *link;
	struct gntsock_grants *owner;
	struct sock *sk;
	u32 id;
	u32 npages;
	bool writable;
	int state;
	struct mutex map_lock;	/* see @map_lock above */
	bool mapped;
	struct gnttab_unmap_grant_ref *unmap_ops;
	u32 *unmap_idx;
	bool *gone;
	struct list_head held_node;
	unsigned int held_age;
	unsigned int vmas;
	struct mmu_interval_notifier notifier;
	bool notifier_live;
	unsigned long start;
	u32 map_flags;
	u64 *pte;
	grant_handle_t *handles;
	struct page **pages;
	struct work_struct zap_work;
	struct mm_struct *zap_mm;
	bool zap_event;
	struct page **repl;
	u32 nrepl;
	grant_ref_t refs[];
};

static DEFINE_HASHTABLE(gntsock_gin_hash, 8);
static struct workqueue_struct *gntsock_gin_wq;

/* Auto-translated pages of freed grants that someone still references. */
static LIST_HEAD(gntsock_held_list);
static DEFINE_SPINLOCK(gntsock_held_lock);
static bool gntsock_held_stopped;
static void gntsock_held_fn(struct work_struct *work);
static DECLARE_DELAYED_WORK(gntsock_held_work, gntsock_held_fn);

/* Poll delay of held pages: grows by 10 ms per poll, up to 1 s. */
#define GNTSOCK_HELD_STEP_MS	10
#define GNTSOCK_HELD_MAX_MS	1000

/* Testing the granter's quarantine and forced revoke end to end: writing
 * N here (root only) makes this kernel ignore the next N GRANT_REVOKE
 * messages, or losses of a link under a mapped grant, as a peer kernel
 * that does not cooperate would. Reads back what is left.
 */
static int gntsock_fault_ignore_revoke;
module_param_named(fault_ignore_revoke, gntsock_fault_ignore_revoke, int,
		   0600);
MODULE_PARM_DESC(fault_ignore_revoke,
		 "testing: ignore the next N grant revokes or link losses (0: off)");

/* fault_ignore_revoke: should this revoke (@what) of @gin be ignored? */
static bool gntsock_gin_stubborn(struct gntsock_gin *gin, const char *what)
{
	if (READ_ONCE(gntsock_fault_ignore_revoke) <= 0)
		return false;
	WRITE_ONCE(gntsock_fault_ignore_revoke,
		   gntsock_fault_ignore_revoke - 1);
	pr_info("gntsock: ignoring the %s of grant %u from domain %u (fault_ignore_revoke)\n",
		what, gin->id, gin->link->peer);
	return true;
}

/* Testing the revocable-only mark end to end: writing N here (root only)
 * makes this kernel map the next N grants plainly, as a kernel without
 * revocable maps would; a hypervisor with the extension must refuse.
 */
static int gntsock_fault_plain_map;
module_param_named(fault_plain_map, gntsock_fault_plain_map, int, 0600);
MODULE_PARM_DESC(fault_plain_map,
		 "testing: map the next N received grants plainly (0: off)");

/* Testing the per-link negotiation: "0" makes this domain tell peers on
 * links that connect from now on that it cannot map revocably, as a PV
 * domain whose grant maps need IOMMU mappings must; it then gets plain
 * grants and maps them plainly. "auto" (default) tells them what the
 * hypervisor allows.
 */
static bool gntsock_revocable_map_off;

static int gntsock_revocable_map_set(const char *val,
				     const struct kernel_param *kp)
{
	if (sysfs_streq(val, "auto"))
		WRITE_ONCE(gntsock_revocable_map_off, false);
	else if (sysfs_streq(val, "0"))
		WRITE_ONCE(gntsock_revocable_map_off, true);
	else
		return -EINVAL;
	return 0;
}

static int gntsock_revocable_map_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n",
			  READ_ONCE(gntsock_revocable_map_off) ? "0" : "auto");
}

static const struct kernel_param_ops gntsock_revocable_map_ops = {
	.set = gntsock_revocable_map_set,
	.get = gntsock_revocable_map_get,
};
module_param_cb(revocable_map, &gntsock_revocable_map_ops, NULL, 0600);
MODULE_PARM_DESC(revocable_map,
		 "testing: auto (default) or 0: tell peers on links connecting from now on that this domain cannot map grants revocably");

/**
 * gntsock_grant_map_revocable() - may peers grant us revocable-only grants?
 *
 * What a link tells its peer when it connects: true when the hypervisor
 * lets this domain map grants revocably (gntsock_xen_map_revocable_supported())
 * and the revocable_map parameter is "auto". The grants of that link are
 * then mapped revocably, otherwise plainly.
 *
 * Return: true if this domain maps revocably on links connecting now.
 */
bool gntsock_grant_map_revocable(void)
{
	return !READ_ONCE(gntsock_revocable_map_off) &&
		gntsock_xen_map_revocable_supported();
}

static struct gntsock_gin *gntsock_gin_find(struct gntsock_link *link, u32 id)
{
	struct gntsock_gin *gin;

	hash_for_each_possible(gntsock_gin_hash, gin, hnode, id)
		if (gin->id == id && gin->link == link)
			return gin;
	return NULL;
}

/* The grant @id this socket received: a live one before a dead one, as
 * the granter may reuse the id of a grant we answered for (a dead one stays
 * listed, so that a late mmap() of it gets ENOLINK). Skips queued ones
 * unless @queued. gntsock_grant_lock held.
 */
static struct gntsock_gin *gntsock_gin_lookup(struct gntsock_grants *gs,
					      u32 id, bool queued)
{
	struct gntsock_gin *gin, *dead = NULL;

	lockdep_assert_held(&gntsock_grant_lock);
	list_for_each_entry(gin, &gs->in, sock_node) {
		if (gin->id != id || (!queued && gin->state == GIN_QUEUED))
			continue;
		if (gin->state != GIN_DEAD)
			return gin;
		dead = dead ?: gin;
	}
	return dead;
}

/* Does anyone but the pool (one reference each) hold one of @pages? */
static bool gntsock_pages_referenced(struct page **pages, u32 n)
{
	u32 i;

	for (i = 0; i < n; i++)
		if (page_count(pages[i]) > 1)
			return true;
	return false;
}

static void gntsock_held_kick(unsigned int age)
{
	unsigned int ms = min(GNTSOCK_HELD_STEP_MS * (age + 1),
			      GNTSOCK_HELD_MAX_MS);

	if (!READ_ONCE(gntsock_held_stopped))
		queue_delayed_work(gntsock_gin_wq, &gntsock_held_work,
				   msecs_to_jiffies(ms));
}

/* Return held pages to the pool and free their record. */
static void gntsock_held_free(struct gntsock_gin *gin)
{
	xen_free_unpopulated_pages(gin->npages, gin->pages);
	atomic_dec(&gntsock_grant_stats.in_held);
	atomic_sub(gin->npages, &gntsock_grant_stats.in_held_pages);
	kvfree(gin->pages);
	kvfree(gin);
}

/* Poll the held pages; free those whose references are gone. */
static void gntsock_held_fn(struct work_struct *work)
{
	struct gntsock_gin *gin, *tmp;
	unsigned int age = 0;
	LIST_HEAD(done);
	bool more;

	spin_lock(&gntsock_held_lock);
	list_for_each_entry_safe(gin, tmp, &gntsock_held_list, held_node) {
		if (gntsock_pages_referenced(gin->pages, gin->npages)) {
			age = max(age, ++gin->held_age);
			continue;
		}
		list_move(&gin->held_node, &done);
	}
	more = !list_empty(&gntsock_held_list);
	spin_unlock(&gntsock_held_lock);
	list_for_each_entry_safe(gin, tmp, &done, held_node)
		gntsock_held_free(gin);
	if (more)
		gntsock_held_kick(age);
}

/* Auto-translated: give the unpopulated pages back, unless Xen may still
 * have a grant at one of their frames (an unmap failed): those are leaked.
 * Pages someone still references (vmsplice(), O_DIRECT) are held back:
 * return true, and the caller puts the record on gntsock_held_list.
 */
static bool gntsock_gin_free_pages(struct gntsock_gin *gin)
{
	u32 i;

	if (!gin->pages)
		return false;
	for (i = 0; gin->handles && i < gin->npages; i++) {
		if (gin->handles[i] != INVALID_GRANT_HANDLE) {
			pr_warn_ratelimited("gntsock: grant %u of domain %u: frames still mapped, pages not freed\n",
					    gin->id, gin->link->peer);
			return false;
		}
	}
	if (gntsock_pages_referenced(gin->pages, gin->npages)) {
		atomic_inc(&gntsock_grant_stats.in_held);
		atomic_add(gin->npages, &gntsock_grant_stats.in_held_pages);
		atomic64_inc(&gntsock_grant_stats.in_held_total);
		return true;
	}
	xen_free_unpopulated_pages(gin->npages, gin->pages);
	kvfree(gin->pages);
	gin->pages = NULL;
	return false;
}

static void gntsock_gin_free(struct kref *kref)
{
	struct gntsock_gin *gin = container_of(kref, struct gntsock_gin, kref);
	/* No VMA is left: no user PTE points at the pages any more. */
	bool held = gntsock_gin_free_pages(gin);

	gntsock_link_put(gin->link);
	kvfree(gin->pte);
	kvfree(gin->handles);
	kvfree(gin->repl);
	kvfree(gin->unmap_ops);
	kvfree(gin->unmap_idx);
	kvfree(gin->gone);
	mutex_destroy(&gin->map_lock);
	if (!held) {
		kvfree(gin);
		return;
	}
	/* A held record keeps only @pages, @npages and @held_*. */
	gin->held_age = 0;
	spin_lock(&gntsock_held_lock);
	list_add_tail(&gin->held_node, &gntsock_held_list);
	spin_unlock(&gntsock_held_lock);
	gntsock_held_kick(0);
}

static void gntsock_gin_put(struct gntsock_gin *gin)
{
	kref_put(&gin->kref, gntsock_gin_free);
}

static void gntsock_send_release(struct gntsock_link *link, u32 id, u16 flags)
{
	struct gntsock_msg_hdr h = {
		.op = GNTSOCK_OP_GRANT_RELEASE,
		.type = GNTSOCK_TYPE_STREAM,
		.flags = flags,
		.grant_id = id,
	};

	gntsock_link_send_ctl(link, &h);
}

/* Free the replacement pages whose mappings are gone. @gone: NULL when
 * none of them is mapped any more, otherwise which pages Xen released (a
 * page Xen may still reference is leaked, never reused).
 */
static void gntsock_gin_free_repl(struct gntsock_gin *gin, const bool *gone)
{
	u32 i, kept = 0;

	if (!gin->repl)
		return;
	for (i = 0; i < gin->nrepl; i++) {
		if (gone && !gone[i]) {
			kept++;
			continue;
		}
		if (gin->repl[i])
			__free_page(gin->repl[i]);
	}
	if (kept)
		pr_warn_ratelimited("gntsock: grant %u of domain %u: %u replacement pages still referenced, not freed\n",
				    gin->id, gin->link->peer, kept);
	kvfree(gin->repl);
	gin->repl = NULL;
	gin->nrepl = 0;
}

/* Unmap the pages of @gin whose handle is valid. Works for plain and
 * revocable mappings, revoked or not. Return: pages that failed.
 */
static u32 gntsock_gin_unmap_pages(struct gntsock_gin *gin)
{
	struct gnttab_unmap_grant_ref *ops = gin->unmap_ops;
	bool *gone = NULL;
	u32 *idx = gin->unmap_idx;
	u32 i, n = 0, bad = 0;

	/* The arrays come from mmap(): nothing here allocates. */
	memset(ops, 0, gin->npages * sizeof(*ops));
	for (i = 0; i < gin->npages; i++) {
		if (gin->handles[i] == INVALID_GRANT_HANDLE)
			continue;
		idx[n] = i;
		/* PTE machine address (PV) or guest physical address. */
		ops[n].host_addr = gin->pte[i];
		ops[n].handle = gin->handles[i];
		/* Stays so for an entry Xen did not process. */
		ops[n++].status = GNTST_general_error;
	}
	/* Each status counts, even when the call as a whole failed. */
	if (n)
		HYPERVISOR_grant_table_op(GNTTABOP_unmap_grant_ref, ops, n);
	if (gin->repl)
		gone = gin->gone;
	for (i = 0; gone && i < gin->nrepl; i++)
		gone[i] = true;
	for (i = 0; i < n; i++) {
		if (ops[i].status == GNTST_okay) {
			gin->handles[idx[i]] = INVALID_GRANT_HANDLE;
			continue;
		}
		bad++;
		if (gone)
			gone[gin->nrepl == 1 ? 0 : idx[i]] = false;
	}
	gntsock_gin_free_repl(gin, gone);
	return bad;
}

/* Undo the mapping: map_lock held, @mapped set. */
static void gntsock_gin_unmap(struct gntsock_gin *gin)
{
	u32 bad;

	lockdep_assert_held(&gin->map_lock);
	lockdep_assert_held(&gin->map_lock);
	bad = gntsock_gin_unmap_pages(gin);
	if (bad)
		pr_warn_ratelimited("gntsock: unmapping grant %u of domain %u: %u pages failed\n",
				    gin->id, gin->link->peer, bad);
	WRITE_ONCE(gin->mapped, false);
	atomic64_inc(&gntsock_grant_stats.unmapped);
	atomic_dec(&gntsock_grant_stats.in_mapped);
}

/* gntsock_grant_lock held: catch up with an unmap by the notifier. */
static void gntsock_gin_sync_state(struct gntsock_gin *gin)
{
	lockdep_assert_held(&gntsock_grant_lock);
	lockdep_assert_held(&gntsock_grant_lock);
	if (gin->state == GIN_MAPPED && !READ_ONCE(gin->mapped))
		gin->state = GIN_UNMAPPED;
}

static void gntsock_gin_unhash(struct gntsock_gin *gin)
{
	struct gntsock_peer_acct *pa;

	if (hlist_unhashed(&gin->hnode))
		return;
	hash_del(&gin->hnode);
	pa = gntsock_peer_acct(gin->link->peer);
	if (pa)
		pa->in_grants--;
	atomic_dec(&gntsock_grant_stats.in_grants);
}

/* Drop the socket's reference: gntsock_grant_lock held. */
static void gntsock_gin_detach(struct gntsock_gin *gin)
{
	lockdep_assert_held(&gntsock_grant_lock);
	if (!gin->owner)
		return;
	list_del_init(&gin->sock_node);
	gin->owner->in_pages -= gin->npages;
	gin->owner = NULL;
	gin->sk = NULL;
	gntsock_gin_put(gin);
}

/* The application is done (release or close): tell the granter unless it
 * knows already. gntsock_grant_lock held; the grant is not mapped.
 */
static void gntsock_gin_release(struct gntsock_gin *gin, u16 flags)
{
	lockdep_assert_held(&gntsock_grant_lock);
	if (!hlist_unhashed(&gin->hnode)) {
		gntsock_send_release(gin->link, gin->id, flags);
		gntsock_gin_unhash(gin);
	}
	gin->state = GIN_FREE;
	gntsock_gin_detach(gin);
}

/**
 * gntsock_grant_in_new() - a GRANT message arrived for a socket
 * @link: the link
 * @sk: the socket it is for, locked
 * @gs: the socket's grants
 * @h: the validated header; the payload is still in the ring
 * @accept: the socket can take it (connected, being read)
 *
 * Return: the new record for the receive queue (one reference for the
 * queue entry), or NULL if refused (the granter is told) or invalid (a
 * counted violation resets the link).
 */
struct gntsock_gin *gntsock_grant_in_new(struct gntsock_link *link,
					 struct sock *sk,
					 struct gntsock_grants *gs,
					 const struct gntsock_msg_hdr *h,
					 bool accept)
{
	struct gntsock_grant_msg *m;
	struct gntsock_peer_acct *pa;
	struct gntsock_gin *gin = NULL;

	m = kmalloc(h->len, GFP_KERNEL);
	if (!m) {
		/* Our memory ran short, the peer did nothing wrong: refuse
		 * this grant (the granter ends it), as when the record below
		 * cannot be allocated; no violation, no link reset.
		 */
		struct gntsock_grant_msg id;

		atomic64_inc(&gntsock_grant_stats.refused);
		if (h->len < sizeof(id))
			return NULL;
		gntsock_link_rx_payload(link, &id, sizeof(id));
		/* (id 0 is no grant: a release of it would be a violation) */
		if (id.id)
			gntsock_send_release(link, id.id, GNTSOCK_REL_REFUSED);
		return NULL;
	}
	gntsock_link_rx_payload(link, m, h->len);
	if (gntsock_grant_payload_validate(m, h->len) != GNTSOCK_V_NONE) {
		atomic64_inc(&gntsock_grant_stats.violations);
		gntsock_link_violation(link, GNTSOCK_V_GRANT);
		goto out;
	}
	mutex_lock(&gntsock_grant_lock);
	if (gntsock_gin_find(link, m->id)) {
		mutex_unlock(&gntsock_grant_lock);
		atomic64_inc(&gntsock_grant_stats.violations);
		gntsock_link_violation(link, GNTSOCK_V_GRANT);
		goto out;
	}
	pa = gntsock_peer_acct(link->peer);
	/* The id of a dead grant the application has not released yet is
	 * still taken on this socket: a new grant under it would make
	 * mmap() and GNTSOCK_IOC_RELEASE ambiguous. Refused, as when full.
	 */
	if (!accept || !pa ||
	    gs->in_pages + m->npages >
	    READ_ONCE(gntsock_grant_limits.max_in_pages_sock) ||
	    gntsock_gin_lookup(gs, m->id, true)) {
		mutex_unlock(&gntsock_grant_lock);
		atomic64_inc(&gntsock_grant_stats.refused);
		gntsock_send_release(link, m->id, GNTSOCK_REL_REFUSED);
		goto out;
	}
	gin = kvzalloc(struct_size(gin, refs, m->npages), GFP_KERNEL);
	if (!gin) {
		mutex_unlock(&gntsock_grant_lock);
		gntsock_send_release(link, m->id, GNTSOCK_REL_REFUSED);
		goto out;
	}
	mutex_init(&gin->map_lock);
	kref_init(&gin->kref);		/* the socket's list */
	kref_get(&gin->kref);		/* the receive queue entry */
	kref_get(&link->kref);
	gin->link = link;
	gin->id = m->id;
	gin->npages = m->npages;
	gin->writable = h->flags & GNTSOCK_GRANT_F_WRITABLE;
	memcpy(gin->refs, m->refs, m->npages * sizeof(m->refs[0]));
	gin->state = GIN_QUEUED;
	hash_add(gntsock_gin_hash, &gin->hnode, gin->id);
	pa->in_grants++;
	atomic_inc(&gntsock_grant_stats.in_grants);
	gin->owner = gs;
	gin->sk = sk;
	list_add_tail(&gin->sock_node, &gs->in);
	gs->in_pages += gin->npages;
	mutex_unlock(&gntsock_grant_lock);
out:
	kfree(m);
	return gin;
}

/**
 * gntsock_grant_in_deliver() - recvmsg() reached a queued grant
 * @gin: the grant; the queue entry's reference is dropped
 * @msg: gets the %GNTSOCK_CMSG_GRANT_INFO cmsg
 *
 * A grant revoked while queued delivers nothing (its owner has the
 * event). Without room for the cmsg the grant is released at once and
 * MSG_CTRUNC set, as SCM_RIGHTS does with file descriptors. Called without
 * the socket's lock: writing the cmsg may fault for long.
 */
void gntsock_grant_in_deliver(struct gntsock_gin *gin, struct msghdr *msg)
{
	struct gntsock_grant_info info;
	int trunc = msg->msg_flags & MSG_CTRUNC;
	bool deliver;
	int err = 0;

	/* put_cmsg() may fault (mmap_lock): not under gntsock_grant_lock. */
	mutex_lock(&gntsock_grant_lock);
	deliver = gin->state == GIN_QUEUED;
	if (deliver)
		gin->state = GIN_DELIVERED;
	info.id = gin->id;
	info.flags = gin->writable ? GNTSOCK_GRANT_WRITABLE : 0;
	info.len = (u64)gin->npages << PAGE_SHIFT;
	mutex_unlock(&gntsock_grant_lock);
	if (deliver)
		err = put_cmsg(msg, SOL_GNTSOCK, GNTSOCK_CMSG_GRANT_INFO,
			       sizeof(info), &info);
	if (deliver && (err || (!trunc && (msg->msg_flags & MSG_CTRUNC)))) {
		mutex_lock(&gntsock_grant_lock);
		if (gin->state == GIN_DELIVERED)
			gntsock_gin_release(gin, 0);
		mutex_unlock(&gntsock_grant_lock);
	}
	gntsock_gin_put(gin);
}

/**
 * gntsock_grant_in_drop() - a queued grant's entry is purged unread
 * @gin: the grant; the queue entry's reference is dropped
 */
void gntsock_grant_in_drop(struct gntsock_gin *gin)
{
	mutex_lock(&gntsock_grant_lock);
	if (gin->state == GIN_QUEUED || gin->state == GIN_DEAD)
		gntsock_gin_release(gin, 0);
	mutex_unlock(&gntsock_grant_lock);
	gntsock_gin_put(gin);
}

static const struct vm_operations_struct gntsock_gin_vmops;

/* Auto-translated: empty the VMAs of a grant unmapped behind the
 * application's back, so that they fault as on PV instead of showing
 * unpopulated frames. Not under gntsock_grant_lock: zapping calls our
 * notifier, which takes it.
 */
static void gntsock_gin_zap(struct work_struct *work)
{
	struct gntsock_gin *gin = container_of(work, struct gntsock_gin,
					       zap_work);
	struct mm_struct *mm = gin->zap_mm;
	struct vm_area_struct *vma;

	if (mmget_not_zero(mm)) {
		VMA_ITERATOR(vmi, mm, 0);

		mmap_read_lock(mm);
		for_each_vma(vmi, vma)
			if (vma->vm_ops == &gntsock_gin_vmops &&
			    vma->vm_private_data == gin)
				zap_page_range(vma, vma->vm_start,
					       vma->vm_end - vma->vm_start);
		mmap_read_unlock(mm);
		mmput(mm);
	}
	mmdrop(mm);
	/* A revoke's event follows the zap: the range faults by then. */
	mutex_lock(&gntsock_grant_lock);
	if (gin->zap_event && gin->sk)
		gntsock_grant_event(gin->sk, gin->owner, GNTSOCK_EV_REVOKED, gin->id, 0,
				    gin->npages);
	gin->zap_event = false;
	mutex_unlock(&gntsock_grant_lock);
	gntsock_gin_put(gin);
}

/* Undo the mapping, and on an auto-translated guest have its VMAs zapped
 * (a munmap zaps them anyway; the work then finds none). map_lock held,
 * @mapped set. Return: a zap is pending.
 */
static bool gntsock_gin_unmap_zap(struct gntsock_gin *gin)
{
	lockdep_assert_held(&gin->map_lock);
	gntsock_gin_unmap(gin);
	if (!gin->pages || !READ_ONCE(gin->notifier_live))
		return false;
	gin->zap_mm = gin->notifier.mm;
	mmgrab(gin->zap_mm);
	kref_get(&gin->kref);
	INIT_WORK(&gin->zap_work, gntsock_gin_zap);
	queue_work(gntsock_gin_wq, &gin->zap_work);
	return true;
}

static bool gntsock_gin_invalidate(struct mmu_interval_notifier *mn,
				   const struct mmu_notifier_range *range,
				   unsigned long cur_seq)
{
	struct gntsock_gin *gin = container_of(mn, struct gntsock_gin,
					       notifier);

	if (!mmu_notifier_range_blockable(range))
		return false;
	/* Only map_lock: gntsock_grant_lock is held across allocations,
	 * and reclaim may call us. Nothing below allocates.
	 */
	mutex_lock(&gin->map_lock);
	mmu_interval_set_seq(mn, cur_seq);
	if (gin->mapped)
		gntsock_gin_unmap_zap(gin);
	mutex_unlock(&gin->map_lock);
	return true;
}

/* gntsock_grant_lock held: unmap (and zap) unless the notifier did.
 * Return: a zap is pending.
 */
static bool gntsock_gin_take_down(struct gntsock_gin *gin)
{
	bool zap = false;

	lockdep_assert_held(&gntsock_grant_lock);
	lockdep_assert_held(&gntsock_grant_lock);
	mutex_lock(&gin->map_lock);
	if (gin->mapped)
		zap = gntsock_gin_unmap_zap(gin);
	mutex_unlock(&gin->map_lock);
	gntsock_gin_sync_state(gin);
	return zap;
}

static const struct mmu_interval_notifier_ops gntsock_gin_mn_ops = {
	.invalidate = gntsock_gin_invalidate,
};

static void gntsock_gin_vma_open(struct vm_area_struct *vma)
{
	struct gntsock_gin *gin = vma->vm_private_data;

	mutex_lock(&gntsock_grant_lock);
	gin->vmas++;
	kref_get(&gin->kref);
	mutex_unlock(&gntsock_grant_lock);
}

static void gntsock_gin_vma_close(struct vm_area_struct *vma)
{
	struct gntsock_gin *gin = vma->vm_private_data;
	bool remove = false;

	mutex_lock(&gntsock_grant_lock);
	if (!--gin->vmas && gin->notifier_live) {
		WRITE_ONCE(gin->notifier_live, false);
		remove = true;
	}
	mutex_unlock(&gntsock_grant_lock);
	if (remove)
		mmu_interval_notifier_remove(&gin->notifier);
	gntsock_gin_put(gin);
}

static vm_fault_t gntsock_gin_fault(struct vm_fault *vmf)
{
	/* Only an unmapped (munmap'd part, revoked) grant faults. */
	return VM_FAULT_SIGBUS;
}

static int gntsock_gin_may_split(struct vm_area_struct *vma,
				 unsigned long addr)
{
	return -EINVAL;
}

/* A grant VMA does not move: the notifier's interval is registered for
 * its range, and moving the page tables has already unmapped the grant
 * (the notifier ran for the old range). mremap() fails with EINVAL and
 * the VMA stays where it was, empty: it faults (SIGBUS) like a revoked
 * one. A copy (old_len 0) fails the same way. @vma is the new VMA, which
 * holds the moved page tables until they are moved back: on an
 * auto-translated guest they are emptied here (mmap_lock is held for
 * writing), so that the old range faults as soon as mremap() returns,
 * not only once the zap work has run.
 */
static int gntsock_gin_mremap(struct vm_area_struct *vma)
{
	struct gntsock_gin *gin = vma->vm_private_data;

	if (gin->pages)
		zap_page_range(vma, vma->vm_start, vma->vm_end - vma->vm_start);
	return -EINVAL;
}

static const struct vm_operations_struct gntsock_gin_vmops = {
	.open = gntsock_gin_vma_open,
	.close = gntsock_gin_vma_close,
	.fault = gntsock_gin_fault,
	.may_split = gntsock_gin_may_split,
	.mremap = gntsock_gin_mremap,
};

struct gntsock_pte_walk {
	struct gntsock_gin *gin;
	unsigned long start;
};

static int gntsock_gin_find_pte(pte_t *pte, unsigned long addr, void *data)
{
	struct gntsock_pte_walk *w = data;

	w->gin->pte[(addr - w->start) >> PAGE_SHIFT] =
		arbitrary_virt_to_machine(pte).maddr;
	return 0;
}

/* Zeroed replacement pages: one per page, or one shared if read-only. */
static int gntsock_gin_alloc_repl(struct gntsock_gin *gin, bool readonly)
{
	u32 i, n = readonly ? 1 : gin->npages;

	gin->repl = kvcalloc(n, sizeof(*gin->repl), GFP_KERNEL);
	if (!gin->repl)
		return -ENOMEM;
	gin->nrepl = n;
	for (i = 0; i < n; i++) {
		gin->repl[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!gin->repl[i]) {
			gntsock_gin_free_repl(gin, NULL);
			return -ENOMEM;
		}
	}
	return 0;
}

/* Longest delay between retries of a map Xen answers GNTST_eagain (a
 * paged-out frame), in ms; the delays grow by 1 ms from 1 ms.
 */
#define GNTSOCK_MAP_EAGAIN_MS	64

/* Retry one map op Xen answered GNTST_eagain for, as gnttab_batch_map()
 * does, but without its BUG() when the hypercall itself fails.
 */
static void gntsock_gin_map_retry(unsigned int cmd, void *op, s16 *status)
{
	unsigned int delay = 1;

	while (*status == GNTST_eagain && delay < GNTSOCK_MAP_EAGAIN_MS) {
		msleep(delay++);
		if (HYPERVISOR_grant_table_op(cmd, op, 1))
			*status = GNTST_general_error;
	}
	if (*status == GNTST_eagain)
		*status = GNTST_bad_page;
}

/* Map every page revocably and set the handles of those that mapped. The
 * per-page statuses count even when the hypercall as a whole fails (Xen
 * may have mapped the pages before the one it failed on): an entry it did
 * not process keeps GNTST_general_error. Return: pages mapped.
 */
static u32 gntsock_gin_map_revocable(struct gntsock_gin *gin)
{
	bool ro = gin->map_flags & GNTMAP_readonly;
	struct gnttab_map_revocable *ops;
	u32 i, ok = 0;
	int rc;

	if (gntsock_gin_alloc_repl(gin, ro))
		return 0;
	ops = kvcalloc(gin->npages, sizeof(*ops), GFP_KERNEL);
	if (!ops) {
		gntsock_gin_free_repl(gin, NULL);
		return 0;
	}
	for (i = 0; i < gin->npages; i++) {
		struct page *repl = gin->repl[ro ? 0 : i];

		ops[i].host_addr = gin->pte[i];
		/* An MFN (PV) or a GFN (auto-translated). */
		ops[i].replace_frame = xen_page_to_gfn(repl);
		ops[i].flags = gin->map_flags;
		ops[i].ref = gin->refs[i];
		ops[i].dom = gin->link->peer;
		ops[i].status = GNTST_general_error;
	}
	rc = HYPERVISOR_grant_table_op(GNTTABOP_map_revocable, ops,
				       gin->npages);
	for (i = 0; i < gin->npages; i++) {
		gntsock_gin_map_retry(GNTTABOP_map_revocable, &ops[i],
				      &ops[i].status);
		if (ops[i].status == GNTST_okay) {
			gin->handles[i] = ops[i].handle;
			ok++;
		}
	}
	if (rc)
		pr_warn_ratelimited("gntsock: revocable map of grant %u of domain %u: hypercall failed (%d), %u of %u pages mapped\n",
				    gin->id, gin->link->peer, rc, ok,
				    gin->npages);
	kvfree(ops);
	return ok;
}

/* Map every page the ordinary way; as gntsock_gin_map_revocable(). */
static u32 gntsock_gin_map_plain(struct gntsock_gin *gin)
{
	struct gnttab_map_grant_ref *ops;
	u32 i, ok = 0;
	int rc;

	ops = kvcalloc(gin->npages, sizeof(*ops), GFP_KERNEL);
	if (!ops)
		return 0;
	for (i = 0; i < gin->npages; i++) {
		/* PTE machine address (PV) or guest physical address. */
		ops[i].host_addr = gin->pte[i];
		ops[i].flags = gin->map_flags;
		ops[i].ref = gin->refs[i];
		ops[i].dom = gin->link->peer;
		ops[i].status = GNTST_general_error;
	}
	rc = HYPERVISOR_grant_table_op(GNTTABOP_map_grant_ref, ops,
				       gin->npages);
	for (i = 0; i < gin->npages; i++) {
		gntsock_gin_map_retry(GNTTABOP_map_grant_ref, &ops[i],
				      &ops[i].status);
		if (ops[i].status == GNTST_okay) {
			gin->handles[i] = ops[i].handle;
			ok++;
		}
	}
	if (rc)
		pr_warn_ratelimited("gntsock: map of grant %u of domain %u: hypercall failed (%d), %u of %u pages mapped\n",
				    gin->id, gin->link->peer, rc, ok,
				    gin->npages);
	kvfree(ops);
	return ok;
}

static int gntsock_gin_map(struct gntsock_gin *gin, struct vm_area_struct *vma)
{
	struct gntsock_pte_walk w = { .gin = gin, .start = vma->vm_start };
	bool revocable;
	u32 i, ok;
	int err;

	if (gin->pages) {
		/* Auto-translated: into the p2m at our unpopulated frames. */
		gin->map_flags = GNTMAP_host_map;
		for (i = 0; i < gin->npages; i++)
			gin->pte[i] = PFN_PHYS((u64)xen_page_to_gfn(gin->pages[i]));
	} else {
		gin->map_flags = GNTMAP_host_map | GNTMAP_application_map |
			GNTMAP_contains_pte | (1 << _GNTMAP_guest_avail0);
		err = apply_to_page_range(vma->vm_mm, vma->vm_start,
					  vma->vm_end - vma->vm_start,
					  gntsock_gin_find_pte, &w);
		if (err)
			return err;
	}
	if (!(vma->vm_flags & VM_WRITE))
		gin->map_flags |= GNTMAP_readonly;
	for (i = 0; i < gin->npages; i++)
		gin->handles[i] = INVALID_GRANT_HANDLE;
	/* As this end told the granter when the link connected: a grant
	 * marked revocable-only cannot be mapped plainly, and only a peer
	 * told that we map revocably marks them.
	 */
	revocable = READ_ONCE(gin->link->map_revocable);
	if (READ_ONCE(gntsock_fault_plain_map) > 0) {
		WRITE_ONCE(gntsock_fault_plain_map,
			   gntsock_fault_plain_map - 1);
		pr_info("gntsock: mapping grant %u of domain %u plainly (fault_plain_map)\n",
			gin->id, gin->link->peer);
		revocable = false;
	}
	if (revocable)
		ok = gntsock_gin_map_revocable(gin);
	else
		ok = gntsock_gin_map_plain(gin);
	if (ok == gin->npages) {
		if (!gin->pages)
			return 0;
		/* The frames hold the grant: show their pages to the user. */
		err = vm_map_pages_zero(vma, gin->pages, gin->npages);
		if (!err)
			return 0;
		/* Pages inserted so far are zapped when mmap fails. */
		gntsock_gin_unmap_pages(gin);
		return err;
	}
	pr_warn_ratelimited("gntsock: mapping grant %u of domain %u failed (%u of %u pages)\n",
			    gin->id, gin->link->peer, gin->npages - ok,
			    gin->npages);
	/* Undo the pages that did map; frees the replacement pages. */
	gntsock_gin_unmap_pages(gin);
	return -EFAULT;
}

/**
 * gntsock_grant_mmap() - map a received grant: mmap(2) on the socket
 * @sk: the socket
 * @gs: its grants
 * @vma: offset = grant id * page size, length = the grant's length,
 *	MAP_SHARED
 *
 * Return: 0; -ENOENT for no such grant on this socket; -EBUSY if it was
 * mapped before (once only); -ENOLINK if revoked; -EINVAL for a wrong
 * length or a private mapping; -EACCES for PROT_WRITE on a read-only
 * grant; -EOPNOTSUPP outside an x86 PV or auto-translated (PVH, HVM)
 * domain; -ENOMEM; -EFAULT if Xen refused the map.
 */
int gntsock_grant_mmap(struct sock *sk, struct gntsock_grants *gs,
		       struct vm_area_struct *vma)
{
	bool hvm = xen_feature(XENFEAT_auto_translated_physmap);
	struct gntsock_gin *gin;
	int err;

	if (!xen_pv_domain() && !hvm)
		return -EOPNOTSUPP;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	mutex_lock(&gntsock_grant_lock);
	gin = vma->vm_pgoff > U32_MAX ? NULL :
	      gntsock_gin_lookup(gs, vma->vm_pgoff, true);
	err = -ENOENT;
	if (!gin || gin->state == GIN_QUEUED)
		goto out;
	err = -ENOLINK;
	if (gin->state == GIN_DEAD)
		goto out;
	err = -EBUSY;
	if (gin->state != GIN_DELIVERED)
		goto out;
	err = -EINVAL;
	if (vma_pages(vma) != gin->npages)
		goto out;
	err = -EACCES;
	if (!gin->writable && (vma->vm_flags & VM_WRITE))
		goto out;
	err = -ENOMEM;
	if (!gin->pte)
		gin->pte = kvcalloc(gin->npages, sizeof(*gin->pte), GFP_KERNEL);
	if (!gin->handles) {
		gin->handles = kvmalloc_array(gin->npages,
					      sizeof(*gin->handles),
					      GFP_KERNEL);
		if (gin->handles)
			memset(gin->handles, 0xff,
			       gin->npages * sizeof(*gin->handles));
	}
	/* The unmap, which the notifier may do, allocates nothing. */
	if (!gin->unmap_ops)
		gin->unmap_ops = kvcalloc(gin->npages, sizeof(*gin->unmap_ops),
					  GFP_KERNEL);
	if (!gin->unmap_idx)
		gin->unmap_idx = kvcalloc(gin->npages, sizeof(*gin->unmap_idx),
					  GFP_KERNEL);
	if (!gin->gone)
		gin->gone = kvcalloc(gin->npages, sizeof(*gin->gone),
				     GFP_KERNEL);
	if (!gin->pte || !gin->handles || !gin->unmap_ops || !gin->unmap_idx ||
	    !gin->gone)
		goto out;
	if (hvm && !gin->pages) {
		err = -ENOMEM;
		gin->pages = kvcalloc(gin->npages, sizeof(*gin->pages),
				      GFP_KERNEL);
		if (!gin->pages)
			goto out;
		if (xen_alloc_unpopulated_pages(gin->npages, gin->pages)) {
			kvfree(gin->pages);
			gin->pages = NULL;
			goto out;
		}
	}
	/* PV: PTEs of foreign frames; auto-translated: pages inserted by
	 * vm_map_pages_zero() (VM_MIXEDMAP). VM_IO keeps get_user_pages()
	 * off both; get_user_pages_fast() stays off PV's special PTEs only,
	 * hence the held pages (gntsock_gin_free_pages()).
	 */
	vma->vm_flags |= VM_IO | VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP |
			 (hvm ? 0 : VM_PFNMAP);
	if (!(vma->vm_flags & VM_WRITE))
		vma->vm_flags &= ~VM_MAYWRITE;
	err = mmu_interval_notifier_insert_locked(&gin->notifier, vma->vm_mm,
						  vma->vm_start,
						  vma->vm_end - vma->vm_start,
						  &gntsock_gin_mn_ops);
	if (err)
		goto out;
	/* We hold mmap_lock for writing: nothing can zap the range now. */
	mmu_interval_read_begin(&gin->notifier);
	err = gntsock_gin_map(gin, vma);
	if (err) {
		mutex_unlock(&gntsock_grant_lock);
		mmu_interval_notifier_remove(&gin->notifier);
		return err;
	}
	WRITE_ONCE(gin->notifier_live, true);
	gin->start = vma->vm_start;
	mutex_lock(&gin->map_lock);
	gin->mapped = true;
	mutex_unlock(&gin->map_lock);
	gin->state = GIN_MAPPED;
	gin->vmas = 1;
	kref_get(&gin->kref);
	vma->vm_private_data = gin;
	vma->vm_ops = &gntsock_gin_vmops;
	atomic64_inc(&gntsock_grant_stats.mapped);
	if (!gin->repl)
		atomic64_inc(&gntsock_grant_stats.mapped_plain);
	atomic_inc(&gntsock_grant_stats.in_mapped);
out:
	mutex_unlock(&gntsock_grant_lock);
	return err;
}

/**
 * gntsock_grant_release_id() - GNTSOCK_IOC_RELEASE
 * @gs: the socket's grants
 * @id: the grant
 *
 * Return: 0; -ENOENT for no such delivered grant; -EBUSY while mapped.
 */
int gntsock_grant_release_id(struct gntsock_grants *gs, u32 id)
{
	struct gntsock_gin *gin;
	int err = -ENOENT;

	mutex_lock(&gntsock_grant_lock);
	gin = gntsock_gin_lookup(gs, id, false);
	if (gin) {
		gntsock_gin_sync_state(gin);
		err = gin->state == GIN_MAPPED ? -EBUSY : 0;
		if (!err)
			gntsock_gin_release(gin, 0);
	}
	mutex_unlock(&gntsock_grant_lock);
	return err;
}

/* Revoked or link gone: unmap now, forget the id. gntsock_grant_lock held. */
static void gntsock_gin_kill(struct gntsock_gin *gin, bool answer)
{
	bool zap = false;

	lockdep_assert_held(&gntsock_grant_lock);
	if (gin->state == GIN_MAPPED)
		zap = gntsock_gin_take_down(gin);
	if (answer)
		gntsock_send_release(gin->link, gin->id, GNTSOCK_REL_REVOKED);
	gntsock_gin_unhash(gin);
	if (zap)
		gin->zap_event = true;
	else if (gin->sk)
		gntsock_grant_event(gin->sk, gin->owner, GNTSOCK_EV_REVOKED, gin->id, 0,
				    gin->npages);
	gin->state = GIN_DEAD;
}

/**
 * gntsock_grant_in_revoke() - the granter's GRANT_REVOKE
 * @link: the link it came on
 * @h: its validated header
 *
 * Unmaps at once (the user's range then faults with SIGBUS) and answers.
 * An unknown id is normal: our release may have crossed the revoke.
 */
void gntsock_grant_in_revoke(struct gntsock_link *link,
			     const struct gntsock_msg_hdr *h)
{
	struct gntsock_gin *gin;

	mutex_lock(&gntsock_grant_lock);
	gin = gntsock_gin_find(link, h->grant_id);
	if (gin && !gntsock_gin_stubborn(gin, "revoke"))
		gntsock_gin_kill(gin, true);
	mutex_unlock(&gntsock_grant_lock);
}

/**
 * gntsock_grant_in_close() - the socket closes: release what it received
 * @gs: its grants; gntsock_grant_lock held
 *
 * Its mappings are gone already (a VMA keeps the socket's file open).
 */
void gntsock_grant_in_close(struct gntsock_grants *gs)
{
	struct gntsock_gin *gin, *tmp;

	lockdep_assert_held(&gntsock_grant_lock);
	list_for_each_entry_safe(gin, tmp, &gs->in, sock_node) {
		if (gin->state == GIN_MAPPED)
			gntsock_gin_take_down(gin);
		gntsock_gin_release(gin, 0);
	}
}

/**
 * gntsock_grant_in_link_down() - the link is gone: unmap its grants
 * @link: the link; gntsock_grant_lock held
 */
void gntsock_grant_in_link_down(struct gntsock_link *link)
{
	struct gntsock_gin *gin;
	struct hlist_node *tmp;
	int bkt;

	lockdep_assert_held(&gntsock_grant_lock);
	hash_for_each_safe(gntsock_gin_hash, bkt, tmp, gin, hnode) {
		if (gin->link != link)
			continue;
		/* A stubborn kernel keeps the mapping; nothing to answer. */
		gntsock_gin_sync_state(gin);
		if (gin->state == GIN_MAPPED &&
		    gntsock_gin_stubborn(gin, "link loss"))
			gntsock_gin_unhash(gin);
		else
			gntsock_gin_kill(gin, false);
	}
}

/**
 * gntsock_grant_in_init() - module load: the receiving side's work queue
 *
 * Return: 0 or -ENOMEM.
 */
int gntsock_grant_in_init(void)
{
	WRITE_ONCE(gntsock_held_stopped, false);
	gntsock_gin_wq = alloc_workqueue("gntsock_gin", 0, 0);
	return gntsock_gin_wq ? 0 : -ENOMEM;
}

/**
 * gntsock_grant_in_exit() - module unload: wait for pending VMA zaps
 *
 * Held pages still referenced then (a pipe outlives the module) are never
 * returned to the pool: they stay the holder's, and only theirs.
 */
void gntsock_grant_in_exit(void)
{
	struct gntsock_gin *gin, *tmp;
	unsigned int kept = 0;

	flush_workqueue(gntsock_gin_wq);
	WRITE_ONCE(gntsock_held_stopped, true);
	cancel_delayed_work_sync(&gntsock_held_work);
	list_for_each_entry_safe(gin, tmp, &gntsock_held_list, held_node) {
		list_del(&gin->held_node);
		if (!gntsock_pages_referenced(gin->pages, gin->npages)) {
			gntsock_held_free(gin);
			continue;
		}
		kept += gin->npages;
		atomic_dec(&gntsock_grant_stats.in_held);
		atomic_sub(gin->npages, &gntsock_grant_stats.in_held_pages);
		kvfree(gin->pages);
		kvfree(gin);
	}
	if (kept)
		pr_warn("gntsock: %u pages of received grants still referenced at unload, not returned to the pool\n",
			kept);
	destroy_workqueue(gntsock_gin_wq);
}
