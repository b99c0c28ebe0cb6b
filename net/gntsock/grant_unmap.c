// SPDX-License-Identifier: GPL-2.0
/*
 * gntsock grants, receiving side: taking a received grant's mapping down,
 * and freeing the grant. The MMU interval notifier unmaps the grant before
 * anything (munmap, exit, mremap, mprotect) zaps its range; a revoke, the
 * link's end or the socket's close unmaps it through
 * gntsock_gin_take_down(), and on an auto-translated guest a work item
 * then zaps its VMAs, so that they fault (SIGBUS) as on PV. The VMA's
 * operations keep it from being split or moved, and fault once it is
 * empty. Mapping it: grant_map.c.
 *
 * The record is freed with its last reference. On an auto-translated
 * guest the grant's frames are ordinary pages in ordinary PTEs, so
 * get_user_pages_fast() (vmsplice(), O_DIRECT) can take references that
 * outlive the VMA, as with gntdev's pages; a page still referenced then
 * would come back from the pool for the next mapping, and the holder would
 * see that grant, perhaps another domain's memory. So the grant itself is
 * unmapped at once (the granter gets its page back and a forced revoke is
 * not held up: the holder sees an empty frame), but pages with references
 * left are held back on a list that a work item polls, as
 * gnttab_unmap_refs_async() polls page_count(), and freed when the last
 * reference is gone (in_held, in_held_total).
 *
 * Locking: the MMU notifier takes only the grant's own map_lock, a
 * spinlock never held while allocating (the unmap arrays are allocated at
 * mmap()), freeing with vfree() (the replacement pages' array goes with
 * the record) or taking another lock; gntsock_grant_lock comes before it.
 * A notifier that reclaim enters can therefore not wait for an
 * allocation. A grant VMA cannot be moved (mremap() fails with EINVAL), so
 * the notifier's interval always covers the VMA it was registered for.
 * The record is freed by the dispose work (gntsock_grant_dispose()), as
 * its last reference may go under gntsock_grant_lock and freeing it may
 * sleep.
 */
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/mmu_notifier.h>
#include <linux/sched/mm.h>
#include <linux/workqueue.h>
#include <xen/xen.h>
#include <xen/grant_table.h>
#include <asm/xen/hypercall.h>

#include "gntsock.h"
#include "grant.h"
#include "grant_in.h"

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

static void gntsock_gin_free_fn(struct gntsock_grant_dispose *d)
{
	struct gntsock_gin *gin = container_of(d, struct gntsock_gin, free_d);
	/* No VMA is left: no user PTE points at the pages any more. */
	bool held = gntsock_gin_free_pages(gin);

	gntsock_link_put(gin->link);
	kvfree(gin->pte);
	kvfree(gin->handles);
	kvfree(gin->repl);
	kvfree(gin->unmap_ops);
	kvfree(gin->unmap_idx);
	kvfree(gin->gone);
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

static void gntsock_gin_free(struct kref *kref)
{
	struct gntsock_gin *gin = container_of(kref, struct gntsock_gin, kref);

	gntsock_grant_dispose(&gin->free_d, gntsock_gin_free_fn);
}

/**
 * gntsock_gin_put() - drop a reference to a received grant
 * @gin: the grant
 *
 * The socket's list, the receive queue entry, mmap() while it maps and
 * each VMA hold one; the last one has the dispose work free the grant
 * (gntsock_gin_free_fn()). May be called under gntsock_grant_lock.
 */
void gntsock_gin_put(struct gntsock_gin *gin)
{
	kref_put(&gin->kref, gntsock_gin_free);
}

/**
 * gntsock_gin_free_repl() - free the replacement pages whose mappings are gone
 * @gin: the grant
 * @gone: NULL when none of them is mapped any more, otherwise which pages
 *	Xen released (a page Xen may still reference is leaked, never reused)
 *
 * Under map_lock, a spinlock: the array itself stays (kvfree() may sleep),
 * empty, until the record is freed or mmap() makes a new one.
 */
void gntsock_gin_free_repl(struct gntsock_gin *gin, const bool *gone)
{
	u32 i, kept = 0;

	for (i = 0; gin->repl && i < gin->nrepl; i++) {
		if (gone && !gone[i])
			kept++;
		else if (gin->repl[i])
			__free_page(gin->repl[i]);
		gin->repl[i] = NULL;
	}
	if (kept)
		pr_warn_ratelimited("gntsock: grant %u of domain %u: %u replacement pages still referenced, not freed\n",
				    gin->id, gin->link->peer, kept);
	gin->nrepl = 0;
}

/**
 * gntsock_gin_unmap_pages() - unmap the pages of @gin whose handle is valid
 * @gin: the grant; map_lock held, or its mmap() failing
 *
 * Works for plain and revocable mappings, revoked or not. Allocates
 * nothing: the arrays come from mmap().
 *
 * Return: pages that failed.
 */
u32 gntsock_gin_unmap_pages(struct gntsock_gin *gin)
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
	bad = gntsock_gin_unmap_pages(gin);
	if (bad)
		pr_warn_ratelimited("gntsock: unmapping grant %u of domain %u: %u pages failed\n",
				    gin->id, gin->link->peer, bad);
	WRITE_ONCE(gin->mapped, false);
	atomic64_inc(&gntsock_grant_stats.unmapped);
	atomic_dec(&gntsock_grant_stats.in_mapped);
}

/**
 * gntsock_gin_sync_state() - catch up with an unmap by the notifier
 * @gin: the grant; gntsock_grant_lock held
 *
 * The notifier does not take gntsock_grant_lock: a grant it unmapped is
 * still GIN_MAPPED until this makes it GIN_UNMAPPED.
 */
void gntsock_gin_sync_state(struct gntsock_gin *gin)
{
	lockdep_assert_held(&gntsock_grant_lock);
	if (gin->state == GIN_MAPPED && !READ_ONCE(gin->mapped))
		gin->state = GIN_UNMAPPED;
}

/* Auto-translated: empty the VMAs of a grant unmapped behind the
 * application's back, so that they fault as on PV instead of showing
 * unpopulated frames. Not under gntsock_grant_lock: zapping sleeps, and
 * calls our notifier.
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
	spin_lock(&gntsock_grant_lock);
	if (gin->zap_event && gin->sk)
		gntsock_grant_event(gin->sk, gin->owner, GNTSOCK_EV_REVOKED, gin->id, 0,
				    gin->npages);
	gin->zap_event = false;
	spin_unlock(&gntsock_grant_lock);
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
	/* Only map_lock, under which nothing allocates: reclaim may call
	 * us.
	 */
	spin_lock(&gin->map_lock);
	mmu_interval_set_seq(mn, cur_seq);
	if (gin->mapped)
		gntsock_gin_unmap_zap(gin);
	spin_unlock(&gin->map_lock);
	return true;
}

/**
 * gntsock_gin_take_down() - unmap (and zap) unless the notifier did
 * @gin: a GIN_MAPPED grant; gntsock_grant_lock held
 *
 * Return: true if a zap is pending.
 */
bool gntsock_gin_take_down(struct gntsock_gin *gin)
{
	bool zap = false;

	lockdep_assert_held(&gntsock_grant_lock);
	spin_lock(&gin->map_lock);
	if (gin->mapped)
		zap = gntsock_gin_unmap_zap(gin);
	spin_unlock(&gin->map_lock);
	gntsock_gin_sync_state(gin);
	return zap;
}

const struct mmu_interval_notifier_ops gntsock_gin_mn_ops = {
	.invalidate = gntsock_gin_invalidate,
};

static void gntsock_gin_vma_open(struct vm_area_struct *vma)
{
	struct gntsock_gin *gin = vma->vm_private_data;

	spin_lock(&gntsock_grant_lock);
	gin->vmas++;
	kref_get(&gin->kref);
	spin_unlock(&gntsock_grant_lock);
}

static void gntsock_gin_vma_close(struct vm_area_struct *vma)
{
	struct gntsock_gin *gin = vma->vm_private_data;
	bool remove = false;

	spin_lock(&gntsock_grant_lock);
	if (!--gin->vmas && gin->notifier_live) {
		WRITE_ONCE(gin->notifier_live, false);
		remove = true;
	}
	spin_unlock(&gntsock_grant_lock);
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

const struct vm_operations_struct gntsock_gin_vmops = {
	.open = gntsock_gin_vma_open,
	.close = gntsock_gin_vma_close,
	.fault = gntsock_gin_fault,
	.may_split = gntsock_gin_may_split,
	.mremap = gntsock_gin_mremap,
};

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
	/* The last references went with the sockets: records are freed,
	 * and held pages listed, by the dispose work.
	 */
	gntsock_grant_dispose_flush();
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
